/*
 * loadgen: a closed-loop load generator for Gemini and Gopher servers on
 * loopback, written for tests/bench/peers.py.
 *
 *   loadgen [-c conns] [-d seconds] [-n requests] [--resume]
 *           [--expect prefix] [--timeout seconds] [--addr ip]
 *           [--pids pid[,pid...]] URL
 *
 * C connections are kept busy for D seconds; every request uses a new
 * connection (a Gemini or Gopher request is one connection), read to
 * EOF.  Gopher URLs are spelt as RFC 4266 has it, the item type before
 * the selector: gopher://localhost:7070/1/news sends "/news", %09 a TAB.
 * gemini:// URLs are fetched over TLS without verification (the
 * servers measured use self-signed certificates) with SNI = the URL's
 * host; --resume offers each slot's session from its previous
 * connection, so that the cost of an abbreviated handshake is measured.
 *
 * The figure that matters on a small machine is requests per second of
 * *server* CPU: the load generator shares the cores with the server, so
 * wall-clock req/s mostly measures the machine.  --pids names the server
 * processes; their utime + stime (all threads) and cutime + cstime (the
 * children they have reaped: inetd-style servers fork one per
 * connection) are read from /proc before and after the run.
 *
 * -n ends the run after that many requests, if it comes before -d.
 * --expect: the prefix a good answer starts with ("20 " for Gemini, none
 * for Gopher); other answers count as "status" errors.  --timeout
 * (default 10 s) bounds every wait for the server, and the last requests
 * after -d.  --addr connects there instead of to the URL's host (the
 * Gemini request and SNI still name the host).  Latency percentiles are
 * of the successful requests, from connect() to EOF.
 *
 * Output: human-readable lines on stderr and one JSON line on stdout.
 * Exit status: 0 when at least one request succeeded, 1 when none did,
 * 2 on a usage error.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h> /* slots embed their events */
#include <openssl/err.h>
#include <openssl/ssl.h>

#define MAX_CONNS 20000
#define MAX_PIDS 16
#define MAX_DURATION 3600.0
#define HEAD_MAX 64 /* bytes of an answer kept to check its status */
#define BAD_HEAD_MAX 80

enum kind {
	E_CONNECT, /* refused, reset during connect */
	E_PORTS,   /* EADDRNOTAVAIL: the client ran out of local ports */
	E_TLS,     /* handshake failed */
	E_CLOSED,  /* reset, or closed before a single byte of answer */
	E_STATUS,  /* the answer does not start with --expect */
	E_TIMEOUT, /* no progress for --timeout seconds, or cut at the end */
	E_KINDS
};
static const char *const kind_names[E_KINDS] = {
    "connect", "ports", "tls", "closed", "status", "timeout"};

enum state { S_IDLE, S_CONNECT, S_HANDSHAKE, S_WRITE, S_READ };

struct slot {
	int fd;
	enum state state;
	SSL *ssl;
	SSL_SESSION *session; /* --resume: from this slot's last success */
	struct event ev;
	struct event retry; /* after a failed connect: no tight loop */
	struct timespec start;
	size_t sent; /* bytes of the request written */
	size_t got;  /* bytes of the answer read */
	char head[HEAD_MAX];
};

static struct {
	/* options */
	int conns;
	double duration;
	long max_requests; /* 0: unbounded */
	int resume;
	const char *expect;
	double timeout;
	int npids;
	pid_t pids[MAX_PIDS];
	/* the target */
	int tls;
	char host[256];
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char request[2048];
	size_t request_len;
	/* run state */
	struct event_base *base;
	SSL_CTX *ctx;
	const struct timeval *io_timeout; /* a libevent common timeout */
	struct slot *slots;
	int active;
	int stopping;
	long started;
	/* results */
	long ok;
	long errors[E_KINDS];
	long handshakes, resumed, ragged;
	unsigned long long bytes;
	uint32_t *lat_us; /* grown by doubling: no allocation per request */
	size_t nlat, caplat;
	char bad_head[BAD_HEAD_MAX]; /* the first unexpected answer */
	struct timespec t0, t_end;
} g;

