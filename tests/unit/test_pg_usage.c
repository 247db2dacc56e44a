/* The PostgreSQL backend's usage events and rollups (src/store/postgres/usage.c, rollups.c)
 * against a real PostgreSQL 15 that scripts/pg-test.sh starts for this binary and stops when
 * it exits. The assertions are test_reports.c's for SQLite: rollups checked against sums
 * computed here from the raw events, for every width, grouping and filter, across a month
 * boundary, with batches that add to buckets already there; the member filter; pruning; the
 * roll forward of hour and day sums from minute rows (migration 0017), with late events and
 * two racing writers, against the events and against SQLite. And
 * what only the batch statement has to get right: events already stored are skipped and
 * reported as such, texts with quotes, backslashes, braces and "NULL" survive the array
 * literals, and millisecond times come back exact. Each test works in a database of its
 * own. */
#include "pg_unit.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>


#include "core/reports.h"
#include "store/store.h"


/* A fixed xorshift sequence, so every run checks the same events. */
static uint64_t rng = 88172645463325252u;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int64_t t_ok(const char *s)
{
    int64_t t = -1;
    assert_int_equal(gh_report_parse_time(s, &t), GH_OK);
    return t;
}

static const char *const ORGS[] = {"org_a", "org_b"};
static const char *const WSS[] = {"wrkspc_default", "wrkspc_w1", "wrkspc_w2"};
static const char *const KEYS[] = {"apikey_1", "apikey_2", "apikey_3", "apikey_4"};
static const char *const MODELS[] = {"model-small", "model-large"};
#define NEV 4000

typedef struct {
    gh_usage_row_t row;
    char request_id[32];
} event_t;

/* Events over three days around the end of February 2026 (a month boundary), of two
 * organizations, with keys that belong to one workspace each (as real keys do). */
static void make_events(event_t *ev, int n, int seq0)
{
    int64_t t0 = t_ok("2026-02-27T22:00:00Z") * 1000;
    for (int i = 0; i < n; i++) {
        gh_usage_row_t *r = &ev[i].row;
        int k = (int)(next_rand() % 4);
        snprintf(ev[i].request_id, sizeof(ev[i].request_id), "req_%d", seq0 + i);
        int64_t in = (int64_t)(next_rand() % 500), out = (int64_t)(next_rand() % 300);
        int64_t cw = next_rand() % 5 == 0 ? (int64_t)(next_rand() % 100) : 0;
        int64_t cr = next_rand() % 3 == 0 ? (int64_t)(next_rand() % 100) : 0;
        *r = (gh_usage_row_t){
            .journal_seq = seq0 + i,
            .request_id = ev[i].request_id,
            .org_id = ORGS[next_rand() % 2],
            .workspace_id = WSS[k % 3],
            .key_id = KEYS[k],
            .model = MODELS[next_rand() % 2],
            .route = "messages",
            .created_at_ms = t0 + (int64_t)(next_rand() % (3 * 86400000u)),
            .input_tokens = in,
            .output_tokens = out,
            .cache_creation_tokens = cw,
            .cache_read_tokens = cr,
            .input_cost_nusd = in * 1000,
            .output_cost_nusd = out * 5000,
            .cache_creation_cost_nusd = cw * 1250,
            .cache_read_cost_nusd = cr * 100,
            .status = 200,
        };
        r->cost_nusd = r->input_cost_nusd + r->output_cost_nusd + r->cache_creation_cost_nusd +
                       r->cache_read_cost_nusd;
    }
}

/* Inserts events in transactions of varying sizes, the way the writer does: every other
 * transaction through the batch statement, the others one event at a time. */
static void insert_batches(gh_db_t *db, event_t *ev, int n)
{
    gh_usage_row_t *rows = malloc(sizeof(*rows) * (size_t)n);
    bool *stored = malloc((size_t)n);
    assert_non_null(rows);
    assert_non_null(stored);
    bool batch = true;
    for (int i = 0; i < n;) {
        int size = 1 + (int)(next_rand() % 700);
        if (size > n - i)
            size = n - i;
        assert_int_equal(gh_store_begin(db), GH_OK);
        for (int j = 0; j < size; j++)
            rows[j] = ev[i + j].row;
        if (batch) {
            assert_int_equal(gh_store_usage_insert_batch(db, rows, (size_t)size, stored),
                             GH_OK);
            for (int j = 0; j < size; j++)
                assert_true(stored[j]);
        } else {
            for (int j = 0; j < size; j++) {
                assert_int_equal(gh_store_usage_insert(db, &rows[j]), GH_OK);
                assert_int_equal(gh_store_changes(db), 1);
            }
        }
        assert_int_equal(gh_store_rollups_add(db, rows, (size_t)size), GH_OK);
        assert_int_equal(gh_store_commit(db), GH_OK);
        batch = !batch;
        i += size;
    }
    free(stored);
    free(rows);
}

