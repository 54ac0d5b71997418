/*
 * -stats: read the Prometheus text the metrics endpoint serves back into
 * figures, and print them for a person. Pure: the fetch is in
 * metrics_http.c. Only the families metrics.c renders are understood;
 * anything else in the text is skipped.
 */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stats.h"

/* Longest metric or label name understood; longer samples are skipped. */
#define STATS_NAME_MAX	64

/* One sample line taken apart. */
struct sample {
	char	name[STATS_NAME_MAX];
	char	label[STATS_NAME_MAX];		/* "" if none */
	char	value[STATS_VERSION_MAX];	/* the label's value */
	double	v;
};

/* Copy a run of name characters at *s into buf; false if empty or long. */
static bool
take_name(const char **s, char *buf, size_t size)
{
	size_t n = 0;

	while ((**s >= 'a' && **s <= 'z') || (**s >= 'A' && **s <= 'Z') ||
	    (**s >= '0' && **s <= '9') || **s == '_' || **s == ':') {
		if (n + 1 >= size)
			return false;
		buf[n++] = *(*s)++;
	}
	buf[n] = '\0';
	return n > 0;
}

/* Take a quoted label value at *s (past the quote), undoing escapes. */
static bool
take_value(const char **s, char *buf, size_t size)
{
	size_t n = 0;

	for (;;) {
		char c = *(*s)++;

		if (c == '\0' || c == '\n')
			return false;
		if (c == '"')
			break;
		if (c == '\\') {
			c = *(*s)++;
			if (c == 'n')
				c = '\n';
			else if (c != '\\' && c != '"')
				return false;
		}
		if (n + 1 >= size)
			return false;
		buf[n++] = c;
	}
	buf[n] = '\0';
	return true;
}

/* Take apart one sample line; false if it is not one we can read. */
static bool
parse_line(const char *s, struct sample *out)
{
	char *end;

	memset(out, 0, sizeof(*out));
	if (!take_name(&s, out->name, sizeof(out->name)))
		return false;
	if (*s == '{') {
		s++;
		if (!take_name(&s, out->label, sizeof(out->label)) ||
		    *s++ != '=' || *s++ != '"' ||
		    !take_value(&s, out->value, sizeof(out->value)) ||
		    *s++ != '}')
			return false;
	}
	if (*s != ' ' && *s != '\t')
		return false;
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '\0' || *s == '\n')
		return false;
	out->v = strtod(s, &end);
	return end != s && (*end == '\0' || *end == '\n' || *end == ' ');
}

/* The index of value among n labels, or -1. */
static int
label_index(const char *value, const char *(*label)(int), int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (strcmp(label(i), value) == 0)
			return i;
	return -1;
}

/* The label functions of metrics.c, taking a plain index. */
static const char *
reg_label(int i)
{
	return metrics_registration_label((enum metrics_registration)i);
}

/* The request label of index i. */
static const char *
req_label(int i)
{
	return metrics_request_label((enum metrics_request)i);
}

/* The lookup label of index i. */
static const char *
lookup_label(int i)
{
	return metrics_lookup_label((enum metrics_lookup)i);
}

/* The refusal label of index i. */
static const char *
refusal_label(int i)
{
	return metrics_refusal_label((enum metrics_refusal)i);
}

/* A family with one label: the slot for this sample, or NULL. */
static double *
labelled_slot(const struct sample *smp, const char *name, const char *label,
    const char *(*labels)(int), int n, double *slots)
{
	int i;

	if (strcmp(smp->name, name) != 0 || strcmp(smp->label, label) != 0 ||
	    (i = label_index(smp->value, labels, n)) < 0)
		return NULL;
	return &slots[i];
}

/* Where a sample goes in st, or NULL if -stats does not show it. */
static double *
slot(struct stats *st, const struct sample *smp)
{
	static const struct {
		const char	*name;
		size_t		 off;
	} plain[] = {
		{ "epmd_nodes", offsetof(struct stats, nodes) },
		{ "epmd_unregistrations_total",
		    offsetof(struct stats, unregistrations) },
		{ "epmd_malformed_total", offsetof(struct stats, malformed) },
		{ "epmd_timeouts_total", offsetof(struct stats, timeouts) },
		{ "epmd_connections", offsetof(struct stats, connections) },
		{ "epmd_accept_paused_total",
		    offsetof(struct stats, accept_paused) },
		{ "epmd_shed_total", offsetof(struct stats, shed) },
		{ "epmd_log_dropped_total",
		    offsetof(struct stats, log_dropped) },
		{ "epmd_restarts_total", offsetof(struct stats, restarts) },
		{ "epmd_restored_nodes", offsetof(struct stats, restored_nodes) },
		{ "process_open_fds", offsetof(struct stats, open_fds) },
		{ "process_max_fds", offsetof(struct stats, max_fds) },
		{ "process_resident_memory_bytes",
		    offsetof(struct stats, resident_bytes) },
		{ "process_start_time_seconds",
		    offsetof(struct stats, start_time) },
		{ "process_cpu_seconds_total",
		    offsetof(struct stats, cpu_seconds) },
	};
	double	*p;
	size_t	 i;

	if (smp->label[0] == '\0') {
		for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
			if (strcmp(smp->name, plain[i].name) == 0)
				return (double *)(void *)((char *)st +
				    plain[i].off);
		return NULL;
	}
	if ((p = labelled_slot(smp, "epmd_registrations_total", "result",
	    reg_label, METRICS_REG_N, st->registrations)) != NULL ||
	    (p = labelled_slot(smp, "epmd_requests_total", "request",
	    req_label, METRICS_REQ_N, st->requests)) != NULL ||
	    (p = labelled_slot(smp, "epmd_lookups_total", "result",
	    lookup_label, METRICS_LOOKUP_N, st->lookups)) != NULL ||
	    (p = labelled_slot(smp, "epmd_refused_total", "reason",
	    refusal_label, METRICS_REFUSED_N, st->refused)) != NULL)
		return p;
	return NULL;
}

