/* Rate shares (cluster mode) of the admission engine: a node admits from a bucket only what it
 * drew of the cluster's bucket. The last tests run three engines against a model of the
 * database's bucket (the same arithmetic as migration 0013's gh_rate_draw) and check the
 * cluster-wide bound minute by minute. */
#include "unit.h"

#include <stdlib.h>
#include <string.h>

#include "core/limits.h"
#include "core/tiers.h"
#include "lib/money.h"

#define S_US INT64_C(1000000)
#define MS_US INT64_C(1000)
#define T0 INT64_C(1795608000000000) /* 2026-11-25T12:00:00Z */
#define TTL_US (2 * S_US)
#define ORG "org_01AAAAAAAAAAAAAAAAAAAAAA"
#define WS "wrkspc_01AAAAAAAAAAAAAAAAAAAAAA"
#define WORST 1000

static int64_t test_clock(void *ctx)
{
    return *(const int64_t *)ctx;
}

static int kicks;
static void count_kick(void *ctx)
{
    (void)ctx;
    kicks++;
}

static const char *const classes[] = {"small"};

/* An engine in cluster mode with organization ORG at `rpm`, `itpm`, `otpm` and $100. */
static gh_limits_t *shared_engine(int64_t *clock, int64_t rpm, int64_t itpm, int64_t otpm)
{
    gh_limits_t *l = NULL;
    assert_int_equal(gh_limits_new(&l, classes, 1, test_clock, clock), GH_OK);
    gh_limits_rate_shared(l, TTL_US, count_kick, NULL);
    gh_limits_org_cfg_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.rates[0] = (gh_rate_limits_t){rpm, itpm, otpm};
    assert_int_equal(gh_limits_org_set(l, ORG, &cfg), GH_OK);
    assert_int_equal(gh_limits_credit(l, ORG, 100 * GH_NUSD_PER_USD), GH_OK);
    return l;
}

static gh_admit_t admit(gh_limits_t *l, const char *ws, int64_t in, int64_t out)
{
    gh_admit_req_t r = {ORG, ws, "small", in, out, WORST};
    gh_admit_t a;
    assert_int_equal(gh_limits_admit(l, &r, &a), GH_OK);
    return a;
}

/* Grants every need what it wants (or `cap_each` at most). */
static size_t grant_all(gh_limits_t *l, int64_t cap_each)
{
    gh_limits_rate_need_t needs[16];
    int64_t t0;
    size_t n = gh_limits_rate_needs(l, needs, 16, &t0);
    for (size_t i = 0; i < n; i++)
        gh_limits_rate_grant(l, &needs[i], needs[i].want < cap_each ? needs[i].want : cap_each,
                             t0);
    return n;
}

static void capacity_leaves_room_for_the_ttl(void **state)
{
    (void)state;
    assert_int_equal(gh_limits_rate_central_capacity(60, TTL_US), 58);
    assert_int_equal(gh_limits_rate_central_capacity(5, TTL_US), 5);
    assert_int_equal(gh_limits_rate_central_capacity(1, TTL_US), 1);
    assert_int_equal(gh_limits_rate_central_capacity(100000, TTL_US), 96667);
    assert_int_equal(gh_limits_rate_central_capacity(GH_BUCKET_LIMIT_MAX, 600 * S_US), 1);
}

/* No share, no admission: the first request is put off (pending) and kicks the thread; once
 * the share is drawn, requests pass until it is spent. */
