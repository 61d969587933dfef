"""End-to-end harness for serai: the real binary on loopback ports.

Environment (set by tests/meson.build):
  SERAI_BIN          the built server binary
  SERAI_SOURCE_ROOT  the repository root (content/ lives there)
  SERAI_VALGRIND     optional: run every serai process under this valgrind;
                     a leak or memory error makes it exit 99, and every stop
                     asserts exit code 0.
  SERAI_E2E_SHARD    optional: "K/N" runs the K-th (from 1) of N shards of
                     the suite's files but those in ALONE; "alone" runs the
                     files in ALONE only; unset, every file runs.  meson
                     runs the shards side by side (tests/meson.build).

Tests import the client helpers from here (``from conftest import ...``);
the fixtures are ``server`` (one shared server on the seed archive for the
whole session), ``serai_factory`` (servers a test configures, starts and
stops itself), ``content_copy``, ``public_dir`` and ``lynx_env``.
``serving(srv)`` runs a server for a with block (stopped after it, its
exits checked) and ``module_server`` makes a module fixture of one;
answers are read to their end by ``recv_to_end``, and any child process
is stopped by ``stop_process``.
"""

import collections
import contextlib
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unicodedata
from pathlib import Path

import pytest

SOURCE_ROOT = Path(
    os.environ.get("SERAI_SOURCE_ROOT")
    or Path(__file__).resolve().parent.parent.parent
).resolve()
# Servers run in their own directories: relative paths would break.
SERAI_BIN = Path(
    os.environ.get("SERAI_BIN") or SOURCE_ROOT / "build" / "serai"
).resolve()
CONTENT = SOURCE_ROOT / "content"
SEED = CONTENT / "news" / "beijing-declaration.txt"

VALGRIND = os.environ.get("SERAI_VALGRIND") or None
# An AddressSanitizer build (CI's second pass): its quarantine holds freed
# memory, so RSS says nothing about leaks there, and LeakSanitizer needs
# /proc, which a chroot hides.
SANITIZED = SERAI_BIN.is_file() and b"__asan_init" in SERAI_BIN.read_bytes()
# valgrind's exit code when it found a leak or a memory error.
VALGRIND_ERROR = 99
VALGRIND_ARGS = [
    "--leak-check=full",
    "--show-leak-kinds=definite,indirect",
    "--errors-for-leak-kinds=definite,indirect",
    "--error-exitcode=%d" % VALGRIND_ERROR,
    "--track-fds=no",
    "-q",
]

# Every wait is bounded; valgrind makes the server some 20-50 times slower.
SLOW = 6 if VALGRIND else 1
# A start waits for the search index: a sanitizer build writes a new one
# (test_dos: 6,000 articles) some times slower than a plain build.
STARTUP_TIMEOUT = 60 if VALGRIND else 30 if SANITIZED else 10
STOP_TIMEOUT = 60 if VALGRIND else 10
IO_TIMEOUT = 5 * SLOW  # one client exchange
RUN_TIMEOUT = 10 * SLOW  # one short-lived serai run (-n, -V, a bad config)
POLL_INTERVAL = 0.05
MAX_RESPONSE = 8 << 20  # no answer of this archive comes near this

GEMINI_OK = "20 text/gemini; charset=utf-8; lang=en"

# Started as root, serai wants to be told who serves: the suite's servers
# read archives in private temporary directories, so they stay root
# (test_privileges.py checks the drop itself).
RUN_AS = "user = root\n" if os.geteuid() == 0 else ""
# valgrind makes system calls of its own, which serai's seccomp allow-list
# rightly refuses: that suite (alone) serves without the sandbox.
SANDBOX = "sandbox = no\n" if VALGRIND else ""

