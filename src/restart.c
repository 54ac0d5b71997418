/*
 * Restarts without losing nodes.
 *
 * A new process gets descriptors the way systemd passes them (LISTEN_FDS,
 * LISTEN_FDNAMES): listening sockets, one connection per registered node
 * named by its id in hex, and the saved registry in a memfd named
 * epmd-c-state.N. Under systemd they come from the service's fd store,
 * which this module keeps current: every node's connection is stored when
 * it registers and removed when it leaves, and the registry is rewritten
 * into one of two memfds (alternately, so a crash mid-write leaves the
 * other intact) shortly after every change. Without systemd, SIGUSR2
 * hands the same set to a fork+exec of the binary and waits for the child
 * to say it is ready; if it never does, this process goes on serving.
 */
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "conn.h"
#include "log.h"
#include "metrics_http.h"
#include "registry.h"
#include "restart.h"
#include "server.h"
#include "state.h"
#include "systemd.h"

#define NSTATE		2	/* state memfds under systemd */
#define ID_WORDS	(RESTART_MAX_IDS / 64)
/* A node with no id (all taken) is saved under one no fd can match. */
#define ID_NONE		UINT32_MAX

enum busy {
	BUSY_NO,
	BUSY_EXIT,	/* graceful exit under systemd */
	BUSY_UPGRADE,	/* SIGUSR2 */
};

struct restart {
	struct server	*srv;
	bool		 store;		/* under -systemd: keep the fd store */
	int		 state_fd[NSTATE];
	int		 next_state;	/* the memfd the next write goes to */
	int		 ready_fd;	/* SIGUSR2 child: the parent waits on it */
	int		*cand;		/* handed-over node fds by id, or -1 */
	uint64_t	 used[ID_WORDS];
	uint32_t	*id_by_fd;	/* id + 1 of the node on each fd, or 0 */
	size_t		 id_cap;
	struct event	*write_ev;	/* a coalesced state write */
	uint64_t	 write_cost;	/* microseconds the last write took */
	bool		 dirty;
	bool		 keep;		/* exiting: nodes stay in the store */
	bool		 handed[NSTATE];	/* that state memfd was handed over */
	enum busy	 busy;
	struct event	*drain_ev;
	uint64_t	 drain_idle;	/* then close connections that sent nothing */
	uint64_t	 drain_until;	/* monotonic microseconds */
	uint32_t	 restarts;	/* restarts that kept the registry */
	size_t		 restored;	/* nodes the last one kept */
	uint64_t	 signalled;	/* when SIGUSR2 came */
	struct conn	**adopted;	/* restored, not watched yet */
	size_t		 nadopted;
	size_t		 nwatched;
	struct event	*watch_ev;	/* attaches the watches after READY */
	int		 metrics_fds[RESTART_MAX_METRICS];	/* for -metrics */
	size_t		 nmetrics;
};

static char	**saved_argv;
static char	  exec_path[PATH_MAX];
static bool	  handover;	/* started by a SIGUSR2 parent */
static uint64_t	  start_usec;	/* when main started, for the ready time */

/* Monotonic microseconds. */
static uint64_t
now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Remember argv and the binary's path, for SIGUSR2 (call from main). */
void
restart_save_argv(int argc, char *argv[])
{
	ssize_t	 n;
	char	*del;

	(void)argc;
	start_usec = now_usec();
	saved_argv = argv;
	/* Read once: the variable must not reach our own children. */
	handover = getenv(RESTART_ENV_HANDOVER) != NULL;
	unsetenv(RESTART_ENV_HANDOVER);
	/* The path, not /proc/self/exe: an upgrade replaces the file there. */
	n = readlink("/proc/self/exe", exec_path, sizeof(exec_path) - 1);
	if (n <= 0) {
		exec_path[0] = '\0';
		return;
	}
	exec_path[n] = '\0';
	if ((del = strstr(exec_path, " (deleted)")) != NULL &&
	    del[sizeof(" (deleted)") - 1] == '\0')
		*del = '\0';
}

/* Was this process started by a SIGUSR2 handover? */
bool
restart_is_handover(void)
{
	return handover;
}

/* Is fd a TCP socket, listening or not? */
static bool
is_stream_socket(int fd, bool listening)
{
	int		type = 0, acc = 0, dom = 0;
	socklen_t	len = sizeof(type), alen = sizeof(acc), dlen = sizeof(dom);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1 ||
	    type != SOCK_STREAM)
		return false;
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &dlen) == -1 ||
	    (dom != AF_INET && dom != AF_INET6))
		return false;
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &alen) == -1)
		return false;
	return (acc != 0) == listening;
}

