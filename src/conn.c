/*
 * Connections: one state machine for Gemini (TLS) and Gopher (plain, or
 * TLS when the first byte says so), driven on the raw non-blocking
 * socket:
 *
 *	[C_PROXY] -> [C_HANDSHAKE] -> C_REQUEST -> C_REPLY ->
 *	    [C_SHUTDOWN] -> [C_LINGER] -> closed
 *
 * Each connection has one edge-triggered event for both directions,
 * added once, the first time it has to wait, and never changed: a step
 * runs until the socket says EAGAIN (OpenSSL: WANT_READ or WANT_WRITE),
 * and the next edge runs it again.  libevent's TLS bufferevent re-armed
 * its events around every read and write, four or five epoll_ctl per
 * connection, and could not take OpenSSL's read-ahead.
 *
 * One timer bounds each phase: accept to complete request (PROXY header
 * and TLS handshake included, an absolute deadline, not an idle timer,
 * so a trickle of bytes cannot hold a connection), then the reply.
 * Every request is logged once, by conn_log, when its connection ends.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event_struct.h>
#include <limits.h>
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
/*
 * Reading stops a little past the longest request either protocol takes
 * (where the bufferevent's read watermark stopped): enough to tell an
 * over-long line from one that ends right at the limit.
 */
#define GEMINI_IN_MAX (GEMINI_REQUEST_MAX + 3)
#define GOPHER_IN_MAX (GOPHER_LINE_MAX + 3)
#define IN_MAX (GEMINI_IN_MAX > GOPHER_IN_MAX ? GEMINI_IN_MAX : GOPHER_IN_MAX)
/* The first byte of a TLS handshake record: a ClientHello on a Gopher port. */
#define TLS_HANDSHAKE_RECORD 0x16

enum cstate { C_PROXY, C_HANDSHAKE, C_REQUEST, C_REPLY, C_SHUTDOWN, C_LINGER };

/* What a step of the state machine left: go on, wait for an edge, or gone. */
enum step { S_NEXT, S_WAIT, S_GONE };

/* conn_read's answers besides a byte count. */
#define IO_EOF 0
#define IO_AGAIN (-1)
#define IO_ERROR (-2)

struct conn {
	TAILQ_ENTRY(conn) entry;
	struct worker *w;
	/* Gopher: its listener's; Gemini: SNI's once the request is in. */
	struct host *host;
	enum proto proto;
	enum cstate state;
	struct event ev;    /* the socket: EV_READ|EV_WRITE|EV_ET, added once */
	struct event timer; /* the phase's deadline */
	bool ev_added;
	bool sniff;   /* Gopher, nothing read yet: the fast path, or TLS */
	bool drained; /* the last read from the socket left nothing there */
	SSL *ssl;     /* NULL: plain Gopher */
	BIO *pre;     /* gophers: what the first read took, for the handshake */
	struct evbuffer *out;
	unsigned char *hdr; /* C_PROXY: the header bytes taken so far */
	size_t hdrlen;
	size_t inlen, incap; /* in[]: request bytes read, and the limit */
	size_t lingered;     /* bytes discarded while lingering */
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
	char in[IN_MAX];
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
	if (c->out != NULL)
		left = evbuffer_get_length(c->out);
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
	if (c->ev_added)
		event_del(&c->ev);
	event_del(&c->timer);
	SSL_free(c->ssl); /* and its BIOs; the socket's leaves the fd */
	if (c->fd != -1)
		close(c->fd);
	if (c->out != NULL)
		evbuffer_free(c->out);
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

	evtimer_add(&c->timer, &tv);
}

/*
 * Whether the socket was left empty, seen from inside OpenSSL: with
 * read-ahead it asks for far more than a record, so a short read means
 * the kernel had nothing more.  It spares the FIONREAD that deciding to
 * linger would otherwise cost on every connection.
 */
static long
bio_cb(BIO *b, int oper, const char *argp, size_t len, int argi, long argl,
    int ret, size_t *processed)
{
	struct conn *c = (struct conn *)BIO_get_callback_arg(b);

	(void)argp;
	(void)argi;
	(void)argl;
	if (oper == (BIO_CB_READ | BIO_CB_RETURN))
		c->drained = ret <= 0 || processed == NULL || *processed < len;
	return ret;
}

/*
 * TLS on the socket; prefix (n bytes) is what a Gopher port's first read
 * took, to be read by the handshake before the socket.  0, or -1 out of
 * memory.
 */
