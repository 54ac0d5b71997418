/*
 * loadgen: the bench's load generator (bench/README.md).
 *
 * One process, one epoll loop, no threads. It registers nodes and keeps
 * their connections open, runs timed phases of lookups from C concurrent
 * clients, opens half-open connections, and checks every answer byte for
 * byte. The daemon's CPU time and memory are read from /proc/PID around
 * each phase. Each result is one JSON object per line on stdout, which
 * bench/run reads; progress and problems go to stderr.
 *
 * Usage: loadgen --port P [--pid PID] [--null] [options] SCENARIO
 * SCENARIO is lookups, registry, churn, idle or fdlimit; see usage().
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define NS		1000000000ULL
#define MS		1000000ULL
#define MAX_EVENTS	512
#define MAX_SLOTS	20000
#define MAX_LATENCIES	(8u << 20)
#define REPLY_MAX	64
#define NAMES_MAX	(64u << 20)
#define CHURN_PER_SLOT	16

/* What epoll's data word says an event belongs to. */
enum tag { TAG_SLOT = 1, TAG_HELD, TAG_IDLE };
#define MKDATA(t, i)	(((uint64_t)(t) << 32) | (uint32_t)(i))

/* What a slot of the engine does, again and again, during a phase. */
enum kind { K_LOOKUP, K_REGISTER, K_IDLE, K_CHURN };
enum state { ST_FREE, ST_CONNECT, ST_READ, ST_HOLD };

/* How each attempt ended. */
enum result { RES_OK, RES_WRONG, RES_REFUSED, RES_CONNECT, RES_RESET, RES_TIMEOUT,
    RES_EMPTY, RES_NRESULTS };
static const char *const result_names[RES_NRESULTS] = {
	"ok", "wrong", "refused", "err_connect", "err_reset", "err_timeout",
	"err_empty"
};

struct counts {
	uint64_t n[RES_NRESULTS];
};

/* A registration the generator holds open. fd -1 once it has ended. */
struct held {
	int		 fd;
	uint32_t	 name;
};

/* A churn name's life as the generator sees it. */
struct churn_name {
	uint8_t		 held;
	uint32_t	 gen;
};

/* One concurrent client. */
struct slot {
	int		 fd;
	uint8_t		 kind;
	uint8_t		 state;
	uint8_t		 done;		/* no more work this phase */
	uint8_t		 pool;		/* lookup target: 0 held, 1 churn,
					 * 2 a name never registered */
	uint8_t		 must_find;	/* churn name was registered at send */
	uint32_t	 ref;		/* held index or name index */
	uint32_t	 gen;
	uint32_t	 cycle;
	uint32_t	 ord;		/* index among slots of its kind */
	uint64_t	 t0;
	uint64_t	 t_timeout;
	uint64_t	 t_hold_end;
	size_t		 got;
	size_t		 reqlen;
	uint8_t		 req[32];
	uint8_t		 buf[REPLY_MAX];
};

/* A timed phase: which work is left and how it went. */
struct phase {
	uint64_t	 stop_at;	/* start no new work after this */
	uint64_t	 req_timeout;
	uint32_t	 reg_next, reg_end;
	uint32_t	 idle_next, idle_end;
	uint64_t	 hold_ns;
	struct counts	 look, reg, idle;
	uint64_t	 churn_regs, churn_lost;
	uint64_t	 fin_closes;
};

static struct {
	struct sockaddr_in addr;
	uint16_t	 port;
	pid_t		 pid;
	int		 null_mode;
	int		 ep;
	uint64_t	 rng;
	struct held	*held;
	size_t		 nheld, held_cap, held_lost;
	int		*idle;
	size_t		 nidle, idle_cap, idle_lost;
	struct churn_name *churn;
	size_t		 nchurn;
	uint32_t	*lat;
	size_t		 nlat;
	struct slot	*slots;
	size_t		 nslots;
	int32_t		*held_by_name;	/* name index -> held index */
	size_t		 held_by_name_len;
} g;

/* Options. */
static struct {
	int		 rounds;
	double		 duration;
	double		 timeout;
	double		 reg_secs;
	long		 nodes;
	long		 idle;
	long		 window;
	long		 names_samples;
	long		 churn_slots;
	long		 lookup_conc;
	int		 conc[8];
	int		 nconc;
} opt = { 3, 2.0, 2.0, 20.0, 1, 3000, 64, 11, 8, 16, { 1, 16, 256 }, 3 };

/* Nanoseconds on the monotonic clock. */
static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

/* A fast pseudo-random number (xorshift64*). */
static uint64_t
rnd(void)
{
	g.rng ^= g.rng >> 12;
	g.rng ^= g.rng << 25;
	g.rng ^= g.rng >> 27;
	return g.rng * 0x2545F4914F6CDD1DULL;
}

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("loadgen: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* calloc or die. */
static void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (p == NULL)
		die("out of memory");
	return p;
}

/* Parse a decimal in [lo, hi] or die naming the option. */
static long
parse_long(const char *what, const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		die("%s: want an integer in %ld..%ld, got '%s'", what, lo, hi, s);
	return v;
}

/* Parse seconds in [lo, hi] or die naming the option. */
static double
parse_secs(const char *what, const char *s, double lo, double hi)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi))
		die("%s: want seconds in %g..%g, got '%s'", what, lo, hi, s);
	return v;
}

/* Parse "1,16,256" into opt.conc. */
static void
parse_conc(const char *s)
{
	char buf[128], *tok, *save = NULL;

	if (strlen(s) >= sizeof(buf))
		die("--conc: too long");
	memcpy(buf, s, strlen(s) + 1);
	opt.nconc = 0;
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		if (opt.nconc == (int)(sizeof(opt.conc) / sizeof(opt.conc[0])))
			die("--conc: at most 8 values");
		opt.conc[opt.nconc++] = (int)parse_long("--conc", tok, 1,
		    MAX_SLOTS);
	}
	if (opt.nconc == 0)
		die("--conc: empty");
}

/* ------------------------------------------------------------------ */
/* The daemon seen through /proc.                                      */

/* The daemon's CPU time in ns (all threads), or 0 if unknown. */
static uint64_t
daemon_cpu_ns(void)
{
	char path[64], line[256];
	unsigned long long run, total = 0, ut, st;
	struct dirent *de;
	FILE *f;
	DIR *d;
	int found = 0;

	if (g.pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)g.pid);
	if ((d = opendir(path)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/proc/%d/task/%.16s/schedstat",
			    (int)g.pid, de->d_name);
			if ((f = fopen(path, "r")) == NULL)
				continue;
			if (fscanf(f, "%llu", &run) == 1) {
				total += run;
				found = 1;
			}
			fclose(f);
		}
		closedir(d);
	}
	if (found)
		return total;
	/* No schedstat: fall back to utime+stime in clock ticks. */
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)g.pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	if (fgets(line, sizeof(line), f) != NULL) {
		char *p = strrchr(line, ')');

		if (p != NULL && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u "
		    "%*u %*u %*u %*u %llu %llu", &ut, &st) == 2)
			total = (ut + st) * (NS / (unsigned long long)
			    sysconf(_SC_CLK_TCK));
	}
	fclose(f);
	return total;
}

