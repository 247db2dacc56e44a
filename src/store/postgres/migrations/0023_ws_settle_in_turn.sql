-- Workspace leases are settled by the usage writer under the write lock, no longer by a
-- trigger on usage_events. The trigger (0015) ran inside the events' insert, and the writer
-- now inserts its events before it takes the write lock (its lanes, docs/architecture.md):
-- a lane waiting for its turn held the locks of the money rows the trigger had updated, and
-- the lane whose turn it was waited for one of those rows. The writer calls gh_ws_lease_settle
-- in the same transaction, after the lock, with each workspace's cost of the events it
-- inserted (only those: a replay settles once, as with the trigger).
DROP TRIGGER usage_events_ws_lease_settle ON usage_events;
DROP FUNCTION gh_ws_lease_settle_events();

-- For each workspace (in the order given, which the caller sorts: rows are locked in that
-- order), p_node's lease of it shrinks by the cost (by what it holds, at most), and the
-- workspace's month spend grows by the cost. Workspaces never leased have no cluster_ws_money
-- row and are skipped.
CREATE FUNCTION gh_ws_lease_settle(p_ws text[], p_costs bigint[], p_node text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    r record;
    held bigint;
    shrink bigint;
    mk integer := to_char(now() AT TIME ZONE 'UTC', 'YYYYMM')::integer;
BEGIN
    FOR r IN SELECT t.ws, t.cost FROM unnest(p_ws, p_costs) WITH ORDINALITY AS t(ws, cost, i)
               JOIN cluster_ws_money m ON m.workspace_id = t.ws
              ORDER BY t.i
    LOOP
        shrink := 0;
        SELECT amount_nusd INTO held FROM cluster_ws_leases
         WHERE workspace_id = r.ws AND node_id = p_node FOR UPDATE;
        IF FOUND THEN
            shrink := least(held, r.cost);
            UPDATE cluster_ws_leases SET amount_nusd = amount_nusd - shrink
             WHERE workspace_id = r.ws AND node_id = p_node;
        END IF;
        UPDATE cluster_ws_money
           SET leased_nusd = leased_nusd - shrink,
               month_spent_nusd = CASE WHEN month_key >= mk THEN month_spent_nusd + r.cost
                                       ELSE r.cost END,
               month_key = greatest(month_key, mk)
         WHERE workspace_id = r.ws;
    END LOOP;
END;
$$;
