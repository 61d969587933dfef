/*
 * url_parse_gemini verdicts (OK, 53 proxy refused, 59 bad request), the
 * decoded and cleaned path, and the path_clean / url_pct_decode helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "url.h"

static const struct url_expect ex = {
    "localhost", "127.0.0.1", 1965, 0, NULL, 0};

struct ucase {
	const char *url;
	enum url_verdict v;
	const char *path; /* expected path when OK */
};

static enum url_verdict
parse_len(
    const char *s, size_t len, const struct url_expect *e, struct gemini_url *u)
{
	const char *why = NULL;
	enum url_verdict v = url_parse_gemini(s, len, e, u, &why);

	if (v != URL_OK) {
		/* *why is set for every refusal. */
		assert_non_null(why);
		assert_true(why[0] != '\0');
	}
	return v;
}

static void
run_cases(const struct ucase *t, size_t n, const struct url_expect *e)
{
	for (size_t i = 0; i < n; i++) {
		struct gemini_url u;
		enum url_verdict v =
		    parse_len(t[i].url, strlen(t[i].url), e, &u);

		if (v != t[i].v) {
			print_error("'%s': verdict %d, want %d\n", t[i].url,
			    (int)v, (int)t[i].v);
			fail();
		}
		if (v == URL_OK && t[i].path != NULL) {
			if (strcmp(u.path, t[i].path) != 0) {
				print_error("'%s': path '%s', want '%s'\n",
				    t[i].url, u.path, t[i].path);
				fail();
			}
			assert_int_equal(u.pathlen, strlen(t[i].path));
		}
	}
}

#define RUN(t, e) run_cases(t, sizeof(t) / sizeof(t[0]), e)

static void
test_ok(void **state)
{
	static const struct ucase t[] = {
	    {"gemini://localhost/", URL_OK, "/"},
	    {"gemini://localhost", URL_OK, "/"},
	    {"gemini://LOCALHOST:1965/news/", URL_OK, "/news/"},
	    {"gemini://LocalHost/news/", URL_OK, "/news/"},
	    {"GEMINI://localhost/", URL_OK, "/"},
	    {"Gemini://localhost/news", URL_OK, "/news"},
	    {"gemini://127.0.0.1/", URL_OK, "/"},
	    {"gemini://127.0.0.1:1965/news/x", URL_OK, "/news/x"},
	    {"gemini://localhost/news/beijing-declaration", URL_OK,
	        "/news/beijing-declaration"},
	    {"gemini://localhost/./news/./", URL_OK, "/news/"},
	};

	(void)state;
	RUN(t, &ex);
}

static void
test_ipv6_literal(void **state)
{
	static const struct url_expect ex6 = {
	    "localhost", "::1", 1965, 0, NULL, 0};
	static const struct ucase t[] = {
	    {"gemini://[::1]/", URL_OK, "/"},
	    {"gemini://[::1]:1965/news/", URL_OK, "/news/"},
	    {"gemini://localhost/", URL_OK, "/"},
	    {"gemini://[::2]/", URL_PROXY, NULL},
	    {"gemini://127.0.0.1/", URL_PROXY, NULL},
	};
	static const struct ucase t4[] = {
	    {"gemini://[::1]/", URL_PROXY, NULL},
	};

	(void)state;
	RUN(t, &ex6);
	RUN(t4, &ex);
}

/* A [host]'s aliases are its names too; other hosts' names are not. */
static void
test_aliases(void **state)
{
	static char *const aliases[] = {"www.a.test", "old.test"};
	static const struct url_expect exa = {
	    "a.test", "127.0.0.1", 1965, 0, aliases, 2};
	static const struct ucase t[] = {
	    {"gemini://a.test/", URL_OK, "/"},
	    {"gemini://WWW.A.test/news/", URL_OK, "/news/"},
	    {"gemini://old.test:1965/", URL_OK, "/"},
	    {"gemini://b.test/", URL_PROXY, NULL},
	    {"gemini://a.test.old.test/", URL_PROXY, NULL},
	    {"gemini://www.a.tes/", URL_PROXY, NULL},
	    {"gemini://localhost/", URL_PROXY, NULL},
	    {"gemini://old.test:1966/", URL_PROXY, NULL},
	};

	(void)state;
	RUN(t, &exa);
}

