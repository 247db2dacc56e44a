/* Store functions for spend notifications and the HTML part of queued mail (migration
 * 0012_spend_notifications.sql), part of the store interface (store/ops.h; the SQLite backend's
 * src/store/sqlite/notify.c); same conventions as store.h (fixed-size, NUL-terminated strings;
 * callers that need a larger unit wrap calls in gh_store_begin/commit/rollback). No business
 * rules here: src/core/notify.c decides when a rule fires. */
#ifndef GH_STORE_NOTIFY_H
#define GH_STORE_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

#define GH_NOTIFY_KIND_SIZE 16
#define GH_NOTIFY_LABEL_MAX 401

/* One rule. `kind` is "spend_amount" (amount_nusd), "spend_percent" (percent of the monthly
 * spend limit) or "balance_below" (amount_nusd). */
typedef struct gh_spend_notif {
    char id[GH_ID_MAX];
    char org_id[GH_ID_MAX];
    char kind[GH_NOTIFY_KIND_SIZE];
    int64_t amount_nusd; /* 0 for spend_percent */
    int percent;         /* 0 unless spend_percent */
    int64_t created_at;
    char created_by[GH_NOTIFY_LABEL_MAX];
    int64_t notified_at; /* set by the list: when it was notified for the month asked, or 0 */
} gh_spend_notif_t;

typedef void (*gh_store_spend_notif_fn)(void *ctx, const gh_spend_notif_t *n);

/* The organization's rules, oldest first; `notified_at` is the notice of `month` (YYYYMM) for
 * spend rules, and for a balance rule its last notice while it is still below. */
gh_err_t gh_store_spend_notif_list(gh_db_t *db, const char *org_id, int32_t month,
                                   gh_store_spend_notif_fn fn, void *ctx);
gh_err_t gh_store_spend_notif_count(gh_db_t *db, const char *org_id, int64_t *count);
/* Which of the `n` organizations have at least one rule (`has_rules[i]`): one statement for a
 * whole usage batch on PostgreSQL, where a read per organization was a round trip each. */
gh_err_t gh_store_spend_notif_any(gh_db_t *db, const char *const *org_ids, size_t n,
                                  bool *has_rules);
gh_err_t gh_store_spend_notif_insert(gh_db_t *db, const gh_spend_notif_t *n);
/* Reads one rule of `org_id` into `out`; GH_ENOTFOUND when it has no such rule. */
gh_err_t gh_store_spend_notif_get(gh_db_t *db, const char *org_id, const char *id,
                                  gh_spend_notif_t *out);
/* Deletes the rule and its notices; GH_ENOTFOUND when `org_id` has no such rule. */
gh_err_t gh_store_spend_notif_delete(gh_db_t *db, const char *org_id, const char *id);

/* Records that spend rule `id` was notified for `month`; `*first` is false when it already
 * was (nothing is written then). */
gh_err_t gh_store_spend_notif_mark(gh_db_t *db, const char *id, int32_t month, int64_t now,
                                   int64_t spend_nusd, bool *first);
/* Sets when a balance rule was notified (0: not, or the balance is back above it). */
gh_err_t gh_store_spend_notif_balance_set(gh_db_t *db, const char *id, int64_t notified_at);

/* The month's spend the check keeps for `org_id`: GH_ENOTFOUND when there is none. */
gh_err_t gh_store_spend_state_get(gh_db_t *db, const char *org_id, int32_t *month,
                                  int64_t *spend_nusd);
/* Creates or replaces it. */
gh_err_t gh_store_spend_state_put(gh_db_t *db, const char *org_id, int32_t month,
                                  int64_t spend_nusd);

/* Attaches `html` to the mail this connection queued last (gh_store_outbox_add, just
 * before, in the same transaction). */
gh_err_t gh_store_outbox_html_attach(gh_db_t *db, const char *html);
/* The HTML part of mail `id` (malloc'd, the caller frees), or NULL when it has none. */
gh_err_t gh_store_outbox_html_get(gh_db_t *db, int64_t id, char **html);
/* Forgets the HTML part of a sent mail (it holds the same links as the text). */
gh_err_t gh_store_outbox_html_delete(gh_db_t *db, int64_t id);

#endif
