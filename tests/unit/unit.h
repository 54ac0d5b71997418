/* What a unit test file exports (its check suite), and the helpers they share. */
#ifndef EPMD_UNIT_H
#define EPMD_UNIT_H

#include <check.h>
#include <sys/socket.h>

/* The suite of this binary's test_<module>.c, run by check_main.c. */
Suite	*unit_suite(void);

/* A socket address for text (IPv4 or IPv6), port 4369; fails the test if bad. */
struct sockaddr_storage	unit_sockaddr(const char *text);

#endif
