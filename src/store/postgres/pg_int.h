/* Internal to the PostgreSQL backend: the connection struct and the helpers every file of
 * src/store/postgres/ uses, and the declarations of its implementations of the store
 * operations (gh_pgs_<name> for each gh_store_<name> of store/ops.h). Nothing outside
 * src/store/postgres/ includes this but src/store/copy.c, for gh_pgs_db_borrow.
 *
 * How a port file is written (accounts.c is the model):
 *   - SQL text is a `static const char sql[]`; gh_pgs_query prepares it once per connection,
 *     keyed by the string's address, and runs it with text parameters ($1..$n).
 *   - Parameters are strings: gh_pgs_i64 formats a number into a gh_pgs_num_t the caller
 *     keeps on its stack, gh_pgs_text turns "" into SQL NULL (empty strings are NULL, as in
 *     SQLite), gh_pgs_bool gives "t"/"f".
 *   - Times: records carry int64 epoch seconds (some fields ms or us: check rows.h); SQL
 *     converts with GH_PGS_TIME_IN / GH_PGS_EPOCH and the _MS variants.
 *   - Results: gh_pgs_col_* read a PGresult; the caller PQclears it. GH_PGS_COPY as COPY.
 *   - Errors: every helper returns the store's codes (GH_ECONFLICT for a constraint,
 *     GH_EUNAVAIL for a lost connection or timeout, GH_ESTORE otherwise, logged).
 *   - Inside a transaction, a failed write does not poison the transaction: gh_pgs_query
 *     wraps INSERT/UPDATE/DELETE statements run at depth > 0 in a savepoint, so a caller may
 *     take GH_ECONFLICT and go on, as it can on SQLite. gh_pgs_query_fast skips that (for
 *     hot paths that abandon the transaction on any error, such as the usage writer).
 *
 * The table of operations: pgstore.c fills gh_postgres_ops from one X-macro per port file,
 * GH_PGS_OPS_<FILE>(X), defined below next to the declarations. A port file's owner adds its
 * operations' names to its own list here (in any order: designated initializers), and
 * nothing else in pgstore.c changes. An operation not yet in any list stays NULL, its
 * wrapper answers GH_EUNAVAIL, and `gatehouse serve` refuses the backend naming it. */
#ifndef GH_STORE_POSTGRES_PG_INT_H
#define GH_STORE_POSTGRES_PG_INT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/backend.h"
#include "store/identity.h"
#include "store/notify.h"
#include "store/postgres/pg.h"
#include "store/store.h"

#define GH_PGS_STMT_CACHE 256

/* While PostgreSQL cannot be reached, a thread tries to reconnect at most this often: the
 * pause starts at the minimum and doubles up to the maximum (pgstore.c, ready). */
#define GH_PGS_RECONNECT_MIN_MS 200
#define GH_PGS_RECONNECT_MAX_MS 2000

/* The key of the transaction-scoped advisory lock every write transaction takes at BEGIN
 * (distinct from the migrations lock): writers are serialized as SQLite serializes them. */
#define GH_PGS_WRITE_LOCK 29106784831108197 /* 0x67687772697465, "ghwrite" */
/* Lanes a minute rollup row may name (migration 0021's CHECK). */
#define GH_PGS_LANES_MAX 16

struct gh_pgs_store;

/* A connection: the generic head first, so a gh_db_t * of this backend is one of these. One
 * per thread, opened by gh_pgs_db and owned by the store (freed by gh_pgs_close). */
typedef struct gh_pgs_db {
    struct gh_db base;
    struct gh_pgs_store *store;
    gh_pg_conn_t *c; /* NULL while PostgreSQL cannot be reached */
    struct {
        const char *sql;
        bool prepared;
    } cache[GH_PGS_STMT_CACHE]; /* statement "s<i>" on this connection is cache[i].sql */
    int depth;                  /* transaction nesting: 0 none, 1 BEGIN, more are SAVEPOINTs */
    int64_t changes;            /* rows the last INSERT/UPDATE/DELETE changed */
    int64_t retry_at_ms;        /* monotonic: no reconnection attempt before this */
    int retry_ms;               /* the pause after the last failed attempt (0: none failed) */
    bool failed_on_data;        /* a statement since the outermost BEGIN failed on its values */
    int lane;                   /* the usage writer's lane whose minute rollups this writes */
    /* cluster.c: LISTEN and the leader lock belong to one session; `generation` counts the
     * sessions opened, so a reopened connection is known to have lost both. */
    unsigned generation, listen_generation, lead_generation;
    bool listening, leading;
    struct gh_pgs_db *next;     /* registry of every thread's connection */
} gh_pgs_db_t;

