/* Usage metering on the relayed response: an incremental server-sent-events parser and the
 * extraction of token counts from the events (or the final JSON body) that carry them.
 *
 * The SSE parser takes bytes in chunks split anywhere (even inside a CRLF), accepts LF, CRLF
 * and CR line ends, comments, multi-line data and fields it does not know, and holds at most
 * the data of one event, in a buffer the caller gives it, which may be allowed to grow once
 * (to a buffer of its own, freed by gh_sse_dispose): an event whose data is longer still is
 * passed on marked truncated, never an error. It also reports where the last complete event
 * ended, so the relay can forward whole events only.
 *
 * Usage is read from just the events that carry it, with the strict scanner of
 * gateway/request.h walking the members of the usage object; no JSON tree is built and
 * nothing is allocated:
 *   Anthropic stream    message_start: message.usage (input, cache creation, cache read,
 *                       output); message_delta: usage (output is cumulative; any input or
 *                       cache counts present replace the earlier ones); message_stop ends it.
 *   Anthropic JSON      usage of the final message.
 *   OpenAI stream       the chunk whose usage is an object (stream_options.include_usage);
 *                       "data: [DONE]" ends it.
 *   OpenAI JSON         usage of the completion.
 * OpenAI's prompt_tokens include the cached ones (prompt_tokens_details.cached_tokens); they
 * are split so that input_tokens means uncached input for both APIs. */
#ifndef GH_GATEWAY_METER_H
#define GH_GATEWAY_METER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/config.h"

/* ---- SSE ----------------------------------------------------------------------------------- */

#define GH_SSE_EVENT_NAME_MAX 32

/* One dispatched event: its type (empty when the event had no "event:" field) and its data
 * lines joined with '\n'. `truncated` when the data did not fit the buffer (it then holds
 * the start only). */
typedef void (*gh_sse_event_cb)(void *ctx, const char *event, size_t event_len,
                                const char *data, size_t data_len, bool truncated);

typedef struct gh_sse {
    char *data; /* the caller's buffer, or `grown` */
    size_t data_cap;
    size_t data_max; /* the buffer may grow to this (<= data_cap: it may not) */
    char *grown;     /* the buffer of data_max bytes once it grew; NULL before */
    size_t data_len;
    bool data_seen; /* a data field arrived since the last dispatch */
    bool data_truncated;
    char event[GH_SSE_EVENT_NAME_MAX];
    size_t event_len;
    bool event_truncated;
    /* The line being read. */
    char field[8];
    size_t field_len; /* > sizeof(field): a field we do not know */
    int state;        /* where in the line we are (see meter.c) */
    bool after_cr;    /* the last byte was CR: an LF right after it ends nothing */
    bool line_empty;  /* nothing but the line end so far */
    uint64_t offset;  /* bytes fed so far */
    uint64_t boundary; /* offset just past the blank line that ended the last event */
} gh_sse_t;

/* Prepares `p` to read a new stream, keeping event data in `buf` (`cap` bytes, at least 1). */
void gh_sse_init(gh_sse_t *p, char *buf, size_t cap);

/* Lets the data buffer grow to `max` bytes: the first event whose data does not fit `buf`
 * moves it to a buffer of `max` bytes of the parser's own (if that cannot be had, the event
 * is truncated as without growth). */
void gh_sse_allow_growth(gh_sse_t *p, size_t max);

/* Frees what the parser allocated (nothing unless its buffer grew). */
void gh_sse_dispose(gh_sse_t *p);

/* Reads `len` more bytes, calling `cb` for each event they complete. */
void gh_sse_feed(gh_sse_t *p, const char *data, size_t len, gh_sse_event_cb cb, void *ctx);

/* ---- Usage --------------------------------------------------------------------------------- */

typedef struct gh_meter_usage {
    int64_t input_tokens; /* uncached input */
    int64_t output_tokens;
    int64_t cache_creation_tokens;
    int64_t cache_read_tokens;
} gh_meter_usage_t;

