#!/usr/bin/env python3
"""Idle-connection soak: 2,000 silent clients from 200 loopback addresses.

With 2,000 connections open and silent (half on the Gemini port, never
starting TLS; half on the Gopher port, never sending a selector) from
127.0.x.y, real requests from 127.0.0.1 must all be answered, and the
silent ones must be closed by the request deadline.  Latency and memory
are printed, not asserted: they drift on shared machines.
"""
import os
import resource
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

IDLE = int(os.environ.get("IDLE_CONNECTIONS", "2000"))
ADDRS = int(os.environ.get("IDLE_ADDRESSES", "200"))
REAL = int(os.environ.get("REAL_REQUESTS", "200"))
DEADLINE = 5  # [limits] request_timeout for this run


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def wait_port(port, proc, limit=15.0):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if proc.poll() is not None:
            sys.exit(f"serai exited early with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"port {port} never opened")


def gemini(port):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            t.sendall(f"gemini://localhost:{port}/news/\r\n".encode())
            data = b""
            while chunk := t.recv(65536):
                data += chunk
    return data


def gopher(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"/news/\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100))]


def main():
    binary = os.environ["SERAI_BIN"]
    root = os.environ["SERAI_SOURCE_ROOT"]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = IDLE + 512
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    tmp = tempfile.mkdtemp(prefix="serai-idle-")
    gem, gop = free_port(), free_port()
    conf = os.path.join(tmp, "serai.ini")
    with open(conf, "w") as f:
        f.write(f"""[server]
hostname = localhost
state_dir = {tmp}/state
workers = 2
{"user = root" if os.geteuid() == 0 else ""}
[archive]
root = {root}/content
[gemini]
listen = 127.0.0.1:{gem}
[gopher]
listen = 127.0.0.1:{gop}
[limits]
request_timeout = {DEADLINE}
; the real requests come from one address back to back
rate = 0
""")
    log = open(os.path.join(tmp, "serai.log"), "w+")
    proc = subprocess.Popen([binary, "-c", conf], stderr=log)
    try:
        wait_port(gem, proc)
        wait_port(gop, proc)
        gemini(gem)  # warm up: certificate made, pages touched
        time.sleep(0.2)
        base = rss_kib(proc.pid)

        idle = []
        t0 = time.monotonic()
        for i in range(IDLE):
            a = i % ADDRS
            src = f"127.0.{1 + a // 250}.{1 + a % 250}"
            s = socket.socket()
            s.bind((src, 0))
            s.connect(("127.0.0.1", gem if i % 2 == 0 else gop))
            idle.append(s)
        opened = time.monotonic() - t0
        time.sleep(0.5)
        held = rss_kib(proc.pid)

        lat, failures = [], 0
        for i in range(REAL):
            t = time.monotonic()
            try:
                body = gemini(gem) if i % 2 == 0 else gopher(gop)
                ok = (body.startswith(b"20 text/gemini") if i % 2 == 0
                      else body.endswith(b".\r\n") and b"\t/news/" in body)
            except OSError:
                ok = False
            lat.append((time.monotonic() - t) * 1000)
            failures += not ok
        served = time.monotonic() - t0

        # The silent ones: every one closed by the server by the deadline.
        closed_by = []
        for s in idle:
            s.settimeout(max(0.1, DEADLINE + 5 - (time.monotonic() - t0)))
            try:
                if s.recv(1) == b"":
                    closed_by.append(time.monotonic() - t0)
            except (socket.timeout, OSError) as e:
                if isinstance(e, ConnectionResetError):
                    closed_by.append(time.monotonic() - t0)
            s.close()
        still_open = IDLE - len(closed_by)
        after = rss_kib(proc.pid)

        print(f"idle connections: {IDLE} from {ADDRS} addresses, "
              f"opened in {opened:.2f} s")
        print(f"real requests: {REAL}, failed: {failures}, "
              f"p50 {pct(lat, 50):.1f} ms, p99 {pct(lat, 99):.1f} ms, "
              f"max {max(lat):.1f} ms (done {served:.1f} s after the first "
              f"idle connect)")
        print(f"idle closed by the server: {len(closed_by)}/{IDLE}, the "
              f"last {max(closed_by or [0]):.1f} s after the first connect "
              f"(deadline {DEADLINE} s)")
        print(f"server RSS: {base} KiB before, {held} KiB holding them "
              f"({(held - base) / IDLE:.1f} KiB per idle connection), "
              f"{after} KiB after")
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=15)
        ok = failures == 0 and still_open == 0 and rc == 0
        print("1 passed, 0 failed" if ok else "0 passed, 1 failed")
        if not ok:
            log.seek(0)
            sys.stderr.write(log.read()[-3000:])
        return 0 if ok else 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    sys.exit(main())
