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
	text_wrap(&b, s, strlen(s), width, "\r\n");
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
	text_truncate(&b, s, strlen(s), width);
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

	/* A '.' word that lands at the start of a wrapped line. */
	out = wrap("aaaa bbbb .ccc", 10);
	assert_string_equal(out, "aaaa bbbb\r\n .ccc\r\n");
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
	    {"ab .cd", 5, "ab\r\n .cd\r\n"},
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
	    {"x" ZHONG ".y", 3, "x" ZHONG "\r\n .y\r\n"},
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
 * The reference: the shaping functions as they were before the ASCII fast
 * path, one utf8proc lookup per character.
 */
static size_t
ref_next_char(const char *s, size_t len, size_t i, size_t *width)
{
	utf8proc_int32_t cp;
	utf8proc_ssize_t n;

	n = utf8proc_iterate(
	    (const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), &cp);
	if (n <= 0) {
		*width = 1;
		return 1;
	}
	*width = (size_t)utf8proc_charwidth(cp);
	return (size_t)n;
}

static size_t
ref_width(const char *s, size_t len)
{
	size_t i = 0, w, total = 0;

	while (i < len) {
		i += ref_next_char(s, len, i, &w);
		total += w;
	}
	return total;
}

static void
ref_emit(struct buf *b, const char *s, size_t len, const char *eol)
{
	while (len > 0 && s[len - 1] == ' ')
		len--;
	if (len > 0 && s[0] == '.')
		buf_addc(b, ' ');
	buf_add(b, s, len);
	buf_adds(b, eol);
}

static void
ref_wrap(
    struct buf *b, const char *s, size_t len, size_t width, const char *eol)
{
	size_t start = 0, i = 0, col = 0;
	size_t brk = 0, brk_col = 0, brk_skip = 0;
	bool have_brk = false, prev_wide = false;

	if (width < 2)
		width = 2;
	if (len > 0 && s[0] == '.')
		col = 1;
	while (i < len) {
		size_t cw, n;

		if (s[i] == ' ') {
			if (i == start && start != 0) {
				start = ++i;
				col = (i < len && s[i] == '.') ? 1 : 0;
				continue;
			}
			brk = i;
			brk_col = col;
			brk_skip = 1;
			have_brk = true;
			col++;
			i++;
			prev_wide = false;
			continue;
		}
		n = ref_next_char(s, len, i, &cw);
		if (cw == 2 && i > start && !prev_wide) {
			brk = i;
			brk_col = col;
			brk_skip = 0;
			have_brk = true;
		}
		if (col + cw > width && i > start) {
			if (have_brk && brk > start) {
				ref_emit(b, s + start, brk - start, eol);
				col -= brk_col + brk_skip;
				start = brk + brk_skip;
			} else {
				ref_emit(b, s + start, i - start, eol);
				col = 0;
				start = i;
			}
			have_brk = false;
			if (start < len && s[start] == '.')
				col++;
			continue;
		}
		col += cw;
		i += n;
		prev_wide = (cw == 2);
		if (prev_wide) {
			brk = i;
			brk_col = col;
			brk_skip = 0;
			have_brk = true;
		}
	}
	if (start < len)
		ref_emit(b, s + start, len - start, eol);
}

static void
ref_truncate(struct buf *b, const char *s, size_t len, size_t width)
{
	size_t i = 0, col = 0, cut = 0, word_cut = 0;

	if (ref_width(s, len) <= width) {
		buf_add(b, s, len);
		return;
	}
	if (width == 0)
		return;
	while (i < len) {
		size_t cw, n = ref_next_char(s, len, i, &cw);

		if (col + cw > width - 1) {
			if (s[i] == ' ')
				word_cut = i;
			break;
		}
		if (s[i] == ' ')
			word_cut = i;
		col += cw;
		i += n;
		cut = i;
	}
	if (word_cut > 0 && ref_width(s, word_cut) >= (width - 1) / 2)
		cut = word_cut;
	while (cut > 0 && s[cut - 1] == ' ')
		cut--;
	buf_add(b, s, cut);
	buf_adds(b, ELLIPSIS);
}

