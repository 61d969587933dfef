"""Gopher: menus and type-0 text, through a raw socket, curl and lynx."""

import socket
import subprocess
import time

import pytest

from conftest import (IO_TIMEOUT, assert_seed_text, display_width,
                      gopher_lines, normalise, read_until_closed, require_tool)

ARTICLE = "/news/beijing-declaration"


def menu_items(lines):
    """(type, display, selector, host, port) of every menu line."""
    items = []
    for ln in lines:
        if ln == ".":
            continue
        fields = ln.split("\t")
        assert len(fields) >= 4, "not a menu line: %r" % ln
        items.append((ln[0], fields[0][1:], fields[1], fields[2], fields[3]))
    return items


def assert_menu(body):
    lines = gopher_lines(body)
    assert body.endswith(b"\r\n.\r\n")
    assert lines[-1] == "."
    assert "." not in lines[:-1]
    items = menu_items(lines)
    assert items, "empty menu"
    for kind, display, selector, host, port in items:
        if kind == "i":
            # Info lines: "i text TAB TAB null.host TAB 1".
            assert (selector, host, port) == ("", "null.host", "1")
        else:
            assert kind != "3", "an error line inside a real menu"
    return lines, items


def assert_news_menu(body, server, seed):
    lines, items = assert_menu(body)
    port = str(server.gopher_port)
    # The section's Atom feed and the search are items of their own.
    assert ("0", "Atom feed (gemini links)", "/news/feed.xml", "localhost",
            port) in items
    assert ("7", "Search the archive", "/search", "localhost",
            port) in items
    arts = [it for it in items
            if it[0] == "0" and not it[2].endswith("/feed.xml")]
    assert len(arts) == 1, arts
    kind, display, selector, host, port = arts[0]
    assert display.startswith("Beijing Declaration")
    assert selector == ARTICLE
    assert host == "localhost"
    assert port == str(server.gopher_port)
    # Display strings are cut to menu_width (67) columns.
    assert display_width(display) <= 67
    assert display.endswith("...")
    assert normalise(seed.title).startswith(display[:-3])
    return lines


@pytest.mark.parametrize("selector", ["", "/"])
def test_home_menu(server, selector):
    body = server.gopher(selector)
    lines, items = assert_menu(body)
    assert "1News\t/news/\tlocalhost\t%d" % server.gopher_port in lines
    assert lines[0].startswith("iserai news archive\t")


@pytest.mark.parametrize("selector", ["/news/", "/news", "news/"])
def test_news_menu(server, seed, selector):
    assert_news_menu(server.gopher(selector), server, seed)


def test_news_menu_has_way_up(server, seed):
    lines = assert_news_menu(server.gopher("/news/"), server, seed)
    assert "1Up: Home\t/\tlocalhost\t%d" % server.gopher_port in lines


def test_selector_ended_by_bare_lf(server, seed):
    assert server.gopher("/news/", eol="\n") == server.gopher("/news/")
    assert_news_menu(server.gopher("/news/", eol="\n"), server, seed)


@pytest.mark.parametrize("pieces", [
    [b"", b"/news/\r\n"],             # nothing there at accept
    [b"/news/", b"\r\n"],             # as curl sends it
    [b"/ne", b"ws/\r", b"\n"],         # CR and LF apart
], ids=["late", "split", "cr-lf-apart"])
def test_request_in_pieces(server, seed, pieces):
    """The line read at accept is the common case; a line still to come,
    or coming in pieces, is read on by the bufferevent."""
    with socket.create_connection(("127.0.0.1", server.gopher_port),
                                  timeout=IO_TIMEOUT) as s:
        for piece in pieces:
            time.sleep(0.1)
            if piece:
                s.sendall(piece)
        body = read_until_closed(s)
    assert body == server.gopher("/news/")
    assert_news_menu(body, server, seed)


def test_selector_with_search_string(server, seed):
    # A TAB ends the selector; what follows is ignored here.
    body = server.gopher("/news/\tsomething")
    assert body == server.gopher("/news/")


def test_article_text(server, seed):
    body = server.gopher(ARTICLE)
    lines = gopher_lines(body)
    assert_seed_text(" ".join(lines), seed)
    for ln in lines:
        assert display_width(ln) <= 70, "too wide (%d): %r" % (
            display_width(ln), ln)
        assert not ln.startswith("."), ln
    # No menu terminator on text: the close ends it.
    assert not body.endswith(b".\r\n")
    assert lines[-1] == seed.copyright


def test_article_wrap_is_configured(serai_factory, seed):
    srv = serai_factory(extra="wrap = 40\n")
    srv.start()
    lines = gopher_lines(srv.gopher(ARTICLE))
    assert_seed_text(" ".join(lines), seed)
    assert max(display_width(ln) for ln in lines) <= 40
    # Really wrapped at the width, not far below it.
    assert max(display_width(ln) for ln in lines) >= 30


@pytest.mark.parametrize("selector", [
    "/nope", "/news/nope", "/../etc", b"/news\x00x", "/" + "x" * 300])
def test_missing_selector_is_error_menu(server, selector):
    body = server.gopher(selector)
    lines = gopher_lines(body)
    assert len(lines) == 2, lines
    assert lines[0].startswith("3")
    assert lines[1] == "."
    assert body.endswith(b"\r\n.\r\n")
    fields = lines[0].split("\t")
    assert fields[2:] == ["localhost", str(server.gopher_port)]


