/*
 * The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and
 * 2) that a load balancer puts before the client's bytes to say who the
 * client is.  Pure: bytes in, a verdict out; conn.c does the reading.
 */
#ifndef SERAI_PROXY_H
#define SERAI_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Version 1 is one text line of at most 107 bytes, CRLF included. */
#define PROXY_V1_MAX 107
/* Version 2: a 16-byte fixed part, then addresses and TLVs. */
#define PROXY_V2_FIXED 16
/*
 * Version 2 may carry up to 64 KB of TLVs, which serai skips; 536 bytes
 * hold the addresses and the TLVs HAProxy sends (ALPN, authority, SSL
 * details, unique id).  A longer header is refused rather than read.
 */
#define PROXY_HEADER_MAX 536

enum proxy_result { PROXY_NEED_MORE, PROXY_INVALID, PROXY_OK };

struct proxy_header {
	size_t len;  /* bytes the header takes: the client's data follows */
	int version; /* 1 or 2 */
	/*
	 * v1 UNKNOWN or v2 LOCAL (health checks, the proxy speaking for
	 * itself): no addresses, the socket's own stand.
	 */
	bool local;
	struct sockaddr_storage src; /* the client */
	struct sockaddr_storage dst; /* the address the client connected to */
};

/*
 * Parses the start of a connection's input.  PROXY_NEED_MORE promises
 * that every byte given belongs to the header, so a caller may consume
 * them all before reading more; PROXY_OK fills *h (h->len <= len);
 * PROXY_INVALID sets *why.  Nothing beyond PROXY_HEADER_MAX bytes is
 * ever looked at.
 */
enum proxy_result proxy_parse(
    const void *buf, size_t len, struct proxy_header *h, const char **why);

/*
 * Whether data opens with the PROXY v2 signature (its first 12 bytes):
 * a header sent where none is expected is refused, not read as a line.
 */
bool proxy_is_v2(const void *data, size_t len);

#endif
