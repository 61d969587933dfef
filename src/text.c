#include "text.h"

#include <linebreak.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "util.h"

/*
 * Break tables of texts up to this many bytes live on the stack: a title,
 * a menu string or a typical paragraph; longer ones are allocated.
 */
#define BRK_STACK 4096

#define ZWSP 0x200b

/*
 * In mixed text, stretches of printable ASCII at least this long take
 * the fast path; shorter ones are left in libunibreak's call.
 */
#define FAST_MIN 32

/*
 * ASCII is one column a byte but for the C0 controls and DEL, which
 * utf8proc gives none; deciding that here keeps English text off the
 * per-character utf8proc calls.
 */
static inline size_t
ascii_width(unsigned char c)
{
	return c >= 0x20 && c != 0x7f;
}

/* Printable ASCII, space to '~': one column each. */
static inline bool
is_ascii_print(char c)
{
	return (unsigned char)c - 0x20u < 0x5fu;
}

/*
 * The length of the run of printable ASCII (space to '~') s starts with.
 * Eight bytes at a time: a word passes when no byte has the high bit set,
 * is below 0x20 or is DEL (each test exact for "any byte").
 */
static size_t
ascii_span(const char *s, size_t len)
{
	const uint64_t ones = 0x0101010101010101u, high = ones * 0x80;
	size_t i = 0;

	for (; len - i >= 8; i += 8) {
		uint64_t x, del;

		memcpy(&x, s + i, 8);
		del = x ^ (ones * 0x7f);
		if ((x | ((x - ones * 0x20) & ~x) | ((del - ones) & ~del)) &
		    high)
			break;
	}
	while (i < len && is_ascii_print(s[i]))
		i++;
	return i;
}

/*
 * Decodes one character: its code point (-1 for an invalid byte, which
 * counts as one column, one byte) and width; returns its length.
 */
static inline size_t
decode(const char *s, size_t len, size_t i, int32_t *cp, size_t *width)
{
	utf8proc_int32_t c;
	utf8proc_ssize_t n;

	if ((unsigned char)s[i] < 0x80) {
		*cp = (unsigned char)s[i];
		*width = ascii_width((unsigned char)s[i]);
		return 1;
	}
	n = utf8proc_iterate(
	    (const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), &c);
	if (n <= 0) {
		*cp = -1;
		*width = 1;
		return 1;
	}
	*cp = c;
	*width = (size_t)utf8proc_charwidth(c);
	return (size_t)n;
}

size_t
text_width(const char *s, size_t len)
{
	size_t i = 0, w, total = 0;
	int32_t cp;

	while (i < len) {
		if ((unsigned char)s[i] < 0x80) {
			total += ascii_width((unsigned char)s[i++]);
			continue;
		}
		i += decode(s, len, i, &cp, &w);
		total += w;
	}
	return total;
}

/* UAX #14 class OP in ASCII. */
static inline bool
ascii_opening(char c)
{
	return c == '(' || c == '[' || c == '{';
}

/* Classes CL, CP, EX, IS and SY in ASCII: no break before them (LB13). */
static inline bool
ascii_no_break_before(char c)
{
	switch (c) {
	case ')':
	case ']':
	case '}':
	case '!':
	case '?':
	case ',':
	case '.':
	case ':':
	case ';':
	case '/':
		return true;
	default:
		return false;
	}
}

/*
 * The UAX #14 line break opportunities of printable ASCII, as
 * libunibreak gives them and tailored as uax14_breaks does: within a run
 * of non-spaces there are none, so only the end of a run of spaces
 * remains, where UAX #14 still forbids a break before ')', ']', '}',
 * '!', '?', ',', '.', ':', ';' and '/' (LB13), after '(', '[' or '{'
 * and spaces (LB14), and between a quote and spaces and an opening
 * bracket (LB15); a single space opening the text is glue (libunibreak
 * takes it as WJ).  The differential unit test holds this equal to
 * libunibreak.
 */
