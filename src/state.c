/*
 * The registry saved across a restart: encoder, validating decoder and
 * restorer. The layout is an interface between two versions of the daemon;
 * doc/state-format.md describes it and STATE_VERSION names it.
 */
#include <stdlib.h>
#include <string.h>

#include "epmd.h"
#include "proto.h"
#include "registry.h"
#include "state.h"

#define KIND_ACTIVE	1
#define KIND_UNUSED	2

/* Where the CRC starts: everything after the CRC field itself. */
#define CRC_OFFSET	20

/* Write a big-endian 16-bit integer. */
static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Write a big-endian 32-bit integer. */
static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Write a big-endian 64-bit integer. */
static void
put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

/* Read a big-endian 16-bit integer. */
static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

/* Read a big-endian 32-bit integer. */
static uint32_t
get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	    ((uint32_t)p[2] << 8) | p[3];
}

/* Read a big-endian 64-bit integer. */
static uint64_t
get64(const uint8_t *p)
{
	return ((uint64_t)get32(p) << 32) | get32(p + 4);
}

/* CRC-32 (IEEE 802.3, reflected, as zlib's crc32) of a byte range. */
uint32_t
state_crc32(const uint8_t *p, size_t len)
{
	static uint32_t	table[256];
	static int	ready;
	uint32_t	crc = 0xffffffffu, c;
	size_t		i;
	int		k;

	if (!ready) {
		for (i = 0; i < 256; i++) {
			c = (uint32_t)i;
			for (k = 0; k < 8; k++)
				c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
			table[i] = c;
		}
		ready = 1;
	}
	for (i = 0; i < len; i++)
		crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return crc ^ 0xffffffffu;
}

/* What the encoder is building: the blob and where the next record goes. */
struct encoder {
	uint8_t		*buf;
	size_t		 size;		/* pass 1: bytes needed */
	size_t		 off;		/* pass 2: bytes written */
	size_t		 nactive;
	size_t		 nunused;
	state_conn_fn	 conn;
	void		*arg;
};

/* Pass 1: count one record's bytes. */
static bool
measure(const struct node *node, void *arg)
{
	struct encoder *e = arg;

	e->size += STATE_RECORD_HEADER + node->info.name_len +
	    node->info.extra_len;
	if (node->active)
		e->nactive++;
	else
		e->nunused++;
	return true;
}

/* Pass 2: write one record. */
static bool
emit(const struct node *node, void *arg)
{
	struct encoder		*e = arg;
	const struct proto_alive2 *i = &node->info;
	uint8_t			*p = e->buf + e->off;

	memset(p, 0, STATE_RECORD_HEADER);
	p[0] = node->active ? KIND_ACTIVE : KIND_UNUSED;
	p[1] = i->node_type;
	p[2] = i->protocol;
	put16(p + 4, i->port);
	put16(p + 6, i->high);
	put16(p + 8, i->low);
	put16(p + 10, (uint16_t)i->name_len);
	put16(p + 12, (uint16_t)i->extra_len);
	put32(p + 16, node->creation);
	put32(p + 20, (uint32_t)node->fd);
	put32(p + 24, node->active && e->conn != NULL ?
	    e->conn(node, e->arg) : STATE_NO_CONN);
	put64(p + 28, node->seq);
	p += STATE_RECORD_HEADER;
	if (i->name_len > 0)
		memcpy(p, i->name, i->name_len);
	if (i->extra_len > 0)
		memcpy(p + i->name_len, i->extra, i->extra_len);
	e->off += STATE_RECORD_HEADER + i->name_len + i->extra_len;
	return true;
}

