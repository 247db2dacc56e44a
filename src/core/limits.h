/* Admission in memory: the prepaid hard cap, monthly spend limits and rate limits that every
 * model request passes before it is relayed, and the settlement that follows it.
 *
 * What is held, per organization: the balance, what in-flight requests have reserved from
 * it, the spend of the current UTC month, its own monthly limit and its tier's cap, and three
 * token buckets (requests, input tokens, output tokens per minute) per model class. Per
 * workspace: an optional lower monthly limit, its month's spend and reservations, and
 * optional lower buckets. Model classes are fixed when the engine is made (at most
 * GH_LIMITS_CLASSES_MAX, e.g. "small", "large"); models of one class share its limits.
 *
 * Who calls what: the control plane creates organizations and workspaces and publishes every
 * change (gh_limits_org_set, gh_limits_org_set_money, gh_limits_credit, gh_limits_ws_set ...)
 * after its own database commit; a change applies to the very next admission. The data
 * plane's loop threads call gh_limits_admit before relaying a request and gh_limits_settle
 * when its usage is known.
 *
 * Locking: organizations are spread over GH_LIMITS_SHARDS shards by a hash of their id, each
 * with one mutex; a workspace lives in the shard of its organization. One admission or
 * settlement holds one shard's mutex for a hash probe and a few integer operations (no
 * allocation, no system call, no I/O), so two loop threads contend only when they serve
 * organizations of the same shard at the same instant. Everything a decision reads and every
 * reservation it makes happen under that one mutex, which is what makes the hard cap hold
 * under any concurrency: two requests can never both see the same unreserved dollar.
 * Setters take the same mutex; they may allocate (a new organization or workspace, a table
 * growing) and run on the control plane only.
 *
 * Records are never freed before gh_limits_free: a forgotten organization is marked dead and
 * revived if it is set again, so a reservation handle (gh_limits_hold_t) can point at its
 * organization without a lookup, and a late settlement of a forgotten one is recognised by a
 * generation number and ignored. Memory grows with the number of ids ever set (about 0.7 KB
 * per organization or workspace with limits). */
#ifndef GH_CORE_LIMITS_H
#define GH_CORE_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/tiers.h"
#include "lib/bucket.h"
#include "lib/err.h"

#define GH_LIMITS_CLASSES_MAX 8
#define GH_LIMITS_CLASS_NAME_MAX 32 /* with its NUL, as gh_model_cfg_t.model_class */
#define GH_LIMITS_SHARDS 64

typedef struct gh_limits gh_limits_t;

/* Microseconds since the Unix epoch, UTC: bucket refill, the month spend belongs to and the
 * reset times in headers all come from it. Called once per admission and settlement, on the
 * caller's thread, outside any lock. */
typedef int64_t (*gh_limits_clock_fn)(void *ctx);

/* The wall clock (CLOCK_REALTIME, read through the vDSO: no system call). */
int64_t gh_limits_clock_real(void *ctx);

/* Makes an engine for the model classes `classes` (1 .. GH_LIMITS_CLASSES_MAX distinct names,
 * each shorter than GH_LIMITS_CLASS_NAME_MAX), reading time from `now_fn(clock_ctx)`.
 * GH_EINVAL for bad classes, GH_ENOMEM. */
gh_err_t gh_limits_new(gh_limits_t **out, const char *const *classes, size_t nclasses,
                       gh_limits_clock_fn now_fn, void *clock_ctx);

/* Frees everything; outstanding holds become invalid. Safe with NULL. */
void gh_limits_free(gh_limits_t *l);

/* The index of model class `name`, or -1. */
int gh_limits_class_index(const gh_limits_t *l, const char *name);

/* ---- Control plane ----------------------------------------------------------------------- */

/* An organization's limits. Rates are by class index (gh_limits_class_index); a zero field
 * means no limit of that kind. The effective monthly limit is the lower of the two that are
 * set: an organization's own limit can never lift it above its tier's cap. */
typedef struct gh_limits_org_cfg {
    int64_t monthly_limit_nusd; /* the organization's own limit; 0 = none */
    int64_t tier_cap_nusd;      /* its tier's monthly cap; 0 = none (custom tiers) */
    gh_rate_limits_t rates[GH_LIMITS_CLASSES_MAX];
} gh_limits_org_cfg_t;