static inline gh_pgs_db_t *pgs(gh_db_t *db)
{
    return (gh_pgs_db_t *)db;
}

/* The backend's implementation of each store operation, checked against store/ops.h. */
#define GH_PGS_DECLARE(ret, name, params, args) ret gh_pgs_##name params;
GH_STORE_OPS_STORE(GH_PGS_DECLARE)
GH_STORE_OPS(GH_PGS_DECLARE)
#undef GH_PGS_DECLARE
gh_err_t gh_pgs_open(gh_store_t **out, const char *url, char *err, size_t err_size);

/* The node this store writes usage events as (gh_store_set_node_id; 'local' by default). */
const char *gh_pgs_node_id(gh_db_t *db);

/* ---- which operations each file implements (pgstore.c builds gh_postgres_ops) ---- */

/* pgstore.c */
#define GH_PGS_OPS_PGSTORE(X) \
    X(set_busy_timeout) X(set_statement_timeout) X(set_node_id) X(writer_lanes) X(close) X(db) X(migrate) X(schema_version) X(begin) X(commit) \
    X(set_writer_lane) X(begin_staged) X(lock_writes) \
    X(rollback) X(in_transaction) X(failed_on_data) X(changes)
/* accounts.c */
#define GH_PGS_OPS_ACCOUNTS(X) \
    X(link_insert) X(link_check) X(link_consume) X(account_get) X(account_by_email) \
    X(account_insert) X(account_onboard) X(session_insert) X(session_get) X(session_set_org) \
    X(session_revoke)
/* orgs.c */
#define GH_PGS_OPS_ORGS(X) \
    X(org_create) X(memberships) X(membership_get) X(membership_count) X(org_settings_get) \
    X(org_settings_put)
/* identity.c */
#define GH_PGS_OPS_IDENTITY(X) \
    X(oidc_state_insert) X(oidc_state_consume) X(oidc_state_purge) X(identity_get) \
    X(identity_insert) X(identity_touch) X(identities)
/* members.c, workspaces.c, keys.c, outbox.c (P2) */
#define GH_PGS_OPS_MEMBERS(X) \
    X(users_list) X(user_get) X(membership_insert) X(membership_set_role) \
    X(membership_delete) X(admin_count) X(invites_list) X(invite_get) X(invite_by_token) \
    X(invite_open_for) X(invite_insert) X(invite_renew) X(invite_mark)
#define GH_PGS_OPS_WORKSPACES(X) \
    X(workspaces_list) X(workspace_get) X(workspace_count) X(workspace_insert) \
    X(workspace_update) X(workspace_archive) X(ws_members_list) X(ws_member_get) \
    X(ws_member_insert) X(ws_member_set_role) X(ws_member_delete)
#define GH_PGS_OPS_KEYS(X) \
    X(keys_list) X(key_get) X(key_by_hash) X(key_insert) X(key_update) X(key_touch) X(keys_touch) \
    X(key_set_secret) X(workbench_key_get) X(workbench_key_set) X(keys_with_hash) \
    X(audit_insert) X(audit_list)
#define GH_PGS_OPS_OUTBOX(X) \
    X(outbox_add) X(outbox_claim) X(outbox_sent) X(outbox_failed) X(outbox_next_due) \
    X(outbox_release_claims)
/* billing.c, notify.c (P3) */
#define GH_PGS_OPS_BILLING(X) \
    X(billing_account_get) X(billing_account_ensure) X(billing_profile_put) \
    X(billing_auto_reload_put) X(billing_disarm) X(billing_rearm) X(billing_customer_ref_put) \
    X(billing_reload_due) X(billing_contacts) X(payment_method_current) X(payment_method_get) \
    X(payment_method_add) X(payment_method_by_ref) X(payment_methods_list) X(purchase_insert) \
    X(purchase_get) X(purchase_by_key) X(purchase_update) X(purchases_list) \
    X(purchases_pending) X(purchase_stats) X(lot_insert) X(lot_set_remaining) \
    X(lot_first_open) X(lots_open) X(lots_expired) X(ledger_append) X(usage_charge) \
    X(ledger_unallocated) \
    X(ledger_sums) X(invoice_years) X(invoice_next_seq) X(invoice_insert) X(invoice_get) \
    X(invoices_list) X(webhook_event_insert) X(webhook_event_exists)
