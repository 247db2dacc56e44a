/* What a model API request is, as the data plane sees it: a strict, allocation-free scan of
 * the JSON body that yields only the top-level fields the gateway needs (model, max_tokens,
 * stream, messages, stream_options), the rewrite of that body for the upstream (the model name
 * spliced to the upstream's, usage reporting forced on for OpenAI streams), and the error
 * answers of the model API in Anthropic's and OpenAI's shapes.
 *
 * Why a scanner and not a token array: the body can be tens of megabytes, and a tokenizer
 * such as jsmn needs a token per JSON value (20 bytes each) and accepts malformed input
 * (jsmn 1.1.0 takes `{"a" "b"}`, `[1,,2]` and `{"a":tru}`). The scanner checks the whole
 * grammar of RFC 8259 in one pass with a fixed-size stack, bounds the nesting depth, and
 * reports the top-level members by offset; nothing is allocated and no tree is built. */
#ifndef GH_GATEWAY_REQUEST_H
#define GH_GATEWAY_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/upstream.h"
#include "lib/err.h"

/* Deepest nesting a request body may have; deeper bodies are refused with 400. */
#define GH_REQUEST_DEPTH_MAX 64
/* Longest model name kept (with its NUL); longer names are unknown models. */
#define GH_REQUEST_MODEL_MAX 128
/* Room for any message gh_request_parse writes. */
#define GH_REQUEST_MSG_MAX 256
/* Room for any error body or SSE error event rendered below (message included). */
#define GH_REQUEST_ERROR_MAX 2048

/* ---- Scanning --------------------------------------------------------------------------- */

typedef enum {
    GH_JSON_OBJECT,
    GH_JSON_ARRAY,
    GH_JSON_STRING,
    GH_JSON_NUMBER,
    GH_JSON_TRUE,
    GH_JSON_FALSE,
    GH_JSON_NULL,
} gh_json_type_t;

/* One member of the scanned object. Offsets are into the scanned text. */
typedef struct gh_json_member {
    const char *key; /* the key's raw bytes between its quotes (escapes not decoded) */
    size_t key_len;
    bool key_escaped; /* the raw key holds a backslash: decode it before comparing */
    gh_json_type_t type;
    size_t value_start; /* first byte of the value (its quote, bracket or first digit) */
    size_t value_end;   /* one past its last byte */
    size_t items;       /* direct children of an object or array value */
} gh_json_member_t;

/* Called for each top-level member in document order; a non-zero return stops the scan,
 * which then returns GH_ECONFLICT. */
typedef int (*gh_json_member_cb)(void *ctx, const gh_json_member_t *m);

/* Checks that `json` (`len` bytes, not NUL-terminated) is exactly one JSON object, with
 * whitespace around it allowed, nesting at most `depth_max` levels (the object itself is
 * level 1; at most GH_REQUEST_DEPTH_MAX), and calls `on_member` (may be NULL) for each of its
 * members. Strings are checked for escapes and raw control characters, not for UTF-8.
 * Returns GH_OK; GH_EINVAL when the text is not a JSON object, with `*err_at` the offset of
 * the first bad byte and `*what` a short description; GH_ETOOBIG when it nests too deep;
 * GH_ECONFLICT when `on_member` stopped it. `err_at` and `what` may be NULL. */
gh_err_t gh_request_scan(const char *json, size_t len, unsigned depth_max,
                         gh_json_member_cb on_member, void *ctx, size_t *err_at,
                         const char **what);

/* Decodes the raw inside of a JSON string (`len` bytes, already checked by the scanner) into
 * `out` as UTF-8 with a NUL. Returns false when it does not fit in `out_size` bytes or holds
 * an escape the scanner would not have passed. */
bool gh_request_unescape(const char *raw, size_t len, char *out, size_t out_size,
                         size_t *out_len);

/* ---- Requests --------------------------------------------------------------------------- */

