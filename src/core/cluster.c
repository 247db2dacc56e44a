#include "core/cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/admission.h"
#include "core/app.h"
#include "core/billing.h"
#include "core/state.h"
#include "lib/crypto.h"
#include "lib/log.h"
#include "store/store.h"

#define NODE_ID_FILE "node_id"
#define NODE_ID_MAX 64

/* Reads `path` into `id` (NODE_ID_MAX + 1 bytes), a trailing newline removed. GH_ENOTFOUND
 * when there is no file, GH_EINVAL when it does not hold a valid id, GH_EIO otherwise. */
static gh_err_t read_id(const char *path, char *id)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? GH_ENOTFOUND : GH_EIO;
    char buf[NODE_ID_MAX + 8];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n < 0)
        return GH_EIO;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    buf[n] = '\0';
    if (!gh_config_node_id_valid(buf))
        return GH_EINVAL;
    memcpy(id, buf, (size_t)n + 1);
    return GH_OK;
}

/* Writes `id` to `path` (mode 0600) through a temporary file renamed over it, so a crash
 * leaves either no file or the whole id. */
static gh_err_t write_id(const char *path, const char *id)
{
    char tmp[GH_CONFIG_PATH + 32];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return GH_EIO;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return GH_EIO;
    char line[NODE_ID_MAX + 2];
    int len = snprintf(line, sizeof(line), "%s\n", id);
    bool ok = len > 0 && write(fd, line, (size_t)len) == (ssize_t)len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return GH_EIO;
    }
    return GH_OK;
}

static bool exists(const char *dir, const char *name)
{
    char path[GH_CONFIG_PATH + 32];
    struct stat st;
    int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
    return n > 0 && (size_t)n < sizeof(path) && stat(path, &st) == 0;
}

gh_err_t gh_cluster_node_id_resolve(gh_config_t *cfg, char *err, size_t err_size)
{
    char path[GH_CONFIG_PATH + 16], id[NODE_ID_MAX + 1] = "";
    int n = snprintf(path, sizeof(path), "%s/" NODE_ID_FILE, cfg->data_dir);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        snprintf(err, err_size, "data_dir is too long");
        return GH_EINVAL;
    }
    const char *configured = cfg->cluster_node_id;
    gh_err_t rc = read_id(path, id);
    if (rc == GH_EINVAL) {
        snprintf(err, err_size, "%s does not hold a node id (1 to 64 letters, digits, - or _); "
                                "restore it, or remove it if this data directory never served",
                 path);
        return rc;
    }
    if (rc == GH_EIO) {
        snprintf(err, err_size, "cannot read %s: %s", path, strerror(errno));
        return rc;
    }
    if (rc == GH_OK) {
        /* The file wins: the journal's events are keyed by it. */
        if (configured[0] && strcmp(configured, id)) {
            snprintf(err, err_size, "[cluster] node_id is %s but this data directory belongs to "
                                    "node %s (%s): its usage journal is keyed by that id. Use "
                                    "node_id = %s, or give node %s its own empty data_dir",
                     configured, id, path, id, configured);
            return GH_EINVAL;
        }
        memcpy(cfg->cluster_node_id, id, strlen(id) + 1);
        return GH_OK;
    }
    /* No file yet. A journal written before node ids existed was written as 'local'. */
    bool journal = exists(cfg->data_dir, "usage.journal") ||
                   exists(cfg->data_dir, "usage.journal.1");
    if (configured[0]) {
        if (journal && strcmp(configured, "local") && cfg->store_postgres) {
            snprintf(err, err_size, "[cluster] node_id is %s but the usage journal in %s was "
                                    "written as node 'local': keep node_id = local for this "
                                    "data directory (or leave it unset), and give other nodes "
                                    "their own data_dir",
                     configured, cfg->data_dir);
            return GH_EINVAL;
        }
        memcpy(id, configured, strlen(configured) + 1);
    } else if (journal || !cfg->store_postgres) {
        /* SQLite: one node, whose events the store keys as 'local' (and a copy to
         * PostgreSQL keeps them so); nothing is written, so a later move keeps 'local'. */
        memcpy(id, "local", sizeof("local"));
    } else {
        char rnd[13];
        gh_random_base62(rnd, 12);
        snprintf(id, sizeof(id), "node-%s", rnd);
    }
    memcpy(cfg->cluster_node_id, id, strlen(id) + 1);
    if (!cfg->store_postgres)
        return GH_OK;
    if (write_id(path, id)) {
        snprintf(err, err_size, "cannot write the node id to %s: %s", path, strerror(errno));
        return GH_EIO;
    }
    gh_log_info("cluster: this node is %s (kept in %s)", id, path);
    return GH_OK;
}

