/*
 * Address filters: IPv4 and IPv6 prefixes, for access lists and per-peer
 * caps. Pure: no sockets are opened, nothing is allocated. An IPv4-mapped
 * IPv6 peer is matched as the IPv4 address it stands for, so one list
 * serves IPv4 sockets, IPv6 sockets and dual-stack sockets alike.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "addrfilt.h"

/* Separators between items; commas also end an item. */
#define SPACES		" \t"
/* Longest part of a bad item quoted back in an error message. */
#define QUOTE_MAX	48

/* The first 12 bytes of an IPv4-mapped IPv6 address. */
static const uint8_t mapped_prefix[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

/* Store a 16-byte IPv6 address, as IPv4 if it is IPv4-mapped. */
static void
set_from_in6(struct addrfilt_addr *out, const uint8_t in6[16])
{
	memset(out, 0, sizeof(*out));
	if (memcmp(in6, mapped_prefix, sizeof(mapped_prefix)) == 0) {
		out->family = AF_INET;
		memcpy(out->bytes, in6 + 12, 4);
	} else {
		out->family = AF_INET6;
		memcpy(out->bytes, in6, 16);
	}
}

/* Normalise an IPv4 or IPv6 socket address; false for other families. */
bool
addrfilt_addr_from_sockaddr(struct addrfilt_addr *out,
    const struct sockaddr *sa)
{
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;

	memset(out, 0, sizeof(*out));
	switch (sa->sa_family) {
	case AF_INET:
		sin = (const struct sockaddr_in *)(const void *)sa;
		out->family = AF_INET;
		memcpy(out->bytes, &sin->sin_addr, 4);
		return true;
	case AF_INET6:
		sin6 = (const struct sockaddr_in6 *)(const void *)sa;
		set_from_in6(out, sin6->sin6_addr.s6_addr);
		return true;
	default:
		return false;
	}
}

/* Clear every bit of a after the first prefix bits. */
void
addrfilt_addr_mask(struct addrfilt_addr *a, unsigned prefix)
{
	unsigned	 bits = ADDRFILT_BITS(a->family), i;

	if (prefix >= bits)
		return;
	i = prefix / 8;
	if (prefix % 8 != 0) {
		a->bytes[i] &= (uint8_t)(0xff00u >> (prefix % 8));
		i++;
	}
	memset(a->bytes + i, 0, sizeof(a->bytes) - i);
}

/* Do a and b agree in family and in their first prefix bits? */
bool
addrfilt_addr_in_prefix(const struct addrfilt_addr *a,
    const struct addrfilt_addr *net, unsigned prefix)
{
	unsigned	 whole = prefix / 8, rest = prefix % 8;
	uint8_t		 mask;

	if (a->family != net->family || prefix > ADDRFILT_BITS(a->family))
		return false;
	if (memcmp(a->bytes, net->bytes, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (uint8_t)(0xff00u >> rest);
	return (a->bytes[whole] & mask) == (net->bytes[whole] & mask);
}

/* Are two normalised addresses equal? */
bool
addrfilt_addr_equal(const struct addrfilt_addr *a,
    const struct addrfilt_addr *b)
{
	return a->family == b->family &&
	    memcmp(a->bytes, b->bytes, sizeof(a->bytes)) == 0;
}

/* Write an error about the item tok[0..len) into err. */
static bool
bad_item(char *err, size_t errlen, const char *tok, size_t len,
    const char *why)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "bad item \"%.*s%s\": %s",
		    (int)(len < QUOTE_MAX ? len : QUOTE_MAX), tok,
		    len > QUOTE_MAX ? "..." : "", why);
	return false;
}

/* Parse a prefix length of 1 to 3 decimal digits, at most max. */
static bool
parse_prefix_len(const char *s, size_t len, unsigned max, unsigned *out)
{
	unsigned	 v = 0;
	size_t		 i;

	if (len == 0 || len > 3)
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

/* Parse an address or ADDR/LEN item into it. */
static bool
parse_prefix_item(struct addrfilt_item *it, const char *tok, size_t len,
    char *err, size_t errlen)
{
	char		 buf[ADDRFILT_ITEM_MAX];
	const char	*slash;
	size_t		 alen;
	uint8_t		 raw[16];
	unsigned	 bits, prefix;
	bool		 mapped;

	if (len >= sizeof(buf))
		return bad_item(err, errlen, tok, len, "too long");
	slash = memchr(tok, '/', len);
	alen = slash != NULL ? (size_t)(slash - tok) : len;
	memcpy(buf, tok, alen);
	buf[alen] = '\0';

	memset(it, 0, sizeof(*it));
	it->kind = ADDRFILT_PREFIX;
	mapped = false;
	if (inet_pton(AF_INET6, buf, raw) == 1) {
		mapped = memcmp(raw, mapped_prefix, sizeof(mapped_prefix)) == 0;
		it->addr.family = AF_INET6;
		memcpy(it->addr.bytes, raw, 16);
	} else if (inet_pton(AF_INET, buf, raw) == 1) {
		it->addr.family = AF_INET;
		memcpy(it->addr.bytes, raw, 4);
	} else
		return bad_item(err, errlen, tok, len, "not an IP address, a "
		    "prefix ADDR/LEN, local, any or none");

	bits = ADDRFILT_BITS(it->addr.family);
	prefix = bits;
	if (slash != NULL && !parse_prefix_len(slash + 1, len - alen - 1,
	    bits, &prefix))
		return bad_item(err, errlen, tok, len, it->addr.family ==
		    AF_INET ? "the prefix length must be 0 to 32" :
		    "the prefix length must be 0 to 128");

	/* ::ffff:a.b.c.d/96+n is the IPv4 prefix a.b.c.d/n: peers match it. */
	if (mapped && prefix >= 96) {
		set_from_in6(&it->addr, raw);
		prefix -= 96;
	}
	it->prefix = (uint8_t)prefix;
	addrfilt_addr_mask(&it->addr, prefix);
	return true;
}

/* Is tok[0..len) exactly the word w? */
static bool
is_word(const char *tok, size_t len, const char *w)
{
	return strlen(w) == len && memcmp(tok, w, len) == 0;
}

/* Parse one item and append it to f. */
static bool
add_item(struct addrfilt *f, const char *tok, size_t len, char *err,
    size_t errlen)
{
	struct addrfilt_item	 it;

	if (f->n >= ADDRFILT_MAX_ITEMS)
		return bad_item(err, errlen, tok, len, "too many items (at "
		    "most 64)");
	memset(&it, 0, sizeof(it));
	if (is_word(tok, len, "any"))
		it.kind = ADDRFILT_ANY;
	else if (is_word(tok, len, "none"))
		it.kind = ADDRFILT_NONE;
	else if (is_word(tok, len, "local"))
		it.kind = ADDRFILT_LOCAL;
	else if (!parse_prefix_item(&it, tok, len, err, errlen))
		return false;
	f->items[f->n++] = it;
	return true;
}

/* Write an error about an empty item after the item prev (NULL: none). */
static bool
empty_item(char *err, size_t errlen, const char *prev, size_t prev_len)
{
	if (err == NULL || errlen == 0)
		return false;
	if (prev == NULL)
		snprintf(err, errlen, "empty item at the start of the list");
	else
		snprintf(err, errlen, "empty item after \"%.*s%s\"",
		    (int)(prev_len < QUOTE_MAX ? prev_len : QUOTE_MAX), prev,
		    prev_len > QUOTE_MAX ? "..." : "");
	return false;
}

/* Parse a list of items separated by commas and/or spaces. */
bool
addrfilt_parse(struct addrfilt *f, const char *list, char *err,
    size_t errlen)
{
	const char	*p = list, *prev = NULL, *none_tok = NULL;
	size_t		 len, prev_len = 0;
	bool		 after_comma = false;

	memset(f, 0, sizeof(*f));
	for (;;) {
		p += strspn(p, SPACES);
		if (*p == '\0')
			break;
		if (*p == ',') {
			/* A comma must follow an item: ",a", "a,,b" are wrong. */
			if (prev == NULL || after_comma)
				return empty_item(err, errlen, prev, prev_len);
			after_comma = true;
			p++;
			continue;
		}
		len = strcspn(p, SPACES ",");
		if (!add_item(f, p, len, err, errlen))
			return false;
		if (f->items[f->n - 1].kind == ADDRFILT_NONE)
			none_tok = p;
		prev = p;
		prev_len = len;
		after_comma = false;
		p += len;
	}
	if (f->n == 0) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "empty list (say none for "
			    "nobody)");
		return false;
	}
	if (after_comma)
		return empty_item(err, errlen, prev, prev_len);
	/* "none,10.0.0.0/8" says two things: refuse it rather than guess. */
	if (none_tok != NULL && f->n > 1)
		return bad_item(err, errlen, none_tok, 4, "none cannot be "
		    "combined with other items");
	return true;
}

