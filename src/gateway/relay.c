/* The relay: HTTP upstreams on libh2o's client, and the state machine that carries one
 * request from its upstream to its client. See relay.h for what it promises.
 *
 * A relayed request is a `call_t`, allocated once (with its metering buffer and the
 * upstream's copy of the body) and owned by itself: it holds one reference for the h2o
 * request (dropped when h2o disposes of the request's pool) and one for the running upstream
 * (dropped when the upstream ends or is cancelled), so a client that goes away mid-stream
 * leaves the call reading its upstream to the end, and an upstream that ends first leaves
 * the buffers h2o is still writing alive until the request is gone.
 *
 *   WAIT --head 2xx event-stream--> STREAM --final / message_stop--> charged, FINAL sent
 *        --head 2xx JSON or 4xx---> HOLD ----final--> charged, whole answer sent
 *        --head 5xx, 503, 529----> DISCARD --final--> charged (nothing), error sent
 *        --error------------------> charged (nothing), error sent
 *   STREAM --error--> charged (what was reported), SSE error event, FINAL sent
 *
 * Upstream callbacks never cancel their own upstream: a cancel asked for inside one (a client
 * disconnect noticed while relaying) is deferred to the loop's zero timeout, and so is the
 * next attempt after one that failed before the first byte (call_retry): the call then goes
 * from an ended upstream back to WAIT on another deployment or a fallback model. */
#include "gateway/relay.h"

#include <assert.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ssl.h>

#include "gateway/balancer.h"
#include "gateway/hclient.h"
#include "gateway/meter.h"
#include "gateway/relay_models.h"
#include "gateway/mock.h"
#include "lib/blockcache.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/mono.h"
#include "lib/text.h"

/* Idle upstream connections are kept this long. Most servers close idle keep-alive
 * connections after 5 s or more (Node 5 s, uvicorn 5 s, nginx 75 s); closing ours first
 * avoids sending a request on a connection the server is closing. */
#define RELAY_KEEPALIVE_MS 3000
/* Idle upstream connections kept per model and loop; more are closed when they come back. */
#define RELAY_IDLE_MAX 1024
/* Streaming: the upstream socket is paused when this much waits for the client, and resumed
 * when it has drained below the second mark. */
#define RELAY_PAUSE_BYTES (256 * 1024)
#define RELAY_RESUME_BYTES (64 * 1024)
/* Streaming: an event is forwarded when complete; one longer than this is forwarded as it
 * comes, so a huge event cannot stall the stream behind the pause above. */
#define RELAY_EVENT_HOLD_MAX (64 * 1024)
static_assert(RELAY_EVENT_HOLD_MAX < RELAY_PAUSE_BYTES, "an event is forwarded before a pause");
/* Held answers (JSON messages, passed-through errors) larger than this are refused (502). */
#define RELAY_HOLD_MAX (16 * 1024 * 1024)
/* The client's status in the usage event when it left before any answer (nginx's 499). */
#define STATUS_CLIENT_GONE 499
/* Sent when a client asked for no particular anthropic-version. */
#define DEFAULT_ANTHROPIC_VERSION "2023-06-01"

/* The shared upstream table is gateway/relay_models.h. */
typedef gh_relay_model_t relay_model_t;
typedef gh_relay_deploy_t relay_deploy_t;

/* ---- Per-loop machinery ------------------------------------------------------------------- */

typedef struct {
    gh_hclient_pool_t *pools[GH_DEPLOYMENTS_MAX]; /* one per deployment; none for the mock */
    gh_balancer_cursor_t cursor;
    h2o_timeout_t *connect_timeout, *first_byte_timeout, *idle_timeout;
} loop_model_t;

typedef struct {
    uint64_t ms;
    h2o_timeout_t timeout;
} loop_timeout_t;

struct gh_relay_loop {
    const gh_relay_models_t *rm;
    h2o_context_t *ctx;
    h2o_loop_t *loop;
    gh_usage_t *usage;
    loop_model_t *models;
    /* h2o scans every timeout of a loop on each turn, so models share them by duration. */
    loop_timeout_t *timeouts;
    size_t timeouts_count, timeouts_cap;
    h2o_linklist_t calls; /* call_t.link */
    size_t active;
    gh_blockcache_t call_blocks; /* calls' memory, freed and kept for the next ones */
};

static h2o_timeout_t *timeout_for(gh_relay_loop_t *rl, uint64_t ms)
{
    for (size_t i = 0; i < rl->timeouts_count; i++)
        if (rl->timeouts[i].ms == ms)
            return &rl->timeouts[i].timeout;
    assert(rl->timeouts_count < rl->timeouts_cap);
    loop_timeout_t *t = &rl->timeouts[rl->timeouts_count++];
    t->ms = ms;
    h2o_timeout_init(rl->loop, &t->timeout, ms);
    return &t->timeout;
}

gh_relay_loop_t *gh_relay_loop_new(const gh_relay_models_t *rm, h2o_context_t *ctx,
                                   size_t loops, gh_usage_t *usage)
{
    gh_relay_loop_t *rl = calloc(1, sizeof(*rl));
    if (rl == NULL)
        return NULL;
    rl->rm = rm;
    rl->ctx = ctx;
    rl->loop = ctx->loop;
    rl->usage = usage;
    h2o_linklist_init_anchor(&rl->calls);
    rl->models = calloc(rm->count ? rm->count : 1, sizeof(*rl->models));
    rl->timeouts_cap = 3 * rm->count + 1; /* never grows: h2o links to these addresses */
    rl->timeouts = calloc(rl->timeouts_cap, sizeof(*rl->timeouts));
    if (rl->models == NULL || rl->timeouts == NULL)
        goto out_free;
    h2o_timeout_t *keepalive = timeout_for(rl, RELAY_KEEPALIVE_MS);
    for (size_t i = 0; i < rm->count; i++) {
        const relay_model_t *m = &rm->models[i];
        loop_model_t *lm = &rl->models[i];
        if (!m->http)
            continue;
        const gh_model_cfg_t *c = m->cfg;
        lm->connect_timeout = timeout_for(rl, (uint64_t)c->connect_timeout_ms);
        lm->first_byte_timeout = timeout_for(rl, (uint64_t)c->first_byte_timeout_ms);
        lm->idle_timeout = timeout_for(rl, (uint64_t)c->idle_timeout_ms);
        size_t open_max = 0;
        if (c->max_connections > 0)
            open_max = ((size_t)c->max_connections + loops - 1) / (loops ? loops : 1);
        lm->cursor.rng = (uint64_t)(uintptr_t)rl ^ ((uint64_t)i << 32) ^ (uint64_t)time(NULL);
        for (size_t d = 0; d < m->ndeploys; d++) {
            const relay_deploy_t *dp = &m->deploys[d];
            lm->pools[d] = gh_hclient_pool_new(rl->loop, &ctx->receivers.hostinfo_getaddr,
                                               dp->host, dp->port, dp->ssl_ctx, dp->tls_name,
                                               keepalive,
                                               &ctx->zero_timeout, RELAY_IDLE_MAX, open_max,
                                               (int)i);
            if (lm->pools[d] == NULL)
                goto out_free;
        }
    }
    return rl;
out_free:
    gh_relay_loop_free(rl);
    return NULL;
}

size_t gh_relay_loop_active(const gh_relay_loop_t *rl)
{
    return rl != NULL ? rl->active : 0;
}

