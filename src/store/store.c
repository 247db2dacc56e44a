/* The store interface's dispatch. Every public gh_store_* function of store.h and identity.h
 * is generated here from the list in store/ops.h: it calls the entry of the backend its
 * handle belongs to (`db->ops->name`). Because this file includes store.h, the compiler
 * checks each generated wrapper against its declaration there, and the ops struct's fields
 * against the backends' functions.
 *
 * An entry a backend leaves NULL (a backend still being ported) makes its wrapper answer
 * GH_EUNAVAIL, and the first call logs which operation is missing, once per operation;
 * gh_store_ops_complete lets `serve` refuse such a backend before any request can reach it. */
#include <assert.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "store/backend.h"
#include "store/store.h"

/* Every backend this build has, the default (SQLite) first. */
static const gh_store_ops_t *const backends[] = {&gh_sqlite_ops, &gh_postgres_ops};

static void missing(const gh_store_ops_t *ops, const char *name, atomic_flag *logged)
{
    if (!atomic_flag_test_and_set(logged))
        gh_log_error("store: the %s backend has no operation %s yet; answering unavailable",
                     ops->backend_name, name);
}

/* What a wrapper does about a NULL entry and how it calls a present one, by return type. */
#define GH_STORE_MISSING_gh_err_t return GH_EUNAVAIL
#define GH_STORE_MISSING_int return 0
#define GH_STORE_MISSING_bool return false
#define GH_STORE_MISSING_void return
#define GH_STORE_CALL_gh_err_t(call) return call
#define GH_STORE_CALL_int(call) return call
#define GH_STORE_CALL_bool(call) return call
#define GH_STORE_CALL_void(call) call

#define GH_STORE_WRAPPER(ret, name, params, args)                                               \
    ret gh_store_##name params                                                                  \
    {                                                                                           \
        assert(db && db->ops);                                                                  \
        if (!db->ops->name) {                                                                   \
            static atomic_flag logged = ATOMIC_FLAG_INIT;                                       \
            missing(db->ops, #name, &logged);                                                   \
            GH_STORE_MISSING_##ret;                                                             \
        }                                                                                       \
        GH_STORE_CALL_##ret(db->ops->name args);                                                \
    }
GH_STORE_OPS(GH_STORE_WRAPPER)
#undef GH_STORE_WRAPPER

/* The operations on the whole store: every backend has them (gh_store_ops_complete). */
void gh_store_set_busy_timeout(gh_store_t *store, int timeout_ms)
{
    store->ops->set_busy_timeout(store, timeout_ms);
}

void gh_store_set_statement_timeout(gh_store_t *store, int timeout_ms)
{
    store->ops->set_statement_timeout(store, timeout_ms);
}

void gh_store_set_node_id(gh_store_t *store, const char *node_id)
{
    store->ops->set_node_id(store, node_id);
}

int gh_store_writer_lanes(gh_store_t *store)
{
    return store->ops->writer_lanes(store);
}

gh_err_t gh_store_rollups_add(gh_db_t *db, const gh_usage_row_t *rows, size_t n)
{
    return gh_store_rollups_add_parts(db, rows, n, GH_ROLLUPS_MINUTES | GH_ROLLUPS_WIDER);
}

void gh_store_close(gh_store_t *store)
{
    if (store)
        store->ops->close(store);
}

gh_db_t *gh_store_db(gh_store_t *store)
{
    return store->ops->db(store);
}

/* Picks the backend by the location's scheme: "sqlite:PATH", or a bare path for SQLite;
 * "postgresql://..." (or "postgres://...") for PostgreSQL, whose backend is given the whole
 * URL. A backend whose table of operations is not complete yet (the PostgreSQL port, while
 * it is being written) is refused, naming the first missing operation: every command would
 * otherwise start and then answer "unavailable" to part of its work. */
gh_err_t gh_store_open(gh_store_t **out, const char *location, char *err, size_t err_size)
{
    const gh_store_ops_t *ops = backends[0];
    const char *rest = location;
    if (!strncmp(location, "postgresql://", 13) || !strncmp(location, "postgres://", 11)) {
        ops = &gh_postgres_ops;
    } else {
        for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
            size_t n = strlen(backends[i]->scheme);
            if (!strncmp(location, backends[i]->scheme, n)) {
                ops = backends[i];
                rest = location + n;
                break;
            }
        }
    }
    const char *missing_op = gh_store_ops_first_missing(ops);
    if (missing_op) {
        snprintf(err, err_size,
                 "the %s store is not complete yet: its operation %s is not written; use the "
                 "SQLite store (the default, or --store sqlite:PATH)",
                 ops->backend_name, missing_op);
        return GH_EINVAL;
    }
    return ops->open(out, rest, err, err_size);
}

void gh_store_outbox_row_free(gh_outbox_row_t *row)
{
    free(row->subject);
    free(row->body);
    row->subject = row->body = NULL;
}

const char *gh_store_ops_first_missing(const gh_store_ops_t *ops)
{
    if (!ops->open)
        return "open";
#define GH_STORE_CHECK(ret, name, params, args)                                                 \
    if (!ops->name)                                                                             \
        return #name;
    GH_STORE_OPS_STORE(GH_STORE_CHECK)
    GH_STORE_OPS(GH_STORE_CHECK)
#undef GH_STORE_CHECK
    return NULL;
}

bool gh_store_ops_complete(const gh_store_t *store, const char **missing_op)
{
    const char *name = gh_store_ops_first_missing(store->ops);
    if (missing_op)
        *missing_op = name;
    return name == NULL;
}

const char *gh_store_backend(const gh_store_t *store)
{
    return store->ops->backend_name;
}
