/*
 * Unit tests for options: argv and the environment into struct options
 * (PROTOCOL.md 4.1, 4.3, 4.4 and the CLI cases of 7.5).
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addrfilt.h"
#include "epmd.h"
#include "options.h"
#include "unit.h"

/* Parse "epmd" followed by the given arguments. */
#define PARSE(o, ...)	parse_argv((o), (const char *[]){ "epmd", \
			    __VA_ARGS__, NULL })
/* Parse "epmd" alone. */
#define PARSE0(o)	parse_argv((o), (const char *[]){ "epmd", NULL })

/* Run options_parse over a NULL-terminated argument vector. */
static enum options_status
parse_argv(struct options *o, const char **argv)
{
	char	*copy[64];
	int	 argc = 0;

	/* options_parse takes argv as main gets it: a copy, not a cast. */
	while (argv[argc] != NULL && argc < 63) {
		copy[argc] = (char *)(uintptr_t)argv[argc];
		argc++;
	}
	copy[argc] = NULL;
	return options_parse(o, argc, copy);
}

/* Start every test without the ERL_EPMD_* variables. */
static void
clear_env(void)
{
	unsetenv("ERL_EPMD_PORT");
	unsetenv("ERL_EPMD_ADDRESS");
	unsetenv("ERL_EPMD_RELAXED_COMMAND_CHECK");
}

/* The text form of listen address i (its port must be 0). */
static const char *
addr_str(const struct options *o, size_t i)
{
	static char			 buf[INET6_ADDRSTRLEN];
	const struct listen_addr	*la = &o->addrs[i];
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;

	ck_assert_uint_lt(i, o->naddrs);
	if (la->ss.ss_family == AF_INET) {
		sin = (const struct sockaddr_in *)&la->ss;
		ck_assert_uint_eq(la->len, sizeof(*sin));
		ck_assert_uint_eq(sin->sin_port, 0);
		return inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
	}
	ck_assert_int_eq(la->ss.ss_family, AF_INET6);
	sin6 = (const struct sockaddr_in6 *)&la->ss;
	ck_assert_uint_eq(la->len, sizeof(*sin6));
	ck_assert_uint_eq(sin6->sin6_port, 0);
	return inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
}

/* Assert that the list starts with the implicit 127.0.0.1 and ::1. */
static void
assert_loopbacks_first(const struct options *o)
{
	ck_assert_uint_ge(o->naddrs, 2);
	ck_assert_str_eq(addr_str(o, 0), "127.0.0.1");
	ck_assert(o->addrs[0].implicit);
	ck_assert_str_eq(addr_str(o, 1), "::1");
	ck_assert(o->addrs[1].implicit);
}

/* A list of n addresses 127.0.0.2, 127.0.0.3, ... joined by commas. */
static void
make_extras(char *buf, size_t size, int n)
{
	size_t	 off = 0;
	int	 i;

	buf[0] = '\0';
	for (i = 0; i < n; i++)
		off += (size_t)snprintf(buf + off, size - off, "%s127.0.0.%d",
		    i ? "," : "", i + 2);
	ck_assert_uint_lt(off, size);
}

/* Defaults */

START_TEST(test_defaults_without_arguments)
{
	struct options o;

	ck_assert_int_eq(PARSE0(&o), OPTIONS_OK);
	ck_assert_int_eq(o.command, CMD_SERVE);
	ck_assert_int_eq(o.port, 4369);
	ck_assert_int_eq(o.packet_timeout, 60);
	ck_assert_int_eq(o.delay_accept, 0);
	ck_assert_int_eq(o.delay_write, 0);
	ck_assert_int_eq(o.max_conns_per_peer, OPTIONS_DEFAULT_MAX_PER_PEER);
	ck_assert_int_eq(o.debug, 0);
	ck_assert(!o.daemon);
	ck_assert(!o.relaxed);
	ck_assert(!o.systemd);
	ck_assert_uint_eq(o.naddrs, 0);
	ck_assert_ptr_null(o.stop_name);
}
END_TEST

/* Environment */

START_TEST(test_env_port_is_used)
{
	struct options o;

	setenv("ERL_EPMD_PORT", "24400", 1);
	ck_assert_int_eq(PARSE0(&o), OPTIONS_OK);
	ck_assert_int_eq(o.port, 24400);
}
END_TEST

START_TEST(test_env_port_garbage_is_zero)
{
	struct options o;

	setenv("ERL_EPMD_PORT", "abc", 1);
	ck_assert_int_eq(PARSE(&o, "-names"), OPTIONS_OK);
	ck_assert_int_eq(o.port, 0);
}
END_TEST

START_TEST(test_env_port_empty_is_zero)
{
	struct options o;

	setenv("ERL_EPMD_PORT", "", 1);
	ck_assert_int_eq(PARSE0(&o), OPTIONS_OK);
	ck_assert_int_eq(o.port, 0);
}
END_TEST

START_TEST(test_env_port_takes_leading_number_like_atoi)
{
	struct options o;

	setenv("ERL_EPMD_PORT", "24401xyz", 1);
	ck_assert_int_eq(PARSE0(&o), OPTIONS_OK);
	ck_assert_int_eq(o.port, 24401);
	setenv("ERL_EPMD_PORT", "-5", 1);
	ck_assert_int_eq(PARSE0(&o), OPTIONS_OK);
	ck_assert_int_eq(o.port, -5);
}
END_TEST

