/* The log's bounded queue of rendered records; see logq.h. */
#include <stdlib.h>
#include <string.h>

#include "logq.h"

/* An empty queue with no drops counted. */
void
logq_init(struct logq *q)
{
	memset(q, 0, sizeof(*q));
}

/* Remove the head record, written or not. */
static void
pop(struct logq *q)
{
	struct logq_rec *r = &q->rec[q->head];

	q->bytes -= r->len;
	free(r->data);
	r->data = NULL;
	r->len = 0;
	q->head = (q->head + 1) % LOGQ_MAX_RECORDS;
	q->count--;
	q->off = 0;
}

/* Free every record held; they are not counted as drops. */
void
logq_clear(struct logq *q)
{
	while (q->count > 0)
		pop(q);
	q->head = 0;
}

/* Would a record of len bytes fit now? */
bool
logq_fits(const struct logq *q, size_t len)
{
	return q->count < LOGQ_MAX_RECORDS && len <= LOGQ_MAX_BYTES &&
	    q->bytes <= LOGQ_MAX_BYTES - len;
}

/* Count one message dropped. */
void
logq_drop(struct logq *q)
{
	q->dropped_total++;
	q->dropped_pending++;
}

/* Copy a record in at the tail; false if it did not fit (counted). */
bool
logq_push(struct logq *q, const void *data, size_t len)
{
	struct logq_rec	*r;
	char		*copy;

	if (len == 0)
		return true;
	if (!logq_fits(q, len) || (copy = malloc(len)) == NULL) {
		logq_drop(q);
		return false;
	}
	memcpy(copy, data, len);
	r = &q->rec[(q->head + q->count) % LOGQ_MAX_RECORDS];
	r->data = copy;
	r->len = len;
	q->count++;
	q->bytes += len;
	return true;
}

/* Is nothing queued? */
bool
logq_empty(const struct logq *q)
{
	return q->count == 0;
}

/* Records held. */
size_t
logq_count(const struct logq *q)
{
	return q->count;
}

/* The unwritten bytes of the oldest record, or NULL if empty. */
const char *
logq_head(const struct logq *q, size_t *len)
{
	const struct logq_rec *r;

	if (q->count == 0) {
		*len = 0;
		return NULL;
	}
	r = &q->rec[q->head];
	*len = r->len - q->off;
	return r->data + q->off;
}

/* n bytes of the head were written; the record goes once all of it has. */
void
logq_consume(struct logq *q, size_t n)
{
	if (q->count == 0)
		return;
	q->off += n;
	if (q->off >= q->rec[q->head].len)
		pop(q);
}

/* The sink refused the head for good: drop it (counted). */
void
logq_drop_head(struct logq *q)
{
	if (q->count == 0)
		return;
	pop(q);
	logq_drop(q);
}

/* Pending drops if a notice of reserve bytes fits now, and reset them. */
uint64_t
logq_take_notice(struct logq *q, size_t reserve)
{
	uint64_t n = q->dropped_pending;

	if (n == 0 || !logq_fits(q, reserve))
		return 0;
	q->dropped_pending = 0;
	return n;
}

/* Every message dropped since logq_init. */
uint64_t
logq_dropped_total(const struct logq *q)
{
	return q->dropped_total;
}
