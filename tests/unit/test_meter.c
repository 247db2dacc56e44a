/* Metering: the incremental SSE parser (every split point, CRLF, CR, comments, multi-line
 * data, bounded buffers) and usage extraction from Anthropic and OpenAI answers, streamed and
 * not, down to the cost in nano-USD. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/meter.h"

/* A stream as Anthropic sends it (trimmed ids), usage in message_start and message_delta. */
static const char anthropic_stream[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\","
    "\"role\":\"assistant\",\"content\":[],\"model\":\"claude-x\",\"stop_reason\":null,"
    "\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":10,"
    "\"cache_read_input_tokens\":5,\"output_tokens\":1}}}\n"
    "\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
    "\"text\":\"\"}}\n"
    "\n"
    "event: ping\n"
    "data: {\"type\": \"ping\"}\n"
    "\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"Hello\"}}\n"
    "\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"! \\\"usage\\\": {\\\"output_tokens\\\": 999}\"}}\n"
    "\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n"
    "\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\","
    "\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n"
    "\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n"
    "\n";

static const char openai_stream[] =
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}],\"usage\":null}\n\n"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
    "\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[],"
    "\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":12,\"total_tokens\":32,"
    "\"prompt_tokens_details\":{\"cached_tokens\":8,\"audio_tokens\":0}}}\n\n"
    "data: [DONE]\n\n";

/* ---- SSE --------------------------------------------------------------------------------- */

/* Records dispatched events as "name|data|T\n" (T when truncated). */
typedef struct {
    char log[16384];
    size_t len;
    int count;
} recorder_t;

static void record(void *ctx, const char *event, size_t event_len, const char *data,
                   size_t data_len, bool truncated)
{
    recorder_t *r = ctx;
    int n = snprintf(r->log + r->len, sizeof(r->log) - r->len, "%.*s|%.*s|%s\n", (int)event_len,
                     event, (int)data_len, data, truncated ? "T" : "");
    assert_true(n > 0 && (size_t)n < sizeof(r->log) - r->len);
    r->len += (size_t)n;
    r->count++;
}

/* Parses `text` fed as the given chunks (split at the offsets in `cuts`). */
static void sse_parse(const char *text, size_t len, const size_t *cuts, size_t ncuts,
                      size_t cap, recorder_t *out, gh_sse_t *p)
{
    char *buf = malloc(cap);
    assert_non_null(buf);
    memset(out, 0, sizeof(*out));
    gh_sse_init(p, buf, cap);
    size_t from = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        gh_sse_feed(p, text + from, to - from, record, out);
        from = to;
    }
    p->data = NULL;
    free(buf);
}

static void sse_parses_a_stream(void **state)
{
    (void)state;
    recorder_t r;
    gh_sse_t p;
    sse_parse(anthropic_stream, sizeof(anthropic_stream) - 1, NULL, 0, 4096, &r, &p);
    assert_int_equal(r.count, 8);
    assert_non_null(strstr(r.log, "message_start|{\"type\":\"message_start\""));
    assert_non_null(strstr(r.log, "ping|{\"type\": \"ping\"}|\n"));
    assert_non_null(strstr(r.log, "message_stop|{\"type\":\"message_stop\"}|\n"));
    assert_int_equal(p.boundary, sizeof(anthropic_stream) - 1);
    assert_int_equal(p.offset, sizeof(anthropic_stream) - 1);
}

/* The same events, whatever the chunking: every split into two, and byte by byte. */
static void sse_survives_every_split_point(void **state)
{
    (void)state;
    const char *streams[] = {anthropic_stream, openai_stream};
    for (size_t s = 0; s < 2; s++) {
        const char *text = streams[s];
        size_t len = strlen(text);
        recorder_t whole, split;
        gh_sse_t p;
        sse_parse(text, len, NULL, 0, 4096, &whole, &p);
        for (size_t cut = 0; cut <= len; cut++) {
            sse_parse(text, len, &cut, 1, 4096, &split, &p);
            if (split.len != whole.len || memcmp(split.log, whole.log, whole.len) != 0)
                fail_msg("stream %zu split at %zu: events differ", s, cut);
            assert_int_equal(p.boundary, len);
        }
        size_t *cuts = malloc(len * sizeof(*cuts));
        assert_non_null(cuts);
        for (size_t i = 0; i < len; i++)
            cuts[i] = i;
        sse_parse(text, len, cuts, len, 4096, &split, &p);
        free(cuts);
        assert_int_equal(split.len, whole.len);
        assert_memory_equal(split.log, whole.log, whole.len);
    }
}

