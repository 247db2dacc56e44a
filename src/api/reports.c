/* GET /v1/organizations/usage_report/messages and GET /v1/organizations/cost_report, in the
 * shapes of Anthropic's Admin API (docs/api.md "Usage and cost reports"). Both read only the
 * usage rollups (through core/reports.h); the rules they share are in core/reports.c.
 *
 * Query parameters are strict: an unknown name, a repeated single value, a bad value or a
 * list too long is a 400 naming it. Lists are sent as `name[]=a&name[]=b` (Anthropic's SDKs)
 * or `name=a&name=b`. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "core/reports.h"

typedef enum { REPORT_USAGE, REPORT_COST } report_kind_t;

/* Dimensions a report can be grouped by. The fixed ones have a single value in Gatehouse
 * (docs/api.md says which). */
enum {
    G_WORKSPACE = 1 << 0,
    G_KEY = 1 << 1,
    G_MODEL = 1 << 2,
    G_DESCRIPTION = 1 << 3,
    G_SERVICE_TIER = 1 << 4,
    G_CONTEXT_WINDOW = 1 << 5,
    G_INFERENCE_GEO = 1 << 6,
    G_ACCOUNT = 1 << 7,
    G_SERVICE_ACCOUNT = 1 << 8,
};

typedef struct {
    const char *name;
    unsigned bit;
} group_name_t;

static const group_name_t usage_groups[] = {
    {"api_key_id", G_KEY},
    {"workspace_id", G_WORKSPACE},
    {"model", G_MODEL},
    {"service_tier", G_SERVICE_TIER},
    {"context_window", G_CONTEXT_WINDOW},
    {"inference_geo", G_INFERENCE_GEO},
    {"account_id", G_ACCOUNT},
    {"service_account_id", G_SERVICE_ACCOUNT},
    {NULL, 0},
};

/* Anthropic's two, then Gatehouse's extensions. */
static const group_name_t cost_groups[] = {
    {"workspace_id", G_WORKSPACE},
    {"description", G_DESCRIPTION},
    {"api_key_id", G_KEY},
    {"model", G_MODEL},
    {NULL, 0},
};

/* Filters on dimensions that have one fixed value here: the allowed values, and the one our
 * usage has. A filter without it matches nothing; account filters never match (all usage
 * comes from API keys, not from accounts). */
typedef struct {
    const char *name;
    const char *const *allowed; /* NULL: any id */
    const char *ours;           /* NULL: nothing matches */
} fixed_filter_t;

static const char *const tiers[] = {"standard", "batch",    "priority", "priority_on_demand",
                                    "flex",     "flex_discount", NULL};
static const char *const windows[] = {"0-200k", "200k-1M", NULL};
static const char *const geos[] = {"global", "us", "not_available", NULL};

static const fixed_filter_t fixed_filters[] = {
    {"service_tiers", tiers, "standard"},
    {"context_window", windows, "0-200k"},
    {"inference_geos", geos, "not_available"},
    {"account_ids", NULL, NULL},
    {"service_account_ids", NULL, NULL},
};

#define NFIXED (sizeof(fixed_filters) / sizeof(fixed_filters[0]))

typedef struct {
    report_kind_t kind;
    const char *starting_at, *ending_at, *bucket_width, *limit, *page;
    gh_usage_list_t workspaces, keys, models;
    bool fixed_seen[NFIXED], fixed_match[NFIXED];
    unsigned group;
    char err[320]; /* the first problem found */
} params_t;

/* The name without a trailing "[]"; `len` receives its length. */
static size_t base_len(const char *name)
{
    size_t n = strlen(name);
    return n > 2 && !strcmp(name + n - 2, "[]") ? n - 2 : n;
}

static bool name_is(const char *name, size_t len, const char *want)
{
    return strlen(want) == len && !strncmp(name, want, len);
}

static bool fail(params_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Keeps the first problem found; returns false, to stop the visit. */
static bool fail(params_t *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof(p->err), fmt, ap);
    va_end(ap);
    return false;
}

