/* Rate leases: RPM, ITPM and OTPM per organization and workspace, exact cluster-wide.
 *
 * With several nodes on one PostgreSQL store, each node's in-memory engine (core/limits.h)
 * would admit the whole limit by itself: N nodes, N times the limit. So the bucket that
 * counts lives in the database (table rate_buckets, one row per organization or workspace,
 * model class and kind), and a node admits from a bucket only what it has drawn from that
 * row: its share (gh_limits_rate_shared). This module is the thread that draws.
 *
 * Design, and why (docs/architecture.md, "Cluster: rate limits", has the long form):
 *   - A central pool, not static shares. Static shares (limit / N per node) strand the limit
 *     on idle nodes and need N known; demand-weighted shares still need someone to move
 *     capacity between nodes. A token bucket in one row that nodes draw small grants from,
 *     sized to their recent demand, lets a single busy node among idle ones use the whole
 *     limit, and the bound does not depend on N at all.
 *   - No I/O on the request path. Draws are made ahead of need: every tick (GH_RATE_LEASE_
 *     TICK_MS) the thread draws, for every share that saw demand since the last tick, enough
 *     for twice that demand, many buckets in one statement. An admission that finds a share
 *     short kicks the thread and is refused with rate_pending; the gateway parks it and
 *     admits it again a few milliseconds later (bounded), so a quiet organization's first
 *     request waits one draw instead of being refused.
 *   - Grants lapse. A grant may be spent until GH_RATE_LEASE_TTL_MS after its draw began;
 *     what is left then is dropped, never returned: a node that dies or loses the database
 *     holds nothing after the TTL, and nothing has to be reconciled. The cluster's bucket has
 *     L * ttl / 60 s less capacity than the limit to pay for that (the bound in limits.h): in
 *     any minute the cluster admits at most the limit plus one bucket's capacity, 2L, as a
 *     single node does, whatever the number of nodes.
 *   - Corrections at settlement (input bound against actual input, output) stay on the
 *     node's share: unused tokens go back to its live grants, overuse becomes debt that its
 *     next grants pay first.
 *   - Cost: one autocommitted statement per tick per node while any of its shares has
 *     demand, none while idle; it takes only the buckets' rows, not the write lock.
 *     gatehouse_rate_lease_refills_total counts them (the PostgreSQL transactions the leases
 *     cost), with the buckets drawn and the tokens granted.
 *   - The database unreachable: draws fail and grants lapse within the TTL; a short share is
 *     then served by a safe local share of the limit (the cluster's capacity / N a minute, N
 *     brought by every successful draw; limits.h), owed to the cluster's bucket once draws
 *     succeed again, and refused as unavailable (529 overloaded_error, saying why) only when
 *     that is spent too. So the money leases, sized to last lease_ttl_ms, end service during
 *     an outage, not the rate grants' 500 ms.
 *
 * Threads: one thread of its own, with its own store connection; the kick may come from any
 * thread. */
#ifndef GH_CORE_RATE_LEASE_H
#define GH_CORE_RATE_LEASE_H

#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"
#include "lib/err.h"

typedef struct gh_store gh_store_t;
typedef struct gh_rate_lease gh_rate_lease_t;

/* How long a grant may be spent, from the start of its draw. */
/* Short, because the cluster's buckets give up L x TTL / 60 s of capacity to pay for grants
 * spent after they were drawn (the bound in limits.h): 500 ms costs 0.8% (nothing below 120 a
 * minute), and grants cover only a few ticks of demand anyway. */
#define GH_RATE_LEASE_TTL_MS 500
/* How often the thread draws for shares with demand (a kick draws at once). */
#define GH_RATE_LEASE_TICK_MS 50
/* Buckets per statement. */
#define GH_RATE_LEASE_BATCH 256

/* Turns rate shares on in `limits` (gh_limits_rate_shared) and starts the thread, drawing
 * through `store` (a PostgreSQL store). Call before the data plane starts. GH_ENOMEM,
 * GH_EINTERNAL (no thread), with a message. */
gh_err_t gh_rate_lease_start(gh_rate_lease_t **out, gh_limits_t *limits, gh_store_t *store,
                             char *err, size_t err_size);

/* Stops the thread (a draw under way finishes) and frees everything. Safe with NULL. Call
 * after the data plane has stopped. */
void gh_rate_lease_stop(gh_rate_lease_t *rl);

typedef struct gh_rate_lease_stats {
    uint64_t refills;        /* draw statements committed */
    uint64_t refill_failures;
    uint64_t buckets_drawn;  /* bucket rows drawn from, over all statements */
    uint64_t tokens_granted; /* requests and tokens, all kinds together */
    uint64_t short_grants;   /* buckets that gave less than wanted (the limit binding) */
    uint64_t kicks;
    int unavailable;         /* 1 while draws are failing */
} gh_rate_lease_stats_t;

void gh_rate_lease_stats(gh_rate_lease_t *rl, gh_rate_lease_stats_t *out);

#endif
