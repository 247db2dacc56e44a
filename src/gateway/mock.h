/* The built-in mock model: a virtual upstream (see upstream.h) that answers Anthropic Messages,
 * count_tokens and OpenAI Chat Completions requests on an h2o event loop, without a network.
 * It is the default model of `make run`, the upstream of the tests and the target of the
 * benchmark, so everything it says is deterministic and its usage is exact.
 *
 * Input tokens. Every "part" of the prompt costs GH_MOCK_TOKENS_PER_PART tokens plus one token
 * per started four bytes of its text: input_tokens = sum over parts of (4 + ceil(bytes / 4)).
 * The parts are the system prompt when the request has one (Anthropic's "system", a string or
 * text blocks; even an empty one counts) and every message (for Chat Completions the system
 * message is one of them). `bytes` is the UTF-8 length of the part's text after JSON
 * unescaping: a string content, or the concatenated "text" of its {"type":"text"} blocks; other
 * block types (images, tools) cost only the 4. Node: Buffer.byteLength(text, 'utf8').
 *
 * Output. The reply is made of whole words, one token each, taken in order from the fixed
 * GH_MOCK_VOCAB (32 words) starting at word (input_tokens mod 32): token i (from 0) is
 * word[(input_tokens + i) mod 32], capitalised when i is a multiple of 10, followed by "." when
 * i mod 10 is 9, and preceded by a space unless i is 0. The natural reply is three such
 * sentences, GH_MOCK_NATURAL_TOKENS (30) tokens, ending with stop_reason "end_turn" (Chat:
 * finish_reason "stop"). It ends earlier:
 *  - at max_tokens (Chat: max_completion_tokens, else max_tokens; absent means no limit):
 *    output_tokens = max_tokens, stop_reason "max_tokens" (Chat: "length");
 *  - at a stop sequence (Anthropic "stop_sequences", Chat "stop"): generation stops after the
 *    first token whose addition makes the text contain one of them (the earliest-starting if
 *    several complete at that token); output_tokens counts the tokens generated, that one
 *    included, and the text ends just before the match. stop_reason "stop_sequence" with
 *    stop_sequence set (Chat: finish_reason "stop"). When max_tokens comes first, it wins.
 * cache_creation_input_tokens and cache_read_input_tokens are always 0.
 *
 * Timing. The first bytes come mock_latency_ms after the start; then, streaming, token k (from
 * 0) is sent k * 1000 / tokens_per_second ms after the first bytes (0 tokens per second: all at
 * once). A non-streaming reply comes whole when the last token would have been streamed. Timers
 * are h2o timeouts on the caller's loop; nothing sleeps. Errors in the request (400) and
 * count_tokens answers come on the next turn of the loop, without the latency.
 *
 * Memory. A running mock holds a few hundred bytes and generates its text as it goes; one mock
 * emits at most GH_MOCK_OUTPUT_MAX bytes in all, so a relay that must buffer what it cannot
 * send yet needs at most that much. Parsing the request borrows a token array for the duration
 * of the start call only. */
#ifndef GH_GATEWAY_MOCK_H
#define GH_GATEWAY_MOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <h2o/socket.h>

#include "gateway/upstream.h"
#include "lib/config.h"
#include "lib/err.h"

#define GH_MOCK_TOKENS_PER_PART 4
#define GH_MOCK_VOCAB_WORDS 32
#define GH_MOCK_SENTENCE_TOKENS 10
#define GH_MOCK_NATURAL_TOKENS 30
/* The longest natural reply in bytes (30 tokens of at most 9 bytes each), plus room. */
#define GH_MOCK_TEXT_MAX 320
/* The longest "model" a request may name, as raw JSON string bytes; it is echoed back. */
#define GH_MOCK_MODEL_MAX 128
/* Everything one mock ever emits, head excluded. */
#define GH_MOCK_OUTPUT_MAX (32 * 1024)
/* JSON values a request body may hold (a JSON value costs 16 bytes while parsing). */
#define GH_MOCK_JSON_TOKENS_MAX (1 << 18)
/* With GH_MOCK_FAIL_CLOSE_MID_STREAM, the text tokens streamed before the failure. */
#define GH_MOCK_FAIL_AFTER_TOKENS 2

/* The 32 words of the reply, in order. */
extern const char *const gh_mock_vocab[GH_MOCK_VOCAB_WORDS];

