/*
 * Unit tests of the wire codec, byte for byte against PROTOCOL.md
 * (sections 1, 7.2, 7.3, 7.6 and 8.4).
 */

#include <check.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "epmd.h"
#include "proto.h"
#include "unit.h"

/* Compare an encoded result with a byte array of known size. */
#define ASSERT_BYTES(got, got_len, want) do {				\
	ck_assert_uint_eq((got_len), sizeof(want));			\
	ck_assert_mem_eq((got), (want), sizeof(want));			\
} while (0)

/* Compare an encoded result with a string literal, NULs included. */
#define ASSERT_TEXT(got, got_len, lit) do {				\
	ck_assert_uint_eq((got_len), sizeof(lit) - 1);			\
	ck_assert_mem_eq((got), (lit), sizeof(lit) - 1);		\
} while (0)

/* The bytes of a string literal, without the implicit NUL. */
#define LIT(s)	((const uint8_t *)(s)), (sizeof(s) - 1)

/* U+1F600 in UTF-8. */
static const uint8_t emoji[4] = { 0xf0, 0x9f, 0x98, 0x80 };

/* Build an ALIVE2_REQ body in b; returns its length. */
static size_t
alive2_body(uint8_t *b, uint16_t port, uint8_t type, uint8_t proto,
    uint16_t high, uint16_t low, const uint8_t *name, size_t nlen,
    const uint8_t *extra, size_t elen)
{
	size_t	 off = 0;

	b[off++] = EPMD_ALIVE2_REQ;
	b[off++] = (uint8_t)(port >> 8);
	b[off++] = (uint8_t)port;
	b[off++] = type;
	b[off++] = proto;
	b[off++] = (uint8_t)(high >> 8);
	b[off++] = (uint8_t)high;
	b[off++] = (uint8_t)(low >> 8);
	b[off++] = (uint8_t)low;
	b[off++] = (uint8_t)(nlen >> 8);
	b[off++] = (uint8_t)nlen;
	if (nlen > 0)
		memcpy(b + off, name, nlen);
	off += nlen;
	b[off++] = (uint8_t)(elen >> 8);
	b[off++] = (uint8_t)elen;
	if (elen > 0)
		memcpy(b + off, extra, elen);
	off += elen;
	return off;
}

/* Build a PORT_PLEASE2_REQ body in b; returns its length. */
static size_t
lookup_body(uint8_t *b, const uint8_t *name, size_t nlen)
{
	b[0] = EPMD_PORT_PLEASE2_REQ;
	if (nlen > 0)
		memcpy(b + 1, name, nlen);
	return 1 + nlen;
}

/* Fill b with n copies of the 4-byte U+1F600; returns the byte count. */
static size_t
emoji_name(uint8_t *b, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		memcpy(b + 4 * i, emoji, sizeof(emoji));
	return 4 * n;
}

/* Decode a body, expecting success; returns the request type. */
static enum proto_req_type
decode_ok(const uint8_t *body, size_t len, struct proto_request *req)
{
	ck_assert_int_eq(proto_decode(body, len, req), PROTO_OK);
	return req->type;
}

/* --- Framing (1.1, 7.2) ------------------------------------------------- */

START_TEST(test_frame_fewer_than_2_bytes_is_incomplete)
{
	static const uint8_t b[] = { 0x00 };
	size_t	 body_len = 99;

	ck_assert_int_eq(proto_frame_check(b, 0, &body_len),
	    PROTO_FRAME_INCOMPLETE);
	ck_assert_int_eq(proto_frame_check(b, 1, &body_len),
	    PROTO_FRAME_INCOMPLETE);
}
END_TEST

START_TEST(test_frame_00_00_is_bad_size)
{
	static const uint8_t b[] = { 0x00, 0x00 };
	static const uint8_t more[] = { 0x00, 0x00, 0x6e, 0x6e, 0x6e, 0x6e };
	size_t	 body_len;

	ck_assert_int_eq(proto_frame_check(b, sizeof(b), &body_len),
	    PROTO_FRAME_BAD_SIZE);
	ck_assert_int_eq(proto_frame_check(more, sizeof(more), &body_len),
	    PROTO_FRAME_BAD_SIZE);
}
END_TEST

START_TEST(test_frame_ff_ff_is_bad_size)
{
	static const uint8_t b[] = { 0xff, 0xff };
	size_t	 body_len;

	ck_assert_int_eq(proto_frame_check(b, sizeof(b), &body_len),
	    PROTO_FRAME_BAD_SIZE);
}
END_TEST

START_TEST(test_frame_length_3057_is_accepted)
{
	uint8_t	 b[EPMD_INBUF_SIZE];
	size_t	 body_len;
	struct proto_request req;

	memset(b, 'x', sizeof(b));
	b[0] = 0x0b;	/* 3057 = 0x0bf1 */
	b[1] = 0xf1;
	b[2] = EPMD_NAMES_REQ;
	ck_assert_int_eq(proto_frame_check(b, 3058, &body_len),
	    PROTO_FRAME_INCOMPLETE);
	ck_assert_int_eq(proto_frame_check(b, 3059, &body_len),
	    PROTO_FRAME_COMPLETE);
	ck_assert_uint_eq(body_len, 3057);
	ck_assert_int_eq(decode_ok(b + 2, body_len, &req), PROTO_REQ_NAMES);
}
END_TEST

START_TEST(test_frame_length_3058_is_bad_size)
{
	static const uint8_t b[] = { 0x0b, 0xf2, EPMD_NAMES_REQ };
	size_t	 body_len;

	ck_assert_int_eq(proto_frame_check(b, 2, &body_len),
	    PROTO_FRAME_BAD_SIZE);
	ck_assert_int_eq(proto_frame_check(b, sizeof(b), &body_len),
	    PROTO_FRAME_BAD_SIZE);
}
END_TEST

START_TEST(test_frame_partial_body_is_incomplete)
{
	static const uint8_t b[] = { 0x00, 0x03, 0x7a, 0x6e, 0x31 };
	size_t	 body_len;

	ck_assert_int_eq(proto_frame_check(b, 2, &body_len),
	    PROTO_FRAME_INCOMPLETE);
	ck_assert_int_eq(proto_frame_check(b, 4, &body_len),
	    PROTO_FRAME_INCOMPLETE);
	ck_assert_int_eq(proto_frame_check(b, 5, &body_len),
	    PROTO_FRAME_COMPLETE);
	ck_assert_uint_eq(body_len, 3);
}
END_TEST

START_TEST(test_frame_names_00_01_6e_is_complete)
{
	static const uint8_t b[] = { 0x00, 0x01, 0x6e };
	size_t	 body_len;
	struct proto_request req;

	ck_assert_int_eq(proto_frame_check(b, sizeof(b), &body_len),
	    PROTO_FRAME_COMPLETE);
	ck_assert_uint_eq(body_len, 1);
	ck_assert_int_eq(decode_ok(b + 2, body_len, &req), PROTO_REQ_NAMES);
}
END_TEST

START_TEST(test_frame_dump_00_01_64_is_complete)
{
	static const uint8_t b[] = { 0x00, 0x01, 0x64 };
	size_t	 body_len;
	struct proto_request req;

	ck_assert_int_eq(proto_frame_check(b, sizeof(b), &body_len),
	    PROTO_FRAME_COMPLETE);
	ck_assert_int_eq(decode_ok(b + 2, body_len, &req), PROTO_REQ_DUMP);
}
END_TEST

START_TEST(test_frame_names_with_length_4_and_junk_is_names)
{
	static const uint8_t b[] = { 0x00, 0x04, 0x6e, 0x78, 0x79, 0x7a };
	size_t	 body_len;
	struct proto_request req;

	ck_assert_int_eq(proto_frame_check(b, sizeof(b), &body_len),
	    PROTO_FRAME_COMPLETE);
	ck_assert_uint_eq(body_len, 4);
	ck_assert_int_eq(decode_ok(b + 2, body_len, &req), PROTO_REQ_NAMES);
}
END_TEST

START_TEST(test_frame_two_names_frames_in_one_read_is_trailing)
{
	static const uint8_t b[] = { 0x00, 0x01, 0x6e, 0x00, 0x01, 0x6e };
	size_t	 body_len;

	ck_assert_int_eq(proto_frame_check(b, sizeof(b), &body_len),
	    PROTO_FRAME_TRAILING);
}
END_TEST

START_TEST(test_frame_names_plus_one_byte_is_trailing)
{
	static const uint8_t b[] = { 0x00, 0x01, 0x6e, 0x00 };
	size_t	 body_len;

	ck_assert_int_eq(proto_frame_check(b, sizeof(b), &body_len),
	    PROTO_FRAME_TRAILING);
}
END_TEST

