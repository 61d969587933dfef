#!/usr/bin/env python3
"""Start-up alone: one cold start and R warm ones on an existing tree.

    SERAI_BIN=build/serai /usr/bin/python3 tests/bench/warm_bench.py \\
        ROOT [--repeat R]

ROOT is only read (a tree from tests/gen_archive.py, or any archive), so
a shared one will do; the state_dir is a temporary directory, emptied
first (cold), then kept (warm: the search index and the article pack
reused).  For each start it prints the wall time from spawn to both
ports answering the home page, and to the log's "search index:" line
(the index in step with the tree), with the server's CPU (utime +
stime, all threads) at each, and the log's counts of articles read and
taken from the article pack.  With --mismatch, R more warm starts, each
after the index's digest was spoiled (as a change while serai was down
would make it differ): the cost of the full compare of the tree with
the index.  Not part of the test suite.
"""

import argparse
import os
import re
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from archive_bench import Failed, Serai, stop_all  # noqa: E402

START_TIMEOUT = 900
LOADED = re.compile(r"(\d+) articles .* (\d+) read, (\d+) from the "
                    r"article pack, loaded in (\d+) ms")


def one_start(srv, kind):
    t0 = srv.spawn()
    t1 = srv.wait(kind + ": serving", srv.serving, START_TIMEOUT)
    c1 = srv.cpu()
    t2 = srv.wait(kind + ": search index",
                  lambda: "search index:" in srv.log_path.read_text(),
                  START_TIMEOUT)
    c2 = srv.cpu()
    m = LOADED.search(srv.log_path.read_text())
    mem = srv.mem()
    srv.stop()
    print("%s: serving %.2f s (%.2f CPU-s), search ready %.2f s after "
          "(%.2f CPU-s in all); %s articles, %s read, %s from the pack, "
          "loaded in %s ms; RssAnon %.0f MB, RssFile %.0f MB"
          % (kind, t1 - t0, c1, t2 - t1, c2, *(m.groups() if m else
                                                ("?",) * 4),
             mem.get("RssAnon", 0) / 2**20, mem.get("RssFile", 0) / 2**20),
          flush=True)
    return t1 - t0, t2 - t1, c1


def spoil_digest(db):
    """A digest no tree has: the next start compares every row."""
    con = sqlite3.connect(db)
    con.execute("UPDATE meta SET value = value + 1 WHERE key = 'digest'")
    con.commit()
    con.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--mismatch", action="store_true",
                    help="also time starts whose digest does not match")
    ap.add_argument("--serai", default=os.environ.get("SERAI_BIN",
                                                      "build/serai"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="serai-warm-") as tmp:
        tmp = Path(tmp)
        srv = Serai(Path(args.serai).resolve(), tmp / "run",
                    args.root.resolve(), tmp / "state")
        try:
            one_start(srv, "cold")
            warm = [one_start(srv, "warm %d" % (i + 1))
                    for i in range(args.repeat)]
            for i in range(args.repeat if args.mismatch else 0):
                spoil_digest(tmp / "state" / "search.db")
                one_start(srv, "warm, digest spoiled %d" % (i + 1))
        except Failed as e:
            print("FAILED: %s" % e, file=sys.stderr)
            return 1
        finally:
            stop_all()
        pack = tmp / "state" / "articles.pack"
        if warm:
            s = sorted(w[0] for w in warm)
            print("warm serving: median %.2f s (%.2f-%.2f), search ready "
                  "median %.2f s after; pack %.0f MB; %s"
                  % (s[len(s) // 2], s[0], s[-1],
                     sorted(w[1] for w in warm)[len(warm) // 2],
                     pack.stat().st_size / 2**20 if pack.exists() else 0,
                     time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
