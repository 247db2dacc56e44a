#include "unit.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/limits.h"
#include "core/tiers.h"
#include "lib/money.h"
#include "lib/utc.h"

#define USD(n) ((int64_t)(n) * GH_NUSD_PER_USD)
#define CENTS(n) ((int64_t)(n) * (GH_NUSD_PER_USD / 100))
#define S_US INT64_C(1000000)
#define T0 INT64_C(1795608000000000) /* 2026-11-25T12:00:00Z */

#define ORG "org_01AAAAAAAAAAAAAAAAAAAAAA"
#define WS_A "wrkspc_01AAAAAAAAAAAAAAAAAAAAAA"
#define WS_B "wrkspc_01BBBBBBBBBBBBBBBBBBBBBB"

static int64_t test_clock(void *ctx)
{
    return *(const int64_t *)ctx;
}

static const char *const classes[] = {"small", "large"};

static gh_limits_t *engine(int64_t *clock)
{
    gh_limits_t *l = NULL;
    assert_int_equal(gh_limits_new(&l, classes, 2, test_clock, clock), GH_OK);
    return l;
}

/* An organization with no monthly limit and no rate limits, holding `balance_nusd`. */
static void money_only_org(gh_limits_t *l, const char *id, int64_t balance_nusd)
{
    gh_limits_org_cfg_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    assert_int_equal(gh_limits_org_set(l, id, &cfg), GH_OK);
    assert_int_equal(gh_limits_credit(l, id, balance_nusd), GH_OK);
}

static void tier_org(gh_limits_t *l, const char *id, const char *tier, int64_t balance_nusd)
{
    gh_limits_org_cfg_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    gh_limits_org_cfg_tier(&cfg, gh_tier_find(&gh_tiers_default, tier));
    assert_int_equal(gh_limits_org_set(l, id, &cfg), GH_OK);
    assert_int_equal(gh_limits_credit(l, id, balance_nusd), GH_OK);
}

static gh_admit_req_t req_of(const char *ws, int64_t in, int64_t out, int64_t worst_nusd)
{
    gh_admit_req_t r = {ORG, ws, "small", in, out, worst_nusd};
    return r;
}

static gh_admit_decision_t admit(gh_limits_t *l, gh_admit_req_t r, gh_admit_t *a)
{
    assert_int_equal(gh_limits_admit(l, &r, a), GH_OK);
    return a->decision;
}

static gh_limits_org_state_t org_state(gh_limits_t *l)
{
    gh_limits_org_state_t st;
    assert_int_equal(gh_limits_org_get(l, ORG, &st), GH_OK);
    return st;
}

/* ---- Credit ------------------------------------------------------------------------------ */

/* 500 requests in flight at once against $1, each reserving up to 1 cent: exactly 100 get
 * in, and settling them all at their worst leaves exactly $0. */
static void credit_cap_is_exact(void **state)
{
    (void)state;
    int64_t now = T0;
    gh_limits_t *l = engine(&now);
    money_only_org(l, ORG, USD(1));
    static gh_admit_t a[500];
    int ok = 0;
    for (int i = 0; i < 500; i++)
        ok += admit(l, req_of(NULL, 100, 100, CENTS(1)), &a[i]) == GH_ADMIT_OK;
    assert_int_equal(ok, 100);
    gh_limits_org_state_t st = org_state(l);
    assert_int_equal(st.reserved_nusd, USD(1));
    assert_int_equal(st.in_flight, 100);

    char msg[GH_LIMITS_MSG_MAX];
    assert_int_equal(gh_limits_refusal(l, &a[499], msg, sizeof(msg)), GH_EINVAL);
    assert_string_equal(msg, "Your credit balance is too low to access the API. Please go to "
                             "Plans & Billing to upgrade or purchase credits.");

    for (int i = 0; i < 500; i++)
        if (a[i].decision == GH_ADMIT_OK)
            assert_int_equal(gh_limits_settle(l, &a[i].hold, 100, 100, CENTS(1)), GH_OK);
    st = org_state(l);
    assert_int_equal(st.balance_nusd, 0);
    assert_int_equal(st.reserved_nusd, 0);
    assert_int_equal(st.in_flight, 0);
    assert_int_equal(st.month_spent_nusd, USD(1));
    gh_limits_free(l);
}

static void reservation_is_released_at_settlement(void **state)
{
    (void)state;
    int64_t now = T0;
    gh_limits_t *l = engine(&now);
    money_only_org(l, ORG, USD(1));
    gh_admit_t a, b;
    assert_int_equal(admit(l, req_of(NULL, 10, 10, CENTS(60)), &a), GH_ADMIT_OK);
    /* 40 cents left unreserved: a second 60-cent worst case does not fit. */
    assert_int_equal(admit(l, req_of(NULL, 10, 10, CENTS(60)), &b), GH_ADMIT_NO_CREDIT);
    assert_int_equal(gh_limits_settle(l, &a.hold, 10, 10, CENTS(10)), GH_OK);
    gh_limits_org_state_t st = org_state(l);
    assert_int_equal(st.balance_nusd, CENTS(90));
    assert_int_equal(st.reserved_nusd, 0);
    assert_int_equal(admit(l, req_of(NULL, 10, 10, CENTS(60)), &b), GH_ADMIT_OK);
    /* A hold settles once; a refused admission holds nothing. */
    assert_int_equal(gh_limits_settle(l, &a.hold, 10, 10, CENTS(10)), GH_EINVAL);
    gh_admit_t refused;
    assert_int_equal(admit(l, req_of(NULL, 10, 10, USD(5)), &refused), GH_ADMIT_NO_CREDIT);
    assert_int_equal(gh_limits_settle(l, &refused.hold, 0, 0, 0), GH_EINVAL);
    /* Zero usage (the upstream failed): the reservation goes, nothing is charged. */
    assert_int_equal(gh_limits_settle(l, &b.hold, 0, 0, 0), GH_OK);
    st = org_state(l);
    assert_int_equal(st.balance_nusd, CENTS(90));
    assert_int_equal(st.reserved_nusd, 0);
    gh_limits_free(l);
}

/* A cost above the reservation is still charged in full (the ledger is the truth) and
 * counted as an overrun. */
static void overrun_is_charged_and_counted(void **state)
{
    (void)state;
    int64_t now = T0;
    gh_limits_t *l = engine(&now);
    money_only_org(l, ORG, USD(1));
    gh_admit_t a;
    assert_int_equal(admit(l, req_of(NULL, 10, 10, CENTS(10)), &a), GH_ADMIT_OK);
    assert_int_equal(gh_limits_settle(l, &a.hold, 10, 10, CENTS(15)), GH_OK);
    assert_int_equal(org_state(l).balance_nusd, CENTS(85));
    gh_limits_stats_t s;
    gh_limits_stats(l, &s);
    assert_int_equal(s.overruns, 1);
    assert_int_equal(s.overrun_nusd, CENTS(5));
    assert_int_equal(s.admitted, 1);
    assert_int_equal(s.settled, 1);
    assert_int_equal(s.orgs, 1);
    gh_limits_free(l);
}

typedef struct {
    gh_limits_t *l;
    uint64_t seed;
    int64_t settled_nusd;
    int admitted;
} worker_t;

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

#define HOLDS 16

/* Keeps up to HOLDS requests in flight, admitting and settling at random with random costs
 * (the actual cost at most the worst case). */
