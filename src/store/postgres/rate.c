/* Store functions for the cluster's rate buckets (PostgreSQL backend): one statement draws from
 * a whole batch of buckets (migration 0013's gh_rate_draw, with 0016's count of nodes),
 * autocommitted, outside the write lock. */
#include <string.h>

#include "store/postgres/pg_array.h"
#include "store/postgres/pg_int.h"

/* A batch's arrays: ids are at most GH_ID_MAX and class names short, so this bounds a batch
 * of a few thousand rows. */
#define RATE_ARRAY_MAX (1u << 20)
#define RATE_COLUMNS 9

gh_err_t gh_pgs_rate_draw(gh_db_t *db, const gh_store_rate_draw_t *rows, size_t n,
                          int64_t *granted, int64_t *nodes)
{
    static const char sql[] =
        "SELECT ord, granted FROM gh_rate_draw($1::text[], $2::text[], $3::text[], "
        "$4::smallint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[])";
    *nodes = 0;
    if (n == 0)
        return GH_OK;
    gh_pg_array_t a[RATE_COLUMNS];
    for (int i = 0; i < RATE_COLUMNS; i++)
        gh_pg_array_init(&a[i], RATE_ARRAY_MAX);
    gh_err_t rc = GH_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        const gh_store_rate_draw_t *r = &rows[i];
        granted[i] = 0;
        if ((rc = gh_pg_array_text(&a[0], r->org_id)) ||
            (rc = gh_pg_array_text(&a[1], r->ws_id ? r->ws_id : "")) ||
            (rc = gh_pg_array_text(&a[2], r->model_class)) ||
            (rc = gh_pg_array_int(&a[3], r->kind)) ||
            (rc = gh_pg_array_int(&a[4], r->limit_per_min)) ||
            (rc = gh_pg_array_int(&a[5], r->capacity)) ||
            (rc = gh_pg_array_int(&a[6], r->want)) ||
            (rc = gh_pg_array_int(&a[7], r->want_min)) ||
            (rc = gh_pg_array_int(&a[8], r->give_back)))
            break;
    }
    const char *p[RATE_COLUMNS];
    for (int i = 0; i < RATE_COLUMNS && !rc; i++)
        if (!(p[i] = gh_pg_array_literal(&a[i])))
            rc = GH_ETOOBIG;
    PGresult *res = NULL;
    if (!rc)
        rc = gh_pgs_query(db, sql, RATE_COLUMNS, p, &res);
    if (!rc) {
        int rows_out = PQntuples(res);
        for (int i = 0; i < rows_out; i++) {
            int64_t ord = gh_pgs_col_i64(res, i, 0);
            if (ord >= 1 && (size_t)ord <= n)
                granted[ord - 1] = gh_pgs_col_i64(res, i, 1);
            else if (ord == 0) /* migration 0016: the nodes that may admit at once */
                *nodes = gh_pgs_col_i64(res, i, 1);
        }
        PQclear(res);
    }
    for (int i = 0; i < RATE_COLUMNS; i++)
        gh_pg_array_free(&a[i]);
    return rc;
}
