/* Usage rollups (PostgreSQL backend): the minute, hour and day sums that usage reports read.
 *
 * The events a batch inserted are sorted by the minute table's key (organization, minute,
 * workspace, key, model), so the events of one minute row are neighbours, and summed in C
 * into one row per distinct key (late events, for the hour and day tables, are sorted by
 * series and time, as the SQLite backend sorts them for all three). A table then gets ONE
 * upsert for the whole batch: its rows travel as array parameters, unnested, and
 * `ON CONFLICT ... DO UPDATE` adds them to the stored sums. The keys are distinct within a
 * statement (PostgreSQL refuses to update one row twice in one statement), which the summing
 * guarantees. Key columns store "" rather than NULL, as in SQLite.
 *
 * The writer's transaction upserts only the MINUTE rows of its events; the hour and day rows
 * are rolled forward from minute rows (gh_pgs_rollups_roll, migration 0017 and
 * docs/architecture.md say why): usage_rollup_watermark.rolled_before is the mark below which
 * every minute bucket is summed into the hour and day tables. The writer upserts its minute
 * rows (each writer its own: they name its node and lane, migration 0021, so a staged lane
 * never waits on another's rows), then, under the write lock, reads the mark FOR SHARE;
 * events whose minute is before it (late ones) go to the hour and day tables too, in the
 * same transaction (gh_store_rollups_add_parts: the two parts apart). The roll forward locks
 * the mark FOR UPDATE, sums the minute rows between the old mark and the new into the hour
 * and day tables and moves the mark, so a minute row is counted in them once. Hour and day
 * reports read, in one statement (one snapshot), the hour or day rows plus the minute rows at
 * or after the mark, grouped to the report's width. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/yield.h"
#include "store/postgres/pg_array.h"
#include "store/postgres/pg_int.h"

#define ROLLUP_COLS                                                                            \
    "org_id, bucket_start, workspace_id, key_id, model, requests, input_tokens, "              \
    "output_tokens, cache_creation_tokens, cache_read_tokens, input_cost_nusd, "              \
    "output_cost_nusd, cache_creation_cost_nusd, cache_read_cost_nusd"

/* The minute table's rows also name the writer that wrote them (node and lane, migration
 * 0021): $15 and $16, the same for every row of a statement. */
#define ROLLUP_UPSERT_AS(table, writer_cols, writer_vals, key)                                  \
    "INSERT INTO " table " AS r (" ROLLUP_COLS writer_cols ") "                               \
    "SELECT o, to_timestamp(b), w, k, m, n, it, ot, cct, crt, ic, oc, ccc, crc" writer_vals   \
    " FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], "             \
    "$6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], "  \
    "$12::bigint[], $13::bigint[], $14::bigint[]) "                                           \
    "AS t(o, b, w, k, m, n, it, ot, cct, crt, ic, oc, ccc, crc) "                              \
    "ON CONFLICT (org_id, bucket_start, workspace_id, key_id, model" key ") DO UPDATE SET "   \
    "requests = r.requests + excluded.requests, "                                             \
    "input_tokens = r.input_tokens + excluded.input_tokens, "                                 \
    "output_tokens = r.output_tokens + excluded.output_tokens, "                              \
    "cache_creation_tokens = r.cache_creation_tokens + excluded.cache_creation_tokens, "      \
    "cache_read_tokens = r.cache_read_tokens + excluded.cache_read_tokens, "                  \
    "input_cost_nusd = r.input_cost_nusd + excluded.input_cost_nusd, "                        \
    "output_cost_nusd = r.output_cost_nusd + excluded.output_cost_nusd, "                     \
    "cache_creation_cost_nusd = r.cache_creation_cost_nusd + "                                \
    "excluded.cache_creation_cost_nusd, "                                                     \
    "cache_read_cost_nusd = r.cache_read_cost_nusd + excluded.cache_read_cost_nusd"

#define ROLLUP_UPSERT(table) ROLLUP_UPSERT_AS(table, "", "", "")

static const char upsert_minute[] = ROLLUP_UPSERT_AS(
    "usage_rollup_minute", ", node_id, lane", ", $15::text, $16::text::smallint", ", node_id, lane");
static const char upsert_hour[] = ROLLUP_UPSERT("usage_rollup_hour");
static const char upsert_day[] = ROLLUP_UPSERT("usage_rollup_day");