static void *credit_worker(void *p)
{
    worker_t *w = p;
    gh_admit_t holds[HOLDS];
    int64_t worst[HOLDS];
    memset(holds, 0, sizeof(holds));
    for (int i = 0; i < 10000; i++) {
        int slot = (int)(next_rand(&w->seed) % HOLDS);
        if (holds[slot].hold.held) {
            int64_t half = worst[slot] / 2;
            int64_t actual = half + (int64_t)(next_rand(&w->seed) % (uint64_t)(half + 1));
            if (gh_limits_settle(w->l, &holds[slot].hold, 5, 5, actual) == GH_OK)
                w->settled_nusd += actual;
        }
        worst[slot] = 1 + (int64_t)(next_rand(&w->seed) % 100000);
        gh_admit_req_t r = {ORG, WS_A, "large", 10, 10, worst[slot]};
        if (gh_limits_admit(w->l, &r, &holds[slot]) == GH_OK &&
            holds[slot].decision == GH_ADMIT_OK)
            w->admitted++;
    }
    for (int slot = 0; slot < HOLDS; slot++)
        if (holds[slot].hold.held && gh_limits_settle(w->l, &holds[slot].hold, 5, 5,
                                                      worst[slot]) == GH_OK)
            w->settled_nusd += worst[slot];
    return NULL;
}

/* 8 threads x 10,000 admissions with random costs against $1 (about $3 of demand): never
 * more than $1 charged, and the balance is exactly $1 minus what was charged. */
static void credit_cap_holds_under_threads(void **state)
{
    (void)state;
    int64_t now = T0;
    gh_limits_t *l = engine(&now);
    money_only_org(l, ORG, USD(1));
    gh_limits_ws_cfg_t ws;
    memset(&ws, 0, sizeof(ws));
    assert_int_equal(gh_limits_ws_set(l, ORG, WS_A, &ws), GH_OK);
    pthread_t th[8];
    worker_t w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (worker_t){l, 0x9E3779B97F4A7C15u * (uint64_t)(i + 1), 0, 0};
        pthread_create(&th[i], NULL, credit_worker, &w[i]);
    }
    int64_t total = 0;
    int admitted = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        total += w[i].settled_nusd;
        admitted += w[i].admitted;
    }
    gh_limits_org_state_t st = org_state(l);
    assert_true(total <= USD(1));
    assert_true(total > CENTS(90)); /* the demand did exhaust it */
    assert_int_equal(st.balance_nusd, USD(1) - total);
    assert_int_equal(st.reserved_nusd, 0);
    assert_int_equal(st.in_flight, 0);
    assert_int_equal(st.month_spent_nusd, total);
    gh_limits_ws_state_t wst;
    assert_int_equal(gh_limits_ws_get(l, ORG, WS_A, &wst), GH_OK);
    assert_int_equal(wst.month_spent_nusd, total);
    assert_int_equal(wst.reserved_nusd, 0);
    gh_limits_stats_t s;
    gh_limits_stats(l, &s);
    assert_int_equal(s.admitted, (uint64_t)admitted);
    assert_int_equal(s.settled, (uint64_t)admitted);
    assert_int_equal(s.admitted + s.refused[GH_ADMIT_NO_CREDIT], 80000);
    assert_int_equal(s.overruns, 0);
    gh_limits_free(l);
}

/* ---- Monthly limits ---------------------------------------------------------------------- */

static void monthly_limit_and_tier_cap(void **state)
{
    (void)state;
    int64_t now = T0;
    gh_limits_t *l = engine(&now);
    tier_org(l, ORG, "evaluation", USD(100)); /* cap $10 */
    gh_admit_t a;
    assert_int_equal(admit(l, req_of(NULL, 10, 10, USD(6)), &a), GH_ADMIT_OK);
    assert_int_equal(gh_limits_settle(l, &a.hold, 10, 10, USD(6)), GH_OK);
    assert_int_equal(admit(l, req_of(NULL, 10, 10, USD(5)), &a), GH_ADMIT_ORG_MONTHLY_LIMIT);
    assert_int_equal(a.monthly_limit_nusd, USD(10));
    assert_int_equal(a.regain_unix_s, gh_utc_days_from_civil(2026, 12, 1) * 86400);
    char msg[GH_LIMITS_MSG_MAX];
    assert_int_equal(gh_limits_refusal(l, &a, msg, sizeof(msg)), GH_EINVAL);
    assert_string_equal(msg, "You have reached your organization's monthly spend limit of "
                             "$10.00. You will regain access on 2026-12-01 at 00:00 UTC, or "
                             "sooner if an admin raises the limit.");
    /* Reservations count too: $4 fits, and while it is held another $1 does not. */
    gh_admit_t b;
    assert_int_equal(admit(l, req_of(NULL, 10, 10, USD(4)), &a), GH_ADMIT_OK);
    assert_int_equal(admit(l, req_of(NULL, 10, 10, 1), &b), GH_ADMIT_ORG_MONTHLY_LIMIT);
    assert_int_equal(gh_limits_settle(l, &a.hold, 10, 10, USD(1)), GH_OK);

    /* The organization's own limit never lifts it above the tier's cap ... */
    gh_limits_org_cfg_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    gh_limits_org_cfg_tier(&cfg, gh_tier_find(&gh_tiers_default, "evaluation"));
    cfg.monthly_limit_nusd = USD(20);
    assert_int_equal(gh_limits_org_set(l, ORG, &cfg), GH_OK);
    assert_int_equal(org_state(l).monthly_limit_nusd, USD(10));
    assert_int_equal(admit(l, req_of(NULL, 10, 10, USD(4)), &a), GH_ADMIT_ORG_MONTHLY_LIMIT);
    /* ... but a higher tier does, live, and the organization's own limit then applies. */
    gh_limits_org_cfg_tier(&cfg, gh_tier_find(&gh_tiers_default, "tier_1"));
    assert_int_equal(gh_limits_org_set(l, ORG, &cfg), GH_OK);
    assert_int_equal(org_state(l).monthly_limit_nusd, USD(20));
    assert_int_equal(admit(l, req_of(NULL, 10, 10, USD(4)), &a), GH_ADMIT_OK);
    assert_int_equal(admit(l, req_of(NULL, 10, 10, USD(10)), &b), GH_ADMIT_ORG_MONTHLY_LIMIT);
    assert_int_equal(b.monthly_limit_nusd, USD(20));
    assert_int_equal(gh_limits_settle(l, &a.hold, 0, 0, 0), GH_OK);
    /* The balance is untouched by limit changes: $100 - $6 - $1. */
    assert_int_equal(org_state(l).balance_nusd, USD(93));
    gh_limits_free(l);
}

/* The month rolls over at 00:00 UTC on the 1st, here across a year: spend from December no
 * longer counts one microsecond after 2026-12-31T23:59:59.999999Z. */
