/* The standalone mock upstream: `gatehouse mock-upstream`.
 *
 * The same shape as the data plane (gateway.c), on the same loop machinery (loops.h), made
 * small: one libh2o event loop per thread, each accepting from its own SO_REUSEPORT socket,
 * and a main thread that waits for SIGINT or SIGTERM. A model request starts a gh_mock on
 * the request's loop; the mock's callbacks turn into h2o_send calls.
 *
 * Flow control. h2o allows one h2o_send at a time: the next only after the generator's
 * proceed callback. The mock pushes chunks on its own schedule, so what arrives while a send
 * is in flight waits in the request's pool and goes out, all at once, on proceed. That queue
 * cannot grow without bound: one mock emits at most GH_MOCK_OUTPUT_MAX bytes in all.
 *
 * Lifetime. The per-request state lives in shared memory linked to the request's pool; h2o
 * calls its dispose function when the request goes away for any reason (answered, client gone,
 * connection closed at shutdown), and that is where a mock still running is cancelled. While
 * a response is unfinished the state is also on its loop's `active` list, so shutdown can end
 * responses that would otherwise wait forever (a stalled stream). */
#ifndef H2O_USE_LIBUV
#define H2O_USE_LIBUV 0
#endif

#include "gateway/mock_server.h"

#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <h2o.h>

#include "gateway/loops.h"
#include "gateway/mock.h"

#define MS_CLOSE_WAIT_MS 2000
#define MS_MAX_BODY_BYTES (32u * 1024 * 1024)
#define MS_LATENCY_MAX_MS 600000
#define MS_TPS_MAX 1000000
#define MS_THREADS_MAX 256

static const char usage[] =
    "Usage: gatehouse mock-upstream [OPTIONS]\n"
    "\n"
    "Serves the built-in mock model over HTTP: POST /v1/messages, /v1/messages/count_tokens,\n"
    "/v1/chat/completions (any model name) and GET /healthz.\n"
    "\n"
    "Options:\n"
    "  --port N               Port to listen on (default 8090; 0 picks a free port)\n"
    "  --host ADDR            Address to listen on (default 127.0.0.1)\n"
    "  --latency-ms N         Time to the first byte of every reply (default 0)\n"
    "  --tokens-per-second N  Streaming pace (default 0: no pacing)\n"
    "  --threads N            Event loops (default: one per core)\n"
    "  --fail MODE            Inject this failure into every reply (garbage, close-mid-stream,\n"
    "                         stall, 529, 500, 429; default none)\n"
    "  -h, --help             Show this help\n"
    "\n"
    "Per request: x-mock-latency-ms and x-mock-tokens-per-second override the defaults;\n"
    "x-mock-fail: garbage | close-mid-stream | stall | 529 | 500 | 429 injects a failure.\n"
    "PUT /mock/fail with a body of one of those, or none, changes --fail while running\n"
    "(tests of what sits in front: a server that fails, then recovers); while it is 529 or\n"
    "500, GET /healthz answers 503.\n";

typedef struct ms_server ms_server_t;

/* One event loop and the thread that runs it; see loops.h for `loop`. */
typedef struct ms_loop {
    ms_server_t *srv;
    pthread_t thread;
    bool thread_started;
    gh_loop_t loop;
    h2o_linklist_t active; /* ms_req_t with a response not yet finished */
} ms_loop_t;

struct ms_server {
    gh_mock_opts_t defaults;
    _Atomic int fail; /* gh_mock_fail_t of every reply: --fail, changed by PUT /mock/fail */
    int port;
    h2o_globalconf_t globalconf;
    bool globalconf_ready;
    size_t loops_count;
    ms_loop_t *loops;
    pthread_mutex_t ready_mutex;
    pthread_cond_t ready_cond;
    size_t loops_ready;
};

