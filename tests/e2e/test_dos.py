"""Denial of service: one client must not be able to starve the others.

Each test performs the attack (idle connections past the per-address cap,
on the Gemini port and through the PROXY protocol; requests past the
rate) and asserts that the attacker is held to its share while another
client is served.
"""

import select
import sys
import multiprocessing
import os
import time
from pathlib import Path

import pytest

from conftest import (GEMINI_OK, IO_TIMEOUT, SLOW, VALGRIND, client_context,
                      connect_from, gopher_fetch, poll_until,
                      read_until_closed)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gen_archive import generate  # noqa: E402

FLOOD = 70  # idle connections from one address: more than the pool
CAPS = ("\n[limits]\nmax_connections = 60\nmax_per_client = 8\n"
        "request_timeout = 120\n")
PER_CLIENT = 8
HOLD_PER_CLIENT = 4  # serai.h: Gemini connections held to be told 44


def proxy_header(client, port):
    """A PROXY v1 header naming client (IPv4 or IPv6) as the source."""
    if ":" in client:
        return ("PROXY TCP6 %s ::1 40000 %d\r\n" % (client, port)).encode()
    return ("PROXY TCP4 %s 127.0.0.1 40000 %d\r\n" % (client, port)).encode()


def gemini_on(sock, port, path="/"):
    """A Gemini request over an open socket: (status line, body); ("",
    b"") when the server closed it during the handshake."""
    try:
        tls = client_context().wrap_socket(sock, server_hostname="localhost",
                                           suppress_ragged_eofs=False)
    except OSError:
        sock.close()
        return "", b""
    with tls:
        tls.sendall(b"gemini://localhost:%d%s\r\n" % (port, path.encode()))
        data = b""
        deadline = time.monotonic() + IO_TIMEOUT
        while time.monotonic() < deadline:
            try:
                chunk = tls.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n")
    return head.decode("utf-8", "replace"), body


def gopher_on(sock, selector="/"):
    sock.sendall(selector.encode() + b"\r\n")
    return read_until_closed(sock)


def open_count(socks):
    """How many of socks the server still holds open: one it closed is
    readable (EOF or reset), and these clients never sent a byte that
    could be answered."""
    readable = set()
    for i in range(0, len(socks), 256):
        chunk = socks[i:i + 256]
        readable |= set(select.select(chunk, [], [], 0)[0])
    return len(socks) - len(readable)


def flood(src, port, header=None):
    socks = []
    for _ in range(FLOOD):
        s = connect_from(src, port)
        if header is not None:
            s.sendall(header)
        socks.append(s)
    return socks


def settle(socks, most, what):
    """Waits until the server closed all but at most `most` of socks;
    returns how many it holds."""
    poll_until(lambda: open_count(socks) <= most, IO_TIMEOUT * 2, what)
    return open_count(socks)


def test_idle_flood_on_the_gemini_port_leaves_the_pool_to_others(
        serai_factory):
    srv = serai_factory(extra=CAPS)
    srv.start()
    socks = flood("127.0.0.2", srv.gemini_port)
    try:
        held = settle(socks, PER_CLIENT + HOLD_PER_CLIENT,
                      "the connections past the caps to be closed")
        # The pool holds its share, and no more: the rest wait to be
        # told 44 outside it, for a short while only.
        assert PER_CLIENT <= held <= PER_CLIENT + HOLD_PER_CLIENT, held
        for _ in range(3):
            status, _ = gemini_on(connect_from("127.0.0.3", srv.gemini_port),
                                  srv.gemini_port)
            assert status == GEMINI_OK
        # The flooding address itself, over its share, is told to wait.
        status, body = gemini_on(connect_from("127.0.0.2", srv.gemini_port),
                                 srv.gemini_port)
        assert status in ("44 120", ""), status
        assert body == b""
    finally:
        for s in socks:
            s.close()
    assert "connection cap reached (max_per_client" in srv.log()