static int
tls_start(struct conn *c, SSL *ssl, const char *prefix, size_t n)
{
	BIO *sock;

	if (c->out == NULL && (c->out = evbuffer_new()) == NULL)
		return -1;
	if ((c->ssl = ssl) == NULL)
		return -1;
	if ((sock = BIO_new_socket(c->fd, BIO_NOCLOSE)) == NULL)
		return -1;
	BIO_set_callback_ex(sock, bio_cb);
	BIO_set_callback_arg(sock, (char *)c);
	if (prefix != NULL) {
		if ((c->pre = BIO_new(BIO_s_mem())) == NULL ||
		    BIO_write(c->pre, prefix, (int)n) != (int)n) {
			BIO_free(c->pre);
			c->pre = NULL;
			BIO_free(sock);
			return -1;
		}
		/* Empty is "try again" (then the socket), not EOF. */
		BIO_set_mem_eof_return(c->pre, -1);
		SSL_set_bio(c->ssl, c->pre, sock);
	} else
		SSL_set_bio(c->ssl, sock, sock);
	SSL_set_accept_state(c->ssl);
	c->state = C_HANDSHAKE;
	return 0;
}

/*
 * OpenSSL wants to read: once the first read's bytes are used up, the
 * socket takes over.  True when it did, and the call is to be retried.
 */
static bool
tls_next_rbio(struct conn *c)
{
	BIO *sock;

	if (c->pre == NULL || BIO_ctrl_pending(c->pre) > 0)
		return false;
	sock = SSL_get_wbio(c->ssl);
	if (!BIO_up_ref(sock))
		return false;
	SSL_set0_rbio(c->ssl, sock); /* frees c->pre */
	c->pre = NULL;
	return true;
}

/* A byte count, or IO_EOF, IO_AGAIN, IO_ERROR. */
static ssize_t
conn_read(struct conn *c, void *p, size_t len)
{
	size_t got;
	ssize_t n;

	if (c->ssl == NULL) {
		n = recv(c->fd, p, len, 0);
		if (n >= 0) {
			c->drained = (size_t)n < len;
			return n;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
			c->drained = errno != EINTR;
			return IO_AGAIN;
		}
		return IO_ERROR;
	}
	for (;;) {
		if (SSL_read_ex(c->ssl, p, len, &got) == 1)
			return (ssize_t)got;
		switch (SSL_get_error(c->ssl, 0)) {
		case SSL_ERROR_WANT_READ:
			if (tls_next_rbio(c))
				continue;
			return IO_AGAIN;
		case SSL_ERROR_WANT_WRITE:
			return IO_AGAIN;
		case SSL_ERROR_ZERO_RETURN:
			return IO_EOF;
		default:
			/* The queue is the thread's: leave it clean. */
			ERR_clear_error();
			return IO_ERROR;
		}
	}
}

