/* proc.h - child processes, temporary directories and condition waits for the tests. */
#ifndef SAGA_TEST_PROC_H
#define SAGA_TEST_PROC_H

#include <stdint.h>
#include <sys/types.h>

/* Starts argv[0] (a path, not searched in PATH) with arguments argv (NULL-terminated).
 * env is NULL or a NULL-terminated list of "KEY=VALUE" entries added to the inherited
 * environment; an entry replaces an inherited variable of the same name. stdout and
 * stderr are appended to log_path (created if needed), or inherited if log_path is
 * NULL. The child is killed with SIGKILL when the thread that spawned it exits
 * (PR_SET_PDEATHSIG), so spawn from a thread that outlives the child, normally main.
 * Signal mask and the dispositions of SIGPIPE, SIGTERM and SIGINT are reset in the
 * child. Returns the child's pid, or -1 with errno set if the fork failed, the log
 * could not be opened or the program could not be executed (the child is reaped). The
 * caller must reap the child (tproc_wait, tproc_term or tproc_kill). */
pid_t tproc_spawn(const char *const argv[], const char *const env[], const char *log_path);

/* Waits up to timeout_ms (a negative value waits forever) for child pid to exit and
 * reaps it. On success stores the raw waitpid status in *status (if not NULL; decode
 * with WIFEXITED/WEXITSTATUS) and returns 0. Returns -1 on timeout (errno ETIMEDOUT,
 * the child is left running) or error (errno from waitpid, e.g. ECHILD). */
int tproc_wait(pid_t pid, int timeout_ms, int *status);

/* Sends SIGTERM to child pid and waits up to timeout_ms for it to exit; if it has not,
 * kills it with SIGKILL. Always reaps it. Returns 0 if it exited by itself with status
 * 0 (a graceful shutdown), 1 if it had to be killed, exited non-zero or died of a
 * signal (also of the SIGTERM itself, i.e. without a handler), -1 on error. */
int tproc_term(pid_t pid, int timeout_ms);

/* Kills child pid with SIGKILL and reaps it. Returns 0, or -1 with errno set. */
int tproc_kill(pid_t pid);

/* Calls cond(arg) every 20 ms until it returns non-zero (returns 0) or timeout_ms has
 * passed (returns -1). cond is always called at least once, and once more at the
 * deadline, on the calling thread. */
int tproc_wait_until(int (*cond)(void *arg), void *arg, int timeout_ms);

/* Creates a fresh directory $TMPDIR/saga-test-XXXXXX (or /tmp when TMPDIR is unset or
 * empty), mode 0700. Returns its path, which the caller frees with free(), or NULL
 * with errno set. */
char *tproc_mkdtemp(void);

/* Removes path and everything below it, without following symbolic links. A path
 * that does not exist counts as removed. Returns 0, or -1 with errno set. */
int tproc_rmrf(const char *path);

/* Milliseconds on the monotonic clock, for deadlines. */
int64_t tproc_now_ms(void);

#endif /* SAGA_TEST_PROC_H */
