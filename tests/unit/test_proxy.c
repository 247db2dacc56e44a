#include "unit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "lib/proxy.h"

static gh_proxy_list_t list(const char *text)
{
    gh_proxy_list_t l;
    char err[200];
    assert_int_equal(gh_proxy_list_parse(text, &l, err, sizeof(err)), GH_OK);
    return l;
}

static void lists_parse_and_match(void **state)
{
    (void)state;
    gh_proxy_list_t l = list(" 10.1.2.3/8, 192.168.0.7  fd00::/8,::1 ");
    assert_int_equal(l.count, 4);
    assert_true(gh_proxy_trusted_text(&l, "10.200.0.1"));
    assert_false(gh_proxy_trusted_text(&l, "11.0.0.1"));
    assert_true(gh_proxy_trusted_text(&l, "192.168.0.7"));
    assert_false(gh_proxy_trusted_text(&l, "192.168.0.8"));
    assert_true(gh_proxy_trusted_text(&l, "fd12:3456::1"));
    assert_true(gh_proxy_trusted_text(&l, "::1"));
    assert_true(gh_proxy_trusted_text(&l, "::ffff:10.0.0.9")); /* IPv4-mapped */
    assert_false(gh_proxy_trusted_text(&l, "not an address"));

    struct sockaddr_in in = {.sin_family = AF_INET};
    inet_pton(AF_INET, "10.9.9.9", &in.sin_addr);
    assert_true(gh_proxy_trusted(&l, (struct sockaddr *)&in));
    inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
    assert_false(gh_proxy_trusted(&l, (struct sockaddr *)&in));
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::ffff:192.168.0.7", &in6.sin6_addr);
    assert_true(gh_proxy_trusted(&l, (struct sockaddr *)&in6));

    gh_proxy_list_t empty = list("");
    assert_int_equal(empty.count, 0);
    assert_false(gh_proxy_trusted_text(&empty, "10.0.0.1"));

    char err[200];
    gh_proxy_list_t bad;
    assert_int_equal(gh_proxy_list_parse("10.0.0.0/33", &bad, err, sizeof(err)), GH_EINVAL);
    assert_non_null(strstr(err, "10.0.0.0/33"));
    assert_int_equal(gh_proxy_list_parse("proxy.example.com", &bad, err, sizeof(err)), GH_EINVAL);
    assert_int_equal(gh_proxy_list_parse("10.0.0.0/", &bad, err, sizeof(err)), GH_EINVAL);
    assert_int_equal(gh_proxy_list_parse("::/129", &bad, err, sizeof(err)), GH_EINVAL);
}

static void the_client_is_the_first_untrusted_hop_from_the_right(void **state)
{
    (void)state;
    gh_proxy_list_t l = list("10.0.0.0/8");
    char out[GH_PROXY_ADDR_SIZE] = "unchanged";
    /* A client's own header, then the proxy's hop: the forged part is to the left. */
    assert_true(gh_proxy_client(&l, "6.6.6.6, 203.0.113.9", NULL, out, sizeof(out)));
    assert_string_equal(out, "203.0.113.9");
    /* Chains of trusted proxies are skipped. */
    assert_true(gh_proxy_client(&l, "203.0.113.9, 10.0.0.2,10.0.0.3", NULL, out, sizeof(out)));
    assert_string_equal(out, "203.0.113.9");
    /* Only proxies: the leftmost is the client. */
    assert_true(gh_proxy_client(&l, "10.0.0.5, 10.0.0.6", NULL, out, sizeof(out)));
    assert_string_equal(out, "10.0.0.5");
    /* Ports and brackets, canonical output. */
    assert_true(gh_proxy_client(&l, "[2001:DB8::0001]:443", NULL, out, sizeof(out)));
    assert_string_equal(out, "2001:db8::1");
    assert_true(gh_proxy_client(&l, "198.51.100.4:5555", NULL, out, sizeof(out)));
    assert_string_equal(out, "198.51.100.4");
    /* Garbage nearest to us means nothing can be believed. */
    snprintf(out, sizeof(out), "unchanged");
    assert_false(gh_proxy_client(&l, "203.0.113.9, garbage", NULL, out, sizeof(out)));
    assert_false(gh_proxy_client(&l, "", NULL, out, sizeof(out)));
    assert_false(gh_proxy_client(&l, NULL, NULL, out, sizeof(out)));
    assert_string_equal(out, "unchanged");
}

static void forwarded_is_read_when_there_is_no_x_forwarded_for(void **state)
{
    (void)state;
    gh_proxy_list_t l = list("10.0.0.0/8");
    char out[GH_PROXY_ADDR_SIZE];
    assert_true(gh_proxy_client(&l, NULL,
                                "for=6.6.6.6, for=\"[2001:db8:cafe::17]:4711\";proto=https;by=10.0.0.1",
                                out, sizeof(out)));
    assert_string_equal(out, "2001:db8:cafe::17");
    assert_true(gh_proxy_client(&l, NULL, "proto=http;For=192.0.2.60", out, sizeof(out)));
    assert_string_equal(out, "192.0.2.60");
    assert_false(gh_proxy_client(&l, NULL, "for=unknown", out, sizeof(out)));
    assert_false(gh_proxy_client(&l, NULL, "for=_hidden, by=10.0.0.1", out, sizeof(out)));
    /* X-Forwarded-For wins when both are present. */
    assert_true(gh_proxy_client(&l, "198.51.100.1", "for=192.0.2.60", out, sizeof(out)));
    assert_string_equal(out, "198.51.100.1");
}

static void long_headers_are_bounded(void **state)
{
    (void)state;
    gh_proxy_list_t l = list("10.0.0.0/8");
    char header[8192];
    size_t len = (size_t)snprintf(header, sizeof(header), "6.6.6.6");
    for (int i = 1; i < 500; i++)
        len += (size_t)snprintf(header + len, sizeof(header) - len, ", 10.0.0.1");
    char out[GH_PROXY_ADDR_SIZE];
    /* Only the last 64 hops are read: all proxies, so the leftmost of them. */
    assert_true(gh_proxy_client(&l, header, NULL, out, sizeof(out)));
    assert_string_equal(out, "10.0.0.1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lists_parse_and_match),
        cmocka_unit_test(the_client_is_the_first_untrusted_hop_from_the_right),
        cmocka_unit_test(forwarded_is_read_when_there_is_no_x_forwarded_for),
        cmocka_unit_test(long_headers_are_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
