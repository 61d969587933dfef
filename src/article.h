/*
 * The archive's article format, parsed from a byte buffer.  Pure: no file
 * or socket I/O, so the parser is unit-tested and fuzzed directly.
 *
 *	Location: Home > News          known "Key: value" header lines
 *	Title line (may hold a colon)
 *
 *	paragraph                      blank-line separated
 *
 *	(Editor: NAME)                 optional trailer lines
 *	Copyright ...
 */
#ifndef SERAI_ARTICLE_H
#define SERAI_ARTICLE_H

#include <stddef.h>
#include <stdint.h>

/* Larger files are refused rather than held in memory. */
#define ARTICLE_MAX_BYTES (4u * 1024 * 1024)
#define ARTICLE_TITLE_MAX 1024

/*
 * Every string below lives in one allocation that paras heads (the
 * paragraph pointers, NULL-ended, then the text): free it with
 * article_free only, and do not free or replace a field on its own.
 */
struct article {
	char *location; /* "Home > News", or NULL */
	char *date;     /* as written: YYYY-MM-DD[THH:MM[:SS][Z|+hh:mm]] */
	char *lang;     /* BCP 47-ish tag, or NULL */
	char *tags;
	char *source;
	char *author;
	char *title;
	char **paras; /* each one line: a wrapped paragraph is joined by ' ' */
	size_t npara;
	char *editor;    /* the whole "(Editor: ...)" line */
	char *copyright; /* the whole "Copyright ..." line */
	size_t len;      /* bytes of the source, near enough the text's size */
	/*
	 * Bytes of the strings, which follow the paragraph pointers in the
	 * block: every string above lies in them, so the loader may move
	 * them elsewhere (archive.c's pack) and point the fields there.
	 */
	size_t textlen;
};

/*
 * Returns 0 and fills *a, or -1 with *errstr naming the reason (the
 * article is then left empty).  Accepts LF or CRLF line ends, a UTF-8
 * BOM and a missing final newline.
 */
int article_parse(
    const char *data, size_t len, struct article *a, const char **errstr);
void article_free(struct article *);
/*
 * article_parse with the block taken from alloc(ctx, size) (NULL: out of
 * memory) instead of malloc: the caller owns it, and must not call
 * article_free.  The loader's threads take blocks from slabs of their own.
 */
int article_parse_with(const char *data, size_t len, struct article *a,
    const char **errstr, void *(*alloc)(void *ctx, size_t), void *ctx);

/*
 * The fields that point into an article's text, in a fixed order: the
 * loader moves them with the text, the pack records their offsets.
 */
#define ARTICLE_NFIELDS 9
void article_fields(struct article *, char **f[ARTICLE_NFIELDS]);

/* A date as above; valid calendar day.  Used for Date: and by tests. */
int article_date_valid(const char *);
/*
 * A valid date as seconds since the epoch, to order articles by instant:
 * a date alone is its midnight, a time without an offset is UTC.
 */
int64_t article_date_key(const char *);
/* Language tags: 1-35 bytes of ASCII letters, digits and '-'. */
int article_lang_valid(const char *);

#endif
