/* Connections per peer address or per peer prefix, for the caps. */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addrfilt.h"
#include "introspect.h"
#include "peercount.h"
#include "siphash.h"

#define PC_MIN_BUCKETS	64

struct pc_entry {
	struct pc_entry	*next;
	struct addrfilt_addr addr;	/* normalised and masked */
	size_t		 count;
};

struct peercount {
	struct pc_entry	**buckets;
	size_t		  nbuckets;	/* a power of two */
	size_t		  size;
	unsigned	  prefix4, prefix6;
	uint64_t	  key[2];	/* hash key, random per table */
};

/* The key of sa: its prefix, with IPv4 and mapped IPv4 one family. */
static void
addr_key(const struct peercount *pc, const struct sockaddr *sa,
    struct addrfilt_addr *key)
{
	if (!addrfilt_addr_from_sockaddr(key, sa)) {
		memset(key, 0, sizeof(*key));	/* other families share a key */
		return;
	}
	addrfilt_addr_mask(key, key->family == AF_INET ? pc->prefix4 :
	    pc->prefix6);
}

/* The bucket of a key: keyed, so peers cannot aim at one chain. */
static size_t
addr_bucket(const struct peercount *pc, const struct addrfilt_addr *key)
{
	uint8_t	 buf[1 + sizeof(key->bytes)];
	uint64_t h;

	buf[0] = key->family;
	memcpy(buf + 1, key->bytes, sizeof(key->bytes));
	h = siphash13(pc->key, buf, sizeof(buf));
	return (size_t)h & (pc->nbuckets - 1);
}

/* A new empty table counting per prefix4 / prefix6 bits. */
struct peercount *
peercount_new(unsigned prefix4, unsigned prefix6)
{
	struct peercount *pc = calloc(1, sizeof(*pc));

	if (pc == NULL)
		return NULL;
	pc->nbuckets = PC_MIN_BUCKETS;
	pc->buckets = calloc(pc->nbuckets, sizeof(*pc->buckets));
	if (pc->buckets == NULL) {
		free(pc);
		return NULL;
	}
	pc->prefix4 = prefix4 < 32 ? prefix4 : 32;
	pc->prefix6 = prefix6 < 128 ? prefix6 : 128;
	siphash_seed(pc->key);
	return pc;
}

/* Free the table. */
void
peercount_free(struct peercount *pc)
{
	size_t i;

	if (pc == NULL)
		return;
	for (i = 0; i < pc->nbuckets; i++) {
		struct pc_entry *e = pc->buckets[i], *next;

		for (; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(pc->buckets);
	free(pc);
}

/* The bucket slot that holds key, or where it would go. */
static struct pc_entry **
find(const struct peercount *pc, const struct addrfilt_addr *key)
{
	struct pc_entry **pp = &pc->buckets[addr_bucket(pc, key)];

	while (*pp != NULL && !addrfilt_addr_equal(&(*pp)->addr, key))
		pp = &(*pp)->next;
	return pp;
}

/* Double the bucket array once the table is as full as it is wide. */
static void
grow(struct peercount *pc)
{
	struct pc_entry **nb, **old = pc->buckets;
	size_t i, n = pc->nbuckets * 2, oldn = pc->nbuckets;

	nb = calloc(n, sizeof(*nb));
	if (nb == NULL)
		return;	/* keep working with longer chains */
	pc->buckets = nb;
	pc->nbuckets = n;
	for (i = 0; i < oldn; i++) {
		struct pc_entry *e = old[i], *next;

		for (; e != NULL; e = next) {
			size_t b = addr_bucket(pc, &e->addr);

			next = e->next;
			e->next = nb[b];
			nb[b] = e;
		}
	}
	free(old);
}

/* Count one more connection from sa's prefix; returns the new count. */
size_t
peercount_add(struct peercount *pc, const struct sockaddr *sa)
{
	struct addrfilt_addr key;
	struct pc_entry **pp, *e;

	addr_key(pc, sa, &key);
	pp = find(pc, &key);
	if (*pp != NULL)
		return ++(*pp)->count;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return 0;
	e->addr = key;
	e->count = 1;
	*pp = e;
	if (++pc->size > pc->nbuckets)
		grow(pc);
	return 1;
}

/* Count one connection less from sa's prefix. */
void
peercount_remove(struct peercount *pc, const struct sockaddr *sa)
{
	struct addrfilt_addr key;
	struct pc_entry **pp, *e;

	addr_key(pc, sa, &key);
	pp = find(pc, &key);
	if ((e = *pp) == NULL)
		return;
	if (--e->count == 0) {
		*pp = e->next;
		free(e);
		pc->size--;
	}
}

/* Fill out with up to n prefixes holding the most, largest first. */
size_t
peercount_top(const struct peercount *pc, struct peercount_entry *out,
    size_t n)
{
	size_t i, k, have = 0;

	for (i = 0; i < pc->nbuckets && n > 0; i++) {
		const struct pc_entry *e;

		for (e = pc->buckets[i]; e != NULL; e = e->next) {
			/* Insertion into a short sorted array: n is a handful. */
			if (have == n && e->count <= out[n - 1].count)
				continue;
			k = have < n ? have++ : n - 1;
			for (; k > 0 && out[k - 1].count < e->count; k--)
				out[k] = out[k - 1];
			out[k].addr = e->addr;
			out[k].prefix = e->addr.family == AF_INET ?
			    pc->prefix4 : pc->prefix6;
			out[k].count = e->count;
		}
	}
	return have;
}

/* The current count for sa's prefix. */
size_t
peercount_get(const struct peercount *pc, const struct sockaddr *sa)
{
	struct addrfilt_addr key;
	struct pc_entry **pp;

	addr_key(pc, sa, &key);
	pp = find(pc, &key);
	return *pp != NULL ? (*pp)->count : 0;
}

/* Number of distinct prefixes counted. */
size_t
peercount_size(const struct peercount *pc)
{
	return pc->size;
}

/* The longest bucket chain: how well the key spreads an attacker's set. */
size_t
peercount_longest_chain(const struct peercount *pc)
{
	size_t i, longest = 0;

	for (i = 0; i < pc->nbuckets; i++) {
		const struct pc_entry *e;
		size_t len = 0;

		for (e = pc->buckets[i]; e != NULL; e = e->next)
			len++;
		if (len > longest)
			longest = len;
	}
	return longest;
}
