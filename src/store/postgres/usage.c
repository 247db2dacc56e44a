/* Store functions for usage events (PostgreSQL backend).
 *
 * The usage writer hands over up to GH_USAGE_BATCH_MAX events at a time, inside the
 * transaction that also writes their rollups and billing's ledger draws. They go to the
 * server as ONE statement: each column of the batch is one array parameter, and
 * `INSERT ... SELECT ... FROM unnest(...) ON CONFLICT (node_id, journal_seq) DO NOTHING
 * RETURNING journal_seq` stores the events not stored yet and names them. A statement with
 * 24 parameters is prepared once per connection whatever the batch size, so a batch costs
 * one round trip and one plan. Events are keyed by (node_id, journal_seq): the node is the
 * store's (gh_store_set_node_id, core/cluster.h), so several nodes' journals, each numbered
 * from 1, never collide, and each node's replay stays idempotent. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "store/postgres/pg_array.h"
#include "store/postgres/pg_int.h"

/* Milliseconds since the epoch to timestamptz, exactly (pg_int.h says why). */
#define MS_IN(p) GH_PGS_TIME_IN_MS(p)

#define USAGE_COLS                                                                             \
    "journal_seq, request_id, created_at, org_id, workspace_id, key_id, model, route, "       \
    "input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, cost_nusd, "     \
    "status, stream, client_disconnected, latency_us, upstream_us, input_cost_nusd, "        \
    "output_cost_nusd, cache_creation_cost_nusd, cache_read_cost_nusd, requested_model, "    \
    "deployment"

/* The parameters of one event, in USAGE_COLS order, as the single insert and the batch
 * insert both take them: 5 texts, then numbers, then the two optional texts. */
enum { NUM_COLS = 16 };

static void row_nums(const gh_usage_row_t *r, int64_t out[NUM_COLS])
{
    const int64_t nums[NUM_COLS] = {r->input_tokens,          r->output_tokens,
                                    r->cache_creation_tokens, r->cache_read_tokens,
                                    r->cost_nusd,             r->status,
                                    r->stream,                r->client_disconnected,
                                    r->latency_us,            r->upstream_us,
                                    r->input_cost_nusd,       r->output_cost_nusd,
                                    r->cache_creation_cost_nusd, r->cache_read_cost_nusd,
                                    r->journal_seq,           r->created_at_ms};
    memcpy(out, nums, sizeof(nums));
}

/* Both NULL when they add nothing: the requested model served, on the built-in mock (as
 * the SQLite backend stores them). */
static const char *requested_of(const gh_usage_row_t *r)
{
    return r->requested_model && r->model && strcmp(r->requested_model, r->model)
               ? r->requested_model
               : NULL;
}

static const char *deployment_of(const gh_usage_row_t *r)
{
    return r->deployment && r->deployment[0] ? r->deployment : NULL;
}

gh_err_t gh_pgs_usage_insert(gh_db_t *db, const gh_usage_row_t *r)
{
    static const char sql[] =
        "INSERT INTO usage_events (" USAGE_COLS ", node_id) VALUES ($1, $2, " MS_IN("$3") ", "
        "$4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::int <> 0, $16::int <> 0, $17, "
        "$18, $19, $20, $21, $22, $23, $24, $25) ON CONFLICT (node_id, journal_seq) DO NOTHING";
    int64_t nums[NUM_COLS];
    row_nums(r, nums);
    gh_pgs_num_t b[NUM_COLS];
    const char *p[25];
    int i = 0;
    p[i++] = gh_pgs_i64(&b[14], nums[14]);
    p[i++] = r->request_id;
    p[i++] = gh_pgs_i64(&b[15], nums[15]);
    p[i++] = r->org_id;
    p[i++] = r->workspace_id;
    p[i++] = r->key_id;
    p[i++] = r->model;
    p[i++] = r->route;
    for (int k = 0; k < 14; k++)
        p[i++] = gh_pgs_i64(&b[k], nums[k]);
    p[i++] = requested_of(r);
    p[i++] = deployment_of(r);
    p[i++] = gh_pgs_node_id(db);
    assert(i == 25);
    return gh_pgs_exec(db, sql, i, p);
}

/* The batch statement: one array per column, unnested in step. */
static const char batch_sql[] =
    "INSERT INTO usage_events (" USAGE_COLS ", node_id) "
    "SELECT s, rid, " MS_IN("ms") ", o, w, k, m, rt, it, ot, cct, crt, c, st::int, sm <> 0, "
    "cd <> 0, lat, up, ic, oc, ccc, crc, rm, dep, $25::text "
    "FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], "
    "$7::text[], $8::text[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], "
    "$13::bigint[], $14::bigint[], $15::bigint[], $16::bigint[], $17::bigint[], "
    "$18::bigint[], $19::bigint[], $20::bigint[], $21::bigint[], $22::bigint[], "
    "$23::text[], $24::text[]) "
    "AS t(s, rid, ms, o, w, k, m, rt, it, ot, cct, crt, c, st, sm, cd, lat, up, ic, oc, ccc, "
    "crc, rm, dep) "
    "ON CONFLICT (node_id, journal_seq) DO NOTHING RETURNING journal_seq";

