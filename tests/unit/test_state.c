/* Unit tests for the saved registry: round trip, every rejection, limits. */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "epmd.h"
#include "introspect.h"
#include "registry.h"
#include "state.h"
#include "unit.h"

#define NOW	1795269781u

/* A request for a name given as a C string, with an extra. */
static struct proto_alive2
req_for(const char *name, const char *extra, uint16_t port)
{
	struct proto_alive2 req;

	memset(&req, 0, sizeof(req));
	req.port = port;
	req.node_type = 77;
	req.protocol = 0;
	req.high = 6;
	req.low = 5;
	req.name = (const uint8_t *)name;
	req.name_len = strlen(name);
	req.extra = (const uint8_t *)extra;
	req.extra_len = strlen(extra);
	return req;
}

/* Register a name that must succeed, with fd as its connection. */
static struct node *
must_register(struct registry *reg, const char *name, const char *extra,
    int fd)
{
	struct proto_alive2	 req = req_for(name, extra, (uint16_t)(4000 + fd));
	struct node		*node = NULL;

	ck_assert_int_eq(registry_register(reg, &req, fd, NULL, NOW, &node),
	    REGISTRY_OK);
	return node;
}

/* Connection id for the encoder: the fd plus 1000. */
static uint32_t
conn_of(const struct node *node, void *arg)
{
	(void)arg;
	return (uint32_t)node->fd + 1000;
}

/* A registry with three active nodes and two old ones. */
static struct registry *
sample_registry(void)
{
	struct registry *reg = registry_new(EPMD_UNREG_LIMIT);

	must_register(reg, "old1", "", 3);
	must_register(reg, "a", "extra bytes", 4);
	must_register(reg, "b\xc3\xa9", "", 5);		/* "bé" */
	must_register(reg, "old2", "e", 6);
	must_register(reg, "c", "", 7);
	registry_unregister(reg, registry_lookup(reg, (const uint8_t *)"old1",
	    4));
	registry_unregister(reg, registry_lookup(reg, (const uint8_t *)"old2",
	    4));
	return reg;
}

/* Encode the sample registry. */
static uint8_t *
sample_blob(size_t *len)
{
	struct registry	*reg = sample_registry();
	uint8_t		*blob = state_encode(reg, 7, conn_of, NULL, len);

	ck_assert_ptr_nonnull(blob);
	registry_free(reg);
	return blob;
}

/* Recompute the CRC after a test edited the blob. */
static void
refix(uint8_t *blob, size_t len)
{
	uint32_t crc = state_crc32(blob + 20, len - 20);

	blob[16] = (uint8_t)(crc >> 24);
	blob[17] = (uint8_t)(crc >> 16);
	blob[18] = (uint8_t)(crc >> 8);
	blob[19] = (uint8_t)crc;
}

/* Write a big-endian 32-bit value. */
static void
set32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Decode a blob that must be rejected with err. */
static void
expect_error(const uint8_t *blob, size_t len, enum state_error err)
{
	struct state st;

	ck_assert_str_eq(state_strerror(state_decode(blob, len, &st)),
	    state_strerror(err));
	ck_assert_ptr_null(st.nodes);
}

/* Offset of record k (0-based) in a blob. */
static size_t
record_at(const uint8_t *blob, size_t k)
{
	size_t off = STATE_HEADER_SIZE;

	while (k-- > 0)
		off += STATE_RECORD_HEADER +
		    (size_t)((blob[off + 10] << 8) | blob[off + 11]) +
		    (size_t)((blob[off + 12] << 8) | blob[off + 13]);
	return off;
}

/* Compare two registries node for node, in list order. */
struct pair {
	const struct node	*nodes[16];
	size_t			 n;
};

/* Walk callback: remember each node. */
static bool
remember(const struct node *node, void *arg)
{
	struct pair *p = arg;

	ck_assert_uint_lt(p->n, 16);
	p->nodes[p->n++] = node;
	return true;
}

