/*
 * Display-width aware text shaping for Gopher: wrapping paragraphs and
 * shortening menu titles.  Widths come from utf8proc (East Asian wide
 * characters count two columns, combining marks none).  Pure.
 */
#ifndef SERAI_TEXT_H
#define SERAI_TEXT_H

#include <stddef.h>

struct buf;

/* Display columns of valid UTF-8. */
size_t text_width(const char *, size_t);

/*
 * Appends s wrapped to at most width columns, each line ended by eol.
 * Latin text breaks at spaces, wide (CJK) text between characters, a word
 * longer than the line at a character boundary.  No line starts with '.':
 * Gopher clients do not un-stuff dots, and a lone "." would read as the
 * end of the text, so such a line gets a leading space (counted).
 */
void text_wrap(
    struct buf *, const char *s, size_t len, size_t width, const char *eol);

/*
 * Appends s cut to width columns: on a word boundary where one is in
 * reach, with "…" marking the cut.  Short strings are appended as is.
 */
void text_truncate(struct buf *, const char *s, size_t len, size_t width);

#endif
