/*
 * fuzz_conn: whole connections through the real conn/registry/server code.
 *
 * Each input drives a fresh struct server (as server_loop builds it) whose
 * connections come from real loopback TCP sockets: the harness connects a
 * client, accepts the other end itself and hands it to conn_accept(), writes
 * the input's bytes from the client side, and runs the event loop without
 * blocking until nothing moves. Replies are read back from the clients.
 *
 * Input format (make_seeds.py writes it):
 *
 *   byte 0   configuration: bit 0 relaxed, bit 1 -d -d (old/unused limit
 *            5, every request logged), bits 2-3 per-peer cap {256, none,
 *            1, 2},
 *            bits 4-5 configured -port {4369, listener port, listener
 *            port + 65536, 0} (the header must carry the port reached)
 *   byte 1   timing: bits 0-1 packet_timeout {60, 1, 2, 5} s, bits 2-3
 *            delay_accept {0, 1, 2, 0} s, bits 4-5 delay_write {0, 1, 2, 0} s
 *   then ops, each one byte: bits 0-2 kind, bits 3-5 slot (0..7),
 *            bit 6 "do not run the loop after this op", bit 7 a flag:
 *     0 RAW8    n:8, then n bytes written as they are
 *     1 FRAME   n:8 (n:16 with the flag), then n bytes written after a
 *               16-bit length header n (truncated input: incomplete frame)
 *     2 RAW16   n:16, then n bytes written as they are
 *     3 CLOSE   close the client socket
 *     4 SHUTWR  shutdown(SHUT_WR) on the client socket
 *     5 RESET   close the client socket with an RST (SO_LINGER 0)
 *     6 SHED    conn_shed_idle(srv, slot, 0) as at EMFILE; with the flag
 *               instead ADVANCE: run the loop, move the monotonic clock
 *               that libevent reads forward by {0.1, 1, 2, 3, 6, 30, 61,
 *               62} s [slot], run the loop again (bit 6 is ignored)
 *     7 OPEN    p:8, then (re)connect the slot: p bit 0 remote peer (a
 *               faked 192.0.2.x / 2001:db8::x address), bit 1 IPv6 (::1),
 *               bit 2 second fake address, bit 3 tight buffers (the
 *               smallest receive buffer here, the smallest send buffer on
 *               the server's end: replies go out in pieces), bit 4 slow
 *               reader (never reads: only EOF is watched for; with tight
 *               buffers a long reply stalls until the write times out)
 *   A write to a slot with no socket opens a local IPv4 one and sends the
 *   bytes before the server accepts it (conn_accept then finds them).
 *
 * Invariants, after each op that runs the loop:
 *   - every active node has a handle, is found by registry_lookup, and its
 *     fd is the accepted end of an open client that sent exactly one
 *     ALIVE2 frame for that name and read a success reply for it;
 *   - every client that holds a success reply and has done nothing since
 *     has an active node (so a node lives exactly as long as its conn);
 *   - npending + registered nodes == open clients that have not seen EOF
 *     (within bounds while delays or slow readers keep the server blind);
 *   - old/unused records are inactive, handle-free, not found by lookup;
 *   - each reply is well formed for the request that the client sent:
 *     ALIVE2 6/4 bytes 'v'/'y', PORT2 replies 'w' that echo a registration
 *     sent in this input, NAMES/DUMP with the right port header and lines
 *     naming registrations sent in this input, OK/NO, STOPPED/NOEXIST...,
 *     nothing for what must close silently; creation rises per name;
 *   - replies reflect every registration live from the moment the request
 *     was whole until after the reply: PORT2 finds it, NAMES and DUMP list
 *     it, STOP stops it, a strict KILL says NO;
 *   - after KILL's OK the server exits; we then close everything as
 *     server_loop does and start over;
 *   - timeouts (on a virtual clock): an unregistered connection is closed
 *     once silent for packet_timeout + 1 s (after -delay_accept, plus
 *     -delay_write for a reply), and never earlier;
 *   - when every client is closed: no node, no pending connection, no
 *     per-peer count, no event left, every accepted descriptor closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <time.h>

#include <event2/event.h>

#include "conn.h"
#include "epmd.h"
#include "introspect.h"
#include "log.h"
#include "options.h"
#include "peercount.h"
#include "proto.h"
#include "registry.h"
#include "server.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NSLOTS		8
#define MAX_CONNS	96	/* connections per input */
#define MAX_OPS		512	/* ops per input */
#define MAX_WRITE	4096	/* bytes per write op */
#define SENT_MAX	(EPMD_INBUF_SIZE + 16)
#define RECV_MAX	(256 * 1024)
#define SETTLE_MAX	200	/* loop iterations per settle */
#define SETTLE_IDLE	3	/* idle iterations that mean "quiescent" */
/*
 * Loopback delivery is usually done by the time send() or close() returns,
 * but under load the kernel defers it to ksoftirqd. A step whose checks
 * fail is therefore settled and checked again, a millisecond later, this
 * many times before the failure counts.
 */
#define STEP_RETRIES	200
#define NSEC		1000000000LL
#define MSEC		1000000LL
/* Allowed lateness of a timeout, and earliness of its observation. */
#define LATE_SLACK	(1 * NSEC)
#define EARLY_SLACK	(100 * MSEC)

enum op_kind {
	OP_RAW8, OP_FRAME, OP_RAW16, OP_CLOSE, OP_SHUTWR, OP_RESET, OP_SHED,
	OP_OPEN,
};

/* Fail loudly, naming the broken invariant. */
#define CHECK(cond) do {						\
	if (!(cond))							\
		fail(__LINE__, #cond);					\
} while (0)

/* One client socket and what went through it. */
struct client {
	int			 fd;		/* -1: no socket in this slot */
	int			 family;
	bool			 remote;	/* faked non-local peer */
	bool			 slow;		/* never reads its replies */
	unsigned		 serial;	/* unique per connection */
	/* Serials of the clients registered when our frame was complete. */
	unsigned		 owners[NSLOTS];
	int			 nowners;
	bool			 wr_shut;
	bool			 eof;		/* EOF or reset read */
	bool			 reset;
	bool			 saw_exit;	/* open when the server exited */
	bool			 noted;		/* ALIVE2 reply accounted */
	bool			 alive_ok;	/* read a successful ALIVE2 reply */
	struct sockaddr_storage	 local;		/* our end, the server's peer */
	uint8_t			 sent[SENT_MAX];
	size_t			 nsent;		/* total, may exceed SENT_MAX */
	uint8_t			*recv;
	size_t			 nrecv;
	size_t			 checked;	/* nrecv at the last check */
	bool			 checked_eof;
	bool			 shed;		/* open during a SHED op */
	bool			 unread;	/* wrote since the last settle */
	int64_t			 opened_at;	/* virtual ns */
	int64_t			 enabled_at;	/* settle that ended delay_accept */
	int64_t			 read_at;	/* settle after the last write */
	int64_t			 frame_at;	/* settle after the frame was whole */
	int64_t			 eof_at;	/* settle that saw EOF */
};

/* An ALIVE2 request sent in this server's life: what replies may echo. */
struct candidate {
	struct proto_alive2	 a;
	uint8_t			 name[EPMD_MAXSYMLEN];
	uint8_t			 extra[EPMD_MAXSYMLEN];
};

/* The highest creation a name got, before and during this step. */
struct creation_seen {
	uint8_t			 name[EPMD_MAXSYMLEN];
	size_t			 name_len;
	uint32_t		 prev, cur;
	unsigned		 step;
};

