/* The data plane listener: libh2o event loops, one per thread, each accepting from its own
 * SO_REUSEPORT socket (the loop machinery it shares with the mock upstream is in loops.h).
 *
 * Threads. gh_gateway_start binds every listening socket on the caller's thread, so a bind
 * error comes back as an error rather than a log line, and builds the one h2o_globalconf_t
 * (one host, its path handlers and loggers), which is read-only once threads run. Each loop
 * thread then creates its own evloop and h2o context itself: h2o keeps caches in
 * thread-local storage (socket buffers, pool chunks) and an object created on one thread
 * would keep pointing at that thread's cache. Start returns once every loop is accepting.
 *
 * Requests. Every handler first attaches a gw_req_t to the request as an h2o prefilter. It
 * carries the request id and the start time, adds the request-id header to whatever response
 * is produced (ours today, the proxy's later), and is found again by our logger when h2o
 * disposes of the request. That logger is the one place where a request ends: it writes the
 * access line (accesslog.h) and decrements the loop's count of requests in flight. GET
 * /v1/models answers from the catalogue rendered at start (catalog.h).
 *
 * The model API. A model request is authenticated (reqauth.h: the key from x-api-key or
 * authorization: Bearer, checked for its format and checksum, hashed once with SHA-256 and
 * looked up in the in-memory state under its shared lock), its body parsed and validated
 * (request.h), its model found, admitted by the in-memory admission engine (core/limits.h:
 * credit, monthly spend limits, rate limits; the anthropic-ratelimit-* headers go on the
 * answer either way; a request put off for a rate share or a lease refill is parked, park.h),
 * and then handed to the relay (relay.h) with what it holds, which
 * forwards it, relays, meters and charges the answer and settles the hold. Everything refused
 * before that point is answered here with the API's error shape and is not a usage event.
 * Once the key is known, every answer carries anthropic-organization-id and
 * anthropic-workspace-id.
 *
 * Shutdown. gh_gateway_stop posts a message to every loop through h2o's multithread queue.
 * Each loop closes its listener, asks h2o to stop keeping connections alive, and waits for
 * its requests in flight, and for relays still reading an upstream whose client has left,
 * for up to shutdown_grace_ms; then it stops the upstreams left (each is still charged).
 * Then it shuts down the sockets of the
 * connections still open. h2o 2.2.5 does nothing for idle keep-alive connections on
 * shutdown and would keep them until their idle timeout; shutting the socket makes h2o
 * see end-of-file and close the connection through its own path, which frees it properly.
 * Only when every connection is gone are the context and the loop freed. */
#ifndef H2O_USE_LIBUV
#define H2O_USE_LIBUV 0
#endif

#include "gateway/gateway.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <h2o.h>
#include <sodium.h>

#include "core/cluster.h"
#include "gateway/accesslog.h"
#include "gateway/catalog.h"
#include "gateway/logcap.h"
#include "gateway/health.h"
#include "gateway/loops.h"
#include "gateway/meter.h"
#include "gateway/park.h"
#include "gateway/pollhold.h"
#include "gateway/reqauth.h"
#include "gateway/mock.h"
#include "gateway/relay.h"
#include "gateway/request.h"
#include "gateway/shown.h"
#include "lib/crypto.h"
#include "lib/framing.h"
#include "lib/json_str.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/money.h"
#include "lib/text.h"

/* After the grace period the remaining sockets are shut down; h2o needs only a loop turn or
 * two to close them. A connection still open after this long is stuck in a handler, and its
 * loop is left allocated rather than freed under it. */
#define GW_CLOSE_WAIT_MS 1000
/* At most this many bytes of a client's path and method are echoed in a 404 or logged. */
#define GW_SHOWN_PATH_MAX GH_ACCESSLOG_PATH_MAX
#define GW_SHOWN_METHOD_MAX GH_ACCESSLOG_METHOD_MAX
#define GW_ELLIPSIS GH_SHOWN_ELLIPSIS
#define GW_SHOWN_SIZE GH_SHOWN_SIZE
#define GW_JSON_SIZE GH_SHOWN_JSON_SIZE
#define GW_TEXT_SIZE GH_SHOWN_TEXT_SIZE

/* Request ids look like Anthropic's: "req_01" and 22 base62 characters. */
#define GW_REQUEST_ID_PREFIX "req_01"
#define GW_REQUEST_ID_RANDOM 22
#define GW_REQUEST_ID_LEN (sizeof(GW_REQUEST_ID_PREFIX) - 1 + GW_REQUEST_ID_RANDOM)
/* Random bytes a loop draws from the kernel at once for request ids: about 180 ids. */
#define GW_RANDOM_BATCH 4096

#define GW_NOT_FOUND_FORMAT                                                                      \
    "{\"type\":\"error\",\"error\":{\"type\":\"not_found_error\",\"message\":\"No route for %s " \
    "%s. The model API serves /v1/messages, /v1/messages/count_tokens, /v1/models and "         \
    "/v1/chat/completions.\"},\"request_id\":\"%s\"}"
#define GW_NOT_FOUND_MAX 2048
static_assert(sizeof(GW_NOT_FOUND_FORMAT) + GW_JSON_SIZE(GW_SHOWN_METHOD_MAX) +
                      GW_JSON_SIZE(GW_SHOWN_PATH_MAX) + GW_REQUEST_ID_LEN <
                  GW_NOT_FOUND_MAX,
              "a 404 body always fits its buffer");

/* How much over api_max_body_bytes h2o still reads (see build_globalconf). */
#define GW_BODY_SLACK (1024 * 1024)

static_assert(GW_REQUEST_ID_LEN <= GH_ACCESSLOG_ID_MAX, "a request id fits an access line");

/* One event loop and the thread that runs it. Apart from `loop.listen_fd` before the thread
 * starts (see loops.h), every field is touched only by that thread, so none needs a lock. */
typedef struct gw_loop {
    gh_gateway_t *gw;
    pthread_t thread;
    bool thread_started;
    gh_loop_t loop;
    size_t requests_in_flight;
    gh_relay_loop_t *relay; /* NULL if it could not be created: model requests get a 500 */
    size_t random_used; /* bytes of `random` consumed; sizeof(random) when empty */
    gh_logcap_t logcap; /* access-log lines of refused requests */
    h2o_timeout_t park_timeout; /* requests waiting for a rate share (GW_RATE_PARK_MS) */
    h2o_timeout_t lease_wait; /* requests waiting for their lease's refill (cluster money) */
    bool lease_wait_ready;
    /* Last, so that what lies next to the following loop's busy first fields is bytes this
     * loop only touches once per batch, not counters it writes on every request. */
    unsigned char random[GW_RANDOM_BATCH];
} gw_loop_t;

