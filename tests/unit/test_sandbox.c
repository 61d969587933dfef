/*
 * sandbox_apply, as serai applies it, in a forked child: what serving
 * needs still works (the archive read, state_dir written, the access log
 * created, threads), what it does not is refused: Landlock answers
 * EACCES outside the trees, seccomp kills the process on a call off the
 * allow-list (execve, an Internet socket, fork, executable memory).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "sandbox.h"

/* meson's -Db_sanitize builds: see sandbox.c. */
#ifdef SERAI_SANITIZED
#define SANITIZED_BUILD 1
#else
#define SANITIZED_BUILD 0
#endif

/* A child stuck on a bug is ended by SIGALRM rather than hang the suite. */
#define CHILD_SECONDS 20

#define BASE_TEMPLATE "/tmp/serai-sandbox-XXXXXX"
static char base[sizeof(BASE_TEMPLATE)];
static char ro[64], rw[64], logd[64];
/* Asked before the sandbox, which refuses landlock_create_ruleset. */
static int abi;

static int
kernel_landlock_abi(void)
{
	long v = syscall(SYS_landlock_create_ruleset, NULL, 0, 1U);

	return v < 1 ? 0 : (int)v;
}

static void
put(const char *dir, const char *name, const char *text)
{
	char path[128];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_non_null(fp = fopen(path, "w"));
	fputs(text, fp);
	assert_int_equal(fclose(fp), 0);
}

static int
setup(void **state)
{
	(void)state;
	abi = kernel_landlock_abi();
	memcpy(base, BASE_TEMPLATE, sizeof(base));
	if (mkdtemp(base) == NULL)
		return -1;
	snprintf(ro, sizeof(ro), "%s/archive", base);
	snprintf(rw, sizeof(rw), "%s/state", base);
	snprintf(logd, sizeof(logd), "%s/logs", base);
	if (mkdir(ro, 0755) == -1 || mkdir(rw, 0755) == -1 ||
	    mkdir(logd, 0755) == -1)
		return -1;
	put(ro, "article.txt", "Title\n\nBody.\n");
	put(logd, "access.log", "old line\n");
	return 0;
}

static int
teardown(void **state)
{
	const char *files[] = {"archive/article.txt", "state/search.db-shm",
	    "logs/access.log", "logs/access.log.new", "archive", "state",
	    "logs", ""};
	char path[128];

	(void)state;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", base, files[i]);
		(void)remove(path);
	}
	return 0;
}

/* In the child: the sandbox as main.c applies it; 0, or exits 90. */
static void
enter(void)
{
	struct sandbox sb;
	struct sandbox_paths sp = {.ro = ro, .rw = rw, .logdir = logd};
	char what[128], want[64];

	alarm(CHILD_SECONDS);
	sandbox_prepare(&sb, &sp);
	if (sandbox_apply(&sb, what, sizeof(what)) == -1)
		_exit(90);
	if (abi > 0)
		snprintf(
		    want, sizeof(want), "landlock ABI %d, seccomp on", abi);
	else
		snprintf(want, sizeof(want), "landlock off, seccomp on");
	if (strncmp(what, want, strlen(want)) != 0)
		_exit(91);
}

