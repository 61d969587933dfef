"""serai --export: the archive as static trees for stock servers.

The Gemini tree is served by molly-brown, the Gopher tree by Gophernicus
(run inetd-style by systemd-socket-activate, as an unprivileged user when
the suite runs as root: Gophernicus refuses root).  Both must hand out
serai's own pages, and every link in them must lead to one.  Each
section also gets serai's Atom feed (feed.xml, in both trees): a file,
not a page, linked from the section's page and map.
"""

import contextlib
import os
import posixpath
import re
import shutil
import stat
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urljoin

import pytest

from conftest import (CONTENT, RUN_TIMEOUT, STOP_TIMEOUT,
                      assert_failed_cleanly, assert_seed_gemtext,
                      assert_seed_text, free_ports, gemini_fetch, gopher_fetch,
                      gopher_lines, poll_until, port_open, require_tool,
                      run_serai, stop_process)

ARTICLE = "/news/beijing-declaration"
# molly-brown and Gophernicus are not under valgrind: no SLOW factor.
PEER_STARTUP_TIMEOUT = 10
LINK_RE = re.compile(r"^=>[ \t]*(\S+)(?:[ \t]+(.*))?$")
# What the server may create (umask 022, as the export is run here).
FILE_MODE, DIR_MODE = 0o644, 0o755

FEED = "feed.xml"
ATOM = "{http://www.w3.org/2005/Atom}"
FEED_ITEM = "Atom feed (gemini links)"
# The live search link and item: a static export has no server to ask.
SEARCH_LINK_RE = re.compile(r"(?m)^=> /search(?:[ \t][^\n]*)?\n")
SEARCH_ITEM = ("7", "Search the archive", "/search")

SEED_TREE = [
    "gemini/", "gemini/feed.xml", "gemini/index.gmi", "gemini/news/",
    "gemini/news/beijing-declaration.gmi", "gemini/news/feed.xml",
    "gemini/news/index.gmi",
    "gopher/", "gopher/feed.xml", "gopher/gophermap", "gopher/news/",
    "gopher/news/beijing-declaration.txt", "gopher/news/feed.xml",
    "gopher/news/gophermap",
]
SEED_FEEDS = [("feed.xml", "/feed.xml"), ("news/feed.xml", "/news/feed.xml")]

# A made-up archive: an article at the root, dated and undated articles,
# a subsection two levels down.  Paths and their text.
MADE_UP = {
    "section.ini": "[section]\ntitle = Made-up archive\n",
    "about.txt": "About this archive\n\nAn undated article at the root.\n",
    "news/section.ini":
        "[section]\ntitle = News\ndescription = What happened.\n",
    "news/older.txt": "Date: 2016-11-08\nAn older story\n\n"
                      "The first paragraph of the older story.\n\n"
                      "Its second paragraph.\n",
    "news/newer.txt": "Date: 2017-01-02\nA newer story\n\n"
                      "The newer story in one paragraph.\n",
    "news/undated.txt": "Undated notes\n\nNo date on these.\n",
    "news/science/section.ini": "[section]\ntitle = Science\n",
    "news/science/comet.txt": "Date: 2016-12-24\nA comet passes\n\n"
                              "It was bright.\n",
    "news/science/space/orbit.txt": "Date: 2016-12-25\nIn orbit\n\n"
                                    "Two levels below the news.\n",
}
MADE_UP_PAGES = [  # (Gemini file, Gopher file) of every page
    ("index.gmi", "gophermap"),
    ("about.gmi", "about.txt"),
    ("news/index.gmi", "news/gophermap"),
    ("news/older.gmi", "news/older.txt"),
    ("news/newer.gmi", "news/newer.txt"),
    ("news/undated.gmi", "news/undated.txt"),
    ("news/science/index.gmi", "news/science/gophermap"),
    ("news/science/comet.gmi", "news/science/comet.txt"),
    ("news/science/space/index.gmi", "news/science/space/gophermap"),
    ("news/science/space/orbit.gmi", "news/science/space/orbit.txt"),
]
# The feed of every section, at the same place in both trees, and the
# titles of its entries (the dated articles below it, newest first).
MADE_UP_FEEDS = {
    "feed.xml": ["A newer story", "In orbit", "A comet passes",
                 "An older story"],
    "news/feed.xml": ["A newer story", "In orbit", "A comet passes",
                      "An older story"],
    "news/science/feed.xml": ["In orbit", "A comet passes"],
    "news/science/space/feed.xml": ["In orbit"],
}