/* Set n figures to unknown. */
static void
unknown(double *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		v[i] = NAN;
}

/* Every figure unknown until the text gives it. */
static void
stats_clear(struct stats *st)
{
	memset(st, 0, sizeof(*st));
	st->nodes = st->unregistrations = st->malformed = st->timeouts = NAN;
	st->connections = st->accept_paused = st->shed = st->restarts = NAN;
	st->log_dropped = NAN;
	st->restored_nodes = st->open_fds = st->max_fds = NAN;
	st->resident_bytes = st->start_time = st->cpu_seconds = NAN;
	unknown(st->registrations, METRICS_REG_N);
	unknown(st->requests, METRICS_REQ_N);
	unknown(st->lookups, METRICS_LOOKUP_N);
	unknown(st->refused, METRICS_REFUSED_N);
}

/* Read Prometheus text into st; unknown samples and comments are skipped. */
void
stats_parse(const char *text, struct stats *st)
{
	struct sample	 smp;
	const char	*line;
	double		*p;

	stats_clear(st);
	for (line = text; line != NULL && *line != '\0'; ) {
		if (*line != '#' && parse_line(line, &smp)) {
			if (strcmp(smp.name, "epmd_build_info") == 0 &&
			    strcmp(smp.label, "version") == 0) {
				memcpy(st->version, smp.value, sizeof(st->version));
				st->nsamples++;
			} else if ((p = slot(st, &smp)) != NULL) {
				*p = smp.v;
				st->nsamples++;
			}
		}
		if ((line = strchr(line, '\n')) != NULL)
			line++;
	}
}

/* Print a figure, or "?" if the text did not have it. */
static void
put_num(FILE *out, double v)
{
	if (isnan(v))
		fputs("?", out);
	else
		fprintf(out, "%.0f", v);
}

/* "total (a 1, b 2, ...)" for a labelled family. */
static void
put_family(FILE *out, const char *what, const double *v,
    const char *(*labels)(int), int n)
{
	double	sum = 0;
	int	i;

	for (i = 0; i < n; i++)
		sum += v[i];
	fprintf(out, "%-18s", what);
	put_num(out, sum);
	fputs(" (", out);
	for (i = 0; i < n; i++) {
		fprintf(out, "%s%s ", i > 0 ? ", " : "", labels(i));
		put_num(out, v[i]);
	}
	fputs(")\n", out);
}

/* One plain figure on its line. */
static void
put_line(FILE *out, const char *what, double v, const char *unit)
{
	fprintf(out, "%-18s", what);
	put_num(out, v);
	fprintf(out, "%s\n", unit);
}

/* Print st for a person; from names the endpoint, now is Unix time. */
void
stats_print(FILE *out, const struct stats *st, const char *from, double now)
{
	fprintf(out, "epmd-c %s, metrics from %s\n",
	    st->version[0] != '\0' ? st->version : "?", from);
	put_line(out, "nodes:", st->nodes, " registered");
	put_line(out, "connections:", st->connections,
	    " open, not registered nodes");
	put_family(out, "registrations:", st->registrations, reg_label,
	    METRICS_REG_N);
	put_line(out, "unregistrations:", st->unregistrations, "");
	put_family(out, "requests:", st->requests, req_label, METRICS_REQ_N);
	put_family(out, "lookups:", st->lookups, lookup_label,
	    METRICS_LOOKUP_N);
	put_family(out, "refused:", st->refused, refusal_label,
	    METRICS_REFUSED_N);
	put_line(out, "malformed:", st->malformed, "");
	put_line(out, "timeouts:", st->timeouts, "");
	put_line(out, "accept pauses:", st->accept_paused, "");
	put_line(out, "shed:", st->shed, "");
	put_line(out, "log dropped:", st->log_dropped, "");
	put_line(out, "restarts:", st->restarts, "");
	put_line(out, "restored nodes:", st->restored_nodes, "");
	fprintf(out, "%-18s", "descriptors:");
	put_num(out, st->open_fds);
	fputs(" open of ", out);
	put_num(out, st->max_fds);
	fputs("\n", out);
	put_line(out, "memory:", st->resident_bytes, " bytes resident");
	if (isnan(st->cpu_seconds))
		fprintf(out, "%-18s?\n", "cpu:");
	else
		fprintf(out, "%-18s%.2f s\n", "cpu:", st->cpu_seconds);
	if (isnan(st->start_time) || st->start_time < 0 ||
	    st->start_time > 1e15)
		fprintf(out, "%-18s?\n", "started:");
	else {
		time_t		t = (time_t)st->start_time;
		struct tm	tm;
		char		when[32];

		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
		fprintf(out, "%-18s%s, up %.0f s\n", "started:", when,
		    now > st->start_time ? now - st->start_time : 0.0);
	}
}
