/* metrics.c - Prometheus metrics: per-batch figures, their text exposition,
 * and GET /metrics served by libmicrohttpd (SAGA_METRICS_ADDR).
 *
 * libmicrohttpd rather than a hand-written server: request parsing, limits
 * and connection handling are its job. Its thread reads only the snapshot
 * the service thread publishes once per batch (metrics.h), so scraping
 * never touches the hot path. */
#include "metrics.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "service_internal.h"

#define TEXT_INITIAL_CAP 8192
#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_PATH "/metrics"
#define MHD_CONNECTION_LIMIT 16
#define MHD_TIMEOUT_S 10

/* Batch sizes up to the largest batch_max; durations from 100 us to a minute
 * (hop latency includes time spent queued in the broker). */
static const double count_bounds[] = {1,   2,   4,   8,    16,   32,    64,
                                      128, 256, 512, 1024, 4096, 16384, 65536};
static const double seconds_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                        0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                        1,      2.5,     5,      10,    30,     60};
_Static_assert(sizeof(count_bounds) / sizeof(count_bounds[0]) <= SAGA__HIST_MAX_BOUNDS,
               "count_bounds exceeds SAGA__HIST_MAX_BOUNDS");
_Static_assert(sizeof(seconds_bounds) / sizeof(seconds_bounds[0]) <= SAGA__HIST_MAX_BOUNDS,
               "seconds_bounds exceeds SAGA__HIST_MAX_BOUNDS");

const double *saga__hist_bounds(saga__hist_kind kind, size_t *n)
{
    if (kind == SAGA__HIST_COUNT) {
        *n = sizeof(count_bounds) / sizeof(count_bounds[0]);
        return count_bounds;
    }
    *n = sizeof(seconds_bounds) / sizeof(seconds_bounds[0]);
    return seconds_bounds;
}

void saga__metrics_init(saga__metrics *m)
{
    memset(m, 0, sizeof(*m));
    m->batch_size.kind = SAGA__HIST_COUNT;
    m->commit_s.kind = SAGA__HIST_SECONDS;
    m->publish_s.kind = SAGA__HIST_SECONDS;
    m->handler_s.kind = SAGA__HIST_SECONDS;
    m->hop_s.kind = SAGA__HIST_SECONDS;
}

void saga__hist_observe(saga__hist *h, double v)
{
    size_t n, i;
    const double *b = saga__hist_bounds(h->kind, &n);
    if (!(v >= 0))
        v = 0; /* a clock step backwards (or NaN) is no negative latency */
    for (i = 0; i < n && v > b[i]; i++)
        ;
    h->bucket[i]++;
    h->count++;
    h->sum += v;
}

void saga__hist_merge(saga__hist *to, const saga__hist *from)
{
    for (size_t i = 0; i <= SAGA__HIST_MAX_BOUNDS; i++)
        to->bucket[i] += from->bucket[i];
    to->count += from->count;
    to->sum += from->sum;
}

void saga__metrics_count_type(saga__metrics *m, const char *type, uint64_t n)
{
    int i;
    for (i = 0; i < m->ntypes; i++)
        if (strcmp(m->types[i].type, type) == 0)
            break;
    if (i == m->ntypes) {
        if (m->ntypes >= SAGA__METRICS_TYPES_MAX - 1)
            type = SAGA__METRICS_OTHER_TYPE; /* the last row is everything else */
        for (i = 0; i < m->ntypes; i++)
            if (strcmp(m->types[i].type, type) == 0)
                break;
        if (i == m->ntypes) {
            snprintf(m->types[i].type, sizeof(m->types[i].type), "%s", type);
            m->types[i].n = 0;
            m->ntypes++;
        }
    }
    m->types[i].n += n;
}

void saga__metrics_merge(saga__metrics *to, const saga__metrics *from)
{
    for (int i = 0; i < from->ntypes; i++)
        saga__metrics_count_type(to, from->types[i].type, from->types[i].n);
    saga__hist_merge(&to->batch_size, &from->batch_size);
    saga__hist_merge(&to->commit_s, &from->commit_s);
    saga__hist_merge(&to->publish_s, &from->publish_s);
    saga__hist_merge(&to->handler_s, &from->handler_s);
    saga__hist_merge(&to->hop_s, &from->hop_s);
}

