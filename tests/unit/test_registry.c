/* Unit tests for the node table: registration, creation, history, order. */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "epmd.h"
#include "introspect.h"
#include "registry.h"
#include "unit.h"

#define NOW		1795269781u
#define COLLECT_MAX	64
#define COLLECT_NAME	64

/* Names seen by a foreach visit, in visit order. */
struct collect {
	char	names[COLLECT_MAX][COLLECT_NAME];
	size_t	n;
};

/* A visit of every record: the registry's walks, never stopped. */
typedef void (*visit_fn)(const struct node *node, void *arg);

struct visit {
	visit_fn	 fn;
	void		*arg;
};

/* Walk callback: hand the record to the visit, and go on. */
static bool
visit_one(const struct node *node, void *arg)
{
	struct visit *v = arg;

	v->fn(node, v->arg);
	return true;
}

/* Visit active nodes, newest registration first. */
static void
foreach_active(const struct registry *reg, visit_fn fn, void *arg)
{
	struct visit v = { fn, arg };

	ck_assert(registry_walk_active(reg, UINT64_MAX, visit_one, &v));
}

/* Visit old/unused records, oldest unregistration first. */
static void
foreach_unused(const struct registry *reg, visit_fn fn, void *arg)
{
	struct visit v = { fn, arg };

	ck_assert(registry_walk_unused(reg, 0, visit_one, &v));
}

/* A request for a name given as a C string, with no extra. */
static struct proto_alive2
req_for(const char *name)
{
	struct proto_alive2 req;

	memset(&req, 0, sizeof(req));
	req.port = 5001;
	req.node_type = 77;
	req.protocol = 0;
	req.high = 6;
	req.low = 5;
	req.name = (const uint8_t *)name;
	req.name_len = strlen(name);
	return req;
}

/* Register a name that must succeed and return its node. */
static struct node *
must_register(struct registry *reg, const char *name, uint32_t now)
{
	struct proto_alive2	 req = req_for(name);
	struct node		*node = NULL;

	ck_assert_int_eq(registry_register(reg, &req, 7, NULL, now, &node),
	    REGISTRY_OK);
	ck_assert_ptr_nonnull(node);
	return node;
}

/* Register then unregister a name; return the creation it got. */
static uint32_t
cycle(struct registry *reg, const char *name, uint32_t now)
{
	struct node	*node = must_register(reg, name, now);
	uint32_t	 creation = node->creation;

	registry_unregister(reg, node);
	return creation;
}

/* Register raw name bytes and return the result only. */
static enum registry_result
try_register(struct registry *reg, const uint8_t *name, size_t len,
    size_t extra_len)
{
	static const uint8_t	 extra[EPMD_MAXSYMLEN + 8];
	struct proto_alive2	 req = req_for("");
	struct node		*node = NULL;

	req.name = name;
	req.name_len = len;
	req.extra = extra;
	req.extra_len = extra_len;
	return registry_register(reg, &req, 3, NULL, NOW, &node);
}

/* Foreach callback: copy each name into a struct collect. */
static void
collect_name(const struct node *node, void *arg)
{
	struct collect	*c = arg;
	size_t		 len = node->info.name_len;

	ck_assert_uint_lt(c->n, COLLECT_MAX);
	ck_assert_uint_lt(len, COLLECT_NAME);
	memcpy(c->names[c->n], node->info.name, len);
	c->names[c->n][len] = '\0';
	c->n++;
}

/* Foreach callback: count visits. */
static void
count_visit(const struct node *node, void *arg)
{
	size_t *n = arg;

	(void)node;
	(*n)++;
}

/* The old/unused record of a name, found by walking the history. */
struct find_unused {
	const char		*name;
	const struct node	*found;
};

/* Foreach callback: remember the record whose name matches. */
static void
find_unused_visit(const struct node *node, void *arg)
{
	struct find_unused *f = arg;

	if (node->info.name_len == strlen(f->name) &&
	    memcmp(node->info.name, f->name, node->info.name_len) == 0)
		f->found = node;
}

/* Look a C-string name up among active nodes. */
static struct node *
lookup(struct registry *reg, const char *name)
{
	return registry_lookup(reg, (const uint8_t *)name, strlen(name));
}

START_TEST(test_first_creation_is_now_plus_one)
{
	struct registry *reg = registry_new(1000);

	ck_assert_uint_eq(must_register(reg, "foo", NOW)->creation, NOW + 1);
	registry_free(reg);
}
END_TEST

START_TEST(test_reregistration_from_old_list_is_previous_plus_one)
{
	struct registry	*reg = registry_new(1000);
	uint32_t	 c1, c2, c3;

	c1 = cycle(reg, "foo", NOW);
	c2 = cycle(reg, "foo", NOW + 100);
	c3 = cycle(reg, "foo", NOW + 200);
	ck_assert_uint_eq(c1, NOW + 1);
	ck_assert_uint_eq(c2, c1 + 1);
	ck_assert_uint_eq(c3, c2 + 1);
	ck_assert_uint_eq(registry_unused_count(reg), 1);
	registry_free(reg);
}
END_TEST

