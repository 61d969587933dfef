"""The archive on disk: bad files are skipped, SIGHUP reloads."""

import signal

from conftest import (GEMINI_OK, IO_TIMEOUT, assert_failed_cleanly,
                      gopher_lines, poll_until, run_serai)

RELOAD_TIMEOUT = IO_TIMEOUT * 2


def add_bad_files(root):
    """Files the loader must skip, each with a reason."""
    news = root / "news"
    bad = {
        news / "broken-utf8.txt": b"Broken title\n\nA bad byte: \xff\xfe.\n",
        news / "control.txt": b"Control title\n\nAn escape \x1b[31m.\n",
        news / "notes.md": b"Notes\n\nNot an article: wrong extension.\n",
        news / "README": b"No extension at all.\n",
    }
    for path, data in bad.items():
        path.write_bytes(data)
    return sorted(bad)


def test_bad_files_are_skipped_and_named(serai_factory, content_copy, seed):
    bad = add_bad_files(content_copy)
    srv = serai_factory(root=content_copy)
    srv.start()

    resp = srv.gemini("/news/beijing-declaration")
    assert resp.status_line == GEMINI_OK
    assert "# " + seed.title in resp.body.decode("utf-8")
    menu = gopher_lines(srv.gopher("/news/"))
    articles = [ln for ln in menu if ln.startswith("0") and
                "/feed.xml\t" not in ln]
    assert len(articles) == 1, menu

    log = srv.log()
    for path in bad:
        lines = [ln for ln in log.splitlines() if str(path) in ln]
        assert lines, "%s not named in:\n%s" % (path, log)
        assert any("skipped" in ln for ln in lines), lines
        assert srv.gemini("/news/" + path.stem).status_line.startswith("51")
    assert "%d skipped" % len(bad) in log


def test_check_fails_on_bad_files(serai_factory, content_copy):
    bad = add_bad_files(content_copy)
    srv = serai_factory(root=content_copy)
    proc = run_serai("-n", "-c", srv.config, cwd=srv.workdir)
    assert_failed_cleanly(proc)
    for path in bad:
        assert str(path) in proc.stderr, proc.stderr


def test_sighup_reloads(serai_factory, content_copy):
    srv = serai_factory(root=content_copy)
    srv.start()
    assert srv.gemini("/news/added").status_line.startswith("51")

    (content_copy / "news" / "added.txt").write_text(
        "Title of added\n\nBody.\n", encoding="utf-8")
    srv.send_signal(signal.SIGHUP)

    def added():
        return srv.gemini("/news/added").status_line == GEMINI_OK

    poll_until(added, RELOAD_TIMEOUT, "/news/added after SIGHUP")
    assert srv.running, "SIGHUP ended the server:\n" + srv.log()
    resp = srv.gemini("/news/added")
    text = resp.body.decode("utf-8")
    assert text.startswith("# Title of added\n")
    assert "Body." in text.split("\n")

    page = srv.gemini("/news/").body.decode("utf-8").split("\n")
    assert "=> /news/added Title of added" in page
    menu = gopher_lines(srv.gopher("/news/"))
    assert "0Title of added\t/news/added\tlocalhost\t%d" % (
        srv.gopher_port) in menu
    # The old article is still there.
    assert srv.gemini("/news/beijing-declaration").status_line == GEMINI_OK
    assert "reloaded" in srv.log()


def test_sighup_drops_removed_articles(serai_factory, content_copy):
    srv = serai_factory(root=content_copy)
    srv.start()
    assert srv.gemini("/news/beijing-declaration").status_line == GEMINI_OK
    (content_copy / "news" / "beijing-declaration.txt").unlink()
    srv.send_signal(signal.SIGHUP)

    def gone():
        return srv.gemini(
            "/news/beijing-declaration").status_line.startswith("51")

    poll_until(gone, RELOAD_TIMEOUT, "the removed article to go")
    page = srv.gemini("/news/").body.decode("utf-8")
    assert "beijing-declaration" not in page
    assert "This section is empty." in page


def test_sighup_keeps_the_old_archive_when_the_root_is_gone(
        serai_factory, content_copy, seed):
    srv = serai_factory(root=content_copy)
    srv.start()
    content_copy.rename(content_copy.with_name("moved-away"))
    srv.send_signal(signal.SIGHUP)
    poll_until(lambda: "still serving the old archive" in srv.log(),
               RELOAD_TIMEOUT, "the failed reload to be logged")
    resp = srv.gemini("/news/beijing-declaration")
    assert resp.status_line == GEMINI_OK
    assert resp.body.decode("utf-8").startswith("# " + seed.title)
