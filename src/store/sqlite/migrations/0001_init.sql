-- Accounts, sign-in links, sessions, organizations, memberships, workspaces.
-- Times are Unix seconds (UTC). Secrets are never stored: links and sessions keep SHA-256
-- hashes of their tokens.

CREATE TABLE accounts (
    id                TEXT PRIMARY KEY,
    email             TEXT NOT NULL UNIQUE,  -- lower-cased before it is stored
    full_name         TEXT,
    age_confirmed_at  INTEGER,
    terms_accepted_at INTEGER,
    terms_version     TEXT,
    created_at        INTEGER NOT NULL
) STRICT;

CREATE TABLE login_links (
    token_hash  TEXT PRIMARY KEY,
    email       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    request_ip  TEXT NOT NULL
) STRICT;
CREATE INDEX login_links_expiry ON login_links (expires_at);

CREATE TABLE organizations (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    legal_name    TEXT,
    billing_email TEXT,
    address_line1 TEXT,
    address_line2 TEXT,
    city          TEXT,
    postal_code   TEXT,
    state         TEXT,
    country       TEXT,
    vat_id        TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER
) STRICT;

CREATE TABLE memberships (
    org_id     TEXT NOT NULL REFERENCES organizations (id),
    account_id TEXT NOT NULL REFERENCES accounts (id),
    role       TEXT NOT NULL CHECK (role IN ('user', 'developer', 'billing', 'admin')),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, account_id)
) STRICT;
CREATE INDEX memberships_account ON memberships (account_id);

CREATE TABLE workspaces (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES organizations (id),
    name          TEXT NOT NULL,
    display_color TEXT NOT NULL,
    is_default    INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    archived_at   INTEGER,
    UNIQUE (org_id, name)
) STRICT;

CREATE TABLE sessions (
    id_hash        TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL REFERENCES accounts (id),
    csrf_token     TEXT NOT NULL,
    current_org_id TEXT REFERENCES organizations (id),
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    revoked_at     INTEGER,
    ip             TEXT NOT NULL,
    user_agent     TEXT NOT NULL
) STRICT;
CREATE INDEX sessions_account ON sessions (account_id);
