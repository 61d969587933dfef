"""A generated archive (tests/gen_archive.py): a few hundred articles over
a tree of sections, Chinese ones, odd titles, CRLF files, and one broken
file per way serai skips an entry.  Every expectation comes from the
generator's manifest, not from serai."""

import random
import re
import sys
import urllib.parse
from pathlib import Path

import pytest

from conftest import (VALGRIND, Server, assert_failed_cleanly, display_width,
                      gopher_lines, run_serai, serving)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gen_archive import generate  # noqa: E402

try:
    import feedparser
except ImportError:  # a missing checker is a failure, never a skip
    feedparser = None

# Some 2 s of checks, 15 under valgrind (where Gopher fetches a sample).
N, DEPTH, FANOUT, SAMPLE = 300, 3, 3, 30
CJK_EVERY = 10
SEED = 20161108
WRAP = 70
MENU_WIDTH = 67
LINK_RE = re.compile(r"^=>[ \t]*(\S+)(?:[ \t]+(.*))?$")


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    """(manifest, server): the archive generated once, one server on it."""
    tmp = tmp_path_factory.mktemp("generated")
    m = generate(tmp / "archive", N, depth=DEPTH, fanout=FANOUT, seed=SEED,
                 broken=True, cjk_every=CJK_EVERY)
    srv = Server(tmp / "srv", root=tmp / "archive")
    with serving(srv):
        yield m, srv


def sample(seq, k, salt):
    seq = list(seq)
    return random.Random(SEED + salt).sample(seq, min(k, len(seq)))


def cjk_articles(m):
    return [a for a in m.articles if a.cjk is not None]


def label(a):
    return ("%s %s" % (a.date[:10], a.title)) if a.date else a.title


def gem_links(text, heading):
    """The link lines under a '## heading' of a gemtext page."""
    if ("\n## %s\n\n" % heading) not in text:
        return []
    block = text.split("\n## %s\n\n" % heading, 1)[1].split("\n\n", 1)[0]
    return [LINK_RE.match(ln).groups() for ln in block.split("\n")
            if ln.startswith("=>")]


def check_gopher_text(lines, where):
    for ln in lines:
        assert display_width(ln) <= WRAP, (where, ln, display_width(ln))
        assert not ln.startswith("."), (where, ln)


def squash(s):
    return "".join(s.split())


def test_check_names_every_broken_file(gen):
    m, srv = gen
    proc = run_serai("-n", "-c", srv.config, cwd=srv.workdir)
    assert_failed_cleanly(proc)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    for b in m.broken:
        want = "%s: skipped: " % b.log_path
        hits = [ln for ln in lines if want in ln]
        assert len(hits) == 1, (b, proc.stderr)
        assert b.reason in hits[0], (b, hits[0])
    # Nothing else was skipped or warned about: the good files are good.
    assert sum(": skipped: " in ln for ln in lines) == len(m.broken), (
        proc.stderr)
    assert ("%d articles in %d sections, %d skipped, 0 other warnings"
            % (len(m.articles), len(m.sections), len(m.broken))
            in proc.stderr), proc.stderr


def test_articles(gen):
    m, srv = gen
    cjk = cjk_articles(m)
    assert cjk, "the generator made no Chinese article"
    other = [a for a in m.articles if a.cjk is None]
    for a in sample(other, SAMPLE, 1) + cjk:
        r = srv.gemini(a.path)
        assert r.status_line == (
            "20 text/gemini; charset=utf-8; lang=%s" % a.lang), a
        text = r.body.decode("utf-8")
        assert text.startswith("# %s\n" % a.title), (a, text[:200])
        assert a.token in text, a
        if a.date:
            assert "\n%s\n" % a.date[:10] in text, a
        if a.cjk_text:
            assert "\n%s\n" % a.cjk_text in text, a
    # Gopher: every article when that is cheap, the sample under valgrind.
    for a in (sample(other, SAMPLE, 1) + cjk if VALGRIND else m.articles):
        lines = gopher_lines(srv.gopher(a.path))
        check_gopher_text(lines, a.path)
        flat = squash("".join(lines))
        assert squash(a.title) in flat, a
        assert a.token in flat, a
        if a.cjk_text:
            assert squash(a.cjk_text) in flat, a


