/* Store functions for usage events (SQLite backend). */
#include <stdio.h>
#include <string.h>

#include "lib/yield.h"
#include "store/sqlite/sqlite_int.h"

#define USAGE_INSERT                                                                           \
    "INTO usage_events (journal_seq, request_id, created_at_ms, org_id, workspace_id, key_id, " \
    "model, route, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, "    \
    "cost_nusd, status, stream, client_disconnected, latency_us, upstream_us, "                \
    "input_cost_nusd, output_cost_nusd, cache_creation_cost_nusd, cache_read_cost_nusd, "       \
    "requested_model, deployment) VALUES "
#define ROW_1 "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
#define ROW_COLS 24
#define ROWS_2 ROW_1 ", " ROW_1
#define ROWS_4 ROWS_2 ", " ROWS_2
#define ROWS_8 ROWS_4 ", " ROWS_4

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
    /* Both NULL when they add nothing: the requested model served, on the built-in mock. */
    bool other = r->requested_model && strcmp(r->requested_model, r->model);
    if (other)
        sqlite3_bind_text(st, i++, r->requested_model, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i++);
    if (r->deployment && r->deployment[0])
        sqlite3_bind_text(st, i++, r->deployment, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i++);
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

/* Rows of one INSERT, largest first: a statement's own work (starting, opening its cursor,
 * halting) is paid once for up to 8 events instead of once for each. Not more: the writer
 * yields its core only between statements (lib/yield.h), and 8 rows take about 12 us; 32 a
 * statement saved only 1.5% more of the writer's instructions. */
static const struct {
    size_t rows;
    const char *sql;
} chunks[] = {
    {8, "INSERT OR IGNORE " USAGE_INSERT ROWS_8},
    {2, "INSERT OR IGNORE " USAGE_INSERT ROWS_2},
};

/* Inserts rows[0..k), all after the highest journal_seq stored (so none is there already),
 * in statements of several rows each. Every row must be stored: when one is not (two rows
 * of one sequence number, a NULL where the table wants a value, both ignored by OR IGNORE),
 * the statement cannot say which, and the batch fails on its data: the caller commits it
 * in halves (usage.c, commit_sifting), down to single rows, which say it one by one. */
static gh_err_t insert_new(gh_db_t *db, const gh_usage_row_t *rows, size_t k, bool *inserted)
{
    size_t c = 0;
    while (k > 0) {
        while (c < sizeof(chunks) / sizeof(chunks[0]) && chunks[c].rows > k)
            c++;
        size_t m = c < sizeof(chunks) / sizeof(chunks[0]) ? chunks[c].rows : 1;
        gh_yield_point();
        gh_err_t rc;
        if (m == 1) {
            rc = gh_sqlite_usage_insert(db, rows);
        } else {
            sqlite3_stmt *st = gh_sqlite_stmt_to_bind(db, chunks[c].sql);
            if (!st)
                return GH_ESTORE;
            for (size_t i = 0; i < m; i++)
                bind_row(st, 1 + (int)i * ROW_COLS, &rows[i]);
            rc = gh_sqlite_exec(db, st);
        }
        if (rc)
            return rc;
        if ((size_t)sqlite3_changes(sq(db)->conn) != m) {
            sq(db)->failed_on_data = true;
            return GH_ECONFLICT;
        }
        for (size_t i = 0; i < m; i++)
            inserted[i] = true;
        rows += m, inserted += m, k -= m;
    }
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