enum { BATCH_COLS = 24 };

/* Room for a batch's literal per column: the longest texts (request ids, URLs of
 * deployments) are bounded by the journal's record; 4 KiB an event is far above them. */
#define COLUMN_MAX_BYTES ((size_t)GH_USAGE_BATCH_MAX * 4096)

static int cmp_seq(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

gh_err_t gh_pgs_usage_insert_batch(gh_db_t *db, const gh_usage_row_t *rows, size_t n,
                                   bool *inserted)
{
    assert(n <= GH_USAGE_BATCH_MAX);
    if (n == 0)
        return GH_OK;
    gh_pg_array_t col[BATCH_COLS];
    for (int c = 0; c < BATCH_COLS; c++)
        gh_pg_array_init(&col[c], COLUMN_MAX_BYTES);
    gh_err_t rc = GH_OK;
    bool bad = false; /* an append failed: the batch does not fit */
    for (size_t i = 0; i < n && !bad; i++) {
        const gh_usage_row_t *r = &rows[i];
        int64_t nums[NUM_COLS];
        row_nums(r, nums);
        int c = 0;
        bad |= gh_pg_array_int(&col[c++], r->journal_seq) != GH_OK;
        bad |= gh_pg_array_text(&col[c++], r->request_id) != GH_OK;
        bad |= gh_pg_array_int(&col[c++], r->created_at_ms) != GH_OK;
        const char *texts[] = {r->org_id, r->workspace_id, r->key_id, r->model, r->route};
        for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++)
            bad |= gh_pg_array_text(&col[c++], texts[t]) != GH_OK;
        for (int k = 0; k < 14; k++)
            bad |= gh_pg_array_int(&col[c++], nums[k]) != GH_OK;
        bad |= gh_pg_array_text(&col[c++], requested_of(r)) != GH_OK;
        bad |= gh_pg_array_text(&col[c++], deployment_of(r)) != GH_OK;
        assert(c == BATCH_COLS);
    }
    const char *p[BATCH_COLS + 1];
    for (int c = 0; c < BATCH_COLS && !bad; c++)
        bad = !(p[c] = gh_pg_array_literal(&col[c]));
    p[BATCH_COLS] = gh_pgs_node_id(db);
    PGresult *res = NULL;
    int64_t *seqs = NULL;
    if (bad) {
        gh_log_error("store: a batch of %zu usage events does not fit a statement", n);
        rc = GH_EINTERNAL;
        goto out_free;
    }
    /* The writer abandons the whole transaction on any error: no savepoint needed. */
    if ((rc = gh_pgs_query_fast(db, batch_sql, BATCH_COLS + 1, p, &res)))
        goto out_free;
    /* Which events were stored: the returned sequence numbers, looked up sorted. */
    int got = PQntuples(res);
    seqs = malloc((got > 0 ? (size_t)got : 1) * sizeof(*seqs));
    if (!seqs) {
        rc = GH_ENOMEM;
        goto out_free;
    }
    for (int k = 0; k < got; k++)
        seqs[k] = gh_pgs_col_i64(res, k, 0);
    qsort(seqs, (size_t)got, sizeof(*seqs), cmp_seq);
    for (size_t i = 0; i < n; i++)
        inserted[i] = got > 0 && bsearch(&rows[i].journal_seq, seqs, (size_t)got,
                                         sizeof(*seqs), cmp_seq) != NULL;
out_free:
    free(seqs);
    PQclear(res);
    for (int c = 0; c < BATCH_COLS; c++)
        gh_pg_array_free(&col[c]);
    return rc;
}

gh_err_t gh_pgs_usage_max_seq(gh_db_t *db, int64_t *seq)
{
    /* The primary key (node_id, journal_seq) answers this from its last entry. */
    static const char sql[] =
        "SELECT coalesce(max(journal_seq), 0) FROM usage_events WHERE node_id = $1";
    PGresult *res = NULL;
    const char *p[1] = {gh_pgs_node_id(db)};
    *seq = 0;
    gh_err_t rc = gh_pgs_query(db, sql, 1, p, &res);
    if (rc)
        return rc;
    if (PQntuples(res) > 0)
        *seq = gh_pgs_col_i64(res, 0, 0);
    PQclear(res);
    return GH_OK;
}
