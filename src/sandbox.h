/*
 * The sandbox (Linux): no_new_privs, Landlock and a seccomp-bpf
 * allow-list, applied once start-up is done and before any thread runs.
 * A leaf module, so a unit test links it alone and applies it in a child.
 */
#ifndef SERAI_SANDBOX_H
#define SERAI_SANDBOX_H

#include <stddef.h>

/* The trees the serving process may still reach, by their start-up paths. */
struct sandbox_paths {
	const char *ro;     /* read: the archive root (reloads, watch) */
	const char *rw;     /* read and write: state_dir (search.db) */
	const char *logdir; /* write and create files: the access log's
	                       directory (SIGUSR1 reopens); NULL for none */
	/* Read too: other archive roots, certificates' directories. */
	const char *const *more_ro;
	size_t nmore_ro;
};

struct sandbox {
	int fd_ro, fd_rw, fd_log; /* O_PATH, or -1 */
	int fd_task;              /* /proc/self/task, to count threads */
	int *fd_more;             /* more_ro's, each O_PATH or -1 */
	size_t nmore;
};

/*
 * Opens the trees (O_PATH) while they are still reachable: before the
 * chroot and the privilege drop, which Landlock's rules then outlive.
 * A tree that cannot be opened is logged and left out (so denied).
 */
void sandbox_prepare(struct sandbox *, const struct sandbox_paths *);

/*
 * PR_SET_NO_NEW_PRIVS, Landlock (the best ABI the kernel has; without
 * it, a warning), then the seccomp filter (a forbidden call kills the
 * process).  Call with no other thread running: Landlock binds only the
 * calling thread and the threads it starts, so another thread already
 * running is refused (-1).  Writes what is on into
 * what ("landlock ABI 3, seccomp on").  Closes the trees.  0, or -1
 * (logged) when a part that should have worked did not.
 */
int sandbox_apply(struct sandbox *, char *what, size_t whatsize);

#endif
