#include "archive.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "article.h"
#include "inifile.h"
#include "log.h"
#include "pack.h"
#include "render.h"
#include "search.h"
#include "util.h"

#define DEFAULT_HOME_TITLE "News archive"

/* A directory loaded, by device and inode: a second path to it is not. */
struct seen {
	dev_t dev;
	ino_t ino;
	const char *path; /* the section's, for the warning */
};

/* A symlink to a directory, loaded once the real tree is. */
struct later {
	struct node *sec; /* the section it is in */
	char *path, *real, *name;
};

struct order_key;
struct loader;

/*
 * The catalog alone, every text being in the file already, written by a
 * thread of its own beside the rest of the load: it reads the jobs and
 * their texts (adopt_jobs leaves them as they are, finish keeps what it
 * drops) and writes nothing of the loader's but the pack, until
 * load_end joins it.
 */
struct commit {
	pthread_t t;
	struct loader *L;
	int rv; /* pack_commit's */
	struct pack_item *items;
	char *paths;
};

static void commit_free(struct commit *);

struct loader {
	const struct archive_opts *o;
	char rootreal[PATH_MAX];
	uint32_t born; /* this load's mark on the nodes it makes */
	size_t nskipped;
	size_t nwarnings; /* served, but something in it was wrong */
	size_t nparsed;   /* articles read, not shared with the old */
	size_t nlisted;   /* directories listed, not taken as old's */
	/* Open addressing; a power of two, at most half full. */
	struct seen *seen;
	size_t nseen, capseen;
	struct later *later;
	size_t nlater, caplater;
	size_t nsecs, nfiles; /* against ARCHIVE_MAX_SECTIONS and _FILES */
	bool oom;
	/* Article files found by the walk, read and parsed after it. */
	struct job *jobs;
	size_t njobs, capjobs;
	atomic_size_t next; /* the next job a parsing thread takes */
	/*
	 * streaming: the threads parse while the walk goes on (stream_begin),
	 * up to ready, until walked.
	 */
	bool streaming;
	atomic_size_t ready;
	atomic_bool walked;
	/*
	 * A reload: the snapshot being replaced, whose unchanged articles'
	 * texts and unchanged sections' pages the new one shares.  NULL for
	 * a full load.
	 */
	const struct snapshot *old;
	bool same_pages; /* what every page shows beyond its subtree agrees */
	/* What the watch saw change since old; NULL: everything may have. */
	const struct archive_changes *changes;
	/* Texts parsed by this load, to be packed. */
	struct text **fresh;
	size_t nfresh;
	size_t ntaken; /* sections taken whole from old, with their subtree */
	/* The sections being walked, from the root down (load_dir). */
	const struct node *chain[ARCHIVE_MAX_DEPTH + 2];
	size_t depth;
	/*
	 * The start-up load: the persistent pack (pack.h), whose unchanged
	 * files' texts it takes instead of reading them, mapped whole as
	 * cache_seg; and into which it writes what it read.
	 */
	struct pack *cache;
	struct segment *cache_seg;
	size_t ncached;         /* articles taken from it */
	atomic_size_t ndamaged; /* its texts that failed their check */
	int64_t started_ns;     /* as snapshot.started_ns */
	/* The jobs' directory paths and names, freed with the jobs. */
	struct pool_chunk *pool;
	/*
	 * Texts are to be packed: the threads parse them into slabs, given
	 * back whole once the texts are out of them.
	 */
	bool slabbed;
	struct slab *slabs;
	/*
	 * The start-up load with a persistent pack: its threads append each
	 * text they parse to the pack themselves (wfd), at offsets taken
	 * from wend; wseg maps the file once they are done.  wfailed: a
	 * write failed, so those texts are read again (pack_undo).
	 */
	int wfd;
	_Atomic uint64_t wend;
	_Atomic uint64_t wrote; /* bytes of text written there */
	uint64_t wfrom;         /* the file's size before */
	atomic_bool wfailed;
	struct segment *wseg;
	/*
	 * persist's catalog, written by a thread of its own while the load
	 * goes on (no text moves then): joined by load_end.
	 */
	struct commit *commit;  /* NULL: none running */
	struct buf page;        /* the section pages are rendered in (finish) */
	struct order_key *keys; /* a section's articles being sorted */
	/*
	 * Articles finish dropped (a name clash), released by load_end once
	 * the catalog's thread, which may still read their texts, is done.
	 */
	struct node **dropped;
	size_t ndropped;
	size_t capkeys;
};

/*
 * Strings that live as long as the load: a directory's path once for all
 * its files, and the files' slugs.  Bump-allocated from chunks large
 * enough to be mapped on their own, so a load leaves no holes in the heap
 * and makes no allocation per file.
 */
struct pool_chunk {
	struct pool_chunk *next;
	size_t used, cap;
	char data[];
};

#define POOL_CHUNK (256 * 1024)

/*
 * Memory a load uses and gives back whole, mapped on its own: from malloc
 * it would raise malloc's mmap threshold once freed, and the next load's
 * would then come from the heap, and leave holes in it.
 */
static void *
map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static char *
pool_strndup(struct loader *L, const char *s, size_t n)
{
	struct pool_chunk *c = L->pool;
	char *p;

	if (c == NULL || c->cap - c->used < n + 1) {
		size_t cap = n + 1 > POOL_CHUNK ? n + 1 : POOL_CHUNK;

		if ((c = map_anon(sizeof(*c) + cap)) == NULL)
			return NULL;
		c->next = L->pool;
		c->used = 0;
		c->cap = cap;
		L->pool = c;
	}
	p = c->data + c->used;
	memcpy(p, s, n);
	p[n] = '\0';
	c->used += n + 1;
	return p;
}

static void
pool_free(struct loader *L)
{
	while (L->pool != NULL) {
		struct pool_chunk *next = L->pool->next;

		munmap(L->pool, sizeof(*L->pool) + L->pool->cap);
		L->pool = next;
	}
}

/*
 * A directory's entries as scandir listed them, packed (a type byte, the
 * name, a NUL; then the next), with the directory's stamp before the
 * listing: a reload the watch tells nothing changed in the directory
 * goes through them again instead of listing it.  Shared and freed like
 * texts.
 */
struct listing {
	atomic_uint refs;
	struct file_stamp stamp;
	size_t len;
	char ents[];
};

static void
listing_release(struct listing *l)
{
	if (l != NULL &&
	    atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) == 1)
		free(l);
}

/*
 * An article's parsed text, shared by every snapshot in which the file is
 * unchanged: immutable once made, freed by the last node to let it go (a
 * reply still being rendered from an old snapshot keeps it alive).
 */
struct text {
	atomic_uint refs;
	/*
	 * The paragraph pointers are not a block of the text's own: room,
	 * in this block (a text taken from the persistent pack costs one
	 * allocation, not two), or a slab's, until the text is moved.
	 * Beside refs, in what would be padding: 8 bytes an article.
	 */
	bool keep_paras;
	struct segment *seg; /* where its strings are; NULL: in its block */
	struct article art;
	char *room[];
};

/*
 * Article bodies live in a file of state_dir (archive_open_pack), mapped
 * read-only, not in private memory: the page cache holds them, and the
 * kernel may write them back and drop them under memory pressure, which
 * it cannot do with malloc'd copies.  Each load appends the texts it
 * parsed as one segment, mapped once (one mapping per load, not per
 * file: vm.max_map_count is 65530).  A segment is unmapped, and its
 * blocks given back to the file system, when its last text goes.
 */
struct segment {
	atomic_uint refs;
	char *addr;
	size_t len;
	off_t off;
	/*
	 * The O_TMPFILE's blocks are given back when it goes; the persistent
	 * pack's are not (its catalog may name them, and it is compacted).
	 */
	bool punch;
};

/*
 * Mappings at most: a publish maps one segment, and a segment lives as
 * long as one of its texts is served; past this, new texts stay in
 * private memory (a restart packs them again).  Far below the kernel's
 * vm.max_map_count (65530), which malloc and thread stacks share.
 */
#define PACK_MAX_SEGMENTS 16384
/* Texts are written through a buffer of this size, not one by one. */
#define PACK_WRITE_CHUNK (1024 * 1024)

static int pack_fd = -1;
static atomic_size_t pack_segments;

static off_t
page_size(void)
{
	return (off_t)sysconf(_SC_PAGESIZE);
}

static void
segment_release(struct segment *g)
{
	off_t page = page_size();

	if (atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) != 1)
		return;
	munmap(g->addr, g->len);
	/*
	 * The blocks back to the file system, to the page the next segment
	 * starts on; the offsets stay unused.
	 */
	if (g->punch)
		(void)fallocate(pack_fd,
		    FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, g->off,
		    ((off_t)g->len + page - 1) / page * page);
	atomic_fetch_sub_explicit(&pack_segments, 1, memory_order_relaxed);
	free(g);
}

/*
 * A pre-rendered page is preceded by its reference count, so a section
 * whose page would come out the same shares the previous snapshot's
 * bytes.  16 bytes keep the page where malloc's alignment puts it.
 */
#define PAGE_HEADER 16
/*
 * In a page's header, past its count: the page is in a saved tree's
 * mapping (tree_open), never counted (the mapping is read-only) and
 * never freed (it lives as long as the process).
 */
#define PAGE_MAPPED 0x5345524149504721ULL

static bool page_mapped(const struct blob *);

static void
page_release(struct blob *b)
{
	atomic_uint *refs;

	if (b->p == NULL || page_mapped(b))
		return;
	refs = (atomic_uint *)(void *)(b->p - PAGE_HEADER);
	if (atomic_fetch_sub_explicit(refs, 1, memory_order_acq_rel) == 1)
		free(refs);
}

static void
page_share(struct blob *to, const struct blob *from)
{
	if (!page_mapped(from))
		atomic_fetch_add_explicit(
		    (atomic_uint *)(void *)(from->p - PAGE_HEADER), 1,
		    memory_order_relaxed);
	*to = *from;
}

static struct text *
text_of(const struct node *n)
{
	return (
	    struct text *)(void *)((char *)n->art - offsetof(struct text, art));
}

static struct text *
text_share(const struct node *n)
{
	struct text *t = text_of(n);

	atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
	return t;
}

static void
text_release(struct text *t)
{
	if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
		return;
	/* Packed, paras is the pointers alone; else the whole block. */
	if (!t->keep_paras)
		article_free(&t->art);
	if (t->seg != NULL)
		segment_release(t->seg);
	free(t);
}

/*
 * An article file to read and parse.  The walk only lists them: reading
 * and parsing is most of a load, and the files are independent, so
 * threads share the list; the results are then taken in the walk's
 * order, so nodes and warnings come out as a serial load's would.
 */
struct job {
	const char *dir; /* the file's directory: the pool's, or a section's */
	const char *fname; /* its name in dir */
	char *slug;        /* the pool's */
	struct node *sec;
	struct file_stamp stamp;
	bool parsed;
	bool fresh;   /* shared is a text this load parsed */
	bool trusted; /* its directory unchanged (watch): share unstat'ed */
	bool cached;  /* the text is the persistent pack's, at off */
	bool packed;  /* parsed and written to the pack by its thread, at off */
	uint64_t off, sum;
	const char *why; /* why not, or NULL with err */
	int err;
	/* A reload: the article at this path before, and its text if the
	 * file is unchanged (a reference held). */
	const struct node *old;
	struct text *shared;
	/*
	 * The node made by the parsing thread for a text from the pack,
	 * its date's key with it (a reference held); NULL: adopt_jobs
	 * makes it.
	 */
	struct node *node;
	/*
	 * Its text and node are its section's (adopt_jobs).  In a word of
	 * its own: the catalog's thread reads the fields above meanwhile.
	 */
	bool adopted;
};

/*
 * Freed heap back to the kernel.  glibc keeps what a load freed (the
 * threads' arenas, the parsed blocks moved to the pack) for reuse, as
 * private memory in holes it cannot shrink; malloc_trim gives back every
 * whole free page, in any arena.
 */
static void
heap_trim(void)
{
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}

static void
skip(struct loader *L, const char *path, const char *why)
{
	log_warnx("%s: skipped: %s", path, why);
	L->nskipped++;
}

static struct node *
node_ref(struct node *n)
{
	atomic_fetch_add_explicit(&n->refs, 1, memory_order_relaxed);
	return n;
}

/*
 * The last holder frees: a snapshot going frees what no later one took,
 * and a section shared whole costs one decrement.
 */
static void
node_release(struct node *n)
{
	struct section *s;

	if (n == NULL ||
	    atomic_fetch_sub_explicit(&n->refs, 1, memory_order_acq_rel) != 1)
		return;
	if ((s = n->sec) != NULL) {
		for (size_t i = 0; i < s->nsections; i++)
			node_release(s->sections[i]);
		for (size_t i = 0; i < s->narticles; i++)
			node_release(s->articles[i]);
		free(s->sections);
		free(s->articles);
		free(s->byname);
		free(s->description);
		listing_release(s->listing);
		page_release(&s->gemini);
		page_release(&s->gopher);
		page_release(&s->feed);
		free(s);
	}
	/* An article's strings are its text's and its path's. */
	if (n->kind == NODE_SECTION) {
		free(n->name);
		free(n->title);
		free(n->date);
		free(n->lang);
	}
	if (n->art)
		text_release(text_of(n));
	free(n);
}

/* A node named name in the section at parent_path ("/" for the root). */
static struct node *
node_new(enum node_kind kind, const char *parent_path, const char *name)
{
	size_t plen = strlen(parent_path), nlen = strlen(name);
	size_t slash = kind == NODE_SECTION && name[0] != '\0';
	struct node *n;

	/*
	 * Its path in the same block (calloc's zero ends it): for each of a
	 * million articles, one allocation and no copy of the path less.
	 */
	if ((n = calloc(1, sizeof(*n) + plen + nlen + slash + 1)) == NULL)
		return NULL;
	atomic_init(&n->refs, 1);
	n->kind = kind;
	n->path = (char *)(n + 1);
	memcpy(n->path, parent_path, plen);
	memcpy(n->path + plen, name, nlen);
	if (slash)
		n->path[plen + nlen] = '/';
	/*
	 * An article's slug is the end of its path: one string less for
	 * each of a hundred thousand articles.
	 */
	if (kind == NODE_ARTICLE)
		n->name = n->path + plen;
	else if ((n->sec = calloc(1, sizeof(*n->sec))) == NULL ||
	    (n->name = strdup(name)) == NULL) {
		node_release(n);
		return NULL;
	}
	return n;
}

static bool
push(struct node ***v, size_t *n, struct node *x)
{
	struct node **nv;

	if ((nv = reallocarray(*v, *n + 1, sizeof(**v))) == NULL)
		return false;
	*v = nv;
	(*v)[(*n)++] = x;
	return true;
}

struct secini {
	struct node *n;
};

static int
section_key(
    struct inifile *f, const char *section, const char *key, const char *value)
{
	struct node *n = ((struct secini *)f->user)->n;
	char **slot = NULL;

	(void)section;
	if (strcmp(key, "title") == 0)
		slot = &n->title;
	else if (strcmp(key, "description") == 0)
		slot = &n->sec->description;
	else if (strcmp(key, "lang") == 0) {
		if (!article_lang_valid(value)) {
			inifile_error(f, "lang: bad language tag '%s'", value);
			return -1;
		}
		slot = &n->lang;
	} else {
		inifile_error(
		    f, "unknown key '%s' (title, description, lang)", key);
		return -1;
	}
	if (*value == '\0' || strchr(value, '\t') != NULL) {
		inifile_error(f, "%s: empty, or holds a TAB", key);
		return -1;
	}
	free(*slot);
	if ((*slot = strdup(value)) == NULL)
		return -1;
	return 0;
}

/*
 * Every file the loader reads comes through here: opened non-blocking (a
 * FIFO or a device in the tree must not hang a load, and with it -n,
 * SIGHUP and shutdown), without following a symlink (one put in place
 * meanwhile is refused, not followed), and read only if fstat on the
 * descriptor says it is a regular file of at most max bytes.
 * NULL with *why, or with *why NULL and *err an errno value.
 */
