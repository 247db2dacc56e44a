/* The mock model (see mock.h for what it answers and why those numbers).
 *
 * A request is parsed once, at start, with jsmn into a fixed plan: input tokens, the number of
 * output tokens, where the text ends and why. The mock then keeps only that plan (a few hundred
 * bytes) and regenerates its words from the seed whenever it needs them, so nothing grows with
 * the request or the reply.
 *
 * Timers. libh2o 2.2.5 has no free-standing timers: an h2o_timeout_t is a FIFO of entries that
 * all wait the same number of milliseconds, registered with the loop until disposed, and the
 * loop walks every registered timeout on each turn. One timeout per mock would make each turn
 * cost O(mocks) and could not be disposed from its own callback, which is where a mock ends.
 * So each thread keeps a small registry of shared timeouts, one per (loop, delay): the latency
 * of a model, its token interval, and zero for "next turn". Mocks hold references while they
 * run; the timeouts stay registered until gh_mock_loop_release, outside any callback.
 *
 * Callbacks. Every callback runs from on_timer, never from gh_mock_start. A relay may cancel
 * the mock from inside on_head or on_body: the call only marks it, and on_timer frees it once
 * the callback has returned, so no code touches freed memory. */
#ifndef H2O_USE_LIBUV
#define H2O_USE_LIBUV 0
#endif

#include "gateway/mock.h"

#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <h2o.h>

#define JSMN_STATIC
#define JSMN_STRICT
#include <jsmn.h>

/* Distinct (loop, delay) timeouts one thread may hold. Each costs a list step per loop turn. */
#define MOCK_TIMERS_MAX 256
/* Tokens parsed from the stack before falling back to the heap; enough for small bodies. */
#define MOCK_STACK_TOKENS 128
/* One reply token: a space, a word of at most 7 letters, a period. */
#define MOCK_TOKEN_MAX 16
/* Bytes gathered before one on_body; a whole stream at no pacing fits in one or two. */
#define MOCK_CHUNK 8192
#define MOCK_ID_MAX 40
#define MOCK_MSG_ID_PREFIX "msg_01"
#define MOCK_MSG_ID_RANDOM 22
#define MOCK_CHAT_ID_PREFIX "chatcmpl-"
#define MOCK_CHAT_ID_RANDOM 29

#define MOCK_CT_JSON "application/json"
#define MOCK_CT_SSE "text/event-stream; charset=utf-8"
#define MOCK_GARBAGE                                                                             \
    "<html><body>502 mock upstream garbage: this is neither JSON nor SSE</body></html>\n"

static_assert(GH_MOCK_NATURAL_TOKENS % GH_MOCK_SENTENCE_TOKENS == 0, "whole sentences");
static_assert(GH_MOCK_NATURAL_TOKENS * 9 < GH_MOCK_TEXT_MAX, "the natural reply fits its buffer");
static_assert(GH_MOCK_NATURAL_TOKENS < UINT8_MAX, "token counts fit the plan's fields");
static_assert(sizeof(MOCK_MSG_ID_PREFIX) - 1 + MOCK_MSG_ID_RANDOM < MOCK_ID_MAX, "ids fit");
static_assert(sizeof(MOCK_CHAT_ID_PREFIX) - 1 + MOCK_CHAT_ID_RANDOM < MOCK_ID_MAX, "ids fit");
/* The longest stream: per token one OpenAI chunk (~230 bytes of frame, the model, the word),
 * plus a start and an end of the same size. */
static_assert((GH_MOCK_NATURAL_TOKENS + 4) * (300 + GH_MOCK_MODEL_MAX) < GH_MOCK_OUTPUT_MAX,
              "a whole reply fits GH_MOCK_OUTPUT_MAX");

const char *const gh_mock_vocab[GH_MOCK_VOCAB_WORDS] = {
    "the",   "quick", "brown",   "fox",    "jumps", "over",    "a",       "lazy",
    "dog",   "while", "seven",   "gentle", "rivers", "carry",  "small",   "paper",
    "boats", "past",  "old",     "stone",  "bridges", "toward", "quiet",  "harbors",
    "where", "tired", "sailors", "mend",   "heavy",  "nets",    "and",     "sing",
};

/* ---- Shared timers ----------------------------------------------------------------------- */

/* One h2o timeout of `delay_ms` on `loop`, shared by every mock of this thread that waits that
 * long. Owned by the thread's registry; freed by gh_mock_loop_release. */
typedef struct mock_timer {
    struct mock_timer *next;
    h2o_loop_t *loop;
    uint64_t delay_ms;
    size_t refs; /* mocks holding it */
    h2o_timeout_t timeout;
} mock_timer_t;

static _Thread_local mock_timer_t *thread_timers;
static _Thread_local size_t thread_timers_count;

static mock_timer_t *timer_acquire(h2o_loop_t *loop, uint64_t delay_ms)
{
    for (mock_timer_t *t = thread_timers; t != NULL; t = t->next) {
        if (t->loop == loop && t->delay_ms == delay_ms) {
            t->refs++;
            return t;
        }
    }
    if (thread_timers_count >= MOCK_TIMERS_MAX)
        return NULL;
    mock_timer_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->loop = loop;
    t->delay_ms = delay_ms;
    t->refs = 1;
    h2o_timeout_init(loop, &t->timeout, delay_ms);
    t->next = thread_timers;
    thread_timers = t;
    thread_timers_count++;
    return t;
}

static void timer_put(mock_timer_t *t)
{
    if (t == NULL)
        return;
    assert(t->refs > 0);
    t->refs--;
}

void gh_mock_loop_release(h2o_loop_t *loop)
{
    mock_timer_t **slot = &thread_timers;
    while (*slot != NULL) {
        mock_timer_t *t = *slot;
        if (t->loop != loop) {
            slot = &t->next;
            continue;
        }
        assert(t->refs == 0 && "a mock still runs on the loop being released");
        *slot = t->next;
        thread_timers_count--;
        h2o_timeout_dispose(loop, &t->timeout);
        free(t);
    }
}

/* ---- Ids --------------------------------------------------------------------------------- */

static _Thread_local uint64_t rng_state;

