/*
 * archive_load on a temporary tree (good and broken files), the rendered
 * Gemini and Gopher pages, and the two protocol handlers on top.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "article.h"
#include "proto.h"
#include "render.h"
#include "seed.h"
#include "text.h"
#include "util.h"

#define HOST "gopher.example"
#define PORT "7070"
#define SEED_TITLE                                                             \
	"Beijing Declaration: A New Chapter of Science and Technology "        \
	"Cooperation Between China and Belt and Road Countries"
/* 中文标题 */
#define ZH_TITLE "\xe4\xb8\xad\xe6\x96\x87\xe6\xa0\x87\xe9\xa2\x98"

struct fixture {
	char root[64];
	struct archive_opts opts;
	struct snapshot *snap;
	const char *err;
	struct article seed; /* the seed parsed directly, for comparison */
	char *zh_para;
};

static const struct url_expect gex = {
    "localhost", "127.0.0.1", 1965, 0, NULL, 0};
static const struct gopher_ctx gctx = {HOST, 7070, 70};

static int
mkdir_in(const char *root, const char *rel)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	return mkdir(path, 0755);
}

/* 中国科学院与沿线国家的科研机构发表了《北京宣言》。, repeated. */
static char *
make_zh_para(void)
{
	static const char unit[] =
	    "\xe4\xb8\xad\xe5\x9b\xbd\xe7\xa7\x91\xe5\xad\xa6\xe9\x99\xa2"
	    "\xe4\xb8\x8e\xe6\xb2\xbf\xe7\xba\xbf\xe5\x9b\xbd\xe5\xae\xb6"
	    "\xe7\x9a\x84\xe7\xa7\x91\xe7\xa0\x94\xe6\x9c\xba\xe6\x9e\x84"
	    "\xe5\x8f\x91\xe8\xa1\xa8\xe4\xba\x86\xe3\x80\x8a\xe5\x8c\x97"
	    "\xe4\xba\xac\xe5\xae\xa3\xe8\xa8\x80\xe3\x80\x8b\xe3\x80\x82";
	struct buf b;

	buf_init(&b);
	for (int i = 0; i < 8; i++)
		buf_adds(&b, unit);
	return buf_release(&b, NULL);
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct buf b;
	const char *err = NULL;
	char *seed, *cjk, path[512];
	size_t seedlen, cjklen;
	int rv = 0;

	if (f == NULL)
		return -1;
	strcpy(f->root, "/tmp/serai-test-render-XXXXXX");
	if (mkdtemp(f->root) == NULL || (seed = read_seed(&seedlen)) == NULL) {
		free(f);
		return -1;
	}
	if (article_parse(seed, seedlen, &f->seed, &err) != 0 ||
	    (f->zh_para = make_zh_para()) == NULL) {
		free(seed);
		free(f);
		return -1;
	}
	buf_init(&b);
	buf_adds(&b, "Lang: zh\n" ZH_TITLE "\n\n");
	buf_adds(&b, f->zh_para);
	buf_adds(&b, "\n");
	cjk = buf_release(&b, &cjklen);

	rv |= puts_file(f->root, "section.ini",
	    "[section]\ntitle = Home Title\nlang = en\n");
	rv |= mkdir_in(f->root, "news");
	rv |=
	    puts_file(f->root, "news/section.ini", "[section]\ntitle = News\n");
	rv |= mkdir_in(f->root, "news/science");
	rv |= put_file(f->root, "news/beijing-declaration.txt", seed, seedlen);
	rv |= puts_file(f->root, "news/dated-a.txt",
	    "Date: 2020-01-02\nDated A\n\nBody of a.\n");
	rv |= puts_file(f->root, "news/dated-b.txt",
	    "Date: 2021-05-06\nDated B\n\nBody of b.\n");
	rv |= puts_file(
	    f->root, "news/undated-z.txt", "Undated Zulu\n\nBody of z.\n");
	rv |= put_file(f->root, "news/science/cjk.txt", cjk, cjklen);
	/* Broken: each one is skipped with a warning. */
	rv |= puts_file(
	    f->root, "news/bad-utf8.txt", "Bad UTF-8\n\nA \xff byte.\n");
	rv |= puts_file(f->root, "news/notes.md", "# Notes\n");
	rv |= puts_file(f->root, "news/.hidden.txt", "Hidden\n\nBody.\n");
	rv |= puts_file(f->root, "news/bad name.txt", "Bad name\n\nBody.\n");
	snprintf(path, sizeof(path), "%s/news/escape.txt", f->root);
	rv |= symlink("/etc/passwd", path);
	rv |= puts_file(f->root, "news/clash.txt", "Clash\n\nBody.\n");
	rv |= mkdir_in(f->root, "news/clash");
	free(cjk);
	free(seed);
	if (rv != 0) {
		remove_tree(f->root);
		article_free(&f->seed);
		free(f->zh_para);
		free(f);
		return -1;
	}

	f->opts.root = f->root;
	f->opts.title = NULL;
	f->opts.lang = "en";
	f->opts.hostname = HOST;
	f->opts.gopher_port = 7070;
	f->opts.gemini_port = 1965;
	f->opts.wrap = 70;
	f->opts.menu_width = 67;
	f->snap = archive_load(&f->opts, &f->err);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	if (f == NULL)
		return 0;
	snapshot_release(f->snap);
	remove_tree(f->root);
	article_free(&f->seed);
	free(f->zh_para);
	free(f);
	return 0;
}

/* The route to path, for the renderers. */
static struct route
route_to(const struct fixture *f, const char *path)
{
	struct route r;

	assert_non_null(archive_route(f->snap, path, strlen(path), &r));
	return r;
}

static const struct node *
lookup(const struct fixture *f, const char *path)
{
	assert_non_null(f->snap);
	return archive_lookup(f->snap, path, strlen(path));
}

static const struct node *
must_lookup(const struct fixture *f, const char *path)
{
	const struct node *n = lookup(f, path);

	if (n == NULL) {
		print_error("'%s' is not in the archive\n", path);
		fail();
	}
	return n;
}

/* The blob as a NUL-terminated copy, for strstr. */
static char *
blob_str(const struct blob *b)
{
	char *s = malloc(b->len + 1);

	assert_non_null(s);
	memcpy(s, b->p, b->len);
	s[b->len] = '\0';
	/* A blob carries no NUL of its own. */
	assert_int_equal(strlen(s), b->len);
	return s;
}

/* A page as served: pre-rendered for sections, rendered for articles. */
static char *
page(const struct fixture *f, const struct node *n, bool gopher)
{
	struct route r;
	struct buf b;
	char *s;

	if (n->kind == NODE_SECTION)
		return blob_str(gopher ? &n->sec->gopher : &n->sec->gemini);
	r = route_to(f, n->path);
	buf_init(&b);
	if (gopher)
		render_gopher_article(&b, &f->snap->opts, &r, n->art);
	else
		render_gemini_article(&b, &r, n->art, RENDER_LIVE);
	s = buf_release(&b, NULL);
	assert_non_null(s);
	return s;
}

static char *
gemini_page(const struct fixture *f, const struct node *n)
{
	return page(f, n, false);
}

static char *
gopher_page(const struct fixture *f, const struct node *n)
{
	return page(f, n, true);
}

