/* Platform staff: the accounts that review limit increase requests and move organizations
 * between tiers (the /staff page and /staff/api/...). An account is made staff, or stops
 * being staff, on the command line only (`gatehouse staff add|remove EMAIL`): no request can
 * grant it. Staff act on any organization; what they do is recorded in that organization's
 * audit log with them as the actor. */
#ifndef GH_CORE_STAFF_H
#define GH_CORE_STAFF_H

#include <stdbool.h>

#include "core/app.h"

/* Makes the account with `email` staff (idempotent); `by` says who ran the command.
 * GH_ENOTFOUND with a message when no account has that address (it must sign in once). */
gh_err_t gh_staff_add(gh_app_t *app, const char *email, const char *by, char *msg,
                      size_t msg_size);

/* GH_ENOTFOUND with a message when there is no such account or it is not staff. */
gh_err_t gh_staff_remove(gh_app_t *app, const char *email, char *msg, size_t msg_size);

/* Whether `account_id` is staff (false when it cannot be told). */
bool gh_staff_is(gh_app_t *app, const char *account_id);

/* Organizations whose name or id contains `query` (NULL: all), newest first, at most
 * `limit`. */
gh_err_t gh_staff_orgs_search(gh_app_t *app, const char *query, int limit,
                              gh_store_org_brief_fn fn, void *ctx);

#endif
