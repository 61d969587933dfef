"""The battery: malformed and hostile requests with their exact answers.

One server (request deadline 2 s) takes every request of the tables below,
each answer compared whole; then the server must still answer, and its
memory must not have grown while the tables ran again and again.  Last, a
storm of random bytes on both ports leaves it answering.
"""

import os
import random
import socket
import ssl
import time

import pytest

from conftest import (GEMINI_OK, IO_TIMEOUT, SANITIZED, SLOW, VALGRIND,
                      client_context, gemini_fetch, gopher_fetch,
                      module_server, poll_until)

DEADLINE = 2


srv = module_server("hostile",
                    extra="\n[limits]\nrequest_timeout = %d\n" % DEADLINE)


def gemini_cases(port):
    base = "gemini://localhost:%d" % port
    pad = 1024 - len(base + "/")
    return [
        # (request bytes, the whole status line, body expected?)
        (base + "/", GEMINI_OK, True),
        ("GEMINI://LOCALHOST:%d/" % port, GEMINI_OK, True),
        ("gemini://127.0.0.1:%d/" % port, GEMINI_OK, True),
        (base + "/news", "31 /news/", False),
        (base + "/nope", "51 not found", False),
        (base + "/" + "a" * pad, "51 not found", False),  # 1024 bytes
        (base + "/" + "a" * (pad + 1), "59 URL longer than 1024 bytes",
         False),
        (base + "/news%2fbeijing-declaration", GEMINI_OK, True),
        (base + "/news/%2e%2e/news/beijing-declaration", GEMINI_OK, True),
        (base + "/news/./beijing-declaration", GEMINI_OK, True),
        (base + "/%6eews/", GEMINI_OK, True),
        (base + "/../", "59 path climbs above the root", False),
        (base + "/%2e%2e/", "59 path climbs above the root", False),
        (base + "/news/../../etc/passwd", "59 path climbs above the root",
         False),
        (base + "/%2E%2E%2f%2e%2e%2fetc/passwd",
         "59 path climbs above the root", False),
        (base + "/%00", "59 bad percent-encoding in path", False),
        (base + "/%zz", "59 not a URL", False),  # evhttp refuses it
        (base + "/%4", "59 not a URL", False),
        (base + "/%01", "59 control character in path", False),
        (base + "/%ff", "59 path is not UTF-8", False),
        ("http://localhost:%d/" % port, "53 not a gemini URL", False),
        ("https://localhost:%d/" % port, "53 not a gemini URL", False),
        ("gopher://localhost:%d/" % port, "53 not a gemini URL", False),
        ("gemini://example.org:%d/" % port, "53 another host or port",
         False),
        ("gemini://localhost:1/", "53 another host or port", False),
        ("gemini://localhost/", "53 another host or port", False),
        ("gemini://user@localhost:%d/" % port, "59 userinfo in URL", False),
        (base + "/#frag", "59 fragment in URL", False),
        (base + "/#", "59 fragment in URL", False),
        ("/news/", "59 not an absolute URL", False),
        ("localhost/news/", "59 not an absolute URL", False),
        ("//localhost:%d/" % port, "59 not an absolute URL", False),
        ("gemini:news", "59 no host in URL", False),
        ("", "59 empty request", False),
        ("random text", "59 control character or space in URL", False),
        (base + "/\tx", "59 control character or space in URL", False),
        (base.encode() + b"/\x00", "59 NUL in request", False),
        (base.encode() + b"/\xff", "59 request is not UTF-8", False),
        (base.encode() + b"/\xc0\xaf", "59 request is not UTF-8", False),
        (base.encode() + b"/\xed\xa0\x80", "59 request is not UTF-8",
         False),
    ]


