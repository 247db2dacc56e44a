/* The usage writer's commits on both store backends, side by side: events committed per
 * second by the writer itself (core/usage.h) on SQLite and on PostgreSQL.
 *
 * The events are made first, then submitted to a writer opened on the store (its journal in
 * a temporary directory) as fast as its queue takes them, and the clock runs from the first
 * submitted to the last committed. The writer commits them as it does in the server:
 * transactions of up to 2,000 events with their rollups, billing's ledger draws (each
 * organization is granted $10,000 first, so draws take from a lot; on PostgreSQL the node's
 * lease is settled too) and the keys' last use; on PostgreSQL in two lanes (store.h). The
 * PostgreSQL hour and day rollups are rolled forward from the minute rows outside the
 * writer's transactions: one roll over everything at the end, inside the timed span.
 *
 * Events are spread over 50 organizations, 1,000 keys and 5 models (ACTIVE_KEYS fewer keys),
 * so a batch names about 1,650 series and nearly every event is a minute row of its own. By
 * default they are 10 us apart, as in a stream at the 100,000 events a second the writer is
 * measured against: a batch's minute rows are then mostly rows the lane wrote moments before.
 * SPACING_US=7000 spreads them over 23 minutes of event time, so every batch also meets new
 * minute rows and the roll forward has 23 minutes to sum: the hard case.
 *
 *   make build/bench-usage && build/bench-usage [events] [postgresql://...]
 *
 * Without a URL, a throwaway PostgreSQL is started with scripts/pg-test.sh (fsync off, as
 * for the tests: that measures the writer and the server's work, not this machine's disk),
 * with 1 GB of shared buffers as a server of its own would have (the tests' servers run a
 * dozen at once on 32 MB), and stopped at the end. The SQLite database is a file in a
 * temporary directory, with the backend's usual settings (WAL, synchronous=NORMAL). Prints
 * one line per backend; with PHASES set, also the batches and the roll forward's share. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/actor.h"
#include "core/app.h"
#include "core/billing_ledger.h"
#include "core/usage.h"
#include "lib/config.h"
#include "lib/crypto.h"
#include "store/backend.h"
#include "store/store.h"

#define ORGS 50
#define KEYS 1000
#define MODELS 5
#define BATCH GH_USAGE_BATCH_MAX

static const char *const models[MODELS] = {"claude-sonnet-4-5", "claude-haiku-4-5",
                                           "claude-opus-4-1", "gatehouse-mock-small",
                                           "llama-3.1-70b-instruct"};

static uint64_t rng = 0x9E3779B97F4A7C15u;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* How many of the keys send traffic: ACTIVE_KEYS in the environment (1 .. 1,000), all of them
 * unless set. With all 1,000 a batch of 2,000 events names about 1,800 series (key and
 * model), so nearly every event is a rollup row of its own in each of the three tables: the
 * hard case. Fewer active keys are closer to an installation whose traffic comes from a few
 * applications. */
static int active_keys = KEYS;
static int64_t spacing_us = 10; /* between two events' times: SPACING_US */

