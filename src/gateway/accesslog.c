/* The data plane's access log (see accesslog.h). */
#include "gateway/accesslog.h"

#include <arpa/inet.h>
#include <assert.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "gateway/shown.h"
#include "lib/json_str.h"
#include "lib/log.h"
#include "lib/proxy.h"

#define ACCESSLOG_LINE_MAX 2048
static_assert(256 + GH_SHOWN_JSON_SIZE(GH_ACCESSLOG_METHOD_MAX) +
                      GH_SHOWN_JSON_SIZE(GH_ACCESSLOG_PATH_MAX) + GH_ACCESSLOG_ID_MAX +
                      INET6_ADDRSTRLEN <
                  ACCESSLOG_LINE_MAX,
              "an access line always fits its buffer");

h2o_iovec_t gh_accesslog_path(const h2o_req_t *req)
{
    size_t len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    return h2o_iovec_init(req->path.base, len);
}

/* Every value of header `name`, joined with commas, into `buf` (NUL-terminated); NULL when
 * there is none or they do not fit. */
static const char *joined_header(const h2o_req_t *req, const char *name, size_t name_len,
                                 char *buf, size_t size)
{
    size_t len = 0;
    for (ssize_t i = -1; (i = h2o_find_header_by_str(&req->headers, name, name_len, i)) != -1;) {
        h2o_iovec_t v = req->headers.entries[i].value;
        if (len + v.len + 2 > size)
            return NULL;
        if (len)
            buf[len++] = ',';
        memcpy(buf + len, v.base, v.len);
        len += v.len;
    }
    buf[len] = '\0';
    return len && !memchr(buf, '\0', len) ? buf : NULL;
}

/* The client's address: the peer's, or for a peer in [server] trusted_proxies the one its
 * X-Forwarded-For (else Forwarded) header names (see lib/proxy.h). */
void gh_accesslog_peer_ip(const gh_config_t *cfg, h2o_req_t *req, char *dst, size_t dst_size)
{
    struct sockaddr_storage ss;
    const void *addr = NULL;
    memset(&ss, 0, sizeof(ss));
    socklen_t len = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    if (len > 0 && gh_proxy_trusted(&cfg->trusted_proxies, (struct sockaddr *)&ss)) {
        char xff[2048], fwd[2048];
        if (gh_proxy_client(&cfg->trusted_proxies,
                            joined_header(req, H2O_STRLIT("x-forwarded-for"), xff, sizeof(xff)),
                            joined_header(req, H2O_STRLIT("forwarded"), fwd, sizeof(fwd)), dst,
                            dst_size))
            return;
    }
    if (ss.ss_family == AF_INET && len >= sizeof(struct sockaddr_in))
        addr = &((const struct sockaddr_in *)&ss)->sin_addr;
    else if (ss.ss_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
        addr = &((const struct sockaddr_in6 *)&ss)->sin6_addr;
    if (addr == NULL || inet_ntop(ss.ss_family, addr, dst, (socklen_t)dst_size) == NULL)
        snprintf(dst, dst_size, "-");
}

static int64_t elapsed_us(const struct timespec *from, const struct timespec *to)
{
    int64_t us = (int64_t)(to->tv_sec - from->tv_sec) * 1000000 +
                 (int64_t)(to->tv_nsec - from->tv_nsec) / 1000;
    return us > 0 ? us : 0;
}

/* One line per request, never with headers or the query string: either can carry a key. */
void gh_accesslog_write(h2o_req_t *req, const char *id, const struct timespec *started,
                        const char *ip)
{
    struct timespec now;
    char line[ACCESSLOG_LINE_MAX];
    h2o_iovec_t path = gh_accesslog_path(req);
    int n;

    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t duration_us = elapsed_us(started, &now);

    if (gh_log_is_json()) {
        char method[GH_SHOWN_SIZE(GH_ACCESSLOG_METHOD_MAX)];
        char path_shown[GH_SHOWN_SIZE(GH_ACCESSLOG_PATH_MAX)];
        char method_json[GH_SHOWN_JSON_SIZE(GH_ACCESSLOG_METHOD_MAX)];
        char path_json[GH_SHOWN_JSON_SIZE(GH_ACCESSLOG_PATH_MAX)];
        char ts[96]; /* 24 bytes in practice; sized for any int the compiler can imagine */
        struct timespec wall;
        struct tm tm;

        gh_shown_utf8(method, req->method.base, req->method.len, GH_ACCESSLOG_METHOD_MAX);
        gh_shown_utf8(path_shown, path.base, path.len, GH_ACCESSLOG_PATH_MAX);
        gh_json_escape(method_json, sizeof(method_json), method);
        gh_json_escape(path_json, sizeof(path_json), path_shown);
        clock_gettime(CLOCK_REALTIME, &wall);
        gmtime_r(&wall.tv_sec, &tm);
        snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 wall.tv_nsec / 1000000);
        n = snprintf(line, sizeof(line),
                     "{\"ts\":\"%s\",\"level\":\"info\",\"plane\":\"api\",\"request_id\":\"%s\","
                     "\"method\":\"%s\",\"path\":\"%s\",\"status\":%d,\"duration_us\":%" PRId64
                     ",\"ip\":\"%s\"}",
                     ts, id, method_json, path_json, req->res.status, duration_us, ip);
    } else {
        char method[GH_SHOWN_TEXT_SIZE(GH_ACCESSLOG_METHOD_MAX)];
        char path_text[GH_SHOWN_TEXT_SIZE(GH_ACCESSLOG_PATH_MAX)];
        gh_shown_text(method, req->method.base, req->method.len, GH_ACCESSLOG_METHOD_MAX);
        gh_shown_text(path_text, path.base, path.len, GH_ACCESSLOG_PATH_MAX);
        n = snprintf(line, sizeof(line), "api %s %s %s %d %" PRId64 "us %s", id, method,
                     path_text, req->res.status, duration_us, ip);
    }
    if (n < 0)
        return;
    assert(n < (int)sizeof(line));
    gh_log_raw(line, n);
}

