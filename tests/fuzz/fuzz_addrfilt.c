/*
 * fuzz_addrfilt: the access-list syntax (src/addrfilt.c) on arbitrary text.
 *
 * The input, cut at its first NUL, is parsed as a list. A failure must
 * leave a bounded, non-empty message. A success must give 1 to
 * ADDRFILT_MAX_ITEMS items, each prefix within its family's width, host
 * bits clear, no IPv4-mapped IPv6 item (those become IPv4 items), and
 * "none" only alone; the list written back by addrfilt_format must parse
 * again to the same items. Then, for every prefix item, its first and last
 * addresses and the neighbours just outside are matched as peers (IPv4 also
 * as ::ffff:a.b.c.d) against the item alone and against the whole list, and
 * compared with a bit-by-bit model written here. The same text also goes
 * to the -address list builder (src/listenlist.c): at most 15 sockets,
 * only loopbacks implicit, each loopback at most once, every entry a
 * well-formed IPv4 or IPv6 address with port 0. Invariants that fail call
 * abort().
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addrfilt.h"
#include "listenlist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Fail loudly, naming the broken invariant. */
#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_addrfilt: invariant failed at %s:%d: " \
		    "%s\n", __FILE__, __LINE__, #cond);			\
		abort();						\
	}								\
} while (0)

/* Inputs longer than this are cut: a list this long is already absurd. */
#define INPUT_MAX	4096

/* Bit i (0 = most significant) of a 16-byte address. */
static int
bit(const uint8_t *b, unsigned i)
{
	return (b[i / 8] >> (7 - i % 8)) & 1;
}

/* The model: does addr lie in net/prefix, compared one bit at a time? */
static bool
model_in_prefix(const struct addrfilt_addr *a, const struct addrfilt_item *it)
{
	unsigned i;

	if (it->kind == ADDRFILT_ANY)
		return true;
	if (it->kind != ADDRFILT_PREFIX || a->family != it->addr.family)
		return false;
	for (i = 0; i < it->prefix; i++)
		if (bit(a->bytes, i) != bit(it->addr.bytes, i))
			return false;
	return true;
}

/* A socket address for a normalised address; IPv4 mapped if asked. */
static struct sockaddr_storage
to_sockaddr(const struct addrfilt_addr *a, bool mapped)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (a->family == AF_INET && !mapped) {
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, a->bytes, 4);
	} else if (a->family == AF_INET) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr.s6_addr[10] = 0xff;
		sin6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&sin6->sin6_addr.s6_addr[12], a->bytes, 4);
	} else {
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, a->bytes, 16);
	}
	return ss;
}

/* Add (+1) or subtract (-1) one from an address, wrapping. */
static void
step(struct addrfilt_addr *a, int dir)
{
	int i = (int)(ADDRFILT_BITS(a->family) / 8) - 1;

	for (; i >= 0; i--) {
		if (dir > 0 && a->bytes[i]++ != 0xff)
			return;
		if (dir < 0 && a->bytes[i]-- != 0x00)
			return;
	}
}

/* The last address of an item's prefix: every host bit set. */
static struct addrfilt_addr
last_of(const struct addrfilt_item *it)
{
	struct addrfilt_addr	 a = it->addr;
	unsigned		 i, bits = ADDRFILT_BITS(a.family);

	for (i = it->prefix; i < bits; i++)
		a.bytes[i / 8] |= (uint8_t)(0x80u >> (i % 8));
	return a;
}

/* Is a 16-byte address IPv4-mapped (::ffff:a.b.c.d)? */
static bool
is_mapped(const struct addrfilt_addr *a)
{
	static const uint8_t	 mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff };

	return a->family == AF_INET6 && memcmp(a->bytes, mapped, 12) == 0;
}

/*
 * Match one peer address against an item alone and the whole list. A
 * neighbour of an IPv6 prefix may fall in ::ffff:0:0/96: such a peer is an
 * IPv4 peer, and the model matches it as one.
 */
static void
check_peer(const struct addrfilt *f, size_t idx, const struct addrfilt_addr *a)
{
	struct addrfilt		 one;
	struct sockaddr_storage	 ss;
	struct addrfilt_addr	 peer, back;
	bool			 want_one, want_all = false;
	size_t			 i;
	int			 form;

	peer = *a;
	if (is_mapped(a)) {
		memset(&peer, 0, sizeof(peer));
		peer.family = AF_INET;
		memcpy(peer.bytes, a->bytes + 12, 4);
	}
	memset(&one, 0, sizeof(one));
	one.n = 1;
	one.items[0] = f->items[idx];
	want_one = model_in_prefix(&peer, &f->items[idx]);
	for (i = 0; i < f->n; i++)
		want_all = want_all || model_in_prefix(&peer, &f->items[i]);
	for (form = 0; form < (peer.family == AF_INET ? 2 : 1); form++) {
		ss = to_sockaddr(&peer, form == 1);
		CHECK(addrfilt_addr_from_sockaddr(&back,
		    (struct sockaddr *)&ss));
		CHECK(addrfilt_addr_equal(&back, &peer));
		CHECK(addrfilt_match(&one, (struct sockaddr *)&ss, false) ==
		    want_one);
		CHECK(addrfilt_match(f, (struct sockaddr *)&ss, false) ==
		    want_all);
		/* A local peer matches at least what a remote one does. */
		if (want_all)
			CHECK(addrfilt_match(f, (struct sockaddr *)&ss, true));
	}
}