static void
test_proxy(void **state)
{
	static const struct ucase t[] = {
	    {"gemini://example.org/", URL_PROXY, NULL},
	    {"gemini://localhost:1966/", URL_PROXY, NULL},
	    {"gemini://localhost.example/", URL_PROXY, NULL},
	    {"gemini://127.0.0.2/", URL_PROXY, NULL},
	    {"https://localhost/", URL_PROXY, NULL},
	    {"http://localhost/", URL_PROXY, NULL},
	    {"gopher://localhost/", URL_PROXY, NULL},
	    {"http://x/", URL_PROXY, NULL},
	};

	(void)state;
	RUN(t, &ex);
}

static void
test_bad(void **state)
{
	static const struct ucase t[] = {
	    {"//localhost/", URL_BAD, NULL},
	    {"/news/", URL_BAD, NULL},
	    {"localhost/", URL_BAD, NULL},
	    {"", URL_BAD, NULL},
	    {"junk", URL_BAD, NULL},
	    {"gemini://user@localhost/", URL_BAD, NULL},
	    {"gemini://user:pw@localhost/", URL_BAD, NULL},
	    {"gemini://localhost/#frag", URL_BAD, NULL},
	    {"gemini://localhost/news/#", URL_BAD, NULL},
	    {"gemini://localhost/a b", URL_BAD, NULL},
	    {"gemini://localhost/ ", URL_BAD, NULL},
	    {" gemini://localhost/", URL_BAD, NULL},
	    {"gemini://localhost/\x01", URL_BAD, NULL},
	    {"gemini://localhost/\t", URL_BAD, NULL},
	    {"gemini://localhost/\r", URL_BAD, NULL},
	    {"gemini://localhost/\n", URL_BAD, NULL},
	    {"gemini://localhost/\x7f", URL_BAD, NULL},
	    {"gemini://localhost/\xff", URL_BAD, NULL},
	    {"gemini://localhost/\xc0\xaf", URL_BAD, NULL},
	    {"gemini://localhost/\xed\xa0\x80", URL_BAD, NULL},
	    {"gemini://local\xffhost/", URL_BAD, NULL},
	    {"gemini://localhost/?\xff", URL_BAD, NULL},
	    {"gemini://localhost/?\xc3", URL_BAD, NULL},
	    {"gemini:///", URL_BAD, NULL},
	};

	(void)state;
	RUN(t, &ex);
}

static void
test_nul(void **state)
{
	static const char s[] = "gemini://localhost/a\0b";
	struct gemini_url u;

	(void)state;
	assert_int_equal(parse_len(s, sizeof(s) - 1, &ex, &u), URL_BAD);
	/* The NUL must not hide a valid-looking prefix. */
	assert_int_equal(
	    parse_len("gemini://localhost/\0", 20, &ex, &u), URL_BAD);
}

static char *
url_of_length(size_t total)
{
	static const char prefix[] = "gemini://localhost/";
	char *s = malloc(total + 1);

	assert_non_null(s);
	assert_true(total >= sizeof(prefix) - 1);
	memcpy(s, prefix, sizeof(prefix) - 1);
	memset(s + sizeof(prefix) - 1, 'a', total - (sizeof(prefix) - 1));
	s[total] = '\0';
	return s;
}

static void
test_length_limit(void **state)
{
	struct gemini_url u;
	char *s;

	(void)state;
	s = url_of_length(GEMINI_URL_MAX);
	assert_int_equal(strlen(s), 1024);
	assert_int_equal(parse_len(s, strlen(s), &ex, &u), URL_OK);
	assert_int_equal(u.pathlen, 1024 - strlen("gemini://localhost"));
	assert_int_equal(strlen(u.path), u.pathlen);
	assert_memory_equal(
	    u.path, s + strlen("gemini://localhost"), u.pathlen);
	free(s);

	s = url_of_length(GEMINI_URL_MAX + 1);
	assert_int_equal(parse_len(s, strlen(s), &ex, &u), URL_BAD);
	free(s);
}

