#include "http/server.h"

#include "http/conns.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/crypto.h"
#include "lib/framing.h"
#include "lib/json_str.h"
#include "lib/proxy.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/mono.h"

struct gh_http_server {
    const gh_config_t *cfg;
    struct MHD_Daemon *daemon;
    gh_http_handler_fn fn;
    void *ctx;
    int port;
    int fd; /* the listening socket, ours until libmicrohttpd takes it */
    pthread_mutex_t lock;
    pthread_cond_t idle;
    int active; /* requests between their first byte and their completion */
    gh_conns_t *conns; /* per-address cap and request deadlines; NULL before start */
    atomic_bool quiesced; /* gh_http_quiesce ran: no new connections; `deadline` is set */
    struct timespec deadline; /* the end of the grace period */
};

/* ---- request accessors ---- */

const char *gh_req_header(gh_req_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *gh_req_query(gh_req_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

typedef struct {
    gh_req_arg_fn fn;
    void *ctx;
} arg_visit_t;

static enum MHD_Result visit_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (void)kind;
    arg_visit_t *v = cls;
    return v->fn(v->ctx, key, value) ? MHD_YES : MHD_NO;
}

void gh_req_query_each(gh_req_t *req, gh_req_arg_fn fn, void *ctx)
{
    arg_visit_t v = {fn, ctx};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, visit_arg, &v);
}

const char *gh_req_cookie(gh_req_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_COOKIE_KIND, name);
}

const char *gh_req_param(gh_req_t *req, const char *name)
{
    for (int i = 0; i < req->nparams; i++)
        if (!strcmp(req->params[i].name, name))
            return req->params[i].value;
    return NULL;
}

void gh_res_header(gh_req_t *req, const char *name, const char *value)
{
    if (req->res_nheaders >= GH_REQ_HEADERS)
        return;
    char *n = strdup(name), *v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return;
    }
    req->res_headers[req->res_nheaders].name = n;
    req->res_headers[req->res_nheaders].value = v;
    req->res_nheaders++;
}

static void set_body(gh_req_t *req, int status, char *owned, size_t len)
{
    free(req->res_body);
    req->res_body = owned;
    req->res_len = len;
    req->status = status;
    req->responded = true;
}

void gh_res_body(gh_req_t *req, int status, const char *content_type, const void *body,
                 size_t len)
{
    char *copy = malloc(len ? len : 1);
    if (!copy) {
        set_body(req, 500, NULL, 0);
        return;
    }
    if (len)
        memcpy(copy, body, len);
    gh_res_header(req, "content-type", content_type);
    set_body(req, status, copy, len);
}

void gh_res_json(gh_req_t *req, int status, json_t *json)
{
    char *text = json ? json_dumps(json, JSON_COMPACT) : NULL;
    json_decref(json);
    if (!text) {
        static const char fallback[] =
            "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"Out of "
            "memory.\"}}";
        gh_res_body(req, 500, "application/json", fallback, sizeof(fallback) - 1);
        return;
    }
    gh_res_header(req, "content-type", "application/json");
    set_body(req, status, text, strlen(text));
}

void gh_res_redirect(gh_req_t *req, const char *location)
{
    gh_res_header(req, "location", location);
    set_body(req, 303, NULL, 0);
}

void gh_res_stream(gh_req_t *req, int status, const char *content_type,
                   long (*read)(void *ctx, char *buf, size_t max), void (*done)(void *ctx),
                   void *ctx)
{
    assert(read && done);
    gh_res_header(req, "content-type", content_type);
    set_body(req, status, NULL, 0);
    if (req->res_done) /* a handler that streams twice: the first stream is never sent */
        req->res_done(req->res_ctx);
    req->res_read = read;
    req->res_done = done;
    req->res_ctx = ctx;
}

/* ---- the server ---- */

static void req_free(gh_req_t *req)
{
    if (req->res_done) /* a stream that libmicrohttpd never took */
        req->res_done(req->res_ctx);
    free(req->body);
    free(req->res_body);
    for (int i = 0; i < req->res_nheaders; i++) {
        free(req->res_headers[i].name);
        free(req->res_headers[i].value);
    }
    free(req);
}

typedef struct {
    const char *name;
    char *buf;
    size_t size, len;
    bool truncated;
} header_join_t;

static enum MHD_Result join_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    header_join_t *j = cls;
    if (strcasecmp(key, j->name) || !value)
        return MHD_YES;
    size_t need = strlen(value) + (j->len ? 1 : 0);
    if (j->len + need >= j->size) {
        j->truncated = true;
        return MHD_NO;
    }
    if (j->len)
        j->buf[j->len++] = ',';
    memcpy(j->buf + j->len, value, strlen(value) + 1);
    j->len += strlen(value);
    return MHD_YES;
}