/* Fills `cfg`'s tier cap and every class's rates from `tier`; the organization's own monthly
 * limit is left as it is. Custom tiers have no cap and no rates: staff fill them in. */
void gh_limits_org_cfg_tier(gh_limits_org_cfg_t *cfg, const gh_tier_t *tier);

/* Creates organization `org_id` with `cfg` (balance and month spend 0), or changes the limits
 * of a known one, live: its balance, spend and reservations stay, and each bucket keeps what
 * was used in the current minute (gh_bucket_set_limit). GH_EINVAL for a bad id or negative or
 * too large (> GH_BUCKET_LIMIT_MAX) values, GH_ENOMEM. */
gh_err_t gh_limits_org_set(gh_limits_t *l, const char *org_id, const gh_limits_org_cfg_t *cfg);

/* Sets a known organization's balance and the spend of month `month_key` (YYYYMM, UTC;
 * gh_utc_month_key) as read from the database: at start, or when reconciling while none of
 * its requests is in flight. In-flight reservations are kept. GH_ENOTFOUND, GH_EINVAL. */
gh_err_t gh_limits_org_set_money(gh_limits_t *l, const char *org_id, int64_t balance_nusd,
                                 int32_t month_key, int64_t month_spent_nusd);

/* Adds `delta_nusd` (negative to take away: expired lots, refunds) to a known organization's
 * balance. Purchases and grants go through here while requests are in flight, since an
 * absolute balance read from the database would miss charges not yet written. GH_ENOTFOUND. */
gh_err_t gh_limits_credit(gh_limits_t *l, const char *org_id, int64_t delta_nusd);

/* Drops an organization and its workspaces: its admissions fail with GH_ENOTFOUND and the
 * settlements of requests still in flight are ignored. GH_ENOTFOUND when not known. */
gh_err_t gh_limits_org_forget(gh_limits_t *l, const char *org_id);

/* A workspace's own limits, each applying on top of its organization's (so only a lower one
 * makes a difference). Zero means none. */
typedef struct gh_limits_ws_cfg {
    int64_t monthly_limit_nusd;
    gh_rate_limits_t rates[GH_LIMITS_CLASSES_MAX];
} gh_limits_ws_cfg_t;

/* Creates or changes workspace `ws_id` of known organization `org_id`, live (as
 * gh_limits_org_set). A workspace without a record is admitted on its organization's limits
 * alone, and its spend is not counted. Workspaces are found by organization and id, so a
 * key can never reach another organization's workspace. GH_ENOTFOUND (no such
 * organization), GH_EINVAL, GH_ENOMEM. */
gh_err_t gh_limits_ws_set(gh_limits_t *l, const char *org_id, const char *ws_id,
                          const gh_limits_ws_cfg_t *cfg);

/* Sets a known workspace's spend of month `month_key`, as read from the database. */
gh_err_t gh_limits_ws_set_spend(gh_limits_t *l, const char *org_id, const char *ws_id,
                                int32_t month_key, int64_t month_spent_nusd);

/* Drops a workspace (its organization stays). GH_ENOTFOUND when not known. */
gh_err_t gh_limits_ws_forget(gh_limits_t *l, const char *org_id, const char *ws_id);

/* ---- Data plane -------------------------------------------------------------------------- */

typedef enum {
    GH_LIMIT_REQUESTS,
    GH_LIMIT_INPUT_TOKENS,
    GH_LIMIT_OUTPUT_TOKENS,
    GH_LIMIT_KINDS
} gh_limit_kind_t;

typedef struct gh_admit_req {
    const char *org_id;
    const char *workspace_id;   /* NULL or "" when the key has none */
    const char *model_class;    /* one of the engine's classes */
    int64_t input_tokens_bound; /* taken from the input buckets, corrected at settlement */
    int64_t max_output_tokens;  /* taken from the output buckets, corrected at settlement */
    int64_t worst_cost_nusd;    /* an upper bound of the cost; reserved until settlement */
    int64_t lease_wait_since_us; /* leases: when this request began waiting (0: it has not) */
} gh_admit_req_t;

