/* Fixed-window request counters in memory, for throttling abuse-prone control-plane calls
 * (sign-in links per address and per IP). Bounded: a table of GH_THROTTLE_SLOTS entries,
 * keys hashed with a per-process secret (SipHash) so nobody can aim collisions at a victim's
 * slot; when a neighbourhood is full the stalest entry is recycled. Thread-safe. */
#ifndef GH_LIB_THROTTLE_H
#define GH_LIB_THROTTLE_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"

#define GH_THROTTLE_SLOTS 65536

typedef struct gh_throttle gh_throttle_t;

gh_err_t gh_throttle_new(gh_throttle_t **out);
void gh_throttle_free(gh_throttle_t *t);

/* Counts one hit for `key` in the current window of `window_s` seconds at time `now` and
 * returns true if the count is still within `limit`. When it is not, the hit is not counted,
 * and `*retry_after_s` (if not NULL) receives the seconds until the window ends. */
bool gh_throttle_hit(gh_throttle_t *t, const char *key, int limit, int window_s, int64_t now,
                     int *retry_after_s);

#endif
