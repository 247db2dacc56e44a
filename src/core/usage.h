/* Usage events: one per model request, with its token counts and cost, written to the store
 * by the writer in batches (group commit), never by the thread that served the request.
 *
 * Durability: a request first reserves its journal slot (gh_usage_reserve: the place in the
 * mapped journal file, disk space under it taken with posix_fallocate, and a place in the
 * writer's queue); a request that cannot have one is refused before anything is relayed. At
 * its end, gh_usage_submit_reserved copies the event into the journal (a memcpy into the
 * shared mapping, no fsync: the page cache survives the process being killed) and queues it;
 * that cannot fail. The writer commits queued events with their journal sequence; at start,
 * gh_usage_open replays journal records the database has not seen. So an event is never
 * lost, never counted twice, and a request is never served unrecorded.
 *
 * Faults: a full disk makes gh_usage_reserve refuse until space returns (asked again every
 * 200 ms); a failed commit (a database locked by another process, a full disk) is retried
 * with backoff, never dropped, the events safe in the journal; a failed replay at start is
 * redone by the writer while the model API refuses; a journal file with damaged records is
 * kept aside as `<path>.damaged-<time>` after every intact record is replayed. */
#ifndef GH_CORE_USAGE_H
#define GH_CORE_USAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/crypto.h"
#include "lib/err.h"

/* The store's handles (store/store.h), used here only by pointer. */
typedef struct gh_store gh_store_t;
typedef struct gh_db gh_db_t;

typedef struct gh_usage gh_usage_t;

typedef struct gh_usage_event {
    char request_id[32];
    int64_t created_at_ms; /* when the request arrived, Unix milliseconds */
    char org_id[GH_ID_MAX];
    char workspace_id[GH_ID_MAX];
    char key_id[GH_ID_MAX];
    char model[128];           /* the model that served (a fallback's, when one did) */
    char requested_model[128]; /* the model the client asked for */
    char deployment[128];      /* the upstream URL that served (cut); "" for the mock */
    char route[24];          /* "messages", "chat.completions", "count_tokens" */
    int64_t input_tokens;    /* uncached input */
    int64_t output_tokens;
    int64_t cache_creation_tokens;
    int64_t cache_read_tokens;
    int64_t cost_nusd;       /* the sum of the four costs below */
    int64_t input_cost_nusd; /* each token type at the model's price */
    int64_t output_cost_nusd;
    int64_t cache_creation_cost_nusd;
    int64_t cache_read_cost_nusd;
    int status;              /* HTTP status sent to the client */
    bool stream;
    bool client_disconnected;
    int64_t latency_us;      /* arrival to last byte */
    int64_t upstream_us;     /* time spent waiting on the upstream (latency_us minus ours) */
} gh_usage_event_t;

typedef struct gh_usage_stats {
    uint64_t submitted;
    uint64_t committed;
    uint64_t batches;
    uint64_t queue_depth;
    uint64_t last_batch_size;
    uint64_t oldest_age_ms;     /* age of the oldest uncommitted event (0: none) */
    uint64_t commit_failures;   /* failed commits, each retried */
    uint64_t refused_no_space;  /* reservations refused: no disk space for the journal */
    uint64_t refused_backlog;   /* reservations refused: the writer's queue is full */
    uint64_t journals_damaged;  /* journal files with damaged records, kept aside */
    uint64_t records_damaged;
    uint64_t rejected;          /* events the database refused for their values, set aside */
    bool writer_failing;        /* the last commit failed; retrying */
    bool no_space;              /* the journal cannot get disk space */
    bool replay_pending;        /* the start's replay failed; the writer retries it */
} gh_usage_stats_t;

/* The journal file's size (it is mapped whole, and grows only when the writer falls this far
 * behind). Tests may lower it before gh_usage_open. */
extern size_t gh_usage_journal_bytes;

/* What a commit costs one organization: the sum of the costs of its events that went into
 * the database in that transaction, and the journal sequences they span. */
typedef struct gh_usage_charge {
    char org_id[GH_ID_MAX];
    int64_t cost_nusd;
    int64_t first_seq, last_seq;
} gh_usage_charge_t;

/* Billing's part of every commit (installed by the application; see src/core/billing.h).
 * `charge` runs inside the transaction that inserts the events, on every path that inserts
 * them (the writer and the journal replay at start), with only the events that were actually
 * inserted and cost something, so each event is charged exactly when it is stored: an error
 * rolls the whole commit back. `committed` runs after such a commit, outside the
 * transaction, and must not block. Either may be NULL. */
typedef struct gh_usage_hook {
    gh_err_t (*charge)(void *ctx, gh_db_t *db, const gh_usage_charge_t *charges, size_t n);
    void (*committed)(void *ctx);
    void *ctx;
} gh_usage_hook_t;

/* Opens the journal at `journal_path`, replays what the database has not seen, and starts
 * the writer: one thread per lane the store has (gh_store_writer_lanes: one on SQLite, two on
 * PostgreSQL), each on its own connection to `store`. Lanes take batches from the queue in
 * turn; a batch's events and minute rollups are written while the batch before it holds the
 * write lock, and batches commit strictly in the order taken. `hook` (copied; may be NULL)
 * runs on every commit, the replay included, one commit at a time. */
gh_err_t gh_usage_open(gh_usage_t **out, gh_store_t *store, const char *journal_path,
                       const gh_usage_hook_t *hook, char *err, size_t err_size);

/* Takes one journal slot for an event to be submitted later. Thread-safe; never waits on SQL
 * (it asks the file system for space once per megabyte of journal). GH_EIO when the journal
 * has no disk space (or cannot be opened), GH_EUNAVAIL when the writer's queue is full or the
 * journal of the last run is not replayed yet; the caller refuses the request then. */
gh_err_t gh_usage_reserve(gh_usage_t *u);

/* Gives back a slot that will not be used (the request ended before it became an event). */
void gh_usage_unreserve(gh_usage_t *u);

/* Records one event in a slot taken with gh_usage_reserve: journal append, then the writer's
 * queue. Thread-safe; never waits on SQL; cannot fail. */
void gh_usage_submit_reserved(gh_usage_t *u, const gh_usage_event_t *ev);

/* gh_usage_reserve, then gh_usage_submit_reserved: its errors. */
gh_err_t gh_usage_submit(gh_usage_t *u, const gh_usage_event_t *ev);

/* Waits until everything submitted so far is committed (tests, shutdown). */
void gh_usage_flush(gh_usage_t *u);

void gh_usage_stats(gh_usage_t *u, gh_usage_stats_t *out);

/* False, with the reason in `why`, while usage cannot be recorded (no disk space, the replay
 * pending) or the writer's commits fail; /healthz reports it. */
bool gh_usage_healthy(gh_usage_t *u, char *why, size_t why_size);

/* Commits what is queued, stops the writer and closes the journal. Safe with NULL. */
void gh_usage_close(gh_usage_t *u);

#endif
