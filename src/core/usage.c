#include "core/usage.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "core/key_touch.h"
#include "lib/crc32c.h"
#include "lib/json_str.h"
#include "lib/log.h"
#include "lib/mono.h"
#include "lib/yield.h"
#include "store/store.h"

#define QUEUE_CAP 65536
#define GATHER_MIN 1024 /* a batch this large commits at once */
#define GATHER_MS 25    /* a smaller one waits this long for more */
#define BATCH_MAX GH_USAGE_BATCH_MAX /* events per transaction */
#define RECORD_MAGIC 0x47485534u /* "GHU4": GHU3's layout, checksummed with CRC-32C */
#define RECORD_MAGIC_V3 0x47485533u /* "GHU3": zlib's CRC-32; still replayed */
#define RECORD_MAGIC_V2 0x47485532u /* "GHU2": costs by token type, before them */
#define RECORD_MAGIC_V1 0x47485531u /* "GHU1", before the costs */
#define PRUNE_EVERY_S 3600 /* how often the writer prunes old minute rollups */
#define ROLL_EVERY_S 120   /* how often it rolls hour and day rollups forward (PostgreSQL) */
#define ALLOC_CHUNK (1024 * 1024) /* disk space is taken for the journal this much at a time */
#define NO_SPACE_RETRY_MS 200     /* while the disk is full, how often space is asked for again */
#define RETRY_MIN_MS 50           /* a failed commit is retried after this, doubling... */
#define RETRY_MAX_MS 2000         /* ...up to this */
#define STOP_ATTEMPTS 3           /* when stopping, failed commits give up after this many */

/* One journal record: a header and the event as it is in memory (the journal is read back only
 * by the same build's format: the magic and the record size both change with the layout). */
typedef struct {
    uint32_t magic;
    uint32_t size; /* sizeof(record_t) */
    int64_t seq;
    uint32_t crc; /* CRC32 of `ev` */
    uint32_t pad;
    gh_usage_event_t ev;
} record_t;

/* The checksum of a record's event: CRC-32C (the CPU's instruction where it has one: the
 * model path pays it on every request), or zlib's CRC-32 in a journal an older version wrote
 * (GHU3, same layout), which is still replayed after an upgrade. */
static uint32_t record_crc(uint32_t magic, const gh_usage_event_t *ev)
{
    if (magic == RECORD_MAGIC_V3)
        return (uint32_t)crc32(0L, (const unsigned char *)ev, sizeof(*ev));
    return gh_crc32c(ev, sizeof(*ev));
}

typedef struct {
    int64_t seq;
    gh_usage_event_t ev;
} queued_t;

#define LANES_MAX 4 /* writer lanes at most, whatever the store allows */

/* One journal file, open and mapped whole. */
typedef struct {
    int fd; /* -1: none */
    char *map;
    size_t size;      /* the file's size and the mapping's */
    size_t alloc_end; /* bytes of the file given disk space (posix_fallocate) */
} jfile_t;

#define JFILE_NONE ((jfile_t){.fd = -1})

typedef struct {
    struct gh_usage *u;
    int lane;
    pthread_t thread;
} lane_t;

struct gh_usage {
    gh_store_t *store;
    gh_usage_hook_t hook; /* billing's part of each commit */
    char path[1024], old_path[1040];
    char spare_path[1040];    /* <journal>.spare: a file of committed records, kept for reuse */
    char rejected_path[1040]; /* <journal>.rejected: events the database refuses (JSON lines) */

    /* The journal: a file mapped into memory, appended to with memcpy (no system call);
     * appends, wrap-around and rotation under `jlock`. `cur` is at `path`; `old`, the file
     * rotated away and not all committed yet, at `old_path` while `old_exists`; `spare`, the
     * old file once all of it was committed, at `spare_path`, still mapped, and the next
     * rotation's new file (see make_room). */
    pthread_mutex_t jlock;
    jfile_t cur, old, spare;
    size_t off; /* where the next record goes in `cur` */
    size_t reserved;  /* slots taken by gh_usage_reserve and not yet written */
    bool no_space;    /* the last attempt to get disk space failed */
    int64_t no_space_retry_ms; /* monotonic: the next attempt, not before */
    bool replay_pending; /* the start's replay failed: no journal until the writer redoes it */
    int64_t next_seq;
    int64_t appended_seq; /* highest seq written to the journal */
    bool old_exists;
    int64_t old_max_seq;

    /* The queue to the writer, under `qlock`. */
    pthread_mutex_t qlock;
    pthread_cond_t wake, idle;
    queued_t *queue;
    size_t head, count;
    bool stopping;
    bool writer_gone; /* the writer ended: flush stops waiting */
    bool failing; /* the last commit failed; the writer retries with backoff */
    int64_t committed_seq;
    gh_usage_stats_t stats;

    /* The writer's lanes (run_lane), under qlock: `taken` events from the head are in lanes'
     * batches; each batch took ticket `tickets++`, and the one whose ticket is `turn` may
     * take the write lock and commit. `abandoned`: a lane gave up while stopping. */
    int lanes;
    size_t taken;
    uint64_t tickets, turn;
    pthread_cond_t turn_cv;
    bool abandoned;
    lane_t lane[LANES_MAX]; /* [0] is the writer thread itself */

    pthread_t writer;
    bool writer_started;

    /* The keys whose last use the writer wrote lately: lanes touch it only in their turn. */
    gh_key_touch_t touched;
};

size_t gh_usage_journal_bytes = 64 * 1024 * 1024;

static void jfile_close(jfile_t *f)
{
    if (f->map != NULL)
        munmap(f->map, f->size);
    if (f->fd >= 0)
        close(f->fd);
    *f = JFILE_NONE;
}

/* Removes the spare file, if there is one. Under jlock, or before the writer starts. */
static void drop_spare(gh_usage_t *u)
{
    jfile_close(&u->spare);
    unlink(u->spare_path);
}

/* Unmaps every journal file. The old one stays on disk for the next start's replay; the
 * spare holds committed records only, so it goes. */
