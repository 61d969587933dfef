#!/usr/bin/env python3
"""serai against the stock servers Debian packages, on one page each, on
loopback:

  Gemini  serai, and molly-brown serving serai's static export
          (serai --export) with serai's own certificate (ECDSA P-256):
          the article /news/beijing-declaration(.gmi), full handshakes
          and resumed ones (TLS 1.3 session tickets)
  Gopher  serai, Gophernicus (one process per connection, forked by
          systemd-socket-activate as inetd would) and, when installed,
          pygopherd (its forking server), on the same article as text.
          Where lsb_release is installed, Gophernicus runs it twice per
          connection; a second row (root only) hides it.

Every request is a new connection, read to EOF, from tests/bench/
loadgen.c (built with the tests) at each concurrency for --seconds.  The
figure compared is requests per second of *server* CPU (utime + stime of
every thread, plus the reaped children of forking servers, from /proc):
the load generator shares the cores, so wall-clock req/s would measure
the machine.  Latency is the client's, connect to EOF, and on a busy
machine it says more about the scheduler than about the server.  Serai,
molly-brown and Gophernicus log every request to a file, as they would
in production (pygopherd logs nothing).  All servers run at once and
the runs are interleaved, each configuration on every server in turn.

--vhosts measures instead what [host] sections cost: serai with one
archive against serai with ten [host] sections on one Gemini port (the
same archive under ten names), full handshakes to the last of the ten
(its SNI moves the connection to the tenth context), interleaved, and
prints the ratio of req per server CPU-second, ten hosts over one.

Not part of the test suite: run it by hand,

    /usr/bin/python3 tests/bench/peers.py --serai build/serai [--seconds N]
        [--repeat N] [--concurrency C] [--proto gemini]
        [--also NAME=other-build/serai]

(--also measures another serai build as one more peer, interleaved like
the others: its serai/peer column compares the two builds.)

or as CI's smoke run (--quick: 1 s at one concurrency; it fails only
when serai is broken -- nothing answered, or any error -- never because
a figure is low).  (/usr/bin/python3: the e2e harness imports pytest,
from Debian.)  It installs nothing: a peer that is missing is a "not
installed" row.  Run as root, Gophernicus and pygopherd are started as
nobody (Gophernicus refuses root).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "e2e"))
from conftest import (CONTENT, free_ports, gemini_fetch,  # noqa: E402
                      gopher_fetch, port_open, stop_process)

ARTICLE = "/news/beijing-declaration"
STARTUP_TIMEOUT = 15
STOP_TIMEOUT = 10


class Broken(Exception):
    """Something that makes a row meaningless: a peer that would not
    start, a page that is not the one expected."""


def wait_listening(proc, ports, name, log):
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise Broken("%s exited (%s) on start:\n%s"
                         % (name, proc.returncode, tail(log)))
        if all(port_open(p) for p in ports):
            return
        if time.monotonic() > deadline:
            stop(proc)
            raise Broken("%s did not listen within %d s:\n%s"
                         % (name, STARTUP_TIMEOUT, tail(log)))
        time.sleep(0.05)


def tail(path, n=20):
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def stop(proc):
    return stop_process(proc, timeout=STOP_TIMEOUT)


# Every server started and not yet stopped: a failed check or an
# interrupted run must not leave one behind.
RUNNING = []


def spawn(argv, log, cwd):
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=out)
    RUNNING.append(proc)
    return proc


def stop_all():
    while RUNNING:
        stop(RUNNING.pop())


def as_nobody():
    """The argv prefix that drops root, as inetd's user field would."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise Broken("setpriv (util-linux) is needed to drop root")
    return [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


# --------------------------------------------------------------------------
# The servers.  Each start() returns (proc, pids to measure, {protocol:
# url}), None when it is not installed or "skip" when its row would say
# nothing here, and raises Broken when it fails.  Each peer's page is
# checked against serai's before it is measured.


def serai_config(work, gemini_port, gopher_port):
    conf = work / "serai.ini"
    run_as = "user = root\n" if os.geteuid() == 0 else ""
    # workers = 0: one per CPU, the default; max_per_client: every
    # connection comes from 127.0.0.1 here, and the default 32 would turn
    # most of c=64 away; nor may the request rate limit any of it.
    conf.write_text(
        "[server]\nhostname = localhost\nstate_dir = %s\nworkers = 0\n%s"
        "access_log = %s\n"
        "[archive]\nroot = %s\n"
        "[gemini]\nlisten = 127.0.0.1:%d\n"
        "[gopher]\nlisten = 127.0.0.1:%d\n"
        "[limits]\nmax_per_client = 100000\nrate = 0\n"
        % (work / "state", run_as, work / "serai-access.log", CONTENT,
           gemini_port, gopher_port), encoding="utf-8")
    return conf


def start_serai(ctx, binary=None, name="serai"):
    """serai, or (binary, name) another build of it to compare with."""
    work = ctx.work / name.replace(" ", "-")
    work.mkdir(exist_ok=True)
    gem, goph = free_ports(2)
    conf = serai_config(work, gem, goph)
    log = work / "serai.log"
    proc = spawn([str(binary or ctx.serai), "-c", str(conf)], log, work)
    if binary is not None:
        wait_listening(proc, [gem, goph], name, log)
        urls = {
            "gemini": "gemini://localhost:%d%s" % (gem, ARTICLE),
            "gopher": "gopher://localhost:%d/0%s" % (goph, ARTICLE),
        }
        same_page(ctx, "gemini", gemini_fetch(urls["gemini"],
                                              port=gem).body, name)
        same_page(ctx, "gopher", gopher_fetch(ARTICLE, port=goph), name)
        return proc, [proc.pid], urls
    ctx.serai_log = log
    wait_listening(proc, [gem, goph], "serai", log)
    ctx.cert = work / "state" / "localhost.crt"
    ctx.key = work / "state" / "localhost.key"
    urls = {
        "gemini": "gemini://localhost:%d%s" % (gem, ARTICLE),
        "gopher": "gopher://localhost:%d/0%s" % (goph, ARTICLE),
    }
    # The reference pages the peers must serve too.
    ctx.page["gemini"] = gemini_fetch(urls["gemini"], port=gem).body
    ctx.page["gopher"] = gopher_fetch(ARTICLE, port=goph)
    return proc, [proc.pid], urls


TEN = ["h%d.test" % i for i in range(10)]


def start_serai_ten(ctx):
    """serai with ten [host] sections on one Gemini port, Gemini only."""
    work = ctx.work / "serai-ten"
    work.mkdir(exist_ok=True)
    (gem,) = free_ports(1)
    run_as = "user = root\n" if os.geteuid() == 0 else ""
    conf = work / "serai.ini"
    conf.write_text(
        "[server]\nstate_dir = %s\nworkers = 0\n%saccess_log = %s\n"
        "[gemini]\nlisten = 127.0.0.1:%d\n"
        "[limits]\nmax_per_client = 100000\nrate = 0\n"
        % (work / "state", run_as, work / "serai-access.log", gem)
        + "".join("[host %s]\nroot = %s\n" % (h, CONTENT) for h in TEN),
        encoding="utf-8")
    log = work / "serai.log"
    proc = spawn([str(ctx.serai), "-c", str(conf)], log, work)
    wait_listening(proc, [gem], "serai (ten hosts)", log)
    url = "gemini://%s:%d%s" % (TEN[-1], gem, ARTICLE)
    body = gemini_fetch(url, port=gem, sni=TEN[-1]).body
    same_page(ctx, "gemini", body, "serai (ten hosts)")
    return proc, [proc.pid], url


def run_vhosts(ctx):
    """One host against ten, full handshakes, interleaved: the ratio of
    each ten-host run to the one-host run just before it."""
    one, one_pids, urls = start_serai(ctx)
    ten, ten_pids, ten_url = start_serai_ten(ctx)
    out = []
    try:
        for c in ctx.concurrencies:
            rates = {"one": [], "ten": []}
            ratios = []
            for rep in range(ctx.repeat):
                for name, url, pids in (("one", urls["gemini"], one_pids),
                                        ("ten", ten_url, ten_pids)):
                    print("serai %s host(s) c=%d run %d/%d ..."
                          % (name, c, rep + 1, ctx.repeat),
                          file=sys.stderr, flush=True)
                    argv = [str(ctx.loadgen), "-c", str(c), "-d",
                            str(ctx.seconds), "--timeout", "30",
                            "--addr", "127.0.0.1", "--expect", "20 ",
                            "--pids", ",".join(map(str, pids)), url]
                    r = subprocess.run(argv, capture_output=True, text=True,
                                       timeout=ctx.seconds + 90)
                    res = json.loads(r.stdout.strip().splitlines()[-1])
                    if res["errors"] or not res["ok"]:
                        raise Broken("%s host(s): %d errors, %d ok"
                                     % (name, res["errors"], res["ok"]))
                    rates[name].append(res["req_per_server_cpu_s"])
                ratios.append(rates["ten"][-1] / rates["one"][-1])
            out.append("c=%d, %d interleaved pairs: req/CPU-s one host %s, "
                       "ten hosts %s; ten/one %s"
                       % (c, ctx.repeat, spread(rates["one"], "%.0f"),
                          spread(rates["ten"], "%.0f"),
                          spread(ratios, "%.3f")))
    finally:
        for p in (one, ten):
            if stop(p) != 0:
                out.append("FAIL: serai did not exit cleanly")
    return out


def export(ctx):
    """serai's static export, in a directory every user can read (the
    forking peers run as nobody)."""
    out = ctx.work / "export"
    conf = serai_config(ctx.work, 1965, 7070)
    r = subprocess.run([str(ctx.serai), "-c", str(conf), "--export",
                        str(out)], capture_output=True, text=True,
                       timeout=60, cwd=ctx.work)
    if r.returncode != 0:
        raise Broken("serai --export failed:\n" + r.stderr)
    return out


def start_molly(ctx):
    exe = shutil.which("molly-brown")
    if exe is None:
        return None
    if ctx.cert is None:
        raise Broken("no certificate: serai did not make one")
    work = ctx.work / "molly"
    work.mkdir(exist_ok=True)
    (port,) = free_ports(1)
    conf = work / "molly.conf"
    conf.write_text(
        'Port = %d\nHostname = "localhost"\nCertPath = "%s"\n'
        'KeyPath = "%s"\nDocBase = "%s"\nAccessLog = "%s"\n'
        'ErrorLog = "%s"\n'
        % (port, ctx.cert, ctx.key, ctx.export / "gemini",
           work / "access.log", work / "error.log"), encoding="utf-8")
    log = work / "molly.log"
    proc = spawn([exe, "-c", str(conf)], log, work)
    wait_listening(proc, [port], "molly-brown", log)
    url = "gemini://localhost:%d%s.gmi" % (port, ARTICLE)
    same_page(ctx, "gemini", gemini_fetch(url, port=port).body,
              "molly-brown")
    return proc, [proc.pid], {"gemini": url}


LSB_RELEASE = "/usr/bin/lsb_release"


def start_gophernicus(ctx, hide_lsb=False):
    exe = shutil.which("gophernicus") or "/usr/sbin/gophernicus"
    activate = shutil.which("systemd-socket-activate")
    if not os.access(exe, os.X_OK) or activate is None:
        return None
    hide = []
    if hide_lsb:
        # Gophernicus runs lsb_release (a shell script) twice per
        # connection when it is installed, to name the platform in
        # caps.txt: most of its CPU then.  Hidden in a private mount
        # namespace (the system is untouched), the row shows Gophernicus
        # itself, as on a Debian without lsb-release.
        unshare = shutil.which("unshare")
        if unshare is None or os.geteuid() != 0:
            raise Broken("hiding lsb_release needs root and unshare")
        hide = [unshare, "--mount", "--propagation", "private", "sh", "-c",
                'mount --bind /dev/null %s && exec "$@"' % LSB_RELEASE,
                "sh"]
    work = ctx.work / "gophernicus"
    work.mkdir(exist_ok=True)
    (port,) = free_ports(1)
    access = ctx.public / ("gophernicus%s-access.log"
                           % ("-nolsb" if hide_lsb else ""))
    access.touch()
    access.chmod(0o666)
    log = work / "gophernicus.log"
    # No footer, virtual hosts, home directories, executable maps,
    # shared memory (its per-client throttling) or syslog: the plain tree,
    # with its requests logged to a file.
    proc = spawn([*hide, activate, "-l", "127.0.0.1:%d" % port,
                  "--inetd", "-a", *as_nobody(), exe, "-h", "localhost",
                  "-p", str(port), "-r", str(ctx.export / "gopher"),
                  "-nf", "-nv", "-nu", "-nx", "-nm", "-ns",
                  "-l", str(access)], log, work)
    wait_listening(proc, [port], "gophernicus", log)
    sel = ARTICLE + ".txt"
    same_page(ctx, "gopher", gopher_fetch(sel, port=port), "Gophernicus")
    # The supervisor's own CPU and its reaped children's: one process
    # per connection, each gone by the time the run ends.
    return proc, [proc.pid], {
        "gopher": "gopher://localhost:%d/0%s" % (port, sel)}


def start_gophernicus_without_lsb(ctx):
    """Only where it makes a difference: lsb_release installed."""
    if not os.access(LSB_RELEASE, os.X_OK):
        return "skip"
    return start_gophernicus(ctx, hide_lsb=True)


def start_pygopherd(ctx):
    exe = shutil.which("pygopherd") or "/usr/sbin/pygopherd"
    base = Path("/etc/pygopherd/pygopherd.conf")
    if not os.access(exe, os.X_OK) or not base.is_file():
        return None
    # Run as nobody, pygopherd writes its pid file here.
    work = ctx.public / "pygopherd"
    work.mkdir(exist_ok=True)
    work.chmod(0o1777)
    (port,) = free_ports(1)
    conf = work / "pygopherd.conf"
    text = base.read_text(encoding="utf-8")
    for key, value in (("port", str(port)), ("root", ctx.export / "gopher"),
                       ("usechroot", "no"), ("detach", "no"),
                       ("servertype", "ForkingTCPServer"),
                       ("pidfile", work / "pygopherd.pid"),
                       ("logmethod", "none")):
        text = set_ini_key(text, key, str(value))
    conf.write_text(text, encoding="utf-8")
    log = work / "pygopherd.log"
    proc = spawn([*as_nobody(), exe, str(conf)], log, work)
    wait_listening(proc, [port], "pygopherd", log)
    sel = ARTICLE + ".txt"
    same_page(ctx, "gopher", gopher_fetch(sel, port=port), "pygopherd")
    return proc, [proc.pid], {
        "gopher": "gopher://localhost:%d/0%s" % (port, sel)}


def set_ini_key(text, key, value):
    """Replaces the first uncommented "key = ..." line."""
    lines = text.split("\n")
    for i, ln in enumerate(lines):
        if ln.split("=")[0].strip() == key and not ln.startswith("#"):
            lines[i] = "%s = %s" % (key, value)
            return "\n".join(lines)
    raise Broken("pygopherd.conf has no %s key" % key)


def same_page(ctx, proto, body, name):
    """A peer's page must be serai's, or the comparison would not be of
    the same work.  The exported capsule's links are relative ("../"
    for "/"), so the Gemini page may differ by a few bytes."""
    want = ctx.page.get(proto)
    if want is None:
        raise Broken("no reference page: serai did not serve it")
    if (abs(len(body) - len(want)) > len(want) // 50
            or body.count(b"\n") != want.count(b"\n")):
        raise Broken("%s serves %d bytes, not serai's %d-byte page"
                     % (name, len(body), len(want)))


# --------------------------------------------------------------------------


def loadgen(ctx, url, proto, c, resume, pids):
    # --timeout 30: a forking peer at c=64 queues connections for
    # seconds; slow is a figure here, not an error.
    argv = [str(ctx.loadgen), "-c", str(c), "-d", str(ctx.seconds),
            "--timeout", "30",
            "--pids", ",".join(map(str, pids)), url]
    if proto == "gopher":
        # A Gopher error is an answer too (serai's connection cap sends
        # one): only the article's first line counts as success.
        first = ctx.page["gopher"].split(b"\r\n")[0][:40]
        argv[1:1] = ["--expect", os.fsdecode(first)]
    if resume:
        argv.insert(1, "--resume")
    r = subprocess.run(argv, capture_output=True, text=True,
                       timeout=ctx.seconds + 90)
    if ctx.verbose:
        sys.stderr.write(r.stderr)
    lines = r.stdout.strip().splitlines()
    if r.returncode not in (0, 1) or not lines:
        raise Broken("loadgen exited %d:\n%s" % (r.returncode, r.stderr))
    return json.loads(lines[-1])


SERVERS = [
    # name, protocol, start
    ("serai", ("gemini", "gopher"), start_serai),
    ("molly-brown", ("gemini",), start_molly),
    ("gophernicus", ("gopher",), start_gophernicus),
    ("gophernicus, no lsb_release", ("gopher",),
     lambda ctx: start_gophernicus_without_lsb(ctx)),
    ("pygopherd", ("gopher",), start_pygopherd),
]


MODES = {"gemini": ("full", "resumed"), "gopher": ("plain",)}


def run_all(ctx):
    """Every server is started first and the runs are interleaved (each
    configuration on serai, then on each peer): on a shared machine,
    drift in the background load then hits all servers alike."""
    rows, live = [], []
    servers = list(SERVERS)
    for name, path in ctx.also:
        servers.insert(1, (name, ("gemini", "gopher"),
                           lambda ctx, p=path, n=name:
                           start_serai(ctx, p, n)))
    for name, protos, start in servers:
        protos = tuple(p for p in protos if p in ctx.protos)
        if not protos:
            continue
        first = len(RUNNING)
        try:
            started = start(ctx)
        except Broken as e:
            while len(RUNNING) > first:
                stop(RUNNING.pop())
            print("%s: %s" % (name, e), file=sys.stderr)
            started = "did not start"
        if started == "skip":
            continue
        if started is None:
            started = "not installed"
        if isinstance(started, str):
            rows += [dict(server=name, proto=p, mode=m, note=started)
                     for p in protos for m in MODES[p]]
            continue
        live.append((name, *started))
    for p in ctx.protos:
        for m in MODES[p]:
            for c in ctx.concurrencies:
                # serai, peer, serai, peer, ...: each ratio is taken
                # between runs a few seconds apart.
                for rep in range(ctx.repeat):
                    for name, proc, pids, urls in live:
                        if p not in urls:
                            continue
                        print("%s %s %s c=%d run %d/%d ..."
                              % (name, p, m, c, rep + 1, ctx.repeat),
                              file=sys.stderr, flush=True)
                        res = loadgen(ctx, urls[p], p, c,
                                      m == "resumed", pids)
                        rows.append(dict(server=name, proto=p, mode=m,
                                         c=c, rep=rep, res=res))
    for name, proc, pids, urls in live:
        rc = stop(proc)
        if name == "serai" and rc != 0:
            rows.append(dict(server=name, proto="-", mode="-",
                             note="exited %s" % rc))
    stop_all()
    order = [s[0] for s in servers]
    rows.sort(key=lambda r: (order.index(r["server"]), r["proto"],
                             r["mode"], r.get("c", 0), r.get("rep", 0)))
    return rows


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def spread(xs, fmt):
    """median and range, the way the README quotes a figure."""
    if len(xs) == 1:
        return fmt % xs[0]
    return (fmt + " (" + fmt + "-" + fmt + ")") % (median(xs), min(xs),
                                                    max(xs))


def fmt_rows(rows):
    """One line per server and configuration: the median of the repeated
    runs and their range.  serai/peer is the ratio of each run to the
    serai run just before it, then the median and range of those."""
    runs = {}
    for r in rows:
        if "res" in r:
            runs.setdefault((r["server"], r["proto"], r["mode"], r["c"]),
                            {})[r["rep"]] = r["res"]
    cols = ("server", "protocol", "mode", "c", "runs", "req/CPU-s",
            "p50 ms", "p99 ms", "errors", "resumed", "bytes", "serai/peer")
    out = [cols, tuple("-" * len(c) for c in cols)]
    done = set()
    for r in rows:
        if "res" not in r:
            out.append((r["server"], r["proto"], r["mode"], "-", "",
                        r["note"], "", "", "", "", "", ""))
            continue
        key = (r["server"], r["proto"], r["mode"], r["c"])
        if key in done:
            continue
        done.add(key)
        mine = runs[key]
        res = list(mine.values())
        rates = [x.get("req_per_server_cpu_s") or 0 for x in res]
        ratios = []
        serai = runs.get(("serai",) + key[1:], {})
        if r["server"] != "serai":
            for rep, x in mine.items():
                a = serai.get(rep, {}).get("req_per_server_cpu_s")
                b = x.get("req_per_server_cpu_s")
                if a and b:
                    ratios.append(a / b)
        ok = sum(x["ok"] for x in res)
        out.append((
            r["server"], r["proto"], r["mode"], str(r["c"]), str(len(res)),
            spread(rates, "%.0f") if all(rates) else "n/a",
            spread([x["p50_ms"] for x in res], "%.2f"),
            spread([x["p99_ms"] for x in res], "%.2f"),
            "%d" % sum(x["errors"] for x in res),
            spread([100 * x["resumed"] for x in res], "%.0f%%")
            if r["mode"] == "resumed" else "",
            "%.0f" % (sum(x["bytes"] for x in res) / ok) if ok else "",
            spread(ratios, "%.2f" if max(ratios) < 10 else "%.0f")
            if ratios else ""))
    widths = [max(len(row[i]) for row in out) for i in range(len(cols))]
    return "\n".join(" | ".join(cell.ljust(w) for cell, w in
                                zip(row, widths)).rstrip() for row in out)


def serai_problems(rows, log):
    """What makes the smoke run fail: serai broken, not slow."""
    bad = []
    mine = [r for r in rows if r["server"] == "serai"]
    for r in mine:
        if "res" not in r:
            bad.append("serai %s %s: %s" % (r["proto"], r["mode"],
                                            r["note"]))
            continue
        res = r["res"]
        where = "serai %s %s c=%d" % (r["proto"], r["mode"], r["c"])
        if res["ok"] == 0:
            bad.append(where + ": no request answered")
        if res["errors"]:
            bad.append(where + ": %d errors (%s)" % (res["errors"], ", ".join(
                "%s %d" % (k[4:], v) for k, v in res.items()
                if k.startswith("err_") and v)))
        if r["mode"] == "resumed" and res["resumed"] < 0.5:
            bad.append(where + ": only %.0f%% of the handshakes resumed"
                       % (100 * res["resumed"]))
    # Anything serai said besides its start-up and stop lines.
    quiet = ("archive ", "generated a self-signed", "listening on",
             "serving as", "ready:", "stopping", "stopped", "exiting",
             "max_connections")
    if log is not None and log.exists():
        said = [ln for ln in log.read_text(errors="replace").splitlines()
                if not any(q in ln for q in quiet)]
        if said:
            print("serai's log besides start and stop:\n  "
                  + "\n  ".join(said[:20]), file=sys.stderr)
    return bad


class Context:
    pass


def main():
    ap = argparse.ArgumentParser(
        description="serai against molly-brown, Gophernicus and pygopherd")
    ap.add_argument("--serai", default=os.environ.get("SERAI_BIN"),
                    help="the serai binary (default: $SERAI_BIN, else "
                    "build/serai)")
    ap.add_argument("--loadgen", help="default: tests/bench/loadgen in "
                    "serai's build directory")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, action="append",
                    help="repeatable (default: 16 and 64)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of each configuration per server, "
                    "interleaved with the peers' (default 3)")
    ap.add_argument("--also", action="append", default=[],
                    metavar="NAME=PATH",
                    help="another serai binary, measured as a peer "
                    "(serai/peer is then build against build); repeatable")
    ap.add_argument("--proto", action="append",
                    choices=("gemini", "gopher"),
                    help="only these protocols (default: both)")
    ap.add_argument("--quick", action="store_true",
                    help="CI smoke run: 1 s at c=16, once")
    ap.add_argument("--vhosts", action="store_true",
                    help="serai with ten [host] sections against one "
                    "archive, Gemini full handshakes, and nothing else")
    ap.add_argument("--json", action="store_true",
                    help="also print every run's loadgen line")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="loadgen's human-readable report of every run")
    args = ap.parse_args()

    ctx = Context()
    root = HERE.parent.parent
    ctx.serai = Path(args.serai or root / "build" / "serai").resolve()
    ctx.loadgen = Path(args.loadgen or ctx.serai.parent / "tests" / "bench"
                       / "loadgen").resolve()
    for p in (ctx.serai, ctx.loadgen):
        if not os.access(p, os.X_OK):
            ap.error("%s is not an executable: build first" % p)
    ctx.seconds = 1.0 if args.quick else args.seconds
    ctx.repeat = 1 if args.quick else args.repeat
    ctx.concurrencies = args.concurrency or ([16] if args.quick
                                             else [16, 64])
    if not 1 <= ctx.repeat <= 50:
        ap.error("--repeat must be in 1..50")
    if not 0 < ctx.seconds <= 600 or any(
            not 1 <= c <= 10000 for c in ctx.concurrencies):
        ap.error("--seconds must be in (0, 600], -c in 1..10000")
    ctx.verbose = args.verbose
    ctx.protos = tuple(p for p in ("gemini", "gopher")
                       if p in (args.proto or ("gemini", "gopher")))
    ctx.also = []
    for a in args.also:
        name, sep, path = a.partition("=")
        if not sep or not name or name in [s[0] for s in SERVERS]:
            ap.error("--also wants NAME=PATH, NAME not a server's name")
        path = Path(path).resolve()
        if not os.access(path, os.X_OK):
            ap.error("%s is not an executable" % path)
        ctx.also.append((name, path))
    ctx.page = {}
    ctx.serai_log = None
    ctx.cert = ctx.key = None

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="serai-peers-") as tmp:
        ctx.work = Path(tmp)
        # The forking peers run as nobody: their tree and log must be
        # reachable by every user.
        ctx.work.chmod(0o755)
        ctx.public = ctx.work / "public"
        ctx.public.mkdir()
        ctx.public.chmod(0o755)
        if args.vhosts:
            try:
                lines = run_vhosts(ctx)
            except Broken as e:
                print(e, file=sys.stderr)
                return 1
            finally:
                stop_all()
            print("%s, %g s per run, %d CPU(s), load average %.2f before, "
                  "%.2f after" % (time.strftime("%Y-%m-%d %H:%M UTC",
                                                time.gmtime()),
                                  ctx.seconds, os.cpu_count(), load_before,
                                  os.getloadavg()[0]))
            print("\n".join(lines))
            return 1 if any(ln.startswith("FAIL") for ln in lines) else 0
        try:
            ctx.export = export(ctx)
        except Broken as e:
            print(e, file=sys.stderr)
            return 1
        try:
            rows = run_all(ctx)
        finally:
            stop_all()
        problems = serai_problems(rows, ctx.serai_log)

    # The load average tells whether something else shared the machine.
    print("%s, %g s per run, %d run(s) each, %d CPU(s), load average "
          "%.2f before, %.2f after"
          % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
             ctx.seconds, ctx.repeat, os.cpu_count(), load_before,
                     os.getloadavg()[0]))
    print(fmt_rows(rows))
    if args.json:
        for r in rows:
            if "res" in r:
                print(json.dumps(dict(server=r["server"], mode=r["mode"],
                                      run=r["rep"], **r["res"])))
    for p in problems:
        print("FAIL: " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