START_TEST(test_frame_want_before_header_is_3059_minus_len)
{
	static const uint8_t b[] = { 0x00 };

	ck_assert_uint_eq(proto_frame_want(b, 0), 3059);
	ck_assert_uint_eq(proto_frame_want(b, 1), 3058);
}
END_TEST

START_TEST(test_frame_want_after_header_is_rest_of_frame)
{
	static const uint8_t b[] = { 0x00, 0x03, 0x7a, 0x6e, 0x31, 0x00 };
	static const uint8_t max[] = { 0x0b, 0xf1 };
	static const uint8_t one[] = { 0x00, 0x01 };

	ck_assert_uint_eq(proto_frame_want(b, 2), 3);
	ck_assert_uint_eq(proto_frame_want(b, 3), 2);
	ck_assert_uint_eq(proto_frame_want(b, 4), 1);
	ck_assert_uint_eq(proto_frame_want(b, 5), 0);
	ck_assert_uint_eq(proto_frame_want(b, 6), 0);
	ck_assert_uint_eq(proto_frame_want(max, 2), 3057);
	ck_assert_uint_eq(proto_frame_want(one, 2), 1);
}
END_TEST

START_TEST(test_frame_want_bad_header_is_0)
{
	static const uint8_t zero[] = { 0x00, 0x00 };
	static const uint8_t big[] = { 0x0b, 0xf2 };
	static const uint8_t ff[] = { 0xff, 0xff };

	ck_assert_uint_eq(proto_frame_want(zero, 2), 0);
	ck_assert_uint_eq(proto_frame_want(big, 2), 0);
	ck_assert_uint_eq(proto_frame_want(ff, 2), 0);
}
END_TEST

/* --- Dispatch (1.1, 1.2) ------------------------------------------------ */

START_TEST(test_decode_empty_body_is_error)
{
	static const uint8_t b[] = { EPMD_NAMES_REQ };
	struct proto_request req;

	ck_assert_int_eq(proto_decode(b, 0, &req), PROTO_ERR_EMPTY);
}
END_TEST

START_TEST(test_decode_legacy_a_p_Y_are_unknown_codes)
{
	struct proto_request req;

	ck_assert_int_eq(proto_decode(LIT("a"), &req),
	    PROTO_ERR_UNKNOWN_CODE);
	ck_assert_int_eq(proto_decode(LIT("pfoo"), &req),
	    PROTO_ERR_UNKNOWN_CODE);
	ck_assert_int_eq(proto_decode(LIT("Y"), &req),
	    PROTO_ERR_UNKNOWN_CODE);
}
END_TEST

START_TEST(test_decode_other_codes_are_unknown)
{
	static const uint8_t codes[] = { 0x00, 'w', 'y', 'v', 'N', 0xff };
	struct proto_request req;
	size_t	 i;

	for (i = 0; i < sizeof(codes); i++)
		ck_assert_int_eq(proto_decode(codes + i, 1, &req),
		    PROTO_ERR_UNKNOWN_CODE);
}
END_TEST

START_TEST(test_decode_names_dump_kill_ignore_trailing_junk)
{
	struct proto_request req;

	ck_assert_int_eq(decode_ok(LIT("n"), &req), PROTO_REQ_NAMES);
	ck_assert_int_eq(decode_ok(LIT("nxyz"), &req), PROTO_REQ_NAMES);
	ck_assert_int_eq(decode_ok(LIT("d"), &req), PROTO_REQ_DUMP);
	ck_assert_int_eq(decode_ok(LIT("d\0junk"), &req), PROTO_REQ_DUMP);
	ck_assert_int_eq(decode_ok(LIT("k"), &req), PROTO_REQ_KILL);
	ck_assert_int_eq(decode_ok(LIT("kill me"), &req), PROTO_REQ_KILL);
}
END_TEST

/* --- ALIVE2_REQ decoding (1.3, 7.2, 7.6) -------------------------------- */

START_TEST(test_alive2_erlang_n1_frame_decodes_port_24500_name_n1)
{
	static const uint8_t frame[] = {
		0x00, 0x0f, 0x78, 0x5f, 0xb4, 0x4d, 0x00, 0x00, 0x06,
		0x00, 0x05, 0x00, 0x02, 0x6e, 0x31, 0x00, 0x00
	};
	struct proto_request req;
	size_t	 body_len;

	ck_assert_int_eq(proto_frame_check(frame, sizeof(frame), &body_len),
	    PROTO_FRAME_COMPLETE);
	ck_assert_uint_eq(body_len, 15);
	ck_assert_int_eq(decode_ok(frame + 2, body_len, &req),
	    PROTO_REQ_ALIVE2);
	ck_assert_uint_eq(req.alive2.port, 24500);
	ck_assert_uint_eq(req.alive2.node_type, 'M');
	ck_assert_uint_eq(req.alive2.protocol, 0);
	ck_assert_uint_eq(req.alive2.high, 6);
	ck_assert_uint_eq(req.alive2.low, 5);
	ck_assert_uint_eq(req.alive2.name_len, 2);
	ck_assert_mem_eq(req.alive2.name, "n1", 2);
	ck_assert_ptr_eq(req.alive2.name, frame + 2 + 11);
	ck_assert_uint_eq(req.alive2.extra_len, 0);
	ck_assert(proto_name_valid(req.alive2.name, req.alive2.name_len));
}
END_TEST

START_TEST(test_alive2_foo_port_5001_M_v6_v5_decodes)
{
	static const uint8_t body[] = {
		0x78, 0x13, 0x89, 0x4d, 0x00, 0x00, 0x06, 0x00, 0x05,
		0x00, 0x03, 0x66, 0x6f, 0x6f, 0x00, 0x00
	};
	struct proto_request req;

	ck_assert_int_eq(decode_ok(body, sizeof(body), &req),
	    PROTO_REQ_ALIVE2);
	ck_assert_uint_eq(req.alive2.port, 5001);
	ck_assert_uint_eq(req.alive2.node_type, 'M');
	ck_assert_uint_eq(req.alive2.high, 6);
	ck_assert_uint_eq(req.alive2.low, 5);
	ck_assert_uint_eq(req.alive2.name_len, 3);
	ck_assert_mem_eq(req.alive2.name, "foo", 3);
	ck_assert_uint_eq(req.alive2.extra_len, 0);
	ck_assert_ptr_eq(req.alive2.extra, body + sizeof(body));
}
END_TEST

START_TEST(test_alive2_bar_port_5002_H_v5_v5_decodes)
{
	uint8_t	 b[64];
	size_t	 n;
	struct proto_request req;

	n = alive2_body(b, 5002, 'H', 0, 5, 5, LIT("bar"), NULL, 0);
	ck_assert_uint_eq(n, 16);
	ck_assert_int_eq(decode_ok(b, n, &req), PROTO_REQ_ALIVE2);
	ck_assert_uint_eq(req.alive2.port, 5002);
	ck_assert_uint_eq(req.alive2.node_type, 'H');
	ck_assert_uint_eq(req.alive2.high, 5);
	ck_assert_uint_eq(req.alive2.low, 5);
	ck_assert_mem_eq(req.alive2.name, "bar", 3);
}
END_TEST

START_TEST(test_alive2_body_of_9_or_11_or_13_bytes_is_short)
{
	uint8_t	 b[64];
	struct proto_request req;

	/* 13 bytes: an empty name with an empty extra. */
	ck_assert_uint_eq(alive2_body(b, 5001, 'M', 0, 6, 5, NULL, 0, NULL,
	    0), 13);
	ck_assert_int_eq(proto_decode(b, 9, &req), PROTO_ERR_ALIVE2_SHORT);
	ck_assert_int_eq(proto_decode(b, 11, &req), PROTO_ERR_ALIVE2_SHORT);
	ck_assert_int_eq(proto_decode(b, 13, &req), PROTO_ERR_ALIVE2_SHORT);
	ck_assert_int_eq(proto_decode(b, 1, &req), PROTO_ERR_ALIVE2_SHORT);
}
END_TEST

START_TEST(test_alive2_empty_name_with_1_byte_extra_is_accepted)
{
	uint8_t	 b[64];
	size_t	 n;
	struct proto_request req;

	n = alive2_body(b, 6006, 'M', 0, 6, 5, NULL, 0, LIT("e"));
	ck_assert_uint_eq(n, 14);
	ck_assert_int_eq(decode_ok(b, n, &req), PROTO_REQ_ALIVE2);
	ck_assert_uint_eq(req.alive2.name_len, 0);
	ck_assert_uint_eq(req.alive2.extra_len, 1);
	ck_assert_uint_eq(req.alive2.extra[0], 'e');
	ck_assert(proto_name_valid(req.alive2.name, req.alive2.name_len));
}
END_TEST