struct gh_gateway {
    const gh_config_t *cfg;
    bool stop_sent; /* the loops were told to stop */
    gh_gateway_env_t env;
    gh_relay_models_t *relay_models;
    gh_health_t *health; /* active health checks; NULL when no model asks for them */
    gh_catalog_t *catalog; /* GET /v1/models, rendered once at start */
    int port;
    h2o_globalconf_t globalconf;
    bool globalconf_ready;
    size_t loops_count;
    gw_loop_t *loops;
    /* Start waits on these until every loop thread is accepting. */
    pthread_mutex_t ready_mutex;
    pthread_cond_t ready_cond;
    size_t loops_ready;
};

/* What the gateway keeps about one request, in the request's pool. It is an h2o prefilter so
 * that h2o calls it when a response starts and so that the logger can find it again. */
typedef struct gw_req {
    h2o_req_prefilter_t super; /* first, so the prefilter pointer is the gw_req_t */
    struct timespec started;   /* CLOCK_MONOTONIC, when our handler first saw it */
    char id[GW_REQUEST_ID_LEN + 1];
    unsigned parked; /* times admission was put off for a rate share (cluster mode) */
    int lease_waits; /* times it waited for a lease refill (see park_for_lease) */
    int64_t lease_wait_since_us; /* when it began waiting (the admission engine's clock) */
    /* For /metrics (lib/metrics.h): its route (-1: not a model API request, /healthz), its
     * model's index in cfg->models (-1: none), and whether the relay counts it (a request
     * relayed is counted when it is charged, with the time its upstream took). */
    int route;
    int model;
    bool relayed;
} gw_req_t;

/* ---- Requests ---------------------------------------------------------------------------- */

static gw_loop_t *loop_of(h2o_req_t *req)
{
    return H2O_STRUCT_FROM_MEMBER(gw_loop_t, loop.ctx, req->conn->ctx);
}

/* Writes a new request id into `out`. gh_random_base62 makes one getrandom(2) call per id
 * (Debian's libsodium uses the "sysrandom" backend: about 0.4 us a call); on the hot path even
 * that is worth avoiding, so a loop draws GW_RANDOM_BATCH bytes at a time in one getrandom(2)
 * (gh_random_bytes; libsodium's randombytes_buf made 16 calls of 256 bytes for them), about
 * 180 ids' worth, and maps them to base62 by the same rejection rule (bytes >= 248 skipped, as
 * 248 = 4 * 62), so every character stays uniform. */
static void request_id_new(gw_loop_t *l, char out[GW_REQUEST_ID_LEN + 1])
{
    static const char base62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    static_assert(sizeof(base62) - 1 == 62, "base62 has 62 characters");
    assert(l->random_used <= sizeof(l->random));
    size_t n = sizeof(GW_REQUEST_ID_PREFIX) - 1;
    memcpy(out, GW_REQUEST_ID_PREFIX, n);
    while (n < GW_REQUEST_ID_LEN) {
        if (l->random_used == sizeof(l->random)) {
            gh_random_bytes(l->random, sizeof(l->random));
            l->random_used = 0;
        }
        unsigned char b = l->random[l->random_used++];
        if (b < 4 * 62)
            out[n++] = base62[b % 62];
    }
    out[n] = '\0';
}

static void on_setup_ostream(h2o_req_prefilter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    gw_req_t *r = (gw_req_t *)self;
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("request-id"), 0, NULL, r->id,
                          GW_REQUEST_ID_LEN);
    /* Server as a header of ours, copied as the others are: h2o writes its server_name (left
     * empty, see build_globalconf) with a sprintf of its own on every response. */
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_SERVER, NULL, H2O_STRLIT("gatehouse"));
    h2o_setup_next_prefilter(self, req, slot);
}

static gw_req_t *req_find(const h2o_req_t *req)
{
    for (h2o_req_prefilter_t *p = req->prefilters; p != NULL; p = p->next)
        if (p->on_setup_ostream == on_setup_ostream)
            return (gw_req_t *)p;
    return NULL;
}

/* Gives the request its id and start time and counts it in flight until the logger sees it
 * disposed. Every handler calls this first. */
static gw_req_t *req_begin(h2o_req_t *req)
{
    gw_req_t *r = req_find(req);
    if (r != NULL)
        return r; /* h2o sent the request through the handlers again */
    gw_loop_t *l = loop_of(req);
    r = (gw_req_t *)h2o_add_prefilter(req, sizeof(*r));
    r->super.on_setup_ostream = on_setup_ostream;
    r->parked = 0; /* the pool's memory is not zeroed */
    r->lease_waits = 0; /* the pool's memory is not zeroed */
    r->lease_wait_since_us = 0;
    r->route = GH_ROUTE_OTHER;
    r->model = -1;
    r->relayed = false;
    clock_gettime(CLOCK_MONOTONIC, &r->started);
    request_id_new(l, r->id);
    l->requests_in_flight++;
    gh_pollhold_start(req); /* no epoll_ctl while it is answered; ended in on_log_access */
    return r;
}

static bool method_is(const h2o_req_t *req, const char *method, size_t len)
{
    return h2o_memis(req->method.base, req->method.len, method, len);
}

/* Sends `body` (which must live until the request is disposed: static or in req->pool) as the
 * whole JSON response. A HEAD request gets the headers, with the length a GET would have. */
static void reply_json(h2o_req_t *req, int status, const char *reason, const char *body,
                       size_t len)
{
    /* The whole body goes in one h2o_send, so there is nothing to pull or stop; h2o never
     * writes to a generator, so one instance serves every thread. */
    static h2o_generator_t generator = {NULL, NULL};
    req->res.status = status;
    req->res.reason = reason;
    req->res.content_length = len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/json"));
    h2o_start_response(req, &generator);
    if (method_is(req, H2O_STRLIT("HEAD"))) {
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    } else {
        h2o_iovec_t buf = h2o_iovec_init(body, len);
        h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
    }
}

static int reply_not_found(h2o_req_t *req, const gw_req_t *r)
{
    char method[GW_SHOWN_SIZE(GW_SHOWN_METHOD_MAX)];
    char path[GW_SHOWN_SIZE(GW_SHOWN_PATH_MAX)];
    char method_json[GW_JSON_SIZE(GW_SHOWN_METHOD_MAX)];
    char path_json[GW_JSON_SIZE(GW_SHOWN_PATH_MAX)];
    h2o_iovec_t p = gh_accesslog_path(req);

    gh_shown_utf8(method, req->method.base, req->method.len, GW_SHOWN_METHOD_MAX);
    gh_shown_utf8(path, p.base, p.len, GW_SHOWN_PATH_MAX);
    gh_json_escape(method_json, sizeof(method_json), method);
    gh_json_escape(path_json, sizeof(path_json), path);

    char *body = h2o_mem_alloc_pool(&req->pool, GW_NOT_FOUND_MAX);
    int n = snprintf(body, GW_NOT_FOUND_MAX, GW_NOT_FOUND_FORMAT, method_json, path_json, r->id);
    assert(n > 0 && n < GW_NOT_FOUND_MAX);
    reply_json(req, 404, "Not Found", body, (size_t)n);
    return 0;
}

/* The node's fields of /healthz: `,"node_id":…,"clustered":…,"store_connected":…` (the
 * node id is [A-Za-z0-9_-], nothing to escape). */
