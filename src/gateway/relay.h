/* The relay: one admitted model request forwarded to its model's upstream and the answer
 * relayed back to the client as it arrives, metered on the way, charged with one usage event.
 *
 * Upstreams. A model with style anthropic or openai is reached over HTTP/1.1 (TLS for
 * https://) with gateway/hclient, through a keep-alive connection pool per deployment and
 * loop (bounded by the model's max_connections; requests beyond it wait for a free
 * connection), never blocking the loop; style mock is the built-in mock (gateway/mock.c). Both speak
 * gh_upstream_cb_t (upstream.h). The upstream gets only what it needs: content-type,
 * content-length, accept, anthropic-version and anthropic-beta (anthropic style), and its own
 * key read once at start from the model's api_key_env (x-api-key for anthropic style,
 * authorization: Bearer for openai style); never the client's key, cookies or forwarding
 * headers. The body is the client's with "model" spliced to upstream_model, and for streaming
 * chat requests stream_options.include_usage forced on, so usage is always reported.
 *
 * Answers. A 2xx event stream is relayed event by event with h2o's flow control: one
 * h2o_send at a time, bytes arriving meanwhile buffered, and the upstream socket paused when
 * the buffer passes a limit until the client drains it. Other answers (a JSON message, an
 * upstream 4xx, which is passed through with its status and body) are held whole (bounded)
 * so their usage can be read and charged before the client gets the last byte. Upstream
 * failures become Anthropic- or OpenAI-shaped errors (request.h): refused, reset or garbage
 * 502 api_error, timeouts 504 timeout_error, HTTP 503/529 529 overloaded_error, other 5xx
 * 502; once a stream has started they arrive as an SSE error event and the stream ends
 * cleanly.
 *
 * Deployments, retries, fallbacks. Each attempt goes to a deployment gateway/balancer.h
 * chooses. An attempt that fails before any byte went to the client (refused, reset, garbage,
 * connect or first-byte timeout, 5xx, 503/529, and a 429 when another attempt is possible)
 * is retried on another deployment, up to the model's `retries`, while the request is younger
 * than the model's first_byte_timeout_ms; the body is built once per model and sent again as
 * it is. Never after the first byte (a stream's head goes out with the upstream's), never on
 * another 4xx. When the model's deployments are exhausted or all ejected, the requested
 * model's `fallbacks` are tried in order: each must speak the request's API, have a
 * deployment in rotation, and pass admission for its own worst case (the hold moves to it);
 * the request is then billed at its prices and its usage event names the requested model,
 * the serving model and the deployment.
 *
 * Charging. Each request that reached this point is exactly one usage event, submitted
 * before the last bytes go to the client: at message_stop / [DONE], at the upstream's end,
 * or at its failure, with the tokens reported so far. When the client goes away the upstream
 * is read to its end and charged in full; with on_disconnect = cancel it is stopped at once
 * and charged its input plus gh_meter_output_bound of the output.
 *
 * Threads. Everything here runs on the loop thread that owns the gh_relay_loop_t. */
#ifndef GH_GATEWAY_RELAY_H
#define GH_GATEWAY_RELAY_H

#include <stddef.h>
#include <time.h>

#include <h2o.h>
#include <openssl/ssl.h>

#include "core/limits.h"
#include "core/state.h"
#include "core/usage.h"
#include "gateway/balancer.h"
#include "gateway/request.h"
#include "gateway/upstream.h"
#include "lib/config.h"
#include "lib/err.h"

/* What every loop shares about the configured models' upstreams: each model's deployments
 * (parsed URLs, the header lines carrying their own keys, TLS client contexts), its upstream
 * model name as a JSON literal, its balancer and fallbacks (gateway/relay_models.h). Built
 * once at start, read-only afterwards; it keeps pointers into `cfg`, which must outlive it. */
typedef struct gh_relay_models gh_relay_models_t;