void gh_relay_loop_free(gh_relay_loop_t *rl)
{
    if (rl == NULL)
        return;
    assert(rl->active == 0 && h2o_linklist_is_empty(&rl->calls));
    if (rl->models != NULL)
        for (size_t i = 0; i < rl->rm->count; i++)
            for (size_t d = 0; d < GH_DEPLOYMENTS_MAX; d++)
                gh_hclient_pool_free(rl->models[i].pools[d]);
    for (size_t i = 0; i < rl->timeouts_count; i++)
        h2o_timeout_dispose(rl->loop, &rl->timeouts[i].timeout);
    free(rl->timeouts);
    free(rl->models);
    gh_blockcache_clear(&rl->call_blocks);
    free(rl);
}

/* ---- HTTP upstream ------------------------------------------------------------------------ */

/* One request to an HTTP upstream, speaking gh_upstream_cb_t on top of gateway/hclient with
 * the model's three timeouts. Owned by itself: freed once its final callback has been
 * delivered or it has been cancelled. */
typedef struct {
    const relay_model_t *m;
    const relay_deploy_t *d;
    loop_model_t *lm;
    h2o_loop_t *loop;
    gh_hclient_req_t *client; /* NULL once it has ended */
    const gh_upstream_cb_t *cb;
    void *cb_ctx;
    h2o_iovec_t bufs[2]; /* request head, body (the caller's, alive until we end) */
    h2o_timeout_entry_t timer;
    enum { HU_CONNECT, HU_HEAD, HU_BODY } phase;
    bool starting;   /* inside http_start: it frees us if we end there */
    bool in_cb;      /* inside one of the caller's callbacks */
    bool stop_asked; /* the caller cancelled from inside a callback */
    bool done;
    bool paused;
    char head[];
} http_up_t;

static void http_timer_link(http_up_t *u, h2o_timeout_t *t)
{
    if (h2o_timeout_is_linked(&u->timer))
        h2o_timeout_unlink(&u->timer);
    h2o_timeout_link(u->loop, t, &u->timer);
}

static void http_timer_unlink(http_up_t *u)
{
    if (h2o_timeout_is_linked(&u->timer))
        h2o_timeout_unlink(&u->timer);
}

/* Marks the upstream ended and frees it unless http_start is still on the stack. */
static void http_end(http_up_t *u)
{
    http_timer_unlink(u);
    u->done = true;
    u->client = NULL;
    if (!u->starting)
        free(u);
}

/* After a callback into the caller: a stop it asked for takes effect now. Returns true when
 * the upstream has ended. */
static bool http_stop_if_asked(http_up_t *u)
{
    if (!u->stop_asked)
        return false;
    gh_hclient_cancel(u->client); /* inside hclient's callback: it closes when we return */
    http_end(u);
    return true;
}

/* Room for an upstream failure's message: a sentence, the model name, the error string. */
#define UP_MSG_MAX 400

static void http_deliver_error(http_up_t *u, gh_err_t err, const char *msg)
{
    u->in_cb = true;
    u->cb->on_error(u->cb_ctx, err, msg);
    u->in_cb = false;
}

static void hc_on_connect(void *ctx, const char *err)
{
    http_up_t *u = ctx;
    http_timer_unlink(u);
    if (err != NULL) {
        char msg[UP_MSG_MAX];
        snprintf(msg, sizeof(msg), "The upstream model server for %s could not be reached (%s).",
                 u->m->cfg->name, err);
        http_deliver_error(u, GH_EIO, msg);
        http_end(u);
        return;
    }
    u->phase = HU_HEAD;
    http_timer_link(u, u->lm->first_byte_timeout);
}

static void hc_on_head(void *ctx, int status, const char *ct, size_t ct_len)
{
    http_up_t *u = ctx;
    http_timer_unlink(u);
    u->in_cb = true;
    u->cb->on_head(u->cb_ctx, status, ct, ct_len);
    u->in_cb = false;
    if (http_stop_if_asked(u))
        return;
    u->phase = HU_BODY;
    if (!u->paused)
        http_timer_link(u, u->lm->idle_timeout);
}

static void hc_on_body(void *ctx, const char *data, size_t len, bool final)
{
    http_up_t *u = ctx;
    http_timer_unlink(u);
    u->in_cb = true;
    u->cb->on_body(u->cb_ctx, data, len, final);
    u->in_cb = false;
    if (final) {
        http_end(u);
        return;
    }
    if (http_stop_if_asked(u))
        return;
    if (!u->paused)
        http_timer_link(u, u->lm->idle_timeout);
}

static void hc_on_error(void *ctx, const char *err, bool in_head)
{
    http_up_t *u = ctx;
    char msg[UP_MSG_MAX];
    if (in_head)
        snprintf(msg, sizeof(msg),
                 "The upstream model server for %s did not send a valid response (%s).",
                 u->m->cfg->name, err);
    else
        snprintf(msg, sizeof(msg), "The upstream model server for %s broke off its response (%s).",
                 u->m->cfg->name, err);
    http_deliver_error(u, GH_EIO, msg);
    http_end(u);
}

static const gh_hclient_cb_t hc_callbacks = {hc_on_connect, hc_on_head, hc_on_body, hc_on_error};

static void http_on_timeout(h2o_timeout_entry_t *entry)
{
    http_up_t *u = H2O_STRUCT_FROM_MEMBER(http_up_t, timer, entry);
    const gh_model_cfg_t *c = u->m->cfg;
    char msg[UP_MSG_MAX];
    assert(!u->in_cb);
    bool waited = gh_hclient_waiting(u->client);
    gh_hclient_cancel(u->client);
    u->client = NULL;
    switch (u->phase) {
    case HU_CONNECT:
        if (waited)
            snprintf(msg, sizeof(msg),
                     "All %d connections to the upstream model server for %s stayed busy for "
                     "%d ms.",
                     c->max_connections, c->name, c->connect_timeout_ms);
        else
            snprintf(msg, sizeof(msg),
                     "The upstream model server for %s did not accept a connection within %d "
                     "ms.",
                     c->name, c->connect_timeout_ms);
        break;
    case HU_HEAD:
        snprintf(msg, sizeof(msg),
                 "The upstream model server for %s did not start its response within %d ms.",
                 c->name, c->first_byte_timeout_ms);
        break;
    default:
        snprintf(msg, sizeof(msg),
                 "The upstream model server for %s sent nothing for %d ms in the middle of its "
                 "response.",
                 c->name, c->idle_timeout_ms);
        break;
    }
    http_deliver_error(u, GH_ETIMEOUT, msg);
    http_end(u);
}

static const char *api_path(gh_api_kind_t api)
{
    switch (api) {
    case GH_API_MESSAGES:
        return "/v1/messages";
    case GH_API_COUNT_TOKENS:
        return "/v1/messages/count_tokens";
    case GH_API_CHAT:
        return "/v1/chat/completions";
    }
    return "/";
}

/* What an upstream request's head carries from the client's request, kept by the call (in
 * its request's pool) so that a retry can build it again. */
typedef struct {
    gh_api_kind_t api;
    h2o_iovec_t anthropic_version, anthropic_beta, accept;
} relay_headers_t;