/* The daemon's resident set in kB, or -1. */
static long
daemon_rss_kb(void)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	if (g.pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)g.pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* How many descriptors the daemon has open, or -1. */
static long
daemon_fds(void)
{
	char path[64];
	struct dirent *de;
	long n = 0;
	DIR *d;

	if (g.pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)g.pid);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* 1 if the daemon process still runs (not gone, not a zombie). */
static int
daemon_alive(void)
{
	char path[64], line[256], *p;
	int alive = 0;
	FILE *f;

	if (g.pid <= 0)
		return 1;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)g.pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	if (fgets(line, sizeof(line), f) != NULL &&
	    (p = strrchr(line, ')')) != NULL && p[1] == ' ')
		alive = p[2] != 'Z' && p[2] != 'X';
	fclose(f);
	return alive;
}

/* ------------------------------------------------------------------ */
/* Requests and the replies they must get.                             */

/* Write a bench node name ("n000123") into out. */
static void
put_name(uint8_t *out, char prefix, uint32_t idx)
{
	char tmp[BENCH_NAME_LEN + 1];

	snprintf(tmp, sizeof(tmp), "%c%06u", prefix, idx % BENCH_MAX_NAMES);
	memcpy(out, tmp, BENCH_NAME_LEN);
}

/* PORT_PLEASE2 for a name: 00 08 'z' name. */
static size_t
make_lookup(uint8_t *out, char prefix, uint32_t idx)
{
	out[0] = 0;
	out[1] = 1 + BENCH_NAME_LEN;
	out[2] = 'z';
	put_name(out + 3, prefix, idx);
	return 3 + BENCH_NAME_LEN;
}

/* ALIVE2 for a name, with the bench's fixed fields and an empty extra. */
static size_t
make_alive2(uint8_t *out, char prefix, uint32_t idx)
{
	uint16_t port = BENCH_NODE_PORT(idx);
	size_t body = 13 + BENCH_NAME_LEN;

	out[0] = (uint8_t)(body >> 8);
	out[1] = (uint8_t)body;
	out[2] = 'x';
	out[3] = (uint8_t)(port >> 8);
	out[4] = (uint8_t)port;
	out[5] = BENCH_NODE_TYPE;
	out[6] = BENCH_NODE_PROTO;
	out[7] = 0;
	out[8] = BENCH_NODE_HIGH;
	out[9] = 0;
	out[10] = BENCH_NODE_LOW;
	out[11] = 0;
	out[12] = BENCH_NAME_LEN;
	put_name(out + 13, prefix, idx);
	out[13 + BENCH_NAME_LEN] = 0;
	out[14 + BENCH_NAME_LEN] = 0;
	return 2 + body;
}

/* The PORT2_RESP a daemon must give for a registered bench node. */
static void
make_port2(uint8_t *out, char prefix, uint32_t idx)
{
	static const uint8_t null_reply[] = BENCH_NULL_PORT2;
	uint16_t port = BENCH_NODE_PORT(idx);

	if (g.null_mode) {
		memcpy(out, null_reply, BENCH_PORT2_LEN);
		return;
	}
	out[0] = 0x77;
	out[1] = 0;
	out[2] = (uint8_t)(port >> 8);
	out[3] = (uint8_t)port;
	out[4] = BENCH_NODE_TYPE;
	out[5] = BENCH_NODE_PROTO;
	out[6] = 0;
	out[7] = BENCH_NODE_HIGH;
	out[8] = 0;
	out[9] = BENCH_NODE_LOW;
	out[10] = 0;
	out[11] = BENCH_NAME_LEN;
	put_name(out + 12, prefix, idx);
	out[12 + BENCH_NAME_LEN] = 0;
	out[13 + BENCH_NAME_LEN] = 0;
}

/* 1 if a reply is exactly the PORT2_RESP for that node. */
static int
is_port2_for(const uint8_t *buf, size_t len, char prefix, uint32_t idx)
{
	uint8_t want[BENCH_PORT2_LEN];

	if (len != BENCH_PORT2_LEN)
		return 0;
	make_port2(want, prefix, idx);
	return memcmp(buf, want, BENCH_PORT2_LEN) == 0;
}

/* 1 if a reply is the not-found PORT2_RESP (77 01). */
static int
is_not_found(const uint8_t *buf, size_t len)
{
	return len == 2 && buf[0] == 0x77 && buf[1] == 1;
}

/* ------------------------------------------------------------------ */
/* Sockets.                                                            */

/* Close a socket with a reset, so that neither side keeps TIME_WAIT. */
static void
close_rst(int fd)
{
	struct linger lg = { 1, 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/*
 * Start a non-blocking connect; the fd, or -1.
 *
 * Connections that stay open (registrations, half-open peers) come from
 * 127.0.0.2 and up, spread over SPREAD_ADDRS addresses: tens of thousands
 * of them from one address would fill its ephemeral ports, and then every
 * connect() scans the port range, which slows the generator (not the
 * daemon) and skews the results. Lookups and NAMES come from 127.0.0.1.
 * Every 127.0.0.0/8 peer is local to epmd.
 */
#define SPREAD_ADDRS	32
static int
connect_start(int spread)
{
	static uint32_t next;
	struct sockaddr_in src;
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (spread) {
		memset(&src, 0, sizeof(src));
		src.sin_family = AF_INET;
		src.sin_addr.s_addr = htonl(INADDR_LOOPBACK + 1 +
		    next++ % SPREAD_ADDRS);
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
		    sizeof(one));
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
			close(fd);
			return -1;
		}
	}
	if (connect(fd, (struct sockaddr *)&g.addr, sizeof(g.addr)) == 0 ||
	    errno == EINPROGRESS)
		return fd;
	close(fd);
	return -1;
}

/* Watch fd for events, tagging them. */
static int
watch(int fd, int op, uint32_t events, enum tag tag, size_t idx)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.u64 = MKDATA(tag, idx);
	return epoll_ctl(g.ep, op, fd, &ev);
}

/* ------------------------------------------------------------------ */
/* Held registrations and half-open connections.                       */

