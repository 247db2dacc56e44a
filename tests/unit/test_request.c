/* Model API requests: the strict JSON scanner, validation of bodies, the model splice and the
 * forced usage reporting of streaming chat requests, and the error shapes. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/request.h"

static gh_err_t scan(const char *json)
{
    return gh_request_scan(json, strlen(json), GH_REQUEST_DEPTH_MAX, NULL, NULL, NULL, NULL);
}

static void scanner_accepts_valid_objects(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "{}",
        " {} ",
        "\r\n\t{ }\n",
        "{\"a\":1}",
        "{\"a\":-0.5e+10,\"b\":[1,2,{\"c\":null}],\"d\":true,\"e\":false,\"f\":\"x\\\"y\\\\z\"}",
        "{\"u\":\"\\u00e9\\ud83d\\ude00\",\"s\":\"\\/\\b\\f\\n\\r\\t\"}",
        "{\"a\" : [ ] , \"b\" : { } }",
        "{\"n\":[0,-0,1.0,1E5,1e-5,123456789012345678901234567890]}",
        "{\"raw utf-8\":\"h\xc3\xa9llo\"}",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (scan(ok[i]) != GH_OK)
            fail_msg("refused valid JSON: %s", ok[i]);
}

static void scanner_refuses_what_jsmn_lets_through(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "   ",
        "[]",
        "\"x\"",
        "1",
        "{",
        "{\"a\":1",
        "{\"a\" \"b\"}",
        "{\"a\":}",
        "{\"a\":1,}",
        "{\"a\":1 \"b\":2}",
        "{\"a\":tru}",
        "{\"a\":truex}",
        "{\"a\":1.2.3}",
        "{\"a\":-}",
        "{\"a\":01}",
        "{\"a\":1.}",
        "{\"a\":.5}",
        "{\"a\":1e}",
        "{\"a\":[1,,2]}",
        "{\"a\":[,1]}",
        "{\"a\":[1 2]}",
        "{\"a\":[1,2,]}",
        "{\"a\"::1}",
        "{\"a\":1:2}",
        "{a:1}",
        "{,}",
        "{\"a\":1}}",
        "{\"a\":1} x",
        "{\"a\":1}{}",
        "{\"a\":\"\x01\"}",
        "{\"a\":\"\\x\"}",
        "{\"a\":\"\\u12\"}",
        "{\"a\":\"unterminated}",
        "{\"a\":[}",
        "{\"a\":{]}",
        "{\"a\":'x'}",
        "{\"a\":NaN}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t at = 0;
        const char *what = NULL;
        gh_err_t rc =
            gh_request_scan(bad[i], strlen(bad[i]), GH_REQUEST_DEPTH_MAX, NULL, NULL, &at, &what);
        if (rc != GH_EINVAL)
            fail_msg("accepted invalid JSON: %s (rc %d)", bad[i], rc);
        assert_non_null(what);
        assert_true(at <= strlen(bad[i]));
    }
}

/* Strings are scanned sixteen bytes at a time: whatever ends or breaks a string is found at
 * every offset in the block and across blocks, and bytes of 0x80 and above (UTF-8) are
 * plain. (A scan that stopped early would still be right: the byte loop after it decides.) */
static void scanner_finds_what_ends_a_string_at_every_offset(void **state)
{
    (void)state;
    static const struct {
        const char *insert; /* put at offset `at` of a long string */
        gh_err_t want;
    } cases[] = {
        {"", GH_OK},
        {"\xc3\xa9\xff\x80", GH_OK}, /* high bytes are plain */
        {"\\\"", GH_OK},             /* an escaped quote */
        {"\\\\", GH_OK},             /* an escaped backslash */
        {"\\u00e9", GH_OK},
        {"\x7f", GH_OK},             /* DEL is no control character to JSON */
        {"\x01", GH_EINVAL},         /* a raw control character */
        {"\x1f", GH_EINVAL},
        {"\t", GH_EINVAL},
        {"\"", GH_EINVAL},           /* ends the string early: the rest is garbage */
        {"\\q", GH_EINVAL},          /* an invalid escape */
    };
    char body[160];
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        for (size_t at = 0; at <= 70; at++) {
            for (size_t tail = 0; tail <= 20; tail += 5) {
                size_t n = (size_t)snprintf(body, sizeof(body), "{\"a\":\"");
                size_t start = n;
                memset(body + n, 'x', at);
                n += at;
                size_t ins = strlen(cases[c].insert);
                memcpy(body + n, cases[c].insert, ins);
                n += ins;
                memset(body + n, 'y', tail);
                n += tail;
                n += (size_t)snprintf(body + n, sizeof(body) - n, "\"}");
                size_t err_at = 0;
                gh_err_t rc = gh_request_scan(body, n, GH_REQUEST_DEPTH_MAX, NULL, NULL, &err_at,
                                              NULL);
                if (rc != cases[c].want)
                    fail_msg("case %zu at %zu tail %zu: %d, wanted %d", c, at, tail, rc,
                             cases[c].want);
                /* A control character is reported where it is. */
                if (cases[c].insert[0] > 0 && cases[c].insert[0] < 0x20)
                    assert_int_equal(err_at, start + at);
            }
        }
    }
}

