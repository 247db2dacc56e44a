#include "core/workbench.h"

#include <assert.h>
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/keys.h"
#include "core/workspaces.h"
#include "lib/log.h"

/* ---- the Workbench keys' secrets, in this process's memory only ---- */

#define SECRETS_MAX 256 /* workspaces remembered; one more gives its key a new secret again */

static struct {
    char key_id[GH_ID_MAX];
    char workspace_id[GH_ID_MAX];
    char secret[GH_KEY_MAX];
} secrets[SECRETS_MAX];
static size_t secrets_next;
static pthread_mutex_t secrets_lock = PTHREAD_MUTEX_INITIALIZER;

/* The secret of `w`'s Workbench key, making the key or giving it a new secret when this
 * process does not know one. The lock is held across the store write (no network), so two
 * first calls in one workspace cannot both renew the secret. */
static gh_err_t workbench_secret(gh_app_t *app, const gh_actor_t *actor, const gh_workspace_t *w,
                                 char secret[GH_KEY_MAX])
{
    pthread_mutex_lock(&secrets_lock);
    for (size_t i = 0; i < SECRETS_MAX; i++) {
        if (secrets[i].secret[0] && !strcmp(secrets[i].workspace_id, w->id)) {
            memcpy(secret, secrets[i].secret, GH_KEY_MAX);
            pthread_mutex_unlock(&secrets_lock);
            return GH_OK;
        }
    }
    gh_key_rec_t k;
    gh_err_t rc = gh_apikey_workbench(app, actor, w, &k, secret);
    if (rc == GH_OK) {
        size_t i = secrets_next;
        secrets_next = (secrets_next + 1) % SECRETS_MAX;
        snprintf(secrets[i].key_id, sizeof(secrets[i].key_id), "%s", k.id);
        snprintf(secrets[i].workspace_id, sizeof(secrets[i].workspace_id), "%s", w->id);
        memcpy(secrets[i].secret, secret, GH_KEY_MAX);
    }
    pthread_mutex_unlock(&secrets_lock);
    return rc;
}

void gh_workbench_forget(void)
{
    pthread_mutex_lock(&secrets_lock);
    memset(secrets, 0, sizeof(secrets));
    pthread_mutex_unlock(&secrets_lock);
}

/* ---- the relay ---- */

#define BUF_MAX (256 * 1024)       /* answer bytes held before the transfer is paused */
#define ERROR_MAX (64 * 1024)      /* an error answer is read whole, up to this */
#define CALL_TIMEOUT_MS (600000L)  /* a call, streaming included, ends after 10 minutes */

struct gh_workbench_call {
    CURLM *multi;
    CURL *easy;
    struct curl_slist *headers;
    char *request;
    char *buf; /* answer bytes not yet read, [off, len) */
    size_t off, len;
    bool paused, headers_done, finished;
    CURLcode result;
};

static size_t on_header(char *data, size_t size, size_t n, void *ctx)
{
    gh_workbench_call_t *c = ctx;
    size_t len = size * n;
    /* The blank line ends a head; an interim 1xx head is followed by another. */
    if (len <= 2 && (len == 0 || data[0] == '\r' || data[0] == '\n')) {
        long code = 0;
        curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &code);
        if (code >= 200)
            c->headers_done = true;
    }
    return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
    gh_workbench_call_t *c = ctx;
    size_t len = size * n;
    if (c->off == c->len)
        c->off = c->len = 0;
    if (c->len + len > BUF_MAX) {
        if (c->off) { /* make room at the front first */
            memmove(c->buf, c->buf + c->off, c->len - c->off);
            c->len -= c->off;
            c->off = 0;
        }
        if (c->len + len > BUF_MAX) {
            c->paused = true; /* the browser is slower than the model: wait for it */
            return CURL_WRITEFUNC_PAUSE;
        }
    }
    memcpy(c->buf + c->len, data, len);
    c->len += len;
    return len;
}

/* Runs the transfer until `enough(c)` or its end, waiting in curl_multi_poll. */
static void drive(gh_workbench_call_t *c, bool (*enough)(const gh_workbench_call_t *))
{
    while (!c->finished && !enough(c)) {
        int running = 0;
        if (curl_multi_perform(c->multi, &running) != CURLM_OK) {
            c->finished = true;
            c->result = CURLE_RECV_ERROR;
            break;
        }
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(c->multi, &left))) {
            if (m->msg == CURLMSG_DONE) {
                c->finished = true;
                c->result = m->data.result;
            }
        }
        if (c->finished || enough(c))
            break;
        curl_multi_poll(c->multi, NULL, 0, 1000, NULL);
    }
}

static bool head_known(const gh_workbench_call_t *c) { return c->headers_done; }
static bool has_bytes(const gh_workbench_call_t *c) { return c->len > c->off; }
static bool never(const gh_workbench_call_t *c) { (void)c; return false; }

void gh_workbench_free(gh_workbench_call_t *c)
{
    if (!c)
        return;
    if (c->multi && c->easy)
        curl_multi_remove_handle(c->multi, c->easy);
    if (c->easy)
        curl_easy_cleanup(c->easy);
    if (c->multi)
        curl_multi_cleanup(c->multi);
    for (struct curl_slist *h = c->headers; h; h = h->next) /* the key's secret is in one */
        memset(h->data, 0, strlen(h->data));
    curl_slist_free_all(c->headers);
    free(c->request);
    free(c->buf);
    free(c);
}

