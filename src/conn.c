/* One accepted connection's life: read one frame, answer, close or stay registered. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "addrfilt.h"
#include "admit.h"
#include "conn.h"
#include "log.h"
#include "options.h"
#include "peer.h"
#include "proto.h"
#include "registry.h"
#include "server.h"

enum conn_state {
	CONN_DELAYED,		/* -delay_accept: not reading yet */
	CONN_READING,		/* waiting for one request frame */
	CONN_REPLYING,		/* reply queued; close once it is written */
	CONN_REGISTERING,	/* ALIVE2 OK queued; registered once written */
	CONN_KILLING,		/* KILL OK queued; exit once written */
	CONN_REGISTERED,	/* a node's liveness connection */
};

/* What a NAMES or DUMP reply still has to list. */
enum conn_listing {
	LIST_NONE,
	LIST_NAMES,
	LIST_DUMP_ACTIVE,
	LIST_DUMP_UNUSED,
};

/* A listing is queued this much at a time: the bound on a reply's memory. */
#define LISTING_CHUNK		65536

union addr {
	struct sockaddr		sa;
	struct sockaddr_in	sin;
	struct sockaddr_in6	sin6;
};

/* Ordered to stay small: there is one per open connection. */
struct conn {
	struct server		*srv;
	struct event		*ev;	/* the one event: read, write, delay, watch */
	uint8_t			*in;	/* a partial request, if one came in pieces */
	struct evbuffer		*out;	/* the reply; NULL until there is one */
	uint64_t		 cursor;	/* registry seq of the last line listed */
	struct node		*node;	/* our registration, if any */
	int			 fd;
	uint16_t		 in_len;	/* bytes in in[] */
	uint16_t		 in_cap;	/* its size: the whole frame, once known */
	uint8_t			 state;		/* enum conn_state */
	uint8_t			 listing;	/* what a NAMES/DUMP has left to list */
	bool			 remote;	/* non-local, unregistered: in admit */
	uint32_t		 accepted;	/* monotonic seconds */
	uint32_t		 last_active;	/* accept or last byte, seconds */
	union addr		 peer;	/* as accept() reported it */
	TAILQ_ENTRY(conn)	 entry;	/* in srv->conns.pending or .registered */
};
/* 120 bytes: a smaller malloc bin than libevent's struct event uses. */
_Static_assert(sizeof(struct conn) <= 120, "struct conn outgrew 120 bytes");

/* Room for the text behind a connection's log fields. */
struct conn_logbuf {
	char	peer[PEER_ADDRSTRLEN];
	char	node[LOG_ESCAPED_SIZE(LOG_NAME_MAX)];
};

static void	conn_io_cb(evutil_socket_t, short, void *);
static void	conn_on_readable(struct conn *);
static void	conn_flush(struct conn *);
static void	conn_fill_listing(struct conn *);
static void	conn_done_writing(struct conn *);

/* The peer as text, for logs. */
static const char *
conn_peer(const struct conn *c, char *buf, size_t len)
{
	return peer_format(&c->peer.sa, buf, len);
}

/* A node name for logs: escaped, and cut to LOG_NAME_MAX bytes. */
static const char *
conn_log_name(const uint8_t *name, size_t len, char *buf, size_t buflen)
{
	return log_escape(name, len < LOG_NAME_MAX ? len : LOG_NAME_MAX, buf,
	    buflen);
}

/* The log fields of a peer, and of a node name and port if given. */
static struct log_fields
conn_log_fields(const struct sockaddr *peer, const uint8_t *name,
    size_t name_len, int port, struct conn_logbuf *buf)
{
	struct log_fields f = { .port = port };

	if (peer != NULL)
		f.peer = peer_format(peer, buf->peer, sizeof(buf->peer));
	if (name != NULL)
		f.node = conn_log_name(name, name_len, buf->node,
		    sizeof(buf->node));
	return f;
}

/*
 * epmd_refused_total{reason}: the reasons it has. A STOP without the
 * relaxed check, a refused name and a KILL with live nodes are counted by
 * epmd_requests_total and the registration counters instead.
 */
static void
conn_count_refusal(struct server *srv, enum conn_refusal why)
{
	switch (why) {
	case CONN_REFUSED_REMOTE_ADMIN:
		srv->metrics.refused[METRICS_REFUSED_REMOTE_ADMIN]++;
		break;
	case CONN_REFUSED_ACCESS_LIST:
		srv->metrics.refused[METRICS_REFUSED_ACCESS_LIST]++;
		break;
	case CONN_REFUSED_PEER_CAP:
		srv->metrics.refused[METRICS_REFUSED_PEER_CAP]++;
		break;
	case CONN_REFUSED_PREFIX_CAP:
		srv->metrics.refused[METRICS_REFUSED_PREFIX_CAP]++;
		break;
	case CONN_REFUSED_REMOTE_CAP:
		srv->metrics.refused[METRICS_REFUSED_REMOTE_CAP]++;
		break;
	case CONN_REFUSED_FD_RESERVE:
		srv->metrics.refused[METRICS_REFUSED_FD_RESERVE]++;
		break;
	default:
		break;
	}
}

