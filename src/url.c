#include "url.h"

#include <event2/http.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

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

int
url_pct_decode(
    const char *in, size_t len, char *out, size_t outsize, size_t *outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = in[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= len)
				return -1;
			hi = hexval(in[i + 1]);
			lo = hexval(in[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -1;
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		if (o + 1 >= outsize)
			return -1;
		out[o++] = c;
	}
	out[o] = '\0';
	*outlen = o;
	return 0;
}

int
path_clean(
    const char *in, size_t len, char *out, size_t outsize, size_t *outlen)
{
	size_t o = 0, i = 0;

	if (outsize < 2 || len == 0 || in[0] != '/')
		return -1;
	out[o++] = '/';
	i = 1;
	while (i <= len) {
		const char *seg = in + i;
		const char *slash = memchr(seg, '/', len - i);
		size_t n = slash ? (size_t)(slash - seg) : len - i;
		bool last = slash == NULL;

		if (n == 1 && seg[0] == '.') {
			/* "." : nothing to add */
		} else if (n == 2 && seg[0] == '.' && seg[1] == '.') {
			/* Drop the last segment written; refuse to climb. */
			if (o <= 1)
				return -1;
			o--; /* the '/' that ends the previous segment */
			while (o > 0 && out[o - 1] != '/')
				o--;
		} else {
			/* The segment, its '/' unless last, and the NUL. */
			if (o + n + (last ? 0 : 1) + 1 > outsize)
				return -1;
			memcpy(out + o, seg, n);
			o += n;
			if (!last)
				out[o++] = '/';
		}
		if (last)
			break;
		i += n + 1;
	}
	out[o] = '\0';
	*outlen = o;
	return 0;
}

static bool
host_matches(const char *host, const struct url_expect *ex)
{
	size_t n = strlen(host);

	if (strcasecmp(host, ex->hostname) == 0)
		return true;
	for (size_t i = 0; i < ex->naliases; i++)
		if (strcasecmp(host, ex->aliases[i]) == 0)
			return true;
	/* Clients that reach us by address name the address. */
	if (ex->local_ip == NULL)
		return false;
	if (n > 2 && host[0] == '[' && host[n - 1] == ']')
		return strlen(ex->local_ip) == n - 2 &&
		    strncasecmp(host + 1, ex->local_ip, n - 2) == 0;
	return strcasecmp(host, ex->local_ip) == 0;
}

/*
 * IRIs: clients may send UTF-8 beyond ASCII.  RFC 3987 maps such an IRI
 * to a URI by percent-encoding those bytes, which evhttp_uri then parses.
 */
static char *
iri_to_uri(const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	struct buf b;

	buf_init(&b);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x80) {
			buf_addc(&b, '%');
			buf_addc(&b, hex[c >> 4]);
			buf_addc(&b, hex[c & 15]);
		} else
			buf_addc(&b, (char)c);
	}
	return buf_release(&b, NULL);
}

enum url_verdict
url_parse_gemini(const char *line, size_t len, const struct url_expect *ex,
    struct gemini_url *u, const char **why)
{
	struct evhttp_uri *uri = NULL;
	const char *scheme, *host, *path, *query;
	char decoded[GEMINI_URL_MAX * 3 + 1], *s = NULL;
	size_t dlen;
	int port;
	enum url_verdict v = URL_BAD;

	memset(u, 0, sizeof(*u));
	if (len == 0) {
		*why = "empty request";
		return URL_BAD;
	}
	if (len > GEMINI_URL_MAX) {
		*why = "URL longer than 1024 bytes";
		return URL_BAD;
	}
	if (memchr(line, '\0', len) != NULL) {
		*why = "NUL in request";
		return URL_BAD;
	}
	if (!utf8_valid(line, len)) {
		*why = "request is not UTF-8";
		return URL_BAD;
	}
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)line[i] <= 0x20 || line[i] == 0x7f) {
			*why = "control character or space in URL";
			return URL_BAD;
		}
	if ((s = iri_to_uri(line, len)) == NULL) {
		*why = "out of memory";
		return URL_BAD;
	}
	if ((uri = evhttp_uri_parse_with_flags(s, 0)) == NULL) {
		*why = "not a URL";
		goto out;
	}
	if ((scheme = evhttp_uri_get_scheme(uri)) == NULL) {
		*why = "not an absolute URL";
		goto out;
	}
	if (strcasecmp(scheme, "gemini") != 0) {
		*why = "not a gemini URL";
		v = URL_PROXY;
		goto out;
	}
	if (evhttp_uri_get_userinfo(uri) != NULL) {
		*why = "userinfo in URL";
		goto out;
	}
	if (evhttp_uri_get_fragment(uri) != NULL) {
		*why = "fragment in URL";
		goto out;
	}
	host = evhttp_uri_get_host(uri);
	if (host == NULL || host[0] == '\0') {
		*why = "no host in URL";
		goto out;
	}
	/* evhttp takes "host:" as port -1, the same as no port. */
	if ((port = evhttp_uri_get_port(uri)) == -1)
		port = GEMINI_PORT_DEFAULT;
	if (!host_matches(host, ex) ||
	    ((unsigned)port != ex->port &&
	        (ex->local_port == 0 || (unsigned)port != ex->local_port))) {
		*why = "another host or port";
		v = URL_PROXY;
		goto out;
	}
	path = evhttp_uri_get_path(uri);
	if (path == NULL || path[0] == '\0')
		path = "/";
	if (path[0] != '/') {
		*why = "path is not absolute";
		goto out;
	}
	if (url_pct_decode(
	        path, strlen(path), decoded, sizeof(decoded), &dlen) == -1) {
		*why = "bad percent-encoding in path";
		goto out;
	}
	if (!utf8_valid(decoded, dlen)) {
		*why = "path is not UTF-8";
		goto out;
	}
	for (size_t i = 0; i < dlen; i++)
		if ((unsigned char)decoded[i] < 0x20 || decoded[i] == 0x7f) {
			*why = "control character in path";
			goto out;
		}
	if (path_clean(decoded, dlen, u->path, sizeof(u->path), &u->pathlen) ==
	    -1) {
		*why = "path climbs above the root";
		goto out;
	}
	if ((query = evhttp_uri_get_query(uri)) != NULL) {
		u->has_query = 1;
		strlcpy_s(u->query, query, sizeof(u->query));
	}
	v = URL_OK;
out:
	if (uri)
		evhttp_uri_free(uri);
	free(s);
	return v;
}