static void close_journal(gh_usage_t *u)
{
    jfile_close(&u->cur);
    jfile_close(&u->old);
    if (u->spare.map != NULL)
        drop_spare(u);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Creates (or empties) the journal file at its full size, sparse, and maps it. No disk space
 * is taken here: take_room asks for it (posix_fallocate) before a slot is handed out, so a
 * store into the mapping never meets a page the file system cannot provide (which would be
 * SIGBUS). */
static gh_err_t open_journal(gh_usage_t *u)
{
    u->cur.fd = open(u->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (u->cur.fd < 0)
        return GH_EIO;
    (void)fchmod(u->cur.fd, 0600); /* a journal an older version created 0644 */
    u->cur.size = gh_usage_journal_bytes;
    if (ftruncate(u->cur.fd, 0) != 0 || ftruncate(u->cur.fd, (off_t)u->cur.size) != 0)
        goto out_close;
    void *m = mmap(NULL, u->cur.size, PROT_READ | PROT_WRITE, MAP_SHARED, u->cur.fd, 0);
    if (m == MAP_FAILED)
        goto out_close;
    u->cur.map = m;
    u->off = 0;
    u->cur.alloc_end = 0;
    return GH_OK;
out_close:
    close(u->cur.fd);
    u->cur.fd = -1;
    return GH_EIO;
}

/* The journal is full of records not all committed yet: set it aside as the old file and
 * start a new one, or, when an old file is still needed (or slots of this one are reserved),
 * grow this one. Under jlock. A failed growth leaves the mapping as it was.
 *
 * The new file is the spare when there is one: the file rotated away before, all of it
 * committed since, kept mapped (trim_journal). Its pages are in the page cache and in the
 * mapping already, so the loops' appends meet no page fault; a new file's every page faulted
 * twice on the loop that first wrote into it (the kernel reading the page in, zeroed, then
 * making it writable): 4% of a loop's time while it filled a fresh file. The journal rotates
 * when the writer is behind by a whole file (a slow disk, a locked database); while it keeps
 * up, the journal wraps to its start in pages already mapped instead.
 * What the spare still holds after the new records is committed and older than them, which
 * ends a replay as the records a wrap-around leaves do. */
static gh_err_t make_room(gh_usage_t *u)
{
    if (!u->old_exists && u->reserved == 0 && rename(u->path, u->old_path) == 0) {
        u->old = u->cur;
        u->cur = JFILE_NONE;
        u->old_exists = true;
        u->old_max_seq = u->appended_seq;
        if (u->spare.map != NULL && rename(u->spare_path, u->path) == 0) {
            u->cur = u->spare;
            u->spare = JFILE_NONE;
            u->off = 0;
            return GH_OK;
        }
        drop_spare(u);
        return open_journal(u);
    }
    size_t bigger = u->cur.size * 2;
    if (ftruncate(u->cur.fd, (off_t)bigger) != 0)
        return GH_EIO;
    void *m = mremap(u->cur.map, u->cur.size, bigger, MREMAP_MAYMOVE);
    if (m == MAP_FAILED)
        return GH_EIO;
    u->cur.map = m;
    u->cur.size = bigger;
    return GH_OK;
}

/* Makes sure the journal has a place, with disk space under it, for the slots reserved and
 * one more. Under jlock. GH_EUNAVAIL while the start's replay is pending; GH_EIO when the disk
 * is full or the journal cannot be opened; while
 * the disk is full, space is asked for again at most every NO_SPACE_RETRY_MS, so a flood of
 * refused requests costs no system calls. */
static gh_err_t take_room(gh_usage_t *u)
{
    if (u->replay_pending)
        return GH_EUNAVAIL; /* nothing is journaled before the old journal is replayed */
    /* The common case: the slot fits in space already allocated (even while the disk is
     * full, as after the journal wrapped to its start). */
    if (u->cur.map != NULL && u->off + (u->reserved + 1) * sizeof(record_t) <= u->cur.alloc_end)
        return GH_OK;
    int64_t now = gh_mono_ms();
    if (u->no_space && now < u->no_space_retry_ms)
        return GH_EIO;
    if (u->cur.map == NULL) {
        /* A rotation could not open the new file, or the start could not. */
        if (open_journal(u) != GH_OK)
            goto out_no_space;
    }
    for (;;) {
        size_t need = u->off + (u->reserved + 1) * sizeof(record_t);
        if (need <= u->cur.alloc_end)
            return GH_OK;
        if (need > u->cur.size) {
            if (make_room(u) != GH_OK || u->cur.map == NULL)
                goto out_no_space;
            continue;
        }
        size_t want = (need - u->cur.alloc_end + ALLOC_CHUNK - 1) / ALLOC_CHUNK * ALLOC_CHUNK;
        if (want > u->cur.size - u->cur.alloc_end)
            want = u->cur.size - u->cur.alloc_end;
        int e = posix_fallocate(u->cur.fd, (off_t)u->cur.alloc_end, (off_t)want);
        if (e != 0) {
            errno = e;
            goto out_no_space;
        }
        u->cur.alloc_end += want;
        if (u->no_space) {
            u->no_space = false;
            gh_log_info("usage: disk space for the journal is back; the model API records "
                        "usage again");
        }
    }
out_no_space:
    if (!u->no_space)
        gh_log_error("usage: no disk space for the usage journal %s (%s); the model API "
                     "refuses requests until there is",
                     u->path, strerror(errno));
    u->no_space = true;
    u->no_space_retry_ms = now + NO_SPACE_RETRY_MS;
    return GH_EIO;
}

/* The row for event `e` of sequence `seq`; its strings point into `e`. */
static void to_row(int64_t seq, const gh_usage_event_t *e, gh_usage_row_t *row)
{
    *row = (gh_usage_row_t){
        .journal_seq = seq,
        .request_id = e->request_id,
        .org_id = e->org_id,
        .workspace_id = e->workspace_id,
        .key_id = e->key_id,
        .model = e->model,
        .requested_model = e->requested_model[0] ? e->requested_model : e->model,
        .deployment = e->deployment,
        .route = e->route,
        .created_at_ms = e->created_at_ms,
        .input_tokens = e->input_tokens,
        .output_tokens = e->output_tokens,
        .cache_creation_tokens = e->cache_creation_tokens,
        .cache_read_tokens = e->cache_read_tokens,
        .cost_nusd = e->cost_nusd,
        .input_cost_nusd = e->input_cost_nusd,
        .output_cost_nusd = e->output_cost_nusd,
        .cache_creation_cost_nusd = e->cache_creation_cost_nusd,
        .cache_read_cost_nusd = e->cache_read_cost_nusd,
        .status = e->status,
        .stream = e->stream,
        .client_disconnected = e->client_disconnected,
        .latency_us = e->latency_us,
        .upstream_us = e->upstream_us,
    };
}

/* ---- billing's part of a commit ---- */

#define CHARGE_ORGS 64 /* organizations per call of the hook; more are flushed in turns */

typedef struct {
    gh_usage_charge_t c[CHARGE_ORGS];
    size_t n;
    bool any; /* something was charged in this transaction */
} charges_t;

static gh_err_t charges_flush(const gh_usage_hook_t *hook, gh_db_t *db, charges_t *acc)
{
    gh_err_t rc = acc->n && hook->charge ? hook->charge(hook->ctx, db, acc->c, acc->n) : GH_OK;
    acc->any |= acc->n > 0;
    acc->n = 0;
    return rc;
}

/* Adds the event just inserted (when it was: a replayed event already stored is not) to its
 * organization's charge. */
static gh_err_t charges_add(const gh_usage_hook_t *hook, gh_db_t *db, charges_t *acc,
                            int64_t seq, const gh_usage_event_t *ev, bool inserted)
{
    if (!hook->charge || ev->cost_nusd <= 0 || !inserted)
        return GH_OK;
    gh_usage_charge_t *c = NULL;
    for (size_t i = 0; i < acc->n && !c; i++)
        if (!strcmp(acc->c[i].org_id, ev->org_id))
            c = &acc->c[i];
    if (!c) {
        gh_err_t rc = acc->n == CHARGE_ORGS ? charges_flush(hook, db, acc) : GH_OK;
        if (rc)
            return rc;
        c = &acc->c[acc->n++];
        snprintf(c->org_id, sizeof(c->org_id), "%s", ev->org_id);
        c->cost_nusd = 0;
        c->first_seq = seq;
    }
    c->cost_nusd += ev->cost_nusd;
    c->last_seq = seq;
    return GH_OK;
}

/* Stores the `n` records held (one gh_store_usage_insert_batch call), charges and rolls up
 * those stored now (a replayed event already stored is neither). */
static gh_err_t replay_flush(gh_db_t *db, const gh_usage_hook_t *hook, charges_t *charges,
                             const record_t *held, size_t n, gh_usage_row_t *rows, bool *stored)
{
    for (size_t i = 0; i < n; i++)
        to_row(held[i].seq, &held[i].ev, &rows[i]);
    gh_err_t rc = gh_store_usage_insert_batch(db, rows, n, stored);
    size_t inserted = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        rc = charges_add(hook, db, charges, held[i].seq, &held[i].ev, stored[i]);
        if (stored[i])
            rows[inserted++] = rows[i];
    }
    if (!rc)
        rc = gh_store_usage_settle_workspaces(db, rows, inserted);
    return rc ? rc : gh_store_rollups_add(db, rows, inserted);
}

static gh_err_t commit_sifting(gh_usage_t *u, gh_db_t *db, const queued_t *batch, size_t n,
                               gh_usage_row_t *rows, size_t *done, size_t *rejected);

/* Inserts every intact record of `path` not yet in the database (INSERT OR IGNORE: billing
 * and the rollups see only the rows actually inserted); raises *max_seq to the highest seq
 * seen. Records are in sequence order from the start of the file; after the newest ones the
 * file may still hold older records, all committed, that the journal wrapped over (it starts
 * again at the top whenever everything in it is committed): the first record whose seq does
 * not follow on ends the replay of that file, as does a zeroed, torn or foreign one (a bad
 * magic or CRC): nothing newer can follow it.
 *
 * The whole file is one transaction. With `sift`, after that failed because the database
 * refuses some record's values, each batch is its own transaction instead, committed as the
 * writer commits (commit_sifting): the refused records are set aside and the rest lands.
 * Storing is idempotent, so a second pass over records already stored changes nothing.
 * Records up to `settled` are skipped: the writer settles events in sequence order, so every
 * one up to the highest stored or set aside is one or the other. */
static gh_err_t replay_file(gh_usage_t *u, gh_db_t *db, const char *path, bool sift,
                            int64_t settled, int64_t *max_seq, int *replayed, int *damaged)
{
    const gh_usage_hook_t *hook = &u->hook;
    charges_t charges = {.n = 0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? GH_OK : GH_EIO;
    /* Records are stored BATCH_MAX at a time, as the writer stores them (they must stay in
     * memory until then: the rows point into them). */
    record_t *held = malloc(sizeof(record_t) * BATCH_MAX);
    gh_usage_row_t *rows = malloc(sizeof(gh_usage_row_t) * BATCH_MAX);
    bool *stored = malloc(sizeof(bool) * BATCH_MAX);
    queued_t *queued = sift ? malloc(sizeof(queued_t) * BATCH_MAX) : NULL;
    gh_err_t rc = held && rows && stored && (queued || !sift) ? GH_OK : GH_ENOMEM;
    if (!rc && !sift)
        rc = gh_store_begin(db);
    if (rc) {
        free(held);
        free(rows);
        free(stored);
        free(queued);
        close(fd);
        return rc;
    }
    size_t nheld = 0;
    int64_t last_seq = 0;
    record_t r;
    ssize_t n;
    for (;;) {
        bool more = (n = read(fd, &r, sizeof(r))) == (ssize_t)sizeof(r);
        if (more && r.magic == 0 && r.size == 0)
            more = false; /* the unwritten rest of the file */
        if (more && (r.magic == RECORD_MAGIC_V1 || r.magic == RECORD_MAGIC_V2)) {
            gh_log_warn("usage: %s was written by an older version; its events after seq %lld "
                        "cannot be read (stop the server cleanly before upgrading)",
                        path, (long long)*max_seq);
            more = false;
        }
        if (more && ((r.magic != RECORD_MAGIC && r.magic != RECORD_MAGIC_V3) ||
                     r.size != sizeof(r) || r.crc != record_crc(r.magic, &r.ev))) {
            /* Records have a fixed size and place, so the ones after it are still found. */
            gh_log_warn("usage: %s has a damaged record after seq %lld; it is skipped and the "
                        "intact records after it are replayed",
                        path, (long long)last_seq);
            (*damaged)++;
            continue;
        }
        if (more && r.seq <= last_seq)
            more = false; /* older records the journal wrapped over: all committed */
        if (more && r.seq <= settled) {
            last_seq = r.seq; /* committed or set aside already */
            if (r.seq > *max_seq)
                *max_seq = r.seq;
            continue;
        }
        if (more) {
            last_seq = r.seq;
            r.ev.request_id[sizeof(r.ev.request_id) - 1] = '\0'; /* never trust the file */
            r.ev.requested_model[sizeof(r.ev.requested_model) - 1] = '\0';
            r.ev.deployment[sizeof(r.ev.deployment) - 1] = '\0';
            held[nheld++] = r;
            if (r.seq > *max_seq)
                *max_seq = r.seq;
            (*replayed)++;
        }
        if (nheld == BATCH_MAX || (!more && nheld > 0)) {
            if (sift) {
                for (size_t i = 0; i < nheld; i++)
                    queued[i] = (queued_t){.seq = held[i].seq, .ev = held[i].ev};
                size_t done = 0, rejected = 0;
                rc = commit_sifting(u, db, queued, nheld, rows, &done, &rejected);
            } else {
                rc = replay_flush(db, hook, &charges, held, nheld, rows, stored);
            }
            nheld = 0;
            if (rc)
                break;
        }
        if (!more)
            break;
    }
    close(fd);
    free(held);
    free(rows);
    free(stored);
    free(queued);
    if (sift)
        return rc;
    if (!rc)
        rc = charges_flush(hook, db, &charges);
    if (rc) {
        gh_store_rollback(db);
        return rc;
    }
    rc = gh_store_commit(db);
    if (!rc && charges.any && hook->committed)
        hook->committed(hook->ctx);
    return rc;
}

/* The highest journal sequence in the quarantine file (0 when there is none): the events set
 * aside are settled, like the committed ones, and are not tried again at a start. */
static int64_t max_rejected_seq(const gh_usage_t *u)
{
    FILE *f = fopen(u->rejected_path, "re");
    if (!f)
        return 0;
    int64_t max = 0;
    char line[8192];
    static const char key[] = "{\"journal_seq\":";
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, key, sizeof(key) - 1))
            continue;
        long long v = strtoll(line + sizeof(key) - 1, NULL, 10);
        if (v > max)
            max = v;
    }
    fclose(f);
    return max;
}