/* Keep a registered connection, watching it for an unexpected end. */
static void
held_add(int fd, uint32_t name)
{
	if (g.nheld == g.held_cap) {
		g.held_cap = g.held_cap ? g.held_cap * 2 : 1024;
		g.held = realloc(g.held, g.held_cap * sizeof(*g.held));
		if (g.held == NULL)
			die("out of memory");
	}
	g.held[g.nheld].fd = fd;
	g.held[g.nheld].name = name;
	if (name < g.held_by_name_len)
		g.held_by_name[name] = (int32_t)g.nheld;
	if (watch(fd, EPOLL_CTL_MOD, EPOLLIN | EPOLLRDHUP, TAG_HELD,
	    g.nheld) != 0)
		die("epoll_ctl: %s", strerror(errno));
	g.nheld++;
}

/* The daemon ended a registration it should have kept. */
static void
held_lost(size_t i)
{
	if (i >= g.nheld || g.held[i].fd < 0)
		return;
	close_rst(g.held[i].fd);
	g.held[i].fd = -1;
	g.held_lost++;
}

/* Registrations still held. */
static size_t
held_alive(void)
{
	size_t i, n = 0;

	for (i = 0; i < g.nheld; i++)
		n += g.held[i].fd >= 0;
	return n;
}

/* Unregister everything: reset every held connection. */
static void
held_drop_all(void)
{
	size_t i;

	for (i = 0; i < g.nheld; i++)
		if (g.held[i].fd >= 0)
			close_rst(g.held[i].fd);
	g.nheld = 0;
	g.held_lost = 0;
	for (i = 0; i < g.held_by_name_len; i++)
		g.held_by_name[i] = -1;
}

/* Keep a half-open connection. */
static void
idle_add(int fd)
{
	if (g.nidle == g.idle_cap) {
		g.idle_cap = g.idle_cap ? g.idle_cap * 2 : 1024;
		g.idle = realloc(g.idle, g.idle_cap * sizeof(*g.idle));
		if (g.idle == NULL)
			die("out of memory");
	}
	g.idle[g.nidle] = fd;
	if (watch(fd, EPOLL_CTL_MOD, EPOLLIN | EPOLLRDHUP, TAG_IDLE,
	    g.nidle) != 0)
		die("epoll_ctl: %s", strerror(errno));
	g.nidle++;
}

/* The daemon closed a half-open connection. */
static void
idle_lost(size_t i)
{
	if (i >= g.nidle || g.idle[i] < 0)
		return;
	close_rst(g.idle[i]);
	g.idle[i] = -1;
	g.idle_lost++;
}

/* Reset every half-open connection. */
static void
idle_drop_all(void)
{
	size_t i;

	for (i = 0; i < g.nidle; i++)
		if (g.idle[i] >= 0)
			close_rst(g.idle[i]);
	g.nidle = 0;
	g.idle_lost = 0;
}

/* ------------------------------------------------------------------ */
/* The engine: slots that each run one request at a time.              */

/* Free a slot's socket: reset unless asked to close gracefully. */
static void
slot_close(struct slot *s, int graceful)
{
	if (s->fd < 0)
		return;
	if (graceful)
		close(s->fd);
	else
		close_rst(s->fd);
	s->fd = -1;
	s->state = ST_FREE;
}

/* Choose the next lookup target; 0 if there is none. */
static int
pick_lookup(struct phase *ph, struct slot *s)
{
	(void)ph;
	if (g.nchurn > 0 && (g.nheld == 0 || (rnd() & 1))) {
		s->pool = 1;
		s->ref = (uint32_t)(rnd() % g.nchurn);
		s->gen = g.churn[s->ref].gen;
		s->must_find = g.churn[s->ref].held;
		s->reqlen = make_lookup(s->req, BENCH_CHURN_PREFIX, s->ref);
		return 1;
	}
	if (g.nheld == 0) {
		/* Nothing registered (the daemon refused): ask anyway for a
		 * name it must not know, so a stall or a wrong answer shows. */
		s->pool = 2;
		s->ref = 0;
		s->reqlen = make_lookup(s->req, BENCH_STABLE_PREFIX, 0);
		return 1;
	}
	s->pool = 0;
	s->ref = (uint32_t)(rnd() % g.nheld);
	s->reqlen = make_lookup(s->req, BENCH_STABLE_PREFIX,
	    g.held[s->ref].name);
	return 1;
}

/* Pick a slot's next job and start it; marks the slot done if none. */
static void
slot_next(struct phase *ph, struct slot *s, size_t idx, uint64_t now)
{
	uint32_t name = 0;
	int fd;

	s->state = ST_FREE;
	s->got = 0;
	if (now >= ph->stop_at) {
		s->done = 1;
		return;
	}
	switch (s->kind) {
	case K_LOOKUP:
		if (!pick_lookup(ph, s)) {
			s->done = 1;
			return;
		}
		break;
	case K_REGISTER:
		if (ph->reg_next >= ph->reg_end) {
			s->done = 1;
			return;
		}
		name = ph->reg_next++;
		s->ref = name;
		s->reqlen = make_alive2(s->req, BENCH_STABLE_PREFIX, name);
		break;
	case K_IDLE:
		if (ph->idle_next >= ph->idle_end) {
			s->done = 1;
			return;
		}
		ph->idle_next++;
		s->reqlen = 0;
		break;
	case K_CHURN:
		/* Each churner cycles through its own names, so a name comes
		 * back only after the others had their turn. */
		name = (s->ord * CHURN_PER_SLOT + s->cycle++ % CHURN_PER_SLOT) %
		    (uint32_t)g.nchurn;
		s->ref = name;
		s->reqlen = make_alive2(s->req, BENCH_CHURN_PREFIX, name);
		break;
	}
	s->t0 = now;
	s->t_timeout = now + ph->req_timeout;
	fd = connect_start(s->kind != K_LOOKUP);
	if (fd == -1 || watch(fd, EPOLL_CTL_ADD, EPOLLOUT, TAG_SLOT,
	    idx) != 0) {
		if (fd != -1)
			close(fd);
		if (s->kind == K_LOOKUP)
			ph->look.n[RES_CONNECT]++;
		else if (s->kind == K_IDLE)
			ph->idle.n[RES_CONNECT]++;
		else
			ph->reg.n[RES_CONNECT]++;
		/* Try again on the next turn of the loop, not in a spin. */
		s->t_timeout = now + MS;
		s->state = ST_FREE;
		s->fd = -1;
		return;
	}
	s->fd = fd;
	s->state = ST_CONNECT;
}

