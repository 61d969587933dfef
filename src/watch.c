/*
 * [archive] watch: inotify on every directory of the archive tree, so a
 * publish (cp -r, rsync, git pull) reloads the archive without a SIGHUP.
 *
 * Each event names the directory it happened in (an entry added, removed,
 * renamed, or a file in it written or chmod'ed): the watch keeps each
 * descriptor's path, sorted by descriptor, and hands the reload the set
 * of directories changed since the last one, which need listing and
 * stat-ing again; every other directory is taken as it was.  Whatever
 * makes that set unsure (events lost to a queue overflow, the root's own
 * name, a directory unwatched past a limit or reached by two paths) asks
 * for a full rescan instead.  A change arms a timer that every further
 * change re-arms: the callback runs once the tree has been quiet for
 * WATCH_QUIET_MS, so a copy of a thousand files costs one reload.
 */
#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "serai.h"

#ifdef __linux__

#include <dirent.h>
#include <limits.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "archive.h"
#include "util.h"

/*
 * What can change what a load reads.  IN_ATTRIB: a chmod can make a file
 * (un)readable.  IN_MOVE_SELF and IN_DELETE_SELF: a directory renamed or
 * removed under us, the root included.  No IN_OPEN or IN_ACCESS: the
 * reload's own reads must not trigger another reload.
 */
#define DIR_MASK                                                               \
	(IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM |  \
	    IN_MOVED_TO | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF |          \
	    IN_ONLYDIR)
/* The root's parent: only the root's own name coming back matters. */
#define PARENT_MASK (IN_CREATE | IN_MOVED_TO | IN_ONLYDIR)

/*
 * Directories changed since the last reload, past which the set is
 * dropped for a full rescan: a copy that touches more directories than
 * this is near enough the whole tree, and the set stays small.
 */
#define WATCH_CHANGES_MAX 4096

/* A watched directory: its section path ("/", "/news/"), as archive.h. */
struct wdir {
	int wd;
	char *path;
};

struct watch {
	struct event_base *base;
	int fd;
	struct event *ev;      /* fd readable */
	struct event *quiet;   /* the debounce timer */
	struct timespec first; /* first change since the last callback */
	void (*changed)(void *);
	void *arg;
	struct wdir *wds; /* sorted by wd */
	size_t nwds, capwds;
	int parent_wd;  /* -1: none */
	char *rootname; /* the root's last path component, for parent_wd */
	/* Changed since the last watch_changes: directories' paths. */
	char **dirty;
	size_t ndirty;
	bool dirty_all; /* unsure: the next reload rescans everything */
	bool partial;   /* the last scan left directories unwatched */
	bool announced; /* the log has said what is watched */
};

/* The walk's state: the directories reached so far, unsorted. */
struct scan {
	struct watch *w;
	struct wdir *wds;
	size_t n, cap;
	size_t rootlen; /* of the root's path, cut from each directory's */
	bool full;      /* WATCH_MAX reached */
	bool nospace;   /* the kernel's max_user_watches reached */
	bool oom;
};

static int
cmp_wd(const void *a, const void *b)
{
	int x = ((const struct wdir *)a)->wd, y = ((const struct wdir *)b)->wd;

	return x < y ? -1 : x > y;
}

static struct wdir *
find_wd(const struct watch *w, int wd)
{
	struct wdir key = {wd, NULL};

	/* bsearch's base may not be NULL, even for no elements. */
	if (w->nwds == 0)
		return NULL;
	return bsearch(&key, w->wds, w->nwds, sizeof(*w->wds), cmp_wd);
}

/* The kernel dropped a watch (IN_IGNORED): forget it. */
static void
forget_wd(struct watch *w, int wd)
{
	struct wdir *p;

	if (wd == w->parent_wd) {
		w->parent_wd = -1;
		return;
	}
	if ((p = find_wd(w, wd)) == NULL)
		return;
	free(p->path);
	memmove(p, p + 1, (size_t)(w->wds + w->nwds - p - 1) * sizeof(*p));
	w->nwds--;
}

static void
clear_dirty(struct watch *w)
{
	for (size_t i = 0; i < w->ndirty; i++)
		free(w->dirty[i]);
	free(w->dirty);
	w->dirty = NULL;
	w->ndirty = 0;
}

