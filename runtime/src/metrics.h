/* metrics.h - Prometheus metrics: the figures the service thread keeps per
 * batch, their text exposition, and the HTTP endpoint that serves them.
 *
 * The service thread owns a saga__metrics and updates it with no lock (fixed
 * arrays, no allocation). Once per batch, under the service's stats mutex,
 * it copies it into the published snapshot; libmicrohttpd's thread reads
 * only that snapshot, under the same mutex. */
#ifndef SAGA_METRICS_H
#define SAGA_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "saga/event.h"
#include "saga/stats.h"
#include "saga/status.h"

/* Event types counted separately; later types share the label "other", so a
 * flood of forged types cannot grow the table. */
#define SAGA__METRICS_TYPES_MAX 48
#define SAGA__METRICS_OTHER_TYPE "other"
#define SAGA__HIST_MAX_BOUNDS 20

/* Which upper bounds a histogram has (saga__hist_bounds). */
typedef enum saga__hist_kind {
    SAGA__HIST_COUNT,  /* messages per batch */
    SAGA__HIST_SECONDS /* durations in seconds */
} saga__hist_kind;

/* Counts per bucket, NOT cumulative (the exposition sums them); the last
 * bucket is +Inf. */
typedef struct saga__hist {
    saga__hist_kind kind;
    uint64_t bucket[SAGA__HIST_MAX_BOUNDS + 1];
    uint64_t count;
    double sum;
} saga__hist;

typedef struct saga__type_count {
    char type[SAGA_TYPE_MAX + 1];
    uint64_t n;
} saga__type_count;

typedef struct saga__metrics {
    saga__type_count types[SAGA__METRICS_TYPES_MAX];
    int ntypes;
    saga__hist batch_size; /* messages per batch */
    saga__hist commit_s;   /* one batch's LMDB commit */
    saga__hist publish_s;  /* one batch's events: first sent to last acknowledged by the broker */
    saga__hist handler_s;  /* one handler call */
    saga__hist hop_s;      /* an event's time_ms to the start of its handling */
} saga__metrics;

void saga__metrics_init(saga__metrics *m);
/* The finite upper bounds of kind, ascending; *n is their number. */
const double *saga__hist_bounds(saga__hist_kind kind, size_t *n);
void saga__hist_observe(saga__hist *h, double v);
/* Adds the counts of from into to (same kind). */
void saga__hist_merge(saga__hist *to, const saga__hist *from);
/* Adds n events of type. */
void saga__metrics_count_type(saga__metrics *m, const char *type, uint64_t n);
/* Adds every figure of from into to. */
void saga__metrics_merge(saga__metrics *to, const saga__metrics *from);
/* Copies the used part of from into to (cheaper than the whole struct). */
void saga__metrics_copy(saga__metrics *to, const saga__metrics *from);

/* The Prometheus text exposition (format 0.0.4) of the counters st and the
 * figures m, every series labelled service="<service>". Pure: no I/O.
 * Returns a malloc'd NUL-terminated text (the caller frees it), its length
 * in *len; NULL when memory runs out. */
char *saga__metrics_text(const char *service, const saga_stats *st, const saga__metrics *m,
                         size_t *len);

#endif