/* Record a lookup's result. */
static void
lookup_done(struct phase *ph, struct slot *s, enum result r, uint64_t now)
{
	ph->look.n[r]++;
	if (r == RES_OK && g.nlat < MAX_LATENCIES) {
		uint64_t d = now - s->t0;

		g.lat[g.nlat++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
	}
}

/* Judge a finished lookup's reply. */
static enum result
lookup_judge(struct slot *s)
{
	if (s->got == 0)
		return RES_EMPTY;
	if (s->got > REPLY_MAX - 1)
		return RES_WRONG;
	if (s->pool == 2) {
		if (g.null_mode)
			return is_port2_for(s->buf, s->got, BENCH_STABLE_PREFIX,
			    0) ? RES_OK : RES_WRONG;
		return is_not_found(s->buf, s->got) ? RES_OK : RES_WRONG;
	}
	if (s->pool == 0) {
		uint32_t name = g.held[s->ref].name;

		if (is_port2_for(s->buf, s->got, BENCH_STABLE_PREFIX, name))
			return RES_OK;
		/* A registration the daemon dropped is counted as lost. */
		if (g.held[s->ref].fd < 0 && is_not_found(s->buf, s->got))
			return RES_OK;
		return RES_WRONG;
	}
	if (is_port2_for(s->buf, s->got, BENCH_CHURN_PREFIX, s->ref))
		return RES_OK;
	if (!is_not_found(s->buf, s->got))
		return RES_WRONG;
	/* Not found is wrong only if the node was registered before the
	 * request was sent and still is now. */
	if (s->must_find && g.churn[s->ref].held &&
	    g.churn[s->ref].gen == s->gen)
		return RES_WRONG;
	return RES_OK;
}

/* A registration reply arrived (6 bytes) or the attempt failed. */
static void
register_done(struct phase *ph, struct slot *s, size_t idx, enum result r,
    uint64_t now)
{
	if (s->kind == K_CHURN) {
		if (r != RES_OK) {
			ph->reg.n[r]++;
			slot_close(s, 0);
			slot_next(ph, s, idx, now);
			return;
		}
		ph->churn_regs++;
		ph->reg.n[RES_OK]++;
		g.churn[s->ref].held = 1;
		watch(s->fd, EPOLL_CTL_MOD, EPOLLIN | EPOLLRDHUP, TAG_SLOT, idx);
		s->state = ST_HOLD;
		s->t_hold_end = now + ph->hold_ns / 2 +
		    rnd() % (ph->hold_ns + 1);
		return;
	}
	ph->reg.n[r]++;
	if (r == RES_OK) {
		held_add(s->fd, s->ref);
		s->fd = -1;
	} else {
		slot_close(s, 0);
	}
	slot_next(ph, s, idx, now);
}

/* End a churn registration: the node goes away. */
static void
churn_release(struct phase *ph, struct slot *s, int lost)
{
	struct churn_name *c = &g.churn[s->ref];

	c->held = 0;
	c->gen++;
	if (lost) {
		ph->churn_lost++;
		slot_close(s, 0);
		return;
	}
	/* Half the nodes leave with FIN as a node that exits, half with a
	 * reset as a node that crashes. */
	ph->fin_closes += s->cycle & 1;
	slot_close(s, s->cycle & 1);
}

/* Finish a slot's job with a result, then start its next job. */
static void
slot_finish(struct phase *ph, struct slot *s, size_t idx, enum result r,
    uint64_t now)
{
	switch (s->kind) {
	case K_LOOKUP:
		lookup_done(ph, s, r, now);
		if (r == RES_OK || r == RES_WRONG || r == RES_EMPTY)
			slot_close(s, 1);
		else
			slot_close(s, 0);
		break;
	case K_REGISTER:
	case K_CHURN:
		register_done(ph, s, idx, r, now);
		return;
	case K_IDLE:
		ph->idle.n[r]++;
		if (r == RES_OK) {
			idle_add(s->fd);
			s->fd = -1;
		} else {
			slot_close(s, 0);
		}
		break;
	}
	slot_next(ph, s, idx, now);
}

/* The slot's connect finished: send the request (idle: just keep it). */
static void
slot_writable(struct phase *ph, struct slot *s, size_t idx, uint64_t now)
{
	int err = 0;
	socklen_t len = sizeof(err);
	ssize_t n;

	if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 ||
	    err != 0) {
		slot_finish(ph, s, idx, RES_CONNECT, now);
		return;
	}
	if (s->kind == K_IDLE) {
		slot_finish(ph, s, idx, RES_OK, now);
		return;
	}
	n = send(s->fd, s->req, s->reqlen, MSG_NOSIGNAL);
	if (n != (ssize_t)s->reqlen) {
		slot_finish(ph, s, idx, RES_RESET, now);
		return;
	}
	s->state = ST_READ;
	watch(s->fd, EPOLL_CTL_MOD, EPOLLIN | EPOLLRDHUP, TAG_SLOT, idx);
}

/* Read a registration's reply: exactly 6 bytes, then the socket stays. */
static void
slot_read_alive2(struct phase *ph, struct slot *s, size_t idx, uint64_t now)
{
	static const uint8_t null_reply[] = BENCH_NULL_ALIVE2;
	ssize_t n;

	n = read(s->fd, s->buf + s->got, 6 - s->got);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		slot_finish(ph, s, idx, n == 0 ? (s->got ? RES_WRONG : RES_EMPTY) :
		    RES_RESET, now);
		return;
	}
	s->got += (size_t)n;
	if (s->got < 6)
		return;
	if (s->buf[0] != 0x76)
		slot_finish(ph, s, idx, RES_WRONG, now);
	else if (s->buf[1] == 1 && s->buf[5] == 99 && s->buf[2] == 0 &&
	    s->buf[3] == 0 && s->buf[4] == 0)
		slot_finish(ph, s, idx, RES_REFUSED, now);
	else if (s->buf[1] != 0)
		slot_finish(ph, s, idx, RES_WRONG, now);
	else if (g.null_mode && memcmp(s->buf, null_reply, 6) != 0)
		slot_finish(ph, s, idx, RES_WRONG, now);
	else
		slot_finish(ph, s, idx, RES_OK, now);
}

/* Read a lookup's reply until the daemon closes. */
static void
slot_read_lookup(struct phase *ph, struct slot *s, size_t idx, uint64_t now)
{
	ssize_t n;
	int i;

	for (i = 0; i < 8; i++) {
		n = read(s->fd, s->buf + s->got, REPLY_MAX - s->got);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n == -1) {
			slot_finish(ph, s, idx, RES_RESET, now);
			return;
		}
		if (n == 0 || s->got + (size_t)n >= REPLY_MAX) {
			s->got += (size_t)n;
			slot_finish(ph, s, idx, lookup_judge(s), now);
			return;
		}
		s->got += (size_t)n;
	}
}