/* Are a and b the same records in the same order (fd aside)? */
static void
same_list(const struct pair *a, const struct pair *b)
{
	size_t i;

	ck_assert_uint_eq(a->n, b->n);
	for (i = 0; i < a->n; i++) {
		const struct node *x = a->nodes[i], *y = b->nodes[i];

		ck_assert_uint_eq(x->info.name_len, y->info.name_len);
		ck_assert_int_eq(memcmp(x->info.name, y->info.name,
		    x->info.name_len), 0);
		ck_assert_uint_eq(x->info.extra_len, y->info.extra_len);
		ck_assert_int_eq(memcmp(x->info.extra, y->info.extra,
		    x->info.extra_len), 0);
		ck_assert_uint_eq(x->info.port, y->info.port);
		ck_assert_uint_eq(x->info.node_type, y->info.node_type);
		ck_assert_uint_eq(x->info.protocol, y->info.protocol);
		ck_assert_uint_eq(x->info.high, y->info.high);
		ck_assert_uint_eq(x->info.low, y->info.low);
		ck_assert_uint_eq(x->creation, y->creation);
		ck_assert_uint_eq(x->seq, y->seq);
		ck_assert_int_eq(x->active, y->active);
	}
}

/* Encode, decode, restore: the same records, order, creations, counters. */
START_TEST(test_round_trip_restores_everything)
{
	struct registry	*reg = sample_registry(), *back;
	struct pair	 pa = { .n = 0 }, pb = { .n = 0 };
	struct state	 st;
	struct node	*n1, *n2;
	size_t		 len, i;
	uint8_t		*blob = state_encode(reg, 7, conn_of, NULL, &len);

	ck_assert_ptr_nonnull(blob);
	ck_assert_int_eq(state_decode(blob, len, &st), STATE_OK);
	ck_assert_uint_eq(st.nactive, 3);
	ck_assert_uint_eq(st.nunused, 2);
	ck_assert_uint_eq(st.max_creation, registry_max_creation(reg));
	ck_assert_uint_eq(st.seq, registry_seq(reg));
	ck_assert_uint_eq(st.restarts, 7);
	for (i = 0; i < st.nactive; i++) {
		ck_assert_uint_eq(st.nodes[i].conn,
		    (uint32_t)st.nodes[i].fd + 1000);
		ck_assert(st.nodes[i].active);
	}
	for (; i < st.nactive + st.nunused; i++)
		ck_assert_uint_eq(st.nodes[i].conn, STATE_NO_CONN);
	back = registry_new(EPMD_UNREG_LIMIT);
	ck_assert_uint_eq(state_restore(&st, back, NULL, NULL, NULL), 3);
	registry_walk_active(reg, UINT64_MAX, remember, &pa);
	registry_walk_active(back, UINT64_MAX, remember, &pb);
	same_list(&pa, &pb);
	pa.n = pb.n = 0;
	registry_walk_unused(reg, 0, remember, &pa);
	registry_walk_unused(back, 0, remember, &pb);
	same_list(&pa, &pb);
	ck_assert_uint_eq(registry_max_creation(back),
	    registry_max_creation(reg));
	ck_assert_uint_eq(registry_seq(back), registry_seq(reg));
	/* The next creation of an old name is the same in both. */
	n1 = must_register(reg, "old2", "", 9);
	n2 = must_register(back, "old2", "", 9);
	ck_assert_uint_eq(n1->creation, n2->creation);
	n1 = must_register(reg, "new", "", 10);
	n2 = must_register(back, "new", "", 10);
	ck_assert_uint_eq(n1->creation, n2->creation);
	state_free(&st);
	free(blob);
	registry_free(reg);
	registry_free(back);
}
END_TEST

/* An empty registry is a 48-byte blob that decodes to nothing. */
START_TEST(test_empty_registry_round_trip)
{
	struct registry	*reg = registry_new(5);
	struct state	 st;
	size_t		 len;
	uint8_t		*blob = state_encode(reg, 7, conn_of, NULL, &len);

	ck_assert_uint_eq(len, STATE_HEADER_SIZE);
	ck_assert_int_eq(memcmp(blob, STATE_MAGIC, 8), 0);
	ck_assert_int_eq(state_decode(blob, len, &st), STATE_OK);
	ck_assert_uint_eq(st.nactive + st.nunused, 0);
	state_free(&st);
	free(blob);
	registry_free(reg);
}
END_TEST

