/* The cluster: several `gatehouse serve` processes on one PostgreSQL store are one
 * installation (docs/cluster.md). This module names the node: its id is what its usage
 * events are keyed by in the store, together with the journal sequence, so the id of a data
 * directory never changes once events were written under it. On SQLite a node is a single
 * node and its id is only shown (health, logs).
 *
 * The node id, in order: the data directory's `node_id` file (written once, mode 0600); else
 * `[cluster] node_id`; else 'local' when the data directory already has a usage journal (an
 * installation from before clusters, whose events were written as node 'local'); else a new
 * random id "node-" + 12 base62 characters. On PostgreSQL the chosen id is written to the file
 * so the next start keeps it. */
#ifndef GH_CORE_CLUSTER_H
#define GH_CORE_CLUSTER_H

#include <stddef.h>

#include "lib/config.h"
#include "lib/err.h"

/* Sets cfg->cluster_node_id to this node's id, following the rule above (cfg->data_dir must
 * exist). Refuses (GH_EINVAL, the reason and what to do in `err`) a configured node_id that
 * differs from the data directory's file, or that is not 'local' for a data directory whose
 * journal was written as 'local': its events would be replayed under another id and charged
 * twice. GH_EIO when the file cannot be read or written. Call before any thread starts. */
gh_err_t gh_cluster_node_id_resolve(gh_config_t *cfg, char *err, size_t err_size);

#endif
