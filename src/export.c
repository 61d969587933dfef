/*
 * serai --export DIR: the archive as a static mirror for stock servers.
 *
 *   DIR/gemini/  a capsule: index.gmi per section, <slug>.gmi per article
 *   DIR/gopher/  for Gophernicus: a gophermap per section, <slug>.txt per
 *                article (the live server's wrapped text, byte for byte)
 *   both:        feed.xml per section, the live Atom feed byte for byte
 *
 * Pure file writing from a snapshot: the pages are rendered again with
 * links naming the files (RENDER_EXPORT).  Nothing is ever overwritten
 * or deleted: both trees must be new, and every file and directory is
 * created exclusively.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "log.h"
#include "render.h"
#include "serai.h"
#include "util.h"

struct exporter {
	const struct archive_opts *o;
	char gemini[PATH_MAX]; /* DIR/gemini */
	char gopher[PATH_MAX]; /* DIR/gopher */
	size_t narticles;
	size_t nsections;
};

/* base + the node's path + suffix; -1 (logged) when it does not fit. */
static int
path_of(char *dst, const char *base, const struct node *n, const char *suffix)
{
	int len;

	len = snprintf(dst, PATH_MAX, "%s%s%s", base, n->path, suffix);
	if (len < 0 || len >= PATH_MAX) {
		log_warnx("%s%s%s: path too long", base, n->path, suffix);
		return -1;
	}
	return 0;
}

/*
 * The trees are new (checked before the first write), so anything already
 * there is another page of the archive mapped to the same name: an
 * article "index" and index.gmi, a section "a.gmi" and an article "a".
 */
static void
create_failed(const char *path)
{
	if (errno == EEXIST)
		log_warnx("%s: exists already: two pages of the archive map "
		          "to this name; export stopped",
		    path);
	else
		log_warn("cannot create %s", path);
}

static int
make_dir(const char *path)
{
	if (mkdir(path, 0755) == -1) {
		create_failed(path);
		return -1;
	}
	return 0;
}

static int
write_file(const char *path, const char *data, size_t len)
{
	ssize_t n;
	int fd;

	fd = open(
	    path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd == -1) {
		create_failed(path);
		return -1;
	}
	while (len > 0) {
		if ((n = write(fd, data, len)) == -1) {
			if (errno == EINTR)
				continue;
			log_warn("cannot write %s", path);
			close(fd);
			return -1;
		}
		data += n;
		len -= (size_t)n;
	}
	/* Delayed write errors (a full disk, NFS) surface only here. */
	if (close(fd) == -1) {
		log_warn("cannot write %s", path);
		return -1;
	}
	return 0;
}

/* Writes a rendered buffer and empties it for the next page. */
/* The rendered bytes to path; the buffer is kept (see write_buf). */
static int
write_rendered(const char *path, const struct buf *b)
{
	if (buf_failed(b)) {
		log_warnx("%s: out of memory", path);
		return -1;
	}
	return write_file(path, b->len > 0 ? b->p : "", b->len);
}

/* The same, the buffer emptied for the next page. */
static int
write_buf(const char *path, struct buf *b)
{
	int rv = write_rendered(path, b);

	b->len = 0;
	return rv;
}

/* The article is the route's last node. */
static int
export_article(struct exporter *E, const struct route *r, struct buf *b)
{
	const struct node *n = r->at[r->n - 1];
	char path[PATH_MAX];

	render_gemini_article(b, r, n->art, RENDER_EXPORT);
	if (path_of(path, E->gemini, n, EXPORT_GEMINI_EXT) == -1 ||
	    write_buf(path, b) == -1)
		return -1;
	/* The live server's text, byte for byte. */
	render_gopher_article(b, E->o, r, n->art);
	if (path_of(path, E->gopher, n, EXPORT_GOPHER_EXT) == -1 ||
	    write_buf(path, b) == -1)
		return -1;
	E->narticles++;
	return 0;
}

/*
 * A section's directory and page, its articles, then its subsections:
 * the section is the route's last node, and the route grows and shrinks
 * back as the walk goes down.
 */