typedef struct {
    int64_t bucket;
    const char *ws, *key, *model;
    int64_t v[9];
} expect_t;

static bool in_list(const gh_usage_list_t *l, const char *v)
{
    if (l->n == 0)
        return true;
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], v))
            return true;
    return false;
}

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

static int brute_force(const event_t *ev, int n, const gh_usage_query_t *q, expect_t *out,
                       int cap)
{
    int m = 0;
    for (int i = 0; i < n; i++) {
        const gh_usage_row_t *r = &ev[i].row;
        int64_t b = gh_report_floor(r->created_at_ms / 1000, q->width);
        if (strcmp(r->org_id, q->org_id) || b < q->start_s || b >= q->end_s ||
            !in_list(&q->workspaces, r->workspace_id) || !in_list(&q->keys, r->key_id) ||
            !in_list(&q->models, r->model))
            continue;
        const char *ws = q->by_workspace ? r->workspace_id : NULL;
        const char *key = q->by_key ? r->key_id : NULL;
        const char *model = q->by_model ? r->model : NULL;
        int j = 0;
        while (j < m && !(out[j].bucket == b && same(out[j].ws, ws) && same(out[j].key, key) &&
                          same(out[j].model, model)))
            j++;
        if (j == m) {
            assert_true(m < cap);
            out[m++] = (expect_t){.bucket = b, .ws = ws, .key = key, .model = model};
        }
        const int64_t add[9] = {1,
                                r->input_tokens,
                                r->output_tokens,
                                r->cache_creation_tokens,
                                r->cache_read_tokens,
                                r->input_cost_nusd,
                                r->output_cost_nusd,
                                r->cache_creation_cost_nusd,
                                r->cache_read_cost_nusd};
        for (int k = 0; k < 9; k++)
            out[j].v[k] += add[k];
    }
    return m;
}

typedef struct {
    const expect_t *want;
    int nwant;
    int seen;
    int64_t last_bucket;
    const char *last_ws; /* within a bucket, groups in byte order */
} check_t;

static void on_total(void *ctx, const gh_usage_total_t *t)
{
    check_t *c = ctx;
    assert_true(t->bucket_start_s >= c->last_bucket); /* in bucket order */
    if (t->bucket_start_s == c->last_bucket && t->workspace_id && c->last_ws)
        assert_true(strcmp(c->last_ws, t->workspace_id) <= 0);
    c->last_bucket = t->bucket_start_s;
    c->last_ws = t->workspace_id;
    int j = 0;
    while (j < c->nwant &&
           !(c->want[j].bucket == t->bucket_start_s && same(c->want[j].ws, t->workspace_id) &&
             same(c->want[j].key, t->key_id) && same(c->want[j].model, t->model)))
        j++;
    if (j == c->nwant)
        fail_msg("unexpected group at %lld (%s, %s, %s)", (long long)t->bucket_start_s,
                 t->workspace_id ? t->workspace_id : "-", t->key_id ? t->key_id : "-",
                 t->model ? t->model : "-");
    const int64_t got[9] = {t->requests,          t->input_tokens,
                            t->output_tokens,     t->cache_creation_tokens,
                            t->cache_read_tokens, t->input_cost_nusd,
                            t->output_cost_nusd,  t->cache_creation_cost_nusd,
                            t->cache_read_cost_nusd};
    for (int k = 0; k < 9; k++)
        assert_int_equal(got[k], c->want[j].v[k]);
    c->seen++;
    c->last_ws = c->want[j].ws; /* stable storage for the next comparison */
}

static void check_query(gh_db_t *db, const event_t *ev, int n, const gh_usage_query_t *q)
{
    static expect_t want[20000];
    check_t c = {.want = want, .last_bucket = INT64_MIN};
    c.nwant = brute_force(ev, n, q, want, (int)(sizeof(want) / sizeof(want[0])));
    assert_int_equal(gh_store_usage_report(db, q, on_total, &c), GH_OK);
    assert_int_equal(c.seen, c.nwant);
}

