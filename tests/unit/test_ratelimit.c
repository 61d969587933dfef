/*
 * The rate table: the burst, the refill and the wait it tells, a table
 * that keeps a flooding address limited while a million others come and
 * go through its fixed slots, and addresses keyed per IPv6 /64.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "addrcount.h"
#include "ratelimit.h"

static void
key_of(unsigned char key[16], uint32_t n)
{
	memset(key, 0, 16);
	key[10] = key[11] = 0xff;
	key[12] = (unsigned char)(n >> 24);
	key[13] = (unsigned char)(n >> 16);
	key[14] = (unsigned char)(n >> 8);
	key[15] = (unsigned char)n;
}

static void
test_burst_then_wait(void **state)
{
	struct ratelimit t;
	unsigned char k[16];
	double now = 100;

	(void)state;
	assert_int_equal(ratelimit_init(&t, 64, 10, 50, 1), 0);
	key_of(k, 1);
	for (int i = 0; i < 50; i++)
		assert_int_equal(ratelimit_take(&t, k, now), 0);
	/* Empty: a token in 0.1 s, told as one whole second (0.11: no
	 * rounding of doubles on the edge). */
	assert_int_equal(ratelimit_take(&t, k, now), 1);
	assert_int_equal(ratelimit_take(&t, k, now + 0.05), 1);
	assert_int_equal(ratelimit_take(&t, k, now + 0.11), 0);
	assert_int_equal(ratelimit_take(&t, k, now + 0.11), 1);
	/* A second refills ten, never more than the burst. */
	for (int i = 0; i < 10; i++)
		assert_int_equal(ratelimit_take(&t, k, now + 1.11), 0);
	assert_int_not_equal(ratelimit_take(&t, k, now + 1.11), 0);
	for (int i = 0; i < 50; i++)
		assert_int_equal(ratelimit_take(&t, k, now + 1000), 0);
	assert_int_not_equal(ratelimit_take(&t, k, now + 1000), 0);
	ratelimit_free(&t);
}

static void
test_slow_rate_wait(void **state)
{
	struct ratelimit t;
	unsigned char k[16];

	(void)state;
	/* One a second, at most two at once: a crawler at 1/s never waits. */
	assert_int_equal(ratelimit_init(&t, 64, 1, 2, 1), 0);
	key_of(k, 7);
	for (int i = 0; i < 100; i++)
		assert_int_equal(ratelimit_take(&t, k, 10 + i), 0);
	assert_int_equal(ratelimit_take(&t, k, 109.5), 0);
	assert_int_equal(ratelimit_take(&t, k, 109.5), 1);
	ratelimit_free(&t);
}

static void
test_flood_of_addresses(void **state)
{
	struct ratelimit t;
	unsigned char abuser[16], k[16];
	double now = 1;

	(void)state;
	assert_int_equal(ratelimit_init(&t, 1024, 10, 50, 42), 0);
	key_of(abuser, 0xdeadbeef);
	while (ratelimit_take(&t, abuser, now) == 0)
		;
	/*
	 * A million others, each sending once in the same instant: the
	 * table stays its size, and the abuser, whose bucket is emptier
	 * than any of theirs, is never the one evicted.
	 */
	for (uint32_t i = 0; i < 1000000; i++) {
		key_of(k, i);
		assert_int_equal(ratelimit_take(&t, k, now), 0);
		if (i % 100000 == 0)
			assert_int_not_equal(
			    ratelimit_take(&t, abuser, now), 0);
	}
	assert_int_not_equal(ratelimit_take(&t, abuser, now), 0);
	assert_int_equal(t.nsets * RATELIMIT_WAYS, 1024);
	ratelimit_free(&t);
}

static void
test_off(void **state)
{
	struct ratelimit t;
	unsigned char k[16];

	(void)state;
	memset(&t, 0, sizeof(t));
	key_of(k, 1);
	assert_int_equal(ratelimit_take(&t, k, 1), 0);
}

static void
test_key_ipv6_per_64(void **state)
{
	struct sockaddr_in6 a, b, c;
	struct sockaddr_in v4;
	unsigned char ka[16], kb[16], kc[16], k4[16];

	(void)state;
	memset(&a, 0, sizeof(a));
	a.sin6_family = AF_INET6;
	b = c = a;
	inet_pton(AF_INET6, "2001:db8::1", &a.sin6_addr);
	inet_pton(AF_INET6, "2001:db8::ffff:1234:5678:9abc", &b.sin6_addr);
	inet_pton(AF_INET6, "2001:db8:0:1::1", &c.sin6_addr);
	addrcount_key((struct sockaddr *)&a, ka);
	addrcount_key((struct sockaddr *)&b, kb);
	addrcount_key((struct sockaddr *)&c, kc);
	assert_memory_equal(ka, kb, 16);
	assert_memory_not_equal(ka, kc, 16);
	/* IPv4 keeps every bit, whether plain or mapped into IPv6. */
	memset(&v4, 0, sizeof(v4));
	v4.sin_family = AF_INET;
	inet_pton(AF_INET, "192.0.2.7", &v4.sin_addr);
	addrcount_key((struct sockaddr *)&v4, k4);
	inet_pton(AF_INET6, "::ffff:192.0.2.7", &a.sin6_addr);
	addrcount_key((struct sockaddr *)&a, ka);
	assert_memory_equal(ka, k4, 16);
	inet_pton(AF_INET6, "::ffff:192.0.2.8", &a.sin6_addr);
	addrcount_key((struct sockaddr *)&a, ka);
	assert_memory_not_equal(ka, k4, 16);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_burst_then_wait),
	    cmocka_unit_test(test_slow_rate_wait),
	    cmocka_unit_test(test_flood_of_addresses),
	    cmocka_unit_test(test_off),
	    cmocka_unit_test(test_key_ipv6_per_64),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