static void empty_share_is_pending_then_admits(void **state)
{
    (void)state;
    int64_t now = T0;
    gh_limits_t *l = shared_engine(&now, 10, 0, 0);
    kicks = 0;
    gh_admit_t a = admit(l, NULL, 0, 0);
    assert_int_equal(a.decision, GH_ADMIT_RATE_LIMITED);
    assert_true(a.rate_pending);
    assert_false(a.rate_unavailable);
    assert_int_equal(kicks, 1);

    gh_limits_rate_need_t needs[4];
    int64_t t0;
    assert_int_equal(gh_limits_rate_needs(l, needs, 4, &t0), 1);
    assert_int_equal(needs[0].kind, GH_LIMIT_REQUESTS);
    assert_int_equal(needs[0].want, 2); /* twice the demand */
    assert_int_equal(needs[0].want_min, 1);
    assert_int_equal(needs[0].capacity, 10);
    assert_string_equal(needs[0].class_name, "small");
    assert_string_equal(needs[0].ws_id, "");
    /* The demand was reset: nothing more to draw until there is some. */
    assert_int_equal(gh_limits_rate_needs(l, needs + 1, 3, &t0), 0);
    gh_limits_rate_grant(l, &needs[0], 2, t0);
    assert_int_equal(gh_limits_rate_share(l, ORG, NULL, "small", GH_LIMIT_REQUESTS), 2);

    assert_int_equal(admit(l, NULL, 0, 0).decision, GH_ADMIT_OK);
    assert_int_equal(admit(l, NULL, 0, 0).decision, GH_ADMIT_OK);
    a = admit(l, NULL, 0, 0);
    assert_int_equal(a.decision, GH_ADMIT_RATE_LIMITED);
    assert_true(a.rate_pending);
    /* Taken 2, refused 1: the next draw asks for twice the demand. */
    assert_int_equal(gh_limits_rate_needs(l, needs, 4, &t0), 1);
    assert_int_equal(needs[0].want, 4);
    gh_limits_free(l);
}

/* A grant is spendable until its draw's start plus the TTL, never after. */
static void grants_lapse(void **state)
{
    (void)state;
    int64_t now = T0;
    gh_limits_t *l = shared_engine(&now, 10, 0, 0);
    admit(l, NULL, 0, 0);
    gh_limits_rate_need_t need;
    int64_t t0;
    assert_int_equal(gh_limits_rate_needs(l, &need, 1, &t0), 1);
    now += 100 * MS_US; /* the draw took 100 ms */
    gh_limits_rate_grant(l, &need, 2, t0);
    assert_int_equal(gh_limits_rate_share(l, ORG, NULL, "small", GH_LIMIT_REQUESTS), 2);
    now = t0 + TTL_US - 1;
    assert_int_equal(gh_limits_rate_share(l, ORG, NULL, "small", GH_LIMIT_REQUESTS), 2);
    now = t0 + TTL_US;
    assert_int_equal(gh_limits_rate_share(l, ORG, NULL, "small", GH_LIMIT_REQUESTS), 0);
    assert_int_equal(admit(l, NULL, 0, 0).decision, GH_ADMIT_RATE_LIMITED);
    /* A grant that arrives after its time is dropped. */
    assert_int_equal(gh_limits_rate_needs(l, &need, 1, &t0), 1);
    now = t0 + TTL_US + 1;
    gh_limits_rate_grant(l, &need, 2, t0);
    assert_int_equal(gh_limits_rate_share(l, ORG, NULL, "small", GH_LIMIT_REQUESTS), 0);
    gh_limits_free(l);
}

/* The cluster's bucket gave less than wanted: a short share is then a plain rate limit,
 * refused at once with a retry-after, until the bucket is expected to have refilled. When
 * draws fail, a pending admission becomes an "unavailable" refusal (529). */
static void dry_and_unavailable(void **state)
{
    (void)state;
    int64_t now = T0;
    gh_limits_t *l = shared_engine(&now, 60, 0, 0);
    admit(l, NULL, 0, 0);
    assert_int_equal(grant_all(l, 0), 1);
    gh_admit_t a = admit(l, NULL, 0, 0);
    assert_int_equal(a.decision, GH_ADMIT_RATE_LIMITED);
    assert_false(a.rate_pending);
    assert_int_equal(a.retry_after_s, 1);
    char msg[GH_LIMITS_MSG_MAX];
    assert_int_equal(gh_limits_refusal(l, &a, msg, sizeof(msg)), GH_ERATE);
    assert_non_null(strstr(msg, "rate limit of 60 requests per minute"));
    now += S_US; /* refilled: pending again */
    assert_true(admit(l, NULL, 0, 0).rate_pending);

    gh_limits_rate_unavailable(l, true);
    a = admit(l, NULL, 0, 0);
    assert_false(a.rate_pending);
    assert_true(a.rate_unavailable);
    assert_int_equal(gh_limits_refusal(l, &a, msg, sizeof(msg)), GH_EUNAVAIL);
    assert_non_null(strstr(msg, "cannot reach its database"));
    gh_limits_rate_unavailable(l, false);
    assert_true(admit(l, NULL, 0, 0).rate_pending);
    gh_limits_free(l);
}