/* Every proper prefix of a good blob is rejected. */
START_TEST(test_every_truncation_rejected)
{
	struct state	 st;
	size_t		 len, k;
	uint8_t		*blob = sample_blob(&len);

	for (k = 0; k < len; k++) {
		uint8_t *cut = malloc(k > 0 ? k : 1);

		memcpy(cut, blob, k);
		ck_assert_int_ne(state_decode(cut, k, &st), STATE_OK);
		ck_assert_ptr_null(st.nodes);
		free(cut);
	}
	expect_error(blob, len - 1, STATE_ERR_TRUNCATED);
	expect_error(blob, 10, STATE_ERR_TRUNCATED);
	free(blob);
}
END_TEST

/* Flipping any single byte is caught. */
START_TEST(test_every_byte_flip_rejected)
{
	struct state	 st;
	size_t		 len, k;
	uint8_t		*blob = sample_blob(&len);

	for (k = 0; k < len; k++) {
		blob[k] ^= 0x20;
		ck_assert_int_ne(state_decode(blob, len, &st), STATE_OK);
		blob[k] ^= 0x20;
	}
	blob[len - 1] ^= 1;
	expect_error(blob, len, STATE_ERR_CHECKSUM);
	free(blob);
}
END_TEST

/* Wrong magic, unknown version, flags set. */
START_TEST(test_magic_and_version_rejected)
{
	size_t	 len;
	uint8_t	*blob = sample_blob(&len);

	blob[0] = 'X';
	expect_error(blob, len, STATE_ERR_MAGIC);
	expect_error(blob, 12, STATE_ERR_MAGIC);
	blob[0] = 'E';
	blob[9] = 2;		/* version 2 */
	expect_error(blob, len, STATE_ERR_VERSION);
	blob[9] = 1;
	blob[11] = 1;		/* a flag this version does not know */
	expect_error(blob, len, STATE_ERR_VERSION);
	free(blob);
}
END_TEST

/* A length field that differs from the blob, and trailing bytes. */
START_TEST(test_length_and_trailing_rejected)
{
	size_t	 len;
	uint8_t	*blob = sample_blob(&len), *big;

	big = calloc(1, len + 8);
	memcpy(big, blob, len);
	/* The length field says len: the 8 extra bytes are not the blob. */
	expect_error(big, len + 8, STATE_ERR_LENGTH);
	/* Length covers them, but no record does. */
	set32(big + 12, (uint32_t)(len + 8));
	refix(big, len + 8);
	expect_error(big, len + 8, STATE_ERR_TRAILING);
	set32(blob + 12, 20);	/* shorter than a header */
	expect_error(blob, len, STATE_ERR_LENGTH);
	free(big);
	free(blob);
}
END_TEST

/* Sizes and counts above the limits are rejected before allocating. */
START_TEST(test_limits_rejected)
{
	size_t	 len;
	uint8_t	*blob = sample_blob(&len);

	set32(blob + 12, (uint32_t)STATE_MAX_SIZE + 1);
	expect_error(blob, len, STATE_ERR_TOO_LARGE);
	set32(blob + 12, (uint32_t)len);
	set32(blob + 20, STATE_MAX_ACTIVE + 1);
	refix(blob, len);
	expect_error(blob, len, STATE_ERR_TOO_LARGE);
	set32(blob + 20, 3);
	set32(blob + 24, STATE_MAX_UNUSED + 1);
	refix(blob, len);
	expect_error(blob, len, STATE_ERR_TOO_LARGE);
	/* Within the limits but more records than the bytes can hold. */
	set32(blob + 24, 1000);
	refix(blob, len);
	expect_error(blob, len, STATE_ERR_RECORD);
	free(blob);
}
END_TEST

/* A registry above the unused limit of the format does not encode. */
START_TEST(test_encoder_refuses_above_limits)
{
	struct registry		*reg = registry_new(STATE_MAX_UNUSED + 10);
	char			 name[16];
	size_t			 len, i;
	uint8_t			*blob;

	for (i = 0; i <= STATE_MAX_UNUSED; i++) {
		struct proto_alive2	 req;
		struct node		*node;

		snprintf(name, sizeof(name), "n%zu", i);
		req = req_for(name, "", 1);
		ck_assert_int_eq(registry_register(reg, &req, 3, NULL, NOW,
		    &node), REGISTRY_OK);
		registry_unregister(reg, node);
	}
	blob = state_encode(reg, 7, conn_of, NULL, &len);
	ck_assert_ptr_null(blob);
	registry_free(reg);
}
END_TEST

