/*
 * The metrics endpoint on evhttp: GET (or HEAD) /metrics answers the
 * Prometheus text, any other path 404, any other method on /metrics 405.
 * It has listeners of its own; the epmd listeners are never handed here.
 * Also the client side of -stats, on evhttp's client.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "peer.h"

/* A request line and headers fit in this; a scrape has no body. */
#define METRICS_HTTP_MAX_HEADERS	8192
#define METRICS_HTTP_MAX_BODY		0
/* The largest reply -stats takes. */
#define METRICS_HTTP_MAX_REPLY		(1024 * 1024)
/* How long a listener pauses when descriptors run out. */
#define METRICS_HTTP_RETRY_USEC		100000

struct metrics_http {
	struct metrics_http	*next;	/* in live_servers */
	struct event_base	*base;
	struct evhttp		*http;
	metrics_http_source_fn	 source;
	void			*arg;
	struct evconnlistener	*listeners[METRICS_HTTP_MAX_LISTENERS];
	size_t			 nlisteners;
	struct event		*retry;	/* re-enables listeners after EMFILE */
};

/*
 * Every metrics server alive. A listener's error callback gets the
 * listener and evhttp's own argument, not ours: it finds its server here.
 */
static struct metrics_http *live_servers;

/* Append rendered text to an evbuffer. */
static bool
put_evbuffer(void *arg, const char *text, size_t len)
{
	return evbuffer_add(arg, text, len) == 0;
}

/* GET /metrics: render the counters and the process family. */
static void
metrics_cb(struct evhttp_request *req, void *arg)
{
	struct metrics_http	*mh = arg;
	struct evkeyvalq	*hdrs = evhttp_request_get_output_headers(req);
	enum evhttp_cmd_type	 cmd = evhttp_request_get_command(req);
	struct metrics_process	 proc;
	struct evbuffer		*body;

	if ((body = evbuffer_new()) == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		/* Not evhttp_send_error: it drops the headers we set. */
		evhttp_add_header(hdrs, "Allow", "GET, HEAD");
		evhttp_add_header(hdrs, "Content-Type", "text/plain");
		evbuffer_add_printf(body, "405 Method Not Allowed\n");
		evhttp_send_reply(req, 405, "Method Not Allowed", body);
		evbuffer_free(body);
		return;
	}
	metrics_read_process(&proc);
	if (!metrics_render(mh->source(mh->arg), &proc, EPMD_C_VERSION,
	    put_evbuffer, body)) {
		evbuffer_free(body);
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	evhttp_add_header(hdrs, "Content-Type", METRICS_CONTENT_TYPE);
	evhttp_send_reply(req, HTTP_OK, "OK", body);
	evbuffer_free(body);
}

/* Any other path. */
static void
not_found_cb(struct evhttp_request *req, void *arg)
{
	(void)arg;
	evhttp_send_error(req, HTTP_NOTFOUND, NULL);
}

/* Enable or disable every metrics listener. */
static void
set_listening(struct metrics_http *mh, bool on)
{
	size_t i;

	for (i = 0; i < mh->nlisteners; i++) {
		if (on)
			evconnlistener_enable(mh->listeners[i]);
		else
			evconnlistener_disable(mh->listeners[i]);
	}
}

/* Listen again after a pause for descriptors. */
static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	set_listening(arg, true);
}

/* The server a listener belongs to, or NULL. */
static struct metrics_http *
server_of(const struct evconnlistener *l)
{
	struct metrics_http	*mh;
	size_t			 i;

	for (mh = live_servers; mh != NULL; mh = mh->next)
		for (i = 0; i < mh->nlisteners; i++)
			if (mh->listeners[i] == l)
				return mh;
	return NULL;
}

/* accept() failed; out of descriptors, pause rather than spin. */
static void
accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct metrics_http	*mh = server_of(l);
	struct timeval		 tv = { .tv_usec = METRICS_HTTP_RETRY_USEC };
	int			 err = EVUTIL_SOCKET_ERROR();

	(void)arg;	/* evhttp's, not ours */
	if (mh == NULL) {
		evconnlistener_disable(l);
		return;
	}
	log_flood(LOG_WARNING, NULL, "metrics: accept: %s; pausing",
	    strerror(err));
	set_listening(mh, false);
	evtimer_add(mh->retry, &tv);
}

