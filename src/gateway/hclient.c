/* The upstream HTTP/1.1 client and its per-loop connection pool. See hclient.h.
 *
 * A connection (conn_t) is either idle in its pool's list, reading only to notice the server
 * closing it, or attached to one request. A request (gh_hclient_req_t) goes
 *
 *   RESOLVE -> CONNECT -> (HANDSHAKE) -> HEAD -> BODY -> done
 *
 * taking an idle connection when there is one and skipping straight to HEAD. The request is
 * written in one h2o_socket_write while the response is read; the response may well start
 * before the write has completed (an early error answer). */
#include "gateway/hclient.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <h2o/hostinfo.h>

#include "lib/metrics.h"
#include "lib/text.h"

/* picohttpparser's response parser, part of libh2o (its header is not installed). */
struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};
int phr_parse_response(const char *buf, size_t len, int *minor_version, int *status,
                       const char **msg, size_t *msg_len, struct phr_header *headers,
                       size_t *num_headers, size_t last_len);

#define HEAD_MAX (64 * 1024) /* a response head larger than this is refused */
#define HEADERS_MAX 100
#define HOST_MAX 256

typedef struct conn {
    h2o_socket_t *sock;
    gh_hclient_pool_t *pool;
    gh_hclient_req_t *req;     /* NULL while idle */
    h2o_linklist_t idle_link;  /* in pool->idle while idle */
    h2o_timeout_entry_t idle_timer;
} conn_t;

struct gh_hclient_pool {
    h2o_loop_t *loop;
    h2o_multithread_receiver_t *getaddr_receiver;
    char host[HOST_MAX];
    char tls_name[HOST_MAX]; /* sent as SNI and verified by h2o; the host unless configured */
    h2o_iovec_t host_iov;
    char port_text[8];
    struct sockaddr_storage addr; /* for a numeric host */
    socklen_t addr_len;
    SSL_CTX *ssl_ctx;
    h2o_timeout_t *idle_timeout, *zero_timeout;
    size_t idle_max, open_max;
    h2o_linklist_t idle; /* conn_t.idle_link, most recently used last */
    size_t idle_count;
    size_t open_count; /* connections open or being opened (resolving, connecting) */
    h2o_linklist_t waiting; /* gh_hclient_req_t.wait_link, oldest first */
    size_t waiting_count;
    h2o_timeout_entry_t kick; /* serves waiting requests, outside any caller's stack */
    int metrics_model;
    size_t shown_open, shown_idle, shown_waiting; /* what /metrics has been told */
};

/* Brings the /metrics gauges up to date with the pool's counts. */
static void pool_report(gh_hclient_pool_t *p)
{
    int d_open = (int)p->open_count - (int)p->shown_open;
    int d_idle = (int)p->idle_count - (int)p->shown_idle;
    int d_wait = (int)p->waiting_count - (int)p->shown_waiting;
    if (d_open == 0 && d_idle == 0 && d_wait == 0)
        return;
    gh_metrics_upstream_conns(p->metrics_model, d_open, d_idle, d_wait);
    p->shown_open = p->open_count;
    p->shown_idle = p->idle_count;
    p->shown_waiting = p->waiting_count;
}

typedef enum { ST_WAIT, ST_RESOLVE, ST_CONNECT, ST_HEAD, ST_BODY } req_state_t;
typedef enum { BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_UNTIL_CLOSE } body_kind_t;

struct gh_hclient_req {
    gh_hclient_pool_t *pool;
    const gh_hclient_cb_t *cb;
    void *ctx;
    h2o_iovec_t bufs[4];
    size_t nbufs;
    h2o_hostinfo_getaddr_req_t *getaddr;
    conn_t *conn;
    h2o_linklist_t wait_link; /* in pool->waiting while ST_WAIT */
    bool holds_slot;          /* counted in open_count without a conn yet */
    req_state_t state;
    bool reused;     /* the connection came from the pool */
    bool retried;    /* already retried once on a new connection */
    bool got_bytes;  /* any response byte arrived on this connection */
    bool written;    /* the request has been written out */
    bool keepalive;  /* the connection may be reused after this response */
    bool paused;
    int in_cb;
    bool cancelled; /* cancelled from inside a callback */
    bool ended;     /* a final callback has been delivered */
    body_kind_t body;
    uint64_t body_left;
    gh_dechunk_t dechunk;
};