/* 1: all of out is sent; 0: the socket is full; -1: the client is gone. */
static int
flush_out(struct conn *c)
{
	struct evbuffer_iovec v;
	size_t n;
	int rv;

	while (evbuffer_get_length(c->out) > 0) {
		if (c->ssl == NULL) {
			/* writev of every chunk at once */
			if (evbuffer_write(c->out, c->fd) >= 0)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ||
			        errno == EINTR
			    ? 0
			    : -1;
		}
		/*
		 * A chunk per SSL_write, the same one again after WANT_WRITE
		 * as OpenSSL requires; gemini_queue made the first one a
		 * whole record.
		 */
		if (evbuffer_peek(c->out, -1, NULL, &v, 1) < 1)
			break;
		if (v.iov_len > INT_MAX)
			v.iov_len = INT_MAX;
		if (SSL_write_ex(c->ssl, v.iov_base, v.iov_len, &n) == 1) {
			evbuffer_drain(c->out, n);
			continue;
		}
		rv = SSL_get_error(c->ssl, 0);
		if (rv == SSL_ERROR_WANT_WRITE || rv == SSL_ERROR_WANT_READ)
			return 0;
		ERR_clear_error();
		return -1;
	}
	return 1;
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
 * The header and the start of the body go out as one piece, a whole TLS
 * record: each SSL_write makes a record, and a write, of its own.  The
 * rest of a long body follows by reference.
 */
static void
gemini_queue(struct evbuffer *out, const struct reply *r, struct snapshot *snap)
{
	char head[GEMINI_META_MAX + 16];
	struct evbuffer_iovec v;
	const char *body;
	size_t hn, bn, first;
	int n;

	n = snprintf(head, sizeof(head), "%d %s\r\n", r->status, r->meta);
	hn = n < 0                     ? 0
	    : (size_t)n < sizeof(head) ? (size_t)n
	                               : sizeof(head) - 1;
	body = reply_body(r, &bn);
	first = hn + bn <= SSL3_RT_MAX_PLAIN_LENGTH
	    ? bn
	    : SSL3_RT_MAX_PLAIN_LENGTH - hn;
	if (evbuffer_reserve_space(out, (ev_ssize_t)(hn + first), &v, 1) == 1 &&
	    v.iov_len >= hn + first) {
		memcpy(v.iov_base, head, hn);
		if (first > 0)
			memcpy((char *)v.iov_base + hn, body, first);
		v.iov_len = hn + first;
		if (evbuffer_commit_space(out, &v, 1) == 0) {
			if (first < bn)
				queue_reply(out, r, first, snap);
			return;
		}
	}
	evbuffer_add(out, head, hn);
	queue_reply(out, r, 0, snap);
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
search_busy(struct conn *c)
{
	size_t before = evbuffer_get_length(c->out);
	char wait[16];

	snprintf(wait, sizeof(wait), "%d", SEARCH_BUSY_WAIT);
	add_refusal(
	    c, c->out, 44, wait, "search is busy: try again in a few seconds");
	c->bytes = evbuffer_get_length(c->out) - before;
}

/* Hands a search to the search threads; conn_search_done answers. */
static void
defer_search(
    struct conn *c, struct snapshot *snap, const char *line, size_t len)
{
	c->job = server_search(c->w, c, c->proto, c->host, snap, line, len,
	    c->local, c->local_port);
	if (c->job == NULL)
		search_busy(c);
}

static void conn_run(struct conn *);

void
conn_search_done(struct conn *c, struct search_job *j)
{
	size_t before = evbuffer_get_length(c->out);

	c->job = NULL;
	c->status = j->r.status;
	if (c->proto == PROTO_GEMINI)
		gemini_queue(c->out, &j->r, j->snap);
	else
		queue_reply(c->out, &j->r, 0, j->snap);
	c->bytes = evbuffer_get_length(c->out) - before;
	server_search_free(j);
	conn_run(c);
}

static void
conn_request(struct conn *c, const char *line, size_t len)
{
	struct server *s = c->w->srv;
	struct evbuffer *out = c->out;
	struct snapshot *snap;
	struct reply r;
	size_t before = evbuffer_get_length(out);

	set_request(c, line, len);
	c->state = C_REPLY;
	arm(c, s->cfg->write_timeout);

	reply_init(&r);
	r.defer = true;
	if (c->proto == PROTO_GEMINI) {
		struct url_expect ex;
		long h = tls_ssl_host(c->ssl);

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
request_refused(struct conn *c, const char *gemini, const char *gopher)
{
	set_request(c, c->in, c->inlen < 64 ? c->inlen : 64);
	c->state = C_REPLY;
	arm(c, c->w->srv->cfg->write_timeout);
	add_refusal(c, c->out, 59, gemini, gopher);
	c->bytes = evbuffer_get_length(c->out);
}

/*
 * Whether in[] holds a request line: S_NEXT once it is answered (or
 * refused), S_WAIT for more.  What follows the line stays counted in
 * inlen: input left unread, for the linger.
 */
static enum step
request_parse(struct conn *c)
{
	const char *in = c->in, *p, *eol = NULL;
	size_t n = c->inlen, eol_len = 0, max;

	/*
	 * Gemini wants CRLF; a bare LF does not end the request.  Gopher
	 * takes LF or CR alone too (Bombadillo sends LF alone, some
	 * clients CR): any run of them ends the line.
	 */
	if (c->proto == PROTO_GEMINI) {
		max = GEMINI_REQUEST_MAX;
		for (p = in;
		     (p = memchr(p, '\n', n - (size_t)(p - in))) != NULL; p++)
			if (p > in && p[-1] == '\r') {
				eol = p - 1;
				eol_len = 2;
				break;
			}
	} else {
		if (n >= PROXY_V2_FIXED && proxy_is_v2(in, PROXY_V2_FIXED)) {
			request_refused(c, "",
			    "a PROXY protocol header, but this port expects "
			    "none");
			return S_NEXT;
		}
		max = GOPHER_LINE_MAX + 2;
		for (p = in; p < in + n; p++)
			if (*p == '\r' || *p == '\n') {
				eol = p;
				break;
			}
		if (eol != NULL)
			while (eol + eol_len < in + n &&
			    (eol[eol_len] == '\r' || eol[eol_len] == '\n'))
				eol_len++;
	}
	if (eol == NULL) {
		/*
		 * Gemini: past 1024 bytes with no CRLF, only a CR as the
		 * very last byte can still end a URL of 1024.
		 */
		if (c->proto == PROTO_GEMINI && n > GEMINI_URL_MAX &&
		    (n > GEMINI_URL_MAX + 1 || in[n - 1] != '\r'))
			max = 0;
		if (n > max) {
			request_refused(c, "request longer than 1024 bytes",
			    "request line too long");
			return S_NEXT;
		}
		return S_WAIT;
	}
	if ((size_t)(eol - in) > max) {
		request_refused(c, "request longer than 1024 bytes",
		    "request line too long");
		return S_NEXT;
	}
	c->inlen = n - (size_t)(eol - in) - eol_len;
	conn_request(c, in, (size_t)(eol - in));
	return S_NEXT;
}

static enum step
request_step(struct conn *c)
{
	ssize_t n;

	for (;;) {
		n = conn_read(c, c->in + c->inlen, c->incap - c->inlen);
		if (n > 0) {
			c->inlen += (size_t)n;
			if (request_parse(c) == S_NEXT)
				return S_NEXT;
			continue;
		}
		if (n == IO_AGAIN)
			return S_WAIT;
		/* A Gopher request cut by EOF instead of CRLF still counts. */
		if (n == IO_EOF && c->proto == PROTO_GOPHER && c->inlen > 0 &&
		    c->inlen <= GOPHER_LINE_MAX) {
			size_t len = c->inlen;

			c->inlen = 0;
			conn_request(c, c->in, len);
			return S_NEXT;
		}
		conn_close(c, NULL);
		return S_GONE;
	}
}

static enum step
handshake_step(struct conn *c)
{
	int rv = SSL_do_handshake(c->ssl);

	if (rv == 1) {
		c->state = C_REQUEST;
		return S_NEXT;
	}
	switch (SSL_get_error(c->ssl, rv)) {
	case SSL_ERROR_WANT_READ:
		return tls_next_rbio(c) ? S_NEXT : S_WAIT;
	case SSL_ERROR_WANT_WRITE:
		return S_WAIT;
	default:
		ERR_clear_error();
		conn_close(c, NULL);
		return S_GONE;
	}
}

/* Whether the client sent something that is still unread. */
static bool
input_pending(struct conn *c)
{
	int n = 0;

	if (c->inlen > 0 || (c->ssl != NULL && SSL_has_pending(c->ssl)))
		return true;
	if (c->drained)
		return false;
	/*
	 * The last read stopped at a record's end (no read-ahead) or an
	 * edge came since: only the kernel knows.  Rare, so one ioctl.
	 */
	return ioctl(c->fd, FIONREAD, &n) == 0 && n > 0;
}

static enum step
linger_or_close(struct conn *c)
{
	if (!input_pending(c)) {
		conn_close(c, NULL);
		return S_GONE;
	}
	c->state = C_LINGER;
	shutdown(c->fd, SHUT_WR);
	arm(c, LINGER_SECONDS);
	return S_NEXT;
}

static enum step
linger_step(struct conn *c)
{
	char scratch[4096];
	ssize_t n;

	for (;;) {
		n = read(c->fd, scratch, sizeof(scratch));
		if (n > 0) {
			if ((c->lingered += (size_t)n) > LINGER_MAX_BYTES)
				break;
			continue;
		}
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return S_WAIT;
		if (n == -1 && errno == EINTR)
			continue;
		break; /* EOF or error: the client has everything */
	}
	conn_close(c, NULL);
	return S_GONE;
}

static enum step
reply_step(struct conn *c)
{
	int rv;

	if (c->job != NULL)
		return S_WAIT; /* conn_search_done runs this again */
	if ((rv = flush_out(c)) == -1) {
		conn_close(c, "client went away");
		return S_GONE;
	}
	if (rv == 0)
		return S_WAIT;
	/*
	 * close_notify: without it a client cannot tell a complete answer
	 * from a cut one.
	 */
	if (c->ssl != NULL) {
		c->state = C_SHUTDOWN;
		return S_NEXT;
	}
	return linger_or_close(c);
}

static enum step
shutdown_step(struct conn *c)
{
	int rv = SSL_shutdown(c->ssl);

	if (rv < 0 && SSL_get_error(c->ssl, rv) == SSL_ERROR_WANT_WRITE)
		return S_WAIT;
	ERR_clear_error();
	return linger_or_close(c);
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

/* Reading the request: through TLS for Gemini; S_GONE out of memory. */
static enum step
conn_start(struct conn *c)
{
	if (c->proto == PROTO_GEMINI) {
		c->incap = GEMINI_IN_MAX;
		if (tls_start(c, tls_ssl_new(c->w->srv->tls), NULL, 0) == -1) {
			conn_close(c, NULL);
			return S_GONE;
		}
		/*
		 * The ClientHello is seldom in yet: wait for its edge rather
		 * than pay a read that fails.
		 */
		return S_WAIT;
	}
	c->incap = GOPHER_IN_MAX;
	c->state = C_REQUEST;
	c->sniff = true;
	return S_NEXT;
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
 * segment) must stay in the socket.  So each round peeks, and takes off
 * only what the parser says is header.
 */
static enum step
proxy_step(struct conn *c)
{
	struct server *s = c->w->srv;
	struct proxy_header h;
	const char *why = NULL;
	size_t take;
	ssize_t n;

	n = recv(
	    c->fd, c->hdr + c->hdrlen, PROXY_HEADER_MAX - c->hdrlen, MSG_PEEK);
	if (n == -1 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return S_WAIT;
	if (n <= 0) {
		proxy_invalid(
		    c, n == 0 ? "connection closed" : strerror(errno));
		return S_GONE;
	}
	switch (proxy_parse(c->hdr, c->hdrlen + (size_t)n, &h, &why)) {
	case PROXY_INVALID:
		proxy_invalid(c, why);
		return S_GONE;
	case PROXY_NEED_MORE:
		/* All of it is header: take it, and look again. */
		take = (size_t)n;
		break;
	case PROXY_OK:
	default:
		take = h.len - c->hdrlen;
		break;
	}
	if (recv(c->fd, c->hdr + c->hdrlen, take, 0) != (ssize_t)take) {
		proxy_invalid(c, "short read");
		return S_GONE;
	}
	c->hdrlen += take;
	if (c->hdrlen < h.len || h.len == 0)
		return S_NEXT;

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
		return S_GONE;
	}
	if (c->ad.held)
		arm(c, hold_timeout(s));
	/* What follows the header is usually in already: read on. */
	return conn_start(c) == S_GONE ? S_GONE : S_NEXT;
}

/*
 * The Gopher fast path.  A request is one short line that the client
 * sends as soon as it connects, and most answers fit the socket buffer;
 * so the line is read right away with one recv, and the answer handed to
 * the kernel with one send, and the connection closed.  Anything less
 * simple (a long or followed line, an answer the socket does not take
 * whole, a search) goes on through the state machine, with what was read
 * or not sent handed over.
 */
static enum step
gopher_send(struct conn *c, const char *line, size_t len)
{
	struct server *s = c->w->srv;
	struct snapshot *snap;
	struct reply r;
	const char *p;
	size_t n;
	ssize_t sent;
	enum step st = S_NEXT;

	set_request(c, line, len);
	c->state = C_REPLY;
	snap = server_snapshot(c->host);
	reply_init(&r);
	r.defer = true;
	gopher_respond(&c->host->gopher, snap, line, len, &r);
	if (r.deferred) {
		/* A search: the answer comes later, from conn_search_done. */
		if ((c->out = evbuffer_new()) == NULL) {
			conn_close(c, "out of memory");
			st = S_GONE;
		} else {
			arm(c, s->cfg->write_timeout);
			defer_search(c, snap, line, len);
		}
		reply_free(&r);
		snapshot_release(snap);
		return st;
	}
	c->status = r.status;
	p = reply_body(&r, &n);
	c->bytes = n;
	/*
	 * MSG_MORE holds the segment back for the close that follows at
	 * once, so the answer and the FIN travel together: one segment and
	 * one ACK less per request (10 -> 8 on loopback).  If the answer
	 * does not go whole, the next write pushes it.
	 */
	sent = n > 0 ? send(c->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL | MSG_MORE)
	             : 0;
	if (sent == -1 && errno != EAGAIN && errno != EWOULDBLOCK &&
	    errno != EINTR) {
		conn_close(c, "client went away");
		st = S_GONE;
	} else if ((size_t)sent == n) {
		/* recv drained the socket: nothing unread to linger for. */
		conn_close(c, NULL);
		st = S_GONE;
	} else if ((c->out = evbuffer_new()) == NULL) {
		conn_close(c, "out of memory");
		st = S_GONE;
	} else {
		arm(c, s->cfg->write_timeout);
		queue_reply(c->out, &r, sent > 0 ? (size_t)sent : 0, snap);
	}
	reply_free(&r);
	snapshot_release(snap);
	return st;
}

/*
 * A Gopher port's first read: the fast path, or a TLS ClientHello (its
 * bytes handed to the handshake), or the general path with what it read.
 */
static enum step
gopher_first(struct conn *c)
{
	char buf[GOPHER_IN_MAX];
	const char *eol;
	size_t len;
	ssize_t n;

	n = recv(c->fd, buf, sizeof(buf), 0);
	if (n == -1 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
		c->drained = true;
		return S_WAIT;
	}
	c->sniff = false;
	c->drained = n <= 0 || (size_t)n < sizeof(buf);
	if (n > 0 && buf[0] == TLS_HANDSHAKE_RECORD) {
		if (tls_start(c, tls_ssl_new_host(c->w->srv->tls, c->host->idx),
		        buf, (size_t)n) == -1) {
			conn_close(c, "out of memory");
			return S_GONE;
		}
		return S_NEXT;
	}
	if (n > 0 && (size_t)n < sizeof(buf) && !proxy_is_v2(buf, (size_t)n) &&
	    (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
		/* A run of CR and LF ends it, as in request_parse. */
		for (len = 0; buf[len] != '\r' && buf[len] != '\n'; len++)
			;
		for (eol = buf + len; eol < buf + n; eol++)
			if (*eol != '\r' && *eol != '\n')
				break;
		if (eol == buf + n && len <= GOPHER_LINE_MAX + 2)
			return gopher_send(c, buf, len);
	}
	if ((c->out = evbuffer_new()) == NULL) {
		conn_close(c, "out of memory");
		return S_GONE;
	}
	if (n <= 0) {
		/* EOF or an error, with nothing read: nothing to answer. */
		conn_close(c, NULL);
		return S_GONE;
	}
	memcpy(c->in, buf, (size_t)n);
	c->inlen = (size_t)n;
	if (request_parse(c) == S_NEXT)
		return S_NEXT;
	/* Not a line yet: read on; EOF may still end it. */
	return request_step(c);
}

/* The one epoll_ctl of the connection's life, when it first must wait. */
static void
conn_wait(struct conn *c)
{
	if (c->ev_added)
		return;
	if (event_add(&c->ev, NULL) == -1)
		conn_close(c, "out of memory");
	else
		c->ev_added = true;
}

/* Runs the connection as far as the socket lets it. */
static void
conn_run(struct conn *c)
{
	enum step st;

	do {
		switch (c->state) {
		case C_PROXY:
			st = proxy_step(c);
			break;
		case C_HANDSHAKE:
			st = handshake_step(c);
			break;
		case C_REQUEST:
			st = c->sniff ? gopher_first(c) : request_step(c);
			break;
		case C_REPLY:
			st = reply_step(c);
			break;
		case C_SHUTDOWN:
			st = shutdown_step(c);
			break;
		case C_LINGER:
		default:
			st = linger_step(c);
			break;
		}
	} while (st == S_NEXT);
	if (st == S_WAIT)
		conn_wait(c);
}

static void
io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	/* New bytes came: unread ones, whatever the state reads or not. */
	if (what & EV_READ)
		c->drained = false;
	conn_run(c);
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

	/* Not calloc: in[] needs no zeroing, and is most of it. */
	if ((c = malloc(sizeof(*c))) == NULL)
		return NULL;
	memset(c, 0, offsetof(struct conn, in));
	event_assign(&c->ev, w->base, fd,
	    EV_READ | EV_WRITE | EV_ET | EV_PERSIST, io_cb, c);
	evtimer_assign(&c->timer, w->base, timeout_cb, c);
	c->w = w;
	c->fd = fd;
	c->proto = l->proto;
	c->host = l->host;
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

/*
 * Behind a proxy the client is known only from the header, so the caps
 * and the rate are applied once it is read (proxy_step).  Until then
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
	if ((c->hdr = malloc(PROXY_HEADER_MAX)) == NULL) {
		conn_close(c, "out of memory");
		return;
	}
	conn_run(c);
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
	switch (conn_start(c)) {
	case S_NEXT:
		conn_run(c);
		break;
	case S_WAIT:
		conn_wait(c);
		break;
	case S_GONE:
	default:
		break;
	}
}