/*
 * Every refusal in conn.c comes through here, whatever follows it (a close
 * without a byte, or the protocol's error reply): one rate-limited line
 * with the peer's fields. A counter per reason hooks in here.
 */
static void __attribute__((format(printf, 5, 6)))
conn_refuse(struct server *srv, enum conn_refusal why, int prio,
    const struct log_fields *f, const char *fmt, ...)
{
	va_list	 ap;

	conn_count_refusal(srv, why);
	va_start(ap, fmt);
	log_vflood(prio, f, fmt, ap);
	va_end(ap);
}

/* Refuse the request on c: one line saying why, then close without a byte. */
static void
conn_refuse_request(struct conn *c, enum conn_refusal why, const char *req,
    const char *reason)
{
	struct conn_logbuf	buf;
	struct log_fields	f = conn_log_fields(&c->peer.sa, NULL, 0, 0,
				    &buf);

	conn_refuse(c->srv, why, LOG_WARNING, &f, "%s from %s refused: %s", req,
	    f.peer, reason);
	conn_close(c);
}

/* Is the peer local: loopback, or the address it connected to? */
static bool
conn_is_local(const struct conn *c)
{
	union addr	self;
	socklen_t	slen = sizeof(self);

	/* The address accept reported; only a non-loopback one needs ours. */
	if (peer_is_local(&c->peer.sa, NULL))
		return true;
	if (getsockname(c->fd, &self.sa, &slen) == -1)
		return false;
	return peer_same_addr(&c->peer.sa, &self.sa);
}

/* The port for NAMES and DUMP headers: the one the client reached (8.4). */
static uint32_t
conn_header_port(const struct conn *c)
{
	union addr	self;
	socklen_t	len = sizeof(self);

	if (getsockname(c->fd, &self.sa, &len) == -1)
		return (uint32_t)c->srv->opts->port;
	return peer_port(&self.sa);
}

/* Point the connection's event at fd readiness (or a bare timer) and arm it. */
static bool
conn_arm(struct conn *c, evutil_socket_t fd, short what, int timeout)
{
	struct timeval tv = { .tv_sec = timeout };

	/* Re-adding the same event only moves its timeout: no epoll_ctl. */
	if (event_get_fd(c->ev) != fd || event_get_events(c->ev) != what) {
		event_del(c->ev);
		if (event_assign(c->ev, c->srv->base, fd, what, conn_io_cb,
		    c) == -1)
			goto fail;
	}
	if (event_add(c->ev, timeout > 0 ? &tv : NULL) == 0)
		return true;
fail:
	log_warnx("cannot arm a connection event");
	return false;
}

/* Monotonic seconds, for idle accounting (the wall clock may be stepped). */
static uint32_t
conn_now(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) == -1)
		return 0;
	return (uint32_t)ts.tv_sec;
}

/*
 * May a connection from sa be taken? Loopback peers always; others within
 * the caps, closing old non-local requests to make room if all are taken.
 * The admission report logs refusals; here they are counted.
 */
static bool
conn_admit(struct server *srv, const struct sockaddr *sa)
{
	enum admit_verdict v;

	/* Make room first, so a connection let in is not reported refused. */
	if (admit_remote_full(&srv->admit))
		conn_shed_remote(srv, CONN_SHED_BATCH, CONN_SHED_AGE);
	v = admit_take(&srv->admit, sa);
	switch (v) {
	case ADMIT_OK:
		return true;
	case ADMIT_PEER_CAP:
		conn_count_refusal(srv, CONN_REFUSED_PEER_CAP);
		break;
	case ADMIT_PREFIX_CAP:
		conn_count_refusal(srv, CONN_REFUSED_PREFIX_CAP);
		break;
	case ADMIT_REMOTE_CAP:
		conn_count_refusal(srv, CONN_REFUSED_REMOTE_CAP);
		break;
	case ADMIT_NOMEM:
		break;
	}
	return false;
}

/* Has a non-local connection passed -request_deadline? */
static bool
conn_past_deadline(const struct conn *c, uint32_t now)
{
	int deadline = c->srv->opts->request_deadline;

	return c->remote && deadline > 0 &&
	    (int64_t)now - c->accepted >= deadline;
}

/*
 * Seconds after which a waiting connection is closed: N+1 of silence, and
 * for a non-local peer no later than its -request_deadline.
 */