/* Rewrites every "\n" of `src` as `eol`. */
static char *with_line_ends(const char *src, const char *eol)
{
    size_t n = 0, el = strlen(eol);
    for (const char *s = src; *s; s++)
        n += *s == '\n' ? el : 1;
    char *out = malloc(n + 1), *o = out;
    assert_non_null(out);
    for (const char *s = src; *s; s++) {
        if (*s == '\n') {
            memcpy(o, eol, el);
            o += el;
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
    return out;
}

static void sse_accepts_crlf_and_cr(void **state)
{
    (void)state;
    recorder_t lf, other;
    gh_sse_t p;
    size_t len = sizeof(anthropic_stream) - 1;
    sse_parse(anthropic_stream, len, NULL, 0, 4096, &lf, &p);
    const char *eols[] = {"\r\n", "\r"};
    for (size_t e = 0; e < 2; e++) {
        char *text = with_line_ends(anthropic_stream, eols[e]);
        size_t tlen = strlen(text);
        for (size_t cut = 0; cut <= tlen; cut++) {
            sse_parse(text, tlen, &cut, 1, 4096, &other, &p);
            if (other.len != lf.len || memcmp(other.log, lf.log, lf.len) != 0)
                fail_msg("line end %zu split at %zu: events differ", e, cut);
            /* The boundary covers the whole CRLF, wherever it was split. */
            assert_int_equal(p.boundary, tlen);
        }
        free(text);
    }
}

static void sse_handles_comments_fields_and_multiline_data(void **state)
{
    (void)state;
    static const char text[] =
        ": a comment, then a keep-alive comment with no space\n"
        ":\n"
        "\n"                              /* a blank line with no data dispatches nothing */
        "id: 7\nretry: 100\nfoo: bar\n"   /* fields we do not keep */
        "event:tight\n"                   /* no space after the colon */
        "data:first\n"
        "data:  second, one space kept\n" /* only one space is removed */
        "data\n"                          /* a field with no colon: an empty data line */
        "\n"
        "data: no event name\n\n"
        "event: dropped\n\n"              /* no data: nothing dispatched, name forgotten */
        "data: {}\n\n"
        "event: a\nevent: b\ndata: x\n\n" /* the last event field wins */
        "verylongfieldname: x\ndata: y\n\n"
        "data: incomplete";
    recorder_t r;
    gh_sse_t p;
    sse_parse(text, sizeof(text) - 1, NULL, 0, 4096, &r, &p);
    assert_string_equal(r.log, "tight|first\n second, one space kept\n|\n"
                               "|no event name|\n"
                               "|{}|\n"
                               "b|x|\n"
                               "|y|\n");
    /* The incomplete event is not dispatched and lies past the boundary. */
    assert_int_equal(p.boundary, sizeof(text) - 1 - strlen("data: incomplete"));
}

static void sse_bounds_what_it_holds(void **state)
{
    (void)state;
    char text[600];
    size_t n = (size_t)snprintf(text, sizeof(text), "event: ");
    memset(text + n, 'e', 40); /* longer than any event name kept */
    n += 40;
    n += (size_t)snprintf(text + n, sizeof(text) - n, "\ndata: ");
    memset(text + n, 'd', 100);
    n += 100;
    n += (size_t)snprintf(text + n, sizeof(text) - n, "\n\nevent: ok\ndata: short\n\n");
    recorder_t r;
    gh_sse_t p;
    sse_parse(text, n, NULL, 0, 16, &r, &p);
    /* The data is cut to the buffer and marked; an over-long name is no name at all. */
    assert_string_equal(r.log, "|dddddddddddddddd|T\nok|short|\n");
}

/* ---- Usage ------------------------------------------------------------------------------- */

static void feed_split(gh_meter_t *m, const char *text, size_t cut)
{
    size_t len = strlen(text);
    gh_meter_feed(m, text, cut);
    gh_meter_feed(m, text + cut, len - cut);
}

static void meters_an_anthropic_stream(void **state)
{
    (void)state;
    char buf[GH_METER_EVENT_MAX];
    size_t len = sizeof(anthropic_stream) - 1;
    for (size_t cut = 0; cut <= len; cut++) {
        gh_meter_t m;
        gh_meter_init(&m, GH_METER_ANTHROPIC, buf, sizeof(buf));
        feed_split(&m, anthropic_stream, cut);
        assert_true(m.usage_seen);
        assert_true(m.terminal);
        assert_false(m.error_event);
        assert_int_equal(m.usage.input_tokens, 25);
        assert_int_equal(m.usage.output_tokens, 15);
        assert_int_equal(m.usage.cache_creation_tokens, 10);
        assert_int_equal(m.usage.cache_read_tokens, 5);
        assert_int_equal(m.deltas, 2);
        assert_int_equal(gh_meter_boundary(&m), len);
    }
}

static void stream_usage_is_cumulative_and_bounded_when_cut(void **state)
{
    (void)state;
    char buf[GH_METER_EVENT_MAX];
    gh_meter_t m;
    gh_meter_init(&m, GH_METER_ANTHROPIC, buf, sizeof(buf));
    /* Cut after message_start and two deltas: no output count yet beyond message_start's. */
    const char *end = strstr(anthropic_stream, "event: content_block_stop");
    gh_meter_feed(&m, anthropic_stream, (size_t)(end - anthropic_stream));
    assert_false(m.terminal);
    assert_int_equal(m.usage.output_tokens, 1);
    assert_int_equal(gh_meter_output_bound(&m), 2);
    /* A later message_delta with input counts (newer API versions) replaces them. */
    static const char delta[] =
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":40,"
        "\"input_tokens\":30,\"cache_read_input_tokens\":0}}\n\n";
    gh_meter_feed(&m, delta, sizeof(delta) - 1);
    assert_int_equal(m.usage.input_tokens, 30);
    assert_int_equal(m.usage.output_tokens, 40);
    assert_int_equal(m.usage.cache_creation_tokens, 10);
    assert_int_equal(m.usage.cache_read_tokens, 0);
    assert_int_equal(gh_meter_output_bound(&m), 40);
}

/* An event larger than the inline buffer a relay gives the meter (GH_METER_EVENT_INLINE):
 * the buffer grows, once, and the usage in it is read, the event split anywhere; one larger
 * than GH_METER_EVENT_MAX is passed on truncated, as before, and counted. */
static void a_large_event_grows_the_buffer_once(void **state)
{
    (void)state;
    char pad[3000];
    memset(pad, 'x', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    char text[4096];
    int n = snprintf(text, sizeof(text),
                     "event: message_start\ndata: {\"type\":\"message_start\",\"message\":"
                     "{\"id\":\"%s\",\"usage\":{\"input_tokens\":21,\"output_tokens\":2}}}\n\n"
                     "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":"
                     "{\"output_tokens\":7}}\n\nevent: message_stop\ndata: {}\n\n",
                     pad);
    assert_true(n > GH_METER_EVENT_INLINE && (size_t)n < sizeof(text));
    for (size_t cut = 0; cut <= (size_t)n; cut += 97) {
        char inline_buf[GH_METER_EVENT_INLINE];
        gh_meter_t m;
        gh_meter_init(&m, GH_METER_ANTHROPIC, inline_buf, sizeof(inline_buf));
        gh_meter_feed(&m, text, cut);
        gh_meter_feed(&m, text + cut, (size_t)n - cut);
        assert_int_equal(m.usage.input_tokens, 21);
        assert_int_equal(m.usage.output_tokens, 7);
        assert_true(m.terminal);
        assert_int_equal(m.events_truncated, 0);
        assert_non_null(m.sse.grown);
        gh_meter_dispose(&m);
    }

    /* Past GH_METER_EVENT_MAX: truncated, counted, and the stream goes on. */
    size_t big_len = GH_METER_EVENT_MAX + 100;
    char *big = malloc(big_len + 64);
    assert_non_null(big);
    memcpy(big, "data: ", 6);
    memset(big + 6, 'y', big_len);
    memcpy(big + 6 + big_len, "\n\n", 2);
    char inline_buf[GH_METER_EVENT_INLINE];
    gh_meter_t m;
    gh_meter_init(&m, GH_METER_ANTHROPIC, inline_buf, sizeof(inline_buf));
    gh_meter_feed(&m, big, 6 + big_len + 2);
    assert_int_equal(m.events_truncated, 1);
    static const char stop[] = "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    gh_meter_feed(&m, stop, sizeof(stop) - 1);
    assert_true(m.terminal);
    gh_meter_dispose(&m);
    free(big);
}

static void events_without_event_lines_are_still_metered(void **state)
{
    (void)state;
    static const char text[] =
        "data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3,"
        "\"output_tokens\":1}}}\n\n"
        "data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":9}}\n\n"
        "data: {\"type\":\"message_stop\"}\n\n"
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}\n\n";
    char buf[GH_METER_EVENT_MAX];
    gh_meter_t m;
    gh_meter_init(&m, GH_METER_ANTHROPIC, buf, sizeof(buf));
    gh_meter_feed(&m, text, sizeof(text) - 1);
    assert_int_equal(m.usage.input_tokens, 3);
    assert_int_equal(m.usage.output_tokens, 9);
    assert_true(m.terminal);
    assert_true(m.error_event);
}

