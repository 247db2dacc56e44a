/* The records of the store interface: the shapes of the rows the store reads and writes, the
 * page request of keyset-paginated lists, and the callbacks lists are delivered through.
 * Data only: no functions, no handles, nothing of a backend. Every backend (src/store/sqlite/,
 * src/store/postgres/) fills these same records; core and the console's renderers (src/api/,
 * through core's headers) read them, which is why they live apart from store.h: a file can
 * know what an account or an invoice looks like without being able to call the database.
 *
 * Records carry fixed-size, NUL-terminated strings: an empty string is SQL NULL. Sizes
 * hold the longest value the API accepts (limits in characters, up to 4 bytes each). */
#ifndef GH_STORE_ROWS_H
#define GH_STORE_ROWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/crypto.h"

#define GH_EMAIL_MAX 255 /* 254 bytes and NUL */
#define GH_ROLE_MAX 16

typedef struct gh_account {
    char id[GH_ID_MAX];
    char email[GH_EMAIL_MAX];
    char full_name[401];
    int64_t age_confirmed_at; /* 0 when not yet */
    int64_t terms_accepted_at;
    char terms_version[32];
    int64_t created_at;
} gh_account_t;

typedef struct gh_session {
    char id_hash[GH_SHA256_HEX_MAX];
    char account_id[GH_ID_MAX];
    char csrf_token[GH_SECRET_MAX];
    char current_org_id[GH_ID_MAX]; /* empty when none */
    int64_t created_at;
    int64_t expires_at;
} gh_session_t;

typedef struct gh_membership {
    char org_id[GH_ID_MAX];
    char org_name[321];
    char role[GH_ROLE_MAX];
} gh_membership_t;

typedef struct gh_org_settings {
    char id[GH_ID_MAX];
    char name[321];
    char legal_name[801];
    char billing_email[GH_EMAIL_MAX];
    char line1[801];
    char line2[801];
    char city[401];
    char postal_code[81];
    char state[401];
    char country[3];
    char vat_id[32];
    int64_t created_at;
    int64_t updated_at; /* 0 when never updated */
} gh_org_settings_t;

typedef void (*gh_store_membership_fn)(void *ctx, const gh_membership_t *m);

/* ---- lists ---- */

/* A page request: at most `limit` items after or before the item with id `after_id` or
 * `before_id` (at most one of them; NULL for the first page). */
typedef struct gh_page {
    int limit;
    const char *after_id;
    const char *before_id;
} gh_page_t;

/* ---- organization members ---- */

typedef struct gh_org_user {
    char id[GH_ID_MAX];
    char email[GH_EMAIL_MAX];
    char name[401];
    char role[GH_ROLE_MAX];
    int64_t added_at;
} gh_org_user_t;

typedef void (*gh_store_user_fn)(void *ctx, const gh_org_user_t *u);

/* ---- invites ---- */

typedef struct gh_invite {
    char id[GH_ID_MAX];
    char org_id[GH_ID_MAX];
    char email[GH_EMAIL_MAX];
    char role[GH_ROLE_MAX];
    int64_t invited_at;
    int64_t expires_at;
    int64_t accepted_at; /* 0: not accepted */
    int64_t deleted_at;  /* 0: not deleted */
} gh_invite_t;

typedef void (*gh_store_invite_fn)(void *ctx, const gh_invite_t *inv);

/* ---- workspaces ---- */

typedef struct gh_workspace {
    char id[GH_ID_MAX];
    char org_id[GH_ID_MAX];
    char name[161];
    char display_color[8];
    bool is_default;
    int64_t created_at;
    int64_t archived_at; /* 0: active */
    int member_count; /* for Default: everyone in the organization */
} gh_workspace_t;

typedef void (*gh_store_workspace_fn)(void *ctx, const gh_workspace_t *w);

typedef struct gh_ws_member {
    char workspace_id[GH_ID_MAX];
    char user_id[GH_ID_MAX];
    char role[32];
    char email[GH_EMAIL_MAX];
    char name[401];
} gh_ws_member_t;

typedef void (*gh_store_ws_member_fn)(void *ctx, const gh_ws_member_t *m);

/* ---- API keys and admin keys ---- */