START_TEST(test_alive2_nlen_past_data_is_name_size_error)
{
	uint8_t	 b[64];
	size_t	 n;
	struct proto_request req;

	n = alive2_body(b, 5001, 'M', 0, 6, 5, LIT("foo"), NULL, 0);
	b[10] = 4;	/* Nlen 4 + 13 = 17 > 16 */
	ck_assert_int_eq(proto_decode(b, n, &req),
	    PROTO_ERR_ALIVE2_NAME_SIZE);
	b[9] = 0xff;
	b[10] = 0xff;
	ck_assert_int_eq(proto_decode(b, n, &req),
	    PROTO_ERR_ALIVE2_NAME_SIZE);
}
END_TEST

START_TEST(test_alive2_missing_elen_is_name_size_error)
{
	uint8_t	 b[64];
	size_t	 n;
	struct proto_request req;

	n = alive2_body(b, 5001, 'M', 0, 6, 5, LIT("foo"), NULL, 0);
	ck_assert_int_eq(proto_decode(b, n - 2, &req),
	    PROTO_ERR_ALIVE2_NAME_SIZE);
	ck_assert_int_eq(proto_decode(b, n - 1, &req),
	    PROTO_ERR_ALIVE2_NAME_SIZE);
}
END_TEST

START_TEST(test_alive2_elen_past_data_is_extra_size_error)
{
	uint8_t	 b[64];
	size_t	 n;
	struct proto_request req;

	n = alive2_body(b, 5001, 'M', 0, 6, 5, LIT("foo"), LIT("ABC"));
	ck_assert_int_eq(proto_decode(b, n - 1, &req),
	    PROTO_ERR_ALIVE2_EXTRA_SIZE);
	b[15] = 0xff;	/* Elen 0x00ff */
	ck_assert_int_eq(proto_decode(b, n, &req),
	    PROTO_ERR_ALIVE2_EXTRA_SIZE);
}
END_TEST

START_TEST(test_alive2_nul_in_name_is_rejected)
{
	uint8_t	 b[64];
	size_t	 n;
	struct proto_request req;

	n = alive2_body(b, 5001, 'M', 0, 6, 5, LIT("f\0o"), NULL, 0);
	ck_assert_int_eq(proto_decode(b, n, &req),
	    PROTO_ERR_ALIVE2_NAME_NUL);
	n = alive2_body(b, 5001, 'M', 0, 6, 5, LIT("\0foo"), NULL, 0);
	ck_assert_int_eq(proto_decode(b, n, &req),
	    PROTO_ERR_ALIVE2_NAME_NUL);
}
END_TEST

START_TEST(test_alive2_trailing_nul_in_name_is_rejected)
{
	uint8_t	 b[64];
	size_t	 n;
	struct proto_request req;

	n = alive2_body(b, 5001, 'M', 0, 6, 5, LIT("foo\0"), NULL, 0);
	ck_assert_int_eq(proto_decode(b, n, &req),
	    PROTO_ERR_ALIVE2_NAME_NUL);
}
END_TEST

START_TEST(test_alive2_junk_after_extra_is_ignored)
{
	uint8_t	 b[64];
	size_t	 n;
	struct proto_request req;

	n = alive2_body(b, 5001, 'M', 0, 6, 5, LIT("foo"), LIT("ex"));
	memcpy(b + n, "junk", 4);
	ck_assert_int_eq(decode_ok(b, n + 4, &req), PROTO_REQ_ALIVE2);
	ck_assert_uint_eq(req.alive2.name_len, 3);
	ck_assert_uint_eq(req.alive2.extra_len, 2);
	ck_assert_mem_eq(req.alive2.extra, "ex", 2);
}
END_TEST

START_TEST(test_alive2_extra_1021_bytes_is_not_a_decode_error)
{
	uint8_t	 b[EPMD_INBUF_SIZE];
	uint8_t	 extra[1021];
	size_t	 n;
	struct proto_request req;

	memset(extra, 'E', sizeof(extra));
	n = alive2_body(b, 5001, 'M', 0, 6, 5, LIT("foo"), extra,
	    sizeof(extra));
	ck_assert_int_eq(decode_ok(b, n, &req), PROTO_REQ_ALIVE2);
	ck_assert_uint_eq(req.alive2.extra_len, 1021);
}
END_TEST

START_TEST(test_alive2_bad_utf8_name_decodes_but_cannot_register)
{
	static const uint8_t ff_fe[] = { 0xff, 0xfe };
	static const uint8_t overlong[] = { 0x6e, 0xc0, 0x80 };
	static const uint8_t surrogate[] = { 0xed, 0xa0, 0x80 };
	uint8_t	 b[64];
	size_t	 n;
	struct proto_request req;

	n = alive2_body(b, 5001, 'M', 0, 6, 5, ff_fe, sizeof(ff_fe), NULL, 0);
	ck_assert_int_eq(decode_ok(b, n, &req), PROTO_REQ_ALIVE2);
	ck_assert(!proto_name_valid(req.alive2.name, req.alive2.name_len));
	n = alive2_body(b, 5001, 'M', 0, 6, 5, overlong, sizeof(overlong),
	    NULL, 0);
	ck_assert_int_eq(decode_ok(b, n, &req), PROTO_REQ_ALIVE2);
	ck_assert(!proto_name_valid(req.alive2.name, req.alive2.name_len));
	n = alive2_body(b, 5001, 'M', 0, 6, 5, surrogate, sizeof(surrogate),
	    NULL, 0);
	ck_assert_int_eq(decode_ok(b, n, &req), PROTO_REQ_ALIVE2);
	ck_assert(!proto_name_valid(req.alive2.name, req.alive2.name_len));
}
END_TEST

START_TEST(test_alive2_256_char_name_decodes_but_cannot_register)
{
	uint8_t	 b[EPMD_INBUF_SIZE];
	uint8_t	 name[256];
	size_t	 n;
	struct proto_request req;

	memset(name, 'a', sizeof(name));
	n = alive2_body(b, 5001, 'M', 0, 6, 5, name, sizeof(name), NULL, 0);
	ck_assert_int_eq(decode_ok(b, n, &req), PROTO_REQ_ALIVE2);
	ck_assert_uint_eq(req.alive2.name_len, 256);
	ck_assert(!proto_name_valid(req.alive2.name, req.alive2.name_len));
}
END_TEST

START_TEST(test_alive2_255_and_254_char_names_can_register)
{
	uint8_t	 b[EPMD_INBUF_SIZE];
	uint8_t	 name[255];
	size_t	 n;
	struct proto_request req;

	memset(name, 'a', sizeof(name));
	n = alive2_body(b, 5001, 'M', 0, 6, 5, name, 255, NULL, 0);
	ck_assert_int_eq(decode_ok(b, n, &req), PROTO_REQ_ALIVE2);
	ck_assert(proto_name_valid(req.alive2.name, req.alive2.name_len));
	n = alive2_body(b, 5001, 'M', 0, 6, 5, name, 254, NULL, 0);
	ck_assert_int_eq(decode_ok(b, n, &req), PROTO_REQ_ALIVE2);
	ck_assert(proto_name_valid(req.alive2.name, req.alive2.name_len));
}
END_TEST

START_TEST(test_alive2_255_emoji_name_of_1020_bytes_can_register)
{
	uint8_t	 b[EPMD_INBUF_SIZE];
	uint8_t	 name[1024];
	size_t	 n, nlen;
	struct proto_request req;

	nlen = emoji_name(name, 255);
	ck_assert_uint_eq(nlen, 1020);
	n = alive2_body(b, 5001, 'M', 0, 6, 5, name, nlen, NULL, 0);
	ck_assert_int_eq(decode_ok(b, n, &req), PROTO_REQ_ALIVE2);
	ck_assert_uint_eq(req.alive2.name_len, 1020);
	ck_assert(proto_name_valid(req.alive2.name, req.alive2.name_len));
}
END_TEST

/* --- ALIVE2 replies (1.4, 1.5, 7.2, 7.6) -------------------------------- */

START_TEST(test_alive2_v6_ok_reply_is_76_00_creation_32bit)
{
	static const uint8_t foo[] = { 0x76, 0x00, 0x6b, 0x01, 0xa4, 0x96 };
	static const uint8_t again1[] = { 0x76, 0x00, 0x6b, 0x01, 0xa4, 0x97 };
	static const uint8_t again2[] = { 0x76, 0x00, 0x6b, 0x01, 0xa4, 0x98 };
	static const uint8_t n1[] = { 0x76, 0x00, 0x6b, 0x01, 0xa5, 0x47 };
	uint8_t	 out[8];

	ASSERT_BYTES(out, proto_encode_alive2_resp(out, 6, true,
	    1795269782U), foo);
	ASSERT_BYTES(out, proto_encode_alive2_resp(out, 6, true,
	    1795269783U), again1);
	ASSERT_BYTES(out, proto_encode_alive2_resp(out, 6, true,
	    1795269784U), again2);
	ASSERT_BYTES(out, proto_encode_alive2_resp(out, 6, true,
	    1795269959U), n1);
}
END_TEST

