#include "core/reports.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/workspaces.h"
#include "store/store.h"

#define MAX_TIME_S INT64_C(253402300799) /* 9999-12-31T23:59:59Z */

int64_t gh_report_width_s(gh_rollup_width_t w)
{
    switch (w) {
    case GH_ROLLUP_MINUTE:
        return 60;
    case GH_ROLLUP_HOUR:
        return 3600;
    case GH_ROLLUP_DAY:
        return 86400;
    }
    assert(!"unknown bucket width");
    return 86400;
}

int64_t gh_report_floor(int64_t t_s, gh_rollup_width_t w)
{
    assert(t_s >= 0);
    int64_t width = gh_report_width_s(w);
    return t_s / width * width;
}

int64_t gh_report_ceil(int64_t t_s, gh_rollup_width_t w)
{
    int64_t f = gh_report_floor(t_s, w);
    return f == t_s ? f : f + gh_report_width_s(w);
}

/* ---- RFC 3339 ---- */

/* Reads exactly `n` digits. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool expect(const char **p, char c)
{
    if (**p != c)
        return false;
    (*p)++;
    return true;
}

static bool leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (Howard Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

gh_err_t gh_report_parse_time(const char *s, int64_t *out_s)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (!s)
        return GH_EINVAL;
    const char *p = s;
    int y, mo, d, h, mi, sec;
    if (!digits(&p, 4, &y) || !expect(&p, '-') || !digits(&p, 2, &mo) || !expect(&p, '-') ||
        !digits(&p, 2, &d) || (*p != 'T' && *p != 't'))
        return GH_EINVAL;
    p++;
    if (!digits(&p, 2, &h) || !expect(&p, ':') || !digits(&p, 2, &mi) || !expect(&p, ':') ||
        !digits(&p, 2, &sec))
        return GH_EINVAL;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return GH_EINVAL;
        for (int n = 0; *p >= '0' && *p <= '9'; p++)
            if (++n > 9)
                return GH_EINVAL;
    }
    int offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (!digits(&p, 2, &oh) || !expect(&p, ':') || !digits(&p, 2, &om) || oh > 23 || om > 59)
            return GH_EINVAL;
        offset_s = sign * (oh * 3600 + om * 60);
    } else {
        return GH_EINVAL;
    }
    if (*p != '\0' || mo < 1 || mo > 12 || d < 1 ||
        d > mdays[mo - 1] + (mo == 2 && leap(y) ? 1 : 0) || h > 23 || mi > 59 || sec > 59)
        return GH_EINVAL;
    int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset_s;
    if (t < 0 || t > MAX_TIME_S)
        return GH_EINVAL;
    *out_s = t;
    return GH_OK;
}

void gh_report_format_time(int64_t t_s, char out[GH_REPORT_TIME_MAX])
{
    time_t tt = (time_t)t_s;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, GH_REPORT_TIME_MAX, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- money ---- */

void gh_report_cents(int64_t nusd, char out[GH_REPORT_CENTS_MAX])
{
    /* A cent is 10^7 nano-USD. Work on the magnitude as unsigned, so INT64_MIN is fine. */
    uint64_t mag = nusd < 0 ? (uint64_t)0 - (uint64_t)nusd : (uint64_t)nusd;
    uint64_t whole = mag / 10000000u, frac = mag % 10000000u;
    int n = snprintf(out, GH_REPORT_CENTS_MAX, "%s%llu", nusd < 0 ? "-" : "",
                     (unsigned long long)whole);
    if (frac == 0 || n < 0)
        return;
    char f[8];
    snprintf(f, sizeof(f), "%07llu", (unsigned long long)frac);
    size_t len = 7;
    while (f[len - 1] == '0')
        len--;
    f[len] = '\0';
    snprintf(out + n, GH_REPORT_CENTS_MAX - (size_t)n, ".%s", f);
}

/* ---- page tokens ---- */

void gh_report_page_token(int64_t t_s, char out[GH_REPORT_PAGE_MAX])
{
    char t[GH_REPORT_TIME_MAX];
    gh_report_format_time(t_s, t);
    memcpy(out, "page_", 5);
    sodium_bin2base64(out + 5, GH_REPORT_PAGE_MAX - 5, (const unsigned char *)t, strlen(t),
                      sodium_base64_VARIANT_ORIGINAL);
}

gh_err_t gh_report_page_parse(const char *token, int64_t *t_s)
{
    if (!token || strncmp(token, "page_", 5) || strlen(token) >= GH_REPORT_PAGE_MAX)
        return GH_EINVAL;
    char t[GH_REPORT_TIME_MAX];
    size_t len = 0;
    const char *b64 = token + 5;
    if (sodium_base642bin((unsigned char *)t, sizeof(t) - 1, b64, strlen(b64), NULL, &len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) &&
        sodium_base642bin((unsigned char *)t, sizeof(t) - 1, b64, strlen(b64), NULL, &len, NULL,
                          sodium_base64_VARIANT_ORIGINAL_NO_PADDING))
        return GH_EINVAL;
    t[len] = '\0';
    return gh_report_parse_time(t, t_s);
}

/* ---- visibility ---- */

gh_err_t gh_report_scope(gh_app_t *app, const gh_actor_t *actor, gh_usage_query_t *q, char *msg,
                         size_t msg_size)
{
    if (actor->kind == GH_ACTOR_ADMIN_KEY || actor->role == GH_ROLE_ADMIN ||
        actor->role == GH_ROLE_BILLING)
        return GH_OK;
    gh_db_t *db = gh_store_db(app->store);
    if (!db)
        return GH_ESTORE;
    /* An explicit workspace must be one the person reaches; archived ones still count (their
     * usage is history). An unknown id gets the same answer as one out of reach. */
    for (size_t i = 0; i < q->workspaces.n; i++) {
        const char *id = q->workspaces.v[i];
        gh_workspace_t w;
        gh_ws_access_t access = {.reach = false};
        gh_err_t rc = gh_store_workspace_get(db, actor->org_id, id, &w);
        if (rc && rc != GH_ENOTFOUND)
            return rc;
        if (!rc && (rc = gh_ws_access(db, actor, &w, &access)))
            return rc;
        if (!access.reach) {
            snprintf(msg, msg_size,
                     "You can see the usage of the workspaces you are a member of and of "
                     "Default only; workspace_ids has \"%.60s\", which is not one of them.",
                     id);
            return GH_EPERM;
        }
    }
    q->member_id = actor->id;
    return GH_OK;
}

gh_err_t gh_report_run(gh_app_t *app, const gh_usage_query_t *q, gh_store_usage_total_fn fn,
                       void *ctx)
{
    gh_db_t *db = gh_store_db(app->store);
    return db ? gh_store_usage_report(db, q, fn, ctx) : GH_ESTORE;
}
