"""Incremental reloads: after each kind of change, the reloaded server
answers every page, Gemini and Gopher, byte for byte as a fresh serai
started on the same tree does; and only what changed is read again."""

import os
import re
import signal
import time
from pathlib import Path

import pytest

from conftest import IO_TIMEOUT, fetch_pages, poll_until, tree_pages

# The same public ports for both servers, so their pages can be compared.
EXTRA = "public_port = 7070\n\n[gemini]\npublic_port = 1965\n"
RELOAD_TIMEOUT = IO_TIMEOUT * 2
# ARCHIVE_RACY_NS: files changed this close to a load are read again by
# the next one rather than trusted by their stamp (2 s where the file
# system stamps whole seconds).
def racy_s(root):
    return 0.05 if os.stat(root / "top.txt").st_mtime_ns % 10**9 else 2.0
RELOADED = re.compile(r"reloaded: (\d+) articles .* (\d+) read again, "
                      r"(\d+) directories listed")
WATCH = "\n[archive]\nwatch = yes\n"


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


def reloads(srv):
    return RELOADED.findall(srv.log())


def reload_and_wait(srv):
    before = len(reloads(srv))
    srv.send_signal(signal.SIGHUP)
    poll_until(lambda: len(reloads(srv)) > before, RELOAD_TIMEOUT,
               "the reload")
    return reloads(srv)[-1]


def differences(want, srv):
    have = fetch_pages(srv, want_paths(want))
    return [k for k in want if want[k] != have[k]]


def want_paths(want):
    return {p for (_, p) in want}


@pytest.mark.parametrize("how", ["sighup", "watch"])
def test_each_change_reloads_as_a_fresh_start(serai_factory, tmp_path, how):
    root = tmp_path / "tree"
    make_tree(root)
    srv = serai_factory(root=root, extra=EXTRA + (WATCH if how == "watch"
                                                  else ""))
    srv.start()
    # Once every file is older than the margin, a reload trusts stamps;
    # SIGHUP's reload also leaves the watch with nothing pending.
    time.sleep(racy_s(root) + 0.2)
    assert reload_and_wait(srv)[0] == "5"
    seen = tree_pages(root)

    def check(what, read=None):
        """srv serves what a fresh serai on the tree serves; read: the
        files and directories the (last) reload read, if known."""
        nonlocal seen
        before = len(reloads(srv))
        if how == "sighup":
            reload_and_wait(srv)
        seen |= tree_pages(root)
        fresh = serai_factory(root=root, extra=EXTRA)
        fresh.start()
        want = fetch_pages(fresh, seen)
        fresh.stop()
        if how == "watch":
            poll_until(lambda: len(reloads(srv)) > before
                       and not differences(want, srv), RELOAD_TIMEOUT,
                       "the watch to reload " + what)
        bad = differences(want, srv)
        assert not bad, (what, bad[:5])
        if read is not None:
            assert reloads(srv)[-1][1:] == read, (what, reloads(srv)[-1])

    article(root / "news" / "b.txt", "2021-06-01", "News B, now newest")
    # Rewritten in place: SIGHUP stats every file of the four
    # directories; the watch names the one directory to list.
    check("a change", ("1", "4") if how == "sighup" else ("1", "1"))
    article(root / "sport" / "new.txt", "2022-01-01", "Sport new")
    check("an addition")
    (root / "news" / "a.txt").unlink()
    check("a removal")
    (root / "sport" / "s.txt").rename(root / "sport" / "renamed.txt")
    check("a rename")
    (root / "arts").mkdir()
    article(root / "arts" / "x.txt", "2018-05-05", "Arts X")
    check("a section added")
    (root / "news" / "world" / "w.txt").unlink()
    (root / "news" / "world").rmdir()
    check("a section removed")
    (root / "sport" / "section.ini").write_text(
        "[section]\ntitle = Games\nlang = fr\n")
    check("section.ini edited")
    (root / "news").rename(root / "headlines")
    check("a section renamed")
    # The last text read at start replaced: the start's pack segment is
    # dropped (unmapped, its blocks punched out), inside the sandbox.
    article(root / "top.txt", "2019-12-31", "Top, revised")
    check("the last first text replaced")
    assert srv.running, srv.log()
    print("pages compared per step: %d, in both protocols" % len(seen))


def test_first_publish_after_start_reads_only_its_directory(serai_factory,
                                                          tmp_path):
    """The watch is set before the start's load: the first publish after
    a start lists its one directory, as every later one does, instead of
    a full rescan of a tree the watch could not vouch for."""
    root = tmp_path / "tree"
    make_tree(root)
    # Every file older than the margin: none is read again for being racy.
    time.sleep(racy_s(root) + 0.2)
    srv = serai_factory(root=root, extra=EXTRA + WATCH)
    srv.start()
    assert not reloads(srv)
    article(root / "sport" / "first.txt", "2022-02-02", "Sport first")
    poll_until(lambda: reloads(srv), RELOAD_TIMEOUT, "the watch's reload")
    assert reloads(srv)[0][1:] == ("1", "1"), reloads(srv)
    assert "Sport first" in srv.gemini("/sport/").body.decode()


def test_watch_queue_overflow_rescans_everything(serai_factory, tmp_path):
    """Events lost to a full inotify queue: the change they carried is
    still found, by a reload that stats every file."""
    root = tmp_path / "tree"
    make_tree(root)
    srv = serai_factory(root=root, extra=EXTRA + WATCH)
    srv.start()
    time.sleep(racy_s(root) + 0.2)
    reload_and_wait(srv)
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    srv.send_signal(signal.SIGSTOP)
    try:
        # Alternating names: the kernel merges only repeats of the
        # last event.  Then a change whose event is dropped.
        a, b = root / "news" / "a.txt", root / "news" / "b.txt"
        for i in range(limit // 2 + 2):
            os.utime(a)
            os.utime(b)
        article(root / "sport" / "s.txt", "2020-01-04", "Sport S, lost")
    finally:
        srv.send_signal(signal.SIGCONT)
    poll_until(lambda: "Sport S, lost" in srv.gemini("/sport/s").body.decode(),
               RELOAD_TIMEOUT, "the change whose event was lost")
    assert reloads(srv)[-1][2] == "4", reloads(srv)[-1]
