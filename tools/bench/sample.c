/* sample.c - What saga-bench reads about a running fleet: CPU time,
 * resident memory and bytes written of each process from /proc, the device
 * flushes and commits each service counts, the size of each LMDB file and of the
 * JetStream store, and the size of the event stream. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "bench.h"

#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

/* ---- the broker --------------------------------------------------------- */

int bench_fleet_stream(const bench_fleet *f, uint64_t *msgs, uint64_t *bytes, int *replicas)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    int rc = -1;
    if (bench_connect(f->url, &nc) == NATS_OK &&
        natsConnection_JetStream(&js, nc, NULL) == NATS_OK &&
        js_GetStreamInfo(&si, js, "SAGA_EVENTS", NULL, NULL) == NATS_OK) {
        *msgs = si->State.Msgs;
        *bytes = si->State.Bytes;
        *replicas = si->Config != NULL ? si->Config->Replicas : 0;
        rc = 0;
    }
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return rc;
}

/* ---- processes and files ----------------------------------------------- */

double bench_tick_s(void)
{
    long t = sysconf(_SC_CLK_TCK);
    return t > 0 ? 1.0 / (double)t : 0.01;
}

static int read_stat(pid_t pid, uint64_t *ticks)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: fields start after the last ')'. */
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return -1;
    unsigned long long ut = 0, st = 0;
    /* Fields 3..13 are skipped; 14 and 15 are utime and stime. */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    *ticks = ut + st;
    return 0;
}

/* A "key: value" line of a /proc file, -1 when absent or unreadable. */
static long long proc_field(pid_t pid, const char *file, const char *key)
{
    char path[64], line[256];
    size_t klen = strlen(key);
    long long v = -1;
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return -1;
    while (fgets(line, sizeof(line), fp) != NULL) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            v = strtoll(line + klen + 1, NULL, 10);
            break;
        }
    }
    fclose(fp);
    return v;
}

/* A counter of a stats reply, -1 when there is no reply or it has none. */
static long long counter_of(const json_t *reply, const char *key)
{
    json_t *v = json_object_get(reply, key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

/* The "flushes" and "commits" counters of a participant, -1 when it does not answer. */
static void counters_of(const bench_fleet *f, const char *name, bench_pstat *s)
{
    json_t *reply = f->nc != NULL ? bench_ask_stats(f->nc, name, 1000) : NULL;
    s->flushes = counter_of(reply, "flushes");
    s->commits = counter_of(reply, "commits");
    json_decref(reply);
}

void bench_fleet_sample(const bench_fleet *f, bench_pstat out[BENCH_MAXPROC])
{
    for (int i = 0; i < f->nproc; i++) {
        const bench_proc *p = &f->proc[i];
        bench_pstat *s = &out[i];
        memset(s, 0, sizeof(*s));
        s->rss_kb = s->anon_kb = s->hwm_kb = s->lmdb_bytes = s->wbytes = -1;
        s->flushes = s->commits = -1;
        if (p->pid > 0 && read_stat(p->pid, &s->cpu_ticks) == 0) {
            s->ok = 1;
            s->rss_kb = proc_field(p->pid, "status", "VmRSS");
            s->hwm_kb = proc_field(p->pid, "status", "VmHWM");
            s->anon_kb = proc_field(p->pid, "status", "RssAnon");
            s->wbytes = proc_field(p->pid, "io", "write_bytes");
        }
        if (p->data_dir[0] != '\0') { /* a service of this host */
            counters_of(f, p->name, s);
            char path[BENCH_PATH_MAX + 16];
            struct stat st;
            snprintf(path, sizeof(path), "%s/data.mdb", p->data_dir);
            if (stat(path, &st) == 0)
                s->lmdb_bytes = (long long)st.st_size;
        }
    }
}

static long long store_sum;

static int add_size(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (flag == FTW_F)
        store_sum += (long long)st->st_size;
    return 0;
}

long long bench_fleet_store_bytes(const bench_fleet *f)
{
    if (f->store[0] == '\0')
        return 0;
    store_sum = 0; /* nftw has no closure; saga-bench samples from one thread */
    nftw(f->store, add_size, 16, FTW_PHYS);
    return store_sum;
}
