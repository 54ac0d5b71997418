/*
 * The wire codec of the port mapper: framing, request decoding and reply
 * encoding (PROTOCOL.md section 1). Pure functions over caller buffers: no
 * I/O, no allocation, no globals.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "epmd.h"
#include "proto.h"

/* Offsets into an ALIVE2_REQ body (PROTOCOL.md 1.3). */
#define ALIVE2_OFF_PORT		1
#define ALIVE2_OFF_TYPE		3
#define ALIVE2_OFF_PROTO	4
#define ALIVE2_OFF_HIGH		5
#define ALIVE2_OFF_LOW		7
#define ALIVE2_OFF_NLEN		9
#define ALIVE2_OFF_NAME		11
/* Code, port, type, proto, high, low, Nlen and Elen: the fixed part. */
#define ALIVE2_FIXED		13

/* A text line under construction, bounded by its capacity. */
struct line {
	uint8_t	*out;
	size_t	 len;
	size_t	 cap;
	bool	 overflow;
};

/* Read a big-endian 16-bit integer. */
static uint16_t
get_u16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

/* Write a big-endian 16-bit integer; returns 2. */
static size_t
put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return 2;
}

/* Write a big-endian 32-bit integer; returns 4. */
static size_t
put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return 4;
}

/* Examine buffered bytes; on COMPLETE, *body_len is the body's length. */
enum proto_frame
proto_frame_check(const uint8_t *buf, size_t len, size_t *body_len)
{
	size_t	 length;

	*body_len = 0;
	if (len < EPMD_FRAME_HEADER)
		return PROTO_FRAME_INCOMPLETE;
	length = get_u16(buf);
	if (length == 0 || length > EPMD_MAX_FRAME_BODY)
		return PROTO_FRAME_BAD_SIZE;
	if (len < length + EPMD_FRAME_HEADER)
		return PROTO_FRAME_INCOMPLETE;
	if (len > length + EPMD_FRAME_HEADER)
		return PROTO_FRAME_TRAILING;
	*body_len = length;
	return PROTO_FRAME_COMPLETE;
}

/* Bytes a reader may still take in without passing the current frame. */
size_t
proto_frame_want(const uint8_t *buf, size_t len)
{
	size_t	 length;

	/* Like the reference: read up to 3059 bytes until the length is known. */
	if (len < EPMD_FRAME_HEADER)
		return (EPMD_INBUF_SIZE - 1) - len;
	length = get_u16(buf);
	if (length == 0 || length > EPMD_MAX_FRAME_BODY)
		return 0;
	if (len >= length + EPMD_FRAME_HEADER)
		return 0;
	return length + EPMD_FRAME_HEADER - len;
}

/* Decode the body of an ALIVE2_REQ (PROTOCOL.md 1.3, steps 2 to 6). */
static enum proto_error
decode_alive2(const uint8_t *body, size_t len, struct proto_alive2 *a)
{
	size_t	 nlen, elen;

	if (len <= ALIVE2_FIXED)
		return PROTO_ERR_ALIVE2_SHORT;
	nlen = get_u16(body + ALIVE2_OFF_NLEN);
	if (nlen + ALIVE2_FIXED > len)
		return PROTO_ERR_ALIVE2_NAME_SIZE;
	/* Nlen + 13 <= len, so both Elen bytes are inside the body. */
	elen = get_u16(body + ALIVE2_OFF_NAME + nlen);
	if (elen + nlen + ALIVE2_FIXED > len)
		return PROTO_ERR_ALIVE2_EXTRA_SIZE;
	if (memchr(body + ALIVE2_OFF_NAME, '\0', nlen) != NULL)
		return PROTO_ERR_ALIVE2_NAME_NUL;

	a->port = get_u16(body + ALIVE2_OFF_PORT);
	a->node_type = body[ALIVE2_OFF_TYPE];
	a->protocol = body[ALIVE2_OFF_PROTO];
	a->high = get_u16(body + ALIVE2_OFF_HIGH);
	a->low = get_u16(body + ALIVE2_OFF_LOW);
	a->name = body + ALIVE2_OFF_NAME;
	a->name_len = nlen;
	a->extra = body + ALIVE2_FIXED + nlen;
	a->extra_len = elen;
	/* Bytes after the extra field are ignored. */
	return PROTO_OK;
}