/* One model request, in shared memory linked to the request's pool. */
typedef struct ms_req {
    h2o_generator_t generator;
    h2o_req_t *req;
    ms_loop_t *loop;
    gh_mock_t *mock;     /* NULL once the mock has ended or was cancelled */
    h2o_linklist_t link; /* in loop->active until the last h2o_send */
    int status;
    h2o_iovec_t content_type;
    H2O_VECTOR(h2o_iovec_t) pending; /* chunks (in the pool) waiting for proceed */
    bool started;                    /* h2o_start_response done */
    bool sending;                    /* an h2o_send waits for proceed */
    bool final_pending;
    bool error_pending;
} ms_req_t;

/* ---- Responses --------------------------------------------------------------------------- */

static const char *reason_of(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 529: return "Overloaded";
    default: return "Unknown";
    }
}

/* A whole JSON response from a static body. */
static void reply_static(h2o_req_t *req, int status, const char *body, size_t len)
{
    static h2o_generator_t generator = {NULL, NULL};
    req->res.status = status;
    req->res.reason = reason_of(status);
    req->res.content_length = len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/json"));
    h2o_start_response(req, &generator);
    h2o_iovec_t buf = h2o_iovec_init(body, len);
    h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
}

#define REPLY_STATIC(req, status, lit) reply_static((req), (status), (lit), sizeof(lit) - 1)

static void start_response(ms_req_t *s, size_t content_length)
{
    h2o_req_t *req = s->req;
    assert(!s->started);
    req->res.status = s->status;
    req->res.reason = reason_of(s->status);
    req->res.content_length = content_length;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   s->content_type.base, s->content_type.len);
    if (h2o_memis(s->content_type.base, s->content_type.len > 17 ? 17 : s->content_type.len,
                  H2O_STRLIT("text/event-stream")))
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                       H2O_STRLIT("no-cache"));
    h2o_start_response(req, &s->generator);
    s->started = true;
}

/* Sends every pending chunk, with the final or error state when that is pending too. The
 * request may be gone when this returns (a final send can complete and dispose it), so the
 * caller must not touch `s` afterwards. */
static void send_pending(ms_req_t *s)
{
    assert(s->started && !s->sending);
    h2o_send_state_t state = s->error_pending   ? H2O_SEND_STATE_ERROR
                             : s->final_pending ? H2O_SEND_STATE_FINAL
                                                : H2O_SEND_STATE_IN_PROGRESS;
    size_t count = s->pending.size;
    h2o_iovec_t *bufs = NULL;
    if (count > 0) {
        /* The vector is reused for what comes while these are in flight. */
        bufs = h2o_mem_alloc_pool(&s->req->pool, sizeof(*bufs) * count);
        memcpy(bufs, s->pending.entries, sizeof(*bufs) * count);
        s->pending.size = 0;
    }
    if (state == H2O_SEND_STATE_IN_PROGRESS) {
        s->sending = true;
    } else if (h2o_linklist_is_linked(&s->link)) {
        h2o_linklist_unlink(&s->link);
    }
    h2o_send(s->req, bufs, count, state);
}

static void on_proceed(h2o_generator_t *generator, h2o_req_t *req)
{
    ms_req_t *s = H2O_STRUCT_FROM_MEMBER(ms_req_t, generator, generator);
    (void)req;
    s->sending = false;
    if (s->pending.size > 0 || s->final_pending || s->error_pending)
        send_pending(s);
}

/* ---- The mock's callbacks ---------------------------------------------------------------- */

static void on_mock_head(void *ctx, int status, const char *content_type, size_t len)
{
    ms_req_t *s = ctx;
    s->status = status;
    s->content_type = h2o_strdup(&s->req->pool, content_type, len);
}

static void on_mock_body(void *ctx, const char *data, size_t len, bool final)
{
    ms_req_t *s = ctx;
    if (final)
        s->mock = NULL; /* it frees itself when this returns */
    if (!s->started) {
        if (len == 0 && !final) {
            /* Only a stalling mock sends the head alone. h2o's chunked encoder holds the head
             * back until there is a chunk to send, so announce a length instead: the head goes
             * out at once and the client waits for a body that never comes. */
            s->req->http1_is_persistent = 0;
            start_response(s, GH_MOCK_OUTPUT_MAX);
            send_pending(s);
            return;
        }
        /* A body that comes whole gets a content-length; a stream goes chunked. */
        start_response(s, final ? len : SIZE_MAX);
    }
    if (len > 0) {
        h2o_vector_reserve(&s->req->pool, &s->pending, s->pending.size + 1);
        s->pending.entries[s->pending.size++] = h2o_strdup(&s->req->pool, data, len);
    }
    if (final)
        s->final_pending = true;
    if (!s->sending && (s->pending.size > 0 || final))
        send_pending(s);
}

