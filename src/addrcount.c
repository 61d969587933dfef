#include "addrcount.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int
addrcount_init(struct addrcount *t, size_t max)
{
	size_t cap = 16;

	memset(t, 0, sizeof(*t));
	while (cap < max * 2) {
		if (cap > SIZE_MAX / 4)
			return -1;
		cap *= 2;
	}
	if ((t->v = calloc(cap, sizeof(*t->v))) == NULL)
		return -1;
	t->cap = cap;
	return 0;
}

void
addrcount_free(struct addrcount *t)
{
	free(t->v);
	memset(t, 0, sizeof(*t));
}

void
addrcount_key(const struct sockaddr *sa, unsigned char key[16])
{
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a =
		    &((const struct sockaddr_in6 *)sa)->sin6_addr;

		memcpy(key, a, 16);
		/*
		 * One IPv6 client holds a whole /64 (SLAAC, privacy
		 * addresses): count it as one, or it has 2^64 addresses.
		 */
		if (!IN6_IS_ADDR_V4MAPPED(a))
			memset(key + 8, 0, 8);
	} else if (sa->sa_family == AF_INET) {
		key[10] = key[11] = 0xff;
		memcpy(
		    key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	}
}

/* FNV-1a: addresses are not attacker-chosen enough to need a keyed hash
 * here, since the table is bounded and probing stays short at <= 1/2 load.
 */
static size_t
slot_of(const struct addrcount *t, const unsigned char key[16])
{
	uint64_t h = 1469598103934665603ULL;

	for (int i = 0; i < 16; i++) {
		h ^= key[i];
		h *= 1099511628211ULL;
	}
	return (size_t)(h ^ (h >> 32)) & (t->cap - 1);
}

static size_t
find(const struct addrcount *t, const unsigned char key[16])
{
	size_t i = slot_of(t, key);

	while (t->v[i].count != 0 && memcmp(t->v[i].key, key, 16) != 0)
		i = (i + 1) & (t->cap - 1);
	return i;
}

unsigned
addrcount_get(const struct addrcount *t, const unsigned char key[16])
{
	return t->cap ? t->v[find(t, key)].count : 0;
}

unsigned
addrcount_inc(struct addrcount *t, const unsigned char key[16])
{
	size_t i;

	if (t->cap == 0)
		return 0;
	i = find(t, key);
	if (t->v[i].count == 0) {
		if (t->n + 1 > t->cap / 2)
			return 0;
		memcpy(t->v[i].key, key, 16);
		t->n++;
	}
	return ++t->v[i].count;
}

void
addrcount_dec(struct addrcount *t, const unsigned char key[16])
{
	size_t i, j, home;

	if (t->cap == 0)
		return;
	i = find(t, key);
	if (t->v[i].count == 0 || --t->v[i].count > 0)
		return;
	/* Backward-shift deletion keeps every probe chain unbroken. */
	t->n--;
	j = i;
	for (;;) {
		j = (j + 1) & (t->cap - 1);
		if (t->v[j].count == 0)
			break;
		home = slot_of(t, t->v[j].key);
		/* Move j into the hole at i unless its home lies in (i, j]. */
		if ((j > i && (home <= i || home > j)) ||
		    (j < i && (home <= i && home > j))) {
			t->v[i] = t->v[j];
			i = j;
		}
	}
	t->v[i].count = 0;
	memset(t->v[i].key, 0, 16);
}