/* splitmix64: ids need to be unique, not secret, and a syscall per request is not worth it. */
static uint64_t rng_next(void)
{
    if (rng_state == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        rng_state = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^
                    (uint64_t)(uintptr_t)&rng_state;
    }
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void id_new(char out[MOCK_ID_MAX], const char *prefix, size_t random_len)
{
    static const char base62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    size_t n = strlen(prefix);
    assert(n + random_len < MOCK_ID_MAX);
    memcpy(out, prefix, n);
    uint64_t v = 0;
    for (size_t i = 0; i < random_len; i++) {
        if (i % 10 == 0)
            v = rng_next(); /* 62^10 < 2^64: ten characters per draw */
        out[n++] = base62[v % 62];
        v /= 62;
    }
    out[n] = '\0';
}

/* ---- The reply text ---------------------------------------------------------------------- */

/* Writes token `i` of the reply seeded by `seed` into `out` and returns its length. */
static size_t token_text(unsigned seed, unsigned i, char out[MOCK_TOKEN_MAX])
{
    const char *w = gh_mock_vocab[(seed + i) % GH_MOCK_VOCAB_WORDS];
    size_t wl = strlen(w), n = 0;
    assert(wl + 2 <= MOCK_TOKEN_MAX);
    if (i > 0)
        out[n++] = ' ';
    memcpy(out + n, w, wl);
    if (i % GH_MOCK_SENTENCE_TOKENS == 0 && out[n] >= 'a' && out[n] <= 'z')
        out[n] = (char)(out[n] - 'a' + 'A');
    n += wl;
    if (i % GH_MOCK_SENTENCE_TOKENS == GH_MOCK_SENTENCE_TOKENS - 1)
        out[n++] = '.';
    return n;
}

/* Writes the natural reply into `buf` (GH_MOCK_TEXT_MAX bytes) and, when `ends` is given, the
 * offset just past each token. Returns the length. */
static size_t natural_text(unsigned seed, char *buf, size_t ends[GH_MOCK_NATURAL_TOKENS])
{
    size_t len = 0;
    for (unsigned i = 0; i < GH_MOCK_NATURAL_TOKENS; i++) {
        len += token_text(seed, i, buf + len);
        assert(len < GH_MOCK_TEXT_MAX);
        if (ends != NULL)
            ends[i] = len;
    }
    buf[len] = '\0';
    return len;
}

/* ---- JSON (jsmn) ------------------------------------------------------------------------- */

typedef struct json {
    const char *js;
    const jsmntok_t *t;
    int n;
} json_t;

/* The index just past the value at `i` and everything inside it. Tokens come in document
 * order, so the subtree is every following token that starts before the value ends. */
static int json_skip(const json_t *j, int i)
{
    int end = j->t[i].end;
    int k = i + 1;
    while (k < j->n && j->t[k].start < end)
        k++;
    return k;
}

static size_t tok_len(const json_t *j, int i)
{
    return (size_t)(j->t[i].end - j->t[i].start);
}

static bool tok_is(const json_t *j, int i, const char *lit)
{
    size_t n = strlen(lit);
    return j->t[i].type == JSMN_STRING && tok_len(j, i) == n &&
           memcmp(j->js + j->t[i].start, lit, n) == 0;
}

static bool prim_is(const json_t *j, int i, const char *lit)
{
    size_t n = strlen(lit);
    return j->t[i].type == JSMN_PRIMITIVE && tok_len(j, i) == n &&
           memcmp(j->js + j->t[i].start, lit, n) == 0;
}

/* Walks an object's members. */
typedef struct members {
    const json_t *j;
    int next;
    int left;
} members_t;

static void members_init(members_t *it, const json_t *j, int obj)
{
    assert(j->t[obj].type == JSMN_OBJECT);
    it->j = j;
    it->next = obj + 1;
    it->left = j->t[obj].size;
}

/* 1 with the next member's key and value, 0 at the end, -1 when the JSON is malformed in a
 * way jsmn lets through (a key without a value). */
static int members_next(members_t *it, int *key, int *val)
{
    if (it->left == 0)
        return 0;
    int k = it->next;
    if (k + 1 >= it->j->n || it->j->t[k].type != JSMN_STRING || it->j->t[k].size != 1)
        return -1;
    *key = k;
    *val = k + 1;
    it->next = json_skip(it->j, k + 1);
    it->left--;
    return 1;
}

static unsigned hex4(const char *s)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        unsigned d = c <= '9' ? (unsigned)(c - '0') : c <= 'F' ? (unsigned)(c - 'A' + 10)
                                                                : (unsigned)(c - 'a' + 10);
        v = v << 4 | d;
    }
    return v;
}

/* Decodes the JSON string at `i` as UTF-8 into `out` (when not NULL, `cap` bytes) and returns
 * the decoded length, counting on past `cap`. jsmn's strict mode has already checked that
 * every escape is complete. A lone surrogate becomes U+FFFD, as JavaScript does. */
static uint64_t str_decode(const json_t *j, int i, char *out, size_t cap)
{
    const char *s = j->js + j->t[i].start;
    size_t n = tok_len(j, i);
    uint64_t len = 0;
    for (size_t k = 0; k < n; k++) {
        char c[4];
        size_t cn = 1;
        if (s[k] != '\\') {
            c[0] = s[k];
        } else {
            k++;
            switch (s[k]) {
            case 'b': c[0] = '\b'; break;
            case 'f': c[0] = '\f'; break;
            case 'n': c[0] = '\n'; break;
            case 'r': c[0] = '\r'; break;
            case 't': c[0] = '\t'; break;
            case 'u': {
                unsigned cp = hex4(s + k + 1);
                k += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF && k + 6 < n && s[k + 1] == '\\' &&
                    s[k + 2] == 'u') {
                    unsigned lo = hex4(s + k + 3);
                    if (lo >= 0xDC00 && lo <= 0xDFFF) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        k += 6;
                    }
                }
                if (cp >= 0xD800 && cp <= 0xDFFF)
                    cp = 0xFFFD;
                if (cp < 0x80) {
                    c[0] = (char)cp;
                } else if (cp < 0x800) {
                    c[0] = (char)(0xC0 | cp >> 6);
                    c[1] = (char)(0x80 | (cp & 0x3F));
                    cn = 2;
                } else if (cp < 0x10000) {
                    c[0] = (char)(0xE0 | cp >> 12);
                    c[1] = (char)(0x80 | (cp >> 6 & 0x3F));
                    c[2] = (char)(0x80 | (cp & 0x3F));
                    cn = 3;
                } else {
                    c[0] = (char)(0xF0 | cp >> 18);
                    c[1] = (char)(0x80 | (cp >> 12 & 0x3F));
                    c[2] = (char)(0x80 | (cp >> 6 & 0x3F));
                    c[3] = (char)(0x80 | (cp & 0x3F));
                    cn = 4;
                }
                break;
            }
            default: c[0] = s[k]; break; /* '"', '\\', '/' */
            }
        }
        if (out != NULL && len + cn <= cap)
            memcpy(out + len, c, cn);
        len += cn;
    }
    return len;
}

