#include "seed.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *
read_seed(size_t *lenp)
{
	const char *root = getenv("SERAI_SOURCE_ROOT");
	char path[4096];
	FILE *fp;
	char *data;
	long n;

	if (root == NULL)
		root = ".";
	snprintf(path, sizeof(path), "%s/content/news/beijing-declaration.txt",
	    root);
	if ((fp = fopen(path, "rb")) == NULL)
		return NULL;
	if (fseek(fp, 0, SEEK_END) != 0 || (n = ftell(fp)) <= 0) {
		fclose(fp);
		return NULL;
	}
	rewind(fp);
	if ((data = malloc((size_t)n + 1)) == NULL ||
	    fread(data, 1, (size_t)n, fp) != (size_t)n) {
		free(data);
		fclose(fp);
		return NULL;
	}
	data[n] = '\0';
	fclose(fp);
	*lenp = (size_t)n;
	return data;
}

int
put_file(const char *root, const char *rel, const void *data, size_t len)
{
	char path[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	if ((fp = fopen(path, "wb")) == NULL)
		return -1;
	if (fwrite(data, 1, len, fp) != len) {
		fclose(fp);
		return -1;
	}
	return fclose(fp);
}

int
puts_file(const char *root, const char *rel, const char *s)
{
	return put_file(root, rel, s, strlen(s));
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void
remove_tree(const char *root)
{
	nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
