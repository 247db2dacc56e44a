/* Allocation-free JSON string escaping, for the log and the data plane's fixed responses
 * (neither builds a jansson tree). */
#ifndef GH_LIB_JSON_STR_H
#define GH_LIB_JSON_STR_H

#include <stddef.h>

/* Writes `src` escaped as the inside of a JSON string into `dst` (always NUL-terminated,
 * truncated on a character boundary of the escaped form when `dst_size` is too small).
 * Returns the length written, excluding the NUL. */
size_t gh_json_escape(char *dst, size_t dst_size, const char *src);

#endif
