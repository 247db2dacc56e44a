/* One error vocabulary for the whole program. 0 is success; every fallible function returns
 * a gh_err_t and callers propagate it plainly (`rc = f(); if (rc) return rc;`). These are
 * internal codes: the mapping to HTTP statuses and Anthropic error types lives in exactly
 * one place (src/http/error.c for the control plane). */
#ifndef GH_LIB_ERR_H
#define GH_LIB_ERR_H

#include <stdbool.h>

#define GH_ERR_MAP(X)                                                  \
    X(GH_OK, "success")                                                \
    X(GH_ENOMEM, "out of memory")                                      \
    X(GH_EINVAL, "invalid input")                                      \
    X(GH_EAUTH, "authentication required")                             \
    X(GH_EPERM, "permission denied")                                   \
    X(GH_ENOTFOUND, "not found")                                       \
    X(GH_ECONFLICT, "conflict")                                        \
    X(GH_ETOOBIG, "too large")                                         \
    X(GH_ERATE, "rate limited")                                        \
    X(GH_EBILLING, "billing problem")                                  \
    X(GH_EEXPIRED, "expired")                                          \
    X(GH_EIO, "input/output error")                                    \
    X(GH_ESTORE, "database error")                                     \
    X(GH_ETIMEOUT, "timed out")                                        \
    X(GH_EUNAVAIL, "temporarily unavailable")                          \
    X(GH_EINTERNAL, "internal error")

typedef enum {
#define GH_ERR_ENUM(name, msg) name,
    GH_ERR_MAP(GH_ERR_ENUM)
#undef GH_ERR_ENUM
    GH_ERR_COUNT
} gh_err_t;

/* The symbolic name ("GH_EINVAL") and a short English description of `err`. */
const char *gh_err_name(gh_err_t err);
const char *gh_err_str(gh_err_t err);

/* A note, per thread, that the database could not be reached (a lost or refused PostgreSQL
 * connection, a statement or lock timeout). The store's backend sets it whenever it answers
 * GH_EUNAVAIL; the control plane's server clears it before each request and, when a request
 * met it, answers 503 "the database is unavailable" whatever the handler made of the store's
 * error, so no outage is reported as "not found" or as a generic failure. */
void gh_err_note_db_unavailable(void);
void gh_err_clear_db_unavailable(void);
bool gh_err_db_unavailable(void);

#endif
