/* report.c - What saga-bench prints and writes: one block per phase, the
 * table of modes against the ceiling (median, min, max over the runs), the
 * growth table, the machine, and all of it as JSON for --json. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bench.h"

#define MIB (1024.0 * 1024.0)

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of n values (sorted in place); the mean of the middle two when n is even. */
static double median(double *v, int n)
{
    if (n == 0)
        return 0;
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int bench_summarize(const bench_phase *ph, size_t n, const char *name, const char *kind,
                    bench_summary *out)
{
    double r[256], p50[256], p99[256], sus[256];
    int k = 0;
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", name);
    for (size_t i = 0; i < n && k < 256; i++) {
        if (!ph[i].ok || strcmp(ph[i].name, name) != 0 || strcmp(ph[i].kind, kind) != 0)
            continue;
        r[k] = ph[i].load.sagas_per_s;
        p50[k] = ph[i].load.p50_ms;
        p99[k] = ph[i].load.p99_ms;
        sus[k] = bench_sustained(&ph[i]);
        k++;
    }
    out->n = k;
    if (k == 0)
        return -1;
    out->median = median(r, k);
    out->min = r[0];
    out->max = r[k - 1];
    out->p50_ms = median(p50, k);
    out->p99_ms = median(p99, k);
    out->sustained = median(sus, k);
    return 0;
}

/* All the CPU the measured orders cost a process, per order: until drained
 * when the fleet drained, else only the window. */
static double cpu_per_saga_us(const bench_phase *p, const bench_proc_figures *f)
{
    double cpu = p->settle_s >= 0 ? f->cpu_drain_s : f->cpu_s;
    return p->load.nlat ? cpu * 1e6 / (double)p->load.nlat : 0;
}

/* A count over the measured orders' span (bench_proc_figures), per order; -1 unknown. */
static double per_saga(const bench_phase *p, long long v)
{
    return v >= 0 && p->load.nlat ? (double)v / (double)p->load.nlat : -1;
}

/* "-" for an unknown figure, else v with the given decimals. */
static const char *cell(char *buf, size_t len, double v, int decimals)
{
    if (v < 0)
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%.*f", decimals, v);
    return buf;
}

/* Adds a figure known (>= 0) to a sum that is -1 while nothing is known. */
static void add_known(double *sum, double v)
{
    if (v >= 0)
        *sum = (*sum < 0 ? 0 : *sum) + v;
}

/* The services' bytes written, flushes and commits per saga, summed: -1 when none is known. */
static void services_per_saga(const bench_phase *p, double *wbytes, double *flushes,
                              double *commits)
{
    *wbytes = *flushes = *commits = -1;
    for (int i = 0; i < p->nproc; i++) {
        const bench_proc_figures *f = &p->proc[i];
        if (f->lmdb_bytes < 0)
            continue; /* not a service with a store: nats-server, saga-bench, a ceiling role */
        add_known(wbytes, per_saga(p, f->wbytes));
        add_known(flushes, per_saga(p, f->flushes));
        add_known(commits, per_saga(p, f->commits));
    }
}

double bench_sustained(const bench_phase *p)
{
    double t = p->load.window_s + p->settle_s;
    return p->settle_s >= 0 && t > 0 ? (double)p->load.nlat / t : 0;
}

void bench_print_phase(FILE *out, const bench_phase *p)
{
    const bench_load_result *l = &p->load;
    char how[64];
    if (p->rate > 0)
        snprintf(how, sizeof(how), "rate %lld/s", p->rate);
    else
        snprintf(how, sizeof(how), "closed loop, %lld in flight", p->concurrency);
    fprintf(out, "\n== %s, %s run %d (%s, %lld orders after %lld warm-up)%s\n", p->name, p->kind,
            p->run, how, p->orders, p->warmup, p->ok ? "" : "  ** FAILED **");
    fprintf(out,
            "   %.1f sagas/s: %zu completed in %.2f s; latency ms p50 %.2f p90 %.2f p99 %.2f "
            "max %.2f mean %.2f\n",
            l->sagas_per_s, l->nlat, l->window_s, l->p50_ms, l->p90_ms, l->p99_ms, l->max_ms,
            l->mean_ms);
    if (l->lag_notification > 0 || l->lag_inventory > 0)
        fprintf(out,
                "   at the last order.confirmed, %lld notification.sent and %lld "
                "inventory.committed were still to come\n",
                l->lag_notification, l->lag_inventory);
    if (p->settle_s >= 0)
        fprintf(out,
                "   the tail was in %.2f s after the last order.confirmed: %.1f sagas/s "
                "sustained by every participant\n",
                p->settle_s, bench_sustained(p));
    else
        fprintf(out, "   the tail events did not all arrive within the settle timeout\n");
    if (l->hop_samples > 0) {
        fprintf(out, "   where the time goes (%zu orders), ms:", l->hop_samples);
        for (int i = 0; i < BENCH_NHOPS; i++)
            fprintf(out, "%s %s p50 %.2f p99 %.2f", i ? ";" : "", bench_hop_names[i],
                    l->hop_p50_ms[i], l->hop_p99_ms[i]);
        fputc('\n', out);
    }
    if (p->stream_msgs > 0)
        fprintf(out,
                "   stream SAGA_EVENTS: %llu messages, %.1f bytes each on average, %d replica(s)\n",
                (unsigned long long)p->stream_msgs,
                (double)p->stream_bytes / (double)p->stream_msgs, p->stream_replicas);
    fprintf(out, "   %-13s %9s %6s %11s %12s %11s %9s %13s %13s\n", "process", "cpu s", "cpu %",
            "drain cpu s", "cpu us/saga", "peak RSS MB", "LMDB MB", "write KB/saga",
            "flushes/saga");
    for (int i = 0; i < p->nproc; i++) {
        const bench_proc_figures *f = &p->proc[i];
        char lm[32] = "-", wb[32], fl[32];
        if (f->lmdb_bytes >= 0)
            snprintf(lm, sizeof(lm), "%.1f", (double)f->lmdb_bytes / MIB);
        if (f->hwm_kb < 0) {
            fprintf(out, "   %-13s %9s\n", f->name, "(not on this host)");
            continue;
        }
        double kb = per_saga(p, f->wbytes);
        fprintf(out, "   %-13s %9.2f %6.1f %11.2f %12.1f %11.1f %9s %13s %13s\n", f->name, f->cpu_s,
                l->window_s > 0 ? 100 * f->cpu_s / l->window_s : 0, f->cpu_drain_s,
                cpu_per_saga_us(p, f), (double)f->hwm_kb / 1024, lm,
                cell(wb, sizeof(wb), kb < 0 ? kb : kb / 1024, 2),
                cell(fl, sizeof(fl), per_saga(p, f->flushes), 3));
    }
    double wsum, fsum, csum;
    services_per_saga(p, &wsum, &fsum, &csum);
    if (wsum >= 0 || fsum >= 0) {
        char wb[32], fl[32], cm[32];
        fprintf(out,
                "   the services together: %s KB written, %s device flushes and %s commits per "
                "saga\n",
                cell(wb, sizeof(wb), wsum < 0 ? wsum : wsum / 1024, 2),
                cell(fl, sizeof(fl), fsum, 3), cell(cm, sizeof(cm), csum, 3));
    }
    fprintf(out, "   (cpu s and %%: the measured window; per saga: until every consumer drained;\n"
                 "   write: /proc/PID/io write_bytes, LMDB, spool and logs; flushes: LMDB's)\n");
}

void bench_print_table(FILE *out, const bench_phase *ph, size_t n, const char *const *names,
                       size_t nnames, const char *kind, const char *title)
{
    bench_summary ceil;
    int have_ceil = bench_summarize(ph, n, "ceiling", kind, &ceil) == 0;
    fprintf(out, "\n%s\n", title);
    fprintf(out, "  %-12s %4s %10s %10s %10s %9s %9s %9s %10s\n", "mode", "runs", "sagas/s", "min",
            "max", "ceiling", "p50 ms", "p99 ms", "sustained");
    for (size_t k = 0; k < nnames; k++) {
        bench_summary s;
        if (bench_summarize(ph, n, names[k], kind, &s) != 0)
            continue;
        char ratio[16] = "-";
        if (have_ceil && ceil.median > 0)
            snprintf(ratio, sizeof(ratio), "%.0f%%", 100 * s.median / ceil.median);
        fprintf(out, "  %-12s %4d %10.1f %10.1f %10.1f %9s %9.2f %9.2f %10.1f\n", s.name, s.n,
                s.median, s.min, s.max, ratio, s.p50_ms, s.p99_ms, s.sustained);
    }
}

void bench_print_growth(FILE *out, const bench_growth *g)
{
    fprintf(out,
            "\nGrowth (SAGA_RETENTION_MS=%lld): per process RSS / anonymous RSS / LMDB file, "
            "MB\n",
            g->retention_ms);
    fprintf(out, "  %9s %8s %8s", "orders", "s", "sagas/s");
    for (int i = 0; i < g->nproc; i++)
        fprintf(out, " %15.15s", g->names[i]);
    fprintf(out, " %9s %9s\n", "JS MB", "tail lag");
    for (size_t r = 0; r < g->nrows; r++) {
        const bench_growth_row *row = &g->rows[r];
        fprintf(out, "  %9lld %8.1f %8.1f", row->completed, row->elapsed_s, row->interval_per_s);
        for (int i = 0; i < g->nproc; i++) {
            char cell[32];
            if (row->lmdb_bytes[i] >= 0)
                snprintf(cell, sizeof(cell), "%.0f/%.0f/%.0f", (double)row->rss_kb[i] / 1024,
                         (double)row->anon_kb[i] / 1024, (double)row->lmdb_bytes[i] / MIB);
            else
                snprintf(cell, sizeof(cell), "%.0f/%.0f", (double)row->rss_kb[i] / 1024,
                         (double)row->anon_kb[i] / 1024);
            fprintf(out, " %15s", cell);
        }
        fprintf(out, " %9.1f %9lld\n", (double)row->store_bytes / MIB, row->lag);
    }
}

/* ---- the machine -------------------------------------------------------- */

static void cpu_model(char *buf, size_t len)
{
    char line[512];
    FILE *fp = fopen("/proc/cpuinfo", "r");
    snprintf(buf, len, "unknown");
    while (fp != NULL && fgets(line, sizeof(line), fp) != NULL) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon != NULL) {
            snprintf(buf, len, "%s", colon + 2);
            buf[strcspn(buf, "\n")] = '\0';
            break;
        }
    }
    if (fp != NULL)
        fclose(fp);
}

