#!/usr/bin/env python3
"""The fuzz layer of tests/run: build, replay regressions, fuzz briefly.

    python3 tests/fuzz/run_fuzz.py             # FUZZ_SECONDS per target, default 30
                                               # (fuzz_state: at most 20, fuzz_addrfilt: 15)

1. Builds every target with `make -C tests/fuzz` (clang, libFuzzer, ASan,
   UBSan). Without clang or libFuzzer it prints one `skip` line per target
   and exits 0.
2. Replays every input in tests/fuzz/regressions/<target>/ once: one
   `ok`/`not ok` line per target.
3. Fuzzes each target for FUZZ_SECONDS (from the environment; 0 skips this
   step) from a scratch copy of tests/fuzz/corpus/<target>/, so the
   committed seeds never grow: `ok - fuzz_<target> (N execs)`, or `not ok`
   with libFuzzer's report on stderr and the crash input kept in
   tests/fuzz/build/artifacts/<target>/.

Exits non-zero if anything failed.
"""

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.join(HERE, "build")
TARGETS = ["proto", "conn", "state", "stats", "addrfilt"]
# Targets whose short run is capped (seconds): small pure decoders.
SECONDS_CAP = {"state": 20, "stats": 20, "addrfilt": 15}
MAX_LEN = 8192
# Per-input limits, as in the Makefile's RUN_OPTS.
RUN_OPTS = ["-timeout=20", "-rss_limit_mb=2048"]

failed = False


def say(kind, what):
    global failed
    if kind == "not ok":
        failed = True
    print(f"{kind} - {what}", flush=True)


def tail(text, n=12000):
    return text[-n:] if len(text) > n else text


def toolchain_problem():
    """Why libFuzzer targets cannot be built here, or None."""
    cc = os.environ.get("FUZZ_CC", "clang")
    if shutil.which(cc) is None:
        return f"{cc} not found (set FUZZ_CC, or install clang)"
    if shutil.which("make") is None:
        return "make not found"
    with tempfile.TemporaryDirectory(prefix="epmdc-fuzzprobe-") as d:
        src = os.path.join(d, "probe.c")
        with open(src, "w") as f:
            f.write("#include <stddef.h>\n#include <stdint.h>\n"
                    "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\n"
                    "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)"
                    " { (void)d; (void)n; return 0; }\n")
        try:
            p = subprocess.run([cc, "-fsanitize=fuzzer,address,undefined",
                                "-o", os.path.join(d, "probe"), src],
                               capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"{cc} failed: {e}"
        if p.returncode != 0:
            last = (p.stderr.strip().splitlines() or ["?"])[-1]
            return f"{cc} cannot link libFuzzer targets: {last}"
    return None


def fuzz_env():
    env = dict(os.environ)
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    return env


def regression_inputs(target):
    d = os.path.join(HERE, "regressions", target)
    files = [f for f in sorted(glob.glob(os.path.join(d, "*")))
             if os.path.isfile(f) and not os.path.basename(f).startswith(".")
             and not os.path.basename(f).startswith("README")]
    return files


def replay(target):
    """Run each committed crash input once."""
    binary = os.path.join(BUILD, f"fuzz_{target}")
    files = regression_inputs(target)
    name = f"fuzz_{target} regressions"
    if not files:
        say("ok", f"{name} (0 inputs)")
        return
    try:
        p = subprocess.run([binary] + RUN_OPTS + files, capture_output=True,
                           text=True, errors="replace", env=fuzz_env(),
                           timeout=600)
        rc, out = p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out = -1, f"timed out: {e}"
    if rc == 0:
        say("ok", f"{name} ({len(files)} inputs)")
    else:
        say("not ok", f"{name}: exit {rc}")
        sys.stderr.write(f"===== fuzz_{target} regression replay =====\n")
        sys.stderr.write(tail(out))


def execs_of(out):
    m = re.search(r"stat::number_of_executed_units:\s*(\d+)", out)
    if m is None:
        m = re.search(r"Done (\d+) runs", out)
    return int(m.group(1)) if m else None


def fuzz(target, seconds):
    """Fuzz one target from a scratch copy of its seeds."""
    binary = os.path.join(BUILD, f"fuzz_{target}")
    name = f"fuzz_{target}"
    scratch = tempfile.mkdtemp(prefix=f"epmdc-fuzz-{target}-")
    try:
        corpus = os.path.join(scratch, "corpus")
        artifacts = os.path.join(scratch, "artifacts") + os.sep
        os.makedirs(corpus)
        os.makedirs(artifacts)
        for f in glob.glob(os.path.join(HERE, "corpus", target, "*")):
            if os.path.isfile(f):
                shutil.copy(f, corpus)
        cmd = [binary] + RUN_OPTS + [
            f"-max_total_time={seconds}", f"-max_len={MAX_LEN}",
            "-print_final_stats=1", f"-artifact_prefix={artifacts}", corpus]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True,
                               errors="replace", env=fuzz_env(),
                               timeout=seconds + 300)
            rc, out = p.returncode, p.stdout + p.stderr
        except subprocess.TimeoutExpired as e:
            rc = -1
            out = (e.stderr or b"").decode("utf-8", "replace") \
                if isinstance(e.stderr, bytes) else (e.stderr or "")
            out += f"\ntimed out after {seconds + 300}s"
        crashes = sorted(os.listdir(artifacts))
        if rc == 0 and not crashes:
            n = execs_of(out)
            say("ok", f"{name} ({n if n is not None else '?'} execs)")
            return
        keep = os.path.join(BUILD, "artifacts", target)
        os.makedirs(keep, exist_ok=True)
        for c in crashes:
            shutil.copy(os.path.join(artifacts, c), keep)
        where = f"; inputs kept in {os.path.relpath(keep)}" if crashes else ""
        say("not ok", f"{name}: exit {rc}{where}")
        sys.stderr.write(f"===== {name} =====\n")
        sys.stderr.write(tail(out))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main():
    problem = toolchain_problem()
    if problem is not None:
        for t in TARGETS:
            say("skip", f"fuzz_{t}: {problem}")
        return 0
    p = subprocess.run(["make", "-C", HERE], capture_output=True, text=True,
                       errors="replace")
    if p.returncode != 0:
        say("not ok", "fuzz build: make -C tests/fuzz failed")
        sys.stderr.write(tail(p.stdout + p.stderr))
        return 1
    for t in TARGETS:
        replay(t)
    try:
        seconds = int(os.environ.get("FUZZ_SECONDS", "30"))
    except ValueError:
        say("not ok", "FUZZ_SECONDS is not a whole number of seconds")
        return 1
    for t in TARGETS:
        if seconds <= 0:
            say("skip", f"fuzz_{t}: FUZZ_SECONDS={seconds}")
        else:
            fuzz(t, min(seconds, SECONDS_CAP.get(t, seconds)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
