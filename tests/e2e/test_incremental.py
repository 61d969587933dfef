"""Incremental reloads: after each kind of change, the reloaded server
answers every page, Gemini and Gopher, byte for byte as a fresh serai
started on the same tree does; and only what changed is read again."""

import re
import signal
import time

from conftest import IO_TIMEOUT, poll_until

# The same public ports for both servers, so their pages can be compared.
EXTRA = "public_port = 7070\n\n[gemini]\npublic_port = 1965\n"
RELOAD_TIMEOUT = IO_TIMEOUT * 2
# ARCHIVE_RACY_NS: files changed this close to a load are read again by
# the next one rather than trusted by their stamp.
RACY_S = 2.0
RELOADED = re.compile(r"reloaded: (\d+) articles .* (\d+) read again")


def article(path, date, title, body="The body."):
    path.write_text("Date: %s\n%s\n\n%s\n" % (date, title, body),
                    encoding="utf-8")


def make_tree(root):
    for d in ("news/world", "sport"):
        (root / d).mkdir(parents=True)
    (root / "section.ini").write_text("[section]\ntitle = Archive\n")
    (root / "sport" / "section.ini").write_text("[section]\ntitle = Sport\n")
    article(root / "news" / "a.txt", "2020-01-01", "News A")
    article(root / "news" / "b.txt", "2020-01-02", "News B")
    article(root / "news" / "world" / "w.txt", "2020-01-03", "World W")
    article(root / "sport" / "s.txt", "2020-01-04", "Sport S")
    article(root / "top.txt", "2019-12-31", "Top")


def pages(root):
    """Every page the tree has: sections, their feeds, articles."""
    out = set()
    for d in [root] + sorted(p for p in root.rglob("*") if p.is_dir()):
        rel = d.relative_to(root).as_posix()
        sec = "/" if rel == "." else "/%s/" % rel
        out |= {sec, sec + "feed.xml"}
        out |= {sec + f.stem for f in d.glob("*.txt")}
    return out


def fetch_all(srv, paths):
    got = {}
    for p in sorted(paths):
        r = srv.gemini(p)
        got[("gemini", p)] = (r.status_line, r.body)
        got[("gopher", p)] = srv.gopher(p)
    return got


def reload_and_wait(srv):
    before = len(RELOADED.findall(srv.log()))
    srv.send_signal(signal.SIGHUP)
    poll_until(lambda: len(RELOADED.findall(srv.log())) > before,
               RELOAD_TIMEOUT, "the reload")
    return RELOADED.findall(srv.log())[-1]


def test_each_change_reloads_as_a_fresh_start(serai_factory, tmp_path):
    root = tmp_path / "tree"
    make_tree(root)
    srv = serai_factory(root=root, extra=EXTRA)
    srv.start()
    # Once every file is older than the margin, a reload trusts stamps.
    time.sleep(RACY_S + 0.2)
    assert reload_and_wait(srv) == ("5", "5")
    seen = pages(root)

    def check(what, read):
        nonlocal seen
        got = reload_and_wait(srv)
        seen |= pages(root)
        fresh = serai_factory(root=root, extra=EXTRA)
        fresh.start()
        want = fetch_all(fresh, seen)
        fresh.stop()
        have = fetch_all(srv, seen)
        bad = [k for k in want if want[k] != have[k]]
        assert not bad, (what, bad[:5], [(want[k], have[k])
                                        for k in bad[:2]])
        if read is not None:
            assert int(got[1]) == read, (what, got)

    article(root / "news" / "b.txt", "2021-06-01", "News B, now newest")
    check("a change", 1)
    article(root / "sport" / "new.txt", "2022-01-01", "Sport new")
    check("an addition", None)
    (root / "news" / "a.txt").unlink()
    check("a removal", None)
    (root / "sport" / "s.txt").rename(root / "sport" / "renamed.txt")
    check("a rename", None)
    (root / "arts").mkdir()
    article(root / "arts" / "x.txt", "2018-05-05", "Arts X")
    check("a section added", None)
    (root / "news" / "world" / "w.txt").unlink()
    (root / "news" / "world").rmdir()
    check("a section removed", None)
    (root / "sport" / "section.ini").write_text(
        "[section]\ntitle = Games\nlang = fr\n")
    check("section.ini edited", None)
    (root / "news").rename(root / "headlines")
    check("a section renamed", None)
    assert srv.running, srv.log()
    print("pages compared per step: %d, in both protocols" % len(seen))
