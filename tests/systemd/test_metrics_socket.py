#!/usr/bin/env python3
"""systemd/epmd-c-metrics.socket on a real systemd (tests/lib/realsystemd.py).

The metrics socket is shipped but not enabled. Enabled, it listens on
127.0.0.1:9369 and hands a socket named "metrics" to epmd-c.service, which
serves GET /metrics on it while epmd-c.socket's port 4369 stays the port
mapper's only. One container is booted for the whole file.
"""

import http.client
import os
import socket
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import epmdtest as et  # noqa: E402
import realsystemd  # noqa: E402

SOCKET = "epmd-c.socket"
METRICS_SOCKET = "epmd-c-metrics.socket"
SERVICE = "epmd-c.service"
EPMD_PORT = 4369
METRICS_PORT = 9369
C = None


def fresh():
    """The service and the metrics socket stopped, epmd-c.socket listening."""
    C.systemctl("stop", SERVICE, METRICS_SOCKET, check=False)
    C.systemctl("disable", METRICS_SOCKET, check=False)
    C.systemctl("reset-failed", check=False)
    C.systemctl("start", SOCKET)


def http_get(path="/metrics", port=METRICS_PORT, method="GET"):
    """(status, headers, body) of one request in the container's netns."""
    with C.netns():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            c.request(method, path)
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, \
                r.read()
        finally:
            c.close()


def samples(body):
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def refused(port):
    """True if nothing listens on the container's 127.0.0.1:port."""
    with C.netns():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except ConnectionRefusedError:
            return True
    return False


@et.test
def test_metrics_socket_is_shipped_disabled_and_serves_nothing():
    fresh()
    r = C.systemctl("is-enabled", METRICS_SOCKET, check=False)
    et.eq(r.stdout.strip(), "disabled", "is-enabled")
    with C.netns():
        et.eq(et.names(EPMD_PORT)[:4], EPMD_PORT.to_bytes(4, "big"), "NAMES")
    C.wait_active(SERVICE)
    et.check(refused(METRICS_PORT), "something listens on 9369")


@et.test
def test_enabled_metrics_socket_activates_the_service_and_is_scraped():
    fresh()
    C.systemctl("enable", "--now", METRICS_SOCKET)
    et.eq(C.prop(SERVICE, "ActiveState"), "inactive", "service before")
    # The first scrape starts the service, as a node would on 4369.
    status, hdrs, body = http_get()
    et.eq(status, 200, "GET /metrics")
    et.eq(hdrs.get("content-type"), "text/plain; version=0.0.4",
          "Content-Type")
    C.wait_active(SERVICE)
    before = samples(body)
    with C.netns():
        s, reply = et.register(EPMD_PORT, "sdmetrics")
        try:
            et.eq(reply[:2], b"v\x00", "register")
            et.eq(et.port_please(EPMD_PORT, "sdmetrics")[:2], b"w\x00",
                  "lookup")
            # The epmd port does not serve HTTP.
            et.eq(et.request(EPMD_PORT, b"GET /metrics HTTP/1.0\r\n\r\n"),
                  b"", "HTTP on 4369")
            after = samples(http_get()[2])
        finally:
            s.close()
    for key, d in (("epmd_nodes", 1),
                   ('epmd_registrations_total{result="ok"}', 1),
                   ('epmd_lookups_total{result="found"}', 1),
                   ("epmd_malformed_total", 1)):
        et.eq(after[key] - before[key], d, key)
    et.eq(http_get("/")[0], 404, "GET /")
    # The daemon logged where it serves, and -stats reads it inside.
    et.check("serving metrics on http://127.0.0.1:9369/metrics" in
             C.journal(SERVICE), "journal line")
    r = C.run("epmd-c", "-metrics", f"127.0.0.1:{METRICS_PORT}", "-stats")
    et.check("\nnodes:" in r.stdout, r.stdout)


@et.test
def test_a_running_service_must_stop_before_the_socket_starts():
    """systemd refuses to start a socket whose service already runs (the
    documented order is: stop the service, then enable --now)."""
    fresh()
    with C.netns():
        et.names(EPMD_PORT)
    C.wait_active(SERVICE)
    r = C.systemctl("enable", "--now", METRICS_SOCKET, check=False)
    et.check(r.returncode != 0, "socket started beside a running service")
    et.check("already active" in C.journal(METRICS_SOCKET) or
             "already active" in C.journal(), "no 'already active' notice")
    C.systemctl("stop", SERVICE)
    C.systemctl("enable", "--now", METRICS_SOCKET)
    status, _h, body = http_get()
    et.eq(status, 200, "GET /metrics once the service restarted")
    C.wait_active(SERVICE)
    et.check(b"epmd_nodes 0\n" in body, body[:200])


@et.test
def test_systemctl_restart_keeps_metrics_and_counts_the_restart():
    fresh()
    C.systemctl("enable", "--now", METRICS_SOCKET)
    et.eq(http_get()[0], 200, "GET /metrics")
    C.wait_active(SERVICE)
    with C.netns():
        s, reply = et.register(EPMD_PORT, "sdkept")
    try:
        et.eq(reply[:2], b"v\x00", "register")
        pid = C.main_pid(SERVICE)
        C.systemctl("restart", SERVICE)
        C.wait_active(SERVICE)
        et.check(C.main_pid(SERVICE) != pid, "a new process")
        got = samples(http_get()[2])
        et.eq(got["epmd_restarts_total"], 1.0, "epmd_restarts_total")
        et.eq(got["epmd_restored_nodes"], 1.0, "epmd_restored_nodes")
        et.eq(got["epmd_nodes"], 1.0, "epmd_nodes")
    finally:
        s.close()


def main():
    return realsystemd.run_test_file("metrics socket on a real systemd", globals())

if __name__ == "__main__":
    sys.exit(main())
