/* Connections per peer address, for the per-peer cap. */
#ifndef PEERCOUNT_H
#define PEERCOUNT_H

#include <stddef.h>
#include <sys/socket.h>

struct peercount;

/* A new empty table. */
struct peercount *peercount_new(void);
/* Free the table. */
void peercount_free(struct peercount *pc);
/* Count one more connection from sa's address; returns the new count, 0 on ENOMEM. */
size_t peercount_add(struct peercount *pc, const struct sockaddr *sa);
/* Count one connection less from sa's address. */
void peercount_remove(struct peercount *pc, const struct sockaddr *sa);

#endif