def test_sections(gen):
    m, srv = gen
    for s in m.sections:
        page = srv.gemini(s.path)
        assert page.status_line == (
            "20 text/gemini; charset=utf-8; lang=%s" % s.lang), s
        text = page.body.decode("utf-8")
        assert text.startswith("# %s\n" % s.title), s
        want = m.in_section(s.path)
        assert gem_links(text, "Articles") == [
            (a.path, label(a)) for a in want], s.path
        subs = m.subsections(s.path)
        assert gem_links(text, "Sections") == [
            (x.path, x.title) for x in subs], s.path
        if s.parent is None:
            assert gem_links(text, "Newest") == [
                (a.path, label(a)) for a in m.newest("/", 10)]

        lines = gopher_lines(srv.gopher(s.path))
        assert lines[-1] == "."
        items = [ln.split("\t") for ln in lines[:-1]]
        for it in items:
            assert len(it) == 4, (s.path, it)
            assert display_width(it[0][1:]) <= MENU_WIDTH, (s.path, it)
        arts = [it[1] for it in items
                if it[0].startswith("0") and not it[1].endswith("/feed.xml")]
        if s.parent is None:
            newest = m.newest("/", 10)
            assert arts[:len(newest)] == [a.path for a in newest]
            arts = arts[len(newest):]
        assert arts == [a.path for a in want], s.path
        assert [it[1] for it in items if it[0].startswith("1")
                and not it[0].startswith("1Up: ")] == [
            x.path for x in subs], s.path


def test_search_tokens(gen):
    m, srv = gen
    for a in sample(m.articles, SAMPLE, 2):
        text = srv.gemini("/search?" + a.token).body.decode("utf-8")
        assert "1 hit, page 1 of 1." in text, (a, text)
        assert "\n=> %s %s\n" % (a.path, label(a)) in text, (a, text)
        lines = gopher_lines(srv.gopher("/search\t" + a.token))
        assert [ln.split("\t")[1] for ln in lines
                if ln.startswith("0")] == [a.path], (a, lines)


def test_search_cjk(gen):
    m, srv = gen
    for a in cjk_articles(m):
        # The unique ideographs with a neighbour each side: a substring of
        # the paragraph, not a word (Chinese has no spaces to split at).
        k = a.cjk_text.index(a.cjk)
        q = a.cjk_text[k - 1:k + len(a.cjk) + 1]
        text = srv.gemini("/search?" + urllib.parse.quote(q)).body.decode(
            "utf-8")
        assert "1 hit, page 1 of 1." in text, (a, q, text)
        assert "\n=> %s %s\n" % (a.path, label(a)) in text, (a, q, text)


def rfc3339(date):
    """serai's Atom timestamp for a Date: value."""
    if len(date) == 10:
        return date + "T00:00:00Z"
    day, rest = date[:10], date[11:]
    hm, rest = rest[:5], rest[5:]
    sec = ":00"
    if rest.startswith(":"):
        sec, rest = rest[:3], rest[3:]
    return "%sT%s%s%s" % (day, hm, sec, rest or "Z")


def test_feeds(gen):
    m, srv = gen
    if feedparser is None:
        pytest.fail("python3-feedparser is not installed for %s"
                    % sys.executable)
    base = "gemini://localhost:%d" % srv.gemini_port
    # The root and the section with the most dated articles below it.
    busiest = max((s for s in m.sections if s.parent is not None),
                  key=lambda s: len(m.newest(s.path, 10 ** 6)))
    for s in (m.sections[0], busiest):
        r = srv.gemini(s.path + "feed.xml")
        assert r.status_line == "20 application/atom+xml"
        feed = feedparser.parse(r.body)
        assert not feed.bozo, feed.get("bozo_exception")
        want = m.newest(s.path, 50)
        if s.parent is None:
            assert len(want) == 50
        assert [e.link for e in feed.entries] == [base + a.path for a in want]
        assert [e.title for e in feed.entries] == [a.title for a in want]
        assert [e.updated for e in feed.entries] == [
            rfc3339(a.date) for a in want]
        assert feed.feed.title == s.title