# "serai: 2026-11-27T20:54:55Z 127.0.0.1 gopher "/" 1 77 0.3ms"; with
# [host] sections the host follows the protocol ("gemini a.test "/" ...").
ACCESS_RE = re.compile(
    r'^serai: (?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) (?P<peer>\S+) '
    r'(?P<proto>gemini|gopher)(?: (?P<host>[^\s"]+))? "(?P<request>.*)" '
    r'(?P<status>\S+) '
    r"(?P<bytes>\d+) (?P<ms>\d+(?:\.\d+)?)ms(?: (?P<why>.*))?$"
)


# --------------------------------------------------------------------------
# Shards: meson runs the suite as several pytest processes side by side
# (most of a file's time is servers starting and deadlines expiring, not
# CPU), each given SERAI_E2E_SHARD.  Every process collects every file and
# keeps its share, so a new file lands in a shard with no list to edit.

# Files that measure time or load the machine themselves (latency under a
# flood of costly searches, rate limits against the clock): they run in a
# shard of their own, which meson runs with nothing beside it.
ALONE = {"test_dos.py"}

# Seconds per file on an idle 2-core machine (pytest --durations, 2026-11-29),
# the heavier ones only: a file not named counts DEFAULT_WEIGHT.  They only
# balance the shards; a stale figure costs time, never a test.
WEIGHTS = {
    "test_reload.py": 11.7, "test_incremental.py": 7.6,
    "test_hostile.py": 7.2, "test_big.py": 5.9, "test_connections.py": 5.7,
    "test_warm.py": 5.3, "test_tickets.py": 5.3, "test_install.py": 4.5,
    "test_export.py": 4.2, "test_vhosts.py": 2.7, "test_search.py": 2.5,
    "test_gophers.py": 1.8, "test_tree.py": 1.8, "test_log.py": 1.8,
    "test_privileges.py": 1.5, "test_gopher.py": 1.1,
}
DEFAULT_WEIGHT = 0.5


def _shard():
    """(k, n) from SERAI_E2E_SHARD="k/n", 1 <= k <= n."""
    value = os.environ["SERAI_E2E_SHARD"]
    k, _, n = value.partition("/")
    assert k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n), (
        "SERAI_E2E_SHARD=%r: want K/N or alone" % value)
    return int(k), int(n)


def shard_files(names, n):
    """names (file names, ALONE left out) dealt to n shards, the heaviest
    first, each to the lightest shard so far: a list of n sets.  Every
    process computes it from the same names, so the shards agree."""
    shards = [set() for _ in range(n)]
    load = [0.0] * n
    for name in sorted(names, key=lambda f: (-WEIGHTS.get(f, DEFAULT_WEIGHT),
                                             f)):
        i = load.index(min(load))
        shards[i].add(name)
        load[i] += WEIGHTS.get(name, DEFAULT_WEIGHT)
    return shards


def pytest_collection_modifyitems(config, items):
    value = os.environ.get("SERAI_E2E_SHARD")
    if not value:
        return
    names = {item.path.name for item in items}
    if value == "alone":
        keep = ALONE
    else:
        k, n = _shard()
        keep = shard_files(names - ALONE, n)[k - 1]
    kept = [item for item in items if item.path.name in keep]
    config.hook.pytest_deselected(
        items=[item for item in items if item.path.name not in keep])
    items[:] = kept


# --------------------------------------------------------------------------
# Small utilities


def serai_command(*args):
    """The argv that runs serai (under valgrind when asked)."""
    assert SERAI_BIN.is_file() and os.access(SERAI_BIN, os.X_OK), (
        "SERAI_BIN=%s is not an executable; build first" % SERAI_BIN
    )
    cmd = [str(SERAI_BIN), *map(str, args)]
    if VALGRIND:
        cmd = [VALGRIND, *VALGRIND_ARGS, *cmd]
    return cmd


def run_serai(*args, cwd=None, timeout=RUN_TIMEOUT, **kw):
    """Runs a short-lived serai (-n, -V, -h, --export, a bad
    configuration); kw goes to subprocess.run (umask, say)."""
    return subprocess.run(
        serai_command(*args),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
        text=True,
        errors="replace",
        **kw,
    )


