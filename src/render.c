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
 * The target of a link, on a page of section `here` (a section's own page
 * or an article's section), to `to`.  Exported links are relative to the
 * directory of `here`: down by name, up by "../", "./" for `here` itself;
 * article files end in `ext`.  Without `climb` (Gophernicus refuses any
 * selector holding "..") a link up is the absolute path of the file.
 */
static void
link_to(struct buf *b, const struct node *here, const struct node *to,
    enum render_links links, const char *ext, bool climb)
{
	const char *h = here->path, *t = to->path;
	size_t common = 0, start = b->len;

	if (links == RENDER_LIVE) {
		buf_adds(b, t);
		return;
	}
	/* Both paths start with "/": the longest shared directory. */
	for (size_t i = 0; h[i] != '\0' && h[i] == t[i]; i++)
		if (h[i] == '/')
			common = i + 1;
	if (climb || strchr(h + common, '/') == NULL) {
		for (const char *p = h + common; *p != '\0'; p++)
			if (*p == '/')
				buf_adds(b, "../");
	} else
		common = 0;
	buf_adds(b, t + common);
	if (to->kind == NODE_ARTICLE)
		buf_adds(b, ext);
	if (b->len == start)
		buf_adds(b, "./");
}

/* "=> target ": the start of a gemtext link line. */
static void
gemini_link(struct buf *b, const struct node *here, const struct node *to,
    enum render_links links)
{
	buf_adds(b, "=> ");
	link_to(b, here, to, links, EXPORT_GEMINI_EXT, true);
	buf_addc(b, ' ');
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
render_gemini_article(struct buf *b, const struct node *n,
    const struct article *a, enum render_links links)
{
	buf_printf(b, "# %s\n", n->title);
	gemini_link(b, n->parent, n->parent, links);
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
render_gemini_section(
    struct buf *b, const struct node *n, enum render_links links)
{
	buf_printf(b, "# %s\n", n->title);
	if (n->description) {
		buf_addc(b, '\n');
		gemini_text_line(b, n->description);
	}
	if (n->parent) {
		buf_addc(b, '\n');
		gemini_link(b, n, n->parent, links);
		buf_adds(b, "Up: ");
		render_breadcrumb(b, n->parent);
		buf_addc(b, '\n');
	}
	if (n->nsections > 0) {
		buf_adds(b, "\n## Sections\n\n");
		for (size_t i = 0; i < n->nsections; i++) {
			gemini_link(b, n, n->sections[i], links);
			buf_printf(b, "%s\n", n->sections[i]->title);
		}
	}
	if (n->narticles > 0) {
		buf_adds(b, "\n## Articles\n\n");
		for (size_t i = 0; i < n->narticles; i++) {
			const struct node *a = n->articles[i];

			gemini_link(b, n, a, links);
			if (a->date)
				buf_printf(b, "%.10s ", a->date);
			buf_printf(b, "%s\n", a->title);
		}
	}
	if (n->nsections == 0 && n->narticles == 0)
		buf_adds(b, "\nThis section is empty.\n");
}

/*
 * A live menu, or a gophermap for Gophernicus (RENDER_EXPORT).  The map
 * keeps info lines in the full "i text TAB TAB null.host TAB 1" form:
 * Gophernicus makes a line without a TAB info text too, but reads one
 * starting with '#', '!', '-', ':', '*', '.', '~', '%' or '=' (which runs
 * a command) as a directive, and a title may start with any of them.
 */
struct menu {
	struct buf *b;
	const struct archive_opts *o;
	const struct node *here;
	enum render_links links;
	const char *eol; /* live: CRLF (RFC 1436); map: a Unix text file */
};

static void
gopher_info(struct menu *m, const char *s)
{
	buf_addc(m->b, 'i');
	text_truncate(m->b, s, strlen(s), m->o->menu_width);
	buf_adds(m->b, GOPHER_INFO_FIELDS);
	buf_adds(m->b, m->eol);
}

/* Long text in a menu: one info line per wrapped line. */
static void
gopher_info_wrapped(struct menu *m, const char *s)
{
	struct buf w;
	char *p, *nl;

	buf_init(&w);
	text_wrap(&w, s, strlen(s), m->o->menu_width, "\n");
	if (buf_failed(&w)) {
		m->b->oom = true;
		buf_free(&w);
		return;
	}
	for (p = w.p; p != NULL && *p != '\0'; p = nl + 1) {
		nl = strchr(p, '\n');
		buf_addc(m->b, 'i');
		buf_add(m->b, p, (size_t)(nl - p));
		buf_adds(m->b, GOPHER_INFO_FIELDS);
		buf_adds(m->b, m->eol);
	}
	buf_free(&w);
}

/* A map item leaves out host and port: Gophernicus fills in its own. */
static void
gopher_item(
    struct menu *m, char type, const char *display, const struct node *to)
{
	buf_addc(m->b, type);
	text_truncate(m->b, display, strlen(display), m->o->menu_width);
	buf_addc(m->b, '\t');
	link_to(m->b, m->here, to, m->links, EXPORT_GOPHER_EXT, false);
	if (m->links == RENDER_LIVE)
		buf_printf(m->b, "\t%s\t%u", m->o->hostname, m->o->gopher_port);
	buf_adds(m->b, m->eol);
}

void
render_gopher_section(struct buf *b, const struct archive_opts *o,
    const struct node *n, enum render_links links)
{
	struct menu m = {b, o, n, links, links == RENDER_LIVE ? CRLF : "\n"};
	struct buf d;

	gopher_info(&m, n->title);
	if (n->description) {
		gopher_info(&m, "");
		gopher_info_wrapped(&m, n->description);
	}
	if (n->nsections > 0) {
		gopher_info(&m, "");
		for (size_t i = 0; i < n->nsections; i++)
			gopher_item(
			    &m, '1', n->sections[i]->title, n->sections[i]);
	}
	if (n->narticles > 0) {
		gopher_info(&m, "");
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
				gopher_item(&m, '0', d.p, a);
		}
		buf_free(&d);
	}
	if (n->nsections == 0 && n->narticles == 0) {
		gopher_info(&m, "");
		gopher_info(&m, "This section is empty.");
	}
	if (n->parent) {
		buf_init(&d);
		buf_adds(&d, "Up: ");
		render_breadcrumb(&d, n->parent);
		gopher_info(&m, "");
		if (buf_failed(&d))
			b->oom = true;
		else
			gopher_item(&m, '1', d.p, n->parent);
		buf_free(&d);
	}
	/* Gophernicus stops at the end of a map by itself. */
	if (links == RENDER_LIVE)
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
