/*
 * Full-text search over one snapshot with SQLite FTS5.
 *
 * The text is stored once, in a plain table "docs", and indexed twice
 * through external-content FTS5 tables: "fts_word" (unicode61 with
 * remove_diacritics 2: case and accent folding, prefixes) and "fts_tri"
 * (trigram: substrings, so Chinese text, written without spaces, is
 * findable).
 *
 * Threads: the snapshot is shared by the workers, and an SQLite
 * connection must not be used by two threads at once.  One connection
 * guarded by our own mutex is enough: a query is short and bounded by
 * the progress handler, and statements are prepared once.  Per-worker
 * connections on a shared-cache in-memory database would add
 * shared-cache locking (which SQLite discourages), a unique name per
 * snapshot and a connection per worker to close; the mutex keeps one
 * connection to open and close with the snapshot.  So the connection is
 * opened with SQLITE_OPEN_NOMUTEX: SQLite's own mutex would be a second
 * lock around the same thing.
 */
#include "search.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

/* Terms after the first ones are dropped: each is a doclist to merge. */
#define SEARCH_TERMS_MAX 16
/* Snippet length, in tokens (a trigram table's tokens are characters). */
#define SNIPPET_WORDS 16
#define SNIPPET_CHARS 48

enum { TBL_WORD, TBL_TRI, NTBL };
static const char *const tables[NTBL] = {"fts_word", "fts_tri"};
static const char *const tokenizers[NTBL] = {
    "unicode61 remove_diacritics 2", "trigram"};
static const int snippet_tokens[NTBL] = {SNIPPET_WORDS, SNIPPET_CHARS};

