/*
 * Incremental reloads: an unchanged article's parsed text and an
 * unchanged section's pages are shared with the replaced snapshot (by
 * address), and whatever changed, every page of the reloaded snapshot is
 * byte for byte what a full load of the same tree makes.  archive.c is
 * built into this test with ARCHIVE_RACY_NS and _COARSE_NS at 0 (see
 * tests/meson.build),
 * so files written just before a load may be shared by the next one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "article.h"
#include "pack.h"
#include "render.h"
#include "seed.h"
#include "util.h"

#if ARCHIVE_RACY_NS != 0 || ARCHIVE_RACY_COARSE_NS != 0
#error "built with the wrong margin"
#endif

static struct archive_opts opts;

static void
set_opts(const char *root)
{
	memset(&opts, 0, sizeof(opts));
	opts.root = root;
	opts.lang = "en";
	opts.hostname = "localhost";
	opts.gopher_port = 70;
	opts.gemini_port = 1965;
	opts.wrap = 70;
	opts.menu_width = 67;
	opts.index = ARCHIVE_INDEX_NONE;
}

static struct snapshot *
reload(const struct snapshot *old)
{
	const char *why = NULL;
	struct snapshot *s = archive_reload(old, &opts, NULL, &why);

	assert_non_null(s);
	return s;
}

static void
assert_blob_equal(const struct blob *a, const struct blob *b, const char *p)
{
	if (a->len != b->len || memcmp(a->p, b->p, a->len) != 0)
		fail_msg("%s: pages differ:\n%.*s\n---\n%.*s", p, (int)a->len,
		    a->p, (int)b->len, b->p);
}

static void
assert_render_equal(struct buf *a, struct buf *b, const char *p)
{
	assert_false(buf_failed(a));
	assert_false(buf_failed(b));
	if (a->len != b->len || memcmp(a->p, b->p, a->len) != 0)
		fail_msg("%s: article pages differ:\n%.*s\n---\n%.*s", p,
		    (int)a->len, a->p, (int)b->len, b->p);
	buf_free(a);
	buf_free(b);
}

/*
 * The nodes at the ends of routes x and y, and everything below them:
 * the same names in the same order, the same pages.  The routes grow and
 * shrink back as the walk goes down.
 */
static void
assert_same_tree(const struct archive_opts *ox, struct route *x,
    const struct archive_opts *oy, struct route *y)
{
	const struct node *n = x->at[x->n - 1], *m = y->at[y->n - 1];
	const struct section *s = n->sec, *t = m->sec;
	struct buf a, b;

	assert_string_equal(n->path, m->path);
	assert_int_equal(n->kind, m->kind);
	assert_string_equal(route_lang(x), route_lang(y));
	if (n->kind == NODE_ARTICLE) {
		buf_init(&a);
		buf_init(&b);
		render_gemini_article(&a, x, n->art, RENDER_LIVE);
		render_gemini_article(&b, y, m->art, RENDER_LIVE);
		assert_render_equal(&a, &b, n->path);
		buf_init(&a);
		buf_init(&b);
		render_gopher_article(&a, ox, x, n->art);
		render_gopher_article(&b, oy, y, m->art);
		assert_render_equal(&a, &b, n->path);
		return;
	}
	assert_blob_equal(&s->gemini, &t->gemini, n->path);
	assert_blob_equal(&s->gopher, &t->gopher, n->path);
	assert_blob_equal(&s->feed, &t->feed, n->path);
	assert_int_equal(s->nsections, t->nsections);
	assert_int_equal(s->narticles, t->narticles);
	assert_int_equal(s->subsections, t->subsections);
	assert_int_equal(s->subarticles, t->subarticles);
	for (size_t i = 0; i < s->narticles; i++)
		assert_string_equal(s->articles[i]->path, t->articles[i]->path);
	for (size_t i = 0; i < s->nsections + s->narticles; i++) {
		x->at[x->n++] = s->byname[i];
		y->at[y->n++] = t->byname[i];
		assert_same_tree(ox, x, oy, y);
		x->n--;
		y->n--;
	}
}

/* Every page of r is fresh's, in both protocols, feeds included. */
static void
assert_same_snapshot(const struct snapshot *r, const struct snapshot *f)
{
	struct route x = {{r->root}, 1}, y = {{f->root}, 1};

	assert_int_equal(r->narticles, f->narticles);
	assert_int_equal(r->nsections, f->nsections);
	assert_int_equal(r->nskipped, f->nskipped);
	assert_int_equal(r->nwarnings, f->nwarnings);
	assert_same_tree(&r->opts, &x, &f->opts, &y);
}

/* Every section's feed under a is b's, by address. */
static void
assert_feeds_shared(const struct node *a, const struct node *b)
{
	assert_ptr_equal(a->sec->feed.p, b->sec->feed.p);
	assert_int_equal(a->sec->nsections, b->sec->nsections);
	for (size_t i = 0; i < a->sec->nsections; i++)
		assert_feeds_shared(a->sec->sections[i], b->sec->sections[i]);
}

/* Every page of the subtree of r's node, appended to out. */
static void
dump_tree(const struct archive_opts *o, struct route *r, struct buf *out)
{
	const struct node *n = r->at[r->n - 1];
	const struct section *s = n->sec;

	buf_printf(out, "== %s\n", n->path);
	if (n->kind == NODE_ARTICLE) {
		render_gemini_article(out, r, n->art, RENDER_LIVE);
		render_gopher_article(out, o, r, n->art);
		return;
	}
	buf_add(out, s->gemini.p, s->gemini.len);
	buf_add(out, s->gopher.p, s->gopher.len);
	buf_add(out, s->feed.p, s->feed.len);
	for (size_t i = 0; i < s->nsections + s->narticles; i++) {
		r->at[r->n++] = s->byname[i];
		dump_tree(o, r, out);
		r->n--;
	}
}

/* Every page of a snapshot, as one string to free. */
static char *
dump(const struct snapshot *s)
{
	struct route r = {{s->root}, 1};
	struct buf b;
	char *p;

	buf_init(&b);
	dump_tree(&s->opts, &r, &b);
	assert_false(buf_failed(&b));
	assert_non_null(p = buf_release(&b, NULL));
	return p;
}

/*
 * The reload of old against a full load of the tree now; returns the
 * reload, old released.
 */
static struct snapshot *
check_reload(struct snapshot *old)
{
	const char *why = NULL;
	struct snapshot *r = reload(old), *f = archive_load(&opts, &why);

	assert_non_null(f);
	assert_same_snapshot(r, f);
	snapshot_release(f);
	snapshot_release(old);
	return r;
}

