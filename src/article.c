#include "article.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

struct line {
	const char *p;
	size_t len;
};

enum hdr { H_LOCATION, H_DATE, H_LANG, H_TAGS, H_SOURCE, H_AUTHOR, H_NONE };

static const char *const hdr_names[] = {
    [H_LOCATION] = "Location",
    [H_DATE] = "Date",
    [H_LANG] = "Lang",
    [H_TAGS] = "Tags",
    [H_SOURCE] = "Source",
    [H_AUTHOR] = "Author",
};

static char **
hdr_slot(struct article *a, enum hdr h)
{
	switch (h) {
	case H_LOCATION:
		return &a->location;
	case H_DATE:
		return &a->date;
	case H_LANG:
		return &a->lang;
	case H_TAGS:
		return &a->tags;
	case H_SOURCE:
		return &a->source;
	case H_AUTHOR:
		return &a->author;
	default:
		return NULL;
	}
}

static bool
is_blank(const struct line *l)
{
	for (size_t i = 0; i < l->len; i++)
		if (l->p[i] != ' ' && l->p[i] != '\t')
			return false;
	return true;
}

static void
rtrim(struct line *l)
{
	while (
	    l->len > 0 && (l->p[l->len - 1] == ' ' || l->p[l->len - 1] == '\t'))
		l->len--;
}

static void
ltrim(struct line *l)
{
	while (l->len > 0 && (l->p[0] == ' ' || l->p[0] == '\t')) {
		l->p++;
		l->len--;
	}
}

/*
 * Only known keys count as headers: the title itself often holds a colon
 * ("Beijing Declaration: A New Chapter ..."), so "Anything: else" must
 * fall through to the title rather than be swallowed as a header.
 */
static enum hdr
hdr_match(const struct line *l, struct line *value)
{
	for (size_t h = 0; h < H_NONE; h++) {
		size_t n = strlen(hdr_names[h]);

		if (l->len > n && strncasecmp(l->p, hdr_names[h], n) == 0 &&
		    l->p[n] == ':') {
			value->p = l->p + n + 1;
			value->len = l->len - n - 1;
			ltrim(value);
			rtrim(value);
			return (enum hdr)h;
		}
	}
	return H_NONE;
}

static bool
starts_with(const struct line *l, const char *s)
{
	size_t n = strlen(s);

	return l->len >= n && memcmp(l->p, s, n) == 0;
}

static bool
is_editor(const struct line *l)
{
	return starts_with(l, "(Editor:") && l->p[l->len - 1] == ')';
}

static bool
is_copyright(const struct line *l)
{
	return starts_with(l, "Copyright") || starts_with(l, "\xc2\xa9");
}

static int
two(const char *s)
{
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
		return -1;
	return (s[0] - '0') * 10 + (s[1] - '0');
}

int
article_date_valid(const char *s)
{
	static const int mdays[] = {
	    31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, m, d, hi, lo;
	size_t len = strlen(s);

	if (len < 10 || s[4] != '-' || s[7] != '-')
		return 0;
	if ((hi = two(s)) < 0 || (lo = two(s + 2)) < 0)
		return 0;
	y = hi * 100 + lo;
	m = two(s + 5);
	d = two(s + 8);
	if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
		return 0;
	if (m == 2 && d == 29 &&
	    !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 0;
	s += 10;
	if (*s == '\0')
		return 1;
	/* Optional RFC 3339 time: THH:MM[:SS](Z|+hh:mm|-hh:mm)? */
	if (*s != 'T' && *s != ' ')
		return 0;
	s++;
	if (strlen(s) < 5 || two(s) < 0 || two(s) > 23 || s[2] != ':' ||
	    two(s + 3) < 0 || two(s + 3) > 59)
		return 0;
	s += 5;
	if (*s == ':') {
		if (two(s + 1) < 0 || two(s + 1) > 60)
			return 0;
		s += 3;
	}
	if (*s == '\0' || (s[0] == 'Z' && s[1] == '\0'))
		return 1;
	if ((*s == '+' || *s == '-') && strlen(s) == 6 && two(s + 1) >= 0 &&
	    two(s + 1) <= 23 && s[3] == ':' && two(s + 4) >= 0 &&
	    two(s + 4) <= 59)
		return 1;
	return 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; Hinnant's). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int64_t
article_date_key(const char *s)
{
	int64_t t;
	int off = 0;

	t = days_from_civil(two(s) * 100 + two(s + 2), two(s + 5), two(s + 8)) *
	    86400;
	s += 10;
	if (*s == '\0')
		return t;
	s++;
	t += two(s) * 3600 + two(s + 3) * 60;
	s += 5;
	if (*s == ':') {
		t += two(s + 1);
		s += 3;
	}
	if (*s == '+' || *s == '-')
		off = (two(s + 1) * 3600 + two(s + 4) * 60) *
		    (*s == '+' ? 1 : -1);
	return t - off;
}

int
article_lang_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 35 || s[0] == '-')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || c == '-'))
			return 0;
	}
	return 1;
}

