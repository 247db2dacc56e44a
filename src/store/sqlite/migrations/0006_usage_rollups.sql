-- Usage reports: the cost of each token type on every usage event, and pre-aggregated rollups
-- per minute, hour and day that the usage writer maintains in the same transaction as the
-- events (src/store/sqlite_rollups.c). Reports read only the rollups.
--
-- Money is integer nano-USD. An event's four costs add up to its cost_nusd exactly.

ALTER TABLE usage_events ADD COLUMN input_cost_nusd INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_events ADD COLUMN output_cost_nusd INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_events ADD COLUMN cache_creation_cost_nusd INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_events ADD COLUMN cache_read_cost_nusd INTEGER NOT NULL DEFAULT 0;

-- Events recorded before this migration carry only their total: it is booked as input cost,
-- so that every total stays exact (only the split by token type of that history is not).
UPDATE usage_events SET input_cost_nusd = cost_nusd;

-- One row per (organization, bucket, workspace, key, model) that had at least one request.
-- bucket_start is Unix seconds, aligned to the bucket's width in UTC. The key leads with the
-- organization and the bucket, so a report is one range scan; rows of one organization are
-- written at the end of its range, so the writer's upserts stay local.
CREATE TABLE usage_rollup_minute (
    org_id                   TEXT NOT NULL,
    bucket_start             INTEGER NOT NULL,
    workspace_id             TEXT NOT NULL,
    key_id                   TEXT NOT NULL,
    model                    TEXT NOT NULL,
    requests                 INTEGER NOT NULL,
    input_tokens             INTEGER NOT NULL, -- uncached input
    output_tokens            INTEGER NOT NULL,
    cache_creation_tokens    INTEGER NOT NULL,
    cache_read_tokens        INTEGER NOT NULL,
    input_cost_nusd          INTEGER NOT NULL,
    output_cost_nusd         INTEGER NOT NULL,
    cache_creation_cost_nusd INTEGER NOT NULL,
    cache_read_cost_nusd     INTEGER NOT NULL,
    PRIMARY KEY (org_id, bucket_start, workspace_id, key_id, model)
) STRICT, WITHOUT ROWID;

CREATE TABLE usage_rollup_hour (
    org_id                   TEXT NOT NULL,
    bucket_start             INTEGER NOT NULL,
    workspace_id             TEXT NOT NULL,
    key_id                   TEXT NOT NULL,
    model                    TEXT NOT NULL,
    requests                 INTEGER NOT NULL,
    input_tokens             INTEGER NOT NULL,
    output_tokens            INTEGER NOT NULL,
    cache_creation_tokens    INTEGER NOT NULL,
    cache_read_tokens        INTEGER NOT NULL,
    input_cost_nusd          INTEGER NOT NULL,
    output_cost_nusd         INTEGER NOT NULL,
    cache_creation_cost_nusd INTEGER NOT NULL,
    cache_read_cost_nusd     INTEGER NOT NULL,
    PRIMARY KEY (org_id, bucket_start, workspace_id, key_id, model)
) STRICT, WITHOUT ROWID;

CREATE TABLE usage_rollup_day (
    org_id                   TEXT NOT NULL,
    bucket_start             INTEGER NOT NULL,
    workspace_id             TEXT NOT NULL,
    key_id                   TEXT NOT NULL,
    model                    TEXT NOT NULL,
    requests                 INTEGER NOT NULL,
    input_tokens             INTEGER NOT NULL,
    output_tokens            INTEGER NOT NULL,
    cache_creation_tokens    INTEGER NOT NULL,
    cache_read_tokens        INTEGER NOT NULL,
    input_cost_nusd          INTEGER NOT NULL,
    output_cost_nusd         INTEGER NOT NULL,
    cache_creation_cost_nusd INTEGER NOT NULL,
    cache_read_cost_nusd     INTEGER NOT NULL,
    PRIMARY KEY (org_id, bucket_start, workspace_id, key_id, model)
) STRICT, WITHOUT ROWID;

-- The history so far, rolled up once. (Minute buckets older than the retention are pruned
-- by the writer shortly after start.)
INSERT INTO usage_rollup_minute
SELECT org_id, created_at_ms / 60000 * 60, workspace_id, key_id, model, count(*),
       sum(input_tokens), sum(output_tokens), sum(cache_creation_tokens), sum(cache_read_tokens),
       sum(input_cost_nusd), sum(output_cost_nusd), sum(cache_creation_cost_nusd),
       sum(cache_read_cost_nusd)
FROM usage_events GROUP BY 1, 2, 3, 4, 5;

INSERT INTO usage_rollup_hour
SELECT org_id, bucket_start / 3600 * 3600, workspace_id, key_id, model, sum(requests),
       sum(input_tokens), sum(output_tokens), sum(cache_creation_tokens), sum(cache_read_tokens),
       sum(input_cost_nusd), sum(output_cost_nusd), sum(cache_creation_cost_nusd),
       sum(cache_read_cost_nusd)
FROM usage_rollup_minute GROUP BY 1, 2, 3, 4, 5;

INSERT INTO usage_rollup_day
SELECT org_id, bucket_start / 86400 * 86400, workspace_id, key_id, model, sum(requests),
       sum(input_tokens), sum(output_tokens), sum(cache_creation_tokens), sum(cache_read_tokens),
       sum(input_cost_nusd), sum(output_cost_nusd), sum(cache_creation_cost_nusd),
       sum(cache_read_cost_nusd)
FROM usage_rollup_hour GROUP BY 1, 2, 3, 4, 5;
