/*
 * fuzz_state: the saved-registry decoder (src/state.c) on arbitrary bytes.
 *
 * Input: one mode byte, then a blob. With bit 0 of the mode set, the
 * harness first writes the blob's true length into its length field and
 * recomputes its CRC, so the fuzzer gets past the checksum and reaches the
 * record checks. Whatever decodes is restored into a fresh registry and
 * encoded again; the result must be the input, byte for byte. The blob is a
 * heap allocation of exactly its size, so AddressSanitizer sees any read
 * past it. Invariants that fail call abort().
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "epmd.h"
#include "introspect.h"
#include "registry.h"
#include "state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Fail loudly, naming the broken invariant. */
#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_state: invariant failed at %s:%d: %s\n", \
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

/* Write a big-endian 32-bit integer. */
static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Adopt every active record: the handle is the decoded record itself. */
static void *
adopt(const struct state_node *sn, int *fd, void *arg)
{
	(void)arg;
	*fd = sn->fd;
	return (void *)(uintptr_t)sn;
}

/* Nothing to bind: the handle already says everything. */
static void
bind_cb(void *handle, struct node *node, void *arg)
{
	(void)arg;
	CHECK(node != NULL);
	CHECK(node->handle == handle);
}

/* The connection id an adopted node came with. */
static uint32_t
conn_of(const struct node *node, void *arg)
{
	(void)arg;
	return ((const struct state_node *)node->handle)->conn;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct state	 st;
	struct registry	*reg;
	enum state_error err;
	uint8_t		*blob, *again;
	size_t		 len, len2, i;
	bool		 fix;

	if (size < 1)
		return 0;
	fix = data[0] & 1;
	len = size - 1;
	blob = malloc(len > 0 ? len : 1);
	if (blob == NULL)
		abort();
	if (len > 0)
		memcpy(blob, data + 1, len);
	if (fix && len >= STATE_HEADER_SIZE) {
		put32(blob + 12, (uint32_t)len);
		put32(blob + 16, state_crc32(blob + 20, len - 20));
	}
	err = state_decode(blob, len, &st);
	CHECK(state_strerror(err) != NULL);
	if (err != STATE_OK) {
		CHECK(st.nodes == NULL && st.nactive == 0 && st.nunused == 0);
		free(blob);
		return 0;
	}
	CHECK(st.nactive <= STATE_MAX_ACTIVE && st.nunused <= STATE_MAX_UNUSED);
	for (i = 0; i < st.nactive + st.nunused; i++) {
		const struct state_node *sn = &st.nodes[i];

		CHECK(sn->active == (i < st.nactive));
		CHECK(sn->info.name >= blob && sn->info.name +
		    sn->info.name_len + sn->info.extra_len <= blob + len);
		CHECK(sn->creation <= st.max_creation);
		CHECK(sn->seq >= 1 && sn->seq <= st.seq);
	}
	reg = registry_new(EPMD_UNREG_LIMIT);
	CHECK(reg != NULL);
	CHECK(state_restore(&st, reg, adopt, bind_cb, NULL) == st.nactive);
	CHECK(registry_count(reg) == st.nactive);
	CHECK(registry_unused_count(reg) == st.nunused);
	again = state_encode(reg, st.restarts, conn_of, NULL, &len2);
	CHECK(again != NULL);
	CHECK(len2 == len);
	CHECK(memcmp(again, blob, len) == 0);
	free(again);
	registry_free(reg);
	state_free(&st);
	free(blob);
	return 0;
}
