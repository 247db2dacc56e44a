#include "unit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/conns.h"
#include "lib/crypto.h"

static struct sockaddr_storage addr(const char *text)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
    } else {
        assert_int_equal(inet_pton(AF_INET6, text, &in6->sin6_addr), 1);
        in6->sin6_family = AF_INET6;
    }
    return ss;
}

/* Admits and opens a connection from `text` (fd -1: never reaped in these tests). */
static gh_conn_t *connect_from(gh_conns_t *g, const char *text)
{
    struct sockaddr_storage ss = addr(text);
    if (!gh_conns_admit(g, (struct sockaddr *)&ss))
        return NULL;
    gh_conn_t *c = gh_conns_open(g, (struct sockaddr *)&ss, -1);
    assert_non_null(c);
    gh_conns_set_busy(g, c, true);
    return c;
}

static void caps_each_address(void **state)
{
    (void)state;
    gh_conns_t *g;
    assert_int_equal(gh_conns_new(&g, 3, 60000, NULL, NULL), GH_OK);
    gh_conn_t *c[3];
    for (int i = 0; i < 3; i++)
        assert_non_null(c[i] = connect_from(g, "192.0.2.1"));
    assert_null(connect_from(g, "192.0.2.1"));
    assert_null(connect_from(g, "::ffff:192.0.2.1")); /* the same address, IPv4-mapped */
    gh_conn_t *other = connect_from(g, "192.0.2.2");
    assert_non_null(other);
    assert_int_equal(gh_conns_refused(g), 2);
    /* One closes: one more may come. */
    gh_conns_close(g, c[1]);
    assert_non_null(c[1] = connect_from(g, "192.0.2.1"));
    for (int i = 0; i < 3; i++)
        gh_conns_close(g, c[i]);
    gh_conns_close(g, other);
    gh_conns_free(g);
}

static void ipv6_counts_by_64(void **state)
{
    (void)state;
    gh_conns_t *g;
    assert_int_equal(gh_conns_new(&g, 2, 60000, NULL, NULL), GH_OK);
    gh_conn_t *a = connect_from(g, "2001:db8::1");
    gh_conn_t *b = connect_from(g, "2001:db8::ffff:2");
    assert_non_null(a);
    assert_non_null(b);
    assert_null(connect_from(g, "2001:db8::3")); /* same /64 */
    gh_conn_t *c = connect_from(g, "2001:db8:0:1::1");
    assert_non_null(c); /* another /64 */
    gh_conns_close(g, a);
    gh_conns_close(g, b);
    gh_conns_close(g, c);
    gh_conns_free(g);
}

static bool exempt_10(void *ctx, const struct sockaddr *sa)
{
    (void)ctx;
    const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
    return sa->sa_family == AF_INET && (ntohl(in->sin_addr.s_addr) >> 24) == 10;
}

static void exempt_addresses_have_no_cap(void **state)
{
    (void)state;
    gh_conns_t *g;
    assert_int_equal(gh_conns_new(&g, 1, 60000, exempt_10, NULL), GH_OK);
    gh_conn_t *c[50];
    for (int i = 0; i < 50; i++)
        assert_non_null(c[i] = connect_from(g, "10.0.0.1"));
    gh_conn_t *x = connect_from(g, "192.0.2.9");
    assert_non_null(x);
    assert_null(connect_from(g, "192.0.2.9"));
    for (int i = 0; i < 50; i++)
        gh_conns_close(g, c[i]);
    gh_conns_close(g, x);
    gh_conns_free(g);
}

/* Waits (up to 10 s, a bound for a loaded machine, not a timing bet) for end-of-file on `fd`. */
static bool sees_eof(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 10000) != 1)
        return false;
    char b;
    return read(fd, &b, 1) == 0;
}

static void a_late_request_is_cut_and_a_busy_one_is_not(void **state)
{
    (void)state;
    gh_conns_t *g;
    assert_int_equal(gh_conns_new(&g, 0, 50, NULL, NULL), GH_OK);
    int busy_pair[2], late_pair[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, busy_pair), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, late_pair), 0);
    struct sockaddr_storage ss = addr("192.0.2.7");
    gh_conn_t *busy = gh_conns_open(g, (struct sockaddr *)&ss, busy_pair[0]);
    gh_conns_set_busy(g, busy, true);
    gh_conn_t *late = gh_conns_open(g, (struct sockaddr *)&ss, late_pair[0]);
    /* The late one is shut down by the reaper; the busy one, past the same deadline, is not
     * (one pass of the reaper looks at both under the lock that gh_conns_timed_out takes). */
    assert_true(sees_eof(late_pair[1]));
    assert_int_equal(gh_conns_timed_out(g), 1);
    gh_conns_close(g, late);
    gh_conns_close(g, busy);
    gh_conns_free(g);
    for (int i = 0; i < 2; i++) {
        close(busy_pair[i]);
        close(late_pair[i]);
    }
}

int main(void)
{
    if (gh_crypto_init())
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(caps_each_address),
        cmocka_unit_test(ipv6_counts_by_64),
        cmocka_unit_test(exempt_addresses_have_no_cap),
        cmocka_unit_test(a_late_request_is_cut_and_a_busy_one_is_not),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
