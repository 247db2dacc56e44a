/* The list of store operations, internal to src/store: one X(return_type, name, (params),
 * (args)) entry per function of the store interface (store.h and identity.h). From this one
 * list src/store/store.c generates the table of operations a backend fills
 * (gh_store_ops_t in store/backend.h) and every public gh_store_<name> wrapper, which calls
 * the entry of the connection's backend. Adding a store function means: declare it in
 * store.h with its contract, add its entry here, implement it in each backend.
 *
 * GH_STORE_OPS_STORE lists the operations on the whole store (gh_store_t); a backend must
 * provide every one of them. GH_STORE_OPS lists the operations on one connection (gh_db_t),
 * in the order of store.h; a backend still being written may leave some NULL, and their
 * wrappers then answer GH_EUNAVAIL (see gh_store_ops_complete). */
#ifndef GH_STORE_OPS_H
#define GH_STORE_OPS_H

#include "store/identity.h"
#include "store/notify.h"
#include "store/store.h"

#define GH_STORE_OPS_STORE(X) \
    X(void, set_busy_timeout, (gh_store_t *store, int timeout_ms), (store, timeout_ms)) \
    X(void, set_statement_timeout, (gh_store_t *store, int timeout_ms), (store, timeout_ms)) \
    X(void, close, (gh_store_t *store), (store)) \
    X(gh_db_t *, db, (gh_store_t *store), (store)) \
    /* cluster (issue 14, nodes and the change feed) */ \
    X(void, set_node_id, (gh_store_t *store, const char *node_id), (store, node_id)) \
    X(int, writer_lanes, (gh_store_t *store), (store))

