/* The model catalogue the data plane serves at GET /v1/models and GET /v1/models/{id}, in
 * Anthropic's shapes: every configured model (the models an organization may use are all of
 * them today), in configuration order. The JSON of each model and of the whole list is
 * rendered once at start, so answering is a lookup and, for a page, a copy.
 *
 * A catalogue is built on the main thread before the loop threads start and is read-only
 * afterwards, so every loop reads it without a lock. Its owner (the gateway) frees it after
 * the loops are gone. It keeps a pointer to the configuration, which must outlive it. */
#ifndef GH_GATEWAY_CATALOG_H
#define GH_GATEWAY_CATALOG_H

#include <stdbool.h>
#include <stddef.h>

#include <h2o.h>

#include "lib/config.h"
#include "lib/err.h"

typedef struct gh_catalog gh_catalog_t;

/* Renders the catalogue of cfg->models into `*out`. GH_ENOMEM leaves nothing allocated. */
gh_err_t gh_catalog_new(gh_catalog_t **out, const gh_config_t *cfg);

/* Safe with NULL. */
void gh_catalog_free(gh_catalog_t *cat);

/* The model object of the model named exactly `id` (`id_len` bytes, not NUL-terminated):
 * true with `*body` and `*len` pointing into the catalogue, false when there is none. */
bool gh_catalog_one(const gh_catalog_t *cat, const char *id, size_t id_len, const char **body,
                    size_t *len);

/* One page of the list, with Anthropic's paging from `query` (the query string after the
 * '?', possibly empty): `limit` (1 to 1000, default 20) models after `after_id` or before
 * `before_id`. GH_OK with the page in `*body` and `*len` (the catalogue's own list, or a copy
 * allocated in `pool`); GH_EINVAL with a message for the client in `msg` when a parameter is
 * wrong. */
gh_err_t gh_catalog_page(const gh_catalog_t *cat, h2o_iovec_t query, h2o_mem_pool_t *pool,
                         const char **body, size_t *len, char *msg, size_t msg_size);

#endif
