/*
 * The log: stderr in the foreground, syslog when detached, journal under
 * systemd. No write ever blocks the loop: a message is formatted once,
 * rendered for its sink and sent without waiting; what the sink will not
 * take now waits in a bounded queue (logq.h) that the loop drains when the
 * sink's fd becomes writable. What does not fit is dropped, counted
 * (epmd_log_dropped_total) and reported in one line once the sink takes
 * data again. Only log_flush waits: at exit (so that a fatal message
 * reaches a slow sink), when the loop stops, and when the target changes,
 * for at most LOG_WAIT_MS at startup and LOG_WAIT_MS again at shutdown.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "introspect.h"
#include "log.h"
#include "logq.h"
#include "logsink.h"

#define LOG_IDENT	"epmd-c"
#define LOG_MSG_MAX	2048
/* The largest rendered record: a journal datagram with every field. */
#define LOG_RECORD_MAX	8192
/* At most this many flood-prone messages per second reach the log. */
#define LOG_FLOOD_RATE	10
/* How long log_flush may wait for a sink before the loop, and again at the end. */
#define LOG_WAIT_MS	1000
/* Room the queue keeps for a "dropped N messages" line. */
#define LOG_NOTICE_RESERVE	512

static enum log_target	 target = LOG_TO_STDERR;
static int		 verbosity;
static void		(*exit_hook)(int);
static log_journal_fn	 journal_writer;	/* tests: instead of the socket */
static const char	*socket_path[3];	/* tests: instead of the defaults */

static struct logq	 queue;
static struct logsink	 sink;
static bool		 sink_open;	/* sink is set up for target */
static pid_t		 log_pid;	/* for syslog's ident[pid] */
static struct event_base *loop;		/* NULL: wait instead of watching */
static struct event	*writable;	/* EV_WRITE on the sink's fd */
static int		 writable_fd = -1;
static bool		 exiting;	/* atexit: libevent is off limits */
static long		 wait_left_ms = LOG_WAIT_MS;
static bool		 atexit_done;

static void	log_at_exit(void);
static void	flush_later(void);

/* Stop watching the sink's fd; before the fd is closed or replaced. */
static void
unwatch(void)
{
	if (writable != NULL && !exiting) {
		event_free(writable);
		writable = NULL;
	}
	writable_fd = -1;
}

/* Open the sink for the current target; the journal falls back to stderr. */
static void
open_sink(void)
{
	const char *path;

	log_pid = getpid();
	sink_open = true;
	if (!atexit_done) {
		atexit(log_at_exit);
		atexit_done = true;
	}
	switch (target) {
	case LOG_TO_SYSLOG:
		path = socket_path[LOG_TO_SYSLOG] != NULL ?
		    socket_path[LOG_TO_SYSLOG] : LOGSINK_SYSLOG_PATH;
		/* Unreachable now: counted as drops, retried once a second. */
		logsink_open_socket(&sink, LOGSINK_SYSLOG, path);
		return;
	case LOG_TO_JOURNAL:
		path = socket_path[LOG_TO_JOURNAL] != NULL ?
		    socket_path[LOG_TO_JOURNAL] : LOGSINK_JOURNAL_PATH;
		if (journal_writer != NULL ||
		    logsink_open_socket(&sink, LOGSINK_JOURNAL, path))
			return;
		break;
	case LOG_TO_STDERR:
		break;
	}
	logsink_open_stderr(&sink);
}

/* Render msg for the sink; 0 if it does not fit the buffer. */
static size_t
render(char *buf, size_t size, int prio, const struct log_fields *f,
    const char *msg);

/* Queue a "dropped N messages" line if messages were dropped and room is back. */
static void
queue_notice(void)
{
	char		msg[128], rec[LOG_NOTICE_RESERVE];
	uint64_t	n;
	size_t		len;

	if ((n = logq_take_notice(&queue, LOG_NOTICE_RESERVE)) == 0)
		return;
	snprintf(msg, sizeof(msg), "log: dropped %llu messages: the log "
	    "could not keep up", (unsigned long long)n);
	if ((len = render(rec, sizeof(rec), LOG_WARNING, NULL, msg)) > 0)
		logq_push(&queue, rec, len);
}