START_TEST(test_duplicate_active_name_rejected)
{
	struct registry		*reg = registry_new(1000);
	struct node		*first, *out = NULL;
	struct proto_alive2	 req = req_for("foo");

	first = must_register(reg, "foo", NOW);
	req.port = 9999;
	ck_assert_int_eq(registry_register(reg, &req, 8, &req, NOW, &out),
	    REGISTRY_DUPLICATE);
	ck_assert_ptr_null(out);
	ck_assert_ptr_eq(lookup(reg, "foo"), first);
	ck_assert_uint_eq(first->info.port, 5001);
	ck_assert_uint_eq(registry_count(reg), 1);
	registry_free(reg);
}
END_TEST

START_TEST(test_eviction_never_repeats_a_creation)
{
	struct registry		*reg = registry_new(5);
	struct find_unused	 f = { "u0", NULL };
	uint32_t		 seen[3], c, brandnew;
	char			 name[16];
	int			 i;

	for (i = 0; i < 3; i++)
		seen[i] = cycle(reg, "u0", NOW);
	for (i = 1; i <= 6; i++) {
		snprintf(name, sizeof(name), "u%d", i);
		cycle(reg, name, NOW);
	}
	brandnew = must_register(reg, "brandnew", NOW)->creation;
	for (i = 0; i < 3; i++)
		ck_assert_uint_ne(brandnew, seen[i]);

	/* u0 was evicted: it is no longer in the history. */
	foreach_unused(reg, find_unused_visit, &f);
	ck_assert_ptr_null(f.found);

	c = must_register(reg, "u0", NOW)->creation;
	for (i = 0; i < 3; i++)
		ck_assert_uint_gt(c, seen[i]);
	ck_assert_uint_gt(c, brandnew);
	registry_free(reg);
}
END_TEST

/* Names that come and go one after another never grow past the limit. */
START_TEST(test_unregistration_evicts_oldest_at_limit)
{
	struct registry		*reg = registry_new(1000);
	struct find_unused	 first = { "u0000", NULL },
				 second = { "u0001", NULL },
				 last = { "u1000", NULL };
	size_t			 visits = 0;
	char			 name[16];
	int			 i;

	for (i = 0; i < 1001; i++) {
		snprintf(name, sizeof(name), "u%04d", i);
		cycle(reg, name, NOW);
	}
	ck_assert_uint_eq(registry_unused_count(reg), 1000);
	foreach_unused(reg, count_visit, &visits);
	ck_assert_uint_eq(visits, 1000);
	foreach_unused(reg, find_unused_visit, &first);
	foreach_unused(reg, find_unused_visit, &second);
	foreach_unused(reg, find_unused_visit, &last);
	ck_assert_ptr_null(first.found);
	ck_assert_ptr_nonnull(second.found);
	ck_assert_ptr_nonnull(last.found);
	registry_free(reg);
}
END_TEST

/* Many nodes leaving together keep only the last limit of them. */
START_TEST(test_mass_unregistration_keeps_newest_limit)
{
	struct registry	*reg = registry_new(5);
	struct node	*nodes[12];
	struct collect	 col = { .n = 0 };
	char		 name[16];
	int		 i;

	for (i = 0; i < 12; i++) {
		snprintf(name, sizeof(name), "n%02d", i);
		nodes[i] = must_register(reg, name, NOW);
	}
	/* Nothing is evicted while they are active. */
	ck_assert_uint_eq(registry_unused_count(reg), 0);
	for (i = 0; i < 12; i++)
		registry_unregister(reg, nodes[i]);
	ck_assert_uint_eq(registry_unused_count(reg), 5);
	foreach_unused(reg, collect_name, &col);
	ck_assert_uint_eq(col.n, 5);
	ck_assert_str_eq(col.names[0], "n07");
	ck_assert_str_eq(col.names[4], "n11");
	registry_free(reg);
}
END_TEST

/* A new name joining a full history leaves it exactly full. */
START_TEST(test_new_name_at_full_history_stays_at_limit)
{
	struct registry	*reg = registry_new(3);
	char		 name[16];
	int		 i;

	for (i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		cycle(reg, name, NOW);
	}
	ck_assert_uint_eq(registry_unused_count(reg), 3);
	must_register(reg, "brandnew", NOW);
	ck_assert_uint_eq(registry_unused_count(reg), 3);
	cycle(reg, "other", NOW);
	ck_assert_uint_eq(registry_unused_count(reg), 3);
	registry_free(reg);
}
END_TEST

/* A name still in a full history comes back as previous + 1. */
START_TEST(test_reuse_from_full_history_keeps_creation_counter)
{
	struct registry	*reg = registry_new(3);
	uint32_t	 c1, c2;
	char		 name[16];
	int		 i;

	c1 = cycle(reg, "foo", NOW);
	for (i = 0; i < 2; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		cycle(reg, name, NOW);
	}
	ck_assert_uint_eq(registry_unused_count(reg), 3);
	c2 = cycle(reg, "foo", NOW + 100);
	ck_assert_uint_eq(c2, c1 + 1);
	ck_assert_uint_eq(registry_unused_count(reg), 3);
	registry_free(reg);
}
END_TEST

