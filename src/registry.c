/*
 * The node table: a keyed hash table over every record, active or
 * old/unused, plus two lists that give NAMES and DUMP their order.
 */

#include <sys/queue.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "epmd.h"
#include "introspect.h"
#include "registry.h"
#include "siphash.h"

/* First bucket count; a power of two. */
#define REGISTRY_BUCKETS_MIN	64
/* A bump never yields a creation below this (0..3 mean "v5" values). */
#define REGISTRY_CREATION_MIN	4

/*
 * One record in one allocation: the public node, the list and chain
 * links, then name and extra bytes in data[]. A record is on exactly one
 * list, active or unused, so both share one TAILQ entry.
 */
struct record {
	struct node		 node;
	TAILQ_ENTRY(record)	 entry;
	struct record		*hnext;		/* hash chain */
	uint32_t		 hash;
	uint16_t		 cap;		/* bytes in data[] */
	uint8_t			 data[];
};

TAILQ_HEAD(record_list, record);

struct registry {
	struct record		**buckets;
	size_t			  mask;		/* bucket count - 1 */
	size_t			  nrecords;	/* active + unused */
	size_t			  nactive;
	size_t			  nunused;
	size_t			  unused_limit;
	uint32_t		  max_creation;	/* highest handed out */
	uint64_t		  seq;		/* last list entry number */
	uint64_t		  key[2];	/* hash key, random */
	struct record_list	  active;	/* newest first */
	struct record_list	  unused;	/* oldest unregistration first */
};

/* Hash a name with this registry's key. */
static uint32_t
name_hash(const struct registry *reg, const uint8_t *name, size_t len)
{
	uint64_t h = siphash13(reg->key, name, len);

	return (uint32_t)(h ^ (h >> 32));
}

/* The record that holds a public node. */
static struct record *
node_record(struct node *node)
{
	/* Through void *: the record is as aligned as the node inside it. */
	return (struct record *)(void *)((char *)node -
	    offsetof(struct record, node));
}

/* Is this record's name exactly these bytes? */
static bool
record_has_name(const struct record *rec, uint32_t hash,
    const uint8_t *name, size_t len)
{
	if (rec->hash != hash || rec->node.info.name_len != len)
		return false;
	return len == 0 || memcmp(rec->node.info.name, name, len) == 0;
}

/* Find the record, active or unused, with this name. */
static struct record *
table_find(const struct registry *reg, uint32_t hash, const uint8_t *name,
    size_t len)
{
	struct record *rec;

	for (rec = reg->buckets[hash & reg->mask]; rec != NULL;
	    rec = rec->hnext)
		if (record_has_name(rec, hash, name, len))
			return rec;
	return NULL;
}

/* Link a record into its bucket. */
static void
table_insert(struct registry *reg, struct record *rec)
{
	struct record **head = &reg->buckets[rec->hash & reg->mask];

	rec->hnext = *head;
	*head = rec;
	reg->nrecords++;
}

/* Unlink a record from its bucket. */
static void
table_remove(struct registry *reg, struct record *rec)
{
	struct record **pp = &reg->buckets[rec->hash & reg->mask];

	while (*pp != rec)
		pp = &(*pp)->hnext;
	*pp = rec->hnext;
	rec->hnext = NULL;
	reg->nrecords--;
}

/* Double the bucket array; on failure keep the old one (just slower). */
static void
table_grow(struct registry *reg)
{
	struct record	**nb, *rec, *next;
	size_t		  oldn = reg->mask + 1, newn, i;

	if (oldn > SIZE_MAX / 2 / sizeof(*nb))
		return;
	newn = oldn * 2;
	if ((nb = calloc(newn, sizeof(*nb))) == NULL)
		return;
	for (i = 0; i < oldn; i++) {
		for (rec = reg->buckets[i]; rec != NULL; rec = next) {
			next = rec->hnext;
			rec->hnext = nb[rec->hash & (newn - 1)];
			nb[rec->hash & (newn - 1)] = rec;
		}
	}
	free(reg->buckets);
	reg->buckets = nb;
	reg->mask = newn - 1;
}

