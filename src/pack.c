#include "pack.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"
#include "version.h"

/*
 * The file: a header (struct pack_head) in the first PACK_HEAD_BYTES,
 * then texts and catalogs as they were appended; the header names the
 * last catalog.  A catalog: struct pack_cat, the root and host names,
 * padded to 8, then nrecs records, each a struct pack_rec, its npara
 * paragraph offsets (u32) and its path, padded to 8.  Integers are the
 * machine's own (order tells another machine's file apart).
 */
#define PACK_MAGIC "SERAIPK\n"
/* Any change to the layout, or to what article_parse makes, bumps it. */
#define PACK_VERSION 1
#define PACK_ORDER 0x01020304u
/* A text is at most an article's bytes and its NULs; twice is ample. */
#define PACK_TEXT_MAX (2 * (uint64_t)ARTICLE_MAX_BYTES)
/* Writes go through a buffer of this size, not text by text. */
#define PACK_CHUNK (1024 * 1024)
#define PACK_NOFIELD UINT32_MAX
#define PACK_NFIELDS ARTICLE_NFIELDS
#define PACK_TITLE 6 /* in the order of article_fields() */

struct pack_head {
	char magic[8];
	uint32_t version;
	uint32_t order;
	char serai[32]; /* SERAI_VERSION: the parser that made the texts */
	uint64_t cat_off, cat_len, cat_sum;
	uint64_t nrecs, live;
	int64_t written_ns;
	uint64_t sum; /* of the bytes above */
};

struct pack_cat {
	uint32_t rootlen, hostlen;
};

struct pack_rec {
	uint64_t dev, ino;
	int64_t size, mtime_ns, ctime_ns;
	uint64_t off;    /* the text, in the file */
	uint64_t sum;    /* pack_hash of the text */
	uint64_t srclen; /* article.len: the source's size */
	uint32_t textlen, npara;
	uint32_t field[PACK_NFIELDS]; /* offsets into the text, or NOFIELD */
	uint32_t pathlen;
};

_Static_assert(sizeof(struct pack_head) <= PACK_HEAD_BYTES, "header room");
_Static_assert(sizeof(struct pack_rec) % 8 == 0, "records stay aligned");

/*
 * A word at a time, multiply and shift: several GB/s, so checking every
 * text a warm start uses costs little next to reading the files.  It
 * catches damage, not an adversary (who could write state_dir's key).
 */
struct hasher {
	uint64_t h, total;
	unsigned char tail[8];
	size_t ntail;
};

#define HASH_MUL 0x9e3779b97f4a7c15ULL

static void
h_init(struct hasher *h)
{
	memset(h, 0, sizeof(*h));
	h->h = 0x243f6a8885a308d3ULL;
}

static uint64_t
h_word(uint64_t h, uint64_t w)
{
	h = (h ^ w) * HASH_MUL;
	return h ^ (h >> 29);
}

static void
h_add(struct hasher *h, const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t w, x = h->h;

	h->total += n;
	if (h->ntail > 0) {
		size_t k = 8 - h->ntail < n ? 8 - h->ntail : n;

		memcpy(h->tail + h->ntail, s, k);
		h->ntail += k;
		s += k;
		n -= k;
		if (h->ntail < 8) {
			h->h = x;
			return;
		}
		memcpy(&w, h->tail, 8);
		x = h_word(x, w);
		h->ntail = 0;
	}
	for (; n >= 8; s += 8, n -= 8) {
		memcpy(&w, s, 8);
		x = h_word(x, w);
	}
	memcpy(h->tail, s, n);
	h->ntail = n;
	h->h = x;
}

static uint64_t
h_end(struct hasher *h)
{
	uint64_t w = 0;

	memcpy(&w, h->tail, h->ntail);
	return h_word(h_word(h->h, w), h->total) * HASH_MUL;
}

uint64_t
pack_hash(const void *p, size_t n)
{
	struct hasher h;

	h_init(&h);
	h_add(&h, p, n);
	return h_end(&h);
}

