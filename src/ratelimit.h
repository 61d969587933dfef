/*
 * Requests per client address: a token bucket per address in a fixed-size
 * set-associative table, so a flood from many addresses costs no memory
 * beyond what start-up allocated; a new address takes the place of the
 * one in its set that has the most tokens back (a full bucket is the same
 * as no entry, so usually nothing is lost).  Pure; the caller locks.
 */
#ifndef SERAI_RATELIMIT_H
#define SERAI_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

/* Addresses in one set: how far a lookup searches, and the eviction's
 * choice; eight keep a lookup within two cache lines of keys. */
#define RATELIMIT_WAYS 8

struct ratelimit_slot {
	unsigned char key[16]; /* as addrcount_key makes it */
	double tokens;
	double at; /* when tokens was computed; 0: empty */
};

struct ratelimit {
	struct ratelimit_slot *v;
	size_t nsets; /* a power of two */
	double rate;  /* tokens a second */
	double burst; /* a bucket's size */
	uint64_t seed;
};

/*
 * Room for at least slots addresses; seed keys the hash, so no client can
 * aim its addresses at another's set to evict it.  0 or -1.
 */
int ratelimit_init(
    struct ratelimit *, size_t slots, double rate, double burst, uint64_t seed);
void ratelimit_free(struct ratelimit *);
/*
 * Takes a token for the address at time now (seconds, monotonic, > 0):
 * 0 when there was one, else the whole seconds until there is (>= 1).
 */
unsigned ratelimit_take(
    struct ratelimit *, const unsigned char key[16], double now);

#endif
