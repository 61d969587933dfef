"""Reloads: [archive] watch = yes (inotify) and SIGHUP under load."""

import shutil
import signal
import subprocess
import threading
import time

from conftest import (GEMINI_OK, IO_TIMEOUT, SLOW, gemini_fetch,
                      gopher_fetch, poll_until)

WATCH = "\n[archive]\nwatch = yes\n"
# A change is served after the 300 ms of quiet and one load; valgrind
# makes the load 20-50 times slower.
RELOAD_TIMEOUT = IO_TIMEOUT * 2
# Longer than the debounce, many times over: what "nothing happened" waits.
SETTLE = 1.5 * SLOW


def article(path, title):
    path.write_text("%s\n\nBody of %s.\n" % (title, title), encoding="utf-8")


def status(srv, path):
    return srv.gemini(path).status_line


def served(srv, path):
    return lambda: status(srv, path) == GEMINI_OK


def missing(srv, path):
    return lambda: status(srv, path).startswith("51")


def reloads(srv):
    return sum("reloaded:" in ln for ln in srv.log().splitlines())


def test_watch_follows_adds_deletes_and_new_sections(
        serai_factory, content_copy):
    srv = serai_factory(root=content_copy, extra=WATCH)
    srv.start()
    assert "watching %s" % content_copy in srv.log()
    assert missing(srv, "/news/watched")()

    # No signal: the watcher alone notices.
    article(content_copy / "news" / "watched.txt", "Watched title")
    poll_until(served(srv, "/news/watched"), RELOAD_TIMEOUT,
               "/news/watched without a signal")
    text = srv.gemini("/news/watched").body.decode("utf-8")
    assert text.startswith("# Watched title\n")
    assert "archive changed: reloading" in srv.log()

    (content_copy / "news" / "watched.txt").unlink()
    poll_until(missing(srv, "/news/watched"), RELOAD_TIMEOUT,
               "/news/watched to go")

    # A new directory is a section at once; an article written into it
    # later is seen only if the directory got a watch of its own.
    sub = content_copy / "news" / "fresh"
    sub.mkdir()
    poll_until(served(srv, "/news/fresh/"), RELOAD_TIMEOUT,
               "the new section /news/fresh/")
    deeper = sub / "deeper"
    deeper.mkdir()
    poll_until(served(srv, "/news/fresh/deeper/"), RELOAD_TIMEOUT,
               "the new section /news/fresh/deeper/")
    article(deeper / "inside.txt", "Inside title")
    poll_until(served(srv, "/news/fresh/deeper/inside"), RELOAD_TIMEOUT,
               "an article in a directory made after the start")

    # A removed section loses its watch without trouble.
    shutil.rmtree(sub)
    poll_until(missing(srv, "/news/fresh/"), RELOAD_TIMEOUT,
               "/news/fresh/ to go")
    assert srv.running, srv.log()


def test_watch_burst_is_one_reload(serai_factory, content_copy, tmp_path):
    srv = serai_factory(root=content_copy, extra=WATCH)
    srv.start()
    stage = tmp_path / "stage" / "burst"
    stage.mkdir(parents=True)
    for i in range(50):
        article(stage / ("burst-%02d.txt" % i), "Burst %02d" % i)
    before = reloads(srv)

    subprocess.run(["cp", "-r", str(stage), str(content_copy / "news")],
                   check=True, timeout=IO_TIMEOUT)

    for i in (0, 49):
        poll_until(served(srv, "/news/burst/burst-%02d" % i),
                   RELOAD_TIMEOUT, "burst-%02d" % i)
    for i in range(50):
        assert status(srv, "/news/burst/burst-%02d" % i) == GEMINI_OK, i
    # Any reload still to come would come within the debounce.
    time.sleep(SETTLE)
    n = reloads(srv) - before
    print("reloads for a burst of 50 files: %d" % n)
    assert 1 <= n <= 3, srv.log()


def test_watch_rsync_temporaries_are_ignored(serai_factory, content_copy):
    srv = serai_factory(root=content_copy, extra=WATCH)
    srv.start()
    tmp = content_copy / "news" / ".rsync-tmp.txt.XXXXXX"
    article(tmp, "Hidden title")
    time.sleep(SETTLE)
    assert reloads(srv) == 0, srv.log()
    # Renamed into place: that is the change.
    tmp.rename(content_copy / "news" / "landed.txt")
    poll_until(served(srv, "/news/landed"), RELOAD_TIMEOUT, "/news/landed")


