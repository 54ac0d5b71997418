/*
 * The log's bounded queue: rendered records (a syslog datagram, a journal
 * datagram, a stderr line) waiting for a sink that would block. Pure: no
 * I/O, no libevent. At most LOGQ_MAX_RECORDS records and LOGQ_MAX_BYTES
 * bytes are held; what does not fit is dropped and counted, and the count
 * is handed out once for a "dropped N messages" notice when room is back.
 */
#ifndef LOGQ_H
#define LOGQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The bounds: whichever is reached first. */
#define LOGQ_MAX_RECORDS	256
#define LOGQ_MAX_BYTES		(64 * 1024)

/* One record, copied at push. */
struct logq_rec {
	char	*data;
	size_t	 len;
};

struct logq {
	struct logq_rec	 rec[LOGQ_MAX_RECORDS];
	size_t		 head;		/* index of the oldest record */
	size_t		 count;		/* records held */
	size_t		 bytes;		/* bytes held, written or not */
	size_t		 off;		/* bytes of the head already written */
	uint64_t	 dropped_total;	/* every drop since logq_init */
	uint64_t	 dropped_pending; /* drops not yet in a notice */
};

/* An empty queue with no drops counted. */
void logq_init(struct logq *q);
/* Free every record held; they are not counted as drops. */
void logq_clear(struct logq *q);
/* Would a record of len bytes fit now? */
bool logq_fits(const struct logq *q, size_t len);
/* Copy a record in at the tail; false if it did not fit (counted). */
bool logq_push(struct logq *q, const void *data, size_t len);
/* Count one message dropped without being queued (the sink is gone). */
void logq_drop(struct logq *q);
/* Is nothing queued? */
bool logq_empty(const struct logq *q);
/* Records held. */
size_t logq_count(const struct logq *q);
/* The unwritten bytes of the oldest record, or NULL if empty. */
const char *logq_head(const struct logq *q, size_t *len);
/* n bytes of the head were written; the record goes once all of it has. */
void logq_consume(struct logq *q, size_t n);
/* The sink refused the head for good: drop it (counted). */
void logq_drop_head(struct logq *q);
/*
 * Drops waiting for a notice, if a notice of reserve bytes fits now; the
 * pending count is then reset (the caller queues the notice). 0 otherwise.
 */
uint64_t logq_take_notice(struct logq *q, size_t reserve);
/* Every message dropped since logq_init. */
uint64_t logq_dropped_total(const struct logq *q);

#endif
