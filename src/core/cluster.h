/* The cluster: several `gatehouse serve` processes on one PostgreSQL store are one
 * installation (docs/cluster.md). This module names the node, keeps its in-memory state in
 * step with what the other nodes change, and elects the one node that runs the billing jobs.
 *
 * The node id: its usage events are keyed by it in the store, together with the journal
 * sequence, so the id of a data directory never changes once events were written under it.
 * In order: the data directory's `node_id` file (written once, mode 0600); else `[cluster]
 * node_id`; else 'local' when the data directory already has a usage journal (an installation
 * from before clusters, whose events were written as node 'local'); else a new random id
 * "node-" + 12 base62 characters. On PostgreSQL the chosen id is written to the file so the
 * next start keeps it. On SQLite a node is a single node, 'local' unless configured, and
 * nothing is written.
 *
 * The change feed (PostgreSQL): triggers write every change to what the nodes hold in memory
 * into the store's feed in the same transaction and NOTIFY it (store.h, "cluster"). One
 * listener thread per node, on its own connection, LISTENs; it wakes on a notification or
 * every [cluster] poll_ms, reads the changes past its watermark and applies them through the
 * same publishers the console uses after its own commits (core/state.h, core/admission.h).
 * The data plane never waits for any of it. After its connection is lost and reopened, a node
 * reloads all of its in-memory state, since notifications may have been missed meanwhile.
 *
 * Leadership: the listener's connection holds a session advisory lock while this node is the
 * leader; the billing jobs run only on the leader (gh_cluster_leader). A leader that dies or
 * loses PostgreSQL loses the lock with its session, and another node takes it within poll_ms.
 * On SQLite the one node is the leader. */
#ifndef GH_CORE_CLUSTER_H
#define GH_CORE_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/config.h"
#include "lib/err.h"

struct gh_app;
typedef struct gh_store gh_store_t;
typedef struct gh_cluster gh_cluster_t;

/* Sets cfg->cluster_node_id to this node's id, following the rule above (cfg->data_dir must
 * exist). Refuses (GH_EINVAL, the reason and what to do in `err`) a configured node_id that
 * differs from the data directory's file, or that is not 'local' for a data directory whose
 * journal was written as 'local': its events would be replayed under another id and charged
 * twice. GH_EIO when the file cannot be read or written. Call before any thread starts. */
gh_err_t gh_cluster_node_id_resolve(gh_config_t *cfg, char *err, size_t err_size);

/* What only one `gatehouse serve` may use at a time, locked for the process's life (flock,
 * released by the kernel when it exits, however it exits): the data directory (its usage
 * journal; `<data_dir>/serve.lock`) and, on SQLite, the database (`<db_path>.lock`, so two
 * data directories never share one SQLite file). GH_ECONFLICT with a message saying why and what
 * to do when another server holds one. The command-line tools take neither. `fds` receives
 * the descriptors (-1: none), for gh_cluster_unlock_files. */
gh_err_t gh_cluster_lock_files(const gh_config_t *cfg, int fds[2], char *err, size_t err_size);
void gh_cluster_unlock_files(int fds[2]);

/* Creates the node's cluster side. On PostgreSQL it reads the feed's newest change now: call
 * it BEFORE loading the in-memory state, so that every change committed after the load's
 * reads is past the watermark. `cfg` and `store` outlive it. */
gh_err_t gh_cluster_new(gh_cluster_t **out, const gh_config_t *cfg, gh_store_t *store,
                        char *err, size_t err_size);

/* Starts the listener thread (PostgreSQL; nothing on SQLite). `app` (its state and admission)
 * outlives the thread, which gh_cluster_free stops. */
gh_err_t gh_cluster_start(gh_cluster_t *c, struct gh_app *app, char *err, size_t err_size);

/* Stops the listener thread (it publishes to the state and admission, and kicks billing):
 * call it before freeing those. Leadership ends with its connection's session, when the
 * store is closed. NULL is fine. */
void gh_cluster_stop(gh_cluster_t *c);

/* Stops (if need be) and frees; after every thread that may ask gh_cluster_leader or
 * gh_cluster_kick_leader (the billing scheduler) is gone. NULL is fine. */
void gh_cluster_free(gh_cluster_t *c);

/* Whether this node runs the cluster-wide jobs now: the leader; always on SQLite, and with
 * `c` NULL (command-line tools). */
bool gh_cluster_leader(const gh_cluster_t *c);

/* On a node that is not the leader: asks the leader to run its jobs now (a notification on
 * the calling thread's connection). Nothing on the leader, on SQLite or with `c` NULL. */
void gh_cluster_kick_leader(const gh_cluster_t *c);

/* What /healthz and /metrics show. */
typedef struct gh_cluster_stats {
    const char *node_id;
    bool clustered;           /* a PostgreSQL store: one node of possibly several */
    bool connected;           /* the listener has its connection and LISTENs */
    bool leader;
    int64_t watermark;        /* the feed's changes up to this seq are applied */
    uint64_t changes_applied; /* changes read from the feed and applied */
    uint64_t notifications;   /* wake-ups by NOTIFY */
    uint64_t reloads;         /* full reloads after a reconnect */
    uint64_t reconnects;      /* connections lost */
    int64_t lag_last_us;      /* from a change's commit to its application here: the last */
    int64_t lag_max_us;       /* ...the largest since start */
    /* Histogram of the lags: counts of changes with lag <= each bound of gh_cluster_lag_le. */
    uint64_t lag_bucket[8];
    uint64_t lag_count;
    int64_t lag_sum_us;
} gh_cluster_stats_t;

/* The histogram's upper bounds, in seconds (Prometheus `le`); lag_bucket has one per entry. */
extern const double gh_cluster_lag_le[8];

void gh_cluster_stats(const gh_cluster_t *c, gh_cluster_stats_t *out);

#endif