/* Settlement corrects the share as it corrects the bucket: unused input goes back, output
 * beyond the take is debt that the next grant pays first. */
static void settlement_corrects_the_share(void **state)
{
    (void)state;
    int64_t now = T0;
    gh_limits_t *l = shared_engine(&now, 100, 10000, 10000);
    admit(l, NULL, 800, 500);
    grant_all(l, 1000000); /* 2 requests, 1600 input, 1000 output */
    assert_int_equal(gh_limits_rate_share(l, ORG, NULL, "small", GH_LIMIT_INPUT_TOKENS), 1600);
    gh_admit_t a = admit(l, NULL, 800, 500);
    assert_int_equal(a.decision, GH_ADMIT_OK);
    assert_int_equal(gh_limits_rate_share(l, ORG, NULL, "small", GH_LIMIT_INPUT_TOKENS), 800);
    assert_int_equal(gh_limits_settle(l, &a.hold, 100, 1700, WORST), GH_OK);
    assert_int_equal(gh_limits_rate_share(l, ORG, NULL, "small", GH_LIMIT_INPUT_TOKENS), 1500);
    /* 1200 output beyond the 500 taken: the 500 left, then 700 of debt. */
    assert_int_equal(gh_limits_rate_share(l, ORG, NULL, "small", GH_LIMIT_OUTPUT_TOKENS), -700);
    assert_int_equal(admit(l, NULL, 10, 10).decision, GH_ADMIT_RATE_LIMITED);
    gh_limits_rate_need_t needs[4];
    int64_t t0;
    size_t n = gh_limits_rate_needs(l, needs, 4, &t0);
    for (size_t i = 0; i < n; i++)
        if (needs[i].kind == GH_LIMIT_OUTPUT_TOKENS) {
            /* Twice the 500 taken since the last draw, plus the debt. */
            assert_int_equal(needs[i].want, 1700);
            gh_limits_rate_grant(l, &needs[i], 1700, t0);
        }
    assert_int_equal(gh_limits_rate_share(l, ORG, NULL, "small", GH_LIMIT_OUTPUT_TOKENS), 1000);
    gh_limits_free(l);
}

/* A take above the cluster's bucket's capacity (2,000 ITPM: 1,934 at most) is cut to it,
 * as a take above a bucket's capacity is cut to that: it waits for a full share instead of
 * never passing; settlement corrects from the cut take. */
static void take_cut_to_the_cluster_capacity(void **state)
{
    (void)state;
    int64_t now = T0;
    gh_limits_t *l = shared_engine(&now, 100, 2000, 0);
    assert_true(admit(l, NULL, 2500, 0).rate_pending);
    gh_limits_rate_need_t needs[4];
    int64_t t0;
    size_t n = gh_limits_rate_needs(l, needs, 4, &t0);
    for (size_t i = 0; i < n; i++) {
        if (needs[i].kind == GH_LIMIT_INPUT_TOKENS) {
            assert_int_equal(needs[i].want, 1934);
            assert_int_equal(needs[i].want_min, 1934);
        }
        gh_limits_rate_grant(l, &needs[i], needs[i].want, t0);
    }
    gh_admit_t a = admit(l, NULL, 2500, 0);
    assert_int_equal(a.decision, GH_ADMIT_OK);
    assert_int_equal(gh_limits_rate_share(l, ORG, NULL, "small", GH_LIMIT_INPUT_TOKENS), 0);
    assert_int_equal(gh_limits_settle(l, &a.hold, 600, 0, WORST), GH_OK);
    assert_int_equal(gh_limits_rate_share(l, ORG, NULL, "small", GH_LIMIT_INPUT_TOKENS), 1334);
    gh_limits_free(l);
}