static void scanner_bounds_depth(void **state)
{
    (void)state;
    char buf[512];
    /* {"a": then depth-1 arrays: the object is level 1, so GH_REQUEST_DEPTH_MAX fits. */
    for (int extra = 0; extra <= 1; extra++) {
        int arrays = GH_REQUEST_DEPTH_MAX - 1 + extra;
        size_t n = 0;
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "{\"a\":");
        for (int i = 0; i < arrays; i++)
            buf[n++] = '[';
        for (int i = 0; i < arrays; i++)
            buf[n++] = ']';
        buf[n++] = '}';
        buf[n] = '\0';
        assert_int_equal(scan(buf), extra ? GH_ETOOBIG : GH_OK);
    }
    /* A deep body costs nothing but the scan: 10 MB of brackets is refused at depth 65. */
    size_t big = 10 * 1024 * 1024;
    char *deep = malloc(big);
    assert_non_null(deep);
    deep[0] = '{', deep[1] = '"', deep[2] = 'a', deep[3] = '"', deep[4] = ':';
    memset(deep + 5, '[', big - 5);
    assert_int_equal(gh_request_scan(deep, big, GH_REQUEST_DEPTH_MAX, NULL, NULL, NULL, NULL),
                     GH_ETOOBIG);
    free(deep);
}

typedef struct {
    int count;
    gh_json_member_t m[8];
} members_t;

static int collect(void *ctx, const gh_json_member_t *m)
{
    members_t *c = ctx;
    if (c->count < 8)
        c->m[c->count] = *m;
    c->count++;
    return 0;
}

static void scanner_reports_top_level_members(void **state)
{
    (void)state;
    const char *j = "{ \"a\" : [1, [2, 3], {\"x\":4}] , \"b\":{\"k\":1,\"l\":2}, \"c\":\"s\\\"\", "
                    "\"d\":-12, \"e\":null, \"f\":true, \"g\":false, \"h\\u0041\":[] }";
    members_t c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(gh_request_scan(j, strlen(j), 8, collect, &c, NULL, NULL), GH_OK);
    assert_int_equal(c.count, 8);
    static const gh_json_type_t types[] = {GH_JSON_ARRAY, GH_JSON_OBJECT, GH_JSON_STRING,
                                           GH_JSON_NUMBER, GH_JSON_NULL,  GH_JSON_TRUE,
                                           GH_JSON_FALSE, GH_JSON_ARRAY};
    static const char *const values[] = {"[1, [2, 3], {\"x\":4}]", "{\"k\":1,\"l\":2}",
                                         "\"s\\\"\"", "-12", "null", "true", "false", "[]"};
    static const size_t items[] = {3, 2, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < 8; i++) {
        assert_int_equal(c.m[i].type, types[i]);
        size_t len = c.m[i].value_end - c.m[i].value_start;
        assert_int_equal(len, strlen(values[i]));
        assert_memory_equal(j + c.m[i].value_start, values[i], len);
        assert_int_equal(c.m[i].items, items[i]);
        assert_int_equal(c.m[i].key_len, i == 7 ? 7 : 1);
        assert_int_equal(c.m[i].key_escaped, i == 7);
    }
}

