/* Log sinks that never block: stderr, syslog, the journal; see logsink.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "logsink.h"

/* A failed connect is retried after this long. */
#define RECONNECT_MS	1000

/* The monotonic clock in milliseconds. */
long long
logsink_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A sink with nothing open. */
static void
clear(struct logsink *s)
{
	memset(s, 0, sizeof(*s));
	s->fd = -1;
}

/*
 * Log to stderr without blocking and without touching fd 2's flags, which
 * it shares with the shell or terminal that started us. A socket (the
 * journal's stream under systemd) takes send(MSG_DONTWAIT); a pipe, FIFO or
 * terminal is reopened through /proc for an open file description of our
 * own that can be O_NONBLOCK; a regular file is written as it is (it never
 * blocks for long, and a reopening would not share its offset).
 */
void
logsink_open_stderr(struct logsink *s)
{
	struct stat st;

	clear(s);
	s->kind = LOGSINK_STDERR;
	s->stream = true;
	s->fd = STDERR_FILENO;
	if (fstat(STDERR_FILENO, &st) == -1 || S_ISREG(st.st_mode) ||
	    S_ISBLK(st.st_mode))
		return;
	if (S_ISSOCK(st.st_mode)) {
		s->use_send = true;
		return;
	}
	s->fd = open("/proc/self/fd/2",
	    O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | O_APPEND);
	if (s->fd >= 0) {
		s->own_fd = true;
		return;
	}
	/* No /proc, or a pipe with no reader: fd 2, written only when ready. */
	s->fd = STDERR_FILENO;
	s->guarded = true;
}

