/* PostgreSQL array literals for batch statements; see pg_array.h. */
#include "store/postgres/pg_array.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The binary form's header: dimensions, NULL flag, element type, then the one dimension's
 * length and lower bound, 4 bytes each. */
enum { BIN_HEADER = 20 };

static void put_u32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
}

void gh_pg_array_init(gh_pg_array_t *a, size_t max_bytes)
{
    assert(max_bytes >= 3);
    *a = (gh_pg_array_t){.max = max_bytes};
}

void gh_pg_array_init_binary(gh_pg_array_t *a, size_t max_bytes, uint32_t oid)
{
    assert(max_bytes >= BIN_HEADER + 2);
    assert(oid == GH_PG_OID_INT8 || oid == GH_PG_OID_TEXT);
    *a = (gh_pg_array_t){.max = max_bytes, .binary = true, .oid = oid};
}

void gh_pg_array_reset(gh_pg_array_t *a)
{
    a->len = 0;
    a->n = 0;
    a->failed = false;
    a->nulls = false;
}

void gh_pg_array_free(gh_pg_array_t *a)
{
    free(a->buf);
    *a = (gh_pg_array_t){.max = a->max, .binary = a->binary, .oid = a->oid};
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

/* Binary form: appends one element of `len` bytes (`v` NULL and `len` 0 for SQL NULL),
 * with room kept for the header before the first. */
static gh_err_t bin_element(gh_pg_array_t *a, const char *v, size_t len)
{
    size_t header = a->len == 0 ? BIN_HEADER : 0;
    if (len > INT32_MAX)
        return GH_ETOOBIG;
    gh_err_t rc = reserve(a, header + 4 + len);
    if (rc)
        return rc;
    a->len += header;
    put_u32(a->buf + a->len, v ? (uint32_t)len : UINT32_MAX); /* -1: NULL */
    a->len += 4;
    if (v && len)
        memcpy(a->buf + a->len, v, len);
    a->len += len;
    a->nulls |= !v;
    a->n++;
    return GH_OK;
}

gh_err_t gh_pg_array_int(gh_pg_array_t *a, int64_t v)
{
    if (a->binary) {
        assert(a->oid == GH_PG_OID_INT8);
        char be[8];
        put_u32(be, (uint32_t)((uint64_t)v >> 32));
        put_u32(be + 4, (uint32_t)(uint64_t)v);
        return bin_element(a, be, sizeof(be));
    }
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
    if (a->binary)
        return bin_element(a, NULL, 0);
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
    if (a->binary) {
        assert(a->oid == GH_PG_OID_TEXT);
        return bin_element(a, v, strlen(v));
    }
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
    assert(!a->binary);
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

const char *gh_pg_array_binary(gh_pg_array_t *a, int *len)
{
    assert(a->binary);
    if (a->failed || a->n > INT32_MAX || a->len > INT32_MAX)
        return NULL;
    if (a->n == 0) {
        /* No dimensions: the empty array, 12 bytes. */
        if (reserve(a, 12))
            return NULL;
        put_u32(a->buf, 0);
        put_u32(a->buf + 4, 0);
        put_u32(a->buf + 8, a->oid);
        *len = 12;
        return a->buf;
    }
    put_u32(a->buf, 1);
    put_u32(a->buf + 4, a->nulls ? 1 : 0);
    put_u32(a->buf + 8, a->oid);
    put_u32(a->buf + 12, (uint32_t)a->n);
    put_u32(a->buf + 16, 1);
    *len = (int)a->len;
    return a->buf;
}