static void
ascii_breaks(const char *s, size_t len, char *brk)
{
	char before = 0; /* the last non-space, or 0 at the start */
	size_t run = 0;  /* spaces since it */

	memset(brk, 0, len);
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == ' ') {
			run++;
			continue;
		}
		if (run > 0 && !ascii_no_break_before(c) &&
		    (before == 0 ? run >= 2
		                 : !ascii_opening(before) &&
		                !((before == '"' || before == '\'') &&
		                    ascii_opening(c))))
			brk[i - 1] = 1;
		before = c;
		run = 0;
	}
	if (len > 0)
		brk[len - 1] = 1;
}

static bool
is_hangul(int32_t cp)
{
	return (cp >= 0x1100 && cp <= 0x11ff) ||
	    (cp >= 0x3130 && cp <= 0x318f) || (cp >= 0xa960 && cp <= 0xa97f) ||
	    (cp >= 0xac00 && cp <= 0xd7ff);
}

/*
 * Our tailoring of UAX #14 between characters a and b (widths wa, wb),
 * where it allows a break.  Latin words and URLs are not split: no break
 * between two characters that are not wide, but after a zero-width
 * space, which is there to allow one.  Korean is written with spaces
 * between words and breaks only at them (CSS's word-break: keep-all):
 * in Korean text (korean) only spaces break, and elsewhere Hangul keeps
 * to what touches it.
 */
static bool
tailor_keeps(int32_t a, size_t wa, int32_t b, size_t wb, bool korean)
{
	if (a == ' ' || b == ' ' || a == ZWSP)
		return false;
	if (korean || (wa < 2 && wb < 2))
		return true;
	return is_hangul(a) || is_hangul(b);
}

/* "ko", "ko-KR", "KO": a language tag naming Korean. */
static bool
lang_is_korean(const char *lang)
{
	return lang != NULL && (lang[0] == 'k' || lang[0] == 'K') &&
	    (lang[1] == 'o' || lang[1] == 'O') &&
	    (lang[2] == '\0' || lang[2] == '-' || lang[2] == '_');
}

static void
init_once(void)
{
	init_linebreak();
}

/*
 * What libunibreak may read: it takes U+FFFF for its end of text (and
 * asserts), and decodes a lead byte with whatever follows, so that an
 * invalid "\xef??" is U+FFFF too.  Returns s itself when it is valid
 * UTF-8 without U+FFFF, else a copy (to free) of the same length with
 * U+FFFF made U+FFFD and each invalid byte a letter, as our decoding
 * takes it: a byte of the copy stands for the same byte of s.  NULL on
 * no memory.
 */
static const char *
unibreak_safe(const char *s, size_t len)
{
	char *c;

	if (utf8_valid(s, len) && memmem(s, len, "\xef\xbf\xbf", 3) == NULL)
		return s;
	if ((c = malloc(len)) == NULL)
		return NULL;
	for (size_t i = 0; i < len;) {
		int32_t cp;
		size_t w, n = decode(s, len, i, &cp, &w);

		if (cp < 0)
			c[i] = 'a';
		else if (cp == 0xffff)
			memcpy(c + i, "\xef\xbf\xbd", 3);
		else
			memcpy(c + i, s + i, n);
		i += n;
	}
	return c;
}