/* A client address the getpeername() wrapper must fake. */
struct fake {
	struct sockaddr_storage	 real;
	struct sockaddr_storage	 fake;
	bool			 remote;
};

static int		 lfd[2] = { -1, -1 };	/* IPv4, IPv6 listeners */
static uint16_t		 lport[2];
static bool		 have_v6;
static uint32_t		 src_counter;

static struct options	 opts;
static struct server	 srv;
static bool		 srv_up;
static struct client	 clients[NSLOTS];
static struct candidate	 cands[MAX_CONNS];
static size_t		 ncands;
static struct creation_seen seen[MAX_CONNS];
static size_t		 nseen;
static unsigned		 step_no;
static jmp_buf		*soft_fail;	/* set while a failure may be a delay */
static struct fake	 fakes[MAX_CONNS];
static size_t		 nfakes;
static int		 accepted[MAX_CONNS];
static size_t		 naccepted;
static size_t		 nconns;
static unsigned		 serials;
static int64_t		 clock_skew;	/* ns added to monotonic clocks */
static bool		 skew_on;	/* only while an input runs */
static int64_t		 settle_at;	/* virtual time a settle began */

static bool	client_frame(const struct client *, const uint8_t **, size_t *);
static bool	expect_registered(const struct client *);

/* Report an invariant failure with the state that matters, then abort. */
static void __attribute__((noreturn))
fail(int line, const char *what)
{
	int i;

	if (soft_fail != NULL)
		longjmp(*soft_fail, line);
	fprintf(stderr, "fuzz_conn: invariant failed at line %d: %s\n",
	    line, what);
	if (srv_up)
		fprintf(stderr, "  npending %zu, active %zu, unused %zu, "
		    "exiting %d\n", srv.conns.npending, registry_count(srv.reg),
		    registry_unused_count(srv.reg), srv.exiting);
	for (i = 0; i < NSLOTS; i++) {
		struct client *c = &clients[i];
		size_t k;

		if (c->fd < 0)
			continue;
		fprintf(stderr, "  slot %d: fam %d remote %d shut %d eof %d "
		    "reset %d sent %zu recv %zu:", i, c->family, c->remote,
		    c->wr_shut, c->eof, c->reset, c->nsent, c->nrecv);
		for (k = 0; k < c->nrecv && k < 32; k++)
			fprintf(stderr, " %02x", c->recv[k]);
		fprintf(stderr, "\n");
	}
	abort();
}

/* A big-endian 16-bit integer. */
static uint16_t
be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

/* A big-endian 32-bit integer. */
static uint32_t
be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	    ((uint32_t)p[2] << 8) | p[3];
}

/* Same family, address and port? */
static bool
same_sockaddr(const struct sockaddr_storage *a,
    const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port &&
		    x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return x->sin6_port == y->sin6_port &&
		    memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
	}
	return false;
}

/* The length of a sockaddr of this family. */
static socklen_t
sa_len(int family)
{
	return family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in);
}

/*
 * getpeername() as conn.c sees it: peers that the harness marked remote
 * get a documentation address instead of loopback (PROTOCOL.md App. A).
 */
int
getpeername(int fd, __SOCKADDR_ARG addr, socklen_t *__restrict len)
{
	struct sockaddr_storage	 ss;
	struct sockaddr		*sa = addr.__sockaddr__;
	socklen_t		 sl = sizeof(ss);
	size_t			 i;
	long			 rc;

	rc = syscall(SYS_getpeername, fd, (struct sockaddr *)&ss, &sl);
	if (rc != 0)
		return (int)rc;
	for (i = nfakes; i-- > 0;) {
		if (!same_sockaddr(&fakes[i].real, &ss))
			continue;
		if (fakes[i].remote)
			memcpy(&ss, &fakes[i].fake, sizeof(ss));
		break;
	}
	memcpy(sa, &ss, sl < *len ? sl : *len);
	*len = sl;
	return 0;
}

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

/*
 * clock_gettime() with a virtual offset on the monotonic clocks, so that
 * libevent's timers (packet timeout, -delay_accept, -delay_write) fire when
 * an input says time has passed. libFuzzer times itself on the wall clock.
 */
int
clock_gettime(clockid_t clk, struct timespec *ts)
{
	static clock_gettime_fn	 real;
	int			 rc;

	if (real == NULL) {
		void *sym = dlsym(RTLD_NEXT, "clock_gettime");

		if (sym == NULL)
			return (int)syscall(SYS_clock_gettime, clk, ts);
		memcpy(&real, &sym, sizeof(real));
	}
	rc = real(clk, ts);
	if (rc != 0 || !skew_on || clock_skew == 0)
		return rc;
	if (clk == CLOCK_MONOTONIC || clk == CLOCK_MONOTONIC_COARSE ||
	    clk == CLOCK_MONOTONIC_RAW || clk == CLOCK_BOOTTIME) {
		int64_t ns = (int64_t)ts->tv_nsec + clock_skew % NSEC;

		ts->tv_sec += (time_t)(clock_skew / NSEC + ns / NSEC);
		ts->tv_nsec = (long)(ns % NSEC);
	}
	return rc;
}

/* The virtual monotonic time in ns. */
static int64_t
vnow(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		abort();
	return (int64_t)ts.tv_sec * NSEC + ts.tv_nsec;
}

/* The journal writer while fuzzing: formatting runs, output goes nowhere. */
static int
null_journal(const struct iovec *iov, int n)
{
	/* With FUZZ_CONN_TRACE set, show the MESSAGE= field. */
	if (n > 0 && getenv("FUZZ_CONN_TRACE") != NULL)
		fprintf(stderr, "  log: %.*s\n", iov[0].iov_len > 160 ? 160 :
		    (int)iov[0].iov_len, (const char *)iov[0].iov_base);
	return 0;
}

/* A visit of every record through the registry's walks, never stopped. */
struct walk_visit {
	void	(*fn)(const struct node *, void *);
	void	*arg;
};

/* Walk callback: hand the record to the visit, and go on. */
static bool
walk_visit_one(const struct node *node, void *arg)
{
	struct walk_visit *w = arg;

	w->fn(node, w->arg);
	return true;
}

/* Visit every active (newest first) or old/unused (oldest first) record. */
static void
walk_all(const struct registry *reg, bool active,
    void (*fn)(const struct node *, void *), void *arg)
{
	struct walk_visit w = { fn, arg };

	if (active)
		CHECK(registry_walk_active(reg, UINT64_MAX, walk_visit_one, &w));
	else
		CHECK(registry_walk_unused(reg, 0, walk_visit_one, &w));
}

/* Open one listener on the loopback of a family; returns the fd or -1. */
static int
open_listener(int family, uint16_t *port)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sa_len(family);
	int			 fd, one = 1;

	memset(&ss, 0, sizeof(ss));
	ss.ss_family = (sa_family_t)family;
	if (family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_addr.s_addr =
		    htonl(INADDR_LOOPBACK);
	else
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
	if ((fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) == -1 ||
	    listen(fd, 128) == -1 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) == -1) {
		close(fd);
		return -1;
	}
	*port = ntohs(family == AF_INET ?
	    ((struct sockaddr_in *)&ss)->sin_port :
	    ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* The daemon ignores SIGPIPE (server_loop); so must its harness. */
	signal(SIGPIPE, SIG_IGN);
	log_set_journal_writer(null_journal);
	log_init(LOG_TO_JOURNAL, 0);
	lfd[0] = open_listener(AF_INET, &lport[0]);
	if (lfd[0] == -1) {
		perror("fuzz_conn: listener on 127.0.0.1");
		abort();
	}
	lfd[1] = open_listener(AF_INET6, &lport[1]);
	have_v6 = lfd[1] != -1;
	return 0;
}