/* Replays one journal file (replay_file); when the database refuses some record's values,
 * replays it again batch by batch, setting the refused records aside, rather than refusing
 * the whole file for ever. */
static gh_err_t replay_one(gh_usage_t *u, gh_db_t *db, const char *path, int64_t settled,
                           int64_t *max_seq, int *replayed, int *damaged)
{
    int64_t max_before = *max_seq;
    gh_err_t rc = replay_file(u, db, path, false, settled, max_seq, replayed, damaged);
    if (rc && gh_store_failed_on_data(db)) {
        gh_log_warn("usage: the database refuses a record of %s for its values; replaying it "
                    "batch by batch so that only the refused records are set aside",
                    path);
        *max_seq = max_before;
        *replayed = *damaged = 0;
        rc = replay_file(u, db, path, true, settled, max_seq, replayed, damaged);
    }
    return rc;
}

typedef struct {
    const char *key_id;
    size_t i; /* position in the batch */
} touch_t;

/* By key, and the latest event (the last in the batch) of each key first. */
static int cmp_touch(const void *pa, const void *pb)
{
    const touch_t *a = pa, *b = pb;
    int c = strcmp(a->key_id, b->key_id);
    return c ? c : (a->i < b->i) - (a->i > b->i);
}

/* last_used_at: once per distinct key of the batch, at its latest event (batches are in time
 * order), and only for the keys whose use is due (key_touch.h: at most once a minute of event
 * time per key), in one store call. The ids and times written are left in `ids` and `at_s`
 * (room for `n` each) and their count in `*written`, for the caller to remember once the
 * transaction committed. Sorting keeps this O(n log n) for 2,000 events and 1,000 keys. */