static bool set_scalar(params_t *p, const char **slot, const char *name, const char *value)
{
    if (*slot)
        return fail(p, "%s was sent more than once; send it once.", name);
    if (!value || !*value)
        return fail(p, "%s is empty; give it a value.", name);
    *slot = value;
    return true;
}

static bool add_to_list(params_t *p, gh_usage_list_t *l, const char *name, const char *value,
                        size_t max_len)
{
    if (!value || !*value)
        return fail(p, "%s[] has an empty value.", name);
    if (strlen(value) > max_len)
        return fail(p, "%s[] has a value longer than any valid one: \"%.60s\".", name, value);
    if (l->n == GH_USAGE_FILTER_MAX)
        return fail(p, "%s[] has more than %d values; send at most %d.", name,
                    GH_USAGE_FILTER_MAX, GH_USAGE_FILTER_MAX);
    l->v[l->n++] = value;
    return true;
}

static bool add_group(params_t *p, const char *value)
{
    const group_name_t *groups = p->kind == REPORT_USAGE ? usage_groups : cost_groups;
    for (const group_name_t *g = groups; value && g->name; g++) {
        if (!strcmp(g->name, value)) {
            p->group |= g->bit;
            return true;
        }
    }
    char names[256] = "";
    for (const group_name_t *g = groups; g->name; g++) {
        size_t n = strlen(names);
        snprintf(names + n, sizeof(names) - n, "%s%s", n ? ", " : "", g->name);
    }
    return fail(p, "group_by[] cannot be \"%.40s\"; use any of %s.", value ? value : "", names);
}

static bool visit(void *ctx, const char *name, const char *value)
{
    params_t *p = ctx;
    size_t len = base_len(name);
    bool list = len != strlen(name);
    const char *scalars[] = {"starting_at", "ending_at", "bucket_width", "limit", "page"};
    const char **slots[] = {&p->starting_at, &p->ending_at, &p->bucket_width, &p->limit,
                            &p->page};
    for (size_t i = 0; i < 5; i++)
        if (!list && !strcmp(name, scalars[i]))
            return set_scalar(p, slots[i], name, value);
    if (name_is(name, len, "group_by"))
        return add_group(p, value);
    /* The cost report takes these three as Gatehouse extensions. */
    if (name_is(name, len, "workspace_ids"))
        return add_to_list(p, &p->workspaces, "workspace_ids", value, GH_ID_MAX - 1);
    if (name_is(name, len, "api_key_ids"))
        return add_to_list(p, &p->keys, "api_key_ids", value, GH_ID_MAX - 1);
    if (name_is(name, len, "models"))
        return add_to_list(p, &p->models, "models", value, 127);
    for (size_t i = 0; p->kind == REPORT_USAGE && i < NFIXED; i++) {
        const fixed_filter_t *f = &fixed_filters[i];
        if (!name_is(name, len, f->name))
            continue;
        if (!value || !*value)
            return fail(p, "%s[] has an empty value.", f->name);
        bool known = !f->allowed;
        for (const char *const *a = f->allowed; a && *a; a++)
            known |= !strcmp(*a, value);
        if (!known)
            return fail(p, "%s[] cannot be \"%.40s\".", f->name, value);
        p->fixed_seen[i] = true;
        p->fixed_match[i] |= f->ours && !strcmp(f->ours, value);
        return true;
    }
    return fail(p, "Unknown query parameter \"%.60s\"; see the API documentation for this "
                   "report's parameters.",
                name);
}

/* Everything about the range and the page, resolved. */
typedef struct {
    gh_rollup_width_t width;
    int64_t start_s, end_s;           /* the whole range asked */
    int64_t page_start_s, page_end_s; /* this page */
    bool has_more;
} range_t;

