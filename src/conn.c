/*
 * Connections: the only file that knows bufferevents.  A connection is a
 * small state machine:
 *
 *	[C_PROXY] -> C_HANDSHAKE (Gemini) -> C_REQUEST -> C_REPLY ->
 *	    [C_SHUTDOWN] -> [C_LINGER] -> closed
 *
 * One timer bounds each phase: accept to complete request (PROXY header
 * and TLS handshake included, an absolute deadline, not an idle timer,
 * so a trickle of bytes cannot hold a connection), then the reply.
 * Every request is logged once, by conn_log, when its connection ends.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "proxy.h"
#include "render.h"
#include "server.h"

/* Room for the longest request, escaped (4 bytes per control byte). */
#define LOG_REQUEST_MAX (GOPHER_LINE_MAX * 4 + 1)
/*
 * Closing a socket with unread input makes the kernel send a reset, which
 * can destroy the answer before the client reads it (an over-long request
 * is answered while most of it is still unread).  So a connection with
 * input pending half-closes and reads until EOF first, bounded in time
 * and bytes.
 */
#define LINGER_SECONDS 2
#define LINGER_MAX_BYTES (256 * 1024)

enum cstate { C_PROXY, C_HANDSHAKE, C_REQUEST, C_REPLY, C_SHUTDOWN, C_LINGER };

struct conn {
	TAILQ_ENTRY(conn) entry;
	struct worker *w;
	/* Gopher: its listener's; Gemini: SNI's once the request is in. */
	struct host *host;
	enum proto proto;
	enum cstate state;
	struct bufferevent *bev; /* NULL until the PROXY header is read */
	struct event *timer;
	struct event *proxy_ev; /* C_PROXY, or Gopher's first read: raw fd */
	unsigned char *hdr;     /* C_PROXY: the header bytes taken so far */
	size_t hdrlen;
	struct event *shut; /* close_notify, then lingering: raw fd events */
	size_t lingered;    /* bytes discarded while lingering */
	evutil_socket_t fd;
	struct timespec t0;
	char peer[INET6_ADDRSTRLEN];
	char local[INET6_ADDRSTRLEN];
	unsigned local_port;
	int status;
	size_t bytes;
	char *request; /* escaped, for the log; NULL before a request */
	struct admission ad;
	bool headerless;        /* counted as awaiting its PROXY header */
	struct search_job *job; /* a search running for it, or NULL */
	unsigned char key[16];  /* the client address, for the caps */
};

/* "a.b.c.d": glibc's inet_ntop goes through sprintf, 1,700 instructions. */
static void
ipv4_text(const unsigned char *a, char *dst)
{
	char *p = dst;

	for (int i = 0; i < 4; i++) {
		unsigned v = a[i];

		if (v >= 100)
			*p++ = (char)('0' + v / 100);
		if (v >= 10)
			*p++ = (char)('0' + v / 10 % 10);
		*p++ = (char)('0' + v % 10);
		*p++ = i < 3 ? '.' : '\0';
	}
}

static void
addr_text(const struct sockaddr *sa, char *dst, size_t n)
{
	const unsigned char *b;

	if (sa->sa_family == AF_INET && n >= INET_ADDRSTRLEN) {
		ipv4_text(
		    (const unsigned char *)&((const struct sockaddr_in *)sa)
		        ->sin_addr,
		    dst);
		return;
	}
	if (sa->sa_family != AF_INET6) {
		strlcpy_s(dst, "?", n);
		return;
	}
	b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
	/* An IPv4 client on an IPv6 socket reads better as IPv4. */
	if (IN6_IS_ADDR_V4MAPPED(
	        &((const struct sockaddr_in6 *)sa)->sin6_addr) &&
	    n >= INET_ADDRSTRLEN) {
		ipv4_text(b + 12, dst);
		return;
	}
	if (inet_ntop(AF_INET6, b, dst, (socklen_t)n) == NULL)
		strlcpy_s(dst, "?", n);
}

static const char *
proto_name(const struct conn *c)
{
	return c->proto == PROTO_GEMINI ? "gemini" : "gopher";
}

/*
 * The access line, built by hand: printf and strftime cost as much as
 * all the rest of a Gopher request.
 */
struct line {
	char p[LOG_REQUEST_MAX + 256];
	size_t n;
};

static void
put(struct line *l, const char *s, size_t n)
{
	if (n > sizeof(l->p) - 1 - l->n)
		n = sizeof(l->p) - 1 - l->n;
	memcpy(l->p + l->n, s, n);
	l->n += n;
}

static void
put_s(struct line *l, const char *s)
{
	put(l, s, strlen(s));
}