START_TEST(test_alive2_v5_ok_reply_is_79_00_creation_mod_3_plus_1)
{
	static const uint8_t bar[] = { 0x79, 0x00, 0x00, 0x03 };
	static const uint8_t c1[] = { 0x79, 0x00, 0x00, 0x01 };
	static const uint8_t c2[] = { 0x79, 0x00, 0x00, 0x02 };
	uint8_t	 out[8];

	/* bar registered in the same second as foo (1795269782). */
	ASSERT_BYTES(out, proto_encode_alive2_resp(out, 5, true,
	    1795269782U), bar);
	/* foo re-registered v5 three times after ...784: 3, 1, 2. */
	ASSERT_BYTES(out, proto_encode_alive2_resp(out, 5, true,
	    1795269785U), bar);
	ASSERT_BYTES(out, proto_encode_alive2_resp(out, 5, true,
	    1795269786U), c1);
	ASSERT_BYTES(out, proto_encode_alive2_resp(out, 5, true,
	    1795269787U), c2);
}
END_TEST

START_TEST(test_alive2_v5_creation_is_always_1_to_3)
{
	uint8_t	 out[8];

	ck_assert_uint_eq(proto_encode_alive2_resp(out, 5, true, 0), 4);
	ck_assert_uint_eq(out[3], 1);
	ck_assert_uint_eq(proto_encode_alive2_resp(out, 5, true, 4), 4);
	ck_assert_uint_eq(out[3], 2);
	ck_assert_uint_eq(proto_encode_alive2_resp(out, 5, true,
	    UINT32_MAX), 4);
	ck_assert_uint_eq(out[2], 0);
	ck_assert_uint_eq(out[3], UINT32_MAX % 3 + 1);
}
END_TEST

START_TEST(test_alive2_v6_error_reply_is_76_01_creation_99)
{
	static const uint8_t want[] = { 0x76, 0x01, 0x00, 0x00, 0x00, 0x63 };
	uint8_t	 out[8];

	ASSERT_BYTES(out, proto_encode_alive2_resp(out, 6, false,
	    1795269782U), want);
	ASSERT_BYTES(out, proto_encode_alive2_resp(out, 65535, false, 0),
	    want);
}
END_TEST

START_TEST(test_alive2_v5_error_reply_is_79_01_creation_99)
{
	static const uint8_t want[] = { 0x79, 0x01, 0x00, 0x63 };
	uint8_t	 out[8];

	ASSERT_BYTES(out, proto_encode_alive2_resp(out, 5, false,
	    1795269782U), want);
	ASSERT_BYTES(out, proto_encode_alive2_resp(out, 0, false, 7), want);
}
END_TEST

START_TEST(test_alive2_reply_kind_depends_only_on_highest_version)
{
	uint8_t	 out[8];

	ck_assert_uint_eq(proto_encode_alive2_resp(out, 0, true, 9), 4);
	ck_assert_uint_eq(out[0], 'y');
	ck_assert_uint_eq(proto_encode_alive2_resp(out, 5, true, 9), 4);
	ck_assert_uint_eq(out[0], 'y');
	ck_assert_uint_eq(proto_encode_alive2_resp(out, 6, true, 9), 6);
	ck_assert_uint_eq(out[0], 'v');
	ck_assert_uint_eq(proto_encode_alive2_resp(out, 65535, true, 9), 6);
	ck_assert_uint_eq(out[0], 'v');
}
END_TEST

/* --- PORT_PLEASE2 and PORT2_RESP (1.7, 7.2, 7.6, 8.4) ------------------- */

START_TEST(test_port2_found_foo_5001_M_v6_v5)
{
	static const uint8_t want[] = {
		0x77, 0x00, 0x13, 0x89, 0x4d, 0x00, 0x00, 0x06, 0x00, 0x05,
		0x00, 0x03, 0x66, 0x6f, 0x6f, 0x00, 0x00
	};
	uint8_t	 b[64], out[PROTO_PORT2_RESP_MAX];
	size_t	 n;
	struct proto_request req;

	n = alive2_body(b, 5001, 'M', 0, 6, 5, LIT("foo"), NULL, 0);
	decode_ok(b, n, &req);
	ASSERT_BYTES(out, proto_encode_port2_found(out, &req.alive2), want);
}
END_TEST

START_TEST(test_port2_found_bar_5002_H_v5_v5)
{
	static const uint8_t want[] = {
		0x77, 0x00, 0x13, 0x8a, 0x48, 0x00, 0x00, 0x05, 0x00, 0x05,
		0x00, 0x03, 0x62, 0x61, 0x72, 0x00, 0x00
	};
	uint8_t	 b[64], out[PROTO_PORT2_RESP_MAX];
	size_t	 n;
	struct proto_request req;

	n = alive2_body(b, 5002, 'H', 0, 5, 5, LIT("bar"), NULL, 0);
	decode_ok(b, n, &req);
	ASSERT_BYTES(out, proto_encode_port2_found(out, &req.alive2), want);
}
END_TEST

START_TEST(test_port2_erlang_n1_lookup_and_reply)
{
	static const uint8_t alive[] = {
		0x00, 0x0f, 0x78, 0x5f, 0xb4, 0x4d, 0x00, 0x00, 0x06,
		0x00, 0x05, 0x00, 0x02, 0x6e, 0x31, 0x00, 0x00
	};
	static const uint8_t lookup[] = { 0x00, 0x03, 0x7a, 0x6e, 0x31 };
	static const uint8_t want[] = {
		0x77, 0x00, 0x5f, 0xb4, 0x4d, 0x00, 0x00, 0x06, 0x00, 0x05,
		0x00, 0x02, 0x6e, 0x31, 0x00, 0x00
	};
	uint8_t	 out[PROTO_PORT2_RESP_MAX];
	struct proto_request reg, req;
	size_t	 body_len;

	ck_assert_int_eq(proto_frame_check(lookup, sizeof(lookup),
	    &body_len), PROTO_FRAME_COMPLETE);
	ck_assert_int_eq(decode_ok(lookup + 2, body_len, &req),
	    PROTO_REQ_PORT_PLEASE2);
	ck_assert_uint_eq(req.name_len, 2);
	ck_assert_mem_eq(req.name, "n1", 2);

	decode_ok(alive + 2, sizeof(alive) - 2, &reg);
	ASSERT_BYTES(out, proto_encode_port2_found(out, &reg.alive2), want);
}
END_TEST

START_TEST(test_port2_notfound_is_77_01)
{
	static const uint8_t want[] = { 0x77, 0x01 };
	uint8_t	 out[4];

	ASSERT_BYTES(out, proto_encode_port2_notfound(out), want);
}
END_TEST

START_TEST(test_port2_extra_1020_bytes_gives_1039_byte_reply)
{
	uint8_t	 b[EPMD_INBUF_SIZE], out[PROTO_PORT2_RESP_MAX];
	uint8_t	 extra[1020];
	size_t	 n;
	struct proto_request req;

	memset(extra, 'E', sizeof(extra));
	n = alive2_body(b, 5003, 'M', 0, 6, 5, LIT("big20"), extra,
	    sizeof(extra));
	decode_ok(b, n, &req);
	ck_assert_uint_eq(req.alive2.extra_len, 1020);
	n = proto_encode_port2_found(out, &req.alive2);
	ck_assert_uint_eq(n, 1039);
	ck_assert_uint_eq(out[17], 0x03);	/* Elen 1020 = 0x03fc */
	ck_assert_uint_eq(out[18], 0xfc);
	ck_assert_mem_eq(out + 19, extra, sizeof(extra));
}
END_TEST

START_TEST(test_port2_extra_ABC_nul_nul_is_echoed)
{
	static const uint8_t tail[] = { 0x00, 0x05, 0x41, 0x42, 0x43, 0x00,
	    0x00 };
	uint8_t	 b[64], out[PROTO_PORT2_RESP_MAX];
	size_t	 n;
	struct proto_request req;

	n = alive2_body(b, 5001, 'M', 0, 6, 5, LIT("foo"), LIT("ABC\0\0"));
	decode_ok(b, n, &req);
	ck_assert_uint_eq(req.alive2.extra_len, 5);
	n = proto_encode_port2_found(out, &req.alive2);
	ck_assert_uint_eq(n, 17 + 5);
	ck_assert_mem_eq(out + n - sizeof(tail), tail, sizeof(tail));
}
END_TEST

