"""Unicode line breaking (UAX #14) in Gopher text and menus: Chinese,
Japanese and Korean articles, with long titles and descriptions, served
by the real binary.  No line starts with closing punctuation or ends
with opening punctuation, and no Korean word is split."""

import pytest

from conftest import Server, display_width, gopher_lines, serving

# Classes CL, CP, EX, IS, NS (no line starts with one) and OP (no line
# ends with one), in the forms these articles use.
CLOSING = set("。，、；：？！）」』》〉】々・") | set(")]}!?,.:;")
OPENING = set("（「『《〈【") | set("([{")

ZH = ["中国科学院（中科院）与“一带一路”沿线国家的科研机构发表了《北京宣言》，",
      "建立了双边、多边合作机制；",
      "他们说：“这是可能的吗？是的！”",
      "「科学」与『技术』。",
      "研究项目涵盖气候变化、防灾减灾、现代农业和公共卫生。",
      "青年学者（来自二十多个国家）参加了学术交流！",
      "数据共享平台已经上线；",
      "联合实验室《年度报告》指出：",
      "长期机制是可持续发展的基础。"]
JA = ["東京は、日本の首都です。",
      "「東京スカイツリー」（高さ634メートル）は、世界一高い電波塔です！",
      "人々・時々、研究者たちは『報告書』を読みました。",
      "本当ですか？はい。",
      "気候変動（地球温暖化）について議論しました。"]
KO = ("연구진에 따르면 한국어는 띄어쓰기로 단어를 나눈다. 긴 문장에서도 "
      "단어가 중간에서 잘리지 않아야 한다. 국제협력연구소(國際協力硏究所)는 "
      "\"일대일로\" 연선 국가들과 함께 베이징 선언을 발표했다! 기후변화, "
      "방재감재, 현대농업 그리고 공중보건 연구가 포함된다.").split()


def sentences(pool, n, seed):
    """n sentences of the pool, in a fixed shuffled order: lines fall
    differently against the punctuation each time."""
    out = []
    for i in range(n):
        out.append(pool[(i * 7 + seed) % len(pool)])
    return "".join(out)


def korean(n, seed):
    return " ".join(KO[(i * 5 + seed) % len(KO)] for i in range(n))


ARTICLES = {
    "zh": [("《北京宣言》：中国科学院与“一带一路”沿线国家科研机构（共三十七家）"
            "签署长期合作协议，建立双边、多边合作机制！",
            [sentences(ZH, 25 + k, k) for k in range(4)])
           for _ in range(1)]
          + [("科研合作第%d号报告（草案）：" % i + sentences(ZH, 2, i),
              [sentences(ZH, 12 + i, i + 3)]) for i in range(5)],
    "ja": [("「東京スカイツリー」について：報告書（第%d版）" % i
            + sentences(JA, 2, i), [sentences(JA, 20 + i, i)])
           for i in range(5)],
    "ko": [("연구진에 따르면 %d번째 보고서: " % i + korean(12, i),
            [korean(60 + i, i), korean(45, i + 2)]) for i in range(5)],
}
DESCRIPTIONS = {
    "zh": sentences(ZH, 6, 1),
    "ja": sentences(JA, 6, 2),
    "ko": korean(40, 3),
}


@pytest.fixture(scope="module")
def cjk(tmp_path_factory):
    base = tmp_path_factory.mktemp("cjk")
    root = base / "content"
    for lang, arts in ARTICLES.items():
        sec = root / lang
        sec.mkdir(parents=True)
        (sec / "section.ini").write_text(
            "[section]\ntitle = %s\ndescription = %s\nlang = %s\n"
            % (lang.upper(), DESCRIPTIONS[lang], lang), encoding="utf-8")
        for i, (title, paras) in enumerate(arts):
            (sec / ("a%d.txt" % i)).write_text(
                "Date: 2021-01-%02d\n%s\n\n%s\n"
                % (i + 1, title, "\n\n".join(paras)), encoding="utf-8")
    srv = Server(base / "srv", root=root)
    with serving(srv):
        yield srv


