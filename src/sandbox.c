/*
 * The sandbox (Linux).  Once the sockets are bound, the archive loaded,
 * the logs, the certificate and the search index opened and privileges
 * dropped, the serving process needs very little of the kernel: it
 * accepts, reads, writes, reloads a tree it only reads, updates its
 * search index in state_dir and reopens its access log.  So:
 *
 *   - PR_SET_NO_NEW_PRIVS: no exec can gain privileges (and seccomp
 *     filters need it when not root);
 *   - Landlock: read-only on the archive root, read-write on state_dir,
 *     write and create in the access log's directory, nothing else on
 *     the file system; no TCP bind or connect (everything is bound
 *     already); no signals or abstract sockets outside the process;
 *   - seccomp-bpf (libseccomp): an allow-list of system calls, anything
 *     else kills the process (SECCOMP_RET_KILL_PROCESS).
 *
 * Sanitizer builds (CI runs the suite under ASan+UBSan with the sandbox
 * on) also let LeakSanitizer stop the world at exit and every sanitizer
 * read /proc and the binaries to print a report: see SANITIZED below.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <linux/sockios.h>
#include <sched.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include "log.h"
#include "sandbox.h"

/*
 * meson defines SERAI_SANITIZED for -Db_sanitize builds; the compilers'
 * own macros catch a sanitizer passed by hand in CFLAGS.
 */
#if defined(SERAI_SANITIZED) || defined(__SANITIZE_ADDRESS__) ||               \
    defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) ||                                        \
    __has_feature(undefined_behavior_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

/*
 * Debian 12's kernel headers stop at Landlock ABI 2; the later rights
 * are fixed by the kernel's ABI, so they are spelled out here.
 */
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#ifndef LANDLOCK_ACCESS_NET_BIND_TCP
#define LANDLOCK_ACCESS_NET_BIND_TCP (1ULL << 0)
#define LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1)
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#endif

/* The kernel's struct landlock_ruleset_attr as of ABI 6; see ll_size. */
struct ll_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net; /* ABI 4 */
	uint64_t scoped;             /* ABI 6 */
};

/* Every file-system right of ABI 1: EXECUTE up to MAKE_SYM. */
#define LL_FS_V1 ((1ULL << 13) - 1)
#define LL_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
/*
 * state_dir: the search index (search.db) and its -wal and -shm files
 * are written, truncated and removed at the last close; a certificate
 * made on first start is written beside and renamed in (before the
 * sandbox today, but the right costs nothing).
 */
#define LL_STATE                                                               \
	(LL_READ | LANDLOCK_ACCESS_FS_WRITE_FILE |                             \
	    LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_REMOVE_FILE |     \
	    LANDLOCK_ACCESS_FS_TRUNCATE)
/* The access log's directory: append to the file, create it anew. */
#define LL_LOG (LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_MAKE_REG)

static int
open_tree(const char *path, const char *what)
{
	int fd;

	if (path == NULL)
		return -1;
	if ((fd = open(path, O_PATH | O_CLOEXEC | O_DIRECTORY)) == -1)
		log_warn("sandbox: %s %s: left out (denied)", what, path);
	return fd;
}