static gh_err_t touch_keys(gh_db_t *db, const gh_key_touch_t *kt, const queued_t *batch,
                           size_t n, const char **ids, int64_t *at_s, size_t *written)
{
    *written = 0;
    touch_t *t = malloc((n ? n : 1) * sizeof(*t));
    if (!t)
        return GH_ENOMEM;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (batch[i].ev.key_id[0])
            t[m++] = (touch_t){batch[i].ev.key_id, i};
    qsort(t, m, sizeof(*t), cmp_touch);
    size_t k = 0;
    for (size_t j = 0; j < m; j++) {
        if (j > 0 && !strcmp(t[j].key_id, t[j - 1].key_id))
            continue;
        int64_t s = batch[t[j].i].ev.created_at_ms / 1000;
        if (!gh_key_touch_due(kt, t[j].key_id, s))
            continue;
        ids[k] = t[j].key_id;
        at_s[k++] = s;
    }
    free(t);
    gh_err_t rc = gh_store_keys_touch(db, ids, at_s, k);
    if (!rc)
        *written = k;
    return rc;
}

/* One batch's transaction: its events (`n` of them from `batch`), their rows (`rows`, room
 * for `n`; after the insert, the first `inserted` are the events stored now), and the keys'
 * last use it writes (`ids` and `at_s`, room for `n`; `touched` of them). */
typedef struct {
    gh_db_t *db;
    const gh_usage_hook_t *hook;
    gh_key_touch_t *kt;
    const queued_t *batch;
    size_t n;
    gh_usage_row_t *rows;
    bool stored[BATCH_MAX];
    size_t inserted;
    const char **ids;
    int64_t *at_s;
    size_t touched;
    charges_t charges;
    bool staged; /* begun staged: the hour and day rollups wait for the write lock */
} tx_t;

/* The events and their minute rollups: all a staged transaction writes before it takes the
 * write lock (store.h, the writer's lanes). One call for the whole batch (PostgreSQL sends it
 * as one statement); only events not stored already are rolled up and, later, charged. A
 * transaction that is not staged holds the write lock already: it adds the hour and day
 * rollups in the same call, which then orders the events once for the three widths. */
static gh_err_t tx_events(tx_t *t)
{
    assert(t->n <= BATCH_MAX);
    for (size_t i = 0; i < t->n; i++)
        to_row(t->batch[i].seq, &t->batch[i].ev, &t->rows[i]);
    gh_err_t rc = gh_store_usage_insert_batch(t->db, t->rows, t->n, t->stored);
    t->inserted = 0;
    for (size_t i = 0; i < t->n && !rc; i++)
        if (t->stored[i])
            t->rows[t->inserted++] = t->rows[i];
    unsigned parts = GH_ROLLUPS_MINUTES | (t->staged ? 0 : GH_ROLLUPS_WIDER);
    return rc ? rc : gh_store_rollups_add_parts(t->db, t->rows, t->inserted, parts);
}

/* The rest, under the write lock: billing's charges, the settlement of workspace leases (a
 * cluster's), the hour and day rollups (when staged), the keys' last use (those due in
 * `kt`). */
static gh_err_t tx_rest(tx_t *t)
{
    gh_err_t rc = GH_OK;
    for (size_t i = 0; i < t->n && !rc; i++) {
        gh_yield_point();
        rc = charges_add(t->hook, t->db, &t->charges, t->batch[i].seq, &t->batch[i].ev,
                         t->stored[i]);
    }
    if (!rc)
        rc = charges_flush(t->hook, t->db, &t->charges);
    if (!rc)
        rc = gh_store_usage_settle_workspaces(t->db, t->rows, t->inserted);
    if (!rc && t->staged)
        rc = gh_store_rollups_add_parts(t->db, t->rows, t->inserted, GH_ROLLUPS_WIDER);
    if (!rc)
        rc = touch_keys(t->db, t->kt, t->batch, t->n, t->ids, t->at_s, &t->touched);
    return rc;
}

/* Commits the transaction (`rc` GH_OK so far) or rolls it back (any other); then, committed,
 * remembers the keys' last use and tells billing. On a failure `*on_data` says whether the
 * database refused the values (gh_store_failed_on_data): the same batch would fail again
 * however often it is tried. */
static gh_err_t tx_end(tx_t *t, gh_err_t rc, bool *on_data)
{
    if (rc) {
        *on_data = gh_store_failed_on_data(t->db);
        gh_store_rollback(t->db);
        return rc;
    }
    rc = gh_store_commit(t->db);
    if (rc) {
        *on_data = gh_store_failed_on_data(t->db); /* a deferred check fails at COMMIT */
        return rc;
    }
    for (size_t i = 0; i < t->touched; i++)
        gh_key_touch_written(t->kt, t->ids[i], t->at_s[i]);
    if (t->charges.any && t->hook->committed)
        t->hook->committed(t->hook->ctx);
    return GH_OK;
}

/* Readies `t` for a batch; false when out of memory (tx_free frees what was taken). */
static bool tx_init(tx_t *t, gh_db_t *db, const gh_usage_hook_t *hook, gh_key_touch_t *kt,
                    const queued_t *batch, size_t n, gh_usage_row_t *rows, bool staged)
{
    t->db = db;
    t->staged = staged;
    t->hook = hook;
    t->kt = kt;
    t->batch = batch;
    t->n = n;
    t->rows = rows;
    t->inserted = t->touched = 0;
    t->charges.n = 0;
    t->charges.any = false;
    t->ids = malloc((n ? n : 1) * sizeof(*t->ids));
    t->at_s = malloc((n ? n : 1) * sizeof(*t->at_s));
    return t->ids && t->at_s;
}

static void tx_free(tx_t *t)
{
    free(t->ids);
    free(t->at_s);
}

/* Commits `n` queued events in one transaction, with billing's charges and the rollups for
 * them, and records the keys' last use (those due in `kt`, which remembers them once
 * committed). `rows` has room for `n`. On a failure `*on_data` as tx_end says. */
static gh_err_t commit_batch(gh_db_t *db, const gh_usage_hook_t *hook, gh_key_touch_t *kt,
                             const queued_t *batch, size_t n, gh_usage_row_t *rows,
                             bool *on_data)
{
    *on_data = false;
    tx_t *t = malloc(sizeof(*t));
    if (!t)
        return GH_ENOMEM;
    gh_err_t rc =
        tx_init(t, db, hook, kt, batch, n, rows, false) ? gh_store_begin(db) : GH_ENOMEM;
    if (!rc) {
        rc = tx_events(t);
        if (!rc)
            rc = tx_rest(t);
        rc = tx_end(t, rc, on_data);
    }
    tx_free(t);
    free(t);
    return rc;
}

/* Sets aside an event the database refuses for its values: one JSON line in
 * <journal>.rejected (data_dir, mode 0600, synced), with every field, for a person to look at
 * and, once the cause is fixed, to enter again; and an error in the log. When the file
 * cannot be written, the line goes to the log instead, so the event is never lost. */