static const struct node *
get(const struct snapshot *s, const char *path)
{
	const struct node *n = archive_lookup(s, path, strlen(path));

	if (n == NULL)
		fail_msg("%s: not in the snapshot", path);
	return n;
}

static void
article(const char *root, const char *rel, const char *date, const char *t)
{
	char text[512];

	snprintf(text, sizeof(text), "Date: %s\n%s\n\nThe body of %s.\n", date,
	    t, t);
	assert_int_equal(puts_file(root, rel, text), 0);
}

static void
mkdir_in(const char *root, const char *rel)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	assert_int_equal(mkdir(path, 0755), 0);
}

static void
rename_in(const char *root, const char *from, const char *to)
{
	char a[256], b[256];

	snprintf(a, sizeof(a), "%s/%s", root, from);
	snprintf(b, sizeof(b), "%s/%s", root, to);
	assert_int_equal(rename(a, b), 0);
}

static void
unlink_in(const char *root, const char *rel)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	assert_int_equal(unlink(path), 0);
}

/* Two sections and a subsection, a few dated articles in each. */
static void
make_tree(const char *root)
{
	mkdir_in(root, "news");
	mkdir_in(root, "news/world");
	mkdir_in(root, "sport");
	article(root, "news/a.txt", "2020-01-01", "News A");
	article(root, "news/b.txt", "2020-01-02", "News B");
	article(root, "news/world/w.txt", "2020-01-03", "World W");
	article(root, "sport/s.txt", "2020-01-04", "Sport S");
	article(root, "top.txt", "2019-12-31", "Top");
	assert_int_equal(
	    puts_file(root, "sport/section.ini", "[section]\ntitle = Sport\n"),
	    0);
}

/* One article rewritten: only its text is read again, and only the
 * pages from its section up to the home are rendered again. */
static void
test_unchanged_shared_by_address(void **state)
{
	char root[] = "/tmp/serai-test-reload-XXXXXX";
	const struct node *a0, *w0, *a1, *w1;
	struct snapshot *s0, *s1;

	(void)state;
	assert_non_null(mkdtemp(root));
	make_tree(root);
	set_opts(root);
	s0 = reload(NULL);
	article(root, "news/world/w.txt", "2020-01-03", "World W, revised");
	s1 = reload(s0);

	a0 = get(s0, "/news/a");
	a1 = get(s1, "/news/a");
	assert_ptr_equal(a0->art, a1->art);
	assert_ptr_equal(a0->art->paras[0], a1->art->paras[0]);
	assert_ptr_equal(a0->title, a1->title);
	w0 = get(s0, "/news/world/w");
	w1 = get(s1, "/news/world/w");
	assert_ptr_not_equal(w0->art, w1->art);
	assert_string_equal(w1->title, "World W, revised");

	/* Off the path to the root: the very same bytes. */
	assert_ptr_equal(get(s0, "/sport/")->sec->gemini.p,
	    get(s1, "/sport/")->sec->gemini.p);
	assert_ptr_equal(get(s0, "/sport/")->sec->gopher.p,
	    get(s1, "/sport/")->sec->gopher.p);
	assert_ptr_equal(
	    get(s0, "/sport/")->sec->feed.p, get(s1, "/sport/")->sec->feed.p);
	/* On it: rendered again. */
	assert_ptr_not_equal(get(s0, "/news/world/")->sec->gemini.p,
	    get(s1, "/news/world/")->sec->gemini.p);
	assert_ptr_not_equal(
	    get(s0, "/news/")->sec->feed.p, get(s1, "/news/")->sec->feed.p);
	assert_ptr_not_equal(
	    get(s0, "/")->sec->gemini.p, get(s1, "/")->sec->gemini.p);

	/* The old snapshot is untouched: its reply still reads the old. */
	assert_string_equal(w0->title, "World W");
	snapshot_release(s0);
	assert_string_equal(a1->art->title, "News A");
	s1 = check_reload(s1);
	snapshot_release(s1);
	remove_tree(root);
}

/* Each kind of change, then a reload compared with a full load. */
static void
test_every_change_as_a_full_load(void **state)
{
	char root[] = "/tmp/serai-test-reload-XXXXXX", dir[64];
	struct snapshot *s, *r;

	(void)state;
	assert_non_null(mkdtemp(root));
	make_tree(root);
	set_opts(root);
	s = reload(NULL);
	s = check_reload(s); /* nothing changed */
	r = reload(s);
	assert_feeds_shared(s->root, r->root);
	snapshot_release(r);

	article(root, "news/b.txt", "2021-06-01", "News B moved up");
	s = check_reload(s); /* a change that reorders the section */
	article(root, "sport/new.txt", "2022-01-01", "Sport new");
	s = check_reload(s); /* an addition, now the newest */
	unlink_in(root, "news/a.txt");
	s = check_reload(s); /* a removal */
	rename_in(root, "sport/s.txt", "sport/renamed.txt");
	s = check_reload(s); /* a rename */
	mkdir_in(root, "arts");
	article(root, "arts/x.txt", "2018-05-05", "Arts X");
	s = check_reload(s); /* a section added */
	assert_non_null(get(s, "/arts/x"));
	remove_tree(root); /* and the whole tree again, smaller */
	assert_int_equal(mkdir(root, 0700), 0);
	make_tree(root);
	unlink_in(root, "news/world/w.txt");
	snprintf(dir, sizeof(dir), "%s/news/world", root);
	assert_int_equal(rmdir(dir), 0);
	s = check_reload(s); /* a section removed */
	assert_int_equal(puts_file(root, "sport/section.ini",
	                     "[section]\ntitle = Games\nlang = fr\n"),
	    0);
	s = check_reload(s); /* section.ini edited: title and language */
	{
		struct route rt;

		assert_non_null(archive_route(s, "/sport/s", 8, &rt));
		assert_string_equal(route_lang(&rt), "fr");
	}
	mkdir_in(root, "news/world");
	article(root, "news/world/w.txt", "2020-01-03", "World W");
	s = check_reload(s);
	assert_int_equal(puts_file(root, "news/section.ini",
	                     "[section]\ntitle = Headlines\n"),
	    0);
	s = check_reload(s); /* a title shown by the sections below */
	assert_int_equal(
	    puts_file(root, "section.ini", "[section]\ntitle = The Archive\n"),
	    0);
	s = check_reload(s); /* the home's title, in every feed */
	rename_in(root, "news", "znews");
	s = check_reload(s); /* a section renamed */
	assert_null(archive_lookup(s, "/news/", 6));
	snapshot_release(s);
	remove_tree(root);
}

static struct snapshot *
reload_changed(const struct snapshot *old, const char *dir)
{
	char *dirs[1] = {(char *)dir};
	struct archive_changes c = {dirs, dir != NULL};
	const char *why = NULL;
	struct snapshot *s = archive_reload(old, &opts, &c, &why);

	assert_non_null(s);
	return s;
}