def test_idle_flood_through_proxy_protocol_leaves_the_pool_to_others(
        serai_factory):
    srv = serai_factory(extra="\n[gemini]\nproxy_protocol = yes\n" + CAPS)
    srv.start()
    port = srv.gemini_port
    # A peer that never sends its header holds at most max_per_client.
    silent = flood("127.0.0.2", port)
    # Clients named by the header are held to their share as well.
    named = flood("127.0.0.4", port, proxy_header("192.0.2.1", port))
    try:
        held = settle(silent, PER_CLIENT, "header-less connections closed")
        assert held == PER_CLIENT, held
        held = settle(named, PER_CLIENT + HOLD_PER_CLIENT,
                      "192.0.2.1's connections past the cap closed")
        assert PER_CLIENT <= held <= PER_CLIENT + HOLD_PER_CLIENT, held
        for _ in range(3):
            s = connect_from("127.0.0.3", port)
            s.sendall(proxy_header("192.0.2.2", port))
            status, _ = gemini_on(s, port)
            assert status == GEMINI_OK
    finally:
        for s in silent + named:
            s.close()
    poll_until(lambda: any(m["peer"] == "192.0.2.2" and m["status"] == "20"
                           for m in srv.access_lines()),
               IO_TIMEOUT, "192.0.2.2 served, in the access log")
    assert "awaiting a PROXY header" in srv.log()


# Another address than the harness's: its readiness probes are
# connections from 127.0.0.1, and count.
CLIENT = "127.0.0.5"


def fetch_gopher_from(srv, src=CLIENT, header=None):
    s = connect_from(src, srv.gopher_port)
    with s:
        if header is not None:
            s.sendall(header)
        return gopher_on(s)


def fetch_gemini_from(srv, src=CLIENT):
    return gemini_on(connect_from(src, srv.gemini_port), srv.gemini_port)


def slowed(body):
    return body.startswith(b"3") and b"slow down" in body


def test_rate_limit_defaults_across_both_protocols(serai_factory):
    """serai's defaults (rate 10, burst 50): a burst of 50 requests is
    served, then Gopher and Gemini alike are told to slow down."""
    srv = serai_factory(rate_limit=True)
    srv.start()
    t0 = time.monotonic()
    bodies = []
    for _ in range(400):
        bodies.append(fetch_gopher_from(srv))
        if slowed(bodies[-1]) or time.monotonic() - t0 > 30 * SLOW:
            break
    assert slowed(bodies[-1]), "never refused after %d requests" % len(
        bodies)
    assert len(bodies) > 50
    assert all(b.endswith(b"\r\n.\r\n") and not slowed(b)
               for b in bodies[:50])
    # One type-3 line and the menu's end: a menu any client shows.
    lines = bodies[-1].decode().split("\r\n")
    assert lines[0].startswith("3too many requests from your address: "
                               "slow down, try again in 1 s\t"), lines
    assert lines[1:] == [".", ""], lines
    # The same address on the other protocol: 44 and the wait in seconds.
    status, body = fetch_gemini_from(srv)
    assert (status, body) == ("44 1", b"")
    # Once waited, served again.
    time.sleep(1.1)
    assert fetch_gemini_from(srv)[0] == GEMINI_OK
    elapsed = time.monotonic() - t0
    # Refusals are logged at most once a second.
    n = srv.log().count("request rate limit reached")
    assert 1 <= n <= elapsed + 1, srv.log()


def test_polite_crawler_is_never_refused(serai_factory):
    """One request a second at rate = 1 (burst 2): every one served; the
    same client in a hurry is refused at once."""
    srv = serai_factory(extra="\n[limits]\nrate = 1\nburst = 2\n")
    srv.start()
    t0 = time.monotonic()
    for i in range(4):
        time.sleep(max(0.0, t0 + i * 1.0 - time.monotonic()))
        if i % 2:
            assert fetch_gemini_from(srv)[0] == GEMINI_OK, i
        else:
            assert fetch_gopher_from(srv).endswith(b"\r\n.\r\n"), i
    # In a hurry: the burst (two tokens at most) runs out within four
    # requests.  Which one is refused depends on how late the polite
    # ones landed on a busy machine, so only the refusal is asserted.
    statuses = [fetch_gemini_from(srv)[0] for _ in range(4)]
    assert "44 1" in statuses, statuses