void
sandbox_prepare(struct sandbox *sb, const struct sandbox_paths *p)
{
	sb->fd_ro = open_tree(p->ro, "archive root");
	sb->fd_rw = open_tree(p->rw, "state_dir");
	sb->fd_log = open_tree(p->logdir, "access log directory");
	sb->nmore = 0;
	if (p->nmore_ro > 0 &&
	    (sb->fd_more = calloc(p->nmore_ro, sizeof(*sb->fd_more))) != NULL)
		for (; sb->nmore < p->nmore_ro; sb->nmore++)
			sb->fd_more[sb->nmore] =
			    open_tree(p->more_ro[sb->nmore], "read-only tree");
	else
		sb->fd_more = NULL;
	/* Kept: a chroot to come would hide /proc. */
	sb->fd_task =
	    open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/*
 * Threads of the process but the caller: Landlock would not bind them
 * (seccomp's TSYNC would), so one started too early would serve with
 * the whole file system in reach.  -1 when /proc could not be read.
 */
static long
other_threads(struct sandbox *sb)
{
	struct dirent *de;
	long n = -1;
	DIR *d;

	if (sb->fd_task == -1 || (d = fdopendir(sb->fd_task)) == NULL)
		return -1;
	sb->fd_task = -1; /* closedir closes it */
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void
close_trees(struct sandbox *sb)
{
	int *fds[] = {&sb->fd_ro, &sb->fd_rw, &sb->fd_log, &sb->fd_task};

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (*fds[i] != -1) {
			close(*fds[i]);
			*fds[i] = -1;
		}
	for (size_t i = 0; i < sb->nmore; i++)
		if (sb->fd_more[i] != -1)
			close(sb->fd_more[i]);
	free(sb->fd_more);
	sb->fd_more = NULL;
	sb->nmore = 0;
}

static int
ll_add(int ruleset, int fd, uint64_t access, uint64_t handled)
{
	struct landlock_path_beneath_attr pb = {
	    .allowed_access = access & handled,
	    .parent_fd = fd,
	};

	if (fd == -1)
		return 0;
	return (int)syscall(__NR_landlock_add_rule, ruleset,
	    LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
}

/* Read-only trees the sanitizers' reports and LeakSanitizer need. */
static int
ll_add_sanitizer(int ruleset, uint64_t handled)
{
	static const char *const trees[] = {"/proc", "/usr", "/lib", "/lib64"};
	int fd, rv = 0;

	if (!SANITIZED)
		return 0;
	for (size_t i = 0; i < sizeof(trees) / sizeof(trees[0]); i++) {
		if ((fd = open(trees[i], O_PATH | O_CLOEXEC | O_DIRECTORY)) ==
		    -1)
			continue;
		rv |= ll_add(ruleset, fd, LL_READ, handled);
		close(fd);
	}
	/* The binary itself, for symbols: a file rule takes no READ_DIR. */
	if ((fd = open("/proc/self/exe", O_PATH | O_CLOEXEC)) != -1) {
		rv |=
		    ll_add(ruleset, fd, LANDLOCK_ACCESS_FS_READ_FILE, handled);
		close(fd);
	}
	return rv;
}

/*
 * 0 and the ABI in *abi when applied; 0 and *abi = 0 when the kernel has
 * no Landlock; -1 (logged) on any other failure.
 */
static int
landlock_apply(struct sandbox *sb, int *abi)
{
	struct ll_attr attr = {0};
	size_t size;
	int v, rs;

	*abi = 0;
	v = (int)syscall(__NR_landlock_create_ruleset, NULL, 0,
	    LANDLOCK_CREATE_RULESET_VERSION);
	if (v < 1) {
		if (errno == ENOSYS || errno == EOPNOTSUPP)
			return 0;
		log_warn("sandbox: landlock_create_ruleset (version)");
		return -1;
	}
	/*
	 * Handle every right this ABI knows, so all that no rule grants is
	 * denied; and hand the kernel only the struct size it knows (a
	 * larger one with non-zero tail is refused).
	 */
	attr.handled_access_fs = LL_FS_V1;
	if (v >= 2)
		attr.handled_access_fs |= LANDLOCK_ACCESS_FS_REFER;
	if (v >= 3)
		attr.handled_access_fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (v >= 5)
		attr.handled_access_fs |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	size = offsetof(struct ll_attr, handled_access_net);
	if (v >= 4) {
		/* Everything is bound already; serai connects nowhere. */
		attr.handled_access_net = LANDLOCK_ACCESS_NET_BIND_TCP |
		    LANDLOCK_ACCESS_NET_CONNECT_TCP;
		size = offsetof(struct ll_attr, scoped);
	}
	if (v >= 6) {
		/* syslog's /dev/log is a named socket: not scoped. */
		attr.scoped =
		    LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL;
		size = sizeof(attr);
	}
	if ((rs = (int)syscall(__NR_landlock_create_ruleset, &attr, size, 0)) ==
	    -1) {
		log_warn("sandbox: landlock_create_ruleset");
		return -1;
	}
	if (ll_add(rs, sb->fd_ro, LL_READ, attr.handled_access_fs) == -1 ||
	    ll_add(rs, sb->fd_rw, LL_STATE, attr.handled_access_fs) == -1 ||
	    ll_add(rs, sb->fd_log, LL_LOG, attr.handled_access_fs) == -1 ||
	    ll_add_sanitizer(rs, attr.handled_access_fs) != 0) {
		log_warn("sandbox: landlock_add_rule");
		close(rs);
		return -1;
	}
	for (size_t i = 0; i < sb->nmore; i++)
		if (ll_add(rs, sb->fd_more[i], LL_READ,
		        attr.handled_access_fs) == -1) {
			log_warn("sandbox: landlock_add_rule");
			close(rs);
			return -1;
		}
	if (syscall(__NR_landlock_restrict_self, rs, 0) == -1) {
		log_warn("sandbox: landlock_restrict_self");
		close(rs);
		return -1;
	}
	close(rs);
	*abi = v;
	return 0;
}

/*
 * The allow-list, by what serai does after start-up.  Anything not here
 * kills the process: a bug or an exploit that wanders off (execve, fork,
 * ptrace, mount, a new socket to the network) ends there.
 */
static const int allowed[] = {
    /* Serving: accept, read the request, write the answer, close. */
    SCMP_SYS(accept4),
    SCMP_SYS(read),
    SCMP_SYS(write),
    SCMP_SYS(readv),
    SCMP_SYS(writev),
    SCMP_SYS(recvfrom),
    SCMP_SYS(sendto),
    SCMP_SYS(close),
    SCMP_SYS(shutdown),
    SCMP_SYS(getsockname),
    SCMP_SYS(setsockopt),
    SCMP_SYS(getsockopt),
    SCMP_SYS(fcntl),
    /* libevent: epoll (its wake-ups and signals come as reads). */
    SCMP_SYS(epoll_wait),
    SCMP_SYS(epoll_pwait),
    SCMP_SYS(epoll_ctl),
    /* Wake-ups between threads (a search pool answering the loops),
       should they be made after start-up. */
    SCMP_SYS(eventfd2),
    SCMP_SYS(pipe2),
    /* Time, where the vDSO falls back to the kernel. */
    SCMP_SYS(clock_gettime),
    SCMP_SYS(gettimeofday),
    /* Threads (workers, the search index, search workers) and their
       memory; clone is filtered below. */
    SCMP_SYS(futex),
    SCMP_SYS(set_robust_list),
    SCMP_SYS(rseq),
    SCMP_SYS(sched_yield),
    SCMP_SYS(sched_getaffinity),
    SCMP_SYS(gettid),
    SCMP_SYS(getpid),
    SCMP_SYS(exit),
    SCMP_SYS(exit_group),
    SCMP_SYS(madvise),
    SCMP_SYS(munmap),
    SCMP_SYS(mremap),
    SCMP_SYS(brk),
    /* Signals: SIGHUP, SIGUSR1, SIGTERM through libevent; abort(). */
    SCMP_SYS(rt_sigaction),
    SCMP_SYS(rt_sigprocmask),
    SCMP_SYS(rt_sigreturn),
    SCMP_SYS(tgkill),
    /* OpenSSL reseeding its generators (TLS keys, tickets). */
    SCMP_SYS(getrandom),
    /* Reloads and watch walk and read the archive (Landlock says
       where), inotify follows new directories; the search index
       (SQLite in WAL mode, opened before the sandbox) is read and
       written at offsets, locked with fcntl, its -shm mapped shared,
       its WAL truncated and synced. */
    SCMP_SYS(openat),
    SCMP_SYS(openat2), /* RESOLVE_BENEATH and kin, if the loader uses them */
    SCMP_SYS(newfstatat),
    SCMP_SYS(fstat),
    SCMP_SYS(statx),
    SCMP_SYS(access),
    SCMP_SYS(faccessat),
    SCMP_SYS(faccessat2),
    SCMP_SYS(readlink),
    SCMP_SYS(readlinkat),
    SCMP_SYS(getdents64),
    SCMP_SYS(lseek),
    SCMP_SYS(pread64),
    SCMP_SYS(pwrite64),
    SCMP_SYS(ftruncate),
    /* archive.c's pack gives a dropped segment's blocks back. */
    SCMP_SYS(fallocate),
    SCMP_SYS(fsync),
    SCMP_SYS(fdatasync),
    /* The last connection to the index to close removes its -wal and
       -shm files; a search that finds the WAL being reset waits a
       little (SQLite's busy handler sleeps). */
    SCMP_SYS(unlink),
    SCMP_SYS(unlinkat),
    SCMP_SYS(nanosleep),
    SCMP_SYS(clock_nanosleep),
    SCMP_SYS(inotify_add_watch),
    SCMP_SYS(inotify_rm_watch),
    /* SIGUSR1: the access log reopened and swapped in with dup2. */
    SCMP_SYS(dup2),
    SCMP_SYS(dup3),
    /* syslog reconnecting to /dev/log; socket() is filtered below. */
    SCMP_SYS(connect),
};

/*
 * What a sanitizer build adds (found by running the suites with the
 * filter logging instead of killing): LeakSanitizer, at exit, clones a
 * tracer (prctl PR_SET_PTRACER / PDEATHSIG, getppid, its own signal
 * stack) that lists /proc/self/task with open(2) and the old getdents(2),
 * ptraces every thread and is waited for; clone is then unfiltered (see
 * seccomp_apply).  A call missing here hangs the exit: the process waits
 * for its killed tracer forever.
 */
static const int allowed_sanitized[] = {
    SCMP_SYS(ptrace),
    SCMP_SYS(wait4),
    SCMP_SYS(prctl),
    SCMP_SYS(getppid),
    SCMP_SYS(sigaltstack),
    SCMP_SYS(open),
    SCMP_SYS(getdents),
    SCMP_SYS(kill),
};

#define NALLOWED (sizeof(allowed) / sizeof(allowed[0]))
#define NALLOWED_SAN (sizeof(allowed_sanitized) / sizeof(allowed_sanitized[0]))

static int
seccomp_apply(void)
{
	scmp_filter_ctx ctx;
	int rc = 0;

	if ((ctx = seccomp_init(SCMP_ACT_KILL_PROCESS)) == NULL)
		return -1;
	for (size_t i = 0; i < NALLOWED && rc == 0; i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0);
	if (SANITIZED)
		for (size_t i = 0; i < NALLOWED_SAN && rc == 0; i++)
			rc = seccomp_rule_add(
			    ctx, SCMP_ACT_ALLOW, allowed_sanitized[i], 0);
	if (rc != 0)
		goto out;
	/* Threads, never a new process: fork would be a way out. */
	if (SANITIZED)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 0);
	else
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
		    SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
	/* clone3 passes its flags in memory, out of seccomp's sight. */
	if (rc == 0)
		rc = seccomp_rule_add(
		    ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	/* Memory (malloc, thread stacks), never executable: no new code. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
		    SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect),
		    1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	/*
	 * A search thread lowers its own priority (nice +10): PRIO_PROCESS
	 * on a thread id, never raising it (NoNewPrivs and no CAP_SYS_NICE).
	 */
	if (rc == 0)
		rc =
		    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(setpriority),
		        1, SCMP_A0(SCMP_CMP_EQ, PRIO_PROCESS, 0));
	/* syslog's socket to /dev/log; nothing reaches the network. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
		    SCMP_A0(SCMP_CMP_EQ, AF_UNIX, 0));
	/* libevent asks how much is readable; nothing else. */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
		    SCMP_A1(SCMP_CMP_EQ, FIONREAD, 0));
	/*
	 * A connection cut short logs the bytes the client really got: the
	 * send queue's unacknowledged bytes are taken off what was written.
	 */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
		    SCMP_A1(SCMP_CMP_EQ, SIOCOUTQ, 0));
	/* A sanitizer report asks whether stderr is a terminal (colour). */
	if (rc == 0 && SANITIZED)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
		    SCMP_A1(SCMP_CMP_EQ, TCGETS, 0));
	/* The filter binds every thread, should one exist already. */
	if (rc == 0)
		rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (rc == 0)
		rc = seccomp_load(ctx);
out:
	seccomp_release(ctx);
	if (rc != 0)
		errno = -rc;
	return rc == 0 ? 0 : -1;
}

int
sandbox_apply(struct sandbox *sb, char *what, size_t whatsize)
{
	long others;
	int abi;

	if ((others = other_threads(sb)) > 0) {
		log_warnx("sandbox: %ld other thread(s) already running would "
		          "escape Landlock",
		    others);
		close_trees(sb);
		return -1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
		log_warn("sandbox: PR_SET_NO_NEW_PRIVS");
		close_trees(sb);
		return -1;
	}
	if (landlock_apply(sb, &abi) == -1) {
		close_trees(sb);
		return -1;
	}
	close_trees(sb);
	if (abi == 0)
		log_warnx("sandbox: the kernel has no Landlock: the file "
		          "system is not confined");
	if (seccomp_apply() == -1) {
		log_warn("sandbox: seccomp");
		return -1;
	}
	if (abi > 0)
		snprintf(what, whatsize, "landlock ABI %d, seccomp on%s", abi,
		    SANITIZED ? " (sanitizer build)" : "");
	else
		snprintf(what, whatsize, "landlock off, seccomp on%s",
		    SANITIZED ? " (sanitizer build)" : "");
	return 0;
}
