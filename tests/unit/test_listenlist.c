/*
 * Unit tests for listenlist: the listen list of -address / ERL_EPMD_ADDRESS
 * under the rule of OTP's 2026 security release (PROTOCOL.md 4.4).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "epmd.h"
#include "listenlist.h"
#include "unit.h"

struct built {
	struct listen_addr	 a[EPMD_MAX_LISTENERS];
	size_t			 n;
	char			 err[256];
	char			 text[EPMD_MAX_LISTENERS * 64];
};

/*
 * Build list, which must be valid, and write the result as text: each
 * address, with a "?" after the implicit (best-effort) ones, e.g.
 * "127.0.0.1? ::1? 198.51.100.1".
 */
static const char *
build_ok(const char *list)
{
	static struct built	 b;
	size_t			 i, off = 0;
	char			 addr[INET6_ADDRSTRLEN];

	memset(&b, 0, sizeof(b));
	ck_assert_msg(listenlist_build(list, b.a, &b.n, b.err, sizeof(b.err)),
	    "\"%s\": %s", list, b.err);
	ck_assert_uint_le(b.n, EPMD_MAX_LISTENERS - 1);
	for (i = 0; i < b.n; i++) {
		const struct sockaddr_storage *ss = &b.a[i].ss;

		if (ss->ss_family == AF_INET) {
			ck_assert_uint_eq(b.a[i].len, sizeof(struct sockaddr_in));
			ck_assert_uint_eq(((const struct sockaddr_in *)ss)->sin_port, 0);
			inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr,
			    addr, sizeof(addr));
		} else {
			ck_assert_int_eq(ss->ss_family, AF_INET6);
			ck_assert_uint_eq(b.a[i].len,
			    sizeof(struct sockaddr_in6));
			ck_assert_uint_eq(((const struct sockaddr_in6 *)ss)->sin6_port, 0);
			inet_ntop(AF_INET6,
			    &((const struct sockaddr_in6 *)ss)->sin6_addr, addr,
			    sizeof(addr));
		}
		off += (size_t)snprintf(b.text + off, sizeof(b.text) - off,
		    "%s%s%s", i > 0 ? " " : "", addr, b.a[i].implicit ? "?" :
		    "");
	}
	return b.text;
}

/* Build list, which must fail; returns the message. */
static const char *
build_bad(const char *list)
{
	static struct built	 b;

	memset(&b, 0, sizeof(b));
	ck_assert_msg(!listenlist_build(list, b.a, &b.n, b.err,
	    sizeof(b.err)), "\"%s\" was accepted", list);
	return b.err;
}

/* A list of n addresses 198.51.100.1, .2, ... joined by commas. */
static const char *
extras(int n, const char *tail)
{
	static char	 buf[1024];
	size_t		 off = 0;
	int		 i;

	buf[0] = '\0';
	for (i = 0; i < n; i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off,
		    "%s198.51.100.%d", i ? "," : "", i + 1);
	snprintf(buf + off, sizeof(buf) - off, "%s", tail);
	return buf;
}

START_TEST(test_no_tokens_means_every_interface)
{
	ck_assert_str_eq(build_ok(""), "");
	ck_assert_str_eq(build_ok(" , ,, "), "");
}
END_TEST

START_TEST(test_other_address_gets_both_implicit_loopbacks_first)
{
	ck_assert_str_eq(build_ok("198.51.100.1"),
	    "127.0.0.1? ::1? 198.51.100.1");
	ck_assert_str_eq(build_ok("2001:db8::1"),
	    "127.0.0.1? ::1? 2001:db8::1");
}
END_TEST

START_TEST(test_given_ipv4_loopback_is_users_and_ipv6_loopback_implicit)
{
	/* A host with IPv6 disabled: ::1 may fail, 127.0.0.1 must bind. */
	ck_assert_str_eq(build_ok("127.0.0.1"), "127.0.0.1 ::1?");
}
END_TEST

START_TEST(test_given_ipv6_loopback_is_users_and_ipv4_loopback_implicit)
{
	ck_assert_str_eq(build_ok("::1"), "127.0.0.1? ::1");
	ck_assert_str_eq(build_ok("0:0:0:0:0:0:0:1"), "127.0.0.1? ::1");
}
END_TEST

