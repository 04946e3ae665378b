/* fleet.c - The processes saga-bench measures: a nats-server on a free port in
 * a temporary directory and the five participants (the real services or the
 * saga-ceiling roles), started, waited on, sampled from /proc and stopped so
 * that nothing is left running, also after Ctrl-C or a crash of saga-bench. */
#define _GNU_SOURCE /* close_range */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#ifndef BENCH_NATS_SERVER
#define BENCH_NATS_SERVER "/usr/sbin/nats-server"
#endif

#define SERVER_READY_MS 20000
#define SERVICE_READY_MS 60000
#define SERVICE_STOP_MS 30000
#define SERVER_STOP_MS 10000
#define START_ATTEMPTS 5 /* fresh ports to try when another process took ours */
#define POLL_MS 20
#define ENV_MAX 32
/* The services must never cancel an order of a long run by deadline. */
#define ORDER_DEADLINE_ENV "ORDER_DEADLINE_MS=86400000"

const char *const bench_svc_names[BENCH_NSVC] = {"order", "payment", "inventory", "shipping",
                                                 "notification"};

extern char **environ;

int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- spawning ---------------------------------------------------------- */

/* The child's environment, built before fork: after fork in a threaded
 * process only async-signal-safe calls are allowed. The caller frees the
 * array; the strings stay owned by environ and extra. */
static char **build_env(const char *const *extra)
{
    size_t n = 0, k = 0, x = 0;
    while (environ[n] != NULL)
        n++;
    while (extra != NULL && extra[x] != NULL)
        x++;
    char **env = calloc(n + x + 1, sizeof(*env));
    if (env == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t klen = eq != NULL ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        int overridden = 0;
        for (size_t j = 0; j < x && !overridden; j++)
            overridden = strncmp(extra[j], environ[i], klen) == 0 && extra[j][klen] == '=';
        if (!overridden)
            env[k++] = environ[i];
    }
    for (size_t j = 0; j < x; j++)
        env[k++] = (char *)extra[j];
    env[k] = NULL;
    return env;
}