/* One reusable read buffer: single-threaded, and the bodies are thrown
 * away once counted. */
static unsigned char rbuf[65536];

static void start(struct slot *s);
static void io_cb(evutil_socket_t fd, short what, void *arg);
static void retry_cb(evutil_socket_t fd, short what, void *arg);
static void done_if_idle(void);

static void
usage(void)
{
	fprintf(stderr,
	    "usage: loadgen [-c conns] [-d seconds] [-n requests] [--resume]\n"
	    "               [--expect prefix] [--timeout seconds] [--addr ip]\n"
	    "               [--pids pid[,pid...]] gemini://host:port/path | "
	    "gopher://host:port/Tselector\n");
	exit(2);
}

/* noreturn: lets clang see that a bad URL leaves nothing unset. */
static _Noreturn void
die(const char *what)
{
	fprintf(stderr, "loadgen: %s\n", what);
	exit(2);
}

static double
seconds_between(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) +
	    (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static long
parse_long(const char *s, long lo, long hi, const char *what)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "loadgen: %s: %s is not in %ld..%ld\n", what, s,
		    lo, hi);
		exit(2);
	}
	return v;
}

static double
parse_double(const char *s, double lo, double hi, const char *what)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo && v <= hi)) {
		fprintf(stderr, "loadgen: %s: %s is not in %g..%g\n", what, s,
		    lo, hi);
		exit(2);
	}
	return v;
}

static void
parse_pids(const char *list)
{
	char buf[512];
	if (strlen(list) >= sizeof(buf))
		die("--pids: list too long");
	strcpy(buf, list);
	for (char *save = NULL, *p = strtok_r(buf, ",", &save); p;
	     p = strtok_r(NULL, ",", &save)) {
		if (g.npids == MAX_PIDS)
			die("--pids: too many");
		g.pids[g.npids++] = (pid_t)parse_long(p, 1, INT_MAX, "--pids");
	}
	if (g.npids == 0)
		die("--pids: empty list");
}

static int
is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
	}
	return 0;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* %09 is how a Gopher URL carries the TAB before a search query. */
static int
percent_decode(const char *in, char *out, size_t size)
{
	size_t n = 0;
	for (; *in; in++) {
		int c = (unsigned char)*in;
		if (c == '%') {
			int hi = hexval(in[1]),
			    lo = hi < 0 ? -1 : hexval(in[2]);
			if (lo < 0)
				return -1;
			c = hi * 16 + lo;
			in += 2;
		}
		if (c == 0 || c == '\r' || c == '\n' || n + 1 >= size)
			return -1;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return 0;
}

/* Splits URL into the target and the request line.  The address is the
 * host's (or --addr's), IPv4 first; it must be a loopback address: this
 * tool is for benchmarks on one machine, never for loading someone
 * else's server. */
static void
parse_url(const char *url, const char *addr)
{
	const char *p;
	int default_port;
	if (strncmp(url, "gemini://", 9) == 0) {
		g.tls = 1;
		p = url + 9;
		default_port = 1965;
	} else if (strncmp(url, "gopher://", 9) == 0) {
		p = url + 9;
		default_port = 70;
	} else {
		die("the URL must start with gemini:// or gopher://");
	}
	const char *hend = p + strcspn(p, ":/");
	if (hend == p || (size_t)(hend - p) >= sizeof(g.host))
		die("bad host in the URL");
	memcpy(g.host, p, (size_t)(hend - p));
	g.host[hend - p] = '\0';
	int port = default_port;
	const char *path = hend;
	if (*hend == ':') {
		char digits[8];
		size_t n = strcspn(hend + 1, "/");
		if (n == 0 || n >= sizeof(digits))
			die("bad port in the URL");
		memcpy(digits, hend + 1, n);
		digits[n] = '\0';
		port = (int)parse_long(digits, 1, 65535, "URL port");
		path = hend + 1 + n;
	}

	int n;
	if (g.tls) {
		n = snprintf(g.request, sizeof(g.request), "%s\r\n", url);
	} else {
		/* gopher://host/1/sel: the selector is "/sel" after the item
		 * type, the way Gopher URLs (RFC 4266) spell it; an empty path
		 * is the root menu. */
		const char *sel = path;
		if (*sel == '/')
			sel++;
		if (*sel)
			sel++; /* the item type */
		char dec[1024];
		if (percent_decode(sel, dec, sizeof(dec)) < 0)
			die("bad selector in the URL");
		n = snprintf(g.request, sizeof(g.request), "%s\r\n", dec);
	}
	if (n < 0 || (size_t)n >= sizeof(g.request))
		die("URL too long");
	g.request_len = (size_t)n;

	struct addrinfo hints = {0}, *res, *ai, *pick = NULL;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	char portstr[8];
	snprintf(portstr, sizeof(portstr), "%d", port);
	int rc = getaddrinfo(addr ? addr : g.host, portstr, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "loadgen: %s: %s\n", addr ? addr : g.host,
		    gai_strerror(rc));
		exit(2);
	}
	for (ai = res; ai; ai = ai->ai_next)
		if (ai->ai_family == AF_INET) {
			pick = ai;
			break;
		}
	if (pick == NULL)
		pick = res;
	if (!is_loopback(pick->ai_addr))
		die("the server must be on a loopback address");
	memcpy(&g.addr, pick->ai_addr, pick->ai_addrlen);
	g.addrlen = pick->ai_addrlen;
	freeaddrinfo(res);
}