START_TEST(test_port_flag_overrides_env_port)
{
	struct options o;

	setenv("ERL_EPMD_PORT", "24400", 1);
	ck_assert_int_eq(PARSE(&o, "-port", "24402"), OPTIONS_OK);
	ck_assert_int_eq(o.port, 24402);
}
END_TEST

START_TEST(test_env_relaxed_set_to_empty_is_relaxed)
{
	struct options o;

	setenv("ERL_EPMD_RELAXED_COMMAND_CHECK", "", 1);
	ck_assert_int_eq(PARSE0(&o), OPTIONS_OK);
	ck_assert(o.relaxed);
}
END_TEST

START_TEST(test_env_relaxed_set_to_anything_is_relaxed)
{
	struct options o;

	setenv("ERL_EPMD_RELAXED_COMMAND_CHECK", "false", 1);
	ck_assert_int_eq(PARSE0(&o), OPTIONS_OK);
	ck_assert(o.relaxed);
}
END_TEST

START_TEST(test_env_address_is_used)
{
	struct options o;

	setenv("ERL_EPMD_ADDRESS", "127.0.0.2", 1);
	ck_assert_int_eq(PARSE0(&o), OPTIONS_OK);
	ck_assert_uint_eq(o.naddrs, 3);
	assert_loopbacks_first(&o);
	ck_assert_str_eq(addr_str(&o, 2), "127.0.0.2");
	ck_assert(!o.addrs[2].implicit);
}
END_TEST

START_TEST(test_env_address_empty_or_separators_means_all_interfaces)
{
	struct options o;

	setenv("ERL_EPMD_ADDRESS", "", 1);
	ck_assert_int_eq(PARSE0(&o), OPTIONS_OK);
	ck_assert_uint_eq(o.naddrs, 0);
	setenv("ERL_EPMD_ADDRESS", " ,, , ", 1);
	ck_assert_int_eq(PARSE0(&o), OPTIONS_OK);
	ck_assert_uint_eq(o.naddrs, 0);
}
END_TEST

START_TEST(test_env_address_bad_is_fatal_for_the_daemon)
{
	struct options o;

	setenv("ERL_EPMD_ADDRESS", "localhost", 1);
	ck_assert_int_eq(PARSE0(&o), OPTIONS_FATAL);
	ck_assert_str_eq(o.error, "cannot parse IP address \"localhost\"");
}
END_TEST

START_TEST(test_env_address_bad_is_ignored_by_client_commands)
{
	struct options o;

	setenv("ERL_EPMD_ADDRESS", "localhost", 1);
	ck_assert_int_eq(PARSE(&o, "-names"), OPTIONS_OK);
	ck_assert_int_eq(o.command, CMD_NAMES);
	ck_assert_int_eq(PARSE(&o, "-address", "localhost", "-kill"),
	    OPTIONS_OK);
	ck_assert_int_eq(o.command, CMD_KILL);
}
END_TEST

START_TEST(test_address_flag_overrides_env_address)
{
	struct options o;

	setenv("ERL_EPMD_ADDRESS", "localhost", 1);
	ck_assert_int_eq(PARSE(&o, "-address", "127.0.0.3"), OPTIONS_OK);
	ck_assert_uint_eq(o.naddrs, 3);
	ck_assert_str_eq(addr_str(&o, 2), "127.0.0.3");
	ck_assert_int_eq(PARSE(&o, "-address", ""), OPTIONS_OK);
	ck_assert_uint_eq(o.naddrs, 0);
}
END_TEST

/* Flags */

START_TEST(test_debug_flags_count)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-d", "-debug", "-d"), OPTIONS_OK);
	ck_assert_int_eq(o.debug, 3);
	ck_assert_int_eq(o.command, CMD_SERVE);
}
END_TEST

START_TEST(test_boolean_flags)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-daemon", "-relaxed_command_check",
	    "-systemd"), OPTIONS_OK);
	ck_assert(o.daemon);
	ck_assert(o.relaxed);
	ck_assert(o.systemd);
}
END_TEST

START_TEST(test_port_flag)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-port", "24399"), OPTIONS_OK);
	ck_assert_int_eq(o.port, 24399);
}
END_TEST

START_TEST(test_port_negative_is_accepted)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-port", "-5", "-names"), OPTIONS_OK);
	ck_assert_int_eq(o.port, -5);
	ck_assert_int_eq((uint16_t)o.port, 65531);
	ck_assert_int_eq(o.command, CMD_NAMES);
}
END_TEST

START_TEST(test_port_above_16_bits_is_kept_whole)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-port", "90905", "-address", "127.0.0.1"),
	    OPTIONS_OK);
	ck_assert_int_eq(o.port, 90905);
	ck_assert_int_eq((uint16_t)o.port, 25369);
}
END_TEST

START_TEST(test_port_zero_is_usage)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-port", "0", "-names"), OPTIONS_USAGE);
}
END_TEST

