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
#include "sandbox.h"
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
	    "           dir/gemini and dir/gopher, then exit\n"
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

/*
 * --export: a one-shot command run by whoever wants the mirror.  It binds
 * nothing and needs no certificate, so it runs before logs are opened and
 * privileges resolved: messages go to the terminal, files are the user's.
 */
static int
export_mirror(const struct config *cfg, const char *dir)
{
	struct archive_opts ao;
	struct snapshot *snap;
	const char *why = NULL;
	char where[PATH_MAX + 64];
	int rv;

	config_archive_opts(cfg, &ao);
	ao.index = ARCHIVE_INDEX_NONE;
	if ((snap = archive_load(&ao, &why)) == NULL) {
		log_warnx("%s: %s: %s",
		    config_where(cfg, "archive", "root", where, sizeof(where)),
		    ao.root, why);
		return 1;
	}
	rv = export_archive(snap, &ao, dir) == -1 ? 1 : 0;
	snapshot_release(snap);
	return rv;
}

/*
 * Opened before privileges are dropped (and the root changed), so the
 * server can keep its search index in state_dir whoever it runs as.
 */
static void
open_search_cache(const struct config *cfg)
{
	char path[PATH_MAX];
	struct stat st;
	int fd, fl;

	if ((size_t)snprintf(path, sizeof(path), "%s/search.cache",
	        cfg->state_dir) >= sizeof(path))
		return;
	if (mkdir_p(cfg->state_dir) == -1) {
		log_warn("%s: the search index will be built at every start",
		    cfg->state_dir);
		return;
	}
	/*
	 * Non-blocking, then a regular file only: a FIFO here would block
	 * the indexing thread for good, and with it the stop that joins it.
	 */
	if ((fd = open(path,
	         O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK,
	         0600)) == -1) {
		log_warn(
		    "%s: the search index will be built at every start", path);
		return;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		log_warnx("%s: not a regular file; the search index will be "
		          "built at every start",
		    path);
		close(fd);
		return;
	}
	if ((fl = fcntl(fd, F_GETFL)) != -1)
		(void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	archive_set_search_cache(fd);
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
static void
sandbox_trees(const struct config *cfg, struct sandbox *sb)
{
	struct sandbox_paths sp = {
	    .ro = cfg->archive_root, .rw = cfg->state_dir, .logdir = NULL};
	char dir[PATH_MAX];
	const char *log = cfg->access_log, *slash;

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
	struct archive_opts ao;
	struct snapshot *snap;
	struct server *srv;
	struct priv priv;
	struct sandbox sb;
	SSL_CTX *ssl;
	const char *cfile = NULL, *why = NULL, *export_dir = NULL;
	char where[PATH_MAX + 64];
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
	if (open_logs(&cfg) == -1 || priv_resolve(&cfg, &priv) == -1 ||
	    (check && tls_check(&cfg) == -1)) {
		config_free(&cfg);
		return 1;
	}
	config_archive_opts(&cfg, &ao);
	/* Serve at once; search joins when its index is built. */
	ao.index = check ? ARCHIVE_INDEX_NONE : ARCHIVE_INDEX_LATER;
	/*
	 * Not in a chroot: valgrind's address space manager asserts on
	 * unmapping a file mapped before the chroot and another after it
	 * (valgrind 3.19, "! is_freeslot(ix)"), and the slow suite runs
	 * every test under it.  The texts then stay in memory.
	 */
	if (!check && cfg.chroot == NULL)
		open_pack(&cfg);
	if ((snap = archive_load(&ao, &why)) == NULL) {
		log_warnx("%s: %s: %s",
		    config_where(&cfg, "archive", "root", where, sizeof(where)),
		    ao.root, why);
		config_free(&cfg);
		return 1;
	}
	log_info("archive %s: %zu articles in %zu sections, %zu skipped, "
	         "%zu other warnings, loaded in %lu ms",
	    ao.root, snap->narticles, snap->nsections, snap->nskipped,
	    snap->nwarnings, snap->load_ms);
	if (check) {
		rv = snap->nskipped > 0 || snap->nwarnings > 0 ? 1 : 0;
		log_info("%s: configuration OK%s",
		    cfile ? cfile : "(built-in defaults)",
		    rv ? "; the archive has problems (above)" : "");
		snapshot_release(snap);
		config_free(&cfg);
		return rv;
	}

	signal(SIGPIPE, SIG_IGN);
	raise_nofile(&cfg);
	ssl = tls_setup(&cfg);
	open_search_cache(&cfg);
	srv = server_new(&cfg, ssl, snap);
	if (cfg.sandbox)
		sandbox_trees(&cfg, &sb);
	priv_drop(&priv, &cfg);
	if (cfg.sandbox)
		sandbox_enter(&sb);
	else
		log_info("sandbox: off ([server] sandbox = no)");
	archive_index_start(snap);
	rv = server_run(srv);
	server_free(srv);
	SSL_CTX_free(ssl);
	config_free(&cfg);
	libevent_global_shutdown();
	return rv;
}
