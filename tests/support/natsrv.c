/* natsrv.c - a real nats-server with JetStream on a free port in a temp directory, for tests. */
#include "natsrv.h"

#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

/* CMake passes the path it found at configure time; this default only serves a
 * hand-compiled test on a Debian system. */
#ifndef SAGA_NATS_SERVER
#define SAGA_NATS_SERVER "/usr/sbin/nats-server"
#endif

enum {
    READY_TIMEOUT_MS = 20000, /* Generous: a loaded CI machine may start slowly. */
    STOP_TIMEOUT_MS = 10000,  /* SIGTERM grace before SIGKILL. */
    PROBE_TIMEOUT_MS = 1000,  /* One connect or JetStream request while probing. */
    RESPAWN_PAUSE_MS = 50,    /* Between attempts to bind a port still taken. */
    START_ATTEMPTS = 5,       /* Fresh ports to try before giving up. */
    LOG_CHUNK = 4096,         /* Read size when scanning the log. */
    LOG_TAIL_BYTES = 4096,    /* How much of the log a failure shows. */
    PATH_CAP = 4096,          /* Longest path we build (PATH_MAX on Linux). */
};

/* nats-server 2.9 logs these; the first tells that this very process holds the port
 * (a probe alone could reach another server that grabbed the same port), the second
 * is how it reports that it could not bind. */
static const char LOG_READY[] = "Server is ready";
static const char LOG_PORT_TAKEN[] = "address already in use";

struct tsrv {
    char *dir; /* From tproc_mkdtemp; removed and freed by tsrv_destroy. */
    char conf[PATH_CAP];
    char log[PATH_CAP];
    char url[64];
    int port;
    pid_t pid; /* -1 when not running. */
};

/* Asks the kernel for a port nobody listens on. Someone may take it before the server
 * binds it; launch() notices and tries another. Returns the port or -1. */
static int free_port(void)
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
    sa.sin_port = 0;
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

static int write_config(const tsrv *s)
{
    FILE *f = NULL;
    int rc = -1;

    /* The path goes into a quoted string of the config; refuse what would break it. */
    if (strpbrk(s->dir, "\"\\\n") != NULL) {
        fprintf(stderr, "natsrv: unusable temporary directory name: %s\n", s->dir);
        goto out;
    }
    f = fopen(s->conf, "w");
    if (f == NULL)
        goto out;
    fprintf(f,
            "# Written by tests/support/natsrv.c for one test run.\n"
            "listen: 127.0.0.1:%d\n"
            "jetstream {\n"
            "  store_dir: \"%s/js\"\n"
            "  max_memory_store: 256MB\n"
            "  max_file_store: 2GB\n"
            "}\n",
            s->port, s->dir);
    if (ferror(f))
        goto out;
    rc = 0;
out:
    if (f != NULL && fclose(f) != 0)
        rc = -1;
    if (rc != 0)
        fprintf(stderr, "natsrv: cannot write %s: %s\n", s->conf, strerror(errno));
    return rc;
}

static off_t file_size(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? st.st_size : 0;
}

/* Whether the file contains needle at or after offset off. Reads in chunks, keeping
 * the last strlen(needle)-1 bytes so a match across chunks is not missed. */
static int file_contains(const char *path, off_t off, const char *needle)
{
    char buf[LOG_CHUNK + 1];
    size_t nlen = strlen(needle);
    size_t keep = 0;
    size_t len;
    ssize_t n;
    int found = 0;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    if (lseek(fd, off, SEEK_SET) < 0)
        goto out;
    for (;;) {
        n = read(fd, buf + keep, LOG_CHUNK - keep);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len = keep + (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, needle) != NULL) {
            found = 1;
            break;
        }
        keep = nlen - 1 < len ? nlen - 1 : len;
        memmove(buf, buf + len - keep, keep);
    }
out:
    close(fd);
    return found;
}

/* Prints why the server failed and the end of its log, which holds the real reason. */
static void print_log_tail(const tsrv *s, const char *why)
{
    char buf[LOG_TAIL_BYTES + 1];
    off_t size = file_size(s->log);
    off_t start = size > LOG_TAIL_BYTES ? size - LOG_TAIL_BYTES : 0;
    ssize_t n = -1;
    const char *text = buf;
    int fd;

    fd = open(s->log, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        n = pread(fd, buf, LOG_TAIL_BYTES, start);
        close(fd);
    }
    buf[n > 0 ? n : 0] = '\0';
    /* Start at a line boundary when the tail begins mid-line. */
    if (start > 0 && strchr(buf, '\n') != NULL)
        text = strchr(buf, '\n') + 1;
    fprintf(stderr, "natsrv: nats-server on port %d %s; end of %s:\n%s\n", s->port, why, s->log,
            text);
}

/* One probe: a fresh connection without reconnects, and a JetStream request, so
 * "ready" means what tests need, not just an open port. */
static int jetstream_answers(const char *url)
{
    natsOptions *opts = NULL;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsAccountInfo *ai = NULL;
    jsOptions jo;
    int ok = 0;

    if (natsOptions_Create(&opts) != NATS_OK)
        goto out;
    if (natsOptions_SetURL(opts, url) != NATS_OK ||
        natsOptions_SetTimeout(opts, PROBE_TIMEOUT_MS) != NATS_OK ||
        natsOptions_SetAllowReconnect(opts, false) != NATS_OK)
        goto out;
    if (natsConnection_Connect(&nc, opts) != NATS_OK)
        goto out;
    if (natsConnection_JetStream(&js, nc, NULL) != NATS_OK)
        goto out;
    if (jsOptions_Init(&jo) != NATS_OK)
        goto out;
    jo.Wait = PROBE_TIMEOUT_MS;
    if (js_GetAccountInfo(&ai, js, &jo, NULL) != NATS_OK)
        goto out;
    ok = 1;
out:
    if (ai != NULL)
        jsAccountInfo_Destroy(ai);
    if (js != NULL)
        jsCtx_Destroy(js);
    if (nc != NULL)
        natsConnection_Destroy(nc);
    if (opts != NULL)
        natsOptions_Destroy(opts);
    return ok;
}

