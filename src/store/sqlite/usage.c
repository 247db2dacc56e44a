/* Store functions for usage events (SQLite backend). */
#include <stdio.h>
#include <string.h>

#include "lib/yield.h"
#include "store/sqlite/sqlite_int.h"

#define USAGE_INSERT_COLS                                                                      \
    "INTO usage_events (journal_seq, request_id, created_at_ms, org_id, workspace_id, key_id, " \
    "model, route, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, "    \
    "cost_nusd, status, stream, client_disconnected, latency_us, upstream_us, "                \
    "input_cost_nusd, output_cost_nusd, cache_creation_cost_nusd, cache_read_cost_nusd, "       \
    "requested_model, deployment)"
#define USAGE_INSERT USAGE_INSERT_COLS " VALUES "
#define ROW_1 "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
#define ROW_COLS 24

/* The requested model and the deployment as stored: both NULL when they add nothing (the
 * requested model served; the built-in mock). */
static const char *stored_requested(const gh_usage_row_t *r)
{
    return r->requested_model && strcmp(r->requested_model, r->model) ? r->requested_model
                                                                       : NULL;
}

static const char *stored_deployment(const gh_usage_row_t *r)
{
    return r->deployment && r->deployment[0] ? r->deployment : NULL;
}

/* Binds row `r` to the 24 parameters from `i` on, every one of them. */
static void bind_row(sqlite3_stmt *st, int i, const gh_usage_row_t *r)
{
    sqlite3_bind_int64(st, i++, r->journal_seq);
    sqlite3_bind_text(st, i++, r->request_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, i++, r->created_at_ms);
    const char *texts[] = {r->org_id, r->workspace_id, r->key_id, r->model, r->route};
    for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++)
        sqlite3_bind_text(st, i++, texts[t], -1, SQLITE_STATIC);
    const int64_t nums[] = {r->input_tokens, r->output_tokens, r->cache_creation_tokens,
                            r->cache_read_tokens, r->cost_nusd, r->status, r->stream,
                            r->client_disconnected, r->latency_us, r->upstream_us,
                            r->input_cost_nusd, r->output_cost_nusd,
                            r->cache_creation_cost_nusd, r->cache_read_cost_nusd};
    for (size_t n = 0; n < sizeof(nums) / sizeof(nums[0]); n++)
        sqlite3_bind_int64(st, i++, nums[n]);
    sqlite3_bind_text(st, i++, stored_requested(r), -1, SQLITE_STATIC); /* NULL: NULL */
    sqlite3_bind_text(st, i++, stored_deployment(r), -1, SQLITE_STATIC);
}

gh_err_t gh_sqlite_usage_insert(gh_db_t *db, const gh_usage_row_t *r)
{
    static const char sql[] = "INSERT OR IGNORE " USAGE_INSERT ROW_1;
    sqlite3_stmt *st = gh_sqlite_stmt_to_bind(db, sql);
    if (!st)
        return GH_ESTORE;
    bind_row(st, 1, r);
    return gh_sqlite_exec(db, st);
}

/* ---- A batch as a table: gh_usage_rows(?) ------------------------------------------------
 *
 * The writer's new events go into usage_events in one statement,
 *   INSERT OR IGNORE INTO usage_events (...) SELECT * FROM gh_usage_rows(?)
 * where gh_usage_rows is an eponymous virtual table over the batch's rows in memory, handed
 * to it as a pointer (sqlite3_bind_pointer). Binding 24 parameters an event cost the writer
 * about 3,100 instructions an event and a statement's own start, cursor and halt about 3,000
 * more (bench/instructions); a column read from the table costs a few dozen. The table yields
 * the core between rows (lib/yield.h), as the writer's other loops do. */

typedef struct {
    const gh_usage_row_t *rows;
    size_t n;
} batch_t;

#define BATCH_POINTER "gh_usage_batch"
#define COL_BATCH ROW_COLS /* the hidden column its argument binds */

typedef struct {
    sqlite3_vtab_cursor base;
    const gh_usage_row_t *rows;
    size_t n, i;
} rows_cursor_t;

