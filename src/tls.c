/*
 * TLS: one SSL_CTX per host, shared by every worker, so session-ticket
 * keys are common to all of them.  With [host] sections the ClientHello
 * callback reads SNI and moves the connection to its host's context
 * before anything else is looked at, tickets included: each host seals
 * tickets with keys of its own, so a session never resumes across hosts.
 * When no certificate is configured, a self-signed ECDSA P-256 one is
 * made on first start and kept in state_dir: Gemini clients pin it
 * (TOFU), so it must never change.  SIGHUP loads every host's pair
 * again (tls_reload): a renewed certificate serves new connections.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "serai.h"
#include "util.h"

/* A pinned certificate must outlive the capsule: 100 years. */
#define CERT_DAYS 36500
/*
 * Session tickets: a client may resume for TICKET_LIFETIME seconds.  The
 * key that seals them is replaced every TICKET_ROTATE seconds, and the
 * one before is still accepted (its tickets renewed), so a ticket opens
 * for at least TICKET_ROTATE seconds after it was issued: that must not
 * be less than the lifetime.  A stolen key exposes at most two periods.
 */
#define TICKET_LIFETIME 7200
#define TICKET_ROTATE (4 * 3600)
#if TICKET_ROTATE < TICKET_LIFETIME
#error "a ticket must outlive its advertised lifetime"
#endif
/*
 * A certificate chain or key file: a long chain is a few KB; more is not
 * a PEM file, and is not read into memory.
 */
#define PEM_MAX_BYTES (1024 * 1024)

struct ticket_key {
	unsigned char name[16];
	unsigned char aes[32];
	unsigned char hmac[32];
};

/*
 * One pair of keys per host, so a ticket opens in any worker but only on
 * the host that issued it.  Rotation is lazy: the first handshake that
 * seals a ticket after the period is over makes the new key, under the
 * write lock.
 */
struct tickets {
	pthread_rwlock_t lock;
	struct ticket_key cur, prev;
	int have_prev;
	time_t rotated; /* CLOCK_MONOTONIC seconds */
};

struct tls_host {
	const struct host_conf *hc;
	pthread_mutex_t lock; /* ctx: tls_reload replaces it */
	SSL_CTX *ctx;
	struct tickets tk;
	char *cert, *key;
	bool generated; /* in state_dir, ours: symbolic links refused */
};

struct tls {
	const struct config *cfg;
	struct tls_host *h;
	size_t n;
};

/* Shared by every host: fetched once, not per ticket. */
static EVP_CIPHER *ticket_cipher;
static OSSL_PARAM ticket_mac[2];
static time_t ticket_period;
/* The connection's host (index + 1; 0: SNI named none of ours). */
static int host_index = -1;
/* Set on a Gopher port's TLS: its host is the port's, whatever SNI says. */
static int fixed_index = -1;
static const char *
ssl_err(void)
{
	static char buf[256];
	unsigned long e = ERR_get_error();

	if (e == 0)
		return "unknown OpenSSL error";
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return buf;
}

static int
add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value)) == NULL)
		return 0;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}

static X509 *
make_cert(EVP_PKEY *pkey, const struct host_conf *h)
{
	const char *hostname = h->name;
	unsigned char serial[16];
	unsigned char ip[16];
	char san[(HOST_ALIASES_MAX + 1) * 264];
	size_t n;
	X509 *x;
	X509_NAME *name;
	BIGNUM *bn = NULL;
	ASN1_INTEGER *sn = NULL;

	if ((x = X509_new()) == NULL)
		return NULL;
	if (RAND_bytes(serial, sizeof(serial)) != 1)
		goto fail;
	serial[0] &= 0x7f; /* positive, as RFC 5280 wants */
	if ((bn = BN_bin2bn(serial, sizeof(serial), NULL)) == NULL ||
	    (sn = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
	    !X509_set_serialNumber(x, sn))
		goto fail;
	if (!X509_set_version(x, 2) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -24 * 60 * 60) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), CERT_DAYS, 0, NULL) ||
	    !X509_set_pubkey(x, pkey))
		goto fail;
	name = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	        (const unsigned char *)hostname, -1, -1, 0) ||
	    !X509_set_issuer_name(x, name))
		goto fail;
	if (inet_pton(AF_INET, hostname, ip) == 1 ||
	    inet_pton(AF_INET6, hostname, ip) == 1)
		snprintf(san, sizeof(san), "IP:%s", hostname);
	else
		snprintf(san, sizeof(san), "DNS:%s", hostname);
	/* Aliases are DNS names (config.c): one SAN entry each. */
	for (size_t i = 0; i < h->naliases; i++) {
		n = strlen(san);
		snprintf(san + n, sizeof(san) - n, ",DNS:%s", h->aliases[i]);
	}
	if (!add_ext(x, NID_subject_alt_name, san) ||
	    !add_ext(x, NID_basic_constraints, "critical,CA:FALSE") ||
	    !add_ext(x, NID_key_usage, "critical,digitalSignature") ||
	    !add_ext(x, NID_ext_key_usage, "serverAuth"))
		goto fail;
	if (X509_sign(x, pkey, EVP_sha256()) == 0)
		goto fail;
	BN_free(bn);
	ASN1_INTEGER_free(sn);
	return x;