/* Taking a record back from the history evicts nothing else. */
START_TEST(test_reregistration_does_not_evict)
{
	struct registry		*reg = registry_new(2);
	struct find_unused	 f = { "n2", NULL };
	char			 name[16];
	int			 i;

	for (i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		cycle(reg, name, NOW);
	}
	ck_assert_uint_eq(registry_unused_count(reg), 2);
	must_register(reg, "n3", NOW);
	ck_assert_uint_eq(registry_unused_count(reg), 1);
	foreach_unused(reg, find_unused_visit, &f);
	ck_assert_ptr_nonnull(f.found);
	must_register(reg, "n2", NOW);
	ck_assert_uint_eq(registry_unused_count(reg), 0);
	registry_free(reg);
}
END_TEST

/* A limit of 0 still keeps the node just unregistered. */
START_TEST(test_zero_limit_keeps_one_record)
{
	struct registry	*reg = registry_new(0);

	cycle(reg, "a", NOW);
	cycle(reg, "b", NOW);
	ck_assert_uint_eq(registry_unused_count(reg), 1);
	registry_free(reg);
}
END_TEST

START_TEST(test_names_order_newest_first)
{
	struct registry	*reg = registry_new(1000);
	struct collect	 c;

	memset(&c, 0, sizeof(c));
	must_register(reg, "a", NOW);
	registry_unregister(reg, must_register(reg, "b", NOW));
	must_register(reg, "c", NOW);
	must_register(reg, "b", NOW);
	foreach_active(reg, collect_name, &c);
	ck_assert_uint_eq(c.n, 3);
	ck_assert_str_eq(c.names[0], "b");
	ck_assert_str_eq(c.names[1], "c");
	ck_assert_str_eq(c.names[2], "a");
	registry_free(reg);
}
END_TEST

START_TEST(test_unused_order_oldest_first)
{
	struct registry	*reg = registry_new(1000);
	struct node	*a, *b, *c;
	struct collect	 col;

	memset(&col, 0, sizeof(col));
	a = must_register(reg, "a", NOW);
	b = must_register(reg, "b", NOW);
	c = must_register(reg, "c", NOW);
	registry_unregister(reg, b);
	registry_unregister(reg, c);
	registry_unregister(reg, a);
	foreach_unused(reg, collect_name, &col);
	ck_assert_uint_eq(col.n, 3);
	ck_assert_str_eq(col.names[0], "b");
	ck_assert_str_eq(col.names[1], "c");
	ck_assert_str_eq(col.names[2], "a");
	registry_free(reg);
}
END_TEST

START_TEST(test_bump_never_below_4)
{
	struct registry *reg = registry_new(1000);

	ck_assert_uint_eq(must_register(reg, "a", 0)->creation, 4);
	ck_assert_uint_eq(must_register(reg, "b", 2)->creation, 5);
	registry_free(reg);

	reg = registry_new(1000);
	ck_assert_uint_eq(must_register(reg, "a", 3)->creation, 4);
	registry_free(reg);
}
END_TEST

START_TEST(test_two_new_names_same_second_get_distinct_creations)
{
	struct registry	*reg = registry_new(1000);
	uint32_t	 a, b;

	a = must_register(reg, "a", NOW)->creation;
	b = must_register(reg, "b", NOW)->creation;
	ck_assert_uint_eq(a, NOW + 1);
	ck_assert_uint_eq(b, NOW + 2);
	registry_free(reg);
}
END_TEST

START_TEST(test_new_name_creation_monotonic_when_clock_goes_back)
{
	struct registry	*reg = registry_new(1000);
	uint32_t	 a, b;

	a = must_register(reg, "a", NOW)->creation;
	b = must_register(reg, "b", NOW - 3600)->creation;
	ck_assert_uint_eq(b, a + 1);
	ck_assert_uint_eq(must_register(reg, "c", NOW + 10)->creation,
	    NOW + 11);
	registry_free(reg);
}
END_TEST

START_TEST(test_empty_name_registers)
{
	struct registry	*reg = registry_new(1000);
	struct node	*node;

	ck_assert_int_eq(try_register(reg, (const uint8_t *)"", 0, 1),
	    REGISTRY_OK);
	node = registry_lookup(reg, (const uint8_t *)"", 0);
	ck_assert_ptr_nonnull(node);
	ck_assert_uint_eq(node->info.name_len, 0);
	ck_assert_uint_eq(node->info.extra_len, 1);
	ck_assert_int_eq(try_register(reg, (const uint8_t *)"", 0, 1),
	    REGISTRY_DUPLICATE);
	registry_free(reg);
}
END_TEST

