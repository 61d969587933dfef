/*
 * serai: a Gemini and Gopher server for a news archive.
 * main: arguments, configuration, archive, TLS, then the server.
 */
#include <event2/event.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "archive.h"
#include "log.h"
#include "serai.h"

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: serai [-hnV] [-c file]\n"
	    "  -c file  configuration file (default: built-in "
	    "defaults)\n"
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

int
main(int argc, char **argv)
{
	struct config cfg;
	struct archive_opts ao;
	struct snapshot *snap;
	struct server *srv;
	SSL_CTX *ssl;
	const char *cfile = NULL, *why = NULL;
	int ch, check = 0, rv;

	log_init("serai");
	while ((ch = getopt(argc, argv, "c:hnV")) != -1) {
		switch (ch) {
		case 'c':
			cfile = optarg;
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
	if (optind != argc) {
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
	config_archive_opts(&cfg, &ao);
	if ((snap = archive_load(&ao, &why)) == NULL) {
		log_warnx("archive root %s: %s", ao.root, why);
		config_free(&cfg);
		return 1;
	}
	log_info("archive %s: %zu articles in %zu sections, %zu skipped, "
	         "%zu other warnings",
	    ao.root, snap->narticles, snap->nsections, snap->nskipped,
	    snap->nwarnings);
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
	srv = server_new(&cfg, ssl, snap);
	rv = server_run(srv);
	server_free(srv);
	SSL_CTX_free(ssl);
	config_free(&cfg);
	libevent_global_shutdown();
	return rv;
}