static void quarantine(gh_usage_t *u, const queued_t *q, gh_err_t why)
{
    const gh_usage_event_t *e = &q->ev;
    char rid[200], org[200], ws[200], key[200], model[800], requested[800], dep[800], route[160];
    gh_json_escape(rid, sizeof(rid), e->request_id);
    gh_json_escape(org, sizeof(org), e->org_id);
    gh_json_escape(ws, sizeof(ws), e->workspace_id);
    gh_json_escape(key, sizeof(key), e->key_id);
    gh_json_escape(model, sizeof(model), e->model);
    gh_json_escape(requested, sizeof(requested), e->requested_model);
    gh_json_escape(dep, sizeof(dep), e->deployment);
    gh_json_escape(route, sizeof(route), e->route);
    char line[6144];
    int len = snprintf(
        line, sizeof(line),
        "{\"journal_seq\":%lld,\"request_id\":\"%s\",\"created_at_ms\":%lld,\"org_id\":\"%s\","
        "\"workspace_id\":\"%s\",\"key_id\":\"%s\",\"model\":\"%s\",\"requested_model\":\"%s\","
        "\"deployment\":\"%s\",\"route\":\"%s\",\"input_tokens\":%lld,\"output_tokens\":%lld,"
        "\"cache_creation_tokens\":%lld,\"cache_read_tokens\":%lld,\"cost_nusd\":%lld,"
        "\"input_cost_nusd\":%lld,\"output_cost_nusd\":%lld,\"cache_creation_cost_nusd\":%lld,"
        "\"cache_read_cost_nusd\":%lld,\"status\":%d,\"stream\":%s,\"client_disconnected\":%s,"
        "\"latency_us\":%lld,\"upstream_us\":%lld,\"error\":\"%s\"}\n",
        (long long)q->seq, rid, (long long)e->created_at_ms, org, ws, key, model, requested, dep,
        route, (long long)e->input_tokens, (long long)e->output_tokens,
        (long long)e->cache_creation_tokens, (long long)e->cache_read_tokens,
        (long long)e->cost_nusd, (long long)e->input_cost_nusd, (long long)e->output_cost_nusd,
        (long long)e->cache_creation_cost_nusd, (long long)e->cache_read_cost_nusd, e->status,
        e->stream ? "true" : "false", e->client_disconnected ? "true" : "false",
        (long long)e->latency_us, (long long)e->upstream_us, gh_err_name(why));
    assert(len > 0 && (size_t)len < sizeof(line));
    bool kept = false;
    int fd = open(u->rejected_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
        kept = write(fd, line, (size_t)len) == (ssize_t)len && fsync(fd) == 0;
        close(fd);
    }
    if (kept)
        gh_log_error("usage: the database refuses event %lld (request %s, organization %s) for "
                     "its values (%s); the other events are committed, this one is set aside "
                     "in %s",
                     (long long)q->seq, e->request_id, e->org_id, gh_err_name(why),
                     u->rejected_path);
    else
        gh_log_error("usage: the database refuses event %lld for its values (%s) and %s cannot "
                     "be written (%s); the event is: %.*s",
                     (long long)q->seq, gh_err_name(why), u->rejected_path, strerror(errno),
                     len - 1, line);
    pthread_mutex_lock(&u->qlock);
    u->stats.rejected++;
    pthread_mutex_unlock(&u->qlock);
}

/* Commits `n` events as commit_batch does. When the database refuses the batch for the
 * values of some event (a permanent error: a constraint or check violation, a value out of
 * range), it commits the batch in halves, down to single events, so every other event lands,
 * and sets each refused event aside (quarantine). A transient failure (the database
 * unreachable, locked, timed out) is returned as it is, for the caller to retry. `*done`
 * receives how many events from the start of the batch are settled, committed or set aside
 * (all `n` on GH_OK; after a failure they need not be tried again), `*rejected` (added to)
 * how many of them were set aside. */
static gh_err_t commit_sifting(gh_usage_t *u, gh_db_t *db, const queued_t *batch, size_t n,
                               gh_usage_row_t *rows, size_t *done, size_t *rejected)
{
    bool on_data = false;
    *done = 0;
    gh_err_t rc = commit_batch(db, &u->hook, &u->touched, batch, n, rows, &on_data);
    if (!rc) {
        *done = n;
        return GH_OK;
    }
    if (!on_data)
        return rc;
    if (n == 1) {
        quarantine(u, &batch[0], rc);
        ++*rejected;
        *done = 1;
        return GH_OK;
    }
    size_t half = n / 2, second = 0;
    rc = commit_sifting(u, db, batch, half, rows, done, rejected);
    if (rc)
        return rc;
    rc = commit_sifting(u, db, batch + half, n - half, rows, &second, rejected);
    *done += second;
    return rc;
}

/* After a commit: when everything journaled is committed, the next record goes to the start
 * of the file again (what it overwrites is committed); the old file, once its events are all
 * committed, becomes the spare, which the next rotation reuses (make_room), and is removed
 * when there is one already. */
static void trim_journal(gh_usage_t *u, int64_t committed)
{
    pthread_mutex_lock(&u->jlock);
    bool all = committed >= u->appended_seq;
    if (u->old_exists && (all || committed >= u->old_max_seq)) {
        if (u->spare.map == NULL && u->old.map != NULL &&
            rename(u->old_path, u->spare_path) == 0) {
            u->spare = u->old;
            u->old = JFILE_NONE;
        } else {
            unlink(u->old_path);
            jfile_close(&u->old);
        }
        u->old_exists = false;
    }
    if (all)
        u->off = 0;
    pthread_mutex_unlock(&u->jlock);
}

/* A journal file with damaged records is kept aside, as `<path>.damaged-<UTC time>`, for a
 * person to look at; its intact records were replayed. */
static void keep_damaged(gh_usage_t *u, const char *path, int damaged)
{
    char aside[1100], when[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof(when), "%Y%m%dT%H%M%SZ", &tm);
    snprintf(aside, sizeof(aside), "%s.damaged-%s", path, when);
    if (rename(path, aside) == 0)
        gh_log_error("usage: %s had %d damaged record%s; every intact record was replayed and "
                     "the file is kept as %s",
                     path, damaged, damaged == 1 ? "" : "s", aside);
    else
        gh_log_error("usage: %s had %d damaged record%s; it cannot be kept aside (%s)", path,
                     damaged, damaged == 1 ? "" : "s", strerror(errno));
    pthread_mutex_lock(&u->qlock);
    u->stats.journals_damaged++;
    u->stats.records_damaged += (uint64_t)damaged;
    pthread_mutex_unlock(&u->qlock);
}

/* Replays both journal files (the old one first) into the database and, when that worked,
 * sets damaged files aside, removes the old one and starts a fresh journal after the highest
 * sequence seen. Runs at start and, after a failed start replay (a full disk, a locked
 * database), on the writer thread until it works; no slot is handed out meanwhile. */