static void unescape_decodes_strings(void **state)
{
    (void)state;
    char out[32];
    size_t n;
    assert_true(gh_request_unescape("mod\\u0065l", 10, out, sizeof(out), &n));
    assert_string_equal(out, "model");
    assert_true(gh_request_unescape("a\\/b\\\\c\\\"", 9, out, sizeof(out), &n));
    assert_string_equal(out, "a/b\\c\"");
    assert_true(gh_request_unescape("\\u00e9\\ud83d\\ude00", 18, out, sizeof(out), &n));
    assert_string_equal(out, "\xc3\xa9\xf0\x9f\x98\x80");
    assert_true(gh_request_unescape("\\ud83d", 6, out, sizeof(out), &n));
    assert_string_equal(out, "\xef\xbf\xbd"); /* a lone surrogate */
    assert_false(gh_request_unescape("0123456789", 10, out, 10, &n)); /* no room for the NUL */
    assert_true(gh_request_unescape("012345678", 9, out, 10, &n));
    assert_int_equal(n, 9);
    assert_string_equal(out, "012345678");
    /* A plain run, then an escape: the room is counted across both. */
    assert_true(gh_request_unescape("01234567\\n", 10, out, 10, &n));
    assert_int_equal(n, 9);
    assert_string_equal(out, "01234567\n");
    assert_false(gh_request_unescape("012345678\\n", 11, out, 10, &n));
    assert_true(gh_request_unescape("ab\\u00e9cd", 10, out, sizeof(out), &n));
    assert_string_equal(out, "ab\xc3\xa9" "cd");
    assert_int_equal(n, 6);
}

/* ---- Requests ---------------------------------------------------------------------------- */

static gh_err_t parse(gh_request_t *r, gh_api_kind_t api, const char *body, char *msg)
{
    return gh_request_parse(r, api, body, strlen(body), msg);
}

static void parses_a_messages_request(void **state)
{
    (void)state;
    gh_request_t r;
    char msg[GH_REQUEST_MSG_MAX];
    const char *body = "{\"model\":\"claude-x\",\"max_tokens\":1024,\"stream\":true,"
                       "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
                       "{\"role\":\"assistant\",\"content\":\"yo\"}],\"system\":\"be brief\"}";
    assert_int_equal(parse(&r, GH_API_MESSAGES, body, msg), GH_OK);
    assert_string_equal(r.model, "claude-x");
    assert_int_equal(r.model_len, 8);
    assert_int_equal(r.max_tokens, 1024);
    assert_true(r.stream);
    assert_int_equal(r.messages, 2);
    assert_memory_equal(body + r.model_start, "\"claude-x\"", 10);
    assert_int_equal(r.model_end - r.model_start, 10);
    assert_int_equal(body[r.root_end], '}');
    assert_int_equal(r.root_end, strlen(body) - 1);

    /* An escaped model name is decoded before it is looked up. */
    body = "{\"model\":\"a\\/b\",\"max_tokens\":1,\"messages\":[{}]}";
    assert_int_equal(parse(&r, GH_API_MESSAGES, body, msg), GH_OK);
    assert_string_equal(r.model, "a/b");
    assert_false(r.stream);

    /* count_tokens needs no max_tokens and ignores stream. */
    body = "{\"model\":\"m\",\"messages\":[1],\"stream\":\"yes\"}";
    assert_int_equal(parse(&r, GH_API_COUNT_TOKENS, body, msg), GH_OK);
    assert_int_equal(r.max_tokens, -1);
    assert_false(r.stream);
}

static void parses_a_chat_request(void **state)
{
    (void)state;
    gh_request_t r;
    char msg[GH_REQUEST_MSG_MAX];
    assert_int_equal(parse(&r, GH_API_CHAT, "{\"model\":\"m\",\"messages\":[{}]}", msg), GH_OK);
    assert_int_equal(r.max_tokens, -1);
    assert_false(r.stream);
    assert_false(r.stream_options);
    assert_int_equal(
        parse(&r, GH_API_CHAT,
              "{\"model\":\"m\",\"messages\":[{}],\"max_tokens\":null,\"stream\":null}", msg),
        GH_OK);
    assert_int_equal(parse(&r, GH_API_CHAT,
                           "{\"model\":\"m\",\"messages\":[{}],\"max_completion_tokens\":77,"
                           "\"stream\":true,\"stream_options\":{\"include_usage\":false}}",
                           msg),
                     GH_OK);
    assert_int_equal(r.max_tokens, 77);
    assert_true(r.stream);
    assert_true(r.stream_options);
    assert_true(r.include_usage_present);
    assert_false(r.include_usage_true);
}

