/*
 * fnvcollide: IPv6 addresses that all fall in one bucket of the
 * per-peer table of epmd-c before issue 14 (src/peercount.c: FNV-1a over
 * the family byte, AF_INET6, then the 16 address bytes; bucket = (h ^ (h
 * >> 32)) & (nbuckets - 1); the table doubles from 64 buckets once it
 * holds more entries than buckets), or, for comparison, as many plain
 * random ones. For tests/integration/test_hashflood.py.
 *
 *   fnvcollide PREFIX COUNT BITS SEED [random]
 *
 * PREFIX is a /48 (2001:db8:f0::); each address takes a random subnet
 * below it (0..255) and a random interface identifier. With BITS b, every
 * address printed has the same low b bits of the folded hash, so they
 * share a bucket at every table size up to 2^b buckets. One a line.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define FNV_OFFSET	1469598103934665603ULL
#define FNV_PRIME	1099511628211ULL

/* A small fast generator (xorshift64*), seeded by the caller. */
static uint64_t
next_random(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

/* The old bucket hash of an IPv6 address, folded to size_t as it was. */
static uint64_t
old_hash(const uint8_t a[16])
{
	uint64_t h = FNV_OFFSET;
	int i;

	h = (h ^ (uint8_t)AF_INET6) * FNV_PRIME;
	for (i = 0; i < 16; i++) {
		h ^= a[i];
		h *= FNV_PRIME;
	}
	return h ^ (h >> 32);
}

int
main(int argc, char **argv)
{
	uint8_t		 a[16];
	char		 text[INET6_ADDRSTRLEN];
	uint64_t	 seed, mask, want = 0, r;
	long		 count, printed = 0, bits;
	int		 colliding;

	if (argc < 5 || inet_pton(AF_INET6, argv[1], a) != 1) {
		fprintf(stderr, "usage: fnvcollide PREFIX COUNT BITS SEED "
		    "[random]\n");
		return 2;
	}
	count = strtol(argv[2], NULL, 10);
	bits = strtol(argv[3], NULL, 10);
	seed = strtoull(argv[4], NULL, 10) * 0x9e3779b97f4a7c15ULL + 1;
	colliding = !(argc > 5 && strcmp(argv[5], "random") == 0);
	if (count < 1 || bits < 1 || bits > 30)
		return 2;
	mask = (1ULL << bits) - 1;
	/* The first candidate's bucket is the one they all share. */
	for (int first = 1; printed < count; first = 0) {
		r = next_random(&seed);
		a[6] = 0;
		a[7] = (uint8_t)(r >> 56);
		r = next_random(&seed);
		memcpy(a + 8, &r, 8);
		if (colliding) {
			if (first)
				want = old_hash(a) & mask;
			else if ((old_hash(a) & mask) != want)
				continue;
		}
		inet_ntop(AF_INET6, a, text, sizeof(text));
		printf("%s\n", text);
		printed++;
	}
	return 0;
}
