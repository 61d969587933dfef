/*
 * text_width, text_wrap and text_truncate: display columns, line widths,
 * dot-stuffing, no lost words, no split UTF-8 sequence.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "article.h"
#include "seed.h"
#include "text.h"
#include "util.h"

#define ELLIPSIS "\xe2\x80\xa6"
#define ZHONG "\xe4\xb8\xad" /* 中 */

static size_t
w(const char *s)
{
	return text_width(s, strlen(s));
}

static void
seed_article(struct article *a)
{
	const char *err = NULL;
	size_t len;
	char *data = read_seed(&len);

	assert_non_null(data);

	assert_int_equal(article_parse(data, len, a, &err), 0);
	assert_int_equal(a->npara, 6);
	free(data);
}

/* text_wrap into a fresh NUL-terminated string. */
static char *
wrap(const char *s, size_t width)
{
	struct buf b;
	char *out;

	buf_init(&b);
	text_wrap(&b, s, strlen(s), width, "\r\n", NULL);
	assert_false(buf_failed(&b));
	out = buf_release(&b, NULL);
	assert_non_null(out);
	return out;
}

static char *
truncate_to(const char *s, size_t width)
{
	struct buf b;
	char *out;

	buf_init(&b);
	text_truncate(&b, s, strlen(s), width, ELLIPSIS, NULL);
	assert_false(buf_failed(&b));
	out = buf_release(&b, NULL);
	assert_non_null(out);
	return out;
}

/*
 * Every line ends in CRLF, is valid UTF-8, fits width columns and does
 * not start with '.'.  Returns the number of lines.
 */
static size_t
check_lines(const char *out, size_t width)
{
	const char *p = out;
	size_t n = 0;

	while (*p != '\0') {
		const char *eol = strstr(p, "\r\n");
		size_t len;

		if (eol == NULL) {
			print_error("line %zu lacks CRLF: '%s'\n", n, p);
			fail();
		}
		len = (size_t)(eol - p);
		if (memchr(p, '\r', len) != NULL || memchr(p, '\n', len)) {
			print_error("stray CR or LF in line %zu\n", n);
			fail();
		}
		if (!utf8_valid(p, len)) {
			print_error(
			    "line %zu is not UTF-8: '%.*s'\n", n, (int)len, p);
			fail();
		}
		if (text_width(p, len) > width) {
			print_error("line %zu is %zu columns wide (> %zu): "
			            "'%.*s'\n",
			    n, text_width(p, len), width, (int)len, p);
			fail();
		}
		if (len > 0 && p[0] == '.') {
			print_error("line %zu starts with '.': '%.*s'\n", n,
			    (int)len, p);
			fail();
		}
		n++;
		p = eol + 2;
	}
	return n;
}

/* The bytes of s other than spaces, CR and LF. */
static char *
ink(const char *s)
{
	char *o = malloc(strlen(s) + 1), *q = o;

	assert_non_null(o);
	for (; *s; s++)
		if (*s != ' ' && *s != '\r' && *s != '\n')
			*q++ = *s;
	*q = '\0';
	return o;
}

/* Words (runs of bytes other than space, CR, LF) joined by one space. */
static char *
words(const char *s)
{
	char *o = malloc(strlen(s) + 1), *q = o;
	int in_word = 0;

	assert_non_null(o);
	for (; *s; s++) {
		if (*s == ' ' || *s == '\r' || *s == '\n') {
			in_word = 0;
			continue;
		}
		if (!in_word && q != o)
			*q++ = ' ';
		in_word = 1;
		*q++ = *s;
	}
	*q = '\0';
	return o;
}

/* Nothing but spaces and line ends was added or lost, in order. */
static void
assert_same_ink(const char *in, const char *out)
{
	char *a = ink(in), *b = ink(out);

	assert_string_equal(a, b);
	free(a);
	free(b);
}

static void
assert_same_words(const char *in, const char *out)
{
	char *a = words(in), *b = words(out);

	assert_string_equal(a, b);
	free(a);
	free(b);
}

static void
test_width(void **state)
{
	(void)state;
	assert_int_equal(w(""), 0);
	assert_int_equal(w("hello"), 5);
	assert_int_equal(w("a b c"), 5);
	assert_int_equal(w("\xc3\xa9"), 1);    /* é, precomposed */
	assert_int_equal(w("e\xcc\x81"), 1);   /* e + U+0301 */
	assert_int_equal(w("caf\xc3\xa9"), 4); /* café */
	assert_int_equal(w("\xe4\xb8\xad\xe6\x96\x87"), 4); /* 中文 */
	assert_int_equal(w("a" ZHONG "b"), 4);
	assert_int_equal(w(ELLIPSIS), 1);
	assert_int_equal(w("\xef\xbc\xa1"), 2); /* fullwidth A */
	assert_int_equal(text_width("abcdef", 3), 3);
}

static void
test_wrap_seed(void **state)
{
	struct article a;

	(void)state;
	seed_article(&a);
	for (size_t i = 0; i < a.npara; i++) {
		char *out = wrap(a.paras[i], 70);
		size_t n = check_lines(out, 70);

		/* Every paragraph of the seed is longer than one line. */
		assert_true(n >= 2);
		assert_same_words(a.paras[i], out);
		free(out);
	}
	/* Also narrower and wider than the default. */
	for (size_t width = 20; width <= 120; width += 7)
		for (size_t i = 0; i < a.npara; i++) {
			char *out = wrap(a.paras[i], width);

			check_lines(out, width);
			assert_same_words(a.paras[i], out);
			free(out);
		}
	article_free(&a);
}

static void
test_wrap_fills_lines(void **state)
{
	static const char in[] = "aaaa bbbb cccc dddd eeee";
	char *out;

	(void)state;
	out = wrap(in, 9);
	assert_string_equal(out, "aaaa bbbb\r\ncccc dddd\r\neeee\r\n");
	free(out);
	out = wrap(in, 14);
	assert_string_equal(out, "aaaa bbbb cccc\r\ndddd eeee\r\n");
	free(out);
	out = wrap("short", 70);
	assert_string_equal(out, "short\r\n");
	free(out);
}

