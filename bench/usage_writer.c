/* The usage writer's commits on both store backends, side by side: events committed per
 * second when the writer's transactions are replayed against SQLite and PostgreSQL.
 *
 * Each transaction is what the writer commits (src/core/usage.c, commit_batch): 2,000 events
 * through gh_store_usage_insert_batch (on PostgreSQL a COPY, since none is stored yet), then
 * their minute, hour and day rollups through gh_store_rollups_add (one upsert per table on
 * PostgreSQL), then the keys' last use through gh_store_keys_touch (each distinct key once,
 * and only those due: at most once a minute of event time per key, as the writer does; the
 * keys exist), then COMMIT. On PostgreSQL the writer's transaction upserts only the minute
 * rollups; the hour and day rollups are rolled forward from them (gh_store_rollups_roll) in a
 * transaction of its own, which the figure includes: one roll over everything at the end of
 * the run, inside the timed span. Billing's ledger draws are in the figure, as the writer
 * makes them (core/billing_ledger.h, gh_billing_charge_usage, right after the events): for
 * each organization of the batch, its usage drawn from its credits (every organization is
 * granted $10,000 at the start), on PostgreSQL the settlement of the node's lease, and the
 * check of its spend notifications (it has none). Events are spread
 * over 50 organizations, 1,000 keys and 5 models, 7 ms apart (a batch spans 14 s), starting
 * two minutes from now, so the minute rollups of a batch are mostly upserts onto rows already
 * there, as in a busy installation.
 *
 *   make build/bench-usage && build/bench-usage [events] [postgresql://...]
 *
 * Without a URL, a throwaway PostgreSQL is started with scripts/pg-test.sh (fsync off, as
 * for the tests: that measures the writer and the server's work, not this machine's disk) and
 * stopped at the end; the SQLite database is a file in a temporary directory, with the
 * backend's usual settings (WAL, synchronous=NORMAL). Prints one line per backend; with
 * PHASES set in the environment, also the milliseconds of each transaction's steps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/actor.h"
#include "core/app.h"
#include "core/billing_ledger.h"
#include "core/key_touch.h"
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

typedef struct {
    gh_usage_row_t row;
    char request_id[40], org[24], ws[24], key[24];
} event_t;

/* How many of the keys send traffic: ACTIVE_KEYS in the environment (1 .. 1,000), all of them
 * unless set. With all 1,000 a batch of 2,000 events names about 1,800 series (key and
 * model), so nearly every event is a rollup row of its own in each of the three tables: the
 * hard case. Fewer active keys are closer to an installation whose traffic comes from a few
 * applications. */
static int active_keys = KEYS;

static void make_event(event_t *e, int64_t seq, int64_t t0_ms)
{
    int k = (int)(next_rand() % (uint64_t)active_keys);
    snprintf(e->request_id, sizeof(e->request_id), "req_bench_%012lld", (long long)seq);
    snprintf(e->org, sizeof(e->org), "org_%02d", k % ORGS);
    snprintf(e->ws, sizeof(e->ws), "wrkspc_%03d", k % (ORGS * 4));
    snprintf(e->key, sizeof(e->key), "apikey_%04d", k);
    int64_t in = (int64_t)(next_rand() % 4000), out = (int64_t)(next_rand() % 1000);
    e->row = (gh_usage_row_t){
        .journal_seq = seq,
        .request_id = e->request_id,
        .org_id = e->org,
        .workspace_id = e->ws,
        .key_id = e->key,
        .model = models[next_rand() % MODELS],
        .route = "messages",
        .created_at_ms = t0_ms + seq * 7, /* in time order, as journaled */
        .input_tokens = in,
        .output_tokens = out,
        .input_cost_nusd = in * 3000,
        .output_cost_nusd = out * 15000,
        .status = 200,
        .latency_us = 900,
        .upstream_us = 800,
    };
    e->row.cost_nusd = e->row.input_cost_nusd + e->row.output_cost_nusd;
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

/* The batch's charges, one per organization (as core/usage.c sums them: the costs of its
 * events and the journal sequences they span), drawn from the ledger by billing's hook. */
static gh_err_t charge(gh_db_t *db, const gh_usage_row_t *rows, size_t n)
{
    gh_usage_charge_t c[ORGS];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < k && strcmp(c[j].org_id, rows[i].org_id))
            j++;
        if (j == k) {
            snprintf(c[k].org_id, sizeof(c[k].org_id), "%s", rows[i].org_id);
            c[k].cost_nusd = 0;
            c[k++].first_seq = rows[i].journal_seq;
        }
        c[j].cost_nusd += rows[i].cost_nusd;
        c[j].last_seq = rows[i].journal_seq;
    }
    return gh_billing_charge_usage(&app, db, c, k);
}

/* The keys' last use, as the writer records it (src/core/usage.c, touch_keys): once per
 * distinct key of the batch, at its latest event, and only when due (core/key_touch.h: at
 * most once a minute of event time per key), in one gh_store_keys_touch. The times written
 * are remembered in `kt` once the batch committed (`ids`, `at_s`, `*k` hold them). */
