/*
 * Views into module state for the unit tests and the fuzz harness. The
 * daemon never calls these; they live here so production headers carry
 * only what the daemon uses.
 */
#ifndef INTROSPECT_H
#define INTROSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "log.h"

struct registry;
struct peercount;

/* Number of old/unused records. */
size_t registry_unused_count(const struct registry *reg);

/*
 * The current count for sa's prefix, the number of prefixes, and the
 * longest bucket chain (how well the key spreads a planned set).
 */
size_t peercount_get(const struct peercount *pc, const struct sockaddr *sa);
size_t peercount_size(const struct peercount *pc);
size_t peercount_longest_chain(const struct peercount *pc);

/* Where the log goes. */
enum log_target log_get_target(void);
/* May a flood-prone line be logged now? Counts what it holds back. */
bool log_flood_allowed(void);
/* Log to a socket at path instead of /dev/log or journald's (NULL: back). */
void log_set_socket_path(enum log_target t, const char *path);
/*
 * Journal messages go to fn, synchronously, instead of the log's own
 * non-blocking datagrams to journald's socket (NULL: back). The daemon
 * never sets one: a writer such as sd_journal_sendv blocks when journald
 * stops reading.
 */
struct iovec;
typedef int (*log_journal_fn)(const struct iovec *iov, int n);
void log_set_journal_writer(log_journal_fn fn);

#endif
