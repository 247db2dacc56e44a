-- Cluster money: leases (issue 14; docs/architecture.md, "Cluster: money").
--
-- On a cluster every node admits model requests in memory against its LEASE of an
-- organization's money: what the database has set aside for that node to spend without asking.
-- One row per organization carries how much of its money is leased and its spend of the month:
--
--   free     = billing_accounts.balance_nusd - cluster_money.leased_nusd
--   headroom = monthly limit - month_spent_nusd - leased_nusd        (when there is a limit)
--   leased_nusd = sum of its cluster_leases rows
--
-- A lease is ONE number that counts against both the balance and the monthly headroom: what a
-- node may spend must fit both, so one lease row per (organization, node) keeps both exact.
-- gh_lease_take grows a lease only by what is free AND within the headroom, under the row
-- lock of cluster_money (and the global write lock every write transaction takes), so
-- sum(leases) <= balance and month spend + sum(leases) <= limit hold by construction.
-- gh_lease_settle, in the usage writer's transaction, shrinks the node's lease by the cost it
-- charged to the ledger, so the free part never changes when leased money is spent.
--
-- Expiry and fencing: a lease row has an epoch (new each time the row is created) and an
-- expiry; its node renews it well before. A node stops admitting on it before expiry minus a
-- skew margin by its own clock; gh_lease_sweep returns rows past expiry plus the margin to
-- free. A node that finds its row gone (a new epoch) knows its lease lapsed.

CREATE TABLE cluster_money (
    org_id           text PRIMARY KEY REFERENCES organizations (id),
    leased_nusd      bigint NOT NULL DEFAULT 0 CHECK (leased_nusd >= 0),
    month_key        integer NOT NULL CHECK (month_key >= 197001),
    month_spent_nusd bigint NOT NULL DEFAULT 0 CHECK (month_spent_nusd >= 0)
);

CREATE TABLE cluster_leases (
    org_id      text NOT NULL REFERENCES organizations (id),
    node_id     text NOT NULL CHECK (length(node_id) BETWEEN 1 AND 64),
    amount_nusd bigint NOT NULL CHECK (amount_nusd >= 0),
    epoch       bigint NOT NULL,
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (org_id, node_id)
);
CREATE INDEX cluster_leases_node ON cluster_leases (node_id);
CREATE INDEX cluster_leases_expiry ON cluster_leases (expires_at);
CREATE SEQUENCE cluster_lease_epochs;

-- Grows node p_node's lease of p_org by at most p_want: by what is free and within the
-- monthly headroom (p_limit > 0), never more than half of that unless half is below p_min,
-- and nothing at all if less than p_min can be had. Renews the expiry. Returns what was
-- granted, the lease's epoch (NULL: no lease row), what is free after it and whether the
-- monthly headroom was the tighter bound. The monthly limit is the lower of p_limit and the
-- organization's own limit in org_limits; limit_nusd says which applied (0: none).
CREATE FUNCTION gh_lease_take(p_org text, p_node text, p_want bigint, p_min bigint,
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
    INSERT INTO cluster_money (org_id, month_key, month_spent_nusd)
    SELECT p_org, p_month, coalesce(sum(cost_nusd), 0)::bigint FROM usage_events
     WHERE org_id = p_org AND created_at >= p_month_start
    ON CONFLICT (org_id) DO NOTHING;
    SELECT * INTO m FROM cluster_money WHERE org_id = p_org FOR UPDATE;
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

-- The usage writer's part, in the transaction that draws p_cost from the ledger: node
-- p_node's lease of p_org shrinks by the cost (by what it holds, at most), and so does the
-- leased total; the month's spend grows by the cost. Returns what the lease shrank by.
CREATE FUNCTION gh_lease_settle(p_org text, p_node text, p_cost bigint, p_month integer)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    held bigint;
    shrink bigint := 0;
BEGIN
    SELECT amount_nusd INTO held FROM cluster_leases
     WHERE org_id = p_org AND node_id = p_node FOR UPDATE;
    IF FOUND THEN
        shrink := least(held, p_cost);
        UPDATE cluster_leases SET amount_nusd = amount_nusd - shrink
         WHERE org_id = p_org AND node_id = p_node;
    END IF;
    UPDATE cluster_money
       SET leased_nusd = leased_nusd - shrink,
           month_spent_nusd = CASE WHEN month_key >= p_month THEN month_spent_nusd + p_cost
                                   ELSE p_cost END,
           month_key = greatest(month_key, p_month)
     WHERE org_id = p_org;
    RETURN shrink;
END;
$$;

-- Node p_node gives back up to p_amount of its lease of p_org, if the lease is still the one
-- of epoch p_epoch. Returns what was given back, or -1 when the lease is gone (it lapsed and
-- was swept; a later row has another epoch).
CREATE FUNCTION gh_lease_return(p_org text, p_node text, p_epoch bigint, p_amount bigint)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    held bigint;
    give bigint;
BEGIN
    SELECT amount_nusd INTO held FROM cluster_leases
     WHERE org_id = p_org AND node_id = p_node AND epoch = p_epoch FOR UPDATE;
    IF NOT FOUND THEN
        RETURN -1;
    END IF;
    give := least(held, greatest(p_amount, 0));
    UPDATE cluster_leases SET amount_nusd = amount_nusd - give
     WHERE org_id = p_org AND node_id = p_node;
    UPDATE cluster_money SET leased_nusd = leased_nusd - give WHERE org_id = p_org;
    RETURN give;
END;
$$;

-- Deletes leases that expired more than p_margin_ms ago (p_node NULL), or every lease of node
-- p_node (a node starting afresh), and returns their money to free. Returns how many leases
-- and how much money.
CREATE FUNCTION gh_lease_sweep(p_node text, p_margin_ms bigint, OUT swept bigint,
                               OUT swept_nusd bigint)
LANGUAGE plpgsql AS $$
BEGIN
    WITH gone AS (
        DELETE FROM cluster_leases
         WHERE (p_node IS NULL AND expires_at < now() - p_margin_ms * interval '1 millisecond')
            OR node_id = p_node
        RETURNING org_id, amount_nusd),
    per_org AS (SELECT org_id, sum(amount_nusd)::bigint AS amount, count(*) AS n
                  FROM gone GROUP BY org_id),
    upd AS (UPDATE cluster_money m SET leased_nusd = m.leased_nusd - p.amount
              FROM per_org p WHERE m.org_id = p.org_id RETURNING p.amount, p.n)
    SELECT coalesce(sum(n), 0)::bigint, coalesce(sum(amount), 0)::bigint
      INTO swept, swept_nusd FROM upd;
END;
$$;