fail:
	BN_free(bn);
	ASN1_INTEGER_free(sn);
	X509_free(x);
	return NULL;
}

/* Written beside, fsynced, then renamed: never a half-written PEM. */
static int
write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *cert)
{
	char tmp[PATH_MAX];
	FILE *fp;
	int fd, ok;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return -1;
	unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)) ==
	    -1)
		return -1;
	if ((fp = fdopen(fd, "w")) == NULL) {
		close(fd);
		unlink(tmp);
		return -1;
	}
	ok = key ? PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL)
	         : PEM_write_X509(fp, cert);
	if (!ok || fflush(fp) != 0 || fsync(fileno(fp)) == -1) {
		fclose(fp);
		unlink(tmp);
		return -1;
	}
	if (fclose(fp) != 0 || rename(tmp, path) == -1) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

static void
generate(const struct host_conf *h, const char *certpath, const char *keypath)
{
	const char *hostname = h->name;
	EVP_PKEY *pkey;
	X509 *x;

	if ((pkey = EVP_EC_gen("P-256")) == NULL)
		fatalx("cannot generate a P-256 key: %s", ssl_err());
	if ((x = make_cert(pkey, h)) == NULL)
		fatalx("cannot make a certificate: %s", ssl_err());
	if (write_pem(keypath, 0600, pkey, NULL) == -1)
		fatalx("%s: cannot write: %s", keypath, strerror(errno));
	if (write_pem(certpath, 0644, NULL, x) == -1)
		fatalx("%s: cannot write: %s", certpath, strerror(errno));
	log_info("generated a self-signed certificate for %s in %s", hostname,
	    certpath);
	X509_free(x);
	EVP_PKEY_free(pkey);
}

static time_t
now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static int
ticket_key_new(struct ticket_key *k)
{
	return RAND_bytes(k->name, sizeof(k->name)) == 1 &&
	    RAND_priv_bytes(k->aes, sizeof(k->aes)) == 1 &&
	    RAND_priv_bytes(k->hmac, sizeof(k->hmac)) == 1;
}

/* The current key, made anew once its period is over; 0 on failure. */
static int
ticket_key_current(struct tickets *t, struct ticket_key *out)
{
	time_t now = now_sec();
	int ok = 1;

	pthread_rwlock_rdlock(&t->lock);
	if (now - t->rotated < ticket_period) {
		*out = t->cur;
		pthread_rwlock_unlock(&t->lock);
		return 1;
	}
	pthread_rwlock_unlock(&t->lock);

	pthread_rwlock_wrlock(&t->lock);
	/* Another worker may have rotated meanwhile. */
	if (now - t->rotated >= ticket_period) {
		struct ticket_key k;

		if ((ok = ticket_key_new(&k))) {
			t->prev = t->cur;
			t->have_prev = 1;
			t->cur = k;
			t->rotated = now;
			OPENSSL_cleanse(&k, sizeof(k));
		}
	}
	*out = t->cur;
	pthread_rwlock_unlock(&t->lock);
	return ok;
}