/* Options as options_parse leaves them for a plain daemon, then the input's. */
static void
set_options(uint8_t cfg, uint8_t timing)
{
	static const int caps[4] = { OPTIONS_DEFAULT_MAX_PER_PEER, 0, 1, 2 };
	static const int timeouts[4] = { EPMD_PACKET_TIMEOUT, 1, 2, 5 };
	static const int delays[4] = { 0, 1, 2, 0 };
	long ports[4];

	ports[0] = EPMD_PORT_DEFAULT;
	ports[1] = lport[0];
	ports[2] = (long)lport[0] + 65536;
	ports[3] = 0;
	memset(&opts, 0, sizeof(opts));
	opts.command = CMD_SERVE;
	opts.relaxed = cfg & 1;
	opts.debug = (cfg & 2) ? 2 : 0;
	opts.max_conns_per_peer = caps[(cfg >> 2) & 3];
	opts.port = ports[(cfg >> 4) & 3];
	opts.packet_timeout = timeouts[timing & 3];
	opts.delay_accept = delays[(timing >> 2) & 3];
	opts.delay_write = delays[(timing >> 4) & 3];
	opts.naddrs = 0;
	/* The access lists' defaults: the reference's rules, no more. */
	addrfilt_set(&opts.names_from, ADDRFILT_ANY);
	addrfilt_set(&opts.lookup_from, ADDRFILT_ANY);
	addrfilt_set(&opts.register_from, ADDRFILT_NONE);
	log_init(LOG_TO_JOURNAL, opts.debug);
}

/* Build the server state with server_init, without listeners. */
static void
server_start(void)
{
	server_init(&srv, &opts);
	srv.accepting = true;
	srv_up = true;
	ncands = 0;
	nseen = 0;
}

/* Every descriptor accepted since the last check must be closed now. */
static void
check_accepted_closed(void)
{
	size_t i;

	for (i = 0; i < naccepted; i++)
		CHECK(fcntl(accepted[i], F_GETFD) == -1 && errno == EBADF);
	naccepted = 0;
}

/* Tear the server down with server_free, checking it left nothing. */
static void
server_stop(void)
{
	conn_close_all(&srv);
	CHECK(registry_count(srv.reg) == 0);
	CHECK(srv.conns.npending == 0);
	CHECK(srv.admit.nremote == 0 && peercount_size(srv.admit.addrs) == 0 &&
	    peercount_size(srv.admit.prefixes) == 0);
	server_free(&srv);
	srv_up = false;
}

/* Read everything a client has; returns whether anything changed. */
static bool
drain_client(struct client *c)
{
	bool	 moved = false;
	int	 guard;

	if (c->fd < 0 || c->eof)
		return false;
	if (c->slow) {
		/* Whether the server closed, without reading what it sent. */
		struct pollfd pfd = { .fd = c->fd, .events = POLLRDHUP };

		if (poll(&pfd, 1, 0) == 1 &&
		    (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR))) {
			c->eof = true;
			c->eof_at = settle_at;
			return true;
		}
		return false;
	}
	for (guard = 0; guard < 64; guard++) {
		ssize_t n;

		if (c->nrecv == RECV_MAX)
			fail(__LINE__, "reply larger than any possible reply");
		n = recv(c->fd, c->recv + c->nrecv, RECV_MAX - c->nrecv,
		    MSG_DONTWAIT);
		if (n > 0) {
			c->nrecv += (size_t)n;
			moved = true;
			continue;
		}
		if (n == 0) {
			c->eof = true;
			c->eof_at = settle_at;
			return true;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return moved;
		/* ECONNRESET and friends: the server closed with data unread. */
		c->eof = true;
		c->eof_at = settle_at;
		c->reset = true;
		return true;
	}
	return moved;
}

/* Read every client that has something; returns whether anything changed. */
static bool
drain_all(void)
{
	struct pollfd	 pfd[NSLOTS];
	int		 slot[NSLOTS], i, n = 0, r;
	bool		 moved = false;

	/* One poll() instead of a recv() per client: the kernel is the cost. */
	for (i = 0; i < NSLOTS; i++) {
		if (clients[i].fd < 0 || clients[i].eof)
			continue;
		pfd[n].fd = clients[i].fd;
		pfd[n].events = POLLIN | POLLRDHUP;
		pfd[n].revents = 0;
		slot[n++] = i;
	}
	if (n == 0)
		return false;
	do
		r = poll(pfd, (nfds_t)n, 0);
	while (r == -1 && errno == EINTR);
	if (r <= 0)
		return false;
	for (i = 0; i < n; i++)
		if (pfd[i].revents != 0)
			moved |= drain_client(&clients[slot[i]]);
	return moved;
}

/* What the server's counters say, to notice progress. */
static uint64_t
server_signature(void)
{
	return (uint64_t)srv.conns.npending * 1000003u +
	    (uint64_t)registry_count(srv.reg) * 1009u +
	    registry_unused_count(srv.reg) +
	    ((uint64_t)srv.exiting << 40);
}

/* Run the loop without blocking until nothing moves (bounded). */
static void
settle(void)
{
	int	 i, idle = 0;

	settle_at = vnow();
	/* What clients wrote since the last settle is read (at the latest) now. */
	for (i = 0; i < NSLOTS; i++) {
		struct client *c = &clients[i];
		const uint8_t *body;
		size_t blen;

		if (c->fd < 0)
			continue;
		if (c->enabled_at == 0 && settle_at >= c->opened_at +
		    (int64_t)opts.delay_accept * NSEC)
			c->enabled_at = settle_at;
		if (!c->unread)
			continue;
		c->unread = false;
		c->read_at = settle_at;
		if (c->frame_at == 0 && client_frame(c, &body, &blen))
			c->frame_at = settle_at;
	}
	/* The loop was broken (KILL): nothing else runs before the exit. */
	if (srv.exiting) {
		drain_all();
		return;
	}
	for (i = 0; i < SETTLE_MAX && idle < SETTLE_IDLE; i++) {
		uint64_t before = server_signature();
		bool moved;

		event_base_loop(srv.base, EVLOOP_NONBLOCK);
		moved = drain_all();
		if (srv.exiting)
			return;
		if (moved || server_signature() != before)
			idle = 0;
		else
			idle++;
	}
	CHECK(idle >= SETTLE_IDLE);
}

/* The first complete frame a client sent, if any. */
static bool
client_frame(const struct client *c, const uint8_t **body, size_t *len)
{
	size_t l;

	if (c->nsent < EPMD_FRAME_HEADER)
		return false;
	l = be16(c->sent);
	if (l == 0 || l > EPMD_MAX_FRAME_BODY ||
	    c->nsent < l + EPMD_FRAME_HEADER)
		return false;
	*body = c->sent + EPMD_FRAME_HEADER;
	*len = l;
	return true;
}

/*
 * The NAMES/DUMP header the client must see: the port it reached, whatever
 * -port says (PROTOCOL.md 8.4).
 */
static uint32_t
expected_header(const struct client *c)
{
	return lport[c->family == AF_INET6];
}

/* Does p[0..n) start with lit? */
static bool
has_prefix(const uint8_t *p, size_t n, const void *lit, size_t litlen)
{
	return n >= litlen && memcmp(p, lit, litlen) == 0;
}

