/*
 * serai: a Gemini and Gopher server for a news archive.
 * main: arguments, configuration, archive, TLS, then the server.
 */
#include <event2/event.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "log.h"
#include "pack.h"
#include "sandbox.h"
#include "search.h"
#include "serai.h"
#include "util.h"

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: serai [-hnV] [-c file] [--export dir]\n"
	    "  -c file  configuration file (default: built-in "
	    "defaults)\n"
	    "  --export dir\n"
	    "           write the archive as static Gemini and Gopher trees "
	    "into\n"
	    "           dir/gemini and dir/gopher (with [host] sections,\n"
	    "           dir/NAME/gemini and dir/NAME/gopher), then exit\n"
	    "  -n       check the configuration and the archive, then "
	    "exit\n"
	    "  -V       print the version and exit\n"
	    "  -h       print this help and exit\n");
}

/*
 * Every connection is a descriptor; the soft limit (often 1024) would
 * cap clients long before memory does.
 */
static void
raise_nofile(struct config *cfg)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			log_warn("setrlimit(RLIMIT_NOFILE)");
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	/* A cap above the descriptors we may open would never be reached. */
	if (rl.rlim_cur != RLIM_INFINITY &&
	    (rlim_t)cfg->max_connections + FD_RESERVE > rl.rlim_cur) {
		unsigned cap = rl.rlim_cur > 2 * FD_RESERVE
		    ? (unsigned)(rl.rlim_cur - FD_RESERVE)
		    : (unsigned)(rl.rlim_cur / 2);

		log_warnx("max_connections %u is more than the %llu open "
		          "files allowed; using %u",
		    cfg->max_connections, (unsigned long long)rl.rlim_cur, cap);
		cfg->max_connections = cap;
	}
}

/* Logs open as the starting user: files may be where the server user
 * cannot create them. */
static int
open_logs(const struct config *cfg)
{
	char where[PATH_MAX + 64];

	if (cfg->error_log && log_error_open(cfg->error_log) == -1) {
		log_warn("%s: %s",
		    config_where(
		        cfg, "server", "error_log", where, sizeof(where)),
		    cfg->error_log);
		return -1;
	}
	if (cfg->access_log && log_access_open(cfg->access_log) == -1) {
		log_warn("%s: %s",
		    config_where(
		        cfg, "server", "access_log", where, sizeof(where)),
		    cfg->access_log);
		return -1;
	}
	return 0;
}

/* "[host NAME] " before a host's messages, when there are [host]s. */
static const char *
host_tag(
    const struct config *cfg, const struct host_conf *h, char *buf, size_t size)
{
	if (!cfg->vhosts)
		return "";
	snprintf(buf, size, "[host %s] ", h->name);
	return buf;
}

/*
 * --export: a one-shot command run by whoever wants the mirror.  It binds
 * nothing and needs no certificate, so it runs before logs are opened and
 * privileges resolved: messages go to the terminal, files are the user's.
 * With [host] sections each host goes to DIR/NAME.
 */
static int
export_mirror(const struct config *cfg, const char *dir)
{
	struct archive_opts ao;
	struct snapshot *snap;
	const char *why = NULL;
	char where[PATH_MAX + 64], sub[PATH_MAX];

	if (cfg->vhosts && mkdir_p(dir) == -1) {
		log_warn("%s", dir);
		return 1;
	}
	for (size_t i = 0; i < cfg->nhosts; i++) {
		const struct host_conf *h = &cfg->hosts[i];
		int rv;

		config_archive_opts(cfg, h, &ao);
		ao.index = ARCHIVE_INDEX_NONE;
		if ((snap = archive_load(&ao, &why)) == NULL) {
			log_warnx("%s: %s: %s",
			    config_host_where(
			        cfg, h, "root", where, sizeof(where)),
			    ao.root, why);
			return 1;
		}
		if (!cfg->vhosts)
			strlcpy_s(sub, dir, sizeof(sub));
		else if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", dir,
		             h->name) >= sizeof(sub)) {
			log_warnx("%s/%s: path too long", dir, h->name);
			snapshot_release(snap);
			return 1;
		}
		rv = export_archive(snap, &ao, sub);
		snapshot_release(snap);
		if (rv == -1)
			return 1;
	}
	return 0;
}

/*
 * The search index in state_dir, opened (every connection of it) before
 * privileges are dropped and the root changed, so the server can keep
 * it whoever it runs as and wherever it is confined.  A damaged file or
 * one of another version is replaced by a new one, built in the
 * background by the indexing thread; one that is not a regular file is
 * left alone, and the index is kept in memory.
 */
