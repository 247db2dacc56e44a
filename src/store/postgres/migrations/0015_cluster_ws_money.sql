-- Cluster money: workspace monthly limits through leases (issue 14; docs/architecture.md,
-- "Cluster: money").
--
-- A workspace with a monthly spend limit is leased like its organization's money (0012): a
-- node admits a request of that workspace only within its lease of the organization AND its
-- lease of the workspace. One row per limited workspace carries how much of its headroom is
-- leased and its spend of the month:
--
--   headroom    = workspace_limits.monthly_spend_limit_nusd - month_spent_nusd - leased_nusd
--   leased_nusd = sum of its cluster_ws_leases rows
--
-- gh_ws_lease_take grows a node's lease only within the headroom, under the row lock of
-- cluster_ws_money (and the global write lock every write transaction takes), so
-- month spend + sum(leases) <= limit holds by construction. The limit is read from
-- workspace_limits inside it, so a node that has not yet heard of a lowered limit cannot lease
-- past it. The usage writer's insert of usage events shrinks the node's lease by each cost
-- and adds it to the month's spend, in the same statement (a trigger: the events carry their
-- node and workspace), so the transaction that draws the ledger settles the workspace too.
-- Rows expire and are swept with the organization's (gh_lease_sweep below).

CREATE TABLE cluster_ws_money (
    workspace_id     text PRIMARY KEY REFERENCES workspaces (id),
    org_id           text NOT NULL REFERENCES organizations (id),
    leased_nusd      bigint NOT NULL DEFAULT 0 CHECK (leased_nusd >= 0),
    month_key        integer NOT NULL CHECK (month_key >= 197001),
    month_spent_nusd bigint NOT NULL DEFAULT 0 CHECK (month_spent_nusd >= 0)
);

CREATE TABLE cluster_ws_leases (
    workspace_id text NOT NULL REFERENCES workspaces (id),
    node_id      text NOT NULL CHECK (length(node_id) BETWEEN 1 AND 64),
    amount_nusd  bigint NOT NULL CHECK (amount_nusd >= 0),
    epoch        bigint NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, node_id)
);
CREATE INDEX cluster_ws_leases_node ON cluster_ws_leases (node_id);
CREATE INDEX cluster_ws_leases_expiry ON cluster_ws_leases (expires_at);

-- Grows node p_node's lease of workspace p_ws by at most p_want, within the workspace's
-- monthly headroom, never more than half of it unless half is below p_min, and nothing at all
-- if less than p_min can be had. Renews the expiry. Returns what was granted, the lease's
-- epoch (NULL: no lease row), the headroom after it and the limit (0: the workspace has no
-- monthly limit; nothing is leased and the node admits on its organization's lease alone).
CREATE FUNCTION gh_ws_lease_take(p_ws text, p_org text, p_node text, p_want bigint,
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
    INSERT INTO cluster_ws_money (workspace_id, org_id, month_key, month_spent_nusd)
    SELECT p_ws, p_org, p_month, coalesce(sum(cost_nusd), 0)::bigint FROM usage_events
     WHERE workspace_id = p_ws AND created_at >= p_month_start
    ON CONFLICT (workspace_id) DO NOTHING;
    SELECT * INTO m FROM cluster_ws_money WHERE workspace_id = p_ws FOR UPDATE;
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

-- Node p_node gives back up to p_amount of its lease of workspace p_ws, if the lease is still
-- the one of epoch p_epoch. Returns what was given back, or -1 when the lease is gone.
CREATE FUNCTION gh_ws_lease_return(p_ws text, p_node text, p_epoch bigint, p_amount bigint)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    held bigint;
    give bigint;
BEGIN
    SELECT amount_nusd INTO held FROM cluster_ws_leases
     WHERE workspace_id = p_ws AND node_id = p_node AND epoch = p_epoch FOR UPDATE;
    IF NOT FOUND THEN
        RETURN -1;
    END IF;
    give := least(held, greatest(p_amount, 0));
    UPDATE cluster_ws_leases SET amount_nusd = amount_nusd - give
     WHERE workspace_id = p_ws AND node_id = p_node;
    UPDATE cluster_ws_money SET leased_nusd = leased_nusd - give WHERE workspace_id = p_ws;
    RETURN give;
END;
$$;

-- Settlement: the usage events a statement inserted (the writer's COPY or its INSERT for a
-- replay; events already stored are not inserted again, so a replay settles once) shrink
-- their node's lease of their workspace by their cost (by what it holds, at most) and add
-- the cost to the workspace's month spend. Only workspaces that were ever leased have a
-- cluster_ws_money row; the others cost one index probe per statement and workspace.
CREATE FUNCTION gh_ws_lease_settle_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r record;
    held bigint;
    shrink bigint;
    mk integer := to_char(now() AT TIME ZONE 'UTC', 'YYYYMM')::integer;
BEGIN
    FOR r IN SELECT n.workspace_id, n.node_id, sum(n.cost_nusd)::bigint AS cost
               FROM new_events n JOIN cluster_ws_money m ON m.workspace_id = n.workspace_id
              GROUP BY n.workspace_id, n.node_id
    LOOP
        shrink := 0;
        SELECT amount_nusd INTO held FROM cluster_ws_leases
         WHERE workspace_id = r.workspace_id AND node_id = r.node_id FOR UPDATE;
        IF FOUND THEN
            shrink := least(held, r.cost);
            UPDATE cluster_ws_leases SET amount_nusd = amount_nusd - shrink
             WHERE workspace_id = r.workspace_id AND node_id = r.node_id;
        END IF;
        UPDATE cluster_ws_money
           SET leased_nusd = leased_nusd - shrink,
               month_spent_nusd = CASE WHEN month_key >= mk THEN month_spent_nusd + r.cost
                                       ELSE r.cost END,
               month_key = greatest(month_key, mk)
         WHERE workspace_id = r.workspace_id;
    END LOOP;
    RETURN NULL;
END;
$$;

CREATE TRIGGER usage_events_ws_lease_settle AFTER INSERT ON usage_events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION gh_ws_lease_settle_events();

-- The sweep of 0012, now over both kinds of lease rows: expired ones (p_node NULL), or every
-- lease of node p_node (a node starting afresh or stopping).
CREATE OR REPLACE FUNCTION gh_lease_sweep(p_node text, p_margin_ms bigint, OUT swept bigint,
                                          OUT swept_nusd bigint)
LANGUAGE plpgsql AS $$
DECLARE
    ws_n bigint;
    ws_nusd bigint;
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
    WITH gone AS (
        DELETE FROM cluster_ws_leases
         WHERE (p_node IS NULL AND expires_at < now() - p_margin_ms * interval '1 millisecond')
            OR node_id = p_node
        RETURNING workspace_id, amount_nusd),
    per_ws AS (SELECT workspace_id, sum(amount_nusd)::bigint AS amount, count(*) AS n
                 FROM gone GROUP BY workspace_id),
    upd AS (UPDATE cluster_ws_money m SET leased_nusd = m.leased_nusd - p.amount
              FROM per_ws p WHERE m.workspace_id = p.workspace_id RETURNING p.amount, p.n)
    SELECT coalesce(sum(n), 0)::bigint, coalesce(sum(amount), 0)::bigint
      INTO ws_n, ws_nusd FROM upd;
    swept := swept + ws_n;
    swept_nusd := swept_nusd + ws_nusd;
END;
$$;
