/* PostgreSQL array literals for batch statements; see pg_array.h. */
#include "store/postgres/pg_array.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gh_pg_array_init(gh_pg_array_t *a, size_t max_bytes)
{
    assert(max_bytes >= 3);
    *a = (gh_pg_array_t){.max = max_bytes};
}

void gh_pg_array_reset(gh_pg_array_t *a)
{
    a->len = 0;
    a->n = 0;
    a->failed = false;
}

void gh_pg_array_free(gh_pg_array_t *a)
{
    free(a->buf);
    *a = (gh_pg_array_t){.max = a->max};
}

/* Makes room for `more` bytes plus the closing "}" and NUL. */
static gh_err_t reserve(gh_pg_array_t *a, size_t more)
{
    if (a->failed)
        return GH_ETOOBIG;
    if (more > a->max || a->len + more + 2 > a->max) {
        a->failed = true;
        return GH_ETOOBIG;
    }
    size_t need = a->len + more + 2;
    if (need <= a->cap)
        return GH_OK;
    size_t cap = a->cap ? a->cap : 4096;
    while (cap < need)
        cap = cap > a->max / 2 ? a->max : cap * 2;
    char *buf = realloc(a->buf, cap);
    if (!buf) {
        a->failed = true;
        return GH_ENOMEM;
    }
    a->buf = buf;
    a->cap = cap;
    return GH_OK;
}

/* The separator before the next element: "{" first, "," after. */
static void open_element(gh_pg_array_t *a)
{
    a->buf[a->len++] = a->n++ ? ',' : '{';
}

gh_err_t gh_pg_array_int(gh_pg_array_t *a, int64_t v)
{
    char num[24];
    int len = snprintf(num, sizeof(num), "%" PRId64, v);
    assert(len > 0 && (size_t)len < sizeof(num));
    gh_err_t rc = reserve(a, (size_t)len + 1);
    if (rc)
        return rc;
    open_element(a);
    memcpy(a->buf + a->len, num, (size_t)len);
    a->len += (size_t)len;
    return GH_OK;
}

gh_err_t gh_pg_array_null(gh_pg_array_t *a)
{
    gh_err_t rc = reserve(a, 5);
    if (rc)
        return rc;
    open_element(a);
    memcpy(a->buf + a->len, "NULL", 4);
    a->len += 4;
    return GH_OK;
}

gh_err_t gh_pg_array_text(gh_pg_array_t *a, const char *v)
{
    if (!v)
        return gh_pg_array_null(a);
    size_t len = strlen(v), escapes = 0;
    for (size_t i = 0; i < len; i++)
        escapes += v[i] == '"' || v[i] == '\\';
    /* Quoted always: an unquoted NULL, blank or "{" would mean something else. */
    gh_err_t rc = reserve(a, len + escapes + 3);
    if (rc)
        return rc;
    open_element(a);
    a->buf[a->len++] = '"';
    for (size_t i = 0; i < len; i++) {
        if (v[i] == '"' || v[i] == '\\')
            a->buf[a->len++] = '\\';
        a->buf[a->len++] = v[i];
    }
    a->buf[a->len++] = '"';
    return GH_OK;
}

const char *gh_pg_array_literal(gh_pg_array_t *a)
{
    if (a->failed)
        return NULL;
    if (a->n == 0) {
        if (reserve(a, 1))
            return NULL;
        a->buf[a->len] = '{';
        a->buf[a->len + 1] = '}';
        a->buf[a->len + 2] = '\0';
        return a->buf;
    }
    /* reserve() kept two bytes spare for the "}" and the NUL, which are not counted: the
     * next append overwrites them. */
    a->buf[a->len] = '}';
    a->buf[a->len + 1] = '\0';
    return a->buf;
}