/* Check what a successful parse produced. */
static void
check_list(const struct addrfilt *f)
{
	struct addrfilt_addr	 masked;
	size_t			 i;

	CHECK(f->n >= 1 && f->n <= ADDRFILT_MAX_ITEMS);
	for (i = 0; i < f->n; i++) {
		const struct addrfilt_item *it = &f->items[i];

		if (it->kind == ADDRFILT_NONE)
			CHECK(f->n == 1);
		if (it->kind != ADDRFILT_PREFIX)
			continue;
		CHECK(it->addr.family == AF_INET ||
		    it->addr.family == AF_INET6);
		CHECK(it->prefix <= ADDRFILT_BITS(it->addr.family));
		masked = it->addr;
		addrfilt_addr_mask(&masked, it->prefix);
		CHECK(addrfilt_addr_equal(&masked, &it->addr));
		if (it->addr.family == AF_INET)
			CHECK(memcmp(it->addr.bytes + 4, "\0\0\0\0\0\0\0\0\0\0"
			    "\0\0", 12) == 0);
		else
			CHECK(!is_mapped(&it->addr));
	}
}

/* Write the list back, parse it again: the same items must come out. */
static void
check_round_trip(const struct addrfilt *f)
{
	static char		 text[ADDRFILT_MAX_ITEMS * 64];
	static struct addrfilt	 g;
	char			 err[ADDRFILT_ERRLEN];
	size_t			 i;

	addrfilt_format(f, text, sizeof(text));
	CHECK(strlen(text) < sizeof(text) - 1);
	if (!addrfilt_parse(&g, text, err, sizeof(err))) {
		fprintf(stderr, "fuzz_addrfilt: \"%s\" does not parse back: "
		    "%s\n", text, err);
		abort();
	}
	CHECK(g.n == f->n);
	for (i = 0; i < f->n; i++) {
		CHECK(g.items[i].kind == f->items[i].kind);
		if (f->items[i].kind != ADDRFILT_PREFIX)
			continue;
		CHECK(g.items[i].prefix == f->items[i].prefix);
		CHECK(addrfilt_addr_equal(&g.items[i].addr,
		    &f->items[i].addr));
	}
}

/* The -address list builder on the same text. */
static void
check_listen_list(const char *text)
{
	static struct listen_addr a[EPMD_MAX_LISTENERS];
	char		 err[256];
	size_t		 n = 99, i, lo4 = 0, lo6 = 0;

	memset(err, 0x55, sizeof(err));
	if (!listenlist_build(text, a, &n, err, sizeof(err))) {
		CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
		return;
	}
	CHECK(n <= EPMD_MAX_LISTENERS - 1);
	for (i = 0; i < n; i++) {
		const struct sockaddr_in *sin =
		    (const struct sockaddr_in *)&a[i].ss;
		const struct sockaddr_in6 *sin6 =
		    (const struct sockaddr_in6 *)&a[i].ss;
		bool is_lo;

		if (a[i].ss.ss_family == AF_INET) {
			CHECK(a[i].len == sizeof(*sin) && sin->sin_port == 0);
			is_lo = sin->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
			lo4 += is_lo;
		} else {
			CHECK(a[i].ss.ss_family == AF_INET6);
			CHECK(a[i].len == sizeof(*sin6) && sin6->sin6_port == 0);
			is_lo = IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
			lo6 += is_lo;
		}
		CHECK(!a[i].implicit || is_lo);
	}
	CHECK(lo4 <= 1 && lo6 <= 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char		 text[INPUT_MAX + 1];
	static struct addrfilt	 f;
	char			 err[ADDRFILT_ERRLEN];
	struct addrfilt_addr	 a;
	size_t			 len, i;

	len = size < INPUT_MAX ? size : INPUT_MAX;
	memcpy(text, data, len);
	text[len] = '\0';

	check_listen_list(text);
	memset(err, 0x55, sizeof(err));
	if (!addrfilt_parse(&f, text, err, sizeof(err))) {
		CHECK(memchr(err, '\0', sizeof(err)) != NULL);
		CHECK(err[0] != '\0');
		return 0;
	}
	check_list(&f);
	check_round_trip(&f);
	for (i = 0; i < f.n; i++) {
		const struct addrfilt_item *it = &f.items[i];

		if (it->kind != ADDRFILT_PREFIX)
			continue;
		a = it->addr;
		check_peer(&f, i, &a);
		step(&a, -1);
		check_peer(&f, i, &a);
		a = last_of(it);
		check_peer(&f, i, &a);
		step(&a, +1);
		check_peer(&f, i, &a);
	}
	return 0;
}