typedef struct gh_mock gh_mock_t;

/* Injected failures, for tests of what sits in front of an upstream. */
typedef enum {
    GH_MOCK_FAIL_NONE,
    GH_MOCK_FAIL_GARBAGE,          /* 200 with a body that is neither JSON nor SSE */
    GH_MOCK_FAIL_CLOSE_MID_STREAM, /* a few events (or half a JSON body), then on_error(GH_EIO) */
    GH_MOCK_FAIL_STALL,            /* on_head, one empty on_body, then nothing until cancelled */
    GH_MOCK_FAIL_OVERLOADED,       /* 529 with an overloaded_error body */
    GH_MOCK_FAIL_SERVER_ERROR,     /* 500 with an api_error body */
    GH_MOCK_FAIL_RATE_LIMITED,     /* 429 with a rate_limit_error body */
} gh_mock_fail_t;

typedef struct gh_mock_opts {
    int latency_ms;        /* time to the first byte; negative counts as 0 */
    int tokens_per_second; /* streaming pace; 0 or negative: no pacing */
    gh_mock_fail_t fail;
} gh_mock_opts_t;

typedef enum {
    GH_MOCK_STOP_END_TURN,
    GH_MOCK_STOP_MAX_TOKENS,
    GH_MOCK_STOP_SEQUENCE,
} gh_mock_stop_t;

/* What the mock will answer to a request: the numbers and the text a test expects. */
typedef struct gh_mock_plan {
    uint64_t input_tokens;
    uint32_t output_tokens;  /* 0 for count_tokens */
    gh_mock_stop_t stop_reason;
    bool stream;             /* the request asked for a stream */
    bool include_usage;      /* Chat: stream_options.include_usage */
    size_t text_len;
    char text[GH_MOCK_TEXT_MAX + 1];          /* the reply, NUL-terminated */
    size_t stop_sequence_len;
    char stop_sequence[GH_MOCK_TEXT_MAX + 1]; /* the matched stop sequence, or "" */
} gh_mock_plan_t;

/* Starts answering `body` (a request of kind `api`, which need not outlive the call) with the
 * timing of `model` (mock_latency_ms, mock_tokens_per_second; the pointer is not kept). The
 * callbacks run later, on `loop`'s thread, never inside this call: on_head once, then on_body
 * until one with final set, or on_error; a malformed request gets status 400 and an error body
 * in the API's own shape. After the final callback the mock frees itself and the handle is
 * dead. Returns NULL, and never calls back, when memory or timers run out. Call only on the
 * thread that runs `loop`. */
gh_mock_t *gh_mock_start(h2o_loop_t *loop, const gh_model_cfg_t *model, gh_api_kind_t api,
                         const char *body, size_t body_len, const gh_upstream_cb_t *cb, void *ctx);

/* gh_mock_start with the timing and an injected failure given directly. */
gh_mock_t *gh_mock_start_opts(h2o_loop_t *loop, const gh_mock_opts_t *opts, gh_api_kind_t api,
                              const char *body, size_t body_len, const gh_upstream_cb_t *cb,
                              void *ctx);

/* Stops a running mock and frees it; no callback comes after this. Allowed from inside the
 * mock's own on_head or non-final on_body (the mock is freed when the callback returns), not
 * after its final callback. Safe with NULL. */
void gh_mock_cancel(gh_mock_t *m);

/* Releases the timers mocks keep on `loop` (a handful per distinct timing, shared by all the
 * mocks of that loop and kept between requests). Call it on the loop's thread, once no mock
 * runs on the loop, and before h2o_evloop_destroy, which asserts that no timer is left. Safe
 * when no mock ever ran there. */
void gh_mock_loop_release(h2o_loop_t *loop);

/* Computes what the mock will answer to `body` (see the formulas above) without a loop. On a
 * malformed request returns GH_EINVAL and writes the error message the mock would send into
 * `err`; GH_ENOMEM when the parse cannot get its memory. */
gh_err_t gh_mock_plan(gh_api_kind_t api, const char *body, size_t body_len, gh_mock_plan_t *plan,
                      char *err, size_t err_size);

/* Maps an x-mock-fail header value ("garbage", "close-mid-stream", "stall", "529", "500",
 * "429", "none") to a failure. Returns false for anything else. */
bool gh_mock_fail_parse(const char *s, size_t len, gh_mock_fail_t *out);

#endif