static void
test_wrap_cjk(void **state)
{
	struct buf in;
	char *s, *out, *p;
	size_t nlines = 0, total = 0;

	(void)state;
	buf_init(&in);
	for (int i = 0; i < 200; i++)
		buf_adds(&in, ZHONG);
	s = buf_release(&in, NULL);
	assert_non_null(s);
	out = wrap(s, 70);
	assert_int_equal(check_lines(out, 70), 6);
	/* No space was added between characters: the text is unchanged. */
	for (p = out; *p; p = strstr(p, "\r\n") + 2) {
		size_t len = (size_t)(strstr(p, "\r\n") - p);

		assert_null(memchr(p, ' ', len));
		/* Full lines: 35 wide characters, 70 columns. */
		if (nlines < 5)
			assert_int_equal(text_width(p, len), 70);
		total += len;
		nlines++;
	}
	assert_int_equal(total, strlen(s));
	assert_same_ink(s, out);
	free(out);

	/* Latin text runs into CJK without a space: break before it. */
	out = wrap("xx aaaa" ZHONG ZHONG, 7);
	assert_string_equal(out, "xx aaaa\r\n" ZHONG ZHONG "\r\n");
	free(out);
	out = wrap("xx " ZHONG ZHONG "aaaa", 7);
	assert_string_equal(out, "xx " ZHONG ZHONG "\r\naaaa\r\n");
	free(out);

	/* An odd width cannot hold a last half character. */
	out = wrap(s, 69);
	check_lines(out, 69);
	assert_same_ink(s, out);
	free(out);
	free(s);
}

static void
test_wrap_cjk_paragraph(void **state)
{
	/* A real Chinese paragraph with full-width punctuation. */
	static const char zh[] =
	    "\xe4\xb8\xad\xe5\x9b\xbd\xe7\xa7\x91\xe5\xad\xa6\xe9\x99\xa2"
	    "\xe4\xb8\x8e\xe2\x80\x9c\xe4\xb8\x80\xe5\xb8\xa6\xe4\xb8\x80"
	    "\xe8\xb7\xaf\xe2\x80\x9d\xe6\xb2\xbf\xe7\xba\xbf\xe5\x9b\xbd"
	    "\xe5\xae\xb6\xe7\x9a\x84\xe7\xa7\x91\xe7\xa0\x94\xe6\x9c\xba"
	    "\xe6\x9e\x84\xe5\x8f\x91\xe8\xa1\xa8\xe4\xba\x86\xe3\x80\x8a"
	    "\xe5\x8c\x97\xe4\xba\xac\xe5\xae\xa3\xe8\xa8\x80\xe3\x80\x8b"
	    "\xef\xbc\x8c\xe5\xbb\xba\xe7\xab\x8b\xe4\xba\x86\xe5\x8f\x8c"
	    "\xe8\xbe\xb9\xe5\x92\x8c\xe5\xa4\x9a\xe8\xbe\xb9\xe5\x90\x88"
	    "\xe4\xbd\x9c\xe6\x9c\xba\xe5\x88\xb6\xe3\x80\x82\xe4\xb8\xad"
	    "\xe5\x9b\xbd\xe7\xa7\x91\xe5\xad\xa6\xe9\x99\xa2\xe4\xb8\x8e"
	    "\xe2\x80\x9c\xe4\xb8\x80\xe5\xb8\xa6\xe4\xb8\x80\xe8\xb7\xaf"
	    "\xe2\x80\x9d\xe6\xb2\xbf\xe7\xba\xbf\xe5\x9b\xbd\xe5\xae\xb6"
	    "\xe7\x9a\x84\xe7\xa7\x91\xe7\xa0\x94\xe6\x9c\xba\xe6\x9e\x84"
	    "\xe5\x8f\x91\xe8\xa1\xa8\xe4\xba\x86\xe3\x80\x8a\xe5\x8c\x97"
	    "\xe4\xba\xac\xe5\xae\xa3\xe8\xa8\x80\xe3\x80\x8b\xe3\x80\x82";

	(void)state;
	for (size_t width = 2; width <= 80; width++) {
		char *out = wrap(zh, width);
		size_t n = check_lines(out, width);

		assert_true(n >= 1);
		if (width < 60)
			assert_true(n >= 2);
		assert_same_ink(zh, out);
		free(out);
	}
}

static void
test_wrap_mixed(void **state)
{
	static const char unit[] =
	    "Gemini \xe5\x92\x8c Gopher \xe6\x98\xaf\xe4\xb8\xa4\xe7\xa7\x8d"
	    "\xe5\x8d\x8f\xe8\xae\xae\xe3\x80\x82The quick brown fox "
	    "\xe8\xb7\xb3\xe8\xbf\x87\xe4\xba\x86 jumps over the lazy dog. "
	    "Caf\xc3\xa9 cre\xcc\x80me br\xc3\xbbl\xc3\xa9"
	    "e, na\xc3\xafve "
	    "r\xc3\xa9sum\xc3\xa9; \xef\xbc\xa1\xef\xbc\xa2\xef\xbc\xa3 ... . ";
	struct buf in;
	char *s;

	(void)state;
	buf_init(&in);
	for (int i = 0; i < 10; i++)
		buf_adds(&in, unit);
	s = buf_release(&in, NULL);
	assert_non_null(s);
	for (size_t width = 2; width <= 100; width++) {
		char *out = wrap(s, width);

		check_lines(out, width);
		assert_same_ink(s, out);
		free(out);
	}
	free(s);
}

/* A fixed pseudo-random mix of words, dots, wide and combining text. */
static void
test_wrap_generated(void **state)
{
	static const char *const atoms[] = {
	    "a",
	    "word",
	    "longerword",
	    ".",
	    "..",
	    "...",
	    ".dot",
	    "x.",
	    ZHONG,
	    ZHONG ZHONG ZHONG,
	    "\xe3\x80\x82",
	    "e\xcc\x81",
	    "\xc3\xa9t\xc3\xa9",
	    "supercalifragilisticexpialidocious",
	    "\xef\xbc\xa1",
	    "-",
	    "\xd0\x96\xd1\x83\xd0\xba",
	};
	static const char *const seps[] = {" ", " ", " ", "", "  "};
	uint32_t rng = 12345;

	(void)state;
	for (int round = 0; round < 40; round++) {
		struct buf in;
		char *s;

		buf_init(&in);
		for (int k = 0; k < 60; k++) {
			rng = rng * 1103515245u + 12345u;
			buf_adds(&in,
			    atoms[(rng >> 16) %
			        (sizeof(atoms) / sizeof(atoms[0]))]);
			rng = rng * 1103515245u + 12345u;
			buf_adds(&in,
			    seps[(rng >> 16) %
			        (sizeof(seps) / sizeof(seps[0]))]);
		}
		s = buf_release(&in, NULL);
		assert_non_null(s);
		for (size_t width = 2; width <= 72; width += 5) {
			char *out = wrap(s, width);

			check_lines(out, width);
			assert_same_ink(s, out);
			free(out);
		}
		free(s);
	}
}

