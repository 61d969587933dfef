/*
 * Configuration: inih (through inifile.c, for line numbers) into one
 * struct config.  No libevent and no OpenSSL here.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "archive.h"
#include "article.h"
#include "inifile.h"
#include "log.h"
#include "serai.h"
#include "util.h"

enum ktype {
	K_STR,
	K_PATH,
	K_HOST,
	K_LANG,
	K_UINT,
	K_BOOL,
	K_LISTEN,
	K_ERRLOG,
	K_NAME,
	K_ALIASES
};

struct key {
	const char *section;
	const char *name;
	enum ktype type;
	size_t off;
	unsigned min, max;
};

#define F(m) offsetof(struct config, m)

static const struct key keys[] = {
    {"server", "hostname", K_HOST, F(hostname), 0, 0},
    {"server", "state_dir", K_PATH, F(state_dir), 0, 0},
    {"server", "workers", K_UINT, F(workers), 0, MAX_WORKERS},
    {"server", "user", K_NAME, F(user), 0, 0},
    {"server", "group", K_NAME, F(group), 0, 0},
    {"server", "chroot", K_PATH, F(chroot), 0, 0},
    {"server", "access_log", K_PATH, F(access_log), 0, 0},
    {"server", "error_log", K_ERRLOG, F(error_log), 0, 0},
    {"server", "sandbox", K_BOOL, F(sandbox), 0, 0},
    {"archive", "root", K_PATH, F(archive_root), 0, 0},
    {"archive", "title", K_STR, F(archive_title), 0, 0},
    {"archive", "lang", K_LANG, F(archive_lang), 0, 0},
    {"archive", "watch", K_BOOL, F(archive_watch), 0, 0},
    {"archive", "quick_start", K_BOOL, F(archive_quick_start), 0, 0},
    {"gemini", "listen", K_LISTEN, F(gemini_listen), 0, 0},
    {"gemini", "cert", K_PATH, F(gemini_cert), 0, 0},
    {"gemini", "key", K_PATH, F(gemini_key), 0, 0},
    {"gemini", "public_port", K_UINT, F(gemini_public_port), 1, 65535},
    {"gemini", "proxy_protocol", K_BOOL, F(gemini_proxy), 0, 0},
    {"gopher", "listen", K_LISTEN, F(gopher_listen), 0, 0},
    {"gopher", "public_port", K_UINT, F(gopher_public_port), 1, 65535},
    {"gopher", "proxy_protocol", K_BOOL, F(gopher_proxy), 0, 0},
    {"gopher", "wrap", K_UINT, F(gopher_wrap), 20, 1000},
    {"gopher", "menu_width", K_UINT, F(gopher_menu_width), 20, 1000},
    {"limits", "request_timeout", K_UINT, F(request_timeout), 1, 3600},
    {"limits", "write_timeout", K_UINT, F(write_timeout), 1, 3600},
    {"limits", "max_connections", K_UINT, F(max_connections), 1, 1000000},
    {"limits", "max_per_client", K_UINT, F(max_per_client), 1, 1000000},
    {"limits", "rate", K_UINT, F(rate), 0, 1000000},
    {"limits", "burst", K_UINT, F(burst), 1, 1000000},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))
_Static_assert(NKEYS <= CONFIG_MAX_KEYS, "raise CONFIG_MAX_KEYS");

#define H(m) offsetof(struct host_conf, m)

/* A [host NAME] section's keys; section is only for messages. */
static const struct key host_keys[] = {
    {"host", "root", K_PATH, H(root), 0, 0},
    {"host", "title", K_STR, H(title), 0, 0},
    {"host", "lang", K_LANG, H(lang), 0, 0},
    {"host", "aliases", K_ALIASES, 0, 0, 0},
    {"host", "cert", K_PATH, H(cert), 0, 0},
    {"host", "key", K_PATH, H(key), 0, 0},
    {"host", "gopher", K_LISTEN, H(gopher), 0, 0},
    {"host", "gopher_public_port", K_UINT, H(gopher_public_port), 1, 65535},
    {"host", "watch", K_BOOL, H(watch), 0, 0},
};

#define HK_ALIASES 3 /* its index above */
#define NHKEYS (sizeof(host_keys) / sizeof(host_keys[0]))
_Static_assert(NHKEYS <= sizeof(((struct host_conf *)0)->keyline) / sizeof(int),
    "raise host_conf.keyline");

