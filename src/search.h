/*
 * Full-text search: an SQLite FTS5 index built with each snapshot and
 * freed with it.  Pure: no libevent, no sockets.
 *
 * The index lives in an in-memory database (":memory:", one per
 * snapshot), rebuilt at every load: a reload is then a swap like the
 * rest of the snapshot.  A cache file in state_dir, to skip the rebuild
 * of an unchanged archive, is left for later.
 */
#ifndef SERAI_SEARCH_H
#define SERAI_SEARCH_H

#include <stdbool.h>
#include <stddef.h>

struct buf;
struct search;

/* Longer queries are refused (Gemini 59), before any work. */
#define SEARCH_QUERY_MAX 256
/* Hits per page. */
#define SEARCH_PAGE_SIZE 10
/* Pages beyond this are not served: an OFFSET costs the rows it skips. */
#define SEARCH_PAGE_MAX 100
/*
 * Default work budget per query, in SQLite VM instructions (checked by
 * the progress handler every SEARCH_BUDGET_STEP of them).
 */
#define SEARCH_BUDGET 20000000UL
#define SEARCH_BUDGET_STEP 1000

enum search_status {
	SEARCH_OK,
	SEARCH_EMPTY,     /* nothing searchable left after sanitising */
	SEARCH_TOO_LONG,  /* over SEARCH_QUERY_MAX bytes */
	SEARCH_TOO_BROAD, /* the work budget ran out */
	SEARCH_FAILED,    /* SQLite refused it: reported, never fatal */
};

struct search_hit {
	char *path;
	char *title;
	char *date; /* NULL when undated */
	char *section;
	char *snippet; /* one line: no TAB, CR or LF */
};

struct search_result {
	size_t total; /* hits over all pages */
	size_t page;  /* 1-based, as asked */
	struct search_hit *hits;
	size_t nhits;
};

/* NULL on failure: the snapshot is then served without search. */
struct search *search_new(void);
/* paras: the article's paragraphs; returns -1 on failure. */
int search_add(struct search *, const char *path, const char *title,
    const char *date, const char *section, char *const *paras, size_t npara);
/* Ends loading: builds the indexes and prepares the statements. */
int search_finish(struct search *);
void search_free(struct search *);
/* Instructions per query; tests set a tiny one. */
void search_set_budget(struct search *, unsigned long);

/*
 * q: UTF-8, not NUL-terminated.  Safe to call from any thread: one
 * connection, serialised by the search's own mutex.
 */
enum search_status search_query(struct search *, const char *q, size_t len,
    size_t page, struct search_result *);
void search_result_free(struct search_result *);

/*
 * The user's query as an FTS5 expression that cannot be a syntax error
 * or a column filter: words, "quoted phrases" and a trailing '*' (a
 * prefix) kept, every term quoted.  Returns the number of terms.
 */
size_t search_sanitise(const char *q, size_t len, struct buf *out);

/* Whether the text holds Chinese, Japanese or Korean letters. */
bool search_has_cjk(const char *, size_t);

#endif
