"""Full-text search: /search over Gemini (10 prompt, 20 results, pages,
59 for long queries) and Gopher (type-7 items, TAB search, curl)."""

import os
import signal
import stat
import subprocess
import threading

from conftest import (GEMINI_OK, IO_TIMEOUT, gopher_lines, poll_until,
                      require_tool)


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
    # A heading as on Gemini, then the count.
    assert lines[0].startswith("iSearch: beijing\t")
    assert lines[1].startswith("i1 hit, page 1 of 1\t")
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


def index_lines(srv):
    return [x for x in srv.log().splitlines() if "search index:" in x]


def rivers(root, n):
    (root / "news").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (root / "news" / ("n%02d.txt" % i)).write_text(
            "Date: 2020-02-%02d\nReport %d on rivers\n\nThe river %s "
            "floods.\n" % (i % 28 + 1, i, "wide" if i else "narrow"),
            encoding="utf-8")


def test_index_persists(serai_factory, tmp_path):
    """The index lives in state_dir/search.db: a warm start on the same
    tree takes it as it is (its digest matched: nothing read, nothing
    indexed), and articles changed or removed while serai was down are
    the only ones indexed again, found by their new words."""
    root = tmp_path / "archive"
    rivers(root, 40)
    # Every start walks: a quick start's check would log a second line.
    srv = serai_factory(root=root, extra="\n[archive]\nquick_start = no\n")

    def run(query, built=False):
        srv.start()
        try:
            if built:
                # A whole build went through the WAL (as large as the
                # file, had it been left): emptied since.
                wal = srv.state_dir / "search.db-wal"
                db = srv.state_dir / "search.db"
                assert wal.stat().st_size < db.stat().st_size // 2
            return (index_lines(srv)[-1],
                    srv.gemini("/search?" + query).body.decode("utf-8"))
        finally:
            assert srv.stop() == 0

    # What an earlier version kept there goes.
    srv.state_dir.mkdir(parents=True, exist_ok=True)
    (srv.state_dir / "search.cache").write_bytes(b"old index")
    line, body = run("narrow", built=True)
    assert not (srv.state_dir / "search.cache").exists()
    assert "search.cache: removed (replaced by search.db)" in srv.log()
    assert line.endswith("search index: 40 articles in %s (built)"
                         % line.split(" in ")[1].split(" (")[0])
    assert "=> /news/n00 " in body
    db = srv.state_dir / "search.db"
    assert db.stat().st_size > 0
    assert db.stat().st_mode & 0o777 == 0o600
    # The last close folded the WAL into the file.
    assert not (srv.state_dir / "search.db-wal").exists()

    line, body = run("narrow")
    assert "(reused: digest matched)" in line, line
    assert not any("built" in x for x in index_lines(srv)), srv.log()
    assert "=> /news/n00 " in body

    (root / "news" / "n05.txt").write_text(
        "Date: 2020-02-06\nReport 5 on rivers\n\nThe river narrow and "
        "deep floods.\n", encoding="utf-8")
    (root / "news" / "n00.txt").unlink()
    line, body = run("deep")
    assert "39 articles" in line
    assert "(updated: 0 added, 1 changed, 1 removed)" in line, line
    assert "1 hit," in body and "=> /news/n05 " in body
    line, body = run("narrow")
    assert "(reused: digest matched)" in line, line
    assert "1 hit," in body and "=> /news/n05 " in body
    assert "=> /news/n00 " not in body


