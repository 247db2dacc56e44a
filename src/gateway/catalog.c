/* The model catalogue of /v1/models (see catalog.h). */
#include "gateway/catalog.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/json_str.h"
#include "lib/text.h"

struct gh_catalog {
    const gh_config_t *cfg;
    /* GET /v1/models and each model's own object, rendered once at start. */
    char *list;
    size_t list_len;
    char **objects; /* cfg->nmodels of them, with their lengths */
    size_t *object_lens;
};

gh_err_t gh_catalog_new(gh_catalog_t **out, const gh_config_t *cfg)
{
    /* An id or display name of up to 127 bytes escapes to at most 6 bytes a byte. */
    enum { OBJECT_MAX = 2 * 6 * 128 + 128, TIME_MAX = 32 };
    gh_catalog_t *cat = calloc(1, sizeof(*cat));
    *out = NULL;
    if (cat == NULL)
        return GH_ENOMEM;
    cat->cfg = cfg;
    size_t n = cfg->nmodels > 0 ? (size_t)cfg->nmodels : 0;
    char created[TIME_MAX];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);

    cat->objects = calloc(n ? n : 1, sizeof(*cat->objects));
    cat->object_lens = calloc(n ? n : 1, sizeof(*cat->object_lens));
    size_t cap = n * (OBJECT_MAX + 1) + 2 * 6 * 128 + 128;
    cat->list = malloc(cap);
    if (cat->objects == NULL || cat->object_lens == NULL || cat->list == NULL)
        goto out_free;
    char id0[6 * 128 + 1] = "", idn[6 * 128 + 1] = "";
    size_t len = (size_t)snprintf(cat->list, cap, "{\"data\":[");
    for (size_t i = 0; i < n; i++) {
        const gh_model_cfg_t *m = &cfg->models[i];
        char id[6 * 128 + 1], display[6 * 128 + 1];
        gh_json_escape(id, sizeof(id), m->name);
        gh_json_escape(display, sizeof(display), m->display_name[0] ? m->display_name : m->name);
        char *obj = malloc(OBJECT_MAX);
        if (obj == NULL)
            goto out_free;
        int k = snprintf(obj, OBJECT_MAX,
                         "{\"type\":\"model\",\"id\":\"%s\",\"display_name\":\"%s\","
                         "\"created_at\":\"%s\"}",
                         id, display, created);
        assert(k > 0 && k < OBJECT_MAX);
        cat->objects[i] = obj;
        cat->object_lens[i] = (size_t)k;
        if (i > 0)
            cat->list[len++] = ',';
        memcpy(cat->list + len, obj, (size_t)k);
        len += (size_t)k;
        if (i == 0)
            memcpy(id0, id, sizeof(id));
        memcpy(idn, id, sizeof(id));
    }
    if (n == 0)
        len += (size_t)snprintf(cat->list + len, cap - len,
                                "],\"has_more\":false,\"first_id\":null,\"last_id\":null}");
    else
        len += (size_t)snprintf(cat->list + len, cap - len,
                                "],\"has_more\":false,\"first_id\":\"%s\",\"last_id\":\"%s\"}",
                                id0, idn);
    assert(len < cap);
    cat->list_len = len;
    *out = cat;
    return GH_OK;

out_free:
    gh_catalog_free(cat);
    return GH_ENOMEM;
}


void gh_catalog_free(gh_catalog_t *cat)
{
    if (cat == NULL)
        return;
    for (int i = 0; cat->objects != NULL && i < cat->cfg->nmodels; i++)
        free(cat->objects[i]);
    free(cat->objects);
    free(cat->object_lens);
    free(cat->list);
    free(cat);
}

bool gh_catalog_one(const gh_catalog_t *cat, const char *id, size_t id_len, const char **body,
                    size_t *len)
{
    for (int i = 0; i < cat->cfg->nmodels; i++) {
        const char *n = cat->cfg->models[i].name;
        if (strlen(n) == id_len && memcmp(n, id, id_len) == 0) {
            *body = cat->objects[i];
            *len = cat->object_lens[i];
            return true;
        }
    }
    return false;
}

/* Copies the value of query parameter `name` from `query` (after the '?') into `out`,
 * percent-decoded. Returns false when it is absent; `*bad` when it does not fit or is not
 * valid percent-encoding. */
