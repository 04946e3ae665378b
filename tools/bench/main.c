/* main.c - saga-bench: measures the saga runtime against the ceiling of the
 * machine. Runs the ceiling (saga-ceiling, no-op participants) and the real
 * fleet in each durability mode with identical load, each on a fresh broker
 * and fresh stores, and reports sagas/s, latency percentiles, per-process CPU
 * and memory, optionally p99 at half the peak rate and growth over a long run
 * (docs/performance.md). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nats/nats.h>

#include "bench.h"
#include "fleet.h"
#include "opts.h"
#include "rescale.h"
#include "saga/service.h"

#ifndef BENCH_BUILD_DIR
#define BENCH_BUILD_DIR "build"
#endif

#define MODES_MAX 4
#define NAMES_MAX (MODES_MAX + 1)
#define PHASES_MAX 512
#define ENV_MAX 8
#define HANDOVERS_MAX 1000
#define HANDOVER_SVC "payment" /* places go to order, which must keep answering */
#define HANDOVER_STOP_MS 30000
#define HANDOVER_READY_MS 60000

volatile sig_atomic_t bench_interrupted;

static struct {
    const char *url, *modes, *json, *plot, *build_dir, *log_level, *spool;
    long long orders, warmup, rate, concurrency, runs, skus, items, stall_ms, growth_every;
    long long retention_ms, events_max_age_ms, settle_ms, instances, handovers, cluster,
        trace_samples;
    int ceiling, half_peak, growth, keep, progress, hops, history, auth;
} o;