typedef enum {
    GH_ADMIT_OK,
    GH_ADMIT_NO_CREDIT,          /* worst cost > balance - reserved */
    GH_ADMIT_ORG_MONTHLY_LIMIT,  /* month spend + reserved + worst cost > effective limit */
    GH_ADMIT_WS_MONTHLY_LIMIT,   /* the same against the workspace's limit */
    GH_ADMIT_RATE_LIMITED,       /* a bucket is short */
    GH_ADMIT_LEASE_LAPSED,       /* cluster: no valid lease and the database is unreachable */
    GH_ADMIT_DECISIONS
} gh_admit_decision_t;

/* One rate-limit header group. `limit` 0: no limit of that kind applies (no headers). */
typedef struct gh_limits_window {
    int64_t limit;        /* per minute */
    int64_t remaining;    /* whole tokens (requests) there now */
    int64_t reset_unix_s; /* when the bucket will be full again, rounded up to a second */
} gh_limits_window_t;

/* What the response headers report: per kind, the binding bucket (the organization's or the
 * workspace's, whichever has less left); `tokens` is input and output together (limits and
 * remainders added, the later reset). */
typedef struct gh_limits_report {
    gh_limits_window_t requests, input_tokens, output_tokens, tokens;
} gh_limits_report_t;

/* What an admitted request holds until it is settled. Plain data the caller keeps by value
 * (in its request context); it stays valid until settled, even if the organization is
 * forgotten meanwhile. */
typedef struct gh_limits_hold {
    struct gh_limits_org *org;
    struct gh_limits_ws *ws; /* NULL: no workspace record */
    uint32_t org_gen, ws_gen;
    int class_index;
    int64_t cost_nusd; /* reserved from the balance and both month limits */
    /* Tokens taken from the buckets, [organization, workspace][input, output]; -1 where the
     * bucket had no limit. A take never exceeds the bucket's capacity (see gh_limits_admit). */
    int64_t taken[2][2];
    bool held; /* set by an admission; cleared by the settlement */
} gh_limits_hold_t;

typedef struct gh_admit {
    gh_admit_decision_t decision;
    int class_index;
    /* GH_ADMIT_RATE_LIMITED: the bucket with the longest wait, whose it is and its limit. */
    gh_limit_kind_t limited_kind;
    bool limited_by_workspace;
    int64_t limited_per_min;
    int64_t retry_after_s; /* whole seconds, rounded up, >= 1 */
    /* GH_ADMIT_*_MONTHLY_LIMIT: the limit reached and when the month rolls over. */
    int64_t monthly_limit_nusd;
    int64_t regain_unix_s;
    /* Leases on, refused for money while a refill may come (the lease thread was asked, and
     * no ask sent since the request began waiting got nothing): the caller may try again in a
     * few ms, passing lease_wait_since_us. */
    bool lease_wait;
    int64_t lease_wait_since_us; /* what to pass in gh_admit_req_t when trying again */
    bool lease_unanswered; /* no ask sent since it began waiting was answered by the database */
    gh_limits_report_t report; /* for every decision */
    gh_limits_hold_t hold;     /* GH_ADMIT_OK only */
    /* Rate shares (cluster mode, see the end of this file): GH_ADMIT_RATE_LIMITED only because
     * this node's share of a cluster-wide bucket is short while that bucket is not known to be
     * empty; a draw has been asked for, so the caller may admit again in a few milliseconds
     * instead of refusing. */
    bool rate_pending;
    /* ... and, rate_pending cleared, because draws are failing (the database cannot be
     * reached): gh_limits_refusal then answers GH_EUNAVAIL (529 overloaded_error). */
    bool rate_unavailable;
} gh_admit_t;

/* Decides whether a request may go ahead and, if it may, reserves for it, atomically:
 * 1. credit: worst_cost_nusd must fit in balance - reserved (a balance of $1 can never have
 *    more than $1 reserved or charged, whatever the concurrency);
 * 2. the organization's effective monthly limit, then the workspace's: month spend +
 *    reserved + worst cost must fit (the month rolls over at 00:00 UTC on the 1st);
 * 3. every bucket of the class, the organization's and the workspace's: 1 request,
 *    input_tokens_bound input tokens and max_output_tokens output tokens, all or nothing.
 *    A take larger than a bucket's capacity is cut to the capacity, so a request with
 *    max_tokens above the OTPM limit waits for a full bucket instead of never passing; the
 *    rest is charged at settlement.
 * The first check that fails is the decision; nothing is taken or reserved unless all pass.
 * The report is filled for every decision. Returns GH_OK with a decision, GH_ENOTFOUND for an
 * unknown organization, GH_EINVAL for an unknown class or negative amounts (the decision is
 * then GH_ADMIT_NO_CREDIT, failing closed). Never allocates; no system call but the clock. */
