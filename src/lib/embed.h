/* Files compiled into the binary by tools/embed.c: the console's static files
 * (gh_embed_assets, named like "/index.html") and the SQL migrations (gh_embed_migrations,
 * named like "/0001_init.sql") of each store backend. The arrays end with an all-zero entry. */
#ifndef GH_LIB_EMBED_H
#define GH_LIB_EMBED_H

#include <stddef.h>

typedef struct gh_embed {
    const char *name;
    const unsigned char *data; /* followed by a NUL not counted in len */
    size_t len;
} gh_embed_t;

extern const gh_embed_t gh_embed_assets[];
extern const unsigned long gh_embed_assets_count;
extern const gh_embed_t gh_embed_migrations[];
extern const unsigned long gh_embed_migrations_count;
/* The PostgreSQL store's migrations (src/store/postgres/migrations), named the same way. */
extern const gh_embed_t gh_embed_pg_migrations[];
extern const unsigned long gh_embed_pg_migrations_count;

/* The entry named `name` in `table`, or NULL. */
const gh_embed_t *gh_embed_find(const gh_embed_t *table, const char *name);

#endif
