/* Address helpers: who is a local peer, and addresses as text. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "peer.h"

/* Is an IPv4 address (network order) in 127.0.0.0/8? */
static bool
ipv4_is_loopback(const struct in_addr *a)
{
	return (ntohl(a->s_addr) >> 24) == 127;
}

/* If sa is IPv4 or IPv4-mapped IPv6, store its IPv4 address in out. */
static bool
as_ipv4(const struct sockaddr *sa, struct in_addr *out)
{
	if (sa->sa_family == AF_INET) {
		*out = ((const struct sockaddr_in *)(const void *)sa)->sin_addr;
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 =
		    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			memcpy(&out->s_addr, &a6->s6_addr[12], 4);
			return true;
		}
	}
	return false;
}

/* Do two addresses have the same IP (ports ignored)? */
bool
peer_same_addr(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)(const void *)a)->sin_addr.s_addr ==
		    ((const struct sockaddr_in *)(const void *)b)->sin_addr.s_addr;
	if (a->sa_family == AF_INET6)
		return memcmp(
		    &((const struct sockaddr_in6 *)(const void *)a)->sin6_addr,
		    &((const struct sockaddr_in6 *)(const void *)b)->sin6_addr,
		    sizeof(struct in6_addr)) == 0;
	return false;
}

/* Is a peer local: loopback, IPv4-mapped loopback, or our own address? */
bool
peer_is_local(const struct sockaddr *peer, const struct sockaddr *self)
{
	struct in_addr v4;

	if (peer->sa_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(
	    &((const struct sockaddr_in6 *)(const void *)peer)->sin6_addr))
		return true;
	/* Dual-stack sockets show IPv4 peers as ::ffff:a.b.c.d (PROTOCOL 8.4). */
	if (as_ipv4(peer, &v4) && ipv4_is_loopback(&v4))
		return true;
	return self != NULL && peer_same_addr(peer, self);
}

/* The port of an IPv4 or IPv6 address, 0 for others. */
uint16_t
peer_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
	return 0;
}

/* Write the address alone, without the port, into buf. */
const char *
peer_format_addr(const struct sockaddr *sa, char *buf, size_t len)
{
	const void *a;

	if (sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	else {
		snprintf(buf, len, "(family %d)", sa->sa_family);
		return buf;
	}
	if (inet_ntop(sa->sa_family, a, buf, (socklen_t)len) == NULL)
		snprintf(buf, len, "(unprintable)");
	return buf;
}

/* Write "a.b.c.d:port" or "[v6]:port" into buf. */
const char *
peer_format(const struct sockaddr *sa, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN + 16];

	peer_format_addr(sa, addr, sizeof(addr));
	if (sa->sa_family == AF_INET6)
		snprintf(buf, len, "[%s]:%u", addr, peer_port(sa));
	else
		snprintf(buf, len, "%s:%u", addr, peer_port(sa));
	return buf;
}
