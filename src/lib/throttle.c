#include "lib/throttle.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define PROBES 16

typedef struct {
    uint64_t hash; /* 0: empty */
    int64_t window_start;
    int window_s;
    int count;
} slot_t;

struct gh_throttle {
    pthread_mutex_t lock;
    unsigned char key[crypto_shorthash_KEYBYTES];
    slot_t slots[GH_THROTTLE_SLOTS];
};

gh_err_t gh_throttle_new(gh_throttle_t **out)
{
    gh_throttle_t *t = calloc(1, sizeof(*t));
    if (!t)
        return GH_ENOMEM;
    pthread_mutex_init(&t->lock, NULL);
    crypto_shorthash_keygen(t->key);
    *out = t;
    return GH_OK;
}

void gh_throttle_free(gh_throttle_t *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->lock);
    free(t);
}

bool gh_throttle_hit(gh_throttle_t *t, const char *key, int limit, int window_s, int64_t now,
                     int *retry_after_s)
{
    unsigned char h8[crypto_shorthash_BYTES];
    crypto_shorthash(h8, (const unsigned char *)key, strlen(key), t->key);
    uint64_t h;
    memcpy(&h, h8, sizeof(h));
    if (h == 0)
        h = 1;

    pthread_mutex_lock(&t->lock);
    slot_t *found = NULL, *victim = NULL;
    bool victim_stale = false;
    size_t base = (size_t)(h % GH_THROTTLE_SLOTS);
    for (size_t i = 0; i < PROBES; i++) {
        slot_t *s = &t->slots[(base + i) % GH_THROTTLE_SLOTS];
        if (s->hash == h) {
            found = s;
            break;
        }
        /* Recycle the first empty or finished entry, or else the one whose window began
         * longest ago. */
        if (victim_stale)
            continue;
        if (s->hash == 0 || s->window_start + s->window_s <= now) {
            victim = s;
            victim_stale = true;
        } else if (!victim || s->window_start < victim->window_start) {
            victim = s;
        }
    }
    if (!found) {
        found = victim;
        found->hash = h;
        found->window_start = now;
        found->window_s = window_s;
        found->count = 0;
    } else if (found->window_start + window_s <= now) {
        found->window_start = now;
        found->window_s = window_s;
        found->count = 0;
    }
    bool ok = found->count < limit;
    if (ok)
        found->count++;
    else if (retry_after_s)
        *retry_after_s = (int)(found->window_start + window_s - now);
    pthread_mutex_unlock(&t->lock);
    return ok;
}