/* Runs fn in a sandboxed child; its wait status. */
static int
in_child(int (*fn)(void))
{
	pid_t pid;
	int status;

	fflush(NULL);
	assert_true((pid = fork()) != -1);
	if (pid == 0) {
		enter();
		_exit(fn());
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void
assert_exit_zero(int status)
{
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		print_error("child: %s %d\n",
		    WIFEXITED(status) ? "exit" : "signal",
		    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		fail();
	}
}

static void
assert_killed_by_seccomp(int status)
{
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSYS) {
		print_error("child: %s %d, SIGSYS wanted\n",
		    WIFEXITED(status) ? "exit" : "signal",
		    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		fail();
	}
}

static int
open_at(const char *dir, const char *name, int flags)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return open(path, flags | O_CLOEXEC, 0600);
}

static int
unlink_at(const char *dir, const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return unlink(path);
}

/* Denied by Landlock: -1 with EACCES (the fd closed if it opened). */
static int
denied(int fd)
{
	if (fd != -1) {
		close(fd);
		return 0;
	}
	return errno == EACCES;
}

static void *
thread_main(void *arg)
{
	return arg;
}

/* What serving needs; each failure exits with its own number. */
static int
serving_works(void)
{
	char buf[64];
	void *ret = NULL, *shm;
	pthread_t t;
	DIR *d;
	int fd;

	/* The archive: read, and listed (reloads, watch). */
	if ((fd = open_at(ro, "article.txt", O_RDONLY)) == -1 ||
	    read(fd, buf, sizeof(buf)) <= 0 || close(fd) == -1)
		return 1;
	if ((d = opendir(ro)) == NULL || readdir(d) == NULL || closedir(d))
		return 2;
	/* state_dir: the search index as SQLite uses it in WAL mode:
	 * written at offsets, locked, its -shm mapped shared, truncated,
	 * synced, and removed by the last close. */
	if ((fd = open_at(rw, "search.db-shm", O_RDWR | O_CREAT)) == -1 ||
	    write(fd, "index", 5) != 5 || ftruncate(fd, 0) == -1 ||
	    pwrite(fd, "x", 1, 4095) != 1 || fdatasync(fd) == -1 ||
	    fsync(fd) == -1 ||
	    fcntl(fd, F_SETLK,
	        &(struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET}) ==
	        -1 ||
	    (shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
	         0)) == MAP_FAILED ||
	    munmap(shm, 4096) == -1 || close(fd) ||
	    unlink_at(rw, "search.db-shm") == -1)
		return 3;
	/* The access log's directory: a rotated log created anew. */
	if ((fd = open_at(logd, "access.log.new",
	         O_WRONLY | O_APPEND | O_CREAT)) == -1 ||
	    write(fd, "line\n", 5) != 5 || close(fd) == -1)
		return 4;
	/* Worker and search threads. */
	if (pthread_create(&t, NULL, thread_main, buf) != 0 ||
	    pthread_join(t, &ret) != 0 || ret != buf)
		return 5;
	/* syslog's socket to /dev/log. */
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1 ||
	    close(fd) == -1)
		return 6;
	return 0;
}

/* What Landlock refuses; each failure exits with its own number. */
static int
files_are_confined(void)
{
	if (abi == 0)
		return 0; /* nothing to confine with: enter() checked the line */
	if (!denied(open("/etc/passwd", O_RDONLY | O_CLOEXEC)))
		return 1;
	if (!denied(open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)))
		return 2;
	if (!denied(open("/tmp/serai-sandbox-escape",
	        O_WRONLY | O_CREAT | O_CLOEXEC, 0600)))
		return 3;
	/* The archive is read-only: no write, no new file. */
	if (!denied(open_at(ro, "article.txt", O_WRONLY)) ||
	    !denied(open_at(ro, "planted.txt", O_WRONLY | O_CREAT)))
		return 4;
	/* The log directory is for writing logs, not reading them. */
	if (!denied(open_at(logd, "access.log", O_RDONLY)))
		return 5;
	/* The parent of the trees is outside them. */
	if (!denied(open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC)))
		return 6;
	return 0;
}

static int
do_execve(void)
{
	char *argv[] = {"/bin/true", NULL};

	execve(argv[0], argv, NULL);
	return 1;
}

static int
do_inet_socket(void)
{
	(void)socket(AF_INET, SOCK_STREAM, 0);
	return 1;
}

static int
do_fork(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	return 1;
}

static int
do_exec_memory(void)
{
	(void)mmap(NULL, 4096, PROT_READ | PROT_EXEC,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return 1;
}

static int
do_ptrace(void)
{
	(void)ptrace(PTRACE_TRACEME, 0, NULL, NULL);
	return 1;
}

/*
 * A sanitizer build keeps its reports inside the sandbox: this overflow
 * must end in a whole, symbolized AddressSanitizer report, not SIGSYS.
 */
static int
do_overflow(void)
{
	volatile size_t i = 8;
	volatile char *p = malloc(i);

	p[i] = 1; /* volatile: no dead store removed before free */
	free((void *)p);
	return 0;
}

static void
test_sanitizer_report_is_whole(void **state)
{
	char out[16384];
	size_t len = 0;
	ssize_t n;
	pid_t pid;
	int fds[2], status;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	fflush(NULL);
	assert_true((pid = fork()) != -1);
	if (pid == 0) {
		dup2(fds[1], STDERR_FILENO);
		close(fds[0]);
		enter();
		_exit(do_overflow());
	}
	close(fds[1]);
	/* Bounded: the child's alarm ends it, and with it the pipe. */
	while (len < sizeof(out) - 1 &&
	    (n = read(fds[0], out + len, sizeof(out) - 1 - len)) > 0)
		len += (size_t)n;
	out[len] = '\0';
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) == 0 ||
	    strstr(out, "AddressSanitizer: heap-buffer-overflow") == NULL ||
	    strstr(out, "do_overflow") == NULL ||
	    strstr(out, "SUMMARY: AddressSanitizer") == NULL) {
		print_error("child %s %d; its stderr:\n%s\n",
		    WIFEXITED(status) ? "exit" : "signal",
		    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
		    out);
		fail();
	}
}

