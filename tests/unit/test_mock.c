/* The mock model on a real h2o event loop: exact usage, every stop reason, the exact SSE
 * sequences of both APIs, count_tokens, bad requests, injected failures, cancelling from
 * inside and outside callbacks (the sanitizer build checks nothing leaks), and pacing. */
#ifndef H2O_USE_LIBUV
#define H2O_USE_LIBUV 0
#endif

#include "unit.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <h2o.h>
#include <jansson.h>

#include "gateway/mock.h"

#define BODY_MAX (64 * 1024)
/* No test needs more than this much loop time; a hang fails instead of blocking the run. */
#define RUN_LIMIT_MS 10000

/* Everything the callbacks saw. */
typedef struct capture {
    int heads;
    int status;
    char content_type[64];
    int bodies;             /* on_body calls */
    size_t len;
    char body[BODY_MAX + 1];
    bool final;
    bool error;
    gh_err_t err;
    bool done;              /* final body or error seen */
    uint64_t first_byte_ms; /* loop clock at on_head */
    uint64_t done_ms;       /* loop clock at the end */
    h2o_loop_t *loop;
    gh_mock_t *mock;
    int cancel_at_body;     /* cancel from inside the nth on_body (1-based), 0: never */
    bool cancelled;
    bool callback_after_cancel;
} capture_t;

static void on_head(void *ctx, int status, const char *ct, size_t ct_len)
{
    capture_t *c = ctx;
    if (c->cancelled)
        c->callback_after_cancel = true;
    c->heads++;
    c->status = status;
    snprintf(c->content_type, sizeof(c->content_type), "%.*s", (int)ct_len, ct);
    c->first_byte_ms = h2o_now(c->loop);
}

static void on_body(void *ctx, const char *data, size_t len, bool final)
{
    capture_t *c = ctx;
    if (c->cancelled)
        c->callback_after_cancel = true;
    assert_int_equal(c->heads, 1);
    assert_false(c->done);
    c->bodies++;
    assert_true(c->len + len <= BODY_MAX);
    memcpy(c->body + c->len, data, len);
    c->len += len;
    c->body[c->len] = '\0';
    if (final) {
        c->final = true;
        c->done = true;
        c->done_ms = h2o_now(c->loop);
    } else if (c->cancel_at_body == c->bodies) {
        gh_mock_cancel(c->mock);
        c->cancelled = true;
    }
}

static void on_error(void *ctx, gh_err_t err, const char *msg)
{
    capture_t *c = ctx;
    (void)msg;
    if (c->cancelled)
        c->callback_after_cancel = true;
    assert_false(c->done);
    c->error = true;
    c->err = err;
    c->done = true;
    c->done_ms = h2o_now(c->loop);
}

static const gh_upstream_cb_t callbacks = {on_head, on_body, on_error};

static int setup(void **state)
{
    h2o_loop_t *loop = h2o_evloop_create();
    *state = loop;
    return loop == NULL;
}

static int teardown(void **state)
{
    h2o_loop_t *loop = *state;
    /* h2o_evloop_destroy asserts that no timeout is registered: this checks the release. */
    gh_mock_loop_release(loop);
    h2o_evloop_destroy(loop);
    return 0;
}

/* Runs the loop until `c` is done (or, with `until_ms`, for that long at most). */
static void run(h2o_loop_t *loop, capture_t *c, uint64_t until_ms)
{
    uint64_t start = h2o_now(loop);
    uint64_t limit = until_ms ? until_ms : RUN_LIMIT_MS;
    while (!c->done && !c->cancelled && h2o_now(loop) - start < limit)
        h2o_evloop_run(loop, 10);
    if (until_ms == 0)
        assert_true(c->done || c->cancelled);
}

static capture_t *start_opts(h2o_loop_t *loop, const gh_mock_opts_t *opts, gh_api_kind_t api,
                             const char *body)
{
    capture_t *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->loop = loop;
    c->mock = gh_mock_start_opts(loop, opts, api, body, strlen(body), &callbacks, c);
    assert_non_null(c->mock);
    /* Never a callback from inside the start call. */
    assert_int_equal(c->heads, 0);
    return c;
}

static capture_t *start(h2o_loop_t *loop, gh_api_kind_t api, const char *body)
{
    gh_mock_opts_t opts = {0, 0, GH_MOCK_FAIL_NONE};
    return start_opts(loop, &opts, api, body);
}