/* A workspace's lower limit has its own share, drawn for separately. */
static void workspace_share(void **state)
{
    (void)state;
    int64_t now = T0;
    gh_limits_t *l = shared_engine(&now, 100, 0, 0);
    gh_limits_ws_cfg_t wc;
    memset(&wc, 0, sizeof(wc));
    wc.rates[0].requests_per_min = 3;
    assert_int_equal(gh_limits_ws_set(l, ORG, WS, &wc), GH_OK);
    admit(l, WS, 0, 0);
    gh_limits_rate_need_t needs[4];
    int64_t t0;
    assert_int_equal(gh_limits_rate_needs(l, needs, 4, &t0), 2);
    int ws_need = needs[0].ws ? 0 : 1;
    assert_string_equal(needs[ws_need].ws_id, WS);
    assert_int_equal(needs[ws_need].capacity, 3);
    gh_limits_rate_grant(l, &needs[0], needs[0].want, t0);
    gh_limits_rate_grant(l, &needs[1], needs[1].want, t0);
    assert_int_equal(gh_limits_rate_share(l, ORG, WS, "small", GH_LIMIT_REQUESTS), 2);
    assert_int_equal(admit(l, WS, 0, 0).decision, GH_ADMIT_OK);
    assert_int_equal(admit(l, WS, 0, 0).decision, GH_ADMIT_OK);
    gh_admit_t a = admit(l, WS, 0, 0);
    assert_int_equal(a.decision, GH_ADMIT_RATE_LIMITED);
    assert_true(a.rate_pending);
    /* The organization's share still serves keys without the workspace. */
    assert_int_equal(admit(l, NULL, 0, 0).decision, GH_ADMIT_RATE_LIMITED); /* org share 0 */
    gh_limits_free(l);
}

/* ---- Three nodes against a model of the database's bucket ------------------------------ */

typedef struct {
    int64_t limit, cap, level, updated_us; /* level in 1/60e6 token, as in migration 0013 */
    bool seen;
} central_t;

static int64_t central_draw(central_t *c, int64_t limit, int64_t cap, int64_t want,
                            int64_t want_min, int64_t back, int64_t now_us)
{
    const int64_t u = 60000000;
    if (!c->seen) {
        *c = (central_t){limit, cap, cap * u, now_us, true};
    }
    int64_t elapsed = now_us - c->updated_us;
    elapsed = elapsed < 0 ? 0 : elapsed > 120000000 ? 120000000 : elapsed;
    int64_t lvl = c->level + elapsed * c->limit;
    if (lvl > c->cap * u)
        lvl = c->cap * u;
    lvl += back * u;
    if (lvl > c->cap * u)
        lvl = c->cap * u;
    int64_t have = lvl / u, g = 0;
    if (have >= want)
        g = want;
    else if (have >= (want_min > 1 ? want_min : 1))
        g = have;
    c->level = lvl - g * u;
    if (now_us > c->updated_us)
        c->updated_us = now_us;
    return g;
}

#define NODES 3
#define RUN_MS (180 * 1000)

/* Runs NODES engines for three minutes of a fake clock, the `busy` first ones trying a request
 * every millisecond, each drawing every 50 ms (and drawing once more, 3 ms later, after a
 * pending refusal), and counts admissions per millisecond. With `itpm`, requests take
 * `in_bound` input tokens and settle at once having used `in_used`, and what is counted is
 * the tokens used. */
static void run_cluster_outage(int busy, int64_t rpm, int64_t itpm, int64_t in_bound,
                               int64_t in_used, int *per_ms, int down_from_ms, int down_to_ms);

