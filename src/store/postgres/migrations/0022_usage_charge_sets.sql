-- The usage writer's ledger draws as a few set operations instead of a loop (0020 did each
-- organization of a batch statement by statement: about ten statements an organization, a
-- fifth of the server's time in a batch of 2,000 events over 50 organizations). Same
-- results: for every organization of the batch that exists, its cost drawn from its open lots,
-- expiring first first (an entry of kind usage per lot it takes from), what no lot covers in
-- one entry with no lot, its balance lowered by the cost, and with p_node the node's lease
-- settled (gh_lease_settle, 0012). The entries are numbered in the order 0020 wrote them: by
-- organization as the batch names them, its lots' entries in drawing order, then its entry
-- with no lot. An organization that does not exist is skipped and returned. The batch names
-- each organization once (the writer sums its events per organization); a repeat is refused,
-- since the lots' running sums below would count its lots twice.
CREATE OR REPLACE FUNCTION gh_usage_charge(p_orgs text[], p_costs bigint[], p_refs text[],
                                           p_now bigint, p_node text, p_month integer)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    at timestamptz := to_timestamp(p_now);
BEGIN
    IF (SELECT count(DISTINCT o) FROM unnest(p_orgs) o) <> coalesce(array_length(p_orgs, 1), 0)
    THEN
        RAISE EXCEPTION 'gh_usage_charge: an organization is named twice in one batch';
    END IF;
    RETURN QUERY SELECT t.o FROM unnest(p_orgs) WITH ORDINALITY t(o, i)
                  WHERE NOT EXISTS (SELECT 1 FROM organizations g WHERE g.id = t.o)
                  ORDER BY t.i;
    -- b: the batch's organizations that exist; open: their open lots in drawing order, with
    -- what the lots before each one hold; takes: what each lot gives (a lot is reached while
    -- the lots before it hold less than the cost).
    WITH b AS (SELECT t.o, t.c, t.r, t.i
                 FROM unnest(p_orgs, p_costs, p_refs) WITH ORDINALITY t(o, c, r, i)
                WHERE EXISTS (SELECT 1 FROM organizations g WHERE g.id = t.o)),
    open AS (SELECT b.i, b.o, b.c, b.r, l.id, l.remaining_nusd AS rem, l.expires_at, l.seq,
                    (sum(l.remaining_nusd) OVER (PARTITION BY b.i ORDER BY l.expires_at, l.seq)
                     - l.remaining_nusd)::bigint AS before
               FROM b JOIN credit_lots l ON l.org_id = b.o AND l.remaining_nusd > 0
                                        AND l.expires_at > at),
    takes AS (SELECT i, o, r, id, least(rem, c - before) AS take, expires_at, seq
                FROM open WHERE before < c),
    lots AS (UPDATE credit_lots l SET remaining_nusd = l.remaining_nusd - t.take
               FROM takes t WHERE l.id = t.id),
    owed AS (SELECT b.i, b.o, b.r,
                    b.c - coalesce((SELECT sum(t.take) FROM takes t WHERE t.i = b.i), 0)::bigint
                        AS rest
               FROM b),
    balances AS (INSERT INTO billing_accounts AS a (org_id, balance_nusd, updated_at)
                 SELECT o, -c, at FROM b ORDER BY o
                 ON CONFLICT (org_id) DO UPDATE SET balance_nusd = a.balance_nusd
                                                                   + excluded.balance_nusd)
    INSERT INTO ledger_entries (org_id, lot_id, kind, amount_nusd, reference, created_at)
    SELECT e.o, e.lot, 'usage', e.amount, e.r, at
      FROM (SELECT i, 0 AS part, expires_at, seq, o, id AS lot, -take AS amount, r FROM takes
            UNION ALL
            SELECT i, 1, NULL, NULL, o, NULL, -rest, r FROM owed WHERE rest > 0) e
     ORDER BY e.i, e.part, e.expires_at, e.seq;
    IF p_node IS NOT NULL THEN
        PERFORM gh_lease_settle(t.o, p_node, t.c, p_month)
           FROM unnest(p_orgs, p_costs) WITH ORDINALITY t(o, c, i)
          WHERE EXISTS (SELECT 1 FROM organizations g WHERE g.id = t.o)
          ORDER BY t.i;
    END IF;
END;
$$;
