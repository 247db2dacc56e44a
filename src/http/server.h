/* The control-plane HTTP server: libmicrohttpd with epoll and a thread pool. It reads each
 * request whole (bounded by max_body_bytes; larger bodies get 413 without being read), hands
 * it to one handler, sends the response with a request-id header and writes one access-log
 * line. Handlers may block (on SQLite, SMTP): that is why the pool exists. */
#ifndef GH_HTTP_SERVER_H
#define GH_HTTP_SERVER_H

#include <stddef.h>

#include "http/request.h"
#include "lib/config.h"

typedef struct gh_http_server gh_http_server_t;

/* Called once per complete request; must set a response (gh_res_*) before returning. */
typedef void (*gh_http_handler_fn)(gh_req_t *req, void *ctx);

/* Binds cfg->listen (port 0 picks a free port) without serving yet, so the caller can learn
 * the port (gh_http_port) and finish its configuration first. Keeps a pointer to `cfg`. On
 * failure writes a message into `err`. */
gh_err_t gh_http_bind(gh_http_server_t **out, const gh_config_t *cfg, gh_http_handler_fn fn,
                      void *ctx, char *err, size_t err_size);

/* The TCP port actually bound. */
int gh_http_port(const gh_http_server_t *srv);

/* Starts serving with cfg->threads workers. On failure the server is still bound and must be
 * released with gh_http_stop. */
gh_err_t gh_http_start(gh_http_server_t *srv, char *err, size_t err_size);

/* Stops accepting (new connections are refused at once) and starts the grace period of
 * cfg->shutdown_grace_ms; returns at once, so both planes can drain at the same time. Safe
 * with NULL and more than once. */
void gh_http_quiesce(gh_http_server_t *srv);

/* Stops accepting (when gh_http_quiesce did not), waits until the end of the grace period at
 * most for requests in progress to finish, then stops the workers and frees the server. Safe
 * with NULL. */
void gh_http_stop(gh_http_server_t *srv);

#endif
