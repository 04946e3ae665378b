/* proc.h - child processes, temporary directories and condition waits for the tests. */
#ifndef SAGA_TEST_PROC_H
#define SAGA_TEST_PROC_H

#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>

#include "fleet.h"

/* The tests' names for the launcher's process functions (tools/fleet/fleet.h says
 * what each does). Every child is FLEET_TIED: it is killed with SIGKILL when the thread
 * that spawned it exits, so a test never leaves a process behind; spawn from a thread
 * that outlives the child, normally main. */
static inline pid_t tproc_spawn(const char *const argv[], const char *const env[],
                                const char *log_path)
{
    return fleet_spawn(argv, env, log_path, FLEET_TIED);
}

static inline int tproc_wait(pid_t pid, int timeout_ms, int *status)
{
    return fleet_pid_wait(pid, timeout_ms, status);
}

static inline int tproc_term(pid_t pid, int timeout_ms)
{
    return fleet_pid_term(pid, timeout_ms);
}

static inline int tproc_kill(pid_t pid)
{
    return fleet_pid_kill(pid);
}

static inline int tproc_wait_until(int (*cond)(void *arg), void *arg, int timeout_ms)
{
    return fleet_wait_until(cond, arg, timeout_ms);
}

/* A fresh directory $TMPDIR/saga-test-XXXXXX; the caller frees the path. */
static inline char *tproc_mkdtemp(void)
{
    return fleet_mkdtemp("saga-test");
}

static inline int tproc_rmrf(const char *path)
{
    return fleet_rmrf(path);
}

static inline int64_t tproc_now_ms(void)
{
    return fleet_now_ms();
}

/* A positive whole number from the environment variable name (a test's size,
 * e.g. CHAOS_ORDERS), or def when it is unset or not one. */
static inline long tproc_env_long(const char *name, long def)
{
    const char *v = getenv(name);
    char *end;
    if (v == NULL || *v == '\0')
        return def;
    long x = strtol(v, &end, 10);
    return *end == '\0' && x > 0 ? x : def;
}

#endif /* SAGA_TEST_PROC_H */
