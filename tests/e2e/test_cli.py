"""Command line and configuration errors: serai stops early, and says why."""

import re

import pytest

from conftest import SOURCE_ROOT, Server, assert_failed_cleanly, run_serai


def write(tmp_path, text, name="bad.ini"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("text, line, words", [
    ("[server]\nfoo = 1\n", 2, ["foo", "unknown key"]),
    ("[server]\nhostname = localhost\n\n[bogus]\nx = 1\n", 4,
     ["bogus", "unknown section"]),
    ("[gemini]\nlisten = 127.0.0.1\n", 2, ["listen", "127.0.0.1"]),
    ("[gopher]\nlisten = 127.0.0.1:99999\n", 2, ["listen", "65535"]),
    ("[gopher]\nlisten = 127.0.0.1:7070,,127.0.0.1:7071\n", 2, ["listen"]),
    ("[gopher]\nlisten = ::1:7070\n", 2, ["listen", "[addr]:port"]),
    ("[server]\nworkers = many\n", 2, ["workers", "many"]),
    ("[server]\nworkers = 1\nworkers = 2\n", 3, ["workers", "line 2"]),
    ("[gopher]\nwrap = 5\n", 2, ["wrap"]),
    ("[server]\nhostname = bad host\n", 2, ["hostname"]),
    ("[archive]\nlang = en_GB!\n", 2, ["lang"]),
    ("hostname = localhost\n", 1, ["hostname"]),
    # Two listeners on one address and port, whatever workers is: the
    # later key's line, and both named.
    ("[server]\nworkers = 1\n[gemini]\nlisten = 127.0.0.1:7000\n"
     "[gopher]\nlisten = *:7000\n", 6,
     ["[gopher] listen: '*:7000'", "[gemini] listen '127.0.0.1:7000' "
      "(line 4)"]),
    ("[server]\nworkers = 4\n[gemini]\nlisten = *:7000\n"
     "[gopher]\nlisten = 127.0.0.1:7000\n", 6,
     ["[gopher] listen: '127.0.0.1:7000'", "[gemini] listen '*:7000'"]),
    ("[gopher]\nlisten = 127.0.0.1:7001, 127.0.0.1:7001\n", 2,
     ["[gopher] listen: '127.0.0.1:7001'", "(line 2)"]),
    ("[gemini]\nlisten = [::1]:7070\n", 2,
     ["[gemini] listen: '[::1]:7070'", "[gopher] listen '*:7070' "
      "(its default)"]),
])
def test_bad_config_is_refused(tmp_path, text, line, words):
    path = write(tmp_path, text)
    proc = run_serai("-c", path, cwd=tmp_path)
    assert_failed_cleanly(proc)
    assert "%s:%d:" % (path, line) in proc.stderr, proc.stderr
    for w in words:
        assert w in proc.stderr, proc.stderr


def test_check_refuses_shared_listener(tmp_path):
    # -n says so too (it once said OK when workers > 1).
    srv = Server(tmp_path / "srv")
    text = srv.config.read_text().replace(
        "listen = 127.0.0.1:%d\n" % srv.gopher_port,
        "listen = 127.0.0.1:%d\n" % srv.gemini_port)
    srv.config.write_text(text)
    proc = run_serai("-n", "-c", srv.config, cwd=srv.workdir)
    assert_failed_cleanly(proc)
    assert "is the same address and port" in proc.stderr, proc.stderr
    assert "configuration OK" not in proc.stderr


def test_cert_without_key_is_refused(tmp_path):
    path = write(tmp_path, "[gemini]\ncert = /nonexistent.crt\n")
    proc = run_serai("-c", path, cwd=tmp_path)
    assert_failed_cleanly(proc)
    assert str(path) in proc.stderr
    assert "key" in proc.stderr


def test_missing_config_file(tmp_path):
    path = tmp_path / "absent.ini"
    proc = run_serai("-c", path, cwd=tmp_path)
    assert_failed_cleanly(proc)
    assert str(path) in proc.stderr


def test_missing_archive_root(tmp_path):
    srv = Server(tmp_path / "srv", root=tmp_path / "no-such-dir")
    proc = run_serai("-n", "-c", srv.config, cwd=srv.workdir)
    assert_failed_cleanly(proc)
    assert str(tmp_path / "no-such-dir") in proc.stderr
    line = srv.config.read_text().splitlines().index(
        "root = %s" % (tmp_path / "no-such-dir")) + 1
    assert "%s:%d: [archive] root: " % (srv.config, line) in proc.stderr, (
        proc.stderr)


def test_long_comment_and_header_junk(tmp_path):
    # A comment of any length is fine; text after a header is not.
    srv = Server(tmp_path / "srv")
    text = srv.config.read_text()
    srv.config.write_text("; " + "x" * 5000 + "\n" + text)
    proc = run_serai("-n", "-c", srv.config, cwd=srv.workdir)
    assert proc.returncode == 0, proc.stderr
    srv.config.write_text(text.replace("[archive]\n", "[archive]junk\n"))
    proc = run_serai("-n", "-c", srv.config, cwd=srv.workdir)
    assert_failed_cleanly(proc)
    line = text.splitlines().index("[archive]") + 1
    assert "%s:%d: text after the section header" % (srv.config, line) in (
        proc.stderr), proc.stderr


def test_check_good_config(tmp_path):
    srv = Server(tmp_path / "srv")
    proc = run_serai("-n", "-c", srv.config, cwd=srv.workdir)
    assert proc.returncode == 0, proc.stderr
    assert "configuration OK" in proc.stderr
    # A check neither listens nor makes a certificate.
    assert "listening" not in proc.stderr
    assert not srv.cert_path.exists()


def test_check_sample_config(tmp_path):
    # conf/serai.ini as shipped, run where its ./content resolves.
    proc = run_serai("-n", "-c", SOURCE_ROOT / "conf" / "serai.ini",
                     cwd=SOURCE_ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "configuration OK" in proc.stderr


def test_version():
    proc = run_serai("-V")
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(r"serai \d+\.\d+\.\d+\n", proc.stdout), proc.stdout


def test_help():
    proc = run_serai("-h")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: serai")
    assert "-c file" in proc.stdout
    assert "-n" in proc.stdout and "-V" in proc.stdout


@pytest.mark.parametrize("args", [["-x"], ["extra-argument"], ["-c"]])
def test_bad_arguments(args):
    proc = run_serai(*args)
    assert_failed_cleanly(proc)
    assert "usage: serai" in proc.stderr