START_TEST(test_port2_echoes_type_0_high_0_low_9)
{
	static const uint8_t head[] = { 0x77, 0x00, 0x00, 0x00, 0x00, 0x00,
	    0x00, 0x00, 0x00, 0x09 };
	static const uint8_t reply[] = { 0x79, 0x00, 0x00, 0x03 };
	uint8_t	 b[64], out[PROTO_PORT2_RESP_MAX];
	size_t	 n;
	struct proto_request req;

	n = alive2_body(b, 0, 0, 0, 0, 9, LIT("low9"), NULL, 0);
	decode_ok(b, n, &req);
	ASSERT_BYTES(out, proto_encode_alive2_resp(out, req.alive2.high,
	    true, 1795269782U), reply);
	n = proto_encode_port2_found(out, &req.alive2);
	ck_assert_uint_eq(n, 14 + 4);
	ck_assert_mem_eq(out, head, sizeof(head));
}
END_TEST

START_TEST(test_port2_echoes_port_65535_type_255_high_low_65535)
{
	static const uint8_t head[] = { 0x77, 0x00, 0xff, 0xff, 0xff, 0x00,
	    0xff, 0xff, 0xff, 0xff };
	uint8_t	 b[64], out[PROTO_PORT2_RESP_MAX];
	size_t	 n;
	struct proto_request req;

	n = alive2_body(b, 65535, 255, 0, 65535, 65535, LIT("max"), NULL, 0);
	decode_ok(b, n, &req);
	ck_assert_uint_eq(proto_encode_alive2_resp(out, req.alive2.high,
	    true, 1795269782U), 6);
	ck_assert_uint_eq(out[0], 0x76);
	n = proto_encode_port2_found(out, &req.alive2);
	ck_assert_uint_eq(n, 14 + 3);
	ck_assert_mem_eq(out, head, sizeof(head));
}
END_TEST

START_TEST(test_port2_largest_reply_fits_port2_resp_max)
{
	uint8_t	 name[1020], extra[1020], out[PROTO_PORT2_RESP_MAX];
	struct proto_alive2 node;

	memset(&node, 0, sizeof(node));
	emoji_name(name, 255);
	memset(extra, 0, sizeof(extra));
	node.name = name;
	node.name_len = sizeof(name);
	node.extra = extra;
	node.extra_len = sizeof(extra);
	ck_assert_uint_eq(proto_encode_port2_found(out, &node), 2054);
	ck_assert_uint_eq(PROTO_PORT2_RESP_MAX, 2054);
}
END_TEST

START_TEST(test_port2_oversized_name_or_extra_encodes_nothing)
{
	uint8_t	 big[1021], out[PROTO_PORT2_RESP_MAX];
	struct proto_alive2 node;

	memset(&node, 0, sizeof(node));
	memset(big, 'a', sizeof(big));
	node.name = big;
	node.name_len = sizeof(big);
	ck_assert_uint_eq(proto_encode_port2_found(out, &node), 0);
	node.name_len = 3;
	node.extra = big;
	node.extra_len = sizeof(big);
	ck_assert_uint_eq(proto_encode_port2_found(out, &node), 0);
}
END_TEST

START_TEST(test_lookup_zfoo_is_name_foo)
{
	struct proto_request req;

	ck_assert_int_eq(decode_ok(LIT("zfoo"), &req),
	    PROTO_REQ_PORT_PLEASE2);
	ck_assert_uint_eq(req.name_len, 3);
	ck_assert_mem_eq(req.name, "foo", 3);
	ck_assert_int_eq(decode_ok(LIT("zxyz"), &req),
	    PROTO_REQ_PORT_PLEASE2);
	ck_assert_mem_eq(req.name, "xyz", 3);
}
END_TEST

START_TEST(test_lookup_single_trailing_nul_is_dropped)
{
	struct proto_request req;

	ck_assert_int_eq(decode_ok(LIT("zfoo\0"), &req),
	    PROTO_REQ_PORT_PLEASE2);
	ck_assert_uint_eq(req.name_len, 3);
	ck_assert_mem_eq(req.name, "foo", 3);
}
END_TEST

START_TEST(test_lookup_z_and_z_nul_are_rejected_as_empty)
{
	struct proto_request req;

	ck_assert_int_eq(proto_decode(LIT("z"), &req),
	    PROTO_ERR_LOOKUP_NAME);
	ck_assert_int_eq(proto_decode(LIT("z\0"), &req),
	    PROTO_ERR_LOOKUP_NAME);
}
END_TEST

START_TEST(test_lookup_nul_inside_name_is_rejected)
{
	struct proto_request req;

	ck_assert_int_eq(proto_decode(LIT("zfo\0o"), &req),
	    PROTO_ERR_LOOKUP_NAME);
	ck_assert_int_eq(proto_decode(LIT("zfoo\0\0"), &req),
	    PROTO_ERR_LOOKUP_NAME);
	ck_assert_int_eq(proto_decode(LIT("z\0foo"), &req),
	    PROTO_ERR_LOOKUP_NAME);
}
END_TEST

START_TEST(test_lookup_invalid_utf8_is_rejected)
{
	struct proto_request req;

	ck_assert_int_eq(proto_decode(LIT("z\xff"), &req),
	    PROTO_ERR_LOOKUP_NAME);
	ck_assert_int_eq(proto_decode(LIT("z\xff\xfe"), &req),
	    PROTO_ERR_LOOKUP_NAME);
	ck_assert_int_eq(proto_decode(LIT("z\xc0\x80"), &req),
	    PROTO_ERR_LOOKUP_NAME);
	ck_assert_int_eq(proto_decode(LIT("z\xed\xa0\x80"), &req),
	    PROTO_ERR_LOOKUP_NAME);
}
END_TEST

START_TEST(test_lookup_254_chars_is_accepted)
{
	uint8_t	 b[EPMD_INBUF_SIZE], name[254];
	size_t	 n;
	struct proto_request req;

	memset(name, 'a', sizeof(name));
	n = lookup_body(b, name, sizeof(name));
	ck_assert_int_eq(decode_ok(b, n, &req), PROTO_REQ_PORT_PLEASE2);
	ck_assert_uint_eq(req.name_len, 254);
}
END_TEST

START_TEST(test_lookup_255_chars_is_accepted_fixing_reference)
{
	uint8_t	 b[EPMD_INBUF_SIZE], name[255];
	size_t	 n;
	struct proto_request req;

	memset(name, 'a', sizeof(name));
	n = lookup_body(b, name, sizeof(name));
	ck_assert_int_eq(decode_ok(b, n, &req), PROTO_REQ_PORT_PLEASE2);
	ck_assert_uint_eq(req.name_len, 255);
	ck_assert_ptr_eq(req.name, b + 1);
	/* And with the tolerated trailing NUL. */
	b[n] = '\0';
	ck_assert_int_eq(decode_ok(b, n + 1, &req), PROTO_REQ_PORT_PLEASE2);
	ck_assert_uint_eq(req.name_len, 255);
}
END_TEST

START_TEST(test_lookup_256_chars_is_rejected)
{
	uint8_t	 b[EPMD_INBUF_SIZE], name[256];
	size_t	 n;
	struct proto_request req;

	memset(name, 'a', sizeof(name));
	n = lookup_body(b, name, sizeof(name));
	ck_assert_int_eq(proto_decode(b, n, &req), PROTO_ERR_LOOKUP_NAME);
}
END_TEST

START_TEST(test_lookup_255_emoji_accepted_256_rejected)
{
	uint8_t	 b[EPMD_INBUF_SIZE], name[1024];
	size_t	 n, nlen;
	struct proto_request req;

	nlen = emoji_name(name, 255);
	n = lookup_body(b, name, nlen);
	ck_assert_int_eq(decode_ok(b, n, &req), PROTO_REQ_PORT_PLEASE2);
	ck_assert_uint_eq(req.name_len, 1020);
	nlen = emoji_name(name, 256);
	n = lookup_body(b, name, nlen);
	ck_assert_int_eq(proto_decode(b, n, &req), PROTO_ERR_LOOKUP_NAME);
}
END_TEST

/* --- STOP_REQ (1.11, 7.3) ----------------------------------------------- */

START_TEST(test_stop_without_name_is_rejected)
{
	struct proto_request req;

	ck_assert_int_eq(proto_decode(LIT("s"), &req), PROTO_ERR_STOP_NAME);
}
END_TEST

START_TEST(test_stop_s_nul_is_an_empty_name)
{
	struct proto_request req;

	ck_assert_int_eq(decode_ok(LIT("s\0"), &req), PROTO_REQ_STOP);
	ck_assert_uint_eq(req.name_len, 0);
}
END_TEST

