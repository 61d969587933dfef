"""The access log: one line per request, on stderr."""

import concurrent.futures
import re
import socket

from conftest import (ACCESS_RE, IO_TIMEOUT, gemini_fetch, gopher_fetch,
                      module_server, poll_until)


# A server of its own, so that its log holds only this module's requests.
logged = module_server("log")


def test_one_access_line_per_request(logged):
    g = logged.gemini_port
    art = "gemini://localhost:%d/news/beijing-declaration" % g
    gemini = [
        (art, "20"),
        ("gemini://localhost:%d/news" % g, "31"),
        ("gemini://localhost:%d/nope" % g, "51"),
        ("gemini://example.org:%d/" % g, "53"),
        ("hello", "59"),
    ]
    gopher = [
        ("/", "1"),
        ("/news/beijing-declaration", "0"),
        ("/nope", "3"),
    ]
    sizes = {}
    for url, status in gemini:
        resp = logged.gemini(url)
        assert resp.status_line.startswith(status)
        sizes[("gemini", url)] = len(resp.status_line) + 2 + len(resp.body)
    for sel, status in gopher:
        sizes[("gopher", sel)] = len(logged.gopher(sel))

    want = len(gemini) + len(gopher)
    # A Gemini line may be written just after close_notify reaches us.
    poll_until(lambda: len(logged.access_lines()) >= want, IO_TIMEOUT,
               "%d access lines in:\n%s" % (want, logged.log()))
    lines = logged.access_lines()
    # Exactly one per request: the readiness probes and the TLS
    # handshakes are not requests.
    assert len(lines) == want, logged.log()

    seen = {}
    for m in lines:
        key = (m["proto"], m["request"])
        assert key not in seen, "logged twice: %r" % (key,)
        seen[key] = m
    for proto, reqs in (("gemini", gemini), ("gopher", gopher)):
        for req, status in reqs:
            m = seen.get((proto, req))
            assert m is not None, "not logged: %s %r\n%s" % (
                proto, req, logged.log())
            assert m["peer"] == "127.0.0.1"
            assert m["status"] == status
            assert int(m["bytes"]) == sizes[(proto, req)], m.group(0)


def test_control_bytes_in_requests_are_escaped(logged):
    before = len(logged.access_lines())
    body = logged.gopher(b"/x\x1b[31m")
    assert body.startswith(b"3")
    poll_until(lambda: len(logged.access_lines()) > before, IO_TIMEOUT,
               "the access line")
    log = logged.log()
    assert "\x1b" not in log
    line = logged.access_lines()[-1]
    assert line["proto"] == "gopher" and line["status"] == "3"
    assert line["request"].startswith("/x") and "[31m" in line["request"]


def test_startup_lines(logged):
    log = logged.log()
    assert "gemini listening on 127.0.0.1:%d" % logged.gemini_port in log
    assert "gopher listening on 127.0.0.1:%d" % logged.gopher_port in log
    assert "ready: 2 worker(s)" in log
    assert re.search(r"\b1 articles? in 2 sections?, 0 skipped", log), log


def test_long_escaped_requests_keep_their_access_line(logged):
    # Escaping can make a request four times longer; the access line must
    # still end with status, bytes and time (the request may be cut).
    before = logged.log().count("\n")
    gopher_sel = b"/" + b'"' * 1000
    assert logged.gopher(gopher_sel).startswith(b"3")
    url = b"gemini://localhost:%d/" % logged.gemini_port + b"\x01" * 900
    assert logged.gemini(url).status_line.startswith("59")

    def new_lines():
        # Whole lines only: a read may meet a line still being written.
        lines = logged.log().split("\n")[before:-1]
        return lines if len(lines) >= 2 else None

    lines = poll_until(new_lines, IO_TIMEOUT, "two more log lines")
    matches = [ACCESS_RE.match(ln) for ln in lines]
    assert all(matches), "access lines without their fields:\n%s" % (
        "\n".join(ln[:60] + " ... " + ln[-60:] for ln in lines))
    got = sorted((m["proto"], m["status"]) for m in matches)
    assert got == [("gemini", "59"), ("gopher", "3")]
    for m in matches:
        assert m["request"].startswith(("/\\\"", "gemini://localhost:"))


def test_lines_whole_under_concurrency(serai_factory):
    """Workers gather access lines and write them in batches: every
    request still gets its line, whole, unmixed with another's, and
    soon."""
    srv = serai_factory()  # two workers, one stderr
    srv.start()
    n = 120

    def one(i):
        if i % 2:
            body = gopher_fetch("/news/", srv.gopher_port)
            assert body.endswith(b"\r\n.\r\n")
        else:
            resp = gemini_fetch("gemini://localhost:%d/" % srv.gemini_port,
                                port=srv.gemini_port)
            assert resp.status_line.startswith("20")

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(n)))
    poll_until(lambda: len(srv.access_lines()) >= n, IO_TIMEOUT,
               "an access line for every request")
    lines = srv.log().splitlines()
    assert all(line.count("serai: ") == 1 for line in lines), lines
    stamped = [line for line in lines
               if re.match(r"^serai: \d{4}-\d\d-\d\dT", line)]
    assert len(stamped) == n
    assert all(ACCESS_RE.match(line) for line in stamped), stamped


def test_access_log_counts_bytes_sent_not_queued(serai_factory, tmp_path):
    """A client that never reads a long answer: the write deadline ends
    it, and the access line counts what went, not the whole answer."""
    root = tmp_path / "content"
    (root / "big").mkdir(parents=True)
    para = ("A long paragraph of the big article, here to fill the "
            "buffers of both ends. " * 2).strip()
    (root / "big" / "huge.txt").write_text(
        "Date: 2020-01-01\nHuge\n\n" + "\n\n".join([para] * 24000) + "\n",
        encoding="utf-8")
    srv = serai_factory(root=root,
                        extra="\n[limits]\nwrite_timeout = 1\n")
    srv.start()
    whole = len(srv.gopher("/big/huge"))
    assert whole > 3 << 20
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(IO_TIMEOUT)
    try:
        s.connect(("127.0.0.1", srv.gopher_port))
        s.sendall(b"/big/huge\r\n")

        def cut_short():
            return [m for m in srv.access_lines()
                    if m["request"] == "/big/huge" and m["why"]]

        line = poll_until(cut_short, IO_TIMEOUT * 2, "the write deadline")[0]
    finally:
        s.close()
    assert line["why"] == "write deadline passed", line.string
    assert 0 < int(line["bytes"]) < whole // 2, (line.string, whole)
