/* Persistence. This header (with store/identity.h) is the whole interface the rest of the
 * program sees; SQL lives only in the backends, each a folder of its own (src/store/sqlite/
 * now; src/store/postgres/ implements the same operations). Each call goes to its handle's
 * backend through the table of operations generated from src/store/ops.h (src/store/store.c).
 * The store knows rows and transactions, not business rules: callers validate and decide,
 * the store records.
 *
 * Threads: each thread gets its own connection (gh_store_db), opened on first use and kept
 * for the thread's life. A function that writes several rows wraps them in one transaction
 * itself; callers that need a larger unit use gh_store_begin/commit/rollback around calls.
 *
 * The records these functions read and write are declared in store/rows.h. */
#ifndef GH_STORE_STORE_H
#define GH_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "store/rows.h"

typedef struct gh_store gh_store_t;
typedef struct gh_db gh_db_t;

/* Opens the store at `location` and applies pending migrations. `location` is "sqlite:PATH"
 * or a bare PATH: the SQLite database there, created if needed, in WAL mode with foreign keys
 * on. A scheme this build has no backend for is GH_EINVAL. On failure writes a message into
 * `err`. */
gh_err_t gh_store_open(gh_store_t **out, const char *location, char *err, size_t err_size);

/* Whether the store's backend implements every operation; if not, `*missing_op` (may be
 * NULL) receives the name of the first one it lacks (NULL when complete). A call to a missing
 * operation answers GH_EUNAVAIL, so `serve` refuses an incomplete backend up front. */
bool gh_store_ops_complete(const gh_store_t *store, const char **missing_op);

/* The store's backend: "sqlite". */
const char *gh_store_backend(const gh_store_t *store);

/* How long a statement waits for another writer's lock before it fails with GH_EUNAVAIL:
 * 10 s unless set. Applies to connections opened afterwards (each thread's first
 * gh_store_db) and to the calling thread's own. */
void gh_store_set_busy_timeout(gh_store_t *store, int timeout_ms);

/* The longest a statement may run before the database cancels it (it then fails with
 * GH_EUNAVAIL, and the console answers 503): PostgreSQL's statement_timeout, 30 s unless set.
 * Applies as gh_store_set_busy_timeout does. SQLite has no such limit (its statements wait
 * only for locks, which the busy timeout bounds): there it does nothing. */
void gh_store_set_statement_timeout(gh_store_t *store, int timeout_ms);

/* The node whose usage events this process writes (core/cluster.h): PostgreSQL keys them by
 * (node_id, journal_seq), and gh_store_usage_max_seq reads this node's. 'local' unless set.
 * SQLite holds one node's events and ignores it. Call before other threads use the store. */
void gh_store_set_node_id(gh_store_t *store, const char *node_id);

/* Closes every thread's connection. No thread may use the store afterwards. */
void gh_store_close(gh_store_t *store);

/* The calling thread's connection, opened on first use; NULL if it cannot be opened (the
 * reason is logged). */
gh_db_t *gh_store_db(gh_store_t *store);

/* Applies migrations not yet recorded in schema_migrations, each in its own transaction;
 * `applied` (may be NULL) receives how many ran. Migrations are the embedded
 * NNNN_name.sql files of the backend (src/store/sqlite/migrations/), applied in order. */
gh_err_t gh_store_migrate(gh_db_t *db, int *applied, char *err, size_t err_size);

/* The highest migration version recorded, or 0. */
int gh_store_schema_version(gh_db_t *db);

/* Transactions. begin takes the write lock at once (SQLite: BEGIN IMMEDIATE), so a
 * transaction never fails half-way for lock upgrades. They nest: inside a transaction,
 * begin/commit/rollback work on a savepoint, so a function that writes several rows
 * atomically can also be part of a caller's larger unit. */
gh_err_t gh_store_begin(gh_db_t *db);
gh_err_t gh_store_commit(gh_db_t *db);
void gh_store_rollback(gh_db_t *db);

/* The usage writer's lanes (core/usage.c). A backend whose writers can overlap keeps several
 * of the writer's transactions in flight: each on a connection of its own (a thread's), each
 * with a lane number of its own, 0 .. lanes - 1. Such a transaction is begun staged: its
 * first part (the events, their minute rollups) runs without the write lock, so it overlaps
 * the previous transaction's second part; gh_store_lock_writes then takes the lock for the
 * rest (the ledger draws, the hour and day rollups, the keys' last use). Nothing the first
 * part writes is written by another lane or node: events are keyed by node and journal
 * sequence, and minute rollup rows by node and lane (gh_store_set_writer_lane), so a lane
 * never waits on another's rows while that one waits for the lock.
 *   SQLite: one lane; begin_staged is gh_store_begin, lock_writes does nothing.
 *   PostgreSQL: two lanes; begin_staged runs BEGIN alone, lock_writes takes the
 *   transaction-scoped write lock gh_store_begin takes at once. */
int gh_store_writer_lanes(gh_store_t *store);
/* Sets the lane whose minute rollup rows this connection writes (0 until set), for every
 * transaction on it, staged or not. */
void gh_store_set_writer_lane(gh_db_t *db, int lane);
/* Begins an outermost transaction without the write lock (see above); only the events'
 * inserts and minute rollups may run before gh_store_lock_writes. */
gh_err_t gh_store_begin_staged(gh_db_t *db);
gh_err_t gh_store_lock_writes(gh_db_t *db);

/* True while `db` is inside gh_store_begin (at any depth). */
bool gh_store_in_transaction(const gh_db_t *db);

