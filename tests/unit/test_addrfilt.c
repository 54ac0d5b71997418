/* Unit tests for addrfilt: address lists, prefixes and peer matching. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addrfilt.h"
#include "unit.h"

#define sa(text)	unit_sockaddr(text)

/* Parse list, which must be valid. */
static struct addrfilt
parse_ok(const char *list)
{
	struct addrfilt	 f;
	char		 err[ADDRFILT_ERRLEN] = "";

	ck_assert_msg(addrfilt_parse(&f, list, err, sizeof(err)),
	    "\"%s\" did not parse: %s", list, err);
	return f;
}

/* Parse list, which must fail; the message must contain want. */
static void
parse_bad(const char *list, const char *want)
{
	struct addrfilt	 f;
	char		 err[ADDRFILT_ERRLEN] = "";

	ck_assert_msg(!addrfilt_parse(&f, list, err, sizeof(err)),
	    "\"%s\" parsed", list);
	ck_assert_msg(strstr(err, want) != NULL, "error for \"%s\" is \"%s\", "
	    "wanted \"%s\" in it", list, err, want);
}

/* Does a non-local peer at addr match list? */
static bool
remote_matches(const char *list, const char *addr)
{
	struct addrfilt		 f = parse_ok(list);
	struct sockaddr_storage	 ss = sa(addr);

	return addrfilt_match(&f, (struct sockaddr *)&ss, false);
}

/* The list as addrfilt_format writes it back. */
static const char *
formatted(const char *list)
{
	static char	 buf[512];
	struct addrfilt	 f = parse_ok(list);

	return addrfilt_format(&f, buf, sizeof(buf));
}

START_TEST(test_single_ipv4_address_matches_only_itself)
{
	ck_assert(remote_matches("198.51.100.7", "198.51.100.7"));
	ck_assert(!remote_matches("198.51.100.7", "198.51.100.8"));
	ck_assert(!remote_matches("198.51.100.7", "198.51.100.6"));
}
END_TEST

START_TEST(test_single_ipv6_address_matches_only_itself)
{
	ck_assert(remote_matches("2001:db8::7", "2001:db8::7"));
	ck_assert(!remote_matches("2001:db8::7", "2001:db8::8"));
}
END_TEST

START_TEST(test_ipv4_prefix_boundaries_are_exact)
{
	/* 198.51.100.0/24: .0 and .255 in, the neighbours outside. */
	ck_assert(remote_matches("198.51.100.0/24", "198.51.100.0"));
	ck_assert(remote_matches("198.51.100.0/24", "198.51.100.255"));
	ck_assert(!remote_matches("198.51.100.0/24", "198.51.99.255"));
	ck_assert(!remote_matches("198.51.100.0/24", "198.51.101.0"));
	ck_assert(!remote_matches("198.51.100.0/24", "203.0.113.1"));
}
END_TEST

START_TEST(test_ipv4_prefix_not_on_byte_boundary)
{
	/* /27: 198.51.100.32 .. .63 */
	ck_assert(!remote_matches("198.51.100.32/27", "198.51.100.31"));
	ck_assert(remote_matches("198.51.100.32/27", "198.51.100.32"));
	ck_assert(remote_matches("198.51.100.32/27", "198.51.100.63"));
	ck_assert(!remote_matches("198.51.100.32/27", "198.51.100.64"));
	/* /1 splits the space in two. */
	ck_assert(remote_matches("128.0.0.0/1", "255.255.255.255"));
	ck_assert(!remote_matches("128.0.0.0/1", "127.255.255.255"));
}
END_TEST

START_TEST(test_ipv4_slash_32_is_one_address)
{
	ck_assert(remote_matches("203.0.113.9/32", "203.0.113.9"));
	ck_assert(!remote_matches("203.0.113.9/32", "203.0.113.8"));
	ck_assert_str_eq(formatted("203.0.113.9/32"), "203.0.113.9");
}
END_TEST

START_TEST(test_ipv4_slash_0_matches_every_ipv4_peer_only)
{
	ck_assert(remote_matches("0.0.0.0/0", "0.0.0.0"));
	ck_assert(remote_matches("0.0.0.0/0", "255.255.255.255"));
	ck_assert(remote_matches("0.0.0.0/0", "::ffff:203.0.113.1"));
	ck_assert(!remote_matches("0.0.0.0/0", "2001:db8::1"));
}
END_TEST

