/* proc.c - child processes, temporary directories, ports and condition waits of the
 * fleet launcher (fleet.h). */

/* pipe2(O_CLOEXEC), close_range and the nftw flags are GNU/XSI extensions; the build
 * only asks for POSIX 2008, so ask for them here, before any system header. */
#define _GNU_SOURCE

#include "fleet.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

enum {
    WAIT_POLL_MS = 10, /* How often fleet_pid_wait looks at the child. */
    COND_POLL_MS = 20, /* How often fleet_wait_until evaluates its condition. */
    RMRF_MAX_FDS = 16, /* Directory descriptors nftw may hold open at once. */
};

int64_t fleet_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps ms milliseconds, resuming after signals so that a poll interval stays one. */
static void sleep_ms(int64_t ms)
{
    struct timespec ts;

    if (ms <= 0)
        return;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Length of the KEY part of "KEY=VALUE". */
static size_t key_len(const char *kv)
{
    const char *eq = strchr(kv, '=');

    return eq != NULL ? (size_t)(eq - kv) : strlen(kv);
}

static int is_overridden(const char *var, const char *const env[])
{
    size_t len = key_len(var);

    for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
        if (key_len(env[i]) == len && strncmp(var, env[i], len) == 0)
            return 1;
    }
    return 0;
}

/* Builds the child's environment in the parent, because after fork() in a threaded
 * process (cnats runs threads) only async-signal-safe calls are allowed, and malloc is
 * not one. The array is the caller's to free; the strings stay owned by environ/env. */
static char **build_env(const char *const env[])
{
    size_t n_inherited = 0;
    size_t n_extra = 0;
    size_t n = 0;
    char **envp = NULL;

    while (environ != NULL && environ[n_inherited] != NULL)
        n_inherited++;
    for (; env != NULL && env[n_extra] != NULL; n_extra++) {
        if (strchr(env[n_extra], '=') == NULL || env[n_extra][0] == '=') {
            errno = EINVAL;
            return NULL;
        }
    }
    envp = calloc(n_inherited + n_extra + 1, sizeof *envp);
    if (envp == NULL)
        return NULL;
    for (size_t i = 0; i < n_inherited; i++) {
        if (!is_overridden(environ[i], env))
            envp[n++] = environ[i];
    }
    /* Of two entries with the same name, the later one: getenv would find the first. */
    for (size_t i = 0; i < n_extra; i++)
        if (!is_overridden(env[i], env + i + 1))
            envp[n++] = (char *)env[i];
    envp[n] = NULL;
    return envp;
}

/* Runs in the forked child: only async-signal-safe calls from here on. Reports an
 * errno through errfd if the program cannot be started; never returns. */
static void child_exec(const char *const argv[], char **envp, int logfd, int nullfd, int errfd,
                       pid_t parent, int flags)
{
    sigset_t none;
    int err;
    ssize_t written;

    /* A tied child must never outlive its parent (a test, the benchmark), whatever way
     * that ends. */
    if ((flags & FLEET_TIED) != 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
            goto fail;
        /* The parent may have died before prctl took effect; then no signal will come. */
        if (getppid() != parent)
            _exit(127);
    }
    /* A detached child leaves the terminal's session: no Ctrl-C, no hang-up with it. */
    if ((flags & FLEET_DETACHED) != 0 && setsid() < 0)
        goto fail;
    else if ((flags & FLEET_OWN_GROUP) != 0 && setpgid(0, 0) != 0)
        goto fail;
    if (nullfd >= 0 && dup2(nullfd, STDIN_FILENO) < 0)
        goto fail;
    if (logfd >= 0) {
        if (dup2(logfd, STDOUT_FILENO) < 0 || dup2(logfd, STDERR_FILENO) < 0)
            goto fail;
    }
    /* Descriptors the test holds without O_CLOEXEC (client sockets, say) must not leak
     * into the child, or closing them in the test would not close the connection. This
     * is best effort: on a kernel without close_range the child simply keeps them. */
    if (errfd > 3)
        (void)close_range(3, (unsigned int)errfd - 1, 0);
    (void)close_range((unsigned int)errfd + 1, ~0U, 0);
    /* Ignored signals and the signal mask survive exec; start the child clean. */
    signal(SIGPIPE, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(argv[0], (char *const *)argv, envp);
fail:
    err = errno;
    written = write(errfd, &err, sizeof err);
    (void)written;
    _exit(127);
}

pid_t fleet_spawn(const char *const argv[], const char *const env[], const char *log_path,
                  int flags)
{
    pid_t pid = -1;
    pid_t child;
    pid_t parent = getpid();
    int logfd = -1;
    int nullfd = -1;
    int errpipe[2] = {-1, -1};
    char **envp = NULL;
    int child_err = 0;
    ssize_t n;
    int saved_errno;

    if (argv == NULL || argv[0] == NULL) {
        errno = EINVAL;
        goto out;
    }
    envp = build_env(env);
    if (envp == NULL)
        goto out;
    if (log_path != NULL) {
        logfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (logfd < 0)
            goto out;
    }
    if ((flags & FLEET_DETACHED) != 0) {
        nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (nullfd < 0)
            goto out;
    }
    /* The child writes its exec errno here; a successful exec closes the pipe (CLOEXEC),
     * so the parent reads end-of-file and knows the program is running. */
    if (pipe2(errpipe, O_CLOEXEC) != 0)
        goto out;
    child = fork();
    if (child < 0)
        goto out;
    if (child == 0)
        child_exec(argv, envp, logfd, nullfd, errpipe[1], parent, flags);

    close(errpipe[1]);
    errpipe[1] = -1;
    do {
        n = read(errpipe[0], &child_err, sizeof child_err);
    } while (n < 0 && errno == EINTR);
    if (n != 0) {
        /* Either the exec failed or we cannot tell: do not hand out a doubtful child. */
        if (n != (ssize_t)sizeof child_err)
            child_err = n < 0 ? errno : EIO;
        kill(child, SIGKILL);
        while (waitpid(child, NULL, 0) < 0 && errno == EINTR) {
        }
        errno = child_err;
        goto out;
    }
    pid = child;
out:
    saved_errno = errno;
    if (errpipe[0] >= 0)
        close(errpipe[0]);
    if (errpipe[1] >= 0)
        close(errpipe[1]);
    if (logfd >= 0)
        close(logfd);
    if (nullfd >= 0)
        close(nullfd);
    free(envp);
    errno = saved_errno;
    return pid;
}

int fleet_pid_wait(pid_t pid, int timeout_ms, int *status)
{
    int64_t deadline = fleet_now_ms() + timeout_ms;
    int st = 0;
    pid_t r;

    /* pid <= 0 would wait for a whole process group or any child: never what a test means. */
    if (pid <= 0) {
        errno = EINVAL;
        return -1;
    }
    for (;;) {
        r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR)
            return -1;
        if (timeout_ms >= 0 && fleet_now_ms() >= deadline) {
            errno = ETIMEDOUT;
            return -1;
        }
        sleep_ms(WAIT_POLL_MS);
    }
    if (status != NULL)
        *status = st;
    return 0;
}