/* A metrics server on base with no listener yet; NULL on failure. */
struct metrics_http *
metrics_http_new(struct event_base *base, metrics_http_source_fn source,
    void *arg)
{
	struct metrics_http *mh;

	if ((mh = calloc(1, sizeof(*mh))) == NULL)
		return NULL;
	mh->base = base;
	mh->source = source;
	mh->arg = arg;
	if ((mh->http = evhttp_new(base)) == NULL ||
	    (mh->retry = evtimer_new(base, retry_cb, mh)) == NULL ||
	    evhttp_set_cb(mh->http, "/metrics", metrics_cb, mh) != 0) {
		metrics_http_free(mh);
		return NULL;
	}
	evhttp_set_gencb(mh->http, not_found_cb, mh);
	/* Every method reaches us, so /metrics can answer 405 itself. */
	evhttp_set_allowed_methods(mh->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD |
	    EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT |
	    EVHTTP_REQ_PATCH);
	evhttp_set_max_headers_size(mh->http, METRICS_HTTP_MAX_HEADERS);
	evhttp_set_max_body_size(mh->http, METRICS_HTTP_MAX_BODY);
	evhttp_set_timeout(mh->http, METRICS_HTTP_TIMEOUT);
	mh->next = live_servers;
	live_servers = mh;
	return mh;
}

/* Hand a listener to evhttp, with our EMFILE handling. */
static bool
add_listener(struct metrics_http *mh, struct evconnlistener *l)
{
	if (l == NULL)
		return false;
	if (mh->nlisteners >= METRICS_HTTP_MAX_LISTENERS ||
	    evhttp_bind_listener(mh->http, l) == NULL) {
		evconnlistener_free(l);
		errno = EINVAL;
		return false;
	}
	/* evhttp sets no error callback: at EMFILE the listener would spin. */
	evconnlistener_set_error_cb(l, accept_error_cb);
	mh->listeners[mh->nlisteners++] = l;
	return true;
}

/* Listen on sa; false (errno set) if it cannot. */
bool
metrics_http_bind(struct metrics_http *mh, const struct sockaddr *sa,
    socklen_t len)
{
	unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC |
	    LEV_OPT_REUSEABLE;

	if (sa->sa_family == AF_INET6)
		flags |= LEV_OPT_BIND_IPV6ONLY;
	errno = 0;
	return add_listener(mh, evconnlistener_new_bind(mh->base, NULL, NULL,
	    flags, SOMAXCONN, sa, (int)len));
}

/* Serve on an inherited listening socket; false if it cannot. */
bool
metrics_http_adopt(struct metrics_http *mh, int fd)
{
	if (evutil_make_socket_nonblocking(fd) == -1)
		return false;
	return add_listener(mh, evconnlistener_new(mh->base, NULL, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd));
}

/* The listening descriptors, for a handover; returns their count. */
size_t
metrics_http_listener_fds(const struct metrics_http *mh, int *fds, size_t max)
{
	size_t i;

	for (i = 0; i < mh->nlisteners && i < max; i++)
		fds[i] = evconnlistener_get_fd(mh->listeners[i]);
	return i;
}

/* Does a metrics listener already listen on sa (address and port)? */
bool
metrics_http_listens_on(const struct metrics_http *mh,
    const struct sockaddr *sa)
{
	struct sockaddr_storage	ss;
	socklen_t		len;
	size_t			i;

	for (i = 0; i < mh->nlisteners; i++) {
		len = sizeof(ss);
		if (getsockname(evconnlistener_get_fd(mh->listeners[i]),
		    (struct sockaddr *)&ss, &len) == 0 &&
		    peer_same_addr((struct sockaddr *)&ss, sa) &&
		    peer_port((struct sockaddr *)&ss) == peer_port(sa))
			return true;
	}
	return false;
}

/* Log the address of every metrics listener. */
void
metrics_http_log_listeners(const struct metrics_http *mh)
{
	size_t i;

	for (i = 0; i < mh->nlisteners; i++) {
		struct sockaddr_storage	ss;
		socklen_t		len = sizeof(ss);
		char			addr[PEER_ADDRSTRLEN];
		int			fd;

		fd = evconnlistener_get_fd(mh->listeners[i]);
		if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
			log_info("serving metrics on http://%s/metrics",
			    peer_format((struct sockaddr *)&ss, addr,
			    sizeof(addr)));
	}
}