/*
 * With the watch's changes: a directory not named there and whose own
 * stamp has not moved is taken as it was, unlisted and unstat'ed; one
 * named is listed and its files compared, so a file rewritten in place
 * is read; and one whose entries changed shows it by its stamp.
 */
static void
test_changes_skip_unchanged_directories(void **state)
{
	char root[] = "/tmp/serai-test-reload-XXXXXX";
	const char *why = NULL;
	struct snapshot *s0, *s1, *f;

	(void)state;
	assert_non_null(mkdtemp(root));
	make_tree(root);
	set_opts(root);
	s0 = reload(NULL);
	assert_int_equal(s0->nlisted, 4);
	/* In place: the directory's stamp does not move. */
	article(root, "news/a.txt", "2020-01-01", "News A, rewritten");
	s1 = reload_changed(s0, NULL);
	assert_int_equal(s1->nlisted, 0);
	assert_int_equal(s1->nparsed, 0);
	assert_string_equal(get(s1, "/news/a")->title, "News A");
	assert_ptr_equal(
	    get(s0, "/news/")->sec->listing, get(s1, "/news/")->sec->listing);
	snapshot_release(s0);

	s0 = reload_changed(s1, "/news/");
	snapshot_release(s1);
	assert_int_equal(s0->nlisted, 1);
	assert_int_equal(s0->nparsed, 1);
	assert_string_equal(get(s0, "/news/a")->title, "News A, rewritten");
	f = archive_load(&opts, &why);
	assert_same_snapshot(s0, f);
	snapshot_release(f);

	/* An entry added: the directory's stamp moves, with no event. */
	article(root, "sport/late.txt", "2023-03-03", "Sport late");
	s1 = reload_changed(s0, NULL);
	assert_int_equal(s1->nlisted, 1);
	assert_int_equal(s1->nparsed, 1);
	f = archive_load(&opts, &why);
	assert_same_snapshot(s1, f);
	snapshot_release(f);
	snapshot_release(s0);
	snapshot_release(s1);
	remove_tree(root);
}

/* A reload told that the entries of the directories dirs (sorted) moved. */
static struct snapshot *
reload_dirs(const struct snapshot *old, char **dirs, size_t n)
{
	struct archive_changes c = {dirs, n};
	const char *why = NULL;
	struct snapshot *s = archive_reload(old, &opts, &c, &why);

	assert_non_null(s);
	return s;
}

/* The reload of old against a full load, as check_reload, with dirs. */
static struct snapshot *
check_dirs(struct snapshot *old, char **dirs, size_t n)
{
	const char *why = NULL;
	struct snapshot *r = reload_dirs(old, dirs, n),
	                *f = archive_load(&opts, &why);

	assert_non_null(f);
	assert_same_snapshot(r, f);
	snapshot_release(f);
	snapshot_release(old);
	return r;
}

/*
 * A publish in one section, as the watch reports it: every section off
 * the way to the root is the old snapshot's node, subtree and all, and
 * every unchanged article of the changed section is the old node too;
 * only the sections from the change up to the root are new.  The old
 * snapshot, held by a reply after everyone else let it go, still serves
 * every page as it did; the new one, once the old is gone, serves what
 * a full load does (ASan and valgrind see any node freed too early).
 */
static void
test_publish_shares_subtrees(void **state)
{
	char root[] = "/tmp/serai-test-reload-XXXXXX";
	char *news[] = {"/news/"}, *sport[] = {"/sport/"};
	const char *why = NULL;
	struct snapshot *s0, *s1, *s2, *f;
	char *before, *after;

	(void)state;
	assert_non_null(mkdtemp(root));
	make_tree(root);
	set_opts(root);
	s0 = reload(NULL);
	before = dump(s0);

	article(root, "news/c.txt", "2021-01-01", "News C");
	s1 = reload_dirs(s0, news, 1);
	/* A sibling, and a subsection of the changed section: whole. */
	assert_ptr_equal(get(s0, "/sport/"), get(s1, "/sport/"));
	assert_ptr_equal(get(s0, "/sport/s"), get(s1, "/sport/s"));
	assert_ptr_equal(get(s0, "/news/world/"), get(s1, "/news/world/"));
	assert_ptr_equal(get(s0, "/news/world/w"), get(s1, "/news/world/w"));
	assert_int_equal(s1->ntaken, 2);
	assert_int_equal(s1->nparsed, 1);
	assert_int_equal(s1->nlisted, 1); /* /news/; the root's as old's */
	/* In the changed section: the unchanged articles' very nodes. */
	assert_ptr_equal(get(s0, "/news/a"), get(s1, "/news/a"));
	assert_ptr_equal(get(s0, "/news/b"), get(s1, "/news/b"));
	assert_ptr_equal(get(s0, "/top"), get(s1, "/top"));
	/* On the way up: new. */
	assert_ptr_not_equal(get(s0, "/news/"), get(s1, "/news/"));
	assert_ptr_not_equal(s0->root, s1->root);
	assert_int_equal(s1->narticles, s0->narticles + 1);
	assert_int_equal(s1->nsections, s0->nsections);

	/* A reply holds s0; the server lets it go. */
	snapshot_ref(s0);
	snapshot_release(s0);
	after = dump(s0);
	assert_string_equal(before, after);
	free(before);
	free(after);
	snapshot_release(s0); /* the reply's: s1 alone holds what it shares */
	f = archive_load(&opts, &why);
	assert_non_null(f);
	assert_same_snapshot(s1, f);
	snapshot_release(f);

	/* A removal and a rename in another section, and back again. */
	before = dump(s1);
	unlink_in(root, "sport/s.txt");
	article(root, "sport/t.txt", "2020-02-02", "Sport T");
	s2 = check_dirs(snapshot_ref(s1), sport, 1);
	assert_ptr_equal(get(s1, "/news/"), get(s2, "/news/"));
	assert_null(archive_lookup(s2, "/sport/s", 8));
	after = dump(s1);
	assert_string_equal(before, after);
	free(before);
	free(after);
	snapshot_release(s1);
	snapshot_release(s2);
	remove_tree(root);
}

/*
 * Each kind of change as the watch reports it (the directories whose
 * entries moved), each reload compared with a full load: what is taken
 * whole must be what a full load makes, including what a section shows
 * from above it (the title of the section above, the home's title).
 */
