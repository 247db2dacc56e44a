/* Yield points (lib/yield.h). */
#include "lib/yield.h"

#include <sched.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/mono.h"

static _Thread_local bool enabled;
static _Thread_local int64_t last_us;

void gh_yield_enable(bool on)
{
    enabled = on;
    last_us = gh_mono_us();
}

void gh_yield_point(void)
{
    if (!enabled)
        return;
    int64_t now = gh_mono_us();
    if (now - last_us < GH_YIELD_EVERY_US)
        return;
    sched_yield();
    last_us = gh_mono_us();
}

/* The kernel's struct sched_attr (include/uapi/linux/sched/types.h); glibc before 2.41 has no
 * wrapper for sched_setattr or sched_getattr. */
typedef struct {
    uint32_t size;
    uint32_t sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime; /* a normal thread's slice, since Linux 6.12 */
    uint64_t sched_deadline;
    uint64_t sched_period;
    uint32_t sched_util_min;
    uint32_t sched_util_max;
} sched_attr_t;

bool gh_yield_long_slice(void)
{
    sched_attr_t a = {0};
    if (syscall(SYS_sched_getattr, 0, &a, sizeof(a), 0) != 0 ||
        (a.sched_policy != SCHED_OTHER && a.sched_policy != SCHED_BATCH))
        return false;
    a.size = sizeof(a);
    a.sched_flags = 0;
    a.sched_runtime = GH_YIELD_LONG_SLICE_NS;
    if (syscall(SYS_sched_setattr, 0, &a, 0) != 0)
        return false;
    sched_attr_t back = {0};
    return syscall(SYS_sched_getattr, 0, &back, sizeof(back), 0) == 0 &&
           back.sched_runtime == GH_YIELD_LONG_SLICE_NS;
}
