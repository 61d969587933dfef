"""Privilege drop, chroot and the logs an operator points elsewhere.

CI runs as root, which these tests need to start serai as root; started
as another user, serai must refuse [server] user and chroot instead, and
that is checked by running it under setpriv as nobody.
"""

import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import stat
import subprocess

from conftest import (CONTENT, GEMINI_OK, IO_TIMEOUT, RUN_TIMEOUT, SANITIZED,
                      Server, gopher_fetch, poll_until, port_open,
                      require_tool, run_serai, serai_command, serving,
                      thread_status)

NOBODY = pwd.getpwnam("nobody")


def require_root():
    assert os.geteuid() == 0, "these tests start serai as root (CI does)"


def ids(pid):
    """The real, effective, saved and filesystem uid and gid of every
    thread of pid."""
    return {(key,) + tuple(fields[key].split())
            for fields in thread_status(pid).values()
            for key in ("Uid", "Gid")}


def public_archive(public_dir):
    root = public_dir / "content"
    shutil.copytree(CONTENT, root)
    for p in [root] + list(root.rglob("*")):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return root


def add_article(root, name, title):
    p = root / "news" / (name + ".txt")
    p.write_text(title + "\n\nBody.\n", encoding="utf-8")
    p.chmod(0o644)


def renew_pair(cert, key, workdir, owner):
    """A new self-signed pair (mode 0600, owner's) put in place of cert
    and key (or made there), as a renewal would."""
    workdir.mkdir()
    ncert, nkey = workdir / "c.pem", workdir / "k.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-subj", "/CN=localhost", "-days", "1",
                    "-keyout", str(nkey), "-out", str(ncert)],
                   check=True, capture_output=True, timeout=RUN_TIMEOUT)
    for new, old in ((ncert, cert), (nkey, key)):
        os.chown(new, owner.pw_uid, owner.pw_gid)
        new.chmod(0o600)
        new.replace(old)


def rewritten(srv, old, new):
    """srv with old replaced by new in its configuration, kept across
    start() (which would write the template again)."""
    text = srv.config.read_text()
    assert old in text, old
    srv.config.write_text(text.replace(old, new, 1))
    srv.write_config = lambda: srv.config
    return srv


def test_drop_to_user_serves_and_reloads(public_dir):
    require_root()
    root = public_archive(public_dir)
    srv = rewritten(Server(public_dir / "srv", root=root), "user = root",
                    "user = nobody")
    with serving(srv):
        for kind, real, eff, saved, fs in ids(srv.proc.pid):
            want = NOBODY.pw_uid if kind == "Uid" else NOBODY.pw_gid
            assert {int(real), int(eff), int(saved), int(fs)} == {want}
        assert "serving as nobody" in srv.log()
        assert srv.gemini("/").status_line == GEMINI_OK
        # The generated pair is root's, in a directory only root enters:
        # a renewal needs a restart, and the start says so.
        assert re.search(r"localhost\.key: not readable as nobody: "
                         r"SIGHUP cannot load a renewed pair", srv.log())
        # Reloads read the archive as nobody.
        add_article(root, "added", "Added after the drop")
        srv.send_signal(signal.SIGHUP)
        poll_until(lambda: srv.gemini("/news/added").status_line ==
                   GEMINI_OK, IO_TIMEOUT, "the reload")


def test_root_without_user_serves_as_nobody(public_dir):
    require_root()
    root = public_archive(public_dir)
    srv = rewritten(Server(public_dir / "srv", root=root), "user = root\n",
                    "")
    with serving(srv):
        uid = str(NOBODY.pw_uid)
        assert ("Uid", uid, uid, uid, uid) in ids(srv.proc.pid)
        assert "serving as nobody" in srv.log()
        assert gopher_fetch("/", port=srv.gopher_port).endswith(b".\r\n")