START_TEST(test_255_char_4byte_utf8_name_ok)
{
	struct registry	*reg = registry_new(1000);
	uint8_t		 name[255 * 4];
	size_t		 i;

	for (i = 0; i < sizeof(name); i += 4) {
		name[i] = 0xf0;
		name[i + 1] = 0x9f;
		name[i + 2] = 0x98;
		name[i + 3] = 0x80;
	}
	ck_assert_int_eq(try_register(reg, name, sizeof(name), 0),
	    REGISTRY_OK);
	ck_assert_ptr_nonnull(registry_lookup(reg, name, sizeof(name)));
	registry_free(reg);
}
END_TEST

START_TEST(test_256_ascii_name_rejected)
{
	struct registry	*reg = registry_new(1000);
	uint8_t		 name[256];

	memset(name, 'a', sizeof(name));
	ck_assert_int_eq(try_register(reg, name, 256, 0), REGISTRY_BAD_NAME);
	ck_assert_int_eq(try_register(reg, name, 255, 0), REGISTRY_OK);
	ck_assert_uint_eq(registry_count(reg), 1);
	registry_free(reg);
}
END_TEST

START_TEST(test_invalid_utf8_name_rejected)
{
	static const uint8_t	 ff_fe[] = { 0xff, 0xfe };
	static const uint8_t	 overlong[] = { 0xc0, 0x80 };
	static const uint8_t	 surrogate[] = { 0xed, 0xa0, 0x80 };
	static const uint8_t	 nul[] = { 'f', 0, 'o' };
	struct registry		*reg = registry_new(1000);

	ck_assert_int_eq(try_register(reg, ff_fe, 2, 0), REGISTRY_BAD_NAME);
	ck_assert_int_eq(try_register(reg, overlong, 2, 0),
	    REGISTRY_BAD_NAME);
	ck_assert_int_eq(try_register(reg, surrogate, 3, 0),
	    REGISTRY_BAD_NAME);
	ck_assert_int_eq(try_register(reg, nul, 3, 0), REGISTRY_BAD_NAME);
	ck_assert_uint_eq(registry_count(reg), 0);
	ck_assert_uint_eq(registry_unused_count(reg), 0);
	registry_free(reg);
}
END_TEST

START_TEST(test_extra_1020_ok_1021_rejected)
{
	struct registry *reg = registry_new(1000);

	ck_assert_int_eq(try_register(reg, (const uint8_t *)"a", 1, 1021),
	    REGISTRY_BAD_EXTRA);
	ck_assert_int_eq(try_register(reg, (const uint8_t *)"a", 1, 1020),
	    REGISTRY_OK);
	ck_assert_uint_eq(lookup(reg, "a")->info.extra_len, 1020);
	registry_free(reg);
}
END_TEST

START_TEST(test_validation_order_name_extra_duplicate)
{
	struct registry *reg = registry_new(1000);

	must_register(reg, "a", NOW);
	/* A bad name wins over a bad extra; a bad extra over a duplicate. */
	ck_assert_int_eq(try_register(reg, (const uint8_t *)"\xff", 1, 1021),
	    REGISTRY_BAD_NAME);
	ck_assert_int_eq(try_register(reg, (const uint8_t *)"a", 1, 1021),
	    REGISTRY_BAD_EXTRA);
	ck_assert_int_eq(try_register(reg, (const uint8_t *)"a", 1, 0),
	    REGISTRY_DUPLICATE);
	registry_free(reg);
}
END_TEST

START_TEST(test_lookup_is_byte_exact)
{
	struct registry	*reg = registry_new(1000);
	struct node	*foo;

	foo = must_register(reg, "foo", NOW);
	ck_assert_ptr_eq(lookup(reg, "foo"), foo);
	ck_assert_ptr_null(lookup(reg, "Foo"));
	ck_assert_ptr_null(lookup(reg, "fo"));
	ck_assert_ptr_null(lookup(reg, "foo "));
	ck_assert_ptr_null(registry_lookup(reg, (const uint8_t *)"foo", 4));
	ck_assert_ptr_null(lookup(reg, ""));
	/* Case variants are distinct names, both registrable. */
	must_register(reg, "FOO", NOW);
	ck_assert_uint_eq(registry_count(reg), 2);
	registry_free(reg);
}
END_TEST

START_TEST(test_lookup_ignores_old_records)
{
	struct registry *reg = registry_new(1000);

	cycle(reg, "foo", NOW);
	ck_assert_ptr_null(lookup(reg, "foo"));
	ck_assert_uint_eq(registry_unused_count(reg), 1);
	registry_free(reg);
}
END_TEST

