/* SPDX-License-Identifier: MIT */
/*
 * Addresses and connects; see addr.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../converter/lib/error.h"
#include "addr.h"

int
net_split_hostport (const char *s, char *host, size_t hlen, char *port,
                    size_t plen, int def_port)
{
    const char *colon;

    if (s[0] == '[') {
        const char *end = strchr (s, ']');

        if (end == NULL || (end[1] != '\0' && end[1] != ':')) {
            goto bad;
        }
        snprintf (host, hlen, "%.*s", (int) (end - s - 1), s + 1);
        colon = end[1] == ':' ? end + 1 : NULL;
    }
    else {
        colon = strrchr (s, ':');
        if (colon != NULL && strchr (s, ':') != colon) {
            goto bad;           /* a bare IPv6 address needs brackets */
        }
        snprintf (host, hlen, "%.*s",
                  (int) (colon != NULL ? (size_t) (colon - s) : strlen (s)), s);
    }
    if (colon != NULL) {
        char *end;
        unsigned long v = strtoul (colon + 1, &end, 10);

        if (colon[1] == '\0' || *end != '\0' || v > 65535) {
            goto bad;
        }
        snprintf (port, plen, "%lu", v);
    }
    else {
        snprintf (port, plen, "%d", def_port);
    }
    return 0;
bad:
    vmc_error ("\"%s\" is not HOST[:PORT] (IPv6: [ADDR]:PORT)", s);
    return -1;
}

/* Connect one address, without blocking longer than TIMEOUT_MS. */
static int
connect_one (const struct addrinfo *a, int timeout_ms)
{
    struct pollfd pfd;
    socklen_t len = sizeof (int);
    int fd, err = 0, flags, one = 1;

    fd = socket (a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd == -1) {
        return -1;
    }
    flags = fcntl (fd, F_GETFL);
    fcntl (fd, F_SETFL, flags | O_NONBLOCK);
    if (connect (fd, a->ai_addr, a->ai_addrlen) == -1) {
        if (errno != EINPROGRESS) {
            err = errno;
            goto fail;
        }
        pfd.fd = fd;
        pfd.events = POLLOUT;
        if (poll (&pfd, 1, timeout_ms) != 1) {
            err = ETIMEDOUT;
            goto fail;
        }
        if (getsockopt (fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 ||
            err != 0) {
            goto fail;
        }
    }
    fcntl (fd, F_SETFL, flags);
    setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
fail:
    close (fd);
    errno = err != 0 ? err : errno;
    return -1;
}

int
net_connect (const char *host, const char *port, int timeout_ms)
{
    struct addrinfo hints = { 0 }, *ai = NULL, *a;
    int fd = -1, e;

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    e = getaddrinfo (host, port, &hints, &ai);
    if (e != 0) {
        vmc_error ("%s: %s", host, gai_strerror (e));
        return -1;
    }
    for (a = ai; a != NULL && fd == -1; a = a->ai_next) {
        fd = connect_one (a, timeout_ms);
    }
    if (fd == -1) {
        vmc_perror ("connect to %s port %s", host, port);
    }
    freeaddrinfo (ai);
    return fd;
}
