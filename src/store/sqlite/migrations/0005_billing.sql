-- Billing: the card on file, the first-purchase questions, purchases, credit lots, the
-- append-only ledger, invoices and auto-reload. Money is integer nano-USD (*_nusd, 1 USD =
-- 1e9), never a float; times are Unix seconds (UTC).
--
-- The ledger is the truth: an organization's balance is the sum of its ledger entries. Each
-- entry either belongs to a credit lot (a purchase or a grant, which expires) or to no lot
-- (usage past the last lot, which makes the balance negative until the next lot settles it).
-- For every lot, the sum of its entries is its remaining amount. billing_accounts.balance_nusd
-- is a cache of the sum, written in the same transaction as each entry; `gatehouse ledger
-- check` recomputes everything from the entries and compares.

-- One row per organization that has touched billing (created on first use).
CREATE TABLE billing_accounts (
    org_id                  TEXT PRIMARY KEY REFERENCES organizations (id),
    balance_nusd            INTEGER NOT NULL DEFAULT 0, -- cache: sum of ledger_entries
    customer_ref            TEXT,    -- the payment provider's customer id (Stripe cus_…)
    -- Auto-reload: when the balance is below the threshold, buy `amount` once. `armed` is
    -- cleared when a reload starts and set again once the balance is back at or above the
    -- threshold, so one crossing never charges twice.
    auto_reload_enabled     INTEGER NOT NULL DEFAULT 0,
    auto_reload_threshold_nusd INTEGER,
    auto_reload_amount_nusd INTEGER,
    auto_reload_armed       INTEGER NOT NULL DEFAULT 1,
    auto_reload_disabled_reason TEXT,
    -- The questions asked before the first purchase.
    intended_use            TEXT,
    countries               TEXT,    -- JSON array of ISO 3166-1 alpha-2 codes
    regulated_industries    TEXT,    -- JSON array of names from a fixed list (may be [])
    profile_answered_at     INTEGER,
    updated_at              INTEGER NOT NULL
) STRICT;
CREATE INDEX billing_accounts_reload ON billing_accounts (org_id) WHERE auto_reload_enabled = 1;

-- Cards, newest last. Adding a card replaces the current one, which is kept with replaced_at.
-- Only what may be shown is stored: never the number or the CVC.
CREATE TABLE payment_methods (
    id           TEXT PRIMARY KEY,   -- card_01…
    org_id       TEXT NOT NULL REFERENCES organizations (id),
    provider     TEXT NOT NULL,      -- 'test' or 'stripe'
    provider_ref TEXT,               -- the provider's payment method id (Stripe pm_…)
    brand        TEXT NOT NULL,
    last4        TEXT NOT NULL,
    exp_month    INTEGER NOT NULL CHECK (exp_month BETWEEN 1 AND 12),
    exp_year     INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    replaced_at  INTEGER
) STRICT;
CREATE INDEX payment_methods_org ON payment_methods (org_id);
CREATE UNIQUE INDEX payment_methods_current ON payment_methods (org_id) WHERE replaced_at IS NULL;

-- A purchase is recorded as pending before the card is charged, and resolved once: to
-- succeeded (crediting a lot, in the same transaction) or declined. The idempotency key makes
-- a retried request find the same purchase instead of buying again.
CREATE TABLE purchases (
    id                TEXT PRIMARY KEY,   -- pur_01…, also the provider's idempotency key
    org_id            TEXT NOT NULL REFERENCES organizations (id),
    kind              TEXT NOT NULL CHECK (kind IN ('manual', 'auto_reload')),
    status            TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'declined')),
    amount_nusd       INTEGER NOT NULL CHECK (amount_nusd > 0), -- credits bought
    tax_nusd          INTEGER NOT NULL CHECK (tax_nusd >= 0),
    total_nusd        INTEGER NOT NULL,   -- charged to the card: amount + tax
    tax_label         TEXT NOT NULL,
    idempotency_key   TEXT NOT NULL,
    payment_method_id TEXT NOT NULL REFERENCES payment_methods (id),
    provider          TEXT NOT NULL,
    provider_ref      TEXT,               -- the provider's charge (pi_…, test_ch_…)
    decline_code      TEXT,
    message           TEXT,               -- why it was declined, or why it is pending
    attempts          INTEGER NOT NULL DEFAULT 0,
    created_by_type   TEXT NOT NULL,
    created_by_id     TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    resolved_at       INTEGER,
    UNIQUE (org_id, idempotency_key),
    CHECK (total_nusd = amount_nusd + tax_nusd)
) STRICT;
CREATE INDEX purchases_org ON purchases (org_id);
CREATE INDEX purchases_pending ON purchases (updated_at) WHERE status = 'pending';
-- Never two auto-reloads in flight for one organization.
CREATE UNIQUE INDEX purchases_one_reload ON purchases (org_id)
    WHERE kind = 'auto_reload' AND status = 'pending';