static void
test_wrap_dots(void **state)
{
	char *out;

	(void)state;
	out = wrap("...and so", 70);
	assert_string_equal(out, " ...and so\r\n");
	free(out);

	out = wrap(". . .", 70);
	assert_string_equal(out, " . . .\r\n");
	free(out);

	out = wrap(".", 70);
	assert_string_equal(out, " .\r\n");
	free(out);

	/*
	 * A '.' word does not start a line: UAX #14 (LB13) allows no break
	 * before '.', even after a space, so it goes down with the word
	 * before it.
	 */
	out = wrap("aaaa bbbb .ccc", 10);
	assert_string_equal(out, "aaaa\r\nbbbb .ccc\r\n");
	free(out);

	out = wrap("word .", 4);
	assert_string_equal(out, "word\r\n .\r\n");
	free(out);

	/* The added space counts: ".bbbbbbbbb" would be 11 columns. */
	out = wrap("aaaaaaaaa .bbbbbbbbb", 10);
	check_lines(out, 10);
	assert_same_ink("aaaaaaaaa .bbbbbbbbb", out);
	assert_true(strncmp(out, "aaaaaaaaa\r\n .", 13) == 0);
	free(out);

	/* A hard split of a long word that puts '.' first. */
	out = wrap("aaaaaaaaaa.bbb", 10);
	assert_string_equal(out, "aaaaaaaaaa\r\n .bbb\r\n");
	free(out);

	/* Long text with sentence ends: no line starts with '.'. */
	{
		static const char in[] =
		    "The end is near . . . and then . it was over ... or "
		    "was it .. . . . . . . . . . . . . . . . . . . . . . . "
		    "... .... ..... . a. b. c. d. e. f. g. h. i. j. k. l. "
		    ".m .n .o .p .q .r .s .t .u .v .w .x .y .z";

		for (size_t width = 2; width <= 40; width++) {
			char *o = wrap(in, width);

			check_lines(o, width);
			assert_same_ink(in, o);
			free(o);
		}
	}
}

static void
test_wrap_long_word(void **state)
{
	char word[151], *out, *p;
	size_t sizes[3] = {70, 70, 10}, k = 0;

	(void)state;
	memset(word, 'a', 150);
	word[150] = '\0';
	out = wrap(word, 70);
	assert_int_equal(check_lines(out, 70), 3);
	for (p = out; *p; p = strstr(p, "\r\n") + 2) {
		size_t len = (size_t)(strstr(p, "\r\n") - p);

		assert_int_equal(len, sizes[k]);
		k++;
	}
	assert_same_ink(word, out);
	free(out);

	/* After a short word the long one starts its own line. */
	{
		struct buf in;
		char *s;

		buf_init(&in);
		buf_adds(&in, "short ");
		buf_adds(&in, word);
		s = buf_release(&in, NULL);
		out = wrap(s, 70);
		check_lines(out, 70);
		assert_true(strncmp(out, "short\r\n", 7) == 0);
		assert_same_ink(s, out);
		free(out);
		free(s);
	}

	/* Multi-byte letters are never split inside a sequence. */
	{
		struct buf in;
		char *s;

		buf_init(&in);
		for (int i = 0; i < 150; i++)
			buf_adds(&in, "\xc3\xa9");
		s = buf_release(&in, NULL);
		out = wrap(s, 70);
		assert_int_equal(check_lines(out, 70), 3);
		assert_same_ink(s, out);
		free(out);
		free(s);
	}
}

/*
 * Exact output where the ASCII fast path meets everything else: words
 * exactly at the width, widths 1 and 2, CJK next to ASCII, combining
 * marks, controls (no columns), invalid bytes (one), dots, spaces.
 */
