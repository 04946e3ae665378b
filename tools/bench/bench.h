/* bench.h - saga-bench's modules: the fleet it launches (fleet.c) and
 * samples (sample.c), the load it places and times (load.c), and the
 * figures it reports (report.c); main.c runs the phases. */
#ifndef BENCH_H
#define BENCH_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <jansson.h>
#include <nats/nats.h>

#include "map.h"

#define BENCH_NSVC 5
#define BENCH_INSTANCES_MAX 16  /* instances of each service: one partition each at most */
#define BENCH_NODES_MAX 5       /* nats-server, or the nodes of a cluster */
#define BENCH_HISTORY "history" /* the order history read model, with --history */
/* the brokers, the five participants' instances, the history read model, saga-bench */
#define BENCH_MAXPROC (BENCH_NODES_MAX + BENCH_NSVC * BENCH_INSTANCES_MAX + 2)
#define BENCH_PATH_MAX 1024
#define BENCH_DIR_MAX 512 /* the temporary directory: paths below it fit BENCH_PATH_MAX */
#define BENCH_NAME_MAX 32
#define BENCH_ID_MAX 65          /* an order id and its NUL: SAGA_ORDER_ID_MAX + 1 */
#define BENCH_CLOSE_WAIT_MS 5000 /* at exit, for cnats' threads to end (nats_CloseAndWait) */

extern const char *const bench_svc_names[BENCH_NSVC];

/* Set by SIGINT/SIGTERM; every wait of saga-bench gives up when it is set. */
extern volatile sig_atomic_t bench_interrupted;

/* Milliseconds and nanoseconds on the monotonic clock. */
int64_t bench_now_ns(void);

/* ---- fleet.c and sample.c: processes ------------------------------------ */

typedef struct bench_proc {
    char name[BENCH_NAME_MAX];     /* "nats-server", "order", ..., "saga-bench" */
    pid_t pid;                     /* -1: not running, or unknown (a fleet of --url) */
    int owned;                     /* started here: stopped here */
    char data_dir[BENCH_PATH_MAX]; /* its LMDB environment, "" when none or unknown */
} bench_proc;

typedef struct fleet fleet; /* tools/fleet/fleet.h: the launcher */

typedef struct bench_fleet {
    fleet *fl;                  /* the launched fleet, NULL for --url */
    char dir[BENCH_DIR_MAX];    /* temporary directory of a launched fleet, "" for --url */
    char store[BENCH_PATH_MAX]; /* its JetStream store directory */
    char spool[BENCH_PATH_MAX]; /* the notification's mail spool */
    int own_spool;              /* spool is a directory of its own, outside dir */
    char url[512];              /* a cluster's: every node, comma-separated */
    bench_proc proc[BENCH_MAXPROC];
    int nproc;
    int nbrokers;       /* proc[0..nbrokers-1] are the brokers of a launched fleet */
    int keep;           /* leave the directory (logs, stores) behind */
    natsConnection *nc; /* asks the participants for their counters; NULL when it cannot */
} bench_fleet;

typedef struct bench_fleet_cfg {
    const char *build_dir;   /* services/saga-* live here */
    const char *ceiling_exe; /* non-NULL: launch saga-ceiling roles instead of the services */
    const char *const *env;  /* extra "K=V" for every participant, NULL-terminated, or NULL */
    int keep;
    int instances;     /* of each service (SAGA_INSTANCE=i/n); 0 or 1: the only instance */
    int cluster;       /* 0: one nats-server; N: a cluster of N nodes, streams with N replicas */
    int history;       /* also run the history read model (services/history) */
    const char *spool; /* NULL, or where the mail spool's directory is made (not in dir) */
    int auth;          /* every connection authenticates, as in deploy/fleet (docs/security.md) */
} bench_fleet_cfg;

/* Makes a temporary directory, starts nats-server (JetStream, file store, a
 * free port; or cfg->cluster nodes of a cluster) and the five participants (and
 * the history read model), and waits until each answers
 * saga.ctl.<name>.stats. Children get their own process group (a terminal's
 * Ctrl-C reaches only saga-bench, which stops them in order) and die with
 * saga-bench if it is killed. On failure everything started is stopped and
 * err says why. Returns 0 or -1. */
int bench_fleet_start(bench_fleet *f, const bench_fleet_cfg *cfg, char *err, size_t errlen);