static int cluster_fields(const gh_gateway_t *gw, char *out, size_t size)
{
    if (!gw->env.cluster)
        return snprintf(out, size, "%s", "");
    gh_cluster_stats_t st;
    gh_cluster_stats(gw->env.cluster, &st);
    return snprintf(out, size, ",\"node_id\":\"%s\",\"clustered\":%s,\"store_connected\":%s",
                    st.node_id, st.clustered ? "true" : "false",
                    !st.clustered || st.connected ? "true" : "false");
}

/* 200 {"status":"ok",…}, or 503 {"status":"degraded","reason":…,…} while usage cannot be
 * recorded or the usage writer's commits fail, so a load balancer sends model traffic
 * elsewhere. Both carry the node's id and whether it is connected to the store (a node cut
 * off from PostgreSQL still serves within its leases: that alone is not degraded). */
static int on_healthz(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    gw_req_t *r = req_begin(req);
    r->route = -1;
    /* The path handler also matches "/healthz/..."; only the exact path is the health check. */
    if (!h2o_memis(req->path_normalized.base, req->path_normalized.len, H2O_STRLIT("/healthz")) ||
        !(method_is(req, H2O_STRLIT("GET")) || method_is(req, H2O_STRLIT("HEAD"))))
        return reply_not_found(req, r);
    const gh_gateway_t *gw = loop_of(req)->gw;
    gh_usage_t *usage = gw->env.usage;
    char why[160], why_json[2 * sizeof(why)], node[160];
    int nn = cluster_fields(gw, node, sizeof(node));
    assert(nn >= 0 && (size_t)nn < sizeof(node));
    size_t size = sizeof(why_json) + sizeof(node) + 64;
    char *out = h2o_mem_alloc_pool(&req->pool, size);
    if (usage != NULL && !gh_usage_healthy(usage, why, sizeof(why))) {
        gh_json_escape(why_json, sizeof(why_json), why);
        int n = snprintf(out, size, "{\"status\":\"degraded\",\"reason\":\"%s\"%s}", why_json,
                         node);
        assert(n > 0 && (size_t)n < size);
        reply_json(req, 503, "Service Unavailable", out, (size_t)n);
        return 0;
    }
    int n = snprintf(out, size, "{\"status\":\"ok\"%s}", node);
    assert(n > 0 && (size_t)n < size);
    reply_json(req, 200, "OK", out, (size_t)n);
    return 0;
}

static int on_unrouted(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    return reply_not_found(req, req_begin(req));
}

/* Runs before every route's handler: a request whose framing could be read two ways (see
 * lib/framing.h) is refused, and its connection closed so that nothing after the head is
 * read as a request. h2o itself refuses a space before a colon and bare NULs; it does not see
 * duplicate lengths, a length beside chunked or a folded line, because it reads the first
 * length and drops both framing headers before a handler runs: so the raw head is read. */
static int on_framing(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    char msg[GH_FRAMING_MSG_SIZE];
    h2o_iovec_t head = gh_loops_request_head(req);
    int status = head.base != NULL ? gh_framing_check_head(head.base, head.len, msg, sizeof(msg))
                                   : 0;
    if (status == 0)
        return -1; /* on to the route's own handler */
    gw_req_t *r = req_begin(req);
    char msg_json[6 * GH_FRAMING_MSG_SIZE];
    gh_json_escape(msg_json, sizeof(msg_json), msg);
    size_t cap = sizeof(msg_json) + 160;
    char *body = h2o_mem_alloc_pool(&req->pool, cap);
    int n = snprintf(body, cap,
                     "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":\"%s\"},"
                     "\"request_id\":\"%s\"}",
                     status == 400 ? "invalid_request_error" : "api_error", msg_json, r->id);
    assert(n > 0 && (size_t)n < cap);
    req->http1_is_persistent = 0;
    reply_json(req, status, status == 400 ? "Bad Request" : "Not Implemented", body, (size_t)n);
    return 0;
}

/* ---- Model API --------------------------------------------------------------------------- */

/* Longest accept value looked at. */
#define GW_ACCEPT_MAX 256
/* Longest name echoed in a message ("model: ..."). */
#define GW_SHOWN_NAME_MAX 128
#define GW_MESSAGE_MAX (GH_REQUEST_MSG_MAX + 256)

static const char *status_reason(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 402:
        return "Payment Required";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    case 502:
        return "Bad Gateway";
    case 504:
        return "Gateway Timeout";
    case 529:
        return "Overloaded";
    default:
        return "Internal Server Error";
    }
}

/* Answers with the model API's error `err`, in the shape of `api` (request.h). */
static int reply_error(h2o_req_t *req, const gw_req_t *r, gh_api_kind_t api, gh_err_t err,
                       const char *message)
{
    const char *type, *code;
    char *body = h2o_mem_alloc_pool(&req->pool, GH_REQUEST_ERROR_MAX);
    size_t len = gh_request_error_body(api, err, message, r->id, body, GH_REQUEST_ERROR_MAX);
    int status = gh_request_error_status(err, &type, &code);
    reply_json(req, status, status_reason(status), body, len);
    return 0;
}

/* Copies a client-supplied name into `dst` for a message: printable ASCII is kept, anything
 * else becomes '?', and a long name is cut with an ellipsis. */
static void show_name(char dst[GW_SHOWN_NAME_MAX + sizeof(GW_ELLIPSIS)], const char *s,
                      size_t len)
{
    size_t n = len < GW_SHOWN_NAME_MAX ? len : GW_SHOWN_NAME_MAX;
    for (size_t i = 0; i < n; i++)
        dst[i] = s[i] >= 0x20 && s[i] < 0x7F ? s[i] : '?';
    if (n < len) {
        memcpy(dst + n, GW_ELLIPSIS, sizeof(GW_ELLIPSIS) - 1);
        n += sizeof(GW_ELLIPSIS) - 1;
    }
    dst[n] = '\0';
}

static bool style_is(const gh_model_cfg_t *m, const char *style)
{
    return strcmp(m->style, style) == 0;
}

/* ---- Admission ----------------------------------------------------------------------------- */

/* The output reserved for a chat request that sets no max_tokens: a request that then writes
 * more is still charged in full (the ledger is the truth) and counted as an overrun. */
#define GW_OUTPUT_BOUND_DEFAULT 4096
/* Puts the anthropic-ratelimit-* headers (and retry-after) of `a` on the response. */
static void add_limit_headers(h2o_req_t *req, const gh_admit_t *a)
{
    gh_limits_headers_t hs;
    size_t n = gh_limits_format_headers(a, &hs), total = 0;
    if (n == 0)
        return;
    for (size_t i = 0; i < n; i++)
        total += hs.h[i].value_len;
    char *values = h2o_mem_alloc_pool(&req->pool, total);
    /* Room for these and the few added after them at once, not by doubling as they come. */
    h2o_vector_reserve(&req->pool, &req->res.headers, req->res.headers.size + n + 4);
    for (size_t i = 0; i < n; i++) {
        memcpy(values, hs.h[i].value, hs.h[i].value_len);
        h2o_add_header_by_str(&req->pool, &req->res.headers, hs.h[i].name, hs.h[i].name_len, 0,
                              NULL, values, hs.h[i].value_len);
        values += hs.h[i].value_len;
    }
}

