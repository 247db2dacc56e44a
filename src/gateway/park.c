/* Putting a model request off on its loop's timeout list (see park.h). */
#include "gateway/park.h"

/* A parked request: lives in the request's pool; the pool's end unlinks its timer, so a client
 * that goes away while parked leaves nothing behind. */
typedef struct park {
    h2o_timeout_entry_t timer;
    h2o_req_t *req;
    gh_api_kind_t api;
    gh_park_cb again;
} park_t;

static void on_park_dispose(void *p)
{
    park_t *park = p;
    if (h2o_timeout_is_linked(&park->timer))
        h2o_timeout_unlink(&park->timer);
}

static void on_park_timer(h2o_timeout_entry_t *entry)
{
    park_t *park = H2O_STRUCT_FROM_MEMBER(park_t, timer, entry);
    /* Handled again from the start: the headers the first pass put on the response (the
     * organization's and workspace's ids) would otherwise be there twice. */
    park->req->res.headers = (h2o_headers_t){NULL, 0, 0};
    park->again(park->req, park->api);
}

void gh_park_on(h2o_req_t *req, gh_api_kind_t api, h2o_timeout_t *timeout, gh_park_cb again)
{
    park_t *p = h2o_mem_alloc_shared(&req->pool, sizeof(*p), on_park_dispose);
    *p = (park_t){.timer = {0}, .req = req, .api = api, .again = again};
    p->timer.cb = on_park_timer;
    h2o_timeout_link(req->conn->ctx->loop, timeout, &p->timer);
}