def assert_failed_cleanly(proc):
    """Non-zero exit, but not a crash and not a valgrind report."""
    assert proc.returncode != 0, "expected a failure:\n" + proc.stderr
    assert proc.returncode > 0, "killed by signal %d:\n%s" % (
        -proc.returncode,
        proc.stderr,
    )
    assert proc.returncode != VALGRIND_ERROR or not VALGRIND, (
        "valgrind found errors:\n" + proc.stderr
    )


def _port_range():
    """This process's range of listening ports: a range of its own per
    shard, so that the shards meson runs side by side never probe the
    same port, and below the kernel's ephemeral range, from which no
    client connection of any process can take a probed port before its
    server binds it.  The start within the range is random, so that two
    whole suites run at once (two build directories) rarely meet; when
    they do, the probe or the harness's retry on "cannot listen" copes."""
    k = _shard()[0] if "/" in os.environ.get("SERAI_E2E_SHARD", "") else 0
    base = PORT_BASE + PORT_SPAN * k
    assert base + PORT_SPAN <= 32768, "shard %d: ports past 32767" % k
    # Its own generator: the global one is left to the tests.
    return base, random.SystemRandom().randrange(PORT_SPAN)


# Shard k probes ports from PORT_BASE + k * PORT_SPAN on ("alone" and the
# unsharded suite as k = 0): up to shard 7 they stay below 32768, where
# Linux's default ephemeral range (ip_local_port_range) starts.  A span is
# far more ports than a shard's few hundred servers take.
PORT_BASE = 16000
PORT_SPAN = 2000
_port_base, _port_next = _port_range()


def free_ports(n):
    """n distinct loopback TCP ports that were free a moment ago, from
    this process's own range (see _port_range), never one it gave
    before until the range wraps."""
    global _port_next
    socks = []
    try:
        for _ in range(PORT_SPAN):
            if len(socks) == n:
                break
            port = _port_base + _port_next
            _port_next = (_port_next + 1) % PORT_SPAN
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            socks.append(s)
        assert len(socks) == n, "no %d free ports from %d" % (n, _port_base)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def connect_from(source_ip, port):
    """A TCP connection to 127.0.0.1:port from another loopback address
    (the per-address caps count each apart)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(IO_TIMEOUT)
    s.bind((source_ip, 0))
    s.connect(("127.0.0.1", port))
    return s


def port_open(port, timeout=0.5):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def poll_until(predicate, timeout, what, interval=POLL_INTERVAL):
    """Calls predicate until it returns a true value; bounded in time and
    count.  Returns that value, or fails naming what was awaited."""
    deadline = time.monotonic() + timeout
    last = None
    for _ in range(int(timeout / interval) + 2):
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    pytest.fail("timed out after %.0f s waiting for %s" % (timeout, what))


def stop_process(proc, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
    """sig (unless proc has exited), a bounded wait, a kill if need be;
    the exit code (killed: -9)."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)
        return -signal.SIGKILL


