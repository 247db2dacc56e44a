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
 *   make build/bench-reports && build/bench-reports [events] [database path] [postgresql://...]
 *
 * Then the same data goes to PostgreSQL (a throwaway server from scripts/pg-test.sh unless a
 * URL is given; the URL's database must be empty, or hold this data already when REUSE=1, and
 * is then kept): the SQLite file's events and rollups are
 * streamed with sqlite3 -csv into psql's COPY (about a minute for 10 million events, instead
 * of the writer's path), the tables analyzed, and the same reports timed through the
 * PostgreSQL backend. Both columns are printed side by side at the end. PG=0 skips
 * PostgreSQL; REUSE=1 keeps an existing SQLite file of the benchmark instead of generating
 * it again (its events count is then read from the file).
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
#include "store/backend.h"
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

enum { QUERIES = 6 };
static const char *const query_names[QUERIES] = {
    "30 days, 1d buckets",
    "30 days, 1d buckets, grouped by workspace",
    "7 days, 1h buckets, grouped by model",
    "1 day, 1m buckets",
    "1 day, 1m buckets, grouped by API key",
    "30 days, 1d, one workspace, by model",
};

/* Runs `q` RUNS times; prints the median and the first (cold) run; returns the median. */
static double time_query(gh_db_t *db, const char *what, const gh_usage_query_t *q)
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
    return ms[RUNS / 2];
}

/* The six reports of organization `org` (index `busiest`), medians in `out`. */
static void time_reports(gh_db_t *db, int busiest, int64_t end_s, double out[QUERIES])
{
    const char *org = org_ids[busiest];
    gh_usage_query_t q = {.org_id = org, .width = GH_ROLLUP_DAY,
                          .start_s = end_s - 30 * 86400, .end_s = end_s};
    out[0] = time_query(db, query_names[0], &q);
    q.by_workspace = true;
    out[1] = time_query(db, query_names[1], &q);
    q = (gh_usage_query_t){.org_id = org, .width = GH_ROLLUP_HOUR,
                           .start_s = end_s - 7 * 86400, .end_s = end_s, .by_model = true};
    out[2] = time_query(db, query_names[2], &q);
    q = (gh_usage_query_t){.org_id = org, .width = GH_ROLLUP_MINUTE,
                           .start_s = end_s - 86400, .end_s = end_s};
    out[3] = time_query(db, query_names[3], &q);
    q.by_key = true;
    out[4] = time_query(db, query_names[4], &q);
    q = (gh_usage_query_t){.org_id = org, .width = GH_ROLLUP_DAY,
                           .start_s = end_s - 30 * 86400, .end_s = end_s, .by_model = true};
    q.workspaces.v[q.workspaces.n++] = ws_ids[busiest * WS_PER_ORG + 1];
    out[5] = time_query(db, query_names[5], &q);
}

/* Runs a shell command; false when it failed. */
static bool shell(const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "bench-reports: failed (%d): %s\n", rc, cmd);
    return rc == 0;
}

/* The first line a command prints, in `out`; false when it printed none. */
static bool shell_line(const char *cmd, char *out, size_t size)
{
    FILE *p = popen(cmd, "r");
    bool ok = p && fgets(out, (int)size, p);
    if (p)
        ok &= pclose(p) == 0;
    if (ok)
        out[strcspn(out, "\n")] = '\0';
    return ok;
}

/* The SQLite file's table `table` into PostgreSQL's, as CSV through a pipe: `select` reads
 * the columns from SQLite in the order `cols` names them in PostgreSQL. */
static bool pg_copy(const char *db_path, const char *url, const char *table, const char *cols,
                    const char *select)
{
    static char cmd[4096];
    int len = snprintf(cmd, sizeof(cmd),
                       "sqlite3 -csv '%s' \"%s\" | psql -q -v ON_ERROR_STOP=1 '%s' -c "
                       "\"COPY %s (%s) FROM STDIN (FORMAT csv)\"",
                       db_path, select, url, table, cols);
    if (len < 0 || (size_t)len >= sizeof(cmd))
        return false;
    double t = now_ms();
    bool ok = shell(cmd);
    printf("  %-20s copied in %.1f s\n", table, (now_ms() - t) / 1000);
    fflush(stdout);
    return ok;
}

