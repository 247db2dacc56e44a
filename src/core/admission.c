/* Admission's control side (admission.h): loading the engine, publishing changes, and the
 * watcher that notices what other processes commit. */
#include "core/admission.h"
#include "core/lease.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/app.h"
#include "lib/log.h"
#include "lib/mono.h"
#include "lib/utc.h"
#include "store/store.h"

struct gh_admission {
    const gh_config_t *cfg;
    gh_limits_t *limits;
    gh_tier_t tiers[GH_TIERS_MAX];
    gh_tier_table_t table;
    /* Serializes every read-then-publish and guards `watermark`. */
    pthread_mutex_t lock;
    int64_t watermark; /* ledger entries up to this id are in the engine's balances */
    /* The watcher. */
    gh_store_t *store;
    pthread_t thread;
    pthread_mutex_t wait_lock;
    pthread_cond_t wake;
    bool started, stopping;
    /* Cluster money (core/lease.h): set on a PostgreSQL store. The engine's balances are then
     * this node's leases, never ledger balances. */
    gh_lease_t *lease;
};

/* ---- set-up ---- */

static void tiers_from_config(gh_admission_t *a, const gh_config_t *cfg)
{
    if (cfg->ntiers == 0) {
        a->table = gh_tiers_default;
        return;
    }
    for (int i = 0; i < cfg->ntiers; i++) {
        const gh_tier_cfg_t *c = &cfg->tiers[i];
        a->tiers[i] = (gh_tier_t){c->id,
                                  c->name,
                                  c->purchases_to_enter_nusd,
                                  c->monthly_cap_nusd,
                                  {c->requests_per_min, c->input_tokens_per_min,
                                   c->output_tokens_per_min},
                                  c->custom};
    }
    a->table = (gh_tier_table_t){a->tiers, (size_t)cfg->ntiers};
}

gh_err_t gh_admission_new(gh_admission_t **out, const gh_config_t *cfg, char *err,
                          size_t err_size)
{
    const char *classes[GH_LIMITS_CLASSES_MAX];
    size_t n = 0;
    for (int i = 0; i < cfg->nmodels; i++) {
        const char *c = cfg->models[i].model_class;
        bool seen = false;
        for (size_t j = 0; j < n && !seen; j++)
            seen = !strcmp(classes[j], c);
        if (seen)
            continue;
        if (n == GH_LIMITS_CLASSES_MAX) {
            snprintf(err, err_size, "at most %d model classes", GH_LIMITS_CLASSES_MAX);
            return GH_EINVAL;
        }
        classes[n++] = c;
    }
    if (n == 0)
        classes[n++] = "default"; /* no models: an engine that is never asked */
    gh_admission_t *a = calloc(1, sizeof(*a));
    if (!a)
        return GH_ENOMEM;
    a->cfg = cfg;
    tiers_from_config(a, cfg);
    gh_err_t rc = gh_limits_new(&a->limits, classes, n, gh_limits_clock_real, NULL);
    if (rc) {
        snprintf(err, err_size, "cannot make the admission engine (%s)", gh_err_str(rc));
        free(a);
        return rc;
    }
    pthread_mutex_init(&a->lock, NULL);
    pthread_mutex_init(&a->wait_lock, NULL);
    gh_mono_cond_init(&a->wake);
    *out = a;
    return GH_OK;
}