static struct search *
open_search_index(const char *state)
{
	char path[PATH_MAX], dir[PATH_MAX], old[PATH_MAX];
	struct search *se = NULL;
	const char *why = NULL;
	bool damaged = false;

	/* Absolute: SQLite would otherwise ask for the working directory. */
	if (mkdir_p(state) == -1 || realpath(state, dir) == NULL) {
		log_warn("%s: the search index is kept in memory", state);
	} else if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir,
	               SEARCH_INDEX_FILE) < sizeof(path)) {
		/* The whole-index copy earlier versions kept: superseded. */
		if ((size_t)snprintf(old, sizeof(old), "%s/search.cache", dir) <
		        sizeof(old) &&
		    unlink(old) == 0)
			log_info("%s: removed (replaced by %s)", old,
			    SEARCH_INDEX_FILE);
		if ((se = search_open(path, &why, &damaged)) == NULL &&
		    damaged) {
			log_warnx("%s: %s; building a new one", path, why);
			if (search_remove(path) == -1)
				log_warn("%s", path);
			else
				se = search_open(path, &why, &damaged);
		}
		if (se == NULL)
			log_warnx("%s: %s; the search index is kept in memory",
			    path, why);
	}
	if (se == NULL && (se = search_open(NULL, &why, &damaged)) == NULL)
		log_warnx("search index: %s", why);
	return se;
}

/* A host's watch, scanned before its load walks the archive. */
struct walk_gate {
	struct watch *w;
	const char *root;
};

static void
scan_before_walk(void *arg)
{
	struct walk_gate *g = arg;

	if (g->w != NULL && watch_rescan(g->w, g->root) == -1)
		log_warn("watch: %s", g->root);
}

/*
 * Every host's archive; NULL (logged) when one cannot be read at all.
 * stores (NULL: none) are the hosts' search indexes, in order; watches
 * (NULL: none) their watches, opened unscanned for a quick start.
 * *problems: whether any skipped a file or warned.
 */
static struct snapshot **
load_hosts(const struct config *cfg, enum archive_index index,
    struct archive_store *stores, struct watch **watches, int *problems)
{
	struct snapshot **snaps;
	struct archive_opts ao;
	const char *why = NULL;
	char where[PATH_MAX + 64], tag[300];

	if ((snaps = calloc(cfg->nhosts, sizeof(*snaps))) == NULL)
		fatalx("out of memory");
	*problems = 0;
	for (size_t i = 0; i < cfg->nhosts; i++) {
		const struct host_conf *h = &cfg->hosts[i];
		struct snapshot *snap;

		struct walk_gate gate = {
		    watches != NULL ? watches[i] : NULL, h->root};

		config_archive_opts(cfg, h, &ao);
		ao.index = index;
		ao.store = stores != NULL ? &stores[i] : NULL;
		ao.before_walk = scan_before_walk;
		ao.before_walk_arg = &gate;
		if ((snap = archive_load(&ao, &why)) == NULL) {
			log_warnx("%s: %s: %s",
			    config_host_where(
			        cfg, h, "root", where, sizeof(where)),
			    ao.root, why);
			for (size_t k = 0; k < i; k++)
				snapshot_release(snaps[k]);
			free(snaps);
			return NULL;
		}
		if (snap->from_tree)
			log_info("%sarchive %s: %zu articles in %zu sections, "
			         "%zu skipped, %zu other warnings, from the "
			         "tree saved at the last stop, loaded in %lu "
			         "ms; checked against the archive once serving",
			    host_tag(cfg, h, tag, sizeof(tag)), ao.root,
			    snap->narticles, snap->nsections, snap->nskipped,
			    snap->nwarnings, snap->load_ms);
		else
			log_info("%sarchive %s: %zu articles in %zu sections, "
			         "%zu skipped, %zu other warnings, %zu read, "
			         "%zu from the article pack, loaded in %lu ms "
			         "(by then: listed %lu, read %lu, packed %lu, "
			         "pages %lu)",
			    host_tag(cfg, h, tag, sizeof(tag)), ao.root,
			    snap->narticles, snap->nsections, snap->nskipped,
			    snap->nwarnings, snap->nparsed, snap->ncached,
			    snap->load_ms, snap->walked_ms, snap->read_ms,
			    snap->packed_ms, snap->pages_ms);
		if (snap->nskipped > 0 || snap->nwarnings > 0)
			*problems = 1;
		snaps[i] = snap;
	}
	return snaps;
}

/*
 * The article texts' file (archive_set_pack): unnamed (O_TMPFILE), so it
 * is this process's alone, needs no cleaning up, and no other serai on
 * the same state_dir can truncate it under our mappings.  Without it the
 * texts stay in memory.
 */