/* Cluster mode: a request whose rate share is short while a draw is under way is handled
 * again every GW_RATE_PARK_MS, at most GW_RATE_PARK_MAX times (one second), instead of being
 * refused while the cluster's bucket has tokens (core/rate_lease.h). */
#define GW_RATE_PARK_MS 5
#define GW_RATE_PARK_MAX 200

static int handle_model_request(h2o_req_t *req, gh_api_kind_t api, const char *path,
                                size_t path_len);

/* Handles a parked request again (park.h), on its API's path. */
static void handle_again(h2o_req_t *req, gh_api_kind_t api)
{
    static const struct {
        const char *path;
        size_t len;
    } paths[] = {[GH_API_MESSAGES] = {H2O_STRLIT("/v1/messages")},
                 [GH_API_COUNT_TOKENS] = {H2O_STRLIT("/v1/messages/count_tokens")},
                 [GH_API_CHAT] = {H2O_STRLIT("/v1/chat/completions")}};
    handle_model_request(req, api, paths[api].path, paths[api].len);
}

/* Puts the request off for GW_RATE_PARK_MS; false when it has waited long enough. */
static bool park(h2o_req_t *req, gw_req_t *r, gh_api_kind_t api)
{
    if (r->parked >= GW_RATE_PARK_MAX)
        return false;
    r->parked++;
    gh_park_on(req, api, &loop_of(req)->park_timeout, handle_again);
    return true;
}

/* Admits the request against its organization's and workspace's credit, monthly limits and
 * rate limits (core/limits.h), in memory. Admitted: fills `hold` and returns true. Refused:
 * answers with the API's error and the rate-limit headers and returns false. Put off for a
 * rate share (cluster mode): parks the request, answers nothing and returns false. count_tokens
 * costs nothing and takes only a request from the requests bucket. An organization unknown
 * to the engine fails closed (the credit refusal). */
static bool admit(gh_gateway_t *gw, h2o_req_t *req, gw_req_t *r, gh_api_kind_t api,
                  const gh_model_cfg_t *model, const gh_request_t *parsed, size_t body_len,
                  const gh_key_entry_t *key, gh_limits_hold_t *hold, bool may_wait,
                  bool *wait)
{
    *wait = false;
    gh_admit_req_t ar = {
        .org_id = key->org_id,
        .workspace_id = key->workspace_id,
        .model_class = model->model_class,
        .lease_wait_since_us = r->lease_wait_since_us,
    };
    if (api != GH_API_COUNT_TOKENS) {
        ar.input_tokens_bound = body_len > INT64_MAX ? INT64_MAX : (int64_t)body_len;
        ar.max_output_tokens = parsed->max_tokens >= 0 ? parsed->max_tokens
                                                       : GW_OUTPUT_BOUND_DEFAULT;
        ar.worst_cost_nusd =
            gh_meter_worst_cost(model, ar.input_tokens_bound, ar.max_output_tokens);
    }
    gh_admit_t a;
    gh_limits_admit(gw->env.limits, &ar, &a); /* on an error the decision fails closed */
    if (a.decision != GH_ADMIT_OK && a.lease_wait && may_wait) {
        *wait = true; /* answered later: nothing is added to the response yet */
        r->lease_wait_since_us = a.lease_wait_since_us;
        return false;
    }
    if (a.decision == GH_ADMIT_RATE_LIMITED && a.rate_pending && park(req, r, api))
        return false;
    add_limit_headers(req, &a);
    if (a.decision != GH_ADMIT_OK && a.lease_wait) {
        /* It waited its whole turn and the database never said there is nothing to lease
         * (a.lease_unanswered: it did not even answer): the database or this node is slow or
         * the database away, not the organization out of credit. */
        reply_error(req, r, api, GH_EUNAVAIL,
                    "This Gatehouse node could not set aside credit for this request in time: "
                    "it cannot reach its database quickly enough. Please retry shortly.");
        return false;
    }
    if (a.decision == GH_ADMIT_OK) {
        *hold = a.hold;
        return true;
    }
    char msg[GH_LIMITS_MSG_MAX];
    gh_err_t err = gh_limits_refusal(gw->env.limits, &a, msg, sizeof(msg));
    reply_error(req, r, api, err, msg);
    return false;
}

static int handle_model_request(h2o_req_t *req, gh_api_kind_t api, const char *path,
                                size_t path_len);

/* Cluster money: a request refused for money while its organization's lease is being refilled
 * (gh_admit_t.lease_wait) waits GW_LEASE_WAIT_MS on the loop's timeout and is handled again,
 * at most GW_LEASE_WAITS_MAX times, so the first request after an idle spell, or one that
 * finds the lease short, is served without blocking the loop thread. The entry lives in the
 * request's pool; a request that goes away meanwhile unlinks it. The wait ends as soon as
 * the database answers an ask sent after it began (a refill, or "nothing left": the credit
 * refusal), so its bound, one second as for a rate share, is reached only when the database
 * is slow; 100 ms was reached on a loaded machine whose database answered in time. */
#define GW_LEASE_WAIT_MS 5
#define GW_LEASE_WAITS_MAX 200
/* Waits on the loop's lease_wait list (park.h), whose time is GW_LEASE_WAIT_MS. */
static void park_for_lease(gw_loop_t *l, h2o_req_t *req, gh_api_kind_t api)
{
    gh_park_on(req, api, &l->lease_wait, handle_again);
}

/* POST /v1/messages, /v1/messages/count_tokens, /v1/chat/completions: authenticate, check the
 * headers and the body, find the model, admit it, and hand the request to the relay. */
