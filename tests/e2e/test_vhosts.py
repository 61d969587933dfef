"""Virtual hosts: [host NAME] sections, many archives on one Gemini port.

Each host presents its own certificate by SNI, serves only its own
archive, search and feed, and answers 53 for a URL naming another host
(or one it does not have).  Gopher has no host in its requests, so each
host names its own Gopher port.  A broken archive in one host, or a
certificate that fails to load, leaves everything else as it was.
"""

import re
import signal
import socket
import ssl
import subprocess
import time

import pytest

from conftest import (IO_TIMEOUT, RUN_AS, SANDBOX, STARTUP_TIMEOUT, Server,
                      assert_failed_cleanly, client_context, free_ports,
                      gemini_fetch, gopher_fetch, poll_until, recv_to_end,
                      require_tool, run_serai, serving)

A, B = "a.test", "b.test"


def make_archive(root, word, title):
    """A one-article archive whose article carries a word no other has."""
    (root / "news").mkdir(parents=True)
    (root / "section.ini").write_text(
        "[section]\ntitle = %s\n" % title, encoding="utf-8")
    (root / "news" / "story.txt").write_text(
        "Story of %s\n\nThis article talks about %s and nothing else.\n"
        % (word, word), encoding="utf-8")


def make_pair(directory, name):
    """A self-signed P-256 pair for name; the certificate's DER."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / (name + ".crt"), directory / (name + ".key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
         "/CN=" + name, "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=IO_TIMEOUT)
    return cert, key


class VhostServer(Server):
    """serai with [host] sections; hosts: (name, root, extra lines)."""

    def __init__(self, workdir, hosts, gopher_hosts=()):
        self.hosts = hosts
        self.gopher_hosts = gopher_hosts
        self.gopher_ports = {}
        super().__init__(workdir)

    def write_config(self):
        if self.gemini_port is None:
            ports = free_ports(1 + max(1, len(self.gopher_hosts)))
            self.gemini_port = ports[0]
            self.gopher_ports = dict(zip(self.gopher_hosts, ports[1:]))
            # The harness waits for these two to open.
            self.gopher_port = ports[1]
        text = ("[server]\nstate_dir = %s\nworkers = 2\n%s\n"
                "[gemini]\nlisten = 127.0.0.1:%d\n\n"
                "[limits]\nrate = 100000\nburst = 100000\n"
                % (self.state_dir, RUN_AS + SANDBOX, self.gemini_port))
        for name, root, extra in self.hosts:
            text += "\n[host %s]\nroot = %s\n%s" % (name, root, extra)
            if name in self.gopher_ports:
                text += "gopher = 127.0.0.1:%d\n" % self.gopher_ports[name]
        if not self.gopher_hosts:
            # Nothing listens there: the harness's wait is for Gemini.
            self.gopher_port = self.gemini_port
        self.config.write_text(text, encoding="utf-8")
        return self.config

    def start(self):
        super().start()
        # Every host's index, not just the first, before any search.
        poll_until(lambda: self.log().count("search index:")
                   + self.log().count("search disabled")
                   >= len(self.hosts),
                   STARTUP_TIMEOUT, "every host's search index")
        return self


def fetch(srv, url, sni, ctx=None):
    return gemini_fetch(url, port=srv.gemini_port, sni=sni, ctx=ctx)


def url(srv, host, path="/"):
    return "gemini://%s:%d%s" % (host, srv.gemini_port, path)


def cert_cn(der):
    """The subject CN of a DER certificate, through openssl x509."""
    proc = subprocess.run(
        ["openssl", "x509", "-inform", "DER", "-noout", "-subject"],
        input=der, capture_output=True, timeout=IO_TIMEOUT, check=True)
    m = re.search(rb"CN\s*=\s*([^,\s/]+)", proc.stdout)
    assert m, proc.stdout
    return m.group(1).decode()


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    base = tmp_path_factory.mktemp("vhosts")
    make_archive(base / "ra", "aardvark", "Archive A")
    make_archive(base / "rb", "bumblebee", "Archive B")
    cert, key = make_pair(base / "certs", B)
    srv = VhostServer(base / "srv", [
        (A, base / "ra", "title = Archive A\n"),
        (B, base / "rb", "aliases = www.b.test, B2.test\ncert = %s\n"
         "key = %s\n" % (cert, key)),
    ], gopher_hosts=(A, B))
    srv.base = base
    with serving(srv):
        yield srv


def test_each_host_presents_its_certificate_by_sni(two):
    for sni in (A, B, "www.b.test"):
        r = fetch(two, url(two, sni), sni)
        assert r.status_line.startswith("20 "), r.status_line
        assert cert_cn(r.cert_der) == (A if sni == A else B)
    # openssl s_client, as a second client.
    require_tool("openssl")
    for sni in (A, B):
        proc = subprocess.run(
            ["openssl", "s_client", "-connect",
             "127.0.0.1:%d" % two.gemini_port, "-servername", sni],
            input=b"", capture_output=True, timeout=IO_TIMEOUT)
        assert re.search(rb"subject=\s*CN\s*=\s*" + re.escape(sni.encode()),
                         proc.stdout), proc.stdout[-400:]


def test_each_host_serves_only_its_archive(two):
    home_a = fetch(two, url(two, A), A).body.decode()
    home_b = fetch(two, url(two, B), B).body.decode()
    assert "Archive A" in home_a and "Archive B" not in home_a
    assert "Archive B" in home_b and "Archive A" not in home_b
    story = fetch(two, url(two, B, "/news/story"), B)
    assert "bumblebee" in story.body.decode()
    assert "aardvark" not in story.body.decode()


def test_search_and_feed_are_per_host(two):
    hit = fetch(two, url(two, A, "/search?aardvark"), A).body.decode()
    miss = fetch(two, url(two, A, "/search?bumblebee"), A).body.decode()
    assert "Story of aardvark" in hit
    assert "Story of bumblebee" not in miss
    hit = fetch(two, url(two, B, "/search?bumblebee"), B).body.decode()
    assert "Story of bumblebee" in hit
    # Each host keeps its own index (both archives have /news/story).
    for name in (A, B):
        assert (two.state_dir / name / "search.db").is_file(), name
    assert not (two.state_dir / "search.db").exists()
    feed = fetch(two, url(two, B, "/feed.xml"), B)
    assert feed.status_line.startswith("20 "), feed.status_line
    text = feed.body.decode()
    assert "gemini://%s:%d/" % (B, two.gemini_port) in text
    assert A not in text


def test_mismatched_or_unknown_host_is_53(two):
    # A URL naming the other host on this host's connection.
    assert fetch(two, url(two, B), A).status_line.startswith("53 ")
    assert fetch(two, url(two, A), B).status_line.startswith("53 ")
    # A host we do not serve, by URL or by SNI.
    assert fetch(two, url(two, "c.test"), A).status_line.startswith("53 ")
    r = fetch(two, url(two, "c.test"), "c.test")
    assert r.status_line.startswith("53 "), r.status_line
    r = fetch(two, url(two, A), "c.test")
    assert r.status_line.startswith("53 "), r.status_line


def test_no_sni_gets_the_default_host(two):
    r = fetch(two, url(two, A), None)
    assert r.status_line.startswith("20 "), r.status_line
    assert "Archive A" in r.body.decode()
    assert cert_cn(r.cert_der) == A
    assert fetch(two, url(two, B), None).status_line.startswith("53 ")


def test_aliases_reach_their_host(two):
    for sni, host in (("www.b.test", "www.b.test"), (B, "b2.test"),
                      ("B2.TEST", "www.b.test")):
        r = fetch(two, url(two, host), sni)
        assert r.status_line.startswith("20 "), (sni, host, r.status_line)
        assert "Archive B" in r.body.decode()


def test_gopher_per_port(two):
    for name, title in ((A, "Archive A"), (B, "Archive B")):
        body = gopher_fetch("", port=two.gopher_ports[name]).decode()
        assert title in body
        # Menus carry the host's own name and port.
        assert "\t%s\t%d" % (name, two.gopher_ports[name]) in body
        other = B if name == A else A
        assert "\t%s\t" % other not in body


def test_gophers_per_port_takes_that_hosts_certificate(two):
    """Gopher over TLS on B's port: B's certificate and B's menu, even
    when the client's SNI names A (a Gopher port has one host)."""
    for sni in (B, A):
        ctx = client_context()
        deadline = time.monotonic() + IO_TIMEOUT
        with socket.create_connection(
                ("127.0.0.1", two.gopher_ports[B]), timeout=IO_TIMEOUT) as raw:
            with ctx.wrap_socket(raw, server_hostname=sni) as tls:
                der = tls.getpeercert(binary_form=True)
                tls.sendall(b"\r\n")
                body, _ = recv_to_end(tls, deadline)
        assert cert_cn(der) == B, sni
        assert "Archive B" in body.decode(), sni
        assert "Archive A" not in body.decode(), sni