/* ---- one server per data directory and SQLite file ---- */

/* Opens and locks `path`: GH_OK, GH_ECONFLICT when another process holds it, GH_EIO. */
static gh_err_t lock_file(const char *path, int *fd)
{
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (*fd < 0)
        return GH_EIO;
    if (flock(*fd, LOCK_EX | LOCK_NB) == 0)
        return GH_OK;
    gh_err_t rc = errno == EWOULDBLOCK ? GH_ECONFLICT : GH_EIO;
    close(*fd);
    *fd = -1;
    return rc;
}

gh_err_t gh_cluster_lock_files(const gh_config_t *cfg, int fds[2], char *err, size_t err_size)
{
    char path[GH_CONFIG_PATH + 16];
    fds[0] = fds[1] = -1;
    snprintf(path, sizeof(path), "%s/serve.lock", cfg->data_dir);
    gh_err_t rc = lock_file(path, &fds[0]);
    if (rc == GH_ECONFLICT) {
        snprintf(err, err_size, "another gatehouse serve is running on the data directory %s "
                                "(it holds %s); every node needs its own data_dir",
                 cfg->data_dir, path);
        return rc;
    }
    if (rc) {
        snprintf(err, err_size, "cannot lock %s: %s", path, strerror(errno));
        return rc;
    }
    if (cfg->store_postgres)
        return GH_OK;
    snprintf(path, sizeof(path), "%s.lock", cfg->db_path);
    rc = lock_file(path, &fds[1]);
    if (rc == GH_ECONFLICT)
        snprintf(err, err_size, "another gatehouse serve is using the SQLite database %s (it "
                                "holds %s). A SQLite store serves one node; to run several "
                                "nodes, use a PostgreSQL store (see docs/cluster.md)",
                 cfg->db_path, path);
    else if (rc)
        snprintf(err, err_size, "cannot lock %s: %s", path, strerror(errno));
    if (rc)
        gh_cluster_unlock_files(fds);
    return rc;
}

void gh_cluster_unlock_files(int fds[2])
{
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
        }
}

/* ---- the change feed ---- */

#define BATCH 512                 /* changes read per statement */
#define BACKOFF_MAX_MS 5000       /* reconnection attempts: poll_ms doubling up to this */
#define PRUNE_EVERY_MS 60000      /* how often the leader deletes old changes... */
#define KEEP_CHANGES_MS 3600000   /* ...older than this */

const double gh_cluster_lag_le[8] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5};

