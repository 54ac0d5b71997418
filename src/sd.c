/* Everything systemd: inherited listeners, readiness and status. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "sd.h"

static bool enabled;

/* Take the listening sockets systemd passed; returns their count or -1. */
int
sd_take_listeners(int *fds, size_t max)
{
	int i, n;

	n = sd_listen_fds(1);
	if (n < 0) {
		errno = -n;
		log_warn("cannot obtain sockets from systemd");
		return -1;
	}
	if ((size_t)n > max) {
		log_warnx("cannot listen on more than %zu IP addresses", max);
		return -1;
	}
	for (i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i;

		if (sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, 0) <= 0) {
			log_warnx("systemd socket %d is not a listening "
			    "TCP socket", fd);
			return -1;
		}
		fds[i] = fd;
	}
	return n;
}

/* Enable notifications (only under -systemd); otherwise forget the socket. */
void
sd_enable(void)
{
	enabled = true;
}

/* Forget NOTIFY_SOCKET so nothing we do can reach a unit that did not ask. */
void
sd_disable(void)
{
	enabled = false;
	unsetenv("NOTIFY_SOCKET");
}

/* Send one notification if enabled; unset the socket after the last one. */
static void
notify(bool last, const char *msg)
{
	int r;

	if (!enabled)
		return;
	r = sd_notify(last ? 1 : 0, msg);
	if (r < 0) {
		errno = -r;
		log_warn("sd_notify");
	}
	if (last)
		enabled = false;
}

/* Tell systemd we are ready, with a status line. */
void
sd_ready(const char *status)
{
	char msg[512];

	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s\nMAINPID=%ld", status,
	    (long)getpid());
	notify(false, msg);
}

/* Update the status line. */
void
sd_status(const char *fmt, ...)
{
	char	msg[512];
	int	len;
	va_list	ap;

	if (!enabled)
		return;
	len = snprintf(msg, sizeof(msg), "STATUS=");
	va_start(ap, fmt);
	vsnprintf(msg + len, sizeof(msg) - (size_t)len, fmt, ap);
	va_end(ap);
	notify(false, msg);
}

/* Tell systemd we are stopping. */
void
sd_stopping(void)
{
	notify(false, "STOPPING=1\nSTATUS=Shutting down.");
}

/* Tell systemd we exit with this status; the last message sent. */
void
sd_exiting(int status)
{
	char msg[64];

	snprintf(msg, sizeof(msg), "STATUS=Exited.\nERRNO=%d", status);
	notify(true, msg);
}

/* The watchdog interval in microseconds, 0 if none is asked for. */
unsigned long long
sd_watchdog_usec(void)
{
	uint64_t usec = 0;

	if (!enabled || sd_watchdog_enabled(0, &usec) <= 0)
		return 0;
	return usec;
}

/* Ping the watchdog. */
void
sd_watchdog_ping(void)
{
	notify(false, "WATCHDOG=1");
}