START_TEST(test_port_not_numeric_is_usage)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-port", "abc", "-names"), OPTIONS_USAGE);
	ck_assert_int_eq(PARSE(&o, "-port", "", "-names"), OPTIONS_USAGE);
	ck_assert_int_eq(PARSE(&o, "-port", "12abc"), OPTIONS_USAGE);
}
END_TEST

START_TEST(test_port_out_of_32_bit_range_is_usage)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-port", "99999999999999999999"),
	    OPTIONS_USAGE);
	ck_assert_int_eq(PARSE(&o, "-port", "4294967296"), OPTIONS_USAGE);
}
END_TEST

START_TEST(test_port_missing_argument_is_usage)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-port"), OPTIONS_USAGE);
}
END_TEST

START_TEST(test_packet_timeout_flag)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-packet_timeout", "2"), OPTIONS_OK);
	ck_assert_int_eq(o.packet_timeout, 2);
}
END_TEST

START_TEST(test_packet_timeout_zero_is_usage)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-packet_timeout", "0"), OPTIONS_USAGE);
}
END_TEST

START_TEST(test_packet_timeout_not_numeric_is_usage)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-packet_timeout", "abc"), OPTIONS_USAGE);
}
END_TEST

START_TEST(test_packet_timeout_negative_is_usage)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-packet_timeout", "-3"), OPTIONS_USAGE);
}
END_TEST

START_TEST(test_packet_timeout_missing_argument_is_usage)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-packet_timeout"), OPTIONS_USAGE);
}
END_TEST

START_TEST(test_delay_flags)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-delay_accept", "3", "-delay_write", "1"),
	    OPTIONS_OK);
	ck_assert_int_eq(o.delay_accept, 3);
	ck_assert_int_eq(o.delay_write, 1);
}
END_TEST

START_TEST(test_delay_accept_zero_is_usage)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-delay_accept", "0"), OPTIONS_USAGE);
	ck_assert_int_eq(PARSE(&o, "-delay_accept", "x"), OPTIONS_USAGE);
	ck_assert_int_eq(PARSE(&o, "-delay_accept"), OPTIONS_USAGE);
}
END_TEST

START_TEST(test_delay_write_zero_is_usage)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-delay_write", "0"), OPTIONS_USAGE);
	ck_assert_int_eq(PARSE(&o, "-delay_write", "-1"), OPTIONS_USAGE);
	ck_assert_int_eq(PARSE(&o, "-delay_write"), OPTIONS_USAGE);
}
END_TEST

START_TEST(test_max_conns_per_peer_flag)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-max_conns_per_peer", "10"), OPTIONS_OK);
	ck_assert_int_eq(o.max_conns_per_peer, 10);
}
END_TEST

START_TEST(test_max_conns_per_peer_zero_means_no_cap)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-max_conns_per_peer", "0"), OPTIONS_OK);
	ck_assert_int_eq(o.max_conns_per_peer, 0);
}
END_TEST

START_TEST(test_max_conns_per_peer_bad_is_usage)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-max_conns_per_peer", "-1"), OPTIONS_USAGE);
	ck_assert_int_eq(PARSE(&o, "-max_conns_per_peer", "abc"),
	    OPTIONS_USAGE);
	ck_assert_int_eq(PARSE(&o, "-max_conns_per_peer"), OPTIONS_USAGE);
}
END_TEST

/* Remote peers: 1024 per /24 and /64, half the fds, 10 s to finish. */
START_TEST(test_remote_caps_default_to_a_24_and_a_64)
{
	struct options o;

	ck_assert_int_eq(PARSE0(&o), OPTIONS_OK);
	ck_assert_int_eq(o.max_conns_per_prefix, 1024);
	ck_assert_int_eq(o.peer_prefix4, 24);
	ck_assert_int_eq(o.peer_prefix6, 64);
	ck_assert(o.max_remote_conns == OPTIONS_REMOTE_AUTO);
	ck_assert_int_eq(o.request_deadline, 10);
}
END_TEST

START_TEST(test_remote_cap_flags)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-max_conns_per_prefix", "0",
	    "-peer_prefix4", "32", "-peer_prefix6", "48",
	    "-max_remote_conns", "500", "-request_deadline", "0"), OPTIONS_OK);
	ck_assert_int_eq(o.max_conns_per_prefix, 0);
	ck_assert_int_eq(o.peer_prefix4, 32);
	ck_assert_int_eq(o.peer_prefix6, 48);
	ck_assert(o.max_remote_conns == 500);
	ck_assert_int_eq(o.request_deadline, 0);
}
END_TEST

START_TEST(test_prefix_longer_than_the_family_is_usage)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-peer_prefix4", "33"), OPTIONS_USAGE);
	ck_assert_int_eq(PARSE(&o, "-peer_prefix6", "129"), OPTIONS_USAGE);
	ck_assert_int_eq(PARSE(&o, "-peer_prefix6", "-1"), OPTIONS_USAGE);
	ck_assert_int_eq(PARSE(&o, "-max_remote_conns", "x"), OPTIONS_USAGE);
	ck_assert_int_eq(PARSE(&o, "-request_deadline"), OPTIONS_USAGE);
}
END_TEST