static void
put_u(struct line *l, unsigned long long v)
{
	char t[24];
	size_t i = sizeof(t);

	do
		t[--i] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	put(l, t + i, sizeof(t) - i);
}

/* The UTC timestamp, formatted once a second per thread. */
static const char *
timestamp(void)
{
	static _Thread_local time_t last = (time_t)-1;
	static _Thread_local char ts[32];
	time_t t = time(NULL);
	struct tm tm;

	if (t != last) {
		gmtime_r(&t, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
		last = t;
	}
	return ts;
}

static void
conn_log(const struct conn *c, const char *why)
{
	struct timespec now;
	struct line l; /* not zeroed: 4 KiB of memset per request */
	long long ns;
	unsigned long long tenths;
	char ch;

	l.n = 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ns = (long long)(now.tv_sec - c->t0.tv_sec) * 1000000000LL +
	    (now.tv_nsec - c->t0.tv_nsec);
	/* Milliseconds to one decimal, rounded, as "%.1f" wrote them. */
	tenths = ns > 0 ? (unsigned long long)(ns + 50000) / 100000 : 0;
	put_s(&l, timestamp());
	put(&l, " ", 1);
	put_s(&l, c->peer);
	put(&l, " ", 1);
	put_s(&l, proto_name(c));
	/* With [host] sections, which archive answered ("-": none). */
	if (c->w->srv->cfg->vhosts) {
		put(&l, " ", 1);
		put_s(&l, c->host ? c->host->hc->name : "-");
	}
	put(&l, " \"", 2);
	put_s(&l, c->request ? c->request : "");
	put(&l, "\" ", 2);
	if (c->proto == PROTO_GEMINI)
		put_u(&l, (unsigned)c->status);
	else {
		ch = (char)c->status;
		put(&l, &ch, 1);
	}
	put(&l, " ", 1);
	put_u(&l, c->bytes);
	put(&l, " ", 1);
	put_u(&l, tenths / 10);
	ch = (char)('0' + tenths % 10);
	put(&l, ".", 1);
	put(&l, &ch, 1);
	put(&l, "ms", 2);
	if (why != NULL) {
		put(&l, " ", 1);
		put_s(&l, why);
	}
	l.p[l.n] = '\0';
	log_access_str(l.p);
	server_log_soon(c->w);
}

/*
 * The request, escaped, for the log line; sized to fit, so that a short
 * one comes from malloc's per-thread cache.  NULL when out of memory.
 */
static void
set_request(struct conn *c, const char *line, size_t len)
{
	char tmp[LOG_REQUEST_MAX];
	size_t n;

	log_escape(tmp, sizeof(tmp), line, len);
	n = strlen(tmp) + 1;
	if ((c->request = malloc(n)) != NULL)
		memcpy(c->request, tmp, n);
}

/* The one way a connection ends; why (if any) goes to the log. */
static void
conn_close(struct conn *c, const char *why)
{
	struct worker *w = c->w;
	size_t left = 0;
	int outq = 0;

	/* The log counts bytes sent: what is still queued never went. */
	if (c->bev != NULL)
		left = evbuffer_get_length(bufferevent_get_output(c->bev));
	/* Cut short: what the kernel holds unacknowledged is lost too. */
	if (why != NULL && c->fd != -1 && ioctl(c->fd, SIOCOUTQ, &outq) == 0 &&
	    outq > 0)
		left += (size_t)outq;
	c->bytes = c->bytes > left ? c->bytes - left : 0;
	if (c->request != NULL)
		conn_log(c, why);
	else if (why != NULL)
		log_info("%s %s: closed: %s", proto_name(c), c->peer, why);
	TAILQ_REMOVE(&w->conns, c, entry);
	w->nconns--;
	/* The job's answer, when it comes, finds no one and is dropped. */
	if (c->job != NULL)
		c->job->conn = NULL;
	if (c->headerless)
		server_release_headerless(w->srv, c->key);
	else
		server_release(w->srv, c->key, &c->ad);
	if (c->shut)
		event_free(c->shut);
	if (c->proxy_ev)
		event_free(c->proxy_ev);
	event_free(c->timer);
	if (c->bev != NULL)
		bufferevent_free(c->bev); /* closes the fd, frees the SSL */
	else if (c->fd != -1)
		close(c->fd);
	free(c->hdr);
	free(c->request);
	free(c);
}

void
conn_close_all(struct worker *w)
{
	struct conn *c;

	while ((c = TAILQ_FIRST(&w->conns)) != NULL)
		conn_close(c, "server stopping");
}

static void
arm(struct conn *c, unsigned seconds)
{
	struct timeval tv = {(time_t)seconds, 0};

	evtimer_add(c->timer, &tv);
}

static void
release_cb(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	snapshot_release(arg);
}

/* Queues the rest of an answer that did not go out in one send. */
static void
queue_reply(struct evbuffer *out, const struct reply *r, size_t off,
    struct snapshot *snap)
{
	/* Snapshot bytes go out by reference; the snapshot lives until sent. */
	if (r->body != NULL && r->body->len > 0)
		evbuffer_add_reference(out, r->body->p + off,
		    r->body->len - off, release_cb, snapshot_ref(snap));
	else if (r->dyn.len > off)
		evbuffer_add(out, r->dyn.p + off, r->dyn.len - off);
}

/*
 * The header and a body that fit one TLS record go out as one piece: the
 * TLS bufferevent makes a record, and a write, of every piece.
 */
static void
gemini_queue(struct evbuffer *out, const struct reply *r, struct snapshot *snap)
{
	char head[GEMINI_META_MAX + 16];
	struct evbuffer_iovec v;
	const char *body;
	size_t hn, bn;
	int n;

	n = snprintf(head, sizeof(head), "%d %s\r\n", r->status, r->meta);
	hn = n < 0                     ? 0
	    : (size_t)n < sizeof(head) ? (size_t)n
	                               : sizeof(head) - 1;
	body = reply_body(r, &bn);
	if (hn + bn <= SSL3_RT_MAX_PLAIN_LENGTH &&
	    evbuffer_reserve_space(out, (ev_ssize_t)(hn + bn), &v, 1) == 1 &&
	    v.iov_len >= hn + bn) {
		memcpy(v.iov_base, head, hn);
		if (bn > 0)
			memcpy((char *)v.iov_base + hn, body, bn);
		v.iov_len = hn + bn;
		if (evbuffer_commit_space(out, &v, 1) == 0)
			return;
	}
	evbuffer_add(out, head, hn);
	queue_reply(out, r, 0, snap);
}

/*
 * Writing is enabled only once there is an answer to write: a TLS
 * bufferevent starts with it on, and would then register for EPOLLOUT
 * after the handshake and unregister once the empty buffer "drained",
 * two epoll_ctl calls per connection for nothing.
 */
static void
start_output(struct conn *c)
{
	bufferevent_enable(c->bev, EV_WRITE);
}

/*
 * The protocol's refusal, appended to out: a Gemini status line, or a
 * Gopher menu holding one type-3 line.
 */
static void
add_refusal(struct conn *c, struct evbuffer *out, int status, const char *meta,
    const char *gopher)
{
	if (c->proto == PROTO_GEMINI) {
		c->status = status;
		evbuffer_add_printf(out, "%d %s\r\n", status, meta);
	} else {
		struct buf b;

		buf_init(&b);
		render_gopher_error(
		    &b, c->host->gopher.hostname, c->host->gopher.port, gopher);
		c->status = '3';
		if (!buf_failed(&b))
			evbuffer_add(out, b.p, b.len);
		buf_free(&b);
	}
}

/*
 * The search queue is full: say so at once rather than queue without
 * bound (a Gemini client retries after the seconds given).
 */
static void
search_busy(struct conn *c, struct evbuffer *out)
{
	size_t before = evbuffer_get_length(out);
	char wait[16];

	snprintf(wait, sizeof(wait), "%d", SEARCH_BUSY_WAIT);
	start_output(c);
	add_refusal(
	    c, out, 44, wait, "search is busy: try again in a few seconds");
	c->bytes = evbuffer_get_length(out) - before;
}

/* Hands a search to the search threads; conn_search_done answers. */
static void
defer_search(
    struct conn *c, struct snapshot *snap, const char *line, size_t len)
{
	c->job = server_search(c->w, c, c->proto, c->host, snap, line, len,
	    c->local, c->local_port);
	if (c->job == NULL)
		search_busy(c, bufferevent_get_output(c->bev));
}

void
conn_search_done(struct conn *c, struct search_job *j)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t before = evbuffer_get_length(out);

	c->job = NULL;
	c->status = j->r.status;
	start_output(c);
	if (c->proto == PROTO_GEMINI)
		gemini_queue(out, &j->r, j->snap);
	else
		queue_reply(out, &j->r, 0, j->snap);
	c->bytes = evbuffer_get_length(out) - before;
	server_search_free(j);
}