static void month_rolls_over_at_midnight_utc(void **state)
{
    (void)state;
    int64_t jan1_us = gh_utc_days_from_civil(2027, 1, 1) * 86400 * S_US;
    int64_t now = jan1_us - 1;
    gh_limits_t *l = engine(&now);
    tier_org(l, ORG, "evaluation", USD(100));
    gh_limits_ws_cfg_t ws;
    memset(&ws, 0, sizeof(ws));
    ws.monthly_limit_nusd = USD(5);
    assert_int_equal(gh_limits_ws_set(l, ORG, WS_A, &ws), GH_OK);
    /* Spend so far this month, as loaded from the database. */
    assert_int_equal(gh_limits_org_set_money(l, ORG, USD(100), 202612, CENTS(950)), GH_OK);
    assert_int_equal(gh_limits_ws_set_spend(l, ORG, WS_A, 202612, USD(5)), GH_OK);
    assert_int_equal(org_state(l).month_key, 202612);

    gh_admit_t a, held;
    assert_int_equal(admit(l, req_of(NULL, 10, 10, USD(1)), &a), GH_ADMIT_ORG_MONTHLY_LIMIT);
    assert_int_equal(a.regain_unix_s, jan1_us / S_US);
    assert_int_equal(admit(l, req_of(WS_A, 10, 10, CENTS(10)), &a), GH_ADMIT_WS_MONTHLY_LIMIT);
    /* A request admitted in December and settled in January is January's spend. */
    assert_int_equal(admit(l, req_of(NULL, 10, 10, CENTS(40)), &held), GH_ADMIT_OK);

    now = jan1_us;
    assert_int_equal(admit(l, req_of(NULL, 10, 10, USD(1)), &a), GH_ADMIT_OK);
    gh_limits_org_state_t st = org_state(l);
    assert_int_equal(st.month_key, 202701);
    assert_int_equal(st.month_spent_nusd, 0);
    assert_int_equal(st.reserved_nusd, CENTS(140));
    assert_int_equal(gh_limits_settle(l, &a.hold, 10, 10, USD(1)), GH_OK);
    assert_int_equal(gh_limits_settle(l, &held.hold, 10, 10, CENTS(30)), GH_OK);
    assert_int_equal(org_state(l).month_spent_nusd, CENTS(130));
    assert_int_equal(admit(l, req_of(WS_A, 10, 10, CENTS(10)), &a), GH_ADMIT_OK);
    assert_int_equal(gh_limits_settle(l, &a.hold, 10, 10, CENTS(10)), GH_OK);
    gh_limits_ws_state_t wst;
    assert_int_equal(gh_limits_ws_get(l, ORG, WS_A, &wst), GH_OK);
    assert_int_equal(wst.month_key, 202701);
    assert_int_equal(wst.month_spent_nusd, CENTS(10));
    assert_int_equal(org_state(l).month_spent_nusd, CENTS(140));

    /* An ordinary month end too, and spend loaded for a past month counts as nothing. */
    int64_t feb1_us = gh_utc_days_from_civil(2027, 2, 1) * 86400 * S_US;
    now = feb1_us - 1;
    assert_int_equal(org_state(l).month_key, 202701);
    now = feb1_us;
    assert_int_equal(org_state(l).month_spent_nusd, 0);
    assert_int_equal(gh_limits_org_set_money(l, ORG, USD(50), 202701, USD(9)), GH_OK);
    st = org_state(l);
    assert_int_equal(st.month_key, 202702);
    assert_int_equal(st.month_spent_nusd, 0);
    assert_int_equal(st.balance_nusd, USD(50));
    gh_limits_free(l);
}

static void workspace_limit_below_org(void **state)
{
    (void)state;
    int64_t now = T0;
    gh_limits_t *l = engine(&now);
    tier_org(l, ORG, "tier_2", USD(1000)); /* cap $500 */
    gh_limits_ws_cfg_t ws;
    memset(&ws, 0, sizeof(ws));
    ws.monthly_limit_nusd = USD(5);
    assert_int_equal(gh_limits_ws_set(l, ORG, WS_A, &ws), GH_OK);
    ws.monthly_limit_nusd = 0;
    assert_int_equal(gh_limits_ws_set(l, ORG, WS_B, &ws), GH_OK);

    gh_admit_t a;
    assert_int_equal(admit(l, req_of(WS_A, 10, 10, USD(3)), &a), GH_ADMIT_OK);
    assert_int_equal(gh_limits_settle(l, &a.hold, 10, 10, USD(3)), GH_OK);
    assert_int_equal(admit(l, req_of(WS_A, 10, 10, USD(3)), &a), GH_ADMIT_WS_MONTHLY_LIMIT);
    assert_int_equal(a.monthly_limit_nusd, USD(5));
    char msg[GH_LIMITS_MSG_MAX];
    assert_int_equal(gh_limits_refusal(l, &a, msg, sizeof(msg)), GH_EINVAL);
    assert_non_null(strstr(msg, "this workspace's monthly spend limit of $5.00"));
    assert_int_equal(admit(l, req_of(WS_A, 10, 10, USD(2)), &a), GH_ADMIT_OK);
    assert_int_equal(gh_limits_settle(l, &a.hold, 10, 10, USD(2)), GH_OK);
    /* Another workspace, and requests without one, go on. */
    assert_int_equal(admit(l, req_of(WS_B, 10, 10, USD(3)), &a), GH_ADMIT_OK);
    assert_int_equal(gh_limits_settle(l, &a.hold, 10, 10, USD(3)), GH_OK);
    assert_int_equal(admit(l, req_of(NULL, 10, 10, USD(3)), &a), GH_ADMIT_OK);
    assert_int_equal(gh_limits_settle(l, &a.hold, 10, 10, USD(3)), GH_OK);
    assert_int_equal(org_state(l).month_spent_nusd, USD(11));
    /* Raising the workspace's limit applies at once. */
    ws.monthly_limit_nusd = USD(6);
    assert_int_equal(gh_limits_ws_set(l, ORG, WS_A, &ws), GH_OK);
    assert_int_equal(admit(l, req_of(WS_A, 10, 10, USD(1)), &a), GH_ADMIT_OK);
    assert_int_equal(gh_limits_settle(l, &a.hold, 10, 10, USD(1)), GH_OK);
    /* A workspace with no record: the organization's limits alone. */
    gh_admit_req_t r = {ORG, "wrkspc_01UNKNOWNUNKNOWNUNKNOW", "small", 1, 1, USD(1)};
    assert_int_equal(admit(l, r, &a), GH_ADMIT_OK);
    assert_null(a.hold.ws);
    assert_int_equal(gh_limits_settle(l, &a.hold, 1, 1, USD(1)), GH_OK);
    gh_limits_free(l);
}

/* ---- Rate limits ------------------------------------------------------------------------- */

static void requests_per_minute_and_retry_after(void **state)
{
    (void)state;
    int64_t now = T0;
    gh_limits_t *l = engine(&now);
    tier_org(l, ORG, "evaluation", USD(100)); /* 50 RPM, 20k ITPM, 4k OTPM */
    gh_admit_t a;
    for (int i = 0; i < 50; i++) {
        assert_int_equal(admit(l, req_of(NULL, 1, 1, 1), &a), GH_ADMIT_OK);
        assert_int_equal(gh_limits_settle(l, &a.hold, 1, 1, 1), GH_OK);
    }
    assert_int_equal(admit(l, req_of(NULL, 1, 1, 1), &a), GH_ADMIT_RATE_LIMITED);
    assert_int_equal(a.limited_kind, GH_LIMIT_REQUESTS);
    assert_false(a.limited_by_workspace);
    assert_int_equal(a.limited_per_min, 50);
    assert_int_equal(a.retry_after_s, 2); /* 1.2 s, rounded up */
    assert_int_equal(a.report.requests.remaining, 0);
    assert_false(a.hold.held);
    char msg[GH_LIMITS_MSG_MAX];
    assert_int_equal(gh_limits_refusal(l, &a, msg, sizeof(msg)), GH_ERATE);
    assert_string_equal(msg, "This request would exceed your organization's rate limit of 50 "
                             "requests per minute for small models. Please retry after 2 "
                             "seconds; the anthropic-ratelimit-* response headers show the "
                             "current usage.");
    gh_limits_headers_t h;
    size_t n = gh_limits_format_headers(&a, &h);
    assert_string_equal(h.h[n - 1].name, "retry-after");
    assert_string_equal(h.h[n - 1].value, "2");
    /* A refusal takes nothing, so the other class is untouched ... */
    gh_admit_req_t large = req_of(NULL, 1, 1, 1);
    large.model_class = "large";
    assert_int_equal(admit(l, large, &a), GH_ADMIT_OK);
    assert_int_equal(gh_limits_settle(l, &a.hold, 1, 1, 1), GH_OK);
    /* ... and 1.2 s later one request fits again. */
    now = T0 + 1199999;
    assert_int_equal(admit(l, req_of(NULL, 1, 1, 1), &a), GH_ADMIT_RATE_LIMITED);
    assert_int_equal(a.retry_after_s, 1);
    now = T0 + 1200000;
    assert_int_equal(admit(l, req_of(NULL, 1, 1, 1), &a), GH_ADMIT_OK);
    assert_int_equal(gh_limits_settle(l, &a.hold, 1, 1, 1), GH_OK);
    gh_limits_free(l);
}