START_TEST(test_ipv6_prefix_boundaries_are_exact)
{
	ck_assert(remote_matches("2001:db8:1::/48", "2001:db8:1::"));
	ck_assert(remote_matches("2001:db8:1::/48",
	    "2001:db8:1:ffff:ffff:ffff:ffff:ffff"));
	ck_assert(!remote_matches("2001:db8:1::/48",
	    "2001:db8:0:ffff:ffff:ffff:ffff:ffff"));
	ck_assert(!remote_matches("2001:db8:1::/48", "2001:db8:2::"));
	/* fd00::/8 and a prefix that ends inside a byte (/10: fe80::/10). */
	ck_assert(remote_matches("fd00::/8", "fdff::1"));
	ck_assert(!remote_matches("fd00::/8", "fc00::1"));
	ck_assert(remote_matches("fe80::/10", "febf::1"));
	ck_assert(!remote_matches("fe80::/10", "fec0::1"));
}
END_TEST

START_TEST(test_ipv6_slash_128_is_one_address)
{
	ck_assert(remote_matches("2001:db8::1/128", "2001:db8::1"));
	ck_assert(!remote_matches("2001:db8::1/128", "2001:db8::"));
	ck_assert_str_eq(formatted("2001:db8::1/128"), "2001:db8::1");
}
END_TEST

START_TEST(test_ipv6_slash_0_matches_every_native_ipv6_peer_only)
{
	ck_assert(remote_matches("::/0", "2001:db8::1"));
	ck_assert(remote_matches("::/0", "::"));
	/* A mapped peer is an IPv4 peer. */
	ck_assert(!remote_matches("::/0", "::ffff:198.51.100.2"));
	ck_assert(!remote_matches("::/0", "198.51.100.2"));
}
END_TEST

START_TEST(test_mapped_peer_matches_ipv4_item)
{
	ck_assert(remote_matches("198.51.100.0/24", "::ffff:198.51.100.2"));
	ck_assert(remote_matches("198.51.100.2", "::ffff:198.51.100.2"));
	ck_assert(!remote_matches("198.51.100.0/24", "::ffff:203.0.113.2"));
}
END_TEST

START_TEST(test_mapped_item_is_the_ipv4_item)
{
	/* ::ffff:198.51.100.0/120 is 198.51.100.0/24. */
	ck_assert_str_eq(formatted("::ffff:198.51.100.0/120"),
	    "198.51.100.0/24");
	ck_assert_str_eq(formatted("::ffff:198.51.100.7"), "198.51.100.7");
	ck_assert_str_eq(formatted("::ffff:0:0/96"), "0.0.0.0/0");
	ck_assert(remote_matches("::ffff:198.51.100.0/120", "198.51.100.9"));
	ck_assert(remote_matches("::ffff:198.51.100.0/120",
	    "::ffff:198.51.100.9"));
	ck_assert(!remote_matches("::ffff:198.51.100.0/120", "203.0.113.9"));
}
END_TEST

START_TEST(test_mapped_item_shorter_than_96_stays_ipv6)
{
	/* ::/64 covers the mapped range as IPv6, but peers there are IPv4. */
	ck_assert_str_eq(formatted("::ffff:1.2.3.4/64"), "::/64");
	ck_assert(!remote_matches("::ffff:1.2.3.4/64", "1.2.3.4"));
}
END_TEST

START_TEST(test_host_bits_are_cleared)
{
	ck_assert_str_eq(formatted("198.51.100.77/24"), "198.51.100.0/24");
	ck_assert_str_eq(formatted("2001:db8::ffff/112"), "2001:db8::/112");
	ck_assert_str_eq(formatted("10.255.255.255/9"), "10.128.0.0/9");
	ck_assert(remote_matches("198.51.100.77/24", "198.51.100.1"));
}
END_TEST

