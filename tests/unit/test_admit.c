/* Unit tests for admit: the caps on non-local connections and their report. */
#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "admit.h"
#include "unit.h"

#define addr(text)	unit_sockaddr(text)
#define SA(x)	((struct sockaddr *)&(x))

/* Limits for most tests: 2 per address, 3 per prefix, 5 in all. */
static const struct admit_limits small = {
	.per_addr = 2, .per_prefix = 3, .remote = 5, .prefix4 = 24,
	.prefix6 = 64,
};

START_TEST(test_one_address_stops_at_its_cap)
{
	struct admit a;
	struct sockaddr_storage p = addr("198.51.100.7");

	ck_assert(admit_init(&a, &small));
	ck_assert_int_eq(admit_take(&a, SA(p)), ADMIT_OK);
	ck_assert_int_eq(admit_take(&a, SA(p)), ADMIT_OK);
	ck_assert_int_eq(admit_take(&a, SA(p)), ADMIT_PEER_CAP);
	ck_assert_uint_eq(a.nremote, 2);
	ck_assert_uint_eq(a.pending.refused[ADMIT_PEER_CAP], 1);
	admit_free(&a);
}
END_TEST

START_TEST(test_many_addresses_of_one_64_share_its_cap)
{
	struct admit a;
	struct sockaddr_storage p1 = addr("2001:db8:1:1::1");
	struct sockaddr_storage p2 = addr("2001:db8:1:1::2");
	struct sockaddr_storage p3 = addr("2001:db8:1:1:8000::3");
	struct sockaddr_storage other = addr("2001:db8:1:2::1");

	ck_assert(admit_init(&a, &small));
	ck_assert_int_eq(admit_take(&a, SA(p1)), ADMIT_OK);
	ck_assert_int_eq(admit_take(&a, SA(p2)), ADMIT_OK);
	ck_assert_int_eq(admit_take(&a, SA(p3)), ADMIT_OK);
	ck_assert_int_eq(admit_take(&a, SA(p3)), ADMIT_PREFIX_CAP);
	ck_assert_int_eq(admit_take(&a, SA(other)), ADMIT_OK);
	admit_free(&a);
}
END_TEST

START_TEST(test_all_peers_together_stop_at_the_remote_cap)
{
	struct admit a;
	char text[32];
	int i;

	ck_assert(admit_init(&a, &small));
	for (i = 0; i < 5; i++) {
		struct sockaddr_storage p;

		snprintf(text, sizeof(text), "203.0.%d.1", i);
		p = addr(text);
		ck_assert_int_eq(admit_take(&a, SA(p)), ADMIT_OK);
	}
	{
		struct sockaddr_storage p = addr("198.51.100.1");

		ck_assert(admit_remote_full(&a));
		ck_assert_int_eq(admit_take(&a, SA(p)), ADMIT_REMOTE_CAP);
		/* One ends: there is room again. */
		admit_release(&a, SA(p));
		ck_assert(!admit_remote_full(&a));
		ck_assert_int_eq(admit_take(&a, SA(p)), ADMIT_OK);
	}
	admit_free(&a);
}
END_TEST

START_TEST(test_a_release_gives_the_slot_back)
{
	struct admit a;
	struct sockaddr_storage p = addr("198.51.100.9");

	ck_assert(admit_init(&a, &small));
	admit_take(&a, SA(p));
	admit_take(&a, SA(p));
	admit_release(&a, SA(p));
	ck_assert_int_eq(admit_take(&a, SA(p)), ADMIT_OK);
	ck_assert_uint_eq(a.nremote, 2);
	admit_free(&a);
}
END_TEST

START_TEST(test_zero_limits_cap_nothing)
{
	struct admit_limits none = { .prefix4 = 24, .prefix6 = 64 };
	struct admit a;
	struct sockaddr_storage p = addr("198.51.100.3");
	int i;

	ck_assert(admit_init(&a, &none));
	for (i = 0; i < 1000; i++)
		ck_assert_int_eq(admit_take(&a, SA(p)), ADMIT_OK);
	ck_assert(!admit_remote_full(&a));
	admit_free(&a);
}
END_TEST

START_TEST(test_report_names_the_busiest_prefix_and_the_refusals)
{
	struct admit a;
	struct sockaddr_storage p = addr("2001:db8:7:7::1");
	struct sockaddr_storage q = addr("198.51.100.20");
	char line[512];

	ck_assert(admit_init(&a, &small));
	admit_take(&a, SA(p));
	admit_take(&a, SA(p));
	admit_take(&a, SA(p));	/* refused: per address */
	admit_take(&a, SA(q));
	admit_note_shed(&a, 4);
	admit_note_deadline(&a);
	admit_format_report(&a, &a.pending, line, sizeof(line));
	ck_assert_str_eq(line, "non-local peers hold 3 unregistered "
	    "connections; since the last report: 1 refused over "
	    "-max_conns_per_peer, 4 closed to make room, 1 closed at "
	    "-request_deadline; most: 2001:db8:7:7::/64 holds 2, "
	    "198.51.100.0/24 holds 1");
	admit_free(&a);
}
END_TEST

START_TEST(test_report_fits_a_short_buffer)
{
	struct admit a;
	char line[16];

	ck_assert(admit_init(&a, &small));
	admit_note_shed(&a, 1);
	admit_format_report(&a, &a.pending, line, sizeof(line));
	ck_assert_uint_eq(strlen(line), sizeof(line) - 1);
	admit_free(&a);
}
END_TEST

/* The admit suite, run by check_main.c. */
Suite *
unit_suite(void)
{
	Suite	*s = suite_create("admit");
	TCase	*tc = tcase_create("caps");

	tcase_add_test(tc, test_one_address_stops_at_its_cap);
	tcase_add_test(tc, test_many_addresses_of_one_64_share_its_cap);
	tcase_add_test(tc, test_all_peers_together_stop_at_the_remote_cap);
	tcase_add_test(tc, test_a_release_gives_the_slot_back);
	tcase_add_test(tc, test_zero_limits_cap_nothing);
	tcase_add_test(tc, test_report_names_the_busiest_prefix_and_the_refusals);
	tcase_add_test(tc, test_report_fits_a_short_buffer);
	suite_add_tcase(s, tc);
	return s;
}