# --------------------------------------------------------------------------
# Helpers


def run_export(dest, workdir, root=CONTENT, *extra):
    """serai -c (a configuration naming root) --export dest, with umask
    022 so that the modes serai asks for are the ones on disk."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "export.ini"
    conf.write_text("[archive]\nroot = %s\n" % root, encoding="utf-8")
    return run_serai("-c", conf, *extra, "--export", dest, cwd=workdir,
                     umask=0o022)


def export_ok(dest, workdir, root=CONTENT):
    proc = run_export(dest, workdir, root)
    assert proc.returncode == 0, proc.stderr
    return proc


def tree(path):
    """Every entry under path, relative, directories ending in "/"."""
    out = []
    for dirpath, dirnames, filenames in os.walk(path):
        rel = Path(dirpath).relative_to(path)
        for d in dirnames:
            out.append((rel / d).as_posix() + "/")
        for f in filenames:
            out.append((rel / f).as_posix())
    return sorted(out)


def make_archive(root):
    for rel, text in MADE_UP.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return root


def atom_feed(data):
    """The root of an exported feed, asserting that it is well-formed
    XML, an Atom feed, with the elements Atom requires."""
    root = ET.fromstring(data)
    assert root.tag == ATOM + "feed", root.tag
    for name in ("title", "id", "updated"):
        assert root.find(ATOM + name) is not None, name
    for entry in root.findall(ATOM + "entry"):
        for name in ("title", "id", "updated"):
            assert entry.find(ATOM + name) is not None, name
    return root


# An entry's link (indented deeper than the feed's own links).
ENTRY_LINK_RE = re.compile(
    rb'(\n    <link rel="alternate" type="text/gemini" href="[^"]*)"')


def feed_titles(data):
    return [e.findtext(ATOM + "title")
            for e in atom_feed(data).findall(ATOM + "entry")]


def live_feed(server, path, exported=False):
    """A live feed with the server's Gemini port taken out of its URLs
    (the export's configuration leaves the port at 1965); exported: with
    its entries linking to the exported .gmi files, ids unchanged."""
    resp = server.gemini(path)
    assert resp.status_line == "20 application/atom+xml", resp.status_line
    url = b"gemini://localhost:%d/" % server.gemini_port
    assert url in resp.body
    body = resp.body.replace(url, b"gemini://localhost/")
    if exported:
        body, n = ENTRY_LINK_RE.subn(rb'\1.gmi"', body)
        assert n == body.count(b"<entry"), body
    return body


def as_exported(live, links, searches):
    """A live gemtext page with its link targets rewritten to the
    export's (links: (live target, exported target), each present) and
    its search link, expected `searches` times, left out."""
    live, n = SEARCH_LINK_RE.subn("", live)
    assert n == searches, (n, live)
    for old, new in links:
        live, n = re.subn(r"(?m)^=> %s " % re.escape(old),
                          "=> %s " % new, live)
        assert n > 0, "no link to %s: %r" % (old, live)
    return live


def gemini_links(text):
    """(target, label) of every link line."""
    return [m.groups() for m in map(LINK_RE.match, text.split("\n")) if m]


def resolve_gemini(capsule, page, target):
    """The file a stock server answers for target, linked from page (a
    path relative to capsule): a directory answers with its index.gmi.
    Fails for absolute links, links out of the capsule, missing files."""
    assert "://" not in target and not target.startswith("/"), (
        "%s: not a relative link: %s" % (page, target))
    joined = posixpath.normpath(
        posixpath.join(posixpath.dirname(page), target))
    assert joined != ".." and not joined.startswith("../"), (
        "%s: %s leaves the capsule" % (page, target))
    path = capsule / joined
    if target.endswith("/"):
        path = path / "index.gmi"
    assert path.is_file(), "%s: %s leads nowhere" % (page, target)
    return path.relative_to(capsule).as_posix()


def gophermap_items(path):
    """(type, display, selector) of a gophermap's items; asserts that it
    is made only of LF lines holding a TAB (Gophernicus reads a line
    without one as info text or a directive) and full info lines."""
    data = path.read_bytes().decode("utf-8")
    assert data.endswith("\n") and "\r" not in data, path
    items = []
    for ln in data[:-1].split("\n"):
        fields = ln.split("\t")
        assert len(fields) >= 2, "%s: no TAB: %r" % (path, ln)
        if ln.startswith("i"):
            assert fields[1:] == ["", "null.host", "1"], ln
            continue
        # No host or port: Gophernicus fills in its own.
        assert len(fields) == 2, "%s: %r" % (path, ln)
        items.append((ln[0], fields[0][1:], fields[1]))
    return items


def resolve_gopher(root, mapfile, item_type, selector):
    """The file Gophernicus serves for a selector in mapfile (relative
    selectors are taken from the map's directory; it refuses "..")."""
    assert ".." not in selector.split("/"), selector
    if selector.startswith("/"):
        path = root / selector.lstrip("/")
    else:
        path = (root / mapfile).parent / selector
    if item_type == "1":
        assert selector.endswith("/"), selector
        path = path / "gophermap"
    assert path.is_file(), "%s: %s leads nowhere" % (mapfile, selector)
    return path.relative_to(root).as_posix()


def gemini_join(base, target):
    """RFC 3986 resolution (urljoin knows no gemini: scheme)."""
    assert base.startswith("gemini://")
    joined = urljoin("http" + base[len("gemini"):], target)
    return "gemini" + joined[len("http"):]


@contextlib.contextmanager
def listening(argv_for_port, workdir, name):
    """Starts argv_for_port(port) on a free loopback port and waits until
    it accepts; the port is yielded and the process stopped on exit.  A
    port taken between the probe and the bind is retried (bounded)."""
    log = Path(workdir) / ("%s.log" % name)
    proc = None
    try:
        for attempt in range(3):
            (port,) = free_ports(1)
            with open(log, "ab") as out:
                proc = subprocess.Popen(
                    argv_for_port(port), cwd=workdir,
                    stdin=subprocess.DEVNULL, stdout=out, stderr=out)
            poll_until(lambda: proc.poll() is not None or port_open(port),
                       PEER_STARTUP_TIMEOUT, "%s to listen" % name)
            if proc.poll() is None:
                break
            proc.wait(timeout=STOP_TIMEOUT)
        else:
            pytest.fail("%s did not come up:\n%s"
                        % (name, log.read_text(errors="replace")))
        yield port
    finally:
        if proc is not None:
            stop_process(proc)


@contextlib.contextmanager
def molly_brown(docbase, workdir):
    """molly-brown serving docbase as gemini://localhost:PORT/."""
    exe = require_tool("molly-brown")
    openssl = require_tool("openssl")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    key, cert = workdir / "key.pem", workdir / "cert.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
         "/CN=localhost", "-keyout", key, "-out", cert],
        check=True, capture_output=True, timeout=RUN_TIMEOUT)

    def argv(port):
        conf = workdir / "molly.conf"
        # "-" logs to stdout, which goes to molly-brown.log.
        conf.write_text(
            'Port = %d\nHostname = "localhost"\nCertPath = "%s"\n'
            'KeyPath = "%s"\nDocBase = "%s"\nAccessLog = "-"\n'
            'ErrorLog = "-"\n' % (port, cert, key, docbase),
            encoding="utf-8")
        return [exe, "-c", str(conf)]

    with listening(argv, workdir, "molly-brown") as port:
        yield port


