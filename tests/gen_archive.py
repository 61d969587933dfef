#!/usr/bin/env python3
"""Synthetic archives in serai's archive format, for tests and benchmarks.

    from gen_archive import generate
    m = generate(root, 300, seed=1)          # a Manifest

    python3 tests/gen_archive.py DIR N [--seed S] [--depth D] [--fanout F]
        [--cjk-every K] [--no-broken] [--manifest FILE.json] [--jobs J]

N articles over a tree of sections `depth` levels deep with `fanout`
subsections each (some with a section.ini giving title, description and
lang, some without), plus, with broken=True, one file per way serai skips
an entry.  Everything depends on the seed only: the same call writes the
same bytes, whatever the number of processes writing them (the articles
are drawn in chunks of ARTICLES_PER_CHUNK, each from a generator seeded
by the seed and the chunk's number).  The command line picks the fanout,
unless told, so that sections average at most PER_SECTION articles: a
million articles then go in 585 sections, not 40 of 25,000 each.

What the articles exercise: dates as YYYY-MM-DD and as RFC 3339 with a
time and an offset, and undated ones; titles with colons and & < >;
several paragraphs, some hard-wrapped over lines (continuations
sometimes indented), some starting with "..." (a Gopher text line must
not start with '.'); every `cjk_every`-th article in Chinese with
`Lang: zh` (title and paragraphs); Location/Tags/Source/Author headers
on some; editor and copyright lines on some; CRLF line ends, a UTF-8 BOM
or no final newline on some.

Every article carries a unique ASCII token (`tok` + its index in base
26, fixed width), which FTS5's unicode61 tokenizer keeps whole, so a
search for it finds exactly that article; a Chinese article also carries
a unique run of four ideographs (`Article.cjk`) drawn from characters no
other text uses, for the trigram index.

Dates: every dated article has a day of its own, and a time with an
offset keeps the UTC instant inside that day (times 09:00-14:59, offsets
within +-09:00), so sorting the Date: strings and sorting the instants
agree: the expected orders below are unambiguous.  The newest day is
2025-12-31, unless there are more dated articles than days since
0001-01-01 (about 870,000 articles): the days then run on past 2025.
"""

import argparse
import collections
import datetime
import json
import multiprocessing
import os
import random
import sys
from pathlib import Path

# Common words; search_bench.py draws its queries from the first ones.
# None may be a header name (Location, Date, Lang, Tags, Source, Author):
# a title is often "Word: ...", which would then be read as a header.
WORDS = ("science technology cooperation declaration forum research "
         "innovation mechanism platform climate energy health ocean "
         "satellite genome quantum robot river mountain harvest market "
         "policy education museum festival railway bridge harbour").split()
MORE_WORDS = ("academy agreement analysis archive budget campus carbon "
              "century challenge city coast committee council data delta "
              "desert engine experiment factory farmer fishery forest "
              "glacier grant highway island journal laboratory library "
              "medicine mineral network observatory orbit palace pilot "
              "plateau port province rainfall reactor reform region "
              "report reservoir rice satellite school season signal "
              "silk soil station steel student survey telescope textile "
              "tower trade tunnel university valley village volcano "
              "water wetland wind workshop").split()
SMALL = "a the of and in on for with by to from at over under".split()
VOCAB = WORDS + MORE_WORDS
ODD = ["R&D", "<draft>", "a > b", "x < y", "AT&T", "e.g.", "...", ".NET",
       "café", "naïve", "Zürich", "—", "3.14", "50%", "#1", "*"]

# Chinese: phrases for paragraphs and titles.
ZH = ("中国科学院 沿线国家 科研机构 发表了 北京宣言 国际合作 科技创新 "
      "共同发展 长期机制 重大挑战 研究项目 可持续发展 人才培养 "
      "生态环境 资源利用 数据共享 联合实验室 青年学者 学术交流 "
      "基础研究 气候变化 防灾减灾 现代农业 公共卫生 海洋观测").split()
ZH_PUNCT = ["，", "、", "；"]
ZH_ALPHABET_LEN = 26

