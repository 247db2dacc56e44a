-- Lease takes without a scan of the month's usage (issue 14). gh_lease_take (0012) and
-- gh_ws_lease_take (0015) opened the money row with INSERT ... SELECT sum(cost) FROM
-- usage_events ... ON CONFLICT DO NOTHING, and PostgreSQL evaluates that SELECT before it
-- finds the conflict: every take summed the organization's (or workspace's) events of the
-- month, ~100 ms at 600,000 events, and a request waiting for a refill waited that long.
-- The month's spend is summed only when the row does not exist yet (the first lease of an
-- organization or workspace); after that the row carries it, kept by gh_lease_settle and the
-- usage events' trigger. Only that opening changes (the sum is gh_month_spend, one place); the rest
-- of each function is as it was.

-- What organization p_org (with p_ws: its workspace p_ws) has spent since p_month_start, from
-- its usage events. Called once per money row, when it is opened.
CREATE FUNCTION gh_month_spend(p_org text, p_ws text, p_month_start timestamptz)
RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(cost_nusd), 0)::bigint FROM usage_events
     WHERE org_id = p_org AND (p_ws IS NULL OR workspace_id = p_ws)
       AND created_at >= p_month_start
$$;

CREATE OR REPLACE FUNCTION gh_lease_take(p_org text, p_node text, p_want bigint, p_min bigint,
                              p_limit bigint, p_month integer, p_month_start timestamptz,
                              p_ttl_ms bigint, OUT granted bigint, OUT lease_epoch bigint,
                              OUT free_nusd bigint, OUT month_bound boolean,
                              OUT limit_nusd bigint)
LANGUAGE plpgsql AS $$
DECLARE
    m cluster_money%ROWTYPE;
    bal bigint;
    avail bigint;
    headroom bigint;
    lim bigint;
BEGIN
    granted := 0;
    month_bound := false;
    SELECT * INTO m FROM cluster_money WHERE org_id = p_org FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO cluster_money (org_id, month_key, month_spent_nusd)
        VALUES (p_org, p_month, gh_month_spend(p_org, NULL, p_month_start))
        ON CONFLICT (org_id) DO NOTHING;
        SELECT * INTO m FROM cluster_money WHERE org_id = p_org FOR UPDATE;
    END IF;
    IF m.month_key < p_month THEN
        m.month_key := p_month;
        m.month_spent_nusd := 0;
        UPDATE cluster_money SET month_key = p_month, month_spent_nusd = 0 WHERE org_id = p_org;
    END IF;
    SELECT balance_nusd INTO bal FROM billing_accounts WHERE org_id = p_org;
    bal := coalesce(bal, 0);
    avail := bal - m.leased_nusd;
    free_nusd := avail;
    -- The organization's own limit is read here, so a node that has not yet seen a change of
    -- it cannot lease past it; p_limit (the tier's cap as the node knows it) can only lower it.
    SELECT least(nullif(p_limit, 0), ol.monthly_spend_limit_nusd) INTO lim
      FROM org_limits ol WHERE ol.org_id = p_org;
    IF NOT FOUND THEN
        lim := nullif(p_limit, 0);
    END IF;
    p_limit := coalesce(lim, 0);
    limit_nusd := p_limit;
    IF p_limit > 0 THEN
        headroom := p_limit - m.month_spent_nusd - m.leased_nusd;
        IF headroom < avail THEN
            avail := headroom;
            month_bound := true;
        END IF;
    END IF;
    granted := least(p_want, greatest(avail / 2, p_min), avail);
    IF granted < p_min OR granted <= 0 THEN
        granted := 0;
        SELECT epoch INTO lease_epoch FROM cluster_leases
         WHERE org_id = p_org AND node_id = p_node;
        RETURN;
    END IF;
    UPDATE cluster_money SET leased_nusd = leased_nusd + granted WHERE org_id = p_org;
    INSERT INTO cluster_leases AS l (org_id, node_id, amount_nusd, epoch, expires_at)
    VALUES (p_org, p_node, granted, nextval('cluster_lease_epochs'),
            now() + p_ttl_ms * interval '1 millisecond')
    ON CONFLICT (org_id, node_id) DO UPDATE
        SET amount_nusd = l.amount_nusd + excluded.amount_nusd, expires_at = excluded.expires_at
    RETURNING l.epoch INTO lease_epoch;
    free_nusd := free_nusd - granted;
END;
$$;

CREATE OR REPLACE FUNCTION gh_ws_lease_take(p_ws text, p_org text, p_node text, p_want bigint,
                                 p_min bigint, p_month integer, p_month_start timestamptz,
                                 p_ttl_ms bigint, OUT granted bigint, OUT lease_epoch bigint,
                                 OUT headroom_nusd bigint, OUT limit_nusd bigint)
LANGUAGE plpgsql AS $$
DECLARE
    m cluster_ws_money%ROWTYPE;
    avail bigint;
BEGIN
    granted := 0;
    headroom_nusd := 0;
    SELECT wl.monthly_spend_limit_nusd INTO limit_nusd FROM workspace_limits wl
     WHERE wl.workspace_id = p_ws AND wl.org_id = p_org;
    limit_nusd := coalesce(limit_nusd, 0);
    IF limit_nusd = 0 THEN
        RETURN;
    END IF;
    SELECT * INTO m FROM cluster_ws_money WHERE workspace_id = p_ws FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO cluster_ws_money (workspace_id, org_id, month_key, month_spent_nusd)
        VALUES (p_ws, p_org, p_month, gh_month_spend(p_org, p_ws, p_month_start))
        ON CONFLICT (workspace_id) DO NOTHING;
        SELECT * INTO m FROM cluster_ws_money WHERE workspace_id = p_ws FOR UPDATE;
    END IF;
    IF m.month_key < p_month THEN
        m.month_spent_nusd := 0;
        UPDATE cluster_ws_money SET month_key = p_month, month_spent_nusd = 0
         WHERE workspace_id = p_ws;
    END IF;
    avail := limit_nusd - m.month_spent_nusd - m.leased_nusd;
    headroom_nusd := avail;
    granted := least(p_want, greatest(avail / 2, p_min), avail);
    IF granted < p_min OR granted <= 0 THEN
        granted := 0;
        SELECT epoch INTO lease_epoch FROM cluster_ws_leases
         WHERE workspace_id = p_ws AND node_id = p_node;
        RETURN;
    END IF;
    UPDATE cluster_ws_money SET leased_nusd = leased_nusd + granted WHERE workspace_id = p_ws;
    INSERT INTO cluster_ws_leases AS l (workspace_id, node_id, amount_nusd, epoch, expires_at)
    VALUES (p_ws, p_node, granted, nextval('cluster_lease_epochs'),
            now() + p_ttl_ms * interval '1 millisecond')
    ON CONFLICT (workspace_id, node_id) DO UPDATE
        SET amount_nusd = l.amount_nusd + excluded.amount_nusd, expires_at = excluded.expires_at
    RETURNING l.epoch INTO lease_epoch;
    headroom_nusd := headroom_nusd - granted;
END;
$$;
