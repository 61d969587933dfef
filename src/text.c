#include "text.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <utf8proc.h>

#include "util.h"

#define ELLIPSIS "\xe2\x80\xa6"

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

/* The same but for space, which may end a line. */
static inline bool
is_ascii_word(char c)
{
	return c > ' ' && c < 0x7f;
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

/* Decodes one character; invalid bytes count as one column, one byte. */
static inline size_t
next_char(const char *s, size_t len, size_t i, size_t *width)
{
	utf8proc_int32_t cp;
	utf8proc_ssize_t n;

	if ((unsigned char)s[i] < 0x80) {
		*width = ascii_width((unsigned char)s[i]);
		return 1;
	}
	n = utf8proc_iterate(
	    (const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), &cp);
	if (n <= 0) {
		*width = 1;
		return 1;
	}
	*width = (size_t)utf8proc_charwidth(cp);
	return (size_t)n;
}

size_t
text_width(const char *s, size_t len)
{
	size_t i = 0, w, total = 0;

	while (i < len) {
		if ((unsigned char)s[i] < 0x80) {
			total += ascii_width((unsigned char)s[i++]);
			continue;
		}
		i += next_char(s, len, i, &w);
		total += w;
	}
	return total;
}

static void
emit(struct buf *b, const char *s, size_t len, const char *eol, size_t eollen)
{
	while (len > 0 && s[len - 1] == ' ')
		len--;
	if (len > 0 && s[0] == '.')
		buf_addc(b, ' ');
	buf_add(b, s, len);
	buf_add(b, eol, eollen);
}

void
text_wrap(
    struct buf *b, const char *s, size_t len, size_t width, const char *eol)
{
	size_t start = 0, i = 0, col = 0;
	size_t brk = 0, brk_col = 0, brk_skip = 0;
	bool have_brk = false, prev_wide = false;
	size_t eollen = strlen(eol), ascii_end = 0;

	if (width < 2)
		width = 2;
	if (len > 0 && s[0] == '.')
		col = 1;
	while (i < len) {
		size_t w, n;

		if (is_ascii_print(s[i])) {
			/* The ASCII fast path: no utf8proc, one column a byte. */
			size_t k =
			    width - col < len - i ? i + width - col : len;

			if (ascii_end <= i)
				ascii_end = i + ascii_span(s + i, len - i);
			if (col < width && k <= ascii_end &&
			    !(s[i] == ' ' && i == start && start != 0)) {
				/*
				 * Printable ASCII up to the last column: the
				 * steps below would take it all a byte at a
				 * time, each space noted as the break.  Only
				 * the byte at k, which may end the line, is
				 * left to them.
				 */
				const char *sp = memrchr(s + i, ' ', k - i);

				if (sp != NULL) {
					brk = (size_t)(sp - s);
					brk_col = col + (brk - i);
					brk_skip = 1;
					have_brk = true;
				}
				col += k - i;
				i = k;
				prev_wide = false;
				continue;
			}
			if (s[i] == ' ') {
				if (i == start && start != 0) {
					/* A wrapped line does not begin with
					 * spaces. */
					start = ++i;
					col = (i < len && s[i] == '.') ? 1 : 0;
					continue;
				}
				brk = i;
				brk_col = col;
				brk_skip = 1;
				have_brk = true;
				col++;
				i++;
				prev_wide = false;
				continue;
			}
			if (col < width) {
				/* A run of word bytes that fits, up to the
				 * byte that may end the line. */
				size_t j = i + 1;

				while (j < k && is_ascii_word(s[j]))
					j++;
				col += j - i;
				i = j;
				prev_wide = false;
				continue;
			}
		}
		n = next_char(s, len, i, &w);
		if (w == 2 && i > start && !prev_wide) {
			brk = i;
			brk_col = col;
			brk_skip = 0;
			have_brk = true;
		}
		if (col + w > width && i > start) {
			if (have_brk && brk > start) {
				emit(b, s + start, brk - start, eol, eollen);
				col -= brk_col + brk_skip;
				start = brk + brk_skip;
			} else {
				emit(b, s + start, i - start, eol, eollen);
				col = 0;
				start = i;
			}
			have_brk = false;
			if (start < len && s[start] == '.')
				col++;
			/* Re-examine this character against the new line. */
			continue;
		}
		col += w;
		i += n;
		prev_wide = (w == 2);
		if (prev_wide) {
			brk = i;
			brk_col = col;
			brk_skip = 0;
			have_brk = true;
		}
	}
	if (start < len)
		emit(b, s + start, len - start, eol, eollen);
}

void
text_truncate(struct buf *b, const char *s, size_t len, size_t width)
{
	size_t i = 0, col = 0, cut = 0, word_cut = 0;

	if (text_width(s, len) <= width) {
		buf_add(b, s, len);
		return;
	}
	if (width == 0)
		return;
	/* Keep one column for the ellipsis. */
	while (i < len) {
		size_t w, n = next_char(s, len, i, &w);

		if (col + w > width - 1) {
			/* Stopping at a space: all before it is whole words. */
			if (s[i] == ' ')
				word_cut = i;
			break;
		}
		if (s[i] == ' ')
			word_cut = i;
		col += w;
		i += n;
		cut = i;
	}
	/* A word boundary only when it keeps at least half the room. */
	if (word_cut > 0 && text_width(s, word_cut) >= (width - 1) / 2)
		cut = word_cut;
	while (cut > 0 && s[cut - 1] == ' ')
		cut--;
	buf_add(b, s, cut);
	buf_adds(b, ELLIPSIS);
}