START_TEST(test_reregister_with_longer_extra)
{
	static const uint8_t	 extra[] = { 'x', 0, 'y', 0, 'z', 0xff, 7 };
	struct registry		*reg = registry_new(1000);
	struct proto_alive2	 req = req_for("foo");
	struct node		*node;
	uint32_t		 first;

	req.extra = extra;
	req.extra_len = 1;
	ck_assert_int_eq(registry_register(reg, &req, 4, NULL, NOW, &node),
	    REGISTRY_OK);
	first = node->creation;
	registry_unregister(reg, node);

	req.extra_len = sizeof(extra);
	ck_assert_int_eq(registry_register(reg, &req, 5, NULL, NOW, &node),
	    REGISTRY_OK);
	ck_assert_uint_eq(node->creation, first + 1);
	ck_assert_uint_eq(node->info.name_len, 3);
	ck_assert_mem_eq(node->info.name, "foo", 3);
	ck_assert_uint_eq(node->info.extra_len, sizeof(extra));
	ck_assert_mem_eq(node->info.extra, extra, sizeof(extra));
	ck_assert_ptr_eq(lookup(reg, "foo"), node);
	ck_assert_uint_eq(registry_unused_count(reg), 0);

	/* And back to a shorter one. */
	registry_unregister(reg, node);
	req.extra_len = 0;
	ck_assert_int_eq(registry_register(reg, &req, 6, NULL, NOW, &node),
	    REGISTRY_OK);
	ck_assert_uint_eq(node->info.extra_len, 0);
	ck_assert_uint_eq(node->creation, first + 2);
	registry_free(reg);
}
END_TEST

START_TEST(test_fields_copied_from_request)
{
	uint8_t			 name[] = "node1";
	uint8_t			 extra[] = { 1, 0, 2 };
	struct registry		*reg = registry_new(1000);
	struct proto_alive2	 req;
	struct node		*node;

	memset(&req, 0, sizeof(req));
	req.port = 65535;
	req.node_type = 104;
	req.protocol = 9;
	req.high = 5;
	req.low = 7;
	req.name = name;
	req.name_len = 5;
	req.extra = extra;
	req.extra_len = sizeof(extra);
	ck_assert_int_eq(registry_register(reg, &req, 3, NULL, NOW, &node),
	    REGISTRY_OK);
	/* The registry keeps its own copies of the bytes. */
	memset(name, 'z', 5);
	memset(extra, 0xee, sizeof(extra));
	ck_assert_uint_eq(node->info.port, 65535);
	ck_assert_uint_eq(node->info.node_type, 104);
	ck_assert_uint_eq(node->info.protocol, 9);
	ck_assert_uint_eq(node->info.high, 5);
	ck_assert_uint_eq(node->info.low, 7);
	ck_assert_mem_eq(node->info.name, "node1", 5);
	ck_assert_mem_eq(node->info.extra, "\1\0\2", 3);
	ck_assert_ptr_eq(lookup(reg, "node1"), node);
	registry_free(reg);
}
END_TEST

START_TEST(test_fd_and_handle_stored)
{
	struct registry		*reg = registry_new(1000);
	struct proto_alive2	 req = req_for("foo");
	struct node		*node;
	int			 owner;

	ck_assert_int_eq(registry_register(reg, &req, 42, &owner, NOW,
	    &node), REGISTRY_OK);
	ck_assert_int_eq(node->fd, 42);
	ck_assert_ptr_eq(node->handle, &owner);
	ck_assert(node->active);
	registry_free(reg);
}
END_TEST

START_TEST(test_old_record_keeps_name_port_fd)
{
	struct registry		*reg = registry_new(1000);
	struct proto_alive2	 req = req_for("foo");
	struct find_unused	 f = { "foo", NULL };
	struct node		*node;
	int			 owner;

	req.port = 5002;
	ck_assert_int_eq(registry_register(reg, &req, 6, &owner, NOW, &node),
	    REGISTRY_OK);
	registry_unregister(reg, node);
	foreach_unused(reg, find_unused_visit, &f);
	ck_assert_ptr_nonnull(f.found);
	ck_assert(!f.found->active);
	ck_assert_ptr_null(f.found->handle);
	ck_assert_uint_eq(f.found->info.port, 5002);
	ck_assert_int_eq(f.found->fd, 6);
	registry_free(reg);
}
END_TEST

START_TEST(test_counts_track_active_and_unused)
{
	struct registry	*reg = registry_new(1000);
	struct node	*a;

	ck_assert_uint_eq(registry_count(reg), 0);
	ck_assert_uint_eq(registry_unused_count(reg), 0);
	a = must_register(reg, "a", NOW);
	must_register(reg, "b", NOW);
	ck_assert_uint_eq(registry_count(reg), 2);
	registry_unregister(reg, a);
	ck_assert_uint_eq(registry_count(reg), 1);
	ck_assert_uint_eq(registry_unused_count(reg), 1);
	/* Unregistering twice changes nothing. */
	registry_unregister(reg, a);
	ck_assert_uint_eq(registry_count(reg), 1);
	ck_assert_uint_eq(registry_unused_count(reg), 1);
	must_register(reg, "a", NOW);
	ck_assert_uint_eq(registry_count(reg), 2);
	ck_assert_uint_eq(registry_unused_count(reg), 0);
	registry_free(reg);
}
END_TEST