static int rows_connect(sqlite3 *conn, void *aux, int argc, const char *const *argv,
                        sqlite3_vtab **out, char **err)
{
    (void)aux, (void)argc, (void)argv, (void)err;
    int rc = sqlite3_declare_vtab(
        conn, "CREATE TABLE x(journal_seq, request_id, created_at_ms, org_id, workspace_id, "
              "key_id, model, route, input_tokens, output_tokens, cache_creation_tokens, "
              "cache_read_tokens, cost_nusd, status, stream, client_disconnected, latency_us, "
              "upstream_us, input_cost_nusd, output_cost_nusd, cache_creation_cost_nusd, "
              "cache_read_cost_nusd, requested_model, deployment, batch HIDDEN)");
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_vtab_config(conn, SQLITE_VTAB_DIRECTONLY); /* never from a trigger or view */
    *out = sqlite3_malloc(sizeof(**out));
    if (*out == NULL)
        return SQLITE_NOMEM;
    memset(*out, 0, sizeof(**out));
    return SQLITE_OK;
}

static int rows_disconnect(sqlite3_vtab *vt)
{
    sqlite3_free(vt);
    return SQLITE_OK;
}

/* Only as a function of its batch: gh_usage_rows(?). */
static int rows_best_index(sqlite3_vtab *vt, sqlite3_index_info *info)
{
    (void)vt;
    for (int i = 0; i < info->nConstraint; i++) {
        const struct sqlite3_index_constraint *c = &info->aConstraint[i];
        if (c->iColumn == COL_BATCH && c->op == SQLITE_INDEX_CONSTRAINT_EQ && c->usable) {
            info->aConstraintUsage[i].argvIndex = 1;
            info->aConstraintUsage[i].omit = 1;
            info->estimatedCost = 1;
            info->estimatedRows = 1000;
            return SQLITE_OK;
        }
    }
    return SQLITE_CONSTRAINT;
}

static int rows_open(sqlite3_vtab *vt, sqlite3_vtab_cursor **out)
{
    (void)vt;
    rows_cursor_t *c = sqlite3_malloc(sizeof(*c));
    if (c == NULL)
        return SQLITE_NOMEM;
    memset(c, 0, sizeof(*c));
    *out = &c->base;
    return SQLITE_OK;
}

static int rows_close(sqlite3_vtab_cursor *cur)
{
    sqlite3_free(cur);
    return SQLITE_OK;
}

static int rows_filter(sqlite3_vtab_cursor *cur, int idx, const char *idx_str, int argc,
                       sqlite3_value **argv)
{
    (void)idx, (void)idx_str;
    rows_cursor_t *c = (rows_cursor_t *)cur;
    const batch_t *b = argc == 1 ? sqlite3_value_pointer(argv[0], BATCH_POINTER) : NULL;
    c->rows = b ? b->rows : NULL;
    c->n = b ? b->n : 0;
    c->i = 0;
    return SQLITE_OK;
}

static int rows_next(sqlite3_vtab_cursor *cur)
{
    ((rows_cursor_t *)cur)->i++;
    gh_yield_point();
    return SQLITE_OK;
}

static int rows_eof(sqlite3_vtab_cursor *cur)
{
    const rows_cursor_t *c = (const rows_cursor_t *)cur;
    return c->i >= c->n;
}

static void result_text(sqlite3_context *ctx, const char *v)
{
    sqlite3_result_text(ctx, v, -1, SQLITE_STATIC);
}

/* The values bind_row binds, column by column. */
static int rows_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col)
{
    const rows_cursor_t *c = (const rows_cursor_t *)cur;
    const gh_usage_row_t *r = &c->rows[c->i];
    switch (col) {
    case 0: sqlite3_result_int64(ctx, r->journal_seq); break;
    case 1: result_text(ctx, r->request_id); break;
    case 2: sqlite3_result_int64(ctx, r->created_at_ms); break;
    case 3: result_text(ctx, r->org_id); break;
    case 4: result_text(ctx, r->workspace_id); break;
    case 5: result_text(ctx, r->key_id); break;
    case 6: result_text(ctx, r->model); break;
    case 7: result_text(ctx, r->route); break;
    case 8: sqlite3_result_int64(ctx, r->input_tokens); break;
    case 9: sqlite3_result_int64(ctx, r->output_tokens); break;
    case 10: sqlite3_result_int64(ctx, r->cache_creation_tokens); break;
    case 11: sqlite3_result_int64(ctx, r->cache_read_tokens); break;
    case 12: sqlite3_result_int64(ctx, r->cost_nusd); break;
    case 13: sqlite3_result_int64(ctx, r->status); break;
    case 14: sqlite3_result_int64(ctx, r->stream); break;
    case 15: sqlite3_result_int64(ctx, r->client_disconnected); break;
    case 16: sqlite3_result_int64(ctx, r->latency_us); break;
    case 17: sqlite3_result_int64(ctx, r->upstream_us); break;
    case 18: sqlite3_result_int64(ctx, r->input_cost_nusd); break;
    case 19: sqlite3_result_int64(ctx, r->output_cost_nusd); break;
    case 20: sqlite3_result_int64(ctx, r->cache_creation_cost_nusd); break;
    case 21: sqlite3_result_int64(ctx, r->cache_read_cost_nusd); break;
    case 22: result_text(ctx, stored_requested(r)); break; /* NULL: NULL */
    case 23: result_text(ctx, stored_deployment(r)); break;
    default: sqlite3_result_null(ctx); break; /* the hidden batch */
    }
    return SQLITE_OK;
}