START_TEST(test_stop_sfoo_is_name_foo)
{
	struct proto_request req;

	ck_assert_int_eq(decode_ok(LIT("sfoo"), &req), PROTO_REQ_STOP);
	ck_assert_uint_eq(req.name_len, 3);
	ck_assert_mem_eq(req.name, "foo", 3);
}
END_TEST

START_TEST(test_stop_sn2_nul_is_name_n2)
{
	struct proto_request req;

	ck_assert_int_eq(decode_ok(LIT("sn2\0"), &req), PROTO_REQ_STOP);
	ck_assert_uint_eq(req.name_len, 2);
	ck_assert_mem_eq(req.name, "n2", 2);
}
END_TEST

START_TEST(test_stop_name_ends_at_first_nul)
{
	struct proto_request req;

	ck_assert_int_eq(decode_ok(LIT("sab\0cd"), &req), PROTO_REQ_STOP);
	ck_assert_uint_eq(req.name_len, 2);
	ck_assert_mem_eq(req.name, "ab", 2);
}
END_TEST

START_TEST(test_stop_name_is_not_checked_for_utf8)
{
	struct proto_request req;

	ck_assert_int_eq(decode_ok(LIT("s\xff\xfe"), &req), PROTO_REQ_STOP);
	ck_assert_uint_eq(req.name_len, 2);
}
END_TEST

/* --- UTF-8 and name rules (1.3, 1.7) ------------------------------------ */

START_TEST(test_utf8_counts_characters)
{
	ck_assert_int_eq(proto_utf8_chars(LIT("")), 0);
	ck_assert_int_eq(proto_utf8_chars(LIT("foo")), 3);
	/* é (2 bytes), € (3 bytes), U+1F600 (4 bytes). */
	ck_assert_int_eq(proto_utf8_chars(LIT("\xc3\xa9\xe2\x82\xac"
	    "\xf0\x9f\x98\x80")), 3);
	ck_assert_int_eq(proto_utf8_chars(LIT("\xc2\x80\xdf\xbf")), 2);
	ck_assert_int_eq(proto_utf8_chars(LIT("\xe0\xa0\x80\xef\xbf\xbf")),
	    2);
	ck_assert_int_eq(proto_utf8_chars(LIT("\xf0\x90\x80\x80"
	    "\xf4\x8f\xbf\xbf")), 2);
}
END_TEST

START_TEST(test_utf8_rejects_overlong_forms)
{
	ck_assert_int_eq(proto_utf8_chars(LIT("\xc0\x80")), -1);
	ck_assert_int_eq(proto_utf8_chars(LIT("\xc1\xbf")), -1);
	ck_assert_int_eq(proto_utf8_chars(LIT("\xe0\x80\x80")), -1);
	ck_assert_int_eq(proto_utf8_chars(LIT("\xe0\x9f\xbf")), -1);
	ck_assert_int_eq(proto_utf8_chars(LIT("\xf0\x80\x80\x80")), -1);
	ck_assert_int_eq(proto_utf8_chars(LIT("\xf0\x8f\xbf\xbf")), -1);
}
END_TEST

START_TEST(test_utf8_rejects_surrogates)
{
	ck_assert_int_eq(proto_utf8_chars(LIT("\xed\xa0\x80")), -1);
	ck_assert_int_eq(proto_utf8_chars(LIT("\xed\xbf\xbf")), -1);
	ck_assert_int_eq(proto_utf8_chars(LIT("\xed\x9f\xbf")), 1);
	ck_assert_int_eq(proto_utf8_chars(LIT("\xee\x80\x80")), 1);
}
END_TEST

START_TEST(test_utf8_rejects_above_u10ffff)
{
	ck_assert_int_eq(proto_utf8_chars(LIT("\xf4\x90\x80\x80")), -1);
	ck_assert_int_eq(proto_utf8_chars(LIT("\xf5\x80\x80\x80")), -1);
	ck_assert_int_eq(proto_utf8_chars(LIT("\xf7\xbf\xbf\xbf")), -1);
}
END_TEST

START_TEST(test_utf8_rejects_truncated_sequences)
{
	ck_assert_int_eq(proto_utf8_chars(LIT("\xc3")), -1);
	ck_assert_int_eq(proto_utf8_chars(LIT("a\xe2\x82")), -1);
	ck_assert_int_eq(proto_utf8_chars(LIT("\xf0\x9f\x98")), -1);
	ck_assert_int_eq(proto_utf8_chars(LIT("\xe2\x82" "a")), -1);
	ck_assert_int_eq(proto_utf8_chars(LIT("\xf0\x9f\x98" "a")), -1);
}
END_TEST

START_TEST(test_utf8_rejects_stray_continuation_bytes)
{
	ck_assert_int_eq(proto_utf8_chars(LIT("\x80")), -1);
	ck_assert_int_eq(proto_utf8_chars(LIT("\xbf")), -1);
	ck_assert_int_eq(proto_utf8_chars(LIT("a\x80")), -1);
	ck_assert_int_eq(proto_utf8_chars(LIT("\xc3\xa9\xa9")), -1);
}
END_TEST

START_TEST(test_utf8_rejects_ff_and_fe)
{
	ck_assert_int_eq(proto_utf8_chars(LIT("\xff")), -1);
	ck_assert_int_eq(proto_utf8_chars(LIT("\xfe")), -1);
	ck_assert_int_eq(proto_utf8_chars(LIT("\xff\xfe")), -1);
}
END_TEST

START_TEST(test_name_valid_empty_name_is_valid)
{
	ck_assert(proto_name_valid((const uint8_t *)"", 0));
}
END_TEST

START_TEST(test_name_valid_rejects_nul_byte)
{
	ck_assert_int_eq(proto_utf8_chars(LIT("a\0b")), 3);
	ck_assert(!proto_name_valid(LIT("a\0b")));
	ck_assert(!proto_name_valid(LIT("ab\0")));
}
END_TEST

START_TEST(test_name_valid_255_emoji_ok_256_ascii_not)
{
	uint8_t	 name[1024];

	ck_assert(proto_name_valid(name, emoji_name(name, 255)));
	ck_assert(!proto_name_valid(name, emoji_name(name, 256)));
	memset(name, 'a', 256);
	ck_assert(!proto_name_valid(name, 256));
	ck_assert(proto_name_valid(name, 255));
}
END_TEST

START_TEST(test_name_valid_rejects_more_than_1020_bytes)
{
	uint8_t	 name[1021];

	/* 254 emoji and 5 ASCII: 1021 bytes (and 259 chars). */
	emoji_name(name, 254);
	memset(name + 1016, 'a', 5);
	ck_assert(!proto_name_valid(name, sizeof(name)));
	ck_assert(!proto_name_valid(name, 1020));	/* 258 chars */
	ck_assert(proto_name_valid(name, 1017));	/* 255 chars */
}
END_TEST

START_TEST(test_name_valid_rejects_bad_utf8)
{
	ck_assert(!proto_name_valid(LIT("\xff\xfe")));
	ck_assert(!proto_name_valid(LIT("\xc0\x80")));
	ck_assert(!proto_name_valid(LIT("\xed\xa0\x80")));
	ck_assert(proto_name_valid(LIT("n\xc3\xa9")));
}
END_TEST

/* --- NAMES and DUMP text (1.8, 1.9, 7.2, 7.3, 7.6) ---------------------- */

START_TEST(test_port_header_is_configured_port_u32)
{
	static const uint8_t p24369[] = { 0x00, 0x00, 0x5f, 0x31 };
	static const uint8_t p24370[] = { 0x00, 0x00, 0x5f, 0x32 };
	static const uint8_t p24390[] = { 0x00, 0x00, 0x5f, 0x46 };
	static const uint8_t p90905[] = { 0x00, 0x01, 0x63, 0x19 };
	static const uint8_t p0[] = { 0x00, 0x00, 0x00, 0x00 };
	uint8_t	 out[4];

	ASSERT_BYTES(out, proto_encode_port_header(out, 24369), p24369);
	ASSERT_BYTES(out, proto_encode_port_header(out, 24370), p24370);
	ASSERT_BYTES(out, proto_encode_port_header(out, 24390), p24390);
	ASSERT_BYTES(out, proto_encode_port_header(out, 90905), p90905);
	ASSERT_BYTES(out, proto_encode_port_header(out, 0), p0);
}
END_TEST

START_TEST(test_names_lines_bar_then_foo)
{
	uint8_t	 out[2 * PROTO_LINE_MAX];
	size_t	 n;

	n = proto_encode_names_line(out, LIT("bar"), 5002);
	n += proto_encode_names_line(out + n, LIT("foo"), 5001);
	ASSERT_TEXT(out, n, "name bar at port 5002\nname foo at port 5001\n");
}
END_TEST