static bool query_param(h2o_iovec_t query, const char *name, char *out, size_t out_size,
                        bool *bad)
{
    size_t nlen = strlen(name), i = 0;
    while (i < query.len) {
        size_t end = i;
        while (end < query.len && query.base[end] != '&')
            end++;
        if (end - i > nlen && memcmp(query.base + i, name, nlen) == 0 &&
            query.base[i + nlen] == '=') {
            size_t o = 0;
            for (size_t k = i + nlen + 1; k < end; k++) {
                char ch = query.base[k];
                if (ch == '%') {
                    int hi = k + 2 < end ? gh_hex_digit(query.base[k + 1]) : -1;
                    int lo = k + 2 < end ? gh_hex_digit(query.base[k + 2]) : -1;
                    if (hi < 0 || lo < 0) {
                        *bad = true;
                        return true;
                    }
                    ch = (char)(hi * 16 + lo);
                    k += 2;
                } else if (ch == '+') {
                    ch = ' ';
                }
                if (o + 1 >= out_size) {
                    *bad = true;
                    return true;
                }
                out[o++] = ch;
            }
            out[o] = '\0';
            return true;
        }
        i = end + 1;
    }
    return false;
}

static int model_index(const gh_catalog_t *cat, const char *id)
{
    for (int i = 0; i < cat->cfg->nmodels; i++)
        if (strcmp(cat->cfg->models[i].name, id) == 0)
            return i;
    return -1;
}

gh_err_t gh_catalog_page(const gh_catalog_t *cat, h2o_iovec_t query, h2o_mem_pool_t *pool,
                         const char **body_out, size_t *len_out, char *msg, size_t msg_size)
{
    char text[256];
    bool bad = false;
    int n = cat->cfg->nmodels, limit = 20, from = 0, to = n; /* [from, to) */
    if (query_param(query, "limit", text, sizeof(text), &bad) && !bad) {
        char *end;
        long v = strtol(text, &end, 10);
        if (end == text || *end != '\0' || v < 1 || v > 1000) {
            snprintf(msg, msg_size, "limit: must be a whole number from 1 to 1000");
            return GH_EINVAL;
        }
        limit = (int)v;
    }
    bool after = !bad && query_param(query, "after_id", text, sizeof(text), &bad) && !bad;
    if (after) {
        int i = model_index(cat, text);
        if (i < 0) {
            snprintf(msg, msg_size, "after_id: there is no model %.128s", text);
            return GH_EINVAL;
        }
        from = i + 1;
    }
    bool before = !bad && query_param(query, "before_id", text, sizeof(text), &bad) && !bad;
    if (before) {
        int i = model_index(cat, text);
        if (i < 0) {
            snprintf(msg, msg_size, "before_id: there is no model %.128s", text);
            return GH_EINVAL;
        }
        to = i;
    }
    if (bad) {
        snprintf(msg, msg_size, "the query string is not valid or a value is too long");
        return GH_EINVAL;
    }
    if (after && before) {
        snprintf(msg, msg_size, "give after_id or before_id, not both");
        return GH_EINVAL;
    }
    /* before_id pages backwards: the `limit` models just before it. */
    bool has_more;
    if (before) {
        has_more = to - from > limit;
        if (has_more)
            from = to - limit;
    } else {
        has_more = to - from > limit;
        if (has_more)
            to = from + limit;
    }
    if (from == 0 && to == n && !has_more) {
        *body_out = cat->list;
        *len_out = cat->list_len;
        return GH_OK;
    }
    size_t cap = 160 + 2 * 6 * 128;
    for (int i = from; i < to; i++)
        cap += cat->object_lens[i] + 1;
    char *body = h2o_mem_alloc_pool(pool, cap);
    size_t len = (size_t)snprintf(body, cap, "{\"data\":[");
    for (int i = from; i < to; i++) {
        if (i > from)
            body[len++] = ',';
        memcpy(body + len, cat->objects[i], cat->object_lens[i]);
        len += cat->object_lens[i];
    }
    if (from >= to) {
        len += (size_t)snprintf(body + len, cap - len,
                                "],\"has_more\":false,\"first_id\":null,\"last_id\":null}");
    } else {
        char first[6 * 128 + 1], last[6 * 128 + 1];
        gh_json_escape(first, sizeof(first), cat->cfg->models[from].name);
        gh_json_escape(last, sizeof(last), cat->cfg->models[to - 1].name);
        len += (size_t)snprintf(body + len, cap - len,
                                "],\"has_more\":%s,\"first_id\":\"%s\",\"last_id\":\"%s\"}",
                                has_more ? "true" : "false", first, last);
    }
    assert(len < cap);
    *body_out = body;
    *len_out = len;
    return GH_OK;
}