void saga__metrics_copy(saga__metrics *to, const saga__metrics *from)
{
    memcpy(to->types, from->types, (size_t)from->ntypes * sizeof(from->types[0]));
    to->ntypes = from->ntypes;
    to->batch_size = from->batch_size;
    to->commit_s = from->commit_s;
    to->publish_s = from->publish_s;
    to->handler_s = from->handler_s;
    to->hop_s = from->hop_s;
}

/* ---- the text exposition ---------------------------------------------- */

typedef struct text {
    char *p;
    size_t n, cap;
    int oom;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(text *t, const char *fmt, ...)
{
    va_list ap;
    int w;
    if (t->oom)
        return;
    for (;;) {
        va_start(ap, fmt);
        w = vsnprintf(t->p + t->n, t->cap - t->n, fmt, ap);
        va_end(ap);
        if (w < 0) {
            t->oom = 1;
            return;
        }
        if ((size_t)w < t->cap - t->n)
            break;
        size_t cap = (t->cap + (size_t)w + 1) * 2;
        char *p = realloc(t->p, cap);
        if (p == NULL) {
            t->oom = 1;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
    t->n += (size_t)w;
}

/* A label value as the exposition format wants it: \, " and newline escaped.
 * Names and types are validated elsewhere, so this is belt and braces. */
static const char *label(const char *v, char *buf, size_t cap)
{
    size_t o = 0;
    for (; *v != '\0' && o + 3 < cap; v++) {
        if (*v == '\\' || *v == '"') {
            buf[o++] = '\\';
            buf[o++] = *v;
        } else if (*v == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else {
            buf[o++] = *v;
        }
    }
    buf[o] = '\0';
    return buf;
}

static void put_hist(text *t, const char *name, const char *help, const char *svc,
                     const saga__hist *h)
{
    size_t nb;
    const double *b = saga__hist_bounds(h->kind, &nb);
    uint64_t cum = 0;
    put(t, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (size_t i = 0; i < nb; i++) {
        cum += h->bucket[i];
        put(t, "%s_bucket{service=\"%s\",le=\"%.12g\"} %llu\n", name, svc, b[i],
            (unsigned long long)cum);
    }
    cum += h->bucket[nb];
    put(t, "%s_bucket{service=\"%s\",le=\"+Inf\"} %llu\n", name, svc, (unsigned long long)cum);
    put(t, "%s_sum{service=\"%s\"} %.12g\n", name, svc, h->sum);
    put(t, "%s_count{service=\"%s\"} %llu\n", name, svc, (unsigned long long)h->count);
}

char *saga__metrics_text(const char *service, const saga_stats *st, const saga__metrics *m,
                         size_t *len)
{
    text t = {malloc(TEXT_INITIAL_CAP), 0, TEXT_INITIAL_CAP, 0};
    char svc[2 * SAGA_PRODUCER_MAX + 8], type[2 * SAGA_TYPE_MAX + 8];
    if (t.p == NULL)
        return NULL;
    t.p[0] = '\0';
    label(service, svc, sizeof(svc));
    /* Counters get _total; gauges are named as they are. */
#define XX(name, kind, meaning)                                                                    \
    if ((kind) == SAGA_STAT_COUNT)                                                                 \
        put(&t,                                                                                    \
            "# HELP saga_" #name "_total %s\n# TYPE saga_" #name "_total counter\n"                \
            "saga_" #name "_total{service=\"%s\"} %llu\n",                                         \
            meaning, svc, (unsigned long long)st->name);                                           \
    else                                                                                           \
        put(&t,                                                                                    \
            "# HELP saga_" #name " %s\n# TYPE saga_" #name " gauge\n"                              \
            "saga_" #name "{service=\"%s\"} %llu\n",                                               \
            meaning, svc, (unsigned long long)st->name);
    SAGA_STATS_MAP(XX)
#undef XX
    put(&t, "# HELP saga_events_handled_total events whose handler succeeded, by type, since "
            "the process started\n# TYPE saga_events_handled_total counter\n");
    for (int i = 0; i < m->ntypes; i++)
        put(&t, "saga_events_handled_total{service=\"%s\",type=\"%s\"} %llu\n", svc,
            label(m->types[i].type, type, sizeof(type)), (unsigned long long)m->types[i].n);
    put_hist(&t, "saga_batch_size", "messages per batch (one LMDB commit)", svc, &m->batch_size);
    put_hist(&t, "saga_commit_seconds", "time of one batch's LMDB commit", svc, &m->commit_s);
    put_hist(&t, "saga_publish_seconds",
             "time of one batch's publish, its first event sent to the broker's last ack", svc,
             &m->publish_s);
    put_hist(&t, "saga_handler_seconds", "time of one handler call", svc, &m->handler_s);
    put_hist(&t, "saga_hop_latency_seconds",
             "from an event's time to the start of its handling here", svc, &m->hop_s);
    if (t.oom) {
        free(t.p);
        return NULL;
    }
    *len = t.n;
    return t.p;
}

/* ---- the HTTP endpoint ------------------------------------------------ */

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned code, char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body, body != NULL ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc;
    if (r == NULL) {
        free(body);
        return MHD_NO;
    }
    if (code == MHD_HTTP_OK)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE);
    rc = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return rc;
}

/* Runs on libmicrohttpd's thread; takes the stats mutex for two copies. */
static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **req)
{
    saga_service *svc = cls;
    saga_stats st;
    saga__metrics *snap;
    char *body;
    size_t len = 0;
    (void)version;
    (void)upload;
    (void)req;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, NULL, 0);
    if (*upload_size != 0) {
        *upload_size = 0; /* a GET with a body: ignore it */
        return MHD_YES;
    }
    if (strcmp(url, METRICS_PATH) != 0)
        return reply(conn, MHD_HTTP_NOT_FOUND, NULL, 0);
    snap = malloc(sizeof(*snap));
    if (snap == NULL)
        return MHD_NO;
    saga_service_stats(svc, &st);
    pthread_mutex_lock(&svc->stats_mu);
    saga__metrics_copy(snap, &svc->mx_pub);
    pthread_mutex_unlock(&svc->stats_mu);
    body = saga__metrics_text(svc->name, &st, snap, &len);
    free(snap);
    if (body == NULL)
        return MHD_NO;
    return reply(conn, MHD_HTTP_OK, body, len);
}

saga_status saga__metrics_start(saga_service *svc)
{
    struct sockaddr_in sa;
    const union MHD_DaemonInfo *info;
    int port;
    if (svc->metrics_addr[0] == '\0')
        return SAGA_OK;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    if (saga__config_parse_addr(svc->metrics_addr, svc->metrics_host, sizeof(svc->metrics_host),
                                &port) != 0 ||
        inet_pton(AF_INET, svc->metrics_host, &sa.sin_addr) != 1)
        return saga__fail(svc, SAGA_EINVAL, "metrics address \"%s\": want ipv4:port",
                          svc->metrics_addr);
    sa.sin_port = htons((uint16_t)port);
    svc->mhd =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)port, NULL, NULL, answer, svc,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT,
                         (unsigned)MHD_CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
                         (unsigned)MHD_TIMEOUT_S, MHD_OPTION_END);
    if (svc->mhd == NULL)
        return saga__fail(svc, SAGA_EIO, "metrics: cannot listen on %s", svc->metrics_addr);
    info = MHD_get_daemon_info(svc->mhd, MHD_DAEMON_INFO_BIND_PORT);
    svc->metrics_port = info != NULL ? info->port : port;
    SAGA__LOG(&svc->log, SAGA_LOG_INFO, "event=metrics_listening addr=%s:%d", svc->metrics_host,
              svc->metrics_port);
    return SAGA_OK;
}

void saga__metrics_stop(saga_service *svc)
{
    if (svc->mhd == NULL)
        return;
    MHD_stop_daemon(svc->mhd);
    svc->mhd = NULL;
}
