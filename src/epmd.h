/* Protocol constants of the Erlang port mapper, named once (PROTOCOL.md). */
#ifndef EPMD_H
#define EPMD_H

#define EPMD_PORT_DEFAULT	4369

/* Longest name or extra field in bytes; a name is also capped in chars. */
#define EPMD_MAXSYMLEN		1020
#define EPMD_MAX_NAME_CHARS	255

/* A frame is Length:16 then Length bytes; valid Length is 1..3057. */
#define EPMD_FRAME_HEADER	2
#define EPMD_MAX_FRAME_BODY	3057
#define EPMD_INBUF_SIZE		3060

#define EPMD_MAX_LISTENERS	16
/* -address may name at most this many addresses besides the loopbacks. */
#define EPMD_MAX_EXTRA_ADDRS	13

#define EPMD_UNREG_LIMIT	1000
#define EPMD_UNREG_LIMIT_DEBUG	5

#define EPMD_PACKET_TIMEOUT	60
#define EPMD_ERROR_CREATION	99

/* Request codes. */
#define EPMD_ALIVE2_REQ		120	/* 'x' */
#define EPMD_PORT_PLEASE2_REQ	122	/* 'z' */
#define EPMD_NAMES_REQ		110	/* 'n' */
#define EPMD_DUMP_REQ		100	/* 'd' */
#define EPMD_KILL_REQ		107	/* 'k' */
#define EPMD_STOP_REQ		115	/* 's' */

/* Reply codes. */
#define EPMD_ALIVE2_RESP	121	/* 'y', 16-bit creation */
#define EPMD_ALIVE2_X_RESP	118	/* 'v', 32-bit creation */
#define EPMD_PORT2_RESP		119	/* 'w' */

/* ALIVE2 replies switch to the 32-bit form from this HighestVersion on. */
#define EPMD_X_RESP_VERSION	6

#endif