static gh_err_t replay_and_open(gh_usage_t *u, gh_db_t *db, char *err, size_t err_size)
{
    int64_t committed = 0, max_seq;
    int replayed_old = 0, replayed = 0, damaged_old = 0, damaged = 0;
    gh_err_t rc = db != NULL ? gh_store_usage_max_seq(db, &committed) : GH_ESTORE;
    max_seq = committed;
    int64_t rejected = max_rejected_seq(u);
    int64_t settled = committed > rejected ? committed : rejected;
    if (rc == GH_OK)
        rc = replay_one(u, db, u->old_path, settled, &max_seq, &replayed_old, &damaged_old);
    if (rc == GH_OK)
        rc = replay_one(u, db, u->path, settled, &max_seq, &replayed, &damaged);
    if (rc != GH_OK) {
        snprintf(err, err_size, "cannot replay the usage journal %.400s (%s)", u->path,
                 gh_err_name(rc));
        return rc;
    }
    if (replayed_old + replayed)
        gh_log_info("usage: replayed %d journaled events", replayed_old + replayed);
    if (damaged_old)
        keep_damaged(u, u->old_path, damaged_old);
    if (damaged)
        keep_damaged(u, u->path, damaged);
    pthread_mutex_lock(&u->jlock);
    unlink(u->old_path);
    u->old_exists = false;
    drop_spare(u); /* all of it was committed before it was made the spare */
    if (open_journal(u)) {
        snprintf(err, err_size, "cannot open the usage journal %.400s: %s", u->path,
                 strerror(errno));
        rc = GH_EIO; /* take_room tries again when a slot is asked for */
    }
    u->next_seq = max_seq + 1;
    u->appended_seq = max_seq;
    u->replay_pending = false;
    pthread_mutex_lock(&u->qlock);
    u->committed_seq = max_seq;
    pthread_mutex_unlock(&u->qlock);
    pthread_mutex_unlock(&u->jlock);
    return rc;
}

/* Waits on `wake` until `ms` from now or until stopping. Under qlock. */
static void backoff_wait(gh_usage_t *u, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (!u->stopping)
        if (pthread_cond_timedwait(&u->wake, &u->qlock, &until) == ETIMEDOUT)
            break;
}

/* Minute rollups are kept GH_USAGE_MINUTE_RETENTION_S: once an hour (and after a start),
 * the writer deletes older ones, between two batches. */
static void prune_rollups(gh_db_t *db, int64_t *next_prune_s)
{
    int64_t now_s = (int64_t)time(NULL);
    if (now_s < *next_prune_s)
        return;
    *next_prune_s = now_s + PRUNE_EVERY_S;
    int64_t deleted = 0;
    gh_err_t rc = gh_store_rollups_prune(db, now_s / 60 * 60 - GH_USAGE_MINUTE_RETENTION_S,
                                         &deleted);
    if (rc)
        gh_log_error("usage: pruning minute rollups failed (%s)", gh_err_name(rc));
    else if (deleted)
        gh_log_info("usage: pruned %lld minute rollups past retention", (long long)deleted);
}

/* PostgreSQL rolls the hour and day rollups forward from the minute ones (store.h,
 * gh_store_rollups_roll): every ROLL_EVERY_S, after a commit, up to the minute before the
 * current one, so several minutes of a series go into its hour and day rows at once and the
 * minute being written is left alone. Any node may do it; a second finds it done. Reports
 * read the minutes not rolled yet, so this only bounds how many they read. SQLite: a no-op. */
static void roll_rollups(gh_db_t *db, int64_t *next_roll_s)
{
    int64_t now_s = (int64_t)time(NULL);
    if (now_s < *next_roll_s)
        return;
    *next_roll_s = now_s + ROLL_EVERY_S;
    gh_err_t rc = gh_store_rollups_roll(db, now_s / 60 * 60 - 60, NULL);
    if (rc)
        gh_log_error("usage: rolling the hour and day rollups forward failed (%s); the next "
                     "roll covers these minutes, reports read them meanwhile",
                     gh_err_name(rc));
}

/* ---- the writer's lanes ---- */

/* Events queued that no lane has taken yet. Under qlock. */
static size_t untaken(const gh_usage_t *u)
{
    return u->count - u->taken;
}

/* `done` events from the head of the queue are settled (committed, `rejected` of them set
 * aside): they leave the queue. Under qlock. */
static void settled(gh_usage_t *u, const queued_t *batch, size_t done, size_t rejected)
{
    assert(done <= u->taken && rejected <= done);
    if (done == 0)
        return;
    u->head = (u->head + done) % QUEUE_CAP;
    u->count -= done;
    u->taken -= done;
    u->committed_seq = batch[done - 1].seq;
    u->stats.committed += done - rejected;
    if (u->count == 0)
        pthread_cond_broadcast(&u->idle);
}

/* Commits the batch one transaction at a time (commit_sifting, the write lock from BEGIN) in
 * its turn, retrying after a failure until every event is settled. Never dropped: the events
 * stay queued (and journaled) meanwhile, and each try waits a pause that doubles up to
 * RETRY_MAX_MS, so a database locked by another process, or a full disk, only delays them.
 * False when the writer is stopping and gave up (every lane then stops, `abandoned`). */
static bool settle(gh_usage_t *u, gh_db_t *db, const queued_t *batch, size_t n,
                   gh_usage_row_t *rows, int *retry_ms, int *stop_failures)
{
    for (size_t off = 0;;) {
        size_t done = 0, rejected = 0;
        gh_err_t rc = commit_sifting(u, db, batch + off, n - off, rows, &done, &rejected);
        pthread_mutex_lock(&u->qlock);
        /* What is settled leaves the queue, even when the rest failed: an event set aside is
         * never set aside twice. */
        settled(u, batch + off, done, rejected);
        off += done;
        if (!rc) {
            pthread_mutex_unlock(&u->qlock);
            return true;
        }
        u->stats.commit_failures++;
        if (!u->failing)
            gh_log_error("usage: committing %zu events failed (%s); retrying until it works, "
                         "the events are safe in the journal",
                         n - off, gh_err_name(rc));
        u->failing = true;
        if (u->stopping && ++*stop_failures >= STOP_ATTEMPTS) {
            gh_log_error("usage: stopping with %zu events uncommitted; they stay in the "
                         "journal and are replayed at the next start",
                         u->count);
            u->abandoned = true;
            pthread_cond_broadcast(&u->turn_cv);
            pthread_cond_broadcast(&u->wake);
            pthread_mutex_unlock(&u->qlock);
            return false;
        }
        backoff_wait(u, u->stopping ? RETRY_MIN_MS : *retry_ms);
        *retry_ms = *retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : *retry_ms * 2;
        pthread_mutex_unlock(&u->qlock);
    }
}

/* A lane's loop (store.h, the writer's lanes): takes the next batch from the queue and a
 * ticket with it, writes the batch's events and minute rollups in a staged transaction (when
 * the store has several lanes and the writer is not failing), waits for its ticket's turn
 * (every batch taken before is settled), then takes the write lock and does the rest: so one
 * lane's events go in while the other's ledger draws and commit run. A staged attempt that
 * fails is rolled back and the batch settled as with one lane (settle). Batches are settled,
 * and the queue's head moves, strictly in the order they were taken. */