START_TEST(test_100000_nodes_register_lookup_unregister)
{
	enum { N = 100000 };
	struct registry	*reg = registry_new(1000);
	struct node	**nodes;
	struct timespec	 t0, t1;
	char		 name[32];
	double		 secs;
	int		 i;

	nodes = calloc(N, sizeof(*nodes));
	ck_assert_ptr_nonnull(nodes);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "node%d", i);
		nodes[i] = must_register(reg, name, NOW);
	}
	ck_assert_uint_eq(registry_count(reg), N);
	for (i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "node%d", i);
		ck_assert_ptr_eq(lookup(reg, name), nodes[i]);
	}
	for (i = 0; i < N; i++)
		registry_unregister(reg, nodes[i]);
	ck_assert_uint_eq(registry_count(reg), 0);
	ck_assert_uint_eq(registry_unused_count(reg), 1000);
	ck_assert_ptr_null(lookup(reg, "node0"));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	/* Generous for sanitizer builds; a linear table would take minutes. */
	ck_assert_double_lt(secs, 5.0);
	free(nodes);
	registry_free(reg);
}
END_TEST

START_TEST(test_unregister_then_free_is_clean)
{
	struct registry	*reg = registry_new(2);
	char		 name[16];
	int		 i;

	for (i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		if (i % 2 == 0)
			cycle(reg, name, NOW);
		else
			must_register(reg, name, NOW);
	}
	/* Leaks or double frees show up under ASan/LSan. */
	registry_free(reg);
	registry_free(NULL);
}
END_TEST

/* Walk callback: collect names, stop after stop_after of them. */
struct walk {
	struct collect	c;
	size_t		stop_after;
	uint64_t	last;
};

/* Walk callback: collect a name and remember its seq; false when full. */
static bool
walk_collect(const struct node *node, void *arg)
{
	struct walk *w = arg;

	collect_name(node, &w->c);
	w->last = node->seq;
	return w->c.n < w->stop_after;
}

START_TEST(test_walk_active_resumes_newest_first_without_repeats)
{
	struct registry	*reg = registry_new(1000);
	struct walk	 w;

	memset(&w, 0, sizeof(w));
	must_register(reg, "a", NOW);
	must_register(reg, "b", NOW);
	must_register(reg, "c", NOW);
	must_register(reg, "d", NOW);
	w.stop_after = 2;
	ck_assert(!registry_walk_active(reg, UINT64_MAX, walk_collect, &w));
	/* Between two pieces b goes and e comes: neither is listed. */
	registry_unregister(reg, lookup(reg, "b"));
	must_register(reg, "e", NOW);
	w.stop_after = COLLECT_MAX;
	ck_assert(registry_walk_active(reg, w.last, walk_collect, &w));
	ck_assert_uint_eq(w.c.n, 3);
	ck_assert_str_eq(w.c.names[0], "d");
	ck_assert_str_eq(w.c.names[1], "c");
	ck_assert_str_eq(w.c.names[2], "a");
	registry_free(reg);
}
END_TEST

START_TEST(test_walk_unused_resumes_oldest_first)
{
	struct registry	*reg = registry_new(1000);
	struct walk	 w;

	memset(&w, 0, sizeof(w));
	registry_unregister(reg, must_register(reg, "a", NOW));
	registry_unregister(reg, must_register(reg, "b", NOW));
	registry_unregister(reg, must_register(reg, "c", NOW));
	w.stop_after = 1;
	ck_assert(!registry_walk_unused(reg, 0, walk_collect, &w));
	ck_assert_str_eq(w.c.names[0], "a");
	/* b comes back to life in between, d joins the history. */
	must_register(reg, "b", NOW);
	registry_unregister(reg, must_register(reg, "d", NOW));
	w.stop_after = COLLECT_MAX;
	ck_assert(registry_walk_unused(reg, w.last, walk_collect, &w));
	ck_assert_uint_eq(w.c.n, 3);
	ck_assert_str_eq(w.c.names[1], "c");
	ck_assert_str_eq(w.c.names[2], "d");
	registry_free(reg);
}
END_TEST

/* Restored records keep creation, seq and fields, in any order given. */
START_TEST(test_restore_keeps_creation_seq_and_order)
{
	struct registry		*reg = registry_new(EPMD_UNREG_LIMIT);
	struct proto_alive2	 a = req_for("a"), b = req_for("b"),
				 c = req_for("c");
	struct node		*n = NULL;
	struct collect		 col = { .n = 0 };
	int			 h;

	a.port = 4000;
	a.extra = (const uint8_t *)"xy";
	a.extra_len = 2;
	/* Out of order on purpose: the lists sort themselves by seq. */
	ck_assert_int_eq(registry_restore(reg, &b, 50, 7, true, 9, &h, &n),
	    REGISTRY_OK);
	ck_assert_int_eq(registry_restore(reg, &a, 40, 3, true, 8, NULL, NULL),
	    REGISTRY_OK);
	ck_assert_int_eq(registry_restore(reg, &c, 60, 5, true, 10, NULL,
	    NULL), REGISTRY_OK);
	ck_assert_ptr_eq(n->handle, &h);
	ck_assert_int_eq(n->fd, 9);
	ck_assert_uint_eq(n->creation, 50);
	ck_assert_uint_eq(n->seq, 7);
	foreach_active(reg, collect_name, &col);
	ck_assert_uint_eq(col.n, 3);
	ck_assert_str_eq(col.names[0], "b");
	ck_assert_str_eq(col.names[1], "c");
	ck_assert_str_eq(col.names[2], "a");
	n = registry_lookup(reg, (const uint8_t *)"a", 1);
	ck_assert_ptr_nonnull(n);
	ck_assert_uint_eq(n->info.port, 4000);
	ck_assert_uint_eq(n->info.extra_len, 2);
	ck_assert_int_eq(memcmp(n->info.extra, "xy", 2), 0);
	ck_assert_uint_eq(registry_max_creation(reg), 60);
	ck_assert_uint_eq(registry_seq(reg), 7);
	registry_free(reg);
}
END_TEST