/* Every value of header `name`, joined with commas in the order received, into `buf`; NULL
 * when there is none, or when they do not fit (a forwarding header cut short would name the
 * wrong hop as nearest). */
static const char *joined_header(struct MHD_Connection *c, const char *name, char *buf,
                                 size_t size)
{
    header_join_t j = {name, buf, size, 0, false};
    buf[0] = '\0';
    MHD_get_connection_values(c, MHD_HEADER_KIND, join_header, &j);
    return j.len && !j.truncated ? buf : NULL;
}

/* The client's address: the peer's, or for a peer in [server] trusted_proxies the one its
 * X-Forwarded-For (else Forwarded) header names (see lib/proxy.h). */
static void client_ip(const gh_config_t *cfg, struct MHD_Connection *c, char *out, size_t size)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, size, "-");
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (gh_proxy_trusted(&cfg->trusted_proxies, sa)) {
        char xff[2048], fwd[2048];
        if (gh_proxy_client(&cfg->trusted_proxies,
                            joined_header(c, "x-forwarded-for", xff, sizeof(xff)),
                            joined_header(c, "forwarded", fwd, sizeof(fwd)), out, size))
            return;
    }
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)size);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)size);
}

/* The connection guard's record of `c` (see conns.h), or NULL. */
static gh_conn_t *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* A streamed body handed to libmicrohttpd, which owns it from then on (it may free the
 * response after the request is gone). */
typedef struct {
    long (*read)(void *ctx, char *buf, size_t max);
    void (*done)(void *ctx);
    void *ctx;
} stream_t;

/* libmicrohttpd's reader for a streamed response: -1 ends the body, -2 cuts it. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    stream_t *s = cls;
    long n = s->read(s->ctx, buf, max);
    return n > 0 ? (ssize_t)n : n == 0 ? MHD_CONTENT_READER_END_OF_STREAM
                                        : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void stream_free(void *cls)
{
    stream_t *s = cls;
    s->done(s->ctx);
    free(s);
}

static enum MHD_Result send_response(gh_http_server_t *srv, gh_req_t *req)
{
    if (!req->responded)
        gh_res_error(req, GH_EINTERNAL, "The server produced no response.");
    struct MHD_Response *r;
    if (req->res_read) {
        stream_t *st = malloc(sizeof(*st));
        if (!st)
            return MHD_NO; /* req_free still calls done */
        *st = (stream_t){req->res_read, req->res_done, req->res_ctx};
        req->res_read = NULL;
        req->res_done = NULL;
        req->res_ctx = NULL;
        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_read, st,
                                              stream_free);
        if (!r) {
            stream_free(st);
            return MHD_NO;
        }
    } else {
        r = MHD_create_response_from_buffer(req->res_len, req->res_body, MHD_RESPMEM_MUST_FREE);
        if (!r)
            return MHD_NO;
        req->res_body = NULL; /* libmicrohttpd frees it now */
    }
    MHD_add_response_header(r, "request-id", req->request_id);
    MHD_add_response_header(r, "x-content-type-options", "nosniff");
    bool has_cache = false;
    for (int i = 0; i < req->res_nheaders; i++) {
        MHD_add_response_header(r, req->res_headers[i].name, req->res_headers[i].value);
        has_cache |= !strcasecmp(req->res_headers[i].name, "cache-control");
    }
    if (!has_cache)
        MHD_add_response_header(r, "cache-control", "no-store");
    /* Draining: a kept-alive connection carries no further request, so nothing new starts on
     * the console once it stops accepting. */
    if (atomic_load(&srv->quiesced))
        MHD_add_response_header(r, "connection", "close");
    enum MHD_Result ok = MHD_queue_response(req->conn, (unsigned)req->status, r);
    MHD_destroy_response(r);
    return ok;
}

/* ---- framing ---- */

/* Stands in for a header value libmicrohttpd gives as NULL; it is not in the read buffer. */
static const char no_value[] = "";

typedef struct {
    gh_framing_header_t h[GH_FRAMING_HEADERS_MAX];
    size_t n;
    bool overflow;
} framing_list_t;

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    framing_list_t *l = cls;
    if (l->n == GH_FRAMING_HEADERS_MAX) {
        l->overflow = true;
        return MHD_NO;
    }
    l->h[l->n++] = (gh_framing_header_t){key, key_size, value ? value : no_value,
                                         value ? value_size : 0};
    return MHD_YES;
}

