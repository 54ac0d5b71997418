/*
 * Restarts without losing nodes: what a new process takes over (listeners,
 * node connections, the saved registry), the systemd fd store kept current,
 * graceful exits that keep the nodes, and the SIGUSR2 re-exec upgrade.
 */
#ifndef RESTART_H
#define RESTART_H

#include <stdbool.h>
#include <stddef.h>

struct server;
struct conn;
struct node;
struct restart;

/* The file descriptor names of the handover (LISTEN_FDNAMES). */
#define RESTART_STATE_NAME	"epmd-c-state"	/* + ".0" or ".1" */
#define RESTART_READY_NAME	"epmd-c-ready"
/* Node connection ids (their fd names, in hex) stay below this, so that
 * LISTEN_FDNAMES fits in one environment string (128 KiB). */
#define RESTART_MAX_IDS		0x6000
/* Set in the environment of a SIGUSR2 child: take LISTEN_FDS. */
#define RESTART_ENV_HANDOVER	"EPMD_C_HANDOVER"
/* Overrides the binary SIGUSR2 executes (tests, unusual installs). */
#define RESTART_ENV_EXEC	"EPMD_C_EXEC"
/* How long a graceful restart waits for requests in progress, and how long
 * the old process waits for the new one to say it is ready. */
#define RESTART_DRAIN_MSEC	1000
/* Connections that sent nothing in this long are closed when draining. */
#define RESTART_IDLE_MSEC	100
#define RESTART_CHILD_MSEC	5000

/* Remember argv and the binary's path, for SIGUSR2 (call from main). */
void restart_save_argv(int argc, char *argv[]);
/* Was this process started by a SIGUSR2 handover? */
bool restart_is_handover(void);

/* Take what was handed over; listener fds go to fds[] (at most max).
 * Returns the number of listeners, or -1 if the handover is unusable. */
struct restart *restart_new(struct server *srv, int *fds, size_t max,
	    int *nfds);
/* Listening sockets named SYSTEMD_METRICS_NAME taken over, at most. */
#define RESTART_MAX_METRICS	7
/* The metrics listeners handed over (copied to fds); their count. */
size_t restart_metrics_fds(const struct restart *rs, int *fds, size_t max);
/* Rebuild the registry and re-attach the node connections. */
void restart_restore(struct restart *rs);
/* The new process serves: tell a waiting SIGUSR2 parent. */
void restart_ready(struct restart *rs);
/* Free everything; the connections themselves belong to conn.c. */
void restart_free(struct restart *rs);

/* A node registered or left: fd store and saved state follow. */
void restart_node_registered(struct restart *rs, const struct node *node);
void restart_node_unregistered(struct restart *rs, struct conn *c,
	    const struct node *node);

/* SIGTERM under systemd: drain, save, exit keeping nodes in the store. */
void restart_graceful_exit(struct restart *rs);
/* SIGUSR2: drain, then re-exec the binary handing everything over. */
void restart_upgrade(struct restart *rs);
/* Is a graceful exit or an upgrade under way (no new work then)? */
bool restart_busy(const struct restart *rs);

#endif