static gh_err_t touch_keys(gh_db_t *db, const gh_key_touch_t *kt, const gh_usage_row_t *rows,
                           size_t n, const char **ids, int64_t *at_s, size_t *k)
{
    static bool seen[KEYS];
    memset(seen, 0, sizeof(seen));
    *k = 0;
    for (size_t i = n; i-- > 0;) {
        long key = strtol(rows[i].key_id + strlen("apikey_"), NULL, 10);
        if (key < 0 || key >= KEYS || seen[key])
            continue;
        seen[key] = true;
        int64_t s = rows[i].created_at_ms / 1000;
        if (!gh_key_touch_due(kt, rows[i].key_id, s))
            continue;
        ids[*k] = rows[i].key_id;
        at_s[(*k)++] = s;
    }
    return gh_store_keys_touch(db, ids, at_s, *k);
}

/* Commits `n` events in the writer's transactions; the seconds it took, or -1. */
static double run(gh_store_t *store, int64_t n)
{
    gh_db_t *db = gh_store_db(store);
    event_t *ev = malloc(sizeof(*ev) * BATCH);
    gh_usage_row_t *rows = malloc(sizeof(*rows) * BATCH);
    bool *stored = malloc(BATCH);
    gh_key_touch_t *kt = malloc(sizeof(*kt));
    static const char *ids[KEYS];
    static int64_t at_s[KEYS];
    if (!db || !ev || !rows || !stored || !kt)
        return -1;
    gh_key_touch_init(kt);
    /* The events start two minutes ahead, after the roll forward's mark (a fresh database
     * has it at the minute after its creation): a writer's events are new, not late ones. */
    int64_t t0_ms = ((int64_t)time(NULL) / 60 * 60 + 120) * 1000;
    gh_err_t setup = setup_keys(db);
    if (setup) {
        fprintf(stderr, "bench-usage: cannot create the keys: %s\n", gh_err_name(setup));
        return -1;
    }
    app.store = store;
    cfg.store_postgres = store->ops == &gh_postgres_ops;
    if (grant_credits())
        return -1;
    double busy = 0; /* time spent in the store only, not in making events */
    for (int64_t done = 0; done < n;) {
        size_t b = n - done < BATCH ? (size_t)(n - done) : BATCH;
        for (size_t i = 0; i < b; i++) {
            make_event(&ev[i], done + (int64_t)i + 1, t0_ms);
            rows[i] = ev[i].row;
        }
        size_t touched = 0;
        double t = now_s();
        gh_err_t rc = gh_store_begin(db);
        double t1 = now_s();
        if (!rc)
            rc = gh_store_usage_insert_batch(db, rows, b, stored);
        double t15 = now_s();
        if (!rc)
            rc = charge(db, rows, b);
        double t2 = now_s();
        if (!rc)
            rc = gh_store_rollups_add(db, rows, b);
        double t3 = now_s();
        if (!rc)
            rc = touch_keys(db, kt, rows, b, ids, at_s, &touched);
        double t4 = now_s();
        if (!rc)
            rc = gh_store_commit(db);
        for (size_t i = 0; i < touched && !rc; i++)
            gh_key_touch_written(kt, ids[i], at_s[i]);
        if (getenv("PHASES"))
            fprintf(stderr, "begin %.1f ins %.1f bill %.1f roll %.1f keys %.1f commit %.1f ms\n",
                    (t1 - t) * 1e3, (t15 - t1) * 1e3, (t2 - t15) * 1e3, (t3 - t2) * 1e3,
                    (t4 - t3) * 1e3, (now_s() - t4) * 1e3);
        busy += now_s() - t;
        if (rc) {
            gh_store_rollback(db);
            fprintf(stderr, "bench-usage: a batch failed: %s\n", gh_err_name(rc));
            return -1;
        }
        done += (int64_t)b;
    }
    /* The roll forward's share (PostgreSQL: the hour and day rollups are summed from the
     * minute rows outside the writer's transactions): everything written, inside the timed
     * span. The writer rolls every two minutes instead; at the end of a run it comes to the
     * same rows. */
    double t = now_s();
    int64_t last_s = (t0_ms + n * 7) / 1000;
    gh_err_t rc = gh_store_rollups_roll(db, last_s / 60 * 60 + 60, NULL);
    busy += now_s() - t;
    if (getenv("PHASES"))
        fprintf(stderr, "roll forward %.1f ms\n", (now_s() - t) * 1e3);
    if (rc) {
        fprintf(stderr, "bench-usage: the roll forward failed: %s\n", gh_err_name(rc));
        return -1;
    }
    free(ev);
    free(rows);
    free(stored);
    free(kt);
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
    printf("usage writer, transactions of %d events with their rollups; %d active keys\n", BATCH,
           active_keys);
    double s = run(store, n);
    report("sqlite", n, s);
    status |= s <= 0;
    gh_store_close(store);

    bool own_server = !pg_url;
    /* A directory of its own: pg-test.sh hands it to the server's unprivileged user. */
    char pg_dir[64] = "/tmp/gh-bench-usage-pg-XXXXXX";
    if (own_server && !mkdtemp(pg_dir))
        return 1;
    if (own_server) {
        snprintf(cmd, sizeof(cmd), "scripts/pg-test.sh start '%s' %d", pg_dir, (int)getpid());
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
        s = run(store, n);
        report(own_server ? "postgresql*" : "postgresql", n, s);
        status |= s <= 0;
        gh_store_close(store);
    }
    if (own_server) {
        printf("* a throwaway server started by scripts/pg-test.sh (fsync off)\n");
        snprintf(cmd, sizeof(cmd), "scripts/pg-test.sh stop '%s' >/dev/null", pg_dir);
        status |= system(cmd) != 0;
    }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'%s%s%s", dir, own_server ? " '" : "",
             own_server ? pg_dir : "", own_server ? "'" : "");
    status |= system(cmd) != 0;
    return status;
}
