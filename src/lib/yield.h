/* Yield points: a background thread whose bursts of work share a core with the event loops
 * gives the core up, now and then, inside a long burst.
 *
 * The usage writer commits a batch in one burst of CPU (0.5-1 ms on SQLite every 25 ms at a
 * few thousand requests a second). A loop woken on the same core meanwhile waits for the
 * writer's time slice to end rather than preempting it, and that wait was most of the model
 * path's p99 at one connection (bench/README.md). A thread that calls gh_yield_enable(true)
 * and then gh_yield_point() inside its loops yields the core (sched_yield) once it has run
 * GH_YIELD_EVERY_US since it last did: a runnable loop on that core runs at once, and when
 * nothing else wants the core the call returns at once. In other threads, and until enabled,
 * a yield point costs one thread-local read. */
#ifndef GH_LIB_YIELD_H
#define GH_LIB_YIELD_H

#include <stdbool.h>

/* How long a burst runs between yields, in microseconds of the monotonic clock. */
#define GH_YIELD_EVERY_US 50

/* Turns the calling thread's yield points on (or off). */
void gh_yield_enable(bool on);

/* Yields the core when the calling thread has yield points on and has run GH_YIELD_EVERY_US
 * since its last yield (or since it enabled them). */
void gh_yield_point(void);

#endif
