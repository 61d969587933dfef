/*
 * Pure renderers: parsed articles and sections to gemtext, Gopher menus
 * and wrapped Gopher text.  They write into a struct buf and know nothing
 * about sockets or files.
 */
#ifndef SERAI_RENDER_H
#define SERAI_RENDER_H

#include <stddef.h>

struct archive_opts;
struct article;
struct buf;
struct node;

/* Gopher info lines carry this dummy selector/host/port (common form). */
#define GOPHER_INFO_TAIL "\t\tnull.host\t1\r\n"

void render_gemini_article(
    struct buf *, const struct node *, const struct article *);
void render_gemini_section(struct buf *, const struct node *);

void render_gopher_article(struct buf *, const struct archive_opts *,
    const struct node *, const struct article *);
void render_gopher_section(
    struct buf *, const struct archive_opts *, const struct node *);
/* A whole menu holding one type-3 line and the terminator. */
void render_gopher_error(
    struct buf *, const char *hostname, unsigned port, const char *msg);

/* "Home > News > Science": the titles from the root down to n. */
void render_breadcrumb(struct buf *, const struct node *n);

#endif
