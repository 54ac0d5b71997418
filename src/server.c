/* The daemon: event loop, listeners, signals, accept back-off. */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "addrfilt.h"
#include "conn.h"
#include "listenlist.h"
#include "log.h"
#include "metrics_http.h"
#include "peer.h"
#include "registry.h"
#include "restart.h"
#include "server.h"
#include "systemd.h"

/* How long accepting pauses when descriptors run out. */
#define ACCEPT_RETRY_USEC	100000
/* Accepts in a row before the loop turns to serve everyone else. */
#define ACCEPT_BURST		64
/* When descriptors run out, connections silent this long (s) may be closed. */
#define EMFILE_SHED_IDLE	2
/* Minimum seconds between two STATUS= updates to systemd. */
#define STATUS_INTERVAL		1

/* Raise RLIMIT_NOFILE to its hard limit: capacity is the only ceiling. */
static void
raise_fd_limit(struct server *srv)
{
	struct rlimit rl;

	srv->fd_limit = 1024;
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("getrlimit");
		return;
	}
	srv->fd_limit = rl.rlim_cur == RLIM_INFINITY ? (long)1 << 30 :
	    (long)rl.rlim_cur;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t old = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
			log_warn("cannot raise the descriptor limit from %llu",
			    (unsigned long long)old);
			return;
		}
		srv->fd_limit = rl.rlim_max == RLIM_INFINITY ? (long)1 << 30 :
		    (long)rl.rlim_max;
		log_info("descriptor limit raised from %llu to %llu",
		    (unsigned long long)old, (unsigned long long)rl.rlim_max);
	} else
		log_info("descriptor limit is %llu",
		    (unsigned long long)rl.rlim_cur);
}

/* Enable or disable every listener. */
static void
set_accepting(struct server *srv, bool on)
{
	size_t i;

	if (srv->accepting == on)
		return;
	/* A restart under way keeps them off until it is done. */
	if (on && srv->restart != NULL && restart_busy(srv->restart))
		return;
	for (i = 0; i < srv->nlisteners; i++) {
		if (on)
			evconnlistener_enable(srv->listeners[i]);
		else
			evconnlistener_disable(srv->listeners[i]);
	}
	srv->accepting = on;
}

/* Accept new connections or not (a restart pauses them). */
void
server_set_accepting(struct server *srv, bool on)
{
	set_accepting(srv, on);
}

/* A new connection on any listener. */
static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct server	*srv = arg;
	struct timeval	 now = { 0, 0 };

	(void)l;
	conn_accept(srv, fd, sa, salen);
	/* libevent accepts until EAGAIN: under a flood, let the rest run. */
	if (++srv->accept_burst >= ACCEPT_BURST && srv->accepting) {
		set_accepting(srv, false);
		evtimer_add(srv->accept_retry, &now);
	}
}

/* Resume accepting after a pause for descriptors. */
static void
accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	srv->accept_burst = 0;
	set_accepting(srv, true);
}

/* Say we are out of descriptors: at once, then at most every few seconds. */
static void
log_emfile(struct server *srv, int err)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	if (srv->emfile.logged != 0 &&
	    ts.tv_sec - srv->emfile.logged < ADMIT_REPORT_SEC)
		return;
	srv->emfile.logged = ts.tv_sec > 0 ? ts.tv_sec : 1;
	log_fields(LOG_WARNING, NULL, "out of descriptors (%s) with %zu "
	    "registered nodes and %zu other connections (%zu non-local); "
	    "accepting paused %" PRIu64 " times since the last report, "
	    "closed %" PRIu64 " non-local requests older than %d s and %"
	    PRIu64 " connections silent for %d s or more", strerror(err),
	    registry_count(srv->reg), srv->conns.npending, srv->admit.nremote,
	    srv->emfile.pauses, srv->emfile.shed, CONN_SHED_AGE,
	    srv->emfile.idle, EMFILE_SHED_IDLE);
	srv->emfile.pauses = srv->emfile.shed = srv->emfile.idle = 0;
}

