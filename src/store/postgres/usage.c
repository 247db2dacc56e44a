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
#include "lib/yield.h"
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

/* The batch statement's text columns: request id, the five of the series and route, the
 * requested model and the deployment; the others are numbers. */
#define BATCH_TEXT_COL(c) ((c) == 1 || ((c) >= 3 && (c) <= 7) || (c) >= 22)

/* Room for a batch's literal per column: the longest texts (request ids, URLs of
 * deployments) are bounded by the journal's record; 4 KiB an event is far above them. */
#define COLUMN_MAX_BYTES ((size_t)GH_USAGE_BATCH_MAX * 4096)

static int cmp_seq(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* ---- the COPY path ---- */

/* A batch in COPY's binary format: a signature and two zero words, then per row the number
 * of fields and each field as a 4-byte length (-1 for NULL) and its bytes in network order,
 * then -1. Timestamps are microseconds since 2000-01-01 UTC. */
typedef struct {
    char *p;
    size_t len, cap;
    bool failed; /* out of memory, or past COPY_MAX_BYTES */
} copy_buf_t;

/* A batch's COPY data at most: as much as its 24 array parameters may hold. */
#define COPY_MAX_BYTES ((size_t)BATCH_COLS * COLUMN_MAX_BYTES)

static void put(copy_buf_t *b, const void *v, size_t len)
{
    if (b->failed)
        return;
    if (len > COPY_MAX_BYTES - b->len) {
        b->failed = true;
        return;
    }
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap < b->len + len)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, v, len);
    b->len += len;
}

