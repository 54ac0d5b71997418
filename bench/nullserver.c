/*
 * nullserver: the floor of the bench. It speaks just enough of the port
 * mapper protocol to be timed like a daemon, and keeps no registry:
 *   PORT_PLEASE2  -> one fixed PORT2_RESP of the usual size, close
 *   ALIVE2        -> a fixed success reply; the connection stays open
 *                    until the peer sends anything or closes
 *   NAMES         -> the 4-byte port header only, close
 *   anything else -> close
 * Usage: nullserver -port P [-address ignored] [-lifetime SECONDS]
 * It listens on 127.0.0.1 only and exits after -lifetime (default 3600 s).
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <signal.h>

#include "bench.h"

#define BUF_SIZE	64
#define MAX_EVENTS	256
#define ACCEPT_BATCH	64

enum { FD_NONE, FD_READING, FD_HOLDING };

/* Per-connection state, indexed by fd. */
struct conn {
	uint8_t	 kind;
	uint8_t	 got;
	uint8_t	 buf[BUF_SIZE];
};

static struct conn *conns;
static size_t nconns;
static uint16_t port;

/* Seconds on the monotonic clock. */
static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Parse a decimal in [lo, hi] or exit with a usage error. */
static long
parse_num(const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "nullserver: bad number: %s\n", s);
		exit(2);
	}
	return v;
}

/* Raise the descriptor limit to the hard limit; size the table to it. */
static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		perror("nullserver: getrlimit");
		exit(1);
	}
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		perror("nullserver: setrlimit");
	getrlimit(RLIMIT_NOFILE, &rl);
	nconns = rl.rlim_cur > 1048576 ? 1048576 : (size_t)rl.rlim_cur;
	conns = calloc(nconns, sizeof(*conns));
	if (conns == NULL) {
		perror("nullserver: calloc");
		exit(1);
	}
}

/* Open the listening socket on 127.0.0.1:port. */
static int
listen_on(void)
{
	struct sockaddr_in sin;
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		perror("nullserver: socket");
		exit(1);
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		perror("nullserver: bind");
		exit(1);
	}
	if (listen(fd, SOMAXCONN) != 0) {
		perror("nullserver: listen");
		exit(1);
	}
	return fd;
}

/* Forget a connection and close it. */
static void
conn_close(int fd)
{
	if ((size_t)fd < nconns)
		conns[fd].kind = FD_NONE;
	close(fd);
}

/* Answer one complete frame; returns 1 if the connection stays open. */
static int
conn_answer(int fd, struct conn *c)
{
	static const uint8_t port2[] = BENCH_NULL_PORT2;
	static const uint8_t alive2[] = BENCH_NULL_ALIVE2;
	uint8_t hdr[4] = { 0, 0, (uint8_t)(port >> 8), (uint8_t)port };
	ssize_t n = 0;

	switch (c->buf[2]) {
	case 'z':
		n = send(fd, port2, sizeof(port2), MSG_NOSIGNAL);
		break;
	case 'x':
		n = send(fd, alive2, sizeof(alive2), MSG_NOSIGNAL);
		if (n == (ssize_t)sizeof(alive2)) {
			c->kind = FD_HOLDING;
			return 1;
		}
		break;
	case 'n':
		n = send(fd, hdr, sizeof(hdr), MSG_NOSIGNAL);
		break;
	default:
		break;
	}
	(void)n;
	return 0;
}

/* Read what a connection sent; answer once its frame is complete. */
static void
conn_readable(int fd)
{
	struct conn *c = &conns[fd];
	size_t want;
	ssize_t n;

	if (c->kind == FD_HOLDING) {
		conn_close(fd);	/* any byte or EOF ends a registration */
		return;
	}
	n = read(fd, c->buf + c->got, BUF_SIZE - c->got);
	if (n <= 0) {
		if (n == -1 && errno == EAGAIN)
			return;
		conn_close(fd);
		return;
	}
	c->got += (uint8_t)n;
	if (c->got < 3)
		return;
	want = ((size_t)c->buf[0] << 8 | c->buf[1]) + 2;
	if (want > BUF_SIZE || want < 3) {
		conn_close(fd);
		return;
	}
	if (c->got < want)
		return;
	if (!conn_answer(fd, c))
		conn_close(fd);
}

/* Accept up to a batch of connections; 0 if the listener should pause. */
static int
accept_some(int ep, int lfd)
{
	struct epoll_event ev;
	int i, fd;

	for (i = 0; i < ACCEPT_BATCH; i++) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM)
				return 0;
			return 1;
		}
		if ((size_t)fd >= nconns) {
			close(fd);
			continue;
		}
		conns[fd].kind = FD_READING;
		conns[fd].got = 0;
		ev.events = EPOLLIN;
		ev.data.fd = fd;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
			conn_close(fd);
	}
	return 1;
}

int
main(int argc, char **argv)
{
	struct epoll_event ev, evs[MAX_EVENTS];
	double end, paused_until = 0;
	long lifetime = 3600;
	int i, n, ep, lfd, listening = 1;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-port") == 0 && i + 1 < argc)
			port = (uint16_t)parse_num(argv[++i], 1, 65535);
		else if (strcmp(argv[i], "-address") == 0 && i + 1 < argc)
			i++;
		else if (strcmp(argv[i], "-lifetime") == 0 && i + 1 < argc)
			lifetime = parse_num(argv[++i], 1, 86400);
		else {
			fprintf(stderr, "usage: nullserver -port P "
			    "[-address A] [-lifetime SECONDS]\n");
			return 2;
		}
	}
	if (port == 0) {
		fprintf(stderr, "nullserver: -port is required\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	lfd = listen_on();
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep == -1) {
		perror("nullserver: epoll_create1");
		return 1;
	}
	ev.events = EPOLLIN;
	ev.data.fd = lfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);

	end = now_s() + (double)lifetime;
	while (now_s() < end) {
		if (!listening && now_s() >= paused_until) {
			ev.events = EPOLLIN;
			ev.data.fd = lfd;
			epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
			listening = 1;
		}
		n = epoll_wait(ep, evs, MAX_EVENTS, listening ? 1000 : 100);
		for (i = 0; i < n; i++) {
			if (evs[i].data.fd != lfd) {
				conn_readable(evs[i].data.fd);
				continue;
			}
			if (!accept_some(ep, lfd)) {
				/* Out of descriptors: pause accepting 100 ms. */
				epoll_ctl(ep, EPOLL_CTL_DEL, lfd, NULL);
				listening = 0;
				paused_until = now_s() + 0.1;
			}
		}
	}
	return 0;
}