/*
 * Control bytes would reach Gopher clients' terminals verbatim and a TAB
 * in a title would split a menu line, so: TABs become spaces, CR only as
 * part of CRLF, every other C0 control and DEL is refused.
 */
#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/*
 * Eight bytes all printable ASCII (0x20 to 0x7e): none has its high bit,
 * none borrows when 0x20 is taken away, none carries when 1 is added.
 */
static bool
printable8(const char *p)
{
	uint64_t w;

	memcpy(&w, p, sizeof(w));
	return ((w | (w - 0x20 * ONES) | (w + ONES)) & HIGHS) == 0;
}

static const char *
check_bytes(const char *data, size_t len)
{
	bool high = false;

	/* A word at a time through the text: a byte at a time past a line end. */
	for (size_t i = 0; i < len;) {
		unsigned char c;

		if (len - i >= 8 && printable8(data + i)) {
			i += 8;
			continue;
		}
		c = (unsigned char)data[i];
		if (c == '\0')
			return "contains a NUL byte";
		if (c == '\r' && (i + 1 == len || data[i + 1] != '\n'))
			return "contains a bare CR (old Mac line ends?)";
		if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') ||
		    c == 0x7f)
			return "contains control characters";
		high = high || c >= 0x80;
		i++;
	}
	/* ASCII alone is UTF-8. */
	if (high && !utf8_valid(data, len))
		return "not valid UTF-8";
	return NULL;
}

/* Appends l as a string at *p, TABs as spaces; returns the string. */
static char *
put_line(char **p, const struct line *l)
{
	char *s = *p;

	memcpy(s, l->p, l->len);
	s[l->len] = '\0';
	for (char *q = memchr(s, '\t', l->len); q != NULL;
	     q = memchr(q, '\t', l->len - (size_t)(q - s)))
		*q = ' ';
	*p += l->len + 1;
	return s;
}

/* Lines the parser holds on the stack before it asks the heap. */
#define STACK_LINES 256

static size_t
count_lines(const char *data, size_t len)
{
	size_t n = 1;

	for (const char *p = data, *end = data + len;
	     (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++)
		n++;
	return n;
}

static size_t
split_lines(const char *data, size_t len, struct line *v)
{
	size_t k = 0;
	const char *p = data, *end = data + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;

		v[k].p = p;
		v[k].len = (size_t)(e - p);
		if (v[k].len > 0 && v[k].p[v[k].len - 1] == '\r')
			v[k].len--;
		rtrim(&v[k]);
		k++;
		p = nl ? nl + 1 : end;
	}
	return k;
}

/*
 * Every string of a parsed article lives in one allocation headed by the
 * paragraph pointers, so an article costs one malloc and one free, and
 * no per-string allocator overhead while it is held.
 */
void
article_free(struct article *a)
{
	free(a->paras);
	memset(a, 0, sizeof(*a));
}

/*
 * The paragraphs of the body lines [i, end): runs of non-blank lines, a
 * hard-wrapped one joined by one space before each left-trimmed
 * continuation line.  Returns their number and adds the bytes of their
 * text (NULs included) to *bytes; with out non-NULL, also writes them at
 * *w, TABs as spaces, and points out[k] at each.
 */
static size_t
join_paras(const struct line *l, size_t i, size_t end, char **out, char **w,
    size_t *bytes)
{
	size_t npara = 0, total = 0;
	bool in = false;
	char *w0 = out ? *w : NULL, *p = w0;

	for (; i <= end; i++) {
		struct line c;

		if (i == end || is_blank(&l[i])) {
			if (in) {
				total++;
				if (out)
					*p++ = '\0';
			}
			in = false;
			continue;
		}
		c = l[i];
		if (in) {
			ltrim(&c);
			total++;
			if (out)
				*p++ = ' ';
		} else {
			if (out)
				out[npara] = p;
			npara++;
			in = true;
		}
		total += c.len;
		if (out) {
			memcpy(p, c.p, c.len);
			p += c.len;
		}
	}
	if (out) {
		for (char *q = w0;
		     (q = memchr(q, '\t', (size_t)(p - q))) != NULL;)
			*q = ' ';
		*w = p;
	}
	*bytes += total;
	return npara;
}

