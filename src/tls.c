/*
 * The TLS context: one SSL_CTX shared by every worker, so session-ticket
 * keys are common to all of them.  When no certificate is configured, a
 * self-signed ECDSA P-256 one is made on first start and kept in
 * state_dir: Gemini clients pin it (TOFU), so it must never change.
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
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
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

struct ticket_key {
	unsigned char name[16];
	unsigned char aes[32];
	unsigned char hmac[32];
};

/*
 * One pair of keys for the one SSL_CTX, so a ticket opens in any worker.
 * Rotation is lazy: the first handshake that seals a ticket after the
 * period is over makes the new key, under the write lock.
 */
static struct {
	pthread_rwlock_t lock;
	struct ticket_key cur, prev;
	int have_prev;
	time_t rotated; /* CLOCK_MONOTONIC seconds */
	time_t period;
	EVP_CIPHER *cipher; /* fetched once, not per ticket */
	OSSL_PARAM mac[2];
} tickets = {.lock = PTHREAD_RWLOCK_INITIALIZER};

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
make_cert(EVP_PKEY *pkey, const char *hostname)
{
	unsigned char serial[16];
	unsigned char ip[16];
	char san[300];
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
generate(const char *hostname, const char *certpath, const char *keypath)
{
	EVP_PKEY *pkey;
	X509 *x;

	if ((pkey = EVP_EC_gen("P-256")) == NULL)
		fatalx("cannot generate a P-256 key: %s", ssl_err());
	if ((x = make_cert(pkey, hostname)) == NULL)
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
ticket_key_current(struct ticket_key *out)
{
	time_t now = now_sec();
	int ok = 1;

	pthread_rwlock_rdlock(&tickets.lock);
	if (now - tickets.rotated < tickets.period) {
		*out = tickets.cur;
		pthread_rwlock_unlock(&tickets.lock);
		return 1;
	}
	pthread_rwlock_unlock(&tickets.lock);

	pthread_rwlock_wrlock(&tickets.lock);
	/* Another worker may have rotated meanwhile. */
	if (now - tickets.rotated >= tickets.period) {
		struct ticket_key k;

		if ((ok = ticket_key_new(&k))) {
			tickets.prev = tickets.cur;
			tickets.have_prev = 1;
			tickets.cur = k;
			tickets.rotated = now;
			OPENSSL_cleanse(&k, sizeof(k));
		}
	}
	*out = tickets.cur;
	pthread_rwlock_unlock(&tickets.lock);
	return ok;
}

/* 1: the key of that name, current or previous, found; 0: none. */
static int
ticket_key_find(const unsigned char name[16], struct ticket_key *out)
{
	int rv = 0;

	pthread_rwlock_rdlock(&tickets.lock);
	if (memcmp(name, tickets.cur.name, 16) == 0) {
		*out = tickets.cur;
		rv = 1;
	} else if (tickets.have_prev &&
	    memcmp(name, tickets.prev.name, 16) == 0) {
		*out = tickets.prev;
		rv = 1;
	}
	pthread_rwlock_unlock(&tickets.lock);
	return rv;
}

static int
ticket_cb(SSL *ssl, unsigned char name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
    EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	struct ticket_key k;
	OSSL_PARAM params[3];
	int rv;

	(void)ssl;
	if (enc) {
		if (!ticket_key_current(&k) ||
		    RAND_bytes(iv, EVP_CIPHER_get_iv_length(tickets.cipher)) !=
		        1) {
			rv = -1;
			goto done;
		}
		memcpy(name, k.name, 16);
		rv = EVP_EncryptInit_ex(cctx, tickets.cipher, NULL, k.aes, iv)
		    ? 1
		    : -1;
	} else {
		if (!ticket_key_find(name, &k))
			return 0; /* unknown or expired key: a full handshake */
		/*
		 * 2: renew.  In TLS 1.3, 1 would mean no new ticket after a
		 * resumption, and OpenSSL clients use a ticket only once.
		 */
		rv = 2;
		if (!EVP_DecryptInit_ex(cctx, tickets.cipher, NULL, k.aes, iv))
			rv = -1;
	}
	if (rv != -1) {
		params[0] = OSSL_PARAM_construct_octet_string(
		    OSSL_MAC_PARAM_KEY, k.hmac, sizeof(k.hmac));
		params[1] = tickets.mac[0];
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
tickets_setup(SSL_CTX *ctx)
{
	const char *env = getenv("SERAI_TICKET_ROTATE");
	long period = TICKET_ROTATE;

	if (env != NULL) {
		char *end;
		long v = strtol(env, &end, 10);

		if (*env != '\0' && *end == '\0' && v > 0)
			period = v;
	}
	if (tickets.cipher == NULL &&
	    (tickets.cipher = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL)) ==
	        NULL)
		fatalx("cannot fetch AES-256-CBC: %s", ssl_err());
	tickets.mac[0] = OSSL_PARAM_construct_utf8_string(
	    OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	tickets.mac[1] = OSSL_PARAM_construct_end();
	tickets.period = (time_t)period;
	if (!ticket_key_new(&tickets.cur))
		fatalx("cannot make a session ticket key: %s", ssl_err());
	tickets.have_prev = 0;
	tickets.rotated = now_sec();
	SSL_CTX_set_timeout(ctx, TICKET_LIFETIME);
	if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb) != 1)
		fatalx("cannot set the session ticket callback: %s", ssl_err());
}

SSL_CTX *
tls_setup(const struct config *c)
{
	char certbuf[PATH_MAX], keybuf[PATH_MAX];
	const char *cert = c->gemini_cert, *key = c->gemini_key;
	SSL_CTX *ctx;

	if (cert == NULL) {
		int hc, hk;

		if ((size_t)snprintf(certbuf, sizeof(certbuf), "%s/%s.crt",
		        c->state_dir, c->hostname) >= sizeof(certbuf) ||
		    (size_t)snprintf(keybuf, sizeof(keybuf), "%s/%s.key",
		        c->state_dir, c->hostname) >= sizeof(keybuf))
			fatalx("state_dir path too long");
		cert = certbuf;
		key = keybuf;
		hc = access(cert, F_OK) == 0;
		hk = access(key, F_OK) == 0;
		if (hc != hk)
			fatalx("%s exists but %s does not: restore it, or "
			       "remove both to make a new certificate (clients "
			       "that pinned the old one will then warn)",
			    hc ? cert : key, hc ? key : cert);
		if (!hc) {
			if (mkdir_p(c->state_dir) == -1)
				fatalx("%s: cannot create: %s", c->state_dir,
				    strerror(errno));
			generate(c->hostname, cert, key);
		}
	}

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL)
		fatalx("SSL_CTX_new: %s", ssl_err());
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
	tickets_setup(ctx);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	/*
	 * Read what the socket holds, not a record header and then its
	 * body: 3 reads per full handshake instead of 9, and a short read
	 * tells conn.c the socket is empty (no FIONREAD before closing).
	 */
	SSL_CTX_set_read_ahead(ctx, 1);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
		fatalx("%s: cannot load the certificate: %s", cert, ssl_err());
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		fatalx("%s: cannot load the key: %s", key, ssl_err());
	if (SSL_CTX_check_private_key(ctx) != 1)
		fatalx("%s does not match %s: %s", key, cert, ssl_err());
	return ctx;
}

int
tls_check(const struct config *c)
{
	char certbuf[PATH_MAX], keybuf[PATH_MAX];
	const char *cert = c->gemini_cert, *key = c->gemini_key;
	SSL_CTX *ctx;
	int rv = 0;

	if (cert == NULL) {
		snprintf(certbuf, sizeof(certbuf), "%s/%s.crt", c->state_dir,
		    c->hostname);
		snprintf(keybuf, sizeof(keybuf), "%s/%s.key", c->state_dir,
		    c->hostname);
		cert = certbuf;
		key = keybuf;
		if (access(cert, F_OK) == -1 && access(key, F_OK) == -1) {
			log_info("no certificate yet: one will be made in %s",
			    c->state_dir);
			return 0;
		}
	}
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL)
		return -1;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		log_warnx(
		    "%s: cannot load the certificate: %s", cert, ssl_err());
		rv = -1;
	} else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) !=
	    1) {
		log_warnx("%s: cannot load the key: %s", key, ssl_err());
		rv = -1;
	} else if (SSL_CTX_check_private_key(ctx) != 1) {
		log_warnx("%s does not match %s", key, cert);
		rv = -1;
	}
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return rv;
}
