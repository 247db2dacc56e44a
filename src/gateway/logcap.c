/* The cap on access-log lines of refused requests (see logcap.h). */
#include "gateway/logcap.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "lib/hash.h"

/* The string hash with a per-process seed mixed in: addresses are chosen by clients, so the
 * slot an address lands in must not be predictable (a fixed hash would let one client keep
 * evicting another's slot and so reset its count). */
static uint64_t hash_address(uint64_t seed, const char *address)
{
    return gh_hash_mix(gh_hash_str(GH_HASH_INIT ^ seed, address));
}

void gh_logcap_init(gh_logcap_t *c, uint64_t seed)
{
    memset(c, 0, sizeof(*c));
    c->seed = seed;
    c->second = -1;
}

static void take_summary(gh_logcap_summary_t *out, const char *address, uint64_t *count)
{
    snprintf(out->address, sizeof(out->address), "%s", address);
    out->count = *count;
    *count = 0;
}

bool gh_logcap_admit(gh_logcap_t *c, const char *address, int64_t now_s,
                     gh_logcap_summary_t summaries[2])
{
    memset(summaries, 0, 2 * sizeof(*summaries));
    uint64_t h = hash_address(c->seed, address);
    gh_logcap_slot_t *s = &c->slots[h % GH_LOGCAP_SLOTS];

    if (s->hash != h || strcmp(s->address, address) != 0) {
        if (s->suppressed)
            take_summary(&summaries[0], s->address, &s->suppressed);
        s->hash = h;
        snprintf(s->address, sizeof(s->address), "%s", address);
        s->second = now_s;
        s->lines = 0;
    } else if (s->second != now_s) {
        if (s->suppressed)
            take_summary(&summaries[0], s->address, &s->suppressed);
        s->second = now_s;
        s->lines = 0;
    }
    if (c->second != now_s) {
        if (c->suppressed)
            take_summary(&summaries[1], "", &c->suppressed);
        c->second = now_s;
        c->lines = 0;
    }
    if (s->lines >= GH_LOGCAP_PER_ADDRESS) {
        s->suppressed++;
        return false;
    }
    if (c->lines >= GH_LOGCAP_PER_LOOP) {
        c->suppressed++;
        return false;
    }
    s->lines++;
    c->lines++;
    assert(s->lines <= GH_LOGCAP_PER_ADDRESS && c->lines <= GH_LOGCAP_PER_LOOP);
    return true;
}