/* A restored name goes on from its own creation; old ones stay old. */
START_TEST(test_restore_then_register_continues_creations)
{
	struct registry		*reg = registry_new(EPMD_UNREG_LIMIT);
	struct proto_alive2	 a = req_for("a"), old = req_for("old");
	struct collect		 col = { .n = 0 };
	struct node		*n;

	registry_restore_counters(reg, NOW + 500, 20);
	ck_assert_int_eq(registry_restore(reg, &old, NOW + 10, 12, false, 5,
	    NULL, NULL), REGISTRY_OK);
	ck_assert_int_eq(registry_restore(reg, &a, NOW + 20, 15, true, 6, NULL,
	    NULL), REGISTRY_OK);
	ck_assert_uint_eq(registry_count(reg), 1);
	ck_assert_uint_eq(registry_unused_count(reg), 1);
	ck_assert_ptr_null(registry_lookup(reg, (const uint8_t *)"old", 3));
	foreach_unused(reg, collect_name, &col);
	ck_assert_str_eq(col.names[0], "old");
	/* The old name comes back one above its own creation. */
	n = must_register(reg, "old", NOW);
	ck_assert_uint_eq(n->creation, NOW + 11);
	ck_assert_uint_gt(n->seq, 20);
	/* A fresh name starts above every creation ever handed out. */
	n = must_register(reg, "fresh", NOW);
	ck_assert_uint_eq(n->creation, NOW + 501);
	registry_free(reg);
}
END_TEST

/* Old records restored in any order come back oldest first. */
START_TEST(test_restore_unused_in_any_order)
{
	struct registry		*reg = registry_new(EPMD_UNREG_LIMIT);
	struct proto_alive2	 x = req_for("x"), y = req_for("y"),
				 z = req_for("z"), w = req_for("w");
	struct collect		 col = { .n = 0 };

	ck_assert_int_eq(registry_restore(reg, &y, 5, 20, false, 1, NULL,
	    NULL), REGISTRY_OK);
	ck_assert_int_eq(registry_restore(reg, &x, 5, 10, false, 1, NULL,
	    NULL), REGISTRY_OK);
	ck_assert_int_eq(registry_restore(reg, &w, 5, 40, false, 1, NULL,
	    NULL), REGISTRY_OK);
	ck_assert_int_eq(registry_restore(reg, &z, 5, 30, false, 1, NULL,
	    NULL), REGISTRY_OK);
	foreach_unused(reg, collect_name, &col);
	ck_assert_uint_eq(col.n, 4);
	ck_assert_str_eq(col.names[0], "x");
	ck_assert_str_eq(col.names[1], "y");
	ck_assert_str_eq(col.names[2], "z");
	ck_assert_str_eq(col.names[3], "w");
	ck_assert_uint_eq(registry_unused_count(reg), 4);
	ck_assert_uint_eq(registry_count(reg), 0);
	registry_free(reg);
}
END_TEST

/* A saved history longer than the limit comes back as its newest part. */
START_TEST(test_restore_unused_beyond_limit_keeps_newest)
{
	struct registry		*reg = registry_new(2);
	struct proto_alive2	 x = req_for("x"), y = req_for("y"),
				 z = req_for("z"), w = req_for("w");
	struct collect		 col = { .n = 0 };
	struct node		*n = NULL;

	ck_assert_int_eq(registry_restore(reg, &y, 5, 20, false, 1, NULL,
	    &n), REGISTRY_OK);
	ck_assert_ptr_nonnull(n);
	ck_assert_int_eq(registry_restore(reg, &w, 5, 40, false, 1, NULL,
	    &n), REGISTRY_OK);
	ck_assert_ptr_nonnull(n);
	/* Older than both: dropped at once. */
	ck_assert_int_eq(registry_restore(reg, &x, 5, 10, false, 1, NULL,
	    &n), REGISTRY_OK);
	ck_assert_ptr_null(n);
	/* Newer than y: y goes. */
	ck_assert_int_eq(registry_restore(reg, &z, 5, 30, false, 1, NULL,
	    &n), REGISTRY_OK);
	ck_assert_ptr_nonnull(n);
	foreach_unused(reg, collect_name, &col);
	ck_assert_uint_eq(col.n, 2);
	ck_assert_str_eq(col.names[0], "z");
	ck_assert_str_eq(col.names[1], "w");
	ck_assert_uint_eq(registry_unused_count(reg), 2);
	/* An evicted name is gone from the table too: it registers fresh. */
	ck_assert_uint_eq(must_register(reg, "x", NOW)->creation, NOW + 1);
	registry_free(reg);
}
END_TEST

