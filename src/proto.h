/* The wire codec: framing, request decoding, reply encoding. No I/O. */
#ifndef PROTO_H
#define PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "epmd.h"

enum proto_frame {
	PROTO_FRAME_INCOMPLETE,	/* need more bytes */
	PROTO_FRAME_COMPLETE,	/* exactly one frame is buffered */
	PROTO_FRAME_BAD_SIZE,	/* Length is 0 or above 3057 */
	PROTO_FRAME_TRAILING,	/* more bytes than one frame arrived */
};

enum proto_req_type {
	PROTO_REQ_ALIVE2 = EPMD_ALIVE2_REQ,
	PROTO_REQ_PORT_PLEASE2 = EPMD_PORT_PLEASE2_REQ,
	PROTO_REQ_NAMES = EPMD_NAMES_REQ,
	PROTO_REQ_DUMP = EPMD_DUMP_REQ,
	PROTO_REQ_KILL = EPMD_KILL_REQ,
	PROTO_REQ_STOP = EPMD_STOP_REQ,
};

/* Why a request was rejected; every one of these closes silently. */
enum proto_error {
	PROTO_OK = 0,
	PROTO_ERR_EMPTY,		/* zero-length body */
	PROTO_ERR_UNKNOWN_CODE,		/* unknown or legacy request code */
	PROTO_ERR_ALIVE2_SHORT,		/* body of 13 bytes or fewer */
	PROTO_ERR_ALIVE2_NAME_SIZE,	/* Nlen runs past the body */
	PROTO_ERR_ALIVE2_EXTRA_SIZE,	/* Elen runs past the body */
	PROTO_ERR_ALIVE2_NAME_NUL,	/* NUL inside the name */
	PROTO_ERR_LOOKUP_NAME,		/* PORT_PLEASE2 name empty/NUL/bad */
	PROTO_ERR_STOP_NAME,		/* STOP with an empty name */
};

/* An ALIVE2_REQ; name and extra point into the decoded body. */
struct proto_alive2 {
	uint16_t	 port;
	uint8_t		 node_type;
	uint8_t		 protocol;
	uint16_t	 high;
	uint16_t	 low;
	const uint8_t	*name;
	size_t		 name_len;
	const uint8_t	*extra;
	size_t		 extra_len;
};

/* One decoded request. Pointers reference the caller's body buffer. */
struct proto_request {
	enum proto_req_type	 type;
	struct proto_alive2	 alive2;	/* PROTO_REQ_ALIVE2 */
	const uint8_t		*name;		/* PORT_PLEASE2, STOP */
	size_t			 name_len;
};

/* Largest encoded replies, for callers' stack buffers. */
#define PROTO_PORT2_RESP_MAX	(1 + 1 + 2 + 1 + 1 + 2 + 2 + 2 + EPMD_MAXSYMLEN + 2 + EPMD_MAXSYMLEN)
#define PROTO_LINE_MAX		(EPMD_MAXSYMLEN + 96)

/* Examine buffered bytes; on COMPLETE, *body_len is the body's length. */
enum proto_frame proto_frame_check(const uint8_t *buf, size_t len,
	    size_t *body_len);
/* Bytes a reader may still take in without passing the current frame. */
size_t proto_frame_want(const uint8_t *buf, size_t len);
/* Decode one frame body (without its length header). */
enum proto_error proto_decode(const uint8_t *body, size_t len,
	    struct proto_request *req);
/* A short text for a decode error, for logs. */
const char *proto_strerror(enum proto_error err);

/* How long a UTF-8 sequence that starts with b is: 1 to 4, 0 if none can. */
size_t proto_utf8_lead_len(uint8_t b);
/* Count the characters of strict UTF-8; -1 if the bytes are not UTF-8. */
long proto_utf8_chars(const uint8_t *s, size_t len);
/* Can this name register: UTF-8, no NUL, <= 255 chars, <= 1020 bytes? */
bool proto_name_valid(const uint8_t *name, size_t len);

/*
 * ALIVE2 reply, 'v' (6 bytes) or 'y' (4 bytes) by the request's
 * HighestVersion; returns its size. creation is the registry's 32-bit value:
 * a 'y' reply carries creation % 3 + 1, an error reply always carries 99.
 */
size_t proto_encode_alive2_resp(uint8_t *out, uint16_t high, bool ok,
	    uint32_t creation);
/* PORT2_RESP for an unknown name ('w', 1); returns 2. */
size_t proto_encode_port2_notfound(uint8_t *out);
/* PORT2_RESP for a registered node; out must hold PROTO_PORT2_RESP_MAX. */
size_t proto_encode_port2_found(uint8_t *out, const struct proto_alive2 *node);
/* The 4-byte port header of NAMES and DUMP replies; returns its size. */
#define PROTO_PORT_HEADER_LEN	4
size_t proto_encode_port_header(uint8_t *out, uint32_t port);
/* "name N at port P\n"; out must hold PROTO_LINE_MAX. */
size_t proto_encode_names_line(uint8_t *out, const uint8_t *name,
	    size_t name_len, uint16_t port);
/* "active name     <N> at port P, fd = F\n\0". */
size_t proto_encode_dump_active(uint8_t *out, const uint8_t *name,
	    size_t name_len, uint16_t port, int fd);
/* "old/unused name <N>, port = P, fd = F \n\0". */
size_t proto_encode_dump_unused(uint8_t *out, const uint8_t *name,
	    size_t name_len, uint16_t port, int fd);

/* KILL and STOP replies: bare texts, no length prefix. */
#define PROTO_KILL_RESP_LEN	2	/* "OK" (exiting) or "NO" */
#define PROTO_STOP_RESP_LEN	7	/* what a client reads: STOPPED, NOEXIST */
#define PROTO_STOP_RESP_MAX	14	/* "NOEXISTSTOPPED", as OTP sends it */

/* KILL reply: "OK" if the daemon exits, "NO" if it refuses; returns 2. */
size_t proto_encode_kill_resp(uint8_t *out, bool ok);
/* STOP reply: "STOPPED", or "NOEXISTSTOPPED" for an unknown name. */
size_t proto_encode_stop_resp(uint8_t *out, bool stopped);
/* Does a PROTO_KILL_RESP_LEN-byte KILL reply say the daemon exits? */
bool proto_kill_resp_ok(const uint8_t *reply);

/* Client side: the request frames the CLI sends. */
size_t proto_encode_simple_req(uint8_t *out, uint8_t code);
/* STOP_REQ for name; out must hold 3 + len bytes. */
size_t proto_encode_stop_req(uint8_t *out, const char *name, size_t len);

#endif