def test_publish_under_watch(serai_factory, tmp_path):
    """One article published under watch is found by search once the
    reload is done (only it indexed); one removed is found no more."""
    root = tmp_path / "archive"
    rivers(root, 30)
    srv = serai_factory(root=root, extra="\n[archive]\nwatch = yes\n")
    srv.start()
    assert "No article matches" in srv.gemini(
        "/search?kingfisher").body.decode("utf-8")
    (root / "news" / "bird.txt").write_text(
        "Date: 2021-05-01\nThe kingfisher\n\nA kingfisher on the "
        "river.\n", encoding="utf-8")

    def found():
        return "=> /news/bird " in srv.gemini(
            "/search?kingfisher").body.decode("utf-8")

    poll_until(found, IO_TIMEOUT * 2, "the new article in search")
    assert any("(updated: 1 added, 0 changed, 0 removed)" in x
               for x in index_lines(srv)), srv.log()
    (root / "news" / "bird.txt").unlink()
    poll_until(lambda: not found(), IO_TIMEOUT * 2,
               "the removed article gone from search")
    assert any("(updated: 0 added, 0 changed, 1 removed)" in x
               for x in index_lines(srv)), srv.log()


def test_bad_index_files(serai_factory, tmp_path):
    """A damaged index file, or one of another version, is replaced and
    built anew; a symbolic link or a FIFO in its place is left alone,
    and search runs from memory."""
    import sqlite3

    root = tmp_path / "archive"
    rivers(root, 10)
    srv = serai_factory(root=root)
    db = srv.state_dir / "search.db"

    def run(expect):
        srv.start()
        try:
            assert expect in srv.log(), srv.log()
            body = srv.gemini("/search?narrow").body.decode("utf-8")
            assert "=> /news/n00 " in body, body
        finally:
            assert srv.stop() == 0

    run("(built)")
    size = db.stat().st_size
    with open(db, "r+b") as fp:
        fp.truncate(size // 2)
    run("search.db: cut short; building a new one")
    db.write_bytes(b"garbage " * 200)
    run("search.db: not an SQLite database; building a new one")
    con = sqlite3.connect(db)
    con.execute("PRAGMA user_version = 2")
    con.commit()
    con.close()
    run("search.db: made by another version of serai; building a new one")
    # Built anew; a reload after it (the saved tree's check) may reuse
    # what was just built, never the old file's digest.
    assert "(built)" in srv.log()
    assert "(reused: digest matched)" not in srv.log()
    run("(reused: digest matched)")

    target = tmp_path / "elsewhere"
    target.write_bytes(b"not to be touched")
    for ext in ("", "-wal", "-shm"):
        p = srv.state_dir / ("search.db" + ext)
        if p.exists():
            p.unlink()
    db.symlink_to(target)
    run("search.db: a symbolic link; the search index is kept in memory")
    assert target.read_bytes() == b"not to be touched"
    assert db.is_symlink()
    db.unlink()
    os.mkfifo(db)
    run("search.db: not a regular file; the search index is kept in "
        "memory")
    assert stat.S_ISFIFO(db.lstat().st_mode)


def test_reload_under_searches(serai_factory, tmp_path):
    """Searches go on while reloads update the index: none fails or
    loses the hits that every snapshot has."""
    root = tmp_path / "archive"
    rivers(root, 50)
    srv = serai_factory(root=root)
    srv.start()
    stop = threading.Event()
    errors, answered = [], [0]

    def searcher():
        for _ in range(2000):
            if stop.is_set():
                return
            try:
                lines = gopher_lines(srv.gopher("/search\triver"))
                if not lines[1].startswith("i50 hits"):
                    errors.append(lines[:2])
                else:
                    answered[0] += 1
            except Exception as e:  # noqa: BLE001 - every failure counts
                errors.append(repr(e))

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for k in range(6):
            (root / "news" / ("extra%d.txt" % k)).write_text(
                "Date: 2021-01-%02d\nExtra %d\n\nAn otter swims.\n"
                % (k + 1, k), encoding="utf-8")
            srv.send_signal(signal.SIGHUP)
            poll_until(lambda: len(index_lines(srv)) >= k + 2,
                       IO_TIMEOUT * 2, "reload %d indexed" % k)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=IO_TIMEOUT * 4)
    assert not errors, errors[:5]
    assert answered[0] > 0
    assert "6 hits" in srv.gemini("/search?otter").body.decode("utf-8")
    assert all("(updated: 1 added, 0 changed, 0 removed)" in x
               for x in index_lines(srv)[1:]), index_lines(srv)


