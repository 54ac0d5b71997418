/*
 * The command-line client: -names, -dump, -kill, -stop, -started
 * (PROTOCOL.md 4.5). One blocking connection to the local daemon, one
 * request, then the reply printed with the reference's exact texts and exit
 * codes. Scripts parse these texts, so they must not change.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
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

/* What a read or a connect came to when it could not finish. */
#define CLIENT_ERROR		(-1)
#define CLIENT_TIMED_OUT	(-2)

/*
 * One client command's run: the deadline that covers connecting and the
 * whole answer, where it connected, and how stdout shows reply bytes.
 */
struct client {
	int			 timeout;	/* seconds; 0: no deadline */
	struct timespec		 deadline;	/* CLOCK_MONOTONIC */
	struct sockaddr_storage	 addr;		/* the daemon tried last */
	bool			 tty;		/* stdout is a terminal */
	bool			 after_newline;	/* last byte shown was \n */
	uint8_t			 pend[4];	/* a UTF-8 sequence so far */
	size_t			 npend, need;
};

/* Start the deadline: timeout seconds from now, or none for 0. */
static void
deadline_start(struct client *cl, int timeout)
{
	cl->timeout = timeout;
	clock_gettime(CLOCK_MONOTONIC, &cl->deadline);
	cl->deadline.tv_sec += timeout;
}

/* Milliseconds left before the deadline, 0 if past, -1 with no deadline. */
static int
deadline_left_ms(const struct client *cl)
{
	struct timespec	 now;
	long long	 ms;

	if (cl->timeout == 0)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)(cl->deadline.tv_sec - now.tv_sec) * 1000 +
	    (cl->deadline.tv_nsec - now.tv_nsec) / 1000000;
	if (ms <= 0)
		return 0;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* Wait until fd has events or the deadline passes: 1, 0 (late) or -1. */
static int
wait_for(const struct client *cl, int fd, short events)
{
	struct pollfd	 p;
	int		 n, left;

	for (;;) {
		if ((left = deadline_left_ms(cl)) == 0)
			return 0;
		p.fd = fd;
		p.events = events;
		p.revents = 0;
		n = poll(&p, 1, left);
		/* Interrupted, or a wait cut to INT_MAX ms: look again. */
		if ((n == -1 && errno == EINTR) || n == 0)
			continue;
		return n > 0 ? 1 : -1;
	}
}

/*
 * Connect to one loopback address before the deadline; returns the
 * socket, CLIENT_ERROR or CLIENT_TIMED_OUT. The socket is left blocking:
 * every read after this waits in poll() first.
 */
static int
connect_to(struct client *cl, const struct sockaddr *sa, socklen_t len)
{
	int		 fd, err, flags, r;
	socklen_t	 elen = sizeof(err);

	memcpy(&cl->addr, sa, len);
	if ((fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0)) == -1)
		return CLIENT_ERROR;
	if (connect(fd, sa, len) == -1) {
		if (errno != EINPROGRESS && errno != EINTR) {
			close(fd);
			return CLIENT_ERROR;
		}
		if ((r = wait_for(cl, fd, POLLOUT)) <= 0) {
			close(fd);
			return r == 0 ? CLIENT_TIMED_OUT : CLIENT_ERROR;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == -1 ||
		    err != 0) {
			close(fd);
			return CLIENT_ERROR;
		}
	}
	if ((flags = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == -1) {
		close(fd);
		return CLIENT_ERROR;
	}
	return fd;
}

/* Connect to the daemon on [::1]:port, falling back to 127.0.0.1:port. */
static int
connect_local(struct client *cl, uint16_t port)
{
	struct sockaddr_in6	 sin6;
	struct sockaddr_in	 sin;
	int			 fd;

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(port);
	sin6.sin6_addr = in6addr_loopback;
	fd = connect_to(cl, (struct sockaddr *)&sin6, sizeof(sin6));
	if (fd != CLIENT_ERROR)
		return fd;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return connect_to(cl, (struct sockaddr *)&sin, sizeof(sin));
}