static void
assert_same_output(const char *what, const char *in, size_t len, size_t width,
    const struct buf *want, const struct buf *got)
{
	if (want->len == got->len &&
	    (want->len == 0 || memcmp(want->p, got->p, want->len) == 0))
		return;
	print_error("%s differs from the reference at width %zu for "
	            "'%.*s':\nwant '%.*s'\ngot  '%.*s'\n",
	    what, width, (int)len, in, (int)want->len, want->p ? want->p : "",
	    (int)got->len, got->p ? got->p : "");
	fail();
}

/*
 * Differential: random strings of ASCII words, spaces, dots, controls,
 * CJK, combining marks, emoji, invalid and cut-short UTF-8, through the
 * fast functions and the reference at many widths: byte-identical.
 */
static void
test_fast_path_matches_reference(void **state)
{
	static const char *const atoms[] = {
	    "a",
	    "word",
	    "Longer-word,",
	    "x",
	    "supercalifragilisticexpialidocious",
	    " ",
	    " ",
	    " ",
	    "  ",
	    ".",
	    "...",
	    "\t",
	    "\x01",
	    "\x7f",
	    ZHONG,
	    ZHONG ZHONG ZHONG,
	    "\xe3\x80\x82",     /* 。 */
	    "\xef\xbc\xa1",     /* fullwidth A */
	    "e\xcc\x81",        /* e + combining acute */
	    "\xcc\x81",         /* a lone combining mark */
	    "\xc3\xa9",         /* é */
	    "\xc2\xa0",         /* no-break space */
	    "\xe2\x80\x8b",     /* zero-width space */
	    "\xe2\x80\x94",     /* em dash */
	    "\xf0\x9f\x98\x80", /* emoji, two columns */
	    "\xff",             /* never UTF-8 */
	    "\xe4\xb8",         /* a cut-short sequence */
	    "\xd0\x96\xd1\x83\xd0\xba",
	};
	static const size_t widths[] = {
	    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 17, 20, 33, 40, 70, 79};
	uint32_t rng = 20261127;
	struct buf in, want, got;

	(void)state;
	buf_init(&in);
	buf_init(&want);
	buf_init(&got);
	for (int round = 0; round < 3000; round++) {
		size_t natoms;

		in.len = 0;
		rng = rng * 1103515245u + 12345u;
		natoms = (rng >> 16) % 40;
		for (size_t k = 0; k < natoms; k++) {
			rng = rng * 1103515245u + 12345u;
			buf_adds(&in,
			    atoms[(rng >> 16) %
			        (sizeof(atoms) / sizeof(atoms[0]))]);
		}
		assert_false(buf_failed(&in));
		if (natoms == 0)
			continue;
		for (size_t k = 0; k <= in.len; k++)
			assert_int_equal(
			    text_width(in.p, k), ref_width(in.p, k));
		for (size_t j = 0; j < sizeof(widths) / sizeof(widths[0]);
		     j++) {
			size_t wd = widths[j];

			want.len = got.len = 0;
			ref_wrap(&want, in.p, in.len, wd, "\r\n");
			text_wrap(&got, in.p, in.len, wd, "\r\n");
			assert_same_output(
			    "text_wrap", in.p, in.len, wd, &want, &got);
			want.len = got.len = 0;
			ref_truncate(&want, in.p, in.len, wd);
			text_truncate(&got, in.p, in.len, wd);
			assert_same_output(
			    "text_truncate", in.p, in.len, wd, &want, &got);
		}
	}
	buf_free(&in);
	buf_free(&want);
	buf_free(&got);
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
	    cmocka_unit_test(test_fast_path_matches_reference),
	    cmocka_unit_test(test_truncate_short),
	    cmocka_unit_test(test_truncate_latin),
	    cmocka_unit_test(test_truncate_cjk),
	    cmocka_unit_test(test_truncate_long_word),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