static size_t
rec_size(const struct pack_rec *r)
{
	return (sizeof(*r) + (size_t)r->npara * 4 + r->pathlen + 7) / 8 * 8;
}

static const char *
rec_path(const struct pack_rec *r)
{
	return (const char *)(r + 1) + (size_t)r->npara * 4;
}

static uint32_t
rec_para(const struct pack_rec *r, size_t i)
{
	uint32_t v;

	memcpy(&v, (const char *)(r + 1) + i * 4, 4);
	return v;
}

static uint64_t
path_hash(const char *p, size_t n)
{
	return pack_hash(p, n);
}

/* Every bound a record's use relies on; NULL when it holds. */
static const char *
rec_check(const struct pack_rec *r, size_t room, uint64_t cat_off)
{
	if (room < sizeof(*r))
		return "catalog cut short";
	if (r->pathlen == 0 || r->pathlen >= PATH_MAX)
		return "a record's path length out of bounds";
	if (r->textlen == 0 || r->textlen > PACK_TEXT_MAX ||
	    r->npara > r->textlen)
		return "a record's text length out of bounds";
	if (rec_size(r) > room)
		return "catalog cut short";
	if (r->off < PACK_HEAD_BYTES || r->off > cat_off ||
	    r->textlen > cat_off - r->off)
		return "a record's text out of bounds";
	for (size_t i = 0; i < PACK_NFIELDS; i++)
		if (r->field[i] != PACK_NOFIELD && r->field[i] >= r->textlen)
			return "a record's field out of bounds";
	if (r->field[PACK_TITLE] == PACK_NOFIELD)
		return "a record without a title";
	for (size_t i = 0; i < r->npara; i++)
		if (rec_para(r, i) >= r->textlen)
			return "a record's paragraph out of bounds";
	if (memchr(rec_path(r), '\0', r->pathlen) != NULL)
		return "a record's path holds a NUL";
	return NULL;
}

static void
unmap(struct pack *p)
{
	if (p->addr != NULL && !p->lent)
		munmap(p->addr, p->len);
	p->addr = NULL;
	p->len = 0;
}

void
pack_forget(struct pack *p)
{
	if (p == NULL)
		return;
	free(p->slots);
	p->slots = NULL;
	p->nslots = p->nrecs = 0;
	p->used = true;
	unmap(p);
}

