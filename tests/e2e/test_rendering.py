"""Rendering of a made-up archive: dates, order, languages, markup,
wide characters, dots, CRLF files, empty sections, configured title."""

import pytest

from conftest import (GEMINI_OK, Server, display_width, gopher_lines,
                      normalise, serving)

CJK = "\u79d1\u5b66\u6280\u672f\u5408\u4f5c"  # six wide characters
ZH_TITLE = "\u4e2d\u6587\u6807\u9898"
ZH_SECTION = "\u4e2d\u6587"

FILES = {
    "section.ini": "[section]\ntitle = Ignored title\n",
    "news/section.ini": "[section]\ntitle = World News\n"
                        "description = Things that happened.\n",
    "news/a-old.txt": "Date: 2020-01-02\nOld story\n\nOld body.\n",
    "news/b-new.txt": "Date: 2021-05-06T10:00:00Z\nNew story\n\nNew body.\n",
    "news/c-undated.txt": "Undated story\n\nBody.\n",
    "news/markup.txt": "Markup story\n\n=> not a link\n\n# not a heading"
                       "\n\n* not a list\n\n> not a quote\n\n```not pre\n",
    "news/dots.txt": "Dots story\n\n" + "x" * 69
                     + " .dotword more words\n\n.starts with a dot\n",
    "news/hardwrap.txt": "Hard-wrapped story\n\nFirst line\n  second line"
                         "\nthird line.\n",
    "news/wrongloc.txt": "Location: Home > Sports\nWrong location\n\nBody.\n",
    "zh/section.ini": "[section]\ntitle = %s\nlang = zh-Hans\n" % ZH_SECTION,
    "zh/wide.txt": "%s\n\n%s\n" % (ZH_TITLE, CJK * 40),
}


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    base = tmp_path_factory.mktemp("made")
    root = base / "content"
    (root / "empty").mkdir(parents=True)
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    # A BOM and CRLF line ends.
    (root / "news" / "crlf.txt").write_bytes(
        b"\xef\xbb\xbfLocation: Home > World News\r\nCRLF story\r\n\r\n"
        b"Body line.\r\n")
    srv = Server(base / "srv", root=root,
                 extra="\n[archive]\ntitle = Configured title\n")
    with serving(srv):
        yield srv


def gem_lines(srv, path, status=GEMINI_OK):
    resp = srv.gemini(path)
    assert resp.status_line == status
    return resp.body.decode("utf-8").split("\n")


def test_configured_title_wins(made):
    lines = gem_lines(made, "/")
    assert lines[0] == "# Configured title"
    assert "iConfigured title\t" in made.gopher("/").decode("utf-8")


def test_sections_listed_by_title(made):
    lines = gem_lines(made, "/")
    links = [ln for ln in lines
             if ln.startswith("=> ") and ln.split()[1].endswith("/")]
    assert links == ["=> /empty/ empty", "=> /news/ World News",
                     "=> /zh/ " + ZH_SECTION]


def test_articles_newest_first_then_undated_by_title(made):
    lines = gem_lines(made, "/news/")
    links = [ln for ln in lines if ln.startswith("=> /news/") and
             not ln.startswith("=> /news/feed.xml ")]
    assert "=> /news/feed.xml Atom feed" in lines
    assert links == [
        "=> /news/b-new 2021-05-06 New story",
        "=> /news/a-old 2020-01-02 Old story",
        "=> /news/crlf CRLF story",
        "=> /news/dots Dots story",
        "=> /news/hardwrap Hard-wrapped story",
        "=> /news/markup Markup story",
        "=> /news/c-undated Undated story",
        "=> /news/wrongloc Wrong location",
    ]
    assert "Things that happened." in lines


def test_gopher_menu_order_and_dates(made):
    lines = gopher_lines(made.gopher("/news/"))
    items = [ln.split("\t")[:2] for ln in lines
             if ln[:1] == "0" and not ln.split("\t")[1].endswith("feed.xml")]
    assert items[:3] == [
        ["02021-05-06 New story", "/news/b-new"],
        ["02020-01-02 Old story", "/news/a-old"],
        ["0CRLF story", "/news/crlf"],
    ]
    assert len(items) == 8


def test_dated_article_shows_its_date(made):
    lines = gem_lines(made, "/news/b-new")
    assert lines[:3] == ["# New story", "=> /news/ World News",
                         "2021-05-06"]
    text = gopher_lines(made.gopher("/news/b-new"))
    assert "2021-05-06" in text


