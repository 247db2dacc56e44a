#include "lib/embed.h"

#include <string.h>

const gh_embed_t *gh_embed_find(const gh_embed_t *table, const char *name)
{
    for (const gh_embed_t *e = table; e->name; e++)
        if (!strcmp(e->name, name))
            return e;
    return NULL;
}