/* Dispatch one epoll event on a slot. */
static void
slot_event(struct phase *ph, size_t idx, uint32_t events, uint64_t now)
{
	struct slot *s;

	if (idx >= g.nslots || (s = &g.slots[idx])->fd < 0)
		return;
	switch (s->state) {
	case ST_CONNECT:
		slot_writable(ph, s, idx, now);
		break;
	case ST_READ:
		if (s->kind == K_LOOKUP)
			slot_read_lookup(ph, s, idx, now);
		else
			slot_read_alive2(ph, s, idx, now);
		break;
	case ST_HOLD:
		/* The daemon closed (or wrote on) a live registration. */
		(void)events;
		churn_release(ph, s, 1);
		slot_next(ph, s, idx, now);
		break;
	default:
		break;
	}
}

/* Time out stuck requests, end churn holds, retry failed connects. */
static void
slots_tick(struct phase *ph, uint64_t now, int abort_all)
{
	struct slot *s;
	size_t i;

	for (i = 0; i < g.nslots; i++) {
		s = &g.slots[i];
		if (s->done && s->state == ST_FREE)
			continue;
		if (s->state == ST_FREE) {
			/* A connect that failed waits here for its retry. */
			if (abort_all)
				s->done = 1;
			else if (now >= s->t_timeout)
				slot_next(ph, s, i, now);
			continue;
		}
		if (s->state == ST_HOLD) {
			if (abort_all || now >= s->t_hold_end ||
			    now >= ph->stop_at) {
				churn_release(ph, s, 0);
				slot_next(ph, s, i, now);
				if (abort_all && s->state != ST_FREE) {
					slot_close(s, 0);
					s->done = 1;
				}
			}
			continue;
		}
		if (abort_all || now >= s->t_timeout) {
			slot_finish(ph, s, i, RES_TIMEOUT, now);
			if (abort_all && s->state != ST_FREE) {
				slot_close(s, 0);
				s->done = 1;
			}
		}
	}
}

/* 1 while any slot still has work. */
static int
slots_busy(void)
{
	size_t i;

	for (i = 0; i < g.nslots; i++)
		if (!g.slots[i].done || g.slots[i].state != ST_FREE)
			return 1;
	return 0;
}

/* Handle events until `until`, or until the slots have no work left. */
static void
pump(struct phase *ph, uint64_t until, int tick_ms)
{
	struct epoll_event evs[MAX_EVENTS];
	uint64_t now = now_ns(), last_tick = now;
	int i, n;

	while (now < until) {
		if (g.nslots > 0 && !slots_busy())
			break;
		n = epoll_wait(g.ep, evs, MAX_EVENTS, tick_ms);
		now = now_ns();
		for (i = 0; i < n; i++) {
			uint64_t d = evs[i].data.u64;
			size_t idx = (uint32_t)d;

			switch (d >> 32) {
			case TAG_SLOT:
				slot_event(ph, idx, evs[i].events, now);
				break;
			case TAG_HELD:
				held_lost(idx);
				break;
			case TAG_IDLE:
				idle_lost(idx);
				break;
			}
		}
		if (g.nslots > 0 && now - last_tick >= (uint64_t)tick_ms * MS) {
			slots_tick(ph, now, 0);
			last_tick = now;
		}
	}
}

/* Set up `lookups` lookup slots and `churners` churn slots, etc. */
static void
slots_setup(size_t lookups, size_t registers, size_t idles, size_t churners)
{
	size_t i, n = lookups + registers + idles + churners;

	if (n > MAX_SLOTS)
		die("too many concurrent clients: %zu", n);
	g.nslots = n;
	for (i = 0; i < n; i++) {
		memset(&g.slots[i], 0, sizeof(g.slots[i]));
		g.slots[i].fd = -1;
		if (i < lookups)
			g.slots[i].kind = K_LOOKUP;
		else if (i < lookups + registers)
			g.slots[i].kind = K_REGISTER;
		else if (i < lookups + registers + idles)
			g.slots[i].kind = K_IDLE;
		else
			g.slots[i].kind = K_CHURN;
	}
	for (i = 0; i < n; i++)
		g.slots[i].ord = (uint32_t)(i - (i < lookups ? 0 :
		    i < lookups + registers ? lookups :
		    i < lookups + registers + idles ? lookups + registers :
		    lookups + registers + idles));
}

/* Run the slots as a phase: start work until stop_at, drain, abort. */
static void
phase_run(struct phase *ph, uint64_t now, int tick_ms)
{
	size_t i;

	for (i = 0; i < g.nslots; i++)
		slot_next(ph, &g.slots[i], i, now);
	pump(ph, ph->stop_at + ph->req_timeout + 100 * MS, tick_ms);
	slots_tick(ph, now_ns(), 1);
	g.nslots = 0;
}

/* ------------------------------------------------------------------ */
/* Results.                                                            */

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The q-quantile of the recorded latencies, in microseconds. */
static double
latency_us(double q)
{
	size_t i;

	if (g.nlat == 0)
		return -1;
	i = (size_t)(q * (double)(g.nlat - 1) + 0.5);
	return g.lat[i] / 1e3;
}

/* Print counts as JSON members: "ok":1,"wrong":0,... */
static void
print_counts(const char *prefix, const struct counts *c)
{
	uint64_t failed = 0;
	int r;

	for (r = 0; r < RES_NRESULTS; r++) {
		printf(",\"%s%s\":%" PRIu64, prefix, result_names[r], c->n[r]);
		if (r >= RES_CONNECT)
			failed += c->n[r];
	}
	printf(",\"%sfailed\":%" PRIu64, prefix, failed);
}

/* Run one timed lookup phase with `conc` clients and print its line. */
static void
lookup_phase(const char *scenario, const char *label, int round, int conc,
    size_t churners, double secs)
{
	struct phase ph;
	uint64_t t0, t1, cpu0, cpu1, ok;
	double elapsed;

	memset(&ph, 0, sizeof(ph));
	g.nlat = 0;
	slots_setup((size_t)conc, 0, 0, churners);
	t0 = now_ns();
	ph.stop_at = t0 + (uint64_t)(secs * NS);
	ph.req_timeout = (uint64_t)(opt.timeout * NS);
	ph.hold_ns = 4 * MS;
	cpu0 = daemon_cpu_ns();
	phase_run(&ph, t0, churners ? 1 : 5);
	t1 = now_ns();
	cpu1 = daemon_cpu_ns();
	elapsed = (double)(t1 - t0) / NS;
	qsort(g.lat, g.nlat, sizeof(g.lat[0]), cmp_u32);
	ok = ph.look.n[RES_OK];
	printf("{\"type\":\"lookup\",\"scenario\":\"%s\",\"label\":\"%s\","
	    "\"round\":%d,\"conc\":%d,\"nodes\":%zu,\"secs\":%.3f",
	    scenario, label, round, conc, held_alive(), elapsed);
	print_counts("", &ph.look);
	printf(",\"rps\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
	    "\"cpu_ns\":%" PRIu64 ",\"cpu_per_req_ns\":%.1f,"
	    "\"lost\":%zu,\"idle_open\":%zu,\"idle_lost\":%zu,"
	    "\"alive\":%d",
	    ok / elapsed, latency_us(0.50), latency_us(0.99), cpu1 - cpu0,
	    ok ? (double)(cpu1 - cpu0) / (double)ok : -1.0,
	    g.held_lost, g.nidle - g.idle_lost, g.idle_lost, daemon_alive());
	if (churners) {
		printf(",\"churn_regs\":%" PRIu64 ",\"churn_regs_per_s\":%.1f,"
		    "\"churn_lost\":%" PRIu64 ",\"churn_fin_closes\":%" PRIu64,
		    ph.churn_regs, ph.churn_regs / elapsed, ph.churn_lost,
		    ph.fin_closes);
		print_counts("churn_reg_", &ph.reg);
	}
	printf("}\n");
	fflush(stdout);
}