START_TEST(test_names_line_n1_and_localnode)
{
	uint8_t	 out[PROTO_LINE_MAX];

	ASSERT_TEXT(out, proto_encode_names_line(out, LIT("n1"), 24500),
	    "name n1 at port 24500\n");
	ASSERT_TEXT(out, proto_encode_names_line(out, LIT("localnode"), 8000),
	    "name localnode at port 8000\n");
	ASSERT_TEXT(out, proto_encode_names_line(out, LIT("p"), 65535),
	    "name p at port 65535\n");
	ASSERT_TEXT(out, proto_encode_names_line(out, LIT("p"), 0),
	    "name p at port 0\n");
}
END_TEST

START_TEST(test_names_line_empty_name_has_two_spaces)
{
	uint8_t	 out[PROTO_LINE_MAX];

	ASSERT_TEXT(out, proto_encode_names_line(out, NULL, 0, 6006),
	    "name  at port 6006\n");
}
END_TEST

START_TEST(test_names_line_name_is_raw_bytes)
{
	uint8_t	 out[PROTO_LINE_MAX];

	ASSERT_TEXT(out, proto_encode_names_line(out,
	    LIT("n\xc3\xa9<x>"), 7),
	    "name n\xc3\xa9<x> at port 7\n");
}
END_TEST

START_TEST(test_names_line_longest_name_fits)
{
	uint8_t	 name[1020], out[PROTO_LINE_MAX];
	size_t	 n;

	emoji_name(name, 255);
	n = proto_encode_names_line(out, name, sizeof(name), 65535);
	ck_assert_uint_eq(n, 5 + 1020 + 9 + 5 + 1);
	ck_assert_mem_eq(out + 5, name, sizeof(name));
}
END_TEST

START_TEST(test_dump_active_line_bar_bytes)
{
	static const uint8_t want[] = {
		0x61, 0x63, 0x74, 0x69, 0x76, 0x65, 0x20, 0x6e, 0x61, 0x6d,
		0x65, 0x20, 0x20, 0x20, 0x20, 0x20, 0x3c, 0x62, 0x61, 0x72,
		0x3e, 0x20, 0x61, 0x74, 0x20, 0x70, 0x6f, 0x72, 0x74, 0x20,
		0x35, 0x30, 0x30, 0x32, 0x2c, 0x20, 0x66, 0x64, 0x20, 0x3d,
		0x20, 0x36, 0x0a, 0x00
	};
	uint8_t	 out[PROTO_LINE_MAX];

	ASSERT_BYTES(out, proto_encode_dump_active(out, LIT("bar"), 5002, 6),
	    want);
}
END_TEST

START_TEST(test_dump_two_active_lines_are_nul_separated)
{
	uint8_t	 out[2 * PROTO_LINE_MAX];
	size_t	 n;

	n = proto_encode_dump_active(out, LIT("bar"), 5002, 6);
	n += proto_encode_dump_active(out + n, LIT("foo"), 5001, 5);
	ASSERT_TEXT(out, n,
	    "active name     <bar> at port 5002, fd = 6\n\0"
	    "active name     <foo> at port 5001, fd = 5\n\0");
}
END_TEST

START_TEST(test_dump_unused_line_has_space_before_newline)
{
	uint8_t	 out[2 * PROTO_LINE_MAX];
	size_t	 n;

	n = proto_encode_dump_active(out, LIT("bar"), 5002, 6);
	n += proto_encode_dump_unused(out + n, LIT("foo"), 5001, 5);
	ASSERT_TEXT(out, n,
	    "active name     <bar> at port 5002, fd = 6\n\0"
	    "old/unused name <foo>, port = 5001, fd = 5 \n\0");
}
END_TEST

START_TEST(test_dump_lines_with_extreme_fds_fit)
{
	uint8_t	 name[1020], out[PROTO_LINE_MAX];
	size_t	 n;

	ASSERT_TEXT(out, proto_encode_dump_active(out, LIT("x"), 1, -1),
	    "active name     <x> at port 1, fd = -1\n\0");
	ASSERT_TEXT(out, proto_encode_dump_unused(out, LIT(""), 0, 0),
	    "old/unused name <>, port = 0, fd = 0 \n\0");
	emoji_name(name, 255);
	n = proto_encode_dump_active(out, name, sizeof(name), 65535, INT_MIN);
	ck_assert_uint_eq(n, 17 + 1020 + 10 + 5 + 7 + 11 + 2);
	n = proto_encode_dump_unused(out, name, sizeof(name), 65535, INT_MAX);
	ck_assert_uint_eq(n, 17 + 1020 + 10 + 5 + 7 + 10 + 3);
}
END_TEST

/* --- Client requests (4) and error texts -------------------------------- */

START_TEST(test_simple_requests_are_00_01_code)
{
	static const uint8_t names[] = { 0x00, 0x01, 0x6e };
	static const uint8_t dump[] = { 0x00, 0x01, 0x64 };
	static const uint8_t kill[] = { 0x00, 0x01, 0x6b };
	uint8_t	 out[4];

	ASSERT_BYTES(out, proto_encode_simple_req(out, EPMD_NAMES_REQ), names);
	ASSERT_BYTES(out, proto_encode_simple_req(out, EPMD_DUMP_REQ), dump);
	ASSERT_BYTES(out, proto_encode_simple_req(out, EPMD_KILL_REQ), kill);
}
END_TEST

START_TEST(test_stop_request_is_00_len_73_name)
{
	static const uint8_t want[] = { 0x00, 0x04, 0x73, 0x66, 0x6f, 0x6f };
	uint8_t	 out[16];
	size_t	 n, body_len;
	struct proto_request req;

	n = proto_encode_stop_req(out, "foo", 3);
	ASSERT_BYTES(out, n, want);
	ck_assert_int_eq(proto_frame_check(out, n, &body_len),
	    PROTO_FRAME_COMPLETE);
	ck_assert_int_eq(decode_ok(out + 2, body_len, &req), PROTO_REQ_STOP);
	ck_assert_mem_eq(req.name, "foo", 3);
}
END_TEST

START_TEST(test_stop_request_longer_than_a_frame_encodes_nothing)
{
	uint8_t	*out;
	char	*name;
	size_t	 n, body_len;

	out = malloc(3 + EPMD_MAX_FRAME_BODY);
	name = malloc(EPMD_MAX_FRAME_BODY);
	ck_assert_ptr_nonnull(out);
	ck_assert_ptr_nonnull(name);
	memset(name, 'a', EPMD_MAX_FRAME_BODY);
	n = proto_encode_stop_req(out, name, EPMD_MAX_FRAME_BODY - 1);
	ck_assert_uint_eq(n, 2 + EPMD_MAX_FRAME_BODY);
	ck_assert_int_eq(proto_frame_check(out, n, &body_len),
	    PROTO_FRAME_COMPLETE);
	ck_assert_uint_eq(proto_encode_stop_req(out, name,
	    EPMD_MAX_FRAME_BODY), 0);
	free(name);
	free(out);
}
END_TEST

START_TEST(test_strerror_names_every_error)
{
	enum proto_error e;

	for (e = PROTO_OK; e <= PROTO_ERR_STOP_NAME; e++) {
		ck_assert_ptr_nonnull(proto_strerror(e));
		ck_assert_uint_gt(strlen(proto_strerror(e)), 0);
	}
	ck_assert_str_eq(proto_strerror(PROTO_ERR_UNKNOWN_CODE),
	    "unknown request code");
}
END_TEST

START_TEST(test_kill_replies_are_ok_and_no)
{
	uint8_t out[PROTO_KILL_RESP_LEN];

	ck_assert_uint_eq(proto_encode_kill_resp(out, true), 2);
	ck_assert_mem_eq(out, "OK", 2);
	ck_assert(proto_kill_resp_ok(out));
	ck_assert_uint_eq(proto_encode_kill_resp(out, false), 2);
	ck_assert_mem_eq(out, "NO", 2);
	ck_assert(!proto_kill_resp_ok(out));
}
END_TEST

START_TEST(test_stop_replies_are_stopped_and_noexiststopped)
{
	uint8_t out[PROTO_STOP_RESP_MAX];

	ck_assert_uint_eq(proto_encode_stop_resp(out, true), 7);
	ck_assert_mem_eq(out, "STOPPED", 7);
	/* OTP sends both words; a client reads the first seven: NOEXIST. */
	ck_assert_uint_eq(proto_encode_stop_resp(out, false), 14);
	ck_assert_mem_eq(out, "NOEXISTSTOPPED", 14);
	ck_assert_uint_eq(PROTO_STOP_RESP_LEN, 7);
}
END_TEST