/* Uses a running fleet at url: finds each service's pid from its stats
 * reply (for /proc figures when it runs on this host). Returns 0 or -1. */
int bench_fleet_attach(bench_fleet *f, const char *url, char *err, size_t errlen);

/* Messages and bytes in the event stream, to check that two phases moved
 * the same messages, and its replicas. Returns 0, or -1 when the stream
 * cannot be read. */
int bench_fleet_stream(const bench_fleet *f, uint64_t *msgs, uint64_t *bytes, int *replicas);

/* Stops what this fleet started: participants with SIGTERM (SIGKILL after
 * 30 s), then nats-server (SIGKILL after 10 s); removes the directory unless
 * keep; of a fleet of --url, only closes the connection. Returns 0 when
 * every process exited by itself, 1 otherwise. */
int bench_fleet_stop(bench_fleet *f);

typedef struct bench_pstat {
    int ok;               /* the process could be read */
    uint64_t cpu_ticks;   /* utime + stime, clock ticks */
    long long rss_kb;     /* VmRSS */
    long long anon_kb;    /* RssAnon: heap and stacks, without mapped files (LMDB) */
    long long hwm_kb;     /* VmHWM: peak resident set */
    long long lmdb_bytes; /* size of data.mdb, -1 when none */
    long long wbytes;     /* write_bytes of /proc/PID/io: what it wrote to the disk, -1 unknown */
    long long flushes;    /* its "flushes" counter (stats reply), -1 when it has none */
    long long commits;    /* its "commits" counter, likewise */
} bench_pstat;

/* One request on saga.ctl.<name>.stats: the parsed reply, which the caller
 * releases with json_decref(), or NULL if none came or it is not JSON. */
json_t *bench_ask_stats(natsConnection *nc, const char *name, int timeout_ms);

/* Reads /proc/PID/stat, status and io, the LMDB file and the counters of every process. */
void bench_fleet_sample(const bench_fleet *f, bench_pstat out[BENCH_MAXPROC]);

/* Bytes of the JetStream store of a launched fleet (of its first node for a cluster;
 * 0 for --url). */
long long bench_fleet_store_bytes(const bench_fleet *f);

/* Seconds per clock tick of /proc/PID/stat. */
double bench_tick_s(void);

/* ---- load.c: placing orders and timing them ---------------------------- */

#define BENCH_NHOPS 6
extern const char *const bench_hop_names[BENCH_NHOPS];

enum bench_hook_what {
    BENCH_HOOK_MEASURE_START, /* the first measured order is about to be placed */
    BENCH_HOOK_MEASURE_END,   /* the last order completed */
    BENCH_HOOK_MARK,          /* `completed` crossed a multiple of mark_every */
};

/* Called on saga-bench's main thread, never from a cnats thread. lag is
 * bench_load_result's lag at that moment. */
typedef void (*bench_hook_fn)(void *arg, enum bench_hook_what what, long long completed,
                              double elapsed_s, long long lag);

typedef struct bench_load_cfg {
    const char *url;
    const char *label; /* for the progress line */
    long long orders, warmup;
    long long rate;            /* orders per second; 0: closed loop */
    long long concurrency;     /* closed loop: orders in flight */
    long long skus, items;     /* SKUs stocked; order lines per order */
    long long stall_ms;        /* give up when nothing completes for this long */
    long long settle_ms;       /* after the last final event, wait this long for the tail */
    int progress;              /* a progress line on stderr every second */
    int hops;                  /* also time each hop of the saga (hops.c) */
    long long mark_every;      /* BENCH_HOOK_MARK every so many completions; 0: never */
    size_t keep_ids;           /* a random sample of this many confirmed orders' ids ... */
    char (*ids)[BENCH_ID_MAX]; /* ... written here (room for keep_ids) */
    int instances;             /* of each service: > 1 routes places by key and splits stock */
    bench_hook_fn hook;
    void *hook_arg;
} bench_load_cfg;

#define BENCH_SERIES_MAX 600 /* seconds of a run's throughput kept for --plot */
#define BENCH_CDF_POINTS 101 /* latency quantiles 0, 1 %, ..., 100 %, for --plot */

