#include "lib/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/json_str.h"

static bool log_json;
static gh_log_level_t log_min = GH_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void gh_log_setup(bool json, gh_log_level_t min_level)
{
    log_json = json;
    log_min = min_level;
}

bool gh_log_is_json(void)
{
    return log_json;
}

void gh_log_raw(const char *line, int len)
{
    char buf[8192];
    if (len < 0)
        return;
    size_t n = (size_t)len < sizeof(buf) - 1 ? (size_t)len : sizeof(buf) - 1;
    memcpy(buf, line, n);
    buf[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, buf, n);
    (void)w;
}

void gh_log(gh_log_level_t level, const char *fmt, ...)
{
    if (level < log_min)
        return;
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    int mlen = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (mlen < 0)
        return;

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[64];
    snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);

    char line[8192];
    int n;
    if (log_json) {
        char esc[6000];
        gh_json_escape(esc, sizeof(esc), msg);
        n = snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"%s\"}", when,
                     level_names[level], esc);
    } else {
        n = snprintf(line, sizeof(line), "%s %-5s %s", when, level_names[level], msg);
    }
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(line))
        n = (int)sizeof(line) - 1;
    gh_log_raw(line, n);
}