typedef enum { GH_METER_ANTHROPIC, GH_METER_OPENAI } gh_meter_style_t;

typedef struct gh_meter {
    gh_meter_style_t style;
    gh_sse_t sse;
    gh_meter_usage_t usage;
    bool usage_seen;  /* the upstream reported usage at least once */
    bool terminal;    /* message_stop or [DONE] arrived */
    bool error_event; /* the upstream sent an error event */
    int64_t deltas;   /* content deltas relayed: a floor on output tokens when usage is not
                         yet reported */
    uint64_t events;
    uint64_t events_truncated;
} gh_meter_t;

/* Prepares a meter for one response. `buf` and `cap` are the SSE parser's event buffer, which
 * grows to GH_METER_EVENT_MAX (enough for every event that carries usage) for the first event
 * that does not fit it; a small `buf` (GH_METER_EVENT_INLINE holds the events of both APIs'
 * streams as they come) keeps a stream held open small. Call gh_meter_dispose at the end. */
#define GH_METER_EVENT_MAX 16384
#define GH_METER_EVENT_INLINE 1024
void gh_meter_init(gh_meter_t *m, gh_meter_style_t style, char *buf, size_t cap);

/* Frees the meter's grown event buffer, if it grew. */
void gh_meter_dispose(gh_meter_t *m);

/* Feeds streamed response bytes. */
void gh_meter_feed(gh_meter_t *m, const char *data, size_t len);

/* Where the last complete event ended, as an offset into the bytes fed. */
static inline uint64_t gh_meter_boundary(const gh_meter_t *m)
{
    return m->sse.boundary;
}

/* Reads usage from a whole non-streamed JSON response body into `m`. Returns whether the
 * body carried usage. */
bool gh_meter_json(gh_meter_t *m, const char *json, size_t len);

/* Reads a usage object (`json` is the object's text) in `style`'s field names into `u`,
 * changing only the counts present (a later duplicate key wins). Returns whether it was a
 * valid JSON object with at least one count; text that is not changes nothing. */
bool gh_meter_usage_object(gh_meter_style_t style, const char *json, size_t len,
                           gh_meter_usage_t *u);

/* The output tokens to charge when a stream is cut short (on_disconnect = cancel): the
 * larger of the cumulative count reported so far and the number of content deltas relayed
 * (each carries at least one token). */
int64_t gh_meter_output_bound(const gh_meter_t *m);

/* The cost in nano-USD of `u` at `model`'s prices (each count priced with gh_price_cost,
 * summed, saturating at INT64_MAX). */
int64_t gh_meter_cost(const gh_meter_usage_t *u, const gh_model_cfg_t *model);

/* The same cost split by token type, for usage reports. */
typedef struct gh_meter_costs {
    int64_t input_nusd; /* uncached input */
    int64_t output_nusd;
    int64_t cache_creation_nusd;
    int64_t cache_read_nusd;
} gh_meter_costs_t;

/* Fills `out` with the cost of each count of `u` and returns their sum, which is what
 * gh_meter_cost returns: the total is always exactly the sum of the parts (short of
 * saturation at INT64_MAX, about nine billion dollars). */
int64_t gh_meter_costs(const gh_meter_usage_t *u, const gh_model_cfg_t *model,
                       gh_meter_costs_t *out);

/* An upper bound of what a request can cost on `model`, for admission: every input token at
 * the dearest input price (plain, cache write or cache read) and `output_bound` tokens of
 * output, plus 2 nano-USD because each of up to four separately rounded parts of an actual
 * cost may round up by half a nano-dollar. The input bound is the body's size in bytes: a
 * tokenizer's token covers at least one byte of text, and JSON around the text only adds
 * bytes. (What a real upstream adds on its own, such as a tool-use system prompt for a tiny
 * tool definition, could exceed it; that shows as an overrun in the admission engine's
 * stats, and the cost is still charged.) Saturates at INT64_MAX. */
int64_t gh_meter_worst_cost(const gh_model_cfg_t *model, int64_t input_bound,
                            int64_t output_bound);

#endif
