/*
 * trickle: many slow connections from many source addresses, the
 * attacker of tests/integration/test_flood.py and test_hashflood.py.
 * tests/lib/flood.py compiles it with cc at test time and runs it in a
 * peer network namespace whose addresses are routed to it.
 *
 *   trickle --dst ADDR --port P --sources FILE [options]
 *
 * hold (the default mode): --per connections from each address of
 *   FILE (one address a line). Each sends --frame (hex) one byte every
 *   --interval-ms, and is opened again when the daemon closes it, at most
 *   --rate connects a second overall, so the pressure stays up.
 * churn: one idle connection from each address of FILE is held; then
 *   connections from the addresses of --churn FILE, in turn, each send
 *   --frame whole, read until the daemon closes, and go; --conc at once,
 *   --count in all.
 *
 * Every --stats-ms, and at the end, one JSON line on stdout. It ends
 * after --duration seconds, at the latest, or when its parent dies.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT	24
#endif

#define TICK_MS		10
#define NEVER		INT64_MAX

enum state { FREE, CONNECTING, OPEN };
enum kind { HOLD, HELD, CHURN };

struct conn {
	int		 fd;
	uint32_t	 src;		/* index into its address list */
	uint8_t		 state;
	uint8_t		 kind;
	uint32_t	 sent;		/* bytes of the frame sent */
	int64_t		 next_send;	/* ms; NEVER: nothing more to send */
	int64_t		 opened;	/* ms, when the connect completed */
};

struct addrs {
	struct sockaddr_storage	*sa;
	socklen_t		*len;
	size_t			 n;
};

static struct {
	const char	*dst, *sources, *churn_file, *mode;
	int		 port;
	long		 per, interval_ms, rate, conc, count, stats_ms;
	double		 duration;
	uint8_t		*frame;
	size_t		 frame_len;
} opt = { .per = 1, .interval_ms = 1000, .rate = 5000, .conc = 32,
	  .count = 10000, .stats_ms = 1000, .duration = 30, .mode = "hold" };

static struct {
	long	connects, established, connect_errors, closed_by_peer;
	long	replies, bytes, churned, churn_failed, held_lost;
	long	life_n;
	int64_t	life_min, life_max, life_sum;
} st = { .life_min = NEVER };

static struct sockaddr_storage	 dst;
static socklen_t		 dstlen;
static struct addrs		 srcs, churn_srcs;
static struct conn		*conns;
static size_t			 nconns;
static int			 ep;
static int64_t			 t0;
static size_t			 churn_next;

/* Milliseconds on the monotonic clock. */
static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Exit with a message. */
static void
die(const char *what)
{
	fprintf(stderr, "trickle: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* Parse one address into sa; false if it is none. */
static int
parse_addr(const char *text, int port, struct sockaddr_storage *sa,
    socklen_t *len)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)sa;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)sa;

	memset(sa, 0, sizeof(*sa));
	if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*len = sizeof(*sin);
		return 1;
	}
	if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*sin6);
		return 1;
	}
	return 0;
}

/* Read a file of addresses, one a line. */
static void
read_addrs(const char *path, struct addrs *a)
{
	char	 line[128];
	size_t	 cap = 0;
	FILE	*f = fopen(path, "r");

	if (f == NULL)
		die(path);
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, " \t\r\n")] = '\0';
		if (line[0] == '\0')
			continue;
		if (a->n == cap) {
			cap = cap ? cap * 2 : 256;
			a->sa = realloc(a->sa, cap * sizeof(*a->sa));
			a->len = realloc(a->len, cap * sizeof(*a->len));
			if (a->sa == NULL || a->len == NULL)
				die("realloc");
		}
		if (!parse_addr(line, 0, &a->sa[a->n], &a->len[a->n])) {
			fprintf(stderr, "trickle: %s: bad address %s\n", path,
			    line);
			exit(2);
		}
		a->n++;
	}
	fclose(f);
}

/* The frame from its hex text. */
static void
parse_frame(const char *hex)
{
	size_t i, n = strlen(hex) / 2;

	if ((opt.frame = malloc(n + 1)) == NULL)
		die("malloc");
	for (i = 0; i < n; i++) {
		unsigned v;

		if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
			fprintf(stderr, "trickle: bad --frame\n");
			exit(2);
		}
		opt.frame[i] = (uint8_t)v;
	}
	opt.frame_len = n;
}