/* Encode the registry into a new malloc'ed blob. */
uint8_t *
state_encode(const struct registry *reg, uint32_t restarts,
    state_conn_fn conn, void *arg, size_t *len)
{
	struct encoder	 e = { .size = STATE_HEADER_SIZE, .conn = conn,
	    .arg = arg };
	uint8_t		*h;

	registry_walk_active(reg, UINT64_MAX, measure, &e);
	registry_walk_unused(reg, 0, measure, &e);
	if (e.size > STATE_MAX_SIZE || e.nactive > STATE_MAX_ACTIVE ||
	    e.nunused > STATE_MAX_UNUSED)
		return NULL;
	if ((e.buf = malloc(e.size)) == NULL)
		return NULL;
	h = e.buf;
	memset(h, 0, STATE_HEADER_SIZE);
	memcpy(h, STATE_MAGIC, 8);
	put16(h + 8, STATE_VERSION);
	put32(h + 12, (uint32_t)e.size);
	put32(h + 20, (uint32_t)e.nactive);
	put32(h + 24, (uint32_t)e.nunused);
	put32(h + 28, registry_max_creation(reg));
	put64(h + 32, registry_seq(reg));
	put32(h + 40, restarts);
	e.off = STATE_HEADER_SIZE;
	registry_walk_active(reg, UINT64_MAX, emit, &e);
	registry_walk_unused(reg, 0, emit, &e);
	put32(h + 16, state_crc32(h + CRC_OFFSET, e.size - CRC_OFFSET));
	*len = e.size;
	return e.buf;
}

/* Parse one record at *off into sn; advances *off. */
static enum state_error
parse_record(const uint8_t *blob, size_t len, size_t *off, bool active,
    struct state_node *sn)
{
	const uint8_t	*p = blob + *off;
	size_t		 nlen, elen;

	if (len - *off < STATE_RECORD_HEADER)
		return STATE_ERR_RECORD;
	if (p[0] != (active ? KIND_ACTIVE : KIND_UNUSED) || p[3] != 0 ||
	    get16(p + 14) != 0)
		return STATE_ERR_RECORD;
	nlen = get16(p + 10);
	elen = get16(p + 12);
	if (nlen > EPMD_MAXSYMLEN || elen > EPMD_MAXSYMLEN ||
	    len - *off - STATE_RECORD_HEADER < nlen + elen)
		return STATE_ERR_RECORD;
	memset(sn, 0, sizeof(*sn));
	sn->active = active;
	sn->info.node_type = p[1];
	sn->info.protocol = p[2];
	sn->info.port = get16(p + 4);
	sn->info.high = get16(p + 6);
	sn->info.low = get16(p + 8);
	sn->creation = get32(p + 16);
	sn->fd = (int32_t)get32(p + 20);
	sn->conn = get32(p + 24);
	sn->seq = get64(p + 28);
	sn->info.name = p + STATE_RECORD_HEADER;
	sn->info.name_len = nlen;
	sn->info.extra = sn->info.name + nlen;
	sn->info.extra_len = elen;
	if (!proto_name_valid(sn->info.name, nlen))
		return STATE_ERR_NAME;
	/* An active record has a connection; an old one has none. */
	if (active != (sn->conn != STATE_NO_CONN))
		return STATE_ERR_RECORD;
	*off += STATE_RECORD_HEADER + nlen + elen;
	return STATE_OK;
}

/* Order records by name bytes, for the duplicate check. */
static int
cmp_name(const void *a, const void *b)
{
	const struct state_node *x = *(const struct state_node *const *)a;
	const struct state_node *y = *(const struct state_node *const *)b;
	size_t	n = x->info.name_len < y->info.name_len ? x->info.name_len :
	    y->info.name_len;
	int	r = n > 0 ? memcmp(x->info.name, y->info.name, n) : 0;

	if (r != 0)
		return r;
	return x->info.name_len < y->info.name_len ? -1 :
	    x->info.name_len > y->info.name_len;
}

/* Order active records by connection id, for the duplicate check. */
static int
cmp_conn(const void *a, const void *b)
{
	uint32_t x = (*(const struct state_node *const *)a)->conn;
	uint32_t y = (*(const struct state_node *const *)b)->conn;

	return x < y ? -1 : x > y;
}