static const struct {
    const char *table;
    const char *upsert;
    int64_t width_s;
} widths[] = {
    [GH_ROLLUP_MINUTE] = {"usage_rollup_minute", upsert_minute, 60},
    [GH_ROLLUP_HOUR] = {"usage_rollup_hour", upsert_hour, 3600},
    [GH_ROLLUP_DAY] = {"usage_rollup_day", upsert_day, 86400},
};

enum { SUMS = 9, COLS = 5 + SUMS };

static int64_t bucket_of(int64_t created_at_ms, int64_t width_s)
{
    /* Times are after 1970: the division rounds down. */
    assert(created_at_ms >= 0);
    return created_at_ms / 1000 / width_s * width_s;
}

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

/* Orders events by series (organization, workspace, key, model), then time. */
static int cmp_rows(const void *pa, const void *pb)
{
    const gh_usage_row_t *a = *(const gh_usage_row_t *const *)pa;
    const gh_usage_row_t *b = *(const gh_usage_row_t *const *)pb;
    int c;
    if ((c = strcmp(or_empty(a->org_id), or_empty(b->org_id))) ||
        (c = strcmp(or_empty(a->workspace_id), or_empty(b->workspace_id))) ||
        (c = strcmp(or_empty(a->key_id), or_empty(b->key_id))) ||
        (c = strcmp(or_empty(a->model), or_empty(b->model))))
        return c;
    return (a->created_at_ms > b->created_at_ms) - (a->created_at_ms < b->created_at_ms);
}

/* Orders events by the minute table's primary key: organization, minute, workspace, key,
 * model. Events of one minute row are still neighbours (upsert_width sums them), and the
 * upsert then meets the index in its own order: each row lands next to the one before. */
static int cmp_rows_minute(const void *pa, const void *pb)
{
    const gh_usage_row_t *a = *(const gh_usage_row_t *const *)pa;
    const gh_usage_row_t *b = *(const gh_usage_row_t *const *)pb;
    int c = strcmp(or_empty(a->org_id), or_empty(b->org_id));
    if (c)
        return c;
    int64_t x = bucket_of(a->created_at_ms, 60), y = bucket_of(b->created_at_ms, 60);
    if (x != y)
        return (x > y) - (x < y);
    if ((c = strcmp(or_empty(a->workspace_id), or_empty(b->workspace_id))) ||
        (c = strcmp(or_empty(a->key_id), or_empty(b->key_id))) ||
        (c = strcmp(or_empty(a->model), or_empty(b->model))))
        return c;
    return (a->created_at_ms > b->created_at_ms) - (a->created_at_ms < b->created_at_ms);
}

static bool same_series(const gh_usage_row_t *a, const gh_usage_row_t *b)
{
    return !strcmp(or_empty(a->org_id), or_empty(b->org_id)) &&
           !strcmp(or_empty(a->workspace_id), or_empty(b->workspace_id)) &&
           !strcmp(or_empty(a->key_id), or_empty(b->key_id)) &&
           !strcmp(or_empty(a->model), or_empty(b->model));
}

static void sums_add(int64_t s[SUMS], const gh_usage_row_t *r)
{
    const int64_t add[SUMS] = {1,
                               r->input_tokens,
                               r->output_tokens,
                               r->cache_creation_tokens,
                               r->cache_read_tokens,
                               r->input_cost_nusd,
                               r->output_cost_nusd,
                               r->cache_creation_cost_nusd,
                               r->cache_read_cost_nusd};
    for (int i = 0; i < SUMS; i++)
        s[i] += add[i];
}

