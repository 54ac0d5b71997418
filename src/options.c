/*
 * Command line and environment into one struct options (PROTOCOL.md 4.1,
 * 4.3, 4.4). Nothing here opens a socket; the listen addresses are parsed
 * into sockaddrs with port 0 and the server fills in the port.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "epmd.h"
#include "listenlist.h"
#include "options.h"

/* Longest token that can be an address (-metrics); longer ones cannot parse. */
#define ADDR_TOKEN_MAX		64

static const char usage_text[] =
"usage: epmd [-d|-debug] [DbgExtra...] [-address List]\n"
"            [-port No] [-daemon] [-relaxed_command_check] [-systemd]\n"
"            [-max_conns_per_peer N] [-max_conns_per_prefix N]\n"
"            [-peer_prefix4 Bits] [-peer_prefix6 Bits] [-max_remote_conns N]\n"
"            [-request_deadline Sec] [-metrics Addr:Port]\n"
"            [-names_from List] [-lookup_from List] [-register_from List]\n"
"       epmd [-d|-debug] [-port No] [-client_timeout Sec]\n"
"            [-names|-dump|-started|-kill|-stop Name]\n"
"       epmd -metrics Addr:Port -stats\n"
"\n"
"epmd-c: the Erlang port mapper daemon, and a client to query it.\n"
"Without a client command it serves; client commands must come last.\n"
"\n"
"Serving:\n"
"  -address List        listen only on these IP addresses (separated by\n"
"                       commas or spaces); 127.0.0.1 and ::1 are added\n"
"                       unless the list has them or 0.0.0.0 / ::.\n"
"                       Default: every interface.\n"
"  -port No             TCP port to serve or to query (default 4369, or\n"
"                       $ERL_EPMD_PORT)\n"
"  -d, -debug           log more to stderr; give it again for more detail.\n"
"                       Also keeps only 5 unregistered names for reuse.\n"
"  -daemon              detach from the terminal and log to syslog\n"
"  -relaxed_command_check\n"
"                       let -kill succeed while nodes are registered, and\n"
"                       honour -stop (also $ERL_EPMD_RELAXED_COMMAND_CHECK)\n"
"  -systemd             take the listening sockets from systemd socket\n"
"                       activation instead of opening them\n"
"  -max_conns_per_peer N\n"
"                       at most N connections that are not registered nodes\n"
"                       from one peer address at a time (0: no limit)\n"
"  -max_conns_per_prefix N\n"
"                       the same per network prefix (default 1024)\n"
"  -peer_prefix4 Bits, -peer_prefix6 Bits\n"
"                       the prefix lengths it counts by (default 24, 64)\n"
"  -max_remote_conns N  at most N such connections from all non-loopback\n"
"                       peers together (default: half the descriptor limit)\n"
"  -request_deadline Sec\n"
"                       a non-loopback peer's request and reply must be\n"
"                       done within Sec seconds, however it trickles\n"
"                       (default 10; 0: only -packet_timeout)\n"
"  -metrics Addr:Port   serve Prometheus metrics at http://Addr:Port/metrics\n"
"                       (127.0.0.1:9369, [::1]:9369); off by default\n"
"  -names_from List     who may list the nodes (NAMES); default any\n"
"  -lookup_from List    who may look a node up (PORT_PLEASE2); default any\n"
"  -register_from List  which non-local peers may register nodes; default\n"
"                       none. A List has addresses, prefixes (10.0.0.0/8,\n"
"                       fd00::/8), local, any or none. Local peers may\n"
"                       always do everything; -dump, -kill and -stop stay\n"
"                       local-only.\n"
"\n"
"DbgExtra (testing aids):\n"
"  -packet_timeout Sec  close a connection that stays silent this long\n"
"                       (default 60)\n"
"  -delay_accept Sec    wait this long before each accept, as a busy\n"
"                       server would\n"
"  -delay_write Sec     wait this long before each reply\n"
"\n"
"Client commands (talk to the epmd on -port of this host):\n"
"  -names               list the registered nodes and their ports\n"
"  -dump                dump the node table, unregistered names included\n"
"  -started             exit 0 if an epmd answers, 1 if not; prints nothing\n"
"  -kill                ask epmd to exit (refused while nodes are\n"
"                       registered, unless it runs relaxed)\n"
"  -stop Name           unregister Name by force (relaxed epmd only)\n"
"  -client_timeout Sec  give up on an epmd that has not connected and\n"
"                       answered in full within Sec seconds (default 10;\n"
"                       0: wait for ever); put it before the command\n"
"  -stats               print the figures of the metrics endpoint given\n"
"                       with -metrics, for a person\n";