/* Whether a statement run on `db` since the outermost gh_store_begin failed because of the
 * values it was given: a constraint or check violation, or a value its column cannot hold
 * (PostgreSQL's SQLSTATE classes 23 and 22; SQLite's CONSTRAINT, MISMATCH, TOOBIG and RANGE
 * results). Running the same statements again can never succeed. False when every failure
 * was the database's own (unreachable, locked, timed out, full), which may pass. Ask before
 * gh_store_rollback; the next outermost gh_store_begin forgets it. */
bool gh_store_failed_on_data(const gh_db_t *db);

/* Sign-in links. */
gh_err_t gh_store_link_insert(gh_db_t *db, const char *token_hash, const char *email,
                              const char *ip, int64_t now, int64_t expires_at);
/* Whether a link can still be used, without using it: GH_OK, or the errors of
 * gh_store_link_consume. */
gh_err_t gh_store_link_check(gh_db_t *db, const char *token_hash, int64_t now);
/* Marks the link used and writes its email into `email_out`. GH_ENOTFOUND for an unknown
 * hash, GH_ECONFLICT for a link already used, GH_EEXPIRED for one past its expiry (an
 * expired link is left unused). */
gh_err_t gh_store_link_consume(gh_db_t *db, const char *token_hash, int64_t now,
                               char email_out[GH_EMAIL_MAX]);

/* Accounts. */
gh_err_t gh_store_account_get(gh_db_t *db, const char *id, gh_account_t *out);
gh_err_t gh_store_account_by_email(gh_db_t *db, const char *email, gh_account_t *out);
gh_err_t gh_store_account_insert(gh_db_t *db, const gh_account_t *a);
gh_err_t gh_store_account_onboard(gh_db_t *db, const char *id, const char *full_name,
                                  const char *terms_version, int64_t now);

/* Sessions, found by the hash of their secret. get returns GH_ENOTFOUND for unknown, revoked
 * and expired sessions alike. */
gh_err_t gh_store_session_insert(gh_db_t *db, const gh_session_t *s, const char *ip,
                                 const char *user_agent);
gh_err_t gh_store_session_get(gh_db_t *db, const char *id_hash, int64_t now, gh_session_t *out);
gh_err_t gh_store_session_set_org(gh_db_t *db, const char *id_hash, const char *org_id);
gh_err_t gh_store_session_revoke(gh_db_t *db, const char *id_hash, int64_t now);

/* Organizations. Creates the organization, the creator's admin membership and the Default
 * workspace in one transaction. */
gh_err_t gh_store_org_create(gh_db_t *db, const char *org_id, const char *name,
                             const char *account_id, const char *workspace_id,
                             const char *workspace_color, int64_t now);

/* Calls `fn` for each organization `account_id` belongs to, oldest membership first. */
gh_err_t gh_store_memberships(gh_db_t *db, const char *account_id, gh_store_membership_fn fn,
                              void *ctx);
gh_err_t gh_store_membership_get(gh_db_t *db, const char *org_id, const char *account_id,
                                 gh_membership_t *out);
gh_err_t gh_store_membership_count(gh_db_t *db, const char *account_id, int *count);

gh_err_t gh_store_org_settings_get(gh_db_t *db, const char *org_id, gh_org_settings_t *out);
gh_err_t gh_store_org_settings_put(gh_db_t *db, const gh_org_settings_t *s);

/* ---- organization members ---- */

/* Members of `org_id` in the order they joined; `email` (may be NULL) filters. GH_EINVAL for a
 * cursor id that is not in the list. `*has_more` tells whether items lie past the page. */
gh_err_t gh_store_users_list(gh_db_t *db, const char *org_id, const char *email,
                             const gh_page_t *page, gh_store_user_fn fn, void *ctx,
                             bool *has_more);
gh_err_t gh_store_user_get(gh_db_t *db, const char *org_id, const char *account_id,
                           gh_org_user_t *out);
gh_err_t gh_store_membership_insert(gh_db_t *db, const char *org_id, const char *account_id,
                                    const char *role, int64_t now);
gh_err_t gh_store_membership_set_role(gh_db_t *db, const char *org_id, const char *account_id,
                                      const char *role);
/* Removes the membership and the account's workspace memberships in the organization. */
gh_err_t gh_store_membership_delete(gh_db_t *db, const char *org_id, const char *account_id);
gh_err_t gh_store_admin_count(gh_db_t *db, const char *org_id, int *count);

/* ---- invites ---- */

/* `status` (may be NULL): "pending", "accepted", "expired" or "deleted", judged at `now`. */
gh_err_t gh_store_invites_list(gh_db_t *db, const char *org_id, const char *status, int64_t now,
                               const gh_page_t *page, gh_store_invite_fn fn, void *ctx,
                               bool *has_more);
gh_err_t gh_store_invite_get(gh_db_t *db, const char *org_id, const char *id, gh_invite_t *out);
gh_err_t gh_store_invite_by_token(gh_db_t *db, const char *token_hash, gh_invite_t *out);
/* The open (neither accepted nor deleted) invite for `email`, if any. */
gh_err_t gh_store_invite_open_for(gh_db_t *db, const char *org_id, const char *email,
                                  gh_invite_t *out);
gh_err_t gh_store_invite_insert(gh_db_t *db, const gh_invite_t *inv, const char *token_hash);
/* A new token and expiry for an open invite. */
gh_err_t gh_store_invite_renew(gh_db_t *db, const char *id, const char *token_hash,
                               int64_t expires_at);