static void run_cluster(int busy, int64_t rpm, int64_t itpm, int64_t in_bound, int64_t in_used,
                        int *per_ms)
{
    run_cluster_outage(busy, rpm, itpm, in_bound, in_used, per_ms, -1, -1);
}

/* As run_cluster, with the database away from `down_from_ms` to `down_to_ms` (-1: never):
 * draws fail then, and a successful draw tells each node the cluster has NODES nodes. */
static void run_cluster_outage(int busy, int64_t rpm, int64_t itpm, int64_t in_bound,
                               int64_t in_used, int *per_ms, int down_from_ms, int down_to_ms)
{
    int64_t now = T0;
    gh_limits_t *l[NODES];
    for (int i = 0; i < NODES; i++)
        l[i] = shared_engine(&now, rpm, itpm, 0);
    central_t c[GH_LIMIT_KINDS] = {{0}};
    int64_t kicked_at[NODES] = {0};
    for (int ms = 0; ms < RUN_MS; ms++) {
        now = T0 + ms * MS_US;
        for (int i = 0; i < NODES; i++) {
            bool tick = ms % 50 == i * 7 || (kicked_at[i] && now >= kicked_at[i]);
            if (tick) {
                kicked_at[i] = 0;
                gh_limits_rate_need_t needs[4];
                int64_t t0;
                size_t n = gh_limits_rate_needs(l[i], needs, 4, &t0);
                bool down = ms >= down_from_ms && ms < down_to_ms;
                if (n > 0 && down_from_ms >= 0) {
                    gh_limits_rate_unavailable(l[i], down);
                    if (!down)
                        gh_limits_rate_nodes(l[i], NODES);
                }
                for (size_t k = 0; k < n && !down; k++) {
                    /* The database's time is the draw's start: the latest the grant's life
                     * may be counted from. */
                    central_t *bucket = &c[needs[k].kind];
                    int64_t g = central_draw(bucket, needs[k].limit_per_min, needs[k].capacity,
                                             needs[k].want, needs[k].want_min,
                                             needs[k].give_back, now);
                    gh_limits_rate_grant(l[i], &needs[k], g, t0);
                }
            }
            if (i >= busy)
                continue;
            gh_admit_t a = admit(l[i], NULL, in_bound, 0);
            if (a.decision == GH_ADMIT_OK) {
                per_ms[ms] += itpm ? (int)in_used : 1;
                assert_int_equal(gh_limits_settle(l[i], &a.hold, in_used, 0, 0), GH_OK);
            } else if (a.rate_pending && !kicked_at[i]) {
                kicked_at[i] = now + 3 * MS_US;
            }
        }
    }
    for (int i = 0; i < NODES; i++)
        gh_limits_free(l[i]);
}

/* The most admitted in any 60-second window. */
static int window_max(const int *per_ms)
{
    int sum = 0, best = 0;
    for (int ms = 0; ms < RUN_MS; ms++) {
        sum += per_ms[ms];
        if (ms >= 60000)
            sum -= per_ms[ms - 60000];
        if (sum > best)
            best = sum;
    }
    return best;
}

static int total(const int *per_ms)
{
    int sum = 0;
    for (int ms = 0; ms < RUN_MS; ms++)
        sum += per_ms[ms];
    return sum;
}

/* Three busy nodes at 60 RPM: never more than 120 (the limit plus one bucket) in any minute,
 * and the limit is used, not refused: at least 60 a minute after the first. */
static void three_nodes_hold_the_bound(void **state)
{
    (void)state;
    int *per_ms = calloc(RUN_MS, sizeof(int));
    assert_non_null(per_ms);
    run_cluster(NODES, 60, 0, 0, 0, per_ms);
    int most = window_max(per_ms), all = total(per_ms);
    print_message("three busy nodes at 60 RPM: at most %d in a minute, %d in three\n", most,
                  all);
    assert_true(most <= 120);
    assert_true(all >= 200);
    free(per_ms);
}

