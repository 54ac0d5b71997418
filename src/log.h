/* The log: stderr in the foreground, syslog when detached, journal under systemd. */
#ifndef LOG_H
#define LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

enum log_target {
	LOG_TO_STDERR,
	LOG_TO_SYSLOG,
	LOG_TO_JOURNAL,
};

/* Where to log, and how many -d flags were given. */
void log_init(enum log_target target, int verbosity);
/* How many -d flags were given. */
int log_get_verbosity(void);
/*
 * Drain the log's queue from this loop, on the sink's fd becoming writable
 * (server_init, once the base exists). NULL before the base is freed:
 * stop watching and flush, waiting at most 1 s. Without a loop, what a
 * slow sink has not taken goes with the next message, or at exit.
 */
struct event_base;
void log_attach(struct event_base *base);
/* Send what is queued, waiting at most what is left of the 1 s budget. */
void log_flush(void);
/* Messages dropped because the sink would not take them in time. */
unsigned long long log_dropped_total(void);

/* Fields attached to a message about a node or a peer; any may be NULL/0. */
struct log_fields {
	const char	*node;	/* EPMD_NODE= */
	int		 port;	/* EPMD_PORT=, if > 0 */
	const char	*peer;	/* EPMD_PEER= */
};

void log_warn(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));	/* with strerror(errno) */
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Log at a syslog priority with structured fields. */
void log_fields(int prio, const struct log_fields *f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same for a flood-prone line (refusals, descriptor shortage): at most
 * a few a second are logged, and a count of the rest follows. */
void log_flood(int prio, const struct log_fields *f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vflood(int prio, const struct log_fields *f, const char *fmt,
    va_list ap) __attribute__((format(printf, 3, 0)));
/* Log and exit(1); fatal appends strerror(errno). */
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
/* Called by fatal before exiting, to tell systemd; may be NULL. */
void log_set_exit_hook(void (*hook)(int status));

/* Copy bytes for a log line, escaping control and non-ASCII bytes as \xNN. */
const char *log_escape(const void *data, size_t len, char *buf, size_t buflen);
/* Room log_escape needs for len bytes. */
#define LOG_ESCAPED_SIZE(len)	((len) * 4 + 1)
/* Names are cut to this many bytes in log lines. */
#define LOG_NAME_MAX		255

#endif
