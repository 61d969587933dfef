/*
 * serai: the daemon's shared definitions.  Limits are named here with the
 * reason for each number; leaf modules (article, text, url, render,
 * archive, proto) keep their own headers so unit tests link them alone.
 */
#ifndef SERAI_H
#define SERAI_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "version.h"

#define DEFAULT_HOSTNAME "localhost"
#define DEFAULT_STATE_DIR "./state"
#define DEFAULT_ARCHIVE_ROOT "./content"
#define DEFAULT_LANG "en"
/* Unprivileged ports, so `serai` runs as any user out of the box. */
#define DEFAULT_GEMINI_LISTEN "*:1965"
#define DEFAULT_GOPHER_LISTEN "*:7070"
/* RFC 1436 asks for lines under 70 columns; the UMN client cuts at 67. */
#define DEFAULT_GOPHER_WRAP 70
#define DEFAULT_MENU_WIDTH 67
/* Seconds from accept to a complete request (TLS handshake included). */
#define DEFAULT_REQUEST_TIMEOUT 10
/* Seconds to hand the whole answer to a reader. */
#define DEFAULT_WRITE_TIMEOUT 30
/*
 * Open connections, overall and per client address.  Sized so that 2,000
 * silent clients over 200 addresses are held (and timed out) while real
 * readers are still served; each costs a descriptor and ~10-20 KB.
 */
#define DEFAULT_MAX_CONNECTIONS 4096
#define DEFAULT_MAX_PER_CLIENT 32
/*
 * Requests a second from one client address (an IPv6 /64), sustained, and
 * the burst it may send at once: no human reader comes near either, a
 * crawler at one request a second never meets them, and a client pulling
 * a section's articles in parallel fits the burst.
 */
#define DEFAULT_RATE 10
#define DEFAULT_BURST 50
/*
 * Client addresses whose request rate is tracked at once; an address
 * unseen for burst/rate seconds (5 by default) has a full bucket again,
 * so only that recent a past needs room.  40 bytes each.
 */
#define RATE_TABLE_SLOTS 16384
/*
 * Gemini connections past max_per_client or the rate wait for their TLS
 * handshake to be told 44.  They are held outside max_connections, so a
 * client over its share can never take the places of others, but only
 * this many at once (and this many per address), each for at most
 * HOLD_TIMEOUT seconds; past that they are closed unanswered.
 */
#define HOLD_MAX 32
#define HOLD_PER_CLIENT 4
#define HOLD_TIMEOUT 5
/*
 * Descriptors kept back from the connection cap: listeners, logs, files,
 * and the Gemini connections held to be told 44.
 */
#define FD_RESERVE (64 + HOLD_MAX)
/*
 * [archive] watch: a reload once the tree has been quiet this long, so a
 * cp -r or rsync of many files costs one; and at most this long after the
 * first change, so a file rewritten without pause cannot hold it off.
 */
#define WATCH_QUIET_MS 300
#define WATCH_MAX_DELAY_MS 5000
/*
 * Directories watched at most: each inotify watch costs ~1 KB of kernel
 * memory out of a per-user budget (fs.inotify.max_user_watches) shared
 * with every other program of the user.
 */
#define WATCH_MAX 10000
/*
 * Searches run on their own threads, off the event loops, at a lower
 * priority (nice +SEARCH_NICE): a costly one then delays other requests
 * by a scheduler slice, not by its run.  They take the index's one lock
 * in turn, so two threads are enough to keep a core busy while snippets
 * are cut; SEARCH_QUEUE_MAX waiting is a few seconds of work, and past
 * it a search is answered "busy" at once.
 */
#define SEARCH_THREADS 2
#define SEARCH_NICE 10
#define SEARCH_QUEUE_MAX 64
#define SEARCH_BUSY_WAIT 5 /* seconds, in the 44 of a search turned away */
/* Threads beyond this buy nothing on the machines serai runs on. */
#define MAX_WORKERS 64
/* Kernel accept queue; small backlogs drop SYNs under bursts (gmid: 16). */
#define LISTEN_BACKLOG 1024

struct listen_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[64];  /* "127.0.0.1:1965", "[::1]:1965" */
	char item[64];  /* as written: "*:1965" (truncated if need be) */
	bool wildcard6; /* IPv6 half of "*" or "localhost": optional */
};

struct listen_list {
	struct listen_addr *v;
	size_t n;
	unsigned port; /* the first address's port: the default public port */
	int line;      /* where the key was set; 0: the default */
};

