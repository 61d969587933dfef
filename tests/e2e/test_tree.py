"""A careless operator's tree: FIFOs, symlinks out of the root, symlinked
directories that double at every level.  Each is an attack on the loader
(a hang, a file served from outside the root, an exponential load); each
must be skipped with a warning naming it while the rest is served."""

import os
import signal
import time

from conftest import (GEMINI_OK, IO_TIMEOUT, RUN_TIMEOUT, STOP_TIMEOUT,
                      assert_failed_cleanly, gopher_lines, poll_until,
                      run_serai)

RELOAD_TIMEOUT = IO_TIMEOUT * 2
WATCH = "\n[archive]\nwatch = yes\n"


def fifos(root):
    """A FIFO as a section.ini and one as an article: opening either
    for reading blocks until a writer comes, which none ever does."""
    ini = root / "news" / "section.ini"
    if ini.exists():
        ini.unlink()
    os.mkfifo(ini)
    art = root / "news" / "pipe.txt"
    os.mkfifo(art)
    return ini, art


def skipped_lines(log, path):
    return [ln for ln in log.splitlines()
            if str(path) in ln and "skipped" in ln]


def test_fifos_at_start_are_skipped(serai_factory, content_copy):
    ini, art = fifos(content_copy)
    srv = serai_factory(root=content_copy)
    srv.start()
    assert srv.gemini("/news/beijing-declaration").status_line == GEMINI_OK
    assert srv.gemini("/news/pipe").status_line.startswith("51")
    log = srv.log()
    assert any("not a regular file" in ln
               for ln in skipped_lines(log, ini)), log
    assert skipped_lines(log, art), log
    # SIGTERM is heard: nothing is stuck in an open().
    t0 = time.monotonic()
    assert srv.stop() == 0
    assert time.monotonic() - t0 < STOP_TIMEOUT


def test_fifos_with_check(serai_factory, content_copy):
    ini, art = fifos(content_copy)
    srv = serai_factory(root=content_copy)
    # run_serai's timeout would fail the test if -n hung on the FIFO.
    proc = run_serai("-n", "-c", srv.config, cwd=srv.workdir,
                     timeout=RUN_TIMEOUT)
    assert_failed_cleanly(proc)
    assert skipped_lines(proc.stderr, ini), proc.stderr
    assert skipped_lines(proc.stderr, art), proc.stderr
    assert "the archive has problems" in proc.stderr


def test_fifo_on_sighup_reload(serai_factory, content_copy):
    srv = serai_factory(root=content_copy)
    srv.start()
    ini, art = fifos(content_copy)
    (content_copy / "news" / "after.txt").write_text(
        "After the FIFOs\n\nBody.\n", encoding="utf-8")
    srv.send_signal(signal.SIGHUP)
    poll_until(lambda: srv.gemini("/news/after").status_line == GEMINI_OK,
               RELOAD_TIMEOUT, "the reload past the FIFOs")
    assert skipped_lines(srv.log(), ini), srv.log()
    assert srv.stop() == 0


def test_fifo_created_under_watch(serai_factory, content_copy):
    srv = serai_factory(root=content_copy, extra=WATCH)
    srv.start()
    ini, art = fifos(content_copy)
    poll_until(lambda: "reloaded:" in srv.log(), RELOAD_TIMEOUT,
               "the reload the FIFOs caused")
    poll_until(lambda: skipped_lines(srv.log(), ini), RELOAD_TIMEOUT,
               "the FIFO section.ini named")
    # Still serving, and a later change is still seen.
    assert srv.gemini("/").status_line == GEMINI_OK
    (content_copy / "news" / "later.txt").write_text(
        "Later\n\nBody.\n", encoding="utf-8")
    poll_until(lambda: srv.gemini("/news/later").status_line == GEMINI_OK,
               RELOAD_TIMEOUT, "a change after the FIFOs")
    t0 = time.monotonic()
    assert srv.stop() == 0
    assert time.monotonic() - t0 < STOP_TIMEOUT


def test_section_ini_symlink_out_of_the_root(serai_factory, content_copy,
                                             tmp_path):
    secret = tmp_path / "outside.ini"
    secret.write_text("[section]\ntitle = Secret Outside Title\n",
                      encoding="utf-8")
    ini = content_copy / "news" / "section.ini"
    if ini.exists():
        ini.unlink()
    ini.symlink_to(secret)
    srv = serai_factory(root=content_copy)
    proc = run_serai("-n", "-c", srv.config, cwd=srv.workdir)
    assert_failed_cleanly(proc)
    assert any("symlink leads outside the archive root" in ln
               for ln in skipped_lines(proc.stderr, ini)), proc.stderr
    srv.start()
    assert "Secret Outside Title" not in srv.gemini("/").body.decode()
    menu = "\n".join(gopher_lines(srv.gopher("/")))
    assert "Secret Outside Title" not in menu
    assert skipped_lines(srv.log(), ini), srv.log()
    # A symlink inside the root is still followed, as for articles.
    own = content_copy / "news.ini"
    own.write_text("[section]\ntitle = Inside Title\n", encoding="utf-8")
    ini.unlink()
    ini.symlink_to(own)
    srv.send_signal(signal.SIGHUP)
    poll_until(lambda: "Inside Title" in srv.gemini("/").body.decode(),
               RELOAD_TIMEOUT, "the inside symlink's title")


