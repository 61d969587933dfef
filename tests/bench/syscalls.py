#!/usr/bin/env python3
"""System calls per Gemini request, by call, as strace -c counts them.

    python3 tests/bench/syscalls.py --serai build/serai [-n 3000] [-c 8]
                                    [--resume] [--gopher]

Starts serai as tests/bench/peers.py does (workers = one per CPU, no
rate limit, no per-client cap), attaches `strace -c -f` to every thread
of the running server (so start-up is not counted), runs loadgen for N
requests at C connections (a new connection and, without --resume, a
full TLS handshake per request), detaches and prints each call's count
divided by the requests served.  strace slows the server several times
over: the counts are the figure, not the time.  Needs strace and the
right to trace serai (root, or ptrace_scope 0).
"""

import argparse
import json
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import peers  # noqa: E402

# strace's summary rows: % time, seconds, usecs/call, calls, [errors,] name
ROW = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:(\d+)\s+)?(\w+)$")
ATTACH_WAIT = 10  # s for strace to attach to every thread


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--serai", required=True)
    ap.add_argument("--loadgen")
    ap.add_argument("-n", type=int, default=3000, help="requests")
    ap.add_argument("-c", type=int, default=8, help="connections")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--gopher", action="store_true")
    args = ap.parse_args()

    serai = Path(args.serai).resolve()
    lg = Path(args.loadgen or serai.parent / "tests" / "bench"
              / "loadgen").resolve()
    with tempfile.TemporaryDirectory(prefix="serai-strace-") as tmp:
        ctx = peers.Context()
        ctx.work = Path(tmp)
        ctx.serai = serai
        ctx.page = {}
        try:
            proc, pids, urls = peers.start_serai(ctx)
            out = ctx.work / "strace.txt"
            st = subprocess.Popen(
                ["strace", "-c", "-f", "-o", str(out), "-p", str(pids[0])],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE)
            # strace says nothing when attached with -o; give it a moment
            # and check it is still there.
            time.sleep(1)
            if st.poll() is not None:
                sys.exit("strace failed: %s" % st.stderr.read().decode())
            proto = "gopher" if args.gopher else "gemini"
            argv = [str(lg), "-c", str(args.c), "-n", str(args.n),
                    "-d", "600", "--timeout", "30", urls[proto]]
            if proto == "gemini":
                argv[1:1] = ["--expect", "20 "]
            if args.resume:
                argv.insert(1, "--resume")
            r = subprocess.run(argv, capture_output=True, text=True,
                               timeout=900)
            st.send_signal(signal.SIGINT)
            st.wait(timeout=ATTACH_WAIT)
            res = json.loads(r.stdout.strip().splitlines()[-1])
        finally:
            peers.stop_all()
        ok = res["ok"]
        if not ok:
            sys.exit("no request answered: %s" % json.dumps(res))
        calls = {}
        errors = {}
        for line in out.read_text().splitlines():
            m = ROW.match(line)
            if m and m.group(3) != "total":
                calls[m.group(3)] = int(m.group(1))
                errors[m.group(3)] = int(m.group(2) or 0)
        total = sum(calls.values())
        print("%s %s, %d requests answered (loadgen: %s)"
              % (proto, "resumed" if args.resume else "full", ok,
                 json.dumps(res)))
        print("%-16s %10s %10s %10s" % ("call", "calls", "per req",
                                          "failed/req"))
        for name, n in sorted(calls.items(), key=lambda kv: -kv[1]):
            print("%-16s %10d %10.2f %10.2f"
                  % (name, n, n / ok, errors[name] / ok))
        print("%-16s %10d %10.2f" % ("total", total, total / ok))


if __name__ == "__main__":
    main()