/* Build the suite, one test case per section of the spec. */
Suite *
unit_suite(void)
{
	Suite	*s = suite_create("proto");
	TCase	*tc;

	tc = tcase_create("framing");
	tcase_add_test(tc, test_frame_fewer_than_2_bytes_is_incomplete);
	tcase_add_test(tc, test_frame_00_00_is_bad_size);
	tcase_add_test(tc, test_frame_ff_ff_is_bad_size);
	tcase_add_test(tc, test_frame_length_3057_is_accepted);
	tcase_add_test(tc, test_frame_length_3058_is_bad_size);
	tcase_add_test(tc, test_frame_partial_body_is_incomplete);
	tcase_add_test(tc, test_frame_names_00_01_6e_is_complete);
	tcase_add_test(tc, test_frame_dump_00_01_64_is_complete);
	tcase_add_test(tc, test_frame_names_with_length_4_and_junk_is_names);
	tcase_add_test(tc, test_frame_two_names_frames_in_one_read_is_trailing);
	tcase_add_test(tc, test_frame_names_plus_one_byte_is_trailing);
	tcase_add_test(tc, test_frame_want_before_header_is_3059_minus_len);
	tcase_add_test(tc, test_frame_want_after_header_is_rest_of_frame);
	tcase_add_test(tc, test_frame_want_bad_header_is_0);
	suite_add_tcase(s, tc);

	tc = tcase_create("dispatch");
	tcase_add_test(tc, test_decode_empty_body_is_error);
	tcase_add_test(tc, test_decode_legacy_a_p_Y_are_unknown_codes);
	tcase_add_test(tc, test_decode_other_codes_are_unknown);
	tcase_add_test(tc, test_decode_names_dump_kill_ignore_trailing_junk);
	suite_add_tcase(s, tc);

	tc = tcase_create("alive2");
	tcase_add_test(tc, test_alive2_erlang_n1_frame_decodes_port_24500_name_n1);
	tcase_add_test(tc, test_alive2_foo_port_5001_M_v6_v5_decodes);
	tcase_add_test(tc, test_alive2_bar_port_5002_H_v5_v5_decodes);
	tcase_add_test(tc, test_alive2_body_of_9_or_11_or_13_bytes_is_short);
	tcase_add_test(tc, test_alive2_empty_name_with_1_byte_extra_is_accepted);
	tcase_add_test(tc, test_alive2_nlen_past_data_is_name_size_error);
	tcase_add_test(tc, test_alive2_missing_elen_is_name_size_error);
	tcase_add_test(tc, test_alive2_elen_past_data_is_extra_size_error);
	tcase_add_test(tc, test_alive2_nul_in_name_is_rejected);
	tcase_add_test(tc, test_alive2_trailing_nul_in_name_is_rejected);
	tcase_add_test(tc, test_alive2_junk_after_extra_is_ignored);
	tcase_add_test(tc, test_alive2_extra_1021_bytes_is_not_a_decode_error);
	tcase_add_test(tc, test_alive2_bad_utf8_name_decodes_but_cannot_register);
	tcase_add_test(tc, test_alive2_256_char_name_decodes_but_cannot_register);
	tcase_add_test(tc, test_alive2_255_and_254_char_names_can_register);
	tcase_add_test(tc, test_alive2_255_emoji_name_of_1020_bytes_can_register);
	suite_add_tcase(s, tc);

	tc = tcase_create("alive2_reply");
	tcase_add_test(tc, test_alive2_v6_ok_reply_is_76_00_creation_32bit);
	tcase_add_test(tc, test_alive2_v5_ok_reply_is_79_00_creation_mod_3_plus_1);
	tcase_add_test(tc, test_alive2_v5_creation_is_always_1_to_3);
	tcase_add_test(tc, test_alive2_v6_error_reply_is_76_01_creation_99);
	tcase_add_test(tc, test_alive2_v5_error_reply_is_79_01_creation_99);
	tcase_add_test(tc, test_alive2_reply_kind_depends_only_on_highest_version);
	suite_add_tcase(s, tc);

	tc = tcase_create("port_please2");
	tcase_add_test(tc, test_port2_found_foo_5001_M_v6_v5);
	tcase_add_test(tc, test_port2_found_bar_5002_H_v5_v5);
	tcase_add_test(tc, test_port2_erlang_n1_lookup_and_reply);
	tcase_add_test(tc, test_port2_notfound_is_77_01);
	tcase_add_test(tc, test_port2_extra_1020_bytes_gives_1039_byte_reply);
	tcase_add_test(tc, test_port2_extra_ABC_nul_nul_is_echoed);
	tcase_add_test(tc, test_port2_echoes_type_0_high_0_low_9);
	tcase_add_test(tc, test_port2_echoes_port_65535_type_255_high_low_65535);
	tcase_add_test(tc, test_port2_largest_reply_fits_port2_resp_max);
	tcase_add_test(tc, test_port2_oversized_name_or_extra_encodes_nothing);
	tcase_add_test(tc, test_lookup_zfoo_is_name_foo);
	tcase_add_test(tc, test_lookup_single_trailing_nul_is_dropped);
	tcase_add_test(tc, test_lookup_z_and_z_nul_are_rejected_as_empty);
	tcase_add_test(tc, test_lookup_nul_inside_name_is_rejected);
	tcase_add_test(tc, test_lookup_invalid_utf8_is_rejected);
	tcase_add_test(tc, test_lookup_254_chars_is_accepted);
	tcase_add_test(tc, test_lookup_255_chars_is_accepted_fixing_reference);
	tcase_add_test(tc, test_lookup_256_chars_is_rejected);
	tcase_add_test(tc, test_lookup_255_emoji_accepted_256_rejected);
	suite_add_tcase(s, tc);

	tc = tcase_create("stop");
	tcase_add_test(tc, test_stop_without_name_is_rejected);
	tcase_add_test(tc, test_stop_s_nul_is_an_empty_name);
	tcase_add_test(tc, test_stop_sfoo_is_name_foo);
	tcase_add_test(tc, test_stop_sn2_nul_is_name_n2);
	tcase_add_test(tc, test_stop_name_ends_at_first_nul);
	tcase_add_test(tc, test_stop_name_is_not_checked_for_utf8);
	suite_add_tcase(s, tc);

	tc = tcase_create("utf8");
	tcase_add_test(tc, test_utf8_counts_characters);
	tcase_add_test(tc, test_utf8_rejects_overlong_forms);
	tcase_add_test(tc, test_utf8_rejects_surrogates);
	tcase_add_test(tc, test_utf8_rejects_above_u10ffff);
	tcase_add_test(tc, test_utf8_rejects_truncated_sequences);
	tcase_add_test(tc, test_utf8_rejects_stray_continuation_bytes);
	tcase_add_test(tc, test_utf8_rejects_ff_and_fe);
	tcase_add_test(tc, test_name_valid_empty_name_is_valid);
	tcase_add_test(tc, test_name_valid_rejects_nul_byte);
	tcase_add_test(tc, test_name_valid_255_emoji_ok_256_ascii_not);
	tcase_add_test(tc, test_name_valid_rejects_more_than_1020_bytes);
	tcase_add_test(tc, test_name_valid_rejects_bad_utf8);
	suite_add_tcase(s, tc);

	tc = tcase_create("text");
	tcase_add_test(tc, test_port_header_is_configured_port_u32);
	tcase_add_test(tc, test_names_lines_bar_then_foo);
	tcase_add_test(tc, test_names_line_n1_and_localnode);
	tcase_add_test(tc, test_names_line_empty_name_has_two_spaces);
	tcase_add_test(tc, test_names_line_name_is_raw_bytes);
	tcase_add_test(tc, test_names_line_longest_name_fits);
	tcase_add_test(tc, test_dump_active_line_bar_bytes);
	tcase_add_test(tc, test_dump_two_active_lines_are_nul_separated);
	tcase_add_test(tc, test_dump_unused_line_has_space_before_newline);
	tcase_add_test(tc, test_dump_lines_with_extreme_fds_fit);
	suite_add_tcase(s, tc);

	tc = tcase_create("client");
	tcase_add_test(tc, test_simple_requests_are_00_01_code);
	tcase_add_test(tc, test_stop_request_is_00_len_73_name);
	tcase_add_test(tc, test_stop_request_longer_than_a_frame_encodes_nothing);
	tcase_add_test(tc, test_strerror_names_every_error);
	tcase_add_test(tc, test_kill_replies_are_ok_and_no);
	tcase_add_test(tc, test_stop_replies_are_stopped_and_noexiststopped);
	suite_add_tcase(s, tc);

	return s;
}

