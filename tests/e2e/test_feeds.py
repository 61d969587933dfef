"""Atom feeds, the home page's newest list and the article pages' way
up, back and on, on a made-up archive of nested sections."""

import datetime
import re
import sys

import pytest

from conftest import gopher_lines

try:
    import feedparser
except ImportError:  # a missing checker is a failure, never a skip
    feedparser = None

LINK_RE = re.compile(r"^=>[ \t]*(\S+)(?:[ \t]+(.*))?$")
# 中国科学院与沿线国家的科研机构发表了《北京宣言》。
CJK = ("\u4e2d\u56fd\u79d1\u5b66\u9662\u4e0e\u6cbf\u7ebf\u56fd\u5bb6\u7684"
       "\u79d1\u7814\u673a\u6784\u53d1\u8868\u4e86\u300a\u5317\u4eac\u5ba3"
       "\u8a00\u300b\u3002")
SECTIONS = ["news", "news/science", "news/science/space", "culture"]


def make_archive(root, n=70):
    """n dated articles spread over SECTIONS (a day apart, newest the
    highest number), one undated one, titles holding & and <, one CJK
    paragraph.  Returns {path: (date, title)} of the dated ones."""
    dated = {}
    root.mkdir(parents=True, exist_ok=True)
    (root / "section.ini").write_text("[section]\ntitle = Test & <archive>\n",
                                      encoding="utf-8")
    for sec in SECTIONS:
        (root / sec).mkdir(parents=True, exist_ok=True)
    (root / "news/section.ini").write_text("[section]\ntitle = News\n",
                                           encoding="utf-8")
    start = datetime.date(2019, 1, 1)
    for i in range(n):
        sec = SECTIONS[i % len(SECTIONS)]
        date = (start + datetime.timedelta(days=i)).isoformat()
        title = "Story %03d: R&D <%s>" % (i, sec)
        body = CJK if i == 7 else "Paragraph of story %d." % i
        (root / sec / ("s%03d.txt" % i)).write_text(
            "Date: %s\n%s\n\n%s\n" % (date, title, body), encoding="utf-8")
        dated["/%s/s%03d" % (sec, i)] = (date, title)
    (root / "news/undated.txt").write_text(
        "Undated & unlisted\n\nNo date.\n", encoding="utf-8")
    return dated


def need_feedparser():
    if feedparser is None:
        pytest.fail("python3-feedparser is not installed for %s (the "
                    "suite needs it: apt-get install python3-feedparser)"
                    % sys.executable)


def parse(body):
    need_feedparser()
    feed = feedparser.parse(body)
    assert not feed.bozo, feed.get("bozo_exception")
    return feed


def gem_links(body):
    return [m.groups() for m in
            map(LINK_RE.match, body.decode("utf-8").split("\n")) if m]


@pytest.fixture
def archive_server(tmp_path, serai_factory):
    dated = make_archive(tmp_path / "archive")
    srv = serai_factory(root=tmp_path / "archive")
    srv.start()
    return srv, dated


def check_feed(srv, dated, section):
    resp = srv.gemini("/%sfeed.xml" % section)
    assert resp.status_line == "20 application/atom+xml"
    feed = parse(resp.body)
    prefix = "/" + section
    want = sorted(((d, p) for p, (d, _) in dated.items()
                   if p.startswith(prefix)), reverse=True)[:50]
    base = "gemini://localhost:%d" % srv.gemini_port
    assert [e.link for e in feed.entries] == [base + p for _, p in want]
    assert [e.id for e in feed.entries] == [base + p for _, p in want]
    for e, (d, p) in zip(feed.entries, want):
        assert e.title == dated[p][1]
        assert e.updated == d + "T00:00:00Z"
    assert feed.feed.updated == want[0][0] + "T00:00:00Z"
    self_links = [ln.href for ln in feed.feed.links if ln.rel == "self"]
    assert self_links == [base + "/%sfeed.xml" % section]
    assert "Undated" not in resp.body.decode("utf-8")
    return resp.body, feed


def test_feeds(archive_server):
    srv, dated = archive_server
    body, feed = check_feed(srv, dated, "")
    assert feed.feed.title == "Test & <archive>"
    assert len(feed.entries) == 50
    news, nfeed = check_feed(srv, dated, "news/")
    assert nfeed.feed.title == "News"
    # Subsections count: the science stories are in the news feed.
    assert any("/news/science/" in e.link for e in nfeed.entries)
    check_feed(srv, dated, "news/science/space/")

    # Ids (and the bytes) survive a restart.
    srv.stop()
    srv.start()
    again = parse(srv.gemini("/news/feed.xml").body)
    assert [e.id for e in again.entries] == [e.id for e in nfeed.entries]
    assert srv.gemini("/feed.xml").body == body

    # Gopher: listed on the home and section menus, the same bytes.
    assert srv.gopher("/news/feed.xml") == news
    gopher_lines(news)
    for sel, feed_sel in (("", "/feed.xml"), ("/news/", "/news/feed.xml")):
        items = [ln.split("\t") for ln in gopher_lines(srv.gopher(sel))]
        assert ["0Atom feed (gemini links)", feed_sel, "localhost",
                str(srv.gopher_port)] in items


def test_navigation(archive_server):
    srv, dated = archive_server
    home = srv.gemini("/")
    text = home.body.decode("utf-8")
    assert text.startswith("# Test & <archive>\n")
    newest = text.split("\n## Newest\n\n", 1)[1].split("\n\n")[0]
    want = sorted(((d, p) for p, (d, _) in dated.items()), reverse=True)
    assert newest.split("\n")[:10] == [
        "=> %s %s %s" % (p, d, dated[p][1]) for d, p in want[:10]]
    assert "=> /news/feed.xml Atom feed" in srv.gemini(
        "/news/").body.decode("utf-8")
    assert "=> /feed.xml Atom feed" in text
    # Gopher home: the same newest list as text items.
    items = [ln.split("\t") for ln in gopher_lines(srv.gopher(""))]
    for d, p in want[:10]:
        assert ["0%s %s" % (d, dated[p][1]), p, "localhost",
                str(srv.gopher_port)] in items

    # An article in news/science: up its breadcrumb, back and on.
    sec = sorted(((d, p) for p, (d, _) in dated.items()
                  if p.rsplit("/", 1)[0] == "/news/science"), reverse=True)
    _, path = sec[1]
    page = srv.gemini(path)
    lines = page.body.decode("utf-8").split("\n")
    assert lines[1].startswith("=> /news/science/ ")
    links = gem_links(page.body)
    assert ("/", "Home") in links
    assert ("/news/", "News") in links
    assert ("/news/science/", "science") in links
    assert (sec[0][1], "Previous: " + dated[sec[0][1]][1]) in links
    assert (sec[2][1], "Next: " + dated[sec[2][1]][1]) in links
    for target, _ in links:
        resp = srv.gemini(target)
        assert resp.status_line.startswith("20 text/gemini"), target
    first = gem_links(srv.gemini(sec[0][1]).body)
    assert not [t for t, label in first if label.startswith("Previous:")]
    # The CJK story keeps its paragraph, and is in the feed like any.
    assert CJK in srv.gemini("/culture/s007").body.decode("utf-8")