START_TEST(test_any_matches_every_peer)
{
	struct addrfilt		 f = parse_ok("any");
	struct sockaddr_storage	 a = sa("203.0.113.1"), b = sa("2001:db8::1");

	ck_assert(addrfilt_match(&f, (struct sockaddr *)&a, false));
	ck_assert(addrfilt_match(&f, (struct sockaddr *)&b, false));
	ck_assert(addrfilt_match(&f, NULL, false));
	ck_assert(addrfilt_matches_all(&f));
}
END_TEST

START_TEST(test_none_matches_no_peer_not_even_local)
{
	struct addrfilt		 f = parse_ok("none");
	struct sockaddr_storage	 a = sa("127.0.0.1");

	ck_assert(!addrfilt_match(&f, (struct sockaddr *)&a, true));
	ck_assert(!addrfilt_match(&f, (struct sockaddr *)&a, false));
	ck_assert(!addrfilt_matches_all(&f));
	ck_assert(addrfilt_matches_none(&f));
	ck_assert(!addrfilt_matches_none((const struct addrfilt[]){
	    parse_ok("local") }));
	ck_assert(!addrfilt_matches_none((const struct addrfilt[]){
	    parse_ok("10.0.0.0/8") }));
}
END_TEST

START_TEST(test_local_matches_what_the_caller_says_is_local)
{
	struct addrfilt		 f = parse_ok("local");
	struct sockaddr_storage	 own = sa("198.51.100.1");

	/* The rule lives in peer.c; the filter takes its answer. */
	ck_assert(addrfilt_match(&f, (struct sockaddr *)&own, true));
	ck_assert(!addrfilt_match(&f, (struct sockaddr *)&own, false));
	ck_assert(!addrfilt_matches_all(&f));
}
END_TEST

START_TEST(test_list_matches_if_any_item_matches)
{
	const char *list = "198.51.100.0/24, 2001:db8::/32 local";

	ck_assert(remote_matches(list, "198.51.100.3"));
	ck_assert(remote_matches(list, "2001:db8:ffff::1"));
	ck_assert(!remote_matches(list, "203.0.113.3"));
	ck_assert(!remote_matches(list, "2001:db9::1"));
}
END_TEST

START_TEST(test_both_slash_0_prefixes_match_all)
{
	ck_assert(addrfilt_matches_all((const struct addrfilt[]){
	    parse_ok("0.0.0.0/0 ::/0") }));
	ck_assert(!addrfilt_matches_all((const struct addrfilt[]){
	    parse_ok("0.0.0.0/0") }));
	ck_assert(!addrfilt_matches_all((const struct addrfilt[]){
	    parse_ok("::/0, local") }));
}
END_TEST

START_TEST(test_commas_and_spaces_both_separate)
{
	ck_assert_str_eq(formatted("198.51.100.1,203.0.113.1"),
	    "198.51.100.1, 203.0.113.1");
	ck_assert_str_eq(formatted("198.51.100.1 203.0.113.1"),
	    "198.51.100.1, 203.0.113.1");
	ck_assert_str_eq(formatted("  198.51.100.1 ,\t203.0.113.1  local "),
	    "198.51.100.1, 203.0.113.1, local");
}
END_TEST

START_TEST(test_ipv4_prefix_33_is_refused)
{
	parse_bad("10.0.0.0/33", "bad item \"10.0.0.0/33\"");
	parse_bad("10.0.0.0/33", "0 to 32");
}
END_TEST

START_TEST(test_ipv6_prefix_129_is_refused)
{
	parse_bad("fd00::/129", "bad item \"fd00::/129\"");
	parse_bad("fd00::/129", "0 to 128");
}
END_TEST

START_TEST(test_short_ipv4_form_is_refused)
{
	parse_bad("1.2.3", "bad item \"1.2.3\"");
	parse_bad("127.1", "bad item \"127.1\"");
	parse_bad("10/8", "bad item \"10/8\"");
}
END_TEST

START_TEST(test_bad_prefix_lengths_are_refused)
{
	parse_bad("10.0.0.0/", "bad item \"10.0.0.0/\"");
	parse_bad("10.0.0.0/-1", "bad item");
	parse_bad("10.0.0.0/+8", "bad item");
	parse_bad("10.0.0.0/8/8", "bad item");
	parse_bad("10.0.0.0/ 8", "bad item \"10.0.0.0/\"");
	parse_bad("10.0.0.0/0008", "bad item");
	parse_bad("/8", "bad item \"/8\"");
}
END_TEST

