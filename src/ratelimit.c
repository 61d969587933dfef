#include "ratelimit.h"

#include <stdlib.h>
#include <string.h>

int
ratelimit_init(
    struct ratelimit *t, size_t slots, double rate, double burst, uint64_t seed)
{
	size_t nsets = 1;

	memset(t, 0, sizeof(*t));
	while (nsets * RATELIMIT_WAYS < slots) {
		if (nsets > SIZE_MAX / (4 * RATELIMIT_WAYS))
			return -1;
		nsets *= 2;
	}
	t->v = calloc(nsets * RATELIMIT_WAYS, sizeof(*t->v));
	if (t->v == NULL)
		return -1;
	t->nsets = nsets;
	t->rate = rate;
	t->burst = burst;
	t->seed = seed;
	return 0;
}

void
ratelimit_free(struct ratelimit *t)
{
	free(t->v);
	memset(t, 0, sizeof(*t));
}

/* FNV-1a over the seed and the key, then a final mix (splitmix64's). */
static size_t
set_of(const struct ratelimit *t, const unsigned char key[16])
{
	uint64_t h = 1469598103934665603ULL ^ t->seed;

	for (int i = 0; i < 16; i++) {
		h ^= key[i];
		h *= 1099511628211ULL;
	}
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return (size_t)h & (t->nsets - 1);
}

static double
refilled(const struct ratelimit *t, const struct ratelimit_slot *s, double now)
{
	double v;

	if (s->at == 0)
		return t->burst;
	v = s->tokens + (now > s->at ? (now - s->at) * t->rate : 0);
	return v > t->burst ? t->burst : v;
}

unsigned
ratelimit_take(struct ratelimit *t, const unsigned char key[16], double now)
{
	struct ratelimit_slot *set, *s = NULL;
	double best = -1, v;
	unsigned wait;

	if (t->v == NULL)
		return 0;
	set = t->v + set_of(t, key) * RATELIMIT_WAYS;
	for (size_t i = 0; i < RATELIMIT_WAYS; i++)
		if (set[i].at != 0 && memcmp(set[i].key, key, 16) == 0) {
			s = &set[i];
			break;
		}
	if (s == NULL) {
		/* An empty way, or the one closest to a full bucket. */
		for (size_t i = 0; i < RATELIMIT_WAYS; i++) {
			v = refilled(t, &set[i], now);
			if (v > best) {
				best = v;
				s = &set[i];
			}
		}
		memcpy(s->key, key, 16);
		s->tokens = t->burst;
		s->at = now;
	}
	s->tokens = refilled(t, s, now);
	s->at = now;
	if (s->tokens >= 1) {
		s->tokens -= 1;
		return 0;
	}
	/* Rounded up: a client that waits as told finds a token. */
	v = (1 - s->tokens) / t->rate;
	if (v >= 86400)
		return 86400;
	wait = (unsigned)v;
	if ((double)wait < v)
		wait++;
	return wait < 1 ? 1 : wait;
}
