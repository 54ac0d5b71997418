/*
 * fuzz_proto: the wire codec (src/proto.c) on arbitrary bytes.
 *
 * Every input is examined as a framed request (proto_frame_check,
 * proto_frame_want), decoded both as a bare body and as the body of its
 * frame (proto_decode), and whatever decodes is encoded again: a PORT2
 * reply from a decoded ALIVE2, NAMES and DUMP lines, ALIVE2 replies, and
 * the client's request frames. Each buffer handed to the codec is a heap
 * allocation of exactly the documented size, so AddressSanitizer sees any
 * read or write past it. Invariants that fail call abort().
 */
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "epmd.h"
#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Fail loudly, naming the broken invariant. */
#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_proto: invariant failed at %s:%d: %s\n", \
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

/* Read a big-endian 16-bit integer. */
static uint16_t
be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

/* Read a big-endian 32-bit integer. */
static uint32_t
be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	    ((uint32_t)p[2] << 8) | p[3];
}

/* A heap copy of exactly len bytes (never a NULL for len 0). */
static uint8_t *
dup_exact(const uint8_t *p, size_t len)
{
	uint8_t *q = malloc(len > 0 ? len : 1);

	if (q == NULL)
		abort();
	if (len > 0)
		memcpy(q, p, len);
	return q;
}

/* Is [p, p+n) inside [base, base+len)? */
static bool
inside(const uint8_t *base, size_t len, const uint8_t *p, size_t n)
{
	return p >= base && n <= len && (size_t)(p - base) <= len - n;
}

/*
 * An independent strict UTF-8 decoder (RFC 3629): the number of code
 * points, or -1 on overlong forms, surrogates, values above U+10FFFF,
 * stray or missing continuation bytes.
 */
