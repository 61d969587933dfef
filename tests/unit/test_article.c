/*
 * article_parse: the seed article in every line-end variant, headers,
 * refused input (dates, UTF-8, control bytes, missing title, duplicate
 * headers) and the date and language validators.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "article.h"
#include "seed.h"
#include "util.h"

#define SEED_TITLE                                                             \
	"Beijing Declaration: A New Chapter of Science and Technology "        \
	"Cooperation Between China and Belt and Road Countries"

/* s with every "\n" as "\r\n". */
static char *
to_crlf(const char *s, size_t len, size_t *outlen)
{
	struct buf b;

	buf_init(&b);
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\n')
			buf_addc(&b, '\r');
		buf_addc(&b, s[i]);
	}
	return buf_release(&b, outlen);
}

static char *
concat(const char *a, size_t alen, const char *b, size_t blen, size_t *outlen)
{
	char *p = malloc(alen + blen + 1);

	assert_non_null(p);
	memcpy(p, a, alen);
	memcpy(p + alen, b, blen);
	p[alen + blen] = '\0';
	*outlen = alen + blen;
	return p;
}

static void
assert_str_or_null(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void
assert_article_equal(const struct article *x, const struct article *y)
{
	assert_str_or_null(x->location, y->location);
	assert_str_or_null(x->date, y->date);
	assert_str_or_null(x->lang, y->lang);
	assert_str_or_null(x->tags, y->tags);
	assert_str_or_null(x->source, y->source);
	assert_str_or_null(x->author, y->author);
	assert_str_or_null(x->title, y->title);
	assert_int_equal(x->npara, y->npara);
	for (size_t i = 0; i < x->npara; i++)
		assert_string_equal(x->paras[i], y->paras[i]);
	assert_str_or_null(x->editor, y->editor);
	assert_str_or_null(x->copyright, y->copyright);
}

static void
assert_empty(const struct article *a)
{
	assert_null(a->location);
	assert_null(a->date);
	assert_null(a->lang);
	assert_null(a->tags);
	assert_null(a->source);
	assert_null(a->author);
	assert_null(a->title);
	assert_null(a->paras);
	assert_int_equal(a->npara, 0);
	assert_null(a->editor);
	assert_null(a->copyright);
}

static int
starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void
parse_ok(const char *data, size_t len, struct article *a)
{
	const char *err = NULL;
	int rv = article_parse(data, len, a, &err);

	if (rv != 0)
		print_error("article_parse: %s\n", err ? err : "(null)");
	assert_int_equal(rv, 0);
}

/* Parses and expects -1 with errstr holding needle (when not NULL). */
static void
parse_fails(const char *data, size_t len, const char *needle)
{
	struct article a;
	const char *err = NULL;

	assert_int_equal(article_parse(data, len, &a, &err), -1);
	assert_non_null(err);
	if (needle != NULL && strstr(err, needle) == NULL) {
		print_error("errstr '%s' lacks '%s'\n", err, needle);
		fail();
	}
	assert_empty(&a);
	article_free(&a);
}

static void
assert_seed(const struct article *a)
{
	assert_non_null(a->location);
	assert_string_equal(a->location, "Home > News");
	assert_non_null(a->title);
	assert_string_equal(a->title, SEED_TITLE);
	assert_null(a->date);
	assert_null(a->lang);
	assert_null(a->tags);
	assert_null(a->source);
	assert_null(a->author);
	assert_int_equal(a->npara, 6);
	assert_true(starts_with(a->paras[0], "Twenty national"));
	assert_true(starts_with(a->paras[5], "Proposed by President"));
	for (size_t i = 0; i < a->npara; i++) {
		assert_null(strchr(a->paras[i], '\n'));
		assert_null(strchr(a->paras[i], '\r'));
	}
	assert_non_null(a->editor);
	assert_string_equal(a->editor, "(Editor: LIU Jia)");
	assert_non_null(a->copyright);
	assert_string_equal(a->copyright,
	    "Copyright \xc2\xa9 2002 - 2016 Chinese Academy of "
	    "Sciences");
}

static void
test_seed(void **state)
{
	struct article a;
	size_t len;
	char *data = read_seed(&len);

	assert_non_null(data);

	(void)state;
	/* The seed as shipped has no final newline. */
	assert_true(data[len - 1] != '\n');
	parse_ok(data, len, &a);
	assert_seed(&a);
	article_free(&a);
	free(data);
}

static void
test_seed_variants(void **state)
{
	struct article ref, a;
	size_t len, nlen, clen, cnlen, blen;
	char *data = read_seed(&len);

	assert_non_null(data);
	char *nl = concat(data, len, "\n", 1, &nlen);
	char *crlf = to_crlf(data, len, &clen);
	char *crlfnl = to_crlf(nl, nlen, &cnlen);
	char *bom = concat("\xef\xbb\xbf", 3, data, len, &blen);

	(void)state;
	assert_non_null(crlf);
	assert_non_null(crlfnl);
	parse_ok(data, len, &ref);

	parse_ok(nl, nlen, &a);
	assert_seed(&a);
	assert_article_equal(&ref, &a);
	article_free(&a);

	parse_ok(crlf, clen, &a);
	assert_seed(&a);
	assert_article_equal(&ref, &a);
	article_free(&a);

	parse_ok(crlfnl, cnlen, &a);
	assert_seed(&a);
	assert_article_equal(&ref, &a);
	article_free(&a);

	parse_ok(bom, blen, &a);
	assert_seed(&a);
	assert_article_equal(&ref, &a);
	article_free(&a);

	article_free(&ref);
	free(bom);
	free(crlfnl);
	free(crlf);
	free(nl);
	free(data);
}

static void
test_bom_small(void **state)
{
	static const char in[] = "\xef\xbb\xbfTitle\n\nBody.\n";
	struct article a;

	(void)state;
	parse_ok(in, sizeof(in) - 1, &a);
	assert_string_equal(a.title, "Title");
	assert_int_equal(a.npara, 1);
	assert_string_equal(a.paras[0], "Body.");
	article_free(&a);
}

static void
test_headers(void **state)
{
	static const char in[] = "Location: Home > News > Science\n"
	                         "Date: 2016-11-08\n"
	                         "Lang: zh-Hans\n"
	                         "Tags: science, cooperation\n"
	                         "Source:   Xinhua  \n"
	                         "Author: LIU Jia\n"
	                         "A title: with a colon\n"
	                         "\n"
	                         "First paragraph.\n"
	                         "\n"
	                         "Second paragraph.\n";
	struct article a;

	(void)state;
	parse_ok(in, sizeof(in) - 1, &a);
	assert_string_equal(a.location, "Home > News > Science");
	assert_string_equal(a.date, "2016-11-08");
	assert_string_equal(a.lang, "zh-Hans");
	assert_string_equal(a.tags, "science, cooperation");
	assert_string_equal(a.source, "Xinhua");
	assert_string_equal(a.author, "LIU Jia");
	assert_string_equal(a.title, "A title: with a colon");
	assert_int_equal(a.npara, 2);
	assert_string_equal(a.paras[0], "First paragraph.");
	assert_string_equal(a.paras[1], "Second paragraph.");
	assert_null(a.editor);
	assert_null(a.copyright);
	article_free(&a);
}

static void
test_bad_dates(void **state)
{
	static const char *const bad[] = {
	    "2016-13-01",
	    "2015-02-29",
	    "yesterday",
	    "2016-00-10",
	    "2016-04-31",
	    "2016-11-08T25:00",
	    "2016-11-08 junk",
	};
	char in[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int n = snprintf(
		    in, sizeof(in), "Date: %s\nTitle\n\nBody.\n", bad[i]);
		parse_fails(in, (size_t)n, "Date");
	}
}

static void
test_good_date(void **state)
{
	static const char in[] = "Date: 2016-11-08T10:00:00Z\nTitle\n\nBody.\n";
	struct article a;

	(void)state;
	parse_ok(in, sizeof(in) - 1, &a);
	assert_non_null(a.date);
	assert_string_equal(a.date, "2016-11-08T10:00:00Z");
	assert_string_equal(a.title, "Title");
	article_free(&a);
}

static void
test_bad_lang(void **state)
{
	static const char in[] = "Lang: e n\nTitle\n\nBody.\n";

	(void)state;
	parse_fails(in, sizeof(in) - 1, "Lang");
}

static void
test_bad_utf8(void **state)
{
	static const char *const bad[] = {
	    "Title\n\nBad \xff byte.\n",
	    "Title\n\nOverlong \xc0\xaf slash.\n",
	    "Title\n\nSurrogate \xed\xa0\x80 here.\n",
	    "Ti\xe4\xb8tle\n\nTruncated sequence.\n",
	    "Title\n\nEnds mid-sequence \xe4\xb8",
	    "Title\n\nBeyond U+10FFFF \xf4\x90\x80\x80.\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		parse_fails(bad[i], strlen(bad[i]), "UTF-8");
}

/*
 * check_bytes reads eight bytes at a time while they are printable: a
 * bad byte or sequence is found at every offset in a long line, against
 * every alignment of the words, and good UTF-8 and TABs pass there too.
 */
static void
test_bytes_at_every_offset(void **state)
{
	static const struct {
		const char *bytes, *why;
	} bad[] = {
	    {"\0", "NUL"},
	    {"\r", "CR"},
	    {"\x01", "control"},
	    {"\x1f", "control"},
	    {"\x7f", "control"},
	    {"\xff", "UTF-8"},
	    {"\x80", "UTF-8"},
	    {"\xc0\xaf", "UTF-8"},
	    {"\xed\xa0\x80", "UTF-8"},
	    {"\xe4\xb8", "UTF-8"},
	};
	static const char *const good[] = {
	    "\t", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x93\xb0", " ", "~"};
	char in[128];
	struct article a;
	const char *why;

	(void)state;
	for (size_t at = 0; at < 40; at++) {
		for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
			size_t bl =
			    bad[k].bytes[0] == '\0' ? 1 : strlen(bad[k].bytes);
			size_t n = (size_t)snprintf(in, sizeof(in),
			    "Title\n\n%.*s", (int)at,
			    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWX"
			    "YZ");

			memcpy(in + n, bad[k].bytes, bl);
			n += bl;
			n += (size_t)snprintf(in + n, sizeof(in) - n,
			    "and the line goes on for a while.\n");
			parse_fails(in, n, bad[k].why);
		}
		for (size_t k = 0; k < sizeof(good) / sizeof(good[0]); k++) {
			int n = snprintf(in, sizeof(in),
			    "Title\n\n%.*s%sand the line goes on for a "
			    "while.\n",
			    (int)at,
			    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWX"
			    "YZ",
			    good[k]);

			assert_int_equal(
			    article_parse(in, (size_t)n, &a, &why), 0);
			article_free(&a);
		}
	}
}

static void
test_control_bytes(void **state)
{
	static const char nul[] = "Title\n\nA NUL \0 here.\n";
	static const char cr[] = "Title\r\rBody.\r";
	static const char cr_mid[] = "Title\n\nA bare\rCR.\n";
	static const char esc[] = "Title\n\nAn \x1b[31m escape.\n";
	static const char del[] = "Title\n\nA DEL \x7f here.\n";

	(void)state;
	parse_fails(nul, sizeof(nul) - 1, "NUL");
	parse_fails(cr, sizeof(cr) - 1, "CR");
	parse_fails(cr_mid, sizeof(cr_mid) - 1, "CR");
	parse_fails(esc, sizeof(esc) - 1, "control");
	parse_fails(del, sizeof(del) - 1, "control");
}

static void
test_no_title(void **state)
{
	static const char *const in[] = {
	    "",
	    "\n\n\n",
	    "   \n\t\n",
	    "Location: Home > News\n",
	    "Location: Home > News\nDate: 2016-11-08\n\n\n",
	    "\xef\xbb\xbf",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
		parse_fails(in[i], strlen(in[i]), "no title");
}

static void
test_duplicate_header(void **state)
{
	static const char in[] =
	    "Location: Home > News\nLocation: Home\nTitle\n\nBody.\n";
	static const char in2[] =
	    "Date: 2016-11-08\nLang: en\nDate: 2016-11-09\nTitle\n\nBody.\n";

	(void)state;
	parse_fails(in, sizeof(in) - 1, "duplicate");
	parse_fails(in2, sizeof(in2) - 1, "duplicate");
}

static void
test_hard_wrap(void **state)
{
	static const char in[] = "Title\n"
	                         "\n"
	                         "A hard-wrapped\n"
	                         "paragraph   \n"
	                         "   over three lines.\n"
	                         "\n"
	                         "\n"
	                         "Second.\n";
	struct article a;

	(void)state;
	parse_ok(in, sizeof(in) - 1, &a);
	assert_int_equal(a.npara, 2);
	assert_string_equal(
	    a.paras[0], "A hard-wrapped paragraph over three lines.");
	assert_string_equal(a.paras[1], "Second.");
	article_free(&a);
}

/*
 * More lines than the parser keeps on its stack: a hard-wrapped paragraph
 * and hundreds of short ones, TABs and CRLF in both, with the trailer and
 * headers around them.
 */
static void
test_many_lines(void **state)
{
	struct article a;
	struct buf b;
	char want[32];
	size_t len;
	char *in;

	(void)state;
	buf_init(&b);
	buf_adds(&b, "Tags: a\tb\r\nTitle\r\n\r\n");
	for (int i = 0; i < 300; i++)
		buf_printf(&b, "%sw%d\r\n", i ? "\t " : "", i);
	for (int i = 0; i < 600; i++)
		buf_printf(&b, "\r\n  p\t%d \r\n", i);
	buf_adds(&b, "\r\n(Editor: E)\r\n\r\nCopyright\tC\r\n");
	in = buf_release(&b, &len);
	assert_non_null(in);
	parse_ok(in, len, &a);
	assert_string_equal(a.tags, "a b");
	assert_string_equal(a.title, "Title");
	assert_string_equal(a.editor, "(Editor: E)");
	assert_string_equal(a.copyright, "Copyright C");
	assert_int_equal(a.npara, 601);
	assert_true(strncmp(a.paras[0], "w0 w1 w2 ", 9) == 0);
	assert_non_null(strstr(a.paras[0], " w299"));
	assert_int_equal(strlen(a.paras[0]), 300 * 3 - 1 + 90 + 200 * 2);
	for (int i = 0; i < 600; i++) {
		snprintf(want, sizeof(want), "  p %d", i);
		assert_string_equal(a.paras[i + 1], want);
	}
	article_free(&a);
	free(in);
}

static void
test_tab_in_title(void **state)
{
	static const char in[] = "A\ttitle\twith tabs\n\nBody\twith a tab.\n";
	struct article a;

	(void)state;
	parse_ok(in, sizeof(in) - 1, &a);
	assert_string_equal(a.title, "A title with tabs");
	assert_null(strchr(a.paras[0], '\t'));
	assert_string_equal(a.paras[0], "Body with a tab.");
	article_free(&a);
}

static void
test_unknown_key_is_title(void **state)
{
	static const char in[] = "Subject: Hello world\n\nBody.\n";
	static const char in2[] = "Location: Home\nDated: not a header\n\nB.\n";
	struct article a;

	(void)state;
	parse_ok(in, sizeof(in) - 1, &a);
	assert_string_equal(a.title, "Subject: Hello world");
	assert_null(a.location);
	assert_null(a.date);
	assert_int_equal(a.npara, 1);
	article_free(&a);

	parse_ok(in2, sizeof(in2) - 1, &a);
	assert_string_equal(a.location, "Home");
	assert_string_equal(a.title, "Dated: not a header");
	assert_null(a.date);
	article_free(&a);
}

static void
test_trailer(void **state)
{
	static const char in[] = "Title\n\nBody.\n\n(Editor: X)\n\n"
	                         "\xc2\xa9 2016 Someone\n\n\n";
	static const char only_editor[] = "Title\n\nBody.\n(Editor: Y)";
	struct article a;

	(void)state;
	parse_ok(in, sizeof(in) - 1, &a);
	assert_int_equal(a.npara, 1);
	assert_string_equal(a.editor, "(Editor: X)");
	assert_string_equal(a.copyright, "\xc2\xa9 2016 Someone");
	article_free(&a);

	parse_ok(only_editor, sizeof(only_editor) - 1, &a);
	assert_int_equal(a.npara, 1);
	assert_string_equal(a.paras[0], "Body.");
	assert_string_equal(a.editor, "(Editor: Y)");
	assert_null(a.copyright);
	article_free(&a);
}

static void
test_title_too_long(void **state)
{
	size_t n = ARTICLE_TITLE_MAX + 1;
	char *in = malloc(n + 16);

	(void)state;
	assert_non_null(in);
	memset(in, 'x', n);
	memcpy(in + n, "\n\nBody.\n", 8);
	parse_fails(in, n + 8, "title");
	free(in);
}

static void
test_too_large(void **state)
{
	size_t n = ARTICLE_MAX_BYTES + 1;
	char *in = malloc(n);

	(void)state;
	assert_non_null(in);
	memset(in, 'a', n);
	in[5] = '\n';
	parse_fails(in, n, "large");
	free(in);
}

static void
test_free_twice_and_reuse(void **state)
{
	static const char in[] = "Location: Home\nFirst\n\nOne.\n";
	static const char in2[] = "Second\n\nTwo.\n\nThree.\n";
	struct article a;
	const char *err = NULL;

	(void)state;
	parse_ok(in, sizeof(in) - 1, &a);
	article_free(&a);
	assert_empty(&a);
	article_free(&a); /* a freed article is empty: freeing is safe */
	assert_empty(&a);
	parse_ok(in2, sizeof(in2) - 1, &a);
	assert_null(a.location);
	assert_string_equal(a.title, "Second");
	assert_int_equal(a.npara, 2);
	article_free(&a);
	/* A failed parse leaves it empty and freeable too. */
	assert_int_equal(article_parse("", 0, &a, &err), -1);
	article_free(&a);
	assert_empty(&a);
}

static void
test_date_valid_table(void **state)
{
	static const struct {
		const char *s;
		int ok;
	} t[] = {
	    {"2016-11-08", 1},
	    {"2000-02-29", 1},
	    {"2016-02-29", 1},
	    {"1900-02-29", 0},
	    {"2015-02-29", 0},
	    {"2016-13-01", 0},
	    {"2016-00-01", 0},
	    {"2016-01-00", 0},
	    {"2016-01-32", 0},
	    {"2016-04-31", 0},
	    {"2016-12-31", 1},
	    {"yesterday", 0},
	    {"", 0},
	    {"2016-1-1", 0},
	    {"2016/11/08", 0},
	    {"16-11-08", 0},
	    {"2016-11-08T10:00", 1},
	    {"2016-11-08T10:00:00", 1},
	    {"2016-11-08T10:00:00Z", 1},
	    {"2016-11-08T10:00:00+08:00", 1},
	    {"2016-11-08T10:00-05:30", 1},
	    {"2016-11-08 10:00", 1},
	    {"2016-11-08T24:00", 0},
	    {"2016-11-08T10:60", 0},
	    {"2016-11-08T10", 0},
	    {"2016-11-08T", 0},
	    {"2016-11-08T10:00:", 0},
	    {"2016-11-08T10:00:00X", 0},
	    {"2016-11-08T10:00:00+0800", 0},
	    {"2016-11-08T10:00:00+24:00", 0},
	    {"2016-11-08Z", 0},
	    {"2016-11-08x", 0},
	    {"abcd-11-08", 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int got = article_date_valid(t[i].s) ? 1 : 0;

		if (got != t[i].ok) {
			print_error(
			    "article_date_valid(\"%s\") = %d\n", t[i].s, got);
			fail();
		}
	}
}

/* Instants, checked against date -u +%s. */
static void
test_date_key(void **state)
{
	static const struct {
		const char *s;
		long long t;
	} t[] = {
	    {"1970-01-01", 0},
	    {"2016-11-08", 1478563200},
	    {"2016-11-08T10:00", 1478599200},
	    {"2016-11-08T10:00Z", 1478599200},
	    {"2016-11-08 10:00:30Z", 1478599230},
	    {"2016-11-08T10:00+08:00", 1478570400},
	    {"2016-11-08T10:00:00-05:30", 1478619000},
	    {"2000-02-29T23:59:59Z", 951868799},
	    {"1969-12-31T23:59:59Z", -1},
	    {"2099-12-31", 4102358400},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_true(article_date_valid(t[i].s));
		if (article_date_key(t[i].s) != t[i].t) {
			print_error(
			    "article_date_key(\"%s\") = %lld, not %lld\n",
			    t[i].s, (long long)article_date_key(t[i].s),
			    t[i].t);
			fail();
		}
	}
}

static void
test_lang_valid_table(void **state)
{
	static const struct {
		const char *s;
		int ok;
	} t[] = {
	    {"en", 1}, {"zh", 1}, {"zh-Hans", 1}, {"en-GB", 1},
	    {"de-CH-1996", 1}, {"i-klingon", 1}, {"", 0}, {"e n", 0},
	    {"en_GB", 0}, {"-en", 0}, {"en\t", 0},
	    {"fran\xc3\xa7"
	     "ais",
	        0},
	    {"en;", 0}, {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 1}, /* 35 */
	    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0},            /* 36 */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int got = article_lang_valid(t[i].s) ? 1 : 0;

		if (got != t[i].ok) {
			print_error(
			    "article_lang_valid(\"%s\") = %d\n", t[i].s, got);
			fail();
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_seed),
	    cmocka_unit_test(test_seed_variants),
	    cmocka_unit_test(test_bom_small),
	    cmocka_unit_test(test_headers),
	    cmocka_unit_test(test_bad_dates),
	    cmocka_unit_test(test_good_date),
	    cmocka_unit_test(test_bad_lang),
	    cmocka_unit_test(test_bad_utf8),
	    cmocka_unit_test(test_bytes_at_every_offset),
	    cmocka_unit_test(test_control_bytes),
	    cmocka_unit_test(test_no_title),
	    cmocka_unit_test(test_duplicate_header),
	    cmocka_unit_test(test_hard_wrap),
	    cmocka_unit_test(test_many_lines),
	    cmocka_unit_test(test_tab_in_title),
	    cmocka_unit_test(test_unknown_key_is_title),
	    cmocka_unit_test(test_trailer),
	    cmocka_unit_test(test_title_too_long),
	    cmocka_unit_test(test_too_large),
	    cmocka_unit_test(test_free_twice_and_reuse),
	    cmocka_unit_test(test_date_valid_table),
	    cmocka_unit_test(test_date_key),
	    cmocka_unit_test(test_lang_valid_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
