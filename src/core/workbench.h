/* The Workbench: the console's playground. A call made there goes through the model API like
 * any other (admitted, rate-limited, metered and charged to the chosen workspace), under the
 * workspace's "Workbench" key, whose secret only this process knows (docs/architecture.md,
 * "The Workbench"). The control plane relays: it sends the request to the model API's public
 * address with libcurl and streams the answer back to the browser as it arrives. */
#ifndef GH_CORE_WORKBENCH_H
#define GH_CORE_WORKBENCH_H

#include <stddef.h>

#include "core/actor.h"
#include "core/app.h"

typedef struct gh_workbench_call gh_workbench_call_t;

/* Starts a call of the Messages API with `request` (a JSON object; "stream" is set to true)
 * in workspace `ws_id`, which `actor` must be allowed to use keys in (GH_ENOTFOUND when the
 * workspace is out of reach, GH_EPERM when keys are not theirs to use there, with `msg`).
 * Waits for the model API's answer to begin: on GH_OK, `*status` is its HTTP status and, for
 * 200, `*out` streams the event stream (gh_workbench_read); any other status comes with its
 * whole body (the model API's error) in `*out` too. The caller frees `*out`. */
gh_err_t gh_workbench_start(gh_app_t *app, const gh_actor_t *actor, const char *ws_id,
                            const char *request, gh_workbench_call_t **out, int *status,
                            char *msg, size_t msg_size);

/* Copies up to `max` bytes of the answer into `buf`, waiting for them: the count, 0 at the
 * end, -1 when the model API's answer broke off (the stream cannot be finished). */
long gh_workbench_read(gh_workbench_call_t *c, char *buf, size_t max);

/* Ends the call (a transfer still running is cut: the model API charges what it served). */
void gh_workbench_free(gh_workbench_call_t *c);

/* Forgets every Workbench secret (at shutdown). */
void gh_workbench_forget(void);

#endif
