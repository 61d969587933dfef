/*
 * The archive snapshot: content/ loaded once into an immutable tree of
 * sections and parsed articles.  Section pages, menus and feeds are
 * pre-rendered for both protocols; an article page is rendered when asked
 * for, from its parsed text (one copy of the archive in memory instead of
 * three).  Requests read the snapshot and never open a file, so no request
 * can reach outside the archive.  A snapshot is shared read-only by all workers and freed
 * by the last release, so a reload can swap in a new one while replies
 * still reference the old one.
 */
#ifndef SERAI_ARCHIVE_H
#define SERAI_ARCHIVE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Deeper trees are refused: every level costs a breadcrumb and a path. */
#define ARCHIVE_MAX_DEPTH 32
/* A whole path ("/a/b/slug") must fit a Gopher selector (RFC 1436). */
#define ARCHIVE_PATH_MAX 255
/*
 * Sections loaded at most: each costs three pre-rendered pages (its
 * Gemini index, Gopher menu and Atom feed of up to 50 entries, some
 * 10-30 KB together) and an inotify watch, so 20,000 bound that memory
 * to well under 1 GB; news archives have tens or hundreds.  The unit
 * tests build the loader with smaller figures to reach them.
 */
#ifndef ARCHIVE_MAX_SECTIONS
#define ARCHIVE_MAX_SECTIONS 20000
#endif
/*
 * Files (every name in the tree that is not a directory) considered at
 * most: twice the million articles serai is meant to hold, so a tree of
 * junk or a runaway generator cannot take the machine's memory.
 */
#ifndef ARCHIVE_MAX_FILES
#define ARCHIVE_MAX_FILES 2000000
#endif
/*
 * A file changed this close to (or after) the load that read it may
 * change again without its stamp moving: the kernel stamps files from a
 * clock that ticks every 1-10 ms (HZ), behind the one the load reads.  A
 * reload reads such a file again rather than trust its stamp ("racy
 * git" in git's index).  Stamps in whole seconds (ext3, ext4 with small
 * inodes, FAT's two seconds) get the coarse margin.
 */
#ifndef ARCHIVE_RACY_NS
#define ARCHIVE_RACY_NS (50 * 1000000LL)
#endif
#ifndef ARCHIVE_RACY_COARSE_NS
#define ARCHIVE_RACY_COARSE_NS (2 * 1000000000LL)
#endif
/* section.ini holds a title, a description and a language tag. */
#define SECTION_INI_MAX_BYTES (64 * 1024)
/*
 * The archive's own robots.txt: a few rules per crawler; 64 KiB is
 * hundreds of them, and is kept in memory and sent whole per request.
 */
#define ROBOTS_MAX_BYTES (64 * 1024)

enum node_kind { NODE_SECTION, NODE_ARTICLE };

struct listing;
struct section;
struct pack;
struct search;

struct blob {
	char *p;
	size_t len;
};

/*
 * What the loader saw of a file when it read it: a reload re-reads a file
 * only when one of these differs, and the search index keys on them.
 */
struct file_stamp {
	uint64_t dev, ino;
	int64_t size;
	int64_t mtime_ns, ctime_ns;
};

/*
 * A node is immutable once its load is done, and reference-counted: a
 * reload takes every section whose subtree did not change from the old
 * snapshot by pointer, with its whole subtree, and every unchanged
 * article of a changed section too, so a publish costs the sections on
 * the way from the change to the root, not the archive.  So a node
 * knows neither its parent nor its place among its neighbours (both may
 * be another snapshot's): a lookup hands back the route from the root.
 */
struct node {
	atomic_uint refs; /* the sections (and snapshots) holding it */
	enum node_kind kind;
	uint32_t born; /* the load that made it (its seq, cut to 32 bits) */
	/*
	 * Sections: the pages are the replaced snapshot's, shared (set by
	 * the loader, which needs it for the section above).
	 */
	bool same;
	/*
	 * Sections: the subtree was loaded from its own directories, all
	 * plain files and directories, with nothing skipped or warned about:
	 * a reload whose watch saw nothing change below may take it whole.
	 */
	bool plain;
	/*
	 * An article's name, title, date and lang point into its path or
	 * its parsed text (art): they are not its own.
	 */
	char *path;   /* "/", "/news/", "/news/slug" */
	char *name;   /* directory name or slug; "" for the root */
	char *title;  /* never NULL */
	char *date;   /* articles: as written, or NULL when undated */
	int64_t when; /* dated articles: the instant, for ordering */
	/*
	 * Sections: the effective language (its own, else inherited);
	 * articles: their own, NULL when they inherit their section's
	 * (route_lang), so an article node does not depend on its section.
	 */
	char *lang;
	struct article *art;     /* articles: the parsed text */
	struct file_stamp stamp; /* articles: the file as it was read */
	struct section *sec;     /* sections: what only they have */
};