/* Register nodes [first, first+n) with `window` in flight; print a line. */
static void
register_nodes(uint32_t first, uint32_t n, size_t window, double cap_secs,
    double req_timeout)
{
	struct phase ph;
	uint64_t t0, t1;
	long rss0, rss1, fds;
	double elapsed;

	memset(&ph, 0, sizeof(ph));
	ph.reg_next = first;
	ph.reg_end = first + n;
	if (window > n)
		window = n ? n : 1;
	slots_setup(0, window, 0, 0);
	rss0 = daemon_rss_kb();
	t0 = now_ns();
	ph.stop_at = t0 + (uint64_t)(cap_secs * NS);
	ph.req_timeout = (uint64_t)(req_timeout * NS);
	phase_run(&ph, t0, 5);
	t1 = now_ns();
	elapsed = (double)(t1 - t0) / NS;
	/* Let the daemon settle before reading its memory. */
	pump(&ph, now_ns() + 200 * MS, 10);
	rss1 = daemon_rss_kb();
	fds = daemon_fds();
	printf("{\"type\":\"register\",\"n\":%u,\"secs\":%.3f", n, elapsed);
	print_counts("", &ph.reg);
	printf(",\"unattempted\":%u,\"rate\":%.1f,\"rss_before_kb\":%ld,"
	    "\"rss_after_kb\":%ld,\"daemon_fds\":%ld,\"held\":%zu,"
	    "\"lost\":%zu,\"alive\":%d}\n",
	    ph.reg_end - ph.reg_next, ph.reg.n[RES_OK] / elapsed, rss0, rss1,
	    fds, held_alive(), g.held_lost, daemon_alive());
	fflush(stdout);
}

/* ------------------------------------------------------------------ */
/* NAMES: one blocking-with-deadline request at a time.                */

/* Wait for fd to be ready; 0 when ready, -1 on timeout. */
static int
wait_fd(int fd, short events, uint64_t deadline)
{
	struct pollfd pfd = { fd, events, 0 };
	uint64_t now = now_ns();
	int ms;

	if (now >= deadline)
		return -1;
	ms = (int)((deadline - now) / MS) + 1;
	return poll(&pfd, 1, ms) == 1 ? 0 : -1;
}

/* Send NAMES and read the whole reply; its length, or -1 on failure. */
static ssize_t
names_fetch(uint8_t *buf, size_t cap, uint64_t deadline)
{
	static const uint8_t req[] = { 0, 1, 'n' };
	size_t got = 0;
	ssize_t n;
	int fd, err = 0;
	socklen_t len = sizeof(err);

	if ((fd = connect_start(0)) == -1)
		return -1;
	if (wait_fd(fd, POLLOUT, deadline) != 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err ||
	    send(fd, req, sizeof(req), MSG_NOSIGNAL) != sizeof(req)) {
		close_rst(fd);
		return -1;
	}
	while (got < cap) {
		n = read(fd, buf + got, cap - got);
		if (n == 0)
			break;
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (errno != EAGAIN && errno != EINTR) {
			close_rst(fd);
			return -1;
		}
		if (wait_fd(fd, POLLIN, deadline) != 0) {
			close_rst(fd);
			return -1;
		}
	}
	close(fd);
	return (ssize_t)got;
}

/*
 * Check a NAMES reply against the held registrations: the header is the
 * port, every line is "name <n......> at port <P>\n" for a held node with
 * its port, and no held node is missing. Returns the number of faults and
 * stores the number of lines.
 */
static size_t
names_check(const uint8_t *buf, size_t len, size_t *lines)
{
	static const char head[] = "name ", mid[] = " at port ";
	uint8_t *seen;
	size_t i, pos, faults = 0, nl;
	uint32_t hdr;

	*lines = 0;
	if (len < 4)
		return 1;
	hdr = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 |
	    (uint32_t)buf[2] << 8 | buf[3];
	if (hdr != g.port)
		faults++;
	if (g.null_mode)
		return faults + (len != 4);
	seen = xcalloc(g.nheld ? g.nheld : 1, 1);
	for (pos = 4; pos < len; pos = nl + 1) {
		const uint8_t *nlp = memchr(buf + pos, '\n', len - pos);
		char tmp[16];
		unsigned long idx, port;
		char *end;
		long hi;
		size_t linelen, namelen;

		if (nlp == NULL) {
			faults++;
			break;
		}
		nl = (size_t)(nlp - buf);
		linelen = nl - pos;
		(*lines)++;
		namelen = BENCH_NAME_LEN;
		if (linelen < 5 + namelen + 9 + 1 ||
		    memcmp(buf + pos, head, 5) != 0 ||
		    buf[pos + 5] != BENCH_STABLE_PREFIX ||
		    memcmp(buf + pos + 5 + namelen, mid, 9) != 0 ||
		    linelen - (5 + namelen + 9) >= sizeof(tmp)) {
			faults++;
			continue;
		}
		memcpy(tmp, buf + pos + 6, namelen - 1);
		tmp[namelen - 1] = '\0';
		idx = strtoul(tmp, &end, 10);
		if (*end != '\0' || idx >= g.held_by_name_len ||
		    (hi = g.held_by_name[idx]) < 0 ||
		    g.held[hi].fd < 0 || seen[hi]) {
			faults++;
			continue;
		}
		memcpy(tmp, buf + pos + 5 + namelen + 9,
		    linelen - (5 + namelen + 9));
		tmp[linelen - (5 + namelen + 9)] = '\0';
		port = strtoul(tmp, &end, 10);
		if (*end != '\0' || port != BENCH_NODE_PORT(idx)) {
			faults++;
			continue;
		}
		seen[hi] = 1;
	}
	for (i = 0; i < g.nheld; i++)
		if (g.held[i].fd >= 0 && !seen[i])
			faults++;
	free(seen);
	return faults;
}

