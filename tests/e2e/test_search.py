"""Full-text search: /search over Gemini (10 prompt, 20 results, pages,
59 for long queries) and Gopher (type-7 items, TAB search, curl)."""

import subprocess

from conftest import (GEMINI_OK, IO_TIMEOUT, gopher_lines, require_tool)


def test_gemini_prompt(server):
    r = server.gemini("/search")
    assert r.status_line == "10 Search the archive"


def test_gemini_results(server, seed):
    r = server.gemini("/search?declaration")
    assert r.status_line.startswith("20 text/gemini")
    body = r.body.decode("utf-8")
    assert body.startswith("# Search: declaration\n")
    assert "=> /news/beijing-declaration %s\n" % seed.title in body
    assert "1 hit, page 1 of 1." in body


def test_gemini_no_hits_and_syntax(server):
    for q in ("zzzqqq", "title%3Ax", "NEAR(", "%22unbalanced", "*", "a%20OR",
              "-x"):
        r = server.gemini("/search?" + q)
        assert r.status_line.startswith("20 "), q
        assert b"=> /search Search again" in r.body


def test_gemini_too_long(server):
    r = server.gemini("/search?" + "x" * 257)
    assert r.status_line.startswith("59 ")
    r = server.gemini("/search?" + "x" * 256)
    assert r.status_line.startswith("20 ")


def test_gemini_pages(serai_factory, tmp_path):
    root = tmp_path / "archive"
    (root / "news").mkdir(parents=True)
    for i in range(25):
        (root / "news" / ("n%02d.txt" % i)).write_text(
            "Date: 2020-01-%02d\nReport %d on glaciers\n\nThe glacier "
            "melts.\n" % (i + 1, i), encoding="utf-8")
    srv = serai_factory(root=root)
    srv.start()
    body = srv.gemini("/search?glacier").body.decode("utf-8")
    assert "25 hits, page 1 of 3." in body
    assert body.count("=> /news/n") == 10
    assert "=> /search/2?glacier Next page" in body
    body = srv.gemini("/search/3?glacier").body.decode("utf-8")
    assert body.count("=> /news/n") == 5
    assert "=> /search/2?glacier Previous page" in body
    assert "Next page" not in body
    assert srv.gemini("/").status_line == GEMINI_OK


def test_gopher_items(server):
    for sel in ("", "/news/"):
        lines = gopher_lines(server.gopher(sel))
        items = [ln for ln in lines if ln.startswith("7")]
        assert items == ["7Search the archive\t/search\tlocalhost\t%d"
                         % server.gopher_port], sel


def test_gopher_search(server, seed):
    lines = gopher_lines(server.gopher("/search\tbeijing"))
    assert lines[-1] == "."
    assert lines[0].startswith("i1 hit")
    hit = [ln for ln in lines if ln.startswith("0")]
    assert len(hit) == 1
    assert hit[0].split("\t")[1] == "/news/beijing-declaration"
    for ln in lines[:-1]:
        assert len(ln.split("\t")) == 4


def test_gopher_no_query(server):
    body = server.gopher("/search")
    assert body.startswith(b"3")


def test_gopher_curl(server):
    curl = require_tool("curl")
    out = subprocess.run(
        [curl, "-s", "--max-time", str(IO_TIMEOUT),
         "gopher://127.0.0.1:%d/7/search?beijing" % server.gopher_port],
        capture_output=True, timeout=IO_TIMEOUT * 2, check=True)
    assert b"\t/news/beijing-declaration\t" in out.stdout


def test_index_cache(serai_factory, tmp_path):
    """The index is kept in state_dir and read back at the next start
    while nothing indexed changed; a change rebuilds it."""
    root = tmp_path / "archive"
    (root / "news").mkdir(parents=True)
    for i in range(40):
        (root / "news" / ("n%02d.txt" % i)).write_text(
            "Date: 2020-02-%02d\nReport %d on rivers\n\nThe river %s "
            "floods.\n" % (i % 28 + 1, i, "wide" if i else "narrow"),
            encoding="utf-8")
    srv = serai_factory(root=root)

    def run():
        srv.start()
        try:
            line = [x for x in srv.log().splitlines()
                    if "search index:" in x][-1]
            body = srv.gemini("/search?narrow").body.decode("utf-8")
            return line, body
        finally:
            assert srv.stop() == 0

    line, body = run()
    assert "40 articles" in line and "cache" not in line
    assert "=> /news/n00 " in body
    cache = srv.state_dir / "search.cache"
    assert cache.stat().st_size > 0
    assert cache.stat().st_mode & 0o777 == 0o600

    line, body = run()
    assert line.endswith("(from the cache)")
    assert "=> /news/n00 " in body

    (root / "news" / "n05.txt").write_text(
        "Date: 2020-02-06\nReport 5 on rivers\n\nThe river narrow "
        "floods.\n", encoding="utf-8")
    line, body = run()
    assert "cache" not in line
    assert "2 hits" in body and "=> /news/n05 " in body
