/* The usage writer's memory of the keys' last written use (key_touch.h says why). */
#include "core/key_touch.h"

#include <assert.h>
#include <string.h>

#include "lib/hash.h"

static_assert((GH_KEY_TOUCH_SLOTS & (GH_KEY_TOUCH_SLOTS - 1)) == 0,
              "the slot count is a power of two");

static size_t hash_of(const char *s)
{
    return (size_t)(gh_hash_str(GH_HASH_INIT, s) & (GH_KEY_TOUCH_SLOTS - 1));
}

/* The slot holding `key_id`, or the free slot where it would go. The table is never full
 * (at most three quarters), so the probe ends. */
static size_t find(const gh_key_touch_t *t, const char *key_id)
{
    size_t i = hash_of(key_id);
    while (t->slot[i].key_id[0] && strcmp(t->slot[i].key_id, key_id))
        i = (i + 1) & (GH_KEY_TOUCH_SLOTS - 1);
    return i;
}

void gh_key_touch_init(gh_key_touch_t *t)
{
    memset(t, 0, sizeof(*t));
}

bool gh_key_touch_due(const gh_key_touch_t *t, const char *key_id, int64_t at_s)
{
    if (!key_id[0] || strlen(key_id) >= GH_ID_MAX)
        return true;
    const gh_key_touch_slot_t *s = &t->slot[find(t, key_id)];
    return !s->key_id[0] || at_s - s->written_s >= GH_KEY_TOUCH_EVERY_S;
}

void gh_key_touch_written(gh_key_touch_t *t, const char *key_id, int64_t at_s)
{
    size_t len = strlen(key_id);
    if (len == 0 || len >= GH_ID_MAX)
        return;
    size_t i = find(t, key_id);
    if (!t->slot[i].key_id[0]) {
        if (t->used >= GH_KEY_TOUCH_SLOTS / 4 * 3) {
            gh_key_touch_init(t);
            i = find(t, key_id);
        }
        memcpy(t->slot[i].key_id, key_id, len + 1);
        t->slot[i].written_s = at_s;
        t->used++;
        return;
    }
    if (at_s > t->slot[i].written_s)
        t->slot[i].written_s = at_s;
}
