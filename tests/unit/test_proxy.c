/*
 * proxy_parse: both versions, the address-less forms, every prefix of a
 * good header (need more, never a verdict on half a header), garbage and
 * headers over the size bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "proxy.h"

static const unsigned char sig[12] = {
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* "a.b.c.d" or an IPv6 literal and port, from a sockaddr_storage. */
static void
assert_addr(const struct sockaddr_storage *ss, const char *ip, unsigned port)
{
	char text[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)ss;

		assert_non_null(
		    inet_ntop(AF_INET, &s4->sin_addr, text, sizeof(text)));
		assert_int_equal(ntohs(s4->sin_port), port);
	} else {
		const struct sockaddr_in6 *s6 = (const void *)ss;

		assert_int_equal(ss->ss_family, AF_INET6);
		assert_non_null(
		    inet_ntop(AF_INET6, &s6->sin6_addr, text, sizeof(text)));
		assert_int_equal(ntohs(s6->sin6_port), port);
	}
	assert_string_equal(text, ip);
}

/* Every strict prefix of a good header asks for more. */
static void
assert_prefixes_need_more(const void *buf, size_t hlen)
{
	struct proxy_header h;
	const char *why = NULL;

	for (size_t n = 0; n < hlen; n++)
		if (proxy_parse(buf, n, &h, &why) != PROXY_NEED_MORE) {
			print_error("prefix of %zu bytes: %s\n", n,
			    why ? why : "a verdict");
			fail();
		}
}

static void
assert_invalid(const void *buf, size_t len)
{
	struct proxy_header h;
	const char *why = NULL;

	if (proxy_parse(buf, len, &h, &why) != PROXY_INVALID) {
		print_error("accepted: %.*s\n", (int)len, (const char *)buf);
		fail();
	}
	assert_non_null(why);
}

static void
test_v1_tcp4(void **state)
{
	static const char in[] = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 "
	                         "1965\r\ngemini://localhost/\r\n";
	size_t hlen =
	    strlen("PROXY TCP4 192.0.2.1 198.51.100.2 56324 1965\r\n");
	struct proxy_header h;
	const char *why = NULL;

	(void)state;
	/* The request behind the header is left alone. */
	assert_int_equal(proxy_parse(in, strlen(in), &h, &why), PROXY_OK);
	assert_int_equal(h.len, hlen);
	assert_int_equal(h.version, 1);
	assert_false(h.local);
	assert_addr(&h.src, "192.0.2.1", 56324);
	assert_addr(&h.dst, "198.51.100.2", 1965);
	/* The header alone is enough. */
	assert_int_equal(proxy_parse(in, hlen, &h, &why), PROXY_OK);
	assert_int_equal(h.len, hlen);
	assert_prefixes_need_more(in, hlen);
}

static void
test_v1_tcp6(void **state)
{
	static const char in[] =
	    "PROXY TCP6 2001:db8::1 ::ffff:198.51.100.2 0 65535\r\n";
	struct proxy_header h;
	const char *why = NULL;

	(void)state;
	assert_int_equal(proxy_parse(in, strlen(in), &h, &why), PROXY_OK);
	assert_int_equal(h.len, strlen(in));
	assert_addr(&h.src, "2001:db8::1", 0);
	assert_addr(&h.dst, "::ffff:198.51.100.2", 65535);
	assert_prefixes_need_more(in, strlen(in));
}

static void
test_v1_unknown(void **state)
{
	static const char *const ok[] = {
	    "PROXY UNKNOWN\r\n",
	    "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n",
	};
	struct proxy_header h;
	const char *why = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(
		    proxy_parse(ok[i], strlen(ok[i]), &h, &why), PROXY_OK);
		assert_int_equal(h.len, strlen(ok[i]));
		assert_true(h.local);
		assert_int_equal(h.version, 1);
		assert_prefixes_need_more(ok[i], strlen(ok[i]));
	}
}

static void
test_v1_longest(void **state)
{
	char in[PROXY_V1_MAX + 8];
	struct proxy_header h;
	const char *why = NULL;

	(void)state;
	/* 107 bytes, CRLF included: the longest line the spec allows. */
	memset(in, 'x', sizeof(in));
	memcpy(in, "PROXY UNKNOWN ", 14);
	memcpy(in + PROXY_V1_MAX - 2, "\r\n", 2);
	assert_int_equal(proxy_parse(in, PROXY_V1_MAX, &h, &why), PROXY_OK);
	assert_int_equal(h.len, PROXY_V1_MAX);
	/* One byte more and it is refused, however much follows. */
	memset(in, 'x', sizeof(in));
	memcpy(in, "PROXY UNKNOWN ", 14);
	memcpy(in + PROXY_V1_MAX - 1, "\r\n", 2);
	assert_invalid(in, PROXY_V1_MAX + 1);
	assert_invalid(in, PROXY_V1_MAX);
	assert_int_equal(
	    proxy_parse(in, PROXY_V1_MAX - 1, &h, &why), PROXY_NEED_MORE);
}

