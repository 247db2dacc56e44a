/* Admission micro-benchmark: how many admit + settle pairs the in-memory engine
 * (src/core/limits.c) does per second, on one thread and on two, for one hot organization
 * (every request in one shard, under one mutex) and for 10,000 organizations picked at
 * random. Every request goes the whole way: a workspace with its own monthly limit and
 * buckets, three organization buckets and three workspace buckets per class, the real clock
 * (CLOCK_REALTIME through the vDSO) read on admission and on settlement, the header values
 * computed, the reservation settled for less than the worst case. Limits are set high enough
 * that every admission passes, so the figure is the cost of the full path.
 *
 *   make bench-admission && build/bench/admission [seconds per run, default 1] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/limits.h"
#include "lib/crypto.h"
#include "lib/money.h"

#define ORGS_MANY 10000
#define THREADS_MAX 2
#define CHECK_EVERY 1024

typedef struct {
    gh_limits_t *l;
    int norgs;
    char (*org_ids)[GH_ID_MAX];
    char (*ws_ids)[GH_ID_MAX];
    double seconds;
    uint64_t seed;
    uint64_t pairs;
    uint64_t refused;
    pthread_barrier_t *start;
} worker_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void *run(void *p)
{
    worker_t *w = p;
    gh_admit_t a;
    pthread_barrier_wait(w->start);
    double end = now_s() + w->seconds;
    for (;;) {
        for (int i = 0; i < CHECK_EVERY; i++) {
            int k = w->norgs == 1 ? 0 : (int)(next_rand(&w->seed) % (uint64_t)w->norgs);
            gh_admit_req_t r = {w->org_ids[k], w->ws_ids[k], (i & 1) ? "large" : "small",
                                2000, 1024, 50000};
            if (gh_limits_admit(w->l, &r, &a) != GH_OK || a.decision != GH_ADMIT_OK) {
                w->refused++;
                continue;
            }
            gh_limits_settle(w->l, &a.hold, 1500, 300, 20000);
            w->pairs++;
        }
        if (now_s() >= end)
            break;
    }
    return NULL;
}

static gh_limits_t *setup(int norgs, char (*org_ids)[GH_ID_MAX], char (*ws_ids)[GH_ID_MAX])
{
    static const char *const classes[] = {"small", "large"};
    gh_limits_t *l;
    if (gh_limits_new(&l, classes, 2, gh_limits_clock_real, NULL) != GH_OK)
        exit(1);
    gh_limits_org_cfg_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.monthly_limit_nusd = INT64_C(1000000000) * GH_NUSD_PER_USD;
    for (int c = 0; c < 2; c++)
        cfg.rates[c] = (gh_rate_limits_t){INT64_C(1000000000), GH_BUCKET_LIMIT_MAX,
                                          GH_BUCKET_LIMIT_MAX};
    gh_limits_ws_cfg_t ws;
    memset(&ws, 0, sizeof(ws));
    ws.monthly_limit_nusd = cfg.monthly_limit_nusd / 2;
    for (int c = 0; c < 2; c++)
        ws.rates[c] = (gh_rate_limits_t){INT64_C(500000000), GH_BUCKET_LIMIT_MAX / 2,
                                         GH_BUCKET_LIMIT_MAX / 2};
    for (int i = 0; i < norgs; i++) {
        snprintf(org_ids[i], GH_ID_MAX, "org_01BENCH%015d", i);
        snprintf(ws_ids[i], GH_ID_MAX, "wrkspc_01BENCH%015d", i);
        if (gh_limits_org_set(l, org_ids[i], &cfg) ||
            gh_limits_credit(l, org_ids[i], INT64_C(1000000) * GH_NUSD_PER_USD) ||
            gh_limits_ws_set(l, org_ids[i], ws_ids[i], &ws))
            exit(1);
    }
    return l;
}

static void measure(const char *name, int norgs, int nthreads, double seconds)
{
    static char org_ids[ORGS_MANY][GH_ID_MAX], ws_ids[ORGS_MANY][GH_ID_MAX];
    gh_limits_t *l = setup(norgs, org_ids, ws_ids);
    pthread_t th[THREADS_MAX];
    worker_t w[THREADS_MAX];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)nthreads);
    double t0 = now_s();
    for (int i = 0; i < nthreads; i++) {
        w[i] = (worker_t){l, norgs, org_ids, ws_ids, seconds,
                          UINT64_C(0x9E3779B97F4A7C15) * (uint64_t)(i + 1), 0, 0, &start};
        pthread_create(&th[i], NULL, run, &w[i]);
    }
    uint64_t pairs = 0, refused = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        pairs += w[i].pairs;
        refused += w[i].refused;
    }
    double elapsed = now_s() - t0;
    pthread_barrier_destroy(&start);

    gh_limits_stats_t st;
    gh_limits_stats(l, &st);
    if (st.admitted != st.settled || refused != 0) {
        fprintf(stderr, "inconsistent: admitted %llu settled %llu refused %llu\n",
                (unsigned long long)st.admitted, (unsigned long long)st.settled,
                (unsigned long long)refused);
        exit(1);
    }
    double rate = (double)pairs / elapsed;
    printf("%-14s %7d %14.0f %16.0f %10.0f\n", name, nthreads, rate, rate / nthreads,
           1e9 * nthreads / rate);
    gh_limits_free(l);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? strtod(argv[1], NULL) : 1.0;
    if (!(seconds > 0))
        seconds = 1.0;

    /* The cost of the clock alone, for scale: two reads per pair. */
    volatile int64_t sink = 0;
    double t0 = now_s();
    for (int i = 0; i < 10000000; i++)
        sink = gh_limits_clock_real(NULL);
    (void)sink;
    double clock_ns = (now_s() - t0) / 10000000 * 1e9;

    printf("admit + settle pairs, %.1f s per run, real clock (%.0f ns per read)\n", seconds,
           clock_ns);
    printf("%-14s %7s %14s %16s %10s\n", "scenario", "threads", "pairs/s", "per thread/s",
           "ns/pair");
    measure("one hot org", 1, 1, seconds);
    measure("one hot org", 1, 2, seconds);
    measure("10k orgs", ORGS_MANY, 1, seconds);
    measure("10k orgs", ORGS_MANY, 2, seconds);
    return 0;
}
