/* A Gemini request line, through URL checks and the handler. */
#include <string.h>

#include "fuzz.h"
#include "proto.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct url_expect ex = {"localhost", "127.0.0.1", 1965, 0, NULL, 0};
	struct reply r;

	if (len > GEMINI_REQUEST_MAX)
		return 0; /* conn.c answers 59 before parsing */
	reply_init(&r);
	gemini_respond(&ex, fuzz_snapshot(), (const char *)data, len, &r);
	/* Status lines must stay one line and within the meta bound. */
	if (strchr(r.meta, '\r') || strchr(r.meta, '\n') ||
	    strlen(r.meta) > GEMINI_META_MAX || r.status < 10 || r.status > 69)
		__builtin_trap();
	if (r.status == 20 && r.body == NULL && r.dyn.len == 0)
		__builtin_trap();
	reply_free(&r);
	return 0;
}