# Articles drawn from one generator: the unit of work of a process.  Big
# enough that sending a chunk's manifest back costs little beside writing
# it, small enough that two processes finish within a chunk of each other.
ARTICLES_PER_CHUNK = 5000
# Below this, one process: starting a pool costs more than it saves.
PARALLEL_MIN = 2 * ARTICLES_PER_CHUNK
# The command line's section size: serai lists a whole section on one
# page, and a real archive's sections hold days or months of articles.
PER_SECTION = 2000

Section = collections.namedtuple(
    "Section", "path dir title name has_ini description lang parent")
Article = collections.namedtuple(
    "Article", "path file section name title date lang token cjk "
    "cjk_text crlf")
Broken = collections.namedtuple("Broken", "file log_path reason")


class Manifest:
    """What generate() wrote.

    root      the archive root (as given)
    realroot  its realpath: serai names skipped files under it
    sections  [Section]: path "/a/b/" ("/" the root), dir (relative
              directory, "" the root), title (serai's: the ini's or the
              name), name, has_ini, description, lang (effective), parent
    articles  [Article]: path "/a/b/slug", file (relative), section
              (its section's path), name (slug), title, date (the Date:
              value or None), lang (effective), token, cjk (the unique
              ideograph run, or None), cjk_text (the Chinese paragraph
              holding it, or None), crlf
    broken    [Broken]: file (relative), log_path (the path serai's
              warning names), reason (words the warning holds)
    bytes     total size of every file written (articles, section.ini,
              broken files)
    """

    def __init__(self, root):
        self.root = Path(root)
        self.realroot = Path(os.path.realpath(root))
        self.sections = []
        self.articles = []
        self.broken = []
        self.bytes = 0

    def section(self, path):
        if len(getattr(self, "_by_path", ())) != len(self.sections):
            self._by_path = {s.path: s for s in self.sections}
        return self._by_path[path]

    def in_section(self, path):
        """The articles of one section (not its subsections), in serai's
        order: newest first, then the undated by title (case-folded
        ASCII, as strcasecmp), then by name."""
        arts = [a for a in self.articles if a.section == path]
        return sorted(arts, key=article_key)

    def subsections(self, path):
        """A section's subsections in serai's order: by title, then name."""
        subs = [s for s in self.sections if s.parent == path]
        return sorted(subs, key=lambda s: (s.title.encode().lower(),
                                           s.name.encode()))

    def newest(self, prefix="/", n=50):
        """The n newest dated articles under a section path (a feed)."""
        arts = [a for a in self.articles
                if a.date is not None and a.path.startswith(prefix)]
        return sorted(arts, key=lambda a: (
            _neg(instant(a.date)), a.title.encode().lower(),
            a.path.encode()))[:n]

    def to_json(self):
        return {
            "root": str(self.root),
            "realroot": str(self.realroot),
            "bytes": self.bytes,
            "sections": [s._asdict() for s in self.sections],
            "articles": [a._asdict() for a in self.articles],
            "broken": [b._asdict() for b in self.broken],
        }


class _neg:
    """Reverses the order of a value inside a sort key."""
    __slots__ = ("v",)

    def __init__(self, v):
        self.v = v

    def __lt__(self, other):
        return other.v < self.v

    def __eq__(self, other):
        return self.v == other.v


def instant(date):
    """A Date: value as an aware UTC datetime (a date alone: midnight UTC,
    as serai's feeds say)."""
    if len(date) == 10:
        return datetime.datetime.fromisoformat(date + "T00:00:00+00:00")
    return datetime.datetime.fromisoformat(
        date.replace("Z", "+00:00")).astimezone(datetime.timezone.utc)


def article_key(a):
    if a.date is not None:
        return (0, _neg(instant(a.date)), b"", b"")
    return (1, _neg(0), a.title.encode().lower(), a.name.encode())


def token(i, width):
    """tok + i in base 26 (a-z), fixed width: ASCII letters only."""
    digits = []
    for _ in range(width):
        i, r = divmod(i, 26)
        digits.append(chr(ord("a") + r))
    return "tok" + "".join(reversed(digits))