/* Reads the query; answers 400 itself and returns false on any problem. */
static bool read_params(gh_req_t *req, params_t *p, range_t *r, int64_t now_s)
{
    gh_req_query_each(req, visit, p);
    if (p->err[0]) {
        gh_res_error(req, GH_EINVAL, "%s", p->err);
        return false;
    }
    if (!p->starting_at) {
        gh_res_error(req, GH_EINVAL, "starting_at is required: an RFC 3339 time such as "
                                     "2026-03-01T00:00:00Z.");
        return false;
    }
    int64_t start, end = 0;
    if (gh_report_parse_time(p->starting_at, &start)) {
        gh_res_error(req, GH_EINVAL,
                     "starting_at \"%.40s\" is not an RFC 3339 time between 1970 and 9999, "
                     "such as 2026-03-01T00:00:00Z or 2026-03-01T01:00:00+01:00.",
                     p->starting_at);
        return false;
    }
    if (p->ending_at && gh_report_parse_time(p->ending_at, &end)) {
        gh_res_error(req, GH_EINVAL,
                     "ending_at \"%.40s\" is not an RFC 3339 time between 1970 and 9999, "
                     "such as 2026-03-08T00:00:00Z or 2026-03-08T01:00:00+01:00.",
                     p->ending_at);
        return false;
    }
    if (p->ending_at && end < start) {
        gh_res_error(req, GH_EINVAL, "ending_at (%.40s) is before starting_at (%.40s).",
                     p->ending_at, p->starting_at);
        return false;
    }

    static const struct {
        const char *name;
        gh_rollup_width_t width;
        int limit_default, limit_max;
    } widths[] = {
        {"1d", GH_ROLLUP_DAY, 7, 31},
        {"1h", GH_ROLLUP_HOUR, 24, 168},
        {"1m", GH_ROLLUP_MINUTE, 60, 1440},
    };
    size_t w = 0;
    if (p->bucket_width) {
        size_t choices = p->kind == REPORT_COST ? 1 : 3;
        for (w = 0; w < choices && strcmp(widths[w].name, p->bucket_width); w++)
            ;
        if (w == choices) {
            if (p->kind == REPORT_COST)
                gh_res_error(req, GH_EINVAL, "bucket_width must be 1d for the cost report, "
                                             "not \"%.10s\".", p->bucket_width);
            else
                gh_res_error(req, GH_EINVAL, "bucket_width must be 1m, 1h or 1d, not \"%.10s\".",
                             p->bucket_width);
            return false;
        }
    }
    r->width = widths[w].width;
    int limit = widths[w].limit_default;
    if (p->limit) {
        char *e;
        errno = 0;
        long v = strtol(p->limit, &e, 10);
        if (errno || e == p->limit || *e || v < 1 || v > widths[w].limit_max) {
            gh_res_error(req, GH_EINVAL,
                         "limit must be a whole number from 1 to %d for bucket_width %s.",
                         widths[w].limit_max, widths[w].name);
            return false;
        }
        limit = (int)v;
    }

    /* The range: from the bucket holding starting_at to the end of the bucket holding
     * ending_at (or now). */
    r->start_s = gh_report_floor(start, r->width);
    r->end_s = gh_report_ceil(p->ending_at ? end : now_s + 1, r->width);
    if (!p->ending_at && r->end_s < r->start_s)
        r->end_s = r->start_s; /* starting in the future: nothing yet */
    if (p->ending_at && end == start)
        r->end_s = r->start_s; /* an empty range */
    if (r->width == GH_ROLLUP_MINUTE) {
        int64_t oldest = gh_report_floor(now_s, GH_ROLLUP_MINUTE) - GH_USAGE_MINUTE_RETENTION_S;
        if (r->start_s < oldest) {
            char t[GH_REPORT_TIME_MAX];
            gh_report_format_time(oldest, t);
            gh_res_error(req, GH_EINVAL,
                         "Minute buckets are kept for %d days: starting_at must be %s or later "
                         "with bucket_width 1m. Use 1h or 1d for older usage.",
                         (int)(GH_USAGE_MINUTE_RETENTION_S / 86400), t);
            return false;
        }
    }
    r->page_start_s = r->start_s;
    if (p->page) {
        int64_t at;
        if (gh_report_page_parse(p->page, &at) || at != gh_report_floor(at, r->width) ||
            at <= r->start_s || at >= r->end_s) {
            gh_res_error(req, GH_EINVAL, "page is not a next_page token of this query; send "
                                         "the same parameters with the next_page you got.");
            return false;
        }
        r->page_start_s = at;
    }
    int64_t span = (int64_t)limit * gh_report_width_s(r->width);
    r->page_end_s = r->end_s - r->page_start_s > span ? r->page_start_s + span : r->end_s;
    r->has_more = r->page_end_s < r->end_s;
    return true;
}