static void run_lane(gh_usage_t *u, int lane, gh_db_t *db, queued_t *batch,
                     gh_usage_row_t *rows, tx_t *t)
{
    int64_t next_prune_s = 0, next_roll_s = 0;
    int retry_ms = RETRY_MIN_MS, stop_failures = 0;
    for (;;) {
        pthread_mutex_lock(&u->qlock);
        while (untaken(u) == 0 && !u->stopping && !u->abandoned)
            pthread_cond_wait(&u->wake, &u->qlock);
        /* Group commit: a transaction costs about the same for one event as for hundreds,
         * so a small batch waits up to GATHER_MS for company (never when stopping). */
        if (untaken(u) > 0 && untaken(u) < GATHER_MIN && !u->stopping && !u->failing) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += GATHER_MS * 1000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            while (untaken(u) < GATHER_MIN && !u->stopping)
                if (pthread_cond_timedwait(&u->wake, &u->qlock, &until) == ETIMEDOUT)
                    break;
        }
        if (u->abandoned || (untaken(u) == 0 && u->stopping)) {
            pthread_mutex_unlock(&u->qlock);
            break;
        }
        size_t n = untaken(u) < BATCH_MAX ? untaken(u) : BATCH_MAX;
        if (n == 0) { /* another lane took them while this one gathered */
            pthread_mutex_unlock(&u->qlock);
            continue;
        }
        for (size_t i = 0; i < n; i++)
            batch[i] = u->queue[(u->head + u->taken + i) % QUEUE_CAP];
        u->taken += n;
        uint64_t ticket = u->tickets++;
        bool staged = u->lanes > 1 && !u->failing;
        pthread_mutex_unlock(&u->qlock);

        bool began = false;
        gh_err_t rc = GH_OK;
        if (staged) {
            rc = tx_init(t, db, &u->hook, &u->touched, batch, n, rows, true)
                     ? gh_store_begin_staged(db)
                     : GH_ENOMEM;
            began = rc == GH_OK;
            if (began && (rc = tx_events(t))) {
                gh_store_rollback(db);
                began = false;
            }
        }
        pthread_mutex_lock(&u->qlock);
        while (u->turn != ticket && !u->abandoned)
            pthread_cond_wait(&u->turn_cv, &u->qlock);
        bool gone = u->abandoned;
        pthread_mutex_unlock(&u->qlock);
        bool done = false;
        if (began && !gone) {
            rc = gh_store_lock_writes(db);
            if (!rc)
                rc = tx_rest(t);
            bool on_data; /* settle finds out again whether the values are refused */
            done = tx_end(t, rc, &on_data) == GH_OK;
            began = false;
            if (done) {
                pthread_mutex_lock(&u->qlock);
                settled(u, batch, n, 0);
                pthread_mutex_unlock(&u->qlock);
            }
        }
        if (began)
            gh_store_rollback(db);
        if (staged)
            tx_free(t);
        if (gone || (!done && !settle(u, db, batch, n, rows, &retry_ms, &stop_failures)))
            break;

        pthread_mutex_lock(&u->qlock);
        if (u->failing)
            gh_log_info("usage: the writer commits again (%zu events behind)", u->count);
        u->failing = false;
        retry_ms = RETRY_MIN_MS;
        stop_failures = 0;
        u->stats.batches++;
        u->stats.last_batch_size = n;
        u->turn++;
        pthread_cond_broadcast(&u->turn_cv);
        int64_t committed = u->committed_seq;
        pthread_mutex_unlock(&u->qlock);
        trim_journal(u, committed);
        if (lane == 0) {
            roll_rollups(db, &next_roll_s);
            prune_rollups(db, &next_prune_s);
        }
    }
}

/* What a lane's thread holds: its connection (the thread's) and its buffers. */
typedef struct {
    gh_db_t *db;
    queued_t *batch;
    gh_usage_row_t *rows;
    tx_t *t;
} lane_mem_t;

static bool lane_start(gh_usage_t *u, int lane, lane_mem_t *m)
{
    pthread_setname_np(pthread_self(), "gh-usage"); /* bench/run reads its CPU by this name */
    gh_yield_enable(true);
    m->db = gh_store_db(u->store);
    m->batch = malloc(sizeof(queued_t) * BATCH_MAX);
    m->rows = malloc(sizeof(gh_usage_row_t) * BATCH_MAX);
    m->t = malloc(sizeof(tx_t));
    if (m->db)
        gh_store_set_writer_lane(m->db, lane);
    return m->db && m->batch && m->rows && m->t;
}

static void lane_end(lane_mem_t *m)
{
    free(m->batch);
    free(m->rows);
    free(m->t);
}

static void *lane_main(void *arg)
{
    lane_t *l = arg;
    lane_mem_t m;
    if (lane_start(l->u, l->lane, &m))
        run_lane(l->u, l->lane, m.db, m.batch, m.rows, m.t);
    else
        gh_log_error("usage: writer lane %d cannot start; the others commit", l->lane);
    lane_end(&m);
    return NULL;
}

/* Lane 0: replays what a failed start could not, starts the other lanes, runs its own. */
static void *writer_main(void *arg)
{
    gh_usage_t *u = arg;
    lane_mem_t m;
    if (!lane_start(u, 0, &m)) {
        gh_log_error("usage: the writer cannot start; events stay in the journal until restart");
        goto out;
    }
    int retry_ms = RETRY_MIN_MS;
    /* The start's replay failed: nothing is journaled until it is redone. */
    while (u->replay_pending) {
        char err[256];
        if (replay_and_open(u, m.db, err, sizeof(err)) == GH_OK || !u->replay_pending) {
            gh_log_info("usage: the journal is replayed; the model API records usage again");
            break;
        }
        pthread_mutex_lock(&u->qlock);
        bool stop = u->stopping;
        if (!stop)
            backoff_wait(u, retry_ms);
        pthread_mutex_unlock(&u->qlock);
        if (stop)
            goto out;
        retry_ms = retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : retry_ms * 2;
    }
    /* The other lanes. The count is published first, so a lane that starts at once stages its
     * batches; should a thread not start, the count is lowered (a staged transaction is right
     * with any number of lanes, one included: it only waits for its own turn). */
    int want = gh_store_writer_lanes(u->store), lanes = 1;
    if (want > LANES_MAX)
        want = LANES_MAX;
    pthread_mutex_lock(&u->qlock);
    u->lanes = want;
    pthread_mutex_unlock(&u->qlock);
    for (int l = 1; l < want; l++) {
        u->lane[l] = (lane_t){.u = u, .lane = l};
        if (pthread_create(&u->lane[l].thread, NULL, lane_main, &u->lane[l])) {
            gh_log_error("usage: writer lane %d cannot start; %d lane%s commit", l, lanes,
                         lanes == 1 ? "" : "s");
            break;
        }
        lanes++;
    }
    pthread_mutex_lock(&u->qlock);
    u->lanes = lanes;
    pthread_cond_broadcast(&u->wake);
    pthread_mutex_unlock(&u->qlock);
    run_lane(u, 0, m.db, m.batch, m.rows, m.t);
    for (int l = 1; l < lanes; l++)
        pthread_join(u->lane[l].thread, NULL);
out:
    lane_end(&m);
    pthread_mutex_lock(&u->qlock);
    u->writer_gone = true;
    pthread_cond_broadcast(&u->idle);
    pthread_mutex_unlock(&u->qlock);
    return NULL;
}

