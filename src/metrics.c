/*
 * The daemon's counters as Prometheus text exposition format 0.0.4: for
 * each family a HELP line, a TYPE line, then its samples. The names and
 * labels are an interface dashboards and alerts rely on: never rename one.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

/* Longest rendered line; the version label is cut to fit. */
#define METRICS_LINE_MAX	512
#define METRICS_VERSION_MAX	128

static const char *const registration_labels[METRICS_REG_N] = {
	[METRICS_REG_OK] = "ok",
	[METRICS_REG_DUPLICATE] = "duplicate",
	[METRICS_REG_INVALID] = "invalid",
	[METRICS_REG_REFUSED] = "refused",
};

static const char *const request_labels[METRICS_REQ_N] = {
	[METRICS_REQ_ALIVE2] = "alive2",
	[METRICS_REQ_PORT_PLEASE2] = "port_please2",
	[METRICS_REQ_NAMES] = "names",
	[METRICS_REQ_DUMP] = "dump",
	[METRICS_REQ_KILL] = "kill",
	[METRICS_REQ_STOP] = "stop",
};

static const char *const lookup_labels[METRICS_LOOKUP_N] = {
	[METRICS_LOOKUP_FOUND] = "found",
	[METRICS_LOOKUP_NOT_FOUND] = "not_found",
};

static const char *const refusal_labels[METRICS_REFUSED_N] = {
	[METRICS_REFUSED_REMOTE_ADMIN] = "remote_admin",
	[METRICS_REFUSED_ACCESS_LIST] = "access_list",
	[METRICS_REFUSED_PEER_CAP] = "peer_cap",
	[METRICS_REFUSED_FD_RESERVE] = "fd_reserve",
	[METRICS_REFUSED_PREFIX_CAP] = "prefix_cap",
	[METRICS_REFUSED_REMOTE_CAP] = "remote_cap",
};

/* Where a render goes, and whether it may go on. */
struct writer {
	metrics_put_fn	 put;
	void		*arg;
	bool		 ok;
};

/* Zero every counter and gauge. */
void
metrics_init(struct metrics *m)
{
	memset(m, 0, sizeof(*m));
}

/* Set the counters the restart helper owns. */
void
metrics_set_restarts(struct metrics *m, uint64_t restarts,
    uint64_t restored_nodes)
{
	m->restarts = restarts;
	m->restored_nodes = restored_nodes;
}

/* The label value of a registration result. */
const char *
metrics_registration_label(enum metrics_registration r)
{
	return (unsigned)r < METRICS_REG_N ? registration_labels[r] : "";
}

/* The label value of a request type. */
const char *
metrics_request_label(enum metrics_request r)
{
	return (unsigned)r < METRICS_REQ_N ? request_labels[r] : "";
}

/* The label value of a lookup result. */
const char *
metrics_lookup_label(enum metrics_lookup r)
{
	return (unsigned)r < METRICS_LOOKUP_N ? lookup_labels[r] : "";
}

/* The label value of a refusal reason. */
const char *
metrics_refusal_label(enum metrics_refusal r)
{
	return (unsigned)r < METRICS_REFUSED_N ? refusal_labels[r] : "";
}

/* Hand a formatted line to the writer. */
static void
emit(struct writer *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
emit(struct writer *w, const char *fmt, ...)
{
	char	line[METRICS_LINE_MAX];
	va_list	ap;
	int	n;

	if (!w->ok)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line)) {
		w->ok = false;	/* a programming error: lines are bounded */
		return;
	}
	w->ok = w->put(w->arg, line, (size_t)n);
}