static void
uax14_breaks(const char *s, size_t len, const char *lang, char *brk)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	int32_t prev = 0;
	size_t prev_w = 0;
	bool korean = lang_is_korean(lang);
	const char *safe;

	pthread_once(&once, init_once);
	memset(brk, LINEBREAK_NOBREAK, len);
	/* Without memory, no break: the filler cuts at the width. */
	if ((safe = unibreak_safe(s, len)) != NULL)
		set_linebreaks_utf8((const utf8_t *)safe, len, lang, brk);
	if (safe != s)
		free((char *)safe);
	for (size_t i = 0; i < len;) {
		int32_t cp;
		size_t w, n = decode(s, len, i, &cp, &w);

		if (i > 0 && brk[i - 1] != 0)
			brk[i - 1] = !tailor_keeps(prev, prev_w, cp, w, korean);
		for (size_t k = i; k + 1 < i + n; k++)
			brk[k] = 0;
		brk[i + n - 1] = brk[i + n - 1] == LINEBREAK_ALLOWBREAK ||
		    brk[i + n - 1] == LINEBREAK_MUSTBREAK;
		prev = cp;
		prev_w = w;
		i += n;
	}
	brk[len - 1] = 1;
}

/*
 * Where libunibreak can start afresh and give what a run from the start
 * of the text gives: at an ASCII letter after a space.  Its state there
 * is the letter's class alone (the break before it depends on the space
 * and what the space follows, decided by the run before), and the
 * tailoring looks at neighbours only.
 */
static inline bool
restart_point(const char *s, size_t i)
{
	char c = (char)(s[i] | 0x20);

	return s[i - 1] == ' ' && c >= 'a' && c <= 'z';
}

/*
 * Mixed text, valid UTF-8: stretches of printable ASCII take the fast
 * path and the rest libunibreak, split at restart points.  Each region
 * is given one byte more, the letter opening the next, so its last break
 * is decided rather than taken for the end of the text; the next region
 * then writes over that byte.  A stretch of ASCII shorter than
 * FAST_MIN stays in libunibreak's region: not worth another call.
 */
static void
mixed_breaks(const char *s, size_t len, const char *lang, char *brk)
{
	size_t p = 0;

	while (p < len) {
		size_t a = p + ascii_span(s + p, len - p), q = 0;

		if (a == len) {
			ascii_breaks(s + p, len - p, brk + p);
			return;
		}
		for (size_t i = a; i-- > p + 1;)
			if (restart_point(s, i)) {
				q = i;
				break;
			}
		if (q > p) {
			ascii_breaks(s + p, q + 1 - p, brk + p);
			p = q;
			continue;
		}
		for (q = a + 1; q < len; q++) {
			size_t n = len - q < FAST_MIN ? len - q : FAST_MIN;

			if (restart_point(s, q) && ascii_span(s + q, n) == n)
				break;
		}
		uax14_breaks(s + p, (q < len ? q + 1 : q) - p, lang, brk + p);
		p = q;
	}
}

void
text_breaks(const char *s, size_t len, const char *lang, bool uax14, char *brk)
{
	if (len == 0)
		return;
	if (uax14)
		uax14_breaks(s, len, lang, brk);
	else if (ascii_span(s, len) == len)
		ascii_breaks(s, len, brk);
	else if (utf8_valid(s, len))
		mixed_breaks(s, len, lang, brk);
	else
		uax14_breaks(
		    s, len, lang, brk); /* invalid: no restart points */
}

/* The break table of s: brk, or NULL (b marked failed) on no memory. */
static char *
breaks(struct buf *b, const char *s, size_t len, const char *lang,
    char stack[BRK_STACK])
{
	char *brk = len <= BRK_STACK ? stack : malloc(len);

	if (brk == NULL) {
		b->oom = true;
		return NULL;
	}
	text_breaks(s, len, lang, false, brk);
	return brk;
}

static void
emit(struct buf *b, const char *s, size_t len, const char *eol, size_t eollen)
{
	while (len > 0 && s[len - 1] == ' ')
		len--;
	if (b == NULL)
		return;
	if (len > 0 && s[0] == '.')
		buf_addc(b, ' ');
	buf_add(b, s, len);
	buf_add(b, eol, eollen);
}

/*
 * Greedy filling: each line takes what fits up to its last break
 * opportunity; spaces hang past the width (they are dropped at a line's
 * end); a stretch with no opportunity that is wider than a line is cut
 * at a character.  Counts the lines; writes them unless b is NULL.
 */
