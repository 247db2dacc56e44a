#include "lib/buf.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define GROW_FIRST 4096

void gh_buf_init(gh_buf_t *b, size_t max)
{
    assert(max > 0);
    *b = (gh_buf_t){.max = max};
}

void gh_buf_put_n(gh_buf_t *b, const char *s, size_t n)
{
    if (b->err)
        return;
    if (n > b->max - b->len) {
        b->err = GH_ETOOBIG;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : GROW_FIRST;
        while (cap < b->len + n + 1)
            cap *= 2;
        if (cap > b->max + 1)
            cap = b->max + 1;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->err = GH_ENOMEM;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void gh_buf_put(gh_buf_t *b, const char *s)
{
    gh_buf_put_n(b, s, strlen(s));
}

char *gh_buf_take(gh_buf_t *b)
{
    char *p = NULL;
    if (!b->err) {
        p = b->p ? b->p : calloc(1, 1);
        b->p = NULL;
    }
    gh_buf_free(b);
    return p;
}

void gh_buf_free(gh_buf_t *b)
{
    free(b->p);
    *b = (gh_buf_t){.max = b->max};
}
