/* A thread's cache of freed blocks by size class: see blockcache.h. */
#include "lib/blockcache.h"

#include <stdint.h>
#include <stdlib.h>

void *gh_blockcache_get(gh_blockcache_t *bc, size_t size, size_t *got)
{
    if (size > SIZE_MAX - GH_BLOCKCACHE_CLASS)
        return NULL;
    size_t class = (size + GH_BLOCKCACHE_CLASS - 1) / GH_BLOCKCACHE_CLASS * GH_BLOCKCACHE_CLASS;
    if (class == 0)
        class = GH_BLOCKCACHE_CLASS;
    /* The most recently kept first: the likeliest to be in the CPU's cache. */
    for (size_t i = bc->count; i-- > 0;) {
        if (bc->kept[i].size != class)
            continue;
        void *block = bc->kept[i].block;
        bc->kept[i] = bc->kept[--bc->count];
        *got = class;
        return block;
    }
    void *block = malloc(class);
    *got = block != NULL ? class : 0;
    return block;
}

void gh_blockcache_put(gh_blockcache_t *bc, void *block, size_t size)
{
    if (block == NULL)
        return;
    if (bc->count == GH_BLOCKCACHE_MAX) {
        free(block);
        return;
    }
    bc->kept[bc->count].block = block;
    bc->kept[bc->count].size = size;
    bc->count++;
}

void gh_blockcache_clear(gh_blockcache_t *bc)
{
    for (size_t i = 0; i < bc->count; i++)
        free(bc->kept[i].block);
    bc->count = 0;
}
