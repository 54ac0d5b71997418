/*
 * The metrics endpoint: GET /metrics on libevent's own HTTP server
 * (evhttp), on listeners of its own, never on an epmd port.
 */
#ifndef METRICS_HTTP_H
#define METRICS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct event_base;
struct metrics;
struct metrics_http;

/* The counters, brought up to date for a scrape (gauges set). */
typedef const struct metrics *(*metrics_http_source_fn)(void *arg);

/* Seconds an HTTP connection may stay idle or take to send its request. */
#define METRICS_HTTP_TIMEOUT	10
/* Metrics listeners at most: one -metrics address plus inherited sockets. */
#define METRICS_HTTP_MAX_LISTENERS	8

/* A metrics server on base with no listener yet; NULL on failure. */
struct metrics_http *metrics_http_new(struct event_base *base,
	    metrics_http_source_fn source, void *arg);
/* Listen on sa; false (errno set) if it cannot. */
bool metrics_http_bind(struct metrics_http *mh, const struct sockaddr *sa,
	    socklen_t len);
/* Serve on an inherited listening socket; false if it cannot. */
bool metrics_http_adopt(struct metrics_http *mh, int fd);
/* The listening descriptors, for a handover; returns their count. */
size_t metrics_http_listener_fds(const struct metrics_http *mh, int *fds,
	    size_t max);
/* Does a metrics listener already listen on sa (address and port)? */
bool metrics_http_listens_on(const struct metrics_http *mh,
	    const struct sockaddr *sa);
/* Log the address of every metrics listener. */
void metrics_http_log_listeners(const struct metrics_http *mh);
/* Close the listeners and every HTTP connection, and free mh. */
void metrics_http_free(struct metrics_http *mh);

/*
 * Client side, for -stats: GET /metrics from sa within timeout seconds.
 * On success *body is a malloc'd NUL-terminated text; on failure err says
 * why.
 */
bool metrics_http_fetch(const struct sockaddr *sa, socklen_t len, int timeout,
	    char **body, char *err, size_t errlen);

#endif