def test_overlong_request_line_is_error_menu(server):
    # Over the 1024-byte line limit: still a type-3 menu, never silence.
    # gopher_fetch fails on a connection reset, which is what a server
    # closing with the rest of the line unread makes the kernel send.
    body = server.gopher("/" + "x" * 1100)
    lines = gopher_lines(body)
    assert len(lines) == 2 and lines[0].startswith("3"), lines
    assert lines[1] == "."


def test_gopher_plus_markers(server):
    # The UMN client opens with TAB $ and wants a Gopher+ answer.
    body = server.gopher("/\t$")
    assert body.startswith(b"+-1\r\n")
    assert b"+INFO: 1News\t/news/\tlocalhost\t%d" % server.gopher_port in body
    text = server.gopher(ARTICLE + "\t+")
    assert text.startswith(b"+-2\r\n")
    assert text[len(b"+-2\r\n"):] == server.gopher(ARTICLE)


def test_caps_txt(server):
    body = server.gopher("/caps.txt")
    lines = gopher_lines(body)
    assert lines[0] == "CAPS"
    assert "PathDelimeter=/" in lines


def test_url_selector_gives_an_html_page(server):
    body = server.gopher("URL:https://example.org/?a=<b>").decode("utf-8")
    assert body.lstrip().lower().startswith("<!doctype html>")
    assert 'href="https://example.org/?a=&lt;b&gt;"' in body
    assert "<b>" not in body


def test_url_selector_refuses_javascript(server):
    lines = gopher_lines(server.gopher("URL:javascript:alert(1)"))
    assert len(lines) == 2 and lines[0].startswith("3"), lines


# --------------------------------------------------------------------------
# Real clients


def curl(server, path):
    exe = require_tool("curl")
    proc = subprocess.run(
        [exe, "-s", "--max-time", str(IO_TIMEOUT),
         "gopher://127.0.0.1:%d%s" % (server.gopher_port, path)],
        capture_output=True, timeout=IO_TIMEOUT * 2)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_curl_home(server):
    body = curl(server, "/1/")
    assert body == server.gopher("/")
    lines, _ = assert_menu(body)
    assert "1News\t/news/\tlocalhost\t%d" % server.gopher_port in lines


def test_curl_news_menu(server, seed):
    assert_news_menu(curl(server, "/1/news/"), server, seed)


def test_curl_overlong_selector(server):
    # curl sends the whole line at once; it must get the type-3 menu and
    # a clean end, not "Connection reset by peer".
    exe = require_tool("curl")
    proc = subprocess.run(
        [exe, "-sS", "--max-time", str(IO_TIMEOUT),
         "gopher://127.0.0.1:%d/1/%s" % (server.gopher_port, "x" * 1100)],
        capture_output=True, timeout=IO_TIMEOUT * 2)
    assert proc.returncode == 0, proc.stderr
    lines = gopher_lines(proc.stdout)
    assert len(lines) == 2 and lines[0].startswith("3"), lines


def test_curl_article(server, seed):
    body = curl(server, "/0" + ARTICLE)
    assert body == server.gopher(ARTICLE)
    assert_seed_text(" ".join(gopher_lines(body)), seed)


def lynx(server, path, env):
    exe = require_tool("lynx")
    proc = subprocess.run(
        [exe, "-dump", "-nolist", "-display_charset=utf-8",
         "-assume_charset=utf-8",
         "gopher://127.0.0.1:%d%s" % (server.gopher_port, path)],
        capture_output=True, stdin=subprocess.DEVNULL, env=env,
        timeout=IO_TIMEOUT * 2)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.decode("utf-8")


def test_lynx_article(server, seed, lynx_env):
    text = normalise(lynx(server, "/0" + ARTICLE, lynx_env))
    assert normalise(seed.title) in text
    for para in seed.paragraphs:
        assert normalise(para) in text, "missing: %r" % para[:60]
    assert normalise(seed.copyright) in text


def test_lynx_menu(server, lynx_env):
    text = lynx(server, "/1/news/", lynx_env)
    assert "Gopher Menu" in text
    assert "(FILE)" in text
    assert "Beijing Declaration" in text
    assert "(DIR)" in text  # the way up


def test_home_labels_its_groups(serai_factory, tmp_path):
    """Sections, Newest and Articles each under its label, as on the
    Gemini home: the root's articles no longer read as more "Newest"."""
    root = tmp_path / "content"
    (root / "news").mkdir(parents=True)
    (root / "news" / "n1.txt").write_text(
        "Date: 2021-02-03\nNews item\n\nBody.\n", encoding="utf-8")
    (root / "about.txt").write_text(
        "About this archive\n\nBody.\n", encoding="utf-8")  # not "Newest"
    srv = serai_factory(root=root)
    srv.start()
    lines = gopher_lines(srv.gopher("/"))
    texts = [ln.split("\t")[0] for ln in lines]
    # Labels as info lines, after a blank one, each before its group.
    assert texts.index("iSections") < texts.index("1news")
    assert texts.index("iNewest") < texts.index("02021-02-03 News item")
    assert texts.index("iArticles") < texts.index("0About this archive")
    assert (texts.index("iSections") < texts.index("iNewest")
            < texts.index("iArticles"))
    for label in ("iSections", "iNewest", "iArticles"):
        assert texts[texts.index(label) - 1] == "i", label
        assert lines[texts.index(label)] == label + "\t\tnull.host\t1"
    # The Gemini home has the same three groups in the same order.
    gem = srv.gemini("/").body.decode("utf-8")
    assert (gem.index("## Sections") < gem.index("## Newest")
            < gem.index("## Articles"))
    # A section menu labels its groups too.
    news = [ln.split("\t")[0] for ln in gopher_lines(srv.gopher("/news/"))]
    assert news.index("iArticles") < news.index("02021-02-03 News item")