typedef struct gh_key_rec {
    char id[GH_ID_MAX];
    char kind[8]; /* "api" or "admin" */
    char org_id[GH_ID_MAX];
    char workspace_id[GH_ID_MAX]; /* empty for admin keys */
    char name[401];
    char hint[48];
    char status[16];
    char created_by_type[16];
    char created_by_id[GH_ID_MAX];
    int64_t created_at;
    int64_t last_used_at; /* 0: never */
} gh_key_rec_t;

typedef void (*gh_store_key_fn)(void *ctx, const gh_key_rec_t *k);

/* Filters for listing keys; NULL fields do not filter. With `access_account_id`, only API
 * keys in workspaces that account may manage keys in: as an organization developer
 * (`access_developer`) the Default workspace and its workspaces; otherwise the workspaces
 * where it is a workspace developer or workspace admin. */
typedef struct gh_key_filter {
    const char *kind;
    const char *workspace_id;
    const char *status;
    const char *created_by_id;
    const char *access_account_id;
    bool access_developer;
} gh_key_filter_t;

typedef void (*gh_store_key_hash_fn)(void *ctx, const gh_key_rec_t *k, const char *key_hash);

/* ---- usage events ---- */

typedef struct gh_usage_row {
    int64_t journal_seq;
    const char *request_id, *org_id, *workspace_id, *key_id, *model, *route;
    const char *requested_model; /* the model asked for; `model` served (a fallback) */
    const char *deployment;      /* the upstream URL that served; "" for the mock */
    int64_t created_at_ms;
    int64_t input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens;
    int64_t cost_nusd;
    int64_t input_cost_nusd, output_cost_nusd, cache_creation_cost_nusd, cache_read_cost_nusd;
    int status;
    bool stream, client_disconnected;
    int64_t latency_us, upstream_us;
} gh_usage_row_t;

/* ---- usage rollups and reports  ---- */

/* Widths of report buckets, aligned to UTC. */
typedef enum { GH_ROLLUP_MINUTE, GH_ROLLUP_HOUR, GH_ROLLUP_DAY } gh_rollup_width_t;

/* Minute rollups older than this are pruned (reports with minute buckets cannot reach
 * further back); hour and day rollups are kept. */
#define GH_USAGE_MINUTE_RETENTION_S (14 * 86400)

/* A report query: one organization, buckets of `width` from `start_s` (inclusive) to `end_s`
 * (exclusive), both aligned. A list with n > 0 keeps only rows whose value is in it; `none`
 * makes the answer empty (a filter that can match nothing). Grouping splits each bucket's sum
 * by the dimensions asked; the others are summed across. Lists hold at most
 * GH_USAGE_FILTER_MAX values each. */
#define GH_USAGE_FILTER_MAX 100
typedef struct gh_usage_list {
    const char *v[GH_USAGE_FILTER_MAX];
    size_t n;
} gh_usage_list_t;

typedef struct gh_usage_query {
    const char *org_id;
    gh_rollup_width_t width;
    int64_t start_s, end_s;
    gh_usage_list_t workspaces, keys, models;
    const char *member_id; /* when set: only Default and the workspaces this account is a
                              member of (as gh_store_workspaces_list's member_id) */
    bool none;
    bool by_workspace, by_key, by_model;
} gh_usage_query_t;

/* One group of one bucket. Dimensions not grouped by are NULL. */
typedef struct gh_usage_total {
    int64_t bucket_start_s;
    const char *workspace_id, *key_id, *model;
    int64_t requests;
    int64_t input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens;
    int64_t input_cost_nusd, output_cost_nusd, cache_creation_cost_nusd, cache_read_cost_nusd;
} gh_usage_total_t;

typedef void (*gh_store_usage_total_fn)(void *ctx, const gh_usage_total_t *t);

/* ---- mail outbox (migration 0008_mail_outbox.sql) ---- */

/* One unsent mail, claimed by a sender; `subject` and `body` are malloc'd, freed with
 * gh_store_outbox_row_free. */
typedef struct gh_outbox_row {
    int64_t id;
    char recipient[GH_EMAIL_MAX];
    char *subject;
    char *body;
    int attempts;
} gh_outbox_row_t;

/* ---- audit log ---- */

