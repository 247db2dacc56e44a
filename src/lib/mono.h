/* Waiting on the monotonic clock: condition variables whose timed waits count on
 * CLOCK_MONOTONIC (so a change of the wall clock neither shortens nor stretches a wait), and
 * the absolute deadline such a wait takes. Every background thread that sleeps until it is
 * woken or its period ends (the usage writer's gathering, the billing scheduler, the lease
 * threads, the health checker, the connection reaper, the store's pool) uses these two; and
 * the monotonic clock's readings that every module measures time with. */
#ifndef GH_LIB_MONO_H
#define GH_LIB_MONO_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Now on CLOCK_MONOTONIC, in milliseconds and in microseconds: for deadlines, periods and
 * durations, which a change of the wall clock must not move. */
int64_t gh_mono_ms(void);
int64_t gh_mono_us(void);

/* pthread_cond_init with the monotonic clock. Returns pthread_cond_init's result. */
int gh_mono_cond_init(pthread_cond_t *cond);

/* The moment `ms` milliseconds (>= 0) from now on CLOCK_MONOTONIC, for
 * pthread_cond_timedwait on a condition variable made by gh_mono_cond_init. */
void gh_mono_deadline(struct timespec *ts, int64_t ms);

#endif