/* A client command waits 10 s unless -client_timeout says otherwise. */
START_TEST(test_client_timeout_defaults_to_10_s)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-names"), OPTIONS_OK);
	ck_assert_int_eq(o.client_timeout, 10);
}
END_TEST

/* -client_timeout before a command sets it; 0 means no deadline. */
START_TEST(test_client_timeout_flag_before_command)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-client_timeout", "2", "-names"),
	    OPTIONS_OK);
	ck_assert_int_eq(o.client_timeout, 2);
	ck_assert_int_eq(o.command, CMD_NAMES);
	ck_assert_int_eq(PARSE(&o, "-client_timeout", "0", "-stop", "n"),
	    OPTIONS_OK);
	ck_assert_int_eq(o.client_timeout, 0);
}
END_TEST

/* A negative, non-numeric or missing -client_timeout is a usage error. */
START_TEST(test_client_timeout_bad_is_usage)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-client_timeout", "-1", "-names"),
	    OPTIONS_USAGE);
	ck_assert_int_eq(PARSE(&o, "-client_timeout", "2s", "-names"),
	    OPTIONS_USAGE);
	ck_assert_int_eq(PARSE(&o, "-client_timeout", "-names"),
	    OPTIONS_USAGE);
	ck_assert_int_eq(PARSE(&o, "-names", "-client_timeout", "2"),
	    OPTIONS_USAGE);
}
END_TEST

START_TEST(test_help_flags_are_usage)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-h"), OPTIONS_USAGE);
	ck_assert_int_eq(PARSE(&o, "-help"), OPTIONS_USAGE);
	ck_assert_int_eq(PARSE(&o, "--help"), OPTIONS_USAGE);
}
END_TEST

START_TEST(test_unknown_flag_is_usage)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-bogus"), OPTIONS_USAGE);
	ck_assert_int_eq(PARSE(&o, "names"), OPTIONS_USAGE);
	ck_assert_int_eq(PARSE(&o, "-port", "24399", "-Names"), OPTIONS_USAGE);
}
END_TEST

START_TEST(test_address_missing_argument_is_usage)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-address"), OPTIONS_USAGE);
}
END_TEST

/* Client commands */

START_TEST(test_client_commands_when_last)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-names"), OPTIONS_OK);
	ck_assert_int_eq(o.command, CMD_NAMES);
	ck_assert_int_eq(PARSE(&o, "-dump"), OPTIONS_OK);
	ck_assert_int_eq(o.command, CMD_DUMP);
	ck_assert_int_eq(PARSE(&o, "-kill"), OPTIONS_OK);
	ck_assert_int_eq(o.command, CMD_KILL);
	ck_assert_int_eq(PARSE(&o, "-started"), OPTIONS_OK);
	ck_assert_int_eq(o.command, CMD_STARTED);
}
END_TEST

START_TEST(test_flags_before_client_command_apply)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-d", "-port", "24399", "-names"),
	    OPTIONS_OK);
	ck_assert_int_eq(o.command, CMD_NAMES);
	ck_assert_int_eq(o.port, 24399);
	ck_assert_int_eq(o.debug, 1);
}
END_TEST

START_TEST(test_names_not_last_is_usage)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-names", "-port", "24399"), OPTIONS_USAGE);
}
END_TEST

START_TEST(test_kill_not_last_is_usage)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-kill", "x"), OPTIONS_USAGE);
	ck_assert_int_eq(PARSE(&o, "-kill", "-port", "24399"), OPTIONS_USAGE);
}
END_TEST

START_TEST(test_dump_not_last_is_usage)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-dump", "x"), OPTIONS_USAGE);
}
END_TEST

START_TEST(test_started_not_last_is_usage)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-started", "x"), OPTIONS_USAGE);
}
END_TEST

START_TEST(test_stop_takes_the_last_argument_as_name)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-port", "24370", "-stop", "live1"),
	    OPTIONS_OK);
	ck_assert_int_eq(o.command, CMD_STOP);
	ck_assert_str_eq(o.stop_name, "live1");
	ck_assert_int_eq(o.port, 24370);
}
END_TEST

START_TEST(test_stop_name_may_look_like_a_flag)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-stop", "-names"), OPTIONS_OK);
	ck_assert_int_eq(o.command, CMD_STOP);
	ck_assert_str_eq(o.stop_name, "-names");
}
END_TEST

START_TEST(test_stop_without_name_is_usage)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-stop"), OPTIONS_USAGE);
}
END_TEST

START_TEST(test_stop_with_two_names_is_usage)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-stop", "a", "b"), OPTIONS_USAGE);
}
END_TEST

START_TEST(test_client_command_with_bad_port_before_is_usage)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-port", "0", "-names"), OPTIONS_USAGE);
	ck_assert_int_eq(PARSE(&o, "-port", "abc", "-names"), OPTIONS_USAGE);
}
END_TEST

/* -address lists */

START_TEST(test_address_loopback_v4_gives_both_loopbacks)
{
	struct options o;

	/* Named, 127.0.0.1 is the user's (binding it must work); ::1 is not. */
	ck_assert_int_eq(PARSE(&o, "-address", "127.0.0.1"), OPTIONS_OK);
	ck_assert_uint_eq(o.naddrs, 2);
	ck_assert_str_eq(addr_str(&o, 0), "127.0.0.1");
	ck_assert(!o.addrs[0].implicit);
	ck_assert_str_eq(addr_str(&o, 1), "::1");
	ck_assert(o.addrs[1].implicit);
}
END_TEST