typedef struct gh_audit_event {
    char id[GH_ID_MAX];
    char org_id[GH_ID_MAX];
    int64_t created_at;
    char actor_type[16];
    char actor_id[GH_ID_MAX];
    char actor_label[401];
    char action[48];
    char target_type[32];
    char target_id[GH_ID_MAX];
    char details[2048]; /* a JSON object */
    char ip[64];
} gh_audit_event_t;

typedef void (*gh_store_audit_fn)(void *ctx, const gh_audit_event_t *e);

/* ---- billing ---- */

/* Money is nano-USD (int64_t); see src/lib/money.h. Writes that change a balance (ledger
 * entries, lots, purchases resolving) are made by the caller inside one transaction. */

#define GH_PAY_REF_SIZE 128
#define GH_BILLING_MSG_SIZE 512

typedef struct gh_billing_account {
    char org_id[GH_ID_MAX];
    int64_t balance_nusd; /* cache of the sum of the organization's ledger entries */
    char customer_ref[GH_PAY_REF_SIZE];
    bool auto_reload_enabled;
    bool auto_reload_configured; /* threshold and amount were set at least once */
    int64_t auto_reload_threshold_nusd;
    int64_t auto_reload_amount_nusd;
    bool auto_reload_armed;
    char auto_reload_disabled_reason[GH_BILLING_MSG_SIZE];
    char intended_use[2001];
    char countries[1280];           /* a JSON array of ISO codes */
    char regulated_industries[512]; /* a JSON array of names */
    int64_t profile_answered_at;    /* 0: the first-purchase questions are not answered */
    int64_t updated_at;
} gh_billing_account_t;

typedef void (*gh_store_org_id_fn)(void *ctx, const char *org_id);

typedef struct gh_payment_method {
    char id[GH_ID_MAX]; /* card_01… */
    char org_id[GH_ID_MAX];
    char provider[16];
    char provider_ref[GH_PAY_REF_SIZE];
    char brand[16];
    char last4[5];
    int exp_month;
    int exp_year;
    int64_t created_at;
    int64_t replaced_at; /* 0: the current card */
} gh_payment_method_t;

typedef void (*gh_store_payment_method_fn)(void *ctx, const gh_payment_method_t *pm);

typedef struct gh_purchase {
    char id[GH_ID_MAX]; /* pur_01… */
    char org_id[GH_ID_MAX];
    char kind[16];   /* "manual" or "auto_reload" */
    char status[16]; /* "pending", "succeeded" or "declined" */
    int64_t amount_nusd;
    int64_t tax_nusd;
    int64_t total_nusd;
    char tax_label[64];
    char idempotency_key[256];
    char payment_method_id[GH_ID_MAX];
    char provider[16];
    char provider_ref[GH_PAY_REF_SIZE];
    char decline_code[64];
    char message[GH_BILLING_MSG_SIZE];
    int attempts;
    char created_by_type[16];
    char created_by_id[GH_ID_MAX];
    int64_t created_at;
    int64_t updated_at;
    int64_t resolved_at; /* 0 while pending */
    char invoice_id[GH_ID_MAX]; /* read only: the invoice of a succeeded purchase, or "" */
} gh_purchase_t;

typedef void (*gh_store_purchase_fn)(void *ctx, const gh_purchase_t *p);

typedef struct gh_purchase_stats {
    int64_t succeeded;
    int64_t succeeded_nusd;
    int64_t pending;
} gh_purchase_stats_t;

typedef struct gh_credit_lot {
    char id[GH_ID_MAX]; /* lot_01… */
    char org_id[GH_ID_MAX];
    char source[16]; /* "purchase" or "grant" */
    char source_ref[64];
    int64_t amount_nusd;
    int64_t remaining_nusd;
    int64_t expires_at;
    int64_t created_at;
} gh_credit_lot_t;

typedef void (*gh_store_lot_fn)(void *ctx, const gh_credit_lot_t *lot);

typedef struct gh_ledger_entry {
    int64_t id;
    char org_id[GH_ID_MAX];
    char lot_id[GH_ID_MAX]; /* "" for an entry with no lot */
    char kind[16];          /* purchase, grant, usage, clawback, expiry, settlement */
    int64_t amount_nusd;    /* signed */
    char reference[128];
    char reason[GH_BILLING_MSG_SIZE];
    int64_t created_at;
} gh_ledger_entry_t;