def test_access_log_names_the_host(two):
    fetch(two, url(two, B, "/?logged"), B)
    fetch(two, url(two, "c.test", "/?logged"), "c.test")
    gopher_fetch("/?logged", port=two.gopher_ports[A])

    def lines():
        return [m for m in two.access_lines() if "logged" in m["request"]]
    got = poll_until(lambda: len(lines()) >= 3 and lines(), IO_TIMEOUT,
                     "three access lines")
    hosts = {(m["proto"], m["host"]) for m in got}
    assert hosts == {("gemini", B), ("gemini", "-"), ("gopher", A)}, hosts


def session_fetch(srv, sni, ctx, session=None):
    """One request; (its session, whether it resumed one)."""
    with socket.create_connection(("127.0.0.1", srv.gemini_port),
                                  timeout=IO_TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname=sni,
                             session=session) as tls:
            tls.sendall(url(srv, sni).encode() + b"\r\n")
            data, _ = recv_to_end(tls, time.monotonic() + IO_TIMEOUT)
            assert data.startswith(b"20 "), data[:80]
            return tls.session, tls.session_reused


def test_a_ticket_does_not_resume_on_another_host(two):
    ctx = client_context()
    session, _ = session_fetch(two, A, ctx)
    # The control: on its own host the ticket resumes.
    session, reused = session_fetch(two, A, ctx, session)
    assert reused, "no resumption at all: the test proves nothing"
    _, reused = session_fetch(two, B, ctx, session)
    assert not reused, "host A's ticket resumed on host B"
    # And the other way round, TLS 1.2 too.
    ctx12 = client_context(maximum=ssl.TLSVersion.TLSv1_2)
    session, _ = session_fetch(two, B, ctx12)
    _, reused = session_fetch(two, B, ctx12, session)
    assert reused
    _, reused = session_fetch(two, A, ctx12, session)
    assert not reused, "host B's TLS 1.2 ticket resumed on host A"


