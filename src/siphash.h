/* Keyed SipHash-1-3, for hash tables whose keys come from peers. */
#ifndef SIPHASH_H
#define SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* SipHash-1-3 of len bytes under key: peers cannot plan collisions. */
uint64_t siphash13(const uint64_t key[2], const void *data, size_t len);
/* Fill a key from the kernel, or from weaker sources if it fails. */
void siphash_seed(uint64_t key[2]);

#endif