def test_chroot_serves_and_reloads_inside(public_dir, monkeypatch):
    require_root()
    if SANITIZED:
        # LeakSanitizer reads /proc at exit, out of reach in the chroot;
        # the valgrind pass checks this run for leaks instead.
        monkeypatch.setenv("ASAN_OPTIONS", os.environ.get(
            "ASAN_OPTIONS", "") + ":detect_leaks=0")
    root = public_archive(public_dir)
    logs = public_dir / "logs"
    logs.mkdir(mode=0o755)
    os.chown(logs, NOBODY.pw_uid, NOBODY.pw_gid)
    log = logs / "access.log"
    tls = public_dir / "tls"
    tls.mkdir(mode=0o755)
    cert, key = tls / "cert.pem", tls / "key.pem"
    renew_pair(cert, key, public_dir / "first", NOBODY)
    srv = rewritten(Server(public_dir / "srv", root=root), "user = root\n",
                    "user = nobody\nchroot = %s\naccess_log = %s\n"
                    % (public_dir, log))
    rewritten(srv, "\n[gemini]\n", "\n[gemini]\ncert = %s\nkey = %s\n"
              % (cert, key))
    with serving(srv):
        assert os.readlink("/proc/%d/root" % srv.proc.pid) == str(public_dir)
        assert srv.gemini("/news/").status_line == GEMINI_OK
        # The log's directory is inside the chroot: rotation works there.
        log.rename(logs / "access.log.1")
        srv.send_signal(signal.SIGUSR1)
        poll_until(lambda: "access log reopened" in srv.log(), IO_TIMEOUT,
                   "the reopen inside the chroot")
        srv.gopher("/caps.txt")
        poll_until(lambda: log.exists() and "/caps.txt" in log.read_text(),
                   IO_TIMEOUT, "a line in the new file")
        add_article(root, "inside", "Added inside the chroot")
        # The pair is read again from inside the chroot, by the path it
        # has there.
        before = srv.gemini("/").cert_der
        renew_pair(cert, key, public_dir / "new", NOBODY)
        srv.send_signal(signal.SIGHUP)
        poll_until(lambda: srv.gemini("/news/inside").status_line ==
                   GEMINI_OK, IO_TIMEOUT, "the reload inside the chroot")
        poll_until(lambda: "certificates loaded" in srv.log(), IO_TIMEOUT,
                   "the certificate reload")
        assert "certificates loaded: 1 of 1" in srv.log(), srv.log()
        after = srv.gemini("/").cert_der
        assert after != before, "the renewed certificate is not served"
        assert after == ssl.PEM_cert_to_DER_cert(cert.read_text())


def test_chroot_must_hold_the_archive(tmp_path, public_dir):
    require_root()
    srv = Server(tmp_path / "srv")  # the archive is the source tree's
    text = srv.config.read_text().replace(
        "user = root\n", "user = nobody\nchroot = %s\n" % public_dir)
    srv.config.write_text(text)
    proc = run_serai("-n", "-c", srv.config)
    assert proc.returncode == 1
    assert "outside [server] chroot" in proc.stderr


def test_chroot_with_user_root_is_refused(public_dir):
    """Root can leave a chroot: the pair is refused by -n and at start,
    named by the chroot's line, instead of dying after binding."""
    require_root()
    root = public_archive(public_dir)
    srv = Server(public_dir / "srv", root=root)
    srv.config.write_text(srv.config.read_text().replace(
        "user = root\n", "user = root\nchroot = %s\n" % public_dir))
    line = srv.config.read_text().splitlines().index(
        "chroot = %s" % public_dir) + 1
    for args in (["-n"], []):
        proc = run_serai(*args, "-c", srv.config)
        assert proc.returncode == 1, proc.stderr
        assert ("%s:%d: [server] chroot: refused with user = root"
                % (srv.config, line)) in proc.stderr, proc.stderr
        assert "listening" not in proc.stderr


def test_unknown_user_is_an_error(tmp_path):
    require_root()
    srv = Server(tmp_path / "srv")
    srv.config.write_text(srv.config.read_text().replace(
        "user = root", "user = no-such-user-here"))
    proc = run_serai("-n", "-c", srv.config)
    assert proc.returncode == 1
    line = srv.config.read_text().splitlines().index(
        "user = no-such-user-here") + 1
    # Named by file and line, as every other configuration error.
    assert ("%s:%d: [server] user: no such user 'no-such-user-here'"
            % (srv.config, line)) in proc.stderr, proc.stderr


def test_user_needs_root(public_dir):
    require_root()
    conf = public_dir / "serai.ini"
    conf.write_text("[server]\nuser = nobody\n[archive]\nroot = %s\n"
                    % CONTENT)
    conf.chmod(0o644)
    proc = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        + serai_command("-n", "-c", str(conf)),
        capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert proc.returncode == 1, proc.stderr
    assert "[server] user: needs serai started as root" in proc.stderr


