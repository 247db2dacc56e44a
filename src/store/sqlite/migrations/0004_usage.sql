-- Usage events (one per model request) and what the writer has committed from the journal.
-- usage_events is append-ordered: its only index is on journal_seq, which only grows, so
-- batched inserts stay fast (a random-order index would cut them by an order of magnitude).

CREATE TABLE usage_events (
    journal_seq           INTEGER NOT NULL UNIQUE, -- makes replaying the journal idempotent
    request_id            TEXT NOT NULL,
    created_at_ms         INTEGER NOT NULL,
    org_id                TEXT NOT NULL,
    workspace_id          TEXT NOT NULL,
    key_id                TEXT NOT NULL,
    model                 TEXT NOT NULL,
    route                 TEXT NOT NULL,
    input_tokens          INTEGER NOT NULL,
    output_tokens         INTEGER NOT NULL,
    cache_creation_tokens INTEGER NOT NULL,
    cache_read_tokens     INTEGER NOT NULL,
    cost_nusd             INTEGER NOT NULL,
    status                INTEGER NOT NULL,
    stream                INTEGER NOT NULL,
    client_disconnected   INTEGER NOT NULL,
    latency_us            INTEGER NOT NULL,
    upstream_us           INTEGER NOT NULL
) STRICT;

-- Workspace names are unique in an organization regardless of case.
CREATE UNIQUE INDEX workspaces_name_nocase ON workspaces (org_id, name COLLATE NOCASE);
