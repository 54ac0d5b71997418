/*
 * Unit tests for metrics: the Prometheus text, byte for byte, /proc parsing,
 * and -stats reading that text back (stats.c).
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "metrics.h"
#include "options.h"
#include "stats.h"
#include "unit.h"

/* Every counter set to a distinct value, as the daemon would after traffic. */
static void
fill(struct metrics *m)
{
	int i;

	metrics_init(m);
	for (i = 0; i < METRICS_REG_N; i++)
		m->registrations[i] = 10 + (uint64_t)i;
	m->unregistrations = 5;
	for (i = 0; i < METRICS_REQ_N; i++)
		m->requests[i] = 20 + (uint64_t)i;
	m->lookups[METRICS_LOOKUP_FOUND] = 7;
	m->lookups[METRICS_LOOKUP_NOT_FOUND] = 8;
	for (i = 0; i < METRICS_REFUSED_N; i++)
		m->refused[i] = 30 + (uint64_t)i;
	m->malformed = 2;
	m->timeouts = 3;
	m->accept_paused = 4;
	m->shed = 6;
	m->log_dropped = 14;
	metrics_set_restarts(m, 1, 9);
	m->nodes = 11;
	m->connections = 13;
}

static const struct metrics_process proc = {
	.valid = true, .open_fds = 12, .max_fds = 524288,
	.resident_bytes = 4096000, .start_time_ms = 1764619200250,
	.cpu_ms = 1030,
};

/* The whole exposition for fill() and proc, with an awkward version. */
static const char expected[] =
	"# HELP epmd_nodes Nodes registered now.\n"
	"# TYPE epmd_nodes gauge\n"
	"epmd_nodes 11\n"
	"# HELP epmd_registrations_total Registration requests (ALIVE2) by result.\n"
	"# TYPE epmd_registrations_total counter\n"
	"epmd_registrations_total{result=\"ok\"} 10\n"
	"epmd_registrations_total{result=\"duplicate\"} 11\n"
	"epmd_registrations_total{result=\"invalid\"} 12\n"
	"epmd_registrations_total{result=\"refused\"} 13\n"
	"# HELP epmd_unregistrations_total Registrations ended: the node's connection closed, or a STOP.\n"
	"# TYPE epmd_unregistrations_total counter\n"
	"epmd_unregistrations_total 5\n"
	"# HELP epmd_requests_total Requests decoded, by type.\n"
	"# TYPE epmd_requests_total counter\n"
	"epmd_requests_total{request=\"alive2\"} 20\n"
	"epmd_requests_total{request=\"port_please2\"} 21\n"
	"epmd_requests_total{request=\"names\"} 22\n"
	"epmd_requests_total{request=\"dump\"} 23\n"
	"epmd_requests_total{request=\"kill\"} 24\n"
	"epmd_requests_total{request=\"stop\"} 25\n"
	"# HELP epmd_lookups_total Port lookups (PORT_PLEASE2) by result.\n"
	"# TYPE epmd_lookups_total counter\n"
	"epmd_lookups_total{result=\"found\"} 7\n"
	"epmd_lookups_total{result=\"not_found\"} 8\n"
	"# HELP epmd_refused_total Requests and connections refused, by reason.\n"
	"# TYPE epmd_refused_total counter\n"
	"epmd_refused_total{reason=\"remote_admin\"} 30\n"
	"epmd_refused_total{reason=\"access_list\"} 31\n"
	"epmd_refused_total{reason=\"peer_cap\"} 32\n"
	"epmd_refused_total{reason=\"fd_reserve\"} 33\n"
	"epmd_refused_total{reason=\"prefix_cap\"} 34\n"
	"epmd_refused_total{reason=\"remote_cap\"} 35\n"
	"# HELP epmd_malformed_total Connections closed for bad framing or an undecodable request.\n"
	"# TYPE epmd_malformed_total counter\n"
	"epmd_malformed_total 2\n"
	"# HELP epmd_timeouts_total Connections closed after staying silent for the packet timeout.\n"
	"# TYPE epmd_timeouts_total counter\n"
	"epmd_timeouts_total 3\n"
	"# HELP epmd_connections Open connections that are not registered nodes.\n"
	"# TYPE epmd_connections gauge\n"
	"epmd_connections 13\n"
	"# HELP epmd_accept_paused_total Times accepting paused because descriptors ran out.\n"
	"# TYPE epmd_accept_paused_total counter\n"
	"epmd_accept_paused_total 4\n"
	"# HELP epmd_shed_total Connections closed early to make room: old non-local requests, idle ones at the descriptor limit.\n"
	"# TYPE epmd_shed_total counter\n"
	"epmd_shed_total 6\n"
	"# HELP epmd_log_dropped_total Log messages dropped because the log sink did not take them in time.\n"
	"# TYPE epmd_log_dropped_total counter\n"
	"epmd_log_dropped_total 14\n"
	"# HELP epmd_restarts_total Restarts that kept the registered nodes.\n"
	"# TYPE epmd_restarts_total counter\n"
	"epmd_restarts_total 1\n"
	"# HELP epmd_restored_nodes Nodes restored by the last restart.\n"
	"# TYPE epmd_restored_nodes gauge\n"
	"epmd_restored_nodes 9\n"
	"# HELP epmd_build_info Build information; the value is always 1.\n"
	"# TYPE epmd_build_info gauge\n"
	"epmd_build_info{version=\"1.2\\\"x\\\\\"} 1\n"
	"# HELP process_open_fds Number of open file descriptors.\n"
	"# TYPE process_open_fds gauge\n"
	"process_open_fds 12\n"
	"# HELP process_max_fds Maximum number of open file descriptors.\n"
	"# TYPE process_max_fds gauge\n"
	"process_max_fds 524288\n"
	"# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
	"# TYPE process_resident_memory_bytes gauge\n"
	"process_resident_memory_bytes 4096000\n"
	"# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
	"# TYPE process_start_time_seconds gauge\n"
	"process_start_time_seconds 1764619200.250\n"
	"# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
	"# TYPE process_cpu_seconds_total counter\n"
	"process_cpu_seconds_total 1.030\n";