static void
conn_request(struct conn *c, const char *line, size_t len)
{
	struct server *s = c->w->srv;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct snapshot *snap;
	struct reply r;
	size_t before = evbuffer_get_length(out);

	set_request(c, line, len);
	c->state = C_REPLY;
	bufferevent_disable(c->bev, EV_READ);
	arm(c, s->cfg->write_timeout);

	reply_init(&r);
	r.defer = true;
	if (c->proto == PROTO_GEMINI) {
		struct url_expect ex;
		long h = tls_ssl_host(bufferevent_openssl_get_ssl(c->bev));

		/* SNI named a host we do not serve: no archive answers. */
		c->host = h >= 0 ? &s->hosts[h] : NULL;
		snap = c->host ? server_snapshot(c->host) : NULL;
		if (c->host)
			server_url_expect(
			    c->host, c->local, c->local_port, &ex);
		if (c->ad.a != ADMIT_OK) {
			/* 44: the client should wait this many seconds. */
			r.status = 44;
			snprintf(r.meta, sizeof(r.meta), "%u",
			    c->ad.a == ADMIT_SLOW_DOWN
			        ? c->ad.wait
			        : s->cfg->request_timeout);
		} else if (c->host == NULL) {
			r.status = URL_PROXY;
			strlcpy_s(r.meta, "no such host here", sizeof(r.meta));
		} else
			gemini_respond(&ex, snap, line, len, &r);
	} else {
		snap = server_snapshot(c->host);
		gopher_respond(&c->host->gopher, snap, line, len, &r);
	}
	if (r.deferred)
		defer_search(c, snap, line, len);
	else {
		c->status = r.status;
		start_output(c);
		if (c->proto == PROTO_GEMINI)
			gemini_queue(out, &r, snap);
		else
			queue_reply(out, &r, 0, snap);
		c->bytes = evbuffer_get_length(out) - before;
	}
	reply_free(&r);
	if (snap != NULL)
		snapshot_release(snap);
}