static void meters_an_openai_stream(void **state)
{
    (void)state;
    char buf[GH_METER_EVENT_MAX];
    size_t len = sizeof(openai_stream) - 1;
    for (size_t cut = 0; cut <= len; cut++) {
        gh_meter_t m;
        gh_meter_init(&m, GH_METER_OPENAI, buf, sizeof(buf));
        feed_split(&m, openai_stream, cut);
        assert_true(m.usage_seen);
        assert_true(m.terminal);
        /* prompt_tokens include the cached ones: 20 = 12 uncached + 8 cached. */
        assert_int_equal(m.usage.input_tokens, 12);
        assert_int_equal(m.usage.cache_read_tokens, 8);
        assert_int_equal(m.usage.cache_creation_tokens, 0);
        assert_int_equal(m.usage.output_tokens, 12);
        assert_int_equal(m.deltas, 3);
    }
}

static void meters_json_answers(void **state)
{
    (void)state;
    char buf[1];
    gh_meter_t m;
    static const char anthropic[] =
        "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":"
        "\"text\",\"text\":\"\\\"usage\\\":{\\\"input_tokens\\\":1}\"}],\"model\":\"m\","
        "\"stop_reason\":\"end_turn\",\"usage\":{\"input_tokens\":2095,\"output_tokens\":503,"
        "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":1800,"
        "\"server_tool_use\":{\"web_search_requests\":1},\"service_tier\":\"standard\"}}";
    gh_meter_init(&m, GH_METER_ANTHROPIC, buf, sizeof(buf));
    assert_true(gh_meter_json(&m, anthropic, sizeof(anthropic) - 1));
    assert_int_equal(m.usage.input_tokens, 2095);
    assert_int_equal(m.usage.output_tokens, 503);
    assert_int_equal(m.usage.cache_creation_tokens, 0);
    assert_int_equal(m.usage.cache_read_tokens, 1800);

    static const char openai[] =
        "{\"id\":\"c\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":{"
        "\"role\":\"assistant\",\"content\":\"hi\"},\"finish_reason\":\"stop\"}],"
        "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":12,\"total_tokens\":21}}";
    gh_meter_init(&m, GH_METER_OPENAI, buf, sizeof(buf));
    assert_true(gh_meter_json(&m, openai, sizeof(openai) - 1));
    assert_int_equal(m.usage.input_tokens, 9);
    assert_int_equal(m.usage.cache_read_tokens, 0);
    assert_int_equal(m.usage.output_tokens, 12);
}

static bool usage_of(gh_meter_style_t style, const char *json, gh_meter_usage_t *u)
{
    return gh_meter_usage_object(style, json, strlen(json), u);
}

/* The usage object itself: nested cached counts, clamping, duplicates, escaped keys, counts
 * left alone, and text that is not a whole object changing nothing. */
static void usage_objects_are_read_member_by_member(void **state)
{
    (void)state;
    gh_meter_usage_t u = {0};
    assert_true(usage_of(GH_METER_OPENAI,
                         "{\"prompt_tokens\":100,\"completion_tokens\":5,\"prompt_tokens_details\":"
                         "{\"audio_tokens\":0,\"cached_tokens\":40},\"total_tokens\":105}",
                         &u));
    assert_int_equal(u.input_tokens, 60);
    assert_int_equal(u.cache_read_tokens, 40);
    assert_int_equal(u.output_tokens, 5);
    assert_true(usage_of(
        GH_METER_OPENAI, "{\"prompt_tokens\":10,\"prompt_tokens_details\":{\"cached_tokens\":99}}",
        &u));
    assert_int_equal(u.input_tokens, 0); /* more cached than sent: all of it cached */
    assert_int_equal(u.cache_read_tokens, 10);

    gh_meter_usage_t a = {.output_tokens = 7};
    assert_true(usage_of(
        GH_METER_ANTHROPIC,
        "{\"input_tokens\":1,\"input\\u005ftokens\":2,\"cache_read_input_tokens\":3}", &a));
    assert_int_equal(a.input_tokens, 2); /* the later one, its key escaped */
    assert_int_equal(a.cache_read_tokens, 3);
    assert_int_equal(a.output_tokens, 7); /* absent: left as it was */

    static const char *const broken[] = {
        "{\"input_tokens\":5,\"output_tokens\":",
        "{\"input_tokens\":5,}",
        "{\"input_tokens\":5} trailing",
        "[{\"input_tokens\":5}]",
        "{\"input_tokens\":5,\"output_tokens\":6",
    };
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
        gh_meter_usage_t b = {.input_tokens = 11, .output_tokens = 12};
        if (usage_of(GH_METER_ANTHROPIC, broken[i], &b))
            fail_msg("usage read from %s", broken[i]);
        assert_int_equal(b.input_tokens, 11);
        assert_int_equal(b.output_tokens, 12);
    }
}