gh_err_t gh_limits_admit(gh_limits_t *l, const gh_admit_req_t *req, gh_admit_t *out);

/* Ends what `hold` reserved, once the request's usage is known (or with zeros when it failed
 * before any). Under the organization's mutex: the reservation is released; the actual cost
 * is subtracted from the balance and added to the month spend of the organization and the
 * workspace; each token bucket gets back what was taken but not used, or is charged what was
 * used beyond what was taken (it may then go into debt, never more than one capacity: see
 * gh_bucket_charge). The cost is charged in full even if it exceeds the reservation (the
 * ledger is the truth); that would mean worst_cost_nusd was not an upper bound, and is
 * counted in the stats as an overrun. Clears hold->held. GH_EINVAL when nothing is held
 * (never admitted, or settled already); GH_ENOTFOUND when the organization was forgotten
 * meanwhile (nothing is charged). */
gh_err_t gh_limits_settle(gh_limits_t *l, gh_limits_hold_t *hold, int64_t actual_input_tokens,
                          int64_t actual_output_tokens, int64_t actual_cost_nusd);

/* Counts the cost of a request that did not go through gh_limits_admit (admission turned off
 * by configuration): subtracted from the organization's balance and added to its month spend
 * and to that of workspace `ws_id` (NULL or "": none) when the workspace has a record, so
 * that what the console shows stays true. No buckets are touched. GH_ENOTFOUND. */
gh_err_t gh_limits_record(gh_limits_t *l, const char *org_id, const char *ws_id,
                          int64_t cost_nusd);

/* The report an admission of `model_class` would carry now, taking nothing (console pages).
 * GH_ENOTFOUND, GH_EINVAL. */
gh_err_t gh_limits_peek(gh_limits_t *l, const char *org_id, const char *ws_id,
                        const char *model_class, gh_limits_report_t *out);

/* ---- Answers ----------------------------------------------------------------------------- */

/* Room for any message gh_limits_refusal writes. */
#define GH_LIMITS_MSG_MAX 320

/* For a refused admission: the error to answer with (GH_EINVAL, i.e. 400
 * invalid_request_error, for credit and monthly limits; GH_ERATE, i.e. 429 rate_limit_error,
 * for rate limits; GH_EUNAVAIL, i.e. 529 overloaded_error, for a lapsed lease) and the message for the client in `msg`. GH_OK for an admitted one. */
gh_err_t gh_limits_refusal(const gh_limits_t *l, const gh_admit_t *a, char *msg,
                           size_t msg_size);

/* The anthropic-ratelimit-* headers (and retry-after when rate limited). */
#define GH_LIMITS_HEADERS_MAX 13
#define GH_LIMITS_VALUE_MAX 24

typedef struct gh_limits_header {
    const char *name; /* static */
    size_t name_len;
    const char *value; /* into the gh_limits_headers_t it is part of */
    size_t value_len;
} gh_limits_header_t;

typedef struct gh_limits_headers {
    size_t count;
    gh_limits_header_t h[GH_LIMITS_HEADERS_MAX];
    char values[GH_LIMITS_HEADERS_MAX][GH_LIMITS_VALUE_MAX];
} gh_limits_headers_t;

/* Writes the headers for `a` into `out` (values point into `out`, so do not copy it) and
 * returns their number: -limit, -remaining and -reset (RFC 3339 UTC, e.g.
 * 2026-11-25T12:00:00Z) for requests, input-tokens, output-tokens and tokens wherever a limit
 * applies, and retry-after (seconds) when rate limited. No allocation, no lock. */
size_t gh_limits_format_headers(const gh_admit_t *a, gh_limits_headers_t *out);