def thread_status(pid):
    """{tid: {field: value}} of every thread's /proc status.  A start-up
    thread (the loader's, the indexer) may end between the listing and
    the read: it is left out."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                lines = f.readlines()
        except (FileNotFoundError, ProcessLookupError):
            continue
        out[tid] = {key: value.strip() for key, _, value in
                    (line.partition(":") for line in lines)}
    return out


def require_tool(name):
    """The path of a client the suite needs: missing is a failure, since
    the CI installs every one of them."""
    path = shutil.which(name)
    if path is None:
        pytest.fail("%s is not installed (the e2e suite needs it)" % name)
    return path


def normalise(text):
    """Whitespace collapsed to single spaces."""
    return " ".join(text.split())


def display_width(s):
    """Terminal columns: East Asian wide and fullwidth count two,
    combining marks none."""
    width = 0
    for ch in s:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


# --------------------------------------------------------------------------
# The seed article, read straight from the archive

Seed = collections.namedtuple("Seed", "title paragraphs editor copyright")

_HEADER_RE = re.compile(r"^(Location|Date|Lang|Tags|Source|Author):", re.I)


def read_seed(path=SEED):
    """Title, paragraphs (each joined to one line), editor and copyright
    lines of an article file."""
    lines = [ln.rstrip("\r").rstrip() for ln in
             path.read_text(encoding="utf-8").split("\n")]
    i = 0
    while i < len(lines) and (not lines[i].strip()
                              or _HEADER_RE.match(lines[i])):
        i += 1
    title = lines[i].strip()
    blocks, cur = [], []
    for ln in lines[i + 1:]:
        if ln.strip():
            cur.append(ln.strip())
        elif cur:
            blocks.append(cur)
            cur = []
    if cur:
        blocks.append(cur)
    editor = copyright_ = None
    last = blocks[-1]
    if last and (last[-1].startswith("Copyright")
                 or last[-1].startswith("\u00a9")):
        copyright_ = last.pop()
    if last and last[-1].startswith("(Editor:"):
        editor = last.pop()
    if not last:
        blocks.pop()
    paragraphs = [" ".join(b) for b in blocks]
    return Seed(title, paragraphs, editor, copyright_)


def assert_seed_text(text, seed):
    """The seed's title, paragraphs, editor and copyright lines stand in
    text in that order, whitespace folded."""
    joined = normalise(text)
    assert joined.startswith(normalise(seed.title))
    pos = 0
    for para in seed.paragraphs + [seed.editor, seed.copyright]:
        found = joined.find(normalise(para), pos)
        assert found >= 0, "missing or out of order: %r" % para[:60]
        pos = found + len(normalise(para))


def assert_seed_gemtext(lines, seed):
    """The seed rendered as gemtext lines: the title the heading, every
    paragraph verbatim as one whole line in the file's order, then the
    editor and the copyright lines."""
    assert lines[0] == "# " + seed.title
    where = []
    for para in seed.paragraphs:
        assert para in lines, "paragraph missing: %r" % para[:60]
        where.append(lines.index(para))
    assert where == sorted(where)
    assert seed.editor in lines
    assert seed.copyright in lines
    assert lines.index(seed.editor) > where[-1]
    assert lines.index(seed.copyright) > lines.index(seed.editor)


@pytest.fixture(scope="session")
def seed():
    s = read_seed()
    # The seed is what the assertions are made of: make sure it was read.
    assert s.title.startswith("Beijing Declaration")
    assert len(s.paragraphs) >= 5
    assert s.editor == "(Editor: LIU Jia)"
    assert s.copyright.startswith("Copyright")
    return s


# --------------------------------------------------------------------------
# Clients

GeminiResponse = collections.namedtuple(
    "GeminiResponse", "status_line body close_notify tls_version cert_der"
)


def client_context(minimum=None, maximum=None, ciphers=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    if minimum is not None:
        ctx.minimum_version = minimum
    if maximum is not None:
        ctx.maximum_version = maximum
    return ctx


def recv_to_end(sock, deadline, limit=MAX_RESPONSE):
    """Everything the peer sends until it ends the stream, asserting that
    the end comes before deadline (a time.monotonic() value) and within
    limit bytes; (data, close_notify).

    close_notify tells the ends apart only on a TLS socket wrapped with
    suppress_ragged_eofs=False: Python's recv then returns b"" on
    close_notify and raises SSLEOFError on a bare TCP close.  Every turn
    adds a byte or ends, so limit bounds the turns too.
    """
    data = bytearray()
    while True:
        assert time.monotonic() < deadline, "no end of answer in time"
        try:
            chunk = sock.recv(65536)
        except ssl.SSLEOFError:
            return bytes(data), False
        if not chunk:
            return bytes(data), True
        data += chunk
        assert len(data) <= limit, "endless answer"


def gemini_fetch(url, host="127.0.0.1", port=None, ctx=None,
                 timeout=IO_TIMEOUT, sni="localhost"):
    """Sends url + CRLF over TLS and reads to the end.

    Returns GeminiResponse(status_line, body, close_notify, tls_version,
    cert_der).  close_notify is True when the server ended the TLS stream
    properly: with suppress_ragged_eofs=False, Python's recv returns b""
    on close_notify and raises SSLEOFError on a bare TCP close.
    """
    assert port is not None
    if ctx is None:
        ctx = client_context()
    request = url if isinstance(url, bytes) else url.encode("utf-8")
    deadline = time.monotonic() + timeout
    with socket.create_connection((host, port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname=sni,
                             suppress_ragged_eofs=False) as tls:
            version = tls.version()
            cert = tls.getpeercert(binary_form=True)
            tls.sendall(request + b"\r\n")
            data, close_notify = recv_to_end(tls, deadline)
    head, sep, body = data.partition(b"\r\n")
    assert sep, "no CRLF-terminated header in %r" % data[:200]
    return GeminiResponse(head.decode("utf-8"), body, close_notify,
                          version, cert)


OneWriteResponse = collections.namedtuple(
    "OneWriteResponse", "status_line body end")


def gemini_fetch_one_write(request, port, host="127.0.0.1",
                           timeout=IO_TIMEOUT):
    """Like gemini_fetch, but every TLS record of the request goes out in
    a single send(), so that all of it is in the server's receive buffer
    before the server reads any (wrap_socket writes record by record).

    Returns OneWriteResponse(status_line, body, end), end being
    "close_notify", "eof" (TCP close without close_notify) or "reset".
    status_line is "" if no CRLF-ended header came.
    """
    ctx = client_context()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    deadline = time.monotonic() + timeout
    plain = bytearray()
    end = None
    with socket.create_connection((host, port), timeout=timeout) as sock:
        for _ in range(100):
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                pending = out.read()
                if pending:
                    sock.sendall(pending)
                chunk = sock.recv(65536)
                assert chunk, "closed during the handshake"
                inc.write(chunk)
        else:
            pytest.fail("no end of the TLS handshake")
        obj.write(request + b"\r\n")
        sock.sendall(out.read())  # the Finished message and every record
        for _ in range(100000):
            assert time.monotonic() < deadline, "no end of answer"
            try:
                chunk = obj.read(65536)
            except ssl.SSLZeroReturnError:
                end = "close_notify"
                break
            except ssl.SSLEOFError:
                end = "eof"
                break
            except ssl.SSLWantReadError:
                try:
                    raw = sock.recv(65536)
                except ConnectionResetError:
                    end = "reset"
                    break
                if not raw:
                    inc.write_eof()
                else:
                    inc.write(raw)
                continue
            if not chunk:
                end = "close_notify"
                break
            plain += chunk
            assert len(plain) <= MAX_RESPONSE, "endless answer"
    head, sep, body = bytes(plain).partition(b"\r\n")
    return OneWriteResponse(head.decode("utf-8", "replace") if sep else "",
                            body, end)


def gopher_fetch(selector, port, host="127.0.0.1", eol="\r\n",
                 timeout=IO_TIMEOUT):
    """Sends selector + eol on a plain socket and reads to EOF."""
    request = selector if isinstance(selector, bytes) else (
        selector.encode("utf-8"))
    request += eol.encode("ascii")
    deadline = time.monotonic() + timeout
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(request)
        return recv_to_end(s, deadline)[0]


def gopher_lines(body):
    """The CRLF-separated lines of a Gopher answer, asserting that every
    line ends with CRLF and that no bare CR or LF hides inside one."""
    assert body.endswith(b"\r\n"), "last line lacks CRLF: %r" % body[-40:]
    lines = body[:-2].split(b"\r\n")
    for ln in lines:
        assert b"\n" not in ln and b"\r" not in ln, (
            "line not ended by CRLF: %r" % ln)
    return [ln.decode("utf-8") for ln in lines]


# --------------------------------------------------------------------------
# The server


class Server:
    """One serai process on free loopback ports, configured in workdir.

    start() may be called again after stop(); each run logs to its own
    file (log_path) and every exit code is kept in exit_codes.  extra is
    appended to the configuration: it lands in [gopher] unless it opens
    another section.
    """

    def __init__(self, workdir, root=None, state_dir=None, extra="",
                 ports=None, rate_limit=False):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.root = Path(root) if root is not None else CONTENT
        self.state_dir = (Path(state_dir) if state_dir is not None
                          else self.workdir / "state")
        self.extra = extra
        # False: the suite's own traffic is not rate-limited (see
        # write_config); True: serai's defaults, or what extra sets.
        self.rate_limit = rate_limit
        self.config = self.workdir / "serai.ini"
        self.proc = None
        self.runs = 0
        self.log_path = None
        self.exit_codes = []
        # ports: (gemini, gopher) to use instead of free ones.
        self.gemini_port, self.gopher_port = ports or (None, None)
        self.fixed_ports = ports is not None
        self.write_config()

    @property
    def cert_path(self):
        return self.state_dir / "localhost.crt"

    @property
    def key_path(self):
        return self.state_dir / "localhost.key"

    def write_config(self):
        if self.gemini_port is None:
            self.gemini_port, self.gopher_port = free_ports(2)
        # The suite sends hundreds of requests a second from 127.0.0.1:
        # a rate no test reaches, unless a test wants one (test_dos.py).
        limits = ("" if self.rate_limit or
                  re.search(r"^\s*(rate|burst)\s*=", self.extra, re.M)
                  else "\n[limits]\nrate = 100000\nburst = 100000\n")
        self.config.write_text(
            "[server]\n"
            "hostname = localhost\n"
            "state_dir = %s\n"
            "workers = 2\n%s"
            "\n[archive]\n"
            "root = %s\n"
            "\n[gemini]\n"
            "listen = 127.0.0.1:%d\n"
            "\n[gopher]\n"
            "listen = 127.0.0.1:%d\n%s%s"
            % (self.state_dir, RUN_AS + SANDBOX, self.root, self.gemini_port,
               self.gopher_port, self.extra, limits),
            encoding="utf-8",
        )
        return self.config

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        """The stderr of the current (or last) run."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def access_lines(self):
        return [m for m in map(ACCESS_RE.match, self.log().splitlines())
                if m]

    def start(self):
        assert not self.running, "already running"
        # A free port can be taken between our probe and serai's bind:
        # that (and only that) is retried, a bounded number of times.
        for attempt in range(1 if self.fixed_ports else 3):
            if attempt > 0:
                self.gemini_port = self.gopher_port = None
            self.write_config()
            self.runs += 1
            self.log_path = self.workdir / ("stderr-%d.log" % self.runs)
            with open(self.log_path, "ab") as err:
                self.proc = subprocess.Popen(
                    serai_command("-c", self.config),
                    cwd=self.workdir,
                    stdin=subprocess.DEVNULL,
                    stdout=err,
                    stderr=err,
                )
            if self._wait_ready():
                return self
            rc = self._reap()
            if ("cannot listen" in self.log() and attempt < 2
                    and not self.fixed_ports):
                continue
            pytest.fail("serai did not come up (exit %s); stderr:\n%s"
                        % (rc, self.log()))
        raise AssertionError("unreachable")

    def _wait_ready(self):
        deadline = time.monotonic() + STARTUP_TIMEOUT
        pending = {self.gemini_port, self.gopher_port}
        for _ in range(int(STARTUP_TIMEOUT / POLL_INTERVAL) + 2):
            if self.proc.poll() is not None:
                return False
            pending = {p for p in pending if not port_open(p)}
            # Search joins once its index is built, in a thread of its
            # own after the ports open: the tests want all of it.
            if not pending:
                log = self.log()
                if "search index:" in log or "search disabled" in log:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_INTERVAL)
        return False

    def _reap(self):
        """Ends a process that failed to start; its exit code or None."""
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            return None
        finally:
            self.proc = None

    def send_signal(self, sig):
        assert self.running, "serai is not running:\n" + self.log()
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM):
        """sig, a bounded wait, a kill if need be; the exit code (killed:
        -9), also kept in exit_codes."""
        if self.proc is None:
            return None
        rc = stop_process(self.proc, sig)
        self.proc = None
        self.exit_codes.append(rc)
        return rc

    def assert_clean_exits(self):
        bad = [rc for rc in self.exit_codes if rc != 0]
        assert not bad, (
            "serai exited %s (0 wanted; %d means valgrind found errors, "
            "-9 that it ignored SIGTERM); stderr of the last run:\n%s"
            % (bad, VALGRIND_ERROR, self.log()))

    # Convenience wrappers: a path starting with "/" becomes
    # gemini://localhost:PORT/path; anything else is sent as it is.
    def gemini(self, path_or_url, **kw):
        url = path_or_url
        if isinstance(url, str) and url.startswith("/"):
            url = "gemini://localhost:%d%s" % (self.gemini_port, url)
        return gemini_fetch(url, port=self.gemini_port, **kw)

    def gopher(self, selector, **kw):
        return gopher_fetch(selector, port=self.gopher_port, **kw)