#if MHD_VERSION <= 0x00097500
/* libmicrohttpd 0.9.75 silently joins an obs-fold continuation line onto the previous header
 * (onto its name, in fact) and cuts a header value at a NUL, so neither can be seen in the
 * strings it hands out. It parses the head in place, though: each header line of the read
 * buffer becomes "name\0 value\0" (then a second \0 for CRLF), one line after the other. A
 * joined header is copied elsewhere and a NUL leaves bytes between one line's value and the
 * next line's name, so checking that every header sits where that layout puts it finds both.
 * The check only reads bytes between pointers that it has first found to be close together
 * in the one memory pool of the connection. Returns false when the layout is broken. */
static bool headers_in_place(const framing_list_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        const gh_framing_header_t *h = &l->h[i];
        uintptr_t name_end = (uintptr_t)h->name + h->name_len + 1; /* past the colon's \0 */
        uintptr_t value = (uintptr_t)h->value;
        if (h->value == no_value)
            continue;
        if (value < name_end || value - name_end > 256)
            return false;
        for (const char *p = h->name + h->name_len + 1; p < h->value; p++)
            if (*p != ' ' && *p != '\t')
                return false;
        uintptr_t value_end = value + h->value_len; /* the \0 that replaced CR or LF */
        if (i + 1 < l->n) {
            uintptr_t next = (uintptr_t)l->h[i + 1].name;
            if (next != value_end + 1 && next != value_end + 2)
                return false;
            if (next == value_end + 2 && h->value[h->value_len + 1] != '\0')
                return false;
        } else if (h->value[h->value_len + 1] != '\0') {
            return false; /* bytes after a NUL in the last header */
        }
    }
    return true;
}
#endif

/* Returns 0, or the status (400, 501) for a request whose framing could be read two ways,
 * with the message in `msg`. See lib/framing.h for the rules. */
static int check_framing(struct MHD_Connection *c, const char *version, char *msg,
                         size_t msg_size)
{
    framing_list_t l;
    l.n = 0;
    l.overflow = false;
    MHD_get_connection_values_n(c, MHD_HEADER_KIND, collect_header, &l);
    if (l.overflow) {
        snprintf(msg, msg_size, "The request has more than %d headers.",
                 GH_FRAMING_HEADERS_MAX);
        return 400;
    }
#if MHD_VERSION <= 0x00097500
    if (!headers_in_place(&l)) {
        snprintf(msg, msg_size,
                 "A header contains a NUL byte or is folded over several lines (obs-fold); "
                 "send each header on one line.");
        return 400;
    }
#endif
    return gh_framing_check(l.h, l.n, version && !strcmp(version, "HTTP/1.1"), msg, msg_size);
}

/* Runs the handler. A request that met an unreachable database (gh_err_db_unavailable)
 * answers 503 "the database is unavailable" in place of whatever error its handler made of
 * the store's answer (a 500 "could not load", a 404 for a row it could not read): the client
 * is told to retry, and nothing is reported missing that is not. */