/* Sets up the query for this organization and caller; answers and returns false when the
 * caller may not see what was asked. */
static bool make_query(gh_req_t *req, params_t *p, const range_t *r, gh_usage_query_t *q)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    *q = (gh_usage_query_t){
        .org_id = ctx->actor.org_id,
        .width = r->width,
        .start_s = r->page_start_s,
        .end_s = r->page_end_s,
        .workspaces = p->workspaces,
        .keys = p->keys,
        .models = p->models,
        .by_workspace = p->group & G_WORKSPACE,
        .by_key = p->group & G_KEY,
        .by_model = p->group & (G_MODEL | G_DESCRIPTION),
    };
    for (size_t i = 0; i < NFIXED; i++)
        q->none |= p->fixed_seen[i] && !p->fixed_match[i];
    char msg[320] = "";
    gh_err_t rc = gh_report_scope(ctx->app, &ctx->actor, q, msg, sizeof(msg));
    if (rc) {
        gh_api_fail(req, rc, msg, "Could not check which workspaces you reach. Try again.");
        return false;
    }
    return true;
}

/* ---- answers ---- */

static json_t *str_or_null(bool grouped, const char *v)
{
    return grouped && v ? json_string(v) : json_null();
}

static json_t *usage_result(unsigned group, const gh_usage_total_t *t)
{
    json_t *o = json_object();
    json_object_set_new(o, "uncached_input_tokens", json_integer(t->input_tokens));
    json_object_set_new(o, "cache_creation",
                        json_pack("{s:I, s:I}", "ephemeral_1h_input_tokens", (json_int_t)0,
                                  "ephemeral_5m_input_tokens",
                                  (json_int_t)t->cache_creation_tokens));
    json_object_set_new(o, "cache_read_input_tokens", json_integer(t->cache_read_tokens));
    json_object_set_new(o, "output_tokens", json_integer(t->output_tokens));
    json_object_set_new(o, "server_tool_use",
                        json_pack("{s:I}", "web_search_requests", (json_int_t)0));
    json_object_set_new(o, "api_key_id", str_or_null(group & G_KEY, t->key_id));
    json_object_set_new(o, "workspace_id", str_or_null(group & G_WORKSPACE, t->workspace_id));
    json_object_set_new(o, "model", str_or_null(group & G_MODEL, t->model));
    json_object_set_new(o, "service_tier", str_or_null(group & G_SERVICE_TIER, "standard"));
    json_object_set_new(o, "context_window", str_or_null(group & G_CONTEXT_WINDOW, "0-200k"));
    json_object_set_new(o, "inference_geo",
                        str_or_null(group & G_INFERENCE_GEO, "not_available"));
    json_object_set_new(o, "account_id", json_null());
    json_object_set_new(o, "service_account_id", json_null());
    return o;
}

/* One cost line: `token_type` NULL for a group's total (not grouped by description). */
static json_t *cost_result(unsigned group, const gh_usage_total_t *t, const char *token_type,
                           const char *label, int64_t nusd)
{
    char amount[GH_REPORT_CENTS_MAX], description[192];
    gh_report_cents(nusd, amount);
    bool d = token_type != NULL;
    if (d)
        snprintf(description, sizeof(description), "%s Usage - %s", t->model ? t->model : "",
                 label);
    json_t *o = json_object();
    json_object_set_new(o, "currency", json_string("USD"));
    json_object_set_new(o, "amount", json_string(amount));
    json_object_set_new(o, "workspace_id", str_or_null(group & G_WORKSPACE, t->workspace_id));
    json_object_set_new(o, "description", str_or_null(d, description));
    json_object_set_new(o, "cost_type", str_or_null(d, "tokens"));
    json_object_set_new(o, "context_window", str_or_null(d, "0-200k"));
    json_object_set_new(o, "model", str_or_null(d || (group & G_MODEL), t->model));
    json_object_set_new(o, "service_tier", str_or_null(d, "standard"));
    json_object_set_new(o, "token_type", str_or_null(d, token_type));
    json_object_set_new(o, "inference_geo", json_null());
    if (group & G_KEY) /* a Gatehouse extension, present only when asked for */
        json_object_set_new(o, "api_key_id", str_or_null(true, t->key_id));
    return o;
}

