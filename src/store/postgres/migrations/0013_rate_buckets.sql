-- Cluster-wide rate buckets (issue 14, rate limits across nodes). One row per bucket: an
-- organization's or a workspace's requests, input tokens or output tokens per minute for one
-- model class. Nodes draw grants from these rows ahead of need (core/rate_lease.c); a node
-- admits from a bucket only what it holds of it, so the cluster as a whole never passes the
-- bucket. The level is kept as gh_bucket keeps it (lib/bucket.h): in 1/60,000,000 of a token,
-- refilled by limit_per_min units per microsecond of PostgreSQL's clock, so refill is exact
-- integer arithmetic.
CREATE TABLE rate_buckets (
    org_id text NOT NULL,
    ws_id text NOT NULL,                        -- '' for the organization's own bucket
    model_class text NOT NULL,
    kind smallint NOT NULL CHECK (kind BETWEEN 0 AND 2), -- requests, input, output tokens
    limit_per_min bigint NOT NULL CHECK (limit_per_min > 0),
    capacity bigint NOT NULL CHECK (capacity > 0),      -- tokens
    level bigint NOT NULL,                      -- tokens * 60,000,000; 0 .. capacity
    updated_us bigint NOT NULL,                 -- microseconds since the epoch, PostgreSQL's
    PRIMARY KEY (org_id, ws_id, model_class, kind)
);

-- Draws from many buckets in one statement (see gh_store_rate_draw in store/store.h). Rows are
-- locked in key order, so two nodes drawing at once never deadlock; nothing else is locked (in
-- particular not the installation's write lock). The time is the statement's start, which is
-- after the node noted the draw's start: a grant's life, counted by the node from that earlier
-- moment, never extends past what the bucket's refill accounted for.
CREATE FUNCTION gh_rate_draw(p_org text[], p_ws text[], p_class text[], p_kind smallint[],
                             p_limit bigint[], p_cap bigint[], p_want bigint[],
                             p_min bigint[], p_back bigint[])
RETURNS TABLE (ord bigint, granted bigint)
LANGUAGE plpgsql AS $$
DECLARE
    u constant bigint := 60000000;
    t_now bigint := floor(extract(epoch FROM now()) * 1000000)::bigint;
    r record;
    b rate_buckets%ROWTYPE;
    lvl bigint;
    have bigint;
    g bigint;
BEGIN
    FOR r IN
        SELECT x.o, x.w, x.c, x.k, x.lim, x.cap, x.want, x.want_min, x.back, x.n
          FROM unnest(p_org, p_ws, p_class, p_kind, p_limit, p_cap, p_want, p_min, p_back)
               WITH ORDINALITY AS x(o, w, c, k, lim, cap, want, want_min, back, n)
         ORDER BY x.o COLLATE "C", x.w COLLATE "C", x.c COLLATE "C", x.k
    LOOP
        INSERT INTO rate_buckets
            VALUES (r.o, r.w, r.c, r.k, r.lim, r.cap, r.cap * u, t_now)
            ON CONFLICT DO NOTHING;
        SELECT * INTO b FROM rate_buckets
         WHERE org_id = r.o AND ws_id = r.w AND model_class = r.c AND kind = r.k
           FOR UPDATE;
        lvl := b.level;
        -- Refill at the limit the bucket had, up to its capacity (two minutes fill any).
        lvl := least(lvl + least(greatest(t_now - b.updated_us, 0), 120000000) * b.limit_per_min,
                     b.capacity * u);
        IF b.limit_per_min <> r.lim OR b.capacity <> r.cap THEN
            -- A changed limit keeps what was used: the new capacity minus what was missing.
            lvl := greatest(r.cap * u - (b.capacity * u - lvl), 0);
        END IF;
        -- Unused tokens a node gives back: never above the capacity, so giving back can only
        -- undo a draw, never add to what the bucket could have held.
        lvl := least(lvl + greatest(r.back, 0) * u, r.cap * u);
        have := lvl / u;
        IF have >= r.want THEN
            g := r.want;
        ELSIF have >= greatest(r.want_min, 1) THEN
            g := have;
        ELSE
            g := 0;
        END IF;
        UPDATE rate_buckets
           SET level = lvl - g * u, limit_per_min = r.lim, capacity = r.cap,
               updated_us = greatest(b.updated_us, t_now)
         WHERE org_id = r.o AND ws_id = r.w AND model_class = r.c AND kind = r.k;
        ord := r.n;
        granted := g;
        RETURN NEXT;
    END LOOP;
END
$$;
