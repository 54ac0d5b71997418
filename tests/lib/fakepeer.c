/*
 * fakepeer: an LD_PRELOAD shim that makes chosen loopback peers look remote.
 *
 * It wraps getpeername() and accept4(). When the peer's port lies within
 * [FAKEPEER_LO, FAKEPEER_HI] (environment variables), the returned address
 * becomes 192.0.2.1 (IPv4) or 2001:db8::1 (IPv6), both documentation ranges.
 * Test clients bind their source port into that range; no packet ever leaves
 * loopback. See PROTOCOL.md, Appendix A.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	1	/* RTLD_NEXT */
#endif

#include <dlfcn.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* glibc declares the address as a transparent union in GNU mode. */
#if defined(__GLIBC__) && defined(__USE_GNU)
#define FAKEPEER_SA(a)	((a).__sockaddr__)
#else
#define FAKEPEER_SA(a)	(a)
#endif

typedef int (*getpeername_fn)(int, __SOCKADDR_ARG, socklen_t *__restrict);

/* The port named by environment variable var, or -1 if unset or bad. */
static long
fakepeer_env_port(const char *var)
{
	const char	*s = getenv(var);
	char		*end;
	long		 v;

	if (s == NULL || *s == '\0')
		return -1;
	v = strtol(s, &end, 10);
	return (*end != '\0' || v < 0 || v > 65535) ? -1 : v;
}

/* True if port lies within [FAKEPEER_LO, FAKEPEER_HI]. */
static int
fakepeer_in_range(in_port_t port)
{
	long	lo = fakepeer_env_port("FAKEPEER_LO");
	long	hi = fakepeer_env_port("FAKEPEER_HI");
	long	p = ntohs(port);

	return lo >= 0 && hi >= 0 && p >= lo && p <= hi;
}

/* Move a peer address in the fake range off loopback. */
static void
fakepeer_rewrite(struct sockaddr *sa, const socklen_t *len)
{
	if (sa->sa_family == AF_INET && *len >= sizeof(struct sockaddr_in)) {
		struct sockaddr_in sin;
		memcpy(&sin, sa, sizeof(sin));
		if (fakepeer_in_range(sin.sin_port)) {
			sin.sin_addr.s_addr = htonl(0xc0000201);	/* 192.0.2.1 */
			memcpy(sa, &sin, sizeof(sin));
		}
	} else if (sa->sa_family == AF_INET6 &&
	    *len >= sizeof(struct sockaddr_in6)) {
		static const unsigned char doc[16] =
		    { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
		      0, 0, 0, 0, 0, 0, 0, 1 };		/* 2001:db8::1 */
		struct sockaddr_in6 sin6;
		memcpy(&sin6, sa, sizeof(sin6));
		if (fakepeer_in_range(sin6.sin6_port)) {
			memcpy(&sin6.sin6_addr, doc, sizeof(doc));
			memcpy(sa, &sin6, sizeof(sin6));
		}
	}
}

/* getpeername(), with peers in the fake range moved off loopback. */
int
getpeername(int fd, __SOCKADDR_ARG addr, socklen_t *__restrict len)
{
	static getpeername_fn	 real;
	struct sockaddr		*sa = FAKEPEER_SA(addr);
	int			 rc;

	if (real == NULL) {
		void *sym = dlsym(RTLD_NEXT, "getpeername");
		if (sym == NULL)
			return -1;
		memcpy(&real, &sym, sizeof(real));
	}
	rc = real(fd, addr, len);
	if (rc == 0 && sa != NULL && len != NULL)
		fakepeer_rewrite(sa, len);
	return rc;
}

typedef int (*accept4_fn)(int, __SOCKADDR_ARG, socklen_t *__restrict, int);

/* accept4(), as libevent calls it: the address it reports is faked too. */
int
accept4(int fd, __SOCKADDR_ARG addr, socklen_t *__restrict len, int flags)
{
	static accept4_fn	 real;
	struct sockaddr		*sa = FAKEPEER_SA(addr);
	int			 rc;

	if (real == NULL) {
		void *sym = dlsym(RTLD_NEXT, "accept4");
		if (sym == NULL)
			return -1;
		memcpy(&real, &sym, sizeof(real));
	}
	rc = real(fd, addr, len, flags);
	if (rc >= 0 && sa != NULL && len != NULL)
		fakepeer_rewrite(sa, len);
	return rc;
}