/* Maps the file and checks its catalog; NULL, or why it is not used. */
static const char *
load_catalog(struct pack *p, off_t size)
{
	struct pack_head h;
	struct pack_cat c;
	const char *cat, *why;
	size_t pos;

	if (size < PACK_HEAD_BYTES)
		return "cut short";
	if ((uint64_t)size > SIZE_MAX)
		return "too large";
	p->addr = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, p->fd, 0);
	if (p->addr == MAP_FAILED) {
		p->addr = NULL;
		return "cannot be mapped";
	}
	p->len = (size_t)size;
	memcpy(&h, p->addr, sizeof(h));
	if (memcmp(h.magic, PACK_MAGIC, sizeof(h.magic)) != 0)
		return "not an article pack";
	if (h.version != PACK_VERSION || h.order != PACK_ORDER ||
	    strncmp(h.serai, SERAI_VERSION, sizeof(h.serai)) != 0)
		return "made by another version of serai";
	if (h.sum != pack_hash(&h, offsetof(struct pack_head, sum)))
		return "damaged header";
	if (h.cat_off < PACK_HEAD_BYTES || h.cat_off % 8 != 0 ||
	    h.cat_len > p->len || h.cat_off > p->len - h.cat_len ||
	    h.cat_len < sizeof(c))
		return "cut short (its catalog out of bounds)";
	cat = p->addr + h.cat_off;
	if (pack_hash(cat, h.cat_len) != h.cat_sum)
		return "damaged catalog (checksum)";
	memcpy(&c, cat, sizeof(c));
	if (c.rootlen >= PATH_MAX || c.hostlen >= PATH_MAX ||
	    sizeof(c) + c.rootlen + c.hostlen > h.cat_len)
		return "damaged catalog";
	if (c.rootlen != strlen(p->root) ||
	    memcmp(cat + sizeof(c), p->root, c.rootlen) != 0)
		return "made for another archive root";
	if (c.hostlen != strlen(p->host) ||
	    memcmp(cat + sizeof(c) + c.rootlen, p->host, c.hostlen) != 0)
		return "made for another host";
	if (h.nrecs > h.cat_len / sizeof(struct pack_rec))
		return "damaged catalog";
	for (p->nslots = 16; p->nslots < 2 * h.nrecs; p->nslots *= 2)
		;
	if ((p->slots = calloc(p->nslots, sizeof(*p->slots))) == NULL)
		return "out of memory";
	pos = (sizeof(c) + c.rootlen + c.hostlen + 7) / 8 * 8;
	for (uint64_t i = 0; i < h.nrecs; i++) {
		const struct pack_rec *r;
		size_t k;

		if (pos > h.cat_len)
			return "catalog cut short";
		r = (const struct pack_rec *)(const void *)(cat + pos);
		if ((why = rec_check(r, h.cat_len - pos, h.cat_off)) != NULL)
			return why;
		k = path_hash(rec_path(r), r->pathlen) & (p->nslots - 1);
		while (p->slots[k] != NULL)
			k = (k + 1) & (p->nslots - 1);
		p->slots[k] = r;
		pos += rec_size(r);
	}
	if (pos != h.cat_len)
		return "damaged catalog (bytes after its last record)";
	p->nrecs = p->saved_nrecs = h.nrecs;
	p->live = h.live;
	p->cat_off = h.cat_off;
	p->cat_len = h.cat_len;
	p->cat_sum = h.cat_sum;
	p->written_ns = h.written_ns;
	return NULL;
}

static void *
check_main(void *arg)
{
	struct pack *p = arg;

	p->why = load_catalog(p, p->size);
	return NULL;
}