static void garbage_reports_no_usage(void **state)
{
    (void)state;
    char buf[256];
    gh_meter_t m;
    static const char *const bodies[] = {
        "",
        "not json at all",
        "{\"usage\":null}",
        "{\"usage\":[1,2]}",
        "{\"usage\":{}}",
        "{\"usage\":{\"input_tokens\":\"12\",\"output_tokens\":-3}}",
        "{\"usage\":{\"input_tokens\":1.5,\"output_tokens\":1e3}}",
        "{\"usage\":{\"input_tokens\":99999999999999999999999}}",
        "{\"usage\":{\"input_tokens\":5",
        "{\"nested\":{\"usage\":{\"input_tokens\":5}}}",
        "<html>502 Bad Gateway</html>",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        gh_meter_init(&m, GH_METER_ANTHROPIC, buf, sizeof(buf));
        if (gh_meter_json(&m, bodies[i], strlen(bodies[i])))
            fail_msg("usage read from %s", bodies[i]);
        assert_int_equal(m.usage.input_tokens, 0);
        assert_int_equal(m.usage.output_tokens, 0);
    }
    /* Garbage on a stream: no usage, no crash, and the oversized event is counted. */
    gh_meter_init(&m, GH_METER_ANTHROPIC, buf, sizeof(buf));
    static const char junk[] = "\x00\xff\r\n\n\n::::\ndata: {\"usage\n\nevent: message_start\n"
                               "data: {\"type\":\"message_start\",\"message\":{\"usage\":";
    gh_meter_feed(&m, junk, sizeof(junk) - 1);
    char big[1024];
    memset(big, 'x', sizeof(big));
    for (size_t fed = 0; fed <= GH_METER_EVENT_MAX; fed += sizeof(big))
        gh_meter_feed(&m, big, sizeof(big)); /* past what the buffer grows to */
    gh_meter_feed(&m, "}}}\n\n", 5);
    assert_false(m.usage_seen);
    assert_int_equal(m.events_truncated, 1);
    assert_false(m.terminal);
    gh_meter_dispose(&m);
}

