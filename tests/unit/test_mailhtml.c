#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/mailhtml.h"

static const char TEXT[] = "Hello,\n\n"
                           "<b>Ada & \"Co\"</b> invited you to join 'Acme'.\n"
                           "Second line.\n\n"
                           "https://gh.example/auth/invite?token=abc&x=1\n\n"
                           "If you did not expect this, ignore it.\n\n"
                           "\xE2\x80\x94 Gate<house>\n";

static void text_is_escaped_and_the_link_is_the_button(void **state)
{
    (void)state;
    char *html = NULL;
    assert_int_equal(gh_mailhtml_render("Gate<house>", "Join <Acme>", TEXT, "Accept invitation",
                                        "https://gh.example/auth/invite?token=abc&x=1", &html),
                     GH_OK);
    assert_non_null(strstr(html, "<title>Join &lt;Acme&gt;</title>"));
    assert_non_null(strstr(html, "&lt;b&gt;Ada &amp; &quot;Co&quot;&lt;/b&gt; invited you to join "
                                 "&#39;Acme&#39;.<br>\nSecond line."));
    assert_null(strstr(html, "<b>"));
    /* The link's paragraph became the button, with the same (escaped) address, once. */
    const char *b = strstr(html, "<a class=\"button\" href=\"https://gh.example/auth/invite?token=abc"
                                 "&amp;x=1\"");
    assert_non_null(b);
    assert_non_null(strstr(b, ">Accept invitation</a>"));
    assert_null(strstr(b + sizeof("<a class=\"button\"") - 1, "class=\"button\""));
    /* The signature is left to the footer, which names the product, escaped. */
    assert_null(strstr(html, "\xE2\x80\x94 Gate"));
    assert_non_null(strstr(html, "Sent by Gate&lt;house&gt;."));
    free(html);
}

static void a_button_needs_an_http_link(void **state)
{
    (void)state;
    char *html = NULL;
    assert_int_equal(gh_mailhtml_render("P", "S", "Hi\n\njavascript:alert(1)\n", "Open",
                                        "javascript:alert(1)", &html),
                     GH_OK);
    assert_null(strstr(html, "class=\"button\""));
    assert_non_null(strstr(html, "javascript:alert(1)</p>")); /* as text only */
    free(html);
    /* No button asked for: none. A link the text does not carry alone still gets one. */
    assert_int_equal(gh_mailhtml_render("P", "S", "Hi\n", NULL, NULL, &html), GH_OK);
    assert_null(strstr(html, "class=\"button\""));
    free(html);
    assert_int_equal(gh_mailhtml_render("P", "S", "Hi\n", "Open", "https://x.example/a", &html),
                     GH_OK);
    assert_non_null(strstr(html, "<a class=\"button\" href=\"https://x.example/a\""));
    free(html);
}

static void too_big_is_refused(void **state)
{
    (void)state;
    size_t n = 100 * 1024;
    char *text = malloc(n + 1);
    assert_non_null(text);
    memset(text, '<', n); /* each becomes "&lt;": past the 256 KiB maximum */
    text[n] = '\0';
    char *html = (char *)1;
    assert_int_equal(gh_mailhtml_render("P", "S", text, NULL, NULL, &html), GH_ETOOBIG);
    assert_null(html);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(text_is_escaped_and_the_link_is_the_button),
        cmocka_unit_test(a_button_needs_an_http_link),
        cmocka_unit_test(too_big_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