/* Reads a JSON integer >= 1 (saturating at UINT32_MAX). False for anything else. */
static bool tok_count(const json_t *j, int i, uint64_t *out)
{
    if (j->t[i].type != JSMN_PRIMITIVE)
        return false;
    const char *s = j->js + j->t[i].start;
    size_t n = tok_len(j, i);
    uint64_t v = 0;
    if (n == 0)
        return false;
    for (size_t k = 0; k < n; k++) {
        if (s[k] < '0' || s[k] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[k] - '0');
        if (v > UINT32_MAX)
            v = UINT32_MAX;
    }
    if (v < 1)
        return false;
    *out = v;
    return true;
}

/* ---- Reading a request ------------------------------------------------------------------- */

/* A request, parsed: the plan and where the model's name lies in the body. */
typedef struct mock_parsed {
    gh_mock_plan_t plan;
    size_t model_off, model_len;
    unsigned seed;
} mock_parsed_t;

/* The fields of a request body that matter; token indices, -1 when absent. */
typedef struct mock_fields {
    int model, max_tokens, max_completion_tokens, messages, system, stream, stream_options, stop;
} mock_fields_t;

/* Adds the text bytes of a content value (a string or an array of content blocks) to `bytes`.
 * Returns NULL or what is wrong. */
static const char *content_bytes(const json_t *j, int i, uint64_t *bytes)
{
    if (j->t[i].type == JSMN_STRING) {
        *bytes += str_decode(j, i, NULL, 0);
        return NULL;
    }
    if (j->t[i].type != JSMN_ARRAY)
        return "content must be a string or an array of content blocks";
    int k = i + 1;
    for (int e = 0; e < j->t[i].size; e++) {
        if (k >= j->n || j->t[k].type != JSMN_OBJECT)
            return "each content block must be an object";
        members_t it;
        int key, val, r, type = -1, text = -1;
        members_init(&it, j, k);
        while ((r = members_next(&it, &key, &val)) == 1) {
            if (tok_is(j, key, "type"))
                type = val;
            else if (tok_is(j, key, "text"))
                text = val;
        }
        if (r < 0)
            return "malformed JSON";
        if (type < 0 || j->t[type].type != JSMN_STRING)
            return "each content block needs a type";
        if (tok_is(j, type, "text")) {
            if (text < 0 || j->t[text].type != JSMN_STRING)
                return "a text block needs a text string";
            *bytes += str_decode(j, text, NULL, 0);
        }
        k = it.next;
    }
    return NULL;
}

static uint64_t part_tokens(uint64_t bytes)
{
    return GH_MOCK_TOKENS_PER_PART + (bytes + 3) / 4;
}

/* Counts the input tokens of `messages` (and `system`, Anthropic only). */
static const char *count_input(gh_api_kind_t api, const json_t *j, const mock_fields_t *f,
                               uint64_t *tokens)
{
    const char *e;
    *tokens = 0;
    if (f->system >= 0 && !prim_is(j, f->system, "null")) {
        uint64_t bytes = 0;
        if ((e = content_bytes(j, f->system, &bytes)) != NULL)
            return "system: must be a string or an array of text blocks";
        *tokens += part_tokens(bytes);
    }
    if (f->messages < 0)
        return "messages: Field required";
    if (j->t[f->messages].type != JSMN_ARRAY)
        return "messages: must be an array";
    if (j->t[f->messages].size == 0)
        return "messages: at least one message is required";
    int k = f->messages + 1;
    for (int m = 0; m < j->t[f->messages].size; m++) {
        if (k >= j->n || j->t[k].type != JSMN_OBJECT)
            return "messages: each message must be an object";
        members_t it;
        int key, val, r, role = -1, content = -1;
        members_init(&it, j, k);
        while ((r = members_next(&it, &key, &val)) == 1) {
            if (tok_is(j, key, "role"))
                role = val;
            else if (tok_is(j, key, "content"))
                content = val;
        }
        if (r < 0)
            return "malformed JSON";
        if (role < 0 || j->t[role].type != JSMN_STRING)
            return "messages: each message needs a role string";
        uint64_t bytes = 0;
        if (api == GH_API_CHAT) {
            /* An assistant message with tool calls may have no content at all. */
            if (content >= 0 && !prim_is(j, content, "null") &&
                (e = content_bytes(j, content, &bytes)) != NULL)
                return e;
        } else {
            if (!tok_is(j, role, "user") && !tok_is(j, role, "assistant"))
                return "messages: role must be user or assistant";
            if (content < 0)
                return "messages: each message needs content";
            if ((e = content_bytes(j, content, &bytes)) != NULL)
                return e;
        }
        *tokens += part_tokens(bytes);
        k = it.next;
    }
    return NULL;
}

