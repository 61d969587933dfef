#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"
#include "log.h"

static struct snapshot *snap;
static struct archive_opts opts = {
    .root = FUZZ_ARCHIVE,
    .lang = "en",
    .hostname = "localhost",
    .gopher_port = 7070,
    .gemini_port = 1965,
    .wrap = 70,
    .menu_width = 67,
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *why;

	(void)argc;
	(void)argv;
	log_set_quiet(1);
	if ((snap = archive_load(&opts, &why)) == NULL) {
		fprintf(stderr, "%s: %s\n", FUZZ_ARCHIVE, why);
		abort();
	}
	return 0;
}

const struct snapshot *
fuzz_snapshot(void)
{
	return snap;
}

const struct archive_opts *
fuzz_opts(void)
{
	return &opts;
}
