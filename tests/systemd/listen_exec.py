#!/usr/bin/env python3
"""A tiny stand-in for systemd's socket activation, for tests.

    listen_exec.py [-l SPEC]... [-E NAME=VALUE]... [--watchdog-pid-self]
                   [--print-ports] -- COMMAND [ARG]...

Creates every listening socket itself, places them on fds 3, 4, ... in
order, sets LISTEN_FDS=<count> and LISTEN_PID=<own pid>, and execs COMMAND
in place (so COMMAND keeps this process's pid, as under systemd). Unlike
systemd-socket-activate it does not wait for a first connection, and it
sets IPV6_V6ONLY explicitly instead of leaving the kernel's default.

SPEC is one of
    127.0.0.1:PORT          an IPv4 listener
    [::1]:PORT              an IPv6 listener with IPV6_V6ONLY=1
    [::]:PORT/dual          an IPv6 listener with IPV6_V6ONLY=0 (dual-stack)
    ...:PORT/nolisten       bound but never listen()ed (a broken hand-over)
    unix:PATH               a listening AF_UNIX stream socket (not TCP)
PORT 0 picks a free port. --print-ports writes "PORTS p1 p2 ..." on stdout
before the exec.

The environment of COMMAND is this process's environment without any
LISTEN_*, NOTIFY_SOCKET or WATCHDOG_* variable, plus every -E. With
--watchdog-pid-self, WATCHDOG_PID is set to the own pid (the daemon's).
"""

import os
import socket
import sys

FIRST_FD = 3
HIGH_FD = 200   # where sockets wait while fds 3.. are being filled


def usage(msg):
    sys.stderr.write(f"listen_exec: {msg}\n")
    sys.exit(2)


def parse_spec(spec):
    """(family, host, port, v6only, listen) from a SPEC string."""
    flags = set()
    if "/" in spec:
        spec, rest = spec.split("/", 1)
        flags = set(rest.split(","))
    unknown = flags - {"dual", "nolisten"}
    if unknown:
        usage(f"unknown flags {sorted(unknown)}")
    host, sep, port = spec.rpartition(":")
    if not sep or not port.isdigit():
        usage(f"bad listen spec {spec!r}")
    if host.startswith("[") and host.endswith("]"):
        fam, host = socket.AF_INET6, host[1:-1]
    else:
        fam = socket.AF_INET
    if "dual" in flags and fam != socket.AF_INET6:
        usage("/dual needs an IPv6 address")
    return fam, host, int(port), "dual" not in flags, "nolisten" not in flags


def open_socket(fam, host, port, v6only, do_listen):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY,
                     1 if v6only else 0)
    s.bind((host, port))
    if do_listen:
        s.listen(128)
    return s


def open_unix(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(16)
    return s


def main(argv):
    specs, setenv, wd_self, print_ports = [], [], False, False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            i += 1
            break
        if a in ("-l", "-E"):
            if i + 1 >= len(argv):
                usage(f"{a} needs an argument")
            (specs if a == "-l" else setenv).append(argv[i + 1])
            i += 2
        elif a == "--watchdog-pid-self":
            wd_self, i = True, i + 1
        elif a == "--print-ports":
            print_ports, i = True, i + 1
        else:
            usage(f"unknown option {a!r}")
    command = argv[i:]
    if not command:
        usage("no command")

    socks = [open_unix(s[5:]) if s.startswith("unix:") else
             open_socket(*parse_spec(s)) for s in specs]
    if print_ports:
        print("PORTS " + " ".join(str(s.getsockname()[1])
                                  if s.family != socket.AF_UNIX else "0"
                                  for s in socks),
              flush=True)
    # Move every socket out of the way, then down to 3, 4, ... in order.
    high = []
    for n, s in enumerate(socks):
        fd = HIGH_FD + n
        os.dup2(s.fileno(), fd, inheritable=False)
        s.close()
        high.append(fd)
    for n, fd in enumerate(high):
        os.dup2(fd, FIRST_FD + n, inheritable=True)
        os.close(fd)

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LISTEN_", "WATCHDOG_"))
           and k != "NOTIFY_SOCKET"}
    for kv in setenv:
        k, sep, v = kv.partition("=")
        if not sep:
            usage(f"-E needs NAME=VALUE, got {kv!r}")
        env[k] = v
    if specs:
        env["LISTEN_FDS"] = str(len(specs))
        env["LISTEN_PID"] = str(os.getpid())
    if wd_self:
        env["WATCHDOG_PID"] = str(os.getpid())
    try:
        os.execvpe(command[0], command, env)
    except OSError as e:
        usage(f"cannot exec {command[0]}: {e}")


if __name__ == "__main__":
    main(sys.argv[1:])