static void on_mock_error(void *ctx, gh_err_t err, const char *msg)
{
    ms_req_t *s = ctx;
    (void)err;
    (void)msg;
    s->mock = NULL;
    if (!s->started) {
        h2o_linklist_unlink(&s->link);
        REPLY_STATIC(s->req, 502,
                     "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":"
                     "\"mock upstream failed\"}}");
        return;
    }
    /* Mid-response: end it without its proper end, so the client sees a broken stream. */
    s->error_pending = true;
    if (!s->sending)
        send_pending(s);
}

static const gh_upstream_cb_t mock_callbacks = {on_mock_head, on_mock_body, on_mock_error};

static void on_req_dispose(void *p)
{
    ms_req_t *s = p;
    if (h2o_linklist_is_linked(&s->link))
        h2o_linklist_unlink(&s->link);
    gh_mock_cancel(s->mock);
    s->mock = NULL;
}

/* ---- Requests ---------------------------------------------------------------------------- */

static ms_loop_t *loop_of(h2o_req_t *req)
{
    return H2O_STRUCT_FROM_MEMBER(ms_loop_t, loop.ctx, req->conn->ctx);
}

static bool method_is(const h2o_req_t *req, const char *method, size_t len)
{
    return h2o_memis(req->method.base, req->method.len, method, len);
}

static bool path_is(const h2o_req_t *req, const char *path, size_t len)
{
    return h2o_memis(req->path_normalized.base, req->path_normalized.len, path, len);
}

