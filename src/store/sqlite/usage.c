/* Store functions for usage events (SQLite backend). */
#include <stdio.h>
#include <string.h>

#include "lib/yield.h"
#include "store/sqlite/sqlite_int.h"

gh_err_t gh_sqlite_usage_insert(gh_db_t *db, const gh_usage_row_t *r)
{
    static const char sql[] =
        "INSERT OR IGNORE INTO usage_events (journal_seq, request_id, created_at_ms, org_id, "
        "workspace_id, key_id, model, route, input_tokens, output_tokens, "
        "cache_creation_tokens, cache_read_tokens, cost_nusd, status, stream, "
        "client_disconnected, latency_us, upstream_us, input_cost_nusd, output_cost_nusd, "
        "cache_creation_cost_nusd, cache_read_cost_nusd, requested_model, deployment) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    sqlite3_stmt *st = gh_sqlite_stmt(db, sql);
    if (!st)
        return GH_ESTORE;
    int i = 1;
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
    return gh_sqlite_exec(db, st);
}

gh_err_t gh_sqlite_usage_insert_batch(gh_db_t *db, const gh_usage_row_t *rows, size_t n,
                                      bool *inserted)
{
    /* SQLite runs in-process: a prepared statement stepped n times is as fast as a batch. */
    for (size_t i = 0; i < n; i++) {
        gh_yield_point();
        gh_err_t rc = gh_sqlite_usage_insert(db, &rows[i]);
        if (rc)
            return rc;
        inserted[i] = sqlite3_changes(sq(db)->conn) > 0;
    }
    return GH_OK;
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