/* ---- Cluster money: leases (used by core/lease.c; see lease.h) -------------------------- *
 *
 * On a cluster (a PostgreSQL store shared by several nodes) an organization's balance in this
 * engine is this node's LEASE: the money the database has set aside for this node to spend
 * without asking (core/lease.h). The lease thread credits it with gh_limits_credit when a
 * lease grows and takes unreserved money back with gh_limits_withdraw when it returns some.
 * Admission stays what it is (worst cost <= balance - reserved, under the shard mutex), plus a
 * fence: an organization is admitted only while the engine's clock is before its lease
 * deadline (gh_limits_lease_set), so a node whose lease may have been taken back by the
 * database stops spending it. Nothing here does I/O: a refusal or a lease running low only
 * marks the organization as wanting money and calls the wake function given to
 * gh_limits_leases_on, outside the mutex. */

/* Called (outside any lock, on a loop thread) when an organization wants its lease refilled:
 * must not block (signal a condition variable, nothing more). */
typedef void (*gh_limits_want_fn)(void *ctx);

/* Turns leases on for the whole engine (before any admission): every organization is fenced
 * (deadline 0: nothing admitted until gh_limits_lease_set gives it a lease) and refusals for
 * money call `want_fn(ctx)`. */
void gh_limits_leases_on(gh_limits_t *l, gh_limits_want_fn want_fn, void *ctx);

/* Whether the database is unreachable now: a fenced organization is then refused with
 * GH_ADMIT_LEASE_LAPSED (529) instead of GH_ADMIT_NO_CREDIT. */
void gh_limits_set_db_down(gh_limits_t *l, bool down);

/* Sets a known organization's lease fence: admissions pass only while now < deadline_us (the
 * engine's clock); below `low_nusd` of unreserved balance an admission asks for a refill;
 * `month_bound` says that what the database could lease was bounded by the monthly limit (a
 * refusal for money is then reported as GH_ADMIT_ORG_MONTHLY_LIMIT with `limit_nusd`);
 * `dry_at_us` (0: none) is when the last ask that got nothing was sent: a request that has
 * waited since before then is refused without waiting more (gh_admit_t.lease_wait);
 * `answered_at_us` when the last ask the database answered (whatever it gave) was sent.
 * GH_ENOTFOUND. */
gh_err_t gh_limits_lease_set(gh_limits_t *l, const char *org_id, int64_t deadline_us,
                             int64_t low_nusd, bool month_bound, int64_t limit_nusd,
                             int64_t dry_at_us, int64_t answered_at_us);

/* Takes back, atomically under the organization's mutex, up to `max_nusd` of what is not
 * reserved (balance - reserved, if positive) from its balance. `*taken` is what was taken
 * (0..max), `*reserved` what in-flight requests hold after it. GH_ENOTFOUND. */
gh_err_t gh_limits_withdraw(gh_limits_t *l, const char *org_id, int64_t max_nusd,
                            int64_t *taken, int64_t *reserved);

/* What the lease thread reads of one organization. `worst_nusd` is the largest worst case an
 * admission asked for since the last read with `reset_worst` (then set back to 0). */
typedef struct gh_limits_lease_state {
    int64_t balance_nusd, reserved_nusd, in_flight;
    uint64_t admitted;     /* admissions ever */
    int64_t spent_nusd;    /* settled costs ever */
    int64_t worst_nusd;
    int64_t deadline_us;
    int64_t monthly_limit_nusd; /* gh_limits_ws_lease_get: the workspace's limit (0: none) */
} gh_limits_lease_state_t;

gh_err_t gh_limits_lease_get(gh_limits_t *l, const char *org_id, bool reset_worst,
                             gh_limits_lease_state_t *out);

/* Calls `fn(ctx, org_id)` for each organization that asked for money since the last call
 * (and clears the asks); outside the engine's mutexes. */
typedef void (*gh_limits_org_fn)(void *ctx, const char *org_id);
void gh_limits_lease_wants(gh_limits_t *l, gh_limits_org_fn fn, void *ctx);

/* ---- Cluster money: workspace leases (core/lease.c) ------------------------------------- *
 * With leases on, a workspace with a monthly limit is admitted only within this node's lease
 * of the workspace's monthly headroom as well as within the organization's lease: a request
 * is refused with GH_ADMIT_WS_MONTHLY_LIMIT (lease_wait set while a refill may come, as for
 * the organization) when the workspace's lease is fenced (now >= its deadline) or its
 * unreserved part is below the worst cost. Settlement takes the actual cost off the lease.
 * The functions below are the organization's lease functions for one workspace; GH_ENOTFOUND
 * when the workspace has no record. A workspace record that is revived starts with no lease. */