struct gh_cluster {
    const gh_config_t *cfg;
    gh_store_t *store;
    struct gh_app *app;
    bool clustered;
    int wake[2]; /* a pipe: a byte in it stops the listener's wait */
    pthread_t thread;
    bool started;
    atomic_bool stopping;
    atomic_bool leader;
    pthread_mutex_t lock; /* guards `st` and `tried` */
    pthread_cond_t tried_cond;
    bool tried; /* the listener's first connection attempt is over */
    gh_cluster_stats_t st;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

gh_err_t gh_cluster_new(gh_cluster_t **out, const gh_config_t *cfg, gh_store_t *store,
                        char *err, size_t err_size)
{
    gh_cluster_t *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, err_size, "out of memory");
        return GH_ENOMEM;
    }
    c->cfg = cfg;
    c->store = store;
    c->clustered = cfg->store_postgres;
    c->wake[0] = c->wake[1] = -1;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->tried_cond, NULL);
    c->st.node_id = cfg->cluster_node_id;
    c->st.clustered = c->clustered;
    atomic_store(&c->leader, !c->clustered);
    if (c->clustered) {
        gh_db_t *db = gh_store_db(store);
        gh_err_t rc = db ? gh_store_cluster_change_max(db, &c->st.watermark) : GH_EUNAVAIL;
        if (rc) {
            snprintf(err, err_size, "cannot read the cluster's change feed (%s)",
                     gh_err_name(rc));
            gh_cluster_free(c);
            return rc;
        }
        if (pipe2(c->wake, O_CLOEXEC | O_NONBLOCK)) {
            snprintf(err, err_size, "cannot create a pipe: %s", strerror(errno));
            gh_cluster_free(c);
            return GH_EIO;
        }
    } else {
        gh_log_info("cluster: node %s is a single node (SQLite store; several nodes need "
                    "PostgreSQL, see docs/cluster.md)", cfg->cluster_node_id);
    }
    *out = c;
    return GH_OK;
}

bool gh_cluster_leader(const gh_cluster_t *c)
{
    return c == NULL || atomic_load(&((gh_cluster_t *)c)->leader);
}

void gh_cluster_kick_leader(const gh_cluster_t *c)
{
    if (c == NULL || !c->clustered || gh_cluster_leader(c))
        return;
    gh_db_t *db = gh_store_db(c->store);
    gh_err_t rc = db ? gh_store_cluster_kick(db) : GH_EUNAVAIL;
    if (rc)
        gh_log_debug("cluster: cannot reach the leader (%s); its next pass runs the jobs",
                     gh_err_name(rc));
}

void gh_cluster_stats(const gh_cluster_t *c, gh_cluster_stats_t *out)
{
    gh_cluster_t *m = (gh_cluster_t *)c;
    pthread_mutex_lock(&m->lock);
    *out = m->st;
    pthread_mutex_unlock(&m->lock);
    out->leader = gh_cluster_leader(c);
}

static void note_lag(gh_cluster_t *c, int64_t lag_us)
{
    if (lag_us < 0)
        lag_us = 0; /* another clock a little behind */
    c->st.lag_last_us = lag_us;
    if (lag_us > c->st.lag_max_us)
        c->st.lag_max_us = lag_us;
    for (size_t i = 0; i < sizeof(gh_cluster_lag_le) / sizeof(gh_cluster_lag_le[0]); i++)
        if ((double)lag_us <= gh_cluster_lag_le[i] * 1e6)
            c->st.lag_bucket[i]++;
    c->st.lag_count++;
    c->st.lag_sum_us += lag_us;
}

typedef struct {
    gh_cluster_t *c;
    gh_db_t *db;
    int64_t last_seq;
    int n;
    bool money;
    gh_err_t rc;
} apply_t;

/* Applies one change through the publishers; money is applied once per batch (the ledger's
 * own watermark makes one read take every entry). A failed publish is logged and the batch
 * stops there, so the change is read again. */
static void apply_one(void *ctx, const gh_change_t *ch)
{
    apply_t *a = ctx;
    if (a->rc)
        return;
    gh_app_t *app = a->c->app;
    gh_err_t rc = GH_OK;
    if (!strcmp(ch->kind, "key")) {
        rc = gh_state_sync_key(app->state, a->db, ch->id);
    } else if (!strcmp(ch->kind, "workspace")) {
        rc = gh_state_sync_workspace(app->state, a->db, ch->id);
        if (!rc && app->admission && ch->org_id[0])
            rc = gh_admission_sync_workspace(app->admission, a->db, ch->org_id, ch->id);
    } else if (!strcmp(ch->kind, "org")) {
        if (app->admission)
            rc = gh_admission_sync_org(app->admission, a->db, ch->id);
    } else if (!strcmp(ch->kind, "money")) {
        a->money = true;
    }
    /* "member": the console reads memberships from the store on every request; nothing is
     * held in memory. */
    if (rc) {
        gh_log_warn("cluster: applying change %lld (%s %s) failed (%s); it is read again",
                    (long long)ch->seq, ch->kind, ch->id, gh_err_name(rc));
        a->rc = rc;
        return;
    }
    a->last_seq = ch->seq;
    a->n++;
    int64_t lag = wall_us() - ch->changed_at_us;
    pthread_mutex_lock(&a->c->lock);
    note_lag(a->c, lag);
    pthread_mutex_unlock(&a->c->lock);
}