#define HOST_PREFIX "host "

static const char *const sections[] = {
    "server", "archive", "gemini", "gopher", "limits", HOST_PREFIX "*", NULL};

/*
 * Keys that describe the one archive of the single-archive form: with
 * [host] sections each host says these for itself.
 */
static const struct {
	const char *section, *key, *instead;
} single_only[] = {
    {"server", "hostname", "the [host NAME] header"},
    {"archive", "root", "root in each [host]"},
    {"archive", "title", "title in each [host]"},
    {"archive", "lang", "lang in each [host]"},
    {"archive", "watch", "watch in each [host]"},
    {"gemini", "cert", "cert in each [host]"},
    {"gemini", "key", "key in each [host]"},
    {"gopher", "listen", "gopher in each [host] that wants Gopher"},
    {"gopher", "public_port", "gopher_public_port in each [host]"},
};

struct loadctx {
	struct config *cfg;
	int seen[NKEYS]; /* line a key was set on, to refuse duplicates */
	long cur;        /* the [host] whose keys these are; -1: a bad one */
};

void
config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->gopher_wrap = DEFAULT_GOPHER_WRAP;
	c->gopher_menu_width = DEFAULT_MENU_WIDTH;
	c->request_timeout = DEFAULT_REQUEST_TIMEOUT;
	c->write_timeout = DEFAULT_WRITE_TIMEOUT;
	c->max_connections = DEFAULT_MAX_CONNECTIONS;
	c->max_per_client = DEFAULT_MAX_PER_CLIENT;
	c->sandbox = true;
	c->archive_quick_start = true;
	c->rate = DEFAULT_RATE;
	c->burst = DEFAULT_BURST;
}

static void
listen_free(struct listen_list *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static void
host_free(struct host_conf *h)
{
	for (size_t i = 0; i < NHKEYS; i++) {
		void *p = (char *)h + host_keys[i].off;

		if (host_keys[i].type == K_LISTEN)
			listen_free(p);
		else if (host_keys[i].type == K_PATH ||
		    host_keys[i].type == K_STR || host_keys[i].type == K_LANG) {
			free(*(char **)p);
			*(char **)p = NULL;
		}
	}
	for (size_t i = 0; i < h->naliases; i++)
		free(h->aliases[i]);
	free(h->name);
	free(h->state);
}

void
config_free(struct config *c)
{
	for (size_t i = 0; i < c->nhosts; i++)
		host_free(&c->hosts[i]);
	free(c->hosts);
	c->hosts = NULL;
	c->nhosts = 0;
	for (size_t i = 0; i < NKEYS; i++) {
		void *p = (char *)c + keys[i].off;

		if (keys[i].type == K_LISTEN)
			listen_free(p);
		else if (keys[i].type != K_UINT && keys[i].type != K_BOOL) {
			free(*(char **)p);
			*(char **)p = NULL;
		}
	}
	free(c->file);
	c->file = NULL;
}

static int
parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* The spellings INI files use for a switch, in any case. */
static int
parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

/* A name clients can type and Gopher menus can carry (no TAB, no space). */
static int
host_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 253)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		        c == ':'))
			return 0;
	}
	return 1;
}

/*
 * A host's name or alias: a DNS name, as SNI carries it (RFC 6066: no IP
 * address), and safe as a file name in state_dir (no "..", no '/').
 * Lower-cased in place.
 */
static int
dns_name_valid(char *s)
{
	size_t n = strlen(s), label = 0;

	if (n == 0 || n > 253)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c >= 'A' && c <= 'Z')
			s[i] = c = (char)(c - 'A' + 'a');
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    (c == '-' && label > 0)) {
			if (++label > 63)
				return 0;
		} else
			return 0;
	}
	return label > 0 && s[n - 1] != '-';
}

/* The host holding name as its name or an alias; *line: where it says so. */
static const struct host_conf *
name_owner(const struct config *c, const char *name, int *line)
{
	for (size_t i = 0; i < c->nhosts; i++) {
		const struct host_conf *h = &c->hosts[i];

		if (strcasecmp(h->name, name) == 0) {
			*line = h->line;
			return h;
		}
		for (size_t k = 0; k < h->naliases; k++)
			if (strcasecmp(h->aliases[k], name) == 0) {
				*line = h->keyline[HK_ALIASES];
				return h;
			}
	}
	return NULL;
}