gh_err_t gh_store_invite_mark(gh_db_t *db, const char *id, bool accepted, int64_t now);

/* ---- workspaces ---- */

/* Workspaces of `org_id`, the Default one first. With `member_id` set, only Default and the
 * workspaces that account is a member of. */
gh_err_t gh_store_workspaces_list(gh_db_t *db, const char *org_id, const char *member_id,
                                  bool include_archived, const gh_page_t *page,
                                  gh_store_workspace_fn fn, void *ctx, bool *has_more);
gh_err_t gh_store_workspace_get(gh_db_t *db, const char *org_id, const char *id,
                                gh_workspace_t *out);
/* Workspaces not archived. */
gh_err_t gh_store_workspace_count(gh_db_t *db, const char *org_id, int *count);
/* GH_ECONFLICT when the name is taken in the organization. */
gh_err_t gh_store_workspace_insert(gh_db_t *db, const gh_workspace_t *w);
gh_err_t gh_store_workspace_update(gh_db_t *db, const gh_workspace_t *w);
/* Archives the workspace and archives its API keys. */
gh_err_t gh_store_workspace_archive(gh_db_t *db, const char *id, int64_t now);

gh_err_t gh_store_ws_members_list(gh_db_t *db, const char *workspace_id, const gh_page_t *page,
                                  gh_store_ws_member_fn fn, void *ctx, bool *has_more);
gh_err_t gh_store_ws_member_get(gh_db_t *db, const char *workspace_id, const char *user_id,
                                gh_ws_member_t *out);
gh_err_t gh_store_ws_member_insert(gh_db_t *db, const char *org_id, const char *workspace_id,
                                   const char *user_id, const char *role, int64_t now);
gh_err_t gh_store_ws_member_set_role(gh_db_t *db, const char *workspace_id, const char *user_id,
                                     const char *role);
gh_err_t gh_store_ws_member_delete(gh_db_t *db, const char *workspace_id, const char *user_id);

/* ---- API keys and admin keys ---- */

gh_err_t gh_store_keys_list(gh_db_t *db, const char *org_id, const gh_key_filter_t *filter,
                            const gh_page_t *page, gh_store_key_fn fn, void *ctx,
                            bool *has_more);
gh_err_t gh_store_key_get(gh_db_t *db, const char *org_id, const char *kind, const char *id,
                          gh_key_rec_t *out);
gh_err_t gh_store_key_by_hash(gh_db_t *db, const char *key_hash, gh_key_rec_t *out);
gh_err_t gh_store_key_insert(gh_db_t *db, const gh_key_rec_t *k, const char *key_hash);
gh_err_t gh_store_key_update(gh_db_t *db, const char *id, const char *name, const char *status);
gh_err_t gh_store_key_touch(gh_db_t *db, const char *id, int64_t now);
/* Records the last use of `n` keys at once (the usage writer's batch): key `ids[i]` was last
 * used at `at_s[i]`. The ids are distinct; an id that names no key is skipped. One statement
 * on PostgreSQL, run without a savepoint: a failure leaves the transaction to roll back. */
gh_err_t gh_store_keys_touch(gh_db_t *db, const char *const *ids, const int64_t *at_s,
                             size_t n);
/* Gives key `id` a new secret: its hash and hint (the Workbench key, whose secret lives only in
 * the running console's memory). */
gh_err_t gh_store_key_set_secret(gh_db_t *db, const char *id, const char *key_hash,
                                 const char *hint);
/* The Workbench key of a workspace: its id in `key_id`, GH_ENOTFOUND when it has none yet. */
gh_err_t gh_store_workbench_key_get(gh_db_t *db, const char *workspace_id,
                                    char key_id[GH_ID_MAX]);
gh_err_t gh_store_workbench_key_set(gh_db_t *db, const char *workspace_id, const char *key_id);

/* Every API key with its SHA-256 (hex), for the in-memory state. `workspace_id` (may be NULL)
 * limits to one workspace, `key_id` (may be NULL) to one key. A key of an archived workspace
 * is reported archived. */
gh_err_t gh_store_keys_with_hash(gh_db_t *db, const char *workspace_id, const char *key_id,
                                 gh_store_key_hash_fn fn, void *ctx);

/* ---- usage events ---- */

/* Inserts one event; an event whose journal_seq is already stored is skipped (replays are
 * idempotent). Callers batch these inside one transaction. */
gh_err_t gh_store_usage_insert(gh_db_t *db, const gh_usage_row_t *row);
/* Inserts `n` events (at most GH_USAGE_BATCH_MAX) as gh_store_usage_insert would, one by
 * one, and sets inserted[i] for each event stored now (false: its journal_seq was stored
 * already). A backend may send them in one statement. Callers run it inside a transaction;
 * on an error nothing of the batch is kept once they roll back. */
#define GH_USAGE_BATCH_MAX 2000
gh_err_t gh_store_usage_insert_batch(gh_db_t *db, const gh_usage_row_t *rows, size_t n,
                                     bool *inserted);
/* The highest journal_seq stored for this node (gh_store_set_node_id), or 0. */
gh_err_t gh_store_usage_max_seq(gh_db_t *db, int64_t *seq);

/* Rows inserted, changed or deleted by the last statement on this connection (1 after
 * gh_store_usage_insert stored an event, 0 when it was already there). */
int gh_store_changes(gh_db_t *db);

/* ---- usage rollups and reports  ---- */

