-- The month's spend of a money row being opened (migration 0018's gh_month_spend) from the
-- rollups instead of the usage events. usage_events has no index by organization (every
-- index costs the usage writer), so the sum was a scan of the whole table, once per
-- organization and per limited workspace, on the path of the request waiting for the lease:
-- seconds in a large installation. The rollups are written in the events' transaction and
-- their keys lead with the organization and the bucket: the day rows of the month plus the
-- minute rows not rolled forward yet (migration 0017: minute buckets before the mark are in
-- the day table, later ones only in the minute table) are the same sum, exactly, in two range
-- scans. One statement, one snapshot: the mark and both tables agree.
CREATE OR REPLACE FUNCTION gh_month_spend(p_org text, p_ws text, p_month_start timestamptz)
RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT gh_bigint_sum(input_cost_nusd + output_cost_nusd
                                          + cache_creation_cost_nusd + cache_read_cost_nusd)
                       FROM usage_rollup_day
                      WHERE org_id = p_org AND bucket_start >= p_month_start
                        AND (p_ws IS NULL OR workspace_id = p_ws)), 0)
         + coalesce((SELECT gh_bigint_sum(m.input_cost_nusd + m.output_cost_nusd
                                          + m.cache_creation_cost_nusd + m.cache_read_cost_nusd)
                       FROM usage_rollup_minute m, usage_rollup_watermark w
                      WHERE m.org_id = p_org
                        AND m.bucket_start >= greatest(w.rolled_before, p_month_start)
                        AND (p_ws IS NULL OR m.workspace_id = p_ws)), 0)
$$;