const struct host_conf *
config_host_find(const struct config *c, const char *name)
{
	int line;

	return name_owner(c, name, &line);
}

static int
listen_add(struct listen_list *l, const struct sockaddr *sa, socklen_t len,
    bool wildcard6, const char *item)
{
	struct listen_addr *nv, *a;
	char host[INET6_ADDRSTRLEN];
	unsigned port;

	/* A duplicate is kept, for config_finish to name. */
	if ((nv = reallocarray(l->v, l->n + 1, sizeof(*nv))) == NULL)
		return -1;
	l->v = nv;
	a = &l->v[l->n++];
	memset(a, 0, sizeof(*a));
	memcpy(&a->ss, sa, len);
	a->len = len;
	a->wildcard6 = wildcard6;
	snprintf(a->item, sizeof(a->item), "%s", item);
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		port = ntohs(s6->sin6_port);
		snprintf(a->text, sizeof(a->text), "[%s]:%u", host, port);
	} else {
		const struct sockaddr_in *s4 = (const void *)sa;
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		port = ntohs(s4->sin_port);
		snprintf(a->text, sizeof(a->text), "%s:%u", host, port);
	}
	if (l->n == 1)
		l->port = port;
	return 0;
}

static int
listen_one(const char *item, struct listen_list *l, const char **why)
{
	struct addrinfo hints, *res, *ai;
	char host[256];
	const char *colon, *h = item, *port;
	size_t hlen;
	unsigned pn;
	int rv;

	if (item[0] == '[') {
		const char *close = strchr(item, ']');

		if (close == NULL || close[1] != ':') {
			*why = "IPv6 addresses are written [addr]:port";
			return -1;
		}
		h = item + 1;
		hlen = (size_t)(close - h);
		port = close + 2;
	} else {
		if ((colon = strrchr(item, ':')) == NULL) {
			*why = "want host:port (IPv6 as [addr]:port, all "
			       "addresses as *:port)";
			return -1;
		}
		if (memchr(item, ':', (size_t)(colon - item)) != NULL) {
			*why = "IPv6 addresses are written [addr]:port";
			return -1;
		}
		hlen = (size_t)(colon - item);
		port = colon + 1;
	}
	if (parse_uint(port, 1, 65535, &pn) == -1) {
		*why = "port must be a number from 1 to 65535";
		return -1;
	}
	if (hlen == 0 || hlen >= sizeof(host)) {
		*why = "missing or overlong host";
		return -1;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	/*
	 * Addresses only (and "localhost", "*"): binding to whatever a DNS
	 * name resolves to at start-up is fragile, and a check (-n) should
	 * never wait on a resolver.
	 */
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV | AI_NUMERICHOST;
	if (strcmp(host, "*") == 0 || strcmp(host, "localhost") == 0) {
		/* IPv6 (v6-only) and IPv4 sockets side by side. */
		int any = host[0] == '*';
		struct sockaddr_in6 s6;
		struct sockaddr_in s4;

		memset(&s6, 0, sizeof(s6));
		s6.sin6_family = AF_INET6;
		s6.sin6_addr = any ? in6addr_any : in6addr_loopback;
		s6.sin6_port = htons((unsigned short)pn);
		memset(&s4, 0, sizeof(s4));
		s4.sin_family = AF_INET;
		s4.sin_addr.s_addr = htonl(any ? INADDR_ANY : INADDR_LOOPBACK);
		s4.sin_port = htons((unsigned short)pn);
		if (listen_add(
		        l, (struct sockaddr *)&s4, sizeof(s4), false, item) ||
		    listen_add(
		        l, (struct sockaddr *)&s6, sizeof(s6), true, item)) {
			*why = "out of memory";
			return -1;
		}
		return 0;
	}
	if ((rv = getaddrinfo(host, port, &hints, &res)) != 0) {
		*why = rv == EAI_NONAME
		    ? "not an IP address (only *, localhost "
		      "and addresses are taken)"
		    : gai_strerror(rv);
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		if (listen_add(l, ai->ai_addr, ai->ai_addrlen, false, item) ==
		    -1) {
			freeaddrinfo(res);
			*why = "out of memory";
			return -1;
		}
	}
	freeaddrinfo(res);
	return 0;
}

/*
 * The next item of a comma-separated list at *p, blanks around it
 * dropped, into item; *p then points past its comma, or is NULL after
 * the last.  Every comma opens another item: "a," has an empty one.
 * 0, or -1 when the item is empty or does not fit.
 */
static int
list_item(const char **p, char *item, size_t size)
{
	const char *s = *p, *comma = strchr(s, ',');
	size_t n = comma ? (size_t)(comma - s) : strlen(s);

	while (n > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	*p = comma ? comma + 1 : NULL;
	if (n == 0 || n >= size)
		return -1;
	memcpy(item, s, n);
	item[n] = '\0';
	return 0;
}

int
config_parse_listen(const char *value, struct listen_list *l, const char **why)
{
	char item[300];
	const char *p = value;

	listen_free(l);
	while (p != NULL) {
		if (list_item(&p, item, sizeof(item)) == -1) {
			*why = "empty or overlong address in the list";
			listen_free(l);
			return -1;
		}
		if (listen_one(item, l, why) == -1) {
			listen_free(l);
			return -1;
		}
	}
	if (l->n == 0) {
		*why = "no address";
		return -1;
	}
	return 0;
}

/*
 * aliases = a, b: each a DNS name no other host (nor this one) claims;
 * a clash names both lines.
 */
static int
set_aliases(struct inifile *f, struct loadctx *lc, struct host_conf *h,
    const char *section, const char *value)
{
	char item[256];
	const char *p = value;
	const struct host_conf *o;
	int line;

	while (p != NULL) {
		if (list_item(&p, item, sizeof(item)) == -1) {
			inifile_error(f,
			    "[%s] aliases: '%s': empty or overlong "
			    "name in the list",
			    section, value);
			return -1;
		}
		if (!dns_name_valid(item)) {
			inifile_error(f,
			    "[%s] aliases: '%s': not a DNS name (letters, "
			    "digits, '-' and '.'; no IP address: SNI cannot "
			    "carry one)",
			    section, item);
			return -1;
		}
		if ((o = name_owner(lc->cfg, item, &line)) != NULL) {
			inifile_error(f,
			    "[%s] aliases: '%s' is already a name of [host "
			    "%s] (line %d)",
			    section, item, o->name, line);
			return -1;
		}
		if (h->naliases == HOST_ALIASES_MAX) {
			inifile_error(f, "[%s] aliases: more than %d names",
			    section, HOST_ALIASES_MAX);
			return -1;
		}
		if ((h->aliases[h->naliases] = strdup(item)) == NULL) {
			inifile_error(
			    f, "[%s] aliases: out of memory", section);
			return -1;
		}
		h->naliases++;
	}
	return 0;
}

/* The value of one key, checked for its type, into p. */
static int
set_value(struct inifile *f, const struct key *k, const char *section,
    const char *value, void *p)
{
	const char *name = k->name, *why = NULL;

	switch (k->type) {
	case K_UINT:
		if (parse_uint(value, k->min, k->max, p) == -1) {
			inifile_error(f,
			    "[%s] %s: '%s' is not a whole number "
			    "from %u to %u",
			    section, name, value, k->min, k->max);
			return -1;
		}
		return 0;
	case K_BOOL:
		if (parse_bool(value, p) == -1) {
			inifile_error(f, "[%s] %s: '%s': want yes or no",
			    section, name, value);
			return -1;
		}
		return 0;
	case K_LISTEN:
		if (config_parse_listen(value, p, &why) == -1) {
			inifile_error(
			    f, "[%s] %s: '%s': %s", section, name, value, why);
			return -1;
		}
		((struct listen_list *)p)->line = f->lineno;
		return 0;
	case K_ALIASES:
		return -1; /* set_aliases */
	case K_HOST:
		if (!host_valid(value))
			why = "want a host name (letters, digits, '-', '.')";
		break;
	case K_LANG:
		if (!article_lang_valid(value))
			why = "want a language tag such as en or zh-Hans";
		break;
	case K_ERRLOG:
		if (strcmp(value, "stderr") != 0 &&
		    strcmp(value, "syslog") != 0)
			why = "want stderr or syslog";
		break;
	case K_NAME:
		/* A user or group name, or a numeric id. */
		if (value[0] == '\0' || strlen(value) > 32 ||
		    strspn(value,
		        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP"
		        "QRSTUVWXYZ0123456789_-.") != strlen(value) ||
		    value[0] == '-')
			why = "want a user or group name";
		break;
	case K_PATH:
	case K_STR:
		if (value[0] == '\0')
			why = "empty value";
		else if (strchr(value, '\t') != NULL)
			why = "holds a TAB";
		break;
	}
	if (why != NULL) {
		inifile_error(
		    f, "[%s] %s: '%s': %s", section, name, value, why);
		return -1;
	}
	free(*(char **)p);
	if ((*(char **)p = strdup(value)) == NULL) {
		inifile_error(f, "[%s] %s: out of memory", section, name);
		return -1;
	}
	return 0;
}

/* A [host NAME] header: a new host, unless the name is bad or taken. */
static int
host_section(struct inifile *f, struct loadctx *lc, const char *section)
{
	struct config *c = lc->cfg;
	char name[INIFILE_SECTION_MAX];
	const struct host_conf *o;
	struct host_conf *nv, *h;
	int line;

	lc->cur = -1;
	strlcpy_s(name, section + strlen(HOST_PREFIX), sizeof(name));
	if (!dns_name_valid(name)) {
		inifile_error(f,
		    "[%s]: not a DNS name (letters, digits, '-' and '.'; no "
		    "IP address: SNI cannot carry one)",
		    section);
		return -1;
	}
	if ((o = name_owner(c, name, &line)) != NULL) {
		inifile_error(f,
		    "[%s]: '%s' is already a name of [host %s] "
		    "(line %d)",
		    section, name, o->name, line);
		return -1;
	}
	if (c->nhosts == HOST_MAX) {
		inifile_error(f, "[%s]: more than %d hosts", section, HOST_MAX);
		return -1;
	}
	if ((nv = reallocarray(c->hosts, c->nhosts + 1, sizeof(*nv))) == NULL) {
		inifile_error(f, "[%s]: out of memory", section);
		return -1;
	}
	c->hosts = nv;
	h = &c->hosts[c->nhosts];
	memset(h, 0, sizeof(*h));
	if ((h->name = strdup(name)) == NULL) {
		inifile_error(f, "[%s]: out of memory", section);
		return -1;
	}
	h->line = f->lineno;
	lc->cur = (long)c->nhosts++;
	c->vhosts = true;
	return 0;
}

static int
set_host_key(struct inifile *f, struct loadctx *lc, const char *section,
    const char *name, const char *value)
{
	struct host_conf *h;
	size_t i;

	if (lc->cur < 0)
		return 0; /* its header was refused, and said so */
	h = &lc->cfg->hosts[lc->cur];
	for (i = 0; i < NHKEYS; i++)
		if (strcmp(host_keys[i].name, name) == 0)
			break;
	if (i == NHKEYS) {
		inifile_error(f, "[%s] %s: unknown key", section, name);
		return -1;
	}
	if (h->keyline[i]) {
		inifile_error(f, "[%s] %s: already set on line %d", section,
		    name, h->keyline[i]);
		return -1;
	}
	h->keyline[i] = f->lineno;
	if (host_keys[i].type == K_ALIASES)
		return set_aliases(f, lc, h, section, value);
	return set_value(
	    f, &host_keys[i], section, value, (char *)h + host_keys[i].off);
}

static int
set_key(
    struct inifile *f, const char *section, const char *name, const char *value)
{
	struct loadctx *lc = f->user;
	const struct key *k = NULL;
	size_t i;

	if (strncmp(section, HOST_PREFIX, strlen(HOST_PREFIX)) == 0) {
		if (name == NULL)
			return host_section(f, lc, section);
		return set_host_key(f, lc, section, name, value);
	}
	for (i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].section, section) == 0 &&
		    strcmp(keys[i].name, name) == 0) {
			k = &keys[i];
			break;
		}
	if (k == NULL) {
		inifile_error(f, "[%s] %s: unknown key", section, name);
		return -1;
	}
	if (lc->seen[i]) {
		inifile_error(f, "[%s] %s: already set on line %d", section,
		    name, lc->seen[i]);
		return -1;
	}
	lc->seen[i] = f->lineno;
	lc->cfg->keyline[i] = f->lineno;
	return set_value(f, k, section, value, (char *)lc->cfg + k->off);
}