/* What a section holds beyond a node: articles do without it. */
struct section {
	char *description;
	struct node **sections; /* subsections, by title */
	size_t nsections;
	struct node **articles; /* newest first, undated last by title */
	size_t narticles;
	struct node **byname;    /* both, by name (strcmp), for lookup */
	struct blob gemini;      /* pre-rendered gemtext */
	struct blob gopher;      /* pre-rendered menu */
	struct blob feed;        /* the Atom feed of the subtree */
	struct listing *listing; /* the directory as it was read */
	/* The subtree's, this section included, for the snapshot's counts
	 * and for the loader's limits when it is taken whole. */
	size_t subarticles, subsections, subfiles;
};

/*
 * The way from the root down to a node: at[0] the root, at[n - 1] the
 * node.  The breadcrumb, "Up", an article's inherited language and its
 * neighbours are read from it.
 */
struct route {
	const struct node *at[ARCHIVE_MAX_DEPTH + 2];
	size_t n;
};

enum archive_index {
	ARCHIVE_INDEX_NOW,   /* archive_load builds the search index */
	ARCHIVE_INDEX_LATER, /* archive_index_start builds it in a thread */
	ARCHIVE_INDEX_NONE,  /* no search (-n, --export) */
};

struct archive_opts {
	const char *root;
	const char
	    *title;       /* home title; NULL: content/section.ini or default */
	const char *lang; /* default language */
	const char *hostname;
	unsigned gopher_port;
	unsigned gemini_port; /* public; feeds link gemini:// URLs */
	size_t wrap;          /* Gopher text width in columns */
	size_t menu_width;    /* Gopher display string width */
	enum archive_index index;
	/*
	 * The persistent index this archive's snapshots are synced into
	 * (archive_store_init); NULL: each snapshot indexes itself in
	 * memory.  One per archive: two archives share no document.
	 */
	struct archive_store *store;
	/*
	 * The start-up load may build the snapshot from the tree saved at
	 * the last stop (archive_save), to be checked once serving; and a
	 * stop saves it.  false: every start walks the archive first.
	 */
	bool quick_start;
	/*
	 * Called by a start-up load before it walks the archive (not when
	 * it is built from the saved tree), or NULL: the watch is set then,
	 * so that what changes during the walk is an event.
	 */
	void (*before_walk)(void *);
	void *before_walk_arg;
};

/*
 * An archive's search index (search_open) and what keeps its syncs in
 * order: the start-up indexer and a reload may overlap, so one at a
 * time, and never an older snapshot after a newer one.
 */
struct archive_store {
	struct search *se;
	/*
	 * The persistent article pack (pack.h), or NULL: the start-up load
	 * takes unchanged files' texts from it and writes it.
	 */
	struct pack *pack;
	pthread_mutex_t lock;
	unsigned long long synced_seq;
	/*
	 * The saved trees' two files (archive.c), opened by the start-up
	 * load: the process may not create files once it serves.  One is
	 * loaded from (tree_used; -1: none), the other written at the stop.
	 */
	int tree_fd[2];
	int tree_used;
	char *tree_path[2];
	uint64_t exe_sum; /* the running binary's: the pages' renderer */
};

struct snapshot {
	atomic_uint refs;
	unsigned long long seq; /* the load's number: later loads, larger */
	struct node *root;
	struct blob robots; /* the root's robots.txt; p NULL: none */
	size_t narticles;
	size_t nsections;
	size_t nskipped;  /* files warned about and not served */
	size_t nwarnings; /* other problems reported while loading */
	size_t nparsed;   /* articles read and parsed; the rest shared */
	size_t ntaken;  /* sections taken whole from the old, subtree and all */
	size_t nlisted; /* directories listed; the rest as old's */
	size_t ncached; /* articles taken from the persistent pack */
	/*
	 * Made from the saved tree (archive_save), not the archive: served
	 * at once, and to be checked against the disk (a full reload).
	 */
	bool from_tree;
	/* It is the saved tree's, unchanged: a clean stop keeps the file. */
	bool tree_current;
	time_t loaded;
	/*
	 * CLOCK_REALTIME in ns as the load began: a reload trusts a stamp
	 * only if the file's ctime is ARCHIVE_RACY_NS older than this.
	 */
	int64_t started_ns;
	/*
	 * NULL until built (ARCHIVE_INDEX_LATER: set once, by the indexing
	 * thread) or when it could not be.  Read it with archive_search.
	 */
	struct search *_Atomic search;
	atomic_bool indexing;   /* the indexing thread has not finished */
	atomic_bool stop_index; /* the snapshot is going: stop indexing */
	bool has_indexer;       /* the thread is to be joined */
	pthread_t indexer;
	unsigned long index_ms;   /* the search index's own time */
	bool own_search;          /* an index of its own, freed with it */
	bool index_built;         /* the index was made anew */
	bool index_reused;        /* its digest matched: nothing read */
	const char *index_failed; /* why it has no index, for the log */
	size_t index_added, index_changed, index_removed;
	size_t index_kept; /* named to the index, and found unchanged */
	/* What pages rendered per request need; strings owned. */
	struct archive_opts opts;
	unsigned long load_ms; /* archive_load's time, search index included */
	/*
	 * A walk's phases, each ms from the load's start to its end: the
	 * directories listed; the files read and parsed; the texts packed
	 * and the articles put in their sections; the sections' pages.
	 */
	unsigned long walked_ms, read_ms, packed_ms, pages_ms;
};