/* accept() failed: on EMFILE/ENFILE shed idle connections and pause. */
static void
accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct server	*srv = arg;
	struct timeval	 tv = { .tv_usec = ACCEPT_RETRY_USEC };
	int		 err = EVUTIL_SOCKET_ERROR();
	size_t		 shed, idle;

	(void)l;
	if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) {
		errno = err;
		log_warn("accept");
		return;
	}
	/*
	 * Old non-local requests go first, trickling or not, then idle
	 * unregistered peers; registered nodes are never harmed.
	 */
	shed = conn_shed_remote(srv, CONN_SHED_BATCH, CONN_SHED_AGE);
	idle = conn_shed_idle(srv, CONN_SHED_BATCH, EMFILE_SHED_IDLE);
	srv->metrics.accept_paused++;
	srv->metrics.shed += idle;
	set_accepting(srv, false);
	evtimer_add(srv->accept_retry, &tv);
	srv->emfile.pauses++;
	srv->emfile.shed += shed;
	srv->emfile.idle += idle;
	log_emfile(srv, err);
}

/* Send the rate-limited STATUS= line. */
static void
status_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	systemd_status("Processing port mapping requests; %zu nodes registered",
	    registry_count(srv->reg));
}

/* The registry changed: schedule a status update for systemd. */
static void
registry_changed(struct server *srv)
{
	struct timeval tv = { .tv_sec = STATUS_INTERVAL };

	if (srv->status_timer != NULL && !evtimer_pending(srv->status_timer,
	    NULL))
		evtimer_add(srv->status_timer, &tv);
}

/* Upcall: a node was registered on c. */
void
server_node_registered(struct server *srv, struct conn *c,
    const struct node *node)
{
	(void)c;
	restart_node_registered(srv->restart, node);
	registry_changed(srv);
}

/* Upcall: a node was unregistered; c's fd is still open. */
void
server_node_unregistered(struct server *srv, struct conn *c,
    const struct node *node)
{
	srv->metrics.unregistrations++;
	restart_node_unregistered(srv->restart, c, node);
	registry_changed(srv);
}

/* Upcall: a KILL was answered OK; exit 0. */
void
server_kill(struct server *srv)
{
	server_exit(srv, 0);
}

/* Stop the loop; server_loop then returns status. */
void
server_exit(struct server *srv, int status)
{
	if (srv->exiting)
		return;
	srv->exiting = true;
	srv->exit_status = status;
	event_base_loopbreak(srv->base);
}

/* SIGTERM, SIGINT (and SIGHUP in the foreground): shut down cleanly. */
static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;

	(void)what;
	if (sig == SIGUSR2) {
		restart_upgrade(srv->restart);
		return;
	}
	log_info("%s received, shutting down", strsignal((int)sig));
	systemd_stopping();
	/* Under systemd the nodes stay in the fd store for the next start. */
	if (srv->opts->systemd && sig != SIGHUP)
		restart_graceful_exit(srv->restart);
	else
		server_exit(srv, 0);
}

/* Ping the systemd watchdog. */
static void
watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	systemd_watchdog_ping();
}

/* Wrap a listening socket in a listener. */
static bool
add_listener(struct server *srv, struct evconnlistener *l)
{
	if (l == NULL)
		return false;
	/* The listener only: accepted sockets stay inheritable (listen_on). */
	if (evutil_make_socket_closeonexec(evconnlistener_get_fd(l)) == -1) {
		evconnlistener_free(l);
		return false;
	}
	evconnlistener_set_error_cb(l, accept_error_cb);
	srv->listeners[srv->nlisteners++] = l;
	return true;
}

/* Bind one address; returns 0, or the errno of the failure. */
static int
listen_on(struct server *srv, const struct listen_addr *la, uint16_t port)
{
	struct sockaddr_storage	 ss = la->ss;
	/*
	 * No LEV_OPT_CLOSE_ON_EXEC: it would make every accepted socket
	 * close-on-exec too, and a SIGUSR2 handover would then pay one
	 * syscall per node to undo it. Nothing else is ever exec'ed; the
	 * listener itself is made close-on-exec in add_listener.
	 */
	unsigned		 flags = LEV_OPT_CLOSE_ON_FREE |
	    LEV_OPT_REUSEABLE;
	struct evconnlistener	*l;

	if (ss.ss_family == AF_INET6) {
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
		flags |= LEV_OPT_BIND_IPV6ONLY;
	} else
		((struct sockaddr_in *)&ss)->sin_port = htons(port);
	l = evconnlistener_new_bind(srv->base, accept_cb, srv, flags,
	    SOMAXCONN, (struct sockaddr *)&ss, (int)la->len);
	if (!add_listener(srv, l))
		return errno != 0 ? errno : EINVAL;
	return 0;
}

