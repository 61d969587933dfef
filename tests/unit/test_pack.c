/*
 * The persistent article pack (pack.c): a catalog written and read back
 * field for field; then the file edited by hand, each time with its
 * checksums made right again so only the bounds checks stand between the
 * edit and an out-of-bounds pointer: every such file is refused (and
 * emptied), and a text whose bytes do not match is not served.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "article.h"
#include "pack.h"

/* Paragraph pointers' room: more than any fixture article has. */
#define ROOM 16

/* pack.c's layout, which a hand edit has to know. */
#define HEAD_SUM_AT 96
#define CAT_OFF_AT 48
#define CAT_LEN_AT 56
#define CAT_SUM_AT 64
#define NRECS_AT 72
#define REC_OFF_AT 40
#define REC_SUM_AT 48
#define REC_TEXTLEN_AT 64
#define REC_FIELD_AT 72 /* nine u32: location, date, lang, ..., title */
#define REC_PATHLEN_AT 108

#define NART 3
/* Each in parentheses: one string made of several literals. */
static const char *const sources[NART] = {
    ("Location: Home > News\nDate: 2020-01-02\nLang: en\nFirst title\n\n"
     "One paragraph.\n\nAnother one,\nwrapped.\n\n(Editor: Ann)\n"),
    "Second title\n\nJust a body.\n",
    "Date: 2021-03-01T20:00Z\nTags: a, b\nThird\n\nx\n\ny\n\nz\n",
};

struct fixture {
	char dir[64];
	char root[80];
	char path[128];
	struct article art[NART];
	char paths[NART][32];
};

