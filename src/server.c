/*
 * Workers and listeners.  Sockets are bound in the main thread (before
 * any privilege drop), one per worker and address with SO_REUSEPORT so
 * the kernel spreads connections over the workers.  The main thread's
 * event_base only handles signals and the archive watcher (reloads).
 */
#include <errno.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "archive.h"
#include "log.h"
#include "server.h"
#include "util.h"

/* How long accept stays paused after running out of descriptors. */
#define ACCEPT_PAUSE_SEC 1
/*
 * Connections taken per wakeup of a listener.  A Gopher accept serves
 * its whole request (some 20 us), so 16 keep the others on the loop
 * waiting well under a millisecond behind a burst of new connections.
 */
#define ACCEPT_BATCH 16

struct snapshot *
server_snapshot(struct host *h)
{
	struct snapshot *snap;

	pthread_mutex_lock(&h->snap_lock);
	snap = snapshot_ref(h->snap);
	pthread_mutex_unlock(&h->snap_lock);
	return snap;
}

void
server_url_expect(const struct host *h, const char *local, unsigned local_port,
    struct url_expect *ex)
{
	ex->hostname = h->hc->name;
	ex->local_ip = local;
	ex->port = h->srv->cfg->gemini_public_port;
	ex->local_port = local_port;
	ex->aliases = h->hc->aliases;
	ex->naliases = h->hc->naliases;
}

/* Under a flood, one line a second, not one per connection. */
static void
log_refused(struct server *s, const char *what, const char *peer)
{
	time_t now = time(NULL);

	s->refused++;
	if (now == s->refused_at)
		return;
	log_warnx("%s (last from %s): %lu refused", what, peer, s->refused);
	s->refused_at = now;
	s->refused = 0;
}

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + 1;
}

void
server_admit(struct server *s, const unsigned char key[16], const char *peer,
    bool hold, struct admission *ad)
{
	const struct config *cfg = s->cfg;
	const char *what;

	memset(ad, 0, sizeof(*ad));
	pthread_mutex_lock(&s->conn_lock);
	if (addrcount_get(&s->perclient, key) >= cfg->max_per_client)
		ad->a = ADMIT_OVER_CLIENT;
	else if (s->nconns >= cfg->max_connections)
		ad->a = ADMIT_OVER_TOTAL;
	else if (cfg->rate > 0 &&
	    (ad->wait = ratelimit_take(&s->rates, key, now_seconds())) > 0)
		ad->a = ADMIT_SLOW_DOWN;
	else if (addrcount_inc(&s->perclient, key) == 0)
		ad->a = ADMIT_OVER_TOTAL; /* cannot be: sized for the pool */
	else
		s->nconns++;
	if (ad->a != ADMIT_OK) {
		if (hold && ad->a != ADMIT_OVER_TOTAL && s->nheld < HOLD_MAX &&
		    addrcount_get(&s->held, key) < HOLD_PER_CLIENT &&
		    addrcount_inc(&s->held, key) != 0) {
			s->nheld++;
			ad->held = true;
		}
		what = ad->a == ADMIT_OVER_TOTAL
		    ? "connection cap reached (max_connections)"
		    : ad->a == ADMIT_OVER_CLIENT
		    ? "connection cap reached (max_per_client)"
		    : "request rate limit reached";
		log_refused(s, what, peer);
	}
	pthread_mutex_unlock(&s->conn_lock);
}

void
server_release(
    struct server *s, const unsigned char key[16], const struct admission *ad)
{
	pthread_mutex_lock(&s->conn_lock);
	if (ad->a == ADMIT_OK) {
		s->nconns--;
		addrcount_dec(&s->perclient, key);
	} else if (ad->held) {
		s->nheld--;
		addrcount_dec(&s->held, key);
	}
	pthread_mutex_unlock(&s->conn_lock);
}

int
server_admit_headerless(
    struct server *s, const unsigned char key[16], const char *peer)
{
	int rv = -1;

	pthread_mutex_lock(&s->conn_lock);
	if (s->nconns < s->cfg->max_connections &&
	    addrcount_get(&s->headerless, key) < s->cfg->max_per_client &&
	    addrcount_inc(&s->headerless, key) != 0) {
		s->nconns++;
		rv = 0;
	} else
		log_refused(s,
		    "connection cap reached (connections awaiting a PROXY "
		    "header)",
		    peer);
	pthread_mutex_unlock(&s->conn_lock);
	return rv;
}

