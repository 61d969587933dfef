/*
 * The access log file: opened relative to its directory, never through
 * a symlink, never a FIFO; the directory kept for reopening (and for a
 * sandbox's rule).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "seed.h"

static void
test_access_log_file(void **state)
{
	char dir[] = "/tmp/serai-test-log-XXXXXX", path[128], other[128];
	struct stat a, b;
	int dfd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(log_access_open("stderr"), 0);
	assert_int_equal(log_access_dirfd(), -1);

	/* A symlink where the log goes is refused, not followed. */
	snprintf(path, sizeof(path), "%s/access.log", dir);
	snprintf(other, sizeof(other), "%s/target", dir);
	assert_int_equal(puts_file(dir, "target", ""), 0);
	assert_int_equal(symlink(other, path), 0);
	assert_int_equal(log_access_open(path), -1);
	assert_int_equal(errno, ELOOP);
	assert_int_equal(unlink(path), 0);

	/* A FIFO is refused at once (without a reader, open would block). */
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(log_access_open(path), -1);
	assert_int_equal(unlink(path), 0);

	/* A file: created 0640, its directory kept, an O_PATH descriptor. */
	assert_int_equal(log_access_open(path), 0);
	assert_int_equal(stat(path, &a), 0);
	assert_int_equal(a.st_mode & 0777, 0640);
	dfd = log_access_dirfd();
	assert_true(dfd >= 0);
	assert_true((fcntl(dfd, F_GETFL) & O_PATH) != 0);
	assert_int_equal(fstat(dfd, &a), 0);
	assert_int_equal(stat(dir, &b), 0);
	assert_true(a.st_dev == b.st_dev && a.st_ino == b.st_ino);

	/* Rotated away: the reopen makes the file again, by its name. */
	snprintf(other, sizeof(other), "%s/access.log.1", dir);
	assert_int_equal(rename(path, other), 0);
	assert_int_equal(log_access_reopen(), 0);
	assert_int_equal(stat(path, &a), 0);

	/* A chroot elsewhere gives the directory up. */
	assert_int_equal(log_chroot("/nonexistent-elsewhere"), -1);
	assert_int_equal(log_access_dirfd(), -1);
	assert_int_equal(log_access_reopen(), -1);

	assert_int_equal(log_access_open("stderr"), 0);
	remove_tree(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_access_log_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
