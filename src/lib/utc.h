/* UTC calendar arithmetic without the C library: days since the Unix epoch to a proleptic
 * Gregorian date and back, the calendar month a moment falls in (as YYYYMM, the key monthly
 * spend is kept under), the start of the next month, and RFC 3339 text. No locale, no time
 * zone, no allocation, no system call: these run on the data plane's hot path. Valid for
 * years 0 to 9999, far wider than any clock we will see. */
#ifndef GH_LIB_UTC_H
#define GH_LIB_UTC_H

#include <stddef.h>
#include <stdint.h>

#define GH_UTC_SECONDS_PER_DAY INT64_C(86400)
/* "2026-11-25T12:00:00Z" and its NUL. */
#define GH_UTC_RFC3339_MAX 21

/* Days from 1970-01-01 to `year`-`month`-`day` (month 1-12, day 1-31); negative before. */
int64_t gh_utc_days_from_civil(int64_t year, int month, int day);

/* The date `days` after 1970-01-01. */
void gh_utc_civil_from_days(int64_t days, int64_t *year, int *month, int *day);

/* The month `unix_s` falls in, as year * 100 + month (202611 for November 2026). */
int32_t gh_utc_month_key(int64_t unix_s);

/* 00:00:00 UTC on the first day of the month after the one `unix_s` falls in. */
int64_t gh_utc_next_month_s(int64_t unix_s);

/* 00:00:00 UTC on the first day of the month `unix_s` falls in. */
int64_t gh_utc_month_start_s(int64_t unix_s);

/* Writes `unix_s` as RFC 3339 UTC with whole seconds ("2026-11-25T12:00:00Z") into `out`
 * and returns its length (20). Times outside years 0-9999 are clamped to them. */
size_t gh_utc_rfc3339(int64_t unix_s, char out[GH_UTC_RFC3339_MAX]);

#endif
