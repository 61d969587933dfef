#include "render.h"

#include <string.h>

#include "archive.h"
#include "article.h"
#include "text.h"
#include "util.h"

#define CRLF "\r\n"
#define HOME_CRUMB "Home"

void
render_breadcrumb(struct buf *b, const struct node *n)
{
	const struct node *chain[ARCHIVE_MAX_DEPTH + 2];
	size_t k = 0;

	for (; n != NULL && k < sizeof(chain) / sizeof(chain[0]); n = n->parent)
		chain[k++] = n;
	while (k-- > 0) {
		buf_adds(
		    b, chain[k]->parent == NULL ? HOME_CRUMB : chain[k]->title);
		if (k > 0)
			buf_adds(b, " > ");
	}
}

/*
 * A paragraph that happens to begin with gemtext markup ("=>", "#", "*",
 * ">", "```") would be read as a link, heading, list item, quote or a
 * preformatting toggle; one leading space keeps it a plain text line.
 */
static void
gemini_text_line(struct buf *b, const char *s)
{
	if (strncmp(s, "=>", 2) == 0 || s[0] == '#' ||
	    strncmp(s, "* ", 2) == 0 || s[0] == '>' ||
	    strncmp(s, "```", 3) == 0)
		buf_addc(b, ' ');
	buf_adds(b, s);
	buf_addc(b, '\n');
}

void
render_gemini_article(
    struct buf *b, const struct node *n, const struct article *a)
{
	buf_printf(b, "# %s\n", n->title);
	buf_printf(b, "=> %s ", n->parent->path);
	render_breadcrumb(b, n->parent);
	buf_addc(b, '\n');
	if (n->date)
		buf_printf(b, "%.10s\n", n->date);
	for (size_t i = 0; i < a->npara; i++) {
		buf_addc(b, '\n');
		gemini_text_line(b, a->paras[i]);
	}
	if (a->editor || a->copyright)
		buf_addc(b, '\n');
	if (a->editor)
		gemini_text_line(b, a->editor);
	if (a->copyright)
		gemini_text_line(b, a->copyright);
}

/*
 * Entries follow the Gemini subscription convention ("=> path YYYY-MM-DD
 * Title"), so a client can subscribe to any section page as a feed.
 */
void
render_gemini_section(struct buf *b, const struct node *n)
{
	buf_printf(b, "# %s\n", n->title);
	if (n->description) {
		buf_addc(b, '\n');
		gemini_text_line(b, n->description);
	}
	if (n->parent) {
		buf_printf(b, "\n=> %s Up: ", n->parent->path);
		render_breadcrumb(b, n->parent);
		buf_addc(b, '\n');
	}
	if (n->nsections > 0) {
		buf_adds(b, "\n## Sections\n\n");
		for (size_t i = 0; i < n->nsections; i++)
			buf_printf(b, "=> %s %s\n", n->sections[i]->path,
			    n->sections[i]->title);
	}
	if (n->narticles > 0) {
		buf_adds(b, "\n## Articles\n\n");
		for (size_t i = 0; i < n->narticles; i++) {
			const struct node *a = n->articles[i];

			if (a->date)
				buf_printf(b, "=> %s %.10s %s\n", a->path,
				    a->date, a->title);
			else
				buf_printf(b, "=> %s %s\n", a->path, a->title);
		}
	}
	if (n->nsections == 0 && n->narticles == 0)
		buf_adds(b, "\nThis section is empty.\n");
}

static void
gopher_info(struct buf *b, const char *s, size_t width)
{
	buf_addc(b, 'i');
	text_truncate(b, s, strlen(s), width);
	buf_adds(b, GOPHER_INFO_TAIL);
}

/* Long text in a menu: one info line per wrapped line. */
static void
gopher_info_wrapped(struct buf *b, const char *s, size_t width)
{
	struct buf w;
	char *p, *nl;

	buf_init(&w);
	text_wrap(&w, s, strlen(s), width, "\n");
	if (buf_failed(&w)) {
		b->oom = true;
		buf_free(&w);
		return;
	}
	for (p = w.p; p != NULL && *p != '\0'; p = nl + 1) {
		nl = strchr(p, '\n');
		buf_addc(b, 'i');
		buf_add(b, p, (size_t)(nl - p));
		buf_adds(b, GOPHER_INFO_TAIL);
	}
	buf_free(&w);
}