def test_ipv6_clients_are_rated_per_64(serai_factory):
    srv = serai_factory(extra="proxy_protocol = yes\n"
                              "\n[limits]\nrate = 1\nburst = 3\n")
    srv.start()
    port = srv.gopher_port
    # Every request from another address of 2001:db8::/64: the prefix
    # is one client, and runs out.
    refused_at = None
    for i in range(1, 11):
        body = fetch_gopher_from(srv, header=proxy_header(
            "2001:db8::%x" % i, port))
        if slowed(body):
            refused_at = i
            break
    assert refused_at is not None and refused_at > 3, refused_at
    # Another /64, and an IPv4 client behind the same proxy: served.
    for client in ("2001:db8:0:1::1", "192.0.2.1"):
        body = fetch_gopher_from(srv, header=proxy_header(client, port))
        assert body.endswith(b"\r\n.\r\n") and not slowed(body), client


def test_ipv6_clients_are_capped_per_64(serai_factory):
    srv = serai_factory(extra="proxy_protocol = yes\n"
                              "\n[limits]\nmax_per_client = 1\n"
                              "request_timeout = 120\n")
    srv.start()
    port = srv.gopher_port
    busy = b"too many connections from your address"

    def hold():
        s = connect_from("127.0.0.1", port)
        s.sendall(proxy_header("2001:db8::1", port))
        return s

    held = [hold()]

    def other_address_of_the_64_refused():
        # A probe read before the held header took the one place, and
        # the held connection was refused: hold again.
        if select.select([held[0]], [], [], 0)[0]:
            held[0].close()
            held[0] = hold()
            return False
        return busy in fetch_gopher_from(
            srv, header=proxy_header("2001:db8::2", port))

    try:
        poll_until(other_address_of_the_64_refused, IO_TIMEOUT,
                   "2001:db8::2 refused while 2001:db8::1 holds the place")
        body = fetch_gopher_from(srv, header=proxy_header("2001:db8:0:1::1",
                                                          port))
        assert body.endswith(b"\r\n.\r\n") and busy not in body
    finally:
        held[0].close()


# --------------------------------------------------------------------------
# Costly searches and a cap-flooding address, while another client reads

SEARCH_ARTICLES = 6000
# Among the costliest queries the prefix bounds let through on a generated
# archive of this size: three three-letter prefixes of common words.
COSTLY = "for* und* fro*"
LOAD_SECONDS = 2


def searcher(port, stop, results):
    """Loops the costly search until stopped; sends back its latencies
    and what went wrong."""
    ms, errors = [], []
    # Load generators: let the reader's own scheduling not be measured.
    os.nice(10)
    for _ in range(100000):
        if stop.is_set():
            break
        t = time.monotonic()
        try:
            body = gopher_fetch("/search\t" + COSTLY, port)
        except OSError as e:
            errors.append(repr(e))
            continue
        ms.append((time.monotonic() - t) * 1000)
        if b"hits" not in body:
            errors.append(body[:200])
    results.put((ms, errors))


def percentile(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100))]


@pytest.mark.skipif(VALGRIND is not None,
                    reason="latencies mean nothing under valgrind")