def test_ten_hosts_on_one_port(tmp_path):
    names = ["h%d.test" % i for i in range(10)]
    hosts = []
    for i, name in enumerate(names):
        make_archive(tmp_path / name, "word%d" % i, "Archive %d" % i)
        hosts.append((name, tmp_path / name, ""))
    srv = VhostServer(tmp_path / "srv", hosts)
    with serving(srv):
        for i, name in enumerate(names):
            r = fetch(srv, url(srv, name), name)
            assert r.status_line.startswith("20 "), (name, r.status_line)
            assert "Archive %d" % i in r.body.decode()
            assert cert_cn(r.cert_der) == name
            # Its certificate is stable: kept in state_dir as NAME.crt.
            assert (srv.state_dir / (name + ".crt")).is_file()
            hit = fetch(srv, url(srv, name, "/search?word%d" % i), name)
            assert "Story of word%d" % i in hit.body.decode()
        # The other hosts' words are nowhere in h0's index.
        miss = fetch(srv, url(srv, names[0], "/search?word9"), names[0])
        assert "Story of" not in miss.body.decode()
        # Generated certificates are kept: the same ones after a restart.
        before = [fetch(srv, url(srv, n), n).cert_der for n in names[::9]]
        srv.stop()
        srv.start()
        after = [fetch(srv, url(srv, n), n).cert_der for n in names[::9]]
        assert before == after


def test_sighup_reloads_certificates_and_each_archive_alone(tmp_path):
    make_archive(tmp_path / "ra", "aardvark", "Archive A")
    make_archive(tmp_path / "rb", "bumblebee", "Archive B")
    certs = tmp_path / "certs"
    cert, key = make_pair(certs, B)
    srv = VhostServer(tmp_path / "srv", [
        (A, tmp_path / "ra", ""),
        (B, tmp_path / "rb", "cert = %s\nkey = %s\n" % (cert, key)),
    ])
    with serving(srv):
        before = fetch(srv, url(srv, B), B).cert_der
        a_before = fetch(srv, url(srv, A), A).cert_der
        # Renewed in place, as certbot or an ACME client would: a new pair.
        (tmp_path / "new").mkdir()
        ncert, nkey = make_pair(tmp_path / "new", B)
        ncert.replace(cert)
        nkey.replace(key)
        # And host A's archive broken meanwhile: its root is gone.
        (tmp_path / "ra").rename(tmp_path / "ra.away")
        (tmp_path / "rb" / "news" / "late.txt").write_text(
            "A late story\n\nIt came after the start.\n", encoding="utf-8")
        srv.send_signal(signal.SIGHUP)
        poll_until(lambda: "certificates loaded" in srv.log(), IO_TIMEOUT,
                   "the certificate reload")
        after = fetch(srv, url(srv, B), B)
        assert after.cert_der != before, "the old certificate is still served"
        assert after.cert_der == ssl.PEM_cert_to_DER_cert(
            cert.read_text())
        # A's failure kept A's old archive and did not stop B's reload.
        assert "[host a.test]" in srv.log() and "still serving the old " \
            "archive" in srv.log()
        home_a = fetch(srv, url(srv, A), A)
        assert "Archive A" in home_a.body.decode()
        assert home_a.cert_der == a_before
        b_news = fetch(srv, url(srv, B, "/news/"), B).body.decode()
        assert "A late story" in b_news

        # A pair that fails to load keeps the old one, and says why.
        cert.write_text("not a certificate\n")
        srv.send_signal(signal.SIGHUP)
        poll_until(lambda: srv.log().count("certificates loaded") >= 2,
                   IO_TIMEOUT, "the second reload")
        assert re.search(r"\[host b\.test\] certificate: .*still serving "
                         r"the old one", srv.log()), srv.log()[-2000:]
        assert fetch(srv, url(srv, B), B).cert_der == after.cert_der
        # A FIFO in its place must not hang the reload (non-blocking).
        cert.unlink()
        subprocess.run(["mkfifo", str(cert)], check=True)
        srv.send_signal(signal.SIGHUP)
        poll_until(lambda: srv.log().count("certificates loaded") >= 3,
                   IO_TIMEOUT, "the reload past a FIFO")
        assert "not a regular file" in srv.log()
        assert fetch(srv, url(srv, B), B).cert_der == after.cert_der
        # A generated pair is state_dir's own: a symbolic link planted
        # there (to a pair the attacker holds) is refused.
        a_crt = srv.state_dir / (A + ".crt")
        a_key = srv.state_dir / (A + ".key")
        for path, target in ((a_crt, ncert), (a_key, nkey)):
            path.unlink()
            path.symlink_to(target)
        srv.send_signal(signal.SIGHUP)
        poll_until(lambda: srv.log().count("certificates loaded") >= 4,
                   IO_TIMEOUT, "the reload past a link")
        assert "a symbolic link (refused in state_dir)" in srv.log()
        assert fetch(srv, url(srv, A), A).cert_der == a_before