/* Another epmd holds the port: exit 0 as OTP does, but say why. */
static void __attribute__((noreturn))
exit_in_use(const struct server *srv, const struct listen_addr *la)
{
	char addr[PEER_ADDRSTRLEN];

	peer_format_addr((const struct sockaddr *)&la->ss, addr, sizeof(addr));
	log_warnx("port %u on %s is already in use (another epmd running?); "
	    "exiting", (unsigned)(uint16_t)srv->opts->port, addr);
	systemd_exiting(0);
	exit(0);
}

/* Open the listeners of -address (or all interfaces). */
static void
open_own_listeners(struct server *srv)
{
	const struct options	*opts = srv->opts;
	struct listen_addr	 any[2];
	const struct listen_addr *addrs = opts->addrs;
	size_t			 i, n = opts->naddrs;
	uint16_t		 port = (uint16_t)opts->port;

	if (n == 0) {
		struct sockaddr_in	*sin = (struct sockaddr_in *)&any[0].ss;
		struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&any[1].ss;

		memset(any, 0, sizeof(any));
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		any[0].len = sizeof(*sin);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_any;
		any[1].len = sizeof(*sin6);
		addrs = any;
		n = 2;
	}
	for (i = 0; i < n; i++) {
		char	addr[PEER_ADDRSTRLEN];
		int	err;

		errno = 0;
		if ((err = listen_on(srv, &addrs[i], port)) == 0)
			continue;
		if (err == EADDRINUSE)
			exit_in_use(srv, &addrs[i]);
		peer_format_addr((const struct sockaddr *)&addrs[i].ss, addr,
		    sizeof(addr));
		/* No IPv6 here, or an implicit loopback missing: carry on. */
		if ((opts->naddrs == 0 && (err == EAFNOSUPPORT ||
		    err == EPROTONOSUPPORT || err == EADDRNOTAVAIL)) ||
		    addrs[i].implicit) {
			errno = err;
			log_warn("failed to bind on ipaddr %s", addr);
			continue;
		}
		errno = err;
		fatal("failed to bind on ipaddr %s", addr);
	}
	if (srv->nlisteners == 0)
		fatalx("unable to bind any address");
}

/* Use the sockets systemd (or a SIGUSR2 parent) passed, as they are. */
static void
add_passed_listeners(struct server *srv, const int *fds, int n)
{
	int i;

	if (n < 0)
		fatalx("cannot use the sockets systemd passed");
	if (n == 0)
		fatalx("systemd provides no sockets");
	for (i = 0; i < n; i++) {
		/* The accept loop needs them non-blocking; listen() was done. */
		if (evutil_make_socket_nonblocking(fds[i]) == -1 ||
		    !add_listener(srv, evconnlistener_new(srv->base, accept_cb,
		    srv, LEV_OPT_CLOSE_ON_FREE, 0,
		    fds[i])))
			fatal("cannot use systemd socket %d", fds[i]);
	}
}

/* Append ", text" (or text, first) to buf, as far as it fits. */
static void
append_text(char *buf, size_t len, const char *text)
{
	size_t	 off = strlen(buf);

	if (off + 1 < len)
		snprintf(buf + off, len - off, "%s%s", off > 0 ? ", " : "", text);
}

/*
 * Under -systemd the socket unit, not -address, says where we listen: say
 * so if an address list was given, and say once if NAMES answers anyone
 * on an address that is not loopback (served: the listeners as text;
 * exposed: the first such listener, or "").
 */
static void
log_systemd_exposure(const struct server *srv, const char *served,
    const char *exposed)
{
	const struct options	*opts = srv->opts;
	const char		*list = opts->address_list;

	if (list != NULL && list[strspn(list, " ,")] != '\0')
		log_warnx("%s%s%s is ignored under -systemd (the socket unit "
		    "chooses the addresses); serving %s", opts->address_from,
		    opts->address_from[0] == '-' ? " " : "=", list, served);
	if (exposed[0] != '\0' && addrfilt_matches_all(&opts->names_from))
		log_fields(LOG_NOTICE, NULL, "NAMES answers anyone who reaches "
		    "%s, which is not a loopback address: node names and "
		    "distribution ports are public; -names_from LIST restricts "
		    "who may list them", exposed);
}

