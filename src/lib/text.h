/* Small text checks for user input: trimming, counting characters in UTF-8, spotting
 * control characters, and e-mail address syntax; and numbers in decimal without printf. */
#ifndef GH_LIB_TEXT_H
#define GH_LIB_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

/* Copies `in` without leading and trailing white space into `out`. GH_ETOOBIG when it does
 * not fit in `out_size` bytes (nothing useful is written then). */
gh_err_t gh_text_trim(const char *in, char *out, size_t out_size);

/* Checks free text a person typed (a reason, a note, an intended use) and copies it into
 * `out` trimmed: 1 to `max_chars` characters, no control characters but line breaks and tabs.
 * GH_EINVAL with a message naming `field` ("reason is required.") otherwise. */
gh_err_t gh_text_clean_note(const char *in, const char *field, size_t max_chars, char *out,
                            size_t out_size, char *msg, size_t msg_size);

/* The value of a hex digit (0-9, a-f, A-F), or -1 for any other character. */
int gh_hex_digit(char c);

/* The number of characters (code points) in a valid UTF-8 string. */
size_t gh_utf8_chars(const char *s);

/* True when `s` has nothing a reader can see: only white space and invisible format
 * characters (zero-width spaces and joiners, directional marks, no-break spaces, BOM). */
bool gh_text_is_blank(const char *s);

/* True when `s` holds a control character (below 0x20, or DEL). */
bool gh_text_has_control(const char *s);

/* True when a name (of an organization, a workspace, a key, a person) holds a character that
 * would let it disguise itself or what is shown next to it: a control character (C0, DEL,
 * C1), a bidirectional control (U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069) that
 * can reverse the text around it, or a line or paragraph separator (U+2028, U+2029). */
bool gh_text_has_unsafe(const char *s);

/* Compares two UTF-8 strings the way a reader expects a list of names sorted: Latin letters
 * with accents sort with their base letter ("Côte d'Ivoire" before "Croatia", "Åland" with
 * the A's) and case is ignored. Returns <0, 0 or >0 like strcmp. */
int gh_text_cmp_folded(const char *a, const char *b);

/* Checks address syntax (one '@', a local part of 1–64 printable ASCII characters without
 * spaces or quotes, a domain of dot-separated labels of letters, digits and hyphens with a
 * top-level label of at least two letters; at most 254 characters) and writes it lower-cased
 * into `out` (GH_EMAIL_MAX bytes). GH_EINVAL when it is not an address. */
gh_err_t gh_email_normalize(const char *in, char *out, size_t out_size);

/* Writes `v` in decimal and a NUL into `out`; returns the digits written. No locale and no
 * format string: the model path formats its numbers (header values) with it. */
#define GH_U64_TEXT_MAX 21 /* 20 digits and the NUL */
size_t gh_u64_text(char out[GH_U64_TEXT_MAX], uint64_t v);

#endif
