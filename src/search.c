/*
 * Full-text search with SQLite FTS5, kept in a file in state_dir.
 *
 * One FTS5 table (unicode61 with remove_diacritics 2: case and accent
 * folding, prefixes, phrases) holds the index; the snippets are cut from
 * the snapshot's text here.  The table keeps its text too, on disk: SQLite
 * 3.40 (Debian 12) cannot delete a row from a contentless table without
 * being handed the text it indexed, and an article changed while serai
 * was down has no old text left anywhere else.  It costs disk and page
 * cache, which the kernel may reclaim, not private memory.
 *
 * Beside it, "docs" names each indexed article by path with the stamp of
 * its file (keyed by path, so its rows are in path order), "vocab" counts
 * the documents of every indexed word (for SEARCH_PREFIX_DOCS_MAX), and
 * "meta" holds the digest of docs (search_digest), kept with every commit.
 * Nothing of docs is held in memory: a delta sync looks its few paths up,
 * a full one walks docs in path order beside the caller's articles, and a
 * warm start whose tree has the digest the index has reads no row at all.
 *
 * Ids: (instant of the article's date, offset to be positive) << 24, plus
 * a slot, the first free one for that second.  So ids grow with the date
 * as newest-first listing wants, and an insertion renumbers nothing.
 *
 * Chinese, Japanese and Korean are written without spaces, and unicode61
 * would take a whole run of ideographs as one token.  Each such character
 * is made a token of its own, in the indexed text and in the query, and a
 * query's run of them becomes a phrase: "科学院" finds the three
 * characters next to each other anywhere in a longer run.
 *
 * A query with more than SEARCH_RANK_MAX hits is not ranked (bm25 would
 * score every hit): its hits come newest first, which FTS5 reads straight
 * off its doclists and stops after the page.  Counting stops there too.
 *
 * Threads: the database is in WAL mode, so a sync (one write transaction
 * on the writer connection) never stops a search, which reads the last
 * committed state on a read connection of its own (SEARCH_READERS, each
 * guarded by a mutex of ours; SQLite's would be a second lock around the
 * same thing, hence SQLITE_OPEN_NOMUTEX).  An in-memory index has one
 * connection for both, and a sync holds its lock.
 */
#include "search.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utf8proc.h>

#include "log.h"
#include "util.h"

/* A snippet: bytes of context before the first match, and in all. */
#define SNIPPET_BEFORE 60
#define SNIPPET_BYTES 200
/*
 * Bytes of an article searched for the matched word: past them (a hit
 * deep in a multi-megabyte article) the snippet is the text's start, so
 * a page of hits costs at most ten times this, not ten whole articles.
 */
#define SNIPPET_SCAN_MAX (64 * 1024)

/*
 * The file's identity: PRAGMA application_id ("sera"), and user_version,
 * raised whenever the schema or what is indexed changes (tokenizer, CJK
 * splitting, ids): a file of another version is rebuilt, never misread.
 */
#define INDEX_APP_ID 0x73657261
#define INDEX_VERSION 4
/*
 * Ids: date << ID_SLOT_BITS | slot.  16 million articles in one second
 * is more than a million-article archive can hold; 39 bits of seconds
 * cover the years 0000-9999 (article.c's dates) once offset by
 * ID_EPOCH_OFFSET, and 39 + 24 bits fit a positive rowid.
 */
#define ID_SLOT_BITS 24
#define ID_EPOCH_OFFSET (INT64_C(1) << 36)
#define ID_KEY_MAX ((INT64_C(1) << 39) - 1)
/*
 * A search that finds the database locked (only while a WAL file is
 * recovered or reset) waits this long before it fails.
 */
#define BUSY_TIMEOUT_MS 2000

/*
 * A search reads the index through a shared read-only mapping of the
 * file rather than a read(2) per page into a private cache: one query
 * may touch thousands of pages, and the page cache is the kernel's to
 * reclaim.  SQLite caps it at 2 GiB (SQLITE_MAX_MMAP_SIZE); past that
 * it reads.
 */
#define READER_MMAP_BYTES "2147418112"

/* What the WAL file is cut back to after a checkpoint: 4 MiB. */
#define WAL_KEEP_BYTES "4194304"

/* A row of docs, copied out of the statement that read it. */
struct docrow {
	char path[SEARCH_PATH_MAX];
	long long id;
	struct search_stamp st;
};

struct reader {
	sqlite3 *db;
	pthread_mutex_t lock;
	sqlite3_stmt *count;
	sqlite3_stmt *ranked;
	sqlite3_stmt *newest;
	sqlite3_stmt *expands; /* documents a prefix's words are in */
	sqlite3_stmt *path_of; /* a hit's path */
	unsigned long ticks;   /* used by the query running now */
	struct search *s;
};

struct search {
	sqlite3 *db; /* the writer */
	bool memory;
	sqlite3_stmt *doc_add, *doc_del, *fts_add, *fts_del, *fts_text;
	sqlite3_stmt *slot, *voc_inc, *voc_dec, *voc_drop;
	sqlite3_stmt *doc_get;  /* a path's row */
	sqlite3_stmt *doc_walk; /* every row, in path order */
	sqlite3_stmt *any;      /* whether docs has a row */
	sqlite3_stmt *meta_get, *meta_set, *meta_del;
	fts5_tokenizer tokapi;
	Fts5Tokenizer *tok;
	struct reader readers[SEARCH_READERS];
	size_t nreaders;
	bool in_sync, bulk;
	bool delta; /* search_begin_delta: commit drops only the forgotten */
	/*
	 * A full sync of a non-empty index: the caller names its articles in
	 * path order, and docs is walked beside them (walk_to).  cur: the row
	 * the walk stands on, not yet matched (have_cur); last: the path the
	 * caller named last (have_last).
	 */
	bool merge, walk_done, have_cur, have_last;
	struct docrow cur, row;
	char last[SEARCH_PATH_MAX];
	/*
	 * The digest of docs as this sync leaves it: from nothing for a build
	 * or a full sync (what they keep and add), from meta for a delta (what
	 * it drops and adds); digest_ok false when meta's was unusable.
	 */
	struct search_digest digest;
	bool digest_ok;
	struct search_stats stats;
	unsigned long budget; /* progress callbacks allowed per query */
	unsigned long long prefix_docs_max;
	struct buf text;  /* search_doc's scratch */
	struct buf terms; /* a document's words, NUL-separated */
};

static void
db_warn(sqlite3 *db, const char *what)
{
	log_warnx("search: %s: %s", what, sqlite3_errmsg(db));
}

static int
exec(sqlite3 *db, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		log_warnx("search: %s", err ? err : "out of memory");
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

static int
prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st,
	        NULL) != SQLITE_OK) {
		db_warn(db, "prepare");
		return -1;
	}
	return 0;
}

/* One integer from a statement such as a PRAGMA; -1 on failure. */
static long long
query_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	long long v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* Non-zero ends the statement with SQLITE_INTERRUPT. */
static int
progress(void *arg)
{
	struct reader *r = arg;

	return ++r->ticks > r->s->budget;
}

