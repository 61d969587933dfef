#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "util.h"

enum dest { DEST_STDERR, DEST_SYSLOG, DEST_FILE };

struct sink {
	enum dest dest;
	int fd;
	/*
	 * DEST_FILE: the directory, opened at start (as root, before any
	 * drop), and the file's name in it: log_access_reopen opens the
	 * name relative to the directory, so a server that may no longer
	 * search the path to it (a root-only /var/log/serai) still can,
	 * and a sandbox need only allow that one directory.
	 */
	int dirfd;
	char name[NAME_MAX + 1];
	char dirreal[PATH_MAX]; /* for log_chroot */
	int reopenable;
};

static const char *prog = "serai";
static int quiet;
static int syslog_open;
static struct sink errlog = {DEST_STDERR, STDERR_FILENO, -1, "", "", 0};
static struct sink acclog = {DEST_STDERR, STDERR_FILENO, -1, "", "", 0};

/*
 * A worker thread gathers its access lines and writes them a batch at a
 * time (log_access_flush, when its loop has run what was ready), saving
 * a write(2) per request under load.  A batch is at most PIPE_BUF bytes,
 * so on a pipe it is still written whole, never mixed with another
 * thread's.
 */
#define BATCH_MAX 4096
static _Thread_local int batching;
static _Thread_local size_t batch_len;
static _Thread_local char batch[BATCH_MAX];

void
log_init(const char *progname)
{
	if (progname != NULL)
		prog = progname;
}

void
log_set_quiet(int q)
{
	quiet = q;
}