/* Say on stderr what did not happen in time; returns exit status 1. */
static int
say_timed_out(const struct client *cl, bool connected)
{
	char	 where[PEER_ADDRSTRLEN];

	peer_format((const struct sockaddr *)&cl->addr, where, sizeof(where));
	fflush(stdout);
	if (connected)
		fprintf(stderr, "epmd-c: no answer from epmd on %s within "
		    "%d s\n", where, cl->timeout);
	else
		fprintf(stderr, "epmd-c: cannot connect to epmd on %s within "
		    "%d s\n", where, cl->timeout);
	fflush(stderr);
	return 1;
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

/* Read once, waiting no later than the deadline: bytes, 0 (EOF) or error. */
static ssize_t
read_some(const struct client *cl, int fd, uint8_t *buf, size_t len)
{
	ssize_t	 n;
	int	 r;

	for (;;) {
		if ((r = wait_for(cl, fd, POLLIN)) == 0)
			return CLIENT_TIMED_OUT;
		if (r == -1)
			return CLIENT_ERROR;
		n = read(fd, buf, len);
		if (n == -1 && errno == EINTR)
			continue;
		return n == -1 ? CLIENT_ERROR : n;
	}
}

/* Read until want bytes or EOF: the count, CLIENT_ERROR or _TIMED_OUT. */
static ssize_t
read_upto(const struct client *cl, int fd, uint8_t *buf, size_t want)
{
	size_t	 got = 0;
	ssize_t	 n;

	while (got < want) {
		if ((n = read_some(cl, fd, buf + got, want - got)) < 0)
			return n;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Show one byte escaped: \e, \a and the like, else \xHH. */
static void
put_escaped(uint8_t b)
{
	static const char	 named[] = "\a\b\t\n\v\f\r\033\\";
	static const char	 letter[] = "abtnvfre\\";
	const char		*p;

	if (b != '\0' && (p = strchr(named, b)) != NULL)
		printf("\\%c", letter[p - named]);
	else
		printf("\\x%02x", b);
}

/* Is this one strict UTF-8 character, and not a C1 control? */
static bool
utf8_printable(const uint8_t *s, size_t len)
{
	if (proto_utf8_chars(s, len) != 1)
		return false;
	/* U+0080..U+009F: some terminals obey these like ESC sequences. */
	return !(len == 2 && s[0] == 0xc2 && s[1] < 0xa0);
}

/* Show the UTF-8 bytes held so far: as they are if whole, else escaped. */
static void
flush_pending(struct client *cl)
{
	size_t	 i;

	if (cl->npend == 0)
		return;
	if (cl->npend == cl->need && utf8_printable(cl->pend, cl->npend))
		fwrite(cl->pend, 1, cl->npend, stdout);
	else
		for (i = 0; i < cl->npend; i++)
			put_escaped(cl->pend[i]);
	cl->npend = 0;
}

/* Show one reply byte on a terminal, so that names cannot drive it. */
static void
put_tty_byte(struct client *cl, uint8_t b)
{
	bool	 after_newline = cl->after_newline;

	cl->after_newline = false;
	if (cl->npend > 0) {
		if ((b & 0xc0) == 0x80 && cl->npend < cl->need) {
			cl->pend[cl->npend++] = b;
			if (cl->npend == cl->need)
				flush_pending(cl);
			return;
		}
		flush_pending(cl);	/* cut short: escaped */
	}
	if (b == '\n') {
		putchar('\n');
		cl->after_newline = true;
	} else if (b == '\0' && after_newline)
		;	/* DUMP ends each line in "\n\0": nothing to see */
	else if (b < 0x20 || b == 0x7f || b == '\\')
		put_escaped(b);
	else if (b < 0x80)
		putchar(b);
	else if ((cl->need = proto_utf8_lead_len(b)) == 0)
		put_escaped(b);
	else
		cl->pend[cl->npend++] = b;
}

/*
 * Show reply bytes (they may hold NULs) on stdout: exactly as they came
 * into a pipe or file, as the reference does; escaped on a terminal.
 */
static void
put_reply(struct client *cl, const uint8_t *buf, size_t len)
{
	size_t	 i;

	if (!cl->tty) {
		if (len > 0)
			fwrite(buf, 1, len, stdout);
		return;
	}
	for (i = 0; i < len; i++)
		put_tty_byte(cl, buf[i]);
}

/* Print a message on stdout and return the exit status given. */
static int
say(const char *msg, int status)
{
	fputs(msg, stdout);
	fflush(stdout);
	return status;
}

/* Copy the rest of the reply to stdout until EOF; false if it timed out. */
static bool
copy_body(struct client *cl, int fd)
{
	uint8_t	 buf[4096];
	ssize_t	 n;

	while ((n = read_some(cl, fd, buf, sizeof(buf))) > 0)
		put_reply(cl, buf, (size_t)n);
	flush_pending(cl);
	return n != CLIENT_TIMED_OUT;
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

/* NAMES or DUMP: print the header line and the body; quiet: -started. */
static int
run_listing(struct client *cl, int fd, uint8_t code, bool quiet)
{
	uint8_t	 req[8], hdr[PROTO_PORT_HEADER_LEN];
	ssize_t	 n;

	if (!send_request(fd, req, proto_encode_simple_req(req, code)))
		return quiet ? 1 : say(MSG_WRITE_FAIL, 1);
	/* A read error before the header counts as no response at all. */
	n = read_upto(cl, fd, hdr, sizeof(hdr));
	if (n == CLIENT_TIMED_OUT)
		return quiet ? 1 : say_timed_out(cl, true);
	if (n < (ssize_t)sizeof(hdr))
		return quiet ? 1 : say(MSG_NO_RESPONSE, 1);
	if (quiet)
		return 0;
	printf("epmd: up and running on port %lld with data:\n",
	    port_header_value(hdr));
	if (!copy_body(cl, fd))
		return say_timed_out(cl, true);
	fflush(stdout);
	return 0;
}

/* Send a request, read a fixed-size reply; on failure say why, false. */
static bool
exchange(struct client *cl, int fd, const uint8_t *req, size_t reqlen,
    uint8_t *reply, size_t len)
{
	ssize_t n;

	if (reqlen == 0 || !send_request(fd, req, reqlen))
		return say(MSG_WRITE_FAIL, 1) == 0;
	n = read_upto(cl, fd, reply, len);
	if (n == CLIENT_TIMED_OUT)
		return say_timed_out(cl, true) == 0;
	if (n == CLIENT_ERROR)
		return say(MSG_READ_FAIL, 1) == 0;
	if (n < (ssize_t)len)
		return say(MSG_EMPTY_REPLY, 1) == 0;
	return true;
}

/* KILL: "OK" means the daemon is exiting; anything else is a refusal. */
static int
run_kill(struct client *cl, int fd)
{
	uint8_t	 req[8], reply[PROTO_KILL_RESP_LEN];

	if (!exchange(cl, fd, req, proto_encode_simple_req(req, EPMD_KILL_REQ),
	    reply, sizeof(reply)))
		return 1;
	if (proto_kill_resp_ok(reply))
		return say(MSG_KILLED, 0);
	return say(MSG_KILL_DENIED, 1);
}

/* STOP: print the first 7 reply bytes, STOPPED or NOEXIST, as they came. */
static int
run_stop(struct client *cl, int fd, const char *name, size_t len)
{
	uint8_t	 req[3 + CLIENT_STOP_NAME_MAX], reply[PROTO_STOP_RESP_LEN];

	if (!exchange(cl, fd, req, proto_encode_stop_req(req, name, len),
	    reply, sizeof(reply)))
		return 1;
	put_reply(cl, reply, sizeof(reply));
	flush_pending(cl);
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
	struct client	 cl;
	int		 fd, status;

	/* Not an epmd request: it goes to the metrics endpoint. */
	if (opts->command == CMD_STATS)
		return run_stats(opts);
	/* Checked before connecting, as the reference does. */
	if (opts->command == CMD_STOP && len > CLIENT_STOP_NAME_MAX)
		return say(MSG_NAME_LONG, 1);

	memset(&cl, 0, sizeof(cl));
	/* Names are any local user's bytes: a terminal must not obey them. */
	cl.tty = isatty(STDOUT_FILENO) == 1;
	/* One deadline for connecting and the whole answer: a drip of
	 * bytes cannot stretch it. */
	deadline_start(&cl, opts->client_timeout);

	/* -port keeps the whole number; the socket gets its low 16 bits. */
	if ((fd = connect_local(&cl, (uint16_t)opts->port)) < 0) {
		if (quiet)
			return 1;	/* -started prints nothing, ever */
		if (fd == CLIENT_TIMED_OUT)
			return say_timed_out(&cl, false);
		fputs(MSG_NO_CONNECT, stderr);
		fflush(stderr);
		return 1;
	}

	switch (opts->command) {
	case CMD_NAMES:
		status = run_listing(&cl, fd, EPMD_NAMES_REQ, false);
		break;
	case CMD_DUMP:
		status = run_listing(&cl, fd, EPMD_DUMP_REQ, false);
		break;
	case CMD_STARTED:
		status = run_listing(&cl, fd, EPMD_NAMES_REQ, true);
		break;
	case CMD_KILL:
		status = run_kill(&cl, fd);
		break;
	case CMD_STOP:
		status = run_stop(&cl, fd, name, len);
		break;
	default:
		status = 1;	/* CMD_SERVE is not a client command */
		break;
	}
	close(fd);
	return status;
}