static int
conn_timeout(const struct conn *c)
{
	int	timeout = c->srv->opts->packet_timeout + 1;
	int	deadline = c->srv->opts->request_deadline;
	int64_t	left;

	if (!c->remote || deadline <= 0)
		return timeout;
	left = (int64_t)c->accepted + deadline - conn_now();
	if (left < 1)
		left = 1;
	return left < timeout ? (int)left : timeout;
}

/* A non-local connection leaves the caps: closed, or now a registration. */
static void
conn_unremote(struct conn *c)
{
	if (!c->remote)
		return;
	admit_release(&c->srv->admit, &c->peer.sa);
	c->remote = false;
}

/* An empty set. */
void
conn_set_init(struct conn_set *set)
{
	TAILQ_INIT(&set->pending);
	TAILQ_INIT(&set->registered);
	set->npending = 0;
}

/* Take over an accepted socket from sa. */
void
conn_accept(struct server *srv, int fd, const struct sockaddr *sa, int salen)
{
	const struct options	*opts = srv->opts;
	struct conn		*c;
	bool			 remote = !peer_is_local(sa, NULL);

	if (remote && !conn_admit(srv, sa)) {
		close(fd);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto fail;
	c->srv = srv;
	c->fd = fd;
	c->accepted = c->last_active = conn_now();
	memcpy(&c->peer, sa, (size_t)salen < sizeof(c->peer) ?
	    (size_t)salen : sizeof(c->peer));
	if ((c->ev = event_new(srv->base, -1, 0, conn_io_cb, c)) == NULL) {
		free(c);
		goto fail;
	}
	TAILQ_INSERT_TAIL(&srv->conns.pending, c, entry);
	srv->conns.npending++;
	c->remote = remote;
	if (opts->delay_accept > 0) {
		c->state = CONN_DELAYED;
		if (!conn_arm(c, -1, 0, opts->delay_accept))
			conn_close(c);
		return;
	}
	/* Read what already arrived: most requests then need no event at all. */
	c->state = CONN_READING;
	conn_on_readable(c);
	return;
fail:
	log_warn("cannot take a new connection");
	if (remote)
		admit_release(&srv->admit, sa);
	close(fd);
}

/* Close a connection, unregistering its node if it has one. */
void
conn_close(struct conn *c)
{
	struct server *srv = c->srv;

	if (c->node != NULL) {
		struct node		*node = c->node;
		struct conn_logbuf	 buf;
		struct log_fields	 f = conn_log_fields(NULL, node->info.name,
					     node->info.name_len,
					     node->info.port, &buf);

		/* At shutdown every node goes; one line says so instead. */
		if (!srv->exiting)
			log_fields(LOG_INFO, &f, "unregistered %s (port %u)",
			    f.node, node->info.port);
		registry_unregister(srv->reg, node);
		c->node = NULL;
		server_node_unregistered(srv, c, node);
	}
	if (c->state == CONN_REGISTERED || c->state == CONN_REGISTERING)
		TAILQ_REMOVE(&srv->conns.registered, c, entry);
	else {
		TAILQ_REMOVE(&srv->conns.pending, c, entry);
		srv->conns.npending--;
	}
	conn_unremote(c);
	event_free(c->ev);
	free(c->in);
	if (c->out != NULL)
		evbuffer_free(c->out);
	close(c->fd);
	free(c);
}

/* Close up to n of the oldest connections silent for idle seconds. */
size_t
conn_shed_idle(struct server *srv, size_t n, int idle)
{
	struct conn	*c, *next;
	size_t		 closed = 0;

	/* Only waiting readers: a reply on its way is never cut short. */
	for (c = TAILQ_FIRST(&srv->conns.pending); c != NULL && closed < n;
	    c = next) {
		next = TAILQ_NEXT(c, entry);
		if (c->state != CONN_READING ||
		    (int64_t)conn_now() - c->last_active < idle)
			continue;
		conn_close(c);
		closed++;
	}
	return closed;
}

/* Close up to n of the oldest non-local requests older than age seconds. */
size_t
conn_shed_remote(struct server *srv, size_t n, int age)
{
	struct conn	*c, *next;
	uint32_t	 now = conn_now();
	size_t		 closed = 0;

	/*
	 * Accept order: once one is younger than age, so are the rest, and
	 * the walk ends. It runs only under pressure.
	 */
	for (c = TAILQ_FIRST(&srv->conns.pending); c != NULL && closed < n &&
	    (int64_t)now - c->accepted >= age; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (!c->remote || (c->state != CONN_READING &&
		    c->state != CONN_DELAYED))
			continue;
		conn_close(c);
		closed++;
	}
	srv->metrics.shed += closed;
	admit_note_shed(&srv->admit, closed);
	return closed;
}

/* Close every connection (shutdown). */
void
conn_close_all(struct server *srv)
{
	while (!TAILQ_EMPTY(&srv->conns.pending))
		conn_close(TAILQ_FIRST(&srv->conns.pending));
	while (!TAILQ_EMPTY(&srv->conns.registered))
		conn_close(TAILQ_FIRST(&srv->conns.registered));
}

/* Take over a handed-over node connection; its node comes with bind. */
struct conn *
conn_adopt(struct server *srv, int fd)
{
	struct conn	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->srv = srv;
	c->fd = fd;
	c->last_active = conn_now();
	/*
	 * No syscall here: restoring 10,000 nodes must stay fast. The peer is
	 * not needed once registered, and O_NONBLOCK lives on the open file,
	 * set by the process that accepted it.
	 */
	c->peer.sa.sa_family = AF_UNSPEC;
	if ((c->ev = event_new(srv->base, -1, 0, conn_io_cb, c)) == NULL) {
		free(c);
		return NULL;
	}
	c->state = CONN_REGISTERED;
	TAILQ_INSERT_TAIL(&srv->conns.registered, c, entry);
	return c;
}

static void	registered_cb(evutil_socket_t, short, void *);

/* Give an adopted connection its node; NULL closes it. */
void
conn_adopt_bind(struct conn *c, struct node *node)
{
	if (node == NULL)
		conn_close(c);
	else
		c->node = node;
}

/* Watch an adopted connection for its node's end; false if closed. */
bool
conn_watch(struct conn *c)
{
	if (event_assign(c->ev, c->srv->base, c->fd, EV_READ | EV_PERSIST,
	    registered_cb, c) == -1 || event_add(c->ev, NULL) == -1) {
		log_warnx("cannot watch a restored registration");
		conn_close(c);
		return false;
	}
	return true;
}

/* Connections with a request under way; close_idle closes silent ones. */
size_t
conn_in_progress(struct server *srv, bool close_idle)
{
	struct conn	*c, *next;
	size_t		 n = 0;

	for (c = TAILQ_FIRST(&srv->conns.pending); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		/* Nothing read yet: no request of theirs is lost. */
		if (close_idle && c->state == CONN_READING && c->in_len == 0)
			conn_close(c);
		else
			n++;
	}
	TAILQ_FOREACH(c, &srv->conns.registered, entry)
		if (c->state == CONN_REGISTERING)
			n++;
	return n;
}

/* The connection's descriptor. */
int
conn_fd(const struct conn *c)
{
	return c->fd;
}

/* The reply buffer, created on first use. */
static struct evbuffer *
conn_out(struct conn *c)
{
	if (c->out == NULL)
		c->out = evbuffer_new();
	return c->out;
}

/* Queue a reply (or what is already queued); next says what follows it. */
static void
conn_reply(struct conn *c, const void *data, size_t len, enum conn_state next)
{
	c->state = next;
	if (conn_out(c) == NULL ||
	    (len > 0 && evbuffer_add(c->out, data, len) == -1)) {
		log_warnx("out of memory queuing a reply");
		conn_close(c);
		return;
	}
	if (c->srv->opts->delay_write > 0) {
		/* The timer fires conn_io_cb with EV_TIMEOUT, then we write. */
		if (!conn_arm(c, -1, 0, c->srv->opts->delay_write))
			conn_close(c);
		return;
	}
	conn_flush(c);
}

/* Write what the kernel takes now; wait for EV_WRITE only for the rest. */
static void
conn_flush(struct conn *c)
{
	do {
		conn_fill_listing(c);
		if (evbuffer_write(c->out, c->fd) == -1 && errno != EAGAIN &&
		    errno != EWOULDBLOCK && errno != EINTR) {
			/* The peer left; a KILL still ends the daemon. */
			if (c->state == CONN_KILLING)
				server_kill(c->srv);
			else
				conn_close(c);
			return;
		}
	} while (evbuffer_get_length(c->out) == 0 && c->listing != LIST_NONE);
	if (evbuffer_get_length(c->out) == 0)
		conn_done_writing(c);
	else if (!conn_arm(c, c->fd, EV_WRITE | EV_PERSIST, conn_timeout(c)))
		conn_close(c);
}

/* A registered connection got data or EOF: the node is gone. */
static void
registered_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;
	char		 byte;
	ssize_t		 n;

	(void)what;
	n = recv(fd, &byte, 1, 0);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0)
		log_debug("data on a registered connection ends the "
		    "registration");
	conn_close(c);
}

