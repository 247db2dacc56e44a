-- The usage writer's ledger draws in one statement (gh_store_usage_charge). Until now each
-- organization of a batch cost about seven round trips (a savepoint, the first open lot, the
-- entry, the lot's update, the lease settlement, the spend rules, the release): with 50
-- organizations in every batch, 45 ms of a batch (bench/README.md). This function does, for
-- every organization of the batch, what billing's draw did statement by statement: its cost
-- drawn from its open lots, expiring first first (an entry of kind usage per lot), what no
-- lot covers in one entry with no lot, its balance lowered by the cost, and with p_node the
-- node's lease settled (gh_lease_settle, 0012). An organization that does not exist is
-- skipped and returned (the caller logs it): nothing is written for it and the others are
-- charged, as the savepoint per organization did, without a subtransaction per organization.
-- Organizations are never deleted and the usage writer holds the write lock, so the check
-- cannot go stale before the inserts.
CREATE FUNCTION gh_usage_charge(p_orgs text[], p_costs bigint[], p_refs text[], p_now bigint,
                                p_node text, p_month integer)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    at timestamptz := to_timestamp(p_now);
    i integer;
    owed bigint;
    take bigint;
    lot record;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_orgs, 1), 0) LOOP
        IF NOT EXISTS (SELECT 1 FROM organizations WHERE id = p_orgs[i]) THEN
            RETURN NEXT p_orgs[i];
            CONTINUE;
        END IF;
        owed := p_costs[i];
        FOR lot IN SELECT id, remaining_nusd FROM credit_lots
                    WHERE org_id = p_orgs[i] AND remaining_nusd > 0 AND expires_at > at
                    ORDER BY expires_at, seq LOOP
            EXIT WHEN owed <= 0;
            take := least(owed, lot.remaining_nusd);
            INSERT INTO ledger_entries (org_id, lot_id, kind, amount_nusd, reference, created_at)
            VALUES (p_orgs[i], lot.id, 'usage', -take, p_refs[i], at);
            UPDATE credit_lots SET remaining_nusd = remaining_nusd - take WHERE id = lot.id;
            owed := owed - take;
        END LOOP;
        IF owed > 0 THEN
            INSERT INTO ledger_entries (org_id, lot_id, kind, amount_nusd, reference, created_at)
            VALUES (p_orgs[i], NULL, 'usage', -owed, p_refs[i], at);
        END IF;
        INSERT INTO billing_accounts AS b (org_id, balance_nusd, updated_at)
        VALUES (p_orgs[i], -p_costs[i], at)
        ON CONFLICT (org_id) DO UPDATE SET balance_nusd = b.balance_nusd + excluded.balance_nusd;
        IF p_node IS NOT NULL THEN
            PERFORM gh_lease_settle(p_orgs[i], p_node, p_costs[i], p_month);
        END IF;
    END LOOP;
END;
$$;