/* Allocate a record with room for this name and extra; name copied. */
static struct record *
record_alloc(const uint8_t *name, size_t name_len, size_t extra_len,
    uint32_t hash)
{
	struct record	*rec;
	size_t		 cap = name_len + extra_len;

	/* Both are <= EPMD_MAXSYMLEN, checked by the caller. */
	if ((rec = calloc(1, sizeof(*rec) + cap)) == NULL)
		return NULL;
	rec->cap = (uint16_t)cap;
	rec->hash = hash;
	if (name_len > 0)
		memcpy(rec->data, name, name_len);
	rec->node.info.name = rec->data;
	rec->node.info.name_len = name_len;
	rec->node.fd = -1;
	return rec;
}

/* Next creation after c: one more, and never below 4. */
static uint32_t
creation_bump(uint32_t c)
{
	c++;
	if (c < REGISTRY_CREATION_MIN)
		c = REGISTRY_CREATION_MIN;
	return c;
}

/* Free the oldest old/unused record; its counter is not handed on. */
static void
evict_oldest(struct registry *reg)
{
	struct record *rec = TAILQ_FIRST(&reg->unused);

	if (rec == NULL)
		return;
	TAILQ_REMOVE(&reg->unused, rec, entry);
	reg->nunused--;
	table_remove(reg, rec);
	free(rec);
}

/* Evict the oldest old/unused records until the history fits its limit. */
static void
trim_unused(struct registry *reg)
{
	while (reg->nunused > reg->unused_limit)
		evict_oldest(reg);
}

/*
 * Take an old/unused record back for a new registration, moving it to a
 * larger allocation if the new extra does not fit. Returns the record,
 * off the unused list, or NULL (registry unchanged) if out of memory.
 */
static struct record *
reclaim_unused(struct registry *reg, struct record *rec, size_t extra_len)
{
	struct record	*big;
	size_t		 name_len = rec->node.info.name_len;

	if (name_len + extra_len > rec->cap) {
		big = record_alloc(rec->node.info.name, name_len, extra_len,
		    rec->hash);
		if (big == NULL)
			return NULL;
		big->node.creation = rec->node.creation;
		table_remove(reg, rec);
		TAILQ_REMOVE(&reg->unused, rec, entry);
		free(rec);
		table_insert(reg, big);
		reg->nunused--;
		return big;
	}
	TAILQ_REMOVE(&reg->unused, rec, entry);
	reg->nunused--;
	return rec;
}

/* Create a record for a name never seen (or evicted), with its creation. */
static struct record *
create_fresh(struct registry *reg, const struct proto_alive2 *req,
    uint32_t hash, uint32_t now)
{
	struct record	*rec;
	uint32_t	 base;

	rec = record_alloc(req->name, req->name_len, req->extra_len, hash);
	if (rec == NULL)
		return NULL;
	/* Above every creation ever given: evicted names cannot repeat. */
	base = now > reg->max_creation ? now : reg->max_creation;
	rec->node.creation = creation_bump(base);
	table_insert(reg, rec);
	if (reg->nrecords > reg->mask + 1)
		table_grow(reg);
	return rec;
}

/* A new empty registry keeping at most unused_limit old records. */
struct registry *
registry_new(size_t unused_limit)
{
	struct registry *reg;

	if ((reg = calloc(1, sizeof(*reg))) == NULL)
		return NULL;
	reg->buckets = calloc(REGISTRY_BUCKETS_MIN, sizeof(*reg->buckets));
	if (reg->buckets == NULL) {
		free(reg);
		return NULL;
	}
	reg->mask = REGISTRY_BUCKETS_MIN - 1;
	/* At least one: the node just unregistered must outlive the call. */
	reg->unused_limit = unused_limit > 0 ? unused_limit : 1;
	TAILQ_INIT(&reg->active);
	TAILQ_INIT(&reg->unused);
	siphash_seed(reg->key);
	return reg;
}

/* Free every record on a list. */
static void
free_list(struct record_list *list)
{
	struct record *rec;

	while ((rec = TAILQ_FIRST(list)) != NULL) {
		TAILQ_REMOVE(list, rec, entry);
		free(rec);
	}
}