def gopher_cases(host_port):
    err = "\t\tlocalhost\t%d\r\n.\r\n" % host_port
    return [
        # (request bytes without line end, how the answer must begin,
        #  how it must end: None = the whole answer is the first string)
        (b"/nope", ("3not found: /nope" + err).encode(), None),
        (b"/" + b"x" * 254, ("3not found: /" + "x" * 254 + err).encode(),
         None),
        (b"/" + b"x" * 255,
         ("3selector longer than 255 bytes" + err).encode(), None),
        (b"/news/\x00", ("3NUL in selector" + err).encode(), None),
        (b"/../etc/passwd", ("3bad selector: /../etc/passwd" +
                             err).encode(), None),
        (b"/news/../../x", ("3bad selector: /news/../../x" + err).encode(),
         None),
        (b"/\x1b[31m", ("3not found: /\\x1b[31m" + err).encode(), None),
        (b"URL:javascript:alert(1)",
         ("3URL: with an unknown scheme: javascript:alert(1)" +
          err).encode(), None),
        (b"URL:https://x/\"><script>", b"<!DOCTYPE html>",
         b"</a></p></body></html>\n"),
        (b"", b"iserai news archive\t", b"\r\n.\r\n"),
        (b"/news/\tsome search", b"iNews\t", b"\r\n.\r\n"),
        (b"\t$", b"+-1\r\n+INFO: ", b"\r\n.\r\n"),
        (b"/news/\t+", b"+-1\r\niNews\t", b"\r\n.\r\n"),
        (b"/news/beijing-declaration\t+", b"+-2\r\nBeijing Declaration: ",
         b"Sciences\r\n"),
        (b"/news/beijing-declaration\t!",
         b"+-1\r\n+INFO: 0Beijing Declaration", b"\r\n.\r\n"),
        (b"/nope\t$", b"--1\r\n1 serai\r\nnot found\r\n.\r\n", None),
        (b"/caps.txt", b"CAPS\r\n", b"ServerPort=%d\r\n" % host_port),
        # A C1 control (CSI, raw and as UTF-8) and bytes that are not
        # UTF-8: escaped, never echoed raw to a terminal.
        (b"/\x9b[31m", ("3not found: /\\x9b[31m" + err).encode(), None),
        (b"/\xc2\x9b[31m", ("3not found: /\\xc2\\x9b[31m" + err).encode(),
         None),
        (b"/\xff\xfe", ("3not found: /\\xff\\xfe" + err).encode(), None),
        # A search for "+" or "!" is a search: a Gopher+ client puts its
        # marker after the words, in a third field.
        (b"/search\t+", b"iSearch: +\t\tnull.host\t1\r\n"
         b"iNo article matches\t", b"\r\n.\r\n"),
        (b"/search\t!", b"iSearch: !\t\tnull.host\t1\r\n"
         b"iNo article matches\t", b"\r\n.\r\n"),
        (b"/search\tdeclaration\t+", b"iSearch: declaration\t\tnull.host"
         b"\t1\r\ni1 hit, page 1 of 1\t", b"\r\n.\r\n"),
    ]


def check_gemini(srv, request, status, has_body):
    if isinstance(request, str):
        request = request.encode()
    r = gemini_fetch(request, port=srv.gemini_port)
    assert r.status_line == status, request
    assert bool(r.body) == has_body, request
    assert r.close_notify, request


def check_gopher(srv, request, head, tail, eol=b"\r\n"):
    body = gopher_fetch(request, port=srv.gopher_port, eol=eol.decode())
    if tail is None:
        assert body == head, request
    else:
        assert body.startswith(head) and body.endswith(tail), (
            request, body[:80], body[-40:])
    if body.startswith(b"3"):
        # An error menu: exactly one line and the terminator.
        assert body.count(b"\r\n") == 2


def run_tables(srv):
    for case in gemini_cases(srv.gemini_port):
        check_gemini(srv, *case)
    for case in gopher_cases(srv.gopher_port):
        check_gopher(srv, *case)
        check_gopher(srv, *case, eol=b"\n")  # Bombadillo sends bare LF
        check_gopher(srv, *case, eol=b"\r")  # and some clients CR alone


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def alive(srv):
    assert gemini_fetch("gemini://localhost:%d/" % srv.gemini_port,
                        port=srv.gemini_port).status_line == GEMINI_OK
    assert gopher_fetch("/", port=srv.gopher_port).endswith(b"\r\n.\r\n")


def test_every_rule_has_its_exact_answer(srv):
    run_tables(srv)
    alive(srv)


def test_gopher_line_over_1024_bytes_is_refused_at_once(srv):
    body = gopher_fetch(b"/" + b"y" * 2000, port=srv.gopher_port)
    assert body == ("3request line too long\t\tlocalhost\t%d\r\n.\r\n"
                    % srv.gopher_port).encode()