static void rollups_match_the_events(void **state)
{
    pg_unit_world_t *w = *state;
    static event_t ev[NEV];
    make_events(ev, NEV, 1);
    insert_batches(w->db, ev, NEV);

    const gh_rollup_width_t widths[] = {GH_ROLLUP_MINUTE, GH_ROLLUP_HOUR, GH_ROLLUP_DAY};
    int checked = 0;
    for (size_t wi = 0; wi < 3; wi++) {
        for (int g = 0; g < 8; g++) {
            for (int f = 0; f < 5; f++) {
                gh_usage_query_t q = {
                    .org_id = ORGS[(g + f) % 2],
                    .width = widths[wi],
                    .by_workspace = g & 1,
                    .by_key = g & 2,
                    .by_model = g & 4,
                };
                q.start_s = f % 2 ? t_ok("2026-02-28T23:00:00Z") : t_ok("2026-02-27T00:00:00Z");
                q.end_s = f % 2 ? t_ok("2026-03-01T02:00:00Z") : t_ok("2026-03-03T00:00:00Z");
                if (widths[wi] == GH_ROLLUP_DAY && f % 2) {
                    q.start_s = t_ok("2026-02-28T00:00:00Z");
                    q.end_s = t_ok("2026-03-02T00:00:00Z");
                }
                if (f == 2) {
                    q.workspaces.v[q.workspaces.n++] = WSS[1];
                    q.workspaces.v[q.workspaces.n++] = WSS[2];
                }
                if (f == 3)
                    q.keys.v[q.keys.n++] = KEYS[3];
                if (f == 4) {
                    q.models.v[q.models.n++] = MODELS[1];
                    q.keys.v[q.keys.n++] = KEYS[0];
                    q.keys.v[q.keys.n++] = KEYS[1];
                }
                check_query(w->db, ev, NEV, &q);
                checked++;
            }
        }
    }
    assert_int_equal(checked, 120);

    /* The tables hold exactly the events' sums, counted per table in SQL. */
    int64_t in = 0, out_cost = 0;
    for (int i = 0; i < NEV; i++) {
        in += ev[i].row.input_tokens;
        out_cost += ev[i].row.output_cost_nusd;
    }
    const char *tables[] = {"usage_rollup_minute", "usage_rollup_hour", "usage_rollup_day"};
    for (int t = 0; t < 3; t++) {
        char sql[256];
        snprintf(sql, sizeof(sql), "SELECT sum(requests) FROM %s", tables[t]);
        assert_int_equal(pg_unit_scalar(w, sql), NEV);
        snprintf(sql, sizeof(sql), "SELECT sum(input_tokens) FROM %s", tables[t]);
        assert_int_equal(pg_unit_scalar(w, sql), in);
        snprintf(sql, sizeof(sql), "SELECT sum(output_cost_nusd) FROM %s", tables[t]);
        assert_int_equal(pg_unit_scalar(w, sql), out_cost);
    }
    assert_int_equal(pg_unit_scalar(w, "SELECT count(*) FROM usage_events"), NEV);
    int64_t max = 0;
    assert_int_equal(gh_store_usage_max_seq(w->db, &max), GH_OK);
    assert_int_equal(max, NEV);
}

static void filters_member_and_none(void **state)
{
    pg_unit_world_t *w = *state;
    /* A real organization with a Default workspace and W1; the account is a member of W1
     * only, so it reaches Default and W1, never W2. */
    assert_int_equal(
        gh_pg_exec(w->raw,
                   "INSERT INTO accounts (id, email, created_at) VALUES ('user_x', 'x@e.com', "
                   "now());"
                   "INSERT INTO organizations (id, name, created_at) VALUES ('org_a', 'A', now());"
                   "INSERT INTO workspaces (id, org_id, name, display_color, is_default, "
                   "created_at) VALUES ('wrkspc_default', 'org_a', 'Default', '#6C5BB9', true, "
                   "now()), ('wrkspc_w1', 'org_a', 'W1', '#6C5BB9', false, now()),"
                   "('wrkspc_w2', 'org_a', 'W2', '#6C5BB9', false, now());"
                   "INSERT INTO workspace_members (workspace_id, account_id, org_id, role, "
                   "created_at) VALUES ('wrkspc_w1', 'user_x', 'org_a', 'workspace_user', "
                   "now());"),
        GH_OK);
    static event_t ev[600];
    make_events(ev, 600, 1);
    insert_batches(w->db, ev, 600);

    gh_usage_query_t q = {.org_id = "org_a", .width = GH_ROLLUP_DAY, .by_workspace = true,
                          .start_s = t_ok("2026-02-27T00:00:00Z"),
                          .end_s = t_ok("2026-03-03T00:00:00Z")};
    q.workspaces.v[q.workspaces.n++] = WSS[0];
    q.workspaces.v[q.workspaces.n++] = WSS[1];
    gh_usage_query_t member = q;
    member.workspaces.n = 0;
    member.member_id = "user_x";
    check_query(w->db, ev, 600, &q);
    static expect_t want[512];
    check_t c = {.want = want, .last_bucket = INT64_MIN};
    c.nwant = brute_force(ev, 600, &q, want, 512);
    assert_true(c.nwant > 0);
    assert_int_equal(gh_store_usage_report(w->db, &member, on_total, &c), GH_OK);
    assert_int_equal(c.seen, c.nwant);

    check_t none = {.want = want, .nwant = 0, .last_bucket = INT64_MIN};
    q.none = true;
    assert_int_equal(gh_store_usage_report(w->db, &q, on_total, &none), GH_OK);
    q.none = false;
    q.end_s = q.start_s;
    assert_int_equal(gh_store_usage_report(w->db, &q, on_total, &none), GH_OK);
    assert_int_equal(none.seen, 0);
}

