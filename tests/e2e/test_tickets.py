"""TLS 1.3 session tickets: one key for all workers, rotated.

A ticket from one worker must resume in any other (SO_REUSEPORT spreads
connections over them), a ticket issued before a key rotation must still
resume after it, and after a second rotation it must not.  The rotation
period is shortened through SERAI_TICKET_ROTATE (seconds).
"""

import socket
import time

from conftest import GEMINI_OK, IO_TIMEOUT, client_context, recv_to_end

ROTATE = 2


def fetch(srv, ctx, session=None):
    """One request; (session to resume with next, was this one resumed)."""
    with socket.create_connection(("127.0.0.1", srv.gemini_port),
                                  timeout=IO_TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost",
                             session=session) as tls:
            assert tls.version() == "TLSv1.3"
            tls.sendall(b"gemini://localhost:%d/\r\n" % srv.gemini_port)
            data, _ = recv_to_end(tls, time.monotonic() + IO_TIMEOUT)
            assert data.startswith(GEMINI_OK.encode() + b"\r\n"), data[:80]
            # The ticket comes after the handshake: read, then take it.
            return tls.session, tls.session_reused


def test_resumption_across_workers(serai_factory):
    srv = serai_factory()  # two workers
    srv.start()
    ctx = client_context()
    session, reused = fetch(srv, ctx)
    assert not reused
    # Twelve new connections land on both workers; each resumes from
    # the previous one's ticket, wherever it was issued.
    for _ in range(12):
        session, reused = fetch(srv, ctx, session)
        assert reused, "a ticket did not resume:\n" + srv.log()


def test_resumption_across_rotation(serai_factory, monkeypatch):
    monkeypatch.setenv("SERAI_TICKET_ROTATE", str(ROTATE))
    srv = serai_factory()
    srv.start()
    ctx = client_context()
    # Two tickets sealed with the first key (a used one is not offered
    # again by OpenSSL, so each check below takes a fresh one).
    old1, reused = fetch(srv, ctx)
    assert not reused
    old2, reused = fetch(srv, ctx)
    assert not reused

    def rotate():
        # Keys rotate when a ticket is sealed after the period: a fresh
        # client's full handshake does that.
        time.sleep(ROTATE + 0.5)
        assert not fetch(srv, client_context())[1]

    rotate()
    # Sealed with the previous key: still accepted, and renewed.
    renewed, reused = fetch(srv, ctx, old1)
    assert reused, "a ticket from before the rotation did not resume"
    rotate()
    # Two rotations on, the key of the first ticket is gone...
    assert not fetch(srv, ctx, old2)[1], "a ticket outlived two rotations"
    # ...while the renewed one was sealed with a key still held.
    assert fetch(srv, ctx, renewed)[1]