/*
 * A line that can never be a request is answered at once, not left to
 * time out: too long, or a PROXY v2 header where none is expected (its
 * first line is empty, which Gopher would take for the home menu).
 */
static void
request_refused(
    struct conn *c, struct evbuffer *in, const char *gemini, const char *gopher)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	char head[64];
	size_t n = evbuffer_copyout(in, head, sizeof(head));

	set_request(c, head, n);
	c->state = C_REPLY;
	bufferevent_disable(c->bev, EV_READ);
	arm(c, c->w->srv->cfg->write_timeout);
	start_output(c);
	add_refusal(c, out, 59, gemini, gopher);
	c->bytes = evbuffer_get_length(out);
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr eol;
	char line[GOPHER_LINE_MAX + GEMINI_REQUEST_MAX + 2];
	unsigned char head[PROXY_V2_FIXED];
	size_t eol_len = 0, max, n;

	if (c->state == C_HANDSHAKE)
		c->state = C_REQUEST;
	if (c->state != C_REQUEST)
		return;
	/*
	 * Gemini wants CRLF; a bare LF does not end the request.  Gopher
	 * takes LF or CR alone too (Bombadillo sends LF alone, some
	 * clients CR): any run of them ends the line.
	 */
	n = evbuffer_get_length(in);
	if (c->proto == PROTO_GEMINI) {
		max = GEMINI_REQUEST_MAX;
		eol = evbuffer_search_eol(
		    in, NULL, &eol_len, EVBUFFER_EOL_CRLF_STRICT);
	} else {
		if (evbuffer_copyout(in, head, sizeof(head)) ==
		        (ev_ssize_t)sizeof(head) &&
		    proxy_is_v2(head, sizeof(head))) {
			request_refused(c, in, "",
			    "a PROXY protocol header, but this port expects "
			    "none");
			return;
		}
		max = GOPHER_LINE_MAX + 2;
		eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_ANY);
	}
	if (eol.pos == -1) {
		/*
		 * Gemini: past 1024 bytes with no CRLF, only a CR as the
		 * very last byte can still end a URL of 1024.
		 */
		if (c->proto == PROTO_GEMINI && n > GEMINI_URL_MAX) {
			char last = 0;
			struct evbuffer_ptr at;

			evbuffer_ptr_set(in, &at, n - 1, EVBUFFER_PTR_SET);
			evbuffer_copyout_from(in, &at, &last, 1);
			if (n > GEMINI_URL_MAX + 1 || last != '\r')
				max = 0;
		}
		if (n > max)
			request_refused(c, in, "request longer than 1024 bytes",
			    "request line too long");
		return;
	}
	if ((size_t)eol.pos > max) {
		request_refused(c, in, "request longer than 1024 bytes",
		    "request line too long");
		return;
	}
	evbuffer_remove(in, line, (size_t)eol.pos);
	evbuffer_drain(in, eol_len);
	conn_request(c, line, (size_t)eol.pos);
}

