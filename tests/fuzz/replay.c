/*
 * Without libFuzzer, each target links this main instead: it runs every
 * file named on the command line (or found in a named directory) through
 * the target once, so committed corpora and crash reproducers run in
 * every `meson test`.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int
run_file(const char *path)
{
	FILE *fp;
	unsigned char *data = NULL;
	size_t len = 0, cap = 0, n;

	if ((fp = fopen(path, "rb")) == NULL) {
		perror(path);
		return -1;
	}
	for (;;) {
		if (len == cap) {
			unsigned char *nd;

			cap = cap ? cap * 2 : 4096;
			if ((nd = realloc(data, cap)) == NULL) {
				free(data);
				fclose(fp);
				return -1;
			}
			data = nd;
		}
		if ((n = fread(data + len, 1, cap - len, fp)) == 0)
			break;
		len += n;
	}
	fclose(fp);
	LLVMFuzzerTestOneInput(data, len);
	free(data);
	return 0;
}

static int
run_path(const char *path, size_t *count)
{
	struct stat st;
	struct dirent **ents;
	char sub[4096];
	int n, rv = 0;

	if (stat(path, &st) == -1) {
		perror(path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return run_file(path);
	}
	if ((n = scandir(path, &ents, NULL, alphasort)) == -1) {
		perror(path);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		if (ents[i]->d_name[0] != '.' &&
		    (size_t)snprintf(sub, sizeof(sub), "%s/%s", path,
		        ents[i]->d_name) < sizeof(sub) &&
		    run_path(sub, count) == -1)
			rv = -1;
		free(ents[i]);
	}
	free(ents);
	return rv;
}

int
main(int argc, char **argv)
{
	size_t count = 0;
	int rv = 0;

	LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++)
		if (run_path(argv[i], &count) == -1)
			rv = 1;
	printf("%zu inputs replayed%s\n", count, rv ? " (with errors)" : "");
	return rv || count == 0;
}
