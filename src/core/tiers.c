#include "core/tiers.h"

#include <assert.h>
#include <string.h>

#include "lib/money.h"

#define USD(n) ((int64_t)(n) * GH_NUSD_PER_USD)

static const gh_tier_t default_tiers[] = {
    {"evaluation", "Evaluation", USD(0), USD(10), {50, 20000, 4000}, false},
    {"tier_1", "Tier 1", USD(5), USD(100), {50, 30000, 8000}, false},
    {"tier_2", "Tier 2", USD(40), USD(500), {1000, 450000, 90000}, false},
    {"tier_3", "Tier 3", USD(200), USD(1000), {2000, 800000, 160000}, false},
    {"tier_4", "Tier 4", USD(400), USD(5000), {4000, 2000000, 400000}, false},
    {"custom", "Custom", 0, 0, {0, 0, 0}, true},
};

const gh_tier_table_t gh_tiers_default = {default_tiers,
                                          sizeof(default_tiers) / sizeof(default_tiers[0])};

const gh_tier_t *gh_tier_for_purchases(const gh_tier_table_t *t,
                                       int64_t cumulative_purchases_nusd)
{
    assert(t->count > 0 && !t->tiers[0].custom);
    const gh_tier_t *best = &t->tiers[0];
    for (size_t i = 1; i < t->count; i++) {
        const gh_tier_t *tier = &t->tiers[i];
        if (tier->custom)
            continue;
        assert(tier->purchases_to_enter_nusd >= best->purchases_to_enter_nusd);
        if (cumulative_purchases_nusd >= tier->purchases_to_enter_nusd)
            best = tier;
    }
    return best;
}

const gh_tier_t *gh_tier_find(const gh_tier_table_t *t, const char *id)
{
    for (size_t i = 0; i < t->count; i++)
        if (strcmp(t->tiers[i].id, id) == 0)
            return &t->tiers[i];
    return NULL;
}

const gh_tier_t *gh_tier_next(const gh_tier_table_t *t, const gh_tier_t *tier)
{
    assert(tier >= t->tiers && tier < t->tiers + t->count);
    if (tier->custom)
        return NULL;
    for (const gh_tier_t *n = tier + 1; n < t->tiers + t->count; n++)
        if (!n->custom)
            return n;
    return NULL;
}

void gh_tier_progress(const gh_tier_table_t *t, int64_t cumulative_purchases_nusd,
                      gh_tier_progress_t *out)
{
    memset(out, 0, sizeof(*out));
    out->current = gh_tier_for_purchases(t, cumulative_purchases_nusd);
    out->next = gh_tier_next(t, out->current);
    if (!out->next) {
        out->progress_bp = 10000;
        return;
    }
    int64_t from = out->current->purchases_to_enter_nusd;
    int64_t to = out->next->purchases_to_enter_nusd;
    int64_t have = cumulative_purchases_nusd < from ? from : cumulative_purchases_nusd;
    out->needed_nusd = to > have ? to - have : 0;
    if (to > from) /* 128 bits: thresholds are user data and may be large */
        out->progress_bp = (int32_t)((__int128)(have - from) * 10000 / (to - from));
}