gh_err_t gh_usage_open(gh_usage_t **out, gh_store_t *store, const char *journal_path,
                       const gh_usage_hook_t *hook, char *err, size_t err_size)
{
    gh_usage_t *u = calloc(1, sizeof(*u));
    if (!u)
        return GH_ENOMEM;
    u->store = store;
    if (hook)
        u->hook = *hook;
    u->cur = u->old = u->spare = JFILE_NONE;
    snprintf(u->path, sizeof(u->path), "%s", journal_path);
    snprintf(u->old_path, sizeof(u->old_path), "%s.1", journal_path);
    snprintf(u->spare_path, sizeof(u->spare_path), "%s.spare", journal_path);
    snprintf(u->rejected_path, sizeof(u->rejected_path), "%s.rejected", journal_path);
    pthread_mutex_init(&u->jlock, NULL);
    pthread_mutex_init(&u->qlock, NULL);
    pthread_cond_init(&u->wake, NULL);
    pthread_cond_init(&u->idle, NULL);
    pthread_cond_init(&u->turn_cv, NULL);
    gh_err_t rc = GH_ENOMEM;
    u->queue = malloc(sizeof(queued_t) * QUEUE_CAP);
    if (!u->queue)
        goto out_fail;

    /* Replay what a previous run journaled but did not commit, oldest file first. When that
     * fails (a full disk, a database locked by another process), the server still starts:
     * the console serves, the model API refuses requests (nothing could be recorded), and
     * the writer redoes the replay until it works. The journal files are left as they are
     * meanwhile, so nothing in them is lost. */
    char why[600];
    rc = replay_and_open(u, gh_store_db(store), why, sizeof(why));
    if (rc != GH_OK && u->cur.map == NULL && u->next_seq == 0) {
        gh_log_error("usage: %s; the model API refuses requests until it can be replayed, "
                     "retrying", why);
        u->replay_pending = true;
    } else if (rc != GH_OK) {
        gh_log_error("usage: %s; the model API refuses requests until it can be", why);
    }
    if (pthread_create(&u->writer, NULL, writer_main, u)) {
        snprintf(err, err_size, "cannot start the usage writer thread");
        rc = GH_EINTERNAL;
        goto out_fail;
    }
    u->writer_started = true;
    *out = u;
    return GH_OK;
out_fail:
    close_journal(u);
    free(u->queue);
    free(u);
    return rc;
}

gh_err_t gh_usage_reserve(gh_usage_t *u)
{
    pthread_mutex_lock(&u->jlock);
    gh_err_t rc = take_room(u);
    pthread_mutex_lock(&u->qlock);
    if (rc == GH_OK && u->count + u->reserved >= QUEUE_CAP)
        rc = GH_EUNAVAIL; /* the writer is that far behind: refuse rather than drop */
    if (rc == GH_OK)
        u->reserved++;
    else if (rc == GH_EUNAVAIL)
        u->stats.refused_backlog++;
    else
        u->stats.refused_no_space++;
    pthread_mutex_unlock(&u->qlock);
    pthread_mutex_unlock(&u->jlock);
    return rc;
}

void gh_usage_unreserve(gh_usage_t *u)
{
    pthread_mutex_lock(&u->jlock);
    assert(u->reserved > 0);
    u->reserved--;
    pthread_mutex_unlock(&u->jlock);
}

void gh_usage_submit_reserved(gh_usage_t *u, const gh_usage_event_t *ev)
{
    /* The record is written straight into the mapping: no copy of the event on the stack. */
    uint32_t crc = record_crc(RECORD_MAGIC, ev);

    /* Sequence, append and queue under one lock (jlock, then qlock), so the journal, the
     * queue and therefore the commits are all in sequence order: whatever is at or below the
     * highest committed sequence is committed. The copy into the shared mapping is in the
     * page cache as soon as it is made: it survives the process being killed, as a write(2)
     * would, without the system call. The reservation guarantees the place, its disk space
     * and a place in the queue. */
    pthread_mutex_lock(&u->jlock);
    assert(u->reserved > 0);
    assert(u->cur.map != NULL && u->off + sizeof(record_t) <= u->cur.alloc_end);
    u->reserved--;
    int64_t seq = u->next_seq++;
    record_t *r = (record_t *)(void *)(u->cur.map + u->off); /* off: a multiple of the size */
    r->magic = RECORD_MAGIC;
    r->size = sizeof(*r);
    r->seq = seq;
    r->crc = crc;
    r->pad = 0;
    memcpy(&r->ev, ev, sizeof(*ev));
    u->off += sizeof(*r);
    u->appended_seq = seq;

    pthread_mutex_lock(&u->qlock);
    assert(u->count < QUEUE_CAP);
    u->stats.submitted++;
    queued_t *q = &u->queue[(u->head + u->count) % QUEUE_CAP];
    q->seq = seq;
    q->ev = *ev;
    u->count++;
    /* Wake a lane only when one can act: nothing was waiting to be taken (they may all be
     * asleep), or the batch one is gathering is full. Not a system call per event. */
    if (untaken(u) == 1)
        pthread_cond_signal(&u->wake);
    else if (untaken(u) == GATHER_MIN)
        pthread_cond_broadcast(&u->wake);
    pthread_mutex_unlock(&u->qlock);
    pthread_mutex_unlock(&u->jlock);
}

gh_err_t gh_usage_submit(gh_usage_t *u, const gh_usage_event_t *ev)
{
    gh_err_t rc = gh_usage_reserve(u);
    if (rc)
        return rc;
    gh_usage_submit_reserved(u, ev);
    return GH_OK;
}

void gh_usage_flush(gh_usage_t *u)
{
    pthread_mutex_lock(&u->qlock);
    while (u->count > 0 && !u->writer_gone)
        pthread_cond_wait(&u->idle, &u->qlock);
    pthread_mutex_unlock(&u->qlock);
}

void gh_usage_stats(gh_usage_t *u, gh_usage_stats_t *out)
{
    pthread_mutex_lock(&u->jlock);
    bool no_space = u->no_space, replay_pending = u->replay_pending;
    pthread_mutex_lock(&u->qlock);
    *out = u->stats;
    out->queue_depth = u->count;
    out->oldest_age_ms = 0;
    if (u->count > 0) {
        int64_t age = now_ms() - u->queue[u->head].ev.created_at_ms;
        out->oldest_age_ms = age > 0 ? (uint64_t)age : 0;
    }
    out->writer_failing = u->failing;
    out->no_space = no_space;
    out->replay_pending = replay_pending;
    pthread_mutex_unlock(&u->qlock);
    pthread_mutex_unlock(&u->jlock);
}

bool gh_usage_healthy(gh_usage_t *u, char *why, size_t why_size)
{
    gh_usage_stats_t s;
    gh_usage_stats(u, &s);
    const char *reason = s.replay_pending ? "usage cannot be recorded: the usage journal is "
                                            "not replayed yet"
                         : s.no_space     ? "usage cannot be recorded: the disk is full"
                         : s.writer_failing ? "usage is journaled but the database does not "
                                              "take it yet (the writer retries)"
                                            : NULL;
    if (why_size)
        snprintf(why, why_size, "%s", reason ? reason : "");
    return reason == NULL;
}

void gh_usage_close(gh_usage_t *u)
{
    if (!u)
        return;
    if (u->writer_started) {
        pthread_mutex_lock(&u->qlock);
        u->stopping = true;
        pthread_cond_broadcast(&u->wake);
        pthread_mutex_unlock(&u->qlock);
        pthread_join(u->writer, NULL);
    }
    close_journal(u);
    pthread_mutex_destroy(&u->jlock);
    pthread_mutex_destroy(&u->qlock);
    pthread_cond_destroy(&u->wake);
    pthread_cond_destroy(&u->idle);
    pthread_cond_destroy(&u->turn_cv);
    free(u->queue);
    free(u);
}