static void
linger_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct conn *c = arg;
	char scratch[4096];
	ssize_t n;

	(void)ev;
	for (;;) {
		n = read(fd, scratch, sizeof(scratch));
		if (n > 0) {
			if ((c->lingered += (size_t)n) > LINGER_MAX_BYTES)
				break;
			continue;
		}
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			event_add(c->shut, NULL);
			return;
		}
		if (n == -1 && errno == EINTR)
			continue;
		break; /* EOF or error: the client has everything */
	}
	conn_close(c, NULL);
}

static int
input_pending(struct conn *c)
{
	int n = 0;

	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		return 1;
	return ioctl(c->fd, FIONREAD, &n) == 0 && n > 0;
}

static void
linger_or_close(struct conn *c)
{
	struct timeval tv = {LINGER_SECONDS, 0};

	if (!input_pending(c)) {
		conn_close(c, NULL);
		return;
	}
	c->state = C_LINGER;
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	shutdown(c->fd, SHUT_WR);
	if (c->shut)
		event_free(c->shut);
	c->shut = event_new(c->w->base, c->fd, EV_READ, linger_cb, c);
	if (c->shut == NULL) {
		conn_close(c, NULL);
		return;
	}
	evtimer_add(c->timer, &tv);
	event_add(c->shut, NULL);
}

static void
shutdown_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct conn *c = arg;
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	int rv;

	(void)fd;
	(void)ev;
	rv = SSL_shutdown(ssl);
	if (rv < 0 && SSL_get_error(ssl, rv) == SSL_ERROR_WANT_WRITE) {
		event_add(c->shut, NULL);
		return;
	}
	ERR_clear_error();
	linger_or_close(c);
}

/*
 * libevent 2.1 never sends close_notify; without it a client cannot tell
 * a complete answer from a cut one, so send it ourselves.
 */
static void
finish(struct conn *c)
{
	if (c->proto == PROTO_GEMINI) {
		c->state = C_SHUTDOWN;
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
		c->shut =
		    event_new(c->w->base, c->fd, EV_WRITE, shutdown_cb, c);
		if (c->shut != NULL) {
			shutdown_cb(c->fd, EV_WRITE, c);
			return;
		}
	}
	linger_or_close(c);
}

static void
write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->state == C_REPLY &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		finish(c);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		c->state = C_REQUEST;
		return;
	}
	/* A client may half-close once its request is sent: keep writing. */
	if (c->state == C_REPLY && (what & BEV_EVENT_EOF) &&
	    (what & BEV_EVENT_READING))
		return;
	if (c->state == C_REPLY)
		conn_close(c, "client went away");
	else if (c->state == C_REQUEST && c->proto == PROTO_GOPHER &&
	    (what & BEV_EVENT_EOF)) {
		/* A Gopher request cut by EOF instead of CRLF still counts. */
		struct evbuffer *in = bufferevent_get_input(c->bev);
		size_t n = evbuffer_get_length(in);
		char line[GOPHER_LINE_MAX + 1];

		if (n == 0 || n > GOPHER_LINE_MAX) {
			conn_close(c, NULL);
			return;
		}
		evbuffer_remove(in, line, n);
		conn_request(c, line, n);
		bufferevent_enable(c->bev, EV_WRITE);
	} else
		conn_close(c, NULL);
}

static void
timeout_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)ev;
	switch (c->state) {
	case C_PROXY:
		conn_close(c, "PROXY header deadline passed");
		break;
	case C_HANDSHAKE:
		conn_close(c, "TLS handshake deadline passed");
		break;
	case C_REQUEST:
		conn_close(c, "request deadline passed");
		break;
	case C_LINGER:
		conn_close(c, NULL); /* the answer was sent */
		break;
	default:
		conn_close(c, "write deadline passed");
		break;
	}
}

/*
 * A refused connection is not held: a Gopher client gets one type-3 line
 * (a single non-blocking send) and a Gemini client, with no TLS up,
 * nothing.  What the client already sent is read first, so that the close
 * is a FIN and not a reset that could destroy the line in flight.
 */
