/* PostgreSQL array literals, for statements that take a whole batch of rows in a few
 * parameters: `INSERT ... SELECT ... FROM unnest($1::bigint[], $2::text[], ...)`. One
 * statement with one parameter per column, whatever the batch size, can be prepared once and
 * keeps the per-row cost on the server's side (no 65,535-parameter ceiling, no SQL text per
 * batch). A builder accumulates one column's values as the text form of an array
 * ("{1,2,NULL}", "{\"a\",\"b\\\"c\"}"), which libpq sends as a text-format parameter.
 *
 * A builder made with gh_pg_array_init_binary accumulates the array's binary send format
 * instead (a header, then each element as a 4-byte length and its bytes in network order),
 * sent as a binary-format parameter: the server copies it in without parsing a digit or a
 * quote, which is most of what a text literal of 2,000 rows costs it.
 *
 * Each builder owns its buffer and has a maximum size: an append that would pass it fails
 * with GH_ETOOBIG and leaves the builder unusable until reset (the caller gives up the
 * statement). gh_pg_array_free releases the buffer. */
#ifndef GH_STORE_POSTGRES_PG_ARRAY_H
#define GH_STORE_POSTGRES_PG_ARRAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

typedef struct gh_pg_array {
    char *buf;
    size_t len, cap, max;
    size_t n;    /* elements so far */
    bool failed; /* an append failed: the literal is incomplete */
    bool binary; /* binary send format (gh_pg_array_init_binary) */
    bool nulls;  /* binary: a NULL element was appended */
    uint32_t oid; /* binary: the elements' type */
} gh_pg_array_t;

/* Element types of binary arrays (PostgreSQL's fixed type OIDs). */
enum { GH_PG_OID_INT8 = 20, GH_PG_OID_TEXT = 25 };

/* An empty builder whose literal may grow to `max_bytes`. Allocates nothing yet. */
void gh_pg_array_init(gh_pg_array_t *a, size_t max_bytes);

/* An empty builder of the binary form of an array of `oid` (GH_PG_OID_INT8 takes
 * gh_pg_array_int, GH_PG_OID_TEXT gh_pg_array_text; both take gh_pg_array_null). Read the
 * result with gh_pg_array_binary. */
void gh_pg_array_init_binary(gh_pg_array_t *a, size_t max_bytes, uint32_t oid);

/* Forgets the elements, keeps the buffer (for the next batch). */
void gh_pg_array_reset(gh_pg_array_t *a);

void gh_pg_array_free(gh_pg_array_t *a);

/* Appends an integer element. */
gh_err_t gh_pg_array_int(gh_pg_array_t *a, int64_t v);

/* Appends a text element, quoted and escaped; NULL appends SQL NULL, "" an empty string. */
gh_err_t gh_pg_array_text(gh_pg_array_t *a, const char *v);

/* Appends SQL NULL. */
gh_err_t gh_pg_array_null(gh_pg_array_t *a);

/* The binary form of a builder made with gh_pg_array_init_binary and its length in
 * `*len`, valid until the next append, reset or free; NULL when an append failed. */
const char *gh_pg_array_binary(gh_pg_array_t *a, int *len);

/* The closed literal ("{...}"), valid until the next append, reset or free; NULL when an
 * append failed. */
const char *gh_pg_array_literal(gh_pg_array_t *a);

#endif
