/* The console's connection guard: a cap per client address and a deadline per request (see
 * conns.h). */
#include "http/conns.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "lib/mono.h"

#define CONNS_BUCKETS 4096
/* How often the reaper looks for requests past their deadline. */
#define CONNS_REAP_EVERY_MS 200
/* At most one log line about cut connections per this many milliseconds. */
#define CONNS_LOG_EVERY_MS 10000

/* One client address with connections open. */
typedef struct conns_addr {
    struct conns_addr *next; /* in its bucket */
    unsigned char key[17];   /* family byte, then 4 (IPv4) or 8 (IPv6 /64) address bytes */
    int open;
    bool warned; /* the cap was reported since `open` last fell below it */
} conns_addr_t;

struct gh_conn {
    gh_conn_t *prev, *next; /* in gh_conns_t.conns */
    conns_addr_t *addr;     /* NULL for an exempt address */
    int fd;
    int64_t since_ms; /* waiting for a request since then */
    bool busy;
    bool cut;
};

struct gh_conns {
    int per_address_max;
    int request_timeout_ms;
    gh_conns_exempt_fn exempt;
    void *exempt_ctx;
    unsigned char hash_key[crypto_shorthash_KEYBYTES];

    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
    pthread_t reaper;
    conns_addr_t *buckets[CONNS_BUCKETS];
    gh_conn_t *conns; /* every tracked connection */
    uint64_t refused, timed_out, timed_out_logged;
    int64_t logged_ms;
};

/* The address's key: IPv4 (an IPv4-mapped IPv6 address counts as IPv4) or the /64 of an IPv6
 * address. Returns false for other families. */
static bool addr_key(const struct sockaddr *sa, unsigned char key[17], char *shown,
                     size_t shown_size)
{
    memset(key, 0, 17);
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        key[0] = 4;
        memcpy(key + 1, &in->sin_addr, 4);
        if (shown)
            inet_ntop(AF_INET, &in->sin_addr, shown, (socklen_t)shown_size);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        const unsigned char *b = in6->sin6_addr.s6_addr;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            key[0] = 4;
            memcpy(key + 1, b + 12, 4);
            if (shown)
                inet_ntop(AF_INET, b + 12, shown, (socklen_t)shown_size);
            return true;
        }
        key[0] = 6;
        memcpy(key + 1, b, 8);
        if (shown) {
            struct in6_addr prefix;
            memset(&prefix, 0, sizeof(prefix));
            memcpy(prefix.s6_addr, b, 8);
            inet_ntop(AF_INET6, &prefix, shown, (socklen_t)shown_size);
        }
        return true;
    }
    return false;
}

static conns_addr_t **bucket_of(gh_conns_t *g, const unsigned char key[17])
{
    unsigned char h[crypto_shorthash_BYTES];
    crypto_shorthash(h, key, 17, g->hash_key);
    uint32_t i;
    memcpy(&i, h, sizeof(i));
    return &g->buckets[i % CONNS_BUCKETS];
}

/* Under the lock. */
static conns_addr_t *addr_find(gh_conns_t *g, const unsigned char key[17])
{
    for (conns_addr_t *a = *bucket_of(g, key); a; a = a->next)
        if (!memcmp(a->key, key, 17))
            return a;
    return NULL;
}