/* The body of a reply, whichever way it was made. */
static char *
reply_str(const struct reply *r)
{
	if (r->body != NULL) {
		assert_int_equal(r->dyn.len, 0);
		return blob_str(r->body);
	}
	assert_non_null(r->dyn.p);
	return strdup(r->dyn.p);
}

static const char *
must_find(const char *hay, const char *needle)
{
	const char *p = strstr(hay, needle);

	if (p == NULL) {
		print_error("'%s' not found in:\n%s\n", needle, hay);
		fail();
	}
	return p;
}

static int
starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Splits a CRLF text into lines; every line must end in CRLF. */
static char **
crlf_lines(const char *s, size_t len, size_t *np)
{
	char **v = NULL;
	size_t n = 0;
	const char *p = s, *end = s + len;

	while (p < end) {
		const char *eol = strstr(p, "\r\n");

		if (eol == NULL || eol > end) {
			print_error("text does not end in CRLF: '%s'\n", p);
			fail();
		}
		if (memchr(p, '\n', (size_t)(eol - p)) != NULL ||
		    memchr(p, '\r', (size_t)(eol - p)) != NULL) {
			print_error(
			    "bare CR or LF in '%.*s'\n", (int)(eol - p), p);
			fail();
		}
		v = realloc(v, (n + 1) * sizeof(*v));
		assert_non_null(v);
		v[n++] = strndup(p, (size_t)(eol - p));
		assert_non_null(v[n - 1]);
		p = eol + 2;
	}
	*np = n;
	return v;
}

static void
free_lines(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Splits s at TABs into at most max fields; returns the count. */
static size_t
tab_fields(char *s, char **fields, size_t max)
{
	size_t n = 0;

	fields[n++] = s;
	for (char *p = s; *p; p++)
		if (*p == '\t') {
			*p = '\0';
			if (n == max)
				return max + 1;
			fields[n++] = p + 1;
		}
	return n;
}

static void
test_load_counts(void **state)
{
	struct fixture *f = *state;

	if (f->snap == NULL)
		print_error("archive_load: %s\n", f->err ? f->err : "?");
	assert_non_null(f->snap);
	/* bad-utf8, notes.md, .hidden.txt, "bad name.txt", escape.txt, clash */
	assert_int_equal(f->snap->nskipped, 6);
	assert_int_equal(f->snap->narticles, 5);
	/* /, /news/, /news/science/, /news/clash/ */
	assert_int_equal(f->snap->nsections, 4);
	assert_string_equal(f->snap->root->title, "Home Title");
}

static void
test_lookup(void **state)
{
	struct fixture *f = *state;
	static const char *const present[] = {
	    "/",
	    "/news/",
	    "/news/science/",
	    "/news/clash/",
	    "/news/beijing-declaration",
	    "/news/dated-a",
	    "/news/dated-b",
	    "/news/undated-z",
	    "/news/science/cjk",
	};
	static const char *const absent[] = {
	    "/news/bad-utf8",
	    "/news/escape",
	    "/news/clash",
	    "/news/notes",
	    "/news/notes.md",
	    "/news/.hidden",
	    "/news/bad name",
	    "/news",
	    "/news/science",
	    "",
	    "/news/beijing-declaration/",
	    "/news/beijing-declaration.txt",
	    "/NEWS/",
	    "/nope",
	};

	assert_non_null(f->snap);
	for (size_t i = 0; i < sizeof(present) / sizeof(present[0]); i++) {
		const struct node *n = must_lookup(f, present[i]);

		assert_string_equal(n->path, present[i]);
		assert_int_equal(n->kind,
		    present[i][strlen(present[i]) - 1] == '/' ? NODE_SECTION
		                                              : NODE_ARTICLE);
	}
	for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++)
		if (lookup(f, absent[i]) != NULL) {
			print_error("'%s' should not be served\n", absent[i]);
			fail();
		}
	/* Only len bytes of the path count. */
	assert_non_null(archive_lookup(f->snap, "/news/xyz", 6));
	assert_null(archive_lookup(f->snap, "/news/xyz", 5));
}

static void
test_tree(void **state)
{
	struct fixture *f = *state;
	const struct node *news = must_lookup(f, "/news/");
	const struct node *sci = must_lookup(f, "/news/science/");
	const struct node *cjk = must_lookup(f, "/news/science/cjk");
	const struct node *seed = must_lookup(f, "/news/beijing-declaration");

	assert_string_equal(news->title, "News");
	assert_string_equal(sci->title, "science");
	assert_string_equal(news->lang, "en");
	/* The way down: the root, then each section. */
	{
		struct route r = route_to(f, "/news/science/cjk");

		assert_int_equal(r.n, 4);
		assert_ptr_equal(r.at[0], f->snap->root);
		assert_ptr_equal(r.at[1], news);
		assert_ptr_equal(r.at[2], sci);
		assert_ptr_equal(r.at[3], cjk);
		assert_string_equal(route_lang(&r), "zh");
		r = route_to(f, "/news/beijing-declaration");
		assert_string_equal(route_lang(&r), "en");
	}
	/* Near misses are not found: no slash, a slash too many, empty. */
	assert_null(lookup(f, "/news"));
	assert_null(lookup(f, "/news/science/cjk/"));
	assert_null(lookup(f, "/news//science/"));
	assert_null(archive_lookup(f->snap, "", 0));
	assert_int_equal(news->sec->narticles, 4);
	assert_int_equal(news->sec->nsections, 2);
	assert_string_equal(cjk->lang, "zh");
	assert_string_equal(cjk->title, ZH_TITLE);
	assert_string_equal(seed->title, SEED_TITLE);
	/* Its section's, not its own: the node does not depend on it. */
	assert_null(seed->lang);
	assert_null(seed->date);
	/* Newest first, undated last by title. */
	assert_string_equal(news->sec->articles[0]->name, "dated-b");
	assert_string_equal(news->sec->articles[1]->name, "dated-a");
	assert_string_equal(
	    news->sec->articles[2]->name, "beijing-declaration");
	assert_string_equal(news->sec->articles[3]->name, "undated-z");
}

static void
test_gemini_section(void **state)
{
	struct fixture *f = *state;
	const struct node *n = must_lookup(f, "/news/");
	char *g = gemini_page(f, n);
	const char *b, *a, *seed, *z;

	assert_true(starts_with(g, "# News\n"));
	b = must_find(g, "=> /news/dated-b 2021-05-06 Dated B\n");
	a = must_find(g, "=> /news/dated-a 2020-01-02 Dated A\n");
	assert_true(b < a);
	seed = must_find(g, "=> /news/beijing-declaration " SEED_TITLE "\n");
	z = must_find(g, "=> /news/undated-z Undated Zulu\n");
	assert_true(a < seed);
	assert_true(seed < z);
	must_find(g, "=> /news/science/ science\n");
	must_find(g, "=> /news/clash/ clash\n");
	must_find(g, "=> / Up: Home\n");
	/* Skipped files are not listed. */
	assert_null(strstr(g, "bad-utf8"));
	assert_null(strstr(g, "escape"));
	assert_null(strstr(g, "=> /news/clash "));
	assert_null(strstr(g, "hidden"));
	assert_null(strstr(g, "notes"));
	/* gemtext: LF line ends only. */
	assert_null(strchr(g, '\r'));
	assert_true(g[strlen(g) - 1] == '\n');
	free(g);

	g = gemini_page(f, f->snap->root);
	assert_true(starts_with(g, "# Home Title\n"));
	must_find(g, "=> /news/ News\n");
	free(g);

	/* The empty section says so. */
	g = gemini_page(f, must_lookup(f, "/news/clash/"));
	assert_true(starts_with(g, "# clash\n"));
	must_find(g, "=> /news/ Up: News\n");
	must_find(g, "empty");
	free(g);
}

