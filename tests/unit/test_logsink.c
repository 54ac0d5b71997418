/*
 * Unit tests for the non-blocking log sinks: the bytes each renders, and
 * the log routed to real sockets and pipes that stop reading.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "introspect.h"
#include "log.h"
#include "logq.h"
#include "logsink.h"
#include "unit.h"

static char	sock_path[108];
static int	receiver = -1;

/* The monotonic clock in seconds. */
static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Bind a datagram socket at sock_path that the test reads (or does not). */
static int
bind_receiver(void)
{
	struct sockaddr_un	sun;
	int			fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, sock_path, strlen(sock_path) + 1);
	unlink(sock_path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

/* One datagram waiting at the receiver, NUL-terminated; its length or -1. */
static ssize_t
receive(char *buf, size_t size)
{
	ssize_t n = recv(receiver, buf, size - 1, MSG_DONTWAIT);

	if (n >= 0)
		buf[n] = '\0';
	return n;
}

/* A fresh socket path and receiver for each test. */
static void
setup(void)
{
	snprintf(sock_path, sizeof(sock_path), "/tmp/logsink-%ld.sock",
	    (long)getpid());
	receiver = bind_receiver();
}

/* Close the receiver first, so that the log's last flush fails fast. */
static void
teardown(void)
{
	close(receiver);
	unlink(sock_path);
	log_init(LOG_TO_STDERR, 0);
	log_set_socket_path(LOG_TO_SYSLOG, NULL);
	log_set_socket_path(LOG_TO_JOURNAL, NULL);
}

/* Log to syslog at sock_path. */
static void
to_syslog(void)
{
	log_set_socket_path(LOG_TO_SYSLOG, sock_path);
	log_init(LOG_TO_SYSLOG, 0);
}

START_TEST(test_stderr_line_is_ident_colon_message_newline)
{
	char buf[64];

	ck_assert_uint_eq(logsink_render_stderr(buf, sizeof(buf), "epmd-c",
	    "hello"), 14);
	ck_assert_str_eq(buf, "epmd-c: hello\n");
	ck_assert_uint_eq(logsink_render_stderr(buf, 8, "epmd-c", "hello"), 0);
}
END_TEST

START_TEST(test_syslog_line_is_rfc3164_as_glibc_sends_it)
{
	struct tm	tm = { .tm_year = 124, .tm_mon = 0, .tm_mday = 5,
	    .tm_hour = 3, .tm_min = 4, .tm_sec = 5, .tm_isdst = -1 };
	char		buf[128];
	time_t		t;

	t = mktime(&tm);
	logsink_render_syslog(buf, sizeof(buf), LOG_INFO, t, "epmd-c", 42,
	    "registered a");
	ck_assert_str_eq(buf, "<30>Jan  5 03:04:05 epmd-c[42]: registered a");
	tm.tm_mon = 11;
	tm.tm_mday = 25;
	t = mktime(&tm);
	logsink_render_syslog(buf, sizeof(buf), LOG_WARNING, t, "epmd-c", 7,
	    "w");
	ck_assert_str_eq(buf, "<28>Dec 25 03:04:05 epmd-c[7]: w");
}
END_TEST

START_TEST(test_journal_datagram_is_key_value_lines_binary_for_newlines)
{
	static const char want[] = "MESSAGE=hi\nPRIORITY=6\n"
	    "EPMD_NODE\n\x03\0\0\0\0\0\0\0a\nb\n";
	struct iovec	iov[3];
	char		buf[128];
	size_t		len;

	iov[0].iov_base = (void *)(uintptr_t)"MESSAGE=hi";
	iov[0].iov_len = 10;
	iov[1].iov_base = (void *)(uintptr_t)"PRIORITY=6";
	iov[1].iov_len = 10;
	iov[2].iov_base = (void *)(uintptr_t)"EPMD_NODE=a\nb";
	iov[2].iov_len = 13;
	len = logsink_render_journal(buf, sizeof(buf), iov, 3);
	ck_assert_uint_eq(len, sizeof(want) - 1);
	ck_assert(memcmp(buf, want, len) == 0);
	ck_assert_uint_eq(logsink_render_journal(buf, 20, iov, 3), 0);
}
END_TEST

START_TEST(test_syslog_message_reaches_dev_log_with_facility_daemon)
{
	char	buf[512], tail[64];
	ssize_t	n;

	to_syslog();
	log_info("registered %s", "foo");
	ck_assert_int_gt((n = receive(buf, sizeof(buf))), 0);
	snprintf(tail, sizeof(tail), " epmd-c[%ld]: registered foo",
	    (long)getpid());
	ck_assert(strncmp(buf, "<30>", 4) == 0);
	ck_assert_str_eq(buf + n - strlen(tail), tail);
}
END_TEST

/*
 * The key property: a receiver that stops reading never holds up the
 * caller. Whatever was not dropped arrives in order once it reads again,
 * driven by the loop, followed by the count of the rest.
 */
START_TEST(test_stalled_syslog_never_blocks_and_drops_are_reported)
{
	struct event_base	*base = event_base_new();
	char			 buf[512], *p;
	double			 t0;
	int			 i, got = 0, last = -1, total = 2000;
	unsigned long long	 dropped = 0;

	ck_assert_ptr_nonnull(base);
	to_syslog();
	log_attach(base);
	t0 = now();
	for (i = 0; i < total; i++)
		log_info("message %d", i);
	ck_assert(now() - t0 < 1.0);
	ck_assert_uint_gt(log_dropped_total(), 0);
	/* Read again; the loop drains the queue as room appears. */
	t0 = now();
	while (now() - t0 < 5.0 && dropped == 0) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		while (receive(buf, sizeof(buf)) > 0) {
			if ((p = strstr(buf, "]: message ")) != NULL) {
				i = atoi(p + 11);
				ck_assert_int_gt(i, last);	/* order kept */
				last = i;
				got++;
			} else if ((p = strstr(buf, "log: dropped ")) != NULL)
				dropped = strtoull(p + 13, NULL, 10);
		}
	}
	ck_assert_uint_gt(dropped, 0);
	/* Every message is either delivered or counted. */
	ck_assert_uint_eq((unsigned long long)got + dropped,
	    (unsigned long long)total);
	ck_assert_uint_eq(log_dropped_total(), dropped);
	log_attach(NULL);
	event_base_free(base);
}
END_TEST

