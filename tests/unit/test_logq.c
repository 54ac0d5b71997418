/* Unit tests for logq: bounded, drops counted, order kept, drop notice. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "logq.h"
#include "unit.h"

static struct logq q;

/* A fresh queue for each test. */
static void
setup(void)
{
	logq_init(&q);
}

/* Free what a test left queued. */
static void
teardown(void)
{
	logq_clear(&q);
}

/* Push a NUL-terminated string as one record. */
static bool
push_str(const char *s)
{
	return logq_push(&q, s, strlen(s));
}

/* The head record as a string (its unwritten part). */
static const char *
head_str(void)
{
	static char	buf[256];
	const char	*p;
	size_t		 len;

	if ((p = logq_head(&q, &len)) == NULL)
		return NULL;
	if (len >= sizeof(buf))
		len = sizeof(buf) - 1;
	memcpy(buf, p, len);
	buf[len] = '\0';
	return buf;
}

START_TEST(test_records_come_out_in_the_order_they_went_in)
{
	char	want[16];
	int	i;

	for (i = 0; i < 10; i++) {
		snprintf(want, sizeof(want), "m%d", i);
		ck_assert(push_str(want));
	}
	for (i = 0; i < 10; i++) {
		snprintf(want, sizeof(want), "m%d", i);
		ck_assert_str_eq(head_str(), want);
		logq_consume(&q, strlen(want));
	}
	ck_assert(logq_empty(&q));
	ck_assert_ptr_null(head_str());
}
END_TEST

START_TEST(test_order_survives_wrapping_around_the_ring)
{
	char	want[16];
	int	i, next = 0;

	/* Keep the ring half full while 3 laps go by. */
	for (i = 0; i < LOGQ_MAX_RECORDS * 3; i++) {
		snprintf(want, sizeof(want), "r%d", i);
		ck_assert(push_str(want));
		if (logq_count(&q) > LOGQ_MAX_RECORDS / 2) {
			snprintf(want, sizeof(want), "r%d", next++);
			ck_assert_str_eq(head_str(), want);
			logq_consume(&q, strlen(want));
		}
	}
	ck_assert_uint_eq(logq_dropped_total(&q), 0);
}
END_TEST

START_TEST(test_at_most_max_records_are_held_and_the_rest_counted)
{
	int i, kept = 0;

	for (i = 0; i < LOGQ_MAX_RECORDS + 44; i++)
		kept += push_str("x");
	ck_assert_int_eq(kept, LOGQ_MAX_RECORDS);
	ck_assert_uint_eq(logq_count(&q), LOGQ_MAX_RECORDS);
	ck_assert_uint_eq(logq_dropped_total(&q), 44);
}
END_TEST

START_TEST(test_at_most_max_bytes_are_held)
{
	static char	big[LOGQ_MAX_BYTES / 4];
	int		i, kept = 0;

	memset(big, 'b', sizeof(big));
	for (i = 0; i < 6; i++)
		kept += logq_push(&q, big, sizeof(big));
	ck_assert_int_eq(kept, 4);
	ck_assert_uint_eq(logq_dropped_total(&q), 2);
	/* A small record still fits by count but not by bytes. */
	ck_assert(!push_str("y"));
	ck_assert_uint_eq(logq_dropped_total(&q), 3);
}
END_TEST

START_TEST(test_a_record_larger_than_the_queue_is_dropped)
{
	static char huge[LOGQ_MAX_BYTES + 1];

	ck_assert(!logq_push(&q, huge, sizeof(huge)));
	ck_assert(logq_empty(&q));
	ck_assert_uint_eq(logq_dropped_total(&q), 1);
}
END_TEST

START_TEST(test_a_partly_written_head_stays_until_all_of_it_is_written)
{
	size_t len;

	ck_assert(push_str("hello\n"));
	ck_assert(push_str("next\n"));
	logq_consume(&q, 2);
	ck_assert_str_eq(head_str(), "llo\n");
	logq_head(&q, &len);
	ck_assert_uint_eq(len, 4);
	logq_consume(&q, 4);
	ck_assert_str_eq(head_str(), "next\n");
	ck_assert_uint_eq(logq_count(&q), 1);
}
END_TEST