/* Appends `s` (`n` bytes) at *p. */
static void put(char **p, const char *s, size_t n)
{
    memcpy(*p, s, n);
    *p += n;
}
#define PUT_LIT(p, s) put((p), (s), sizeof(s) - 1)

/* Starts a request to an HTTP upstream. Returns NULL when it already ended (its callbacks
 * were called from in here) or could not start for lack of memory (no callback then).
 * `body` must stay valid until the upstream ends. */
static http_up_t *http_start(gh_relay_loop_t *rl, size_t index, size_t dep,
                             const relay_headers_t *rq, const char *body, size_t body_len,
                             const gh_upstream_cb_t *cb, void *cb_ctx)
{
    const relay_model_t *m = &rl->rm->models[index];
    const relay_deploy_t *d = &m->deploys[dep];
    const char *path = api_path(rq->api);
    h2o_iovec_t version = rq->anthropic_version;
    if (version.len == 0)
        version = h2o_iovec_init(H2O_STRLIT(DEFAULT_ANTHROPIC_VERSION));
    size_t cap = 512 + strlen(d->path) + strlen(path) + d->authority.len + d->auth_line_len +
                 rq->accept.len + version.len + rq->anthropic_beta.len;
    http_up_t *u = malloc(sizeof(*u) + cap);
    if (u == NULL)
        return NULL;
    memset(u, 0, sizeof(*u));
    u->m = m;
    u->d = d;
    u->lm = &rl->models[index];
    u->loop = rl->loop;
    u->cb = cb;
    u->cb_ctx = cb_ctx;
    u->timer.cb = http_on_timeout;

    char *p = u->head, len_text[GH_U64_TEXT_MAX];
    PUT_LIT(&p, "POST ");
    put(&p, d->path, strlen(d->path));
    put(&p, path, strlen(path));
    PUT_LIT(&p, " HTTP/1.1\r\nhost: ");
    put(&p, d->authority.base, d->authority.len);
    PUT_LIT(&p, "\r\nconnection: keep-alive\r\ncontent-type: application/json\r\ncontent-length: ");
    put(&p, len_text, gh_u64_text(len_text, body_len));
    PUT_LIT(&p, "\r\n");
    if (rq->accept.len != 0) {
        PUT_LIT(&p, "accept: ");
        put(&p, rq->accept.base, rq->accept.len);
        PUT_LIT(&p, "\r\n");
    }
    if (m->anthropic) {
        PUT_LIT(&p, "anthropic-version: ");
        put(&p, version.base, version.len);
        PUT_LIT(&p, "\r\n");
        if (rq->anthropic_beta.len != 0) {
            PUT_LIT(&p, "anthropic-beta: ");
            put(&p, rq->anthropic_beta.base, rq->anthropic_beta.len);
            PUT_LIT(&p, "\r\n");
        }
    }
    put(&p, d->auth_line, d->auth_line_len);
    PUT_LIT(&p, "\r\n");
    assert((size_t)(p - u->head) <= cap);
    u->bufs[0] = h2o_iovec_init(u->head, (size_t)(p - u->head));
    u->bufs[1] = h2o_iovec_init(body, body_len);

    u->starting = true;
    u->phase = HU_CONNECT;
    http_timer_link(u, u->lm->connect_timeout);
    gh_hclient_start(&u->client, u->lm->pools[dep], u->bufs, u->bufs[1].len != 0 ? 2 : 1,
                     &hc_callbacks, u);
    u->starting = false;
    if (u->done || u->client == NULL) {
        http_timer_unlink(u);
        free(u);
        return NULL;
    }
    return u;
}

/* Stops the upstream; no callback comes after. From inside a callback, the stop takes effect
 * when it returns. */
static void http_cancel(http_up_t *u)
{
    assert(!u->done);
    if (u->in_cb) {
        u->stop_asked = true;
        return;
    }
    gh_hclient_cancel(u->client);
    http_end(u);
}

/* Stops reading the upstream's socket until http_resume (flow control). */
static void http_pause(http_up_t *u)
{
    if (u->paused || u->done)
        return;
    gh_hclient_pause(u->client);
    http_timer_unlink(u); /* a slow client is not a silent upstream */
    u->paused = true;
}

static void http_resume(http_up_t *u)
{
    if (!u->paused)
        return;
    u->paused = false;
    if (u->done)
        return;
    gh_hclient_resume(u->client);
    if (!u->in_cb && u->phase == HU_BODY)
        http_timer_link(u, u->lm->idle_timeout);
}

/* ---- Calls --------------------------------------------------------------------------------- */

typedef enum { MODE_WAIT, MODE_STREAM, MODE_HOLD, MODE_DISCARD } call_mode_t;

typedef struct {
    gh_relay_loop_t *rl;
    size_t block_size; /* of its memory, from rl->call_blocks */
    h2o_linklist_t link; /* in rl->calls */
    unsigned refs;
    h2o_req_t *req; /* NULL once the client is gone */
    h2o_generator_t generator;
    const gh_model_cfg_t *model;
    gh_api_kind_t api;

    /* The upstream. */
    bool up_running;
    bool up_starting;
    int up_in_cb;
    http_up_t *http;
    gh_mock_t *mock;
    h2o_timeout_entry_t cancel_entry; /* a deferred cancel */
    int up_status;
    call_mode_t mode;
    bool paused;
    gh_err_t end_err; /* DISCARD: what the client is told at the end */
    char end_msg[UP_MSG_MAX];
    h2o_iovec_t content_type;

    /* The client. */
    bool response_started;
    bool sending; /* an h2o_send waits for proceed */
    bool final_ready;
    bool final_sent;
    bool client_gone;
    bool cancelled; /* stopped on disconnect: output is charged at its bound */
    bool overflow;
    h2o_buffer_t *pending;  /* received, not yet handed to h2o */
    h2o_buffer_t *inflight; /* handed to h2o until proceed */
    uint64_t pending_offset; /* stream offset of pending's first byte */

    gh_meter_t meter;
    gh_limits_t *limits;   /* NULL: no admission */
    gh_limits_hold_t hold; /* held until call_charge settles it */
    bool usage_reserved; /* holds a journal slot, written by call_charge */
    bool usage_submitted;
    bool stream_counted; /* in /metrics' open streams until the call is freed */
    gh_usage_event_t ev;
    struct timespec started, up_started, up_ended;

    /* Attempts. c->model serves: the requested model or one of its fallbacks. */
    const gh_model_cfg_t *requested;
    size_t model_index;    /* c->model's index in cfg->models */
    relay_headers_t headers; /* values live in the request's pool: used only while c->req */
    int dep;               /* the running attempt's deployment; -1: none or the mock */
    bool dep_trial;        /* the attempt is its deployment's trial (balancer.h) */
    uint32_t tried;        /* deployments of c->model tried so far */
    int model_attempts;    /* attempts on c->model */
    int attempts;          /* attempts in all */
    size_t fallback_next;  /* next of the requested model's fallbacks to consider */
    gh_balancer_verdict_t att_verdict; /* how the running attempt ended, for health */
    gh_metric_deploy_err_t att_kind;
    bool att_retryable;    /* it failed in a way another deployment may not */
    struct timespec att_started;
    h2o_timeout_entry_t retry_entry; /* the next attempt, started from the zero timeout */
    /* Admission of a fallback's worst case. */
    bool admit_enforced;
    int64_t input_bound, output_bound;
    /* The client's body and its parse, kept to splice a fallback's model name. */
    gh_request_t parsed;
    char *orig_body; /* NULL: no fallbacks */
    size_t orig_len;
    size_t body_cap;

    char *body; /* the upstream's body, after the metering buffer: built once per model */
    size_t body_len;
    /* GH_METER_EVENT_INLINE bytes of metering buffer (it grows apart for a larger event), the
     * body, the client's body: about 3.5 KiB for a short request, held while it streams. */
    char buf[];
} call_t;