/* Close c's socket and mark it free. */
static void
drop(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->state = FREE;
	c->sent = 0;
	c->next_send = NEVER;
}

/* Start a non-blocking connect for c from its source address. */
static void
start(struct conn *c)
{
	const struct addrs	*a = c->kind == CHURN ? &churn_srcs : &srcs;
	const struct sockaddr	*sa = (const struct sockaddr *)&a->sa[c->src];
	struct epoll_event	 ev = { .events = EPOLLOUT | EPOLLIN | EPOLLRDHUP };
	int			 one = 1, fd;

	st.connects++;
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd < 0) {
		st.connect_errors++;
		return;
	}
	(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
	    sizeof(one));
	if (sa->sa_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one,
		    sizeof(one));
	else
		(void)setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one,
		    sizeof(one));
	if (bind(fd, sa, a->len[c->src]) != 0 ||
	    (connect(fd, (struct sockaddr *)&dst, dstlen) != 0 &&
	    errno != EINPROGRESS)) {
		st.connect_errors++;
		close(fd);
		return;
	}
	ev.data.ptr = c;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
		die("epoll_ctl");
	c->fd = fd;
	c->state = CONNECTING;
}

/* The connect of c finished: hold, or send the churn request. */
static void
established(struct conn *c, int64_t now)
{
	struct epoll_event	ev = { .events = EPOLLIN | EPOLLRDHUP };
	int			err = 0;
	socklen_t		elen = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 ||
	    err != 0) {
		st.connect_errors++;
		if (c->kind == CHURN)
			st.churn_failed++;
		drop(c);
		return;
	}
	ev.data.ptr = c;
	(void)epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
	st.established++;
	c->state = OPEN;
	c->opened = now;
	c->sent = 0;
	if (c->kind == HOLD && opt.frame_len > 0)
		c->next_send = now + random() % opt.interval_ms;
	else
		c->next_send = NEVER;
	if (c->kind == CHURN && opt.frame_len > 0 &&
	    send(c->fd, opt.frame, opt.frame_len, MSG_NOSIGNAL) < 0) {
		st.churn_failed++;
		drop(c);
	}
}