static void
stamp_of(const struct stat *st, struct file_stamp *fs)
{
	fs->dev = (uint64_t)st->st_dev;
	fs->ino = (uint64_t)st->st_ino;
	fs->size = (int64_t)st->st_size;
	fs->mtime_ns =
	    (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	fs->ctime_ns =
	    (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
}

/*
 * A buffer a file is read into, grown as needed and used again for the
 * next file: a parsing thread reads a million files through one.
 */
struct readbuf {
	char *p;
	size_t cap;
};

/*
 * name, relative to dirfd (AT_FDCWD: a path), into rb; the bytes are
 * rb->p, NUL-terminated.  -1 with *why, or with *why NULL and *err an
 * errno value.
 */
static int
read_file_at(int dirfd, const char *name, size_t max, struct readbuf *rb,
    size_t *lenp, struct file_stamp *fs, const char **why, int *err)
{
	struct stat st;
	size_t got = 0;
	ssize_t r;
	int fd;

	*why = NULL;
	if ((fd = openat(dirfd, name,
	         O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW)) == -1) {
		*err = errno;
		if (errno == ELOOP)
			*why = "a symlink now (not followed)";
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		*why = "not a regular file";
		close(fd);
		return -1;
	}
	if (st.st_size > (off_t)max) {
		*why = "file too large";
		close(fd);
		return -1;
	}
	if (fs != NULL)
		stamp_of(&st, fs);
	if ((size_t)st.st_size + 1 > rb->cap) {
		/* Doubled, so a thread's buffer grows a few times at most. */
		size_t cap = (size_t)st.st_size + 1 > 2 * rb->cap
		    ? (size_t)st.st_size + 1
		    : 2 * rb->cap;
		char *p;

		if ((p = realloc(rb->p, cap)) == NULL) {
			*why = "out of memory";
			close(fd);
			return -1;
		}
		rb->p = p;
		rb->cap = cap;
	}
	while (got < (size_t)st.st_size &&
	    (r = read(fd, rb->p + got, (size_t)st.st_size - got)) > 0)
		got += (size_t)r;
	close(fd);
	rb->p[got] = '\0';
	*lenp = got;
	return 0;
}

/* A file of its own (section.ini, robots.txt): the caller frees it. */
static char *
read_file(const char *path, size_t max, size_t *lenp, struct file_stamp *fs,
    const char **why, int *err)
{
	struct readbuf rb = {NULL, 0};

	if (read_file_at(AT_FDCWD, path, max, &rb, lenp, fs, why, err) == -1) {
		free(rb.p);
		return NULL;
	}
	return rb.p;
}

static bool inside_root(const struct loader *, const char *);

/*
 * path as the loader may read it: itself, or the file a symlink inside
 * the root leads to (in real, PATH_MAX).  NULL when absent (*why NULL)
 * or refused (*why says why).
 */
static const char *
resolve(const struct loader *L, const char *path, char *real, const char **why)
{
	struct stat st;

	*why = NULL;
	if (lstat(path, &st) == -1) {
		if (errno != ENOENT)
			*why = strerror(errno);
		return NULL;
	}
	if (!S_ISLNK(st.st_mode))
		return path;
	if (realpath(path, real) == NULL)
		*why = "broken symlink";
	else if (!inside_root(L, real))
		*why = "symlink leads outside the archive root";
	else
		return real;
	return NULL;
}

static void
read_section_ini(struct loader *L, const char *dir, struct node *n)
{
	static const char *const sections[] = {"section", NULL};
	struct secini si = {n};
	char path[PATH_MAX], real[PATH_MAX];
	const char *use, *why;
	char *data;
	size_t len;
	int rv, err = 0;

	if ((size_t)snprintf(path, sizeof(path), "%s/section.ini", dir) >=
	    sizeof(path))
		return;
	if ((use = resolve(L, path, real, &why)) == NULL) {
		if (why != NULL)
			skip(L, path, why);
		return;
	}
	if ((data = read_file(
	         use, SECTION_INI_MAX_BYTES, &len, NULL, &why, &err)) == NULL) {
		skip(L, path, why ? why : strerror(err));
		return;
	}
	rv = inifile_parse_buf(path, data, len, sections, section_key, &si);
	free(data);
	if (rv > 0) {
		log_warnx("%s: %d problem(s); the rest of the file is used",
		    path, rv);
		L->nwarnings++;
	}
}

/* Too near the old load to tell a rewrite by the stamp (ARCHIVE_RACY_NS). */
static bool
stamp_racy(const struct file_stamp *fs, int64_t started_ns)
{
	const int64_t second = 1000000000;
	int64_t margin =
	    fs->mtime_ns % second == 0 && fs->ctime_ns % second == 0
	    ? ARCHIVE_RACY_COARSE_NS
	    : ARCHIVE_RACY_NS;

	return fs->ctime_ns >= started_ns - margin;
}

static bool
stamp_equal(const struct file_stamp *a, const struct file_stamp *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	    a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

/*
 * Whether name (in dirfd) is still the file a load beginning at
 * started_ns saw with stamp was: not followed, as read_file_at opens
 * without following, so a file replaced by a symlink is read again (and
 * refused there).  A file rewritten in place within the same
 * nanosecond still moves its ctime.
 */
static bool
stamp_unchanged(int dirfd, const char *name, const struct file_stamp *was,
    int64_t started_ns)
{
	struct file_stamp now;
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    !S_ISREG(st.st_mode))
		return false;
	stamp_of(&st, &now);
	return stamp_equal(&now, was) && !stamp_racy(&now, started_ns);
}

/* A reload shares the text of a file whose stamp has not moved. */
static bool
share_unchanged(
    const struct loader *L, struct job *j, int dirfd, const char *name)
{
	if (!stamp_unchanged(dirfd, name, &j->old->stamp, L->old->started_ns))
		return false;
	j->shared = text_share(j->old);
	j->stamp = j->old->stamp;
	j->parsed = true;
	return true;
}

/*
 * The job's file as a path: for the warnings and the pack's catalog (a
 * lookup per file of the warm start: no snprintf).  Cut short, like
 * snprintf, past size.
 */
static const char *
job_path(const struct job *j, char *buf, size_t size)
{
	size_t dl = strcmp(j->dir, "/") == 0 ? 0 : strlen(j->dir);
	size_t fl = strlen(j->fname), at;

	at = dl < size - 1 ? dl : size - 1;
	memcpy(buf, j->dir, at);
	if (at < size - 1)
		buf[at++] = '/';
	fl = fl < size - 1 - at ? fl : size - 1 - at;
	memcpy(buf + at, j->fname, fl);
	buf[at + fl] = '\0';
	return buf;
}

/*
 * A parsing thread's own: the directory it has open, so that a file is
 * opened by its name in it and not by a walk of its whole path, and one
 * buffer every file is read into.
 */
struct reader {
	struct loader *L;
	const char *dir; /* what dirfd is open on; NULL: none */
	int dirfd;
	struct readbuf rb;
	struct slab *slabs;          /* the loader's, once the thread is done */
	const struct pack_rec *near; /* the last file's record (pack_find) */
	/* With L->wfd: one parse block and one chunk of the pack, reused. */
	char *blk, *wbuf;
	size_t blkcap, wfill;
	uint64_t wbase; /* where wbuf goes in the pack */
};

/*
 * The start-up load takes the text of a file whose stamp is the one the
 * persistent pack's catalog recorded (and was not racy when the catalog
 * was written) from the mapped pack, as a reload shares the old
 * snapshot's.
 */
static bool
take_cached(struct loader *L, struct reader *R, struct job *j, int dirfd,
    const char *name)
{
	const struct pack_rec *r;
	struct file_stamp was;
	struct text *t;
	struct node *n;
	char path[PATH_MAX];
	size_t np;

	/* The catalog's key: the file's path as the walk found it. */
	if ((r = pack_find(
	         L->cache, job_path(j, path, sizeof(path)), R->near)) == NULL)
		return false;
	R->near = r;
	pack_rec_stamp(r, &was);
	np = pack_rec_npara(r);
	if (!stamp_unchanged(dirfd, name, &was, L->cache->written_ns) ||
	    (t = malloc(sizeof(*t) + (np + 1) * sizeof(*t->room))) == NULL)
		return false;
	if (pack_rec_article(L->cache, r, &t->art, t->room, &j->off, &j->sum) ==
	    -1) {
		atomic_fetch_add(&L->ndamaged, 1);
		free(t);
		return false;
	}
	atomic_init(&t->refs, 1);
	t->keep_paras = true;
	t->seg = L->cache_seg;
	atomic_fetch_add(&t->seg->refs, 1);
	j->shared = t;
	j->stamp = was;
	j->parsed = true;
	j->cached = true;
	/*
	 * Its node too, here rather than in adopt_jobs, which is serial.
	 * Its strings are set there: persist may move the text.
	 */
	if ((n = node_new(NODE_ARTICLE, j->sec->path, j->slug)) != NULL) {
		if (t->art.date != NULL)
			n->when = article_date_key(t->art.date);
		j->node = n;
	}
	return true;
}

/*
 * Parsed texts to be packed: a thread takes their blocks from slabs of
 * its own instead of one malloc each (the heap grown by a whole archive,
 * then freed in pieces), and the load unmaps the slabs whole once the
 * texts are in the pack.
 */
struct slab {
	struct slab *next;
	size_t used, cap;
	char data[];
};

/* Some 2,500 generated articles a slab; a larger text gets its own. */
#define SLAB_SIZE (4 * 1024 * 1024)

static void *
slab_alloc(void *arg, size_t n)
{
	struct reader *R = arg;
	struct slab *s = R->slabs;
	char *p;

	/* The block starts with pointers. */
	n = (n + sizeof(char *) - 1) / sizeof(char *) * sizeof(char *);
	if (s == NULL || s->cap - s->used < n) {
		size_t cap = n > SLAB_SIZE ? n : SLAB_SIZE;

		if ((s = map_anon(sizeof(*s) + cap)) == NULL)
			return NULL;
		s->next = R->slabs;
		s->used = 0;
		s->cap = cap;
		R->slabs = s;
	}
	p = s->data + s->used;
	s->used += n;
	return p;
}

static void
slabs_free(struct slab *s)
{
	while (s != NULL) {
		struct slab *next = s->next;

		munmap(s, sizeof(*s) + s->cap);
		s = next;
	}
}

/* dir, as the reader has it open; AT_FDCWD (dir in the path) if it cannot. */
static int
reader_dir(struct reader *R, const char *dir)
{
	if (R->dir != dir) {
		if (R->dirfd != AT_FDCWD)
			close(R->dirfd);
		R->dir = dir;
		/* Failing, files are opened by path: the errors stay theirs. */
		R->dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (R->dirfd == -1)
			R->dirfd = AT_FDCWD;
	}
	return R->dirfd;
}

/* The parse block of a thread that writes the pack: one, grown, reused. */
static void *
block_alloc(void *arg, size_t n)
{
	struct reader *R = arg;

	if (n > R->blkcap) {
		size_t cap = n > 2 * R->blkcap ? n : 2 * R->blkcap;
		char *p;

		if ((p = realloc(R->blk, cap)) == NULL)
			return NULL;
		R->blk = p;
		R->blkcap = cap;
	}
	return R->blk;
}

static bool
chunk_flush(struct loader *L, struct reader *R)
{
	bool ok = R->wfill == 0 ||
	    pwrite_all(L->wfd, R->wbuf, R->wfill, (long long)R->wbase);

	R->wfill = 0;
	if (!ok)
		atomic_store(&L->wfailed, true);
	return ok;
}

/*
 * len bytes to the pack, through the thread's chunk: *off is where they
 * will be.  Each chunk takes its room in the file as it is begun, so the
 * threads write side by side without a lock; a text that would not fit
 * begins the next one (what it leaves is a hole, a text's length at
 * most), and one larger than a chunk takes room of its own.
 */
static bool
chunk_put(struct loader *L, struct reader *R, const char *p, size_t len,
    uint64_t *off)
{
	if (atomic_load(&L->wfailed))
		return false;
	if (len > PACK_WRITE_CHUNK) {
		*off = atomic_fetch_add(&L->wend, len);
		if (!pwrite_all(L->wfd, p, len, (long long)*off)) {
			atomic_store(&L->wfailed, true);
			return false;
		}
		atomic_fetch_add_explicit(&L->wrote, len, memory_order_relaxed);
		return true;
	}
	if (R->wbuf == NULL && (R->wbuf = malloc(PACK_WRITE_CHUNK)) == NULL) {
		atomic_store(&L->wfailed, true);
		return false;
	}
	if (R->wfill + len > PACK_WRITE_CHUNK || R->wbase == 0) {
		if (!chunk_flush(L, R))
			return false;
		R->wbase = atomic_fetch_add(&L->wend, PACK_WRITE_CHUNK);
	}
	*off = R->wbase + R->wfill;
	memcpy(R->wbuf + R->wfill, p, len);
	R->wfill += len;
	atomic_fetch_add_explicit(&L->wrote, len, memory_order_relaxed);
	return true;
}

/* An offset into the pack, held as a pointer until the pack is mapped. */
static char *
at_offset(uint64_t off)
{
	return (char *)(uintptr_t)off;
}

/*
 * The file just read, parsed into the thread's block and its text put
 * in the pack: what stays in memory is its struct text, with the
 * paragraph pointers in its room, and its node.  The strings point at
 * offsets into the pack until it is mapped (pack_map).
 */
static void
pack_job(struct loader *L, struct reader *R, struct job *j, size_t len)
{
	struct article a;
	struct text *t;
	struct node *n;
	const char *text;
	char **fields[ARTICLE_NFIELDS];
	uint64_t off;

	if (article_parse_with(R->rb.p, len, &a, &j->why, block_alloc, R) == -1)
		return;
	text = (const char *)(void *)a.paras + (a.npara + 1) * sizeof(char *);
	article_fields(&a, fields);
	if ((t = malloc(sizeof(*t) + (a.npara + 1) * sizeof(*t->room))) ==
	        NULL ||
	    (n = node_new(NODE_ARTICLE, j->sec->path, j->slug)) == NULL) {
		free(t);
		j->why = "out of memory";
		return;
	}
	if (!chunk_put(L, R, text, a.textlen, &off)) {
		/* Read again once the threads are done (pack_undo). */
		node_release(n);
		free(t);
		return;
	}
	if (a.date != NULL)
		n->when = article_date_key(a.date);
	j->sum = pack_hash(text, a.textlen);
	for (size_t i = 0; i < a.npara; i++)
		t->room[i] = at_offset(off + (uint64_t)(a.paras[i] - text));
	t->room[a.npara] = NULL;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (*fields[i] != NULL)
			*fields[i] =
			    at_offset(off + (uint64_t)(*fields[i] - text));
	a.paras = t->room;
	t->art = a;
	atomic_init(&t->refs, 1);
	t->keep_paras = true;
	t->seg = NULL;
	j->shared = t;
	j->node = n;
	j->off = off;
	j->parsed = j->fresh = j->packed = true;
}

static void
parse_job(struct loader *L, struct reader *R, struct job *j)
{
	char path[PATH_MAX];
	const char *name = j->fname;
	struct text *t;
	size_t len;
	int dirfd;

	/* Done, or failed for good, in an earlier pass (pack_undo). */
	if (j->parsed || j->why != NULL || j->err != 0)
		return;
	if (j->old != NULL && j->trusted) {
		j->shared = text_share(j->old);
		j->stamp = j->old->stamp;
		j->parsed = true;
		return;
	}
	if ((dirfd = reader_dir(R, j->dir)) == AT_FDCWD)
		name = job_path(j, path, sizeof(path));
	if (j->old != NULL && share_unchanged(L, j, dirfd, name))
		return;
	if (L->cache_seg != NULL && take_cached(L, R, j, dirfd, name))
		return;
	if (read_file_at(dirfd, name, ARTICLE_MAX_BYTES, &R->rb, &len,
	        &j->stamp, &j->why, &j->err) == -1)
		return;
	if (L->wfd != -1) {
		pack_job(L, R, j, len);
		return;
	}
	/*
	 * Its text made here, not in the job: a job is all a load touches
	 * of memory per file before the texts (a million of them), so it
	 * holds no article.
	 */
	if ((t = malloc(sizeof(*t))) == NULL) {
		j->why = "out of memory";
		return;
	}
	if (article_parse_with(R->rb.p, len, &t->art, &j->why,
	        L->slabbed ? slab_alloc : NULL, R) == -1) {
		free(t);
		return;
	}
	atomic_init(&t->refs, 1);
	t->seg = NULL;
	/* A slab's block is given back with the slab. */
	t->keep_paras = L->slabbed;
	j->shared = t;
	j->parsed = j->fresh = true;
}

/*
 * Jobs a thread takes at a time: consecutive ones share a directory, so
 * it is opened once per batch, not per file, and the shared counter is
 * touched less.
 */
#define PARSE_BATCH 32

/* The threads' texts appended to the pack, aligned as its writes are. */
static void
pack_target(struct loader *L, const struct stat *st)
{
	uint64_t end = ((uint64_t)st->st_size + 7) / 8 * 8;

	L->wfd = L->cache->fd;
	atomic_init(&L->wend, end > PACK_HEAD_BYTES ? end : PACK_HEAD_BYTES);
	atomic_init(&L->wrote, 0);
	L->wfrom = (uint64_t)st->st_size;
}

/*
 * The next job, once the walk has found it: a start that streams (jobs
 * parsed while the walk goes on) waits here when it is ahead of the
 * walk.  false: no more.
 */
static bool
job_ready(struct loader *L, size_t i)
{
	const struct timespec nap = {0, 50 * 1000};

	while (i >= atomic_load_explicit(&L->ready, memory_order_acquire)) {
		if (atomic_load_explicit(&L->walked, memory_order_acquire))
			return i < atomic_load_explicit(
			               &L->ready, memory_order_acquire);
		nanosleep(&nap, NULL);
	}
	return true;
}

static void *
parser_main(void *arg)
{
	struct reader *R = arg;
	struct loader *L = R->L;
	bool more = true;

	while (more) {
		size_t i = atomic_fetch_add(&L->next, PARSE_BATCH);

		for (size_t end = i + PARSE_BATCH; i < end; i++) {
			if (!(more = job_ready(L, i)))
				break;
			parse_job(L, R, &L->jobs[i]);
		}
	}
	if (R->dirfd != AT_FDCWD)
		close(R->dirfd);
	free(R->rb.p);
	if (L->wfd != -1)
		chunk_flush(L, R);
	free(R->blk);
	free(R->wbuf);
	return NULL;
}

/* Below this many files, threads cost more than they save. */
#define PARSE_THREADS_MIN_JOBS 256
#define PARSE_THREADS_MAX 8

/* The parsing threads of a load, this one's reader first. */
struct parse_run {
	pthread_t t[PARSE_THREADS_MAX - 1];
	struct reader R[PARSE_THREADS_MAX];
	size_t nt;
};

/*
 * The threads begun: on the jobs found, or (L->streaming) on those the
 * walk is still finding, which parse_end says it is done with.
 */
static void
parse_begin(struct loader *L, struct parse_run *P)
{
	size_t want = 1;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if ((L->streaming || L->njobs >= PARSE_THREADS_MIN_JOBS) && ncpu > 1)
		want =
		    ncpu > PARSE_THREADS_MAX ? PARSE_THREADS_MAX : (size_t)ncpu;
	atomic_init(&L->next, 0);
	if (!L->streaming) {
		atomic_init(&L->ready, L->njobs);
		atomic_init(&L->walked, true);
	}
	for (size_t i = 0; i < want; i++)
		P->R[i] = (struct reader){.L = L, .dirfd = AT_FDCWD};
	/* R[0] is this thread's, once it is done walking. */
	for (P->nt = 0; P->nt + 1 < want; P->nt++)
		if (thread_start(&P->t[P->nt], parser_main, &P->R[P->nt + 1]) !=
		    0)
			break;
}

static void
parse_end(struct loader *L, struct parse_run *P)
{
	atomic_store_explicit(&L->ready, L->njobs, memory_order_release);
	atomic_store_explicit(&L->walked, true, memory_order_release);
	parser_main(&P->R[0]);
	for (size_t i = 0; i < P->nt; i++)
		pthread_join(P->t[i], NULL);
	for (size_t i = 0; i <= P->nt; i++)
		while (P->R[i].slabs != NULL) {
			struct slab *s = P->R[i].slabs;

			P->R[i].slabs = s->next;
			s->next = L->slabs;
			L->slabs = s;
		}
}

static void
parse_jobs(struct loader *L)
{
	struct parse_run P;

	L->streaming = false;
	parse_begin(L, &P);
	parse_end(L, &P);
}

/*
 * A cold start's jobs parsed while the walk finds them (the other cores
 * idle through the walk otherwise): the pack is empty, so nothing need
 * be waited for, and the jobs' room is made for the most files an
 * archive may have at once (address space, touched as used), so that
 * it never moves under the threads.
 */
static bool
stream_begin(struct loader *L, struct parse_run *P)
{
	struct stat st;
	void *p;

	if (L->cache == NULL || L->cache->checking || L->cache->addr != NULL ||
	    L->jobs != NULL || fstat(L->cache->fd, &st) == -1)
		return false;
	p = mmap(NULL, (size_t)ARCHIVE_MAX_FILES * sizeof(*L->jobs),
	    PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
	    -1, 0);
	if (p == MAP_FAILED)
		return false;
	L->jobs = p;
	L->capjobs = ARCHIVE_MAX_FILES;
	L->slabbed = true;
	pack_target(L, &st);
	L->streaming = true;
	atomic_init(&L->ready, 0);
	atomic_init(&L->walked, false);
	parse_begin(L, P);
	return true;
}

static void
free_jobs(struct loader *L)
{
	for (size_t i = 0; i < L->njobs; i++) {
		if (L->jobs[i].adopted)
			continue;
		node_release(L->jobs[i].node);
		if (L->jobs[i].shared != NULL)
			text_release(L->jobs[i].shared);
	}
	if (L->jobs != NULL)
		munmap(L->jobs, L->capjobs * sizeof(*L->jobs));
	L->jobs = NULL;
	L->njobs = L->capjobs = 0;
	pool_free(L);
	slabs_free(L->slabs);
	L->slabs = NULL;
}

static void pack_fresh(struct loader *);
static bool persist(struct loader *);
static bool rebase(struct text *, char *, bool);

/* A text parsed into a slab, copied to a block of its own. */
static bool
unslab(struct text *t)
{
	struct article *a = &t->art;
	char *from = (char *)(void *)a->paras, *to;
	size_t size = (a->npara + 1) * sizeof(char *) + a->textlen;
	char **fields[ARTICLE_NFIELDS];

	article_fields(a, fields);
	if ((to = malloc(size)) == NULL)
		return false;
	memcpy(to, from, size);
	a->paras = (char **)(void *)to;
	for (size_t i = 0; i < a->npara; i++)
		a->paras[i] = to + (a->paras[i] - from);
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (*fields[i] != NULL)
			*fields[i] = to + (*fields[i] - from);
	t->keep_paras = false;
	return true;
}

/*
 * What a load keeps until its sections are done: the jobs, the catalog
 * being written, the pack's index and mappings.
 */
static void
load_end(struct loader *L)
{
	if (L->commit != NULL) {
		pthread_join(L->commit->t, NULL);
		/* The threads' texts are in the file, but in no catalog. */
		if (L->commit->rv == -1)
			L->cache->saved_nrecs = 0;
		commit_free(L->commit);
		L->commit = NULL;
	}
	for (size_t i = 0; i < L->ndropped; i++)
		node_release(L->dropped[i]);
	free(L->dropped);
	L->dropped = NULL;
	L->ndropped = 0;
	free_jobs(L);
	if (L->cache != NULL) {
		pack_forget(L->cache);
		if (L->cache_seg != NULL)
			segment_release(L->cache_seg);
		L->cache_seg = NULL;
	}
	if (L->wseg != NULL)
		segment_release(L->wseg);
	L->wseg = NULL;
}

/* The parsed articles join their sections, in the walk's order. */
static void
adopt_jobs(struct loader *L)
{
	/* Without it, texts stay in private memory; nothing else changes. */
	if ((pack_fd != -1 || L->cache != NULL) && L->njobs > 0 &&
	    (L->fresh = reallocarray(NULL, L->njobs, sizeof(*L->fresh))) ==
	        NULL &&
	    L->slabbed)
		L->oom = true;
	/* Texts first, packed before any node points into them. */
	for (size_t i = 0; i < L->njobs && !L->oom; i++) {
		struct job *j = &L->jobs[i];

		if (j->cached)
			L->ncached++;
		if (!j->fresh)
			continue;
		/* Those its threads wrote are in the pack already. */
		if (L->fresh != NULL && !j->packed)
			L->fresh[L->nfresh++] = j->shared;
		L->nparsed++;
	}
	/* The persistent pack, or failing it the process's own. */
	if (!L->oom && (L->cache == NULL || !persist(L)) && L->nfresh > 0 &&
	    pack_fd != -1)
		pack_fresh(L);
	/* What the pack did not take leaves the slabs for a block of its own. */
	for (size_t i = 0; i < L->nfresh && L->slabbed; i++)
		if (L->fresh[i]->seg == NULL && !unslab(L->fresh[i])) {
			/* Not a block text_release may free: dropped whole. */
			memset(&L->fresh[i]->art, 0, sizeof(L->fresh[i]->art));
			L->oom = true;
		}
	free(L->fresh);
	L->fresh = NULL;
	slabs_free(L->slabs);
	L->slabs = NULL;
	/*
	 * Each section's articles made room for at once, at their number:
	 * grown one by one, a section of thousands was copied as often.
	 * narticles counts them, then is set back to fill them.
	 */
	for (size_t i = 0; i < L->njobs && !L->oom; i++)
		L->jobs[i].sec->sec->narticles++;
	for (size_t i = 0; i < L->njobs; i++) {
		struct section *s = L->jobs[i].sec->sec;

		/* Every count is set back, out of memory or not. */
		if (s->articles == NULL && s->narticles > 0) {
			if (!L->oom &&
			    (s->articles = reallocarray(NULL, s->narticles,
			         sizeof(*s->articles))) == NULL)
				L->oom = true;
			s->narticles = 0;
		}
	}
	for (size_t i = 0; i < L->njobs && !L->oom; i++) {
		struct job *j = &L->jobs[i];
		struct node *n;

		if (!j->parsed) {
			char path[PATH_MAX];

			skip(L, job_path(j, path, sizeof(path)),
			    j->why ? j->why : strerror(j->err));
			j->sec->plain = false;
			continue;
		}
		/*
		 * The file unchanged: the old node itself, which depends on
		 * nothing but its text and path (not its section, not its
		 * place), so its section may be a new one.
		 */
		if (j->old != NULL && &j->shared->art == j->old->art) {
			n = node_ref((struct node *)j->old);
			text_release(j->shared);
			j->shared = NULL;
			j->parsed = false;
		} else if ((n = j->node) == NULL &&
		    (n = node_new(NODE_ARTICLE, j->sec->path, j->slug)) ==
		        NULL) {
			L->oom = true;
			break;
		} else {
			n->born = L->born;
			n->art = &j->shared->art;
			n->title = n->art->title;
			n->date = n->art->date;
			/* The parsing thread's node has its key. */
			if (n->date != NULL && j->node == NULL)
				n->when = article_date_key(n->date);
			n->lang = n->art->lang;
			n->stamp = j->stamp;
			/*
			 * The text and node are the section's now; the job is
			 * left as it is, as the catalog's thread reads it.
			 */
			j->adopted = true;
		}
		j->sec->sec->articles[j->sec->sec->narticles++] = n;
	}
}

/*
 * The jobs' first room: 4,096 of them, half a megabyte of address
 * space, touched only as it is used.
 */
#define JOBS_FIRST 4096

/*
 * Twice the room for jobs.  Mapped on its own and grown by mremap, which
 * moves pages, not bytes: grown in the heap, a million jobs (136 MB)
 * were copied at each doubling, and left the old copies as holes.
 */
static bool
jobs_grow(struct loader *L)
{
	size_t cap = L->capjobs ? 2 * L->capjobs : JOBS_FIRST;
	void *p;

	if (L->jobs == NULL)
		p = map_anon(cap * sizeof(*L->jobs));
	else if ((p = mremap(L->jobs, L->capjobs * sizeof(*L->jobs),
	              cap * sizeof(*L->jobs), MREMAP_MAYMOVE)) == MAP_FAILED)
		p = NULL;
	if (p == NULL)
		return false;
	L->jobs = p;
	L->capjobs = cap;
	return true;
}

/*
 * name, in the directory dir (the pool's), is an article; real, if not
 * NULL, the file a symlink of that name leads to.
 */
static void
load_article(struct loader *L, struct node *sec, const char *dir,
    const char *name, const char *path, const char *real, bool trust)
{
	size_t nlen = strlen(name) - 4;
	struct job *j;

	if (!name_is_safe(name, nlen)) {
		skip(L, path,
		    "unsafe name (use ASCII letters, digits, '-', "
		    "'_', '.'; not starting with '.')");
		return;
	}
	if (strlen(sec->path) + nlen > ARCHIVE_PATH_MAX) {
		skip(L, path, "path longer than a Gopher selector may be");
		return;
	}
	/* Streaming, the room is the most there may be: never moved. */
	if (L->njobs == L->capjobs && (L->streaming || !jobs_grow(L))) {
		L->oom = true;
		return;
	}
	j = &L->jobs[L->njobs];
	memset(j, 0, sizeof(*j));
	j->sec = sec;
	if (L->old != NULL) {
		char np[ARCHIVE_PATH_MAX + 1];
		const struct node *was;

		/* Fits: checked against ARCHIVE_PATH_MAX above. */
		snprintf(np, sizeof(np), "%s%.*s", sec->path, (int)nlen, name);
		was = archive_lookup(L->old, np, strlen(np));
		if (was != NULL && was->kind == NODE_ARTICLE) {
			j->old = was;
			j->trusted = trust;
		}
	}
	j->dir = dir;
	j->fname = name;
	if (real != NULL) {
		const char *slash = strrchr(real, '/');

		j->dir = slash == real
		    ? "/"
		    : pool_strndup(L, real, (size_t)(slash - real));
		j->fname = slash + 1;
	}
	if (j->dir == NULL || (j->slug = pool_strndup(L, name, nlen)) == NULL) {
		L->oom = true;
		return;
	}
	if (real != NULL &&
	    (j->fname = pool_strndup(L, j->fname, strlen(j->fname))) == NULL) {
		L->oom = true;
		return;
	}
	L->njobs++;
	if (L->streaming)
		atomic_store_explicit(
		    &L->ready, L->njobs, memory_order_release);
}

/* realpath-based containment: a component boundary, not a mere prefix. */
static bool
inside_root(const struct loader *L, const char *real)
{
	size_t n = strlen(L->rootreal);

	if (strcmp(L->rootreal, "/") == 0)
		return true;
	return strncmp(real, L->rootreal, n) == 0 &&
	    (real[n] == '/' || real[n] == '\0');
}

static void load_dir(
    struct loader *, const char *, struct node *, const struct node *);
static bool dir_changed(const struct archive_changes *, const char *);

/* Paths the server answers itself at the root, now or in the plan. */
static bool
reserved(const struct node *sec, const char *name, size_t len)
{
	static const char *const names[] = {
	    "search", "feed.xml", "robots.txt", "caps.txt", NULL};

	/* Every section answers its own feed.xml. */
	if (len == strlen(FEED_NAME) && strncmp(name, FEED_NAME, len) == 0)
		return true;
	if (sec->path[1] != '\0')
		return false;
	for (const char *const *n = names; *n; n++)
		if (strlen(*n) == len && strncmp(*n, name, len) == 0)
			return true;
	return false;
}

/* A section's depth: "/" 0, "/a/" 1, "/a/b/" 2. */
static size_t
node_depth(const struct node *n)
{
	size_t d = 0;

	for (const char *p = n->path + 1; *p != '\0'; p++)
		d += *p == '/';
	return d;
}

static size_t
seen_slot(const struct loader *L, dev_t dev, ino_t ino)
{
	/* FNV-style mix: inodes of one directory tree are near each other. */
	uint64_t h = ((uint64_t)dev * 0x100000001b3ull) ^ (uint64_t)ino;
	size_t i;

	h *= 0x9e3779b97f4a7c15ull;
	i = (size_t)(h >> 32) & (L->capseen - 1);
	while (L->seen[i].path != NULL &&
	    (L->seen[i].dev != dev || L->seen[i].ino != ino))
		i = (i + 1) & (L->capseen - 1);
	return i;
}

/* The section already loaded from this directory, or NULL. */
static const char *
seen_find(const struct loader *L, const struct stat *st)
{
	if (L->capseen == 0)
		return NULL;
	return L->seen[seen_slot(L, st->st_dev, st->st_ino)].path;
}

static bool seen_room(struct loader *);
static bool seen_put(struct loader *, dev_t, ino_t, const char *);
static bool same_str(const char *, const char *);
static bool opts_same(const struct archive_opts *, const struct archive_opts *);

static bool
seen_add(struct loader *L, const struct stat *st, const char *path)
{
	if (!seen_room(L))
		return false;
	return seen_put(L, st->st_dev, st->st_ino, path);
}

static bool
seen_room(struct loader *L)
{
	if (2 * (L->nseen + 1) > L->capseen) {
		struct seen *old = L->seen;
		size_t oldcap = L->capseen;

		L->capseen = oldcap ? oldcap * 2 : 64;
		if ((L->seen = calloc(L->capseen, sizeof(*L->seen))) == NULL) {
			L->seen = old;
			L->capseen = oldcap;
			return false;
		}
		for (size_t k = 0; k < oldcap; k++)
			if (old[k].path != NULL)
				L->seen[seen_slot(L, old[k].dev, old[k].ino)] =
				    old[k];
		free(old);
	}
	return true;
}

static bool
seen_put(struct loader *L, dev_t dev, ino_t ino, const char *path)
{
	size_t i = seen_slot(L, dev, ino);

	L->seen[i].dev = dev;
	L->seen[i].ino = ino;
	L->seen[i].path = path;
	L->nseen++;
	return true;
}

/* Whether a change the watch saw is in the section at path or below. */
static bool
changed_below(const struct archive_changes *c, const char *path)
{
	size_t lo = 0, hi = c->ndirs, plen = strlen(path);

	/* The first name not before path: the subtree's sort after it. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(c->dirs[mid], path) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->ndirs && strncmp(c->dirs[lo], path, plen) == 0;
}

/*
 * Each directory of a subtree about to be taken whole is as the old load
 * listed it: the same stamp, not too recent to tell, and not loaded
 * already under another path.
 */
static bool
subtree_unchanged(const struct loader *L, const struct node *o)
{
	char dir[PATH_MAX];
	struct file_stamp now;
	struct stat st;
	const struct section *s = o->sec;

	if (s->listing == NULL ||
	    (size_t)snprintf(dir, sizeof(dir), "%s%s", L->rootreal, o->path) >=
	        sizeof(dir) ||
	    stat(dir, &st) == -1 || seen_find(L, &st) != NULL)
		return false;
	stamp_of(&st, &now);
	if (!stamp_equal(&now, &s->listing->stamp) ||
	    stamp_racy(&now, L->old->started_ns))
		return false;
	for (size_t i = 0; i < s->nsections; i++)
		if (!subtree_unchanged(L, s->sections[i]))
			return false;
	return true;
}

/* The subtree's directories join the seen set, as if loaded. */
static bool
seen_subtree(struct loader *L, const struct node *o)
{
	const struct section *s = o->sec;

	if (!seen_room(L) ||
	    !seen_put(L, (dev_t)s->listing->stamp.dev,
	        (ino_t)s->listing->stamp.ino, o->path))
		return false;
	for (size_t i = 0; i < s->nsections; i++)
		if (!seen_subtree(L, s->sections[i]))
			return false;
	return true;
}

/*
 * A reload takes the old section at the same path whole, with its
 * subtree, when nothing in it can have changed and nothing it shows
 * from above did: the watch saw no change in it or below, every
 * directory's stamp agrees, it was loaded plain (own directories, no
 * symlink, nothing skipped: no warning to repeat), the section above
 * has the language it had (what it inherits) and every section above
 * the title it had (its "Up" line; what an article's Location: is
 * checked against).  The pages above it are still made anew (they list
 * it).
 */
static bool
take_whole(
    struct loader *L, struct node *sec, const char *name, const char *use)
{
	char path[ARCHIVE_PATH_MAX + 2], dir[PATH_MAX];
	struct route r;
	const struct node *o, *up;

	if (L->changes == NULL || L->old == NULL || !L->same_pages ||
	    (size_t)snprintf(path, sizeof(path), "%s%s/", sec->path, name) >=
	        sizeof(path) ||
	    (size_t)snprintf(dir, sizeof(dir), "%s%.*s", L->rootreal,
	        (int)strlen(path) - 1, path) >= sizeof(dir) ||
	    strcmp(dir, use) != 0 || changed_below(L->changes, path))
		return false;
	if ((o = archive_route(L->old, path, strlen(path), &r)) == NULL ||
	    o->kind != NODE_SECTION || !o->plain)
		return false;
	up = r.at[r.n - 2];
	/* The walk's chain ends at sec: a section reached by a symlink
	 * (deferred, walked from no chain) was refused above. */
	if (L->depth != r.n - 1 || L->chain[L->depth - 1] != sec)
		return false;
	for (size_t i = 1; i + 1 < r.n; i++)
		if (!same_str(r.at[i]->title, L->chain[i]->title))
			return false;
	if (!same_str(up->lang, sec->lang) ||
	    L->nsecs + o->sec->subsections > ARCHIVE_MAX_SECTIONS ||
	    L->nfiles + o->sec->subfiles > ARCHIVE_MAX_FILES ||
	    !subtree_unchanged(L, o))
		return false;
	if (!seen_subtree(L, o)) {
		L->oom = true;
		return true;
	}
	node_ref((struct node *)o);
	if (!push(
	        &sec->sec->sections, &sec->sec->nsections, (struct node *)o)) {
		node_release((struct node *)o);
		L->oom = true;
		return true;
	}
	L->nsecs += o->sec->subsections;
	L->nfiles += o->sec->subfiles;
	L->ntaken++;
	return true;
}

/*
 * A directory becomes a section once: a second path to it (a symlink, a
 * bind mount) is skipped, so symlinks forming a loop, or a DAG that
 * doubles the paths at every level, cost one load of each directory.
 */
static void
load_section(struct loader *L, struct node *sec, const char *path,
    const char *use, const char *name, const struct stat *st)
{
	const char *first;
	struct node *n;
	char why[PATH_MAX + 64];

	if (take_whole(L, sec, name, use))
		return;
	if ((first = seen_find(L, st)) != NULL) {
		snprintf(why, sizeof(why),
		    "the same directory as %s, loaded there (a symlink loop or "
		    "a second path to it)",
		    first);
		skip(L, path, why);
		return;
	}
	if (L->nsecs >= ARCHIVE_MAX_SECTIONS) {
		if (L->nsecs++ == ARCHIVE_MAX_SECTIONS)
			log_warnx("%s: more than %d sections; this one and "
			          "every one after it skipped",
			    path, ARCHIVE_MAX_SECTIONS);
		L->nskipped++;
		return;
	}
	if ((n = node_new(NODE_SECTION, sec->path, name)) == NULL ||
	    !push(&sec->sec->sections, &sec->sec->nsections, n)) {
		node_release(n);
		L->oom = true;
		return;
	}
	n->born = L->born;
	if (!seen_add(L, st, n->path)) {
		L->oom = true;
		return;
	}
	L->nsecs++;
	load_dir(L, use, n, sec);
}

/* Symlinked directories wait for the real tree: the real path wins. */
static void
defer_section(struct loader *L, struct node *sec, const char *path,
    const char *real, const char *name)
{
	struct later *v, *x;

	if (L->nlater == L->caplater) {
		size_t cap = L->caplater ? L->caplater * 2 : 16;

		if ((v = reallocarray(L->later, cap, sizeof(*v))) == NULL) {
			L->oom = true;
			return;
		}
		L->later = v;
		L->caplater = cap;
	}
	x = &L->later[L->nlater];
	x->sec = sec;
	x->path = strdup(path);
	x->real = strdup(real);
	x->name = strdup(name);
	if (x->path == NULL || x->real == NULL || x->name == NULL) {
		free(x->path);
		free(x->real);
		free(x->name);
		L->oom = true;
		return;
	}
	L->nlater++;
}

/*
 * Loading one may defer more (a symlink inside it): the list grows while
 * it is walked, and the seen set ends it, each directory loading once.
 */
static void
load_deferred(struct loader *L)
{
	for (size_t i = 0; i < L->nlater; i++) {
		struct later x = L->later[i];
		struct stat st;

		if (!L->oom) {
			if (stat(x.real, &st) == -1)
				skip(L, x.path, strerror(errno));
			else if (!S_ISDIR(st.st_mode))
				skip(L, x.path, "no longer a directory");
			else
				load_section(
				    L, x.sec, x.path, x.real, x.name, &st);
		}
		free(x.path);
		free(x.real);
		free(x.name);
	}
	free(L->later);
	L->later = NULL;
	L->nlater = L->caplater = 0;
}

/*
 * trust: the directory is unchanged since the old snapshot (watch), so a
 * regular file in it is the old one.
 */
static void
load_entry(struct loader *L, struct node *sec, const char *dir,
    const char *name, unsigned char type, bool trust)
{
	char path[PATH_MAX], real[PATH_MAX];
	const char *use = path;
	struct stat st;
	size_t nlen = strlen(name), dlen = strlen(dir), base;

	/* As snprintf's "%s/%s", without its cost for each of the files. */
	if (dlen + 1 + nlen >= sizeof(path)) {
		skip(L, dir, "a name inside is too long for a path");
		return;
	}
	memcpy(path, dir, dlen);
	path[dlen] = '/';
	memcpy(path + dlen + 1, name, nlen + 1);
	/* Every name counts, so a directory of junk is bounded too. */
	if (type != DT_DIR && L->nfiles++ >= ARCHIVE_MAX_FILES) {
		if (L->nfiles == ARCHIVE_MAX_FILES + 1)
			log_warnx("%s: more than %d files; this one and every "
			          "one after it skipped",
			    path, ARCHIVE_MAX_FILES);
		L->nskipped++;
		return;
	}
	/*
	 * The directory already said what a regular file is: no lstat, and
	 * no walk of the whole path again, for each of the articles.  The
	 * file is opened with O_NOFOLLOW, so a symlink put in its place
	 * meanwhile is refused, not followed.
	 */
	if (type == DT_REG) {
		memset(&st, 0, sizeof(st));
		st.st_mode = S_IFREG;
	} else if (lstat(path, &st) == -1) {
		skip(L, path, strerror(errno));
		return;
	}
	if (S_ISLNK(st.st_mode)) {
		if (realpath(path, real) == NULL) {
			skip(L, path, "broken symlink");
			return;
		}
		if (!inside_root(L, real)) {
			skip(L, path, "symlink leads outside the archive root");
			return;
		}
		if (stat(real, &st) == -1) {
			skip(L, path, strerror(errno));
			return;
		}
		use = real;
	}
	/* Articles are named by their slug: compare without ".txt". */
	base = nlen;
	if (S_ISREG(st.st_mode) && nlen > 4 &&
	    strcmp(name + nlen - 4, ".txt") == 0)
		base = nlen - 4;
	if (reserved(sec, name, base)) {
		skip(L, path,
		    sec->path[1] != '\0' ? "reserved name (each section's feed)"
		                         : "reserved name at the archive root");
		return;
	}
	if (S_ISDIR(st.st_mode)) {
		if (!name_is_safe(name, nlen)) {
			skip(L, path,
			    "unsafe directory name (use ASCII "
			    "letters, digits, '-', '_', '.'; not "
			    "starting with '.')");
			return;
		}
		if (node_depth(sec) + 1 > ARCHIVE_MAX_DEPTH) {
			skip(L, path, "sections nested too deep");
			return;
		}
		if (strlen(sec->path) + nlen + 1 > ARCHIVE_PATH_MAX) {
			skip(L, path,
			    "path longer than a Gopher selector may be");
			return;
		}
		if (use == real)
			defer_section(L, sec, path, real, name);
		else
			load_section(L, sec, path, path, name, &st);
	} else if (S_ISREG(st.st_mode)) {
		if (nlen > 4 && strcmp(name + nlen - 4, ".txt") == 0)
			load_article(L, sec, dir, name,
			    use == path ? path : real,
			    use == path ? NULL : real, trust && type == DT_REG);
		else
			skip(L, path,
			    "not an article (only *.txt files and "
			    "section.ini are read)");
	} else
		skip(L, path, "not a regular file or directory");
}

/*
 * The operator's robots.txt at the root, read as every other file (no
 * FIFO, no symlink out of the root, bounded); UTF-8 text, since it is
 * sent as such.
 */
static void
read_robots(struct loader *L, struct blob *out)
{
	char path[PATH_MAX], real[PATH_MAX];
	const char *use, *why;
	char *data;
	size_t len;
	int err = 0;

	if ((size_t)snprintf(path, sizeof(path), "%s/robots.txt",
	        L->rootreal) >= sizeof(path))
		return;
	if ((use = resolve(L, path, real, &why)) == NULL) {
		if (why != NULL)
			skip(L, path, why);
		return;
	}
	if ((data = read_file(use, ROBOTS_MAX_BYTES, &len, NULL, &why, &err)) ==
	    NULL) {
		skip(L, path, why ? why : strerror(err));
		return;
	}
	if (memchr(data, '\0', len) != NULL || !utf8_valid(data, len)) {
		free(data);
		skip(L, path, "not UTF-8 text");
		return;
	}
	out->p = data;
	out->len = len;
}

static bool
dir_changed(const struct archive_changes *c, const char *path)
{
	size_t lo = 0, hi = c->ndirs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int k = strcmp(c->dirs[mid], path);

		if (k == 0)
			return true;
		if (k < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/*
 * The old snapshot's listing of dir, if it may stand for the directory
 * now: the watch saw nothing change in it, its stamp has not moved (and
 * is not too recent to tell, as for files), and it is the directory at
 * the section's own path, not one reached through a symlink (whose
 * changes the watch reports under another path).
 */
static struct listing *
old_listing(const struct loader *L, const char *dir, const struct node *sec)
{
	const struct node *o;
	struct file_stamp now;
	struct stat st;
	size_t rl = strlen(L->rootreal), pl = strlen(sec->path);

	if (L->changes == NULL || L->old == NULL ||
	    strcmp(L->rootreal, "/") == 0 ||
	    strncmp(dir, L->rootreal, rl) != 0 || strlen(dir + rl) + 1 != pl ||
	    strncmp(dir + rl, sec->path, pl - 1) ||
	    dir_changed(L->changes, sec->path))
		return NULL;
	o = archive_lookup(L->old, sec->path, pl);
	if (o == NULL || o->kind != NODE_SECTION || o->sec->listing == NULL ||
	    stat(dir, &st) == -1)
		return NULL;
	stamp_of(&st, &now);
	if (!stamp_equal(&now, &o->sec->listing->stamp) ||
	    stamp_racy(&now, L->old->started_ns))
		return NULL;
	atomic_fetch_add_explicit(
	    &o->sec->listing->refs, 1, memory_order_relaxed);
	return o->sec->listing;
}

/* The directory as it is now; NULL with errno. */
static struct listing *
list_dir(const char *dir)
{
	struct dirent **ents = NULL;
	struct listing *l = NULL;
	struct stat st;
	struct buf b;
	int n, saved;

	/* Before the listing: a change after it moves the stamp. */
	if (stat(dir, &st) == -1 ||
	    (n = scandir(dir, &ents, NULL, alphasort)) == -1)
		return NULL;
	buf_init(&b);
	for (int i = 0; i < n; i++) {
		const char *name = ents[i]->d_name;

		if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0) {
			buf_addc(&b, (char)ents[i]->d_type);
			buf_add(&b, name, strlen(name) + 1);
		}
		free(ents[i]);
	}
	free(ents);
	if (!buf_failed(&b) && (l = malloc(sizeof(*l) + b.len)) != NULL) {
		atomic_init(&l->refs, 1);
		stamp_of(&st, &l->stamp);
		l->len = b.len;
		if (b.len > 0)
			memcpy(l->ents, b.p, b.len);
	}
	saved = errno;
	buf_free(&b);
	errno = l == NULL ? ENOMEM : saved;
	return l;
}

/*
 * The root's title: the operator's, else its section.ini's, else the
 * default.  Known before its entries are walked: whether a subtree may
 * be taken whole depends on it (every feed names it).
 */
static bool
root_title(struct loader *L, struct node *root)
{
	if (L->o->title && L->o->title[0] != '\0') {
		free(root->title);
		root->title = strdup(L->o->title);
	} else if (root->title == NULL)
		root->title = strdup(DEFAULT_HOME_TITLE);
	if (root->title == NULL)
		return false;
	L->same_pages = L->old != NULL && opts_same(L->o, &L->old->opts) &&
	    strcmp(root->title, L->old->root->title) == 0;
	return true;
}

/*
 * A section's directory: its section.ini, then its entries.  Its title
 * and language are settled first (up: the section above, NULL for the
 * root), as the subsections inherit and show them.
 */
static void
load_dir(
    struct loader *L, const char *path, struct node *sec, const struct node *up)
{
	/* Its files' jobs name it: one copy for all of them. */
	const char *dir = pool_strndup(L, path, strlen(path));
	size_t skipped = L->nskipped, warned = L->nwarnings;
	size_t files = L->nfiles, rl = strlen(L->rootreal);
	bool trust, plain;

	if (dir == NULL) {
		L->oom = true;
		return;
	}
	read_section_ini(L, dir, sec);
	if (up == NULL ? !root_title(L, sec)
	               : sec->title == NULL &&
	            (sec->title = strdup(sec->name)) == NULL) {
		L->oom = true;
		return;
	}
	if (sec->lang == NULL &&
	    (sec->lang = strdup(up != NULL ? up->lang
	             : L->o->lang          ? L->o->lang
	                                   : "en")) == NULL) {
		L->oom = true;
		return;
	}
	/* Loaded from its own directory, not through a symlink. */
	plain = strncmp(dir, L->rootreal, rl) == 0 &&
	    strlen(dir + rl) + 1 == strlen(sec->path) &&
	    strncmp(dir + rl, sec->path, strlen(sec->path) - 1) == 0;
	trust = (sec->sec->listing = old_listing(L, dir, sec)) != NULL;
	if (!trust) {
		L->nlisted++;
		if ((sec->sec->listing = list_dir(dir)) == NULL) {
			if (errno == ENOMEM)
				L->oom = true;
			else
				skip(L, dir, strerror(errno));
			return;
		}
	}
	/* A deferred section starts a chain of its own: never taken. */
	if (up == NULL || (L->depth > 0 && L->chain[L->depth - 1] == up))
		L->chain[L->depth++] = sec;
	else
		L->depth = 0;
	for (size_t at = 0; at < sec->sec->listing->len && !L->oom;) {
		unsigned char type = (unsigned char)sec->sec->listing->ents[at];
		const char *name = sec->sec->listing->ents + at + 1;

		at += 2 + strlen(name);
		/* The root's robots.txt is read_robots'. */
		if (strcmp(name, "section.ini") == 0 ||
		    (up == NULL && strcmp(name, "robots.txt") == 0))
			continue;
		/* A symlink's target may change where the watch sees not. */
		if (type != DT_REG && type != DT_DIR)
			plain = false;
		load_entry(L, sec, dir, name, type, trust);
	}
	if (L->depth > 0 && L->chain[L->depth - 1] == sec)
		L->depth--;
	sec->plain = plain && L->nskipped == skipped && L->nwarnings == warned;
	sec->sec->subfiles = L->nfiles - files;
}

static int
cmp_section(const void *a, const void *b)
{
	const struct node *x = *(struct node *const *)a;
	const struct node *y = *(struct node *const *)b;
	int c = strcasecmp(x->title, y->title);

	return c ? c : strcmp(x->name, y->name);
}

/*
 * Newest first, by instant (two dates with different offsets compare as
 * the times they are); undated after every dated one, by title.
 */
static int
cmp_article(const void *a, const void *b)
{
	const struct node *x = *(struct node *const *)a;
	const struct node *y = *(struct node *const *)b;
	int c;

	if (x->date && y->date && x->when != y->when)
		return x->when < y->when ? 1 : -1;
	if (x->date && !y->date)
		return -1;
	if (!x->date && y->date)
		return 1;
	c = strcasecmp(x->title, y->title);
	return c ? c : strcmp(x->name, y->name);
}

/*
 * "Location: Home > News" must name the sections on the way down, by
 * title or directory name.  The directory wins; a mismatch is reported
 * (check_locations) so the archive's keeper can fix the file.  r: the way to
 * the article's section.
 */
static bool
location_matches(const struct route *r, const char *p)
{
	for (size_t k = 0; k < r->n; k++) {
		const char *sep = strstr(p, " > ");
		size_t len = sep ? (size_t)(sep - p) : strlen(p);
		const struct node *s = r->at[k];
		bool ok;

		if (k == 0)
			ok = len == 4 && strncasecmp(p, "Home", 4) == 0;
		else
			ok = (strlen(s->title) == len &&
			         strncasecmp(p, s->title, len) == 0) ||
			    (strlen(s->name) == len &&
			        strncasecmp(p, s->name, len) == 0);
		if (!ok || (k + 1 < r->n && sep == NULL) ||
		    (k + 1 == r->n && sep != NULL))
			return false;
		if (sep)
			p = sep + 3;
	}
	return true;
}

static bool
same_str(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Whether section c was made by this load, not taken whole from old. */
static bool
made_now(const struct loader *L, const struct node *c)
{
	return c->born == L->born;
}

/*
 * Whether n's pages would come out byte for byte as the replaced
 * snapshot's section at the same path did.  They show n's own strings,
 * the label of the section above, its subsections' titles, and every
 * article of the subtree (the feed's and the home's "Newest"): an
 * article is the same when it shares the old one's text, since its
 * title and date are the text's.  Subsections are finished first, so
 * their verdict is known; one taken whole is the old one.  Pointer and
 * string compares only: far cheaper than rendering, and a change
 * anywhere below shows on the way up.  *op: the old section.
 */
static bool
section_same(
    const struct loader *L, const struct route *r, const struct node **op)
{
	const struct node *n = r->at[r->n - 1], *o;
	const struct section *s = n->sec, *os;
	struct route ro;

	*op = NULL;
	if (L->old == NULL || !L->same_pages)
		return false;
	o = archive_route(L->old, n->path, strlen(n->path), &ro);
	if (o == NULL || o->kind != NODE_SECTION)
		return false;
	os = o->sec;
	if (os->gemini.p == NULL || os->gopher.p == NULL || os->feed.p == NULL)
		return false;
	if (!same_str(n->title, o->title) ||
	    !same_str(s->description, os->description) ||
	    !same_str(n->lang, o->lang) ||
	    (r->n > 2 &&
	        !same_str(r->at[r->n - 2]->title, ro.at[ro.n - 2]->title)) ||
	    s->nsections != os->nsections || s->narticles != os->narticles)
		return false;
	for (size_t i = 0; i < s->nsections; i++)
		if ((s->sections[i] != os->sections[i] &&
		        !(made_now(L, s->sections[i]) &&
		            s->sections[i]->same)) ||
		    strcmp(s->sections[i]->name, os->sections[i]->name) != 0)
			return false;
	for (size_t i = 0; i < s->narticles; i++)
		if (s->articles[i]->art != os->articles[i]->art ||
		    strcmp(s->articles[i]->name, os->articles[i]->name) != 0 ||
		    !same_str(s->articles[i]->lang, os->articles[i]->lang))
			return false;
	*op = o;
	return true;
}

/*
 * Rendered after PAGE_HEADER bytes, to be shared by later snapshots: the
 * page is copied out of b, which the next page is rendered into.  One
 * buffer for all the load's pages grows once to the largest, where one
 * each would grow by doubling, every step a fresh block to copy into.
 */
static bool
page_render(struct buf *b, struct blob *out)
{
	char *p;

	if (buf_failed(b) || (p = malloc(b->len + 1)) == NULL)
		return false;
	memcpy(p, b->p, b->len + 1);
	atomic_init((atomic_uint *)(void *)p, 1);
	out->p = p + PAGE_HEADER;
	out->len = b->len - PAGE_HEADER;
	return true;
}

static void
page_start(struct buf *b)
{
	static const char header[PAGE_HEADER];

	b->len = 0;
	buf_add(b, header, sizeof(header));
}

/* Sections only: their pages are few, and asked for most. */
static bool
render_section(struct loader *L, const struct route *r)
{
	struct node *n = (struct node *)r->at[r->n - 1];
	struct section *s = n->sec;
	const struct node *o;
	struct buf *b = &L->page;

	if ((n->same = section_same(L, r, &o))) {
		page_share(&s->gemini, &o->sec->gemini);
		page_share(&s->gopher, &o->sec->gopher);
		page_share(&s->feed, &o->sec->feed);
		return true;
	}
	page_start(b);
	render_gemini_section(b, r, RENDER_LIVE);
	if (!page_render(b, &s->gemini))
		return false;
	page_start(b);
	render_gopher_section(b, L->o, r, RENDER_LIVE);
	if (!page_render(b, &s->gopher))
		return false;
	page_start(b);
	render_atom_feed(b, L->o, r, RENDER_LIVE);
	return page_render(b, &s->feed);
}

static int
cmp_name(const void *a, const void *b)
{
	return strcmp(
	    (*(struct node *const *)a)->name, (*(struct node *const *)b)->name);
}

/*
 * An article's place in its section's order (cmp_article), taken once
 * per article so that the sort compares integers side by side, not
 * nodes each in memory of their own: a million of them are sorted at
 * every start.  when is INT64_MIN for an undated article (after every
 * instant).  Titles settle ties only (undated articles, or one instant
 * shared): fold is read for those alone, as the title's first 8 bytes
 * with ASCII letters lowered (strcasecmp's folding: serai keeps the C
 * locale), big-endian and zero after the end, so folds that differ
 * order as strcasecmp orders the titles; equal ones leave it to
 * cmp_article.
 */
struct order_key {
	int64_t when;
	uint64_t fold;
	struct node *n;
};

static uint64_t
title_fold(const char *t)
{
	uint64_t fold = 0;
	bool end = false;

	for (size_t i = 0; i < sizeof(fold); i++) {
		unsigned char c = end ? 0 : (unsigned char)t[i];

		end = c == '\0';
		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		fold = fold << 8 | c;
	}
	return fold;
}

/* Newest first, undated last: 0 for a tie, which the title settles. */
static int
cmp_when(const void *a, const void *b)
{
	const struct order_key *x = a, *y = b;

	return x->when == y->when ? 0 : x->when < y->when ? 1 : -1;
}

static int
cmp_fold(const void *a, const void *b)
{
	const struct order_key *x = a, *y = b;

	if (x->fold != y->fold)
		return x->fold < y->fold ? -1 : 1;
	return cmp_article(&x->n, &y->n);
}

/*
 * A section's articles in cmp_article's order: by instant, then each
 * run of ties by title.
 */
static bool
sort_articles(struct loader *L, struct section *s)
{
	size_t n = s->narticles;

	if (n < 2)
		return true;
	if (n > L->capkeys) {
		struct order_key *k = reallocarray(L->keys, n, sizeof(*k));

		if (k == NULL)
			return false;
		L->keys = k;
		L->capkeys = n;
	}
	for (size_t i = 0; i < n; i++) {
		struct node *a = s->articles[i];

		L->keys[i] = (struct order_key){
		    a->date != NULL ? a->when : INT64_MIN, 0, a};
	}
	qsort(L->keys, n, sizeof(*L->keys), cmp_when);
	for (size_t i = 0, j; i < n; i = j) {
		for (j = i + 1; j < n && L->keys[j].when == L->keys[i].when;)
			j++;
		if (j - i < 2)
			continue;
		for (size_t k = i; k < j; k++)
			L->keys[k].fold = title_fold(L->keys[k].n->title);
		qsort(L->keys + i, j - i, sizeof(*L->keys), cmp_fold);
	}
	for (size_t i = 0; i < n; i++)
		s->articles[i] = L->keys[i].n;
	return true;
}

static bool
sorted_by_name(struct node *const *v, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (strcmp(v[i - 1]->name, v[i]->name) > 0)
			return false;
	return true;
}

/*
 * s->byname, its subsections and articles merged by name.  Both come
 * in their directory's order (alphasort, strcmp in the C locale): by
 * name but where a slug is the start of another's ("a-b.txt" lists
 * before "a.txt") or a section came through a symlink (loaded last),
 * so each is checked and sorted only when it is not in order.  They
 * are sorted again by title and date after: no order is lost.  An
 * article sharing a subsection's name was dropped before.
 */
static bool
by_name(struct section *s)
{
	size_t i = 0, j = 0, k = 0;

	if (s->nsections + s->narticles == 0)
		return true;
	if ((s->byname = reallocarray(NULL, s->nsections + s->narticles,
	         sizeof(*s->byname))) == NULL)
		return false;
	if (!sorted_by_name(s->sections, s->nsections))
		qsort(
		    s->sections, s->nsections, sizeof(*s->sections), cmp_name);
	if (!sorted_by_name(s->articles, s->narticles))
		qsort(
		    s->articles, s->narticles, sizeof(*s->articles), cmp_name);
	while (i < s->nsections && j < s->narticles)
		s->byname[k++] =
		    strcmp(s->sections[i]->name, s->articles[j]->name) < 0
		    ? s->sections[i++]
		    : s->articles[j++];
	while (i < s->nsections)
		s->byname[k++] = s->sections[i++];
	while (j < s->narticles)
		s->byname[k++] = s->articles[j++];
	return true;
}

/*
 * Each article's Location: checked against the way to its section.  A
 * section's articles mostly give the same one: a string is checked once
 * and its verdict holds for the articles after it that give it too.
 */
static void
check_locations(struct loader *L, const struct route *r)
{
	struct node *sec = (struct node *)r->at[r->n - 1];
	const struct section *s = sec->sec;
	const char *last = NULL;
	bool ok = true;

	for (size_t i = 0; i < s->narticles; i++) {
		const struct node *a = s->articles[i];
		const char *loc = a->art->location;

		if (loc == NULL)
			continue;
		if (last == NULL || strcmp(loc, last) != 0) {
			last = loc;
			ok = location_matches(r, loc);
		}
		if (!ok) {
			log_warnx("%s: Location: '%s' does not match its "
			          "directory; the directory wins",
			    a->path, loc);
			L->nwarnings++;
			sec->plain = false;
		}
	}
}

/*
 * A section's own part of finishing: what depends on nothing but itself
 * and the way to it (its subsections' names and titles): a clash of
 * names, the lookup by name, the sorts, the Location: checks.
 */
static bool
finish_own(struct loader *L, const struct route *r)
{
	struct node *sec = (struct node *)r->at[r->n - 1];
	struct section *s = sec->sec;
	size_t keep = 0;

	/* An article and a subsection may not share a name: /a/x vs /a/x/. */
	for (size_t i = 0; i < s->narticles; i++) {
		struct node *a = s->articles[i];
		bool clash = false;

		for (size_t j = 0; j < s->nsections; j++)
			if (strcmp(a->name, s->sections[j]->name) == 0)
				clash = true;
		if (clash) {
			log_warnx("%s: skipped: an article and a section share "
			          "this name; the section wins",
			    a->path);
			L->nskipped++;
			sec->plain = false;
			if (!push(&L->dropped, &L->ndropped, a)) {
				node_release(a);
				return false;
			}
			continue;
		}
		s->articles[keep++] = a;
	}
	s->narticles = keep;
	for (size_t i = 0; i < s->narticles; i++)
		if (s->articles[i]->title == NULL)
			return false;
	/* Before the sorts below: by name, as listed. */
	if (!by_name(s))
		return false;
	/* qsort's base may not be NULL, even for no elements. */
	if (s->nsections > 1)
		qsort(s->sections, s->nsections, sizeof(*s->sections),
		    cmp_section);
	if (!sort_articles(L, s))
		return false;
	check_locations(L, r);
	return true;
}

/* The counts of a section's subtree, its subsections' being done. */
static void
finish_sum(struct node *sec)
{
	struct section *s = sec->sec;

	s->subsections = 1;
	s->subarticles = s->narticles;
	for (size_t i = 0; i < s->nsections; i++) {
		const struct node *c = s->sections[i];

		sec->plain = sec->plain && c->plain;
		s->subsections += c->sec->subsections;
		s->subarticles += c->sec->subarticles;
	}
}

/*
 * Sorts and checks a section this load made, its subsections first (a
 * subsection taken whole is done), then renders it.  r: the way to it.
 */
static bool
finish(struct loader *L, struct route *r)
{
	struct node *sec = (struct node *)r->at[r->n - 1];
	struct section *s = sec->sec;

	for (size_t i = 0; i < s->nsections; i++) {
		struct node *c = s->sections[i];

		if (made_now(L, c)) {
			r->at[r->n++] = c;
			if (!finish(L, r))
				return false;
			r->n--;
		}
	}
	if (!finish_own(L, r))
		return false;
	finish_sum(sec);
	return render_section(L, r);
}

/*
 * A start-up load's sections finished by threads (finish's work, in
 * three passes): each section's own part, any order; the counts, the
 * subsections first; the pages, any order.  Only for a load without an
 * old snapshot: a reload's section shares its old pages according to
 * its subsections' (section_same), so it renders them first.
 */
struct finisher {
	struct loader L; /* the load's, with a page and keys of its own */
	struct route *v;
	size_t n;
	atomic_size_t *next;
	bool render;
	bool failed;
};

static bool
gather_routes(const struct loader *L, struct route *r, struct route **v,
    size_t *n, size_t *cap)
{
	const struct node *sec = r->at[r->n - 1];

	for (size_t i = 0; i < sec->sec->nsections; i++) {
		struct node *c = sec->sec->sections[i];

		if (made_now(L, c)) {
			r->at[r->n++] = c;
			if (!gather_routes(L, r, v, n, cap))
				return false;
			r->n--;
		}
	}
	if (*n == *cap) {
		size_t nc = *cap ? 2 * *cap : 64;
		struct route *p = reallocarray(*v, nc, sizeof(*p));

		if (p == NULL)
			return false;
		*v = p;
		*cap = nc;
	}
	(*v)[(*n)++] = *r;
	return true;
}

static void *
finisher_main(void *arg)
{
	struct finisher *F = arg;
	size_t i;

	while (!F->failed && (i = atomic_fetch_add(F->next, 1)) < F->n)
		if (F->render ? !render_section(&F->L, &F->v[i])
		              : !finish_own(&F->L, &F->v[i]))
			F->failed = true;
	return NULL;
}

static bool
finish_pass(struct loader *L, struct route *v, size_t n, bool render)
{
	pthread_t t[PARSE_THREADS_MAX];
	struct finisher F[PARSE_THREADS_MAX];
	atomic_size_t next;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	size_t want = ncpu > PARSE_THREADS_MAX ? PARSE_THREADS_MAX
	    : ncpu > 1                         ? (size_t)ncpu
	                                       : 1,
	       nt = 0;
	bool ok = true;

	atomic_init(&next, 0);
	for (size_t i = 0; i < want; i++) {
		F[i].L = *L;
		buf_init(&F[i].L.page);
		F[i].L.keys = NULL;
		F[i].L.capkeys = 0;
		F[i].L.nskipped = F[i].L.nwarnings = 0;
		F[i].L.dropped = NULL;
		F[i].L.ndropped = 0;
		F[i].v = v;
		F[i].n = n;
		F[i].next = &next;
		F[i].render = render;
		F[i].failed = false;
	}
	/* F[0] is this thread's. */
	for (; nt + 1 < want; nt++)
		if (thread_start(&t[nt], finisher_main, &F[nt + 1]) != 0)
			break;
	finisher_main(&F[0]);
	for (size_t i = 0; i < nt; i++)
		pthread_join(t[i], NULL);
	for (size_t i = 0; i <= nt; i++) {
		ok = ok && !F[i].failed;
		L->nskipped += F[i].L.nskipped;
		L->nwarnings += F[i].L.nwarnings;
		for (size_t k = 0; k < F[i].L.ndropped; k++)
			if (!push(
			        &L->dropped, &L->ndropped, F[i].L.dropped[k])) {
				node_release(F[i].L.dropped[k]);
				ok = false;
			}
		free(F[i].L.dropped);
		buf_free(&F[i].L.page);
		free(F[i].L.keys);
	}
	return ok;
}

static bool
finish_all(struct loader *L, struct route *r)
{
	struct route *v = NULL;
	size_t n = 0, cap = 0;
	bool ok;

	if (L->old != NULL || L->njobs < PARSE_THREADS_MIN_JOBS)
		return finish(L, r);
	ok = gather_routes(L, r, &v, &n, &cap) && finish_pass(L, v, n, false);
	/* In the order gathered: each section after its subsections. */
	for (size_t i = 0; i < n && ok; i++)
		finish_sum((struct node *)v[i].at[v[i].n - 1]);
	ok = ok && finish_pass(L, v, n, true);
	free(v);
	return ok;
}

static int
cmp_path(const void *a, const void *b)
{
	return strcmp(
	    (*(struct node *const *)a)->path, (*(struct node *const *)b)->path);
}

/*
 * Oldest first over the whole archive: the reverse of newest first with
 * the path settling ties.
 */
static int
cmp_age(const void *a, const void *b)
{
	int c = cmp_article(b, a);

	return c ? c : cmp_path(b, a);
}

/*
 * Loads in order, over every archive: a snapshot older than the one its
 * store last synced is not synced.  Without a store (unit tests,
 * fuzzers, -n), each snapshot builds an index of its own in memory.
 */
static atomic_ullong load_seq;

void
archive_store_init(struct archive_store *st, struct search *se)
{
	st->se = se;
	st->pack = NULL;
	st->tree_fd[0] = st->tree_fd[1] = st->tree_used = -1;
	st->tree_path[0] = st->tree_path[1] = NULL;
	st->exe_sum = 0;
	pthread_mutex_init(&st->lock, NULL);
	st->synced_seq = 0;
}

void
archive_store_close(struct archive_store *st)
{
	for (int k = 0; k < 2; k++) {
		if (st->tree_fd[k] != -1)
			close(st->tree_fd[k]);
		free(st->tree_path[k]);
		st->tree_fd[k] = -1;
		st->tree_path[k] = NULL;
	}
	st->tree_used = -1;
}

static struct search_stamp
search_stamp(const struct node *n)
{
	struct search_stamp fs = {n->stamp.dev, n->stamp.ino, n->stamp.size,
	    n->stamp.mtime_ns, n->stamp.ctime_ns};

	return fs;
}

static int
index_doc(struct search *se, const struct node *n)
{
	struct search_stamp fs = search_stamp(n);
	long long id;

	return search_doc(se, n->path, &fs, n->date != NULL, n->when, n->title,
	    n->art->paras, n->art->npara, &id);
}

/* Every article of the subtree, in v (room for sec's subarticles). */
static void
gather(const struct node *sec, const struct node **v, size_t *k)
{
	const struct section *s = sec->sec;

	for (size_t i = 0; i < s->narticles; i++)
		v[(*k)++] = s->articles[i];
	for (size_t i = 0; i < s->nsections; i++)
		gather(s->sections[i], v, k);
}

/*
 * Siblings in the order of their paths: a section's ("/news/") is its
 * name and a '/', an article's ("/news/slug") its name, so "a" (an
 * article) comes before "a-b", which comes before the section "a".
 */
static int
cmp_child(const void *a, const void *b)
{
	const struct node *x = *(struct node *const *)a;
	const struct node *y = *(struct node *const *)b;
	const unsigned char *p = (const unsigned char *)x->name;
	const unsigned char *q = (const unsigned char *)y->name;
	int c, d;

	while (*p != '\0' && *p == *q) {
		p++;
		q++;
	}
	c = *p != '\0' ? *p : x->kind == NODE_SECTION ? '/' : 0;
	d = *q != '\0' ? *q : y->kind == NODE_SECTION ? '/' : 0;
	return c - d;
}

/*
 * Every article of the subtree in strcmp order of path, into v: each
 * section's children sorted (a few thousand short names), not the whole
 * archive's paths at once.  -1 when out of memory.
 */
static int
gather_by_path(const struct node *sec, const struct node **v, size_t *k)
{
	const struct section *s = sec->sec;
	size_t n = s->nsections + s->narticles;
	const struct node **c;
	int rv = 0;

	if (n == 0)
		return 0;
	if ((c = reallocarray(NULL, n, sizeof(*c))) == NULL)
		return -1;
	memcpy(c, s->byname, n * sizeof(*c));
	qsort(c, n, sizeof(*c), cmp_child);
	for (size_t i = 0; i < n && rv == 0; i++)
		if (c[i]->kind == NODE_ARTICLE)
			v[(*k)++] = c[i];
		else
			rv = gather_by_path(c[i], v, k);
	free(c);
	return rv;
}

/* The articles of the snapshot in path order, as search_begin asks. */
static void
sort_by_path(const struct snapshot *s, const struct node **v, size_t k)
{
	size_t n = 0, i = 1;

	if (gather_by_path(s->root, v, &n) == 0 && n == k)
		for (; i < k && strcmp(v[i - 1]->path, v[i]->path) < 0; i++)
			;
	/* Never expected (out of memory, or a bug): all paths at once. */
	if (n != k || i < k) {
		if (n == k)
			log_warnx("search index: %s before %s: sorting whole",
			    v[i - 1]->path, v[i]->path);
		n = 0;
		gather(s->root, v, &n);
		qsort(v, k, sizeof(*v), cmp_path);
	}
}

/* Whether the index holds the articles of v, as their digest tells. */
static bool
holds(struct search *se, const struct node **v, size_t k)
{
	struct search_digest d = {0, 0}, in;

	/* The count first: a tree that grew or shrank is not hashed. */
	if (search_digest(se, &in) == -1 || in.count != k)
		return false;
	for (size_t i = 0; i < k; i++) {
		struct search_stamp fs = search_stamp(v[i]);

		search_digest_add(&d, v[i]->path, &fs);
	}
	return d.sum == in.sum;
}

/*
 * Every article named to the index: none when the index's digest says
 * it holds them already (*reused; no transaction, no row read), in path
 * order when it holds others (compared row by row), from the oldest to
 * the newest when it is empty (the order a new index numbers fastest).
 * The start's sync, and the one after a sync was missed.
 */
static int
sync_all(struct snapshot *s, struct search *se, bool *reused)
{
	const struct node **v;
	size_t k = 0;
	bool by_path;
	int rv = 0;

	if ((v = reallocarray(
	         NULL, s->narticles ? s->narticles : 1, sizeof(*v))) == NULL)
		return -1;
	gather(s->root, v, &k);
	if ((*reused = holds(se, v, k))) {
		free(v);
		return 0;
	}
	if (search_begin(se, &by_path) == -1)
		rv = -1;
	else if (k > 1 && by_path)
		sort_by_path(s, v, k);
	else if (k > 1)
		qsort(v, k, sizeof(*v), cmp_age);
	for (size_t i = 0; i < k && rv == 0; i++)
		if (atomic_load_explicit(
		        &s->stop_index, memory_order_relaxed) ||
		    index_doc(se, v[i]) == -1)
			rv = -1;
	free(v);
	return rv;
}

/* A subtree's articles, all indexed (add) or all gone (!add). */
static int
sync_subtree(struct search *se, const struct node *n, bool add)
{
	const struct section *s;

	if (n->kind == NODE_ARTICLE)
		return add ? index_doc(se, n) : search_forget(se, n->path);
	s = n->sec;
	for (size_t i = 0; i < s->nsections + s->narticles; i++)
		if (sync_subtree(se, s->byname[i], add) == -1)
			return -1;
	return 0;
}

/*
 * What differs between a section and the old one at its path, found by
 * walking their names side by side: a node the two share is unchanged
 * (a section with its subtree), so a publish walks the sections on its
 * way to the root and names its own articles, not the archive's.
 */
static int
sync_diff(struct search *se, const struct node *n, const struct node *o)
{
	const struct section *s = n->sec, *os = o->sec;
	size_t i = 0, j = 0, ni = s->nsections + s->narticles,
	       nj = os->nsections + os->narticles;

	while (i < ni || j < nj) {
		const struct node *x = i < ni ? s->byname[i] : NULL;
		const struct node *y = j < nj ? os->byname[j] : NULL;
		int c = x == NULL ? 1
		    : y == NULL   ? -1
		                  : strcmp(x->name, y->name);
		int rv = 0;

		if (c < 0)
			rv = sync_subtree(se, x, true);
		else if (c > 0)
			rv = sync_subtree(se, y, false);
		else if (x == y)
			rv = 0;
		else if (x->kind != y->kind)
			rv = sync_subtree(se, y, false) == -1
			    ? -1
			    : sync_subtree(se, x, true);
		else if (x->kind == NODE_SECTION)
			rv = sync_diff(se, x, y);
		else
			rv = index_doc(se, x);
		if (rv == -1)
			return -1;
		i += c <= 0;
		j += c >= 0;
	}
	return 0;
}

/*
 * A failed index costs search only, not the archive.  old: the snapshot
 * this one replaces; when the store was last synced with it, only the
 * difference between the two goes to the index.
 */
static struct search *
build_search(struct snapshot *s, const struct snapshot *old)
{
	struct archive_store *store = s->opts.store;
	struct search *se = store != NULL ? store->se : NULL;
	struct search_stats st;
	struct timespec t0;
	const char *why;
	bool own = se == NULL, damaged, reused = false;
	int rv;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (own && (se = search_open(NULL, &why, &damaged)) == NULL) {
		s->index_failed = "no index database";
		return NULL;
	}
	if (!own) {
		pthread_mutex_lock(&store->lock);
		if (s->seq < store->synced_seq) {
			pthread_mutex_unlock(&store->lock);
			log_info("search index: a newer archive is indexed");
			goto fail;
		}
	}
	if (!own && old != NULL && store->synced_seq == old->seq)
		rv = search_begin_delta(se) == -1
		    ? -1
		    : sync_diff(se, s->root, old->root);
	else
		rv = sync_all(s, se, &reused);
	memset(&st, 0, sizeof(st));
	st.kept = s->narticles;
	if (rv == -1 || (!reused && search_commit(se, &st) == -1)) {
		search_rollback(se);
		if (!own)
			pthread_mutex_unlock(&store->lock);
		if (!atomic_load(&s->stop_index))
			s->index_failed = "the index could not be updated";
		goto fail;
	}
	if (!own) {
		store->synced_seq = s->seq;
		pthread_mutex_unlock(&store->lock);
	}
	s->own_search = own;
	s->index_ms = (unsigned long)ms_since(&t0);
	s->index_built = st.built;
	s->index_reused = reused;
	s->index_added = st.added;
	s->index_changed = st.changed;
	s->index_removed = st.removed;
	s->index_kept = st.kept;
	return se;
fail:
	if (own)
		search_free(se);
	return NULL;
}

/*
 * Said once the index is published, or once it is known there will be
 * none: a reader of the log who then searches must find it ready, or
 * told it is disabled rather than "being built".
 */
void
archive_log_index(const struct snapshot *s)
{
	if (archive_search(s) == NULL) {
		if (s->index_failed != NULL)
			log_warnx("search disabled: %s", s->index_failed);
		return;
	}
	if (s->index_built)
		log_info("search index: %zu articles in %lu ms (built)",
		    s->narticles, s->index_ms);
	else if (s->index_reused)
		log_info("search index: %zu articles in %lu ms (reused: digest "
		         "matched)",
		    s->narticles, s->index_ms);
	else if (s->index_added + s->index_changed + s->index_removed == 0)
		log_info("search index: %zu articles in %lu ms (reused: "
		         "nothing changed)",
		    s->narticles, s->index_ms);
	else
		log_info("search index: %zu articles in %lu ms (updated: %zu "
		         "added, %zu changed, %zu removed)",
		    s->narticles, s->index_ms, s->index_added, s->index_changed,
		    s->index_removed);
}

static void *
indexer_main(void *arg)
{
	struct snapshot *s = arg;
	struct search *se = build_search(s, NULL);

	/* What the sync allocated (its article list, SQLite's) is freed. */
	heap_trim();
	atomic_store_explicit(&s->search, se, memory_order_release);
	atomic_store_explicit(&s->indexing, false, memory_order_release);
	archive_log_index(s);
	return NULL;
}

int
archive_index_start(struct snapshot *s)
{
	atomic_store(&s->indexing, true);
	if (thread_start(&s->indexer, indexer_main, s) != 0) {
		atomic_store(&s->indexing, false);
		log_warnx("search disabled: cannot start the indexing thread");
		return -1;
	}
	s->has_indexer = true;
	return 0;
}

struct search *
archive_search(const struct snapshot *s)
{
	return atomic_load_explicit(&s->search, memory_order_acquire);
}

void
archive_set_pack(int fd)
{
	pack_fd = fd;
}

/*
 * Points t's strings at their copy at where: each field keeps its offset
 * into the text.  The paragraph pointers get a block of their own, the
 * only part of an article left in private memory.
 */
static bool
rebase(struct text *t, char *where, bool own)
{
	struct article *a = &t->art;
	char *old = (char *)(void *)a->paras,
	     *text = old + (a->npara + 1) * sizeof(char *);
	char **fields[ARTICLE_NFIELDS];
	char **paras;

	article_fields(a, fields);
	if ((paras = reallocarray(NULL, a->npara + 1, sizeof(*paras))) == NULL)
		return false;
	for (size_t i = 0; i < a->npara; i++)
		paras[i] = where + (a->paras[i] - text);
	paras[a->npara] = NULL;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (*fields[i] != NULL)
			*fields[i] = where + (*fields[i] - text);
	a->paras = paras;
	t->keep_paras = false;
	/* A slab's block goes with its slab. */
	if (own)
		free(old);
	return true;
}

/*
 * The texts this load parsed, appended to the pack as one segment and
 * mapped; on any failure (no pack, a full disk, too many mappings) they
 * stay where they are, in private memory, and are served the same.
 */
static void
pack_fresh(struct loader *L)
{
	static bool warned;
	off_t page = page_size();
	size_t total = 0, pos = 0, fill = 0;
	struct segment *g;
	struct stat st;
	char *chunk, *addr;
	off_t off;

	for (size_t i = 0; i < L->nfresh; i++)
		total += L->fresh[i]->art.textlen;
	if (total == 0 || atomic_load(&pack_segments) >= PACK_MAX_SEGMENTS ||
	    fstat(pack_fd, &st) == -1 ||
	    (chunk = malloc(PACK_WRITE_CHUNK)) == NULL)
		return;
	/* Appended, from a page boundary, as mmap wants its offset. */
	off = (st.st_size + page - 1) / page * page;
	for (size_t i = 0; i < L->nfresh; i++) {
		const struct article *a = &L->fresh[i]->art;
		const char *text = (const char *)(void *)a->paras +
		    (a->npara + 1) * sizeof(char *);

		/* Texts are gathered into chunks... */
		if (fill + a->textlen > PACK_WRITE_CHUNK) {
			if (!pwrite_all(pack_fd, chunk, fill, off + (off_t)pos))
				goto fail;
			pos += fill;
			fill = 0;
		}
		/* ...but one larger (up to ARTICLE_MAX_BYTES) goes alone. */
		if (a->textlen > PACK_WRITE_CHUNK) {
			if (!pwrite_all(
			        pack_fd, text, a->textlen, off + (off_t)pos))
				goto fail;
			pos += a->textlen;
			continue;
		}
		memcpy(chunk + fill, text, a->textlen);
		fill += a->textlen;
	}
	if (!pwrite_all(pack_fd, chunk, fill, off + (off_t)pos))
		goto fail;
	free(chunk);
	chunk = NULL;
	if ((addr = mmap(NULL, total, PROT_READ, MAP_SHARED, pack_fd, off)) ==
	    MAP_FAILED)
		goto fail;
	if ((g = malloc(sizeof(*g))) == NULL) {
		munmap(addr, total);
		goto fail;
	}
	atomic_init(&g->refs, 1); /* this function's, until the end */
	g->addr = addr;
	g->len = total;
	g->off = off;
	g->punch = true;
	atomic_fetch_add(&pack_segments, 1);
	pos = 0;
	for (size_t i = 0; i < L->nfresh; i++) {
		struct text *t = L->fresh[i];
		size_t len = t->art.textlen;

		if (rebase(t, addr + pos, !L->slabbed)) {
			atomic_fetch_add(&g->refs, 1);
			t->seg = g;
		}
		pos += len;
	}
	segment_release(g);
	return;
fail:
	free(chunk);
	if (!warned) {
		warned = true;
		log_warn("article pack: texts kept in memory instead");
	}
}

/* A whole file of the persistent pack, mapped: fd's from offset 0. */
static struct segment *
segment_map(int fd, char *addr, size_t len)
{
	struct segment *g;
	struct stat st;

	if (addr == NULL) {
		if (fstat(fd, &st) == -1 || st.st_size <= 0 ||
		    (uint64_t)st.st_size > SIZE_MAX)
			return NULL;
		len = (size_t)st.st_size;
		addr = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
		if (addr == MAP_FAILED)
			return NULL;
	}
	if ((g = malloc(sizeof(*g))) == NULL) {
		munmap(addr, len);
		return NULL;
	}
	atomic_init(&g->refs, 1);
	g->addr = addr;
	g->len = len;
	g->off = 0;
	g->punch = false;
	atomic_fetch_add(&pack_segments, 1);
	return g;
}

/*
 * Once the threads that wrote the pack are done: the file mapped whole,
 * and the texts they wrote pointed into the mapping.  false: it could
 * not be mapped, or a text is not inside it.
 */
static bool
pack_map(struct loader *L)
{
	struct segment *g;

	if ((g = segment_map(L->wfd, NULL, 0)) == NULL)
		return false;
	for (size_t i = 0; i < L->njobs; i++) {
		const struct job *j = &L->jobs[i];

		if (j->packed &&
		    (j->off > g->len ||
		        j->shared->art.textlen > g->len - j->off)) {
			segment_release(g);
			return false;
		}
	}
	for (size_t i = 0; i < L->njobs; i++) {
		struct job *j = &L->jobs[i];
		struct article *a;
		char **fields[ARTICLE_NFIELDS];

		if (!j->packed)
			continue;
		a = &j->shared->art;
		article_fields(a, fields);
		for (size_t k = 0; k < a->npara; k++)
			a->paras[k] = g->addr + (uintptr_t)a->paras[k];
		for (size_t k = 0; k < sizeof(fields) / sizeof(fields[0]); k++)
			if (*fields[k] != NULL)
				*fields[k] = g->addr + (uintptr_t)*fields[k];
		atomic_fetch_add(&g->refs, 1);
		j->shared->seg = g;
	}
	L->wseg = g;
	/*
	 * What the chunks left unfilled (the end of each) is room, not
	 * texts gone: no reason to compact the pack.
	 */
	if (g->len > L->wfrom + atomic_load(&L->wrote))
		L->cache->holes = g->len - L->wfrom - atomic_load(&L->wrote);
	return true;
}

/*
 * The threads' writes to the pack failed, or it could not be mapped:
 * what they parsed is dropped (its strings are only offsets) and read
 * again, into memory, as without a pack.
 */
static void
pack_undo(struct loader *L)
{
	log_warnx("%s: the texts read could not be written to it; "
	          "reading the files again",
	    L->cache->path);
	for (size_t i = 0; i < L->njobs; i++) {
		struct job *j = &L->jobs[i];

		if (!j->packed)
			continue;
		text_release(j->shared);
		node_release(j->node);
		j->shared = NULL;
		j->node = NULL;
		j->parsed = j->fresh = j->packed = false;
	}
	L->wfd = -1;
	parse_jobs(L);
}

/*
 * Points t's strings, now at from, at their copy at to in g.  A text
 * still in its parsed block gets its paragraph pointers a block of their
 * own (as rebase); one already mapped keeps its.  own: the parsed block
 * is the text's to free, not a slab's.
 */
static void
move_text(
    struct text *t, const char *from, char *to, struct segment *g, bool own)
{
	struct article *a = &t->art;
	char **fields[ARTICLE_NFIELDS];
	char **paras = a->paras;

	article_fields(a, fields);
	if (t->seg == NULL &&
	    (paras = reallocarray(NULL, a->npara + 1, sizeof(*paras))) == NULL)
		return;
	for (size_t i = 0; i < a->npara; i++)
		paras[i] = to + (a->paras[i] - from);
	paras[a->npara] = NULL;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (*fields[i] != NULL)
			*fields[i] = to + (*fields[i] - from);
	if (t->seg != NULL)
		segment_release(t->seg);
	else {
		if (own)
			free(a->paras);
		t->keep_paras = false;
	}
	a->paras = paras;
	atomic_fetch_add(&g->refs, 1);
	t->seg = g;
}

/*
 * The start-up load's texts into the persistent pack: those read from
 * their files appended (or the whole pack compacted), a catalog of all
 * written, and every text then pointed into one mapping of the file.
 * Nothing is written when every text came from the catalog and it names
 * no other file.  false: the fresh texts are where they were.
 */
/*
 * The catalog's items, one per text, in the walk's order (tv: the texts,
 * or NULL).  Their paths in paths (NULL: the pool), room for every job's
 * path (path_room).  The number made, or SIZE_MAX when out of memory.
 */
static size_t
make_items(struct loader *L, struct pack_item *v, struct text **tv, char *paths)
{
	char path[PATH_MAX];
	size_t n = 0;

	for (size_t i = 0; i < L->njobs; i++) {
		struct job *j = &L->jobs[i];
		struct article *a;
		size_t len;

		if (!j->parsed || j->shared == NULL)
			continue;
		if (tv != NULL)
			tv[n] = j->shared;
		a = &j->shared->art;
		job_path(j, path, sizeof(path));
		len = strlen(path);
		if (paths != NULL) {
			memcpy(paths, path, len + 1);
			v[n].path = paths;
			paths += len + 1;
		} else if ((v[n].path = pool_strndup(L, path, len)) == NULL)
			return SIZE_MAX;
		v[n].stamp = j->stamp;
		v[n].art = a;
		if (j->cached || j->packed) {
			v[n].text =
			    (j->cached ? L->cache_seg : L->wseg)->addr + j->off;
			v[n].off = j->off;
			v[n].sum = j->sum;
		} else {
			v[n].text = (const char *)(void *)a->paras +
			    (a->npara + 1) * sizeof(char *);
			v[n].off = PACK_NONE;
			v[n].sum = 0;
		}
		n++;
	}
	return n;
}

/* Bytes every job's path takes, each with its NUL, at most. */
static size_t
path_room(const struct loader *L)
{
	size_t room = 0;

	for (size_t i = 0; i < L->njobs; i++)
		room += strlen(L->jobs[i].dir) + strlen(L->jobs[i].fname) + 2;
	return room;
}

static void
commit_free(struct commit *c)
{
	free(c->items);
	free(c->paths);
	free(c);
}

static void *
commit_main(void *arg)
{
	struct commit *c = arg;
	struct loader *L = c->L;
	size_t n;

	c->rv = -1;
	if ((c->items = reallocarray(NULL, L->njobs + 1, sizeof(*c->items))) !=
	        NULL &&
	    (c->paths = malloc(path_room(L) + 1)) != NULL &&
	    (n = make_items(L, c->items, NULL, c->paths)) != SIZE_MAX)
		c->rv = pack_commit(L->cache, c->items, n, L->started_ns);
	return NULL;
}

static bool
persist(struct loader *L)
{
	struct pack_item *v;
	struct text **tv;
	struct segment *g;
	size_t n = 0, nfresh = 0;
	uint64_t live = 0;
	int fd = L->cache->fd;
	bool move = false;

	/*
	 * Nothing to write when every text came from the catalog and it
	 * names no other file: known before the items are made (at a
	 * million, 80 MB of them and 60 MB of paths, all for nothing).
	 */
	for (size_t i = 0; i < L->njobs; i++) {
		const struct job *j = &L->jobs[i];

		if (j->parsed && j->shared != NULL) {
			n++;
			nfresh += !j->cached;
			move = move || (!j->cached && !j->packed);
			live += j->shared->art.textlen;
		}
	}
	if (nfresh == 0 && L->cache_seg != NULL && n == L->cache->nrecs)
		return true;
	/*
	 * Every text in the file already, and to stay where it is: only the
	 * catalog is written, by a thread of its own (load_end joins it).
	 */
	if (!move && !pack_compacts(L->cache, live, 0)) {
		struct commit *c;
		int rv;

		if ((c = calloc(1, sizeof(*c))) == NULL)
			return false;
		c->L = L;
		if (thread_start(&c->t, commit_main, c) == 0) {
			L->commit = c;
			return true;
		}
		commit_main(c);
		rv = c->rv;
		commit_free(c);
		if (rv == -1)
			L->cache->saved_nrecs = 0;
		return rv == 0;
	}
	v = reallocarray(NULL, L->njobs + 1, sizeof(*v));
	tv = reallocarray(NULL, L->njobs + 1, sizeof(*tv));
	if (v == NULL || tv == NULL ||
	    (n = make_items(L, v, tv, NULL)) == SIZE_MAX) {
		free(v);
		free(tv);
		return false;
	}
	if (pack_commit(L->cache, v, n, L->started_ns) == -1) {
		/* Texts the threads wrote are in it, but in no catalog. */
		L->cache->saved_nrecs = 0;
		free(v);
		free(tv);
		return false;
	}
	/*
	 * Every text already in the file, where it was: the mappings that
	 * hold them stay as they are.  Else (some appended, or the file
	 * compacted into a new one) all move to one mapping of it.
	 */
	if ((!move && L->cache->fd == fd) ||
	    (g = segment_map(L->cache->fd, NULL, 0)) == NULL) {
		free(v);
		free(tv);
		return !move && L->cache->fd == fd;
	}
	for (size_t i = 0; i < n; i++)
		if (v[i].off <= g->len &&
		    tv[i]->art.textlen <= g->len - v[i].off)
			move_text(tv[i], v[i].text, g->addr + v[i].off, g,
			    !L->slabbed);
	segment_release(g);
	free(v);
	free(tv);
	return true;
}

/* What every page shows beyond its own section's subtree. */
static bool
opts_same(const struct archive_opts *a, const struct archive_opts *b)
{
	return same_str(a->hostname, b->hostname) &&
	    a->gopher_port == b->gopher_port &&
	    a->gemini_port == b->gemini_port && a->wrap == b->wrap &&
	    a->menu_width == b->menu_width;
}

/*
 * The saved tree: what a snapshot is beyond its texts (its sections,
 * their orders and rendered pages, each article's slug), written to
 * state_dir at a clean stop beside the article pack whose catalog holds
 * the texts.  A start that finds it, made for this archive, these
 * options and that very catalog, builds the snapshot from it and serves
 * at once, with no walk, no stat and no sort or rendering: at a million
 * articles the walk alone stats a million files.  The tree is then
 * checked against the disk by a full reload (the server's, as SIGHUP
 * makes), which shares everything unchanged, so what changed while serai
 * was down is served a few seconds late, never lost.  Pages are served
 * from the mapping (page cache, not private memory).  The file is
 * untrusted like the pack: every offset and count is checked and every
 * byte hashed before use, and a file that fails is ignored (the start
 * walks the tree).  It is marked used as it is loaded, and marked good
 * again only by a clean stop that finds the snapshot unchanged, so a
 * crash never leaves a stale tree to serve.
 */
#define TREE_FILE "archive.tree"
#define TREE_MAGIC "SERAITR\n"
#define TREE_VERSION 1
#define TREE_ORDER 0x01020304u
#define TREE_HEAD_BYTES 512

struct tree_head {
	char magic[8];
	uint32_t version, order;
	char serai[32];
	uint64_t cat_sum, nrecs; /* the pack's catalog it goes with */
	int64_t started_ns;
	int64_t loaded;
	int64_t saved_ns; /* the later of the two files is loaded */
	uint64_t exe_sum; /* the binary that rendered the pages */
	uint64_t narticles, nsections, nskipped, nwarnings;
	uint64_t st_off, st_len, st_sum; /* the structure, after the pages */
	uint64_t sum;                    /* of the bytes above */
};

_Static_assert(sizeof(struct tree_head) <= TREE_HEAD_BYTES, "tree header");

/* A section's record in the structure, its strings and articles after. */
struct tree_sec {
	uint32_t nsub, nart;
	uint32_t namelen, titlelen, desclen, langlen; /* desclen ~0: none */
	uint64_t subfiles;
	uint64_t page_off[3], page_len[3], page_sum[3];
};

static bool
page_mapped(const struct blob *b)
{
	uint64_t mark;

	memcpy(&mark, b->p - PAGE_HEADER + 8, sizeof(mark));
	return mark == PAGE_MAPPED;
}

/* The options every saved page shows, as one string to compare. */
static void
tree_opts(struct buf *b, const struct archive_opts *o, const char *rootreal)
{
	buf_printf(b, "%s%c%s%c%s%c%s%c%u %u %zu %zu", rootreal, 0,
	    o->hostname ? o->hostname : "", 0, o->title ? o->title : "", 0,
	    o->lang ? o->lang : "", 0, o->gopher_port, o->gemini_port, o->wrap,
	    o->menu_width);
}

static char *
tree_path(const struct pack *p, int k)
{
	const char *slash = strrchr(p->path, '/');
	size_t dl = slash ? (size_t)(slash - p->path) + 1 : 0;
	char *t = malloc(dl + sizeof(TREE_FILE) + 2);

	if (t != NULL) {
		memcpy(t, p->path, dl);
		snprintf(t + dl, sizeof(TREE_FILE) + 2, "%s.%d", TREE_FILE, k);
	}
	return t;
}

/* The running binary's checksum; 0 if it cannot be read. */
static uint64_t
exe_sum(void)
{
	struct buf b;
	char chunk[65536];
	ssize_t n;
	uint64_t sum = 0;
	int fd;

	if ((fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	buf_init(&b);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_add(&b, chunk, (size_t)n);
	if (n == 0 && !buf_failed(&b) && b.len > 0)
		sum = pack_hash(b.p, b.len) | 1;
	close(fd);
	buf_free(&b);
	return sum;
}

/*
 * The two files, opened (made if absent) at the start: a clean stop
 * writes the one not loaded from, as the process may then create no
 * file in state_dir, and a mapped file is not written over.  A symlink,
 * FIFO or device in their place is left alone, and nothing is saved.
 */
static void
tree_files(struct archive_store *st, const struct pack *p)
{
	/*
	 * The saved pages are the renderer's output: any other build (a
	 * fix, an upgrade) renders anew.  Read now, before the sandbox.
	 */
	if (st->exe_sum == 0)
		st->exe_sum = exe_sum();
	for (int k = 0; k < 2; k++) {
		struct stat sb;

		if (st->tree_fd[k] != -1)
			continue;
		if (st->tree_path[k] == NULL &&
		    (st->tree_path[k] = tree_path(p, k)) == NULL)
			return;
		/* A device is not even opened: that may act on it. */
		if (lstat(st->tree_path[k], &sb) == 0 && !S_ISREG(sb.st_mode))
			st->tree_fd[k] = -1;
		else
			st->tree_fd[k] = open(st->tree_path[k],
			    O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK |
			        O_CLOEXEC,
			    0600);
		if (st->tree_fd[k] == -1 || fstat(st->tree_fd[k], &sb) == -1 ||
		    !S_ISREG(sb.st_mode)) {
			log_warnx("%s: not a regular file, or cannot be "
			          "opened; left alone, and the archive is "
			          "not saved for a quick start",
			    st->tree_path[k]);
			/* Neither is used: one file alone cannot alternate. */
			for (int i = 0; i <= k; i++) {
				if (st->tree_fd[i] != -1)
					close(st->tree_fd[i]);
				st->tree_fd[i] = -1;
			}
			return;
		}
	}
}

/* Writes what save_sec gathered; pages go straight to the file. */
struct tree_writer {
	int fd;
	uint64_t off; /* where the next page goes */
	struct buf st;
	bool failed;
};

/* The articles of n's subtree whose text is not in the pack's catalog. */
static size_t
unpacked(const struct node *n)
{
	const struct section *s = n->sec;
	size_t k = 0;

	for (size_t i = 0; i < s->narticles; i++) {
		const struct text *t = text_of(s->articles[i]);

		k += t->seg == NULL || t->seg->punch;
	}
	for (size_t i = 0; i < s->nsections; i++)
		k += unpacked(s->sections[i]);
	return k;
}

static void
put32(struct buf *b, uint32_t v)
{
	buf_add(b, &v, sizeof(v));
}

static void
save_page(
    struct tree_writer *w, const struct blob *pg, struct tree_sec *ts, int k)
{
	char head[PAGE_HEADER] = {0};
	uint64_t mark = PAGE_MAPPED;

	memcpy(head + 8, &mark, sizeof(mark));
	w->off = (w->off + PAGE_HEADER - 1) / PAGE_HEADER * PAGE_HEADER;
	ts->page_off[k] = w->off;
	ts->page_len[k] = pg->len;
	ts->page_sum[k] = pack_hash(pg->p, pg->len);
	if (!w->failed &&
	    (!pwrite_all(w->fd, head, sizeof(head), (long long)w->off) ||
	        !pwrite_all(w->fd, pg->p, pg->len + 1,
	            (long long)w->off + PAGE_HEADER)))
		w->failed = true;
	w->off += PAGE_HEADER + pg->len + 1;
}

static void
put_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

/* Index of node a in v (by name), which holds it. */
static uint32_t
name_index(struct node *const *v, size_t n, const struct node *a)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(v[mid]->name, a->name);

		if (c == 0)
			return (uint32_t)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return UINT32_MAX;
}

static void
save_sec(struct tree_writer *w, const struct node *n)
{
	const struct section *s = n->sec;
	struct tree_sec ts;
	const struct blob *pages[3] = {&s->gemini, &s->gopher, &s->feed};
	struct node **an = NULL;
	size_t k = 0;

	memset(&ts, 0, sizeof(ts));
	ts.nsub = (uint32_t)s->nsections;
	ts.nart = (uint32_t)s->narticles;
	ts.namelen = (uint32_t)strlen(n->name);
	ts.titlelen = (uint32_t)strlen(n->title);
	ts.desclen =
	    s->description ? (uint32_t)strlen(s->description) : UINT32_MAX;
	ts.langlen = (uint32_t)strlen(n->lang);
	ts.subfiles = s->subfiles;
	for (int i = 0; i < 3; i++)
		save_page(w, pages[i], &ts, i);
	if (s->narticles > 0 &&
	    (an = reallocarray(NULL, s->narticles, sizeof(*an))) == NULL) {
		w->failed = true;
		return;
	}
	buf_add(&w->st, &ts, sizeof(ts));
	put_str(&w->st, n->name);
	put_str(&w->st, n->title);
	if (s->description)
		put_str(&w->st, s->description);
	put_str(&w->st, n->lang);
	/* The slugs by name (byname less the sections), then the order. */
	for (size_t i = 0; i < s->nsections + s->narticles; i++) {
		const struct node *a = s->byname[i];
		uint16_t len;

		if (a->kind != NODE_ARTICLE || k == s->narticles)
			continue;
		len = (uint16_t)strlen(a->name);
		buf_add(&w->st, &len, sizeof(len));
		put_str(&w->st, a->name);
		an[k++] = (struct node *)a;
	}
	if (k != s->narticles)
		w->failed = true;
	for (size_t i = 0; i < s->narticles && !w->failed; i++)
		put32(&w->st, name_index(an, k, s->articles[i]));
	free(an);
	for (size_t i = 0; i < s->nsections && !w->failed; i++)
		save_sec(w, s->sections[i]);
}

/*
 * At a clean stop (o: the archive's options now): the snapshot's tree to
 * state_dir.  Written only when every article's text is in the pack's
 * catalog (the start-up load packs what it read; a reload's texts are
 * not packed), else the next start walks the archive and packs them.
 * Nothing is rewritten when the snapshot is the saved one, unchanged.
 */
int
archive_save(const struct snapshot *s, const struct archive_opts *o)
{
	struct archive_store *store = s->opts.store;
	struct pack *p = store != NULL ? store->pack : NULL;
	struct tree_writer w;
	struct tree_head h;
	struct timespec now;
	struct buf ob;
	const char *path;
	size_t notpacked;
	int k;

	if (!o->quick_start || p == NULL || p->fd == -1 ||
	    p->saved_nrecs == 0 || store->exe_sum == 0)
		return 0;
	if (s->tree_current && (k = store->tree_used) != -1) {
		if (pwrite_all(store->tree_fd[k], TREE_MAGIC, 8, 0))
			return 0;
		log_warn("%s", store->tree_path[k]);
		return -1;
	}
	/* The file not mapped: its pages may be this snapshot's. */
	k = store->tree_used == 0 ? 1 : 0;
	if (store->tree_fd[k] == -1)
		return 0;
	path = store->tree_path[k];
	/* Emptied either way: an older tree in it must not be loaded. */
	if (ftruncate(store->tree_fd[k], 0) == -1) {
		log_warn("%s", path);
		return -1;
	}
	/* Known before anything is written: some 230 MB at a million. */
	if ((notpacked = unpacked(s->root)) > 0) {
		log_info("%s: not saved: %zu articles are not in the article "
		         "pack yet (the next start reads the archive)",
		    path, notpacked);
		return 0;
	}
	memset(&w, 0, sizeof(w));
	buf_init(&w.st);
	w.fd = store->tree_fd[k];
	w.off = TREE_HEAD_BYTES;
	buf_init(&ob);
	tree_opts(&ob, o, p->root);
	put32(&w.st, (uint32_t)ob.len);
	buf_add(&w.st, ob.p, ob.len);
	w.failed = buf_failed(&ob);
	buf_free(&ob);
	put32(&w.st, s->robots.p ? (uint32_t)s->robots.len : UINT32_MAX);
	if (s->robots.p)
		buf_add(&w.st, s->robots.p, s->robots.len);
	save_sec(&w, s->root);
	clock_gettime(CLOCK_REALTIME, &now);
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, TREE_MAGIC, sizeof(h.magic));
	h.version = TREE_VERSION;
	h.order = TREE_ORDER;
	strncpy(h.serai, SERAI_VERSION, sizeof(h.serai));
	h.cat_sum = p->cat_sum;
	h.nrecs = p->saved_nrecs;
	h.started_ns = s->started_ns;
	h.loaded = (int64_t)s->loaded;
	h.saved_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
	h.exe_sum = store->exe_sum;
	h.narticles = s->narticles;
	h.nsections = s->nsections;
	h.nskipped = s->nskipped;
	h.nwarnings = s->nwarnings;
	h.st_off = (w.off + 7) / 8 * 8;
	h.st_len = w.st.len;
	if (!buf_failed(&w.st))
		h.st_sum = pack_hash(w.st.p, w.st.len);
	h.sum = pack_hash(&h, offsetof(struct tree_head, sum));
	/*
	 * The header last, and no sync: what a crash cuts short fails its
	 * checksums at the next start, which then walks the archive.
	 */
	if (w.failed || buf_failed(&w.st) ||
	    !pwrite_all(w.fd, w.st.p, w.st.len, (long long)h.st_off) ||
	    !pwrite_all(w.fd, &h, sizeof(h), 0)) {
		log_warn("%s: not saved", path);
		(void)ftruncate(w.fd, 0);
		buf_free(&w.st);
		return -1;
	}
	/* The other file, if it holds a tree, is older: never loaded. */
	log_info("%s: saved (%zu articles in %zu sections)", path, s->narticles,
	    s->nsections);
	buf_free(&w.st);
	return 0;
}

/* An article of the saved tree, its node made by a loading thread. */
struct tree_job {
	struct node *sec;
	const char *slug; /* in the mapping, not NUL-terminated */
	size_t len;
	struct node **slot;
};

/* A section's order of its articles, applied once they are made. */
struct tree_order {
	struct node *sec;
	const char *perm; /* nart u32s, in the mapping */
};

struct tree_load {
	struct loader *L;
	const char *base;
	size_t size;
	const char *at, *end; /* the structure, as read */
	struct tree_job *jobs;
	size_t njobs, capjobs;
	struct tree_order *orders;
	size_t norders, caporders;
	atomic_size_t next;
	atomic_bool failed;
	const char *why;
};

static const char *
tree_take(struct tree_load *T, size_t n)
{
	const char *p = T->at;

	if ((size_t)(T->end - T->at) < n) {
		T->why = "structure cut short";
		return NULL;
	}
	T->at += n;
	return p;
}

/* A saved page, checked, as a blob pointing into the mapping. */
static bool
tree_page(struct tree_load *T, uint64_t off, uint64_t len, uint64_t sum,
    struct blob *b)
{
	uint64_t mark;
	const char *st = T->base;

	if (off < TREE_HEAD_BYTES || off % PAGE_HEADER != 0 || off > T->size ||
	    len > T->size || T->size - off < PAGE_HEADER + len + 1) {
		T->why = "a page out of bounds";
		return false;
	}
	memcpy(&mark, st + off + 8, sizeof(mark));
	if (mark != PAGE_MAPPED || st[off + PAGE_HEADER + len] != '\0' ||
	    pack_hash(st + off + PAGE_HEADER, len) != sum) {
		T->why = "a damaged page";
		return false;
	}
	b->p = (char *)st + off + PAGE_HEADER;
	b->len = len;
	return true;
}

static char *
tree_str(struct tree_load *T, uint32_t len)
{
	const char *p;
	char *s;

	if (len >= PATH_MAX * 16 || (p = tree_take(T, len)) == NULL)
		return NULL;
	if (memchr(p, '\0', len) != NULL) {
		T->why = "a string holds a NUL";
		return NULL;
	}
	if ((s = xstrndup(p, len)) == NULL)
		T->why = "out of memory";
	return s;
}

static int
slug_cmp(const char *a, size_t al, const char *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);

	return c ? c : al < bl ? -1 : al > bl;
}

/* A section and its subtree, as save_sec wrote them; NULL: T->why. */
static struct node *
tree_sec(struct tree_load *T, const char *parent, size_t depth)
{
	struct tree_sec ts;
	const char *p, *prev = NULL;
	struct node *n;
	struct section *s;
	char name[NAME_MAX + 1];
	size_t prevlen = 0;

	if ((p = tree_take(T, sizeof(ts))) == NULL)
		return NULL;
	memcpy(&ts, p, sizeof(ts));
	if (depth > ARCHIVE_MAX_DEPTH || ts.namelen > NAME_MAX ||
	    ts.nart > (size_t)(T->end - T->at) / 4 ||
	    ts.nsub > (size_t)(T->end - T->at) / sizeof(ts)) {
		T->why = "a section out of bounds";
		return NULL;
	}
	if ((p = tree_take(T, ts.namelen)) == NULL)
		return NULL;
	memcpy(name, p, ts.namelen);
	name[ts.namelen] = '\0';
	if ((depth == 0) != (ts.namelen == 0) ||
	    (depth > 0 && !name_is_safe(name, ts.namelen)) ||
	    strlen(parent) + ts.namelen + 1 > ARCHIVE_PATH_MAX) {
		T->why = "a bad section name";
		return NULL;
	}
	if ((n = node_new(NODE_SECTION, depth == 0 ? "/" : parent, name)) ==
	    NULL) {
		T->why = "out of memory";
		return NULL;
	}
	n->born = T->L->born;
	s = n->sec;
	s->subfiles = ts.subfiles;
	if ((n->title = tree_str(T, ts.titlelen)) == NULL ||
	    (ts.desclen != UINT32_MAX &&
	        (s->description = tree_str(T, ts.desclen)) == NULL) ||
	    (n->lang = tree_str(T, ts.langlen)) == NULL ||
	    !tree_page(T, ts.page_off[0], ts.page_len[0], ts.page_sum[0],
	        &s->gemini) ||
	    !tree_page(T, ts.page_off[1], ts.page_len[1], ts.page_sum[1],
	        &s->gopher) ||
	    !tree_page(
	        T, ts.page_off[2], ts.page_len[2], ts.page_sum[2], &s->feed))
		goto fail;
	if (ts.nart > 0 &&
	    (s->articles = calloc(ts.nart, sizeof(*s->articles))) == NULL) {
		T->why = "out of memory";
		goto fail;
	}
	s->narticles = ts.nart;
	for (uint32_t i = 0; i < ts.nart; i++) {
		uint16_t len;
		struct tree_job *j;

		if ((p = tree_take(T, sizeof(len))) == NULL)
			goto fail;
		memcpy(&len, p, sizeof(len));
		if ((p = tree_take(T, len)) == NULL)
			goto fail;
		/* Strictly by name: lookups search byname. */
		if (len == 0 || len > NAME_MAX || !name_is_safe(p, len) ||
		    strlen(n->path) + len > ARCHIVE_PATH_MAX ||
		    (prev != NULL && slug_cmp(prev, prevlen, p, len) >= 0)) {
			T->why = "a bad article name";
			goto fail;
		}
		prev = p;
		prevlen = len;
		if (T->njobs == T->capjobs) {
			size_t cap = T->capjobs ? 2 * T->capjobs : 4096;
			struct tree_job *v =
			    reallocarray(T->jobs, cap, sizeof(*v));

			if (v == NULL) {
				T->why = "out of memory";
				goto fail;
			}
			T->jobs = v;
			T->capjobs = cap;
		}
		j = &T->jobs[T->njobs++];
		j->sec = n;
		j->slug = p;
		j->len = len;
		j->slot = &s->articles[i];
	}
	if ((p = tree_take(T, (size_t)ts.nart * 4)) == NULL)
		goto fail;
	if (ts.nart > 0) {
		if (T->norders == T->caporders) {
			size_t cap = T->caporders ? 2 * T->caporders : 64;
			struct tree_order *v =
			    reallocarray(T->orders, cap, sizeof(*v));

			if (v == NULL) {
				T->why = "out of memory";
				goto fail;
			}
			T->orders = v;
			T->caporders = cap;
		}
		T->orders[T->norders++] = (struct tree_order){n, p};
	}
	if (ts.nsub > 0 &&
	    (s->sections = calloc(ts.nsub, sizeof(*s->sections))) == NULL) {
		T->why = "out of memory";
		goto fail;
	}
	for (uint32_t i = 0; i < ts.nsub; i++) {
		struct node *c = tree_sec(T, n->path, depth + 1);

		if (c == NULL)
			goto fail;
		s->sections[s->nsections++] = c;
	}
	return n;
fail:
	node_release(n);
	return NULL;
}

static void *
tree_main(void *arg)
{
	struct tree_load *T = arg;
	struct loader *L = T->L;
	const struct pack_rec *near = NULL;
	char path[PATH_MAX], real[PATH_MAX], slug[NAME_MAX + 1];
	size_t i, rl = strcmp(L->rootreal, "/") == 0 ? 0 : strlen(L->rootreal);

	while ((i = atomic_fetch_add(&T->next, PARSE_BATCH)) < T->njobs) {
		size_t end =
		    i + PARSE_BATCH < T->njobs ? i + PARSE_BATCH : T->njobs;

		for (; i < end && !atomic_load(&T->failed); i++) {
			struct tree_job *j = &T->jobs[i];
			const struct pack_rec *r;
			struct text *t;
			struct node *n;
			size_t pl = strlen(j->sec->path), np;

			/*
			 * The catalog's key: the file's path as the walk
			 * found it, the real one for a symlink (looked up
			 * only when the plain one is not there).
			 */
			memcpy(path, L->rootreal, rl);
			memcpy(path + rl, j->sec->path, pl);
			memcpy(path + rl + pl, j->slug, j->len);
			memcpy(path + rl + pl + j->len, ".txt", 5);
			memcpy(slug, j->slug, j->len);
			slug[j->len] = '\0';
			if ((r = pack_find(L->cache, path, near)) == NULL &&
			    (realpath(path, real) == NULL ||
			        (r = pack_find(L->cache, real, near)) ==
			            NULL)) {
				atomic_store(&T->failed, true);
				break;
			}
			near = r;
			np = pack_rec_npara(r);
			if ((t = malloc(sizeof(*t) +
			         (np + 1) * sizeof(*t->room))) == NULL ||
			    (n = node_new(NODE_ARTICLE, j->sec->path, slug)) ==
			        NULL) {
				free(t);
				atomic_store(&T->failed, true);
				break;
			}
			if (pack_rec_article(L->cache, r, &t->art, t->room,
			        &(uint64_t){0}, &(uint64_t){0}) == -1) {
				free(t);
				free(n);
				atomic_store(&T->failed, true);
				break;
			}
			atomic_init(&t->refs, 1);
			t->keep_paras = true;
			t->seg = L->cache_seg;
			atomic_fetch_add(&t->seg->refs, 1);
			n->born = L->born;
			n->art = &t->art;
			n->title = t->art.title;
			n->date = t->art.date;
			if (n->date != NULL)
				n->when = article_date_key(n->date);
			n->lang = t->art.lang;
			pack_rec_stamp(r, &n->stamp);
			*j->slot = n;
		}
	}
	return NULL;
}

/* byname, the order, and the counts, once every article is made. */
static bool
tree_finish(struct node *n)
{
	struct section *s = n->sec;
	struct node **sub = NULL;
	size_t i = 0, j = 0, k = 0;

	s->subsections = 1;
	s->subarticles = s->narticles;
	for (size_t c = 0; c < s->nsections; c++) {
		if (!tree_finish(s->sections[c]))
			return false;
		s->subsections += s->sections[c]->sec->subsections;
		s->subarticles += s->sections[c]->sec->subarticles;
	}
	if (s->nsections + s->narticles == 0)
		return true;
	if ((s->byname = reallocarray(NULL, s->nsections + s->narticles,
	         sizeof(*s->byname))) == NULL ||
	    (s->nsections > 0 &&
	        (sub = reallocarray(NULL, s->nsections, sizeof(*sub))) ==
	            NULL)) {
		free(sub);
		return false;
	}
	if (s->nsections > 0)
		memcpy(sub, s->sections, s->nsections * sizeof(*sub));
	if (s->nsections > 1)
		qsort(sub, s->nsections, sizeof(*sub), cmp_name);
	/* The articles are by name here; a name twice is refused. */
	while (i < s->nsections || j < s->narticles) {
		int c = i == s->nsections ? 1
		    : j == s->narticles
		    ? -1
		    : strcmp(sub[i]->name, s->articles[j]->name);

		if (c == 0 ||
		    (k > 0 &&
		        strcmp(s->byname[k - 1]->name,
		            c < 0 ? sub[i]->name : s->articles[j]->name) >=
		            0)) {
			free(sub);
			return false;
		}
		s->byname[k++] = c < 0 ? sub[i++] : s->articles[j++];
	}
	free(sub);
	return true;
}

/* Each section's articles from by name to their saved order. */
static bool
tree_order(struct tree_order *o, struct node ***tmp, size_t *cap)
{
	struct section *s = o->sec->sec;
	size_t n = s->narticles;
	unsigned char *seen;

	if (n > *cap) {
		struct node **v = reallocarray(*tmp, n, sizeof(*v));

		if (v == NULL)
			return false;
		*tmp = v;
		*cap = n;
	}
	if ((seen = calloc(n, 1)) == NULL)
		return false;
	/* Checked whole first: a node twice in the array is freed twice. */
	for (size_t i = 0; i < n; i++) {
		uint32_t x;

		memcpy(&x, o->perm + 4 * i, sizeof(x));
		if (x >= n || seen[x]) {
			free(seen);
			return false;
		}
		seen[x] = 1;
	}
	free(seen);
	memcpy(*tmp, s->articles, n * sizeof(**tmp));
	for (size_t i = 0; i < n; i++) {
		uint32_t x;

		memcpy(&x, o->perm + 4 * i, sizeof(x));
		s->articles[i] = (*tmp)[x];
	}
	return true;
}

/*
 * The snapshot's tree from state_dir's saved one, made for this archive,
 * these options and the pack's catalog as it is now; NULL (said why,
 * unless there is none) to walk the archive instead.  *h: its header.
 */
static struct node *
tree_open(struct loader *L, struct blob *robots, struct tree_head *h)
{
	struct archive_store *store = L->o->store;
	struct tree_load T;
	struct node *root = NULL;
	struct buf ob;
	const char *why = NULL, *p;
	char *path;
	struct stat st;
	struct node **tmp = NULL;
	size_t cap = 0, nt = 0, want = 1;
	pthread_t t[PARSE_THREADS_MAX];
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	uint32_t len;
	int fd;

	memset(&T, 0, sizeof(T));
	atomic_init(&T.next, 0);
	atomic_init(&T.failed, false);
	buf_init(&ob);
	tree_files(store, L->cache);
	/* The later of the two, if either holds a tree. */
	for (int k = 0; k < 2; k++) {
		struct tree_head c;

		if (store->tree_fd[k] != -1 &&
		    pread(store->tree_fd[k], &c, sizeof(c), 0) ==
		        (ssize_t)sizeof(c) &&
		    memcmp(c.magic, TREE_MAGIC, sizeof(c.magic)) == 0 &&
		    (store->tree_used == -1 || c.saved_ns > h->saved_ns)) {
			store->tree_used = k;
			*h = c;
		}
	}
	if (store->tree_used == -1)
		return NULL;
	fd = store->tree_fd[store->tree_used];
	path = store->tree_path[store->tree_used];
	if (fstat(fd, &st) == -1 || st.st_size < TREE_HEAD_BYTES ||
	    (uint64_t)st.st_size > SIZE_MAX) {
		why = "not a saved tree";
		goto fail;
	}
	T.L = L;
	T.size = (size_t)st.st_size;
	if ((T.base = mmap(NULL, T.size, PROT_READ, MAP_SHARED, fd, 0)) ==
	    MAP_FAILED) {
		T.base = NULL;
		why = "cannot be mapped";
		goto fail;
	}
	memcpy(h, T.base, sizeof(*h));
	if (memcmp(h->magic, TREE_MAGIC, sizeof(h->magic)) != 0)
		why = "changed while read";
	else if (h->version != TREE_VERSION || h->order != TREE_ORDER ||
	    strncmp(h->serai, SERAI_VERSION, sizeof(h->serai)) != 0)
		why = "made by another version of serai";
	else if (h->sum != pack_hash(h, offsetof(struct tree_head, sum)))
		why = "damaged header";
	else if (h->exe_sum != store->exe_sum)
		why = "made by another build of serai";
	else if (h->st_off < TREE_HEAD_BYTES || h->st_off > T.size ||
	    h->st_len > T.size - h->st_off)
		why = "cut short";
	else if (pack_hash(T.base + h->st_off, h->st_len) != h->st_sum)
		why = "damaged (checksum)";
	if (why != NULL)
		goto fail;
	T.at = T.base + h->st_off;
	T.end = T.at + h->st_len;
	tree_opts(&ob, L->o, L->rootreal);
	if ((p = tree_take(&T, sizeof(len))) == NULL)
		goto fail;
	memcpy(&len, p, sizeof(len));
	if (buf_failed(&ob) || (p = tree_take(&T, len)) == NULL ||
	    len != ob.len || memcmp(p, ob.p, len) != 0) {
		why = "made with other options or for another archive";
		goto fail;
	}
	if ((p = tree_take(&T, sizeof(len))) == NULL)
		goto fail;
	memcpy(&len, p, sizeof(len));
	if (len != UINT32_MAX) {
		if (len > ROBOTS_MAX_BYTES ||
		    (p = tree_take(&T, len)) == NULL ||
		    (robots->p = malloc(len + 1)) == NULL) {
			why = "a bad robots.txt";
			goto fail;
		}
		memcpy(robots->p, p, len);
		robots->p[len] = '\0';
		robots->len = len;
	}
	if ((root = tree_sec(&T, "/", 0)) == NULL)
		goto fail;
	if (T.at != T.end) {
		why = "bytes after its last section";
		goto fail;
	}
	/* The pack's check ran meanwhile, in its own thread. */
	if (pack_wait(L->cache) == -1 || L->cache->addr == NULL ||
	    L->cache->saved_nrecs != h->nrecs ||
	    L->cache->cat_sum != h->cat_sum) {
		why = "made with another article pack";
		goto fail;
	}
	if (L->cache_seg == NULL &&
	    (L->cache_seg = segment_map(
	         L->cache->fd, L->cache->addr, L->cache->len)) != NULL)
		L->cache->lent = true;
	if (L->cache_seg == NULL) {
		why = "out of memory";
		goto fail;
	}
	if (T.njobs >= PARSE_THREADS_MIN_JOBS && ncpu > 1)
		want =
		    ncpu > PARSE_THREADS_MAX ? PARSE_THREADS_MAX : (size_t)ncpu;
	for (; nt + 1 < want; nt++)
		if (thread_start(&t[nt], tree_main, &T) != 0)
			break;
	tree_main(&T);
	for (size_t i = 0; i < nt; i++)
		pthread_join(t[i], NULL);
	if (atomic_load(&T.failed)) {
		why = "an article not in the pack's catalog, or its text "
		      "damaged";
		goto fail;
	}
	if (!tree_finish(root)) {
		why = "names out of order";
		goto fail;
	}
	for (size_t i = 0; i < T.norders; i++)
		if (!tree_order(&T.orders[i], &tmp, &cap)) {
			why = "a bad order";
			goto fail;
		}
	if (root->sec->subarticles != h->narticles ||
	    root->sec->subsections != h->nsections) {
		why = "its counts do not add up";
		goto fail;
	}
	/*
	 * Used: only a clean stop that finds it unchanged marks it good.
	 * Not synced: after a power loss that undoes this, the stale tree
	 * is served until its check, as after any other stop.
	 */
	if (!pwrite_all(fd, "\0\0\0\0\0\0\0\0", 8, 0)) {
		why = strerror(errno);
		goto fail;
	}
	free(tmp);
	free(T.jobs);
	free(T.orders);
	buf_free(&ob);
	return root;
fail:
	if (why == NULL)
		why = T.why != NULL ? T.why : "damaged";
	log_warnx("%s: %s; the archive is read instead", path, why);
	node_release(root);
	free(robots->p);
	robots->p = NULL;
	robots->len = 0;
	if (T.base != NULL)
		munmap((void *)T.base, T.size);
	store->tree_used = -1;
	free(tmp);
	free(T.jobs);
	free(T.orders);
	buf_free(&ob);
	return NULL;
}

static struct snapshot *
load(const struct archive_opts *o, const struct snapshot *old,
    const struct archive_changes *changes, const char **errstr)
{
	struct loader L;
	struct snapshot *s;
	struct node *root;
	struct route route;
	struct stat st, pst;
	struct parse_run P;
	struct timespec t0, started;
	unsigned long walked_ms = 0, read_ms = 0, packed_ms = 0, pages_ms = 0;
	struct blob robots = {NULL, 0};
	struct node *troot = NULL;
	struct tree_head th;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	clock_gettime(CLOCK_REALTIME, &started);
	memset(&L, 0, sizeof(L));
	L.wfd = -1;
	L.o = o;
	L.old = old;
	L.changes = changes;
	L.started_ns = (int64_t)started.tv_sec * 1000000000 + started.tv_nsec;
	atomic_init(&L.ndamaged, 0);
	/*
	 * Only the start-up load: a reload has the old snapshot to share.
	 * Its catalog is being checked meanwhile (pack_open): only the
	 * threads use it, once the walk is done.
	 */
	if (old == NULL && o->store != NULL && o->store->pack != NULL &&
	    !o->store->pack->used)
		L.cache = o->store->pack;
	if (realpath(o->root, L.rootreal) == NULL) {
		*errstr = strerror(errno);
		return NULL;
	}
	if (stat(L.rootreal, &st) == -1 || !S_ISDIR(st.st_mode)) {
		*errstr = "not a directory";
		return NULL;
	}
	if (access(L.rootreal, R_OK | X_OK) == -1) {
		*errstr = strerror(errno);
		return NULL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (root = node_new(NODE_SECTION, "/", "")) == NULL) {
		free(s);
		*errstr = "out of memory";
		return NULL;
	}
	/* Numbered as it starts: its nodes carry it (made_now). */
	s->seq = atomic_fetch_add(&load_seq, 1) + 1;
	L.born = root->born = (uint32_t)s->seq;
	/* The saved tree, if it is good for this start; else the walk. */
	if (L.cache != NULL && o->quick_start &&
	    (troot = tree_open(&L, &robots, &th)) != NULL) {
		node_release(root);
		root = troot;
	} else {
		if (old == NULL && o->before_walk != NULL)
			o->before_walk(o->before_walk_arg);
		if (!seen_add(&L, &st, root->path))
			L.oom = true;
		else {
			if (old == NULL)
				(void)stream_begin(&L, &P);
			read_robots(&L, &robots);
			load_dir(&L, L.rootreal, root, NULL);
			load_deferred(&L);
		}
	}
	free(L.seen);
	if (troot == NULL) {
		if (L.cache != NULL && pack_wait(L.cache) == -1)
			L.cache = NULL;
		if (L.cache != NULL && L.cache->addr != NULL &&
		    L.cache_seg == NULL &&
		    (L.cache_seg = segment_map(
		         L.cache->fd, L.cache->addr, L.cache->len)) != NULL)
			L.cache->lent = true;
		if (!L.streaming) {
			L.slabbed = pack_fd != -1 || L.cache != NULL;
			if (L.cache != NULL && fstat(L.cache->fd, &pst) == 0)
				pack_target(&L, &pst);
		}
		walked_ms = (unsigned long)ms_since(&t0);
		if (L.streaming)
			parse_end(&L, &P);
		else if (!L.oom)
			parse_jobs(&L);
		read_ms = (unsigned long)ms_since(&t0);
		if (L.wfd != -1 && (atomic_load(&L.wfailed) || !pack_map(&L)))
			pack_undo(&L);
		if (atomic_load(&L.ndamaged) > 0)
			log_warnx("%s: %zu texts failed their check; their "
			          "files read again",
			    L.cache->path, atomic_load(&L.ndamaged));
		adopt_jobs(&L);
		packed_ms = (unsigned long)ms_since(&t0);
	}
	route.at[0] = root;
	route.n = 1;
	if (L.oom || root->title == NULL ||
	    (troot == NULL && !finish_all(&L, &route))) {
		load_end(&L);
		buf_free(&L.page);
		free(L.keys);
		node_release(root);
		free(robots.p);
		free(s);
		*errstr = "out of memory";
		return NULL;
	}
	pages_ms = (unsigned long)ms_since(&t0);
	load_end(&L);
	buf_free(&L.page);
	free(L.keys);
	atomic_init(&s->refs, 1);
	s->root = root;
	s->robots = robots;
	s->narticles = root->sec->subarticles;
	s->nsections = root->sec->subsections;
	s->ntaken = L.ntaken;
	s->nskipped = L.nskipped;
	s->nwarnings = L.nwarnings;
	s->nparsed = L.nparsed;
	s->ncached = L.ncached;
	s->nlisted = L.nlisted;
	s->loaded = time(NULL);
	s->started_ns = (int64_t)started.tv_sec * 1000000000 + started.tv_nsec;
	if (troot != NULL) {
		/* As the saved snapshot was: its files' stamps are of then. */
		s->started_ns = th.started_ns;
		s->nskipped = (size_t)th.nskipped;
		s->nwarnings = (size_t)th.nwarnings;
		s->ncached = s->narticles;
		s->from_tree = s->tree_current = true;
	}
	/* What a clean stop may leave as it is (archive_save). */
	if (old != NULL && old->tree_current && root->same &&
	    s->narticles == old->narticles && s->nskipped == old->nskipped &&
	    s->nwarnings == old->nwarnings &&
	    (s->robots.p == NULL) == (old->robots.p == NULL) &&
	    s->robots.len == old->robots.len &&
	    (s->robots.len == 0 ||
	        memcmp(s->robots.p, old->robots.p, s->robots.len) == 0))
		s->tree_current = true;
	atomic_init(&s->search, NULL);
	atomic_init(&s->indexing, false);
	atomic_init(&s->stop_index, false);
	/* Before the index: build_search finds the archive's store here. */
	s->opts = *o;
	s->opts.root = s->opts.title = s->opts.lang = NULL;
	if ((s->opts.hostname = strdup(o->hostname)) == NULL) {
		snapshot_release(s);
		*errstr = "out of memory";
		return NULL;
	}
	if (o->index == ARCHIVE_INDEX_NOW)
		atomic_init(&s->search, build_search(s, old));
	/* A reload's old snapshot trims as it goes (snapshot_release). */
	if (old == NULL)
		heap_trim();
	s->load_ms = (unsigned long)ms_since(&t0);
	s->walked_ms = walked_ms;
	s->read_ms = read_ms;
	s->packed_ms = packed_ms;
	s->pages_ms = pages_ms;
	return s;
}

struct snapshot *
archive_load(const struct archive_opts *o, const char **errstr)
{
	return load(o, NULL, NULL, errstr);
}

struct snapshot *
archive_reload(const struct snapshot *old, const struct archive_opts *o,
    const struct archive_changes *changes, const char **errstr)
{
	return load(o, old, changes, errstr);
}

struct snapshot *
snapshot_ref(struct snapshot *s)
{
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	return s;
}

void
snapshot_release(struct snapshot *s)
{
	if (s == NULL)
		return;
	if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (s->has_indexer) {
		atomic_store(&s->stop_index, true);
		pthread_join(s->indexer, NULL);
	}
	node_release(s->root);
	free(s->robots.p);
	if (s->own_search)
		search_free(atomic_load(&s->search));
	free((char *)s->opts.hostname);
	free(s);
#ifdef __GLIBC__
	/*
	 * A snapshot is most of the process, and glibc keeps freed heap
	 * for reuse: without this, RSS after a reload stays at two
	 * archives' worth until the next one.
	 */
	malloc_trim(0);
#endif
}

/* The child of s named name[0..len), or NULL: a binary search. */
static const struct node *
child(const struct section *s, const char *name, size_t len)
{
	size_t lo = 0, hi = s->nsections + s->narticles;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *p = s->byname[mid]->name;
		size_t plen = strlen(p);
		int c = memcmp(p, name, plen < len ? plen : len);

		if (c == 0)
			c = plen < len ? -1 : plen > len ? 1 : 0;
		if (c == 0)
			return s->byname[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct node *
archive_route(
    const struct snapshot *s, const char *path, size_t len, struct route *r)
{
	const struct node *n = s->root;
	size_t at = 1;

	r->n = 0;
	if (len == 0 || path[0] != '/')
		return NULL;
	r->at[r->n++] = n;
	/* A name per level: "x/" a section, a last "x" an article. */
	while (at < len) {
		const char *name = path + at, *slash;
		size_t nlen;

		slash = memchr(name, '/', len - at);
		nlen = slash != NULL ? (size_t)(slash - name) : len - at;
		if (n->kind != NODE_SECTION || nlen == 0 ||
		    r->n == sizeof(r->at) / sizeof(r->at[0]) ||
		    (n = child(n->sec, name, nlen)) == NULL ||
		    (n->kind == NODE_SECTION) != (slash != NULL)) {
			r->n = 0;
			return NULL;
		}
		r->at[r->n++] = n;
		at += nlen + (slash != NULL);
	}
	return n;
}

const struct node *
archive_lookup(const struct snapshot *s, const char *path, size_t len)
{
	struct route r;

	return archive_route(s, path, len, &r);
}

const char *
route_lang(const struct route *r)
{
	/* A section's is set (its own or inherited); an article's may not. */
	for (size_t i = r->n; i-- > 0;)
		if (r->at[i]->lang != NULL)
			return r->at[i]->lang;
	return "en";
}

/*
 * A section's articles in order (archive.c's cmp_article): newest
 * first, undated last by title, the name settling ties.
 */
static int
article_order(const struct node *x, const struct node *y)
{
	return cmp_article(&x, &y);
}

size_t
archive_position(const struct section *s, const struct node *a)
{
	size_t lo = 0, hi = s->narticles;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = article_order(s->articles[mid], a);

		if (c == 0)
			return s->articles[mid] == a ? mid : s->narticles;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return s->narticles;
}

const struct node *
archive_lookup_feed(const struct snapshot *s, const char *path, size_t len)
{
	const size_t flen = strlen(FEED_NAME);
	const struct node *n;

	if (len <= flen || path[len - flen - 1] != '/' ||
	    memcmp(path + len - flen, FEED_NAME, flen) != 0)
		return NULL;
	n = archive_lookup(s, path, len - flen);
	return n != NULL && n->kind == NODE_SECTION ? n : NULL;
}
