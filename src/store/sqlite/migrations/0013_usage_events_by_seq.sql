-- usage_events keyed by its journal sequence. The sequence was a UNIQUE column, which SQLite
-- keeps as an index beside the table's own rowid B-tree, so every event the usage writer
-- inserted went into two B-trees. As the table's INTEGER PRIMARY KEY it is the rowid itself:
-- one B-tree per insert, the same idempotent replay (INSERT OR IGNORE on the key), and
-- max(journal_seq) read from the end of the table. SQLite cannot change a column into the
-- rowid, so the table is rebuilt with its rows, in sequence order.
CREATE TABLE usage_events_new (
    journal_seq              INTEGER PRIMARY KEY NOT NULL, -- the rowid
    request_id               TEXT NOT NULL,
    created_at_ms            INTEGER NOT NULL,
    org_id                   TEXT NOT NULL,
    workspace_id             TEXT NOT NULL,
    key_id                   TEXT NOT NULL,
    model                    TEXT NOT NULL,
    route                    TEXT NOT NULL,
    input_tokens             INTEGER NOT NULL,
    output_tokens            INTEGER NOT NULL,
    cache_creation_tokens    INTEGER NOT NULL,
    cache_read_tokens        INTEGER NOT NULL,
    cost_nusd                INTEGER NOT NULL,
    status                   INTEGER NOT NULL,
    stream                   INTEGER NOT NULL,
    client_disconnected      INTEGER NOT NULL,
    latency_us               INTEGER NOT NULL,
    upstream_us              INTEGER NOT NULL,
    input_cost_nusd          INTEGER NOT NULL DEFAULT 0,
    output_cost_nusd         INTEGER NOT NULL DEFAULT 0,
    cache_creation_cost_nusd INTEGER NOT NULL DEFAULT 0,
    cache_read_cost_nusd     INTEGER NOT NULL DEFAULT 0,
    requested_model          TEXT,
    deployment               TEXT
) STRICT;
INSERT INTO usage_events_new
    SELECT journal_seq, request_id, created_at_ms, org_id, workspace_id, key_id, model, route,
           input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, cost_nusd,
           status, stream, client_disconnected, latency_us, upstream_us, input_cost_nusd,
           output_cost_nusd, cache_creation_cost_nusd, cache_read_cost_nusd, requested_model,
           deployment
    FROM usage_events ORDER BY journal_seq;
DROP TABLE usage_events;
ALTER TABLE usage_events_new RENAME TO usage_events;
