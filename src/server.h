/* The daemon: event loop, listeners, signals, accept back-off. */
#ifndef SERVER_H
#define SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "admit.h"
#include "conn.h"
#include "epmd.h"
#include "metrics.h"
#include "options.h"

struct event;
struct event_base;
struct evconnlistener;
struct registry;
struct restart;
struct metrics_http;

/* The daemon's state. conn.c reads it and changes only srv->conns. */
struct server {
	struct event_base	*base;
	const struct options	*opts;
	struct registry		*reg;
	struct admit		 admit;		/* caps on non-local peers */
	struct conn_set		 conns;
	struct evconnlistener	*listeners[EPMD_MAX_LISTENERS];
	size_t			 nlisteners;
	struct event		*accept_retry;	/* resumes accepting after EMFILE */
	struct event		*status_timer;	/* rate-limits STATUS=; -systemd */
	struct event		*signals[4];
	struct restart		*restart;	/* handovers and the fd store */
	struct event		*watchdog;
	long			 fd_limit;	/* RLIMIT_NOFILE after raising */
	struct {			/* accept() out of descriptors */
		uint64_t	 pauses, shed, idle;	/* since the last line */
		time_t		 logged;	/* monotonic s; 0: never */
	}			 emfile;
	bool			 accepting;
	unsigned		 accept_burst;	/* accepts since the last pause */
	bool			 exiting;
	int			 exit_status;
	struct metrics		 metrics;	/* counted by conn.c and here */
	struct metrics_http	*mhttp;		/* -metrics or systemd's; or NULL */
};

/* Build the daemon's state: loop, registry, timers; fatal on failure. */
void server_init(struct server *srv, const struct options *opts);
/* Open the listeners: -address (or all interfaces), or systemd's. */
void server_listen(struct server *srv);
/* Handle signals, say we are ready and serve until told to stop. */
int server_loop(struct server *srv);
/* Close every connection and listener and free the state. */
void server_free(struct server *srv);
/* Stop the loop; server_loop then returns status. */
void server_exit(struct server *srv, int status);
/* Accept new connections or not (a restart pauses them). */
void server_set_accepting(struct server *srv, bool on);

#endif