def test_costly_searches_do_not_delay_other_requests(serai_factory,
                                                     tmp_path):
    generate(tmp_path / "big", SEARCH_ARTICLES, broken=False)
    srv = serai_factory(root=tmp_path / "big")
    srv.start()
    body = srv.gopher("/search\t" + COSTLY)
    assert b"hits" in body, body[:300]
    # Processes, not threads: the GIL would make the reader below wait
    # for the searchers' Python, not for serai.
    ctx = multiprocessing.get_context("fork")
    stop = ctx.Event()
    results = ctx.Queue()

    idle = []
    procs = [ctx.Process(target=searcher, args=(srv.gopher_port, stop,
                                                 results))
             for _ in range(4)]
    for p in procs:
        p.start()
    try:
        # An address holding more idle connections than its cap.
        for port in (srv.gemini_port, srv.gopher_port):
            idle += [connect_from("127.0.0.9", port) for _ in range(40)]
        other_ms = []
        t0 = time.monotonic()
        for i in range(1000):
            if time.monotonic() - t0 > LOAD_SECONDS:
                break
            t = time.monotonic()
            if i % 2:
                body = fetch_gopher_from(srv, "127.0.0.3", None)
                ok = body.endswith(b"\r\n.\r\n")
            else:
                s = connect_from("127.0.0.3", srv.gopher_port)
                with s:
                    body = gopher_on(s, "/caps.txt")
                ok = b"CAPS" in body
            other_ms.append((time.monotonic() - t) * 1000)
            assert ok, body[:200]
            time.sleep(0.01)
    finally:
        stop.set()
        search_ms, errors = [], []
        for p in procs:
            ms, errs = results.get(timeout=IO_TIMEOUT * 2)
            search_ms += ms
            errors += errs
        for p in procs:
            p.join(timeout=IO_TIMEOUT)
        for s in idle:
            s.close()
    assert not errors, errors[:3]
    assert len(search_ms) >= 8 and len(other_ms) >= 50
    p50, p99 = percentile(other_ms, 50), percentile(other_ms, 99)
    search_p50 = percentile(search_ms, 50)
    print("\nother requests: %d, p50 %.1f ms, p99 %.1f ms, max %.1f ms; "
          "costly searches: %d, p50 %.1f ms (%s, %d articles)"
          % (len(other_ms), p50, p99, max(other_ms), len(search_ms),
             search_p50, COSTLY, SEARCH_ARTICLES))
    # Were searches run on the event loops, most requests would wait for
    # the search ahead of them on their worker (four searches in flight,
    # two workers): half a search at the median.
    # The tail is printed, not asserted: on a loaded 2-core machine it is
    # the scheduler's (the four searchers' processes and serai's threads
    # share the cores), and a timed bound there fails for the machine.
    assert p50 < search_p50 / 10, (p50, search_p50)


# --------------------------------------------------------------------------
# Gopher+ "$" on a large section

DIR_ARTICLES = 2000


def test_gopher_plus_dollar_menu_is_not_rendered_per_article(
        serai_factory, tmp_path):
    """Every item's attribute block, its +VIEWS size read from what the
    snapshot holds (the article's source), and a cost near the plain
    menu's (figures printed: the answer used to render every article)."""
    root = tmp_path / "content"
    sec = root / "big"
    sec.mkdir(parents=True)
    sizes = {}
    body = "Words of the article, enough of them to make a paragraph. " * 40
    for i in range(DIR_ARTICLES):
        text = "Date: 2020-01-01\nArticle %d\n\n%s\n\n%s\n" % (
            i, body, body[:i % 1000])
        (sec / ("a%04d.txt" % i)).write_text(text, encoding="utf-8")
        sizes["/big/a%04d" % i] = len(text.encode())
    srv = serai_factory(root=root)
    srv.start()
    plain = srv.gopher("/big/")
    dollar = srv.gopher("/big/\t$")
    assert dollar.startswith(b"+-1\r\n") and dollar.endswith(b"\r\n.\r\n")
    blocks = dollar.decode().split("+INFO: ")[1:]
    items = [b for b in blocks
             if b.startswith("0") and b.split("\t")[1] in sizes]
    assert len(items) == DIR_ARTICLES
    for b in items:
        sel = b.split("\t")[1]
        views = b.split("+VIEWS:\r\n text/plain: <")[1].split("k>")[0]
        assert int(views) == (sizes[sel] + 1023) // 1024, (sel, views)

    def best_of(sel, n=5):
        times = []
        for _ in range(n):
            t = time.monotonic()
            srv.gopher(sel)
            times.append((time.monotonic() - t) * 1000)
        return min(times)

    t_plain, t_dollar = best_of("/big/"), best_of("/big/\t$")
    print("\n%d-article section: plain menu %.1f ms (%d bytes), $ %.1f ms "
          "(%d bytes), ratio %.1f" % (DIR_ARTICLES, t_plain, len(plain),
                                      t_dollar, len(dollar),
                                      t_dollar / t_plain))
