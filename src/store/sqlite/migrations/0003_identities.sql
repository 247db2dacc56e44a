-- OpenID Connect sign-in ("Continue with Google"): pending authorization requests and the
-- identities that link a provider's subject to an account. Times are Unix seconds (UTC).

-- One row per started sign-in. The state is a secret that also rides in the browser's
-- gh_oidc cookie, so only its SHA-256 is kept. The nonce and the PKCE code verifier are kept
-- as they are: they are checked against the provider's answers, and without the state and
-- the provider's one-time code they open nothing. Single use: used_at is set when the
-- provider's callback arrives; rows are purged once expired.
CREATE TABLE oidc_states (
    state_hash    TEXT PRIMARY KEY,
    nonce         TEXT NOT NULL,
    code_verifier TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    used_at       INTEGER
) STRICT;
CREATE INDEX oidc_states_expiry ON oidc_states (expires_at);

-- A person at a provider (issuer and subject, the provider's stable id for them) linked to
-- one account. An account may have several; email is the verified address last seen.
CREATE TABLE identities (
    issuer       TEXT NOT NULL,
    subject      TEXT NOT NULL,
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    email        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    PRIMARY KEY (issuer, subject)
) STRICT;
CREATE INDEX identities_account ON identities (account_id);
