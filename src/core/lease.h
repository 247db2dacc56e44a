/* Cluster money: leases. On a PostgreSQL store (a cluster of one or more nodes) no node holds
 * an organization's whole balance: each node spends only its LEASE, money the database has set
 * aside for that node (migration 0012: cluster_money, cluster_leases). This module keeps the
 * leases of one node: a thread with its own store connection takes, renews and returns them,
 * and publishes each change to the in-memory admission engine (core/limits.h), whose balance
 * of an organization on this node IS this node's lease. Admission stays I/O free.
 *
 * The invariants (docs/architecture.md, "Cluster: money"):
 *   I1  In the database: sum(leases of an org) = cluster_money.leased <= balance, and with a
 *       monthly limit, month spend + leased <= limit. A lease grows only by one conditional
 *       statement (gh_lease_take) that checks both under the organization's row lock.
 *   I2  On a node: engine balance <= the node's lease row - costs settled in memory and not
 *       yet committed. Every change keeps the engine at or below the row: a lease is credited
 *       to the engine only AFTER its commit; money is withdrawn from the engine BEFORE it is
 *       returned to the database (and put back only if that transaction certainly failed);
 *       the usage writer shrinks the row by exactly the cost it draws from the ledger, in the
 *       same transaction (gh_store_lease_settle), and the engine had subtracted that cost at
 *       settlement. Together with I1: no node ever admits against money another may spend.
 *   I3  Fencing: each lease has an epoch and an expiry. The node stops admitting for an
 *       organization when the engine's clock reaches (time the renewal was SENT + ttl - skew),
 *       which is before the database's expiry; the database returns a lease to free money
 *       only after expiry + skew (gh_store_leases_sweep, run by every node). A node whose row
 *       is gone (swept: another epoch) drops what its engine still holds of it.
 *   I4  Nothing waits on the request path: a refusal for money (or a lease running below its
 *       low-water mark) only queues the organization and wakes this thread.
 *
 * Workspace monthly limits (migration 0015): a workspace with a monthly limit is leased the
 * same way, per (workspace, node), against limit - month spend - leased; the engine admits a
 * request of it only within both its organization's lease and its own (core/limits.h,
 * gh_limits_ws_lease_*). I1-I4 hold for these leases as written, with "balance" read as the
 * workspace's headroom; the usage events' insert settles them (a trigger). This thread keeps
 * both kinds in one table and runs the same steps on both.
 *
 * Sizing: a lease is refilled to a target of a few worst cases of the organization's recent
 * requests (at least) or what lasts its ttl at a few times the recent rate of spend, bounded
 * by half of what the node could hold (the free money and its own unreserved lease); when
 * that is scarce (below 16 worst cases) an idle node gives back everything unreserved and a
 * busy one keeps two worst cases, so once traffic stops any one node can spend down to less
 * than one request's worst case. Idle leases (no admission for lease_ttl_ms) go back.
 *
 * What is bounded rather than exact: a node that dies with settled-but-uncommitted usage, or
 * requests in flight, and comes back after its lease was swept reports that usage, which is
 * charged (every response is charged once) and may take the balance below zero by at most what
 * it held then. A clawback or expiry that takes the balance below what is leased is absorbed
 * as nodes return their leases.
 *
 * Threads: gh_lease_kick may be called from any thread; the rest from the main thread. */
#ifndef GH_CORE_LEASE_H
#define GH_CORE_LEASE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/limits.h"
#include "lib/config.h"
#include "lib/err.h"

typedef struct gh_store gh_store_t;
typedef struct gh_lease gh_lease_t;

/* Makes the lease keeper of node cfg->cluster_node_id for `limits` and turns leases on in
 * the engine (every organization fenced until it has a lease). `cfg` and `limits` outlive it.
 * GH_ENOMEM. */
gh_err_t gh_lease_new(gh_lease_t **out, const gh_config_t *cfg, gh_limits_t *limits,
                      gh_store_t *store);

/* Returns every lease this node held before (a restart: the engine starts empty, and the
 * journal's replay has already charged what was spent under them), then starts the thread.
 * GH_EUNAVAIL when the database cannot be reached (with a message). */
gh_err_t gh_lease_start(gh_lease_t *ls, char *err, size_t err_size);

/* The organization's money changed in the database (a purchase, grant, clawback, expiry):
 * look at its lease now. NULL: every organization this node leases. */
void gh_lease_kick(gh_lease_t *ls, const char *org_id);

/* Stops the thread and gives back every lease of this node (call after the data plane and
 * the usage writer stopped, so nothing is in flight and every cost is committed). */
void gh_lease_free(gh_lease_t *ls);

typedef struct gh_lease_stats {
    int64_t held;        /* organizations this node holds a lease of */
    int64_t held_nusd;   /* what the engine holds of them (reserved included) */
    uint64_t refills;    /* leases taken or grown */
    uint64_t returns;    /* leases given back, in part or whole */
    uint64_t lapses;     /* leases found swept (expired without renewal) */
    uint64_t swept;      /* expired leases of any node this node returned to free money */
    uint64_t db_errors;  /* transactions that failed */
    bool db_down;        /* the last transaction could not reach the database */
} gh_lease_stats_t;

void gh_lease_stats(gh_lease_t *ls, gh_lease_stats_t *out);

#endif