/* ---- chunked transfer coding ---------------------------------------------------------------- */

enum {
    CK_SIZE,
    CK_EXT,
    CK_SIZE_LF,
    CK_DATA,
    CK_DATA_CR,
    CK_DATA_LF,
    CK_TRAILER_START,
    CK_TRAILER_LINE,
    CK_TRAILER_END_LF,
};

int gh_dechunk(gh_dechunk_t *d, char *buf, size_t len, size_t *out_len, size_t *used)
{
    size_t i = 0, o = 0;
    int rc = 0;
    while (i < len && rc == 0) {
        char ch = buf[i];
        switch (d->state) {
        case CK_SIZE: {
            int v = gh_hex_digit(ch);
            if (v >= 0) {
                if (++d->hex_digits > 15) /* more than 2^60 bytes: not a real chunk */
                    return -1;
                d->left = d->left * 16 + (uint64_t)v;
                i++;
            } else if (d->hex_digits == 0) {
                return -1;
            } else if (ch == ';' || ch == ' ' || ch == '\t') {
                d->state = CK_EXT;
                i++;
            } else if (ch == '\r') {
                d->state = CK_SIZE_LF;
                i++;
            } else if (ch == '\n') {
                d->state = d->left != 0 ? CK_DATA : CK_TRAILER_START;
                i++;
            } else {
                return -1;
            }
            break;
        }
        case CK_EXT:
            if (ch == '\n')
                d->state = d->left != 0 ? CK_DATA : CK_TRAILER_START;
            i++;
            break;
        case CK_SIZE_LF:
            if (ch != '\n')
                return -1;
            d->state = d->left != 0 ? CK_DATA : CK_TRAILER_START;
            i++;
            break;
        case CK_DATA: {
            size_t n = len - i;
            if ((uint64_t)n > d->left)
                n = (size_t)d->left;
            memmove(buf + o, buf + i, n);
            o += n;
            i += n;
            d->left -= n;
            if (d->left == 0)
                d->state = CK_DATA_CR;
            break;
        }
        case CK_DATA_CR:
            if (ch == '\r') {
                d->state = CK_DATA_LF;
            } else if (ch == '\n') {
                d->state = CK_SIZE;
                d->hex_digits = 0;
            } else {
                return -1;
            }
            i++;
            break;
        case CK_DATA_LF:
            if (ch != '\n')
                return -1;
            d->state = CK_SIZE;
            d->hex_digits = 0;
            i++;
            break;
        case CK_TRAILER_START:
            if (ch == '\r') {
                d->state = CK_TRAILER_END_LF;
            } else if (ch == '\n') {
                rc = 1;
            } else {
                d->state = CK_TRAILER_LINE;
            }
            i++;
            break;
        case CK_TRAILER_LINE:
            if (ch == '\n')
                d->state = CK_TRAILER_START;
            i++;
            break;
        case CK_TRAILER_END_LF:
            if (ch != '\n')
                return -1;
            rc = 1;
            i++;
            break;
        default:
            return -1;
        }
    }
    *out_len = o;
    *used = i;
    return rc;
}

/* ---- the pool ------------------------------------------------------------------------------- */

/* A connection slot or an idle connection may serve a waiting request: do it from the zero
 * timeout, never inside whoever freed it. */
static void pool_kick(gh_hclient_pool_t *p)
{
    pool_report(p);
    if (p->waiting_count != 0 && !h2o_timeout_is_linked(&p->kick))
        h2o_timeout_link(p->loop, p->zero_timeout, &p->kick);
}

static void conn_close(conn_t *c)
{
    gh_hclient_pool_t *p = c->pool;
    if (h2o_linklist_is_linked(&c->idle_link)) {
        h2o_linklist_unlink(&c->idle_link);
        p->idle_count--;
    }
    if (h2o_timeout_is_linked(&c->idle_timer))
        h2o_timeout_unlink(&c->idle_timer);
    if (c->sock != NULL)
        h2o_socket_close(c->sock);
    p->open_count--;
    free(c);
    pool_kick(p);
}