static void prunes_old_minutes_only(void **state)
{
    pg_unit_world_t *w = *state;
    static event_t ev[1000];
    make_events(ev, 1000, 1);
    insert_batches(w->db, ev, 1000);
    int64_t cut = t_ok("2026-03-01T00:00:00Z");
    int64_t old = pg_unit_scalar(w, "SELECT count(*) FROM usage_rollup_minute WHERE bucket_start < "
                            "to_timestamp(1772323200)");
    int64_t hours = pg_unit_scalar(w, "SELECT count(*) FROM usage_rollup_hour");
    assert_true(old > 0);
    int64_t deleted = -1;
    assert_int_equal(gh_store_rollups_prune(w->db, cut, &deleted), GH_OK);
    assert_int_equal(deleted, old);
    assert_int_equal(pg_unit_scalar(w, "SELECT count(*) FROM usage_rollup_minute WHERE bucket_start < "
                               "to_timestamp(1772323200)"),
                     0);
    assert_true(pg_unit_scalar(w, "SELECT count(*) FROM usage_rollup_minute") > 0);
    assert_int_equal(pg_unit_scalar(w, "SELECT count(*) FROM usage_rollup_hour"), hours);
    gh_usage_query_t q = {.org_id = ORGS[0], .width = GH_ROLLUP_HOUR,
                          .start_s = t_ok("2026-02-27T00:00:00Z"),
                          .end_s = t_ok("2026-03-03T00:00:00Z")};
    check_query(w->db, ev, 1000, &q);
}

/* A replayed batch stores only what is new, says which, and leaves the rest alone; awkward
 * texts and millisecond times come back exactly. */
static void batch_skips_stored_events_and_keeps_texts(void **state)
{
    pg_unit_world_t *w = *state;
    static event_t ev[GH_USAGE_BATCH_MAX];
    make_events(ev, GH_USAGE_BATCH_MAX, 1);
    const char *awkward[] = {"a\"b", "back\\slash", "{x,y}", "NULL", "", " lead", "é ü 🙂"};
    for (size_t i = 0; i < sizeof(awkward) / sizeof(awkward[0]); i++)
        ev[i].row.request_id = awkward[i];
    ev[1].row.requested_model = "asked-\"for\"";
    ev[2].row.deployment = "https://example.com/v1?a=b,c";
    ev[3].row.created_at_ms = 1772323199999; /* one ms before March */
    /* The second call finds half the batch stored and takes the INSERT ... ON CONFLICT path
     * (the first COPYs): awkward texts through both. */
    size_t half = GH_USAGE_BATCH_MAX / 2;
    ev[half + 1].row.request_id = "second \"half\" {a,b}";
    ev[half + 2].row.requested_model = "NULL";
    ev[half + 2].row.deployment = "";
    gh_usage_row_t rows[GH_USAGE_BATCH_MAX];
    static bool stored[GH_USAGE_BATCH_MAX];
    /* The first half, then the whole batch: only the second half is new. */
    for (size_t i = 0; i < GH_USAGE_BATCH_MAX; i++)
        rows[i] = ev[i].row;
    assert_int_equal(gh_store_begin(w->db), GH_OK);
    assert_int_equal(gh_store_usage_insert_batch(w->db, rows, half, stored), GH_OK);
    assert_int_equal(gh_store_commit(w->db), GH_OK);
    assert_int_equal(gh_store_begin(w->db), GH_OK);
    assert_int_equal(gh_store_usage_insert_batch(w->db, rows, GH_USAGE_BATCH_MAX, stored),
                     GH_OK);
    assert_int_equal(gh_store_changes(w->db), (int)(GH_USAGE_BATCH_MAX - half));
    assert_int_equal(gh_store_commit(w->db), GH_OK);
    for (size_t i = 0; i < GH_USAGE_BATCH_MAX; i++)
        assert_int_equal(stored[i], i >= half);
    assert_int_equal(pg_unit_scalar(w, "SELECT count(*) FROM usage_events"), GH_USAGE_BATCH_MAX);
    /* A single insert of a stored event changes nothing. */
    assert_int_equal(gh_store_usage_insert(w->db, &rows[5]), GH_OK);
    assert_int_equal(gh_store_changes(w->db), 0);

    for (size_t i = 0; i < sizeof(awkward) / sizeof(awkward[0]); i++) {
        char sql[128];
        snprintf(sql, sizeof(sql), "SELECT request_id FROM usage_events WHERE journal_seq = %zu",
                 i + 1);
        PGresult *res;
        assert_int_equal(gh_pg_query(w->raw, sql, 0, NULL, &res), GH_OK);
        assert_int_equal(PQgetisnull(res, 0, 0), 0);
        assert_string_equal(PQgetvalue(res, 0, 0), awkward[i]);
        PQclear(res);
    }
    assert_int_equal(pg_unit_scalar(w, "SELECT count(*) FROM usage_events WHERE journal_seq = 2 AND "
                               "requested_model = 'asked-\"for\"'"),
                     1);
    assert_int_equal(pg_unit_scalar(w, "SELECT count(*) FROM usage_events WHERE journal_seq = 3 AND "
                               "deployment = 'https://example.com/v1?a=b,c'"),
                     1);
    char sql[160];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM usage_events WHERE journal_seq = %zu AND request_id = "
             "'second \"half\" {a,b}'",
             half + 2);
    assert_int_equal(pg_unit_scalar(w, sql), 1);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM usage_events WHERE journal_seq = %zu AND requested_model = "
             "'NULL' AND deployment IS NULL",
             half + 3);
    assert_int_equal(pg_unit_scalar(w, sql), 1);
    /* Unset: NULL, as SQLite stores them. */
    assert_int_equal(pg_unit_scalar(w, "SELECT count(*) FROM usage_events WHERE requested_model IS NULL "
                               "AND deployment IS NULL"),
                     GH_USAGE_BATCH_MAX - 3);
    assert_int_equal(pg_unit_scalar(w, "SELECT (extract(epoch FROM created_at) * 1000)::bigint FROM "
                               "usage_events WHERE journal_seq = 4"),
                     1772323199999);
    int64_t sum = 0;
    for (size_t i = 0; i < GH_USAGE_BATCH_MAX; i++)
        sum += rows[i].created_at_ms;
    assert_int_equal(pg_unit_scalar(w, "SELECT sum((extract(epoch FROM created_at) * 1000)::bigint) "
                               "FROM usage_events"),
                     sum);
}

