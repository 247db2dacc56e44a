#include "core/staff.h"

#include <stdio.h>

#include "lib/log.h"
#include "lib/text.h"
#include "store/store.h"

/* The account with `email`, with a message when there is none. */
static gh_err_t find(gh_db_t *db, const char *email, gh_account_t *out, char *msg,
                     size_t msg_size)
{
    char norm[GH_EMAIL_MAX];
    if (gh_email_normalize(email, norm, sizeof(norm))) {
        snprintf(msg, msg_size, "\"%.80s\" is not an email address.", email);
        return GH_EINVAL;
    }
    gh_err_t rc = gh_store_account_by_email(db, norm, out);
    if (rc == GH_ENOTFOUND)
        snprintf(msg, msg_size, "There is no account for %s: it must sign in to the console once "
                                "first.", norm);
    return rc;
}

gh_err_t gh_staff_add(gh_app_t *app, const char *email, const char *by, char *msg,
                      size_t msg_size)
{
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    gh_account_t a;
    gh_err_t rc = find(db, email, &a, msg, msg_size);
    if (!rc)
        rc = gh_store_staff_add(db, a.id, by, app->now());
    if (!rc)
        gh_log_info("staff: %s (%s) is staff, added by %s", a.email, a.id, by);
    return rc;
}

gh_err_t gh_staff_remove(gh_app_t *app, const char *email, char *msg, size_t msg_size)
{
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    gh_account_t a;
    gh_err_t rc = find(db, email, &a, msg, msg_size);
    if (!rc && (rc = gh_store_staff_remove(db, a.id)) == GH_ENOTFOUND)
        snprintf(msg, msg_size, "%s is not staff.", a.email);
    return rc;
}

bool gh_staff_is(gh_app_t *app, const char *account_id)
{
    gh_db_t *db = gh_store_db(app->store);
    bool staff = false;
    return db && account_id && *account_id && !gh_store_staff_is(db, account_id, &staff) && staff;
}

gh_err_t gh_staff_orgs_search(gh_app_t *app, const char *query, int limit,
                              gh_store_org_brief_fn fn, void *ctx)
{
    gh_db_t *db = gh_store_db(app->store);
    return db ? gh_store_orgs_search(db, query, limit, fn, ctx) : GH_ESTORE;
}
