/*
 * Privileges: sockets are bound, the certificate and key read and the
 * logs opened as the starting user; then, started as root, serai drops to
 * [server] user (and group), optionally inside [server] chroot, before
 * any worker starts or any request is read.
 */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "serai.h"
#include "util.h"

/* The account serai serves as when started as root with no user set. */
#define DEFAULT_ROOT_USER "nobody"

static int
lookup_id(const char *s, unsigned long *id)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*id = strtoul(s, &end, 10);
	return errno == 0 && *end == '\0' ? 0 : -1;
}

int
priv_resolve(struct config *c, struct priv *p)
{
	const char *user = c->user;
	char where[PATH_MAX + 64];
	struct passwd *pw;
	struct group *gr;
	unsigned long id;

	memset(p, 0, sizeof(*p));
	if (geteuid() != 0) {
		if (c->user != NULL || c->chroot != NULL) {
			log_warnx("%s: needs serai started as root",
			    config_where(c, "server",
			        c->user ? "user" : "chroot", where,
			        sizeof(where)));
			return -1;
		}
		return 0;
	}
	/*
	 * Started as root, serai never keeps root unless told to (user =
	 * root): without a user it serves as nobody.
	 */
	if (user == NULL)
		user = DEFAULT_ROOT_USER;
	if ((pw = getpwnam(user)) == NULL &&
	    (lookup_id(user, &id) == -1 ||
	        (pw = getpwuid((uid_t)id)) == NULL)) {
		log_warnx("%s: no such user '%s'",
		    config_where(c, "server", "user", where, sizeof(where)),
		    user);
		return -1;
	}
	p->uid = pw->pw_uid;
	p->gid = pw->pw_gid;
	p->name = user;
	if (c->group != NULL) {
		if ((gr = getgrnam(c->group)) == NULL &&
		    (lookup_id(c->group, &id) == -1 ||
		        (gr = getgrgid((gid_t)id)) == NULL)) {
			log_warnx("%s: no such group '%s'",
			    config_where(
			        c, "server", "group", where, sizeof(where)),
			    c->group);
			return -1;
		}
		p->gid = gr->gr_gid;
	}
	/*
	 * Root can leave a chroot (a second chroot and a climb of "..", a
	 * mount, ptrace of a process outside): one that keeps root would
	 * only look like a wall, so it is refused rather than half done.
	 */
	if (c->chroot != NULL && p->uid == 0) {
		log_warnx("%s: refused with user = root: root can leave a "
		          "chroot, so it would confine nothing; serve as an "
		          "unprivileged user (unset user: nobody) or remove "
		          "chroot",
		    config_where(c, "server", "chroot", where, sizeof(where)));
		return -1;
	}
	if (c->chroot != NULL) {
		char real[PATH_MAX], root[PATH_MAX];
		size_t n;

		if (realpath(c->chroot, p->chroot) == NULL) {
			log_warn("%s: %s",
			    config_where(
			        c, "server", "chroot", where, sizeof(where)),
			    c->chroot);
			return -1;
		}
		/* Reloads read each archive from inside the chroot. */
		if ((p->roots = calloc(c->nhosts, sizeof(*p->roots))) == NULL)
			return -1;
		n = strlen(p->chroot);
		for (size_t i = 0; i < c->nhosts; i++) {
			const struct host_conf *h = &c->hosts[i];

			if (realpath(h->root, real) == NULL) {
				log_warn("%s: %s",
				    config_host_where(
				        c, h, "root", where, sizeof(where)),
				    h->root);
				return -1;
			}
			if (strcmp(p->chroot, "/") != 0 &&
			    (strncmp(real, p->chroot, n) != 0 ||
			        real[n] != '/')) {
				log_warnx("%s: %s is outside [server] chroot "
				          "%s: reloads could not read it",
				    config_host_where(
				        c, h, "root", where, sizeof(where)),
				    real, p->chroot);
				return -1;
			}
			strlcpy_s(root,
			    strcmp(p->chroot, "/") ? real + n : real,
			    sizeof(root));
			if ((p->roots[i] = strdup(root)) == NULL)
				return -1;
		}
		p->nroots = c->nhosts;
	}
	p->drop = pw->pw_uid != 0;
	return 0;
}

void
priv_free(struct priv *p)
{
	for (size_t i = 0; p->roots != NULL && i < p->nroots; i++)
		free(p->roots[i]);
	free(p->roots);
	p->roots = NULL;
	p->nroots = 0;
}

void
priv_drop(struct priv *p, struct config *c)
{
	if (geteuid() != 0)
		return;
	if (p->chroot[0] != '\0') {
		if (log_chroot(p->chroot) == -1)
			log_warnx("the access log is outside [server] chroot "
			          "%s: SIGUSR1 cannot reopen it",
			    p->chroot);
		if (chroot(p->chroot) == -1 || chdir("/") == -1)
			fatalx("chroot %s: %s", p->chroot, strerror(errno));
		/* The paths are the priv's now: its strings move over. */
		for (size_t i = 0; i < p->nroots && i < c->nhosts; i++) {
			free(c->hosts[i].root);
			c->hosts[i].root = p->roots[i];
		}
		free(p->roots);
		p->roots = NULL;
	}
	if (!p->drop) {
		log_warnx("serving as root ([server] user = root)");
		return;
	}
	if (setgroups(1, &p->gid) == -1 ||
	    setresgid(p->gid, p->gid, p->gid) == -1 ||
	    setresuid(p->uid, p->uid, p->uid) == -1)
		fatalx("cannot drop to user %s: %s", p->name, strerror(errno));
	/* Belt and braces: there must be no way back. */
	if (setuid(0) != -1 || seteuid(0) != -1)
		fatalx("dropped to %s but could regain root", p->name);
	log_info("serving as %s (uid %u, gid %u)%s%s", p->name,
	    (unsigned)p->uid, (unsigned)p->gid, p->chroot[0] ? " in " : "",
	    p->chroot[0] ? p->chroot : "");
	for (size_t i = 0; i < c->nhosts; i++)
		if (access(c->hosts[i].root, R_OK | X_OK) == -1)
			log_warn("%s: not readable as %s: SIGHUP reloads will "
			         "fail",
			    c->hosts[i].root, p->name);
}
