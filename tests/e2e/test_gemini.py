"""Gemini over TLS: pages, redirects, errors and the end of every answer."""

import socket
import subprocess
import time

import pytest

from conftest import (GEMINI_OK, IO_TIMEOUT, assert_seed_gemtext,
                      client_context, gemini_fetch, gemini_fetch_one_write,
                      normalise, read_until_closed, recv_to_end, require_tool)


def body_lines(resp):
    return resp.body.decode("utf-8").split("\n")


def test_home(server):
    resp = server.gemini("/")
    assert resp.status_line == GEMINI_OK
    lines = body_lines(resp)
    # The title comes from content/section.ini.
    assert lines[0] == "# serai news archive"
    assert "=> /news/ News" in lines
    assert resp.close_notify


def test_section(server, seed):
    resp = server.gemini("/news/")
    assert resp.status_line == GEMINI_OK
    lines = body_lines(resp)
    assert lines[0] == "# News"
    # Undated: "=> path title", with no date between.
    assert "=> /news/beijing-declaration " + seed.title in lines
    assert "=> / Up: Home" in lines
    assert resp.close_notify


def test_article(server, seed):
    resp = server.gemini("/news/beijing-declaration")
    assert resp.status_line == GEMINI_OK
    assert resp.close_notify
    text = resp.body.decode("utf-8")
    assert text.startswith(
        "# Beijing Declaration: A New Chapter of Science and Technology "
        "Cooperation Between China and Belt and Road Countries\n")
    lines = text.split("\n")
    assert_seed_gemtext(lines, seed)
    assert lines[1].startswith("=> /news/ "), lines[1]


def test_host_may_be_the_address(server):
    resp = gemini_fetch("gemini://127.0.0.1:%d/" % server.gemini_port,
                        port=server.gemini_port)
    assert resp.status_line == GEMINI_OK


def test_host_must_be_the_address_reached(server):
    # The listener is bound to 127.0.0.1 alone, so serai takes the
    # address from it rather than asking per connection: it must still
    # be that address, and no other, that a URL may name.
    resp = gemini_fetch("gemini://127.0.0.2:%d/" % server.gemini_port,
                        port=server.gemini_port)
    assert resp.status_line.startswith("53"), resp.status_line


def test_host_is_case_insensitive(server):
    resp = server.gemini("gemini://LOCALHOST:%d/news/" % server.gemini_port)
    assert resp.status_line == GEMINI_OK


def test_section_without_slash_redirects(server):
    resp = server.gemini("/news")
    assert resp.status_line == "31 /news/"
    assert resp.body == b""
    assert resp.close_notify


def test_unknown_path_is_51(server):
    resp = server.gemini("/no/such/page")
    assert resp.status_line == "51" or resp.status_line.startswith("51 ")
    assert resp.body == b""
    assert resp.close_notify


def test_article_with_slash_is_not_a_section(server):
    resp = server.gemini("/news/beijing-declaration/")
    assert resp.status_line.startswith("51")
    assert resp.body == b""


@pytest.mark.parametrize("url", [
    "http://localhost:{port}/",
    "https://localhost:{port}/",
    "gemini://example.org:{port}/",
    "gemini://localhost:{wrong}/",
])
def test_other_servers_are_refused_with_53(server, url):
    port = server.gemini_port
    wrong = port + 1 if port < 65535 else port - 1
    resp = server.gemini(url.format(port=port, wrong=wrong))
    assert resp.status_line.startswith("53"), resp.status_line
    assert resp.body == b""
    assert resp.close_notify


@pytest.mark.parametrize("request_line", [
    "hello",
    "",
    "//localhost:{port}/",
    "/news/",
    "gemini://localhost:{port}/%00",
    "gemini://localhost:{port}/news/%zz",
    "gemini://user@localhost:{port}/",
    "gemini://localhost:{port}/#fragment",
    "gemini://localhost:{port}/a b",
])
def test_bad_requests_are_59(server, request_line):
    # Sent as is: not an absolute gemini URL, or a broken one.
    resp = gemini_fetch(request_line.format(port=server.gemini_port),
                        port=server.gemini_port)
    assert resp.status_line.startswith("59"), resp.status_line
    assert resp.body == b""
    assert resp.close_notify