struct probe {
    tsrv *s;
    off_t log_off; /* Where this run of the server starts in the shared log. */
    int exited;
    int ready;
};

static int probe_server(void *arg)
{
    struct probe *p = arg;

    if (tproc_wait(p->s->pid, 0, NULL) == 0 || errno != ETIMEDOUT) {
        p->s->pid = -1;
        p->exited = 1;
        return 1;
    }
    p->ready = file_contains(p->s->log, p->log_off, LOG_READY) && jetstream_answers(p->s->url);
    return p->ready;
}

static void pause_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Starts nats-server on s->conf and waits until it is ready. A server that exits
 * because its port is taken is started again until the deadline: on a fresh port when
 * new_port (at most START_ATTEMPTS times), else on the same port, as a restart must.
 * Returns 0 with s->pid set, or -1 with the server not running. */
static int launch(tsrv *s, int new_port)
{
    const char *argv[] = {SAGA_NATS_SERVER, "-c", s->conf, NULL};
    int64_t deadline = tproc_now_ms() + READY_TIMEOUT_MS;
    int64_t left;
    struct probe p;
    int attempt;

    for (attempt = 1;; attempt++) {
        if (new_port) {
            s->port = free_port();
            if (s->port < 0) {
                fprintf(stderr, "natsrv: no free port: %s\n", strerror(errno));
                return -1;
            }
            snprintf(s->url, sizeof s->url, "nats://127.0.0.1:%d", s->port);
            if (write_config(s) != 0)
                return -1;
        }
        memset(&p, 0, sizeof p);
        p.s = s;
        p.log_off = file_size(s->log);
        s->pid = tproc_spawn(argv, NULL, s->log);
        if (s->pid < 0) {
            fprintf(stderr, "natsrv: cannot start %s: %s\n", SAGA_NATS_SERVER, strerror(errno));
            return -1;
        }
        left = deadline - tproc_now_ms();
        if (tproc_wait_until(probe_server, &p, left > 0 ? (int)left : 0) == 0 && p.ready)
            return 0;
        if (!p.exited) {
            tproc_kill(s->pid);
            s->pid = -1;
            print_log_tail(s, "was not ready within 20 s");
            return -1;
        }
        if (!file_contains(s->log, p.log_off, LOG_PORT_TAKEN)) {
            print_log_tail(s, "exited before it was ready");
            return -1;
        }
        if ((new_port && attempt >= START_ATTEMPTS) || tproc_now_ms() >= deadline) {
            print_log_tail(s, "could not bind its port");
            return -1;
        }
        if (!new_port)
            pause_ms(RESPAWN_PAUSE_MS);
    }
}

int tsrv_start(tsrv **out)
{
    tsrv *s = NULL;
    int n;

    if (out == NULL)
        return -1;
    s = calloc(1, sizeof *s);
    if (s == NULL)
        goto fail;
    s->pid = -1;
    s->dir = tproc_mkdtemp();
    if (s->dir == NULL) {
        fprintf(stderr, "natsrv: cannot create a temporary directory: %s\n", strerror(errno));
        goto fail;
    }
    n = snprintf(s->conf, sizeof s->conf, "%s/nats.conf", s->dir);
    if (n < 0 || (size_t)n >= sizeof s->conf)
        goto fail;
    n = snprintf(s->log, sizeof s->log, "%s/nats.log", s->dir);
    if (n < 0 || (size_t)n >= sizeof s->log)
        goto fail;
    if (launch(s, 1) != 0)
        goto fail;
    *out = s;
    return 0;
fail:
    tsrv_destroy(s);
    return -1;
}

int tsrv_stop(tsrv *s)
{
    int rc;

    if (s == NULL)
        return -1;
    if (s->pid <= 0)
        return 0;
    /* nats-server shuts down JetStream cleanly on SIGTERM and then exits with status 1,
     * so any exit before the deadline is a clean stop. */
    if (kill(s->pid, SIGTERM) != 0)
        rc = -1;
    else if (tproc_wait(s->pid, STOP_TIMEOUT_MS, NULL) == 0)
        rc = 0;
    else if (errno == ETIMEDOUT)
        rc = tproc_kill(s->pid) == 0 ? 1 : -1;
    else
        rc = -1;
    s->pid = -1;
    return rc;
}

int tsrv_kill(tsrv *s)
{
    int rc;

    if (s == NULL)
        return -1;
    if (s->pid <= 0)
        return 0;
    rc = tproc_kill(s->pid);
    s->pid = -1;
    return rc;
}

int tsrv_restart(tsrv *s)
{
    if (s == NULL)
        return -1;
    if (s->pid > 0 && tsrv_stop(s) < 0)
        return -1;
    return launch(s, 0);
}

void tsrv_destroy(tsrv *s)
{
    if (s == NULL)
        return;
    tsrv_stop(s);
    if (s->dir != NULL && tproc_rmrf(s->dir) != 0)
        fprintf(stderr, "natsrv: cannot remove %s: %s\n", s->dir, strerror(errno));
    free(s->dir);
    free(s);
}

const char *tsrv_url(const tsrv *s)
{
    return s->url;
}

int tsrv_port(const tsrv *s)
{
    return s->port;
}

const char *tsrv_dir(const tsrv *s)
{
    return s->dir;
}

pid_t tsrv_pid(const tsrv *s)
{
    return s->pid;
}