/* The request to relay: `request` with "stream": true, compact. NULL (with `msg`) when it is
 * not a JSON object. */
static char *relay_body(const char *request, char *msg, size_t msg_size)
{
    json_error_t e;
    json_t *j = json_loads(request, JSON_REJECT_DUPLICATES, &e);
    if (!json_is_object(j)) {
        json_decref(j);
        snprintf(msg, msg_size, "request must be a Messages API request: a JSON object.");
        return NULL;
    }
    json_object_set_new(j, "stream", json_true());
    char *out = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return out;
}

gh_err_t gh_workbench_start(gh_app_t *app, const gh_actor_t *actor, const char *ws_id,
                            const char *request, gh_workbench_call_t **out, int *status,
                            char *msg, size_t msg_size)
{
    *out = NULL;
    *status = 0;
    gh_workspace_t w;
    gh_ws_access_t acc;
    gh_err_t rc = gh_ws_load(app, actor, ws_id, &w, &acc);
    if (rc) {
        snprintf(msg, msg_size, "There is no workspace with id \"%.60s\".", ws_id);
        return rc;
    }
    if (!acc.manage_keys) {
        snprintf(msg, msg_size, "You cannot use the Workbench in the workspace \"%s\": it calls "
                                "the API with a key of the workspace, which needs the developer "
                                "or admin role there.", w.name);
        return GH_EPERM;
    }
    if (w.archived_at) {
        snprintf(msg, msg_size, "The workspace \"%s\" is archived.", w.name);
        return GH_EINVAL;
    }
    gh_workbench_call_t *c = calloc(1, sizeof(*c));
    if (!c)
        return GH_ENOMEM;
    c->request = relay_body(request, msg, msg_size);
    if (!c->request) {
        gh_workbench_free(c);
        return GH_EINVAL;
    }
    char secret[GH_KEY_MAX];
    if ((rc = workbench_secret(app, actor, &w, secret))) {
        gh_workbench_free(c);
        snprintf(msg, msg_size, "The Workbench key of \"%s\" could not be prepared. Try again.",
                 w.name);
        return rc;
    }
    char header[GH_KEY_MAX + 32], url[GH_CONFIG_STR + 32];
    snprintf(header, sizeof(header), "x-api-key: %s", secret);
    memset(secret, 0, sizeof(secret));
    snprintf(url, sizeof(url), "%s/v1/messages", app->cfg->public_api_url);
    struct curl_slist *h = NULL;
    c->buf = malloc(BUF_MAX);
    c->multi = curl_multi_init();
    c->easy = curl_easy_init();
    if (c->buf && c->multi && c->easy && (h = curl_slist_append(h, header)) &&
        (c->headers = h) && (h = curl_slist_append(h, "content-type: application/json")) &&
        (h = curl_slist_append(h, "anthropic-version: 2023-06-01")) &&
        (h = curl_slist_append(h, "accept: text/event-stream"))) {
        curl_easy_setopt(c->easy, CURLOPT_URL, url);
        curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->headers);
        curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, c->request);
        curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(c->request));
        curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
        curl_easy_setopt(c->easy, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c->easy, CURLOPT_HEADERDATA, c);
        curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
        curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, CALL_TIMEOUT_MS);
        curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c->easy, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_multi_add_handle(c->multi, c->easy);
    } else {
        memset(header, 0, sizeof(header));
        gh_workbench_free(c);
        return GH_ENOMEM;
    }
    /* curl_slist_append copied the header: this copy of the secret can go now, the list's is
     * wiped in gh_workbench_free. */
    memset(header, 0, sizeof(header));
    drive(c, head_known);
    long code = 0;
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &code);
    if (!c->headers_done || code <= 0) {
        gh_log_warn("workbench: the model API at %s did not answer: %s", app->cfg->public_api_url,
                    curl_easy_strerror(c->result));
        snprintf(msg, msg_size, "The model API could not be reached. Try again in a moment.");
        gh_workbench_free(c);
        return GH_EUNAVAIL;
    }
    if (code != 200) {
        /* An error answer (a refusal by admission, a bad request): read it whole. */
        drive(c, never);
        if (c->len - c->off > ERROR_MAX)
            c->len = c->off + ERROR_MAX;
    }
    *status = (int)code;
    *out = c;
    return GH_OK;
}

long gh_workbench_read(gh_workbench_call_t *c, char *buf, size_t max)
{
    if (!has_bytes(c) && !c->finished) {
        if (c->paused) {
            c->paused = false;
            curl_easy_pause(c->easy, CURLPAUSE_CONT);
        }
        drive(c, has_bytes);
    }
    if (has_bytes(c)) {
        size_t n = c->len - c->off;
        if (n > max)
            n = max;
        memcpy(buf, c->buf + c->off, n);
        c->off += n;
        return (long)n;
    }
    return c->result == CURLE_OK ? 0 : -1;
}
