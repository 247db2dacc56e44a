/* Process log on standard error. One call writes one whole line with a single write(2), so
 * lines from different threads never interleave. In JSON mode each line is an object with
 * "ts", "level" and "msg" (plus the fields of an access line). Never pass secrets here:
 * API keys, session ids, tokens and passwords must not reach the log. */
#ifndef GH_LIB_LOG_H
#define GH_LIB_LOG_H

#include <stdbool.h>

typedef enum { GH_LOG_DEBUG, GH_LOG_INFO, GH_LOG_WARN, GH_LOG_ERROR } gh_log_level_t;

/* Chooses JSON lines (true) or plain text (false) and the lowest level printed. Call once
 * before threads start. */
void gh_log_setup(bool json, gh_log_level_t min_level);
bool gh_log_is_json(void);

void gh_log(gh_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes `line` (already formatted, without a newline) as one log line, unchanged. Used by
 * the access logs, which format their own text or JSON. */
void gh_log_raw(const char *line, int len);

#define gh_log_debug(...) gh_log(GH_LOG_DEBUG, __VA_ARGS__)
#define gh_log_info(...) gh_log(GH_LOG_INFO, __VA_ARGS__)
#define gh_log_warn(...) gh_log(GH_LOG_WARN, __VA_ARGS__)
#define gh_log_error(...) gh_log(GH_LOG_ERROR, __VA_ARGS__)

#endif