START_TEST(test_empty_item_between_commas_is_refused)
{
	parse_bad("198.51.100.1,,203.0.113.1", "empty item after "
	    "\"198.51.100.1\"");
	parse_bad("198.51.100.1, ,203.0.113.1", "empty item");
}
END_TEST

START_TEST(test_leading_and_trailing_commas_are_refused)
{
	parse_bad(",198.51.100.1", "empty item at the start");
	parse_bad("198.51.100.1,", "empty item after \"198.51.100.1\"");
	parse_bad("198.51.100.1 , ", "empty item after");
}
END_TEST

START_TEST(test_empty_list_is_refused)
{
	parse_bad("", "empty list");
	parse_bad("   ", "empty list");
}
END_TEST

START_TEST(test_junk_is_refused_and_named)
{
	parse_bad("localhost", "bad item \"localhost\"");
	parse_bad("198.51.100.1 example.org", "bad item \"example.org\"");
	parse_bad("[::1]", "bad item \"[::1]\"");
	parse_bad("ANY", "bad item \"ANY\"");
	parse_bad("anyone", "bad item \"anyone\"");
	parse_bad("10.0.0.0;8", "bad item");
}
END_TEST

START_TEST(test_long_junk_is_quoted_in_part)
{
	char	 list[600];
	struct addrfilt f;
	char	 err[ADDRFILT_ERRLEN];

	memset(list, 'x', sizeof(list) - 1);
	list[sizeof(list) - 1] = '\0';
	ck_assert(!addrfilt_parse(&f, list, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "xxx...\""));
	ck_assert_uint_lt(strlen(err), sizeof(err) - 1);
}
END_TEST

START_TEST(test_none_with_other_items_is_refused)
{
	parse_bad("none,198.51.100.0/24", "none cannot be combined");
	parse_bad("local none", "none cannot be combined");
	parse_bad("none none", "none cannot be combined");
}
END_TEST

START_TEST(test_more_than_max_items_is_refused)
{
	char	 list[ADDRFILT_MAX_ITEMS * 16 + 32];
	size_t	 off = 0;
	int	 i;
	struct addrfilt f;

	for (i = 0; i < ADDRFILT_MAX_ITEMS; i++)
		off += (size_t)snprintf(list + off, sizeof(list) - off,
		    "10.0.%d.0/24 ", i);
	f = parse_ok(list);
	ck_assert_uint_eq(f.n, ADDRFILT_MAX_ITEMS);
	snprintf(list + off, sizeof(list) - off, "10.1.0.0/16");
	parse_bad(list, "too many items");
}
END_TEST

START_TEST(test_set_makes_a_one_item_list)
{
	struct addrfilt f;
	char	 buf[32];

	addrfilt_set(&f, ADDRFILT_NONE);
	ck_assert_str_eq(addrfilt_format(&f, buf, sizeof(buf)), "none");
	addrfilt_set(&f, ADDRFILT_ANY);
	ck_assert_str_eq(addrfilt_format(&f, buf, sizeof(buf)), "any");
}
END_TEST

START_TEST(test_format_is_cut_to_the_buffer)
{
	struct addrfilt	 f = parse_ok("198.51.100.0/24 203.0.113.0/24");
	char		 buf[10];

	addrfilt_format(&f, buf, sizeof(buf));
	ck_assert_str_eq(buf, "198.51.10");
}
END_TEST

START_TEST(test_normalised_address_of_mapped_sockaddr_is_ipv4)
{
	struct sockaddr_storage	 m = sa("::ffff:198.51.100.2");
	struct sockaddr_storage	 v4 = sa("198.51.100.2");
	struct addrfilt_addr	 a, b;

	ck_assert(addrfilt_addr_from_sockaddr(&a, (struct sockaddr *)&m));
	ck_assert(addrfilt_addr_from_sockaddr(&b, (struct sockaddr *)&v4));
	ck_assert_int_eq(a.family, AF_INET);
	ck_assert(addrfilt_addr_equal(&a, &b));
}
END_TEST

