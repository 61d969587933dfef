#!/usr/bin/env python3
"""Search latency: N generated articles (default 10,000), 1,000 queries
over Gemini; prints p50/p99 latency and the archive load time from the
server log.  Not part of the test suite: run it by hand.

    SERAI_BIN=build/serai /usr/bin/python3 tests/bench/search_bench.py [N]

(/usr/bin/python3: the e2e harness imports pytest, from Debian.)
"""

import random
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))
from conftest import Server  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gen_archive import WORDS, generate  # noqa: E402


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.monotonic()
        generate(tmp / "archive", n, seed=1, broken=False)
        print("generated %d articles in %.1f s" % (n, time.monotonic() - t0))
        srv = Server(tmp / "srv", root=tmp / "archive")
        import conftest
        conftest.STARTUP_TIMEOUT = 600
        srv.start()
        try:
            m = re.search(r"archive .*: (\d+) articles.* loaded in (\d+) ms",
                          srv.log())
            print("load: %s articles in %s ms" % m.groups())
            queries = []
            for _ in range(1000):
                kind = rng.randrange(4)
                if kind == 0:
                    q = rng.choice(WORDS)
                elif kind == 1:
                    q = "%s %s" % (rng.choice(WORDS), rng.choice(WORDS))
                elif kind == 2:
                    q = "%%22%s%%20%s%%22" % (rng.choice(WORDS),
                                              rng.choice(WORDS))
                else:
                    q = rng.choice(WORDS)[:4] + "*"
                queries.append(q.replace(" ", "%20"))
            lat = []
            broad = 0
            for q in queries:
                t = time.monotonic()
                r = srv.gemini("/search?" + q)
                lat.append((time.monotonic() - t) * 1000)
                assert r.status_line.startswith("20 "), r.status_line
                broad += b"too broad" in r.body
            lat.sort()
            print("1000 queries: p50 %.1f ms, p99 %.1f ms, max %.1f ms "
                  "(%d too broad)" % (lat[499], lat[989], lat[-1], broad))
        finally:
            srv.stop()


if __name__ == "__main__":
    main()
