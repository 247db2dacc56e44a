/* Active health checks; see health.h. */
#include "gateway/health.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <fcntl.h>

#include "lib/log.h"
#include "lib/mono.h"

struct gh_health {
    const gh_config_t *cfg;
    const gh_relay_models_t *rm;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond; /* CLOCK_MONOTONIC */
    bool stop;
};

/* A connected socket to host:port within the deadline, or -1. */
static int connect_by(const char *host, uint16_t port, int64_t deadline_ms)
{
    char service[8];
    snprintf(service, sizeof(service), "%u", (unsigned)port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC}, *res = NULL;
    if (getaddrinfo(host, service, &hints, &res) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *a = res; a != NULL && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
            close(fd);
            fd = -1;
            continue;
        }
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int left = (int)(deadline_ms - gh_mono_ms());
        int soerr = 0;
        socklen_t len = sizeof(soerr);
        if (left <= 0 || poll(&p, 1, left) != 1 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        /* Blocking from here on, bounded by the socket timeouts. */
        int fl = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
        int64_t left = deadline_ms - gh_mono_ms();
        if (left < 1)
            left = 1;
        struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    return fd;
}

bool gh_health_probe(const gh_relay_deploy_info_t *info, const char *path, int timeout_ms)
{
    int64_t deadline = gh_mono_ms() + timeout_ms;
    int fd = connect_by(info->host, info->port, deadline);
    if (fd < 0)
        return false;
    bool ok = false;
    SSL *ssl = NULL;
    char req[1024], head[64];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nhost: %s\r\nconnection: close\r\n"
                     "user-agent: gatehouse-health\r\n\r\n",
                     path, info->authority);
    if (n < 0 || (size_t)n >= sizeof(req))
        goto out_close;
    if (info->ssl_ctx != NULL) {
        ssl = SSL_new(info->ssl_ctx);
        if (ssl == NULL || SSL_set_fd(ssl, fd) != 1)
            goto out_close;
        SSL_set_tlsext_host_name(ssl, info->tls_name);
        if (SSL_connect(ssl) != 1 || SSL_write(ssl, req, n) != n)
            goto out_close;
    } else if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        goto out_close;
    }
    /* The status line is all that is read: "HTTP/1.1 200 ...". */
    size_t got = 0;
    while (got < 12 && gh_mono_ms() < deadline) {
        ssize_t r = ssl != NULL ? SSL_read(ssl, head + got, (int)(sizeof(head) - got))
                                : recv(fd, head + got, sizeof(head) - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    ok = got >= 12 && memcmp(head, "HTTP/1.", 7) == 0 && head[9] == '2';
out_close:
    if (ssl != NULL)
        SSL_free(ssl);
    close(fd);
    return ok;
}

/* One round: every due deployment of every checked model. Returns the time of the next. */
static int64_t check_round(gh_health_t *h, int64_t *next_at)
{
    int64_t now = gh_mono_ms(), soonest = now + 60000;
    for (int m = 0; m < h->cfg->nmodels; m++) {
        const gh_model_cfg_t *mc = &h->cfg->models[m];
        if (!mc->health_path[0] || mc->ndeployments == 0)
            continue;
        if (next_at[m] <= now) {
            for (int d = 0; d < mc->ndeployments; d++) {
                gh_relay_deploy_info_t info;
                if (!gh_relay_models_deploy(h->rm, (size_t)m, (size_t)d, &info))
                    continue;
                bool ok = gh_health_probe(&info, mc->health_path, mc->connect_timeout_ms);
                gh_deploy_health_t before = gh_balancer_health(info.balancer, d, gh_mono_ms());
                gh_balancer_probe_result(info.balancer, d, ok, gh_mono_ms());
                gh_deploy_health_t after = gh_balancer_health(info.balancer, d, gh_mono_ms());
                if (before != after)
                    gh_log_info("[model %s] deployment %s is %s after its health check", mc->name,
                                mc->deployments[d].url, after == GH_DEPLOY_UP ? "back" : "ejected");
            }
            next_at[m] = gh_mono_ms() + mc->health_interval_ms;
        }
        if (next_at[m] < soonest)
            soonest = next_at[m];
    }
    return soonest;
}

static void *health_main(void *arg)
{
    gh_health_t *h = arg;
    int64_t next_at[GH_MODELS_MAX] = {0};
    pthread_mutex_lock(&h->mu);
    while (!h->stop) {
        pthread_mutex_unlock(&h->mu);
        int64_t wake = check_round(h, next_at);
        pthread_mutex_lock(&h->mu);
        struct timespec ts = {(time_t)(wake / 1000), (long)(wake % 1000) * 1000000};
        while (!h->stop && gh_mono_ms() < wake)
            pthread_cond_timedwait(&h->cond, &h->mu, &ts);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

gh_err_t gh_health_start(gh_health_t **out, const gh_config_t *cfg, const gh_relay_models_t *rm)
{
    *out = NULL;
    bool any = false;
    for (int m = 0; m < cfg->nmodels; m++)
        any = any || (cfg->models[m].health_path[0] && cfg->models[m].ndeployments > 0);
    if (!any)
        return GH_OK;
    gh_health_t *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return GH_ENOMEM;
    h->cfg = cfg;
    h->rm = rm;
    pthread_mutex_init(&h->mu, NULL);
    gh_mono_cond_init(&h->cond);
    if (pthread_create(&h->thread, NULL, health_main, h) != 0) {
        pthread_cond_destroy(&h->cond);
        pthread_mutex_destroy(&h->mu);
        free(h);
        return GH_EINTERNAL;
    }
    *out = h;
    return GH_OK;
}

void gh_health_stop(gh_health_t *h)
{
    if (h == NULL)
        return;
    pthread_mutex_lock(&h->mu);
    h->stop = true;
    pthread_cond_signal(&h->cond);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->thread, NULL);
    pthread_cond_destroy(&h->cond);
    pthread_mutex_destroy(&h->mu);
    free(h);
}
