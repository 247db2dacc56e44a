/* Usage and cost reports: the rules the API's report endpoints share, with no HTTP in them.
 *
 * - Time: RFC 3339 in (Z or an offset), Unix seconds inside, buckets of a minute, an hour or
 *   a day aligned to UTC. A range starts at the bucket holding starting_at and ends at the
 *   end of the bucket holding ending_at (that bucket included).
 * - Pages: a page token names the first bucket of the next page ("page_" + base64 of its
 *   RFC 3339 start, as Anthropic's look).
 * - Money: report amounts are decimal strings in cents, exact: nano-USD / 10^7.
 * - Visibility: admins, billing members and admin keys see every workspace; users and
 *   developers see only the workspaces they reach (Default and their own), and asking for
 *   another one is refused. */
#ifndef GH_CORE_REPORTS_H
#define GH_CORE_REPORTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/actor.h"
#include "core/app.h"
#include "store/rows.h"

/* The store's handles (store/store.h), used here only by pointer. */
typedef struct gh_store gh_store_t;
typedef struct gh_db gh_db_t;

#define GH_REPORT_TIME_MAX 32  /* "9999-12-31T23:59:59Z" and NUL */
#define GH_REPORT_CENTS_MAX 32 /* "-922337203685.4775808" and NUL */
#define GH_REPORT_PAGE_MAX 48  /* "page_" + base64 of a time */

/* The width of `w` in seconds. */
int64_t gh_report_width_s(gh_rollup_width_t w);

/* The start of the bucket of width `w` holding `t_s` (t_s >= 0). */
int64_t gh_report_floor(int64_t t_s, gh_rollup_width_t w);

/* The first bucket boundary at or after `t_s`. */
int64_t gh_report_ceil(int64_t t_s, gh_rollup_width_t w);

/* Parses an RFC 3339 date-time ("2026-03-01T00:00:00Z", "2026-03-01T01:30:00.5+02:00";
 * "t" and "z" may be lower case) into Unix seconds, fractions dropped. GH_EINVAL for
 * anything else, impossible dates and times, or a time before 1970 or after 9999. */
gh_err_t gh_report_parse_time(const char *s, int64_t *out_s);

/* "2026-03-01T00:00:00Z" for `t_s`. */
void gh_report_format_time(int64_t t_s, char out[GH_REPORT_TIME_MAX]);

/* The amount of `nusd` nano-USD in cents as an exact decimal string, without trailing zeros:
 * 1234567890 -> "123.456789", 500000000 -> "50", 1 -> "0.0000001", 0 -> "0". */
void gh_report_cents(int64_t nusd, char out[GH_REPORT_CENTS_MAX]);

/* The page token for a page starting at `t_s`. */
void gh_report_page_token(int64_t t_s, char out[GH_REPORT_PAGE_MAX]);

/* The bucket start a page token names. GH_EINVAL when it is not a token. */
gh_err_t gh_report_page_parse(const char *token, int64_t *t_s);

/* Limits the query to what `actor` may see: for users and developers, only the workspaces
 * they reach (q->member_id); a workspace in q->workspaces outside that is GH_EPERM with a
 * message in `msg`. Admins, billing members and admin keys are not limited. */
gh_err_t gh_report_scope(gh_app_t *app, const gh_actor_t *actor, gh_usage_query_t *q, char *msg,
                         size_t msg_size);

/* Runs a report query (after gh_report_scope): `fn` gets each group with requests, in bucket
 * order. Reads only the rollups of the query's width. */
gh_err_t gh_report_run(gh_app_t *app, const gh_usage_query_t *q, gh_store_usage_total_fn fn,
                       void *ctx);

#endif
