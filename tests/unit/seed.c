#include "seed.h"

#include <stdio.h>
#include <stdlib.h>

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