/* The UTF-8 sequence at p (n bytes left): its length, and *cp. */
static size_t
utf8_next(const char *p, size_t n, unsigned *cp)
{
	const unsigned char *u = (const unsigned char *)p;

	if (u[0] < 0x80 || n < 2) {
		*cp = u[0];
		return 1;
	}
	if (u[0] < 0xe0) {
		*cp = (u[0] & 0x1fu) << 6 | (u[1] & 0x3fu);
		return 2;
	}
	if (u[0] < 0xf0 || n < 4) {
		if (n < 3) {
			*cp = u[0];
			return 1;
		}
		*cp =
		    (u[0] & 0x0fu) << 12 | (u[1] & 0x3fu) << 6 | (u[2] & 0x3fu);
		return 3;
	}
	*cp = (u[0] & 0x07u) << 18 | (u[1] & 0x3fu) << 12 |
	    (u[2] & 0x3fu) << 6 | (u[3] & 0x3fu);
	return 4;
}

/* Kana, CJK ideographs (and extensions), Hangul. */
static bool
cjk(unsigned cp)
{
	return (cp >= 0x3040 && cp <= 0x30ff) ||
	    (cp >= 0x3400 && cp <= 0x9fff) || (cp >= 0xac00 && cp <= 0xd7af) ||
	    (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0x20000 && cp <= 0x3ffff);
}

/* Text as FTS5 should see it: every CJK character a word of its own. */
static void
add_segmented(struct buf *b, const char *p, size_t len)
{
	size_t i = 0, run = 0;

	while (i < len) {
		unsigned cp;
		size_t k;

		/* Every CJK letter is 3 or 4 bytes, led by 0xe3 or above. */
		if ((unsigned char)p[i] < 0xe3) {
			i++;
			continue;
		}
		k = utf8_next(p + i, len - i, &cp);
		if (cjk(cp)) {
			buf_add(b, p + run, i - run);
			buf_addc(b, ' ');
			buf_add(b, p + i, k);
			buf_addc(b, ' ');
			run = i + k;
		}
		i += k;
	}
	buf_add(b, p + run, len - run);
}

/* The index's storage: the file, the schema, the sync. */

static uint64_t
hash_bytes(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	/* FNV-1a: paths and stamps, written by the archive's own keeper. */
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

/* MurmurHash3's finaliser: a bijection in which every bit moves all. */
static uint64_t
mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	return h ^ (h >> 33);
}

static uint64_t
mix_word(uint64_t h, uint64_t w)
{
	return mix64(h ^ w) + 0x9e3779b97f4a7c15ULL;
}

/*
 * A document's part of the digest: a word at a time through a full
 * mix, so that any change of the path or of any field of the stamp
 * changes it as a random 64-bit value would (two changed trees pass for
 * the same set one time in 2^64).  The digest is the sum of these mod
 * 2^64 and their count: what a sync adds or drops is added or
 * subtracted, in any order, and a tree's digest is one pass over it.
 *
 * Not keyed, and it need not be: only serai writes the index, in a
 * state_dir of its own (made 0700, the file 0600), and a digest that matches
 * makes a start take the index as it is, nothing more.  Whoever could
 * forge a matching one could as well write the rows it stands for; the
 * worst it buys is a stale index until a start finds the tree changed
 * (a digest that does not match is a full compare, which mends the
 * index, and one that is not two integers is no digest).
 */
static uint64_t
doc_hash(const char *path, const struct search_stamp *st)
{
	int64_t v[5] = {(int64_t)st->dev, (int64_t)st->ino, st->size,
	    st->mtime_ns, st->ctime_ns};
	size_t n = strlen(path), i;
	uint64_t h = 0x243f6a8885a308d3ULL, w;

	for (i = 0; i + 8 <= n; i += 8) {
		memcpy(&w, path + i, 8);
		h = mix_word(h, w);
	}
	w = 0;
	memcpy(&w, path + i, n - i);
	/* The length: where the path's zero padding ends and the stamp is. */
	h = mix_word(mix_word(h, w), n);
	for (i = 0; i < 5; i++)
		h = mix_word(h, (uint64_t)v[i]);
	return mix64(h);
}

void
search_digest_add(
    struct search_digest *d, const char *path, const struct search_stamp *st)
{
	d->sum += doc_hash(path, st);
	d->count++;
}

static void
digest_sub(
    struct search_digest *d, const char *path, const struct search_stamp *st)
{
	d->sum -= doc_hash(path, st);
	d->count--;
}

/* meta's digest; -1 when a row is missing or not what serai writes. */
static int
read_digest(struct search *s, struct search_digest *d)
{
	sqlite3_stmt *q = s->meta_get;
	int rv = -1;

	if (sqlite3_step(q) == SQLITE_ROW &&
	    sqlite3_column_type(q, 0) == SQLITE_INTEGER &&
	    sqlite3_column_type(q, 1) == SQLITE_INTEGER &&
	    sqlite3_column_int64(q, 1) >= 0) {
		d->sum = (uint64_t)sqlite3_column_int64(q, 0);
		d->count = (uint64_t)sqlite3_column_int64(q, 1);
		rv = 0;
	}
	sqlite3_reset(q);
	return rv;
}

int
search_digest(struct search *s, struct search_digest *d)
{
	return s->in_sync ? -1 : read_digest(s, d);
}

/*
 * A file that is there must be a regular file that looks like a whole
 * SQLite database; one that is not is made, 0600, with no WAL files of
 * an older one beside it (SQLite would replay them into it).
 */
static int
check_file(const char *path, const char **why, bool *damaged)
{
	unsigned char h[100];
	struct stat st;
	uint64_t psize, pages;
	ssize_t n;
	int fd;

	/* Non-blocking, and not followed: a FIFO would block, a link lead
	 * anywhere. */
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) ==
	    -1) {
		if (errno != ENOENT) {
			*why = errno == ELOOP ? "a symbolic link"
			                      : strerror(errno);
			return -1;
		}
		if (search_remove(path) == -1 ||
		    (fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
		         0600)) == -1) {
			*why = strerror(errno);
			return -1;
		}
		close(fd);
		return 0;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		*why = "not a regular file";
		return -1;
	}
	n = pread(fd, h, sizeof(h), 0);
	close(fd);
	if (st.st_size == 0)
		return 0;
	*damaged = true;
	if (n != (ssize_t)sizeof(h) || memcmp(h, "SQLite format 3", 16) != 0) {
		*why = "not an SQLite database";
		return -1;
	}
	/* The page count is valid when its "valid-for" counter says so. */
	psize = (uint64_t)h[16] << 8 | h[17];
	if (psize == 1)
		psize = 65536;
	pages = (uint64_t)h[28] << 24 | (uint64_t)h[29] << 16 |
	    (uint64_t)h[30] << 8 | h[31];
	if (memcmp(h + 24, h + 92, 4) == 0 &&
	    (uint64_t)st.st_size < psize * pages) {
		*why = "cut short";
		return -1;
	}
	*damaged = false;
	return 0;
}

int
search_remove(const char *path)
{
	static const char *const ext[] = {"-wal", "-shm", ""};
	char p[PATH_MAX];

	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		if ((size_t)snprintf(p, sizeof(p), "%s%s", path, ext[i]) >=
		    sizeof(p)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		if (unlink(p) == -1 && errno != ENOENT)
			return -1;
	}
	return 0;
}