def test_check_names_every_host(two):
    proc = run_serai("-n", "-c", two.config)
    assert proc.returncode == 0, proc.stderr
    for name in (A, B):
        assert re.search(r"\[host %s\] archive .*: 1 articles"
                         % re.escape(name), proc.stderr), proc.stderr


def test_export_per_host(two, tmp_path):
    out = tmp_path / "mirror"
    proc = run_serai("-c", two.config, "--export", out)
    assert proc.returncode == 0, proc.stderr
    for name, word in ((A, "aardvark"), (B, "bumblebee")):
        gmi = (out / name / "gemini" / "news" / "story.gmi").read_text()
        assert word in gmi
        assert (out / name / "gopher" / "news" / "story.txt").is_file()
    assert not (out / "gemini").exists()


def test_bad_host_configurations_are_refused(tmp_path):
    root = tmp_path / "r"
    make_archive(root, "x", "X")
    cases = [
        # [archive] beside [host]: named, with the way out.
        ("[archive]\nroot = %s\n[host a.test]\nroot = %s\n" % (root, root),
         r":2: \[archive\] root: not with \[host\] sections"),
        # One name claimed twice, as a name and as an alias.
        ("[host a.test]\nroot = %s\n[host A.test]\nroot = %s\n"
         % (root, root), r":3: \[host A\.test\]: 'a\.test' is already a "
         r"name of \[host a\.test\] \(line 1\)"),
        ("[host a.test]\nroot = %s\naliases = x.test\n[host b.test]\n"
         "root = %s\naliases = y.test, x.test\n" % (root, root),
         r":6: \[host b\.test\] aliases: 'x\.test' is already a name of "
         r"\[host a\.test\] \(line 3\)"),
        # Two hosts on one Gopher port.
        ("[host a.test]\nroot = %s\ngopher = 127.0.0.1:7301\n"
         "[host b.test]\nroot = %s\ngopher = 127.0.0.1:7301\n"
         % (root, root), r":6: \[host b\.test\] gopher: '127\.0\.0\.1:"
         r"7301'.*\[host a\.test\] gopher .*line 3"),
        # A name that would climb out of state_dir.
        ("[host ..]\nroot = %s\n" % root, r":1: \[host \.\.\]: not a DNS"),
    ]
    for i, (text, want) in enumerate(cases):
        conf = tmp_path / ("bad%d.ini" % i)
        conf.write_text("[server]\nstate_dir = %s\n%s" % (tmp_path, text))
        # The header line numbers above count from the [host]/[archive]
        # text: the [server] section adds two lines before them.
        proc = run_serai("-n", "-c", conf)
        assert_failed_cleanly(proc)
        shifted = re.sub(r":(\d+):", lambda m: ":%d:" % (int(m.group(1)) + 2),
                         want, count=1)
        shifted = re.sub(r"line (\d+)", lambda m: "line %d" % (
            int(m.group(1)) + 2), shifted)
        assert re.search(shifted, proc.stderr), (shifted, proc.stderr)