static void make_event(gh_usage_event_t *e, int64_t seq, int64_t t0_ms)
{
    int k = (int)(next_rand() % (uint64_t)active_keys);
    memset(e, 0, sizeof(*e));
    snprintf(e->request_id, sizeof(e->request_id), "req_bench_%012lld", (long long)seq);
    snprintf(e->org_id, sizeof(e->org_id), "org_%02d", k % ORGS);
    snprintf(e->workspace_id, sizeof(e->workspace_id), "wrkspc_%03d", k % (ORGS * 4));
    snprintf(e->key_id, sizeof(e->key_id), "apikey_%04d", k);
    snprintf(e->model, sizeof(e->model), "%s", models[next_rand() % MODELS]);
    snprintf(e->route, sizeof(e->route), "messages");
    e->created_at_ms = t0_ms + seq * spacing_us / 1000; /* in time order, as journaled */
    e->input_tokens = (int64_t)(next_rand() % 4000);
    e->output_tokens = (int64_t)(next_rand() % 1000);
    e->input_cost_nusd = e->input_tokens * 3000;
    e->output_cost_nusd = e->output_tokens * 15000;
    e->cost_nusd = e->input_cost_nusd + e->output_cost_nusd;
    e->status = 200;
    e->latency_us = 900;
    e->upstream_us = 800;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The organizations, workspaces and keys the events name, so that the keys' last use updates
 * real rows: one account, 50 organizations (each with its Default workspace wrkspc_<org>),
 * 150 more workspaces (wrkspc_<w> in organization w % 50) and the 1,000 keys (apikey_<k> in
 * workspace k % 200, so in organization k % 50, as make_event names them). */
static gh_err_t setup_keys(gh_db_t *db)
{
    gh_account_t acc = {.created_at = 1};
    snprintf(acc.id, sizeof(acc.id), "acc_bench");
    snprintf(acc.email, sizeof(acc.email), "bench@example.com");
    gh_err_t rc = gh_store_begin(db);
    if (!rc)
        rc = gh_store_account_insert(db, &acc);
    char org[24], ws[24];
    for (int o = 0; o < ORGS && !rc; o++) {
        snprintf(org, sizeof(org), "org_%02d", o);
        snprintf(ws, sizeof(ws), "wrkspc_%03d", o);
        rc = gh_store_org_create(db, org, org, acc.id, ws, "#000000", 1);
    }
    for (int w = ORGS; w < ORGS * 4 && !rc; w++) {
        gh_workspace_t rec = {.created_at = 1};
        snprintf(rec.id, sizeof(rec.id), "wrkspc_%03d", w);
        snprintf(rec.org_id, sizeof(rec.org_id), "org_%02d", w % ORGS);
        snprintf(rec.name, sizeof(rec.name), "ws %d", w);
        snprintf(rec.display_color, sizeof(rec.display_color), "#000000");
        rc = gh_store_workspace_insert(db, &rec);
    }
    for (int k = 0; k < KEYS && !rc; k++) {
        gh_key_rec_t key = {.created_at = 1};
        snprintf(key.id, sizeof(key.id), "apikey_%04d", k);
        snprintf(key.kind, sizeof(key.kind), "api");
        snprintf(key.org_id, sizeof(key.org_id), "org_%02d", k % ORGS);
        snprintf(key.workspace_id, sizeof(key.workspace_id), "wrkspc_%03d", k % (ORGS * 4));
        snprintf(key.name, sizeof(key.name), "key %d", k);
        snprintf(key.hint, sizeof(key.hint), "sk-...%04d", k);
        snprintf(key.status, sizeof(key.status), "active");
        snprintf(key.created_by_type, sizeof(key.created_by_type), "user");
        snprintf(key.created_by_id, sizeof(key.created_by_id), "%s", acc.id);
        char hash[32];
        snprintf(hash, sizeof(hash), "hash_%04d", k);
        rc = gh_store_key_insert(db, &key, hash);
    }
    if (!rc)
        return gh_store_commit(db);
    gh_store_rollback(db);
    return rc;
}

/* The application billing runs in (its configuration, store and clock), for the ledger
 * draws of each batch: the writer's hook (core/billing_ledger.h) as the server installs it. */
static gh_config_t cfg;
static gh_app_t app;

/* Credits for every organization ($10,000 each, a staff grant), so that a batch's draws
 * take from a lot, as they do in an installation whose customers have paid. */
static gh_err_t grant_credits(void)
{
    gh_actor_t staff = {.kind = GH_ACTOR_STAFF, .role = GH_ROLE_ADMIN};
    snprintf(staff.id, sizeof(staff.id), "staff_bench");
    snprintf(staff.label, sizeof(staff.label), "bench");
    char org[24], msg[256];
    for (int o = 0; o < ORGS; o++) {
        snprintf(org, sizeof(org), "org_%02d", o);
        snprintf(staff.org_id, sizeof(staff.org_id), "%s", org); /* the audit entry's */
        gh_err_t rc = gh_billing_grant(&app, &staff, org, INT64_C(10000) * 1000000000,
                                       "bench credits", NULL, msg, sizeof(msg));
        if (rc) {
            fprintf(stderr, "bench-usage: cannot grant credits to %s: %s %s\n", org,
                    gh_err_name(rc), msg);
            return rc;
        }
    }
    return GH_OK;
}

/* Commits `n` events through the usage writer (core/usage.h) on `store`, its journal in
 * `dir`; the seconds from the first event submitted to the last committed and the roll
 * forward done, or -1. The events are made before the clock starts. */
static double run(gh_store_t *store, int64_t n, const char *dir)
{
    gh_db_t *db = gh_store_db(store);
    gh_usage_event_t *ev = malloc(sizeof(*ev) * (size_t)n);
    if (!db || !ev)
        return -1;
    /* The events start two minutes ahead, after the roll forward's mark (a fresh database
     * has it at the minute after its creation): a writer's events are new, not late ones. */
    int64_t t0_ms = ((int64_t)time(NULL) / 60 * 60 + 120) * 1000;
    for (int64_t i = 0; i < n; i++)
        make_event(&ev[i], i + 1, t0_ms);
    gh_err_t setup = setup_keys(db);
    if (setup) {
        fprintf(stderr, "bench-usage: cannot create the keys: %s\n", gh_err_name(setup));
        free(ev);
        return -1;
    }
    app.store = store;
    cfg.store_postgres = store->ops == &gh_postgres_ops;
    if (grant_credits()) {
        free(ev);
        return -1;
    }
    gh_usage_hook_t hook;
    gh_billing_usage_hook(&app, &hook);
    char journal[128], err[256];
    snprintf(journal, sizeof(journal), "%s/usage-%s.journal", dir,
             cfg.store_postgres ? "postgresql" : "sqlite");
    gh_usage_t *u = NULL;
    if (gh_usage_open(&u, store, journal, &hook, err, sizeof(err))) {
        fprintf(stderr, "bench-usage: %s\n", err);
        free(ev);
        return -1;
    }
    /* The clock starts on a quiet disk: what earlier runs (the other backend's) left in the
     * page cache is written back now, not during this run. */
    sync();
    double t = now_s();
    for (int64_t i = 0; i < n; i++) {
        /* The writer's queue holds 65,536 events: past that it refuses (as it refuses a
         * request), and the submitter waits a millisecond for room. */
        while (gh_usage_submit(u, &ev[i]) == GH_EUNAVAIL)
            nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    }
    gh_usage_flush(u);
    /* The roll forward's share (PostgreSQL: the hour and day rollups are summed from the
     * minute rows outside the writer's transactions): everything written, inside the timed
     * span. The writer rolls every two minutes instead; at the end of a run it comes to the
     * same rows. */
    double tr = now_s();
    int64_t last_s = (t0_ms + n * spacing_us / 1000) / 1000;
    gh_err_t rc = gh_store_rollups_roll(db, last_s / 60 * 60 + 60, NULL);
    double busy = now_s() - t;
    gh_usage_stats_t st;
    gh_usage_stats(u, &st);
    gh_usage_close(u);
    free(ev);
    if (getenv("PHASES"))
        fprintf(stderr, "%llu batches, %.0f events each; roll forward %.1f ms\n",
                (unsigned long long)st.batches, (double)st.committed / (double)st.batches,
                (now_s() - tr) * 1e3);
    if (rc || st.committed != (uint64_t)n || st.commit_failures) {
        fprintf(stderr,
                "bench-usage: %llu of %lld events committed, %llu failed commits, the roll "
                "forward %s\n",
                (unsigned long long)st.committed, (long long)n,
                (unsigned long long)st.commit_failures, gh_err_name(rc));
        return -1;
    }
    return busy;
}

static void report(const char *backend, int64_t n, double s)
{
    if (s <= 0)
        printf("%-12s %10lld events   failed\n", backend, (long long)n);
    else
        printf("%-12s %10lld events  %7.2f s  %9.0f events/s committed\n", backend,
               (long long)n, s, (double)n / s);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int64_t n = argc > 1 ? strtoll(argv[1], NULL, 10) : 200000;
    if (getenv("SPACING_US")) {
        spacing_us = strtoll(getenv("SPACING_US"), NULL, 10);
        if (spacing_us < 1 || spacing_us > 60000000) {
            fprintf(stderr, "bench-usage: SPACING_US must be 1 .. 60000000\n");
            return 2;
        }
    }
    const char *ak = getenv("ACTIVE_KEYS");
    if (ak) {
        long v = strtol(ak, NULL, 10);
        if (v < 1 || v > KEYS) {
            fprintf(stderr, "bench-usage: ACTIVE_KEYS must be 1 .. %d\n", KEYS);
            return 2;
        }
        active_keys = (int)v;
    }
    gh_config_defaults(&cfg);
    snprintf(cfg.cluster_node_id, sizeof(cfg.cluster_node_id), "local");
    app.cfg = &cfg;
    app.now = gh_app_clock;
    const char *pg_url = argc > 2 ? argv[2] : NULL;
    if (n <= 0 || gh_crypto_init()) {
        fprintf(stderr, "usage: bench-usage [events] [postgresql://...]\n");
        return 2;
    }
    char dir[64] = "/tmp/gh-bench-usage-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char path[128], err[512], url[512] = "", cmd[512];
    int status = 0;

    snprintf(path, sizeof(path), "sqlite:%s/gatehouse.db", dir);
    gh_store_t *store = NULL;
    if (gh_store_open(&store, path, err, sizeof(err))) {
        fprintf(stderr, "bench-usage: %s\n", err);
        return 1;
    }
    printf("usage writer, transactions of %d events with their rollups and ledger draws; %d "
           "active keys, events %lld us apart\n",
           BATCH, active_keys, (long long)spacing_us);
    double s = run(store, n, dir);
    report("sqlite", n, s);
    status |= s <= 0;
    gh_store_close(store);

    bool own_server = !pg_url;
    /* A directory of its own: pg-test.sh hands it to the server's unprivileged user. */
    char pg_dir[64] = "/tmp/gh-bench-usage-pg-XXXXXX";
    if (own_server && !mkdtemp(pg_dir))
        return 1;
    if (own_server) {
        snprintf(cmd, sizeof(cmd), "PG_TEST_SHARED_BUFFERS=1GB scripts/pg-test.sh start '%s' %d",
                 pg_dir, (int)getpid());
        FILE *p = popen(cmd, "r");
        if (!p || !fgets(url, sizeof(url), p)) {
            fprintf(stderr, "bench-usage: %s failed\n", cmd);
            if (p)
                pclose(p);
            snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir, pg_dir);
            return system(cmd) ? 1 : 1;
        }
        pclose(p);
        url[strcspn(url, "\n")] = '\0';
        pg_url = url;
    }
    store = NULL;
    if (gh_postgres_ops.open(&store, pg_url, err, sizeof(err))) {
        fprintf(stderr, "bench-usage: %s\n", err);
        status = 1;
    } else {
        s = run(store, n, dir);
        report(own_server ? "postgresql*" : "postgresql", n, s);
        status |= s <= 0;
        gh_store_close(store);
    }
    if (own_server) {
        printf("* a throwaway server started by scripts/pg-test.sh (fsync off, 1 GB of shared "
               "buffers)\n");
        snprintf(cmd, sizeof(cmd), "scripts/pg-test.sh stop '%s' >/dev/null", pg_dir);
        status |= system(cmd) != 0;
    }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'%s%s%s", dir, own_server ? " '" : "",
             own_server ? pg_dir : "", own_server ? "'" : "");
    status |= system(cmd) != 0;
    return status;
}
