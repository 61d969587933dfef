/*
 * The persistent article pack: one file per archive in its state
 * directory (PACK_FILE, beside search.db) holding the texts of the
 * articles as the parser left them and a catalog keyed by file path and
 * stamp, so a warm start takes an unchanged file's parsed text from the
 * mapped pack instead of reading and parsing it again.
 *
 * The file is untrusted input: its header, catalog and every offset in
 * them are checked before anything points into it, each text carries a
 * checksum verified when it is used, and a file that fails a check is
 * emptied and written anew (a cold start), never served from.  It is
 * appended to, the header last: a crash mid-write leaves the previous
 * header naming the previous, intact catalog.
 */
#ifndef SERAI_PACK_H
#define SERAI_PACK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "archive.h"
#include "article.h"

#define PACK_FILE "articles.pack"
/*
 * The header's room: one sector, so its write lands whole on most disks
 * (and its checksum catches one that does not).  Texts follow it.
 */
#define PACK_HEAD_BYTES 512
/* An item's text not in the pack yet (pack_item.off). */
#define PACK_NONE UINT64_MAX

/* A catalog record, in the mapped file. */
struct pack_rec;

struct pack {
	int fd; /* open read-write and locked (flock) while serai runs */
	char *path;
	char *root; /* the archive root's real path, and the host name: */
	char *host; /* a catalog made for another is not used */
	/*
	 * The file mapped as opened; the caller may take the mapping over
	 * (archive.c makes it a segment) and set addr NULL.
	 */
	char *addr;
	size_t len;
	int64_t size; /* the file's, as opened */
	bool lent;    /* the mapping is the caller's: not unmapped here */
	/* The catalog: a hash of the records by path; none when empty. */
	const struct pack_rec **slots;
	size_t nslots, nrecs;
	uint64_t live; /* bytes of text the catalog points at */
	/*
	 * Bytes of the file its writer left unused (the room the loader's
	 * threads took in chunks and did not fill): not garbage, so not a
	 * reason to compact.  Set by the writer before pack_commit.
	 */
	uint64_t holes;
	uint64_t cat_off; /* where the catalog is in the file */
	uint64_t cat_len; /* the catalog's own bytes */
	/*
	 * The catalog in the file now (written by this process or found at
	 * open): a saved tree names its checksum and count.
	 */
	uint64_t cat_sum, saved_nrecs;
	int64_t written_ns; /* CLOCK_REALTIME when its load began */
	bool used;          /* a load has taken it: reloads do not */
	/*
	 * The catalog is checked and its hash built in a thread of its own
	 * (pack_open), while the archive is walked; pack_wait joins it.
	 */
	pthread_t checker;
	bool checking;
	const char *why; /* the check's verdict: NULL, or why it failed */
	bool broken;     /* it failed and could not be emptied: unused */
};

/*
 * dir/PACK_FILE, made if absent, locked, and its catalog checked.  A
 * damaged, foreign or old-format file is warned about (naming it and
 * why) and emptied: the start is then cold.  NULL (warned about) when it
 * cannot be used at all: not a regular file (a symlink, a FIFO: left
 * alone), locked by another serai, or not creatable.  The check runs in
 * a thread of its own: nothing of the pack but the pointer may be used
 * before pack_wait.
 */
struct pack *pack_open(const char *dir, const char *root, const char *host);
/*
 * Waits for pack_open's check of the catalog; the pack is then as a
 * synchronous open would have left it (emptied if the check failed).
 * -1 (warned about): it could not be emptied, so it is not to be used
 * nor written.  Again, or on a NULL pack: does nothing.
 */
int pack_wait(struct pack *);
void pack_close(struct pack *);
/*
 * The record for a file path, or NULL.  near: the record found for the
 * file looked up before, or NULL.  The catalog is in the order of the
 * walk that wrote it, which the next walk repeats: the record after near
 * is tried first, next to it in memory, and only then the hash.
 */
const struct pack_rec *pack_find(
    const struct pack *, const char *path, const struct pack_rec *near);
void pack_rec_stamp(const struct pack_rec *, struct file_stamp *);
/* The record's paragraphs: paras' room in pack_rec_article is one more. */
size_t pack_rec_npara(const struct pack_rec *);
/*
 * The record's parsed article, its fields pointing into the mapping and
 * its paragraph pointers in paras (the caller's, room for
 * pack_rec_npara + 1: no allocation here, so the caller may put them in
 * the block that holds the article), with the text's offset in the file
 * and checksum.  -1 when the text fails its checksum or a check of its
 * fields (a zeroed article): read the file.
 */
int pack_rec_article(const struct pack *, const struct pack_rec *,
    struct article *, char **paras, uint64_t *off, uint64_t *sum);

/* An article to be in the catalog pack_commit writes. */
struct pack_item {
	const char *path;
	struct file_stamp stamp;
	const struct article *art;
	const char *text; /* its strings (art's fields point into them) */
	uint64_t off;     /* in: in the file already, or PACK_NONE; out */
	uint64_t sum;     /* with off, the record's; else computed */
};

/*
 * Writes the catalog of items: the texts not in the file yet appended,
 * then the catalog, then the header.  When more than half the file
 * would be garbage (texts no catalog names any more), the live texts are
 * written to a new file renamed over the old instead (the old stays
 * mapped as long as the caller's mappings hold it).  Each item's off is
 * then where its text is.  -1 (warned about): the file is as it was.
 */
int pack_commit(
    struct pack *, struct pack_item *, size_t n, int64_t started_ns);
/*
 * Whether pack_commit of items holding live bytes of text, fresh of them
 * not in the file yet, would write a new file (or cannot tell).
 */
bool pack_compacts(const struct pack *, uint64_t live, uint64_t fresh);
/* The catalog's index freed: only the start-up load uses it. */
void pack_forget(struct pack *);

/* The checksum of texts, catalog and header (not cryptographic). */
uint64_t pack_hash(const void *, size_t);

#endif
