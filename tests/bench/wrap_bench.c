/*
 * Line breaking cost: text_wrap over 2.9 KB paragraphs of printable
 * ASCII (the fast path), of English with typographic quotes, a dash and
 * accents (mixed: the ASCII stretches fast, the rest libunibreak), and
 * of Chinese (libunibreak throughout).  Prints microseconds a paragraph
 * and nanoseconds a byte, the best of five rounds (the machine is
 * shared).  Not a test: run by hand, ./build/tests/bench/wrap_bench.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "text.h"
#include "util.h"

#define PARA_BYTES 3000
#define ROUNDS 5
#define WRAPS 2000

static double
now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void
run(const char *what, const char *unit, const char *lang)
{
	char s[PARA_BYTES + 512] = "";
	double best = 1e9;
	struct buf b;
	size_t len;

	while (strlen(s) + strlen(unit) < PARA_BYTES)
		strcat(s, unit);
	len = strlen(s);
	buf_init(&b);
	for (int r = 0; r < ROUNDS; r++) {
		double t0 = now(), t;

		for (int i = 0; i < WRAPS; i++) {
			b.len = 0;
			text_wrap(&b, s, len, 70, "\r\n", lang);
		}
		t = (now() - t0) / WRAPS * 1e6;
		if (t < best)
			best = t;
	}
	buf_free(&b);
	printf("%-44s %5zu B %8.2f us %6.2f ns/B\n", what, len, best,
	    best * 1000 / (double)len);
}

int
main(void)
{
	run("English, printable ASCII",
	    "The Chinese Academy of Sciences and research institutions from "
	    "countries along the Belt and Road signed the Beijing "
	    "Declaration on Tuesday, establishing a long-term mechanism. ",
	    "en");
	run("English, typographic quotes, dash, accents",
	    "The \xe2\x80\x9c"
	    "Belt and Road\xe2\x80\x9d institutions signed the declaration "
	    "on Tuesday \xe2\x80\x94 the academy\xe2\x80\x99s caf\xc3\xa9 "
	    "hosted a long-term mechanism for cooperation. ",
	    "en");
	run("Chinese",
	    "\xe4\xb8\xad\xe5\x9b\xbd\xe7\xa7\x91\xe5\xad\xa6\xe9\x99\xa2\xe4"
	    "\xb8\x8e\xe2\x80\x9c\xe4\xb8\x80\xe5\xb8\xa6\xe4\xb8\x80\xe8\xb7"
	    "\xaf\xe2\x80\x9d\xe6\xb2\xbf\xe7\xba\xbf\xe5\x9b\xbd\xe5\xae\xb6"
	    "\xe7\x9a\x84\xe7\xa7\x91\xe7\xa0\x94\xe6\x9c\xba\xe6\x9e\x84\xe5"
	    "\x8f\x91\xe8\xa1\xa8\xe4\xba\x86\xe3\x80\x8a\xe5\x8c\x97\xe4\xba"
	    "\xac\xe5\xae\xa3\xe8\xa8\x80\xe3\x80\x8b\xef\xbc\x8c",
	    "zh");
	return 0;
}