START_TEST(test_address_both_loopbacks_are_not_duplicated)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-address", "127.0.0.1,::1"), OPTIONS_OK);
	ck_assert_uint_eq(o.naddrs, 2);
	ck_assert_str_eq(addr_str(&o, 0), "127.0.0.1");
	ck_assert_str_eq(addr_str(&o, 1), "::1");
	ck_assert(!o.addrs[0].implicit);
	ck_assert(!o.addrs[1].implicit);
}
END_TEST

START_TEST(test_address_loopback_compared_as_address_not_text)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-address", "0:0:0:0:0:0:0:1"), OPTIONS_OK);
	ck_assert_uint_eq(o.naddrs, 2);
}
END_TEST

START_TEST(test_address_other_127_is_added_after_loopbacks)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-address", "127.0.0.2"), OPTIONS_OK);
	ck_assert_uint_eq(o.naddrs, 3);
	assert_loopbacks_first(&o);
	ck_assert_str_eq(addr_str(&o, 2), "127.0.0.2");
	ck_assert(!o.addrs[2].implicit);
}
END_TEST

START_TEST(test_address_separators_and_empty_tokens_skipped)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-address", " , 127.0.0.3 ,, "),
	    OPTIONS_OK);
	ck_assert_uint_eq(o.naddrs, 3);
	ck_assert_str_eq(addr_str(&o, 2), "127.0.0.3");
}
END_TEST

START_TEST(test_address_spaces_separate_tokens)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-address", "127.0.0.2 2001:db8::7"),
	    OPTIONS_OK);
	ck_assert_uint_eq(o.naddrs, 4);
	ck_assert_str_eq(addr_str(&o, 2), "127.0.0.2");
	ck_assert_str_eq(addr_str(&o, 3), "2001:db8::7");
}
END_TEST

START_TEST(test_address_only_separators_means_all_interfaces)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-address", " , ,"), OPTIONS_OK);
	ck_assert_uint_eq(o.naddrs, 0);
}
END_TEST

START_TEST(test_address_hostname_is_fatal)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-address", "localhost"), OPTIONS_FATAL);
	ck_assert_str_eq(o.error, "cannot parse IP address \"localhost\"");
}
END_TEST

START_TEST(test_address_short_ipv4_form_is_fatal)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-address", "127.1"), OPTIONS_FATAL);
	ck_assert_str_eq(o.error, "cannot parse IP address \"127.1\"");
}
END_TEST

START_TEST(test_address_brackets_are_fatal)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-address", "[::1]"), OPTIONS_FATAL);
	ck_assert_str_eq(o.error, "cannot parse IP address \"[::1]\"");
}
END_TEST

START_TEST(test_address_tab_is_not_a_separator)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-address", "127.0.0.2\t127.0.0.3"),
	    OPTIONS_FATAL);
	ck_assert_str_eq(o.error,
	    "cannot parse IP address \"127.0.0.2\t127.0.0.3\"");
}
END_TEST

START_TEST(test_address_bad_token_after_good_ones_is_fatal)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-address", "127.0.0.2,,nope,127.0.0.3"),
	    OPTIONS_FATAL);
	ck_assert_str_eq(o.error, "cannot parse IP address \"nope\"");
}
END_TEST

START_TEST(test_address_long_bad_token_error_is_bounded)
{
	struct options o;
	char list[2048];

	memset(list, 'x', sizeof(list) - 1);
	list[sizeof(list) - 1] = '\0';
	ck_assert_int_eq(PARSE(&o, "-address", list), OPTIONS_FATAL);
	ck_assert_uint_lt(strlen(o.error), sizeof(o.error));
	ck_assert(strncmp(o.error, "cannot parse IP address \"xxx", 28) == 0);
}
END_TEST

START_TEST(test_address_mapped_ipv4_parses_as_ipv6)
{
	struct options o;

	/* It parses; binding it is what fails, in the server. */
	ck_assert_int_eq(PARSE(&o, "-address", "::ffff:127.0.0.1"), OPTIONS_OK);
	ck_assert_uint_eq(o.naddrs, 3);
	ck_assert_int_eq(o.addrs[2].ss.ss_family, AF_INET6);
	ck_assert_str_eq(addr_str(&o, 2), "::ffff:127.0.0.1");
}
END_TEST

START_TEST(test_address_duplicates_are_kept)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-address", "127.0.0.2,127.0.0.2"),
	    OPTIONS_OK);
	ck_assert_uint_eq(o.naddrs, 4);
	ck_assert_str_eq(addr_str(&o, 2), "127.0.0.2");
	ck_assert_str_eq(addr_str(&o, 3), "127.0.0.2");
}
END_TEST