START_TEST(test_both_loopbacks_given_add_nothing_implicit)
{
	ck_assert_str_eq(build_ok("::1,127.0.0.1"), "127.0.0.1 ::1");
}
END_TEST

START_TEST(test_loopback_named_twice_is_one_socket)
{
	ck_assert_str_eq(build_ok("127.0.0.1 127.0.0.1,::1,::1"),
	    "127.0.0.1 ::1");
}
END_TEST

START_TEST(test_debian_hostname_address_keeps_implicit_127_0_0_1)
{
	/* Nodes register through 127.0.0.1; 127.0.1.1 is another socket. */
	ck_assert_str_eq(build_ok("127.0.1.1"), "127.0.0.1? ::1? 127.0.1.1");
	ck_assert_str_eq(build_ok("127.0.0.2"), "127.0.0.1? ::1? 127.0.0.2");
}
END_TEST

START_TEST(test_ipv4_wildcard_drops_implicit_127_0_0_1)
{
	/* Binding 127.0.0.1 next to 0.0.0.0 on one port is EADDRINUSE. */
	ck_assert_str_eq(build_ok("0.0.0.0"), "::1? 0.0.0.0");
}
END_TEST

START_TEST(test_ipv6_wildcard_drops_implicit_ipv6_loopback)
{
	ck_assert_str_eq(build_ok("::"), "127.0.0.1? ::");
}
END_TEST

START_TEST(test_both_wildcards_add_nothing_implicit)
{
	ck_assert_str_eq(build_ok("0.0.0.0 ::"), "0.0.0.0 ::");
	ck_assert_str_eq(build_ok(":: 0.0.0.0"), ":: 0.0.0.0");
}
END_TEST

START_TEST(test_loopback_given_with_wildcard_is_covered)
{
	ck_assert_str_eq(build_ok("127.0.0.1,0.0.0.0"), "::1? 0.0.0.0");
	ck_assert_str_eq(build_ok("::,::1"), "127.0.0.1? ::");
}
END_TEST

START_TEST(test_address_covered_by_wildcard_of_its_family_is_not_bound)
{
	ck_assert_str_eq(build_ok("0.0.0.0,198.51.100.1,127.0.1.1"),
	    "::1? 0.0.0.0");
	ck_assert_str_eq(build_ok("2001:db8::1 ::"), "127.0.0.1? ::");
	/* The other family's wildcard covers nothing: sockets are V6ONLY. */
	ck_assert_str_eq(build_ok(":: 198.51.100.1"),
	    "127.0.0.1? :: 198.51.100.1");
}
END_TEST

START_TEST(test_mapped_address_is_not_covered_by_ipv6_wildcard)
{
	/* It fails to bind (EINVAL) and stays fatal, as in OTP. */
	ck_assert_str_eq(build_ok(":: ::ffff:127.0.0.1"),
	    "127.0.0.1? :: ::ffff:127.0.0.1");
}
END_TEST

START_TEST(test_wildcard_named_twice_is_one_socket)
{
	ck_assert_str_eq(build_ok("0.0.0.0,0.0.0.0"), "::1? 0.0.0.0");
}
END_TEST

START_TEST(test_other_duplicates_are_kept_for_eaddrinuse)
{
	/* OTP exits 0 on the second bind: erl relies on that exit status. */
	ck_assert_str_eq(build_ok("127.0.0.2,127.0.0.2"),
	    "127.0.0.1? ::1? 127.0.0.2 127.0.0.2");
}
END_TEST

START_TEST(test_given_addresses_keep_their_order)
{
	ck_assert_str_eq(build_ok("203.0.113.5 ::1 198.51.100.9"),
	    "127.0.0.1? ::1 203.0.113.5 198.51.100.9");
}
END_TEST

START_TEST(test_bad_token_is_fatal_and_named)
{
	ck_assert_str_eq(build_bad("198.51.100.1,localhost"),
	    "cannot parse IP address \"localhost\"");
	ck_assert_str_eq(build_bad("127.1"), "cannot parse IP address \"127.1\"");
	ck_assert_str_eq(build_bad("[::1]"), "cannot parse IP address \"[::1]\"");
	ck_assert_str_eq(build_bad("0.0.0.0/0"),
	    "cannot parse IP address \"0.0.0.0/0\"");
}
END_TEST