static void
test_gemini_article(void **state)
{
	struct fixture *f = *state;
	const struct node *n = must_lookup(f, "/news/beijing-declaration");
	char *g = gemini_page(f, n);
	const char *nl, *p = g;
	char line[256];

	assert_true(starts_with(g, "# " SEED_TITLE "\n"));
	nl = strchr(g, '\n');
	assert_non_null(nl);
	snprintf(line, sizeof(line), "%.*s", (int)(strchr(nl + 1, '\n') - nl),
	    nl + 1);
	assert_string_equal(line, "=> /news/ News\n");
	for (size_t i = 0; i < f->seed.npara; i++) {
		struct buf want;

		buf_init(&want);
		buf_printf(&want, "\n%s\n", f->seed.paras[i]);
		/* Its own line, in order. */
		p = must_find(p, want.p);
		buf_free(&want);
	}
	must_find(g, "\n(Editor: LIU Jia)\n");
	must_find(g,
	    "\nCopyright \xc2\xa9 2002 - 2016 Chinese Academy of Sciences\n");
	assert_null(strchr(g, '\r'));
	free(g);

	n = must_lookup(f, "/news/dated-b");
	g = gemini_page(f, n);
	assert_true(starts_with(g,
	    "# Dated B\n=> /news/ News\n"
	    "2021-05-06\n"));
	must_find(g, "\nBody of b.\n");
	free(g);

	n = must_lookup(f, "/news/science/cjk");
	g = gemini_page(f, n);
	assert_true(starts_with(g,
	    "# " ZH_TITLE "\n"
	    "=> /news/science/ science\n"));
	must_find(g, f->zh_para);
	free(g);
}

/* Checks the shape of a Gopher menu; returns its lines (type 3 refused). */
static char **
check_menu(const struct blob *b, size_t menu_width, size_t *np)
{
	size_t n;
	char **v;

	assert_true(b->len >= 3);
	assert_memory_equal(b->p + b->len - 3, ".\r\n", 3);
	v = crlf_lines(b->p, b->len, &n);
	assert_true(n >= 2);
	assert_string_equal(v[n - 1], ".");
	for (size_t i = 0; i + 1 < n; i++) {
		char *copy = strdup(v[i]), *fld[5];
		size_t nf;

		assert_non_null(copy);
		assert_true(strlen(copy) >= 1);
		assert_true(copy[0] != '3');
		assert_true(copy[0] != '.');
		if (copy[0] == 'i') {
			size_t len = strlen(copy);
			const char *tail = "\t\tnull.host\t1";

			assert_true(len >= strlen(tail) + 1);
			assert_string_equal(copy + len - strlen(tail), tail);
			nf = tab_fields(copy, fld, 4);
			assert_int_equal(nf, 4);
		} else {
			nf = tab_fields(copy, fld, 4);
			if (nf != 4) {
				print_error("menu line has %zu fields: '%s'\n",
				    nf, v[i]);
				fail();
			}
			assert_string_equal(fld[2], HOST);
			assert_string_equal(fld[3], PORT);
			assert_true(fld[1][0] == '/');
		}
		assert_true(utf8_valid(fld[0] + 1, strlen(fld[0] + 1)));
		assert_true(
		    text_width(fld[0] + 1, strlen(fld[0] + 1)) <= menu_width);
		free(copy);
	}
	*np = n;
	return v;
}

/* The menu line of type t and selector sel; NULL when absent. */
static const char *
menu_item(char **v, size_t n, char t, const char *sel)
{
	for (size_t i = 0; i < n; i++) {
		const char *tab = strchr(v[i], '\t');
		size_t sl = strlen(sel);

		if (v[i][0] == t && tab != NULL &&
		    strncmp(tab + 1, sel, sl) == 0 && tab[1 + sl] == '\t')
			return v[i];
	}
	return NULL;
}

static void
test_gopher_section(void **state)
{
	struct fixture *f = *state;
	const struct node *n = must_lookup(f, "/news/");
	size_t nl;
	char **v = check_menu(&n->sec->gopher, 67, &nl);
	const char *b, *a;

	assert_string_equal(v[0], "iNews\t\tnull.host\t1");
	b = menu_item(v, nl, '0', "/news/dated-b");
	a = menu_item(v, nl, '0', "/news/dated-a");
	assert_non_null(b);
	assert_non_null(a);
	assert_true(starts_with(b, "02021-05-06 Dated B\t"));
	assert_non_null(menu_item(v, nl, '0', "/news/beijing-declaration"));
	assert_non_null(menu_item(v, nl, '0', "/news/undated-z"));
	assert_non_null(menu_item(v, nl, '1', "/news/science/"));
	assert_non_null(menu_item(v, nl, '1', "/news/clash/"));
	assert_non_null(menu_item(v, nl, '1', "/"));
	assert_null(menu_item(v, nl, '0', "/news/clash"));
	assert_null(menu_item(v, nl, '0', "/news/bad-utf8"));
	/*
	 * The long title is shortened to the menu width with ASCII "...":
	 * old clients (the UMN one on ncurses) show "…" as "~@".
	 */
	{
		const char *s =
		    menu_item(v, nl, '0', "/news/beijing-declaration");
		const char *tab = strchr(s, '\t');

		assert_true(text_width(s + 1, (size_t)(tab - s - 1)) <= 67);
		assert_memory_equal(tab - 3, "...", 3);
		assert_null(memmem(s, (size_t)(tab - s), "\xe2\x80\xa6", 3));
		assert_true(starts_with(s + 1, "Beijing Declaration:"));
	}
	/* Articles are '0' with "/news/<slug>", sections '1' ending '/'. */
	for (size_t i = 0; i + 1 < nl; i++) {
		char *copy = strdup(v[i]), *fld[5];

		assert_non_null(copy);
		if (copy[0] != 'i') {
			assert_int_equal(tab_fields(copy, fld, 4), 4);
			if (copy[0] == '0' &&
			    strcmp(fld[1], "/news/" FEED_NAME) == 0)
				assert_string_equal(
				    fld[0], "0Atom feed (gemini links)");
			else if (copy[0] == '7')
				assert_string_equal(fld[1], "/search");
			else if (copy[0] == '0') {
				assert_true(starts_with(fld[1], "/news/"));
				assert_true(fld[1][strlen(fld[1]) - 1] != '/');
				assert_non_null(lookup(f, fld[1]));
				assert_int_equal(
				    lookup(f, fld[1])->kind, NODE_ARTICLE);
			} else {
				assert_int_equal(copy[0], '1');
				assert_true(fld[1][strlen(fld[1]) - 1] == '/');
				assert_non_null(lookup(f, fld[1]));
				assert_int_equal(
				    lookup(f, fld[1])->kind, NODE_SECTION);
			}
		}
		free(copy);
	}
	free_lines(v, nl);

	/* Home and the other sections have the same shape. */
	v = check_menu(&f->snap->root->sec->gopher, 67, &nl);
	assert_non_null(menu_item(v, nl, '1', "/news/"));
	free_lines(v, nl);
	v = check_menu(&must_lookup(f, "/news/science/")->sec->gopher, 67, &nl);
	assert_non_null(menu_item(v, nl, '0', "/news/science/cjk"));
	assert_non_null(menu_item(v, nl, '1', "/news/"));
	free_lines(v, nl);
	v = check_menu(&must_lookup(f, "/news/clash/")->sec->gopher, 67, &nl);
	free_lines(v, nl);
}