/* Sums the sorted events into one row per key of width `w` and upserts them all. */
static gh_err_t upsert_width(gh_db_t *db, size_t w, const gh_usage_row_t **order, size_t n,
                             gh_pg_array_t col[COLS])
{
    bool bad = false;
    for (int c = 0; c < COLS; c++)
        gh_pg_array_reset(&col[c]);
    for (size_t i = 0; i < n && !bad;) {
        int64_t bucket = bucket_of(order[i]->created_at_ms, widths[w].width_s);
        int64_t s[SUMS] = {0};
        size_t j = i;
        while (j < n && same_series(order[j], order[i]) &&
               bucket_of(order[j]->created_at_ms, widths[w].width_s) == bucket)
            sums_add(s, order[j++]);
        gh_yield_point();
        const gh_usage_row_t *r = order[i];
        bad |= gh_pg_array_text(&col[0], or_empty(r->org_id)) != GH_OK;
        bad |= gh_pg_array_int(&col[1], bucket) != GH_OK;
        bad |= gh_pg_array_text(&col[2], or_empty(r->workspace_id)) != GH_OK;
        bad |= gh_pg_array_text(&col[3], or_empty(r->key_id)) != GH_OK;
        bad |= gh_pg_array_text(&col[4], or_empty(r->model)) != GH_OK;
        for (int k = 0; k < SUMS; k++)
            bad |= gh_pg_array_int(&col[5 + k], s[k]) != GH_OK;
        i = j;
    }
    const char *p[COLS + 2];
    int lens[COLS + 2];
    for (int c = 0; c < COLS && !bad; c++)
        bad = !(p[c] = gh_pg_array_binary(&col[c], &lens[c]));
    if (bad) {
        gh_log_error("store: the rollups of %zu usage events do not fit a statement", n);
        return GH_EINTERNAL;
    }
    /* The minute rows' writer, as texts (a text parameter's binary form is its bytes). */
    char lane[12];
    int np = COLS;
    if (w == GH_ROLLUP_MINUTE) {
        snprintf(lane, sizeof(lane), "%d", pgs(db)->lane);
        p[np] = gh_pgs_node_id(db);
        lens[np] = (int)strlen(p[np]);
        np++;
        p[np] = lane;
        lens[np] = (int)strlen(lane);
        np++;
    }
    /* In the writer's transaction, which it abandons on any error: no savepoint. */
    return gh_pgs_query_binary(db, widths[w].upsert, np, p, lens, NULL);
}

/* The mark (migration 0017), read FOR SHARE: a roll forward waits for this transaction, and
 * this one for a roll forward under way (then reads the mark it set). */
static gh_err_t mark_for_share(gh_db_t *db, int64_t *mark_s)
{
    static const char sql[] = "SELECT date_part('epoch', rolled_before)::bigint FROM "
                              "usage_rollup_watermark FOR SHARE";
    PGresult *res = NULL;
    gh_err_t rc = gh_pgs_query_fast(db, sql, 0, NULL, &res);
    if (rc)
        return rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        gh_log_error("store: usage_rollup_watermark has no row");
        return GH_ESTORE;
    }
    *mark_s = gh_pgs_col_i64(res, 0, 0);
    PQclear(res);
    return GH_OK;
}

gh_err_t gh_pgs_rollups_add_parts(gh_db_t *db, const gh_usage_row_t *rows, size_t n,
                                  unsigned parts)
{
    if (n == 0 || !parts)
        return GH_OK;
    assert(pgs(db)->depth > 0 && "rollups are written in the events' transaction");
    /* The mark only for the hour and day part, which runs under the write lock: a staged
     * transaction's minute part must not hold it (store.h), or a roll forward waiting for it
     * while holding the write lock would wait on a lane that waits for that lock. */
    int64_t mark_s = 0;
    gh_err_t rc = parts & GH_ROLLUPS_WIDER ? mark_for_share(db, &mark_s) : GH_OK;
    if (rc)
        return rc;
    const gh_usage_row_t **order = malloc(n * sizeof(*order));
    if (!order)
        return GH_ENOMEM;
    for (size_t i = 0; i < n; i++)
        order[i] = &rows[i];
    gh_pg_array_t col[COLS];
    /* Binary arrays: the key's texts in columns 0 and 2-4, numbers elsewhere. */
    for (int c = 0; c < COLS; c++)
        gh_pg_array_init_binary(&col[c], n * 4096 + 64,
                                c == 0 || (c >= 2 && c <= 4) ? GH_PG_OID_TEXT : GH_PG_OID_INT8);
    if (parts & GH_ROLLUPS_MINUTES) {
        qsort(order, n, sizeof(*order), cmp_rows_minute);
        rc = upsert_width(db, GH_ROLLUP_MINUTE, order, n, col);
    }
    /* The late events (minute before the mark, which the roll forward has passed): straight
     * into the hour and day tables as well, sorted by series and time for their summing. */
    size_t late = 0;
    for (size_t i = 0; i < n && (parts & GH_ROLLUPS_WIDER); i++)
        if (bucket_of(order[i]->created_at_ms, 60) < mark_s)
            order[late++] = order[i];
    if (late > 0)
        qsort(order, late, sizeof(*order), cmp_rows);
    for (size_t w = GH_ROLLUP_HOUR; w <= GH_ROLLUP_DAY && !rc && late > 0; w++)
        rc = upsert_width(db, w, order, late, col);
    for (int c = 0; c < COLS; c++)
        gh_pg_array_free(&col[c]);
    free(order);
    return rc;
}

