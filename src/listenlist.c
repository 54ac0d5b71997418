/*
 * The listen list of -address / ERL_EPMD_ADDRESS (PROTOCOL.md 4.4), built
 * as OTP's 2026 security release does (GHSA-h6f3-hx58-xhj6, OTP PR
 * #11409): the implicit loopbacks are added only where the list does not
 * already serve them, so "0.0.0.0" and "::" no longer collide with an
 * implicit 127.0.0.1 or ::1 on the same port. Pure: nothing is bound here.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "addrfilt.h"
#include "listenlist.h"

/* Longest token that can be an address; longer ones cannot parse. */
#define TOKEN_MAX	64
/* Longest part of a bad token quoted back in the error message. */
#define QUOTE_MAX	200
/* Separators of an address list (a tab is not one, as in OTP). */
#define SEPARATORS	" ,"

/* One parsed token. */
struct token {
	int		 family;
	union {
		struct in_addr	 v4;
		struct in6_addr	 v6;
	} a;
};

/* What the tokens of a list say, after one pass. */
struct parsed {
	bool		 lo4, any4, lo6, any6;	/* 127.0.0.1, 0.0.0.0, ::1, :: */
	struct token	 extra[EPMD_MAX_EXTRA_ADDRS];	/* the others, in order */
	size_t		 nextra;
};

/* Parse tok[0..len) as an IPv6, then a dotted-quad IPv4 address. */
static bool
parse_token(const char *tok, size_t len, struct token *t)
{
	char	 buf[TOKEN_MAX];

	if (len >= sizeof(buf))
		return false;
	memcpy(buf, tok, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET6, buf, &t->a.v6) == 1)
		t->family = AF_INET6;
	else if (inet_pton(AF_INET, buf, &t->a.v4) == 1)
		t->family = AF_INET;
	else
		return false;
	return true;
}

/* Record one token; false with err set for a bad token or one too many. */
static bool
add_token(struct parsed *p, const char *tok, size_t len, char *err,
    size_t errlen)
{
	struct token	 t;

	if (!parse_token(tok, len, &t)) {
		snprintf(err, errlen, "cannot parse IP address \"%.*s\"",
		    (int)(len < QUOTE_MAX ? len : QUOTE_MAX), tok);
		return false;
	}
	/* Named again, a loopback is still one socket (as in OTP). */
	if (t.family == AF_INET && t.a.v4.s_addr == htonl(INADDR_LOOPBACK)) {
		p->lo4 = true;
		return true;
	}
	if (t.family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&t.a.v6)) {
		p->lo6 = true;
		return true;
	}
	if (p->nextra >= EPMD_MAX_EXTRA_ADDRS) {
		/* The reference's message counts 16, though 15 is the limit. */
		snprintf(err, errlen, "cannot listen on more than %d IP "
		    "addresses", EPMD_MAX_LISTENERS);
		return false;
	}
	if (t.family == AF_INET && t.a.v4.s_addr == htonl(INADDR_ANY))
		p->any4 = true;
	if (t.family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&t.a.v6))
		p->any6 = true;
	p->extra[p->nextra++] = t;
	return true;
}

/* Append one address (port 0) to out. */
static void
append(struct listen_addr *out, size_t *n, const struct token *t,
    bool implicit)
{
	struct listen_addr	*la = &out[(*n)++];
	struct sockaddr_in	*sin = (struct sockaddr_in *)&la->ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&la->ss;

	memset(la, 0, sizeof(*la));
	la->implicit = implicit;
	if (t->family == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_addr = t->a.v4;
		la->len = sizeof(*sin);
	} else {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = t->a.v6;
		la->len = sizeof(*sin6);
	}
}

/* Is extra token i already served by the list (a wildcard, or itself)? */
static bool
covered(const struct parsed *p, size_t i)
{
	const struct token	*t = &p->extra[i];
	size_t			 j;
	bool			 wild;

	if (t->family == AF_INET) {
		wild = t->a.v4.s_addr == htonl(INADDR_ANY);
		if (!wild)
			return p->any4;
	} else {
		wild = IN6_IS_ADDR_UNSPECIFIED(&t->a.v6);
		/* ::ffff:a.b.c.d is no IPv6 address for a V6ONLY socket. */
		if (!wild)
			return p->any6 && !IN6_IS_ADDR_V4MAPPED(&t->a.v6);
	}
	/* A wildcard named twice is bound once. */
	for (j = 0; j < i; j++)
		if (p->extra[j].family == t->family &&
		    memcmp(&p->extra[j].a, &t->a, t->family == AF_INET ?
		    sizeof(t->a.v4) : sizeof(t->a.v6)) == 0)
			return true;
	return false;
}

/* Build the listen list from an address list, as OTP's current epmd does. */
bool
listenlist_build(const char *list, struct listen_addr *out, size_t *n,
    char *err, size_t errlen)
{
	struct parsed	 p;
	struct token	 lo;
	const char	*s = list;
	size_t		 len, i, ntokens = 0;

	memset(&p, 0, sizeof(p));
	*n = 0;
	for (;;) {
		s += strspn(s, SEPARATORS);
		if (*s == '\0')
			break;
		len = strcspn(s, SEPARATORS);
		if (!add_token(&p, s, len, err, errlen))
			return false;
		ntokens++;
		s += len;
	}
	if (ntokens == 0)
		return true;	/* every interface, as with no list at all */

	/* 127.0.0.1 unless the list serves it; implicit unless named. */
	if (!p.any4) {
		lo.family = AF_INET;
		lo.a.v4.s_addr = htonl(INADDR_LOOPBACK);
		append(out, n, &lo, !p.lo4);
	}
	if (!p.any6) {
		lo.family = AF_INET6;
		lo.a.v6 = in6addr_loopback;
		append(out, n, &lo, !p.lo6);
	}
	for (i = 0; i < p.nextra; i++)
		if (!covered(&p, i))
			append(out, n, &p.extra[i], false);
	return true;
}

/* Is sa a loopback address (127.0.0.0/8, ::1, or ::ffff:127.x.y.z)? */
bool
listenlist_is_loopback(const struct sockaddr *sa)
{
	static const uint8_t	 v6_lo[16] = { [15] = 1 };
	struct addrfilt_addr	 a;

	if (!addrfilt_addr_from_sockaddr(&a, sa))
		return false;
	if (a.family == AF_INET)
		return a.bytes[0] == 127;
	return memcmp(a.bytes, v6_lo, sizeof(v6_lo)) == 0;
}