/* Drop everything queued for a sink that is gone (counted). */
static void
drop_queue(void)
{
	while (!logq_empty(&queue))
		logq_drop_head(&queue);
}

/*
 * Send what the sink takes now, oldest first. Returns true if the queue
 * is empty, false if the sink would block.
 */
static bool
pump(void)
{
	const char	*p;
	size_t		 len, n;

	while ((p = logq_head(&queue, &len)) != NULL) {
		switch (logsink_send(&sink, p, len, &n)) {
		case LOGSINK_SENT:
			logq_consume(&queue, n);
			queue_notice();
			break;
		case LOGSINK_AGAIN:
			return false;
		case LOGSINK_REFUSED:
			logq_drop_head(&queue);
			break;
		case LOGSINK_GONE:
			/* Syslog or journald restarted: one new connection. */
			unwatch();
			logsink_reset(&sink);
			if (!logsink_ready(&sink))
				drop_queue();
			break;
		}
	}
	return true;
}

/* The loop: the sink's fd is writable again. */
static void
writable_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (!pump())
		flush_later();
}

/* Watch the sink's fd for writability, from the loop. */
static void
flush_later(void)
{
	if (loop == NULL || exiting || sink.fd < 0)
		return;
	if (writable != NULL && writable_fd != sink.fd)
		unwatch();
	if (writable == NULL) {
		writable = event_new(loop, sink.fd, EV_WRITE, writable_cb, NULL);
		if (writable == NULL)
			return;
		writable_fd = sink.fd;
	}
	if (!event_pending(writable, EV_WRITE, NULL))
		event_add(writable, NULL);
}

/* Is the loop already waiting to drain the queue? */
static bool
watching(void)
{
	return loop != NULL && !exiting && writable != NULL &&
	    event_pending(writable, EV_WRITE, NULL);
}

/* No loop to wait in: wait here for the sink, within what is left of LOG_WAIT_MS. */
static void
flush_waiting(void)
{
	struct pollfd	pfd;
	long long	t0;

	while (!pump() && wait_left_ms > 0 && sink.fd >= 0) {
		pfd.fd = sink.fd;
		pfd.events = POLLOUT;
		t0 = logsink_now_ms();
		if (poll(&pfd, 1, (int)wait_left_ms) == -1 && errno != EINTR)
			break;
		/* At least 1 ms a round: a sink ready but refusing still ends. */
		wait_left_ms -= (long)(logsink_now_ms() - t0) + 1;
		if (wait_left_ms < 0)
			wait_left_ms = 0;
	}
}

/* Queue one rendered record and send what the sink takes. */
static void
emit(int prio, const struct log_fields *f, const char *msg)
{
	char	rec[LOG_RECORD_MAX];
	size_t	len;

	if (!sink_open)
		open_sink();
	if (!logsink_ready(&sink)) {
		logq_drop(&queue);
		return;
	}
	queue_notice();
	if ((len = render(rec, sizeof(rec), prio, f, msg)) == 0) {
		logq_drop(&queue);
		return;
	}
	if (!logq_push(&queue, rec, len) || watching())
		return;
	/* Without a loop what stays waits for the next message or the exit. */
	if (!pump())
		flush_later();
}

/* Send what is queued, waiting at most what is left of LOG_WAIT_MS. */
void
log_flush(void)
{
	if (sink_open)
		flush_waiting();
}

/* Drain the queue from this loop; NULL: shutting down, flush and stop. */
void
log_attach(struct event_base *base)
{
	if (base != NULL) {
		loop = base;
		wait_left_ms = LOG_WAIT_MS;	/* for the shutdown */
		if (!logq_empty(&queue))
			flush_later();
		return;
	}
	unwatch();
	loop = NULL;
	log_flush();
}

/* At exit: no libevent any more; drain within what is left of the wait. */
static void
log_at_exit(void)
{
	exiting = true;
	log_flush();
	logq_clear(&queue);
}

/* Every message dropped because the sink could not take it in time. */
unsigned long long
log_dropped_total(void)
{
	return logq_dropped_total(&queue);
}