void
server_release_headerless(struct server *s, const unsigned char key[16])
{
	pthread_mutex_lock(&s->conn_lock);
	s->nconns--;
	addrcount_dec(&s->headerless, key);
	pthread_mutex_unlock(&s->conn_lock);
}

static void
search_done_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct search_job *j = arg;

	(void)fd;
	(void)ev;
	if (j->conn != NULL)
		conn_search_done(j->conn, j); /* it frees j */
	else
		server_search_free(j);
}

void
server_search_free(struct search_job *j)
{
	struct searchpool *p = &j->w->srv->searches;

	pthread_mutex_lock(&p->lock);
	TAILQ_REMOVE(&p->all, j, all);
	pthread_mutex_unlock(&p->lock);
	event_free(j->done);
	reply_free(&j->r);
	snapshot_release(j->snap);
	free(j->line);
	free(j);
}

struct search_job *
server_search(struct worker *w, struct conn *c, enum proto proto,
    struct host *host, struct snapshot *snap, const char *line, size_t len,
    const char *local, unsigned local_port)
{
	struct searchpool *p = &w->srv->searches;
	struct search_job *j;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return NULL;
	j->w = w;
	j->conn = c;
	j->proto = proto;
	j->host = host;
	j->len = len;
	j->local_port = local_port;
	strlcpy_s(j->local, local, sizeof(j->local));
	reply_init(&j->r);
	if ((j->line = malloc(len + 1)) == NULL ||
	    (j->done = event_new(w->base, -1, 0, search_done_cb, j)) == NULL) {
		free(j->line);
		free(j);
		return NULL;
	}
	memcpy(j->line, line, len);
	j->line[len] = '\0';
	pthread_mutex_lock(&p->lock);
	if (p->nqueued >= SEARCH_QUEUE_MAX || p->nthreads == 0 || p->stop) {
		pthread_mutex_unlock(&p->lock);
		event_free(j->done);
		free(j->line);
		free(j);
		return NULL;
	}
	j->snap = snapshot_ref(snap);
	TAILQ_INSERT_TAIL(&p->queue, j, queue);
	TAILQ_INSERT_TAIL(&p->all, j, all);
	p->nqueued++;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
	return j;
}

static void *
search_main(void *arg)
{
	struct server *s = arg;
	struct searchpool *p = &s->searches;
	struct search_job *j;

	/* Linux: nice applies to this thread alone. */
	if (setpriority(PRIO_PROCESS, (id_t)gettid(), SEARCH_NICE) == -1)
		log_warn("search thread: setpriority");
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->stop && TAILQ_EMPTY(&p->queue))
			pthread_cond_wait(&p->wake, &p->lock);
		if (p->stop)
			break;
		j = TAILQ_FIRST(&p->queue);
		TAILQ_REMOVE(&p->queue, j, queue);
		p->nqueued--;
		pthread_mutex_unlock(&p->lock);
		if (j->proto == PROTO_GEMINI) {
			struct url_expect ex;

			server_url_expect(
			    j->host, j->local, j->local_port, &ex);
			gemini_respond(&ex, j->snap, j->line, j->len, &j->r);
		} else
			gopher_respond(
			    &j->host->gopher, j->snap, j->line, j->len, &j->r);
		/* Thread-safe (evthread_use_pthreads): wakes the worker. */
		event_active(j->done, EV_TIMEOUT, 0);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static void
search_pool_init(struct server *s)
{
	struct searchpool *p = &s->searches;

	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	TAILQ_INIT(&p->queue);
	TAILQ_INIT(&p->all);
}

static void
search_pool_start(struct server *s)
{
	struct searchpool *p = &s->searches;

	for (; p->nthreads < SEARCH_THREADS; p->nthreads++)
		if (thread_start(&p->threads[p->nthreads], search_main, s) !=
		    0) {
			log_warnx("cannot start a search thread");
			break;
		}
}

/*
 * After the workers' loops are done: the threads finish the search they
 * run, and every job left (queued, or answered but not delivered) goes.
 */
static void
search_pool_stop(struct server *s)
{
	struct searchpool *p = &s->searches;
	struct search_job *j;

	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
	for (size_t i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	p->nthreads = 0;
	while ((j = TAILQ_FIRST(&p->all)) != NULL)
		server_search_free(j);
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->lock);
}

