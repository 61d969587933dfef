/*
 * Full-text search: an SQLite FTS5 index kept in a file in state_dir,
 * brought in step with each snapshot by the articles that changed.
 * Pure: no libevent, no sockets.
 *
 * One index serves the process: every snapshot is synced into it
 * (search_begin, search_doc per article, search_commit: one
 * transaction), and the ids search_doc hands back are the snapshot's to
 * map to its articles.  An id is an article's for as long as its path
 * and date stay: an insertion renumbers nothing.  Hits are ids, and
 * snippets are cut from the caller's text.
 */
#ifndef SERAI_SEARCH_H
#define SERAI_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;
struct search;

/* The index's file in state_dir (and its -wal and -shm beside it). */
#define SEARCH_INDEX_FILE "search.db"

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
/* A document's path and its NUL: archive paths are at most 255 bytes. */
#define SEARCH_PATH_MAX 256
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
/*
 * Read connections to the index file, each with its own lock: one per
 * search thread (serai.h's SEARCH_THREADS), so that two searches never
 * wait for each other, and one more for a caller outside them.
 */
#define SEARCH_READERS 3

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
	/*
	 * And the path each was indexed under, which the caller looks up in
	 * its snapshot: a hit the snapshot no longer has is none.
	 */
	char paths[SEARCH_PAGE_SIZE][SEARCH_PATH_MAX];
	size_t nids;
};

/*
 * What a file was when read (archive.h's struct file_stamp): an article
 * whose stamp is unchanged since it was indexed is not indexed again.
 */
struct search_stamp {
	uint64_t dev, ino;
	int64_t size, mtime_ns, ctime_ns;
};

/*
 * A set of (path, stamp), whatever its order: the sum (mod 2^64) of a
 * 64-bit hash of each, and their count.  The index keeps the digest of
 * what it holds, in every commit, so that a start whose tree has the
 * same takes the index as it is without reading it (search.c says why
 * a match that lies is no concern).
 */
struct search_digest {
	uint64_t sum, count;
};

/* Adds an article to d: start from {0, 0}. */
void search_digest_add(
    struct search_digest *, const char *path, const struct search_stamp *);
/*
 * The digest of what the index holds, as last committed: one row read.
 * -1 when it has none or one that serai did not write: a full sync
 * (search_begin) writes it anew.
 */
int search_digest(struct search *, struct search_digest *);

/* How a sync went: articles indexed anew, re-indexed, dropped, kept. */
struct search_stats {
	size_t added, changed, removed, kept;
	bool built; /* the index was empty: a whole build */
};

/*
 * The index in the file at path (an SQLite database in WAL mode, made
 * 0600 if absent), or in memory when path is NULL (nothing kept; a
 * search waits while a sync writes).  NULL on failure with *why, and
 * *damaged when the file is not a usable index (cut short, not SQLite,
 * another version's): the caller may remove it (search_remove) and open
 * a new one.  A symbolic link, a FIFO or any other non-regular file is
 * refused and left alone (*damaged false).  Open it before a chroot or
 * a sandbox: every connection is opened here.
 */
struct search *search_open(const char *path, const char **why, bool *damaged);
/* Removes the index file at path and its WAL files; -1 with errno. */
int search_remove(const char *path);
void search_free(struct search *);

/*
 * A sync: search_begin, then search_doc for every article of the
 * snapshot, then search_commit, which drops every article not named
 * since search_begin.  *by_path: the index holds articles, and they are
 * to be named in strcmp order of path (it is walked beside them, and
 * any other order fails); else it is empty, and any order will do
 * (oldest first is fastest).  Searches meanwhile see the index as last
 * committed.  Any -1 (logged) leaves the index as it was after
 * search_rollback.  when: the article's instant, used only when dated
 * (larger ids for newer articles: the order of hits past
 * SEARCH_RANK_MAX).
 */
int search_begin(struct search *, bool *by_path);
/*
 * A sync of what changed only: search_doc for the articles added or
 * changed, search_forget for those gone, and search_commit drops nothing
 * else.  For a caller that knows the difference from the last sync.
 */
int search_begin_delta(struct search *);
/* The article at path is gone (nothing if it was not indexed). */
int search_forget(struct search *, const char *path);
/* The id the index gave path, 0 if none; not during a sync (tests). */
long long search_id(struct search *, const char *path);
int search_doc(struct search *, const char *path, const struct search_stamp *,
    bool dated, int64_t when, const char *title, char *const *paras,
    size_t npara, long long *id);
int search_commit(struct search *, struct search_stats *);
void search_rollback(struct search *);

/* Instructions per query; tests set a tiny one. */
void search_set_budget(struct search *, unsigned long);
/* SEARCH_PREFIX_DOCS_MAX, for tests. */
void search_set_prefix_docs(struct search *, unsigned long long);

/*
 * q: UTF-8, not NUL-terminated.  Safe to call from any thread, also
 * while a sync runs: each query takes a read connection of its own
 * (SEARCH_READERS).  Nothing to free.
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