static void on_idle_timeout(h2o_timeout_entry_t *entry)
{
    conn_t *c = H2O_STRUCT_FROM_MEMBER(conn_t, idle_timer, entry);
    conn_close(c);
}

/* An idle connection became readable: the server closed it (or, against the protocol, sent
 * something unasked). Either way it cannot carry another request. */
static void on_idle_read(h2o_socket_t *sock, const char *err)
{
    (void)err;
    conn_close(sock->data);
}

static void conn_to_pool(conn_t *c)
{
    gh_hclient_pool_t *p = c->pool;
    c->req = NULL;
    if (p->idle_count >= p->idle_max || c->sock->input->size != 0) {
        conn_close(c);
        return;
    }
    h2o_linklist_insert(&p->idle, &c->idle_link);
    p->idle_count++;
    h2o_timeout_link(p->loop, p->idle_timeout, &c->idle_timer);
    h2o_socket_read_start(c->sock, on_idle_read);
    pool_kick(p);
}

static void on_kick(h2o_timeout_entry_t *entry);

gh_hclient_pool_t *gh_hclient_pool_new(h2o_loop_t *loop,
                                       h2o_multithread_receiver_t *getaddr_receiver,
                                       h2o_iovec_t host, uint16_t port, SSL_CTX *ssl_ctx,
                                       const char *tls_name, h2o_timeout_t *idle_timeout, h2o_timeout_t *zero_timeout,
                                       size_t idle_max, size_t open_max, int metrics_model)
{
    if (host.len == 0 || host.len >= HOST_MAX || (tls_name && strlen(tls_name) >= HOST_MAX))
        return NULL;
    gh_hclient_pool_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->loop = loop;
    p->getaddr_receiver = getaddr_receiver;
    /* h2o_url_parse keeps an IPv6 literal in its brackets. */
    const char *h = host.base;
    size_t hlen = host.len;
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    memcpy(p->host, h, hlen);
    p->host[hlen] = '\0';
    p->host_iov = h2o_iovec_init(p->host, hlen);
    snprintf(p->port_text, sizeof(p->port_text), "%u", (unsigned)port);
    p->ssl_ctx = ssl_ctx;
    snprintf(p->tls_name, sizeof(p->tls_name), "%s", tls_name ? tls_name : p->host);
    p->idle_timeout = idle_timeout;
    p->zero_timeout = zero_timeout;
    p->idle_max = idle_max;
    p->open_max = open_max;
    h2o_linklist_init_anchor(&p->idle);
    h2o_linklist_init_anchor(&p->waiting);
    p->kick.cb = on_kick;
    p->metrics_model = metrics_model;

    struct sockaddr_in *sin = (struct sockaddr_in *)&p->addr;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&p->addr;
    if (inet_pton(AF_INET, p->host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        p->addr_len = sizeof(*sin);
    } else if (inet_pton(AF_INET6, p->host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        p->addr_len = sizeof(*sin6);
    }
    return p;
}

void gh_hclient_pool_free(gh_hclient_pool_t *p)
{
    if (p == NULL)
        return;
    assert(p->waiting_count == 0);
    while (!h2o_linklist_is_empty(&p->idle))
        conn_close(H2O_STRUCT_FROM_MEMBER(conn_t, idle_link, p->idle.next));
    assert(p->open_count == 0);
    if (h2o_timeout_is_linked(&p->kick))
        h2o_timeout_unlink(&p->kick);
    pool_report(p);
    free(p);
}

size_t gh_hclient_pool_open(const gh_hclient_pool_t *p)
{
    return p->open_count;
}

size_t gh_hclient_pool_idle(const gh_hclient_pool_t *p)
{
    return p->idle_count;
}

size_t gh_hclient_pool_waiting(const gh_hclient_pool_t *p)
{
    return p->waiting_count;
}

/* ---- requests ------------------------------------------------------------------------------- */

/* Gives back a slot taken for a connection that never came to be. */
static void release_slot(gh_hclient_req_t *r)
{
    if (!r->holds_slot)
        return;
    r->holds_slot = false;
    r->pool->open_count--;
    pool_kick(r->pool);
}

static void req_free(gh_hclient_req_t *r)
{
    if (r->state == ST_WAIT && h2o_linklist_is_linked(&r->wait_link)) {
        h2o_linklist_unlink(&r->wait_link);
        r->pool->waiting_count--;
        pool_report(r->pool);
    }
    if (r->getaddr != NULL)
        h2o_hostinfo_getaddr_cancel(r->getaddr);
    release_slot(r);
    if (r->conn != NULL) {
        r->conn->req = NULL;
        conn_close(r->conn);
    }
    free(r);
}

/* Called after every callback: a request cancelled or ended inside it is finished here. The
 * caller must not touch `r` when this returns true. */
static bool after_cb(gh_hclient_req_t *r)
{
    r->in_cb--;
    if (r->in_cb != 0)
        return false;
    if (r->cancelled || r->ended) {
        req_free(r);
        return true;
    }
    return false;
}

static void fail_connect(gh_hclient_req_t *r, const char *err)
{
    r->ended = true;
    r->in_cb++;
    r->cb->on_connect(r->ctx, err);
    after_cb(r);
}

static void fail_response(gh_hclient_req_t *r, const char *err)
{
    r->ended = true;
    r->in_cb++;
    r->cb->on_error(r->ctx, err, r->state != ST_BODY);
    after_cb(r);
}

static void on_read(h2o_socket_t *sock, const char *err);
static void connect_new(gh_hclient_req_t *r);

static void on_write(h2o_socket_t *sock, const char *err)
{
    conn_t *c = sock->data;
    gh_hclient_req_t *r = c->req;
    if (r == NULL)
        return;
    if (err != NULL) {
        /* The read side reports it (a closed connection reads EOF); only note it here. */
        r->keepalive = false;
        return;
    }
    r->written = true;
}

/* The connection is ready: tell the owner, send the request and read the answer. */
static void begin_exchange(gh_hclient_req_t *r)
{
    conn_t *c = r->conn;
    r->state = ST_HEAD;
    r->got_bytes = false;
    r->written = false;
    r->keepalive = true;
    r->in_cb++;
    r->cb->on_connect(r->ctx, NULL);
    if (after_cb(r))
        return;
    h2o_socket_write(c->sock, r->bufs, r->nbufs, on_write);
    if (!r->paused)
        h2o_socket_read_start(c->sock, on_read);
}

static void on_handshake(h2o_socket_t *sock, const char *err)
{
    conn_t *c = sock->data;
    gh_hclient_req_t *r = c->req;
    assert(r != NULL);
    if (err != NULL) {
        fail_connect(r, err);
        return;
    }
    begin_exchange(r);
}

static void on_connected(h2o_socket_t *sock, const char *err)
{
    conn_t *c = sock->data;
    gh_hclient_req_t *r = c->req;
    assert(r != NULL);
    if (err != NULL) {
        fail_connect(r, err);
        return;
    }
    if (c->pool->ssl_ctx != NULL) {
        gh_hclient_pool_t *p = c->pool;
        h2o_socket_ssl_handshake(sock, p->ssl_ctx, p->tls_name, on_handshake);
        return;
    }
    begin_exchange(r);
}

static void connect_to(gh_hclient_req_t *r, struct sockaddr *addr, socklen_t addr_len)
{
    gh_hclient_pool_t *p = r->pool;
    conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        release_slot(r);
        fail_connect(r, h2o_socket_error_out_of_memory);
        return;
    }
    c->pool = p;
    c->idle_timer.cb = on_idle_timeout;
    c->sock = h2o_socket_connect(p->loop, addr, addr_len, on_connected);
    if (c->sock == NULL) {
        free(c);
        release_slot(r);
        fail_connect(r, h2o_socket_error_conn_fail);
        return;
    }
    r->holds_slot = false; /* the connection holds it now; conn_close gives it back */
    c->sock->data = c;
    c->req = r;
    r->conn = c;
    r->state = ST_CONNECT;
}

static void on_getaddr(h2o_hostinfo_getaddr_req_t *gr, const char *err, struct addrinfo *res,
                       void *data)
{
    gh_hclient_req_t *r = data;
    (void)gr;
    r->getaddr = NULL;
    if (err != NULL) {
        release_slot(r);
        fail_connect(r, err);
        return;
    }
    struct addrinfo *ai = h2o_hostinfo_select_one(res);
    connect_to(r, ai->ai_addr, ai->ai_addrlen);
}

/* Opens a new connection for `r`, which has a slot (open_count counts it). */
static void connect_new(gh_hclient_req_t *r)
{
    gh_hclient_pool_t *p = r->pool;
    r->reused = false;
    r->state = ST_RESOLVE;
    r->holds_slot = true;
    pool_report(p);
    if (p->addr_len != 0) {
        connect_to(r, (struct sockaddr *)&p->addr, p->addr_len);
        return;
    }
    r->getaddr = h2o_hostinfo_getaddr(p->getaddr_receiver, p->host_iov,
                                      h2o_iovec_init(p->port_text, strlen(p->port_text)),
                                      AF_UNSPEC, SOCK_STREAM, IPPROTO_TCP,
                                      AI_ADDRCONFIG | AI_NUMERICSERV, on_getaddr, r);
}

/* Puts `r` on an idle connection: the most recently used, the likeliest to be alive (and the
 * others may time out). */
static void take_idle(gh_hclient_req_t *r)
{
    gh_hclient_pool_t *p = r->pool;
    conn_t *c = H2O_STRUCT_FROM_MEMBER(conn_t, idle_link, p->idle.prev);
    h2o_linklist_unlink(&c->idle_link);
    p->idle_count--;
    h2o_timeout_unlink(&c->idle_timer);
    h2o_socket_read_stop(c->sock);
    c->req = r;
    r->conn = c;
    r->reused = true;
    pool_report(p);
    begin_exchange(r);
}

static bool has_room(const gh_hclient_pool_t *p)
{
    return p->open_max == 0 || p->open_count < p->open_max;
}

static void on_kick(h2o_timeout_entry_t *entry)
{
    gh_hclient_pool_t *p = H2O_STRUCT_FROM_MEMBER(gh_hclient_pool_t, kick, entry);
    while (p->waiting_count != 0 && (!h2o_linklist_is_empty(&p->idle) || has_room(p))) {
        gh_hclient_req_t *r = H2O_STRUCT_FROM_MEMBER(gh_hclient_req_t, wait_link, p->waiting.next);
        h2o_linklist_unlink(&r->wait_link);
        p->waiting_count--;
        if (!h2o_linklist_is_empty(&p->idle)) {
            take_idle(r);
        } else {
            p->open_count++;
            connect_new(r);
        }
    }
}

void gh_hclient_start(gh_hclient_req_t **slot, gh_hclient_pool_t *p, const h2o_iovec_t *bufs,
                      size_t nbufs, const gh_hclient_cb_t *cb, void *ctx)
{
    assert(nbufs <= 4);
    gh_hclient_req_t *r = calloc(1, sizeof(*r));
    *slot = r;
    if (r == NULL)
        return;
    r->pool = p;
    r->cb = cb;
    r->ctx = ctx;
    memcpy(r->bufs, bufs, nbufs * sizeof(*bufs));
    r->nbufs = nbufs;
    if (p->waiting_count == 0 && !h2o_linklist_is_empty(&p->idle)) {
        take_idle(r);
    } else if (p->waiting_count == 0 && has_room(p)) {
        p->open_count++;
        connect_new(r);
    } else {
        r->state = ST_WAIT;
        h2o_linklist_insert(&p->waiting, &r->wait_link);
        p->waiting_count++;
        pool_report(p);
    }
}

void gh_hclient_cancel(gh_hclient_req_t *r)
{
    assert(!r->ended);
    if (r->in_cb != 0) {
        r->cancelled = true;
        return;
    }
    req_free(r);
}

bool gh_hclient_waiting(const gh_hclient_req_t *r)
{
    return r->state == ST_WAIT;
}

void gh_hclient_pause(gh_hclient_req_t *r)
{
    if (r->paused)
        return;
    r->paused = true;
    if (r->conn != NULL && r->state >= ST_HEAD)
        h2o_socket_read_stop(r->conn->sock);
}

void gh_hclient_resume(gh_hclient_req_t *r)
{
    if (!r->paused)
        return;
    r->paused = false;
    if (r->conn != NULL && r->state >= ST_HEAD)
        h2o_socket_read_start(r->conn->sock, on_read);
}

/* ---- reading the response ------------------------------------------------------------------- */

static bool token_is(const struct phr_header *h, const char *name)
{
    size_t n = strlen(name);
    return h->name_len == n && strncasecmp(h->name, name, n) == 0;
}

/* Whether a comma-separated header value lists `token` (case-insensitive). */
static bool value_has(const char *v, size_t len, const char *token)
{
    size_t n = strlen(token), i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < len && v[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end - start == n && strncasecmp(v + start, token, n) == 0)
            return true;
    }
    return false;
}

