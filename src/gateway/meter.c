/* Usage metering: the SSE parser and usage extraction. See meter.h. */
#include "gateway/meter.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/request.h"
#include "lib/money.h"

/* ---- SSE ----------------------------------------------------------------------------------- */

enum {
    ST_FIELD,       /* reading the field name (or nothing yet) */
    ST_VALUE_START, /* just past the colon: one space is skipped */
    ST_VALUE,       /* reading the value */
    ST_IGNORE,      /* a comment, or the value of a field we do not keep */
};

enum { KIND_OTHER, KIND_DATA, KIND_EVENT };

void gh_sse_init(gh_sse_t *p, char *buf, size_t cap)
{
    assert(cap > 0);
    memset(p, 0, sizeof(*p));
    p->data = buf;
    p->data_cap = cap;
    p->state = ST_FIELD;
    p->line_empty = true;
}

void gh_sse_allow_growth(gh_sse_t *p, size_t max)
{
    p->data_max = max;
}

void gh_sse_dispose(gh_sse_t *p)
{
    free(p->grown);
    p->grown = NULL;
}

/* Moves the data to a buffer of data_max bytes, once; false when it may not or cannot. */
static bool grow(gh_sse_t *p)
{
    if (p->grown != NULL || p->data_max <= p->data_cap)
        return false;
    p->grown = malloc(p->data_max);
    if (p->grown == NULL)
        return false;
    memcpy(p->grown, p->data, p->data_len);
    p->data = p->grown;
    p->data_cap = p->data_max;
    return true;
}

static int field_kind(const gh_sse_t *p)
{
    if (p->field_len == 4 && memcmp(p->field, "data", 4) == 0)
        return KIND_DATA;
    if (p->field_len == 5 && memcmp(p->field, "event", 5) == 0)
        return KIND_EVENT;
    return KIND_OTHER;
}

static void append_data(gh_sse_t *p, const char *s, size_t n)
{
    size_t room = p->data_cap - p->data_len;
    if (n > room && grow(p))
        room = p->data_cap - p->data_len;
    if (n > room) {
        n = room;
        p->data_truncated = true;
    }
    memcpy(p->data + p->data_len, s, n);
    p->data_len += n;
}

static void append_event(gh_sse_t *p, const char *s, size_t n)
{
    size_t room = sizeof(p->event) - p->event_len;
    if (n > room) {
        n = room;
        p->event_truncated = true;
    }
    memcpy(p->event + p->event_len, s, n);
    p->event_len += n;
}

/* A field's value begins (its name is complete). */
static void begin_value(gh_sse_t *p, int kind)
{
    if (kind == KIND_DATA) {
        if (p->data_seen)
            append_data(p, "\n", 1);
        p->data_seen = true;
    } else if (kind == KIND_EVENT) {
        p->event_len = 0;
        p->event_truncated = false;
    }
}

/* The line just ended. Returns whether it was blank (which ends an event). */
static bool end_line(gh_sse_t *p, gh_sse_event_cb cb, void *ctx)
{
    bool blank = p->line_empty;
    if (blank) {
        if (p->data_seen) {
            /* An event type cut to fit is no type we know: pass it on as unnamed junk. */
            size_t event_len = p->event_truncated ? 0 : p->event_len;
            cb(ctx, p->event, event_len, p->data, p->data_len, p->data_truncated);
        }
        p->data_len = 0;
        p->data_seen = false;
        p->data_truncated = false;
        p->event_len = 0;
        p->event_truncated = false;
    } else if (p->state == ST_FIELD) {
        /* A line with no colon is a field with an empty value. */
        begin_value(p, field_kind(p));
    }
    p->state = ST_FIELD;
    p->field_len = 0;
    p->line_empty = true;
    return blank;
}

