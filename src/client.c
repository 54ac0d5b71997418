/*
 * The command-line client: -names, -dump, -kill, -stop, -started
 * (PROTOCOL.md 4.5). One blocking connection to the local daemon, one
 * request, then the reply printed with the reference's exact texts and exit
 * codes. Scripts parse these texts, so they must not change.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "epmd.h"
#include "metrics_http.h"
#include "options.h"
#include "peer.h"
#include "proto.h"
#include "stats.h"

/* Longest name -stop sends; the reference refuses longer ones. */
#define CLIENT_STOP_NAME_MAX	1000
/* Seconds -stats waits for the metrics endpoint. */
#define CLIENT_STATS_TIMEOUT	5

#define MSG_NO_CONNECT	"epmd: Cannot connect to local epmd\n"
#define MSG_NO_RESPONSE	"epmd: no response from local epmd\n"
#define MSG_READ_FAIL	"epmd: failed to read answer from local epmd\n"
#define MSG_WRITE_FAIL	"epmd: Can't write to epmd\n"
#define MSG_EMPTY_REPLY	"epmd: local epmd responded with <>\n"
#define MSG_KILLED	"Killed\n"
#define MSG_KILL_DENIED	"Killing not allowed - living nodes in database.\n"
#define MSG_NAME_LONG	"epmd: Name too long!"

