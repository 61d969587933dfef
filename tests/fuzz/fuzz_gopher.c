/* A Gopher request line, through selector cleaning and the handler. */
#include <string.h>

#include "fuzz.h"
#include "proto.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct gopher_ctx g = {"localhost", 7070, 70};
	struct reply r;

	if (len > GOPHER_LINE_MAX)
		return 0; /* conn.c answers type 3 before parsing */
	reply_init(&r);
	gopher_respond(&g, fuzz_snapshot(), (const char *)data, len, &r);
	if (r.body == NULL && r.dyn.len >= 3 &&
	    (memcmp(r.dyn.p, "+-1", 3) == 0 ||
	        memcmp(r.dyn.p, "--1", 3) == 0)) {
		/* Gopher+ "-1" replies end with the "." line. */
		if (r.dyn.len < 8 ||
		    strcmp(r.dyn.p + r.dyn.len - 5, "\r\n.\r\n") != 0)
			__builtin_trap();
	} else if (r.body == NULL && r.status == '3') {
		/* An error menu: exactly one type-3 line, then ".". */
		const char *nl;

		if (r.dyn.len < 5 || r.dyn.p[0] != '3' ||
		    (nl = strstr(r.dyn.p, "\r\n")) == NULL ||
		    strcmp(nl, "\r\n.\r\n") != 0)
			__builtin_trap();
	} else if (r.body == NULL && r.dyn.len == 0)
		__builtin_trap(); /* every request gets an answer */
	reply_free(&r);
	return 0;
}