typedef struct {
    gh_api_kind_t api;
    const char *body;
    const char *message; /* a prefix of the expected message */
} bad_case_t;

static void refuses_bad_requests_with_clear_messages(void **state)
{
    (void)state;
    static const bad_case_t cases[] = {
        {GH_API_MESSAGES, "", "The request body is empty"},
        {GH_API_MESSAGES, "[1]", "The request body is not valid JSON: the body must be a JSON object"},
        {GH_API_MESSAGES, "{\"model\":\"m\",", "The request body is not valid JSON"},
        {GH_API_MESSAGES, "{\"max_tokens\":1,\"messages\":[1]}", "model: Field required"},
        {GH_API_MESSAGES, "{\"model\":1,\"max_tokens\":1,\"messages\":[1]}",
         "model: Input should be a valid string"},
        {GH_API_MESSAGES, "{\"model\":\"\",\"max_tokens\":1,\"messages\":[1]}",
         "model: String should have at least 1 character"},
        {GH_API_MESSAGES, "{\"model\":\"m\",\"max_tokens\":1}", "messages: Field required"},
        {GH_API_MESSAGES, "{\"model\":\"m\",\"max_tokens\":1,\"messages\":{}}",
         "messages: Input should be a valid list"},
        {GH_API_MESSAGES, "{\"model\":\"m\",\"max_tokens\":1,\"messages\":[]}",
         "messages: List should have at least 1 item"},
        {GH_API_MESSAGES, "{\"model\":\"m\",\"messages\":[1]}", "max_tokens: Field required"},
        {GH_API_MESSAGES, "{\"model\":\"m\",\"max_tokens\":\"5\",\"messages\":[1]}",
         "max_tokens: Input should be a valid integer"},
        {GH_API_MESSAGES, "{\"model\":\"m\",\"max_tokens\":1.5,\"messages\":[1]}",
         "max_tokens: Input should be a valid integer"},
        {GH_API_MESSAGES, "{\"model\":\"m\",\"max_tokens\":1e3,\"messages\":[1]}",
         "max_tokens: Input should be a valid integer"},
        {GH_API_MESSAGES, "{\"model\":\"m\",\"max_tokens\":null,\"messages\":[1]}",
         "max_tokens: Input should be a valid integer"},
        {GH_API_MESSAGES, "{\"model\":\"m\",\"max_tokens\":0,\"messages\":[1]}",
         "max_tokens: Input should be greater than or equal to 1"},
        {GH_API_MESSAGES, "{\"model\":\"m\",\"max_tokens\":-3,\"messages\":[1]}",
         "max_tokens: Input should be greater than or equal to 1"},
        {GH_API_MESSAGES,
         "{\"model\":\"m\",\"max_tokens\":99999999999999999999999,\"messages\":[1]}",
         "max_tokens: Input is too large"},
        {GH_API_MESSAGES, "{\"model\":\"m\",\"max_tokens\":1,\"messages\":[1],\"stream\":1}",
         "stream: Input should be a valid boolean"},
        {GH_API_MESSAGES, "{\"model\":\"m\",\"max_tokens\":1,\"messages\":[1],\"stream\":null}",
         "stream: Input should be a valid boolean"},
        {GH_API_CHAT, "{\"model\":\"m\",\"messages\":[1],\"max_tokens\":0}",
         "max_tokens: Input should be greater than or equal to 1"},
        {GH_API_CHAT, "{\"model\":\"m\",\"messages\":[1],\"max_completion_tokens\":\"x\"}",
         "max_completion_tokens: Input should be a valid integer"},
        {GH_API_CHAT, "{\"model\":\"m\",\"messages\":[1],\"stream_options\":[]}",
         "stream_options: Input should be a valid dictionary"},
        {GH_API_CHAT,
         "{\"model\":\"m\",\"messages\":[1],\"stream_options\":{\"include_usage\":1}}",
         "stream_options.include_usage: Input should be a valid boolean"},
        {GH_API_CHAT,
         "{\"model\":\"m\",\"messages\":[1],\"stream_options\":{\"include_usage\":true,"
         "\"include_\\u0075sage\":false}}",
         "stream_options.include_usage: appears more than once"},
        /* The same field twice, however its key is spelled, is refused: the upstream would
         * take the last one, and Gatehouse would bill the first. */
        {GH_API_MESSAGES,
         "{\"model\":\"cheap\",\"max_tokens\":1,\"messages\":[1],\"model\":\"dear\"}",
         "model: appears more than once"},
        {GH_API_MESSAGES,
         "{\"model\":\"cheap\",\"max_tokens\":1,\"messages\":[1],\"mod\\u0065l\":\"dear\"}",
         "model: appears more than once"},
        {GH_API_MESSAGES, "{\"model\":\"m\",\"max_tokens\":1,\"max_tokens\":9,\"messages\":[1]}",
         "max_tokens: appears more than once"},
        {GH_API_CHAT, "{\"model\":\"m\",\"messages\":[1],\"stream\":true,\"stre\\u0061m\":false}",
         "stream: appears more than once"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        gh_request_t r;
        char msg[GH_REQUEST_MSG_MAX];
        gh_err_t rc = parse(&r, cases[i].api, cases[i].body, msg);
        if (rc != GH_EINVAL)
            fail_msg("accepted %s (rc %d)", cases[i].body, rc);
        if (strncmp(msg, cases[i].message, strlen(cases[i].message)) != 0)
            fail_msg("%s: message \"%s\", expected \"%s...\"", cases[i].body, msg,
                     cases[i].message);
    }
}

static void deep_bodies_are_refused(void **state)
{
    (void)state;
    char body[512];
    size_t n = (size_t)snprintf(body, sizeof(body), "{\"model\":\"m\",\"max_tokens\":1,"
                                                    "\"messages\":");
    for (int i = 0; i < 80; i++)
        body[n++] = '[';
    for (int i = 0; i < 80; i++)
        body[n++] = ']';
    body[n++] = '}';
    body[n] = '\0';
    gh_request_t r;
    char msg[GH_REQUEST_MSG_MAX];
    assert_int_equal(parse(&r, GH_API_MESSAGES, body, msg), GH_EINVAL);
    assert_string_equal(msg, "The request body nests JSON deeper than 64 levels.");
}

static void long_model_names_are_kept_for_the_message(void **state)
{
    (void)state;
    char body[600], name[300];
    memset(name, 'x', 299);
    name[299] = '\0';
    snprintf(body, sizeof(body), "{\"model\":\"%s\",\"max_tokens\":1,\"messages\":[1]}", name);
    gh_request_t r;
    char msg[GH_REQUEST_MSG_MAX];
    assert_int_equal(parse(&r, GH_API_MESSAGES, body, msg), GH_OK);
    assert_true(r.model_too_long);
    assert_int_equal(r.model_len, GH_REQUEST_MODEL_MAX - 1);
}

/* ---- Rewrite ------------------------------------------------------------------------------ */

/* Parses `body`, rewrites it for an upstream model named by `model_json`, and compares. */
static void check_rewrite(gh_api_kind_t api, const char *body, const char *model_json,
                          bool force_usage, const char *expected)
{
    gh_request_t r;
    char msg[GH_REQUEST_MSG_MAX];
    if (parse(&r, api, body, msg) != GH_OK)
        fail_msg("%s: %s", body, msg);
    size_t size = gh_request_rewrite_size(&r, strlen(body), strlen(model_json), force_usage);
    char *out = malloc(size + 1);
    assert_non_null(out);
    size_t n = gh_request_rewrite(&r, body, strlen(body), model_json, strlen(model_json),
                                  force_usage, out);
    out[n] = '\0';
    assert_int_equal(n, size);
    if (strcmp(out, expected) != 0)
        fail_msg("rewrite of %s\n  gave     %s\n  expected %s", body, out, expected);
    /* What goes upstream is still valid JSON. */
    assert_int_equal(gh_request_scan(out, n, GH_REQUEST_DEPTH_MAX, NULL, NULL, NULL, NULL), GH_OK);
    free(out);
}

static void splices_the_upstream_model(void **state)
{
    (void)state;
    check_rewrite(GH_API_MESSAGES,
                  "{\"model\":\"claude\",\"max_tokens\":5,\"messages\":[{\"content\":\"\\\"model\\\"\"}]}",
                  "\"anthropic/claude-sonnet\"", true,
                  "{\"model\":\"anthropic/claude-sonnet\",\"max_tokens\":5,\"messages\":"
                  "[{\"content\":\"\\\"model\\\"\"}]}");
    /* Whitespace and member order are kept; only the value changes. */
    check_rewrite(GH_API_MESSAGES,
                  " { \"messages\" : [1] , \"max_tokens\" : 5 , \"model\" : \"a\\u0062\" } \n",
                  "\"x\\\"y\"", true,
                  " { \"messages\" : [1] , \"max_tokens\" : 5 , \"model\" : \"x\\\"y\" } \n");
    /* A non-streaming chat request gets nothing else. */
    check_rewrite(GH_API_CHAT, "{\"model\":\"m\",\"messages\":[1]}", "\"up\"", true,
                  "{\"model\":\"up\",\"messages\":[1]}");
    /* Nor does a streaming Anthropic request. */
    check_rewrite(GH_API_MESSAGES, "{\"model\":\"m\",\"max_tokens\":1,\"stream\":true,"
                                   "\"messages\":[1]}",
                  "\"up\"", true,
                  "{\"model\":\"up\",\"max_tokens\":1,\"stream\":true,\"messages\":[1]}");
}

static void forces_usage_reporting_on_chat_streams(void **state)
{
    (void)state;
    /* No stream_options: added before the final brace. */
    check_rewrite(GH_API_CHAT, "{\"model\":\"m\",\"stream\":true,\"messages\":[1]} ", "\"up\"",
                  true,
                  "{\"model\":\"up\",\"stream\":true,\"messages\":[1],"
                  "\"stream_options\":{\"include_usage\":true}} ");
    /* Without force_usage, only the model changes. */
    check_rewrite(GH_API_CHAT, "{\"model\":\"m\",\"stream\":true,\"messages\":[1]}", "\"up\"",
                  false, "{\"model\":\"up\",\"stream\":true,\"messages\":[1]}");
    /* stream_options: null is replaced. */
    check_rewrite(GH_API_CHAT,
                  "{\"stream_options\":null,\"model\":\"m\",\"stream\":true,\"messages\":[1]}",
                  "\"up\"", true,
                  "{\"stream_options\":{\"include_usage\":true},\"model\":\"up\",\"stream\":true,"
                  "\"messages\":[1]}");
    /* include_usage false or null is turned true, in place. */
    check_rewrite(GH_API_CHAT,
                  "{\"model\":\"m\",\"stream\":true,\"messages\":[1],"
                  "\"stream_options\":{\"include_usage\":false,\"x\":1}}",
                  "\"up\"", true,
                  "{\"model\":\"up\",\"stream\":true,\"messages\":[1],"
                  "\"stream_options\":{\"include_usage\":true,\"x\":1}}");
    check_rewrite(GH_API_CHAT,
                  "{\"stream_options\":{\"x\":1, \"include_usage\" : null},\"model\":\"m\","
                  "\"stream\":true,\"messages\":[1]}",
                  "\"up\"", true,
                  "{\"stream_options\":{\"x\":1, \"include_usage\" : true},\"model\":\"up\","
                  "\"stream\":true,\"messages\":[1]}");
    /* Already true: untouched. */
    check_rewrite(GH_API_CHAT,
                  "{\"model\":\"m\",\"stream\":true,\"messages\":[1],"
                  "\"stream_options\":{\"include_usage\":true}}",
                  "\"up\"", true,
                  "{\"model\":\"up\",\"stream\":true,\"messages\":[1],"
                  "\"stream_options\":{\"include_usage\":true}}");
    /* Other options but no include_usage: added first. */
    check_rewrite(GH_API_CHAT,
                  "{\"model\":\"m\",\"stream\":true,\"messages\":[1],"
                  "\"stream_options\":{\"x\":1}}",
                  "\"up\"", true,
                  "{\"model\":\"up\",\"stream\":true,\"messages\":[1],"
                  "\"stream_options\":{\"include_usage\":true,\"x\":1}}");
    check_rewrite(GH_API_CHAT,
                  "{\"model\":\"m\",\"stream\":true,\"messages\":[1],\"stream_options\":{ }}",
                  "\"up\"", true,
                  "{\"model\":\"up\",\"stream\":true,\"messages\":[1],"
                  "\"stream_options\":{\"include_usage\":true }}");
}

/* ---- Errors --------------------------------------------------------------------------------- */

static void maps_errors_in_one_place(void **state)
{
    (void)state;
    static const struct {
        gh_err_t err;
        int status;
        const char *type;
    } map[] = {
        {GH_EINVAL, 400, "invalid_request_error"}, {GH_EAUTH, 401, "authentication_error"},
        {GH_EPERM, 403, "permission_error"},       {GH_ENOTFOUND, 404, "not_found_error"},
        {GH_ETOOBIG, 413, "request_too_large"},    {GH_ERATE, 429, "rate_limit_error"},
        {GH_EIO, 502, "api_error"},                {GH_ETIMEOUT, 504, "timeout_error"},
        {GH_EUNAVAIL, 529, "overloaded_error"},    {GH_EINTERNAL, 500, "api_error"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        const char *type, *code;
        assert_int_equal(gh_request_error_status(map[i].err, &type, &code), map[i].status);
        assert_string_equal(type, map[i].type);
        assert_non_null(code);
    }
}

static void renders_both_error_shapes(void **state)
{
    (void)state;
    char out[GH_REQUEST_ERROR_MAX];
    gh_request_error_body(GH_API_MESSAGES, GH_EAUTH, "bad \"key\"\n", "req_01x", out, sizeof(out));
    assert_string_equal(out, "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\","
                             "\"message\":\"bad \\\"key\\\"\\n\"},\"request_id\":\"req_01x\"}");
    gh_request_error_body(GH_API_CHAT, GH_EAUTH, "bad key", "req_01x", out, sizeof(out));
    assert_string_equal(out, "{\"error\":{\"message\":\"bad key\",\"type\":\"authentication_error\","
                             "\"param\":null,\"code\":\"invalid_api_key\"}}");
    gh_request_error_event(GH_API_MESSAGES, GH_EIO, "gone", "req_01x", out, sizeof(out));
    assert_string_equal(out, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
                             "\"api_error\",\"message\":\"gone\"},\"request_id\":\"req_01x\"}\n\n");
    gh_request_error_event(GH_API_CHAT, GH_ETIMEOUT, "slow", "req_01x", out, sizeof(out));
    assert_string_equal(out, "data: {\"error\":{\"message\":\"slow\",\"type\":\"timeout_error\","
                             "\"param\":null,\"code\":\"upstream_timeout\"}}\n\n");
    /* A very long message is cut, and the body stays within its bound. */
    char longmsg[4000];
    memset(longmsg, '"', sizeof(longmsg) - 1);
    longmsg[sizeof(longmsg) - 1] = '\0';
    size_t n = gh_request_error_body(GH_API_MESSAGES, GH_EINVAL, longmsg, "req_01x", out,
                                     sizeof(out));
    assert_true(n < sizeof(out));
    assert_int_equal(gh_request_scan(out, n, 8, NULL, NULL, NULL, NULL), GH_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scanner_accepts_valid_objects),
        cmocka_unit_test(scanner_refuses_what_jsmn_lets_through),
        cmocka_unit_test(scanner_finds_what_ends_a_string_at_every_offset),
        cmocka_unit_test(scanner_bounds_depth),
        cmocka_unit_test(scanner_reports_top_level_members),
        cmocka_unit_test(unescape_decodes_strings),
        cmocka_unit_test(parses_a_messages_request),
        cmocka_unit_test(parses_a_chat_request),
        cmocka_unit_test(refuses_bad_requests_with_clear_messages),
        cmocka_unit_test(deep_bodies_are_refused),
        cmocka_unit_test(long_model_names_are_kept_for_the_message),
        cmocka_unit_test(splices_the_upstream_model),
        cmocka_unit_test(forces_usage_reporting_on_chat_streams),
        cmocka_unit_test(maps_errors_in_one_place),
        cmocka_unit_test(renders_both_error_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
