/* The log: stderr in the foreground, syslog when detached, journal under systemd. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <syslog.h>
#include <time.h>

#include "introspect.h"
#include "log.h"

#define LOG_IDENT	"epmd-c"
#define LOG_MSG_MAX	2048
/* At most this many flood-prone messages per second reach the log. */
#define LOG_FLOOD_RATE	10

static enum log_target	 target = LOG_TO_STDERR;
static int		 verbosity;
static void		(*exit_hook)(int);
static log_journal_fn	 journal_writer;	/* NULL: no journal here */

/* Where to log, and how many -d flags were given. */
void
log_init(enum log_target t, int v)
{
	target = t;
	verbosity = v;
	if (target == LOG_TO_SYSLOG)
		openlog(LOG_IDENT, LOG_PID | LOG_NDELAY, LOG_DAEMON);
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

/* Set the function that writes to the journal. */
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

/* Send one message to the journal with its structured fields. */
static void
write_journal(int prio, const struct log_fields *f, const char *msg)
{
	struct iovec	iov[6];
	char		m[LOG_MSG_MAX + 16], id[32], pr[32];
	char		node[LOG_MSG_MAX], port[32], peer[128], num[16];
	int		n = 0;

	n = add_field(iov, n, m, sizeof(m), "MESSAGE", msg);
	n = add_field(iov, n, id, sizeof(id), "SYSLOG_IDENTIFIER", LOG_IDENT);
	snprintf(num, sizeof(num), "%d", prio);
	n = add_field(iov, n, pr, sizeof(pr), "PRIORITY", num);
	if (f != NULL && f->node != NULL)
		n = add_field(iov, n, node, sizeof(node), "EPMD_NODE", f->node);
	if (f != NULL && f->port > 0) {
		snprintf(num, sizeof(num), "%d", f->port);
		n = add_field(iov, n, port, sizeof(port), "EPMD_PORT", num);
	}
	if (f != NULL && f->peer != NULL)
		n = add_field(iov, n, peer, sizeof(peer), "EPMD_PEER", f->peer);
	journal_writer(iov, n);
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
	switch (target) {
	case LOG_TO_STDERR:
		fprintf(stderr, "%s: %s\n", LOG_IDENT, msg);
		fflush(stderr);
		break;
	case LOG_TO_SYSLOG:
		syslog(prio, "%s", msg);
		break;
	case LOG_TO_JOURNAL:
		if (journal_writer != NULL)
			write_journal(prio, f, msg);
		else
			fprintf(stderr, "%s: %s\n", LOG_IDENT, msg);
		break;
	}
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
