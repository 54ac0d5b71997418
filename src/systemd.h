/*
 * Everything systemd: inherited listeners, readiness, status, the journal.
 * A build without libsystemd (make SYSTEMD=no) keeps these calls; they then
 * do nothing, and systemd_supported() says so.
 */
#ifndef SYSTEMD_H
#define SYSTEMD_H

#include <stdbool.h>
#include <stddef.h>

struct iovec;

/* Was this build made with libsystemd? */
bool systemd_supported(void);
/* Take the listening sockets systemd passed; returns their count or -1. */
int systemd_take_listeners(int *fds, size_t max);
/*
 * Every descriptor passed in LISTEN_FDS, from SYSTEMD_LISTEN_FDS_START on,
 * with its LISTEN_FDNAMES name in *names (a NULL-terminated array the
 * caller frees, or NULL); the environment is cleared. Returns the count,
 * or -1. libsystemd's sd_listen_fds_with_names (which also makes them
 * close-on-exec); without libsystemd, systemd_listen_env.
 */
#define SYSTEMD_LISTEN_FDS_START	3
/*
 * The name of a passed listening socket that serves metrics, not the port
 * mapper (FileDescriptorName= in epmd-c-metrics.socket, and the name a
 * SIGUSR2 handover gives the metrics listeners).
 */
#define SYSTEMD_METRICS_NAME		"metrics"
int systemd_listen_fds_with_names(char ***names);
/* The same from the environment alone, descriptors untouched. */
int systemd_listen_env(char ***names);
/* Put fd in the service's fd store under name (FDSTORE=1); false if it
 * was not sent (not under -systemd, or no libsystemd). */
bool systemd_store_fd(int fd, const char *name);
/* Remove the stored descriptors of that name (FDSTOREREMOVE=1). */
void systemd_store_remove(const char *name);
/* Enable notifications (only under -systemd). */
void systemd_enable(void);
/* Disable them and drop NOTIFY_SOCKET from the environment. */
void systemd_disable(void);
/* Tell systemd we are ready, with a status line. */
void systemd_ready(const char *status);
/* Update the status line. */
void systemd_status(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
/* Tell systemd we are stopping. */
void systemd_stopping(void);
/* Tell systemd we exit with this status. */
void systemd_exiting(int status);
/* The watchdog interval in microseconds, 0 if none is asked for. */
unsigned long long systemd_watchdog_usec(void);
/* Ping the watchdog. */
void systemd_watchdog_ping(void);

#endif