/*
 * [host NAME] sections at most.  Each holds an archive in memory, an
 * SSL_CTX and its own search index; an SNI name is looked up among all
 * of them per handshake.  A mirror carries a handful; 1000 is ample.
 */
#define HOST_MAX 1000
/* Other names a host answers to (www.NAME, an old name...). */
#define HOST_ALIASES_MAX 16

/*
 * One archive and the names it is served under.  The single-archive form
 * ([archive], [server] hostname) is one host too, built by config_finish.
 */
struct host_conf {
	char *name; /* lower case */
	char *aliases[HOST_ALIASES_MAX];
	size_t naliases;
	char *root;
	char *title; /* NULL: content/section.ini, else a default */
	char *lang;
	char *cert, *key; /* NULL: generated in state_dir as NAME.crt/.key */
	struct listen_list gopher; /* n == 0: no Gopher for this host */
	unsigned gopher_public_port;
	bool watch;
	char *state;     /* its search index: state_dir, or state_dir/NAME */
	int line;        /* of its [host] header; 0: the single-archive form */
	int keyline[16]; /* as config.keyline, for host_keys in config.c */
};

/* The whole configuration; built once, then read-only. */
/* Keys a configuration holds at most (config.c's table has fewer). */
#define CONFIG_MAX_KEYS 64

struct config {
	char *file; /* NULL: built-in defaults */
	/* The line each key of config.c's table was set on; 0: unset. */
	int keyline[CONFIG_MAX_KEYS];
	char *hostname;
	char *state_dir;
	unsigned workers; /* 0: one per CPU */
	char *user;       /* drop to this user after binding; see main.c */
	char *group;      /* default: the user's group */
	char *chroot;
	char *access_log; /* "stderr" (default), "syslog" or a file */
	char *error_log;  /* "stderr" (default) or "syslog" */
	bool sandbox;     /* Landlock and seccomp once serving; see sandbox.c */

	char *archive_root;
	char *archive_title; /* NULL: content/section.ini, else a default */
	char *archive_lang;
	bool archive_watch; /* reload on changes (inotify) */
	/* Start from the tree saved at the last stop, then check it. */
	bool archive_quick_start;

	struct listen_list gemini_listen;
	char *gemini_cert;
	char *gemini_key;
	/*
	 * The port clients use, which differs from the listening one behind
	 * a proxy; 0 until config_finish makes it the first listen port.
	 */
	unsigned gemini_public_port;
	bool gemini_proxy; /* every connection opens with a PROXY header */

	struct listen_list gopher_listen;
	unsigned gopher_public_port; /* as for Gemini; menus advertise it */
	bool gopher_proxy;
	unsigned gopher_wrap;
	unsigned gopher_menu_width;

	unsigned request_timeout;
	unsigned write_timeout;
	unsigned max_connections;
	unsigned max_per_client;
	unsigned rate; /* requests a second per address; 0: no limit */
	unsigned burst;

	/*
	 * Every host, the default (for clients without SNI) first; after
	 * config_finish there is at least one.  vhosts: given as [host]
	 * sections (else the one host is the single-archive form's).
	 */
	struct host_conf *hosts;
	size_t nhosts;
	bool vhosts;
};

/* config.c */
void config_defaults(struct config *);
/* 0, or -1 after logging every problem as "file:line: [section] key: why". */
int config_load(struct config *, const char *path);
/* The same on text already in memory; name stands for the file in messages. */
int config_load_buf(
    struct config *, const char *name, const char *data, size_t len);
/*
 * Fills in what the file left unset (listen, public ports) and checks
 * what no single key can: cert with key, no two listeners on one address
 * and port.  0 or -1 after logging the problem.
 */
int config_finish(struct config *);
void config_free(struct config *);
/*
 * Where a key's value came from, for a message about it:
 * "file:line: [section] key", "file: [section] key" when the file left
 * it unset, "(built-in defaults): [section] key" without a file.
 */
const char *config_where(const struct config *, const char *section,
    const char *key, char *buf, size_t size);
int config_parse_listen(
    const char *value, struct listen_list *, const char **why);
struct archive_opts;
void config_archive_opts(
    const struct config *, const struct host_conf *, struct archive_opts *);
/* "file:line: [host NAME] key" as config_where, for a host's key. */
const char *config_host_where(const struct config *, const struct host_conf *,
    const char *key, char *buf, size_t size);
/* The host an SNI or URL name belongs to (name or alias), or NULL. */
const struct host_conf *config_host_find(const struct config *, const char *);

