/* Everything systemd: inherited listeners, readiness, status, the fd store. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <syslog.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "log.h"
#include "systemd.h"

static bool enabled;

/* Split LISTEN_FDNAMES into n names (missing ones empty). */
static char **
split_names(const char *env, int n)
{
	char	**v = calloc((size_t)n + 1, sizeof(*v));
	int	  i;

	if (v == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		const char *end = env != NULL ? strchr(env, ':') : NULL;
		size_t len = env == NULL ? 0 : end != NULL ?
		    (size_t)(end - env) : strlen(env);

		if ((v[i] = strndup(env != NULL ? env : "", len)) == NULL) {
			while (i-- > 0)
				free(v[i]);
			free(v);
			return NULL;
		}
		env = end != NULL ? end + 1 : NULL;
	}
	return v;
}

/*
 * LISTEN_FDS read from the environment alone, by systemd's rules:
 * LISTEN_PID must be ours, the names come from LISTEN_FDNAMES, and all
 * three variables are unset. The descriptors are not touched. Without
 * libsystemd this is how a SIGUSR2 handover's descriptors are taken.
 */
int
systemd_listen_env(char ***names)
{
	const char	*pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	char		*end;
	long		 p, n;

	*names = NULL;
	if (pid == NULL || fds == NULL)
		return 0;
	errno = 0;
	p = strtol(pid, &end, 10);
	if (errno != 0 || *end != '\0' || p != (long)getpid())
		return 0;
	n = strtol(fds, &end, 10);
	if (errno != 0 || *end != '\0' || n < 0 || n > 1 << 20)
		return -1;
	*names = split_names(getenv("LISTEN_FDNAMES"), (int)n);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return *names != NULL ? (int)n : -1;
}

#ifdef HAVE_SYSTEMD

/* n empty names, for descriptors whose names cannot be told apart. */
static char **
nameless(int n)
{
	return split_names(NULL, n);
}

/*
 * Every descriptor passed in LISTEN_FDS, with its name: libsystemd's
 * reader, which also makes each one close-on-exec (a SIGUSR2 handover
 * clears that again on what it passes on).
 */
int
systemd_listen_fds_with_names(char ***names)
{
	int n = sd_listen_fds_with_names(0, names);

	/*
	 * A socket's default name is its unit's, and LISTEN_FDNAMES is split
	 * at colons: an instance such as epmd-c@\x5b::1\x5d.socket gives more
	 * names than descriptors, and libsystemd refuses them all (EINVAL).
	 * Then every descriptor goes nameless: a listener, as for systemd.
	 */
	if (n == -EINVAL && (n = sd_listen_fds(0)) > 0 &&
	    (*names = nameless(n)) == NULL)
		n = -ENOMEM;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (n < 0) {
		errno = -n;
		log_warn("cannot obtain descriptors from systemd");
		return -1;
	}
	if (n > 0 && *names == NULL)
		return -1;
	return n;
}

#else /* !HAVE_SYSTEMD */

/* Every descriptor passed in LISTEN_FDS, with its name. */
int
systemd_listen_fds_with_names(char ***names)
{
	return systemd_listen_env(names);
}

#endif /* HAVE_SYSTEMD */

#ifdef HAVE_SYSTEMD

/* Was this build made with libsystemd? */
bool
systemd_supported(void)
{
	return true;
}

/* Take the listening sockets systemd passed; returns their count or -1. */
int
systemd_take_listeners(int *fds, size_t max)
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

/* Put fd in the service's fd store under name. */
bool
systemd_store_fd(int fd, const char *name)
{
	char	msg[300];
	int	r;

	if (!enabled)
		return false;
	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", name);
	r = sd_pid_notify_with_fds(0, 0, msg, &fd, 1);
	if (r < 0) {
		errno = -r;
		log_flood(LOG_WARNING, NULL, "cannot store descriptor %s in "
		    "systemd's fd store: %s", name, strerror(errno));
	}
	return r > 0;
}

/* Remove the stored descriptors of that name. */
void
systemd_store_remove(const char *name)
{
	char	msg[300];
	int	r;

	if (!enabled)
		return;
	snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s", name);
	if ((r = sd_notify(0, msg)) < 0) {
		errno = -r;
		log_flood(LOG_WARNING, NULL, "cannot remove descriptor %s from "
		    "systemd's fd store: %s", name, strerror(errno));
	}
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

/* The watchdog interval in microseconds, 0 if none is asked for. */
unsigned long long
systemd_watchdog_usec(void)
{
	uint64_t usec = 0;

	if (!enabled || sd_watchdog_enabled(0, &usec) <= 0)
		return 0;
	return usec;
}

#else /* !HAVE_SYSTEMD */

/* Was this build made with libsystemd? */
bool
systemd_supported(void)
{
	return false;
}

/* Without libsystemd there are no inherited sockets to take. */
int
systemd_take_listeners(int *fds, size_t max)
{
	(void)fds;
	(void)max;
	log_warnx("this build of epmd-c has no systemd support");
	return -1;
}

/* Without libsystemd there is no fd store. */
bool
systemd_store_fd(int fd, const char *name)
{
	(void)fd;
	(void)name;
	return false;
}

/* Without libsystemd there is no fd store. */
void
systemd_store_remove(const char *name)
{
	(void)name;
}

/* Without libsystemd nothing is sent. */
static void
notify(bool last, const char *msg)
{
	(void)last;
	(void)msg;
}

/* Without libsystemd there is no watchdog. */
unsigned long long
systemd_watchdog_usec(void)
{
	return 0;
}

#endif /* HAVE_SYSTEMD */

/* Enable notifications (only under -systemd). */
void
systemd_enable(void)
{
	enabled = true;
}

/* Forget NOTIFY_SOCKET so nothing we do can reach a unit that did not ask. */
void
systemd_disable(void)
{
	enabled = false;
	unsetenv("NOTIFY_SOCKET");
}

/* Tell systemd we are ready, with a status line. */
void
systemd_ready(const char *status)
{
	char msg[512];

	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s\nMAINPID=%ld", status,
	    (long)getpid());
	notify(false, msg);
}

/* Update the status line. */
void
systemd_status(const char *fmt, ...)
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
systemd_stopping(void)
{
	notify(false, "STOPPING=1\nSTATUS=Shutting down.");
}

/* Tell systemd we exit with this status; the last message sent. */
void
systemd_exiting(int status)
{
	char msg[64];

	snprintf(msg, sizeof(msg), "STATUS=Exited.\nERRNO=%d", status);
	notify(true, msg);
}

/* Ping the watchdog. */
void
systemd_watchdog_ping(void)
{
	notify(false, "WATCHDOG=1");
}