/* Adds `n` events, just inserted in the caller's transaction, to the minute, hour and day
 * rollups: aggregated in memory first, then one upsert per distinct (organization, bucket,
 * workspace, key, model) and table. Call it inside the transaction that inserted them.
 * gh_store_rollups_add writes both parts: the minute rows (GH_ROLLUPS_MINUTES, of the
 * connection's writer lane), and the hour and day rows (GH_ROLLUPS_WIDER: on PostgreSQL only
 * those of events before the roll forward's mark; it needs the write lock). A staged
 * transaction writes the first part before gh_store_lock_writes, the second after. */
enum { GH_ROLLUPS_MINUTES = 1, GH_ROLLUPS_WIDER = 2 };
gh_err_t gh_store_rollups_add_parts(gh_db_t *db, const gh_usage_row_t *rows, size_t n,
                                    unsigned parts);
gh_err_t gh_store_rollups_add(gh_db_t *db, const gh_usage_row_t *rows, size_t n);

/* Deletes minute rollups of buckets that start before `before_s`; `*deleted` (may be NULL)
 * receives how many. One transaction of its own. */
gh_err_t gh_store_rollups_prune(gh_db_t *db, int64_t before_s, int64_t *deleted);

/* PostgreSQL keeps only the minute rollups in the writer's transaction and rolls the hour and
 * day rollups forward from them (docs/architecture.md): this sums the minute rows of buckets
 * before `before_s` (rounded down to a minute) not summed yet into the hour and day rollups
 * and moves the mark there; nothing when the mark is there already (another node rolled).
 * One transaction of its own, which waits for a writer's transaction under way and makes
 * the next one wait. `*rolled` (may be NULL) receives how many day rows it wrote. Reports
 * are the same before and after. On SQLite, which writes all three in the writer's
 * transaction, it does nothing. */
gh_err_t gh_store_rollups_roll(gh_db_t *db, int64_t before_s, int64_t *rolled);

/* Calls `fn` for each group with requests, ordered by bucket, then workspace, key and model.
 * Reads the rollup table of the query's width (on PostgreSQL, for hour and day, with the
 * minute rows not rolled forward yet, in one statement). */
gh_err_t gh_store_usage_report(gh_db_t *db, const gh_usage_query_t *q, gh_store_usage_total_fn fn,
                               void *ctx);

/* ---- mail outbox (migration 0008_mail_outbox.sql) ---- */

/* Adds a mail to send; part of the caller's transaction when there is one. */
gh_err_t gh_store_outbox_add(gh_db_t *db, const char *recipient, const char *subject,
                             const char *body, int64_t now_ms);

/* Claims the oldest mail due (unsent, next attempt reached, no live claim) until
 * now_ms + lease_ms, in a transaction of its own. GH_ENOTFOUND when there is none. */
gh_err_t gh_store_outbox_claim(gh_db_t *db, int64_t now_ms, int64_t lease_ms,
                               gh_outbox_row_t *out);
void gh_store_outbox_row_free(gh_outbox_row_t *row);

/* Marks a claimed mail sent (once: a row already sent is left alone) and empties its body. */
gh_err_t gh_store_outbox_sent(gh_db_t *db, int64_t id, int64_t now_ms);

/* Records a failed attempt: the claim is released and the next attempt set. */
gh_err_t gh_store_outbox_failed(gh_db_t *db, int64_t id, int64_t next_attempt_ms,
                                const char *error);

/* Releases the claims this node made (at start: the process that held them is gone). On
 * PostgreSQL, where other nodes may hold claims of their own, only rows claimed under this
 * node's id (gh_store_set_node_id) or with no claimant recorded; on SQLite every claim. */
gh_err_t gh_store_outbox_release_claims(gh_db_t *db);

/* When the next unsent mail is due (Unix ms, its claim's end when claimed); GH_ENOTFOUND when
 * every mail is sent. */
gh_err_t gh_store_outbox_next_due(gh_db_t *db, int64_t *at_ms);

/* ---- audit log ---- */

gh_err_t gh_store_audit_insert(gh_db_t *db, const gh_audit_event_t *e);
/* Newest first. */
gh_err_t gh_store_audit_list(gh_db_t *db, const char *org_id, const char *actor_id,
                             const char *action, const gh_page_t *page, gh_store_audit_fn fn,
                             void *ctx, bool *has_more);

/* ---- billing ---- */

/* The organization's billing row; GH_ENOTFOUND when it has none yet (nothing was ever set or
 * charged: callers use the defaults). */
gh_err_t gh_store_billing_account_get(gh_db_t *db, const char *org_id, gh_billing_account_t *out);
/* Creates the row with defaults when there is none. */
gh_err_t gh_store_billing_account_ensure(gh_db_t *db, const char *org_id, int64_t now);
gh_err_t gh_store_billing_profile_put(gh_db_t *db, const char *org_id, const char *intended_use,
                                      const char *countries_json, const char *industries_json,
                                      int64_t now);
/* Writes the auto-reload settings and state. A negative threshold or amount stores none (not
 * configured yet). `reason` may be NULL or "". */
gh_err_t gh_store_billing_auto_reload_put(gh_db_t *db, const char *org_id, bool enabled,
                                          int64_t threshold_nusd, int64_t amount_nusd, bool armed,
                                          const char *reason, int64_t now);
/* Clears `armed` (a reload is starting). */
gh_err_t gh_store_billing_disarm(gh_db_t *db, const char *org_id, int64_t now);
/* Sets `armed` again when auto-reload is on and the balance is back at or above the
 * threshold. */
