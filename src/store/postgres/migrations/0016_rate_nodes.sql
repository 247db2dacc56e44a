-- Rate limits while PostgreSQL is away (issue 14): a node cut off from the database keeps
-- admitting within a safe local share of each rate limit, limit / N per minute, where N is the
-- number of nodes that may be admitting at the same time. A node can only admit a priced
-- request within a money lease, so N is the number of nodes that held a money lease in the
-- last minute, as the database sees it; every successful draw brings it back to the node
-- (core/limits.h, "Rate shares ... while draws fail").
--
-- gh_rate_draw keeps its arguments and its rows, and adds one more: ord 0, whose `granted` is
-- N (at least 1: the node drawing). The draw itself is unchanged (now gh_rate_draw_rows).
ALTER FUNCTION gh_rate_draw(text[], text[], text[], smallint[], bigint[], bigint[], bigint[],
                            bigint[], bigint[]) RENAME TO gh_rate_draw_rows;

CREATE FUNCTION gh_rate_draw(p_org text[], p_ws text[], p_class text[], p_kind smallint[],
                             p_limit bigint[], p_cap bigint[], p_want bigint[],
                             p_min bigint[], p_back bigint[])
RETURNS TABLE (ord bigint, granted bigint)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY SELECT d.ord, d.granted
                   FROM gh_rate_draw_rows(p_org, p_ws, p_class, p_kind, p_limit, p_cap, p_want,
                                          p_min, p_back) AS d;
    ord := 0;
    SELECT greatest(count(*), 1) INTO granted
      FROM (SELECT DISTINCT node_id FROM cluster_leases
             WHERE expires_at > now() - interval '1 minute') AS n;
    RETURN NEXT;
END
$$;