/* Free the registry and every record in it. */
void
registry_free(struct registry *reg)
{
	if (reg == NULL)
		return;
	free_list(&reg->active);
	free_list(&reg->unused);
	free(reg->buckets);
	free(reg);
}

/* Register a node now (Unix time); on success *out is the active record. */
enum registry_result
registry_register(struct registry *reg, const struct proto_alive2 *req,
    int fd, void *handle, uint32_t now, struct node **out)
{
	struct record	*rec;
	struct node	*node;
	uint32_t	 hash;

	if (!proto_name_valid(req->name, req->name_len))
		return REGISTRY_BAD_NAME;
	if (req->extra_len > EPMD_MAXSYMLEN)
		return REGISTRY_BAD_EXTRA;

	hash = name_hash(reg, req->name, req->name_len);
	rec = table_find(reg, hash, req->name, req->name_len);
	if (rec != NULL && rec->node.active)
		return REGISTRY_DUPLICATE;

	if (rec != NULL) {
		if ((rec = reclaim_unused(reg, rec, req->extra_len)) == NULL)
			return REGISTRY_NOMEM;
		rec->node.creation = creation_bump(rec->node.creation);
	} else if ((rec = create_fresh(reg, req, hash, now)) == NULL)
		return REGISTRY_NOMEM;

	node = &rec->node;
	node->info.port = req->port;
	node->info.node_type = req->node_type;
	node->info.protocol = req->protocol;
	node->info.high = req->high;
	node->info.low = req->low;
	node->info.extra = rec->data + node->info.name_len;
	node->info.extra_len = req->extra_len;
	if (req->extra_len > 0)
		memcpy(rec->data + node->info.name_len, req->extra,
		    req->extra_len);
	node->fd = fd;
	node->handle = handle;
	node->active = true;
	if (node->creation > reg->max_creation)
		reg->max_creation = node->creation;

	rec->node.seq = ++reg->seq;	/* the active list is newest first */
	TAILQ_INSERT_HEAD(&reg->active, rec, entry);
	reg->nactive++;
	if (out != NULL)
		*out = node;
	return REGISTRY_OK;
}

/* Move an active node to the old/unused history. */
void
registry_unregister(struct registry *reg, struct node *node)
{
	struct record *rec;

	if (node == NULL || !node->active)
		return;
	rec = node_record(node);
	TAILQ_REMOVE(&reg->active, rec, entry);
	reg->nactive--;
	node->active = false;
	node->handle = NULL;
	rec->node.seq = ++reg->seq;	/* the unused list is oldest first */
	TAILQ_INSERT_TAIL(&reg->unused, rec, entry);
	reg->nunused++;
	/*
	 * Unlike the reference, which evicts only when a new name registers
	 * (so names that come and go grow the history without bound), the
	 * history never holds more than its limit. This record is the
	 * newest, so it is never the one evicted.
	 */
	trim_unused(reg);
}

/* Link a restored record into its list, keeping the list in seq order. */
static void
list_insert_ordered(struct registry *reg, struct record *rec)
{
	struct record	*at;
	uint64_t	 seq = rec->node.seq;

	/* Records come back in either list order: both ends are O(1). */
	if (rec->node.active) {
		/* Newest first: descending seq. */
		at = TAILQ_FIRST(&reg->active);
		if (at == NULL || at->node.seq < seq)
			TAILQ_INSERT_HEAD(&reg->active, rec, entry);
		else {
			TAILQ_FOREACH_REVERSE(at, &reg->active, record_list,
			    entry)
				if (at->node.seq > seq)
					break;
			/* The head is newer, so the scan stops by it. */
			if (at == NULL)
				TAILQ_INSERT_HEAD(&reg->active, rec, entry);
			else
				TAILQ_INSERT_AFTER(&reg->active, at, rec,
				    entry);
		}
		reg->nactive++;
	} else {
		/* Oldest unregistration first: ascending seq. */
		at = TAILQ_LAST(&reg->unused, record_list);
		if (at == NULL || at->node.seq < seq)
			TAILQ_INSERT_TAIL(&reg->unused, rec, entry);
		else {
			TAILQ_FOREACH(at, &reg->unused, entry)
				if (at->node.seq > seq)
					break;
			/* The tail is newer, so the scan stops by it. */
			if (at == NULL)
				TAILQ_INSERT_TAIL(&reg->unused, rec, entry);
			else
				TAILQ_INSERT_BEFORE(at, rec, entry);
		}
		reg->nunused++;
	}
}

