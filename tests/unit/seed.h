/* The seed article, for the unit tests that parse or render it. */
#ifndef SERAI_TEST_SEED_H
#define SERAI_TEST_SEED_H

#include <stddef.h>

/*
 * content/news/beijing-declaration.txt under $SERAI_SOURCE_ROOT (or ".")
 * as a NUL-terminated malloc'd buffer, or NULL if it cannot be read.
 */
char *read_seed(size_t *lenp);

#endif
