/*
 * Admission of non-local connections: caps per address, per prefix and in
 * all, so that loopback (the host's own nodes) always has room; and a
 * rate-limited report of who is pushing against them.
 */
#ifndef ADMIT_H
#define ADMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event;
struct event_base;
struct peercount;

/* The caps; 0 means none. */
struct admit_limits {
	size_t		 per_addr;
	size_t		 per_prefix;
	size_t		 remote;	/* all non-local peers together */
	unsigned	 prefix4, prefix6;	/* bits counted per prefix */
};

/* What admit_take decided. */
enum admit_verdict {
	ADMIT_OK,		/* counted: admit_release it once closed */
	ADMIT_PEER_CAP,		/* the address holds per_addr already */
	ADMIT_PREFIX_CAP,	/* its prefix holds per_prefix already */
	ADMIT_REMOTE_CAP,	/* non-local peers hold remote already */
	ADMIT_NOMEM,
};

/* What the next report says: counts since the last one. */
struct admit_pressure {
	uint64_t	 refused[ADMIT_NOMEM + 1];	/* by verdict */
	uint64_t	 shed;		/* closed early to make room */
	uint64_t	 deadline;	/* closed at -request_deadline */
};

struct admit {
	struct admit_limits	 lim;
	struct peercount	*addrs;
	struct peercount	*prefixes;
	size_t			 nremote;	/* counted connections */
	struct admit_pressure	 pending;	/* not yet reported */
	struct event		*report;	/* NULL until admit_attach */
};

/* Set up the tables for these limits; false if out of memory. */
bool admit_init(struct admit *a, const struct admit_limits *lim);
/* Report pressure from base's loop, at most once per ADMIT_REPORT_SEC. */
bool admit_attach(struct admit *a, struct event_base *base);
/* Free the tables and the report timer. */
void admit_free(struct admit *a);
/* May a non-local peer at sa open one more connection? ADMIT_OK counts it. */
enum admit_verdict admit_take(struct admit *a, const struct sockaddr *sa);
/* A counted connection from sa ended, or became a registration. */
void admit_release(struct admit *a, const struct sockaddr *sa);
/* Note connections closed early to make room (shed) or at the deadline. */
void admit_note_shed(struct admit *a, size_t n);
void admit_note_deadline(struct admit *a);
/* Is the all-peers cap reached? */
bool admit_remote_full(const struct admit *a);
/* Write the report's text into buf (for the log, and for tests). */
void admit_format_report(const struct admit *a,
	    const struct admit_pressure *p, char *buf, size_t len);

/* Seconds between two pressure reports. */
#define ADMIT_REPORT_SEC	5
/* Prefixes a report names. */
#define ADMIT_REPORT_TOP	3

#endif