def test_markup_stays_text(made):
    lines = gem_lines(made, "/news/markup")
    body = lines[2:]
    # The navigation links that close the page are real links.
    while body and (body[-1].startswith("=> ") or body[-1] == ""):
        body.pop()
    for ln in body:
        for mark in ("=>", "#", "* ", ">", "```"):
            assert not ln.startswith(mark), ln
    for para in ("=> not a link", "# not a heading", "* not a list",
                 "> not a quote", "```not pre"):
        assert " " + para in body


def test_gopher_lines_never_start_with_a_dot(made):
    lines = gopher_lines(made.gopher("/news/dots"))
    assert not any(ln.startswith(".") for ln in lines), lines
    joined = normalise(" ".join(lines))
    assert ".dotword more words" in joined
    assert ".starts with a dot" in joined
    assert all(display_width(ln) <= 70 for ln in lines)


def test_wide_characters_wrap_by_columns(made):
    resp = made.gemini("/zh/wide")
    assert resp.status_line == "20 text/gemini; charset=utf-8; lang=zh-Hans"
    assert CJK * 40 in resp.body.decode("utf-8").split("\n")
    lines = gopher_lines(made.gopher("/zh/wide"))
    widths = [display_width(ln) for ln in lines]
    assert max(widths) <= 70, widths
    assert max(widths) >= 68, widths
    # Wrapping between wide characters adds no spaces and loses nothing.
    assert CJK * 40 in "".join(lines)


def test_section_language_is_inherited(made):
    resp = made.gemini("/zh/")
    assert resp.status_line == "20 text/gemini; charset=utf-8; lang=zh-Hans"
    assert "=> /zh/wide " + ZH_TITLE in resp.body.decode("utf-8")


def test_crlf_file_with_bom(made):
    lines = gem_lines(made, "/news/crlf")
    assert lines[0] == "# CRLF story"
    assert "Body line." in lines
    assert not any("\r" in ln for ln in lines)


def test_hard_wrapped_paragraph_is_joined(made):
    lines = gem_lines(made, "/news/hardwrap")
    assert "First line second line third line." in lines


def test_empty_section(made):
    lines = gem_lines(made, "/empty/")
    assert lines[0] == "# empty"
    assert "This section is empty." in lines
    menu = gopher_lines(made.gopher("/empty/"))
    assert any(ln.startswith("iThis section is empty.\t") for ln in menu)
    assert menu[-1] == "."


def test_location_mismatch_is_served_and_reported(made):
    assert made.gemini("/news/wrongloc").status_line == GEMINI_OK
    assert any("/news/wrongloc" in ln and "Location" in ln
               for ln in made.log().splitlines()), made.log()


def test_narrow_menus(serai_factory, seed):
    srv = serai_factory(extra="menu_width = 30\n")
    srv.start()
    lines = gopher_lines(srv.gopher("/news/"))
    item = [ln for ln in lines if ln.startswith("0")][0]
    display = item.split("\t")[0][1:]
    assert display_width(display) <= 30
    # ASCII "...": the UMN client on ncurses shows "\u2026" as "~@".
    assert display.endswith("...")
    assert "\u2026" not in item
    assert seed.title.startswith(display[:-3].rstrip())


def test_dates_ordered_by_instant(serai_factory, tmp_path):
    """Offsets count: 01:00 at +08:00 on the 2nd is 17:00 UTC on the 1st,
    three hours before 20:00 UTC, although its date reads later."""
    root = tmp_path / "content"
    (root / "world").mkdir(parents=True)
    (root / "world" / "east.txt").write_text(
        "Date: 2021-03-02T01:00+08:00\nMorning in the east\n\nBody.\n",
        encoding="utf-8")
    (root / "world" / "west.txt").write_text(
        "Date: 2021-03-01T20:00Z\nEvening in the west\n\nBody.\n",
        encoding="utf-8")
    (root / "world" / "day.txt").write_text(
        "Date: 2021-03-01\nThe day itself\n\nBody.\n", encoding="utf-8")
    srv = serai_factory(root=root)
    srv.start()
    links = [ln for ln in gem_lines(srv, "/world/")
             if ln.startswith("=> /world/") and "feed.xml" not in ln]
    assert links == [
        "=> /world/west 2021-03-01 Evening in the west",
        "=> /world/east 2021-03-02 Morning in the east",
        "=> /world/day 2021-03-01 The day itself",
    ]
    feed = srv.gemini("/world/feed.xml").body.decode("utf-8")
    assert (feed.index("/world/west") < feed.index("/world/east")
            < feed.index("/world/day"))