static int64_t us_between(const struct timespec *a, const struct timespec *b)
{
    int64_t us = (int64_t)(b->tv_sec - a->tv_sec) * 1000000 + (b->tv_nsec - a->tv_nsec) / 1000;
    return us > 0 ? us : 0;
}

static void call_hold(call_t *c)
{
    c->refs++;
}

static void call_release(call_t *c)
{
    assert(c->refs > 0);
    if (--c->refs != 0)
        return;
    assert(!c->up_running && c->req == NULL);
    if (c->hold.held) /* never charged (cannot happen): release the reservation */
        gh_limits_settle(c->limits, &c->hold, 0, 0, 0);
    if (c->usage_reserved && !c->usage_submitted) /* no event: give the slot back */
        gh_usage_unreserve(c->rl->usage);
    if (c->stream_counted)
        gh_metrics_streams_add(-1);
    if (h2o_timeout_is_linked(&c->cancel_entry))
        h2o_timeout_unlink(&c->cancel_entry);
    assert(!h2o_timeout_is_linked(&c->retry_entry));
    h2o_buffer_dispose(&c->pending);
    h2o_buffer_dispose(&c->inflight);
    gh_meter_dispose(&c->meter);
    h2o_linklist_unlink(&c->link);
    c->rl->active--;
    gh_blockcache_put(&c->rl->call_blocks, c, c->block_size);
}

/* Hands the usage event to the writer, once. */
static void call_charge(call_t *c, int status)
{
    if (c->usage_submitted)
        return;
    c->usage_submitted = true;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    gh_usage_event_t *ev = &c->ev;
    if (c->api != GH_API_COUNT_TOKENS) {
        ev->input_tokens = c->meter.usage.input_tokens;
        ev->output_tokens =
            c->cancelled ? gh_meter_output_bound(&c->meter) : c->meter.usage.output_tokens;
        ev->cache_creation_tokens = c->meter.usage.cache_creation_tokens;
        ev->cache_read_tokens = c->meter.usage.cache_read_tokens;
        gh_meter_usage_t u = {ev->input_tokens, ev->output_tokens, ev->cache_creation_tokens,
                              ev->cache_read_tokens};
        gh_meter_costs_t parts;
        ev->cost_nusd = gh_meter_costs(&u, c->model, &parts);
        ev->input_cost_nusd = parts.input_nusd;
        ev->output_cost_nusd = parts.output_nusd;
        ev->cache_creation_cost_nusd = parts.cache_creation_nusd;
        ev->cache_read_cost_nusd = parts.cache_read_nusd;
    }
    /* Admission learns the actual usage before the writer does: the reservation is released
     * and the cost taken from the balance in memory (core/admission.h explains why the usage
     * entry the writer commits later is not applied again). */
    if (c->hold.held)
        gh_limits_settle(c->limits, &c->hold, ev->input_tokens + ev->cache_creation_tokens,
                         ev->output_tokens, ev->cost_nusd);
    else if (c->limits != NULL)
        gh_limits_record(c->limits, ev->org_id, ev->workspace_id, ev->cost_nusd);
    ev->status = status;
    ev->client_disconnected = c->client_gone;
    ev->latency_us = us_between(&c->started, &now);
    ev->upstream_us = us_between(&c->up_started, c->up_running ? &now : &c->up_ended);
    gh_metrics_request(gh_api_metric_route(c->api), (int)c->model_index, status, ev->latency_us,
                       ev->latency_us - ev->upstream_us);
    /* The slot was taken before anything was relayed, so this cannot fail: a request is
     * recorded or was refused, never served unrecorded. */
    if (c->usage_reserved)
        gh_usage_submit_reserved(c->rl->usage, ev);
}

/* Appends bytes for the client. */
static void pending_append(call_t *c, const char *data, size_t len)
{
    if (len == 0)
        return;
    h2o_iovec_t dst = h2o_buffer_reserve(&c->pending, len);
    memcpy(dst.base, data, len);
    c->pending->size += len;
}