#define GH_PGS_OPS_NOTIFY(X) \
    X(spend_notif_list) X(spend_notif_count) X(spend_notif_any) X(spend_notif_insert) X(spend_notif_get) \
    X(spend_notif_delete) X(spend_notif_mark) X(spend_notif_balance_set) X(spend_state_get) \
    X(spend_state_put) X(outbox_html_attach) X(outbox_html_get) X(outbox_html_delete)
/* limits.c, rollups.c, usage.c (P4) */
#define GH_PGS_OPS_LIMITS(X) \
    X(org_limits_get) X(org_limits_put) X(ws_limits_get) X(ws_limits_put) X(ws_limits_list) \
    X(org_ids) X(workspace_ids) X(ledger_max_id) X(ledger_balance_upto) \
    X(ledger_balances_upto) X(ledger_deltas) X(ledger_usage_since) X(purchase_totals) \
    X(usage_cost_since) X(limit_request_insert) X(limit_request_get) \
    X(limit_request_decide) X(limit_requests_list) X(staff_add) X(staff_remove) X(staff_is) \
    X(data_version) X(org_admin_emails) X(orgs_search)
#define GH_PGS_OPS_ROLLUPS(X) X(rollups_add_parts) X(rollups_prune) X(rollups_roll) X(usage_report)
#define GH_PGS_OPS_USAGE(X) X(usage_insert) X(usage_insert_batch) X(usage_max_seq)
/* leases.c (issue 14: cluster money) */
#define GH_PGS_OPS_LEASES(X) \
    X(lease_take) X(lease_settle) X(lease_return) X(leases_renew) X(lease_amount) \
    X(leases_sweep) X(usage_settle_workspaces) X(ws_lease_take) X(ws_lease_return) X(ws_leases_renew)
/* cluster.c */
#define GH_PGS_OPS_CLUSTER(X) \
    X(cluster_listen) X(cluster_wait) X(cluster_kick) X(cluster_changes) X(cluster_change_max) X(cluster_lead) \
    X(cluster_prune)

/* A handle of this backend on `c`, a connection someone else owns and has inside a
 * transaction (store copy's): the store's operations run on it as they would on a thread's
 * own, in that transaction; nothing reconnects. Give it back with gh_pgs_db_return, which
 * frees the handle and leaves `c` as it is (its statements prepared, the transaction open). */
gh_err_t gh_pgs_db_borrow(gh_pg_conn_t *c, gh_db_t **out);
void gh_pgs_db_return(gh_db_t *db);

/* rate.c (cluster rate leases) */
#define GH_PGS_OPS_RATE(X) X(rate_draw)

/* ---- statements ---- */

/* Runs the statement `sql` (static storage: prepared once per connection, keyed by its
 * address) with `n` text parameters ($1..$n; NULL is SQL NULL). With `res` non-NULL and
 * GH_OK, `*res` holds the result, which the caller PQclears; with `res` NULL the rows are
 * discarded. An INSERT, UPDATE or DELETE sets the count gh_pgs_changes reports (as
 * sqlite3_changes: a SELECT leaves it alone). A connection found broken outside a
 * transaction is reopened first; one that cannot be reopened gives GH_EUNAVAIL. */
gh_err_t gh_pgs_query(gh_db_t *db, const char *sql, int n, const char *const *params,
                      PGresult **res);

/* As gh_pgs_query but never wraps the statement in a savepoint: a failure inside a
 * transaction leaves it aborted, and the caller must roll back. */
gh_err_t gh_pgs_query_fast(gh_db_t *db, const char *sql, int n, const char *const *params,
                           PGresult **res);

/* As gh_pgs_query_fast (no savepoint) with every parameter in binary format: `params[i]`
 * is `lengths[i]` bytes in the type's send format (pg_array.h builds arrays). Used for the
 * usage writer's big array parameters, which the server then does not parse as text. Sets
 * gh_pgs_changes to the rows the statement touched. */
gh_err_t gh_pgs_query_binary(gh_db_t *db, const char *sql, int n, const char *const *params,
                             const int *lengths, PGresult **res);

/* Runs `sql`, a `COPY ... FROM STDIN`, with `data` (`len` bytes in the format the statement
 * names); no savepoint, as gh_pgs_query_fast. Sets gh_pgs_changes to the rows copied. */
gh_err_t gh_pgs_copy_in(gh_db_t *db, const char *sql, const char *data, size_t len);

/* As gh_pgs_query for SQL built at run time (not cached, not prepared). */
gh_err_t gh_pgs_query_dyn(gh_db_t *db, const char *sql, int n, const char *const *params,
                          PGresult **res);