/* 1: the key of that name, current or previous, found; 0: none. */
static int
ticket_key_find(
    struct tickets *t, const unsigned char name[16], struct ticket_key *out)
{
	int rv = 0;

	pthread_rwlock_rdlock(&t->lock);
	if (memcmp(name, t->cur.name, 16) == 0) {
		*out = t->cur;
		rv = 1;
	} else if (t->have_prev && memcmp(name, t->prev.name, 16) == 0) {
		*out = t->prev;
		rv = 1;
	}
	pthread_rwlock_unlock(&t->lock);
	return rv;
}

/*
 * OpenSSL calls the first context's callback whatever context the
 * connection moved to (tickets belong to the session context), so the
 * host comes from the connection: the ClientHello callback, which runs
 * before any ticket is opened, has recorded it.
 */
static int
ticket_cb(SSL *ssl, unsigned char name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
    EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	struct tls *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	long host = tls_ssl_host(ssl);
	struct tickets *tk;
	struct ticket_key k;
	OSSL_PARAM params[3];
	int rv;

	/* SNI named no host: no ticket, and none opened. */
	if (t == NULL || host < 0 || (size_t)host >= t->n)
		return 0;
	tk = &t->h[host].tk;
	if (enc) {
		if (!ticket_key_current(tk, &k) ||
		    RAND_bytes(iv, EVP_CIPHER_get_iv_length(ticket_cipher)) !=
		        1) {
			rv = -1;
			goto done;
		}
		memcpy(name, k.name, 16);
		rv = EVP_EncryptInit_ex(cctx, ticket_cipher, NULL, k.aes, iv)
		    ? 1
		    : -1;
	} else {
		if (!ticket_key_find(tk, name, &k))
			return 0; /* unknown or expired key: a full handshake */
		/*
		 * 2: renew.  In TLS 1.3, 1 would mean no new ticket after a
		 * resumption, and OpenSSL clients use a ticket only once.
		 */
		rv = 2;
		if (!EVP_DecryptInit_ex(cctx, ticket_cipher, NULL, k.aes, iv))
			rv = -1;
	}
	if (rv != -1) {
		params[0] = OSSL_PARAM_construct_octet_string(
		    OSSL_MAC_PARAM_KEY, k.hmac, sizeof(k.hmac));
		params[1] = ticket_mac[0];
		params[2] = OSSL_PARAM_construct_end();
		if (!EVP_MAC_CTX_set_params(hctx, params))
			rv = -1;
	}
done:
	OPENSSL_cleanse(&k, sizeof(k));
	return rv;
}

/*
 * The rotation period can be shortened for the tests, which cannot wait
 * hours: SERAI_TICKET_ROTATE, in seconds.
 */
static void
tickets_init(void)
{
	const char *env = getenv("SERAI_TICKET_ROTATE");
	long period = TICKET_ROTATE;

	if (env != NULL) {
		char *end;
		long v = strtol(env, &end, 10);

		if (*env != '\0' && *end == '\0' && v > 0)
			period = v;
	}
	if (ticket_cipher == NULL &&
	    (ticket_cipher = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL)) ==
	        NULL)
		fatalx("cannot fetch AES-256-CBC: %s", ssl_err());
	ticket_mac[0] = OSSL_PARAM_construct_utf8_string(
	    OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	ticket_mac[1] = OSSL_PARAM_construct_end();
	ticket_period = (time_t)period;
	if (host_index == -1 &&
	    (host_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL)) ==
	        -1)
		fatalx("SSL_get_ex_new_index: %s", ssl_err());
	if (fixed_index == -1 &&
	    (fixed_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL)) ==
	        -1)
		fatalx("SSL_get_ex_new_index: %s", ssl_err());
}

static void
tickets_host(struct tickets *tk)
{
	pthread_rwlock_init(&tk->lock, NULL);
	if (!ticket_key_new(&tk->cur))
		fatalx("cannot make a session ticket key: %s", ssl_err());
	tk->have_prev = 0;
	tk->rotated = now_sec();
}

/*
 * A PEM file read whole into memory, so that OpenSSL never opens a path:
 * non-blocking (a FIFO would hang the start or a reload), a regular file
 * only, bounded in size; nofollow refuses a symbolic link where one
 * has no business (state_dir, which the serving user can write; a
 * configured path is the administrator's, and certbot's are links).
 * NULL with *why set.
 */
