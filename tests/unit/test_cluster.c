#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cluster.h"
#include "lib/crypto.h"

static int setup(void **state)
{
    (void)state;
    return gh_crypto_init() == GH_OK ? 0 : -1;
}

/* A fresh configuration on a new data directory; postgres says which store. */
static void fresh(gh_config_t *c, char *dir, bool postgres)
{
    gh_config_defaults(c);
    snprintf(dir, 64, "/tmp/gh-test-cluster-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(c->data_dir, sizeof(c->data_dir), "%s", dir);
    c->store_postgres = postgres;
}

static void touch(const char *dir, const char *name, const char *text)
{
    char path[1100];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void cleanup(const char *dir)
{
    const char *names[] = {"node_id", "usage.journal", "node_id.tmp"};
    char path[1100];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

static void new_node_gets_a_random_id_kept_in_its_data_dir(void **state)
{
    (void)state;
    gh_config_t c;
    char dir[64], err[512], first[65];
    fresh(&c, dir, true);
    assert_int_equal(gh_cluster_node_id_resolve(&c, err, sizeof(err)), GH_OK);
    assert_int_equal(strlen(c.cluster_node_id), 17);
    assert_memory_equal(c.cluster_node_id, "node-", 5);
    snprintf(first, sizeof(first), "%s", c.cluster_node_id);
    char path[1100];
    snprintf(path, sizeof(path), "%s/node_id", dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* The next start keeps it; a configured node_id that differs is refused. */
    c.cluster_node_id[0] = '\0';
    assert_int_equal(gh_cluster_node_id_resolve(&c, err, sizeof(err)), GH_OK);
    assert_string_equal(c.cluster_node_id, first);
    snprintf(c.cluster_node_id, sizeof(c.cluster_node_id), "other");
    assert_int_equal(gh_cluster_node_id_resolve(&c, err, sizeof(err)), GH_EINVAL);
    assert_non_null(strstr(err, "belongs to node"));
    snprintf(c.cluster_node_id, sizeof(c.cluster_node_id), "%s", first);
    assert_int_equal(gh_cluster_node_id_resolve(&c, err, sizeof(err)), GH_OK);
    cleanup(dir);
}

static void configured_id_is_written(void **state)
{
    (void)state;
    gh_config_t c;
    char dir[64], err[512];
    fresh(&c, dir, true);
    snprintf(c.cluster_node_id, sizeof(c.cluster_node_id), "node-a");
    assert_int_equal(gh_cluster_node_id_resolve(&c, err, sizeof(err)), GH_OK);
    c.cluster_node_id[0] = '\0';
    assert_int_equal(gh_cluster_node_id_resolve(&c, err, sizeof(err)), GH_OK);
    assert_string_equal(c.cluster_node_id, "node-a");
    cleanup(dir);
}

static void data_dir_from_before_clusters_keeps_local(void **state)
{
    (void)state;
    gh_config_t c;
    char dir[64], err[512];
    fresh(&c, dir, true);
    touch(dir, "usage.journal", "");
    /* Another id would replay the journal's events under it: charged twice. */
    snprintf(c.cluster_node_id, sizeof(c.cluster_node_id), "node-b");
    assert_int_equal(gh_cluster_node_id_resolve(&c, err, sizeof(err)), GH_EINVAL);
    assert_non_null(strstr(err, "written as node 'local'"));
    c.cluster_node_id[0] = '\0';
    assert_int_equal(gh_cluster_node_id_resolve(&c, err, sizeof(err)), GH_OK);
    assert_string_equal(c.cluster_node_id, "local");
    cleanup(dir);
}

static void sqlite_is_one_local_node(void **state)
{
    (void)state;
    gh_config_t c;
    char dir[64], err[512], path[1100];
    fresh(&c, dir, false);
    assert_int_equal(gh_cluster_node_id_resolve(&c, err, sizeof(err)), GH_OK);
    assert_string_equal(c.cluster_node_id, "local");
    snprintf(path, sizeof(path), "%s/node_id", dir);
    assert_int_equal(access(path, F_OK), -1); /* nothing written */
    cleanup(dir);
}

static void damaged_file_is_refused(void **state)
{
    (void)state;
    gh_config_t c;
    char dir[64], err[512];
    fresh(&c, dir, true);
    touch(dir, "node_id", "not an id!\n");
    assert_int_equal(gh_cluster_node_id_resolve(&c, err, sizeof(err)), GH_EINVAL);
    assert_non_null(strstr(err, "does not hold a node id"));
    cleanup(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(new_node_gets_a_random_id_kept_in_its_data_dir),
        cmocka_unit_test(configured_id_is_written),
        cmocka_unit_test(data_dir_from_before_clusters_keeps_local),
        cmocka_unit_test(sqlite_is_one_local_node),
        cmocka_unit_test(damaged_file_is_refused),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
