/* A handful of freed heap blocks kept by one thread for reuse, by size class.
 *
 * Why: the gateway allocates one block per relayed request (the call: its state, usage event,
 * metering buffer and rewritten body, about 5 KiB) and frees it when the request ends. That is
 * past the size glibc's per-thread cache serves, so each pair went through the arena's bins
 * (a large-bin search, a coalescing free): about 1% of a loop's time under load. A block of
 * the same class freed a moment ago serves the next request instead.
 *
 * Sizes are rounded up to GH_BLOCKCACHE_CLASS bytes; a block is reused only for a request of
 * exactly its class, so no request holds much more than it asked for (what a held stream
 * costs in memory is a measured figure, bench/README.md). At most GH_BLOCKCACHE_MAX blocks
 * are kept; more are freed. Not thread-safe: one cache per thread (per event loop). */
#ifndef GH_LIB_BLOCKCACHE_H
#define GH_LIB_BLOCKCACHE_H

#include <stddef.h>

#define GH_BLOCKCACHE_MAX 16
#define GH_BLOCKCACHE_CLASS 512

typedef struct gh_blockcache {
    size_t count;
    struct {
        void *block;
        size_t size; /* its class: a multiple of GH_BLOCKCACHE_CLASS */
    } kept[GH_BLOCKCACHE_MAX];
} gh_blockcache_t; /* zero-initialized: empty */

/* A block of at least `size` bytes (uninitialized), and in `*got` the size to hand back to
 * gh_blockcache_put with it; NULL when out of memory. */
void *gh_blockcache_get(gh_blockcache_t *bc, size_t size, size_t *got);

/* Takes back `block` (NULL: nothing) of the `size` gh_blockcache_get gave: kept, or freed
 * when the cache is full. */
void gh_blockcache_put(gh_blockcache_t *bc, void *block, size_t size);

/* Frees every block kept. */
void gh_blockcache_clear(gh_blockcache_t *bc);

#endif
