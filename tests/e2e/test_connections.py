"""Connections: deadlines, concurrency, odd request endings, stopping."""

import concurrent.futures
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (GEMINI_OK, IO_TIMEOUT, RUN_TIMEOUT, SLOW, VALGRIND,
                      VALGRIND_ERROR, client_context, connect_from,
                      gopher_lines, module_server, poll_until,
                      read_until_closed, recv_to_end, serai_command)

# Short enough to wait for, long enough for a handshake under valgrind.
REQUEST_TIMEOUT = 3 if VALGRIND else 1


# A server with a short request deadline.
strict = module_server("strict", extra="\n[limits]\nrequest_timeout = %d\n"
                       % REQUEST_TIMEOUT)


def wait_for_close(sock, send_every=None, payload=b"x"):
    """Seconds until the peer closes sock (EOF, reset, or TLS EOF), and
    what it sent; optionally trickling payload every send_every s."""
    t0 = time.monotonic()
    limit = REQUEST_TIMEOUT + 5 * SLOW
    sock.settimeout(send_every or limit)
    data = b""
    for _ in range(int(limit / (send_every or limit)) + 2):
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            if time.monotonic() - t0 > limit:
                pytest.fail("still open after %.1f s" % limit)
            if send_every:
                try:
                    sock.sendall(payload)
                except OSError:
                    break
            continue
        except (ssl.SSLError, ConnectionResetError):
            break
        if not chunk:
            break
        data += chunk
    return time.monotonic() - t0, data


def assert_deadline(elapsed):
    assert elapsed >= REQUEST_TIMEOUT - 0.3, "closed early: %.2f s" % elapsed
    assert elapsed <= REQUEST_TIMEOUT + 3 * SLOW, "late: %.2f s" % elapsed


def test_gopher_silent_client_is_dropped(strict):
    with socket.create_connection(("127.0.0.1", strict.gopher_port)) as s:
        elapsed, data = wait_for_close(s)
    assert data == b""
    assert_deadline(elapsed)
    poll_until(lambda: "gopher 127.0.0.1: closed: request deadline passed"
               in strict.log(), IO_TIMEOUT, "the deadline log line")


def test_trickling_client_is_dropped_at_the_deadline(strict):
    # The deadline is absolute: bytes that keep coming do not extend it.
    with socket.create_connection(("127.0.0.1", strict.gopher_port)) as s:
        s.sendall(b"/")
        elapsed, data = wait_for_close(s, send_every=0.2)
    assert data == b""
    assert_deadline(elapsed)


def test_gemini_client_without_handshake_is_dropped(strict):
    with socket.create_connection(("127.0.0.1", strict.gemini_port)) as s:
        elapsed, data = wait_for_close(s)
    assert data == b""
    assert_deadline(elapsed)
    poll_until(lambda: "closed: TLS handshake deadline passed"
               in strict.log(), IO_TIMEOUT, "the deadline log line")


def test_gemini_request_needs_crlf(strict):
    # A bare LF does not end a Gemini request: no answer, then the close.
    ctx = client_context()
    raw = socket.create_connection(("127.0.0.1", strict.gemini_port),
                                   timeout=IO_TIMEOUT)
    with ctx.wrap_socket(raw, server_hostname="localhost",
                         suppress_ragged_eofs=False) as tls:
        tls.sendall(b"gemini://localhost:%d/\n" % strict.gemini_port)
        elapsed, data = wait_for_close(tls)
    assert data == b""
    assert elapsed <= REQUEST_TIMEOUT + 3 * SLOW
    poll_until(lambda: "gemini 127.0.0.1: closed: request deadline passed"
               in strict.log(), IO_TIMEOUT, "the deadline log line")


def half_closed_gopher(server, request):
    """The answer to request sent by a client that then half-closes."""
    deadline = time.monotonic() + IO_TIMEOUT
    with socket.create_connection(("127.0.0.1", server.gopher_port),
                                  timeout=IO_TIMEOUT) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        return recv_to_end(s, deadline)[0]


def test_gopher_request_ended_by_eof(server, seed):
    # No CRLF at all: the client half-closes after the selector.
    data = half_closed_gopher(server, b"/news/")
    assert data == server.gopher("/news/")
    assert "\t/news/beijing-declaration\t" in "\n".join(gopher_lines(data))


def test_gopher_client_may_half_close_after_request(server):
    data = half_closed_gopher(server, b"/news/beijing-declaration\r\n")
    assert data == server.gopher("/news/beijing-declaration")


def test_concurrent_clients(server):
    want_gemini = server.gemini("/news/beijing-declaration")
    want_gopher = server.gopher("/news/beijing-declaration")
    assert want_gemini.status_line == GEMINI_OK

    def one(i):
        if i % 2:
            r = server.gemini("/news/beijing-declaration")
            return (r.status_line, r.body, r.close_notify) == (
                GEMINI_OK, want_gemini.body, True)
        return server.gopher("/news/beijing-declaration") == want_gopher

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(32), timeout=IO_TIMEOUT * 8))
    assert all(results), results


def test_stop_with_connections_open(serai_factory):
    srv = serai_factory()
    srv.start()
    idle_gopher = socket.create_connection(("127.0.0.1", srv.gopher_port))
    idle_gopher.sendall(b"/news")  # a request not yet ended
    raw = socket.create_connection(("127.0.0.1", srv.gemini_port),
                                   timeout=IO_TIMEOUT)
    idle_tls = client_context().wrap_socket(raw,
                                            server_hostname="localhost")
    try:
        assert srv.gemini("/").status_line == GEMINI_OK
        assert srv.stop() == 0
        assert "stopping" in srv.log()
        idle_gopher.settimeout(IO_TIMEOUT)
        assert idle_gopher.recv(100) == b""
    finally:
        idle_gopher.close()
        idle_tls.close()