@contextlib.contextmanager
def gophernicus(root, workdir):
    """Gophernicus serving root on a loopback port, one process per
    connection on the accepted socket, as inetd would run it."""
    # /usr/sbin is not on every user's PATH.
    exe = shutil.which("gophernicus") or "/usr/sbin/gophernicus"
    if not os.access(exe, os.X_OK):
        pytest.fail("gophernicus is not installed (the e2e suite needs it)")
    activate = require_tool("systemd-socket-activate")
    drop = []
    if os.geteuid() == 0:
        drop = [require_tool("setpriv"), "--reuid=nobody",
                "--regid=nogroup", "--clear-groups"]

    def argv(port):
        # No footer, virtual hosts, home directories, executable maps,
        # shared memory or syslog: the plain tree and nothing else.
        return [activate, "-l", "127.0.0.1:%d" % port, "--inetd", "-a",
                *drop, exe, "-h", "localhost", "-p", str(port),
                "-r", str(root), "-nf", "-nv", "-nu", "-nx", "-nm", "-ns"]

    with listening(argv, workdir, "gophernicus") as port:
        yield port


def menu_items(body):
    """(type, display, selector, host, port) of a Gopher menu's items."""
    lines = gopher_lines(body)
    assert lines[-1] == ".", lines[-3:]
    items = []
    for ln in lines[:-1]:
        t, rest = ln[0], ln[1:]
        fields = rest.split("\t")
        assert len(fields) == 4, ln
        assert t != "3", "an error in a menu: %r" % ln
        if t != "i":
            items.append((t, fields[0], fields[1], fields[2],
                          int(fields[3])))
    return items


