#include "unit.h"

#include <stdbool.h>
#include <string.h>

#include "lib/framing.h"

static int head(const char *s)
{
    char msg[GH_FRAMING_MSG_SIZE];
    msg[0] = '\0';
    int status = gh_framing_check_head(s, strlen(s), msg, sizeof(msg));
    assert_true(status == 0 || msg[0] != '\0'); /* every refusal says why */
    return status;
}

static void plain_requests_pass(void **state)
{
    (void)state;
    assert_int_equal(head("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
    assert_int_equal(head("POST /v1/messages HTTP/1.1\r\nhost: a\r\ncontent-length: 12\r\n"
                          "x-api-key: k\r\n\r\n{\"a\":1}"),
                     0);
    assert_int_equal(head("POST / HTTP/1.1\nHost: a\nTransfer-Encoding:  Chunked \n\n"), 0);
    /* The same length twice is one length. */
    assert_int_equal(head("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                          "Content-Length: 3\r\n\r\n"),
                     0);
    /* HTTP/1.0 needs no Host; empty values are values. */
    assert_int_equal(head("GET / HTTP/1.0\r\nX-Empty:\r\n\r\n"), 0);
}

static void ambiguous_lengths_are_refused(void **state)
{
    (void)state;
    assert_int_equal(head("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                          "Content-Length: 40\r\n\r\n"),
                     400);
    assert_int_equal(head("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n"),
                     400);
    assert_int_equal(head("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                          "Transfer-Encoding: x\r\n\r\n"),
                     400);
    assert_int_equal(head("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1e3\r\n\r\n"), 400);
    assert_int_equal(head("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"), 400);
    assert_int_equal(head("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3,4\r\n\r\n"), 400);
}

static void unknown_codings_are_not_implemented(void **state)
{
    (void)state;
    assert_int_equal(head("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
                     501);
    assert_int_equal(head("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n"),
                     501);
}

static void malformed_lines_are_refused(void **state)
{
    (void)state;
    /* obs-fold */
    assert_int_equal(head("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n 0\r\n\r\n"), 400);
    assert_int_equal(head("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n"), 400);
    /* a space before the colon */
    assert_int_equal(head("POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n"), 400);
    /* no colon, no Host, two Hosts */
    assert_int_equal(head("GET / HTTP/1.1\r\nHost: a\r\nbroken\r\n\r\n"), 400);
    assert_int_equal(head("GET / HTTP/1.1\r\n\r\n"), 400);
    assert_int_equal(head("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
    /* a bare CR, and a head without its empty line */
    assert_int_equal(head("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n"), 400);
    assert_int_equal(head("GET / HTTP/1.1\r\nHost: a\r\n"), 400);
    /* a NUL (strlen would stop at it, so the length is given) */
    static const char nul[] = "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n";
    char msg[GH_FRAMING_MSG_SIZE];
    assert_int_equal(gh_framing_check_head(nul, sizeof(nul) - 1, msg, sizeof(msg)), 400);
}

static void parsed_headers_are_checked(void **state)
{
    (void)state;
    char msg[GH_FRAMING_MSG_SIZE];
    gh_framing_header_t h[] = {{"Host", 4, "a", 1}, {"X-N", 3, "a\0b", 3}};
    assert_int_equal(gh_framing_check(h, 2, true, msg, sizeof(msg)), 400);
    h[1].value_len = 1;
    assert_int_equal(gh_framing_check(h, 2, true, msg, sizeof(msg)), 0);
    gh_framing_header_t folded[] = {{"Host", 4, "a", 1}, {"", 0, "x", 1}};
    assert_int_equal(gh_framing_check(folded, 2, true, msg, sizeof(msg)), 400);
}

/* Each of the 256 bytes, in a name and in a value: a name takes exactly RFC 9110's token
 * characters, a value everything but NUL, CR and LF. */
static void every_byte_is_judged_as_the_rfc_says(void **state)
{
    (void)state;
    char msg[GH_FRAMING_MSG_SIZE];
    for (int b = 0; b < 256; b++) {
        bool token = (b >= '0' && b <= '9') || (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') ||
                     (b != 0 && strchr("!#$%&'*+-.^_`|~", b) != NULL);
        char name[] = {'X', '-', (char)b, 'n'}, value[] = {'v', (char)b, 'w'};
        gh_framing_header_t h[] = {{"Host", 4, "a", 1}, {name, sizeof(name), "1", 1}};
        if ((gh_framing_check(h, 2, true, msg, sizeof(msg)) == 0) != token)
            fail_msg("byte 0x%02x in a name: %s", b, token ? "refused" : "accepted");
        gh_framing_header_t hv[] = {{"Host", 4, "a", 1}, {"X-V", 3, value, sizeof(value)}};
        bool bad = b == 0 || b == '\r' || b == '\n';
        if ((gh_framing_check(hv, 2, true, msg, sizeof(msg)) == 400) != bad)
            fail_msg("byte 0x%02x in a value: %s", b, bad ? "accepted" : "refused");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_requests_pass),
        cmocka_unit_test(ambiguous_lengths_are_refused),
        cmocka_unit_test(unknown_codings_are_not_implemented),
        cmocka_unit_test(malformed_lines_are_refused),
        cmocka_unit_test(parsed_headers_are_checked),
        cmocka_unit_test(every_byte_is_judged_as_the_rfc_says),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
