/* report.c - What saga-bench prints and writes: one block per phase, the
 * table of modes against the ceiling (median, min, max over the runs), the
 * growth table, the machine, and all of it as JSON for --json. */
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
        fprintf(out, "   stream SAGA_EVENTS: %llu messages, %.1f bytes each on average\n",
                (unsigned long long)p->stream_msgs,
                (double)p->stream_bytes / (double)p->stream_msgs);
    fprintf(out, "   %-13s %9s %6s %11s %12s %11s %9s\n", "process", "cpu s", "cpu %",
            "drain cpu s", "cpu us/saga", "peak RSS MB", "LMDB MB");
    for (int i = 0; i < p->nproc; i++) {
        const bench_proc_figures *f = &p->proc[i];
        char lm[32] = "-";
        if (f->lmdb_bytes >= 0)
            snprintf(lm, sizeof(lm), "%.1f", (double)f->lmdb_bytes / MIB);
        if (f->hwm_kb < 0) {
            fprintf(out, "   %-13s %9s\n", f->name, "(not on this host)");
            continue;
        }
        fprintf(out, "   %-13s %9.2f %6.1f %11.2f %12.1f %11.1f %9s\n", f->name, f->cpu_s,
                l->window_s > 0 ? 100 * f->cpu_s / l->window_s : 0, f->cpu_drain_s,
                cpu_per_saga_us(p, f), (double)f->hwm_kb / 1024, lm);
    }
    fprintf(out, "   (cpu s and %%: the measured window; us/saga: until every consumer drained)\n");
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

static void jstr(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void json_phase(FILE *f, const bench_phase *p)
{
    const bench_load_result *l = &p->load;
    fprintf(f, "{\"name\":");
    jstr(f, p->name);
    fprintf(f, ",\"kind\":");
    jstr(f, p->kind);
    fprintf(f,
            ",\"run\":%d,\"ok\":%s,\"rate\":%lld,\"concurrency\":%lld,\"orders\":%lld,"
            "\"warmup\":%lld,\"placed\":%lld,\"confirmed\":%lld,\"cancelled\":%lld,"
            "\"rejected\":%lld,\"window_s\":%.4f,\"sagas_per_s\":%.2f,\"settle_s\":%.3f,"
            "\"stream_msgs\":%llu,\"stream_bytes\":%llu,\"lag_notification\":%lld,"
            "\"lag_inventory\":%lld,"
            "\"sustained_sagas_per_s\":%.2f,"
            "\"latency_ms\":{\"samples\":%zu,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
            "\"max\":%.3f,\"mean\":%.3f},\"processes\":[",
            p->run, p->ok ? "true" : "false", p->rate, p->concurrency, p->orders, p->warmup,
            l->placed, l->confirmed, l->cancelled, l->rejected, l->window_s, l->sagas_per_s,
            p->settle_s, (unsigned long long)p->stream_msgs, (unsigned long long)p->stream_bytes,
            l->lag_notification, l->lag_inventory, bench_sustained(p), l->nlat, l->p50_ms,
            l->p90_ms, l->p99_ms, l->max_ms, l->mean_ms);
    for (int i = 0; i < p->nproc; i++) {
        const bench_proc_figures *pf = &p->proc[i];
        fprintf(f, "%s{\"name\":", i ? "," : "");
        jstr(f, pf->name);
        fprintf(f,
                ",\"cpu_s\":%.3f,\"cpu_drain_s\":%.3f,\"cpu_us_per_saga\":%.2f,"
                "\"peak_rss_kb\":%lld,\"lmdb_bytes\":%lld}",
                pf->cpu_s, pf->cpu_drain_s, cpu_per_saga_us(p, pf), pf->hwm_kb, pf->lmdb_bytes);
    }
    fprintf(f, "],\"hops\":[");
    for (int i = 0; i < BENCH_NHOPS && l->hop_samples > 0; i++) {
        fprintf(f, "%s{\"hop\":", i ? "," : "");
        jstr(f, bench_hop_names[i]);
        fprintf(f, ",\"samples\":%zu,\"p50_ms\":%.3f,\"p99_ms\":%.3f}", l->hop_samples,
                l->hop_p50_ms[i], l->hop_p99_ms[i]);
    }
    fprintf(f, "]}");
}

static void json_summaries(FILE *f, const bench_phase *ph, size_t n, const char *const *names,
                           size_t nnames, const char *kind)
{
    bench_summary ceil;
    int have_ceil = bench_summarize(ph, n, "ceiling", kind, &ceil) == 0 && ceil.median > 0;
    int first = 1;
    fprintf(f, "[");
    for (size_t k = 0; k < nnames; k++) {
        bench_summary s;
        if (bench_summarize(ph, n, names[k], kind, &s) != 0)
            continue;
        fprintf(f, "%s{\"mode\":", first ? "" : ",");
        jstr(f, s.name);
        fprintf(f,
                ",\"runs\":%d,\"sagas_per_s\":{\"median\":%.2f,\"min\":%.2f,\"max\":%.2f},"
                "\"ratio_to_ceiling\":%.4f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
                "\"sustained_sagas_per_s\":%.2f}",
                s.n, s.median, s.min, s.max, have_ceil ? s.median / ceil.median : 0, s.p50_ms,
                s.p99_ms, s.sustained);
        first = 0;
    }
    fprintf(f, "]");
}

int bench_write_json(const char *path, const char *settings_json, const bench_phase *ph, size_t n,
                     const char *const *names, size_t nnames, const bench_growth *g,
                     const char *tmp_dir)
{
    char machine[1024];
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    bench_machine(machine, sizeof(machine), tmp_dir);
    fprintf(f, "{\"machine\":");
    jstr(f, machine);
    fprintf(f, ",\"nproc\":%ld,\"settings\":%s,\"phases\":[", sysconf(_SC_NPROCESSORS_ONLN),
            settings_json);
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputc(',', f);
        json_phase(f, &ph[i]);
    }
    fprintf(f, "],\"summary\":{\"closed\":");
    json_summaries(f, ph, n, names, nnames, "closed");
    fprintf(f, ",\"rate\":");
    json_summaries(f, ph, n, names, nnames, "rate");
    fprintf(f, ",\"half_peak\":");
    json_summaries(f, ph, n, names, nnames, "half-peak");
    fprintf(f, "},\"growth\":");
    if (g == NULL || g->nrows == 0) {
        fprintf(f, "null");
    } else {
        fprintf(f, "{\"retention_ms\":%lld,\"rows\":[", g->retention_ms);
        for (size_t r = 0; r < g->nrows; r++) {
            const bench_growth_row *row = &g->rows[r];
            fprintf(f,
                    "%s{\"completed\":%lld,\"elapsed_s\":%.2f,\"interval_sagas_per_s\":%.2f,"
                    "\"store_bytes\":%lld,\"tail_lag\":%lld,\"processes\":[",
                    r ? "," : "", row->completed, row->elapsed_s, row->interval_per_s,
                    row->store_bytes, row->lag);
            for (int i = 0; i < g->nproc; i++) {
                fprintf(f, "%s{\"name\":", i ? "," : "");
                jstr(f, g->names[i]);
                fprintf(f, ",\"rss_kb\":%lld,\"anon_kb\":%lld,\"lmdb_bytes\":%lld}", row->rss_kb[i],
                        row->anon_kb[i], row->lmdb_bytes[i]);
            }
            fprintf(f, "]}");
        }
        fprintf(f, "]}");
    }
    fprintf(f, "}\n");
    return fclose(f) == 0 ? 0 : -1;
}