#define ROLLUP_COLS_CSV                                                                        \
    "org_id, bucket_start, workspace_id, key_id, model, requests, input_tokens, "              \
    "output_tokens, cache_creation_tokens, cache_read_tokens, input_cost_nusd, "              \
    "output_cost_nusd, cache_creation_cost_nusd, cache_read_cost_nusd"
#define ROLLUP_SELECT(table)                                                                   \
    "SELECT org_id, datetime(bucket_start, 'unixepoch') || '+00', workspace_id, key_id, "     \
    "model, requests, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, " \
    "input_cost_nusd, output_cost_nusd, cache_creation_cost_nusd, cache_read_cost_nusd FROM " \
    table

/* Loads the benchmark's SQLite data into the PostgreSQL database at `url` (migrated and
 * empty), then analyzes it. */
static bool pg_load(const char *db_path, const char *url)
{
    static const char event_cols[] =
        "journal_seq, request_id, created_at, org_id, workspace_id, key_id, model, route, "
        "input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, cost_nusd, "
        "input_cost_nusd, output_cost_nusd, cache_creation_cost_nusd, cache_read_cost_nusd, "
        "status, stream, client_disconnected, latency_us, upstream_us, requested_model, "
        "deployment";
    /* Exact milliseconds: whole seconds through datetime(), the rest as digits. */
    static const char event_select[] =
        "SELECT journal_seq, request_id, datetime(created_at_ms / 1000, 'unixepoch') || '.' || "
        "printf('%03d', created_at_ms % 1000) || '+00', org_id, workspace_id, key_id, model, "
        "route, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, "
        "cost_nusd, input_cost_nusd, output_cost_nusd, cache_creation_cost_nusd, "
        "cache_read_cost_nusd, status, CASE stream WHEN 0 THEN 'f' ELSE 't' END, CASE "
        "client_disconnected WHEN 0 THEN 'f' ELSE 't' END, latency_us, upstream_us, "
        "requested_model, deployment FROM usage_events";
    double t = now_ms();
    bool ok = pg_copy(db_path, url, "usage_events", event_cols, event_select) &&
              pg_copy(db_path, url, "usage_rollup_minute", ROLLUP_COLS_CSV,
                      ROLLUP_SELECT("usage_rollup_minute")) &&
              pg_copy(db_path, url, "usage_rollup_hour", ROLLUP_COLS_CSV,
                      ROLLUP_SELECT("usage_rollup_hour")) &&
              pg_copy(db_path, url, "usage_rollup_day", ROLLUP_COLS_CSV,
                      ROLLUP_SELECT("usage_rollup_day"));
    char cmd[1024];
    /* The hour and day rows are complete, as SQLite keeps them: the roll forward's mark
     * (migration 0017) goes past every minute row copied, as `gatehouse store copy` does. */
    snprintf(cmd, sizeof(cmd),
             "psql -q -v ON_ERROR_STOP=1 '%s' -c \"UPDATE usage_rollup_watermark SET "
             "rolled_before = greatest(rolled_before, (SELECT max(bucket_start) + interval "
             "'1 minute' FROM usage_rollup_minute))\"",
             url);
    ok = ok && shell(cmd);
    snprintf(cmd, sizeof(cmd), "psql -q -v ON_ERROR_STOP=1 '%s' -c 'VACUUM ANALYZE'", url);
    ok = ok && shell(cmd);
    printf("Loaded into PostgreSQL in %.1f s (COPY, then VACUUM ANALYZE)\n",
           (now_ms() - t) / 1000);
    return ok;
}

