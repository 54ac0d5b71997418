/* Everything systemd: inherited listeners, readiness and status. */
#ifndef SD_H
#define SD_H

#include <stddef.h>

/* Take the listening sockets systemd passed; returns their count or -1. */
int sd_take_listeners(int *fds, size_t max);
/* Enable notifications (only under -systemd). */
void sd_enable(void);
/* Disable them and drop NOTIFY_SOCKET from the environment. */
void sd_disable(void);
/* Tell systemd we are ready, with a status line. */
void sd_ready(const char *status);
/* Update the status line. */
void sd_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Tell systemd we are stopping. */
void sd_stopping(void);
/* Tell systemd we exit with this status. */
void sd_exiting(int status);
/* The watchdog interval in microseconds, 0 if none is asked for. */
unsigned long long sd_watchdog_usec(void);
/* Ping the watchdog. */
void sd_watchdog_ping(void);

#endif