#define ROLL_ADD(col) col " = r." col " + excluded." col
#define ROLL_CONFLICT                                                                          \
    " ON CONFLICT (org_id, bucket_start, workspace_id, key_id, model) DO UPDATE SET "         \
    ROLL_ADD("requests") ", " ROLL_ADD("input_tokens") ", " ROLL_ADD("output_tokens") ", "    \
    ROLL_ADD("cache_creation_tokens") ", " ROLL_ADD("cache_read_tokens") ", "                 \
    ROLL_ADD("input_cost_nusd") ", " ROLL_ADD("output_cost_nusd") ", "                        \
    ROLL_ADD("cache_creation_cost_nusd") ", " ROLL_ADD("cache_read_cost_nusd")
#define ROLL_SUMS                                                                              \
    "gh_bigint_sum(requests), gh_bigint_sum(input_tokens), gh_bigint_sum(output_tokens), "   \
    "gh_bigint_sum(cache_creation_tokens), gh_bigint_sum(cache_read_tokens), "               \
    "gh_bigint_sum(input_cost_nusd), gh_bigint_sum(output_cost_nusd), "                      \
    "gh_bigint_sum(cache_creation_cost_nusd), gh_bigint_sum(cache_read_cost_nusd)"

#define ROLL_SUM_AS(col) "gh_bigint_sum(m." col ") AS " col
#define ROLL_SUMS_AS                                                                           \
    ROLL_SUM_AS("requests") ", " ROLL_SUM_AS("input_tokens") ", "                             \
    ROLL_SUM_AS("output_tokens") ", " ROLL_SUM_AS("cache_creation_tokens") ", "               \
    ROLL_SUM_AS("cache_read_tokens") ", " ROLL_SUM_AS("input_cost_nusd") ", "                 \
    ROLL_SUM_AS("output_cost_nusd") ", " ROLL_SUM_AS("cache_creation_cost_nusd") ", "         \
    ROLL_SUM_AS("cache_read_cost_nusd")

/* The roll forward in one statement: the minute rows of buckets in [$1, $2), read once and
 * summed to the hour (h), upserted into the hour table, and those hour sums summed again to
 * the day and upserted into the day table. The minute rows are read one range per
 * organization: the organizations come from the minute table's own key (a skip scan, one
 * index probe per organization, through a recursive query) and each reads its range of the
 * primary key, so the cost follows the rows rolled, never the table's size. */
static const char roll_sql[] =
    "WITH RECURSIVE o(id) AS (SELECT min(org_id) FROM usage_rollup_minute UNION ALL "
    "SELECT (SELECT min(m.org_id) FROM usage_rollup_minute m WHERE m.org_id > o.id) FROM o "
    "WHERE o.id IS NOT NULL), "
    "h AS MATERIALIZED (SELECT m.org_id, "
    "to_timestamp(date_part('epoch', m.bucket_start)::bigint / 3600 * 3600) AS bucket_start, "
    "m.workspace_id, m.key_id, m.model, " ROLL_SUMS_AS " "
    "FROM o CROSS JOIN LATERAL (SELECT * FROM usage_rollup_minute x WHERE x.org_id = o.id "
    "AND x.bucket_start >= to_timestamp($1::bigint) "
    "AND x.bucket_start < to_timestamp($2::bigint)) m WHERE o.id IS NOT NULL "
    "GROUP BY 1, 2, 3, 4, 5), "
    "ih AS (INSERT INTO usage_rollup_hour AS r (" ROLLUP_COLS ") SELECT * FROM h" ROLL_CONFLICT
    ") "
    "INSERT INTO usage_rollup_day AS r (" ROLLUP_COLS ") "
    "SELECT org_id, to_timestamp(date_part('epoch', bucket_start)::bigint / 86400 * 86400), "
    "workspace_id, key_id, model, " ROLL_SUMS " FROM h GROUP BY 1, 2, 3, 4, 5"
    ROLL_CONFLICT;

