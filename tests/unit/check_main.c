/*
 * The one main of every unit test binary.
 *
 * The Makefile's unit rule links each tests/unit/test_<module>.c with this
 * file into $(BUILD)/test_<module>. A test file therefore defines no main;
 * it includes "unit.h" and defines exactly one exported function,
 *
 *	Suite *
 *	unit_suite(void)
 *	{
 *		Suite	*s = suite_create("<module>");
 *		TCase	*tc = tcase_create("<case>");
 *
 *		tcase_add_test(tc, test_something);
 *		suite_add_tcase(s, tc);
 *		return s;
 *	}
 *
 * with everything else in the file static. main runs that suite with
 * CK_NORMAL output, whose summary line ("100%: Checks: N, Failures: 0,
 * Errors: 0") tests/run counts, and exits non-zero if any test failed.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

/* A socket address for text (IPv4 or IPv6), port 4369; fails the test if bad. */
struct sockaddr_storage
unit_sockaddr(const char *text)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(4369);
	} else {
		ck_assert_msg(inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1,
		    "bad test address %s", text);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(4369);
	}
	return ss;
}

/* Run this binary's suite; exit status is non-zero if any test failed. */
int
main(void)
{
	SRunner	*sr = srunner_create(unit_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