gh_err_t gh_limits_ws_lease_set(gh_limits_t *l, const char *org_id, const char *ws_id,
                                int64_t deadline_us, int64_t low_nusd, int64_t dry_at_us,
                                int64_t answered_at_us);
gh_err_t gh_limits_ws_lease_credit(gh_limits_t *l, const char *org_id, const char *ws_id,
                                   int64_t delta_nusd);
gh_err_t gh_limits_ws_lease_withdraw(gh_limits_t *l, const char *org_id, const char *ws_id,
                                     int64_t max_nusd, int64_t *taken, int64_t *reserved);
gh_err_t gh_limits_ws_lease_get(gh_limits_t *l, const char *org_id, const char *ws_id,
                                bool reset_worst, gh_limits_lease_state_t *out);
typedef void (*gh_limits_ws_want_fn)(void *ctx, const char *org_id, const char *ws_id);
void gh_limits_ws_lease_wants(gh_limits_t *l, gh_limits_ws_want_fn fn, void *ctx);

/* ---- Inspection -------------------------------------------------------------------------- */

typedef struct gh_limits_org_state {
    int64_t balance_nusd;
    int64_t reserved_nusd;
    int32_t month_key; /* the current month (a past month's spend reads as 0) */
    int64_t month_spent_nusd;
    int64_t monthly_limit_nusd; /* effective: the lower of its own and its tier's; 0 = none */
    int64_t in_flight;          /* admitted and not yet settled */
} gh_limits_org_state_t;

typedef struct gh_limits_ws_state {
    int64_t reserved_nusd;
    int32_t month_key;
    int64_t month_spent_nusd;
    int64_t monthly_limit_nusd;
    int64_t in_flight;
} gh_limits_ws_state_t;

gh_err_t gh_limits_org_get(gh_limits_t *l, const char *org_id, gh_limits_org_state_t *out);
gh_err_t gh_limits_ws_get(gh_limits_t *l, const char *org_id, const char *ws_id,
                          gh_limits_ws_state_t *out);

typedef struct gh_limits_stats {
    uint64_t orgs, workspaces; /* live ones */
    uint64_t admitted, settled;
    uint64_t refused[GH_ADMIT_DECISIONS]; /* by decision; [GH_ADMIT_OK] stays 0 */
    uint64_t overruns;                    /* settlements that cost more than was reserved */
    int64_t overrun_nusd;
} gh_limits_stats_t;

/* Sums the counters of every shard (takes each shard's mutex in turn). */
void gh_limits_stats(gh_limits_t *l, gh_limits_stats_t *out);

/* ---- Rate shares (cluster mode; core/rate_lease.h draws them) ---------------------------- *
 *
 * With several nodes on one database, a bucket's limit holds cluster-wide: the bucket itself
 * lives in the database, and a node admits from a bucket only what it holds of it, its share.
 * A share is made of grants drawn from the cluster's bucket by the lease thread, each spendable
 * until `ttl_us` after the draw began and never after (what is left lapses; it is not given
 * back). Takes, give-backs and charges at settlement work on the share as on the local bucket,
 * which is still checked too (no node alone passes the limit). Admission stays in memory: a
 * share found short records the demand and asks for a draw (the kick), and the admission is
 * refused with rate_pending set unless the cluster's bucket was found empty at the last draw.
 *
 * The bound: the cluster's bucket holds at most gh_limits_rate_central_capacity(L, ttl) and
 * refills L per minute, so in any minute the cluster admits at most that capacity, plus L,
 * plus L * ttl / 60 s (grants drawn before the minute and spent in it), which the capacity
 * leaves room for: never more than 2L, the limit plus one bucket's capacity, however many
 * nodes there are.
 *
 * While draws fail (the database away), a share found short is served by a safe local share
 * instead: a bucket per share, empty when the draws began failing, refilled at C / N a minute
 * with a capacity of C / N (C the cluster's capacity, N the nodes that held money leases in the
 * minute before the node's last successful draw, seen less than GH_LIMITS_RATE_NODES_FRESH_US
 * before the outage; no N, no safe share). What it admits is owed to the cluster's bucket (the
 * share's debt, at most C), so the first grants after the outage pay it first. The bound still
 * holds: a minute that begins before the outage sees at most the central part up to the
 * outage (C + L x (minute before it + ttl) / 60 s) and the safe shares after it, empty at its
 * start, at most L x (the rest of the minute) / 60 s, so 2L in all; a minute that ends after
 * the outage sees at most N x C / N + L x (its part in the outage) / 60 s from the safe shares,
 * and from the cluster's bucket what it holds once the debts are paid plus L x (the rest) /
 * 60 s, so again at most 2L (docs/architecture.md works it through). */