static capture_t *complete(h2o_loop_t *loop, gh_api_kind_t api, const char *body)
{
    capture_t *c = start(loop, api, body);
    run(loop, c, 0);
    return c;
}

static json_t *parse_json(const char *s)
{
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    if (j == NULL)
        fail_msg("not JSON (%s): %s", e.text, s);
    return j;
}

/* The value at a dotted path ("usage.input_tokens"), or NULL. */
static json_t *jget(json_t *j, const char *path)
{
    json_t *cur = j;
    while (cur != NULL && *path != '\0') {
        const char *dot = strchr(path, '.');
        size_t n = dot != NULL ? (size_t)(dot - path) : strlen(path);
        char key[64];
        assert_true(n < sizeof(key));
        memcpy(key, path, n);
        key[n] = '\0';
        cur = json_object_get(cur, key);
        path += n + (dot != NULL);
    }
    return cur;
}

static int64_t jint(json_t *j, const char *path)
{
    json_t *v = jget(j, path);
    if (!json_is_integer(v))
        fail_msg("%s is not an integer", path);
    return json_integer_value(v);
}

static const char *jstr(json_t *j, const char *path)
{
    json_t *v = jget(j, path);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Runs the loop for `ms` whatever happens. */
static void spin(h2o_loop_t *loop, uint64_t ms)
{
    uint64_t until = h2o_now(loop) + ms;
    while (h2o_now(loop) < until)
        h2o_evloop_run(loop, 10);
}

/* system 14 bytes -> 4+4; "Hello, world!" 13 -> 4+4; "Hi." (the image block costs nothing)
 * 3 -> 4+1; "Tell me a story about a fox." 28 -> 4+7. 32 in all, so the reply starts at word 0. */
#define KNOWN_PROMPT                                                                           \
    "\"system\":\"You are terse.\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello, "     \
    "world!\"},{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Hi.\"},"     \
    "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\","        \
    "\"data\":\"AAAA\"}}]},{\"role\":\"user\",\"content\":\"Tell me a story about a fox.\"}]"
#define KNOWN_INPUT 32
#define KNOWN_TEXT                                                                             \
    "The quick brown fox jumps over a lazy dog while. Seven gentle rivers carry small paper "  \
    "boats past old stone. Bridges toward quiet harbors where tired sailors mend heavy nets."

static void exact_usage_for_a_known_prompt(void **state)
{
    h2o_loop_t *loop = *state;
    const char *body = "{\"model\":\"mock-sonnet\",\"max_tokens\":1024," KNOWN_PROMPT "}";

    gh_mock_plan_t plan;
    char err[128];
    assert_int_equal(gh_mock_plan(GH_API_MESSAGES, body, strlen(body), &plan, err, sizeof(err)),
                     GH_OK);
    assert_int_equal(plan.input_tokens, KNOWN_INPUT);
    assert_int_equal(plan.output_tokens, GH_MOCK_NATURAL_TOKENS);
    assert_int_equal(plan.stop_reason, GH_MOCK_STOP_END_TURN);
    assert_string_equal(plan.text, KNOWN_TEXT);

    capture_t *c = complete(loop, GH_API_MESSAGES, body);
    assert_true(c->final);
    assert_int_equal(c->status, 200);
    assert_string_equal(c->content_type, "application/json");
    assert_int_equal(c->bodies, 1);
    json_t *j = parse_json(c->body);
    assert_string_equal(jstr(j, "type"), "message");
    assert_string_equal(jstr(j, "role"), "assistant");
    assert_string_equal(jstr(j, "model"), "mock-sonnet");
    assert_true(strncmp(jstr(j, "id"), "msg_01", 6) == 0);
    assert_string_equal(jstr(j, "stop_reason"), "end_turn");
    assert_true(json_is_null(json_object_get(j, "stop_sequence")));
    json_t *block = json_array_get(json_object_get(j, "content"), 0);
    assert_string_equal(jstr(block, "type"), "text");
    assert_string_equal(jstr(block, "text"), KNOWN_TEXT);
    assert_int_equal(jint(j, "usage.input_tokens"), KNOWN_INPUT);
    assert_int_equal(jint(j, "usage.output_tokens"), GH_MOCK_NATURAL_TOKENS);
    assert_int_equal(jint(j, "usage.cache_creation_input_tokens"), 0);
    assert_int_equal(jint(j, "usage.cache_read_input_tokens"), 0);
    json_decref(j);
    free(c);
}

static void input_counts_utf8_bytes_after_unescaping(void **state)
{
    (void)state;
    gh_mock_plan_t plan;
    char err[128];
    /* "é😀" escaped: 2 + 4 bytes -> 4+2. "ab\n": 3 bytes -> 4+1. Raw "é": 2 bytes -> 4+1. */
    const char *body = "{\"model\":\"m\",\"max_tokens\":5,\"messages\":["
                       "{\"role\":\"user\",\"content\":\"\\u00e9\\ud83d\\ude00\"},"
                       "{\"role\":\"assistant\",\"content\":\"ab\\n\"},"
                       "{\"role\":\"user\",\"content\":\"\xc3\xa9\"}]}";
    assert_int_equal(gh_mock_plan(GH_API_MESSAGES, body, strlen(body), &plan, err, sizeof(err)),
                     GH_OK);
    assert_int_equal(plan.input_tokens, 6 + 5 + 5);
    /* Chat: the system message is a message; content parts count like blocks. */
    const char *chat = "{\"model\":\"m\",\"messages\":["
                       "{\"role\":\"system\",\"content\":\"Be kind.\"},"
                       "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hello\"},"
                       "{\"type\":\"text\",\"text\":\" you\"}]},"
                       "{\"role\":\"assistant\",\"content\":null}]}";
    assert_int_equal(gh_mock_plan(GH_API_CHAT, chat, strlen(chat), &plan, err, sizeof(err)),
                     GH_OK);
    assert_int_equal(plan.input_tokens, (4 + 2) + (4 + 3) + 4);
}

static void max_tokens_cuts_the_reply(void **state)
{
    h2o_loop_t *loop = *state;
    const char *body = "{\"model\":\"m\",\"max_tokens\":5," KNOWN_PROMPT "}";
    capture_t *c = complete(loop, GH_API_MESSAGES, body);
    json_t *j = parse_json(c->body);
    assert_string_equal(jstr(j, "stop_reason"), "max_tokens");
    assert_int_equal(jint(j, "usage.output_tokens"), 5);
    assert_string_equal(jstr(json_array_get(json_object_get(j, "content"), 0), "text"),
                        "The quick brown fox jumps");
    json_decref(j);
    free(c);

    /* Chat: max_completion_tokens wins over max_tokens; finish_reason "length". */
    const char *chat = "{\"model\":\"gpt-mock\",\"max_tokens\":9,\"max_completion_tokens\":3,"
                       "\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}";
    c = complete(loop, GH_API_CHAT, chat);
    j = parse_json(c->body);
    assert_string_equal(jstr(j, "object"), "chat.completion");
    json_t *choice = json_array_get(json_object_get(j, "choices"), 0);
    assert_string_equal(jstr(choice, "finish_reason"), "length");
    assert_int_equal(jint(j, "usage.completion_tokens"), 3);
    assert_int_equal(jint(j, "usage.prompt_tokens"), 4 + 2);
    assert_int_equal(jint(j, "usage.total_tokens"), 4 + 2 + 3);
    /* Seed 6: the reply starts at word 6, "a", capitalised. */
    assert_string_equal(jstr(json_object_get(choice, "message"), "content"), "A lazy dog");
    json_decref(j);
    free(c);
}

static void stop_sequences_end_the_reply_before_the_match(void **state)
{
    h2o_loop_t *loop = *state;
    const char *body = "{\"model\":\"m\",\"max_tokens\":100,\"stop_sequences\":[\"nothing\","
                       "\"lazy dog\",\"paper\"]," KNOWN_PROMPT "}";
    capture_t *c = complete(loop, GH_API_MESSAGES, body);
    json_t *j = parse_json(c->body);
    assert_string_equal(jstr(j, "stop_reason"), "stop_sequence");
    assert_string_equal(jstr(j, "stop_sequence"), "lazy dog");
    /* "lazy dog" completes with token 8 (" dog"): nine tokens generated. */
    assert_int_equal(jint(j, "usage.output_tokens"), 9);
    assert_string_equal(jstr(json_array_get(json_object_get(j, "content"), 0), "text"),
                        "The quick brown fox jumps over a ");
    json_decref(j);
    free(c);

    /* Inside a word: "ump" completes with "jumps", token 4. */
    gh_mock_plan_t plan;
    char err[128];
    const char *inside =
        "{\"model\":\"m\",\"max_tokens\":100,\"stop_sequences\":[\"ump\"]," KNOWN_PROMPT "}";
    assert_int_equal(gh_mock_plan(GH_API_MESSAGES, inside, strlen(inside), &plan, err, sizeof(err)),
                     GH_OK);
    assert_int_equal(plan.stop_reason, GH_MOCK_STOP_SEQUENCE);
    assert_int_equal(plan.output_tokens, 5);
    assert_string_equal(plan.text, "The quick brown fox j");
    assert_string_equal(plan.stop_sequence, "ump");

    /* max_tokens before the match wins. */
    const char *early =
        "{\"model\":\"m\",\"max_tokens\":8,\"stop_sequences\":[\"lazy dog\"]," KNOWN_PROMPT "}";
    assert_int_equal(gh_mock_plan(GH_API_MESSAGES, early, strlen(early), &plan, err, sizeof(err)),
                     GH_OK);
    assert_int_equal(plan.stop_reason, GH_MOCK_STOP_MAX_TOKENS);
    assert_int_equal(plan.output_tokens, 8);

    /* Chat: a single string; finish_reason "stop". */
    const char *chat = "{\"model\":\"m\",\"stop\":\"small\",\"messages\":[{\"role\":\"user\","
                       "\"content\":\"Hello\"}]}";
    c = complete(loop, GH_API_CHAT, chat);
    j = parse_json(c->body);
    json_t *choice = json_array_get(json_object_get(j, "choices"), 0);
    assert_string_equal(jstr(choice, "finish_reason"), "stop");
    assert_string_equal(jstr(json_object_get(choice, "message"), "content"),
                        "A lazy dog while seven gentle rivers carry ");
    assert_int_equal(jint(j, "usage.completion_tokens"), 9);
    json_decref(j);
    free(c);
}

/* Splits an Anthropic SSE body into events, checking that each is exactly an `event:` line
 * naming the data's type and one `data:` line. Returns the number of events; fills `types`. */
static int sse_events(char *body, char types[][32], json_t **datas, int max)
{
    int n = 0;
    char *p = body;
    while (*p != '\0') {
        char *end = strstr(p, "\n\n");
        assert_non_null(end);
        *end = '\0';
        assert_true(strncmp(p, "event: ", 7) == 0);
        char *nl = strchr(p, '\n');
        assert_non_null(nl);
        *nl = '\0';
        assert_true(n < max);
        snprintf(types[n], sizeof(types[n]), "%s", p + 7);
        assert_true(strncmp(nl + 1, "data: ", 6) == 0);
        assert_null(strchr(nl + 1, '\n'));
        datas[n] = parse_json(nl + 7);
        assert_string_equal(jstr(datas[n], "type"), types[n]);
        n++;
        p = end + 2;
    }
    return n;
}

static void anthropic_stream_has_the_exact_event_sequence(void **state)
{
    h2o_loop_t *loop = *state;
    const char *body =
        "{\"model\":\"mock-haiku\",\"max_tokens\":7,\"stream\":true," KNOWN_PROMPT "}";
    capture_t *c = complete(loop, GH_API_MESSAGES, body);
    assert_int_equal(c->status, 200);
    assert_true(strncmp(c->content_type, "text/event-stream", 17) == 0);

    char types[64][32];
    json_t *d[64];
    int n = sse_events(c->body, types, d, 64);
    assert_int_equal(n, 3 + 7 + 3);
    assert_string_equal(types[0], "message_start");
    assert_string_equal(jstr(json_object_get(d[0], "message"), "model"), "mock-haiku");
    assert_int_equal(jint(d[0], "message.usage.input_tokens"), KNOWN_INPUT);
    assert_int_equal(jint(d[0], "message.usage.output_tokens"), 1);
    assert_true(json_is_null(json_object_get(json_object_get(d[0], "message"), "stop_reason")));
    assert_string_equal(types[1], "content_block_start");
    assert_string_equal(types[2], "ping");
    char text[256] = "";
    for (int i = 3; i < 10; i++) {
        assert_string_equal(types[i], "content_block_delta");
        assert_string_equal(jstr(json_object_get(d[i], "delta"), "type"), "text_delta");
        strncat(text, jstr(d[i], "delta.text"), sizeof(text) - strlen(text) - 1);
    }
    assert_string_equal(text, "The quick brown fox jumps over a");
    assert_string_equal(types[10], "content_block_stop");
    assert_string_equal(types[11], "message_delta");
    assert_string_equal(jstr(json_object_get(d[11], "delta"), "stop_reason"), "max_tokens");
    assert_true(json_is_null(json_object_get(json_object_get(d[11], "delta"), "stop_sequence")));
    assert_int_equal(jint(d[11], "usage.output_tokens"), 7);
    assert_int_equal(jint(d[11], "usage.input_tokens"), KNOWN_INPUT);
    assert_string_equal(types[12], "message_stop");
    for (int i = 0; i < n; i++)
        json_decref(d[i]);
    /* No pacing: the whole stream in one callback. */
    assert_int_equal(c->bodies, 1);
    free(c);

    /* A stop sequence in a stream: "fox jumps" starts in token 3 and completes with token 4,
     * so five tokens were generated, and the text stops before "fox". */
    const char *stop = "{\"model\":\"m\",\"max_tokens\":100,\"stream\":true,\"stop_sequences\":"
                       "[\"fox jumps\"]," KNOWN_PROMPT "}";
    c = complete(loop, GH_API_MESSAGES, stop);
    n = sse_events(c->body, types, d, 64);
    assert_string_equal(types[n - 2], "message_delta");
    assert_string_equal(jstr(d[n - 2], "delta.stop_reason"), "stop_sequence");
    assert_string_equal(jstr(d[n - 2], "delta.stop_sequence"), "fox jumps");
    assert_int_equal(jint(d[n - 2], "usage.output_tokens"), 5);
    text[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (!strcmp(types[i], "content_block_delta"))
            strncat(text, jstr(d[i], "delta.text"), sizeof(text) - strlen(text) - 1);
        json_decref(d[i]);
    }
    assert_string_equal(text, "The quick brown ");
    free(c);
}

static void openai_stream_with_and_without_usage(void **state)
{
    h2o_loop_t *loop = *state;
    for (int with_usage = 0; with_usage < 2; with_usage++) {
        char body[512];
        snprintf(body, sizeof(body),
                 "{\"model\":\"gpt-mock\",\"stream\":true,%s\"max_tokens\":4,"
                 "\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}",
                 with_usage ? "\"stream_options\":{\"include_usage\":true}," : "");
        capture_t *c = complete(loop, GH_API_CHAT, body);
        assert_true(strncmp(c->content_type, "text/event-stream", 17) == 0);
        char *p = c->body;
        int chunks = 0;
        bool done = false, saw_usage = false, saw_finish = false;
        char text[128] = "";
        while (*p != '\0') {
            char *end = strstr(p, "\n\n");
            assert_non_null(end);
            *end = '\0';
            assert_true(strncmp(p, "data: ", 6) == 0);
            assert_false(done);
            if (!strcmp(p + 6, "[DONE]")) {
                done = true;
            } else {
                json_t *j = parse_json(p + 6);
                assert_string_equal(jstr(j, "object"), "chat.completion.chunk");
                assert_string_equal(jstr(j, "model"), "gpt-mock");
                json_t *usage = json_object_get(j, "usage");
                json_t *choices = json_object_get(j, "choices");
                if (!with_usage)
                    assert_null(usage);
                if (json_array_size(choices) == 0) {
                    assert_true(with_usage);
                    assert_true(saw_finish);
                    assert_int_equal(jint(j, "usage.prompt_tokens"), 6);
                    assert_int_equal(jint(j, "usage.completion_tokens"), 4);
                    assert_int_equal(jint(j, "usage.total_tokens"), 10);
                    saw_usage = true;
                } else {
                    if (with_usage)
                        assert_true(json_is_null(usage));
                    json_t *choice = json_array_get(choices, 0);
                    json_t *delta = json_object_get(choice, "delta");
                    if (chunks == 0)
                        assert_string_equal(jstr(delta, "role"), "assistant");
                    if (jstr(delta, "content") != NULL)
                        strncat(text, jstr(delta, "content"), sizeof(text) - strlen(text) - 1);
                    if (jstr(choice, "finish_reason") != NULL) {
                        assert_string_equal(jstr(choice, "finish_reason"), "length");
                        saw_finish = true;
                    }
                }
                json_decref(j);
                chunks++;
            }
            p = end + 2;
        }
        assert_true(done);
        assert_true(saw_finish);
        assert_int_equal(saw_usage, with_usage);
        assert_string_equal(text, "A lazy dog while");
        assert_int_equal(chunks, 1 + 4 + 1 + with_usage);
        free(c);
    }
}

static void count_tokens_answers_input_tokens(void **state)
{
    h2o_loop_t *loop = *state;
    const char *body = "{\"model\":\"m\"," KNOWN_PROMPT "}";
    capture_t *c = complete(loop, GH_API_COUNT_TOKENS, body);
    assert_int_equal(c->status, 200);
    assert_string_equal(c->body, "{\"input_tokens\":32}");
    free(c);
}

static void bad_requests_get_400_in_the_api_shape(void **state)
{
    h2o_loop_t *loop = *state;
    static const struct {
        gh_api_kind_t api;
        const char *body;
        const char *message;
    } cases[] = {
        {GH_API_MESSAGES, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         "max_tokens"},
        {GH_API_MESSAGES, "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[]}", "messages"},
        {GH_API_MESSAGES, "{\"model\":\"m\",\"max_tokens\":\"5\",\"messages\":[{\"role\":\"user\","
                          "\"content\":\"x\"}]}",
         "max_tokens"},
        {GH_API_MESSAGES, "{\"model\":\"m\",\"max_tokens\":0,\"messages\":[{\"role\":\"user\","
                          "\"content\":\"x\"}]}",
         "max_tokens"},
        {GH_API_MESSAGES, "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\","
                          "\"content\":5}]}",
         "content"},
        {GH_API_MESSAGES, "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"robot\","
                          "\"content\":\"x\"}]}",
         "role"},
        {GH_API_MESSAGES, "{\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         "model"},
        {GH_API_MESSAGES, "{\"model\":\"m\",\"max_tokens\":5,\"stream\":1,\"messages\":[{\"role\":"
                          "\"user\",\"content\":\"x\"}]}",
         "stream"},
        {GH_API_MESSAGES, "{\"model\":\"m\",\"max_tokens\":5,\"stop_sequences\":\"x\",\"messages\":"
                          "[{\"role\":\"user\",\"content\":\"x\"}]}",
         "stop_sequences"},
        {GH_API_MESSAGES, "{\"model\":\"m\",\"max_tokens\":5", "malformed"},
        {GH_API_MESSAGES, "{\"model\":\"m\"} {}", "malformed"},
        {GH_API_MESSAGES, "[1,2]", "object"},
        {GH_API_MESSAGES, "", "object"},
        {GH_API_COUNT_TOKENS, "{\"model\":\"m\"}", "messages"},
        {GH_API_CHAT, "{\"model\":\"m\",\"messages\":{}}", "messages"},
        {GH_API_CHAT, "{\"model\":\"m\",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"],\"messages\":[{"
                      "\"role\":\"user\",\"content\":\"x\"}]}",
         "stop"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        capture_t *c = complete(loop, cases[i].api, cases[i].body);
        assert_true(c->final);
        if (c->status != 400)
            fail_msg("case %zu: status %d: %s", i, c->status, c->body);
        assert_string_equal(c->content_type, "application/json");
        json_t *j = parse_json(c->body);
        const char *message;
        if (cases[i].api == GH_API_CHAT) {
            assert_string_equal(jstr(j, "error.type"), "invalid_request_error");
            message = jstr(j, "error.message");
        } else {
            assert_string_equal(jstr(j, "type"), "error");
            assert_string_equal(jstr(j, "error.type"), "invalid_request_error");
            message = jstr(j, "error.message");
        }
        if (message == NULL || strstr(message, cases[i].message) == NULL)
            fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, message, cases[i].message);
        json_decref(j);
        free(c);
    }
}

static void injected_failures(void **state)
{
    h2o_loop_t *loop = *state;
    const char *stream = "{\"model\":\"m\",\"max_tokens\":20,\"stream\":true,\"messages\":"
                         "[{\"role\":\"user\",\"content\":\"x\"}]}";
    const char *whole = "{\"model\":\"m\",\"max_tokens\":20,\"messages\":[{\"role\":\"user\","
                        "\"content\":\"x\"}]}";
    gh_mock_opts_t opts = {0, 0, GH_MOCK_FAIL_CLOSE_MID_STREAM};

    capture_t *c = start_opts(loop, &opts, GH_API_MESSAGES, stream);
    run(loop, c, 0);
    assert_true(c->error);
    assert_int_equal(c->err, GH_EIO);
    assert_false(c->final);
    assert_int_equal(c->status, 200);
    assert_non_null(strstr(c->body, "event: message_start"));
    assert_null(strstr(c->body, "message_stop"));
    free(c);

    c = start_opts(loop, &opts, GH_API_MESSAGES, whole);
    run(loop, c, 0);
    assert_true(c->error);
    assert_int_equal(c->err, GH_EIO);
    free(c);

    opts.fail = GH_MOCK_FAIL_GARBAGE;
    c = start_opts(loop, &opts, GH_API_MESSAGES, whole);
    run(loop, c, 0);
    assert_true(c->final);
    assert_int_equal(c->status, 200);
    json_error_t e;
    assert_null(json_loads(c->body, 0, &e));
    free(c);

    opts.fail = GH_MOCK_FAIL_OVERLOADED;
    c = start_opts(loop, &opts, GH_API_MESSAGES, whole);
    run(loop, c, 0);
    assert_int_equal(c->status, 529);
    json_t *j = parse_json(c->body);
    assert_string_equal(jstr(j, "error.type"), "overloaded_error");
    json_decref(j);
    free(c);

    opts.fail = GH_MOCK_FAIL_SERVER_ERROR;
    c = start_opts(loop, &opts, GH_API_CHAT,
                   "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    run(loop, c, 0);
    assert_int_equal(c->status, 500);
    j = parse_json(c->body);
    assert_string_equal(jstr(j, "error.type"), "server_error");
    json_decref(j);
    free(c);

    /* A stall: the head and an empty body, then nothing, until cancelled. */
    opts.fail = GH_MOCK_FAIL_STALL;
    c = start_opts(loop, &opts, GH_API_MESSAGES, stream);
    run(loop, c, 100);
    assert_int_equal(c->heads, 1);
    assert_int_equal(c->bodies, 1);
    assert_int_equal(c->len, 0);
    assert_false(c->done);
    gh_mock_cancel(c->mock);
    free(c);

    gh_mock_fail_t f;
    assert_true(gh_mock_fail_parse("close-mid-stream", 16, &f));
    assert_int_equal(f, GH_MOCK_FAIL_CLOSE_MID_STREAM);
    assert_true(gh_mock_fail_parse("529", 3, &f));
    assert_int_equal(f, GH_MOCK_FAIL_OVERLOADED);
    assert_false(gh_mock_fail_parse("52", 2, &f));
}

static void cancel_stops_everything(void **state)
{
    h2o_loop_t *loop = *state;
    const char *body = "{\"model\":\"m\",\"max_tokens\":30,\"stream\":true,\"messages\":[{\"role\":"
                       "\"user\",\"content\":\"x\"}]}";
    gh_mock_opts_t paced = {0, 500, GH_MOCK_FAIL_NONE};

    /* Before anything happened. */
    capture_t *c = start_opts(loop, &paced, GH_API_MESSAGES, body);
    gh_mock_cancel(c->mock);
    spin(loop, 50);
    assert_int_equal(c->heads, 0);
    free(c);

    /* From inside the second on_body. */
    c = start_opts(loop, &paced, GH_API_MESSAGES, body);
    c->cancel_at_body = 2;
    run(loop, c, 0);
    assert_true(c->cancelled);
    spin(loop, 100); /* nothing more may come */
    assert_int_equal(c->bodies, 2);
    assert_false(c->callback_after_cancel);
    free(c);

    /* From outside, mid-stream. */
    c = start_opts(loop, &paced, GH_API_MESSAGES, body);
    while (c->bodies < 3)
        h2o_evloop_run(loop, 10);
    gh_mock_cancel(c->mock);
    c->cancelled = true;
    int bodies = c->bodies;
    spin(loop, 100);
    assert_int_equal(c->bodies, bodies);
    assert_false(c->done);
    free(c);

    /* While waiting for the latency. */
    gh_mock_opts_t slow = {1000, 0, GH_MOCK_FAIL_NONE};
    c = start_opts(loop, &slow, GH_API_MESSAGES, body);
    h2o_evloop_run(loop, 0);
    gh_mock_cancel(c->mock);
    free(c);
    gh_mock_cancel(NULL);
}

static void pacing_takes_the_expected_time(void **state)
{
    h2o_loop_t *loop = *state;
    const char *body = "{\"model\":\"m\",\"max_tokens\":20,\"stream\":true,\"messages\":[{\"role\":"
                       "\"user\",\"content\":\"x\"}]}";
    const uint64_t latency_ms = 40, tps = 200, tokens = 20;

    gh_mock_opts_t opts = {(int)latency_ms, (int)tps, GH_MOCK_FAIL_NONE};
    uint64_t t0 = h2o_now(loop);
    capture_t *c = start_opts(loop, &opts, GH_API_MESSAGES, body);
    run(loop, c, 0);
    assert_true(c->final);
    /* By construction, on the loop's own clock: the first byte no sooner than the latency,
     * the last token no sooner than (tokens - 1) / tps after it. */
    assert_true(c->first_byte_ms - t0 >= latency_ms);
    assert_true((c->done_ms - c->first_byte_ms) * tps >= (tokens - 1) * 1000);
    /* Each tick sends at least one token, so there were several ticks but never more than
     * one per token. */
    assert_true(c->bodies >= 2);
    assert_true((uint64_t)c->bodies <= tokens);
    free(c);

    /* Without pacing the whole stream is one callback; non-streaming always is. */
    opts.tokens_per_second = 0;
    c = start_opts(loop, &opts, GH_API_MESSAGES, body);
    run(loop, c, 0);
    assert_int_equal(c->bodies, 1);
    free(c);

    const char *whole = "{\"model\":\"m\",\"max_tokens\":20,\"messages\":[{\"role\":\"user\","
                        "\"content\":\"x\"}]}";
    opts.tokens_per_second = (int)tps;
    t0 = h2o_now(loop);
    c = start_opts(loop, &opts, GH_API_MESSAGES, whole);
    run(loop, c, 0);
    assert_int_equal(c->bodies, 1);
    assert_true((c->done_ms - t0) * tps >= latency_ms * tps + (tokens - 1) * 1000);
    free(c);
}

/* The benchmark's shape: many streams at once on one loop, all exact. */
static void many_concurrent_streams(void **state)
{
    h2o_loop_t *loop = *state;
    enum { N = 2000 };
    const char *body = "{\"model\":\"m\",\"max_tokens\":10,\"stream\":true,\"messages\":[{\"role\":"
                       "\"user\",\"content\":\"x\"}]}";
    gh_mock_opts_t opts = {5, 1000, GH_MOCK_FAIL_NONE};
    capture_t **cs = calloc(N, sizeof(*cs));
    assert_non_null(cs);
    for (int i = 0; i < N; i++)
        cs[i] = start_opts(loop, &opts, GH_API_MESSAGES, body);
    for (int i = 0; i < N; i++)
        run(loop, cs[i], 0);
    for (int i = 0; i < N; i++) {
        assert_true(cs[i]->final);
        assert_non_null(strstr(cs[i]->body, "\"usage\":{\"input_tokens\":5,"
                                            "\"cache_creation_input_tokens\":0,"
                                            "\"cache_read_input_tokens\":0,\"output_tokens\":10}"));
        free(cs[i]);
    }
    free(cs);
}

static void timers_are_released_per_loop(void **state)
{
    (void)state;
    /* A second loop on the same thread gets its own timers; releasing it leaves none. */
    h2o_loop_t *other = h2o_evloop_create();
    capture_t *c = start(other, GH_API_COUNT_TOKENS,
                         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    run(other, c, 0);
    assert_string_equal(c->body, "{\"input_tokens\":5}");
    free(c);
    gh_mock_loop_release(other);
    h2o_evloop_destroy(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(exact_usage_for_a_known_prompt, setup, teardown),
        cmocka_unit_test_setup_teardown(input_counts_utf8_bytes_after_unescaping, setup, teardown),
        cmocka_unit_test_setup_teardown(max_tokens_cuts_the_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(stop_sequences_end_the_reply_before_the_match, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(anthropic_stream_has_the_exact_event_sequence, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(openai_stream_with_and_without_usage, setup, teardown),
        cmocka_unit_test_setup_teardown(count_tokens_answers_input_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_requests_get_400_in_the_api_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(injected_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(cancel_stops_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(pacing_takes_the_expected_time, setup, teardown),
        cmocka_unit_test_setup_teardown(many_concurrent_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(timers_are_released_per_loop, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
