#include "util.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void
buf_init(struct buf *b)
{
	memset(b, 0, sizeof(*b));
}

void
buf_free(struct buf *b)
{
	free(b->p);
	buf_init(b);
}

static bool
buf_grow(struct buf *b, size_t need)
{
	size_t ncap;
	char *np;

	if (b->oom)
		return false;
	if (need < b->len || need > SIZE_MAX - 1) {
		b->oom = true;
		return false;
	}
	if (need + 1 <= b->cap)
		return true;
	ncap = b->cap ? b->cap : 256;
	while (ncap < need + 1) {
		if (ncap > SIZE_MAX / 2) {
			ncap = need + 1;
			break;
		}
		ncap *= 2;
	}
	if ((np = realloc(b->p, ncap)) == NULL) {
		b->oom = true;
		return false;
	}
	b->p = np;
	b->cap = ncap;
	return true;
}

void
buf_add(struct buf *b, const void *p, size_t n)
{
	if (n == 0 || !buf_grow(b, b->len + n))
		return;
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void
buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void
buf_addc(struct buf *b, char c)
{
	buf_add(b, &c, 1);
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = true;
		return;
	}
	if (!buf_grow(b, b->len + (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

bool
buf_failed(const struct buf *b)
{
	return b->oom;
}

char *
buf_release(struct buf *b, size_t *lenp)
{
	char *p;

	if (b->oom) {
		buf_free(b);
		return NULL;
	}
	if (b->p == NULL && !buf_grow(b, 0))
		return NULL;
	p = b->p;
	p[b->len] = '\0';
	/*
	 * Doubling leaves up to half the block unused, and released buffers
	 * live as long as a snapshot: give the slack back.
	 */
	if (b->cap > b->len + 1) {
		char *np = realloc(p, b->len + 1);

		if (np != NULL)
			p = np;
	}
	if (lenp)
		*lenp = b->len;
	buf_init(b);
	return p;
}

bool
utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		unsigned char c = p[i];
		size_t n;
		uint32_t cp;
		uint64_t w;

		/* Eight ASCII bytes at once: most text is. */
		if (len - i >= sizeof(w)) {
			memcpy(&w, p + i, sizeof(w));
			if ((w & 0x8080808080808080ULL) == 0) {
				i += sizeof(w);
				continue;
			}
		}
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			n = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3;
			cp = c & 0x07;
		} else
			return false;
		if (len - i <= n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
		    (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

bool
name_is_safe(const char *s, size_t len)
{
	if (len == 0 || s[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		        c == '.'))
			return false;
	}
	return true;
}

char *
xstrndup(const char *s, size_t n)
{
	char *p;

	if ((p = malloc(n + 1)) == NULL)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

size_t
strlcpy_s(char *dst, const char *src, size_t dstsize)
{
	size_t n = strlen(src);

	if (dstsize > 0) {
		size_t k = n < dstsize - 1 ? n : dstsize - 1;
		memcpy(dst, src, k);
		dst[k] = '\0';
	}
	return n;
}

long
ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(now.tv_sec - t0->tv_sec) * 1000 +
	    (now.tv_nsec - t0->tv_nsec) / 1000000;
}

int
thread_start(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int rv;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rv = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rv;
}

int
mkdir_p(const char *dir)
{
	char tmp[PATH_MAX];
	size_t n;

	if ((n = strlen(dir)) == 0 || n >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(tmp, dir, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, 0700) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

bool
pwrite_all(int fd, const void *p, size_t len, long long off)
{
	const char *c = p;

	while (len > 0) {
		ssize_t w = pwrite(fd, c, len, (off_t)off);

		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		c += w;
		len -= (size_t)w;
		off += w;
	}
	return true;
}