/* Words of s (split at spaces, CR, LF), as a NULL-terminated vector. */
static char **
split_words(const char *s, size_t *np)
{
	char **v = NULL;
	size_t n = 0;

	while (*s) {
		size_t k = strcspn(s, " \r\n");

		if (k > 0) {
			v = realloc(v, (n + 2) * sizeof(*v));
			assert_non_null(v);
			v[n++] = strndup(s, k);
			s += k;
		} else
			s++;
	}
	if (v != NULL)
		v[n] = NULL;
	*np = n;
	return v;
}

static void
check_gopher_text(const struct blob *b, size_t width)
{
	size_t n;
	char **v;

	assert_true(b->len >= 2);
	assert_memory_equal(b->p + b->len - 2, "\r\n", 2);
	/* No menu terminator: the text ends when the connection closes. */
	assert_false(b->len == 3 && memcmp(b->p, ".\r\n", 3) == 0);
	assert_false(
	    b->len >= 5 && memcmp(b->p + b->len - 5, "\r\n.\r\n", 5) == 0);
	v = crlf_lines(b->p, b->len, &n);
	for (size_t i = 0; i < n; i++) {
		if (!utf8_valid(v[i], strlen(v[i])) ||
		    text_width(v[i], strlen(v[i])) > width || v[i][0] == '.') {
			print_error("bad text line %zu: '%s'\n", i, v[i]);
			fail();
		}
	}
	free_lines(v, n);
}

static void
test_gopher_article(void **state)
{
	struct fixture *f = *state;
	const struct node *n = must_lookup(f, "/news/beijing-declaration");
	char *text = gopher_page(f, n), **tw;
	size_t ntw, pos = 0;

	check_gopher_text(&(struct blob){text, strlen(text)}, 70);
	/* Every word of every paragraph, in order and contiguous. */
	tw = split_words(text, &ntw);
	for (size_t i = 0; i < f->seed.npara; i++) {
		size_t npw, k;
		char **pw = split_words(f->seed.paras[i], &npw);

		assert_true(npw > 0);
		for (; pos < ntw; pos++) {
			for (k = 0; k < npw && pos + k < ntw; k++)
				if (strcmp(tw[pos + k], pw[k]) != 0)
					break;
			if (k == npw)
				break;
		}
		if (pos >= ntw) {
			print_error("paragraph %zu not found in order\n", i);
			fail();
		}
		pos += npw;
		for (k = 0; k < npw; k++)
			free(pw[k]);
		free(pw);
	}
	for (size_t i = 0; i < ntw; i++)
		free(tw[i]);
	free(tw);
	must_find(text, "(Editor: LIU Jia)\r\n");
	must_find(text, "Home > News\r\n");
	assert_true(starts_with(text, "Beijing Declaration:"));
	free(text);

	/* The CJK article: wide lines still fit 70 columns. */
	n = must_lookup(f, "/news/science/cjk");
	text = gopher_page(f, n);
	check_gopher_text(&(struct blob){text, strlen(text)}, 70);
	assert_true(starts_with(text, ZH_TITLE "\r\n"));
	free(text);

	n = must_lookup(f, "/news/dated-a");
	text = gopher_page(f, n);
	check_gopher_text(&(struct blob){text, strlen(text)}, 70);
	assert_string_equal(text,
	    "Dated A\r\nHome > News\r\n2020-01-02\r\n"
	    "\r\nBody of a.\r\n");
	free(text);
}

static void
test_gemini_respond(void **state)
{
	struct fixture *f = *state;
	const struct node *n = must_lookup(f, "/news/beijing-declaration");
	struct reply r;
	const char *s;
	char *g;

	reply_init(&r);
	s = "gemini://localhost/news/beijing-declaration";
	gemini_respond(&gex, f->snap, s, strlen(s), &r);
	assert_int_equal(r.status, 20);
	assert_string_equal(r.meta, "text/gemini; charset=utf-8; lang=en");
	/* Articles are rendered per request, sections borrowed. */
	assert_null(r.body);
	g = gemini_page(f, n);
	assert_string_equal(r.dyn.p, g);
	free(g);
	reply_free(&r);

	reply_init(&r);
	s = "gemini://localhost/news/science/cjk";
	gemini_respond(&gex, f->snap, s, strlen(s), &r);
	assert_int_equal(r.status, 20);
	assert_string_equal(r.meta, "text/gemini; charset=utf-8; lang=zh");
	g = gemini_page(f, must_lookup(f, "/news/science/cjk"));
	assert_string_equal(r.dyn.p, g);
	free(g);
	reply_free(&r);

	reply_init(&r);
	s = "gemini://localhost";
	gemini_respond(&gex, f->snap, s, strlen(s), &r);
	assert_int_equal(r.status, 20);
	assert_ptr_equal(r.body, &f->snap->root->sec->gemini);
	reply_free(&r);

	reply_init(&r);
	s = "gemini://localhost/news/";
	gemini_respond(&gex, f->snap, s, strlen(s), &r);
	assert_int_equal(r.status, 20);
	assert_ptr_equal(r.body, &must_lookup(f, "/news/")->sec->gemini);
	reply_free(&r);

	reply_init(&r);
	s = "gemini://localhost/news";
	gemini_respond(&gex, f->snap, s, strlen(s), &r);
	assert_int_equal(r.status, 31);
	assert_string_equal(r.meta, "/news/");
	assert_null(r.body);
	reply_free(&r);

	/* The section wins over the skipped article of the same name. */
	reply_init(&r);
	s = "gemini://localhost/news/clash";
	gemini_respond(&gex, f->snap, s, strlen(s), &r);
	assert_int_equal(r.status, 31);
	assert_string_equal(r.meta, "/news/clash/");
	reply_free(&r);

	reply_init(&r);
	s = "gemini://localhost/news/science";
	gemini_respond(&gex, f->snap, s, strlen(s), &r);
	assert_int_equal(r.status, 31);
	assert_string_equal(r.meta, "/news/science/");
	reply_free(&r);

	static const char *const notfound[] = {
	    "gemini://localhost/nope",
	    "gemini://localhost/nope/",
	    "gemini://localhost/news/beijing-declaration/",
	    "gemini://localhost/news/bad-utf8",
	    "gemini://localhost/news/escape",
	};
	for (size_t i = 0; i < sizeof(notfound) / sizeof(notfound[0]); i++) {
		reply_init(&r);
		gemini_respond(
		    &gex, f->snap, notfound[i], strlen(notfound[i]), &r);
		if (r.status != 51) {
			print_error("%s: %d\n", notfound[i], r.status);
			fail();
		}
		assert_null(r.body);
		assert_int_equal(r.dyn.len, 0);
		reply_free(&r);
	}

	reply_init(&r);
	s = "gemini://localhost/robots.txt";
	gemini_respond(&gex, f->snap, s, strlen(s), &r);
	assert_int_equal(r.status, 20);
	assert_true(starts_with(r.meta, "text/plain"));
	assert_non_null(r.body);
	assert_true(r.body->len > 0);
	reply_free(&r);

	reply_init(&r);
	s = "http://x/";
	gemini_respond(&gex, f->snap, s, strlen(s), &r);
	assert_int_equal(r.status, 53);
	assert_null(r.body);
	assert_true(r.meta[0] != '\0');
	reply_free(&r);

	reply_init(&r);
	s = "junk";
	gemini_respond(&gex, f->snap, s, strlen(s), &r);
	assert_int_equal(r.status, 59);
	assert_null(r.body);
	assert_true(r.meta[0] != '\0');
	reply_free(&r);

	reply_init(&r);
	s = "gemini://localhost/../etc/passwd";
	gemini_respond(&gex, f->snap, s, strlen(s), &r);
	assert_int_equal(r.status, 59);
	assert_null(r.body);
	reply_free(&r);
}

