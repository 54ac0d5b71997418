/*
 * Where rendered log records go, without ever blocking: stderr (through a
 * non-blocking open file description of its own, or send(MSG_DONTWAIT) on
 * a socket), syslog's /dev/log and the journal's native socket (our own
 * non-blocking AF_UNIX sockets, reconnected when the receiver restarts).
 * One record is one stderr line, one syslog datagram or one journal
 * datagram; the renderers here build them.
 */
#ifndef LOGSINK_H
#define LOGSINK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#define LOGSINK_SYSLOG_PATH	"/dev/log"
#define LOGSINK_JOURNAL_PATH	"/run/systemd/journal/socket"
/* The syslog facility the daemon logs under, as glibc's openlog had it. */
#define LOGSINK_FACILITY	(3 << 3)	/* LOG_DAEMON */

enum logsink_kind {
	LOGSINK_NONE,
	LOGSINK_STDERR,		/* fd 2, or a non-blocking reopening of it */
	LOGSINK_SYSLOG,		/* AF_UNIX to /dev/log */
	LOGSINK_JOURNAL,	/* AF_UNIX datagrams to journald */
};

struct logsink {
	enum logsink_kind kind;
	int		 fd;		/* -1: not connected */
	bool		 own_fd;	/* ours to close (not fd 2) */
	bool		 guarded;	/* fd 2 as is: poll before each write */
	bool		 use_send;	/* a socket: send(MSG_DONTWAIT) */
	bool		 stream;	/* a byte stream: writes may be partial */
	char		 path[108];	/* syslog or journal socket */
	long long	 next_try_ms;	/* no reconnect before this (monotonic) */
};

/* What became of one attempt to send a record. */
enum logsink_result {
	LOGSINK_SENT,		/* *n bytes went (all of a datagram) */
	LOGSINK_AGAIN,		/* it would block: wait for writability */
	LOGSINK_REFUSED,	/* this record can never go: drop it */
	LOGSINK_GONE,		/* the receiver is gone: reset and reconnect */
};

/* Log to stderr without blocking and without touching fd 2's flags. */
void logsink_open_stderr(struct logsink *s);
/* Log to the syslog or journal socket at path; false if not reachable. */
bool logsink_open_socket(struct logsink *s, enum logsink_kind kind,
	    const char *path);
/* Connected (reconnecting a socket sink at most once a second)? */
bool logsink_ready(struct logsink *s);
/* Close a socket sink after LOGSINK_GONE; the next ready reconnects. */
void logsink_reset(struct logsink *s);
/* Close whatever the sink opened; it becomes LOGSINK_NONE. */
void logsink_close(struct logsink *s);
/* Try to send one record without blocking. */
enum logsink_result logsink_send(struct logsink *s, const void *data,
	    size_t len, size_t *n);

/* "epmd-c: msg\n", as the foreground has always written. */
size_t logsink_render_stderr(char *buf, size_t size, const char *ident,
	    const char *msg);
/* "<PRI>Mmm dd hh:mm:ss ident[pid]: msg" (RFC 3164, as glibc sends it). */
size_t logsink_render_syslog(char *buf, size_t size, int prio, time_t when,
	    const char *ident, pid_t pid, const char *msg);
/*
 * One journal native-protocol datagram from "KEY=value" fields: a value
 * with a newline in it goes in the length-prefixed binary form.
 */
struct iovec;
size_t logsink_render_journal(char *buf, size_t size,
	    const struct iovec *fields, int n);

/* The monotonic clock in milliseconds. */
long long logsink_now_ms(void);

#endif
