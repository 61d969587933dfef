/*
 * An article file through the parser and, when it parses, every renderer
 * (gemtext and Gopher text), checking the invariants the protocols need.
 */
#include <string.h>

#include "article.h"
#include "fuzz.h"
#include "render.h"
#include "text.h"
#include "util.h"

static void
check_gopher_text(const struct buf *b, size_t width)
{
	const char *p = b->p, *end = b->p + b->len;

	while (p < end) {
		const char *nl = strstr(p, "\r\n");
		size_t n;

		if (nl == NULL)
			__builtin_trap(); /* every line ends CRLF */
		n = (size_t)(nl - p);
		if (n > 0 && p[0] == '.')
			__builtin_trap();
		/* Wider only by the space put before a leading '.'. */
		if (text_width(p, n) > width + 1 || !utf8_valid(p, n))
			__builtin_trap();
		p = nl + 2;
	}
}

/*
 * Every gophermap line holds a TAB: Gophernicus reads a line without one
 * as info text, or as a directive ('=' runs a command) by its first byte.
 */
static void
check_gophermap(const struct buf *b)
{
	const char *p = b->p, *end = b->p + b->len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (nl == NULL || memchr(p, '\t', (size_t)(nl - p)) == NULL ||
		    memchr(p, '\r', (size_t)(nl - p)) != NULL)
			__builtin_trap();
		p = nl + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct section roots = {0}, secs = {0};
	struct node root = {.kind = NODE_SECTION,
	    .path = "/",
	    .name = "",
	    .title = "Home",
	    .lang = "en",
	    .sec = &roots};
	struct node sec = {.kind = NODE_SECTION,
	    .path = "/news/",
	    .name = "news",
	    .title = "News",
	    .lang = "en",
	    .sec = &secs};
	struct node art = {
	    .kind = NODE_ARTICLE, .path = "/news/a", .name = "a", .lang = "en"};
	struct node *arts[1] = {&art};
	struct route ra = {{&root, &sec, &art}, 3}, rs = {{&root, &sec}, 2};
	struct article a;
	const char *why;
	struct buf b;

	if (article_parse((const char *)data, len, &a, &why) == -1)
		return 0;
	art.title = a.title;
	art.date = a.date;
	secs.articles = arts;
	secs.narticles = 1;
	buf_init(&b);
	render_gemini_article(&b, &ra, &a, RENDER_LIVE);
	if (!buf_failed(&b) && !utf8_valid(b.p, b.len))
		__builtin_trap();
	b.len = 0;
	render_gemini_section(&b, &rs, RENDER_LIVE);
	b.len = 0;
	render_gopher_article(&b, fuzz_opts(), &ra, &a);
	if (!buf_failed(&b))
		check_gopher_text(&b, fuzz_opts()->wrap);
	b.len = 0;
	render_gopher_section(&b, fuzz_opts(), &rs, RENDER_LIVE);
	/* The export's pages (--export) of the same article. */
	b.len = 0;
	render_gemini_article(&b, &ra, &a, RENDER_EXPORT);
	if (!buf_failed(&b) && !utf8_valid(b.p, b.len))
		__builtin_trap();
	b.len = 0;
	render_gemini_section(&b, &rs, RENDER_EXPORT);
	b.len = 0;
	render_gopher_section(&b, fuzz_opts(), &rs, RENDER_EXPORT);
	if (!buf_failed(&b))
		check_gophermap(&b);
	buf_free(&b);
	article_free(&a);
	return 0;
}
