#include "lib/utc.h"

#include <assert.h>
#include <stdbool.h>
#include <string.h>

/* The arithmetic counts years from March, so that February, with its leap day, is the last
 * month of a year and every month before it has a fixed length. A 400-year cycle ("era")
 * holds exactly 146,097 days, so a date splits into an era and a day within it without
 * loops. 719,468 is the number of days from 0000-03-01 to 1970-01-01. */
#define DAYS_PER_ERA INT64_C(146097)
#define EPOCH_SHIFT_DAYS INT64_C(719468)

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t gh_utc_days_from_civil(int64_t year, int month, int day)
{
    assert(month >= 1 && month <= 12 && day >= 1 && day <= 31);
    int64_t y = month <= 2 ? year - 1 : year;
    int64_t era = floor_div(y, 400);
    int64_t year_of_era = y - era * 400;                     /* 0..399 */
    int64_t month_from_march = (month + 9) % 12;             /* March 0 .. February 11 */
    /* (153 * m + 2) / 5 is the number of days in the months before m, counted from March:
     * 0, 31, 61, 92, 122, 153, 184, 214, 245, 275, 306, 337. */
    int64_t day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    int64_t day_of_era =
        year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return era * DAYS_PER_ERA + day_of_era - EPOCH_SHIFT_DAYS;
}

void gh_utc_civil_from_days(int64_t days, int64_t *year, int *month, int *day)
{
    int64_t z = days + EPOCH_SHIFT_DAYS;
    int64_t era = floor_div(z, DAYS_PER_ERA);
    int64_t day_of_era = z - era * DAYS_PER_ERA; /* 0..146096 */
    /* Remove the leap days before this day of the era (one every 4 years except every
     * 100, plus the one at the era's very end) and the year is a plain division by 365. */
    int64_t year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
    int64_t day_of_year =
        day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    int64_t month_from_march = (5 * day_of_year + 2) / 153;
    *day = (int)(day_of_year - (153 * month_from_march + 2) / 5 + 1);
    *month = (int)(month_from_march < 10 ? month_from_march + 3 : month_from_march - 9);
    *year = year_of_era + era * 400 + (*month <= 2 ? 1 : 0);
}

int32_t gh_utc_month_key(int64_t unix_s)
{
    int64_t y;
    int m, d;
    gh_utc_civil_from_days(floor_div(unix_s, GH_UTC_SECONDS_PER_DAY), &y, &m, &d);
    return (int32_t)(y * 100 + m);
}

int64_t gh_utc_month_start_s(int64_t unix_s)
{
    int64_t y;
    int m, d;
    gh_utc_civil_from_days(floor_div(unix_s, GH_UTC_SECONDS_PER_DAY), &y, &m, &d);
    return gh_utc_days_from_civil(y, m, 1) * GH_UTC_SECONDS_PER_DAY;
}

int64_t gh_utc_next_month_s(int64_t unix_s)
{
    int64_t y;
    int m, d;
    gh_utc_civil_from_days(floor_div(unix_s, GH_UTC_SECONDS_PER_DAY), &y, &m, &d);
    if (m == 12)
        y++, m = 1;
    else
        m++;
    return gh_utc_days_from_civil(y, m, 1) * GH_UTC_SECONDS_PER_DAY;
}

static char *put_digits(char *p, int64_t v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

/* The date part ("YYYY-MM-DDT") of the day this thread formatted last: the model path writes
 * four reset times into every response, nearly always all on one day, and the calendar
 * arithmetic is most of a time's cost. */
static _Thread_local struct {
    int64_t days;
    bool set;
    char text[11];
} day_memo;

size_t gh_utc_rfc3339(int64_t unix_s, char out[GH_UTC_RFC3339_MAX])
{
    /* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z. */
    static const int64_t min_s = INT64_C(-62167219200), max_s = INT64_C(253402300799);
    if (unix_s < min_s)
        unix_s = min_s;
    if (unix_s > max_s)
        unix_s = max_s;
    int64_t days = floor_div(unix_s, GH_UTC_SECONDS_PER_DAY);
    int sec = (int)(unix_s - days * GH_UTC_SECONDS_PER_DAY);
    if (!day_memo.set || day_memo.days != days) {
        int64_t y;
        int m, d;
        gh_utc_civil_from_days(days, &y, &m, &d);
        char *q = put_digits(day_memo.text, y, 4);
        *q++ = '-';
        q = put_digits(q, m, 2);
        *q++ = '-';
        q = put_digits(q, d, 2);
        *q = 'T';
        day_memo.days = days;
        day_memo.set = true;
    }
    char *p = out;
    memcpy(p, day_memo.text, sizeof(day_memo.text));
    p += sizeof(day_memo.text);
    p = put_digits(p, sec / 3600, 2);
    *p++ = ':';
    p = put_digits(p, sec / 60 % 60, 2);
    *p++ = ':';
    p = put_digits(p, sec % 60, 2);
    *p++ = 'Z';
    *p = '\0';
    assert(p - out == GH_UTC_RFC3339_MAX - 1);
    return (size_t)(p - out);
}