/* Length of "prefix NAME mid PORT" for a candidate matching at p, or 0. */
static size_t
match_name_port(const uint8_t *p, size_t n, const char *prefix,
    const struct candidate *cd, const char *mid)
{
	char	 port[8];
	size_t	 off = strlen(prefix), ml = strlen(mid), pl;

	if (!has_prefix(p, n, prefix, off))
		return 0;
	if (!has_prefix(p + off, n - off, cd->a.name, cd->a.name_len))
		return 0;
	off += cd->a.name_len;
	if (!has_prefix(p + off, n - off, mid, ml))
		return 0;
	off += ml;
	pl = (size_t)snprintf(port, sizeof(port), "%u", cd->a.port);
	if (!has_prefix(p + off, n - off, port, pl))
		return 0;
	return off + pl;
}

/* NAMES lines: each "name N at port P\n" for a registration sent. */
static void
check_names_lines(const uint8_t *r, size_t n)
{
	static bool	 reach[RECV_MAX + 1];
	size_t		 pos, i;

	memset(reach, 0, n + 1);
	reach[0] = true;
	for (pos = 0; pos < n; pos++) {
		if (!reach[pos])
			continue;
		for (i = 0; i < ncands; i++) {
			size_t m = match_name_port(r + pos, n - pos, "name ",
			    &cands[i], " at port ");

			if (m > 0 && pos + m < n && r[pos + m] == '\n')
				reach[pos + m + 1] = true;
		}
	}
	CHECK(reach[n]);
}