/* Parse a node's fd name: 1-4 lower-case hex digits below the id limit. */
static long
parse_id(const char *name)
{
	char	*end;
	long	 v;
	size_t	 len = strlen(name), i;

	if (len == 0 || len > 4)
		return -1;
	for (i = 0; i < len; i++)
		if (!((name[i] >= '0' && name[i] <= '9') ||
		    (name[i] >= 'a' && name[i] <= 'f')))
			return -1;
	v = strtol(name, &end, 16);
	if (*end != '\0' || v < 0 || v >= RESTART_MAX_IDS)
		return -1;
	return v;
}

/* An id's fd name. */
static void
id_name(uint32_t id, char *buf, size_t len)
{
	snprintf(buf, len, "%x", (unsigned)id);
}

/* Mark an id used or free. */
static void
id_mark(struct restart *rs, uint32_t id, bool used)
{
	if (id >= RESTART_MAX_IDS)
		return;
	if (used)
		rs->used[id / 64] |= (uint64_t)1 << (id % 64);
	else
		rs->used[id / 64] &= ~((uint64_t)1 << (id % 64));
}

/* The smallest free id, taken; ID_NONE if all are used. */
static uint32_t
id_alloc(struct restart *rs)
{
	size_t i;

	for (i = 0; i < ID_WORDS; i++) {
		if (rs->used[i] != UINT64_MAX) {
			uint32_t id = (uint32_t)(i * 64) +
			    (uint32_t)__builtin_ctzll(~rs->used[i]);

			id_mark(rs, id, true);
			return id;
		}
	}
	return ID_NONE;
}

/* Remember which id the node on fd has; false if out of memory. */
static bool
id_set_fd(struct restart *rs, int fd, uint32_t id)
{
	if (fd < 0)
		return false;
	if ((size_t)fd >= rs->id_cap) {
		size_t	  cap = rs->id_cap > 0 ? rs->id_cap : 1024;
		uint32_t *n;

		while (cap <= (size_t)fd)
			cap *= 2;
		if ((n = realloc(rs->id_by_fd, cap * sizeof(*n))) == NULL)
			return false;
		memset(n + rs->id_cap, 0, (cap - rs->id_cap) * sizeof(*n));
		rs->id_by_fd = n;
		rs->id_cap = cap;
	}
	rs->id_by_fd[fd] = id == ID_NONE ? 0 : id + 1;
	return true;
}

/* The id of the node on fd, or ID_NONE. */
static uint32_t
id_of_fd(const struct restart *rs, int fd)
{
	if (fd < 0 || (size_t)fd >= rs->id_cap || rs->id_by_fd[fd] == 0)
		return ID_NONE;
	return rs->id_by_fd[fd] - 1;
}

/* The connection id the state records for a node. */
static uint32_t
conn_id_of(const struct node *node, void *arg)
{
	const struct restart	*rs = arg;
	uint32_t		 id = id_of_fd(rs, node->fd);

	/* Without an id: unique, and matching no handed-over fd. */
	return id != ID_NONE ? id : RESTART_MAX_IDS + (uint32_t)node->fd;
}

/* Read a whole memfd; NULL (and a log line) if it cannot be read. */
static uint8_t *
read_blob(int fd, size_t *len)
{
	struct stat	 st;
	uint8_t		*buf;
	size_t		 got = 0;
	ssize_t		 n;

	if (fstat(fd, &st) == -1) {
		log_warn("saved state: fstat");
		return NULL;
	}
	if (st.st_size <= 0 || (uint64_t)st.st_size > STATE_MAX_SIZE) {
		log_warnx("saved state ignored: %lld bytes",
		    (long long)st.st_size);
		return NULL;
	}
	if ((buf = malloc((size_t)st.st_size)) == NULL)
		return NULL;
	while (got < (size_t)st.st_size) {
		n = pread(fd, buf + got, (size_t)st.st_size - got, (off_t)got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_warn("saved state: read");
			free(buf);
			return NULL;
		}
		got += (size_t)n;
	}
	*len = got;
	return buf;
}

/* Write a blob into a memfd from offset 0, replacing what was there. */
static bool
write_blob(int fd, const uint8_t *blob, size_t len)
{
	size_t	done = 0;
	ssize_t	n;

	/* Grow or shrink first: a crash then leaves a bad CRC, never a
	 * good-looking mix of two states. */
	if (ftruncate(fd, (off_t)len) == -1)
		return false;
	while (done < len) {
		n = pwrite(fd, blob + done, len - done, (off_t)done);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		done += (size_t)n;
	}
	return true;
}

/* Encode the registry and write it to the next state memfd. */
static void
write_state(struct restart *rs)
{
	uint8_t		*blob;
	size_t		 len;
	uint64_t	 t0 = now_usec();
	int		 fd = rs->state_fd[rs->next_state];

	rs->dirty = false;
	if (fd == -1)
		return;
	blob = state_encode(rs->srv->reg, rs->restarts, conn_id_of, rs, &len);
	if (blob == NULL) {
		log_flood(LOG_WARNING, NULL, "cannot save the registry (out of "
		    "memory or above the state limits)");
		return;
	}
	if (!write_blob(fd, blob, len))
		log_warn("cannot save the registry");
	else
		rs->next_state = (rs->next_state + 1) % NSTATE;
	free(blob);
	rs->write_cost = now_usec() - t0;
}

