/* Which keys' last use the usage writer records now, and which it may skip.
 *
 * Writing `last_used_at` for every distinct key of every batch costs one row update per key
 * and batch (with 1,000 busy keys, as much as the events' own COPY on PostgreSQL). "Last used"
 * is shown to people, to the minute at best, so the writer records a key's use at most once
 * per GH_KEY_TOUCH_EVERY_S of event time: a key's first use in this process is written at
 * once, a later one only when it is at least GH_KEY_TOUCH_EVERY_S after the last written.
 * The stored value is therefore at most that much behind the key's real last use.
 *
 * The table remembers GH_KEY_TOUCH_SLOTS keys at most (open addressing, linear probing);
 * when three quarters are taken it is emptied, which costs one more write per key, never a
 * missed one. It belongs to one writer thread and has no lock. The writer asks
 * gh_key_touch_due before a batch and calls gh_key_touch_written only after the batch
 * committed: a rolled-back touch is not remembered. */
#ifndef GH_CORE_KEY_TOUCH_H
#define GH_CORE_KEY_TOUCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/crypto.h" /* GH_ID_MAX */

#define GH_KEY_TOUCH_EVERY_S 60
#define GH_KEY_TOUCH_SLOTS 4096 /* a power of two */

typedef struct gh_key_touch_slot {
    char key_id[GH_ID_MAX]; /* "" when free */
    int64_t written_s;      /* the event second last written for this key */
} gh_key_touch_slot_t;

typedef struct gh_key_touch {
    size_t used;
    gh_key_touch_slot_t slot[GH_KEY_TOUCH_SLOTS];
} gh_key_touch_t;

/* Empties the table (every key's next use is written). */
void gh_key_touch_init(gh_key_touch_t *t);

/* Whether a use of `key_id` at `at_s` (event time, Unix seconds) should be written: the key
 * is not remembered, or its last written use is GH_KEY_TOUCH_EVERY_S or more before `at_s`.
 * An id too long for the table is always due. */
bool gh_key_touch_due(const gh_key_touch_t *t, const char *key_id, int64_t at_s);

/* Remembers that `key_id`'s use at `at_s` is committed (never moves a key's time back). */
void gh_key_touch_written(gh_key_touch_t *t, const char *key_id, int64_t at_s);

#endif