/* The value of header `name` as a number in [0, max]; false when absent, -1 when invalid. */
static int header_number(h2o_req_t *req, const char *name, size_t name_len, long max, int *out)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, name_len, -1);
    if (i < 0)
        return 0;
    h2o_iovec_t v = req->headers.entries[i].value;
    long n = 0;
    if (v.len == 0 || v.len > 9)
        return -1;
    for (size_t k = 0; k < v.len; k++) {
        if (v.base[k] < '0' || v.base[k] > '9')
            return -1;
        n = n * 10 + (v.base[k] - '0');
    }
    if (n > max)
        return -1;
    *out = (int)n;
    return 1;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    ms_loop_t *l = loop_of(req);
    gh_api_kind_t api;

    if (path_is(req, H2O_STRLIT("/healthz")) &&
        (method_is(req, H2O_STRLIT("GET")) || method_is(req, H2O_STRLIT("HEAD")))) {
        /* Failing with 529 or 500 (--fail, PUT /mock/fail) makes it unhealthy too. */
        int f = atomic_load(&l->srv->fail);
        if (f == GH_MOCK_FAIL_OVERLOADED || f == GH_MOCK_FAIL_SERVER_ERROR)
            REPLY_STATIC(req, 503, "{\"status\":\"failing\",\"mock\":true}");
        else
            REPLY_STATIC(req, 200, "{\"status\":\"ok\",\"mock\":true}");
        return 0;
    }
    if (path_is(req, H2O_STRLIT("/mock/fail")) && method_is(req, H2O_STRLIT("PUT"))) {
        gh_mock_fail_t f = GH_MOCK_FAIL_NONE;
        h2o_iovec_t v = req->entity.base != NULL ? req->entity : h2o_iovec_init("", 0);
        if (!h2o_memis(v.base, v.len, H2O_STRLIT("none")) &&
            !gh_mock_fail_parse(v.base, v.len, &f)) {
            REPLY_STATIC(req, 400,
                         "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
                         "\"message\":\"the body must be none, garbage, close-mid-stream, "
                         "stall, 529, 500 or 429\"}}");
            return 0;
        }
        atomic_store(&l->srv->fail, (int)f);
        REPLY_STATIC(req, 200, "{\"ok\":true}");
        return 0;
    }
    if (!method_is(req, H2O_STRLIT("POST"))) {
        REPLY_STATIC(req, 404,
                     "{\"type\":\"error\",\"error\":{\"type\":\"not_found_error\",\"message\":"
                     "\"The mock upstream serves POST /v1/messages, /v1/messages/count_tokens, "
                     "/v1/chat/completions and GET /healthz.\"}}");
        return 0;
    }
    if (path_is(req, H2O_STRLIT("/v1/messages")))
        api = GH_API_MESSAGES;
    else if (path_is(req, H2O_STRLIT("/v1/messages/count_tokens")))
        api = GH_API_COUNT_TOKENS;
    else if (path_is(req, H2O_STRLIT("/v1/chat/completions")))
        api = GH_API_CHAT;
    else {
        REPLY_STATIC(req, 404,
                     "{\"type\":\"error\",\"error\":{\"type\":\"not_found_error\",\"message\":"
                     "\"The mock upstream serves POST /v1/messages, /v1/messages/count_tokens, "
                     "/v1/chat/completions and GET /healthz.\"}}");
        return 0;
    }

    gh_mock_opts_t opts = l->srv->defaults;
    opts.fail = (gh_mock_fail_t)atomic_load(&l->srv->fail);
    ssize_t fail = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-mock-fail"), -1);
    if (fail >= 0) {
        h2o_iovec_t v = req->headers.entries[fail].value;
        if (!gh_mock_fail_parse(v.base, v.len, &opts.fail)) {
            REPLY_STATIC(req, 400,
                         "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
                         "\"message\":\"x-mock-fail must be garbage, close-mid-stream, stall, "
                         "529, 500 or 429\"}}");
            return 0;
        }
    }
    if (header_number(req, H2O_STRLIT("x-mock-latency-ms"), MS_LATENCY_MAX_MS,
                      &opts.latency_ms) < 0 ||
        header_number(req, H2O_STRLIT("x-mock-tokens-per-second"), MS_TPS_MAX,
                      &opts.tokens_per_second) < 0) {
        REPLY_STATIC(req, 400,
                     "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
                     "\"message\":\"x-mock-latency-ms and x-mock-tokens-per-second must be "
                     "whole numbers in range\"}}");
        return 0;
    }

    ms_req_t *s = h2o_mem_alloc_shared(&req->pool, sizeof(*s), on_req_dispose);
    memset(s, 0, sizeof(*s));
    s->generator.proceed = on_proceed;
    s->req = req;
    s->loop = l;
    h2o_linklist_insert(&l->active, &s->link);
    s->mock = gh_mock_start_opts(l->loop.evloop, &opts, api, req->entity.base, req->entity.len,
                                 &mock_callbacks, s);
    if (s->mock == NULL) {
        h2o_linklist_unlink(&s->link);
        REPLY_STATIC(req, 503,
                     "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
                     "\"the mock upstream cannot start a reply (out of memory or timers)\"}}");
    }
    return 0;
}

/* ---- Loop threads ------------------------------------------------------------------------ */

/* Ends every unfinished response: a reply not started becomes a 503, a stream is cut. */
static void end_active(ms_loop_t *l)
{
    while (!h2o_linklist_is_empty(&l->active)) {
        ms_req_t *s = H2O_STRUCT_FROM_MEMBER(ms_req_t, link, l->active.next);
        h2o_linklist_unlink(&s->link);
        gh_mock_cancel(s->mock);
        s->mock = NULL;
        s->req->http1_is_persistent = 0;
        if (!s->started) {
            REPLY_STATIC(s->req, 503,
                         "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                         "\"message\":\"the mock upstream is shutting down\"}}");
        } else {
            s->error_pending = true;
            if (!s->sending)
                send_pending(s);
        }
    }
}

/* Stops accepting, ends the unfinished responses and closes every connection. Returns false
 * if some connection would not close, in which case the caller must not free the loop. */