static long
ref_utf8_chars(const uint8_t *s, size_t len)
{
	size_t	 i = 0, n, k;
	uint32_t cp, min;
	long	 chars = 0;

	while (i < len) {
		uint8_t b = s[i];

		if (b < 0x80) {
			i++;
			chars++;
			continue;
		}
		if ((b & 0xe0) == 0xc0) {
			n = 2;
			cp = b & 0x1f;
			min = 0x80;
		} else if ((b & 0xf0) == 0xe0) {
			n = 3;
			cp = b & 0x0f;
			min = 0x800;
		} else if ((b & 0xf8) == 0xf0) {
			n = 4;
			cp = b & 0x07;
			min = 0x10000;
		} else
			return -1;
		if (len - i < n)
			return -1;
		for (k = 1; k < n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return -1;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return -1;
		i += n;
		chars++;
	}
	return chars;
}

/* proto_utf8_chars and proto_name_valid against the reference decoder. */
static void
check_name_rules(const uint8_t *name, size_t len)
{
	uint8_t	*copy = dup_exact(name, len);
	long	 chars = proto_utf8_chars(copy, len);
	bool	 valid = proto_name_valid(copy, len);
	bool	 expect;

	CHECK(chars == ref_utf8_chars(copy, len));
	CHECK(chars <= (long)len);
	expect = len <= EPMD_MAXSYMLEN && memchr(copy, 0, len) == NULL &&
	    chars >= 0 && chars <= EPMD_MAX_NAME_CHARS;
	CHECK(valid == expect);
	free(copy);
}

/* What proto_frame_check and proto_frame_want must say about buf. */
static void
check_framing(const uint8_t *buf, size_t len)
{
	size_t			 body_len = 12345, want, length;
	enum proto_frame	 f;

	f = proto_frame_check(buf, len, &body_len);
	want = proto_frame_want(buf, len);
	if (len < EPMD_FRAME_HEADER) {
		CHECK(f == PROTO_FRAME_INCOMPLETE);
		CHECK(body_len == 0);
		CHECK(want == EPMD_INBUF_SIZE - 1 - len);
		return;
	}
	length = be16(buf);
	if (length == 0 || length > EPMD_MAX_FRAME_BODY) {
		CHECK(f == PROTO_FRAME_BAD_SIZE);
		CHECK(want == 0);
	} else if (len < length + EPMD_FRAME_HEADER) {
		CHECK(f == PROTO_FRAME_INCOMPLETE);
		CHECK(want == length + EPMD_FRAME_HEADER - len);
		/* A reader never buffers more than the reference's inbuf. */
		CHECK(len + want <= EPMD_INBUF_SIZE - 1);
	} else if (len > length + EPMD_FRAME_HEADER) {
		CHECK(f == PROTO_FRAME_TRAILING);
		CHECK(want == 0);
	} else {
		CHECK(f == PROTO_FRAME_COMPLETE);
		CHECK(body_len == length);
		CHECK(want == 0);
	}
	if (f != PROTO_FRAME_COMPLETE)
		CHECK(body_len == 0);
}

/* Encode a PORT2 reply for a, check its size and decode it back. */
static void
check_port2_found(const struct proto_alive2 *a)
{
	uint8_t	*out = malloc(PROTO_PORT2_RESP_MAX);
	size_t	 n, off;

	if (out == NULL)
		abort();
	n = proto_encode_port2_found(out, a);
	if (a->name_len > EPMD_MAXSYMLEN || a->extra_len > EPMD_MAXSYMLEN) {
		CHECK(n == 0);
		free(out);
		return;
	}
	CHECK(n == 14 + a->name_len + a->extra_len);
	CHECK(n <= PROTO_PORT2_RESP_MAX);
	CHECK(out[0] == EPMD_PORT2_RESP && out[1] == 0);
	CHECK(be16(out + 2) == a->port);
	CHECK(out[4] == a->node_type && out[5] == a->protocol);
	CHECK(be16(out + 6) == a->high && be16(out + 8) == a->low);
	CHECK(be16(out + 10) == a->name_len);
	off = 12;
	CHECK(a->name_len == 0 || memcmp(out + off, a->name, a->name_len) == 0);
	off += a->name_len;
	CHECK(be16(out + off) == a->extra_len);
	off += 2;
	CHECK(a->extra_len == 0 ||
	    memcmp(out + off, a->extra, a->extra_len) == 0);
	free(out);
}

/*
 * One encoded line: prefix, name, rest and (nul) a NUL byte. If that fits
 * in PROTO_LINE_MAX the encoder must have written exactly it, else nothing.
 */
static void
check_line(const uint8_t *line, size_t n, const char *prefix,
    const uint8_t *name, size_t name_len, const char *rest, bool nul)
{
	size_t	 plen = strlen(prefix), rlen = strlen(rest);
	size_t	 want = plen + name_len + rlen + (nul ? 1 : 0);

	if (want > PROTO_LINE_MAX) {
		CHECK(n == 0);
		return;
	}
	/* Every name that can register must fit. */
	CHECK(n == want);
	CHECK(memcmp(line, prefix, plen) == 0);
	CHECK(name_len == 0 || memcmp(line + plen, name, name_len) == 0);
	CHECK(memcmp(line + plen + name_len, rest, rlen) == 0);
	if (nul)
		CHECK(line[n - 1] == '\0');
}

/* NAMES and DUMP lines for name with a port and fd from the input. */
static void
check_lines(const uint8_t *name, size_t name_len, uint16_t port, int fd)
{
	uint8_t	*out = malloc(PROTO_LINE_MAX);
	char	 rest[96];
	size_t	 n;
	int	 r;

	if (out == NULL)
		abort();
	n = proto_encode_names_line(out, name, name_len, port);
	r = snprintf(rest, sizeof(rest), " at port %u\n", port);
	CHECK(r > 0 && (size_t)r < sizeof(rest));
	check_line(out, n, "name ", name, name_len, rest, false);

	n = proto_encode_dump_active(out, name, name_len, port, fd);
	r = snprintf(rest, sizeof(rest), "> at port %u, fd = %d\n", port, fd);
	CHECK(r > 0 && (size_t)r < sizeof(rest));
	check_line(out, n, "active name     <", name, name_len, rest, true);

	n = proto_encode_dump_unused(out, name, name_len, port, fd);
	r = snprintf(rest, sizeof(rest), ">, port = %u, fd = %d \n", port,
	    fd);
	CHECK(r > 0 && (size_t)r < sizeof(rest));
	check_line(out, n, "old/unused name <", name, name_len, rest, true);
	free(out);
}

/* Both ALIVE2 reply forms for a HighestVersion and a creation. */
static void
check_alive2_resp(uint16_t high, uint32_t creation)
{
	uint8_t	*out = malloc(6);
	size_t	 n;
	int	 ok;

	if (out == NULL)
		abort();
	for (ok = 0; ok <= 1; ok++) {
		n = proto_encode_alive2_resp(out, high, ok, creation);
		if (high >= EPMD_X_RESP_VERSION) {
			CHECK(n == 6);
			CHECK(out[0] == EPMD_ALIVE2_X_RESP);
			CHECK(out[1] == (ok ? 0 : 1));
			CHECK(be32(out + 2) ==
			    (ok ? creation : EPMD_ERROR_CREATION));
		} else {
			CHECK(n == 4);
			CHECK(out[0] == EPMD_ALIVE2_RESP);
			CHECK(out[1] == (ok ? 0 : 1));
			CHECK(be16(out + 2) == (ok ? creation % 3 + 1 :
			    EPMD_ERROR_CREATION));
			if (ok)
				CHECK(be16(out + 2) >= 1 && be16(out + 2) <= 3);
		}
	}
	n = proto_encode_port2_notfound(out);
	CHECK(n == 2 && out[0] == EPMD_PORT2_RESP && out[1] == 1);
	n = proto_encode_port_header(out, creation);
	CHECK(n == 4 && be32(out) == creation);
	free(out);
}

/* The structure of one successful decode of body[0..len). */
static void
check_request(const uint8_t *body, size_t len, const struct proto_request *r)
{
	const struct proto_alive2 *a = &r->alive2;

	CHECK(len >= 1);
	CHECK(r->type == body[0]);
	switch (r->type) {
	case PROTO_REQ_ALIVE2:
		CHECK(len > 13);
		CHECK(inside(body, len, a->name, a->name_len));
		CHECK(inside(body, len, a->extra, a->extra_len));
		CHECK(a->name == body + 11);
		CHECK(a->name_len == be16(body + 9));
		CHECK(a->extra == body + 13 + a->name_len);
		CHECK(a->extra_len == be16(body + 11 + a->name_len));
		CHECK(13 + a->name_len + a->extra_len <= len);
		CHECK(a->name_len == 0 ||
		    memchr(a->name, 0, a->name_len) == NULL);
		CHECK(a->port == be16(body + 1));
		CHECK(a->node_type == body[3] && a->protocol == body[4]);
		CHECK(a->high == be16(body + 5) && a->low == be16(body + 7));
		check_port2_found(a);
		check_lines(a->name, a->name_len, a->port, (int)be32(body + 5));
		check_alive2_resp(a->high, be32(body + 1));
		check_name_rules(a->name, a->name_len);
		break;
	case PROTO_REQ_PORT_PLEASE2:
		CHECK(r->name == body + 1);
		CHECK(r->name_len >= 1);
		CHECK(r->name_len == len - 1 ||
		    (r->name_len == len - 2 && body[len - 1] == 0));
		CHECK(inside(body, len, r->name, r->name_len));
		/* Lookups take every name that can register (PROTOCOL 8.4). */
		CHECK(proto_name_valid(r->name, r->name_len));
		check_lines(r->name, r->name_len, (uint16_t)len, -(int)len);
		break;
	case PROTO_REQ_STOP:
		CHECK(len >= 2);
		CHECK(r->name == body + 1);
		CHECK(inside(body, len, r->name, r->name_len));
		CHECK(r->name_len == 0 ||
		    memchr(r->name, 0, r->name_len) == NULL);
		CHECK(r->name_len == len - 1 || body[1 + r->name_len] == 0);
		break;
	case PROTO_REQ_NAMES:
	case PROTO_REQ_DUMP:
	case PROTO_REQ_KILL:
		break;
	default:
		CHECK(!"decoded an unknown request type");
	}
}

/* The error PROTOCOL.md 1.3, 1.7 and 1.11 give for a body, in their order. */
static enum proto_error
ref_decode_error(const uint8_t *b, size_t len)
{
	size_t	 nlen, elen;

	if (len == 0)
		return PROTO_ERR_EMPTY;
	switch (b[0]) {
	case 'x':
		if (len <= 13)
			return PROTO_ERR_ALIVE2_SHORT;
		nlen = be16(b + 9);
		if (nlen + 13 > len)
			return PROTO_ERR_ALIVE2_NAME_SIZE;
		elen = be16(b + 11 + nlen);
		if (elen + nlen + 13 > len)
			return PROTO_ERR_ALIVE2_EXTRA_SIZE;
		if (nlen > 0 && memchr(b + 11, 0, nlen) != NULL)
			return PROTO_ERR_ALIVE2_NAME_NUL;
		return PROTO_OK;
	case 'z':
		nlen = len - 1;
		if (nlen > 0 && b[len - 1] == 0)
			nlen--;		/* one trailing NUL is dropped */
		if (nlen == 0 || ref_utf8_chars(b + 1, nlen) < 0 ||
		    ref_utf8_chars(b + 1, nlen) > 255 || nlen > 1020 ||
		    memchr(b + 1, 0, nlen) != NULL)
			return PROTO_ERR_LOOKUP_NAME;
		return PROTO_OK;
	case 's':
		return len <= 1 ? PROTO_ERR_STOP_NAME : PROTO_OK;
	case 'n':
	case 'd':
	case 'k':
		return PROTO_OK;
	default:
		return PROTO_ERR_UNKNOWN_CODE;
	}
}

/* Decode body (an exact heap copy); returns the error. */
static enum proto_error
decode_and_check(const uint8_t *bytes, size_t len)
{
	uint8_t			*body = dup_exact(bytes, len);
	struct proto_request	 req;
	enum proto_error	 err;
	const char		*why;

	err = proto_decode(body, len, &req);
	why = proto_strerror(err);
	CHECK(why != NULL && why[0] != '\0');
	CHECK(err == ref_decode_error(body, len));
	if (err == PROTO_OK)
		check_request(body, len, &req);
	else if (len == 0)
		CHECK(err == PROTO_ERR_EMPTY);
	else if (body[0] != 'x' && body[0] != 'z' && body[0] != 'n' &&
	    body[0] != 'd' && body[0] != 'k' && body[0] != 's')
		CHECK(err == PROTO_ERR_UNKNOWN_CODE);
	else if (body[0] == 'x')
		CHECK(err == PROTO_ERR_ALIVE2_SHORT ||
		    err == PROTO_ERR_ALIVE2_NAME_SIZE ||
		    err == PROTO_ERR_ALIVE2_EXTRA_SIZE ||
		    err == PROTO_ERR_ALIVE2_NAME_NUL);
	else if (body[0] == 'z')
		CHECK(err == PROTO_ERR_LOOKUP_NAME);
	else if (body[0] == 's')
		CHECK(err == PROTO_ERR_STOP_NAME && len == 1);
	else
		CHECK(!"NAMES, DUMP and KILL never fail to decode");
	free(body);
	return err;
}

/* The client's request encoders, decoded back by the server's decoder. */
static void
check_client_frames(const uint8_t *data, size_t size)
{
	size_t			 len = size > EPMD_MAX_FRAME_BODY + 8 ?
	    EPMD_MAX_FRAME_BODY + 8 : size;
	uint8_t			*out = malloc(3 + len), *frame;
	size_t			 n, body_len;
	struct proto_request	 req;

	if (out == NULL)
		abort();
	n = proto_encode_stop_req(out, (const char *)data, len);
	if (len >= EPMD_MAX_FRAME_BODY) {
		CHECK(n == 0);
	} else {
		CHECK(n == 3 + len);
		frame = dup_exact(out, n);
		CHECK(proto_frame_check(frame, n, &body_len) ==
		    PROTO_FRAME_COMPLETE && body_len == len + 1);
		if (proto_decode(frame + 2, body_len, &req) == PROTO_OK) {
			CHECK(req.type == PROTO_REQ_STOP);
			CHECK(req.name_len <= len);
			CHECK(memcmp(req.name, data, req.name_len) == 0);
		} else
			CHECK(len == 0);
		free(frame);
	}
	n = proto_encode_simple_req(out, size > 0 ? data[0] : 'n');
	CHECK(n == 3 && be16(out) == 1);
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t			 body_len;
	uint8_t			*buf;

	/* The whole input as a buffered stream from one peer. */
	buf = dup_exact(data, size);
	check_framing(buf, size);
	/* Every prefix the reader may have seen before it was complete. */
	if (size <= 64) {
		size_t k;

		for (k = 0; k < size; k++)
			check_framing(buf, k);
	}
	if (proto_frame_check(buf, size, &body_len) == PROTO_FRAME_COMPLETE)
		decode_and_check(buf + EPMD_FRAME_HEADER, body_len);
	free(buf);

	/* The whole input as a body, then with a request code in front. */
	decode_and_check(data, size);
	if (size > 0 && size < 4096) {
		static const uint8_t codes[] = { 'x', 'z', 's' };
		uint8_t *b = malloc(size + 1);

		if (b == NULL)
			abort();
		memcpy(b + 1, data, size);
		b[0] = codes[data[0] % sizeof(codes)];
		decode_and_check(b, size + 1);
		free(b);
	}

	/* The name rules, and the line encoders on the raw input. */
	check_name_rules(data, size);
	if (size >= 6)
		check_lines(data + 6, size - 6, be16(data), (int)be32(data + 2));
	check_client_frames(data, size);
	return 0;
}
