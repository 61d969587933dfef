#!/usr/bin/env python3
"""Archive scale: for each N (default 10,000), a generated archive of N
articles (tests/gen_archive.py), one serai on it, and one table row:

  load     the server's own "loaded in N ms" (parsed and serving), its
           "search index: ... in N ms" (built in a thread after that),
           and the wall time from spawn to both ports open and the
           index built
  memory   VmRSS of the server after the queries, against the bytes of
           the archive's files (ratio, and RSS - 2 x bytes)
  search   client-side latency over Gopher (plain TCP: no TLS handshake
           in the figure), p50/p99 of 1,000 queries of unique tokens (one
           hit each) and of 200 common words
  reload   SIGHUP to the "reloaded ... loaded in N ms" line (server's
           figure and wall time)
  warm     a restart on the same state_dir, the index read back from its
           cache: wall time from spawn to ports open and index ready

Not part of the test suite: run it by hand.

    SERAI_BIN=build/serai /usr/bin/python3 tests/bench/archive_bench.py \\
        [N ...]

(/usr/bin/python3: the e2e harness imports pytest, from Debian.)  The
issue's targets, checked in the last lines: start-up under 3 s at
100,000 articles, RSS under 2 x archive bytes + 32 MB, search p99 under
10 ms.
"""

import os
import random
import re
import signal
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "e2e"))
sys.path.insert(0, str(HERE.parent))
import conftest  # noqa: E402
from conftest import Server, gopher_fetch  # noqa: E402
from gen_archive import WORDS, generate  # noqa: E402

TOKEN_QUERIES = 1000
WORD_QUERIES = 200
MB = 1 << 20


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100))]


def timed_gopher(srv, selector):
    t = time.monotonic()
    body = gopher_fetch(selector, port=srv.gopher_port, timeout=60)
    return (time.monotonic() - t) * 1000, body


def bench(n, tmp):
    row = {"n": n}
    rng = random.Random(n)
    t0 = time.monotonic()
    m = generate(tmp / "archive", n, seed=1, broken=False)
    row["gen_s"] = time.monotonic() - t0
    row["bytes"] = m.bytes

    srv = Server(tmp / "srv", root=tmp / "archive")
    conftest.STARTUP_TIMEOUT = 900
    t0 = time.monotonic()
    srv.start()
    try:
        row["start_s"] = time.monotonic() - t0
        got = re.search(r"archive .*: (\d+) articles.* loaded in (\d+) ms",
                        srv.log())
        assert got and int(got.group(1)) == n, srv.log()[-2000:]
        row["load_ms"] = int(got.group(2))
        got = re.search(r"search index: \d+ articles in (\d+) ms", srv.log())
        row["index_ms"] = int(got.group(1)) if got else -1
        row["rss_start"] = rss_bytes(srv.proc.pid)

        lat, miss = [], 0
        for a in rng.sample(m.articles, min(TOKEN_QUERIES, n)):
            ms, body = timed_gopher(srv, "/search\t" + a.token)
            lat.append(ms)
            miss += ("\t%s\t" % a.path).encode() not in body
        row["tok"] = (pct(lat, 50), pct(lat, 99), miss)

        lat, broad = [], 0
        for _ in range(WORD_QUERIES):
            ms, body = timed_gopher(srv, "/search\t" + rng.choice(WORDS))
            lat.append(ms)
            broad += b"too broad" in body
        row["word"] = (pct(lat, 50), pct(lat, 99), broad)
        row["rss"] = rss_bytes(srv.proc.pid)

        before = srv.log().count("reloaded")
        t0 = time.monotonic()
        srv.send_signal(signal.SIGHUP)
        deadline = t0 + 900
        while srv.log().count("reloaded") == before:
            assert time.monotonic() < deadline, "no reload"
            assert srv.running, srv.log()[-2000:]
            time.sleep(0.02)
        row["reload_s"] = time.monotonic() - t0
        got = re.findall(r"reloaded.* loaded in (\d+) ms", srv.log())
        row["reload_ms"] = int(got[-1]) if got else -1
        # The old snapshot goes with its last reply: give it a moment.
        time.sleep(1)
        row["rss_reload"] = rss_bytes(srv.proc.pid)

        # A restart on the same state_dir: the index is read back.
        srv.stop()
        t0 = time.monotonic()
        srv.start()
        row["warm_s"] = time.monotonic() - t0
        assert "(from the cache)" in srv.log(), srv.log()[-2000:]
    finally:
        srv.stop()
    return row


def main():
    sizes = [int(a) for a in sys.argv[1:]] or [10000]
    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(bench(n, Path(tmp)))
            r = rows[-1]
            print("%d articles: generated in %.1f s, %.1f MB" % (
                n, r["gen_s"], r["bytes"] / MB), file=sys.stderr)

    cols = ("articles", "MB", "load ms", "index ms", "start s", "RSS MB", "RSS/B",
            "RSS-2B MB", "tok p50", "tok p99", "word p50", "word p99",
            "broad", "reload ms", "reload s", "RSS MB after", "warm start s")
    print(" | ".join(cols))
    print(" | ".join("-" * len(c) for c in cols))
    for r in rows:
        print(" | ".join([
            "%d" % r["n"],
            "%.1f" % (r["bytes"] / MB),
            "%d" % r["load_ms"],
            "%d" % r["index_ms"],
            "%.2f" % r["start_s"],
            "%.1f" % (r["rss"] / MB),
            "%.2f" % (r["rss"] / r["bytes"]),
            "%+.1f" % ((r["rss"] - 2 * r["bytes"]) / MB),
            "%.2f" % r["tok"][0],
            "%.2f" % r["tok"][1],
            "%.2f" % r["word"][0],
            "%.2f" % r["word"][1],
            "%d/%d" % (r["word"][2], WORD_QUERIES),
            "%d" % r["reload_ms"],
            "%.2f" % r["reload_s"],
            "%.1f" % (r["rss_reload"] / MB),
            "%.2f" % r["warm_s"],
        ]))
    for r in rows:
        if r["tok"][2]:
            print("%d: %d token queries missed their article"
                  % (r["n"], r["tok"][2]))
        print("%d: start-up (index built) %s 3 s, warm start (index read "
              "back) %s 3 s, RSS %s 2 x bytes + 32 MB, search p99 %s 10 ms"
              % (
                  r["n"],
                  "<" if r["start_s"] < 3 else ">=",
                  "<" if r["warm_s"] < 3 else ">=",
                  "<" if r["rss"] < 2 * r["bytes"] + 32 * MB else ">=",
                  "<" if max(r["tok"][1], r["word"][1]) < 10 else ">="))
    return 0


if __name__ == "__main__":
    sys.exit(main())