/* A batch that breaks a constraint fails as a whole and stores nothing once rolled back. */
static void failed_batch_stores_nothing(void **state)
{
    pg_unit_world_t *w = *state;
    static event_t ev[10];
    make_events(ev, 10, 1);
    gh_usage_row_t rows[10];
    for (int i = 0; i < 10; i++)
        rows[i] = ev[i].row;
    rows[7].cost_nusd += 1; /* the costs no longer add up: the CHECK refuses it */
    bool stored[10];
    assert_int_equal(gh_store_begin(w->db), GH_OK);
    assert_int_equal(gh_store_usage_insert_batch(w->db, rows, 10, stored), GH_ECONFLICT);
    gh_store_rollback(w->db);
    assert_int_equal(pg_unit_scalar(w, "SELECT count(*) FROM usage_events"), 0);
    int64_t max = -1;
    assert_int_equal(gh_store_usage_max_seq(w->db, &max), GH_OK);
    assert_int_equal(max, 0);
}

/* The same events written through the batch call on both backends answer every report
 * query with the same rows in the same order. */
typedef struct {
    char *buf;
    size_t len, cap;
} transcript_t;

static void on_total_text(void *ctx, const gh_usage_total_t *t)
{
    transcript_t *tr = ctx;
    if (tr->cap - tr->len < 512) {
        tr->cap = tr->cap ? tr->cap * 2 : 1 << 20;
        tr->buf = realloc(tr->buf, tr->cap);
        assert_non_null(tr->buf);
    }
    int n = snprintf(tr->buf + tr->len, tr->cap - tr->len,
                     "%lld %s %s %s %lld %lld %lld %lld %lld %lld %lld %lld %lld\n",
                     (long long)t->bucket_start_s, t->workspace_id ? t->workspace_id : "-",
                     t->key_id ? t->key_id : "-", t->model ? t->model : "-",
                     (long long)t->requests, (long long)t->input_tokens,
                     (long long)t->output_tokens, (long long)t->cache_creation_tokens,
                     (long long)t->cache_read_tokens, (long long)t->input_cost_nusd,
                     (long long)t->output_cost_nusd, (long long)t->cache_creation_cost_nusd,
                     (long long)t->cache_read_cost_nusd);
    assert_true(n > 0 && (size_t)n < tr->cap - tr->len);
    tr->len += (size_t)n;
}

static void report_all(gh_db_t *db, int64_t start_s, int64_t end_s, transcript_t *tr);

static void reports_of(gh_db_t *db, const event_t *ev, int n, transcript_t *tr)
{
    gh_usage_row_t *rows = malloc(sizeof(*rows) * GH_USAGE_BATCH_MAX);
    bool *stored = malloc(GH_USAGE_BATCH_MAX);
    assert_non_null(rows);
    assert_non_null(stored);
    for (int i = 0; i < n; i += GH_USAGE_BATCH_MAX) {
        size_t b = (size_t)(n - i < GH_USAGE_BATCH_MAX ? n - i : GH_USAGE_BATCH_MAX);
        for (size_t j = 0; j < b; j++)
            rows[j] = ev[(size_t)i + j].row;
        assert_int_equal(gh_store_begin(db), GH_OK);
        assert_int_equal(gh_store_usage_insert_batch(db, rows, b, stored), GH_OK);
        assert_int_equal(gh_store_rollups_add(db, rows, b), GH_OK);
        assert_int_equal(gh_store_commit(db), GH_OK);
    }
    free(stored);
    free(rows);
    report_all(db, t_ok("2026-02-27T00:00:00Z"), t_ok("2026-03-03T00:00:00Z"), tr);
    int64_t max = 0;
    assert_int_equal(gh_store_usage_max_seq(db, &max), GH_OK);
    assert_int_equal(max, n);
}

