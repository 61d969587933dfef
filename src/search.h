/*
 * Full-text search: an SQLite FTS5 index built with each snapshot and
 * freed with it.  Pure: no libevent, no sockets.
 *
 * The index lives in an in-memory database (":memory:", one per
 * snapshot), rebuilt at every load: a reload is then a swap like the
 * rest of the snapshot.  It holds no text, only the index: hits are the
 * caller's ids, and snippets are cut from the caller's text.
 */
#ifndef SERAI_SEARCH_H
#define SERAI_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;
struct search;

/* Terms after the first ones are dropped: each is a doclist to merge. */
#define SEARCH_TERMS_MAX 16
/*
 * A prefix term ("rain*") is expanded by FTS5 into every indexed word it
 * begins, their doclists merged in memory in one step that the progress
 * handler cannot interrupt: "a*" alone is 40 ms on 50,000 articles.  So
 * a query may hold only this many prefix terms, each of at least
 * SEARCH_PREFIX_MIN bytes (a CJK character is three), or it is too broad.
 * Three-letter prefixes cost a tenth of one-letter ones.
 */
#define SEARCH_PREFIX_MAX 3
#define SEARCH_PREFIX_MIN 3
/*
 * And the documents that the words of a query's prefixes are in, added
 * up (what FTS5 merges, from a vocabulary kept beside the index), are
 * at most this many: some 20 ms of merging, counted before any is done.
 * "for*" on 50,000 generated articles is 111,000 and too broad.
 */
#define SEARCH_PREFIX_DOCS_MAX 100000
/* Longer queries are refused (Gemini 59), before any work. */
#define SEARCH_QUERY_MAX 256
/* Hits per page. */
#define SEARCH_PAGE_SIZE 10
/* Pages beyond this are not served: an OFFSET costs the rows it skips. */
#define SEARCH_PAGE_MAX 100
/*
 * Queries with more hits are not ranked but listed newest first, and
 * their count stops here: ranking scores every hit, and a common word
 * hits most of the archive.  The pages cover exactly these hits.
 */
#define SEARCH_RANK_MAX (SEARCH_PAGE_MAX * SEARCH_PAGE_SIZE)
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

struct search_result {
	size_t total; /* hits over all pages, at most SEARCH_RANK_MAX */
	bool newest;  /* over SEARCH_RANK_MAX: newest first, not ranked */
	size_t page;  /* 1-based, as asked */
	long long ids[SEARCH_PAGE_SIZE]; /* this page's hits, best first */
	size_t nids;
};

/* NULL on failure: the snapshot is then served without search. */
struct search *search_new(void);
/*
 * id: the caller's, > 0 and larger for newer articles (the order of hits
 * past SEARCH_RANK_MAX).  Adding in increasing id order is fastest.
 * Returns -1 on failure.
 */
int search_add(struct search *, long long id, const char *title,
    char *const *paras, size_t npara);
/* Ends loading and prepares the statements. */
int search_finish(struct search *);

/*
 * A cache of the index in a file (fd, open for reading and writing), to
 * skip the build when nothing indexed changed: key is search_key over
 * all that is indexed (the caller's choice; the same key, the same
 * index).  search_load_cache returns NULL on any mismatch or damage;
 * search_save_cache -1 when the file cannot be written.
 */
uint64_t search_key(uint64_t h, const void *, size_t);
struct search *search_load_cache(int fd, uint64_t key);
int search_save_cache(struct search *, int fd, uint64_t key);
void search_free(struct search *);
/* Instructions per query; tests set a tiny one. */
void search_set_budget(struct search *, unsigned long);
/* SEARCH_PREFIX_DOCS_MAX, for tests. */
void search_set_prefix_docs(struct search *, unsigned long long);

/*
 * q: UTF-8, not NUL-terminated.  Safe to call from any thread: one
 * connection, serialised by the search's own mutex.  Nothing to free.
 */
enum search_status search_query(struct search *, const char *q, size_t len,
    size_t page, struct search_result *);

/*
 * A query's terms as snippets look for them, made once for a page of
 * hits.  A text word matches a term when their folded forms (utf8proc:
 * case folded, accents stripped, as unicode61 folds) are equal, or begin
 * alike for a prefix term; a CJK term matches where its characters stand.
 * A phrase is looked for by its first word.
 */
struct search_terms {
	struct search_needle {
		char *folded; /* Latin: the folded first word; CJK: the text */
		bool prefix;
		bool cjk;
	} v[SEARCH_TERMS_MAX];
	size_t n;
};

void search_terms_init(struct search_terms *, const char *q, size_t len);
void search_terms_free(struct search_terms *);

/*
 * Appends one line (no TAB, CR or LF) of the paragraphs around the first
 * word matching a term, "..." marking cuts; the start of the text when
 * only the title matched.
 */
void search_snippet(struct buf *, const struct search_terms *,
    char *const *paras, size_t npara);

/*
 * The user's query as an FTS5 expression that cannot be a syntax error
 * or a column filter: words, "quoted phrases" and a trailing '*' (a
 * prefix) kept, every term quoted.  Returns the number of terms.
 */
size_t search_sanitise(const char *q, size_t len, struct buf *out);

/* Whether the text holds Chinese, Japanese or Korean letters. */
bool search_has_cjk(const char *, size_t);

#endif
