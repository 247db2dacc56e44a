/* Showing client-controlled text (a method, a path) in an error body or a log line: bounded,
 * never splitting a character, never able to break the JSON or the line around it. */
#ifndef GH_GATEWAY_SHOWN_H
#define GH_GATEWAY_SHOWN_H

#include <stddef.h>

#define GH_SHOWN_ELLIPSIS "..."
/* A shown field: up to MAX input bytes, the ellipsis and a NUL. */
#define GH_SHOWN_SIZE(max) ((size_t)(max) + sizeof(GH_SHOWN_ELLIPSIS))
/* A shown field after JSON escaping, where one byte becomes at most six ("\u001f"). */
#define GH_SHOWN_JSON_SIZE(max) (6 * ((size_t)(max) + sizeof(GH_SHOWN_ELLIPSIS) - 1) + 1)
/* A shown field in a text log line, where one byte becomes at most three ("%7F"). */
#define GH_SHOWN_TEXT_SIZE(max) (3 * (size_t)(max) + sizeof(GH_SHOWN_ELLIPSIS))

/* Copies up to `max` bytes of `src` into `dst` (GH_SHOWN_SIZE(max) bytes) as well-formed
 * UTF-8 without NUL bytes, ready for gh_json_escape: a byte that does not start a valid
 * sequence becomes '?', a character is never split, and a cut is marked with an ellipsis. */
void gh_shown_utf8(char *dst, const char *src, size_t len, size_t max);

/* Copies up to `max` bytes of `src` into `dst` (GH_SHOWN_TEXT_SIZE(max) bytes) for a text log
 * line: every byte outside printable ASCII, and the space, is percent-encoded. */
void gh_shown_text(char *dst, const char *src, size_t len, size_t max);

#endif
