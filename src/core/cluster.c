#include "core/cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/crypto.h"
#include "lib/log.h"

#define NODE_ID_FILE "node_id"
#define NODE_ID_MAX 64

/* Reads `path` into `id` (NODE_ID_MAX + 1 bytes), a trailing newline removed. GH_ENOTFOUND
 * when there is no file, GH_EINVAL when it does not hold a valid id, GH_EIO otherwise. */
static gh_err_t read_id(const char *path, char *id)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? GH_ENOTFOUND : GH_EIO;
    char buf[NODE_ID_MAX + 8];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n < 0)
        return GH_EIO;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    buf[n] = '\0';
    if (!gh_config_node_id_valid(buf))
        return GH_EINVAL;
    memcpy(id, buf, (size_t)n + 1);
    return GH_OK;
}

/* Writes `id` to `path` (mode 0600) through a temporary file renamed over it, so a crash
 * leaves either no file or the whole id. */
static gh_err_t write_id(const char *path, const char *id)
{
    char tmp[GH_CONFIG_PATH + 32];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return GH_EIO;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return GH_EIO;
    char line[NODE_ID_MAX + 2];
    int len = snprintf(line, sizeof(line), "%s\n", id);
    bool ok = len > 0 && write(fd, line, (size_t)len) == (ssize_t)len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return GH_EIO;
    }
    return GH_OK;
}

static bool exists(const char *dir, const char *name)
{
    char path[GH_CONFIG_PATH + 32];
    struct stat st;
    int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
    return n > 0 && (size_t)n < sizeof(path) && stat(path, &st) == 0;
}

gh_err_t gh_cluster_node_id_resolve(gh_config_t *cfg, char *err, size_t err_size)
{
    char path[GH_CONFIG_PATH + 16], id[NODE_ID_MAX + 1] = "";
    int n = snprintf(path, sizeof(path), "%s/" NODE_ID_FILE, cfg->data_dir);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        snprintf(err, err_size, "data_dir is too long");
        return GH_EINVAL;
    }
    const char *configured = cfg->cluster_node_id;
    gh_err_t rc = read_id(path, id);
    if (rc == GH_EINVAL) {
        snprintf(err, err_size, "%s does not hold a node id (1 to 64 letters, digits, - or _); "
                                "restore it, or remove it if this data directory never served",
                 path);
        return rc;
    }
    if (rc == GH_EIO) {
        snprintf(err, err_size, "cannot read %s: %s", path, strerror(errno));
        return rc;
    }
    if (rc == GH_OK) {
        /* The file wins: the journal's events are keyed by it. */
        if (configured[0] && strcmp(configured, id)) {
            snprintf(err, err_size, "[cluster] node_id is %s but this data directory belongs to "
                                    "node %s (%s): its usage journal is keyed by that id. Use "
                                    "node_id = %s, or give node %s its own empty data_dir",
                     configured, id, path, id, configured);
            return GH_EINVAL;
        }
        memcpy(cfg->cluster_node_id, id, strlen(id) + 1);
        return GH_OK;
    }
    /* No file yet. A journal written before node ids existed was written as 'local'. */
    bool journal = exists(cfg->data_dir, "usage.journal") ||
                   exists(cfg->data_dir, "usage.journal.1");
    if (configured[0]) {
        if (journal && strcmp(configured, "local") && cfg->store_postgres) {
            snprintf(err, err_size, "[cluster] node_id is %s but the usage journal in %s was "
                                    "written as node 'local': keep node_id = local for this "
                                    "data directory (or leave it unset), and give other nodes "
                                    "their own data_dir",
                     configured, cfg->data_dir);
            return GH_EINVAL;
        }
        memcpy(id, configured, strlen(configured) + 1);
    } else if (journal || !cfg->store_postgres) {
        /* SQLite: one node, whose events the store keys as 'local' (and a copy to
         * PostgreSQL keeps them so); nothing is written, so a later move keeps 'local'. */
        memcpy(id, "local", sizeof("local"));
    } else {
        char rnd[13];
        gh_random_base62(rnd, 12);
        snprintf(id, sizeof(id), "node-%s", rnd);
    }
    memcpy(cfg->cluster_node_id, id, strlen(id) + 1);
    if (!cfg->store_postgres)
        return GH_OK;
    if (write_id(path, id)) {
        snprintf(err, err_size, "cannot write the node id to %s: %s", path, strerror(errno));
        return GH_EIO;
    }
    gh_log_info("cluster: this node is %s (kept in %s)", id, path);
    return GH_OK;
}
