/* stats.h - A service's counters: what it received, handled, retried and
 * dead-lettered. The same counters answer saga.ctl.<service>.stats.
 *
 * Example:
 *
 *     static uint64_t backlog(const saga_service *svc)
 *     {
 *         saga_stats s;
 *         saga_service_stats(svc, &s); // any thread, also while run() runs
 *         return s.pending;
 *     }
 */
#ifndef SAGA_STATS_H
#define SAGA_STATS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct saga_service saga_service; /* opaque, see service.h */

typedef struct saga_stats {
    uint64_t received;      /* messages taken from JetStream */
    uint64_t processed;     /* handler returned SAGA_OK */
    uint64_t duplicates;    /* already in the inbox: acknowledged, no effect */
    uint64_t retried;       /* transient failures, negatively acknowledged with delay */
    uint64_t dead_lettered; /* sent to the dead-letter stream */
    uint64_t unknown;       /* unknown event types, acknowledged */
    uint64_t parked;        /* events put aside for a predecessor */
    uint64_t unparked;      /* parked events later processed */
    uint64_t park_expired;  /* parked events whose wait ran out */
    uint64_t timers_fired;
    uint64_t commands;
    uint64_t published; /* events confirmed by JetStream */
    uint64_t commits;   /* LMDB write transactions committed */
    uint64_t pruned;    /* inbox ids and finished sagas removed */
    uint64_t faults;    /* faults injected by the fault plan */
    uint64_t pending;   /* messages received but not yet acknowledged */
} saga_stats;

/* Copies the counters. Thread-safe. */
void saga_service_stats(const saga_service *svc, saga_stats *out);

#ifdef __cplusplus
}
#endif
#endif