def test_gemini_links_are_labelled_by_their_target(serai_factory, tmp_path):
    """Every link to a section says where it leads: the section's title
    ("Home" for the root), never the breadcrumb of the way there."""
    root = tmp_path / "content"
    deep = root / "news" / "science" / "space"
    deep.mkdir(parents=True)
    (root / "news" / "section.ini").write_text(
        "[section]\ntitle = World News\n", encoding="utf-8")
    (root / "news" / "science" / "section.ini").write_text(
        "[section]\ntitle = Science Desk\n", encoding="utf-8")
    (deep / "orbit.txt").write_text(
        "Date: 2020-01-02\nIn orbit\n\nBody.\n", encoding="utf-8")
    srv = serai_factory(root=root)
    srv.start()
    lines = gem_lines(srv, "/news/science/space/orbit")
    assert lines[1] == "=> /news/science/space/ space"
    checked = 0
    for page in ("/news/science/space/orbit", "/news/science/space/",
                 "/news/science/", "/news/"):
        for ln in gem_lines(srv, page):
            if not ln.startswith("=> ") or not ln.split()[1].endswith("/"):
                continue
            _, target, label = ln.split(" ", 2)
            label = label[len("Up: "):] if label.startswith("Up: ") else label
            assert ">" not in label, ln
            if target == "/":
                want = "Home"
            else:
                want = gem_lines(srv, target)[0][len("# "):]
            assert label == want, (page, ln)
            checked += 1
    assert checked >= 10


def test_gopher_heading_has_no_orphans(serai_factory, tmp_path):
    """The heading block of a Gopher article: the title in balanced
    lines, the breadcrumb on one line, shortened from the root end with
    a cut mark, never wrapped into a lone word (the issue's
    "…Rainfall & robot: level" / "3")."""
    root = tmp_path / "content"
    titles = ["Budget & agreement: level 1", "Observatory & medicine: level 2",
              "Rainfall & robot: level 3"]
    sec = root
    for i, title in enumerate(titles):
        sec = sec / ("s%d" % i)
        sec.mkdir(parents=True)
        (sec / "section.ini").write_text(
            "[section]\ntitle = %s\n" % title, encoding="utf-8")
    long_title = ("Report on a very long title that goes on and on about "
                  "the glacier and more")
    (sec / "deep.txt").write_text(
        "Date: 2020-01-02\n%s\n\nBody.\n" % long_title, encoding="utf-8")
    (root / "s0" / "shallow.txt").write_text(
        "Date: 2020-01-03\nShort one\n\nBody.\n", encoding="utf-8")
    wide = root / "wide"
    wide.mkdir()
    (wide / "section.ini").write_text(
        "[section]\ntitle = %s\n" % ("Section " * 12).strip(),
        encoding="utf-8")
    (wide / "w.txt").write_text("Date: 2020-01-04\nW\n\nBody.\n",
                                encoding="utf-8")
    srv = serai_factory(root=root)
    srv.start()

    def heading(sel):
        lines = gopher_lines(srv.gopher(sel))
        return lines[:lines.index(next(ln for ln in lines
                                       if ln.startswith("2020-")))]

    head = heading("/s0/s1/s2/deep")
    title_lines, crumb = head[:-1], head[-1]
    assert normalise(" ".join(title_lines)) == long_title
    # Two lines of about equal length, not a full line and a stub.
    assert len(title_lines) == 2
    widths = [display_width(ln) for ln in title_lines]
    assert min(widths) >= max(widths) / 2, title_lines
    # One line: the nearest sections whole, the cut at the root's end.
    assert display_width(crumb) <= 70
    assert crumb == ("Home > \u2026 > Observatory & medicine: level 2 > "
                     "Rainfall & robot: level 3")
    assert heading("/s0/shallow") == ["Short one",
                                      "Home > Budget & agreement: level 1"]
    head = heading("/wide/w")
    assert head[0] == "W" and len(head) == 2
    assert display_width(head[1]) <= 70 and head[1].endswith("\u2026")
    assert head[1].startswith("Home > Section Section")