/* Put back a record saved before a restart, with its creation and seq. */
enum registry_result
registry_restore(struct registry *reg, const struct proto_alive2 *info,
    uint32_t creation, uint64_t seq, bool active, int fd, void *handle,
    struct node **out)
{
	struct record	*rec;
	struct node	*node;
	uint32_t	 hash;

	if (!proto_name_valid(info->name, info->name_len))
		return REGISTRY_BAD_NAME;
	if (info->extra_len > EPMD_MAXSYMLEN)
		return REGISTRY_BAD_EXTRA;
	hash = name_hash(reg, info->name, info->name_len);
	if (table_find(reg, hash, info->name, info->name_len) != NULL)
		return REGISTRY_DUPLICATE;
	rec = record_alloc(info->name, info->name_len, info->extra_len, hash);
	if (rec == NULL)
		return REGISTRY_NOMEM;
	node = &rec->node;
	node->info = *info;
	node->info.name = rec->data;
	node->info.extra = rec->data + info->name_len;
	if (info->extra_len > 0)
		memcpy(rec->data + info->name_len, info->extra,
		    info->extra_len);
	node->creation = creation;
	node->fd = fd;
	node->handle = active ? handle : NULL;
	node->seq = seq;
	node->active = active;
	table_insert(reg, rec);
	if (reg->nrecords > reg->mask + 1)
		table_grow(reg);
	list_insert_ordered(reg, rec);
	if (creation > reg->max_creation)
		reg->max_creation = creation;
	if (seq > reg->seq)
		reg->seq = seq;
	/* A saved history larger than this run's limit (say, -d added). */
	if (!active && reg->nunused > reg->unused_limit) {
		if (TAILQ_FIRST(&reg->unused) == rec)
			node = NULL;	/* the oldest of all: not kept */
		trim_unused(reg);
	}
	if (out != NULL)
		*out = node;
	return REGISTRY_OK;
}

/* Put back the counters: highest creation handed out, last seq. */
void
registry_restore_counters(struct registry *reg, uint32_t max_creation,
    uint64_t seq)
{
	/* Never lower: a creation or seq once used stays used. */
	if (max_creation > reg->max_creation)
		reg->max_creation = max_creation;
	if (seq > reg->seq)
		reg->seq = seq;
}

/* The highest creation handed out. */
uint32_t
registry_max_creation(const struct registry *reg)
{
	return reg->max_creation;
}

/* The seq of the last list entry. */
uint64_t
registry_seq(const struct registry *reg)
{
	return reg->seq;
}

/* The active node of that name (byte-exact), or NULL. */
struct node *
registry_lookup(const struct registry *reg, const uint8_t *name, size_t len)
{
	struct record	*rec;

	rec = table_find(reg, name_hash(reg, name, len), name, len);
	if (rec == NULL || !rec->node.active)
		return NULL;
	return &rec->node;
}

/* Number of active nodes. */
size_t
registry_count(const struct registry *reg)
{
	return reg->nactive;
}

/* Number of old/unused records. */
size_t
registry_unused_count(const struct registry *reg)
{
	return reg->nunused;
}

/* Active nodes with seq below before (UINT64_MAX: all), newest first. */
bool
registry_walk_active(const struct registry *reg, uint64_t before,
    registry_walk_fn fn, void *arg)
{
	const struct record *rec;

	TAILQ_FOREACH(rec, &reg->active, entry) {
		if (rec->node.seq >= before)
			continue;	/* listed already, or newer than the walk */
		if (!fn(&rec->node, arg))
			return false;
	}
	return true;
}

/* Old/unused records with seq above after (0: all), oldest first. */
bool
registry_walk_unused(const struct registry *reg, uint64_t after,
    registry_walk_fn fn, void *arg)
{
	const struct record *rec;

	TAILQ_FOREACH(rec, &reg->unused, entry) {
		if (rec->node.seq <= after)
			continue;
		if (!fn(&rec->node, arg))
			return false;
	}
	return true;
}
