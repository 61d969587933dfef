"""Gopher over TLS on the Gopher port: a first byte of 0x16 (a TLS
handshake record) is answered over TLS, anything else as plain Gopher;
the deadline, the PROXY header and the caps apply alike."""

import socket
import ssl
import subprocess
import time

import pytest

from conftest import (IO_TIMEOUT, SLOW, VALGRIND, client_context, gopher_lines,
                      module_server, poll_until, read_until_closed,
                      recv_to_end, require_tool)

ARTICLE = "/news/beijing-declaration"
# Short enough to wait for, long enough for a handshake under valgrind.
REQUEST_TIMEOUT = 3 if VALGRIND else 1


def tls_gopher(port, selector, header=b"", ctx=None):
    """selector + CRLF over TLS after header (a PROXY line, say); the
    answer and whether it ended with close_notify."""
    ctx = ctx or client_context()
    deadline = time.monotonic() + IO_TIMEOUT
    with socket.create_connection(("127.0.0.1", port),
                                  timeout=IO_TIMEOUT) as raw:
        if header:
            raw.sendall(header)
        with ctx.wrap_socket(raw, server_hostname="localhost",
                             suppress_ragged_eofs=False) as tls:
            tls.sendall(selector.encode("utf-8") + b"\r\n")
            return recv_to_end(tls, deadline)


def test_python_tls_and_plain_on_one_port(server):
    plain = server.gopher(ARTICLE)
    body, close_notify = tls_gopher(server.gopher_port, ARTICLE)
    assert body == plain
    assert close_notify, "the TLS answer was not ended by close_notify"
    assert len(gopher_lines(body)) > 3
    # Plain Gopher goes on working on the same port, after TLS too.
    assert server.gopher(ARTICLE) == plain
    poll_until(lambda: sum(m.group("request") == ARTICLE
                           and m.group("proto") == "gopher"
                           and m.group("status") == "0"
                           for m in server.access_lines()) >= 3,
               IO_TIMEOUT, "three access lines for the article")


def test_curl_gophers(server):
    exe = require_tool("curl")
    proc = subprocess.run(
        [exe, "-sSk", "--max-time", str(IO_TIMEOUT),
         "gophers://127.0.0.1:%d/1/" % server.gopher_port],
        capture_output=True, timeout=IO_TIMEOUT * 2)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == server.gopher("/")
    assert "1News\t/news/\tlocalhost\t%d" % server.gopher_port in (
        gopher_lines(proc.stdout))


def test_tls12_and_a_long_answer(server):
    # TLS 1.2 too, and an answer of several records: the menu of every
    # article is the longest the seed archive has.
    ctx = client_context(maximum=ssl.TLSVersion.TLSv1_2)
    plain = server.gopher("/news/")
    body, close_notify = tls_gopher(server.gopher_port, "/news/", ctx=ctx)
    assert body == plain and close_notify


strict = module_server("gophers-strict", extra="\n[limits]\n"
                       "request_timeout = %d\n" % REQUEST_TIMEOUT)


def test_stalled_handshake_hits_the_request_deadline(strict):
    # The attack: a ClientHello's first bytes, then nothing.  The
    # deadline from accept holds the handshake too.
    hello = bytearray(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    with socket.create_connection(("127.0.0.1", strict.gopher_port),
                                  timeout=REQUEST_TIMEOUT + 5 * SLOW) as s:
        s.sendall(hello)
        t0 = time.monotonic()
        data = read_until_closed(s)
        elapsed = time.monotonic() - t0
    assert data == b"", "a plain answer to a TLS client: %r" % data[:80]
    assert elapsed >= REQUEST_TIMEOUT - 0.3, "closed early: %.2f s" % elapsed
    assert elapsed <= REQUEST_TIMEOUT + 3 * SLOW, "late: %.2f s" % elapsed
    poll_until(lambda: "gopher 127.0.0.1: closed: TLS handshake deadline "
               "passed" in strict.log(), IO_TIMEOUT, "the deadline log line")


def test_garbage_after_0x16_is_dropped(strict):
    # Not TLS after all: the handshake fails, the connection closes at
    # once and nothing is answered in plain text.
    with socket.create_connection(("127.0.0.1", strict.gopher_port),
                                  timeout=IO_TIMEOUT) as s:
        s.sendall(b"\x16/news/\r\n" + b"\x00" * 64)
        t0 = time.monotonic()
        data = read_until_closed(s)
        elapsed = time.monotonic() - t0
    assert b"news" not in data and b"\r\n" not in data
    assert elapsed < REQUEST_TIMEOUT, "held until the deadline"
    assert strict.gopher("/") .startswith(b"i"), "the server is gone"


proxied = module_server("gophers-proxy", extra="proxy_protocol = yes\n")


def test_proxy_header_then_tls(proxied):
    # The PROXY header comes first, then the 0x16 check: the client is
    # the one the header names.
    port = proxied.gopher_port
    header = b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 %d\r\n" % port
    body, close_notify = tls_gopher(port, ARTICLE, header=header)
    assert close_notify
    assert len(gopher_lines(body)) > 3
    poll_until(lambda: any(m.group("peer") == "192.0.2.7"
                           and m.group("request") == ARTICLE
                           for m in proxied.access_lines()),
               IO_TIMEOUT, "the access line for the PROXY client")


capped = module_server("gophers-capped",
                       extra="\n[limits]\nmax_per_client = 1\n")


def test_per_client_cap_counts_tls_connections(capped):
    # A TLS connection held mid-handshake takes the address's one place:
    # the next connection, TLS or not, is refused.  The held one may
    # itself find the place still taken by a connection serai has not yet
    # seen close (the harness's probe, say): it is then refused at once
    # and opened again.
    for _ in range(50):
        held = socket.create_connection(("127.0.0.1", capped.gopher_port),
                                        timeout=IO_TIMEOUT)
        held.sendall(b"\x16\x03\x01\x02\x00")
        held.settimeout(0.3)
        try:
            refused = held.recv(200) is not None
        except socket.timeout:
            refused = False
        if not refused:
            break
        held.close()
        time.sleep(0.1)
    else:
        pytest.fail("the held connection was refused every time")
    with held:
        held.settimeout(IO_TIMEOUT)
        poll_until(lambda: b"too many connections" in capped.gopher("/"),
                   IO_TIMEOUT, "the cap to refuse a second connection")
    poll_until(lambda: capped.gopher("/").startswith(b"i"), IO_TIMEOUT,
               "the place to be free again")