/* The mount (device and type) with the longest prefix of dir. */
static void disk_of(const char *dir, char *buf, size_t len)
{
    char dev[256], mnt[512], type[64], best[sizeof(dev) + sizeof(type) + 8] = "unknown";
    size_t best_len = 0;
    FILE *fp = fopen("/proc/mounts", "r");
    while (fp != NULL && fscanf(fp, "%255s %511s %63s %*[^\n]", dev, mnt, type) == 3) {
        size_t l = strlen(mnt);
        if (strncmp(dir, mnt, l) == 0 && (dir[l] == '/' || dir[l] == '\0' || l == 1) &&
            l >= best_len) {
            best_len = l;
            snprintf(best, sizeof(best), "%s (%s)", dev, type);
        }
    }
    if (fp != NULL)
        fclose(fp);
    snprintf(buf, len, "%s", best);
}

void bench_machine(char *buf, size_t len, const char *dir)
{
    char model[256], disk[400];
    struct utsname u;
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    cpu_model(model, sizeof(model));
    disk_of(dir, disk, sizeof(disk));
    if (uname(&u) != 0)
        snprintf(u.release, sizeof(u.release), "?");
    snprintf(buf, len, "%ld CPUs (%s), %.1f GiB RAM, disk %s, Linux %s",
             sysconf(_SC_NPROCESSORS_ONLN), model, (double)pages * (double)psz / (MIB * 1024), disk,
             u.release);
}

