/* Keeping an HTTP/1 client's socket polled while its request is answered: see pollhold.h. */
#include "gateway/pollhold.h"

static h2o_socket_t *socket_of(h2o_req_t *req)
{
    if (req->version >= 0x200 || req->conn->callbacks->get_socket == NULL)
        return NULL;
    return req->conn->callbacks->get_socket(req->conn);
}

/* The client sent something while its request was in flight: stop polling it until h2o reads
 * again (what h2o had asked for; the bytes wait in the kernel). The socket's `data` is h2o's
 * connection, not touched here. */
static void on_readable_in_flight(h2o_socket_t *sock, const char *err)
{
    (void)err;
    h2o_socket_read_stop(sock);
    h2o_socket_dont_read(sock, 0);
}

static bool held(const h2o_socket_t *sock)
{
    return sock->_cb.read == on_readable_in_flight;
}

bool gh_pollhold_start(h2o_req_t *req)
{
    h2o_socket_t *sock = socket_of(req);
    if (sock == NULL || h2o_socket_is_reading(sock))
        return false;
    h2o_socket_dont_read(sock, 1);
    h2o_socket_read_start(sock, on_readable_in_flight);
    return true;
}

void gh_pollhold_end(h2o_req_t *req)
{
    h2o_socket_t *sock = socket_of(req);
    if (sock == NULL || !held(sock))
        return; /* never held, or the client's bytes ended the hold already */
    h2o_socket_read_stop(sock);
    h2o_socket_dont_read(sock, 0);
}