/* The coalescing timer fired: save the registry. */
static void
write_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	write_state(arg);
}

/* The registry changed: save it soon, at most a few percent of the time. */
static void
state_changed(struct restart *rs)
{
	struct timeval	tv = { 0, 0 };
	uint64_t	delay;

	if (!rs->store || rs->keep || rs->write_ev == NULL)
		return;
	rs->dirty = true;
	if (evtimer_pending(rs->write_ev, NULL))
		return;
	/* Writing is O(nodes): coalesce changes for 20 times its cost. */
	delay = rs->write_cost * 20;
	if (delay > 100000)
		delay = 100000;
	tv.tv_usec = (suseconds_t)delay;
	evtimer_add(rs->write_ev, &tv);
}

/* A new memfd for the saved state. */
static int
new_state_fd(const char *name)
{
	int fd = memfd_create(name, MFD_CLOEXEC);

	if (fd == -1)
		log_warn("memfd_create");
	return fd;
}

/* Classify one handed-over descriptor. */
static bool
take_one(struct restart *rs, int fd, const char *name, int *fds, size_t max,
    int *nfds)
{
	long id;

	/*
	 * A node's connection is known by its name alone: checking its type
	 * would cost syscalls per node, and a descriptor that is no socket
	 * fails the liveness check anyway. So a socket unit's
	 * FileDescriptorName= must not be 1-4 hex digits.
	 */
	if ((id = parse_id(name)) >= 0) {
		if (rs->cand[id] != -1) {
			/* Two under one name: keep one, store it again. */
			close(rs->cand[id]);
			if (rs->store) {
				systemd_store_remove(name);
				systemd_store_fd(fd, name);
			}
		}
		rs->cand[id] = fd;
		return true;
	}
	if (strcmp(name, RESTART_STATE_NAME ".0") == 0 ||
	    strcmp(name, RESTART_STATE_NAME ".1") == 0) {
		int k = name[sizeof(RESTART_STATE_NAME)] - '0';

		if (rs->state_fd[k] != -1)
			close(rs->state_fd[k]);
		rs->state_fd[k] = fd;
		rs->handed[k] = true;
		(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
		return true;
	}
	if (strcmp(name, RESTART_READY_NAME) == 0) {
		rs->ready_fd = fd;
		(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
		return true;
	}
	/* The metrics server's, never a port mapper's. */
	if (strcmp(name, SYSTEMD_METRICS_NAME) == 0 &&
	    is_stream_socket(fd, true)) {
		if (rs->nmetrics >= RESTART_MAX_METRICS) {
			log_warnx("cannot serve metrics on more than %d "
			    "sockets", RESTART_MAX_METRICS);
			return false;
		}
		rs->metrics_fds[rs->nmetrics++] = fd;
		return true;
	}
	if (is_stream_socket(fd, true)) {
		if ((size_t)*nfds >= max) {
			log_warnx("cannot listen on more than %zu sockets", max);
			return false;
		}
		fds[(*nfds)++] = fd;
		return true;
	}
	log_warnx("systemd socket %d (%s) is not a listening TCP socket, nor "
	    "a descriptor epmd-c stored", fd, name);
	return false;
}

/* Take what was handed over; listener fds go to fds[] (at most max). */
struct restart *
restart_new(struct server *srv, int *fds, size_t max, int *nfds)
{
	struct restart	 *rs;
	char		**names = NULL;
	int		  i, n = 0, k;
	bool		  ok = true;

	*nfds = 0;
	if ((rs = calloc(1, sizeof(*rs))) == NULL ||
	    (rs->cand = malloc(RESTART_MAX_IDS * sizeof(*rs->cand))) == NULL)
		fatalx("out of memory");
	rs->srv = srv;
	rs->store = srv->opts->systemd;
	rs->ready_fd = -1;
	for (k = 0; k < NSTATE; k++)
		rs->state_fd[k] = -1;
	for (i = 0; i < RESTART_MAX_IDS; i++)
		rs->cand[i] = -1;
	if (rs->store || restart_is_handover()) {
		uint64_t t0 = now_usec();

		if ((n = systemd_listen_fds_with_names(&names)) < 0) {
			*nfds = -1;
			n = 0;
		}
		for (i = 0; i < n && ok; i++)
			ok = take_one(rs, SYSTEMD_LISTEN_FDS_START + i,
			    names != NULL && names[i] != NULL ? names[i] : "",
			    fds, max, nfds);
		if (!ok)
			*nfds = -1;
		for (i = 0; names != NULL && names[i] != NULL; i++)
			free(names[i]);
		free(names);
		log_debug("took %d descriptors in %.1f ms (%.1f ms after start)",
		    n, (double)(now_usec() - t0) / 1000.0,
		    (double)(now_usec() - start_usec) / 1000.0);
	}
	if (rs->store) {
		rs->write_ev = evtimer_new(srv->base, write_cb, rs);
		for (k = 0; k < NSTATE; k++) {
			char name[32];

			if (rs->state_fd[k] != -1)
				continue;
			snprintf(name, sizeof(name), "%s.%d",
			    RESTART_STATE_NAME, k);
			if ((rs->state_fd[k] = new_state_fd(name)) != -1 &&
			    !systemd_store_fd(rs->state_fd[k], name)) {
				close(rs->state_fd[k]);
				rs->state_fd[k] = -1;
			}
		}
	}
	return rs;
}

/*
 * Drop the restored nodes whose peer left while no daemon ran: EOF, a
 * reset, or data pending all make the socket readable (or hung up), and
 * one poll() sees that for every node at once. Each goes the way of any
 * node that leaves (conn_close: history, fd store, saved state).
 */
static size_t
drop_gone(struct restart *rs)
{
	struct pollfd	 *p;
	struct conn	**a = rs->adopted;
	size_t		  i, j, n = rs->nadopted, dropped = 0;

	if (n == 0)
		return 0;
	if ((p = calloc(n, sizeof(*p))) == NULL)
		return 0;	/* their watches will see it instead */
	for (i = 0; i < n; i++) {
		p[i].fd = conn_fd(a[i]);
		p[i].events = POLLIN | POLLRDHUP;
	}
	/* Detached while closing: the unregister upcall must not edit it. */
	rs->adopted = NULL;
	if (poll(p, (nfds_t)n, 0) > 0) {
		for (i = j = 0; i < n; i++) {
			if (p[i].revents != 0) {
				conn_close(a[i]);
				dropped++;
			} else
				a[j++] = a[i];
		}
		n = j;
	}
	rs->adopted = a;
	rs->nadopted = n;
	free(p);
	return dropped;
}

/* Attach the restored nodes' watches, a slice per loop turn. */
static void
watch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct restart	*rs = arg;
	struct timeval	 tv = { 0, 0 };
	size_t		 end = rs->nwatched + 1024;

	(void)fd;
	(void)what;
	/* A failed watch closes its conn, and the upcall moves the last one
	 * into its slot: that slot is tried again. */
	while (rs->nwatched < end && rs->nwatched < rs->nadopted)
		if (conn_watch(rs->adopted[rs->nwatched]))
			rs->nwatched++;
	if (rs->nwatched < rs->nadopted) {
		evtimer_add(rs->watch_ev, &tv);
		return;
	}
	free(rs->adopted);
	rs->adopted = NULL;
	rs->nadopted = rs->nwatched = 0;
}

/* state_restore: the connection of a saved active node, if still there. */
static void *
adopt_cb(const struct state_node *sn, int *fd, void *arg)
{
	struct restart	*rs = arg;
	struct conn	*c;
	int		 cfd;

	if (sn->conn >= RESTART_MAX_IDS || (cfd = rs->cand[sn->conn]) == -1)
		return NULL;
	rs->cand[sn->conn] = -1;
	/* Whether its peer left is seen right after, for all at once. */
	if (!id_set_fd(rs, cfd, sn->conn) ||
	    (c = conn_adopt(rs->srv, cfd)) == NULL) {
		char name[12];

		close(cfd);
		if (rs->store) {
			id_name(sn->conn, name, sizeof(name));
			systemd_store_remove(name);
		}
		return NULL;
	}
	id_mark(rs, sn->conn, true);
	*fd = cfd;
	return c;
}

/* Remember an adopted connection that got its node. */
static void
remember_adopted(struct restart *rs, struct conn *c)
{
	if (rs->adopted == NULL &&
	    (rs->adopted = calloc(RESTART_MAX_IDS, sizeof(*rs->adopted))) ==
	    NULL) {
		(void)conn_watch(c);	/* no memory to defer: watch now */
		return;
	}
	rs->adopted[rs->nadopted++] = c;
}

/* state_restore: the adopted connection gets its node (or is dropped). */
static void
bind_cb(void *handle, struct node *node, void *arg)
{
	struct restart	*rs = arg;
	struct conn	*c = handle;

	if (node == NULL) {
		uint32_t	id = id_of_fd(rs, conn_fd(c));
		char		name[12];

		id_mark(rs, id, false);
		if (rs->store && id != ID_NONE) {
			id_name(id, name, sizeof(name));
			systemd_store_remove(name);
		}
		id_set_fd(rs, conn_fd(c), ID_NONE);
	}
	conn_adopt_bind(c, node);
	if (node != NULL)
		remember_adopted(rs, c);
}

/* Decode the newest good state among the memfds; false if none. */
static bool
best_state(struct restart *rs, struct state *st, uint8_t **blob)
{
	struct state	 s;
	uint8_t		*b;
	size_t		 len;
	int		 k;
	bool		 found = false;
	enum state_error err;

	for (k = 0; k < NSTATE; k++) {
		if (rs->state_fd[k] == -1 || !rs->handed[k])
			continue;
		if ((b = read_blob(rs->state_fd[k], &len)) == NULL)
			continue;
		if ((err = state_decode(b, len, &s)) != STATE_OK) {
			/* An empty memfd is a fresh one, not a bad state. */
			log_warnx("saved state %s.%d ignored: %s",
			    RESTART_STATE_NAME, k, state_strerror(err));
			free(b);
			continue;
		}
		if (found && s.seq <= st->seq) {
			state_free(&s);
			free(b);
			continue;
		}
		if (found) {
			state_free(st);
			free(*blob);
		}
		*st = s;
		*blob = b;
		/* Write over the older one first. */
		rs->next_state = (k + 1) % NSTATE;
		found = true;
	}
	return found;
}

/* Close every handed-over node connection no saved record claimed. */
static size_t
close_orphans(struct restart *rs)
{
	size_t	n = 0;
	int	id;
	char	name[12];

	for (id = 0; id < RESTART_MAX_IDS; id++) {
		if (rs->cand[id] == -1)
			continue;
		close(rs->cand[id]);
		rs->cand[id] = -1;
		if (rs->store) {
			id_name((uint32_t)id, name, sizeof(name));
			systemd_store_remove(name);
		}
		n++;
	}
	return n;
}

/* The metrics listeners handed over (copied to fds); their count. */
size_t
restart_metrics_fds(const struct restart *rs, int *fds, size_t max)
{
	size_t i;

	for (i = 0; rs != NULL && i < rs->nmetrics && i < max; i++)
		fds[i] = rs->metrics_fds[i];
	return i;
}

/* Rebuild the registry and re-attach the node connections. */
void
restart_restore(struct restart *rs)
{
	struct state	 st;
	uint8_t		*blob = NULL;
	size_t		 orphans;
	bool		 any = rs->handed[0] || rs->handed[1], good;
	int		 k;
	uint64_t	 t0 = now_usec(), t1;

	/* Only a state that was handed over: fresh memfds are empty. */
	good = any && best_state(rs, &st, &blob);
	t1 = now_usec();
	if (!good && rs->ready_fd != -1) {
		/* A SIGUSR2 child that cannot read the state gives up: the
		 * old process, still holding everything, goes on serving. */
		log_warnx("cannot take over: no usable state from the previous "
		    "process");
		exit(1);
	}
	if (good) {
		rs->restored = state_restore(&st, rs->srv->reg, adopt_cb,
		    bind_cb, rs);
		rs->restarts = st.restarts + 1;
		rs->restored -= drop_gone(rs);
		log_debug("state read and checked in %.1f ms, %zu nodes "
		    "re-attached in %.1f ms", (double)(t1 - t0) / 1000.0,
		    rs->restored, (double)(now_usec() - t1) / 1000.0);
		log_info("restored %zu of %zu registered nodes and %zu old "
		    "records (restart %u)", rs->restored, st.nactive,
		    st.nunused, (unsigned)rs->restarts);
		state_free(&st);
		free(blob);
	} else if (any)
		log_warnx("no usable saved state: starting empty");
	metrics_set_restarts(&rs->srv->metrics, rs->restarts, rs->restored);
	if ((orphans = close_orphans(rs)) > 0)
		log_warnx("closed %zu node connections no saved record "
		    "claims; those nodes register again", orphans);
	if (rs->store) {
		/* Both memfds now hold the state we run with. */
		write_state(rs);
		write_state(rs);
	} else
		for (k = 0; k < NSTATE; k++)
			if (rs->state_fd[k] != -1) {
				close(rs->state_fd[k]);
				rs->state_fd[k] = -1;
			}
}

/* The new process serves: tell a waiting SIGUSR2 parent. */
void
restart_ready(struct restart *rs)
{
	double ms;

	if (rs == NULL)
		return;
	ms = (double)(now_usec() - start_usec) / 1000.0;
	if (rs->restarts > 0)
		log_info("ready %.1f ms after start with %zu restored nodes",
		    ms, rs->restored);
	/*
	 * Lookups are answered from now on; the watches that notice a node's
	 * end (one epoll_ctl each, 40 ms for 10,000 nodes here) are attached
	 * in slices between them.
	 */
	if (rs->nadopted > 0) {
		struct timeval tv = { 0, 0 };

		if ((rs->watch_ev = evtimer_new(rs->srv->base, watch_cb, rs)) ==
		    NULL)
			watch_cb(-1, 0, rs);
		else
			evtimer_add(rs->watch_ev, &tv);
	}
	if (rs->ready_fd == -1)
		return;
	if (write(rs->ready_fd, "R", 1) != 1)
		log_warn("cannot tell the previous process we are ready");
	close(rs->ready_fd);
	rs->ready_fd = -1;
	log_info("took over from the previous process");
}

/* Free everything; the connections themselves belong to conn.c. */
void
restart_free(struct restart *rs)
{
	int k;

	if (rs == NULL)
		return;
	if (rs->write_ev != NULL)
		event_free(rs->write_ev);
	if (rs->drain_ev != NULL)
		event_free(rs->drain_ev);
	if (rs->watch_ev != NULL)
		event_free(rs->watch_ev);
	free(rs->adopted);
	for (k = 0; k < NSTATE; k++)
		if (rs->state_fd[k] != -1)
			close(rs->state_fd[k]);
	if (rs->ready_fd != -1)
		close(rs->ready_fd);
	free(rs->cand);
	free(rs->id_by_fd);
	free(rs);
}

/* A node registered: store its connection under a fresh id. */
void
restart_node_registered(struct restart *rs, const struct node *node)
{
	uint32_t	id;
	char		name[12];

	if (rs == NULL)
		return;
	if (!rs->store)
		return;
	if ((id = id_alloc(rs)) == ID_NONE) {
		log_flood(LOG_WARNING, NULL, "more than %d nodes: the newest "
		    "will not survive a restart", RESTART_MAX_IDS);
	} else {
		id_name(id, name, sizeof(name));
		if (!id_set_fd(rs, node->fd, id) ||
		    !systemd_store_fd(node->fd, name)) {
			id_mark(rs, id, false);
			id_set_fd(rs, node->fd, ID_NONE);
		}
	}
	state_changed(rs);
}

/* A node left: take its connection out of the store. */
void
restart_node_unregistered(struct restart *rs, struct conn *c,
    const struct node *node)
{
	uint32_t	id;
	char		name[12];
	size_t		i;

	if (rs == NULL)
		return;
	/* A restored node that leaves before its watch is attached. */
	for (i = rs->nwatched; rs->adopted != NULL && i < rs->nadopted; i++)
		if (rs->adopted[i] == c) {
			rs->adopted[i] = rs->adopted[--rs->nadopted];
			break;
		}
	/* Exiting with the nodes kept: they stay stored and saved. */
	if (rs->keep)
		return;
	id = id_of_fd(rs, node->fd);
	if (id != ID_NONE) {
		if (rs->store) {
			id_name(id, name, sizeof(name));
			systemd_store_remove(name);
		}
		id_mark(rs, id, false);
		id_set_fd(rs, node->fd, ID_NONE);
	}
	state_changed(rs);
}

/* Is a graceful exit or an upgrade under way? */
bool
restart_busy(const struct restart *rs)
{
	return rs != NULL && rs->busy != BUSY_NO;
}

/* One descriptor to hand over, with its name. */
struct handed {
	int	fd;
	bool	cloexec;	/* to be cleared before the exec */
	char	name[24];
};

/* What the upgrade hands over: listeners, nodes, state, ready pipe. */
struct handover {
	struct restart	*rs;
	struct handed	*v;
	size_t		 n;
};

/* Add one active node's connection, if it has an id. */
static bool
add_node(const struct node *node, void *arg)
{
	struct handover	*h = arg;
	uint32_t	 id = id_of_fd(h->rs, node->fd);

	if (id == ID_NONE)
		return true;
	h->v[h->n].fd = node->fd;
	h->v[h->n].cloexec = true;	/* systemd's reader set it on adopted ones */
	id_name(id, h->v[h->n].name, sizeof(h->v[h->n].name));
	h->n++;
	return true;
}

/* Give every node without one an id: the upgrade hands nodes over by id. */
static bool
give_id(const struct node *node, void *arg)
{
	struct restart	*rs = arg;
	uint32_t	 id;

	if (id_of_fd(rs, node->fd) != ID_NONE)
		return true;
	if ((id = id_alloc(rs)) != ID_NONE && !id_set_fd(rs, node->fd, id))
		id_mark(rs, id, false);
	return true;
}

/*
 * Put the n descriptors at 3 .. 3+n-1, as LISTEN_FDS wants, moving as few
 * as possible: those already in that range stay, and only the ones above
 * it (or below 3) fill its holes; those that stay lose close-on-exec (one
 * fcntl each, in the child, while the old daemon keeps serving). Fills
 * name_at[] in the final order. Child only.
 */
static bool
place_fds(struct handed *v, size_t n, const char **name_at)
{
	uint8_t	*taken;
	size_t	 i, h = 0;
	int	 top = 3 + (int)n;

	if ((taken = calloc(n > 0 ? n : 1, 1)) == NULL)
		return false;
	for (i = 0; i < n; i++)
		if (v[i].fd >= 3 && v[i].fd < top)
			taken[v[i].fd - 3] = 1;
	for (i = 0; i < n; i++) {
		if (v[i].fd >= 3 && v[i].fd < top) {
			if (v[i].cloexec && fcntl(v[i].fd, F_SETFD, 0) == -1)
				return false;
			continue;
		}
		while (taken[h])
			h++;
		/* dup2 clears close-on-exec on the copy. */
		if (dup2(v[i].fd, 3 + (int)h) == -1)
			return false;
		v[i].fd = 3 + (int)h;
		taken[h] = 1;
	}
	for (i = 0; i < n; i++)
		name_at[v[i].fd - 3] = v[i].name;
	/* Everything else above goes: the new process starts clean. */
	close_range((unsigned)top, ~0U, 0);
	return true;
}

/* The forked child: put the fds in place, set the environment, exec. */
static void __attribute__((noreturn))
exec_child(struct handed *v, size_t n)
{
	const char	**name_at;
	char		 *names, num[32];
	size_t		  i, len = 1, off = 0;
	const char	 *path = getenv(RESTART_ENV_EXEC);

	if (path == NULL || *path == '\0')
		path = exec_path;
	for (i = 0; i < n; i++)
		len += strlen(v[i].name) + 1;
	if ((name_at = calloc(n > 0 ? n : 1, sizeof(*name_at))) == NULL ||
	    (names = malloc(len)) == NULL || !place_fds(v, n, name_at))
		_exit(127);
	for (i = 0; i < n; i++) {
		size_t l = strlen(name_at[i]);

		if (i > 0)
			names[off++] = ':';
		memcpy(names + off, name_at[i], l);
		off += l;
	}
	names[off] = '\0';
	snprintf(num, sizeof(num), "%zu", n);
	setenv("LISTEN_FDS", num, 1);
	snprintf(num, sizeof(num), "%ld", (long)getpid());
	setenv("LISTEN_PID", num, 1);
	setenv("LISTEN_FDNAMES", names, 1);
	setenv(RESTART_ENV_HANDOVER, "1", 1);
	execv(path, saved_argv);
	_exit(127);
}

/* Wait for the child's "ready" byte; true if it came. */
static bool
wait_child(int fd, pid_t pid, const char **why)
{
	uint64_t	until = now_usec() + RESTART_CHILD_MSEC * 1000ULL;
	struct pollfd	p = { .fd = fd, .events = POLLIN };
	char		byte;
	int		r;

	for (;;) {
		uint64_t now = now_usec();

		if (now >= until) {
			*why = "it did not say it was ready in time";
			kill(pid, SIGKILL);
			return false;
		}
		r = poll(&p, 1, (int)((until - now) / 1000) + 1);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			*why = "poll failed";
			kill(pid, SIGKILL);
			return false;
		}
		if (r == 0)
			continue;
		if (read(fd, &byte, 1) == 1)
			return true;
		*why = "it exited before it was ready";
		return false;
	}
}

