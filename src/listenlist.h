/* The listen list of -address / ERL_EPMD_ADDRESS, built as current OTP does. */
#ifndef LISTENLIST_H
#define LISTENLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "epmd.h"

/* One address to listen on (port 0: the server fills it in). */
struct listen_addr {
	struct sockaddr_storage	ss;
	socklen_t		len;
	bool			implicit;	/* an added loopback: best-effort */
};

/*
 * Build the listen list from an address list (PROTOCOL.md 4.4, with the
 * rule of OTP's 2026 security release): tokens separated by commas and/or
 * spaces, each an IPv6 or dotted-quad IPv4 address. 127.0.0.1 is added,
 * first and best-effort, unless 127.0.0.1 or 0.0.0.0 was given; ::1 then,
 * likewise, unless ::1 or :: was given. A given loopback comes first too;
 * the other addresses follow in order. An address that a wildcard of its
 * family in the same list already covers is not bound again. A list of
 * separators only gives *n 0: every interface. On error, false with the
 * message in err.
 */
bool listenlist_build(const char *list, struct listen_addr *out, size_t *n,
	    char *err, size_t errlen);
/* Is sa a loopback address (127.0.0.0/8, ::1, or ::ffff:127.x.y.z)? */
bool listenlist_is_loopback(const struct sockaddr *sa);

#endif