/* Log where we listen; under -systemd, what that exposes. */
static void
log_listeners(const struct server *srv)
{
	char	 served[512] = "", exposed[PEER_ADDRSTRLEN] = "";
	size_t	 i;

	for (i = 0; i < srv->nlisteners; i++) {
		struct sockaddr_storage	ss;
		socklen_t		len = sizeof(ss);
		char			addr[PEER_ADDRSTRLEN];
		int			fd;

		fd = evconnlistener_get_fd(srv->listeners[i]);
		if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
			continue;
		peer_format((struct sockaddr *)&ss, addr, sizeof(addr));
		if (srv->opts->systemd)
			log_info("listening on %s (from systemd, fd %d)", addr,
			    fd);
		else
			log_info("listening on %s", addr);
		append_text(served, sizeof(served), addr);
		if (exposed[0] == '\0' &&
		    !listenlist_is_loopback((struct sockaddr *)&ss))
			snprintf(exposed, sizeof(exposed), "%s", addr);
	}
	if (srv->opts->systemd)
		log_systemd_exposure(srv, served, exposed);
}

/* The counters for a scrape, with the gauges brought up to date. */
static const struct metrics *
server_metrics(void *arg)
{
	struct server *srv = arg;

	srv->metrics.nodes = registry_count(srv->reg);
	srv->metrics.connections = srv->conns.npending;
	srv->metrics.log_dropped = log_dropped_total();
	return &srv->metrics;
}

/*
 * Serve metrics on -metrics and on systemd's sockets named "metrics", if
 * any. After the epmd listeners: a second daemon whose epmd port is taken
 * exits 0 before it could fail on the metrics port.
 */
static void
open_metrics(struct server *srv)
{
	const struct options	*opts = srv->opts;
	const struct sockaddr	*sa;
	char			 addr[PEER_ADDRSTRLEN];
	int			 fds[RESTART_MAX_METRICS];
	size_t			 i, n;

	/* Named "metrics" by systemd's socket unit or by a SIGUSR2 parent. */
	n = restart_metrics_fds(srv->restart, fds, RESTART_MAX_METRICS);
	if (!opts->metrics && n == 0) {
		metrics_http_free(srv->mhttp);
		srv->mhttp = NULL;
		return;
	}
	for (i = 0; i < n; i++)
		if (!metrics_http_adopt(srv->mhttp, fds[i]))
			fatal("cannot serve metrics on inherited socket %d",
			    fds[i]);
	/* -metrics naming an inherited socket's address: that one serves. */
	sa = (const struct sockaddr *)&opts->metrics_addr.ss;
	if (opts->metrics && !metrics_http_listens_on(srv->mhttp, sa) &&
	    !metrics_http_bind(srv->mhttp, sa, opts->metrics_addr.len))
		fatal("cannot serve metrics on %s", peer_format(sa, addr,
		    sizeof(addr)));
	metrics_http_log_listeners(srv->mhttp);
}

/* Add a signal handler that lives as long as the loop. */
static struct event *
add_signal(struct server *srv, int sig)
{
	struct event *ev = evsignal_new(srv->base, sig, signal_cb, srv);

	if (ev == NULL || evsignal_add(ev, NULL) == -1)
		fatalx("cannot handle signal %d", sig);
	return ev;
}

/* libevent's own warnings and errors, into our log. */
static void
libevent_log_cb(int severity, const char *msg)
{
	if (severity == EVENT_LOG_DEBUG)
		log_debug("libevent: %s", msg);
	else if (severity == EVENT_LOG_MSG)
		log_info("libevent: %s", msg);
	else
		log_warnx("libevent: %s", msg);
}

/* The caps on non-local peers, from the options and the descriptor limit. */
static void
server_init_admit(struct server *srv)
{
	const struct options	*opts = srv->opts;
	struct admit_limits	 lim = {
		.per_addr = (size_t)opts->max_conns_per_peer,
		.per_prefix = (size_t)opts->max_conns_per_prefix,
		.remote = (size_t)opts->max_remote_conns,
		.prefix4 = (unsigned)opts->peer_prefix4,
		.prefix6 = (unsigned)opts->peer_prefix6,
	};

	/* By default loopback keeps half the descriptors for itself. */
	if (opts->max_remote_conns == OPTIONS_REMOTE_AUTO)
		lim.remote = srv->fd_limit > 0 ? (size_t)srv->fd_limit / 2 : 0;
	if (!admit_init(&srv->admit, &lim) ||
	    !admit_attach(&srv->admit, srv->base))
		fatalx("out of memory");
}

