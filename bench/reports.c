/* Usage reports at scale: builds a fresh database of N usage events (10 million by default)
 * spread over 35 days, 50 organizations, 200 workspaces, 1,000 API keys and 5 models, written
 * the way the usage writer writes them (transactions of 2,000 events, each with its rollups
 * through gh_store_rollups_add, minute rollups pruned past their retention as time goes by),
 * then times the report queries of the busiest organization:
 *
 *   a 30-day report in day buckets,
 *   a 7-day report in hour buckets grouped by model,
 *   a 1-day report in minute buckets,
 *
 * each the median of several runs of gh_store_usage_report (the store query the API runs),
 * and prints those, the generation throughput and the size of each table.
 *
 *   make build/bench-reports && build/bench-reports [events] [database path]
 *
 * Activity is skewed the way real traffic is: organization i gets a share proportional to
 * 1/(i+1) (the busiest about a fifth of everything), keys and models within it likewise, and
 * every day has a daily rhythm (busier in the afternoon, UTC). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/reports.h"
#include "lib/crypto.h"
#include "store/store.h"

#define ORGS 50
#define WS_PER_ORG 4
#define KEYS_PER_WS 5
#define MODELS 5
#define DAYS 35
#define BATCH 2000
#define RUNS 9

static const char *const model_names[MODELS] = {"claude-sonnet-4-5", "claude-haiku-4-5",
                                                "claude-opus-4-1", "gatehouse-mock-small",
                                                "llama-3.1-70b-instruct"};
/* nano-USD per million tokens: input, output, cache write, cache read. */
static const int64_t prices[MODELS][4] = {
    {3000000000, 15000000000, 3750000000, 300000000},
    {1000000000, 5000000000, 1250000000, 100000000},
    {15000000000, 75000000000, 18750000000, 1500000000},
    {1000000000, 5000000000, 1250000000, 100000000},
    {600000000, 800000000, 0, 0},
};

static char org_ids[ORGS][GH_ID_MAX];
static char ws_ids[ORGS * WS_PER_ORG][GH_ID_MAX];
static char key_ids[ORGS * WS_PER_ORG * KEYS_PER_WS][GH_ID_MAX];

static uint64_t rng = 0x9E3779B97F4A7C15u;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double uniform(void)
{
    return (double)(next_rand() >> 11) / 9007199254740992.0;
}

/* Cumulative weights 1/(i+1) for picking an index in [0, n). */
typedef struct {
    double cum[ORGS * WS_PER_ORG * KEYS_PER_WS];
    int n;
} zipf_t;

static void zipf_init(zipf_t *z, int n)
{
    double total = 0;
    z->n = n;
    for (int i = 0; i < n; i++)
        z->cum[i] = (total += 1.0 / (i + 1));
    for (int i = 0; i < n; i++)
        z->cum[i] /= total;
}