static void
test_v1_garbage(void **state)
{
	static const char *const bad[] = {
	    "GET / HTTP/1.0\r\n",
	    "gemini://localhost/\r\n",
	    "proxy TCP4 192.0.2.1 192.0.2.2 1 2\r\n",
	    "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n",
	    "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\rX",
	    "PROXY TCP4 192.0.2.1 192.0.2.2 1 2 \r\n",
	    "PROXY TCP4  192.0.2.1 192.0.2.2 1 2\r\n",
	    "PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n",
	    "PROXY TCP4 192.0.2.1 192.0.2.2 1 2 3\r\n",
	    "PROXY TCP4 192.0.2.1 192.0.2.2 1 65536\r\n",
	    "PROXY TCP4 192.0.2.1 192.0.2.2 1 000001\r\n",
	    "PROXY TCP4 192.0.2.1 192.0.2.2 1 -2\r\n",
	    "PROXY TCP4 192.0.2.1 192.0.2.2 1 \r\n",
	    "PROXY TCP4 2001:db8::1 192.0.2.2 1 2\r\n",
	    "PROXY TCP6 192.0.2.1 192.0.2.2 1 2\r\n",
	    "PROXY TCP4 192.0.2.256 192.0.2.2 1 2\r\n",
	    "PROXY UDP4 192.0.2.1 192.0.2.2 1 2\r\n",
	    "PROXY UNKNOWNX\r\n",
	    "PROXY \r\n",
	    "PROXY\r\n",
	    "PROXY TCP4 192.0.2.1 192.0.2.\x01 1 2\r\n",
	    "PROXY TCP4 192.0.2.1 \xc3\xa9 1 2\r\n",
	    "\r\nX",
	    "P\r\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_invalid(bad[i], strlen(bad[i]));
	/* A NUL inside the line. */
	assert_invalid("PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n", 33);
	/* Garbage is refused at its first byte, not at a deadline. */
	assert_invalid("G", 1);
	assert_invalid("PROXX", 5);
	assert_invalid("PROXY TCP4 1.2.3.4\n", 19);
}

/* A v2 header: fixed part, addresses, then tlvlen bytes of TLVs. */
static size_t
v2(unsigned char *out, unsigned char vercmd, unsigned char fam,
    const void *addrs, size_t alen, size_t tlvlen)
{
	size_t body = alen + tlvlen;

	memcpy(out, sig, sizeof(sig));
	out[12] = vercmd;
	out[13] = fam;
	out[14] = (unsigned char)(body >> 8);
	out[15] = (unsigned char)body;
	memcpy(out + 16, addrs, alen);
	/* One NOOP TLV (type 0x04) filling the rest, as HAProxy pads. */
	memset(out + 16 + alen, 0xa5, tlvlen);
	if (tlvlen >= 3) {
		out[16 + alen] = 0x04;
		out[16 + alen + 1] = (unsigned char)((tlvlen - 3) >> 8);
		out[16 + alen + 2] = (unsigned char)(tlvlen - 3);
	}
	return 16 + body;
}

static const unsigned char addr4[12] = {192, 0, 2, 1, 198, 51, 100, 2, 0xdc,
    0x04, 0x07, 0xad}; /* 192.0.2.1:56324 -> 198.51.100.2:1965 */

static void
test_v2_tcp4_tlvs(void **state)
{
	unsigned char in[600];
	size_t hlen = v2(in, 0x21, 0x11, addr4, sizeof(addr4), 40);
	struct proxy_header h;
	const char *why = NULL;

	(void)state;
	/* A ClientHello may share the segment: it is not counted. */
	memcpy(in + hlen, "\x16\x03\x01\x02\x00", 5);
	assert_int_equal(proxy_parse(in, hlen + 5, &h, &why), PROXY_OK);
	assert_int_equal(h.len, 16 + 12 + 40);
	assert_int_equal(h.version, 2);
	assert_false(h.local);
	assert_addr(&h.src, "192.0.2.1", 56324);
	assert_addr(&h.dst, "198.51.100.2", 1965);
	assert_prefixes_need_more(in, hlen);
}

static void
test_v2_tcp6_tlvs(void **state)
{
	unsigned char addrs[36], in[600];
	size_t hlen;
	struct proxy_header h;
	const char *why = NULL;

	(void)state;
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::77", addrs), 1);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", addrs + 16), 1);
	addrs[32] = 0x30;
	addrs[33] = 0x39; /* 12345 */
	addrs[34] = 0x1b;
	addrs[35] = 0x9e; /* 7070 */
	hlen = v2(in, 0x21, 0x21, addrs, sizeof(addrs), 100);
	assert_int_equal(proxy_parse(in, hlen, &h, &why), PROXY_OK);
	assert_int_equal(h.len, 16 + 36 + 100);
	assert_addr(&h.src, "2001:db8::77", 12345);
	assert_addr(&h.dst, "2001:db8::1", 7070);
	assert_prefixes_need_more(in, hlen);
}