@contextlib.contextmanager
def serving(srv):
    """srv started for the with block and stopped after it, a failure
    too; if the block ended well, every exit must have been 0."""
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
    srv.assert_clean_exits()


def module_server(name, **kw):
    """A module-scoped fixture: Server(**kw) in a directory of its own
    named after name, serving for the module's tests; assign it to the
    fixture's name (``strict = module_server("strict", extra=...)``)."""
    @pytest.fixture(scope="module")
    def fixture(tmp_path_factory):
        with serving(Server(tmp_path_factory.mktemp(name), **kw)) as srv:
            yield srv
    return fixture


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One server on the seed archive, shared by the read-only tests."""
    srv = Server(tmp_path_factory.mktemp("shared"))
    with serving(srv):
        yield srv


@pytest.fixture
def serai_factory(tmp_path):
    """Makes Server objects (not started) in tmp_path; every one still
    running at the end is stopped, and every exit must have been 0."""
    servers = []

    def make(**kw):
        srv = Server(tmp_path / ("server%d" % len(servers)), **kw)
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.stop()
    for srv in servers:
        srv.assert_clean_exits()


@pytest.fixture
def content_copy(tmp_path):
    """A private copy of the archive that a test may change."""
    dst = tmp_path / "content"
    shutil.copytree(CONTENT, dst)
    return dst


@pytest.fixture
def public_dir():
    """A fresh directory every user may enter: pytest's own temporary
    tree is private to the user running the suite, and what runs as
    nobody (serai after its drop, Gophernicus) must read in it."""
    d = Path(tempfile.mkdtemp(prefix="serai-public-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def lynx_env(tmp_path):
    home = tmp_path / "lynx-home"
    home.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.update(TERM="dumb", HOME=str(home))
    return env


def read_until_closed(s):
    """Everything the peer sends until it closes, a reset counting as a
    close (bounded: 1000 reads)."""
    data = b""
    try:
        for _ in range(1000):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    return data


def tree_pages(root):
    """Every page an archive tree has: sections, their feeds, articles."""
    out = set()
    for d in [root] + sorted(p for p in root.rglob("*") if p.is_dir()):
        rel = d.relative_to(root).as_posix()
        sec = "/" if rel == "." else "/%s/" % rel
        out |= {sec, sec + "feed.xml"}
        out |= {sec + f.stem for f in d.glob("*.txt")}
    return out


def fetch_pages(srv, paths):
    """Each path's Gemini answer and Gopher page (a query "?q" is the
    selector's search field there)."""
    got = {}
    for p in sorted(paths):
        r = srv.gemini(p)
        got[("gemini", p)] = (r.status_line, r.body)
        got[("gopher", p)] = srv.gopher(p.replace("?", "\t"))
    return got