def test_access_log_file_and_sigusr1_reopen(tmp_path):
    log = tmp_path / "access.log"
    srv = rewritten(Server(tmp_path / "srv"), "[server]\n",
                    "[server]\naccess_log = %s\n" % log)
    with serving(srv):
        srv.gemini("/")
        srv.gopher("/news/")
        poll_until(lambda: log.exists() and
                   len(log.read_text().splitlines()) >= 2,
                   IO_TIMEOUT, "two access lines")
        lines = log.read_text().splitlines()
        # Two workers: each writes its line when its connection ends, so
        # the gopher line may come first.
        assert sorted(line.split()[2] for line in lines) == [
            "gemini", "gopher"]
        assert not any(line.startswith("serai:") for line in lines)
        assert stat.S_IMODE(log.stat().st_mode) == 0o640
        # Requests no longer go to stderr.
        assert not srv.access_lines()
        # logrotate: move the file away, SIGUSR1, and a new one starts.
        log.rename(tmp_path / "access.log.1")
        srv.send_signal(signal.SIGUSR1)
        poll_until(lambda: "access log reopened" in srv.log(), IO_TIMEOUT,
                   "the reopen")
        srv.gopher("/")
        poll_until(lambda: log.exists() and log.read_text().strip(),
                   IO_TIMEOUT, "a line in the new file")
        assert '"/"' in log.read_text()
        assert len((tmp_path / "access.log.1").read_text().splitlines()) == 2


def served_lines(path):
    return path.read_text().splitlines() if path.exists() else []


def test_access_log_rotation_after_the_drop(public_dir):
    """The log's directory is root's, below one only root may search:
    the server, as nobody, still reopens the log there, relative to the
    directory it opened as root (a path would not get past the parent).
    It cannot create a file there: the rotation must (logrotate's
    create), and until then the old file keeps every line."""
    require_root()
    root = public_archive(public_dir)
    private = public_dir / "root-only"
    private.mkdir(mode=0o700)
    logs = private / "logs"
    logs.mkdir(mode=0o755)
    log = logs / "access.log"
    srv = rewritten(Server(public_dir / "srv", root=root), "user = root\n",
                    "user = nobody\naccess_log = %s\n" % log)
    with serving(srv):
        assert "serving as nobody" in srv.log()
        srv.gopher("/")
        poll_until(lambda: len(served_lines(log)) == 1, IO_TIMEOUT,
                   "the first line")
        assert log.stat().st_uid == 0

        # mv, SIGUSR1: nobody may not create the file; nothing is lost.
        old = logs / "access.log.1"
        log.rename(old)
        srv.send_signal(signal.SIGUSR1)
        poll_until(lambda: "cannot reopen the access log" in srv.log(),
                   IO_TIMEOUT, "the refused reopen")
        srv.gopher("/news/")
        poll_until(lambda: len(served_lines(old)) == 2, IO_TIMEOUT,
                   "the line in the old file")
        assert not log.exists()

        # The rotation creates it for nobody: the next SIGUSR1 takes it.
        log.touch(mode=0o640)
        os.chown(log, NOBODY.pw_uid, NOBODY.pw_gid)
        srv.send_signal(signal.SIGUSR1)
        poll_until(lambda: "access log reopened" in srv.log(), IO_TIMEOUT,
                   "the reopen")
        srv.gopher("/caps.txt")
        poll_until(lambda: len(served_lines(log)) == 1, IO_TIMEOUT,
                   "the line in the new file")
        assert '"/caps.txt"' in served_lines(log)[0]
        assert len(served_lines(old)) == 2


