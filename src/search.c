/*
 * Full-text search over one snapshot with SQLite FTS5.
 *
 * One contentless FTS5 table (unicode61 with remove_diacritics 2: case
 * and accent folding, prefixes, phrases) holds the index and nothing
 * else: the text itself is already in the snapshot, and the snippets are
 * cut from it here.  Storing it again in SQLite, as an external-content
 * table does, doubled the memory of the archive.
 *
 * Chinese, Japanese and Korean are written without spaces, and unicode61
 * would take a whole run of ideographs as one token.  Each such character
 * is made a token of its own, in the indexed text and in the query, and a
 * query's run of them becomes a phrase: "科学院" finds the three
 * characters next to each other anywhere in a longer run.  That replaces
 * a second (trigram) index, which was three times the size of the text.
 *
 * Rowids are the caller's ids, larger for newer articles.  A query with
 * more than SEARCH_RANK_MAX hits is not ranked (bm25 would score every
 * hit): its hits come newest first, which FTS5 reads straight off its
 * doclists and stops after the page.  Counting stops there too.
 *
 * Threads: the snapshot is shared by the workers, and an SQLite
 * connection must not be used by two threads at once.  One connection
 * guarded by our own mutex is enough: a query is short and bounded by
 * the progress handler, and statements are prepared once.  So the
 * connection is opened with SQLITE_OPEN_NOMUTEX: SQLite's own mutex
 * would be a second lock around the same thing.
 */
#include "search.h"

#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

struct search {
	sqlite3 *db;
	pthread_mutex_t lock;
	sqlite3_stmt *add;
	sqlite3_stmt *count;
	sqlite3_stmt *ranked;
	sqlite3_stmt *newest;
	sqlite3_stmt *expands; /* documents a prefix's words are in */
	unsigned long budget;  /* progress callbacks allowed per query */
	unsigned long long prefix_docs_max;
	unsigned long ticks; /* used by the query running now */
	struct buf text;     /* search_add's scratch */
};

static void
db_warn(struct search *s, const char *what)
{
	log_warnx("search: %s: %s", what, sqlite3_errmsg(s->db));
}

static int
exec(struct search *s, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(s->db, sql, NULL, NULL, &err) != SQLITE_OK) {
		log_warnx("search: %s", err ? err : "out of memory");
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

static int
prepare(struct search *s, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st,
	        NULL) != SQLITE_OK) {
		db_warn(s, "prepare");
		return -1;
	}
	return 0;
}

/* Non-zero ends the statement with SQLITE_INTERRUPT. */
static int
progress(void *arg)
{
	struct search *s = arg;

	return ++s->ticks > s->budget;
}

static int prepare_queries(struct search *);

static struct search *
open_db(void)
{
	struct search *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	if (pthread_mutex_init(&s->lock, NULL) != 0) {
		free(s);
		return NULL;
	}
	buf_init(&s->text);
	s->budget = SEARCH_BUDGET / SEARCH_BUDGET_STEP;
	s->prefix_docs_max = SEARCH_PREFIX_DOCS_MAX;
	if (sqlite3_open_v2(":memory:", &s->db,
	        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	            SQLITE_OPEN_NOMUTEX,
	        NULL) != SQLITE_OK) {
		log_warnx("search: cannot open an in-memory database");
		search_free(s);
		return NULL;
	}
	return s;
}

struct search *
search_new(void)
{
	struct search *s;

	if ((s = open_db()) == NULL)
		return NULL;
	if (exec(s,
	        "PRAGMA journal_mode = OFF; BEGIN; "
	        "CREATE VIRTUAL TABLE fts USING fts5(title, body, "
	        "content = '', tokenize = 'unicode61 remove_diacritics 2'); "
	        "INSERT INTO fts(fts, rank) VALUES('rank', 'bm25(10.0, "
	        "1.0)')") == -1 ||
	    prepare(s, "INSERT INTO fts(rowid, title, body) VALUES(?1, ?2, ?3)",
	        &s->add) == -1) {
		search_free(s);
		return NULL;
	}
	return s;
}