/* Time `samples` NAMES requests one after the other; print a line. */
static void
names_phase(long samples, double cap_secs, double req_timeout)
{
	uint8_t *buf = xcalloc(NAMES_MAX, 1);
	uint32_t *lat = xcalloc((size_t)samples, sizeof(*lat));
	uint64_t stop = now_ns() + (uint64_t)(cap_secs * NS), t0, d;
	size_t nl = 0, lines = 0, wrong = 0, failed = 0, bytes = 0, ok = 0;
	ssize_t n;
	long i;
	struct phase ph;

	memset(&ph, 0, sizeof(ph));
	for (i = 0; i < samples && now_ns() < stop; i++) {
		t0 = now_ns();
		n = names_fetch(buf, NAMES_MAX,
		    t0 + (uint64_t)(req_timeout * NS));
		d = now_ns() - t0;
		if (n <= 0) {
			failed++;
			continue;
		}
		/* Notice registrations that ended before judging the list. */
		pump(&ph, now_ns() + MS, 0);
		if (names_check(buf, (size_t)n, &lines) != 0) {
			wrong++;
			continue;
		}
		bytes = (size_t)n;
		lat[nl++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
		ok++;
	}
	qsort(lat, nl, sizeof(*lat), cmp_u32);
	printf("{\"type\":\"names\",\"samples\":%ld,\"ok\":%zu,\"wrong\":%zu,"
	    "\"failed\":%zu,\"bytes\":%zu,\"lines\":%zu,\"p50_us\":%.1f,"
	    "\"max_us\":%.1f,\"held\":%zu,\"alive\":%d}\n",
	    i, ok, wrong, failed, bytes, lines,
	    nl ? lat[(nl - 1) / 2] / 1e3 : -1.0,
	    nl ? lat[nl - 1] / 1e3 : -1.0, held_alive(), daemon_alive());
	fflush(stdout);
	free(lat);
	free(buf);
}

/* ------------------------------------------------------------------ */
/* Scenarios.                                                          */

/* Lookups of random registered names at each concurrency, in rounds. */
static void
scenario_lookups(void)
{
	int r, c;

	register_nodes(0, (uint32_t)opt.nodes, (size_t)opt.window,
	    opt.reg_secs, 2);
	for (r = 0; r < opt.rounds; r++)
		for (c = 0; c < opt.nconc; c++)
			lookup_phase("lookups", "", r, opt.conc[c], 0,
			    opt.duration);
}

/* Register N, read the memory, time NAMES, then look names up. */
static void
scenario_registry(void)
{
	int r;

	register_nodes(0, (uint32_t)opt.nodes, (size_t)opt.window,
	    opt.reg_secs, 2);
	names_phase(opt.names_samples, 10, 5);
	for (r = 0; r < opt.rounds; r++)
		lookup_phase("registry", "", r, (int)opt.lookup_conc, 0,
		    opt.duration);
}

/* Lookups while churn slots register and drop nodes. */
static void
scenario_churn(void)
{
	int r;

	g.nchurn = (size_t)opt.churn_slots * CHURN_PER_SLOT;
	g.churn = xcalloc(g.nchurn, sizeof(*g.churn));
	register_nodes(0, (uint32_t)opt.nodes, (size_t)opt.window,
	    opt.reg_secs, 2);
	for (r = 0; r < opt.rounds; r++)
		lookup_phase("churn", "", r, (int)opt.lookup_conc,
		    (size_t)opt.churn_slots, opt.duration);
	/* Let the daemon see the last churn nodes go, then list the rest. */
	{
		struct phase ph;

		memset(&ph, 0, sizeof(ph));
		pump(&ph, now_ns() + 200 * MS, 10);
	}
	names_phase(3, 10, 5);
}

/* Open the half-open connections and wait until the daemon took them. */
static void
idle_open(long count)
{
	struct phase ph;
	uint64_t t0, until, last_change;
	long fds, prev = -1, base = daemon_fds();

	memset(&ph, 0, sizeof(ph));
	ph.idle_next = 0;
	ph.idle_end = (uint32_t)count;
	slots_setup(0, 0, (size_t)(opt.window > count ? count : opt.window), 0);
	t0 = now_ns();
	ph.stop_at = t0 + 10 * NS;
	ph.req_timeout = 2 * NS;
	phase_run(&ph, t0, 5);
	/* Accepted connections show up as the daemon's descriptors. */
	until = now_ns() + 2 * NS;
	last_change = now_ns();
	while (now_ns() < until && now_ns() - last_change < 300 * MS) {
		pump(&ph, now_ns() + 20 * MS, 5);
		fds = daemon_fds();
		if (fds != prev) {
			prev = fds;
			last_change = now_ns();
		}
		if (base >= 0 && fds >= base + count)
			break;
	}
	printf("{\"type\":\"idle_open\",\"n\":%ld,\"secs\":%.3f", count,
	    (double)(now_ns() - t0) / NS);
	print_counts("", &ph.idle);
	printf(",\"open\":%zu,\"lost\":%zu,\"daemon_fds_before\":%ld,"
	    "\"daemon_fds\":%ld,\"alive\":%d}\n", g.nidle - g.idle_lost,
	    g.idle_lost, base, daemon_fds(), daemon_alive());
	fflush(stdout);
}

/* Lookups unloaded, then with many half-open peers, in rounds. */
static void
scenario_idle(void)
{
	int r;

	register_nodes(0, (uint32_t)opt.nodes, (size_t)opt.window,
	    opt.reg_secs, 2);
	for (r = 0; r < opt.rounds; r++) {
		lookup_phase("idle", "unloaded", r, (int)opt.lookup_conc, 0,
		    opt.duration);
		idle_open(opt.idle);
		lookup_phase("idle", "loaded", r, (int)opt.lookup_conc, 0,
		    opt.duration);
		idle_drop_all();
		/* Give the daemon time to see the resets. */
		{
			struct phase ph;

			memset(&ph, 0, sizeof(ph));
			pump(&ph, now_ns() + 300 * MS, 10);
		}
	}
}

/*
 * All registrations at once against a daemon with few descriptors. Then
 * drop the attempts that got no answer, let the daemon breathe, and check
 * that every node that was told "registered" still is.
 */
static void
scenario_fdlimit(void)
{
	struct phase ph;
	uint8_t *buf;
	size_t lines = 0, faults = 0;
	ssize_t n = -1;
	int attempt;

	register_nodes(0, (uint32_t)opt.nodes, (size_t)opt.window,
	    opt.duration, opt.timeout);
	memset(&ph, 0, sizeof(ph));
	pump(&ph, now_ns() + 1500 * MS, 10);
	buf = xcalloc(NAMES_MAX, 1);
	for (attempt = 0; attempt < 5 && n <= 0; attempt++) {
		if (attempt > 0)
			pump(&ph, now_ns() + 500 * MS, 10);
		if (!daemon_alive())
			break;
		n = names_fetch(buf, NAMES_MAX, now_ns() + 3 * NS);
	}
	if (n > 0)
		faults = names_check(buf, (size_t)n, &lines);
	printf("{\"type\":\"fdlimit\",\"attempted\":%ld,\"held\":%zu,"
	    "\"lost\":%zu,\"names_ok\":%d,\"names_lines\":%zu,"
	    "\"names_faults\":%zu,\"names_attempts\":%d,\"daemon_fds\":%ld,"
	    "\"alive\":%d}\n", opt.nodes, held_alive(), g.held_lost, n > 0,
	    lines, faults, attempt, daemon_fds(), daemon_alive());
	fflush(stdout);
	free(buf);
}

/* ------------------------------------------------------------------ */

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr,
"usage: loadgen --port P [--pid PID] [--null] [options] SCENARIO\n"
"  lookups   register --nodes, then lookups at each --conc, --rounds times\n"
"  registry  register --nodes, NAMES x --names-samples, lookups\n"
"  churn     register --nodes; lookups while --churners come and go\n"
"  idle      lookups unloaded, then with --idle half-open peers\n"
"  fdlimit   register --nodes at once (--window), then check none lost\n"
"options: --duration S  --rounds N  --timeout S  --window N  --reg-secs S\n"
"         --conc 1,16,256  --lookup-conc N  --seed N\n");
	exit(2);
}

