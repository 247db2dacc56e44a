/* Fuzzes the request-framing checks (src/lib/framing.c) and the forwarding-header reader
 * (src/lib/proxy.c), the two parsers that see a client's raw header bytes before anything
 * else: any input is accepted or refused with 400/501 and a message, never read out of
 * bounds, and a client address that comes out is a canonical address. */
#include <arpa/inet.h>
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "lib/framing.h"
#include "lib/proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char msg[GH_FRAMING_MSG_SIZE];
    msg[0] = '\0';
    int status = gh_framing_check_head((const char *)data, size, msg, sizeof(msg));
    assert(status == 0 || status == 400 || status == 501);
    assert(status == 0 || msg[0] != '\0');

    /* The same bytes as a forwarding header value (up to the first NUL). */
    static gh_proxy_list_t list;
    static int ready;
    if (!ready) {
        char err[128];
        assert(gh_proxy_list_parse("10.0.0.0/8, fd00::/8", &list, err, sizeof(err)) == GH_OK);
        ready = 1;
    }
    char header[4097];
    size_t n = size < 4096 ? size : 4096;
    memcpy(header, data, n);
    header[n] = '\0';
    char out[GH_PROXY_ADDR_SIZE];
    unsigned char buf[16];
    if (gh_proxy_client(&list, header, NULL, out, sizeof(out)))
        assert(inet_pton(AF_INET, out, buf) == 1 || inet_pton(AF_INET6, out, buf) == 1);
    if (gh_proxy_client(&list, NULL, header, out, sizeof(out)))
        assert(inet_pton(AF_INET, out, buf) == 1 || inet_pton(AF_INET6, out, buf) == 1);
    gh_proxy_list_t parsed;
    char err[256];
    (void)gh_proxy_list_parse(header, &parsed, err, sizeof(err));
    return 0;
}
