/* One accepted connection's life, and the server state it lives in. */
#ifndef CONN_H
#define CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "options.h"

struct event;
struct event_base;
struct evconnlistener;
struct registry;
struct peercount;
struct conn;

TAILQ_HEAD(conn_list, conn);

/* Descriptors a registration may not take: queries can always get in. */
#define CONN_FD_RESERVE		8

/* The daemon's state, shared by server.c and conn.c. */
struct server {
	struct event_base	*base;
	const struct options	*opts;
	struct registry		*reg;
	struct peercount	*peers;		/* unregistered conns per address */
	struct evconnlistener	*listeners[EPMD_MAX_LISTENERS];
	size_t			 nlisteners;
	struct conn_list	 pending;	/* unregistered, oldest first */
	struct conn_list	 registered;
	size_t			 npending;
	struct event		*accept_retry;	/* resumes accepting after EMFILE */
	struct event		*status_timer;	/* rate-limits STATUS= updates */
	long			 fd_limit;	/* RLIMIT_NOFILE after raising */
	bool			 accepting;
	unsigned		 accept_burst;	/* accepts since the last pause */
	bool			 exiting;
	int			 exit_status;
};

/* Take over an accepted socket. */
void conn_accept(struct server *srv, int fd, const struct sockaddr *sa,
	    int salen);
/* Close a connection, unregistering its node if it has one. */
void conn_close(struct conn *c);
/* Close up to n of the oldest connections silent for idle seconds. */
size_t conn_shed_idle(struct server *srv, size_t n, int idle);
/* Close every connection (shutdown). */
void conn_close_all(struct server *srv);

/* Provided by server.c: the registry changed (for status updates). */
void server_registry_changed(struct server *srv);
/* Provided by server.c: stop the loop and exit with status. */
void server_exit(struct server *srv, int status);

#endif