#ifdef SERAI_SANITIZED
#include <sanitizer/lsan_interface.h>

static void *volatile leaked;

/*
 * LeakSanitizer's check inside the sandbox: its tracer must list the
 * threads and stop them, not be killed (the check would then wait for it
 * forever: the alarm ends the child instead).  The leak is there so that
 * the check has something to find: 1 means it ran to the end.
 */
static int
do_leak_check(void)
{
	leaked = malloc(1337);
	leaked = NULL;
	return __lsan_do_recoverable_leak_check() == 1 ? 0 : 1;
}
#else
static int
do_leak_check(void)
{
	return 1;
}
#endif

static void
test_leak_check_runs(void **state)
{
	int fd, status;
	pid_t pid;

	(void)state;
	fflush(NULL);
	assert_true((pid = fork()) != -1);
	if (pid == 0) {
		/* The leak report is expected: keep it out of the test log. */
		if ((fd = open("/dev/null", O_WRONLY)) != -1)
			dup2(fd, STDERR_FILENO);
		enter();
		_exit(do_leak_check());
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_exit_zero(status);
}

static void *
wait_on_pipe(void *arg)
{
	char c;

	(void)!read(*(int *)arg, &c, 1);
	return NULL;
}

/* A thread started before the sandbox would escape Landlock: refused. */
static void
test_early_thread_is_refused(void **state)
{
	struct sandbox_paths sp = {.ro = ro, .rw = rw, .logdir = logd};
	struct sandbox sb;
	char what[128];
	pthread_t t;
	pid_t pid;
	int fds[2], status;

	(void)state;
	fflush(NULL);
	assert_true((pid = fork()) != -1);
	if (pid == 0) {
		alarm(CHILD_SECONDS);
		if (pipe(fds) == -1 ||
		    pthread_create(&t, NULL, wait_on_pipe, &fds[0]) != 0)
			_exit(2);
		sandbox_prepare(&sb, &sp);
		_exit(sandbox_apply(&sb, what, sizeof(what)) == -1 ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_exit_zero(status);
}

static void
test_serving_works(void **state)
{
	(void)state;
	assert_exit_zero(in_child(serving_works));
}

static void
test_files_are_confined(void **state)
{
	(void)state;
	assert_exit_zero(in_child(files_are_confined));
}

static void
test_forbidden_calls_kill(void **state)
{
	(void)state;
	assert_killed_by_seccomp(in_child(do_execve));
	assert_killed_by_seccomp(in_child(do_inet_socket));
	assert_killed_by_seccomp(in_child(do_exec_memory));
	/* LeakSanitizer forks and ptraces, so sanitizer builds allow it. */
	if (!SANITIZED_BUILD) {
		assert_killed_by_seccomp(in_child(do_fork));
		assert_killed_by_seccomp(in_child(do_ptrace));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_serving_works),
	    cmocka_unit_test(test_early_thread_is_refused),
	    cmocka_unit_test(test_files_are_confined),
	    cmocka_unit_test(test_forbidden_calls_kill),
	};
	const struct CMUnitTest sanitized[] = {
	    cmocka_unit_test(test_sanitizer_report_is_whole),
	    cmocka_unit_test(test_leak_check_runs),
	};

	log_init("test_sandbox");
	if (SANITIZED_BUILD &&
	    cmocka_run_group_tests(sanitized, setup, teardown) != 0)
		return 1;
	return cmocka_run_group_tests(tests, setup, teardown);
}