/* Applies max_tokens and stop sequences to the natural reply and fills the plan's output. */
static const char *plan_output(gh_api_kind_t api, const json_t *j, const mock_fields_t *f,
                               uint64_t max_tokens, mock_parsed_t *p)
{
    const char *bad = api == GH_API_CHAT ? "stop: must be a string or an array of strings"
                                         : "stop_sequences: must be an array of strings";
    char natural[GH_MOCK_TEXT_MAX];
    size_t ends[GH_MOCK_NATURAL_TOKENS];
    size_t natural_len = natural_text(p->seed, natural, ends);
    gh_mock_plan_t *plan = &p->plan;

    /* The earliest token at which some stop sequence is complete, and where it starts. */
    size_t best_token = SIZE_MAX, best_at = 0, best_len = 0;
    if (f->stop >= 0 && !prim_is(j, f->stop, "null")) {
        int first, count;
        if (api == GH_API_CHAT && j->t[f->stop].type == JSMN_STRING) {
            first = f->stop;
            count = 1;
        } else if (j->t[f->stop].type == JSMN_ARRAY) {
            first = f->stop + 1;
            count = j->t[f->stop].size;
            if (api == GH_API_CHAT && count > 4)
                return "stop: at most 4 sequences";
        } else {
            return bad;
        }
        /* The elements are strings, so each is one token and they follow one another. */
        for (int s = 0, k = first; s < count; s++, k++) {
            char seq[GH_MOCK_TEXT_MAX];
            if (k >= j->n || j->t[k].type != JSMN_STRING)
                return bad;
            uint64_t len = str_decode(j, k, seq, sizeof(seq));
            if (len == 0 || len > natural_len)
                continue; /* cannot occur in the reply */
            const char *at = memmem(natural, natural_len, seq, (size_t)len);
            if (at == NULL)
                continue;
            size_t start = (size_t)(at - natural), end = start + (size_t)len, tok = 0;
            while (ends[tok] < end)
                tok++;
            if (tok < best_token || (tok == best_token && start < best_at)) {
                best_token = tok;
                best_at = start;
                best_len = (size_t)len;
            }
        }
    }

    plan->stop_reason = GH_MOCK_STOP_END_TURN;
    plan->output_tokens = GH_MOCK_NATURAL_TOKENS;
    plan->text_len = natural_len;
    if (best_token != SIZE_MAX && best_token + 1 <= max_tokens) {
        plan->stop_reason = GH_MOCK_STOP_SEQUENCE;
        plan->output_tokens = (uint32_t)best_token + 1;
        plan->text_len = best_at;
        memcpy(plan->stop_sequence, natural + best_at, best_len);
        plan->stop_sequence_len = best_len;
    } else if (max_tokens < GH_MOCK_NATURAL_TOKENS) {
        plan->stop_reason = GH_MOCK_STOP_MAX_TOKENS;
        plan->output_tokens = (uint32_t)max_tokens;
        plan->text_len = ends[max_tokens - 1];
    }
    plan->stop_sequence[plan->stop_sequence_len] = '\0';
    memcpy(plan->text, natural, plan->text_len);
    plan->text[plan->text_len] = '\0';
    return NULL;
}

/* Picks the fields out of the root object and turns them into a plan. */
static const char *plan_request(gh_api_kind_t api, const json_t *j, mock_parsed_t *p)
{
    mock_fields_t f = {-1, -1, -1, -1, -1, -1, -1, -1};
    members_t it;
    int key, val, r;
    const char *e;

    members_init(&it, j, 0);
    while ((r = members_next(&it, &key, &val)) == 1) {
        if (tok_is(j, key, "model"))
            f.model = val;
        else if (tok_is(j, key, "max_tokens"))
            f.max_tokens = val;
        else if (tok_is(j, key, "max_completion_tokens"))
            f.max_completion_tokens = val;
        else if (tok_is(j, key, "messages"))
            f.messages = val;
        else if (tok_is(j, key, "system"))
            f.system = val;
        else if (tok_is(j, key, "stream"))
            f.stream = val;
        else if (tok_is(j, key, "stream_options"))
            f.stream_options = val;
        else if (tok_is(j, key, api == GH_API_CHAT ? "stop" : "stop_sequences"))
            f.stop = val;
    }
    if (r < 0)
        return "malformed JSON";

    if (f.model < 0)
        return "model: Field required";
    if (j->t[f.model].type != JSMN_STRING || tok_len(j, f.model) == 0)
        return "model: must be a non-empty string";
    if (tok_len(j, f.model) > GH_MOCK_MODEL_MAX)
        return "model: too long for the mock";
    for (int k = j->t[f.model].start; k < j->t[f.model].end; k++)
        if ((unsigned char)j->js[k] < 0x20)
            return "model: control characters must be escaped";
    p->model_off = (size_t)j->t[f.model].start;
    p->model_len = tok_len(j, f.model);

    if (api == GH_API_CHAT && f.system >= 0)
        f.system = -1; /* not a Chat Completions field; system prompts are messages there */
    if ((e = count_input(api, j, &f, &p->plan.input_tokens)) != NULL)
        return e;
    p->seed = (unsigned)(p->plan.input_tokens % GH_MOCK_VOCAB_WORDS);

    if (f.stream >= 0 && !prim_is(j, f.stream, "null")) {
        if (prim_is(j, f.stream, "true"))
            p->plan.stream = true;
        else if (!prim_is(j, f.stream, "false"))
            return "stream: must be a boolean";
    }
    if (api == GH_API_COUNT_TOKENS) {
        p->plan.stream = false;
        p->plan.output_tokens = 0;
        return NULL;
    }

    uint64_t max_tokens = UINT32_MAX;
    if (api == GH_API_MESSAGES) {
        if (f.max_tokens < 0)
            return "max_tokens: Field required";
        if (!tok_count(j, f.max_tokens, &max_tokens))
            return "max_tokens: must be an integer of at least 1";
    } else {
        int which = f.max_completion_tokens >= 0 && !prim_is(j, f.max_completion_tokens, "null")
                        ? f.max_completion_tokens
                        : f.max_tokens;
        if (which >= 0 && !prim_is(j, which, "null") && !tok_count(j, which, &max_tokens))
            return "max_tokens: must be an integer of at least 1";
        if (f.stream_options >= 0 && !prim_is(j, f.stream_options, "null")) {
            if (j->t[f.stream_options].type != JSMN_OBJECT)
                return "stream_options: must be an object";
            members_init(&it, j, f.stream_options);
            while ((r = members_next(&it, &key, &val)) == 1) {
                if (!tok_is(j, key, "include_usage"))
                    continue;
                if (prim_is(j, val, "true"))
                    p->plan.include_usage = true;
                else if (!prim_is(j, val, "false") && !prim_is(j, val, "null"))
                    return "stream_options.include_usage: must be a boolean";
            }
            if (r < 0)
                return "malformed JSON";
        }
    }
    return plan_output(api, j, &f, max_tokens, p);
}

/* Tokenizes `body` and plans the reply. GH_EINVAL with `*error` set for a bad request,
 * GH_ENOMEM when the token array cannot be allocated. */
