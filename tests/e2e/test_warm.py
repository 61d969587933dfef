"""Warm starts: the persistent article pack (state_dir/articles.pack),
and the quick start from the tree saved at the last stop.

A start on the same state_dir and an unchanged tree reads no article
file and serves every page, in both protocols, byte for byte as a cold
start does; a file changed, added or removed while serai was down is read
again, appears or goes.  A damaged, foreign or misplaced pack is warned
about by name, not trusted, and the start is cold with the same pages."""

import os
import re
import shutil
import signal
import struct
import time

from conftest import fetch_pages, tree_pages

# The same public ports for every server, so pages can be compared;
# these tests are of the pack: every start walks the archive.
PORTS = "public_port = 7070\n\n[gemini]\npublic_port = 1965\n"
EXTRA = PORTS + "\n[archive]\nquick_start = no\n"
# Searches compared too: a text from the pack must be indexed alike.
SEARCHES = {"/search?river", "/search?narrow"}
LOADED = re.compile(r"archive \S+: (\d+) articles .* (\d+) read, (\d+) from "
                    r"the article pack")
# ARCHIVE_RACY_NS, or 2 s where the file system stamps whole seconds:
# files changed closer than this to a load are read again by the next.
def racy_s(path):
    return 0.05 if os.stat(path).st_mtime_ns % 10**9 else 2.0


def article(path, n, date=None, extra=""):
    path.write_text(
        "Location: Home > News\nDate: %s\nLang: en\nTags: river, %d\n"
        "Report %d on rivers%s\n\nThe river %s floods the plain.\n\n"
        "A second paragraph, long enough to wrap in a Gopher text of "
        "seventy columns, about report %d.\n\n(Editor: Ann %d)\n"
        "Copyright 2020 The Rivers\n"
        % (date or "2020-02-%02d" % (n % 28 + 1), n, n, extra,
           "wide" if n else "narrow", n, n), encoding="utf-8")


def make_tree(root, n=24):
    (root / "news").mkdir(parents=True)
    (root / "arts" / "film").mkdir(parents=True)
    for i in range(n):
        d = ("news", "arts", "arts/film")[i % 3]
        article(root / d / ("r%02d.txt" % i), i)
    # Chinese text, wrapped by the line breaking rules in Gopher.
    (root / "news" / "zh.txt").write_text(
        "Date: 2021-01-01\nLang: zh\n黄河\n\n" + "黄河水从天上来。" * 30 + "\n",
        encoding="utf-8")


def loaded(srv):
    m = LOADED.findall(srv.log())
    assert m, srv.log()
    return tuple(int(x) for x in m[-1])


def run(srv, paths):
    srv.start()
    try:
        return loaded(srv), fetch_pages(srv, paths)
    finally:
        assert srv.stop() == 0, srv.log()


def fresh_pages(serai_factory, root, paths):
    """What a cold start on its own state_dir serves."""
    fresh = serai_factory(root=root, extra=EXTRA)
    counts, got = run(fresh, paths)
    assert counts[2] == 0
    return got


def test_warm_start_reads_no_article(serai_factory, tmp_path):
    root = tmp_path / "tree"
    make_tree(root)
    time.sleep(racy_s(root / "news" / "zh.txt") + 0.1)
    srv = serai_factory(root=root, extra=EXTRA)
    paths = tree_pages(root) | SEARCHES

    cold_counts, cold = run(srv, paths)
    assert cold_counts == (25, 25, 0)
    pack = srv.state_dir / "articles.pack"
    assert pack.stat().st_mode & 0o777 == 0o600
    size = pack.stat().st_size

    warm_counts, warm = run(srv, paths)
    assert warm_counts == (25, 0, 25)
    assert warm == cold
    # Nothing changed: nothing written.
    assert pack.stat().st_size == size
    assert "articles.pack" not in srv.log(), srv.log()

    # While serai is down: one changed, one added, one removed.
    article(root / "news" / "r00.txt", 0, "2022-05-05", ", revised")
    article(root / "arts" / "new.txt", 99)
    (root / "arts" / "film" / "r02.txt").unlink()
    time.sleep(racy_s(root / "arts" / "new.txt") + 0.1)
    paths |= tree_pages(root)
    counts, got = run(srv, paths)
    assert counts == (25, 2, 23)
    want = fresh_pages(serai_factory, root, paths)
    assert got == want
    assert "revised" in got[("gemini", "/news/r00")][1].decode()
    assert got[("gemini", "/arts/film/r02")][0].startswith("51")
    assert got[("gemini", "/arts/new")][0].startswith("20")

    # And the pack written then serves the next start alone.
    counts, got = run(srv, paths)
    assert counts == (25, 0, 25)
    assert got == want


def header(data):
    """The catalog's offset and length (pack.c's struct pack_head)."""
    return struct.unpack_from("=QQ", data, 48)