void gh_admission_free(gh_admission_t *a)
{
    if (!a)
        return;
    if (a->started) {
        pthread_mutex_lock(&a->wait_lock);
        a->stopping = true;
        pthread_cond_signal(&a->wake);
        pthread_mutex_unlock(&a->wait_lock);
        pthread_join(a->thread, NULL);
    }
    gh_limits_free(a->limits);
    pthread_cond_destroy(&a->wake);
    pthread_mutex_destroy(&a->wait_lock);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

gh_limits_t *gh_admission_limits(gh_admission_t *a)
{
    return a->limits;
}

const gh_tier_table_t *gh_admission_tiers(const gh_admission_t *a)
{
    return &a->table;
}

bool gh_admission_enforced(const gh_admission_t *a)
{
    return a->cfg->limits_enforce;
}

static int64_t now_s(void)
{
    return time(NULL);
}

/* ---- what an organization's limits are ---- */

static int64_t lower_limit(int64_t a, int64_t b)
{
    if (a <= 0)
        return b > 0 ? b : 0;
    if (b <= 0)
        return a;
    return a < b ? a : b;
}

gh_err_t gh_admission_org_quota(gh_admission_t *a, gh_db_t *db, const char *org_id,
                                gh_org_quota_t *q)
{
    memset(q, 0, sizeof(*q));
    gh_err_t rc = gh_store_org_limits_get(db, org_id, &q->rec);
    if (rc == GH_ENOTFOUND) {
        memset(&q->rec, 0, sizeof(q->rec));
        snprintf(q->rec.org_id, sizeof(q->rec.org_id), "%s", org_id);
        rc = GH_OK;
    }
    gh_purchase_stats_t ps;
    if (rc || (rc = gh_store_purchase_stats(db, org_id, &ps)))
        return rc;
    q->purchases_nusd = ps.succeeded_nusd;
    const gh_tier_t *t = q->rec.tier_override[0] ? gh_tier_find(&a->table, q->rec.tier_override)
                                                 : NULL;
    q->tier_by_staff = t != NULL;
    if (!t)
        t = gh_tier_for_purchases(&a->table, q->purchases_nusd);
    q->tier = t;
    if (t->custom) {
        q->tier_cap_nusd = q->rec.custom_monthly_cap_nusd;
        q->rates = (gh_rate_limits_t){q->rec.custom_rpm, q->rec.custom_itpm, q->rec.custom_otpm};
    } else {
        q->tier_cap_nusd = t->monthly_cap_nusd;
        q->rates = t->rate;
    }
    q->monthly_limit_nusd = lower_limit(q->rec.monthly_spend_limit_nusd, q->tier_cap_nusd);
    return GH_OK;
}

/* ---- publishing (the caller holds a->lock) ---- */

static void month_now(int32_t *key, int64_t *start_s)
{
    int64_t t = now_s();
    *key = gh_utc_month_key(t);
    *start_s = gh_utc_month_start_s(t);
}

static bool org_known(gh_admission_t *a, const char *org_id)
{
    gh_limits_org_state_t st;
    return gh_limits_org_get(a->limits, org_id, &st) == GH_OK;
}

/* The engine's limits for an organization from its quota. */
static void org_cfg_of(const gh_org_quota_t *q, gh_limits_org_cfg_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->monthly_limit_nusd = q->rec.monthly_spend_limit_nusd;
    cfg->tier_cap_nusd = q->tier_cap_nusd;
    for (size_t c = 0; c < GH_LIMITS_CLASSES_MAX; c++)
        cfg->rates[c] = q->rates;
}

static gh_err_t publish_ws_locked(gh_admission_t *a, gh_db_t *db, const char *org_id,
                                  const char *ws_id);

typedef struct {
    gh_admission_t *a;
    gh_db_t *db;
    gh_err_t rc;
} ws_walk_t;

static void publish_each_ws(void *ctx, const char *org_id, const char *ws_id)
{
    ws_walk_t *w = ctx;
    gh_err_t rc = publish_ws_locked(w->a, w->db, org_id, ws_id);
    if (rc && !w->rc)
        w->rc = rc;
}

static gh_err_t publish_org_locked(gh_admission_t *a, gh_db_t *db, const char *org_id)
{
    gh_org_quota_t q;
    gh_limits_org_cfg_t cfg;
    gh_err_t rc = gh_admission_org_quota(a, db, org_id, &q);
    if (rc)
        return rc;
    org_cfg_of(&q, &cfg);
    bool known = org_known(a, org_id);
    if ((rc = gh_limits_org_set(a->limits, org_id, &cfg)) || known)
        return rc;
    /* New to the engine: nothing of it is in flight, so its money is set absolutely, as of
     * the watermark (later entries come through the next money look). */
    int32_t key;
    int64_t start, balance = 0, spent = 0;
    month_now(&key, &start);
    if ((!a->lease && (rc = gh_store_ledger_balance_upto(db, org_id, a->watermark, &balance))) ||
        (rc = gh_store_ledger_usage_since(db, org_id, start, &spent)) ||
        (rc = gh_limits_org_set_money(a->limits, org_id, balance, key, spent)))
        return rc;
    ws_walk_t w = {a, db, GH_OK};
    rc = gh_store_workspace_ids(db, org_id, publish_each_ws, &w);
    return rc ? rc : w.rc;
}

typedef struct {
    gh_limits_t *limits;
    const char *ws_id;
    int64_t cost;
} ws_spend_t;

static void add_ws_spend(void *ctx, const char *org_id, const char *ws_id, int64_t cost)
{
    (void)org_id;
    ws_spend_t *s = ctx;
    if (!strcmp(ws_id, s->ws_id))
        s->cost += cost;
}

static gh_err_t publish_ws_locked(gh_admission_t *a, gh_db_t *db, const char *org_id,
                                  const char *ws_id)
{
    gh_workspace_t w;
    gh_err_t rc = gh_store_workspace_get(db, org_id, ws_id, &w);
    if (rc == GH_ENOTFOUND || (!rc && w.archived_at)) {
        gh_limits_ws_forget(a->limits, org_id, ws_id); /* GH_ENOTFOUND is fine */
        return GH_OK;
    }
    if (rc)
        return rc;
    gh_ws_limits_rec_t rec;
    rc = gh_store_ws_limits_get(db, ws_id, &rec);
    if (rc == GH_ENOTFOUND) {
        memset(&rec, 0, sizeof(rec));
        rc = GH_OK;
    }
    if (rc)
        return rc;
    gh_limits_ws_cfg_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.monthly_limit_nusd = rec.monthly_spend_limit_nusd;
    for (size_t c = 0; c < GH_LIMITS_CLASSES_MAX; c++)
        cfg.rates[c] = (gh_rate_limits_t){rec.rpm, rec.itpm, rec.otpm};
    gh_limits_ws_state_t st;
    bool known = gh_limits_ws_get(a->limits, org_id, ws_id, &st) == GH_OK;
    rc = gh_limits_ws_set(a->limits, org_id, ws_id, &cfg);
    if (rc == GH_ENOTFOUND) /* its organization is new to the engine too */
        return publish_org_locked(a, db, org_id);
    if (rc || known)
        return rc;
    /* New to the engine: its spend this month. A workspace made this month has none yet;
     * otherwise the usage events are read (rare: workspaces are known from the start). */
    int32_t key;
    int64_t start;
    month_now(&key, &start);
    ws_spend_t s = {a->limits, ws_id, 0};
    if (w.created_at < start &&
        (rc = gh_store_usage_cost_since(db, start * 1000, org_id, ws_id, add_ws_spend, &s)))
        return rc;
    return gh_limits_ws_set_spend(a->limits, org_id, ws_id, key, s.cost);
}

/* ---- loading ---- */

typedef struct {
    gh_admission_t *a;
    gh_db_t *db;
    gh_err_t rc;
    size_t count;
} load_t;

static void load_org(void *ctx, const char *org_id)
{
    load_t *l = ctx;
    gh_org_quota_t q;
    gh_limits_org_cfg_t cfg;
    gh_err_t rc = gh_admission_org_quota(l->a, l->db, org_id, &q);
    if (!rc) {
        org_cfg_of(&q, &cfg);
        rc = gh_limits_org_set(l->a->limits, org_id, &cfg);
    }
    if (rc && !l->rc)
        l->rc = rc;
    l->count++;
}

static void load_balance(void *ctx, const char *org_id, int64_t balance)
{
    load_t *l = ctx;
    /* Every organization starts at 0; one that is gone (no row) is skipped. On a cluster the
     * balance in the engine is the lease, which the lease thread credits. */
    if (!l->a->lease)
        gh_limits_credit(l->a->limits, org_id, balance);
}

static void load_ws(void *ctx, const char *org_id, const char *ws_id)
{
    load_t *l = ctx;
    gh_ws_limits_rec_t rec;
    gh_err_t rc = gh_store_ws_limits_get(l->db, ws_id, &rec);
    if (rc == GH_ENOTFOUND) {
        memset(&rec, 0, sizeof(rec));
        rc = GH_OK;
    }
    if (!rc) {
        gh_limits_ws_cfg_t cfg;
        memset(&cfg, 0, sizeof(cfg));
        cfg.monthly_limit_nusd = rec.monthly_spend_limit_nusd;
        for (size_t c = 0; c < GH_LIMITS_CLASSES_MAX; c++)
            cfg.rates[c] = (gh_rate_limits_t){rec.rpm, rec.itpm, rec.otpm};
        rc = gh_limits_ws_set(l->a->limits, org_id, ws_id, &cfg);
    }
    if (rc && !l->rc)
        l->rc = rc;
}

/* This month's spend, grouped by organization then workspace (the rows come sorted). */
typedef struct {
    gh_limits_t *limits;
    int32_t key;
    char org[GH_ID_MAX];
    int64_t org_total;
} spend_t;

static void spend_flush(spend_t *s)
{
    gh_limits_org_state_t st;
    if (s->org[0] && gh_limits_org_get(s->limits, s->org, &st) == GH_OK)
        gh_limits_org_set_money(s->limits, s->org, st.balance_nusd, s->key, s->org_total);
}

static void load_spend(void *ctx, const char *org_id, const char *ws_id, int64_t cost)
{
    spend_t *s = ctx;
    if (strcmp(s->org, org_id)) {
        spend_flush(s);
        snprintf(s->org, sizeof(s->org), "%s", org_id);
        s->org_total = 0;
    }
    s->org_total += cost > 0 ? cost : 0;
    if (ws_id && ws_id[0])
        gh_limits_ws_set_spend(s->limits, org_id, ws_id, s->key, cost > 0 ? cost : 0);
}

gh_err_t gh_admission_load(gh_admission_t *a, gh_db_t *db)
{
    int32_t key;
    int64_t start;
    month_now(&key, &start);
    load_t l = {a, db, GH_OK, 0};
    spend_t s = {a->limits, key, "", 0};
    pthread_mutex_lock(&a->lock);
    gh_err_t rc = gh_store_ledger_max_id(db, &a->watermark);
    if (!rc)
        rc = gh_store_org_ids(db, load_org, &l);
    if (!rc)
        rc = l.rc;
    if (!rc)
        rc = gh_store_ledger_balances_upto(db, a->watermark, load_balance, &l);
    if (!rc)
        rc = gh_store_workspace_ids(db, NULL, load_ws, &l);
    if (!rc)
        rc = l.rc;
    if (!rc)
        rc = gh_store_usage_cost_since(db, start * 1000, NULL, NULL, load_spend, &s);
    if (!rc)
        spend_flush(&s);
    pthread_mutex_unlock(&a->lock);
    if (!rc)
        gh_log_info("limits: %zu organizations loaded (ledger up to entry %lld), admission %s",
                    l.count, (long long)a->watermark, a->cfg->limits_enforce ? "on" : "off");
    return rc;
}

/* ---- money ---- */

typedef struct {
    char org_id[GH_ID_MAX];
    int64_t amount_nusd;
    bool purchase;
} delta_t;

typedef struct {
    delta_t *items;
    size_t n, cap;
    bool oom;
} deltas_t;

static void collect_delta(void *ctx, const char *org_id, const char *kind, int64_t amount)
{
    deltas_t *d = ctx;
    if (d->n && !strcmp(d->items[d->n - 1].org_id, org_id)) {
        d->items[d->n - 1].amount_nusd += amount;
        d->items[d->n - 1].purchase |= !strcmp(kind, "purchase");
        return;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        delta_t *items = realloc(d->items, cap * sizeof(*items));
        if (!items) {
            d->oom = true;
            return;
        }
        d->items = items;
        d->cap = cap;
    }
    delta_t *e = &d->items[d->n++];
    snprintf(e->org_id, sizeof(e->org_id), "%s", org_id);
    e->amount_nusd = amount;
    e->purchase = !strcmp(kind, "purchase");
}

gh_err_t gh_admission_sync_money(gh_admission_t *a, gh_db_t *db)
{
    deltas_t d = {NULL, 0, 0, false};
    int64_t upto = 0;
    pthread_mutex_lock(&a->lock);
    /* Read the cut first: every entry up to it is committed (ids grow in commit order), and
     * the deltas read next are exactly the entries in (watermark, cut]. */
    gh_err_t rc = gh_store_ledger_max_id(db, &upto);
    if (!rc && upto > a->watermark)
        rc = gh_store_ledger_deltas(db, a->watermark, upto, collect_delta, &d);
    if (!rc && d.oom)
        rc = GH_ENOMEM;
    if (rc || upto <= a->watermark)
        goto out_unlock;
    /* Organizations known to the engine get the difference; new ones are read whole at the
     * new watermark, which already includes these entries. */
    int64_t old = a->watermark;
    a->watermark = upto;
    for (size_t i = 0; i < d.n; i++) {
        const delta_t *e = &d.items[i];
        bool known = org_known(a, e->org_id);
        if (a->lease) /* a cluster: free money changed; the lease thread looks at it now */
            gh_lease_kick(a->lease, e->org_id);
        else if (known && e->amount_nusd)
            gh_limits_credit(a->limits, e->org_id, e->amount_nusd);
        if (!known || e->purchase) {
            gh_err_t prc = publish_org_locked(a, db, e->org_id);
            if (prc)
                gh_log_error("limits: cannot publish %s after a ledger change (%s)", e->org_id,
                             gh_err_name(prc));
        }
    }
    gh_log_debug("limits: ledger entries %lld..%lld applied to %zu organizations",
                 (long long)old + 1, (long long)upto, d.n);
out_unlock:
    pthread_mutex_unlock(&a->lock);
    free(d.items);
    return rc;
}

gh_err_t gh_admission_sync_org(gh_admission_t *a, gh_db_t *db, const char *org_id)
{
    pthread_mutex_lock(&a->lock);
    gh_err_t rc = publish_org_locked(a, db, org_id);
    pthread_mutex_unlock(&a->lock);
    return rc;
}

gh_err_t gh_admission_sync_workspace(gh_admission_t *a, gh_db_t *db, const char *org_id,
                                     const char *workspace_id)
{
    pthread_mutex_lock(&a->lock);
    gh_err_t rc = publish_ws_locked(a, db, org_id, workspace_id);
    pthread_mutex_unlock(&a->lock);
    return rc;
}

/* ---- the watcher ---- */

/* Polls this thread's connection's data_version: it changes exactly when another connection
 * committed, which costs a read of the WAL index, no I/O. Only then is the ledger read. */
static void *watcher_main(void *arg)
{
    gh_admission_t *a = arg;
    int64_t seen = -1;
    for (;;) {
        gh_db_t *db = gh_store_db(a->store);
        int64_t v = 0;
        if (db && !gh_store_data_version(db, &v) && v != seen) {
            gh_err_t rc = gh_admission_sync_money(a, db);
            if (rc)
                gh_log_error("limits: reading the ledger failed (%s)", gh_err_name(rc));
            else
                seen = v;
        }
        struct timespec until;
        gh_mono_deadline(&until, a->cfg->limits_poll_ms);
        pthread_mutex_lock(&a->wait_lock);
        while (!a->stopping)
            if (pthread_cond_timedwait(&a->wake, &a->wait_lock, &until) == ETIMEDOUT)
                break;
        bool stop = a->stopping;
        pthread_mutex_unlock(&a->wait_lock);
        if (stop)
            break;
    }
    return NULL;
}

gh_err_t gh_admission_start(gh_admission_t *a, gh_store_t *store, char *err, size_t err_size)
{
    a->store = store;
    if (pthread_create(&a->thread, NULL, watcher_main, a)) {
        snprintf(err, err_size, "cannot start the limits watcher thread");
        return GH_EINTERNAL;
    }
    a->started = true;
    return GH_OK;
}

/* ---- from the application ---- */

void gh_admission_money_changed(struct gh_app *app)
{
    if (!app || !app->admission)
        return;
    gh_db_t *db = gh_store_db(app->store);
    gh_err_t rc = db ? gh_admission_sync_money(app->admission, db) : GH_ESTORE;
    if (rc)
        gh_log_error("limits: applying a money change failed (%s); the watcher retries",
                     gh_err_name(rc));
}

void gh_admission_org_changed(struct gh_app *app, const char *org_id)
{
    if (!app || !app->admission)
        return;
    gh_db_t *db = gh_store_db(app->store);
    gh_err_t rc = db ? gh_admission_sync_org(app->admission, db, org_id) : GH_ESTORE;
    if (rc)
        gh_log_error("limits: publishing %s failed (%s)", org_id, gh_err_name(rc));
}

void gh_admission_workspace_changed(struct gh_app *app, const char *org_id,
                                    const char *workspace_id)
{
    if (!app || !app->admission)
        return;
    gh_db_t *db = gh_store_db(app->store);
    gh_err_t rc = db ? gh_admission_sync_workspace(app->admission, db, org_id, workspace_id)
                     : GH_ESTORE;
    if (rc)
        gh_log_error("limits: publishing workspace %s failed (%s)", workspace_id,
                     gh_err_name(rc));
}

void gh_admission_set_lease(gh_admission_t *a, gh_lease_t *lease)
{
    pthread_mutex_lock(&a->lock);
    a->lease = lease;
    pthread_mutex_unlock(&a->lock);
}

gh_err_t gh_admission_balance_shown(struct gh_app *app, const char *org_id,
                                    int64_t engine_balance_nusd, int64_t *balance_nusd)
{
    *balance_nusd = engine_balance_nusd;
    if (!app->admission || !app->admission->lease)
        return GH_OK;
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_EUNAVAIL;
    gh_billing_account_t acct;
    gh_err_t rc = gh_store_billing_account_get(db, org_id, &acct);
    if (rc == GH_ENOTFOUND) {
        *balance_nusd = 0;
        return GH_OK;
    }
    /* This node's costs settled in memory and not yet committed: its lease row holds them
     * besides what the engine holds (lease.h, I2). */
    int64_t row = 0;
    if (!rc && !(rc = gh_store_lease_amount(db, org_id, app->cfg->cluster_node_id, &row)))
        *balance_nusd = acct.balance_nusd - (row > engine_balance_nusd ? row - engine_balance_nusd
                                                                       : 0);
    return rc;
}

bool gh_admission_lease_stats(gh_admission_t *a, gh_lease_stats_t *out)
{
    if (!a->lease)
        return false;
    gh_lease_stats(a->lease, out);
    return true;
}
