/* What the load generator and the null server agree on (bench/README.md). */
#ifndef BENCH_H
#define BENCH_H

#include <stdint.h>

/*
 * Every node the bench registers is "n" plus six digits, so every request
 * and every reply has the same size whichever node it names. Nodes that
 * come and go in the churn scenario are "c" plus six digits.
 */
#define BENCH_NAME_LEN		7
#define BENCH_MAX_NAMES		1000000
#define BENCH_STABLE_PREFIX	'n'
#define BENCH_CHURN_PREFIX	'c'

/* The distribution port a bench node claims: derived from its index. */
#define BENCH_NODE_PORT(i)	((uint16_t)(1024 + (i) % 60000))

/* Fields of every bench ALIVE2: a normal node over TCP, versions 6..5. */
#define BENCH_NODE_TYPE		77	/* 'M' */
#define BENCH_NODE_PROTO	0
#define BENCH_NODE_HIGH		6
#define BENCH_NODE_LOW		5

/* PORT2_RESP for a known name: 12 header bytes, the name, Elen 0. */
#define BENCH_PORT2_LEN		(12 + BENCH_NAME_LEN + 2)

/*
 * The null server's one answer to every lookup: the PORT2_RESP that a real
 * daemon gives for node n000000, so the bytes on the wire match in size.
 */
#define BENCH_NULL_PORT2 { \
	0x77, 0x00, 0x04, 0x00, 0x4d, 0x00, 0x00, 0x06, 0x00, 0x05, \
	0x00, 0x07, 'n', '0', '0', '0', '0', '0', '0', 0x00, 0x00 }

/* The null server's answer to ALIVE2: success, creation 4. */
#define BENCH_NULL_ALIVE2 { 0x76, 0x00, 0x00, 0x00, 0x00, 0x04 }

#endif
