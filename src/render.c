#include "render.h"

#include <string.h>
#include <strings.h>

#include "archive.h"
#include "article.h"
#include "text.h"
#include "util.h"

#define CRLF "\r\n"
#define HOME_CRUMB "Home"

/* What a link to section n says: where it leads, not the way there. */
static const char *
label(const struct node *n)
{
	return n->path[1] == '\0' ? HOME_CRUMB : n->title;
}

void
render_breadcrumb(struct buf *b, const struct route *r)
{
	for (size_t i = 0; i < r->n; i++) {
		buf_adds(b, label(r->at[i]));
		if (i + 1 < r->n)
			buf_adds(b, " > ");
	}
}

/* The section above the route's node (its own section, for an article). */
static const struct node *
up(const struct route *r)
{
	return r->n >= 2 ? r->at[r->n - 2] : NULL;
}

static const struct node *
last(const struct route *r)
{
	return r->at[r->n - 1];
}

/*
 * A listing line's "YYYY-MM-DD" (what "%.10s" printed): the lines of a
 * section are a million at most and rendered at every start, so they
 * are appended, not formatted.
 */
static void
add_day(struct buf *b, const char *date)
{
	buf_add(b, date, strnlen(date, 10));
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

/* "=> target ": a section's feed, beside its page in either tree. */
static void
feed_link(struct buf *b, const struct node *sec, enum render_links links)
{
	buf_adds(b, "=> ");
	if (links == RENDER_LIVE)
		buf_adds(b, sec->path);
	buf_adds(b, FEED_NAME " ");
}

/*
 * Newest first by instant, then title and path: a total order, so a feed
 * lists the same entries in the same order on every load.  Within one
 * section it agrees with archive.c's order of articles.
 */
static int
cmp_newest(const struct node *x, const struct node *y)
{
	int c;

	if (x->when != y->when)
		return x->when < y->when ? 1 : -1;
	if ((c = strcasecmp(x->title, y->title)) != 0)
		return c;
	return strcmp(x->path, y->path);
}

/* A newest article, with the language it is in (its section's or own). */
struct pick {
	const struct node *a;
	const char *lang;
};

/* Keeps top[0..*n) the max newest dated articles under sec, in order. */
static void
collect_newest(const struct node *sec, struct pick *top, size_t *n, size_t max)
{
	const struct section *s = sec->sec;

	for (size_t i = 0; i < s->narticles; i++) {
		const struct node *a = s->articles[i];
		size_t j;

		/* Sorted newest first, undated last: the rest cannot win. */
		if (a->date == NULL ||
		    (*n == max && cmp_newest(a, top[max - 1].a) >= 0))
			break;
		j = *n < max ? (*n)++ : max - 1;
		for (; j > 0 && cmp_newest(a, top[j - 1].a) < 0; j--)
			top[j] = top[j - 1];
		top[j].a = a;
		top[j].lang = a->lang != NULL ? a->lang : sec->lang;
	}
	for (size_t i = 0; i < s->nsections; i++)
		collect_newest(s->sections[i], top, n, max);
}

static size_t
newest(const struct node *sec, struct pick *top, size_t max)
{
	size_t n = 0;

	collect_newest(sec, top, &n, max);
	return n;
}

/*
 * A paragraph that happens to begin with gemtext markup ("=>", "#", "*",
 * ">", "```") would be read as a link, heading, list item, quote or a
 * preformatting toggle; one leading space keeps it a plain text line.
 */
void
render_text_guard(struct buf *b, const char *s)
{
	if (strncmp(s, "=>", 2) == 0 || s[0] == '#' ||
	    strncmp(s, "* ", 2) == 0 || s[0] == '>' ||
	    strncmp(s, "```", 3) == 0)
		buf_addc(b, ' ');
}

static void
gemini_text_line(struct buf *b, const char *s)
{
	render_text_guard(b, s);
	buf_adds(b, s);
	buf_addc(b, '\n');
}

/*
 * The way on from an article: a link per section up the breadcrumb, then
 * its neighbours in the section's order (newest first), so a reader can
 * walk the archive without going back to the index.
 */
static void
render_gemini_nav(struct buf *b, const struct route *r, enum render_links links)
{
	const struct node *n = last(r), *sec = up(r);
	const struct section *s = sec->sec;
	size_t pos = archive_position(s, n);

	buf_addc(b, '\n');
	for (size_t i = 0; i + 1 < r->n; i++) {
		gemini_link(b, sec, r->at[i], links);
		buf_printf(b, "%s\n", label(r->at[i]));
	}
	if (pos >= s->narticles)
		return;
	if (pos > 0) {
		gemini_link(b, sec, s->articles[pos - 1], links);
		buf_printf(b, "Previous: %s\n", s->articles[pos - 1]->title);
	}
	if (pos + 1 < s->narticles) {
		gemini_link(b, sec, s->articles[pos + 1], links);
		buf_printf(b, "Next: %s\n", s->articles[pos + 1]->title);
	}
}

void
render_gemini_article(struct buf *b, const struct route *r,
    const struct article *a, enum render_links links)
{
	const struct node *n = last(r);

	buf_printf(b, "# %s\n", n->title);
	gemini_link(b, up(r), up(r), links);
	buf_printf(b, "%s\n", label(up(r)));
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
	render_gemini_nav(b, r, links);
}

/*
 * Entries follow the Gemini subscription convention ("=> path YYYY-MM-DD
 * Title"), so a client can subscribe to any section page as a feed.
 */
void
render_gemini_section(
    struct buf *b, const struct route *r, enum render_links links)
{
	const struct node *n = last(r);
	const struct section *s = n->sec;

	buf_printf(b, "# %s\n", n->title);
	if (s->description) {
		buf_addc(b, '\n');
		gemini_text_line(b, s->description);
	}
	if (up(r)) {
		buf_addc(b, '\n');
		gemini_link(b, n, up(r), links);
		buf_printf(b, "Up: %s\n", label(up(r)));
	}
	buf_addc(b, '\n');
	feed_link(b, n, links);
	buf_adds(b, "Atom feed\n");
	/* Live only: a static export has no server to ask. */
	if (links == RENDER_LIVE)
		buf_adds(b, "=> /search Search the archive\n");
	if (s->nsections > 0) {
		buf_adds(b, "\n## Sections\n\n");
		for (size_t i = 0; i < s->nsections; i++) {
			gemini_link(b, n, s->sections[i], links);
			buf_adds(b, s->sections[i]->title);
			buf_addc(b, '\n');
		}
	}
	if (up(r) == NULL) {
		struct pick top[HOME_NEWEST];
		size_t k = newest(n, top, HOME_NEWEST);

		if (k > 0)
			buf_adds(b, "\n## Newest\n\n");
		for (size_t i = 0; i < k; i++) {
			gemini_link(b, n, top[i].a, links);
			buf_printf(
			    b, "%.10s %s\n", top[i].a->date, top[i].a->title);
		}
	}
	if (s->narticles > 0) {
		buf_adds(b, "\n## Articles\n\n");
		for (size_t i = 0; i < s->narticles; i++) {
			const struct node *a = s->articles[i];

			gemini_link(b, n, a, links);
			if (a->date) {
				add_day(b, a->date);
				buf_addc(b, ' ');
			}
			buf_adds(b, a->title);
			buf_addc(b, '\n');
		}
	}
	if (s->nsections == 0 && s->narticles == 0)
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
	/* What ends every item: live, "TAB host TAB port" and eol; a map,
	 * eol alone.  Made once: a menu may list a million articles. */
	struct buf end;
};

static void
gopher_info(struct menu *m, const char *s)
{
	buf_addc(m->b, 'i');
	text_truncate(
	    m->b, s, strlen(s), m->o->menu_width, TEXT_DOTS, m->here->lang);
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
	text_wrap(&w, s, strlen(s), m->o->menu_width, "\n", m->here->lang);
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

/*
 * A map item leaves out host and port: Gophernicus fills in its own.
 * lang: the one `to` is in.
 */
static void
gopher_item_len(struct menu *m, char type, const char *display, size_t len,
    const struct node *to, const char *lang)
{
	buf_addc(m->b, type);
	text_truncate(m->b, display, len, m->o->menu_width, TEXT_DOTS, lang);
	buf_addc(m->b, '\t');
	link_to(m->b, m->here, to, m->links, EXPORT_GOPHER_EXT, false);
	buf_add(m->b, m->end.p, m->end.len);
}

static void
gopher_item(struct menu *m, char type, const char *display,
    const struct node *to, const char *lang)
{
	gopher_item_len(m, type, display, strlen(display), to, lang);
}

/* The feed's item: the same XML bytes, as text a client can save. */
static void
gopher_feed_item(struct menu *m)
{
	gopher_info(m, "");
	buf_adds(m->b, "0Atom feed (gemini links)\t");
	if (m->links == RENDER_LIVE)
		buf_adds(m->b, m->here->path);
	buf_adds(m->b, FEED_NAME);
	if (m->links == RENDER_LIVE)
		buf_printf(m->b, "\t%s\t%u", m->o->hostname, m->o->gopher_port);
	buf_adds(m->b, m->eol);
}

/* The home menu's newest articles of the whole archive, as on Gemini. */
static void
gopher_newest(struct menu *m)
{
	struct pick top[HOME_NEWEST];
	size_t k = newest(m->here, top, HOME_NEWEST);
	struct buf d;

	if (k == 0)
		return;
	gopher_info(m, "");
	gopher_info(m, "Newest");
	buf_init(&d);
	for (size_t i = 0; i < k; i++) {
		d.len = 0;
		buf_printf(&d, "%.10s %s", top[i].a->date, top[i].a->title);
		if (buf_failed(&d))
			m->b->oom = true;
		else
			gopher_item(m, '0', d.p, top[i].a, top[i].lang);
	}
	buf_free(&d);
}

void
render_gopher_section(struct buf *b, const struct archive_opts *o,
    const struct route *r, enum render_links links)
{
	const struct node *n = last(r);
	const struct section *s = n->sec;
	struct menu m = {b, o, n, links, links == RENDER_LIVE ? CRLF : "\n",
	    {NULL, 0, 0, false}};
	struct buf d;

	if (links == RENDER_LIVE)
		buf_printf(&m.end, "\t%s\t%u", o->hostname, o->gopher_port);
	buf_adds(&m.end, m.eol);
	if (buf_failed(&m.end)) {
		buf_free(&m.end);
		b->oom = true;
		return;
	}
	gopher_info(&m, n->title);
	if (s->description) {
		gopher_info(&m, "");
		gopher_info_wrapped(&m, s->description);
	}
	/*
	 * Each group under a label, as the Gemini page's headings: without
	 * them the home's articles read as more of "Newest".
	 */
	if (s->nsections > 0) {
		gopher_info(&m, "");
		gopher_info(&m, "Sections");
		for (size_t i = 0; i < s->nsections; i++)
			gopher_item(&m, '1', s->sections[i]->title,
			    s->sections[i], s->sections[i]->lang);
	}
	if (up(r) == NULL)
		gopher_newest(&m);
	if (s->narticles > 0) {
		gopher_info(&m, "");
		gopher_info(&m, "Articles");
		buf_init(&d);
		for (size_t i = 0; i < s->narticles; i++) {
			const struct node *a = s->articles[i];

			d.len = 0;
			if (a->date) {
				add_day(&d, a->date);
				buf_addc(&d, ' ');
			}
			buf_adds(&d, a->title);
			if (buf_failed(&d))
				b->oom = true;
			else
				gopher_item_len(&m, '0', d.p, d.len, a,
				    a->lang != NULL ? a->lang : n->lang);
		}
		buf_free(&d);
	}
	if (s->nsections == 0 && s->narticles == 0) {
		gopher_info(&m, "");
		gopher_info(&m, "This section is empty.");
	}
	gopher_feed_item(&m);
	/* Live only: a static export has no server to ask. */
	if (links == RENDER_LIVE)
		buf_printf(b, "7Search the archive\t/search\t%s\t%u" CRLF,
		    o->hostname, o->gopher_port);
	if (up(r)) {
		buf_init(&d);
		buf_printf(&d, "Up: %s", label(up(r)));
		gopher_info(&m, "");
		if (buf_failed(&d))
			b->oom = true;
		else
			gopher_item(&m, '1', d.p, up(r), up(r)->lang);
		buf_free(&d);
	}
	/* Gophernicus stops at the end of a map by itself. */
	if (links == RENDER_LIVE)
		buf_adds(b, "." CRLF);
	buf_free(&m.end);
}

/*
 * The breadcrumb under an article's title, on one line: whole when it
 * fits, else without the sections nearest the root ("Home > … >
 * Science > Space"), cut with "…" when even the last is too wide.  A
 * wrapped breadcrumb left a lone word on a line of its own.
 */
static void
heading_crumb(
    struct buf *b, const struct route *r, size_t width, const char *lang)
{
	size_t k = r->n - 1; /* the sections: the article is not in it */
	struct buf line;

	buf_init(&line);
	/* at[0] is the root; drop from at[1] down. */
	for (size_t drop = 0; drop < k; drop++) {
		line.len = 0;
		buf_adds(&line, HOME_CRUMB);
		if (drop > 0)
			buf_adds(&line, " > " TEXT_ELLIPSIS);
		for (size_t i = 1 + drop; i < k; i++) {
			buf_adds(&line, " > ");
			buf_adds(&line, r->at[i]->title);
		}
		if (buf_failed(&line) ||
		    text_width(line.p, line.len) <= width || drop + 2 >= k)
			break;
	}
	if (buf_failed(&line))
		b->oom = true;
	else
		text_truncate(b, line.p, line.len, width, TEXT_ELLIPSIS, lang);
	buf_adds(b, CRLF);
	buf_free(&line);
}

/*
 * Type-0 text: no "." terminator, since no real client un-stuffs "..";
 * the server closes the connection to end the text (RFC 1436 allows it).
 */
void
render_gopher_article(struct buf *b, const struct archive_opts *o,
    const struct route *r, const struct article *a)
{
	const struct node *n = last(r);
	const char *lang = route_lang(r);

	text_wrap_balanced(b, n->title, strlen(n->title), o->wrap, CRLF, lang);
	heading_crumb(b, r, o->wrap, lang);
	if (n->date)
		buf_printf(b, "%.10s" CRLF, n->date);
	for (size_t i = 0; i < a->npara; i++) {
		buf_adds(b, CRLF);
		text_wrap(
		    b, a->paras[i], strlen(a->paras[i]), o->wrap, CRLF, lang);
	}
	if (a->editor || a->copyright)
		buf_adds(b, CRLF);
	if (a->editor)
		text_wrap(b, a->editor, strlen(a->editor), o->wrap, CRLF, lang);
	if (a->copyright)
		text_wrap(
		    b, a->copyright, strlen(a->copyright), o->wrap, CRLF, lang);
}

/* XML or HTML text or attribute value; C0 controls are not XML 1.0. */
void
render_escape(struct buf *b, const char *s, size_t len)
{
	for (const char *end = s + len; s < end; s++) {
		switch (*s) {
		case '&':
			buf_adds(b, "&amp;");
			break;
		case '<':
			buf_adds(b, "&lt;");
			break;
		case '>':
			buf_adds(b, "&gt;");
			break;
		case '"':
			buf_adds(b, "&quot;");
			break;
		case '\'':
			buf_adds(b, "&apos;");
			break;
		default:
			if ((unsigned char)*s >= 0x20)
				buf_addc(b, *s);
		}
	}
}

static void
xml_escape(struct buf *b, const char *s)
{
	render_escape(b, s, strlen(s));
}

/* gemini://host[:port]path, the port left out when it is Gemini's own. */
static void
gemini_url(struct buf *b, const struct archive_opts *o, const char *path,
    const char *suffix)
{
	buf_adds(b, "gemini://");
	if (strchr(o->hostname, ':') != NULL) {
		buf_addc(b, '[');
		xml_escape(b, o->hostname);
		buf_addc(b, ']');
	} else
		xml_escape(b, o->hostname);
	if (o->gemini_port != 0 && o->gemini_port != 1965)
		buf_printf(b, ":%u", o->gemini_port);
	xml_escape(b, path);
	buf_adds(b, suffix);
}

/*
 * A Date: as RFC 3339, which Atom requires: a date alone is taken as
 * midnight UTC, missing seconds are zero, a time without a zone is UTC.
 * The date was checked by article_date_valid.
 */
static void
rfc3339(struct buf *b, const char *date)
{
	const char *t = date + 10;

	buf_add(b, date, 10);
	if (*t == '\0') {
		buf_adds(b, "T00:00:00Z");
		return;
	}
	buf_addc(b, 'T');
	buf_add(b, t + 1, 5);
	t += 6;
	if (*t == ':') {
		buf_add(b, t, 3);
		t += 3;
	} else
		buf_adds(b, ":00");
	buf_adds(b, *t == '\0' ? "Z" : t);
}

void
render_atom_feed(struct buf *b, const struct archive_opts *o,
    const struct route *r, enum render_links style)
{
	const struct node *n = last(r), *root = r->at[0];
	struct pick top[FEED_ENTRIES];
	size_t k = newest(n, top, FEED_ENTRIES);
	buf_adds(b,
	    "<?xml version=\"1.0\" encoding=\"utf-8\"?>" CRLF
	    "<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"");
	xml_escape(b, n->lang);
	buf_adds(b, "\">" CRLF "  <title>");
	xml_escape(b, n->title);
	buf_adds(b, "</title>" CRLF);
	if (n->sec->description) {
		buf_adds(b, "  <subtitle>");
		xml_escape(b, n->sec->description);
		buf_adds(b, "</subtitle>" CRLF);
	}
	buf_adds(b,
	    "  <link rel=\"self\" type=\"application/atom+xml\" "
	    "href=\"");
	gemini_url(b, o, n->path, FEED_NAME);
	buf_adds(b,
	    "\"/>" CRLF "  <link rel=\"alternate\" "
	    "type=\"text/gemini\" href=\"");
	gemini_url(b, o, n->path, "");
	/* The feed's URL names it for good: nothing here depends on a load. */
	buf_adds(b, "\"/>" CRLF "  <id>");
	gemini_url(b, o, n->path, FEED_NAME);
	/* No dated article yet: a fixed date keeps the bytes stable too. */
	buf_adds(b, "</id>" CRLF "  <updated>");
	rfc3339(b, k > 0 ? top[0].a->date : "1970-01-01");
	buf_adds(b, "</updated>" CRLF "  <author><name>");
	xml_escape(b, root->title);
	buf_adds(
	    b, "</name></author>" CRLF "  <generator>serai</generator>" CRLF);
	for (size_t i = 0; i < k; i++) {
		const struct node *a = top[i].a;

		buf_adds(b, "  <entry");
		if (top[i].lang && n->lang &&
		    strcmp(top[i].lang, n->lang) != 0) {
			buf_adds(b, " xml:lang=\"");
			xml_escape(b, top[i].lang);
			buf_addc(b, '"');
		}
		buf_adds(b, ">" CRLF "    <title>");
		xml_escape(b, a->title);
		buf_adds(b,
		    "</title>" CRLF "    <link rel=\"alternate\" "
		    "type=\"text/gemini\" href=\"");
		gemini_url(b, o, a->path, style == RENDER_EXPORT ? ".gmi" : "");
		buf_adds(b, "\"/>" CRLF "    <id>");
		gemini_url(b, o, a->path, "");
		buf_adds(b, "</id>" CRLF "    <updated>");
		rfc3339(b, a->date);
		buf_adds(b, "</updated>" CRLF "  </entry>" CRLF);
	}
	buf_adds(b, "</feed>" CRLF);
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