/* Malformed records: wrong kind, reserved bytes, lengths past the end. */
START_TEST(test_malformed_records_rejected)
{
	size_t	 len, r0, r3;
	uint8_t	*blob = sample_blob(&len);

	r0 = record_at(blob, 0);
	r3 = record_at(blob, 3);	/* the first old/unused record */
	blob[r0] = 2;			/* an unused record among actives */
	refix(blob, len);
	expect_error(blob, len, STATE_ERR_RECORD);
	blob[r0] = 1;
	blob[r0 + 3] = 1;		/* reserved */
	refix(blob, len);
	expect_error(blob, len, STATE_ERR_RECORD);
	blob[r0 + 3] = 0;
	blob[r0 + 10] = 0x04;		/* name length 1025 */
	blob[r0 + 11] = 0x01;
	refix(blob, len);
	expect_error(blob, len, STATE_ERR_RECORD);
	blob[r0 + 10] = 0x00;
	blob[r0 + 11] = 0xf0;		/* past the end */
	refix(blob, len);
	expect_error(blob, len, STATE_ERR_RECORD);
	blob[r0 + 11] = 1;
	set32(blob + r0 + 24, STATE_NO_CONN);	/* active without conn */
	refix(blob, len);
	expect_error(blob, len, STATE_ERR_RECORD);
	set32(blob + r0 + 24, 1007);
	set32(blob + r3 + 24, 5);		/* old with a conn */
	refix(blob, len);
	expect_error(blob, len, STATE_ERR_RECORD);
	set32(blob + r3 + 24, STATE_NO_CONN);
	refix(blob, len);
	{
		struct state st;

		ck_assert_int_eq(state_decode(blob, len, &st), STATE_OK);
		state_free(&st);
	}
	free(blob);
}
END_TEST

/* A name the registry would refuse (invalid UTF-8, NUL) is rejected. */
START_TEST(test_bad_names_rejected)
{
	size_t	 len, r0;
	uint8_t	*blob = sample_blob(&len);

	r0 = record_at(blob, 0);	/* "c", one byte */
	blob[r0 + STATE_RECORD_HEADER] = 0xff;
	refix(blob, len);
	expect_error(blob, len, STATE_ERR_NAME);
	blob[r0 + STATE_RECORD_HEADER] = 0;
	refix(blob, len);
	expect_error(blob, len, STATE_ERR_NAME);
	free(blob);
}
END_TEST

/* Two records with one name, or two actives with one connection. */
START_TEST(test_duplicates_rejected)
{
	size_t	 len, r0, r1, r4;
	uint8_t	*blob = sample_blob(&len);

	r0 = record_at(blob, 0);	/* "c" */
	r1 = record_at(blob, 1);	/* "bé" */
	r4 = record_at(blob, 4);	/* "old2", unused */
	memcpy(blob + r4 + STATE_RECORD_HEADER, "old1", 4);
	refix(blob, len);
	expect_error(blob, len, STATE_ERR_DUPLICATE);
	memcpy(blob + r4 + STATE_RECORD_HEADER, "old2", 4);
	memcpy(blob + r1 + 24, blob + r0 + 24, 4);
	refix(blob, len);
	expect_error(blob, len, STATE_ERR_DUPLICATE);
	free(blob);
}
END_TEST

/* Seq out of order, above the counter, zero; creation above the max. */
START_TEST(test_order_and_creation_rejected)
{
	size_t	 len, r0, r1, r3;
	uint8_t	*blob = sample_blob(&len), save[8];

	r0 = record_at(blob, 0);
	r1 = record_at(blob, 1);
	r3 = record_at(blob, 3);
	memcpy(save, blob + r0 + 28, 8);
	memcpy(blob + r0 + 28, blob + r1 + 28, 8);	/* equal seqs */
	refix(blob, len);
	expect_error(blob, len, STATE_ERR_ORDER);
	memcpy(blob + r0 + 28, save, 8);
	blob[r0 + 35] = 0xff;				/* above the counter */
	refix(blob, len);
	expect_error(blob, len, STATE_ERR_ORDER);
	memcpy(blob + r0 + 28, save, 8);
	memset(blob + r3 + 28, 0, 8);			/* seq 0 */
	refix(blob, len);
	expect_error(blob, len, STATE_ERR_ORDER);
	free(blob);
	blob = sample_blob(&len);
	r0 = record_at(blob, 0);
	set32(blob + r0 + 16, 0xffffffffu);		/* creation */
	refix(blob, len);
	expect_error(blob, len, STATE_ERR_CREATION);
	free(blob);
}
END_TEST