int fleet_pid_kill(pid_t pid)
{
    /* kill(0 or -1, SIGKILL) would hit the process group or, as root, every process. */
    if (pid <= 0) {
        errno = EINVAL;
        return -1;
    }
    if (kill(pid, SIGKILL) != 0)
        return -1;
    while (waitpid(pid, NULL, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return 0;
}

int fleet_pid_term(pid_t pid, int timeout_ms)
{
    int status = 0;

    if (pid <= 0) {
        errno = EINVAL;
        return -1;
    }
    if (kill(pid, SIGTERM) != 0)
        return -1;
    if (fleet_pid_wait(pid, timeout_ms, &status) == 0)
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
    if (errno != ETIMEDOUT)
        return -1;
    return fleet_pid_kill(pid) == 0 ? 1 : -1;
}

int fleet_wait_until(int (*cond)(void *arg), void *arg, int timeout_ms)
{
    int64_t deadline = fleet_now_ms() + timeout_ms;
    int64_t left;

    for (;;) {
        if (cond(arg))
            return 0;
        left = deadline - fleet_now_ms();
        if (left <= 0)
            return -1;
        sleep_ms(left < COND_POLL_MS ? left : COND_POLL_MS);
    }
}

char *fleet_mkdtemp(const char *prefix)
{
    const char *base = getenv("TMPDIR");
    char *path = NULL;
    size_t size;
    int n;

    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    if (prefix == NULL)
        prefix = "saga-fleet";
    size = strlen(base) + strlen(prefix) + sizeof "/-XXXXXX";
    path = malloc(size);
    if (path == NULL)
        goto fail;
    n = snprintf(path, size, "%s/%s-XXXXXX", base, prefix);
    if (n < 0 || (size_t)n >= size) {
        errno = ENAMETOOLONG;
        goto fail;
    }
    if (mkdtemp(path) == NULL)
        goto fail;
    return path;
fail:
    free(path);
    return NULL;
}

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path);
}

int fleet_rmrf(const char *path)
{
    struct stat sb;

    if (path == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (lstat(path, &sb) != 0)
        return errno == ENOENT ? 0 : -1;
    /* Depth first so that directories are empty when removed; physical so that a
     * symbolic link is removed, never followed out of the tree. */
    return nftw(path, remove_entry, RMRF_MAX_FDS, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

int fleet_free_port(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    int fd;
    int port = -1;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto out;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        goto out;
    if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        goto out;
    port = ntohs(sa.sin_port);
out:
    if (fd >= 0)
        close(fd);
    return port;
}

int fleet_port_in_use(const char *host, int port)
{
    struct sockaddr_in sa;
    int fd;
    int used = 0;

    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    /* A host name other than localhost would need a resolver; the fleet listens on
     * addresses. */
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return 0;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    used = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return used;
}