/* The part of expected before the process family. */
static size_t
epmd_part_len(void)
{
	return (size_t)(strstr(expected, "# HELP process_open_fds") - expected);
}

START_TEST(test_render_is_exact_with_help_and_type_for_every_family)
{
	struct metrics	m;
	char		buf[8192];
	size_t		n;

	fill(&m);
	n = metrics_render_buf(&m, &proc, "1.2\"x\\", buf, sizeof(buf));
	ck_assert_uint_eq(n, strlen(expected));
	ck_assert_str_eq(buf, expected);
}
END_TEST

START_TEST(test_zero_counters_render_every_sample_as_zero)
{
	struct metrics	m;
	char		buf[8192];
	const char	*p;

	metrics_init(&m);
	metrics_render_buf(&m, NULL, "v", buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf,
	    "\nepmd_refused_total{reason=\"access_list\"} 0\n"));
	ck_assert_ptr_nonnull(strstr(buf, "\nepmd_restarts_total 0\n"));
	ck_assert_ptr_nonnull(strstr(buf, "\nepmd_restored_nodes 0\n"));
	ck_assert_ptr_nonnull(strstr(buf, "\nepmd_build_info{version=\"v\"} 1\n"));
	/* Every sample line other than build_info ends in " 0". */
	for (p = buf; *p != '\0'; p = strchr(p, '\n') + 1) {
		const char *eol = strchr(p, '\n');

		ck_assert_ptr_nonnull(eol);
		if (*p == '#' || strncmp(p, "epmd_build_info{", 16) == 0)
			continue;
		ck_assert_int_eq(eol[-2], ' ');
		ck_assert_int_eq(eol[-1], '0');
	}
}
END_TEST

START_TEST(test_invalid_process_figures_leave_the_family_out)
{
	struct metrics		m;
	struct metrics_process	none = { .valid = false, .open_fds = 3 };
	char			buf[8192];
	size_t			n;

	fill(&m);
	n = metrics_render_buf(&m, &none, "1.2\"x\\", buf, sizeof(buf));
	ck_assert_uint_eq(n, epmd_part_len());
	ck_assert_int_eq(strncmp(buf, expected, n), 0);
	ck_assert_ptr_null(strstr(buf, "process_"));
}
END_TEST

START_TEST(test_short_buffer_is_cut_and_terminated_and_length_is_whole)
{
	struct metrics	m;
	char		buf[64];
	size_t		n;

	fill(&m);
	memset(buf, 'X', sizeof(buf));
	n = metrics_render_buf(&m, &proc, "1.2\"x\\", buf, sizeof(buf));
	ck_assert_uint_eq(n, strlen(expected));
	ck_assert_uint_eq(strlen(buf), sizeof(buf) - 1);
	ck_assert_int_eq(strncmp(buf, expected, sizeof(buf) - 1), 0);
	ck_assert_uint_eq(metrics_render_buf(&m, &proc, "1.2\"x\\", NULL, 0),
	    strlen(expected));
}
END_TEST

