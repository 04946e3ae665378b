/* trace.c - How long `sagactl trace ORDER` takes against the history read model
 * (services/history) once a run has filled it: waits until the read model has
 * indexed every event of the stream, then times, for a random sample of the
 * run's orders, the query's round trip alone and `sagactl trace` as a user runs
 * it (a new process: connect, ask, decode, print). */
#include "bench.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "commands.pb-c.h"
#include "fleet.h"
#include "saga/service.h"
#include "saga/wire.h"

#define QUERY_TIMEOUT_MS 10000
#define CLI_TIMEOUT_MS 60000
#define WAIT_SLICE_MS 1000

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Events the history participant's consumer has not handled yet, -1 when its
 * consumer cannot be read. */
static long long history_pending(jsCtx *js)
{
    char name[128];
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    if (saga_durable_name(name, sizeof(name), BENCH_HISTORY, "*.*") != SAGA_OK ||
        js_GetConsumerInfo(&ci, js, SAGA_DEFAULT_STREAM, name, NULL, &jerr) != NATS_OK)
        return -1;
    long long n = (long long)ci->NumPending + (long long)ci->NumAckPending;
    jsConsumerInfo_Destroy(ci);
    return n;
}

static int wait_indexed(natsConnection *nc, long long wait_ms, char *err, size_t errlen)
{
    jsCtx *js = NULL;
    long long left = -1;
    int64_t start = bench_now_ns(), deadline = start + wait_ms * 1000000LL, next_log = 0;
    if (natsConnection_JetStream(&js, nc, NULL) != NATS_OK) {
        snprintf(err, errlen, "no JetStream context");
        return -1;
    }
    while (!bench_interrupted && bench_now_ns() < deadline) {
        left = history_pending(js);
        if (left == 0)
            break;
        if (bench_now_ns() >= next_log) {
            fprintf(stderr, "[trace] the history read model has %lld events to index\n", left);
            next_log = bench_now_ns() + 10 * 1000000000LL;
        }
        nats_Sleep(WAIT_SLICE_MS);
    }
    jsCtx_Destroy(js);
    if (left != 0) {
        snprintf(err, errlen,
                 "the history read model did not index every event in %lld ms (%lld left)", wait_ms,
                 left);
        return -1;
    }
    fprintf(stderr, "[trace] every event indexed (%.1f s after the run)\n",
            (double)(bench_now_ns() - start) / 1e9);
    return 0;
}

/* One query round trip; the events of the answer, or -1 when none came or the
 * order was not found. */
static int query(natsConnection *nc, const char *id, uint64_t *ns)
{
    char subject[64];
    natsMsg *m = NULL;
    int64_t t0 = bench_now_ns();
    snprintf(subject, sizeof(subject), SAGA_SUBJ_QUERY_FMT, BENCH_HISTORY, "events");
    natsStatus s = natsConnection_Request(&m, nc, subject, id, (int)strlen(id), QUERY_TIMEOUT_MS);
    *ns = (uint64_t)(bench_now_ns() - t0);
    if (s != NATS_OK)
        return -1;
    Saga__V1__OrderHistory *h = saga__v1__order_history__unpack(
        NULL, (size_t)natsMsg_GetDataLength(m), (const uint8_t *)natsMsg_GetData(m));
    natsMsg_Destroy(m);
    int n = h != NULL && h->found ? (int)h->n_events : -1;
    saga__v1__order_history__free_unpacked(h, NULL);
    return n;
}

/* sagactl trace ID (or, id NULL, sagactl --help: the process alone, no
 * connection), output to log, which holds this call's output only; 0 when it
 * exited with 0. */