static void
test_pct(void **state)
{
	static const struct ucase t[] = {
	    {"gemini://localhost/%6Eews/", URL_OK, "/news/"},
	    {"gemini://localhost/%6eews/", URL_OK, "/news/"},
	    {"gemini://localhost/news/%2e%2e/", URL_OK, "/"},
	    {"gemini://localhost/news/%2E%2E", URL_OK, "/"},
	    {"gemini://localhost/news%2fbeijing", URL_OK, "/news/beijing"},
	    {"gemini://localhost/caf%C3%A9", URL_OK, "/caf\xc3\xa9"},
	    {"gemini://localhost/caf\xc3\xa9", URL_OK, "/caf\xc3\xa9"},
	    {"gemini://localhost/\xe4\xb8\xad/", URL_OK, "/\xe4\xb8\xad/"},
	    {"gemini://localhost/a/b/../c", URL_OK, "/a/c"},
	    {"gemini://localhost/%2e%2e/", URL_BAD, NULL},
	    {"gemini://localhost/%2E%2E", URL_BAD, NULL},
	    {"gemini://localhost/../", URL_BAD, NULL},
	    {"gemini://localhost/..", URL_BAD, NULL},
	    {"gemini://localhost/a/../../", URL_BAD, NULL},
	    {"gemini://localhost/a%2f..%2f..%2fetc", URL_BAD, NULL},
	    {"gemini://localhost/%00", URL_BAD, NULL},
	    {"gemini://localhost/a%00b", URL_BAD, NULL},
	    {"gemini://localhost/%zz", URL_BAD, NULL},
	    {"gemini://localhost/%4", URL_BAD, NULL},
	    {"gemini://localhost/%", URL_BAD, NULL},
	    {"gemini://localhost/%4g", URL_BAD, NULL},
	    {"gemini://localhost/%0a", URL_BAD, NULL},
	    {"gemini://localhost/%09", URL_BAD, NULL},
	    {"gemini://localhost/%7f", URL_BAD, NULL},
	    {"gemini://localhost/%ff", URL_BAD, NULL},
	    {"gemini://localhost/%c0%af", URL_BAD, NULL},
	};

	(void)state;
	RUN(t, &ex);
}

static void
test_query(void **state)
{
	struct gemini_url u;
	const char *s = "gemini://localhost/search?a%20b";

	(void)state;
	assert_int_equal(parse_len(s, strlen(s), &ex, &u), URL_OK);
	assert_string_equal(u.path, "/search");
	assert_true(u.has_query);
	assert_string_equal(u.query, "a%20b");

	s = "gemini://localhost/search?";
	assert_int_equal(parse_len(s, strlen(s), &ex, &u), URL_OK);
	assert_true(u.has_query);
	assert_string_equal(u.query, "");

	s = "gemini://localhost/search";
	assert_int_equal(parse_len(s, strlen(s), &ex, &u), URL_OK);
	assert_false(u.has_query);
	assert_string_equal(u.query, "");
}

static void
test_path_clean(void **state)
{
	static const struct {
		const char *in, *out; /* out NULL: -1 */
	} t[] = {
	    {"/", "/"},
	    {"/a/./b/../c", "/a/c"},
	    {"/a/b/..", "/a/"},
	    {"/a/b/../", "/a/"},
	    {"/a/..", "/"},
	    {"/a/../", "/"},
	    {"/.", "/"},
	    {"/./", "/"},
	    {"/a/.", "/a/"},
	    {"/news/", "/news/"},
	    {"/news", "/news"},
	    {"/a/b/c/../../d", "/a/d"},
	    {"/..", NULL},
	    {"/../", NULL},
	    {"/a/../..", NULL},
	    {"/a/../../b", NULL},
	    {"/./..", NULL},
	    {"", NULL},
	    {"a/b", NULL},
	    {"/...", "/..."},
	    {"/..a", "/..a"},
	    {"/a..", "/a.."},
	};
	char out[64];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		size_t olen = 12345;
		int rv = path_clean(
		    t[i].in, strlen(t[i].in), out, sizeof(out), &olen);

		if (t[i].out == NULL) {
			if (rv != -1) {
				print_error("path_clean('%s') = 0 '%s'\n",
				    t[i].in, out);
				fail();
			}
			continue;
		}
		if (rv != 0) {
			print_error("path_clean('%s') = -1\n", t[i].in);
			fail();
		}
		assert_string_equal(out, t[i].out);
		assert_int_equal(olen, strlen(t[i].out));
	}
}

