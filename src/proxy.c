/*
 * The PROXY protocol header, versions 1 (text) and 2 (binary), as HAProxy
 * specifies it (doc/proxy-protocol.txt).  Only TCP over IPv4 and IPv6 is
 * taken, plus the address-less forms (v1 UNKNOWN, v2 LOCAL) that proxies
 * use for health checks.  Pure: no sockets are touched.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "proxy.h"

/* "\r\n\r\n\0\r\nQUIT\n": chosen by the spec to be no valid request. */
static const unsigned char v2sig[12] = {
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

#define V2_CMD_LOCAL 0x0
#define V2_CMD_PROXY 0x1
#define V2_TCP4 0x11 /* AF_INET, SOCK_STREAM */
#define V2_TCP6 0x21 /* AF_INET6, SOCK_STREAM */
#define V2_TCP4_LEN 12
#define V2_TCP6_LEN 36

static enum proxy_result
invalid(const char **why, const char *msg)
{
	*why = msg;
	return PROXY_INVALID;
}

static void
set_addr(struct sockaddr_storage *ss, int af, const void *addr, unsigned port)
{
	memset(ss, 0, sizeof(*ss));
	if (af == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, addr, sizeof(s4->sin_addr));
		s4->sin_port = htons((unsigned short)port);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, addr, sizeof(s6->sin6_addr));
		s6->sin6_port = htons((unsigned short)port);
	}
}

/* A v1 port: decimal, 0 to 65535, at most five digits. */
static int
v1_port(const char *s, unsigned *out)
{
	unsigned v = 0;
	size_t n = 0;

	for (; s[n] != '\0'; n++) {
		if (s[n] < '0' || s[n] > '9' || n == 5)
			return -1;
		v = v * 10 + (unsigned)(s[n] - '0');
	}
	if (n == 0 || v > 65535)
		return -1;
	*out = v;
	return 0;
}

/* "PROXY TCP4 src dst sport dport\r\n", fields split by one space each. */
static enum proxy_result
parse_v1(const unsigned char *p, size_t len, struct proxy_header *h,
    const char **why)
{
	char line[PROXY_V1_MAX], *f[6], *s;
	unsigned char a[2][sizeof(struct in6_addr)];
	unsigned port[2];
	size_t n = len < PROXY_V1_MAX ? len : PROXY_V1_MAX, i, nf = 0;
	int af;

	for (i = 0; i < n; i++) {
		if (p[i] == '\r') {
			if (i + 1 == n)
				break;
			if (p[i + 1] != '\n')
				return invalid(why, "v1: CR without LF");
			goto line_end;
		}
		if (p[i] < 0x20 || p[i] > 0x7e)
			return invalid(why, "v1: control or non-ASCII byte");
	}
	if (len >= PROXY_V1_MAX)
		return invalid(why, "v1: no CRLF within 107 bytes");
	return PROXY_NEED_MORE;

line_end:
	memcpy(line, p, i);
	line[i] = '\0';
	h->len = i + 2;
	h->version = 1;
	/* UNKNOWN: whatever follows is to be ignored (spec, 2.1). */
	if (strncmp(line, "PROXY UNKNOWN", 13) == 0 &&
	    (line[13] == '\0' || line[13] == ' ')) {
		h->local = true;
		return PROXY_OK;
	}
	for (s = line;;) {
		char *sp = strchr(s, ' ');

		if (nf == 6 || *s == '\0' || sp == s)
			return invalid(why, "v1: not six fields");
		f[nf++] = s;
		if (sp == NULL)
			break;
		*sp = '\0';
		s = sp + 1;
	}
	if (nf != 6)
		return invalid(why, "v1: not six fields");
	if (strcmp(f[1], "TCP4") == 0)
		af = AF_INET;
	else if (strcmp(f[1], "TCP6") == 0)
		af = AF_INET6;
	else
		return invalid(why, "v1: protocol not TCP4, TCP6 or UNKNOWN");
	if (inet_pton(af, f[2], a[0]) != 1 || inet_pton(af, f[3], a[1]) != 1)
		return invalid(why, "v1: bad address");
	if (v1_port(f[4], &port[0]) == -1 || v1_port(f[5], &port[1]) == -1)
		return invalid(why, "v1: bad port");
	set_addr(&h->src, af, a[0], port[0]);
	set_addr(&h->dst, af, a[1], port[1]);
	return PROXY_OK;
}

/*
 * Signature, version and command, family and transport, length (network
 * order), then the addresses and ports; TLVs fill the rest and are
 * skipped.  Each field is judged as soon as it has arrived.
 */
static enum proxy_result
parse_v2(const unsigned char *p, size_t len, struct proxy_header *h,
    const char **why)
{
	size_t total, need = 0;
	unsigned cmd = 0;

	if (len > 12) {
		if (p[12] >> 4 != 2)
			return invalid(why, "v2: unknown version");
		cmd = p[12] & 0x0f;
		if (cmd != V2_CMD_LOCAL && cmd != V2_CMD_PROXY)
			return invalid(why, "v2: unknown command");
	}
	if (len < PROXY_V2_FIXED)
		return PROXY_NEED_MORE;
	total = PROXY_V2_FIXED + ((size_t)p[14] << 8 | p[15]);
	if (total > PROXY_HEADER_MAX)
		return invalid(why, "v2: header longer than 536 bytes");
	if (cmd == V2_CMD_PROXY) {
		if (p[13] == V2_TCP4)
			need = V2_TCP4_LEN;
		else if (p[13] == V2_TCP6)
			need = V2_TCP6_LEN;
		else
			return invalid(why, "v2: not TCP over IPv4 or IPv6");
		if (total - PROXY_V2_FIXED < need)
			return invalid(why, "v2: address block too short");
	}
	if (len < total)
		return PROXY_NEED_MORE;
	h->len = total;
	h->version = 2;
	if (cmd == V2_CMD_LOCAL) {
		/* The proxy speaks for itself; its addresses are ignored. */
		h->local = true;
		return PROXY_OK;
	}
	p += PROXY_V2_FIXED;
	if (need == V2_TCP4_LEN) {
		set_addr(&h->src, AF_INET, p, (unsigned)(p[8] << 8 | p[9]));
		set_addr(
		    &h->dst, AF_INET, p + 4, (unsigned)(p[10] << 8 | p[11]));
	} else {
		set_addr(&h->src, AF_INET6, p, (unsigned)(p[32] << 8 | p[33]));
		set_addr(
		    &h->dst, AF_INET6, p + 16, (unsigned)(p[34] << 8 | p[35]));
	}
	return PROXY_OK;
}

enum proxy_result
proxy_parse(
    const void *buf, size_t len, struct proxy_header *h, const char **why)
{
	const unsigned char *p = buf;
	size_t n;

	memset(h, 0, sizeof(*h));
	if (len == 0)
		return PROXY_NEED_MORE;
	n = len < sizeof(v2sig) ? len : sizeof(v2sig);
	if (memcmp(p, v2sig, n) == 0)
		return parse_v2(p, len, h, why);
	n = len < 6 ? len : 6;
	if (memcmp(p, "PROXY ", n) == 0)
		return parse_v1(p, len, h, why);
	return invalid(why, "neither v1 nor v2");
}

bool
proxy_is_v2(const void *data, size_t len)
{
	return len >= sizeof(v2sig) && memcmp(data, v2sig, sizeof(v2sig)) == 0;
}