# --------------------------------------------------------------------------
# The trees


def test_seed_tree(tmp_path, server):
    dest = tmp_path / "mirror"
    proc = export_ok(dest, tmp_path)
    assert ("exported 1 articles in 2 sections to %s" % dest) in proc.stderr
    assert tree(dest) == SEED_TREE
    for rel in SEED_TREE:
        mode = stat.S_IMODE((dest / rel).stat().st_mode)
        assert mode == (DIR_MODE if rel.endswith("/") else FILE_MODE), (
            rel, oct(mode))
    # No TLS, no listening: no certificate was made.
    assert not (tmp_path / "state").exists()

    # The Gopher text is serai's own answer, byte for byte (CRLF lines:
    # Gophernicus sends them as they are, and so would a plain server).
    live = server.gopher(ARTICLE)
    assert (dest / "gopher/news/beijing-declaration.txt").read_bytes() == live

    # The feeds are the live ones (but for the port), in both trees, and
    # the same bytes over Gopher.
    for rel, path in SEED_FEEDS:
        live = live_feed(server, path, exported=True)
        atom_feed(live)
        assert (dest / "gemini" / rel).read_bytes() == live, rel
        assert (dest / "gopher" / rel).read_bytes() == live, rel
        assert server.gopher(path) == server.gemini(path).body, path

    # The gemtext is serai's own page but for the link targets and the
    # live search link.
    for page, path, links, searches in [
            ("news/beijing-declaration.gmi", ARTICLE,
             [("/news/", "./"), ("/", "../")], 0),
            ("news/index.gmi", "/news/",
             [("/", "../"), ("/news/feed.xml", "feed.xml"),
              (ARTICLE, "beijing-declaration.gmi")], 1),
            ("index.gmi", "/",
             [("/feed.xml", "feed.xml"), ("/news/", "news/")], 1)]:
        live = as_exported(server.gemini(path).body.decode("utf-8"),
                           links, searches)
        assert (dest / "gemini" / page).read_text("utf-8") == live, page


