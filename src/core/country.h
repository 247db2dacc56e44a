/* Countries: the ISO 3166-1 alpha-2 codes with their English short names, and whether the
 * console asks for a VAT ID there. The table is compiled in, read-only and sorted by code;
 * every pointer handed out stays valid for the life of the process. */
#ifndef GH_CORE_COUNTRY_H
#define GH_CORE_COUNTRY_H

#include <stdbool.h>
#include <stddef.h>

/* Number of officially assigned ISO 3166-1 alpha-2 codes, all of which are in the table. */
#define GH_COUNTRY_COUNT 249

typedef struct gh_country {
    char code[3];     /* "IT": two upper-case ASCII letters */
    const char *name; /* ISO English short name, UTF-8: "Italy", "Côte d'Ivoire" */
    bool vat;         /* an EU member state, GB, CH or NO: a VAT ID may be given */
} gh_country_t;

/* Returns the country whose code is exactly `code` (two upper-case letters, NUL-terminated),
 * or NULL when `code` is not an assigned alpha-2 code. Lower case is not folded: "it" is
 * NULL, the caller upper-cases first. `code` must not be NULL. */
const gh_country_t *gh_country_find(const char *code);

/* The English short name of `code` ("IT" gives "Italy"), or NULL on the same terms as
 * gh_country_find. */
const char *gh_country_name(const char *code);

/* True when `code` is one of the 27 EU member states, GB, CH or NO, where billing accepts a
 * VAT ID; false for every other code, known or not. */
bool gh_country_vat_applicable(const char *code);

/* The table for listing: gh_country_count() entries, sorted by code with no duplicates.
 * gh_country_at(i) asserts i < gh_country_count(). */
size_t gh_country_count(void);
const gh_country_t *gh_country_at(size_t i);

#endif
