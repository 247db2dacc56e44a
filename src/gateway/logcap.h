/* A cap on the access-log lines that refused requests (4xx) may write, per client address and
 * per loop, so that no client can make the log grow as fast as it can send requests: without
 * it, one connection pipelining requests to an unknown path wrote a line for each. Past the
 * cap, refused requests are counted instead of logged, and the count is written as one
 * summary line when the address's next second begins. Answered requests (2xx, 5xx) are always
 * logged: they are paid for or are our own failures.
 *
 * One gh_logcap_t per event loop, touched only by that loop's thread: no lock. Bounded: a
 * fixed table of GH_LOGCAP_SLOTS addresses, keyed by a seeded hash; an address that collides
 * takes over the slot (and the summary of what it held is handed out first). */
#ifndef GH_GATEWAY_LOGCAP_H
#define GH_GATEWAY_LOGCAP_H

#include <stdbool.h>
#include <stdint.h>

#define GH_LOGCAP_SLOTS 1024
/* Lines for refused requests one address may write in one second. */
#define GH_LOGCAP_PER_ADDRESS 20
/* Lines for refused requests one loop may write in one second, all addresses together. */
#define GH_LOGCAP_PER_LOOP 500
#define GH_LOGCAP_ADDRESS_SIZE 46 /* INET6_ADDRSTRLEN */

typedef struct gh_logcap_slot {
    uint64_t hash;
    int64_t second;
    uint32_t lines;
    uint64_t suppressed;
    char address[GH_LOGCAP_ADDRESS_SIZE];
} gh_logcap_slot_t;

typedef struct gh_logcap {
    uint64_t seed;
    int64_t second;   /* the loop-wide window */
    uint32_t lines;   /* lines written in it */
    uint64_t suppressed; /* refused requests not logged in it because of the loop-wide cap */
    gh_logcap_slot_t slots[GH_LOGCAP_SLOTS];
} gh_logcap_t;

/* What was not logged, to be written as one summary line. `address` is empty for the loop-wide
 * cap. `count` is 0 when there is nothing to write. */
typedef struct gh_logcap_summary {
    char address[GH_LOGCAP_ADDRESS_SIZE];
    uint64_t count;
} gh_logcap_summary_t;

/* Clears `c` and draws its hash seed. */
void gh_logcap_init(gh_logcap_t *c, uint64_t seed);

/* Counts one refused request from `address` at `now_s` (any monotonic seconds) and returns
 * whether its line may be written. `summaries[0]` receives what one address (this one, or
 * the one whose slot it takes) had left unlogged in its last window, and `summaries[1]` what
 * the loop-wide cap left unlogged in the last second, each to be written once now. */
bool gh_logcap_admit(gh_logcap_t *c, const char *address, int64_t now_s,
                     gh_logcap_summary_t summaries[2]);

#endif