/* The directory of wd changed; unsure of what did: everything. */
static void
mark_dirty(struct watch *w, int wd)
{
	const struct wdir *d = find_wd(w, wd);
	char **nv, *p;

	if (w->dirty_all)
		return;
	if (d == NULL || w->ndirty >= WATCH_CHANGES_MAX) {
		w->dirty_all = true;
		clear_dirty(w);
		return;
	}
	/* Many events come from one directory in a row. */
	if (w->ndirty > 0 && strcmp(w->dirty[w->ndirty - 1], d->path) == 0)
		return;
	if ((p = strdup(d->path)) == NULL ||
	    (nv = reallocarray(w->dirty, w->ndirty + 1, sizeof(*nv))) == NULL) {
		free(p);
		w->dirty_all = true;
		clear_dirty(w);
		return;
	}
	w->dirty = nv;
	w->dirty[w->ndirty++] = p;
}

/*
 * Debounce: re-arm the timer on each change, but not past
 * WATCH_MAX_DELAY_MS after the first, or a file written to every few
 * hundred milliseconds would hold the reload off forever.
 */
static void
note_change(struct watch *w)
{
	struct timeval tv = {
	    WATCH_QUIET_MS / 1000, (WATCH_QUIET_MS % 1000) * 1000};

	if (!evtimer_pending(w->quiet, NULL))
		clock_gettime(CLOCK_MONOTONIC, &w->first);
	else if (ms_since(&w->first) >= WATCH_MAX_DELAY_MS)
		return;
	evtimer_add(w->quiet, &tv);
}

/*
 * Reads every queued event, noting the directories they name.  With
 * notify false (a rescan is about to read the tree again) no reload is
 * asked for: the coming load takes them.
 */
static void
drain(struct watch *w, bool notify)
{
	/* inotify returns whole events; align the buffer for them. */
	char buf[8192]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	bool changed = false;
	ssize_t n;

	for (int reads = 0; reads < 1024; reads++) {
		if ((n = read(w->fd, buf, sizeof(buf))) == -1) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				log_warn("watch: read");
			break;
		}
		if (n == 0)
			break;
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *e = (const void *)p;

			p += sizeof(*e) + e->len;
			if (e->mask & IN_Q_OVERFLOW) {
				/* Events were lost: the whole tree may
				 * have changed. */
				changed = true;
				w->dirty_all = true;
				clear_dirty(w);
				continue;
			}
			if (e->mask & IN_IGNORED) {
				/* Our own rm_watch, or the directory is
				 * gone (that came with its own event). */
				forget_wd(w, e->wd);
				continue;
			}
			if (e->wd == w->parent_wd) {
				if (e->len > 0 &&
				    strcmp(e->name, w->rootname) == 0) {
					changed = true;
					w->dirty_all = true;
					clear_dirty(w);
				}
				continue;
			}
			/*
			 * The loader serves no name starting with '.':
			 * rsync's and editors' temporary files change
			 * nothing until renamed into place, which is an
			 * event of its own.
			 */
			if (e->len > 0 && e->name[0] == '.')
				continue;
			changed = true;
			/*
			 * A directory's own removal or move is its
			 * parent's change too, which has its own event.
			 */
			mark_dirty(w, e->wd);
		}
	}
	if (changed && notify)
		note_change(w);
}

static void
readable_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	drain(arg, true);
}

static void
quiet_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct watch *w = arg;

	(void)fd;
	(void)ev;
	w->changed(w->arg);
}

static void
scan_add(struct scan *sc, const char *path, bool top)
{
	struct wdir *nv;
	const char *rest;
	struct buf p;
	int wd;

	if (sc->n >= WATCH_MAX) {
		sc->full = true;
		return;
	}
	/* Symlinks are not followed below the root: the loader only serves
	 * what they lead to inside the root, which is watched already. */
	wd = inotify_add_watch(
	    sc->w->fd, path, DIR_MASK | (top ? 0 : IN_DONT_FOLLOW));
	if (wd == -1) {
		if (errno == ENOSPC)
			sc->nospace = true;
		else if (errno != ENOENT && errno != ENOTDIR)
			/* Gone since readdir is fine; anything else the
			 * load will name too, but say why it is unwatched. */
			log_warn("watch: %s", path);
		return;
	}
	if (sc->n == sc->cap) {
		size_t cap = sc->cap ? sc->cap * 2 : 64;

		if ((nv = reallocarray(sc->wds, cap, sizeof(*nv))) == NULL) {
			sc->oom = true;
			return;
		}
		sc->wds = nv;
		sc->cap = cap;
	}
	/* As the loader names the section: "/" and "/news/world/". */
	rest = path + sc->rootlen;
	rest += *rest == '/';
	buf_init(&p);
	buf_addc(&p, '/');
	if (*rest != '\0') {
		buf_adds(&p, rest);
		buf_addc(&p, '/');
	}
	sc->wds[sc->n].wd = wd;
	if ((sc->wds[sc->n].path = buf_release(&p, NULL)) == NULL) {
		sc->oom = true;
		return;
	}
	sc->n++;
}

