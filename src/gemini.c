#include <stdio.h>
#include <string.h>

#include "proto.h"

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

/* Crawlers are welcome; the archive has nothing to hide from them. */
static const char robots_txt[] = "User-agent: *\nDisallow:\n";
static const struct blob robots = {(char *)robots_txt, sizeof(robots_txt) - 1};

static void
status(struct reply *r, int code, const char *meta)
{
	r->status = code;
	strlcpy_s(r->meta, meta, sizeof(r->meta));
}

void
gemini_respond(const struct url_expect *ex, const struct snapshot *snap,
    const char *line, size_t len, struct reply *r)
{
	struct gemini_url u;
	const struct node *n;
	const char *why = "";
	enum url_verdict v;

	v = url_parse_gemini(line, len, ex, &u, &why);
	if (v != URL_OK) {
		status(r, (int)v, why);
		return;
	}
	if (strcmp(u.path, "/robots.txt") == 0) {
		status(r, 20, "text/plain; charset=utf-8");
		r->body = &robots;
		return;
	}
	if ((n = archive_lookup(snap, u.path, u.pathlen)) != NULL) {
		r->status = 20;
		snprintf(r->meta, sizeof(r->meta),
		    "text/gemini; charset=utf-8; lang=%s", n->lang);
		r->body = &n->gemini;
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