/* One organization's usage in one of the usage writer's commits, to draw from its credits
 * (gh_store_usage_charge): what its events cost, and the reference its entries carry. */
typedef struct gh_usage_draw {
    const char *org_id;
    int64_t cost_nusd; /* > 0 */
    const char *reference;
} gh_usage_draw_t;

/* What `gatehouse ledger check` compares, per organization, all recomputed from the rows. */
typedef struct gh_ledger_sums {
    char org_id[GH_ID_MAX];
    int64_t entries_nusd;        /* the sum of every entry: the balance */
    int64_t cached_nusd;         /* billing_accounts.balance_nusd */
    int64_t lots_remaining_nusd; /* the sum of the lots' remaining amounts */
    int64_t unallocated_nusd;    /* entries with no lot */
    int64_t usage_entries_nusd;  /* entries of kind usage (negative) */
    int64_t usage_cost_nusd;     /* the cost of the usage events committed since billing began */
    int64_t bad_lots;     /* lots whose entries do not sum to their remaining amount, or whose
                           * opening entry is missing, doubled or of another amount */
    int64_t bad_purchases; /* succeeded without exactly one lot, entry and invoice of its
                            * amount, or not succeeded with any of them */
} gh_ledger_sums_t;

typedef void (*gh_store_ledger_sums_fn)(void *ctx, const gh_ledger_sums_t *s);

typedef struct gh_invoice_year {
    int year;
    int64_t count, min_seq, max_seq, counter;
} gh_invoice_year_t;
typedef void (*gh_store_invoice_year_fn)(void *ctx, const gh_invoice_year_t *y);

typedef struct gh_invoice_party_rec {
    char name[801];
    char line1[801];
    char line2[801];
    char city[401];
    char postal_code[81];
    char state[401];
    char country[3];
    char vat_id[32];
    char email[GH_EMAIL_MAX];
} gh_invoice_party_rec_t;

typedef struct gh_invoice_rec {
    char id[GH_ID_MAX]; /* inv_01… */
    char org_id[GH_ID_MAX];
    char purchase_id[GH_ID_MAX];
    char number[48];
    int year;
    int64_t seq;
    int64_t issued_at;
    char currency[4];
    char description[128];
    int64_t subtotal_nusd;
    int64_t tax_nusd;
    int64_t total_nusd;
    char tax_label[64];
    char note[256];
    char payment[64];
    bool test_mode;
    gh_invoice_party_rec_t seller;
    gh_invoice_party_rec_t buyer;
} gh_invoice_rec_t;

typedef void (*gh_store_invoice_fn)(void *ctx, const gh_invoice_rec_t *inv);

/* ---- limits (migration 0007_limits.sql) ---- */

#define GH_TIER_ID_SIZE 32
#define GH_LIMIT_REASON_SIZE 4001 /* 1000 characters */

/* An organization's own limits and what staff set for it. Zero means none (or, for the tier,
 * the tier its purchases reach). */
typedef struct gh_org_limits_rec {
    char org_id[GH_ID_MAX];
    int64_t monthly_spend_limit_nusd;
    char tier_override[GH_TIER_ID_SIZE];
    int64_t custom_monthly_cap_nusd;
    int64_t custom_rpm, custom_itpm, custom_otpm;
    int64_t updated_at;
} gh_org_limits_rec_t;

/* A workspace's own limits; zero means none of that kind. */
typedef struct gh_ws_limits_rec {
    char workspace_id[GH_ID_MAX];
    char org_id[GH_ID_MAX];
    int64_t monthly_spend_limit_nusd;
    int64_t rpm, itpm, otpm;
    int64_t updated_at;
} gh_ws_limits_rec_t;

typedef void (*gh_store_ws_limits_fn)(void *ctx, const gh_ws_limits_rec_t *rec);

typedef void (*gh_store_ws_id_fn)(void *ctx, const char *org_id, const char *workspace_id);

typedef void (*gh_store_org_amount_fn)(void *ctx, const char *org_id, int64_t amount_nusd);
typedef void (*gh_store_ledger_delta_fn)(void *ctx, const char *org_id, const char *kind,
                                         int64_t amount_nusd);