/* Reads and applies every change past the watermark. */
static gh_err_t apply_changes(gh_cluster_t *c, gh_db_t *db)
{
    for (;;) {
        pthread_mutex_lock(&c->lock);
        int64_t after = c->st.watermark;
        pthread_mutex_unlock(&c->lock);
        apply_t a = {c, db, after, 0, false, GH_OK};
        gh_err_t rc = gh_store_cluster_changes(db, after, BATCH, apply_one, &a);
        if (!rc && a.money && c->app->admission)
            rc = gh_admission_sync_money(c->app->admission, db);
        pthread_mutex_lock(&c->lock);
        c->st.watermark = a.last_seq;
        c->st.changes_applied += (uint64_t)a.n;
        pthread_mutex_unlock(&c->lock);
        if (rc || a.rc)
            return rc ? rc : a.rc;
        if (a.n < BATCH)
            return GH_OK;
    }
}

typedef struct {
    char (*ids)[2][GH_ID_MAX];
    size_t n, cap;
    bool oom;
} id_list_t;

static void collect(id_list_t *l, const char *org_id, const char *ws_id)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        void *p = realloc(l->ids, cap * sizeof(*l->ids));
        if (!p) {
            l->oom = true;
            return;
        }
        l->ids = p;
        l->cap = cap;
    }
    snprintf(l->ids[l->n][0], GH_ID_MAX, "%s", org_id);
    snprintf(l->ids[l->n][1], GH_ID_MAX, "%s", ws_id ? ws_id : "");
    l->n++;
}

static void on_org(void *ctx, const char *org_id)
{
    collect(ctx, org_id, NULL);
}

static void on_ws(void *ctx, const char *org_id, const char *ws_id)
{
    collect(ctx, org_id, ws_id);
}

/* Everything again, after a reconnect: the watermark is read first, so a change committed
 * during the reload is applied (again) afterwards. Each publisher replaces what it holds
 * under its own short lock, so the data plane keeps reading meanwhile. */
static gh_err_t reload(gh_cluster_t *c, gh_db_t *db)
{
    int64_t mark = 0;
    gh_err_t rc = gh_store_cluster_change_max(db, &mark);
    if (rc)
        return rc;
    gh_app_t *app = c->app;
    if ((rc = gh_state_load(app->state, db)))
        return rc;
    if (app->admission) {
        id_list_t orgs = {0}, wss = {0};
        rc = gh_store_org_ids(db, on_org, &orgs);
        if (!rc)
            rc = gh_store_workspace_ids(db, NULL, on_ws, &wss);
        if (!rc && (orgs.oom || wss.oom))
            rc = GH_ENOMEM;
        for (size_t i = 0; i < orgs.n && !rc; i++)
            rc = gh_admission_sync_org(app->admission, db, orgs.ids[i][0]);
        for (size_t i = 0; i < wss.n && !rc; i++)
            rc = gh_admission_sync_workspace(app->admission, db, wss.ids[i][0], wss.ids[i][1]);
        if (!rc)
            rc = gh_admission_sync_money(app->admission, db);
        free(orgs.ids);
        free(wss.ids);
        if (rc)
            return rc;
    }
    pthread_mutex_lock(&c->lock);
    if (mark > c->st.watermark)
        c->st.watermark = mark;
    c->st.reloads++;
    pthread_mutex_unlock(&c->lock);
    return GH_OK;
}

