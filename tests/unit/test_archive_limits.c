/*
 * The loader's bounds on sections and files, reached: this test builds
 * archive.c with ARCHIVE_MAX_SECTIONS and ARCHIVE_MAX_FILES lowered (see
 * tests/meson.build), since the real figures take millions of files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "archive.h"
#include "seed.h"

#if ARCHIVE_MAX_SECTIONS != 4 || ARCHIVE_MAX_FILES != 10
#error "built with the wrong limits"
#endif

static struct snapshot *
load(const char *root)
{
	struct archive_opts o;
	const char *why = NULL;
	struct snapshot *s;

	memset(&o, 0, sizeof(o));
	o.root = root;
	o.lang = "en";
	o.hostname = "localhost";
	o.gopher_port = 70;
	o.gemini_port = 1965;
	o.wrap = 70;
	o.menu_width = 67;
	o.index = ARCHIVE_INDEX_NONE;
	s = archive_load(&o, &why);
	assert_non_null(s);
	return s;
}

/* Six sections under the root, four allowed: the rest skipped, counted. */
static void
test_sections_bounded(void **state)
{
	char root[] = "/tmp/serai-test-limits-XXXXXX", rel[64];
	struct snapshot *s;

	(void)state;
	assert_non_null(mkdtemp(root));
	for (int i = 0; i < 6; i++) {
		char dir[sizeof(root) + 8];

		snprintf(dir, sizeof(dir), "%s/s%d", root, i);
		assert_int_equal(mkdir(dir, 0755), 0);
		snprintf(rel, sizeof(rel), "s%d/a.txt", i);
		assert_int_equal(puts_file(root, rel, "A\n\nBody.\n"), 0);
	}
	s = load(root);
	/* The root and four more. */
	assert_int_equal(s->nsections, 5);
	assert_int_equal(s->narticles, 4);
	assert_int_equal(s->nskipped, 2);
	assert_non_null(archive_lookup(s, "/s3/", 4));
	assert_null(archive_lookup(s, "/s4/", 4));
	snapshot_release(s);
	remove_tree(root);
}

/* Twelve names in one directory, ten allowed, whatever they are. */
static void
test_files_bounded(void **state)
{
	char root[] = "/tmp/serai-test-limits-XXXXXX", rel[64];
	struct snapshot *s;

	(void)state;
	assert_non_null(mkdtemp(root));
	for (int i = 0; i < 12; i++) {
		snprintf(
		    rel, sizeof(rel), "a%02d%s", i, i == 0 ? ".md" : ".txt");
		assert_int_equal(puts_file(root, rel, "A\n\nBody.\n"), 0);
	}
	s = load(root);
	/* a00.md counts (and is skipped); a01..a09 load; a10, a11 do not. */
	assert_int_equal(s->narticles, 9);
	assert_int_equal(s->nskipped, 3);
	assert_null(archive_lookup(s, "/a10", 4));
	snapshot_release(s);
	remove_tree(root);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sections_bounded),
	    cmocka_unit_test(test_files_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