static BIO *
pem_open(const char *path, bool nofollow, const char **why)
{
	struct stat st;
	char *data;
	size_t got = 0;
	ssize_t n;
	BIO *bio;
	int fd;

	if ((fd = open(path,
	         O_RDONLY | O_CLOEXEC | O_NONBLOCK |
	             (nofollow ? O_NOFOLLOW : 0))) == -1) {
		*why = errno == ELOOP ? "a symbolic link (refused in state_dir)"
		                      : strerror(errno);
		return NULL;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size > PEM_MAX_BYTES) {
		*why = !S_ISREG(st.st_mode) ? "not a regular file"
		                            : "larger than a PEM file can be";
		close(fd);
		return NULL;
	}
	if ((data = malloc((size_t)st.st_size + 1)) == NULL) {
		*why = "out of memory";
		close(fd);
		return NULL;
	}
	while (got < (size_t)st.st_size &&
	    (n = read(fd, data + got, (size_t)st.st_size - got)) > 0)
		got += (size_t)n;
	close(fd);
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    BIO_write(bio, data, (int)got) != (int)got) {
		BIO_free(bio);
		bio = NULL;
		*why = "out of memory";
	}
	OPENSSL_cleanse(data, got);
	free(data);
	return bio;
}

/* The certificate, then the chain after it, as the file lists them. */
static int
load_pair(SSL_CTX *ctx, const char *cert, const char *key, bool nofollow,
    char *why, size_t whysize)
{
	const char *e = NULL;
	EVP_PKEY *pkey = NULL;
	X509 *x = NULL;
	BIO *bio;
	int rv = -1;

	if ((bio = pem_open(cert, nofollow, &e)) == NULL) {
		snprintf(why, whysize, "%s: %s", cert, e);
		return -1;
	}
	if ((x = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL)) == NULL ||
	    SSL_CTX_use_certificate(ctx, x) != 1) {
		snprintf(why, whysize, "%s: cannot load the certificate: %s",
		    cert, ssl_err());
		goto done;
	}
	SSL_CTX_clear_chain_certs(ctx);
	for (;;) {
		X509 *ca = PEM_read_bio_X509(bio, NULL, NULL, NULL);

		if (ca == NULL)
			break;
		if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
			X509_free(ca);
			snprintf(why, whysize, "%s: cannot add the chain: %s",
			    cert, ssl_err());
			goto done;
		}
	}
	ERR_clear_error(); /* the end of the file, read as "no start line" */
	BIO_free(bio);
	if ((bio = pem_open(key, nofollow, &e)) == NULL) {
		snprintf(why, whysize, "%s: %s", key, e);
		goto done;
	}
	if ((pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) == NULL ||
	    SSL_CTX_use_PrivateKey(ctx, pkey) != 1) {
		snprintf(why, whysize, "%s: cannot load the key: %s", key,
		    ssl_err());
		goto done;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(why, whysize, "%s does not match %s: %s", key, cert,
		    ssl_err());
		goto done;
	}
	rv = 0;
done:
	BIO_free(bio);
	X509_free(x);
	EVP_PKEY_free(pkey);
	ERR_clear_error();
	return rv;
}

/*
 * The host a ClientHello's server_name (RFC 6066) names: index into
 * t->h, or -1 for a name we do not serve.  No extension: the default.
 */
static long
sni_host(const struct tls *t, SSL *ssl)
{
	const struct host_conf *h;
	const unsigned char *p;
	char name[256];
	size_t len, n;

	if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len))
		return 0;
	/* list length (2), type (1) = host_name, name length (2), name */
	if (len < 5 || (size_t)(p[0] << 8 | p[1]) != len - 2 ||
	    p[2] != TLSEXT_NAMETYPE_host_name)
		return -1;
	n = (size_t)(p[3] << 8 | p[4]);
	if (n == 0 || n > len - 5 || n >= sizeof(name) ||
	    memchr(p + 5, '\0', n) != NULL)
		return -1;
	memcpy(name, p + 5, n);
	name[n] = '\0';
	/* A trailing dot names the same host (RFC 6066 forbids it, yet). */
	if (name[n - 1] == '.')
		name[n - 1] = '\0';
	if ((h = config_host_find(t->cfg, name)) == NULL)
		return -1;
	return (long)(h - t->cfg->hosts);
}