static int
keyline_of(const struct config *c, const char *section, const char *key)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].section, section) == 0 &&
		    strcmp(keys[i].name, key) == 0)
			return c->keyline[i];
	return 0;
}

/*
 * What no single line shows: [host] sections with the single-archive
 * keys beside them, a host without its archive.  Each problem is logged.
 */
static int
check_hosts(const struct config *c, const char *path)
{
	int errors = 0, line;

	if (!c->vhosts)
		return 0;
	for (size_t i = 0; i < sizeof(single_only) / sizeof(single_only[0]);
	     i++) {
		if ((line = keyline_of(
		         c, single_only[i].section, single_only[i].key)) == 0)
			continue;
		log_warnx("%s:%d: [%s] %s: not with [host] sections (the "
		          "first on line %d): [archive], [server] hostname and "
		          "[gemini] cert describe the one archive of a file "
		          "without them; use %s",
		    path, line, single_only[i].section, single_only[i].key,
		    c->hosts[0].line, single_only[i].instead);
		errors++;
	}
	for (size_t i = 0; i < c->nhosts; i++)
		if (c->hosts[i].root == NULL) {
			log_warnx("%s:%d: [host %s]: root is not set: each "
			          "host names its archive",
			    path, c->hosts[i].line, c->hosts[i].name);
			errors++;
		}
	return errors;
}