/* A put that takes two calls, then stops the render. */
static bool
put_two(void *arg, const char *text, size_t len)
{
	int *calls = arg;

	(void)text;
	(void)len;
	return ++*calls < 2;
}

START_TEST(test_render_stops_when_put_says_so)
{
	struct metrics	m;
	int		calls = 0;

	fill(&m);
	ck_assert(!metrics_render(&m, &proc, "v", put_two, &calls));
	ck_assert_int_eq(calls, 2);
}
END_TEST

START_TEST(test_version_newline_is_escaped)
{
	struct metrics	m;
	char		buf[8192];

	metrics_init(&m);
	metrics_render_buf(&m, NULL, "a\nb", buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "epmd_build_info{version=\"a\\nb\"} 1\n"));
}
END_TEST

START_TEST(test_labels_are_the_documented_names)
{
	ck_assert_str_eq(metrics_registration_label(METRICS_REG_REFUSED), "refused");
	ck_assert_str_eq(metrics_request_label(METRICS_REQ_PORT_PLEASE2), "port_please2");
	ck_assert_str_eq(metrics_lookup_label(METRICS_LOOKUP_NOT_FOUND), "not_found");
	ck_assert_str_eq(metrics_refusal_label(METRICS_REFUSED_FD_RESERVE), "fd_reserve");
	ck_assert_str_eq(metrics_refusal_label(METRICS_REFUSED_N), "");
}
END_TEST

START_TEST(test_parse_stat_finds_cpu_and_start_past_a_tricky_name)
{
	/* A command name with spaces and a ')' inside it. */
	const char	*stat = "4242 (epmd) x (y) S 1 4242 4242 0 -1 4194560 "
	    "120 0 0 0 17 25 0 0 20 0 1 0 987654 3133440 411 "
	    "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n";
	uint64_t	 cpu = 0, start = 0;

	ck_assert(metrics_parse_stat(stat, &cpu, &start));
	ck_assert_uint_eq(cpu, 42);
	ck_assert_uint_eq(start, 987654);
}
END_TEST

START_TEST(test_parse_stat_rejects_truncated_text)
{
	uint64_t cpu, start;

	ck_assert(!metrics_parse_stat("4242 (epmd) S 1 2 3", &cpu, &start));
	ck_assert(!metrics_parse_stat("4242 epmd S 1 2 3", &cpu, &start));
	ck_assert(!metrics_parse_stat("", &cpu, &start));
}
END_TEST

START_TEST(test_parse_btime_and_statm)
{
	uint64_t	v = 0;

	ck_assert(metrics_parse_btime("cpu  1 2 3\nintr 5\nbtime 1764600000\n"
	    "processes 9\n", &v));
	ck_assert_uint_eq(v, 1764600000);
	ck_assert(!metrics_parse_btime("cpu 1\nxbtime 3\n", &v));
	ck_assert(metrics_parse_statm("766 411 300 5 0 100 0\n", &v));
	ck_assert_uint_eq(v, 411);
	ck_assert(!metrics_parse_statm("766\n", &v));
}
END_TEST

START_TEST(test_read_process_sees_this_process)
{
	struct metrics_process p;

	metrics_read_process(&p);
	ck_assert(p.valid);
	ck_assert_uint_ge(p.open_fds, 3);	/* stdin, stdout, stderr at least */
	ck_assert_uint_ge(p.max_fds, p.open_fds);
	ck_assert_uint_gt(p.resident_bytes, 0);
	ck_assert_uint_gt(p.start_time_ms, 1000000000000ull);
}
END_TEST

START_TEST(test_stats_reads_back_every_figure_rendered)
{
	struct metrics	m;
	struct stats	st;
	char		buf[8192];

	fill(&m);
	metrics_render_buf(&m, &proc, "1.2\"x\\", buf, sizeof(buf));
	stats_parse(buf, &st);
	/* 15 plain samples, 4 + 6 + 2 + 6 labelled ones, build_info. */
	ck_assert_uint_eq(st.nsamples, 15 + 18 + 1);
	ck_assert(st.log_dropped == 14);
	ck_assert_str_eq(st.version, "1.2\"x\\");
	ck_assert(st.registrations[METRICS_REG_INVALID] == 12);
	ck_assert(st.requests[METRICS_REQ_STOP] == 25);
	ck_assert(st.lookups[METRICS_LOOKUP_NOT_FOUND] == 8);
	ck_assert(st.refused[METRICS_REFUSED_ACCESS_LIST] == 31);
	ck_assert(st.nodes == 11 && st.connections == 13);
	ck_assert(st.restarts == 1 && st.restored_nodes == 9);
	ck_assert(st.start_time == 1764619200.25 && st.cpu_seconds == 1.03);
}
END_TEST

