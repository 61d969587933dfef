#!/usr/bin/env python3
"""The persistent search index on an existing archive (make one with
tests/gen_archive.py DIR N): one serai with watch = yes, and

  cold     a start on an empty state_dir: spawn to ports open, and to the
           "search index: ... (built)" line (search ready); server CPU
  warm     a restart on the same state_dir: spawn to ports open, and to
           search ready (the index reused); server CPU
  publish  one article written into the archive, to the first Gopher
           search that finds it (polled every 20 ms), and the server's
           CPU-seconds (utime + stime) from the write until then; the
           index's own share from its log line; the same for a removal
  readers  --searchers clients each looping a common word over Gopher
           for --seconds: searches per second, all clients together

Not part of the test suite: run it by hand.

    /usr/bin/python3 tests/gen_archive.py /tmp/a100k 100000
    SERAI_BIN=build/serai /usr/bin/python3 tests/bench/index_bench.py \\
        /tmp/a100k [--seconds 5] [--searchers 2] [--no-publish]

(/usr/bin/python3: the e2e harness imports pytest, from Debian.)  The
archive gets one file added and removed again: nothing else changes.
"""

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))
import conftest  # noqa: E402
from conftest import Server, gopher_fetch  # noqa: E402

POLL = 0.02
TIMEOUT = 600


def cpu_seconds(pid):
    """utime + stime of every thread of pid, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(pred, what):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(POLL)
    raise SystemExit("timed out waiting for " + what)


def index_lines(srv):
    return [ln for ln in srv.log().splitlines() if "search index:" in ln]


def start(srv, label):
    """Spawn, ports open, search ready: wall times and server CPU."""
    before = len(index_lines(srv)) if srv.log_path else 0
    t0 = time.monotonic()
    srv.runs += 1
    srv.log_path = srv.workdir / ("stderr-%d.log" % srv.runs)
    srv.write_config()
    with open(srv.log_path, "ab") as err:
        import subprocess
        srv.proc = subprocess.Popen(conftest.serai_command("-c", srv.config),
                                    cwd=srv.workdir, stdin=subprocess.DEVNULL,
                                    stdout=err, stderr=err)
    wait_for(lambda: conftest.port_open(srv.gopher_port, 0.05), "ports")
    serving = time.monotonic() - t0
    wait_for(lambda: index_lines(srv), "the index")
    ready = time.monotonic() - t0
    del before
    print("%-8s serving after %.2f s, search ready after %.2f s, "
          "server CPU %.2f s: %s" % (label, serving, ready,
                                     cpu_seconds(srv.proc.pid),
                                     index_lines(srv)[-1].split(": ", 1)[1]))


def found(srv, token):
    return b"\t/bench/" in gopher_fetch("/search\t" + token, srv.gopher_port)


def publish(srv, root):
    token = "zqxbenchtoken%d" % os.getpid()
    section = root / "bench"
    section.mkdir(exist_ok=True)
    n0 = len(index_lines(srv))
    c0 = cpu_seconds(srv.proc.pid)
    t0 = time.monotonic()
    (section / "published.txt").write_text(
        "Date: 2031-01-01\nA published article\n\nIt carries %s.\n" % token,
        encoding="utf-8")
    wait_for(lambda: found(srv, token), "the article in search")
    took = time.monotonic() - t0
    wait_for(lambda: len(index_lines(srv)) > n0, "the index line")
    print("publish  searchable after %.2f s, server CPU %.2f s; %s"
          % (took, cpu_seconds(srv.proc.pid) - c0,
             index_lines(srv)[-1].split(": ", 1)[1]))
    n0 = len(index_lines(srv))
    c0 = cpu_seconds(srv.proc.pid)
    t0 = time.monotonic()
    (section / "published.txt").unlink()
    section.rmdir()
    wait_for(lambda: not found(srv, token), "the article gone")
    took = time.monotonic() - t0
    wait_for(lambda: len(index_lines(srv)) > n0, "the index line")
    print("remove   unsearchable after %.2f s, server CPU %.2f s; %s"
          % (took, cpu_seconds(srv.proc.pid) - c0,
             index_lines(srv)[-1].split(": ", 1)[1]))


def readers(srv, seconds, nclients, word):
    stop = time.monotonic() + seconds
    counts = [0] * nclients

    def loop(i):
        while time.monotonic() < stop:
            body = gopher_fetch("/search\t" + word, srv.gopher_port)
            assert b"hits" in body, body[:200]
            counts[i] += 1

    c0 = cpu_seconds(srv.proc.pid)
    threads = [threading.Thread(target=loop, args=(i,))
               for i in range(nclients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = sum(counts)
    print("readers  %d clients looping \"%s\": %.0f searches/s, "
          "%.2f ms server CPU each"
          % (nclients, word, total / seconds,
             (cpu_seconds(srv.proc.pid) - c0) * 1000 / max(total, 1)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("archive")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--searchers", type=int, default=2)
    ap.add_argument("--word", default="river")
    ap.add_argument("--no-publish", action="store_true",
                    help="skip the publish (a serai that logs no index "
                    "line on reload)")
    a = ap.parse_args()
    root = Path(a.archive).resolve()
    conftest.STARTUP_TIMEOUT = TIMEOUT
    with tempfile.TemporaryDirectory() as tmp:
        srv = Server(Path(tmp) / "srv", root=root,
                     extra="\n[archive]\nwatch = yes\n")
        try:
            start(srv, "cold")
            srv.stop()
            start(srv, "warm")
            if not a.no_publish:
                publish(srv, root)
            readers(srv, a.seconds, a.searchers, a.word)
        finally:
            srv.stop()
            bench = root / "bench"
            if (bench / "published.txt").exists():
                (bench / "published.txt").unlink()
            if bench.exists():
                bench.rmdir()


if __name__ == "__main__":
    main()