static void report_all(gh_db_t *db, int64_t start_s, int64_t end_s, transcript_t *tr)
{
    const char *mixed[] = {"wrkspc_W9", "wrkspc_default", "Wrkspc_a", "wrkspc_w1"};
    for (int width = GH_ROLLUP_MINUTE; width <= GH_ROLLUP_DAY; width++)
        for (int g = 0; g < 8; g++)
            for (int o = 0; o < 2; o++) {
                gh_usage_query_t q = {.org_id = ORGS[o], .width = (gh_rollup_width_t)width,
                                      .by_workspace = g & 1, .by_key = g & 2,
                                      .by_model = g & 4,
                                      .start_s = start_s,
                                      .end_s = end_s};
                if (g == 3)
                    for (size_t k = 0; k < 4; k++)
                        q.workspaces.v[q.workspaces.n++] = mixed[k];
                assert_int_equal(gh_store_usage_report(db, &q, on_total_text, tr), GH_OK);
            }
}

static void same_reports_as_sqlite(void **state)
{
    (void)state;
    static event_t ev[5000];
    make_events(ev, 5000, 1);
    /* Workspaces whose byte order differs from a locale's: upper case first in "C". */
    for (int i = 0; i < 5000; i += 3)
        ev[i].row.workspace_id = i % 2 ? "wrkspc_W9" : "Wrkspc_a";
    transcript_t on_sqlite = {0}, on_pg = {0};
    char path[64];
    gh_store_t *sq = pg_unit_sqlite_store(path);
    reports_of(gh_store_db(sq), ev, 5000, &on_sqlite);
    pg_unit_sqlite_close(sq, path);
    gh_store_t *pg = pg_unit_store();
    reports_of(gh_store_db(pg), ev, 5000, &on_pg);
    gh_store_close(pg);
    assert_true(on_sqlite.len > 10000);
    assert_int_equal(on_pg.len, on_sqlite.len);
    assert_memory_equal(on_pg.buf, on_sqlite.buf, on_sqlite.len);
    free(on_sqlite.buf);
    free(on_pg.buf);
}

/* ---- the roll forward (migration 0017): hour and day sums summed from minute rows ---- */

/* Events spread over [t0_s, t0_s + span_s), seq0 on, as make_events makes them. */
static void make_events_in(event_t *ev, int n, int seq0, int64_t t0_s, int64_t span_s)
{
    make_events(ev, n, seq0);
    for (int i = 0; i < n; i++)
        ev[i].row.created_at_ms =
            t0_s * 1000 + (int64_t)(next_rand() % (uint64_t)(span_s * 1000));
}

/* One transaction of the writer: `n` events (at most a batch) with their rollups. */
static gh_err_t write_batch(gh_db_t *db, const event_t *ev, int n)
{
    gh_usage_row_t rows[GH_USAGE_BATCH_MAX];
    bool stored[GH_USAGE_BATCH_MAX];
    assert(n <= GH_USAGE_BATCH_MAX);
    for (int j = 0; j < n; j++)
        rows[j] = ev[j].row;
    gh_err_t rc = gh_store_begin(db);
    if (!rc)
        rc = gh_store_usage_insert_batch(db, rows, (size_t)n, stored);
    if (!rc)
        rc = gh_store_rollups_add(db, rows, (size_t)n);
    if (!rc)
        return gh_store_commit(db);
    gh_store_rollback(db);
    return rc;
}

static void write_all(gh_db_t *db, const event_t *ev, int n)
{
    for (int i = 0; i < n; i += 500)
        assert_int_equal(write_batch(db, ev + i, n - i < 500 ? n - i : 500), GH_OK);
}

#define RF_T0 "2026-03-10T10:00:00Z"

/* Reports from `first_width` up to day (three groupings) of both organizations over the two
 * days around RF_T0, against sums computed here from the events. */
static void check_rolled_reports(gh_db_t *db, const event_t *ev, int n, int first_width)
{
    for (int width = first_width; width <= GH_ROLLUP_DAY; width++)
        for (int g = 0; g < 8; g += 3)
            for (int o = 0; o < 2; o++) {
                gh_usage_query_t q = {.org_id = ORGS[o], .width = (gh_rollup_width_t)width,
                                      .by_workspace = g & 1, .by_key = g & 2,
                                      .by_model = g & 4,
                                      .start_s = t_ok("2026-03-09T00:00:00Z"),
                                      .end_s = t_ok("2026-03-11T00:00:00Z")};
                check_query(db, ev, n, &q);
                /* A range that starts and ends inside an hour: only whole buckets. */
                q.start_s = t_ok("2026-03-10T09:30:00Z");
                q.end_s = t_ok("2026-03-10T10:30:00Z");
                check_query(db, ev, n, &q);
            }
}

