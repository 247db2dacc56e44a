/* Usage tiers: what an organization may spend in a month and how fast it may call the model
 * API, by how much it has bought so far. An organization enters a tier once its cumulative
 * purchases reach the tier's threshold; the Custom tier is set by staff and never reached by
 * purchases. A tier's rate limits apply to each model class separately (an organization in
 * Tier 1 has 50 requests per minute for "small" models and another 50 for "large" ones).
 *
 * Tier tables are plain constant arrays sorted by threshold; gh_tiers_default is the built-in
 * one. Nothing here allocates or locks. */
#ifndef GH_CORE_TIERS_H
#define GH_CORE_TIERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Per-minute limits for one model class; 0 means no limit. */
typedef struct gh_rate_limits {
    int64_t requests_per_min;
    int64_t input_tokens_per_min;
    int64_t output_tokens_per_min;
} gh_rate_limits_t;

typedef struct gh_tier {
    const char *id;                /* "evaluation", "tier_1" .. "tier_4", "custom" */
    const char *name;              /* "Evaluation", "Tier 1", ... for people */
    int64_t purchases_to_enter_nusd; /* cumulative purchases that reach this tier */
    int64_t monthly_cap_nusd;        /* highest monthly spend limit allowed; 0 = no cap */
    gh_rate_limits_t rate;           /* per model class; all 0 for custom (staff sets them) */
    bool custom;                     /* set by staff only; never chosen by purchases */
} gh_tier_t;

typedef struct gh_tier_table {
    const gh_tier_t *tiers; /* ascending by purchases_to_enter_nusd, custom tiers last */
    size_t count;
} gh_tier_table_t;

/* Evaluation ($0 to enter; $10 a month; 50 RPM, 20k ITPM, 4k OTPM), Tier 1 ($5; $100;
 * 50 / 30k / 8k), Tier 2 ($40; $500; 1,000 / 450k / 90k), Tier 3 ($200; $1,000;
 * 2,000 / 800k / 160k), Tier 4 ($400; $5,000; 4,000 / 2M / 400k), Custom (no cap). */
extern const gh_tier_table_t gh_tiers_default;

/* The highest non-custom tier whose threshold `cumulative_purchases_nusd` reaches (the first
 * tier when it reaches none, e.g. a negative amount). */
const gh_tier_t *gh_tier_for_purchases(const gh_tier_table_t *t,
                                       int64_t cumulative_purchases_nusd);

/* The tier with `id`, or NULL. */
const gh_tier_t *gh_tier_find(const gh_tier_table_t *t, const char *id);

/* The next non-custom tier above `tier` (a member of `t`), or NULL at the top and for custom
 * tiers. */
const gh_tier_t *gh_tier_next(const gh_tier_table_t *t, const gh_tier_t *tier);

typedef struct gh_tier_progress {
    const gh_tier_t *current; /* the tier the purchases reach */
    const gh_tier_t *next;    /* the one after it; NULL at the top */
    int64_t needed_nusd;      /* purchases still needed to reach `next`; 0 at the top */
    /* How far from `current`'s threshold to `next`'s, in basis points (0 .. 10,000);
     * 10,000 at the top. */
    int32_t progress_bp;
} gh_tier_progress_t;

/* Where `cumulative_purchases_nusd` stands on the way through the tiers of `t`. */
void gh_tier_progress(const gh_tier_table_t *t, int64_t cumulative_purchases_nusd,
                      gh_tier_progress_t *out);

#endif
