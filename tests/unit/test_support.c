/* test_support.c - the test helpers themselves: a real nats-server, child processes. */
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <nats/nats.h>

#include "natsrv.h"
#include "proc.h"

enum {
    WAIT_MS = 10000, /* Generous deadline for anything a test waits on. */
    FILE_CAP = 4096, /* Largest log a test reads back. */
};

static const char STREAM[] = "SUPPORT";

/* Everything a test may leave behind, so that teardown cleans up even when an
 * assertion jumps out of the test half way. */
struct fixture {
    tsrv *srv;
    tsrv *other;
    natsConnection *nc;
    jsCtx *js;
    pid_t child;
    char *tmp;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);

    if (f == NULL)
        return -1;
    f->child = -1;
    *state = f;
    return 0;
}

static void disconnect(struct fixture *f)
{
    if (f->js != NULL)
        jsCtx_Destroy(f->js);
    f->js = NULL;
    if (f->nc != NULL)
        natsConnection_Destroy(f->nc);
    f->nc = NULL;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    disconnect(f);
    if (f->child > 0)
        tproc_kill(f->child);
    tsrv_destroy(f->srv);
    tsrv_destroy(f->other);
    if (f->tmp != NULL)
        tproc_rmrf(f->tmp);
    free(f->tmp);
    free(f);
    return 0;
}

/* Connects without reconnects: these tests restart the server on purpose and want a
 * fresh connection afterwards, not a background reconnect racing the assertions. */
static void connect_js(struct fixture *f, const tsrv *s)
{
    natsOptions *opts = NULL;

    assert_int_equal(natsOptions_Create(&opts), NATS_OK);
    assert_int_equal(natsOptions_SetURL(opts, tsrv_url(s)), NATS_OK);
    assert_int_equal(natsOptions_SetAllowReconnect(opts, false), NATS_OK);
    assert_int_equal(natsConnection_Connect(&f->nc, opts), NATS_OK);
    natsOptions_Destroy(opts);
    assert_int_equal(natsConnection_JetStream(&f->js, f->nc, NULL), NATS_OK);
}

static void add_file_stream(jsCtx *js)
{
    const char *subjects[] = {"sup.>"};
    jsStreamConfig cfg;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;

    jsStreamConfig_Init(&cfg);
    cfg.Name = STREAM;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    assert_int_equal(js_AddStream(&si, js, &cfg, NULL, &jerr), NATS_OK);
    assert_int_equal(jerr, 0);
    jsStreamInfo_Destroy(si);
}

static void publish(jsCtx *js, const char *subject, const char *data, uint64_t want_seq)
{
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;

    assert_int_equal(js_Publish(&pa, js, subject, data, (int)strlen(data), NULL, &jerr), NATS_OK);
    assert_non_null(pa);
    assert_string_equal(pa->Stream, STREAM);
    assert_int_equal(pa->Sequence, want_seq);
    jsPubAck_Destroy(pa);
}

/* Reads one message from the stream's storage by sequence number. */
static void assert_stored(jsCtx *js, uint64_t seq, const char *data)
{
    natsMsg *msg = NULL;
    jsErrCode jerr = 0;

    assert_int_equal(js_GetMsg(&msg, js, STREAM, seq, NULL, &jerr), NATS_OK);
    assert_int_equal(natsMsg_GetDataLength(msg), (int)strlen(data));
    assert_memory_equal(natsMsg_GetData(msg), data, strlen(data));
    natsMsg_Destroy(msg);
}

static uint64_t stream_msgs(jsCtx *js)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    uint64_t n;

    assert_int_equal(js_GetStreamInfo(&si, js, STREAM, NULL, &jerr), NATS_OK);
    assert_int_equal(si->Config->Storage, js_FileStorage);
    n = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    return n;
}

static int process_gone(pid_t pid)
{
    return kill(pid, 0) == -1 && errno == ESRCH;
}

static int path_gone(const char *path)
{
    struct stat st;

    return lstat(path, &st) == -1 && errno == ENOENT;
}

/* Reads a small file into buf (NUL-terminated); returns its length or -1. */
static int read_file(const char *path, char *buf, size_t cap)
{
    FILE *fp = fopen(path, "r");
    size_t n;

    if (fp == NULL)
        return -1;
    n = fread(buf, 1, cap - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    return (int)n;
}

static int write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    int rc = 0;

    if (fp == NULL)
        return -1;
    if (fputs(text, fp) == EOF)
        rc = -1;
    if (fclose(fp) != 0)
        rc = -1;
    return rc;
}