/* Raise our own descriptor limit to the hard limit; return it. */
static long
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		die("getrlimit: %s", strerror(errno));
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		fprintf(stderr, "loadgen: setrlimit: %s\n", strerror(errno));
	getrlimit(RLIMIT_NOFILE, &rl);
	return rl.rlim_cur > 1L << 30 ? 1L << 30 : (long)rl.rlim_cur;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "pid", required_argument, NULL, 'P' },
		{ "null", no_argument, NULL, 'N' },
		{ "nodes", required_argument, NULL, 'n' },
		{ "conc", required_argument, NULL, 'c' },
		{ "lookup-conc", required_argument, NULL, 'l' },
		{ "duration", required_argument, NULL, 'd' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "timeout", required_argument, NULL, 't' },
		{ "window", required_argument, NULL, 'w' },
		{ "idle", required_argument, NULL, 'i' },
		{ "names-samples", required_argument, NULL, 'k' },
		{ "churners", required_argument, NULL, 'C' },
		{ "seed", required_argument, NULL, 's' },
		{ "reg-secs", required_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 }
	};
	const char *scenario;
	long nofile, need, port = 0, maxconc = 0;
	int ch, i;

	g.rng = 0x9E3779B97F4A7C15ULL;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'p': port = parse_long("--port", optarg, 1, 65535); break;
		case 'P': g.pid = (pid_t)parse_long("--pid", optarg, 1,
		    INT32_MAX); break;
		case 'N': g.null_mode = 1; break;
		case 'n': opt.nodes = parse_long("--nodes", optarg, 0,
		    BENCH_MAX_NAMES - 1); break;
		case 'c': parse_conc(optarg); break;
		case 'l': opt.lookup_conc = parse_long("--lookup-conc", optarg,
		    1, MAX_SLOTS); break;
		case 'd': opt.duration = parse_secs("--duration", optarg,
		    0.05, 600); break;
		case 'r': opt.rounds = (int)parse_long("--rounds", optarg, 1,
		    100); break;
		case 't': opt.timeout = parse_secs("--timeout", optarg, 0.05,
		    60); break;
		case 'w': opt.window = parse_long("--window", optarg, 1,
		    MAX_SLOTS); break;
		case 'i': opt.idle = parse_long("--idle", optarg, 0,
		    BENCH_MAX_NAMES); break;
		case 'k': opt.names_samples = parse_long("--names-samples",
		    optarg, 1, 1000); break;
		case 'C': opt.churn_slots = parse_long("--churners", optarg,
		    1, 1000); break;
		case 'R': opt.reg_secs = parse_secs("--reg-secs", optarg,
		    0.1, 600); break;
		case 's': g.rng ^= (uint64_t)parse_long("--seed", optarg, 0,
		    INT32_MAX) * 0x9E3779B97F4A7C15ULL + 1; break;
		default: usage();
		}
	}
	if (optind != argc - 1 || port == 0)
		usage();
	scenario = argv[optind];
	g.port = (uint16_t)port;
	g.addr.sin_family = AF_INET;
	g.addr.sin_port = htons(g.port);
	g.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	signal(SIGPIPE, SIG_IGN);

	/* Every descriptor we will hold at once must fit under the limit. */
	nofile = raise_nofile();
	for (i = 0; i < opt.nconc; i++)
		if (opt.conc[i] > maxconc)
			maxconc = opt.conc[i];
	need = opt.nodes + 16;
	if (strcmp(scenario, "lookups") == 0)
		need += maxconc;
	else if (strcmp(scenario, "churn") == 0)
		need += opt.lookup_conc + opt.churn_slots;
	else if (strcmp(scenario, "idle") == 0)
		need += opt.lookup_conc + opt.idle;
	else if (strcmp(scenario, "registry") == 0)
		need += opt.lookup_conc;
	if (need > nofile)
		die("needs %ld descriptors, the limit is %ld", need, nofile);

	g.ep = epoll_create1(EPOLL_CLOEXEC);
	if (g.ep == -1)
		die("epoll_create1: %s", strerror(errno));
	g.slots = xcalloc(MAX_SLOTS, sizeof(*g.slots));
	g.lat = xcalloc(MAX_LATENCIES, sizeof(*g.lat));
	g.held_by_name_len = (size_t)opt.nodes;
	g.held_by_name = xcalloc(g.held_by_name_len ? g.held_by_name_len : 1,
	    sizeof(*g.held_by_name));
	for (i = 0; i < (int)g.held_by_name_len; i++)
		g.held_by_name[i] = -1;

	if (strcmp(scenario, "lookups") == 0)
		scenario_lookups();
	else if (strcmp(scenario, "registry") == 0)
		scenario_registry();
	else if (strcmp(scenario, "churn") == 0)
		scenario_churn();
	else if (strcmp(scenario, "idle") == 0)
		scenario_idle();
	else if (strcmp(scenario, "fdlimit") == 0)
		scenario_fdlimit();
	else
		usage();
	held_drop_all();
	idle_drop_all();
	return 0;
}