static int
bind_socket(const struct listen_addr *a, int reuseport)
{
	int fd, one = 1;

	fd = socket(
	    a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    (reuseport &&
	        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ==
	            -1) ||
	    (a->ss.ss_family == AF_INET6 &&
	        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) ==
	            -1) ||
	    bind(fd, (const struct sockaddr *)&a->ss, a->len) == -1 ||
	    listen(fd, LISTEN_BACKLOG) == -1) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/*
 * SO_REUSEPORT lets any process of the same user join a port's group, so
 * a second serai on the same ports would start and take a share of the
 * connections.  A plain bind first fails with EADDRINUSE if anyone holds
 * the address.
 */
static void
probe_free(const struct listen_list *ll)
{
	for (size_t i = 0; i < ll->n; i++) {
		int fd = bind_socket(&ll->v[i], 0);

		if (fd != -1) {
			close(fd);
			continue;
		}
		if (ll->v[i].wildcard6 &&
		    (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL))
			continue;
		fatalx("%s: cannot listen: %s", ll->v[i].text, strerror(errno));
	}
}

/* Whether fd listens on one address (not a wildcard), stored in ss. */
static bool
one_local(int fd, struct sockaddr_storage *ss)
{
	socklen_t len = sizeof(*ss);

	if (getsockname(fd, (struct sockaddr *)ss, &len) == -1)
		return false;
	if (ss->ss_family == AF_INET)
		return ((struct sockaddr_in *)ss)->sin_addr.s_addr !=
		    htonl(INADDR_ANY);
	if (ss->ss_family == AF_INET6)
		return !IN6_IS_ADDR_UNSPECIFIED(
		    &((struct sockaddr_in6 *)ss)->sin6_addr);
	return false;
}

static void
resume_accept(evutil_socket_t fd, short ev, void *arg)
{
	struct listener *l = arg;

	(void)fd;
	(void)ev;
	event_add(l->ev, NULL);
}

/*
 * Accepting until EAGAIN, as a minimal server does: under load a wakeup
 * finds several connections queued, and each one more taken here is an
 * epoll_wait less; the one failing accept4 ends the batch.  Bounded, so
 * that a burst of new connections cannot starve those already open.
 *
 * Out of descriptors, the listening socket stays readable and a naive
 * loop spins; pause accepting for a moment instead (OpenBSD httpd).
 */
static void
accept_cb(evutil_socket_t lfd, short ev, void *arg)
{
	struct listener *l = arg;
	struct timeval tv = {ACCEPT_PAUSE_SEC, 0};
	struct sockaddr_storage ss;
	socklen_t len;
	int fd = -1, e;

	(void)ev;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		len = sizeof(ss);
		fd = accept4(lfd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1)
			break;
		conn_accept(l, fd, (struct sockaddr *)&ss, (int)len);
	}
	if (fd != -1)
		return;
	e = errno;
	if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
		log_warnx("%s: accept: %s; pausing for %d s", l->text,
		    strerror(e), ACCEPT_PAUSE_SEC);
		event_del(l->ev);
		evtimer_add(l->resume, &tv);
	}
}

static int
add_listeners(struct worker *w, const struct listen_list *ll, enum proto p,
    struct host *host, int reuseport)
{
	for (size_t i = 0; i < ll->n; i++) {
		const struct listen_addr *a = &ll->v[i];
		struct listener *l;
		int fd;

		if ((fd = bind_socket(a, reuseport)) == -1) {
			if (a->wildcard6 &&
			    (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL)) {
				if (w->id == 0)
					log_warnx("%s: no IPv6 here; IPv4 only",
					    a->text);
				continue;
			}
			log_warn("%s: cannot listen", a->text);
			return -1;
		}
		l = &w->listeners[w->nlisteners];
		l->w = w;
		l->proto = p;
		l->host = host;
		l->proxy = p == PROTO_GEMINI ? w->srv->cfg->gemini_proxy
		                             : w->srv->cfg->gopher_proxy;
		memcpy(l->text, a->text, sizeof(l->text));
		l->one_local = one_local(fd, &l->local);
		l->ev =
		    event_new(w->base, fd, EV_READ | EV_PERSIST, accept_cb, l);
		l->resume = evtimer_new(w->base, resume_accept, l);
		if (l->ev == NULL || l->resume == NULL ||
		    event_add(l->ev, NULL) == -1) {
			if (l->ev)
				event_free(l->ev);
			if (l->resume)
				event_free(l->resume);
			close(fd);
			log_warnx("%s: cannot set up the listener", a->text);
			return -1;
		}
		w->nlisteners++;
		if (w->id == 0)
			log_info("%s listening on %s%s%s%s",
			    p == PROTO_GEMINI ? "gemini" : "gopher", a->text,
			    l->proxy ? " (PROXY protocol)" : "",
			    host && w->srv->cfg->vhosts ? " for " : "",
			    host && w->srv->cfg->vhosts ? host->hc->name : "");
	}
	return 0;
}

