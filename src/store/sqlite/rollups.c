/* Usage rollups (SQLite backend): the minute, hour and day sums that usage reports read.
 *
 * The usage writer inserts a batch of events and, in the same transaction, hands the events
 * it inserted to gh_sqlite_rollups_add_parts. That sorts them by series (organization,
 * workspace, key, model: by a hash of the four) and time, so the events of one series and
 * bucket are neighbours for every width at once, and upserts one row per distinct key and
 * table. A report then reads one range of one table: the rows of an organization between two
 * bucket starts, in key order. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hash.h"
#include "lib/log.h"
#include "lib/yield.h"
#include "store/sqlite/sqlite_int.h"

#define ROLLUP_COLS                                                                            \
    "org_id, bucket_start, workspace_id, key_id, model, requests, input_tokens, "              \
    "output_tokens, cache_creation_tokens, cache_read_tokens, input_cost_nusd, "              \
    "output_cost_nusd, cache_creation_cost_nusd, cache_read_cost_nusd"

#define ROLLUP_UPSERT(table)                                                                   \
    "INSERT INTO " table " (" ROLLUP_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) " \
    "ON CONFLICT (org_id, bucket_start, workspace_id, key_id, model) DO UPDATE SET "          \
    "requests = requests + excluded.requests, "                                               \
    "input_tokens = input_tokens + excluded.input_tokens, "                                   \
    "output_tokens = output_tokens + excluded.output_tokens, "                                \
    "cache_creation_tokens = cache_creation_tokens + excluded.cache_creation_tokens, "        \
    "cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens, "                    \
    "input_cost_nusd = input_cost_nusd + excluded.input_cost_nusd, "                          \
    "output_cost_nusd = output_cost_nusd + excluded.output_cost_nusd, "                       \
    "cache_creation_cost_nusd = cache_creation_cost_nusd + excluded.cache_creation_cost_nusd, " \
    "cache_read_cost_nusd = cache_read_cost_nusd + excluded.cache_read_cost_nusd"

static const char upsert_minute[] = ROLLUP_UPSERT("usage_rollup_minute");
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

static int64_t bucket_of(int64_t created_at_ms, int64_t width_s)
{
    /* Times are after 1970: the division rounds down. */
    assert(created_at_ms >= 0);
    return created_at_ms / 1000 / width_s * width_s;
}

static int cmp_str(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "");
}

/* Orders events by series (organization, workspace, key, model), then time. */
/* An event and the hash of its series (organization, workspace, key, model). */
typedef struct {
    uint64_t series;
    const gh_usage_row_t *row;
    bool same_as_previous; /* in sorted order: the previous event's series (strings compared) */
} ordered_t;

/* By series hash, then time. Sorting by the strings themselves cost the writer more than
 * anything else it does besides SQLite's own work: a batch of 2,000 events of one series made
 * about 22,000 comparisons of four equal ids each (`perf`: strcmp 13% of the usage-writer
 * bench). Two series whose hashes are equal may interleave; the grouping below compares
 * the strings too, so they are then only upserted in more pieces, each right. */
static int cmp_ordered(const void *pa, const void *pb)
{
    const ordered_t *a = pa, *b = pb;
    if (a->series != b->series)
        return (a->series > b->series) - (a->series < b->series);
    return (a->row->created_at_ms > b->row->created_at_ms) -
           (a->row->created_at_ms < b->row->created_at_ms);
}

static bool same_series(const gh_usage_row_t *a, const gh_usage_row_t *b)
{
    return !cmp_str(a->org_id, b->org_id) && !cmp_str(a->workspace_id, b->workspace_id) &&
           !cmp_str(a->key_id, b->key_id) && !cmp_str(a->model, b->model);
}

/* The sums of one group: requests, four token counts, four costs. */
typedef struct {
    int64_t v[9];
} sums_t;

static void sums_add(sums_t *s, const gh_usage_row_t *r)
{
    const int64_t add[9] = {1,
                            r->input_tokens,
                            r->output_tokens,
                            r->cache_creation_tokens,
                            r->cache_read_tokens,
                            r->input_cost_nusd,
                            r->output_cost_nusd,
                            r->cache_creation_cost_nusd,
                            r->cache_read_cost_nusd};
    for (int i = 0; i < 9; i++)
        s->v[i] += add[i];
}

static gh_err_t upsert(gh_db_t *db, const char *sql, const gh_usage_row_t *r, int64_t bucket,
                       const sums_t *s)
{
    sqlite3_stmt *st = gh_sqlite_stmt_to_bind(db, sql); /* all 14 bound below */
    if (!st)
        return GH_ESTORE;
    /* Stored as "" rather than NULL: these are key columns. */
    sqlite3_bind_text(st, 1, r->org_id ? r->org_id : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, bucket);
    sqlite3_bind_text(st, 3, r->workspace_id ? r->workspace_id : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, r->key_id ? r->key_id : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, r->model ? r->model : "", -1, SQLITE_STATIC);
    for (int i = 0; i < 9; i++)
        sqlite3_bind_int64(st, 6 + i, s->v[i]);
    return gh_sqlite_exec(db, st);
}