/* How many addresses a build_ok text lists. */
static size_t
count(const char *text)
{
	size_t	 n = *text != '\0';

	for (; *text != '\0'; text++)
		n += *text == ' ';
	return n;
}

START_TEST(test_13_extras_fit_and_14_do_not)
{
	const char *got = build_ok(extras(13, ""));

	ck_assert_uint_eq(count(got), 15);
	ck_assert_ptr_nonnull(strstr(got, "127.0.0.1? ::1? 198.51.100.1 "));
	ck_assert_ptr_nonnull(strstr(got, " 198.51.100.13"));
	ck_assert_str_eq(build_bad(extras(14, "")),
	    "cannot listen on more than 16 IP addresses");
}
END_TEST

START_TEST(test_wildcards_count_toward_the_limit)
{
	ck_assert_str_eq(build_bad(extras(13, ",0.0.0.0")),
	    "cannot listen on more than 16 IP addresses");
}
END_TEST

START_TEST(test_loopbacks_do_not_count_toward_the_limit)
{
	ck_assert_uint_eq(count(build_ok(extras(13, ",127.0.0.1,::1"))), 15);
}
END_TEST

START_TEST(test_loopback_test_covers_127_8_ipv6_and_mapped)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	static const struct { const char *addr; bool lo; } cases[] = {
		{ "127.0.0.1", true }, { "127.0.1.1", true },
		{ "127.255.255.255", true }, { "::1", true },
		{ "::ffff:127.0.0.1", true }, { "0.0.0.0", false },
		{ "::", false }, { "198.51.100.1", false },
		{ "128.0.0.1", false }, { "::ffff:198.51.100.1", false },
		{ "2001:db8::1", false },
	};
	size_t	 i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&ss, 0, sizeof(ss));
		if (inet_pton(AF_INET, cases[i].addr, &sin->sin_addr) == 1)
			sin->sin_family = AF_INET;
		else {
			ck_assert_int_eq(inet_pton(AF_INET6, cases[i].addr,
			    &sin6->sin6_addr), 1);
			sin6->sin6_family = AF_INET6;
		}
		ck_assert_msg(listenlist_is_loopback((struct sockaddr *)&ss) ==
		    cases[i].lo, "%s", cases[i].addr);
	}
}
END_TEST

/* The listenlist suite, run by check_main.c. */
Suite *
unit_suite(void)
{
	Suite	*s = suite_create("listenlist");
	TCase	*tc = tcase_create("build");

	tcase_add_test(tc, test_no_tokens_means_every_interface);
	tcase_add_test(tc, test_other_address_gets_both_implicit_loopbacks_first);
	tcase_add_test(tc,
	    test_given_ipv4_loopback_is_users_and_ipv6_loopback_implicit);
	tcase_add_test(tc,
	    test_given_ipv6_loopback_is_users_and_ipv4_loopback_implicit);
	tcase_add_test(tc, test_both_loopbacks_given_add_nothing_implicit);
	tcase_add_test(tc, test_loopback_named_twice_is_one_socket);
	tcase_add_test(tc,
	    test_debian_hostname_address_keeps_implicit_127_0_0_1);
	tcase_add_test(tc, test_ipv4_wildcard_drops_implicit_127_0_0_1);
	tcase_add_test(tc, test_ipv6_wildcard_drops_implicit_ipv6_loopback);
	tcase_add_test(tc, test_both_wildcards_add_nothing_implicit);
	tcase_add_test(tc, test_loopback_given_with_wildcard_is_covered);
	tcase_add_test(tc,
	    test_address_covered_by_wildcard_of_its_family_is_not_bound);
	tcase_add_test(tc, test_mapped_address_is_not_covered_by_ipv6_wildcard);
	tcase_add_test(tc, test_wildcard_named_twice_is_one_socket);
	tcase_add_test(tc, test_other_duplicates_are_kept_for_eaddrinuse);
	tcase_add_test(tc, test_given_addresses_keep_their_order);
	tcase_add_test(tc, test_bad_token_is_fatal_and_named);
	tcase_add_test(tc, test_13_extras_fit_and_14_do_not);
	tcase_add_test(tc, test_wildcards_count_toward_the_limit);
	tcase_add_test(tc, test_loopbacks_do_not_count_toward_the_limit);
	tcase_add_test(tc, test_loopback_test_covers_127_8_ipv6_and_mapped);
	suite_add_tcase(s, tc);
	return s;
}