START_TEST(test_syslog_reconnects_when_the_receiver_restarts)
{
	char buf[512];

	to_syslog();
	log_info("before");
	ck_assert_int_gt(receive(buf, sizeof(buf)), 0);
	close(receiver);
	receiver = bind_receiver();
	log_info("after restart");
	ck_assert_int_gt(receive(buf, sizeof(buf)), 0);
	ck_assert(strstr(buf, "]: after restart") != NULL);
}
END_TEST

START_TEST(test_syslog_gone_counts_drops_and_reports_on_return)
{
	char	buf[512];
	double	t0;

	close(receiver);
	unlink(sock_path);
	to_syslog();
	t0 = now();
	log_info("lost 1");
	log_info("lost 2");
	ck_assert(now() - t0 < 0.5);
	ck_assert_uint_eq(log_dropped_total(), 2);
	receiver = bind_receiver();
	sleep(1);	/* a failed connect is retried after a second */
	usleep(100000);
	log_info("back");
	ck_assert_int_gt(receive(buf, sizeof(buf)), 0);
	ck_assert(strstr(buf, "]: log: dropped 2 messages") != NULL);
	ck_assert_int_gt(receive(buf, sizeof(buf)), 0);
	ck_assert(strstr(buf, "]: back") != NULL);
}
END_TEST