/* Decode the name of a PORT_PLEASE2_REQ (PROTOCOL.md 1.7, 8.4). */
static enum proto_error
decode_port_please2(const uint8_t *body, size_t len,
    struct proto_request *req)
{
	const uint8_t	*name = body + 1;
	size_t		 nlen = len - 1;

	/* A single trailing NUL is tolerated. */
	if (nlen > 0 && name[nlen - 1] == '\0')
		nlen--;
	if (nlen == 0 || !proto_name_valid(name, nlen))
		return PROTO_ERR_LOOKUP_NAME;
	req->name = name;
	req->name_len = nlen;
	return PROTO_OK;
}

/* Decode the name of a STOP_REQ: a C string, not otherwise checked. */
static enum proto_error
decode_stop(const uint8_t *body, size_t len, struct proto_request *req)
{
	const uint8_t	*nul;

	if (len <= 1)
		return PROTO_ERR_STOP_NAME;
	req->name = body + 1;
	nul = memchr(body + 1, '\0', len - 1);
	req->name_len = nul != NULL ? (size_t)(nul - (body + 1)) : len - 1;
	return PROTO_OK;
}

/* Decode one frame body (without its length header). */
enum proto_error
proto_decode(const uint8_t *body, size_t len, struct proto_request *req)
{
	memset(req, 0, sizeof(*req));
	if (len == 0)
		return PROTO_ERR_EMPTY;

	switch (body[0]) {
	case EPMD_ALIVE2_REQ:
		req->type = PROTO_REQ_ALIVE2;
		return decode_alive2(body, len, &req->alive2);
	case EPMD_PORT_PLEASE2_REQ:
		req->type = PROTO_REQ_PORT_PLEASE2;
		return decode_port_please2(body, len, req);
	case EPMD_NAMES_REQ:
		req->type = PROTO_REQ_NAMES;
		return PROTO_OK;
	case EPMD_DUMP_REQ:
		req->type = PROTO_REQ_DUMP;
		return PROTO_OK;
	case EPMD_KILL_REQ:
		req->type = PROTO_REQ_KILL;
		return PROTO_OK;
	case EPMD_STOP_REQ:
		req->type = PROTO_REQ_STOP;
		return decode_stop(body, len, req);
	default:
		return PROTO_ERR_UNKNOWN_CODE;
	}
}

/* A short text for a decode error, for logs. */
const char *
proto_strerror(enum proto_error err)
{
	switch (err) {
	case PROTO_OK:
		return "ok";
	case PROTO_ERR_EMPTY:
		return "empty request";
	case PROTO_ERR_UNKNOWN_CODE:
		return "unknown request code";
	case PROTO_ERR_ALIVE2_SHORT:
		return "ALIVE2_REQ too short";
	case PROTO_ERR_ALIVE2_NAME_SIZE:
		return "ALIVE2_REQ node name size error";
	case PROTO_ERR_ALIVE2_EXTRA_SIZE:
		return "ALIVE2_REQ extra info size error";
	case PROTO_ERR_ALIVE2_NAME_NUL:
		return "ALIVE2_REQ node name contains NUL";
	case PROTO_ERR_LOOKUP_NAME:
		return "PORT_PLEASE2_REQ bad node name";
	case PROTO_ERR_STOP_NAME:
		return "STOP_REQ empty node name";
	}
	return "unknown error";
}

/* Is b a UTF-8 continuation byte within [lo, hi]? */
static bool
cont_in(uint8_t b, uint8_t lo, uint8_t hi)
{
	return b >= lo && b <= hi;
}

/*
 * Length of the strict UTF-8 sequence at s (at most avail bytes), or 0 if it
 * is not one. The ranges of the second byte exclude overlong forms,
 * surrogates and code points above U+10FFFF.
 */
static size_t
utf8_seq_len(const uint8_t *s, size_t avail)
{
	uint8_t	 b = s[0];
	uint8_t	 lo = 0x80, hi = 0xbf;
	size_t	 n = proto_utf8_lead_len(b), i;

	if (n == 1)
		return 1;
	if (n == 0 || n > avail)
		return 0;

	if (b == 0xe0)
		lo = 0xa0;	/* overlong 3-byte */
	else if (b == 0xed)
		hi = 0x9f;	/* surrogates */
	else if (b == 0xf0)
		lo = 0x90;	/* overlong 4-byte */
	else if (b == 0xf4)
		hi = 0x8f;	/* above U+10FFFF */
	if (!cont_in(s[1], lo, hi))
		return 0;
	for (i = 2; i < n; i++)
		if (!cont_in(s[i], 0x80, 0xbf))
			return 0;
	return n;
}