static void
open_syslog(void)
{
	/* LOG_NDELAY: connect now, while /dev/log is still reachable. */
	if (!syslog_open)
		openlog(prog, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	syslog_open = 1;
}

/*
 * The log itself is never reached through a symlink: one planted where
 * the log goes would have root append to whatever it names.  Non-blocking
 * so that a FIFO cannot hang the start; only a file or a device (such as
 * /dev/null) is taken.
 */
static int
open_append_at(int dirfd, const char *name)
{
	struct stat st;
	int fd, fl;

	if ((fd = openat(dirfd, name,
	         O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC |
	             O_NONBLOCK,
	         0640)) == -1)
		return -1;
	if (fstat(fd, &st) == -1 ||
	    (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode))) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	if ((fl = fcntl(fd, F_GETFL)) != -1)
		(void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	return fd;
}

int
log_error_open(const char *spec)
{
	if (strcmp(spec, "stderr") == 0) {
		errlog.dest = DEST_STDERR;
		return 0;
	}
	if (strcmp(spec, "syslog") == 0) {
		open_syslog();
		errlog.dest = DEST_SYSLOG;
		return 0;
	}
	errno = EINVAL;
	return -1;
}

int
log_access_open(const char *spec)
{
	char dir[PATH_MAX], real[PATH_MAX];
	const char *slash = strrchr(spec, '/'), *name;
	int fd, dirfd;

	if (strcmp(spec, "stderr") == 0) {
		acclog.dest = DEST_STDERR;
		acclog.fd = STDERR_FILENO;
		return 0;
	}
	if (strcmp(spec, "syslog") == 0) {
		open_syslog();
		acclog.dest = DEST_SYSLOG;
		return 0;
	}
	if (slash == NULL) {
		strcpy(dir, ".");
		name = spec;
	} else {
		size_t n = slash == spec ? 1 : (size_t)(slash - spec);

		if (n >= sizeof(dir)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(dir, spec, n);
		dir[n] = '\0';
		name = slash + 1;
	}
	if (*name == '\0' || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0) {
		errno = EISDIR;
		return -1;
	}
	if (strlen(name) >= sizeof(acclog.name)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	/* O_PATH: the directory need only be searchable, not readable. */
	if ((dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	if ((fd = open_append_at(dirfd, name)) == -1 ||
	    realpath(dir, real) == NULL) {
		int saved = errno;

		if (fd != -1)
			close(fd);
		close(dirfd);
		errno = saved;
		return -1;
	}
	if (acclog.dest == DEST_FILE) {
		close(acclog.fd);
		close(acclog.dirfd);
	}
	acclog.dest = DEST_FILE;
	acclog.fd = fd;
	acclog.dirfd = dirfd;
	acclog.reopenable = 1;
	memcpy(acclog.name, name, strlen(name) + 1);
	memcpy(acclog.dirreal, real, strlen(real) + 1);
	return 0;
}

int
log_chroot(const char *dir)
{
	size_t n = strlen(dir);

	if (acclog.dest != DEST_FILE || !acclog.reopenable)
		return 0;
	if (strcmp(dir, "/") == 0 ||
	    (strncmp(acclog.dirreal, dir, n) == 0 &&
	        (acclog.dirreal[n] == '/' || acclog.dirreal[n] == '\0')))
		return 0;
	/*
	 * A directory held open outside the chroot is a way out of it
	 * (fchdir, then ".."): let it go, and with it reopening.
	 */
	close(acclog.dirfd);
	acclog.dirfd = -1;
	acclog.reopenable = 0;
	return -1;
}

int
log_access_dirfd(void)
{
	return acclog.dest == DEST_FILE && acclog.reopenable ? acclog.dirfd
	                                                     : -1;
}

int
log_access_reopen(void)
{
	int fd;

	if (acclog.dest != DEST_FILE)
		return 0;
	if (!acclog.reopenable) {
		errno = ENOENT;
		return -1;
	}
	if ((fd = open_append_at(acclog.dirfd, acclog.name)) == -1)
		return -1;
	/*
	 * dup2 swaps the file under the same descriptor in one step, so a
	 * worker writing at this moment writes to the old file or the new.
	 */
	if (dup2(fd, acclog.fd) == -1) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

void
log_access_batch(int on)
{
	if (!on)
		log_access_flush();
	batching = on;
}

void
log_access_flush(void)
{
	if (batch_len > 0)
		(void)!write(acclog.fd, batch, batch_len);
	batch_len = 0;
}

static void
emit(const struct sink *s, int prio, char *line, size_t n, size_t msgoff)
{
	if (s->dest == DEST_SYSLOG) {
		line[n - 1] = '\0';
		syslog(prio, "%s", line + msgoff);
		return;
	}
	if (s->dest == DEST_FILE) {
		line += msgoff;
		n -= msgoff;
	}
	if (s == &acclog && batching) {
		if (batch_len + n > sizeof(batch))
			log_access_flush();
		if (n <= sizeof(batch)) {
			memcpy(batch + batch_len, line, n);
			batch_len += n;
			return;
		}
	}
	(void)!write(s->fd, line, n);
}

/* An error-log line: the access log has log_access_str. */
static void
vlog(const char *prefix, const char *fmt, va_list ap, const char *suffix)
{
	char line[8192]; /* an escaped 1 KiB request and the rest */
	int n, m;
	size_t msgoff;

	if (quiet)
		return;
	n = snprintf(line, sizeof(line), "%s: ", prog);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	msgoff = (size_t)n;
	m = snprintf(line + n, sizeof(line) - (size_t)n, "%s", prefix);
	if (m > 0)
		n += m;
	m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n >= sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	if (suffix != NULL) {
		m = snprintf(
		    line + n, sizeof(line) - (size_t)n, ": %s", suffix);
		if (m > 0)
			n += m;
		if ((size_t)n >= sizeof(line) - 1)
			n = (int)sizeof(line) - 2;
	}
	line[n++] = '\n';
	emit(&errlog, LOG_WARNING, line, (size_t)n, msgoff);
}

void
log_access_str(const char *msg)
{
	char line[8192];
	size_t n, m, msgoff;

	if (quiet)
		return;
	if ((n = strlen(prog)) > 256)
		n = 256;
	memcpy(line, prog, n);
	line[n++] = ':';
	line[n++] = ' ';
	msgoff = n;
	if ((m = strlen(msg)) > sizeof(line) - 2 - n)
		m = sizeof(line) - 2 - n;
	memcpy(line + n, msg, m);
	n += m;
	line[n++] = '\n';
	emit(&acclog, LOG_INFO, line, n, msgoff);
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("", fmt, ap, NULL);
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	vlog("", fmt, ap, strerror(saved));
	va_end(ap);
	errno = saved;
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("", fmt, ap, NULL);
	va_end(ap);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("fatal: ", fmt, ap, NULL);
	va_end(ap);
	exit(1);
}

void
log_escape(char *dst, size_t dstsize, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (dstsize == 0)
		return;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char tmp[4];
		size_t n;

		/*
		 * Multi-byte: copied when valid UTF-8 and not a C1 control
		 * (U+0080-U+009F: 0x9b is a terminal's CSI, as ESC [ is);
		 * otherwise escaped byte by byte, as control bytes are.
		 */
		n = c < 0x80    ? 1
		    : c >= 0xf0 ? 4
		    : c >= 0xe0 ? 3
		    : c >= 0xc0 ? 2
		                : 0;
		if (n > 1 &&
		    (i + n > len || !utf8_valid(s + i, n) ||
		        (c == 0xc2 && (unsigned char)s[i + 1] < 0xa0)))
			n = 0;
		if (c < 0x20 || c == 0x7f || n == 0) {
			tmp[0] = '\\';
			tmp[1] = 'x';
			tmp[2] = hex[c >> 4];
			tmp[3] = hex[c & 15];
			n = 4;
		} else if (c == '"' || c == '\\') {
			tmp[0] = '\\';
			tmp[1] = (char)c;
			n = 2;
		} else {
			memcpy(tmp, s + i, n);
			i += n - 1;
		}
		if (o + n >= dstsize)
			break;
		memcpy(dst + o, tmp, n);
		o += n;
	}
	dst[o] = '\0';
}
