/* Address filters: IPv4 and IPv6 prefixes, for access lists and per-peer caps. */
#ifndef ADDRFILT_H
#define ADDRFILT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/*
 * An IP address, normalised: an IPv4-mapped IPv6 address (::ffff:a.b.c.d,
 * how a dual-stack socket shows an IPv4 peer) is stored as the IPv4
 * address, so both forms of one peer are one address. IPv4 uses bytes
 * 0..3; the rest of bytes is zero.
 */
struct addrfilt_addr {
	uint8_t		 family;	/* AF_INET or AF_INET6 */
	uint8_t		 bytes[16];	/* network order */
};

/* Prefix lengths go up to this many bits for the family. */
#define ADDRFILT_BITS(family)	((family) == AF_INET ? 32 : 128)

/* What one item of a list matches. */
enum addrfilt_kind {
	ADDRFILT_PREFIX,	/* an address or a CIDR prefix */
	ADDRFILT_LOCAL,		/* a local peer (PROTOCOL.md 2.1) */
	ADDRFILT_ANY,		/* every peer */
	ADDRFILT_NONE,		/* no peer: the list's only item */
};

struct addrfilt_item {
	enum addrfilt_kind	 kind;
	struct addrfilt_addr	 addr;		/* ADDRFILT_PREFIX: host bits 0 */
	uint8_t			 prefix;	/* ADDRFILT_PREFIX: 0..BITS */
};

/* A list holds at most this many items. */
#define ADDRFILT_MAX_ITEMS	64
/* Longest item text that can be valid ("ffff:...:ffff/128" is 43). */
#define ADDRFILT_ITEM_MAX	64
/* Room for an error message from addrfilt_parse. */
#define ADDRFILT_ERRLEN		160

/* A list of items; a peer matches if any item matches it. */
struct addrfilt {
	size_t			 n;
	struct addrfilt_item	 items[ADDRFILT_MAX_ITEMS];
};

/* Normalise an IPv4 or IPv6 socket address; false for other families. */
bool addrfilt_addr_from_sockaddr(struct addrfilt_addr *out,
	    const struct sockaddr *sa);
/* Clear every bit of a after the first prefix bits. */
void addrfilt_addr_mask(struct addrfilt_addr *a, unsigned prefix);
/* Do a and b agree in family and in their first prefix bits? */
bool addrfilt_addr_in_prefix(const struct addrfilt_addr *a,
	    const struct addrfilt_addr *net, unsigned prefix);
/* Are two normalised addresses equal? */
bool addrfilt_addr_equal(const struct addrfilt_addr *a,
	    const struct addrfilt_addr *b);

/*
 * Parse a list: items separated by commas and/or spaces (an empty item
 * between two commas is an error). An item is an address, a prefix
 * ADDR/LEN (host bits are cleared), "local", "any" or "none" (alone).
 * On error, false with a message naming the bad item in err.
 */
bool addrfilt_parse(struct addrfilt *f, const char *list, char *err,
	    size_t errlen);
/* Make f the list of one item of kind (ANY, NONE or LOCAL). */
void addrfilt_set(struct addrfilt *f, enum addrfilt_kind kind);
/* Does peer (local or not, as peer_is_local said) match any item of f? */
bool addrfilt_match(const struct addrfilt *f, const struct sockaddr *peer,
	    bool peer_local);
/* Is f the list that matches no peer ("none")? */
bool addrfilt_matches_none(const struct addrfilt *f);
/* Does f contain an item that matches every peer? */
bool addrfilt_matches_all(const struct addrfilt *f);
/* Write f back as text ("any", "10.0.0.0/8, local") into buf. */
const char *addrfilt_format(const struct addrfilt *f, char *buf, size_t len);

#endif
