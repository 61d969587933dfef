#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "article.h"
#include "proto.h"
#include "render.h"
#include "search.h"

void
reply_init(struct reply *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->dyn);
}

void
reply_free(struct reply *r)
{
	buf_free(&r->dyn);
}

const char *
reply_body(const struct reply *r, size_t *len)
{
	if (r->body != NULL && r->body->len > 0) {
		*len = r->body->len;
		return r->body->p;
	}
	*len = r->dyn.len;
	return r->dyn.len > 0 ? r->dyn.p : NULL;
}

/*
 * Crawlers are welcome; the archive has nothing to hide from them.
 * Without the archive's own robots.txt: every page may be crawled, but
 * not search results, which are endless and each costs a query.  The
 * agents are those of Gemini's robots.txt companion specification.
 */
static const char robots_txt[] =
    "# serai's built-in robots.txt; a robots.txt at the archive root\n"
    "# replaces it.  Gemini's agents: archiver, indexer, researcher,\n"
    "# webproxy.  Every page may be fetched; search results may not.\n"
    "User-agent: *\n"
    "Disallow: /search\n";
static const struct blob robots = {(char *)robots_txt, sizeof(robots_txt) - 1};

static void
status(struct reply *r, int code, const char *meta)
{
	r->status = code;
	strlcpy_s(r->meta, meta, sizeof(r->meta));
}

/* A line of user text: no control byte, and never read as markup. */
static void
search_text(struct buf *b, const char *s)
{
	render_text_guard(b, s);
	for (; *s; s++)
		buf_addc(b, (unsigned char)*s < ' ' ? ' ' : *s);
}

/*
 * "/search?QUERY", and "/search/N?QUERY" for page N: a Gemini query is
 * the whole query string, so the page cannot be a "&page=" parameter.
 * Errors a user can fix by rewording are pages (20), not statuses.
 */
static void
search(const struct snapshot *snap, const struct gemini_url *u, struct reply *r)
{
	char q[GEMINI_URL_MAX + 1];
	const char *p = u->path + strlen("/search");
	struct search_result res;
	struct search_terms terms;
	struct search *se;
	enum search_status st;
	struct buf *b = &r->dyn;
	size_t qlen, page = 1, pages;

	if (*p == '/') {
		char *end;

		page = strtoul(p + 1, &end, 10);
		if (p[1] < '1' || p[1] > '9' || *end != '\0') {
			status(r, 51, "not found");
			return;
		}
	}
	if (!u->has_query || u->query[0] == '\0') {
		status(r, 10, "Search the archive");
		return;
	}
	/* '+' stays a '+': Gemini clients encode a space as %20. */
	if (url_pct_decode(u->query, strlen(u->query), q, sizeof(q), &qlen) ==
	        -1 ||
	    !utf8_valid(q, qlen)) {
		status(r, 59, "bad query: not percent-encoded UTF-8");
		return;
	}
	if (qlen > SEARCH_QUERY_MAX) {
		status(r, 59, "query longer than 256 bytes");
		return;
	}
	status(r, 20, "text/gemini; charset=utf-8");
	buf_adds(b, "# Search: ");
	search_text(b, q);
	buf_adds(b, "\n\n");
	if ((se = archive_search(snap)) == NULL) {
		buf_adds(b,
		    atomic_load(&snap->indexing)
		        ? "The search index is being built: try again in a "
		          "moment.\n"
		        : "Search is not available now.\n");
		goto links;
	}
	st = search_query(se, q, qlen, page, &res);
	switch (st) {
	case SEARCH_OK:
		break;
	case SEARCH_EMPTY:
		buf_adds(b,
		    "Nothing to search for: use words, \"phrases\" "
		    "or prefixes*.\n");
		goto links;
	case SEARCH_TOO_BROAD:
		buf_adds(b,
		    "The query is too broad: add words, or make "
		    "prefixes longer.\n");
		goto links;
	case SEARCH_TOO_LONG:
	case SEARCH_FAILED:
		buf_adds(b, "The search failed; try other words.\n");
		goto links;
	}
	pages = (res.total + SEARCH_PAGE_SIZE - 1) / SEARCH_PAGE_SIZE;
	if (res.total == 0)
		buf_adds(b, "No article matches.\n");
	else if (res.nids == 0)
		buf_printf(b, "%s%zu hits; no page %zu.\n",
		    res.newest ? "Over " : "", res.total, page);
	else if (res.newest)
		buf_printf(b,
		    "Over %zu hits, newest first (add words to rank them by "
		    "relevance), page %zu of %zu.\n",
		    res.total, page, pages);
	else
		buf_printf(b, "%zu hit%s, page %zu of %zu.\n", res.total,
		    res.total == 1 ? "" : "s", page, pages);
	search_terms_init(&terms, q, qlen);
	for (size_t i = 0; i < res.nids; i++) {
		struct route rt;
		const struct node *n = archive_route(
		    snap, res.paths[i], strlen(res.paths[i]), &rt);

		/* Gone since it was indexed, or a section there now. */
		if (n == NULL || n->kind != NODE_ARTICLE)
			continue;
		buf_printf(b, "\n=> %s ", n->path);
		if (n->date)
			buf_printf(b, "%.10s ", n->date);
		buf_printf(b, "%s\n", n->title);
		search_text(b, rt.at[rt.n - 2]->title);
		buf_adds(b, ": ");
		search_snippet(b, &terms, n->art->paras, n->art->npara);
		buf_addc(b, '\n');
	}
	search_terms_free(&terms);
	if (res.nids > 0 && (page > 1 || page < pages))
		buf_addc(b, '\n');
	if (page > 1 && page <= pages + 1) {
		if (page == 2)
			buf_printf(b, "=> /search?%s", u->query);
		else
			buf_printf(b, "=> /search/%zu?%s", page - 1, u->query);
		buf_printf(b, " Previous page\n");
	}
	if (res.nids > 0 && page < pages && page < SEARCH_PAGE_MAX)
		buf_printf(
		    b, "=> /search/%zu?%s Next page\n", page + 1, u->query);
links:
	buf_adds(b, "\n=> /search Search again\n=> / Home\n");
}