/* How long a UTF-8 sequence that starts with b is: 1 to 4, 0 if none can. */
size_t
proto_utf8_lead_len(uint8_t b)
{
	if (b < 0x80)
		return 1;
	if (b >= 0xc2 && b <= 0xdf)
		return 2;
	if (b >= 0xe0 && b <= 0xef)
		return 3;
	if (b >= 0xf0 && b <= 0xf4)
		return 4;
	return 0;	/* stray continuation, c0/c1, f5..ff */
}

/* Count the characters of strict UTF-8; -1 if the bytes are not UTF-8. */
long
proto_utf8_chars(const uint8_t *s, size_t len)
{
	size_t	 off = 0, n;
	long	 chars = 0;

	while (off < len) {
		n = utf8_seq_len(s + off, len - off);
		if (n == 0)
			return -1;
		off += n;
		chars++;
	}
	return chars;
}

/* Can this name register: UTF-8, no NUL, <= 255 chars, <= 1020 bytes? */
bool
proto_name_valid(const uint8_t *name, size_t len)
{
	long	 chars;

	if (len > EPMD_MAXSYMLEN)
		return false;
	if (memchr(name, '\0', len) != NULL)
		return false;
	chars = proto_utf8_chars(name, len);
	return chars >= 0 && chars <= EPMD_MAX_NAME_CHARS;
}

/* ALIVE2 reply, 'v' (6 bytes) or 'y' (4 bytes) by HighestVersion. */
size_t
proto_encode_alive2_resp(uint8_t *out, uint16_t high, bool ok,
    uint32_t creation)
{
	out[1] = ok ? 0 : 1;
	if (high >= EPMD_X_RESP_VERSION) {
		out[0] = EPMD_ALIVE2_X_RESP;
		return 2 + put_u32(out + 2,
		    ok ? creation : EPMD_ERROR_CREATION);
	}
	out[0] = EPMD_ALIVE2_RESP;
	return 2 + put_u16(out + 2,
	    ok ? (uint16_t)(creation % 3 + 1) : EPMD_ERROR_CREATION);
}

/* PORT2_RESP for an unknown name ('w', 1); returns 2. */
size_t
proto_encode_port2_notfound(uint8_t *out)
{
	out[0] = EPMD_PORT2_RESP;
	out[1] = 1;
	return 2;
}

/*
 * PORT2_RESP for a registered node; out must hold PROTO_PORT2_RESP_MAX.
 * Returns 0 (and writes nothing) if the name or extra exceeds the 1020-byte
 * limit the registry enforces, so the buffer can never be overrun.
 */
size_t
proto_encode_port2_found(uint8_t *out, const struct proto_alive2 *node)
{
	size_t	 off = 0;

	if (node->name_len > EPMD_MAXSYMLEN || node->extra_len > EPMD_MAXSYMLEN)
		return 0;
	out[off++] = EPMD_PORT2_RESP;
	out[off++] = 0;
	off += put_u16(out + off, node->port);
	out[off++] = node->node_type;
	out[off++] = node->protocol;
	off += put_u16(out + off, node->high);
	off += put_u16(out + off, node->low);
	off += put_u16(out + off, (uint16_t)node->name_len);
	if (node->name_len > 0)
		memcpy(out + off, node->name, node->name_len);
	off += node->name_len;
	off += put_u16(out + off, (uint16_t)node->extra_len);
	if (node->extra_len > 0)
		memcpy(out + off, node->extra, node->extra_len);
	off += node->extra_len;
	return off;
}

/* The 4-byte port header of NAMES and DUMP replies. */
size_t
proto_encode_port_header(uint8_t *out, uint32_t port)
{
	return put_u32(out, port);
}

/* Append raw bytes to a line, or mark it overflowed. */
static void
line_put(struct line *l, const void *p, size_t n)
{
	if (l->overflow || n > l->cap - l->len) {
		l->overflow = true;
		return;
	}
	if (n > 0)
		memcpy(l->out + l->len, p, n);
	l->len += n;
}

/* Append a literal string (without its NUL) to a line. */
static void
line_str(struct line *l, const char *s)
{
	line_put(l, s, strlen(s));
}