static void
test_every_change_with_the_watch(void **state)
{
	char root[] = "/tmp/serai-test-reload-XXXXXX", dir[64];
	char *top[] = {"/"}, *news[] = {"/news/"}, *sport[] = {"/sport/"},
	     *arts[] = {"/", "/arts/"}, *world[] = {"/news/", "/news/world/"},
	     *renamed[] = {"/", "/news/", "/znews/"},
	     *deep[] = {"/news/world/", "/news/world/deep/"};
	struct snapshot *s;

	(void)state;
	assert_non_null(mkdtemp(root));
	make_tree(root);
	set_opts(root);
	s = reload(NULL);
	s = check_dirs(s, NULL, 0); /* nothing changed */
	assert_int_equal(s->ntaken, 2);
	article(root, "news/b.txt", "2021-06-01", "News B moved up");
	s = check_dirs(s, news, 1); /* a change that reorders the section */
	article(root, "sport/new.txt", "2022-01-01", "Sport new");
	s = check_dirs(s, sport, 1); /* an addition, now the newest */
	unlink_in(root, "news/a.txt");
	s = check_dirs(s, news, 1); /* a removal */
	rename_in(root, "sport/s.txt", "sport/renamed.txt");
	s = check_dirs(s, sport, 1); /* a rename */
	mkdir_in(root, "arts");
	article(root, "arts/x.txt", "2018-05-05", "Arts X");
	s = check_dirs(s, arts, 2); /* a section added */
	assert_non_null(get(s, "/arts/x"));
	unlink_in(root, "news/world/w.txt");
	snprintf(dir, sizeof(dir), "%s/news/world", root);
	assert_int_equal(rmdir(dir), 0);
	s = check_dirs(s, world, 2); /* a section removed */
	assert_int_equal(puts_file(root, "sport/section.ini",
	                     "[section]\ntitle = Games\nlang = fr\n"),
	    0);
	s = check_dirs(s, sport, 1); /* section.ini: title and language */
	mkdir_in(root, "news/world");
	article(root, "news/world/w.txt", "2020-01-03", "World W");
	s = check_dirs(s, world, 2);
	assert_int_equal(puts_file(root, "news/section.ini",
	                     "[section]\ntitle = Headlines\nlang = de\n"),
	    0);
	/* Shown by /news/world/ below, which nothing else changed. */
	s = check_dirs(s, news, 1);
	assert_int_equal(
	    puts_file(root, "section.ini", "[section]\ntitle = The Archive\n"),
	    0);
	s = check_dirs(s, top, 1); /* the home's title, in every feed */
	assert_int_equal(s->ntaken, 0);
	/*
	 * A title two levels up, which only an article's Location: shows
	 * (checked against every section on the way): the subtree is walked
	 * again, so the mismatch is reported as a full load reports it.
	 */
	mkdir_in(root, "news/world/deep");
	assert_int_equal(puts_file(root, "news/world/deep/d.txt",
	                     "Location: Home > Headlines > world > deep\n"
	                     "Date: 2020-05-05\nDeep D\n\nThe body.\n"),
	    0);
	s = check_dirs(s, deep, 2);
	assert_int_equal(s->nwarnings, 0);
	assert_int_equal(puts_file(root, "news/section.ini",
	                     "[section]\ntitle = Top stories\nlang = de\n"),
	    0);
	s = check_dirs(s, news, 1);
	assert_int_equal(s->nwarnings, 1);
	rename_in(root, "news", "znews");
	s = check_dirs(s, renamed, 3); /* a section renamed */
	assert_null(archive_lookup(s, "/news/", 6));
	snapshot_release(s);
	remove_tree(root);
}

/* Mappings of the file with inode ino; with p, only those holding p. */
static size_t
maps_of(ino_t ino, const void *p)
{
	char line[512];
	size_t n = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long lo, hi, off, inode;
		char perms[8], dev[16];

		if (sscanf(line, "%lx-%lx %7s %lx %15s %lu", &lo, &hi, perms,
		        &off, dev, &inode) != 6 ||
		    inode != (unsigned long)ino)
			continue;
		if (p == NULL || ((uintptr_t)p >= lo && (uintptr_t)p < hi))
			n++;
	}
	fclose(f);
	return n;
}

/*
 * Article texts live in the pack, mapped, and are served as from memory;
 * a segment goes (unmapped, its blocks punched out) with its last text.
 */
static void
test_texts_packed_and_released(void **state)
{
	char root[] = "/tmp/serai-test-reload-XXXXXX";
	const char *why = NULL;
	struct snapshot *s0, *s1, *s2, *f;
	const struct node *a;
	struct stat st;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(root));
	make_tree(root);
	set_opts(root);
	assert_int_not_equal(fd = open(root, O_TMPFILE | O_RDWR, 0600), -1);
	assert_int_equal(fstat(fd, &st), 0);
	archive_set_pack(fd);
	s0 = reload(NULL);
	a = get(s0, "/news/a");
	assert_int_equal(maps_of(st.st_ino, a->art->title), 1);
	assert_int_equal(maps_of(st.st_ino, a->art->paras[0]), 1);
	assert_int_equal(maps_of(st.st_ino, a->art->paras), 0);
	assert_int_equal(maps_of(st.st_ino, NULL), 1);
	/* The same pages as texts kept in memory. */
	archive_set_pack(-1);
	f = archive_load(&opts, &why);
	archive_set_pack(fd);
	assert_non_null(f);
	assert_int_equal(maps_of(st.st_ino, get(f, "/news/a")->art->title), 0);
	assert_same_snapshot(s0, f);
	snapshot_release(f);

	/* One text more: one segment more; the old one still serves. */
	article(root, "news/a.txt", "2020-01-01", "News A, second");
	s1 = reload(s0);
	assert_int_equal(maps_of(st.st_ino, NULL), 2);
	assert_int_equal(maps_of(st.st_ino, get(s1, "/news/a")->art->title), 1);
	snapshot_release(s0);
	assert_int_equal(maps_of(st.st_ino, NULL), 2);

	/* Every text new: both old segments go with s1. */
	article(root, "news/a.txt", "2020-01-01", "News A, third");
	article(root, "news/b.txt", "2020-01-02", "News B, second");
	article(root, "news/world/w.txt", "2020-01-03", "World W, second");
	article(root, "sport/s.txt", "2020-01-04", "Sport S, second");
	article(root, "top.txt", "2019-12-31", "Top, second");
	s2 = reload(s1);
	assert_int_equal(s2->nparsed, 5);
	snapshot_release(s1);
	assert_int_equal(maps_of(st.st_ino, NULL), 1);
	f = archive_load(&opts, &why);
	assert_non_null(f);
	assert_same_snapshot(s2, f);
	snapshot_release(f);
	snapshot_release(s2);
	assert_int_equal(maps_of(st.st_ino, NULL), 0);
	/* The file keeps its length, not its blocks. */
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(st.st_size > 0);
	assert_int_equal(st.st_blocks, 0);
	archive_set_pack(-1);
	close(fd);
	remove_tree(root);
}

