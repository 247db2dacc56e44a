-- The mail outbox: a mail is a row written in the same transaction as the change it reports
-- (an invitation, a sign-in link, a receipt), and a mailer thread sends it afterwards, outside
-- any transaction, with retries. Times are Unix milliseconds (UTC).
--
-- This migration depends on nothing before it.
CREATE TABLE mail_outbox (
    id               INTEGER PRIMARY KEY,
    created_at_ms    INTEGER NOT NULL,
    recipient        TEXT NOT NULL,
    subject          TEXT NOT NULL,
    -- The message text; emptied once sent (it may hold a sign-in or invitation link).
    body             TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    -- Not sent before this (the backoff after a failure).
    next_attempt_ms  INTEGER NOT NULL,
    -- A sender owns the row until then; a sender that died lets it go when this passes.
    claimed_until_ms INTEGER NOT NULL DEFAULT 0,
    sent_at_ms       INTEGER,
    last_error       TEXT
) STRICT;

-- The mailer reads the unsent rows, oldest first.
CREATE INDEX mail_outbox_unsent ON mail_outbox (id) WHERE sent_at_ms IS NULL;