/* The ALIVE2 reply is written: watch the socket for the node's end. */
static void
conn_become_registered(struct conn *c)
{
	/* A registration keeps only its event: no buffers. */
	evbuffer_free(c->out);
	c->out = NULL;
	free(c->in);
	c->in = NULL;
	c->in_len = c->in_cap = 0;
	c->state = CONN_REGISTERED;
	event_del(c->ev);
	if (event_assign(c->ev, c->srv->base, c->fd, EV_READ | EV_PERSIST,
	    registered_cb, c) == -1 || event_add(c->ev, NULL) == -1) {
		log_warnx("cannot watch a registered connection");
		conn_close(c);
	}
}

/* The reply is written: close, become a registration, or exit. */
static void
conn_done_writing(struct conn *c)
{
	switch (c->state) {
	case CONN_REPLYING:
		conn_close(c);
		break;
	case CONN_REGISTERING:
		conn_become_registered(c);
		break;
	case CONN_KILLING:
		event_del(c->ev);
		server_kill(c->srv);
		break;
	default:
		break;
	}
}

/* Answer an ALIVE2 with the error reply, then close (OTP keeps it open). */
static void
conn_refuse_alive2(struct conn *c, uint16_t high)
{
	uint8_t	reply[8];
	size_t	len = proto_encode_alive2_resp(reply, high, false, 0);

	conn_reply(c, reply, len, CONN_REPLYING);
}