/* No two records share a name, no two active ones a connection id. */
static enum state_error
check_unique(struct state *st)
{
	size_t			  n = st->nactive + st->nunused, i;
	const struct state_node	**v;
	enum state_error	  err = STATE_OK;

	if (n < 2)
		return STATE_OK;
	if ((v = calloc(n, sizeof(*v))) == NULL)
		return STATE_ERR_NOMEM;
	for (i = 0; i < n; i++)
		v[i] = &st->nodes[i];
	qsort(v, n, sizeof(*v), cmp_name);
	for (i = 1; i < n && err == STATE_OK; i++)
		if (cmp_name(&v[i - 1], &v[i]) == 0)
			err = STATE_ERR_DUPLICATE;
	if (err == STATE_OK && st->nactive > 1) {
		/* The name sort mixed the lists: take the actives again. */
		for (i = 0; i < st->nactive; i++)
			v[i] = &st->nodes[i];
		qsort(v, st->nactive, sizeof(*v), cmp_conn);
		for (i = 1; i < st->nactive && err == STATE_OK; i++)
			if (v[i - 1]->conn == v[i]->conn)
				err = STATE_ERR_DUPLICATE;
	}
	free(v);
	return err;
}

/* Check the header; on success the counts are in st. */
static enum state_error
check_header(const uint8_t *blob, size_t len, struct state *st)
{
	size_t	total, nact, nun;

	if (len < STATE_HEADER_SIZE)
		return len >= 8 && memcmp(blob, STATE_MAGIC, 8) != 0 ?
		    STATE_ERR_MAGIC : STATE_ERR_TRUNCATED;
	if (memcmp(blob, STATE_MAGIC, 8) != 0)
		return STATE_ERR_MAGIC;
	if (get16(blob + 8) != STATE_VERSION || get16(blob + 10) != 0)
		return STATE_ERR_VERSION;
	total = get32(blob + 12);
	if (total > STATE_MAX_SIZE || len > STATE_MAX_SIZE)
		return STATE_ERR_TOO_LARGE;
	if (total > len)
		return STATE_ERR_TRUNCATED;
	if (total != len || total < STATE_HEADER_SIZE)
		return STATE_ERR_LENGTH;
	if (state_crc32(blob + CRC_OFFSET, len - CRC_OFFSET) !=
	    get32(blob + 16))
		return STATE_ERR_CHECKSUM;
	if (get32(blob + 44) != 0)
		return STATE_ERR_RECORD;
	nact = get32(blob + 20);
	nun = get32(blob + 24);
	if (nact > STATE_MAX_ACTIVE || nun > STATE_MAX_UNUSED)
		return STATE_ERR_TOO_LARGE;
	/* Every record takes at least its header: no count outgrows len. */
	if ((nact + nun) > (len - STATE_HEADER_SIZE) / STATE_RECORD_HEADER)
		return STATE_ERR_RECORD;
	st->nactive = nact;
	st->nunused = nun;
	st->max_creation = get32(blob + 28);
	st->seq = get64(blob + 32);
	st->restarts = get32(blob + 40);
	return STATE_OK;
}

/* Seq order within each list, every seq within the counter, creations
 * within the maximum. */
static enum state_error
check_order(const struct state *st)
{
	size_t i, n = st->nactive + st->nunused;

	for (i = 0; i < n; i++) {
		const struct state_node *sn = &st->nodes[i];

		if (sn->seq == 0 || sn->seq > st->seq)
			return STATE_ERR_ORDER;
		if (sn->creation > st->max_creation)
			return STATE_ERR_CREATION;
		if (i == 0 || i == st->nactive)
			continue;
		/* Active: newest first. Unused: oldest first. */
		if (i < st->nactive ? sn->seq >= sn[-1].seq :
		    sn->seq <= sn[-1].seq)
			return STATE_ERR_ORDER;
	}
	return STATE_OK;
}