static int
load_common(struct config *c, const char *path, const char *data, size_t len)
{
	struct loadctx lc;
	int rv;

	memset(&lc, 0, sizeof(lc));
	lc.cfg = c;
	lc.cur = -1;
	free(c->file);
	if ((c->file = strdup(path)) == NULL)
		return -1;
	if (data != NULL)
		rv = inifile_parse_buf(path, data, len, sections, set_key, &lc);
	else
		rv = inifile_parse(path, sections, set_key, &lc);
	if (rv == -1) {
		log_warn("%s: cannot read", path);
		return -1;
	}
	if (rv == 0)
		rv = check_hosts(c, path);
	if (rv > 0) {
		log_warnx("%s: %d error(s) in the configuration", path, rv);
		return -1;
	}
	return 0;
}

int
config_load(struct config *c, const char *path)
{
	return load_common(c, path, NULL, 0);
}

int
config_load_buf(
    struct config *c, const char *name, const char *data, size_t len)
{
	return load_common(c, name, data, len);
}

/*
 * One socket each can hold an address and port: a second one (the other
 * protocol's, or a duplicate in the list) either fails to bind or, with
 * SO_REUSEPORT between workers, silently takes a share of the first
 * one's connections.  A wildcard holds every address of its family
 * (IPv6 sockets are v6-only, so "*" is two wildcards that never meet).
 */