/*
 * Enough articles, in enough directories, that the loader's threads each
 * take several batches and open several directories: every text comes
 * out of their slabs the same whether it is packed, kept in memory, or
 * packed into a file that refuses it (then copied out of the slabs).
 */
#define MANY_ARTICLES 600
#define MANY_DIRS 7

static void
many_articles(const char *root)
{
	char rel[64], date[16], title[64];

	for (int d = 0; d < MANY_DIRS; d++) {
		snprintf(rel, sizeof(rel), "d%d", d);
		mkdir_in(root, rel);
	}
	for (int i = 0; i < MANY_ARTICLES; i++) {
		snprintf(rel, sizeof(rel), "d%d/a%03d.txt", i % MANY_DIRS, i);
		snprintf(date, sizeof(date), "20%02d-%02d-%02d", 10 + i % 10,
		    1 + i % 12, 1 + i % 28);
		snprintf(title, sizeof(title), "Article %d", i);
		article(root, rel, date, title);
	}
}

static void
test_texts_from_slabs(void **state)
{
	char root[] = "/tmp/serai-test-reload-XXXXXX";
	char ro[] = "/tmp/serai-test-pack-XXXXXX";
	const char *why = NULL;
	struct snapshot *mem, *packed, *refused;
	struct stat st;
	int fd, rofd;

	(void)state;
	assert_non_null(mkdtemp(root));
	many_articles(root);
	set_opts(root);
	archive_set_pack(-1);
	assert_non_null(mem = archive_load(&opts, &why));
	assert_int_equal(mem->narticles, MANY_ARTICLES);

	assert_int_not_equal(fd = open(root, O_TMPFILE | O_RDWR, 0600), -1);
	assert_int_equal(fstat(fd, &st), 0);
	archive_set_pack(fd);
	assert_non_null(packed = archive_load(&opts, &why));
	assert_same_snapshot(packed, mem);
	for (int i = 0; i < MANY_ARTICLES; i++) {
		char path[64];

		snprintf(path, sizeof(path), "/d%d/a%03d", i % MANY_DIRS, i);
		assert_int_equal(
		    maps_of(st.st_ino, get(packed, path)->art->title), 1);
	}

	/* A pack that cannot be written: the texts stay in memory. */
	assert_int_not_equal(rofd = mkstemp(ro), -1);
	close(rofd);
	assert_int_not_equal(rofd = open(ro, O_RDONLY), -1);
	assert_int_equal(unlink(ro), 0);
	archive_set_pack(rofd);
	assert_non_null(refused = archive_load(&opts, &why));
	archive_set_pack(-1);
	assert_same_snapshot(refused, mem);
	assert_int_equal(maps_of(st.st_ino, NULL), 1);

	snapshot_release(refused);
	snapshot_release(packed);
	snapshot_release(mem);
	assert_int_equal(maps_of(st.st_ino, NULL), 0);
	close(rofd);
	close(fd);
	remove_tree(root);
}

/*
 * A start with a persistent pack (warm's) and no unnamed one: the
 * threads write the texts into articles.pack as they parse them, and
 * the next start takes them from it.  When the pack refuses the writes,
 * what the threads parsed is read again, into slabs, and every text is
 * copied out of them (no pointer left into one once they are unmapped):
 * the same pages.
 */
static void
test_persistent_pack_from_slabs(void **state)
{
	char root[] = "/tmp/serai-test-reload-XXXXXX";
	char sd[] = "/tmp/serai-test-state-XXXXXX";
	char path[PATH_MAX], pack[PATH_MAX];
	const char *why = NULL;
	struct snapshot *mem, *cold, *warm, *refused;
	struct archive_store store;
	struct stat st;
	int rofd;

	(void)state;
	assert_non_null(mkdtemp(root));
	assert_non_null(mkdtemp(sd));
	many_articles(root);
	set_opts(root);
	archive_set_pack(-1);
	assert_non_null(mem = archive_load(&opts, &why));
	archive_store_init(&store, NULL);
	opts.store = &store;

	snprintf(pack, sizeof(pack), "%s/" PACK_FILE, sd);
	assert_non_null(store.pack = pack_open(sd, root, opts.hostname));
	assert_non_null(cold = archive_load(&opts, &why));
	assert_int_equal(cold->nparsed, MANY_ARTICLES);
	assert_same_snapshot(cold, mem);
	/* Its inode once written: a first write may compact into a new one. */
	assert_int_equal(stat(pack, &st), 0);
	for (int i = 0; i < MANY_ARTICLES; i++) {
		snprintf(path, sizeof(path), "/d%d/a%03d", i % MANY_DIRS, i);
		assert_int_equal(
		    maps_of(st.st_ino, get(cold, path)->art->title), 1);
	}
	/* Its mapping holds the file, and so its lock, until it goes. */
	snapshot_release(cold);
	pack_close(store.pack);

	assert_non_null(store.pack = pack_open(sd, root, opts.hostname));
	assert_non_null(warm = archive_load(&opts, &why));
	assert_int_equal(warm->ncached, MANY_ARTICLES);
	assert_int_equal(warm->nparsed, 0);
	assert_same_snapshot(warm, mem);
	snapshot_release(warm);
	pack_close(store.pack);

	/* Emptied (another host), then written through a read-only fd. */
	assert_non_null(store.pack = pack_open(sd, root, "elsewhere"));
	assert_int_not_equal(rofd = open(pack, O_RDONLY | O_CLOEXEC), -1);
	assert_int_not_equal(dup2(rofd, store.pack->fd), -1);
	close(rofd);
	assert_non_null(refused = archive_load(&opts, &why));
	assert_int_equal(refused->nparsed, MANY_ARTICLES);
	assert_same_snapshot(refused, mem);
	assert_int_equal(stat(pack, &st), 0);
	assert_int_equal(maps_of(st.st_ino, NULL), 0);
	pack_close(store.pack);
	opts.store = NULL;

	snapshot_release(refused);
	snapshot_release(mem);
	archive_store_close(&store);
	assert_int_equal(unlink(pack), 0);
	remove_tree(sd); /* and the saved trees' files */
	remove_tree(root);
}

/*
 * A start-up load of this many articles finishes its sections in threads
 * (sorts, checks and pages in any order); a reload, whose old snapshot
 * has nothing to share, finishes them one by one, each after its
 * subsections.  The same pages, counts, skips and warnings, with an
 * article clashing with a section and Location: lines that do not match.
 */
