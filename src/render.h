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
struct route;

/* Gopher info lines carry this dummy selector/host/port (common form). */
#define GOPHER_INFO_FIELDS "\t\tnull.host\t1"

/* The files of a static export, named here because links name them. */
#define EXPORT_GEMINI_INDEX "index.gmi"
#define EXPORT_GEMINI_EXT ".gmi"
#define EXPORT_GOPHERMAP "gophermap"
#define EXPORT_GOPHER_EXT ".txt"

/*
 * What links name.  The live server answers archive paths ("/news/slug",
 * "/news/"); a static export (serai --export) is a tree of files that a
 * stock server maps from the URL, so its links name those files, relative
 * to the page so the tree also works under a sub-path: gemtext
 * "slug.gmi", "science/", "../"; gophermap "slug.txt", "science/".
 */
enum render_links {
	RENDER_LIVE,   /* archive paths; Gopher menus with host and port */
	RENDER_EXPORT, /* files: gemtext, and Gophernicus gophermaps */
};

/* Each page is of the route's last node (archive_route). */
void render_gemini_article(struct buf *, const struct route *,
    const struct article *, enum render_links);
void render_gemini_section(
    struct buf *, const struct route *, enum render_links);

void render_gopher_article(struct buf *, const struct archive_opts *,
    const struct route *, const struct article *);
/*
 * RENDER_EXPORT makes a gophermap in the Gophernicus format instead of a
 * menu: LF lines, items as "Xdisplay TAB selector" (the server adds its
 * own host and port), no "." terminator.
 */
void render_gopher_section(struct buf *, const struct archive_opts *,
    const struct route *, enum render_links);
/* A whole menu holding one type-3 line and the terminator. */
void render_gopher_error(
    struct buf *, const char *hostname, unsigned port, const char *msg);

/* Every section's Atom feed, "/news/feed.xml", reserved in each one. */
#define FEED_NAME "feed.xml"
/* Entries in a feed, and the home page's "Newest" list. */
#define FEED_ENTRIES 50
#define HOME_NEWEST 10

/*
 * The Atom 1.0 feed of a section: its subtree's FEED_ENTRIES newest dated
 * articles, linked by gemini:// URLs (o->hostname, o->gemini_port), CRLF
 * lines so that Gopher can serve the same bytes as text.  For an export,
 * entries link to the exported .gmi files; ids stay the live URLs, so a
 * reader sees the same entries from the capsule and its mirror.
 */
void render_atom_feed(struct buf *, const struct archive_opts *,
    const struct route *, enum render_links);

/* Before a gemtext text line: a space if it would read as markup. */
void render_text_guard(struct buf *, const char *);

/* &, <, >, " and ' as entities, C0 controls dropped: XML and HTML. */
void render_escape(struct buf *, const char *, size_t);

/* "Home > News > Science": the titles from the root down the route. */
void render_breadcrumb(struct buf *, const struct route *);

#endif