static size_t
fill(struct buf *b, const char *s, size_t len, const char *brk, size_t width,
    const char *eol)
{
	size_t start = 0, i = 0, col = 0, last = 0, last_col = 0, lines = 0;
	size_t eollen = strlen(eol);

	if (width < 2)
		width = 2;
	if (len > 0 && s[0] == '.')
		col = 1;
	while (i < len) {
		size_t w, n;
		int32_t cp;

		n = decode(s, len, i, &cp, &w);
		if (cp != ' ' && col + w > width && i > start) {
			size_t end = last > start ? last : i;

			emit(b, s + start, end - start, eol, eollen);
			lines++;
			col = end == i ? 0 : col - last_col;
			start = end;
			last = 0;
			if (s[start] == '.')
				col++;
			/* Re-examine this character against the new line. */
			continue;
		}
		col += w;
		i += n;
		if (brk[i - 1] && i < len) {
			last = i;
			last_col = col;
		}
	}
	if (start < len) {
		emit(b, s + start, len - start, eol, eollen);
		lines++;
	}
	return lines;
}

void
text_wrap(struct buf *b, const char *s, size_t len, size_t width,
    const char *eol, const char *lang)
{
	char stack[BRK_STACK], *brk;

	if (len == 0 || (brk = breaks(b, s, len, lang, stack)) == NULL)
		return;
	fill(b, s, len, brk, width, eol);
	if (brk != stack)
		free(brk);
}

void
text_wrap_balanced(struct buf *b, const char *s, size_t len, size_t width,
    const char *eol, const char *lang)
{
	char stack[BRK_STACK], *brk;
	size_t lines, lo, hi;

	if (len == 0 || (brk = breaks(b, s, len, lang, stack)) == NULL)
		return;
	/*
	 * The narrowest width that needs no more lines: the lines come out
	 * of about equal length, so the last is no lone word.  Fewer lines
	 * never need a narrower width, so the search is a bisection.
	 */
	lines = fill(NULL, s, len, brk, width, eol);
	lo = width / 2 > 2 ? width / 2 : 2;
	hi = width;
	while (lines > 1 && lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (fill(NULL, s, len, brk, mid, eol) <= lines)
			hi = mid;
		else
			lo = mid + 1;
	}
	fill(b, s, len, brk, lines > 1 ? hi : width, eol);
	if (brk != stack)
		free(brk);
}

void
text_truncate(struct buf *b, const char *s, size_t len, size_t width,
    const char *mark, const char *lang)
{
	char stack[BRK_STACK], *brk;
	size_t i = 0, col = 0, cut = 0, brk_cut = 0, room;
	size_t markw;

	/*
	 * No character is wider than its UTF-8 bytes (two columns at most,
	 * and none of two bytes is wide; an invalid byte is one), so a
	 * string no longer than the width fits without measuring it.
	 */
	if (len <= width || text_width(s, len) <= width) {
		buf_add(b, s, len);
		return;
	}
	markw = text_width(mark, strlen(mark));
	if (width <= markw) {
		if (width == markw)
			buf_adds(b, mark);
		return;
	}
	if ((brk = breaks(b, s, len, lang, stack)) == NULL)
		return;
	room = width - markw;
	/* The longest prefix that fits, and the longest ending at a break. */
	while (i < len) {
		int32_t cp;
		size_t w, n = decode(s, len, i, &cp, &w);

		col += w;
		if (cp != ' ') {
			if (col > room)
				break;
			cut = i + n;
		}
		i += n;
		if (brk[i - 1])
			brk_cut = cut;
	}
	/* A break only when it keeps at least half the room. */
	if (brk_cut > 0 && text_width(s, brk_cut) >= room / 2)
		cut = brk_cut;
	buf_add(b, s, cut);
	buf_adds(b, mark);
	if (brk != stack)
		free(brk);
}