/* Has a registered connection ended: EOF, reset, or data pending? */
static bool
conn_owner_gone(const struct conn *c)
{
	char	byte;
	ssize_t	n = recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);

	/* Any byte on a node's connection ends it, as registered_cb does. */
	return n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK &&
	    errno != EINTR);
}

/* Register req on c; a name whose owner is gone is taken over (OTP #11085). */
static enum registry_result
conn_register(struct conn *c, const struct proto_alive2 *req,
    struct node **out)
{
	struct server		*srv = c->srv;
	struct node		*old;
	enum registry_result	 r;

	r = registry_register(srv->reg, req, c->fd, c, (uint32_t)time(NULL),
	    out);
	if (r != REGISTRY_DUPLICATE)
		return r;
	old = registry_lookup(srv->reg, req->name, req->name_len);
	if (old == NULL || old->handle == NULL || !conn_owner_gone(old->handle))
		return r;
	/* Its end is not yet read: finish it now, as the next turn would. */
	conn_close(old->handle);
	return registry_register(srv->reg, req, c->fd, c, (uint32_t)time(NULL),
	    out);
}

/* ALIVE2_REQ: register a node and keep the connection as its lifeline. */
static void
handle_alive2(struct conn *c, const struct proto_alive2 *req)
{
	struct server		*srv = c->srv;
	struct node		*node;
	enum registry_result	 r;
	uint8_t			 reply[8];
	struct conn_logbuf	 buf;
	struct log_fields	 f = conn_log_fields(&c->peer.sa, req->name,
				     req->name_len, req->port, &buf);
	size_t			 len;

	/* Descriptors are allocated lowest first: a high one means full. */
	if (srv->fd_limit > 0 && c->fd >= srv->fd_limit - CONN_FD_RESERVE) {
		srv->metrics.registrations[METRICS_REG_REFUSED]++;
		conn_refuse(srv, CONN_REFUSED_FD_RESERVE, LOG_WARNING, &f,
		    "registration of %s refused: descriptor limit %ld reached "
		    "(the last %d are kept for queries)", f.node, srv->fd_limit,
		    CONN_FD_RESERVE);
		conn_refuse_alive2(c, req->high);
		return;
	}
	if ((r = conn_register(c, req, &node)) != REGISTRY_OK) {
		static const char *why[] = {
			[REGISTRY_BAD_NAME] = "invalid name",
			[REGISTRY_BAD_EXTRA] = "extra too long",
			[REGISTRY_DUPLICATE] = "name already registered",
			[REGISTRY_NOMEM] = "out of memory",
		};

		srv->metrics.registrations[r == REGISTRY_DUPLICATE ?
		    METRICS_REG_DUPLICATE : r == REGISTRY_NOMEM ?
		    METRICS_REG_REFUSED : METRICS_REG_INVALID]++;
		conn_refuse(srv, CONN_REFUSED_REGISTRY, LOG_NOTICE, &f,
		    "registration of %s refused: %s", f.node, why[r]);
		conn_refuse_alive2(c, req->high);
		return;
	}
	TAILQ_REMOVE(&srv->conns.pending, c, entry);
	srv->conns.npending--;
	TAILQ_INSERT_TAIL(&srv->conns.registered, c, entry);
	conn_unremote(c);
	c->node = node;
	srv->metrics.registrations[METRICS_REG_OK]++;
	log_fields(LOG_INFO, &f, "registered %s at port %u, creation %u",
	    f.node, req->port, node->creation);
	server_node_registered(srv, c, node);
	len = proto_encode_alive2_resp(reply, req->high, true, node->creation);
	conn_reply(c, reply, len, CONN_REGISTERING);
}