/* Open a non-blocking AF_UNIX socket of type to path; -1 on failure. */
static int
connect_unix(const char *path, int type)
{
	struct sockaddr_un	sun;
	int			fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		int err = errno;

		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/* Connect a socket sink now; a syslog that only streams gets a stream. */
static bool
connect_sink(struct logsink *s)
{
	s->stream = false;
	s->fd = connect_unix(s->path, SOCK_DGRAM);
	if (s->fd == -1 && errno == EPROTOTYPE && s->kind == LOGSINK_SYSLOG) {
		s->fd = connect_unix(s->path, SOCK_STREAM);
		s->stream = true;
	}
	if (s->fd == -1) {
		s->next_try_ms = logsink_now_ms() + RECONNECT_MS;
		return false;
	}
	s->own_fd = true;
	s->use_send = true;
	return true;
}

/* Log to the syslog or journal socket at path; false if not reachable. */
bool
logsink_open_socket(struct logsink *s, enum logsink_kind kind,
    const char *path)
{
	clear(s);
	s->kind = kind;
	snprintf(s->path, sizeof(s->path), "%s", path);
	return connect_sink(s);
}

/* Connected (reconnecting a socket sink at most once a second)? */
bool
logsink_ready(struct logsink *s)
{
	if (s->fd >= 0)
		return true;
	if (s->kind != LOGSINK_SYSLOG && s->kind != LOGSINK_JOURNAL)
		return false;
	if (logsink_now_ms() < s->next_try_ms)
		return false;
	return connect_sink(s);
}

/* Close a socket sink after LOGSINK_GONE; the next ready reconnects. */
void
logsink_reset(struct logsink *s)
{
	if (s->own_fd && s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->own_fd = false;
	s->next_try_ms = 0;
}

/* Close whatever the sink opened; it becomes LOGSINK_NONE. */
void
logsink_close(struct logsink *s)
{
	logsink_reset(s);
	clear(s);
}

/* Sort a failed write's errno into what the caller should do. */
static enum logsink_result
classify(const struct logsink *s, int err)
{
	switch (err) {
	case EAGAIN:
#if EWOULDBLOCK != EAGAIN
	case EWOULDBLOCK:
#endif
		return LOGSINK_AGAIN;
	case ECONNREFUSED:
	case ECONNRESET:
	case ENOTCONN:
	case EPIPE:
	case ENOENT:
	case EDESTADDRREQ:
		/* stderr is never reopened: a reader gone stays gone. */
		return s->kind == LOGSINK_STDERR ? LOGSINK_REFUSED :
		    LOGSINK_GONE;
	default:
		return LOGSINK_REFUSED;
	}
}

/* Is fd 2 ready for a write that will not block? */
static bool
writable_now(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLOUT) != 0;
}

/* Try to send one record without blocking. */
enum logsink_result
logsink_send(struct logsink *s, const void *data, size_t len, size_t *n)
{
	ssize_t r;

	*n = 0;
	if (s->fd < 0)
		return s->kind == LOGSINK_STDERR ? LOGSINK_REFUSED : LOGSINK_GONE;
	if (s->guarded && !writable_now(s->fd))
		return LOGSINK_AGAIN;
	do {
		if (s->use_send)
			r = send(s->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		else
			r = write(s->fd, data, len);
	} while (r == -1 && errno == EINTR);
	if (r == -1)
		return classify(s, errno);
	*n = (size_t)r;
	return LOGSINK_SENT;
}

/* "ident: msg\n", as the foreground has always written. */
size_t
logsink_render_stderr(char *buf, size_t size, const char *ident,
    const char *msg)
{
	int len = snprintf(buf, size, "%s: %s\n", ident, msg);

	return len < 0 || (size_t)len >= size ? 0 : (size_t)len;
}

/* "<PRI>Mmm dd hh:mm:ss ident[pid]: msg" (RFC 3164, as glibc sends it). */
size_t
logsink_render_syslog(char *buf, size_t size, int prio, time_t when,
    const char *ident, pid_t pid, const char *msg)
{
	static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr",
	    "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm	tm;
	int		len;

	if (localtime_r(&when, &tm) == NULL || tm.tm_mon < 0 || tm.tm_mon > 11)
		memset(&tm, 0, sizeof(tm));
	len = snprintf(buf, size, "<%d>%s %2d %02d:%02d:%02d %s[%ld]: %s",
	    LOGSINK_FACILITY | (prio & 7), months[tm.tm_mon], tm.tm_mday,
	    tm.tm_hour, tm.tm_min, tm.tm_sec, ident, (long)pid, msg);
	return len < 0 || (size_t)len >= size ? 0 : (size_t)len;
}

/* Append len bytes at *o if they fit; false otherwise. */
static bool
put(char *buf, size_t size, size_t *o, const void *p, size_t len)
{
	if (len > size - *o)
		return false;
	memcpy(buf + *o, p, len);
	*o += len;
	return true;
}

/* Append one "KEY=value" field in the journal's native framing. */
static bool
put_field(char *buf, size_t size, size_t *o, const char *f, size_t len)
{
	const char	*eq = memchr(f, '=', len);
	size_t		 klen, vlen, i;
	unsigned char	 le[8];

	if (eq == NULL)
		return false;
	klen = (size_t)(eq - f);
	vlen = len - klen - 1;
	if (memchr(eq + 1, '\n', vlen) == NULL)
		return put(buf, size, o, f, len) && put(buf, size, o, "\n", 1);
	/* KEY \n, the value's length as 64-bit little-endian, value \n. */
	for (i = 0; i < 8; i++)
		le[i] = (unsigned char)((uint64_t)vlen >> (8 * i));
	return put(buf, size, o, f, klen) && put(buf, size, o, "\n", 1) &&
	    put(buf, size, o, le, 8) && put(buf, size, o, eq + 1, vlen) &&
	    put(buf, size, o, "\n", 1);
}

/* One journal native-protocol datagram from "KEY=value" fields. */
size_t
logsink_render_journal(char *buf, size_t size, const struct iovec *fields,
    int n)
{
	size_t	o = 0;
	int	i;

	for (i = 0; i < n; i++)
		if (!put_field(buf, size, &o, fields[i].iov_base,
		    fields[i].iov_len))
			return 0;
	return o;
}
