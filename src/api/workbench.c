/* POST /v1/organizations/workbench/messages: the console's Workbench. The body names the
 * workspace and carries a Messages API request; the answer is the model API's own, streamed
 * as it arrives (text/event-stream), or its error with its status. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "core/workbench.h"

static long read_call(void *ctx, char *buf, size_t max)
{
    return gh_workbench_read(ctx, buf, max);
}

static void end_call(void *ctx)
{
    gh_workbench_free(ctx);
}

void gh_api_workbench_messages(gh_req_t *req)
{
    static const char *const fields[] = {"workspace_id", "request", NULL};
    gh_api_ctx_t *ctx = gh_api_ctx(req);
    json_t *body = gh_api_body(req);
    if (!body)
        return;
    const char *ws_id;
    json_t *request = json_object_get(body, "request");
    if (!gh_api_known_fields(req, body, fields, NULL) ||
        !gh_api_str(req, body, "workspace_id", true, false, &ws_id)) {
        json_decref(body);
        return;
    }
    if (!json_is_object(request)) {
        gh_res_error(req, GH_EINVAL, "request is required: a Messages API request (an object "
                                     "with model, max_tokens and messages).");
        json_decref(body);
        return;
    }
    char *text = json_dumps(request, JSON_COMPACT);
    char msg[512] = "";
    int status = 0;
    gh_workbench_call_t *call = NULL;
    gh_err_t rc = text ? gh_workbench_start(ctx->app, &ctx->actor, ws_id, text, &call, &status,
                                            msg, sizeof(msg))
                       : GH_ENOMEM;
    free(text);
    json_decref(body);
    if (rc) {
        gh_api_fail(req, rc, msg, "The Workbench could not start the call. Try again.");
        return;
    }
    if (status != 200) {
        /* The model API's own error, as it answered (JSON in Anthropic's shape). */
        char *err = malloc(64 * 1024);
        long n = err ? gh_workbench_read(call, err, 64 * 1024) : -1;
        if (n > 0)
            gh_res_body(req, status, "application/json", err, (size_t)n);
        else
            gh_res_error(req, GH_EUNAVAIL, "The model API answered %d with no message.", status);
        free(err);
        gh_workbench_free(call);
        return;
    }
    gh_res_stream(req, 200, "text/event-stream", read_call, end_call, call);
}