static int handle_model_request(h2o_req_t *req, gh_api_kind_t api, const char *path,
                                size_t path_len)
{
    gw_req_t *r = req_begin(req);
    r->route = gh_api_metric_route(api);
    gw_loop_t *l = loop_of(req);
    const gh_config_t *cfg = l->gw->cfg;
    char msg[GW_MESSAGE_MAX];
    char name[GW_SHOWN_NAME_MAX + sizeof(GW_ELLIPSIS)];
    gh_key_entry_t key;
    gh_request_t parsed;
    h2o_iovec_t version = {NULL, 0}, beta = {NULL, 0};

    if (!h2o_memis(req->path_normalized.base, req->path_normalized.len, path, path_len) ||
        !method_is(req, H2O_STRLIT("POST")))
        return reply_not_found(req, r);
    gh_err_t rc = gh_reqauth_key(l->gw->env.state, req, &key, msg, sizeof(msg));
    if (rc != GH_OK)
        return reply_error(req, r, api, rc, msg);

    if (api != GH_API_CHAT) {
        version = gh_reqauth_trim(gh_reqauth_header(req, H2O_STRLIT("anthropic-version")));
        if (version.len != 0 && !gh_reqauth_version_ok(version)) {
            show_name(name, version.base, version.len);
            snprintf(msg, sizeof(msg),
                     "anthropic-version: \"%s\" is not a version; send a date such as "
                     "2023-06-01.",
                     name);
            return reply_error(req, r, api, GH_EINVAL, msg);
        }
        beta = gh_reqauth_trim(gh_reqauth_header(req, H2O_STRLIT("anthropic-beta")));
        if (!gh_reqauth_beta_ok(beta))
            return reply_error(req, r, api, GH_EINVAL,
                               "anthropic-beta: a comma-separated list of feature names "
                               "is expected.");
    }

    h2o_iovec_t body = req->entity.base != NULL ? req->entity : h2o_iovec_init("", 0);
    if (body.len > cfg->api_max_body_bytes) {
        snprintf(msg, sizeof(msg), "The request body is %zu bytes; the limit is %zu bytes.",
                 body.len, cfg->api_max_body_bytes);
        return reply_error(req, r, api, GH_ETOOBIG, msg);
    }
    rc = gh_request_parse(&parsed, api, body.base, body.len, msg);
    if (rc != GH_OK)
        return reply_error(req, r, api, rc, msg);

    const gh_model_cfg_t *model =
        parsed.model_too_long ? NULL : gh_config_model(cfg, parsed.model, parsed.model_len);
    if (model == NULL) {
        show_name(name, parsed.model, parsed.model_len);
        snprintf(msg, sizeof(msg), "model: %s", name);
        return reply_error(req, r, api, GH_ENOTFOUND, msg);
    }
    r->model = (int)(model - cfg->models);
    /* The relay never translates between the two APIs. */
    if (api == GH_API_CHAT && style_is(model, "anthropic")) {
        snprintf(msg, sizeof(msg), "model: %s speaks the Anthropic Messages API; call POST "
                                   "/v1/messages.", model->name);
        return reply_error(req, r, api, GH_EINVAL, msg);
    }
    if (api != GH_API_CHAT && style_is(model, "openai")) {
        snprintf(msg, sizeof(msg), "model: %s speaks the OpenAI Chat Completions API; call POST "
                                   "/v1/chat/completions.", model->name);
        return reply_error(req, r, api, GH_EINVAL, msg);
    }
    if (l->relay == NULL)
        return reply_error(req, r, api, GH_EINTERNAL, "The model API is out of memory.");
    /* The journal slot first: a request whose usage cannot be recorded is refused before it
     * costs anything, never served free. */
    bool reserved = false;
    if (l->gw->env.usage != NULL) {
        if ((rc = gh_usage_reserve(l->gw->env.usage)) != GH_OK)
            return reply_error(req, r, api, GH_EUNAVAIL,
                               rc == GH_EIO ? "usage cannot be recorded: the disk is full. Retry "
                                              "later; the operator is told in the log."
                                            : "usage cannot be recorded yet: the usage writer "
                                              "is behind. Retry in a few seconds.");
        reserved = true;
    }
    gh_limits_hold_t hold = {0};
    bool wait = false;
    if (l->gw->env.limits != NULL && l->gw->env.limits_enforce &&
        !admit(l->gw, req, r, api, model, &parsed, body.len, &key, &hold,
               l->lease_wait_ready && r->lease_waits < GW_LEASE_WAITS_MAX, &wait)) {
        if (reserved)
            gh_usage_unreserve(l->gw->env.usage);
        if (wait) {
            gh_log_debug("api %s: waits for a lease refill (%d)", r->id, r->lease_waits);
            r->lease_waits++;
            park_for_lease(l, req, api);
        }
        return 0;
    }

    h2o_iovec_t accept = gh_reqauth_trim(gh_reqauth_header(req, H2O_STRLIT("accept")));
    if (accept.len == 0) {
        ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_ACCEPT, -1);
        if (i >= 0)
            accept = gh_reqauth_trim(req->headers.entries[i].value);
    }
    if (accept.len > GW_ACCEPT_MAX)
        accept = h2o_iovec_init(NULL, 0);
    gh_relay_request_t rq = {
        .req = req,
        .api = api,
        .model = model,
        .parsed = &parsed,
        .body = body.base,
        .body_len = body.len,
        .request_id = r->id,
        .key = &key,
        .anthropic_version = version,
        .anthropic_beta = beta,
        .accept = accept,
        .started = r->started,
        .limits = l->gw->env.limits,
        .hold = &hold,
        .usage_reserved = reserved,
        .admit_enforced = l->gw->env.limits != NULL && l->gw->env.limits_enforce,
        .input_bound = body.len > INT64_MAX ? INT64_MAX : (int64_t)body.len,
        .output_bound = parsed.max_tokens >= 0 ? parsed.max_tokens : GW_OUTPUT_BOUND_DEFAULT,
    };
    r->relayed = true;
    gh_relay_start(l->relay, &rq);
    return 0;
}

static int on_messages(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    return handle_model_request(req, GH_API_MESSAGES, H2O_STRLIT("/v1/messages"));
}

static int on_count_tokens(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    return handle_model_request(req, GH_API_COUNT_TOKENS, H2O_STRLIT("/v1/messages/count_tokens"));
}

static int on_chat_completions(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    return handle_model_request(req, GH_API_CHAT, H2O_STRLIT("/v1/chat/completions"));
}

/* GET /v1/models (every configured model: the models an organization may use are all of
 * them today) and GET /v1/models/{id}, in Anthropic's shapes. The bodies were rendered at
 * start. */
static int on_models(h2o_handler_t *self, h2o_req_t *req)
{
    static const char prefix[] = "/v1/models";
    (void)self;
    gw_req_t *r = req_begin(req);
    r->route = GH_ROUTE_MODELS;
    gh_gateway_t *gw = loop_of(req)->gw;
    h2o_iovec_t path = req->path_normalized;
    char msg[GW_MESSAGE_MAX];
    char name[GW_SHOWN_NAME_MAX + sizeof(GW_ELLIPSIS)];
    gh_key_entry_t key;

    bool list = h2o_memis(path.base, path.len, H2O_STRLIT(prefix));
    bool one = !list && path.len > sizeof(prefix) && path.base[sizeof(prefix) - 1] == '/' &&
               memcmp(path.base, prefix, sizeof(prefix) - 1) == 0;
    if (!(list || one) || !(method_is(req, H2O_STRLIT("GET")) || method_is(req, H2O_STRLIT("HEAD"))))
        return reply_not_found(req, r);
    gh_err_t rc = gh_reqauth_key(gw->env.state, req, &key, msg, sizeof(msg));
    if (rc != GH_OK)
        return reply_error(req, r, GH_API_MESSAGES, rc, msg);
    const char *body;
    size_t len;
    if (list) {
        h2o_iovec_t query = h2o_iovec_init("", 0);
        if (req->query_at != SIZE_MAX)
            query = h2o_iovec_init(req->path.base + req->query_at + 1,
                                   req->path.len - req->query_at - 1);
        rc = gh_catalog_page(gw->catalog, query, &req->pool, &body, &len, msg, sizeof(msg));
        if (rc != GH_OK)
            return reply_error(req, r, GH_API_MESSAGES, rc, msg);
        reply_json(req, 200, "OK", body, len);
        return 0;
    }
    const char *id = path.base + sizeof(prefix);
    size_t id_len = path.len - sizeof(prefix);
    if (gh_catalog_one(gw->catalog, id, id_len, &body, &len)) {
        reply_json(req, 200, "OK", body, len);
        return 0;
    }
    show_name(name, id, id_len);
    snprintf(msg, sizeof(msg), "model: %s", name);
    return reply_error(req, r, GH_API_MESSAGES, GH_ENOTFOUND, msg);
}