static void input_tokens_per_minute(void **state)
{
    (void)state;
    int64_t now = T0;
    gh_limits_t *l = engine(&now);
    tier_org(l, ORG, "evaluation", USD(100));
    gh_admit_t a, b;
    assert_int_equal(admit(l, req_of(NULL, 15000, 10, 1), &a), GH_ADMIT_OK);
    assert_int_equal(admit(l, req_of(NULL, 10000, 10, 1), &b), GH_ADMIT_RATE_LIMITED);
    assert_int_equal(b.limited_kind, GH_LIMIT_INPUT_TOKENS);
    /* 5,000 more tokens at 20,000 a minute: 15 s. */
    assert_int_equal(b.retry_after_s, 15);
    char msg[GH_LIMITS_MSG_MAX];
    gh_limits_refusal(l, &b, msg, sizeof(msg));
    assert_non_null(strstr(msg, "20000 input tokens per minute"));
    /* The bound was pessimistic: the unused part comes back at settlement. */
    assert_int_equal(gh_limits_settle(l, &a.hold, 5000, 10, 1), GH_OK);
    assert_int_equal(admit(l, req_of(NULL, 10000, 10, 1), &b), GH_ADMIT_OK);
    assert_int_equal(b.report.input_tokens.remaining, 5000);
    /* More input than the bound is charged: the bucket goes into debt. */
    assert_int_equal(gh_limits_settle(l, &b.hold, 30000, 10, 1), GH_OK);
    gh_limits_report_t r;
    assert_int_equal(gh_limits_peek(l, ORG, NULL, "small", &r), GH_OK);
    assert_int_equal(r.input_tokens.remaining, 0);
    assert_int_equal(admit(l, req_of(NULL, 1, 10, 1), &b), GH_ADMIT_RATE_LIMITED);
    /* -15,000 to +1 at 20,000 a minute: 45.003 s, rounded up. */
    assert_int_equal(b.retry_after_s, 46);
    gh_limits_settle(l, &a.hold, 0, 0, 0);
    gh_limits_free(l);
}

static void output_tokens_corrected_at_settlement(void **state)
{
    (void)state;
    int64_t now = T0;
    gh_limits_t *l = engine(&now);
    tier_org(l, ORG, "evaluation", USD(100)); /* 4,000 OTPM */
    gh_admit_t a, b;
    assert_int_equal(admit(l, req_of(NULL, 10, 4000, 1), &a), GH_ADMIT_OK);
    assert_int_equal(a.report.output_tokens.remaining, 0);
    assert_int_equal(admit(l, req_of(NULL, 10, 1, 1), &b), GH_ADMIT_RATE_LIMITED);
    assert_int_equal(b.limited_kind, GH_LIMIT_OUTPUT_TOKENS);
    assert_int_equal(gh_limits_settle(l, &a.hold, 10, 1000, 1), GH_OK);
    assert_int_equal(admit(l, req_of(NULL, 10, 3000, 1), &b), GH_ADMIT_OK);
    assert_int_equal(b.report.output_tokens.remaining, 0);
    assert_int_equal(gh_limits_settle(l, &b.hold, 10, 0, 1), GH_OK);

    /* max_tokens above the limit is cut to the capacity: it waits for a full bucket instead
     * of never passing, and what it really produced beyond is charged afterwards. */
    now += 60 * S_US;
    assert_int_equal(admit(l, req_of(NULL, 10, 8192, 1), &a), GH_ADMIT_OK);
    assert_int_equal(a.hold.taken[0][1], 4000);
    assert_int_equal(gh_limits_settle(l, &a.hold, 10, 5000, 1), GH_OK);
    gh_limits_report_t r;
    gh_limits_peek(l, ORG, NULL, "small", &r);
    assert_int_equal(r.output_tokens.remaining, 0);
    assert_int_equal(r.output_tokens.reset_unix_s, (now + 75 * S_US) / S_US); /* -1000 .. 4000 */
    gh_limits_free(l);
}

static void workspace_rate_limits_below_org(void **state)
{
    (void)state;
    int64_t now = T0;
    gh_limits_t *l = engine(&now);
    tier_org(l, ORG, "tier_2", USD(100)); /* 1,000 RPM */
    gh_limits_ws_cfg_t ws;
    memset(&ws, 0, sizeof(ws));
    ws.rates[0].requests_per_min = 2; /* "small" only */
    assert_int_equal(gh_limits_ws_set(l, ORG, WS_A, &ws), GH_OK);
    gh_admit_t a;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(admit(l, req_of(WS_A, 1, 1, 1), &a), GH_ADMIT_OK);
        assert_int_equal(gh_limits_settle(l, &a.hold, 1, 1, 1), GH_OK);
    }
    /* The headers show the binding bucket: the workspace's. */
    assert_int_equal(a.report.requests.limit, 2);
    assert_int_equal(a.report.requests.remaining, 0);
    assert_int_equal(admit(l, req_of(WS_A, 1, 1, 1), &a), GH_ADMIT_RATE_LIMITED);
    assert_true(a.limited_by_workspace);
    assert_int_equal(a.retry_after_s, 30);
    char msg[GH_LIMITS_MSG_MAX];
    gh_limits_refusal(l, &a, msg, sizeof(msg));
    assert_non_null(strstr(msg, "this workspace's rate limit of 2 requests per minute"));
    /* Other workspaces, and the workspace's other class, follow the organization's. */
    assert_int_equal(admit(l, req_of(WS_B, 1, 1, 1), &a), GH_ADMIT_OK);
    assert_int_equal(a.report.requests.limit, 1000);
    assert_int_equal(gh_limits_settle(l, &a.hold, 1, 1, 1), GH_OK);
    gh_admit_req_t large = req_of(WS_A, 1, 1, 1);
    large.model_class = "large";
    assert_int_equal(admit(l, large, &a), GH_ADMIT_OK);
    assert_int_equal(gh_limits_settle(l, &a.hold, 1, 1, 1), GH_OK);
    gh_limits_free(l);
}

typedef struct {
    gh_limits_t *l;
    int admitted;
} rate_worker_t;

static void *rate_worker(void *p)
{
    rate_worker_t *w = p;
    for (int i = 0; i < 1000; i++) {
        gh_admit_t a;
        gh_admit_req_t r = {ORG, NULL, "small", 1, 1, 1};
        if (gh_limits_admit(w->l, &r, &a) == GH_OK && a.decision == GH_ADMIT_OK) {
            w->admitted++;
            gh_limits_settle(w->l, &a.hold, 1, 1, 1);
        }
    }
    return NULL;
}

static void rate_limit_exact_under_threads(void **state)
{
    (void)state;
    int64_t now = T0;
    gh_limits_t *l = engine(&now);
    tier_org(l, ORG, "tier_2", USD(100)); /* 1,000 RPM */
    pthread_t th[4];
    rate_worker_t w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (rate_worker_t){l, 0};
        pthread_create(&th[i], NULL, rate_worker, &w[i]);
    }
    int total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        total += w[i].admitted;
    }
    assert_int_equal(total, 1000);
    gh_limits_free(l);
}

/* ---- Headers ----------------------------------------------------------------------------- */