static gh_err_t parse_request(gh_api_kind_t api, const char *body, size_t len, mock_parsed_t *p,
                              const char **error)
{
    jsmntok_t stack_tokens[MOCK_STACK_TOKENS];
    jsmntok_t *heap_tokens = NULL;
    jsmn_parser parser;
    gh_err_t rc = GH_EINVAL;
    int n;

    memset(p, 0, sizeof(*p));
    if (len > INT_MAX / 2) {
        *error = "request body too large";
        return GH_EINVAL;
    }
    jsmn_init(&parser);
    n = jsmn_parse(&parser, body, len, stack_tokens, MOCK_STACK_TOKENS);
    json_t j = {body, stack_tokens, n};
    if (n == JSMN_ERROR_NOMEM) {
        jsmn_init(&parser);
        n = jsmn_parse(&parser, body, len, NULL, 0);
        if (n > GH_MOCK_JSON_TOKENS_MAX) {
            *error = "request body holds too many JSON values";
            goto out_free_tokens;
        }
        if (n > 0) {
            heap_tokens = calloc((size_t)n, sizeof(*heap_tokens));
            if (heap_tokens == NULL) {
                *error = "out of memory";
                rc = GH_ENOMEM;
                goto out_free_tokens;
            }
            jsmn_init(&parser);
            n = jsmn_parse(&parser, body, len, heap_tokens, (unsigned)n);
            j.t = heap_tokens;
            j.n = n;
        }
    }
    if (n < 0) {
        *error = n == JSMN_ERROR_PART ? "malformed JSON: the body ends too early"
                                      : "malformed JSON";
        goto out_free_tokens;
    }
    if (n < 1 || j.t[0].type != JSMN_OBJECT) {
        *error = "the request body must be a JSON object";
        goto out_free_tokens;
    }
    /* jsmn would accept a second value after the first, and stops at a NUL byte. */
    if (json_skip(&j, 0) != n) {
        *error = "malformed JSON: more than one value";
        goto out_free_tokens;
    }
    for (size_t k = (size_t)j.t[0].end; k < len; k++) {
        if (body[k] != ' ' && body[k] != '\t' && body[k] != '\r' && body[k] != '\n') {
            *error = "malformed JSON: unexpected bytes after the object";
            goto out_free_tokens;
        }
    }
    *error = plan_request(api, &j, p);
    rc = *error == NULL ? GH_OK : GH_EINVAL;

out_free_tokens:
    free(heap_tokens);
    return rc;
}

gh_err_t gh_mock_plan(gh_api_kind_t api, const char *body, size_t body_len, gh_mock_plan_t *plan,
                      char *err, size_t err_size)
{
    mock_parsed_t *p = malloc(sizeof(*p));
    const char *error = NULL;
    if (p == NULL)
        return GH_ENOMEM;
    gh_err_t rc = parse_request(api, body, body_len, p, &error);
    if (rc == GH_OK)
        *plan = p->plan;
    else if (err_size > 0)
        snprintf(err, err_size, "%s", error);
    free(p);
    return rc;
}

bool gh_mock_fail_parse(const char *s, size_t len, gh_mock_fail_t *out)
{
    static const struct {
        const char *name;
        gh_mock_fail_t fail;
    } names[] = {
        {"garbage", GH_MOCK_FAIL_GARBAGE},
        {"close-mid-stream", GH_MOCK_FAIL_CLOSE_MID_STREAM},
        {"stall", GH_MOCK_FAIL_STALL},
        {"529", GH_MOCK_FAIL_OVERLOADED},
        {"500", GH_MOCK_FAIL_SERVER_ERROR},
        {"429", GH_MOCK_FAIL_RATE_LIMITED},
        {"none", GH_MOCK_FAIL_NONE},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strlen(names[i].name) == len && memcmp(names[i].name, s, len) == 0) {
            *out = names[i].fail;
            return true;
        }
    }
    return false;
}

/* ---- A running mock ---------------------------------------------------------------------- */

enum mock_phase {
    PHASE_REPLY,   /* an immediate whole answer: an error or count_tokens */
    PHASE_FIRST,   /* waiting for the latency to pass */
    PHASE_TICK,    /* streaming tokens, or waiting for the last one to be due */
    PHASE_STALLED, /* waiting for a cancel that never has anything to stop */
};

struct gh_mock {
    h2o_timeout_entry_t timer; /* linked to one of the timeouts below while waiting */
    h2o_loop_t *loop;
    gh_upstream_cb_t cb;
    void *ctx;
    mock_timer_t *zero, *first, *tick; /* references held; NULL when not needed */
    const char *error;                 /* the 400's message, static */
    uint64_t t0_ms;                    /* loop time of the first bytes */
    uint64_t input_tokens;
    int64_t created;
    size_t bytes_out;
    uint32_t tokens_per_second;
    uint16_t text_len, stop_len, text_pos;
    uint8_t output_tokens, emitted, seed;
    uint8_t api, fail, phase, stop_reason;
    bool stream, include_usage, in_callback, cancelled, finished;
    uint8_t model_len;
    char id[MOCK_ID_MAX];
    char model[GH_MOCK_MODEL_MAX];
};
static_assert(GH_MOCK_MODEL_MAX <= UINT8_MAX, "model_len fits");
static_assert(GH_MOCK_TEXT_MAX <= UINT16_MAX, "text offsets fit");

static void mock_free(gh_mock_t *m)
{
    h2o_timeout_unlink(&m->timer);
    timer_put(m->zero);
    timer_put(m->first);
    timer_put(m->tick);
    free(m);
}

static void wait_on(gh_mock_t *m, mock_timer_t *t)
{
    assert(t != NULL && !h2o_timeout_is_linked(&m->timer));
    h2o_timeout_link(m->loop, &t->timeout, &m->timer);
}

/* The callbacks, each marking the mock as inside one so that a cancel from there only marks
 * it. They return whether the mock should go on. */
static bool call_head(gh_mock_t *m, int status, const char *content_type)
{
    m->in_callback = true;
    m->cb.on_head(m->ctx, status, content_type, strlen(content_type));
    m->in_callback = false;
    return !m->cancelled;
}

static bool call_body(gh_mock_t *m, const char *data, size_t len, bool final)
{
    m->bytes_out += len;
    assert(m->bytes_out <= GH_MOCK_OUTPUT_MAX);
    m->in_callback = true;
    m->cb.on_body(m->ctx, data, len, final);
    m->in_callback = false;
    if (final)
        m->finished = true;
    return !m->cancelled && !final;
}

static void call_error(gh_mock_t *m, gh_err_t err, const char *msg)
{
    m->in_callback = true;
    m->cb.on_error(m->ctx, err, msg);
    m->in_callback = false;
    m->finished = true;
}