/* PORT_PLEASE2_REQ: where does a node listen? */
static void
handle_port_please(struct conn *c, const uint8_t *name, size_t len)
{
	struct node	*node = registry_lookup(c->srv->reg, name, len);
	uint8_t		 reply[PROTO_PORT2_RESP_MAX];
	size_t		 n;

	c->srv->metrics.lookups[node != NULL ? METRICS_LOOKUP_FOUND :
	    METRICS_LOOKUP_NOT_FOUND]++;
	if (node != NULL)
		n = proto_encode_port2_found(reply, &node->info);
	else
		n = proto_encode_port2_notfound(reply);
	conn_reply(c, reply, n, CONN_REPLYING);
}

/* Append one NAMES or DUMP line for a record; false once a chunk is full. */
static bool
add_listing_line(const struct node *node, void *arg)
{
	struct conn		*c = arg;
	const struct proto_alive2 *i = &node->info;
	uint8_t			 line[PROTO_LINE_MAX];
	size_t			 len;

	switch (c->listing) {
	case LIST_NAMES:
		len = proto_encode_names_line(line, i->name, i->name_len,
		    i->port);
		break;
	case LIST_DUMP_ACTIVE:
		len = proto_encode_dump_active(line, i->name, i->name_len,
		    i->port, node->fd);
		break;
	default:
		len = proto_encode_dump_unused(line, i->name, i->name_len,
		    i->port, node->fd);
		break;
	}
	evbuffer_add(c->out, line, len);
	c->cursor = node->seq;
	return evbuffer_get_length(c->out) < LISTING_CHUNK;
}

/* Queue the next chunk of a listing, so a reply never sits whole in memory. */
static void
conn_fill_listing(struct conn *c)
{
	const struct registry *reg = c->srv->reg;

	while (c->listing != LIST_NONE &&
	    evbuffer_get_length(c->out) < LISTING_CHUNK) {
		if (c->listing == LIST_DUMP_UNUSED) {
			if (!registry_walk_unused(reg, c->cursor,
			    add_listing_line, c))
				return;
			c->listing = LIST_NONE;
		} else {
			if (!registry_walk_active(reg, c->cursor,
			    add_listing_line, c))
				return;
			c->listing = c->listing == LIST_DUMP_ACTIVE ?
			    LIST_DUMP_UNUSED : LIST_NONE;
			c->cursor = 0;	/* the unused walk starts at the oldest */
		}
	}
}

/* NAMES_REQ and DUMP_REQ: the port header, then one line per record. */
static void
handle_listing(struct conn *c, bool dump)
{
	uint8_t hdr[PROTO_PORT_HEADER_LEN];

	if (conn_out(c) == NULL) {
		log_warnx("out of memory for a listing");
		conn_close(c);
		return;
	}
	proto_encode_port_header(hdr, conn_header_port(c));
	evbuffer_add(c->out, hdr, sizeof(hdr));
	c->listing = dump ? LIST_DUMP_ACTIVE : LIST_NAMES;
	c->cursor = UINT64_MAX;		/* every active node */
	conn_fill_listing(c);
	conn_reply(c, NULL, 0, CONN_REPLYING);
}

/* KILL_REQ: exit, unless nodes live and the check is strict. */
static void
handle_kill(struct conn *c)
{
	struct conn_logbuf	buf;
	struct log_fields	f = conn_log_fields(&c->peer.sa, NULL, 0, 0,
				    &buf);
	uint8_t			reply[PROTO_KILL_RESP_LEN];

	if (!c->srv->opts->relaxed && registry_count(c->srv->reg) > 0) {
		conn_refuse(c->srv, CONN_REFUSED_LIVE_NODES, LOG_WARNING, &f,
		    "KILL from %s refused: %zu nodes registered (see "
		    "-relaxed_command_check)", f.peer,
		    registry_count(c->srv->reg));
		conn_reply(c, reply, proto_encode_kill_resp(reply, false),
		    CONN_REPLYING);
		return;
	}
	log_fields(LOG_NOTICE, &f, "killed by a KILL request from %s", f.peer);
	conn_reply(c, reply, proto_encode_kill_resp(reply, true),
	    CONN_KILLING);
}

/* STOP_REQ: end one node's registration (relaxed mode only). */
static void
handle_stop(struct conn *c, const uint8_t *name, size_t len)
{
	struct node	*node;
	char		 ename[LOG_ESCAPED_SIZE(LOG_NAME_MAX)];
	uint8_t		 reply[PROTO_STOP_RESP_MAX];

	if (!c->srv->opts->relaxed) {
		conn_refuse_request(c, CONN_REFUSED_NOT_RELAXED, "STOP",
		    "no -relaxed_command_check");
		return;
	}
	if ((node = registry_lookup(c->srv->reg, name, len)) == NULL) {
		conn_reply(c, reply, proto_encode_stop_resp(reply, false),
		    CONN_REPLYING);
		return;
	}
	conn_log_name(name, len, ename, sizeof(ename));
	log_info("stopping %s on request", ename);
	conn_close(node->handle);
	conn_reply(c, reply, proto_encode_stop_resp(reply, true),
	    CONN_REPLYING);
}