/* One busy node among idle ones uses (almost) the whole limit. */
static void one_busy_node_uses_the_limit(void **state)
{
    (void)state;
    int *per_ms = calloc(RUN_MS, sizeof(int));
    assert_non_null(per_ms);
    run_cluster(1, 600, 0, 0, 0, per_ms);
    int most = window_max(per_ms), all = total(per_ms);
    print_message("one busy node of three at 600 RPM: at most %d in a minute, %d in three\n",
                  most, all);
    assert_true(most <= 1200);
    assert_true(all >= 2000);
    free(per_ms);
}

/* Input tokens: each request is admitted on a bound four times what it uses; the unused part
 * goes back to the node's share, and what the share cannot use before it lapses goes back to
 * the cluster's bucket. Used tokens stay within twice the limit in every minute, and the
 * limit is used by actual tokens, not by bounds. */
static void input_tokens_with_corrections(void **state)
{
    (void)state;
    int *per_ms = calloc(RUN_MS, sizeof(int));
    assert_non_null(per_ms);
    run_cluster(NODES, 100000, 60000, 24000, 6000, per_ms);
    int most = window_max(per_ms), all = total(per_ms);
    print_message("three busy nodes at 60,000 ITPM, 24,000 bound and 6,000 used a request: "
                  "at most %d in a minute, %d in three\n",
                  most, all);
    assert_true(most <= 120000);
    assert_true(all >= 58000 + 2 * 60000);
    free(per_ms);
}

/* ---- While draws fail: the safe local share --------------------------------------------- */

/* Draws fail: once the grants lapse, the node admits within C / N a minute from a bucket that
 * was empty when the draws began failing, each admission owed to the cluster's bucket; when
 * that is spent, the refusal is the 529 that says why. Once draws succeed, the debt is paid
 * from the first grants. */
static void outage_serves_a_safe_share(void **state)
{
    (void)state;
    int64_t now = T0;
    gh_limits_t *l = shared_engine(&now, 60, 0, 0); /* capacity 58 with a 2 s ttl */
    admit(l, NULL, 0, 0);
    gh_limits_rate_need_t need;
    int64_t t0;
    assert_int_equal(gh_limits_rate_needs(l, &need, 1, &t0), 1);
    gh_limits_rate_grant(l, &need, 2, t0);
    gh_limits_rate_nodes(l, 2); /* two nodes: 29 a minute each */
    assert_int_equal(admit(l, NULL, 0, 0).decision, GH_ADMIT_OK);

    now += S_US;
    gh_limits_rate_unavailable(l, true);
    /* The live grant still serves. */
    assert_int_equal(admit(l, NULL, 0, 0).decision, GH_ADMIT_OK);
    /* Spent, and the safe share is empty at the outage's start: refused, saying why. */
    gh_admit_t a = admit(l, NULL, 0, 0);
    assert_int_equal(a.decision, GH_ADMIT_RATE_LIMITED);
    assert_true(a.rate_unavailable);
    char msg[GH_LIMITS_MSG_MAX];
    assert_int_equal(gh_limits_refusal(l, &a, msg, sizeof(msg)), GH_EUNAVAIL);
    assert_non_null(strstr(msg, "cannot reach its database"));
    /* 29 a minute: one token every 2.07 s. */
    now += 2 * S_US;
    assert_true(admit(l, NULL, 0, 0).rate_unavailable);
    now += 100 * MS_US;
    assert_int_equal(admit(l, NULL, 0, 0).decision, GH_ADMIT_OK);
    assert_true(admit(l, NULL, 0, 0).rate_unavailable);
    /* A minute on: the bucket holds 29 at most, however long the outage. */
    now += 60 * S_US;
    int ok = 0;
    for (int i = 0; i < 100; i++)
        ok += admit(l, NULL, 0, 0).decision == GH_ADMIT_OK;
    assert_int_equal(ok, 29);
    /* 30 admitted on the safe share: owed to the cluster's bucket. */
    assert_int_equal(gh_limits_rate_share(l, ORG, NULL, "small", GH_LIMIT_REQUESTS), -30);

    /* Back: a short share is pending again, and the next draw asks for the debt too. */
    gh_limits_rate_unavailable(l, false);
    a = admit(l, NULL, 0, 0);
    assert_true(a.rate_pending);
    assert_int_equal(gh_limits_rate_needs(l, &need, 1, &t0), 1);
    assert_int_equal(need.want, 58 + 30);
    gh_limits_rate_grant(l, &need, 40, t0); /* what the bucket had */
    assert_int_equal(gh_limits_rate_share(l, ORG, NULL, "small", GH_LIMIT_REQUESTS), 10);
    gh_limits_free(l);
}

