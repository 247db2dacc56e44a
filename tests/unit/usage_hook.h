/* Billing's part of the usage writer's commit, reduced, for tests of the writer
 * (core/usage.h) on either store: one usage entry per organization charged, through
 * gh_store_ledger_append, in the writer's transaction. Its organization must exist (a foreign
 * key on both backends), so an event of an organization that does not exist is refused for
 * its values. Header-only: each test binary includes it once. */
#ifndef GH_TESTS_USAGE_HOOK_H
#define GH_TESTS_USAGE_HOOK_H

#include <stdio.h>

#include "core/usage.h"
#include "store/store.h"

static gh_err_t usage_hook_charge(void *ctx, gh_db_t *db, const gh_usage_charge_t *c, size_t n)
{
    (void)ctx;
    for (size_t i = 0; i < n; i++) {
        gh_ledger_entry_t e = {.amount_nusd = -c[i].cost_nusd, .created_at = 1};
        snprintf(e.org_id, sizeof(e.org_id), "%s", c[i].org_id);
        snprintf(e.kind, sizeof(e.kind), "usage");
        snprintf(e.reference, sizeof(e.reference), "usage:%lld-%lld", (long long)c[i].first_seq,
                 (long long)c[i].last_seq);
        gh_err_t rc = gh_store_ledger_append(db, &e);
        if (rc)
            return rc;
    }
    return GH_OK;
}

static const gh_usage_hook_t hook = {.charge = usage_hook_charge};

#endif
