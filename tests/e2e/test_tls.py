"""TLS: protocol versions and the generated certificate."""

import os
import ssl
import stat
import subprocess
import warnings

import pytest

from conftest import (GEMINI_OK, IO_TIMEOUT, assert_failed_cleanly,
                      client_context, gemini_fetch, require_tool, run_serai)


def test_tls13_by_default(server):
    resp = server.gemini("/")
    assert resp.tls_version == "TLSv1.3"
    assert resp.status_line == GEMINI_OK


def test_tls12_client_works(server):
    ctx = client_context(maximum=ssl.TLSVersion.TLSv1_2)
    resp = server.gemini("/news/beijing-declaration", ctx=ctx)
    assert resp.tls_version == "TLSv1.2"
    assert resp.status_line == GEMINI_OK
    assert resp.close_notify


def test_tls11_is_refused(server):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            ctx = client_context(minimum=ssl.TLSVersion.TLSv1_1,
                                 maximum=ssl.TLSVersion.TLSv1_1,
                                 ciphers="DEFAULT:@SECLEVEL=0")
        except (ValueError, ssl.SSLError) as e:
            pytest.skip("this OpenSSL cannot make a TLS 1.1 client: %s" % e)
    with pytest.raises((ssl.SSLError, ConnectionResetError)) as info:
        server.gemini("/", ctx=ctx)
    reason = getattr(info.value, "reason", None)
    if reason == "NO_PROTOCOLS_AVAILABLE":
        pytest.skip("this OpenSSL will not offer TLS 1.1 at all")
    # The server answers the ClientHello with a protocol_version alert.
    assert reason in (None, "TLSV1_ALERT_PROTOCOL_VERSION",
                      "UNSUPPORTED_PROTOCOL"), info.value


def test_certificate_is_self_signed_p256_for_localhost(server):
    openssl = require_tool("openssl")
    assert server.cert_path.is_file()
    proc = subprocess.run(
        [openssl, "x509", "-noout", "-text", "-in", str(server.cert_path)],
        capture_output=True, text=True, timeout=IO_TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "id-ecPublicKey" in text
    assert "ASN1 OID: prime256v1" in text
    assert "Subject: CN = localhost" in text
    assert "Issuer: CN = localhost" in text
    assert "DNS:localhost" in text
    # The file is the certificate the server presents.
    pem = server.cert_path.read_text(encoding="ascii")
    resp = server.gemini("/")
    assert resp.cert_der == ssl.PEM_cert_to_DER_cert(pem)


def test_certificate_persists_across_restarts(serai_factory):
    srv = serai_factory()
    srv.start()
    first = srv.gemini("/").cert_der
    assert "generated a self-signed certificate" in srv.log()
    assert srv.stop() == 0
    mode = stat.S_IMODE(os.stat(srv.key_path).st_mode)
    assert mode == 0o600, oct(mode)

    srv.start()
    second = srv.gemini("/").cert_der
    assert second == first
    assert "generated a self-signed certificate" not in srv.log()
    assert stat.S_IMODE(os.stat(srv.key_path).st_mode) == 0o600


def test_lost_key_is_not_silently_replaced(serai_factory):
    # Clients pinned the certificate: with its key gone, serai must stop
    # rather than make a new pair.
    srv = serai_factory()
    srv.start()
    assert srv.stop() == 0
    cert = srv.cert_path.read_bytes()
    srv.key_path.unlink()
    proc = run_serai("-c", srv.config, cwd=srv.workdir)
    assert_failed_cleanly(proc)
    assert str(srv.key_path) in proc.stderr
    assert srv.cert_path.read_bytes() == cert
    assert not srv.key_path.exists()


def test_sni_other_than_hostname_still_answers(server):
    # Clients reaching the server by address send no or another SNI; the
    # request line, not the handshake, names the host.
    resp = gemini_fetch("gemini://localhost:%d/" % server.gemini_port,
                        port=server.gemini_port, sni=None)
    assert resp.status_line == GEMINI_OK