/* The three tables each hold every event exactly once after a full roll. */
static void check_tables_complete(pg_unit_world_t *w, int n)
{
    assert_int_equal(pg_unit_scalar(w, "SELECT sum(requests) FROM usage_rollup_minute"), n);
    assert_int_equal(pg_unit_scalar(w, "SELECT sum(requests) FROM usage_rollup_hour"), n);
    assert_int_equal(pg_unit_scalar(w, "SELECT sum(requests) FROM usage_rollup_day"), n);
    assert_int_equal(pg_unit_scalar(w, "SELECT (SELECT sum(output_cost_nusd) FROM usage_rollup_day) - "
                               "(SELECT sum(output_cost_nusd) FROM usage_rollup_minute)"),
                     0);
}

/* Sets the roll forward's mark to `t0` (seconds) on the world's database; returns `t0`. */
static int64_t mark_at(pg_unit_world_t *w, int64_t t0)
{
    char sql[128];
    snprintf(sql, sizeof(sql),
             "UPDATE usage_rollup_watermark SET rolled_before = to_timestamp(%lld)",
             (long long)t0);
    assert_int_equal(gh_pg_exec(w->raw, sql), GH_OK);
    return t0;
}

/* Events of the current minutes go to the minute table only; a roll forward sums them into
 * the hour and day tables; late events (before the mark) go to all three at once; more events
 * after; and the hour and day reports equal the events' own sums, and SQLite's reports of the
 * same events, before and after each roll. Rolling again to the same mark does nothing. */
static void rolls_forward_exactly_once(void **state)
{
    pg_unit_world_t *w = *state;
    const int64_t t0 = mark_at(w, t_ok(RF_T0));
    char path[64];
    gh_store_t *sq = pg_unit_sqlite_store(path);
    gh_db_t *lite = gh_store_db(sq);
    static event_t ev[4010];
    int n = 0;
    transcript_t on_pg = {0}, on_sqlite = {0};
#define BOTH_SAME()                                                                            \
    do {                                                                                       \
        check_rolled_reports(w->db, ev, n, GH_ROLLUP_MINUTE);                                  \
        on_pg.len = on_sqlite.len = 0;                                                         \
        report_all(w->db, t_ok("2026-03-09T00:00:00Z"), t_ok("2026-03-11T00:00:00Z"), &on_pg); \
        report_all(lite, t_ok("2026-03-09T00:00:00Z"), t_ok("2026-03-11T00:00:00Z"),           \
                   &on_sqlite);                                                                \
        assert_int_equal(on_pg.len, on_sqlite.len);                                            \
        assert_memory_equal(on_pg.buf, on_sqlite.buf, on_pg.len);                             \
    } while (0)

    /* The current minutes: only the minute table gets them. */
    make_events_in(ev, 1000, 1, t0, 5 * 60);
    n = 1000;
    write_all(w->db, ev, n);
    write_all(lite, ev, n);
    assert_int_equal(pg_unit_scalar(w, "SELECT count(*) FROM usage_rollup_hour"), 0);
    assert_int_equal(pg_unit_scalar(w, "SELECT count(*) FROM usage_rollup_day"), 0);
    BOTH_SAME();

    /* A roll to three minutes in: those minutes' sums reach the hour and day tables. */
    int64_t rolled = -1;
    assert_int_equal(gh_store_rollups_roll(w->db, t0 + 3 * 60 + 17, &rolled), GH_OK);
    assert_true(rolled > 0);
    assert_int_equal(pg_unit_scalar(w, "SELECT date_part('epoch', rolled_before)::bigint FROM "
                               "usage_rollup_watermark"),
                     t0 + 3 * 60);
    int64_t before_mark = 0;
    for (int i = 0; i < n; i++)
        before_mark += ev[i].row.created_at_ms / 1000 < t0 + 3 * 60;
    assert_int_equal(pg_unit_scalar(w, "SELECT sum(requests) FROM usage_rollup_hour"), before_mark);
    BOTH_SAME();

    /* Late events (an hour and more before the mark, and just before it) and current ones. */
    make_events_in(ev + n, 1000, n + 1, t0 - 2 * 3600, 2 * 3600 + 3 * 60);
    make_events_in(ev + n + 1000, 500, n + 1001, t0 + 3 * 60, 4 * 60);
    write_all(w->db, ev + n, 1500);
    write_all(lite, ev + n, 1500);
    n += 1500;
    BOTH_SAME();

    /* Roll again, then more events after the mark, then the last roll. */
    assert_int_equal(gh_store_rollups_roll(w->db, t0 + 10 * 60, &rolled), GH_OK);
    BOTH_SAME();
    make_events_in(ev + n, 1500, n + 1, t0 + 5 * 60, 30 * 60);
    write_all(w->db, ev + n, 1500);
    write_all(lite, ev + n, 1500);
    n += 1500;
    BOTH_SAME();
    assert_int_equal(gh_store_rollups_roll(w->db, t0 + 3600, &rolled), GH_OK);
    assert_true(rolled > 0);
    BOTH_SAME();
    check_tables_complete(w, n);
    /* Nothing left: the same mark again, or an older one, changes nothing. */
    assert_int_equal(gh_store_rollups_roll(w->db, t0 + 3600, &rolled), GH_OK);
    assert_int_equal(rolled, 0);
    assert_int_equal(gh_store_rollups_roll(w->db, t0, &rolled), GH_OK);
    assert_int_equal(rolled, 0);
    check_tables_complete(w, n);
    BOTH_SAME();
    /* The prune never deletes minute rows the roll has not passed. */
    make_events_in(ev + n, 10, n + 1, t0 + 3600, 60);
    write_all(w->db, ev + n, 10);
    n += 10;
    int64_t deleted = -1;
    assert_int_equal(gh_store_rollups_prune(w->db, t0 + 2 * 3600, &deleted), GH_OK);
    assert_int_equal(pg_unit_scalar(w, "SELECT sum(requests) FROM usage_rollup_minute"), 10);
    check_rolled_reports(w->db, ev, n, GH_ROLLUP_HOUR);
#undef BOTH_SAME
    free(on_pg.buf);
    free(on_sqlite.buf);
    pg_unit_sqlite_close(sq, path);
}