static void headers_are_formatted(void **state)
{
    (void)state;
    int64_t now = T0; /* 2026-11-25T12:00:00Z */
    gh_limits_t *l = engine(&now);
    tier_org(l, ORG, "evaluation", USD(100));
    gh_admit_t a;
    assert_int_equal(admit(l, req_of(NULL, 1000, 500, 1), &a), GH_ADMIT_OK);
    gh_limits_headers_t h;
    assert_int_equal(gh_limits_format_headers(&a, &h), 12);
    static const char *const expect[12][2] = {
        /* one request at 50 a minute comes back in 1.2 s: rounded up */
        {"anthropic-ratelimit-requests-limit", "50"},
        {"anthropic-ratelimit-requests-remaining", "49"},
        {"anthropic-ratelimit-requests-reset", "2026-11-25T12:00:02Z"},
        /* 1,000 at 20,000 a minute: 3 s */
        {"anthropic-ratelimit-input-tokens-limit", "20000"},
        {"anthropic-ratelimit-input-tokens-remaining", "19000"},
        {"anthropic-ratelimit-input-tokens-reset", "2026-11-25T12:00:03Z"},
        /* 500 at 4,000 a minute: 7.5 s */
        {"anthropic-ratelimit-output-tokens-limit", "4000"},
        {"anthropic-ratelimit-output-tokens-remaining", "3500"},
        {"anthropic-ratelimit-output-tokens-reset", "2026-11-25T12:00:08Z"},
        {"anthropic-ratelimit-tokens-limit", "24000"},
        {"anthropic-ratelimit-tokens-remaining", "22500"},
        {"anthropic-ratelimit-tokens-reset", "2026-11-25T12:00:08Z"},
    };
    for (int i = 0; i < 12; i++) {
        assert_string_equal(h.h[i].name, expect[i][0]);
        assert_int_equal(h.h[i].name_len, strlen(expect[i][0]));
        assert_string_equal(h.h[i].value, expect[i][1]);
        assert_int_equal(h.h[i].value_len, strlen(expect[i][1]));
    }
    assert_int_equal(gh_limits_settle(l, &a.hold, 1000, 500, 1), GH_OK);

    /* No rate limits: no headers. Only an input limit: tokens = input. */
    gh_limits_org_cfg_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    assert_int_equal(gh_limits_org_set(l, ORG, &cfg), GH_OK);
    assert_int_equal(admit(l, req_of(NULL, 1, 1, 1), &a), GH_ADMIT_OK);
    assert_int_equal(gh_limits_format_headers(&a, &h), 0);
    assert_int_equal(gh_limits_settle(l, &a.hold, 1, 1, 1), GH_OK);
    cfg.rates[0].input_tokens_per_min = 600;
    assert_int_equal(gh_limits_org_set(l, ORG, &cfg), GH_OK);
    assert_int_equal(admit(l, req_of(NULL, 1, 1, 1), &a), GH_ADMIT_OK);
    assert_int_equal(gh_limits_format_headers(&a, &h), 6);
    assert_string_equal(h.h[3].name, "anthropic-ratelimit-tokens-limit");
    assert_string_equal(h.h[3].value, "600");
    assert_string_equal(h.h[4].value, "599");
    assert_string_equal(h.h[5].value, "2026-11-25T12:00:01Z"); /* 0.1 s, rounded up */
    gh_limits_free(l);
}

/* ---- Live changes ------------------------------------------------------------------------ */

static void changes_apply_to_the_next_request(void **state)
{
    (void)state;
    int64_t now = T0;
    gh_limits_t *l = engine(&now);
    gh_limits_org_cfg_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.rates[0].requests_per_min = 1;
    assert_int_equal(gh_limits_org_set(l, ORG, &cfg), GH_OK);
    gh_admit_t a;
    /* No balance yet. */
    assert_int_equal(admit(l, req_of(NULL, 1, 1, 1), &a), GH_ADMIT_NO_CREDIT);
    assert_int_equal(gh_limits_credit(l, ORG, CENTS(1)), GH_OK);
    assert_int_equal(admit(l, req_of(NULL, 1, 1, 1), &a), GH_ADMIT_OK);
    assert_int_equal(gh_limits_settle(l, &a.hold, 1, 1, 1), GH_OK);
    assert_int_equal(admit(l, req_of(NULL, 1, 1, 1), &a), GH_ADMIT_RATE_LIMITED);
    /* Raise the limit: the next request passes. */
    cfg.rates[0].requests_per_min = 100;
    assert_int_equal(gh_limits_org_set(l, ORG, &cfg), GH_OK);
    assert_int_equal(admit(l, req_of(NULL, 1, 1, 1), &a), GH_ADMIT_OK);
    assert_int_equal(a.report.requests.remaining, 98);
    /* Expired credits (a negative credit) apply at once too. */
    assert_int_equal(gh_limits_credit(l, ORG, -CENTS(1)), GH_OK);
    gh_admit_t b;
    assert_int_equal(admit(l, req_of(NULL, 1, 1, 1), &b), GH_ADMIT_NO_CREDIT);
    /* Forgetting the organization: admissions fail, the late settlement is ignored. */
    assert_int_equal(gh_limits_org_forget(l, ORG), GH_OK);
    assert_int_equal(gh_limits_admit(l, &(gh_admit_req_t){ORG, NULL, "small", 1, 1, 1}, &b),
                     GH_ENOTFOUND);
    assert_int_equal(b.decision, GH_ADMIT_NO_CREDIT); /* fails closed */
    assert_int_equal(gh_limits_settle(l, &a.hold, 1, 1, 1), GH_ENOTFOUND);
    assert_int_equal(gh_limits_credit(l, ORG, 1), GH_ENOTFOUND);
    assert_int_equal(gh_limits_org_forget(l, ORG), GH_ENOTFOUND);
    /* Set again, it starts from nothing. */
    assert_int_equal(gh_limits_org_set(l, ORG, &cfg), GH_OK);
    gh_limits_org_state_t st = org_state(l);
    assert_int_equal(st.balance_nusd, 0);
    assert_int_equal(st.reserved_nusd, 0);
    assert_int_equal(st.in_flight, 0);
    gh_limits_stats_t s;
    gh_limits_stats(l, &s);
    assert_int_equal(s.orgs, 1);
    gh_limits_free(l);
}

static void workspace_forget(void **state)
{
    (void)state;
    int64_t now = T0;
    gh_limits_t *l = engine(&now);
    money_only_org(l, ORG, USD(10));
    gh_limits_ws_cfg_t ws;
    memset(&ws, 0, sizeof(ws));
    ws.monthly_limit_nusd = USD(1);
    assert_int_equal(gh_limits_ws_set(l, ORG, WS_A, &ws), GH_OK);
    gh_admit_t a, b;
    assert_int_equal(admit(l, req_of(WS_A, 1, 1, CENTS(50)), &a), GH_ADMIT_OK);
    assert_int_equal(gh_limits_ws_forget(l, ORG, WS_A), GH_OK);
    assert_int_equal(gh_limits_ws_forget(l, ORG, WS_A), GH_ENOTFOUND);
    /* Without its record the workspace is held to the organization's limits only. */
    assert_int_equal(admit(l, req_of(WS_A, 1, 1, USD(2)), &b), GH_ADMIT_OK);
    assert_int_equal(gh_limits_settle(l, &b.hold, 1, 1, USD(2)), GH_OK);
    /* The earlier hold still settles against the organization. */
    assert_int_equal(gh_limits_settle(l, &a.hold, 1, 1, CENTS(50)), GH_OK);
    gh_limits_org_state_t st = org_state(l);
    assert_int_equal(st.balance_nusd, CENTS(750));
    assert_int_equal(st.reserved_nusd, 0);
    /* Set again: a fresh record. */
    assert_int_equal(gh_limits_ws_set(l, ORG, WS_A, &ws), GH_OK);
    gh_limits_ws_state_t wst;
    assert_int_equal(gh_limits_ws_get(l, ORG, WS_A, &wst), GH_OK);
    assert_int_equal(wst.month_spent_nusd, 0);
    assert_int_equal(wst.in_flight, 0);
    gh_limits_free(l);
}

/* ---- Bad input --------------------------------------------------------------------------- */