/* CPU clock ticks of the server processes: their own (every thread) and
 * their reaped children's. */
static int
server_ticks(unsigned long long *self, unsigned long long *children)
{
	*self = *children = 0;
	for (int i = 0; i < g.npids; i++) {
		char path[64], buf[1024];
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)g.pids[i]);
		FILE *f = fopen(path, "r");
		if (f == NULL)
			return -1;
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		/* comm, field 2, may hold spaces and parentheses: fields
		 * are counted from the last ')'. */
		char *p = strrchr(buf, ')');
		if (p == NULL)
			return -1;
		unsigned long long ut, st, cut, cst;
		if (sscanf(p + 2,
		        "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
		        "%llu %llu %llu %llu",
		        &ut, &st, &cut, &cst) != 4)
			return -1;
		*self += ut + st;
		*children += cut + cst;
	}
	return 0;
}

static void
record_latency(const struct slot *s, const struct timespec *now)
{
	if (g.nlat == g.caplat) {
		size_t cap = g.caplat ? g.caplat * 2 : 65536;
		uint32_t *p = realloc(g.lat_us, cap * sizeof(*p));
		if (p == NULL)
			return; /* the latency figures lose a sample; no more */
		g.lat_us = p;
		g.caplat = cap;
	}
	double us = seconds_between(&s->start, now) * 1e6;
	g.lat_us[g.nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void
close_slot(struct slot *s)
{
	if (event_initialized(&s->ev))
		event_del(&s->ev);
	if (s->ssl) {
		/* Marked as shut down so that SSL_free does not flag the
		 * session as bad (not resumable): the server has closed, and
		 * a close_notify of ours would only meet a closed socket. */
		SSL_set_shutdown(
		    s->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
		SSL_free(s->ssl);
		s->ssl = NULL;
	}
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
	s->state = S_IDLE;
}

/* Ends the slot's request and starts the next one (unless stopping). */
static void
finish(struct slot *s, int kind)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (kind < 0) {
		size_t want = strlen(g.expect);
		size_t have = s->got < HEAD_MAX ? s->got : HEAD_MAX;
		if (s->got == 0)
			kind = E_CLOSED;
		else if (want > have || memcmp(s->head, g.expect, want) != 0)
			kind = E_STATUS;
	}
	if (kind == E_STATUS && g.bad_head[0] == '\0') {
		size_t n = strcspn(s->head, "\r\n");
		if (n >= BAD_HEAD_MAX)
			n = BAD_HEAD_MAX - 1;
		memcpy(g.bad_head, s->head, n);
		g.bad_head[n] = '\0';
	}
	if (kind < 0) {
		g.ok++;
		g.bytes += s->got;
		record_latency(s, &now);
		if (g.resume && s->ssl) {
			/* TLS 1.3 tickets came with the answer: the session
			 * taken now is the one that can be resumed. */
			SSL_SESSION *sess = SSL_get1_session(s->ssl);
			if (sess && SSL_SESSION_is_resumable(sess)) {
				SSL_SESSION_free(s->session);
				s->session = sess;
			} else {
				SSL_SESSION_free(sess);
			}
		}
	} else {
		g.errors[kind]++;
	}
	g.t_end = now;
	close_slot(s);
	g.active--;
	ERR_clear_error();
	if (kind == E_CONNECT || kind == E_PORTS) {
		/* Refused, or no local port free (TIME_WAIT holding them):
		 * try again a little later rather than spin on connect(),
		 * and never recurse from a connect that failed at once. */
		struct timeval later = {0, kind == E_PORTS ? 10000 : 1000};
		evtimer_add(&s->retry, &later);
		if (g.stopping)
			done_if_idle();
		return;
	}
	start(s);
}

static void
arm(struct slot *s, short what)
{
	event_assign(&s->ev, g.base, s->fd, what, io_cb, s);
	event_add(&s->ev, g.io_timeout);
}

/* OpenSSL wants a retry: arm the direction it names.  Otherwise the
 * error kind, or -1 for a clean end of stream. */
static int
ssl_wait(struct slot *s, int rc, int eof_ok)
{
	int err = SSL_get_error(s->ssl, rc);
	switch (err) {
	case SSL_ERROR_WANT_READ:
		arm(s, EV_READ);
		return -2;
	case SSL_ERROR_WANT_WRITE:
		arm(s, EV_WRITE);
		return -2;
	case SSL_ERROR_ZERO_RETURN:
		return eof_ok ? -1 : E_CLOSED;
	case SSL_ERROR_SSL:
		/* A TCP close without close_notify (OpenSSL 3 reports it so):
		 * the answer is complete as far as Gemini is concerned, but
		 * it is counted, since a truncation would look the same. */
		if (eof_ok &&
		    ERR_GET_REASON(ERR_peek_error()) ==
		        SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			g.ragged++;
			return -1;
		}
		return s->state == S_HANDSHAKE ? E_TLS : E_CLOSED;
	default:
		return s->state == S_HANDSHAKE ? E_TLS : E_CLOSED;
	}
}

static void
keep_head(struct slot *s, const unsigned char *buf, size_t n)
{
	if (s->got < HEAD_MAX) {
		size_t k = HEAD_MAX - 1 - s->got;
		if (k > n)
			k = n;
		memcpy(s->head + s->got, buf, k);
		s->head[s->got + k] = '\0';
	}
	s->got += n;
}

/* Advances the slot as far as it goes without blocking. */
static void
step(struct slot *s)
{
	int rc;
	for (;;) {
		switch (s->state) {
		case S_IDLE:
			return;
		case S_CONNECT: {
			int err = 0;
			socklen_t len = sizeof(err);
			getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
			if (err) {
				finish(s,
				    err == EADDRNOTAVAIL ? E_PORTS : E_CONNECT);
				return;
			}
			if (g.tls) {
				s->ssl = SSL_new(g.ctx);
				if (s->ssl == NULL) {
					finish(s, E_TLS);
					return;
				}
				SSL_set_fd(s->ssl, s->fd);
				SSL_set_tlsext_host_name(s->ssl, g.host);
				if (g.resume && s->session)
					SSL_set_session(s->ssl, s->session);
				s->state = S_HANDSHAKE;
			} else {
				s->state = S_WRITE;
			}
			break;
		}
		case S_HANDSHAKE:
			rc = SSL_connect(s->ssl);
			if (rc != 1) {
				int k = ssl_wait(s, rc, 0);
				if (k != -2)
					finish(s, k);
				return;
			}
			g.handshakes++;
			g.resumed += SSL_session_reused(s->ssl) == 1;
			s->state = S_WRITE;
			break;
		case S_WRITE: {
			const char *p = g.request + s->sent;
			size_t left = g.request_len - s->sent;
			if (g.tls) {
				rc = SSL_write(s->ssl, p, (int)left);
				if (rc <= 0) {
					int k = ssl_wait(s, rc, 0);
					if (k != -2)
						finish(s, k);
					return;
				}
			} else {
				ssize_t w = send(s->fd, p, left, MSG_NOSIGNAL);
				if (w < 0) {
					if (errno == EAGAIN || errno == EINTR) {
						arm(s, EV_WRITE);
						return;
					}
					finish(s, E_CLOSED);
					return;
				}
				rc = (int)w;
			}
			s->sent += (size_t)rc;
			if (s->sent == g.request_len)
				s->state = S_READ;
			break;
		}
		case S_READ:
			if (g.tls) {
				rc = SSL_read(s->ssl, rbuf, sizeof(rbuf));
				if (rc <= 0) {
					int k = ssl_wait(s, rc, 1);
					if (k != -2)
						finish(s, k);
					return;
				}
				keep_head(s, rbuf, (size_t)rc);
			} else {
				ssize_t r = recv(s->fd, rbuf, sizeof(rbuf), 0);
				if (r < 0) {
					if (errno == EAGAIN || errno == EINTR) {
						arm(s, EV_READ);
						return;
					}
					finish(s, E_CLOSED);
					return;
				}
				if (r == 0) {
					finish(s, -1);
					return;
				}
				keep_head(s, rbuf, (size_t)r);
			}
			break;
		}
	}
}

static void
io_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	struct slot *s = arg;
	if (what & EV_TIMEOUT) {
		finish(s, E_TIMEOUT);
		return;
	}
	step(s);
}

static void
done_if_idle(void)
{
	if (g.stopping && g.active == 0)
		event_base_loopbreak(g.base);
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	start(arg);
}

static void
start(struct slot *s)
{
	if (g.stopping || (g.max_requests && g.started >= g.max_requests)) {
		g.stopping = g.stopping || g.max_requests;
		done_if_idle();
		return;
	}
	g.started++;
	g.active++;
	clock_gettime(CLOCK_MONOTONIC, &s->start);
	s->sent = s->got = 0;
	s->head[0] = '\0';
	s->fd = socket(
	    g.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		/* Out of descriptors is a client limit, like out of ports. */
		finish(s, E_PORTS);
		return;
	}
	/* The client's handshake ends with small writes in a row (Finished,
	 * then the request): without this, Nagle and the delayed ACK would
	 * put tens of milliseconds of the client's making into the server's
	 * latency. */
	int one = 1;
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	s->state = S_CONNECT;
	if (connect(s->fd, (struct sockaddr *)&g.addr, g.addrlen) < 0) {
		if (errno == EINPROGRESS) {
			arm(s, EV_WRITE);
			return;
		}
		finish(s, errno == EADDRNOTAVAIL ? E_PORTS : E_CONNECT);
		return;
	}
	step(s);
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	g.stopping = 1;
	done_if_idle();
}

/* The last requests had --timeout to finish; whatever is still open now
 * is cut and counted. */
static void
hard_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	for (int i = 0; i < g.conns; i++)
		if (g.slots[i].state != S_IDLE) {
			g.errors[E_TIMEOUT]++;
			close_slot(&g.slots[i]);
			g.active--;
		}
	event_base_loopbreak(g.base);
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

static double
pct_ms(double p)
{
	if (g.nlat == 0)
		return 0;
	/* Nearest rank. */
	size_t i = (size_t)ceil(p / 100.0 * (double)g.nlat);
	if (i > 0)
		i--;
	if (i >= g.nlat)
		i = g.nlat - 1;
	return g.lat_us[i] / 1000.0;
}

static double
cpu_seconds(const struct rusage *r)
{
	return (double)r->ru_utime.tv_sec + r->ru_utime.tv_usec / 1e6 +
	    (double)r->ru_stime.tv_sec + r->ru_stime.tv_usec / 1e6;
}

static void
json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

int
main(int argc, char **argv)
{
	const char *url = NULL, *addr = NULL;
	g.conns = 16;
	g.duration = 10;
	g.timeout = 10;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		int takes = 1;
		if (strcmp(a, "-c") == 0 && v)
			g.conns = (int)parse_long(v, 1, MAX_CONNS, "-c");
		else if (strcmp(a, "-d") == 0 && v)
			g.duration = parse_double(v, 0.001, MAX_DURATION, "-d");
		else if (strcmp(a, "-n") == 0 && v)
			g.max_requests = parse_long(v, 1, 100000000, "-n");
		else if (strcmp(a, "--timeout") == 0 && v)
			g.timeout = parse_double(v, 0.001, 600, "--timeout");
		else if (strcmp(a, "--expect") == 0 && v)
			g.expect = v;
		else if (strcmp(a, "--addr") == 0 && v)
			addr = v;
		else if (strcmp(a, "--pids") == 0 && v)
			parse_pids(v);
		else if (strcmp(a, "--resume") == 0)
			g.resume = 1, takes = 0;
		else if (a[0] != '-' && url == NULL)
			url = a, takes = 0;
		else
			usage();
		i += takes;
	}
	if (url == NULL)
		usage();
	parse_url(url, addr);
	if (g.resume && !g.tls)
		die("--resume is for gemini:// URLs");
	if (g.expect == NULL)
		g.expect = g.tls ? "20 " : "";
	if (strlen(g.expect) >= HEAD_MAX)
		die("--expect: prefix too long");

	/* One descriptor per connection, and some to spare. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur < (rlim_t)g.conns + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur < (rlim_t)g.conns + 64)
			die("-c: more than the open-files limit allows");
	}
	signal(SIGPIPE, SIG_IGN);

	if (g.tls) {
		g.ctx = SSL_CTX_new(TLS_client_method());
		if (g.ctx == NULL)
			die("SSL_CTX_new failed");
		SSL_CTX_set_verify(g.ctx, SSL_VERIFY_NONE, NULL);
	}
	g.base = event_base_new();
	if (g.base == NULL)
		die("event_base_new failed");
	/* Every I/O wait has the same timeout: libevent keeps those in a
	 * queue instead of its heap. */
	struct timeval tv = {(time_t)g.timeout,
	    (suseconds_t)((g.timeout - floor(g.timeout)) * 1e6)};
	g.io_timeout = event_base_init_common_timeout(g.base, &tv);
	g.slots = calloc((size_t)g.conns, sizeof(*g.slots));
	if (g.slots == NULL)
		die("out of memory");
	if (g.max_requests) {
		g.caplat = (size_t)g.max_requests;
		g.lat_us = malloc(g.caplat * sizeof(*g.lat_us));
		if (g.lat_us == NULL)
			die("out of memory");
	}

	unsigned long long sv0 = 0, sc0 = 0, sv1 = 0, sc1 = 0;
	if (g.npids && server_ticks(&sv0, &sc0) < 0)
		die("--pids: cannot read /proc/PID/stat");
	struct rusage ru0, ru1;
	getrusage(RUSAGE_SELF, &ru0);

	struct timeval dl = {(time_t)g.duration,
	    (suseconds_t)((g.duration - floor(g.duration)) * 1e6)};
	double hard = g.duration + g.timeout + 1;
	struct timeval hl = {
	    (time_t)hard, (suseconds_t)((hard - floor(hard)) * 1e6)};
	struct event *deadline = evtimer_new(g.base, deadline_cb, NULL);
	struct event *hard_stop = evtimer_new(g.base, hard_stop_cb, NULL);
	evtimer_add(deadline, &dl);
	evtimer_add(hard_stop, &hl);

	clock_gettime(CLOCK_MONOTONIC, &g.t0);
	g.t_end = g.t0;
	for (int i = 0; i < g.conns; i++) {
		g.slots[i].fd = -1;
		evtimer_assign(
		    &g.slots[i].retry, g.base, retry_cb, &g.slots[i]);
		start(&g.slots[i]);
	}
	event_base_dispatch(g.base);

	getrusage(RUSAGE_SELF, &ru1);
	/* Children of an inetd-style server count once reaped: give the
	 * supervisor a moment to wait for the last ones. */
	int pids_lost = 0;
	if (g.npids) {
		usleep(100000);
		pids_lost = server_ticks(&sv1, &sc1) < 0;
	}

	if (g.nlat)
		qsort(g.lat_us, g.nlat, sizeof(*g.lat_us), cmp_u32);
	long errors = 0;
	for (int k = 0; k < E_KINDS; k++)
		errors += g.errors[k];
	double wall = seconds_between(&g.t0, &g.t_end);
	double tick = (double)sysconf(_SC_CLK_TCK);
	double srv_self = g.npids && !pids_lost ? (sv1 - sv0) / tick : 0;
	double srv_child = g.npids && !pids_lost ? (sc1 - sc0) / tick : 0;
	double srv = srv_self + srv_child;
	double client = cpu_seconds(&ru1) - cpu_seconds(&ru0);
	double rps = wall > 0 ? g.ok / wall : 0;
	double per_cpu = srv > 0 ? g.ok / srv : 0;
	double resumed = g.handshakes ? (double)g.resumed / g.handshakes : 0;

	fprintf(stderr, "%s  c=%d  %.2f s%s\n", url, g.conns, wall,
	    g.resume ? "  resumed handshakes" : "");
	fprintf(stderr, "  ok %ld (%.0f req/s wall), %.0f bytes per answer\n",
	    g.ok, rps, g.ok ? (double)g.bytes / g.ok : 0);
	fprintf(stderr, "  errors %ld:", errors);
	for (int k = 0; k < E_KINDS; k++)
		fprintf(stderr, " %s %ld", kind_names[k], g.errors[k]);
	fprintf(stderr, "\n");
	if (g.bad_head[0])
		fprintf(stderr, "  first unexpected answer: %s\n", g.bad_head);
	fprintf(stderr,
	    "  latency ms (connect to EOF): p50 %.2f  p90 %.2f  p99 %.2f  "
	    "max %.2f\n",
	    pct_ms(50), pct_ms(90), pct_ms(99), pct_ms(100));
	if (g.npids && pids_lost)
		fprintf(stderr, "  server CPU: a server process went away\n");
	else if (g.npids)
		fprintf(stderr,
		    "  server CPU %.2f s (own %.2f, reaped children %.2f): "
		    "%.0f req per CPU-second\n",
		    srv, srv_self, srv_child, per_cpu);
	fprintf(stderr, "  client CPU %.2f s\n", client);
	if (g.tls)
		fprintf(stderr,
		    "  handshakes %ld, resumed %.1f%%, closed without "
		    "close_notify %ld\n",
		    g.handshakes, 100 * resumed, g.ragged);

	printf("{\"url\":");
	json_string(url);
	printf(",\"c\":%d,\"resume\":%s,\"wall_s\":%.3f,\"ok\":%ld,"
	       "\"errors\":%ld",
	    g.conns, g.resume ? "true" : "false", wall, g.ok, errors);
	for (int k = 0; k < E_KINDS; k++)
		printf(",\"err_%s\":%ld", kind_names[k], g.errors[k]);
	printf(",\"first_bad\":");
	json_string(g.bad_head);
	printf(",\"bytes\":%llu,\"rps_wall\":%.1f,\"p50_ms\":%.3f,"
	       "\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f",
	    g.bytes, rps, pct_ms(50), pct_ms(90), pct_ms(99), pct_ms(100));
	if (g.npids && !pids_lost)
		printf(
		    ",\"server_cpu_s\":%.2f,\"server_self_s\":%.2f,"
		    "\"server_children_s\":%.2f,\"req_per_server_cpu_s\":%.1f",
		    srv, srv_self, srv_child, per_cpu);
	else
		printf(",\"server_cpu_s\":null,\"req_per_server_cpu_s\":null");
	printf(",\"client_cpu_s\":%.2f,\"handshakes\":%ld,\"resumed\":%.4f,"
	       "\"ragged\":%ld}\n",
	    client, g.handshakes, resumed, g.ragged);

	for (int i = 0; i < g.conns; i++) {
		event_del(&g.slots[i].retry);
		SSL_SESSION_free(g.slots[i].session);
	}
	free(g.slots);
	free(g.lat_us);
	event_free(deadline);
	event_free(hard_stop);
	event_base_free(g.base);
	SSL_CTX_free(g.ctx);
	return g.ok > 0 ? 0 : 1;
}