def test_made_up_tree_and_links(tmp_path):
    root = make_archive(tmp_path / "archive")
    dest = tmp_path / "mirror"
    proc = export_ok(dest, tmp_path, root)
    assert "exported 6 articles in 4 sections" in proc.stderr
    gem, gop = dest / "gemini", dest / "gopher"
    assert [p for p in tree(gem) if not p.endswith("/")] == sorted(
        [g for g, _ in MADE_UP_PAGES] + list(MADE_UP_FEEDS))
    assert [p for p in tree(gop) if not p.endswith("/")] == sorted(
        [g for _, g in MADE_UP_PAGES] + list(MADE_UP_FEEDS))

    # One feed per section, the same bytes in both trees.
    for rel, titles in MADE_UP_FEEDS.items():
        data = (gem / rel).read_bytes()
        assert (gop / rel).read_bytes() == data, rel
        assert feed_titles(data) == titles, rel

    # Every gemtext link resolves inside the capsule, and every page and
    # feed is reached by one (the home by the way up from a section).
    reached = set()
    for page, _ in MADE_UP_PAGES:
        for target, _label in gemini_links((gem / page).read_text("utf-8")):
            reached.add(resolve_gemini(gem, page, target))
    assert reached == {g for g, _ in MADE_UP_PAGES} | set(MADE_UP_FEEDS)

    home = (gem / "index.gmi").read_text("utf-8")
    assert home == (
        "# Made-up archive\n\n=> feed.xml Atom feed\n\n"
        "## Sections\n\n=> news/ News\n\n"
        "## Newest\n\n"
        "=> news/newer.gmi 2017-01-02 A newer story\n"
        "=> news/science/space/orbit.gmi 2016-12-25 In orbit\n"
        "=> news/science/comet.gmi 2016-12-24 A comet passes\n"
        "=> news/older.gmi 2016-11-08 An older story\n\n"
        "## Articles\n\n=> about.gmi About this archive\n")

    news = (gem / "news/index.gmi").read_text("utf-8").split("\n")
    # Sections, then articles newest first in the subscription format.
    assert news[:3] == ["# News", "", "What happened."]
    assert "=> ../ Up: Home" in news
    assert "=> feed.xml Atom feed" in news
    at = news.index("=> science/ Science")
    assert news[at + 1:at + 7] == [
        "", "## Articles", "",
        "=> newer.gmi 2017-01-02 A newer story",
        "=> older.gmi 2016-11-08 An older story",
        "=> undated.gmi Undated notes"]
    space = (gem / "news/science/space/index.gmi").read_text("utf-8")
    assert "=> ../ Up: Science\n" in space
    assert "=> orbit.gmi 2016-12-25 In orbit\n" in space
    orbit = (gem / "news/science/space/orbit.gmi").read_text("utf-8")
    assert orbit == (
        "# In orbit\n=> ./ space\n"
        "2016-12-25\n\nTwo levels below the news.\n\n"
        "=> ../../../ Home\n=> ../../ News\n=> ../ Science\n"
        "=> ./ space\n")
    # The way on: up the breadcrumb, then the neighbours in the section.
    older = (gem / "news/older.gmi").read_text("utf-8")
    assert older.endswith(
        "\n\n=> ../ Home\n=> ./ News\n"
        "=> newer.gmi Previous: A newer story\n"
        "=> undated.gmi Next: Undated notes\n")
    about = (gem / "about.gmi").read_text("utf-8")
    assert about.endswith("\n\n=> ./ Home\n")

    # Every gophermap item leads to a file Gophernicus serves.
    reached = set()
    for _, page in MADE_UP_PAGES:
        if page.endswith("gophermap"):
            for t, _display, sel in gophermap_items(gop / page):
                assert t in "01", (page, t)
                reached.add(resolve_gopher(gop, page, t, sel))
    assert reached == {g for _, g in MADE_UP_PAGES} | set(MADE_UP_FEEDS)
    items = gophermap_items(gop / "news/gophermap")
    assert items == [
        ("1", "Science", "science/"),
        ("0", "2017-01-02 A newer story", "newer.txt"),
        ("0", "2016-11-08 An older story", "older.txt"),
        ("0", "Undated notes", "undated.txt"),
        ("0", FEED_ITEM, "feed.xml"),
        ("1", "Up: Home", "/"),
    ]
    assert gophermap_items(gop / "gophermap") == [
        ("1", "News", "news/"),
        ("0", "2017-01-02 A newer story", "news/newer.txt"),
        ("0", "2016-12-25 In orbit", "news/science/space/orbit.txt"),
        ("0", "2016-12-24 A comet passes", "news/science/comet.txt"),
        ("0", "2016-11-08 An older story", "news/older.txt"),
        ("0", "About this archive", "about.txt"),
        ("0", FEED_ITEM, "feed.xml"),
    ]