static const char stats_expected[] =
	"epmd-c 9.9, metrics from 127.0.0.1:9369\n"
	"nodes:            11 registered\n"
	"connections:      13 open, not registered nodes\n"
	"registrations:    46 (ok 10, duplicate 11, invalid 12, refused 13)\n"
	"unregistrations:  5\n"
	"requests:         135 (alive2 20, port_please2 21, names 22, dump 23, kill 24, stop 25)\n"
	"lookups:          15 (found 7, not_found 8)\n"
	"refused:          195 (remote_admin 30, access_list 31, peer_cap 32, fd_reserve 33, prefix_cap 34, remote_cap 35)\n"
	"malformed:        2\n"
	"timeouts:         3\n"
	"accept pauses:    4\n"
	"shed:             6\n"
	"log dropped:      14\n"
	"restarts:         1\n"
	"restored nodes:   9\n"
	"descriptors:      12 open of 524288\n"
	"memory:           4096000 bytes resident\n"
	"cpu:              1.03 s\n"
	"started:          2025-12-01 20:00:00 UTC, up 100 s\n";

START_TEST(test_stats_print_is_exact)
{
	struct metrics	 m;
	struct stats	 st;
	char		 buf[8192], *out = NULL;
	size_t		 len = 0;
	FILE		*f;

	fill(&m);
	metrics_render_buf(&m, &proc, "9.9", buf, sizeof(buf));
	stats_parse(buf, &st);
	ck_assert_ptr_nonnull(f = open_memstream(&out, &len));
	stats_print(f, &st, "127.0.0.1:9369", 1764619300.25);
	fclose(f);
	ck_assert_str_eq(out, stats_expected);
	free(out);
}
END_TEST

START_TEST(test_stats_skips_what_it_does_not_know_and_marks_missing)
{
	struct stats	 st;
	char		*out = NULL;
	size_t		 len = 0;
	FILE		*f;

	stats_parse("# HELP x y\nfoo 1\nepmd_nodes{a=\"b\"} 3\n"
	    "epmd_lookups_total{result=\"other\"} 4\n"
	    "epmd_requests_total{request=\"names\",x=\"y\"} 5\n"
	    "epmd_shed_total\nepmd_timeouts_total x\n"
	    "epmd_build_info{version=\"unterminated} 1\n"
	    "epmd_malformed_total 7\n", &st);
	ck_assert_uint_eq(st.nsamples, 1);
	ck_assert(st.malformed == 7);
	ck_assert_ptr_nonnull(f = open_memstream(&out, &len));
	stats_print(f, &st, "x", 0);
	fclose(f);
	ck_assert_ptr_nonnull(strstr(out, "epmd-c ?, metrics from x\n"));
	ck_assert_ptr_nonnull(strstr(out, "\nnodes:            ? registered\n"));
	ck_assert_ptr_nonnull(strstr(out, "\nmalformed:        7\n"));
	ck_assert_ptr_nonnull(strstr(out, "\nstarted:          ?\n"));
	free(out);
}
END_TEST

START_TEST(test_metrics_option_takes_ipv4_and_bracketed_ipv6)
{
	struct listen_addr	 la;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&la.ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&la.ss;
	struct in6_addr		 lo6 = IN6ADDR_LOOPBACK_INIT;

	ck_assert(options_parse_hostport("127.0.0.1:9369", &la));
	ck_assert_int_eq(sin->sin_family, AF_INET);
	ck_assert_uint_eq(ntohs(sin->sin_port), 9369);
	ck_assert_uint_eq(ntohl(sin->sin_addr.s_addr), 0x7f000001);
	ck_assert_uint_eq(la.len, sizeof(*sin));
	ck_assert(options_parse_hostport("[::1]:65535", &la));
	ck_assert_int_eq(sin6->sin6_family, AF_INET6);
	ck_assert_uint_eq(ntohs(sin6->sin6_port), 65535);
	ck_assert_int_eq(memcmp(&sin6->sin6_addr, &lo6, sizeof(lo6)), 0);
	ck_assert_uint_eq(la.len, sizeof(*sin6));
	ck_assert(options_parse_hostport("[2001:db8::7]:1", &la));
	ck_assert(options_parse_hostport("0.0.0.0:80", &la));
}
END_TEST