static const bench_opt options[] = {
    {"orders", BENCH_OPT_INT, 20000, 1, 100000000, NULL, &o.orders, "N",
     "orders measured per run (after the warm-up)"},
    {"warmup", BENCH_OPT_INT, 1000, 0, 10000000, NULL, &o.warmup, "N",
     "orders placed first and not measured"},
    {"concurrency", BENCH_OPT_INT, 1024, 1, 100000, NULL, &o.concurrency, "C",
     "closed loop: orders in flight (a new one when one completes); enough that every participant "
     "is busy"},
    {"rate", BENCH_OPT_INT, 0, 0, 1000000, NULL, &o.rate, "N",
     "place N orders/s instead of the closed loop (0: closed loop)"},
    {"runs", BENCH_OPT_INT, 1, 1, 100, NULL, &o.runs, "N",
     "repeat every measurement N times, interleaved; tables show median, min, max"},
    {"modes", BENCH_OPT_STR, 0, 0, 0, "sync,per-message", &o.modes, "LIST",
     "durability modes, comma-separated: sync (synced group commit, two flushes per commit), "
     "sync1 (the same with one flush per commit, SAGA_SHARED_FLUSH=1), per-message "
     "(SAGA_COMMIT_PER_MESSAGE=1), nosync (SAGA_SYNC=0)"},
    {"ceiling", BENCH_OPT_FLAG, 1, 0, 1, NULL, &o.ceiling, "",
     "also measure the ceiling (saga-ceiling: no-op handlers, no LMDB) with the same load"},
    {"auth", BENCH_OPT_FLAG, 1, 0, 1, NULL, &o.auth, "",
     "the fleets it launches authenticate and keep to their permissions, as deploy/fleet's "
     "(docs/security.md); --no-auth: an open broker"},
    {"half-peak", BENCH_OPT_FLAG, 0, 0, 1, NULL, &o.half_peak, "",
     "after the closed-loop runs, run each at 50% of its median peak rate and report p99"},
    {"growth", BENCH_OPT_FLAG, 0, 0, 1, NULL, &o.growth, "",
     "only a growth run: --orders in one fleet (first mode), RSS and LMDB size every "
     "--growth-every orders"},
    {"growth-every", BENCH_OPT_INT, 100000, 1000, 100000000, NULL, &o.growth_every, "N",
     "growth: sample every N completed orders"},
    {"retention-ms", BENCH_OPT_INT, 300000, 1, 31622400000LL, NULL, &o.retention_ms, "MS",
     "growth: SAGA_RETENTION_MS given to the services so that inbox pruning runs"},
    {"events-max-age-ms", BENCH_OPT_INT, 0, 0, 316224000000LL, NULL, &o.events_max_age_ms, "MS",
     "SAGA_EVENTS_MAX_AGE_MS for the fleet: how long the broker keeps events (0: the services' "
     "default, 7 days)"},
    {"url", BENCH_OPT_STR, 0, 0, 0, NULL, &o.url, "URL",
     "use the fleet running at URL instead of launching one (no ceiling, one mode)"},
    {"cluster", BENCH_OPT_INT, 0, 0, BENCH_NODES_MAX, NULL, &o.cluster, "N",
     "run every phase on a JetStream cluster of N nodes (3 to 5, as deploy/fleet up --cluster N) "
     "with streams of N replicas (0: one nats-server)"},
    {"json", BENCH_OPT_STR, 0, 0, 0, NULL, &o.json, "FILE", "write every result to FILE as JSON"},
    {"plot", BENCH_OPT_STR, 0, 0, 0, NULL, &o.plot, "DIR",
     "write SVG charts to DIR (created if needed): throughput.svg (sagas/s over time) and "
     "latency.svg (latency CDF), the first run of each phase, the ceiling beside the modes"},
    {"build-dir", BENCH_OPT_STR, 0, 0, 0, BENCH_BUILD_DIR, &o.build_dir, "DIR",
     "build tree holding services/saga-*"},
    {"skus", BENCH_OPT_INT, 4, 1, 1000, NULL, &o.skus, "N", "SKUs stocked and ordered"},
    {"items", BENCH_OPT_INT, 2, 1, 16, NULL, &o.items, "N", "order lines per order"},
    {"stall-ms", BENCH_OPT_INT, 60000, 1000, 3600000, NULL, &o.stall_ms, "MS",
     "fail a run when no order completes for this long"},
    {"settle-ms", BENCH_OPT_INT, 600000, 0, 86400000, NULL, &o.settle_ms, "MS",
     "after the last order.confirmed, wait this long for the saga's tail events"},
    {"log-level", BENCH_OPT_STR, 0, 0, 0, NULL, &o.log_level, "LEVEL",
     "SAGA_LOG_LEVEL for the services (default: theirs, info)"},
    {"hops", BENCH_OPT_FLAG, 0, 0, 1, NULL, &o.hops, "",
     "also time each step of the saga (watches every event: costs saga-bench CPU)"},
    {"instances", BENCH_OPT_INT, 1, 1, BENCH_INSTANCES_MAX, NULL, &o.instances, "N",
     "instances of each service (SAGA_INSTANCE=I/N, docs/scaling.md); places routed by key"},
    {"handovers", BENCH_OPT_INT, 0, 0, HANDOVERS_MAX, NULL, &o.handovers, "K",
     "K hand-overs of payment under load (N to N+1 instances and back, as deploy/fleet "
     "scale), evenly over the run; their pauses p50/max are printed"},
    {"history", BENCH_OPT_FLAG, 0, 0, 1, NULL, &o.history, "",
     "also run the history read model (services/history) in every phase, with its default "
     "retention, and after each run time sagactl trace on --trace-samples of its orders"},
    {"trace-samples", BENCH_OPT_INT, 200, 0, 1000000, NULL, &o.trace_samples, "N",
     "with --history: orders (picked at random among the run's) whose trace is timed"},
    {"spool", BENCH_OPT_STR, 0, 0, 0, NULL, &o.spool, "DIR",
     "the notification service's mail spool in a new directory under DIR (e.g. on a file "
     "system of its own, docs/performance.md) instead of in the fleet's directory"},
    {"keep", BENCH_OPT_FLAG, 0, 0, 1, NULL, &o.keep, "",
     "keep each fleet's temporary directory (logs, stores)"},
    {"progress", BENCH_OPT_FLAG, 1, 0, 1, NULL, &o.progress, "",
     "a progress line on stderr every second"},
    {0}};

static bench_phase phases[PHASES_MAX];
static size_t nphases;
static char ceiling_exe[PATH_MAX + 16], sagactl_exe[PATH_MAX + 32];
static char (*trace_ids)[BENCH_ID_MAX]; /* room for --trace-samples order ids */

