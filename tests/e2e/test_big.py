"""A big article (near the 4 MiB limit): whole answers over both
protocols, the write deadline, and a reload while an answer is in
flight (the old snapshot must live until its last reply is sent)."""

import signal
import socket
import ssl
import time

import pytest

from conftest import (GEMINI_OK, IO_TIMEOUT, SLOW, Server, client_context,
                      display_width, gopher_lines, poll_until, serving)

WRITE_TIMEOUT = 2 * SLOW
BIG_IO_TIMEOUT = IO_TIMEOUT * 4


def big_paragraphs():
    # About 3.9 MB: under ARTICLE_MAX_BYTES (4 MiB), over what loopback
    # socket buffers usually hold.
    paras = []
    n = 0
    for i in range(2600):
        words = ["w%d-%d" % (i, j) for j in range(200)]
        paras.append(" ".join(words))
        n += len(paras[-1]) + 2
        if n > 3_900_000:
            break
    return paras


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    base = tmp_path_factory.mktemp("big")
    root = base / "content"
    (root / "news").mkdir(parents=True)
    paras = big_paragraphs()
    (root / "news" / "big.txt").write_text(
        "Big story\n\n" + "\n\n".join(paras) + "\n", encoding="utf-8")
    srv = Server(base / "srv", root=root,
                 extra="\n[limits]\nwrite_timeout = %d\n" % WRITE_TIMEOUT)
    with serving(srv):
        srv.paragraphs = paras
        yield srv


def slow_client(port, request):
    """A client with a tiny receive window that sends request and then
    does not read."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(BIG_IO_TIMEOUT)
    s.connect(("127.0.0.1", port))
    s.sendall(request)
    return s


def read_all(s):
    data = bytearray()
    deadline = time.monotonic() + BIG_IO_TIMEOUT
    for _ in range(1_000_000):
        try:
            chunk = s.recv(1 << 16)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
        assert time.monotonic() < deadline
    return bytes(data)


def test_big_gemini(big):
    resp = big.gemini("/news/big", timeout=BIG_IO_TIMEOUT)
    assert resp.status_line == GEMINI_OK
    assert resp.close_notify
    lines = resp.body.decode("utf-8").split("\n")
    paras = [ln for ln in lines if ln.startswith("w")]
    assert paras == big.paragraphs


def test_big_gemini_tls12(big):
    ctx = client_context(maximum=ssl.TLSVersion.TLSv1_2)
    resp = big.gemini("/news/big", ctx=ctx, timeout=BIG_IO_TIMEOUT)
    assert resp.status_line == GEMINI_OK
    assert resp.close_notify
    assert resp.body.decode("utf-8").count("\n\nw") == len(big.paragraphs)


def test_big_gopher(big):
    body = big.gopher("/news/big", timeout=BIG_IO_TIMEOUT)
    lines = gopher_lines(body)
    assert max(display_width(ln) for ln in lines) <= 70
    words = " ".join(lines).split()
    want = " ".join(big.paragraphs).split()
    assert words[-len(want):] == want


def test_write_deadline(big):
    full = len(big.gopher("/news/big", timeout=BIG_IO_TIMEOUT))
    s = slow_client(big.gopher_port, b"/news/big\r\n")
    try:
        time.sleep(WRITE_TIMEOUT + 1.5)
        got = len(read_all(s))
    finally:
        s.close()
    if got == full:
        pytest.skip("the socket buffers took the whole answer")
    assert got < full
    poll_until(lambda: "write deadline passed" in big.log(), IO_TIMEOUT,
               "the write deadline in the log")


def test_reload_while_answer_in_flight(big):
    # Runs last in this module: it removes the article.
    want = big.gopher("/news/big", timeout=BIG_IO_TIMEOUT)
    s = slow_client(big.gopher_port, b"/news/big\r\n")
    try:
        time.sleep(0.2)
        (big.root / "news" / "big.txt").unlink()
        before = big.log().count("reloaded")
        big.send_signal(signal.SIGHUP)
        poll_until(lambda: big.log().count("reloaded") > before,
                   IO_TIMEOUT, "the reload")
        assert big.gemini("/news/big").status_line.startswith("51")
        got = read_all(s)
    finally:
        s.close()
    # The answer in flight still came whole, from the old snapshot.
    assert got == want