gh_err_t gh_store_billing_rearm(gh_db_t *db, const char *org_id);
gh_err_t gh_store_billing_customer_ref_put(gh_db_t *db, const char *org_id, const char *ref,
                                           int64_t now);
/* Organizations whose auto-reload is on and armed and whose balance is below the threshold. */
gh_err_t gh_store_billing_reload_due(gh_db_t *db, gh_store_org_id_fn fn, void *ctx);
/* The email addresses of the organization's admins and billing members, oldest first. */
gh_err_t gh_store_billing_contacts(gh_db_t *db, const char *org_id, gh_store_org_id_fn fn,
                                   void *ctx);

/* The current card (GH_ENOTFOUND when none), or any card of the organization by id. */
gh_err_t gh_store_payment_method_current(gh_db_t *db, const char *org_id,
                                         gh_payment_method_t *out);
gh_err_t gh_store_payment_method_get(gh_db_t *db, const char *org_id, const char *id,
                                     gh_payment_method_t *out);
/* Inserts `pm` as the current card; the previous one (if any) is marked replaced at
 * pm->created_at, in one transaction. `replaced_id` (GH_ID_MAX, may be NULL) receives the
 * previous card's id or "". */
gh_err_t gh_store_payment_method_add(gh_db_t *db, const gh_payment_method_t *pm,
                                     char *replaced_id);
/* The organization's newest card (current or replaced) with the provider's payment method
 * id `provider_ref`; GH_ENOTFOUND when it never had it. */
gh_err_t gh_store_payment_method_by_ref(gh_db_t *db, const char *org_id,
                                        const char *provider_ref, gh_payment_method_t *out);
/* Every card the organization had, oldest first. */
gh_err_t gh_store_payment_methods_list(gh_db_t *db, const char *org_id, const gh_page_t *page,
                                       gh_store_payment_method_fn fn, void *ctx, bool *has_more);

/* GH_ECONFLICT when the organization already used the idempotency key, or already has an
 * auto-reload pending. */
gh_err_t gh_store_purchase_insert(gh_db_t *db, const gh_purchase_t *p);
/* By id; `org_id` NULL finds it in any organization. */
gh_err_t gh_store_purchase_get(gh_db_t *db, const char *org_id, const char *id,
                               gh_purchase_t *out);
gh_err_t gh_store_purchase_by_key(gh_db_t *db, const char *org_id, const char *key,
                                  gh_purchase_t *out);
/* Writes status, provider_ref, decline_code, message, attempts, updated_at and resolved_at
 * of a purchase that is still pending, or that was given up as declined "unconfirmed" (which
 * the provider's late confirmation may still settle). GH_ECONFLICT otherwise: that is what
 * makes resolving happen exactly once. */
gh_err_t gh_store_purchase_update(gh_db_t *db, const gh_purchase_t *p);
gh_err_t gh_store_purchases_list(gh_db_t *db, const char *org_id, const gh_page_t *page,
                                 gh_store_purchase_fn fn, void *ctx, bool *has_more);
/* Pending purchases last attempted at or before `updated_before`, oldest first, at most
 * `limit`. */
gh_err_t gh_store_purchases_pending(gh_db_t *db, int64_t updated_before, int limit,
                                    gh_store_purchase_fn fn, void *ctx);
/* Counts and sums of the organization's purchases. */
gh_err_t gh_store_purchase_stats(gh_db_t *db, const char *org_id, gh_purchase_stats_t *out);

gh_err_t gh_store_lot_insert(gh_db_t *db, const gh_credit_lot_t *lot);
gh_err_t gh_store_lot_set_remaining(gh_db_t *db, const char *lot_id, int64_t remaining_nusd);
/* The lot that expires first among those with credit left and not expired at `now`
 * (GH_ENOTFOUND when none): the one usage draws from. */
gh_err_t gh_store_lot_first_open(gh_db_t *db, const char *org_id, int64_t now,
                                 gh_credit_lot_t *out);
/* Lots with credit left and not expired at `now`, expiring first first, at most `limit`. */
gh_err_t gh_store_lots_open(gh_db_t *db, const char *org_id, int64_t now, int limit,
                            gh_store_lot_fn fn, void *ctx);
/* Lots with credit left whose expiry is at or before `now`, at most `limit`. */
gh_err_t gh_store_lots_expired(gh_db_t *db, int64_t now, int limit, gh_store_lot_fn fn,
                               void *ctx);

/* Appends an entry and adds its amount to the organization's cached balance (creating the
 * billing row when needed). Call inside a transaction with the change the entry records. */
gh_err_t gh_store_ledger_append(gh_db_t *db, const gh_ledger_entry_t *e);
/* The usage writer's ledger draws for one commit, inside its transaction: for each of the `n`
 * organizations, its cost drawn from its open lots, expiring first first (an entry of kind
 * usage per lot, with the draw's reference), what no lot covers in one entry with no lot, and
 * its balance lowered by the cost; with `settle_node`, the node's lease of the organization
 * settled too (PostgreSQL, gh_lease_settle with `month`). `charged[i]` is false for an
 * organization that does not exist (nothing written for it; the others are charged). Each
 * organization at most once in `draws` (the writer sums its events per organization;
 * PostgreSQL refuses a repeat). On PostgreSQL one statement for all of them, a few set
 * operations on the server (migrations 0020, 0022): a round trip per organization was most of
 * a batch's time, and a loop of statements per organization a fifth of the server's. */
gh_err_t gh_store_usage_charge(gh_db_t *db, const gh_usage_draw_t *draws, size_t n, int64_t now,
                               const char *settle_node, int32_t month, bool *charged);