static void put_be(copy_buf_t *b, uint64_t v, size_t bytes)
{
    unsigned char out[8];
    for (size_t i = 0; i < bytes; i++)
        out[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
    put(b, out, bytes);
}

static void field_i64(copy_buf_t *b, int64_t v)
{
    put_be(b, 8, 4);
    put_be(b, (uint64_t)v, 8);
}

static void field_i32(copy_buf_t *b, int32_t v)
{
    put_be(b, 4, 4);
    put_be(b, (uint32_t)v, 4);
}

static void field_bool(copy_buf_t *b, bool v)
{
    put_be(b, 1, 4);
    put_be(b, v, 1);
}

static void field_text(copy_buf_t *b, const char *v)
{
    if (!v) {
        put_be(b, UINT32_MAX, 4); /* -1: NULL */
        return;
    }
    size_t len = strlen(v);
    if (len > INT32_MAX) {
        b->failed = true;
        return;
    }
    put_be(b, len, 4);
    put(b, v, len);
}

/* Unix milliseconds to PostgreSQL's timestamp: microseconds since 2000-01-01. */
#define PG_EPOCH_MS INT64_C(946684800000)

static const char copy_sql[] =
    "COPY usage_events (" USAGE_COLS ", node_id) FROM STDIN (FORMAT binary)";

/* Whether any of `n` sorted sequence numbers repeats. */
static bool has_repeat(const int64_t *seqs, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (seqs[i] == seqs[i - 1])
            return true;
    return false;
}

/* The fast path of a batch: when no event of it is stored yet (one index probe over the
 * range of its sequence numbers; nothing else inserts these: other nodes' events have their
 * own node id, and the writer's other lane holds other sequence numbers, its batches taken
 * from the queue apart from this one's), COPY the whole batch and set `*copied`. When some may be stored already
 * (a replay), `*copied` stays false and the caller takes the INSERT ... ON CONFLICT DO
 * NOTHING path, which names them. */
static gh_err_t copy_batch(gh_db_t *db, const gh_usage_row_t *rows, size_t n, bool *inserted,
                           bool *copied)
{
    static const char probe_sql[] =
        "SELECT 1 FROM usage_events WHERE node_id = $3 AND journal_seq BETWEEN $1 AND $2 "
        "LIMIT 1";
    int64_t *seqs = malloc(n * sizeof(*seqs));
    if (!seqs)
        return GH_ENOMEM;
    for (size_t i = 0; i < n; i++)
        seqs[i] = rows[i].journal_seq;
    qsort(seqs, n, sizeof(*seqs), cmp_seq);
    bool repeat = has_repeat(seqs, n);
    gh_pgs_num_t lo, hi;
    const char *p[] = {gh_pgs_i64(&lo, seqs[0]), gh_pgs_i64(&hi, seqs[n - 1]),
                       gh_pgs_node_id(db)};
    free(seqs);
    *copied = false;
    if (repeat)
        return GH_OK;
    PGresult *res = NULL;
    gh_err_t rc = gh_pgs_query_fast(db, probe_sql, 3, p, &res);
    if (rc)
        return rc;
    bool stored = PQntuples(res) > 0;
    PQclear(res);
    if (stored)
        return GH_OK;

    copy_buf_t b = {0};
    put(&b, "PGCOPY\n\377\r\n\0", 11);
    put_be(&b, 0, 4); /* flags */
    put_be(&b, 0, 4); /* header extension */
    for (size_t i = 0; i < n && !b.failed; i++) {
        gh_yield_point();
        const gh_usage_row_t *r = &rows[i];
        put_be(&b, BATCH_COLS + 1, 2);
        field_i64(&b, r->journal_seq);
        field_text(&b, r->request_id);
        field_i64(&b, (r->created_at_ms - PG_EPOCH_MS) * 1000);
        field_text(&b, r->org_id);
        field_text(&b, r->workspace_id);
        field_text(&b, r->key_id);
        field_text(&b, r->model);
        field_text(&b, r->route);
        field_i64(&b, r->input_tokens);
        field_i64(&b, r->output_tokens);
        field_i64(&b, r->cache_creation_tokens);
        field_i64(&b, r->cache_read_tokens);
        field_i64(&b, r->cost_nusd);
        field_i32(&b, (int32_t)r->status);
        field_bool(&b, r->stream != 0);
        field_bool(&b, r->client_disconnected != 0);
        field_i64(&b, r->latency_us);
        field_i64(&b, r->upstream_us);
        field_i64(&b, r->input_cost_nusd);
        field_i64(&b, r->output_cost_nusd);
        field_i64(&b, r->cache_creation_cost_nusd);
        field_i64(&b, r->cache_read_cost_nusd);
        field_text(&b, requested_of(r));
        field_text(&b, deployment_of(r));
        field_text(&b, gh_pgs_node_id(db));
    }
    put_be(&b, UINT16_MAX, 2); /* -1: the end */
    if (b.failed) {
        free(b.p);
        gh_log_error("store: a batch of %zu usage events does not fit a COPY", n);
        return GH_EINTERNAL;
    }
    /* In the writer's transaction, which it abandons on any error. */
    rc = gh_pgs_copy_in(db, copy_sql, b.p, b.len);
    free(b.p);
    if (rc)
        return rc;
    assert(gh_pgs_changes(db) == (int64_t)n);
    for (size_t i = 0; i < n; i++)
        inserted[i] = true;
    *copied = true;
    return GH_OK;
}

gh_err_t gh_pgs_usage_insert_batch(gh_db_t *db, const gh_usage_row_t *rows, size_t n,
                                   bool *inserted)
{
    assert(n <= GH_USAGE_BATCH_MAX);
    if (n == 0)
        return GH_OK;
    bool copied = false;
    gh_err_t rc = copy_batch(db, rows, n, inserted, &copied);
    if (rc || copied)
        return rc;
    gh_pg_array_t col[BATCH_COLS];
    for (int c = 0; c < BATCH_COLS; c++)
        gh_pg_array_init_binary(&col[c], COLUMN_MAX_BYTES,
                                BATCH_TEXT_COL(c) ? GH_PG_OID_TEXT : GH_PG_OID_INT8);
    rc = GH_OK;
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
    int lens[BATCH_COLS + 1];
    for (int c = 0; c < BATCH_COLS && !bad; c++)
        bad = !(p[c] = gh_pg_array_binary(&col[c], &lens[c]));
    p[BATCH_COLS] = gh_pgs_node_id(db); /* a text parameter's binary form is its bytes */
    lens[BATCH_COLS] = (int)strlen(p[BATCH_COLS]);
    PGresult *res = NULL;
    int64_t *seqs = NULL;
    if (bad) {
        gh_log_error("store: a batch of %zu usage events does not fit a statement", n);
        rc = GH_EINTERNAL;
        goto out_free;
    }
    /* The writer abandons the whole transaction on any error: no savepoint needed. */
    if ((rc = gh_pgs_query_binary(db, batch_sql, BATCH_COLS + 1, p, lens, &res)))
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
