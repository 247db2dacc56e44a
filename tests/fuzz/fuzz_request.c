/* Fuzzes the model request parser and the body rewrite (src/gateway/request.c): any input
 * either parses or is refused with a message, and a body that parses is rewritten (model
 * spliced, usage forced on) into exactly the size promised, and the rewritten body parses
 * again to the same request shape. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    gh_api_kind_t api = (gh_api_kind_t)(data[0] % 3);
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    gh_request_t r;
    char msg[GH_REQUEST_MSG_MAX];
    if (gh_request_parse(&r, api, body, len, msg) != GH_OK) {
        assert(memchr(msg, '\0', sizeof(msg)) != NULL && msg[0] != '\0');
        return 0;
    }
    static const char model_json[] = "\"upstream/model-name\"";
    size_t model_len = sizeof(model_json) - 1;
    for (int force = 0; force <= 1; force++) {
        size_t want = gh_request_rewrite_size(&r, len, model_len, force);
        char *out = malloc(want ? want : 1);
        assert(out != NULL);
        size_t got = gh_request_rewrite(&r, body, len, model_json, model_len, force, out);
        assert(got == want);
        gh_request_t again;
        char msg2[GH_REQUEST_MSG_MAX];
        assert(gh_request_parse(&again, api, out, got, msg2) == GH_OK);
        assert(again.stream == r.stream);
        free(out);
    }
    return 0;
}