/* Where to log, and how many -d flags were given. */
void
log_init(enum log_target t, int v)
{
	if (sink_open) {
		log_flush();
		logq_clear(&queue);
		unwatch();
		logsink_close(&sink);
		sink_open = false;
	}
	target = t;
	verbosity = v;
	wait_left_ms = LOG_WAIT_MS;
	open_sink();
}

/* Tests: log to a socket at path instead of the target's default (NULL). */
void
log_set_socket_path(enum log_target t, const char *path)
{
	if (t == LOG_TO_SYSLOG || t == LOG_TO_JOURNAL)
		socket_path[t] = path;
}

/* The current target. */
enum log_target
log_get_target(void)
{
	return target;
}

/* The number of -d flags. */
int
log_get_verbosity(void)
{
	return verbosity;
}

/* Set the function called with the exit status before fatal exits. */
void
log_set_exit_hook(void (*hook)(int))
{
	exit_hook = hook;
}

/* Set the function that takes journal messages instead of the socket. */
void
log_set_journal_writer(log_journal_fn fn)
{
	journal_writer = fn;
}

/* May a flood-prone message be logged now? Counts what it holds back. */
bool
log_flood_allowed(void)
{
	static time_t	window;
	static unsigned	count, suppressed;
	time_t		now = time(NULL);

	if (now != window) {
		if (suppressed > 0)
			log_warnx("%u similar messages not logged", suppressed);
		window = now;
		count = suppressed = 0;
	}
	if (count < LOG_FLOOD_RATE) {
		count++;
		return true;
	}
	suppressed++;
	return false;
}

/* Copy bytes for a log line, escaping control and non-ASCII bytes as \xNN. */
const char *
log_escape(const void *data, size_t len, char *buf, size_t buflen)
{
	const unsigned char *p = data;
	size_t i, o = 0;

	if (buflen == 0)
		return buf;
	for (i = 0; i < len; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\') {
			if (o + 1 >= buflen)
				break;
			buf[o++] = (char)p[i];
		} else {
			if (o + 4 >= buflen)
				break;
			snprintf(buf + o, buflen - o, "\\x%02x", p[i]);
			o += 4;
		}
	}
	buf[o] = '\0';
	return buf;
}

/* Append one "KEY=value" field to the iovec list. */
static int
add_field(struct iovec *iov, int n, char *store, size_t storelen,
    const char *key, const char *value)
{
	int len = snprintf(store, storelen, "%s=%s", key, value);

	if (len < 0)
		return n;
	iov[n].iov_base = store;
	iov[n].iov_len = (size_t)len < storelen ? (size_t)len : storelen - 1;
	return n + 1;
}

/* The journal fields of one message: the one list the socket and tests see. */
struct journal_fields {
	struct iovec	iov[6];
	int		n;
	char		m[LOG_MSG_MAX + 16], id[32], pr[32];
	char		node[LOG_MSG_MAX], port[32], peer[128];
};

/* Fill jf with MESSAGE, SYSLOG_IDENTIFIER, PRIORITY and f's fields. */
static void
journal_fields(struct journal_fields *jf, int prio, const struct log_fields *f,
    const char *msg)
{
	char num[16];

	jf->n = 0;
	jf->n = add_field(jf->iov, jf->n, jf->m, sizeof(jf->m), "MESSAGE", msg);
	jf->n = add_field(jf->iov, jf->n, jf->id, sizeof(jf->id),
	    "SYSLOG_IDENTIFIER", LOG_IDENT);
	snprintf(num, sizeof(num), "%d", prio);
	jf->n = add_field(jf->iov, jf->n, jf->pr, sizeof(jf->pr), "PRIORITY",
	    num);
	if (f != NULL && f->node != NULL)
		jf->n = add_field(jf->iov, jf->n, jf->node, sizeof(jf->node),
		    "EPMD_NODE", f->node);
	if (f != NULL && f->port > 0) {
		snprintf(num, sizeof(num), "%d", f->port);
		jf->n = add_field(jf->iov, jf->n, jf->port, sizeof(jf->port),
		    "EPMD_PORT", num);
	}
	if (f != NULL && f->peer != NULL)
		jf->n = add_field(jf->iov, jf->n, jf->peer, sizeof(jf->peer),
		    "EPMD_PEER", f->peer);
}