static void
gopher_item(struct buf *b, const struct archive_opts *o, char type,
    const char *display, const char *selector)
{
	buf_addc(b, type);
	text_truncate(b, display, strlen(display), o->menu_width);
	buf_printf(
	    b, "\t%s\t%s\t%u" CRLF, selector, o->hostname, o->gopher_port);
}

void
render_gopher_section(
    struct buf *b, const struct archive_opts *o, const struct node *n)
{
	struct buf d;

	gopher_info(b, n->title, o->menu_width);
	if (n->description) {
		buf_adds(b, "i" GOPHER_INFO_TAIL);
		gopher_info_wrapped(b, n->description, o->menu_width);
	}
	if (n->nsections > 0) {
		buf_adds(b, "i" GOPHER_INFO_TAIL);
		for (size_t i = 0; i < n->nsections; i++)
			gopher_item(b, o, '1', n->sections[i]->title,
			    n->sections[i]->path);
	}
	if (n->narticles > 0) {
		buf_adds(b, "i" GOPHER_INFO_TAIL);
		buf_init(&d);
		for (size_t i = 0; i < n->narticles; i++) {
			const struct node *a = n->articles[i];

			d.len = 0;
			if (a->date)
				buf_printf(&d, "%.10s ", a->date);
			buf_adds(&d, a->title);
			if (buf_failed(&d))
				b->oom = true;
			else
				gopher_item(b, o, '0', d.p, a->path);
		}
		buf_free(&d);
	}
	if (n->nsections == 0 && n->narticles == 0) {
		buf_adds(b, "i" GOPHER_INFO_TAIL);
		gopher_info(b, "This section is empty.", o->menu_width);
	}
	if (n->parent) {
		buf_init(&d);
		buf_adds(&d, "Up: ");
		render_breadcrumb(&d, n->parent);
		buf_adds(b, "i" GOPHER_INFO_TAIL);
		if (buf_failed(&d))
			b->oom = true;
		else
			gopher_item(b, o, '1', d.p, n->parent->path);
		buf_free(&d);
	}
	buf_adds(b, "." CRLF);
}

/*
 * Type-0 text: no "." terminator, since no real client un-stuffs "..";
 * the server closes the connection to end the text (RFC 1436 allows it).
 */
void
render_gopher_article(struct buf *b, const struct archive_opts *o,
    const struct node *n, const struct article *a)
{
	struct buf crumb;

	text_wrap(b, n->title, strlen(n->title), o->wrap, CRLF);
	buf_init(&crumb);
	render_breadcrumb(&crumb, n->parent);
	if (buf_failed(&crumb))
		b->oom = true;
	else
		text_wrap(b, crumb.p, crumb.len, o->wrap, CRLF);
	buf_free(&crumb);
	if (n->date)
		buf_printf(b, "%.10s" CRLF, n->date);
	for (size_t i = 0; i < a->npara; i++) {
		buf_adds(b, CRLF);
		text_wrap(b, a->paras[i], strlen(a->paras[i]), o->wrap, CRLF);
	}
	if (a->editor || a->copyright)
		buf_adds(b, CRLF);
	if (a->editor)
		text_wrap(b, a->editor, strlen(a->editor), o->wrap, CRLF);
	if (a->copyright)
		text_wrap(b, a->copyright, strlen(a->copyright), o->wrap, CRLF);
}

void
render_gopher_error(
    struct buf *b, const char *hostname, unsigned port, const char *msg)
{
	buf_addc(b, '3');
	for (const char *p = msg; *p; p++)
		buf_addc(
		    b, (*p == '\t' || *p == '\r' || *p == '\n') ? ' ' : *p);
	buf_printf(b, "\t\t%s\t%u" CRLF "." CRLF, hostname, port);
}