/* The usage text, printed to stderr on a usage error. */
const char *
options_usage(void)
{
	return usage_text;
}

/* Parse a whole decimal string into *out if it lies in [min, max]. */
static bool
parse_long(const char *s, long min, long max, long *out)
{
	char	*end;
	long	 v;

	if (s == NULL || *s == '\0')
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* A leading decimal number as atoi reads it; garbage or overflow is 0. */
static long
parse_lenient(const char *s)
{
	long	 v;

	errno = 0;
	v = strtol(s, NULL, 10);
	if (errno != 0 || v < INT_MIN || v > INT_MAX)
		return 0;
	return v;
}

/* Parse a positive seconds value for -packet_timeout and the delays. */
static bool
parse_seconds(const char *s, int *out)
{
	long	 v;

	if (!parse_long(s, 1, INT_MAX, &v))
		return false;
	*out = (int)v;
	return true;
}

/* Parse an -address list into opts's listen list (see listenlist.h). */
enum options_status
options_parse_addresses(struct options *opts, const char *list)
{
	if (!listenlist_build(list, opts->addrs, &opts->naddrs, opts->error,
	    sizeof(opts->error)))
		return OPTIONS_FATAL;
	return OPTIONS_OK;
}

/* Parse "a.b.c.d:port" or "[v6]:port" for -metrics; false if invalid. */
bool
options_parse_hostport(const char *s, struct listen_addr *out)
{
	char			 host[ADDR_TOKEN_MAX];
	const char		*colon, *h = s;
	size_t			 hlen;
	long			 port;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&out->ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&out->ss;

	memset(out, 0, sizeof(*out));
	if (s == NULL || (colon = strrchr(s, ':')) == NULL)
		return false;
	hlen = (size_t)(colon - s);
	if (*s == '[') {
		/* Brackets around IPv6, and nothing between "]" and ":". */
		if (hlen < 2 || s[hlen - 1] != ']')
			return false;
		h = s + 1;
		hlen -= 2;
	}
	/* strtol would skip blanks and take a sign: digits only. */
	if (hlen == 0 || hlen >= sizeof(host) || colon[1] < '0' ||
	    colon[1] > '9' || !parse_long(colon + 1, 1, 65535, &port))
		return false;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (h != s && inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		out->len = sizeof(*sin6);
		return true;
	}
	if (h == s && inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		out->len = sizeof(*sin);
		return true;
	}
	return false;
}

/* Reset opts to the built-in defaults. */
static void
set_defaults(struct options *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->command = CMD_SERVE;
	opts->port = EPMD_PORT_DEFAULT;
	opts->packet_timeout = EPMD_PACKET_TIMEOUT;
	opts->max_conns_per_peer = OPTIONS_DEFAULT_MAX_PER_PEER;
	opts->max_conns_per_prefix = OPTIONS_DEFAULT_MAX_PER_PREFIX;
	opts->peer_prefix4 = OPTIONS_DEFAULT_PREFIX4;
	opts->peer_prefix6 = OPTIONS_DEFAULT_PREFIX6;
	opts->max_remote_conns = OPTIONS_REMOTE_AUTO;
	opts->request_deadline = OPTIONS_DEFAULT_DEADLINE;
	opts->client_timeout = OPTIONS_DEFAULT_CLIENT_TIMEOUT;
	/* The reference: anyone may list and look up, only locals register. */
	addrfilt_set(&opts->names_from, ADDRFILT_ANY);
	addrfilt_set(&opts->lookup_from, ADDRFILT_ANY);
	addrfilt_set(&opts->register_from, ADDRFILT_NONE);
}

/* Parse the access list of flag into f; a bad item is fatal. */
static enum options_status
parse_access_list(struct options *opts, const char *flag, const char *val,
    struct addrfilt *f)
{
	char	 err[ADDRFILT_ERRLEN];

	if (val == NULL)
		return OPTIONS_USAGE;
	if (!addrfilt_parse(f, val, err, sizeof(err))) {
		snprintf(opts->error, sizeof(opts->error), "%s: %s", flag, err);
		return OPTIONS_FATAL;
	}
	return OPTIONS_OK;
}

/* The access list a flag sets, or NULL if arg is no such flag. */
static struct addrfilt *
access_list_of(struct options *opts, const char *arg)
{
	if (strcmp(arg, "-names_from") == 0)
		return &opts->names_from;
	if (strcmp(arg, "-lookup_from") == 0)
		return &opts->lookup_from;
	if (strcmp(arg, "-register_from") == 0)
		return &opts->register_from;
	return NULL;
}

/* Apply the ERL_EPMD_* variables; returns the address list, if any. */
static const char *
read_environment(struct options *opts)
{
	const char	*s;

	if ((s = getenv("ERL_EPMD_PORT")) != NULL)
		opts->port = parse_lenient(s);
	/* Set to anything, the empty string included, means relaxed. */
	if (getenv("ERL_EPMD_RELAXED_COMMAND_CHECK") != NULL)
		opts->relaxed = true;
	return getenv("ERL_EPMD_ADDRESS");
}

/* A client command taking no argument; it must be the last argument. */
static enum options_status
client_command(struct options *opts, enum options_command cmd, int left)
{
	if (left != 1)
		return OPTIONS_USAGE;
	opts->command = cmd;
	return OPTIONS_OK;
}

/* Fill opts from the environment, then argv, left to right. */
enum options_status
options_parse(struct options *opts, int argc, char *const argv[])
{
	const char		*arg, *val, *addresses;
	struct addrfilt		*acl;
	enum options_status	 st;
	long			 v;
	int			 i, left;

	set_defaults(opts);
	addresses = read_environment(opts);
	if (addresses != NULL)
		opts->address_from = "ERL_EPMD_ADDRESS";

	for (i = 1; i < argc; i++) {
		arg = argv[i];
		left = argc - i;	/* this argument and those after it */
		val = left > 1 ? argv[i + 1] : NULL;

		if (strcmp(arg, "-d") == 0 || strcmp(arg, "-debug") == 0) {
			opts->debug++;
		} else if (strcmp(arg, "-port") == 0) {
			if (!parse_long(val, INT_MIN, INT_MAX, &v) || v == 0)
				return OPTIONS_USAGE;
			opts->port = v;
			i++;
		} else if (strcmp(arg, "-address") == 0) {
			if (val == NULL)
				return OPTIONS_USAGE;
			addresses = val;
			opts->address_from = "-address";
			i++;
		} else if (strcmp(arg, "-daemon") == 0) {
			opts->daemon = true;
		} else if (strcmp(arg, "-relaxed_command_check") == 0) {
			opts->relaxed = true;
		} else if (strcmp(arg, "-systemd") == 0) {
			opts->systemd = true;
		} else if (strcmp(arg, "-packet_timeout") == 0) {
			if (!parse_seconds(val, &opts->packet_timeout))
				return OPTIONS_USAGE;
			i++;
		} else if (strcmp(arg, "-delay_accept") == 0) {
			if (!parse_seconds(val, &opts->delay_accept))
				return OPTIONS_USAGE;
			i++;
		} else if (strcmp(arg, "-delay_write") == 0) {
			if (!parse_seconds(val, &opts->delay_write))
				return OPTIONS_USAGE;
			i++;
		} else if (strcmp(arg, "-max_conns_per_peer") == 0) {
			if (!parse_long(val, 0, INT_MAX, &v))
				return OPTIONS_USAGE;
			opts->max_conns_per_peer = (int)v;
			i++;
		} else if (strcmp(arg, "-max_conns_per_prefix") == 0) {
			if (!parse_long(val, 0, INT_MAX, &v))
				return OPTIONS_USAGE;
			opts->max_conns_per_prefix = (int)v;
			i++;
		} else if (strcmp(arg, "-peer_prefix4") == 0) {
			if (!parse_long(val, 0, 32, &v))
				return OPTIONS_USAGE;
			opts->peer_prefix4 = (int)v;
			i++;
		} else if (strcmp(arg, "-peer_prefix6") == 0) {
			if (!parse_long(val, 0, 128, &v))
				return OPTIONS_USAGE;
			opts->peer_prefix6 = (int)v;
			i++;
		} else if (strcmp(arg, "-max_remote_conns") == 0) {
			if (!parse_long(val, 0, LONG_MAX, &v))
				return OPTIONS_USAGE;
			opts->max_remote_conns = v;
			i++;
		} else if (strcmp(arg, "-request_deadline") == 0) {
			if (!parse_long(val, 0, INT_MAX, &v))
				return OPTIONS_USAGE;
			opts->request_deadline = (int)v;
			i++;
		} else if (strcmp(arg, "-client_timeout") == 0) {
			if (!parse_long(val, 0, INT_MAX, &v))
				return OPTIONS_USAGE;
			opts->client_timeout = (int)v;
			i++;
		} else if (strcmp(arg, "-metrics") == 0) {
			if (!options_parse_hostport(val, &opts->metrics_addr)) {
				snprintf(opts->error, sizeof(opts->error),
				    "-metrics wants ADDR:PORT, such as "
				    "127.0.0.1:9369 or [::1]:9369");
				return val == NULL ? OPTIONS_USAGE :
				    OPTIONS_FATAL;
			}
			opts->metrics = true;
			i++;
		} else if (strcmp(arg, "-stats") == 0) {
			if (left == 1 && !opts->metrics) {
				snprintf(opts->error, sizeof(opts->error),
				    "-stats reads the metrics endpoint: give "
				    "-metrics ADDR:PORT before it");
				return OPTIONS_FATAL;
			}
			return client_command(opts, CMD_STATS, left);
		} else if ((acl = access_list_of(opts, arg)) != NULL) {
			if ((st = parse_access_list(opts, arg, val, acl)) !=
			    OPTIONS_OK)
				return st;
			i++;
		} else if (strcmp(arg, "-names") == 0) {
			return client_command(opts, CMD_NAMES, left);
		} else if (strcmp(arg, "-dump") == 0) {
			return client_command(opts, CMD_DUMP, left);
		} else if (strcmp(arg, "-kill") == 0) {
			return client_command(opts, CMD_KILL, left);
		} else if (strcmp(arg, "-started") == 0) {
			return client_command(opts, CMD_STARTED, left);
		} else if (strcmp(arg, "-stop") == 0) {
			if (left != 2)
				return OPTIONS_USAGE;
			opts->command = CMD_STOP;
			opts->stop_name = val;
			return OPTIONS_OK;
		} else
			return OPTIONS_USAGE;
	}

	/*
	 * Only a daemon that opens its own sockets reads the address list, as
	 * in the reference: a bad ERL_EPMD_ADDRESS must not break the client
	 * commands, and -systemd ignores -address.
	 */
	opts->address_list = addresses;
	if (addresses != NULL && !opts->systemd)
		return options_parse_addresses(opts, addresses);
	return OPTIONS_OK;
}