void
gemini_respond(const struct url_expect *ex, const struct snapshot *snap,
    const char *line, size_t len, struct reply *r)
{
	struct gemini_url u;
	const struct node *n;
	struct route rt;
	const char *why = "";
	enum url_verdict v;

	v = url_parse_gemini(line, len, ex, &u, &why);
	if (v != URL_OK) {
		status(r, (int)v, why);
		return;
	}
	if (strcmp(u.path, "/robots.txt") == 0) {
		status(r, 20, "text/plain; charset=utf-8");
		r->body = snap->robots.p != NULL ? &snap->robots : &robots;
		return;
	}
	if (strcmp(u.path, "/search") == 0 ||
	    strncmp(u.path, "/search/", 8) == 0) {
		if (r->defer)
			r->deferred = true;
		else
			search(snap, &u, r);
		return;
	}
	/* Pre-rendered in the snapshot: feeds stay zero-copy too. */
	if ((n = archive_lookup_feed(snap, u.path, u.pathlen)) != NULL) {
		status(r, 20, "application/atom+xml");
		r->body = &n->sec->feed;
		return;
	}
	if ((n = archive_route(snap, u.path, u.pathlen, &rt)) != NULL) {
		r->status = 20;
		snprintf(r->meta, sizeof(r->meta),
		    "text/gemini; charset=utf-8; lang=%s", route_lang(&rt));
		if (n->kind == NODE_SECTION)
			r->body = &n->sec->gemini;
		else
			render_gemini_article(
			    &r->dyn, &rt, n->art, RENDER_LIVE);
		return;
	}
	/* A section named without its slash: send the client to it. */
	if (u.path[u.pathlen - 1] != '/' && u.pathlen + 1 < sizeof(u.path)) {
		u.path[u.pathlen] = '/';
		u.path[u.pathlen + 1] = '\0';
		n = archive_lookup(snap, u.path, u.pathlen + 1);
		if (n != NULL && n->kind == NODE_SECTION) {
			status(r, 31, n->path);
			return;
		}
	}
	status(r, 51, "not found");
}