START_TEST(test_address_13_extras_give_15_listeners)
{
	struct options o;
	char list[512];

	make_extras(list, sizeof(list), 13);
	ck_assert_int_eq(PARSE(&o, "-address", list), OPTIONS_OK);
	ck_assert_uint_eq(o.naddrs, 15);
	assert_loopbacks_first(&o);
	ck_assert_str_eq(addr_str(&o, 14), "127.0.0.14");
}
END_TEST

START_TEST(test_address_14_extras_are_fatal)
{
	struct options o;
	char list[512];

	make_extras(list, sizeof(list), 14);
	ck_assert_int_eq(PARSE(&o, "-address", list), OPTIONS_FATAL);
	ck_assert_str_eq(o.error, "cannot listen on more than 16 IP addresses");
}
END_TEST

START_TEST(test_address_loopback_tokens_do_not_count_toward_limit)
{
	struct options o;
	char list[512];

	make_extras(list, sizeof(list), 13);
	strcat(list, ",127.0.0.1,::1,127.0.0.1");
	ck_assert_int_eq(PARSE(&o, "-address", list), OPTIONS_OK);
	ck_assert_uint_eq(o.naddrs, 15);
}
END_TEST

START_TEST(test_address_token_is_parsed_before_the_limit_check)
{
	struct options o;
	char list[512];

	make_extras(list, sizeof(list), 13);
	strcat(list, ",bad");
	ck_assert_int_eq(PARSE(&o, "-address", list), OPTIONS_FATAL);
	ck_assert_str_eq(o.error, "cannot parse IP address \"bad\"");
}
END_TEST

START_TEST(test_address_last_flag_wins)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-address", "bad", "-address", "127.0.0.4"),
	    OPTIONS_OK);
	ck_assert_uint_eq(o.naddrs, 3);
	ck_assert_str_eq(addr_str(&o, 2), "127.0.0.4");
}
END_TEST

START_TEST(test_address_ignored_under_systemd)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-systemd", "-address", "localhost"),
	    OPTIONS_OK);
	ck_assert_uint_eq(o.naddrs, 0);
}
END_TEST

START_TEST(test_parse_addresses_directly)
{
	struct options o;

	memset(&o, 0, sizeof(o));
	ck_assert_int_eq(options_parse_addresses(&o, "::1, 192.0.2.1"),
	    OPTIONS_OK);
	ck_assert_uint_eq(o.naddrs, 3);
	ck_assert_str_eq(addr_str(&o, 0), "127.0.0.1");
	ck_assert(o.addrs[0].implicit);
	ck_assert_str_eq(addr_str(&o, 1), "::1");
	ck_assert(!o.addrs[1].implicit);
	ck_assert_str_eq(addr_str(&o, 2), "192.0.2.1");

	memset(&o, 0, sizeof(o));
	ck_assert_int_eq(options_parse_addresses(&o, ""), OPTIONS_OK);
	ck_assert_uint_eq(o.naddrs, 0);
}
END_TEST

/* Access lists */

/* An access list written back as text. */
static const char *
acl_str(const struct addrfilt *f)
{
	static char buf[256];

	return addrfilt_format(f, buf, sizeof(buf));
}

START_TEST(test_access_lists_default_to_the_reference)
{
	struct options o;

	ck_assert_int_eq(PARSE0(&o), OPTIONS_OK);
	ck_assert_str_eq(acl_str(&o.names_from), "any");
	ck_assert_str_eq(acl_str(&o.lookup_from), "any");
	ck_assert_str_eq(acl_str(&o.register_from), "none");
}
END_TEST

START_TEST(test_names_from_sets_only_the_names_list)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-names_from", "198.51.100.0/24,local"),
	    OPTIONS_OK);
	ck_assert_str_eq(acl_str(&o.names_from), "198.51.100.0/24, local");
	ck_assert_str_eq(acl_str(&o.lookup_from), "any");
	ck_assert_str_eq(acl_str(&o.register_from), "none");
}
END_TEST

START_TEST(test_lookup_from_sets_only_the_lookup_list)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-lookup_from", "2001:db8::/32 none2"),
	    OPTIONS_FATAL);
	ck_assert_int_eq(PARSE(&o, "-lookup_from", "2001:db8::/32"),
	    OPTIONS_OK);
	ck_assert_str_eq(acl_str(&o.lookup_from), "2001:db8::/32");
	ck_assert_str_eq(acl_str(&o.names_from), "any");
}
END_TEST

START_TEST(test_register_from_sets_only_the_register_list)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-register_from", "172.17.0.0/16"),
	    OPTIONS_OK);
	ck_assert_str_eq(acl_str(&o.register_from), "172.17.0.0/16");
	ck_assert_str_eq(acl_str(&o.names_from), "any");
	ck_assert_str_eq(acl_str(&o.lookup_from), "any");
}
END_TEST

START_TEST(test_access_list_bad_item_is_fatal_naming_flag_and_item)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-names_from", "10.0.0.0/33"),
	    OPTIONS_FATAL);
	ck_assert_str_eq(o.error, "-names_from: bad item \"10.0.0.0/33\": "
	    "the prefix length must be 0 to 32");
	ck_assert_int_eq(PARSE(&o, "-register_from", "local,,any"),
	    OPTIONS_FATAL);
	ck_assert_str_eq(o.error, "-register_from: empty item after "
	    "\"local\"");
}
END_TEST