/* The fields of a model request the gateway uses. Offsets are into the body parsed. */
typedef struct gh_request {
    gh_api_kind_t api;
    char model[GH_REQUEST_MODEL_MAX]; /* decoded; unknown models are echoed from here */
    size_t model_len;
    bool model_too_long;    /* longer than GH_REQUEST_MODEL_MAX - 1 bytes: no such model */
    size_t model_start;     /* the model string value, quotes included: what is spliced */
    size_t model_end;
    int64_t max_tokens;     /* max_tokens (or max_completion_tokens for chat); -1: absent */
    bool stream;
    size_t messages;        /* number of messages */
    size_t root_end;        /* offset of the body's closing brace */
    /* stream_options (chat only): absent, null or an object. */
    bool stream_options;
    gh_json_type_t stream_options_type;
    size_t stream_options_start, stream_options_end;
    bool include_usage_true;          /* stream_options.include_usage is literally true */
    bool include_usage_present;
    size_t include_usage_start, include_usage_end;
    size_t stream_options_members;
} gh_request_t;

/* Parses and validates a model request body for `api`:
 *   - a JSON object (strict grammar, depth at most GH_REQUEST_DEPTH_MAX);
 *   - "model": a non-empty string; "messages": a non-empty array (both required);
 *   - /v1/messages: "max_tokens" required, an integer >= 1; chat: "max_tokens" and
 *     "max_completion_tokens" optional (null or an integer >= 1); count_tokens: not read;
 *   - "stream": a boolean (null also allowed for chat); "stream_options" (chat): an object
 *     or null, whose "include_usage" is a boolean or null;
 *   - none of these fields twice, however its key is escaped (two "model" keys would let a
 *     client be billed for one model and served by another).
 * Returns GH_OK, or GH_EINVAL with a message for the client in `msg` (GH_REQUEST_MSG_MAX
 * bytes) in Anthropic's style ("max_tokens: Field required"). */
gh_err_t gh_request_parse(gh_request_t *out, gh_api_kind_t api, const char *body, size_t len,
                          char msg[GH_REQUEST_MSG_MAX]);

/* The size of the body gh_request_rewrite writes. `model_json` is the upstream model name
 * as a JSON string literal, quotes included. With `force_usage`, a streaming chat request
 * gets stream_options.include_usage = true (added, or replacing what the client sent), so
 * the upstream always reports usage. */
size_t gh_request_rewrite_size(const gh_request_t *r, size_t body_len, size_t model_json_len,
                               bool force_usage);

/* Writes the upstream's body into `out` (gh_request_rewrite_size bytes): `body` with the
 * model value replaced by `model_json` and, with `force_usage`, usage reporting forced on as
 * described above. Returns the length written. */
size_t gh_request_rewrite(const gh_request_t *r, const char *body, size_t body_len,
                          const char *model_json, size_t model_json_len, bool force_usage,
                          char *out);

/* ---- Error answers ------------------------------------------------------------------------ */

/* The one mapping of internal codes to the model API's wire errors:
 *   GH_EINVAL 400 invalid_request_error   GH_EAUTH 401 authentication_error
 *   GH_EPERM 403 permission_error         GH_ENOTFOUND 404 not_found_error
 *   GH_ETOOBIG 413 request_too_large      GH_ERATE 429 rate_limit_error
 *   GH_EBILLING 402 billing_error         GH_EIO 502 api_error (upstream failed)
 *   GH_ETIMEOUT 504 timeout_error         GH_EUNAVAIL 529 overloaded_error
 *   anything else 500 api_error
 * Returns the HTTP status and sets `*type` (Anthropic's error type) and `*code` (the code
 * used in OpenAI-shaped errors: "invalid_request", "invalid_api_key", "model_not_found",
 * "upstream_error", ...). */
int gh_request_error_status(gh_err_t err, const char **type, const char **code);

/* Writes the error body for `err` into `out` (at least GH_REQUEST_ERROR_MAX bytes) and returns
 * its length. Anthropic routes get {"type":"error","error":{"type","message"},"request_id"};
 * /v1/chat/completions gets OpenAI's {"error":{"message","type","param":null,"code"}}.
 * `message` is plain text (escaped here; cut if very long). */
size_t gh_request_error_body(gh_api_kind_t api, gh_err_t err, const char *message,
                             const char *request_id, char *out, size_t out_size);

/* The same error as one server-sent event, for a stream that has already started: Anthropic's
 * "event: error" with the error object as data, or for chat a data line holding
 * {"error":{...}}, which the OpenAI SDK raises. Returns the length written. */
size_t gh_request_error_event(gh_api_kind_t api, gh_err_t err, const char *message,
                              const char *request_id, char *out, size_t out_size);

#endif