static void
stop_cb(evutil_socket_t sig, short ev, void *arg)
{
	struct server *s = arg;

	(void)ev;
	log_info("%s: stopping", strsignal((int)sig));
	for (size_t i = 0; i < s->nworkers; i++)
		event_base_loopexit(s->workers[i].base, NULL);
	event_base_loopexit(s->base, NULL);
}

/* logrotate moved the access log away: write to a new file by its name. */
static void
reopen_cb(evutil_socket_t sig, short ev, void *arg)
{
	(void)sig;
	(void)ev;
	(void)arg;
	if (log_access_reopen() == -1)
		log_warn("SIGUSR1: cannot reopen the access log%s; still "
		         "writing to the old file",
		    errno == EACCES ? " (the serving user may not create it: "
		                      "have the rotation create it, writable "
		                      "by that user)"
		                    : "");
	else
		log_info("SIGUSR1: access log reopened");
}

/*
 * The new snapshot is built beside the old one; requests in flight keep
 * their reference to the old one, which goes when its last reply does.
 * SIGHUP and the watcher share this, on the main thread's loop.  Each
 * host on its own: a broken archive keeps its old snapshot and costs the
 * other hosts nothing.  The watcher's reload reads only the directories
 * it saw change; SIGHUP's stats every file, for whoever changed the tree
 * behind the watch.
 */
static void
reload_host(struct host *h, bool watched)
{
	const struct config *cfg = h->srv->cfg;
	struct archive_opts o;
	struct snapshot *snap, *old;
	struct archive_changes *changes;
	const char *why = NULL;
	char name[300] = "";

	if (cfg->vhosts)
		snprintf(name, sizeof(name), "[host %s] ", h->hc->name);
	config_archive_opts(cfg, h->hc, &o);
	/* The archive's search index: only the main thread swaps h->snap. */
	o.store = h->snap->opts.store;
	/*
	 * Watches first, then the read: a file written into a new directory
	 * after the load has read it is then an event, never missed.
	 */
	if (h->watch != NULL && watch_rescan(h->watch, o.root) == -1)
		log_warn("watch: %s", o.root);
	changes = watch_changes(h->watch);
	/* Only this thread replaces h->snap: it stays put meanwhile. */
	snap = archive_reload(h->snap, &o, watched ? changes : NULL, &why);
	watch_changes_free(changes);
	if (snap == NULL) {
		watch_changes_lost(h->watch);
		log_warnx("reload: %s%s: %s; still serving the old archive",
		    name, o.root, why);
		return;
	}
	pthread_mutex_lock(&h->snap_lock);
	old = h->snap;
	h->snap = snap;
	pthread_mutex_unlock(&h->snap_lock);
	snapshot_release(old);
	/* Said once searches meet the new snapshot, which names the hits. */
	archive_log_index(snap);
	log_info("reloaded: %s%zu articles in %zu sections, %zu skipped, "
	         "%zu read again, %zu directories listed, loaded in %lu ms "
	         "(search index %lu ms)",
	    name, snap->narticles, snap->nsections, snap->nskipped,
	    snap->nparsed, snap->nlisted, snap->load_ms, snap->index_ms);
}

static void
reload_cb(evutil_socket_t sig, short ev, void *arg)
{
	struct server *s = arg;

	(void)sig;
	(void)ev;
	for (size_t i = 0; i < s->nhosts; i++)
		reload_host(&s->hosts[i], false);
	tls_reload(s->tls);
}

/*
 * A start made from the saved tree serves it at once; it is checked
 * against the archive here, as SIGHUP would, as soon as the loop runs:
 * what changed while serai was down is served a reload later.
 */
static void
verify_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct host *h = arg;

	(void)fd;
	(void)ev;
	if (h->srv->cfg->vhosts)
		log_info("[host %s] checking the saved tree against the "
		         "archive",
		    h->hc->name);
	else
		log_info("checking the saved tree against the archive");
	reload_host(h, false);
}

