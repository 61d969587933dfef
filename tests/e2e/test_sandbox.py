"""The sandbox ([server] sandbox, on by default): the serving process runs
under no_new_privs, Landlock and a seccomp filter, says so in one line,
and still serves, searches, reloads and stops cleanly.

What the sandbox refuses (a file outside the trees, execve, fork, an
Internet socket) is shown by tests/unit/test_sandbox.c, which applies
serai's own sandbox_apply in a child.  The other suites run with the
sandbox on too (SIGUSR1 reopen and syslog in test_privileges.py, watch
in test_reload.py, search and its cache in test_search.py); valgrind's
pass alone runs without it (conftest.py).
"""

import ctypes
import signal

import pytest

from conftest import (GEMINI_OK, IO_TIMEOUT, VALGRIND, Server, poll_until,
                      run_serai, serving, thread_status)
from test_privileges import (add_article, public_archive, require_root,
                             rewritten)

SYS_landlock_create_ruleset = 444  # x86_64 and aarch64 alike
LANDLOCK_CREATE_RULESET_VERSION = 1


def kernel_landlock_abi():
    libc = ctypes.CDLL(None, use_errno=True)
    v = libc.syscall(SYS_landlock_create_ruleset, None, ctypes.c_size_t(0),
                     ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    return v if v > 0 else 0


@pytest.mark.skipif(VALGRIND is not None,
                    reason="valgrind's own system calls need sandbox = no")
def test_default_config_as_root_is_sandboxed(public_dir):
    """Started as root on the defaults (no user, no sandbox key): every
    thread is under a seccomp filter with no_new_privs, and serving,
    search (its cache written to state_dir), a SIGHUP reload and a
    SIGTERM stop all work inside the sandbox."""
    require_root()
    root = public_archive(public_dir)
    srv = rewritten(Server(public_dir / "srv", root=root), "user = root\n",
                    "")
    assert "sandbox" not in srv.config.read_text()
    # serving() asserts exit 0 after the SIGTERM: a system call the
    # allow-list lacks on the way out would end serai with SIGSYS.
    with serving(srv):
        abi = kernel_landlock_abi()
        want = ("sandbox: landlock ABI %d, seccomp on" % abi if abi
                else "sandbox: landlock off, seccomp on")
        assert want in srv.log(), srv.log()
        if not abi:
            assert "the kernel has no Landlock" in srv.log()
        threads = thread_status(srv.proc.pid)
        assert len(threads) >= 3  # main, two workers
        for tid, f in threads.items():
            assert f["Seccomp"] == "2", (tid, f["Seccomp"])
            assert f["NoNewPrivs"] == "1", (tid, f["NoNewPrivs"])
        assert srv.gemini("/").status_line == GEMINI_OK
        assert srv.gopher("/news/").endswith(b".\r\n")
        # Search, from the index its thread built inside the sandbox,
        # into the file in state_dir.
        hits = srv.gemini("/search?beijing")
        assert hits.status_line.startswith("20 text/gemini")
        assert b"/news/beijing-declaration" in hits.body
        index = srv.state_dir / "search.db"
        poll_until(lambda: index.exists() and index.stat().st_size > 0,
                   IO_TIMEOUT, "search.db written")
        # A reload reads the archive again, as nobody, under Landlock.
        add_article(root, "sandboxed", "Added under the sandbox")
        srv.send_signal(signal.SIGHUP)
        poll_until(lambda: srv.gemini("/news/sandboxed").status_line ==
                   GEMINI_OK, IO_TIMEOUT, "the reload")
        assert srv.proc.poll() is None


def test_sandbox_no_serves_without_it(tmp_path):
    srv = Server(tmp_path / "srv")
    text = srv.config.read_text()
    if "sandbox = no" not in text:  # valgrind's pass has it already
        srv = rewritten(srv, "[server]\n", "[server]\nsandbox = no\n")
    with serving(srv):
        assert "sandbox: off ([server] sandbox = no)" in srv.log()
        for f in thread_status(srv.proc.pid).values():
            assert f["Seccomp"] == "0"
        assert srv.gemini("/").status_line == GEMINI_OK


def test_bad_sandbox_value_names_file_line_and_key(tmp_path):
    conf = tmp_path / "bad.ini"
    conf.write_text("[server]\nhostname = localhost\nsandbox = maybe\n")
    proc = run_serai("-n", "-c", conf)
    assert proc.returncode == 1, proc.stderr
    assert "%s:3" % conf in proc.stderr, proc.stderr
    assert "sandbox" in proc.stderr and "maybe" in proc.stderr