/* A node that admitted on its safe share and then went idle still pays its debt once draws
 * succeed: otherwise the cluster's bucket would grant those tokens again to other nodes. */
static void idle_share_pays_its_debt(void **state)
{
    (void)state;
    int64_t now = T0;
    gh_limits_t *l = shared_engine(&now, 60, 0, 0);
    gh_limits_rate_nodes(l, 1);
    gh_limits_rate_unavailable(l, true);
    now += 10 * S_US; /* 58 a minute: 9 there */
    for (int i = 0; i < 9; i++)
        assert_int_equal(admit(l, NULL, 0, 0).decision, GH_ADMIT_OK);
    assert_true(admit(l, NULL, 0, 0).rate_unavailable);
    gh_limits_rate_need_t need;
    int64_t t0;
    assert_int_equal(gh_limits_rate_needs(l, &need, 1, &t0), 1); /* the draw that fails */
    gh_limits_rate_unavailable(l, false);
    now += S_US;
    /* No demand since: the draw asks for the debt alone, taking what there is. */
    assert_int_equal(gh_limits_rate_needs(l, &need, 1, &t0), 1);
    assert_int_equal(need.want, 9);
    assert_int_equal(need.want_min, 1);
    gh_limits_rate_grant(l, &need, 4, t0);
    assert_int_equal(gh_limits_rate_share(l, ORG, NULL, "small", GH_LIMIT_REQUESTS), -5);
    now += 2 * S_US; /* the short grant's dry spell is over */
    assert_int_equal(gh_limits_rate_needs(l, &need, 1, &t0), 1);
    assert_int_equal(need.want, 5);
    gh_limits_rate_grant(l, &need, 5, t0);
    assert_int_equal(gh_limits_rate_share(l, ORG, NULL, "small", GH_LIMIT_REQUESTS), 0);
    assert_int_equal(gh_limits_rate_needs(l, &need, 1, &t0), 0); /* paid: nothing to draw */
    gh_limits_free(l);
}

/* No safe share without a recent N: a node that never drew, or whose last successful draw was
 * more than a minute before the outage, refuses as before. A limit below N a minute has none
 * either. */
static void safe_share_needs_a_recent_n(void **state)
{
    (void)state;
    int64_t now = T0;
    gh_limits_t *l = shared_engine(&now, 60, 0, 0);
    gh_limits_rate_unavailable(l, true);
    now += 10 * S_US;
    assert_true(admit(l, NULL, 0, 0).rate_unavailable);
    gh_limits_rate_unavailable(l, false);

    gh_limits_rate_nodes(l, 1);
    now += 61 * S_US;
    gh_limits_rate_unavailable(l, true);
    now += 10 * S_US;
    assert_true(admit(l, NULL, 0, 0).rate_unavailable);
    gh_limits_rate_unavailable(l, false);

    gh_limits_rate_nodes(l, 1);
    now += 30 * S_US;
    gh_limits_rate_unavailable(l, true);
    now += 10 * S_US;
    assert_int_equal(admit(l, NULL, 0, 0).decision, GH_ADMIT_OK);
    gh_limits_rate_unavailable(l, false);
    gh_limits_free(l);

    now = T0;
    l = shared_engine(&now, 2, 0, 0);
    gh_limits_rate_nodes(l, 3);
    gh_limits_rate_unavailable(l, true);
    now += 60 * S_US;
    assert_true(admit(l, NULL, 0, 0).rate_unavailable);
    gh_limits_free(l);
}