typedef struct bench_load_result {
    long long placed, confirmed, cancelled, rejected;
    size_t nids;        /* order ids kept in cfg->ids */
    double window_s;    /* first measured order placed -> last order completed */
    double sagas_per_s; /* measured orders / window_s */
    size_t nlat;        /* latency samples: one per measured completed order */
    double p50_ms, p90_ms, p99_ms, max_ms, mean_ms;
    /* The saga's tail: events that follow order.confirmed (notification.sent,
     * inventory.committed), which the closed loop does not wait for. */
    long long lag_notification, lag_inventory; /* missing when the last order completed */
    double settle_s;    /* then until both were all in; -1 when they were not within settle_ms */
    size_t hop_samples; /* with hops: measured orders whose every hop was seen */
    double hop_p50_ms[BENCH_NHOPS], hop_p99_ms[BENCH_NHOPS];
    uint32_t per_s[BENCH_SERIES_MAX]; /* measured orders completed in each second of the window */
    size_t nper_s;
    double cdf_ms[BENCH_CDF_POINTS]; /* latency at quantile i / (BENCH_CDF_POINTS - 1) */
} bench_load_result;

/* Connects to url, sets stock for the SKUs, places warmup + orders orders
 * (closed loop or at a fixed rate), waits for each one's final event, then
 * for the saga's tail events (counted on core NATS: asking the broker for
 * consumer state stalls nats-server 2.9 for seconds on a large stream).
 * Returns 0 when every order was placed and completed, -1 otherwise (err
 * says why; res holds what was measured so far). */
/* A connection to url (a server list) as saga-bench, with the credentials and TLS of
 * SAGA_NATS_CREDS, SAGA_NATS_CA, SAGA_NATS_CERT and SAGA_NATS_KEY when set, else
 * the operator's of the fleet saga-bench launched (bench_connect_home). */
natsStatus bench_connect(const char *url, natsConnection **nc);

/* The home of the fleet saga-bench launched, whose operator identity
 * bench_connect uses when the fleet authenticates; NULL: none. */
void bench_connect_home(const char *home);

int bench_load_run(const bench_load_cfg *cfg, bench_load_result *res, char *err, size_t errlen);

/* Exact nearest-rank percentile q (0..1) of n sorted samples, in ms. */
double bench_percentile_ms(const uint64_t *sorted_ns, size_t n, double q);

/* ---- hops.c: the latency of each step, for bench_load_cfg.hops ---------- */

typedef struct bench_hops {
    bench_map open; /* order id -> the times its events were seen */
    uint64_t *v[BENCH_NHOPS];
    size_t n, cap; /* samples per hop, and room for them */
} bench_hops;

/* Room for cap measured orders. Returns 0 or -1 (call cleanup either way). */
int bench_hops_init(bench_hops *h, size_t cap);
void bench_hops_cleanup(bench_hops *h);
/* An event seen on subject evt.<type>.<order_id> at time at (ns). */
void bench_hops_event(bench_hops *h, const char *type, const char *order_id, int64_t at);
/* The order completed: turns its times into one sample per hop (if
 * measured and every hop was seen) and forgets it. */
void bench_hops_done(bench_hops *h, const char *order_id, int64_t sent, int64_t reply,
                     int64_t confirmed, int measured);
/* Sorts the samples and fills res->hop_*. */
void bench_hops_summary(bench_hops *h, bench_load_result *res);

/* ---- trace.c: sagactl trace against the history read model, after a run --- */

typedef struct bench_trace_cfg {
    const char *url;
    const char *sagactl;       /* the executable timed */
    const char *home;          /* SAGA_HOME for it: the launched fleet's, or "" (inherited) */
    const char *log_dir;       /* its output goes to LOG_DIR/sagactl-trace.log */
    char (*ids)[BENCH_ID_MAX]; /* the orders traced, in this order */
    size_t n;
    long long wait_ms; /* for the read model to index every event of the stream */
} bench_trace_cfg;

typedef struct bench_trace_result {
    size_t n, failed;   /* traces timed; those without an answer or whose sagactl failed */
    size_t retried;     /* sagactl trace runs that failed once, then were run again */
    double query_ms[3]; /* the query round trip alone: p50, p99, max */
    double cli_ms[3];   /* sagactl trace ORDER, a new process each: p50, p99, max */
    double start_ms[3]; /* sagactl --help: what starting the process alone costs */
    double events_mean; /* events per answer */
    char fail_text[160];
} bench_trace_result;

/* Waits until the history participant's consumer has nothing pending, then times
 * for each of cfg->ids `sagactl --help` (starting the process alone), the query
 * saga.q.history.events round trip, and `sagactl trace ID` run to completion.
 * A sagactl that fails is shown (its output's last lines, to stderr) and run once
 * more. Returns 0 when every trace answered, -1 otherwise (err says why; res holds what
 * was measured). */