static void on_signal(int sig)
{
    (void)sig;
    bench_interrupted = 1;
}

/* The environment a durability mode gives the services; NULL for an unknown mode. */
static const char *mode_env(const char *mode)
{
    if (strcmp(mode, "sync") == 0)
        return "";
    if (strcmp(mode, "sync1") == 0)
        return "SAGA_SHARED_FLUSH=1";
    if (strcmp(mode, "per-message") == 0)
        return "SAGA_COMMIT_PER_MESSAGE=1";
    if (strcmp(mode, "nosync") == 0)
        return "SAGA_SYNC=0";
    return NULL;
}

/* ---- one phase ---------------------------------------------------------- */

typedef struct phase_ctx {
    bench_fleet *f;
    bench_pstat start[BENCH_MAXPROC], end[BENCH_MAXPROC];
    int started;
    bench_growth *g;
    long long last_completed;
    double last_s;
    int handovers; /* done so far, each pause in pause_ms */
    int handover_failed;
    int64_t pause_ms[HANDOVERS_MAX];
} phase_ctx;

/* One hand-over of HANDOVER_SVC while the load runs: from o.instances to one more
 * (one fewer at the most), and back at the next. */
static void handover(phase_ctx *c)
{
    static fleet_rescale_report rep;
    char err[1024];
    int n = fleet_instances_running(c->f->fl, HANDOVER_SVC);
    int other = o.instances < BENCH_INSTANCES_MAX ? o.instances + 1 : o.instances - 1;
    int m = n == o.instances ? other : (int)o.instances;
    if (c->handover_failed || c->handovers >= o.handovers)
        return;
    if (fleet_rescale(c->f->fl, HANDOVER_SVC, m, HANDOVER_STOP_MS, HANDOVER_READY_MS, &rep, err,
                      sizeof(err)) != 0) {
        fprintf(stderr, "saga-bench: hand-over of %s to %d: %s\n", HANDOVER_SVC, m, err);
        c->handover_failed = 1;
        return;
    }
    c->pause_ms[c->handovers++] = rep.pause_ms;
    fprintf(stderr, "[handover] %s %d -> %d: paused %lld ms\n", HANDOVER_SVC, n, m,
            (long long)rep.pause_ms);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The hand-overs' pauses: median and max. */
static void print_handovers(phase_ctx *c)
{
    if (c->handovers == 0)
        return;
    qsort(c->pause_ms, (size_t)c->handovers, sizeof(c->pause_ms[0]), cmp_i64);
    printf("handovers: %d of %s between %lld and %d instances under load: pause p50 %lld ms, "
           "max %lld ms%s\n",
           c->handovers, HANDOVER_SVC, o.instances,
           o.instances < BENCH_INSTANCES_MAX ? (int)o.instances + 1 : (int)o.instances - 1,
           (long long)c->pause_ms[(c->handovers - 1) / 2], (long long)c->pause_ms[c->handovers - 1],
           c->handover_failed ? " (a hand-over failed: see above)" : "");
    printf("  (the CPU figures of this run miss the replaced %s processes)\n", HANDOVER_SVC);
}

static void hook(void *arg, enum bench_hook_what what, long long completed, double elapsed_s,
                 long long lag)
{
    phase_ctx *c = arg;
    if (what == BENCH_HOOK_MEASURE_START) {
        bench_fleet_sample(c->f, c->start);
        c->started = 1;
    } else if (what == BENCH_HOOK_MEASURE_END) {
        bench_fleet_sample(c->f, c->end);
    } else if (c->g == NULL) {
        handover(c);
    } else {
        bench_pstat s[BENCH_MAXPROC];
        bench_growth *g = c->g;
        if (g->nrows == g->cap) {
            size_t cap = g->cap ? g->cap * 2 : 16;
            bench_growth_row *v = realloc(g->rows, cap * sizeof(*v));
            if (v == NULL)
                return;
            g->rows = v;
            g->cap = cap;
        }
        bench_fleet_sample(c->f, s);
        bench_growth_row *row = &g->rows[g->nrows++];
        row->completed = completed;
        row->elapsed_s = elapsed_s;
        row->interval_per_s = elapsed_s > c->last_s ? (double)(completed - c->last_completed) /
                                                          (elapsed_s - c->last_s)
                                                    : 0;
        for (int i = 0; i < c->f->nproc; i++) {
            row->rss_kb[i] = s[i].rss_kb;
            row->anon_kb[i] = s[i].anon_kb;
            row->lmdb_bytes[i] = s[i].lmdb_bytes;
        }
        row->store_bytes = bench_fleet_store_bytes(c->f);
        row->lag = lag;
        c->last_completed = completed;
        c->last_s = elapsed_s;
        fprintf(stderr,
                "[growth] %lld orders: %.1f sagas/s over the last interval, tail lag %lld\n",
                completed, row->interval_per_s, row->lag);
    }
}

/* How much a counter grew from a to b; -1 when either is unknown. */
static long long growth_of(long long a, long long b)
{
    return a >= 0 && b >= a ? b - a : -1;
}

/* Completions between hand-overs: K of them evenly over the run. */
static long long handover_every(void)
{
    long long every = (o.warmup + o.orders) / (o.handovers + 1);
    return every > 0 ? every : 1;
}

/* After a run with the history read model: sagactl trace on the kept orders. */
static int time_traces(const bench_fleet *f, bench_phase *p)
{
    char err[512];
    const char *home = f->dir[0] != '\0' ? f->dir : "", *tmp = getenv("TMPDIR");
    bench_trace_cfg tc = {
        f->url,    sagactl_exe,  home,       home[0] ? home : tmp && tmp[0] ? tmp : "/tmp",
        trace_ids, p->load.nids, o.settle_ms};
    int rc = bench_trace_run(&tc, &p->trace, err, sizeof(err));
    p->traced = p->trace.n > 0;
    if (rc != 0)
        fprintf(stderr, "saga-bench: %s run %d: trace: %s\n", p->name, p->run, err);
    if (p->traced)
        bench_print_trace(stdout, &p->trace, p->load.confirmed);
    return rc;
}

static int run_phase(const char *name, const char *kind, int run, long long rate, bench_growth *g)
{
    bench_fleet f;
    phase_ctx c;
    char err[512], label[64], retention[64], level[64], max_age[64];
    const char *env[ENV_MAX];
    int n = 0, rc;
    bench_phase *p;

    if (nphases == PHASES_MAX)
        return -1;
    p = &phases[nphases++];
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    snprintf(p->kind, sizeof(p->kind), "%s", kind);
    p->run = run;
    p->rate = rate;
    p->concurrency = rate > 0 ? 0 : o.concurrency;
    p->orders = o.orders;
    p->warmup = o.warmup;
    p->settle_s = -1;

    int ceiling = strcmp(name, "ceiling") == 0;
    const char *menv = ceiling ? "" : mode_env(name);
    if (menv != NULL && menv[0] != '\0')
        env[n++] = menv;
    if (g != NULL) {
        snprintf(retention, sizeof(retention), "SAGA_RETENTION_MS=%lld", o.retention_ms);
        env[n++] = retention;
    }
    if (o.events_max_age_ms > 0) {
        snprintf(max_age, sizeof(max_age), "SAGA_EVENTS_MAX_AGE_MS=%lld", o.events_max_age_ms);
        env[n++] = max_age;
    }
    if (o.log_level != NULL) {
        snprintf(level, sizeof(level), "SAGA_LOG_LEVEL=%s", o.log_level);
        env[n++] = level;
    }
    env[n] = NULL;

    if (o.url != NULL) {
        rc = bench_fleet_attach(&f, o.url, err, sizeof(err));
    } else {
        bench_fleet_cfg fc = {.build_dir = o.build_dir,
                              .ceiling_exe = ceiling ? ceiling_exe : NULL,
                              .env = env,
                              .keep = o.keep,
                              .instances = (int)o.instances,
                              .cluster = (int)o.cluster,
                              .history = o.history,
                              .spool = o.spool,
                              .auth = o.auth};
        fprintf(stderr, "[%s %s %d] starting %s and five %s%s\n", name, kind, run,
                o.cluster > 0 ? "a nats-server cluster" : "nats-server",
                ceiling ? "saga-ceiling roles" : "services",
                o.history ? " and the history read model" : "");
        rc = bench_fleet_start(&f, &fc, err, sizeof(err));
    }
    if (rc != 0) {
        fprintf(stderr, "saga-bench: %s: %s\n", name, err);
        return -1;
    }
    memset(&c, 0, sizeof(c));
    c.f = &f;
    c.g = g;
    if (g != NULL) {
        g->nproc = f.nproc;
        g->retention_ms = o.retention_ms;
        for (int i = 0; i < f.nproc; i++)
            snprintf(g->names[i], sizeof(g->names[i]), "%s", f.proc[i].name);
    }
    snprintf(label, sizeof(label), "%s %s %d", name, kind, run);
    bench_load_cfg lc = {.url = f.url,
                         .label = label,
                         .orders = o.orders,
                         .warmup = o.warmup,
                         .rate = rate,
                         .concurrency = o.concurrency,
                         .skus = o.skus,
                         .items = o.items,
                         .stall_ms = o.stall_ms,
                         .settle_ms = o.settle_ms,
                         .progress = o.progress,
                         .hops = o.hops,
                         .mark_every = g != NULL                     ? o.growth_every
                                       : o.handovers > 0 && !ceiling ? handover_every()
                                                                     : 0,
                         .instances = ceiling ? 1 : (int)o.instances,
                         .keep_ids = o.history ? (size_t)o.trace_samples : 0,
                         .ids = trace_ids,
                         .hook = hook,
                         .hook_arg = &c};
    rc = bench_load_run(&lc, &p->load, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "saga-bench: %s run %d: %s\n", name, run, err);
    p->settle_s = p->load.settle_s;
    bench_pstat drained[BENCH_MAXPROC];
    bench_fleet_sample(&f, drained);
    bench_fleet_stream(&f, &p->stream_msgs, &p->stream_bytes, &p->stream_replicas);
    p->ok = rc == 0;
    p->nproc = f.nproc;
    for (int i = 0; i < f.nproc; i++) {
        bench_proc_figures *pf = &p->proc[i];
        snprintf(pf->name, sizeof(pf->name), "%s", f.proc[i].name);
        pf->hwm_kb = c.end[i].ok ? c.end[i].hwm_kb : -1;
        pf->lmdb_bytes = c.end[i].lmdb_bytes;
        if (c.started && c.start[i].ok && c.end[i].ok)
            pf->cpu_s = (double)(c.end[i].cpu_ticks - c.start[i].cpu_ticks) * bench_tick_s();
        if (c.started && c.start[i].ok && drained[i].ok && p->settle_s >= 0)
            pf->cpu_drain_s =
                (double)(drained[i].cpu_ticks - c.start[i].cpu_ticks) * bench_tick_s();
        /* Bytes and flushes over the span cpu us/saga covers. */
        const bench_pstat *to = p->settle_s >= 0 ? &drained[i] : &c.end[i];
        pf->wbytes = c.started ? growth_of(c.start[i].wbytes, to->wbytes) : -1;
        pf->flushes = c.started ? growth_of(c.start[i].flushes, to->flushes) : -1;
        pf->commits = c.started ? growth_of(c.start[i].commits, to->commits) : -1;
    }
    bench_print_phase(stdout, p);
    print_handovers(&c);
    if (rc == 0 && o.history && p->load.nids > 0)
        rc = time_traces(&f, p);
    fflush(stdout);
    if (bench_fleet_stop(&f) != 0) /* a fleet of --url: only lets go of it */
        fprintf(stderr, "saga-bench: %s run %d: a process did not stop cleanly\n", name, run);
    return rc;
}

/* ---- main --------------------------------------------------------------- */

/* saga-ceiling beside this executable, and sagactl in the same build tree. */
static int find_tools(void)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash == NULL)
        return -1;
    *slash = '\0';
    snprintf(ceiling_exe, sizeof(ceiling_exe), "%s/saga-ceiling", self);
    snprintf(sagactl_exe, sizeof(sagactl_exe), "%s/../sagactl", self);
    return 0;
}

