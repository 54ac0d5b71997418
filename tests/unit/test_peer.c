/* Unit tests for peer: the local-peer rule of PROTOCOL.md 2.1 and 8.4. */
#include <arpa/inet.h>
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "peer.h"
#include "unit.h"

/* An IPv4 socket address. */
static struct sockaddr_in
v4(const char *a, int port)
{
	struct sockaddr_in s;

	memset(&s, 0, sizeof(s));
	s.sin_family = AF_INET;
	s.sin_port = htons((uint16_t)port);
	ck_assert_int_eq(inet_pton(AF_INET, a, &s.sin_addr), 1);
	return s;
}

/* An IPv6 socket address. */
static struct sockaddr_in6
v6(const char *a, int port)
{
	struct sockaddr_in6 s;

	memset(&s, 0, sizeof(s));
	s.sin6_family = AF_INET6;
	s.sin6_port = htons((uint16_t)port);
	ck_assert_int_eq(inet_pton(AF_INET6, a, &s.sin6_addr), 1);
	return s;
}

#define SA(x)	((struct sockaddr *)&(x))

START_TEST(test_ipv4_loopback_range_is_local)
{
	struct sockaddr_in p1 = v4("127.0.0.1", 1), p2 = v4("127.0.0.2", 1);
	struct sockaddr_in p3 = v4("127.255.255.254", 1);
	struct sockaddr_in self = v4("127.0.0.1", 4369);

	ck_assert(peer_is_local(SA(p1), SA(self)));
	ck_assert(peer_is_local(SA(p2), SA(self)));
	ck_assert(peer_is_local(SA(p3), NULL));
}
END_TEST

START_TEST(test_ipv4_remote_is_not_local)
{
	struct sockaddr_in p = v4("192.0.2.1", 1), self = v4("198.51.100.1", 4369);
	struct sockaddr_in p128 = v4("128.0.0.1", 1);

	ck_assert(!peer_is_local(SA(p), SA(self)));
	ck_assert(!peer_is_local(SA(p128), NULL));
}
END_TEST

START_TEST(test_ipv4_peer_equal_to_own_address_is_local)
{
	struct sockaddr_in p = v4("198.51.100.1", 5555);
	struct sockaddr_in self = v4("198.51.100.1", 4369);

	ck_assert(peer_is_local(SA(p), SA(self)));
}
END_TEST

START_TEST(test_ipv6_loopback_is_local)
{
	struct sockaddr_in6 p = v6("::1", 1);

	ck_assert(peer_is_local(SA(p), NULL));
}
END_TEST

START_TEST(test_ipv6_remote_is_not_local_unless_own_address)
{
	struct sockaddr_in6 p = v6("2001:db8::1", 1), self = v6("2001:db8::2", 4369);
	struct sockaddr_in6 same = v6("2001:db8::2", 9);

	ck_assert(!peer_is_local(SA(p), SA(self)));
	ck_assert(peer_is_local(SA(same), SA(self)));
}
END_TEST

START_TEST(test_ipv4_mapped_loopback_is_local_on_dual_stack)
{
	struct sockaddr_in6 p1 = v6("::ffff:127.0.0.1", 1);
	struct sockaddr_in6 p2 = v6("::ffff:127.0.0.2", 1);
	struct sockaddr_in6 self = v6("::ffff:127.0.0.1", 4369);

	/* The reference calls 127.0.0.2 remote here; epmd-c does not (8.4). */
	ck_assert(peer_is_local(SA(p1), SA(self)));
	ck_assert(peer_is_local(SA(p2), SA(self)));
}
END_TEST

START_TEST(test_ipv4_mapped_remote_is_not_local)
{
	struct sockaddr_in6 p = v6("::ffff:192.0.2.1", 1);
	struct sockaddr_in6 self = v6("::ffff:198.51.100.1", 4369);

	ck_assert(!peer_is_local(SA(p), SA(self)));
}
END_TEST

START_TEST(test_other_family_is_not_local)
{
	struct sockaddr sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_family = AF_UNIX;
	ck_assert(!peer_is_local(&sa, NULL));
}
END_TEST

START_TEST(test_format_ipv4_and_ipv6_with_ports)
{
	struct sockaddr_in a = v4("127.0.0.1", 4369);
	struct sockaddr_in6 b = v6("::1", 24369);
	char buf[PEER_ADDRSTRLEN];

	ck_assert_str_eq(peer_format(SA(a), buf, sizeof(buf)), "127.0.0.1:4369");
	ck_assert_str_eq(peer_format(SA(b), buf, sizeof(buf)), "[::1]:24369");
	ck_assert_str_eq(peer_format_addr(SA(b), buf, sizeof(buf)), "::1");
	ck_assert_int_eq(peer_port(SA(b)), 24369);
}
END_TEST

START_TEST(test_same_addr_ignores_ports_and_needs_same_family)
{
	struct sockaddr_in a = v4("10.0.0.1", 1), b = v4("10.0.0.1", 2);
	struct sockaddr_in6 c = v6("::ffff:10.0.0.1", 1);

	ck_assert(peer_same_addr(SA(a), SA(b)));
	ck_assert(!peer_same_addr(SA(a), SA(c)));
}
END_TEST

/* The peer suite, run by check_main.c. */
Suite *
unit_suite(void)
{
	Suite	*s = suite_create("peer");
	TCase	*tc = tcase_create("local");

	tcase_add_test(tc, test_ipv4_loopback_range_is_local);
	tcase_add_test(tc, test_ipv4_remote_is_not_local);
	tcase_add_test(tc, test_ipv4_peer_equal_to_own_address_is_local);
	tcase_add_test(tc, test_ipv6_loopback_is_local);
	tcase_add_test(tc, test_ipv6_remote_is_not_local_unless_own_address);
	tcase_add_test(tc, test_ipv4_mapped_loopback_is_local_on_dual_stack);
	tcase_add_test(tc, test_ipv4_mapped_remote_is_not_local);
	tcase_add_test(tc, test_other_family_is_not_local);
	tcase_add_test(tc, test_format_ipv4_and_ipv6_with_ports);
	tcase_add_test(tc, test_same_addr_ignores_ports_and_needs_same_family);
	suite_add_tcase(s, tc);
	return s;
}
