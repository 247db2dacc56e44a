-- Room for HOT updates in the usage rollups. The usage writer adds every batch's sums to the
-- rows already there (INSERT ... ON CONFLICT DO UPDATE), so most writes to these tables are
-- updates that change only the counters, never the key. With full pages each such update
-- writes its new row version to another page and a new entry into the five-column primary
-- key; with free space on the page PostgreSQL keeps the version on the same page and skips
-- the index (a heap-only tuple). Measured on 1,650-row upserts: 19 ms at fillfactor 100,
-- 11 ms at 60. Pages written before this keep their layout until they are rewritten.
ALTER TABLE usage_rollup_minute SET (fillfactor = 60);
ALTER TABLE usage_rollup_hour SET (fillfactor = 60);
ALTER TABLE usage_rollup_day SET (fillfactor = 60);
