/*
 * Admission of non-local connections: caps per address, per prefix and in
 * all, and a rate-limited report of who is pushing against them.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include <event2/event.h>

#include "addrfilt.h"
#include "admit.h"
#include "log.h"
#include "peercount.h"

static void	admit_report_cb(evutil_socket_t, short, void *);

/* Set up the tables for these limits; false if out of memory. */
bool
admit_init(struct admit *a, const struct admit_limits *lim)
{
	memset(a, 0, sizeof(*a));
	a->lim = *lim;
	a->addrs = peercount_new(32, 128);
	a->prefixes = peercount_new(lim->prefix4, lim->prefix6);
	if (a->addrs == NULL || a->prefixes == NULL) {
		admit_free(a);
		return false;
	}
	return true;
}

/* Report pressure from base's loop, at most once per ADMIT_REPORT_SEC. */
bool
admit_attach(struct admit *a, struct event_base *base)
{
	a->report = evtimer_new(base, admit_report_cb, a);
	return a->report != NULL;
}

/* Free the tables and the report timer. */
void
admit_free(struct admit *a)
{
	peercount_free(a->addrs);
	peercount_free(a->prefixes);
	if (a->report != NULL)
		event_free(a->report);
	a->addrs = a->prefixes = NULL;
	a->report = NULL;
}

/* Is anything waiting to be reported? */
static bool
pressure_any(const struct admit_pressure *p)
{
	size_t i;

	for (i = 0; i < sizeof(p->refused) / sizeof(p->refused[0]); i++)
		if (p->refused[i] > 0)
			return true;
	return p->shed > 0 || p->deadline > 0;
}

/* Log what is pending and start a new period. */
static void
admit_report_now(struct admit *a)
{
	struct timeval	tv = { .tv_sec = ADMIT_REPORT_SEC };
	char		line[512];

	admit_format_report(a, &a->pending, line, sizeof(line));
	log_fields(LOG_WARNING, NULL, "%s", line);
	memset(&a->pending, 0, sizeof(a->pending));
	if (a->report != NULL)
		evtimer_add(a->report, &tv);
}

/* The period ended: report what came in it, or go quiet. */
static void
admit_report_cb(evutil_socket_t fd, short what, void *arg)
{
	struct admit *a = arg;

	(void)fd;
	(void)what;
	if (pressure_any(&a->pending))
		admit_report_now(a);
}

/* Something to report: now if the last period is over, else at its end. */
static void
admit_poke(struct admit *a)
{
	if (a->report != NULL && !evtimer_pending(a->report, NULL))
		admit_report_now(a);
}

/* May a non-local peer at sa open one more connection? ADMIT_OK counts it. */
enum admit_verdict
admit_take(struct admit *a, const struct sockaddr *sa)
{
	enum admit_verdict	v = ADMIT_OK;
	size_t			n;

	if (a->lim.remote > 0 && a->nremote >= a->lim.remote)
		v = ADMIT_REMOTE_CAP;
	else if ((n = peercount_add(a->addrs, sa)) == 0)
		v = ADMIT_NOMEM;
	else if (a->lim.per_addr > 0 && n > a->lim.per_addr) {
		peercount_remove(a->addrs, sa);
		v = ADMIT_PEER_CAP;
	} else if ((n = peercount_add(a->prefixes, sa)) == 0) {
		peercount_remove(a->addrs, sa);
		v = ADMIT_NOMEM;
	} else if (a->lim.per_prefix > 0 && n > a->lim.per_prefix) {
		peercount_remove(a->prefixes, sa);
		peercount_remove(a->addrs, sa);
		v = ADMIT_PREFIX_CAP;
	}
	if (v == ADMIT_OK) {
		a->nremote++;
		return v;
	}
	a->pending.refused[v]++;
	admit_poke(a);
	return v;
}

/* A counted connection from sa ended, or became a registration. */
void
admit_release(struct admit *a, const struct sockaddr *sa)
{
	peercount_remove(a->addrs, sa);
	peercount_remove(a->prefixes, sa);
	if (a->nremote > 0)
		a->nremote--;
}

/* Note connections closed early to make room. */
void
admit_note_shed(struct admit *a, size_t n)
{
	if (n == 0)
		return;
	a->pending.shed += n;
	admit_poke(a);
}

/* Note a connection closed at -request_deadline. */
void
admit_note_deadline(struct admit *a)
{
	a->pending.deadline++;
	admit_poke(a);
}

/* Is the all-peers cap reached? */
bool
admit_remote_full(const struct admit *a)
{
	return a->lim.remote > 0 && a->nremote >= a->lim.remote;
}

/* Append ", " (after the first item) and a formatted item to buf. */
static void __attribute__((format(printf, 4, 5)))
report_add(char *buf, size_t len, size_t *used, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	if (*used >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *used, len - *used, fmt, ap);
	va_end(ap);
	if (n > 0)
		*used += (size_t)n < len - *used ? (size_t)n : len - *used - 1;
}

/* Write the report's text into buf (for the log, and for tests). */
void
admit_format_report(const struct admit *a, const struct admit_pressure *p,
    char *buf, size_t len)
{
	static const struct {
		enum admit_verdict	 v;
		const char		*what;
	} why[] = {
		{ ADMIT_PREFIX_CAP, "over -max_conns_per_prefix" },
		{ ADMIT_PEER_CAP, "over -max_conns_per_peer" },
		{ ADMIT_REMOTE_CAP, "over -max_remote_conns" },
		{ ADMIT_NOMEM, "out of memory" },
	};
	struct peercount_entry	top[ADMIT_REPORT_TOP];
	size_t			i, ntop, used = 0;
	const char		*sep = "";

	if (len == 0)
		return;
	buf[0] = '\0';
	report_add(buf, len, &used, "non-local peers hold %zu unregistered "
	    "connections; since the last report:", a->nremote);
	for (i = 0; i < sizeof(why) / sizeof(why[0]); i++) {
		if (p->refused[why[i].v] == 0)
			continue;
		report_add(buf, len, &used, "%s %" PRIu64 " refused %s", sep,
		    p->refused[why[i].v], why[i].what);
		sep = ",";
	}
	if (p->shed > 0) {
		report_add(buf, len, &used, "%s %" PRIu64 " closed to make "
		    "room", sep, p->shed);
		sep = ",";
	}
	if (p->deadline > 0)
		report_add(buf, len, &used, "%s %" PRIu64 " closed at "
		    "-request_deadline", sep, p->deadline);
	ntop = a->prefixes != NULL ? peercount_top(a->prefixes, top,
	    ADMIT_REPORT_TOP) : 0;
	for (i = 0; i < ntop; i++) {
		char text[INET6_ADDRSTRLEN];

		if (inet_ntop(top[i].addr.family, top[i].addr.bytes, text,
		    sizeof(text)) == NULL)
			snprintf(text, sizeof(text), "?");
		report_add(buf, len, &used, "%s %s/%u holds %zu",
		    i == 0 ? "; most:" : ",", text, top[i].prefix,
		    top[i].count);
	}
}