gh_err_t gh_sqlite_rollups_add_parts(gh_db_t *db, const gh_usage_row_t *rows, size_t n,
                                     unsigned parts)
{
    if (n == 0)
        return GH_OK;
    assert(sq(db)->depth > 0 && "rollups are written in the events' transaction");
    ordered_t *order = malloc(n * sizeof(*order));
    if (!order)
        return GH_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const gh_usage_row_t *r = &rows[i];
        uint64_t h = gh_hash_str(GH_HASH_INIT, r->org_id);
        h = gh_hash_str(h, r->workspace_id);
        h = gh_hash_str(h, r->key_id);
        order[i] = (ordered_t){gh_hash_str(h, r->model), r, false};
    }
    qsort(order, n, sizeof(*order), cmp_ordered);
    /* Once, for the three widths: a series' events are a run of these. */
    for (size_t i = 1; i < n; i++)
        order[i].same_as_previous = order[i].series == order[i - 1].series &&
                                    same_series(order[i].row, order[i - 1].row);

    /* Sorted by series and time, the events of one bucket are neighbours at every width. */
    gh_err_t rc = GH_OK;
    for (size_t w = 0; w < sizeof(widths) / sizeof(widths[0]) && !rc; w++) {
        if (!(parts & (w == GH_ROLLUP_MINUTE ? GH_ROLLUPS_MINUTES : GH_ROLLUPS_WIDER)))
            continue;
        for (size_t i = 0; i < n && !rc;) {
            const gh_usage_row_t *first = order[i].row;
            int64_t bucket = bucket_of(first->created_at_ms, widths[w].width_s);
            sums_t s = {{0}};
            size_t j = i;
            do
                sums_add(&s, order[j++].row);
            while (j < n && order[j].same_as_previous &&
                   bucket_of(order[j].row->created_at_ms, widths[w].width_s) == bucket);
            gh_yield_point();
            rc = upsert(db, widths[w].upsert, first, bucket, &s);
            i = j;
        }
    }
    free(order);
    return rc;
}

gh_err_t gh_sqlite_rollups_roll(gh_db_t *db, int64_t before_s, int64_t *rolled)
{
    /* Nothing to roll: SQLite writes the hour and day rollups in the writer's transaction
     * (gh_sqlite_rollups_add), where they cost little next to the minute ones. */
    (void)db, (void)before_s;
    if (rolled)
        *rolled = 0;
    return GH_OK;
}

gh_err_t gh_sqlite_rollups_prune(gh_db_t *db, int64_t before_s, int64_t *deleted)
{
    /* The minute table is keyed by organization first: delete one range per organization
     * (the day table, small, lists them) instead of scanning the whole table. */
    static const char orgs_sql[] = "SELECT DISTINCT org_id FROM usage_rollup_day";
    static const char del_sql[] =
        "DELETE FROM usage_rollup_minute WHERE org_id = ? AND bucket_start < ?";
    int64_t total = 0;
    gh_err_t rc = gh_sqlite_begin(db);
    if (rc)
        return rc;
    sqlite3_stmt *orgs = NULL;
    if (sqlite3_prepare_v2(sq(db)->conn, orgs_sql, -1, &orgs, NULL) != SQLITE_OK) {
        rc = gh_sqlite_step_err(db, sqlite3_errcode(sq(db)->conn));
        goto out_rollback;
    }
    int step = SQLITE_DONE;
    while (!rc && (step = sqlite3_step(orgs)) == SQLITE_ROW) {
        sqlite3_stmt *del = gh_sqlite_stmt(db, del_sql);
        if (!del) {
            rc = GH_ESTORE;
            break;
        }
        sqlite3_bind_text(del, 1, (const char *)sqlite3_column_text(orgs, 0), -1,
                          SQLITE_TRANSIENT);
        sqlite3_bind_int64(del, 2, before_s);
        rc = gh_sqlite_exec(db, del);
        total += sqlite3_changes(sq(db)->conn);
    }
    if (!rc && step != SQLITE_DONE)
        rc = gh_sqlite_step_err(db, step);
    sqlite3_finalize(orgs);
    if (rc)
        goto out_rollback;
    if (deleted)
        *deleted = total;
    return gh_sqlite_commit(db);
out_rollback:
    gh_sqlite_rollback(db);
    return rc;
}

