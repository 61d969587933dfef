#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *prog = "serai";
static int quiet;

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
vlog(const char *prefix, const char *fmt, va_list ap, const char *suffix)
{
	char line[8192]; /* an escaped 1 KiB request and the rest */
	int n, m;

	if (quiet)
		return;
	n = snprintf(line, sizeof(line), "%s: %s", prog, prefix);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
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
	(void)!write(STDERR_FILENO, line, (size_t)n);
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

		if (c < 0x20 || c == 0x7f) {
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
			tmp[0] = (char)c;
			n = 1;
		}
		if (o + n >= dstsize)
			break;
		memcpy(dst + o, tmp, n);
		o += n;
	}
	dst[o] = '\0';
}