def test_sigint_stops_cleanly(serai_factory):
    srv = serai_factory()
    srv.start()
    assert srv.gopher("/").endswith(b".\r\n")
    assert srv.stop(signal.SIGINT) == 0
    assert "stopping" in srv.log()


def test_second_instance_on_the_same_ports_is_refused(serai_factory):
    # With per-worker SO_REUSEPORT sockets, a second serai (same user)
    # could bind the same ports and silently take a share of the
    # connections, with its own archive and certificate.  It must fail
    # to start instead, as any server on a port in use does.
    first = serai_factory()
    first.start()
    second = serai_factory(ports=(first.gemini_port, first.gopher_port))
    log = second.workdir / "second.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(serai_command("-c", second.config),
                                cwd=second.workdir, stdin=subprocess.DEVNULL,
                                stdout=err, stderr=err)
    try:
        def settled():
            # " ready: " and not "ready": "already in use" holds it too.
            return proc.poll() is not None or " ready: " in log.read_text()

        poll_until(settled, RUN_TIMEOUT, "the second serai to exit")
        if proc.poll() is None:
            pytest.fail("a second serai started on ports %d and %d, which "
                        "the first one holds:\n%s" % (
                            first.gemini_port, first.gopher_port,
                            log.read_text()))
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=RUN_TIMEOUT)
    stderr = log.read_text()
    assert proc.returncode not in (0, VALGRIND_ERROR), stderr
    assert proc.returncode > 0, stderr
    assert "127.0.0.1:%d" % first.gemini_port in stderr, stderr
    assert first.gemini("/").status_line == GEMINI_OK


def open_idle(source_ip, port):
    """A silent connection the server has admitted: one it refused would
    have been answered (a type-3 line) and closed at once."""
    for _ in range(50):
        s = connect_from(source_ip, port)
        s.settimeout(0.3 * SLOW)
        try:
            s.recv(1)
        except socket.timeout:
            s.settimeout(IO_TIMEOUT)
            return s
        except ConnectionResetError:
            pass
        s.close()  # refused: earlier connections were still counted
        time.sleep(0.1)
    pytest.fail("no admitted connection from %s" % source_ip)


def test_connection_caps(serai_factory):
    srv = serai_factory(extra="\n[limits]\nmax_per_client = 2\n"
                              "max_connections = 4\n"
                              "request_timeout = 120\n")
    srv.start()
    idle = []
    try:
        # Two silent connections from 127.0.0.1 fill its share.
        idle += [open_idle("127.0.0.1", srv.gopher_port) for _ in range(2)]
        resp = srv.gemini("/")
        assert resp.status_line == "44 120", resp.status_line
        assert resp.body == b""
        assert resp.close_notify
        with connect_from("127.0.0.1", srv.gopher_port) as s:
            s.sendall(b"/\r\n")
            body = read_until_closed(s)
        assert body.startswith(b"3") and b"too many connections" in body

        # Another address is still served.
        with connect_from("127.0.0.2", srv.gopher_port) as s:
            s.sendall(b"/\r\n")
            assert read_until_closed(s).endswith(b"\r\n.\r\n")

        # Two more from 127.0.0.3: four in all, the overall cap.
        idle += [open_idle("127.0.0.3", srv.gopher_port) for _ in range(2)]
        with connect_from("127.0.0.4", srv.gopher_port) as s:
            s.sendall(b"/\r\n")
            body = read_until_closed(s)
        assert body.startswith(b"3") and b"server busy" in body
    finally:
        for s in idle:
            s.close()
    # Closed connections give their places back (once the server has
    # seen them close: until then a new one may still be refused).
    def served():
        try:
            return srv.gemini("/").status_line == GEMINI_OK
        except OSError:
            return False

    poll_until(served, IO_TIMEOUT, "the caps to free up")
    # Refusals are logged, at most one line a second.
    assert "connection cap reached (max_per_client" in srv.log()


def test_listen_backlog(server):
    """The accept queue is serai's LISTEN_BACKLOG (1024, or somaxconn if
    less), not the 128 that libevent's listener would set by itself."""
    ss = shutil.which("ss")
    if ss is None:
        pytest.skip("no ss")
    try:
        somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    except OSError:
        pytest.skip("no /proc/sys/net/core/somaxconn")
    for port in (server.gemini_port, server.gopher_port):
        out = subprocess.run([ss, "-ltnH", "sport = :%d" % port],
                             capture_output=True, text=True, check=True)
        queues = {int(line.split()[2]) for line in out.stdout.splitlines()}
        assert queues == {min(1024, somaxconn)}, out.stdout


def test_burst_of_queued_connections_is_all_served(server):
    """serai accepts one connection per wakeup of a listener and relies on
    the level-triggered socket to be woken again: a burst that fills the
    accept queue before serai can take any must still be served whole,
    none left waiting in the queue."""
    want = server.gopher("/news/beijing-declaration")
    socks = []
    try:
        # Eight addresses, under the default cap of 32 per address.
        for i in range(64):
            socks.append(connect_from("127.0.0.%d" % (2 + i % 8),
                                      server.gopher_port))
        for s in socks:
            s.sendall(b"/news/beijing-declaration\r\n")
        for s in socks:
            got, _ = recv_to_end(s, time.monotonic() + IO_TIMEOUT)
            assert got == want
    finally:
        for s in socks:
            s.close()