def gemini_raw(srv, data, pause_then=None):
    """data over TLS as it is (no CRLF added), optionally more after a
    pause; everything the server sends until it closes."""
    ctx = client_context()
    with socket.create_connection(("127.0.0.1", srv.gemini_port),
                                  timeout=IO_TIMEOUT + DEADLINE) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost",
                             suppress_ragged_eofs=False) as tls:
            tls.sendall(data)
            if pause_then is not None:
                time.sleep(0.2)
                tls.sendall(pause_then)
            out = b""
            try:
                while chunk := tls.recv(4096):
                    out += chunk
            except (ssl.SSLError, ConnectionResetError):
                pass
    return out


@pytest.mark.parametrize("extra", [1, 2])
def test_gemini_line_of_1025_or_1026_bytes_is_refused_at_once(srv, extra):
    # No CRLF: at the deadline the server would close without a word.
    base = b"gemini://localhost:%d/" % srv.gemini_port
    line = base + b"a" * (1024 + extra - len(base))
    assert gemini_raw(srv, line) == b"59 request longer than 1024 bytes\r\n"


def test_gemini_1024_byte_url_may_end_with_a_late_lf(srv):
    # 1024 bytes and a CR: the LF still to come makes it a request.
    base = b"gemini://localhost:%d/" % srv.gemini_port
    line = base + b"a" * (1024 - len(base))
    assert gemini_raw(srv, line + b"\r", b"\n") == b"51 not found\r\n"


def test_proxy_v2_header_on_a_plain_gopher_port_is_refused(srv):
    # Its first line is empty: taken as a request, the home menu.
    v2 = (b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11, 0, 12]) +
          bytes([192, 0, 2, 1, 127, 0, 0, 1, 0x9c, 0x40, 0, 70]))
    want = ("3a PROXY protocol header, but this port expects none\t\t"
            "localhost\t%d\r\n.\r\n" % srv.gopher_port).encode()
    assert gopher_fetch(v2 + b"/", port=srv.gopher_port) == want
    assert gopher_fetch(v2, port=srv.gopher_port, eol="") == want


def test_access_log_escapes_c1_and_invalid_utf8(srv):
    gopher_fetch(b"/log\x9bcheck\xc2\x9b\xff\xe4\xb8\xad", port=srv.gopher_port)
    want = '"/log\\x9bcheck\\xc2\\x9b\\xff\u4e2d" 3 '
    poll_until(lambda: want in srv.log(), IO_TIMEOUT, "the access line")
    raw = srv.log_path.read_bytes()
    assert b"\x9b" not in raw and b"\xff" not in raw


def test_bare_lf_gemini_request_waits_then_closes_silently(srv):
    data = gemini_raw(srv, b"gemini://localhost:%d/\n" % srv.gemini_port)
    assert data == b""
    assert "request deadline passed" in srv.log()


def test_memory_does_not_grow_over_repeated_batteries(srv):
    run_tables(srv)  # warm: caches, arenas, TLS tickets
    before = rss_kib(srv.proc.pid)
    rounds = 2 if VALGRIND else 8
    for _ in range(rounds):
        run_tables(srv)
    after = rss_kib(srv.proc.pid)
    alive(srv)
    print("RSS %d KiB -> %d KiB over %d rounds" % (before, after, rounds))
    # valgrind's and ASan's own memory is in the figure; both check for
    # leaks themselves when the server exits.
    if not VALGRIND and not SANITIZED:
        assert after - before < 1024, (before, after)


def test_random_byte_storm_leaves_the_server_answering(srv):
    rng = random.Random(os.environ.get("STORM_SEED", "serai"))
    count = 60 if VALGRIND else 600
    for i in range(count):
        port = srv.gemini_port if i % 2 == 0 else srv.gopher_port
        data = rng.randbytes(rng.choice([1, 7, 100, 1500, 5000]))
        if rng.random() < 0.3:
            data += b"\r\n"
        try:
            with socket.create_connection(("127.0.0.1", port),
                                          timeout=0.5 * SLOW) as s:
                s.sendall(data)
                if rng.random() < 0.5:
                    try:
                        s.settimeout(0.05 * SLOW)
                        s.recv(65536)
                    except OSError:
                        pass
        except OSError:
            pass  # refused past a cap, or reset: the server decides
    alive(srv)
    log = srv.log()
    assert "fatal" not in log
