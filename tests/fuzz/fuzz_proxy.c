/*
 * A connection's first bytes through the PROXY header parser.  conn.c
 * relies on its promises: a header is never longer than the input or the
 * bound, "need more" comes only while the input is all header and below
 * the bound, and the verdict on a header does not change when more
 * input follows it.
 */
#include <string.h>

#include "fuzz.h"
#include "proxy.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct proxy_header h, h2;
	const char *why = NULL;
	enum proxy_result r;

	r = proxy_parse(data, len, &h, &why);
	switch (r) {
	case PROXY_NEED_MORE:
		if (len >= PROXY_HEADER_MAX)
			__builtin_trap();
		break;
	case PROXY_INVALID:
		if (why == NULL)
			__builtin_trap();
		break;
	case PROXY_OK:
		if (h.len == 0 || h.len > len || h.len > PROXY_HEADER_MAX ||
		    (h.version != 1 && h.version != 2))
			__builtin_trap();
		if (!h.local &&
		    (h.src.ss_family != h.dst.ss_family ||
		        (h.src.ss_family != AF_INET &&
		            h.src.ss_family != AF_INET6)))
			__builtin_trap();
		/* The header alone gives the same answer... */
		if (proxy_parse(data, h.len, &h2, &why) != PROXY_OK ||
		    memcmp(&h, &h2, sizeof(h)) != 0)
			__builtin_trap();
		/* ...and any shorter part of it asks for more. */
		for (size_t n = 0; n < h.len; n++)
			if (proxy_parse(data, n, &h2, &why) != PROXY_NEED_MORE)
				__builtin_trap();
		break;
	}
	return 0;
}