gh_err_t gh_pgs_rollups_roll(gh_db_t *db, int64_t before_s, int64_t *rolled)
{
    static const char lock_sql[] = "SELECT date_part('epoch', rolled_before)::bigint FROM "
                                   "usage_rollup_watermark FOR UPDATE";
    /* The planner cannot see how many rows the range holds (its ends are parameters) and
     * sorts them to group them; hashing them is what this wants (measured on 48,515 minute
     * rows: 60 ms against 100). Memory for that, in this transaction only. */
    static const char plan_sql[] =
        "SELECT set_config('work_mem', '64MB', true), set_config('enable_sort', 'off', true)";
    static const char move_sql[] =
        "UPDATE usage_rollup_watermark SET rolled_before = to_timestamp($1::bigint)";
    if (rolled)
        *rolled = 0;
    assert(before_s >= 0);
    before_s = before_s / 60 * 60; /* marks are whole minutes */
    gh_err_t rc = gh_pgs_begin(db);
    if (rc)
        return rc;
    PGresult *res = NULL;
    if ((rc = gh_pgs_query_fast(db, lock_sql, 0, NULL, &res)))
        goto out_rollback;
    if (PQntuples(res) != 1) {
        PQclear(res);
        gh_log_error("store: usage_rollup_watermark has no row");
        rc = GH_ESTORE;
        goto out_rollback;
    }
    int64_t mark_s = gh_pgs_col_i64(res, 0, 0);
    PQclear(res);
    if (before_s <= mark_s) /* rolled that far already (by another node, say) */
        return gh_pgs_commit(db);
    gh_pgs_num_t from, to;
    const char *p[] = {gh_pgs_i64(&from, mark_s), gh_pgs_i64(&to, before_s)};
    if ((rc = gh_pgs_query_fast(db, plan_sql, 0, NULL, NULL)))
        goto out_rollback;
    if ((rc = gh_pgs_query_fast(db, roll_sql, 2, p, NULL)))
        goto out_rollback;
    int64_t n = pgs(db)->changes; /* day rows written: a measure of the work, for the log */
    if ((rc = gh_pgs_query_fast(db, move_sql, 1, &p[1], NULL)))
        goto out_rollback;
    rc = gh_pgs_commit(db);
    if (!rc && rolled)
        *rolled = n;
    return rc;
out_rollback:
    gh_pgs_rollback(db);
    return rc;
}

gh_err_t gh_pgs_rollups_prune(gh_db_t *db, int64_t before_s, int64_t *deleted)
{
    /* One statement, so atomic on its own. The minute table is keyed by organization first:
     * one range per organization (the day table, small, lists them) rather than a scan of
     * the whole table, as the SQLite backend does it. Never a minute row the roll forward
     * has not summed into the hour and day tables yet (at or after the mark): those are the
     * only copy of their events' sums. The mark only moves forward, so one read in the
     * statement's snapshot is safe. */
    static const char sql[] =
        "DELETE FROM usage_rollup_minute m USING (SELECT DISTINCT org_id FROM "
        "usage_rollup_day) d WHERE m.org_id = d.org_id AND m.bucket_start < "
        "least(to_timestamp($1::bigint), (SELECT rolled_before FROM usage_rollup_watermark))";
    gh_pgs_num_t b;
    const char *p[] = {gh_pgs_i64(&b, before_s)};
    gh_err_t rc = gh_pgs_exec(db, sql, 1, p);
    if (!rc && deleted)
        *deleted = pgs(db)->changes;
    return rc;
}

/* A report's group column, compared byte by byte. */
#define GROUP_COL(col) col " COLLATE \"C\""

/* One array parameter holding a filter's values. */
static const char *list_param(gh_pg_array_t *a, const gh_usage_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (gh_pg_array_text(a, l->v[i]))
            return NULL;
    return gh_pg_array_literal(a);
}

/* Appends a fixed fragment; false once `sql` is full. */
static bool add(char *sql, size_t size, size_t *len, const char *frag)
{
    int w = snprintf(sql + *len, size - *len, "%s", frag);
    if (w < 0 || (size_t)w >= size - *len)
        return false;
    *len += (size_t)w;
    return true;
}

typedef struct {
    gh_store_usage_total_fn fn;
    void *ctx;
} report_t;