def damage_kinds(data):
    cat_off, cat_len = header(data)
    return {
        "truncated": data[:len(data) // 2],
        "empty-header": data[:100],
        "header-flip": data[:60] + bytes([data[60] ^ 1]) + data[61:],
        "catalog-flip": (data[:cat_off + cat_len // 2]
                         + bytes([data[cat_off + cat_len // 2] ^ 0x40])
                         + data[cat_off + cat_len // 2 + 1:]),
        "text-flip": data[:600] + bytes([data[600] ^ 0x20]) + data[601:],
        "garbage": os.urandom(len(data)),
        "old-version": data[:8] + struct.pack("=I", 0) + data[12:],
    }


WARNINGS = {
    "truncated": "cut short",
    "empty-header": "cut short",
    "header-flip": "damaged header",
    "catalog-flip": "damaged catalog",
    "text-flip": "1 texts failed their check",
    "garbage": "not an article pack",
    "old-version": "made by another version of serai",
}


def test_damaged_pack_is_a_cold_start(serai_factory, tmp_path):
    root = tmp_path / "tree"
    make_tree(root, 12)
    time.sleep(racy_s(root / "news" / "zh.txt") + 0.1)
    srv = serai_factory(root=root, extra=EXTRA)
    paths = tree_pages(root) | SEARCHES
    _, want = run(srv, paths)
    pack = srv.state_dir / "articles.pack"
    good = pack.read_bytes()

    for kind, data in damage_kinds(good).items():
        pack.write_bytes(data)
        counts, got = run(srv, paths)
        log = srv.log()
        assert "%s: %s" % (pack, WARNINGS[kind]) in log, (kind, log)
        if kind == "text-flip":
            assert counts == (13, 1, 12), kind
        else:
            assert counts == (13, 13, 0), (kind, log)
        assert got == want, kind
        # Written anew: the next start is warm again.
        counts, _ = run(srv, {"/"})
        assert counts == (13, 0, 13), (kind, srv.log())

    # A crash while appending (texts and a catalog written, not yet the
    # header naming them): the header still names the intact catalog.
    pack.write_bytes(good + os.urandom(5000))
    counts, got = run(srv, paths)
    assert "articles.pack" not in srv.log(), srv.log()
    assert counts == (13, 0, 13)
    assert got == want

    # Not a regular file: left alone, served from memory instead.
    for kind in ("fifo", "symlink"):
        pack.unlink()
        if kind == "fifo":
            os.mkfifo(pack)
        else:
            target = tmp_path / "elsewhere"
            target.write_bytes(good)
            pack.symlink_to(target)
        counts, got = run(srv, paths)
        assert "%s: not a regular file; left alone" % pack in srv.log()
        assert counts == (13, 13, 0)
        assert got == want, kind
        if kind == "symlink":
            assert pack.is_symlink() and target.read_bytes() == good
        else:
            assert not pack.is_symlink() and not pack.is_file()
    pack.unlink()


def test_pack_of_another_archive_or_instance(serai_factory, tmp_path):
    """A pack made for another root is not used; one locked by a running
    serai on the same state_dir is not touched by a second."""
    root = tmp_path / "tree"
    make_tree(root, 6)
    other = tmp_path / "copy"
    shutil.copytree(root, other)
    time.sleep(racy_s(other / "news" / "zh.txt") + 0.1)
    a = serai_factory(root=root, extra=EXTRA)
    run(a, {"/"})
    b = serai_factory(root=other, extra=EXTRA, state_dir=a.state_dir)
    counts, got = run(b, {"/", "/news/r00"})
    assert "articles.pack: made for another archive root" in b.log()
    assert counts == (7, 7, 0)
    assert b"Report 0 on rivers" in got[("gemini", "/news/r00")][1]

    # Two at once on one state_dir: the second keeps its texts to itself.
    a.start()
    try:
        c = serai_factory(root=other, extra=EXTRA, state_dir=a.state_dir)
        c.start()
        assert "articles.pack: in use by another serai" in c.log()
        assert loaded(c) == (7, 7, 0)
        assert b"Report 0" in c.gemini("/news/r00").body
        assert c.stop() == 0
    finally:
        assert a.stop() == 0


def test_pack_growth_is_bounded(serai_factory, tmp_path):
    """Every article rewritten between starts: the texts no file has any
    more are garbage, and the pack is compacted before it exceeds the
    live texts by more than their size (and a catalog or two)."""
    root = tmp_path / "tree"
    make_tree(root, 6)
    srv = serai_factory(root=root, extra=EXTRA)
    sizes = []
    compacted = 0
    for gen in range(5):
        for i in range(6):
            d = ("news", "arts", "arts/film")[i % 3]
            article(root / d / ("r%02d.txt" % i), i,
                    extra=" (edition %d)" % gen)
        time.sleep(racy_s(root / "news" / "r00.txt") + 0.1)
        counts, got = run(srv, {"/news/r00"})
        assert counts[1] >= 6, counts
        assert ("(edition %d)" % gen).encode() in \
            got[("gemini", "/news/r00")][1]
        compacted += "articles.pack: compacted" in srv.log()
        sizes.append((srv.state_dir / "articles.pack").stat().st_size)
    assert compacted >= 1, sizes
    assert max(sizes) < 3 * sizes[0], sizes


FROM_TREE = "from the tree saved at the last stop"
CHECKED = re.compile(r"reloaded: (\d+) articles .* (\d+) read again")


def checked(srv, timeout=30):
    """The counts of the saved tree's check (a full reload), once done."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = CHECKED.findall(srv.log())
        if m:
            return tuple(int(x) for x in m[-1])
        time.sleep(0.05)
    raise AssertionError("the saved tree was not checked:\n" + srv.log())


def test_quick_start_from_the_saved_tree(serai_factory, tmp_path):
    """A clean stop saves the tree; the next start serves it without a
    walk, byte for byte as a walk would, then checks it against the disk,
    which finds what changed while serai was down.  A crash leaves no
    tree to trust; a symlink or FIFO in a tree file's place is left
    alone, and the start walks."""
    root = tmp_path / "tree"
    make_tree(root, 12)
    time.sleep(racy_s(root / "news" / "zh.txt") + 0.1)
    srv = serai_factory(root=root, extra=PORTS + "\n[archive]\nwatch = yes\n")
    tree0 = srv.state_dir / "archive.tree.0"
    paths = tree_pages(root) | SEARCHES
    _, want = run(srv, paths)
    assert "%s: saved (13 articles in 4 sections)" % tree0 in srv.log()
    assert tree0.stat().st_mode & 0o777 == 0o600

    srv.start()
    try:
        assert FROM_TREE in srv.log(), srv.log()
        assert fetch_pages(srv, paths) == want
        assert checked(srv) == (13, 0)
        # The watch, scanned by the check rather than before serving,
        # sees a publish from then on.
        assert "watching %s: 4 directories" % root in srv.log()
        article(root / "news" / "late.txt", 77)
        deadline = time.monotonic() + 10
        while (b"Report 77" not in srv.gemini("/news/late").body
               and time.monotonic() < deadline):
            time.sleep(0.05)
        assert b"Report 77" in srv.gemini("/news/late").body, srv.log()
    finally:
        assert srv.stop() == 0, srv.log()
    # Changed (a publish), and its text not in the pack: not saved.
    assert "not saved: 1 articles are not in the article pack" in srv.log()
    counts, _ = run(srv, {"/"})  # a walk, which packs it, then a save
    assert FROM_TREE not in srv.log() and counts == (14, 1, 13)

    # While serai is down: one changed, one added, one removed.
    article(root / "news" / "r00.txt", 0, "2022-05-05", ", revised")
    article(root / "arts" / "new.txt", 99)
    (root / "arts" / "film" / "r02.txt").unlink()
    time.sleep(racy_s(root / "arts" / "new.txt") + 0.1)
    paths |= tree_pages(root)
    srv.start()
    try:
        assert FROM_TREE in srv.log(), srv.log()
        assert checked(srv) == (14, 2)
        got = fetch_pages(srv, paths)
    finally:
        assert srv.stop() == 0, srv.log()
    assert "not saved: 2 articles are not in the article pack" in srv.log()
    assert got == fresh_pages(serai_factory, root, paths)
    assert got[("gemini", "/arts/film/r02")][0].startswith("51")
    counts, again = run(srv, paths)  # a walk, which packs them
    assert FROM_TREE not in srv.log() and counts == (14, 2, 12)
    assert again == got

    # A crash: the tree was marked used as it was loaded.
    srv.start()
    assert FROM_TREE in srv.log(), srv.log()
    assert srv.stop(signal.SIGKILL) == -signal.SIGKILL
    srv.exit_codes.pop()
    counts, _ = run(srv, {"/"})
    assert FROM_TREE not in srv.log() and counts == (14, 0, 14)

    # Not a regular file: left alone, and nothing saved or loaded.
    target = tmp_path / "elsewhere"
    target.write_bytes(b"keep")
    for kind in ("symlink", "fifo"):
        for f in srv.state_dir.glob("archive.tree.*"):
            f.unlink()
        if kind == "fifo":
            os.mkfifo(tree0)
        else:
            tree0.symlink_to(target)
        run(srv, {"/"})
        counts, got2 = run(srv, {"/"})
        assert "%s: not a regular file" % tree0 in srv.log()
        assert FROM_TREE not in srv.log() and counts == (14, 0, 14)
        assert got2[("gemini", "/")] == got[("gemini", "/")]
    assert tree0.is_symlink() is False and target.read_bytes() == b"keep"