/* The HELP and TYPE lines of a family. */
static void
family(struct writer *w, const char *name, const char *type, const char *help)
{
	emit(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A family with a single unlabelled sample. */
static void
single(struct writer *w, const char *name, const char *type,
    const char *help, uint64_t v)
{
	family(w, name, type, help);
	emit(w, "%s %" PRIu64 "\n", name, v);
}

/* A family with one sample per label value. */
static void
labelled(struct writer *w, const char *name, const char *help,
    const char *label, const char *const *values, const uint64_t *v, size_t n)
{
	size_t i;

	family(w, name, "counter", help);
	for (i = 0; i < n; i++)
		emit(w, "%s{%s=\"%s\"} %" PRIu64 "\n", name, label, values[i],
		    v[i]);
}

/* A label value escaped as the format wants: \\, \" and \n. */
static const char *
escape_label(const char *s, char *buf, size_t size)
{
	size_t	o = 0;

	for (; *s != '\0' && o + 3 < size; s++) {
		if (*s == '\\' || *s == '"' || *s == '\n') {
			buf[o++] = '\\';
			buf[o++] = *s == '\n' ? 'n' : *s;
		} else
			buf[o++] = *s;
	}
	buf[o] = '\0';
	return buf;
}

/* The process family: descriptors, memory, start time and CPU. */
static void
render_process(struct writer *w, const struct metrics_process *p)
{
	single(w, "process_open_fds", "gauge",
	    "Number of open file descriptors.", p->open_fds);
	single(w, "process_max_fds", "gauge",
	    "Maximum number of open file descriptors.", p->max_fds);
	single(w, "process_resident_memory_bytes", "gauge",
	    "Resident memory size in bytes.", p->resident_bytes);
	family(w, "process_start_time_seconds", "gauge",
	    "Start time of the process since unix epoch in seconds.");
	emit(w, "process_start_time_seconds %" PRIu64 ".%03" PRIu64 "\n",
	    p->start_time_ms / 1000, p->start_time_ms % 1000);
	family(w, "process_cpu_seconds_total", "counter",
	    "Total user and system CPU time spent in seconds.");
	emit(w, "process_cpu_seconds_total %" PRIu64 ".%03" PRIu64 "\n",
	    p->cpu_ms / 1000, p->cpu_ms % 1000);
}

/* Render every family through put; returns false if put stopped it. */
bool
metrics_render(const struct metrics *m, const struct metrics_process *p,
    const char *version, metrics_put_fn put, void *arg)
{
	struct writer	w = { .put = put, .arg = arg, .ok = true };
	char		ver[METRICS_VERSION_MAX * 2 + 1];

	single(&w, "epmd_nodes", "gauge", "Nodes registered now.", m->nodes);
	labelled(&w, "epmd_registrations_total", "Registration requests "
	    "(ALIVE2) by result.", "result", registration_labels,
	    m->registrations, METRICS_REG_N);
	single(&w, "epmd_unregistrations_total", "counter", "Registrations "
	    "ended: the node's connection closed, or a STOP.",
	    m->unregistrations);
	labelled(&w, "epmd_requests_total", "Requests decoded, by type.",
	    "request", request_labels, m->requests, METRICS_REQ_N);
	labelled(&w, "epmd_lookups_total", "Port lookups (PORT_PLEASE2) by "
	    "result.", "result", lookup_labels, m->lookups, METRICS_LOOKUP_N);
	labelled(&w, "epmd_refused_total", "Requests and connections refused, "
	    "by reason.", "reason", refusal_labels, m->refused,
	    METRICS_REFUSED_N);
	single(&w, "epmd_malformed_total", "counter", "Connections closed for "
	    "bad framing or an undecodable request.", m->malformed);
	single(&w, "epmd_timeouts_total", "counter", "Connections closed "
	    "after staying silent for the packet timeout.", m->timeouts);
	single(&w, "epmd_connections", "gauge", "Open connections that are "
	    "not registered nodes.", m->connections);
	single(&w, "epmd_accept_paused_total", "counter", "Times accepting "
	    "paused because descriptors ran out.", m->accept_paused);
	single(&w, "epmd_shed_total", "counter", "Connections closed early to "
	    "make room: old non-local requests, idle ones at the descriptor "
	    "limit.", m->shed);
	single(&w, "epmd_log_dropped_total", "counter", "Log messages "
	    "dropped because the log sink did not take them in time.",
	    m->log_dropped);
	single(&w, "epmd_restarts_total", "counter", "Restarts that kept the "
	    "registered nodes.", m->restarts);
	single(&w, "epmd_restored_nodes", "gauge", "Nodes restored by the last "
	    "restart.", m->restored_nodes);
	family(&w, "epmd_build_info", "gauge", "Build information; the value "
	    "is always 1.");
	emit(&w, "epmd_build_info{version=\"%s\"} 1\n",
	    escape_label(version != NULL ? version : "", ver,
	    METRICS_VERSION_MAX));
	if (p != NULL && p->valid)
		render_process(&w, p);
	return w.ok;
}

/* A caller's buffer being filled, and the length the text needs. */
struct bufwriter {
	char	*buf;
	size_t	 size;
	size_t	 len;
};

/* Append to a caller's buffer, counting what does not fit. */
static bool
buf_put(void *arg, const char *text, size_t len)
{
	struct bufwriter	*b = arg;
	size_t			 room;

	if (b->size > 0 && b->len < b->size - 1) {
		room = b->size - 1 - b->len;
		memcpy(b->buf + b->len, text, len < room ? len : room);
	}
	b->len += len;
	return true;
}

/* Render into buf (NUL-terminated, cut to size); returns the whole length. */
size_t
metrics_render_buf(const struct metrics *m, const struct metrics_process *p,
    const char *version, char *buf, size_t size)
{
	struct bufwriter b = { .buf = buf, .size = size, .len = 0 };

	metrics_render(m, p, version, buf_put, &b);
	if (size > 0)
		buf[b.len < size ? b.len : size - 1] = '\0';
	return b.len;
}

/* Parse one unsigned decimal field at *s, moving *s past it. */
static bool
parse_u64(const char **s, uint64_t *out)
{
	char			*end;
	unsigned long long	 v;

	while (**s == ' ')
		(*s)++;
	if (**s < '0' || **s > '9')
		return false;
	v = strtoull(*s, &end, 10);
	*s = end;
	*out = v;
	return true;
}

/* Skip one space-separated field at *s. */
static bool
skip_field(const char **s)
{
	while (**s == ' ')
		(*s)++;
	if (**s == '\0' || **s == '\n')
		return false;
	while (**s != ' ' && **s != '\0' && **s != '\n')
		(*s)++;
	return true;
}

/* Parse /proc/self/stat text: CPU ticks and the start in ticks after boot. */
bool
metrics_parse_stat(const char *text, uint64_t *cpu_ticks,
    uint64_t *start_ticks)
{
	const char	*s = strrchr(text, ')');
	uint64_t	 utime, stime;
	int		 field;

	/* The command name may hold spaces and parens: fields follow the last. */
	if (s == NULL)
		return false;
	s++;
	/* Field 3 (state) to 13 come before utime (14) and stime (15). */
	for (field = 3; field <= 13; field++)
		if (!skip_field(&s))
			return false;
	if (!parse_u64(&s, &utime) || !parse_u64(&s, &stime))
		return false;
	for (field = 16; field <= 21; field++)
		if (!skip_field(&s))
			return false;
	if (!parse_u64(&s, start_ticks))
		return false;
	*cpu_ticks = utime + stime;
	return true;
}

/* Parse "btime N" out of /proc/stat text; false if it is not there. */
bool
metrics_parse_btime(const char *text, uint64_t *btime)
{
	const char *s = text;

	while (s != NULL && *s != '\0') {
		if (strncmp(s, "btime ", 6) == 0) {
			s += 5;
			return parse_u64(&s, btime);
		}
		if ((s = strchr(s, '\n')) != NULL)
			s++;
	}
	return false;
}

/* Parse the resident pages (second field) of /proc/self/statm text. */
bool
metrics_parse_statm(const char *text, uint64_t *resident_pages)
{
	const char	*s = text;
	uint64_t	 size;

	return parse_u64(&s, &size) && parse_u64(&s, resident_pages);
}