static void
test_v2_local(void **state)
{
	unsigned char in[600];
	size_t hlen;
	struct proxy_header h;
	const char *why = NULL;

	(void)state;
	/* HAProxy's health checks: LOCAL, family UNSPEC, no addresses. */
	hlen = v2(in, 0x20, 0x00, "", 0, 0);
	assert_int_equal(proxy_parse(in, hlen, &h, &why), PROXY_OK);
	assert_int_equal(h.len, 16);
	assert_true(h.local);
	assert_prefixes_need_more(in, hlen);
	/* LOCAL with addresses and TLVs: all skipped. */
	hlen = v2(in, 0x20, 0x11, addr4, sizeof(addr4), 20);
	assert_int_equal(proxy_parse(in, hlen, &h, &why), PROXY_OK);
	assert_int_equal(h.len, 16 + 12 + 20);
	assert_true(h.local);
}

static void
test_v2_invalid(void **state)
{
	unsigned char in[600], unix_addrs[216];
	size_t hlen;

	(void)state;
	memset(unix_addrs, 0, sizeof(unix_addrs));
	/* Version 1 in a v2 header, version 3, an unknown command. */
	hlen = v2(in, 0x11, 0x11, addr4, sizeof(addr4), 0);
	assert_invalid(in, hlen);
	assert_invalid(in, 13); /* judged as soon as the byte is there */
	hlen = v2(in, 0x31, 0x11, addr4, sizeof(addr4), 0);
	assert_invalid(in, hlen);
	hlen = v2(in, 0x22, 0x11, addr4, sizeof(addr4), 0);
	assert_invalid(in, hlen);
	/* UDP, UNIX sockets and UNSPEC are not what serai serves. */
	hlen = v2(in, 0x21, 0x12, addr4, sizeof(addr4), 0);
	assert_invalid(in, hlen);
	hlen = v2(in, 0x21, 0x31, unix_addrs, sizeof(unix_addrs), 0);
	assert_invalid(in, hlen);
	hlen = v2(in, 0x21, 0x00, "", 0, 0);
	assert_invalid(in, hlen);
	/* An address block too short for its family. */
	hlen = v2(in, 0x21, 0x11, addr4, 8, 0);
	assert_invalid(in, hlen);
	hlen = v2(in, 0x21, 0x21, unix_addrs, 35, 0);
	assert_invalid(in, hlen);
	/* A damaged signature. */
	hlen = v2(in, 0x21, 0x11, addr4, sizeof(addr4), 0);
	in[7] = 'q';
	assert_invalid(in, hlen);
	assert_invalid(in, 8);
}

static void
test_v2_oversize(void **state)
{
	unsigned char in[PROXY_HEADER_MAX + 64];
	size_t hlen;
	struct proxy_header h;
	const char *why = NULL;

	(void)state;
	memset(in, 0, sizeof(in));
	/* Exactly the bound: taken. */
	hlen = v2(in, 0x21, 0x11, addr4, sizeof(addr4),
	    PROXY_HEADER_MAX - 16 - sizeof(addr4));
	assert_int_equal(hlen, PROXY_HEADER_MAX);
	assert_int_equal(proxy_parse(in, hlen, &h, &why), PROXY_OK);
	assert_int_equal(h.len, PROXY_HEADER_MAX);
	/* One byte more: refused from the length field, before the body. */
	hlen = v2(in, 0x21, 0x11, addr4, sizeof(addr4),
	    PROXY_HEADER_MAX - 16 - sizeof(addr4) + 1);
	assert_invalid(in, 16);
	assert_invalid(in, hlen);
	/* The largest length the field can say. */
	in[14] = 0xff;
	in[15] = 0xff;
	assert_invalid(in, 16);
}

static void
test_empty(void **state)
{
	struct proxy_header h;
	const char *why = NULL;

	(void)state;
	assert_int_equal(proxy_parse("", 0, &h, &why), PROXY_NEED_MORE);
	assert_int_equal(proxy_parse(sig, 1, &h, &why), PROXY_NEED_MORE);
	assert_int_equal(proxy_parse("P", 1, &h, &why), PROXY_NEED_MORE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_v1_tcp4),
	    cmocka_unit_test(test_v1_tcp6),
	    cmocka_unit_test(test_v1_unknown),
	    cmocka_unit_test(test_v1_longest),
	    cmocka_unit_test(test_v1_garbage),
	    cmocka_unit_test(test_v2_tcp4_tlvs),
	    cmocka_unit_test(test_v2_tcp6_tlvs),
	    cmocka_unit_test(test_v2_local),
	    cmocka_unit_test(test_v2_invalid),
	    cmocka_unit_test(test_v2_oversize),
	    cmocka_unit_test(test_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