/* h2o answers a body over its limit (max_request_entity_size, set a little above
 * api_max_body_bytes so that bodies just over our limit are still read and refused by the
 * handler with a clean response) with a plain-text 413 of its own, before any handler runs.
 * This filter, on the fallback path where h2o sends it, turns it into the model API's error
 * shape with a request id. */
typedef struct {
    h2o_ostream_t super;
    h2o_iovec_t body;
    bool sent;
} gw_error_ostream_t;

static void on_error_ostream_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs,
                                  size_t bufcnt, h2o_send_state_t state)
{
    gw_error_ostream_t *o = (gw_error_ostream_t *)self;
    (void)bufs, (void)bufcnt;
    bool send_body = !o->sent && !method_is(req, H2O_STRLIT("HEAD"));
    o->sent = true;
    h2o_ostream_send_next(&o->super, req, send_body ? &o->body : NULL, send_body ? 1 : 0, state);
}

static void on_too_large_setup(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    (void)self;
    if (req->res.status == 413 && req_find(req) == NULL) {
        gw_req_t *r = req_begin(req);
        const gh_config_t *cfg = loop_of(req)->gw->cfg;
        char msg[GW_MESSAGE_MAX];
        gh_api_kind_t api =
            h2o_memis(req->path.base, req->path.len < 20 ? req->path.len : 20,
                      H2O_STRLIT("/v1/chat/completions"))
                ? GH_API_CHAT
                : GH_API_MESSAGES;
        snprintf(msg, sizeof(msg), "The request body is larger than the limit of %zu bytes.",
                 cfg->api_max_body_bytes);
        char *body = h2o_mem_alloc_pool(&req->pool, GH_REQUEST_ERROR_MAX);
        size_t len = gh_request_error_body(api, GH_ETOOBIG, msg, r->id, body,
                                           GH_REQUEST_ERROR_MAX);
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("request-id"), 0, NULL,
                              r->id, GW_REQUEST_ID_LEN);
        ssize_t ct = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
        if (ct >= 0)
            req->res.headers.entries[ct].value = h2o_iovec_init(H2O_STRLIT("application/json"));
        req->res.content_length = len;
        gw_error_ostream_t *o = (gw_error_ostream_t *)h2o_add_ostream(req, sizeof(*o), slot);
        o->super.do_send = on_error_ostream_send;
        o->body = h2o_iovec_init(body, len);
        o->sent = false;
        slot = &o->super.next;
    }
    h2o_setup_next_ostream(req, slot);
}

/* ---- Access log -------------------------------------------------------------------------- */

/* Called by h2o when it disposes of a request that reached one of our paths, whether it was
 * answered in full or abandoned. */
static void on_log_access(h2o_logger_t *self, h2o_req_t *req)
{
    (void)self;
    gw_req_t *r = req_find(req);
    if (r == NULL)
        return; /* no handler of ours saw it, so it was neither counted nor given an id */
    gh_pollhold_end(req); /* before h2o reads the connection's next request */
    gw_loop_t *l = loop_of(req);
    assert(l->requests_in_flight > 0);
    l->requests_in_flight--;
    if (!r->relayed && r->route >= 0) { /* answered here: all of its time is ours */
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t us = (int64_t)(now.tv_sec - r->started.tv_sec) * 1000000 +
                     (now.tv_nsec - r->started.tv_nsec) / 1000;
        gh_metrics_request((gh_metric_route_t)r->route, r->model, req->res.status, us, us);
    }
    if (!l->gw->cfg->access_log)
        return;
    char ip[INET6_ADDRSTRLEN];
    gh_accesslog_peer_ip(l->gw->cfg, req, ip, sizeof(ip));
    if (req->res.status >= 400 && req->res.status < 500) {
        gh_logcap_summary_t sums[2];
        bool admitted = gh_logcap_admit(&l->logcap, ip, (int64_t)(h2o_now(l->loop.evloop) / 1000),
                                        sums);
        if (sums[0].count)
            gh_log_warn("api: %" PRIu64 " refused requests from %s were not logged one by one "
                        "(over %d a second)",
                        sums[0].count, sums[0].address, GH_LOGCAP_PER_ADDRESS);
        if (sums[1].count)
            gh_log_warn("api loop %zu: %" PRIu64 " refused requests were not logged one by one "
                        "(over %d a second on this loop)",
                        l->loop.index, sums[1].count, GH_LOGCAP_PER_LOOP);
        if (!admitted)
            return;
    }
    gh_accesslog_write(req, r->id, &r->started, ip);
}

/* ---- Loop threads ------------------------------------------------------------------------ */

/* What a drain waits for: requests in flight, or relays still running (relays include those
 * reading an upstream to its end after their client left). */
static size_t count_requests(const gw_loop_t *l)
{
    return l->requests_in_flight + gh_relay_loop_active(l->relay);
}

static size_t count_relays(const gw_loop_t *l)
{
    return gh_relay_loop_active(l->relay);
}

/* Runs the loop until `count` drops to zero or `deadline_ms` (loop clock) passes. Returns
 * whether it reached zero. */
static bool run_until(gw_loop_t *l, size_t (*count)(const gw_loop_t *), uint64_t deadline_ms)
{
    while (count(l) != 0 && gh_loop_turn(&l->loop, deadline_ms)) {
    }
    return count(l) == 0;
}

/* Stops accepting, lets requests in flight finish within the grace period, then closes every
 * connection left. Returns false if some connection would not close, in which case the
 * caller must not free the context. */
