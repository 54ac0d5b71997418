/* Connections per peer address, for the per-peer cap. */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addrfilt.h"
#include "introspect.h"
#include "peercount.h"

#define PC_MIN_BUCKETS	64

struct pc_entry {
	struct pc_entry	*next;
	struct addrfilt_addr addr;	/* normalised: mapped IPv4 is IPv4 */
	size_t		 count;
};

struct peercount {
	struct pc_entry	**buckets;
	size_t		  nbuckets;	/* a power of two */
	size_t		  size;
};

/* The address of sa, normalised so IPv4 and mapped IPv4 are one key. */
static void
addr_key(const struct sockaddr *sa, struct addrfilt_addr *key)
{
	if (!addrfilt_addr_from_sockaddr(key, sa))
		memset(key, 0, sizeof(*key));	/* other families share a key */
}

/* FNV-1a over the family and the address bytes. */
static size_t
addr_hash(const struct addrfilt_addr *key)
{
	uint64_t h = 1469598103934665603ULL;
	size_t i;

	h = (h ^ key->family) * 1099511628211ULL;
	for (i = 0; i < sizeof(key->bytes); i++) {
		h ^= key->bytes[i];
		h *= 1099511628211ULL;
	}
	return (size_t)(h ^ (h >> 32));
}

/* A new empty table. */
struct peercount *
peercount_new(void)
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
	struct pc_entry **pp = &pc->buckets[addr_hash(key) & (pc->nbuckets - 1)];

	while (*pp != NULL && !addrfilt_addr_equal(&(*pp)->addr, key))
		pp = &(*pp)->next;
	return pp;
}

/* Double the bucket array once the table is as full as it is wide. */
static void
grow(struct peercount *pc)
{
	struct pc_entry **nb;
	size_t i, n = pc->nbuckets * 2;

	nb = calloc(n, sizeof(*nb));
	if (nb == NULL)
		return;	/* keep working with longer chains */
	for (i = 0; i < pc->nbuckets; i++) {
		struct pc_entry *e = pc->buckets[i], *next;

		for (; e != NULL; e = next) {
			size_t b = addr_hash(&e->addr) & (n - 1);

			next = e->next;
			e->next = nb[b];
			nb[b] = e;
		}
	}
	free(pc->buckets);
	pc->buckets = nb;
	pc->nbuckets = n;
}

/* Count one more connection from sa's address; returns the new count. */
size_t
peercount_add(struct peercount *pc, const struct sockaddr *sa)
{
	struct addrfilt_addr key;
	struct pc_entry **pp, *e;

	addr_key(sa, &key);
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

/* Count one connection less from sa's address. */
void
peercount_remove(struct peercount *pc, const struct sockaddr *sa)
{
	struct addrfilt_addr key;
	struct pc_entry **pp, *e;

	addr_key(sa, &key);
	pp = find(pc, &key);
	if ((e = *pp) == NULL)
		return;
	if (--e->count == 0) {
		*pp = e->next;
		free(e);
		pc->size--;
	}
}

/* The current count for sa's address. */
size_t
peercount_get(const struct peercount *pc, const struct sockaddr *sa)
{
	struct addrfilt_addr key;
	struct pc_entry **pp;

	addr_key(sa, &key);
	pp = find(pc, &key);
	return *pp != NULL ? (*pp)->count : 0;
}

/* Number of distinct addresses counted. */
size_t
peercount_size(const struct peercount *pc)
{
	return pc->size;
}