/* Make f the list of one item of kind (ANY, NONE or LOCAL). */
void
addrfilt_set(struct addrfilt *f, enum addrfilt_kind kind)
{
	memset(f, 0, sizeof(*f));
	f->items[0].kind = kind;
	f->n = 1;
}

/* Does one item match the normalised peer? */
static bool
item_match(const struct addrfilt_item *it, const struct addrfilt_addr *a,
    bool have_addr, bool peer_local)
{
	switch (it->kind) {
	case ADDRFILT_ANY:
		return true;
	case ADDRFILT_LOCAL:
		return peer_local;
	case ADDRFILT_PREFIX:
		return have_addr && addrfilt_addr_in_prefix(a, &it->addr,
		    it->prefix);
	case ADDRFILT_NONE:
	default:
		return false;
	}
}

/* Does peer (local or not, as peer_is_local said) match any item of f? */
bool
addrfilt_match(const struct addrfilt *f, const struct sockaddr *peer,
    bool peer_local)
{
	struct addrfilt_addr	 a;
	bool			 have;
	size_t			 i;

	have = peer != NULL && addrfilt_addr_from_sockaddr(&a, peer);
	for (i = 0; i < f->n; i++)
		if (item_match(&f->items[i], &a, have, peer_local))
			return true;
	return false;
}