static bool drain(gw_loop_t *l)
{
    gh_loop_drain_start(&l->loop);

    int grace_cfg_ms = l->gw->cfg->shutdown_grace_ms;
    uint64_t grace_ms = grace_cfg_ms > 0 ? (uint64_t)grace_cfg_ms : 0;
    if (!run_until(l, count_requests, h2o_now(l->loop.evloop) + grace_ms)) {
        gh_log_warn("api loop %zu: %zu requests and %zu relays still running after %" PRIu64
                    " ms of grace; stopping their upstreams and closing their connections",
                    l->loop.index, l->requests_in_flight, gh_relay_loop_active(l->relay),
                    grace_ms);
        /* Each stopped relay is charged what its upstream reported so far. */
        if (l->relay != NULL)
            gh_relay_loop_abort(l->relay);
    }

    /* What is left is idle keep-alive connections, requests not yet read in full, and any
     * request that outlived the grace period. */
    gh_loop_shutdown_conns(&l->loop);
    if (!gh_loop_wait_conns(&l->loop, GW_CLOSE_WAIT_MS) ||
        !run_until(l, count_relays, h2o_now(l->loop.evloop) + GW_CLOSE_WAIT_MS)) {
        gh_log_error("api loop %zu: %zu connections and %zu relays would not close; leaving the "
                     "loop allocated",
                     l->loop.index, l->loop.conns_open, gh_relay_loop_active(l->relay));
        return false;
    }
    /* Upstream pools and timers, and the mock's timers, go before the loop does. Every request
     * is gone, and with it every parked one's timer entry. */
    h2o_timeout_dispose(l->loop.evloop, &l->park_timeout);
    gh_relay_loop_free(l->relay);
    l->relay = NULL;
    gh_mock_loop_release(l->loop.evloop);
    /* Every waiting request was handled again or went with its connection. */
    h2o_timeout_dispose(l->loop.evloop, &l->lease_wait);
    l->lease_wait_ready = false;
    return true;
}

static void *loop_main(void *arg)
{
    gw_loop_t *l = arg;
    gh_gateway_t *gw = l->gw;

    gh_metrics_thread_own();
    gh_loop_init(&l->loop, &gw->globalconf);
    h2o_timeout_init(l->loop.evloop, &l->park_timeout, GW_RATE_PARK_MS);
    h2o_timeout_init(l->loop.evloop, &l->lease_wait, GW_LEASE_WAIT_MS);
    l->lease_wait_ready = true;
    uint64_t seed;
    randombytes_buf(&seed, sizeof(seed));
    gh_logcap_init(&l->logcap, seed);
    l->relay = gh_relay_loop_new(gw->relay_models, &l->loop.ctx, gw->loops_count, gw->env.usage);
    if (l->relay == NULL)
        gh_log_error("api loop %zu: out of memory for the relay; model requests will fail",
                     l->loop.index);
    gh_loop_listen(&l->loop);

    pthread_mutex_lock(&gw->ready_mutex);
    gw->loops_ready++;
    pthread_cond_broadcast(&gw->ready_cond);
    pthread_mutex_unlock(&gw->ready_mutex);

    gh_loop_run(&l->loop);
    if (drain(l))
        gh_loop_dispose(&l->loop);
    gh_loops_release_thread_caches();
    return NULL;
}

static void wait_ready(gh_gateway_t *gw, size_t count)
{
    pthread_mutex_lock(&gw->ready_mutex);
    while (gw->loops_ready < count)
        pthread_cond_wait(&gw->ready_cond, &gw->ready_mutex);
    pthread_mutex_unlock(&gw->ready_mutex);
}

/* Asks every started loop to drain and waits for its thread. The wait is bounded by each
 * loop's grace period plus GW_CLOSE_WAIT_MS. */
/* Tells every loop to stop accepting and drain (each in its own thread); once. */
static void tell_loops_to_stop(gh_gateway_t *gw)
{
    if (gw->stop_sent)
        return;
    gw->stop_sent = true;
    for (size_t i = 0; i < gw->loops_count; i++)
        if (gw->loops[i].thread_started)
            gh_loop_stop(&gw->loops[i].loop);
}

static void stop_threads(gh_gateway_t *gw)
{
    tell_loops_to_stop(gw);
    for (size_t i = 0; i < gw->loops_count; i++) {
        if (gw->loops[i].thread_started) {
            pthread_join(gw->loops[i].thread, NULL);
            gw->loops[i].thread_started = false;
        }
    }
}

static gh_err_t start_threads(gh_gateway_t *gw, char *err, size_t err_size)
{
    sigset_t blocked, saved;
    size_t started = 0;
    int rc = 0;

    /* Loop threads inherit a mask with the asynchronous signals blocked, so SIGINT and
     * SIGTERM reach the thread that waits for them, never an event loop. */
    sigfillset(&blocked);
    sigdelset(&blocked, SIGSEGV);
    sigdelset(&blocked, SIGBUS);
    sigdelset(&blocked, SIGFPE);
    sigdelset(&blocked, SIGILL);
    pthread_sigmask(SIG_BLOCK, &blocked, &saved);
    for (; started < gw->loops_count; started++) {
        rc = pthread_create(&gw->loops[started].thread, NULL, loop_main, &gw->loops[started]);
        if (rc != 0)
            break;
        gw->loops[started].thread_started = true;
    }
    pthread_sigmask(SIG_SETMASK, &saved, NULL);

    /* Even on failure: a loop can only be told to stop once its receiver is registered. */
    wait_ready(gw, started);
    if (rc != 0) {
        snprintf(err, err_size, "cannot start data plane thread %zu of %zu: %s", started + 1,
                 gw->loops_count, strerror(rc));
        stop_threads(gw);
        return GH_EINTERNAL;
    }
    return GH_OK;
}

/* ---- Listening sockets ------------------------------------------------------------------- */

/* How each step of gh_loops_listen reads in "api_listen: cannot <step> <address>". */
static const char *listen_step(gh_loops_step_t step)
{
    switch (step) {
    case GH_LOOPS_SOCKET:
        return "create a socket for";
    case GH_LOOPS_BIND:
        return "bind";
    case GH_LOOPS_LISTEN:
        return "listen on";
    case GH_LOOPS_OPTIONS:
    case GH_LOOPS_PORT: /* bind_listeners words this one itself */
        break;
    }
    return "set socket options on";
}

static gh_err_t bind_listeners(gh_gateway_t *gw, char *err, size_t err_size)
{
    char host[GH_CONFIG_STR];
    int port, gai;
    gh_loops_addr_t addr;
    gh_loops_step_t failed;

    if (gh_config_split_addr(gw->cfg->api_listen, host, sizeof(host), &port) != GH_OK) {
        snprintf(err, err_size, "api_listen must be ADDRESS:PORT (like 127.0.0.1:8081), not \"%s\"",
                 gw->cfg->api_listen);
        return GH_EINVAL;
    }
    if (gh_loops_resolve(&addr, host, port, false, &gai) != GH_OK) {
        if (gai != 0)
            snprintf(err, err_size, "api_listen: cannot resolve \"%s\": %s", host,
                     gai_strerror(gai));
        else
            snprintf(err, err_size, "api_listen: \"%s\" is not an IPv4 or IPv6 address", host);
        return GH_EINVAL;
    }
    for (size_t i = 0; i < gw->loops_count; i++) {
        if (gh_loops_listen(&addr, &gw->loops[i].loop.listen_fd, &failed) == GH_OK)
            continue;
        /* The caller closes the sockets already open. */
        if (failed == GH_LOOPS_PORT)
            snprintf(err, err_size, "api_listen: cannot read the bound port: %s", strerror(errno));
        else
            snprintf(err, err_size, "api_listen: cannot %s %s: %s", listen_step(failed),
                     gw->cfg->api_listen, strerror(errno));
        return GH_EIO;
    }
    gw->port = addr.port;
    return GH_OK;
}

/* ---- Configuration ----------------------------------------------------------------------- */

