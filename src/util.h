/*
 * Leaf helpers shared by the pure layers: a growable byte buffer, UTF-8
 * validation and safe-name checks.  No libevent, no OpenSSL, no sockets.
 */
#ifndef SERAI_UTIL_H
#define SERAI_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/*
 * A growable buffer whose allocation failure is sticky: callers append
 * freely and check buf_failed() once at the end, so render code stays
 * linear instead of checking every append.
 */
struct buf {
	char *p;
	size_t len;
	size_t cap;
	bool oom;
};

void buf_init(struct buf *);
void buf_free(struct buf *);
void buf_add(struct buf *, const void *, size_t);
void buf_adds(struct buf *, const char *);
void buf_addc(struct buf *, char);
void buf_printf(struct buf *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
bool buf_failed(const struct buf *);
/* Hands the bytes to the caller (NUL-terminated) and resets the buffer. */
char *buf_release(struct buf *, size_t *lenp);

/* Whole-buffer UTF-8 check (RFC 3629: no overlongs, no surrogates). */
bool utf8_valid(const char *, size_t);

/*
 * Archive names (section directories and article slugs): ASCII letters,
 * digits, '-', '_', '.', not starting with '.'.  Keeps every selector
 * printable and free of TABs, so no name can break a Gopher menu line.
 */
bool name_is_safe(const char *, size_t);

char *xstrndup(const char *, size_t);

/* Copies at most dstsize-1 bytes and always terminates; returns strlen(src). */
size_t strlcpy_s(char *dst, const char *src, size_t dstsize);

/*
 * pthread_create, the new thread starting with every signal blocked:
 * signals are the main thread's, whose event loop handles them.
 */
int thread_start(pthread_t *, void *(*fn)(void *), void *arg);

/*
 * All of p written at off (pwrite, again after a short write or EINTR);
 * false on an error or a full disk, with errno.
 */
bool pwrite_all(int fd, const void *p, size_t len, long long off);

/* mkdir -p, each directory made 0700; -1 with errno on failure. */
int mkdir_p(const char *dir);

/* Milliseconds since t0, a CLOCK_MONOTONIC reading. */
long ms_since(const struct timespec *t0);

#endif