/* How recent the last successful draw's N must be, at the outage's start, for a safe share. */
#define GH_LIMITS_RATE_NODES_FRESH_US (60 * INT64_C(1000000))

/* Rate shares on, before the data plane starts. `kick(kick_ctx)` is called on the admitting
 * thread, after its shard's lock is released, when a share was found short. */
void gh_limits_rate_shared(gh_limits_t *l, int64_t ttl_us, void (*kick)(void *ctx),
                           void *kick_ctx);

/* The capacity of the cluster's bucket for a limit of `limit_per_min` and grants that live
 * `ttl_us`: L - floor(L * ttl / 60 s), at least 1 (see the bound above). */
int64_t gh_limits_rate_central_capacity(int64_t limit_per_min, int64_t ttl_us);

#define GH_LIMITS_ID_MAX 48 /* as GH_ID_MAX */

/* A share that needs a draw: which bucket, how many tokens would serve its recent demand
 * (`want`), and the fewest worth drawing (`want_min`: the largest take refused for want of
 * tokens; a grant below it would only lapse). */
typedef struct gh_limits_rate_need {
    struct gh_limits_org *org;
    struct gh_limits_ws *ws; /* NULL: the organization's own bucket */
    uint32_t gen;
    int class_index;
    gh_limit_kind_t kind;
    char org_id[GH_LIMITS_ID_MAX];
    char ws_id[GH_LIMITS_ID_MAX]; /* "" for the organization's bucket */
    const char *class_name;       /* the engine's, static while it lives */
    int64_t limit_per_min;
    int64_t capacity; /* gh_limits_rate_central_capacity */
    int64_t want, want_min;
    /* Tokens this share gives back to the cluster's bucket (taken out of the share already):
     * grants about to lapse unused, or all of an idle share's. */
    int64_t give_back;
} gh_limits_rate_need_t;

/* Fills up to `max` needs: every share with demand since its last draw (tokens taken, or
 * refused for want of a share) whose tokens no longer cover that demand, unless the cluster's
 * bucket is known to be short, wants twice the demand (resetting it); and every share with
 * tokens to give back (see give_back). Returns how many, and in `*now_us` the engine's time
 * before it looked (the start of the draw that follows, for gh_limits_rate_grant). */
size_t gh_limits_rate_needs(gh_limits_t *l, gh_limits_rate_need_t *out, size_t max,
                            int64_t *now_us);

/* Whether draws are failing (the lease thread could not reach the database): while they are,
 * a short share is served by its safe local share (above) if that has the tokens, and is
 * otherwise refused as unavailable, not as pending. The outage begins (the safe shares start
 * empty) at the engine's time of the first call with `unavailable` after one without. Called
 * by one thread only. */
void gh_limits_rate_unavailable(gh_limits_t *l, bool unavailable);

/* Records N, the nodes that may admit at once (from a successful draw: gh_store_rate_draw's
 * `nodes`), and when it was seen. `nodes` <= 0 is ignored. Called by one thread only. */
void gh_limits_rate_nodes(gh_limits_t *l, int64_t nodes);

/* Adds a grant of `granted` tokens (drawn for `need` in a transaction begun at `t0_us` on the
 * engine's clock) to the share: it first pays the share's debt, and is spendable until
 * t0_us + ttl. A grant below need->want marks the cluster's bucket dry for the time it needs
 * to refill the difference (at most a second): short shares are then refused at once. A
 * record forgotten meanwhile is left alone. */
void gh_limits_rate_grant(gh_limits_t *l, const gh_limits_rate_need_t *need, int64_t granted,
                          int64_t t0_us);

/* The tokens of the shares of a bucket that this node may spend now (for tests). */
int64_t gh_limits_rate_share(gh_limits_t *l, const char *org_id, const char *ws_id,
                             const char *model_class, gh_limit_kind_t kind);

#endif