/* Appends " AND <col> IN (?, ?, ...)" for a list with values. */
static int add_in(char *sql, size_t size, int len, const char *col, const gh_usage_list_t *l)
{
    if (l->n == 0 || len < 0 || (size_t)len >= size)
        return len;
    len += snprintf(sql + len, size - (size_t)len, " AND %s IN (", col);
    for (size_t i = 0; i < l->n && len > 0 && (size_t)len < size; i++)
        len += snprintf(sql + len, size - (size_t)len, i ? ", ?" : "?");
    if (len > 0 && (size_t)len < size)
        len += snprintf(sql + len, size - (size_t)len, ")");
    return len;
}

static int bind_list(sqlite3_stmt *st, int i, const gh_usage_list_t *l)
{
    for (size_t k = 0; k < l->n; k++)
        sqlite3_bind_text(st, i++, l->v[k], -1, SQLITE_STATIC);
    return i;
}

gh_err_t gh_sqlite_usage_report(gh_db_t *db, const gh_usage_query_t *q, gh_store_usage_total_fn fn,
                                void *ctx)
{
    assert(q->width <= GH_ROLLUP_DAY);
    assert(q->workspaces.n <= GH_USAGE_FILTER_MAX && q->keys.n <= GH_USAGE_FILTER_MAX &&
           q->models.n <= GH_USAGE_FILTER_MAX);
    if (q->none || q->start_s >= q->end_s)
        return GH_OK;
    /* Every value is bound; only fixed fragments are pasted. 3 × 100 placeholders fit. */
    char sql[4096];
    int len = snprintf(
        sql, sizeof(sql),
        "SELECT bucket_start, %s, %s, %s, sum(requests), sum(input_tokens), sum(output_tokens), "
        "sum(cache_creation_tokens), sum(cache_read_tokens), sum(input_cost_nusd), "
        "sum(output_cost_nusd), sum(cache_creation_cost_nusd), sum(cache_read_cost_nusd) "
        "FROM %s WHERE org_id = ? AND bucket_start >= ? AND bucket_start < ?",
        q->by_workspace ? "workspace_id" : "NULL", q->by_key ? "key_id" : "NULL",
        q->by_model ? "model" : "NULL", widths[q->width].table);
    len = add_in(sql, sizeof(sql), len, "workspace_id", &q->workspaces);
    len = add_in(sql, sizeof(sql), len, "key_id", &q->keys);
    len = add_in(sql, sizeof(sql), len, "model", &q->models);
    if (q->member_id && len > 0 && (size_t)len < sizeof(sql))
        len += snprintf(sql + len, sizeof(sql) - (size_t)len,
                        " AND workspace_id IN (SELECT w.id FROM workspaces w WHERE w.org_id = ? "
                        "AND (w.is_default = 1 OR w.id IN (SELECT m.workspace_id FROM "
                        "workspace_members m WHERE m.org_id = ? AND m.account_id = ?)))");
    if (len > 0 && (size_t)len < sizeof(sql))
        len += snprintf(sql + len, sizeof(sql) - (size_t)len,
                        " GROUP BY bucket_start%s%s%s ORDER BY bucket_start%s%s%s",
                        q->by_workspace ? ", workspace_id" : "", q->by_key ? ", key_id" : "",
                        q->by_model ? ", model" : "", q->by_workspace ? ", workspace_id" : "",
                        q->by_key ? ", key_id" : "", q->by_model ? ", model" : "");
    if (len < 0 || (size_t)len >= sizeof(sql))
        return GH_EINTERNAL;

    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(sq(db)->conn, sql, -1, &st, NULL) != SQLITE_OK) {
        gh_log_error("store: prepare failed: %s", sqlite3_errmsg(sq(db)->conn));
        return GH_ESTORE;
    }
    sqlite3_bind_text(st, 1, q->org_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, q->start_s);
    sqlite3_bind_int64(st, 3, q->end_s);
    int i = bind_list(st, 4, &q->workspaces);
    i = bind_list(st, i, &q->keys);
    i = bind_list(st, i, &q->models);
    if (q->member_id) {
        sqlite3_bind_text(st, i++, q->org_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, i++, q->org_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, i, q->member_id, -1, SQLITE_STATIC);
    }

    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        gh_usage_total_t t = {
            .bucket_start_s = sqlite3_column_int64(st, 0),
            .workspace_id = (const char *)sqlite3_column_text(st, 1),
            .key_id = (const char *)sqlite3_column_text(st, 2),
            .model = (const char *)sqlite3_column_text(st, 3),
        };
        int64_t *v[] = {&t.requests,          &t.input_tokens,     &t.output_tokens,
                        &t.cache_creation_tokens, &t.cache_read_tokens, &t.input_cost_nusd,
                        &t.output_cost_nusd,  &t.cache_creation_cost_nusd,
                        &t.cache_read_cost_nusd};
        for (int c = 0; c < 9; c++)
            *v[c] = sqlite3_column_int64(st, 4 + c);
        fn(ctx, &t);
    }
    sqlite3_finalize(st);
    return step == SQLITE_DONE ? GH_OK : gh_sqlite_step_err(db, step);
}