struct file_has {
    const char *path;
    const char *needle;
    long from; /* Only text written after this offset counts. */
};

static int file_has(void *arg)
{
    const struct file_has *w = arg;
    char buf[FILE_CAP];
    FILE *fp = fopen(w->path, "r");
    size_t n = 0;

    if (fp == NULL)
        return 0;
    if (fseek(fp, w->from, SEEK_SET) == 0)
        n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    return strstr(buf, w->needle) != NULL;
}

static long file_len(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

static char *join(const char *dir, const char *name)
{
    size_t size = strlen(dir) + strlen(name) + 2;
    char *path = malloc(size);

    assert_non_null(path);
    assert_true(snprintf(path, size, "%s/%s", dir, name) == (int)size - 1);
    return path;
}

static void test_server_publish_and_consume(void **state)
{
    struct fixture *f = *state;
    jsSubOptions so;
    natsSubscription *sub = NULL;
    natsMsg *msg = NULL;
    jsErrCode jerr = 0;
    char want_url[64];

    assert_int_equal(tsrv_start(&f->srv), 0);
    assert_true(tsrv_pid(f->srv) > 0);
    assert_true(tsrv_port(f->srv) > 0);
    snprintf(want_url, sizeof want_url, "nats://127.0.0.1:%d", tsrv_port(f->srv));
    assert_string_equal(tsrv_url(f->srv), want_url);
    assert_non_null(strstr(tsrv_dir(f->srv), "/saga-test-"));

    connect_js(f, f->srv);
    add_file_stream(f->js);
    publish(f->js, "sup.one", "hello", 1);

    /* Read it back the way services do: a consumer with manual acks. */
    assert_int_equal(jsSubOptions_Init(&so), NATS_OK);
    so.ManualAck = true;
    assert_int_equal(js_SubscribeSync(&sub, f->js, "sup.>", NULL, &so, &jerr), NATS_OK);
    assert_int_equal(natsSubscription_NextMsg(&msg, sub, WAIT_MS), NATS_OK);
    assert_string_equal(natsMsg_GetSubject(msg), "sup.one");
    assert_int_equal(natsMsg_GetDataLength(msg), 5);
    assert_memory_equal(natsMsg_GetData(msg), "hello", 5);
    assert_int_equal(natsMsg_AckSync(msg, NULL, &jerr), NATS_OK);
    natsMsg_Destroy(msg);
    /* Stop consuming before destroying the subscription (cnats 3.4.1, issue #637). */
    assert_int_equal(natsSubscription_Unsubscribe(sub), NATS_OK);
    natsSubscription_Destroy(sub);
}

static void test_restart_keeps_file_stream(void **state)
{
    struct fixture *f = *state;
    pid_t first;
    int port;

    assert_int_equal(tsrv_start(&f->srv), 0);
    port = tsrv_port(f->srv);
    connect_js(f, f->srv);
    add_file_stream(f->js);
    publish(f->js, "sup.a", "before-restart", 1);
    disconnect(f);

    /* A graceful stop and restart: same port, same store, the stream recovered. */
    first = tsrv_pid(f->srv);
    assert_int_equal(tsrv_stop(f->srv), 0);
    assert_int_equal(tsrv_pid(f->srv), -1);
    assert_true(process_gone(first));
    assert_int_equal(tsrv_stop(f->srv), 0);
    assert_int_equal(tsrv_restart(f->srv), 0);
    assert_true(tsrv_pid(f->srv) > 0);
    assert_int_equal(tsrv_port(f->srv), port);
    connect_js(f, f->srv);
    assert_int_equal(stream_msgs(f->js), 1);
    assert_stored(f->js, 1, "before-restart");
    publish(f->js, "sup.b", "before-crash", 2);
    disconnect(f);

    /* A crash: a process killed with SIGKILL loses nothing that was acknowledged. */
    assert_int_equal(tsrv_kill(f->srv), 0);
    assert_int_equal(tsrv_pid(f->srv), -1);
    assert_int_equal(tsrv_restart(f->srv), 0);
    assert_int_equal(tsrv_port(f->srv), port);
    connect_js(f, f->srv);
    assert_int_equal(stream_msgs(f->js), 2);
    assert_stored(f->js, 1, "before-restart");
    assert_stored(f->js, 2, "before-crash");
    disconnect(f);

    /* Restarting a running server stops it first. */
    first = tsrv_pid(f->srv);
    assert_int_equal(tsrv_restart(f->srv), 0);
    assert_true(process_gone(first));
    connect_js(f, f->srv);
    assert_int_equal(stream_msgs(f->js), 2);
}

/* Holds a port with a listening socket until the server has been refused it once. */
struct port_holder {
    int fd;
    struct file_has refused;
    int saw_refusal;
};

static void *release_after_refusal(void *arg)
{
    struct port_holder *h = arg;

    h->saw_refusal = tproc_wait_until(file_has, &h->refused, 2 * WAIT_MS) == 0;
    close(h->fd);
    return NULL;
}

static void test_restart_waits_for_port(void **state)
{
    struct fixture *f = *state;
    struct port_holder h;
    struct sockaddr_in sa;
    pthread_t thread;
    char *log;
    int one = 1;
    int rc;

    assert_int_equal(tsrv_start(&f->srv), 0);
    assert_int_equal(tsrv_stop(f->srv), 0);

    /* Someone else listens on the port when the restart begins: the restart must keep
     * trying on the same port, not give up or move. SO_REUSEADDR because the stopped
     * server's connections may leave the port in TIME_WAIT. */
    h.fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(h.fd >= 0);
    assert_int_equal(setsockopt(h.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)tsrv_port(f->srv));
    assert_int_equal(bind(h.fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(h.fd, 1), 0);
    log = join(tsrv_dir(f->srv), "logs/nats.log");
    h.refused.path = log;
    h.refused.needle = "address already in use";
    h.refused.from = file_len(log);
    h.saw_refusal = 0;
    assert_int_equal(pthread_create(&thread, NULL, release_after_refusal, &h), 0);

    /* Join before asserting: a failed assertion must not leave the thread using h. */
    rc = tsrv_restart(f->srv);
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_int_equal(rc, 0);
    assert_true(h.saw_refusal);
    connect_js(f, f->srv);
    free(log);
}

static void test_destroy_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    char *own_file;
    pid_t pid;

    /* Destroying a running server: the process and the directory go, including the
     * files a test put there itself. */
    assert_int_equal(tsrv_start(&f->srv), 0);
    pid = tsrv_pid(f->srv);
    f->tmp = strdup(tsrv_dir(f->srv));
    assert_non_null(f->tmp);
    own_file = join(f->tmp, "mine.txt");
    assert_int_equal(write_text(own_file, "test data\n"), 0);
    free(own_file);
    tsrv_destroy(f->srv);
    f->srv = NULL;
    assert_true(process_gone(pid));
    assert_true(path_gone(f->tmp));
    free(f->tmp);
    f->tmp = NULL;

    /* Destroying a killed server still removes its directory. */
    assert_int_equal(tsrv_start(&f->srv), 0);
    pid = tsrv_pid(f->srv);
    f->tmp = strdup(tsrv_dir(f->srv));
    assert_non_null(f->tmp);
    assert_int_equal(tsrv_kill(f->srv), 0);
    assert_true(process_gone(pid));
    assert_int_equal(tsrv_kill(f->srv), 0);
    tsrv_destroy(f->srv);
    f->srv = NULL;
    assert_true(path_gone(f->tmp));

    tsrv_destroy(NULL);
}

static void test_two_servers_are_independent(void **state)
{
    struct fixture *f = *state;

    /* Tests run in parallel under ctest -j, each with its own servers. */
    assert_int_equal(tsrv_start(&f->srv), 0);
    assert_int_equal(tsrv_start(&f->other), 0);
    assert_int_not_equal(tsrv_port(f->srv), tsrv_port(f->other));
    assert_string_not_equal(tsrv_dir(f->srv), tsrv_dir(f->other));
    connect_js(f, f->srv);
    add_file_stream(f->js);
    disconnect(f);
    connect_js(f, f->other);
    add_file_stream(f->js);
    publish(f->js, "sup.x", "only-here", 1);
    disconnect(f);
    connect_js(f, f->srv);
    assert_int_equal(stream_msgs(f->js), 0);
}

static void test_spawn_exit_status(void **state)
{
    struct fixture *f = *state;
    const char *const argv[] = {"/bin/sh", "-c", "exit 3", NULL};
    int status = 0;

    f->child = tproc_spawn(argv, NULL, NULL);
    assert_true(f->child > 0);
    assert_int_equal(tproc_wait(f->child, WAIT_MS, &status), 0);
    f->child = -1;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 3);
}

