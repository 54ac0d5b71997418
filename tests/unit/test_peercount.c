/* Unit tests for peercount: unregistered connections per address or prefix. */
#include <arpa/inet.h>
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "introspect.h"
#include "peercount.h"
#include "unit.h"

/* An IPv4 address with the given last two octets. */
static struct sockaddr_in
v4(int a, int b, int port)
{
	struct sockaddr_in s;

	memset(&s, 0, sizeof(s));
	s.sin_family = AF_INET;
	s.sin_port = htons((uint16_t)port);
	s.sin_addr.s_addr = htonl(0xc6336400u | (uint32_t)(a << 8) | (uint32_t)b);
	return s;
}

#define SA(x)	((struct sockaddr *)&(x))

/* An IPv6 address from text. */
static struct sockaddr_in6
v6(const char *text)
{
	struct sockaddr_in6 s;

	memset(&s, 0, sizeof(s));
	s.sin6_family = AF_INET6;
	ck_assert_int_eq(inet_pton(AF_INET6, text, &s.sin6_addr), 1);
	return s;
}

/*
 * The bucket the unkeyed FNV-1a of the old peercount chose, for a table of
 * nbuckets: what an attacker could aim at before the key.
 */
static size_t
fnv_bucket(const struct sockaddr_in6 *a, size_t nbuckets)
{
	uint64_t h = 1469598103934665603ULL;
	size_t i;

	h = (h ^ AF_INET6) * 1099511628211ULL;
	for (i = 0; i < 16; i++) {
		h ^= a->sin6_addr.s6_addr[i];
		h *= 1099511628211ULL;
	}
	return (size_t)(h ^ (h >> 32)) & (nbuckets - 1);
}

START_TEST(test_counts_per_address_not_per_port)
{
	struct peercount *pc = peercount_new(32, 128);
	struct sockaddr_in a1 = v4(0, 1, 1000), a2 = v4(0, 1, 2000);
	struct sockaddr_in b = v4(0, 2, 1000);

	ck_assert_uint_eq(peercount_add(pc, SA(a1)), 1);
	ck_assert_uint_eq(peercount_add(pc, SA(a2)), 2);
	ck_assert_uint_eq(peercount_add(pc, SA(b)), 1);
	ck_assert_uint_eq(peercount_size(pc), 2);
	peercount_remove(pc, SA(a1));
	ck_assert_uint_eq(peercount_get(pc, SA(a2)), 1);
	peercount_remove(pc, SA(a2));
	ck_assert_uint_eq(peercount_get(pc, SA(a1)), 0);
	ck_assert_uint_eq(peercount_size(pc), 1);
	peercount_free(pc);
}
END_TEST

START_TEST(test_ipv4_and_mapped_ipv6_are_one_peer)
{
	struct peercount *pc = peercount_new(32, 128);
	struct sockaddr_in a = v4(0, 7, 1);
	struct sockaddr_in6 m;

	memset(&m, 0, sizeof(m));
	m.sin6_family = AF_INET6;
	ck_assert_int_eq(inet_pton(AF_INET6, "::ffff:198.51.100.7", &m.sin6_addr), 1);
	peercount_add(pc, SA(a));
	ck_assert_uint_eq(peercount_add(pc, SA(m)), 2);
	peercount_free(pc);
}
END_TEST

START_TEST(test_remove_of_unknown_address_is_harmless)
{
	struct peercount *pc = peercount_new(32, 128);
	struct sockaddr_in a = v4(1, 1, 1);

	peercount_remove(pc, SA(a));
	ck_assert_uint_eq(peercount_size(pc), 0);
	peercount_free(pc);
}
END_TEST

START_TEST(test_grows_past_many_addresses_and_empties)
{
	struct peercount *pc = peercount_new(32, 128);
	int i;

	for (i = 0; i < 20000; i++) {
		struct sockaddr_in a = v4(i >> 8 & 0xff, i & 0xff, 1);

		a.sin_addr.s_addr = htonl(0x0a000000u + (uint32_t)i);
		ck_assert_uint_eq(peercount_add(pc, SA(a)), 1);
	}
	ck_assert_uint_eq(peercount_size(pc), 20000);
	for (i = 0; i < 20000; i++) {
		struct sockaddr_in a = v4(0, 0, 1);

		a.sin_addr.s_addr = htonl(0x0a000000u + (uint32_t)i);
		ck_assert_uint_eq(peercount_get(pc, SA(a)), 1);
		peercount_remove(pc, SA(a));
	}
	ck_assert_uint_eq(peercount_size(pc), 0);
	peercount_free(pc);
}
END_TEST