/* ---- Money ------------------------------------------------------------------------------- */

static void prices_usage_in_nano_usd(void **state)
{
    (void)state;
    gh_model_cfg_t model;
    memset(&model, 0, sizeof(model));
    /* $3 input, $15 output, $3.75 cache write, $0.30 cache read per million tokens. */
    model.price_input = 3000000000;
    model.price_output = 15000000000;
    model.price_cache_write = 3750000000;
    model.price_cache_read = 300000000;

    /* From the stream above: 25 in, 15 out, 10 written, 5 read.
     * 25*3000 + 15*15000 + 10*3750 + 5*300 = 75000 + 225000 + 37500 + 1500 nano-USD. */
    char buf[GH_METER_EVENT_MAX];
    gh_meter_t m;
    gh_meter_init(&m, GH_METER_ANTHROPIC, buf, sizeof(buf));
    gh_meter_feed(&m, anthropic_stream, sizeof(anthropic_stream) - 1);
    assert_int_equal(gh_meter_cost(&m.usage, &model), 339000);

    /* A million of each: $3 + $15 + $3.75 + $0.30 = $22.05. */
    gh_meter_usage_t u = {1000000, 1000000, 1000000, 1000000};
    assert_int_equal(gh_meter_cost(&u, &model), INT64_C(22050000000));

    /* Each count is rounded half up to a whole nano-USD on its own: at 1 nano-USD per million
     * tokens, 499,999 tokens cost 0 and 500,000 cost 1. */
    gh_model_cfg_t cheap;
    memset(&cheap, 0, sizeof(cheap));
    cheap.price_input = 1;
    cheap.price_output = 1;
    gh_meter_usage_t below = {499999, 499999, 0, 0}, at = {500000, 500000, 0, 0};
    assert_int_equal(gh_meter_cost(&below, &cheap), 0);
    assert_int_equal(gh_meter_cost(&at, &cheap), 2);

    /* Free models cost nothing; absurd counts saturate instead of wrapping. */
    gh_model_cfg_t free_model;
    memset(&free_model, 0, sizeof(free_model));
    assert_int_equal(gh_meter_cost(&u, &free_model), 0);
    gh_meter_usage_t huge = {INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX};
    assert_int_equal(gh_meter_cost(&huge, &model), INT64_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sse_parses_a_stream),
        cmocka_unit_test(sse_survives_every_split_point),
        cmocka_unit_test(sse_accepts_crlf_and_cr),
        cmocka_unit_test(sse_handles_comments_fields_and_multiline_data),
        cmocka_unit_test(sse_bounds_what_it_holds),
        cmocka_unit_test(meters_an_anthropic_stream),
        cmocka_unit_test(stream_usage_is_cumulative_and_bounded_when_cut),
        cmocka_unit_test(events_without_event_lines_are_still_metered),
        cmocka_unit_test(meters_an_openai_stream),
        cmocka_unit_test(meters_json_answers),
        cmocka_unit_test(garbage_reports_no_usage),
        cmocka_unit_test(usage_objects_are_read_member_by_member),
        cmocka_unit_test(a_large_event_grows_the_buffer_once),
        cmocka_unit_test(prices_usage_in_nano_usd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