/* The sum of the organization's entries with no lot: zero, or negative while usage has gone
 * past every lot. */
gh_err_t gh_store_ledger_unallocated(gh_db_t *db, const char *org_id, int64_t *sum_nusd);

/* For one organization, or every organization with billing rows when `org_id` is NULL. */
gh_err_t gh_store_ledger_sums(gh_db_t *db, const char *org_id, gh_store_ledger_sums_fn fn,
                              void *ctx);

/* Invoice numbering per year: how many invoices, the lowest and highest number and the
 * counter. Gap-free means count == max == counter and min == 1. */
gh_err_t gh_store_invoice_years(gh_db_t *db, gh_store_invoice_year_fn fn, void *ctx);

/* The next number of `year`'s gap-free sequence (1 for the first). Call inside the transaction
 * that inserts the invoice, so a number is taken exactly when an invoice is. */
gh_err_t gh_store_invoice_next_seq(gh_db_t *db, int year, int64_t *seq);
gh_err_t gh_store_invoice_insert(gh_db_t *db, const gh_invoice_rec_t *inv);
gh_err_t gh_store_invoice_get(gh_db_t *db, const char *org_id, const char *id,
                              gh_invoice_rec_t *out);
gh_err_t gh_store_invoices_list(gh_db_t *db, const char *org_id, const gh_page_t *page,
                                gh_store_invoice_fn fn, void *ctx, bool *has_more);

/* Records a payment provider's webhook event; GH_ECONFLICT when it was recorded before. */
gh_err_t gh_store_webhook_event_insert(gh_db_t *db, const char *event_id, const char *provider,
                                       const char *type, int64_t now);
/* Whether the webhook event `event_id` was recorded. */
gh_err_t gh_store_webhook_event_exists(gh_db_t *db, const char *event_id, bool *exists);

/* ---- limits (migration 0007_limits.sql) ---- */

/* GH_ENOTFOUND when the organization never had its limits changed. */
gh_err_t gh_store_org_limits_get(gh_db_t *db, const char *org_id, gh_org_limits_rec_t *out);
/* Creates or replaces the row. */
gh_err_t gh_store_org_limits_put(gh_db_t *db, const gh_org_limits_rec_t *rec);

gh_err_t gh_store_ws_limits_get(gh_db_t *db, const char *workspace_id, gh_ws_limits_rec_t *out);
/* Creates or replaces the row; a record with no limit at all deletes it. */
gh_err_t gh_store_ws_limits_put(gh_db_t *db, const gh_ws_limits_rec_t *rec);
/* Every workspace with limits, of `org_id` (NULL: of every organization). */
gh_err_t gh_store_ws_limits_list(gh_db_t *db, const char *org_id, gh_store_ws_limits_fn fn,
                                 void *ctx);

/* Every organization's id, and every active workspace's id with its organization's. */
gh_err_t gh_store_org_ids(gh_db_t *db, gh_store_org_id_fn fn, void *ctx);
gh_err_t gh_store_workspace_ids(gh_db_t *db, const char *org_id, gh_store_ws_id_fn fn,
                                void *ctx);

/* The highest ledger entry id (0 when there is none). Entries are append-only and their ids
 * grow in commit order, so "entries up to this id" is a stable cut of the ledger. */
gh_err_t gh_store_ledger_max_id(gh_db_t *db, int64_t *id);
/* The sum of the organization's entries with id <= `upto_id`: its balance at that cut. */
gh_err_t gh_store_ledger_balance_upto(gh_db_t *db, const char *org_id, int64_t upto_id,
                                      int64_t *sum_nusd);
/* The balances of every organization at the cut `upto_id` (organizations with entries). */
gh_err_t gh_store_ledger_balances_upto(gh_db_t *db, int64_t upto_id, gh_store_org_amount_fn fn,
                                       void *ctx);
/* Entries with after_id < id <= upto_id that are not usage, summed per organization and kind
 * ("purchase", "grant", "clawback", "expiry", "settlement"). */
gh_err_t gh_store_ledger_deltas(gh_db_t *db, int64_t after_id, int64_t upto_id,
                                gh_store_ledger_delta_fn fn, void *ctx);
/* What the organization's usage entries since `since` (Unix seconds) took: >= 0. */
gh_err_t gh_store_ledger_usage_since(gh_db_t *db, const char *org_id, int64_t since,
                                     int64_t *sum_nusd);
/* Succeeded purchases of every organization that has any. */
gh_err_t gh_store_purchase_totals(gh_db_t *db, gh_store_org_amount_fn fn, void *ctx);

/* The cost of the usage events that arrived at or after `since_ms` (Unix milliseconds), per
 * organization and workspace; `org_id` and `workspace_id` (each may be NULL) filter. This
 * reads the whole table: for start-up and rare repairs only. */
gh_err_t gh_store_usage_cost_since(gh_db_t *db, int64_t since_ms, const char *org_id,
                                   const char *workspace_id, gh_store_usage_sum_fn fn,
                                   void *ctx);

/* GH_ECONFLICT when the organization already has a pending request. */
gh_err_t gh_store_limit_request_insert(gh_db_t *db, const gh_limit_request_t *r);
/* By id; `org_id` NULL finds it in any organization. */
gh_err_t gh_store_limit_request_get(gh_db_t *db, const char *org_id, const char *id,
                                    gh_limit_request_t *out);
/* Writes status, staff_note, decided_by(_label), granted_tier and decided_at of a request
 * that is still pending; GH_ECONFLICT when it is not (it is decided exactly once). */
