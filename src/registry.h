/* The node table: active registrations and the old/unused history. */
#ifndef REGISTRY_H
#define REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct registry;

/* One node record, active or old/unused. Read-only outside registry.c. */
struct node {
	struct proto_alive2	 info;	/* name and extra point into this record */
	uint32_t		 creation;	/* the last creation handed out */
	int			 fd;		/* connection fd, shown by DUMP */
	void			*handle;	/* the owner's connection, opaque */
	uint64_t		 seq;		/* when it entered its list */
	bool			 active;
};

enum registry_result {
	REGISTRY_OK,
	REGISTRY_BAD_NAME,	/* invalid UTF-8, too long, or NUL */
	REGISTRY_BAD_EXTRA,	/* extra longer than 1020 bytes */
	REGISTRY_DUPLICATE,	/* an active node has that name */
	REGISTRY_NOMEM,
};

/*
 * A new empty registry keeping at most unused_limit old records (at least
 * one): once the history is full, the oldest record is dropped whenever
 * another joins it.
 */
struct registry *registry_new(size_t unused_limit);
/* Free the registry and every record in it. */
void registry_free(struct registry *reg);

/* Register a node now (Unix time); on success *out is the active record. */
enum registry_result registry_register(struct registry *reg,
	    const struct proto_alive2 *req, int fd, void *handle,
	    uint32_t now, struct node **out);
/*
 * Move an active node to the old/unused history, evicting the oldest
 * record if the history is then over its limit. The node stays valid
 * until the registry next changes.
 */
void registry_unregister(struct registry *reg, struct node *node);
/* The active node of that name (byte-exact), or NULL. */
struct node *registry_lookup(const struct registry *reg,
	    const uint8_t *name, size_t len);

/*
 * Put back a record saved before a restart (src/state.c), active or
 * old/unused, with its creation and list position (seq) as they were. The
 * name must not be in the table yet. Restore every record, then the
 * counters, before registering anything new. An old/unused record beyond
 * the history limit evicts the oldest; if that is the record itself, the
 * result is still REGISTRY_OK but *out is NULL.
 */
enum registry_result registry_restore(struct registry *reg,
	    const struct proto_alive2 *info, uint32_t creation, uint64_t seq,
	    bool active, int fd, void *handle, struct node **out);
/* Put back the counters: highest creation handed out, last seq. */
void registry_restore_counters(struct registry *reg, uint32_t max_creation,
	    uint64_t seq);
/* The highest creation handed out, and the last seq (for state.c). */
uint32_t registry_max_creation(const struct registry *reg);
uint64_t registry_seq(const struct registry *reg);

/* Number of active nodes. */
size_t registry_count(const struct registry *reg);

/*
 * Resumable walks for listings written piece by piece: fn returns false to
 * stop; the walk returns true once it reached the end. A caller resumes
 * from the seq of the last node it saw, so records that come or go in
 * between are simply seen or not, never twice.
 */
typedef bool (*registry_walk_fn)(const struct node *node, void *arg);
/* Active nodes with seq below before (UINT64_MAX: all), newest first. */
bool registry_walk_active(const struct registry *reg, uint64_t before,
	    registry_walk_fn fn, void *arg);
/* Old/unused records with seq above after (0: all), oldest first. */
bool registry_walk_unused(const struct registry *reg, uint64_t after,
	    registry_walk_fn fn, void *arg);

#endif