static void handle(gh_http_server_t *srv, gh_req_t *req)
{
    gh_err_clear_db_unavailable();
    srv->fn(req, srv->ctx);
    if (!gh_err_db_unavailable() || req->res_read || (req->responded && req->status < 400))
        return;
    for (int i = 0; i < req->res_nheaders; i++) {
        free(req->res_headers[i].name);
        free(req->res_headers[i].value);
    }
    req->res_nheaders = 0;
    gh_res_error_status(req, 503, "api_error", "The database is unavailable, try again shortly.");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls)
{
    gh_http_server_t *srv = cls;
    gh_req_t *req = *con_cls;

    if (!req) {
        req = calloc(1, sizeof(*req));
        if (!req)
            return MHD_NO;
        req->conn = c;
        req->method = method;
        req->path = url;
        req->start_us = gh_mono_us();
        memcpy(req->request_id, "req_01", 6);
        gh_random_base62(req->request_id + 6, 22);
        client_ip(srv->cfg, c, req->ip, sizeof(req->ip));
        *con_cls = req;
        pthread_mutex_lock(&srv->lock);
        srv->active++;
        pthread_mutex_unlock(&srv->lock);
        gh_metrics_console_active_add(1);

        /* Ambiguous framing is refused before a byte of the body is read; the answer closes
         * the connection, so nothing after the head is ever read as a request. */
        char msg[GH_FRAMING_MSG_SIZE];
        int status = check_framing(c, version, msg, sizeof(msg));
        if (status) {
            gh_res_error_status(req, status,
                                status == 400 ? "invalid_request_error" : "api_error", msg);
            gh_res_header(req, "connection", "close");
            req->too_big = true; /* discard whatever of the body still arrives */
            gh_conns_set_busy(srv->conns, conn_of(c), true);
            return send_response(srv, req);
        }

        /* A declared length over the limit is refused before a byte of it is read. */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "content-length");
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno || *end || n > srv->cfg->max_body_bytes) {
                gh_res_error(req, GH_ETOOBIG,
                             "The request body is larger than the limit of %zu bytes.",
                             srv->cfg->max_body_bytes);
                req->too_big = true; /* discard whatever of the body still arrives */
                return send_response(srv, req);
            }
        }
        return MHD_YES;
    }

    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (req->too_big)
            return MHD_YES;
        if (req->body_len + n > srv->cfg->max_body_bytes) {
            req->too_big = true;
            free(req->body);
            req->body = NULL;
            req->body_len = 0;
            return MHD_YES;
        }
        if (req->body_len + n + 1 > req->body_cap) {
            size_t cap = req->body_cap ? req->body_cap : 4096;
            while (cap < req->body_len + n + 1)
                cap *= 2;
            char *nb = realloc(req->body, cap);
            if (!nb)
                return MHD_NO;
            req->body = nb;
            req->body_cap = cap;
        }
        memcpy(req->body + req->body_len, upload_data, n);
        req->body_len += n;
        req->body[req->body_len] = '\0';
        return MHD_YES;
    }

    if (req->responded) /* already answered (413 on the declared length) */
        return MHD_YES;
    /* The request has arrived in full: from here it is ours, and no deadline cuts it. */
    gh_conns_set_busy(srv->conns, conn_of(c), true);
    if (req->too_big)
        gh_res_error(req, GH_ETOOBIG, "The request body is larger than the limit of %zu bytes.",
                     srv->cfg->max_body_bytes);
    else
        handle(srv, req);
    return send_response(srv, req);
}

static void access_log(gh_http_server_t *srv, gh_req_t *req)
{
    char line[1024];
    int64_t us = gh_mono_us() - req->start_us;
    char path[400];
    gh_json_escape(path, sizeof(path), req->path);
    int n;
    if (gh_log_is_json()) {
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        char ts[32];
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
        n = snprintf(line, sizeof(line),
                     "{\"ts\":\"%s\",\"level\":\"info\",\"plane\":\"console\",\"request_id\":"
                     "\"%s\",\"method\":\"%s\",\"path\":\"%s\",\"status\":%d,"
                     "\"duration_us\":%lld,\"ip\":\"%s\"}",
                     ts, req->request_id, req->method, path, req->status, (long long)us,
                     req->ip);
    } else {
        n = snprintf(line, sizeof(line), "console %s %s %s %d %lldus %s", req->request_id,
                     req->method, path, req->status, (long long)us, req->ip);
    }
    (void)srv;
    if (n > 0)
        gh_log_raw(line, n < (int)sizeof(line) ? n : (int)sizeof(line) - 1);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    gh_http_server_t *srv = cls;
    gh_req_t *req = *con_cls;
    if (!req)
        return;
    *con_cls = NULL;
    if (srv->cfg->access_log && req->responded)
        access_log(srv, req);
    req_free(req);
    gh_conns_set_busy(srv->conns, conn_of(c), false); /* the next request's deadline starts */
    gh_metrics_console_active_add(-1);
    pthread_mutex_lock(&srv->lock);
    if (--srv->active == 0)
        pthread_cond_broadcast(&srv->idle);
    pthread_mutex_unlock(&srv->lock);
}

/* Trusted proxies carry many clients over their connections: no per-address cap for them. */
static bool is_trusted_proxy(void *ctx, const struct sockaddr *sa)
{
    return gh_proxy_trusted(ctx, sa);
}

static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    (void)addrlen;
    gh_http_server_t *srv = cls;
    return gh_conns_admit(srv->conns, addr) ? MHD_YES : MHD_NO;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    gh_http_server_t *srv = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *addr =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const union MHD_ConnectionInfo *fd =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = fd ? gh_conns_open(srv->conns, addr ? addr->client_addr : NULL,
                                             fd->connect_fd)
                             : NULL;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        gh_conns_close(srv->conns, *socket_context);
        *socket_context = NULL;
    }
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    /* A client that goes away mid-request, or one cut by the request deadline (counted in
     * one line of its own), is routine: one warning each would let any client fill the log. */
    if (!strncmp(msg, "Connection socket is closed", 27) ||
        !strncmp(msg, "Connection was closed by remote side", 36)) {
        gh_log_debug("http: %s", msg);
        return;
    }
    gh_log_warn("http: %s", msg);
}