/*
 * Loads the tree; every file that cannot be served is skipped with a
 * warning naming it and the reason.  NULL with *errstr when the root
 * itself cannot be read.  The snapshot starts with one reference.
 */
struct snapshot *archive_load(const struct archive_opts *, const char **errstr);
/*
 * What changed since old was loaded, as [archive] watch saw it: the
 * section paths ("/", "/news/") of the directories in which an entry
 * was added, removed or renamed, or a file written; sorted by strcmp.
 */
struct archive_changes {
	char **dirs;
	size_t ndirs;
};

/*
 * A load of the tree as it is now, as archive_load would make it, that
 * reads again only the files whose stamp differs from old's (a NULL old
 * is a full load) and shares with old the parsed text of every other
 * article and the pages of every section whose pages come out the same.
 * With changes, a directory not named there whose own stamp has not
 * moved is not even listed, nor are its files stat'ed: old's listing of
 * it is used again.  NULL changes: every directory is listed and every
 * file stat'ed.  old is not changed: replies holding it are unaffected.
 */
struct snapshot *archive_reload(const struct snapshot *old,
    const struct archive_opts *, const struct archive_changes *changes,
    const char **errstr);
struct snapshot *snapshot_ref(struct snapshot *);
void snapshot_release(struct snapshot *);

/*
 * Builds a snapshot's index in a thread of its own (the snapshot is
 * served meanwhile, without search); logs the outcome.  A release of the
 * snapshot stops and joins the thread.  -1 if it cannot start.
 */
int archive_index_start(struct snapshot *);
/*
 * At a clean stop: the snapshot as state_dir's saved tree, so that the
 * next start with the same options and article pack serves it at once
 * (from_tree) and then checks it against the archive.  Not written when
 * some article's text is not in the pack (the next start walks the
 * archive and packs it).  -1 (warned about) when it cannot be written.
 */
int archive_save(const struct snapshot *, const struct archive_opts *);
/*
 * The search index (search_open) every snapshot loaded with this store
 * in its options is synced into: only the articles whose file changed
 * are indexed again.  The caller frees se after the last snapshot.
 */
void archive_store_init(struct archive_store *, struct search *se);
/* Closes what the store's loads opened (the saved trees' files). */
void archive_store_close(struct archive_store *);
/*
 * A file (open for reading and writing, the process's own: an O_TMPFILE)
 * to keep article texts in, appended to and mapped, instead of private
 * memory.  -1: none, texts stay in memory.
 */
void archive_set_pack(int fd);
/*
 * Logs how the snapshot's index was synced, if it was: for its reader,
 * once the snapshot serves (the indexing thread's own, at its end).
 */
void archive_log_index(const struct snapshot *);
/* The search index, or NULL (not built yet: see indexing; or failed). */
struct search *archive_search(const struct snapshot *);

/*
 * Exact lookup of a canonical path, down the tree: a name per level,
 * found by binary search among its section's.  NULL when absent.
 */
const struct node *archive_lookup(
    const struct snapshot *, const char *path, size_t len);
/* The same, with the way there in *r (r->n 0 when absent). */
const struct node *archive_route(
    const struct snapshot *, const char *path, size_t len, struct route *r);
/* The language a route's node is in: its own, else its section's. */
const char *route_lang(const struct route *);
/*
 * Where article a stands in its section's articles (a binary search in
 * their order); sec->narticles when it is not there.
 */
size_t archive_position(const struct section *sec, const struct node *a);
/* The section whose feed "<section path>feed.xml" names; NULL if none. */
const struct node *archive_lookup_feed(
    const struct snapshot *, const char *path, size_t len);

#endif
