-- Spend notifications (issue 16, point 10) and the HTML part of mail (point 11).
--
-- A notification is a rule an admin or billing member sets on the Limits page: mail the
-- organization's admins and billing members when the month's spend reaches an amount or a
-- percentage of the monthly spend limit, or when the credit balance falls below an amount.
-- The usage writer checks the rules in the transaction that charges usage; the row saying
-- "this rule was notified for this month" and the mail's outbox row are written together, so
-- a crash neither sends a notice twice nor loses it. Money is integer nano-USD.
--
-- This migration depends on 0008 (mail_outbox).
CREATE TABLE spend_notifications (
    id          TEXT PRIMARY KEY,                 -- spendntf_01...
    org_id      TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('spend_amount', 'spend_percent', 'balance_below')),
    amount_nusd INTEGER CHECK (amount_nusd IS NULL OR amount_nusd > 0),
    percent     INTEGER CHECK (percent IS NULL OR percent BETWEEN 1 AND 100),
    created_at  INTEGER NOT NULL,                 -- Unix seconds
    created_by  TEXT NOT NULL,                    -- the actor's label, for the list
    -- balance_below only: when the notice was queued (Unix seconds), kept until the balance is
    -- at or above the amount again (then 0, and the rule can fire again).
    balance_notified_at INTEGER NOT NULL DEFAULT 0,
    CHECK ((kind = 'spend_percent') = (percent IS NOT NULL)),
    CHECK ((kind = 'spend_percent') = (amount_nusd IS NULL))
) STRICT;

CREATE INDEX spend_notifications_org ON spend_notifications (org_id, created_at);

-- A spend rule notified for a month (YYYYMM, UTC): at most one row, so at most one mail.
CREATE TABLE spend_notifications_sent (
    notification_id TEXT NOT NULL,
    month           INTEGER NOT NULL,
    sent_at         INTEGER NOT NULL,
    spend_nusd      INTEGER NOT NULL, -- the month's spend when it was noticed
    PRIMARY KEY (notification_id, month)
) STRICT, WITHOUT ROWID;

-- The month's spend of an organization that has rules, kept by the check as usage is charged
-- (so a check never sums a month of ledger entries); set from the ledger when a rule is added,
-- in that rule's transaction. `month` is YYYYMM (UTC); a charge in a later month starts over.
CREATE TABLE spend_notify_state (
    org_id     TEXT PRIMARY KEY,
    month      INTEGER NOT NULL,
    spend_nusd INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- The HTML alternative of a queued mail, written with its mail_outbox row and deleted when
-- the mail is sent (it holds the same links as the text).
CREATE TABLE mail_outbox_html (
    mail_id INTEGER PRIMARY KEY,
    html    TEXT NOT NULL
) STRICT;