def test_made_up_pages_are_the_live_ones(tmp_path, serai_factory):
    # The Newest list, the way on from an article and the feeds: the
    # exported pages are the live ones but for the link targets.
    root = make_archive(tmp_path / "archive")
    dest = tmp_path / "mirror"
    export_ok(dest, tmp_path, root)
    gem, gop = dest / "gemini", dest / "gopher"
    srv = serai_factory(root=root).start()
    for page, path, links, searches in [
            ("index.gmi", "/",
             [("/feed.xml", "feed.xml"), ("/news/", "news/"),
              ("/news/newer", "news/newer.gmi"),
              ("/news/science/space/orbit", "news/science/space/orbit.gmi"),
              ("/news/science/comet", "news/science/comet.gmi"),
              ("/news/older", "news/older.gmi"),
              ("/about", "about.gmi")], 1),
            ("about.gmi", "/about", [("/", "./")], 0),
            ("news/older.gmi", "/news/older",
             [("/news/", "./"), ("/", "../"),
              ("/news/newer", "newer.gmi"),
              ("/news/undated", "undated.gmi")], 0),
            ("news/science/space/index.gmi", "/news/science/space/",
             [("/news/science/", "../"),
              ("/news/science/space/feed.xml", "feed.xml"),
              ("/news/science/space/orbit", "orbit.gmi")], 1),
            ("news/science/space/orbit.gmi", "/news/science/space/orbit",
             [("/news/science/space/", "./"), ("/news/science/", "../"),
              ("/news/", "../../"), ("/", "../../../")], 0)]:
        live = as_exported(srv.gemini(path).body.decode("utf-8"),
                           links, searches)
        assert (gem / page).read_text("utf-8") == live, page
    for rel in MADE_UP_FEEDS:
        live = live_feed(srv, "/" + rel, exported=True)
        assert (gem / rel).read_bytes() == live, rel
        assert (gop / rel).read_bytes() == live, rel


# --------------------------------------------------------------------------
# Refusals and errors


def test_refuses_an_existing_tree(tmp_path):
    dest = tmp_path / "mirror"
    (dest / "gopher").mkdir(parents=True)
    marker = dest / "gopher" / "mine.txt"
    marker.write_text("not serai's\n")
    proc = run_export(dest, tmp_path)
    assert_failed_cleanly(proc)
    assert proc.returncode == 1
    assert str(dest / "gopher") in proc.stderr
    # Nothing written, nothing removed.
    assert tree(dest) == ["gopher/", "gopher/mine.txt"]
    assert marker.read_text() == "not serai's\n"

    # A second export over a first one is refused the same way.
    dest2 = tmp_path / "again"
    export_ok(dest2, tmp_path)
    before = tree(dest2)
    proc = run_export(dest2, tmp_path)
    assert proc.returncode == 1
    assert str(dest2 / "gemini") in proc.stderr
    assert tree(dest2) == before


def test_errors_name_the_path(tmp_path):
    missing = tmp_path / "no" / "such" / "dir"
    proc = run_export(missing, tmp_path)
    assert_failed_cleanly(proc)
    assert proc.returncode == 1
    assert str(missing) in proc.stderr

    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    proc = run_export(a_file, tmp_path)
    assert proc.returncode == 1
    assert str(a_file) in proc.stderr and "not a directory" in proc.stderr