static void
test_wrap_exact(void **state)
{
	static const struct {
		const char *in;
		size_t width;
		const char *out;
	} t[] = {
	    {"abcde fghij", 5, "abcde\r\nfghij\r\n"},
	    {"abcde fghij", 6, "abcde\r\nfghij\r\n"},
	    {"abcde fghij", 11, "abcde fghij\r\n"},
	    {"abcde fghij", 10, "abcde\r\nfghij\r\n"},
	    {"abcdef", 5, "abcde\r\nf\r\n"},
	    {"abcdef", 6, "abcdef\r\n"},
	    {"ab cd", 1, "ab\r\ncd\r\n"},
	    {"ab cd", 2, "ab\r\ncd\r\n"},
	    {"abc", 1, "ab\r\nc\r\n"},
	    {"abc", 0, "ab\r\nc\r\n"},
	    {"a b c", 1, "a\r\nb\r\nc\r\n"},
	    {".a .b", 2, " .\r\na\r\n .\r\nb\r\n"},
	    {"....", 2, " .\r\n .\r\n .\r\n .\r\n"},
	    {".abc", 4, " .ab\r\nc\r\n"},
	    /* No break before '.' (UAX #14 LB13): a stretch cut at the width. */
	    {"ab .cd", 5, "ab .c\r\nd\r\n"},
	    {"ab .cd xy", 6, "ab .cd\r\nxy\r\n"},
	    /* Nor after '(' and spaces (LB14), nor before ')' (LB13). */
	    {"aa ( bb", 5, "aa\r\n( bb\r\n"},
	    {"aa ) bb", 4, "aa )\r\nbb\r\n"},
	    /* Words and URLs are whole: no break at '-' or '/'. */
	    {"a well-known b", 11, "a\r\nwell-known\r\nb\r\n"},
	    {"see http://a.b/c-d/e", 16, "see\r\nhttp://a.b/c-d/e\r\n"},
	    {"see http://a.b/c-d/e", 14, "see\r\nhttp://a.b/c-d\r\n/e\r\n"},
	    {"one. two", 4, "one.\r\ntwo\r\n"},
	    {"hello   ", 5, "hello\r\n"},
	    {"hello   world  ", 7, "hello\r\nworld\r\n"},
	    {"hello world", 70, "hello world\r\n"},
	    {"  lead", 4, "\r\nlead\r\n"},
	    {"ab" ZHONG ZHONG "cd", 4, "ab" ZHONG "\r\n" ZHONG "cd\r\n"},
	    {"ab" ZHONG ZHONG "cd", 3,
	        "ab\r\n" ZHONG "\r\n" ZHONG "\r\ncd\r\n"},
	    {"ab" ZHONG ZHONG "cd", 2,
	        "ab\r\n" ZHONG "\r\n" ZHONG "\r\ncd\r\n"},
	    {"ab" ZHONG ZHONG "cd", 1,
	        "ab\r\n" ZHONG "\r\n" ZHONG "\r\ncd\r\n"},
	    {"ab" ZHONG ZHONG "cd", 6, "ab" ZHONG ZHONG "\r\ncd\r\n"},
	    {"ab" ZHONG ZHONG "cd", 8, "ab" ZHONG ZHONG "cd\r\n"},
	    {ZHONG " " ZHONG " " ZHONG, 4,
	        ZHONG "\r\n" ZHONG "\r\n" ZHONG "\r\n"},
	    {ZHONG " " ZHONG " " ZHONG, 5, ZHONG " " ZHONG "\r\n" ZHONG "\r\n"},
	    /* '.' stays with what it follows (LB13), wide or not. */
	    {"x" ZHONG ".y", 3, "x\r\n" ZHONG ".\r\ny\r\n"},
	    {"word ." ZHONG, 4, "word\r\n ." ZHONG "\r\n"},
	    /* Combining marks take no column: "café" is four wide. */
	    {"cafe\xcc\x81 na\xc3\xafve", 5,
	        "cafe\xcc\x81\r\nna\xc3\xafve\r\n"},
	    {"cafe\xcc\x81 cafe\xcc\x81", 9, "cafe\xcc\x81 cafe\xcc\x81\r\n"},
	    {"e\xcc\x81\xcc\x81\xcc\x81x", 2, "e\xcc\x81\xcc\x81\xcc\x81x\r\n"},
	    {"abcd\xcc\x81"
	     "e",
	        4, "abcd\xcc\x81\r\ne\r\n"},
	    /* Controls take no column, an invalid byte one. */
	    {"a\x01\x7f"
	     "b c",
	        3,
	        "a\x01\x7f"
	        "b\r\nc\r\n"},
	    {"a\x01\x7f"
	     "b c",
	        2,
	        "a\x01\x7f"
	        "b\r\nc\r\n"},
	    {"a\xff"
	     "b c",
	        3,
	        "a\xff"
	        "b\r\nc\r\n"},
	    {"a\xff"
	     "b c",
	        2, "a\xff\r\nb\r\nc\r\n"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char *out = wrap(t[i].in, t[i].width);

		if (strcmp(out, t[i].out) != 0) {
			print_error("case %zu: wrap('%s', %zu) gave '%s'\n", i,
			    t[i].in, t[i].width, out);
			fail();
		}
		free(out);
	}
}

/*
 * The ASCII fast path against libunibreak: random printable ASCII (every
 * character, words, runs of spaces, leading spaces) must get the same
 * break opportunities both ways, whatever the language; text_wrap then
 * gives the same lines, since both feed the one line filler.
 */
static void
test_fast_path_matches_uax14(void **state)
{
	static const char *const atoms[] = {
	    "a",
	    "word",
	    "Longer-word,",
	    "http://example.org/a-b?c=d&e=%20",
	    "x",
	    " ",
	    " ",
	    " ",
	    "  ",
	    "   ",
	    ".",
	    "...",
	    "\"",
	    "'",
	    "1.5",
	    "$5",
	    "50%",
	};
	static const char *const langs[] = {NULL, "en", "zh", "ja", "ko"};
	uint32_t rng = 20261129;
	struct buf in;
	char fast[256], slow[256];

	(void)state;
	buf_init(&in);
	for (int round = 0; round < 20000; round++) {
		size_t natoms;

		in.len = 0;
		rng = rng * 1103515245u + 12345u;
		natoms = 1 + (rng >> 16) % 12;
		for (size_t k = 0; k < natoms; k++) {
			rng = rng * 1103515245u + 12345u;
			if ((rng >> 16) % 3 == 0) {
				/* Any printable ASCII character. */
				rng = rng * 1103515245u + 12345u;
				buf_addc(&in, (char)(' ' + (rng >> 16) % 95));
			} else
				buf_adds(&in,
				    atoms[(rng >> 16) %
				        (sizeof(atoms) / sizeof(atoms[0]))]);
		}
		assert_false(buf_failed(&in));
		assert_true(in.len <= sizeof(fast));
		for (size_t j = 0; j < sizeof(langs) / sizeof(langs[0]); j++) {
			text_breaks(in.p, in.len, langs[j], false, fast);
			text_breaks(in.p, in.len, langs[j], true, slow);
			if (memcmp(fast, slow, in.len) != 0) {
				print_error("breaks differ for '%.*s' (%s)\n",
				    (int)in.len, in.p,
				    langs[j] ? langs[j] : "none");
				for (size_t k = 0; k < in.len; k++)
					print_error("%c%c%c", in.p[k],
					    fast[k] ? '|' : ' ',
					    slow[k] ? '|' : ' ');
				print_error("\n");
				fail();
			}
		}
	}
	buf_free(&in);
}
static void
test_truncate_short(void **state)
{
	static const char *const in[] = {
	    "",
	    "short",
	    "exactly twenty chars",
	    ZHONG ZHONG ZHONG,
	    "caf\xc3\xa9",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		char *out = truncate_to(in[i], 20);

		assert_string_equal(out, in[i]);
		free(out);
	}
}

static void
test_truncate_latin(void **state)
{
	static const char in[] = "The quick brown fox jumps over the lazy dog "
	                         "and keeps running far away";

	(void)state;
	for (size_t width = 10; width < sizeof(in) - 1; width++) {
		char *out = truncate_to(in, width);
		size_t len = strlen(out), cut;

		assert_true(w(out) <= width);
		assert_true(utf8_valid(out, len));
		assert_true(len >= 3);
		assert_string_equal(out + len - 3, ELLIPSIS);
		cut = len - 3;
		assert_true(cut > 0);
		assert_memory_equal(out, in, cut);
		/* A word boundary: the cut is before a space. */
		assert_true(in[cut] == ' ');
		assert_true(out[cut - 1] != ' ');
		free(out);
	}
	{
		char *out = truncate_to(in, 20);

		/* Every whole word that fits is kept: the cut falls on the
		 * space after "fox". */
		assert_string_equal(out, "The quick brown fox" ELLIPSIS);
		free(out);
		out = truncate_to(in, 30);
		assert_true(w(out) >= 15);
		assert_true(strncmp(out, "The quick brown fox jumps", 25) == 0);
		free(out);
	}
}

static void
test_truncate_cjk(void **state)
{
	struct buf in;
	char *s;

	(void)state;
	buf_init(&in);
	for (int i = 0; i < 100; i++)
		buf_adds(&in, ZHONG);
	s = buf_release(&in, NULL);
	assert_non_null(s);
	for (size_t width = 1; width <= 67; width++) {
		char *out = truncate_to(s, width);
		size_t len = strlen(out);

		assert_true(w(out) <= width);
		assert_true(w(out) + 2 > width); /* nothing wasted */
		assert_true(utf8_valid(out, len));
		assert_string_equal(out + len - 3, ELLIPSIS);
		assert_memory_equal(out, s, len - 3);
		free(out);
	}
	free(s);
}

static void
test_truncate_long_word(void **state)
{
	static const char in[] = "a verylongwordthatgoesonandonandon";
	char *out;

	(void)state;
	out = truncate_to(in, 10);
	assert_true(w(out) <= 10);
	assert_string_equal(out, "a verylon" ELLIPSIS);
	free(out);
}

/* Characters of class CL, CP, EX, IS or NS, and of class OP (UAX #14). */
static const char *const closing[] = {"\xe3\x80\x82", "\xef\xbc\x8c",
    "\xe3\x80\x81", "\xef\xbc\x9b", "\xef\xbc\x9a", "\xef\xbc\x9f",
    "\xef\xbc\x81", "\xef\xbc\x89", "\xe3\x80\x8d", "\xe3\x80\x8f",
    "\xe3\x80\x8b", "\xe3\x80\x85", "\xe3\x83\xbb", ")", "]", "}", "!", "?",
    ",", ".", ":", ";"};
static const char *const opening[] = {"\xef\xbc\x88", "\xe3\x80\x8c",
    "\xe3\x80\x8e", "\xe3\x80\x8a", "(", "[", "{"};

static bool
starts_with_any(const char *p, size_t len, const char *const *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (len >= strlen(set[i]) &&
		    memcmp(p, set[i], strlen(set[i])) == 0)
			return true;
	return false;
}

static bool
ends_with_any(const char *p, size_t len, const char *const *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (len >= strlen(set[i]) &&
		    memcmp(p + len - strlen(set[i]), set[i], strlen(set[i])) ==
		        0)
			return true;
	return false;
}

/* No line starts with closing punctuation or ends with an opening one. */
static void
check_cjk_rules(const char *out, size_t width)
{
	const char *p = out;

	check_lines(out, width);
	for (; *p != '\0'; p = strstr(p, "\r\n") + 2) {
		size_t len = (size_t)(strstr(p, "\r\n") - p);

		if (starts_with_any(p, len, closing,
		        sizeof(closing) / sizeof(closing[0])) ||
		    ends_with_any(p, len, opening,
		        sizeof(opening) / sizeof(opening[0]))) {
			print_error("width %zu: bad line '%.*s' in\n%s\n",
			    width, (int)len, p, out);
			fail();
		}
	}
}

/* Wraps s at widths from to 80 under lang: the rules, nothing lost. */
static void
check_cjk_text(const char *s, const char *lang, size_t from)
{
	for (size_t width = from; width <= 80; width++) {
		struct buf b;
		char *out;

		buf_init(&b);
		text_wrap(&b, s, strlen(s), width, "\r\n", lang);
		out = buf_release(&b, NULL);
		assert_non_null(out);
		check_cjk_rules(out, width);
		assert_same_ink(s, out);
		free(out);
	}
}

/* 中国科学院（CAS）与“一带一路”沿线国家的科研机构发表了《北京宣言》，... */
static const char zh_punct[] =
    "\xe4\xb8\xad\xe5\x9b\xbd\xe7\xa7\x91\xe5\xad\xa6\xe9\x99\xa2\xef\xbc"
    "\x88\xe4\xb8\xad\xe7\xa7\x91\xe9\x99\xa2\xef\xbc\x89\xe4\xb8\x8e\xe2"
    "\x80\x9c\xe4\xb8\x80\xe5\xb8\xa6\xe4\xb8\x80\xe8\xb7\xaf\xe2\x80\x9d"
    "\xe6\xb2\xbf\xe7\xba\xbf\xe5\x9b\xbd\xe5\xae\xb6\xe7\x9a\x84\xe7\xa7"
    "\x91\xe7\xa0\x94\xe6\x9c\xba\xe6\x9e\x84\xe5\x8f\x91\xe8\xa1\xa8\xe4"
    "\xba\x86\xe3\x80\x8a\xe5\x8c\x97\xe4\xba\xac\xe5\xae\xa3\xe8\xa8\x80"
    "\xe3\x80\x8b\xef\xbc\x8c\xe5\xbb\xba\xe7\xab\x8b\xe4\xba\x86\xe5\x8f"
    "\x8c\xe8\xbe\xb9\xe3\x80\x81\xe5\xa4\x9a\xe8\xbe\xb9\xe5\x90\x88\xe4"
    "\xbd\x9c\xe6\x9c\xba\xe5\x88\xb6\xef\xbc\x9b\xe4\xbb\x96\xe4\xbb\xac"
    "\xe8\xaf\xb4\xef\xbc\x9a\xe2\x80\x9c\xe8\xbf\x99\xe6\x98\xaf\xe5\x8f"
    "\xaf\xe8\x83\xbd\xe7\x9a\x84\xe5\x90\x97\xef\xbc\x9f\xe6\x98\xaf\xe7"
    "\x9a\x84\xef\xbc\x81\xe2\x80\x9d\xe3\x80\x8c\xe7\xa7\x91\xe5\xad\xa6"
    "\xe3\x80\x8d\xe4\xb8\x8e\xe3\x80\x8e\xe6\x8a\x80\xe6\x9c\xaf\xe3\x80"
    "\x8f\xe3\x80\x82\xe5\x86\x8d\xe8\xa7\x81\xe3\x80\x82";

static void
test_wrap_chinese_rules(void **state)
{
	struct buf in;
	char *s;

	(void)state;
	/* The case: "。" alone after a full line never comes down. */
	buf_init(&in);
	for (int i = 0; i < 35; i++)
		buf_adds(&in, ZHONG);
	buf_adds(&in, "\xe3\x80\x82");
	s = buf_release(&in, NULL);
	assert_non_null(s);
	check_cjk_text(s, "zh", 10);
	free(s);
	check_cjk_text(zh_punct, "zh", 10);
	check_cjk_text(zh_punct, NULL, 10);
	/* Four times over: many lines, each way the punctuation falls. */
	buf_init(&in);
	for (int i = 0; i < 4; i++)
		buf_adds(&in, zh_punct);
	s = buf_release(&in, NULL);
	assert_non_null(s);
	check_cjk_text(s, "zh-Hans", 10);
	free(s);
}

static void
test_wrap_japanese_rules(void **state)
{
	/*
	 * 東京は、日本の首都です。「東京スカイツリー」（高さ634メートル）
	 * は、世界一高い電波塔です！人々・時々 ...
	 */
	static const char ja[] =
	    "\xe6\x9d\xb1\xe4\xba\xac\xe3\x81\xaf\xe3\x80\x81\xe6\x97\xa5\xe6"
	    "\x9c\xac\xe3\x81\xae\xe9\xa6\x96\xe9\x83\xbd\xe3\x81\xa7\xe3\x81"
	    "\x99\xe3\x80\x82\xe3\x80\x8c\xe6\x9d\xb1\xe4\xba\xac\xe3\x82\xb9"
	    "\xe3\x82\xab\xe3\x82\xa4\xe3\x83\x84\xe3\x83\xaa\xe3\x83\xbc\xe3"
	    "\x80\x8d\xef\xbc\x88\xe9\xab\x98\xe3\x81\x95\x36\x33\x34\xe3\x83"
	    "\xa1\xe3\x83\xbc\xe3\x83\x88\xe3\x83\xab\xef\xbc\x89\xe3\x81\xaf"
	    "\xe3\x80\x81\xe4\xb8\x96\xe7\x95\x8c\xe4\xb8\x80\xe9\xab\x98\xe3"
	    "\x81\x84\xe9\x9b\xbb\xe6\xb3\xa2\xe5\xa1\x94\xe3\x81\xa7\xe3\x81"
	    "\x99\xef\xbc\x81\xe4\xba\xba\xe3\x80\x85\xe3\x83\xbb\xe6\x99\x82"
	    "\xe3\x80\x85\xe3\x80\x82";
	struct buf in;
	char *s;

	(void)state;
	buf_init(&in);
	for (int i = 0; i < 5; i++)
		buf_adds(&in, ja);
	s = buf_release(&in, NULL);
	assert_non_null(s);
	check_cjk_text(s, "ja", 10);
	check_cjk_text(s, NULL, 10);
	free(s);
}

static void
test_wrap_korean_at_spaces(void **state)
{
	/*
	 * 연구진에 따르면 한국어는 띄어쓰기로 단어를 나눈다. 긴
	 * 문장에서도 단어가 중간에서 잘리지 않아야 한다.
	 */
	static const char ko[] =
	    "\xec\x97\xb0\xea\xb5\xac\xec\xa7\x84\xec\x97\x90 \xeb\x94\xb0\xeb"
	    "\xa5\xb4\xeb\xa9\xb4 \xed\x95\x9c\xea\xb5\xad\xec\x96\xb4\xeb\x8a"
	    "\x94 \xeb\x9d\x84\xec\x96\xb4\xec\x93\xb0\xea\xb8\xb0\xeb\xa1\x9c "
	    "\xeb\x8b\xa8\xec\x96\xb4\xeb\xa5\xbc \xeb\x82\x98\xeb\x88\x88\xeb"
	    "\x8b\xa4. \xea\xb8\xb4 \xeb\xac\xb8\xec\x9e\xa5\xec\x97\x90\xec"
	    "\x84\x9c\xeb\x8f\x84 \xeb\x8b\xa8\xec\x96\xb4\xea\xb0\x80 \xec\xa4"
	    "\x91\xea\xb0\x84\xec\x97\x90\xec\x84\x9c \xec\x9e\x98\xeb\xa6\xac"
	    "\xec\xa7\x80 \xec\x95\x8a\xec\x95\x84\xec\x95\xbc API\xeb\xa5\xbc "
	    "\xed\x95\x9c\xeb\x8b\xa4.";
	struct buf in;
	char *s;

	(void)state;
	buf_init(&in);
	for (int i = 0; i < 4; i++) {
		buf_adds(&in, ko);
		buf_addc(&in, ' ');
	}
	s = buf_release(&in, NULL);
	assert_non_null(s);
	/* The longest word, 문장에서도, is ten columns. */
	for (size_t width = 10; width <= 80; width++) {
		const char *langs[] = {"ko", NULL};

		for (size_t j = 0; j < 2; j++) {
			struct buf b;
			char *out;

			buf_init(&b);
			text_wrap(&b, s, strlen(s), width, "\r\n", langs[j]);
			out = buf_release(&b, NULL);
			assert_non_null(out);
			check_lines(out, width);
			/* Lines end only at spaces: the words are the same. */
			assert_same_words(s, out);
			free(out);
		}
	}
	free(s);
}

/* Latin words and URLs in CJK text stay whole when they fit a line. */
static void
test_wrap_mixed_latin_cjk(void **state)
{
	/* Gemini和Gopher是两种协议（见 https://...）。The quick brown... */
	static const char mixed[] =
	    "Gemini\xe5\x92\x8cGopher\xe6\x98\xaf\xe4\xb8\xa4\xe7\xa7\x8d\xe5"
	    "\x8d\x8f\xe8\xae\xae\xef\xbc\x88\xe8\xa7\x81 "
	    "https://geminiprotocol.net/docs/protocol-specification.gmi\xef"
	    "\xbc\x89\xe3\x80\x82The quick brown fox \xe8\xb7\xb3\xe8\xbf\x87"
	    "\xe4\xba\x86 jumps over the lazy-dog-ish dog, "
	    "Caf\xc3\xa9-cr\xc3\xa8me \xe4\xb8\x8e na\xc3\xafve r\xc3\xa9sum"
	    "\xc3\xa9\xe3\x80\x82";
	static const char *const whole[] = {"Gemini", "Gopher",
	    "https://geminiprotocol.net/docs/protocol-specification.gmi",
	    "quick", "brown", "jumps", "lazy-dog-ish", "dog,",
	    "Caf\xc3\xa9-cr\xc3\xa8me", "na\xc3\xafve", "r\xc3\xa9sum\xc3\xa9"};

	(void)state;
	/* Once the URL fits: a stretch wider than a line has to be cut. */
	check_cjk_text(mixed, "zh", 62);
	for (size_t width = 10; width <= 100; width++) {
		char *out = wrap(mixed, width);

		check_lines(out, width);
		assert_same_ink(mixed, out);
		for (size_t i = 0; i < sizeof(whole) / sizeof(whole[0]); i++)
			if (w(whole[i]) <= width &&
			    strstr(out, whole[i]) == NULL) {
				print_error("width %zu split '%s':\n%s\n",
				    width, whole[i], out);
				fail();
			}
		free(out);
	}
}

/* A URL wider than a line fills whole lines; one that fits is kept. */
static void
test_wrap_long_url(void **state)
{
	static const char url[] =
	    "gemini://example.org/news/2026/11/29/"
	    "a-very-long-article-name-with-many-hyphens-in-it?and=a&query=1";
	struct buf in;
	char *s;

	(void)state;
	buf_init(&in);
	buf_adds(&in, "Read it at ");
	buf_adds(&in, url);
	buf_adds(&in, " today, or later.");
	s = buf_release(&in, NULL);
	assert_non_null(s);
	for (size_t width = 10; width <= 120; width++) {
		char *out = wrap(s, width), *p;

		check_lines(out, width);
		assert_same_ink(s, out);
		if (w(url) <= width) {
			/* Whole, on a line of its own or with words. */
			assert_non_null(strstr(out, url));
		} else {
			/* Its own lines, all full but the last. */
			p = strstr(out, "\r\n") + 2;
			assert_true(strncmp(out, "Read it at\r\n", 12) == 0 ||
			    width < 10);
			assert_true(strncmp(p, "gemini://", 9) == 0);
			assert_int_equal(
			    (size_t)(strstr(p, "\r\n") - p), width);
		}
		free(out);
	}
	free(s);
}

/* Quotes: in Chinese, "“" opens and "”" closes; without a language
 * they are glue on both sides (QU): either way never at the wrong end. */
static void
test_wrap_quotes_by_language(void **state)
{
	/* 你好“世界”再见 */
	static const char s[] = "\xe4\xbd\xa0\xe5\xa5\xbd\xe2\x80\x9c\xe4\xb8"
	                        "\x96\xe7\x95\x8c\xe2\x80\x9d\xe5\x86\x8d\xe8"
	                        "\xa7\x81";
	char brk[sizeof(s)];
	size_t open = 6, close = 15; /* byte offsets of “ and ” */

	(void)state;
	text_breaks(s, strlen(s), "zh", false, brk);
	assert_int_equal(brk[open - 1], 1);  /* 好|“ */
	assert_int_equal(brk[open + 2], 0);  /* “×世 */
	assert_int_equal(brk[close - 1], 0); /* 界×” */
	assert_int_equal(brk[close + 2], 1); /* ”|再 */
	text_breaks(s, strlen(s), NULL, false, brk);
	assert_int_equal(brk[open - 1], 0);
	assert_int_equal(brk[open + 2], 0);
	assert_int_equal(brk[close - 1], 0);
	assert_int_equal(brk[close + 2], 0);
}

/* Menu strings: cut at a break, so "《" is never left before the mark. */
static void
test_truncate_cjk_rules(void **state)
{
	(void)state;
	for (size_t width = 6; width <= 60; width++) {
		struct buf b;
		char *out;
		size_t len;

		buf_init(&b);
		text_truncate(
		    &b, zh_punct, strlen(zh_punct), width, "...", "zh");
		out = buf_release(&b, NULL);
		assert_non_null(out);
		len = strlen(out);
		assert_true(w(out) <= width);
		assert_string_equal(out + len - 3, "...");
		assert_false(ends_with_any(out, len - 3, opening,
		    sizeof(opening) / sizeof(opening[0])));
		assert_memory_equal(out, zh_punct, len - 3);
		free(out);
	}
}

/* text_wrap_balanced into a fresh NUL-terminated string. */
static char *
wrap_balanced(const char *s, size_t width)
{
	struct buf b;
	char *out;

	buf_init(&b);
	text_wrap_balanced(&b, s, strlen(s), width, "\r\n", NULL);
	assert_false(buf_failed(&b));
	out = buf_release(&b, NULL);
	assert_non_null(out);
	return out;
}

/*
 * Headings: as few lines as text_wrap makes, but even ones, so that the
 * last is no lone word; what fits on a line stays one line.
 */
static void
test_wrap_balanced(void **state)
{
	static const char title[] = "Report on a very long title that goes "
	                            "on and on about the glacier and more";
	struct article a;
	char *out;

	(void)state;
	out = wrap_balanced(title, 70);
	assert_string_equal(out,
	    "Report on a very long title that goes\r\n"
	    "on and on about the glacier and more\r\n");
	free(out);
	out = wrap_balanced("Short title", 70);
	assert_string_equal(out, "Short title\r\n");
	free(out);
	/* Chinese: "。" still never starts a line. */
	out = wrap_balanced(zh_punct, 70);
	check_cjk_rules(out, 70);
	free(out);
	seed_article(&a);
	for (size_t width = 20; width <= 100; width += 3)
		for (size_t i = 0; i < a.npara; i++) {
			char *greedy = wrap(a.paras[i], width);
			size_t n = check_lines(greedy, width);

			out = wrap_balanced(a.paras[i], width);
			assert_int_equal(check_lines(out, width), n);
			assert_same_words(a.paras[i], out);
			free(out);
			free(greedy);
		}
	article_free(&a);
}

/*
 * Mixed text: the fast path takes the long ASCII stretches and hands
 * the rest to libunibreak in pieces; the pieces must add up to what one
 * libunibreak run over the whole text gives, in every language.
 */
static void
test_mixed_path_matches_uax14(void **state)
{
	static const char *const atoms[] = {
	    "a",
	    "word",
	    "Longer-word,",
	    "http://example.org/a-b?c=d",
	    " ",
	    " ",
	    " ",
	    "  ",
	    ".",
	    "(",
	    ")",
	    "\"",
	    "'",
	    "1.5",
	    "The quick brown fox jumps over the lazy dog and runs away ",
	    " ( a ) [ b ] \" c \" ' d ' ",
	    ZHONG,
	    ZHONG ZHONG ZHONG,
	    "\xe3\x80\x82",             /* 。 */
	    "\xef\xbc\x8c",             /* ， */
	    "\xe3\x80\x8a",             /* 《 */
	    "\xef\xbc\x89",             /* ） */
	    "\xe2\x80\x9c",             /* “ */
	    "\xe2\x80\x9d",             /* ” */
	    "\xe2\x80\x99",             /* ’ */
	    "\xe2\x80\x94",             /* em dash */
	    "\xec\x97\xb0\xea\xb5\xac", /* 연구 */
	    "\xe3\x81\x82\xe3\x83\xbc", /* あー */
	    "e\xcc\x81",                /* e + combining acute */
	    "\xcc\x81",                 /* a lone combining mark */
	    "\xc3\xa9t\xc3\xa9",        /* été */
	    "\xc2\xa0",                 /* no-break space */
	    "\xe2\x80\x8b",             /* zero-width space */
	    "\xf0\x9f\x98\x80",         /* emoji */
	    "\t",
	    /* Not UTF-8: the whole text goes to libunibreak. */
	    "\xff",
	    /* U+FFFF is libunibreak's end of text; it reads "\xef??" so. */
	    "\xef\xbf\xbf",
	    "\xef??",
	};
	static const char *const langs[] = {NULL, "en", "zh", "ja", "ko"};
	uint32_t rng = 1129;
	struct buf in;
	char fast[4096], slow[4096];

	(void)state;
	buf_init(&in);
	for (int round = 0; round < 6000; round++) {
		size_t natoms;

		in.len = 0;
		rng = rng * 1103515245u + 12345u;
		natoms = 1 + (rng >> 16) % 40;
		for (size_t k = 0; k < natoms; k++) {
			rng = rng * 1103515245u + 12345u;
			buf_adds(&in,
			    atoms[(rng >> 16) %
			        (sizeof(atoms) / sizeof(atoms[0]))]);
		}
		assert_false(buf_failed(&in));
		assert_true(in.len <= sizeof(fast));
		for (size_t j = 0; j < sizeof(langs) / sizeof(langs[0]); j++) {
			text_breaks(in.p, in.len, langs[j], false, fast);
			text_breaks(in.p, in.len, langs[j], true, slow);
			if (memcmp(fast, slow, in.len) != 0) {
				for (size_t k = 0; k < in.len; k++)
					if (fast[k] != slow[k]) {
						print_error(
						    "breaks differ after "
						    "byte %zu of '%.*s' (%s)\n",
						    k, (int)in.len, in.p,
						    langs[j] ? langs[j]
						             : "none");
						break;
					}
				fail();
			}
		}
	}
	buf_free(&in);
}

/*
 * libunibreak takes U+FFFF for the end of the text and asserts: found by
 * fuzz_article ("?\uFEFB\uFFFF\uFEFF").  Such text, and invalid bytes
 * it would decode as U+FFFF, wrap like any other.
 */
static void
test_wrap_uffff(void **state)
{
	/* Parenthesised: one element each, whatever clang suspects. */
	static const char *const in[] = {
	    "?\xef\xbb\xbb\xef\xbf\xbf\xef\xbb\xbf",
	    ("a \xef\xbf\xbf b \xef\xbf\xbf\xef\xbf\xbf " ZHONG ZHONG),
	    ("word \xef?? more words and \xef\xbf\xbf then " ZHONG),
	    "\xef\xff\xff\xef\x7f\x7f abc",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
		for (size_t width = 2; width <= 12; width++) {
			char *out = wrap(in[i], width);

			assert_same_ink(in[i], out);
			free(out);
			out = truncate_to(in[i], width);
			assert_true(w(out) <= width);
			free(out);
		}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_width),
	    cmocka_unit_test(test_wrap_seed),
	    cmocka_unit_test(test_wrap_fills_lines),
	    cmocka_unit_test(test_wrap_cjk),
	    cmocka_unit_test(test_wrap_cjk_paragraph),
	    cmocka_unit_test(test_wrap_mixed),
	    cmocka_unit_test(test_wrap_generated),
	    cmocka_unit_test(test_wrap_dots),
	    cmocka_unit_test(test_wrap_long_word),
	    cmocka_unit_test(test_wrap_exact),
	    cmocka_unit_test(test_fast_path_matches_uax14),
	    cmocka_unit_test(test_mixed_path_matches_uax14),
	    cmocka_unit_test(test_wrap_chinese_rules),
	    cmocka_unit_test(test_wrap_japanese_rules),
	    cmocka_unit_test(test_wrap_korean_at_spaces),
	    cmocka_unit_test(test_wrap_mixed_latin_cjk),
	    cmocka_unit_test(test_wrap_long_url),
	    cmocka_unit_test(test_wrap_quotes_by_language),
	    cmocka_unit_test(test_truncate_cjk_rules),
	    cmocka_unit_test(test_wrap_balanced),
	    cmocka_unit_test(test_wrap_uffff),
	    cmocka_unit_test(test_truncate_short),
	    cmocka_unit_test(test_truncate_latin),
	    cmocka_unit_test(test_truncate_cjk),
	    cmocka_unit_test(test_truncate_long_word),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