static bool drain(ms_loop_t *l)
{
    gh_loop_drain_start(&l->loop);
    end_active(l);
    gh_loop_shutdown_conns(&l->loop);
    /* The sends above ran outside the loop, and h2o only finishes a write (and closes the
     * connection) when it runs its pending sockets: run them before waiting for anything. */
    h2o_evloop_run(l->loop.evloop, 0);
    return gh_loop_wait_conns(&l->loop, MS_CLOSE_WAIT_MS);
}

static void *loop_main(void *arg)
{
    ms_loop_t *l = arg;
    ms_server_t *srv = l->srv;

    gh_loop_init(&l->loop, &srv->globalconf);
    h2o_linklist_init_anchor(&l->active);
    gh_loop_listen(&l->loop);

    pthread_mutex_lock(&srv->ready_mutex);
    srv->loops_ready++;
    pthread_cond_broadcast(&srv->ready_cond);
    pthread_mutex_unlock(&srv->ready_mutex);

    gh_loop_run(&l->loop);
    if (drain(l)) {
        gh_mock_loop_release(l->loop.evloop);
        gh_loop_dispose(&l->loop);
    } else {
        fprintf(stderr, "mock upstream: loop %zu: %zu connections would not close\n",
                l->loop.index, l->loop.conns_open);
    }
    gh_loops_release_thread_caches();
    return NULL;
}

/* ---- Listening sockets ------------------------------------------------------------------- */

static int bind_listeners(ms_server_t *srv, const char *host, int port)
{
    gh_loops_addr_t addr;
    gh_loops_step_t failed;
    int gai;

    if (gh_loops_resolve(&addr, host, port, true, &gai) != GH_OK) {
        if (gai != 0)
            fprintf(stderr, "gatehouse: mock-upstream: bad --host %s: %s\n", host,
                    gai_strerror(gai));
        else
            fprintf(stderr, "gatehouse: mock-upstream: --host %s is not an IP address\n", host);
        return -1;
    }
    for (size_t i = 0; i < srv->loops_count; i++) {
        if (gh_loops_listen(&addr, &srv->loops[i].loop.listen_fd, &failed) == GH_OK)
            continue;
        if (failed == GH_LOOPS_PORT)
            fprintf(stderr, "gatehouse: mock-upstream: cannot read the bound port: %s\n",
                    strerror(errno));
        else
            fprintf(stderr, "gatehouse: mock-upstream: cannot listen on %s:%d: %s\n", host, port,
                    strerror(errno));
        return -1;
    }
    srv->port = addr.port;
    return 0;
}

/* ---- Options and main -------------------------------------------------------------------- */

static bool parse_int(const char *s, long min, long max, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return false;
    *out = (int)v;
    return true;
}

typedef struct ms_options {
    const char *host;
    int port;
    int threads;
    gh_mock_opts_t defaults;
} ms_options_t;

static int parse_options(int argc, char **argv, ms_options_t *o)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "gatehouse: mock-upstream: unknown option or missing value: %s\n", a);
            return -1;
        }
        const char *v = argv[++i];
        bool ok = true;
        if (!strcmp(a, "--host"))
            o->host = v;
        else if (!strcmp(a, "--port"))
            ok = parse_int(v, 0, 65535, &o->port);
        else if (!strcmp(a, "--latency-ms"))
            ok = parse_int(v, 0, MS_LATENCY_MAX_MS, &o->defaults.latency_ms);
        else if (!strcmp(a, "--tokens-per-second"))
            ok = parse_int(v, 0, MS_TPS_MAX, &o->defaults.tokens_per_second);
        else if (!strcmp(a, "--threads"))
            ok = parse_int(v, 1, MS_THREADS_MAX, &o->threads);
        else if (!strcmp(a, "--fail"))
            ok = gh_mock_fail_parse(v, strlen(v), &o->defaults.fail);
        else {
            fprintf(stderr, "gatehouse: mock-upstream: unknown option %s (see --help)\n", a);
            return -1;
        }
        if (!ok) {
            fprintf(stderr, "gatehouse: mock-upstream: bad value for %s: %s\n", a, v);
            return -1;
        }
    }
    return 0;
}