gh_err_t gh_store_limit_request_decide(gh_db_t *db, const gh_limit_request_t *r);
/* Oldest first; `org_id` and `status` (each may be NULL) filter. */
gh_err_t gh_store_limit_requests_list(gh_db_t *db, const char *org_id, const char *status,
                                      const gh_page_t *page, gh_store_limit_request_fn fn,
                                      void *ctx, bool *has_more);

/* Platform staff. add is idempotent; remove is GH_ENOTFOUND for an account that is not. */
gh_err_t gh_store_staff_add(gh_db_t *db, const char *account_id, const char *added_by,
                            int64_t now);
gh_err_t gh_store_staff_remove(gh_db_t *db, const char *account_id);
gh_err_t gh_store_staff_is(gh_db_t *db, const char *account_id, bool *out);

/* A number that changes when another connection (of this process or another) commits, so
 * polling it is a cheap way to notice changes (SQLite: PRAGMA data_version). */
gh_err_t gh_store_data_version(gh_db_t *db, int64_t *version);

/* The email addresses of the organization's admins, oldest first. */
gh_err_t gh_store_org_admin_emails(gh_db_t *db, const char *org_id, gh_store_org_id_fn fn,
                                   void *ctx);

/* Organizations whose name or id contains `query` (NULL or "": all), newest first, at most
 * `limit`: id, name and created_at. */
gh_err_t gh_store_orgs_search(gh_db_t *db, const char *query, int limit,
                              gh_store_org_brief_fn fn, void *ctx);

/* ---- Cluster money: leases (issue 14) -------------------------------------------------------
 * PostgreSQL only (migration 0012 describes the tables and the invariants). The SQLite store
 * answers GH_EUNAVAIL to all of them: a node on SQLite is a single node and holds its
 * organizations' whole balances in memory. Each runs inside the caller's transaction. */

/* What a node asks for: grow node_id's lease of org_id by at most want_nusd, by nothing
 * unless at least min_nusd can be had, within the monthly limit limit_nusd (0: none) of month
 * month_key (YYYYMM) that started at month_start_s; the lease then expires ttl_ms after the
 * database's clock. */
typedef struct gh_lease_ask {
    const char *org_id, *node_id;
    int64_t want_nusd, min_nusd, limit_nusd;
    int32_t month_key;
    int64_t month_start_s;
    int64_t ttl_ms;
} gh_lease_ask_t;

typedef struct gh_lease_grant {
    int64_t granted_nusd; /* 0..want */
    int64_t epoch;        /* the lease row's epoch; 0: the node has no lease row */
    int64_t free_nusd;    /* the organization's money neither leased nor spent, after it */
    bool month_bound;     /* the monthly headroom, not the balance, was the tighter bound */
    int64_t limit_nusd;   /* the monthly limit that applied (0: none) */
} gh_lease_grant_t;

gh_err_t gh_store_lease_take(gh_db_t *db, const gh_lease_ask_t *ask, gh_lease_grant_t *out);

/* The usage writer's part of charging `cost_nusd` of node_id's usage to org_id (in the same
 * transaction as the ledger draw): the node's lease and the leased total shrink by the cost
 * (by what the lease holds, at most), the spend of month `month_key` grows by it. */
gh_err_t gh_store_lease_settle(gh_db_t *db, const char *org_id, const char *node_id,
                               int64_t cost_nusd, int32_t month_key);

/* Gives back up to amount_nusd of node_id's lease of org_id, if it is still the lease of
 * `epoch`: `*returned_nusd` is what was given back, or -1 when that lease is gone. */
gh_err_t gh_store_lease_return(gh_db_t *db, const char *org_id, const char *node_id,
                               int64_t epoch, int64_t amount_nusd, int64_t *returned_nusd);

/* Renews every lease of node_id to expire ttl_ms after the database's clock; calls `fn` for
 * each lease renewed with its epoch, amount and its organization's free money. */
typedef void (*gh_store_lease_fn)(void *ctx, const char *org_id, int64_t epoch,
                                  int64_t amount_nusd, int64_t free_nusd);
gh_err_t gh_store_leases_renew(gh_db_t *db, const char *node_id, int64_t ttl_ms,
                               gh_store_lease_fn fn, void *ctx);

/* What node_id's lease of org_id holds now (0 when it has none). */
gh_err_t gh_store_lease_amount(gh_db_t *db, const char *org_id, const char *node_id,
                               int64_t *amount_nusd);

/* Returns leases to free money: node_id NULL, those expired more than margin_ms ago; else
 * every lease of node_id (a node starting afresh). `*swept`, `*swept_nusd`: how many, how
 * much. */
gh_err_t gh_store_leases_sweep(gh_db_t *db, const char *node_id, int64_t margin_ms,
                               int64_t *swept, int64_t *swept_nusd);

/* The usage writer's settlement of workspace leases, in its transaction, under the write lock
 * (it locks money rows; after gh_store_lock_writes in a staged transaction): for each
 * workspace of the `n` events just inserted, this node's lease of it shrinks by their cost
 * (by what it holds, at most) and the workspace's month spend grows by it. Workspaces never
 * leased (no cluster_ws_money row) cost nothing. SQLite, which has no leases: nothing, GH_OK.
 * Until migration 0023 a trigger on usage_events did this at the insert, which a staged
 * transaction makes before it has the lock. */
gh_err_t gh_store_usage_settle_workspaces(gh_db_t *db, const gh_usage_row_t *rows, size_t n);

