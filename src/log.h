/*
 * Error and access logging.  Each message is formatted whole and written
 * with one write(2) (a batch of access lines too: see log_access_batch),
 * so lines from several worker threads never mix.
 */
#ifndef SERAI_LOG_H
#define SERAI_LOG_H

#include <stddef.h>

void log_init(const char *progname);
/* Fuzzers and benchmarks: drop every message. */
void log_set_quiet(int);

/*
 * Where lines go.  Errors: "stderr" or "syslog".  The access log also
 * takes a file path, opened for appending (before any privilege drop),
 * never through a symlink, and reopened by log_access_reopen (SIGUSR1)
 * for log rotation, relative to its directory as opened at start: the
 * file is created again if the serving user may, else it must be there.
 * 0 or -1 with errno.
 */
int log_error_open(const char *spec);
int log_access_open(const char *spec);
int log_access_reopen(void);
/*
 * Before chroot(dir) takes effect: an access log whose directory is
 * outside dir cannot be reopened from inside (-1: say so).
 */
int log_chroot(const char *dir);
/*
 * The access log's directory (O_PATH) that SIGUSR1 reopens the file in,
 * or -1 (not a file, or not reopenable): what a sandbox must leave
 * writable, and a ready parent_fd for a Landlock rule.
 */
int log_access_dirfd(void);
/*
 * One access line, already formatted (no printf on the request path);
 * files get no "serai: " prefix.
 */
void log_access_str(const char *line);
/*
 * In this thread, gather access lines (to a file or stderr) and write
 * them a batch at a time: by log_access_flush, which the thread must
 * call soon after each line, or when the batch is full.  Turning it off
 * writes what is gathered.
 */
void log_access_batch(int on);
void log_access_flush(void);
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Start-up failures only: requests never end the process. */
void fatalx(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/*
 * Appends s to dst (size dstsize, always terminated) with control bytes
 * (C0, DEL and C1), bytes that are not UTF-8, '"' and '\\' escaped as
 * \xNN, so a hostile request can neither forge log lines nor reach a
 * terminal's escape sequences.
 */
void log_escape(char *dst, size_t dstsize, const char *s, size_t len);

#endif