/* Restoring a name twice, or a bad name, is refused. */
START_TEST(test_restore_refuses_duplicates_and_bad_names)
{
	struct registry		*reg = registry_new(EPMD_UNREG_LIMIT);
	struct proto_alive2	 a = req_for("a"), bad = req_for("\xff");

	ck_assert_int_eq(registry_restore(reg, &a, 5, 1, true, 3, NULL, NULL),
	    REGISTRY_OK);
	ck_assert_int_eq(registry_restore(reg, &a, 6, 2, false, 3, NULL, NULL),
	    REGISTRY_DUPLICATE);
	ck_assert_int_eq(registry_restore(reg, &bad, 6, 2, true, 3, NULL,
	    NULL), REGISTRY_BAD_NAME);
	bad = req_for("b");
	bad.extra_len = EPMD_MAXSYMLEN + 1;
	bad.extra = (const uint8_t *)"";
	ck_assert_int_eq(registry_restore(reg, &bad, 6, 2, true, 3, NULL,
	    NULL), REGISTRY_BAD_EXTRA);
	ck_assert_uint_eq(registry_count(reg), 1);
	registry_free(reg);
}
END_TEST

/* Counters never go down. */
START_TEST(test_restore_counters_never_lower)
{
	struct registry *reg = registry_new(EPMD_UNREG_LIMIT);

	must_register(reg, "a", NOW);
	registry_restore_counters(reg, 10, 0);
	ck_assert_uint_eq(registry_max_creation(reg), NOW + 1);
	ck_assert_uint_eq(registry_seq(reg), 1);
	registry_free(reg);
}
END_TEST

/* Every registry test in one suite. */
Suite *
unit_suite(void)
{
	Suite	*s = suite_create("registry");
	TCase	*tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_first_creation_is_now_plus_one);
	tcase_add_test(tc,
	    test_reregistration_from_old_list_is_previous_plus_one);
	tcase_add_test(tc, test_duplicate_active_name_rejected);
	tcase_add_test(tc, test_eviction_never_repeats_a_creation);
	tcase_add_test(tc, test_unregistration_evicts_oldest_at_limit);
	tcase_add_test(tc, test_mass_unregistration_keeps_newest_limit);
	tcase_add_test(tc, test_new_name_at_full_history_stays_at_limit);
	tcase_add_test(tc, test_reuse_from_full_history_keeps_creation_counter);
	tcase_add_test(tc, test_reregistration_does_not_evict);
	tcase_add_test(tc, test_zero_limit_keeps_one_record);
	tcase_add_test(tc, test_names_order_newest_first);
	tcase_add_test(tc, test_unused_order_oldest_first);
	tcase_add_test(tc, test_bump_never_below_4);
	tcase_add_test(tc,
	    test_two_new_names_same_second_get_distinct_creations);
	tcase_add_test(tc,
	    test_new_name_creation_monotonic_when_clock_goes_back);
	tcase_add_test(tc, test_empty_name_registers);
	tcase_add_test(tc, test_255_char_4byte_utf8_name_ok);
	tcase_add_test(tc, test_256_ascii_name_rejected);
	tcase_add_test(tc, test_invalid_utf8_name_rejected);
	tcase_add_test(tc, test_extra_1020_ok_1021_rejected);
	tcase_add_test(tc, test_validation_order_name_extra_duplicate);
	tcase_add_test(tc, test_lookup_is_byte_exact);
	tcase_add_test(tc, test_lookup_ignores_old_records);
	tcase_add_test(tc, test_reregister_with_longer_extra);
	tcase_add_test(tc, test_fields_copied_from_request);
	tcase_add_test(tc, test_fd_and_handle_stored);
	tcase_add_test(tc, test_old_record_keeps_name_port_fd);
	tcase_add_test(tc, test_counts_track_active_and_unused);
	tcase_add_test(tc, test_100000_nodes_register_lookup_unregister);
	tcase_add_test(tc, test_unregister_then_free_is_clean);
	tcase_add_test(tc,
	    test_walk_active_resumes_newest_first_without_repeats);
	tcase_add_test(tc, test_walk_unused_resumes_oldest_first);
	tcase_add_test(tc, test_restore_keeps_creation_seq_and_order);
	tcase_add_test(tc, test_restore_then_register_continues_creations);
	tcase_add_test(tc, test_restore_unused_in_any_order);
	tcase_add_test(tc, test_restore_unused_beyond_limit_keeps_newest);
	tcase_add_test(tc, test_restore_refuses_duplicates_and_bad_names);
	tcase_add_test(tc, test_restore_counters_never_lower);
	suite_add_tcase(s, tc);
	return s;
}