/*
 * Before the server looks at anything else in the ClientHello (the
 * ticket, the cipher, the certificate): the connection moves to its
 * host's context, or is marked as naming no host of ours (it completes
 * with the default's certificate, to be told 53, and gets no ticket).
 */
static int
client_hello_cb(SSL *ssl, int *alert, void *arg)
{
	struct tls *t = arg;
	long host;
	SSL_CTX *ctx;

	if (SSL_get_ex_data(ssl, fixed_index) != NULL)
		return SSL_CLIENT_HELLO_SUCCESS;
	host = sni_host(t, ssl);

	(void)alert;
	SSL_set_ex_data(ssl, host_index, (void *)(intptr_t)(host + 1));
	if (host > 0) {
		pthread_mutex_lock(&t->h[host].lock);
		ctx = t->h[host].ctx;
		/* It takes a reference: a reload may free ours. */
		SSL_set_SSL_CTX(ssl, ctx);
		pthread_mutex_unlock(&t->h[host].lock);
	}
	return SSL_CLIENT_HELLO_SUCCESS;
}

long
tls_ssl_host(SSL *ssl)
{
	return (long)(intptr_t)SSL_get_ex_data(ssl, host_index) - 1;
}

static SSL_CTX *
ctx_new(struct tls *t, struct tls_host *h, char *why, size_t whysize)
{
	unsigned char sid[SHA256_DIGEST_LENGTH];
	SSL_CTX *ctx;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		snprintf(why, whysize, "SSL_CTX_new: %s", ssl_err());
		return NULL;
	}
	SSL_CTX_set_app_data(ctx, t);
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx,
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
	        SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (!SSL_CTX_set1_groups_list(ctx, "X25519:P-256:X448:P-384"))
		fatalx("cannot set TLS groups: %s", ssl_err());
	/*
	 * AES-128-GCM first: OpenSSL would pick AES-256-GCM with SHA-384,
	 * and the TLS 1.3 key schedule (a dozen HMACs over the transcript)
	 * costs far more in SHA-512 blocks than in SHA-256 ones.  Both are
	 * as strong as the P-256 key behind them.
	 */
	if (!SSL_CTX_set_ciphersuites(ctx,
	        "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
	        "TLS_CHACHA20_POLY1305_SHA256") ||
	    !SSL_CTX_set_cipher_list(ctx,
	        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
	        "ECDHE-ECDSA-CHACHA20-POLY1305:DEFAULT"))
		fatalx("cannot set TLS ciphers: %s", ssl_err());
	/*
	 * One ticket per connection is enough for a client to resume, and
	 * each extra ticket costs an encryption on every handshake.
	 */
	SSL_CTX_set_num_tickets(ctx, 1);
	/*
	 * Stateless tickets resume without a cache shared across workers.
	 * OpenSSL's stateful cache on this one SSL_CTX (SSL_SESS_CACHE_SERVER
	 * and SSL_OP_NO_TICKET: one TLS 1.3 ticket carrying only the session
	 * id) was measured against them on 2026-11-29: 4 % fewer instructions
	 * per full handshake and 7 % per resumed one under callgrind, yet it
	 * served 6 % and 9 % fewer requests per CPU-second (medians of 31
	 * interleaved pairs of runs on a shared machine), and it holds memory
	 * per client that a flood of new clients churns.  So no cache.
	 */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_timeout(ctx, TICKET_LIFETIME);
	if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb) != 1)
		fatalx("cannot set the session ticket callback: %s", ssl_err());
	/*
	 * A session remembers its host's context id, and OpenSSL resumes it
	 * only under the same one: a second lock on the door the ticket
	 * keys already close.
	 */
	SHA256((const unsigned char *)h->hc->name, strlen(h->hc->name), sid);
	if (SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid)) != 1)
		fatalx("cannot set the session id context: %s", ssl_err());
	if (t->cfg->vhosts)
		SSL_CTX_set_client_hello_cb(ctx, client_hello_cb, t);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	/*
	 * Read what the socket holds, not a record header and then its
	 * body: 3 reads per full handshake instead of 9, and a short read
	 * tells conn.c the socket is empty (no FIONREAD before closing).
	 */
	SSL_CTX_set_read_ahead(ctx, 1);
	if (load_pair(ctx, h->cert, h->key, h->generated, why, whysize) == -1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* The host's pair: configured, or generated in state_dir on first start. */
static void
host_paths(const struct config *c, struct tls_host *h, bool make)
{
	char buf[PATH_MAX];
	const struct host_conf *hc = h->hc;

	if (hc->cert != NULL) {
		if ((h->cert = strdup(hc->cert)) == NULL ||
		    (h->key = strdup(hc->key)) == NULL)
			fatalx("out of memory");
		return;
	}
	h->generated = true;
	if ((size_t)snprintf(buf, sizeof(buf), "%s/%s.crt", c->state_dir,
	        hc->name) >= sizeof(buf) ||
	    (h->cert = strdup(buf)) == NULL ||
	    (size_t)snprintf(buf, sizeof(buf), "%s/%s.key", c->state_dir,
	        hc->name) >= sizeof(buf) ||
	    (h->key = strdup(buf)) == NULL)
		fatalx("state_dir path too long");
	if (!make)
		return;
	{
		int hc_ = access(h->cert, F_OK) == 0;
		int hk = access(h->key, F_OK) == 0;

		if (hc_ != hk)
			fatalx("%s exists but %s does not: restore it, or "
			       "remove both to make a new certificate (clients "
			       "that pinned the old one will then warn)",
			    hc_ ? h->cert : h->key, hc_ ? h->key : h->cert);
		if (!hc_) {
			if (mkdir_p(c->state_dir) == -1)
				fatalx("%s: cannot create: %s", c->state_dir,
				    strerror(errno));
			generate(hc, h->cert, h->key);
		}
	}
}

struct tls *
tls_setup(const struct config *c)
{
	char why[PATH_MAX + 256];
	struct tls *t;

	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (t->h = calloc(c->nhosts, sizeof(*t->h))) == NULL)
		fatalx("out of memory");
	t->cfg = c;
	t->n = c->nhosts;
	tickets_init();
	for (size_t i = 0; i < t->n; i++) {
		struct tls_host *h = &t->h[i];

		h->hc = &c->hosts[i];
		pthread_mutex_init(&h->lock, NULL);
		tickets_host(&h->tk);
		host_paths(c, h, true);
		if ((h->ctx = ctx_new(t, h, why, sizeof(why))) == NULL)
			fatalx("%s", why);
	}
	return t;
}