def test_refuses_the_archive_itself(tmp_path):
    root = make_archive(tmp_path / "archive")
    proc = run_export(root / "mirror", tmp_path, root)
    assert_failed_cleanly(proc)
    assert proc.returncode == 1
    assert "inside the archive root" in proc.stderr
    assert not (root / "mirror").exists()


def test_two_pages_one_file(tmp_path):
    # An article named "index" and the section page are both index.gmi:
    # never overwritten, the export stops naming the file.
    root = make_archive(tmp_path / "archive")
    (root / "news" / "index.txt").write_text("Index\n\nA page.\n")
    dest = tmp_path / "mirror"
    proc = run_export(dest, tmp_path, root)
    assert_failed_cleanly(proc)
    assert proc.returncode == 1
    assert str(dest / "gemini/news/index.gmi") in proc.stderr
    assert "exported" not in proc.stderr


def test_export_and_check_do_not_mix(tmp_path):
    proc = run_export(tmp_path / "mirror", tmp_path, CONTENT, "-n")
    assert proc.returncode == 2
    assert "usage: serai" in proc.stderr
    assert not (tmp_path / "mirror").exists()


# --------------------------------------------------------------------------
# Served by stock servers


def test_capsule_served_by_molly_brown(tmp_path, public_dir, seed):
    dest = public_dir / "mirror"
    export_ok(dest, tmp_path)
    with molly_brown(dest / "gemini", tmp_path / "molly") as port:
        def fetch(url):
            resp = gemini_fetch(url, port=port)
            assert resp.status_line.startswith("20 text/gemini"), (
                url, resp.status_line)
            return resp.body.decode("utf-8")

        home = "gemini://localhost:%d/" % port
        links = dict(gemini_links(fetch(home)))
        news = gemini_join(home, next(t for t, label in links.items()
                                      if label == "News"))
        assert news == home + "news/"
        # The section lists the article; the link, followed, works.
        links = gemini_links(fetch(news))
        target = next(t for t, label in links if label == seed.title)
        url = gemini_join(news, target)
        assert url == home + "news/beijing-declaration.gmi"
        lines = fetch(url).split("\n")
        assert_seed_gemtext(lines, seed)
        # And back up to the section.
        up = gemini_join(url, LINK_RE.match(lines[1]).group(1))
        assert up == news
        assert fetch(up).startswith("# News\n")
        # The breadcrumb at the end leads home and to the section.
        assert [gemini_join(url, t) for t, _ in
                gemini_links("\n".join(lines[-3:]))] == [home, news]
        # The section's feed is served as the file it is.
        feed = gemini_join(news, dict(
            (label, t) for t, label in gemini_links(fetch(news)))[
                "Atom feed"])
        assert feed == news + FEED
        resp = gemini_fetch(feed, port=port)
        assert resp.status_line.split(";")[0] in (
            "20 text/xml", "20 application/xml"), resp.status_line
        assert resp.body == (dest / "gemini/news/feed.xml").read_bytes()
        atom_feed(resp.body)


def test_made_up_capsule_crawled_through_molly_brown(tmp_path, public_dir):
    root = make_archive(tmp_path / "archive")
    dest = public_dir / "mirror"
    export_ok(dest, tmp_path, root)
    with molly_brown(dest / "gemini", tmp_path / "molly") as port:
        home = "gemini://localhost:%d/" % port
        seen, todo = set(), [home]
        while todo and len(seen) < 50:
            url = todo.pop()
            if url in seen:
                continue
            seen.add(url)
            resp = gemini_fetch(url, port=port)
            if url.endswith("/" + FEED):
                # A file, not a page: XML, and nothing to crawl into.
                assert resp.status_line.split(";")[0] in (
                    "20 text/xml", "20 application/xml"), (
                        url, resp.status_line)
                rel = url[len(home):]
                assert resp.body == (dest / "gemini" / rel).read_bytes()
                assert feed_titles(resp.body) == MADE_UP_FEEDS[rel], url
                # Its entries open on the mirror (the mirror answers for
                # the capsule's host: only the port differs here).
                for e in atom_feed(resp.body).findall(ATOM + "entry"):
                    href = e.find(ATOM + "link").get("href")
                    assert href.startswith("gemini://localhost/"), href
                    entry = home + href[len("gemini://localhost/"):]
                    assert gemini_fetch(entry, port=port).status_line \
                        .startswith("20 text/gemini"), entry
                continue
            assert resp.status_line.startswith("20 text/gemini"), (
                url, resp.status_line)
            for target, _ in gemini_links(resp.body.decode("utf-8")):
                todo.append(gemini_join(url, target))
    pages = {home + (g[:-len("index.gmi")] if g.endswith("index.gmi")
                     else g) for g, _ in MADE_UP_PAGES}
    assert seen == pages | {home + f for f in MADE_UP_FEEDS}


