#include <string.h>

#include "log.h"
#include "proto.h"
#include "render.h"

static void
error_menu(const struct gopher_ctx *g, struct reply *r, const char *what,
    const char *sel, size_t len)
{
	char esc[GOPHER_SELECTOR_MAX * 4 + 1];
	struct buf msg;

	buf_init(&msg);
	buf_adds(&msg, what);
	if (sel != NULL) {
		log_escape(esc, sizeof(esc), sel,
		    len > GOPHER_SELECTOR_MAX ? GOPHER_SELECTOR_MAX : len);
		buf_printf(&msg, ": %s", esc);
	}
	r->status = '3';
	if (buf_failed(&msg))
		render_gopher_error(&r->dyn, g->hostname, g->port, what);
	else
		render_gopher_error(&r->dyn, g->hostname, g->port, msg.p);
	buf_free(&msg);
}

void
gopher_respond(const struct gopher_ctx *g, const struct snapshot *snap,
    const char *line, size_t len, struct reply *r)
{
	char sel[GOPHER_SELECTOR_MAX + 2], clean[GOPHER_SELECTOR_MAX + 3];
	const char *tab;
	const struct node *n;
	size_t slen, clen;

	/* A TAB ends the selector; what follows is a search string. */
	if ((tab = memchr(line, '\t', len)) != NULL)
		len = (size_t)(tab - line);
	if (memchr(line, '\0', len) != NULL) {
		error_menu(g, r, "NUL in selector", NULL, 0);
		return;
	}
	if (len > GOPHER_SELECTOR_MAX) {
		error_menu(g, r, "selector longer than 255 bytes", NULL, 0);
		return;
	}
	/* "" and "/" are the home menu; "news/" is taken as "/news/". */
	slen = 0;
	if (len == 0 || line[0] != '/')
		sel[slen++] = '/';
	memcpy(sel + slen, line, len);
	slen += len;
	sel[slen] = '\0';
	if (path_clean(sel, slen, clean, sizeof(clean) - 1, &clen) == -1) {
		error_menu(g, r, "bad selector", line, len);
		return;
	}
	n = archive_lookup(snap, clean, clen);
	if (n == NULL && clean[clen - 1] != '/') {
		clean[clen] = '/';
		clean[clen + 1] = '\0';
		n = archive_lookup(snap, clean, clen + 1);
	}
	if (n == NULL) {
		error_menu(g, r, "not found", line, len);
		return;
	}
	r->status = n->kind == NODE_SECTION ? '1' : '0';
	r->body = &n->gopher;
}