START_TEST(test_journal_datagram_has_the_fields_of_today)
{
	struct log_fields f = { .node = "foo", .port = 5001,
	    .peer = "127.0.0.1:40000" };
	char buf[4096];

	log_set_socket_path(LOG_TO_JOURNAL, sock_path);
	log_init(LOG_TO_JOURNAL, 0);
	log_fields(LOG_INFO, &f, "registered %s", "foo");
	ck_assert_int_gt(receive(buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "MESSAGE=registered foo\n"
	    "SYSLOG_IDENTIFIER=epmd-c\nPRIORITY=6\nEPMD_NODE=foo\n"
	    "EPMD_PORT=5001\nEPMD_PEER=127.0.0.1:40000\n");
}
END_TEST

START_TEST(test_stalled_journal_never_blocks)
{
	double t0;
	int i;

	log_set_socket_path(LOG_TO_JOURNAL, sock_path);
	log_init(LOG_TO_JOURNAL, 0);
	t0 = now();
	for (i = 0; i < 2000; i++)
		log_warnx("w %d", i);
	ck_assert(now() - t0 < 1.0);
	ck_assert_uint_gt(log_dropped_total(), 0);
}
END_TEST

START_TEST(test_journal_without_its_socket_falls_back_to_stderr)
{
	int	p[2];
	char	buf[256];
	ssize_t	n;

	close(receiver);
	unlink(sock_path);
	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
	log_set_socket_path(LOG_TO_JOURNAL, sock_path);
	log_init(LOG_TO_JOURNAL, 0);
	log_info("to stderr");
	n = read(p[0], buf, sizeof(buf) - 1);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_str_eq(buf, "epmd-c: to stderr\n");
	receiver = bind_receiver();
}
END_TEST

/*
 * stderr a pipe nobody reads: the log goes on at once, fd 2 keeps its
 * blocking mode (the shell shares it), and the lines come out unchanged,
 * then the count of what did not fit.
 */
START_TEST(test_stderr_pipe_nobody_reads_never_blocks)
{
	struct event_base	*base = event_base_new();
	char			 buf[65536], *s;
	int			 p[2], i, total = 3000;
	double			 t0;
	size_t			 have = 0;
	ssize_t			 n;

	ck_assert_int_eq(pipe(p), 0);
	fcntl(p[1], F_SETPIPE_SZ, 4096);
	ck_assert_int_eq(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
	log_init(LOG_TO_STDERR, 0);
	log_attach(base);
	t0 = now();
	for (i = 0; i < total; i++)
		log_info("line %d", i);
	ck_assert(now() - t0 < 1.0);
	ck_assert_int_eq(fcntl(STDERR_FILENO, F_GETFL) & O_NONBLOCK, 0);
	ck_assert_uint_gt(log_dropped_total(), 0);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	t0 = now();
	while (now() - t0 < 5.0 && have < sizeof(buf) - 1) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		if ((n = read(p[0], buf + have, sizeof(buf) - 1 - have)) > 0)
			have += (size_t)n;
		buf[have] = '\0';
		if (strstr(buf, "dropped") != NULL && buf[have - 1] == '\n')
			break;
	}
	ck_assert(strncmp(buf, "epmd-c: line 0\nepmd-c: line 1\n", 30) == 0);
	ck_assert_ptr_nonnull((s = strstr(buf, "epmd-c: log: dropped ")));
	ck_assert_uint_eq(strtoull(s + 21, NULL, 10), log_dropped_total());
	log_attach(NULL);
	event_base_free(base);
}
END_TEST

START_TEST(test_stderr_regular_file_gets_every_line_unchanged)
{
	char	path[64], buf[128];
	int	fd;
	ssize_t	n;

	snprintf(path, sizeof(path), "/tmp/logsink-%ld.err", (long)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	log_init(LOG_TO_STDERR, 0);
	log_info("one");
	errno = ENOENT;
	log_warn("two");
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_str_eq(buf, "epmd-c: one\nepmd-c: two: No such file or "
	    "directory\n");
}
END_TEST

/* The logsink suite, run by check_main.c. */
Suite *
unit_suite(void)
{
	Suite	*s = suite_create("logsink");
	TCase	*tr = tcase_create("render");
	TCase	*ts = tcase_create("sinks");

	tcase_add_test(tr, test_stderr_line_is_ident_colon_message_newline);
	tcase_add_test(tr, test_syslog_line_is_rfc3164_as_glibc_sends_it);
	tcase_add_test(tr, test_journal_datagram_is_key_value_lines_binary_for_newlines);
	tcase_add_checked_fixture(ts, setup, teardown);
	tcase_add_test(ts, test_syslog_message_reaches_dev_log_with_facility_daemon);
	tcase_add_test(ts, test_stalled_syslog_never_blocks_and_drops_are_reported);
	tcase_add_test(ts, test_syslog_reconnects_when_the_receiver_restarts);
	tcase_add_test(ts, test_syslog_gone_counts_drops_and_reports_on_return);
	tcase_add_test(ts, test_journal_datagram_has_the_fields_of_today);
	tcase_add_test(ts, test_stalled_journal_never_blocks);
	tcase_add_test(ts, test_journal_without_its_socket_falls_back_to_stderr);
	tcase_add_test(ts, test_stderr_pipe_nobody_reads_never_blocks);
	tcase_add_test(ts, test_stderr_regular_file_gets_every_line_unchanged);
	tcase_set_timeout(ts, 15);
	suite_add_tcase(s, tr);
	suite_add_tcase(s, ts);
	return s;
}