/* The tree has been quiet for WATCH_QUIET_MS since a change. */
static void
watch_cb(void *arg)
{
	struct host *h = arg;

	if (h->srv->cfg->vhosts)
		log_info("[host %s] archive changed: reloading", h->hc->name);
	else
		log_info("archive changed: reloading");
	reload_host(h, true);
}

static void
logflush_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)ev;
	w->logflush_armed = false;
	log_access_flush();
}

/*
 * An active event runs after the callbacks already active in this loop
 * turn: the lines of all the connections served in one turn go out in
 * one write, yet none waits for another turn.
 */
void
server_log_soon(struct worker *w)
{
	if (w->logflush_armed)
		return;
	w->logflush_armed = true;
	event_active(w->logflush, EV_TIMEOUT, 0);
}

/*
 * Keys the rate table's hash, so that no client can aim its addresses at
 * another's set; time and pid only if getrandom fails.
 */
static uint64_t
rate_seed(void)
{
	uint64_t v = 0;

	if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
		v = (uint64_t)time(NULL) ^ (uint64_t)getpid();
	return v;
}

struct server *
server_new(const struct config *cfg, struct tls *tls, struct snapshot **snaps,
    struct watch **watches)
{
	struct server *s;
	struct event_config *ec;
	long ncpu;
	size_t nl, n;

	if (evthread_use_pthreads() == -1)
		fatalx("libevent without thread support");
	if ((s = calloc(1, sizeof(*s))) == NULL)
		fatalx("out of memory");
	s->cfg = cfg;
	s->tls = tls;
	if ((s->hosts = calloc(cfg->nhosts, sizeof(*s->hosts))) == NULL)
		fatalx("out of memory");
	s->nhosts = cfg->nhosts;
	for (size_t i = 0; i < s->nhosts; i++) {
		struct host *h = &s->hosts[i];

		h->srv = s;
		h->hc = &cfg->hosts[i];
		h->idx = i;
		h->snap = snaps[i];
		h->gopher.hostname = h->hc->name;
		h->gopher.port = h->hc->gopher_public_port;
		h->gopher.wrap = cfg->gopher_wrap;
		pthread_mutex_init(&h->snap_lock, NULL);
	}
	pthread_mutex_init(&s->conn_lock, NULL);
	search_pool_init(s);
	if (addrcount_init(&s->perclient, cfg->max_connections) == -1 ||
	    addrcount_init(&s->headerless, cfg->max_connections) == -1 ||
	    addrcount_init(&s->held, HOLD_MAX) == -1 ||
	    ratelimit_init(&s->rates, RATE_TABLE_SLOTS, cfg->rate, cfg->burst,
	        rate_seed()) == -1)
		fatalx("out of memory");
	if ((s->base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	/* Without inotify, serve anyway: SIGHUP still reloads. */
	for (size_t i = 0; i < s->nhosts; i++) {
		struct watch *w = watches[i];

		if (w != NULL &&
		    watch_attach(w, s->base, watch_cb, &s->hosts[i]) == -1) {
			watch_stop(w);
			w = NULL;
		}
		s->hosts[i].watch = w;
	}

	n = cfg->workers;
	if (n == 0) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		n = ncpu < 1             ? 1
		    : ncpu > MAX_WORKERS ? MAX_WORKERS
		                         : (size_t)ncpu;
	}
	if ((s->workers = calloc(n, sizeof(*s->workers))) == NULL)
		fatalx("out of memory");
	s->nworkers = n;
	nl = cfg->gemini_listen.n;
	for (size_t i = 0; i < s->nhosts; i++)
		nl += s->hosts[i].hc->gopher.n;
	if (n > 1) {
		probe_free(&cfg->gemini_listen);
		for (size_t i = 0; i < s->nhosts; i++)
			probe_free(&s->hosts[i].hc->gopher);
	}
	/*
	 * A connection registers its socket once and unregisters it at
	 * close; the changelist applies both at the next dispatch, and
	 * makes none of a pair that cancels out (a connection that ends
	 * before the loop waits again).  Nothing here dup()s a socket, the
	 * case the flag is unsafe for.
	 */
	if ((ec = event_config_new()) == NULL ||
	    event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST) ==
	        -1)
		fatalx("out of memory");
	for (size_t i = 0; i < n; i++) {
		struct worker *w = &s->workers[i];

		w->srv = s;
		w->id = i;
		TAILQ_INIT(&w->conns);
		if ((w->base = event_base_new_with_config(ec)) == NULL ||
		    (w->listeners = calloc(nl, sizeof(*w->listeners))) ==
		        NULL ||
		    (w->logflush = event_new(w->base, -1, 0, logflush_cb, w)) ==
		        NULL)
			fatalx("out of memory");
		if (add_listeners(
		        w, &cfg->gemini_listen, PROTO_GEMINI, NULL, n > 1))
			fatalx("cannot listen on every configured address");
		for (size_t k = 0; k < s->nhosts; k++)
			if (add_listeners(w, &s->hosts[k].hc->gopher,
			        PROTO_GOPHER, &s->hosts[k], n > 1))
				fatalx("cannot listen on every configured "
				       "address");
	}
	event_config_free(ec);
	return s;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	log_access_batch(1);
	event_base_dispatch(w->base);
	log_access_batch(0);
	return NULL;
}

