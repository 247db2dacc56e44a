/* Spend notifications (issue 16, point 10): rules an organization's admins and billing
 * members set on the Limits page, and the check that mails them when a rule is reached.
 *
 * A rule is one of: the month's spend reached an amount ("spend_amount"), or a percentage of
 * the monthly spend limit ("spend_percent": of the effective limit, the lower of the
 * organization's own and its tier's cap; no limit, no notice), or the credit balance fell
 * below an amount while auto-reload is off ("balance_below"). A spend rule fires at most once
 * per UTC month; a balance rule once per fall, again after the balance was back at or above
 * its amount.
 *
 * Where it is checked: gh_notify_check runs in the usage writer's transaction that charges a
 * batch of usage (billing's usage hook), never on the model path. The row that says "this
 * rule was notified (for this month)" and the mail's outbox rows are written in that same
 * transaction, so a crash neither sends a notice twice nor loses it. */
#ifndef GH_CORE_NOTIFY_H
#define GH_CORE_NOTIFY_H

#include <stdbool.h>

#include "core/actor.h"
#include "core/app.h"
#include "store/notify.h"

#define GH_NOTIFY_RULES_MAX 20 /* rules per organization */

/* Up to GH_NOTIFY_RULES_MAX rules of the actor's organization into `out` (oldest first), with
 * `notified_at` for the current month. Admins and billing members only (GH_EPERM). */
gh_err_t gh_notify_list(gh_app_t *app, const gh_actor_t *actor, gh_spend_notif_t *out,
                        size_t *n, char *msg, size_t msg_size);

/* Adds a rule (`in->kind` with `amount_nusd` or `percent`), with its audit event, in one
 * transaction; the stored rule in `out`. GH_EINVAL with a sentence in `msg` for a kind, amount
 * or percentage out of range and when the organization has GH_NOTIFY_RULES_MAX already,
 * GH_ECONFLICT for a rule that already exists. */
gh_err_t gh_notify_add(gh_app_t *app, const gh_actor_t *actor, const gh_spend_notif_t *in,
                       gh_spend_notif_t *out, char *msg, size_t msg_size);

/* Removes a rule with its audit event. GH_ENOTFOUND when the organization has no such rule. */
gh_err_t gh_notify_remove(gh_app_t *app, const gh_actor_t *actor, const char *id, char *msg,
                          size_t msg_size);

/* Checks `org_id`'s rules on `db`, inside the caller's transaction (the usage writer's, right
 * after `cost_nusd` of usage was charged, on every charge): adds the cost to the month's spend
 * it keeps, and marks a rule reached and not yet notified and queues its mail to the admins
 * and billing members. Cheap when the organization has no rule (one indexed read), and a few
 * primary-key reads when it has. A rule that cannot be checked does not keep the usage out:
 * that work runs in a savepoint of its own, and its failure is logged and undone; an error is
 * returned only when the rules cannot be read. Call gh_notify_committed after the commit. */
gh_err_t gh_notify_check(gh_app_t *app, gh_db_t *db, const char *org_id, int64_t cost_nusd);

/* After the commit of a transaction that ran gh_notify_check: wakes the mailer when a
 * notice was queued. Never waits. */
void gh_notify_committed(gh_app_t *app);

#endif
