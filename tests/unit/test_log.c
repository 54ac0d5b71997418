/* Unit tests for log: journal fields, escaping, verbosity. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <syslog.h>
#include <time.h>

#include "introspect.h"
#include "log.h"
#include "unit.h"

#define MAX_FIELDS	16

static char	fields[MAX_FIELDS][4096];
static int	nfields;
static int	nmessages;

/* A journal writer that records the fields of the last message. */
static int
record_journal(const struct iovec *iov, int n)
{
	int i;

	nmessages++;
	nfields = n < MAX_FIELDS ? n : MAX_FIELDS;
	for (i = 0; i < nfields; i++) {
		size_t len = iov[i].iov_len < 4095 ? iov[i].iov_len : 4095;

		memcpy(fields[i], iov[i].iov_base, len);
		fields[i][len] = '\0';
	}
	return 0;
}

/* Was "KEY=value" among the recorded fields? */
static int
has_field(const char *kv)
{
	int i;

	for (i = 0; i < nfields; i++)
		if (strcmp(fields[i], kv) == 0)
			return 1;
	return 0;
}

/* Does any recorded field start with KEY=? */
static int
has_key(const char *key)
{
	size_t	len = strlen(key);
	int	i;

	for (i = 0; i < nfields; i++)
		if (strncmp(fields[i], key, len) == 0 && fields[i][len] == '=')
			return 1;
	return 0;
}

/* Route the log to the recording journal. */
static void
setup_journal(void)
{
	nfields = nmessages = 0;
	log_set_journal_writer(record_journal);
	log_init(LOG_TO_JOURNAL, 0);
}

/* Back to the real writer and stderr. */
static void
teardown_journal(void)
{
	log_set_journal_writer(NULL);
	log_init(LOG_TO_STDERR, 0);
}

START_TEST(test_journal_registration_has_node_port_and_peer_fields)
{
	struct log_fields f = { .node = "foo", .port = 5001,
	    .peer = "127.0.0.1:40000" };

	log_fields(LOG_INFO, &f, "registered %s", "foo");
	ck_assert_int_eq(nmessages, 1);
	ck_assert(has_field("MESSAGE=registered foo"));
	ck_assert(has_field("PRIORITY=6"));
	ck_assert(has_field("SYSLOG_IDENTIFIER=epmd-c"));
	ck_assert(has_field("EPMD_NODE=foo"));
	ck_assert(has_field("EPMD_PORT=5001"));
	ck_assert(has_field("EPMD_PEER=127.0.0.1:40000"));
}
END_TEST

START_TEST(test_journal_warning_priority_and_no_empty_fields)
{
	struct log_fields f = { .peer = "[2001:db8::1]:5" };

	log_fields(LOG_WARNING, &f, "ALIVE2 refused");
	ck_assert(has_field("PRIORITY=4"));
	ck_assert(has_field("EPMD_PEER=[2001:db8::1]:5"));
	ck_assert(!has_key("EPMD_NODE"));
	ck_assert(!has_key("EPMD_PORT"));
}
END_TEST

START_TEST(test_journal_warn_appends_strerror)
{
	errno = ENOENT;
	log_warn("open %s", "x");
	ck_assert(has_field("MESSAGE=open x: No such file or directory"));
	ck_assert(has_field("PRIORITY=4"));
}
END_TEST

START_TEST(test_debug_needs_a_d_flag)
{
	log_debug("hidden");
	ck_assert_int_eq(nmessages, 0);
	log_init(LOG_TO_JOURNAL, 1);
	log_debug("shown");
	ck_assert_int_eq(nmessages, 1);
	ck_assert(has_field("PRIORITY=7"));
	ck_assert(has_field("MESSAGE=shown"));
}
END_TEST

START_TEST(test_info_is_always_logged)
{
	log_info("listening on %s", "127.0.0.1:4369");
	ck_assert_int_eq(nmessages, 1);
	ck_assert(has_field("MESSAGE=listening on 127.0.0.1:4369"));
}
END_TEST

START_TEST(test_escape_control_and_non_ascii_bytes)
{
	char buf[LOG_ESCAPED_SIZE(8)];

	ck_assert_str_eq(log_escape("a\nb\\\xff", 5, buf, sizeof(buf)),
	    "a\\x0ab\\x5c\\xff");
	ck_assert_str_eq(log_escape("", 0, buf, sizeof(buf)), "");
}
END_TEST

START_TEST(test_escape_truncates_within_buffer)
{
	char buf[6];

	ck_assert_str_eq(log_escape("abcdefgh", 8, buf, sizeof(buf)), "abcde");
	ck_assert_str_eq(log_escape("a\x01", 2, buf, sizeof(buf)), "a\\x01");
	ck_assert_str_eq(log_escape("ab\x01", 3, buf, sizeof(buf)), "ab");
}
END_TEST

START_TEST(test_flood_limit_allows_ten_a_second_then_reports)
{
	int allowed = 0, i;
	time_t start = time(NULL);

	/* Start at a fresh second so all calls fall into one window. */
	while (time(NULL) == start)
		;
	for (i = 0; i < 50; i++)
		allowed += log_flood_allowed();
	ck_assert_int_eq(allowed, 10);
	start = time(NULL);
	while (time(NULL) == start)
		;
	nmessages = 0;
	ck_assert(log_flood_allowed());
	ck_assert_int_eq(nmessages, 1);
	ck_assert(has_field("MESSAGE=40 similar messages not logged"));
}
END_TEST

START_TEST(test_flood_line_carries_fields_and_is_formatted_once)
{
	struct log_fields f = { .node = "n1", .port = 5001, .peer = "[::1]:9" };
	time_t start = time(NULL);
	int i;

	while (time(NULL) == start)
		;
	nmessages = 0;
	for (i = 0; i < 20; i++)
		log_flood(LOG_WARNING, &f, "refused %s #%d", f.node, i);
	ck_assert_int_eq(nmessages, 10);
	ck_assert(has_field("MESSAGE=refused n1 #9"));
	ck_assert(has_field("EPMD_NODE=n1"));
	ck_assert(has_field("EPMD_PEER=[::1]:9"));
}
END_TEST

START_TEST(test_warn_appends_strerror_in_the_same_line)
{
	errno = ENOENT;
	log_warn("open %s", "x");
	ck_assert(has_field("MESSAGE=open x: No such file or directory"));
}
END_TEST

/* The log suite, run by check_main.c. */
Suite *
unit_suite(void)
{
	Suite	*s = suite_create("log");
	TCase	*tc = tcase_create("journal");
	TCase	*te = tcase_create("escape");

	tcase_add_checked_fixture(tc, setup_journal, teardown_journal);
	tcase_add_test(tc, test_journal_registration_has_node_port_and_peer_fields);
	tcase_add_test(tc, test_journal_warning_priority_and_no_empty_fields);
	tcase_add_test(tc, test_journal_warn_appends_strerror);
	tcase_add_test(tc, test_debug_needs_a_d_flag);
	tcase_add_test(tc, test_info_is_always_logged);
	tcase_add_test(tc, test_flood_limit_allows_ten_a_second_then_reports);
	tcase_add_test(tc, test_flood_line_carries_fields_and_is_formatted_once);
	tcase_add_test(tc, test_warn_appends_strerror_in_the_same_line);
	tcase_set_timeout(tc, 10);
	tcase_add_test(te, test_escape_control_and_non_ascii_bytes);
	tcase_add_test(te, test_escape_truncates_within_buffer);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, te);
	return s;
}