/* A '3' reply: one type-3 line and the terminator, nothing else. */
static void
check_error_menu(const struct reply *r)
{
	char **v, *fld[5];
	size_t n;

	assert_int_equal(r->status, '3');
	assert_null(r->body);
	v = crlf_lines(r->dyn.p, r->dyn.len, &n);
	assert_int_equal(n, 2);
	assert_string_equal(v[1], ".");
	assert_true(v[0][0] == '3');
	assert_int_equal(tab_fields(v[0], fld, 4), 4);
	assert_string_equal(fld[1], "");
	assert_string_equal(fld[2], HOST);
	assert_string_equal(fld[3], PORT);
	free_lines(v, n);
}

static void
gopher(const struct fixture *f, const char *line, size_t len, struct reply *r)
{
	reply_init(r);
	gopher_respond(&gctx, f->snap, line, len, r);
}

static void
test_gopher_respond(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *sel, *path;
		int status;
	} ok[] = {
	    {"", "/", '1'},
	    {"/", "/", '1'},
	    {"/news", "/news/", '1'},
	    {"/news/", "/news/", '1'},
	    {"news/", "/news/", '1'},
	    {"/news/science", "/news/science/", '1'},
	    {"/news/beijing-declaration", "/news/beijing-declaration", '0'},
	    {"/news/beijing-declaration\tsearch terms",
	        "/news/beijing-declaration", '0'},
	    {"/news/science/cjk", "/news/science/cjk", '0'},
	    {"/news/clash", "/news/clash/", '1'},
	    {"/news/./science/../", "/news/", '1'},
	};
	static const char *const bad[] = {
	    "/nope",
	    "/nope/",
	    "/../etc/passwd",
	    "/news/../../etc/passwd",
	    "/news/escape",
	    "/news/bad-utf8",
	    "/news/.hidden",
	};
	const struct node *n;
	struct reply r;
	char *got, *want;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		gopher(f, ok[i].sel, strlen(ok[i].sel), &r);
		if (r.status != ok[i].status) {
			print_error("'%s': status %d\n", ok[i].sel, r.status);
			fail();
		}
		n = must_lookup(f, ok[i].path);
		got = reply_str(&r);
		want = gopher_page(f, n);
		assert_string_equal(got, want);
		if (n->kind == NODE_SECTION)
			assert_ptr_equal(r.body, &n->sec->gopher);
		free(got);
		free(want);
		reply_free(&r);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		gopher(f, bad[i], strlen(bad[i]), &r);
		check_error_menu(&r);
		reply_free(&r);
	}
	/* A NUL in the selector. */
	gopher(f, "/news/\0x", 8, &r);
	check_error_menu(&r);
	reply_free(&r);
	/* A 300-byte selector, and hostile bytes echoed into the error. */
	{
		char sel[301];

		memset(sel, 'a', 300);
		sel[0] = '/';
		sel[300] = '\0';
		gopher(f, sel, 300, &r);
		check_error_menu(&r);
		reply_free(&r);

		gopher(f, "/no\rpe\n", 7, &r);
		check_error_menu(&r);
		reply_free(&r);
	}
}

/* Gopher+ markers after a TAB: the reply is built, not borrowed. */
static void
test_gopher_plus(void **state)
{
	struct fixture *f = *state;
	struct reply r;
	const char *s;
	char *want;

	s = "/news/\t$";
	gopher(f, s, strlen(s), &r);
	assert_int_equal(r.status, '1');
	assert_null(r.body);
	assert_true(r.dyn.len > 8);
	assert_memory_equal(r.dyn.p, "+-1\r\n", 5);
	assert_memory_equal(r.dyn.p + r.dyn.len - 3, ".\r\n", 3);
	assert_non_null(strstr(r.dyn.p, "+INFO: 0"));
	reply_free(&r);

	s = "/news/beijing-declaration\t+";
	gopher(f, s, strlen(s), &r);
	assert_int_equal(r.status, '0');
	assert_memory_equal(r.dyn.p, "+-2\r\n", 5);
	want = gopher_page(f, must_lookup(f, "/news/beijing-declaration"));
	assert_int_equal(r.dyn.len, 5 + strlen(want));
	assert_string_equal(r.dyn.p + 5, want);
	free(want);
	reply_free(&r);

	s = "/nope\t+";
	gopher(f, s, strlen(s), &r);
	assert_int_equal(r.status, '3');
	assert_memory_equal(r.dyn.p, "--1\r\n", 5);
	reply_free(&r);

	s = "/caps.txt";
	gopher(f, s, strlen(s), &r);
	assert_int_equal(r.status, '0');
	assert_non_null(strstr(r.dyn.p, "ServerTextWidth=70\r\n"));
	assert_non_null(strstr(r.dyn.p, "ServerHost=" HOST "\r\n"));
	assert_non_null(strstr(r.dyn.p, "ServerPort=" PORT "\r\n"));
	reply_free(&r);
}