static void add_route(h2o_pathconf_t *pathconf, int (*on_req)(h2o_handler_t *, h2o_req_t *))
{
    h2o_handler_t *guard = h2o_create_handler(pathconf, sizeof(*guard));
    guard->on_req = on_framing;
    h2o_handler_t *handler = h2o_create_handler(pathconf, sizeof(*handler));
    handler->on_req = on_req;
    h2o_logger_t *logger = h2o_create_logger(pathconf, sizeof(*logger));
    logger->log_access = on_log_access;
}

static void build_globalconf(gh_gateway_t *gw)
{
    h2o_globalconf_t *gc = &gw->globalconf;
    h2o_config_init(gc);
    gw->globalconf_ready = true;
    /* No server_name: every answer of the API goes through req_begin, whose prefilter adds
     * "server: gatehouse" (see on_setup_ostream); only the 400s and 413s h2o writes itself, for
     * requests it cannot parse, go without. */
    gc->server_name = h2o_iovec_init(H2O_STRLIT(""));
    /* HTTP/1.1 only unless configured: libh2o 2.2.5's HTTP/2 predates the fix for rapid
     * stream resets (CVE-2023-44487), and TLS and HTTP/2 belong to the proxy in front. This
     * flag turns off both h2c upgrades and prior-knowledge connections ("PRI * HTTP/2.0"),
     * which then get h2o's 400. */
    gc->http1.upgrade_to_http2 = gw->cfg->api_http2;
    /* Bodies up to api_max_body_bytes are served; a little more is still read so that the
     * handler refuses it with a clean answer; beyond that h2o refuses it from the
     * content-length alone (see on_too_large_setup). */
    size_t limit = gw->cfg->api_max_body_bytes;
    gc->max_request_entity_size = limit > SIZE_MAX - GW_BODY_SLACK ? SIZE_MAX : limit + GW_BODY_SLACK;

    /* Paths match in the order registered, and a path also matches what lies below it. Each
     * pathconf is finished before the next is registered: registering may move them. */
    h2o_hostconf_t *host =
        h2o_config_register_host(gc, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    add_route(h2o_config_register_path(host, "/healthz", 0), on_healthz);
    add_route(h2o_config_register_path(host, "/v1/messages/count_tokens", 0), on_count_tokens);
    add_route(h2o_config_register_path(host, "/v1/messages", 0), on_messages);
    add_route(h2o_config_register_path(host, "/v1/chat/completions", 0), on_chat_completions);
    add_route(h2o_config_register_path(host, "/v1/models", 0), on_models);
    add_route(h2o_config_register_path(host, "/", 0), on_unrouted);
    /* A request target that does not start with '/' ("*", an absolute URI) matches no path
     * and lands here; it gets the same 404 rather than h2o's plain-text one. h2o's own
     * answers to a request it refuses before routing (a body too large) are sent here too. */
    add_route(&host->fallback_path, on_unrouted);
    h2o_filter_t *filter = h2o_create_filter(&host->fallback_path, sizeof(*filter));
    filter->on_setup_ostream = on_too_large_setup;
}

/* h2o writes to sockets with writev, so a peer that went away would raise SIGPIPE and kill
 * the process. Ignore it, unless the program has installed a handler of its own. */
static void ignore_sigpipe(void)
{
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_IGN;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGPIPE, &sa, NULL);
    }
}

static size_t loops_wanted(const gh_config_t *cfg)
{
    if (cfg->api_threads > 0)
        return (size_t)cfg->api_threads;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1)
        return 1;
    return cores > 256 ? 256 : (size_t)cores;
}

/* Renders GET /v1/models and each model's object once: {"type":"model","id","display_name",
 * "created_at"}, created_at being when this process started (models have no date of their
 * own in the configuration). */
/* Frees whatever start got to build. Threads must already be stopped. */
static void free_gateway(gh_gateway_t *gw)
{
    for (size_t i = 0; i < gw->loops_count; i++) {
        assert(!gw->loops[i].thread_started);
        if (gw->loops[i].loop.listen_fd >= 0)
            close(gw->loops[i].loop.listen_fd);
    }
    if (gw->globalconf_ready)
        h2o_config_dispose(&gw->globalconf);
    gh_health_stop(gw->health); /* it reads relay_models */
    gh_relay_models_free(gw->relay_models);
    gh_catalog_free(gw->catalog);
    pthread_cond_destroy(&gw->ready_cond);
    pthread_mutex_destroy(&gw->ready_mutex);
    free(gw->loops);
    free(gw);
}

gh_err_t gh_gateway_start(gh_gateway_t **out, const gh_config_t *cfg,
                          const gh_gateway_env_t *env, char *err, size_t err_size)
{
    gh_err_t rc;
    *out = NULL;

    gh_gateway_t *gw = calloc(1, sizeof(*gw));
    if (gw == NULL) {
        snprintf(err, err_size, "out of memory starting the data plane");
        return GH_ENOMEM;
    }
    gw->cfg = cfg;
    if (env != NULL)
        gw->env = *env;
    pthread_mutex_init(&gw->ready_mutex, NULL);
    pthread_cond_init(&gw->ready_cond, NULL);
    size_t count = loops_wanted(cfg);
    gw->loops = calloc(count, sizeof(*gw->loops));
    if (gw->loops == NULL) {
        snprintf(err, err_size, "out of memory starting the data plane");
        rc = GH_ENOMEM;
        goto out_free_gateway;
    }
    gw->loops_count = count;
    for (size_t i = 0; i < count; i++) {
        gw->loops[i].gw = gw;
        gh_loop_prepare(&gw->loops[i].loop, "api loop", i);
        gw->loops[i].random_used = sizeof(gw->loops[i].random);
    }

    rc = gh_relay_models_new(&gw->relay_models, cfg, err, err_size);
    if (rc != GH_OK)
        goto out_free_gateway;
    rc = gh_catalog_new(&gw->catalog, cfg);
    if (rc != GH_OK) {
        snprintf(err, err_size, "out of memory starting the data plane");
        goto out_free_gateway;
    }
    rc = gh_health_start(&gw->health, cfg, gw->relay_models);
    if (rc != GH_OK) {
        snprintf(err, err_size, "cannot start the health checks");
        goto out_free_gateway;
    }
    rc = bind_listeners(gw, err, err_size);
    if (rc != GH_OK)
        goto out_free_gateway;
    build_globalconf(gw);
    ignore_sigpipe();
    rc = start_threads(gw, err, err_size);
    if (rc != GH_OK)
        goto out_free_gateway;

    *out = gw;
    return GH_OK;

out_free_gateway:
    free_gateway(gw);
    return rc;
}

int gh_gateway_port(const gh_gateway_t *gw)
{
    return gw->port;
}

void gh_gateway_quiesce(gh_gateway_t *gw)
{
    if (gw != NULL)
        tell_loops_to_stop(gw);
}

void gh_gateway_stop(gh_gateway_t *gw)
{
    if (gw == NULL)
        return;
    stop_threads(gw);
    free_gateway(gw);
}
