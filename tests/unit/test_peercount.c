/* Unit tests for peercount: unregistered connections per address. */
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

START_TEST(test_counts_per_address_not_per_port)
{
	struct peercount *pc = peercount_new();
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
	struct peercount *pc = peercount_new();
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
	struct peercount *pc = peercount_new();
	struct sockaddr_in a = v4(1, 1, 1);

	peercount_remove(pc, SA(a));
	ck_assert_uint_eq(peercount_size(pc), 0);
	peercount_free(pc);
}
END_TEST

START_TEST(test_grows_past_many_addresses_and_empties)
{
	struct peercount *pc = peercount_new();
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
	suite_add_tcase(s, tc);
	return s;
}
