/*
 * Keyed SipHash-1-3, for hash tables whose keys come from peers. The hash
 * is inline: it sits on every lookup's path.
 */
#ifndef SIPHASH_H
#define SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* Fill a key from the kernel, or from weaker sources if it fails. */
void siphash_seed(uint64_t key[2]);

/* Rotate a 64-bit word left. */
static inline uint64_t
rotl64(uint64_t x, unsigned int b)
{
	return (x << b) | (x >> (64 - b));
}

/* Read 8 bytes as a little-endian word. */
static inline uint64_t
load_le64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* One mixing round of the SipHash permutation. */
static inline void
sip_round(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = rotl64(v[1], 13);
	v[1] ^= v[0];
	v[0] = rotl64(v[0], 32);
	v[2] += v[3];
	v[3] = rotl64(v[3], 16);
	v[3] ^= v[2];
	v[0] += v[3];
	v[3] = rotl64(v[3], 21);
	v[3] ^= v[0];
	v[2] += v[1];
	v[1] = rotl64(v[1], 17);
	v[1] ^= v[2];
	v[2] = rotl64(v[2], 32);
}

/* SipHash-1-3 of len bytes under key: peers cannot plan collisions. */
static inline uint64_t
siphash13(const uint64_t key[2], const void *data, size_t len)
{
	const uint8_t	*s = data;
	uint64_t	 v[4], m;
	size_t		 i, tail;

	v[0] = key[0] ^ 0x736f6d6570736575ULL;
	v[1] = key[1] ^ 0x646f72616e646f6dULL;
	v[2] = key[0] ^ 0x6c7967656e657261ULL;
	v[3] = key[1] ^ 0x7465646279746573ULL;

	for (i = 0; i + 8 <= len; i += 8) {
		m = load_le64(s + i);
		v[3] ^= m;
		sip_round(v);
		v[0] ^= m;
	}
	m = (uint64_t)(len & 0xff) << 56;
	for (tail = len - i; tail > 0; tail--)
		m |= (uint64_t)s[i + tail - 1] << (8 * (tail - 1));
	v[3] ^= m;
	sip_round(v);
	v[0] ^= m;

	v[2] ^= 0xff;
	sip_round(v);
	sip_round(v);
	sip_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

#endif
