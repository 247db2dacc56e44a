/* Who is acting on an organization: a signed-in person (through their session) or an admin
 * key. Built by the API layer once per request; core functions use it to decide what is
 * allowed and to record the audit trail. */
#ifndef GH_CORE_ACTOR_H
#define GH_CORE_ACTOR_H

#include "core/org.h"
#include "lib/crypto.h"
#include "store/store.h"

typedef enum { GH_ACTOR_USER, GH_ACTOR_ADMIN_KEY } gh_actor_kind_t;

typedef struct gh_actor {
    gh_actor_kind_t kind;
    char id[GH_ID_MAX];       /* user_01… or adminkey_01… */
    char label[401];          /* the person's email, or the admin key's name */
    char org_id[GH_ID_MAX];
    gh_role_t role; /* GH_ROLE_ADMIN for admin keys */
    char ip[64];
} gh_actor_t;

/* "user" or "admin_key", as the API and the audit log name them. */
static inline const char *gh_actor_type(const gh_actor_t *a)
{
    return a->kind == GH_ACTOR_USER ? "user" : "admin_key";
}

#endif