/* Builds the shared upstream table for every model in `cfg` (in gateway/relay_models.c).
 * Reads each deployment's api_key_env from the environment (a variable that is named but unset is logged as a warning; the upstream then
 * gets no key). On failure writes a message into `err` and returns an error. */
gh_err_t gh_relay_models_new(gh_relay_models_t **out, const gh_config_t *cfg, char *err,
                             size_t err_size);
void gh_relay_models_free(gh_relay_models_t *rm);

/* What the active health checks (gateway/health.h) need of one deployment: where it is, its
 * TLS context (NULL for http://) and the model's balancer. Returns false when `model` has no
 * deployment `dep` (the mock, or past the end). */
typedef struct gh_relay_deploy_info {
    const char *host; /* without brackets; NUL-terminated copy */
    uint16_t port;
    const char *authority; /* for the host header */
    SSL_CTX *ssl_ctx;
    const char *tls_name; /* the name sent as SNI: tls_server_name, else the host */
    gh_balancer_t *balancer;
} gh_relay_deploy_info_t;
bool gh_relay_models_deploy(const gh_relay_models_t *rm, size_t model, size_t dep,
                            gh_relay_deploy_info_t *out);

/* One loop's relay machinery: socket pools, HTTP client contexts and timers per model, and
 * the requests being relayed. Owned by the loop thread; created after h2o_context_init and
 * freed before h2o_context_dispose, on that thread. */
typedef struct gh_relay_loop gh_relay_loop_t;

/* NULL when out of memory. `loops` is how many loops share each model's max_connections
 * (each gets its share, rounded up). `usage` may be NULL (events are then dropped). */
gh_relay_loop_t *gh_relay_loop_new(const gh_relay_models_t *rm, h2o_context_t *ctx,
                                   size_t loops, gh_usage_t *usage);

/* Requests being relayed, including those whose client has gone while their upstream is
 * still read to its end. */
size_t gh_relay_loop_active(const gh_relay_loop_t *rl);

/* Stops every upstream still running (shutdown after the grace period): each request is
 * charged what was reported so far and its client, if still there, gets a 529. */
void gh_relay_loop_abort(gh_relay_loop_t *rl);

/* Frees the loop's machinery; gh_relay_loop_active must be 0. Safe with NULL. */
void gh_relay_loop_free(gh_relay_loop_t *rl);

/* An admitted request, as the gateway hands it over. Everything is copied; nothing needs to
 * outlive the call to gh_relay_start. */
typedef struct gh_relay_request {
    h2o_req_t *req;
    gh_api_kind_t api;
    const gh_model_cfg_t *model; /* one of cfg->models */
    const gh_request_t *parsed;  /* the parsed body */
    const char *body;
    size_t body_len;
    const char *request_id;
    const gh_key_entry_t *key;
    h2o_iovec_t anthropic_version; /* validated; sent to anthropic-style upstreams */
    h2o_iovec_t anthropic_beta;    /* may be empty */
    h2o_iovec_t accept;            /* may be empty */
    struct timespec started;       /* CLOCK_MONOTONIC when the request arrived */
    /* Admission: what the request holds (copied; settled exactly once with the usage event,
     * or with zeros when it never reaches an upstream), or, when it holds nothing, where its
     * cost is counted. Both may be NULL. */
    gh_limits_t *limits;
    const gh_limits_hold_t *hold;
    /* The request's journal slot (gh_usage_reserve), taken before relaying; the relay
     * writes the usage event into it, or gives it back when there is none. */
    bool usage_reserved;
    /* Whether admission is enforced, and the request's bounds: a fallback model's worst case
     * (gh_meter_worst_cost) is admitted before it serves. */
    bool admit_enforced;
    int64_t input_bound, output_bound;
} gh_relay_request_t;

/* Forwards the request and relays the answer to rq->req, which always gets a response. */
void gh_relay_start(gh_relay_loop_t *rl, const gh_relay_request_t *rq);

#endif