/* Runs a statement that returns no rows. */
gh_err_t gh_pgs_exec(gh_db_t *db, const char *sql, int n, const char *const *params);

/* Runs a statement that must change exactly one row: GH_ENOTFOUND when it changed none. */
gh_err_t gh_pgs_exec_one(gh_db_t *db, const char *sql, int n, const char *const *params);

/* Runs a query and decodes its first row with `decode` (GH_OK), or GH_ENOTFOUND when it
 * returned none. */
typedef void (*gh_pgs_decode_fn)(const PGresult *res, int row, void *out);
gh_err_t gh_pgs_one(gh_db_t *db, const char *sql, int n, const char *const *params,
                    gh_pgs_decode_fn decode, void *out);

/* Runs a query and calls `fn(ctx, res, row)` for each row, in order. */
typedef void (*gh_pgs_row_fn)(void *ctx, const PGresult *res, int row);
gh_err_t gh_pgs_each(gh_db_t *db, const char *sql, int n, const char *const *params,
                     gh_pgs_row_fn fn, void *ctx);

/* ---- parameters ---- */

typedef struct gh_pgs_num {
    char s[24];
} gh_pgs_num_t;

/* `v` in decimal, in `buf` (which the caller keeps until the statement ran). */
const char *gh_pgs_i64(gh_pgs_num_t *buf, int64_t v);

/* `v`, or NULL (SQL NULL) for NULL or "". */
static inline const char *gh_pgs_text(const char *v)
{
    return v && *v ? v : NULL;
}

static inline const char *gh_pgs_bool(bool v)
{
    return v ? "t" : "f";
}

/* SQL for times: a parameter of epoch seconds (or ms) to timestamptz, and a timestamptz
 * column back to epoch seconds (or ms), NULL read as 0. Exact both ways, so a time
 * round-trips: milliseconds are split with integer division into whole seconds and the
 * remainder (never divided by 1000.0, which gives a binary fraction PostgreSQL then rounds);
 * to_timestamp of a whole number of seconds is exact (the microseconds it makes stay far
 * below 2^53 until after the year 9999), and so is a remainder of at most 999 times one
 * millisecond. Reading back, extract(epoch ...) is numeric (exact) since PostgreSQL 14. */
#define GH_PGS_TIME_IN(p) "to_timestamp(" p "::bigint)"
#define GH_PGS_TIME_IN_MS(p) \
    "(to_timestamp(" p "::bigint / 1000) + (" p "::bigint % 1000) * interval '1 millisecond')"
#define GH_PGS_EPOCH(col) "coalesce(floor(extract(epoch FROM " col "))::bigint, 0)"
#define GH_PGS_EPOCH_MS(col) "coalesce(floor(extract(epoch FROM " col ") * 1000)::bigint, 0)"

/* ---- results ---- */

/* Copies column `col` of `row` into `out` (truncated to `size`); NULL becomes "". */
void gh_pgs_col_text(const PGresult *res, int row, int col, char *out, size_t size);
/* The column as a number (NULL and junk are 0) or a boolean ("t"). */
int64_t gh_pgs_col_i64(const PGresult *res, int row, int col);
bool gh_pgs_col_bool(const PGresult *res, int row, int col);
bool gh_pgs_col_null(const PGresult *res, int row, int col);

#define GH_PGS_COPY(res, row, col, field) \
    gh_pgs_col_text((res), (row), (col), (field), sizeof(field))

/* ---- keyset pagination ---- */

#define GH_PGS_ARGS_MAX 16

/* Runs one page of a keyset-paginated list, in `seq` (insertion) order, or newest first:
 * gh_sqlite_page's semantics with the table's seq column in place of rowid. `from_where` is
 * "FROM <table> t ... WHERE ..." (the listed table aliased t, which has a seq column) with
 * `nargs` placeholders $1..$nargs bound from `args` (text; NULL is SQL NULL); `id_expr`
 * names the column a cursor id is matched against ("t.id"). Calls `fn` with each row of
 * "SELECT <cols> ..." in page order and sets `*has_more`. A cursor id not in the list is
 * GH_EINVAL. Only fixed SQL fragments may be passed as text: every value goes in `args`. */
gh_err_t gh_pgs_page(gh_db_t *db, const char *cols, const char *from_where,
                     const char *id_expr, const char *const *args, int nargs,
                     const gh_page_t *page, bool newest_first, gh_pgs_row_fn fn, void *ctx,
                     bool *has_more);

#endif