struct search {
	sqlite3 *db;
	pthread_mutex_t lock;
	sqlite3_stmt *add;
	sqlite3_stmt *count[NTBL];
	sqlite3_stmt *page[NTBL];
	unsigned long budget; /* progress callbacks allowed per query */
	unsigned long ticks;  /* used by the query running now */
	long long nextid;
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

/* Non-zero ends the statement with SQLITE_INTERRUPT. */
static int
progress(void *arg)
{
	struct search *s = arg;

	return ++s->ticks > s->budget;
}

struct search *
search_new(void)
{
	struct search *s;
	char sql[512];

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	if (pthread_mutex_init(&s->lock, NULL) != 0) {
		free(s);
		return NULL;
	}
	s->budget = SEARCH_BUDGET / SEARCH_BUDGET_STEP;
	if (sqlite3_open_v2(":memory:", &s->db,
	        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	            SQLITE_OPEN_NOMUTEX,
	        NULL) != SQLITE_OK) {
		log_warnx("search: cannot open an in-memory database");
		search_free(s);
		return NULL;
	}
	if (exec(s,
	        "PRAGMA journal_mode = OFF; BEGIN; CREATE TABLE docs("
	        "id INTEGER PRIMARY KEY, title, body, section, path, "
	        "date)") == -1)
		goto fail;
	for (int t = 0; t < NTBL; t++) {
		snprintf(sql, sizeof(sql),
		    "CREATE VIRTUAL TABLE %s USING fts5(title, body, section, "
		    "path, date UNINDEXED, content = 'docs', content_rowid = "
		    "'id', tokenize = '%s')",
		    tables[t], tokenizers[t]);
		if (exec(s, sql) == -1)
			goto fail;
	}
	if (sqlite3_prepare_v2(s->db,
	        "INSERT INTO docs(id, title, body, section, path, date) "
	        "VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
	        -1, &s->add, NULL) != SQLITE_OK) {
		db_warn(s, "prepare");
		goto fail;
	}
	return s;
fail:
	search_free(s);
	return NULL;
}

int
search_add(struct search *s, const char *path, const char *title,
    const char *date, const char *section, char *const *paras, size_t npara)
{
	struct buf body;
	int rv = 0;

	buf_init(&body);
	for (size_t i = 0; i < npara; i++) {
		if (i > 0)
			buf_addc(&body, '\n');
		buf_adds(&body, paras[i]);
	}
	buf_addc(&body, '\0');
	if (buf_failed(&body)) {
		buf_free(&body);
		return -1;
	}
	sqlite3_bind_int64(s->add, 1, ++s->nextid);
	sqlite3_bind_text(s->add, 2, title, -1, SQLITE_STATIC);
	sqlite3_bind_text(s->add, 3, body.p, -1, SQLITE_STATIC);
	sqlite3_bind_text(s->add, 4, section, -1, SQLITE_STATIC);
	sqlite3_bind_text(s->add, 5, path, -1, SQLITE_STATIC);
	if (date != NULL)
		sqlite3_bind_text(s->add, 6, date, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s->add, 6);
	if (sqlite3_step(s->add) != SQLITE_DONE) {
		db_warn(s, "insert");
		rv = -1;
	}
	sqlite3_reset(s->add);
	sqlite3_clear_bindings(s->add);
	buf_free(&body);
	return rv;
}

int
search_finish(struct search *s)
{
	char sql[512];

	/* One rebuild per index: faster than indexing row by row. */
	for (int t = 0; t < NTBL; t++) {
		snprintf(sql, sizeof(sql),
		    "INSERT INTO %s(%s) VALUES('rebuild'); "
		    "INSERT INTO %s(%s, rank) VALUES('rank', "
		    "'bm25(10.0, 1.0, 2.0, 1.0, 0.0)')",
		    tables[t], tables[t], tables[t], tables[t]);
		if (exec(s, sql) == -1)
			return -1;
	}
	if (exec(s, "COMMIT") == -1)
		return -1;
	for (int t = 0; t < NTBL; t++) {
		snprintf(sql, sizeof(sql),
		    "SELECT count(*) FROM %s WHERE %s MATCH ?1", tables[t],
		    tables[t]);
		if (sqlite3_prepare_v2(s->db, sql, -1, &s->count[t], NULL) !=
		    SQLITE_OK) {
			db_warn(s, "prepare");
			return -1;
		}
		/*
		 * ORDER BY rank (the bm25 weights above: title first) is
		 * sorted inside FTS5, so only the rows of the page get a
		 * snippet; ORDER BY bm25() would make one for every hit.
		 */
		snprintf(sql, sizeof(sql),
		    "SELECT path, title, date, section, snippet(%s, 1, '', "
		    "'', '...', %d) FROM %s WHERE %s MATCH ?1 ORDER BY rank "
		    "LIMIT ?2 OFFSET ?3",
		    tables[t], snippet_tokens[t], tables[t], tables[t]);
		if (sqlite3_prepare_v2(s->db, sql, -1, &s->page[t], NULL) !=
		    SQLITE_OK) {
			db_warn(s, "prepare");
			return -1;
		}
	}
	sqlite3_progress_handler(s->db, SEARCH_BUDGET_STEP, progress, s);
	return 0;
}

void
search_free(struct search *s)
{
	if (s == NULL)
		return;
	sqlite3_finalize(s->add);
	for (int t = 0; t < NTBL; t++) {
		sqlite3_finalize(s->count[t]);
		sqlite3_finalize(s->page[t]);
	}
	sqlite3_close(s->db);
	pthread_mutex_destroy(&s->lock);
	free(s);
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

/* A quoted term: '"' cannot occur inside, the caller splits on it. */
static void
add_term(struct buf *out, size_t *n, const char *p, size_t len, bool prefix)
{
	size_t start;
	bool any = false;

	if (*n >= SEARCH_TERMS_MAX)
		return;
	start = out->len;
	if (*n > 0)
		buf_addc(out, ' ');
	buf_addc(out, '"');
	for (size_t i = 0; i < len; i++) {
		/* '*' only counts at the end; controls become spaces. */
		if (p[i] == '*')
			continue;
		buf_addc(out, is_space((unsigned char)p[i]) ? ' ' : p[i]);
		if (!is_space((unsigned char)p[i]))
			any = true;
	}
	if (!any) {
		out->len = start;
		return;
	}
	buf_addc(out, '"');
	if (prefix)
		buf_addc(out, '*');
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
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; i < len; i++) {
		unsigned cp;

		if (p[i] < 0xe0 || p[i] >= 0xf8)
			continue;
		if (p[i] < 0xf0) {
			if (i + 2 >= len)
				break;
			cp = (p[i] & 0x0fu) << 12 | (p[i + 1] & 0x3fu) << 6 |
			    (p[i + 2] & 0x3fu);
		} else {
			if (i + 3 >= len)
				break;
			cp = (p[i] & 0x07u) << 18 | (p[i + 1] & 0x3fu) << 12 |
			    (p[i + 2] & 0x3fu) << 6 | (p[i + 3] & 0x3fu);
		}
		/* Kana, CJK ideographs (and extensions), Hangul. */
		if ((cp >= 0x3040 && cp <= 0x30ff) ||
		    (cp >= 0x3400 && cp <= 0x9fff) ||
		    (cp >= 0xac00 && cp <= 0xd7af) ||
		    (cp >= 0xf900 && cp <= 0xfaff) ||
		    (cp >= 0x20000 && cp <= 0x3ffff))
			return true;
	}
	return false;
}

static size_t
utf8_chars(const char *s, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += ((unsigned char)s[i] & 0xc0) != 0x80;
	return n;
}

static char *
column(sqlite3_stmt *st, int i, bool oneline)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	char *s;

