/*
 * Shared by the unit tests: the seed article, and the files of the
 * temporary archives some of them build.
 */
#ifndef SERAI_TEST_SEED_H
#define SERAI_TEST_SEED_H

#include <stddef.h>

/*
 * content/news/beijing-declaration.txt under $SERAI_SOURCE_ROOT (or ".")
 * as a NUL-terminated malloc'd buffer, or NULL if it cannot be read.
 */
char *read_seed(size_t *lenp);

/* root/rel made with these bytes; 0, or -1 when it cannot be written. */
int put_file(const char *root, const char *rel, const void *, size_t);
int puts_file(const char *root, const char *rel, const char *);
/* rm -rf root (a temporary directory of the test's own). */
void remove_tree(const char *root);

#endif