static void build_globalconf(ms_server_t *srv)
{
    h2o_globalconf_t *gc = &srv->globalconf;
    h2o_config_init(gc);
    srv->globalconf_ready = true;
    gc->server_name = h2o_iovec_init(H2O_STRLIT("gatehouse-mock"));
    gc->max_request_entity_size = MS_MAX_BODY_BYTES;
    h2o_hostconf_t *host =
        h2o_config_register_host(gc, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(path, sizeof(*handler));
    handler->on_req = on_req;
    handler = h2o_create_handler(&host->fallback_path, sizeof(*handler));
    handler->on_req = on_req;
}

static void stop_threads(ms_server_t *srv)
{
    for (size_t i = 0; i < srv->loops_count; i++)
        if (srv->loops[i].thread_started)
            gh_loop_stop(&srv->loops[i].loop);
    for (size_t i = 0; i < srv->loops_count; i++) {
        if (srv->loops[i].thread_started) {
            pthread_join(srv->loops[i].thread, NULL);
            srv->loops[i].thread_started = false;
        }
    }
}

static size_t cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > MS_THREADS_MAX ? MS_THREADS_MAX : (size_t)n;
}

int gh_mock_server_main(int argc, char **argv)
{
    ms_options_t o = {.host = "127.0.0.1", .port = 8090, .threads = 0};
    int rc = parse_options(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? 0 : 2;

    /* Every thread started from here inherits these blocked; this one takes them, with
     * sigwait. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    int status = 1;
    ms_server_t *srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        fprintf(stderr, "gatehouse: mock-upstream: out of memory\n");
        return 1;
    }
    srv->defaults = o.defaults;
    atomic_store(&srv->fail, (int)o.defaults.fail);
    pthread_mutex_init(&srv->ready_mutex, NULL);
    pthread_cond_init(&srv->ready_cond, NULL);
    srv->loops_count = o.threads > 0 ? (size_t)o.threads : cores();
    srv->loops = calloc(srv->loops_count, sizeof(*srv->loops));
    if (srv->loops == NULL) {
        fprintf(stderr, "gatehouse: mock-upstream: out of memory\n");
        goto out_free_server;
    }
    for (size_t i = 0; i < srv->loops_count; i++) {
        srv->loops[i].srv = srv;
        gh_loop_prepare(&srv->loops[i].loop, "mock upstream: loop", i);
    }
    if (bind_listeners(srv, o.host, o.port) != 0)
        goto out_free_server;
    build_globalconf(srv);

    size_t started = 0;
    for (; started < srv->loops_count; started++) {
        int err = pthread_create(&srv->loops[started].thread, NULL, loop_main,
                                 &srv->loops[started]);
        if (err != 0) {
            fprintf(stderr, "gatehouse: mock-upstream: cannot start a thread: %s\n",
                    strerror(err));
            break;
        }
        srv->loops[started].thread_started = true;
    }
    pthread_mutex_lock(&srv->ready_mutex);
    while (srv->loops_ready < started)
        pthread_cond_wait(&srv->ready_cond, &srv->ready_mutex);
    pthread_mutex_unlock(&srv->ready_mutex);

    if (started == srv->loops_count) {
        bool v6 = strchr(o.host, ':') != NULL;
        fprintf(stderr, "mock upstream listening on http://%s%s%s:%d (%zu threads, latency %d ms, "
                        "%d tokens/s)\n",
                v6 ? "[" : "", o.host, v6 ? "]" : "", srv->port, srv->loops_count,
                o.defaults.latency_ms, o.defaults.tokens_per_second);
        fflush(stderr);
        int sig = 0;
        sigwait(&sigs, &sig);
        fprintf(stderr, "mock upstream: %s received, stopping\n", strsignal(sig));
        status = 0;
    }
    stop_threads(srv);

out_free_server:
    if (srv->loops != NULL)
        for (size_t i = 0; i < srv->loops_count; i++)
            if (srv->loops[i].loop.listen_fd >= 0)
                close(srv->loops[i].loop.listen_fd);
    if (srv->globalconf_ready)
        h2o_config_dispose(&srv->globalconf);
    pthread_cond_destroy(&srv->ready_cond);
    pthread_mutex_destroy(&srv->ready_mutex);
    free(srv->loops);
    free(srv);
    return status;
}