static void report_row(void *ctx, const PGresult *res, int row)
{
    report_t *rep = ctx;
    gh_usage_total_t t = {
        .bucket_start_s = gh_pgs_col_i64(res, row, 0),
        .workspace_id = gh_pgs_col_null(res, row, 1) ? NULL : PQgetvalue(res, row, 1),
        .key_id = gh_pgs_col_null(res, row, 2) ? NULL : PQgetvalue(res, row, 2),
        .model = gh_pgs_col_null(res, row, 3) ? NULL : PQgetvalue(res, row, 3),
    };
    int64_t *v[SUMS] = {&t.requests,          &t.input_tokens,     &t.output_tokens,
                        &t.cache_creation_tokens, &t.cache_read_tokens, &t.input_cost_nusd,
                        &t.output_cost_nusd,  &t.cache_creation_cost_nusd,
                        &t.cache_read_cost_nusd};
    for (int c = 0; c < SUMS; c++)
        *v[c] = gh_pgs_col_i64(res, row, 4 + c);
    rep->fn(rep->ctx, &t);
}

/* The nine sums of a report row, and of each part of an hour or day report. */
#define REPORT_SUMS                                                                            \
    "gh_bigint_sum(requests), gh_bigint_sum(input_tokens), gh_bigint_sum(output_tokens), "   \
    "gh_bigint_sum(cache_creation_tokens), gh_bigint_sum(cache_read_tokens), "               \
    "gh_bigint_sum(input_cost_nusd), gh_bigint_sum(output_cost_nusd), "                      \
    "gh_bigint_sum(cache_creation_cost_nusd), gh_bigint_sum(cache_read_cost_nusd)"
#define REPORT_COLS                                                                            \
    "workspace_id, key_id, model, requests, input_tokens, output_tokens, "                   \
    "cache_creation_tokens, cache_read_tokens, input_cost_nusd, output_cost_nusd, "          \
    "cache_creation_cost_nusd, cache_read_cost_nusd"

/* `v` rounded up to a multiple of `width`: an hour or day bucket b is in [start, end) exactly
 * when b >= up(start) and b < up(end), and a minute m belongs to such a bucket exactly when
 * up(start) <= m < up(end). */
static int64_t round_up(int64_t v, int64_t width)
{
    assert(v >= 0);
    return (v + width - 1) / width * width;
}

