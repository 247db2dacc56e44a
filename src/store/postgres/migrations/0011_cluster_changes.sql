-- The change feed of a cluster (docs/architecture.md, "Cluster"). Every change to what the
-- nodes hold in memory (API keys, workspaces and their limits, organizations' limits and
-- tiers, memberships, money other than usage) is written here by a trigger, in the
-- transaction that makes it, and announced with NOTIFY gatehouse_changes. Each node applies
-- the rows past its watermark: on the notification, or every [cluster] poll_ms should one be
-- lost. A notification carries the change itself, and a node applies it from there when it
-- follows the last one it applied; after a gap (a notification lost, or a seq a rolled-back
-- transaction took) the node reads the table.
--
-- The watermark is exact because seq is taken under the store's write lock (the transaction
-- advisory lock every write transaction takes at BEGIN): a statement that fires these
-- triggers takes it first too (the BEFORE STATEMENT triggers below, before any row lock, so
-- the lock order is the same as BEGIN's). Writers are serialized, so seq grows in commit
-- order: when a node reads seq N, every change below N is committed and visible.
--
-- A session may set gatehouse.cluster_notify = off: its changes are written but not
-- announced (tests of the poll fallback).
CREATE TABLE cluster_changes (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('key', 'workspace', 'org', 'money', 'member')),
    id         text NOT NULL,
    org_id     text,
    changed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX cluster_changes_at ON cluster_changes (changed_at);

-- 29106784831108197 is the store's write lock (src/store/postgres/pg_int.h).
CREATE FUNCTION gh_cluster_lock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(29106784831108197);
    RETURN NULL;
END;
$$;

CREATE FUNCTION gh_cluster_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r record;
    k text := TG_ARGV[0];
    s bigint;
    at_us bigint;
    change_id text;
    change_org text;
BEGIN
    IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
    IF TG_TABLE_NAME = 'keys' OR TG_TABLE_NAME = 'workspaces' THEN
        change_id := r.id; change_org := r.org_id;
    ELSIF TG_TABLE_NAME = 'workspace_limits' THEN
        change_id := r.workspace_id; change_org := r.org_id;
    ELSIF TG_TABLE_NAME = 'organizations' THEN
        change_id := r.id; change_org := r.id;
    ELSIF TG_TABLE_NAME = 'org_limits' THEN
        change_id := r.org_id; change_org := r.org_id;
    ELSIF TG_TABLE_NAME = 'memberships' THEN
        change_id := r.account_id; change_org := r.org_id;
    ELSE -- ledger_entries
        change_id := r.id::text; change_org := r.org_id;
    END IF;
    PERFORM pg_advisory_xact_lock(29106784831108197); -- held already: BEFORE STATEMENT
    INSERT INTO cluster_changes (kind, id, org_id, changed_at)
        VALUES (k, change_id, change_org, clock_timestamp())
        RETURNING seq, floor(extract(epoch FROM changed_at) * 1000000)::bigint INTO s, at_us;
    -- The change itself rides along ("seq at_us kind id org"; ids hold no spaces), so a node
    -- that has applied everything before it needs no read of the table.
    IF coalesce(current_setting('gatehouse.cluster_notify', true), '') <> 'off' THEN
        PERFORM pg_notify('gatehouse_changes',
                          concat_ws(' ', s, at_us, k, change_id, coalesce(change_org, '')));
    END IF;
    RETURN NULL;
END;
$$;

-- Keys: a new key, and a change of status or workspace (not last_used_at, not the name).
CREATE TRIGGER keys_cluster_lock BEFORE INSERT OR UPDATE OF status, workspace_id ON keys
    FOR EACH STATEMENT EXECUTE FUNCTION gh_cluster_lock();
CREATE TRIGGER keys_cluster_change AFTER INSERT OR UPDATE OF status, workspace_id ON keys
    FOR EACH ROW EXECUTE FUNCTION gh_cluster_change('key');

CREATE TRIGGER workspaces_cluster_lock BEFORE INSERT OR UPDATE OF archived_at ON workspaces
    FOR EACH STATEMENT EXECUTE FUNCTION gh_cluster_lock();
CREATE TRIGGER workspaces_cluster_change AFTER INSERT OR UPDATE OF archived_at ON workspaces
    FOR EACH ROW EXECUTE FUNCTION gh_cluster_change('workspace');

CREATE TRIGGER workspace_limits_cluster_lock BEFORE INSERT OR UPDATE OR DELETE
    ON workspace_limits FOR EACH STATEMENT EXECUTE FUNCTION gh_cluster_lock();
CREATE TRIGGER workspace_limits_cluster_change AFTER INSERT OR UPDATE OR DELETE
    ON workspace_limits FOR EACH ROW EXECUTE FUNCTION gh_cluster_change('workspace');

CREATE TRIGGER organizations_cluster_lock BEFORE INSERT ON organizations
    FOR EACH STATEMENT EXECUTE FUNCTION gh_cluster_lock();
CREATE TRIGGER organizations_cluster_change AFTER INSERT ON organizations
    FOR EACH ROW EXECUTE FUNCTION gh_cluster_change('org');

CREATE TRIGGER org_limits_cluster_lock BEFORE INSERT OR UPDATE OR DELETE ON org_limits
    FOR EACH STATEMENT EXECUTE FUNCTION gh_cluster_lock();
CREATE TRIGGER org_limits_cluster_change AFTER INSERT OR UPDATE OR DELETE ON org_limits
    FOR EACH ROW EXECUTE FUNCTION gh_cluster_change('org');

CREATE TRIGGER memberships_cluster_lock BEFORE UPDATE OF role OR DELETE ON memberships
    FOR EACH STATEMENT EXECUTE FUNCTION gh_cluster_lock();
CREATE TRIGGER memberships_cluster_change AFTER UPDATE OF role OR DELETE ON memberships
    FOR EACH ROW EXECUTE FUNCTION gh_cluster_change('member');

-- Money: every ledger entry but usage (the usage writers' own, many a second, which each
-- node's admission reads by the ledger's watermark anyway).
CREATE TRIGGER ledger_entries_cluster_lock BEFORE INSERT ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION gh_cluster_lock();
CREATE TRIGGER ledger_entries_cluster_change AFTER INSERT ON ledger_entries
    FOR EACH ROW WHEN (NEW.kind <> 'usage') EXECUTE FUNCTION gh_cluster_change('money');