/* path is a PATH_MAX buffer, extended and restored in place. */
static void
scan_dir(struct scan *sc, char *path, size_t depth)
{
	size_t len = strlen(path);
	struct dirent *de;
	DIR *d;

	if ((d = opendir(path)) == NULL)
		return; /* the load names the problem */
	while ((de = readdir(d)) != NULL && !sc->full && !sc->oom) {
		size_t nlen = strlen(de->d_name);
		bool dir = de->d_type == DT_DIR;

		/* ".", "..", and hidden directories the loader skips. */
		if (de->d_name[0] == '.')
			continue;
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		if (len + 1 + nlen >= PATH_MAX)
			continue;
		path[len] = '/';
		memcpy(path + len + 1, de->d_name, nlen + 1);
		if (de->d_type == DT_UNKNOWN) {
			struct stat st;

			dir = lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
		}
		if (dir) {
			size_t before = sc->n;

			scan_add(sc, path, false);
			/* Deeper than the loader goes is not worth a watch. */
			if (sc->n > before && depth < ARCHIVE_MAX_DEPTH)
				scan_dir(sc, path, depth + 1);
		}
		path[len] = '\0';
	}
	closedir(d);
}

/* The root's parent, so that a root renamed away and back is noticed. */
static void
watch_parent(struct watch *w, const char *root)
{
	char parent[PATH_MAX], *slash;
	size_t n = strlen(root);
	int wd = -1;

	while (n > 1 && root[n - 1] == '/')
		n--;
	if (n == 0 || n >= sizeof(parent))
		return;
	memcpy(parent, root, n);
	parent[n] = '\0';
	free(w->rootname);
	w->rootname = NULL;
	if ((slash = strrchr(parent, '/')) == NULL) {
		w->rootname = strdup(parent);
		strlcpy_s(parent, ".", sizeof(parent));
	} else if (slash[1] != '\0') {
		w->rootname = strdup(slash + 1);
		if (slash == parent)
			slash++; /* "/x": the parent is "/" */
		*slash = '\0';
	}
	/* Best effort: the parent may be unreadable after the drop. */
	if (w->rootname != NULL)
		wd = inotify_add_watch(w->fd, parent, PARENT_MASK);
	if (w->parent_wd != -1 && w->parent_wd != wd)
		inotify_rm_watch(w->fd, w->parent_wd);
	w->parent_wd = wd;
}

static void
free_wdirs(struct wdir *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].path);
	free(v);
}

int
watch_rescan(struct watch *w, const char *root)
{
	struct scan sc;
	char path[PATH_MAX];
	size_t keep = 0, j = 0;
	int rv = 0, saved = 0;

	if (w == NULL)
		return 0;
	/* Whatever is queued happened before the load that follows. */
	drain(w, false);
	if (w->quiet != NULL) /* NULL: not attached yet, before the load */
		evtimer_del(w->quiet);
	watch_parent(w, root);

	memset(&sc, 0, sizeof(sc));
	sc.w = w;
	strlcpy_s(path, root, sizeof(path));
	/* Directories are named from the root, without its trailing '/'. */
	sc.rootlen = strlen(path);
	while (sc.rootlen > 1 && path[sc.rootlen - 1] == '/')
		path[--sc.rootlen] = '\0';
	scan_add(&sc, path, true);
	if (sc.n == 0) {
		saved = errno;
		rv = -1;
	} else
		scan_dir(&sc, path, 1);
	if (sc.oom) {
		/* Keep what is watched; the next rescan tries again. */
		log_warnx("watch: out of memory");
		free_wdirs(sc.wds, sc.n);
		w->dirty_all = true;
		return -1;
	}
	if (sc.full)
		log_warnx("watch: %s: more than %d directories; changes "
		          "below the others wait for SIGHUP",
		    root, WATCH_MAX);
	if (sc.nospace)
		log_warnx("watch: %s: the kernel's inotify watch limit "
		          "(fs.inotify.max_user_watches) is reached; some "
		          "changes wait for SIGHUP",
		    root);
	w->partial = sc.full || sc.nospace || rv == -1;
	if (sc.n > 1)
		qsort(sc.wds, sc.n, sizeof(*sc.wds), cmp_wd);
	/*
	 * Bind mounts give one directory two paths, and its events only
	 * one of them: which the loader serves is its own choice, so such
	 * a tree is rescanned whole.
	 */
	for (size_t i = 0; i < sc.n; i++)
		if (keep == 0 || sc.wds[i].wd != sc.wds[keep - 1].wd)
			sc.wds[keep++] = sc.wds[i];
		else {
			free(sc.wds[i].path);
			w->partial = true;
		}
	/*
	 * Sweep the watches no longer reached (a directory moved out of
	 * the tree, or the whole tree when the root went): both sorted.
	 */
	for (size_t i = 0; i < w->nwds; i++) {
		while (j < keep && sc.wds[j].wd < w->wds[i].wd)
			j++;
		if (j == keep || sc.wds[j].wd != w->wds[i].wd)
			inotify_rm_watch(w->fd, w->wds[i].wd);
	}
	free_wdirs(w->wds, w->nwds);
	w->wds = sc.wds;
	w->nwds = keep;
	w->capwds = sc.cap;
	if (rv == -1)
		errno = saved;
	else if (!w->announced) {
		log_info("watching %s: %zu directories", root, w->nwds);
		w->announced = true;
	}
	return rv;
}