int bench_trace_run(const bench_trace_cfg *cfg, bench_trace_result *res, char *err, size_t errlen);
void bench_print_trace(FILE *out, const bench_trace_result *r, long long orders);

/* ---- report.c: what a phase measured, printed and written as JSON ------- */

typedef struct bench_proc_figures {
    char name[BENCH_NAME_MAX];
    double cpu_s;       /* CPU time used during the measured window */
    double cpu_drain_s; /* from the window's start until every consumer drained: all the
                           work the measured orders caused, also what lagged behind */
    long long hwm_kb;   /* peak resident set since start */
    long long lmdb_bytes;
    long long wbytes;  /* bytes written to the disk over the same span as cpu_drain_s (cpu_s
                          when it did not drain), -1 unknown */
    long long flushes; /* device flushes over that span, -1 unknown */
    long long commits; /* LMDB commits over that span, -1 unknown */
} bench_proc_figures;

typedef struct bench_phase {
    char name[24]; /* "ceiling", "sync", "per-message", "nosync", "external" */
    char kind[16]; /* "closed", "rate", "half-peak", "growth" */
    int run;       /* 1-based */
    long long rate, concurrency, orders, warmup;
    int ok;
    bench_load_result load;
    double settle_s;                    /* load.settle_s: until the tail events were all in */
    uint64_t stream_msgs, stream_bytes; /* SAGA_EVENTS after the phase */
    int stream_replicas;
    int nproc;
    bench_proc_figures proc[BENCH_MAXPROC];
    int traced; /* with --history: trace holds sagactl trace's figures after the run */
    bench_trace_result trace;
} bench_phase;

typedef struct bench_growth_row {
    long long completed;
    double elapsed_s, interval_per_s;
    long long rss_kb[BENCH_MAXPROC];  /* VmRSS: includes the LMDB pages mapped in */
    long long anon_kb[BENCH_MAXPROC]; /* RssAnon: the process's own memory */
    long long lmdb_bytes[BENCH_MAXPROC];
    long long store_bytes; /* the JetStream file store */
    long long lag;         /* tail events not yet seen (bench_load_result) */
} bench_growth_row;

typedef struct bench_growth {
    int nproc;
    char names[BENCH_MAXPROC][BENCH_NAME_MAX];
    long long retention_ms;
    bench_growth_row *rows;
    size_t nrows, cap;
} bench_growth;

/* Median, min and max of sagas/s over the phases named name of kind. */
typedef struct bench_summary {
    char name[24];
    int n;
    double median, min, max;
    double p50_ms, p99_ms; /* medians over the runs */
    double sustained;      /* median of bench_sustained() */
} bench_summary;

/* Orders / (window + settle): what every participant kept up with, not
 * only the ones before the final event. 0 when the fleet did not drain. */
double bench_sustained(const bench_phase *p);

int bench_summarize(const bench_phase *ph, size_t n, const char *name, const char *kind,
                    bench_summary *out);
void bench_print_phase(FILE *out, const bench_phase *p);
void bench_print_table(FILE *out, const bench_phase *ph, size_t n, const char *const *names,
                       size_t nnames, const char *kind, const char *title);
void bench_print_growth(FILE *out, const bench_growth *g);

/* Writes machine, settings, every phase, summaries and growth as JSON.
 * Steals settings (the options the run used), also on failure; a NULL
 * settings fails the call. Returns 0, or -1 with errno set. */
int bench_write_json(const char *path, json_t *settings, const bench_phase *ph, size_t n,
                     const char *const *names, size_t nnames, const bench_growth *g,
                     const char *tmp_dir);

/* ---- plot.c: the figures as SVG charts --------------------------------- */

/* Writes DIR/throughput.svg (completed sagas per second over each phase's window)
 * and DIR/latency.svg (the latency distribution of each phase, as a CDF) for the
 * first successful run of kind of every name, the ceiling beside the runtime's
 * modes. Creates dir if needed. Returns 0, or -1 with errno set. */
int bench_plot(const char *dir, const bench_phase *ph, size_t n, const char *const *names,
               size_t nnames, const char *kind, const char *machine);

/* One line on the machine: CPUs, model, memory, the disk under dir. */
void bench_machine(char *buf, size_t len, const char *dir);

#endif