static void test_spawn_env_and_log(void **state)
{
    struct fixture *f = *state;
    const char *const env_argv[] = {"/usr/bin/env", NULL};
    const char *const sh_argv[] = {"/bin/sh", "-c", "echo out; echo err >&2", NULL};
    const char *const env[] = {"SAGA_SUPPORT_VAR=hello", "HOME=/saga-home", NULL};
    char buf[FILE_CAP];
    char *log;
    char *line;
    int status = -1;
    int homes = 0;

    f->tmp = tproc_mkdtemp();
    assert_non_null(f->tmp);
    log = join(f->tmp, "child.log");

    /* Extra variables are added and replace inherited ones of the same name: a
     * duplicate would leave getenv() in the child returning the inherited value. */
    assert_int_equal(setenv("HOME", "/inherited-home", 1), 0);
    f->child = tproc_spawn(env_argv, env, log);
    assert_true(f->child > 0);
    assert_int_equal(tproc_wait(f->child, WAIT_MS, &status), 0);
    f->child = -1;
    assert_int_equal(status, 0);
    assert_true(read_file(log, buf, sizeof buf) > 0);
    assert_non_null(strstr(buf, "\nSAGA_SUPPORT_VAR=hello\n"));
    for (line = strstr(buf, "HOME="); line != NULL; line = strstr(line + 1, "HOME=")) {
        if (line == buf || line[-1] == '\n')
            homes++;
    }
    assert_int_equal(homes, 1);
    assert_non_null(strstr(buf, "\nHOME=/saga-home\n"));
    assert_non_null(strstr(buf, "\nPATH="));

    /* stdout and stderr both go to the log, appended to what was there, so a
     * restarted process keeps its history. */
    assert_int_equal(truncate(log, 0), 0);
    assert_int_equal(write_text(log, "earlier\n"), 0);
    f->child = tproc_spawn(sh_argv, NULL, log);
    assert_true(f->child > 0);
    assert_int_equal(tproc_wait(f->child, WAIT_MS, &status), 0);
    f->child = -1;
    assert_int_equal(status, 0);
    assert_int_equal(read_file(log, buf, sizeof buf), (int)strlen("earlier\nout\nerr\n"));
    assert_string_equal(buf, "earlier\nout\nerr\n");
    free(log);
}