static int
parse_lines(const struct line *l, size_t n, struct article *a,
    const char **errstr, void *(*alloc)(void *, size_t), void *ctx)
{
	size_t i = 0, end = n, bytes = 0, npara;
	struct line hv[H_NONE], title, editor, copyright;
	bool have[H_NONE] = {false}, have_editor = false,
	     have_copyright = false;
	char *mem, *w;

	/* Headers, then the title: the first line that is not a header. */
	for (; i < n; i++) {
		struct line v;
		enum hdr h;

		if (is_blank(&l[i]))
			continue;
		if ((h = hdr_match(&l[i], &v)) == H_NONE)
			break;
		if (have[h]) {
			*errstr = "duplicate header line";
			return -1;
		}
		hv[h] = v;
		have[h] = true;
		bytes += v.len + 1;
	}
	if (i == n) {
		*errstr = "no title line";
		return -1;
	}
	if (l[i].len > ARTICLE_TITLE_MAX) {
		*errstr = "title line too long";
		return -1;
	}
	title = l[i++];
	ltrim(&title);
	bytes += title.len + 1;

	/* The trailer, read from the bottom up: copyright, then editor. */
	while (end > i && is_blank(&l[end - 1]))
		end--;
	if (end > i && is_copyright(&l[end - 1])) {
		copyright = l[--end];
		have_copyright = true;
		bytes += copyright.len + 1;
		while (end > i && is_blank(&l[end - 1]))
			end--;
	}
	if (end > i && is_editor(&l[end - 1])) {
		editor = l[--end];
		have_editor = true;
		bytes += editor.len + 1;
	}
	npara = join_paras(l, i, end, NULL, NULL, &bytes);

	/* One block: the paragraph pointers (NULL-ended), then the text. */
	if ((mem = alloc != NULL
	            ? alloc(ctx, (npara + 1) * sizeof(char *) + bytes)
	            : malloc((npara + 1) * sizeof(char *) + bytes)) == NULL) {
		*errstr = "out of memory";
		return -1;
	}
	a->paras = (char **)(void *)mem;
	w = mem + (npara + 1) * sizeof(char *);
	for (size_t h = 0; h < H_NONE; h++)
		if (have[h])
			*hdr_slot(a, (enum hdr)h) = put_line(&w, &hv[h]);
	a->title = put_line(&w, &title);
	if (have_editor)
		a->editor = put_line(&w, &editor);
	if (have_copyright)
		a->copyright = put_line(&w, &copyright);
	bytes = 0;
	a->npara = join_paras(l, i, end, a->paras, &w, &bytes);
	a->paras[a->npara] = NULL;
	a->textlen = (size_t)(w - (mem + (npara + 1) * sizeof(char *)));

	if (a->date && !article_date_valid(a->date)) {
		*errstr = "bad Date: (want YYYY-MM-DD or RFC 3339)";
		return -1;
	}
	if (a->lang && !article_lang_valid(a->lang)) {
		*errstr =
		    "bad Lang: (want a language tag such as en or zh-Hans)";
		return -1;
	}
	return 0;
}

int
article_parse(
    const char *data, size_t len, struct article *a, const char **errstr)
{
	return article_parse_with(data, len, a, errstr, NULL, NULL);
}

int
article_parse_with(const char *data, size_t len, struct article *a,
    const char **errstr, void *(*alloc)(void *, size_t), void *ctx)
{
	struct line stack[STACK_LINES], *lines = stack;
	size_t n;
	int rv;

	memset(a, 0, sizeof(*a));
	if (len > ARTICLE_MAX_BYTES) {
		*errstr = "file too large";
		return -1;
	}
	if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0) {
		data += 3;
		len -= 3;
	}
	if ((*errstr = check_bytes(data, len)) != NULL)
		return -1;
	if ((n = count_lines(data, len)) > STACK_LINES &&
	    (lines = calloc(n, sizeof(*lines))) == NULL) {
		*errstr = "out of memory";
		return -1;
	}
	n = split_lines(data, len, lines);
	rv = parse_lines(lines, n, a, errstr, alloc, ctx);
	if (lines != stack)
		free(lines);
	/* A block from alloc is the caller's to drop. */
	if (rv == -1 && alloc != NULL)
		memset(a, 0, sizeof(*a));
	else if (rv == -1)
		article_free(a);
	else
		a->len = len;
	return rv;
}

void
article_fields(struct article *a, char **f[ARTICLE_NFIELDS])
{
	f[0] = &a->location;
	f[1] = &a->date;
	f[2] = &a->lang;
	f[3] = &a->tags;
	f[4] = &a->source;
	f[5] = &a->author;
	f[6] = &a->title;
	f[7] = &a->editor;
	f[8] = &a->copyright;
}
