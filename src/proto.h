/*
 * The two protocol handlers: one request line in, one reply out.  Pure:
 * they read the snapshot and fill a struct reply; conn.c does the I/O.
 */
#ifndef SERAI_PROTO_H
#define SERAI_PROTO_H

#include <stdbool.h>
#include <stddef.h>

#include "archive.h"
#include "url.h"
#include "util.h"

/* Status line "NN SP meta CRLF": the 2024 spec caps meta at 1024 bytes. */
#define GEMINI_META_MAX 1024
/* URL + CRLF: longer without a CRLF is answered 59 at once. */
#define GEMINI_REQUEST_MAX (GEMINI_URL_MAX + 2)
/*
 * RFC 1436 keeps selectors within 255 bytes; the line may also carry a
 * TAB and a search string (or Gopher+ marker), hence the larger line.
 */
#define GOPHER_SELECTOR_MAX 255
#define GOPHER_LINE_MAX 1024

struct reply {
	int status;                     /* Gemini status, or Gopher item type */
	char meta[GEMINI_META_MAX + 1]; /* Gemini only */
	const struct blob *body; /* borrowed from the snapshot, or NULL */
	struct buf dyn;          /* owned body when not from the snapshot */
	/*
	 * In: leave a search undone, only flagged in deferred, so that the
	 * caller can run it off its event loop.  The parser decides what
	 * a search is, so no spelling of one (percent-encoded, say)
	 * slips past.
	 */
	bool defer;
	bool deferred; /* out */
};

void reply_init(struct reply *);
void reply_free(struct reply *);
/* The body to send, whichever of the two holds it (NULL: none). */
const char *reply_body(const struct reply *, size_t *len);

void gemini_respond(const struct url_expect *, const struct snapshot *,
    const char *line, size_t len, struct reply *);

struct gopher_ctx {
	const char *hostname;
	unsigned port;
	unsigned wrap; /* text width, told to clients in /caps.txt */
};

void gopher_respond(const struct gopher_ctx *, const struct snapshot *,
    const char *line, size_t len, struct reply *);

#endif