static void
test_path_clean_size(void **state)
{
	char out[8];
	size_t olen;

	(void)state;
	assert_int_equal(path_clean("/abcde", 6, out, sizeof(out), &olen), 0);
	assert_string_equal(out, "/abcde");
	assert_int_equal(olen, 6);
	assert_int_equal(
	    path_clean("/abcdefg", 8, out, sizeof(out), &olen), -1);
	assert_int_equal(
	    path_clean("/abcdef/", 8, out, sizeof(out), &olen), -1);
	assert_int_equal(
	    path_clean("/abc/defgh/..", 13, out, sizeof(out), &olen), -1);
	assert_int_equal(path_clean("/", 1, out, 1, &olen), -1);
	/* Only len bytes count, not what follows. */
	assert_int_equal(path_clean("/a/../b", 4, out, sizeof(out), &olen), 0);
	assert_string_equal(out, "/a/");
}

/*
 * BUG: url.c path_clean: the room check "o + n + 1 >= outsize" reserves
 * a '/' after the last segment too, so a result of exactly outsize - 1
 * bytes (which fits with its NUL) is refused as not fitting.
 * (Fixed in c5dc36b; kept as a regression test.)
 */
static void
test_path_clean_exact_fit(void **state)
{
	char out[8];
	size_t olen = 0;

	(void)state;
	assert_int_equal(path_clean("/abcdef", 7, out, sizeof(out), &olen), 0);
	assert_string_equal(out, "/abcdef");
	assert_int_equal(olen, 7);
	assert_int_equal(path_clean("/abcde/", 7, out, sizeof(out), &olen), 0);
	assert_string_equal(out, "/abcde/");
}

static void
test_pct_decode(void **state)
{
	static const struct {
		const char *in, *out; /* out NULL: -1 */
	} t[] = {
	    {"", ""},
	    {"abc", "abc"},
	    {"%41", "A"},
	    {"a%41", "aA"},
	    {"%41b", "Ab"},
	    {"%2f", "/"},
	    {"%2F", "/"},
	    {"%20%20", "  "},
	    {"%C3%A9", "\xc3\xa9"},
	    {"100%25", "100%"},
	    {"%", NULL},
	    {"%4", NULL},
	    {"a%", NULL},
	    {"%zz", NULL},
	    {"%g0", NULL},
	    {"%0g", NULL},
	    {"%00", NULL},
	    {"a%00b", NULL},
	};
	char out[64];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		size_t olen = 12345;
		int rv = url_pct_decode(
		    t[i].in, strlen(t[i].in), out, sizeof(out), &olen);

		if (t[i].out == NULL) {
			if (rv != -1) {
				print_error(
				    "url_pct_decode('%s') = 0\n", t[i].in);
				fail();
			}
			continue;
		}
		if (rv != 0) {
			print_error("url_pct_decode('%s') = -1\n", t[i].in);
			fail();
		}
		assert_string_equal(out, t[i].out);
		assert_int_equal(olen, strlen(t[i].out));
	}
	/* The output must fit, with its NUL. */
	assert_int_equal(url_pct_decode("abcd", 4, out, 5, &(size_t){0}), 0);
	assert_int_equal(url_pct_decode("abcd", 4, out, 4, &(size_t){0}), -1);
	assert_int_equal(url_pct_decode("%41%42", 6, out, 3, &(size_t){0}), 0);
	assert_string_equal(out, "AB");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ok),
	    cmocka_unit_test(test_ipv6_literal),
	    cmocka_unit_test(test_proxy),
	    cmocka_unit_test(test_aliases),
	    cmocka_unit_test(test_bad),
	    cmocka_unit_test(test_nul),
	    cmocka_unit_test(test_length_limit),
	    cmocka_unit_test(test_pct),
	    cmocka_unit_test(test_query),
	    cmocka_unit_test(test_path_clean),
	    cmocka_unit_test(test_path_clean_size),
	    cmocka_unit_test(test_path_clean_exact_fit),
	    cmocka_unit_test(test_pct_decode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