/* Something to read on c: a reply, or the daemon closed it. */
static void
readable(struct conn *c, int64_t now)
{
	char	buf[4096];
	ssize_t	n;

	while ((n = recv(c->fd, buf, sizeof(buf), 0)) > 0) {
		st.replies++;
		st.bytes += n;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (c->kind == CHURN)
		st.churned++;
	else {
		int64_t life = now - c->opened;

		st.closed_by_peer++;
		st.life_n++;
		st.life_sum += life;
		if (life < st.life_min)
			st.life_min = life;
		if (life > st.life_max)
			st.life_max = life;
		if (c->kind == HELD)
			st.held_lost++;
	}
	drop(c);
}

/* Send the next byte of the frame on each hold connection that is due. */
static void
trickle_due(int64_t now)
{
	size_t i;

	for (i = 0; i < nconns; i++) {
		struct conn *c = &conns[i];

		if (c->state != OPEN || c->next_send > now)
			continue;
		if (send(c->fd, opt.frame + c->sent, 1,
		    MSG_NOSIGNAL | MSG_DONTWAIT) == 1)
			c->sent++;
		c->next_send = c->sent < opt.frame_len ?
		    c->next_send + opt.interval_ms : NEVER;
	}
}

/* Start connects on free slots, at most budget of them; returns how many. */
static long
reconnect(long budget, int kind)
{
	static size_t	 next;
	size_t		 k;
	long		 done = 0;

	for (k = 0; k < nconns && done < budget; k++) {
		struct conn *c = &conns[(next + k) % nconns];

		if (c->state != FREE || c->kind != kind)
			continue;
		if (kind == CHURN)
			c->src = (uint32_t)(churn_next++ % churn_srcs.n);
		start(c);
		done++;
	}
	next = (next + k) % (nconns ? nconns : 1);
	return done;
}

/* How many open connections of kind there are. */
static long
count_state(int kind, int state)
{
	size_t	i;
	long	n = 0;

	for (i = 0; i < nconns; i++)
		if (conns[i].kind == kind && conns[i].state == state)
			n++;
	return n;
}

/* One JSON line of statistics. */
static void
report(const char *event, int64_t now)
{
	printf("{\"event\":\"%s\",\"t\":%.3f,\"open\":%ld,\"connecting\":%ld,"
	    "\"connects\":%ld,\"established\":%ld,\"connect_errors\":%ld,"
	    "\"closed_by_peer\":%ld,\"replies\":%ld,\"bytes\":%ld,"
	    "\"churned\":%ld,\"churn_failed\":%ld,\"held\":%ld,"
	    "\"held_lost\":%ld,\"life_n\":%ld,\"life_min_ms\":%lld,"
	    "\"life_max_ms\":%lld,\"life_avg_ms\":%lld}\n",
	    event, (double)(now - t0) / 1000.0,
	    count_state(HOLD, OPEN) + count_state(HELD, OPEN),
	    count_state(HOLD, CONNECTING) + count_state(HELD, CONNECTING),
	    st.connects, st.established, st.connect_errors, st.closed_by_peer,
	    st.replies, st.bytes, st.churned, st.churn_failed,
	    count_state(HELD, OPEN), st.held_lost, st.life_n,
	    (long long)(st.life_n ? st.life_min : 0),
	    (long long)st.life_max,
	    (long long)(st.life_n ? st.life_sum / st.life_n : 0));
	fflush(stdout);
}

/* Handle what epoll reports for up to wait_ms. */
static void
poll_once(int wait_ms)
{
	struct epoll_event	evs[512];
	int			i, n = epoll_wait(ep, evs, 512, wait_ms);
	int64_t			now = now_ms();

	for (i = 0; i < n; i++) {
		struct conn *c = evs[i].data.ptr;

		if (c->state == CONNECTING)
			established(c, now);
		else if (c->state == OPEN)
			readable(c, now);
	}
}

/* Raise our descriptor limit to fit want sockets. */
static void
raise_nofile(size_t want)
{
	struct rlimit rl = { .rlim_cur = want + 64, .rlim_max = want + 64 };
	struct rlimit old;

	if (getrlimit(RLIMIT_NOFILE, &old) == 0 && old.rlim_cur >= rl.rlim_cur)
		return;
	if (old.rlim_max > rl.rlim_max)
		rl.rlim_max = old.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		die("setrlimit RLIMIT_NOFILE");
}

/* hold mode: keep per connections from every source trickling. */
static void
run_hold(int64_t end)
{
	int64_t	last = now_ms(), last_stats = last;
	double	tokens = 0;
	size_t	i;

	nconns = srcs.n * (size_t)opt.per;
	raise_nofile(nconns);
	if ((conns = calloc(nconns, sizeof(*conns))) == NULL)
		die("calloc");
	for (i = 0; i < nconns; i++) {
		conns[i].fd = -1;
		conns[i].kind = HOLD;
		/* Interleave sources, so every address starts at once. */
		conns[i].src = (uint32_t)(i % srcs.n);
		drop(&conns[i]);
	}
	while (now_ms() < end) {
		int64_t now = now_ms();

		tokens += (double)opt.rate * (double)(now - last) / 1000.0;
		if (tokens > opt.rate / 10.0 + 1)
			tokens = opt.rate / 10.0 + 1;
		last = now;
		tokens -= (double)reconnect((long)tokens, HOLD);
		trickle_due(now);
		if (now - last_stats >= opt.stats_ms) {
			report("stats", now);
			last_stats = now;
		}
		poll_once(TICK_MS);
	}
	report("end", now_ms());
}

/* churn mode: hold one idle connection per source, then churn. */
static void
run_churn(int64_t end)
{
	size_t	i, nheld = srcs.n;
	int64_t	churn_start;

	nconns = nheld + (size_t)opt.conc;
	raise_nofile(nconns);
	if ((conns = calloc(nconns, sizeof(*conns))) == NULL)
		die("calloc");
	for (i = 0; i < nconns; i++) {
		conns[i].fd = -1;
		conns[i].kind = i < nheld ? HELD : CHURN;
		conns[i].src = (uint32_t)(i < nheld ? i : 0);
		drop(&conns[i]);
	}
	/*
	 * Hold: every source once, rate-limited; a connect that fails is
	 * tried again (three tries each) until every one is open or settled.
	 */
	for (int tries = 0; tries < 3 && now_ms() < end; tries++) {
		for (i = 0; i < nheld && now_ms() < end; ) {
			size_t stop = i + (size_t)(opt.rate / 100 + 1);

			for (; i < nheld && i < stop; i++)
				if (conns[i].state == FREE)
					start(&conns[i]);
			poll_once(TICK_MS);
		}
		while (count_state(HELD, CONNECTING) > 0 && now_ms() < end)
			poll_once(TICK_MS);
		if (count_state(HELD, OPEN) == (long)nheld)
			break;
	}
	report("held", now_ms());
	churn_start = now_ms();
	while (now_ms() < end && st.churned + st.churn_failed < opt.count) {
		long busy = count_state(CHURN, CONNECTING) +
		    count_state(CHURN, OPEN);
		long left = opt.count - st.churned - st.churn_failed - busy;

		if (left > 0)
			reconnect(left < opt.conc ? left : opt.conc, CHURN);
		poll_once(1);
	}
	printf("{\"event\":\"done\",\"secs\":%.3f,\"churned\":%ld,"
	    "\"churn_failed\":%ld,\"held\":%ld,\"held_lost\":%ld,"
	    "\"replies\":%ld,\"connect_errors\":%ld}\n",
	    (double)(now_ms() - churn_start) / 1000.0, st.churned,
	    st.churn_failed, count_state(HELD, OPEN), st.held_lost,
	    st.replies, st.connect_errors);
	fflush(stdout);
}

static void
usage(void)
{
	fprintf(stderr,
"usage: trickle --dst ADDR --port P --sources FILE [--mode hold|churn]\n"
"               [--per N] [--frame HEX] [--interval-ms MS] [--rate N/s]\n"
"               [--churn FILE] [--conc N] [--count N] [--duration S]\n"
"               [--stats-ms MS]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "dst", required_argument, NULL, 'd' },
		{ "port", required_argument, NULL, 'p' },
		{ "sources", required_argument, NULL, 's' },
		{ "mode", required_argument, NULL, 'm' },
		{ "per", required_argument, NULL, 'n' },
		{ "frame", required_argument, NULL, 'f' },
		{ "interval-ms", required_argument, NULL, 'i' },
		{ "rate", required_argument, NULL, 'r' },
		{ "churn", required_argument, NULL, 'c' },
		{ "conc", required_argument, NULL, 'C' },
		{ "count", required_argument, NULL, 'N' },
		{ "duration", required_argument, NULL, 't' },
		{ "stats-ms", required_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (ch) {
		case 'd': opt.dst = optarg; break;
		case 'p': opt.port = atoi(optarg); break;
		case 's': opt.sources = optarg; break;
		case 'm': opt.mode = optarg; break;
		case 'n': opt.per = atol(optarg); break;
		case 'f': parse_frame(optarg); break;
		case 'i': opt.interval_ms = atol(optarg); break;
		case 'r': opt.rate = atol(optarg); break;
		case 'c': opt.churn_file = optarg; break;
		case 'C': opt.conc = atol(optarg); break;
		case 'N': opt.count = atol(optarg); break;
		case 't': opt.duration = atof(optarg); break;
		case 'S': opt.stats_ms = atol(optarg); break;
		default: usage();
		}
	}
	if (opt.dst == NULL || opt.port <= 0 || opt.sources == NULL ||
	    opt.per < 1 || opt.interval_ms < 1 || opt.rate < 1 ||
	    opt.conc < 1 || opt.duration <= 0 || opt.duration > 600)
		usage();
	/* Bounded however we are left behind: our parent's end is ours. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		return 1;
	alarm((unsigned)opt.duration + 10);
	signal(SIGPIPE, SIG_IGN);
	srandom((unsigned)getpid());
	if (!parse_addr(opt.dst, opt.port, &dst, &dstlen))
		usage();
	read_addrs(opt.sources, &srcs);
	if (srcs.n == 0)
		usage();
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		die("epoll_create1");
	t0 = now_ms();
	if (strcmp(opt.mode, "churn") == 0) {
		if (opt.churn_file == NULL)
			usage();
		read_addrs(opt.churn_file, &churn_srcs);
		if (churn_srcs.n == 0)
			usage();
		run_churn(t0 + (int64_t)(opt.duration * 1000));
	} else if (strcmp(opt.mode, "hold") == 0)
		run_hold(t0 + (int64_t)(opt.duration * 1000));
	else
		usage();
	return 0;
}
