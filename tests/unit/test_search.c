/*
 * Full-text search on a temporary archive: folding, prefixes, phrases,
 * Chinese substrings, ranking, the query sanitiser and the work budget;
 * then the Gemini and Gopher answers built on it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sqlite3.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "article.h"
#include "proto.h"
#include "search.h"
#include "seed.h"
#include "util.h"

/* 中国科学院与沿线国家的科研机构发表了《北京宣言》。 */
#define ZH_PARA                                                                \
	"\xe4\xb8\xad\xe5\x9b\xbd\xe7\xa7\x91\xe5\xad\xa6\xe9\x99\xa2"         \
	"\xe4\xb8\x8e\xe6\xb2\xbf\xe7\xba\xbf\xe5\x9b\xbd\xe5\xae\xb6"         \
	"\xe7\x9a\x84\xe7\xa7\x91\xe7\xa0\x94\xe6\x9c\xba\xe6\x9e\x84"         \
	"\xe5\x8f\x91\xe8\xa1\xa8\xe4\xba\x86\xe3\x80\x8a\xe5\x8c\x97"         \
	"\xe4\xba\xac\xe5\xae\xa3\xe8\xa8\x80\xe3\x80\x8b\xe3\x80\x82"
/* 科学院 */
#define ZH_QUERY "\xe7\xa7\x91\xe5\xad\xa6\xe9\x99\xa2"
/* 文章 */
#define ZH_TITLE "\xe4\xb8\xad\xe6\x96\x87\xe6\x96\x87\xe7\xab\xa0"
/* Over SEARCH_RANK_MAX: the broad queries are listed newest first. */
/* 中 and 院: both in ZH_PARA, not next to each other. */
#define ZH_APART "\"\xe4\xb8\xad\xe9\x99\xa2\""
#define ZH_APART_TERMS "\xe4\xb8\xad \xe9\x99\xa2"
#define NFILLER 1005

struct fixture {
	char root[64];
	struct archive_opts opts;
	struct snapshot *snap;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *err = NULL;
	char *seed, path[512], name[64], text[512];
	size_t seedlen;
	int rv = 0;