struct pack *
pack_open(const char *dir, const char *root, const char *host)
{
	struct pack *p;
	struct stat st;
	char real[PATH_MAX];
	size_t n;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->fd = -1;
	n = strlen(dir) + sizeof(PACK_FILE) + 1;
	if ((p->path = malloc(n)) == NULL)
		goto fail;
	snprintf(p->path, n, "%s/%s", dir, PACK_FILE);
	p->root = strdup(realpath(root, real) != NULL ? real : root);
	p->host = strdup(host != NULL ? host : "");
	if (p->root == NULL || p->host == NULL)
		goto fail;
	/*
	 * Not through a symlink, nor a FIFO or device: one in its place is
	 * the operator's, left alone (as search.db's).
	 */
	if (lstat(p->path, &st) == 0 && !S_ISREG(st.st_mode)) {
		log_warnx("%s: not a regular file; left alone, and article "
		          "texts are not kept across restarts",
		    p->path);
		goto fail;
	}
	if ((p->fd = open(p->path,
	         O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
	         0600)) == -1) {
		log_warn(
		    "%s: article texts are not kept across restarts", p->path);
		goto fail;
	}
	if (fstat(p->fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		log_warnx("%s: not a regular file; left alone, and article "
		          "texts are not kept across restarts",
		    p->path);
		goto fail;
	}
	/* Another serai on the same state_dir could cut it under us. */
	if (flock(p->fd, LOCK_EX | LOCK_NB) == -1) {
		log_warnx("%s: in use by another serai; article texts are not "
		          "kept across restarts",
		    p->path);
		goto fail;
	}
	p->size = st.st_size;
	/*
	 * The check reads the whole catalog (some 200 MB at a million
	 * articles) and hashes every path: a second of the start, which the
	 * walk of the archive, serial too and needing none of it, may as
	 * well overlap.  Without a thread, it is done here.
	 */
	if (p->size > 0) {
		if (thread_start(&p->checker, check_main, p) == 0)
			p->checking = true;
		else
			p->why = load_catalog(p, p->size);
	}
	if (!p->checking && pack_wait(p) == -1)
		goto fail;
	return p;
fail:
	pack_close(p);
	return NULL;
}

int
pack_wait(struct pack *p)
{
	if (p == NULL)
		return 0;
	if (p->checking) {
		pthread_join(p->checker, NULL);
		p->checking = false;
	}
	if (p->broken)
		return -1;
	if (p->why == NULL)
		return 0;
	log_warnx("%s: %s; not used, written anew", p->path, p->why);
	p->why = NULL;
	free(p->slots);
	p->slots = NULL;
	p->nslots = p->nrecs = p->saved_nrecs = 0;
	p->cat_sum = 0;
	unmap(p);
	if (ftruncate(p->fd, 0) == -1) {
		log_warn("%s", p->path);
		p->used = p->broken = true;
		return -1;
	}
	return 0;
}

void
pack_close(struct pack *p)
{
	if (p == NULL)
		return;
	if (p->checking) {
		pthread_join(p->checker, NULL);
		p->checking = false;
	}
	pack_forget(p);
	if (p->fd != -1)
		close(p->fd);
	free(p->path);
	free(p->root);
	free(p->host);
	free(p);
}

const struct pack_rec *
pack_find(const struct pack *p, const char *path, const struct pack_rec *near)
{
	size_t n = strlen(path), k;

	if (p == NULL || p->nslots == 0)
		return NULL;
	/*
	 * Every record was checked in turn, the last ending the catalog:
	 * what follows one is the next record, or the end.
	 */
	if (near != NULL) {
		const struct pack_rec *r =
		    (const void *)((const char *)near + rec_size(near));

		if ((const char *)r < p->addr + p->cat_off + p->cat_len &&
		    r->pathlen == n && memcmp(rec_path(r), path, n) == 0)
			return r;
	}
	k = path_hash(path, n) & (p->nslots - 1);
	for (; p->slots[k] != NULL; k = (k + 1) & (p->nslots - 1))
		if (p->slots[k]->pathlen == n &&
		    memcmp(rec_path(p->slots[k]), path, n) == 0)
			return p->slots[k];
	return NULL;
}

void
pack_rec_stamp(const struct pack_rec *r, struct file_stamp *fs)
{
	fs->dev = r->dev;
	fs->ino = r->ino;
	fs->size = r->size;
	fs->mtime_ns = r->mtime_ns;
	fs->ctime_ns = r->ctime_ns;
}

size_t
pack_rec_npara(const struct pack_rec *r)
{
	return r->npara;
}

int
pack_rec_article(const struct pack *p, const struct pack_rec *r,
    struct article *a, char **paras, uint64_t *off, uint64_t *sum)
{
	char *text = p->addr + r->off, **f[PACK_NFIELDS];

	memset(a, 0, sizeof(*a));
	/* The bounds are checked; the bytes are checked here, when used. */
	if (text[r->textlen - 1] != '\0' ||
	    pack_hash(text, r->textlen) != r->sum)
		return -1;
	article_fields(a, f);
	for (size_t i = 0; i < PACK_NFIELDS; i++)
		*f[i] = r->field[i] == PACK_NOFIELD ? NULL : text + r->field[i];
	/* What the rest of serai takes as given of a parsed date and tag. */
	if ((a->date != NULL && !article_date_valid(a->date)) ||
	    (a->lang != NULL && !article_lang_valid(a->lang))) {
		memset(a, 0, sizeof(*a));
		return -1;
	}
	for (size_t i = 0; i < r->npara; i++)
		paras[i] = text + rec_para(r, i);
	paras[r->npara] = NULL;
	a->paras = paras;
	a->npara = r->npara;
	a->len = (size_t)r->srclen;
	a->textlen = r->textlen;
	*off = r->off;
	*sum = r->sum;
	return 0;
}

/* Writes through a buffer, at increasing offsets; failure is sticky. */
struct writer {
	int fd;
	uint64_t off; /* where the next byte goes */
	char *buf;
	size_t fill;
	bool failed;
	struct hasher *h; /* non-NULL: what is written is hashed too */
};

static void
w_flush(struct writer *w)
{
	if (!w->failed && w->fill > 0 &&
	    !pwrite_all(w->fd, w->buf, w->fill, (long long)(w->off - w->fill)))
		w->failed = true;
	w->fill = 0;
}

static void
w_add(struct writer *w, const void *p, size_t len)
{
	if (w->h != NULL)
		h_add(w->h, p, len);
	if (w->fill + len > PACK_CHUNK)
		w_flush(w);
	w->off += len;
	if (len > PACK_CHUNK) {
		if (!w->failed &&
		    !pwrite_all(w->fd, p, len, (long long)(w->off - len)))
			w->failed = true;
		return;
	}
	memcpy(w->buf + w->fill, p, len);
	w->fill += len;
}

static void
w_pad8(struct writer *w)
{
	static const char zero[8];

	if (w->off % 8 != 0)
		w_add(w, zero, 8 - w->off % 8);
}

static uint32_t
field_off(const char *field, const char *text)
{
	return field == NULL ? PACK_NOFIELD : (uint32_t)(field - text);
}

/* Texts not in the file yet, then the catalog, then the header. */
static bool
write_pack(struct pack *p, struct writer *w, struct pack_item *v, size_t n,
    bool all, int64_t started_ns)
{
	struct pack_head h;
	struct pack_cat c;
	struct hasher hs;
	uint64_t live = 0;

	for (size_t i = 0; i < n; i++) {
		const struct article *a = v[i].art;

		live += a->textlen;
		if (!all && v[i].off != PACK_NONE)
			continue;
		if (v[i].off == PACK_NONE)
			v[i].sum = pack_hash(v[i].text, a->textlen);
		v[i].off = w->off;
		w_add(w, v[i].text, a->textlen);
	}
	w_pad8(w);
	memset(&h, 0, sizeof(h));
	h.cat_off = w->off;
	h_init(&hs);
	w->h = &hs;
	c.rootlen = (uint32_t)strlen(p->root);
	c.hostlen = (uint32_t)strlen(p->host);
	w_add(w, &c, sizeof(c));
	w_add(w, p->root, c.rootlen);
	w_add(w, p->host, c.hostlen);
	w_pad8(w);
	for (size_t i = 0; i < n; i++) {
		struct article *a = (struct article *)v[i].art;
		struct pack_rec r;
		char **f[PACK_NFIELDS];

		memset(&r, 0, sizeof(r));
		r.dev = v[i].stamp.dev;
		r.ino = v[i].stamp.ino;
		r.size = v[i].stamp.size;
		r.mtime_ns = v[i].stamp.mtime_ns;
		r.ctime_ns = v[i].stamp.ctime_ns;
		r.off = v[i].off;
		r.sum = v[i].sum;
		r.srclen = a->len;
		r.textlen = (uint32_t)a->textlen;
		r.npara = (uint32_t)a->npara;
		article_fields(a, f);
		for (size_t k = 0; k < PACK_NFIELDS; k++)
			r.field[k] = field_off(*f[k], v[i].text);
		r.pathlen = (uint32_t)strlen(v[i].path);
		w_add(w, &r, sizeof(r));
		for (size_t k = 0; k < a->npara; k++) {
			uint32_t o = field_off(a->paras[k], v[i].text);

			w_add(w, &o, sizeof(o));
		}
		w_add(w, v[i].path, r.pathlen);
		w_pad8(w);
	}
	w->h = NULL;
	w_flush(w);
	memcpy(h.magic, PACK_MAGIC, sizeof(h.magic));
	h.version = PACK_VERSION;
	h.order = PACK_ORDER;
	strncpy(h.serai, SERAI_VERSION, sizeof(h.serai));
	h.cat_len = w->off - h.cat_off;
	h.cat_sum = h_end(&hs);
	h.nrecs = n;
	h.live = live;
	h.written_ns = started_ns;
	h.sum = pack_hash(&h, offsetof(struct pack_head, sum));
	/* Last: until it lands, the previous header names an intact file. */
	if (w->failed || !pwrite_all(w->fd, &h, sizeof(h), 0))
		return false;
	/* What a tree saved later names (archive_save). */
	p->cat_off = h.cat_off;
	p->cat_len = h.cat_len;
	p->cat_sum = h.cat_sum;
	p->saved_nrecs = n;
	return true;
}

/*
 * Garbage: texts of changed and removed files, and old catalogs; the
 * file holds the live texts and the current catalog besides.  size: the
 * file's.
 */
static bool
compacts(const struct pack *p, uint64_t size, uint64_t live, uint64_t fresh)
{
	uint64_t end = size < PACK_HEAD_BYTES ? PACK_HEAD_BYTES : size;

	end =
	    end - PACK_HEAD_BYTES > p->holes ? end - p->holes : PACK_HEAD_BYTES;
	return end - PACK_HEAD_BYTES + fresh > 2 * live + p->cat_len;
}

bool
pack_compacts(const struct pack *p, uint64_t live, uint64_t fresh)
{
	struct stat st;

	return fstat(p->fd, &st) == -1 ||
	    compacts(p, (uint64_t)st.st_size, live, fresh);
}

int
pack_commit(struct pack *p, struct pack_item *v, size_t n, int64_t started_ns)
{
	struct writer w;
	struct stat st;
	uint64_t end, was, live = 0, fresh = 0;
	char *tmp = NULL;
	bool compact;
	int fd;

	for (size_t i = 0; i < n; i++) {
		/* The catalog's record holds 32-bit offsets and lengths. */
		if (v[i].art->textlen > PACK_TEXT_MAX)
			return -1;
		live += v[i].art->textlen;
		if (v[i].off == PACK_NONE)
			fresh += v[i].art->textlen;
	}
	if (fstat(p->fd, &st) == -1) {
		log_warn("%s", p->path);
		return -1;
	}
	was = (uint64_t)st.st_size;
	end = (uint64_t)st.st_size < PACK_HEAD_BYTES ? PACK_HEAD_BYTES
	                                             : (uint64_t)st.st_size;
	compact = compacts(p, was, live, fresh);
	memset(&w, 0, sizeof(w));
	if ((w.buf = malloc(PACK_CHUNK)) == NULL)
		return -1;
	fd = p->fd;
	if (compact) {
		size_t len = strlen(p->path) + sizeof(".new");

		if ((tmp = malloc(len)) == NULL) {
			free(w.buf);
			return -1;
		}
		snprintf(tmp, len, "%s.new", p->path);
		(void)unlink(tmp);
		if ((fd = open(tmp,
		         O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		         0600)) == -1 ||
		    flock(fd, LOCK_EX | LOCK_NB) == -1) {
			log_warn("%s", tmp);
			if (fd != -1) {
				close(fd);
				(void)unlink(tmp);
			}
			free(tmp);
			free(w.buf);
			return -1;
		}
		end = PACK_HEAD_BYTES;
	}
	w.fd = fd;
	w.off = (end + 7) / 8 * 8;
	if (!write_pack(p, &w, v, n, compact, started_ns) ||
	    (compact && rename(tmp, p->path) == -1)) {
		log_warn("%s", compact ? tmp : p->path);
		if (compact) {
			close(fd);
			(void)unlink(tmp);
		} else
			(void)ftruncate(fd, (off_t)was);
		free(tmp);
		free(w.buf);
		return -1;
	}
	if (compact) {
		p->holes = 0;
		log_info("%s: compacted (%llu bytes of live text)", p->path,
		    (unsigned long long)live);
		close(p->fd);
		p->fd = fd;
	}
	free(tmp);
	free(w.buf);
	return 0;
}