/* The options of this run, for the JSON report; NULL if it cannot be built. */
static json_t *settings_json(const char *const *names, size_t nnames)
{
    json_t *list = json_array();
    for (size_t i = 0; list != NULL && i < nnames; i++) {
        if (json_array_append_new(list, json_string(names[i])) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    return json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:b, s:I, s:I, s:I, s:s, s:s, "
        "s:I, s:b, s:I, s:s, s:b, s:o}",
        "orders", (json_int_t)o.orders, "warmup", (json_int_t)o.warmup, "concurrency",
        (json_int_t)o.concurrency, "rate", (json_int_t)o.rate, "runs", (json_int_t)o.runs, "skus",
        (json_int_t)o.skus, "items", (json_int_t)o.items, "half_peak", o.half_peak, "growth",
        o.growth, "retention_ms", (json_int_t)o.retention_ms, "events_max_age_ms",
        (json_int_t)o.events_max_age_ms, "growth_every", (json_int_t)o.growth_every, "url",
        o.url ? o.url : "", "log_level", o.log_level ? o.log_level : "", "cluster",
        (json_int_t)o.cluster, "history", o.history, "trace_samples", (json_int_t)o.trace_samples,
        "spool", o.spool ? o.spool : "", "auth", o.url == NULL && o.auth, "phases", list);
}

int main(int argc, char **argv)
{
    char err[256], modes_buf[128], machine[1024];
    const char *names[NAMES_MAX];
    size_t nnames = 0;
    int failed = 0;
    bench_growth growth = {0};

    int prc = bench_opts_parse(options, argc, argv, err, sizeof(err));
    if (prc == BENCH_OPTS_HELP) {
        bench_opts_help(
            stdout, options, "saga-bench [OPTIONS]",
            "Places happy-path orders on saga.cmd.order.place and times each until its\n"
            "order.confirmed, on a fleet it starts (nats-server on a free port, the five\n"
            "services from --build-dir) or on one at --url. By default it measures the\n"
            "ceiling (saga-ceiling: the same messages through the same broker with no-op\n"
            "handlers and no LMDB) and the fleet in modes sync and per-message, each on a\n"
            "fresh broker and stores, and prints sagas/s, the ratio to the ceiling, latency\n"
            "percentiles and per-process CPU time and peak RSS. Timing is never asserted:\n"
            "the exit status says only whether every order completed.\n"
            "Exit status: 0 all runs completed, 1 a run failed, 2 bad usage, 130 interrupted.");
        return 0;
    }
    if (prc != BENCH_OPTS_OK) {
        fprintf(stderr, "saga-bench: %s (see --help)\n", err);
        return 2;
    }
    /* The services are started by absolute path: a relative --build-dir is made one. */
    static char build_abs[PATH_MAX];
    if (o.url == NULL && realpath(o.build_dir, build_abs) == NULL) {
        fprintf(stderr, "saga-bench: --build-dir %s: %s\n", o.build_dir, strerror(errno));
        return 2;
    }
    if (o.url == NULL)
        o.build_dir = build_abs;
    if (o.events_max_age_ms > 0 && o.events_max_age_ms < SAGA_DEFAULT_DUP_WINDOW_MS) {
        fprintf(stderr,
                "saga-bench: --events-max-age-ms must be at least the broker's duplicate "
                "window, %lld\n",
                (long long)SAGA_DEFAULT_DUP_WINDOW_MS);
        return 2;
    }
    if (o.cluster == 1 || o.cluster == 2 || (o.cluster > 0 && o.url != NULL)) {
        fprintf(stderr,
                "saga-bench: --cluster takes 3 to %d nodes (a quorum that survives the loss "
                "of one), and not with --url\n",
                BENCH_NODES_MAX);
        return 2;
    }
    if (o.half_peak && o.rate > 0) {
        fprintf(stderr, "saga-bench: --half-peak measures the closed-loop peak itself; "
                        "leave out --rate\n");
        return 2;
    }
    if (o.url != NULL) {
        names[nnames++] = "external";
        o.ceiling = 0;
    } else {
        snprintf(modes_buf, sizeof(modes_buf), "%s", o.modes);
        if (o.ceiling && !o.growth)
            names[nnames++] = "ceiling";
        for (char *save = NULL, *m = strtok_r(modes_buf, ",", &save); m != NULL;
             m = strtok_r(NULL, ",", &save)) {
            if (mode_env(m) == NULL || nnames == NAMES_MAX) {
                fprintf(stderr,
                        "saga-bench: --modes: \"%s\" is not sync, sync1, per-message or nosync\n",
                        m);
                return 2;
            }
            names[nnames++] = m; /* points into modes_buf, which outlives its use */
        }
    }
    if (find_tools() != 0 || (o.ceiling && access(ceiling_exe, X_OK) != 0)) {
        fprintf(stderr, "saga-bench: no saga-ceiling next to this executable\n");
        return 2;
    }
    if (o.history && o.trace_samples > 0) {
        if (access(sagactl_exe, X_OK) != 0) {
            fprintf(stderr, "saga-bench: no %s to time traces with\n", sagactl_exe);
            return 2;
        }
        trace_ids = calloc((size_t)o.trace_samples, sizeof(*trace_ids));
        if (trace_ids == NULL) {
            fprintf(stderr, "saga-bench: out of memory\n");
            return 2;
        }
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    const char *tmp = getenv("TMPDIR");
    bench_machine(machine, sizeof(machine), tmp != NULL && tmp[0] ? tmp : "/tmp");
    printf("saga-bench on %s\n", machine);
    printf("load: %lld orders after %lld warm-up, %s, %lld line(s) over %lld SKU(s)\n", o.orders,
           o.warmup, o.rate > 0 ? "fixed rate" : "closed loop", o.items, o.skus);
    fflush(stdout);

    if (o.growth) {
        /* One long run of the first mode; no ceiling, no repetition. */
        failed |= run_phase(names[0], "growth", 1, o.rate, &growth) != 0;
        bench_print_growth(stdout, &growth);
    } else {
        const char *kind = o.rate > 0 ? "rate" : "closed";
        for (int r = 1; r <= o.runs && !bench_interrupted; r++)
            for (size_t k = 0; k < nnames && !bench_interrupted; k++)
                failed |= run_phase(names[k], kind, r, o.rate, NULL) != 0;
        bench_print_table(stdout, phases, nphases, names, nnames, kind,
                          o.rate > 0 ? "Fixed rate (sagas/s: median of runs)"
                                     : "Closed loop (sagas/s: median of runs; ceiling: ratio of "
                                       "medians)");
        if (o.half_peak) {
            long long half[NAMES_MAX] = {0};
            for (size_t k = 0; k < nnames; k++) {
                bench_summary s;
                if (bench_summarize(phases, nphases, names[k], "closed", &s) == 0)
                    half[k] = (long long)(s.median / 2 + 0.5);
            }
            for (int r = 1; r <= o.runs && !bench_interrupted; r++)
                for (size_t k = 0; k < nnames && !bench_interrupted; k++)
                    if (half[k] > 0)
                        failed |= run_phase(names[k], "half-peak", r, half[k], NULL) != 0;
            bench_print_table(stdout, phases, nphases, names, nnames, "half-peak",
                              "At half the closed-loop peak (p99 is the median over runs)");
        }
    }
    fflush(stdout);
    if (o.plot != NULL && bench_plot(o.plot, phases, nphases, names, nnames,
                                     o.growth     ? "growth"
                                     : o.rate > 0 ? "rate"
                                                  : "closed",
                                     machine) != 0) {
        fprintf(stderr, "saga-bench: cannot write the charts to %s: %s\n", o.plot, strerror(errno));
        failed = 1;
    }
    if (o.json != NULL) {
        if (bench_write_json(o.json, settings_json(names, nnames), phases, nphases, names, nnames,
                             &growth, tmp != NULL && tmp[0] ? tmp : "/tmp") != 0) {
            fprintf(stderr, "saga-bench: cannot write %s: %s\n", o.json, strerror(errno));
            failed = 1;
        }
    }
    free(growth.rows);
    free(trace_ids);
    nats_CloseAndWait(BENCH_CLOSE_WAIT_MS);
    if (bench_interrupted)
        return 130;
    return failed ? 1 : 0;
}