/* pack_open, and its check of the catalog waited for. */
static struct pack *
opened(const char *dir, const char *root, const char *host)
{
	struct pack *p = pack_open(dir, root, host);

	if (p != NULL)
		assert_int_equal(pack_wait(p), 0);
	return p;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *why;

	strcpy(f->dir, "/tmp/serai-pack-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->root, sizeof(f->root), "%s", f->dir);
	snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, PACK_FILE);
	for (int i = 0; i < NART; i++) {
		if (article_parse(
		        sources[i], strlen(sources[i]), &f->art[i], &why) != 0)
			return -1;
		snprintf(f->paths[i], sizeof(f->paths[i]), "/srv/a/%d.txt", i);
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	for (int i = 0; i < NART; i++)
		article_free(&f->art[i]);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static const char *
text_of(const struct article *a)
{
	return (const char *)(void *)a->paras + (a->npara + 1) * sizeof(char *);
}

/* A pack of the fixture's articles, freshly written. */
static void
write_pack(struct fixture *f)
{
	struct pack_item v[NART];
	struct pack *p;

	unlink(f->path);
	assert_non_null(p = opened(f->dir, f->root, "host"));
	assert_int_equal(p->nrecs, 0);
	for (int i = 0; i < NART; i++) {
		v[i].path = f->paths[i];
		v[i].stamp = (struct file_stamp){
		    1, (uint64_t)i + 10, (int64_t)f->art[i].len, 5, 6};
		v[i].art = &f->art[i];
		v[i].text = text_of(&f->art[i]);
		v[i].off = PACK_NONE;
		v[i].sum = 0;
	}
	assert_int_equal(pack_commit(p, v, NART, 12345), 0);
	pack_close(p);
}

static char *
slurp(const char *path, size_t *len)
{
	struct stat st;
	char *b;
	int fd = open(path, O_RDONLY);

	assert_true(fd != -1);
	assert_int_equal(fstat(fd, &st), 0);
	b = malloc((size_t)st.st_size);
	assert_int_equal(read(fd, b, (size_t)st.st_size), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return b;
}

static void
spill(const char *path, const char *b, size_t len)
{
	int fd = open(path, O_WRONLY | O_TRUNC);

	assert_true(fd != -1);
	assert_int_equal(write(fd, b, len), (ssize_t)len);
	close(fd);
}

static uint64_t
get64(const char *b, size_t at)
{
	uint64_t v;

	memcpy(&v, b + at, 8);
	return v;
}

static void
put64(char *b, size_t at, uint64_t v)
{
	memcpy(b + at, &v, 8);
}

static void
put32(char *b, size_t at, uint32_t v)
{
	memcpy(b + at, &v, 4);
}

/* The catalog's and the header's checksums, as a careful editor would. */
static void
reseal(char *b)
{
	put64(b, CAT_SUM_AT,
	    pack_hash(b + get64(b, CAT_OFF_AT), get64(b, CAT_LEN_AT)));
	put64(b, HEAD_SUM_AT, pack_hash(b, HEAD_SUM_AT));
}

/* The first record: after the catalog's root and host names. */
static size_t
first_rec(const struct fixture *f, const char *b)
{
	return get64(b, CAT_OFF_AT) +
	    (8 + strlen(f->root) + strlen("host") + 7) / 8 * 8;
}

static void
test_round_trip(void **state)
{
	struct fixture *f = *state;
	struct pack *p;

	write_pack(f);
	assert_non_null(p = opened(f->dir, f->root, "host"));
	assert_int_equal(p->nrecs, NART);
	assert_int_equal(p->written_ns, 12345);
	assert_null(pack_find(p, "/srv/a/9.txt", NULL));
	for (int i = 0; i < NART; i++) {
		const struct pack_rec *r = pack_find(p, f->paths[i], NULL);
		const struct article *want = &f->art[i];
		struct file_stamp fs;
		struct article a;
		char *room[ROOM];
		uint64_t off, sum;

		assert_non_null(r);
		pack_rec_stamp(r, &fs);
		assert_int_equal(fs.ino, (uint64_t)i + 10);
		assert_int_equal(fs.size, (int64_t)want->len);
		assert_int_equal(pack_rec_npara(r), want->npara);
		assert_true(want->npara < ROOM);
		assert_int_equal(
		    pack_rec_article(p, r, &a, room, &off, &sum), 0);
		/* Into the caller's room: nothing allocated. */
		assert_ptr_equal(a.paras, room);
		assert_string_equal(a.title, want->title);
		assert_int_equal(a.npara, want->npara);
		for (size_t k = 0; k < a.npara; k++)
			assert_string_equal(a.paras[k], want->paras[k]);
		assert_null(a.paras[a.npara]);
#define SAME(x)                                                                \
	do {                                                                   \
		if (want->x == NULL)                                           \
			assert_null(a.x);                                      \
		else                                                           \
			assert_string_equal(a.x, want->x);                     \
	} while (0)
		SAME(location);
		SAME(date);
		SAME(lang);
		SAME(tags);
		SAME(editor);
		SAME(copyright);
		assert_int_equal(a.len, want->len);
		assert_int_equal(a.textlen, want->textlen);
		/* Into the mapping, not a copy. */
		assert_true(a.title >= p->addr && a.title < p->addr + p->len);
	}
	/*
	 * The record after near is tried first (the catalog is in the
	 * walk's order); any other path, or none after it, still goes
	 * through the hash.
	 */
	for (int i = 1; i < NART; i++)
		assert_ptr_equal(pack_find(p, f->paths[i],
		                     pack_find(p, f->paths[i - 1], NULL)),
		    pack_find(p, f->paths[i], NULL));
	assert_ptr_equal(
	    pack_find(p, f->paths[0], pack_find(p, f->paths[NART - 1], NULL)),
	    pack_find(p, f->paths[0], NULL));
	assert_ptr_equal(
	    pack_find(p, f->paths[2], pack_find(p, f->paths[0], NULL)),
	    pack_find(p, f->paths[2], NULL));
	assert_null(
	    pack_find(p, "/srv/a/9.txt", pack_find(p, f->paths[0], NULL)));
	pack_close(p);
}

/* Opened, the file is refused with a warning, emptied and not used. */
static void
refused(struct fixture *f)
{
	struct pack *p;
	struct stat st;

	assert_non_null(p = opened(f->dir, f->root, "host"));
	assert_int_equal(p->nrecs, 0);
	assert_null(pack_find(p, f->paths[0], NULL));
	pack_close(p);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_size, 0);
}

/*
 * The catalog is checked in a thread: a pack closed before the check is
 * waited for is let go whole (joined; the sanitizers see no leak), and
 * a second wait finds the pack as the first left it.
 */
static void
test_wait(void **state)
{
	struct fixture *f = *state;
	struct pack *p;

	write_pack(f);
	assert_non_null(p = pack_open(f->dir, f->root, "host"));
	pack_close(p);
	assert_non_null(p = pack_open(f->dir, f->root, "host"));
	assert_int_equal(pack_wait(p), 0);
	assert_int_equal(pack_wait(p), 0);
	assert_int_equal(p->nrecs, NART);
	assert_non_null(pack_find(p, f->paths[1], NULL));
	pack_close(p);
	assert_int_equal(pack_wait(NULL), 0);
}

static void
test_hand_edited(void **state)
{
	struct fixture *f = *state;
	/* What each edit does to the first record (or the header). */
	enum {
		TEXT_PAST_END,
		TEXT_INTO_HEADER,
		TITLE_PAST_TEXT,
		NO_TITLE,
		PATH_HUGE,
		NRECS_HUGE,
		CATALOG_PAST_END,
		TEXTLEN_PAST_CATALOG,
		NEDITS
	};

	for (int e = 0; e < NEDITS; e++) {
		size_t len, r;
		char *b;

		write_pack(f);
		b = slurp(f->path, &len);
		r = first_rec(f, b);
		switch (e) {
		case TEXT_PAST_END:
			put64(b, r + REC_OFF_AT, len);
			break;
		case TEXT_INTO_HEADER:
			put64(b, r + REC_OFF_AT, 8);
			break;
		case TITLE_PAST_TEXT:
			put32(b, r + REC_FIELD_AT + 6 * 4, 1u << 20);
			break;
		case NO_TITLE:
			put32(b, r + REC_FIELD_AT + 6 * 4, UINT32_MAX);
			break;
		case PATH_HUGE:
			put32(b, r + REC_PATHLEN_AT, UINT32_MAX - 3);
			break;
		case NRECS_HUGE:
			put64(b, NRECS_AT, UINT64_MAX / 2);
			break;
		case CATALOG_PAST_END:
			put64(b, CAT_LEN_AT, len);
			break;
		case TEXTLEN_PAST_CATALOG:
			put32(b, r + REC_TEXTLEN_AT, (uint32_t)len);
			break;
		}
		if (e != CATALOG_PAST_END)
			reseal(b);
		else
			put64(b, HEAD_SUM_AT, pack_hash(b, HEAD_SUM_AT));
		spill(f->path, b, len);
		free(b);
		refused(f);
	}
}

static void
test_damaged_text(void **state)
{
	struct fixture *f = *state;
	const struct pack_rec *rec;
	struct article a;
	char *room[ROOM];
	uint64_t off, sum;
	struct pack *p;
	size_t len, r, t;
	char *b;

	/* A flipped byte: the catalog is sound, the text fails its sum. */
	write_pack(f);
	b = slurp(f->path, &len);
	r = first_rec(f, b);
	t = get64(b, r + REC_OFF_AT);
	b[t] ^= 1;
	spill(f->path, b, len);
	assert_non_null(p = opened(f->dir, f->root, "host"));
	assert_int_equal(p->nrecs, NART);
	assert_non_null(rec = pack_find(p, f->paths[0], NULL));
	assert_int_equal(pack_rec_article(p, rec, &a, room, &off, &sum), -1);
	assert_null(a.paras);
	assert_non_null(rec = pack_find(p, f->paths[1], NULL));
	assert_int_equal(pack_rec_article(p, rec, &a, room, &off, &sum), 0);
	pack_close(p);

	free(b);

	/*
	 * Its last NUL gone, and the sums made right: its strings would
	 * run on into the next text.  An invalid date, likewise.
	 */
	for (int e = 0; e < 2; e++) {
		write_pack(f);
		b = slurp(f->path, &len);
		if (e == 0)
			b[t + f->art[0].textlen - 1] = 'x';
		else
			memcpy(b + t + (f->art[0].date - text_of(&f->art[0])),
			    "2020-13", 7);
		put64(b, r + REC_SUM_AT, pack_hash(b + t, f->art[0].textlen));
		reseal(b);
		spill(f->path, b, len);
		free(b);
		assert_non_null(p = opened(f->dir, f->root, "host"));
		assert_int_equal(p->nrecs, NART);
		assert_non_null(rec = pack_find(p, f->paths[0], NULL));
		assert_int_equal(
		    pack_rec_article(p, rec, &a, room, &off, &sum), -1);
		assert_null(a.paras);
		pack_close(p);
	}
}

static void
test_foreign(void **state)
{
	struct fixture *f = *state;
	struct pack *p;

	write_pack(f);
	assert_non_null(p = opened(f->dir, "/elsewhere", "host"));
	assert_int_equal(p->nrecs, 0);
	pack_close(p);
	write_pack(f);
	assert_non_null(p = opened(f->dir, f->root, "another"));
	assert_int_equal(p->nrecs, 0);
	pack_close(p);
	/* Held by one: a second (another serai) does not get it. */
	write_pack(f);
	assert_non_null(p = opened(f->dir, f->root, "host"));
	assert_null(opened(f->dir, f->root, "host"));
	pack_close(p);
}

static void
test_compaction(void **state)
{
	struct fixture *f = *state;
	struct pack_item v[1];
	struct pack *p;
	struct stat st0, st1, st2;

	write_pack(f);
	assert_int_equal(stat(f->path, &st0), 0);
	/* Two of three texts gone: garbage exceeds the live one. */
	assert_non_null(p = opened(f->dir, f->root, "host"));
	v[0].path = f->paths[2];
	v[0].stamp = (struct file_stamp){1, 12, 0, 5, 6};
	v[0].art = &f->art[2];
	v[0].text = text_of(&f->art[2]);
	v[0].off = PACK_NONE;
	v[0].sum = 0;
	assert_int_equal(pack_commit(p, v, 1, 1), 0);
	pack_close(p);
	assert_int_equal(stat(f->path, &st1), 0);
	assert_true(st1.st_size < st0.st_size);
	assert_true(st1.st_ino != st0.st_ino);
	/* The same again, its text now in the file: appended, not moved. */
	assert_non_null(p = opened(f->dir, f->root, "host"));
	assert_int_equal(p->nrecs, 1);
	{
		struct article a;
		char *room[ROOM];

		assert_int_equal(
		    pack_rec_article(p, pack_find(p, f->paths[2], NULL), &a,
		        room, &v[0].off, &v[0].sum),
		    0);
	}
	assert_int_equal(pack_commit(p, v, 1, 2), 0);
	pack_close(p);
	assert_int_equal(stat(f->path, &st2), 0);
	assert_true(st2.st_ino == st1.st_ino);
	assert_non_null(p = opened(f->dir, f->root, "host"));
	assert_int_equal(p->nrecs, 1);
	assert_int_equal(p->written_ns, 2);
	pack_close(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_wait),
	    cmocka_unit_test(test_hand_edited),
	    cmocka_unit_test(test_damaged_text),
	    cmocka_unit_test(test_foreign),
	    cmocka_unit_test(test_compaction),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