/* The renderers alone, on hand-built nodes: markup and dots escaped. */
static void
test_render_escapes(void **state)
{
	static char *paras[] = {"=> not a link", "# not a heading",
	    "* not a list", "> not a quote", "```", "*bold* is fine",
	    ".dot para", ".", "plain"};
	struct node root = {.kind = NODE_SECTION,
	    .path = "/",
	    .name = "",
	    .title = "Home Title",
	    .lang = "en"};
	struct section secs = {.description =
	                           ". A description that starts with a dot "
	                           "and is long enough to be wrapped over "
	                           "several info lines of the menu, with a "
	                           "tail."};
	struct node sec = {.kind = NODE_SECTION,
	    .path = "/news/",
	    .name = "news",
	    .title = "News",
	    .lang = "en",
	    .sec = &secs};
	struct node art = {.kind = NODE_ARTICLE,
	    .path = "/news/x",
	    .name = "x",
	    .title = "T",
	    .date = "2016-11-08T10:00:00Z",
	    .lang = "en"};
	struct node *arts[] = {&art};
	struct route ra = {{&root, &sec, &art}, 3}, rs = {{&root, &sec}, 2};
	struct article a = {.title = "T",
	    .paras = paras,
	    .npara = sizeof(paras) / sizeof(paras[0]),
	    .copyright = "Copyright me"};
	struct archive_opts o = {"/", NULL, "en", HOST, 7070, 1965, 70, 67,
	    ARCHIVE_INDEX_NOW, NULL, false, NULL, NULL};
	struct buf b;
	struct blob bl;
	char **v;
	size_t n;

	(void)state;
	secs.articles = arts;
	secs.narticles = 1;

	buf_init(&b);
	render_gemini_article(&b, &ra, &a, RENDER_LIVE);
	assert_false(buf_failed(&b));
	assert_string_equal(b.p,
	    "# T\n=> /news/ News\n2016-11-08\n"
	    "\n => not a link\n"
	    "\n # not a heading\n"
	    "\n * not a list\n"
	    "\n > not a quote\n"
	    "\n ```\n"
	    "\n*bold* is fine\n"
	    "\n.dot para\n"
	    "\n.\n"
	    "\nplain\n"
	    "\nCopyright me\n"
	    "\n=> / Home\n=> /news/ News\n");
	buf_free(&b);

	buf_init(&b);
	render_gopher_article(&b, &o, &ra, &a);
	bl.p = b.p;
	bl.len = b.len;
	check_gopher_text(&bl, 70);
	must_find(b.p, "\r\n .dot para\r\n");
	must_find(b.p, "\r\n .\r\n");
	must_find(b.p, "T\r\nHome > News\r\n2016-11-08\r\n\r\n");
	buf_free(&b);

	buf_init(&b);
	render_gopher_section(&b, &o, &rs, RENDER_LIVE);
	bl.p = b.p;
	bl.len = b.len;
	v = check_menu(&bl, 67, &n);
	assert_string_equal(v[0], "iNews\t\tnull.host\t1");
	/* The description: info lines, the first one dot-stuffed. */
	assert_true(starts_with(v[2], "i . A description"));
	assert_non_null(menu_item(v, n, '0', "/news/x"));
	assert_true(
	    starts_with(menu_item(v, n, '0', "/news/x"), "02016-11-08 T\t"));
	assert_non_null(menu_item(v, n, '1', "/"));
	free_lines(v, n);
	buf_free(&b);

	buf_init(&b);
	render_gemini_section(&b, &rs, RENDER_LIVE);
	must_find(b.p, "\n\n. A description");
	must_find(b.p, "=> /news/x 2016-11-08 T\n");
	buf_free(&b);
}

/*
 * The export's renderings (serai --export): links name the files of the
 * tree, relative to the page; Gophernicus maps leave out host and port.
 */
static void
test_render_export(void **state)
{
	static char *paras[] = {"=> not a link", "plain"};
	struct section roots = {0},
	               newss = {.description =
	                            "=runs a command in a gophermap"},
	               scis = {0};
	struct node root = {.kind = NODE_SECTION,
	    .path = "/",
	    .name = "",
	    .title = "Home",
	    .lang = "en",
	    .sec = &roots};
	struct node news = {.kind = NODE_SECTION,
	    .path = "/news/",
	    .name = "news",
	    .title = "News",
	    .lang = "en",
	    .sec = &newss};
	struct node sci = {.kind = NODE_SECTION,
	    .path = "/news/science/",
	    .name = "science",
	    .title = "#Science",
	    .lang = "en",
	    .sec = &scis};
	struct node x = {.kind = NODE_ARTICLE,
	    .path = "/news/x",
	    .name = "x",
	    .title = "X",
	    .date = "2016-11-08T10:00:00Z",
	    .lang = "en"};
	struct node y = {.kind = NODE_ARTICLE,
	    .path = "/news/science/y",
	    .name = "y",
	    .title = "Y",
	    .lang = "en"};
	struct node *rsecs[] = {&news}, *nsecs[] = {&sci}, *narts[] = {&x},
	            *sarts[] = {&y};
	struct route rr = {{&root}, 1}, rn = {{&root, &news}, 2},
	             rsc = {{&root, &news, &sci}, 3},
	             rx = {{&root, &news, &x}, 3};
	struct article a = {.title = "X",
	    .paras = paras,
	    .npara = sizeof(paras) / sizeof(paras[0]),
	    .editor = "(Editor: me)"};
	struct archive_opts o = {"/", NULL, "en", HOST, 7070, 1965, 70, 67,
	    ARCHIVE_INDEX_NOW, NULL, false, NULL, NULL};
	struct buf b;

	(void)state;
	roots.sections = rsecs;
	roots.nsections = 1;
	newss.sections = nsecs;
	newss.nsections = 1;
	newss.articles = narts;
	newss.narticles = 1;
	scis.articles = sarts;
	scis.narticles = 1;

	buf_init(&b);
	render_gemini_section(&b, &rr, RENDER_EXPORT);
	assert_false(buf_failed(&b));
	assert_string_equal(b.p,
	    "# Home\n\n=> feed.xml Atom feed\n"
	    "\n## Sections\n\n=> news/ News\n"
	    "\n## Newest\n\n=> news/x.gmi 2016-11-08 X\n");
	b.len = 0;
	render_gemini_section(&b, &rn, RENDER_EXPORT);
	assert_false(buf_failed(&b));
	assert_string_equal(b.p,
	    "# News\n\n=runs a command in a gophermap\n"
	    "\n=> ../ Up: Home\n"
	    "\n=> feed.xml Atom feed\n"
	    "\n## Sections\n\n=> science/ #Science\n"
	    "\n## Articles\n\n=> x.gmi 2016-11-08 X\n");
	b.len = 0;
	render_gemini_section(&b, &rsc, RENDER_EXPORT);
	assert_false(buf_failed(&b));
	assert_string_equal(b.p,
	    "# #Science\n\n=> ../ Up: News\n"
	    "\n=> feed.xml Atom feed\n"
	    "\n## Articles\n\n=> y.gmi Y\n");
	b.len = 0;
	render_gemini_article(&b, &rx, &a, RENDER_EXPORT);
	assert_false(buf_failed(&b));
	assert_string_equal(b.p,
	    "# X\n=> ./ News\n2016-11-08\n"
	    "\n => not a link\n\nplain\n\n(Editor: me)\n"
	    "\n=> ../ Home\n=> ./ News\n");
	/* The live page of the same article, for contrast. */
	b.len = 0;
	render_gemini_article(&b, &rx, &a, RENDER_LIVE);
	must_find(b.p, "# X\n=> /news/ News\n");

	/*
	 * Info lines keep their TABs (a title starting with '=' or '#' is a
	 * Gophernicus directive otherwise); Gophernicus refuses "..", so the
	 * way up is absolute.
	 */
	b.len = 0;
	render_gopher_section(&b, &o, &rn, RENDER_EXPORT);
	assert_false(buf_failed(&b));
	assert_string_equal(b.p,
	    "iNews\t\tnull.host\t1\n"
	    "i\t\tnull.host\t1\n"
	    "i=runs a command in a gophermap\t\tnull.host\t1\n"
	    "i\t\tnull.host\t1\n"
	    "iSections\t\tnull.host\t1\n"
	    "1#Science\tscience/\n"
	    "i\t\tnull.host\t1\n"
	    "iArticles\t\tnull.host\t1\n"
	    "02016-11-08 X\tx.txt\n"
	    "i\t\tnull.host\t1\n"
	    "0Atom feed (gemini links)\tfeed.xml\n"
	    "i\t\tnull.host\t1\n"
	    "1Up: Home\t/\n");
	b.len = 0;
	render_gopher_section(&b, &o, &rsc, RENDER_EXPORT);
	assert_false(buf_failed(&b));
	assert_string_equal(b.p,
	    "i#Science\t\tnull.host\t1\n"
	    "i\t\tnull.host\t1\n"
	    "iArticles\t\tnull.host\t1\n"
	    "0Y\ty.txt\n"
	    "i\t\tnull.host\t1\n"
	    "0Atom feed (gemini links)\tfeed.xml\n"
	    "i\t\tnull.host\t1\n"
	    "1Up: News\t/news/\n");
	buf_free(&b);
}