static void set_connected(gh_cluster_t *c, bool on)
{
    pthread_mutex_lock(&c->lock);
    bool was = c->st.connected;
    c->st.connected = on;
    if (was && !on)
        c->st.reconnects++;
    pthread_mutex_unlock(&c->lock);
    if (was && !on) {
        atomic_store(&c->leader, false);
        gh_log_warn("cluster: node %s lost its connection to PostgreSQL; changes made on other "
                    "nodes wait until it is back", c->cfg->cluster_node_id);
    }
}

static void set_leader(gh_cluster_t *c, bool leader)
{
    bool was = atomic_exchange(&c->leader, leader);
    if (leader && !was) {
        gh_log_info("cluster: node %s is the leader (it runs the billing jobs)",
                    c->cfg->cluster_node_id);
        gh_billing_kick(c->app->billing); /* what the last leader left is due now */
    }
    else if (!leader && was)
        gh_log_info("cluster: node %s is no longer the leader", c->cfg->cluster_node_id);
}

/* Sleeps `ms` unless stopped (a byte in the wake pipe ends it at once). */
static void pause_ms(gh_cluster_t *c, int ms)
{
    struct pollfd p = {.fd = c->wake[0], .events = POLLIN};
    (void)poll(&p, 1, ms);
}

/* A change that came with its notification: applied at once when it is the next one after
 * the watermark, which spares reading the table. After a gap (a lost notification, a seq a
 * rolled-back transaction took) the rest of the batch waits for the table's read. */
typedef struct {
    apply_t a;
    bool gap;
} notified_t;

static void on_notified(void *ctx, const gh_change_t *ch)
{
    notified_t *nt = ctx;
    if (nt->gap || nt->a.rc || ch->seq <= nt->a.last_seq)
        return;
    if (ch->seq != nt->a.last_seq + 1) {
        nt->gap = true;
        return;
    }
    apply_one(&nt->a, ch);
}

