#include "core/state.h"
#include "store/store.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Open addressing over the hash's first 8 bytes (already uniformly random: it is a SHA-256).
 * The table doubles at 50% load; entries are never removed (a key's status changes instead),
 * which keeps probing simple. */
typedef struct {
    bool used;
    unsigned char hash[GH_KEY_HASH_BYTES];
    gh_key_entry_t entry;
} slot_t;

struct gh_state {
    pthread_rwlock_t lock;
    /* Serializes syncs, each a read of the store then a write here, so that the read made
     * last is the one written last; the data plane never takes it. */
    pthread_mutex_t sync_lock;
    slot_t *slots;
    size_t cap, count;
};

gh_err_t gh_state_new(gh_state_t **out)
{
    gh_state_t *st = calloc(1, sizeof(*st));
    if (!st)
        return GH_ENOMEM;
    st->cap = 1024;
    st->slots = calloc(st->cap, sizeof(slot_t));
    if (!st->slots) {
        free(st);
        return GH_ENOMEM;
    }
    pthread_rwlock_init(&st->lock, NULL);
    pthread_mutex_init(&st->sync_lock, NULL);
    *out = st;
    return GH_OK;
}

void gh_state_free(gh_state_t *st)
{
    if (!st)
        return;
    pthread_rwlock_destroy(&st->lock);
    pthread_mutex_destroy(&st->sync_lock);
    free(st->slots);
    free(st);
}

static size_t home(const unsigned char *hash, size_t cap)
{
    uint64_t h;
    memcpy(&h, hash, sizeof(h));
    return (size_t)(h & (cap - 1));
}

/* The slot holding `hash`, or the empty slot where it would go. Caller holds the lock. */
static slot_t *probe(slot_t *slots, size_t cap, const unsigned char *hash)
{
    for (size_t i = home(hash, cap);; i = (i + 1) & (cap - 1))
        if (!slots[i].used || !memcmp(slots[i].hash, hash, GH_KEY_HASH_BYTES))
            return &slots[i];
}

static gh_err_t grow(gh_state_t *st)
{
    size_t cap = st->cap * 2;
    slot_t *slots = calloc(cap, sizeof(slot_t));
    if (!slots)
        return GH_ENOMEM;
    for (size_t i = 0; i < st->cap; i++)
        if (st->slots[i].used)
            *probe(slots, cap, st->slots[i].hash) = st->slots[i];
    free(st->slots);
    st->slots = slots;
    st->cap = cap;
    return GH_OK;
}

/* Writes one key; caller holds the write lock. */
static gh_err_t put(gh_state_t *st, const unsigned char *hash, const gh_key_entry_t *e)
{
    if ((st->count + 1) * 2 > st->cap) {
        gh_err_t rc = grow(st);
        if (rc)
            return rc;
    }
    slot_t *s = probe(st->slots, st->cap, hash);
    if (!s->used) {
        s->used = true;
        memcpy(s->hash, hash, GH_KEY_HASH_BYTES);
        st->count++;
    }
    s->entry = *e;
    return GH_OK;
}

/* Rows read from the store, applied afterwards under the write lock. */
typedef struct {
    slot_t *rows; /* `used` unset: only hash and entry matter */
    size_t n, cap;
    gh_err_t rc;
} load_t;

static void on_key(void *ctx, const gh_key_rec_t *k, const char *hash_hex)
{
    load_t *l = ctx;
    if (l->rc)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        slot_t *rows = realloc(l->rows, cap * sizeof(*rows));
        if (!rows) {
            l->rc = GH_ENOMEM;
            return;
        }
        l->rows = rows;
        l->cap = cap;
    }
    slot_t *r = &l->rows[l->n];
    size_t n = 0;
    if (sodium_hex2bin(r->hash, sizeof(r->hash), hash_hex, strlen(hash_hex), NULL, &n, NULL) ||
        n != sizeof(r->hash)) {
        l->rc = GH_ESTORE;
        return;
    }
    gh_key_entry_t *e = &r->entry;
    memset(e, 0, sizeof(*e));
    snprintf(e->key_id, sizeof(e->key_id), "%s", k->id);
    snprintf(e->org_id, sizeof(e->org_id), "%s", k->org_id);
    snprintf(e->workspace_id, sizeof(e->workspace_id), "%s", k->workspace_id);
    snprintf(e->status, sizeof(e->status), "%s", k->status);
    l->n++;
}

/* Reads keys from the store first, without the data plane's lock (on PostgreSQL that is a
 * round trip, and a full reload reads every key), then writes them under the write lock,
 * which the data plane's readers therefore wait for only as long as the copies take. */
static gh_err_t sync(gh_state_t *st, gh_db_t *db, const char *workspace_id, const char *key_id)
{
    load_t l = {NULL, 0, 0, GH_OK};
    pthread_mutex_lock(&st->sync_lock);
    gh_err_t rc = gh_store_keys_with_hash(db, workspace_id, key_id, on_key, &l);
    if (!rc)
        rc = l.rc;
    if (!rc) {
        pthread_rwlock_wrlock(&st->lock);
        for (size_t i = 0; i < l.n && !rc; i++)
            rc = put(st, l.rows[i].hash, &l.rows[i].entry);
        pthread_rwlock_unlock(&st->lock);
    }
    pthread_mutex_unlock(&st->sync_lock);
    free(l.rows);
    return rc;
}

gh_err_t gh_state_load(gh_state_t *st, gh_db_t *db)
{
    return sync(st, db, NULL, NULL);
}

gh_err_t gh_state_sync_key(gh_state_t *st, gh_db_t *db, const char *key_id)
{
    return st ? sync(st, db, NULL, key_id) : GH_OK;
}

gh_err_t gh_state_sync_workspace(gh_state_t *st, gh_db_t *db, const char *workspace_id)
{
    return st ? sync(st, db, workspace_id, NULL) : GH_OK;
}

gh_err_t gh_state_key_find(gh_state_t *st, const unsigned char hash[GH_KEY_HASH_BYTES],
                           gh_key_entry_t *out)
{
    gh_err_t rc = GH_ENOTFOUND;
    pthread_rwlock_rdlock(&st->lock);
    slot_t *s = probe(st->slots, st->cap, hash);
    if (s->used) {
        *out = s->entry;
        rc = GH_OK;
    }
    pthread_rwlock_unlock(&st->lock);
    return rc;
}

size_t gh_state_key_count(gh_state_t *st)
{
    pthread_rwlock_rdlock(&st->lock);
    size_t n = st->count;
    pthread_rwlock_unlock(&st->lock);
    return n;
}