static void *reaper_main(void *arg)
{
    gh_conns_t *g = arg;
    pthread_mutex_lock(&g->lock);
    while (!g->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += CONNS_REAP_EVERY_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        int rc = pthread_cond_timedwait(&g->wake, &g->lock, &until);
        if (g->stopping)
            break;
        if (rc != ETIMEDOUT && rc != 0)
            continue;
        int64_t now = gh_mono_ms();
        for (gh_conn_t *c = g->conns; c; c = c->next) {
            if (c->busy || c->cut || now - c->since_ms < g->request_timeout_ms)
                continue;
            /* libmicrohttpd owns the descriptor and closes it; it is still open here because
             * gh_conns_close, called before that, takes the same lock. Shutting it down makes
             * the connection's next read fail, and libmicrohttpd closes it its own way. */
            shutdown(c->fd, SHUT_RDWR);
            c->cut = true;
            g->timed_out++;
        }
        if (g->timed_out != g->timed_out_logged && now - g->logged_ms >= CONNS_LOG_EVERY_MS) {
            gh_log_warn("http: closed %llu connections whose request did not arrive within "
                        "%d ms (request_timeout_ms)",
                        (unsigned long long)(g->timed_out - g->timed_out_logged),
                        g->request_timeout_ms);
            g->timed_out_logged = g->timed_out;
            g->logged_ms = now;
        }
    }
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

gh_err_t gh_conns_new(gh_conns_t **out, int per_address_max, int request_timeout_ms,
                      gh_conns_exempt_fn exempt, void *exempt_ctx)
{
    assert(per_address_max >= 0 && request_timeout_ms > 0);
    gh_conns_t *g = calloc(1, sizeof(*g));
    if (!g)
        return GH_ENOMEM;
    g->per_address_max = per_address_max;
    g->request_timeout_ms = request_timeout_ms;
    g->exempt = exempt;
    g->exempt_ctx = exempt_ctx;
    g->logged_ms = gh_mono_ms() - CONNS_LOG_EVERY_MS;
    crypto_shorthash_keygen(g->hash_key);
    pthread_mutex_init(&g->lock, NULL);
    gh_mono_cond_init(&g->wake);
    if (pthread_create(&g->reaper, NULL, reaper_main, g)) {
        pthread_cond_destroy(&g->wake);
        pthread_mutex_destroy(&g->lock);
        free(g);
        return GH_EIO;
    }
    *out = g;
    return GH_OK;
}

void gh_conns_free(gh_conns_t *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->lock);
    g->stopping = true;
    pthread_cond_signal(&g->wake);
    pthread_mutex_unlock(&g->lock);
    pthread_join(g->reaper, NULL);
    /* libmicrohttpd reports every connection closed when it stops; should one be left, its
     * record has no owner any more and goes here. */
    while (g->conns) {
        gh_conn_t *c = g->conns;
        g->conns = c->next;
        free(c);
    }
    for (size_t i = 0; i < CONNS_BUCKETS; i++) {
        while (g->buckets[i]) {
            conns_addr_t *a = g->buckets[i];
            g->buckets[i] = a->next;
            free(a);
        }
    }
    pthread_cond_destroy(&g->wake);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

bool gh_conns_admit(gh_conns_t *g, const struct sockaddr *sa)
{
    unsigned char key[17];
    char shown[64];
    if (g->per_address_max == 0 || !addr_key(sa, key, shown, sizeof(shown)))
        return true;
    if (g->exempt && g->exempt(g->exempt_ctx, sa))
        return true;
    /* The connection is counted here, not when it starts, so that connections accepted at
     * the same moment by several workers cannot all slip under the cap. gh_conns_open then
     * finds the count taken. (If libmicrohttpd fails to set up an admitted connection, out of
     * memory, the count stays one too high until the address's other connections close.) */
    bool ok = true, warn = false;
    pthread_mutex_lock(&g->lock);
    conns_addr_t *a = addr_find(g, key);
    if (!a && (a = calloc(1, sizeof(*a))) != NULL) {
        memcpy(a->key, key, 17);
        conns_addr_t **b = bucket_of(g, key);
        a->next = *b;
        *b = a;
    }
    if (!a) {
        ok = false; /* out of memory: refusing is the safe side */
    } else if (a->open >= g->per_address_max) {
        ok = false;
        g->refused++;
        warn = !a->warned;
        a->warned = true;
    } else {
        a->open++;
    }
    pthread_mutex_unlock(&g->lock);
    if (warn)
        gh_log_warn("http: %s holds %d connections (max_connections_per_ip); refusing more "
                    "until some close",
                    shown, g->per_address_max);
    return ok;
}

/* Under the lock: one connection of `a` fewer. */
static void addr_release(gh_conns_t *g, conns_addr_t *a)
{
    assert(a->open > 0);
    if (--a->open < g->per_address_max)
        a->warned = false;
    if (a->open == 0) {
        conns_addr_t **p = bucket_of(g, a->key);
        while (*p != a)
            p = &(*p)->next;
        *p = a->next;
        free(a);
    }
}

gh_conn_t *gh_conns_open(gh_conns_t *g, const struct sockaddr *sa, int fd)
{
    unsigned char key[17];
    bool counted = sa && g->per_address_max > 0 && addr_key(sa, key, NULL, 0) &&
                   !(g->exempt && g->exempt(g->exempt_ctx, sa));
    gh_conn_t *c = calloc(1, sizeof(*c));
    if (!c) {
        if (counted) { /* give back what gh_conns_admit counted */
            pthread_mutex_lock(&g->lock);
            conns_addr_t *a = addr_find(g, key);
            if (a)
                addr_release(g, a);
            pthread_mutex_unlock(&g->lock);
        }
        return NULL;
    }
    c->fd = fd;
    c->since_ms = gh_mono_ms();
    pthread_mutex_lock(&g->lock);
    if (counted) {
        /* gh_conns_admit counted it (an admitted address always has its entry). */
        c->addr = addr_find(g, key);
        assert(c->addr && c->addr->open > 0);
    }
    c->next = g->conns;
    if (g->conns)
        g->conns->prev = c;
    g->conns = c;
    pthread_mutex_unlock(&g->lock);
    return c;
}

void gh_conns_close(gh_conns_t *g, gh_conn_t *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&g->lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        g->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->addr)
        addr_release(g, c->addr);
    pthread_mutex_unlock(&g->lock);
    free(c);
}

void gh_conns_set_busy(gh_conns_t *g, gh_conn_t *c, bool busy)
{
    if (!c)
        return;
    pthread_mutex_lock(&g->lock);
    c->busy = busy;
    if (!busy)
        c->since_ms = gh_mono_ms();
    pthread_mutex_unlock(&g->lock);
}

uint64_t gh_conns_refused(gh_conns_t *g)
{
    pthread_mutex_lock(&g->lock);
    uint64_t n = g->refused;
    pthread_mutex_unlock(&g->lock);
    return n;
}

uint64_t gh_conns_timed_out(gh_conns_t *g)
{
    pthread_mutex_lock(&g->lock);
    uint64_t n = g->timed_out;
    pthread_mutex_unlock(&g->lock);
    return n;
}