def _zh_alphabet():
    """Ideographs used by no other generated text: a unique run of them
    is found by the trigram index in one article only."""
    used = set("".join(ZH)) | set("编号第期年")
    out, cp = [], 0x8A00
    while len(out) < ZH_ALPHABET_LEN:
        if chr(cp) not in used:
            out.append(chr(cp))
        cp += 1
    return out


ZH_ALPHABET = _zh_alphabet()


def cjk_token(i):
    out = []
    for _ in range(4):
        i, r = divmod(i, ZH_ALPHABET_LEN)
        out.append(ZH_ALPHABET[r])
    return "".join(reversed(out))


def _wrap(text, width, indent):
    """Hard-wraps at spaces; continuation lines get `indent`."""
    lines, cur = [], ""
    for w in text.split(" "):
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = indent + w
        else:
            cur = cur + " " + w if cur else w
    lines.append(cur)
    return lines


class _Gen:
    def __init__(self, root, n, depth, fanout, seed, broken, cjk_every,
                 dated, rfc3339, ini_every):
        self.root = Path(root)
        self.n = n
        self.depth = depth
        self.fanout = fanout
        self.seed = seed
        self.rng = random.Random(seed)
        self.broken = broken
        self.cjk_every = cjk_every
        self.dated = dated
        self.rfc3339 = rfc3339
        self.ini_every = ini_every
        self.m = Manifest(root)
        self.width = 4
        while 26 ** self.width < n:
            self.width += 1
        rng = self.rng
        # Pools: drawing whole sentences keeps 100,000 articles fast.
        self.sentences = [self._sentence() for _ in range(3000)]
        self.zh_sentences = [self._zh_sentence() for _ in range(500)]
        self.names = ["editor", "LIU Jia", "Ana María", "O'Neil", "ZHANG Wei"]
        self.orgs = ["Chinese Academy of Sciences", "The Archive & Co.",
                     "Observatory <North>", "Xinhua"]
        rng.shuffle(self.names)

    # ------------------------------------------------------------------
    # text

    def _sentence(self):
        rng = self.rng
        k = rng.randint(6, 16)
        words = rng.choices(VOCAB, k=k) + rng.choices(SMALL, k=k // 3)
        rng.shuffle(words)
        if rng.random() < 0.15:
            words.insert(rng.randrange(len(words)), rng.choice(ODD))
        if rng.random() < 0.2:
            words[rng.randrange(len(words))] += ","
        s = " ".join(words)
        return s[0].upper() + s[1:] + "."

    def _zh_sentence(self):
        rng = self.rng
        parts = rng.choices(ZH, k=rng.randint(3, 8))
        s = ""
        for j, p in enumerate(parts):
            s += p
            if j + 1 < len(parts) and rng.random() < 0.3:
                s += rng.choice(ZH_PUNCT)
        return s + "。"

    def _title(self, i, zh):
        rng = self.rng
        if zh:
            a, b, c = rng.choices(ZH, k=3)
            forms = ["%s：%s" % (a, b),
                     "%s：%s <第%d期> & %s" % (a, b, i, c),
                     "%s%s: %s" % (a, b, c)]
            return rng.choice(forms)
        w = [x for x in rng.choices(VOCAB, k=5)]
        forms = [
            "%s %s: %s %s" % (w[0].capitalize(), w[1], w[2], w[3]),
            "%s & %s: R&D <%s> report" % (w[0].capitalize(), w[1], w[2]),
            "%s <%s> > %s & %s" % (w[0].capitalize(), w[1], w[2], w[3]),
            "%s: a new chapter: %s %s" % (w[0].capitalize(), w[1], w[2]),
            "%s %s %s %s" % (w[0].capitalize(), w[1], w[2], w[3]),
            "... %s %s" % (w[0], w[1]),
            "%s %s %s %s %s, and the long view from the %s %s" % (
                w[0].capitalize(), w[1], w[2], w[3], w[4], w[1], w[0]),
        ]
        return rng.choice(forms)

    def _paragraphs(self, i, tok, zh):
        rng = self.rng
        if zh:
            cjk = cjk_token(i)
            paras = ["".join(rng.choices(self.zh_sentences,
                                         k=rng.randint(2, 5)))
                     for _ in range(rng.randint(2, 4))]
            j = rng.randrange(len(paras))
            cut = rng.randrange(len(paras[j]) // 2 + 1)
            paras[j] = paras[j][:cut] + "编号" + cjk + "。" + paras[j][cut:]
            cjk_text = paras[j]
            # The ASCII token rides in an English paragraph.
            paras.append("English summary: %s Reference %s." % (
                rng.choice(self.sentences), tok))
            return paras, cjk, cjk_text
        paras = [" ".join(rng.choices(self.sentences, k=rng.randint(1, 6)))
                 for _ in range(rng.randint(2, 6))]
        j = rng.randrange(len(paras))
        paras[j] += " Reference %s." % tok
        if rng.random() < 0.1:
            k = rng.randrange(len(paras))
            paras[k] = "... " + paras[k]
        return paras, None, None

    # ------------------------------------------------------------------
    # the tree

    def sections(self):
        rng = self.rng
        m = self.m
        root_lang = "en"
        m.sections.append(Section("/", "", "Generated archive & <test>", "",
                                  True, "Synthetic articles for serai.",
                                  root_lang, None))
        self._write("section.ini",
                    "[section]\ntitle = Generated archive & <test>\n"
                    "description = Synthetic articles for serai.\n")
        frontier = [m.sections[0]]
        count = 0
        for level in range(self.depth):
            nxt = []
            for parent in frontier:
                for j in range(self.fanout):
                    word = rng.choice(VOCAB)
                    sep = rng.choice("-_.")
                    name = "%s%s%d" % (word, sep, j)
                    d = parent.dir + name + "/"
                    path = parent.path + name + "/"
                    (self.root / d).mkdir(parents=True, exist_ok=True)
                    count += 1
                    lang = parent.lang
                    if count % self.ini_every == 0:
                        m.sections.append(Section(path, d, name, name, False,
                                                  None, lang, parent.path))
                    else:
                        title = "%s & %s: level %d" % (
                            word.capitalize(), rng.choice(VOCAB), level + 1)
                        desc = rng.choice(self.sentences)
                        ini = "[section]\ntitle = %s\ndescription = %s\n" % (
                            title, desc)
                        if rng.random() < 0.3:
                            lang = rng.choice(["en-GB", "fr", "de", "en"])
                            ini += "lang = %s\n" % lang
                        self._write(d + "section.ini", ini)
                        m.sections.append(Section(path, d, title, name, True,
                                                  desc, lang, parent.path))
                    nxt.append(m.sections[-1])
            frontier = nxt

    def _write(self, rel, text, raw=None):
        data = raw if raw is not None else text.encode("utf-8")
        fd = os.open(self.root / rel, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                     0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        self.m.bytes += len(data)

    def _dates(self):
        """Distinct days for the dated articles, newest 2025-12-31 (or
        later, when there are more of them than days since 0001-01-01)."""
        rng = self.rng
        dated = [i for i in range(self.n) if rng.random() < self.dated]
        days = list(range(len(dated)))
        rng.shuffle(days)
        last = datetime.date(2025, 12, 31)
        if len(dated) > (last - datetime.date.min).days + 1:
            last = datetime.date.min + datetime.timedelta(days=len(dated) - 1)
        out = {}
        for i, d in zip(dated, days):
            day = last - datetime.timedelta(days=d)
            s = day.isoformat()
            if rng.random() < self.rfc3339:
                hh, mm, ss = rng.randint(9, 14), rng.randrange(60), \
                    rng.randrange(60)
                off = rng.randint(-8, 8)
                if off == 0 and rng.random() < 0.5:
                    zone = "Z"
                else:
                    zone = "%s%02d:%s" % ("-" if off < 0 else "+", abs(off),
                                          rng.choice(["00", "30"]))
                if rng.random() < 0.3:
                    s += "T%02d:%02d%s" % (hh, mm, zone)
                else:
                    s += "T%02d:%02d:%02d%s" % (hh, mm, ss, zone)
            out[i] = s
        return out

    def articles(self, jobs=None):
        """Writes the articles, chunk by chunk, in `jobs` processes (None:
        one per CPU).  The manifest lists them in index order either way."""
        self.dates = self._dates()
        main_rng = self.rng
        nchunks = -(-self.n // ARTICLES_PER_CHUNK)
        if jobs is None:
            jobs = os.cpu_count() or 1
        if jobs > 1 and self.n >= PARALLEL_MIN:
            global _WORKER_GEN
            _WORKER_GEN = self
            try:
                # fork: the workers inherit the sections, dates and pools
                # instead of having them pickled to each.
                with multiprocessing.get_context("fork").Pool(
                        min(jobs, nchunks)) as pool:
                    for arts, nbytes in pool.imap(_worker_chunk,
                                                  range(nchunks)):
                        self.m.articles.extend(arts)
                        self.m.bytes += nbytes
            finally:
                _WORKER_GEN = None
        else:
            for c in range(nchunks):
                arts, nbytes = self.chunk(c)
                self.m.articles.extend(arts)
                self.m.bytes += nbytes
        self.rng = main_rng

    def chunk(self, c):
        """Articles c * ARTICLES_PER_CHUNK and on: written, and returned
        with their bytes.  Their draws come from a generator of their
        own, so the chunks may be written in any order by any process."""
        self.rng = random.Random(self.seed * 1000003 + c)
        arts, nbytes = [], 0
        for i in range(c * ARTICLES_PER_CHUNK,
                       min(self.n, (c + 1) * ARTICLES_PER_CHUNK)):
            art, data = self._article(i)
            fd = os.open(self.root / art.file,
                         os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            nbytes += len(data)
            arts.append(art)
        return arts, nbytes

    def _article(self, i):
        """Article i: its manifest entry and its bytes.  Its name holds
        its index or its token, so no two articles share a name."""
        rng = self.rng
        m = self.m
        secs = m.sections
        sec = secs[rng.randrange(len(secs))]
        zh = self.cjk_every > 0 and i % self.cjk_every == self.cjk_every - 1
        tok = token(i, self.width)
        title = self._title(i, zh)
        date = self.dates.get(i)
        lang = "zh" if zh else sec.lang
        headers = []
        if date is not None:
            headers.append("%s: %s" % (
                "date" if rng.random() < 0.05 else "Date", date))
        if zh:
            headers.append("Lang: zh")
        elif rng.random() < 0.05:
            lang = rng.choice(["en-GB", "en-US", "es"])
            headers.append("Lang: %s" % lang)
        if rng.random() < 0.3:
            crumbs = ["Home"]
            p = sec
            chain = []
            while p.parent is not None:
                chain.append(p)
                p = m.section(p.parent)
            for s in reversed(chain):
                crumbs.append(s.title if rng.random() < 0.7 else s.name)
            headers.append("Location: " + " > ".join(crumbs))
        if rng.random() < 0.2:
            headers.append("Tags: %s, %s" % tuple(rng.choices(VOCAB, k=2)))
        if rng.random() < 0.1:
            headers.append("Source: %s" % rng.choice(self.orgs))
        if rng.random() < 0.1:
            headers.append("Author: %s" % rng.choice(self.names))
        rng.shuffle(headers)
        paras, cjk, cjk_text = self._paragraphs(i, tok, zh)

        lines = list(headers)
        if headers and rng.random() < 0.2:
            lines.append("")
        lines.append(title)
        wrap = not zh and rng.random() < 0.3
        for p in paras:
            lines.append("")
            if wrap and len(p) > 60:
                lines.extend(_wrap(p, rng.randint(50, 76),
                                   "  " if rng.random() < 0.3 else ""))
            else:
                lines.append(p)
        if rng.random() < 0.3:
            lines += ["", "(Editor: %s)" % rng.choice(self.names)]
        if rng.random() < 0.3:
            if lines[-1].startswith("(Editor:") and rng.random() < 0.5:
                pass
            else:
                lines.append("")
            lines.append("Copyright \u00a9 2002 - %d %s" % (
                rng.randint(2010, 2025), rng.choice(self.orgs)))
        crlf = rng.random() < 0.1
        eol = "\r\n" if crlf else "\n"
        text = eol.join(lines)
        if rng.random() >= 0.1:
            text += eol
        data = text.encode("utf-8")
        if rng.random() < 0.03:
            data = b"\xef\xbb\xbf" + data

        style = rng.randrange(3)
        if style == 0:
            name = "%s-%s" % (rng.choice(VOCAB), tok[3:])
        elif style == 1:
            name = "a%06d" % i
        else:
            name = "%s_%d.v%d" % (rng.choice(VOCAB), i, rng.randint(1, 3))
        rel = sec.dir + name + ".txt"
        return Article(sec.path + name, rel, sec.path, name, title, date,
                       lang, tok, cjk, cjk_text, crlf), data

    # ------------------------------------------------------------------
    # broken files: one per way serai skips an entry

    def broken_files(self):
        rng = self.rng
        m = self.m
        secs = [s for s in m.sections if s.parent is not None]
        names = {a.section + a.name for a in m.articles} | {
            s.path.rstrip("/") for s in m.sections}

        def where():
            return rng.choice(secs)

        def add(sec, fname, raw, reason, log_path=None):
            rel = sec.dir + fname
            assert sec.path + fname.rsplit(".", 1)[0] not in names
            self._write(rel, None, raw=raw)
            m.broken.append(Broken(rel, log_path or str(m.realroot / rel),
                                   reason))

        good = "Date: 2020-01-01\nA fine title\n\nA fine paragraph.\n"
        add(where(), "broken-utf8.txt",
            b"A title\n\nLatin-1 caf\xe9 is not UTF-8.\n", "not valid UTF-8")
        add(where(), "broken-overlong.txt",
            b"A title\n\nOverlong \xc0\xaf slash.\n", "not valid UTF-8")
        add(where(), "broken-nul.txt",
            b"A title\n\nA NUL \x00 byte.\n", "contains a NUL byte")
        add(where(), "broken-cr.txt",
            b"A title\r\rOld Mac line ends.\r", "contains a bare CR")
        add(where(), "broken-ctrl.txt",
            b"A title\n\nAn escape \x1b[31m red.\n",
            "contains control characters")
        add(where(), "broken-del.txt",
            b"A title\n\nA DEL \x7f byte.\n", "contains control characters")
        add(where(), "broken-date.txt",
            b"Date: 2021-02-29\nA title\n\nNo such day.\n", "bad Date:")
        add(where(), "broken-date2.txt",
            b"Date: 8 November 2016\nA title\n\nProse date.\n", "bad Date:")
        add(where(), "broken-lang.txt",
            b"Lang: en_GB\nA title\n\nUnderscore.\n", "bad Lang:")
        add(where(), "broken-notitle.txt",
            b"Date: 2020-01-01\nLang: en\n\n", "no title line")
        add(where(), "broken-empty.txt", b"", "no title line")
        add(where(), "broken-dup.txt",
            b"Date: 2020-01-01\nDate: 2020-01-02\nA title\n",
            "duplicate header line")
        add(where(), "broken-longtitle.txt",
            ("Long " * 300 + "\n\nBody.\n").encode(), "title line too long")
        add(where(), "bad name.txt", good.encode(), "unsafe name")
        add(where(), ".hidden.txt", good.encode(), "unsafe name")
        add(where(), "notes.md", good.encode(), "not an article")
        # Reserved names: the root's search, and any section's feed.
        add(m.sections[0], "search.txt", good.encode(),
            "reserved name at the archive root")
        add(where(), "feed.xml.txt", good.encode(),
            "reserved name (each section's feed)")
        # A symlink out of the root (/dev/null: exists everywhere, harmless).
        sec = where()
        rel = sec.dir + "escape.txt"
        os.symlink("/dev/null", self.root / rel)
        m.broken.append(Broken(rel, str(m.realroot / rel),
                               "symlink leads outside the archive root"))
        sec = where()
        rel = sec.dir + "dangling.txt"
        os.symlink("no-such-file.txt", self.root / rel)
        m.broken.append(Broken(rel, str(m.realroot / rel), "broken symlink"))
        # An unsafe directory: skipped whole, the article inside unread.
        sec = where()
        (self.root / sec.dir / "bad dir").mkdir()
        self._write(sec.dir + "bad dir/inside.txt", good)
        m.broken.append(Broken(sec.dir + "bad dir",
                               str(m.realroot / sec.dir / "bad dir"),
                               "unsafe directory name"))
        # An article named like a sibling section: the section wins.  The
        # warning names the article by its path, not its file.
        sub = [s for s in secs if s.parent != "/"][0] if self.depth > 1 \
            else secs[0]
        parent = m.section(sub.parent)
        rel = parent.dir + sub.name + ".txt"
        self._write(rel, good)
        m.broken.append(Broken(rel, parent.path + sub.name,
                               "an article and a section share this name"))


_WORKER_GEN = None


def _worker_chunk(c):
    """A pool worker's task: chunk c of the _Gen it inherited by fork."""
    return _WORKER_GEN.chunk(c)


def fanout_for(n_articles, depth, per_section=PER_SECTION):
    """The smallest fanout (3 at least) whose tree of `depth` levels has
    enough sections for n_articles at per_section each on average."""
    fanout = 3
    while sum(fanout ** k for k in range(depth + 1)) * per_section \
            < n_articles:
        fanout += 1
    return fanout


def generate(root, n_articles, depth=3, fanout=3, seed=1, broken=True,
             cjk_every=10, dated=0.85, rfc3339=0.2, ini_every=4, jobs=None):
    """Writes a synthetic archive of n_articles into root (created if
    missing; it should be empty) and returns its Manifest.

    depth, fanout  the section tree: fanout subsections per section,
                   depth levels below the root (articles go anywhere,
                   the root included)
    seed           the same seed writes the same bytes
    broken         add one file per way serai skips an entry
    cjk_every      every k-th article is Chinese (0: none)
    dated          the share of articles with a Date:
    rfc3339        the share of dated ones with a time and an offset
    ini_every      every k-th section has no section.ini
    jobs           processes writing the articles (None: one per CPU);
                   the bytes do not depend on it
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    g = _Gen(root, n_articles, depth, fanout, seed, broken, cjk_every,
             dated, rfc3339, ini_every)
    g.sections()
    g.articles(jobs)
    if broken:
        g.broken_files()
    return g.m


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir")
    ap.add_argument("n", type=int)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--fanout", type=int,
                    help="subsections per section (default: the smallest "
                    "giving sections of %d articles or fewer on average, "
                    "3 at least)" % PER_SECTION)
    ap.add_argument("--cjk-every", type=int, default=10)
    ap.add_argument("--no-broken", action="store_true")
    ap.add_argument("--manifest", help="write the manifest here as JSON")
    ap.add_argument("--jobs", type=int,
                    help="processes writing articles (default: one per CPU)")
    a = ap.parse_args(argv)
    fanout = a.fanout or fanout_for(a.n, a.depth)
    m = generate(a.dir, a.n, depth=a.depth, fanout=fanout, seed=a.seed,
                 broken=not a.no_broken, cjk_every=a.cjk_every, jobs=a.jobs)
    if a.manifest:
        with open(a.manifest, "w", encoding="utf-8") as f:
            json.dump(m.to_json(), f, ensure_ascii=False, indent=1)
    print("%s: %d articles in %d sections, %d broken files, %d bytes"
          % (a.dir, len(m.articles), len(m.sections), len(m.broken),
             m.bytes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