void gh_sse_feed(gh_sse_t *p, const char *data, size_t len, gh_sse_event_cb cb, void *ctx)
{
    size_t i = 0;
    while (i < len) {
        char c = data[i];
        if (p->after_cr) {
            p->after_cr = false;
            if (c == '\n') {
                /* The second half of a CRLF: the line already ended at the CR. */
                if (p->boundary == p->offset)
                    p->boundary++;
                p->offset++;
                i++;
                continue;
            }
        }
        if (c == '\n' || c == '\r') {
            bool blank = end_line(p, cb, ctx);
            p->after_cr = c == '\r';
            p->offset++;
            i++;
            if (blank)
                p->boundary = p->offset;
            continue;
        }
        p->line_empty = false;
        switch (p->state) {
        case ST_FIELD:
            if (c == ':') {
                int kind = p->field_len == 0 ? -1 : field_kind(p);
                if (kind == KIND_DATA || kind == KIND_EVENT) {
                    begin_value(p, kind);
                    p->state = ST_VALUE_START;
                } else {
                    p->state = ST_IGNORE; /* a comment, or a field we do not keep */
                }
            } else if (p->field_len < sizeof(p->field)) {
                p->field[p->field_len++] = c;
            } else {
                p->field_len = sizeof(p->field) + 1; /* longer than any field we know */
            }
            p->offset++;
            i++;
            break;
        case ST_VALUE_START:
            p->state = ST_VALUE;
            if (c == ' ') {
                p->offset++;
                i++;
            }
            break;
        case ST_VALUE:
        case ST_IGNORE: {
            size_t j = i;
            while (j < len && data[j] != '\n' && data[j] != '\r')
                j++;
            if (p->state == ST_VALUE) {
                if (field_kind(p) == KIND_DATA)
                    append_data(p, data + i, j - i);
                else
                    append_event(p, data + i, j - i);
            }
            p->offset += j - i;
            i = j;
            break;
        }
        default:
            assert(!"unknown SSE parser state");
        }
    }
}

/* ---- JSON helpers -------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    size_t name_len;
    gh_json_member_t found;
    bool ok;
} find_ctx_t;

static bool key_is(const gh_json_member_t *m, const char *name, size_t name_len)
{
    if (!m->key_escaped)
        return m->key_len == name_len && memcmp(m->key, name, name_len) == 0;
    char key[64];
    size_t klen;
    return gh_request_unescape(m->key, m->key_len, key, sizeof(key), &klen) &&
           klen == name_len && memcmp(key, name, name_len) == 0;
}

static int on_find(void *arg, const gh_json_member_t *m)
{
    find_ctx_t *f = arg;
    if (!key_is(m, f->name, f->name_len))
        return 0;
    f->found = *m;
    f->ok = true;
    return 1; /* stop: the first one is the one */
}

/* Finds the top-level member `name` of the JSON object `json`; returns whether found. */
static bool find_member(const char *json, size_t len, const char *name, gh_json_member_t *out)
{
    find_ctx_t f = {name, strlen(name), {0}, false};
    gh_request_scan(json, len, GH_REQUEST_DEPTH_MAX, on_find, &f, NULL, NULL);
    if (f.ok)
        *out = f.found;
    return f.ok;
}

/* A token count: a JSON integer >= 0, the member's value `json[value_start, value_end)`. */
static bool count_of(const char *json, const gh_json_member_t *m, int64_t *out)
{
    int64_t v = 0;
    if (m->type != GH_JSON_NUMBER || m->value_end <= m->value_start)
        return false;
    for (size_t i = m->value_start; i < m->value_end; i++) {
        char c = json[i];
        if (c < '0' || c > '9')
            return false;
        if (v > (INT64_MAX - (c - '0')) / 10)
            return false;
        v = v * 10 + (c - '0');
    }
    *out = v;
    return true;
}

#define KEY_IS(m, lit) key_is((m), lit, sizeof(lit) - 1)

/* What one usage object says, member by member (a later duplicate wins). */
typedef struct {
    gh_meter_style_t style;
    const char *json;
    gh_meter_usage_t *u;
    int64_t prompt, cached;
    bool any;
} usage_ctx_t;

/* prompt_tokens_details: `json` is that object's text, which offsets count from. */
typedef struct {
    const char *json;
    int64_t *cached;
} details_ctx_t;

static int on_details_member(void *arg, const gh_json_member_t *m)
{
    details_ctx_t *d = arg;
    int64_t v;
    if (KEY_IS(m, "cached_tokens") && count_of(d->json, m, &v))
        *d->cached = v;
    return 0;
}