def test_access_log_created_again_where_the_user_may(public_dir):
    """In a directory the serving user owns, SIGUSR1 after mv creates
    the new file, as nobody; a symlink put in its place is refused."""
    require_root()
    root = public_archive(public_dir)
    logs = public_dir / "logs"
    logs.mkdir(mode=0o755)
    os.chown(logs, NOBODY.pw_uid, NOBODY.pw_gid)
    log = logs / "access.log"
    srv = rewritten(Server(public_dir / "srv", root=root), "user = root\n",
                    "user = nobody\naccess_log = %s\n" % log)
    with serving(srv):
        srv.gopher("/")
        poll_until(lambda: len(served_lines(log)) == 1, IO_TIMEOUT,
                   "the first line")
        log.rename(logs / "access.log.1")
        srv.send_signal(signal.SIGUSR1)
        poll_until(lambda: "access log reopened" in srv.log(), IO_TIMEOUT,
                   "the reopen")
        srv.gopher("/news/")
        poll_until(lambda: len(served_lines(log)) == 1, IO_TIMEOUT,
                   "the line in the new file")
        assert log.stat().st_uid == NOBODY.pw_uid
        assert stat.S_IMODE(log.stat().st_mode) == 0o640

        # Whoever can write the directory plants a symlink: not followed.
        target = public_dir / "target"
        target.write_text("")
        # Writable by nobody: only O_NOFOLLOW keeps the line out of it.
        os.chown(target, NOBODY.pw_uid, NOBODY.pw_gid)
        log.rename(logs / "access.log.2")
        log.symlink_to(target)
        srv.send_signal(signal.SIGUSR1)
        poll_until(lambda: "cannot reopen the access log" in srv.log(),
                   IO_TIMEOUT, "the refused reopen")
        srv.gopher("/caps.txt")
        poll_until(lambda: len(served_lines(logs / "access.log.2")) == 2,
                   IO_TIMEOUT, "the line in the file still open")
        assert target.read_text() == ""


def test_access_log_symlink_refused_at_start(tmp_path):
    target = tmp_path / "target"
    target.write_text("")
    log = tmp_path / "access.log"
    log.symlink_to(target)
    srv = Server(tmp_path / "srv")
    srv.config.write_text(srv.config.read_text().replace(
        "[server]\n", "[server]\naccess_log = %s\n" % log, 1))
    proc = run_serai("-n", "-c", srv.config)
    assert proc.returncode == 1, proc.stderr
    assert "%s:2: [server] access_log: %s" % (srv.config, log) in (
        proc.stderr), proc.stderr
    assert target.read_text() == ""


def test_bad_log_settings_are_errors(tmp_path):
    srv = Server(tmp_path / "srv")
    for line, words in [
            ("error_log = /var/log/x", "want stderr or syslog"),
            ("access_log = %s/no/such/dir/a.log" % tmp_path, "access_log")]:
        srv.config.write_text(srv.config.read_text().replace(
            "[server]\n", "[server]\n%s\n" % line, 1))
        proc = run_serai("-n", "-c", srv.config)
        assert proc.returncode == 1, proc.stderr
        assert words in proc.stderr
        srv.config.write_text(srv.config.read_text().replace(
            "%s\n" % line, ""))


def test_syslog_destinations(tmp_path):
    """error_log and access_log = syslog, caught on a private /dev/log.

    In a mount namespace of its own, serai's /dev is a directory of ours
    holding /dev/null and a datagram socket as /dev/log; nothing outside
    the namespace changes.
    """
    require_root()
    require_tool("unshare")
    dev = tmp_path / "dev"
    dev.mkdir()
    (dev / "null").touch()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(dev / "log"))
    sock.settimeout(IO_TIMEOUT)
    srv = Server(tmp_path / "srv")
    text = srv.config.read_text().replace(
        "[server]\n", "[server]\nerror_log = syslog\naccess_log = syslog\n",
        1)
    srv.config.write_text(text)
    inner = ("mount --bind /dev/null %s/null && mount --bind %s /dev && "
             "exec \"$@\"" % (dev, dev))
    proc = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         inner, "sh"] + serai_command("-c", str(srv.config)),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        got = []

        def seen(word):
            while not any(word in m for m in got):
                got.append(sock.recv(65536).decode("utf-8", "replace"))
            return True

        assert seen("ready")
        poll_until(lambda: port_open(srv.gemini_port), IO_TIMEOUT,
                   "the gemini port")
        assert srv.gemini("/").status_line == GEMINI_OK
        assert seen('gemini "gemini://localhost:%d/" 20'
                    % srv.gemini_port)
        # syslog lines: "<priority>timestamp serai[pid]: message".
        access = [m for m in got if '" 20 ' in m][0]
        assert access.startswith("<30>")  # daemon.info
        assert re.search(r"serai\[\d+\]: ", access)
        assert [m for m in got if "ready" in m][0].startswith("<28>")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=RUN_TIMEOUT * 3)
        sock.close()
    assert proc.returncode == 0, err
    # Nothing went to stderr: both logs were syslog.
    assert b"ready" not in err and b'" 20 ' not in err