/* Parses the response head in the socket's input. Returns 1 when it was read (and consumed),
 * 0 when more is needed, -1 after reporting a failure (the request has ended). */
static int read_head(gh_hclient_req_t *r)
{
    h2o_buffer_t **in = &r->conn->sock->input;
    for (;;) {
        int minor, status;
        const char *msg;
        size_t msg_len, nh = HEADERS_MAX;
        struct phr_header headers[HEADERS_MAX];
        int n = phr_parse_response((*in)->bytes, (*in)->size, &minor, &status, &msg, &msg_len,
                                   headers, &nh, 0);
        if (n == -2) {
            if ((*in)->size > HEAD_MAX) {
                fail_response(r, "response head too large");
                return -1;
            }
            return 0;
        }
        if (n < 0) {
            fail_response(r, "invalid HTTP response");
            return -1;
        }
        if (status >= 100 && status <= 199) { /* informational: the real head follows */
            h2o_buffer_consume(in, (size_t)n);
            continue;
        }
        const char *ct = "";
        size_t ct_len = 0;
        bool chunked = false, has_length = false, close = minor == 0;
        uint64_t length = 0;
        for (size_t i = 0; i < nh; i++) {
            const struct phr_header *h = &headers[i];
            if (h->name == NULL)
                continue;
            if (token_is(h, "content-type")) {
                ct = h->value;
                ct_len = h->value_len;
            } else if (token_is(h, "transfer-encoding")) {
                chunked = value_has(h->value, h->value_len, "chunked");
            } else if (token_is(h, "content-length")) {
                uint64_t v = 0;
                size_t k = 0;
                for (; k < h->value_len && h->value[k] >= '0' && h->value[k] <= '9' &&
                       v < UINT64_MAX / 16;
                     k++)
                    v = v * 10 + (uint64_t)(h->value[k] - '0');
                if (k == 0 || k != h->value_len || (has_length && v != length)) {
                    fail_response(r, "invalid content-length in the response");
                    return -1;
                }
                has_length = true;
                length = v;
            } else if (token_is(h, "connection")) {
                if (value_has(h->value, h->value_len, "close"))
                    close = true;
                else if (minor == 0 && value_has(h->value, h->value_len, "keep-alive"))
                    close = false;
            }
        }
        if (status == 204 || status == 304) {
            r->body = BODY_NONE;
        } else if (chunked) {
            r->body = BODY_CHUNKED;
            memset(&r->dechunk, 0, sizeof(r->dechunk));
        } else if (has_length) {
            r->body = length != 0 ? BODY_LENGTH : BODY_NONE;
            r->body_left = length;
        } else {
            r->body = BODY_UNTIL_CLOSE;
            close = true;
        }
        if (close)
            r->keepalive = false;
        r->state = ST_BODY;
        /* The head's bytes are consumed after the callback: ct points into them. */
        r->in_cb++;
        r->cb->on_head(r->ctx, status, ct, ct_len);
        if (after_cb(r))
            return -1;
        h2o_buffer_consume(in, (size_t)n);
        return 1;
    }
}