static size_t
count_of(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

/* Well-formed enough: every '&' an entity, tags balanced, CRLF lines. */
static void
check_xml(const char *x)
{
	static const char *const ents[] = {
	    "&amp;", "&lt;", "&gt;", "&quot;", "&apos;", NULL};
	static const char *const tags[] = {"feed", "entry", "title", "id",
	    "updated", "author", "name", "generator", NULL};
	char open[32], close[32];

	assert_true(starts_with(x,
	    "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
	    "\r\n<feed xmlns=\"http://www.w3.org/2005/"
	    "Atom\" xml:lang=\""));
	assert_true(strlen(x) > 9);
	assert_string_equal(x + strlen(x) - 9, "</feed>\r\n");
	for (const char *p = strchr(x, '&'); p != NULL;
	     p = strchr(p + 1, '&')) {
		const char *const *e;

		for (e = ents; *e != NULL && !starts_with(p, *e); e++)
			;
		if (*e == NULL) {
			print_error("bare '&' at '%.20s'\n", p);
			fail();
		}
	}
	for (const char *const *t = tags; *t != NULL; t++) {
		snprintf(open, sizeof(open), "<%s", *t);
		snprintf(close, sizeof(close), "</%s>", *t);
		/* "<id" would also match "<id..." of nothing else here. */
		assert_int_equal(count_of(x, open), count_of(x, close));
	}
	for (const char *p = x; *p != '\0'; p++) {
		assert_true(*p != '\n' || (p > x && p[-1] == '\r'));
		assert_true(
		    (unsigned char)*p >= 0x20 || *p == '\r' || *p == '\n');
	}
}

static void
test_atom_feed(void **state)
{
	struct fixture *f = *state;
	char root[64] = "/tmp/serai-test-feed-XXXXXX", rel[64], text[256];
	struct archive_opts o = {root, NULL, "en", "feeds.example", 7070, 1966,
	    70, 67, ARCHIVE_INDEX_NOW, NULL, false, NULL, NULL};
	struct snapshot *s1, *s2;
	const struct node *a, *n;
	const char *err = NULL, *prev;
	char *x, *y;
	int rv = 0;

	assert_non_null(mkdtemp(root));
	rv |= mkdir_in(root, "a");
	rv |= mkdir_in(root, "a/b");
	/* 60 dated stories, each a day apart, with XML's special bytes. */
	for (int i = 0; i < 60; i++) {
		snprintf(rel, sizeof(rel), "a/n%02d.txt", i);
		snprintf(text, sizeof(text),
		    "Date: 2001-%02d-%02d\nStory %02d & <b> \"q\" 'a'\n\n"
		    "Body.\n",
		    1 + i / 28, 1 + i % 28, i);
		rv |= puts_file(root, rel, text);
	}
	rv |= puts_file(root, "a/undated.txt", "Undated & old\n\nBody.\n");
	rv |= puts_file(root, "a/b/late.txt",
	    "Date: 2002-01-01T10:30Z\nLate <one>\n\nBody.\n");
	rv |= puts_file(root, "a/b/timed.txt",
	    "Date: 2001-06-01T08:00:00+02:00\nTimed\n\nBody.\n");
	assert_int_equal(rv, 0);
	s1 = archive_load(&o, &err);
	s2 = archive_load(&o, &err);
	remove_tree(root);
	assert_non_null(s1);
	assert_non_null(s2);

	a = archive_lookup(s1, "/a/", 3);
	assert_non_null(a);
	x = blob_str(&a->sec->feed);
	check_xml(x);
	/* The cap, nested sections included, undated left out. */
	assert_int_equal(count_of(x, "<entry>"), 50);
	assert_null(strstr(x, "Undated"));
	must_find(x, "  <title>a</title>\r\n");
	must_find(x,
	    "<link rel=\"self\" type=\"application/atom+xml\" "
	    "href=\"gemini://feeds.example:1966/a/feed.xml\"/>");
	must_find(x, "<id>gemini://feeds.example:1966/a/feed.xml</id>");
	must_find(x,
	    "<title>Story 59 &amp; &lt;b&gt; &quot;q&quot; "
	    "&apos;a&apos;</title>");
	must_find(x, "<title>Late &lt;one&gt;</title>");
	/* The feed's updated is its newest entry's, a time made RFC 3339. */
	assert_ptr_equal(strstr(x, "<updated>"),
	    strstr(x, "<updated>2002-01-01T10:30:00Z</updated>"));
	must_find(x, "<updated>2001-06-01T08:00:00+02:00</updated>");
	must_find(x, "<updated>2001-01-13T00:00:00Z</updated>");
	/* Newest first: late, timed, n59 ... n12; n11 and older cut. */
	prev = must_find(x, "<id>gemini://feeds.example:1966/a/b/late</id>");
	prev =
	    must_find(prev, "<id>gemini://feeds.example:1966/a/b/timed</id>");
	for (int i = 59; i >= 12; i--) {
		snprintf(text, sizeof(text),
		    "<link rel=\"alternate\" type=\"text/gemini\" "
		    "href=\"gemini://feeds.example:1966/a/n%02d\"/>\r\n"
		    "    <id>gemini://feeds.example:1966/a/n%02d</id>",
		    i, i);
		prev = must_find(prev, text);
	}
	assert_null(strstr(x, "/a/n11"));
	/* Ids and bytes are the same on every load. */
	y = blob_str(&archive_lookup(s2, "/a/", 3)->sec->feed);
	assert_string_equal(x, y);
	free(x);
	free(y);

	/* The root's feed covers the whole archive; a leaf's its own. */
	x = blob_str(&s1->root->sec->feed);
	check_xml(x);
	assert_int_equal(count_of(x, "<entry>"), 50);
	must_find(x, "<title>News archive</title>");
	must_find(x, "href=\"gemini://feeds.example:1966/feed.xml\"");
	free(x);
	x = blob_str(&archive_lookup(s1, "/a/b/", 5)->sec->feed);
	check_xml(x);
	assert_int_equal(count_of(x, "<entry>"), 2);
	free(x);
	snapshot_release(s1);
	snapshot_release(s2);

	/* The fixture: port 1965 is left out; a section of no dated news. */
	n = must_lookup(f, "/news/");
	x = blob_str(&n->sec->feed);
	check_xml(x);
	assert_int_equal(count_of(x, "<entry>"), 2);
	prev = must_find(x, "<id>gemini://" HOST "/news/dated-b</id>");
	must_find(prev, "<id>gemini://" HOST "/news/dated-a</id>");
	assert_null(strstr(x, ":1965"));
	free(x);
	x = blob_str(&must_lookup(f, "/news/science/")->sec->feed);
	check_xml(x);
	assert_int_equal(count_of(x, "<entry>"), 0);
	must_find(x, "<updated>1970-01-01T00:00:00Z</updated>");
	free(x);
}

static void
test_feed_respond(void **state)
{
	struct fixture *f = *state;
	const struct node *n = must_lookup(f, "/news/");
	const char *line = "gemini://localhost/news/feed.xml\r\n";
	struct reply r;

	reply_init(&r);
	gemini_respond(&gex, f->snap, line, strlen(line) - 2, &r);
	assert_int_equal(r.status, 20);
	assert_string_equal(r.meta, "application/atom+xml");
	assert_ptr_equal(r.body, &n->sec->feed);
	reply_free(&r);
	reply_init(&r);
	line = "gemini://localhost/feed.xml";
	gemini_respond(&gex, f->snap, line, strlen(line), &r);
	assert_ptr_equal(r.body, &f->snap->root->sec->feed);
	reply_free(&r);
	/* An article has no feed; nor has a section that is not there. */
	reply_init(&r);
	line = "gemini://localhost/news/dated-a/feed.xml";
	gemini_respond(&gex, f->snap, line, strlen(line), &r);
	assert_int_equal(r.status, 51);
	reply_free(&r);
	reply_init(&r);
	line = "gemini://localhost/nope/feed.xml";
	gemini_respond(&gex, f->snap, line, strlen(line), &r);
	assert_int_equal(r.status, 51);
	reply_free(&r);

	reply_init(&r);
	gopher_respond(&gctx, f->snap, "news/feed.xml", 13, &r);
	assert_int_equal(r.status, '0');
	assert_ptr_equal(r.body, &n->sec->feed);
	reply_free(&r);
}

/* Home's newest list, and every article's way up, back and on. */
static void
test_navigation(void **state)
{
	struct fixture *f = *state;
	char *g = gemini_page(f, f->snap->root);
	size_t nl;
	char **v;

	must_find(g,
	    "\n## Newest\n\n=> /news/dated-b 2021-05-06 Dated B\n"
	    "=> /news/dated-a 2020-01-02 Dated A\n");
	assert_true(strstr(g, "## Sections") < strstr(g, "## Newest"));
	/* Live pages only: the export tests above have no search link. */
	must_find(g,
	    "\n=> /feed.xml Atom feed\n"
	    "=> /search Search the archive\n");
	free(g);
	g = gemini_page(f, must_lookup(f, "/news/"));
	must_find(g,
	    "\n=> /news/feed.xml Atom feed\n"
	    "=> /search Search the archive\n");
	free(g);

	g = gemini_page(f, must_lookup(f, "/news/dated-b"));
	must_find(g,
	    "\n\n=> / Home\n=> /news/ News\n"
	    "=> /news/dated-a Next: Dated A\n");
	assert_null(strstr(g, "Previous:"));
	assert_null(strstr(g, "=> /search"));
	free(g);
	g = gemini_page(f, must_lookup(f, "/news/dated-a"));
	must_find(g,
	    "=> /news/dated-b Previous: Dated B\n"
	    "=> /news/beijing-declaration Next: " SEED_TITLE "\n");
	free(g);
	g = gemini_page(f, must_lookup(f, "/news/science/cjk"));
	must_find(g,
	    "\n\n=> / Home\n=> /news/ News\n=> /news/science/ "
	    "science\n");
	assert_null(strstr(g, "Previous:"));
	assert_null(strstr(g, "Next:"));
	free(g);

	v = check_menu(&f->snap->root->sec->gopher, 67, &nl);
	assert_true(starts_with(
	    menu_item(v, nl, '0', "/news/dated-b"), "02021-05-06 Dated B\t"));
	assert_non_null(menu_item(v, nl, '0', "/news/dated-a"));
	assert_non_null(menu_item(v, nl, '0', "/feed.xml"));
	free_lines(v, nl);
}

static void
test_gopher_error_escapes(void **state)
{
	struct buf b;
	char *s;

	(void)state;
	buf_init(&b);
	render_gopher_error(&b, HOST, 7070, "a\tb\rc\nd");
	s = buf_release(&b, NULL);
	assert_non_null(s);
	assert_string_equal(s, "3a b c d\t\t" HOST "\t" PORT "\r\n.\r\n");
	free(s);

	buf_init(&b);
	render_gopher_error(&b, "h", 70, "");
	s = buf_release(&b, NULL);
	assert_string_equal(s, "3\t\th\t70\r\n.\r\n");
	free(s);
}

static void
test_breadcrumb(void **state)
{
	struct fixture *f = *state;
	struct route r;
	struct buf b;

	buf_init(&b);
	r = route_to(f, "/news/science/cjk");
	render_breadcrumb(&b, &r);
	assert_non_null(b.p);
	assert_string_equal(b.p, "Home > News > science > " ZH_TITLE);
	buf_free(&b);
	buf_init(&b);
	r = route_to(f, "/");
	render_breadcrumb(&b, &r);
	assert_string_equal(b.p, "Home");
	buf_free(&b);
}

static void
test_snapshot_ref(void **state)
{
	struct fixture *f = *state;

	assert_ptr_equal(snapshot_ref(f->snap), f->snap);
	assert_int_equal(atomic_load(&f->snap->refs), 2);
	snapshot_release(f->snap);
	assert_int_equal(atomic_load(&f->snap->refs), 1);
	snapshot_release(NULL);
}

static void
test_load_missing_root(void **state)
{
	struct archive_opts o = {"/nonexistent/serai-test-root", NULL, "en",
	    HOST, 7070, 1965, 70, 67, ARCHIVE_INDEX_NOW, NULL, false, NULL,
	    NULL};
	const char *err = NULL;

	(void)state;
	assert_null(archive_load(&o, &err));
	assert_non_null(err);
	o.root = "/etc/passwd";
	err = NULL;
	assert_null(archive_load(&o, &err));
	assert_non_null(err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_load_counts),
	    cmocka_unit_test(test_lookup),
	    cmocka_unit_test(test_tree),
	    cmocka_unit_test(test_gemini_section),
	    cmocka_unit_test(test_gemini_article),
	    cmocka_unit_test(test_gopher_section),
	    cmocka_unit_test(test_gopher_article),
	    cmocka_unit_test(test_gemini_respond),
	    cmocka_unit_test(test_gopher_respond),
	    cmocka_unit_test(test_gopher_plus),
	    cmocka_unit_test(test_render_escapes),
	    cmocka_unit_test(test_render_export),
	    cmocka_unit_test(test_atom_feed),
	    cmocka_unit_test(test_feed_respond),
	    cmocka_unit_test(test_navigation),
	    cmocka_unit_test(test_gopher_error_escapes),
	    cmocka_unit_test(test_breadcrumb),
	    cmocka_unit_test(test_snapshot_ref),
	    cmocka_unit_test(test_load_missing_root),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