static void bad_input(void **state)
{
    (void)state;
    int64_t now = T0;
    gh_limits_t *l = NULL;
    const char *const dup[] = {"small", "small"};
    assert_int_equal(gh_limits_new(&l, dup, 2, test_clock, &now), GH_EINVAL);
    const char *const nine[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i"};
    assert_int_equal(gh_limits_new(&l, nine, 9, test_clock, &now), GH_EINVAL);
    const char *const long_name[] = {"a-class-name-of-thirty-two-chars"};
    assert_int_equal(gh_limits_new(&l, long_name, 1, test_clock, &now), GH_EINVAL);
    assert_int_equal(gh_limits_new(&l, classes, 0, test_clock, &now), GH_EINVAL);

    l = engine(&now);
    assert_int_equal(gh_limits_class_index(l, "large"), 1);
    assert_int_equal(gh_limits_class_index(l, "medium"), -1);
    gh_limits_org_cfg_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    assert_int_equal(gh_limits_org_set(l, "", &cfg), GH_EINVAL);
    char long_id[GH_LIMITS_MSG_MAX];
    memset(long_id, 'x', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    assert_int_equal(gh_limits_org_set(l, long_id, &cfg), GH_EINVAL);
    cfg.monthly_limit_nusd = -1;
    assert_int_equal(gh_limits_org_set(l, ORG, &cfg), GH_EINVAL);
    cfg.monthly_limit_nusd = 0;
    cfg.rates[1].output_tokens_per_min = GH_BUCKET_LIMIT_MAX + 1;
    assert_int_equal(gh_limits_org_set(l, ORG, &cfg), GH_EINVAL);
    cfg.rates[1].output_tokens_per_min = 0;
    assert_int_equal(gh_limits_credit(l, ORG, 1), GH_ENOTFOUND);
    assert_int_equal(gh_limits_org_set_money(l, ORG, 1, 202611, 0), GH_ENOTFOUND);
    gh_limits_ws_cfg_t ws;
    memset(&ws, 0, sizeof(ws));
    assert_int_equal(gh_limits_ws_set(l, ORG, WS_A, &ws), GH_ENOTFOUND);
    assert_int_equal(gh_limits_org_set(l, ORG, &cfg), GH_OK);
    assert_int_equal(gh_limits_org_set_money(l, ORG, 1, 0, 0), GH_EINVAL);
    assert_int_equal(gh_limits_org_set_money(l, ORG, 1, 202613, 0), GH_EINVAL);
    assert_int_equal(gh_limits_org_set_money(l, ORG, 1, 202611, -1), GH_EINVAL);
    assert_int_equal(gh_limits_ws_set_spend(l, ORG, WS_A, 202611, 0), GH_ENOTFOUND);
    /* A workspace is found through its organization only. */
    ws.monthly_limit_nusd = 7;
    assert_int_equal(gh_limits_ws_set(l, ORG, WS_A, &ws), GH_OK);
    const char *other = "org_01BBBBBBBBBBBBBBBBBBBBBB";
    assert_int_equal(gh_limits_org_set(l, other, &cfg), GH_OK);
    gh_limits_ws_state_t wst;
    assert_int_equal(gh_limits_ws_get(l, other, WS_A, &wst), GH_ENOTFOUND);
    assert_int_equal(gh_limits_ws_get(l, ORG, WS_A, &wst), GH_OK);
    assert_int_equal(wst.monthly_limit_nusd, 7);

    gh_admit_t a;
    gh_admit_req_t r = {ORG, NULL, "medium", 1, 1, 1};
    assert_int_equal(gh_limits_admit(l, &r, &a), GH_EINVAL);
    assert_int_equal(a.decision, GH_ADMIT_NO_CREDIT);
    r.model_class = "small";
    r.worst_cost_nusd = -1;
    assert_int_equal(gh_limits_admit(l, &r, &a), GH_EINVAL);
    gh_limits_report_t rep;
    assert_int_equal(gh_limits_peek(l, "org_01NOPE", NULL, "small", &rep), GH_ENOTFOUND);
    assert_int_equal(gh_limits_peek(l, ORG, NULL, "medium", &rep), GH_EINVAL);
    gh_limits_free(l);
    gh_limits_free(NULL);
}

/* Many organizations: tables grow, each keeps its own state. */
static void many_orgs(void **state)
{
    (void)state;
    int64_t now = T0;
    gh_limits_t *l = engine(&now);
    char id[GH_LIMITS_MSG_MAX];
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof(id), "org_%05d", i);
        money_only_org(l, id, i);
        snprintf(id + 100, sizeof(id) - 100, "ws_%05d", i);
        gh_limits_ws_cfg_t ws;
        memset(&ws, 0, sizeof(ws));
        assert_int_equal(gh_limits_ws_set(l, id, id + 100, &ws), GH_OK);
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof(id), "org_%05d", i);
        gh_limits_org_state_t st;
        assert_int_equal(gh_limits_org_get(l, id, &st), GH_OK);
        assert_int_equal(st.balance_nusd, i);
    }
    gh_limits_stats_t s;
    gh_limits_stats(l, &s);
    assert_int_equal(s.orgs, 5000);
    assert_int_equal(s.workspaces, 5000);
    gh_limits_free(l);
}

/* With admission turned off, costs are still counted: balance, month spend of the
 * organization and of a workspace that has a record; an unknown workspace is ignored. */
static void record_counts_without_admission(void **state)
{
    (void)state;
    int64_t now = T0;
    gh_limits_t *l = engine(&now);
    money_only_org(l, ORG, USD(1));
    gh_limits_ws_cfg_t ws;
    memset(&ws, 0, sizeof(ws));
    assert_int_equal(gh_limits_ws_set(l, ORG, WS_A, &ws), GH_OK);
    assert_int_equal(gh_limits_record(l, ORG, WS_A, CENTS(30)), GH_OK);
    assert_int_equal(gh_limits_record(l, ORG, WS_B, CENTS(20)), GH_OK);
    assert_int_equal(gh_limits_record(l, ORG, NULL, CENTS(10)), GH_OK);
    assert_int_equal(gh_limits_record(l, ORG, "", -5), GH_OK); /* a negative cost is 0 */
    gh_limits_org_state_t st = org_state(l);
    assert_int_equal(st.balance_nusd, CENTS(40));
    assert_int_equal(st.month_spent_nusd, CENTS(60));
    assert_int_equal(st.reserved_nusd, 0);
    gh_limits_ws_state_t ws_st;
    assert_int_equal(gh_limits_ws_get(l, ORG, WS_A, &ws_st), GH_OK);
    assert_int_equal(ws_st.month_spent_nusd, CENTS(30));
    /* It may go below zero (usage past the credits, as the ledger records it). */
    assert_int_equal(gh_limits_record(l, ORG, NULL, USD(1)), GH_OK);
    assert_int_equal(org_state(l).balance_nusd, CENTS(40) - USD(1));
    /* The next month starts from zero spend. */
    now = INT64_C(1796083200) * S_US; /* 2026-12-01T00:00:00Z */
    assert_int_equal(gh_limits_record(l, ORG, WS_A, CENTS(1)), GH_OK);
    assert_int_equal(org_state(l).month_spent_nusd, CENTS(1));
    assert_int_equal(gh_limits_record(l, "org_01ZZZZZZZZZZZZZZZZZZZZZZ", NULL, 1), GH_ENOTFOUND);
    gh_limits_free(l);
}

/* ---- Cluster money: leases --------------------------------------------------------------- */

typedef struct {
    int wakes;
    int wanted;
    char last[64];
} want_log_t;

static void on_wake(void *ctx)
{
    ((want_log_t *)ctx)->wakes++;
}

static void on_wanted(void *ctx, const char *org_id)
{
    want_log_t *w = ctx;
    w->wanted++;
    snprintf(w->last, sizeof(w->last), "%s", org_id);
}

/* Leases on: an organization without a lease is fenced (nothing costing money is admitted,
 * even with a balance) and asks for money once until drained; a request that costs nothing
 * needs no lease; with a lease, the fence falls at its deadline; with the database down a
 * fenced organization is refused with LEASE_LAPSED (529). */