/* Is f the list that matches no peer ("none")? */
bool
addrfilt_matches_none(const struct addrfilt *f)
{
	return f->n == 1 && f->items[0].kind == ADDRFILT_NONE;
}

/* Does f contain an item that matches every peer? */
bool
addrfilt_matches_all(const struct addrfilt *f)
{
	bool	 all4 = false, all6 = false;
	size_t	 i;

	for (i = 0; i < f->n; i++) {
		const struct addrfilt_item *it = &f->items[i];

		if (it->kind == ADDRFILT_ANY)
			return true;
		if (it->kind == ADDRFILT_PREFIX && it->prefix == 0) {
			if (it->addr.family == AF_INET)
				all4 = true;
			else
				all6 = true;
		}
	}
	return all4 && all6;
}

/* Write one item as text into buf. */
static void
format_item(const struct addrfilt_item *it, char *buf, size_t len)
{
	char	 addr[INET6_ADDRSTRLEN];

	switch (it->kind) {
	case ADDRFILT_ANY:
		snprintf(buf, len, "any");
		return;
	case ADDRFILT_NONE:
		snprintf(buf, len, "none");
		return;
	case ADDRFILT_LOCAL:
		snprintf(buf, len, "local");
		return;
	case ADDRFILT_PREFIX:
	default:
		break;
	}
	if (inet_ntop(it->addr.family, it->addr.bytes, addr,
	    sizeof(addr)) == NULL)
		snprintf(addr, sizeof(addr), "?");
	if (it->prefix == ADDRFILT_BITS(it->addr.family))
		snprintf(buf, len, "%s", addr);
	else
		snprintf(buf, len, "%s/%u", addr, (unsigned)it->prefix);
}

/* Write f back as text ("any", "10.0.0.0/8, local") into buf. */
const char *
addrfilt_format(const struct addrfilt *f, char *buf, size_t len)
{
	char	 item[INET6_ADDRSTRLEN + 8];
	size_t	 i, off = 0;
	int	 n;

	if (len == 0)
		return buf;
	buf[0] = '\0';
	for (i = 0; i < f->n && off < len; i++) {
		format_item(&f->items[i], item, sizeof(item));
		n = snprintf(buf + off, len - off, "%s%s", i > 0 ? ", " : "",
		    item);
		if (n < 0)
			break;
		off += (size_t)n;
	}
	return buf;
}