-- Credits in lots: one per succeeded purchase or staff grant, expiring at expires_at.
-- Usage consumes the lot that expires first.
CREATE TABLE credit_lots (
    id             TEXT PRIMARY KEY,   -- lot_01…
    org_id         TEXT NOT NULL REFERENCES organizations (id),
    source         TEXT NOT NULL CHECK (source IN ('purchase', 'grant')),
    source_ref     TEXT NOT NULL,      -- the purchase id, or the grant's reference
    amount_nusd    INTEGER NOT NULL CHECK (amount_nusd > 0),
    remaining_nusd INTEGER NOT NULL CHECK (remaining_nusd BETWEEN 0 AND amount_nusd),
    expires_at     INTEGER NOT NULL,
    created_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX credit_lots_org ON credit_lots (org_id);
CREATE INDEX credit_lots_open ON credit_lots (org_id, expires_at) WHERE remaining_nusd > 0;
CREATE INDEX credit_lots_expiry ON credit_lots (expires_at) WHERE remaining_nusd > 0;

-- The ledger: append-only, one row per change of a balance.
--   purchase, grant   +amount into a new lot
--   usage             -cost of model requests (reference usage:FIRST-LAST journal sequences),
--                     one entry per lot drawn from, the rest with no lot
--   clawback          -amount taken back by staff, per lot
--   expiry            -what was left of a lot at its expiry
--   settlement        a new lot paying off negative balance: -x on the lot, +x with no lot
CREATE TABLE ledger_entries (
    id          INTEGER PRIMARY KEY,   -- append order
    org_id      TEXT NOT NULL REFERENCES organizations (id),
    lot_id      TEXT REFERENCES credit_lots (id),
    kind        TEXT NOT NULL CHECK (kind IN ('purchase', 'grant', 'usage', 'clawback',
                                              'expiry', 'settlement')),
    amount_nusd INTEGER NOT NULL,
    reference   TEXT NOT NULL,
    reason      TEXT,
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX ledger_entries_org ON ledger_entries (org_id);
CREATE INDEX ledger_entries_lot ON ledger_entries (lot_id) WHERE lot_id IS NOT NULL;
CREATE INDEX ledger_entries_unallocated ON ledger_entries (org_id) WHERE lot_id IS NULL;
CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
BEGIN
    SELECT RAISE(ABORT, 'ledger entries are append-only');
END;
CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
BEGIN
    SELECT RAISE(ABORT, 'ledger entries are append-only');
END;

-- Invoice numbers are gap-free per year: the counter row is advanced in the transaction that
-- credits the purchase, so a number is used exactly when an invoice exists.
CREATE TABLE invoice_counters (
    year     INTEGER PRIMARY KEY,
    last_seq INTEGER NOT NULL
) STRICT;

-- Invoices keep a snapshot of both parties as they were when issued.
CREATE TABLE invoices (
    id                 TEXT PRIMARY KEY,   -- inv_01…
    org_id             TEXT NOT NULL REFERENCES organizations (id),
    purchase_id        TEXT NOT NULL UNIQUE REFERENCES purchases (id),
    number             TEXT NOT NULL UNIQUE,
    year               INTEGER NOT NULL,
    seq                INTEGER NOT NULL,
    issued_at          INTEGER NOT NULL,
    currency           TEXT NOT NULL,
    description        TEXT NOT NULL,
    subtotal_nusd      INTEGER NOT NULL,
    tax_nusd           INTEGER NOT NULL,
    total_nusd         INTEGER NOT NULL,
    tax_label          TEXT NOT NULL,
    note               TEXT,
    payment            TEXT NOT NULL,      -- "Visa ending in 4242"
    test_mode          INTEGER NOT NULL,
    seller_name        TEXT, seller_line1 TEXT, seller_line2 TEXT, seller_city TEXT,
    seller_postal_code TEXT, seller_state TEXT, seller_country TEXT, seller_vat_id TEXT,
    seller_email       TEXT,
    buyer_name         TEXT, buyer_line1 TEXT, buyer_line2 TEXT, buyer_city TEXT,
    buyer_postal_code  TEXT, buyer_state TEXT, buyer_country TEXT, buyer_vat_id TEXT,
    buyer_email        TEXT,
    UNIQUE (year, seq)
) STRICT;
CREATE INDEX invoices_org ON invoices (org_id);

-- Payment provider webhook events already handled, so a replayed event is ignored.
CREATE TABLE webhook_events (
    event_id    TEXT PRIMARY KEY,
    provider    TEXT NOT NULL,
    type        TEXT NOT NULL,
    received_at INTEGER NOT NULL
) STRICT;

-- Usage events committed before billing existed were never charged; the ledger check
-- compares usage entries with the events after this sequence only.
CREATE TABLE billing_meta (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;
INSERT INTO billing_meta (name, value)
    SELECT 'usage_seq_start', coalesce(max(journal_seq), 0) FROM usage_events;

-- Staff (the command line) and the system itself (auto-reload, the billing scheduler) now act
-- on organizations too: the audit log accepts them as actors. SQLite cannot change a CHECK,
-- so the table is rebuilt with its rows and rowids (lists page by rowid).
CREATE TABLE audit_log_new (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations (id),
    created_at  INTEGER NOT NULL,
    actor_type  TEXT NOT NULL CHECK (actor_type IN ('user', 'admin_key', 'staff', 'system')),
    actor_id    TEXT NOT NULL,
    actor_label TEXT NOT NULL,
    action      TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id   TEXT NOT NULL,
    details     TEXT NOT NULL,
    ip          TEXT NOT NULL
) STRICT;
INSERT INTO audit_log_new (rowid, id, org_id, created_at, actor_type, actor_id, actor_label,
                           action, target_type, target_id, details, ip)
    SELECT rowid, id, org_id, created_at, actor_type, actor_id, actor_label, action,
           target_type, target_id, details, ip FROM audit_log;
DROP TABLE audit_log;
ALTER TABLE audit_log_new RENAME TO audit_log;
CREATE INDEX audit_log_org ON audit_log (org_id);