#define GH_STORE_OPS(X) \
    X(gh_err_t, migrate, \
      (gh_db_t *db, int *applied, char *err, size_t err_size), \
      (db, applied, err, err_size)) \
    X(int, schema_version, (gh_db_t *db), (db)) \
    X(gh_err_t, begin, (gh_db_t *db), (db)) \
    X(gh_err_t, commit, (gh_db_t *db), (db)) \
    X(void, rollback, (gh_db_t *db), (db)) \
    X(void, set_writer_lane, (gh_db_t *db, int lane), (db, lane)) \
    X(gh_err_t, begin_staged, (gh_db_t *db), (db)) \
    X(gh_err_t, lock_writes, (gh_db_t *db), (db)) \
    X(bool, in_transaction, (const gh_db_t *db), (db)) \
    X(bool, failed_on_data, (const gh_db_t *db), (db)) \
    X(gh_err_t, link_insert, \
      (gh_db_t *db, const char *token_hash, const char *email, const char *ip, int64_t now, \
       int64_t expires_at), \
      (db, token_hash, email, ip, now, expires_at)) \
    X(gh_err_t, link_check, \
      (gh_db_t *db, const char *token_hash, int64_t now), \
      (db, token_hash, now)) \
    X(gh_err_t, link_consume, \
      (gh_db_t *db, const char *token_hash, int64_t now, char email_out[GH_EMAIL_MAX]), \
      (db, token_hash, now, email_out)) \
    X(gh_err_t, account_get, (gh_db_t *db, const char *id, gh_account_t *out), (db, id, out)) \
    X(gh_err_t, account_by_email, \
      (gh_db_t *db, const char *email, gh_account_t *out), \
      (db, email, out)) \
    X(gh_err_t, account_insert, (gh_db_t *db, const gh_account_t *a), (db, a)) \
    X(gh_err_t, account_onboard, \
      (gh_db_t *db, const char *id, const char *full_name, const char *terms_version, \
       int64_t now), \
      (db, id, full_name, terms_version, now)) \
    X(gh_err_t, session_insert, \
      (gh_db_t *db, const gh_session_t *s, const char *ip, const char *user_agent), \
      (db, s, ip, user_agent)) \
    X(gh_err_t, session_get, \
      (gh_db_t *db, const char *id_hash, int64_t now, gh_session_t *out), \
      (db, id_hash, now, out)) \
    X(gh_err_t, session_set_org, \
      (gh_db_t *db, const char *id_hash, const char *org_id), \
      (db, id_hash, org_id)) \
    X(gh_err_t, session_revoke, \
      (gh_db_t *db, const char *id_hash, int64_t now), \
      (db, id_hash, now)) \
    X(gh_err_t, org_create, \
      (gh_db_t *db, const char *org_id, const char *name, const char *account_id, \
       const char *workspace_id, const char *workspace_color, int64_t now), \
      (db, org_id, name, account_id, workspace_id, workspace_color, now)) \
    X(gh_err_t, memberships, \
      (gh_db_t *db, const char *account_id, gh_store_membership_fn fn, void *ctx), \
      (db, account_id, fn, ctx)) \
    X(gh_err_t, membership_get, \
      (gh_db_t *db, const char *org_id, const char *account_id, gh_membership_t *out), \
      (db, org_id, account_id, out)) \
    X(gh_err_t, membership_count, \
      (gh_db_t *db, const char *account_id, int *count), \
      (db, account_id, count)) \
    X(gh_err_t, org_settings_get, \
      (gh_db_t *db, const char *org_id, gh_org_settings_t *out), \
      (db, org_id, out)) \
    X(gh_err_t, org_settings_put, (gh_db_t *db, const gh_org_settings_t *s), (db, s)) \
    X(gh_err_t, users_list, \
      (gh_db_t *db, const char *org_id, const char *email, const gh_page_t *page, \
       gh_store_user_fn fn, void *ctx, bool *has_more), \
      (db, org_id, email, page, fn, ctx, has_more)) \
    X(gh_err_t, user_get, \
      (gh_db_t *db, const char *org_id, const char *account_id, gh_org_user_t *out), \
      (db, org_id, account_id, out)) \
    X(gh_err_t, membership_insert, \
      (gh_db_t *db, const char *org_id, const char *account_id, const char *role, int64_t now), \
      (db, org_id, account_id, role, now)) \
    X(gh_err_t, membership_set_role, \
      (gh_db_t *db, const char *org_id, const char *account_id, const char *role), \
      (db, org_id, account_id, role)) \
    X(gh_err_t, membership_delete, \
      (gh_db_t *db, const char *org_id, const char *account_id), \
      (db, org_id, account_id)) \
    X(gh_err_t, admin_count, (gh_db_t *db, const char *org_id, int *count), (db, org_id, count)) \
    X(gh_err_t, invites_list, \
      (gh_db_t *db, const char *org_id, const char *status, int64_t now, const gh_page_t *page, \
       gh_store_invite_fn fn, void *ctx, bool *has_more), \
      (db, org_id, status, now, page, fn, ctx, has_more)) \
    X(gh_err_t, invite_get, \
      (gh_db_t *db, const char *org_id, const char *id, gh_invite_t *out), \
      (db, org_id, id, out)) \
    X(gh_err_t, invite_by_token, \
      (gh_db_t *db, const char *token_hash, gh_invite_t *out), \
      (db, token_hash, out)) \
    X(gh_err_t, invite_open_for, \
      (gh_db_t *db, const char *org_id, const char *email, gh_invite_t *out), \
      (db, org_id, email, out)) \
    X(gh_err_t, invite_insert, \
      (gh_db_t *db, const gh_invite_t *inv, const char *token_hash), \
      (db, inv, token_hash)) \
    X(gh_err_t, invite_renew, \
      (gh_db_t *db, const char *id, const char *token_hash, int64_t expires_at), \
      (db, id, token_hash, expires_at)) \
    X(gh_err_t, invite_mark, \
      (gh_db_t *db, const char *id, bool accepted, int64_t now), \
      (db, id, accepted, now)) \
    X(gh_err_t, workspaces_list, \
      (gh_db_t *db, const char *org_id, const char *member_id, bool include_archived, \
       const gh_page_t *page, gh_store_workspace_fn fn, void *ctx, bool *has_more), \
      (db, org_id, member_id, include_archived, page, fn, ctx, has_more)) \
    X(gh_err_t, workspace_get, \
      (gh_db_t *db, const char *org_id, const char *id, gh_workspace_t *out), \
      (db, org_id, id, out)) \
    X(gh_err_t, workspace_count, \
      (gh_db_t *db, const char *org_id, int *count), \
      (db, org_id, count)) \
    X(gh_err_t, workspace_insert, (gh_db_t *db, const gh_workspace_t *w), (db, w)) \
    X(gh_err_t, workspace_update, (gh_db_t *db, const gh_workspace_t *w), (db, w)) \
    X(gh_err_t, workspace_archive, (gh_db_t *db, const char *id, int64_t now), (db, id, now)) \
    X(gh_err_t, ws_members_list, \
      (gh_db_t *db, const char *workspace_id, const gh_page_t *page, gh_store_ws_member_fn fn, \
       void *ctx, bool *has_more), \
      (db, workspace_id, page, fn, ctx, has_more)) \
    X(gh_err_t, ws_member_get, \
      (gh_db_t *db, const char *workspace_id, const char *user_id, gh_ws_member_t *out), \
      (db, workspace_id, user_id, out)) \
    X(gh_err_t, ws_member_insert, \
      (gh_db_t *db, const char *org_id, const char *workspace_id, const char *user_id, \
       const char *role, int64_t now), \
      (db, org_id, workspace_id, user_id, role, now)) \
    X(gh_err_t, ws_member_set_role, \
      (gh_db_t *db, const char *workspace_id, const char *user_id, const char *role), \
      (db, workspace_id, user_id, role)) \
    X(gh_err_t, ws_member_delete, \
      (gh_db_t *db, const char *workspace_id, const char *user_id), \
      (db, workspace_id, user_id)) \
    X(gh_err_t, keys_list, \
      (gh_db_t *db, const char *org_id, const gh_key_filter_t *filter, const gh_page_t *page, \
       gh_store_key_fn fn, void *ctx, bool *has_more), \
      (db, org_id, filter, page, fn, ctx, has_more)) \
    X(gh_err_t, key_get, \
      (gh_db_t *db, const char *org_id, const char *kind, const char *id, gh_key_rec_t *out), \
      (db, org_id, kind, id, out)) \
    X(gh_err_t, key_by_hash, \
      (gh_db_t *db, const char *key_hash, gh_key_rec_t *out), \
      (db, key_hash, out)) \
    X(gh_err_t, key_insert, \
      (gh_db_t *db, const gh_key_rec_t *k, const char *key_hash), \
      (db, k, key_hash)) \
    X(gh_err_t, key_update, \
      (gh_db_t *db, const char *id, const char *name, const char *status), \
      (db, id, name, status)) \
    X(gh_err_t, key_touch, (gh_db_t *db, const char *id, int64_t now), (db, id, now)) \
    X(gh_err_t, keys_touch, \
      (gh_db_t *db, const char *const *ids, const int64_t *at_s, size_t n), \
      (db, ids, at_s, n)) \
    X(gh_err_t, key_set_secret, \
      (gh_db_t *db, const char *id, const char *key_hash, const char *hint), \
      (db, id, key_hash, hint)) \
    X(gh_err_t, workbench_key_get, \
      (gh_db_t *db, const char *workspace_id, char key_id[GH_ID_MAX]), \
      (db, workspace_id, key_id)) \
    X(gh_err_t, workbench_key_set, \
      (gh_db_t *db, const char *workspace_id, const char *key_id), \
      (db, workspace_id, key_id)) \
    X(gh_err_t, keys_with_hash, \
      (gh_db_t *db, const char *workspace_id, const char *key_id, gh_store_key_hash_fn fn, \
       void *ctx), \
      (db, workspace_id, key_id, fn, ctx)) \
    X(gh_err_t, usage_insert, (gh_db_t *db, const gh_usage_row_t *row), (db, row)) \
    X(gh_err_t, usage_insert_batch, \
      (gh_db_t *db, const gh_usage_row_t *rows, size_t n, bool *inserted), \
      (db, rows, n, inserted)) \
    X(gh_err_t, usage_max_seq, (gh_db_t *db, int64_t *seq), (db, seq)) \
    X(int, changes, (gh_db_t *db), (db)) \
    X(gh_err_t, rollups_add_parts, \
      (gh_db_t *db, const gh_usage_row_t *rows, size_t n, unsigned parts), \
      (db, rows, n, parts)) \
    X(gh_err_t, rollups_prune, \
      (gh_db_t *db, int64_t before_s, int64_t *deleted), \
      (db, before_s, deleted)) \
    X(gh_err_t, rollups_roll, \
      (gh_db_t *db, int64_t before_s, int64_t *rolled), \
      (db, before_s, rolled)) \
    X(gh_err_t, usage_report, \
      (gh_db_t *db, const gh_usage_query_t *q, gh_store_usage_total_fn fn, void *ctx), \
      (db, q, fn, ctx)) \
    X(gh_err_t, outbox_add, \
      (gh_db_t *db, const char *recipient, const char *subject, const char *body, \
       int64_t now_ms), \
      (db, recipient, subject, body, now_ms)) \
    X(gh_err_t, outbox_claim, \
      (gh_db_t *db, int64_t now_ms, int64_t lease_ms, gh_outbox_row_t *out), \
      (db, now_ms, lease_ms, out)) \
    X(gh_err_t, outbox_sent, (gh_db_t *db, int64_t id, int64_t now_ms), (db, id, now_ms)) \
    X(gh_err_t, outbox_failed, \
      (gh_db_t *db, int64_t id, int64_t next_attempt_ms, const char *error), \
      (db, id, next_attempt_ms, error)) \
    X(gh_err_t, outbox_release_claims, (gh_db_t *db), (db)) \
    X(gh_err_t, outbox_next_due, (gh_db_t *db, int64_t *at_ms), (db, at_ms)) \
    X(gh_err_t, audit_insert, (gh_db_t *db, const gh_audit_event_t *e), (db, e)) \
    X(gh_err_t, audit_list, \
      (gh_db_t *db, const char *org_id, const char *actor_id, const char *action, \
       const gh_page_t *page, gh_store_audit_fn fn, void *ctx, bool *has_more), \
      (db, org_id, actor_id, action, page, fn, ctx, has_more)) \
    X(gh_err_t, billing_account_get, \
      (gh_db_t *db, const char *org_id, gh_billing_account_t *out), \
      (db, org_id, out)) \
    X(gh_err_t, billing_account_ensure, \
      (gh_db_t *db, const char *org_id, int64_t now), \
      (db, org_id, now)) \
    X(gh_err_t, billing_profile_put, \
      (gh_db_t *db, const char *org_id, const char *intended_use, const char *countries_json, \
       const char *industries_json, int64_t now), \
      (db, org_id, intended_use, countries_json, industries_json, now)) \
    X(gh_err_t, billing_auto_reload_put, \
      (gh_db_t *db, const char *org_id, bool enabled, int64_t threshold_nusd, \
       int64_t amount_nusd, bool armed, const char *reason, int64_t now), \
      (db, org_id, enabled, threshold_nusd, amount_nusd, armed, reason, now)) \
    X(gh_err_t, billing_disarm, \
      (gh_db_t *db, const char *org_id, int64_t now), \
      (db, org_id, now)) \
    X(gh_err_t, billing_rearm, (gh_db_t *db, const char *org_id), (db, org_id)) \
    X(gh_err_t, billing_customer_ref_put, \
      (gh_db_t *db, const char *org_id, const char *ref, int64_t now), \
      (db, org_id, ref, now)) \
    X(gh_err_t, billing_reload_due, \
      (gh_db_t *db, gh_store_org_id_fn fn, void *ctx), \
      (db, fn, ctx)) \
    X(gh_err_t, billing_contacts, \
      (gh_db_t *db, const char *org_id, gh_store_org_id_fn fn, void *ctx), \
      (db, org_id, fn, ctx)) \
    X(gh_err_t, payment_method_current, \
      (gh_db_t *db, const char *org_id, gh_payment_method_t *out), \
      (db, org_id, out)) \
    X(gh_err_t, payment_method_get, \
      (gh_db_t *db, const char *org_id, const char *id, gh_payment_method_t *out), \
      (db, org_id, id, out)) \
    X(gh_err_t, payment_method_add, \
      (gh_db_t *db, const gh_payment_method_t *pm, char *replaced_id), \
      (db, pm, replaced_id)) \
    X(gh_err_t, payment_method_by_ref, \
      (gh_db_t *db, const char *org_id, const char *provider_ref, gh_payment_method_t *out), \
      (db, org_id, provider_ref, out)) \
    X(gh_err_t, payment_methods_list, \
      (gh_db_t *db, const char *org_id, const gh_page_t *page, gh_store_payment_method_fn fn, \
       void *ctx, bool *has_more), \
      (db, org_id, page, fn, ctx, has_more)) \
    X(gh_err_t, purchase_insert, (gh_db_t *db, const gh_purchase_t *p), (db, p)) \
    X(gh_err_t, purchase_get, \
      (gh_db_t *db, const char *org_id, const char *id, gh_purchase_t *out), \
      (db, org_id, id, out)) \
    X(gh_err_t, purchase_by_key, \
      (gh_db_t *db, const char *org_id, const char *key, gh_purchase_t *out), \
      (db, org_id, key, out)) \
    X(gh_err_t, purchase_update, (gh_db_t *db, const gh_purchase_t *p), (db, p)) \
    X(gh_err_t, purchases_list, \
      (gh_db_t *db, const char *org_id, const gh_page_t *page, gh_store_purchase_fn fn, \
       void *ctx, bool *has_more), \
      (db, org_id, page, fn, ctx, has_more)) \
    X(gh_err_t, purchases_pending, \
      (gh_db_t *db, int64_t updated_before, int limit, gh_store_purchase_fn fn, void *ctx), \
      (db, updated_before, limit, fn, ctx)) \
    X(gh_err_t, purchase_stats, \
      (gh_db_t *db, const char *org_id, gh_purchase_stats_t *out), \
      (db, org_id, out)) \
    X(gh_err_t, lot_insert, (gh_db_t *db, const gh_credit_lot_t *lot), (db, lot)) \
    X(gh_err_t, lot_set_remaining, \
      (gh_db_t *db, const char *lot_id, int64_t remaining_nusd), \
      (db, lot_id, remaining_nusd)) \
    X(gh_err_t, lot_first_open, \
      (gh_db_t *db, const char *org_id, int64_t now, gh_credit_lot_t *out), \
      (db, org_id, now, out)) \
    X(gh_err_t, lots_open, \
      (gh_db_t *db, const char *org_id, int64_t now, int limit, gh_store_lot_fn fn, void *ctx), \
      (db, org_id, now, limit, fn, ctx)) \
    X(gh_err_t, lots_expired, \
      (gh_db_t *db, int64_t now, int limit, gh_store_lot_fn fn, void *ctx), \
      (db, now, limit, fn, ctx)) \
    X(gh_err_t, ledger_append, (gh_db_t *db, const gh_ledger_entry_t *e), (db, e)) \
    X(gh_err_t, usage_charge, \
      (gh_db_t *db, const gh_usage_draw_t *draws, size_t n, int64_t now, \
       const char *settle_node, int32_t month, bool *charged), \
      (db, draws, n, now, settle_node, month, charged)) \
    X(gh_err_t, ledger_unallocated, \
      (gh_db_t *db, const char *org_id, int64_t *sum_nusd), \
      (db, org_id, sum_nusd)) \
    X(gh_err_t, ledger_sums, \
      (gh_db_t *db, const char *org_id, gh_store_ledger_sums_fn fn, void *ctx), \
      (db, org_id, fn, ctx)) \
    X(gh_err_t, invoice_years, \
      (gh_db_t *db, gh_store_invoice_year_fn fn, void *ctx), \
      (db, fn, ctx)) \
    X(gh_err_t, invoice_next_seq, (gh_db_t *db, int year, int64_t *seq), (db, year, seq)) \
    X(gh_err_t, invoice_insert, (gh_db_t *db, const gh_invoice_rec_t *inv), (db, inv)) \
    X(gh_err_t, invoice_get, \
      (gh_db_t *db, const char *org_id, const char *id, gh_invoice_rec_t *out), \
      (db, org_id, id, out)) \
    X(gh_err_t, invoices_list, \
      (gh_db_t *db, const char *org_id, const gh_page_t *page, gh_store_invoice_fn fn, \
       void *ctx, bool *has_more), \
      (db, org_id, page, fn, ctx, has_more)) \
    X(gh_err_t, webhook_event_insert, \
      (gh_db_t *db, const char *event_id, const char *provider, const char *type, int64_t now), \
      (db, event_id, provider, type, now)) \
    X(gh_err_t, webhook_event_exists, \
      (gh_db_t *db, const char *event_id, bool *exists), \
      (db, event_id, exists)) \
    X(gh_err_t, org_limits_get, \
      (gh_db_t *db, const char *org_id, gh_org_limits_rec_t *out), \
      (db, org_id, out)) \
    X(gh_err_t, org_limits_put, (gh_db_t *db, const gh_org_limits_rec_t *rec), (db, rec)) \
    X(gh_err_t, ws_limits_get, \
      (gh_db_t *db, const char *workspace_id, gh_ws_limits_rec_t *out), \
      (db, workspace_id, out)) \
    X(gh_err_t, ws_limits_put, (gh_db_t *db, const gh_ws_limits_rec_t *rec), (db, rec)) \
    X(gh_err_t, ws_limits_list, \
      (gh_db_t *db, const char *org_id, gh_store_ws_limits_fn fn, void *ctx), \
      (db, org_id, fn, ctx)) \
    X(gh_err_t, org_ids, (gh_db_t *db, gh_store_org_id_fn fn, void *ctx), (db, fn, ctx)) \
    X(gh_err_t, workspace_ids, \
      (gh_db_t *db, const char *org_id, gh_store_ws_id_fn fn, void *ctx), \
      (db, org_id, fn, ctx)) \
    X(gh_err_t, ledger_max_id, (gh_db_t *db, int64_t *id), (db, id)) \
    X(gh_err_t, ledger_balance_upto, \
      (gh_db_t *db, const char *org_id, int64_t upto_id, int64_t *sum_nusd), \
      (db, org_id, upto_id, sum_nusd)) \
    X(gh_err_t, ledger_balances_upto, \
      (gh_db_t *db, int64_t upto_id, gh_store_org_amount_fn fn, void *ctx), \
      (db, upto_id, fn, ctx)) \
    X(gh_err_t, ledger_deltas, \
      (gh_db_t *db, int64_t after_id, int64_t upto_id, gh_store_ledger_delta_fn fn, void *ctx), \
      (db, after_id, upto_id, fn, ctx)) \
    X(gh_err_t, ledger_usage_since, \
      (gh_db_t *db, const char *org_id, int64_t since, int64_t *sum_nusd), \
      (db, org_id, since, sum_nusd)) \
    X(gh_err_t, purchase_totals, \
      (gh_db_t *db, gh_store_org_amount_fn fn, void *ctx), \
      (db, fn, ctx)) \
    X(gh_err_t, usage_cost_since, \
      (gh_db_t *db, int64_t since_ms, const char *org_id, const char *workspace_id, \
       gh_store_usage_sum_fn fn, void *ctx), \
      (db, since_ms, org_id, workspace_id, fn, ctx)) \
    X(gh_err_t, limit_request_insert, (gh_db_t *db, const gh_limit_request_t *r), (db, r)) \
    X(gh_err_t, limit_request_get, \
      (gh_db_t *db, const char *org_id, const char *id, gh_limit_request_t *out), \
      (db, org_id, id, out)) \
    X(gh_err_t, limit_request_decide, (gh_db_t *db, const gh_limit_request_t *r), (db, r)) \
    X(gh_err_t, limit_requests_list, \
      (gh_db_t *db, const char *org_id, const char *status, const gh_page_t *page, \
       gh_store_limit_request_fn fn, void *ctx, bool *has_more), \
      (db, org_id, status, page, fn, ctx, has_more)) \
    X(gh_err_t, staff_add, \
      (gh_db_t *db, const char *account_id, const char *added_by, int64_t now), \
      (db, account_id, added_by, now)) \
    X(gh_err_t, staff_remove, (gh_db_t *db, const char *account_id), (db, account_id)) \
    X(gh_err_t, staff_is, \
      (gh_db_t *db, const char *account_id, bool *out), \
      (db, account_id, out)) \
    X(gh_err_t, data_version, (gh_db_t *db, int64_t *version), (db, version)) \
    X(gh_err_t, org_admin_emails, \
      (gh_db_t *db, const char *org_id, gh_store_org_id_fn fn, void *ctx), \
      (db, org_id, fn, ctx)) \
    X(gh_err_t, orgs_search, \
      (gh_db_t *db, const char *query, int limit, gh_store_org_brief_fn fn, void *ctx), \
      (db, query, limit, fn, ctx)) \
    X(gh_err_t, oidc_state_insert, \
      (gh_db_t *db, const char *state_hash, const char *nonce, const char *code_verifier, \
       int64_t now, int64_t expires_at), \
      (db, state_hash, nonce, code_verifier, now, expires_at)) \
    X(gh_err_t, oidc_state_consume, \
      (gh_db_t *db, const char *state_hash, int64_t now, gh_oidc_state_t *out), \
      (db, state_hash, now, out)) \
    X(gh_err_t, oidc_state_purge, \
      (gh_db_t *db, int64_t before, int *deleted), \
      (db, before, deleted)) \
    X(gh_err_t, identity_get, \
      (gh_db_t *db, const char *issuer, const char *subject, gh_identity_t *out), \
      (db, issuer, subject, out)) \
    X(gh_err_t, identity_insert, (gh_db_t *db, const gh_identity_t *identity), (db, identity)) \
    X(gh_err_t, identity_touch, \
      (gh_db_t *db, const char *issuer, const char *subject, const char *email, int64_t now), \
      (db, issuer, subject, email, now)) \
    X(gh_err_t, identities, \
      (gh_db_t *db, const char *account_id, gh_store_identity_fn fn, void *ctx), \
      (db, account_id, fn, ctx)) \
    X(gh_err_t, spend_notif_list, \
      (gh_db_t *db, const char *org_id, int32_t month, gh_store_spend_notif_fn fn, void *ctx), \
      (db, org_id, month, fn, ctx)) \
    X(gh_err_t, spend_notif_count, (gh_db_t *db, const char *org_id, int64_t *count), \
      (db, org_id, count)) \
    X(gh_err_t, spend_notif_any, \
      (gh_db_t *db, const char *const *org_ids, size_t n, bool *has_rules), \
      (db, org_ids, n, has_rules)) \
    X(gh_err_t, spend_notif_insert, (gh_db_t *db, const gh_spend_notif_t *n), (db, n)) \
    X(gh_err_t, spend_notif_get, \
      (gh_db_t *db, const char *org_id, const char *id, gh_spend_notif_t *out), \
      (db, org_id, id, out)) \
    X(gh_err_t, spend_notif_delete, (gh_db_t *db, const char *org_id, const char *id), \
      (db, org_id, id)) \
    X(gh_err_t, spend_notif_mark, \
      (gh_db_t *db, const char *id, int32_t month, int64_t now, int64_t spend_nusd, \
       bool *first), \
      (db, id, month, now, spend_nusd, first)) \
    X(gh_err_t, spend_notif_balance_set, (gh_db_t *db, const char *id, int64_t notified_at), \
      (db, id, notified_at)) \
    X(gh_err_t, spend_state_get, \
      (gh_db_t *db, const char *org_id, int32_t *month, int64_t *spend_nusd), \
      (db, org_id, month, spend_nusd)) \
    X(gh_err_t, spend_state_put, \
      (gh_db_t *db, const char *org_id, int32_t month, int64_t spend_nusd), \
      (db, org_id, month, spend_nusd)) \
    X(gh_err_t, outbox_html_attach, (gh_db_t *db, const char *html), (db, html)) \
    X(gh_err_t, outbox_html_get, (gh_db_t *db, int64_t id, char **html), (db, id, html)) \
    X(gh_err_t, outbox_html_delete, (gh_db_t *db, int64_t id), (db, id)) \
    /* ---- cluster money: leases (issue 14; PostgreSQL only) ---- */ \
    X(gh_err_t, lease_take, \
      (gh_db_t *db, const gh_lease_ask_t *ask, gh_lease_grant_t *out), (db, ask, out)) \
    X(gh_err_t, lease_settle, \
      (gh_db_t *db, const char *org_id, const char *node_id, int64_t cost_nusd, \
       int32_t month_key), \
      (db, org_id, node_id, cost_nusd, month_key)) \
    X(gh_err_t, lease_return, \
      (gh_db_t *db, const char *org_id, const char *node_id, int64_t epoch, \
       int64_t amount_nusd, int64_t *returned_nusd), \
      (db, org_id, node_id, epoch, amount_nusd, returned_nusd)) \
    X(gh_err_t, leases_renew, \
      (gh_db_t *db, const char *node_id, int64_t ttl_ms, gh_store_lease_fn fn, void *ctx), \
      (db, node_id, ttl_ms, fn, ctx)) \
    X(gh_err_t, lease_amount, \
      (gh_db_t *db, const char *org_id, const char *node_id, int64_t *amount_nusd), \
      (db, org_id, node_id, amount_nusd)) \
    X(gh_err_t, leases_sweep, \
      (gh_db_t *db, const char *node_id, int64_t margin_ms, int64_t *swept, \
       int64_t *swept_nusd), \
      (db, node_id, margin_ms, swept, swept_nusd)) \
    /* ---- cluster: the change feed and leadership (issue 14, nodes) ---- */ \
    X(gh_err_t, cluster_listen, (gh_db_t *db), (db)) \
    X(gh_err_t, cluster_wait, \
      (gh_db_t *db, int wake_fd, int timeout_ms, unsigned *events, gh_store_change_fn fn, \
       void *ctx), \
      (db, wake_fd, timeout_ms, events, fn, ctx)) \
    X(gh_err_t, cluster_kick, (gh_db_t *db), (db)) \
    X(gh_err_t, cluster_changes, \
      (gh_db_t *db, int64_t after, int limit, gh_store_change_fn fn, void *ctx), \
      (db, after, limit, fn, ctx)) \
    X(gh_err_t, cluster_change_max, (gh_db_t *db, int64_t *seq), (db, seq)) \
    X(gh_err_t, cluster_lead, (gh_db_t *db, bool *leader), (db, leader)) \
    X(gh_err_t, cluster_prune, (gh_db_t *db, int64_t before_ms, int64_t *deleted), \
      (db, before_ms, deleted)) \
    /* Rate leases (cluster, core/rate_lease.c) */ \
    X(gh_err_t, rate_draw, \
      (gh_db_t *db, const gh_store_rate_draw_t *rows, size_t n, int64_t *granted, \
       int64_t *nodes), \
      (db, rows, n, granted, nodes)) \
    X(gh_err_t, usage_settle_workspaces, \
      (gh_db_t *db, const gh_usage_row_t *rows, size_t n), \
      (db, rows, n)) \
    /* ---- cluster money: workspace monthly limits through leases (PostgreSQL only) ---- */ \
    X(gh_err_t, ws_lease_take, \
      (gh_db_t *db, const char *ws_id, const gh_lease_ask_t *ask, gh_lease_grant_t *out), \
      (db, ws_id, ask, out)) \
    X(gh_err_t, ws_lease_return, \
      (gh_db_t *db, const char *ws_id, const char *node_id, int64_t epoch, \
       int64_t amount_nusd, int64_t *returned_nusd), \
      (db, ws_id, node_id, epoch, amount_nusd, returned_nusd)) \
    X(gh_err_t, ws_leases_renew, \
      (gh_db_t *db, const char *node_id, int64_t ttl_ms, gh_store_ws_lease_fn fn, void *ctx), \
      (db, node_id, ttl_ms, fn, ctx))

#endif