struct watch *
watch_open(const char *root, bool scan)
{
	struct watch *w;

	if ((w = calloc(1, sizeof(*w))) == NULL) {
		log_warnx("watch: out of memory");
		return NULL;
	}
	w->parent_wd = -1;
	if ((w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) == -1) {
		log_warn("watch: inotify_init1");
		free(w);
		return NULL;
	}
	/* Unscanned: the walk's gate, or the saved tree's check, scans. */
	if (!scan)
		return w;
	if (watch_rescan(w, root) == -1) {
		log_warn("watch: %s", root);
		watch_stop(w);
		return NULL;
	}
	return w;
}

int
watch_attach(struct watch *w, struct event_base *base, void (*changed)(void *),
    void *arg)
{
	w->base = base;
	w->changed = changed;
	w->arg = arg;
	w->ev = event_new(base, w->fd, EV_READ | EV_PERSIST, readable_cb, w);
	w->quiet = evtimer_new(base, quiet_cb, w);
	if (w->ev == NULL || w->quiet == NULL || event_add(w->ev, NULL)) {
		log_warnx("watch: cannot set up the event");
		return -1;
	}
	return 0;
}

void
watch_stop(struct watch *w)
{
	if (w == NULL)
		return;
	if (w->ev)
		event_free(w->ev);
	if (w->quiet)
		event_free(w->quiet);
	/* Closing the descriptor drops every watch with it. */
	close(w->fd);
	free_wdirs(w->wds, w->nwds);
	clear_dirty(w);
	free(w->rootname);
	free(w);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct archive_changes *
watch_changes(struct watch *w)
{
	struct archive_changes *c;
	size_t keep = 0;

	if (w == NULL)
		return NULL;
	if (w->dirty_all || w->partial || (c = malloc(sizeof(*c))) == NULL) {
		w->dirty_all = false;
		clear_dirty(w);
		return NULL;
	}
	if (w->ndirty > 1)
		qsort(w->dirty, w->ndirty, sizeof(*w->dirty), cmp_str);
	for (size_t i = 0; i < w->ndirty; i++)
		if (keep > 0 && strcmp(w->dirty[i], w->dirty[keep - 1]) == 0)
			free(w->dirty[i]);
		else
			w->dirty[keep++] = w->dirty[i];
	c->dirs = w->dirty;
	c->ndirs = keep;
	w->dirty = NULL;
	w->ndirty = 0;
	return c;
}

void
watch_changes_free(struct archive_changes *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->ndirs; i++)
		free(c->dirs[i]);
	free(c->dirs);
	free(c);
}

void
watch_changes_lost(struct watch *w)
{
	if (w != NULL)
		w->dirty_all = true;
}

#else /* !__linux__ */

struct watch *
watch_open(const char *root, bool scan)
{
	(void)scan;
	log_warnx("watch: %s: not supported on this system (Linux inotify "
	          "only); reload with SIGHUP",
	    root);
	return NULL;
}

int
watch_attach(struct watch *w, struct event_base *base, void (*changed)(void *),
    void *arg)
{
	(void)w;
	(void)base;
	(void)changed;
	(void)arg;
	return -1;
}

int
watch_rescan(struct watch *w, const char *root)
{
	(void)w;
	(void)root;
	return 0;
}

struct archive_changes *
watch_changes(struct watch *w)
{
	(void)w;
	return NULL;
}

void
watch_changes_free(struct archive_changes *c)
{
	(void)c;
}

void
watch_changes_lost(struct watch *w)
{
	(void)w;
}

void
watch_stop(struct watch *w)
{
	(void)w;
}

#endif