def check_line(text, where):
    text = text.lstrip(" ") if text.startswith(" .") else text
    assert text == "" or text[0] not in CLOSING, (
        "%s: line starts with closing punctuation: %r" % (where, text))
    assert text == "" or text[-1] not in OPENING, (
        "%s: line ends with opening punctuation: %r" % (where, text))


def test_text_lines_obey_the_rules(cjk):
    checked = 0
    for lang, arts in ARTICLES.items():
        for i, (title, paras) in enumerate(arts):
            sel = "/%s/a%d" % (lang, i)
            lines = gopher_lines(cjk.gopher(sel))
            assert len(lines) > 5, sel
            for ln in lines:
                assert display_width(ln) <= 70, (sel, ln)
                check_line(ln, sel)
                checked += 1
            # Nothing lost or added but the breaks themselves.
            if lang == "ko":
                joined = " ".join(ln for ln in lines if ln)
                for p in paras:
                    assert p in joined, sel
            else:
                joined = "".join(lines)
                for p in paras:
                    assert p in joined, sel
    assert checked > 200


def test_korean_words_are_never_split(cjk):
    for i, (title, paras) in enumerate(ARTICLES["ko"]):
        words = set(title.split()) | set(" ".join(paras).split())
        lines = gopher_lines(cjk.gopher("/ko/a%d" % i))
        body = [ln for ln in lines if ln and not ln.startswith("Home >")
                and not ln.startswith("2021-")]
        for ln in body:
            for word in ln.split(" "):
                # Every piece of a line is a whole word of the source
                # (the date and the breadcrumb aside).
                if word and not word[0].isdigit():
                    assert word in words, (
                        "split Korean word %r in %r" % (word, ln))


def test_menu_lines_obey_the_rules(cjk):
    for lang in ARTICLES:
        lines = gopher_lines(cjk.gopher("/%s/" % lang))
        assert lines[-1] == "."
        for ln in lines[:-1]:
            display = ln.split("\t")[0][1:]
            assert display_width(display) <= 67, ln
            # A cut display string ends in the cut mark: the text
            # before it obeys the rules too.
            for mark in ("...", "\u2026"):
                if display.endswith(mark):
                    display = display[:-len(mark)]
                    break
            check_line(display, "/%s/" % lang)
        # The long titles were cut, and the description wrapped.
        assert any(ln.split("\t")[0].endswith("...") for ln in lines)
        info = [ln for ln in lines if ln.startswith("i")]
        assert len(info) >= 4


def test_uffff_cannot_stop_the_server(serai_factory, tmp_path):
    """libunibreak takes U+FFFF for its end of text and aborts: a query
    (a remote client's) or an article (valid UTF-8) holding it, or bytes
    it would read as it, must be served like any other text."""
    root = tmp_path / "content"
    (root / "news").mkdir(parents=True)
    (root / "news" / "odd.txt").write_text(
        "Date: 2021-01-01\nOdd \uffff title \uffff%s\n\nBody \uffff with "
        "\uffff odd characters, long enough to wrap over a line or two of "
        "Gopher text \uffff\uffff and more.\n" % ("\u4e2d" * 40),
        encoding="utf-8")
    srv = serai_factory(root=root)
    srv.start()
    text = gopher_lines(srv.gopher("/news/odd"))
    assert any("\uffff" in ln for ln in text)
    menu = gopher_lines(srv.gopher("/news/"))
    assert any("/news/odd" in ln for ln in menu)
    for query in ("\uffff".encode("utf-8") * 30, b"\xef??" * 30,
                  b"odd \xef\xbf\xbf" * 20):
        body = srv.gopher(b"/search\t" + query)
        assert body.endswith(b"\r\n.\r\n"), body[:200]
    # Still serving.
    assert gopher_lines(srv.gopher("/news/odd")) == text
