/* Address helpers: who is a local peer, and addresses as text. */
#ifndef PEER_H
#define PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PEER_ADDRSTRLEN	64	/* "[v6addr]:port" fits */

/* Is a peer local: loopback, IPv4-mapped loopback, or our own address? */
bool peer_is_local(const struct sockaddr *peer, const struct sockaddr *self);
/* Write "a.b.c.d:port" or "[v6]:port" into buf. */
const char *peer_format(const struct sockaddr *sa, char *buf, size_t len);
/* Write the address alone, without the port, into buf. */
const char *peer_format_addr(const struct sockaddr *sa, char *buf, size_t len);
/* The port of an IPv4 or IPv6 address, 0 for others. */
uint16_t peer_port(const struct sockaddr *sa);
/* Do two addresses have the same IP (ports ignored)? */
bool peer_same_addr(const struct sockaddr *a, const struct sockaddr *b);

#endif