static int on_usage_member(void *arg, const gh_json_member_t *m)
{
    usage_ctx_t *c = arg;
    gh_meter_usage_t *u = c->u;
    int64_t v;
    if (c->style == GH_METER_ANTHROPIC) {
        if (KEY_IS(m, "input_tokens") && count_of(c->json, m, &v))
            u->input_tokens = v, c->any = true;
        else if (KEY_IS(m, "output_tokens") && count_of(c->json, m, &v))
            u->output_tokens = v, c->any = true;
        else if (KEY_IS(m, "cache_creation_input_tokens") && count_of(c->json, m, &v))
            u->cache_creation_tokens = v, c->any = true;
        else if (KEY_IS(m, "cache_read_input_tokens") && count_of(c->json, m, &v))
            u->cache_read_tokens = v, c->any = true;
    } else {
        if (KEY_IS(m, "prompt_tokens") && count_of(c->json, m, &v))
            c->prompt = v;
        else if (KEY_IS(m, "completion_tokens") && count_of(c->json, m, &v))
            u->output_tokens = v, c->any = true;
        else if (KEY_IS(m, "prompt_tokens_details") && m->type == GH_JSON_OBJECT) {
            details_ctx_t d = {c->json + m->value_start, &c->cached};
            gh_request_scan(d.json, m->value_end - m->value_start, GH_REQUEST_DEPTH_MAX,
                            on_details_member, &d, NULL, NULL);
        }
    }
    return 0;
}

bool gh_meter_usage_object(gh_meter_style_t style, const char *json, size_t len,
                           gh_meter_usage_t *u)
{
    /* Counts are taken only from an object that is valid JSON as a whole: one cut short or
     * garbled says nothing that can be trusted. They are read into a copy, kept if it was. */
    gh_meter_usage_t read = *u;
    usage_ctx_t c = {style, json, &read, -1, -1, false};
    if (gh_request_scan(json, len, GH_REQUEST_DEPTH_MAX, on_usage_member, &c, NULL, NULL) != GH_OK)
        return false;
    if (style == GH_METER_OPENAI && c.prompt >= 0) {
        int64_t cached = c.cached < 0 ? 0 : c.cached > c.prompt ? c.prompt : c.cached;
        read.input_tokens = c.prompt - cached;
        read.cache_read_tokens = cached;
        read.cache_creation_tokens = 0;
        c.any = true;
    }
    if (c.any)
        *u = read;
    return c.any;
}

/* Reads the usage object that is member `m` of `json`. */
static void take_usage(gh_meter_t *m, const char *json, const gh_json_member_t *usage)
{
    if (usage->type != GH_JSON_OBJECT)
        return;
    if (gh_meter_usage_object(m->style, json + usage->value_start,
                              usage->value_end - usage->value_start, &m->usage))
        m->usage_seen = true;
}

/* ---- Events -------------------------------------------------------------------------------- */

static bool name_is(const char *event, size_t len, const char *s)
{
    size_t n = strlen(s);
    return len == n && memcmp(event, s, n) == 0;
}

static void on_anthropic_event(gh_meter_t *m, const char *event, size_t event_len,
                               const char *data, size_t len)
{
    gh_json_member_t mem;
    /* An upstream that leaves out "event:" still names the type inside the data. */
    if (event_len == 0 && find_member(data, len, "type", &mem) && mem.type == GH_JSON_STRING &&
        !mem.key_escaped) {
        event = data + mem.value_start + 1;
        event_len = mem.value_end - mem.value_start - 2;
    }
    if (name_is(event, event_len, "content_block_delta")) {
        m->deltas++;
    } else if (name_is(event, event_len, "message_start")) {
        gh_json_member_t usage;
        if (find_member(data, len, "message", &mem) && mem.type == GH_JSON_OBJECT &&
            find_member(data + mem.value_start, mem.value_end - mem.value_start, "usage",
                        &usage)) {
            usage.value_start += mem.value_start;
            usage.value_end += mem.value_start;
            take_usage(m, data, &usage);
        }
    } else if (name_is(event, event_len, "message_delta")) {
        if (find_member(data, len, "usage", &mem))
            take_usage(m, data, &mem);
    } else if (name_is(event, event_len, "message_stop")) {
        m->terminal = true;
    } else if (name_is(event, event_len, "error")) {
        m->error_event = true;
    }
}

typedef struct {
    gh_json_member_t usage, error, choices;
    bool has_usage, has_error, has_choices;
} chunk_ctx_t;