/* The epmd_requests_total label of a decoded request. */
static enum metrics_request
conn_metric(enum proto_req_type type)
{
	switch (type) {
	case PROTO_REQ_ALIVE2:
		return METRICS_REQ_ALIVE2;
	case PROTO_REQ_PORT_PLEASE2:
		return METRICS_REQ_PORT_PLEASE2;
	case PROTO_REQ_NAMES:
		return METRICS_REQ_NAMES;
	case PROTO_REQ_DUMP:
		return METRICS_REQ_DUMP;
	case PROTO_REQ_KILL:
		return METRICS_REQ_KILL;
	default:
		return METRICS_REQ_STOP;
	}
}

/* The name of a request type, for logs. */
static const char *
conn_request_name(enum proto_req_type type)
{
	switch (type) {
	case PROTO_REQ_ALIVE2:
		return "ALIVE2";
	case PROTO_REQ_PORT_PLEASE2:
		return "PORT_PLEASE2";
	case PROTO_REQ_NAMES:
		return "NAMES";
	case PROTO_REQ_DUMP:
		return "DUMP";
	case PROTO_REQ_KILL:
		return "KILL";
	case PROTO_REQ_STOP:
	default:
		return "STOP";
	}
}

/*
 * May the peer send this request? Local peers may send anything. Others
 * need the request's access list (NAMES, PORT_PLEASE2, ALIVE2); DUMP, KILL
 * and STOP stay local-only whatever the lists say. A refusal closes c.
 */
static bool
conn_may(struct conn *c, const struct proto_request *req)
{
	const struct options	*opts = c->srv->opts;
	const struct addrfilt	*list;
	const char		*flag;

	switch (req->type) {
	case PROTO_REQ_NAMES:
		list = &opts->names_from;
		flag = "-names_from";
		break;
	case PROTO_REQ_PORT_PLEASE2:
		list = &opts->lookup_from;
		flag = "-lookup_from";
		break;
	case PROTO_REQ_ALIVE2:
		list = &opts->register_from;
		flag = "-register_from";
		break;
	default:
		list = NULL;
		flag = NULL;
		break;
	}
	/* The address test first: it costs no system call. */
	if (list != NULL && addrfilt_match(list, &c->peer.sa, false))
		return true;
	if (conn_is_local(c))
		return true;
	if (req->type == PROTO_REQ_ALIVE2)
		c->srv->metrics.registrations[METRICS_REG_REFUSED]++;
	/* ALIVE2 with the default "none" is the reference's local-only rule. */
	if (list == NULL || (req->type == PROTO_REQ_ALIVE2 &&
	    addrfilt_matches_none(list)))
		conn_refuse_request(c, CONN_REFUSED_REMOTE_ADMIN,
		    conn_request_name(req->type), "not a local peer");
	else {
		char why[32];

		snprintf(why, sizeof(why), "not in %s", flag);
		conn_refuse_request(c, CONN_REFUSED_ACCESS_LIST,
		    conn_request_name(req->type), why);
	}
	return false;
}

/* Dispatch one complete request. */
static void
conn_handle(struct conn *c, const uint8_t *body, size_t len)
{
	struct proto_request	req;
	enum proto_error	err;
	char			peer[PEER_ADDRSTRLEN];

	if ((err = proto_decode(body, len, &req)) != PROTO_OK) {
		log_debug("closing %s: %s", conn_peer(c, peer, sizeof(peer)),
		    proto_strerror(err));
		c->srv->metrics.malformed++;
		conn_close(c);
		return;
	}
	c->srv->metrics.requests[conn_metric(req.type)]++;
	if (log_get_verbosity() >= 2) {	/* -d -d: every request */
		char name[LOG_ESCAPED_SIZE(64)];

		log_debug("request '%c' (%zu bytes) from %s%s%s", body[0], len,
		    conn_peer(c, peer, sizeof(peer)),
		    req.name != NULL ? " for " : "", req.name != NULL ?
		    log_escape(req.name, req.name_len < 64 ? req.name_len : 64,
		    name, sizeof(name)) : "");
	}
	if (!conn_may(c, &req))
		return;
	switch (req.type) {
	case PROTO_REQ_PORT_PLEASE2:
		handle_port_please(c, req.name, req.name_len);
		break;
	case PROTO_REQ_NAMES:
		handle_listing(c, false);
		break;
	case PROTO_REQ_ALIVE2:
		handle_alive2(c, &req.alive2);
		break;
	case PROTO_REQ_DUMP:
		handle_listing(c, true);
		break;
	case PROTO_REQ_KILL:
		handle_kill(c);
		break;
	case PROTO_REQ_STOP:
		handle_stop(c, req.name, req.name_len);
		break;
	default:
		conn_close(c);
		break;
	}
}