SSL *
tls_ssl_new(struct tls *t)
{
	SSL *ssl;

	/* Every connection starts on the default host's context. */
	pthread_mutex_lock(&t->h[0].lock);
	ssl = SSL_new(t->h[0].ctx);
	pthread_mutex_unlock(&t->h[0].lock);
	if (ssl != NULL)
		SSL_set_ex_data(ssl, host_index, (void *)(intptr_t)1);
	return ssl;
}

SSL *
tls_ssl_new_host(struct tls *t, size_t host)
{
	SSL *ssl;

	pthread_mutex_lock(&t->h[host].lock);
	ssl = SSL_new(t->h[host].ctx);
	pthread_mutex_unlock(&t->h[host].lock);
	if (ssl != NULL)
		SSL_set_ex_data(ssl, fixed_index, (void *)(intptr_t)1);
	return ssl;
}

/*
 * The path a file will have inside dir once serai is chrooted there, or
 * NULL if it lies outside.  Only the directory is resolved: the file's
 * own name may be a link an ACME client moves at each renewal.
 */
static char *
chroot_path(const char *path, const char *dir)
{
	char d[PATH_MAX], real[PATH_MAX], out[PATH_MAX];
	const char *base = strrchr(path, '/');
	size_t n = strlen(dir);

	if (base == NULL)
		strlcpy_s(d, ".", sizeof(d));
	else if ((size_t)(base - path) >= sizeof(d))
		return NULL;
	else {
		memcpy(d, path, (size_t)(base - path));
		d[base - path] = '\0';
		if (d[0] == '\0')
			strlcpy_s(d, "/", sizeof(d));
	}
	base = base != NULL ? base + 1 : path;
	if (realpath(d, real) == NULL)
		return NULL;
	if (strcmp(dir, "/") == 0)
		n = 0;
	else if (strncmp(real, dir, n) != 0 ||
	    (real[n] != '/' && real[n] != '\0'))
		return NULL;
	if ((size_t)snprintf(out, sizeof(out), "%s/%s",
	        real[n] != '\0' ? real + n : "", base) >= sizeof(out))
		return NULL;
	return strdup(out);
}