/*
 * The cache file: a header, then the database as sqlite3_serialize
 * makes it.  The header is written last and names the payload's length
 * and checksum, so a file cut short by a crash is only a miss.
 */
#define CACHE_MAGIC "serai search 2\n" /* 2: the vocab table */

struct cache_header {
	char magic[16];
	uint64_t key; /* search_key over what was indexed */
	uint64_t len; /* of the payload */
	uint64_t sum; /* search_key over the payload */
};

uint64_t
search_key(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t w;

	/* Not cryptographic: it tells an unchanged archive from a changed
	 * one, written by the archive's own keeper. */
	h ^= len * 0x9e3779b97f4a7c15ULL;
	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&w, p, 8);
		h = (h ^ w) * 0x100000001b3ULL;
		h ^= h >> 29;
	}
	w = 0;
	memcpy(&w, p, len);
	h = (h ^ w) * 0x100000001b3ULL;
	return h ^ (h >> 32);
}

static int
read_all(int fd, void *buf, size_t len, off_t off)
{
	char *p = buf;

	while (len > 0) {
		ssize_t r = pread(fd, p, len, off);

		if (r <= 0)
			return -1;
		p += r;
		len -= (size_t)r;
		off += r;
	}
	return 0;
}

static int
write_all(int fd, const void *buf, size_t len, off_t off)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t r = pwrite(fd, p, len, off);

		if (r <= 0)
			return -1;
		p += r;
		len -= (size_t)r;
		off += r;
	}
	return 0;
}

struct search *
search_load_cache(int fd, uint64_t key)
{
	struct cache_header h;
	struct search *s;
	unsigned char *db;

	if (read_all(fd, &h, sizeof(h), 0) == -1 ||
	    memcmp(h.magic, CACHE_MAGIC, sizeof(h.magic)) != 0 ||
	    h.key != key || h.len == 0 || h.len > (uint64_t)INT64_MAX)
		return NULL;
	if ((db = sqlite3_malloc64(h.len)) == NULL)
		return NULL;
	if (read_all(fd, db, (size_t)h.len, sizeof(h)) == -1 ||
	    search_key(0, db, (size_t)h.len) != h.sum) {
		sqlite3_free(db);
		return NULL;
	}
	if ((s = open_db()) == NULL) {
		sqlite3_free(db);
		return NULL;
	}
	/* SQLite owns db from here, even on failure. */
	if (sqlite3_deserialize(s->db, "main", db, (sqlite3_int64)h.len,
	        (sqlite3_int64)h.len,
	        SQLITE_DESERIALIZE_FREEONCLOSE |
	            SQLITE_DESERIALIZE_RESIZEABLE) != SQLITE_OK ||
	    prepare_queries(s) == -1) {
		search_free(s);
		return NULL;
	}
	return s;
}

int
search_save_cache(struct search *s, int fd, uint64_t key)
{
	struct cache_header h;
	sqlite3_int64 len;
	unsigned char *db;
	int rv = -1;

	if ((db = sqlite3_serialize(s->db, "main", &len, 0)) == NULL)
		return -1;
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, CACHE_MAGIC, sizeof(h.magic));
	h.key = key;
	h.len = (uint64_t)len;
	h.sum = search_key(0, db, (size_t)len);
	if (ftruncate(fd, 0) == 0 &&
	    write_all(fd, db, (size_t)len, sizeof(h)) == 0 &&
	    fdatasync(fd) == 0 && write_all(fd, &h, sizeof(h), 0) == 0 &&
	    fdatasync(fd) == 0)
		rv = 0;
	sqlite3_free(db);
	return rv;
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