void
server_signals(struct server *s)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1};

	if (s->sig[0] != NULL)
		return;
	for (size_t i = 0; i < 4; i++) {
		event_callback_fn fn = stop_cb;

		if (sigs[i] == SIGHUP)
			fn = reload_cb;
		else if (sigs[i] == SIGUSR1)
			fn = reopen_cb;
		s->sig[i] = evsignal_new(s->base, sigs[i], fn, s);
		if (s->sig[i] == NULL || evsignal_add(s->sig[i], NULL) == -1)
			fatalx("cannot handle signal %d", sigs[i]);
	}
}

int
server_run(struct server *s)
{
	size_t started = 0;

	server_signals(s);
	search_pool_start(s);
	for (; started < s->nworkers; started++)
		if (thread_start(&s->workers[started].thread, worker_main,
		        &s->workers[started]) != 0) {
			log_warnx("cannot start worker %zu", started);
			s->status = 1;
			break;
		}
	log_info("serai %s ready: %zu worker(s)", SERAI_VERSION, started);
	for (size_t i = 0; i < s->nhosts; i++)
		if (s->hosts[i].snap->from_tree &&
		    event_base_once(s->base, -1, EV_TIMEOUT, verify_cb,
		        &s->hosts[i], NULL) == -1)
			log_warnx("cannot check the saved tree: send SIGHUP");
	if (started == s->nworkers)
		event_base_dispatch(s->base);
	for (size_t i = 0; i < started; i++)
		event_base_loopexit(s->workers[i].base, NULL);
	for (size_t i = 0; i < started; i++)
		pthread_join(s->workers[i].thread, NULL);
	return s->status;
}

/* After a clean stop: each host's snapshot for the next start. */
void
server_save(struct server *s)
{
	for (size_t i = 0; i < s->nhosts; i++) {
		struct host *h = &s->hosts[i];
		struct archive_opts o;

		config_archive_opts(s->cfg, h->hc, &o);
		o.store = h->snap->opts.store;
		(void)archive_save(h->snap, &o);
	}
}

void
server_free(struct server *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->nworkers; i++)
		conn_close_all(&s->workers[i]);
	search_pool_stop(s);
	for (size_t i = 0; i < s->nworkers; i++) {
		struct worker *w = &s->workers[i];

		for (size_t j = 0; j < w->nlisteners; j++) {
			int fd = event_get_fd(w->listeners[j].ev);

			event_free(w->listeners[j].ev);
			close(fd);
			event_free(w->listeners[j].resume);
		}
		free(w->listeners);
		if (w->logflush)
			event_free(w->logflush);
		if (w->base)
			event_base_free(w->base);
	}
	free(s->workers);
	for (size_t i = 0; i < 4; i++)
		if (s->sig[i])
			event_free(s->sig[i]);
	for (size_t i = 0; i < s->nhosts; i++) {
		watch_stop(s->hosts[i].watch);
		snapshot_release(s->hosts[i].snap);
		pthread_mutex_destroy(&s->hosts[i].snap_lock);
	}
	free(s->hosts);
	if (s->base)
		event_base_free(s->base);
	pthread_mutex_destroy(&s->conn_lock);
	addrcount_free(&s->perclient);
	addrcount_free(&s->headerless);
	addrcount_free(&s->held);
	ratelimit_free(&s->rates);
	free(s);
}