static int
create_schema(sqlite3 *db)
{
	char sql[1024];

	/*
	 * docs by path: a full sync walks it in path order, each row whole
	 * where it stands; the ids by their own index (a hit's path, the
	 * next free id of a second).  meta: the digest of an empty docs.
	 */
	snprintf(sql, sizeof(sql),
	    "BEGIN; "
	    "CREATE TABLE docs(path TEXT PRIMARY KEY, id INTEGER NOT NULL "
	    "UNIQUE, dev INTEGER, ino INTEGER, size INTEGER, mtime INTEGER, "
	    "ctime INTEGER) WITHOUT ROWID; "
	    "CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID; "
	    "INSERT INTO meta VALUES('digest', 0), ('docs', 0); "
	    "CREATE VIRTUAL TABLE fts USING fts5(title, body, "
	    "tokenize = 'unicode61 remove_diacritics 2'); "
	    "INSERT INTO fts(fts, rank) VALUES('rank', 'bm25(10.0, 1.0)'); "
	    "CREATE TABLE vocab(term TEXT PRIMARY KEY, doc INTEGER NOT NULL) "
	    "WITHOUT ROWID; "
	    "PRAGMA application_id = %d; PRAGMA user_version = %d; COMMIT",
	    INDEX_APP_ID, INDEX_VERSION);
	return exec(db, sql);
}

/* unicode61 as the table has it, to list a document's words for vocab. */
static int
open_tokenizer(struct search *s)
{
	const char *args[] = {"remove_diacritics", "2"};
	fts5_api *api = NULL;
	sqlite3_stmt *st;
	void *ud;

	if (sqlite3_prepare_v2(s->db, "SELECT fts5(?1)", -1, &st, NULL) !=
	    SQLITE_OK)
		return -1;
	sqlite3_bind_pointer(st, 1, &api, "fts5_api_ptr", NULL);
	sqlite3_step(st);
	sqlite3_finalize(st);
	if (api == NULL ||
	    api->xFindTokenizer(api, "unicode61", &ud, &s->tokapi) !=
	        SQLITE_OK ||
	    s->tokapi.xCreate(ud, args, 2, &s->tok) != SQLITE_OK) {
		s->tok = NULL;
		return -1;
	}
	return 0;
}

