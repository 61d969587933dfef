/*
 * Gemini request URLs and path cleaning.  Pure: parsing uses libevent's
 * evhttp_uri parser (no sockets), so this file links alone in unit tests
 * and fuzzers.
 */
#ifndef SERAI_URL_H
#define SERAI_URL_H

#include <stddef.h>

/* The 2024 Gemini specification: a URL is at most 1024 bytes. */
#define GEMINI_URL_MAX 1024
#define GEMINI_PORT_DEFAULT 1965

enum url_verdict {
	URL_OK = 0,
	URL_PROXY = 53, /* another scheme, host or port */
	URL_BAD = 59,   /* not a well-formed absolute gemini URL */
};

struct url_expect {
	const char *hostname; /* compared case-insensitively */
	const char *local_ip; /* an IP literal for the address we answered on */
	unsigned port;        /* the public port; absent in the URL = 1965 */
	unsigned local_port;  /* the port the client reached, also ours */
	/* Other names of the same host, compared as hostname is. */
	char *const *aliases;
	size_t naliases;
};

struct gemini_url {
	char path[GEMINI_URL_MAX + 2]; /* decoded and cleaned, starts with / */
	size_t pathlen;
	char query[GEMINI_URL_MAX + 1]; /* still percent-encoded */
	int has_query;
};

/* line: the request without CRLF.  *why is set for every non-OK verdict. */
enum url_verdict url_parse_gemini(const char *line, size_t len,
    const struct url_expect *, struct gemini_url *, const char **why);

/*
 * RFC 3986 dot-segment removal that refuses to climb: a ".." above the
 * root is an error, never a silent clamp to "/".  in must start with '/'.
 * Returns 0, or -1 when it climbs or does not fit.
 */
int path_clean(
    const char *in, size_t len, char *out, size_t outsize, size_t *outlen);

/* Percent-decoding; -1 on a bad escape or an encoded NUL. */
int url_pct_decode(
    const char *in, size_t len, char *out, size_t outsize, size_t *outlen);

#endif