typedef void (*gh_store_usage_sum_fn)(void *ctx, const char *org_id, const char *workspace_id,
                                      int64_t cost_nusd);

/* A request for a higher tier or custom limits. */
typedef struct gh_limit_request {
    char id[GH_ID_MAX]; /* limreq_01… */
    char org_id[GH_ID_MAX];
    char org_name[321]; /* read only */
    char requested_by[GH_ID_MAX];
    char requested_by_label[401];
    char kind[8]; /* "tier" or "custom" */
    char requested_tier[GH_TIER_ID_SIZE];
    int64_t monthly_cap_nusd; /* custom: what was asked for; 0: not asked */
    int64_t rpm, itpm, otpm;
    char reason[GH_LIMIT_REASON_SIZE];
    char status[16]; /* "pending", "approved" or "declined" */
    char staff_note[GH_LIMIT_REASON_SIZE];
    char decided_by[GH_ID_MAX];
    char decided_by_label[401];
    char granted_tier[GH_TIER_ID_SIZE];
    int64_t created_at;
    int64_t decided_at; /* 0 while pending */
} gh_limit_request_t;

typedef void (*gh_store_limit_request_fn)(void *ctx, const gh_limit_request_t *r);

typedef void (*gh_store_org_brief_fn)(void *ctx, const char *org_id, const char *name,
                                      int64_t created_at);

/* ---- OpenID Connect sign-in (store/identity.h) ---- */

#define GH_OIDC_NONCE_MAX GH_SECRET_MAX
#define GH_OIDC_VERIFIER_MAX 129 /* a PKCE code verifier: 43–128 characters and NUL */
#define GH_OIDC_ISSUER_MAX 256   /* the configured issuer URL and NUL */
#define GH_OIDC_SUBJECT_MAX 256  /* OpenID Connect caps sub at 255 ASCII characters */

/* A pending authorization request, found by the SHA-256 of its state. */
typedef struct gh_oidc_state {
    char nonce[GH_OIDC_NONCE_MAX];
    char code_verifier[GH_OIDC_VERIFIER_MAX];
    int64_t created_at;
    int64_t expires_at;
} gh_oidc_state_t;

/* A provider's subject linked to an account. */
typedef struct gh_identity {
    char issuer[GH_OIDC_ISSUER_MAX];
    char subject[GH_OIDC_SUBJECT_MAX];
    char account_id[GH_ID_MAX];
    char email[GH_EMAIL_MAX];
    int64_t created_at;
    int64_t last_used_at;
} gh_identity_t;

/* Each identity of an account. */
typedef void (*gh_store_identity_fn)(void *ctx, const gh_identity_t *identity);

/* ---- the cluster's change feed (PostgreSQL; store.h, "cluster") ---- */

/* One committed change to what the nodes hold in memory. kind: "key" (id: a key), "workspace"
 * (a workspace, or its limits), "org" (an organization's limits or tier, or a new one),
 * "money" (a ledger entry other than usage; id: the entry), "member" (id: the account). */
typedef struct gh_change {
    int64_t seq;
    char kind[16];
    char id[GH_ID_MAX];
    char org_id[GH_ID_MAX]; /* "" when none */
    int64_t changed_at_us;  /* when the change was written (Unix microseconds) */
} gh_change_t;

typedef void (*gh_store_change_fn)(void *ctx, const gh_change_t *change);

/* ---- Rate leases (cluster; core/rate_lease.h) ---- */

/* One draw from a cluster-wide rate bucket: the bucket (organization, workspace or "" for the
 * organization's own, model class, kind: 0 requests, 1 input tokens, 2 output tokens), its
 * limit per minute and capacity in tokens, the tokens a node gives back first (unused, about to
 * lapse), and how many tokens are wanted: `want`, or at least `want_min` (a grant below it is
 * 0). */
typedef struct gh_store_rate_draw {
    const char *org_id;
    const char *ws_id;
    const char *model_class;
    int kind;
    int64_t limit_per_min;
    int64_t capacity;
    int64_t want;
    int64_t want_min;
    int64_t give_back;
} gh_store_rate_draw_t;

#endif