/* Build the daemon's state: loop, registry, timers; fatal on failure. */
void
server_init(struct server *srv, const struct options *opts)
{
	struct event_config *cfg;

	memset(srv, 0, sizeof(*srv));
	srv->opts = opts;
	conn_set_init(&srv->conns);
	event_set_log_callback(libevent_log_cb);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit(srv);

	if ((cfg = event_config_new()) == NULL)
		fatalx("out of memory");
	/*
	 * No EPOLL_USE_CHANGELIST: a closed fd's number is reused by the next
	 * accept in the same turn, and the coalesced DEL+ADD would be lost.
	 * Millisecond timers (no timerfd) are precise enough for timeouts.
	 */
	srv->base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (srv->base == NULL)
		fatalx("cannot create the event loop");
	log_attach(srv->base);	/* the log's queue drains from the loop */
	srv->reg = registry_new(opts->debug > 0 ? EPMD_UNREG_LIMIT_DEBUG :
	    EPMD_UNREG_LIMIT);
	server_init_admit(srv);
	srv->accept_retry = evtimer_new(srv->base, accept_retry_cb, srv);
	srv->mhttp = metrics_http_new(srv->base, server_metrics, srv);
	if (srv->reg == NULL ||
	    srv->accept_retry == NULL || srv->mhttp == NULL)
		fatalx("out of memory");
	if (opts->systemd && (srv->status_timer = evtimer_new(srv->base,
	    status_cb, srv)) == NULL)
		fatalx("out of memory");
}

/* Open the listeners: -address (or all interfaces), or systemd's. */
void
server_listen(struct server *srv)
{
	int	fds[EPMD_MAX_LISTENERS];
	int	n;

	/* Listeners, node connections and state handed over, if any. */
	srv->restart = restart_new(srv, fds, EPMD_MAX_LISTENERS, &n);
	if (srv->opts->systemd || restart_is_handover())
		add_passed_listeners(srv, fds, n);
	else
		open_own_listeners(srv);
	srv->accepting = true;
	log_listeners(srv);
	open_metrics(srv);
	/* Before READY: every restored node answers from the first request. */
	restart_restore(srv->restart);
}

/* Ping the watchdog twice per interval systemd asked for, if it asked. */
static void
start_watchdog(struct server *srv)
{
	unsigned long long	usec = systemd_watchdog_usec();
	struct timeval		tv;

	if (usec == 0)
		return;
	if (usec < 2000)	/* a zero period would not repeat */
		usec = 2000;
	tv.tv_sec = (time_t)(usec / 2 / 1000000);
	tv.tv_usec = (suseconds_t)(usec / 2 % 1000000);
	srv->watchdog = event_new(srv->base, -1, EV_PERSIST, watchdog_cb, NULL);
	if (srv->watchdog == NULL || evtimer_add(srv->watchdog, &tv) == -1)
		log_warnx("cannot start the watchdog timer");
}

/* Handle signals, say we are ready and serve until told to stop. */
int
server_loop(struct server *srv)
{
	const struct options *opts = srv->opts;

	srv->signals[0] = add_signal(srv, SIGTERM);
	srv->signals[1] = add_signal(srv, SIGINT);
	if (opts->daemon)
		signal(SIGHUP, SIG_IGN);
	else
		srv->signals[2] = add_signal(srv, SIGHUP);
	srv->signals[3] = add_signal(srv, SIGUSR2);
	if (opts->systemd) {
		start_watchdog(srv);
		systemd_ready("Processing port mapping requests...");
	}
	restart_ready(srv->restart);
	log_info("ready; packet timeout %d s, %s command check",
	    opts->packet_timeout, opts->relaxed ? "relaxed" : "strict");
	event_base_dispatch(srv->base);
	return srv->exit_status;
}

/* Close every connection and listener and free the state. */
void
server_free(struct server *srv)
{
	size_t i;

	for (i = 0; i < srv->nlisteners; i++)
		evconnlistener_free(srv->listeners[i]);
	srv->nlisteners = 0;
	metrics_http_free(srv->mhttp);
	srv->mhttp = NULL;
	conn_close_all(srv);
	restart_free(srv->restart);
	srv->restart = NULL;
	for (i = 0; i < sizeof(srv->signals) / sizeof(srv->signals[0]); i++)
		if (srv->signals[i] != NULL)
			event_free(srv->signals[i]);
	if (srv->watchdog != NULL)
		event_free(srv->watchdog);
	if (srv->status_timer != NULL)
		event_free(srv->status_timer);
	event_free(srv->accept_retry);
	registry_free(srv->reg);
	admit_free(&srv->admit);
	log_attach(NULL);	/* flushes what is queued, briefly */
	event_base_free(srv->base);
	systemd_exiting(srv->exit_status);
}