static bool
listen_overlap(const struct listen_addr *a, const struct listen_addr *b)
{
	if (a->ss.ss_family != b->ss.ss_family)
		return false;
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)&a->ss;
		const struct sockaddr_in *y = (const void *)&b->ss;

		return x->sin_port == y->sin_port &&
		    (x->sin_addr.s_addr == y->sin_addr.s_addr ||
		        x->sin_addr.s_addr == htonl(INADDR_ANY) ||
		        y->sin_addr.s_addr == htonl(INADDR_ANY));
	} else {
		const struct sockaddr_in6 *x = (const void *)&a->ss;
		const struct sockaddr_in6 *y = (const void *)&b->ss;

		return x->sin6_port == y->sin6_port &&
		    (IN6_ARE_ADDR_EQUAL(&x->sin6_addr, &y->sin6_addr) ||
		        IN6_IS_ADDR_UNSPECIFIED(&x->sin6_addr) ||
		        IN6_IS_ADDR_UNSPECIFIED(&y->sin6_addr));
	}
}

struct listener_ref {
	char section[INIFILE_SECTION_MAX];
	const char *key;
	const struct listen_list *l;
};

/* Named by the line of the later key (or the one set, if one is not). */
static void
overlap_error(const char *where, const struct listener_ref *ra,
    const struct listen_addr *a, const struct listener_ref *rb,
    const struct listen_addr *b)
{
	char other[32];

	if (rb->l->line == 0) {
		const struct listener_ref *rt = ra;
		const struct listen_addr *t = a;

		ra = rb;
		a = b;
		rb = rt;
		b = t;
	}
	if (ra->l->line > 0)
		snprintf(other, sizeof(other), "line %d", ra->l->line);
	else
		snprintf(other, sizeof(other), "its default");
	log_warnx("%s:%d: [%s] %s: '%s' is the same address and port "
	          "(%s) as [%s] %s '%s' (%s): two listeners cannot "
	          "share one",
	    where, rb->l->line, rb->section, rb->key, b->item, b->text,
	    ra->section, ra->key, a->item, other);
}