/* Rows of a PostgreSQL table and the size of the whole database. */
static void pg_sizes(const char *url)
{
    char cmd[1024], line[512];
    snprintf(cmd, sizeof(cmd),
             "psql -qAt '%s' -c \"SELECT pg_size_pretty(pg_database_size(current_database())) "
             "|| '; rows: usage_events ' || (SELECT count(*) FROM usage_events) || ', minute ' "
             "|| (SELECT count(*) FROM usage_rollup_minute) || ', hour ' || (SELECT count(*) "
             "FROM usage_rollup_hour) || ', day ' || (SELECT count(*) FROM usage_rollup_day)\"",
             url);
    if (shell_line(cmd, line, sizeof(line)))
        printf("PostgreSQL database: %s\n", line);
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

/* Fills the SQLite file at `path` with `n` events and their rollups, the writer's way;
 * counts each organization's events in `per_org`. */
static int generate(const char *path, int64_t n, int64_t start_ms, int64_t per_org[ORGS])
{
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
    static zipf_t orgs, keys_in_org, models;
    zipf_init(&orgs, ORGS);
    zipf_init(&keys_in_org, WS_PER_ORG * KEYS_PER_WS);
    zipf_init(&models, MODELS);

    printf("Generating %lld events over %d days: %d organizations, %d workspaces, %d keys, %d "
           "models, transactions of %d\n",
           (long long)n, DAYS, ORGS, ORGS * WS_PER_ORG, ORGS * WS_PER_ORG * KEYS_PER_WS, MODELS,
           BATCH);
    static gh_usage_row_t rows[BATCH];
    static char request_ids[BATCH][32];
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
    printf("Generated %lld events in %.1f s: %.0f events/s (event inserts %.1f s, rollups %.1f "
           "s, the rest generating and pruning)\n",
           (long long)n, gen_s, (double)n / gen_s, insert_ms / 1000, rollup_ms / 1000);
    gh_store_close(store);
    return 0;
}

/* REUSE: the events of each organization in the existing file (one scan). */
static int count_per_org(const char *path, int64_t *n, int64_t per_org[ORGS])
{
    char cmd[1024], line[256];
    snprintf(cmd, sizeof(cmd),
             "sqlite3 -separator ' ' '%s' 'SELECT org_id, count(*) FROM usage_events GROUP BY "
             "org_id'",
             path);
    FILE *p = popen(cmd, "r");
    if (!p)
        return 1;
    *n = 0;
    while (fgets(line, sizeof(line), p)) {
        char *sp = strchr(line, ' ');
        if (!sp)
            continue;
        *sp = '\0';
        for (int o = 0; o < ORGS; o++)
            if (!strcmp(line, org_ids[o]))
                per_org[o] = strtoll(sp + 1, NULL, 10);
        *n += strtoll(sp + 1, NULL, 10);
    }
    return pclose(p) == 0 && *n > 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    int64_t n = argc > 1 ? strtoll(argv[1], NULL, 10) : 10000000;
    const char *path = argc > 2 ? argv[2] : "/tmp/gatehouse-bench-reports.db";
    const char *pg_url = argc > 3 ? argv[3] : NULL;
    bool reuse = getenv("REUSE") && !strcmp(getenv("REUSE"), "1");
    bool with_pg = !(getenv("PG") && !strcmp(getenv("PG"), "0"));
    if (n < BATCH) {
        fprintf(stderr, "usage: %s [events >= %d] [database path] [postgresql://...]\n",
                argv[0], BATCH);
        return 2;
    }
    if (gh_crypto_init())
        return 1;
    for (int o = 0; o < ORGS; o++)
        snprintf(org_ids[o], GH_ID_MAX, "org_01%022d", o);
    for (int w = 0; w < ORGS * WS_PER_ORG; w++)
        snprintf(ws_ids[w], GH_ID_MAX, "wrkspc_01%022d", w);
    for (int k = 0; k < ORGS * WS_PER_ORG * KEYS_PER_WS; k++)
        snprintf(key_ids[k], GH_ID_MAX, "apikey_01%022d", k);
    /* The 35 days end at the start of the current UTC day: "now" for the queries. */
    int64_t end_s = gh_report_floor((int64_t)time(NULL), GH_ROLLUP_DAY);
    int64_t start_ms = (end_s - DAYS * 86400) * 1000;
    int64_t per_org[ORGS] = {0};
    int rc = reuse ? count_per_org(path, &n, per_org) : generate(path, n, start_ms, per_org);
    if (rc)
        return rc;
    if (reuse)
        printf("Reusing %s: %lld events (its days end where they ended when it was made: run "
               "it the same UTC day)\n",
               path, (long long)n);
    int busiest = 0;
    for (int o = 1; o < ORGS; o++)
        if (per_org[o] > per_org[busiest])
            busiest = o;
    char err[256];
    gh_store_t *store;

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
    gh_db_t *db = gh_store_db(store);
    printf("Reports of the busiest organization (%s, %lld events, %.0f%% of all), median of %d "
           "runs:\n",
           org_ids[busiest], (long long)per_org[busiest],
           100.0 * (double)per_org[busiest] / (double)n,
           RUNS);
    printf("SQLite:\n");
    double lite[QUERIES], pg[QUERIES];
    time_reports(db, busiest, end_s, lite);
    gh_store_close(store);
    if (!with_pg)
        return 0;

    /* PostgreSQL: a throwaway server unless a URL was given. */
    char url[512] = "", cmd[1024];
    char pg_dir[64] = "/tmp/gh-bench-reports-pg-XXXXXX";
    bool own_server = !pg_url;
    if (own_server) {
        if (!mkdtemp(pg_dir))
            return 1;
        snprintf(cmd, sizeof(cmd), "scripts/pg-test.sh start '%s' %d", pg_dir, (int)getpid());
        if (!shell_line(cmd, url, sizeof(url))) {
            fprintf(stderr, "bench-reports: %s failed\n", cmd);
            return 1;
        }
        pg_url = url;
    }
    rc = 1;
    store = NULL;
    if (gh_postgres_ops.open(&store, pg_url, err, sizeof(err))) {
        fprintf(stderr, "bench-reports: %s\n", err);
        goto out_stop;
    }
    gh_store_close(store); /* migrated: the tables are there */
    store = NULL;
    char line[64] = "";
    snprintf(cmd, sizeof(cmd), "psql -qAt '%s' -c 'SELECT count(*) FROM usage_events'", pg_url);
    if (!shell_line(cmd, line, sizeof(line)))
        goto out_stop;
    if (reuse && strtoll(line, NULL, 10) == n)
        printf("Reusing the PostgreSQL database's %s events\n", line);
    else if (!pg_load(path, pg_url))
        goto out_stop;
    pg_sizes(pg_url);
    if (gh_postgres_ops.open(&store, pg_url, err, sizeof(err))) {
        fprintf(stderr, "bench-reports: %s\n", err);
        goto out_stop;
    }
    printf("PostgreSQL%s:\n", own_server ? " (a throwaway server from scripts/pg-test.sh)" : "");
    time_reports(gh_store_db(store), busiest, end_s, pg);
    gh_store_close(store);
    printf("\nMedians side by side (target < 100 ms each):\n");
    printf("  %-46s %10s %12s\n", "report of the busiest organization", "SQLite", "PostgreSQL");
    for (int i = 0; i < QUERIES; i++)
        printf("  %-46s %7.2f ms %9.2f ms\n", query_names[i], lite[i], pg[i]);
    rc = 0;
out_stop:
    if (own_server) {
        snprintf(cmd, sizeof(cmd), "scripts/pg-test.sh stop '%s' >/dev/null && rm -rf '%s'",
                 pg_dir, pg_dir);
        rc |= !shell(cmd);
    }
    return rc;
}