void
tls_chroot(struct tls *t, const char *dir)
{
	for (size_t i = 0; i < t->n; i++) {
		struct tls_host *h = &t->h[i];
		char **paths[] = {&h->cert, &h->key};

		for (size_t j = 0; j < sizeof(paths) / sizeof(paths[0]); j++) {
			char *p = chroot_path(*paths[j], dir);

			if (p == NULL) {
				log_warnx("[host %s]: %s is outside [server] "
				          "chroot %s: SIGHUP cannot load it "
				          "again, a renewal needs a restart",
				    h->hc->name, *paths[j], dir);
				continue;
			}
			free(*paths[j]);
			*paths[j] = p;
		}
	}
}

void
tls_check_access(const struct tls *t, const char *user)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct tls_host *h = &t->h[i];
		const char *paths[] = {h->cert, h->key};

		for (size_t j = 0; j < sizeof(paths) / sizeof(paths[0]); j++)
			if (access(paths[j], R_OK) == -1)
				log_warn("[host %s]: %s: not readable as %s: "
				         "SIGHUP cannot load a renewed pair, "
				         "a restart will",
				    h->hc->name, paths[j], user);
	}
}

void
tls_reload(struct tls *t)
{
	char why[PATH_MAX + 256];
	size_t loaded = 0;

	for (size_t i = 0; i < t->n; i++) {
		struct tls_host *h = &t->h[i];
		SSL_CTX *ctx, *old;

		if ((ctx = ctx_new(t, h, why, sizeof(why))) == NULL) {
			log_warnx("reload: [host %s] certificate: %s; still "
			          "serving the old one",
			    h->hc->name, why);
			continue;
		}
		pthread_mutex_lock(&h->lock);
		old = h->ctx;
		h->ctx = ctx;
		pthread_mutex_unlock(&h->lock);
		/* Connections on the old one hold references of their own. */
		SSL_CTX_free(old);
		loaded++;
	}
	log_info("reload: certificates loaded: %zu of %zu%s", loaded, t->n,
	    loaded < t->n ? " (the others kept: see above)" : "");
}

void
tls_free(struct tls *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n; i++) {
		struct tls_host *h = &t->h[i];

		SSL_CTX_free(h->ctx);
		pthread_mutex_destroy(&h->lock);
		pthread_rwlock_destroy(&h->tk.lock);
		OPENSSL_cleanse(&h->tk, sizeof(h->tk));
		free(h->cert);
		free(h->key);
	}
	free(t->h);
	free(t);
	EVP_CIPHER_free(ticket_cipher);
	ticket_cipher = NULL;
}

int
tls_check(const struct config *c)
{
	char why[PATH_MAX + 256];
	struct tls t;
	int rv = 0;

	memset(&t, 0, sizeof(t));
	t.cfg = c;
	tickets_init();
	for (size_t i = 0; i < c->nhosts; i++) {
		struct tls_host h;
		SSL_CTX *ctx;

		memset(&h, 0, sizeof(h));
		h.hc = &c->hosts[i];
		host_paths(c, &h, false);
		if (h.generated && access(h.cert, F_OK) == -1 &&
		    access(h.key, F_OK) == -1)
			log_info("[host %s]: no certificate yet: one will be "
			         "made in %s",
			    h.hc->name, c->state_dir);
		else if ((ctx = ctx_new(&t, &h, why, sizeof(why))) == NULL) {
			log_warnx("%s", why);
			rv = -1;
		} else
			SSL_CTX_free(ctx);
		free(h.cert);
		free(h.key);
	}
	EVP_CIPHER_free(ticket_cipher);
	ticket_cipher = NULL;
	return rv;
}