/* Render msg for the sink; 0 if it does not fit the buffer. */
static size_t
render(char *buf, size_t size, int prio, const struct log_fields *f,
    const char *msg)
{
	static struct journal_fields jf;	/* large: not on the stack */

	switch (sink.kind) {
	case LOGSINK_SYSLOG:
		size = logsink_render_syslog(buf, size, prio, time(NULL),
		    LOG_IDENT, log_pid, msg);
		/* A stream syslog reads NUL-terminated records, as glibc sends. */
		return size > 0 && sink.stream ? size + 1 : size;
	case LOGSINK_JOURNAL:
		journal_fields(&jf, prio, f, msg);
		return logsink_render_journal(buf, size, jf.iov, jf.n);
	case LOGSINK_STDERR:
	case LOGSINK_NONE:
		break;
	}
	return logsink_render_stderr(buf, size, LOG_IDENT, msg);
}

/* Tests: hand one message's journal fields to the replacement writer. */
static void
write_journal(int prio, const struct log_fields *f, const char *msg)
{
	static struct journal_fields jf;

	journal_fields(&jf, prio, f, msg);
	journal_writer(jf.iov, jf.n);
}

/* Format one message once, strerror(err) appended if err, and route it. */
static void __attribute__((format(printf, 4, 0)))
vlog(int prio, const struct log_fields *f, int err, const char *fmt,
    va_list ap)
{
	char	msg[LOG_MSG_MAX];
	int	len;

	if (prio >= LOG_DEBUG && verbosity < 1)
		return;
	len = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (err != 0 && len >= 0 && (size_t)len < sizeof(msg))
		snprintf(msg + len, sizeof(msg) - (size_t)len, ": %s",
		    strerror(err));
	if (target == LOG_TO_JOURNAL && journal_writer != NULL)
		write_journal(prio, f, msg);
	else
		emit(prio, f, msg);
}

/* Log at a syslog priority with structured fields. */
void
log_fields(int prio, const struct log_fields *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(prio, f, 0, fmt, ap);
	va_end(ap);
}

/* A flood-prone line: logged with its fields unless the rate limit holds it. */
void
log_flood(int prio, const struct log_fields *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vflood(prio, f, fmt, ap);
	va_end(ap);
}

/* log_flood with a va_list, for callers that wrap it. */
void
log_vflood(int prio, const struct log_fields *f, const char *fmt, va_list ap)
{
	if (log_flood_allowed())
		vlog(prio, f, 0, fmt, ap);
}

/* A warning with strerror(errno). */
void
log_warn(const char *fmt, ...)
{
	int	err = errno;
	va_list	ap;

	va_start(ap, fmt);
	vlog(LOG_WARNING, NULL, err, fmt, ap);
	va_end(ap);
	errno = err;
}

/* A warning. */
void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_WARNING, NULL, 0, fmt, ap);
	va_end(ap);
}

/* Something an operator wants to see. */
void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_INFO, NULL, 0, fmt, ap);
	va_end(ap);
}

/* Detail shown with -d. */
void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (verbosity < 1)
		return;
	va_start(ap, fmt);
	vlog(LOG_DEBUG, NULL, 0, fmt, ap);
	va_end(ap);
}

/* Log at LOG_ERR, tell the exit hook, exit 1. */
static void __attribute__((noreturn, format(printf, 2, 0)))
vfatal(int err, const char *fmt, va_list ap)
{
	vlog(LOG_ERR, NULL, err, fmt, ap);
	if (exit_hook != NULL)
		exit_hook(1);
	exit(1);
}

/* Log with strerror(errno) and exit 1. */
void
fatal(const char *fmt, ...)
{
	int	err = errno;
	va_list	ap;

	va_start(ap, fmt);
	vfatal(err, fmt, ap);
}

/* Log and exit 1. */
void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfatal(0, fmt, ap);
}
