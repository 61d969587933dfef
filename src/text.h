/*
 * Display-width aware text shaping for Gopher: wrapping paragraphs and
 * shortening menu titles.  Lines break where the Unicode line breaking
 * algorithm (UAX #14, libunibreak) allows, tailored so that Latin words
 * and URLs stay whole and Korean breaks at spaces; widths come from
 * utf8proc (East Asian wide characters count two columns, combining
 * marks none).  Pure.
 */
#ifndef SERAI_TEXT_H
#define SERAI_TEXT_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

/* The cut marks of text_truncate: Gopher menus keep to ASCII. */
#define TEXT_ELLIPSIS "\xe2\x80\xa6"
#define TEXT_DOTS "..."

/* Display columns of valid UTF-8. */
size_t text_width(const char *, size_t);

/*
 * Appends s wrapped to at most width columns, each line ended by eol.
 * Lines end only at UAX #14 break opportunities (so none starts with
 * closing punctuation, "。", "？" or a small kana, or ends with an
 * opening one), but for a stretch wider than a line, which is cut at a
 * character.  lang (a language tag, or NULL) tailors quotation marks:
 * in Chinese, Japanese and Korean text "“" opens and "”" closes.  No
 * line starts with '.': Gopher clients do not un-stuff dots, and a lone
 * "." would read as the end of the text, so such a line gets a leading
 * space (counted).
 */
void text_wrap(struct buf *, const char *s, size_t len, size_t width,
    const char *eol, const char *lang);

/*
 * The same, in as few lines as text_wrap makes but of about equal
 * length: for headings, whose last line should not be a lone word.
 */
void text_wrap_balanced(struct buf *, const char *s, size_t len, size_t width,
    const char *eol, const char *lang);

/*
 * Appends s cut to width columns with mark (TEXT_ELLIPSIS, TEXT_DOTS)
 * ending it: at a break opportunity where one keeps at least half the
 * room.  Strings that fit are appended as they are.
 */
void text_truncate(struct buf *, const char *s, size_t len, size_t width,
    const char *mark, const char *lang);

/*
 * The break opportunities text_wrap uses: brk[i] is 1 when a line may
 * end after byte i (always after the last), else 0.  Printable ASCII
 * takes a fast path of our own unless uax14 is set, which forces
 * libunibreak: the unit tests hold the two equal.
 */
void text_breaks(
    const char *s, size_t len, const char *lang, bool uax14, char *brk);

#endif