def result_page(srv, selector):
    """(hit selectors, snippets by hit, items by display) of a Gopher
    results page."""
    lines = gopher_lines(srv.gopher(selector))
    assert lines[-1] == "."
    hits, snippets, items = [], {}, {}
    for ln in lines[:-1]:
        fields = ln.split("\t")
        assert len(fields) == 4, ln
        display, sel = fields[0][1:], fields[1]
        if ln[0] == "0":
            hits.append(sel)
            snippets[sel] = ""
        elif ln[0] == "i" and hits and display:
            snippets[hits[-1]] += display + " "
        elif ln[0] == "i":
            if hits and not display:
                hits.append(None)  # a blank line ends a snippet
        else:
            items[display] = (ln[0], sel, fields[2], fields[3])
    hits = [h for h in hits if h is not None]
    return lines, hits, snippets, items


def test_gopher_pages(serai_factory, tmp_path):
    """A 200-hit query: every hit reachable by following "Next page",
    pages disjoint, each saying where it is, the last without "Next";
    snippets show the matched word although it stands far in."""
    root = tmp_path / "archive"
    (root / "news").mkdir(parents=True)
    filler = "The survey team walked the valley for many days before"
    for i in range(200):
        (root / "news" / ("n%03d.txt" % i)).write_text(
            "Date: 2020-%02d-%02d\nReport %d\n\n%s they found the "
            "glacier at last.\n" % (i // 28 + 1, i % 28 + 1, i, filler),
            encoding="utf-8")
    srv = serai_factory(root=root)
    srv.start()
    port = str(srv.gopher_port)
    seen, page, selector = [], 1, "/search\tglacier"
    for _ in range(25):
        lines, hits, snippets, items = result_page(srv, selector)
        assert lines[0].startswith("iSearch: glacier\t")
        assert lines[1].startswith("i200 hits, page %d of 20\t" % page)
        assert len(hits) == 10, (page, hits)
        assert not set(hits) & set(seen), "pages overlap at %d" % page
        seen += hits
        for h in hits:
            assert "glacier" in snippets[h], (h, snippets[h])
        # The way on, and home, from every page.
        assert items["New search"] == ("7", "/search", "localhost", port)
        assert items["Home"] == ("1", "/", "localhost", port)
        if page > 1:
            prev = items["Previous page"]
            assert prev[0] == "1"
            assert prev[1] == ("/search?glacier" if page == 2
                               else "/search/%d?glacier" % (page - 1))
        else:
            assert "Previous page" not in items
        if "Next page" not in items:
            break
        kind, selector, host, p = items["Next page"]
        assert (kind, host, p) == ("1", "localhost", port)
        assert selector == "/search/%d?glacier" % (page + 1)
        page += 1
    assert page == 20, "stopped at page %d" % page
    assert sorted(seen) == ["/news/n%03d" % i for i in range(200)]
    # Past the last page: no hit, a way back, no way on.
    lines, hits, _, items = result_page(srv, "/search/21?glacier")
    assert hits == [] and "Next page" not in items
    assert items["Previous page"][1] == "/search/20?glacier"
    # The page in the selector with the query after a TAB works too.
    _, hits2, _, _ = result_page(srv, "/search/2\tglacier")
    assert hits2 == seen[10:20]
    # Queries with spaces and quotes travel percent-encoded.
    _, _, _, items = result_page(srv, '/search\t"found the" glacier')
    assert (items["Next page"][1]
            == "/search/2?%22found%20the%22%20glacier")
    _, hits3, _, _ = result_page(srv, items["Next page"][1])
    assert len(hits3) == 10
    # Bad pages are errors, not results.
    for bad in ("/search/0?glacier", "/search/01?glacier",
                "/search/x?glacier", "/search/-1?glacier"):
        body = srv.gopher(bad)
        assert body.startswith(b"3"), bad
