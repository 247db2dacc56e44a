/* Who is acting on an organization: a signed-in person (through their session) or an admin
 * key. Built by the API layer once per request; core functions use it to decide what is
 * allowed and to record the audit trail. Two actors never come from a request: staff on the
 * command line (`gatehouse credits grant`) and the system itself (auto-reload, the billing
 * scheduler). */
#ifndef GH_CORE_ACTOR_H
#define GH_CORE_ACTOR_H

#include "core/org.h"
#include "lib/crypto.h"
#include "store/rows.h"

/* The store's handles (store/store.h), used here only by pointer. */
typedef struct gh_store gh_store_t;
typedef struct gh_db gh_db_t;

typedef enum { GH_ACTOR_USER, GH_ACTOR_ADMIN_KEY, GH_ACTOR_STAFF, GH_ACTOR_SYSTEM } gh_actor_kind_t;

typedef struct gh_actor {
    gh_actor_kind_t kind;
    char id[GH_ID_MAX];       /* user_01… or adminkey_01… */
    char label[401];          /* the person's email, or the admin key's name */
    char org_id[GH_ID_MAX];
    gh_role_t role; /* GH_ROLE_ADMIN for admin keys */
    char ip[64];
} gh_actor_t;

/* "user", "admin_key", "staff" or "system", as the API and the audit log name them. */
static inline const char *gh_actor_type(const gh_actor_t *a)
{
    switch (a->kind) {
    case GH_ACTOR_USER: return "user";
    case GH_ACTOR_ADMIN_KEY: return "admin_key";
    case GH_ACTOR_STAFF: return "staff";
    case GH_ACTOR_SYSTEM: return "system";
    }
    return "system";
}

#endif