/* Append a signed decimal number to a line. */
static void
line_dec(struct line *l, long long v)
{
	char	 buf[24];
	int	 n;

	n = snprintf(buf, sizeof(buf), "%lld", v);
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		l->overflow = true;
		return;
	}
	line_put(l, buf, (size_t)n);
}

/* Start a line in out, which holds PROTO_LINE_MAX bytes. */
static void
line_init(struct line *l, uint8_t *out)
{
	l->out = out;
	l->len = 0;
	l->cap = PROTO_LINE_MAX;
	l->overflow = false;
}

/* The finished line's length, or 0 if it did not fit. */
static size_t
line_done(const struct line *l)
{
	return l->overflow ? 0 : l->len;
}

/* "name N at port P\n"; out must hold PROTO_LINE_MAX. */
size_t
proto_encode_names_line(uint8_t *out, const uint8_t *name, size_t name_len,
    uint16_t port)
{
	struct line	 l;

	line_init(&l, out);
	line_str(&l, "name ");
	line_put(&l, name, name_len);
	line_str(&l, " at port ");
	line_dec(&l, port);
	line_str(&l, "\n");
	return line_done(&l);
}

/* "active name     <N> at port P, fd = F\n\0". */
size_t
proto_encode_dump_active(uint8_t *out, const uint8_t *name, size_t name_len,
    uint16_t port, int fd)
{
	struct line	 l;

	line_init(&l, out);
	line_str(&l, "active name     <");
	line_put(&l, name, name_len);
	line_str(&l, "> at port ");
	line_dec(&l, port);
	line_str(&l, ", fd = ");
	line_dec(&l, fd);
	line_put(&l, "\n", 2);	/* the newline and its NUL */
	return line_done(&l);
}

/* "old/unused name <N>, port = P, fd = F \n\0". */
size_t
proto_encode_dump_unused(uint8_t *out, const uint8_t *name, size_t name_len,
    uint16_t port, int fd)
{
	struct line	 l;

	line_init(&l, out);
	line_str(&l, "old/unused name <");
	line_put(&l, name, name_len);
	line_str(&l, ">, port = ");
	line_dec(&l, port);
	line_str(&l, ", fd = ");
	line_dec(&l, fd);
	line_put(&l, " \n", 3);	/* space, newline and NUL */
	return line_done(&l);
}

/* KILL reply: "OK" if the daemon exits, "NO" if it refuses; returns 2. */
size_t
proto_encode_kill_resp(uint8_t *out, bool ok)
{
	memcpy(out, ok ? "OK" : "NO", PROTO_KILL_RESP_LEN);
	return PROTO_KILL_RESP_LEN;
}

/*
 * STOP reply: "STOPPED", or for an unknown name "NOEXISTSTOPPED": OTP
 * sends both words, and its clients read only the first seven bytes.
 */
size_t
proto_encode_stop_resp(uint8_t *out, bool stopped)
{
	static const char	both[] = "NOEXISTSTOPPED";

	if (stopped) {
		memcpy(out, both + PROTO_STOP_RESP_LEN, PROTO_STOP_RESP_LEN);
		return PROTO_STOP_RESP_LEN;
	}
	memcpy(out, both, PROTO_STOP_RESP_MAX);
	return PROTO_STOP_RESP_MAX;
}

/* Does a PROTO_KILL_RESP_LEN-byte KILL reply say the daemon exits? */
bool
proto_kill_resp_ok(const uint8_t *reply)
{
	return memcmp(reply, "OK", PROTO_KILL_RESP_LEN) == 0;
}

/* Client side: a request frame that is only its code; returns 3. */
size_t
proto_encode_simple_req(uint8_t *out, uint8_t code)
{
	size_t	 off;

	off = put_u16(out, 1);
	out[off++] = code;
	return off;
}

/*
 * STOP_REQ for name; out must hold 3 + len bytes. Returns 0 (and writes
 * nothing) if the frame would exceed the 3057-byte body limit.
 */
size_t
proto_encode_stop_req(uint8_t *out, const char *name, size_t len)
{
	size_t	 off;

	if (len >= EPMD_MAX_FRAME_BODY)
		return 0;
	off = put_u16(out, (uint16_t)(len + 1));
	out[off++] = EPMD_STOP_REQ;
	if (len > 0)
		memcpy(out + off, name, len);
	return off + len;
}