static void *listener_main(void *arg)
{
    gh_cluster_t *c = arg;
    bool connected = false, first = true, down_logged = false;
    int backoff_ms = c->cfg->cluster_poll_ms;
    int64_t next_prune = mono_ms() + PRUNE_EVERY_MS, next_lead = 0;
    bool read_table = true; /* false while notifications brought every change */
    while (!atomic_load(&c->stopping)) {
        gh_db_t *db = gh_store_db(c->store);
        gh_err_t rc = db ? GH_OK : GH_EUNAVAIL;
        if (!rc && !connected) {
            rc = gh_store_cluster_listen(db);
            /* The first LISTEN follows the start's load, whose watermark gh_cluster_new read;
             * any later one follows an outage: reload everything. */
            if (!rc && !first)
                rc = reload(c, db);
            if (!rc) {
                connected = true;
                first = false;
                down_logged = false;
                backoff_ms = c->cfg->cluster_poll_ms;
                set_connected(c, true);
                gh_log_info("cluster: node %s listens for changes (applied up to %lld)",
                            c->cfg->cluster_node_id, (long long)c->st.watermark);
            }
        }
        /* Changes first: they are what a notification woke us for. */
        if (!rc && (read_table || !connected))
            rc = apply_changes(c, db);
        /* Leadership: a leader knows it holds the lock without a statement; the others try
         * to take it at most once per poll_ms, not at every notification. */
        if (!rc && (gh_cluster_leader(c) || mono_ms() >= next_lead)) {
            bool leader = false;
            rc = gh_store_cluster_lead(db, &leader);
            if (!rc)
                set_leader(c, leader);
            next_lead = mono_ms() + c->cfg->cluster_poll_ms;
        }
        pthread_mutex_lock(&c->lock);
        if (!c->tried) {
            c->tried = true;
            pthread_cond_broadcast(&c->tried_cond);
        }
        pthread_mutex_unlock(&c->lock);
        if (!rc && gh_cluster_leader(c) && mono_ms() >= next_prune) {
            int64_t deleted = 0;
            int64_t before = wall_us() / 1000 - KEEP_CHANGES_MS;
            if (gh_store_cluster_prune(db, before, &deleted) == GH_OK && deleted)
                gh_log_debug("cluster: %lld changes older than an hour deleted",
                             (long long)deleted);
            next_prune = mono_ms() + PRUNE_EVERY_MS;
        }
        unsigned events = 0;
        pthread_mutex_lock(&c->lock);
        notified_t nt = {{c, db, c->st.watermark, 0, false, GH_OK}, false};
        pthread_mutex_unlock(&c->lock);
        if (!rc)
            rc = gh_store_cluster_wait(db, c->wake[0], c->cfg->cluster_poll_ms, &events,
                                       on_notified, &nt);
        if (nt.a.money && !nt.a.rc && c->app->admission)
            nt.a.rc = gh_admission_sync_money(c->app->admission, db);
        pthread_mutex_lock(&c->lock);
        c->st.watermark = nt.a.last_seq;
        c->st.changes_applied += (uint64_t)nt.a.n;
        pthread_mutex_unlock(&c->lock);
        /* The table is read after a poll's timeout (a notification may have been lost), a
         * gap, a failed application, or a notification without its change. */
        read_table = events == 0 || nt.gap || nt.a.rc ||
                     ((events & GH_STORE_CLUSTER_CHANGED) && nt.a.n == 0);
        if (!rc) {
            if (events & GH_STORE_CLUSTER_CHANGED) {
                pthread_mutex_lock(&c->lock);
                c->st.notifications++;
                pthread_mutex_unlock(&c->lock);
            }
            /* Another node's usage, or a setting there, asks for the leader's jobs. */
            if ((events & GH_STORE_CLUSTER_KICK) && gh_cluster_leader(c))
                gh_billing_kick(c->app->billing);
            continue;
        }
        /* The connection is gone (or a statement failed): no leadership, and a full reload
         * once it is back, after a bounded back-off. */
        if (!down_logged)
            gh_log_warn("cluster: the change feed is unavailable (%s); trying again with a "
                        "back-off of up to %d ms", gh_err_name(rc), BACKOFF_MAX_MS);
        down_logged = true;
        connected = false;
        next_lead = 0;
        set_connected(c, false);
        set_leader(c, false);
        pause_ms(c, backoff_ms);
        backoff_ms = backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff_ms * 2;
    }
    return NULL;
}

gh_err_t gh_cluster_start(gh_cluster_t *c, struct gh_app *app, char *err, size_t err_size)
{
    c->app = app;
    if (!c->clustered)
        return GH_OK;
    if (pthread_create(&c->thread, NULL, listener_main, c)) {
        snprintf(err, err_size, "cannot start the cluster listener thread");
        return GH_EINTERNAL;
    }
    c->started = true;
    /* The node reports itself connected (and a leader, if it is one) from its first answer:
     * wait for the listener's first attempt, which a connect timeout bounds. */
    pthread_mutex_lock(&c->lock);
    while (!c->tried)
        pthread_cond_wait(&c->tried_cond, &c->lock);
    pthread_mutex_unlock(&c->lock);
    return GH_OK;
}

void gh_cluster_stop(gh_cluster_t *c)
{
    if (!c || !c->started)
        return;
    atomic_store(&c->stopping, true);
    (void)!write(c->wake[1], "x", 1);
    pthread_join(c->thread, NULL);
    c->started = false;
}

void gh_cluster_free(gh_cluster_t *c)
{
    if (!c)
        return;
    gh_cluster_stop(c);
    if (c->wake[0] >= 0)
        close(c->wake[0]);
    if (c->wake[1] >= 0)
        close(c->wake[1]);
    pthread_cond_destroy(&c->tried_cond);
    pthread_mutex_destroy(&c->lock);
    free(c);
}