/* Close the listeners and every HTTP connection, and free mh. */
void
metrics_http_free(struct metrics_http *mh)
{
	struct metrics_http **pp;

	if (mh == NULL)
		return;
	for (pp = &live_servers; *pp != NULL; pp = &(*pp)->next)
		if (*pp == mh) {
			*pp = mh->next;
			break;
		}
	/* evhttp_free frees the bound listeners and open connections. */
	if (mh->http != NULL)
		evhttp_free(mh->http);
	if (mh->retry != NULL)
		event_free(mh->retry);
	free(mh);
}

/* What a -stats fetch is waiting for. */
struct fetch {
	struct event_base	*base;
	char			*body;
	char			*err;
	size_t			 errlen;
};

/* The reply to a -stats fetch arrived (or req is NULL: it failed). */
static void
fetch_done_cb(struct evhttp_request *req, void *arg)
{
	struct fetch	*f = arg;
	struct evbuffer	*in;
	size_t		 len;
	int		 code;

	event_base_loopexit(f->base, NULL);
	if (req == NULL) {
		if (f->err[0] == '\0')
			snprintf(f->err, f->errlen, "no reply");
		return;
	}
	if ((code = evhttp_request_get_response_code(req)) != HTTP_OK) {
		snprintf(f->err, f->errlen, "HTTP status %d", code);
		return;
	}
	in = evhttp_request_get_input_buffer(req);
	len = evbuffer_get_length(in);
	if ((f->body = malloc(len + 1)) == NULL) {
		snprintf(f->err, f->errlen, "out of memory");
		return;
	}
	evbuffer_remove(in, f->body, len);
	f->body[len] = '\0';
}

/* Why a -stats fetch failed, in words. */
static void
fetch_error_cb(enum evhttp_request_error e, void *arg)
{
	struct fetch *f = arg;
	static const char *why[] = {
		[EVREQ_HTTP_TIMEOUT] = "timed out",
		[EVREQ_HTTP_EOF] = "connection closed",
		[EVREQ_HTTP_INVALID_HEADER] = "invalid reply",
		[EVREQ_HTTP_BUFFER_ERROR] = "connection refused or lost",
		[EVREQ_HTTP_REQUEST_CANCEL] = "cancelled",
		[EVREQ_HTTP_DATA_TOO_LONG] = "reply too long",
	};

	snprintf(f->err, f->errlen, "%s", (unsigned)e < sizeof(why) /
	    sizeof(why[0]) && why[e] != NULL ? why[e] : "failed");
}

/* GET /metrics from sa within timeout seconds, for -stats. */
bool
metrics_http_fetch(const struct sockaddr *sa, socklen_t len, int timeout,
    char **body, char *err, size_t errlen)
{
	struct fetch			 f = { .err = err, .errlen = errlen };
	struct evhttp_connection	*evcon = NULL;
	struct evhttp_request		*req;
	char				 host[PEER_ADDRSTRLEN];
	char				 hostport[PEER_ADDRSTRLEN];

	(void)len;
	*body = NULL;
	err[0] = '\0';
	peer_format_addr(sa, host, sizeof(host));
	peer_format(sa, hostport, sizeof(hostport));
	if ((f.base = event_base_new()) == NULL ||
	    (evcon = evhttp_connection_base_new(f.base, NULL, host,
	    peer_port(sa))) == NULL ||
	    (req = evhttp_request_new(fetch_done_cb, &f)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	evhttp_connection_set_timeout(evcon, timeout);
	evhttp_connection_set_retries(evcon, 0);
	evhttp_connection_set_max_body_size(evcon, METRICS_HTTP_MAX_REPLY);
	evhttp_request_set_error_cb(req, fetch_error_cb);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host",
	    hostport);
	if (evhttp_make_request(evcon, req, EVHTTP_REQ_GET, "/metrics") != 0) {
		snprintf(err, errlen, "cannot send the request");
		goto out;
	}
	event_base_dispatch(f.base);
	*body = f.body;
out:
	if (evcon != NULL)
		evhttp_connection_free(evcon);
	if (f.base != NULL)
		event_base_free(f.base);
	return *body != NULL;
}