static int
check_listeners(const struct config *c, const char *where)
{
	struct listener_ref *lists;
	size_t n = 0;
	int rv = 0;

	if ((lists = calloc(2 + c->nhosts, sizeof(*lists))) == NULL)
		return -1;
	lists[n++] =
	    (struct listener_ref){"gemini", "listen", &c->gemini_listen};
	lists[n++] =
	    (struct listener_ref){"gopher", "listen", &c->gopher_listen};
	if (c->vhosts)
		for (size_t i = 0; i < c->nhosts; i++) {
			snprintf(lists[n].section, sizeof(lists[n].section),
			    "host %s", c->hosts[i].name);
			lists[n].key = "gopher";
			lists[n++].l = &c->hosts[i].gopher;
		}
	/* Every pair once, whatever workers is. */
	for (size_t la = 0; la < n && rv == 0; la++)
		for (size_t i = 0; i < lists[la].l->n && rv == 0; i++)
			for (size_t lb = la; lb < n && rv == 0; lb++)
				for (size_t j = lb == la ? i + 1 : 0;
				     j < lists[lb].l->n; j++) {
					const struct listen_addr *a =
					    &lists[la].l->v[i];
					const struct listen_addr *b =
					    &lists[lb].l->v[j];

					if (!listen_overlap(a, b))
						continue;
					overlap_error(where, &lists[la], a,
					    &lists[lb], b);
					rv = -1;
					break;
				}
	free(lists);
	return rv;
}

const char *
config_where(const struct config *c, const char *section, const char *key,
    char *buf, size_t size)
{
	int line = 0;

	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].section, section) == 0 &&
		    strcmp(keys[i].name, key) == 0)
			line = c->keyline[i];
	if (c->file != NULL && line > 0)
		snprintf(
		    buf, size, "%s:%d: [%s] %s", c->file, line, section, key);
	else
		snprintf(buf, size, "%s: [%s] %s",
		    c->file ? c->file : "(built-in defaults)", section, key);
	return buf;
}

const char *
config_host_where(const struct config *c, const struct host_conf *h,
    const char *key, char *buf, size_t size)
{
	int line = 0;

	if (!c->vhosts) {
		/* The single-archive form's keys, as the file names them. */
		const char *sec =
		    strcmp(key, "cert") == 0 || strcmp(key, "key") == 0
		    ? "gemini"
		    : "archive";
		return config_where(c, sec, key, buf, size);
	}
	for (size_t i = 0; i < NHKEYS; i++)
		if (strcmp(host_keys[i].name, key) == 0)
			line = h->keyline[i];
	snprintf(buf, size, "%s:%d: [host %s] %s", c->file,
	    line ? line : h->line, h->name, key);
	return buf;
}

static int
dflt(char **slot, const char *value)
{
	if (*slot == NULL && (*slot = strdup(value)) == NULL)
		return -1;
	return 0;
}

static char *
strdup_or_null(const char *s, int *failed)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL)
		*failed = 1;
	return d;
}

