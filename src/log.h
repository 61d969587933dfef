/*
 * Error and access logging.  Each message is formatted whole and written
 * with one write(2), so lines from several worker threads never mix.
 */
#ifndef SERAI_LOG_H
#define SERAI_LOG_H

#include <stddef.h>

void log_init(const char *progname);
/* Fuzzers and benchmarks: drop every message. */
void log_set_quiet(int);
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Start-up failures only: requests never end the process. */
void fatalx(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/*
 * Appends s to dst (size dstsize, always terminated) with control bytes,
 * '"' and '\\' escaped, so a hostile request cannot forge log lines.
 */
void log_escape(char *dst, size_t dstsize, const char *s, size_t len);

#endif