/* Restore callbacks: adopted nodes bound, gone ones moved to the history. */
struct adopt_log {
	size_t	adopted;
	size_t	bound;
	int	handles[8];
};

/* Adopt every record except "bé", whose connection is gone. */
static void *
adopt(const struct state_node *sn, int *fd, void *arg)
{
	struct adopt_log *log = arg;

	if (sn->info.name_len == 3)
		return NULL;
	*fd = 100 + (int)log->adopted;
	return &log->handles[log->adopted++];
}

/* Count bindings. */
static void
bind_cb(void *handle, struct node *node, void *arg)
{
	struct adopt_log *log = arg;

	ck_assert_ptr_nonnull(node);
	ck_assert_ptr_eq(node->handle, handle);
	log->bound++;
}

START_TEST(test_restore_drops_gone_connections)
{
	struct adopt_log	 log = { 0, 0, { 0 } };
	struct registry		*back = registry_new(EPMD_UNREG_LIMIT);
	struct state		 st;
	struct node		*n;
	size_t			 len;
	uint8_t			*blob = sample_blob(&len);
	uint64_t		 seq;

	ck_assert_int_eq(state_decode(blob, len, &st), STATE_OK);
	seq = st.seq;
	ck_assert_uint_eq(state_restore(&st, back, adopt, bind_cb, &log), 2);
	ck_assert_uint_eq(log.adopted, 2);
	ck_assert_uint_eq(log.bound, 2);
	ck_assert_uint_eq(registry_count(back), 2);
	ck_assert_uint_eq(registry_unused_count(back), 3);
	ck_assert_ptr_null(registry_lookup(back, (const uint8_t *)"b\xc3\xa9",
	    3));
	n = registry_lookup(back, (const uint8_t *)"a", 1);
	ck_assert_ptr_nonnull(n);
	ck_assert_int_ge(n->fd, 100);
	/* The gone node left after the restore: a new seq. */
	ck_assert_uint_eq(registry_seq(back), seq + 1);
	state_free(&st);
	free(blob);
	registry_free(back);
}
END_TEST

/* The CRC is zlib's: a known vector. */
START_TEST(test_crc32_known_vector)
{
	ck_assert_uint_eq(state_crc32((const uint8_t *)"123456789", 9),
	    0xcbf43926u);
	ck_assert_uint_eq(state_crc32((const uint8_t *)"", 0), 0);
}
END_TEST

/* Every error has a text. */
START_TEST(test_every_error_has_text)
{
	int e;

	for (e = STATE_OK; e <= STATE_ERR_NOMEM; e++)
		ck_assert_str_ne(state_strerror((enum state_error)e),
		    "unknown error");
}
END_TEST

/* Every state test in one suite. */
Suite *
unit_suite(void)
{
	Suite	*s = suite_create("state");
	TCase	*tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_round_trip_restores_everything);
	tcase_add_test(tc, test_empty_registry_round_trip);
	tcase_add_test(tc, test_every_truncation_rejected);
	tcase_add_test(tc, test_every_byte_flip_rejected);
	tcase_add_test(tc, test_magic_and_version_rejected);
	tcase_add_test(tc, test_length_and_trailing_rejected);
	tcase_add_test(tc, test_limits_rejected);
	tcase_add_test(tc, test_encoder_refuses_above_limits);
	tcase_add_test(tc, test_malformed_records_rejected);
	tcase_add_test(tc, test_bad_names_rejected);
	tcase_add_test(tc, test_duplicates_rejected);
	tcase_add_test(tc, test_order_and_creation_rejected);
	tcase_add_test(tc, test_restore_drops_gone_connections);
	tcase_add_test(tc, test_crc32_known_vector);
	tcase_add_test(tc, test_every_error_has_text);
	suite_add_tcase(s, tc);
	return s;
}

