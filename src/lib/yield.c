/* Yield points (lib/yield.h). */
#include "lib/yield.h"

#include <sched.h>
#include <stdint.h>

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