static void add_cost_results(json_t *results, unsigned group, const gh_usage_total_t *t)
{
    if (!(group & G_DESCRIPTION)) {
        int64_t total = t->input_cost_nusd + t->cache_creation_cost_nusd +
                        t->cache_read_cost_nusd + t->output_cost_nusd;
        if (total != 0)
            json_array_append_new(results, cost_result(group, t, NULL, NULL, total));
        return;
    }
    const struct {
        const char *type, *label;
        int64_t nusd;
    } lines[] = {
        {"uncached_input_tokens", "Input Tokens", t->input_cost_nusd},
        {"cache_creation.ephemeral_5m_input_tokens", "Cache Write Tokens",
         t->cache_creation_cost_nusd},
        {"cache_read_input_tokens", "Cache Read Tokens", t->cache_read_cost_nusd},
        {"output_tokens", "Output Tokens", t->output_cost_nusd},
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        if (lines[i].nusd != 0)
            json_array_append_new(results,
                                  cost_result(group, t, lines[i].type, lines[i].label,
                                              lines[i].nusd));
}

/* Builds the buckets of a page as the store's groups arrive (in bucket order); every bucket
 * of the page is in the answer, empty ones with no results. */
typedef struct {
    report_kind_t kind;
    unsigned group;
    const range_t *range;
    json_t *data;
    json_t *results; /* of the last bucket appended */
    int64_t next_s;  /* the start of the next bucket to append */
} builder_t;

static void append_buckets_until(builder_t *b, int64_t until_s)
{
    int64_t width = gh_report_width_s(b->range->width);
    for (; b->next_s <= until_s && b->next_s < b->range->page_end_s; b->next_s += width) {
        char s[GH_REPORT_TIME_MAX], e[GH_REPORT_TIME_MAX];
        gh_report_format_time(b->next_s, s);
        gh_report_format_time(b->next_s + width, e);
        b->results = json_array();
        json_array_append_new(b->data, json_pack("{s:s, s:s, s:o}", "starting_at", s,
                                                 "ending_at", e, "results", b->results));
    }
}

static void on_total(void *ctx, const gh_usage_total_t *t)
{
    builder_t *b = ctx;
    append_buckets_until(b, t->bucket_start_s);
    if (b->kind == REPORT_USAGE)
        json_array_append_new(b->results, usage_result(b->group, t));
    else
        add_cost_results(b->results, b->group, t);
}

static void run_report(gh_req_t *req, report_kind_t kind)
{
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    params_t p = {.kind = kind};
    range_t r;
    gh_usage_query_t q;
    if (!read_params(req, &p, &r, ctx->app->now()) || !make_query(req, &p, &r, &q))
        return;
    builder_t b = {.kind = kind, .group = p.group, .range = &r, .data = json_array(),
                   .next_s = r.page_start_s};
    gh_err_t rc = gh_report_run(ctx->app, &q, on_total, &b);
    if (rc) {
        json_decref(b.data);
        gh_res_error(req, rc, "Could not read the %s report. Try again.",
                     kind == REPORT_USAGE ? "usage" : "cost");
        return;
    }
    append_buckets_until(&b, r.page_end_s);
    char next[GH_REPORT_PAGE_MAX];
    if (r.has_more)
        gh_report_page_token(r.page_end_s, next);
    gh_res_json(req, 200,
                json_pack("{s:o, s:b, s:o}", "data", b.data, "has_more", r.has_more,
                          "next_page", r.has_more ? json_string(next) : json_null()));
}

void gh_api_usage_report(gh_req_t *req)
{
    run_report(req, REPORT_USAGE);
}

void gh_api_cost_report(gh_req_t *req)
{
    run_report(req, REPORT_COST);
}
