-- The hour and day rollups are rolled forward from the minute rollups (docs/architecture.md,
-- "Usage reports and rollups"): the usage writer's transaction upserts only the minute rows of
-- its events, and a roll forward, in a transaction of its own, sums the minute rows of the
-- buckets before a mark into the hour and day tables and moves the mark. This one-row table is
-- the mark: every minute bucket before `rolled_before` is already summed into the hour and day
-- tables. An event whose minute is before the mark (a replay, a node back after a while, a
-- clock behind) is added to all three tables by the writer, as before. Writers read the row
-- FOR SHARE and the roll forward locks it FOR UPDATE, so the two never interleave: a minute
-- row is summed into the hour and day tables exactly once.
CREATE TABLE usage_rollup_watermark (
    one           boolean PRIMARY KEY DEFAULT true CHECK (one),
    rolled_before timestamptz NOT NULL
);
-- Until now the writer kept all three tables complete: the mark starts after every minute
-- bucket stored (and after the current minute). The minute table's key leads with the
-- organization: one backward probe per organization (a skip scan over its keys) rather than a
-- scan of the whole table.
INSERT INTO usage_rollup_watermark (rolled_before)
SELECT greatest(date_trunc('minute', now()) + interval '1 minute',
                (WITH RECURSIVE o(id) AS (
                     SELECT min(org_id) FROM usage_rollup_minute
                     UNION ALL
                     SELECT (SELECT min(org_id) FROM usage_rollup_minute m WHERE m.org_id > o.id)
                     FROM o WHERE o.id IS NOT NULL)
                 SELECT max(x.b) + interval '1 minute' FROM o, LATERAL (
                     SELECT max(bucket_start) AS b FROM usage_rollup_minute m
                     WHERE m.org_id = o.id) x
                 WHERE o.id IS NOT NULL));
