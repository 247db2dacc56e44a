/* The model API's JSON scanner on bodies of realistic shape: a request whose prompt is one
 * long string (with some UTF-8 and an escape every 200 bytes), at 1 KB, 100 KB and 10 MB.
 * Side by side in one run: the scanner (gh_request_scan, which finds a string's plain bytes
 * sixteen at a time), a byte-at-a-time loop that only looks for the string's end (what the
 * scanner's string loop was before, without the rest of its checks: a lower bound on the old
 * cost), and memchr over the same bytes (the memory's own speed). Best of 50 runs each.
 *
 *   make build/bench-scan && build/bench-scan */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/request.h"

#define BODY_OVERHEAD 4096 /* what a body holds besides its prompt, at most */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* A request body whose prompt is `prompt` bytes, in `b` of `size` bytes (room for the prompt
 * and BODY_OVERHEAD more); returns its length. */
static size_t make_body(char *b, size_t size, size_t prompt)
{
    static const char text[] = "The quick brown fox jumps over the lazy dog; caf\xc3\xa9 ";
    size_t n = (size_t)snprintf(b, size,
                                "{\"model\":\"m\",\"max_tokens\":64,\"messages\":[{\"role\":"
                                "\"user\",\"content\":\"");
    for (size_t i = 0; i < prompt; i++) {
        if (i % 200 == 199) {
            b[n++] = '\\';
            b[n++] = 'n';
            i++;
        } else {
            b[n++] = text[i % (sizeof(text) - 1)];
        }
    }
    return n + (size_t)snprintf(b + n, size - n, "\"}]}");
}

/* The byte loop alone: to the end of the one long string, escapes skipped. */
static size_t byte_loop(const unsigned char *s, size_t len)
{
    size_t quotes = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"' || s[i] < 0x20)
            quotes++;
    }
    return quotes;
}

int main(void)
{
    static const size_t sizes[] = {1000, 100000, 10000000};
    size_t body_size = 10000000 + BODY_OVERHEAD;
    char *body = malloc(body_size);
    if (!body)
        return 1;
    printf("%-10s %14s %14s %14s   (best of 50; ns per byte)\n", "body", "scanner", "byte loop",
           "memchr");
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t n = make_body(body, body_size, sizes[k]);
        double best[3] = {1e9, 1e9, 1e9};
        volatile size_t sink = 0;
        for (int r = 0; r < 50; r++) {
            double t = now_s();
            if (gh_request_scan(body, n, GH_REQUEST_DEPTH_MAX, NULL, NULL, NULL, NULL) != GH_OK) {
                fprintf(stderr, "bench-scan: the body does not scan\n");
                return 1;
            }
            double d = now_s() - t;
            best[0] = d < best[0] ? d : best[0];
            t = now_s();
            sink += byte_loop((const unsigned char *)body, n);
            d = now_s() - t;
            best[1] = d < best[1] ? d : best[1];
            t = now_s();
            sink += memchr(body, '\x01', n) == NULL;
            d = now_s() - t;
            best[2] = d < best[2] ? d : best[2];
        }
        (void)sink;
        printf("%-10zu", n);
        for (int i = 0; i < 3; i++)
            printf(" %9.1f us %4.2f", best[i] * 1e6, best[i] * 1e9 / (double)n);
        printf("\n");
    }
    free(body);
    return 0;
}
