/*
 * Internal to server.c and conn.c: workers, each an event_base on its own
 * thread with its own SO_REUSEPORT listeners, sharing the snapshot and
 * the SSL_CTX read-only.
 */
#ifndef SERAI_SERVER_H
#define SERAI_SERVER_H

#include <event2/event.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <sys/queue.h>

#include "addrcount.h"
#include "proto.h"
#include "ratelimit.h"
#include "serai.h"

enum proto { PROTO_GEMINI, PROTO_GOPHER };

struct conn;

/*
 * One archive and its names: its snapshot (swapped by its own reloads,
 * which leave the other hosts alone), its watcher and Gopher menus.
 */
struct host {
	struct server *srv;
	const struct host_conf *hc;
	size_t idx; /* in config order: tls_ssl_host's number */
	pthread_mutex_t snap_lock;
	struct snapshot *snap; /* current; guarded by snap_lock */
	struct gopher_ctx gopher;
	struct watch *watch; /* watch = yes; NULL when off */
};

/*
 * A search, run by a search thread off the workers' loops: its answer
 * comes back to the worker through the job's event, whose callback runs
 * on the worker's thread, as every use of job->conn does.
 */
struct search_job {
	TAILQ_ENTRY(search_job) queue; /* waiting for a search thread */
	TAILQ_ENTRY(search_job) all;   /* every live job, for shutdown */
	struct worker *w;
	struct conn *conn;  /* NULL once the connection is gone */
	struct event *done; /* in the worker's base */
	struct snapshot *snap;
	struct host *host;
	enum proto proto;
	char local[64]; /* the address the client reached, for Gemini URLs */
	unsigned local_port;
	char *line;
	size_t len;
	struct reply r;
};

struct searchpool {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	TAILQ_HEAD(, search_job) queue;
	TAILQ_HEAD(, search_job) all;
	size_t nqueued;
	pthread_t threads[SEARCH_THREADS];
	size_t nthreads;
	bool stop;
};

struct listener {
	struct worker *w;
	enum proto proto;
	/* Gopher: the host it serves; Gemini: NULL (SNI decides). */
	struct host *host;
	bool proxy;       /* connections open with a PROXY protocol header */
	struct event *ev; /* EV_READ on the listening socket */
	struct event *resume; /* re-arms accept after EMFILE */
	char text[64];
	/*
	 * Bound to one address, every connection reaches that address:
	 * Gemini takes it from here instead of a getsockname per connection.
	 */
	bool one_local;
	struct sockaddr_storage local;
};

struct worker {
	struct server *srv;
	size_t id;
	pthread_t thread;
	struct event_base *base;
	struct listener *listeners;
	size_t nlisteners;
	TAILQ_HEAD(, conn) conns;
	size_t nconns;
	/* Writes the access lines gathered while the loop ran what was ready. */
	struct event *logflush;
	bool logflush_armed;
};

struct server {
	const struct config *cfg;
	struct tls *tls;
	struct host *hosts; /* the default first */
	size_t nhosts;
	struct event_base *base; /* main thread: signals, watchers */
	struct event *sig[4];
	struct worker *workers;
	size_t nworkers;
	int status;

	/* Connection caps and request rates, shared by all workers. */
	pthread_mutex_t conn_lock;
	size_t nconns; /* the pool: admitted and header-less connections */
	struct addrcount perclient;
	struct addrcount headerless; /* PROXY header not read yet, by peer */
	size_t nheld;                /* Gemini connections held to be told 44 */
	struct addrcount held;
	struct ratelimit rates;
	struct searchpool searches;
	time_t refused_at; /* last "refused" log line: one a second at most */
	unsigned long refused;
};

enum admit {
	ADMIT_OK,          /* in the pool, counted for its address */
	ADMIT_OVER_CLIENT, /* past max_per_client */
	ADMIT_SLOW_DOWN,   /* past the request rate */
	ADMIT_OVER_TOTAL,  /* past max_connections */
};

struct admission {
	enum admit a;
	bool held;     /* not ADMIT_OK, yet held (Gemini) to be told 44 */
	unsigned wait; /* ADMIT_SLOW_DOWN: seconds until a request is allowed */
};

/* A reference to a host's snapshot; release with snapshot_release. */
struct snapshot *server_snapshot(struct host *);

/*
 * Counts a new connection against the caps and takes a request from its
 * address's rate.  ADMIT_OK puts it in the pool.  Otherwise, when hold is
 * true (Gemini: 44 needs the handshake done), it may be held outside the
 * pool (ad->held); if not, nothing is counted and the caller refuses it.
 */
void server_admit(struct server *, const unsigned char key[16],
    const char *peer, bool hold, struct admission *ad);
void server_release(
    struct server *, const unsigned char key[16], const struct admission *);
/*
 * A connection whose PROXY header is still to come: it takes a place in
 * the pool, and one of max_per_client for the peer that opened it, so a
 * peer cannot fill the pool with silent connections.  0, or -1: refused.
 */
int server_admit_headerless(
    struct server *, const unsigned char key[16], const char *peer);
void server_release_headerless(struct server *, const unsigned char key[16]);

/*
 * Queues a search for the search threads; the reply reaches
 * conn_search_done on the worker's thread.  The job is the caller's to
 * hold on to (to forget its connection) until then.  NULL when the queue
 * is full (SEARCH_QUEUE_MAX) or out of memory: answer "busy".
 */
struct search_job *server_search(struct worker *, struct conn *, enum proto,
    struct host *, struct snapshot *, const char *line, size_t len,
    const char *local, unsigned local_port);
/* What a Gemini URL must name to reach h. */
void server_url_expect(const struct host *h, const char *local,
    unsigned local_port, struct url_expect *);
void server_search_free(struct search_job *);

/* conn.c */
void conn_search_done(struct conn *, struct search_job *);
void conn_accept(
    struct listener *, evutil_socket_t, struct sockaddr *, int socklen);
void conn_close_all(struct worker *);
/* After an access line: have it written once this loop turn is done. */
void server_log_soon(struct worker *);

#endif
