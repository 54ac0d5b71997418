/* Command line and environment into one struct options. */
#ifndef OPTIONS_H
#define OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "addrfilt.h"
#include "epmd.h"
#include "listenlist.h"

enum options_command {
	CMD_SERVE,	/* no client command: run the daemon */
	CMD_NAMES,
	CMD_DUMP,
	CMD_KILL,
	CMD_STOP,
	CMD_STARTED,
	CMD_STATS,	/* epmd-c's own: the metrics endpoint for a person */
};

enum options_status {
	OPTIONS_OK,
	OPTIONS_USAGE,	/* print the usage on stderr, exit 1 */
	OPTIONS_FATAL,	/* print options.error, exit 1 */
};

#define OPTIONS_DEFAULT_MAX_PER_PEER	256
#define OPTIONS_DEFAULT_MAX_PER_PREFIX	1024
#define OPTIONS_DEFAULT_PREFIX4		24
#define OPTIONS_DEFAULT_PREFIX6		64
#define OPTIONS_DEFAULT_DEADLINE	10
/* -max_remote_conns not given: half the descriptor limit. */
#define OPTIONS_REMOTE_AUTO		(-1L)
/* Seconds a client command waits for the whole answer (0: for ever). */
#define OPTIONS_DEFAULT_CLIENT_TIMEOUT	10

struct options {
	enum options_command	 command;
	const char		*stop_name;
	int			 debug;		/* number of -d flags */
	long			 port;		/* whole, as given; bind uses 16 bits */
	bool			 daemon;
	bool			 relaxed;
	bool			 systemd;
	int			 packet_timeout;	/* seconds */
	int			 delay_accept;		/* seconds */
	int			 delay_write;		/* seconds */
	int			 max_conns_per_peer;	/* 0: no cap */
	/* Non-local unregistered connections per prefix, and in all. */
	int			 max_conns_per_prefix;	/* 0: no cap */
	int			 peer_prefix4;		/* bits, 0..32 */
	int			 peer_prefix6;		/* bits, 0..128 */
	long			 max_remote_conns;	/* 0: no cap; or AUTO */
	int			 request_deadline;	/* seconds, 0: none */
	int			 client_timeout;	/* seconds; 0: for ever */
	/* Listen addresses; naddrs 0 means all interfaces (0.0.0.0 and ::). */
	struct listen_addr	 addrs[EPMD_MAX_LISTENERS];
	size_t			 naddrs;
	/* -metrics ADDR:PORT: serve (or, with -stats, read) metrics there. */
	bool			 metrics;
	struct listen_addr	 metrics_addr;
	/* The address list as given, and where; -systemd ignores it. */
	const char		*address_list;
	const char		*address_from;	/* "-address", "ERL_EPMD_ADDRESS" */
	/* Who besides local peers may ask what (local peers: everything). */
	struct addrfilt		 names_from;	/* NAMES; default any */
	struct addrfilt		 lookup_from;	/* PORT_PLEASE2; default any */
	struct addrfilt		 register_from;	/* ALIVE2; default none */
	char			 error[256];	/* for OPTIONS_FATAL */
};

/* Fill opts from the environment, then argv, left to right. */
enum options_status options_parse(struct options *opts, int argc,
	    char *const argv[]);
/* Parse an -address list into opts's listen list (see listenlist.h). */
enum options_status options_parse_addresses(struct options *opts,
	    const char *list);
/* Parse "a.b.c.d:port" or "[v6]:port" for -metrics; false if invalid. */
bool options_parse_hostport(const char *s, struct listen_addr *out);
/* The usage text, printed to stderr on a usage error. */
const char *options_usage(void);

#endif
