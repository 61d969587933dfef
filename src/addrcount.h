/*
 * Open connections per client address: a fixed-size open-addressing
 * table (linear probing, backward-shift deletion), sized at start for the
 * connection cap so it never grows on the hot path.  Pure; the caller
 * locks.
 */
#ifndef SERAI_ADDRCOUNT_H
#define SERAI_ADDRCOUNT_H

#include <stddef.h>
#include <sys/socket.h>

struct addrcount_slot {
	unsigned char key[16]; /* as addrcount_key makes it */
	unsigned count;        /* 0: empty */
};

struct addrcount {
	struct addrcount_slot *v;
	size_t cap; /* a power of two, at least twice the entries */
	size_t n;
};

/* Room for max distinct addresses; 0 or -1. */
int addrcount_init(struct addrcount *, size_t max);
void addrcount_free(struct addrcount *);
/* An IPv4 address mapped into IPv6, or an IPv6 address's /64. */
void addrcount_key(const struct sockaddr *, unsigned char key[16]);
/* The address's new count, or 0 when the table is full. */
unsigned addrcount_inc(struct addrcount *, const unsigned char key[16]);
void addrcount_dec(struct addrcount *, const unsigned char key[16]);
unsigned addrcount_get(const struct addrcount *, const unsigned char key[16]);

#endif