int
search_add(struct search *s, long long id, const char *title,
    char *const *paras, size_t npara)
{
	struct buf *t = &s->text;
	size_t body;
	int rv = 0;

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
	if (buf_failed(t))
		return -1;
	sqlite3_bind_int64(s->add, 1, id);
	sqlite3_bind_text(s->add, 2, t->p, (int)body - 1, SQLITE_STATIC);
	sqlite3_bind_text(
	    s->add, 3, t->p + body, (int)(t->len - body - 1), SQLITE_STATIC);
	if (sqlite3_step(s->add) != SQLITE_DONE) {
		db_warn(s, "insert");
		rv = -1;
	}
	sqlite3_reset(s->add);
	return rv;
}

static int
prepare_queries(struct search *s)
{
	/* The LIMIT stops the count at the first rows past the rank cap. */
	if (prepare(s,
	        "SELECT count(*) FROM (SELECT rowid FROM fts WHERE fts "
	        "MATCH ?1 LIMIT ?2)",
	        &s->count) == -1 ||
	    /* ORDER BY rank is sorted inside FTS5, by the bm25 set above. */
	    prepare(s,
	        "SELECT rowid FROM fts WHERE fts MATCH ?1 ORDER BY rank "
	        "LIMIT ?2 OFFSET ?3",
	        &s->ranked) == -1 ||
	    prepare(s,
	        "SELECT rowid FROM fts WHERE fts MATCH ?1 ORDER BY rowid "
	        "DESC LIMIT ?2 OFFSET ?3",
	        &s->newest) == -1 ||
	    prepare(s,
	        "SELECT coalesce(sum(doc), 0) FROM vocab WHERE term >= ?1 AND "
	        "term < ?2",
	        &s->expands) == -1)
		return -1;
	sqlite3_progress_handler(s->db, SEARCH_BUDGET_STEP, progress, s);
	return 0;
}

int
search_finish(struct search *s)
{
	buf_free(&s->text);
	sqlite3_finalize(s->add);
	s->add = NULL;
	if (exec(s, "COMMIT") == -1)
		return -1;
	/*
	 * Every indexed word with the documents it is in, so that what a
	 * prefix expands to is known before FTS5 merges it (see
	 * SEARCH_PREFIX_DOCS_MAX); saved in the cache with the index.
	 */
	if (exec(s,
	        "CREATE VIRTUAL TABLE temp.v USING fts5vocab(main, fts, row); "
	        "CREATE TABLE vocab(term TEXT PRIMARY KEY, doc INTEGER) "
	        "WITHOUT ROWID; "
	        "INSERT INTO vocab SELECT term, doc FROM temp.v; "
	        "DROP TABLE temp.v") == -1)
		return -1;
	return prepare_queries(s);
}

void
search_free(struct search *s)
{
	if (s == NULL)
		return;
	sqlite3_finalize(s->add);
	sqlite3_finalize(s->count);
	sqlite3_finalize(s->ranked);
	sqlite3_finalize(s->newest);
	sqlite3_finalize(s->expands);
	sqlite3_close(s->db);
	pthread_mutex_destroy(&s->lock);
	buf_free(&s->text);
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
failed(struct search *s, int rc)
{
	if (rc == SQLITE_INTERRUPT)
		return 1;
	db_warn(s, "query");
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
prefix_docs(struct search *s, const char *expr)
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
run_count(struct search *s, const char *expr, size_t *total)
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
run_page(struct search *s, const char *expr, struct search_result *r)
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
	return rc == SQLITE_DONE ? 0 : failed(s, rc);
}

enum search_status
search_query(struct search *s, const char *q, size_t len, size_t page,
    struct search_result *r)
{
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
	pthread_mutex_lock(&s->lock);
	s->ticks = 0;
	rv = prefix_docs(s, expr.p) > s->prefix_docs_max ? 1 : 0;
	if (rv == 0)
		rv = run_count(s, expr.p, &r->total);
	if (r->total > SEARCH_RANK_MAX) {
		r->total = SEARCH_RANK_MAX;
		r->newest = true;
	}
	if (rv == 0 && r->total > 0 && r->page <= SEARCH_PAGE_MAX)
		rv = run_page(s, expr.p, r);
	pthread_mutex_unlock(&s->lock);
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
