/* One accepted connection's life: read one request, answer, close or stay. */
#ifndef CONN_H
#define CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>
#include <sys/socket.h>

struct server;
struct conn;
struct node;

TAILQ_HEAD(conn_list, conn);

/* Every open connection of a server. Only conn.c changes it. */
struct conn_set {
	struct conn_list	 pending;	/* unregistered, oldest first */
	struct conn_list	 registered;
	size_t			 npending;
};

/* Why conn.c refused a connection or a request. */
enum conn_refusal {
	CONN_REFUSED_REMOTE_ADMIN,	/* ALIVE2, DUMP, KILL, STOP: not local */
	CONN_REFUSED_ACCESS_LIST,	/* not in -names/-lookup/-register_from */
	CONN_REFUSED_NOT_RELAXED,	/* STOP without -relaxed_command_check */
	CONN_REFUSED_PEER_CAP,		/* over -max_conns_per_peer */
	CONN_REFUSED_PREFIX_CAP,	/* over -max_conns_per_prefix */
	CONN_REFUSED_REMOTE_CAP,	/* over -max_remote_conns */
	CONN_REFUSED_FD_RESERVE,	/* ALIVE2 into the descriptor reserve */
	CONN_REFUSED_REGISTRY,		/* ALIVE2 the registry turned down */
	CONN_REFUSED_LIVE_NODES,	/* KILL while nodes are registered */
};

/* Descriptors a registration may not take: queries can always get in. */
#define CONN_FD_RESERVE		8
/* Under pressure, a non-local request this old (seconds) may be closed. */
#define CONN_SHED_AGE		2
/* Connections closed at a time to make room. */
#define CONN_SHED_BATCH		16

/* An empty set. */
void conn_set_init(struct conn_set *set);
/* Take over an accepted socket from sa. */
void conn_accept(struct server *srv, int fd, const struct sockaddr *sa,
	    int salen);
/* Close a connection, unregistering its node if it has one. */
void conn_close(struct conn *c);
/* Close up to n of the oldest connections silent for idle seconds. */
size_t conn_shed_idle(struct server *srv, size_t n, int idle);
/* Close up to n of the oldest non-local requests older than age seconds. */
size_t conn_shed_remote(struct server *srv, size_t n, int age);
/* Close every connection (shutdown). */
void conn_close_all(struct server *srv);

/*
 * Restarts (src/restart.c). conn_adopt takes over a node's connection that
 * a previous process handed over, registered but with no node yet;
 * conn_adopt_bind gives it its restored node (NULL: close it);
 * conn_watch then starts watching it for the node's end (false: it was
 * closed). conn_in_progress counts the connections that have a request
 * under way (being read in part, answered, or a registration's reply);
 * with close_idle it first closes those that sent nothing yet.
 */
struct conn *conn_adopt(struct server *srv, int fd);
void conn_adopt_bind(struct conn *c, struct node *node);
bool conn_watch(struct conn *c);
size_t conn_in_progress(struct server *srv, bool close_idle);
/* The connection's descriptor. */
int conn_fd(const struct conn *c);

/*
 * The upcalls: all a connection tells its server, provided by server.c.
 * A node was registered on c (its reply is not yet written); a node was
 * unregistered (the record is already old/unused, c's fd still open); a
 * KILL was answered OK, so the daemon exits.
 */
void server_node_registered(struct server *srv, struct conn *c,
	    const struct node *node);
void server_node_unregistered(struct server *srv, struct conn *c,
	    const struct node *node);
void server_kill(struct server *srv);

#endif