/* Connect to one loopback address; returns the socket or -1. */
static int
connect_to(const struct sockaddr *sa, socklen_t len)
{
	int	 fd;

	if ((fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	while (connect(fd, sa, len) == -1) {
		if (errno == EINTR)
			continue;
		close(fd);
		return -1;
	}
	return fd;
}

/* Connect to the daemon on [::1]:port, falling back to 127.0.0.1:port. */
static int
connect_local(uint16_t port)
{
	struct sockaddr_in6	 sin6;
	struct sockaddr_in	 sin;
	int			 fd;

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(port);
	sin6.sin6_addr = in6addr_loopback;
	if ((fd = connect_to((struct sockaddr *)&sin6, sizeof(sin6))) != -1)
		return fd;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return connect_to((struct sockaddr *)&sin, sizeof(sin));
}

/* Send the whole request in one write; false if it did not all go. */
static bool
send_request(int fd, const uint8_t *req, size_t len)
{
	ssize_t	 n;

	do {
		n = send(fd, req, len, MSG_NOSIGNAL);
	} while (n == -1 && errno == EINTR);
	return n >= 0 && (size_t)n == len;
}

/* Read until want bytes, EOF or an error; returns the count or -1. */
static ssize_t
read_upto(int fd, uint8_t *buf, size_t want)
{
	size_t	 got = 0;
	ssize_t	 n;

	while (got < want) {
		n = read(fd, buf + got, want - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Write raw reply bytes (they may hold NULs) to stdout. */
static void
put_raw(const uint8_t *buf, size_t len)
{
	if (len > 0)
		fwrite(buf, 1, len, stdout);
}

/* Print a message on stdout and return the exit status given. */
static int
say(const char *msg, int status)
{
	fputs(msg, stdout);
	fflush(stdout);
	return status;
}

/* Copy the rest of the reply to stdout until EOF or an error. */
static void
copy_body(int fd)
{
	uint8_t	 buf[4096];
	ssize_t	 n;

	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		put_raw(buf, (size_t)n);
	}
}

/* The 4-byte port header as the signed 32-bit number the reference prints. */
static long long
port_header_value(const uint8_t *hdr)
{
	uint32_t	 u;

	u = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
	    (uint32_t)hdr[2] << 8 | (uint32_t)hdr[3];
	if (u > INT32_MAX)
		return (long long)u - 0x100000000LL;
	return (long long)u;
}

/* NAMES or DUMP: print the header line and the raw body; quiet: -started. */
static int
run_listing(int fd, uint8_t code, bool quiet)
{
	uint8_t	 req[8], hdr[PROTO_PORT_HEADER_LEN];
	ssize_t	 n;

	if (!send_request(fd, req, proto_encode_simple_req(req, code)))
		return quiet ? 1 : say(MSG_WRITE_FAIL, 1);
	/* A read error before the header counts as no response at all. */
	n = read_upto(fd, hdr, sizeof(hdr));
	if (n < (ssize_t)sizeof(hdr))
		return quiet ? 1 : say(MSG_NO_RESPONSE, 1);
	if (quiet)
		return 0;
	printf("epmd: up and running on port %lld with data:\n",
	    port_header_value(hdr));
	copy_body(fd);
	fflush(stdout);
	return 0;
}

/* Send a request, read a fixed-size reply; on failure say why, false. */
static bool
exchange(int fd, const uint8_t *req, size_t reqlen, uint8_t *reply,
    size_t len)
{
	ssize_t n;

	if (reqlen == 0 || !send_request(fd, req, reqlen))
		return say(MSG_WRITE_FAIL, 1) == 0;
	n = read_upto(fd, reply, len);
	if (n == -1)
		return say(MSG_READ_FAIL, 1) == 0;
	if (n < (ssize_t)len)
		return say(MSG_EMPTY_REPLY, 1) == 0;
	return true;
}

/* KILL: "OK" means the daemon is exiting; anything else is a refusal. */
static int
run_kill(int fd)
{
	uint8_t	 req[8], reply[PROTO_KILL_RESP_LEN];

	if (!exchange(fd, req, proto_encode_simple_req(req, EPMD_KILL_REQ),
	    reply, sizeof(reply)))
		return 1;
	if (proto_kill_resp_ok(reply))
		return say(MSG_KILLED, 0);
	return say(MSG_KILL_DENIED, 1);
}

/* STOP: print the first 7 reply bytes, STOPPED or NOEXIST, as they came. */
static int
run_stop(int fd, const char *name, size_t len)
{
	uint8_t	 req[3 + CLIENT_STOP_NAME_MAX], reply[PROTO_STOP_RESP_LEN];

	if (!exchange(fd, req, proto_encode_stop_req(req, name, len), reply,
	    sizeof(reply)))
		return 1;
	put_raw(reply, sizeof(reply));
	return say("\n", 0);
}

/* -stats: read the metrics endpoint and print its figures for a person. */
static int
run_stats(const struct options *opts)
{
	const struct sockaddr	*sa = (const struct sockaddr *)&opts->metrics_addr.ss;
	char			 from[PEER_ADDRSTRLEN], err[128], *body;
	struct stats		 st;

	peer_format(sa, from, sizeof(from));
	if (!metrics_http_fetch(sa, opts->metrics_addr.len,
	    CLIENT_STATS_TIMEOUT, &body, err, sizeof(err))) {
		fprintf(stderr, "epmd-c: cannot read metrics from %s: %s\n",
		    from, err);
		return 1;
	}
	stats_parse(body, &st);
	free(body);
	if (st.nsamples == 0) {
		fprintf(stderr, "epmd-c: %s serves no epmd-c metrics\n", from);
		return 1;
	}
	stats_print(stdout, &st, from, (double)time(NULL));
	fflush(stdout);
	return 0;
}

/* Run the client command in opts; returns the process exit status. */
int
client_run(const struct options *opts)
{
	const char	*name = opts->stop_name != NULL ? opts->stop_name : "";
	size_t		 len = strlen(name);
	bool		 quiet = opts->command == CMD_STARTED;
	int		 fd, status;

	/* Not an epmd request: it goes to the metrics endpoint. */
	if (opts->command == CMD_STATS)
		return run_stats(opts);
	/* Checked before connecting, as the reference does. */
	if (opts->command == CMD_STOP && len > CLIENT_STOP_NAME_MAX)
		return say(MSG_NAME_LONG, 1);

	/* -port keeps the whole number; the socket gets its low 16 bits. */
	if ((fd = connect_local((uint16_t)opts->port)) == -1) {
		if (!quiet) {
			fputs(MSG_NO_CONNECT, stderr);
			fflush(stderr);
		}
		return 1;
	}

	switch (opts->command) {
	case CMD_NAMES:
		status = run_listing(fd, EPMD_NAMES_REQ, false);
		break;
	case CMD_DUMP:
		status = run_listing(fd, EPMD_DUMP_REQ, false);
		break;
	case CMD_STARTED:
		status = run_listing(fd, EPMD_NAMES_REQ, true);
		break;
	case CMD_KILL:
		status = run_kill(fd);
		break;
	case CMD_STOP:
		status = run_stop(fd, name, len);
		break;
	default:
		status = 1;	/* CMD_SERVE is not a client command */
		break;
	}
	close(fd);
	return status;
}