/* The single-archive form as a host, so the server knows only hosts. */
static int
single_host(struct config *c)
{
	struct host_conf *h;
	int failed = 0;

	if ((c->hosts = calloc(1, sizeof(*c->hosts))) == NULL)
		return -1;
	c->nhosts = 1;
	h = &c->hosts[0];
	h->name = strdup_or_null(c->hostname, &failed);
	h->root = strdup_or_null(c->archive_root, &failed);
	h->title = strdup_or_null(c->archive_title, &failed);
	h->lang = strdup_or_null(c->archive_lang, &failed);
	h->cert = strdup_or_null(c->gemini_cert, &failed);
	h->key = strdup_or_null(c->gemini_key, &failed);
	h->state = strdup_or_null(c->state_dir, &failed);
	h->watch = c->archive_watch;
	h->gopher_public_port = c->gopher_public_port;
	if (c->gopher_listen.n > 0) {
		h->gopher = c->gopher_listen;
		h->gopher.v = reallocarray(
		    NULL, c->gopher_listen.n, sizeof(*h->gopher.v));
		if (h->gopher.v == NULL) {
			h->gopher.n = 0;
			failed = 1;
		} else
			memcpy(h->gopher.v, c->gopher_listen.v,
			    c->gopher_listen.n * sizeof(*h->gopher.v));
	}
	return failed ? -1 : 0;
}

/* Each [host]'s defaults, and its cert and key together or neither. */
static int
finish_hosts(struct config *c, const char *where)
{
	char path[4096];

	for (size_t i = 0; i < c->nhosts; i++) {
		struct host_conf *h = &c->hosts[i];

		if (dflt(&h->lang, DEFAULT_LANG))
			return -1;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", c->state_dir,
		        h->name) >= sizeof(path) ||
		    (h->state = strdup(path)) == NULL)
			return -1;
		if (h->gopher_public_port == 0)
			h->gopher_public_port = h->gopher.port;
		if ((h->cert == NULL) != (h->key == NULL)) {
			log_warnx("%s:%d: [host %s] %s: set cert and key "
			          "together, or neither (a certificate is then "
			          "generated)",
			    where, h->line, h->name, h->cert ? "key" : "cert");
			return -1;
		}
	}
	return 0;
}

int
config_finish(struct config *c)
{
	const char *why = NULL, *where = c->file ? c->file : "(defaults)";

	if (c->vhosts && c->nhosts > 0 && c->hostname == NULL &&
	    (c->hostname = strdup(c->hosts[0].name)) == NULL)
		return -1;
	if (dflt(&c->hostname, DEFAULT_HOSTNAME) ||
	    dflt(&c->state_dir, DEFAULT_STATE_DIR) ||
	    dflt(&c->archive_root, DEFAULT_ARCHIVE_ROOT) ||
	    dflt(&c->archive_lang, DEFAULT_LANG))
		return -1;
	if (c->gemini_listen.n == 0 &&
	    config_parse_listen(
	        DEFAULT_GEMINI_LISTEN, &c->gemini_listen, &why) == -1)
		return -1;
	/* Hosts name their own Gopher listeners, if any. */
	if (!c->vhosts && c->gopher_listen.n == 0 &&
	    config_parse_listen(
	        DEFAULT_GOPHER_LISTEN, &c->gopher_listen, &why) == -1)
		return -1;
	if (c->gemini_public_port == 0)
		c->gemini_public_port = c->gemini_listen.port;
	if (c->gopher_public_port == 0)
		c->gopher_public_port = c->gopher_listen.port;
	if (check_listeners(c, where) == -1)
		return -1;
	if ((c->gemini_cert == NULL) != (c->gemini_key == NULL)) {
		log_warnx("%s: [gemini] %s: set cert and key together, or "
		          "neither (a certificate is then generated)",
		    where, c->gemini_cert ? "key" : "cert");
		return -1;
	}
	if (c->vhosts)
		return finish_hosts(c, where);
	if (c->nhosts == 0 && single_host(c) == -1)
		return -1;
	return 0;
}

void
config_archive_opts(
    const struct config *c, const struct host_conf *h, struct archive_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->root = h->root;
	o->title = h->title;
	o->lang = h->lang;
	o->hostname = h->name;
	/*
	 * Menus name the port clients use, a proxy's rather than ours; a
	 * host without Gopher still renders menus (for --export), which
	 * then name the standard port.
	 */
	o->gopher_port = h->gopher_public_port ? h->gopher_public_port : 70;
	/* Feeds link gemini:// URLs: the port clients use, too. */
	o->gemini_port = c->gemini_public_port ? c->gemini_public_port
	                                       : c->gemini_listen.port;
	o->wrap = c->gopher_wrap;
	o->menu_width = c->gopher_menu_width;
	o->quick_start = c->archive_quick_start;
}
