"""The connection path on the raw socket: what a client leaves unread
must not turn the close into a reset that destroys the answer, and an
answer longer than a TLS record comes whole."""

import socket
import time

from conftest import GEMINI_OK, IO_TIMEOUT, client_context, recv_to_end

ARTICLE = "/news/beijing-declaration"
JUNK = 64 * 1024  # far past what the request line reads


def fetch_with_trailer(server, trailer):
    """A Gemini request with trailer sent after it, in the same write;
    the answer, and whether close_notify ended it."""
    ctx = client_context()
    url = b"gemini://localhost:%d%s\r\n" % (server.gemini_port,
                                             ARTICLE.encode())
    deadline = time.monotonic() + IO_TIMEOUT
    with socket.create_connection(("127.0.0.1", server.gemini_port),
                                  timeout=IO_TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost",
                             suppress_ragged_eofs=False) as tls:
            tls.sendall(url + trailer)
            return recv_to_end(tls, deadline)


def test_unread_bytes_after_the_request_do_not_reset(server):
    # The attack: a request followed by more than serai reads.  It is
    # answered whole, and the connection ends with close_notify, not a
    # reset (serai lingers, reading, before it closes).
    plain = server.gemini(ARTICLE)
    body, close_notify = fetch_with_trailer(server, b"x" * JUNK)
    head, _, rest = body.partition(b"\r\n")
    assert head.decode() == GEMINI_OK
    assert rest == plain.body
    assert close_notify


def test_a_few_bytes_after_the_request(server):
    # Fewer than a record: they stay in serai's request buffer.
    body, close_notify = fetch_with_trailer(server, b"\r\n")
    assert body.startswith(GEMINI_OK.encode() + b"\r\n") and close_notify
