/* -stats: the metrics endpoint's figures, read back and shown to a person. */
#ifndef STATS_H
#define STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "metrics.h"

/* Longest version label kept. */
#define STATS_VERSION_MAX	128

/* The samples -stats shows; have[] says which the text held. */
struct stats {
	double	nodes, unregistrations, malformed, timeouts, connections;
	double	accept_paused, shed, restarts, restored_nodes;
	double	log_dropped;
	double	registrations[METRICS_REG_N];
	double	requests[METRICS_REQ_N];
	double	lookups[METRICS_LOOKUP_N];
	double	refused[METRICS_REFUSED_N];
	double	open_fds, max_fds, resident_bytes, start_time, cpu_seconds;
	char	version[STATS_VERSION_MAX];
	size_t	nsamples;	/* known samples found */
};

/* Read Prometheus text into st; unknown samples and comments are skipped. */
void stats_parse(const char *text, struct stats *st);
/* Print st for a person; from names the endpoint, now is Unix time. */
void stats_print(FILE *out, const struct stats *st, const char *from,
	    double now);

#endif