static int
prepare_writer(struct search *s)
{
	sqlite3 *db = s->db;

	if (prepare(db,
	        "INSERT INTO docs(id, path, dev, ino, size, mtime, ctime) "
	        "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	        &s->doc_add) == -1 ||
	    prepare(db, "DELETE FROM docs WHERE id = ?1", &s->doc_del) == -1 ||
	    prepare(db,
	        "INSERT INTO fts(rowid, title, body) VALUES(?1, ?2, ?3)",
	        &s->fts_add) == -1 ||
	    prepare(db, "DELETE FROM fts WHERE rowid = ?1", &s->fts_del) ==
	        -1 ||
	    prepare(db, "SELECT title, body FROM fts WHERE rowid = ?1",
	        &s->fts_text) == -1 ||
	    prepare(db, "SELECT max(id) FROM docs WHERE id >= ?1 AND id < ?2",
	        &s->slot) == -1 ||
	    prepare(db,
	        "INSERT INTO vocab(term, doc) VALUES(?1, 1) ON CONFLICT(term) "
	        "DO UPDATE SET doc = doc + 1",
	        &s->voc_inc) == -1 ||
	    prepare(db, "UPDATE vocab SET doc = doc - 1 WHERE term = ?1",
	        &s->voc_dec) == -1 ||
	    prepare(db, "DELETE FROM vocab WHERE term = ?1 AND doc <= 1",
	        &s->voc_drop) == -1 ||
	    prepare(db,
	        "SELECT id, dev, ino, size, mtime, ctime FROM docs WHERE path "
	        "= ?1",
	        &s->doc_get) == -1 ||
	    prepare(db,
	        "SELECT path, id, dev, ino, size, mtime, ctime FROM docs "
	        "ORDER BY path",
	        &s->doc_walk) == -1 ||
	    prepare(db, "SELECT EXISTS (SELECT 1 FROM docs)", &s->any) == -1 ||
	    prepare(db,
	        "SELECT (SELECT value FROM meta WHERE key = 'digest'), "
	        "(SELECT value FROM meta WHERE key = 'docs')",
	        &s->meta_get) == -1 ||
	    prepare(db,
	        "INSERT OR REPLACE INTO meta(key, value) VALUES('digest', ?1), "
	        "('docs', ?2)",
	        &s->meta_set) == -1 ||
	    prepare(db, "DELETE FROM meta WHERE key IN ('digest', 'docs')",
	        &s->meta_del) == -1)
		return -1;
	return 0;
}

static int
prepare_reader(struct reader *r)
{
	sqlite3 *db = r->db;

	/* The LIMIT stops the count at the first rows past the rank cap. */
	if (prepare(db,
	        "SELECT count(*) FROM (SELECT rowid FROM fts WHERE fts "
	        "MATCH ?1 LIMIT ?2)",
	        &r->count) == -1 ||
	    /* ORDER BY rank is sorted inside FTS5, by the bm25 set above. */
	    prepare(db,
	        "SELECT rowid FROM fts WHERE fts MATCH ?1 ORDER BY rank "
	        "LIMIT ?2 OFFSET ?3",
	        &r->ranked) == -1 ||
	    prepare(db,
	        "SELECT rowid FROM fts WHERE fts MATCH ?1 ORDER BY rowid "
	        "DESC LIMIT ?2 OFFSET ?3",
	        &r->newest) == -1 ||
	    prepare(db,
	        "SELECT coalesce(sum(doc), 0) FROM vocab WHERE term >= ?1 AND "
	        "term < ?2",
	        &r->expands) == -1 ||
	    prepare(db, "SELECT path FROM docs WHERE id = ?1", &r->path_of) ==
	        -1)
		return -1;
	sqlite3_progress_handler(db, SEARCH_BUDGET_STEP, progress, r);
	return 0;
}

static sqlite3 *
open_conn(const char *path, int flags)
{
	sqlite3 *db = NULL;

	if (sqlite3_open_v2(path, &db,
	        flags | SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
	            SQLITE_OPEN_NOFOLLOW,
	        NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
	/* Sorts and statement journals in memory: the sandbox confines
	 * files to state_dir, and SQLite's temporary files go to /tmp. */
	if (exec(db, "PRAGMA temp_store = MEMORY") == -1) {
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

/* WAL: readers go on while a sync writes; NORMAL: no sync per commit. */
static int
set_wal(sqlite3 *db)
{
	sqlite3_stmt *st;
	int ok = 0;

	if (sqlite3_prepare_v2(
	        db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		ok = strcmp((const char *)sqlite3_column_text(st, 0), "wal") ==
		    0;
	sqlite3_finalize(st);
	/* A whole build goes through the WAL: cut it back once checkpointed,
	 * rather than keep a second copy of the index on disk. */
	return ok &&
	        exec(db,
	            "PRAGMA synchronous = NORMAL; "
	            "PRAGMA journal_size_limit = " WAL_KEEP_BYTES) == 0
	    ? 0
	    : -1;
}

struct search *
search_open(const char *path, const char **why, bool *damaged)
{
	struct search *s;
	long long appid, version, objects;

	*damaged = false;
	if (path != NULL && check_file(path, why, damaged) == -1)
		return NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		*why = "out of memory";
		return NULL;
	}
	buf_init(&s->text);
	buf_init(&s->terms);
	s->budget = SEARCH_BUDGET / SEARCH_BUDGET_STEP;
	s->prefix_docs_max = SEARCH_PREFIX_DOCS_MAX;
	s->memory = path == NULL;
	*why = "cannot be opened";
	if ((s->db = open_conn(path ? path : ":memory:", SQLITE_OPEN_CREATE)) ==
	    NULL)
		goto fail;
	/* A file of garbage opens; its first read says SQLITE_NOTADB. */
	*damaged = true;
	*why = "damaged";
	if ((path != NULL && set_wal(s->db) == -1) ||
	    (appid = query_int(s->db, "PRAGMA application_id")) < 0 ||
	    (version = query_int(s->db, "PRAGMA user_version")) < 0 ||
	    (objects = query_int(s->db, "SELECT count(*) FROM sqlite_schema")) <
	        0)
		goto fail;
	if (objects == 0 && create_schema(s->db) == -1)
		goto fail;
	if (objects > 0 &&
	    (appid != INDEX_APP_ID || version != INDEX_VERSION)) {
		*why = "made by another version of serai";
		goto fail;
	}
	if (prepare_writer(s) == -1 || open_tokenizer(s) == -1)
		goto fail;
	*damaged = false;
	*why = "cannot be opened";
	for (size_t i = 0; i < (s->memory ? 1 : SEARCH_READERS); i++) {
		struct reader *r = &s->readers[i];

		if (pthread_mutex_init(&r->lock, NULL) != 0)
			goto fail;
		s->nreaders++;
		r->s = s;
		/* In memory, the writer is the only connection. */
		r->db = s->memory ? s->db : open_conn(path, 0);
		if (r->db == NULL ||
		    (!s->memory &&
		        exec(r->db,
		            "PRAGMA query_only = 1; "
		            "PRAGMA mmap_size = " READER_MMAP_BYTES) == -1) ||
		    prepare_reader(r) == -1)
			goto fail;
	}
	return s;
fail:
	search_free(s);
	return NULL;
}

void
search_free(struct search *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->nreaders; i++) {
		struct reader *r = &s->readers[i];

		sqlite3_finalize(r->count);
		sqlite3_finalize(r->ranked);
		sqlite3_finalize(r->newest);
		sqlite3_finalize(r->expands);
		sqlite3_finalize(r->path_of);
		if (r->db != s->db)
			sqlite3_close(r->db);
		pthread_mutex_destroy(&r->lock);
	}
	sqlite3_finalize(s->doc_add);
	sqlite3_finalize(s->doc_del);
	sqlite3_finalize(s->fts_add);
	sqlite3_finalize(s->fts_del);
	sqlite3_finalize(s->fts_text);
	sqlite3_finalize(s->slot);
	sqlite3_finalize(s->voc_inc);
	sqlite3_finalize(s->voc_dec);
	sqlite3_finalize(s->voc_drop);
	sqlite3_finalize(s->doc_get);
	sqlite3_finalize(s->doc_walk);
	sqlite3_finalize(s->any);
	sqlite3_finalize(s->meta_get);
	sqlite3_finalize(s->meta_set);
	sqlite3_finalize(s->meta_del);
	if (s->tok != NULL)
		s->tokapi.xDelete(s->tok);
	/* The writer last: its close checkpoints the WAL into the file. */
	sqlite3_close(s->db);
	buf_free(&s->text);
	buf_free(&s->terms);
	free(s);
}

void
search_set_prefix_docs(struct search *s, unsigned long long docs)
{
	s->prefix_docs_max = docs;
}

void
search_set_budget(struct search *s, unsigned long instructions)
{
	s->budget = instructions / SEARCH_BUDGET_STEP;
}

static int
step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE) {
		db_warn(sqlite3_db_handle(st), "write");
		return -1;
	}
	return 0;
}

/*
 * A document's distinct words while it is tokenized: the words, NUL
 * ended, in a buffer, and a set of their offsets (+1; 0 is empty) by
 * hash.  A 4 MB article has near a million words but a few thousand
 * distinct ones: only those are kept, sorted or written.
 */
struct termset {
	struct buf *words;
	size_t *slot;
	size_t cap, n;
	bool failed;
};

static size_t *
term_slot(struct termset *t, const char *tok, size_t n)
{
	size_t i = hash_bytes(0xcbf29ce484222325ULL, tok, n) & (t->cap - 1);

	while (t->slot[i] != 0) {
		const char *w = t->words->p + t->slot[i] - 1;

		if (strncmp(w, tok, n) == 0 && w[n] == '\0')
			break;
		i = (i + 1) & (t->cap - 1);
	}
	return &t->slot[i];
}

static int
token_cb(void *arg, int flags, const char *tok, int n, int start, int end)
{
	struct termset *t = arg;
	size_t *slot;

	(void)flags;
	(void)start;
	(void)end;
	if (t->n + 1 > t->cap / 2) {
		size_t *old = t->slot, oldcap = t->cap;

		if ((t->slot = calloc(t->cap * 2, sizeof(*t->slot))) == NULL) {
			t->slot = old;
			t->failed = true;
			return SQLITE_NOMEM;
		}
		t->cap *= 2;
		for (size_t i = 0; i < oldcap; i++)
			if (old[i] != 0) {
				const char *w = t->words->p + old[i] - 1;

				*term_slot(t, w, strlen(w)) = old[i];
			}
		free(old);
	}
	if (*(slot = term_slot(t, tok, (size_t)n)) != 0)
		return SQLITE_OK;
	*slot = t->words->len + 1;
	buf_add(t->words, tok, (size_t)n);
	buf_addc(t->words, '\0');
	t->n++;
	if (buf_failed(t->words)) {
		t->failed = true;
		return SQLITE_NOMEM;
	}
	return SQLITE_OK;
}

/* The vocab counts of a document's words, up (delta 1) or down. */
static int
count_terms(struct search *s, const char *title, int tlen, const char *body,
    int blen, int delta)
{
	struct termset t = {&s->terms, NULL, 1024, 0, false};
	struct buf *b = &s->terms;
	int rv = 0;

	b->len = 0;
	if ((t.slot = calloc(t.cap, sizeof(*t.slot))) == NULL)
		return -1;
	if (s->tokapi.xTokenize(s->tok, &t, FTS5_TOKENIZE_DOCUMENT, title, tlen,
	        token_cb) != SQLITE_OK ||
	    s->tokapi.xTokenize(s->tok, &t, FTS5_TOKENIZE_DOCUMENT, body, blen,
	        token_cb) != SQLITE_OK ||
	    t.failed) {
		free(t.slot);
		return -1;
	}
	free(t.slot);
	/* Each distinct word once: vocab counts documents, not words. */
	for (size_t i = 0; i < b->len && rv == 0; i += strlen(b->p + i) + 1) {
		const char *w = b->p + i;

		if (delta > 0) {
			sqlite3_bind_text(s->voc_inc, 1, w, -1, SQLITE_STATIC);
			rv = step_done(s->voc_inc);
			continue;
		}
		sqlite3_bind_text(s->voc_drop, 1, w, -1, SQLITE_STATIC);
		if ((rv = step_done(s->voc_drop)) == 0 &&
		    sqlite3_changes(s->db) == 0) {
			sqlite3_bind_text(s->voc_dec, 1, w, -1, SQLITE_STATIC);
			rv = step_done(s->voc_dec);
		}
	}
	return rv;
}

/* An indexed article out: its words from vocab, its row from both. */
static int
drop_doc(struct search *s, long long id)
{
	sqlite3_stmt *t = s->fts_text;
	int rv = 0;

	if (!s->bulk) {
		sqlite3_bind_int64(t, 1, id);
		if (sqlite3_step(t) == SQLITE_ROW)
			rv = count_terms(s,
			    (const char *)sqlite3_column_text(t, 0),
			    sqlite3_column_bytes(t, 0),
			    (const char *)sqlite3_column_text(t, 1),
			    sqlite3_column_bytes(t, 1), -1);
		sqlite3_reset(t);
		if (rv == -1)
			return -1;
	}
	sqlite3_bind_int64(s->fts_del, 1, id);
	sqlite3_bind_int64(s->doc_del, 1, id);
	return step_done(s->fts_del) == 0 && step_done(s->doc_del) == 0 ? 0
	                                                                : -1;
}

/* The date part of an id: 0 undated, then seconds from year 0000. */
static int64_t
age_key(bool dated, int64_t when)
{
	if (!dated)
		return 0;
	if (when < -ID_EPOCH_OFFSET)
		return 1;
	if (when >= ID_KEY_MAX - ID_EPOCH_OFFSET)
		return ID_KEY_MAX;
	return when + ID_EPOCH_OFFSET + 1;
}

/* The first free id of that second, past any taken. */
static int
new_id(struct search *s, int64_t key, long long *id)
{
	long long lo = (long long)key << ID_SLOT_BITS;
	long long hi = lo + (1LL << ID_SLOT_BITS);
	int rc;

	*id = lo + 1;
	sqlite3_bind_int64(s->slot, 1, lo);
	sqlite3_bind_int64(s->slot, 2, hi);
	if ((rc = sqlite3_step(s->slot)) == SQLITE_ROW &&
	    sqlite3_column_type(s->slot, 0) != SQLITE_NULL)
		*id = sqlite3_column_int64(s->slot, 0) + 1;
	sqlite3_reset(s->slot);
	sqlite3_clear_bindings(s->slot);
	if (rc != SQLITE_ROW) {
		db_warn(s->db, "id");
		return -1;
	}
	if (*id >= hi) {
		log_warnx("search: too many articles dated the same second");
		return -1;
	}
	return 0;
}

static int
add_doc(struct search *s, long long id, const char *path,
    const struct search_stamp *st, const char *title, char *const *paras,
    size_t npara)
{
	struct buf *t = &s->text;
	size_t body;

	t->len = 0;
	add_segmented(t, title, strlen(title));
	buf_addc(t, '\0');
	body = t->len;
	for (size_t i = 0; i < npara; i++) {
		if (i > 0)
			buf_addc(t, '\n');
		add_segmented(t, paras[i], strlen(paras[i]));
	}
	buf_addc(t, '\0');
	if (buf_failed(t) || t->len > INT_MAX)
		return -1;
	sqlite3_bind_int64(s->fts_add, 1, id);
	sqlite3_bind_text(s->fts_add, 2, t->p, (int)body - 1, SQLITE_STATIC);
	sqlite3_bind_text(s->fts_add, 3, t->p + body, (int)(t->len - body - 1),
	    SQLITE_STATIC);
	sqlite3_bind_int64(s->doc_add, 1, id);
	sqlite3_bind_text(s->doc_add, 2, path, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s->doc_add, 3, (int64_t)st->dev);
	sqlite3_bind_int64(s->doc_add, 4, (int64_t)st->ino);
	sqlite3_bind_int64(s->doc_add, 5, st->size);
	sqlite3_bind_int64(s->doc_add, 6, st->mtime_ns);
	sqlite3_bind_int64(s->doc_add, 7, st->ctime_ns);
	if (step_done(s->fts_add) == -1 || step_done(s->doc_add) == -1)
		return -1;
	/* A whole build counts the words once, at the end (search_commit). */
	return s->bulk ? 0
	               : count_terms(s, t->p, (int)body - 1, t->p + body,
	                     (int)(t->len - body - 1), 1);
}

int
search_begin(struct search *s, bool *by_path)
{
	int any;

	if (s->memory) {
		pthread_mutex_lock(&s->readers[0].lock);
		/* The budget is the searches', not the sync's. */
		sqlite3_progress_handler(s->db, 0, NULL, NULL);
	}
	any = exec(s->db, "BEGIN IMMEDIATE") == -1 ? -1 : 0;
	if (any == 0) {
		any = sqlite3_step(s->any) == SQLITE_ROW
		    ? sqlite3_column_int(s->any, 0)
		    : -1;
		sqlite3_reset(s->any);
		if (any == -1) {
			db_warn(s->db, "docs");
			(void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		}
	}
	if (any == -1) {
		if (s->memory) {
			sqlite3_progress_handler(s->db, SEARCH_BUDGET_STEP,
			    progress, &s->readers[0]);
			pthread_mutex_unlock(&s->readers[0].lock);
		}
		return -1;
	}
	s->in_sync = true;
	s->bulk = !any;
	s->merge = any;
	s->delta = false;
	s->walk_done = s->have_cur = s->have_last = false;
	memset(&s->stats, 0, sizeof(s->stats));
	s->stats.built = s->bulk;
	/* A build and a full sync count the digest from nothing. */
	memset(&s->digest, 0, sizeof(s->digest));
	s->digest_ok = true;
	if (by_path != NULL)
		*by_path = s->merge;
	return 0;
}

int
search_begin_delta(struct search *s)
{
	if (search_begin(s, NULL) == -1)
		return -1;
	/* Rows one by one, the vocab kept up as it goes: never a build. */
	s->bulk = s->merge = false;
	s->stats.built = false;
	s->delta = true;
	/* From what the index holds; unknown, it stays unknown (no meta). */
	s->digest_ok = read_digest(s, &s->digest) == 0;
	return 0;
}

static void
read_stamp(sqlite3_stmt *q, int col, struct search_stamp *st)
{
	st->dev = (uint64_t)sqlite3_column_int64(q, col);
	st->ino = (uint64_t)sqlite3_column_int64(q, col + 1);
	st->size = sqlite3_column_int64(q, col + 2);
	st->mtime_ns = sqlite3_column_int64(q, col + 3);
	st->ctime_ns = sqlite3_column_int64(q, col + 4);
}

static bool
same_stamp(const struct search_stamp *a, const struct search_stamp *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	    a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

/* path's row into s->row: 1, or 0 if it has none; -1 on failure. */
static int
get_row(struct search *s, const char *path)
{
	sqlite3_stmt *q = s->doc_get;
	int rc;

	sqlite3_bind_text(q, 1, path, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		s->row.id = sqlite3_column_int64(q, 0);
		read_stamp(q, 1, &s->row.st);
	}
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		db_warn(s->db, "docs");
		return -1;
	}
	return rc == SQLITE_ROW;
}

/*
 * The walk's next row into s->cur, or walk_done.  The walk's own writes
 * (a row dropped, one written at the path just named) may or may not
 * show in it, SQLite says, harmlessly: a row at or before the last path
 * named is passed over, it has been dealt with.  A path too long for
 * any article's is gone from the archive.
 */
static int
walk_step(struct search *s)
{
	sqlite3_stmt *q = s->doc_walk;
	const char *p;
	int rc;

	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		p = (const char *)sqlite3_column_text(q, 0);
		if (p == NULL || (s->have_last && strcmp(p, s->last) <= 0))
			continue;
		s->cur.id = sqlite3_column_int64(q, 1);
		if ((size_t)sqlite3_column_bytes(q, 0) >= sizeof(s->cur.path)) {
			if (drop_doc(s, s->cur.id) == -1)
				return -1;
			s->stats.removed++;
			continue;
		}
		memcpy(s->cur.path, p, (size_t)sqlite3_column_bytes(q, 0) + 1);
		read_stamp(q, 2, &s->cur.st);
		s->have_cur = true;
		return 0;
	}
	if (rc != SQLITE_DONE) {
		db_warn(s->db, "docs");
		return -1;
	}
	s->walk_done = true;
	return 0;
}

/*
 * A full sync's step to path: the rows before it are of articles gone,
 * dropped; path's own row into s->row: 1, or 0 if it has none.
 */
static int
walk_to(struct search *s, const char *path)
{
	int c;

	if (s->have_last && strcmp(path, s->last) <= 0) {
		log_warnx("search: %s: not in path order", path);
		return -1;
	}
	for (;;) {
		if (!s->have_cur && !s->walk_done && walk_step(s) == -1)
			return -1;
		if (s->walk_done || (c = strcmp(s->cur.path, path)) > 0)
			c = 1;
		else {
			s->have_cur = false;
			if (c < 0) {
				if (drop_doc(s, s->cur.id) == -1)
					return -1;
				s->stats.removed++;
				continue;
			}
			s->row = s->cur;
		}
		break;
	}
	if ((size_t)snprintf(s->last, sizeof(s->last), "%s", path) >=
	    sizeof(s->last)) {
		log_warnx("search: %s: path too long", path);
		return -1;
	}
	s->have_last = true;
	return c == 0;
}

int
search_forget(struct search *s, const char *path)
{
	int have;

	if ((have = get_row(s, path)) <= 0)
		return have;
	if (drop_doc(s, s->row.id) == -1)
		return -1;
	digest_sub(&s->digest, path, &s->row.st);
	s->stats.removed++;
	return 0;
}

long long
search_id(struct search *s, const char *path)
{
	return get_row(s, path) == 1 ? s->row.id : 0;
}

int
search_doc(struct search *s, const char *path, const struct search_stamp *st,
    bool dated, int64_t when, const char *title, char *const *paras,
    size_t npara, long long *idp)
{
	int64_t key = age_key(dated, when);
	long long id = 0;
	int have;

	have = s->bulk ? 0 : s->merge ? walk_to(s, path) : get_row(s, path);
	if (have == -1)
		return -1;
	if (have && same_stamp(&s->row.st, st)) {
		s->stats.kept++;
		/* A full sync counts what it keeps; a delta's digest has it. */
		if (s->merge)
			search_digest_add(&s->digest, path, st);
		*idp = s->row.id;
		return 0;
	}
	if (have) {
		if (drop_doc(s, s->row.id) == -1)
			return -1;
		if (s->delta)
			digest_sub(&s->digest, path, &s->row.st);
		/* The same date: the same id. */
		if (s->row.id >> ID_SLOT_BITS == key)
			id = s->row.id;
	}
	if ((id == 0 && new_id(s, key, &id) == -1) ||
	    add_doc(s, id, path, st, title, paras, npara) == -1)
		return -1;
	search_digest_add(&s->digest, path, st);
	if (have)
		s->stats.changed++;
	else
		s->stats.added++;
	*idp = id;
	return 0;
}

static void
sync_end(struct search *s)
{
	sqlite3_reset(s->doc_walk);
	s->in_sync = false;
	if (s->memory) {
		sqlite3_progress_handler(
		    s->db, SEARCH_BUDGET_STEP, progress, &s->readers[0]);
		pthread_mutex_unlock(&s->readers[0].lock);
	}
}

/* The digest, in the commit it describes. */
static int
write_digest(struct search *s)
{
	sqlite3_stmt *q = s->digest_ok ? s->meta_set : s->meta_del;

	if (s->digest_ok) {
		sqlite3_bind_int64(q, 1, (sqlite3_int64)s->digest.sum);
		sqlite3_bind_int64(q, 2, (sqlite3_int64)s->digest.count);
	}
	return step_done(q);
}

int
search_commit(struct search *s, struct search_stats *stats)
{
	/*
	 * Whatever a full sync did not name is gone from the archive: the
	 * rest of the walk.  A delta's caller named the gone (search_forget)
	 * itself.
	 */
	while (s->merge && !s->walk_done) {
		if (!s->have_cur && walk_step(s) == -1)
			return -1;
		if (!s->have_cur)
			continue;
		s->have_cur = false;
		if (drop_doc(s, s->cur.id) == -1)
			return -1;
		s->stats.removed++;
	}
	sqlite3_reset(s->doc_walk);
	/*
	 * Every indexed word with the documents it is in, so that what a
	 * prefix expands to is known before FTS5 merges it (see
	 * SEARCH_PREFIX_DOCS_MAX); a sync of a few articles keeps it up as
	 * it goes, a whole build counts it here in one pass.
	 */
	if (s->bulk &&
	    exec(s->db,
	        "DELETE FROM vocab; "
	        "CREATE VIRTUAL TABLE temp.v USING fts5vocab(main, fts, row); "
	        "INSERT INTO vocab SELECT term, doc FROM temp.v; "
	        "DROP TABLE temp.v") == -1)
		return -1;
	if (write_digest(s) == -1 || exec(s->db, "COMMIT") == -1)
		return -1;
	/* The whole index went through the WAL: into the file, and the WAL
	 * emptied now rather than at the next sync.  Busy readers only
	 * leave it for later. */
	if (s->bulk && !s->memory)
		(void)sqlite3_wal_checkpoint_v2(
		    s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	if (stats != NULL)
		*stats = s->stats;
	sync_end(s);
	return 0;
}

void
search_rollback(struct search *s)
{
	if (!s->in_sync)
		return;
	sqlite3_reset(s->doc_walk);
	(void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	sync_end(s);
}

static bool
is_space(unsigned char c)
{
	return c <= ' ' || c == 0x7f;
}

/*
 * Whether the term just added at out[start..] (after its space) is one of
 * the terms before it: each is '"'...'"' with maybe '*', a space apart,
 * and '"' occurs only at their ends.
 */
static bool
seen_before(const struct buf *out, size_t start)
{
	const char *t = out->p + start + (start > 0);
	size_t tlen = out->len - (size_t)(t - out->p);

	for (size_t i = 0; i + tlen <= start; i++)
		if ((i == 0 || out->p[i - 1] == ' ') &&
		    memcmp(out->p + i, t, tlen) == 0 &&
		    (i + tlen == start || out->p[i + tlen] == ' '))
			return true;
	return false;
}

/*
 * Too many prefix terms, or one too short (see SEARCH_PREFIX_MAX): its
 * last word is what FTS5 expands.
 */
static bool
prefixes_too_broad(const char *expr)
{
	size_t nprefix = 0;
	const char *p = expr, *open, *close, *word;

	while ((open = strchr(p, '"')) != NULL &&
	    (close = strchr(open + 1, '"')) != NULL) {
		p = close + 1;
		if (*p != '*')
			continue;
		if (++nprefix > SEARCH_PREFIX_MAX)
			return true;
		for (word = close; word > open + 1 && word[-1] != ' '; word--)
			;
		if ((size_t)(close - word) < SEARCH_PREFIX_MIN)
			return true;
	}
	return false;
}

/*
 * A quoted term: '"' cannot occur inside, the caller splits on it.  CJK
 * characters are spaced out as in the index, which makes a run of them
 * a phrase.
 */
static void
add_term(struct buf *out, size_t *n, const char *p, size_t len, bool prefix)
{
	size_t start, i = 0;
	bool any = false;

	if (*n >= SEARCH_TERMS_MAX)
		return;
	start = out->len;
	if (*n > 0)
		buf_addc(out, ' ');
	buf_addc(out, '"');
	while (i < len) {
		unsigned cp;
		size_t k = utf8_next(p + i, len - i, &cp);

		/* '*' only counts at the end; controls become spaces. */
		if (p[i] == '*')
			;
		else if (is_space((unsigned char)p[i]))
			buf_addc(out, ' ');
		else {
			add_segmented(out, p + i, k);
			any = true;
		}
		i += k;
	}
	if (!any) {
		out->len = start;
		return;
	}
	buf_addc(out, '"');
	if (prefix)
		buf_addc(out, '*');
	/* The same term twice is the same work twice for nothing. */
	if (!buf_failed(out) && seen_before(out, start)) {
		out->len = start;
		return;
	}
	(*n)++;
}

size_t
search_sanitise(const char *q, size_t len, struct buf *out)
{
	size_t i = 0, n = 0;

	while (i < len) {
		size_t start, end;
		bool prefix = false;

		if (is_space((unsigned char)q[i])) {
			i++;
			continue;
		}
		if (q[i] == '"') {
			/* A phrase; an unbalanced one runs to the end. */
			start = ++i;
			while (i < len && q[i] != '"')
				i++;
			end = i;
			if (i < len)
				i++;
			while (i < len && q[i] == '*') {
				prefix = true;
				i++;
			}
		} else {
			start = i;
			while (i < len && !is_space((unsigned char)q[i]) &&
			    q[i] != '"')
				i++;
			end = i;
			prefix = q[end - 1] == '*';
		}
		add_term(out, &n, q + start, end - start, prefix);
	}
	buf_addc(out, '\0');
	return n;
}

bool
search_has_cjk(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned cp;

		i += utf8_next(s + i, len - i, &cp);
		if (cjk(cp))
			return true;
	}
	return false;
}

/* 1 when the budget ran out, -1 on another failure. */
static int
failed(struct reader *rd, int rc)
{
	if (rc == SQLITE_INTERRUPT)
		return 1;
	db_warn(rd->db, "query");
	return -1;
}

static char *fold(const char *p, size_t len);

/*
 * The documents that the words of the expression's prefix terms are in,
 * added up: what FTS5 merges to expand them (twice: count, then page).
 * The prefix is folded as the tokenizer folds words; the words that
 * begin with it are a range of the vocab table, up to the prefix with a
 * byte above any UTF-8 appended.
 */
static unsigned long long
prefix_docs(struct reader *s, const char *expr)
{
	const char *p = expr, *open, *close, *word;
	unsigned long long total = 0;
	char *f, *hi;
	size_t n;

	while ((open = strchr(p, '"')) != NULL &&
	    (close = strchr(open + 1, '"')) != NULL) {
		p = close + 1;
		if (*p != '*')
			continue;
		for (word = close; word > open + 1 && word[-1] != ' '; word--)
			;
		if ((f = fold(word, (size_t)(close - word))) == NULL)
			return ULLONG_MAX;
		n = strlen(f);
		if ((hi = malloc(n + 2)) == NULL) {
			free(f);
			return ULLONG_MAX;
		}
		memcpy(hi, f, n);
		hi[n] = '\xf5';
		hi[n + 1] = '\0';
		sqlite3_bind_text(s->expands, 1, f, -1, SQLITE_STATIC);
		sqlite3_bind_text(s->expands, 2, hi, -1, SQLITE_STATIC);
		if (sqlite3_step(s->expands) == SQLITE_ROW)
			total += (unsigned long long)sqlite3_column_int64(
			    s->expands, 0);
		else
			total = ULLONG_MAX;
		sqlite3_reset(s->expands);
		sqlite3_clear_bindings(s->expands);
		free(hi);
		free(f);
		if (total == ULLONG_MAX)
			break;
	}
	return total;
}

static int
run_count(struct reader *s, const char *expr, size_t *total)
{
	sqlite3_stmt *st = s->count;
	int rc;

	sqlite3_bind_text(st, 1, expr, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, SEARCH_RANK_MAX + 1);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*total = (size_t)sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_OK ? 0 : failed(s, rc);
}

static int
run_page(struct reader *s, const char *expr, struct search_result *r)
{
	sqlite3_stmt *st = r->newest ? s->newest : s->ranked;
	int rc;

	sqlite3_bind_text(st, 1, expr, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, SEARCH_PAGE_SIZE);
	sqlite3_bind_int64(
	    st, 3, (sqlite3_int64)(r->page - 1) * SEARCH_PAGE_SIZE);
	while (
	    r->nids < SEARCH_PAGE_SIZE && (rc = sqlite3_step(st)) == SQLITE_ROW)
		r->ids[r->nids++] = sqlite3_column_int64(st, 0);
	if (rc == SQLITE_ROW)
		rc = SQLITE_DONE;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return failed(s, rc);
	/* A hit synced away meanwhile has no path: "", found nowhere. */
	for (size_t i = 0; i < r->nids; i++) {
		const unsigned char *p;

		r->paths[i][0] = '\0';
		sqlite3_bind_int64(s->path_of, 1, r->ids[i]);
		if ((rc = sqlite3_step(s->path_of)) == SQLITE_ROW &&
		    (p = sqlite3_column_text(s->path_of, 0)) != NULL)
			snprintf(r->paths[i], sizeof(r->paths[i]), "%s", p);
		sqlite3_reset(s->path_of);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return failed(s, rc);
	}
	return 0;
}

/* A free read connection, or else the first one's turn. */
static struct reader *
take_reader(struct search *s)
{
	for (size_t i = 0; i < s->nreaders; i++)
		if (pthread_mutex_trylock(&s->readers[i].lock) == 0)
			return &s->readers[i];
	pthread_mutex_lock(&s->readers[0].lock);
	return &s->readers[0];
}

enum search_status
search_query(struct search *s, const char *q, size_t len, size_t page,
    struct search_result *r)
{
	struct reader *rd;
	struct buf expr;
	int rv;

	memset(r, 0, sizeof(*r));
	r->page = page < 1 ? 1 : page;
	if (len > SEARCH_QUERY_MAX)
		return SEARCH_TOO_LONG;
	buf_init(&expr);
	if (search_sanitise(q, len, &expr) == 0 || buf_failed(&expr)) {
		rv = buf_failed(&expr) ? -1 : 0;
		buf_free(&expr);
		return rv == 0 ? SEARCH_EMPTY : SEARCH_FAILED;
	}
	if (prefixes_too_broad(expr.p)) {
		buf_free(&expr);
		return SEARCH_TOO_BROAD;
	}
	rd = take_reader(s);
	rd->ticks = 0;
	rv = prefix_docs(rd, expr.p) > s->prefix_docs_max ? 1 : 0;
	if (rv == 0)
		rv = run_count(rd, expr.p, &r->total);
	if (r->total > SEARCH_RANK_MAX) {
		r->total = SEARCH_RANK_MAX;
		r->newest = true;
	}
	if (rv == 0 && r->total > 0 && r->page <= SEARCH_PAGE_MAX)
		rv = run_page(rd, expr.p, r);
	pthread_mutex_unlock(&rd->lock);
	buf_free(&expr);
	if (rv != 0) {
		r->nids = 0;
		return rv > 0 ? SEARCH_TOO_BROAD : SEARCH_FAILED;
	}
	return SEARCH_OK;
}

/* Snippets: how terms match words is told at search_terms (search.h). */
static char *
fold(const char *p, size_t len)
{
	utf8proc_uint8_t *out = NULL;
	char *s;

	for (size_t i = 0; i < len; i++)
		if ((unsigned char)p[i] >= 0x80) {
			if (utf8proc_map((const utf8proc_uint8_t *)p,
			        (utf8proc_ssize_t)len, &out,
			        UTF8PROC_STABLE | UTF8PROC_COMPOSE |
			            UTF8PROC_CASEFOLD | UTF8PROC_STRIPMARK) < 0)
				return NULL;
			return (char *)out;
		}
	if ((s = malloc(len + 1)) == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++)
		s[i] = (p[i] >= 'A' && p[i] <= 'Z') ? (char)(p[i] + 32) : p[i];
	s[len] = '\0';
	return s;
}

/* unicode61's token characters: letters, numbers and marks. */
static bool
word_char(const char *p, size_t n, size_t *k)
{
	unsigned cp;
	utf8proc_category_t c;

	*k = utf8_next(p, n, &cp);
	if (cp < 0x80)
		return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
		    (cp >= '0' && cp <= '9');
	if (cjk(cp))
		return false;
	c = utf8proc_category((utf8proc_int32_t)cp);
	return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_ND) ||
	    c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO;
}

void
search_terms_init(struct search_terms *terms, const char *q, size_t len)
{
	struct search_needle *v = terms->v;
	struct buf expr;
	size_t n = 0;
	const char *p, *end;

	terms->n = 0;
	/* The sanitiser's terms: each is "...", maybe followed by '*'. */
	buf_init(&expr);
	search_sanitise(q, len, &expr);
	if (buf_failed(&expr)) {
		buf_free(&expr);
		return;
	}
	p = expr.p;
	end = expr.p + strlen(expr.p);
	while (p < end && n < SEARCH_TERMS_MAX) {
		const char *t, *te, *w, *we;
		size_t k;

		if ((t = memchr(p, '"', (size_t)(end - p))) == NULL)
			break;
		t++;
		if ((te = memchr(t, '"', (size_t)(end - t))) == NULL)
			break;
		p = te + 1;
		v[n].prefix = p < end && *p == '*';
		v[n].cjk = search_has_cjk(t, (size_t)(te - t));
		if (v[n].cjk) {
			/* The characters without the spaces put between. */
			struct buf c;

			buf_init(&c);
			for (const char *x = t; x < te; x++)
				if (*x != ' ')
					buf_addc(&c, *x);
			buf_addc(&c, '\0');
			v[n].folded = buf_release(&c, NULL);
		} else {
			for (w = t;
			     w < te && !word_char(w, (size_t)(te - w), &k);
			     w += k)
				;
			for (we = w;
			     we < te && word_char(we, (size_t)(te - we), &k);
			     we += k)
				;
			if (we == w)
				continue;
			/* A phrase's first word is whole, not a prefix. */
			if (we < te)
				v[n].prefix = false;
			v[n].folded = fold(w, (size_t)(we - w));
		}
		if (v[n].folded != NULL && v[n].folded[0] != '\0')
			n++;
		else
			free(v[n].folded);
	}
	buf_free(&expr);
	terms->n = n;
}

void
search_terms_free(struct search_terms *t)
{
	for (size_t j = 0; j < t->n; j++)
		free(t->v[j].folded);
	t->n = 0;
}

/* Where in p the first word matching a needle starts, or NULL. */
static const char *
find_match(const char *p, size_t len, const struct search_needle *v, size_t nv)
{
	const char *best = NULL;
	size_t i = 0, k;

	for (size_t j = 0; j < nv; j++)
		if (v[j].cjk) {
			const char *m =
			    memmem(p, len, v[j].folded, strlen(v[j].folded));

			if (m != NULL && (best == NULL || m < best))
				best = m;
		}
	while (i < len && (best == NULL || p + i < best)) {
		size_t start;
		char *f;

		if (!word_char(p + i, len - i, &k)) {
			i += k;
			continue;
		}
		start = i;
		while (i < len && word_char(p + i, len - i, &k))
			i += k;
		if ((f = fold(p + start, i - start)) == NULL)
			continue;
		for (size_t j = 0; j < nv; j++) {
			size_t fl = strlen(v[j].folded);

			if (v[j].cjk)
				continue;
			if (v[j].prefix ? strncmp(f, v[j].folded, fl) == 0
			                : strcmp(f, v[j].folded) == 0) {
				best = p + start;
				break;
			}
		}
		free(f);
	}
	return best;
}

/* Back to the start of a UTF-8 sequence. */
static size_t
char_start(const char *p, size_t i)
{
	while (i > 0 && ((unsigned char)p[i] & 0xc0) == 0x80)
		i--;
	return i;
}

void
search_snippet(struct buf *out, const struct search_terms *t,
    char *const *paras, size_t npara)
{
	size_t pi = 0, len, from, to, left = SNIPPET_SCAN_MAX, n;
	const char *p = npara > 0 ? paras[0] : "", *m = NULL;

	for (size_t i = 0; i < npara && m == NULL && left > 0; i++) {
		bool cut = (n = strnlen(paras[i], left)) == left;

		if (cut)
			n = char_start(paras[i], n);
		left = cut ? 0 : left - n;
		if ((m = find_match(paras[i], n, t->v, t->n)) != NULL)
			pi = i;
	}
	if (m != NULL)
		p = paras[pi];
	/* Enough of the paragraph to cut the snippet from, and no more. */
	len = strnlen(p, SNIPPET_SCAN_MAX + SNIPPET_BYTES + 1);
	from = m == NULL || (size_t)(m - p) <= SNIPPET_BEFORE
	    ? 0
	    : char_start(p, (size_t)(m - p) - SNIPPET_BEFORE);
	/* Start on a word where a space is at hand. */
	if (from > 0) {
		const char *sp = memchr(p + from, ' ', (size_t)(m - p) - from);

		if (sp != NULL)
			from = (size_t)(sp - p) + 1;
	}
	to = len - from <= SNIPPET_BYTES ? len
	                                 : char_start(p, from + SNIPPET_BYTES);
	if (to < len) {
		const char *sp = p + to;

		while (sp > p + from && *sp != ' ')
			sp--;
		if (sp > p + from && (m == NULL || sp > m))
			to = (size_t)(sp - p);
	}
	if (from > 0)
		buf_adds(out, "...");
	for (size_t i = from; i < to; i++)
		buf_addc(out, is_space((unsigned char)p[i]) ? ' ' : p[i]);
	if (to < len)
		buf_adds(out, "...");
}