START_TEST(test_metrics_option_rejects_the_rest)
{
	static const char *const bad[] = {
		"", ":", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0",
		"127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:80x",
		"127.0.0.1: 80", "::1:9369", "[::1]", "[::1]9369", "[::1:9369",
		"::1]:9369", "[127.0.0.1]:80", "[]:80", "localhost:9369",
		"1.2.3:80", "[::1]:", ":9369",
	};
	struct listen_addr	la;
	size_t			i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!options_parse_hostport(bad[i], &la), "%s", bad[i]);
	ck_assert(!options_parse_hostport(NULL, &la));
}
END_TEST

/* options_parse on a NULL-terminated list of arguments. */
static enum options_status
parse(struct options *o, const char **argv)
{
	char	*copy[16];
	int	 argc = 0;

	while (argv[argc] != NULL && argc < 15) {
		copy[argc] = (char *)(uintptr_t)argv[argc];
		argc++;
	}
	copy[argc] = NULL;
	return options_parse(o, argc, copy);
}

START_TEST(test_metrics_and_stats_on_the_command_line)
{
	struct options	 opts;
	const char	*serve[] = { "epmd", "-metrics", "[::1]:9369", "-d", NULL };
	const char	*stats[] = { "epmd", "-metrics", "127.0.0.1:1", "-stats",
			    NULL };
	const char	*nometrics[] = { "epmd", "-stats", NULL };
	const char	*notlast[] = { "epmd", "-metrics", "127.0.0.1:1",
			    "-stats", "-d", NULL };
	const char	*badaddr[] = { "epmd", "-metrics", "9369", NULL };
	const char	*noarg[] = { "epmd", "-metrics", NULL };
	const char	*none[] = { "epmd", NULL };

	ck_assert_int_eq(parse(&opts, serve), OPTIONS_OK);
	ck_assert(opts.metrics);
	ck_assert_int_eq(opts.command, CMD_SERVE);
	ck_assert_int_eq(opts.debug, 1);
	ck_assert_int_eq(parse(&opts, stats), OPTIONS_OK);
	ck_assert_int_eq(opts.command, CMD_STATS);
	ck_assert_int_eq(parse(&opts, nometrics), OPTIONS_FATAL);
	ck_assert_ptr_nonnull(strstr(opts.error, "-metrics"));
	ck_assert_int_eq(parse(&opts, notlast), OPTIONS_USAGE);
	ck_assert_int_eq(parse(&opts, badaddr), OPTIONS_FATAL);
	ck_assert_int_eq(parse(&opts, noarg), OPTIONS_USAGE);
	/* Off by default. */
	ck_assert_int_eq(parse(&opts, none), OPTIONS_OK);
	ck_assert(!opts.metrics);
}
END_TEST

/* The metrics suite, run by check_main.c. */
Suite *
unit_suite(void)
{
	Suite	*s = suite_create("metrics");
	TCase	*tc = tcase_create("render");
	TCase	*tp = tcase_create("proc");
	TCase	*ts = tcase_create("stats");
	TCase	*to = tcase_create("option");

	tcase_add_test(tc, test_render_is_exact_with_help_and_type_for_every_family);
	tcase_add_test(tc, test_zero_counters_render_every_sample_as_zero);
	tcase_add_test(tc, test_invalid_process_figures_leave_the_family_out);
	tcase_add_test(tc, test_short_buffer_is_cut_and_terminated_and_length_is_whole);
	tcase_add_test(tc, test_render_stops_when_put_says_so);
	tcase_add_test(tc, test_version_newline_is_escaped);
	tcase_add_test(tc, test_labels_are_the_documented_names);
	suite_add_tcase(s, tc);
	tcase_add_test(tp, test_parse_stat_finds_cpu_and_start_past_a_tricky_name);
	tcase_add_test(tp, test_parse_stat_rejects_truncated_text);
	tcase_add_test(tp, test_parse_btime_and_statm);
	tcase_add_test(tp, test_read_process_sees_this_process);
	suite_add_tcase(s, tp);
	tcase_add_test(ts, test_stats_reads_back_every_figure_rendered);
	tcase_add_test(ts, test_stats_print_is_exact);
	tcase_add_test(ts, test_stats_skips_what_it_does_not_know_and_marks_missing);
	suite_add_tcase(s, ts);
	tcase_add_test(to, test_metrics_option_takes_ipv4_and_bracketed_ipv6);
	tcase_add_test(to, test_metrics_option_rejects_the_rest);
	tcase_add_test(to, test_metrics_and_stats_on_the_command_line);
	suite_add_tcase(s, to);
	return s;
}
