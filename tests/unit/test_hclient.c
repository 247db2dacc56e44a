/* The upstream client's chunked-transfer decoder: whole bodies, every split point of the
 * input (bytes arrive as the network delivers them), extensions, trailers, bare LF, and the
 * malformed inputs that must be refused. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/hclient.h"

/* Feeds `wire` to a decoder in pieces of at most `piece` bytes, carrying unconsumed bytes
 * over like a socket buffer does; returns the decoder's last result and the decoded data. */
static int feed(const char *wire, size_t wire_len, size_t piece, char *out, size_t *out_len,
                size_t *trailing)
{
    gh_dechunk_t d;
    memset(&d, 0, sizeof(d));
    char buf[4096];
    size_t have = 0, pos = 0, total = 0;
    int rc = 0;
    *trailing = 0;
    while (pos < wire_len || have != 0) {
        size_t n = wire_len - pos < piece ? wire_len - pos : piece;
        memcpy(buf + have, wire + pos, n);
        have += n;
        pos += n;
        size_t data_len, used;
        rc = gh_dechunk(&d, buf, have, &data_len, &used);
        if (rc < 0)
            return rc;
        memcpy(out + total, buf, data_len);
        total += data_len;
        memmove(buf, buf + used, have - used);
        have -= used;
        if (rc == 1) {
            *trailing = have + (wire_len - pos);
            break;
        }
        if (n == 0)
            break; /* nothing more to come and the decoder wants more */
    }
    *out_len = total;
    return rc;
}

static void check_all_splits(const char *wire, const char *expect)
{
    size_t wire_len = strlen(wire);
    for (size_t piece = 1; piece <= wire_len; piece++) {
        char out[4096];
        size_t out_len, trailing;
        int rc = feed(wire, wire_len, piece, out, &out_len, &trailing);
        assert_int_equal(rc, 1);
        assert_int_equal(out_len, strlen(expect));
        assert_memory_equal(out, expect, out_len);
        assert_int_equal(trailing, 0);
    }
}

static void decodes_at_every_split(void **state)
{
    (void)state;
    check_all_splits("5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n", "hello, world");
    /* Upper- and lower-case hex, leading zeros, an SSE event across chunks. */
    check_all_splits("0000A\r\nevent: mes\r\n19\r\nsage_stop\ndata: {\"a\":1}\n\n\r\n0\r\n\r\n",
                     "event: message_stop\ndata: {\"a\":1}\n\n");
    check_all_splits("1f\r\n0123456789abcdefghijklmnopqrstu\r\n0\r\n\r\n",
                     "0123456789abcdefghijklmnopqrstu");
}

static void takes_extensions_trailers_and_bare_lf(void **state)
{
    (void)state;
    check_all_splits("3;name=value\r\nabc\r\n0;last\r\n\r\n", "abc");
    check_all_splits("3\r\nabc\r\n0\r\nx-trailer: 1\r\nx-other: 2\r\n\r\n", "abc");
    check_all_splits("3\nabc\n0\n\n", "abc");
    check_all_splits("0\r\n\r\n", "");
}

static void stops_at_the_end_of_the_body(void **state)
{
    (void)state;
    const char wire[] = "2\r\nok\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n";
    gh_dechunk_t d;
    memset(&d, 0, sizeof(d));
    char buf[sizeof(wire)];
    memcpy(buf, wire, sizeof(wire));
    size_t data_len, used;
    assert_int_equal(gh_dechunk(&d, buf, sizeof(wire) - 1, &data_len, &used), 1);
    assert_int_equal(data_len, 2);
    assert_memory_equal(buf, "ok", 2);
    assert_int_equal(used, strlen("2\r\nok\r\n0\r\n\r\n"));
}

static void refuses_malformed_input(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "g\r\n",                          /* not hex */
        "\r\n",                           /* no size at all */
        "3\r\nabcX\r\n",                  /* data longer than its size */
        "3\rxabc",                        /* CR without LF */
        "1000000000000000\r\n",           /* 16 hex digits: beyond any real chunk */
        "3\r\nabc\r\r",                   /* CR CR after data */
        "0\r\n\rx",                       /* broken final CRLF */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char out[64];
        size_t out_len, trailing;
        int rc = feed(bad[i], strlen(bad[i]), strlen(bad[i]), out, &out_len, &trailing);
        assert_int_equal(rc, -1);
    }
}

static void incomplete_input_asks_for_more(void **state)
{
    (void)state;
    const char wire[] = "5\r\nhel";
    gh_dechunk_t d;
    memset(&d, 0, sizeof(d));
    char buf[sizeof(wire)];
    memcpy(buf, wire, sizeof(wire));
    size_t data_len, used;
    assert_int_equal(gh_dechunk(&d, buf, sizeof(wire) - 1, &data_len, &used), 0);
    assert_int_equal(data_len, 3);
    assert_int_equal(used, sizeof(wire) - 1);
    assert_int_equal(d.left, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(decodes_at_every_split),
        cmocka_unit_test(takes_extensions_trailers_and_bare_lf),
        cmocka_unit_test(stops_at_the_end_of_the_body),
        cmocka_unit_test(refuses_malformed_input),
        cmocka_unit_test(incomplete_input_asks_for_more),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