/* Is p[0..n) a non-empty run of decimal digits? */
static bool
all_digits(const uint8_t *p, size_t n)
{
	size_t i;

	if (n == 0 || n > 10)
		return false;
	for (i = 0; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return false;
	return true;
}

/* DUMP entries: active ones, then old/unused ones, each name once. */
static void
check_dump_entries(const uint8_t *r, size_t n)
{
	const struct candidate	*names[MAX_CONNS * 2];
	size_t			 nnames = 0, pos = 0, i, j;
	bool			 in_unused = false;

	while (pos < n) {
		const uint8_t *end = NULL;
		const struct candidate *who = NULL;
		size_t k, elen;

		for (k = pos; k + 1 < n; k++)
			if (r[k] == '\n' && r[k + 1] == '\0') {
				end = r + k;
				break;
			}
		CHECK(end != NULL);
		elen = (size_t)(end - (r + pos));
		for (i = 0; i < ncands && who == NULL; i++) {
			size_t m;

			m = match_name_port(r + pos, elen, "active name     <",
			    &cands[i], "> at port ");
			if (m > 0 && !in_unused &&
			    has_prefix(r + pos + m, elen - m, ", fd = ", 7) &&
			    all_digits(r + pos + m + 7, elen - m - 7)) {
				who = &cands[i];
				break;
			}
			m = match_name_port(r + pos, elen, "old/unused name <",
			    &cands[i], ">, port = ");
			if (m > 0 && elen > m + 8 && r[pos + elen - 1] == ' ' &&
			    has_prefix(r + pos + m, elen - m, ", fd = ", 7) &&
			    all_digits(r + pos + m + 7, elen - m - 8)) {
				who = &cands[i];
				in_unused = true;
				break;
			}
		}
		CHECK(who != NULL);
		CHECK(nnames < MAX_CONNS * 2);
		names[nnames++] = who;
		pos += elen + 2;
	}
	for (i = 0; i < nnames; i++)
		for (j = i + 1; j < nnames; j++)
			CHECK(names[i]->a.name_len != names[j]->a.name_len ||
			    memcmp(names[i]->a.name, names[j]->a.name,
			    names[i]->a.name_len) != 0);
}

/* A PORT2 reply must echo a registration sent for the name asked. */
static void
check_port2(const uint8_t *r, size_t n, const struct proto_request *req)
{
	size_t	 nlen, elen, i;
	bool	 found = false;

	CHECK(n >= 2 && r[0] == EPMD_PORT2_RESP);
	if (r[1] == 1) {
		CHECK(n == 2);
		return;
	}
	CHECK(r[1] == 0 && n >= 14);
	nlen = be16(r + 10);
	CHECK(n >= 14 + nlen);
	elen = be16(r + 12 + nlen);
	CHECK(n == 14 + nlen + elen);
	CHECK(nlen == req->name_len && memcmp(r + 12, req->name, nlen) == 0);
	for (i = 0; i < ncands && !found; i++) {
		const struct proto_alive2 *a = &cands[i].a;

		found = a->name_len == nlen &&
		    memcmp(a->name, r + 12, nlen) == 0 &&
		    a->port == be16(r + 2) && a->node_type == r[4] &&
		    a->protocol == r[5] && a->high == be16(r + 6) &&
		    a->low == be16(r + 8) && a->extra_len == elen &&
		    (elen == 0 || memcmp(a->extra, r + 14 + nlen, elen) == 0);
	}
	CHECK(found);
}

/* A new 'v' creation for a name must exceed every earlier one. */
static void
note_creation(const struct proto_alive2 *a, uint32_t creation)
{
	struct creation_seen	*s = NULL;
	size_t			 i;

	for (i = 0; i < nseen; i++)
		if (seen[i].name_len == a->name_len &&
		    memcmp(seen[i].name, a->name, a->name_len) == 0) {
			s = &seen[i];
			break;
		}
	if (s == NULL) {
		CHECK(nseen < MAX_CONNS);
		s = &seen[nseen++];
		memcpy(s->name, a->name, a->name_len);
		s->name_len = a->name_len;
		s->prev = s->cur = 0;
		s->step = step_no;
	}
	if (s->step != step_no) {
		s->prev = s->cur;
		s->step = step_no;
	}
	CHECK(creation > s->prev);
	if (creation > s->cur)
		s->cur = creation;
}

/* An ALIVE2 reply: 'v' for HighestVersion >= 6, else 'y'. */
static void
check_alive2_reply(struct client *c, const uint8_t *r, size_t n,
    const struct proto_alive2 *a)
{
	bool	 can_register = proto_name_valid(a->name, a->name_len) &&
	    a->extra_len <= EPMD_MAXSYMLEN;
	uint32_t creation;

	if (a->high >= EPMD_X_RESP_VERSION) {
		CHECK(n == 6 && r[0] == EPMD_ALIVE2_X_RESP);
		creation = be32(r + 2);
	} else {
		CHECK(n == 4 && r[0] == EPMD_ALIVE2_RESP);
		creation = be16(r + 2);
	}
	CHECK(r[1] == 0 || r[1] == 1);
	if (r[1] == 1) {
		CHECK(creation == EPMD_ERROR_CREATION);
		/* epmd-c closes a failed registration (PROTOCOL.md 8.4). */
		CHECK(c->eof);
		return;
	}
	CHECK(can_register);
	if (a->high >= EPMD_X_RESP_VERSION)
		CHECK(creation >= 4);
	else
		CHECK(creation >= 1 && creation <= 3);
	if (!c->noted) {
		if (a->high >= EPMD_X_RESP_VERSION)
			note_creation(a, creation);
		c->noted = true;
		c->alive_ok = true;
	}
}

/*
 * A registration that was live when c's request was complete and still is:
 * the server must have seen it while serving c. Returns the i-th such
 * client (i counts from 0), or NULL when there are no more.
 */
static const struct client *
live_owner(const struct client *c, int i)
{
	int	 j, k;

	for (j = 0; j < c->nowners; j++)
		for (k = 0; k < NSLOTS; k++) {
			const struct client *o = &clients[k];

			if (o->fd < 0 || o->serial != c->owners[j] ||
			    !expect_registered(o))
				continue;
			if (i-- == 0)
				return o;
		}
	return NULL;
}

/* The registration a client holds: its ALIVE2 name and port. */
static void
owner_name(const struct client *o, const uint8_t **name, size_t *len,
    uint16_t *port)
{
	*name = o->sent + EPMD_FRAME_HEADER + 11;
	*len = be16(o->sent + EPMD_FRAME_HEADER + 9);
	*port = be16(o->sent + EPMD_FRAME_HEADER + 1);
}

/* Does r[0..n) hold prefix, name, mid, the port in decimal and end? */
static bool
reply_mentions(const uint8_t *r, size_t n, const char *prefix,
    const uint8_t *name, size_t len, const char *mid, uint16_t port,
    const char *end)
{
	uint8_t	 want[PROTO_LINE_MAX + 32];
	size_t	 w = 0, pl = strlen(prefix), ml = strlen(mid);
	size_t	 el = strlen(end);
	int	 dl;

	memcpy(want, prefix, pl);
	w = pl;
	memcpy(want + w, name, len);
	w += len;
	memcpy(want + w, mid, ml);
	w += ml;
	dl = snprintf((char *)want + w, sizeof(want) - w, "%u", port);
	w += (size_t)dl;
	memcpy(want + w, end, el);
	w += el;
	return memmem(r, n, want, w) != NULL;
}

/* Replies that must reflect the registrations live throughout. */
static void
check_against_owners(const struct client *c, const struct proto_request *req,
    const uint8_t *r, size_t n)
{
	const struct client	*o;
	const uint8_t		*name;
	size_t			 len;
	uint16_t		 port;
	int			 i;

	for (i = 0; (o = live_owner(c, i)) != NULL; i++) {
		owner_name(o, &name, &len, &port);
		switch (req->type) {
		case PROTO_REQ_PORT_PLEASE2:
			/* A registered name is always found. */
			if (len == req->name_len &&
			    memcmp(name, req->name, len) == 0)
				CHECK(n > 2 && r[1] == 0);
			break;
		case PROTO_REQ_NAMES:
			CHECK(reply_mentions(r, n, "name ", name, len,
			    " at port ", port, "\n"));
			break;
		case PROTO_REQ_DUMP:
			CHECK(reply_mentions(r, n, "active name     <", name,
			    len, "> at port ", port, ", fd = "));
			break;
		case PROTO_REQ_KILL:
			/* Strict mode never exits under a live node. */
			CHECK(opts.relaxed || memcmp(r, "NO", 2) == 0);
			break;
		case PROTO_REQ_STOP:
			if (len == req->name_len &&
			    memcmp(name, req->name, len) == 0)
				CHECK(n == 7);
			break;
		default:
			break;
		}
	}
}

/*
 * Is what the client read a valid answer to what it sent? Called after
 * each settle; alive_only restricts it to ALIVE2 replies (checked first,
 * so creation order follows registration order).
 */
static void
check_reply(struct client *c, bool alive_only)
{
	const uint8_t		*body, *r = c->recv;
	size_t			 blen, n = c->nrecv;
	uint8_t			 copy[EPMD_MAX_FRAME_BODY];
	struct proto_request	 req;
	enum proto_error	 err;

	if (c->fd < 0 || c->slow ||
	    (n == c->checked && c->eof == c->checked_eof))
		return;
	if (!client_frame(c, &body, &blen)) {
		CHECK(n == 0);
		goto done;
	}
	if (alive_only != (body[0] == EPMD_ALIVE2_REQ))
		return;
	if (n == 0)
		goto done;
	memcpy(copy, body, blen);
	err = proto_decode(copy, blen, &req);
	/* Malformed requests close silently. */
	CHECK(err == PROTO_OK);
	if (req.type != PROTO_REQ_PORT_PLEASE2 && req.type != PROTO_REQ_NAMES)
		CHECK(!c->remote);
	/* Only a registration (or KILL's OK) keeps the connection open. */
	if (req.type != PROTO_REQ_ALIVE2 && req.type != PROTO_REQ_KILL)
		CHECK(c->eof);
	switch (req.type) {
	case PROTO_REQ_ALIVE2:
		check_alive2_reply(c, r, n, &req.alive2);
		break;
	case PROTO_REQ_PORT_PLEASE2:
		check_port2(r, n, &req);
		break;
	case PROTO_REQ_NAMES:
	case PROTO_REQ_DUMP:
		CHECK(n >= 4 && be32(r) == expected_header(c));
		if (req.type == PROTO_REQ_NAMES)
			check_names_lines(r + 4, n - 4);
		else
			check_dump_entries(r + 4, n - 4);
		break;
	case PROTO_REQ_KILL:
		CHECK(n == 2);
		if (memcmp(r, "NO", 2) == 0) {
			CHECK(!opts.relaxed);
			CHECK(c->eof);
		} else {
			CHECK(memcmp(r, "OK", 2) == 0);
			CHECK(srv.exiting || c->saw_exit);
		}
		break;
	case PROTO_REQ_STOP:
		CHECK(opts.relaxed);
		CHECK((n == 7 && memcmp(r, "STOPPED", 7) == 0) ||
		    (n == 14 && memcmp(r, "NOEXISTSTOPPED", 14) == 0));
		break;
	}
	if (c->eof || req.type == PROTO_REQ_KILL)
		check_against_owners(c, &req, r, n);
done:
	c->checked = n;
	c->checked_eof = c->eof;
}

/* Is this client's registration expected to be alive right now? */
static bool
expect_registered(const struct client *c)
{
	const uint8_t	*body;
	size_t		 blen;

	if (c->fd < 0 || !c->alive_ok || c->eof || c->wr_shut)
		return false;
	if (!client_frame(c, &body, &blen))
		return false;
	/* Any byte after the frame ends the registration. */
	return c->nsent == blen + EPMD_FRAME_HEADER;
}

/* The state after a settle, when the server is running. */
struct visit {
	bool	 matched[NSLOTS];
	size_t	 count;
};

/* One active node: alive, findable, owned by the right client. */
static void
check_active_node(const struct node *node, void *arg)
{
	struct visit		*v = arg;
	struct sockaddr_storage	 peer;
	socklen_t		 len = sizeof(peer);
	const uint8_t		*body;
	size_t			 blen;
	int			 i, owner = -1;

	v->count++;
	CHECK(node->active);
	CHECK(node->handle != NULL);
	CHECK(registry_lookup(srv.reg, node->info.name, node->info.name_len)
	    == node);
	CHECK(node->fd >= 0 && fcntl(node->fd, F_GETFD) != -1);
	memset(&peer, 0, sizeof(peer));
	if (syscall(SYS_getpeername, node->fd, (struct sockaddr *)&peer,
	    &len) == 0) {
		for (i = 0; i < NSLOTS; i++)
			if (clients[i].fd >= 0 &&
			    same_sockaddr(&clients[i].local, &peer)) {
				owner = i;
				break;
			}
	}
	/*
	 * A node never outlives its connection's client, except while
	 * -delay_write holds its reply back: the server reads nothing then,
	 * so it learns of the close only when the reply fails (finish()
	 * checks that it does).
	 */
	if (owner < 0 && opts.delay_write > 0)
		return;
	CHECK(owner >= 0);
	CHECK(!v->matched[owner]);
	v->matched[owner] = true;
	if (opts.delay_write > 0 &&
	    (clients[owner].slow || clients[owner].nrecv == 0)) {
		/*
		 * Registered, its reply perhaps held back by -delay_write:
		 * the server reads nothing from it meanwhile, so a half-close
		 * or even EOF may not have been noticed yet.
		 */
	} else if (clients[owner].slow) {
		/* Its reply is never read; it still holds the node. */
		CHECK(!clients[owner].eof && !clients[owner].wr_shut);
	} else
		CHECK(expect_registered(&clients[owner]));
	CHECK(client_frame(&clients[owner], &body, &blen));
	CHECK(node->info.name_len == be16(body + 9));
	CHECK(memcmp(node->info.name, body + 11, node->info.name_len) == 0);
	CHECK(node->info.port == be16(body + 1));
	CHECK(node->info.extra_len ==
	    be16(body + 11 + node->info.name_len));
	CHECK(node->info.extra_len == 0 || memcmp(node->info.extra,
	    body + 13 + node->info.name_len, node->info.extra_len) == 0);
}

/* One old/unused record: inactive, no handle, not found by lookup. */
static void
check_unused_node(const struct node *node, void *arg)
{
	size_t *count = arg;

	(*count)++;
	CHECK(!node->active);
	CHECK(node->handle == NULL);
	CHECK(registry_lookup(srv.reg, node->info.name, node->info.name_len)
	    == NULL);
}

/*
 * Timeouts on the virtual clock (PROTOCOL.md 8.4): an unregistered
 * connection closes once silent for packet_timeout + 1 s, counted from
 * when reading starts (after -delay_accept) or the last byte read, and a
 * served one right after its -delay_write; none closes earlier.
 */
static void
check_timing(const struct visit *v)
{
	int64_t	 pt = (int64_t)(opts.packet_timeout + 1) * NSEC;
	int64_t	 da = (int64_t)opts.delay_accept * NSEC;
	int64_t	 dw = (int64_t)opts.delay_write * NSEC;
	int	 i;

	for (i = 0; i < NSLOTS; i++) {
		const struct client *c = &clients[i];
		const uint8_t *body;
		size_t blen;
		int64_t start;
		bool framed;

		if (c->fd < 0 || c->saw_exit || c->slow)
			continue;
		framed = client_frame(c, &body, &blen);
		if (!c->eof) {
			if (v->matched[i] || c->enabled_at == 0)
				continue;	/* registered, or not reading yet */
			start = c->enabled_at > c->read_at ? c->enabled_at :
			    c->read_at;
			if (framed) {
				int64_t t = c->frame_at > c->enabled_at ?
				    c->frame_at : c->enabled_at;

				/* Served within -delay_write of its frame. */
				CHECK(settle_at <= t + dw + LATE_SLACK);
			} else
				CHECK(settle_at <= start + pt + LATE_SLACK);
			continue;
		}
		/*
		 * Closed silently while still reading, seen in this settle:
		 * only the timeout may do that, and not before its time.
		 */
		if (c->eof_at != settle_at || c->remote || c->shed ||
		    c->wr_shut || framed || c->nrecv > 0)
			continue;
		if (c->nsent >= EPMD_FRAME_HEADER && (be16(c->sent) == 0 ||
		    be16(c->sent) > EPMD_MAX_FRAME_BODY))
			continue;
		start = c->opened_at + da > c->read_at ? c->opened_at + da :
		    c->read_at;
		CHECK(settle_at + EARLY_SLACK >= start + pt);
	}
}

/* Invariants after a settle of a running server. */
static void
check_state(void)
{
	struct visit	 v;
	size_t		 unused = 0, live = 0, slow = 0, conns;
	int		 i;

	for (i = 0; i < NSLOTS; i++)
		check_reply(&clients[i], true);
	for (i = 0; i < NSLOTS; i++)
		check_reply(&clients[i], false);
	if (srv.exiting)
		return;
	memset(&v, 0, sizeof(v));
	walk_all(srv.reg, true, check_active_node, &v);
	CHECK(v.count == registry_count(srv.reg));
	for (i = 0; i < NSLOTS; i++) {
		if (expect_registered(&clients[i]))
			CHECK(v.matched[i]);
		if (clients[i].fd >= 0 && !clients[i].eof) {
			if (clients[i].slow)
				slow++;
			else
				live++;
		}
	}
	walk_all(srv.reg, false, check_unused_node, &unused);
	CHECK(unused == registry_unused_count(srv.reg));
	/*
	 * Every open client is a pending or a registered connection. While a
	 * delay holds reading or writing off, a closed client can still have
	 * its connection; the timing checks bound how long.
	 */
	conns = srv.conns.npending + registry_count(srv.reg);
	CHECK(conns >= live);
	/*
	 * A slow reader may not see EOF yet: the server closed once its
	 * reply was in the kernel, and the FIN waits behind the data.
	 */
	if (opts.delay_accept == 0 && opts.delay_write == 0)
		CHECK(conns <= live + slow);
	check_timing(&v);
}

/* Forget a client slot, closing its socket (RST when asked). */
static void
client_close(struct client *c, bool rst)
{
	if (c->fd < 0)
		return;
	if (rst) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(c->fd);
	c->fd = -1;
}

/* With FUZZ_CONN_TRACE set, show what a client sent and read. */
static void
trace_client(const struct client *c, const char *why)
{
	static int	 trace = -1;
	size_t		 k;

	if (trace == -1)
		trace = getenv("FUZZ_CONN_TRACE") != NULL;
	if (!trace)
		return;
	fprintf(stderr, "%s: fam %d remote %d shut %d eof %d reset %d "
	    "exit %d sent %zu [", why, c->family, c->remote, c->wr_shut,
	    c->eof, c->reset, c->saw_exit, c->nsent);
	for (k = 0; k < c->nsent && k < 24; k++)
		fprintf(stderr, "%02x", c->sent[k]);
	fprintf(stderr, "] recv %zu [", c->nrecv);
	for (k = 0; k < c->nrecv && k < 80; k++)
		fprintf(stderr, "%c", c->recv[k] >= 0x20 && c->recv[k] < 0x7f ?
		    c->recv[k] : '.');
	fprintf(stderr, "]\n");
}

/* Check what a client read one last time, then close it. */
static void
client_finish(struct client *c, bool rst)
{
	if (c->fd < 0)
		return;
	check_reply(c, true);
	check_reply(c, false);
	trace_client(c, rst ? "reset" : "close");
	client_close(c, rst);
}

/* A source address for the next client: 127/8 spreads the ports. */
static void
next_source(struct sockaddr_storage *ss, int family)
{
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = (sa_family_t)family;
	if (family == AF_INET) {
		uint32_t n = src_counter++ % 65000;

		((struct sockaddr_in *)ss)->sin_addr.s_addr =
		    htonl(0x7f010000u | (n + 1));
	} else
		((struct sockaddr_in6 *)ss)->sin6_addr = in6addr_loopback;
}

/* The documentation address that stands in for a remote peer. */
static void
fake_remote(struct sockaddr_storage *ss, const struct sockaddr_storage *real,
    int variant)
{
	memcpy(ss, real, sizeof(*ss));
	if (real->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_addr.s_addr =
		    htonl(0xc0000201u + (uint32_t)variant);	/* 192.0.2.1 */
	else {
		struct in6_addr a = { .s6_addr = { 0x20, 0x01, 0x0d, 0xb8 } };

		a.s6_addr[15] = (uint8_t)(1 + variant);	/* 2001:db8::1 */
		((struct sockaddr_in6 *)ss)->sin6_addr = a;
	}
}

/* poll() one descriptor for up to 5 s, through interruptions. */
static int
poll_bounded(struct pollfd *pfd)
{
	int	 i, n = -1;

	for (i = 0; i < 50; i++) {
		n = poll(pfd, 1, 100);
		if (n != 0 && !(n == -1 && errno == EINTR))
			break;
	}
	return n;
}

/* Bytes a new client sends before the server accepts it. */
struct early_bytes {
	const uint8_t	*hdr;
	size_t		 hlen;
	const uint8_t	*p;
	size_t		 n;
};

static void	send_bytes(struct client *, const uint8_t *, size_t,
		    const uint8_t *, size_t);

/* Connect a client in slot k, accept it and give it to conn_accept. */
static bool
client_open(int k, uint8_t p, const struct early_bytes *early)
{
	struct client		*c = &clients[k];
	struct sockaddr_storage	 dst, src, acc;
	socklen_t		 len;
	int			 family = AF_INET, fd, afd, one = 1;
	struct pollfd		 pfd;
	struct fake		*fk;
	uint8_t			*recv = c->recv;

	if ((p & 2) && have_v6)
		family = AF_INET6;
	client_finish(c, false);
	if (nconns >= MAX_CONNS)
		return false;
	nconns++;
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->family = family;
	c->remote = p & 1;
	c->slow = (p >> 4) & 1;
	c->recv = recv;
	c->opened_at = vnow();
	c->serial = ++serials;
	if (opts.delay_accept == 0)
		c->enabled_at = c->opened_at;

	memset(&dst, 0, sizeof(dst));
	dst.ss_family = (sa_family_t)family;
	if (family == AF_INET) {
		((struct sockaddr_in *)&dst)->sin_addr.s_addr =
		    htonl(INADDR_LOOPBACK);
		((struct sockaddr_in *)&dst)->sin_port = htons(lport[0]);
	} else {
		((struct sockaddr_in6 *)&dst)->sin6_addr = in6addr_loopback;
		((struct sockaddr_in6 *)&dst)->sin6_port = htons(lport[1]);
	}
	if ((fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		fail(__LINE__, "socket");
	setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	if (p & 8) {
		int small = 1024;	/* the kernel makes it 2304 */

		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	}
	next_source(&src, family);
	/* Non-blocking: libFuzzer's SIGALRM must not interrupt a connect. */
	fcntl(fd, F_SETFL, O_NONBLOCK);
	if (bind(fd, (struct sockaddr *)&src, sa_len(family)) == -1)
		fail(__LINE__, "bind");
	if (connect(fd, (struct sockaddr *)&dst, sa_len(family)) == -1) {
		int err = 0;
		socklen_t elen = sizeof(err);

		if (errno != EINPROGRESS && errno != EINTR) {
			fprintf(stderr, "fuzz_conn: connect: %s\n",
			    strerror(errno));
			abort();
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		if (poll_bounded(&pfd) != 1 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == -1 ||
		    err != 0)
			fail(__LINE__, "connect did not complete");
	}
	len = sizeof(c->local);
	if (getsockname(fd, (struct sockaddr *)&c->local, &len) == -1)
		fail(__LINE__, "getsockname");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fd = fd;
	if (early != NULL) {
		const uint8_t *body;
		size_t blen;

		send_bytes(c, early->hdr, early->hlen, early->p, early->n);
		/* conn_accept reads them at once (after -delay_accept). */
		c->unread = false;
		c->read_at = c->opened_at;
		if (client_frame(c, &body, &blen))
			c->frame_at = c->opened_at;
	}

	pfd.fd = lfd[family == AF_INET6];
	pfd.events = POLLIN;
	if (poll_bounded(&pfd) != 1)
		fail(__LINE__, "the listener never saw the connection");
	len = sizeof(acc);
	afd = accept4(lfd[family == AF_INET6], (struct sockaddr *)&acc, &len,
	    SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (afd == -1)
		fail(__LINE__, "accept4");
	CHECK(same_sockaddr(&acc, &c->local));

	/* Remember how getpeername() must describe this peer. */
	CHECK(nfakes < MAX_CONNS);
	fk = &fakes[nfakes++];
	fk->real = c->local;
	fk->remote = c->remote;
	fake_remote(&fk->fake, &c->local, (p >> 2) & 1);
	CHECK(naccepted < MAX_CONNS);
	accepted[naccepted++] = afd;
	if (p & 8) {
		int small = 1024;	/* the kernel makes it 4608 */

		setsockopt(afd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	}
	conn_accept(&srv, afd, (struct sockaddr *)(c->remote ? &fk->fake :
	    &acc), (int)sa_len(family));
	return true;
}

/* Note an ALIVE2 request that a reply may later echo. */
static void
note_candidate(const struct client *c)
{
	const uint8_t		*body;
	size_t			 blen;
	struct proto_request	 req;
	struct candidate	*cd;

	if (!client_frame(c, &body, &blen) || body[0] != EPMD_ALIVE2_REQ ||
	    proto_decode(body, blen, &req) != PROTO_OK ||
	    !proto_name_valid(req.alive2.name, req.alive2.name_len) ||
	    req.alive2.extra_len > EPMD_MAXSYMLEN)
		return;
	CHECK(ncands < MAX_CONNS);
	cd = &cands[ncands++];
	cd->a = req.alive2;
	memcpy(cd->name, req.alive2.name, req.alive2.name_len);
	memcpy(cd->extra, req.alive2.extra, req.alive2.extra_len);
	cd->a.name = cd->name;
	cd->a.extra = cd->extra;
}

/* Send bytes from a client and remember what went out. */
static void
send_bytes(struct client *c, const uint8_t *hdr, size_t hlen,
    const uint8_t *p, size_t n)
{
	struct iovec	 iov[2];
	struct msghdr	 msg;
	bool		 had_frame;
	const uint8_t	*body;
	size_t		 blen, i;
	ssize_t		 w = -1;

	if (hlen + n == 0)
		return;
	iov[0].iov_base = (void *)(uintptr_t)hdr;
	iov[0].iov_len = hlen;
	iov[1].iov_base = (void *)(uintptr_t)p;
	iov[1].iov_len = n;
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = iov;
	msg.msg_iovlen = 2;
	for (i = 0; i < 8; i++) {
		w = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w != -1 || errno != EINTR)
			break;
	}
	if (w <= 0)
		return;
	c->unread = true;
	had_frame = client_frame(c, &body, &blen);
	for (i = 0; i < (size_t)w; i++) {
		uint8_t b = i < hlen ? hdr[i] : p[i - hlen];

		if (c->nsent < SENT_MAX)
			c->sent[c->nsent] = b;
		c->nsent++;
	}
	if (!had_frame && client_frame(c, &body, &blen)) {
		int k;

		/* Who is registered as this request becomes whole. */
		c->nowners = 0;
		for (k = 0; k < NSLOTS; k++)
			if (&clients[k] != c && expect_registered(&clients[k]))
				c->owners[c->nowners++] = clients[k].serial;
		if (ncands < MAX_CONNS)
			note_candidate(c);
	}
}

/*
 * Write bytes from a client. An empty slot gets a new connection whose
 * bytes are sent before the server accepts it, so conn_accept finds them
 * already there (the common case for a real client).
 */
static void
client_write(int k, const uint8_t *hdr, size_t hlen, const uint8_t *p,
    size_t n)
{
	struct client		*c = &clients[k];
	struct early_bytes	 early = { hdr, hlen, p, n };

	if (c->fd < 0) {
		client_open(k, 0, &early);
		return;
	}
	send_bytes(c, hdr, hlen, p, n);
}

/* Wait (bounded) until every open, reading client has seen EOF. */
static void
wait_for_eofs(void)
{
	int	 i, tries;
	bool	 all;

	for (tries = 0; tries < STEP_RETRIES; tries++) {
		drain_all();
		all = true;
		for (i = 0; i < NSLOTS; i++)
			if (clients[i].fd >= 0 && !clients[i].slow &&
			    !clients[i].eof)
				all = false;
		if (all)
			return;
		usleep(1000);
	}
}

/* The server exited (KILL): close all as server_loop does, then restart. */
static void
handle_exit(void)
{
	int i;

	CHECK(srv.exit_status == 0);
	drain_all();
	for (i = 0; i < NSLOTS; i++)
		if (clients[i].fd >= 0)
			clients[i].saw_exit = true;
	conn_close_all(&srv);
	CHECK(registry_count(srv.reg) == 0);
	CHECK(srv.conns.npending == 0);
	CHECK(srv.admit.nremote == 0 && peercount_size(srv.admit.addrs) == 0 &&
	    peercount_size(srv.admit.prefixes) == 0);
	wait_for_eofs();
	for (i = 0; i < NSLOTS; i++) {
		if (clients[i].fd < 0 || clients[i].slow)
			continue;
		/* Every connection is closed at exit: clients see EOF. */
		CHECK(clients[i].eof);
	}
	check_state();
	for (i = 0; i < NSLOTS; i++)
		client_finish(&clients[i], false);
	server_stop();
	check_accepted_closed();
	nfakes = 0;
	server_start();
}

/*
 * Run the loop to quiescence, then check; restart after an exit. Checks
 * that fail are retried after a pause (STEP_RETRIES): only a failure that
 * lasts is reported.
 */
static void
step(void)
{
	jmp_buf	 jb;
	int	 tries;

	step_no++;
	for (tries = 0; tries < STEP_RETRIES; tries++) {
		settle();
		if (setjmp(jb) == 0) {
			soft_fail = &jb;
			check_state();
			soft_fail = NULL;
			break;
		}
		soft_fail = NULL;
		usleep(1000);
	}
	if (tries == STEP_RETRIES) {
		settle();
		check_state();
	}
	if (srv.exiting)
		handle_exit();
}

/* Close every client, let the server notice, and check it is empty. */
static void
finish(void)
{
	int	 i, n, tries, advanced = 0;

	for (i = 0; i < NSLOTS; i++)
		client_finish(&clients[i], false);
	for (tries = 0; tries < STEP_RETRIES; tries++) {
		settle();
		if (srv.exiting) {
			handle_exit();
			continue;
		}
		if (srv.conns.npending == 0 && registry_count(srv.reg) == 0)
			break;
		/*
		 * Delayed connections notice their closed peers only when a
		 * delay ends, and a request read then starts -delay_write.
		 */
		if ((opts.delay_accept > 0 || opts.delay_write > 0) &&
		    advanced++ < 4) {
			clock_skew += (int64_t)(opts.delay_accept +
			    opts.delay_write + 1) * NSEC;
			continue;
		}
		usleep(1000);	/* a FIN still on its way (see STEP_RETRIES) */
	}
	check_state();
	CHECK(registry_count(srv.reg) == 0);
	CHECK(srv.conns.npending == 0);
	CHECK(srv.admit.nremote == 0 && peercount_size(srv.admit.addrs) == 0 &&
	    peercount_size(srv.admit.prefixes) == 0);
	CHECK(TAILQ_EMPTY(&srv.conns.pending) &&
	    TAILQ_EMPTY(&srv.conns.registered));
	/* Nothing left but (perhaps) the status and pressure report timers. */
	n = event_base_get_num_events(srv.base, EVENT_BASE_COUNT_ADDED);
	CHECK(n <= (srv.status_timer != NULL &&
	    evtimer_pending(srv.status_timer, NULL) ? 1 : 0) +
	    (evtimer_pending(srv.admit.report, NULL) ? 1 : 0));
	server_stop();
	check_accepted_closed();
	nfakes = 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t	*recv_bufs;
	size_t		 off = 2, nops = 0;
	int		 i;

	if (size < 1)
		return 0;
	if (recv_bufs == NULL) {
		if ((recv_bufs = malloc((size_t)NSLOTS * RECV_MAX)) == NULL)
			abort();
	}
	for (i = 0; i < NSLOTS; i++) {
		memset(&clients[i], 0, sizeof(clients[i]));
		clients[i].fd = -1;
		clients[i].recv = recv_bufs + (size_t)i * RECV_MAX;
	}
	if (size < 2)
		return 0;
	nconns = naccepted = nfakes = 0;
	clock_skew = 0;
	skew_on = true;
	set_options(data[0], data[1]);
	server_start();

	while (off < size && nops++ < MAX_OPS) {
		uint8_t		 op = data[off++];
		int		 kind = op & 7, k = (op >> 3) & 7;
		bool		 loop = !(op & 0x40), flag = op & 0x80;
		size_t		 n = 0;
		uint8_t		 hdr[2];

		switch (kind) {
		case OP_RAW8:
		case OP_RAW16:
		case OP_FRAME:
			if (kind == OP_RAW16 || (kind == OP_FRAME && flag)) {
				if (off + 2 > size)
					goto out;
				n = be16(data + off);
				off += 2;
			} else {
				if (off + 1 > size)
					goto out;
				n = data[off++];
			}
			hdr[0] = (uint8_t)(n >> 8);
			hdr[1] = (uint8_t)n;
			if (n > MAX_WRITE)
				n = MAX_WRITE;
			if (n > size - off)
				n = size - off;
			client_write(k, hdr, kind == OP_FRAME ? 2 : 0,
			    data + off, n);
			off += n;
			break;
		case OP_CLOSE:
		case OP_RESET:
			client_finish(&clients[k], kind == OP_RESET);
			break;
		case OP_SHUTWR:
			if (clients[k].fd >= 0 && !clients[k].wr_shut) {
				shutdown(clients[k].fd, SHUT_WR);
				clients[k].wr_shut = true;
			}
			break;
		case OP_SHED: {
			static const int64_t steps[8] = { 100 * MSEC, NSEC,
			    2 * NSEC, 3 * NSEC, 6 * NSEC, 30 * NSEC, 61 * NSEC,
			    62 * NSEC };
			size_t before = srv.conns.npending, shed;

			if (flag) {
				/*
				 * The server runs all along: what is pending
				 * now is served now, then time passes and the
				 * timers due meanwhile fire.
				 */
				step();
				clock_skew += steps[k];
				loop = true;
				break;
			}
			for (i = 0; i < NSLOTS; i++)
				clients[i].shed = clients[i].fd >= 0;
			shed = conn_shed_idle(&srv, (size_t)k, 0);
			CHECK(shed <= (size_t)k && shed <= before);
			CHECK(srv.conns.npending == before - shed);
			break;
		}
		case OP_OPEN:
			if (off + 1 > size)
				goto out;
			client_open(k, data[off++], NULL);
			break;
		}
		/* conn_accept may have served a KILL on the spot. */
		if (loop || srv.exiting)
			step();
	}
out:
	step();
	finish();
	skew_on = false;
	return 0;
}