gh_err_t gh_http_bind(gh_http_server_t **out, const gh_config_t *cfg, gh_http_handler_fn fn,
                      void *ctx, char *err, size_t err_size)
{
    char host[128];
    int port;
    if (gh_config_split_addr(cfg->listen, host, sizeof(host), &port)) {
        snprintf(err, err_size, "bad listen address %s", cfg->listen);
        return GH_EINVAL;
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t sslen;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        sslen = sizeof(*sin);
    } else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        sslen = sizeof(*sin6);
    } else {
        snprintf(err, err_size, "listen address %s is not a numeric IP address", cfg->listen);
        return GH_EINVAL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, err_size, "socket: %s", strerror(errno));
        return GH_EIO;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sslen) || listen(fd, 1024)) {
        snprintf(err, err_size, "cannot listen on %s: %s", cfg->listen, strerror(errno));
        close(fd);
        return GH_EIO;
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    getsockname(fd, (struct sockaddr *)&bound, &blen);

    gh_http_server_t *srv = calloc(1, sizeof(*srv));
    if (!srv) {
        close(fd);
        return GH_ENOMEM;
    }
    srv->cfg = cfg;
    srv->fn = fn;
    srv->ctx = ctx;
    srv->fd = fd;
    srv->port = ntohs(bound.ss_family == AF_INET6
                          ? ((struct sockaddr_in6 *)&bound)->sin6_port
                          : ((struct sockaddr_in *)&bound)->sin_port);
    pthread_mutex_init(&srv->lock, NULL);
    pthread_cond_init(&srv->idle, NULL);
    *out = srv;
    return GH_OK;
}

gh_err_t gh_http_start(gh_http_server_t *srv, char *err, size_t err_size)
{
    const gh_config_t *cfg = srv->cfg;
    if (gh_conns_new(&srv->conns, cfg->max_connections_per_ip, cfg->request_timeout_ms,
                     is_trusted_proxy, (void *)&cfg->trusted_proxies)) {
        snprintf(err, err_size, "cannot start the connection guard");
        return GH_EIO;
    }
    srv->daemon = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG, 0, on_accept, srv,
        on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET,
        srv->fd, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->threads,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_CONNECTION_TIMEOUT, 60u,
        MHD_OPTION_CONNECTION_LIMIT, 4096u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)64 * 1024, MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv, MHD_OPTION_END);
    if (!srv->daemon) {
        snprintf(err, err_size, "cannot serve on %s: libmicrohttpd refused to start",
                 cfg->listen);
        return GH_EIO;
    }
    return GH_OK;
}

int gh_http_port(const gh_http_server_t *srv)
{
    return srv->port;
}

void gh_http_quiesce(gh_http_server_t *srv)
{
    if (!srv || !srv->daemon || atomic_load(&srv->quiesced))
        return;
    /* Closing the listening socket now makes new connections fail at once instead of waiting
     * in the backlog for a server that will never accept them. */
    MHD_socket lfd = MHD_quiesce_daemon(srv->daemon);
    if (lfd != MHD_INVALID_SOCKET)
        close(lfd);
    struct timespec *deadline = &srv->deadline;
    clock_gettime(CLOCK_REALTIME, deadline);
    deadline->tv_sec += srv->cfg->shutdown_grace_ms / 1000;
    deadline->tv_nsec += (long)(srv->cfg->shutdown_grace_ms % 1000) * 1000000L;
    if (deadline->tv_nsec >= 1000000000L) {
        deadline->tv_sec++;
        deadline->tv_nsec -= 1000000000L;
    }
    atomic_store(&srv->quiesced, true);
}

void gh_http_stop(gh_http_server_t *srv)
{
    if (!srv)
        return;
    if (!srv->daemon) {
        close(srv->fd);
        goto out_free;
    }
    gh_http_quiesce(srv);
    pthread_mutex_lock(&srv->lock);
    while (srv->active > 0)
        if (pthread_cond_timedwait(&srv->idle, &srv->lock, &srv->deadline) == ETIMEDOUT)
            break;
    if (srv->active > 0)
        gh_log_warn("http: %d requests still running after the grace period", srv->active);
    pthread_mutex_unlock(&srv->lock);
    MHD_stop_daemon(srv->daemon);
out_free:
    gh_conns_free(srv->conns); /* after the daemon: every connection is closed now */
    pthread_mutex_destroy(&srv->lock);
    pthread_cond_destroy(&srv->idle);
    free(srv);
}