def test_no_watch_by_default(serai_factory, content_copy):
    srv = serai_factory(root=content_copy)
    srv.start()
    assert "watching" not in srv.log()
    article(content_copy / "news" / "unseen.txt", "Unseen title")
    time.sleep(SETTLE)
    assert missing(srv, "/news/unseen")()
    assert reloads(srv) == 0
    srv.send_signal(signal.SIGHUP)
    poll_until(served(srv, "/news/unseen"), RELOAD_TIMEOUT,
               "/news/unseen after SIGHUP")


def test_watch_keeps_the_old_archive_when_the_root_goes(
        serai_factory, content_copy, seed):
    srv = serai_factory(root=content_copy, extra=WATCH)
    srv.start()
    away = content_copy.with_name("moved-away")
    content_copy.rename(away)
    poll_until(lambda: "still serving the old archive" in srv.log(),
               RELOAD_TIMEOUT, "the watcher's failed reload to be logged")
    resp = srv.gemini("/news/beijing-declaration")
    assert resp.status_line == GEMINI_OK
    assert resp.body.decode("utf-8").startswith("# " + seed.title)
    assert srv.gopher("/news/").endswith(b".\r\n")

    # Back under its name (the root's parent is watched for that), with
    # an article more: served again without a signal.
    article(away / "news" / "returned.txt", "Returned title")
    away.rename(content_copy)
    poll_until(served(srv, "/news/returned"), RELOAD_TIMEOUT,
               "the archive to come back")
    # And the tree is watched again.
    article(content_copy / "news" / "after.txt", "After title")
    poll_until(served(srv, "/news/after"), RELOAD_TIMEOUT, "/news/after")


def _client(srv, stop, results, errors, limit):
    """Fetches Gemini and Gopher pages in turn until stop or limit."""
    pages = ["/", "/news/", "/news/beijing-declaration"]
    n = 0
    while not stop.is_set() and n < limit:
        page = pages[n % len(pages)]
        proto = "gemini" if n % 2 == 0 else "gopher"
        n += 1
        try:
            if proto == "gemini":
                resp = gemini_fetch(
                    "gemini://localhost:%d%s" % (srv.gemini_port, page),
                    port=srv.gemini_port)
                ok = (resp.status_line.startswith("20 ")
                      and resp.close_notify and len(resp.body) > 0)
                what = (resp.status_line, resp.close_notify,
                        len(resp.body))
            else:
                body = gopher_fetch(page, port=srv.gopher_port)
                if page.endswith("/"):
                    ok = body.endswith(b".\r\n") and b"\n3" not in body
                else:
                    ok = len(body) > 0 and not body.startswith(b"3")
                what = body[-40:]
            if ok:
                results[proto] += 1
            else:
                errors.append((proto, page, what))
        except Exception as e:  # every failure is counted, none hidden
            errors.append((proto, page, repr(e)))


def test_reloads_under_a_stream_of_requests(serai_factory, content_copy):
    srv = serai_factory(root=content_copy, extra=WATCH)
    srv.start()
    stop = threading.Event()
    results = [{"gemini": 0, "gopher": 0} for _ in range(2)]
    errors = []
    # Bounded by the ten reloads' time (some 3 s) or 1500 requests each.
    threads = [threading.Thread(target=_client,
                                args=(srv, stop, results[i], errors, 1500))
               for i in range(2)]
    start = time.monotonic()
    for t in threads:
        t.start()
    try:
        for i in range(10):
            path = content_copy / "news" / ("stream-%d.txt" % i)
            article(path, "Stream %d" % i)
            if i % 3 == 2:
                (content_copy / "news" / ("stream-%d.txt" % (i - 1))
                 ).unlink()
            srv.send_signal(signal.SIGHUP)
            time.sleep(0.3 * SLOW)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=IO_TIMEOUT * 4)
    assert not any(t.is_alive() for t in threads)
    total = {p: sum(r[p] for r in results) for p in ("gemini", "gopher")}
    print("stream during 10 SIGHUPs: %d Gemini, %d Gopher answers, "
          "%d errors in %.1f s" % (total["gemini"], total["gopher"],
                                    len(errors), time.monotonic() - start))
    assert not errors, errors[:10]
    assert total["gemini"] > 0 and total["gopher"] > 0
    poll_until(served(srv, "/news/stream-9"), RELOAD_TIMEOUT,
               "the last stream article")
    assert reloads(srv) >= 1
    assert srv.running, srv.log()