/* ---- Cluster money: workspace monthly limits through leases (issue 14) --------------------
 * PostgreSQL only (migration 0015); SQLite answers GH_EUNAVAIL. A workspace with a monthly
 * limit is leased per node like its organization's money: month spend + sum(leases) <= limit.
 * Settlement is gh_store_usage_settle_workspaces, in the usage writer's transaction. Sweeping
 * is gh_store_leases_sweep.
 *
 * ws_lease_take: grows node ask->node_id's lease of workspace ws_id (of ask->org_id) by at
 * most ask->want_nusd within the headroom, by nothing unless ask->min_nusd can be had
 * (ask->limit_nusd is ignored: the limit is read from the database). out->free_nusd is the
 * headroom after it, out->limit_nusd the workspace's limit (0: none, nothing leased),
 * out->month_bound is true. */
gh_err_t gh_store_ws_lease_take(gh_db_t *db, const char *ws_id, const gh_lease_ask_t *ask,
                                gh_lease_grant_t *out);
/* As gh_store_lease_return, for node_id's lease of workspace ws_id. */
gh_err_t gh_store_ws_lease_return(gh_db_t *db, const char *ws_id, const char *node_id,
                                  int64_t epoch, int64_t amount_nusd, int64_t *returned_nusd);
/* Renews every workspace lease of node_id; calls `fn` for each with its workspace's
 * organization, epoch, amount and headroom. */
typedef void (*gh_store_ws_lease_fn)(void *ctx, const char *org_id, const char *ws_id,
                                     int64_t epoch, int64_t amount_nusd, int64_t headroom_nusd);
gh_err_t gh_store_ws_leases_renew(gh_db_t *db, const char *node_id, int64_t ttl_ms,
                                  gh_store_ws_lease_fn fn, void *ctx);

/* ---- cluster: the change feed and leadership (core/cluster.h) ----
 * PostgreSQL only: triggers write every change the nodes hold in memory into a feed, in the
 * transaction that makes it, and NOTIFY it. On SQLite (one node) every one of these answers
 * GH_EUNAVAIL except cluster_lead, which makes the one node the leader. The connection used
 * is the calling thread's own: LISTEN and the leadership lock belong to it, and are lost when
 * it is reopened (the calls below then say so). */

/* LISTENs for the feed's notifications on this connection. */
gh_err_t gh_store_cluster_listen(gh_db_t *db);
/* What gh_store_cluster_wait heard: changes in the feed, a kick for the leader's jobs. */
#define GH_STORE_CLUSTER_CHANGED 1u
#define GH_STORE_CLUSTER_KICK 2u
/* Waits up to `timeout_ms` for a notification (or for `wake_fd`, if >= 0, to be readable;
 * nothing is read from it) and consumes every notification that came; *events (0 after a
 * timeout) has a GH_STORE_CLUSTER_* bit for each kind. A change's notification carries the
 * change: `fn` (may be NULL) gets each, in the order they were committed (some may have been
 * applied from the table already, and a notification can be lost: the seq says). GH_EUNAVAIL
 * when the connection was lost or reopened since cluster_listen: LISTEN again, and reload,
 * since notifications may have been missed. */
gh_err_t gh_store_cluster_wait(gh_db_t *db, int wake_fd, int timeout_ms, unsigned *events,
                               gh_store_change_fn fn, void *ctx);
/* Asks the leader, whichever node it is, to run its jobs now (a notification, sent at once
 * outside a transaction, at the commit of the caller's otherwise). */
gh_err_t gh_store_cluster_kick(gh_db_t *db);
/* The changes with seq > `after`, in seq order, at most `limit`. Every change with a lower
 * seq than one returned is committed: the feed's seq grows in commit order. */
gh_err_t gh_store_cluster_changes(gh_db_t *db, int64_t after, int limit, gh_store_change_fn fn,
                                  void *ctx);
/* The highest seq in the feed (0 when empty). */
gh_err_t gh_store_cluster_change_max(gh_db_t *db, int64_t *seq);
/* Leadership: takes the cluster's leader lock on this connection if it is free (a session
 * lock: held until the connection ends) and says whether this connection holds it. */
gh_err_t gh_store_cluster_lead(gh_db_t *db, bool *leader);
/* Deletes the feed's changes written before `before_ms` (Unix milliseconds). */
gh_err_t gh_store_cluster_prune(gh_db_t *db, int64_t before_ms, int64_t *deleted);

/* ---- Rate leases (cluster; core/rate_lease.h) ---- */

/* Draws tokens from the cluster-wide rate buckets `rows[0..n)` in one autocommitted statement
 * (no transaction of the caller's, and not the installation's write lock: only the buckets'
 * rows are locked, in key order). Each bucket is refilled by PostgreSQL's clock at its limit
 * per minute up to its capacity (a bucket never seen starts full; a changed limit keeps what
 * was used), takes back rows[i].give_back (never above its capacity), then gives
 * rows[i].want tokens if it has them, else all it has if that is at least rows[i].want_min
 * (and 1), else nothing; `granted[i]` says how many. `*nodes` gets the number of nodes that
 * held a money lease in the last minute, at least 1 (0 when n is 0: nothing was asked): the N
 * of a node's safe local share while later draws fail (core/limits.h). PostgreSQL only:
 * SQLite answers GH_EUNAVAIL (a SQLite node is a single node and has no shares to draw). */
gh_err_t gh_store_rate_draw(gh_db_t *db, const gh_store_rate_draw_t *rows, size_t n,
                            int64_t *granted, int64_t *nodes);

#endif