/* Hand everything over to a new process; returns only if it failed. */
static void
hand_over(struct restart *rs)
{
	struct server	*srv = rs->srv;
	struct handover	 h = { .rs = rs };
	uint8_t		*blob;
	size_t		 len, i, cap;
	int		 mfd, pfd[2];
	pid_t		 pid;
	const char	*why = NULL;

	registry_walk_active(srv->reg, UINT64_MAX, give_id, rs);
	/* The count so far, as the fd store's copy has it: restoring adds one. */
	if ((blob = state_encode(srv->reg, rs->restarts, conn_id_of, rs,
	    &len)) == NULL) {
		log_warnx("upgrade failed: cannot encode the registry; still "
		    "serving");
		return;
	}
	mfd = new_state_fd(RESTART_STATE_NAME ".0");
	if (mfd == -1 || !write_blob(mfd, blob, len)) {
		free(blob);
		if (mfd != -1)
			close(mfd);
		log_warnx("upgrade failed: cannot write the state; still "
		    "serving");
		return;
	}
	free(blob);
	if (pipe2(pfd, O_CLOEXEC) == -1) {
		close(mfd);
		log_warn("upgrade failed: pipe");
		return;
	}
	cap = srv->nlisteners + RESTART_MAX_METRICS + registry_count(srv->reg) +
	    2;
	if ((h.v = calloc(cap, sizeof(*h.v))) == NULL) {
		close(mfd);
		close(pfd[0]);
		close(pfd[1]);
		log_warnx("upgrade failed: out of memory; still serving");
		return;
	}
	for (i = 0; i < srv->nlisteners; i++) {
		h.v[h.n].fd = evconnlistener_get_fd(srv->listeners[i]);
		h.v[h.n].cloexec = true;
		snprintf(h.v[h.n].name, sizeof(h.v[h.n].name), "listen");
		h.n++;
	}
	/* The metrics listeners too: the new process could not bind them. */
	if (srv->mhttp != NULL) {
		int	mfds[RESTART_MAX_METRICS];
		size_t	k, nm = metrics_http_listener_fds(srv->mhttp, mfds,
			    RESTART_MAX_METRICS);

		for (k = 0; k < nm; k++) {
			h.v[h.n].fd = mfds[k];
			h.v[h.n].cloexec = true;
			snprintf(h.v[h.n].name, sizeof(h.v[h.n].name), "%s",
			    SYSTEMD_METRICS_NAME);
			h.n++;
		}
	}
	registry_walk_active(srv->reg, UINT64_MAX, add_node, &h);
	h.v[h.n].fd = mfd;
	h.v[h.n].cloexec = true;
	snprintf(h.v[h.n].name, sizeof(h.v[h.n].name), "%s",
	    RESTART_STATE_NAME ".0");
	h.n++;
	h.v[h.n].fd = pfd[1];
	h.v[h.n].cloexec = true;
	snprintf(h.v[h.n].name, sizeof(h.v[h.n].name), "%s",
	    RESTART_READY_NAME);
	h.n++;

	switch ((pid = fork())) {
	case -1:
		log_warn("upgrade failed: fork");
		break;
	case 0:
		close(pfd[0]);
		exec_child(h.v, h.n);
	default:
		close(pfd[1]);
		pfd[1] = -1;
		log_info("SIGUSR2: handing %zu nodes over to pid %ld",
		    registry_count(srv->reg), (long)pid);
		if (wait_child(pfd[0], pid, &why)) {
			/* The new process serves everything now. */
			log_info("handed over to pid %ld %.1f ms after SIGUSR2; "
			    "exiting", (long)pid,
			    (double)(now_usec() - rs->signalled) / 1000.0);
			_exit(0);
		}
		waitpid(pid, NULL, 0);
		log_warnx("upgrade failed: the new process (%s) %s; still "
		    "serving", getenv(RESTART_ENV_EXEC) != NULL ?
		    getenv(RESTART_ENV_EXEC) : exec_path, why);
		break;
	}
	free(h.v);
	close(mfd);
	close(pfd[0]);
	if (pfd[1] != -1)
		close(pfd[1]);
}

