/* SPDX-License-Identifier: MIT */
/*
 * Network addresses: "HOST[:PORT]" parsing and TCP connects with a
 * timeout, shared by the sender and the receiver.
 */
#ifndef VMC_ADDR_H
#define VMC_ADDR_H

#include <stddef.h>

/* Split "HOST[:PORT]" or "[V6ADDR][:PORT]" into HOST and PORT (DEF_PORT
 * when absent).  -1 with a message when malformed. */
int net_split_hostport (const char *s, char *host, size_t hlen, char *port,
                        size_t plen, int def_port);

/* Connect to HOST:PORT (any address family getaddrinfo gives), within
 * TIMEOUT_MS.  Returns the socket, or -1 with a message. */
int net_connect (const char *host, const char *port, int timeout_ms);

#endif