static int
export_section(struct exporter *E, struct route *r, struct buf *b)
{
	const struct node *n = r->at[r->n - 1];
	const struct section *s = n->sec;
	char path[PATH_MAX];
	int rv = 0;

	/* The roots were made (exclusively) by export_archive. */
	if (r->n > 1) {
		if (path_of(path, E->gemini, n, "") == -1 ||
		    make_dir(path) == -1)
			return -1;
		if (path_of(path, E->gopher, n, "") == -1 ||
		    make_dir(path) == -1)
			return -1;
	}
	render_gemini_section(b, r, RENDER_EXPORT);
	if (path_of(path, E->gemini, n, EXPORT_GEMINI_INDEX) == -1 ||
	    write_buf(path, b) == -1)
		return -1;
	render_gopher_section(b, E->o, r, RENDER_EXPORT);
	if (path_of(path, E->gopher, n, EXPORT_GOPHERMAP) == -1 ||
	    write_buf(path, b) == -1)
		return -1;
	/*
	 * The feed names the capsule by its gemini:// URLs, as live, but its
	 * entries link to the exported .gmi files.
	 */
	render_atom_feed(b, E->o, r, RENDER_EXPORT);
	if (path_of(path, E->gemini, n, FEED_NAME) == -1 ||
	    write_rendered(path, b) == -1)
		return -1;
	if (path_of(path, E->gopher, n, FEED_NAME) == -1 ||
	    write_buf(path, b) == -1)
		return -1;
	E->nsections++;
	for (size_t i = 0; i < s->narticles && rv == 0; i++) {
		r->at[r->n++] = s->articles[i];
		rv = export_article(E, r, b);
		r->n--;
	}
	for (size_t i = 0; i < s->nsections && rv == 0; i++) {
		r->at[r->n++] = s->sections[i];
		rv = export_section(E, r, b);
		r->n--;
	}
	return rv;
}

/*
 * The archive is in memory already, but a mirror inside the archive root
 * would be read as articles (its .txt files) on the next load.
 */
static int
inside_archive(const char *dir, const char *root)
{
	char d[PATH_MAX], r[PATH_MAX];
	size_t rlen;

	if (realpath(dir, d) == NULL) {
		log_warn("%s", dir);
		return -1;
	}
	if (realpath(root, r) == NULL) {
		log_warn("%s", root);
		return -1;
	}
	rlen = strlen(r);
	if (strncmp(d, r, rlen) == 0 &&
	    (d[rlen] == '\0' || d[rlen] == '/' || strcmp(r, "/") == 0)) {
		log_warnx("%s: inside the archive root %s; export elsewhere",
		    dir, root);
		return 1;
	}
	return 0;
}

static int
refuse_existing(const char *path)
{
	struct stat st;

	if (lstat(path, &st) == 0) {
		log_warnx("%s exists; not touching it: remove it, or export "
		          "to another directory",
		    path);
		return -1;
	}
	if (errno != ENOENT) {
		log_warn("%s", path);
		return -1;
	}
	return 0;
}

int
export_archive(
    const struct snapshot *s, const struct archive_opts *o, const char *dir)
{
	struct exporter E;
	struct route rt;
	struct stat st;
	struct buf b;
	bool made = false;
	size_t dlen = strlen(dir);
	int rv, len;

	memset(&E, 0, sizeof(E));
	E.o = o;
	/* "out/" names the same trees as "out": no "out//gemini" in paths. */
	while (dlen > 1 && dir[dlen - 1] == '/')
		dlen--;
	len =
	    snprintf(E.gemini, sizeof(E.gemini), "%.*s/gemini", (int)dlen, dir);
	if (len < 0 || (size_t)len >= sizeof(E.gemini)) {
		log_warnx("%s: path too long", dir);
		return -1;
	}
	/* The same length: "gopher" is as long as "gemini". */
	snprintf(E.gopher, sizeof(E.gopher), "%.*s/gopher", (int)dlen, dir);
	if (mkdir(dir, 0755) == 0)
		made = true;
	else if (errno != EEXIST) {
		log_warn("cannot create %s", dir);
		return -1;
	} else if (stat(dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		log_warnx("%s: not a directory", dir);
		return -1;
	}
	if ((rv = inside_archive(dir, o->root)) != 0) {
		/* Only the empty directory made a moment ago goes again. */
		if (made)
			rmdir(dir);
		return -1;
	}
	if (refuse_existing(E.gemini) == -1 || refuse_existing(E.gopher) == -1)
		return -1;
	if (make_dir(E.gemini) == -1 || make_dir(E.gopher) == -1)
		return -1;
	buf_init(&b);
	rt.at[0] = s->root;
	rt.n = 1;
	rv = export_section(&E, &rt, &b);
	buf_free(&b);
	if (rv == -1)
		return -1;
	log_info("exported %zu articles in %zu sections to %s", E.narticles,
	    E.nsections, dir);
	return 0;
}