DAG_DEPTH = 16


def test_symlinked_directory_dag_loads_each_directory_once(
        serai_factory, tmp_path):
    """d0/{a,b} -> d1, d1/{a,b} -> d2, ... : 2^16 paths to d16, 17
    directories.  Each loads once, at its real path; every other path is
    one warning."""
    root = tmp_path / "dag"
    root.mkdir()
    for i in range(DAG_DEPTH + 1):
        d = root / ("d%d" % i)
        d.mkdir()
        (d / ("art%d.txt" % i)).write_text(
            "Article %d\n\nBody.\n" % i, encoding="utf-8")
        if i > 0:
            for link in ("a", "b"):
                (root / ("d%d" % (i - 1)) / link).symlink_to(d)
    srv = serai_factory(root=root)
    proc = run_serai("-n", "-c", srv.config, cwd=srv.workdir)
    assert_failed_cleanly(proc)
    assert "%d articles in %d sections" % (DAG_DEPTH + 1, DAG_DEPTH + 2) in (
        proc.stderr), proc.stderr
    dup = [ln for ln in proc.stderr.splitlines()
           if "the same directory as" in ln]
    assert len(dup) == 2 * DAG_DEPTH, proc.stderr
    srv.start()
    assert srv.gemini("/d%d/art%d" % (DAG_DEPTH, DAG_DEPTH)).status_line == (
        GEMINI_OK)
    # The real path wins over a symlink reached first.
    assert srv.gemini("/d0/a/").status_line.startswith("51")


def test_directory_loop_is_one_warning(serai_factory, content_copy):
    (content_copy / "news" / "loop").symlink_to(content_copy)
    srv = serai_factory(root=content_copy)
    proc = run_serai("-n", "-c", srv.config, cwd=srv.workdir)
    assert_failed_cleanly(proc)
    lines = skipped_lines(proc.stderr, content_copy / "news" / "loop")
    assert len(lines) == 1 and "the same directory as /," in lines[0], (
        proc.stderr)


BUILTIN_ROBOTS = "User-agent: *\nDisallow: /search\n"


def robots(srv):
    resp = srv.gemini("/robots.txt")
    assert resp.status_line == "20 text/plain; charset=utf-8"
    return resp.body.decode("utf-8")


def test_own_robots_txt_replaces_the_built_in(serai_factory, content_copy):
    srv = serai_factory(root=content_copy)
    srv.start()
    assert robots(srv).endswith(BUILTIN_ROBOTS)
    assert "archiver, indexer, researcher" in robots(srv)

    own = "User-agent: archiver\nDisallow: /\n\nUser-agent: *\nDisallow:\n"
    (content_copy / "robots.txt").write_text(own, encoding="utf-8")
    srv.send_signal(signal.SIGHUP)
    poll_until(lambda: robots(srv) == own, RELOAD_TIMEOUT,
               "the archive's own robots.txt")
    # It is not an article, and nothing was skipped for it.
    assert srv.gemini("/robots").status_line.startswith("51")
    assert not skipped_lines(srv.log(), content_copy / "robots.txt")

    # Gone again: the built-in one is back.
    (content_copy / "robots.txt").unlink()
    srv.send_signal(signal.SIGHUP)
    poll_until(lambda: robots(srv).endswith(BUILTIN_ROBOTS), RELOAD_TIMEOUT,
               "the built-in robots.txt")


def test_bad_robots_txt_is_skipped(serai_factory, content_copy, tmp_path):
    outside = tmp_path / "outside-robots.txt"
    outside.write_text("User-agent: *\nDisallow: /secret-outside\n")
    path = content_copy / "robots.txt"
    srv = serai_factory(root=content_copy)
    for make, why in [
            (lambda: os.mkfifo(path), "not a regular file"),
            (lambda: path.symlink_to(outside),
             "symlink leads outside the archive root"),
            (lambda: path.write_bytes(b"#" * (64 * 1024 + 1)),
             "file too large"),
            (lambda: path.write_bytes(b"User-agent: \xff\n"),
             "not UTF-8 text")]:
        if path.exists() or path.is_symlink():
            path.unlink()
        make()
        proc = run_serai("-n", "-c", srv.config, cwd=srv.workdir)
        assert_failed_cleanly(proc)
        assert any(why in ln for ln in skipped_lines(proc.stderr, path)), (
            why, proc.stderr)
    # The last one served: the built-in answer stands in for it.
    srv.start()
    assert robots(srv).endswith(BUILTIN_ROBOTS)


def test_search_index_fifo_is_refused(serai_factory, tmp_path):
    """state_dir/search.db as a FIFO: opened, it would block the start
    for good, and the stop."""
    state = tmp_path / "state"
    state.mkdir()
    os.mkfifo(state / "search.db")
    srv = serai_factory(state_dir=state)
    srv.start()
    assert "search.db: not a regular file" in srv.log(), srv.log()
    assert srv.gemini("/search?declaration").status_line.startswith("20")
    t0 = time.monotonic()
    assert srv.stop() == 0
    assert time.monotonic() - t0 < STOP_TIMEOUT