/* Decode and check a whole blob. */
enum state_error
state_decode(const uint8_t *blob, size_t len, struct state *st)
{
	enum state_error	err;
	size_t			off = STATE_HEADER_SIZE, i, n;

	memset(st, 0, sizeof(*st));
	if ((err = check_header(blob, len, st)) != STATE_OK)
		goto fail;
	n = st->nactive + st->nunused;
	if (n > 0 && (st->nodes = calloc(n, sizeof(*st->nodes))) == NULL) {
		err = STATE_ERR_NOMEM;
		goto fail;
	}
	for (i = 0; i < n; i++) {
		err = parse_record(blob, len, &off, i < st->nactive,
		    &st->nodes[i]);
		if (err != STATE_OK)
			goto fail;
	}
	if (off != len) {
		err = STATE_ERR_TRAILING;
		goto fail;
	}
	if ((err = check_order(st)) != STATE_OK ||
	    (err = check_unique(st)) != STATE_OK)
		goto fail;
	return STATE_OK;
fail:
	state_free(st);
	return err;
}

/* Free what state_decode allocated. */
void
state_free(struct state *st)
{
	free(st->nodes);
	memset(st, 0, sizeof(*st));
}

/* Put every decoded record back into an empty registry, counters first. */
size_t
state_restore(const struct state *st, struct registry *reg,
    state_adopt_fn adopt, state_bind_fn bind, void *arg)
{
	size_t		 i, restored = 0;
	struct node	*node;

	registry_restore_counters(reg, st->max_creation, st->seq);
	/* Old/unused first: a node found gone joins the history after them. */
	for (i = st->nactive; i < st->nactive + st->nunused; i++) {
		const struct state_node *sn = &st->nodes[i];

		(void)registry_restore(reg, &sn->info, sn->creation, sn->seq,
		    false, sn->fd, NULL, NULL);
	}
	/* Oldest active first, so nodes found gone leave in that order. */
	for (i = st->nactive; i-- > 0;) {
		const struct state_node	*sn = &st->nodes[i];
		void			*handle = NULL;
		int			 fd = sn->fd;

		if (adopt != NULL)
			handle = adopt(sn, &fd, arg);
		if (registry_restore(reg, &sn->info, sn->creation, sn->seq,
		    true, fd, handle, &node) != REGISTRY_OK) {
			if (bind != NULL && handle != NULL)
				bind(handle, NULL, arg);
			continue;
		}
		if (adopt != NULL && handle == NULL) {
			/* Its connection ended while we were away. */
			registry_unregister(reg, node);
			continue;
		}
		if (bind != NULL && handle != NULL)
			bind(handle, node, arg);
		restored++;
	}
	return restored;
}

/* A short text for a decode error, for logs. */
const char *
state_strerror(enum state_error err)
{
	switch (err) {
	case STATE_OK:
		return "ok";
	case STATE_ERR_TRUNCATED:
		return "truncated";
	case STATE_ERR_MAGIC:
		return "not an epmd-c state blob";
	case STATE_ERR_VERSION:
		return "unknown format version";
	case STATE_ERR_LENGTH:
		return "length field does not match";
	case STATE_ERR_TOO_LARGE:
		return "larger than the limits";
	case STATE_ERR_CHECKSUM:
		return "checksum mismatch";
	case STATE_ERR_RECORD:
		return "malformed record";
	case STATE_ERR_NAME:
		return "invalid node name";
	case STATE_ERR_DUPLICATE:
		return "duplicate name or connection";
	case STATE_ERR_ORDER:
		return "records out of order";
	case STATE_ERR_CREATION:
		return "creation above the recorded maximum";
	case STATE_ERR_TRAILING:
		return "bytes after the last record";
	case STATE_ERR_NOMEM:
		return "out of memory";
	}
	return "unknown error";
}