static int rows_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid)
{
    *rowid = (sqlite3_int64)((const rows_cursor_t *)cur)->i;
    return SQLITE_OK;
}

static const sqlite3_module rows_module = {
    .iVersion = 0,
    .xConnect = rows_connect, /* no xCreate: eponymous only */
    .xBestIndex = rows_best_index,
    .xDisconnect = rows_disconnect,
    .xOpen = rows_open,
    .xClose = rows_close,
    .xFilter = rows_filter,
    .xNext = rows_next,
    .xEof = rows_eof,
    .xColumn = rows_column,
    .xRowid = rows_rowid,
};

int gh_sqlite_usage_register(sqlite3 *conn)
{
    return sqlite3_create_module_v2(conn, "gh_usage_rows", &rows_module, NULL, NULL);
}

/* Inserts rows[0..k), all after the highest journal_seq stored (so none is there already), in
 * one statement. Every row must be stored: when one is not (two rows of one sequence number,
 * a NULL where the table wants a value, both ignored by OR IGNORE), the statement cannot say
 * which, and the batch fails on its data: the caller commits it in halves (usage.c,
 * commit_sifting), down to single rows, which say it one by one. */
static gh_err_t insert_new(gh_db_t *db, const gh_usage_row_t *rows, size_t k, bool *inserted)
{
    static const char sql[] = "INSERT OR IGNORE " USAGE_INSERT_COLS
                              " SELECT * FROM gh_usage_rows(?)";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    batch_t b = {rows, k};
    sqlite3_bind_pointer(st, 1, &b, BATCH_POINTER, NULL);
    gh_err_t rc = gh_sqlite_exec(db, st);
    sqlite3_clear_bindings(st); /* `b` is gone after this call */
    if (rc)
        return rc;
    if ((size_t)sqlite3_changes(sq(db)->conn) != k) {
        sq(db)->failed_on_data = true;
        return GH_ECONFLICT;
    }
    for (size_t i = 0; i < k; i++)
        inserted[i] = true;
    return GH_OK;
}

gh_err_t gh_sqlite_usage_insert_batch(gh_db_t *db, const gh_usage_row_t *rows, size_t n,
                                      bool *inserted)
{
    /* An event after the highest sequence stored is new. Those before it (a replay after a
     * crash, which may find its events stored) go one at a time: the changes of each say
     * whether it was there. */
    int64_t max = 0;
    gh_err_t rc = n > 1 ? gh_sqlite_usage_max_seq(db, &max) : GH_OK;
    for (size_t i = 0; i < n && !rc;) {
        size_t k = 0;
        if (n > 1)
            while (i + k < n && rows[i + k].journal_seq > max)
                k++;
        if (k > 0) {
            rc = insert_new(db, &rows[i], k, &inserted[i]);
            i += k;
            continue;
        }
        gh_yield_point();
        rc = gh_sqlite_usage_insert(db, &rows[i]);
        if (!rc)
            inserted[i] = sqlite3_changes(sq(db)->conn) > 0;
        i++;
    }
    return rc;
}

gh_err_t gh_sqlite_usage_max_seq(gh_db_t *db, int64_t *seq)
{
    static const char sql[] = "SELECT coalesce(max(journal_seq), 0) FROM usage_events";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    int rc = sqlite3_step(st);
    *seq = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? GH_OK : gh_sqlite_step_err(db, rc);
}

int gh_sqlite_changes(gh_db_t *db)
{
    return sqlite3_changes(sq(db)->conn);
}