/* Bytes gathered for one on_body. When the buffer fills it is passed on early; after a cancel
 * in that callback every further write is dropped (`dead`). */
typedef struct out {
    gh_mock_t *m;
    size_t len;
    bool dead;
    char buf[MOCK_CHUNK];
} out_t;

static void put(out_t *o, const char *s, size_t n)
{
    while (n > 0 && !o->dead) {
        if (o->len == sizeof(o->buf)) {
            o->dead = !call_body(o->m, o->buf, o->len, false);
            o->len = 0;
            continue;
        }
        size_t k = sizeof(o->buf) - o->len < n ? sizeof(o->buf) - o->len : n;
        memcpy(o->buf + o->len, s, k);
        o->len += k;
        s += k;
        n -= k;
    }
}

#define PUT(o, lit) put((o), (lit), sizeof(lit) - 1)

static void put_u64(out_t *o, uint64_t v)
{
    char tmp[20];
    size_t n = sizeof(tmp);
    do {
        tmp[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    put(o, tmp + n, sizeof(tmp) - n);
}

static void put_str(out_t *o, const char *s)
{
    put(o, s, strlen(s));
}

/* Passes what is gathered on. Returns whether the mock goes on (not cancelled, not final). */
static bool flush(out_t *o, bool final)
{
    if (o->dead)
        return false;
    if (o->len == 0 && !final)
        return true;
    bool go_on = call_body(o->m, o->buf, o->len, final);
    o->len = 0;
    o->dead = !go_on;
    return go_on;
}

/* The reply text from byte `from` of token `first` on, up to `text_len`: the visible part of
 * tokens [first, last). Returns the new text position. */
static size_t put_tokens_text(out_t *o, const gh_mock_t *m, unsigned first, unsigned last,
                              size_t pos)
{
    for (unsigned i = first; i < last && pos < m->text_len; i++) {
        char tok[MOCK_TOKEN_MAX];
        size_t n = token_text(m->seed, i, tok);
        if (n > m->text_len - pos)
            n = m->text_len - pos;
        put(o, tok, n);
        pos += n;
    }
    return pos;
}

static void put_stop_sequence(out_t *o, const gh_mock_t *m)
{
    if (m->stop_reason != GH_MOCK_STOP_SEQUENCE) {
        PUT(o, "null");
        return;
    }
    char natural[GH_MOCK_TEXT_MAX];
    natural_text(m->seed, natural, NULL);
    PUT(o, "\"");
    put(o, natural + m->text_len, m->stop_len);
    PUT(o, "\"");
}

static const char *stop_reason_name(const gh_mock_t *m)
{
    if (m->api == GH_API_CHAT)
        return m->stop_reason == GH_MOCK_STOP_MAX_TOKENS ? "length" : "stop";
    switch (m->stop_reason) {
    case GH_MOCK_STOP_MAX_TOKENS: return "max_tokens";
    case GH_MOCK_STOP_SEQUENCE: return "stop_sequence";
    default: return "end_turn";
    }
}

static void put_anthropic_usage(out_t *o, const gh_mock_t *m, uint64_t output_tokens)
{
    PUT(o, "\"usage\":{\"input_tokens\":");
    put_u64(o, m->input_tokens);
    PUT(o, ",\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":");
    put_u64(o, output_tokens);
    PUT(o, "}");
}

static void put_chat_usage(out_t *o, const gh_mock_t *m)
{
    PUT(o, "\"usage\":{\"prompt_tokens\":");
    put_u64(o, m->input_tokens);
    PUT(o, ",\"completion_tokens\":");
    put_u64(o, m->output_tokens);
    PUT(o, ",\"total_tokens\":");
    put_u64(o, m->input_tokens + m->output_tokens);
    PUT(o, "}");
}

/* {"id":…,"type":"message","role":"assistant","model":… — shared by the whole and the broken
 * non-streaming bodies and by message_start. */
static void put_message_head(out_t *o, const gh_mock_t *m)
{
    PUT(o, "{\"id\":\"");
    put_str(o, m->id);
    PUT(o, "\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"");
    put(o, m->model, m->model_len);
    PUT(o, "\"");
}

static void put_chat_head(out_t *o, const gh_mock_t *m, const char *object)
{
    PUT(o, "{\"id\":\"");
    put_str(o, m->id);
    PUT(o, "\",\"object\":\"");
    put_str(o, object);
    PUT(o, "\",\"created\":");
    put_u64(o, (uint64_t)m->created);
    PUT(o, ",\"model\":\"");
    put(o, m->model, m->model_len);
    PUT(o, "\",\"system_fingerprint\":null");
}

static void put_whole_body(out_t *o, const gh_mock_t *m)
{
    if (m->api == GH_API_CHAT) {
        put_chat_head(o, m, "chat.completion");
        PUT(o, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"");
        put_tokens_text(o, m, 0, m->output_tokens, 0);
        PUT(o, "\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"");
        put_str(o, stop_reason_name(m));
        PUT(o, "\"}],");
        put_chat_usage(o, m);
        PUT(o, "}");
        return;
    }
    put_message_head(o, m);
    PUT(o, ",\"content\":[{\"type\":\"text\",\"text\":\"");
    put_tokens_text(o, m, 0, m->output_tokens, 0);
    PUT(o, "\"}],\"stop_reason\":\"");
    put_str(o, stop_reason_name(m));
    PUT(o, "\",\"stop_sequence\":");
    put_stop_sequence(o, m);
    PUT(o, ",");
    put_anthropic_usage(o, m, m->output_tokens);
    PUT(o, "}");
}

/* ---- Streams ----------------------------------------------------------------------------- */

static void put_sse_start(out_t *o, const gh_mock_t *m)
{
    if (m->api == GH_API_CHAT) {
        PUT(o, "data: ");
        put_chat_head(o, m, "chat.completion.chunk");
        PUT(o, ",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
               "\"logprobs\":null,\"finish_reason\":null}]");
        if (m->include_usage)
            PUT(o, ",\"usage\":null");
        PUT(o, "}\n\n");
        return;
    }
    PUT(o, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":");
    put_message_head(o, m);
    PUT(o, ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,");
    put_anthropic_usage(o, m, 1);
    PUT(o, "}}\n\n"
           "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
           "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
           "event: ping\ndata: {\"type\":\"ping\"}\n\n");
}

/* One text delta event per token, for tokens [emitted, due). */
static void put_sse_tokens(out_t *o, gh_mock_t *m, unsigned due)
{
    for (unsigned i = m->emitted; i < due; i++) {
        char tok[MOCK_TOKEN_MAX];
        size_t n = token_text(m->seed, i, tok);
        if (n > (size_t)(m->text_len - m->text_pos))
            n = (size_t)(m->text_len - m->text_pos);
        m->emitted = (uint8_t)(i + 1);
        if (n == 0)
            continue; /* generated, but it lies in the withheld stop sequence */
        m->text_pos = (uint16_t)(m->text_pos + n);
        if (m->api == GH_API_CHAT) {
            PUT(o, "data: ");
            put_chat_head(o, m, "chat.completion.chunk");
            PUT(o, ",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"");
            put(o, tok, n);
            PUT(o, "\"},\"logprobs\":null,\"finish_reason\":null}]");
            if (m->include_usage)
                PUT(o, ",\"usage\":null");
            PUT(o, "}\n\n");
        } else {
            PUT(o, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
                   "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"");
            put(o, tok, n);
            PUT(o, "\"}}\n\n");
        }
    }
}

static void put_sse_end(out_t *o, const gh_mock_t *m)
{
    if (m->api == GH_API_CHAT) {
        PUT(o, "data: ");
        put_chat_head(o, m, "chat.completion.chunk");
        PUT(o, ",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"");
        put_str(o, stop_reason_name(m));
        PUT(o, "\"}]");
        if (m->include_usage)
            PUT(o, ",\"usage\":null");
        PUT(o, "}\n\n");
        if (m->include_usage) {
            PUT(o, "data: ");
            put_chat_head(o, m, "chat.completion.chunk");
            PUT(o, ",\"choices\":[],");
            put_chat_usage(o, m);
            PUT(o, "}\n\n");
        }
        PUT(o, "data: [DONE]\n\n");
        return;
    }
    PUT(o, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
           "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"");
    put_str(o, stop_reason_name(m));
    PUT(o, "\",\"stop_sequence\":");
    put_stop_sequence(o, m);
    PUT(o, "},");
    put_anthropic_usage(o, m, m->output_tokens);
    PUT(o, "}\n\n"
           "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
}

/* How many tokens have been generated by now: the first at t0, then tokens_per_second. */
static unsigned tokens_due(const gh_mock_t *m)
{
    if (m->tokens_per_second == 0)
        return m->output_tokens;
    uint64_t now = h2o_now(m->loop);
    uint64_t elapsed = now > m->t0_ms ? now - m->t0_ms : 0;
    uint64_t due = elapsed * m->tokens_per_second / 1000 + 1;
    return due < m->output_tokens ? (unsigned)due : m->output_tokens;
}

/* Streams what is due into `o` (which may already hold the start of the stream), and the end
 * when everything is out; otherwise waits for the next tick. */
static void stream_step(gh_mock_t *m, out_t *o)
{
    unsigned due = tokens_due(m);
    if (m->fail == GH_MOCK_FAIL_CLOSE_MID_STREAM) {
        unsigned cut = m->output_tokens < GH_MOCK_FAIL_AFTER_TOKENS ? m->output_tokens
                                                                     : GH_MOCK_FAIL_AFTER_TOKENS;
        if (due > cut)
            due = cut;
        put_sse_tokens(o, m, due);
        if (due == cut) {
            if (flush(o, false))
                call_error(m, GH_EIO,
                           "mock upstream: connection closed in the middle of the stream");
            return;
        }
    } else {
        put_sse_tokens(o, m, due);
        if (due == m->output_tokens) {
            put_sse_end(o, m);
            flush(o, true);
            return;
        }
    }
    if (flush(o, false)) {
        m->phase = PHASE_TICK;
        wait_on(m, m->tick);
    }
}

/* A non-streaming reply, once the last token is due. */
static void whole_step(gh_mock_t *m)
{
    if (tokens_due(m) < m->output_tokens) {
        m->phase = PHASE_TICK;
        wait_on(m, m->tick);
        return;
    }
    if (!call_head(m, 200, MOCK_CT_JSON))
        return;
    out_t o = {.m = m};
    if (m->fail == GH_MOCK_FAIL_CLOSE_MID_STREAM) {
        put_message_head(&o, m);
        if (flush(&o, false))
            call_error(m, GH_EIO, "mock upstream: connection closed in the middle of the body");
        return;
    }
    put_whole_body(&o, m);
    flush(&o, true);
}

/* The failures that replace the reply as a whole. Returns whether it handled the mock. */
static bool fail_step(gh_mock_t *m)
{
    const char *ct = m->stream ? MOCK_CT_SSE : MOCK_CT_JSON;
    switch (m->fail) {
    case GH_MOCK_FAIL_GARBAGE:
        if (call_head(m, 200, ct))
            call_body(m, MOCK_GARBAGE, sizeof(MOCK_GARBAGE) - 1, true);
        return true;
    case GH_MOCK_FAIL_STALL:
        if (call_head(m, 200, ct) && call_body(m, "", 0, false))
            m->phase = PHASE_STALLED;
        return true;
    default:
        return false;
    }
}

static void first_step(gh_mock_t *m)
{
    m->t0_ms = h2o_now(m->loop);
    if (fail_step(m))
        return;
    if (!m->stream) {
        whole_step(m);
        return;
    }
    if (!call_head(m, 200, MOCK_CT_SSE))
        return;
    out_t o = {.m = m};
    put_sse_start(&o, m);
    stream_step(m, &o);
}

/* Errors and count_tokens: one whole JSON answer. */
static void reply_step(gh_mock_t *m)
{
    out_t o = {.m = m};
    int status = 200;
    bool chat = m->api == GH_API_CHAT;

    if (m->error == NULL && m->fail == GH_MOCK_FAIL_OVERLOADED) {
        status = 529;
        if (chat)
            PUT(&o, "{\"error\":{\"message\":\"The mock upstream is overloaded.\",\"type\":"
                    "\"overloaded_error\",\"param\":null,\"code\":null}}");
        else
            PUT(&o, "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
                    "\"Overloaded\"}}");
    } else if (m->error == NULL && m->fail == GH_MOCK_FAIL_RATE_LIMITED) {
        status = 429;
        if (chat)
            PUT(&o, "{\"error\":{\"message\":\"Rate limit reached.\",\"type\":"
                    "\"rate_limit_error\",\"param\":null,\"code\":null}}");
        else
            PUT(&o, "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":"
                    "\"Rate limited\"}}");
    } else if (m->error == NULL && m->fail == GH_MOCK_FAIL_SERVER_ERROR) {
        status = 500;
        if (chat)
            PUT(&o, "{\"error\":{\"message\":\"The server had an error while processing your "
                    "request.\",\"type\":\"server_error\",\"param\":null,\"code\":null}}");
        else
            PUT(&o, "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":"
                    "\"Internal server error\"}}");
    } else if (m->error != NULL) {
        status = 400;
        if (chat) {
            PUT(&o, "{\"error\":{\"message\":\"");
            put_str(&o, m->error);
            PUT(&o, "\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":null}}");
        } else {
            PUT(&o, "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
                    "\"message\":\"");
            put_str(&o, m->error);
            PUT(&o, "\"}}");
        }
    } else {
        assert(m->api == GH_API_COUNT_TOKENS);
        if (fail_step(m))
            return;
        if (m->fail == GH_MOCK_FAIL_CLOSE_MID_STREAM) {
            if (call_head(m, 200, MOCK_CT_JSON) && call_body(m, "{\"input_tokens\":", 16, false))
                call_error(m, GH_EIO, "mock upstream: connection closed in the middle of the body");
            return;
        }
        PUT(&o, "{\"input_tokens\":");
        put_u64(&o, m->input_tokens);
        PUT(&o, "}");
    }
    if (call_head(m, status, MOCK_CT_JSON))
        flush(&o, true);
}

static void on_timer(h2o_timeout_entry_t *entry)
{
    gh_mock_t *m = H2O_STRUCT_FROM_MEMBER(gh_mock_t, timer, entry);
    assert(!m->finished && !m->cancelled);
    switch (m->phase) {
    case PHASE_REPLY:
        reply_step(m);
        break;
    case PHASE_FIRST:
        first_step(m);
        break;
    case PHASE_TICK:
        if (m->stream) {
            out_t o = {.m = m};
            stream_step(m, &o);
        } else {
            whole_step(m);
        }
        break;
    case PHASE_STALLED:
        assert(m->phase != PHASE_STALLED && "a stalled mock has no timer");
        break;
    }
    if (m->finished || m->cancelled)
        mock_free(m);
}

gh_mock_t *gh_mock_start_opts(h2o_loop_t *loop, const gh_mock_opts_t *opts, gh_api_kind_t api,
                              const char *body, size_t body_len, const gh_upstream_cb_t *cb,
                              void *ctx)
{
    mock_parsed_t parsed;
    const char *error = NULL;
    assert(loop != NULL && opts != NULL && cb != NULL);
    assert(cb->on_head != NULL && cb->on_body != NULL && cb->on_error != NULL);

    gh_err_t rc = parse_request(api, body, body_len, &parsed, &error);
    if (rc == GH_ENOMEM)
        return NULL;

    gh_mock_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->loop = loop;
    m->cb = *cb;
    m->ctx = ctx;
    m->timer.cb = on_timer;
    m->api = (uint8_t)api;
    m->fail = (uint8_t)opts->fail;
    m->created = (int64_t)time(NULL);

    if (rc != GH_OK) {
        m->error = error;
        m->phase = PHASE_REPLY;
    } else {
        const gh_mock_plan_t *plan = &parsed.plan;
        m->input_tokens = plan->input_tokens;
        m->output_tokens = (uint8_t)plan->output_tokens;
        m->text_len = (uint16_t)plan->text_len;
        m->stop_len = (uint16_t)plan->stop_sequence_len;
        m->stop_reason = (uint8_t)plan->stop_reason;
        m->seed = (uint8_t)parsed.seed;
        m->stream = plan->stream;
        m->include_usage = plan->include_usage;
        m->model_len = (uint8_t)parsed.model_len;
        memcpy(m->model, body + parsed.model_off, parsed.model_len);
        if (api == GH_API_CHAT)
            id_new(m->id, MOCK_CHAT_ID_PREFIX, MOCK_CHAT_ID_RANDOM);
        else
            id_new(m->id, MOCK_MSG_ID_PREFIX, MOCK_MSG_ID_RANDOM);
        bool whole = api == GH_API_COUNT_TOKENS || opts->fail == GH_MOCK_FAIL_OVERLOADED ||
                     opts->fail == GH_MOCK_FAIL_SERVER_ERROR ||
                     opts->fail == GH_MOCK_FAIL_RATE_LIMITED;
        m->phase = whole ? PHASE_REPLY : PHASE_FIRST;
    }

    if (m->phase == PHASE_REPLY) {
        m->zero = timer_acquire(loop, 0);
        if (m->zero == NULL)
            goto out_free_mock;
        wait_on(m, m->zero);
        return m;
    }
    uint64_t latency_ms = opts->latency_ms > 0 ? (uint64_t)opts->latency_ms : 0;
    m->first = timer_acquire(loop, latency_ms);
    if (m->first == NULL)
        goto out_free_mock;
    if (opts->tokens_per_second > 0) {
        m->tokens_per_second = (uint32_t)opts->tokens_per_second;
        /* Rounded up, so that every tick finds at least one token due. */
        m->tick = timer_acquire(loop, (1000 + m->tokens_per_second - 1) / m->tokens_per_second);
        if (m->tick == NULL)
            goto out_free_mock;
    }
    wait_on(m, m->first);
    return m;

out_free_mock:
    mock_free(m);
    return NULL;
}

gh_mock_t *gh_mock_start(h2o_loop_t *loop, const gh_model_cfg_t *model, gh_api_kind_t api,
                         const char *body, size_t body_len, const gh_upstream_cb_t *cb, void *ctx)
{
    gh_mock_opts_t opts = {
        .latency_ms = model->mock_latency_ms,
        .tokens_per_second = model->mock_tokens_per_second,
        .fail = GH_MOCK_FAIL_NONE,
    };
    return gh_mock_start_opts(loop, &opts, api, body, body_len, cb, ctx);
}

void gh_mock_cancel(gh_mock_t *m)
{
    if (m == NULL)
        return;
    if (m->in_callback) {
        m->cancelled = true; /* on_timer frees it when the callback returns */
        return;
    }
    assert(!m->finished);
    mock_free(m);
}