static void
test_finish_threads(void **state)
{
	char root[] = "/tmp/serai-test-reload-XXXXXX";
	char sd[] = "/tmp/serai-test-state-XXXXXX";
	const char *why = NULL;
	struct snapshot *old, *threads, *serial, *packed;
	struct archive_store store;

	(void)state;
	assert_non_null(mkdtemp(root));
	article(root, "lone.txt", "2020-01-01", "Lone");
	set_opts(root);
	archive_set_pack(-1);
	assert_non_null(old = archive_load(&opts, &why));
	many_articles(root);
	article(root, "d3.txt", "2021-02-02", "Clash");
	for (int d = 0; d < MANY_DIRS; d += 2) {
		char rel[64];

		snprintf(rel, sizeof(rel), "d%d/lost.txt", d);
		assert_int_equal(puts_file(root, rel,
		                     "Location: Home > Elsewhere\n"
		                     "Date: 2019-03-03\nLost\n\nThe body.\n"),
		    0);
	}
	assert_non_null(threads = archive_load(&opts, &why));
	assert_non_null(serial = archive_reload(old, &opts, NULL, &why));
	assert_int_equal(threads->narticles, MANY_ARTICLES + 1 + 4);
	assert_int_equal(threads->nskipped, 1);
	assert_int_equal(threads->nwarnings, 4);
	assert_same_snapshot(threads, serial);

	/*
	 * A cold start with a persistent pack: the catalog's thread reads
	 * every text, the clashing one's too, while the sections are
	 * finished (which drops that one): the same again.
	 */
	assert_non_null(mkdtemp(sd));
	archive_store_init(&store, NULL);
	opts.store = &store;
	assert_non_null(store.pack = pack_open(sd, root, opts.hostname));
	assert_non_null(packed = archive_load(&opts, &why));
	assert_int_equal(packed->nparsed, MANY_ARTICLES + 1 + 4 + 1);
	assert_same_snapshot(packed, serial);
	snapshot_release(packed);
	pack_close(store.pack);
	opts.store = NULL;
	archive_store_close(&store);
	remove_tree(sd);

	snapshot_release(serial);
	snapshot_release(threads);
	snapshot_release(old);
	remove_tree(root);
}

/*
 * The threads' writes to the pack fail part way (a file size limit, as
 * on a full disk): some texts are in the file, others not, and none in
 * a catalog.  Every text is read again, and the pages are a full load's;
 * when even the first write fails, no text stays mapped from the pack.
 */
static void
test_persistent_pack_cut_short(void **state)
{
	char root[] = "/tmp/serai-test-reload-XXXXXX";
	char sd[] = "/tmp/serai-test-state-XXXXXX";
	char pack[PATH_MAX];
	/*
	 * 64 bytes past the first chunk (1 MiB, PACK_WRITE_CHUNK): when a
	 * second thread wrote texts, its chunk fails and they are all read
	 * again, then fit once compacted into a new file; when one thread
	 * wrote them all, the catalog fits after them.  Either way the next
	 * start takes them from the pack.  Then 64 bytes past the header:
	 * the first write fails, the catalog too, and the next start reads
	 * them all.
	 */
	const rlim_t limits[] = {
	    PACK_HEAD_BYTES + 1024 * 1024 + 64, PACK_HEAD_BYTES + 64};
	const size_t cached[] = {MANY_ARTICLES, 0};
	const char *why = NULL;
	struct snapshot *mem, *cut, *next;
	struct archive_store store;
	struct rlimit was, rl;
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(root));
	assert_non_null(mkdtemp(sd));
	many_articles(root);
	set_opts(root);
	archive_set_pack(-1);
	assert_non_null(mem = archive_load(&opts, &why));
	archive_store_init(&store, NULL);
	opts.store = &store;
	snprintf(pack, sizeof(pack), "%s/" PACK_FILE, sd);
	/* EFBIG, not a signal that would end the test (as serai's main). */
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &was), 0);
	for (size_t k = 0; k < sizeof(limits) / sizeof(limits[0]); k++) {
		(void)unlink(pack);
		assert_non_null(
		    store.pack = pack_open(sd, root, opts.hostname));
		rl = was;
		rl.rlim_cur = limits[k];
		assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
		cut = archive_load(&opts, &why);
		assert_int_equal(setrlimit(RLIMIT_FSIZE, &was), 0);
		assert_non_null(cut);
		assert_int_equal(cut->nparsed, MANY_ARTICLES);
		assert_same_snapshot(cut, mem);
		assert_int_equal(stat(pack, &st), 0);
		if (k == 1)
			assert_int_equal(maps_of(st.st_ino, NULL), 0);
		snapshot_release(cut);
		pack_close(store.pack);

		assert_non_null(
		    store.pack = pack_open(sd, root, opts.hostname));
		assert_non_null(next = archive_load(&opts, &why));
		assert_int_equal(next->ncached, cached[k]);
		assert_int_equal(next->nparsed, MANY_ARTICLES - cached[k]);
		assert_same_snapshot(next, mem);
		snapshot_release(next);
		pack_close(store.pack);
	}
	signal(SIGXFSZ, SIG_DFL);
	opts.store = NULL;
	snapshot_release(mem);
	archive_store_close(&store);
	assert_int_equal(unlink(pack), 0);
	remove_tree(sd);
	remove_tree(root);
}

/*
 * A section's order is settled by instants first and by titles only on
 * a tie (archive.c sorts by keys, reading titles for ties alone): ties
 * of one instant written with different offsets, titles equal but for
 * case, titles alike in their first 8 bytes, undated ones, a byte past
 * ASCII.  Every article is found where archive_position (cmp_article)
 * looks, and by name where a slug lists before a shorter one.
 */