START_TEST(test_access_list_missing_argument_is_usage)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-names_from"), OPTIONS_USAGE);
	ck_assert_int_eq(PARSE(&o, "-lookup_from"), OPTIONS_USAGE);
	ck_assert_int_eq(PARSE(&o, "-register_from"), OPTIONS_USAGE);
}
END_TEST

START_TEST(test_access_list_last_flag_wins)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-names_from", "none", "-names_from",
	    "local"), OPTIONS_OK);
	ck_assert_str_eq(acl_str(&o.names_from), "local");
}
END_TEST

START_TEST(test_access_lists_have_no_environment_variable)
{
	struct options o;

	/* OTP has none; the units pass them as flags. */
	setenv("ERL_EPMD_NAMES_FROM", "none", 1);
	ck_assert_int_eq(PARSE0(&o), OPTIONS_OK);
	ck_assert_str_eq(acl_str(&o.names_from), "any");
	unsetenv("ERL_EPMD_NAMES_FROM");
}
END_TEST

START_TEST(test_address_source_is_recorded_for_systemd_warning)
{
	struct options o;

	ck_assert_int_eq(PARSE(&o, "-systemd"), OPTIONS_OK);
	ck_assert_ptr_null(o.address_list);
	setenv("ERL_EPMD_ADDRESS", "127.0.0.1", 1);
	ck_assert_int_eq(PARSE(&o, "-systemd"), OPTIONS_OK);
	ck_assert_str_eq(o.address_list, "127.0.0.1");
	ck_assert_str_eq(o.address_from, "ERL_EPMD_ADDRESS");
	ck_assert_int_eq(PARSE(&o, "-systemd", "-address", "::1"), OPTIONS_OK);
	ck_assert_str_eq(o.address_list, "::1");
	ck_assert_str_eq(o.address_from, "-address");
	ck_assert_uint_eq(o.naddrs, 0);
}
END_TEST

/* Usage */

START_TEST(test_usage_first_line_matches_reference)
{
	const char *u = options_usage();
	const char *first = "usage: epmd [-d|-debug] [DbgExtra...] "
	    "[-address List]\n";

	ck_assert(strncmp(u, first, strlen(first)) == 0);
}
END_TEST

START_TEST(test_usage_mentions_every_flag)
{
	const char *flags[] = { "-d", "-debug", "-address", "-port",
	    "-daemon", "-relaxed_command_check", "-systemd",
	    "-max_conns_per_peer", "-packet_timeout", "-delay_accept",
	    "-delay_write", "-names", "-dump", "-started", "-kill", "-stop",
	    "-names_from", "-lookup_from", "-register_from",
	    "-client_timeout", "-max_conns_per_prefix", "-peer_prefix4",
	    "-peer_prefix6", "-max_remote_conns", "-request_deadline" };
	const char *u = options_usage();
	size_t i;

	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		ck_assert_msg(strstr(u, flags[i]) != NULL, "missing %s",
		    flags[i]);
}
END_TEST