static void
refuse(const struct host *h, enum proto p, evutil_socket_t fd,
    const struct admission *ad)
{
	char scratch[GOPHER_LINE_MAX + 2];
	char msg[128];
	struct buf b;

	if (p == PROTO_GOPHER && ad != NULL) {
		if (ad->a == ADMIT_SLOW_DOWN)
			snprintf(msg, sizeof(msg),
			    "too many requests from your address: slow down, "
			    "try again in %u s",
			    ad->wait);
		else
			strlcpy_s(msg,
			    ad->a == ADMIT_OVER_TOTAL
			        ? "server busy: too many connections, try "
			          "again later"
			        : "too many connections from your address, try "
			          "again later",
			    sizeof(msg));
		buf_init(&b);
		render_gopher_error(
		    &b, h->gopher.hostname, h->gopher.port, msg);
		if (!buf_failed(&b))
			(void)!send(
			    fd, b.p, b.len, MSG_DONTWAIT | MSG_NOSIGNAL);
		buf_free(&b);
	}
	shutdown(fd, SHUT_WR);
	while (recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT) > 0)
		;
	close(fd);
}

/* A held connection has only a short while to be told 44. */
static unsigned
hold_timeout(const struct server *s)
{
	return s->cfg->request_timeout < HOLD_TIMEOUT ? s->cfg->request_timeout
	                                              : HOLD_TIMEOUT;
}

static void
set_local(struct conn *c, const struct sockaddr *sa)
{
	addr_text(sa, c->local, sizeof(c->local));
	c->local_port = ntohs(sa->sa_family == AF_INET6
	        ? ((const struct sockaddr_in6 *)sa)->sin6_port
	        : ((const struct sockaddr_in *)sa)->sin_port);
}

/*
 * A connection on the worker's list, its deadline running; NULL (the fd
 * still the caller's) when out of memory.  It counts against the caps
 * only once c->admit says so: ADMIT_OVER_TOTAL releases nothing.
 */
static struct conn *
conn_new(struct listener *l, evutil_socket_t fd, const char *peer,
    const unsigned char key[16])
{
	struct worker *w = l->w;
	struct sockaddr_storage ls;
	socklen_t lslen = sizeof(ls);
	struct conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if ((c->timer = evtimer_new(w->base, timeout_cb, c)) == NULL) {
		free(c);
		return NULL;
	}
	c->w = w;
	c->host = l->host;
	c->fd = fd;
	c->proto = l->proto;
	c->ad.a = ADMIT_OVER_TOTAL;
	memcpy(c->key, key, sizeof(c->key));
	clock_gettime(CLOCK_MONOTONIC, &c->t0);
	strlcpy_s(c->peer, peer, sizeof(c->peer));
	/* Only a Gemini URL names the address the client reached. */
	if (c->proto == PROTO_GEMINI && l->one_local)
		set_local(c, (struct sockaddr *)&l->local);
	else if (c->proto == PROTO_GEMINI &&
	    getsockname(fd, (struct sockaddr *)&ls, &lslen) == 0)
		set_local(c, (struct sockaddr *)&ls);
	TAILQ_INSERT_TAIL(&w->conns, c, entry);
	w->nconns++;
	arm(c, w->srv->cfg->request_timeout);
	return c;
}