/*
 * Keep the bytes of a partial request until the rest arrives, in one
 * buffer that is the frame's size once its length header is in.
 */
static bool
conn_keep_partial(struct conn *c, const uint8_t *data, size_t len)
{
	size_t	 have = c->in_len, want = have + len, i, rest;
	uint8_t	 hdr[EPMD_FRAME_HEADER], *p;

	if (want >= EPMD_FRAME_HEADER) {
		for (i = 0; i < EPMD_FRAME_HEADER; i++)
			hdr[i] = i < have ? c->in[i] : data[i - have];
		/* 0 for a bad length, which the caller refuses: no room for it. */
		rest = proto_frame_want(hdr, EPMD_FRAME_HEADER);
		if (EPMD_FRAME_HEADER + rest > want)
			want = EPMD_FRAME_HEADER + rest;
	}
	if (want > EPMD_INBUF_SIZE)
		return false;
	if (want > c->in_cap) {
		if ((p = realloc(c->in, want)) == NULL)
			return false;
		c->in = p;
		c->in_cap = (uint16_t)want;
	}
	memcpy(c->in + have, data, len);
	c->in_len = (uint16_t)(have + len);
	return true;
}

/* Read at most up to the end of the frame; handle it once complete. */
static void
conn_on_readable(struct conn *c)
{
	uint8_t		 chunk[EPMD_INBUF_SIZE];
	size_t		 have = c->in_len;
	const uint8_t	*buf = have > 0 ? c->in : NULL;
	size_t		 len, body_len;
	char		 peer[PEER_ADDRSTRLEN];
	ssize_t		 n;

	/*
	 * Never read past the frame: later bytes stay in the kernel. A
	 * request that arrives whole is handled from the stack and costs no
	 * buffer; only one that comes in pieces is kept in c->in.
	 */
	n = recv(c->fd, chunk, proto_frame_want(buf, have), 0);
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK &&
	    errno != EINTR)) {
		conn_close(c);	/* EOF or error before a whole request */
		return;
	}
	if (n > 0) {
		c->last_active = conn_now();
		if (have > 0 && !conn_keep_partial(c, chunk, (size_t)n)) {
			conn_close(c);
			return;
		}
	}
	if (have > 0) {
		len = c->in_len;
		buf = c->in;
	} else {
		len = n > 0 ? (size_t)n : 0;
		buf = chunk;
	}
	switch (proto_frame_check(buf, len, &body_len)) {
	case PROTO_FRAME_INCOMPLETE:
		if (have == 0 && len > 0 && !conn_keep_partial(c, chunk, len)) {
			conn_close(c);
			return;
		}
		/* (Re)arming restarts the timeout: every byte counts. */
		if (n > 0 || !event_pending(c->ev, EV_READ, NULL)) {
			if (!conn_arm(c, c->fd, EV_READ | EV_PERSIST,
			    conn_timeout(c)))
				conn_close(c);
		}
		return;
	case PROTO_FRAME_BAD_SIZE:
		log_debug("closing %s: invalid packet size",
		    conn_peer(c, peer, sizeof(peer)));
		c->srv->metrics.malformed++;
		conn_close(c);
		return;
	case PROTO_FRAME_TRAILING:
		log_debug("closing %s: more than one request",
		    conn_peer(c, peer, sizeof(peer)));
		c->srv->metrics.malformed++;
		conn_close(c);
		return;
	case PROTO_FRAME_COMPLETE:
		break;
	}
	/* One request per connection: read nothing more. */
	event_del(c->ev);
	conn_handle(c, buf + EPMD_FRAME_HEADER, body_len);
}

/* The connection's event: readable, writable, a delay ended, or silence. */
static void
conn_io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;
	char		 peer[PEER_ADDRSTRLEN];

	if (fd == -1) {		/* a -delay_accept or -delay_write timer */
		if (c->state == CONN_DELAYED) {
			c->state = CONN_READING;
			conn_on_readable(c);
		} else
			conn_flush(c);
		return;
	}
	if (what & EV_TIMEOUT) {
		bool late = conn_past_deadline(c, conn_now());

		log_debug("closing %s: %s", conn_peer(c, peer, sizeof(peer)),
		    late ? "past -request_deadline" : "timeout");
		if (late)
			admit_note_deadline(&c->srv->admit);
		c->srv->metrics.timeouts++;
		if (c->state == CONN_KILLING)
			server_kill(c->srv);
		else
			conn_close(c);
		return;
	}
	if (c->state == CONN_READING)
		conn_on_readable(c);
	else
		conn_flush(c);
}