static int on_chunk_member(void *arg, const gh_json_member_t *mem)
{
    chunk_ctx_t *c = arg;
    if (key_is(mem, "usage", 5))
        c->usage = *mem, c->has_usage = true;
    else if (key_is(mem, "error", 5))
        c->error = *mem, c->has_error = true;
    else if (key_is(mem, "choices", 7))
        c->choices = *mem, c->has_choices = true;
    return 0;
}

static void on_openai_event(gh_meter_t *m, const char *data, size_t len)
{
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        m->terminal = true;
        return;
    }
    chunk_ctx_t c;
    memset(&c, 0, sizeof(c));
    if (gh_request_scan(data, len, GH_REQUEST_DEPTH_MAX, on_chunk_member, &c, NULL, NULL) != GH_OK)
        return;
    if (c.has_usage)
        take_usage(m, data, &c.usage);
    if (c.has_error && c.error.type == GH_JSON_OBJECT)
        m->error_event = true;
    if (c.has_choices && c.choices.type == GH_JSON_ARRAY && c.choices.items > 0)
        m->deltas++;
}

static void on_event(void *ctx, const char *event, size_t event_len, const char *data,
                     size_t data_len, bool truncated)
{
    gh_meter_t *m = ctx;
    m->events++;
    if (truncated) {
        /* Too long to hold whole; events that carry usage are far smaller. Still a delta. */
        m->events_truncated++;
        if (m->style == GH_METER_OPENAI || name_is(event, event_len, "content_block_delta"))
            m->deltas++;
        return;
    }
    if (m->style == GH_METER_ANTHROPIC)
        on_anthropic_event(m, event, event_len, data, data_len);
    else
        on_openai_event(m, data, data_len);
}

void gh_meter_init(gh_meter_t *m, gh_meter_style_t style, char *buf, size_t cap)
{
    memset(m, 0, sizeof(*m));
    m->style = style;
    gh_sse_init(&m->sse, buf, cap);
    gh_sse_allow_growth(&m->sse, GH_METER_EVENT_MAX);
}

void gh_meter_dispose(gh_meter_t *m)
{
    gh_sse_dispose(&m->sse);
}

void gh_meter_feed(gh_meter_t *m, const char *data, size_t len)
{
    gh_sse_feed(&m->sse, data, len, on_event, m);
}

bool gh_meter_json(gh_meter_t *m, const char *json, size_t len)
{
    gh_json_member_t usage;
    if (!find_member(json, len, "usage", &usage) || usage.type != GH_JSON_OBJECT)
        return false;
    bool before = m->usage_seen;
    m->usage_seen = false;
    take_usage(m, json, &usage);
    bool got = m->usage_seen;
    m->usage_seen = before || got;
    return got;
}

int64_t gh_meter_output_bound(const gh_meter_t *m)
{
    return m->usage.output_tokens > m->deltas ? m->usage.output_tokens : m->deltas;
}

static int64_t add_saturating(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

int64_t gh_meter_costs(const gh_meter_usage_t *u, const gh_model_cfg_t *model,
                       gh_meter_costs_t *out)
{
    out->input_nusd = gh_price_cost(u->input_tokens, model->price_input);
    out->output_nusd = gh_price_cost(u->output_tokens, model->price_output);
    out->cache_creation_nusd = gh_price_cost(u->cache_creation_tokens, model->price_cache_write);
    out->cache_read_nusd = gh_price_cost(u->cache_read_tokens, model->price_cache_read);
    int64_t cost = add_saturating(out->input_nusd, out->output_nusd);
    cost = add_saturating(cost, out->cache_creation_nusd);
    return add_saturating(cost, out->cache_read_nusd);
}

int64_t gh_meter_cost(const gh_meter_usage_t *u, const gh_model_cfg_t *model)
{
    gh_meter_costs_t parts;
    return gh_meter_costs(u, model, &parts);
}

int64_t gh_meter_worst_cost(const gh_model_cfg_t *m, int64_t input_bound, int64_t output_bound)
{
    int64_t in_price = m->price_input;
    if (m->price_cache_write > in_price)
        in_price = m->price_cache_write;
    if (m->price_cache_read > in_price)
        in_price = m->price_cache_read;
    int64_t cost = add_saturating(gh_price_cost(input_bound, in_price),
                                  gh_price_cost(output_bound, m->price_output));
    return add_saturating(cost, 2);
}
