/* Usage reports: time parsing and bucketing, cents and page tokens, and the rollups on a real
 * SQLite file. Rollups are checked against sums computed here from the raw events, for every
 * width, grouping and filter, over a month boundary; with batches that add to buckets
 * already there; after pruning; and after a crash, through the journal's replay. */
#include "unit.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/reports.h"
#include "core/usage.h"
#include "gateway/meter.h"
#include "lib/crypto.h"
#include "lib/embed.h"
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

/* ---- time, money, pages ---- */

static int64_t t_ok(const char *s)
{
    int64_t t = -1;
    assert_int_equal(gh_report_parse_time(s, &t), GH_OK);
    return t;
}

static void parses_rfc3339(void **state)
{
    (void)state;
    assert_int_equal(t_ok("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(t_ok("2026-03-01T00:00:00Z"), 1772323200);
    assert_int_equal(t_ok("2026-03-01t00:00:00z"), 1772323200);
    /* Offsets move the instant; fractions are dropped. */
    assert_int_equal(t_ok("2026-03-01T01:30:00+01:30"), 1772323200);
    assert_int_equal(t_ok("2026-02-28T19:00:00-05:00"), 1772323200);
    assert_int_equal(t_ok("2026-03-01T00:00:00.999999999Z"), 1772323200);
    assert_int_equal(t_ok("2028-02-29T12:00:00Z"), 1835438400);
    assert_int_equal(t_ok("2000-02-29T00:00:00Z"), 951782400);
    assert_int_equal(t_ok("9999-12-31T23:59:59Z"), INT64_C(253402300799));
    const char *bad[] = {
        "",
        "yesterday",
        "2026-03-01",
        "2026-03-01T00:00:00",        /* no offset */
        "2026-03-01 00:00:00Z",       /* a space */
        "2026-13-01T00:00:00Z",       /* month 13 */
        "2026-02-29T00:00:00Z",       /* not a leap year */
        "1900-02-29T00:00:00Z",       /* nor is 1900 */
        "2026-04-31T00:00:00Z",
        "2026-03-01T24:00:00Z",
        "2026-03-01T23:60:00Z",
        "2026-03-01T23:59:60Z",
        "2026-03-01T00:00:00.Z",
        "2026-03-01T00:00:00.1234567890Z",
        "2026-03-01T00:00:00+0100",
        "2026-03-01T00:00:00+24:00",
        "2026-03-01T00:00:00Zjunk",
        "1970-01-01T00:30:00+01:00", /* before 1970 */
        "+2026-03-01T00:00:00Z",
        "2026-3-01T00:00:00Z",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t t;
        if (gh_report_parse_time(bad[i], &t) != GH_EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    char out[GH_REPORT_TIME_MAX];
    gh_report_format_time(1772323200, out);
    assert_string_equal(out, "2026-03-01T00:00:00Z");
}

static void buckets_align_to_utc(void **state)
{
    (void)state;
    int64_t t = t_ok("2026-02-28T23:59:59Z");
    assert_int_equal(gh_report_floor(t, GH_ROLLUP_MINUTE), t_ok("2026-02-28T23:59:00Z"));
    assert_int_equal(gh_report_floor(t, GH_ROLLUP_HOUR), t_ok("2026-02-28T23:00:00Z"));
    assert_int_equal(gh_report_floor(t, GH_ROLLUP_DAY), t_ok("2026-02-28T00:00:00Z"));
    assert_int_equal(gh_report_ceil(t, GH_ROLLUP_DAY), t_ok("2026-03-01T00:00:00Z"));
    assert_int_equal(gh_report_ceil(t_ok("2026-03-01T00:00:00Z"), GH_ROLLUP_DAY),
                     t_ok("2026-03-01T00:00:00Z"));
    assert_int_equal(gh_report_ceil(t + 2, GH_ROLLUP_MINUTE), t_ok("2026-03-01T00:01:00Z"));
}

static void formats_cents_exactly(void **state)
{
    (void)state;
    const struct {
        int64_t nusd;
        const char *cents;
    } cases[] = {
        {0, "0"},
        {1, "0.0000001"},
        {10000000, "1"},
        {500000000, "50"},
        {1234567890, "123.456789"},
        {1000000000, "100"},
        {1000000001, "100.0000001"},
        {-25000000, "-2.5"},
        {INT64_MAX, "922337203685.4775807"},
        {INT64_MIN, "-922337203685.4775808"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[GH_REPORT_CENTS_MAX];
        gh_report_cents(cases[i].nusd, out);
        assert_string_equal(out, cases[i].cents);
    }
}

static void page_tokens_round_trip(void **state)
{
    (void)state;
    char tok[GH_REPORT_PAGE_MAX];
    gh_report_page_token(t_ok("2025-05-14T00:00:00Z"), tok);
    /* The shape of Anthropic's tokens: base64 of the RFC 3339 time. */
    assert_string_equal(tok, "page_MjAyNS0wNS0xNFQwMDowMDowMFo=");
    int64_t t;
    assert_int_equal(gh_report_page_parse(tok, &t), GH_OK);
    assert_int_equal(t, t_ok("2025-05-14T00:00:00Z"));
    assert_int_equal(gh_report_page_parse("page_MjAyNS0wNS0xNFQwMDowMDowMFo", &t), GH_OK);
    const char *bad[] = {"", "page_", "MjAyNS0wNS0xNFQwMDowMDowMFo=", "page_!!!!",
                         "page_aGVsbG8=", NULL};
    for (const char **b = bad; *b; b++)
        assert_int_equal(gh_report_page_parse(*b, &t), GH_EINVAL);
    assert_int_equal(gh_report_page_parse(NULL, &t), GH_EINVAL);
}

/* The cost of each token type adds up to the total the gateway charges, to the nano-USD. */
static void costs_split_exactly(void **state)
{
    (void)state;
    gh_model_cfg_t model = {.price_input = 3000000000, .price_output = 15000000000,
                            .price_cache_write = 3750000000, .price_cache_read = 300000000};
    for (int i = 0; i < 2000; i++) {
        gh_meter_usage_t u = {(int64_t)(next_rand() % 100000), (int64_t)(next_rand() % 9999),
                              (int64_t)(next_rand() % 777), (int64_t)(next_rand() % 5555)};
        gh_meter_costs_t parts;
        int64_t total = gh_meter_costs(&u, &model, &parts);
        assert_int_equal(total, gh_meter_cost(&u, &model));
        assert_int_equal(total, parts.input_nusd + parts.output_nusd +
                                    parts.cache_creation_nusd + parts.cache_read_nusd);
        /* Each part on its own: tokens × price per million, rounded half up. */
        assert_int_equal(parts.input_nusd, (u.input_tokens * 3000000000 + 500000) / 1000000);
        assert_int_equal(parts.cache_read_nusd,
                         (u.cache_read_tokens * 300000000 + 500000) / 1000000);
    }
}

/* ---- rollups on a real database ---- */

typedef struct {
    char dir[64];
    char db_path[128];
    char journal[128];
    gh_store_t *store;
    gh_db_t *db;
} world_t;

static int setup(void **state)
{
    world_t *w = calloc(1, sizeof(*w));
    if (!w)
        return -1;
    snprintf(w->dir, sizeof(w->dir), "/tmp/gh-unit-reports-XXXXXX");
    if (!mkdtemp(w->dir))
        return -1;
    snprintf(w->db_path, sizeof(w->db_path), "%s/gatehouse.db", w->dir);
    snprintf(w->journal, sizeof(w->journal), "%s/usage.journal", w->dir);
    char err[256];
    if (gh_store_open(&w->store, w->db_path, err, sizeof(err)))
        return -1;
    w->db = gh_store_db(w->store);
    *state = w;
    return w->db ? 0 : -1;
}

static int teardown(void **state)
{
    world_t *w = *state;
    if (w->store)
        gh_store_close(w->store);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", w->dir);
    int rc = system(cmd);
    free(w);
    return rc == 0 ? 0 : -1;
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

/* Inserts events in transactions of varying sizes, the way the writer does. */
static void insert_batches(gh_db_t *db, event_t *ev, int n)
{
    gh_usage_row_t *rows = malloc(sizeof(*rows) * (size_t)n);
    assert_non_null(rows);
    for (int i = 0; i < n;) {
        int size = 1 + (int)(next_rand() % 700);
        if (size > n - i)
            size = n - i;
        assert_int_equal(gh_store_begin(db), GH_OK);
        for (int j = 0; j < size; j++) {
            rows[j] = ev[i + j].row;
            assert_int_equal(gh_store_usage_insert(db, &rows[j]), GH_OK);
        }
        assert_int_equal(gh_store_rollups_add(db, rows, (size_t)size), GH_OK);
        assert_int_equal(gh_store_commit(db), GH_OK);
        i += size;
    }
    free(rows);
}

/* What a query should answer, computed from the events. */
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
} check_t;

static void on_total(void *ctx, const gh_usage_total_t *t)
{
    check_t *c = ctx;
    assert_true(t->bucket_start_s >= c->last_bucket); /* in bucket order */
    c->last_bucket = t->bucket_start_s;
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
    world_t *w = *state;
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
                /* The whole span, or a window across the month boundary. */
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

    /* The tables hold exactly the events' sums: counted per table in SQL. */
    sqlite3 *raw;
    assert_int_equal(sqlite3_open_v2(w->db_path, &raw, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    const char *tables[] = {"usage_rollup_minute", "usage_rollup_hour", "usage_rollup_day"};
    for (int t = 0; t < 3; t++) {
        char sql[256];
        snprintf(sql, sizeof(sql),
                 "SELECT sum(requests), sum(input_tokens), sum(output_cost_nusd) FROM %s",
                 tables[t]);
        sqlite3_stmt *st;
        assert_int_equal(sqlite3_prepare_v2(raw, sql, -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        int64_t in = 0, out_cost = 0;
        for (int i = 0; i < NEV; i++) {
            in += ev[i].row.input_tokens;
            out_cost += ev[i].row.output_cost_nusd;
        }
        assert_int_equal(sqlite3_column_int64(st, 0), NEV);
        assert_int_equal(sqlite3_column_int64(st, 1), in);
        assert_int_equal(sqlite3_column_int64(st, 2), out_cost);
        sqlite3_finalize(st);
    }
    sqlite3_close(raw);
}

static void filters_member_and_none(void **state)
{
    world_t *w = *state;
    /* A real organization with a Default workspace and W1; the account is a member of W1
     * only, so it reaches Default and W1, never W2. */
    sqlite3 *raw;
    assert_int_equal(sqlite3_open(w->db_path, &raw), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(raw,
                     "INSERT INTO accounts (id, email, created_at) VALUES ('user_x', 'x@e.com', 0);"
                     "INSERT INTO organizations (id, name, created_at) VALUES ('org_a', 'A', 0);"
                     "INSERT INTO workspaces (id, org_id, name, display_color, is_default, "
                     "created_at) VALUES ('wrkspc_default', 'org_a', 'Default', '#6C5BB9', 1, 0),"
                     "('wrkspc_w1', 'org_a', 'W1', '#6C5BB9', 0, 0),"
                     "('wrkspc_w2', 'org_a', 'W2', '#6C5BB9', 0, 0);"
                     "INSERT INTO workspace_members (workspace_id, account_id, org_id, role, "
                     "created_at) VALUES ('wrkspc_w1', 'user_x', 'org_a', 'workspace_user', 0);",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(raw);
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
    /* The member's view is the explicit Default + W1 filter. */
    check_query(w->db, ev, 600, &q);
    static expect_t want[512];
    check_t c = {.want = want, .last_bucket = INT64_MIN};
    c.nwant = brute_force(ev, 600, &q, want, 512);
    assert_true(c.nwant > 0);
    assert_int_equal(gh_store_usage_report(w->db, &member, on_total, &c), GH_OK);
    assert_int_equal(c.seen, c.nwant);

    /* A filter that can match nothing, and an empty range, answer nothing. */
    check_t none = {.want = want, .nwant = 0, .last_bucket = INT64_MIN};
    q.none = true;
    assert_int_equal(gh_store_usage_report(w->db, &q, on_total, &none), GH_OK);
    q.none = false;
    q.end_s = q.start_s;
    assert_int_equal(gh_store_usage_report(w->db, &q, on_total, &none), GH_OK);
    assert_int_equal(none.seen, 0);
}

static int64_t count_rows(const char *db_path, const char *sql)
{
    sqlite3 *raw;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open_v2(db_path, &raw, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(raw, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(raw);
    return v;
}

static void prunes_old_minutes_only(void **state)
{
    world_t *w = *state;
    static event_t ev[1000];
    make_events(ev, 1000, 1);
    insert_batches(w->db, ev, 1000);
    int64_t cut = t_ok("2026-03-01T00:00:00Z");
    int64_t old = count_rows(
        w->db_path, "SELECT count(*) FROM usage_rollup_minute WHERE bucket_start < 1772323200");
    int64_t hours = count_rows(w->db_path, "SELECT count(*) FROM usage_rollup_hour");
    assert_true(old > 0);
    int64_t deleted = -1;
    assert_int_equal(gh_store_rollups_prune(w->db, cut, &deleted), GH_OK);
    assert_int_equal(deleted, old);
    assert_int_equal(count_rows(w->db_path, "SELECT count(*) FROM usage_rollup_minute WHERE "
                                            "bucket_start < 1772323200"),
                     0);
    assert_true(count_rows(w->db_path, "SELECT count(*) FROM usage_rollup_minute") > 0);
    assert_int_equal(count_rows(w->db_path, "SELECT count(*) FROM usage_rollup_hour"), hours);
    /* Hour and day reports still see everything. */
    gh_usage_query_t q = {.org_id = ORGS[0], .width = GH_ROLLUP_HOUR,
                          .start_s = t_ok("2026-02-27T00:00:00Z"),
                          .end_s = t_ok("2026-03-03T00:00:00Z")};
    check_query(w->db, ev, 1000, &q);
}

/* The batch insert: one statement over the batch (the gh_usage_rows table) for events after
 * the highest stored, one row at a time before it (a replay, which may find some stored).
 * Which were stored now is told exactly, and every column lands in its place either way; a
 * batch of new events that the table takes fewer of than it was given (here two of one
 * sequence number) fails on its data, for the writer to commit it in halves, and stores
 * nothing once rolled back. */
static void batch_tells_which_events_it_stored(void **state)
{
    world_t *w = *state;
    enum { N = 110 };
    static event_t ev[N];
    make_events(ev, N, 1);
    gh_usage_row_t rows[N];
    bool stored[N];
    for (int i = 0; i < N; i++) { /* every column told apart from its neighbours */
        rows[i] = ev[i].row;
        rows[i].status = 200 + i % 3;
        rows[i].stream = i % 2;
        rows[i].client_disconnected = i % 3 == 0;
        rows[i].latency_us = 7 * i + 1;
        rows[i].upstream_us = 3 * i + 2;
        rows[i].requested_model = i % 4 == 0 ? "asked-for" : rows[i].model;
        rows[i].deployment = i % 5 == 0 ? "https://dep.example/v1" : "";
    }
    /* Stored before: 1..40 and 49 (sequence numbers), so the highest is 49. */
    assert_int_equal(gh_store_begin(w->db), GH_OK);
    assert_int_equal(gh_store_usage_insert_batch(w->db, rows, 40, stored), GH_OK);
    for (int i = 0; i < 40; i++)
        assert_true(stored[i]);
    assert_int_equal(gh_store_usage_insert_batch(w->db, &rows[48], 1, stored), GH_OK);
    assert_true(stored[0]);
    assert_int_equal(gh_store_commit(w->db), GH_OK);
    /* 41..48 one at a time, 49 found stored, 50..110 (61 events) in one statement. */
    assert_int_equal(gh_store_begin(w->db), GH_OK);
    assert_int_equal(gh_store_usage_insert_batch(w->db, rows, N, stored), GH_OK);
    assert_int_equal(gh_store_commit(w->db), GH_OK);
    for (int i = 0; i < N; i++)
        assert_int_equal(stored[i], i >= 40 && i != 48);
    int64_t cost = 0, created = 0;
    for (int i = 0; i < N; i++)
        cost += rows[i].cost_nusd, created += rows[i].created_at_ms;
    assert_int_equal(count_rows(w->db_path, "SELECT count(*) FROM usage_events"), N);
    assert_int_equal(count_rows(w->db_path, "SELECT sum(cost_nusd) FROM usage_events"), cost);
    assert_int_equal(count_rows(w->db_path, "SELECT sum(created_at_ms) FROM usage_events"),
                     created);
    /* Every row's every column in its place, whichever way it was inserted. */
    for (int i = 0; i < N; i++) {
        const gh_usage_row_t *r = &rows[i];
        char q[1536];
        int len = snprintf(
            q, sizeof(q),
            "SELECT count(*) FROM usage_events WHERE journal_seq = %lld AND request_id = '%s' "
            "AND created_at_ms = %lld AND org_id = '%s' AND workspace_id = '%s' AND key_id = "
            "'%s' AND model = '%s' AND route = '%s' AND input_tokens = %lld AND output_tokens "
            "= %lld AND cache_creation_tokens = %lld AND cache_read_tokens = %lld AND "
            "cost_nusd = %lld AND status = %d AND stream = %d AND client_disconnected = %d AND "
            "latency_us = %lld AND upstream_us = %lld AND input_cost_nusd = %lld AND "
            "output_cost_nusd = %lld AND cache_creation_cost_nusd = %lld AND "
            "cache_read_cost_nusd = %lld AND requested_model %s AND deployment %s",
            (long long)r->journal_seq, r->request_id, (long long)r->created_at_ms, r->org_id,
            r->workspace_id, r->key_id, r->model, r->route, (long long)r->input_tokens,
            (long long)r->output_tokens, (long long)r->cache_creation_tokens,
            (long long)r->cache_read_tokens, (long long)r->cost_nusd, r->status, r->stream,
            r->client_disconnected, (long long)r->latency_us, (long long)r->upstream_us,
            (long long)r->input_cost_nusd, (long long)r->output_cost_nusd,
            (long long)r->cache_creation_cost_nusd, (long long)r->cache_read_cost_nusd,
            i % 4 == 0 ? "= 'asked-for'" : "IS NULL",
            i % 5 == 0 ? "= 'https://dep.example/v1'" : "IS NULL");
        assert_true(len > 0 && (size_t)len < sizeof(q));
        if (count_rows(w->db_path, q) != 1)
            fail_msg("event %d is not stored as given: %s", i + 1, q);
    }

    /* Twelve new events, two of them numbered alike. */
    static event_t more[12];
    make_events(more, 12, N + 1);
    gh_usage_row_t twelve[12];
    for (int i = 0; i < 12; i++)
        twelve[i] = more[i].row;
    twelve[7].journal_seq = twelve[6].journal_seq;
    assert_int_equal(gh_store_begin(w->db), GH_OK);
    assert_int_equal(gh_store_usage_insert_batch(w->db, twelve, 12, stored), GH_ECONFLICT);
    assert_true(gh_store_failed_on_data(w->db));
    gh_store_rollback(w->db);
    assert_int_equal(count_rows(w->db_path, "SELECT count(*) FROM usage_events"), N);
}

/* ---- through the writer and its journal ---- */

static void journal_event(gh_usage_event_t *e, int i)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->request_id, sizeof(e->request_id), "req_j_%06d", i);
    /* Recent, so that the writer's pruning of old minute rollups leaves them alone. */
    e->created_at_ms = ((int64_t)time(NULL) - 3600) * 1000 + (int64_t)i * 97;
    snprintf(e->org_id, sizeof(e->org_id), "org_j");
    snprintf(e->workspace_id, sizeof(e->workspace_id), "%s", WSS[i % 3]);
    snprintf(e->key_id, sizeof(e->key_id), "%s", KEYS[i % 4]);
    snprintf(e->model, sizeof(e->model), "%s", MODELS[i % 2]);
    snprintf(e->route, sizeof(e->route), "messages");
    e->input_tokens = 10 + i % 7;
    e->output_tokens = i % 11;
    e->input_cost_nusd = e->input_tokens * 1000;
    e->output_cost_nusd = e->output_tokens * 5000;
    e->cost_nusd = e->input_cost_nusd + e->output_cost_nusd;
    e->status = 200;
}

/* Sums of the rollups of `table` and of the events: requests, input tokens, costs. */
static void assert_rollups_equal_events(const char *db_path)
{
    const char *tables[] = {"usage_rollup_minute", "usage_rollup_hour", "usage_rollup_day"};
    int64_t events = count_rows(db_path, "SELECT count(*) FROM usage_events");
    int64_t in = count_rows(db_path, "SELECT sum(input_tokens) FROM usage_events");
    int64_t cost = count_rows(db_path, "SELECT sum(cost_nusd) FROM usage_events");
    for (int t = 0; t < 3; t++) {
        char sql[3][200];
        snprintf(sql[0], sizeof(sql[0]), "SELECT sum(requests) FROM %s", tables[t]);
        snprintf(sql[1], sizeof(sql[1]), "SELECT sum(input_tokens) FROM %s", tables[t]);
        snprintf(sql[2], sizeof(sql[2]),
                 "SELECT sum(input_cost_nusd + output_cost_nusd + cache_creation_cost_nusd + "
                 "cache_read_cost_nusd) FROM %s",
                 tables[t]);
        assert_int_equal(count_rows(db_path, sql[0]), events);
        assert_int_equal(count_rows(db_path, sql[1]), in);
        assert_int_equal(count_rows(db_path, sql[2]), cost);
    }
}

static void replay_rolls_up_once(void **state)
{
    world_t *w = *state;
    gh_store_close(w->store);
    w->store = NULL;
    gh_usage_journal_bytes = 64 * 1024;
    /* A child commits 300 events, journals 2,700 more and dies without closing. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char err[256];
        gh_store_t *store;
        gh_usage_t *u;
        if (gh_store_open(&store, w->db_path, err, sizeof(err)) ||
            gh_usage_open(&u, store, w->journal, NULL, err, sizeof(err)))
            _exit(2);
        for (int i = 0; i < 3000; i++) {
            gh_usage_event_t e;
            journal_event(&e, i);
            if (gh_usage_submit(u, &e))
                _exit(3);
            if (i == 299)
                gh_usage_flush(u);
        }
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    for (int start = 0; start < 2; start++) { /* the second start replays nothing */
        char err[256];
        gh_store_t *store;
        gh_usage_t *u;
        assert_int_equal(gh_store_open(&store, w->db_path, err, sizeof(err)), GH_OK);
        assert_int_equal(gh_usage_open(&u, store, w->journal, NULL, err, sizeof(err)), GH_OK);
        gh_usage_close(u);
        gh_store_close(store);
        assert_int_equal(count_rows(w->db_path, "SELECT count(*) FROM usage_events"), 3000);
        assert_rollups_equal_events(w->db_path);
    }
}

/* A database from before migration 0006, with usage in it: the migration books each event's
 * total as input cost and rolls the history up, and 0013 keeps every event when it rebuilds
 * the table. */
static void migration_rolls_up_history(void **state)
{
    world_t *w = *state;
    gh_store_close(w->store);
    w->store = NULL;
    unlink(w->db_path);
    sqlite3 *raw;
    assert_int_equal(sqlite3_open(w->db_path, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw,
                                  "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
                                  "name TEXT NOT NULL, sha256 TEXT NOT NULL, applied_at INTEGER "
                                  "NOT NULL) STRICT",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    for (const gh_embed_t *m = gh_embed_migrations; m->name; m++) {
        if (strcmp(m->name, "/0005") > 0)
            break;
        assert_int_equal(sqlite3_exec(raw, (const char *)m->data, NULL, NULL, NULL), SQLITE_OK);
        char sum[GH_SHA256_HEX_MAX], sql[256];
        gh_sha256_hex(sum, m->data, m->len);
        snprintf(sql, sizeof(sql),
                 "INSERT INTO schema_migrations VALUES (%d, '%s', '%s', 0)",
                 (int)strtol(m->name + 1, NULL, 10), m->name + 1, sum);
        assert_int_equal(sqlite3_exec(raw, sql, NULL, NULL, NULL), SQLITE_OK);
    }
    /* Two events in one minute of one series, one in the next hour of another. */
    assert_int_equal(
        sqlite3_exec(raw,
                     "INSERT INTO usage_events VALUES "
                     "(1, 'r1', 1772323200500, 'org_o', 'wrkspc_d', 'apikey_1', 'm', 'messages', "
                     "10, 5, 0, 0, 35000, 200, 0, 0, 1, 1),"
                     "(2, 'r2', 1772323259999, 'org_o', 'wrkspc_d', 'apikey_1', 'm', 'messages', "
                     "20, 1, 0, 0, 25000, 200, 0, 0, 1, 1),"
                     "(3, 'r3', 1772326800000, 'org_o', 'wrkspc_d', 'apikey_2', 'm', 'messages', "
                     "7, 0, 0, 0, 7000, 200, 0, 0, 1, 1)",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(raw);

    char err[256];
    assert_int_equal(gh_store_open(&w->store, w->db_path, err, sizeof(err)), GH_OK);
    w->db = gh_store_db(w->store);
    assert_int_equal(count_rows(w->db_path, "SELECT count(*) FROM usage_rollup_minute"), 2);
    assert_int_equal(count_rows(w->db_path, "SELECT count(*) FROM usage_rollup_hour"), 2);
    assert_int_equal(count_rows(w->db_path, "SELECT count(*) FROM usage_rollup_day"), 2);
    assert_int_equal(count_rows(w->db_path, "SELECT requests * 1000000 + input_tokens * 1000 + "
                                            "output_tokens FROM usage_rollup_minute WHERE "
                                            "key_id = 'apikey_1'"),
                     2030006);
    assert_int_equal(count_rows(w->db_path, "SELECT sum(input_cost_nusd) FROM usage_rollup_day"),
                     67000);
    assert_int_equal(
        count_rows(w->db_path, "SELECT sum(output_cost_nusd + cache_creation_cost_nusd + "
                               "cache_read_cost_nusd) FROM usage_rollup_day"),
        0);
    assert_rollups_equal_events(w->db_path);
    /* Migration 0013 rebuilt the table keyed by the journal sequence: every event is still
     * there, under its sequence as rowid, with no index beside the table. */
    assert_int_equal(count_rows(w->db_path, "SELECT count(*) FROM usage_events"), 3);
    assert_int_equal(count_rows(w->db_path, "SELECT count(*) FROM usage_events WHERE rowid = "
                                            "journal_seq AND journal_seq BETWEEN 1 AND 3"),
                     3);
    assert_int_equal(count_rows(w->db_path, "SELECT sum(cost_nusd) + sum(input_cost_nusd) FROM "
                                            "usage_events"),
                     2 * 67000);
    assert_int_equal(count_rows(w->db_path, "SELECT count(*) FROM sqlite_master WHERE type = "
                                            "'index' AND tbl_name = 'usage_events'"),
                     0);
}

int main(void)
{
    if (gh_crypto_init())
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_rfc3339),
        cmocka_unit_test(buckets_align_to_utc),
        cmocka_unit_test(formats_cents_exactly),
        cmocka_unit_test(page_tokens_round_trip),
        cmocka_unit_test(costs_split_exactly),
        cmocka_unit_test_setup_teardown(rollups_match_the_events, setup, teardown),
        cmocka_unit_test_setup_teardown(filters_member_and_none, setup, teardown),
        cmocka_unit_test_setup_teardown(prunes_old_minutes_only, setup, teardown),
        cmocka_unit_test_setup_teardown(batch_tells_which_events_it_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(replay_rolls_up_once, setup, teardown),
        cmocka_unit_test_setup_teardown(migration_rolls_up_history, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