static void leases_fence_and_ask(void **state)
{
    (void)state;
    int64_t now = T0;
    gh_limits_t *l = engine(&now);
    want_log_t w = {0};
    gh_limits_leases_on(l, on_wake, &w);
    money_only_org(l, ORG, USD(1)); /* a balance, but no lease yet */
    gh_admit_t a;
    assert_int_equal(admit(l, req_of(NULL, 10, 10, CENTS(1)), &a), GH_ADMIT_NO_CREDIT);
    assert_true(a.lease_wait);
    assert_int_equal(a.lease_wait_since_us, now);
    assert_int_equal(admit(l, req_of(NULL, 10, 10, CENTS(1)), &a), GH_ADMIT_NO_CREDIT);
    assert_int_equal(w.wakes, 1); /* asked once, not per refusal */
    gh_limits_lease_wants(l, on_wanted, &w);
    assert_int_equal(w.wanted, 1);
    assert_string_equal(w.last, ORG);
    gh_limits_lease_wants(l, on_wanted, &w);
    assert_int_equal(w.wanted, 1); /* drained */
    /* count_tokens: worst case 0, no lease needed. */
    assert_int_equal(admit(l, req_of(NULL, 10, 0, 0), &a), GH_ADMIT_OK);
    assert_int_equal(gh_limits_settle(l, &a.hold, 0, 0, 0), GH_OK);

    /* A lease until T0 + 10 s, with a low-water mark of 50 cents. */
    assert_int_equal(gh_limits_lease_set(l, ORG, T0 + 10 * S_US, CENTS(50), false, 0, 0, 0), GH_OK);
    assert_int_equal(admit(l, req_of(NULL, 10, 10, CENTS(1)), &a), GH_ADMIT_OK);
    assert_int_equal(w.wakes, 1); /* still above the low-water mark */
    assert_int_equal(gh_limits_settle(l, &a.hold, 10, 10, CENTS(1)), GH_OK);
    gh_limits_lease_state_t ls;
    assert_int_equal(gh_limits_lease_get(l, ORG, true, &ls), GH_OK);
    assert_int_equal(ls.admitted, 2); /* count_tokens too */
    assert_int_equal(ls.spent_nusd, CENTS(1));
    assert_int_equal(ls.worst_nusd, CENTS(1));
    assert_int_equal(gh_limits_lease_get(l, ORG, false, &ls), GH_OK);
    assert_int_equal(ls.worst_nusd, 0); /* reset by the read before */

    /* Below the low-water mark after an admission: it asks again. */
    assert_int_equal(admit(l, req_of(NULL, 10, 10, CENTS(60)), &a), GH_ADMIT_OK);
    assert_int_equal(w.wakes, 2);
    assert_int_equal(gh_limits_settle(l, &a.hold, 0, 0, 0), GH_OK);

    /* The deadline: from then on fenced. */
    now = T0 + 10 * S_US;
    assert_int_equal(admit(l, req_of(NULL, 10, 10, CENTS(1)), &a), GH_ADMIT_NO_CREDIT);
    gh_limits_set_db_down(l, true);
    assert_int_equal(admit(l, req_of(NULL, 10, 10, CENTS(1)), &a), GH_ADMIT_LEASE_LAPSED);
    assert_false(a.lease_wait);
    char msg[GH_LIMITS_MSG_MAX];
    assert_int_equal(gh_limits_refusal(l, &a, msg, sizeof(msg)), GH_EUNAVAIL);
    assert_non_null(strstr(msg, "cannot reach its database"));
    gh_limits_free(l);
}

/* Withdraw takes only what is not reserved, atomically: with 60 of 100 cents reserved, asking
 * for everything takes 40 and leaves the reservation whole; the request then settles within
 * what is left. */
static void leases_withdraw_keeps_reservations(void **state)
{
    (void)state;
    int64_t now = T0;
    gh_limits_t *l = engine(&now);
    want_log_t w = {0};
    gh_limits_leases_on(l, on_wake, &w);
    money_only_org(l, ORG, USD(1));
    assert_int_equal(gh_limits_lease_set(l, ORG, T0 + 10 * S_US, 0, false, 0, 0, 0), GH_OK);
    gh_admit_t a;
    assert_int_equal(admit(l, req_of(NULL, 10, 10, CENTS(60)), &a), GH_ADMIT_OK);
    int64_t taken = -1, reserved = -1;
    assert_int_equal(gh_limits_withdraw(l, ORG, CENTS(10), &taken, &reserved), GH_OK);
    assert_int_equal(taken, CENTS(10));
    assert_int_equal(reserved, CENTS(60));
    assert_int_equal(gh_limits_withdraw(l, ORG, INT64_MAX, &taken, &reserved), GH_OK);
    assert_int_equal(taken, CENTS(30));
    assert_int_equal(gh_limits_withdraw(l, ORG, INT64_MAX, &taken, NULL), GH_OK);
    assert_int_equal(taken, 0);
    gh_limits_org_state_t st = org_state(l);
    assert_int_equal(st.balance_nusd, CENTS(60));
    assert_int_equal(st.reserved_nusd, CENTS(60));
    assert_int_equal(gh_limits_settle(l, &a.hold, 10, 10, CENTS(25)), GH_OK);
    st = org_state(l);
    assert_int_equal(st.balance_nusd, CENTS(35));
    assert_int_equal(st.reserved_nusd, 0);
    assert_int_equal(gh_limits_withdraw(l, "org_01ZZZZZZZZZZZZZZZZZZZZZZ", 1, &taken, NULL),
                     GH_ENOTFOUND);
    gh_limits_free(l);
}

/* A waiting request is offered to wait until an ask sent after it began waiting got nothing;
 * a lease bounded by the monthly limit reports the monthly limit. */
static void leases_wait_until_dry(void **state)
{
    (void)state;
    int64_t now = T0;
    gh_limits_t *l = engine(&now);
    want_log_t w = {0};
    gh_limits_leases_on(l, on_wake, &w);
    money_only_org(l, ORG, 0);
    assert_int_equal(gh_limits_lease_set(l, ORG, T0 + 10 * S_US, 0, false, 0, T0 - 1, 0), GH_OK);
    gh_admit_t a;
    gh_admit_req_t r = req_of(NULL, 10, 10, CENTS(1));
    assert_int_equal(admit(l, r, &a), GH_ADMIT_NO_CREDIT);
    assert_true(a.lease_wait); /* the dry ask was sent before it began waiting */
    assert_true(a.lease_unanswered); /* nothing answered since: the gateway answers 529 */
    r.lease_wait_since_us = a.lease_wait_since_us;
    now += 1000;
    assert_int_equal(gh_limits_lease_set(l, ORG, T0 + 10 * S_US, 0, false, 0, T0 - 1, now), GH_OK);
    assert_int_equal(admit(l, r, &a), GH_ADMIT_NO_CREDIT);
    assert_true(a.lease_wait);
    assert_false(a.lease_unanswered); /* answered, with something: the normal refusal */
    now += 5000;
    assert_int_equal(gh_limits_lease_set(l, ORG, T0 + 10 * S_US, 0, false, 0, T0 + 1, 0), GH_OK);
    assert_int_equal(admit(l, r, &a), GH_ADMIT_NO_CREDIT);
    assert_false(a.lease_wait); /* an ask sent since got nothing */
    assert_int_equal(gh_limits_lease_set(l, ORG, T0 + 10 * S_US, 0, true, USD(5), T0 + 1, 0), GH_OK);
    assert_int_equal(admit(l, r, &a), GH_ADMIT_ORG_MONTHLY_LIMIT);
    assert_int_equal(a.monthly_limit_nusd, USD(5));
    gh_limits_free(l);
}

/* ---- Cluster money: workspace leases ----------------------------------------------------- */

typedef struct {
    int wanted;
    char org[64], ws[64];
} ws_want_log_t;

static void on_ws_wanted(void *ctx, const char *org_id, const char *ws_id)
{
    ws_want_log_t *w = ctx;
    w->wanted++;
    snprintf(w->org, sizeof(w->org), "%s", org_id);
    snprintf(w->ws, sizeof(w->ws), "%s", ws_id);
}

