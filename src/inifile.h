/*
 * inih with line numbers and strict syntax.  Debian's libinih is built
 * without INI_HANDLER_LINENO, so we feed it through our own line reader,
 * which counts lines, refuses what inih would silently accept (lines
 * longer than its buffer, continuation lines, unknown [sections]) and
 * lets every message name file and line.
 */
#ifndef SERAI_INIFILE_H
#define SERAI_INIFILE_H

#include <stddef.h>

/* A section name: "host " and a DNS name of up to 253 bytes. */
#define INIFILE_SECTION_MAX 264

struct inifile;
/* Return 0 when the key was taken, -1 after inifile_error(). */
typedef int (*inifile_handler)(
    struct inifile *, const char *section, const char *key, const char *value);

struct inifile {
	const char *path;
	/*
	 * Allowed [names], NULL-terminated.  "host *" allows every
	 * "[host NAME]"; the handler is told of each such header with key
	 * and value NULL, so that it can tell one section from the next.
	 */
	const char *const *sections;
	int lineno;
	int nerrors;
	/* private */
	const char *data, *pos, *end;
	char section[INIFILE_SECTION_MAX];
	inifile_handler fn;
	void *user;
};

/*
 * Parses path; every problem is reported through log_warnx as
 * "path:line: ..." and counted.  Returns the number of problems, or -1
 * when the file cannot be read (errno set).
 */
int inifile_parse(
    const char *path, const char *const *sections, inifile_handler, void *user);
/* Same, on a buffer already in memory (tests, fuzzing). */
int inifile_parse_buf(const char *name, const char *data, size_t len,
    const char *const *sections, inifile_handler, void *user);

void inifile_error(struct inifile *, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