START_TEST(test_other_families_do_not_normalise)
{
	struct sockaddr		 un;
	struct addrfilt_addr	 a;
	struct addrfilt		 f = parse_ok("0.0.0.0/0 ::/0");

	memset(&un, 0, sizeof(un));
	un.sa_family = AF_UNIX;
	ck_assert(!addrfilt_addr_from_sockaddr(&a, &un));
	ck_assert(!addrfilt_match(&f, &un, false));
}
END_TEST

START_TEST(test_mask_and_prefix_helpers_agree)
{
	struct sockaddr_storage	 ss = sa("2001:db8:abcd:1234::1");
	struct addrfilt_addr	 a, net;
	unsigned		 p;

	ck_assert(addrfilt_addr_from_sockaddr(&a, (struct sockaddr *)&ss));
	for (p = 0; p <= 128; p++) {
		net = a;
		addrfilt_addr_mask(&net, p);
		ck_assert(addrfilt_addr_in_prefix(&a, &net, p));
	}
	ck_assert(!addrfilt_addr_in_prefix(&a, &net, 129));
}
END_TEST

/* The addrfilt suite, run by check_main.c. */
Suite *
unit_suite(void)
{
	Suite	*s = suite_create("addrfilt");
	TCase	*tc;

	tc = tcase_create("match");
	tcase_add_test(tc, test_single_ipv4_address_matches_only_itself);
	tcase_add_test(tc, test_single_ipv6_address_matches_only_itself);
	tcase_add_test(tc, test_ipv4_prefix_boundaries_are_exact);
	tcase_add_test(tc, test_ipv4_prefix_not_on_byte_boundary);
	tcase_add_test(tc, test_ipv4_slash_32_is_one_address);
	tcase_add_test(tc, test_ipv4_slash_0_matches_every_ipv4_peer_only);
	tcase_add_test(tc, test_ipv6_prefix_boundaries_are_exact);
	tcase_add_test(tc, test_ipv6_slash_128_is_one_address);
	tcase_add_test(tc,
	    test_ipv6_slash_0_matches_every_native_ipv6_peer_only);
	tcase_add_test(tc, test_mapped_peer_matches_ipv4_item);
	tcase_add_test(tc, test_mapped_item_is_the_ipv4_item);
	tcase_add_test(tc, test_mapped_item_shorter_than_96_stays_ipv6);
	tcase_add_test(tc, test_host_bits_are_cleared);
	tcase_add_test(tc, test_any_matches_every_peer);
	tcase_add_test(tc, test_none_matches_no_peer_not_even_local);
	tcase_add_test(tc, test_local_matches_what_the_caller_says_is_local);
	tcase_add_test(tc, test_list_matches_if_any_item_matches);
	tcase_add_test(tc, test_both_slash_0_prefixes_match_all);
	suite_add_tcase(s, tc);

	tc = tcase_create("parse");
	tcase_add_test(tc, test_commas_and_spaces_both_separate);
	tcase_add_test(tc, test_ipv4_prefix_33_is_refused);
	tcase_add_test(tc, test_ipv6_prefix_129_is_refused);
	tcase_add_test(tc, test_short_ipv4_form_is_refused);
	tcase_add_test(tc, test_bad_prefix_lengths_are_refused);
	tcase_add_test(tc, test_empty_item_between_commas_is_refused);
	tcase_add_test(tc, test_leading_and_trailing_commas_are_refused);
	tcase_add_test(tc, test_empty_list_is_refused);
	tcase_add_test(tc, test_junk_is_refused_and_named);
	tcase_add_test(tc, test_long_junk_is_quoted_in_part);
	tcase_add_test(tc, test_none_with_other_items_is_refused);
	tcase_add_test(tc, test_more_than_max_items_is_refused);
	tcase_add_test(tc, test_set_makes_a_one_item_list);
	tcase_add_test(tc, test_format_is_cut_to_the_buffer);
	suite_add_tcase(s, tc);

	tc = tcase_create("addr");
	tcase_add_test(tc, test_normalised_address_of_mapped_sockaddr_is_ipv4);
	tcase_add_test(tc, test_other_families_do_not_normalise);
	tcase_add_test(tc, test_mask_and_prefix_helpers_agree);
	suite_add_tcase(s, tc);

	return s;
}