static int run_cli(const bench_trace_cfg *cfg, const char *id, const char *log, uint64_t *ns)
{
    char url[600], home[BENCH_PATH_MAX + 16];
    const char *argv[] = {cfg->sagactl, id != NULL ? "trace" : "--help", id, NULL};
    const char *env[] = {home, url, NULL}; /* without a home of its own: url alone */
    int status = -1;
    snprintf(url, sizeof(url), "SAGA_NATS_URL=%s", cfg->url);
    /* Its own fleet's home (credentials, if the fleet has any), not the user's. */
    snprintf(home, sizeof(home), "SAGA_HOME=%s", cfg->home);
    unlink(log);
    int64_t t0 = bench_now_ns();
    pid_t pid = fleet_spawn(argv, cfg->home[0] ? env : env + 1, log, 0);
    if (pid < 0)
        return -1;
    if (fleet_pid_wait(pid, CLI_TIMEOUT_MS, &status) != 0) {
        fleet_pid_kill(pid);
        return -1;
    }
    *ns = (uint64_t)(bench_now_ns() - t0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* The last lines of a failed sagactl's output, to stderr: the run's directory,
 * and the log with it, is removed when the run ends. */
static void show_log_tail(const char *log, const char *id)
{
    char line[512], tail[16][512];
    size_t n = 0;
    FILE *f = fopen(log, "r");
    fprintf(stderr, "[trace] sagactl trace %s failed; its output ends with:\n", id);
    if (f == NULL) {
        fprintf(stderr, "[trace]   (no output: %s)\n", strerror(errno));
        return;
    }
    while (fgets(line, sizeof(line), f) != NULL)
        snprintf(tail[n++ % 16], sizeof(tail[0]), "%s", line);
    fclose(f);
    for (size_t i = n > 16 ? n - 16 : 0; i < n; i++)
        fprintf(stderr, "[trace]   %s", tail[i % 16]);
}

static void percentiles(uint64_t *v, size_t n, double out[3])
{
    qsort(v, n, sizeof(*v), cmp_u64);
    out[0] = bench_percentile_ms(v, n, 0.50);
    out[1] = bench_percentile_ms(v, n, 0.99);
    out[2] = n ? (double)v[n - 1] / 1e6 : 0;
}

int bench_trace_run(const bench_trace_cfg *cfg, bench_trace_result *res, char *err, size_t errlen)
{
    natsConnection *nc = NULL;
    uint64_t *q = calloc(cfg->n + 1, sizeof(*q)), *c = calloc(cfg->n + 1, sizeof(*c));
    uint64_t *h = calloc(cfg->n + 1, sizeof(*h));
    size_t nh = 0;
    char log[BENCH_PATH_MAX + 32];
    long long events = 0;
    int rc = -1;

    memset(res, 0, sizeof(*res));
    snprintf(log, sizeof(log), "%s/sagactl-trace.log", cfg->log_dir);
    if (q == NULL || c == NULL || h == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (bench_connect(cfg->url, &nc) != NATS_OK) {
        snprintf(err, errlen, "cannot connect to %s", cfg->url);
        goto out;
    }
    if (wait_indexed(nc, cfg->wait_ms, err, errlen) != 0)
        goto out;
    for (size_t i = 0; i < cfg->n && !bench_interrupted; i++) {
        uint64_t qns = 0, cns = 0, hns = 0;
        if (run_cli(cfg, NULL, log, &hns) == 0)
            h[nh++] = hns;
        int n = query(nc, cfg->ids[i], &qns);
        int cli = n < 0 ? -1 : run_cli(cfg, cfg->ids[i], log, &cns);
        if (n >= 0 && cli != 0) {
            /* Once more, counted: a machine loaded by other work can stall a
             * process past a timeout once; twice in a row is a failure. */
            show_log_tail(log, cfg->ids[i]);
            res->retried++;
            cli = run_cli(cfg, cfg->ids[i], log, &cns);
        }
        if (n < 0 || cli != 0) {
            if (n >= 0)
                show_log_tail(log, cfg->ids[i]);
            res->failed++;
            snprintf(res->fail_text, sizeof(res->fail_text), "order %s: %s", cfg->ids[i],
                     n < 0 ? "no history answer"
                           : "sagactl trace failed twice (its output is above)");
            continue;
        }
        q[res->n] = qns;
        c[res->n++] = cns;
        events += n;
    }
    percentiles(q, res->n, res->query_ms);
    percentiles(c, res->n, res->cli_ms);
    percentiles(h, nh, res->start_ms);
    res->events_mean = res->n ? (double)events / (double)res->n : 0;
    rc = res->failed == 0 && res->n > 0 ? 0 : -1;
    if (rc != 0)
        snprintf(err, errlen, "%zu of %zu traces failed (last: %s)", res->failed, cfg->n,
                 res->fail_text[0] ? res->fail_text : "interrupted");
out:
    natsConnection_Destroy(nc);
    free(q);
    free(c);
    free(h);
    return rc;
}

void bench_print_trace(FILE *out, const bench_trace_result *r, long long orders)
{
    fprintf(out,
            "\nTrace of one order from the history read model (%zu random orders of %lld, %.1f "
            "events each)\n"
            "   query round trip (%s):  p50 %.2f ms  p99 %.2f ms  max %.2f ms\n"
            "   sagactl trace ORDER (process included): p50 %.2f ms  p99 %.2f ms  max %.2f ms\n"
            "   of which starting a process (sagactl --help): p50 %.2f ms  p99 %.2f ms  max %.2f "
            "ms\n",
            r->n, orders, r->events_mean, "saga.q.history.events", r->query_ms[0], r->query_ms[1],
            r->query_ms[2], r->cli_ms[0], r->cli_ms[1], r->cli_ms[2], r->start_ms[0],
            r->start_ms[1], r->start_ms[2]);
    if (r->retried > 0)
        fprintf(out, "   %zu failed once and were tried again (their output is above)\n",
                r->retried);
    if (r->failed > 0)
        fprintf(out, "   %zu failed (last: %s)\n", r->failed, r->fail_text);
}
