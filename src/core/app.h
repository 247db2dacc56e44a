/* The application: what every control-plane operation needs, built once in main and passed
 * down. Owned by main; everything here outlives the servers. */
#ifndef GH_CORE_APP_H
#define GH_CORE_APP_H

#include <stdint.h>

#include "core/pay.h"
#include "core/state.h"
#include "core/usage.h"
#include "lib/config.h"
#include "lib/mail.h"
#include "lib/throttle.h"
#include "store/rows.h"

/* The store's handles (store/store.h), used here only by pointer. */
typedef struct gh_store gh_store_t;
typedef struct gh_db gh_db_t;

typedef struct gh_app {
    const gh_config_t *cfg;
    gh_store_t *store;
    gh_mailer_t *mailer;
    gh_throttle_t *throttle;
    gh_state_t *state; /* what the data plane reads; NULL in tests without one */
    gh_usage_t *usage; /* the usage writer, for its gauges; may be NULL */
    gh_pay_t *pay;     /* the payment provider ([billing] provider); NULL where nothing is
                        * charged (command-line tools) */
    struct gh_billing *billing; /* in-flight purchases and the billing scheduler; may be NULL
                                 * where nothing is charged */
    struct gh_admission *admission; /* the admission engine's control side (core/admission.h);
                                     * NULL where nothing is admitted (command-line tools) */
    struct gh_outbox *outbox; /* the mailer thread (core/outbox.h); NULL: mail is sent on
                               * the thread that queued it, after its commit */
    struct gh_cluster *cluster; /* the node's cluster side (core/cluster.h); NULL in
                                 * command-line tools, which are never the leader's jobs */
    int64_t (*now)(void); /* Unix seconds; tests inject their own clock */
} gh_app_t;

/* The real clock. */
int64_t gh_app_clock(void);

#endif
