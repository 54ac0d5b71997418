/* Keyed SipHash-1-3, for hash tables whose keys come from peers. */
#include <sys/random.h>

#include <errno.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "siphash.h"

/* Fill the hash key from the kernel, or from weaker sources if it fails. */
void
siphash_seed(uint64_t key[2])
{
	uint8_t		*p = (uint8_t *)key;
	size_t		 got = 0;
	ssize_t		 n;
	struct timespec	 ts;

	/* Non-blocking: an early-boot start must not hang on entropy. */
	while (got < sizeof(uint64_t) * 2) {
		n = getrandom(p + got, sizeof(uint64_t) * 2 - got,
		    GRND_NONBLOCK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got == sizeof(uint64_t) * 2)
		return;

	clock_gettime(CLOCK_REALTIME, &ts);
	key[0] ^= (uint64_t)ts.tv_sec * 0x9e3779b97f4a7c15ULL ^
	    (uint64_t)ts.tv_nsec;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	key[1] ^= (uint64_t)ts.tv_nsec * 0xbf58476d1ce4e5b9ULL ^
	    (uint64_t)getpid() ^ (uint64_t)(uintptr_t)key;
}