	if (t == NULL)
		return NULL;
	if ((s = strdup((const char *)t)) != NULL && oneline)
		for (char *p = s; *p; p++)
			if (is_space((unsigned char)*p))
				*p = ' ';
	return s;
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

static int
run_count(struct search *s, int t, const char *expr, size_t *total)
{
	sqlite3_stmt *st = s->count[t];
	int rc;

	sqlite3_bind_text(st, 1, expr, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*total = (size_t)sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_OK ? 0 : failed(s, rc);
}

static int
run_page(struct search *s, int t, const char *expr, struct search_result *r)
{
	sqlite3_stmt *st = s->page[t];
	int rc;

	if ((r->hits = calloc(SEARCH_PAGE_SIZE, sizeof(*r->hits))) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, expr, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, SEARCH_PAGE_SIZE);
	sqlite3_bind_int64(
	    st, 3, (sqlite3_int64)(r->page - 1) * SEARCH_PAGE_SIZE);
	while (r->nhits < SEARCH_PAGE_SIZE &&
	    (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct search_hit *h = &r->hits[r->nhits++];

		h->path = column(st, 0, true);
		h->title = column(st, 1, true);
		h->date = column(st, 2, true);
		h->section = column(st, 3, true);
		h->snippet = column(st, 4, true);
		if (h->path == NULL || h->title == NULL || h->section == NULL ||
		    h->snippet == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
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
	int t, rv;

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
	t = search_has_cjk(q, len) ? TBL_TRI : TBL_WORD;
	pthread_mutex_lock(&s->lock);
	s->ticks = 0;
	rv = run_count(s, t, expr.p, &r->total);
	/* No whole word matched: a substring may (trigrams need three). */
	if (rv == 0 && r->total == 0 && t == TBL_WORD &&
	    utf8_chars(q, len) >= 3) {
		t = TBL_TRI;
		rv = run_count(s, t, expr.p, &r->total);
	}
	if (rv == 0 && r->total > 0 && r->page <= SEARCH_PAGE_MAX)
		rv = run_page(s, t, expr.p, r);
	pthread_mutex_unlock(&s->lock);
	buf_free(&expr);
	if (rv != 0) {
		search_result_free(r);
		return rv > 0 ? SEARCH_TOO_BROAD : SEARCH_FAILED;
	}
	return SEARCH_OK;
}

void
search_result_free(struct search_result *r)
{
	for (size_t i = 0; i < r->nhits; i++) {
		free(r->hits[i].path);
		free(r->hits[i].title);
		free(r->hits[i].date);
		free(r->hits[i].section);
		free(r->hits[i].snippet);
	}
	free(r->hits);
	r->hits = NULL;
	r->nhits = 0;
}