static int zipf_pick(const zipf_t *z)
{
    double u = uniform();
    int lo = 0, hi = z->n - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (z->cum[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int64_t price(int64_t tokens, int64_t per_million)
{
    return (int64_t)(((__int128)tokens * per_million + 500000) / 1000000);
}

/* The time of event i of n: 35 days, with a daily rhythm (the density over a day follows
 * 1 + 0.6 sin, busiest around 15:00 UTC), in increasing order. */
static int64_t event_time_ms(int64_t start_ms, int64_t i, int64_t n)
{
    double x = (double)i / (double)n * DAYS; /* days, uniform */
    double day = floor(x), f = x - day;
    /* Invert F(t) = t - 0.6 (cos(2 pi t - phase) - cos(-phase)) / (2 pi) by bisection. */
    const double phase = 2 * M_PI * 0.375, a = 0.6 / (2 * M_PI);
    double lo = 0, hi = 1;
    for (int k = 0; k < 40; k++) {
        double mid = (lo + hi) / 2;
        double F = mid - a * (cos(2 * M_PI * mid - phase) - cos(-phase));
        if (F < f)
            lo = mid;
        else
            hi = mid;
    }
    return start_ms + (int64_t)((day + lo) * 86400000.0);
}

typedef struct {
    int64_t groups, requests, tokens;
} acc_t;

static void on_total(void *ctx, const gh_usage_total_t *t)
{
    acc_t *a = ctx;
    a->groups++;
    a->requests += t->requests;
    a->tokens += t->input_tokens + t->output_tokens + t->cache_creation_tokens +
                 t->cache_read_tokens;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Runs `q` RUNS times; prints the median and the first (cold) run. */
static void time_query(gh_db_t *db, const char *what, const gh_usage_query_t *q)
{
    double ms[RUNS];
    acc_t a = {0};
    for (int r = 0; r < RUNS; r++) {
        a = (acc_t){0};
        double t0 = now_ms();
        if (gh_store_usage_report(db, q, on_total, &a)) {
            fprintf(stderr, "report failed\n");
            exit(1);
        }
        ms[r] = now_ms() - t0;
    }
    double first = ms[0];
    qsort(ms, RUNS, sizeof(ms[0]), cmp_double);
    printf("  %-46s %8.2f ms median (first run %.2f ms, max %.2f ms): %lld groups, %lld "
           "requests\n",
           what, ms[RUNS / 2], first, ms[RUNS - 1], (long long)a.groups, (long long)a.requests);
}

static int64_t count(const char *db_path, const char *table)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "sqlite3 '%s' 'SELECT count(*) FROM %s'", db_path, table);
    FILE *p = popen(cmd, "r");
    long long n = -1;
    if (p) {
        if (fscanf(p, "%lld", &n) != 1)
            n = -1;
        pclose(p);
    }
    return n;
}

int main(int argc, char **argv)
{
    int64_t n = argc > 1 ? strtoll(argv[1], NULL, 10) : 10000000;
    const char *path = argc > 2 ? argv[2] : "/tmp/gatehouse-bench-reports.db";
    if (n < BATCH) {
        fprintf(stderr, "usage: %s [events >= %d] [database path]\n", argv[0], BATCH);
        return 2;
    }
    if (gh_crypto_init())
        return 1;
    char wal[1024], shm[1024], err[256];
    snprintf(wal, sizeof(wal), "%s-wal", path);
    snprintf(shm, sizeof(shm), "%s-shm", path);
    unlink(path);
    unlink(wal);
    unlink(shm);
    gh_store_t *store;
    if (gh_store_open(&store, path, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    gh_db_t *db = gh_store_db(store);

    for (int o = 0; o < ORGS; o++)
        snprintf(org_ids[o], GH_ID_MAX, "org_01%022d", o);
    for (int w = 0; w < ORGS * WS_PER_ORG; w++)
        snprintf(ws_ids[w], GH_ID_MAX, "wrkspc_01%022d", w);
    for (int k = 0; k < ORGS * WS_PER_ORG * KEYS_PER_WS; k++)
        snprintf(key_ids[k], GH_ID_MAX, "apikey_01%022d", k);
    static zipf_t orgs, keys_in_org, models;
    zipf_init(&orgs, ORGS);
    zipf_init(&keys_in_org, WS_PER_ORG * KEYS_PER_WS);
    zipf_init(&models, MODELS);

    /* The 35 days end at the start of the current UTC day: "now" for the queries. */
    int64_t end_s = gh_report_floor((int64_t)time(NULL), GH_ROLLUP_DAY);
    int64_t start_ms = (end_s - DAYS * 86400) * 1000;

    printf("Generating %lld events over %d days: %d organizations, %d workspaces, %d keys, %d "
           "models, transactions of %d\n",
           (long long)n, DAYS, ORGS, ORGS * WS_PER_ORG, ORGS * WS_PER_ORG * KEYS_PER_WS, MODELS,
           BATCH);
    static gh_usage_row_t rows[BATCH];
    static char request_ids[BATCH][32];
    int64_t per_org[ORGS] = {0};
    double t0 = now_ms(), insert_ms = 0, rollup_ms = 0;
    int64_t last_prune_day = -1;
    for (int64_t i = 0; i < n; i += BATCH) {
        size_t m = (size_t)(n - i < BATCH ? n - i : BATCH);
        for (size_t j = 0; j < m; j++) {
            int64_t seq = i + (int64_t)j + 1;
            int o = zipf_pick(&orgs);
            int k = o * WS_PER_ORG * KEYS_PER_WS + zipf_pick(&keys_in_org);
            int mo = zipf_pick(&models);
            int64_t in = 50 + (int64_t)(next_rand() % 4000);
            int64_t out = 10 + (int64_t)(next_rand() % 800);
            int64_t cw = next_rand() % 10 == 0 ? (int64_t)(next_rand() % 2000) : 0;
            int64_t cr = next_rand() % 4 == 0 ? (int64_t)(next_rand() % 8000) : 0;
            snprintf(request_ids[j], sizeof(request_ids[j]), "req_01bench%016lld", (long long)seq);
            gh_usage_row_t *r = &rows[j];
            *r = (gh_usage_row_t){
                .journal_seq = seq,
                .request_id = request_ids[j],
                .org_id = org_ids[o],
                .workspace_id = ws_ids[k / KEYS_PER_WS],
                .key_id = key_ids[k],
                .model = model_names[mo],
                .route = "messages",
                .created_at_ms = event_time_ms(start_ms, i + (int64_t)j, n),
                .input_tokens = in,
                .output_tokens = out,
                .cache_creation_tokens = cw,
                .cache_read_tokens = cr,
                .input_cost_nusd = price(in, prices[mo][0]),
                .output_cost_nusd = price(out, prices[mo][1]),
                .cache_creation_cost_nusd = price(cw, prices[mo][2]),
                .cache_read_cost_nusd = price(cr, prices[mo][3]),
                .status = 200,
                .stream = next_rand() % 2,
                .latency_us = 200000 + (int64_t)(next_rand() % 3000000),
                .upstream_us = 190000,
            };
            r->cost_nusd = r->input_cost_nusd + r->output_cost_nusd + r->cache_creation_cost_nusd +
                           r->cache_read_cost_nusd;
            per_org[o]++;
        }
        double a = now_ms();
        if (gh_store_begin(db))
            return 1;
        for (size_t j = 0; j < m; j++)
            if (gh_store_usage_insert(db, &rows[j]))
                return 1;
        double b = now_ms();
        if (gh_store_rollups_add(db, rows, m) || gh_store_commit(db))
            return 1;
        double c = now_ms();
        insert_ms += b - a;
        rollup_ms += c - b;
        /* The writer prunes minute rollups once an hour; here once a simulated day. */
        int64_t day = rows[m - 1].created_at_ms / 86400000;
        if (day != last_prune_day) {
            last_prune_day = day;
            if (gh_store_rollups_prune(db, rows[m - 1].created_at_ms / 1000 / 60 * 60 -
                                               GH_USAGE_MINUTE_RETENTION_S,
                                       NULL))
                return 1;
        }
        if ((i / BATCH) % 500 == 499) {
            printf("  %lld events, %.0f events/s\n", (long long)(i + (int64_t)m),
                   (double)(i + (int64_t)m) / ((now_ms() - t0) / 1000));
            fflush(stdout);
        }
    }
    double gen_s = (now_ms() - t0) / 1000;
    int busiest = 0;
    for (int o = 1; o < ORGS; o++)
        if (per_org[o] > per_org[busiest])
            busiest = o;
    printf("Generated %lld events in %.1f s: %.0f events/s (event inserts %.1f s, rollups %.1f "
           "s, the rest generating and pruning)\n",
           (long long)n, gen_s, (double)n / gen_s, insert_ms / 1000, rollup_ms / 1000);
    gh_store_close(store);

    struct stat st;
    stat(path, &st);
    printf("Database %s: %.0f MiB; rows: usage_events %lld, minute %lld, hour %lld, day %lld\n",
           path, (double)st.st_size / 1048576.0, (long long)count(path, "usage_events"),
           (long long)count(path, "usage_rollup_minute"),
           (long long)count(path, "usage_rollup_hour"), (long long)count(path, "usage_rollup_day"));

    /* A fresh connection, as a control-plane thread would have. */
    if (gh_store_open(&store, path, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    db = gh_store_db(store);
    printf("Reports of the busiest organization (%s, %lld events, %.0f%% of all), median of %d "
           "runs:\n",
           org_ids[busiest], (long long)per_org[busiest],
           100.0 * (double)per_org[busiest] / (double)n,
           RUNS);
    gh_usage_query_t q = {.org_id = org_ids[busiest], .width = GH_ROLLUP_DAY,
                          .start_s = end_s - 30 * 86400, .end_s = end_s};
    time_query(db, "30 days, 1d buckets", &q);
    q.by_workspace = true;
    time_query(db, "30 days, 1d buckets, grouped by workspace", &q);
    q = (gh_usage_query_t){.org_id = org_ids[busiest], .width = GH_ROLLUP_HOUR,
                           .start_s = end_s - 7 * 86400, .end_s = end_s, .by_model = true};
    time_query(db, "7 days, 1h buckets, grouped by model", &q);
    q = (gh_usage_query_t){.org_id = org_ids[busiest], .width = GH_ROLLUP_MINUTE,
                           .start_s = end_s - 86400, .end_s = end_s};
    time_query(db, "1 day, 1m buckets", &q);
    q.by_key = true;
    time_query(db, "1 day, 1m buckets, grouped by API key", &q);
    q = (gh_usage_query_t){.org_id = org_ids[busiest], .width = GH_ROLLUP_DAY,
                           .start_s = end_s - 30 * 86400, .end_s = end_s, .by_model = true};
    q.workspaces.v[q.workspaces.n++] = ws_ids[busiest * WS_PER_ORG + 1];
    time_query(db, "30 days, 1d, one workspace, by model", &q);
    gh_store_close(store);
    return 0;
}