/* Reading the request, through TLS for Gemini; 0, or -1 out of memory. */
static int
conn_start(struct conn *c)
{
	struct server *s = c->w->srv;
	SSL *ssl;

	if (c->proto == PROTO_GEMINI) {
		c->state = C_HANDSHAKE;
		if ((ssl = tls_ssl_new(s->tls)) == NULL)
			return -1;
		/* On failure this frees the SSL but leaves the fd to us. */
		c->bev = bufferevent_openssl_socket_new(c->w->base, c->fd, ssl,
		    BUFFEREVENT_SSL_ACCEPTING,
		    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		if (c->bev != NULL)
			bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	} else {
		c->state = C_REQUEST;
		c->bev = bufferevent_socket_new(c->w->base, c->fd,
		    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	}
	if (c->bev == NULL)
		return -1;
	bufferevent_disable(c->bev, EV_WRITE); /* until start_output */
	bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
	/* Stop reading a little past the longest request we would take. */
	bufferevent_setwatermark(c->bev, EV_READ, 0,
	    (c->proto == PROTO_GEMINI ? GEMINI_REQUEST_MAX : GOPHER_LINE_MAX) +
	        3);
	bufferevent_enable(c->bev, EV_READ);
	return 0;
}

static void
proxy_invalid(struct conn *c, const char *why)
{
	char msg[128];

	snprintf(msg, sizeof(msg), "no valid PROXY header (%s)", why);
	conn_close(c, msg);
}

/*
 * The header is read off the raw socket before any TLS, and never a byte
 * more: what follows it (with v2 the ClientHello often shares the
 * segment) must stay in the socket for the bufferevent.  So each round
 * peeks, and takes off only what the parser says is header.
 */
static void
proxy_read_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct conn *c = arg;
	struct server *s = c->w->srv;
	struct proxy_header h;
	const char *why = NULL;
	size_t take;
	ssize_t n;

	(void)ev;
	n = recv(
	    fd, c->hdr + c->hdrlen, PROXY_HEADER_MAX - c->hdrlen, MSG_PEEK);
	if (n == -1 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		proxy_invalid(
		    c, n == 0 ? "connection closed" : strerror(errno));
		return;
	}
	switch (proxy_parse(c->hdr, c->hdrlen + (size_t)n, &h, &why)) {
	case PROXY_INVALID:
		proxy_invalid(c, why);
		return;
	case PROXY_NEED_MORE:
		/* All of it is header: take it, or the event fires forever. */
		take = (size_t)n;
		break;
	case PROXY_OK:
	default:
		take = h.len - c->hdrlen;
		break;
	}
	if (recv(fd, c->hdr + c->hdrlen, take, 0) != (ssize_t)take) {
		proxy_invalid(c, "short read");
		return;
	}
	c->hdrlen += take;
	if (c->hdrlen < h.len || h.len == 0)
		return;

	event_free(c->proxy_ev);
	c->proxy_ev = NULL;
	free(c->hdr);
	c->hdr = NULL;
	/* The header is in: count the client it names from now on. */
	server_release_headerless(s, c->key);
	c->headerless = false;
	/* LOCAL and UNKNOWN: the proxy speaks for itself; keep the socket's. */
	if (!h.local) {
		addr_text((struct sockaddr *)&h.src, c->peer, sizeof(c->peer));
		addrcount_key((struct sockaddr *)&h.src, c->key);
		set_local(c, (struct sockaddr *)&h.dst);
	}
	server_admit(s, c->key, c->peer, c->proto == PROTO_GEMINI, &c->ad);
	if (c->ad.a != ADMIT_OK && !c->ad.held) {
		refuse(c->host, c->proto, c->fd, &c->ad);
		c->fd = -1;
		conn_close(c, NULL);
		return;
	}
	if (c->ad.held)
		arm(c, hold_timeout(s));
	if (conn_start(c) == -1)
		conn_close(c, "out of memory");
}

/*
 * The Gopher fast path.  A request is one short line that the client
 * sends as soon as it connects, and most answers fit the socket buffer;
 * so the line is read right away with one recv, and the answer handed to
 * the kernel with one send, with no bufferevent, and the connection
 * closed.  Anything less simple (no line yet, a long or followed line,
 * an answer the socket does not take whole) goes on through the
 * bufferevent as before, with what was read or not sent handed over.
 */
static void
gopher_send(struct conn *c, const char *line, size_t len)
{
	struct server *s = c->w->srv;
	struct snapshot *snap;
	struct reply r;
	const char *p;
	size_t n;
	ssize_t sent;

	set_request(c, line, len);
	c->state = C_REPLY;
	snap = server_snapshot(c->host);
	reply_init(&r);
	r.defer = true;
	gopher_respond(&c->host->gopher, snap, line, len, &r);
	if (r.deferred) {
		/* A search: the answer comes later, through a bufferevent. */
		c->bev = bufferevent_socket_new(c->w->base, c->fd,
		    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		if (c->bev == NULL)
			conn_close(c, "out of memory");
		else {
			bufferevent_setcb(
			    c->bev, read_cb, write_cb, event_cb, c);
			arm(c, s->cfg->write_timeout);
			defer_search(c, snap, line, len);
		}
		reply_free(&r);
		snapshot_release(snap);
		return;
	}
	c->status = r.status;
	p = reply_body(&r, &n);
	c->bytes = n;
	/*
	 * MSG_MORE holds the segment back for the close that follows at
	 * once, so the answer and the FIN travel together: one segment and
	 * one ACK less per request (10 -> 8 on loopback).  If the answer
	 * does not go whole, the bufferevent's next write pushes it.
	 */
	sent = n > 0 ? send(c->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL | MSG_MORE)
	             : 0;
	if (sent == -1 && errno != EAGAIN && errno != EWOULDBLOCK &&
	    errno != EINTR) {
		conn_close(c, "client went away");
	} else if ((size_t)sent == n) {
		/* recv drained the socket: nothing unread to linger for. */
		conn_close(c, NULL);
	} else {
		c->bev = bufferevent_socket_new(c->w->base, c->fd,
		    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		if (c->bev == NULL)
			conn_close(c, "out of memory");
		else {
			bufferevent_setcb(
			    c->bev, read_cb, write_cb, event_cb, c);
			arm(c, s->cfg->write_timeout);
			queue_reply(bufferevent_get_output(c->bev), &r,
			    sent > 0 ? (size_t)sent : 0, snap);
		}
	}
	reply_free(&r);
	snapshot_release(snap);
}

/* 1: answered (or closed); 0: no data yet; -1: over to the bufferevent. */
static int
gopher_try(struct conn *c)
{
	char buf[GOPHER_LINE_MAX + 3]; /* as the read watermark stops */
	const char *eol;
	size_t len;
	ssize_t n;

	n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n == -1 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	if (c->proxy_ev != NULL) {
		event_free(c->proxy_ev);
		c->proxy_ev = NULL;
	}
	if (n > 0 && (size_t)n < sizeof(buf) && !proxy_is_v2(buf, (size_t)n) &&
	    (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
		/* A run of CR and LF ends it, as EVBUFFER_EOL_ANY takes it. */
		for (len = 0; buf[len] != '\r' && buf[len] != '\n'; len++)
			;
		for (eol = buf + len; eol < buf + n; eol++)
			if (*eol != '\r' && *eol != '\n')
				break;
		if (eol == buf + n && len <= GOPHER_LINE_MAX + 2) {
			gopher_send(c, buf, len);
			return 1;
		}
	}
	/* EOF and errors too: the bufferevent sees them again, and ends. */
	if (conn_start(c) == -1) {
		conn_close(c, "out of memory");
		return 1;
	}
	if (n > 0) {
		struct evbuffer *in = bufferevent_get_input(c->bev);

		/* A socket bufferevent keeps its input's end frozen. */
		evbuffer_unfreeze(in, 0);
		if (evbuffer_add(in, buf, (size_t)n) == -1) {
			evbuffer_freeze(in, 0);
			conn_close(c, "out of memory");
			return 1;
		}
		evbuffer_freeze(in, 0);
		read_cb(c->bev, c);
	}
	return -1;
}

static void
gopher_first_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)ev;
	(void)gopher_try(c); /* 0, woken for nothing: the event stays */
}

static void
gopher_start(struct conn *c)
{
	c->state = C_REQUEST;
	if (gopher_try(c) != 0)
		return;
	c->proxy_ev = event_new(
	    c->w->base, c->fd, EV_READ | EV_PERSIST, gopher_first_cb, c);
	if (c->proxy_ev == NULL || event_add(c->proxy_ev, NULL) == -1)
		conn_close(c, "out of memory");
}

/*
 * Behind a proxy the client is known only from the header, so the caps
 * and the rate are applied once it is read (proxy_read_cb).  Until then
 * the connection counts for the peer that opened it, so that nobody can
 * hold the pool with connections that never send a header.  A proxy
 * sends its header at once: it is usually read here, at accept.
 */
static void
proxy_accept(struct listener *l, evutil_socket_t fd, const char *peer,
    const unsigned char key[16])
{
	struct server *s = l->w->srv;
	struct conn *c;

	if (server_admit_headerless(s, key, peer) == -1) {
		refuse(l->host, l->proto, fd, NULL);
		return;
	}
	if ((c = conn_new(l, fd, peer, key)) == NULL) {
		server_release_headerless(s, key);
		close(fd);
		return;
	}
	c->headerless = true;
	c->state = C_PROXY;
	c->hdr = malloc(PROXY_HEADER_MAX);
	c->proxy_ev =
	    event_new(l->w->base, fd, EV_READ | EV_PERSIST, proxy_read_cb, c);
	if (c->hdr == NULL || c->proxy_ev == NULL ||
	    event_add(c->proxy_ev, NULL) == -1) {
		conn_close(c, "out of memory");
		return;
	}
	proxy_read_cb(fd, EV_READ, c);
}

void
conn_accept(
    struct listener *l, evutil_socket_t fd, struct sockaddr *sa, int socklen)
{
	struct server *s = l->w->srv;
	unsigned char key[16];
	char peer[INET6_ADDRSTRLEN];
	struct admission ad;
	struct conn *c;

	(void)socklen;
	addr_text(sa, peer, sizeof(peer));
	addrcount_key(sa, key);
	if (l->proxy) {
		proxy_accept(l, fd, peer, key);
		return;
	}
	server_admit(s, key, peer, l->proto == PROTO_GEMINI, &ad);
	if (ad.a != ADMIT_OK && !ad.held) {
		refuse(l->host, l->proto, fd, &ad);
		return;
	}
	if ((c = conn_new(l, fd, peer, key)) == NULL) {
		server_release(s, key, &ad);
		close(fd);
		return;
	}
	c->ad = ad;
	if (ad.held)
		arm(c, hold_timeout(s));
	if (l->proto == PROTO_GOPHER)
		gopher_start(c);
	else if (conn_start(c) == -1)
		conn_close(c, NULL);
}
