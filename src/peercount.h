/* Connections per peer address or per peer prefix, for the caps. */
#ifndef PEERCOUNT_H
#define PEERCOUNT_H

#include <stddef.h>
#include <sys/socket.h>

#include "addrfilt.h"

struct peercount;

/* One counted prefix and its count, as peercount_top reports it. */
struct peercount_entry {
	struct addrfilt_addr	 addr;	/* host bits 0 */
	unsigned		 prefix;	/* its length in bits */
	size_t			 count;
};

/*
 * A new empty table that counts per prefix: IPv4 addresses by their first
 * prefix4 bits, IPv6 ones by their first prefix6 (32 and 128: per address).
 */
struct peercount *peercount_new(unsigned prefix4, unsigned prefix6);
/* Free the table. */
void peercount_free(struct peercount *pc);
/* Count one more connection from sa's prefix; returns the new count, 0 on ENOMEM. */
size_t peercount_add(struct peercount *pc, const struct sockaddr *sa);
/* Count one connection less from sa's prefix. */
void peercount_remove(struct peercount *pc, const struct sockaddr *sa);
/* Fill out with up to n prefixes holding the most, largest first; returns how many. */
size_t peercount_top(const struct peercount *pc, struct peercount_entry *out,
	    size_t n);

#endif