/* ---- JSON -------------------------------------------------------------- */

/* v rounded to the given decimals: the report keeps the precision the
 * measurement has, not 17 digits of binary noise. JSON has no NaN or
 * infinity; a figure that has none of its own is 0. */
static json_t *jreal(double v, int decimals)
{
    double scale = pow(10, decimals);
    return json_real(isfinite(v) ? round(v * scale) / scale : 0);
}

/* An array of what item(arg, i) builds for i < n; NULL if any failed. */
static json_t *json_array_of(size_t n, json_t *(*item)(const void *arg, size_t i), const void *arg)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++) {
        if (json_array_append_new(arr, item(arg, i)) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr;
}

static json_t *json_proc(const void *arg, size_t i)
{
    const bench_phase *p = arg;
    const bench_proc_figures *pf = &p->proc[i];
    return json_pack(
        "{s:s, s:o, s:o, s:o, s:I, s:I, s:I, s:o, s:I, s:o, s:I, s:o}", "name", pf->name, "cpu_s",
        jreal(pf->cpu_s, 3), "cpu_drain_s", jreal(pf->cpu_drain_s, 3), "cpu_us_per_saga",
        jreal(cpu_per_saga_us(p, pf), 2), "peak_rss_kb", (json_int_t)pf->hwm_kb, "lmdb_bytes",
        (json_int_t)pf->lmdb_bytes, "write_bytes", (json_int_t)pf->wbytes, "write_bytes_per_saga",
        jreal(per_saga(p, pf->wbytes), 1), "flushes", (json_int_t)pf->flushes, "flushes_per_saga",
        jreal(per_saga(p, pf->flushes), 3), "commits", (json_int_t)pf->commits, "commits_per_saga",
        jreal(per_saga(p, pf->commits), 3));
}

static json_t *json_hop(const void *arg, size_t i)
{
    const bench_load_result *l = arg;
    return json_pack("{s:s, s:I, s:o, s:o}", "hop", bench_hop_names[i], "samples",
                     (json_int_t)l->hop_samples, "p50_ms", jreal(l->hop_p50_ms[i], 3), "p99_ms",
                     jreal(l->hop_p99_ms[i], 3));
}

/* The trace figures of a run with the history read model (trace.c). */
static json_t *json_trace(const bench_trace_result *t)
{
    return json_pack(
        "{s:I, s:I, s:I, s:o, s:{s:o, s:o, s:o}, s:{s:o, s:o, s:o}, s:{s:o, s:o, s:o}}", "orders",
        (json_int_t)t->n, "failed", (json_int_t)t->failed, "retried", (json_int_t)t->retried,
        "events_mean", jreal(t->events_mean, 2), "query_ms", "p50", jreal(t->query_ms[0], 3), "p99",
        jreal(t->query_ms[1], 3), "max", jreal(t->query_ms[2], 3), "sagactl_ms", "p50",
        jreal(t->cli_ms[0], 3), "p99", jreal(t->cli_ms[1], 3), "max", jreal(t->cli_ms[2], 3),
        "sagactl_start_ms", "p50", jreal(t->start_ms[0], 3), "p99", jreal(t->start_ms[1], 3), "max",
        jreal(t->start_ms[2], 3));
}

static json_t *json_phase(const void *arg, size_t k)
{
    const bench_phase *p = (const bench_phase *)arg + k;
    const bench_load_result *l = &p->load;
    json_t *procs = json_array_of((size_t)p->nproc, json_proc, p);
    json_t *hops = json_array_of(l->hop_samples > 0 ? BENCH_NHOPS : 0, json_hop, l);
    json_t *latency =
        json_pack("{s:I, s:o, s:o, s:o, s:o, s:o}", "samples", (json_int_t)l->nlat, "p50",
                  jreal(l->p50_ms, 3), "p90", jreal(l->p90_ms, 3), "p99", jreal(l->p99_ms, 3),
                  "max", jreal(l->max_ms, 3), "mean", jreal(l->mean_ms, 3));
    double wsum, fsum, csum;
    services_per_saga(p, &wsum, &fsum, &csum);
    /* Every "o" is stolen, also when json_pack fails; a NULL one fails it. */
    json_t *o = json_pack(
        "{s:s, s:s, s:i, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o, "
        "s:o, s:I, s:I, s:i, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
        "name", p->name, "kind", p->kind, "run", p->run, "ok", p->ok, "rate", (json_int_t)p->rate,
        "concurrency", (json_int_t)p->concurrency, "orders", (json_int_t)p->orders, "warmup",
        (json_int_t)p->warmup, "placed", (json_int_t)l->placed, "confirmed",
        (json_int_t)l->confirmed, "cancelled", (json_int_t)l->cancelled, "rejected",
        (json_int_t)l->rejected, "window_s", jreal(l->window_s, 4), "sagas_per_s",
        jreal(l->sagas_per_s, 2), "settle_s", jreal(p->settle_s, 3), "stream_msgs",
        (json_int_t)p->stream_msgs, "stream_bytes", (json_int_t)p->stream_bytes, "stream_replicas",
        p->stream_replicas, "lag_notification", (json_int_t)l->lag_notification, "lag_inventory",
        (json_int_t)l->lag_inventory, "sustained_sagas_per_s", jreal(bench_sustained(p), 2),
        "latency_ms", latency, "processes", procs, "hops", hops, "services_write_bytes_per_saga",
        jreal(wsum, 1), "services_flushes_per_saga", jreal(fsum, 3), "services_commits_per_saga",
        jreal(csum, 3));
    if (o != NULL && p->traced && json_object_set_new(o, "trace", json_trace(&p->trace)) != 0) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

static json_t *json_summary(const bench_summary *s, const bench_summary *ceil)
{
    double ratio = ceil != NULL ? s->median / ceil->median : 0;
    return json_pack("{s:s, s:i, s:{s:o, s:o, s:o}, s:o, s:o, s:o, s:o}", "mode", s->name, "runs",
                     s->n, "sagas_per_s", "median", jreal(s->median, 2), "min", jreal(s->min, 2),
                     "max", jreal(s->max, 2), "ratio_to_ceiling", jreal(ratio, 4), "p50_ms",
                     jreal(s->p50_ms, 3), "p99_ms", jreal(s->p99_ms, 3), "sustained_sagas_per_s",
                     jreal(s->sustained, 2));
}

static json_t *json_summaries(const bench_phase *ph, size_t n, const char *const *names,
                              size_t nnames, const char *kind)
{
    bench_summary ceil;
    int have_ceil = bench_summarize(ph, n, "ceiling", kind, &ceil) == 0 && ceil.median > 0;
    json_t *arr = json_array();
    for (size_t k = 0; arr != NULL && k < nnames; k++) {
        bench_summary s;
        if (bench_summarize(ph, n, names[k], kind, &s) != 0)
            continue;
        if (json_array_append_new(arr, json_summary(&s, have_ceil ? &ceil : NULL)) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr;
}

/* One row of the growth table, with the table for the processes' names. */
typedef struct growth_row_arg {
    const bench_growth *g;
    const bench_growth_row *row;
} growth_row_arg;

static json_t *json_growth_proc(const void *arg, size_t i)
{
    const bench_growth *g = ((const growth_row_arg *)arg)->g;
    const bench_growth_row *row = ((const growth_row_arg *)arg)->row;
    return json_pack("{s:s, s:I, s:I, s:I}", "name", g->names[i], "rss_kb",
                     (json_int_t)row->rss_kb[i], "anon_kb", (json_int_t)row->anon_kb[i],
                     "lmdb_bytes", (json_int_t)row->lmdb_bytes[i]);
}

static json_t *json_growth_row(const void *arg, size_t r)
{
    const bench_growth *g = arg;
    const bench_growth_row *row = &g->rows[r];
    growth_row_arg pa = {g, row};
    json_t *procs = json_array_of((size_t)g->nproc, json_growth_proc, &pa);
    return json_pack("{s:I, s:o, s:o, s:I, s:I, s:o}", "completed", (json_int_t)row->completed,
                     "elapsed_s", jreal(row->elapsed_s, 2), "interval_sagas_per_s",
                     jreal(row->interval_per_s, 2), "store_bytes", (json_int_t)row->store_bytes,
                     "tail_lag", (json_int_t)row->lag, "processes", procs);
}

static json_t *json_growth(const bench_growth *g)
{
    if (g == NULL || g->nrows == 0)
        return json_null();
    return json_pack("{s:I, s:o}", "retention_ms", (json_int_t)g->retention_ms, "rows",
                     json_array_of(g->nrows, json_growth_row, g));
}

int bench_write_json(const char *path, json_t *settings, const bench_phase *ph, size_t n,
                     const char *const *names, size_t nnames, const bench_growth *g,
                     const char *tmp_dir)
{
    char machine[1024];
    int rv = -1;
    bench_machine(machine, sizeof(machine), tmp_dir);
    json_t *phases = json_array_of(n, json_phase, ph);
    json_t *doc =
        json_pack("{s:s, s:I, s:o, s:o, s:{s:o, s:o, s:o}, s:o}", "machine", machine, "nproc",
                  (json_int_t)sysconf(_SC_NPROCESSORS_ONLN), "settings", settings, "phases", phases,
                  "summary", "closed", json_summaries(ph, n, names, nnames, "closed"), "rate",
                  json_summaries(ph, n, names, nnames, "rate"), "half_peak",
                  json_summaries(ph, n, names, nnames, "half-peak"), "growth", json_growth(g));
    if (doc == NULL) {
        errno = ENOMEM;
        goto out;
    }
    FILE *f = fopen(path, "w");
    if (f == NULL)
        goto out;
    /* 15 significant digits print every rounded figure as it was rounded. */
    int dumped = json_dumpf(doc, f, JSON_COMPACT | JSON_REAL_PRECISION(15));
    if (fputc('\n', f) == EOF)
        dumped = -1;
    if (fclose(f) != 0 || dumped != 0)
        goto out;
    rv = 0;
out:
    json_decref(doc);
    return rv;
}