/* Starts argv[0] with stdout and stderr appended to log. Returns the pid or -1. */
static pid_t spawn(const char *const *argv, const char *const *extra_env, const char *log)
{
    pid_t parent = getpid();
    char **env = build_env(extra_env);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    pid_t pid = -1;
    if (env == NULL || fd < 0)
        goto out;
    pid = fork();
    if (pid == 0) {
        sigset_t none;
        /* Killed with saga-bench however it ends; its own group keeps a
         * terminal's Ctrl-C away, so saga-bench stops the fleet in order. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(127);
        setpgid(0, 0);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        (void)close_range(3, ~0U, 0);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(argv[0], (char *const *)argv, env);
        _exit(127);
    }
out:
    if (fd >= 0)
        close(fd);
    free(env);
    return pid;
}

/* Reaps pid if it has exited. Returns 1 when it has (status in *status). */
static int reaped(pid_t pid, int *status)
{
    pid_t r;
    do {
        r = waitpid(pid, status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    return r == pid || (r < 0 && errno == ECHILD);
}

/* SIGTERM to every owned process in procs, then waits up to ms for them all
 * and SIGKILLs the rest. Returns 0 if all exited by themselves with status 0
 * (nats-server exits 1 on SIGTERM: clean_status 1 accepts that). */
static int stop_procs(bench_proc **procs, int n, int ms, int clean_status)
{
    int rc = 0, left = 0;
    int done[BENCH_MAXPROC] = {0};
    for (int i = 0; i < n; i++)
        if (procs[i]->pid > 0 && kill(procs[i]->pid, SIGTERM) == 0)
            left++;
        else
            done[i] = 1;
    int64_t deadline = bench_now_ns() + (int64_t)ms * 1000000;
    while (left > 0) {
        for (int i = 0; i < n; i++) {
            int status = 0;
            if (done[i] || !reaped(procs[i]->pid, &status))
                continue;
            done[i] = 1;
            left--;
            if (!WIFEXITED(status) ||
                (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != clean_status)) {
                fprintf(stderr, "saga-bench: %s (pid %d) did not exit cleanly (status 0x%x)\n",
                        procs[i]->name, (int)procs[i]->pid, status);
                rc = 1;
            }
            procs[i]->pid = -1;
        }
        if (left == 0)
            break;
        if (bench_now_ns() > deadline) {
            for (int i = 0; i < n; i++) {
                if (done[i])
                    continue;
                fprintf(stderr, "saga-bench: %s (pid %d) ignored SIGTERM: killed\n", procs[i]->name,
                        (int)procs[i]->pid);
                kill(procs[i]->pid, SIGKILL);
                while (waitpid(procs[i]->pid, NULL, 0) < 0 && errno == EINTR) {
                }
                procs[i]->pid = -1;
                rc = 1;
            }
            break;
        }
        sleep_ms(POLL_MS);
    }
    return rc;
}

/* ---- nats-server -------------------------------------------------------- */

static int free_port(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int port = -1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

/* The file store may take most of the free disk: a long growth run keeps
 * every event (the stream's MaxAge is a week). */
static int write_config(const bench_fleet *f, int port, const char *conf)
{
    struct statvfs vfs;
    long long store_mb = 4096;
    if (statvfs(f->dir, &vfs) == 0)
        store_mb = (long long)((double)vfs.f_bavail * (double)vfs.f_frsize * 0.8 / 1048576.0);
    if (store_mb < 1024)
        store_mb = 1024;
    FILE *fp = fopen(conf, "w");
    if (fp == NULL)
        return -1;
    fprintf(fp,
            "# Written by saga-bench for one measurement; as deploy/nats.conf, one server.\n"
            "listen: 127.0.0.1:%d\n"
            "max_payload: 1MB\n"
            "write_deadline: \"10s\"\n"
            "jetstream {\n"
            "  store_dir: \"%s/js\"\n"
            "  max_memory_store: 256MB\n"
            "  max_file_store: %lldMB\n"
            "}\n",
            port, f->dir, store_mb);
    return fclose(fp) == 0 ? 0 : -1;
}

/* Connected and JetStream answering: the server is ready. */
static int server_answers(const char *url)
{
    natsConnection *nc = NULL;
    natsOptions *o = NULL;
    jsCtx *js = NULL;
    jsAccountInfo *ai = NULL;
    int ok = 0;
    if (natsOptions_Create(&o) == NATS_OK && natsOptions_SetURL(o, url) == NATS_OK &&
        natsOptions_SetTimeout(o, 500) == NATS_OK && natsConnection_Connect(&nc, o) == NATS_OK &&
        natsConnection_JetStream(&js, nc, NULL) == NATS_OK &&
        js_GetAccountInfo(&ai, js, NULL, NULL) == NATS_OK)
        ok = 1;
    jsAccountInfo_Destroy(ai);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(o);
    return ok;
}

static int start_server(bench_fleet *f, char *err, size_t errlen)
{
    char conf[BENCH_PATH_MAX + 16], log[BENCH_PATH_MAX + 16];
    bench_proc *p = &f->proc[0];
    snprintf(conf, sizeof(conf), "%s/nats.conf", f->dir);
    snprintf(log, sizeof(log), "%s/nats.log", f->dir);
    snprintf(p->name, sizeof(p->name), "nats-server");
    p->owned = 1;
    p->pid = -1;
    f->nproc = 1;
    for (int attempt = 0; attempt < START_ATTEMPTS && !bench_interrupted; attempt++) {
        int port = free_port();
        if (port < 0 || write_config(f, port, conf) != 0)
            break;
        snprintf(f->url, sizeof(f->url), "nats://127.0.0.1:%d", port);
        const char *argv[] = {BENCH_NATS_SERVER, "-c", conf, NULL};
        p->pid = spawn(argv, NULL, log);
        if (p->pid < 0)
            break;
        int64_t deadline = bench_now_ns() + (int64_t)SERVER_READY_MS * 1000000;
        while (!bench_interrupted && bench_now_ns() < deadline) {
            int status;
            if (reaped(p->pid, &status)) {
                p->pid = -1; /* most likely the port was taken: try another */
                break;
            }
            if (server_answers(f->url))
                return 0;
            sleep_ms(50);
        }
        if (p->pid > 0) {
            bench_proc *one[] = {p};
            stop_procs(one, 1, SERVER_STOP_MS, 1);
        }
    }
    snprintf(err, errlen, "nats-server did not start (see %s)", log);
    return -1;
}

/* ---- participants ------------------------------------------------------ */

/* One request on saga.ctl.<name>.stats; copies the reply into buf. */
static int ask_stats(natsConnection *nc, const char *name, char *buf, size_t len, int timeout_ms)
{
    char subject[96];
    natsMsg *m = NULL;
    snprintf(subject, sizeof(subject), "saga.ctl.%s.stats", name);
    if (natsConnection_RequestString(&m, nc, subject, "", timeout_ms) != NATS_OK)
        return -1;
    snprintf(buf, len, "%.*s", natsMsg_GetDataLength(m), natsMsg_GetData(m));
    natsMsg_Destroy(m);
    return 0;
}

static int start_participants(bench_fleet *f, const bench_fleet_cfg *cfg, char *err, size_t errlen)
{
    natsConnection *nc = NULL;
    char url[192], dir[BENCH_PATH_MAX + 32], spool[BENCH_PATH_MAX + 32], exe[BENCH_PATH_MAX];
    char log[BENCH_PATH_MAX + 32], reply[1024];
    int rc = -1;

    if (natsConnection_ConnectTo(&nc, f->url) != NATS_OK) {
        snprintf(err, errlen, "cannot connect to %s", f->url);
        return -1;
    }
    for (int i = 0; i < BENCH_NSVC; i++) {
        bench_proc *p = &f->proc[f->nproc];
        const char *env[ENV_MAX];
        int n = 0;
        snprintf(p->name, sizeof(p->name), "%s", bench_svc_names[i]);
        p->owned = 1;
        p->pid = -1;
        f->nproc++;
        snprintf(url, sizeof(url), "SAGA_NATS_URL=%s", f->url);
        /* Through a local: GCC sees f->dir and p->data_dir as one object. */
        char ddir[sizeof(p->data_dir)];
        snprintf(ddir, sizeof(ddir), "%s/data/%s", f->dir, bench_svc_names[i]);
        memcpy(p->data_dir, ddir, sizeof(ddir));
        snprintf(dir, sizeof(dir), "SAGA_DATA_DIR=%s", p->data_dir);
        snprintf(spool, sizeof(spool), "NOTIF_SPOOL_DIR=%s/mail", f->dir);
        snprintf(log, sizeof(log), "%s/%s.log", f->dir, p->name);
        env[n++] = url;
        env[n++] = dir;
        env[n++] = spool;
        env[n++] = ORDER_DEADLINE_ENV;
        for (int k = 0; cfg->env != NULL && cfg->env[k] != NULL && n < ENV_MAX - 1; k++)
            env[n++] = cfg->env[k];
        env[n] = NULL;
        const char *argv_svc[] = {exe, NULL};
        const char *argv_ceil[] = {cfg->ceiling_exe, "--role", p->name, NULL};
        if (cfg->ceiling_exe != NULL) {
            p->data_dir[0] = '\0'; /* no LMDB */
            p->pid = spawn(argv_ceil, env, log);
        } else {
            snprintf(exe, sizeof(exe), "%s/services/saga-%s", cfg->build_dir, p->name);
            p->pid = spawn(argv_svc, env, log);
        }
        if (p->pid < 0) {
            snprintf(err, errlen, "cannot start %s: %s", p->name, strerror(errno));
            goto out;
        }
    }
    /* All start at once; then each must answer (its consumers exist by then). */
    for (int i = 1; i < f->nproc; i++) {
        bench_proc *p = &f->proc[i];
        int64_t deadline = bench_now_ns() + (int64_t)SERVICE_READY_MS * 1000000;
        for (;;) {
            int status;
            if (ask_stats(nc, p->name, reply, sizeof(reply), 500) == 0)
                break;
            if (reaped(p->pid, &status)) {
                p->pid = -1;
                snprintf(err, errlen, "%s exited at start (status 0x%x, see %s/%s.log)", p->name,
                         status, f->dir, p->name);
                goto out;
            }
            if (bench_interrupted || bench_now_ns() > deadline) {
                snprintf(err, errlen, "%s did not answer saga.ctl.%s.stats", p->name, p->name);
                goto out;
            }
        }
    }
    rc = 0;
out:
    natsConnection_Destroy(nc);
    return rc;
}

static void add_self(bench_fleet *f)
{
    bench_proc *p = &f->proc[f->nproc++];
    snprintf(p->name, sizeof(p->name), "saga-bench");
    p->pid = getpid();
    p->owned = 0;
    p->data_dir[0] = '\0';
}

int bench_fleet_start(bench_fleet *f, const bench_fleet_cfg *cfg, char *err, size_t errlen)
{
    const char *tmp = getenv("TMPDIR");
    memset(f, 0, sizeof(*f));
    f->keep = cfg->keep;
    snprintf(f->dir, sizeof(f->dir), "%s/saga-bench-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(f->dir) == NULL) {
        snprintf(err, errlen, "mkdtemp %s: %s", f->dir, strerror(errno));
        f->dir[0] = '\0';
        return -1;
    }
    if (start_server(f, err, errlen) != 0 || start_participants(f, cfg, err, errlen) != 0) {
        f->keep = 1; /* the logs say why */
        fprintf(stderr, "saga-bench: logs kept in %s\n", f->dir);
        bench_fleet_stop(f);
        return -1;
    }
    add_self(f);
    return 0;
}

/* "pid":1234 in a stats reply. */
static pid_t pid_of_reply(const char *reply)
{
    const char *p = strstr(reply, "\"pid\":");
    if (p == NULL)
        return -1;
    char *end = NULL;
    long v = strtol(p + 6, &end, 10);
    return end != p + 6 && v > 0 ? (pid_t)v : -1;
}

/* SAGA_DATA_DIR from a local process's environment, when readable. */
static void data_dir_of(pid_t pid, char *out, size_t len)
{
    char path[64], buf[65536];
    out[0] = '\0';
    snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    for (ssize_t i = 0; i < n;) {
        const char *s = buf + i;
        size_t l = strnlen(s, (size_t)(n - i));
        if (strncmp(s, "SAGA_DATA_DIR=", 14) == 0)
            snprintf(out, len, "%.*s", (int)(l - 14), s + 14);
        i += (ssize_t)l + 1;
    }
}

int bench_fleet_attach(bench_fleet *f, const char *url, char *err, size_t errlen)
{
    natsConnection *nc = NULL;
    char reply[1024];
    memset(f, 0, sizeof(*f));
    snprintf(f->url, sizeof(f->url), "%s", url);
    if (natsConnection_ConnectTo(&nc, url) != NATS_OK) {
        snprintf(err, errlen, "cannot connect to %s", url);
        return -1;
    }
    for (int i = 0; i < BENCH_NSVC; i++) {
        bench_proc *p = &f->proc[f->nproc++];
        snprintf(p->name, sizeof(p->name), "%s", bench_svc_names[i]);
        p->owned = 0;
        p->pid = -1;
        if (ask_stats(nc, p->name, reply, sizeof(reply), 2000) != 0) {
            snprintf(err, errlen, "%s does not answer saga.ctl.%s.stats at %s", p->name, p->name,
                     url);
            natsConnection_Destroy(nc);
            return -1;
        }
        /* Only a process of this host with that pid can be sampled. */
        char comm[64], path[64];
        pid_t pid = pid_of_reply(reply);
        snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
        FILE *fp = pid > 0 ? fopen(path, "r") : NULL;
        if (fp != NULL && fgets(comm, sizeof(comm), fp) != NULL && strncmp(comm, "saga-", 5) == 0) {
            p->pid = pid;
            data_dir_of(pid, p->data_dir, sizeof(p->data_dir));
        }
        if (fp != NULL)
            fclose(fp);
    }
    natsConnection_Destroy(nc);
    add_self(f);
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

int bench_fleet_stop(bench_fleet *f)
{
    bench_proc *svcs[BENCH_MAXPROC];
    int n = 0, rc = 0;
    for (int i = 0; i < f->nproc; i++)
        if (f->proc[i].owned && strcmp(f->proc[i].name, "nats-server") != 0)
            svcs[n++] = &f->proc[i];
    rc |= stop_procs(svcs, n, SERVICE_STOP_MS, 0);
    if (f->nproc > 0 && f->proc[0].owned) {
        bench_proc *srv[] = {&f->proc[0]};
        rc |= stop_procs(srv, 1, SERVER_STOP_MS, 1);
    }
    if (f->dir[0] != '\0') {
        if (f->keep)
            fprintf(stderr, "saga-bench: kept %s\n", f->dir);
        else {
            /* After a long run this is a million spool files: say so. */
            fprintf(stderr, "saga-bench: removing %s\n", f->dir);
            nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        }
        f->dir[0] = '\0';
    }
    f->nproc = 0;
    return rc;
}
