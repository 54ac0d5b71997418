/*
 * What the daemon counts, and the Prometheus text that shows it. The
 * counters are plain integers the daemon bumps on its one thread; the
 * renderer writes text exposition format 0.0.4 through a callback. No I/O
 * here except metrics_read_process (metrics_proc.c), which reads /proc.
 */
#ifndef METRICS_H
#define METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The version epmd_build_info reports; a build may override it. */
#ifndef EPMD_C_VERSION
#define EPMD_C_VERSION		"0.1.0"
#endif

/* The Content-Type of the text exposition format rendered here. */
#define METRICS_CONTENT_TYPE	"text/plain; version=0.0.4"

/* epmd_registrations_total{result=...}: every decoded ALIVE2 is one. */
enum metrics_registration {
	METRICS_REG_OK,
	METRICS_REG_DUPLICATE,	/* an active node has the name */
	METRICS_REG_INVALID,	/* bad name or extra */
	METRICS_REG_REFUSED,	/* remote peer, access list, fd reserve, memory */
	METRICS_REG_N,
};

/* epmd_requests_total{request=...}: every decoded request is one. */
enum metrics_request {
	METRICS_REQ_ALIVE2,
	METRICS_REQ_PORT_PLEASE2,
	METRICS_REQ_NAMES,
	METRICS_REQ_DUMP,
	METRICS_REQ_KILL,
	METRICS_REQ_STOP,
	METRICS_REQ_N,
};

/* epmd_lookups_total{result=...}: PORT_PLEASE2 answers. */
enum metrics_lookup {
	METRICS_LOOKUP_FOUND,
	METRICS_LOOKUP_NOT_FOUND,
	METRICS_LOOKUP_N,
};

/* epmd_refused_total{reason=...}. */
enum metrics_refusal {
	METRICS_REFUSED_REMOTE_ADMIN,	/* a local-only request from afar */
	METRICS_REFUSED_ACCESS_LIST,	/* the peer is not allowed */
	METRICS_REFUSED_PEER_CAP,	/* -max_conns_per_peer reached */
	METRICS_REFUSED_FD_RESERVE,	/* registration into the fd reserve */
	METRICS_REFUSED_PREFIX_CAP,	/* -max_conns_per_prefix reached */
	METRICS_REFUSED_REMOTE_CAP,	/* -max_remote_conns reached */
	METRICS_REFUSED_N,
};

/* The daemon's counters, and the gauges it sets before a render. */
struct metrics {
	uint64_t	registrations[METRICS_REG_N];
	uint64_t	unregistrations;
	uint64_t	requests[METRICS_REQ_N];
	uint64_t	lookups[METRICS_LOOKUP_N];
	uint64_t	refused[METRICS_REFUSED_N];
	uint64_t	malformed;	/* bad framing or undecodable request */
	uint64_t	timeouts;	/* unregistered connections gone silent */
	uint64_t	accept_paused;	/* EMFILE back-offs */
	uint64_t	shed;		/* closed early to make room */
	uint64_t	log_dropped;	/* log lines dropped; set at scrape */
	uint64_t	restarts;	/* restarts that kept the registry */
	uint64_t	restored_nodes;	/* gauge: nodes the last restart kept */
	uint64_t	nodes;		/* gauge: registered nodes */
	uint64_t	connections;	/* gauge: open unregistered connections */
};

/* The standard process family, read at scrape time. */
struct metrics_process {
	bool		valid;		/* false: the family is left out */
	uint64_t	open_fds;
	uint64_t	max_fds;
	uint64_t	resident_bytes;
	uint64_t	start_time_ms;	/* Unix time of the start, milliseconds */
	uint64_t	cpu_ms;		/* user + system CPU, milliseconds */
};

/* Takes len bytes of rendered text; returns false to stop the render. */
typedef bool (*metrics_put_fn)(void *arg, const char *text, size_t len);

/* Zero every counter and gauge. */
void metrics_init(struct metrics *m);
/* Set the counters the restart helper owns. */
void metrics_set_restarts(struct metrics *m, uint64_t restarts,
	    uint64_t restored_nodes);

/* Render every family through put; returns false if put stopped it. */
bool metrics_render(const struct metrics *m, const struct metrics_process *p,
	    const char *version, metrics_put_fn put, void *arg);
/*
 * Render into buf (NUL-terminated, cut to size); returns the length the
 * whole text needs, as snprintf does.
 */
size_t metrics_render_buf(const struct metrics *m,
	    const struct metrics_process *p, const char *version, char *buf,
	    size_t size);

/* The label value of each enum, as rendered (for -stats and tests). */
const char *metrics_registration_label(enum metrics_registration r);
const char *metrics_request_label(enum metrics_request r);
const char *metrics_lookup_label(enum metrics_lookup r);
const char *metrics_refusal_label(enum metrics_refusal r);

/*
 * Parse /proc/self/stat text: CPU ticks (utime + stime) and the start in
 * ticks after boot; false if the text does not parse.
 */
bool metrics_parse_stat(const char *text, uint64_t *cpu_ticks,
	    uint64_t *start_ticks);
/* Parse "btime N" out of /proc/stat text; false if it is not there. */
bool metrics_parse_btime(const char *text, uint64_t *btime);
/* Parse the resident pages (second field) of /proc/self/statm text. */
bool metrics_parse_statm(const char *text, uint64_t *resident_pages);

/* Read this process's figures from /proc and getrlimit (metrics_proc.c). */
void metrics_read_process(struct metrics_process *p);

#endif