gh_err_t gh_pgs_usage_report(gh_db_t *db, const gh_usage_query_t *q, gh_store_usage_total_fn fn,
                             void *ctx)
{
    assert(q->width <= GH_ROLLUP_DAY);
    assert(q->workspaces.n <= GH_USAGE_FILTER_MAX && q->keys.n <= GH_USAGE_FILTER_MAX &&
           q->models.n <= GH_USAGE_FILTER_MAX);
    if (q->none || q->start_s >= q->end_s)
        return GH_OK;
    /* Only fixed fragments are pasted; every value is a parameter (a filter list is one
     * array parameter). Placeholders are numbered as they are added: $1 the organization,
     * $2 and $3 the range, and for hour and day $4 and $5 the minutes' range. */
    char sql[4096], where[1024], frag[256];
    size_t len = 0, wlen = 0;
    const char *p[10];
    int np = 0;
    bool rolled = q->width != GH_ROLLUP_MINUTE; /* hour and day: rolled forward from minutes */
    int64_t width_s = widths[q->width].width_s;
    gh_pgs_num_t start, end, m_start, m_end;
    gh_pg_array_t lists[3];
    for (int i = 0; i < 3; i++)
        gh_pg_array_init(&lists[i], (size_t)GH_USAGE_FILTER_MAX * 1024);
    gh_err_t rc = GH_EINTERNAL;
    p[np++] = q->org_id;
    p[np++] = gh_pgs_i64(&start, q->start_s);
    p[np++] = gh_pgs_i64(&end, q->end_s);
    if (rolled) {
        p[np++] = gh_pgs_i64(&m_start, round_up(q->start_s, width_s));
        p[np++] = gh_pgs_i64(&m_end, round_up(q->end_s, width_s));
    }
    /* The filters, the same for every part read. */
    bool ok = true;
    where[0] = '\0';
    const struct {
        const char *col;
        const gh_usage_list_t *l;
    } filters[3] = {{"workspace_id", &q->workspaces}, {"key_id", &q->keys},
                    {"model", &q->models}};
    for (int f = 0; f < 3 && ok; f++) {
        if (filters[f].l->n == 0)
            continue;
        if (!(p[np] = list_param(&lists[f], filters[f].l))) {
            ok = false;
            break;
        }
        np++;
        snprintf(frag, sizeof(frag), " AND %s = ANY($%d::text[])", filters[f].col, np);
        ok = add(where, sizeof(where), &wlen, frag);
    }
    if (ok && q->member_id) {
        p[np++] = q->member_id;
        snprintf(frag, sizeof(frag),
                 " AND workspace_id IN (SELECT w.id FROM workspaces w WHERE w.org_id = $1 "
                 "AND (w.is_default OR w.id IN (SELECT m.workspace_id FROM workspace_members m "
                 "WHERE m.org_id = $1 AND m.account_id = $%d)))",
                 np);
        ok = add(where, sizeof(where), &wlen, frag);
    }
    /* The group columns in byte order (COLLATE "C"), as SQLite's BINARY collation sorts,
     * whatever the database's locale; grouping by the same expressions lets one sort serve
     * both the grouping and the order. Buckets are whole seconds: date_part's double holds
     * them exactly (extract() would compute a numeric per row). gh_bigint_sum (migration
     * 0010) sums in bigint; sum(bigint) would make a numeric of every group's every sum. */
    snprintf(frag, sizeof(frag), "SELECT date_part('epoch', bucket_start)::bigint, %s, %s, %s, ",
             q->by_workspace ? GROUP_COL("workspace_id") : "NULL",
             q->by_key ? GROUP_COL("key_id") : "NULL", q->by_model ? GROUP_COL("model") : "NULL");
    ok = ok && add(sql, sizeof(sql), &len, frag) &&
         add(sql, sizeof(sql), &len, REPORT_SUMS " FROM ");
    if (ok && !rolled) {
        ok = add(sql, sizeof(sql), &len, widths[q->width].table) &&
             add(sql, sizeof(sql), &len,
                 " WHERE org_id = $1 AND bucket_start >= to_timestamp($2::bigint) AND "
                 "bucket_start < to_timestamp($3::bigint)") &&
             add(sql, sizeof(sql), &len, where);
    } else if (ok) {
        /* The table of the width, and the minute rows the roll forward has not reached (at
         * or after the mark, read in the same snapshot), each grouped to the width's bucket
         * (UTC, as bucket_of): one statement, so a roll forward committing meanwhile is
         * seen entirely or not at all. */
        snprintf(frag, sizeof(frag),
                 "to_timestamp(date_part('epoch', bucket_start)::bigint / %lld * %lld) AS "
                 "bucket_start, ",
                 (long long)width_s, (long long)width_s);
        ok = add(sql, sizeof(sql), &len, "(SELECT bucket_start, " REPORT_COLS " FROM ") &&
             add(sql, sizeof(sql), &len, widths[q->width].table) &&
             add(sql, sizeof(sql), &len,
                 " WHERE org_id = $1 AND bucket_start >= to_timestamp($2::bigint) AND "
                 "bucket_start < to_timestamp($3::bigint)") &&
             add(sql, sizeof(sql), &len, where) &&
             add(sql, sizeof(sql), &len, " UNION ALL SELECT ") &&
             add(sql, sizeof(sql), &len, frag) &&
             add(sql, sizeof(sql), &len,
                 REPORT_COLS " FROM usage_rollup_minute WHERE org_id = $1 AND bucket_start >= "
                 "greatest(to_timestamp($4::bigint), (SELECT rolled_before FROM "
                 "usage_rollup_watermark)) AND bucket_start < to_timestamp($5::bigint)") &&
             add(sql, sizeof(sql), &len, where) && add(sql, sizeof(sql), &len, ") u");
    }
    if (ok) {
        char by[160];
        snprintf(by, sizeof(by), "bucket_start%s%s%s",
                 q->by_workspace ? ", " GROUP_COL("workspace_id") : "",
                 q->by_key ? ", " GROUP_COL("key_id") : "",
                 q->by_model ? ", " GROUP_COL("model") : "");
        ok = add(sql, sizeof(sql), &len, " GROUP BY ") && add(sql, sizeof(sql), &len, by) &&
             add(sql, sizeof(sql), &len, " ORDER BY ") && add(sql, sizeof(sql), &len, by);
    }
    if (ok) {
        report_t rep = {fn, ctx};
        PGresult *res = NULL;
        rc = gh_pgs_query_dyn(db, sql, np, p, &res);
        if (!rc) {
            for (int r = 0; r < PQntuples(res); r++)
                report_row(&rep, res, r);
            PQclear(res);
        }
    }
    for (int i = 0; i < 3; i++)
        gh_pg_array_free(&lists[i]);
    return rc;
}