def test_url_of_1024_bytes_is_taken(server):
    head = "gemini://localhost:%d/" % server.gemini_port
    url = head + "a" * (1024 - len(head))
    assert len(url) == 1024
    assert server.gemini(url).status_line.startswith("51")
    assert server.gemini(url + "a").status_line.startswith("59")


def test_request_over_1024_bytes_is_59(server):
    url = "gemini://localhost:%d/%s" % (server.gemini_port, "a" * 1100)
    resp = server.gemini(url)
    assert resp.status_line.startswith("59"), resp.status_line
    assert resp.body == b""
    assert resp.close_notify


@pytest.mark.parametrize("size", [1100, 17000, 40000])
def test_long_request_in_one_write_is_59(server, size):
    # The whole request arrives at once.  Past 16 KiB it spans two TLS
    # records: the server answers after the first, with the rest still
    # unread in its socket; closing then makes the kernel send a reset,
    # and the client loses the answer.  It must get 59 and close_notify.
    url = b"gemini://localhost:%d/" % server.gemini_port + b"a" * size
    resp = gemini_fetch_one_write(url, server.gemini_port)
    assert resp.status_line.startswith("59"), resp
    assert resp.body == b""
    assert resp.end == "close_notify", resp


def test_overlong_request_is_answered_before_its_end(server):
    # No CRLF yet, and the client waits: 59 comes at once, not at the
    # request deadline (10 s).
    raw = socket.create_connection(("127.0.0.1", server.gemini_port),
                                   timeout=IO_TIMEOUT)
    t0 = time.monotonic()
    with client_context().wrap_socket(raw, server_hostname="localhost",
                                      suppress_ragged_eofs=False) as tls:
        tls.sendall(b"gemini://localhost:%d/" % server.gemini_port
                    + b"a" * 1100)
        data, close_notify = recv_to_end(tls, t0 + IO_TIMEOUT)
    # The 59 is ended by close_notify, not a bare TCP close.
    assert close_notify
    assert data.startswith(b"59 "), data
    assert time.monotonic() - t0 < 9


def test_plain_text_on_the_tls_port_gets_no_answer(server):
    with socket.create_connection(("127.0.0.1", server.gemini_port),
                                  timeout=IO_TIMEOUT) as s:
        s.sendall(b"gemini://localhost:%d/\r\n" % server.gemini_port)
        data = read_until_closed(s)
    # At most a TLS alert record (type 21), never a Gemini answer.
    assert data == b"" or data[0] == 21, data


def test_robots_txt(server):
    resp = server.gemini("/robots.txt")
    assert resp.status_line.startswith("20 text/plain"), resp.status_line
    assert b"User-agent" in resp.body
    assert resp.close_notify


def test_dot_segments_stay_inside(server):
    resp = server.gemini("/news/../news/./beijing-declaration")
    assert resp.status_line == GEMINI_OK
    resp = server.gemini("/../../etc/passwd")
    assert resp.status_line[:2] in ("51", "59"), resp.status_line
    assert b"root:" not in resp.body


def test_openssl_s_client(server, seed):
    openssl = require_tool("openssl")
    url = "gemini://localhost:%d/news/beijing-declaration" % (
        server.gemini_port)
    proc = subprocess.run(
        [openssl, "s_client", "-connect",
         "127.0.0.1:%d" % server.gemini_port, "-quiet",
         "-servername", "localhost"],
        input=(url + "\r\n").encode("ascii"),
        capture_output=True,
        timeout=IO_TIMEOUT * 2,
    )
    out = proc.stdout.decode("utf-8")
    assert out.startswith(GEMINI_OK + "\r\n"), proc.stderr.decode()
    assert "# " + seed.title + "\n" in out
    lines = out.split("\n")
    for para in seed.paragraphs:
        assert para in lines, "paragraph missing: %r" % para[:60]
    assert normalise(seed.copyright) in normalise(out)