static void
test_order_ties(void **state)
{
	static const char *const want[] = {
	    "n", "a", "c", "b", "a-b", "u2", "u5", "u3", "u4", "u1", "u6"};
	char root[] = "/tmp/serai-test-order-XXXXXX";
	const struct section *t;
	struct snapshot *s;

	(void)state;
	assert_non_null(mkdtemp(root));
	mkdir_in(root, "t");
	mkdir_in(root, "t/m");
	article(root, "t/m/x.txt", "2020-01-01", "In m");
	/* 08:00 UTC, three ways; the case of a title does not order it. */
	article(root, "t/b.txt", "2020-01-01T10:00+02:00", "beta");
	article(root, "t/a.txt", "2020-01-01T08:00Z", "Alpha");
	article(root, "t/c.txt", "2020-01-01T09:00+01:00", "alpha");
	article(root, "t/n.txt", "2021-01-01", "Newer");
	/* Listed before a.txt, named after it. */
	article(root, "t/a-b.txt", "2019-12-31T23:59:59-08:00", "Older");
	assert_int_equal(puts_file(root, "t/u1.txt", "Zebra\n\nBody.\n"), 0);
	assert_int_equal(puts_file(root, "t/u2.txt", "apple\n\nBody.\n"), 0);
	assert_int_equal(
	    puts_file(root, "t/u3.txt", "Apple pie and a long title\n\nB.\n"),
	    0);
	assert_int_equal(puts_file(root, "t/u4.txt",
	                     "APPLE PIE AND A LONG TITLE, too\n\nB.\n"),
	    0);
	assert_int_equal(puts_file(root, "t/u5.txt", "Apple\n\nBody.\n"), 0);
	assert_int_equal(
	    puts_file(root, "t/u6.txt", "\xc3\xa9t\xc3\xa9\n\nBody.\n"), 0);
	set_opts(root);
	s = reload(NULL);

	t = get(s, "/t/")->sec;
	assert_int_equal(t->narticles, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < t->narticles; i++) {
		char path[64];

		assert_string_equal(t->articles[i]->name, want[i]);
		assert_int_equal(archive_position(t, t->articles[i]), i);
		snprintf(path, sizeof(path), "/t/%s", want[i]);
		assert_ptr_equal(get(s, path), t->articles[i]);
	}
	assert_int_equal(t->nsections, 1);
	for (size_t i = 1; i < t->narticles + t->nsections; i++)
		assert_true(
		    strcmp(t->byname[i - 1]->name, t->byname[i]->name) < 0);
	assert_non_null(get(s, "/t/m/"));
	snapshot_release(s);
	remove_tree(root);
}

/* A start as main.c makes one: the pack opened, the archive loaded. */
static struct snapshot *
start(struct archive_store *st, const char *sd, const char *root)
{
	const char *why = NULL;
	struct snapshot *s;

	archive_store_init(st, NULL);
	opts.store = st;
	assert_non_null(st->pack = pack_open(sd, root, opts.hostname));
	assert_non_null(s = archive_load(&opts, &why));
	return s;
}

/* A stop: saved (save) or not (a crash), then everything let go. */
static void
stop(struct archive_store *st, struct snapshot *s, bool save)
{
	if (save)
		assert_int_equal(archive_save(s, &opts), 0);
	snapshot_release(s);
	pack_close(st->pack);
	archive_store_close(st);
	opts.store = NULL;
}