START_TEST(test_room_freed_by_writing_is_reused)
{
	int i;

	for (i = 0; i < LOGQ_MAX_RECORDS; i++)
		ck_assert(push_str("z"));
	ck_assert(!push_str("z"));
	logq_consume(&q, 1);
	ck_assert(push_str("z"));
	ck_assert_uint_eq(logq_dropped_total(&q), 1);
}
END_TEST

START_TEST(test_no_notice_without_drops)
{
	ck_assert(push_str("a"));
	ck_assert_uint_eq(logq_take_notice(&q, 64), 0);
}
END_TEST

START_TEST(test_notice_waits_for_room_then_reports_every_drop_once)
{
	int i;

	for (i = 0; i < LOGQ_MAX_RECORDS + 7; i++)
		push_str("x");
	/* Full: no room for the notice yet, and the count keeps. */
	ck_assert_uint_eq(logq_take_notice(&q, 64), 0);
	logq_consume(&q, 1);
	ck_assert_uint_eq(logq_take_notice(&q, 64), 7);
	/* Handed out once. */
	ck_assert_uint_eq(logq_take_notice(&q, 64), 0);
	/* The total keeps counting for the metric. */
	ck_assert_uint_eq(logq_dropped_total(&q), 7);
}
END_TEST

START_TEST(test_drops_after_a_notice_start_a_new_count)
{
	int i;

	for (i = 0; i < LOGQ_MAX_RECORDS + 3; i++)
		push_str("x");
	logq_consume(&q, 1);
	ck_assert_uint_eq(logq_take_notice(&q, 8), 3);
	ck_assert(push_str("notice"));
	ck_assert(!push_str("lost"));
	logq_consume(&q, 1);
	ck_assert_uint_eq(logq_take_notice(&q, 8), 1);
	ck_assert_uint_eq(logq_dropped_total(&q), 4);
}
END_TEST

START_TEST(test_a_refused_head_and_a_sink_gone_are_counted_as_drops)
{
	ck_assert(push_str("a"));
	ck_assert(push_str("b"));
	logq_drop_head(&q);
	ck_assert_str_eq(head_str(), "b");
	logq_drop(&q);
	ck_assert_uint_eq(logq_dropped_total(&q), 2);
	ck_assert_uint_eq(logq_take_notice(&q, 8), 2);
}
END_TEST

START_TEST(test_clear_empties_without_counting)
{
	push_str("a");
	push_str("b");
	logq_clear(&q);
	ck_assert(logq_empty(&q));
	ck_assert_uint_eq(logq_dropped_total(&q), 0);
	ck_assert(push_str("c"));
	ck_assert_str_eq(head_str(), "c");
}
END_TEST

/* The logq suite, run by check_main.c. */
Suite *
unit_suite(void)
{
	Suite	*s = suite_create("logq");
	TCase	*tc = tcase_create("queue");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_records_come_out_in_the_order_they_went_in);
	tcase_add_test(tc, test_order_survives_wrapping_around_the_ring);
	tcase_add_test(tc, test_at_most_max_records_are_held_and_the_rest_counted);
	tcase_add_test(tc, test_at_most_max_bytes_are_held);
	tcase_add_test(tc, test_a_record_larger_than_the_queue_is_dropped);
	tcase_add_test(tc, test_a_partly_written_head_stays_until_all_of_it_is_written);
	tcase_add_test(tc, test_room_freed_by_writing_is_reused);
	tcase_add_test(tc, test_no_notice_without_drops);
	tcase_add_test(tc, test_notice_waits_for_room_then_reports_every_drop_once);
	tcase_add_test(tc, test_drops_after_a_notice_start_a_new_count);
	tcase_add_test(tc, test_a_refused_head_and_a_sink_gone_are_counted_as_drops);
	tcase_add_test(tc, test_clear_empties_without_counting);
	suite_add_tcase(s, tc);
	return s;
}