/* The response is complete: the connection goes back to the pool when it can, then the owner
 * hears the end. */
static void finish(gh_hclient_req_t *r, const char *data, size_t len)
{
    conn_t *c = r->conn;
    r->ended = true;
    if (r->keepalive && r->written && c->sock->input->size == 0) {
        r->conn = NULL;
        conn_to_pool(c);
    }
    r->in_cb++;
    r->cb->on_body(r->ctx, data, len, true);
    after_cb(r);
}

/* Hands the body bytes in the input to the owner. Returns false when the request ended. */
static bool read_body(gh_hclient_req_t *r)
{
    h2o_buffer_t **in = &r->conn->sock->input;
    switch (r->body) {
    case BODY_NONE:
        finish(r, "", 0);
        return false;
    case BODY_LENGTH: {
        size_t n = (*in)->size;
        if ((uint64_t)n >= r->body_left) {
            /* Copy aside: the input may be handed to the pool's next user. */
            size_t last = (size_t)r->body_left;
            char *tail = (*in)->bytes;
            if ((*in)->size > last) {
                fail_response(r, "the response has more bytes than its content-length");
                return false;
            }
            r->body_left = 0;
            r->in_cb++;
            r->cb->on_body(r->ctx, tail, last, false);
            if (after_cb(r))
                return false;
            h2o_buffer_consume(in, last);
            finish(r, "", 0);
            return false;
        }
        if (n == 0)
            return true;
        r->body_left -= n;
        r->in_cb++;
        r->cb->on_body(r->ctx, (*in)->bytes, n, false);
        if (after_cb(r))
            return false;
        h2o_buffer_consume(in, n);
        return true;
    }
    case BODY_CHUNKED: {
        if ((*in)->size == 0)
            return true;
        size_t out_len, used;
        int rc = gh_dechunk(&r->dechunk, (*in)->bytes, (*in)->size, &out_len, &used);
        if (rc < 0) {
            fail_response(r, "invalid chunked encoding in the response");
            return false;
        }
        if (rc == 1 && used != (*in)->size) {
            fail_response(r, "the response has bytes after its last chunk");
            return false;
        }
        if (out_len != 0) {
            r->in_cb++;
            r->cb->on_body(r->ctx, (*in)->bytes, out_len, false);
            if (after_cb(r))
                return false;
        }
        h2o_buffer_consume(in, used);
        if (rc == 1) {
            finish(r, "", 0);
            return false;
        }
        return true;
    }
    case BODY_UNTIL_CLOSE: {
        size_t n = (*in)->size;
        if (n == 0)
            return true;
        r->in_cb++;
        r->cb->on_body(r->ctx, (*in)->bytes, n, false);
        if (after_cb(r))
            return false;
        h2o_buffer_consume(in, n);
        return true;
    }
    }
    return false;
}

