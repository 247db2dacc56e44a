/* A growable text buffer with a maximum, for building messages and documents (curl's dynbuf
 * is the model). Every buffer is created with the most bytes it may ever hold; an append that
 * would pass it, or that cannot get memory, marks the buffer failed and every later append does
 * nothing, so a builder appends freely and checks once at the end. The text is always
 * NUL-terminated. The buffer owns `p` until gh_buf_take hands it over or gh_buf_free frees it.
 * Not thread-safe; one owner. */
#ifndef GH_LIB_BUF_H
#define GH_LIB_BUF_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/err.h"

typedef struct gh_buf {
    char *p;      /* NULL until the first append */
    size_t len;   /* bytes of text, the NUL not counted */
    size_t cap;   /* bytes allocated */
    size_t max;   /* the most text it may hold */
    gh_err_t err; /* GH_OK, or GH_ETOOBIG / GH_ENOMEM once an append failed */
} gh_buf_t;

/* An empty buffer that may grow to `max` bytes of text. */
void gh_buf_init(gh_buf_t *b, size_t max);

/* Appends `n` bytes of `s` (or the string `s`). On failure the buffer keeps what it had and
 * records why in `err`. */
void gh_buf_put_n(gh_buf_t *b, const char *s, size_t n);
void gh_buf_put(gh_buf_t *b, const char *s);

/* The text, handed to the caller (who frees it), or NULL when an append failed (the buffer's
 * memory is freed then). The buffer is empty afterwards. */
char *gh_buf_take(gh_buf_t *b);

/* Frees the text; the buffer is empty afterwards. */
void gh_buf_free(gh_buf_t *b);

#endif