START_TEST(test_counts_an_ipv6_prefix_as_one)
{
	struct peercount *pc = peercount_new(24, 64);
	struct sockaddr_in6 a = v6("2001:db8:1:2::1"), b = v6("2001:db8:1:2:ffff::9");
	struct sockaddr_in6 other = v6("2001:db8:1:3::1");

	ck_assert_uint_eq(peercount_add(pc, SA(a)), 1);
	ck_assert_uint_eq(peercount_add(pc, SA(b)), 2);
	ck_assert_uint_eq(peercount_add(pc, SA(other)), 1);
	ck_assert_uint_eq(peercount_size(pc), 2);
	peercount_remove(pc, SA(b));
	ck_assert_uint_eq(peercount_get(pc, SA(a)), 1);
	peercount_free(pc);
}
END_TEST

START_TEST(test_counts_an_ipv4_prefix_as_one)
{
	struct peercount *pc = peercount_new(24, 64);
	struct sockaddr_in a = v4(0, 1, 1), b = v4(0, 254, 2), c = v4(1, 1, 3);

	peercount_add(pc, SA(a));
	ck_assert_uint_eq(peercount_add(pc, SA(b)), 2);
	ck_assert_uint_eq(peercount_add(pc, SA(c)), 1);
	peercount_free(pc);
}
END_TEST

START_TEST(test_top_lists_the_largest_prefixes_first)
{
	struct peercount *pc = peercount_new(24, 64);
	struct peercount_entry top[2];
	struct sockaddr_in6 big = v6("2001:db8:9::5");
	struct sockaddr_in mid = v4(3, 1, 1), small = v4(4, 1, 1);
	char text[64];
	int i;

	for (i = 0; i < 5; i++)
		peercount_add(pc, SA(big));
	for (i = 0; i < 3; i++)
		peercount_add(pc, SA(mid));
	peercount_add(pc, SA(small));
	ck_assert_uint_eq(peercount_top(pc, top, 2), 2);
	ck_assert_uint_eq(top[0].count, 5);
	ck_assert_uint_eq(top[0].prefix, 64);
	ck_assert_ptr_nonnull(inet_ntop(AF_INET6, top[0].addr.bytes, text,
	    sizeof(text)));
	ck_assert_str_eq(text, "2001:db8:9::");
	ck_assert_uint_eq(top[1].count, 3);
	ck_assert_uint_eq(top[1].prefix, 24);
	ck_assert_ptr_nonnull(inet_ntop(AF_INET, top[1].addr.bytes, text,
	    sizeof(text)));
	ck_assert_str_eq(text, "198.51.103.0");
	peercount_free(pc);
}
END_TEST

/*
 * Addresses planned to share one chain under the old unkeyed hash (one
 * bucket at every table size up to 4096) spread like any others now.
 */
START_TEST(test_planned_collisions_spread_like_random_addresses)
{
	struct peercount *pc = peercount_new(32, 128);
	struct sockaddr_in6 a = v6("2001:db8:5::");
	size_t found = 0, target;
	uint32_t i;

	target = fnv_bucket(&a, 4096);
	for (i = 1; found < 2000; i++) {
		memcpy(&a.sin6_addr.s6_addr[12], &i, sizeof(i));
		if (fnv_bucket(&a, 4096) != target)
			continue;
		ck_assert_uint_eq(peercount_add(pc, SA(a)), 1);
		found++;
	}
	ck_assert_uint_eq(peercount_size(pc), 2000);
	/* 2000 keys in 2048 buckets: random chains stay short. */
	ck_assert_uint_le(peercount_longest_chain(pc), 12);
	peercount_free(pc);
}
END_TEST

/* The peercount suite, run by check_main.c. */
Suite *
unit_suite(void)
{
	Suite	*s = suite_create("peercount");
	TCase	*tc = tcase_create("count");

	tcase_add_test(tc, test_counts_per_address_not_per_port);
	tcase_add_test(tc, test_ipv4_and_mapped_ipv6_are_one_peer);
	tcase_add_test(tc, test_remove_of_unknown_address_is_harmless);
	tcase_add_test(tc, test_grows_past_many_addresses_and_empties);
	tcase_add_test(tc, test_counts_an_ipv6_prefix_as_one);
	tcase_add_test(tc, test_counts_an_ipv4_prefix_as_one);
	tcase_add_test(tc, test_top_lists_the_largest_prefixes_first);
	tcase_add_test(tc, test_planned_collisions_spread_like_random_addresses);
	suite_add_tcase(s, tc);
	return s;
}