/* Settlement during the outage: input not used goes back to the safe share and is owed no
 * more, so ITPM counts tokens, not bounds, there too. */
static void safe_share_takes_corrections(void **state)
{
    (void)state;
    int64_t now = T0;
    gh_limits_t *l = shared_engine(&now, 100, 60000, 0);
    gh_limits_rate_nodes(l, 1);
    gh_limits_rate_unavailable(l, true);
    now += 30 * S_US; /* half a minute: 29,000 of the 58,000 ITPM share */
    gh_admit_t a = admit(l, NULL, 20000, 0);
    assert_int_equal(a.decision, GH_ADMIT_OK);
    assert_int_equal(gh_limits_rate_share(l, ORG, NULL, "small", GH_LIMIT_INPUT_TOKENS), -20000);
    assert_true(admit(l, NULL, 20000, 0).rate_unavailable);
    assert_int_equal(gh_limits_settle(l, &a.hold, 2000, 0, WORST), GH_OK);
    assert_int_equal(gh_limits_rate_share(l, ORG, NULL, "small", GH_LIMIT_INPUT_TOKENS), -2000);
    assert_int_equal(admit(l, NULL, 20000, 0).decision, GH_ADMIT_OK);
    gh_limits_free(l);
}

/* Three busy nodes at 60 RPM, the database away for the middle minute: the nodes keep
 * admitting, about C / 3 a minute each, and no minute sees more than the limit plus one
 * bucket, 120, across the outage's start and its end. */
static void three_nodes_hold_the_bound_through_an_outage(void **state)
{
    (void)state;
    int *per_ms = calloc(RUN_MS, sizeof(int));
    assert_non_null(per_ms);
    run_cluster_outage(NODES, 60, 0, 0, 0, per_ms, 60000, 120000);
    int most = window_max(per_ms), all = total(per_ms), down = 0;
    for (int ms = 60000 + (int)(TTL_US / MS_US); ms < 120000; ms++)
        down += per_ms[ms];
    print_message("three busy nodes at 60 RPM, the database away for the second minute: at most "
                  "%d in a minute, %d in three, %d while away after the grants lapsed\n",
                  most, all, down);
    assert_true(most <= 120);
    assert_true(down >= 50); /* 3 x 19 a minute, less the 2 s of the grants' ttl */
    assert_true(all >= 200);
    free(per_ms);
}

/* The same with input tokens, bounds four times what is used. */
static void input_tokens_through_an_outage(void **state)
{
    (void)state;
    int *per_ms = calloc(RUN_MS, sizeof(int));
    assert_non_null(per_ms);
    run_cluster_outage(NODES, 100000, 60000, 24000, 6000, per_ms, 60000, 120000);
    int most = window_max(per_ms), all = total(per_ms);
    print_message("three busy nodes at 60,000 ITPM through an outage: at most %d in a minute, "
                  "%d in three\n",
                  most, all);
    assert_true(most <= 120000);
    assert_true(all >= 58000 + 60000);
    free(per_ms);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(capacity_leaves_room_for_the_ttl),
        cmocka_unit_test(empty_share_is_pending_then_admits),
        cmocka_unit_test(grants_lapse),
        cmocka_unit_test(dry_and_unavailable),
        cmocka_unit_test(settlement_corrects_the_share),
        cmocka_unit_test(take_cut_to_the_cluster_capacity),
        cmocka_unit_test(workspace_share),
        cmocka_unit_test(three_nodes_hold_the_bound),
        cmocka_unit_test(one_busy_node_uses_the_limit),
        cmocka_unit_test(input_tokens_with_corrections),
        cmocka_unit_test(outage_serves_a_safe_share),
        cmocka_unit_test(idle_share_pays_its_debt),
        cmocka_unit_test(safe_share_needs_a_recent_n),
        cmocka_unit_test(safe_share_takes_corrections),
        cmocka_unit_test(three_nodes_hold_the_bound_through_an_outage),
        cmocka_unit_test(input_tokens_through_an_outage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