static void on_read(h2o_socket_t *sock, const char *err)
{
    conn_t *c = sock->data;
    gh_hclient_req_t *r = c->req;
    assert(r != NULL);
    if (sock->input->size != 0)
        r->got_bytes = true;

    if (r->state == ST_HEAD && sock->input->size != 0) {
        int rc = read_head(r);
        if (rc < 0)
            return;
        if (rc == 0 && err == NULL)
            return;
    }
    if (r->state == ST_BODY && !read_body(r))
        return;
    if (err == NULL)
        return;

    /* The connection ended or failed. */
    if (r->state == ST_HEAD && r->reused && !r->got_bytes && !r->retried) {
        /* The server closed the idle connection as we sent: once more on a new one. */
        r->retried = true;
        c->req = NULL;
        r->conn = NULL;
        conn_close(c);
        r->pool->open_count++; /* the closed connection's slot, taken straight back */
        connect_new(r);
        return;
    }
    if (r->state == ST_BODY && r->body == BODY_UNTIL_CLOSE) {
        r->keepalive = false;
        finish(r, "", 0);
        return;
    }
    if (r->state == ST_HEAD)
        fail_response(r, r->got_bytes ? "the connection closed within the response head"
                                       : (err == h2o_socket_error_closed
                                              ? "the connection closed before a response"
                                              : err));
    else
        fail_response(r, err == h2o_socket_error_closed ? "the connection closed mid-response"
                                                        : err);
}