	if (f == NULL)
		return -1;
	strcpy(f->root, "/tmp/serai-test-search-XXXXXX");
	if (mkdtemp(f->root) == NULL || (seed = read_seed(&seedlen)) == NULL) {
		free(f);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/news", f->root);
	rv |= mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/filler", f->root);
	rv |= mkdir(path, 0755);
	rv |=
	    puts_file(f->root, "news/section.ini", "[section]\ntitle = News\n");
	rv |= puts_file(f->root, "news/beijing-declaration.txt", seed);
	rv |= puts_file(f->root, "news/cafe.txt",
	    "Date: 2022-03-04\nOpening of a new caf\xc3\xa9\n\n"
	    "The caf\xc3\xa9 serves coffee to the institute.\n");
	rv |= puts_file(
	    f->root, "news/zh.txt", "Lang: zh\n" ZH_TITLE "\n\n" ZH_PARA "\n");
	/* "quantum" in the title of one, in the body only of the other. */
	rv |= puts_file(f->root, "news/title-hit.txt",
	    "Quantum results\n\nA short note about physics.\n");
	rv |= puts_file(f->root, "news/body-hit.txt",
	    "Physics notes\n\nThe quantum lab, the quantum team and the "
	    "quantum computer were all mentioned in this long article.\n");
	/* A corpus for the work budget: many words sharing prefixes. */
	for (int i = 0; i < NFILLER && rv == 0; i++) {
		snprintf(name, sizeof(name), "filler/f%03d.txt", i);
		snprintf(text, sizeof(text),
		    "Date: %04d-01-01\nFiller %d\n\nalpha%d alpine%d alto%d "
		    "amber%d anchor%d "
		    "angle%d apple%d arrow%d aspen%d atlas%d atom%d\n",
		    1000 + i, i, i, i, i, i, i, i, i, i, i, i, i);
		rv |= puts_file(f->root, name, text);
	}
	free(seed);
	f->opts.root = f->root;
	f->opts.lang = "en";
	f->opts.hostname = "gopher.example";
	f->opts.gopher_port = 7070;
	f->opts.wrap = 70;
	f->opts.menu_width = 67;
	if (rv == 0)
		f->snap = archive_load(&f->opts, &err);
	*state = f;
	return f->snap != NULL && f->snap->search != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	snapshot_release(f->snap);
	remove_tree(f->root);
	free(f);
	return 0;
}

/* Hit i of r in snapshot s, by the path the index gave: NULL if gone. */
static const struct node *
hit(const struct snapshot *s, const struct search_result *r, size_t i)
{
	return archive_lookup(s, r->paths[i], strlen(r->paths[i]));
}

/* The total of a query, and its first hit's path in *first. */
static size_t
hits(void **state, const char *q, const char *first)
{
	struct fixture *f = *state;
	struct search_result r;

	assert_int_equal(
	    search_query(f->snap->search, q, strlen(q), 1, &r), SEARCH_OK);
	if (first != NULL) {
		assert_true(r.nids > 0);
		assert_non_null(hit(f->snap, &r, 0));
		assert_string_equal(hit(f->snap, &r, 0)->path, first);
	}
	for (size_t i = 0; i < r.nids; i++)
		assert_non_null(hit(f->snap, &r, i));
	return r.total;
}

/* The snippet of path's article for q, as a string to free. */
static char *
snippet(void **state, const char *q, const char *path)
{
	struct fixture *f = *state;
	const struct node *n = archive_lookup(f->snap, path, strlen(path));
	struct search_terms t;
	struct buf b;
	char *s;

	assert_non_null(n);
	buf_init(&b);
	search_terms_init(&t, q, strlen(q));
	search_snippet(&b, &t, n->art->paras, n->art->npara);
	search_terms_free(&t);
	buf_addc(&b, '\0');
	s = buf_release(&b, NULL);
	assert_non_null(s);
	assert_null(strpbrk(s, "\t\r\n"));
	return s;
}

static void
test_word(void **state)
{
	assert_int_equal(
	    hits(state, "declaration", "/news/beijing-declaration"), 1);
	assert_int_equal(
	    hits(state, "SCIENCE", "/news/beijing-declaration"), 1);
	assert_int_equal(hits(state, "nosuchwordanywhere", NULL), 0);
}

static void
test_accents(void **state)
{
	assert_int_equal(hits(state, "cafe", "/news/cafe"), 1);
	assert_int_equal(hits(state, "CAF\xc3\x89", "/news/cafe"), 1);
}

static void
test_prefix_phrase(void **state)
{
	assert_int_equal(
	    hits(state, "declar*", "/news/beijing-declaration"), 1);
	assert_int_equal(
	    hits(state, "\"belt and road\"", "/news/beijing-declaration"), 1);
	/* The words are all there, but not as this phrase. */
	assert_int_equal(hits(state, "\"road and belt\"", NULL), 0);
}

static void
test_chinese(void **state)
{
	assert_true(search_has_cjk(ZH_QUERY, strlen(ZH_QUERY)));
	assert_false(search_has_cjk("caf\xc3\xa9", 5));
	/* Three characters from the middle of a run, and one alone. */
	assert_int_equal(hits(state, ZH_QUERY, "/news/zh"), 1);
	assert_int_equal(hits(state, "\xe5\xad\xa6", "/news/zh"), 1);
	/* The same characters, not next to each other: no hit. */
	assert_int_equal(hits(state, ZH_APART, NULL), 0);
	/* Both, as separate terms: a hit. */
	assert_int_equal(hits(state, ZH_APART_TERMS, "/news/zh"), 1);
}

static void
test_snippet(void **state)
{
	char *s;

	s = snippet(state, "declaration", "/news/beijing-declaration");
	assert_non_null(strstr(s, "issued a declaration during"));
	free(s);
	/* Folded: case and accents, and a prefix. */
	s = snippet(state, "CAFE", "/news/cafe");
	assert_string_equal(
	    s, "The caf\xc3\xa9 serves coffee to the institute.");
	free(s);
	s = snippet(state, "instit*", "/news/cafe");
	assert_non_null(strstr(s, "institute"));
	free(s);
	s = snippet(state, ZH_QUERY, "/news/zh");
	assert_non_null(strstr(s, ZH_QUERY));
	free(s);
	/* A title-only hit: the start of the text. */
	s = snippet(state, "quantum", "/news/title-hit");
	assert_string_equal(s, "A short note about physics.");
	free(s);
	/* Deep in a long paragraph: cut on both sides, the word kept. */
	s = snippet(state, "\"belt and road\"", "/news/beijing-declaration");
	assert_non_null(strstr(s, "Belt and Road"));
	assert_true(strlen(s) < 220);
	free(s);
}

/* The snippet of paras for q, as a string to free. */
static char *
snippet_of(const char *q, char **paras, size_t npara)
{
	struct search_terms t;
	struct buf b;

	buf_init(&b);
	search_terms_init(&t, q, strlen(q));
	search_snippet(&b, &t, paras, npara);
	search_terms_free(&t);
	buf_addc(&b, '\0');
	return buf_release(&b, NULL);
}

/*
 * A hit deep in a multi-megabyte article: the snippet comes from the
 * text's start, as the scan stops (SNIPPET_SCAN_MAX); a hit near the
 * start is still shown, in one long paragraph or over many.
 */
static void
test_snippet_scan_is_bounded(void **state)
{
	size_t big = 3 * 1024 * 1024;
	char *one = malloc(big + 1), *many[201], *s;

	(void)state;
	assert_non_null(one);
	for (size_t i = 0; i < big; i++)
		one[i] = i % 8 == 7 ? ' ' : "filler"[i % 8 % 6];
	memcpy(one + big - 7, " needle", 7);
	one[big] = '\0';
	s = snippet_of("needle", &one, 1);
	assert_null(strstr(s, "needle"));
	assert_true(strncmp(s, "filler", 6) == 0 && strlen(s) < 220);
	free(s);
	memcpy(one + 1000, " needle", 7);
	s = snippet_of("needle", &one, 1);
	assert_non_null(strstr(s, "needle"));
	free(s);
	/* 200 paragraphs of 1 KiB: the 20th is read, the 150th not. */
	for (size_t i = 0; i < 200; i++) {
		many[i] = one + 2000;
		one[2000 + 1024] = '\0';
	}
	many[200] = NULL;
	many[20] = "the needle in the 20th";
	s = snippet_of("needle", many, 200);
	assert_string_equal(s, "the needle in the 20th");
	free(s);
	many[20] = many[0];
	many[150] = "the needle in the 150th";
	s = snippet_of("needle", many, 200);
	assert_null(strstr(s, "needle"));
	free(s);
	free(one);
}

static void
test_ranking(void **state)
{
	assert_int_equal(hits(state, "quantum", "/news/title-hit"), 2);
}

static void
test_sanitiser(void **state)
{
	static const char *const bad[] = {"title:x", "\"unbalanced", "NEAR(",
	    "*", "a OR", "-x", "x AND", "NOT", "(", ")", "^x", "\"\"", "\"",
	    "{title body}: x", "x + y", "***xyz**", "col:\"a bcd\"*", "\\",
	    "a\tb", "title : declaration", "NEAR(a b, 2)", "'", "x -y", NULL};
	struct fixture *f = *state;
	struct search_result r;
	struct buf b;

	for (const char *const *q = bad; *q; q++) {
		enum search_status st =
		    search_query(f->snap->search, *q, strlen(*q), 1, &r);

		assert_true(st == SEARCH_OK || st == SEARCH_EMPTY);
	}
	/* A column filter is only a word. */
	assert_int_equal(hits(state, "title:declaration", NULL), 0);
	buf_init(&b);
	assert_int_equal(search_sanitise("title:x \"a b\"* c* *", 19, &b), 3);
	assert_string_equal(b.p, "\"title:x\" \"a b\"* \"c\"*");
	buf_free(&b);
	buf_init(&b);
	assert_int_equal(search_sanitise("* \"\" ** ", 8, &b), 0);
	buf_free(&b);
	/* The same term twice is one term; a prefix is another term. */
	buf_init(&b);
	assert_int_equal(search_sanitise("x y x \"x\" x* y", 14, &b), 3);
	assert_string_equal(b.p, "\"x\" \"y\" \"x\"*");
	buf_free(&b);
}

static void
test_prefix_bounds(void **state)
{
	struct fixture *f = *state;
	struct search_result r;
	static const char *const broad[] = {"a*", "al*", "alpine al*",
	    "\"belt and r\"*", "alp* alq* alr* als*",
	    "a* a* a* a* a* a* a* a* a* a* a* a* a* a* a* a*", NULL};
	static const char *const fine[] = {"alp*", "alpine1*",
	    "alp* alp* alp* alp* alp* alp* alp* alp* alp* alp*",
	    "alp* bel* roa*", "\"belt and roa\"*", "a al alp", NULL};

	for (const char *const *q = broad; *q; q++)
		assert_int_equal(
		    search_query(f->snap->search, *q, strlen(*q), 1, &r),
		    SEARCH_TOO_BROAD);
	for (const char *const *q = fine; *q; q++) {
		enum search_status st =
		    search_query(f->snap->search, *q, strlen(*q), 1, &r);

		if (st != SEARCH_OK)
			fail_msg("%s: %d", *q, st);
	}
	/*
	 * What a prefix expands to is counted before it is run: the words
	 * of "alpine1*" are in 116 documents, "alpine10*" in 16.
	 */
	search_set_prefix_docs(f->snap->search, 115);
	assert_int_equal(search_query(f->snap->search, "alpine1*", 8, 1, &r),
	    SEARCH_TOO_BROAD);
	assert_int_equal(
	    search_query(f->snap->search, "alpine10* alpine10*", 19, 1, &r),
	    SEARCH_OK);
	assert_int_equal(r.total, 16);
	assert_int_equal(
	    search_query(f->snap->search, "ALPINE10* alpine11*", 19, 1, &r),
	    SEARCH_OK);
	assert_int_equal(r.total, 0);
	search_set_prefix_docs(f->snap->search, 116);
	assert_int_equal(
	    search_query(f->snap->search, "alpine1*", 8, 1, &r), SEARCH_OK);
	assert_int_equal(r.total, 116);
	search_set_prefix_docs(f->snap->search, SEARCH_PREFIX_DOCS_MAX);
}

static void
test_bounds(void **state)
{
	struct fixture *f = *state;
	struct search_result r;
	char longq[SEARCH_QUERY_MAX + 2];
	/* Within the prefix rule: the budget is what refuses it. */
	const char *q = "alp* alpi* alpin*";
	const struct node *n;

	memset(longq, 'x', sizeof(longq) - 1);
	longq[sizeof(longq) - 1] = '\0';
	assert_int_equal(
	    search_query(f->snap->search, longq, strlen(longq), 1, &r),
	    SEARCH_TOO_LONG);
	search_set_budget(f->snap->search, 2 * SEARCH_BUDGET_STEP);
	assert_int_equal(search_query(f->snap->search, q, strlen(q), 1, &r),
	    SEARCH_TOO_BROAD);
	assert_int_equal(r.nids, 0);
	search_set_budget(f->snap->search, SEARCH_BUDGET);

	/* alpine1, alpine10-19, alpine100-199, alpine1000-1004: ranked. */
	assert_int_equal(hits(state, "alpine1*", NULL), 116);
	assert_int_equal(
	    search_query(f->snap->search, "alpine1*", 8, 1, &r), SEARCH_OK);
	assert_false(r.newest);
	assert_int_equal(r.nids, SEARCH_PAGE_SIZE);
	assert_int_equal(
	    search_query(f->snap->search, "alpine1*", 8, 12, &r), SEARCH_OK);
	assert_int_equal(r.nids, 6);
	assert_int_equal(
	    search_query(f->snap->search, "alpine1*", 8, 13, &r), SEARCH_OK);
	assert_int_equal(r.total, 116);
	assert_int_equal(r.nids, 0);

	/* Every filler: too many to rank, so the newest first. */
	assert_int_equal(
	    search_query(f->snap->search, "alpin*", 6, 1, &r), SEARCH_OK);
	assert_true(r.newest);
	assert_int_equal(r.total, SEARCH_RANK_MAX);
	assert_int_equal(r.nids, SEARCH_PAGE_SIZE);
	n = hit(f->snap, &r, 0);
	assert_non_null(n);
	assert_string_equal(n->path, "/filler/f1004");
	n = hit(f->snap, &r, 1);
	assert_string_equal(n->path, "/filler/f1003");
	/* The last page is the hundredth; none after. */
	assert_int_equal(
	    search_query(f->snap->search, "alpin*", 6, SEARCH_PAGE_MAX, &r),
	    SEARCH_OK);
	assert_int_equal(r.nids, SEARCH_PAGE_SIZE);
	assert_string_equal(hit(f->snap, &r, 9)->path, "/filler/f005");
	assert_int_equal(
	    search_query(f->snap->search, "alpin*", 6, SEARCH_PAGE_MAX + 1, &r),
	    SEARCH_OK);
	assert_int_equal(r.nids, 0);
}

/*
 * The digest of a set is its own whatever the order, and any change of
 * a path or of one field of a stamp changes it.
 */
static void
test_digest(void **state)
{
	static const struct search_stamp st = {
	    8, 1234567, 2048, 1700000000123456789, 1700000000987654321};
	struct search_digest a = {0, 0}, b = {0, 0}, c;
	struct search_stamp x;

	(void)state;
	search_digest_add(&a, "/news/a", &st);
	search_digest_add(&a, "/news/b", &st);
	search_digest_add(&b, "/news/b", &st);
	search_digest_add(&b, "/news/a", &st);
	assert_int_equal(a.count, 2);
	assert_int_equal(a.sum, b.sum);
	for (int field = 0; field < 6; field++) {
		x = st;
		c.sum = c.count = 0;
		switch (field) {
		case 0:
			x.dev++;
			break;
		case 1:
			x.ino++;
			break;
		case 2:
			x.size++;
			break;
		case 3:
			x.mtime_ns++;
			break;
		case 4:
			x.ctime_ns++;
			break;
		default:
			break;
		}
		search_digest_add(&c, "/news/a", &st);
		search_digest_add(&c, field == 5 ? "/news/c" : "/news/b", &x);
		assert_int_equal(c.count, 2);
		if (c.sum == a.sum)
			fail_msg("a change of field %d went unseen", field);
	}
	/* A path a byte longer (the zero padding of its last word). */
	c.sum = c.count = 0;
	search_digest_add(&c, "/news/a", &st);
	search_digest_add(&c, "/news/bb", &st);
	assert_true(c.sum != a.sum);
}

/* Served at once, searchable when the index thread is done. */
static void
test_index_later(void **state)
{
	static const struct url_expect ex = {
	    "localhost", "127.0.0.1", 1965, 0, NULL, 0};
	static const char req[] = "gemini://localhost/search?declaration";
	struct fixture *f = *state;
	struct archive_opts o = f->opts;
	struct snapshot *s;
	const char *err = NULL;
	struct reply r;

	o.index = ARCHIVE_INDEX_LATER;
	assert_non_null(s = archive_load(&o, &err));
	assert_null(archive_search(s));
	assert_false(atomic_load(&s->indexing));
	assert_int_equal(archive_index_start(s), 0);
	/* Until it is built, the page says so; bounded wait. */
	for (int i = 0; i < 3000 && atomic_load(&s->indexing); i++) {
		reply_init(&r);
		gemini_respond(&ex, s, req, strlen(req), &r);
		buf_addc(&r.dyn, '\0');
		assert_int_equal(r.status, 20);
		assert_true(strstr(r.dyn.p, "being built") != NULL ||
		    strstr(r.dyn.p, "=> /news/beijing-declaration ") != NULL);
		reply_free(&r);
		usleep(1000);
	}
	assert_false(atomic_load(&s->indexing));
	assert_non_null(archive_search(s));
	reply_init(&r);
	gemini_respond(&ex, s, req, strlen(req), &r);
	buf_addc(&r.dyn, '\0');
	assert_non_null(strstr(r.dyn.p, "=> /news/beijing-declaration "));
	reply_free(&r);
	snapshot_release(s);

	/* Released while indexing: the thread is stopped and joined. */
	assert_non_null(s = archive_load(&o, &err));
	assert_int_equal(archive_index_start(s), 0);
	snapshot_release(s);

	/* No index at all (-n, --export). */
	o.index = ARCHIVE_INDEX_NONE;
	assert_non_null(s = archive_load(&o, &err));
	assert_null(archive_search(s));
	reply_init(&r);
	gemini_respond(&ex, s, req, strlen(req), &r);
	buf_addc(&r.dyn, '\0');
	assert_non_null(strstr(r.dyn.p, "Search is not available now."));
	reply_free(&r);
	snapshot_release(s);
}

/*
 * Loads from now on sync into se (NULL: each snapshot indexes itself),
 * as main.c's store does for a host.
 */
static struct archive_store test_store;

static void
set_search(struct fixture *f, struct search *se)
{
	if (se == NULL) {
		f->opts.store = NULL;
		return;
	}
	archive_store_init(&test_store, se);
	f->opts.store = &test_store;
}

/* A load synced into the index set with set_search. */
static struct snapshot *
load_synced(struct fixture *f)
{
	const char *err = NULL;
	struct snapshot *s = archive_load(&f->opts, &err);

	assert_non_null(s);
	assert_non_null(archive_search(s));
	assert_false(s->own_search);
	return s;
}

/* An article of a snapshot and the id the index gave it. */
struct pid {
	const char *path;
	long long id;
};

/* The fixture's articles, fillers included, fit. */
#define PIDS_MAX 2048

/* Every article under n with its id now, into v[*k]. */
static void
collect_ids(const struct node *n, struct search *se, struct pid *v, size_t *k)
{
	const struct section *s = n->sec;

	for (size_t i = 0; i < s->narticles; i++) {
		assert_true(*k < PIDS_MAX);
		v[*k].path = s->articles[i]->path;
		v[*k].id = search_id(se, v[*k].path);
		assert_true(v[*k].id > 0);
		(*k)++;
	}
	for (size_t i = 0; i < s->nsections; i++)
		collect_ids(s->sections[i], se, v, k);
}

/* The ids v recorded are the ids still (the snapshot kept alive). */
static void
assert_same_ids(struct search *se, const struct pid *v, size_t k)
{
	for (size_t i = 0; i < k; i++)
		assert_int_equal(v[i].id, search_id(se, v[i].path));
}

static const char *const queries[] = {"declaration", "cafe", "tea", "coffee",
    "quantum", "zebra", "alpine1*", "alpin*", "physics", "\"belt and road\"",
    ZH_QUERY, "filler", "institute", NULL};

/* Two snapshots' answers to every query, as paths: the same. */
static void
assert_same_answers(struct snapshot *a, struct snapshot *b)
{
	for (const char *const *q = queries; *q; q++) {
		struct search_result ra, rb;

		assert_int_equal(
		    search_query(archive_search(a), *q, strlen(*q), 1, &ra),
		    SEARCH_OK);
		assert_int_equal(
		    search_query(archive_search(b), *q, strlen(*q), 1, &rb),
		    SEARCH_OK);
		if (ra.total != rb.total || ra.nids != rb.nids)
			fail_msg("%s: %zu/%zu hits against %zu/%zu", *q,
			    ra.total, ra.nids, rb.total, rb.nids);
		for (size_t i = 0; i < ra.nids; i++)
			assert_string_equal(
			    hit(a, &ra, i)->path, hit(b, &rb, i)->path);
	}
}

/* The vocab tables of two index files, row by row: the same. */
static void
assert_same_vocab(const char *p1, const char *p2)
{
	sqlite3 *d1, *d2;
	sqlite3_stmt *s1, *s2;
	const char *sql = "SELECT term, doc FROM vocab ORDER BY term";
	int rc1, rc2;
	size_t rows = 0;

	assert_int_equal(
	    sqlite3_open_v2(p1, &d1, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(
	    sqlite3_open_v2(p2, &d2, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(d1, sql, -1, &s1, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(d2, sql, -1, &s2, NULL), SQLITE_OK);
	for (;;) {
		rc1 = sqlite3_step(s1);
		rc2 = sqlite3_step(s2);
		assert_int_equal(rc1, rc2);
		if (rc1 != SQLITE_ROW)
			break;
		assert_string_equal(
		    sqlite3_column_text(s1, 0), sqlite3_column_text(s2, 0));
		if (sqlite3_column_int64(s1, 1) != sqlite3_column_int64(s2, 1))
			fail_msg("%s: %lld documents against %lld",
			    sqlite3_column_text(s1, 0),
			    (long long)sqlite3_column_int64(s1, 1),
			    (long long)sqlite3_column_int64(s2, 1));
		rows++;
	}
	assert_int_equal(rc1, SQLITE_DONE);
	assert_true(rows > 1000);
	sqlite3_finalize(s1);
	sqlite3_finalize(s2);
	sqlite3_close(d1);
	sqlite3_close(d2);
}

/* The digest the index file at path keeps: its two meta rows. */
static struct search_digest
file_digest(const char *path)
{
	struct search_digest d;
	sqlite3 *db;
	sqlite3_stmt *q;

	assert_int_equal(
	    sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
	                     "SELECT (SELECT value FROM meta WHERE key = "
	                     "'digest'), (SELECT value FROM meta WHERE key = "
	                     "'docs')",
	                     -1, &q, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_int_equal(sqlite3_column_type(q, 0), SQLITE_INTEGER);
	assert_int_equal(sqlite3_column_type(q, 1), SQLITE_INTEGER);
	d.sum = (uint64_t)sqlite3_column_int64(q, 0);
	d.count = (uint64_t)sqlite3_column_int64(q, 1);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return d;
}

/* An SQL statement run on the index file at path, from outside. */
static void
tamper(const char *path, const char *sql)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	assert_true(sqlite3_changes(db) > 0);
	sqlite3_close(db);
}

/*
 * The tree indexed whole into a new file at path2 answers as s does from
 * the synced index at path, with the same vocabulary and digest.
 */
static void
assert_as_indexed_whole(
    struct fixture *f, struct snapshot *s, const char *path, const char *path2)
{
	struct snapshot *full;
	struct search *se;
	const char *why;
	bool damaged;

	assert_non_null(se = search_open(path2, &why, &damaged));
	set_search(f, se);
	full = load_synced(f);
	assert_true(full->index_built);
	assert_same_answers(s, full);
	assert_same_vocab(path, path2);
	{
		struct search_digest a = file_digest(path),
		                     b = file_digest(path2);

		assert_int_equal(a.count, s->narticles);
		assert_int_equal(a.count, b.count);
		assert_int_equal(a.sum, b.sum);
	}
	snapshot_release(full);
	set_search(f, NULL);
	search_free(se);
}

#define CAFE_COFFEE                                                            \
	"Date: 2022-03-04\nOpening of a new caf\xc3\xa9\n\n"                   \
	"The caf\xc3\xa9 serves coffee to the institute.\n"
#define CAFE_TEA                                                               \
	"Date: 2022-03-04\nOpening of a new caf\xc3\xa9\n\n"                   \
	"The caf\xc3\xa9 serves tea and nothing else now.\n"
#define ZEBRA "Date: 2030-01-01\nA zebra\n\nThe zebra is newest.\n"
#define TITLE_HIT "Quantum results\n\nA short note about physics.\n"

/*
 * The index kept in a file and synced with each load: an unchanged tree
 * reuses it, an insertion, a change and a removal touch only their
 * article, ids stay, and the result equals a whole build of the tree.
 */
static void
test_incremental(void **state)
{
	struct fixture *f = *state;
	struct snapshot *keep = f->snap, *s0, *s1, *s2;
	struct search *se;
	char path[128], path2[128], zebra[512];
	const char *why;
	bool damaged;
	long long id;
	struct pid *v = calloc(PIDS_MAX, sizeof(*v));
	struct search_digest d;
	size_t nv;

	assert_non_null(v);
	snprintf(path, sizeof(path), "%s.db", f->root);
	snprintf(path2, sizeof(path2), "%s.full.db", f->root);
	assert_non_null(se = search_open(path, &why, &damaged));
	set_search(f, se);

	s0 = load_synced(f);
	assert_true(s0->index_built);
	f->snap = s0;
	assert_int_equal(
	    hits(state, "declaration", "/news/beijing-declaration"), 1);
	/* The file holds it: a new process reads it back, nothing to do. */
	set_search(f, NULL);
	search_free(se);
	assert_non_null(se = search_open(path, &why, &damaged));
	set_search(f, se);
	nv = 0;
	collect_ids(s0->root, se, v, &nv);
	assert_true(nv > 5);
	s1 = load_synced(f);
	assert_false(s1->index_built);
	/* Its digest is the tree's: taken as it is, no row read. */
	assert_true(s1->index_reused);
	assert_int_equal(
	    s1->index_added + s1->index_changed + s1->index_removed, 0);
	assert_same_ids(se, v, nv);
	snapshot_release(s0);
	/*
	 * A digest serai did not write (not a number, a count one off): a
	 * full compare, which finds nothing to do and writes it anew.
	 */
	d = file_digest(path);
	assert_int_equal(d.count, s1->narticles);
	nv = 0;
	collect_ids(s1->root, se, v, &nv);
	for (size_t i = 0; i < 2; i++) {
		tamper(path,
		    i == 0 ? "UPDATE meta SET value = 'x' WHERE key = "
		             "'digest'"
		           : "UPDATE meta SET value = value + 1 "
		             "WHERE key = 'docs'");
		s0 = load_synced(f);
		assert_false(s0->index_reused);
		assert_false(s0->index_built);
		assert_int_equal(s0->index_kept, s0->narticles);
		assert_int_equal(
		    s0->index_added + s0->index_changed + s0->index_removed, 0);
		assert_int_equal(file_digest(path).sum, d.sum);
		assert_int_equal(file_digest(path).count, d.count);
		snapshot_release(s0);
	}
	assert_same_ids(se, v, nv);
	/*
	 * Names whose paths sort otherwise than the names do ("x-1" before
	 * "x", "/news-brief" before "/news/"): a full compare names them in
	 * path order, finds the three added, then the three gone.
	 */
	snprintf(zebra, sizeof(zebra), "%s/news/x", f->root);
	assert_int_equal(mkdir(zebra, 0755), 0);
	assert_int_equal(puts_file(f->root, "news/x/y.txt", ZEBRA), 0);
	assert_int_equal(puts_file(f->root, "news/x-1.txt", ZEBRA), 0);
	assert_int_equal(puts_file(f->root, "news-brief.txt", ZEBRA), 0);
	for (int gone = 0; gone < 2; gone++) {
		s0 = load_synced(f);
		assert_false(s0->index_reused);
		assert_int_equal(s0->index_added, gone ? 0 : 3);
		assert_int_equal(s0->index_removed, gone ? 3 : 0);
		assert_int_equal(s0->index_changed, 0);
		assert_int_equal(search_id(se, "/news/x-1") != 0, !gone);
		snapshot_release(s0);
		if (gone)
			break;
		for (int i = 0; i < 3; i++) {
			static const char *const rm[] = {
			    "news/x/y.txt", "news/x-1.txt", "news-brief.txt"};

			snprintf(zebra, sizeof(zebra), "%s/%s", f->root, rm[i]);
			assert_int_equal(unlink(zebra), 0);
		}
		snprintf(zebra, sizeof(zebra), "%s/news/x", f->root);
		assert_int_equal(rmdir(zebra), 0);
	}

	/* An insertion: one article indexed, no other id moves. */
	snprintf(zebra, sizeof(zebra), "%s", ZEBRA);
	assert_int_equal(puts_file(f->root, "news/zebra.txt", zebra), 0);
	nv = 0;
	collect_ids(s1->root, se, v, &nv);
	s2 = load_synced(f);
	assert_int_equal(s2->index_added, 1);
	assert_int_equal(s2->index_changed + s2->index_removed, 0);
	assert_same_ids(se, v, nv);
	f->snap = s2;
	assert_int_equal(hits(state, "zebra", "/news/zebra"), 1);
	/* The newest article has the largest id: first of a broad list. */
	for (size_t i = 0; i < nv; i++)
		assert_true(v[i].id < search_id(se, "/news/zebra"));
	/* The older snapshot meets the new article's path and drops it. */
	{
		struct search_result r;

		assert_int_equal(
		    search_query(archive_search(s1), "zebra", 5, 1, &r),
		    SEARCH_OK);
		assert_int_equal(r.nids, 1);
		assert_string_equal(r.paths[0], "/news/zebra");
		assert_null(hit(s1, &r, 0));
		assert_non_null(hit(s2, &r, 0));
	}
	snapshot_release(s1);

	/* A change (the same date: the same id) and a removal. */
	id = search_id(se, "/news/cafe");
	assert_int_equal(puts_file(f->root, "news/cafe.txt", CAFE_TEA), 0);
	assert_int_equal(
	    unlink(strcat(strcpy(zebra, f->root), "/news/title-hit.txt")), 0);
	s1 = load_synced(f);
	assert_int_equal(s1->index_changed, 1);
	assert_int_equal(s1->index_removed, 1);
	assert_int_equal(s1->index_added, 0);
	assert_int_equal(search_id(se, "/news/cafe"), id);
	f->snap = s1;
	assert_int_equal(hits(state, "tea", "/news/cafe"), 1);
	assert_int_equal(hits(state, "coffee", NULL), 0);
	assert_int_equal(hits(state, "quantum", "/news/body-hit"), 1);
	snapshot_release(s2);

	/* The same tree indexed whole, in a new file: the same answers. */
	assert_as_indexed_whole(f, s1, path, path2);
	assert_int_equal(search_remove(path2), 0);

	/* Back as setup made it: the removal and the change undone. */
	assert_int_equal(puts_file(f->root, "news/cafe.txt", CAFE_COFFEE), 0);
	assert_int_equal(
	    puts_file(f->root, "news/title-hit.txt", TITLE_HIT), 0);
	assert_int_equal(
	    unlink(strcat(strcpy(zebra, f->root), "/news/zebra.txt")), 0);
	set_search(f, se);
	s2 = load_synced(f);
	assert_int_equal(s2->index_added, 1);
	assert_int_equal(s2->index_changed, 1);
	assert_int_equal(s2->index_removed, 1);
	f->snap = s2;
	assert_int_equal(hits(state, "quantum", "/news/title-hit"), 2);
	assert_int_equal(hits(state, "coffee", "/news/cafe"), 1);
	snapshot_release(s1);
	snapshot_release(s2);
	set_search(f, NULL);
	search_free(se);
	assert_int_equal(search_remove(path), 0);
	f->snap = keep;
	free(v);
}

/*
 * A reload told what changed (as the watch tells it) syncs the index by
 * the difference between the two snapshots: a publish indexes its one
 * article, a removal and a rename drop theirs, and the index answers as
 * one built whole from the tree does; no hit names an article gone.
 */
static void
test_delta_sync(void **state)
{
	struct fixture *f = *state;
	struct snapshot *keep = f->snap, *s0, *s1, *s2, *s3;
	struct search *se;
	struct search_digest d;
	char path[128], path2[128], a[256], b[256];
	char *news[] = {"/news/"};
	struct archive_changes c = {news, 1};
	struct search_result r;
	const char *why = NULL;
	bool damaged;

	snprintf(path, sizeof(path), "%s.delta.db", f->root);
	snprintf(path2, sizeof(path2), "%s.delta-full.db", f->root);
	assert_non_null(se = search_open(path, &why, &damaged));
	set_search(f, se);
	s0 = load_synced(f);

	/* A publish: one article indexed. */
	assert_int_equal(puts_file(f->root, "news/zebra.txt", ZEBRA), 0);
	assert_non_null(s1 = archive_reload(s0, &f->opts, &c, &why));
	assert_false(s1->index_built);
	assert_int_equal(s1->index_added, 1);
	assert_int_equal(s1->index_changed + s1->index_removed, 0);
	/* The difference only: not the thousand fillers, each unchanged. */
	assert_true(s1->narticles > 1000);
	assert_true(s1->index_kept < 50);
	f->snap = s1;
	assert_int_equal(hits(state, "zebra", "/news/zebra"), 1);

	/* A removal and a rename: two gone, one new. */
	snprintf(a, sizeof(a), "%s/news/cafe.txt", f->root);
	snprintf(b, sizeof(b), "%s/news/cafe2.txt", f->root);
	assert_int_equal(rename(a, b), 0);
	snprintf(a, sizeof(a), "%s/news/title-hit.txt", f->root);
	assert_int_equal(unlink(a), 0);
	/* A delta on a digest serai did not write leaves none behind. */
	tamper(path, "UPDATE meta SET value = 'x' WHERE key = 'docs'");
	assert_non_null(s2 = archive_reload(s1, &f->opts, &c, &why));
	assert_int_equal(s2->index_removed, 2);
	assert_int_equal(s2->index_added, 1);
	assert_int_equal(s2->index_changed, 0);
	assert_int_equal(search_digest(se, &d), -1);
	/* And the next full sync writes it: as a whole build's, below. */
	s3 = load_synced(f);
	assert_false(s3->index_reused);
	assert_int_equal(
	    s3->index_added + s3->index_changed + s3->index_removed, 0);
	assert_int_equal(search_digest(se, &d), 0);
	assert_int_equal(d.count, s2->narticles);
	snapshot_release(s3);
	f->snap = s2;
	assert_int_equal(hits(state, "coffee", "/news/cafe2"), 1);
	assert_int_equal(hits(state, "quantum", "/news/body-hit"), 1);
	/* The older snapshot lacks the renamed article: no hit for it. */
	assert_int_equal(
	    search_query(archive_search(s1), "coffee", 6, 1, &r), SEARCH_OK);
	assert_int_equal(r.nids, 1);
	assert_string_equal(r.paths[0], "/news/cafe2");
	assert_null(hit(s1, &r, 0));

	/* The same tree indexed whole: the same answers and vocabulary. */
	assert_as_indexed_whole(f, s2, path, path2);
	assert_int_equal(search_remove(path2), 0);

	/* The tree back as setup made it. */
	assert_int_equal(
	    rename(b, strcat(strcpy(a, f->root), "/news/cafe.txt")), 0);
	assert_int_equal(
	    puts_file(f->root, "news/title-hit.txt", TITLE_HIT), 0);
	assert_int_equal(
	    unlink(strcat(strcpy(a, f->root), "/news/zebra.txt")), 0);
	snapshot_release(s0);
	snapshot_release(s1);
	snapshot_release(s2);
	search_free(se);
	assert_int_equal(search_remove(path), 0);
	f->snap = keep;
}

/* A file that is not a usable index: refused, and why. */
static void
test_damaged(void **state)
{
	struct fixture *f = *state;
	struct search *se;
	char path[128], other[160];
	const char *why;
	bool damaged;
	struct stat st;
	sqlite3 *db;
	int fd;

	snprintf(path, sizeof(path), "%s.bad.db", f->root);
	assert_non_null(se = search_open(path, &why, &damaged));
	set_search(f, se);
	snapshot_release(load_synced(f));
	set_search(f, NULL);
	search_free(se);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	/* Cut in half. */
	assert_int_equal(truncate(path, st.st_size / 2), 0);
	assert_null(se = search_open(path, &why, &damaged));
	assert_true(damaged);
	assert_string_equal(why, "cut short");
	/* Garbage. */
	assert_int_equal(search_remove(path), 0);
	assert_int_equal(puts_file("/", path + 1,
	                     "not a database at all, "
	                     "but long enough to be "
	                     "read as one's header: "
	                     "100 bytes and more...."),
	    0);
	assert_null(se = search_open(path, &why, &damaged));
	assert_true(damaged);
	assert_string_equal(why, "not an SQLite database");
	/* An older version's. */
	assert_int_equal(search_remove(path), 0);
	assert_non_null(se = search_open(path, &why, &damaged));
	search_free(se);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(db, "PRAGMA user_version = 2", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	assert_null(se = search_open(path, &why, &damaged));
	assert_true(damaged);
	assert_string_equal(why, "made by another version of serai");
	/* Removed, a new one opens. */
	assert_int_equal(search_remove(path), 0);
	assert_non_null(se = search_open(path, &why, &damaged));
	search_free(se);

	/* A symbolic link and a FIFO: refused, left alone. */
	snprintf(other, sizeof(other), "%s.target", path);
	assert_int_equal(rename(path, other), 0);
	assert_int_equal(symlink(other, path), 0);
	assert_null(se = search_open(path, &why, &damaged));
	assert_false(damaged);
	assert_string_equal(why, "a symbolic link");
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(unlink(path), 0);
	assert_int_equal(search_remove(other), 0);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_null(se = search_open(path, &why, &damaged));
	assert_false(damaged);
	assert_string_equal(why, "not a regular file");
	assert_int_equal(unlink(path), 0);
	(void)fd;
}

static void
test_gemini(void **state)
{
	static const struct url_expect ex = {
	    "localhost", "127.0.0.1", 1965, 0, NULL, 0};
	struct fixture *f = *state;
	struct reply r;
	char line[512];

#define GEMINI(path)                                                           \
	do {                                                                   \
		reply_init(&r);                                                \
		snprintf(line, sizeof(line), "gemini://localhost%s", path);    \
		gemini_respond(&ex, f->snap, line, strlen(line), &r);          \
		buf_addc(&r.dyn, '\0');                                        \
	} while (0)

	GEMINI("/search");
	assert_int_equal(r.status, 10);
	reply_free(&r);
	GEMINI("/search?%22belt%20and%20road%22");
	assert_int_equal(r.status, 20);
	assert_non_null(strstr(r.dyn.p, "# Search: \"belt and road\"\n"));
	assert_non_null(strstr(r.dyn.p, "=> /news/beijing-declaration "));
	reply_free(&r);
	GEMINI("/search/2?alpine1*");
	assert_int_equal(r.status, 20);
	assert_non_null(strstr(r.dyn.p, "116 hits, page 2 of 12.\n"));
	assert_non_null(strstr(r.dyn.p, "=> /search?alpine1* Previous page\n"));
	assert_non_null(strstr(r.dyn.p, "=> /search/3?alpine1* Next page\n"));
	reply_free(&r);
	GEMINI("/search?alpin*");
	assert_int_equal(r.status, 20);
	assert_non_null(strstr(r.dyn.p, "Over 1000 hits, newest first"));
	assert_non_null(strstr(r.dyn.p,
	    "\n=> /filler/f1004 2004-01-01 Filler "
	    "1004\nfiller: alpha1004 alpine1004"));
	reply_free(&r);
	GEMINI("/search/0?x");
	assert_int_equal(r.status, 51);
	reply_free(&r);
	GEMINI("/search?%0A%23%20x%0D");
	assert_int_equal(r.status, 20);
	assert_non_null(strstr(r.dyn.p, "# Search:  # x \n"));
	reply_free(&r);
#undef GEMINI
}

static void
test_gopher(void **state)
{
	static const struct gopher_ctx g = {"gopher.example", 7070, 70};
	static const char *const reqs[] = {
	    "/search\tbeijing", "/search?beijing", "search\tbeijing\t+"};
	struct fixture *f = *state;
	struct reply r;

	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		reply_init(&r);
		gopher_respond(&g, f->snap, reqs[i], strlen(reqs[i]), &r);
		buf_addc(&r.dyn, '\0');
		assert_int_equal(r.status, '1');
		assert_non_null(strstr(r.dyn.p,
		    "\t/news/beijing-declaration\tgopher.example\t7070\r\n"));
		assert_string_equal(r.dyn.p + r.dyn.len - 4, ".\r\n");
		reply_free(&r);
	}
	reply_init(&r);
	gopher_respond(&g, f->snap, "/search", 7, &r);
	assert_int_equal(r.status, '3');
	reply_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_word),
	    cmocka_unit_test(test_accents),
	    cmocka_unit_test(test_prefix_phrase),
	    cmocka_unit_test(test_chinese),
	    cmocka_unit_test(test_snippet),
	    cmocka_unit_test(test_ranking),
	    cmocka_unit_test(test_sanitiser),
	    cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_prefix_bounds),
	    cmocka_unit_test(test_snippet_scan_is_bounded),
	    cmocka_unit_test(test_digest),
	    cmocka_unit_test(test_index_later),
	    cmocka_unit_test(test_incremental),
	    cmocka_unit_test(test_delta_sync),
	    cmocka_unit_test(test_damaged),
	    cmocka_unit_test(test_gemini),
	    cmocka_unit_test(test_gopher),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