/* priv.c */
struct priv {
	int drop; /* started as root: setuid/setgid (and chroot) to come */
	uid_t uid;
	gid_t gid;
	const char *name;
	char chroot[4096]; /* resolved; "" for none */
	char **roots;      /* each host's archive root as seen inside it */
	size_t nroots;
};
/* Looks up user, group and chroot before anything is bound; 0 or -1. */
int priv_resolve(struct config *, struct priv *);
/* After binding and reading keys, before workers start. */
void priv_drop(struct priv *, struct config *);
void priv_free(struct priv *);

/* export.c */
struct snapshot;
/*
 * Writes DIR/gemini and DIR/gopher, static trees for stock Gemini and
 * Gopher (Gophernicus) servers, from a snapshot loaded with keep_parsed.
 * Creates DIR if missing; refuses when either tree exists.  0, or -1 with
 * the path named in the log.
 */
int export_archive(
    const struct snapshot *, const struct archive_opts *, const char *dir);

/* watch.c: [archive] watch (Linux inotify) */
struct event_base;
struct watch;
struct archive_changes;
/*
 * Watches every directory under root.  Opened before the archive is
 * loaded, so that whatever changes during the load is an event and the
 * first reload reads only that, not the whole tree.  NULL (logged) when
 * inotify or the root is not available.  scan false: nothing watched
 * yet, and the first reload, a full one, scans (watch_rescan) first; a
 * start from the saved tree serves before it (a million articles' 585
 * directories took a second to watch) and checks the tree after.
 */
struct watch *watch_open(const char *root, bool scan);
/*
 * From then on base's loop calls changed(arg) once the tree has been
 * quiet for WATCH_QUIET_MS after a change (events queued since
 * watch_open included).  -1 (logged): the caller stops the watch.
 */
int watch_attach(
    struct watch *, struct event_base *, void (*changed)(void *), void *arg);
/*
 * Before each load: drops the queued events (the load sees their
 * changes), watches new directories and forgets gone ones.  root as named
 * now (a chroot renames it).  0, or -1 with errno when the root is gone:
 * only its coming back is then watched.
 */
int watch_rescan(struct watch *, const char *root);
/*
 * After watch_rescan, before the load: the directories changed since the
 * last call (archive.h), to be freed with watch_changes_free; NULL when
 * the whole tree must be read (events lost, directories unwatched).
 */
struct archive_changes *watch_changes(struct watch *);
void watch_changes_free(struct archive_changes *);
/* The load that took the changes failed: the next one reads it all. */
void watch_changes_lost(struct watch *);
void watch_stop(struct watch *);

/* tls.c (OpenSSL) */
struct ssl_st;
struct ssl_ctx_st;
struct tls;
/* Every host's context (certificates made if need be); fatal on failure. */
struct tls *tls_setup(const struct config *);
/* A Gemini connection's SSL; its handshake settles on a host by SNI. */
struct ssl_st *tls_ssl_new(struct tls *);
/* The host (config order) a handshake settled on; -1: SNI named none. */
long tls_ssl_host(struct ssl_st *);
/*
 * A Gopher port's TLS connection: the port's host (config order) and its
 * current certificate, whatever name the client sends.
 */
struct ssl_st *tls_ssl_new_host(struct tls *, size_t host);
/*
 * SIGHUP: every host's pair loaded again for new connections; one that
 * fails keeps the old context, logged with the reason.
 */
void tls_reload(struct tls *);
/*
 * Before a chroot to dir: the certificate paths tls_reload reads are
 * made the ones they will have inside it (warned about if outside).
 */
void tls_chroot(struct tls *, const char *dir);
/*
 * After the privilege drop: a pair the serving user cannot read is said
 * now, not at the first renewal.
 */
void tls_check_access(const struct tls *, const char *user);
void tls_free(struct tls *);
/* -n: the configured (or kept) certificates and keys load and match. */
int tls_check(const struct config *);

/* server.c: workers, listeners; conn.c: connections (libevent) */
struct server;
struct snapshot;
/* snaps: one loaded snapshot per host, in config order; taken over. */
/* watches: each host's (watch_open) or NULL; taken over likewise. */
struct server *server_new(const struct config *, struct tls *,
    struct snapshot **snaps, struct watch **watches);
/* Runs until SIGINT/SIGTERM; SIGHUP reloads the archive.  0 on a clean stop. */
/*
 * SIGINT, SIGTERM, SIGHUP and SIGUSR1 handled from now on (queued until
 * server_run): before anything a client or operator may see as ready,
 * such as the index's log line, so no signal meets its default action.
 */
void server_signals(struct server *);
int server_run(struct server *);
/* After a clean server_run: the archives saved for a quick start. */
void server_save(struct server *);
void server_free(struct server *);

#endif