/* Sends what may be sent now: whole events of a stream, or everything once the end is in. */
static void call_flush(call_t *c)
{
    if (c->req == NULL || c->sending || c->final_sent || !c->response_started)
        return;
    size_t n = c->pending->size;
    if (!c->final_ready) {
        uint64_t boundary = gh_meter_boundary(&c->meter);
        size_t complete =
            boundary > c->pending_offset ? (size_t)(boundary - c->pending_offset) : 0;
        if (complete > n)
            complete = n;
        if (n - complete <= RELAY_EVENT_HOLD_MAX)
            n = complete; /* hold the incomplete event back; its end is on the way */
        if (n == 0)
            return;
    }
    assert(c->inflight->size == 0);
    h2o_iovec_t v;
    bool final;
    if (c->final_ready) {
        /* Nothing is appended after the end: h2o may write straight from `pending`. */
        v = h2o_iovec_init(c->pending->bytes, c->pending->size);
        final = true;
    } else {
        /* More may arrive and move `pending`'s bytes, so what h2o writes is copied aside. */
        h2o_iovec_t dst = h2o_buffer_reserve(&c->inflight, n);
        memcpy(dst.base, c->pending->bytes, n);
        c->inflight->size += n;
        h2o_buffer_consume(&c->pending, n);
        c->pending_offset += n;
        v = h2o_iovec_init(c->inflight->bytes, c->inflight->size);
        final = false;
    }
    if (final)
        c->final_sent = true;
    else
        c->sending = true;
    call_hold(c);
    h2o_send(c->req, &v, v.len != 0 ? 1 : 0,
             final ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
    call_release(c);
}

static void call_pause(call_t *c)
{
    if (!c->paused && c->http != NULL && c->up_running) {
        http_pause(c->http);
        c->paused = true;
    }
}

static void call_resume(call_t *c)
{
    if (c->paused && c->http != NULL && c->up_running)
        http_resume(c->http);
    c->paused = false;
}

static void on_proceed(h2o_generator_t *generator, h2o_req_t *req)
{
    call_t *c = H2O_STRUCT_FROM_MEMBER(call_t, generator, generator);
    (void)req;
    c->sending = false;
    h2o_buffer_consume(&c->inflight, c->inflight->size);
    if (c->paused && c->pending->size < RELAY_RESUME_BYTES)
        call_resume(c);
    call_flush(c);
}

/* Answers a client that has had no response yet with the error `err`. */
static void call_reply_error(call_t *c, gh_err_t err, const char *message)
{
    static h2o_generator_t generator = {NULL, NULL};
    h2o_req_t *req = c->req;
    if (req == NULL || c->response_started)
        return;
    const char *type, *code;
    char *body = h2o_mem_alloc_pool(&req->pool, GH_REQUEST_ERROR_MAX);
    size_t len = gh_request_error_body(c->api, err, message, c->ev.request_id, body,
                                       GH_REQUEST_ERROR_MAX);
    req->res.status = gh_request_error_status(err, &type, &code);
    req->res.reason = "Error";
    req->res.content_length = len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/json"));
    c->response_started = true;
    c->final_sent = true;
    h2o_start_response(req, &generator);
    h2o_iovec_t v = h2o_iovec_init(body, len);
    h2o_send(req, &v, 1, H2O_SEND_STATE_FINAL);
}

/* The upstream failed (or its answer cannot be relayed): charge what was reported and tell
 * the client, in the stream if it has started, else as an error response. */
static bool call_retry(call_t *c, const char *message);
static bool call_may_retry(const call_t *c);

static void call_fail(call_t *c, gh_err_t err, const char *message)
{
    const char *type, *code;
    if (call_retry(c, message))
        return;
    gh_log_warn("api %s: model %s: %s", c->ev.request_id, c->model->name, message);
    if (c->mode == MODE_STREAM && c->response_started) {
        call_charge(c, c->up_status);
        if (c->req == NULL || c->final_sent)
            return;
        /* Drop an incomplete event; if part of one was already forwarded, end it first so
         * the error event stands on its own. */
        uint64_t boundary = gh_meter_boundary(&c->meter);
        if (boundary >= c->pending_offset) {
            size_t complete = (size_t)(boundary - c->pending_offset);
            if (complete < c->pending->size)
                c->pending->size = complete;
        } else {
            c->pending->size = 0;
            pending_append(c, "\n\n", 2);
        }
        char event[GH_REQUEST_ERROR_MAX];
        size_t n = gh_request_error_event(c->api, err, message, c->ev.request_id, event,
                                          sizeof(event));
        pending_append(c, event, n);
        c->final_ready = true;
        call_flush(c);
        return;
    }
    call_charge(c, c->req != NULL ? gh_request_error_status(err, &type, &code)
                                  : STATUS_CLIENT_GONE);
    call_reply_error(c, err, message);
}

/* The upstream has ended (or was cancelled): drop its reference. */
/* Tells the balancer how the attempt on c->dep ended. */
static void call_dep_end(call_t *c, const struct timespec *now)
{
    if (c->dep < 0)
        return;
    /* /metrics' upstream errors: a failure of the upstream itself (a 429 is its answer). */
    static const int kinds[GH_DEPLOY_ERR_COUNT] = {
        [GH_DEPLOY_ERR_CONNECT] = GH_UPSTREAM_ERR_CONNECT,
        [GH_DEPLOY_ERR_RESET] = GH_UPSTREAM_ERR_PROTOCOL,
        [GH_DEPLOY_ERR_STATUS] = GH_UPSTREAM_ERR_STATUS,
        [GH_DEPLOY_ERR_OVERLOADED] = GH_UPSTREAM_ERR_STATUS,
        [GH_DEPLOY_ERR_TIMEOUT] = GH_UPSTREAM_ERR_TIMEOUT,
        [GH_DEPLOY_ERR_RATE_LIMITED] = GH_UPSTREAM_ERR_COUNT};
    if (c->att_kind < GH_DEPLOY_ERR_COUNT)
        gh_metrics_upstream_error((int)c->model_index,
                                  (gh_metric_upstream_err_t)kinds[c->att_kind]);
    const relay_model_t *m = &c->rl->rm->models[c->model_index];
    gh_balancer_end(m->bal, c->dep, c->dep_trial, c->att_verdict, c->att_kind,
                    us_between(&c->att_started, now), gh_mono_ms());
    c->dep = -1;
}

static void call_up_ended(call_t *c)
{
    assert(c->up_running);
    c->up_running = false;
    c->http = NULL;
    c->mock = NULL;
    clock_gettime(CLOCK_MONOTONIC, &c->up_ended);
    call_dep_end(c, &c->up_ended);
    if (h2o_timeout_is_linked(&c->cancel_entry))
        h2o_timeout_unlink(&c->cancel_entry);
    call_release(c);
}

static void call_cancel_upstream(call_t *c)
{
    assert(c->up_running && c->up_in_cb == 0);
    c->att_verdict = GH_BALANCER_NEUTRAL;
    c->att_kind = GH_DEPLOY_ERR_COUNT;
    c->att_retryable = false;
    if (c->http != NULL)
        http_cancel(c->http);
    else if (c->mock != NULL)
        gh_mock_cancel(c->mock);
    call_up_ended(c);
}

/* The client is gone (before or during the answer) and its upstream still runs. */
static void call_stop_on_disconnect(call_t *c)
{
    c->cancelled = true;
    call_cancel_upstream(c);
    call_charge(c, c->response_started ? c->up_status : STATUS_CLIENT_GONE);
}

static void on_deferred_cancel(h2o_timeout_entry_t *entry)
{
    call_t *c = H2O_STRUCT_FROM_MEMBER(call_t, cancel_entry, entry);
    if (!c->up_running)
        return;
    call_hold(c);
    call_stop_on_disconnect(c);
    call_release(c);
}

static void call_client_gone(call_t *c)
{
    if (c->client_gone)
        return;
    c->req = NULL; /* never touched again: h2o is disposing of it */
    if (c->final_sent)
        return; /* it had everything; the last bytes were just not written */
    c->client_gone = true;
    if (!c->up_running)
        return;
    if (c->model->cancel_on_disconnect) {
        if (c->up_in_cb != 0 || c->up_starting)
            h2o_timeout_link(c->rl->loop, &c->rl->ctx->zero_timeout, &c->cancel_entry);
        else
            call_stop_on_disconnect(c);
    } else {
        /* Read the upstream to its end, as fast as it sends, and charge it. */
        call_resume(c);
    }
}

/* h2o stops the generator when the connection goes away mid-response. */
static void on_stop(h2o_generator_t *generator, h2o_req_t *req)
{
    call_t *c = H2O_STRUCT_FROM_MEMBER(call_t, generator, generator);
    (void)req;
    call_hold(c);
    call_client_gone(c);
    call_release(c);
}

/* h2o disposes of the request's pool: the request is over, answered or not. */
static void on_req_dispose(void *p)
{
    call_t *c = *(call_t **)p;
    call_hold(c);
    call_client_gone(c);
    c->req = NULL;
    call_release(c); /* our hold */
    call_release(c); /* the request's reference */
}

/* ---- Upstream callbacks -------------------------------------------------------------------- */

static bool content_type_is_sse(const char *ct, size_t len)
{
    static const char sse[] = "text/event-stream";
    return len >= sizeof(sse) - 1 && h2o_lcstris(ct, sizeof(sse) - 1, H2O_STRLIT(sse));
}

static void up_on_head(void *ctx, int status, const char *ct, size_t ct_len)
{
    call_t *c = ctx;
    call_hold(c);
    c->up_in_cb++;
    c->up_status = status;
    c->att_verdict = GH_BALANCER_OK;
    c->att_kind = GH_DEPLOY_ERR_COUNT;
    if (status == 429) {
        c->att_verdict = GH_BALANCER_NEUTRAL; /* busy, not broken */
        c->att_kind = GH_DEPLOY_ERR_RATE_LIMITED;
    }
    if (status >= 200 && status <= 299 && content_type_is_sse(ct, ct_len)) {
        c->mode = MODE_STREAM;
        if (!c->stream_counted)
            gh_metrics_streams_add(1);
        c->stream_counted = true;
    } else if (status == 503 || status == 529) {
        c->mode = MODE_DISCARD;
        c->end_err = GH_EUNAVAIL;
        c->att_verdict = GH_BALANCER_FAILED;
        c->att_kind = GH_DEPLOY_ERR_OVERLOADED;
        c->att_retryable = true;
        snprintf(c->end_msg, sizeof(c->end_msg),
                 "The upstream model server for %s is overloaded (HTTP %d).", c->model->name,
                 status);
    } else if (status == 429 && call_may_retry(c)) {
        /* Another deployment (or a fallback) may have room: the 429 is not passed on. */
        c->mode = MODE_DISCARD;
        c->end_err = GH_ERATE;
        c->att_retryable = true;
        snprintf(c->end_msg, sizeof(c->end_msg),
                 "The upstream model server for %s is rate limiting (HTTP 429).",
                 c->model->name);
    } else if ((status >= 200 && status <= 299) || (status >= 400 && status <= 499)) {
        c->mode = MODE_HOLD;
    } else {
        c->mode = MODE_DISCARD;
        c->end_err = GH_EIO;
        c->att_verdict = GH_BALANCER_FAILED;
        c->att_kind = GH_DEPLOY_ERR_STATUS;
        c->att_retryable = true;
        snprintf(c->end_msg, sizeof(c->end_msg),
                 "The upstream model server for %s answered HTTP %d.", c->model->name, status);
    }
    if (c->req != NULL && c->mode != MODE_DISCARD) {
        h2o_req_t *req = c->req;
        c->content_type = ct_len != 0 ? h2o_strdup(&req->pool, ct, ct_len)
                                      : h2o_iovec_init(H2O_STRLIT("application/json"));
        if (c->mode == MODE_STREAM) {
            /* The head goes out now, so the client's first byte follows the upstream's. */
            req->res.status = status;
            req->res.reason = "OK";
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                           c->content_type.base, c->content_type.len);
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                           H2O_STRLIT("no-cache"));
            c->response_started = true;
            c->sending = true;
            h2o_start_response(req, &c->generator);
            h2o_send(req, NULL, 0, H2O_SEND_STATE_IN_PROGRESS);
        }
    }
    c->up_in_cb--;
    call_release(c);
}

