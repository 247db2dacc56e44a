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
 * a yield point costs one thread-local read.
 *
 * The other side: a thread that must answer at once (an event loop) asks for short time slices
 * with gh_yield_short_slice(). Linux's EEVDF scheduler (6.12 and later) gives a thread with a
 * shorter slice an earlier deadline, so when it wakes on a core that a thread with the default
 * slice holds it preempts that thread at once, instead of waiting for that thread's slice to
 * end or for its next yield point; CPU shares (weights, nice) are not changed. Older kernels
 * take the request and ignore it. */
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

/* The slice gh_yield_short_slice asks for, in nanoseconds: the shortest Linux allows. */
#define GH_YIELD_SHORT_SLICE_NS 100000

/* Asks the scheduler for GH_YIELD_SHORT_SLICE_NS slices for the calling thread, keeping its
 * policy and nice value. Returns whether the kernel took it (reads it back): false on a kernel
 * without custom slices for normal threads, which is harmless. */
bool gh_yield_short_slice(void);

#endif
