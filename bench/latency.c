/* One client on one keep-alive connection, one request at a time: the latency of each request,
 * as it was, and its percentiles. bench/run uses it for the latency a proxy adds.
 *
 * Why not wrk: at one connection, wrk "corrects for coordinated omission": every latency longer
 * than the run's mean interval gets synthetic companions for the requests a constant-rate client
 * would have sent meanwhile. One 100 ms stall of this virtual machine in a 5 s run (they come
 * every few tens of thousands of requests, through nginx alone as through Gatehouse) is then
 * ~1,000 samples of a few tens of thousands, and the p99 is that stall's length, whichever
 * proxy it hit. Here a request is one sample, and stalls are counted apart.
 *
 *   build/bench-latency HOST:PORT PATH SECONDS [HEADER ...] < BODY
 *
 * sends `POST PATH` with the body read from standard input and each HEADER ("name: value") for
 * SECONDS, after a warm-up of 1,000 requests, and prints one line:
 *   RESULT rps=.. requests=.. p50_us=.. p90_us=.. p99_us=.. p999_us=.. max_us=.. stalls_5ms=..
 *   errors=.. non2xx=..
 * Responses must carry Content-Length (non-streaming requests). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REQUEST_MAX (64 * 1024)
#define RESPONSE_MAX (256 * 1024)
#define WARMUP 1000
#define STALL_US 5000

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int connect_to(const char *hostport)
{
    char host[64];
    const char *colon = strrchr(hostport, ':');
    errno = EINVAL; /* what a malformed HOST:PORT reports */
    if (colon == NULL || (size_t)(colon - hostport) >= sizeof(host))
        return -1;
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
        return -1;
    errno = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
        connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* Sends the request and reads its whole response; returns the status, or -1 on an error. */
static int exchange(int fd, const char *req, size_t req_len, char *buf)
{
    for (size_t off = 0; off < req_len;) {
        ssize_t n = write(fd, req + off, req_len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        off += (size_t)n;
    }
    size_t have = 0, head = 0, want = 0;
    for (;;) {
        if (have == RESPONSE_MAX)
            return -1;
        ssize_t n = read(fd, buf + have, RESPONSE_MAX - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        have += (size_t)n;
        if (head == 0) {
            buf[have < RESPONSE_MAX ? have : RESPONSE_MAX - 1] = '\0';
            char *end = strstr(buf, "\r\n\r\n");
            if (end == NULL)
                continue;
            head = (size_t)(end - buf) + 4;
            const char *cl = NULL;
            for (char *line = strstr(buf, "\r\n"); line != NULL && line < end;
                 line = strstr(line + 2, "\r\n"))
                if (strncasecmp(line + 2, "content-length:", 15) == 0)
                    cl = line + 17;
            if (cl == NULL)
                return -1; /* chunked or until the close: not what this client reads */
            want = head + (size_t)strtoull(cl, NULL, 10);
            if (want > RESPONSE_MAX)
                return -1;
        }
        if (have >= want) {
            if (have > want)
                return -1; /* more than one response: the server answered twice */
            return (int)strtol(buf + 9, NULL, 10); /* "HTTP/1.1 200" */
        }
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s HOST:PORT PATH SECONDS [HEADER ...] < BODY\n", argv[0]);
        return 2;
    }
    static char body[REQUEST_MAX], req[REQUEST_MAX], buf[RESPONSE_MAX];
    size_t body_len = fread(body, 1, sizeof(body) - 1, stdin);
    while (body_len > 0 && (body[body_len - 1] == '\n' || body[body_len - 1] == '\r'))
        body_len--;
    int n = snprintf(req, sizeof(req), "POST %s HTTP/1.1\r\nHost: %s\r\n", argv[2], argv[1]);
    for (int i = 4; i < argc && n > 0 && (size_t)n < sizeof(req); i++)
        n += snprintf(req + n, sizeof(req) - (size_t)n, "%s\r\n", argv[i]);
    if (n > 0 && (size_t)n < sizeof(req))
        n += snprintf(req + n, sizeof(req) - (size_t)n, "Content-Length: %zu\r\n\r\n", body_len);
    if (n <= 0 || (size_t)n + body_len > sizeof(req)) {
        fprintf(stderr, "bench-latency: the request is too large\n");
        return 2;
    }
    memcpy(req + n, body, body_len);
    size_t req_len = (size_t)n + body_len;

    int fd = connect_to(argv[1]);
    if (fd < 0) {
        fprintf(stderr, "bench-latency: cannot connect to %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    double seconds = strtod(argv[3], NULL);
    size_t cap = 1 << 20, count = 0;
    int64_t *lat = malloc(cap * sizeof(*lat));
    long errors = 0, non2xx = 0, stalls = 0;
    for (int i = 0; i < WARMUP; i++)
        if (exchange(fd, req, req_len, buf) < 0) {
            fprintf(stderr, "bench-latency: the warm-up failed\n");
            return 1;
        }
    int64_t start = now_ns(), stop = start + (int64_t)(seconds * 1e9), t = start;
    while (t < stop && lat != NULL) {
        int status = exchange(fd, req, req_len, buf);
        int64_t done = now_ns();
        if (status < 0) {
            errors++;
            close(fd);
            if ((fd = connect_to(argv[1])) < 0)
                break;
        } else if (status < 200 || status > 299) {
            non2xx++;
        }
        if (count == cap) {
            int64_t *more = realloc(lat, 2 * cap * sizeof(*lat));
            if (more == NULL)
                break;
            lat = more;
            cap *= 2;
        }
        lat[count] = (done - t) / 1000;
        stalls += lat[count] >= STALL_US;
        count++;
        t = done;
    }
    if (fd >= 0)
        close(fd);
    if (lat == NULL || count == 0) {
        fprintf(stderr, "bench-latency: no request was measured\n");
        return 1;
    }
    qsort(lat, count, sizeof(*lat), cmp_i64);
#define PCT(p) lat[(size_t)((double)(count - 1) * (p) / 100.0)]
    printf("RESULT rps=%.0f requests=%zu p50_us=%lld p90_us=%lld p99_us=%lld p999_us=%lld "
           "max_us=%lld stalls_5ms=%ld errors=%ld non2xx=%ld\n",
           (double)count / ((double)(t - start) / 1e9), count, (long long)PCT(50),
           (long long)PCT(90), (long long)PCT(99), (long long)PCT(99.9),
           (long long)lat[count - 1], stalls, errors, non2xx);
    free(lat);
    return 0;
}
