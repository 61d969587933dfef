#include "inifile.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* Config files are small; a bigger one is a mistake, not a config. */
#define INIFILE_MAX_BYTES (1024 * 1024)

struct wrap {
	struct inifile *f;
	inifile_handler fn;
};

void
inifile_error(struct inifile *f, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warnx("%s:%d: %s", f->path, f->lineno, msg);
	f->nerrors++;
}

/* 1: allowed by name; 2: by a "prefix *" pattern; 0: unknown. */
static int
section_allowed(const struct inifile *f, const char *name)
{
	for (const char *const *s = f->sections; *s != NULL; s++) {
		size_t n = strlen(*s);

		if (n >= 2 && strcmp(*s + n - 2, " *") == 0 &&
		    strncmp(*s, name, n - 1) == 0 && name[n - 1] != '\0')
			return 2;
		if (strcmp(*s, name) == 0)
			return 1;
	}
	return 0;
}

static int
is_ws(char c)
{
	return c == ' ' || c == '\t';
}

/* White space to the end, or white space and a ';' or '#' comment. */
static int
only_comment(const char *p, const char *end)
{
	while (p < end && is_ws(*p))
		p++;
	return p == end || *p == ';' || *p == '#';
}

/*
 * A refused line is named by its key where it has one (the text before
 * '=' or ':'), so "[gemini] listen: line too long" points at the key.
 */
static void
line_error(struct inifile *f, const char *p, size_t len, const char *msg)
{
	char key[48];
	size_t i = 0, n = 0;

	while (i < len && is_ws(p[i]))
		i++;
	while (i < len && p[i] != '=' && p[i] != ':' && !is_ws(p[i]) &&
	    n + 1 < sizeof(key)) {
		unsigned char c = (unsigned char)p[i++];
		key[n++] = c >= 0x21 && c < 0x7f ? (char)c : '?';
	}
	key[n] = '\0';
	if (n > 0 && key[0] != '[' && f->section[0] != '\0')
		inifile_error(f, "[%s] %s: %s", f->section, key, msg);
	else if (n > 0 && key[0] != '[')
		inifile_error(f, "%s: %s", key, msg);
	else
		inifile_error(f, "%s", msg);
}

/*
 * Hands inih one line at a time, so f->lineno is the line inih is about
 * to parse when it calls the handler.  A line we refuse reaches inih as
 * an empty line, so each problem is reported once, by us.
 */
static char *
reader(char *str, int num, void *stream)
{
	struct inifile *f = stream;
	const char *eol, *p;
	size_t len;

	if (f->pos >= f->end)
		return NULL;
	eol = memchr(f->pos, '\n', (size_t)(f->end - f->pos));
	if (eol == NULL)
		eol = f->end;
	p = f->pos;
	len = (size_t)(eol - p);
	f->pos = eol < f->end ? eol + 1 : f->end;
	f->lineno++;
	if (len > 0 && p[len - 1] == '\r')
		len--;
	if (f->lineno == 1 && len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) {
		p += 3;
		len -= 3;
	}
	str[0] = '\0';

	if (memchr(p, '\0', len) != NULL || !utf8_valid(p, len)) {
		inifile_error(f, "line is not UTF-8 text");
		return str;
	}
	{
		size_t i = 0;

		while (i < len && is_ws(p[i]))
			i++;
		/* Before the length check: a comment may be any length. */
		if (i == len || p[i] == ';' || p[i] == '#')
			return str; /* blank or comment */
		if (len + 2 > (size_t)num) {
			char msg[64];

			snprintf(msg, sizeof(msg),
			    "line too long (at most %d bytes)", num - 2);
			line_error(f, p, len, msg);
			return str;
		}
		if (i > 0) {
			line_error(f, p, len,
			    "continuation lines are not supported "
			    "(remove the leading white space)");
			return str;
		}
		if (p[0] == '[') {
			const char *close = memchr(p, ']', len);
			size_t n;

			if (close == NULL) {
				inifile_error(f, "section header lacks ']'");
				return str;
			}
			if (!only_comment(close + 1, p + len)) {
				inifile_error(f,
				    "text after the section header (only a "
				    "comment may follow ']')");
				return str;
			}
			n = (size_t)(close - p - 1);
			if (n >= sizeof(f->section))
				n = sizeof(f->section) - 1;
			memcpy(f->section, p + 1, n);
			f->section[n] = '\0';
			switch (section_allowed(f, f->section)) {
			case 0:
				inifile_error(
				    f, "unknown section [%s]", f->section);
				break;
			case 2:
				f->fn(f, f->section, NULL, NULL);
				break;
			}
		} else if (memchr(p, '=', len) == NULL) {
			line_error(f, p, len, "expected 'key = value'");
			return str;
		}
	}
	memcpy(str, p, len);
	str[len] = '\n';
	str[len + 1] = '\0';
	return str;
}

static int
handler(void *user, const char *section, const char *key, const char *value)
{
	struct wrap *w = user;

	if (section[0] == '\0') {
		inifile_error(w->f, "%s: key outside any [section]", key);
		return 1;
	}
	/* Keys of an unknown section were reported with its header. */
	if (!section_allowed(w->f, w->f->section))
		return 1;
	/* Ours, not inih's: inih cuts section names at 50 bytes. */
	w->fn(w->f, w->f->section, key, value);
	return 1;
}

int
inifile_parse_buf(const char *name, const char *data, size_t len,
    const char *const *sections, inifile_handler fn, void *user)
{
	struct inifile f;
	struct wrap w = {&f, fn};
	int rv;

	memset(&f, 0, sizeof(f));
	f.path = name;
	f.sections = sections;
	f.data = f.pos = data;
	f.end = data + len;
	f.user = user;
	f.fn = fn;
	rv = ini_parse_stream(reader, &f, handler, &w);
	if (rv > 0 && f.nerrors == 0) {
		f.lineno = rv;
		inifile_error(&f, "syntax error");
	} else if (rv < 0 && f.nerrors == 0) {
		inifile_error(&f, "cannot parse (out of memory?)");
	}
	return f.nerrors;
}

int
inifile_parse(const char *path, const char *const *sections, inifile_handler fn,
    void *user)
{
	struct stat st;
	char *data;
	ssize_t n;
	size_t got = 0;
	int fd, rv;

	/* Non-blocking: a FIFO given as the file must not hang -n. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1)
		return -1;
	if (fstat(fd, &st) == -1) {
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > INIFILE_MAX_BYTES) {
		close(fd);
		errno = S_ISREG(st.st_mode) ? EFBIG : EINVAL;
		return -1;
	}
	if ((data = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		return -1;
	}
	while (got < (size_t)st.st_size &&
	    (n = read(fd, data + got, (size_t)st.st_size - got)) > 0)
		got += (size_t)n;
	close(fd);
	rv = inifile_parse_buf(path, data, got, sections, fn, user);
	free(data);
	return rv;
}
