/*
 * The registry saved across a restart: a versioned, checksummed binary
 * blob (format in doc/state-format.md). Pure: no I/O, no libevent.
 */
#ifndef STATE_H
#define STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct registry;
struct node;

#define STATE_MAGIC		"EPMDCSTA"	/* 8 bytes, no NUL */
#define STATE_VERSION		1
#define STATE_HEADER_SIZE	48
#define STATE_RECORD_HEADER	36
/* Limits a decoder enforces before it allocates anything. */
#define STATE_MAX_ACTIVE	1048576
#define STATE_MAX_UNUSED	65536
#define STATE_MAX_SIZE		((size_t)64 << 20)
/* The connection id of a record with no connection (old/unused). */
#define STATE_NO_CONN		UINT32_MAX

enum state_error {
	STATE_OK = 0,
	STATE_ERR_TRUNCATED,	/* shorter than its header or its length */
	STATE_ERR_MAGIC,	/* not a state blob */
	STATE_ERR_VERSION,	/* a version this build does not read */
	STATE_ERR_LENGTH,	/* length field differs from the blob */
	STATE_ERR_TOO_LARGE,	/* above STATE_MAX_SIZE or a count limit */
	STATE_ERR_CHECKSUM,	/* CRC-32 mismatch */
	STATE_ERR_RECORD,	/* a record runs past the end or is malformed */
	STATE_ERR_NAME,		/* a name the registry would not take */
	STATE_ERR_DUPLICATE,	/* two records with one name, or one conn id */
	STATE_ERR_ORDER,	/* seq out of order or above the counter */
	STATE_ERR_CREATION,	/* a creation above the recorded maximum */
	STATE_ERR_TRAILING,	/* bytes after the last record */
	STATE_ERR_NOMEM,
};

/* One decoded record; info.name and info.extra point into the blob. */
struct state_node {
	struct proto_alive2	 info;
	uint32_t		 creation;
	int32_t			 fd;	/* as DUMP showed it before the restart */
	uint32_t		 conn;	/* connection id, STATE_NO_CONN if none */
	uint64_t		 seq;
	bool			 active;
};

/* A decoded blob: active records newest first, then old/unused oldest first. */
struct state {
	uint32_t		 max_creation;
	uint64_t		 seq;
	uint32_t		 restarts;	/* restarts that kept the registry */
	size_t			 nactive;
	size_t			 nunused;
	struct state_node	*nodes;		/* nactive + nunused */
};

/* The connection id of an active node, for the encoder. */
typedef uint32_t (*state_conn_fn)(const struct node *node, void *arg);

/* Encode the registry into a new malloc'ed blob; NULL if out of memory or
 * above the limits. */
uint8_t *state_encode(const struct registry *reg, uint32_t restarts,
	    state_conn_fn conn, void *arg, size_t *len);
/* Decode and check a whole blob; on STATE_OK fill st (free with
 * state_free). The blob must outlive st. */
enum state_error state_decode(const uint8_t *blob, size_t len,
	    struct state *st);
/* Free what state_decode allocated. */
void state_free(struct state *st);
/*
 * The restorer's view of connections: adopt returns the handle of an active
 * record's connection and sets *fd (NULL: the connection is gone, and the
 * record goes to old/unused at once); bind then tells the handle its node
 * (NULL if the registry could not take it: the handle must be dropped).
 */
typedef void *(*state_adopt_fn)(const struct state_node *sn, int *fd,
	    void *arg);
typedef void (*state_bind_fn)(void *handle, struct node *node, void *arg);
/*
 * Put every decoded record back into an empty registry, counters first.
 * With adopt NULL, active records come back with no handle. Returns the
 * number of active nodes restored.
 */
size_t state_restore(const struct state *st, struct registry *reg,
	    state_adopt_fn adopt, state_bind_fn bind, void *arg);
/* A short text for a decode error, for logs. */
const char *state_strerror(enum state_error err);
/* CRC-32 (IEEE 802.3, as zlib's crc32) of a byte range. */
uint32_t state_crc32(const uint8_t *p, size_t len);

#endif
