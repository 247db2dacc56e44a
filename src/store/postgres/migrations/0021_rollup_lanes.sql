-- Minute rollup rows name the usage writer that wrote them: its node and its lane
-- (docs/architecture.md, "The usage writer's lanes"). A node's writer keeps two transactions
-- in flight; each writes its events and their minute rows before it takes the write lock,
-- and those rows are its own. Two lanes (or two nodes) never upsert the same row, so neither
-- ever waits on the other's row locks while that one waits for the write lock held by the
-- first. A series' minute may now have a row per writer; every reader sums them (reports
-- and the roll forward group by the series and bucket). Rows written before this are node
-- 'local', lane 0.
ALTER TABLE usage_rollup_minute
    ADD COLUMN node_id text NOT NULL DEFAULT 'local' CHECK (length(node_id) BETWEEN 1 AND 64),
    ADD COLUMN lane smallint NOT NULL DEFAULT 0 CHECK (lane BETWEEN 0 AND 15);
ALTER TABLE usage_rollup_minute DROP CONSTRAINT usage_rollup_minute_pkey;
ALTER TABLE usage_rollup_minute
    ADD PRIMARY KEY (org_id, bucket_start, workspace_id, key_id, model, node_id, lane);