/* The options suite, run by check_main.c. */
Suite *
unit_suite(void)
{
	Suite	*s = suite_create("options");
	TCase	*tc;

	tc = tcase_create("defaults_env");
	tcase_add_checked_fixture(tc, clear_env, NULL);
	tcase_add_test(tc, test_defaults_without_arguments);
	tcase_add_test(tc, test_env_port_is_used);
	tcase_add_test(tc, test_env_port_garbage_is_zero);
	tcase_add_test(tc, test_env_port_empty_is_zero);
	tcase_add_test(tc, test_env_port_takes_leading_number_like_atoi);
	tcase_add_test(tc, test_port_flag_overrides_env_port);
	tcase_add_test(tc, test_env_relaxed_set_to_empty_is_relaxed);
	tcase_add_test(tc, test_env_relaxed_set_to_anything_is_relaxed);
	tcase_add_test(tc, test_env_address_is_used);
	tcase_add_test(tc,
	    test_env_address_empty_or_separators_means_all_interfaces);
	tcase_add_test(tc, test_env_address_bad_is_fatal_for_the_daemon);
	tcase_add_test(tc, test_env_address_bad_is_ignored_by_client_commands);
	tcase_add_test(tc, test_address_flag_overrides_env_address);
	suite_add_tcase(s, tc);

	tc = tcase_create("flags");
	tcase_add_checked_fixture(tc, clear_env, NULL);
	tcase_add_test(tc, test_debug_flags_count);
	tcase_add_test(tc, test_boolean_flags);
	tcase_add_test(tc, test_port_flag);
	tcase_add_test(tc, test_port_negative_is_accepted);
	tcase_add_test(tc, test_port_above_16_bits_is_kept_whole);
	tcase_add_test(tc, test_port_zero_is_usage);
	tcase_add_test(tc, test_port_not_numeric_is_usage);
	tcase_add_test(tc, test_port_out_of_32_bit_range_is_usage);
	tcase_add_test(tc, test_port_missing_argument_is_usage);
	tcase_add_test(tc, test_packet_timeout_flag);
	tcase_add_test(tc, test_packet_timeout_zero_is_usage);
	tcase_add_test(tc, test_packet_timeout_not_numeric_is_usage);
	tcase_add_test(tc, test_packet_timeout_negative_is_usage);
	tcase_add_test(tc, test_packet_timeout_missing_argument_is_usage);
	tcase_add_test(tc, test_delay_flags);
	tcase_add_test(tc, test_delay_accept_zero_is_usage);
	tcase_add_test(tc, test_delay_write_zero_is_usage);
	tcase_add_test(tc, test_max_conns_per_peer_flag);
	tcase_add_test(tc, test_max_conns_per_peer_zero_means_no_cap);
	tcase_add_test(tc, test_max_conns_per_peer_bad_is_usage);
	tcase_add_test(tc, test_client_timeout_defaults_to_10_s);
	tcase_add_test(tc, test_client_timeout_flag_before_command);
	tcase_add_test(tc, test_client_timeout_bad_is_usage);
	tcase_add_test(tc, test_help_flags_are_usage);
	tcase_add_test(tc, test_unknown_flag_is_usage);
	tcase_add_test(tc, test_address_missing_argument_is_usage);
	suite_add_tcase(s, tc);

	tc = tcase_create("client_commands");
	tcase_add_checked_fixture(tc, clear_env, NULL);
	tcase_add_test(tc, test_client_commands_when_last);
	tcase_add_test(tc, test_flags_before_client_command_apply);
	tcase_add_test(tc, test_names_not_last_is_usage);
	tcase_add_test(tc, test_kill_not_last_is_usage);
	tcase_add_test(tc, test_dump_not_last_is_usage);
	tcase_add_test(tc, test_started_not_last_is_usage);
	tcase_add_test(tc, test_stop_takes_the_last_argument_as_name);
	tcase_add_test(tc, test_stop_name_may_look_like_a_flag);
	tcase_add_test(tc, test_stop_without_name_is_usage);
	tcase_add_test(tc, test_stop_with_two_names_is_usage);
	tcase_add_test(tc, test_client_command_with_bad_port_before_is_usage);
	suite_add_tcase(s, tc);

	tc = tcase_create("addresses");
	tcase_add_checked_fixture(tc, clear_env, NULL);
	tcase_add_test(tc, test_address_loopback_v4_gives_both_loopbacks);
	tcase_add_test(tc, test_address_both_loopbacks_are_not_duplicated);
	tcase_add_test(tc, test_address_loopback_compared_as_address_not_text);
	tcase_add_test(tc, test_address_other_127_is_added_after_loopbacks);
	tcase_add_test(tc, test_address_separators_and_empty_tokens_skipped);
	tcase_add_test(tc, test_address_spaces_separate_tokens);
	tcase_add_test(tc, test_address_only_separators_means_all_interfaces);
	tcase_add_test(tc, test_address_hostname_is_fatal);
	tcase_add_test(tc, test_address_short_ipv4_form_is_fatal);
	tcase_add_test(tc, test_address_brackets_are_fatal);
	tcase_add_test(tc, test_address_tab_is_not_a_separator);
	tcase_add_test(tc, test_address_bad_token_after_good_ones_is_fatal);
	tcase_add_test(tc, test_address_long_bad_token_error_is_bounded);
	tcase_add_test(tc, test_address_mapped_ipv4_parses_as_ipv6);
	tcase_add_test(tc, test_address_duplicates_are_kept);
	tcase_add_test(tc, test_address_13_extras_give_15_listeners);
	tcase_add_test(tc, test_address_14_extras_are_fatal);
	tcase_add_test(tc,
	    test_address_loopback_tokens_do_not_count_toward_limit);
	tcase_add_test(tc, test_address_token_is_parsed_before_the_limit_check);
	tcase_add_test(tc, test_address_last_flag_wins);
	tcase_add_test(tc, test_address_ignored_under_systemd);
	tcase_add_test(tc, test_parse_addresses_directly);
	suite_add_tcase(s, tc);

	tc = tcase_create("access");
	tcase_add_checked_fixture(tc, clear_env, NULL);
	tcase_add_test(tc, test_access_lists_default_to_the_reference);
	tcase_add_test(tc, test_names_from_sets_only_the_names_list);
	tcase_add_test(tc, test_lookup_from_sets_only_the_lookup_list);
	tcase_add_test(tc, test_register_from_sets_only_the_register_list);
	tcase_add_test(tc,
	    test_access_list_bad_item_is_fatal_naming_flag_and_item);
	tcase_add_test(tc, test_access_list_missing_argument_is_usage);
	tcase_add_test(tc, test_access_list_last_flag_wins);
	tcase_add_test(tc, test_access_lists_have_no_environment_variable);
	tcase_add_test(tc, test_address_source_is_recorded_for_systemd_warning);
	suite_add_tcase(s, tc);

	tc = tcase_create("usage");
	tcase_add_test(tc, test_usage_first_line_matches_reference);
	tcase_add_test(tc, test_usage_mentions_every_flag);
	tcase_add_test(tc, test_remote_caps_default_to_a_24_and_a_64);
	tcase_add_test(tc, test_remote_cap_flags);
	tcase_add_test(tc, test_prefix_longer_than_the_family_is_usage);
	suite_add_tcase(s, tc);

	return s;
}
