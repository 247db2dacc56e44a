/* One control-plane request and its response, as the handlers see them. The server
 * (src/http/server.c) owns the struct: it is created when the request line arrives and freed
 * after the response is sent. Strings read from it live as long as the request. */
#ifndef GH_HTTP_REQUEST_H
#define GH_HTTP_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define GH_REQ_PARAMS 4
#define GH_REQ_HEADERS 16

struct MHD_Connection;

typedef struct gh_req {
    /* Read-only for handlers. */
    const char *method;
    const char *path; /* decoded path, no query string */
    char *body;       /* NUL-terminated; NULL when the request had none */
    size_t body_len;
    char request_id[32];
    char ip[64];
    int64_t start_us;
    struct {
        char name[32];
        char value[128];
    } params[GH_REQ_PARAMS]; /* route parameters, filled by the router */
    int nparams;
    void *ctx; /* the API layer's per-request state */

    /* Private to src/http. */
    struct MHD_Connection *conn;
    bool too_big;
    size_t body_cap;
    int status;
    char *res_body; /* malloc'd, handed to libmicrohttpd */
    size_t res_len;
    struct {
        char *name, *value;
    } res_headers[GH_REQ_HEADERS];
    int res_nheaders;
    bool responded;
    /* A streamed response (gh_res_stream): read until it ends, then done(ctx). */
    long (*res_read)(void *ctx, char *buf, size_t max);
    void (*res_done)(void *ctx);
    void *res_ctx;
} gh_req_t;

/* Request accessors: NULL when absent. Header names are case-insensitive. */
const char *gh_req_header(gh_req_t *req, const char *name);
const char *gh_req_query(gh_req_t *req, const char *name);
const char *gh_req_cookie(gh_req_t *req, const char *name);
const char *gh_req_param(gh_req_t *req, const char *name);

/* Calls `fn` for every query-string argument in order, repeated names included (`value` is
 * NULL for an argument without "="). Stops early when `fn` returns false. */
typedef bool (*gh_req_arg_fn)(void *ctx, const char *name, const char *value);
void gh_req_query_each(gh_req_t *req, gh_req_arg_fn fn, void *ctx);

/* Adds a response header (copied). Silently ignores more than GH_REQ_HEADERS. */
void gh_res_header(gh_req_t *req, const char *name, const char *value);

/* Sets the response: status, content type and a copy of `len` bytes of `body`. */
void gh_res_body(gh_req_t *req, int status, const char *content_type, const void *body,
                 size_t len);

/* Responds with `json` serialized compactly; takes over the caller's reference. */
void gh_res_json(gh_req_t *req, int status, json_t *json);

/* Responds with the standard error body for `err` (status and type from the one mapping in
 * src/http/error.c) and a message formatted from `fmt`. */
void gh_res_error(gh_req_t *req, gh_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The same with an explicit status and error type, for the few cases the mapping does not
 * cover (405). */
void gh_res_error_status(gh_req_t *req, int status, const char *type, const char *message);

/* Streams the response body: after the handler returns, the server calls `read(ctx, buf,
 * max)` on its worker thread whenever it can send more; `read` may block until it has bytes
 * and returns how many it wrote (> 0), 0 at the end of the body, or -1 to cut the connection
 * (the body cannot be finished). `done(ctx)` is called exactly once when the response is over
 * (sent, cut, or never started), and owns freeing `ctx`. No content-length is sent. */
void gh_res_stream(gh_req_t *req, int status, const char *content_type,
                   long (*read)(void *ctx, char *buf, size_t max), void (*done)(void *ctx),
                   void *ctx);

/* 303 See Other to `location`. */
void gh_res_redirect(gh_req_t *req, const char *location);

/* The HTTP status and Anthropic error type for an internal error code. */
int gh_http_status_of(gh_err_t err);
const char *gh_http_error_type(int status);

#endif