static void
open_pack(const struct config *cfg)
{
	int fd;

	if (mkdir_p(cfg->state_dir) == -1 ||
	    (fd = open(cfg->state_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) ==
	        -1) {
		log_warn("%s: article texts kept in memory", cfg->state_dir);
		return;
	}
	archive_set_pack(fd);
}

/*
 * The trees the sandbox leaves reachable, opened now: the chroot and the
 * privilege drop to come would hide them.
 */
/* path's directory, and its real one (certbot's live/ links elsewhere). */
static void
add_dirs(char **v, size_t *n, const char *path)
{
	char buf[PATH_MAX], *real;
	const char *slash;

	if (path == NULL)
		return;
	if ((slash = strrchr(path, '/')) == NULL)
		v[(*n)++] = strdup(".");
	else if ((size_t)(slash - path) < sizeof(buf)) {
		memcpy(buf, path, (size_t)(slash - path));
		buf[slash == path ? 1 : slash - path] = '\0';
		v[(*n)++] = strdup(buf);
	}
	if ((real = realpath(path, NULL)) != NULL) {
		if ((slash = strrchr(real, '/')) != NULL && slash != real)
			*(char *)slash = '\0';
		v[(*n)++] = real;
	}
}

/*
 * What a serving start opens before the load: each host's article pack
 * and its watch (NULL where it has none).  The watch comes first so what
 * changes during the load is an event; both come before the privilege
 * drop, like everything else that opens, and later rescans need only
 * read access.
 */
static struct watch **
open_before_load(const struct config *cfg, struct archive_store *stores)
{
	struct watch **watches;

	/*
	 * Not in a chroot: valgrind's address space manager asserts on
	 * unmapping a file mapped before the chroot and another after it
	 * (valgrind 3.19, "! is_freeslot(ix)"), and the slow suite runs
	 * every test under it.  The texts then stay in memory.
	 */
	if (cfg->chroot == NULL) {
		open_pack(cfg);
		for (size_t i = 0; i < cfg->nhosts; i++)
			if (mkdir_p(cfg->hosts[i].state) == 0)
				stores[i].pack = pack_open(cfg->hosts[i].state,
				    cfg->hosts[i].root, cfg->hosts[i].name);
	}
	if ((watches = calloc(cfg->nhosts, sizeof(*watches))) == NULL)
		fatalx("out of memory");
	/*
	 * With a quick start, a host's watch is scanned when its load walks
	 * (scan_before_walk), or by the check after a start from the saved
	 * tree: before serving, that scan would cost a second at a million
	 * articles.
	 */
	for (size_t i = 0; i < cfg->nhosts; i++)
		if (cfg->hosts[i].watch)
			watches[i] = watch_open(
			    cfg->hosts[i].root, !cfg->archive_quick_start);
	return watches;
}

static void
sandbox_trees(const struct config *cfg, struct sandbox *sb)
{
	struct sandbox_paths sp = {
	    .ro = cfg->hosts[0].root, .rw = cfg->state_dir, .logdir = NULL};
	char dir[PATH_MAX], **more;
	const char *log = cfg->access_log, *slash;
	size_t n = 0;

	/*
	 * The other hosts' roots, and every configured certificate's and
	 * key's directory: SIGHUP reads them again, renewed.  A host's
	 * state_dir/NAME is within state_dir.
	 */
	/* Per host: its root, and two directories each for cert and key. */
	if ((more = calloc(cfg->nhosts * 5, sizeof(*more))) == NULL)
		fatalx("out of memory");
	for (size_t i = 0; i < cfg->nhosts; i++) {
		if (i > 0)
			more[n++] = strdup(cfg->hosts[i].root);
		add_dirs(more, &n, cfg->hosts[i].cert);
		add_dirs(more, &n, cfg->hosts[i].key);
	}
	sp.more_ro = (const char *const *)more;
	sp.nmore_ro = n;

	/* A rotated log is created anew beside the old one. */
	if (log != NULL && strcmp(log, "stderr") != 0 &&
	    strcmp(log, "syslog") != 0) {
		if ((slash = strrchr(log, '/')) == NULL)
			sp.logdir = ".";
		else if (slash == log)
			sp.logdir = "/";
		else if ((size_t)(slash - log) < sizeof(dir)) {
			memcpy(dir, log, (size_t)(slash - log));
			dir[slash - log] = '\0';
			sp.logdir = dir;
		}
	}
	sandbox_prepare(sb, &sp);
	for (size_t i = 0; i < n; i++)
		free(more[i]);
	free(more);
}

/* After the drop, before any thread: Landlock binds only this one. */
static void
sandbox_enter(struct sandbox *sb)
{
	char what[128];

	if (sandbox_apply(sb, what, sizeof(what)) == -1)
		fatalx("sandbox: cannot apply it; [server] sandbox = no "
		       "serves without it");
	log_info("sandbox: %s", what);
}

int
main(int argc, char **argv)
{
	/* --export has no letter: a rare command, spelled out in scripts. */
	static const struct option longopts[] = {
	    {"export", required_argument, NULL, 'E'},
	    {NULL, 0, NULL, 0},
	};
	struct config cfg;
	struct snapshot **snaps;
	struct watch **watches = NULL;
	struct server *srv;
	struct priv priv;
	struct sandbox sb;
	struct archive_store *stores;
	struct tls *tls;
	const char *cfile = NULL, *export_dir = NULL;
	int ch, check = 0, rv;

	log_init("serai");
	while ((ch = getopt_long(argc, argv, "c:hnV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			cfile = optarg;
			break;
		case 'E':
			export_dir = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'n':
			check = 1;
			break;
		case 'V':
			printf("serai %s\n", SERAI_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || (check && export_dir != NULL)) {
		usage(stderr);
		return 2;
	}

	config_defaults(&cfg);
	if (cfile != NULL && config_load(&cfg, cfile) == -1) {
		config_free(&cfg);
		return 1;
	}
	if (config_finish(&cfg) == -1) {
		config_free(&cfg);
		return 1;
	}
	if (export_dir != NULL) {
		rv = export_mirror(&cfg, export_dir);
		config_free(&cfg);
		return rv;
	}
	memset(&priv, 0, sizeof(priv));
	if (open_logs(&cfg) == -1 || priv_resolve(&cfg, &priv) == -1 ||
	    (check && tls_check(&cfg) == -1)) {
		priv_free(&priv);
		config_free(&cfg);
		return 1;
	}
	/* Each host's index, opened once its archive is loaded, below. */
	if ((stores = calloc(cfg.nhosts, sizeof(*stores))) == NULL)
		fatalx("out of memory");
	for (size_t i = 0; i < cfg.nhosts; i++)
		archive_store_init(&stores[i], NULL);
	/* Serve at once; search joins when its index is built. */
	if (!check)
		watches = open_before_load(&cfg, stores);
	if ((snaps = load_hosts(&cfg,
	         check ? ARCHIVE_INDEX_NONE : ARCHIVE_INDEX_LATER,
	         check ? NULL : stores, watches, &rv)) == NULL) {
		for (size_t i = 0; i < cfg.nhosts; i++) {
			pack_close(stores[i].pack);
			archive_store_close(&stores[i]);
			if (watches != NULL)
				watch_stop(watches[i]);
		}
		free(watches);
		free(stores);
		priv_free(&priv);
		config_free(&cfg);
		return 1;
	}
	if (check) {
		log_info("%s: configuration OK%s",
		    cfile ? cfile : "(built-in defaults)",
		    rv ? "; the archive has problems (above)" : "");
		for (size_t i = 0; i < cfg.nhosts; i++)
			snapshot_release(snaps[i]);
		free(snaps);
		free(stores);
		priv_free(&priv);
		config_free(&cfg);
		return rv;
	}

	signal(SIGPIPE, SIG_IGN);
	/* A file size limit (ulimit -f): a write fails, and is handled. */
	signal(SIGXFSZ, SIG_IGN);
	raise_nofile(&cfg);
	tls = tls_setup(&cfg);
	for (size_t i = 0; i < cfg.nhosts; i++)
		stores[i].se = open_search_index(cfg.hosts[i].state);
	srv = server_new(&cfg, tls, snaps, watches);
	free(watches); /* the server holds them */
	if (cfg.sandbox)
		sandbox_trees(&cfg, &sb);
	if (priv.chroot[0] != '\0')
		tls_chroot(tls, priv.chroot);
	priv_drop(&priv, &cfg);
	if (priv.drop)
		tls_check_access(tls, priv.name);
	if (cfg.sandbox)
		sandbox_enter(&sb);
	else
		log_info("sandbox: off ([server] sandbox = no)");
	priv_free(&priv);
	server_signals(srv);
	for (size_t i = 0; i < cfg.nhosts; i++)
		archive_index_start(snaps[i]);
	free(snaps); /* the server holds them */
	if ((rv = server_run(srv)) == 0)
		server_save(srv);
	server_free(srv);
	tls_free(tls);
	/* After the last snapshot, which may still be indexing into them. */
	for (size_t i = 0; i < cfg.nhosts; i++) {
		search_free(stores[i].se);
		pack_close(stores[i].pack);
		archive_store_close(&stores[i]);
	}
	free(stores);
	config_free(&cfg);
	libevent_global_shutdown();
	return rv;
}