/* Two writers, each on its own connection, write batches of events around a moving mark
 * (some before it, some after) and roll forward after each batch, racing each other: when
 * both are done and a last roll has run, every table holds each event exactly once and the
 * reports equal the events' sums. */
typedef struct {
    gh_store_t *store;
    const event_t *ev;
    int n;
    int64_t t0;
    gh_err_t rc;
} racer_t;

static void *racer_main(void *arg)
{
    racer_t *r = arg;
    gh_db_t *db = gh_store_db(r->store);
    for (int i = 0; i < r->n && !r->rc; i += 200) {
        r->rc = write_batch(db, r->ev + i, r->n - i < 200 ? r->n - i : 200);
        /* The mark walks through the hour the events are in. */
        if (!r->rc)
            r->rc = gh_store_rollups_roll(db, r->t0 + (int64_t)i * 3600 / r->n, NULL);
    }
    return NULL;
}

static void racing_writers_and_rollers_count_once(void **state)
{
    pg_unit_world_t *w = *state;
    const int64_t t0 = mark_at(w, t_ok(RF_T0));
    static event_t ev[4000];
    make_events_in(ev, 4000, 1, t0 - 600, 3600 + 600);
    gh_store_t *other = NULL;
    char err[512] = "";
    assert_int_equal(gh_postgres_ops.open(&other, w->url, err, sizeof(err)), GH_OK);
    /* The second writer is another node: its events are keyed by its own journal. */
    gh_store_set_node_id(other, "node_b");
    racer_t a = {.store = w->store, .ev = ev, .n = 2000, .t0 = t0};
    racer_t b = {.store = other, .ev = ev + 2000, .n = 2000, .t0 = t0};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, racer_main, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, racer_main, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(a.rc, GH_OK);
    assert_int_equal(b.rc, GH_OK);
    check_rolled_reports(w->db, ev, 4000, GH_ROLLUP_MINUTE);
    assert_int_equal(gh_store_rollups_roll(gh_store_db(other), t0 + 2 * 3600, NULL), GH_OK);
    gh_store_close(other);
    check_tables_complete(w, 4000);
    check_rolled_reports(w->db, ev, 4000, GH_ROLLUP_MINUTE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(rollups_match_the_events, pg_unit_world_setup, pg_unit_world_teardown),
        cmocka_unit_test_setup_teardown(filters_member_and_none, pg_unit_world_setup, pg_unit_world_teardown),
        cmocka_unit_test_setup_teardown(prunes_old_minutes_only, pg_unit_world_setup, pg_unit_world_teardown),
        cmocka_unit_test_setup_teardown(batch_skips_stored_events_and_keeps_texts,
                                        pg_unit_world_setup, pg_unit_world_teardown),
        cmocka_unit_test_setup_teardown(failed_batch_stores_nothing, pg_unit_world_setup, pg_unit_world_teardown),
        cmocka_unit_test(same_reports_as_sqlite),
        cmocka_unit_test_setup_teardown(rolls_forward_exactly_once, pg_unit_world_setup, pg_unit_world_teardown),
        cmocka_unit_test_setup_teardown(racing_writers_and_rollers_count_once, pg_unit_world_setup, pg_unit_world_teardown),
    };
    return cmocka_run_group_tests(tests, pg_unit_start, pg_unit_stop);
}
