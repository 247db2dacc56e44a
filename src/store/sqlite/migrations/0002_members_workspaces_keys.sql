-- Workspace membership, invitations, API and admin keys, and the audit log.
-- List endpoints page by rowid (insertion order), so every listed table keeps its rowid.

-- Workspace colours are hex codes from a fixed palette.
UPDATE workspaces SET display_color = '#5E7386' WHERE display_color NOT LIKE '#%';

CREATE TABLE workspace_members (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    org_id       TEXT NOT NULL REFERENCES organizations (id),
    role         TEXT NOT NULL CHECK (role IN ('workspace_user', 'workspace_developer',
                                               'workspace_admin', 'workspace_billing')),
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, account_id)
) STRICT;
CREATE INDEX workspace_members_account ON workspace_members (org_id, account_id);

CREATE TABLE invites (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations (id),
    email       TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('user', 'developer', 'billing', 'admin')),
    token_hash  TEXT NOT NULL UNIQUE,
    invited_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    accepted_at INTEGER,
    deleted_at  INTEGER
) STRICT;
CREATE INDEX invites_org ON invites (org_id);
-- At most one open (neither accepted nor deleted) invite per address and organization.
CREATE UNIQUE INDEX invites_open ON invites (org_id, email)
    WHERE accepted_at IS NULL AND deleted_at IS NULL;

-- API keys (kind 'api', in a workspace) and organization admin keys (kind 'admin').
CREATE TABLE keys (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('api', 'admin')),
    org_id          TEXT NOT NULL REFERENCES organizations (id),
    workspace_id    TEXT REFERENCES workspaces (id),
    name            TEXT NOT NULL,
    key_hash        TEXT NOT NULL UNIQUE,
    hint            TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('active', 'inactive', 'archived', 'revoked')),
    created_by_type TEXT NOT NULL,
    created_by_id   TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER,
    CHECK ((kind = 'api') = (workspace_id IS NOT NULL))
) STRICT;
CREATE INDEX keys_org ON keys (org_id, kind);

CREATE TABLE audit_log (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations (id),
    created_at  INTEGER NOT NULL,
    actor_type  TEXT NOT NULL CHECK (actor_type IN ('user', 'admin_key')),
    actor_id    TEXT NOT NULL,
    actor_label TEXT NOT NULL,
    action      TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id   TEXT NOT NULL,
    details     TEXT NOT NULL,
    ip          TEXT NOT NULL
) STRICT;
CREATE INDEX audit_log_org ON audit_log (org_id);