def test_gopher_tree_served_by_gophernicus(tmp_path, public_dir, seed,
                                           server):
    dest = public_dir / "mirror"
    export_ok(dest, tmp_path)
    with gophernicus(dest / "gopher", tmp_path) as port:
        def items(selector):
            found = menu_items(gopher_fetch(selector, port=port))
            for _, _, _, host, p in found:
                assert (host, p) == ("localhost", port)
            return found

        home = items("")
        assert [(t, d, s) for t, d, s, _, _ in home] == [
            ("1", "News", "/news/"), ("0", FEED_ITEM, "/feed.xml")]
        news = items("/news/")
        article = [s for t, d, s, _, _ in news
                   if t == "0" and d.endswith("...") and
                   seed.title.startswith(d[:-3])]
        assert article == [ARTICLE + ".txt"]
        assert ("1", "Up: Home", "/") in [i[:3] for i in news]
        assert ("0", FEED_ITEM, "/news/feed.xml") in [i[:3] for i in news]
        # The same menu lines as serai's but for host, port, ".txt" and
        # the live search item.
        for selector, served in [("/", home), ("/news/", news)]:
            live = [(t, d, s) for t, d, s, _, _ in
                    menu_items(server.gopher(selector))]
            assert live.count(SEARCH_ITEM) == 1, live
            live.remove(SEARCH_ITEM)
            assert [(t, d, s.replace(".txt", ""))
                    for t, d, s, _, _ in served] == live, selector
        # The feeds are the exported files, byte for byte.
        for rel, path in SEED_FEEDS:
            body = gopher_fetch(path, port=port)
            assert body == (dest / "gopher" / rel).read_bytes(), path
            atom_feed(body)

        body = gopher_fetch(article[0], port=port)
        assert body == server.gopher(ARTICLE)
        assert_seed_text(" ".join(gopher_lines(body)), seed)


def test_made_up_tree_crawled_through_gophernicus(tmp_path, public_dir):
    root = make_archive(tmp_path / "archive")
    dest = public_dir / "mirror"
    export_ok(dest, tmp_path, root)
    with gophernicus(dest / "gopher", tmp_path) as port:
        seen, todo, texts = set(), [("1", "/")], {}
        while todo and len(seen) < 50:
            t, sel = todo.pop()
            if sel in seen:
                continue
            seen.add(sel)
            body = gopher_fetch(sel, port=port)
            if t == "1":
                for it, _, isel, _, _ in menu_items(body):
                    todo.append((it, isel))
            else:
                texts[sel] = body
    assert seen == {"/" + (g[:-len("gophermap")] if g.endswith("gophermap")
                           else g) for _, g in MADE_UP_PAGES} | {
        "/" + f for f in MADE_UP_FEEDS}
    # The feeds (type 0, like the articles) are the files, byte for byte.
    for rel, titles in MADE_UP_FEEDS.items():
        body = texts.pop("/" + rel)
        assert body == (dest / "gopher" / rel).read_bytes(), rel
        assert feed_titles(body) == titles, rel
    texts = {sel: gopher_lines(body) for sel, body in texts.items()}
    assert texts["/news/science/space/orbit.txt"] == [
        "In orbit", "Home > News > Science > space",
        "2016-12-25", "", "Two levels below the news."]