/* Draining: once no request is in progress (or time is up), go on. */
static void
drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct restart	*rs = arg;
	struct server	*srv = rs->srv;
	struct timeval	 tv = { 0, 1000 };
	uint64_t	 now = now_usec();

	(void)fd;
	(void)what;
	if (conn_in_progress(srv, now >= rs->drain_idle) > 0 &&
	    now < rs->drain_until) {
		evtimer_add(rs->drain_ev, &tv);
		return;
	}
	if (rs->busy == BUSY_EXIT) {
		/* Save the final registry; the nodes stay stored. */
		write_state(rs);
		rs->keep = true;
		server_exit(srv, 0);
		return;
	}
	hand_over(rs);
	rs->busy = BUSY_NO;
	server_set_accepting(srv, true);
}

/* Stop accepting and answer what was already read, then finish. */
static void
start_drain(struct restart *rs, enum busy why)
{
	struct timeval	tv = { 0, 0 };
	uint64_t	now = now_usec();

	rs->busy = why;
	server_set_accepting(rs->srv, false);
	rs->drain_idle = now + RESTART_IDLE_MSEC * 1000ULL;
	rs->drain_until = now + RESTART_DRAIN_MSEC * 1000ULL;
	if (rs->drain_ev == NULL &&
	    (rs->drain_ev = evtimer_new(rs->srv->base, drain_cb, rs)) == NULL)
		fatalx("out of memory");
	evtimer_add(rs->drain_ev, &tv);
}

/* SIGTERM under systemd: drain, save, exit keeping nodes in the store. */
void
restart_graceful_exit(struct restart *rs)
{
	if (rs == NULL || rs->busy == BUSY_EXIT)
		return;
	start_drain(rs, BUSY_EXIT);
}

/* SIGUSR2: drain, then re-exec the binary handing everything over. */
void
restart_upgrade(struct restart *rs)
{
	if (rs == NULL || rs->busy != BUSY_NO)
		return;
	if (rs->store) {
		log_warnx("SIGUSR2 ignored under -systemd: use systemctl "
		    "restart, the nodes survive it in the fd store");
		return;
	}
	if (saved_argv == NULL || (exec_path[0] == '\0' &&
	    getenv(RESTART_ENV_EXEC) == NULL)) {
		log_warnx("SIGUSR2 ignored: the binary's path is unknown");
		return;
	}
	rs->signalled = now_usec();
	log_info("SIGUSR2 received: upgrading in place");
	start_drain(rs, BUSY_UPGRADE);
}