/* Leases on: a workspace with a monthly limit is admitted only within its own lease as well
 * as its organization's; without one (or past its deadline) it is refused with the workspace
 * limit and asks once; within it, its unreserved part bounds each worst case; settlement
 * takes the cost off it; withdraw keeps reservations; a workspace without a limit (WS_B) needs
 * no lease of its own; a dry ask ends the wait with the workspace-limit refusal. */
static void ws_leases_admit_within_both(void **state)
{
    (void)state;
    int64_t now = T0;
    gh_limits_t *l = engine(&now);
    want_log_t w = {0};
    gh_limits_leases_on(l, on_wake, &w);
    money_only_org(l, ORG, USD(10));
    assert_int_equal(gh_limits_lease_set(l, ORG, T0 + 10 * S_US, 0, false, 0, 0, 0), GH_OK);
    gh_limits_ws_cfg_t wcfg = {.monthly_limit_nusd = CENTS(30)};
    assert_int_equal(gh_limits_ws_set(l, ORG, WS_A, &wcfg), GH_OK);
    gh_limits_ws_cfg_t nolimit = {0};
    assert_int_equal(gh_limits_ws_set(l, ORG, WS_B, &nolimit), GH_OK);

    gh_admit_t a;
    assert_int_equal(admit(l, req_of(WS_A, 10, 10, CENTS(1)), &a), GH_ADMIT_WS_MONTHLY_LIMIT);
    assert_true(a.lease_wait);
    assert_int_equal(a.monthly_limit_nusd, CENTS(30));
    assert_int_equal(w.wakes, 1);
    ws_want_log_t ww = {0};
    gh_limits_ws_lease_wants(l, on_ws_wanted, &ww);
    assert_int_equal(ww.wanted, 1);
    assert_string_equal(ww.org, ORG);
    assert_string_equal(ww.ws, WS_A);
    gh_limits_ws_lease_wants(l, on_ws_wanted, &ww);
    assert_int_equal(ww.wanted, 1); /* drained */
    /* The other workspace spends on the organization's lease alone. */
    assert_int_equal(admit(l, req_of(WS_B, 10, 10, CENTS(50)), &a), GH_ADMIT_OK);
    assert_int_equal(gh_limits_settle(l, &a.hold, 10, 10, CENTS(50)), GH_OK);

    /* A lease of 5 cents until T0 + 10 s. */
    assert_int_equal(gh_limits_ws_lease_set(l, ORG, WS_A, T0 + 10 * S_US, 0, 0, 0), GH_OK);
    assert_int_equal(gh_limits_ws_lease_credit(l, ORG, WS_A, CENTS(5)), GH_OK);
    gh_admit_t a1, a2;
    assert_int_equal(admit(l, req_of(WS_A, 10, 10, CENTS(3)), &a1), GH_ADMIT_OK);
    /* 2 cents unreserved: a 3-cent worst case does not fit, though the organization has $9.50
     * and the workspace's local month spend is far below its limit. */
    assert_int_equal(admit(l, req_of(WS_A, 10, 10, CENTS(3)), &a2), GH_ADMIT_WS_MONTHLY_LIMIT);
    int64_t taken = -1, reserved = -1;
    assert_int_equal(gh_limits_ws_lease_withdraw(l, ORG, WS_A, INT64_MAX, &taken, &reserved),
                     GH_OK);
    assert_int_equal(taken, CENTS(2));
    assert_int_equal(reserved, CENTS(3));
    assert_int_equal(gh_limits_settle(l, &a1.hold, 10, 10, CENTS(1)), GH_OK);
    gh_limits_lease_state_t st;
    assert_int_equal(gh_limits_ws_lease_get(l, ORG, WS_A, true, &st), GH_OK);
    assert_int_equal(st.balance_nusd, CENTS(2)); /* 3 left after withdrawing 2, less 1 spent */
    assert_int_equal(st.reserved_nusd, 0);
    assert_int_equal(st.spent_nusd, CENTS(1));
    assert_int_equal(st.worst_nusd, CENTS(3));
    assert_int_equal(st.admitted, 1);
    assert_int_equal(st.monthly_limit_nusd, CENTS(30));
    assert_int_equal(org_state(l).balance_nusd, USD(10) - CENTS(51));

    /* A dry ask sent after it began waiting: refused with the workspace limit, no wait. */
    gh_admit_req_t r = req_of(WS_A, 10, 10, CENTS(3));
    assert_int_equal(admit(l, r, &a), GH_ADMIT_WS_MONTHLY_LIMIT);
    assert_true(a.lease_wait);
    r.lease_wait_since_us = a.lease_wait_since_us;
    now += 1000;
    assert_int_equal(gh_limits_ws_lease_set(l, ORG, WS_A, T0 + 10 * S_US, 0, now, now), GH_OK);
    assert_int_equal(admit(l, r, &a), GH_ADMIT_WS_MONTHLY_LIMIT);
    assert_false(a.lease_wait);

    /* Past its deadline the workspace is fenced, whatever it holds; the organization is not. */
    assert_int_equal(gh_limits_ws_lease_credit(l, ORG, WS_A, CENTS(10)), GH_OK);
    assert_int_equal(admit(l, req_of(WS_A, 10, 10, CENTS(1)), &a), GH_ADMIT_OK);
    assert_int_equal(gh_limits_settle(l, &a.hold, 10, 10, CENTS(1)), GH_OK);
    assert_int_equal(gh_limits_ws_lease_set(l, ORG, WS_A, now, 0, 0, 0), GH_OK);
    assert_int_equal(admit(l, req_of(WS_A, 10, 10, CENTS(1)), &a), GH_ADMIT_WS_MONTHLY_LIMIT);
    gh_limits_set_db_down(l, true);
    assert_int_equal(admit(l, req_of(WS_A, 10, 10, CENTS(1)), &a), GH_ADMIT_LEASE_LAPSED);
    gh_limits_set_db_down(l, false);
    assert_int_equal(admit(l, req_of(WS_B, 10, 10, CENTS(1)), &a), GH_ADMIT_OK);
    assert_int_equal(gh_limits_settle(l, &a.hold, 10, 10, CENTS(1)), GH_OK);
    assert_int_equal(gh_limits_ws_lease_get(l, ORG, WS_B, false, &st), GH_OK);
    assert_int_equal(st.monthly_limit_nusd, 0);
    assert_int_equal(gh_limits_ws_lease_get(l, ORG, "wrkspc_01ZZZZZZZZZZZZZZZZZZZZZZ", false, &st),
                     GH_ENOTFOUND);
    gh_limits_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(credit_cap_is_exact),
        cmocka_unit_test(reservation_is_released_at_settlement),
        cmocka_unit_test(overrun_is_charged_and_counted),
        cmocka_unit_test(credit_cap_holds_under_threads),
        cmocka_unit_test(monthly_limit_and_tier_cap),
        cmocka_unit_test(month_rolls_over_at_midnight_utc),
        cmocka_unit_test(workspace_limit_below_org),
        cmocka_unit_test(requests_per_minute_and_retry_after),
        cmocka_unit_test(input_tokens_per_minute),
        cmocka_unit_test(output_tokens_corrected_at_settlement),
        cmocka_unit_test(workspace_rate_limits_below_org),
        cmocka_unit_test(rate_limit_exact_under_threads),
        cmocka_unit_test(headers_are_formatted),
        cmocka_unit_test(changes_apply_to_the_next_request),
        cmocka_unit_test(workspace_forget),
        cmocka_unit_test(bad_input),
        cmocka_unit_test(many_orgs),
        cmocka_unit_test(record_counts_without_admission),
        cmocka_unit_test(leases_fence_and_ask),
        cmocka_unit_test(leases_withdraw_keeps_reservations),
        cmocka_unit_test(leases_wait_until_dry),
        cmocka_unit_test(ws_leases_admit_within_both),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
