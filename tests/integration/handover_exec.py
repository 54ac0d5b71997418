#!/usr/bin/env python3
"""Hand descriptors to a command the way systemd's fd store does, for tests.

    handover_exec.py FD:NAME... -- COMMAND [ARG]...

Every FD (inherited from the caller, e.g. through Popen's pass_fds) is moved
to 3, 4, ... in the order given, LISTEN_FDS, LISTEN_PID (this process's
pid, which COMMAND keeps) and LISTEN_FDNAMES (the NAMEs joined by ':') are
set, and COMMAND is exec'ed in place. This is what systemd 252 does when a
service starts with a socket unit's listeners and stored descriptors.
"""

import os
import sys

HIGH_FD = 1000   # where descriptors wait while 3.. are being filled


def main(argv):
    if "--" not in argv:
        sys.stderr.write("usage: handover_exec.py FD:NAME... -- COMMAND...\n")
        return 2
    k = argv.index("--")
    specs, cmd = argv[1:k], argv[k + 1:]
    pairs = []
    for s in specs:
        fd, _, name = s.partition(":")
        pairs.append((int(fd), name))
    # Park them high first, so moving one never overwrites another.
    parked = [os.dup2(fd, HIGH_FD + i, inheritable=False)
              for i, (fd, _) in enumerate(pairs)]
    for fd, _ in pairs:
        if fd not in parked:
            os.close(fd)
    for i, p in enumerate(parked):
        os.dup2(p, 3 + i, inheritable=True)
        os.close(p)
    os.environ["LISTEN_FDS"] = str(len(pairs))
    os.environ["LISTEN_PID"] = str(os.getpid())
    os.environ["LISTEN_FDNAMES"] = ":".join(n for _, n in pairs)
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