/* The whole held answer is in: charge it and send it. */
static void call_finish_hold(call_t *c)
{
    if (c->overflow) {
        char msg[UP_MSG_MAX];
        snprintf(msg, sizeof(msg),
                 "The upstream model server for %s sent a response larger than %d bytes.",
                 c->model->name, RELAY_HOLD_MAX);
        call_fail(c, GH_EIO, msg);
        return;
    }
    if (c->up_status >= 200 && c->up_status <= 299 && c->api != GH_API_COUNT_TOKENS)
        gh_meter_json(&c->meter, c->pending->bytes, c->pending->size);
    call_charge(c, c->req != NULL ? c->up_status : STATUS_CLIENT_GONE);
    h2o_req_t *req = c->req;
    if (req == NULL)
        return;
    req->res.status = c->up_status;
    req->res.reason = c->up_status <= 299 ? "OK" : "Error";
    req->res.content_length = c->pending->size;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   c->content_type.base, c->content_type.len);
    c->response_started = true;
    c->final_ready = true;
    h2o_start_response(req, &c->generator);
    call_flush(c);
}

static void up_on_body(void *ctx, const char *data, size_t len, bool final)
{
    call_t *c = ctx;
    call_hold(c);
    c->up_in_cb++;
    bool fed = false;
    if (final && c->mode == MODE_STREAM) {
        gh_meter_feed(&c->meter, data, len);
        fed = true;
        if (!c->meter.terminal) {
            c->att_verdict = GH_BALANCER_FAILED;
            c->att_kind = GH_DEPLOY_ERR_RESET;
        }
    }
    if (final)
        call_up_ended(c);
    switch (c->mode) {
    case MODE_STREAM:
        if (!fed)
            gh_meter_feed(&c->meter, data, len);
        if (c->req != NULL && !c->final_sent)
            pending_append(c, data, len);
        if (final && !c->meter.terminal) {
            /* An upstream that ends its answer cleanly but early (or closes a body that runs
             * until the close) has not finished: a stream is complete only with message_stop
             * or [DONE]. */
            char msg[UP_MSG_MAX];
            snprintf(msg, sizeof(msg),
                     "The upstream model server for %s ended its stream before it was complete.",
                     c->model->name);
            call_fail(c, GH_EIO, msg);
            break;
        }
        if (c->meter.terminal || final)
            call_charge(c, c->up_status); /* before the last event goes out */
        if (final)
            c->final_ready = true;
        else if (c->req != NULL && c->pending->size > RELAY_PAUSE_BYTES)
            call_pause(c);
        call_flush(c);
        break;
    case MODE_HOLD:
        if (!c->overflow && c->pending->size + len > RELAY_HOLD_MAX) {
            c->overflow = true;
            c->pending->size = 0;
        }
        if (!c->overflow)
            pending_append(c, data, len);
        if (final)
            call_finish_hold(c);
        break;
    case MODE_DISCARD:
        if (final)
            call_fail(c, c->end_err, c->end_msg);
        break;
    case MODE_WAIT:
        assert(!"body before head");
        break;
    }
    c->up_in_cb--;
    call_release(c);
}

static void up_on_error(void *ctx, gh_err_t err, const char *msg)
{
    call_t *c = ctx;
    call_hold(c);
    c->up_in_cb++;
    c->att_verdict = GH_BALANCER_FAILED;
    if (err == GH_ETIMEOUT)
        c->att_kind = GH_DEPLOY_ERR_TIMEOUT;
    else if (c->http != NULL && c->http->phase == HU_CONNECT)
        c->att_kind = GH_DEPLOY_ERR_CONNECT;
    else
        c->att_kind = GH_DEPLOY_ERR_RESET;
    c->att_retryable = err == GH_EIO || err == GH_ETIMEOUT || err == GH_EUNAVAIL;
    call_up_ended(c);
    call_fail(c, err, msg);
    c->up_in_cb--;
    call_release(c);
}

static const gh_upstream_cb_t up_callbacks = {up_on_head, up_on_body, up_on_error};

/* ---- Start and abort ------------------------------------------------------------------------ */

static const char *route_name(gh_api_kind_t api)
{
    switch (api) {
    case GH_API_MESSAGES:
        return "messages";
    case GH_API_COUNT_TOKENS:
        return "count_tokens";
    case GH_API_CHAT:
        return "chat.completions";
    }
    return "";
}