/* One byte of the file at off (from its end when negative) flipped. */
static void
flip(const char *path, long off)
{
	struct stat st;
	unsigned char c;
	int fd;

	assert_int_not_equal(fd = open(path, O_RDWR | O_CLOEXEC), -1);
	assert_int_equal(fstat(fd, &st), 0);
	if (off < 0)
		off += st.st_size;
	assert_int_equal(pread(fd, &c, 1, off), 1);
	c ^= 0x20;
	assert_int_equal(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

/*
 * The saved tree: a start from it (no walk) makes every page, order and
 * lookup a walk makes; its check (a full reload) shares every text and
 * finds it unchanged, so the stop keeps the file; what changed while
 * serai was down is found by that check; and a tree that is damaged,
 * made with other options, or left by a crash is not used.
 */
static void
test_saved_tree(void **state)
{
	char root[] = "/tmp/serai-test-tree-XXXXXX";
	char sd[] = "/tmp/serai-test-state-XXXXXX";
	char t0[PATH_MAX], t1[PATH_MAX], link[PATH_MAX], top[PATH_MAX];
	const char *why = NULL;
	struct snapshot *mem, *s, *r, *f;
	struct archive_store st;
	struct stat sb;

	(void)state;
	assert_non_null(mkdtemp(root));
	assert_non_null(mkdtemp(sd));
	make_tree(root);
	/* Ties settled by titles, undated ones, a symlinked article. */
	article(root, "news/c.txt", "2020-01-02", "news b");
	assert_int_equal(
	    puts_file(root, "news/u.txt", "Undated\n\nBody.\n"), 0);
	assert_int_equal(puts_file(root, "news/section.ini",
	                     "[section]\ndescription = All the news\n"),
	    0);
	assert_int_equal(puts_file(root, "robots.txt", "User-agent: *\n"), 0);
	snprintf(link, sizeof(link), "%s/sport/link.txt", root);
	snprintf(top, sizeof(top), "%s/top.txt", root);
	assert_int_equal(symlink(top, link), 0);
	snprintf(t0, sizeof(t0), "%s/archive.tree.0", sd);
	snprintf(t1, sizeof(t1), "%s/archive.tree.1", sd);
	set_opts(root);
	opts.quick_start = true;
	archive_set_pack(-1);
	assert_non_null(mem = archive_load(&opts, &why));

	s = start(&st, sd, root); /* cold: a walk, every text packed */
	assert_false(s->from_tree);
	stop(&st, s, true);
	assert_int_equal(stat(t0, &sb), 0);
	assert_true(sb.st_size > 512);

	s = start(&st, sd, root);
	assert_true(s->from_tree);
	assert_int_equal(s->nparsed + s->nlisted, 0);
	assert_same_snapshot(s, mem);
	assert_int_equal(s->robots.len, mem->robots.len);
	assert_memory_equal(s->robots.p, mem->robots.p, s->robots.len);
	{
		const struct section *n = get(s, "/news/")->sec;

		for (size_t i = 0; i < n->narticles; i++)
			assert_int_equal(
			    archive_position(n, n->articles[i]), i);
		assert_string_equal(n->description, "All the news");
	}
	/* Its check: nothing changed, every text and page shared. */
	r = reload(s);
	assert_true(r->tree_current);
	assert_int_equal(r->nparsed, 0);
	assert_same_snapshot(r, mem);
	assert_ptr_equal(get(r, "/news/a")->art, get(s, "/news/a")->art);
	assert_ptr_equal(
	    get(r, "/news/")->sec->gemini.p, get(s, "/news/")->sec->gemini.p);
	snapshot_release(s);
	stop(&st, r, true); /* kept as it was: file 0 again */
	assert_int_equal(stat(t1, &sb), 0);
	assert_int_equal(sb.st_size, 0);

	/* A crash: the file was marked used as it was loaded. */
	s = start(&st, sd, root);
	assert_true(s->from_tree);
	stop(&st, s, false);
	s = start(&st, sd, root);
	assert_false(s->from_tree);
	assert_same_snapshot(s, mem);
	stop(&st, s, true); /* saved again, to file 0 */

	/* Changes while down: served stale, then found by the check. */
	article(root, "news/a.txt", "2020-01-01", "News A, corrected");
	unlink_in(root, "sport/s.txt");
	article(root, "sport/t.txt", "2023-01-01", "Sport T");
	s = start(&st, sd, root);
	assert_true(s->from_tree);
	assert_non_null(get(s, "/sport/s"));
	r = reload(s);
	assert_false(r->tree_current);
	assert_null(archive_lookup(r, "/sport/s", 8));
	assert_non_null(f = archive_load(&opts, &why));
	assert_same_snapshot(r, f);
	snapshot_release(f);
	snapshot_release(s);
	/* Its new texts are not in the pack: no tree, so a walk next. */
	stop(&st, r, true);
	s = start(&st, sd, root);
	assert_false(s->from_tree);
	assert_int_equal(s->nparsed, 2);
	snapshot_release(mem);
	assert_non_null(mem = reload(NULL));
	stop(&st, s, true);

	/* Damaged: the structure's last byte, a page's first. */
	flip(t0, -1);
	s = start(&st, sd, root);
	assert_false(s->from_tree);
	assert_same_snapshot(s, mem);
	stop(&st, s, true);
	flip(t0, 512 + 16);
	s = start(&st, sd, root);
	assert_false(s->from_tree);
	stop(&st, s, true);
	/* Cut short. */
	assert_int_equal(truncate(t0, 4096), 0);
	s = start(&st, sd, root);
	assert_false(s->from_tree);
	stop(&st, s, true);
	/* Another width for Gopher text: the pages show it. */
	opts.menu_width = 60;
	s = start(&st, sd, root);
	assert_false(s->from_tree);
	stop(&st, s, false);
	opts.menu_width = 67;
	/* Off: nothing loaded from a good tree, nothing saved. */
	s = start(&st, sd, root);
	stop(&st, s, true);
	opts.quick_start = false;
	s = start(&st, sd, root);
	assert_false(s->from_tree);
	assert_int_equal(stat(t0, &sb), 0);
	assert_int_equal(archive_save(s, &opts), 0);
	{
		struct stat again;

		assert_int_equal(stat(t0, &again), 0);
		assert_int_equal(again.st_mtim.tv_nsec, sb.st_mtim.tv_nsec);
		assert_int_equal(again.st_size, sb.st_size);
	}
	stop(&st, s, false);

	snapshot_release(mem);
	remove_tree(sd);
	remove_tree(root);
}

/*
 * struct tree_head's fields (archive.c) that the mutations below must
 * keep consistent, as someone who can write state_dir could: the
 * structure's offset, length and checksum, and the header's checksum of
 * the bytes before it.  The test checks the structure ends the file,
 * so a change of the layout fails here rather than tests nothing.
 */
#define TH_ST_OFF 128
#define TH_ST_LEN 136
#define TH_ST_SUM 144
#define TH_SUM 152

static uint64_t
get64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static void
put64(unsigned char *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

/*
 * A saved tree whose every checksum is right but whose structure is
 * not (a byte changed, or a count, a length, an offset made large):
 * the start either refuses it or builds a snapshot from it, never reads
 * outside the file or the pack (ASan, in CI), and the check after it
 * (the full reload) always ends with the archive as it is.
 */
static void
test_saved_tree_mutated(void **state)
{
	char root[] = "/tmp/serai-test-tree-XXXXXX";
	char sd[] = "/tmp/serai-test-state-XXXXXX";
	char t0[PATH_MAX];
	const char *why = NULL;
	struct snapshot *mem, *s, *r;
	struct archive_store st;
	unsigned char *good, *bad;
	size_t size, loaded = 0;
	uint64_t st_off, st_len;
	unsigned seed = 1;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(root));
	assert_non_null(mkdtemp(sd));
	make_tree(root);
	article(root, "news/c.txt", "2020-01-02", "news b");
	snprintf(t0, sizeof(t0), "%s/archive.tree.0", sd);
	set_opts(root);
	opts.quick_start = true;
	archive_set_pack(-1);
	assert_non_null(mem = archive_load(&opts, &why));
	s = start(&st, sd, root);
	stop(&st, s, true);

	assert_non_null(f = fopen(t0, "rb"));
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	size = (size_t)ftell(f);
	rewind(f);
	assert_non_null(good = malloc(size));
	assert_non_null(bad = malloc(size));
	assert_int_equal(fread(good, 1, size, f), size);
	fclose(f);
	st_off = get64(good + TH_ST_OFF);
	st_len = get64(good + TH_ST_LEN);
	assert_int_equal(st_off + st_len, size);
	assert_int_equal(
	    get64(good + TH_ST_SUM), pack_hash(good + st_off, st_len));
	assert_int_equal(get64(good + TH_SUM), pack_hash(good, TH_SUM));

	for (int i = 0; i < 300; i++) {
		size_t at = st_off + (size_t)rand_r(&seed) % st_len;

		memcpy(bad, good, size);
		switch (i % 3) {
		case 0: /* a byte */
			bad[at] ^= (unsigned char)(1 + rand_r(&seed) % 255);
			break;
		case 1: /* a count or length, made large */
			if (at + 4 <= size) {
				uint32_t v = (uint32_t)rand_r(&seed) |
				    (i % 2 ? 0x80000000u : 0);

				memcpy(bad + at, &v, sizeof(v));
			}
			break;
		default: /* an offset, made large or small */
			if (at + 8 <= size)
				put64(bad + at,
				    (uint64_t)rand_r(&seed) *
				        (i % 2 ? 4096 : 1));
		}
		put64(bad + TH_ST_SUM, pack_hash(bad + st_off, st_len));
		put64(bad + TH_SUM, pack_hash(bad, TH_SUM));
		assert_non_null(f = fopen(t0, "wb"));
		assert_int_equal(fwrite(bad, 1, size, f), size);
		fclose(f);
		s = start(&st, sd, root);
		loaded += s->from_tree;
		r = reload(s);
		assert_same_snapshot(r, mem);
		snapshot_release(r);
		stop(&st, s, false);
	}
	/* Most changes are refused; some (a title's byte) are served. */
	assert_true(loaded < 300);
	free(good);
	free(bad);
	snapshot_release(mem);
	remove_tree(sd);
	remove_tree(root);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unchanged_shared_by_address),
	    cmocka_unit_test(test_every_change_as_a_full_load),
	    cmocka_unit_test(test_changes_skip_unchanged_directories),
	    cmocka_unit_test(test_publish_shares_subtrees),
	    cmocka_unit_test(test_every_change_with_the_watch),
	    cmocka_unit_test(test_texts_packed_and_released),
	    cmocka_unit_test(test_texts_from_slabs),
	    cmocka_unit_test(test_persistent_pack_from_slabs),
	    cmocka_unit_test(test_persistent_pack_cut_short),
	    cmocka_unit_test(test_finish_threads),
	    cmocka_unit_test(test_order_ties),
	    cmocka_unit_test(test_saved_tree),
	    cmocka_unit_test(test_saved_tree_mutated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
