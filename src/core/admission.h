/* Admission's control side: the in-memory admission engine (core/limits.h) filled from the
 * database at start and kept true while the server runs, so that the data plane decides every
 * model request without SQL.
 *
 * What it knows. Per organization: its tier (the one its cumulative purchases reach, or the
 * one staff set, with custom limits for custom tiers), its own monthly spend limit, its
 * balance and its spend this UTC month. Per active workspace: its own limits and its spend.
 * Tiers come from the configuration ([tier ID] sections) or the built-in table; model classes
 * from the models' model_class.
 *
 * Money. The engine's balance of an organization is its ledger balance at start, minus what
 * the data plane settles, plus every ledger entry since that is not usage (purchases, grants,
 * clawbacks, expiry, settlement pairs). Usage entries are skipped because their cost was
 * already settled in memory when the request ended: the usage writer commits them a few
 * milliseconds later, and applying them again would count them twice. Ledger entries are
 * append-only and their ids grow in commit order, so "entries after id N" is exact: a watermark
 * id says what was applied, and each look reads the primary-key range past it. The same look
 * runs (1) right after this process commits a money change (gh_admission_money_changed, called
 * by billing) and (2) from a watcher thread whenever SQLite's data_version says another
 * connection committed (`gatehouse credits grant` in another process), every poll_ms.
 *
 * Limits. Every change of limits or tiers made through the server is published right after
 * its commit (gh_admission_sync_org, gh_admission_sync_workspace); a purchase that reaches a
 * tier is noticed by the money look. One mutex serializes every read-then-publish, so an older
 * read can never be published over a newer one.
 *
 * Threads: any control-plane thread; each call uses the caller's store connection. */
#ifndef GH_CORE_ADMISSION_H
#define GH_CORE_ADMISSION_H

#include <stdbool.h>
#include <stdint.h>

#include "core/limits.h"
#include "core/tiers.h"
#include "lib/config.h"
#include "store/rows.h"

/* The store's handles (store/store.h), used here only by pointer. */
typedef struct gh_store gh_store_t;
typedef struct gh_db gh_db_t;

typedef struct gh_admission gh_admission_t;

/* Makes the engine for `cfg`'s model classes and tiers (cfg must outlive it). GH_EINVAL with
 * a message for a configuration the engine cannot take, GH_ENOMEM. */
gh_err_t gh_admission_new(gh_admission_t **out, const gh_config_t *cfg, char *err,
                          size_t err_size);

/* Stops the watcher and frees everything. Safe with NULL. */
void gh_admission_free(gh_admission_t *a);

gh_limits_t *gh_admission_limits(gh_admission_t *a);
const gh_tier_table_t *gh_admission_tiers(const gh_admission_t *a);
bool gh_admission_enforced(const gh_admission_t *a);

/* Loads every organization and active workspace, with balances as of one cut of the ledger
 * and this month's spend from the usage events (a scan of the table). Call before the data
 * plane starts and after the usage journal's replay. */
gh_err_t gh_admission_load(gh_admission_t *a, gh_db_t *db);

/* Starts the watcher thread (its own connection to `store`). */
gh_err_t gh_admission_start(gh_admission_t *a, gh_store_t *store, char *err, size_t err_size);

/* Applies the ledger entries committed since the last look (see above); purchases make the
 * organization's tier be worked out again. */
gh_err_t gh_admission_sync_money(gh_admission_t *a, gh_db_t *db);

/* Reads one organization's limits and tier from the database and publishes them. An
 * organization the engine does not know yet (just created) is added with its balance at the
 * watermark and its spend this month. */
gh_err_t gh_admission_sync_org(gh_admission_t *a, gh_db_t *db, const char *org_id);

/* The same for one workspace; an archived workspace is dropped. */
gh_err_t gh_admission_sync_workspace(gh_admission_t *a, gh_db_t *db, const char *org_id,
                                     const char *workspace_id);

/* What an organization's limits are now, worked out from the database. */
typedef struct gh_org_quota {
    gh_org_limits_rec_t rec;   /* its row (zeros when it has none) */
    const gh_tier_t *tier;     /* the tier it is in */
    bool tier_by_staff;        /* set by staff rather than reached by purchases */
    int64_t purchases_nusd;    /* cumulative succeeded purchases */
    int64_t tier_cap_nusd;     /* the monthly cap of its tier (custom: staff's); 0: none */
    gh_rate_limits_t rates;    /* per model class; 0: no limit of that kind */
    int64_t monthly_limit_nusd; /* the effective one: the lower of its own and the cap; 0 none */
} gh_org_quota_t;

gh_err_t gh_admission_org_quota(gh_admission_t *a, gh_db_t *db, const char *org_id,
                                gh_org_quota_t *out);

/* For code that has only the application (billing, organization and workspace creation):
 * the calls above on app->admission with the calling thread's connection; nothing when the
 * application has no admission (command-line tools). Failures are logged, not returned: the
 * change they follow is committed, and the watcher repairs money on its next look. */
struct gh_app;
void gh_admission_money_changed(struct gh_app *app);
void gh_admission_org_changed(struct gh_app *app, const char *org_id);
void gh_admission_workspace_changed(struct gh_app *app, const char *org_id,
                                    const char *workspace_id);

/* Cluster money: from now on the engine's balances are this node's leases (core/lease.h),
 * which `lease` keeps; ledger entries that are not usage kick the lease thread for their
 * organization instead of crediting the engine. Call before gh_admission_load. */
typedef struct gh_lease gh_lease_t;
void gh_admission_set_lease(gh_admission_t *a, gh_lease_t *lease);

/* The balance the console shows for an organization whose engine balance on this node is
 * `engine_balance_nusd`: that one on a single node; on a cluster (leases) the engine holds only
 * this node's lease, so the organization's balance in the database (what the usage writer has
 * charged so far). */
struct gh_app;
gh_err_t gh_admission_balance_shown(struct gh_app *app, const char *org_id,
                                    int64_t engine_balance_nusd, int64_t *balance_nusd);

/* This node's lease figures (core/lease.h) for /metrics; false on a single node (SQLite). */
typedef struct gh_lease_stats gh_lease_stats_t;
bool gh_admission_lease_stats(gh_admission_t *a, gh_lease_stats_t *out);

#endif