/* Copies the string `src` into `dst` (`size` bytes), cut to fit, always terminated. */
static void copy_str(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static int64_t now_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- Attempts: deployments, retries and fallbacks ------------------------------------------ */

/* Whether model `m` can serve requests of `api` (the relay never translates). */
static bool model_speaks(const relay_model_t *m, gh_api_kind_t api)
{
    if (!m->http)
        return true;
    return api == GH_API_CHAT ? !m->anthropic : m->anthropic;
}

/* Whether another attempt is conceivable: an untried deployment within the retries, or a
 * fallback not yet considered. A cheap test for the 429 decision; call_choose decides. */
static bool call_may_retry(const call_t *c)
{
    if (c->req == NULL)
        return false;
    const relay_model_t *m = &c->rl->rm->models[c->model_index];
    if (m->http && c->model_attempts <= m->cfg->retries) {
        uint32_t all = (UINT32_C(1) << m->ndeploys) - 1;
        if ((c->tried & all) != all)
            return true;
    }
    return c->fallback_next < c->rl->rm->models[c->requested - c->rl->rm->cfg->models].nfallbacks;
}

/* Whether fallback model `f` could take a request now: it speaks the API and has a deployment
 * in rotation (or is the mock). */
static bool fallback_ready(const call_t *c, const relay_model_t *f, int64_t now_ms)
{
    return model_speaks(f, c->api) && (!f->http || gh_balancer_available(f->bal, now_ms));
}

/* Switches the call to the next ready fallback of the requested model that admission lets
 * through: its worst case is admitted (credit, monthly limits, its model class's rate limits)
 * before the hold of the model given up is released, and the body gets its model name.
 * Returns false when none is left. */
static bool call_next_fallback(call_t *c, int64_t now_ms)
{
    const gh_relay_models_t *rm = c->rl->rm;
    const relay_model_t *req_m = &rm->models[c->requested - rm->cfg->models];
    while (c->fallback_next < req_m->nfallbacks) {
        const relay_model_t *f = &rm->models[req_m->fallbacks[c->fallback_next++]];
        if (!fallback_ready(c, f, now_ms))
            continue;
        if (c->admit_enforced) {
            gh_admit_req_t ar = {
                .org_id = c->ev.org_id,
                .workspace_id = c->ev.workspace_id,
                .model_class = f->cfg->model_class,
            };
            if (c->api != GH_API_COUNT_TOKENS) {
                ar.input_tokens_bound = c->input_bound;
                ar.max_output_tokens = c->output_bound;
                ar.worst_cost_nusd = gh_meter_worst_cost(f->cfg, c->input_bound, c->output_bound);
            }
            gh_admit_t a;
            gh_limits_admit(c->limits, &ar, &a);
            if (a.decision != GH_ADMIT_OK) {
                gh_log_info("api %s: fallback %s not admitted (decision %d)", c->ev.request_id,
                            f->cfg->name, (int)a.decision);
                continue;
            }
            if (c->hold.held)
                gh_limits_settle(c->limits, &c->hold, 0, 0, 0);
            c->hold = a.hold;
        }
        size_t len = gh_request_rewrite_size(&c->parsed, c->orig_len, f->model_json_len, true);
        assert(len <= c->body_cap);
        c->body_len = gh_request_rewrite(&c->parsed, c->orig_body, c->orig_len, f->model_json,
                                         f->model_json_len, true, c->body);
        assert(c->body_len == len);
        gh_log_info("api %s: model %s falls back to %s", c->ev.request_id, c->model->name,
                    f->cfg->name);
        c->model = f->cfg;
        c->model_index = (size_t)f->index;
        c->tried = 0;
        c->model_attempts = 0;
        copy_str(c->ev.model, sizeof(c->ev.model), f->cfg->name);
        return true;
    }
    return false;
}

/* Chooses where the next attempt goes: a deployment of c->model not yet tried (within its
 * retries), else a fallback model; when every deployment is ejected and no fallback is
 * ready, the least recently failed deployment. Counts the attempt in flight with the
 * balancer. Returns false when nothing is left to try. */
static bool call_choose(call_t *c)
{
    const gh_relay_models_t *rm = c->rl->rm;
    int64_t now = gh_mono_ms();
    bool retry = c->attempts > 0;
    for (;;) {
        const relay_model_t *m = &rm->models[c->model_index];
        c->dep = -1;
        c->dep_trial = false;
        if (!m->http) {
            if (c->model_attempts == 0) {
                c->ev.deployment[0] = '\0';
                return true;
            }
        } else if (c->model_attempts <= m->cfg->retries) {
            int d = gh_balancer_pick(m->bal, &c->rl->models[c->model_index].cursor, c->tried,
                                     retry, now, &c->dep_trial);
            if (d < 0) {
                /* Every untried deployment is ejected: a ready fallback serves, or else the
                 * least recently failed deployment is tried rather than refusing. */
                const relay_model_t *req_m = &rm->models[c->requested - rm->cfg->models];
                bool fallback = false;
                for (size_t i = c->fallback_next; i < req_m->nfallbacks && !fallback; i++)
                    fallback = fallback_ready(c, &rm->models[req_m->fallbacks[i]], now);
                if (!fallback)
                    d = gh_balancer_pick_any(m->bal, c->tried, retry);
            }
            if (d >= 0) {
                c->dep = d;
                c->tried |= UINT32_C(1) << d;
                copy_str(c->ev.deployment, sizeof(c->ev.deployment),
                         m->deploys[d].cfg->url);
                return true;
            }
        }
        if (!call_next_fallback(c, now))
            return false;
    }
}

/* Starts the attempt call_choose chose. */
static void call_start_upstream(call_t *c)
{
    gh_relay_loop_t *rl = c->rl;
    const relay_model_t *m = &rl->rm->models[c->model_index];
    c->attempts++;
    c->model_attempts++;
    c->mode = MODE_WAIT;
    c->up_status = 0;
    c->att_verdict = GH_BALANCER_NEUTRAL;
    c->att_kind = GH_DEPLOY_ERR_COUNT;
    c->att_retryable = false;
    c->refs++; /* the upstream's reference, dropped when it ends */
    c->up_running = true;
    c->up_starting = true;
    clock_gettime(CLOCK_MONOTONIC, &c->att_started);
    call_hold(c);
    if (m->http) {
        http_up_t *u = http_start(rl, c->model_index, (size_t)c->dep, &c->headers, c->body,
                                  c->body_len, &up_callbacks, c);
        if (c->up_running) {
            if (u != NULL) {
                c->http = u;
            } else {
                call_up_ended(c);
                call_fail(c, GH_EINTERNAL, "Out of memory starting the upstream request.");
            }
        }
    } else {
        gh_mock_t *mk = gh_mock_start(rl->loop, c->model, c->api, c->body, c->body_len,
                                      &up_callbacks, c);
        if (c->up_running) {
            if (mk != NULL) {
                c->mock = mk;
            } else {
                call_up_ended(c);
                call_fail(c, GH_EINTERNAL, "The built-in mock could not start.");
            }
        }
    }
    c->up_starting = false;
    /* A disconnect noticed while starting was deferred; so is nothing else. */
    call_release(c);
}

/* The attempt that just ended failed before any byte reached the client: if another one may
 * be made (the client is still there, within the model's first-byte timeout since the
 * request arrived), it is chosen now and started from the loop's zero timeout, outside the
 * upstream's callbacks. The body is not copied again. Returns whether a retry is on its way;
 * if not, the caller answers with the failure. */
static bool call_retry(call_t *c, const char *message)
{
    if (!c->att_retryable || c->response_started || c->req == NULL || c->client_gone ||
        c->usage_submitted || c->up_running)
        return false;
    c->att_retryable = false;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (us_between(&c->started, &now) / 1000 >= c->requested->first_byte_timeout_ms)
        return false;
    if (!call_choose(c))
        return false;
    gh_log_info("api %s: retrying on %s%s%s after: %s", c->ev.request_id, c->model->name,
                c->dep >= 0 ? " at " : "", c->dep >= 0 ? c->ev.deployment : "", message);
    /* Nothing from the failed attempt is kept: its head was not relayed, its body dropped. */
    c->pending->size = 0;
    c->overflow = false;
    c->content_type = h2o_iovec_init(NULL, 0);
    c->refs++; /* the retry's reference, dropped by on_retry */
    h2o_timeout_link(c->rl->loop, &c->rl->ctx->zero_timeout, &c->retry_entry);
    return true;
}

static void on_retry(h2o_timeout_entry_t *entry)
{
    call_t *c = H2O_STRUCT_FROM_MEMBER(call_t, retry_entry, entry);
    if (c->req == NULL) {
        /* The client left while the retry waited: nothing more is tried. */
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        c->att_verdict = GH_BALANCER_NEUTRAL;
        c->att_kind = GH_DEPLOY_ERR_COUNT;
        call_dep_end(c, &now);
        call_charge(c, STATUS_CLIENT_GONE);
    } else {
        call_start_upstream(c);
    }
    call_release(c);
}

void gh_relay_start(gh_relay_loop_t *rl, const gh_relay_request_t *rq)
{
    size_t index = (size_t)(rq->model - rl->rm->cfg->models);
    assert(index < rl->rm->count);
    const relay_model_t *m = &rl->rm->models[index];
    bool stream = rq->parsed->stream;
    size_t body_len = gh_request_rewrite_size(rq->parsed, rq->body_len, m->model_json_len, true);
    /* The body area fits the model's body and every fallback's (whose name may be longer). */
    size_t body_cap = body_len, orig_len = 0;
    for (size_t i = 0; i < m->nfallbacks; i++) {
        const relay_model_t *f = &rl->rm->models[m->fallbacks[i]];
        size_t n = gh_request_rewrite_size(rq->parsed, rq->body_len, f->model_json_len, true);
        if (n > body_cap)
            body_cap = n;
        orig_len = rq->body_len;
    }
    /* Even for a request that did not ask for a stream: the upstream decides what it sends. */
    size_t meter_len = GH_METER_EVENT_INLINE; /* grows for a larger event (meter.h) */

    size_t block_size;
    call_t *c = gh_blockcache_get(&rl->call_blocks, sizeof(*c) + meter_len + body_cap + orig_len,
                                  &block_size);
    if (c == NULL) {
        if (rq->hold != NULL && rq->hold->held) {
            gh_limits_hold_t hold = *rq->hold;
            gh_limits_settle(rq->limits, &hold, 0, 0, 0);
        }
        if (rq->usage_reserved)
            gh_usage_unreserve(rl->usage);
        /* Nothing was forwarded: an error answer, no usage event. */
        static h2o_generator_t generator = {NULL, NULL};
        static const char body[] = "{\"type\":\"error\",\"error\":{\"type\":\"api_error\","
                                   "\"message\":\"Out of memory.\"}}";
        rq->req->res.status = 500;
        rq->req->res.reason = "Internal Server Error";
        rq->req->res.content_length = sizeof(body) - 1;
        h2o_start_response(rq->req, &generator);
        h2o_iovec_t v = h2o_iovec_init(H2O_STRLIT(body));
        h2o_send(rq->req, &v, 1, H2O_SEND_STATE_FINAL);
        return;
    }
    memset(c, 0, sizeof(*c));
    c->rl = rl;
    c->block_size = block_size;
    c->req = rq->req;
    c->model = rq->model;
    c->requested = rq->model;
    c->model_index = index;
    c->api = rq->api;
    c->headers = (relay_headers_t){rq->api, rq->anthropic_version, rq->anthropic_beta,
                                   rq->accept};
    c->dep = -1;
    c->generator.proceed = on_proceed;
    c->generator.stop = on_stop;
    c->cancel_entry.cb = on_deferred_cancel;
    c->retry_entry.cb = on_retry;
    c->started = rq->started;
    c->limits = rq->limits;
    c->usage_reserved = rq->usage_reserved;
    assert(!c->usage_reserved || rl->usage != NULL);
    if (rq->hold != NULL)
        c->hold = *rq->hold;
    c->admit_enforced = rq->admit_enforced;
    c->input_bound = rq->input_bound;
    c->output_bound = rq->output_bound;
    c->body = c->buf + meter_len;
    c->body_cap = body_cap;
    c->body_len = gh_request_rewrite(rq->parsed, rq->body, rq->body_len, m->model_json,
                                     m->model_json_len, true, c->body);
    assert(c->body_len == body_len);
    if (orig_len != 0) {
        c->parsed = *rq->parsed;
        c->orig_body = c->body + body_cap;
        c->orig_len = orig_len;
        memcpy(c->orig_body, rq->body, orig_len);
    }
    h2o_buffer_init(&c->pending, &h2o_socket_buffer_prototype);
    h2o_buffer_init(&c->inflight, &h2o_socket_buffer_prototype);
    gh_meter_init(&c->meter, rq->api == GH_API_CHAT ? GH_METER_OPENAI : GH_METER_ANTHROPIC,
                  c->buf, meter_len);

    gh_usage_event_t *ev = &c->ev;
    copy_str(ev->request_id, sizeof(ev->request_id), rq->request_id);
    copy_str(ev->org_id, sizeof(ev->org_id), rq->key->org_id);
    copy_str(ev->workspace_id, sizeof(ev->workspace_id), rq->key->workspace_id);
    copy_str(ev->key_id, sizeof(ev->key_id), rq->key->key_id);
    copy_str(ev->model, sizeof(ev->model), rq->model->name);
    copy_str(ev->requested_model, sizeof(ev->requested_model), rq->model->name);
    copy_str(ev->route, sizeof(ev->route), route_name(rq->api));
    ev->stream = stream;
    {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        ev->created_at_ms = now_unix_ms() - us_between(&rq->started, &now) / 1000;
    }

    /* One reference for the request, dropped when h2o disposes of it. */
    call_t **slot = h2o_mem_alloc_shared(&rq->req->pool, sizeof(*slot), on_req_dispose);
    *slot = c;
    c->refs = 1;
    h2o_linklist_insert(&rl->calls, &c->link);
    rl->active++;
    clock_gettime(CLOCK_MONOTONIC, &c->up_started);

    call_hold(c);
    if (call_choose(c)) {
        call_start_upstream(c);
    } else {
        /* Cannot happen: a model always has a deployment or is the mock. */
        call_fail(c, GH_EINTERNAL, "No upstream could be chosen for this model.");
    }
    call_release(c);
}

void gh_relay_loop_abort(gh_relay_loop_t *rl)
{
    h2o_linklist_t *node = rl->calls.next;
    while (node != &rl->calls) {
        call_t *c = H2O_STRUCT_FROM_MEMBER(call_t, link, node);
        call_hold(c);
        if (h2o_timeout_is_linked(&c->retry_entry)) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            h2o_timeout_unlink(&c->retry_entry);
            c->att_verdict = GH_BALANCER_NEUTRAL;
            c->att_kind = GH_DEPLOY_ERR_COUNT;
            call_dep_end(c, &now);
            call_fail(c, GH_EUNAVAIL, "Gatehouse is shutting down; retry the request.");
            call_release(c); /* the retry's reference */
        } else if (c->up_running && c->up_in_cb == 0) {
            call_cancel_upstream(c);
            call_fail(c, GH_EUNAVAIL, "Gatehouse is shutting down; retry the request.");
        }
        node = node->next;
        call_release(c);
    }
}