static void test_spawn_missing_program(void **state)
{
    const char *const argv[] = {"/nonexistent/saga-no-such-program", NULL};
    const char *const bad_env[] = {"NO_EQUALS_SIGN", NULL};
    const char *const sh[] = {"/bin/sh", "-c", "exit 0", NULL};

    (void)state;
    errno = 0;
    assert_int_equal(tproc_spawn(argv, NULL, NULL), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(tproc_spawn(sh, bad_env, NULL), -1);
    assert_int_equal(errno, EINVAL);
}

static void test_term_graceful(void **state)
{
    struct fixture *f = *state;
    const char *const argv[] = {
        "/bin/sh", "-c", "trap 'exit 0' TERM; echo ready; while :; do sleep 0.05; done", NULL};
    struct file_has ready;

    f->tmp = tproc_mkdtemp();
    assert_non_null(f->tmp);
    ready.path = join(f->tmp, "sh.log");
    ready.needle = "ready";
    ready.from = 0;
    f->child = tproc_spawn(argv, NULL, ready.path);
    assert_true(f->child > 0);
    /* SIGTERM before the trap is installed would kill the shell instead. */
    assert_int_equal(tproc_wait_until(file_has, &ready, WAIT_MS), 0);
    assert_int_equal(tproc_term(f->child, WAIT_MS), 0);
    assert_true(process_gone(f->child));
    f->child = -1;
    free((char *)ready.path);
}

static void test_term_without_handler(void **state)
{
    struct fixture *f = *state;
    const char *const argv[] = {"/bin/sleep", "100", NULL};

    /* Dying of the SIGTERM itself is not a graceful shutdown. */
    f->child = tproc_spawn(argv, NULL, NULL);
    assert_true(f->child > 0);
    assert_int_equal(tproc_term(f->child, WAIT_MS), 1);
    assert_true(process_gone(f->child));
    f->child = -1;
}

static void test_term_ignored_gets_killed(void **state)
{
    struct fixture *f = *state;
    const char *const argv[] = {"/bin/sh", "-c", "trap '' TERM; echo ready; exec sleep 100", NULL};
    struct file_has ready;

    f->tmp = tproc_mkdtemp();
    assert_non_null(f->tmp);
    ready.path = join(f->tmp, "sh.log");
    ready.needle = "ready";
    ready.from = 0;
    f->child = tproc_spawn(argv, NULL, ready.path);
    assert_true(f->child > 0);
    assert_int_equal(tproc_wait_until(file_has, &ready, WAIT_MS), 0);
    assert_int_equal(tproc_term(f->child, 100), 1);
    assert_true(process_gone(f->child));
    f->child = -1;
    free((char *)ready.path);
}

static void test_wait_timeout_then_kill(void **state)
{
    struct fixture *f = *state;
    const char *const argv[] = {"/bin/sleep", "100", NULL};
    int status = 12345;

    f->child = tproc_spawn(argv, NULL, NULL);
    assert_true(f->child > 0);
    assert_int_equal(tproc_wait(f->child, 50, &status), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_int_equal(status, 12345);
    assert_int_equal(kill(f->child, 0), 0);
    assert_int_equal(tproc_kill(f->child), 0);
    assert_true(process_gone(f->child));
    f->child = -1;
    assert_int_equal(tproc_kill(0), -1);
    assert_int_equal(tproc_kill(-1), -1);
    assert_int_equal(tproc_wait(-1, 0, NULL), -1);
}

static int count_to_three(void *arg)
{
    int *calls = arg;

    return ++*calls >= 3;
}

static int never(void *arg)
{
    int *calls = arg;

    ++*calls;
    return 0;
}

static void test_wait_until(void **state)
{
    int calls = 0;

    (void)state;
    assert_int_equal(tproc_wait_until(count_to_three, &calls, WAIT_MS), 0);
    assert_int_equal(calls, 3);
    calls = 0;
    assert_int_equal(tproc_wait_until(never, &calls, 60), -1);
    assert_true(calls >= 2);
    calls = 0;
    assert_int_equal(tproc_wait_until(never, &calls, 0), -1);
    assert_int_equal(calls, 1);
}

static void test_mkdtemp_and_rmrf(void **state)
{
    struct fixture *f = *state;
    const char *old = getenv("TMPDIR");
    char *saved = old != NULL ? strdup(old) : NULL;
    char *dir;
    char *sub;
    char *file;
    char *link;
    char *keep;

    /* The outer directory stands in for $TMPDIR, and holds a file a symbolic link
     * inside the removed tree points to: rmrf must not follow it. */
    f->tmp = tproc_mkdtemp();
    assert_non_null(f->tmp);
    assert_int_equal(setenv("TMPDIR", f->tmp, 1), 0);
    dir = tproc_mkdtemp();
    if (saved != NULL)
        setenv("TMPDIR", saved, 1);
    else
        unsetenv("TMPDIR");
    free(saved);
    assert_non_null(dir);
    assert_int_equal(strncmp(dir, f->tmp, strlen(f->tmp)), 0);
    assert_non_null(strstr(dir + strlen(f->tmp), "/saga-test-"));

    keep = join(f->tmp, "keep");
    assert_int_equal(write_text(keep, "keep\n"), 0);
    sub = join(dir, "a");
    assert_int_equal(mkdir(sub, 0700), 0);
    file = join(sub, "file");
    assert_int_equal(write_text(file, "gone\n"), 0);
    link = join(dir, "link");
    assert_int_equal(symlink(f->tmp, link), 0);

    assert_int_equal(tproc_rmrf(dir), 0);
    assert_true(path_gone(dir));
    assert_false(path_gone(keep));
    assert_int_equal(tproc_rmrf(dir), 0);

    free(dir);
    free(sub);
    free(file);
    free(link);
    free(keep);
}

static void test_now_ms_is_monotonic(void **state)
{
    int64_t a = tproc_now_ms();
    int64_t b = tproc_now_ms();

    (void)state;
    assert_true(a > 0);
    assert_true(b >= a);
}

int main(void)
{
    /* These tests are about the single server tsrv_start gives without it (its log,
     * its one URL, its port); test_cluster covers the cluster helpers. */
    if (tsrv_cluster_mode() != 0) {
        printf("test_support: skipped: SAGA_TEST_CLUSTER is set, and these tests check "
               "the single-server helpers\n");
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_server_publish_and_consume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_keeps_file_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_waits_for_port, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_servers_are_independent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spawn_exit_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spawn_env_and_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spawn_missing_program, setup, teardown),
        cmocka_unit_test_setup_teardown(test_term_graceful, setup, teardown),
        cmocka_unit_test_setup_teardown(test_term_without_handler, setup, teardown),
        cmocka_unit_test_setup_teardown(test_term_ignored_gets_killed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_timeout_then_kill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_until, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mkdtemp_and_rmrf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_now_ms_is_monotonic, setup, teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);

    /* Let cnats stop its threads and free its globals, so the leak checker of the
     * sanitizer build sees a clean exit. */
    nats_CloseAndWait(WAIT_MS);
    return failed;
}
