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

/* The counters a service reports (saga_service_stats, and as JSON on
 * saga.ctl.<service>.stats), declared once. XX(name, kind, meaning):
 * SAGA_STAT_COUNT only grows and is summed per batch; SAGA_STAT_GAUGE is a
 * value of the moment, set where it is known. */
#define SAGA_STAT_COUNT 0
#define SAGA_STAT_GAUGE 1
#define SAGA_STATS_MAP(XX)                                                                         \
    XX(received, SAGA_STAT_COUNT, "messages taken from JetStream")                                 \
    XX(processed, SAGA_STAT_COUNT, "handler returned SAGA_OK")                                     \
    XX(duplicates, SAGA_STAT_COUNT, "already in the inbox: acknowledged, no effect")               \
    XX(retried, SAGA_STAT_COUNT, "transient failures, negatively acknowledged with delay")         \
    XX(dead_lettered, SAGA_STAT_COUNT, "sent to the dead-letter stream")                           \
    XX(unknown, SAGA_STAT_COUNT, "unknown event types, acknowledged")                              \
    XX(parked, SAGA_STAT_COUNT, "events put aside for a predecessor")                              \
    XX(unparked, SAGA_STAT_COUNT, "parked events later processed")                                 \
    XX(park_expired, SAGA_STAT_COUNT, "parked events whose wait ran out")                          \
    XX(timers_fired, SAGA_STAT_COUNT, "timer handlers that succeeded")                             \
    XX(commands, SAGA_STAT_COUNT, "request/reply commands handled")                                \
    XX(published, SAGA_STAT_COUNT, "messages confirmed by JetStream")                              \
    XX(commits, SAGA_STAT_COUNT, "LMDB write transactions committed")                              \
    XX(flushes, SAGA_STAT_COUNT, "device flushes of the commits: fdatasync, synced meta page")     \
    XX(pruned, SAGA_STAT_COUNT, "inbox ids and finished sagas removed")                            \
    XX(faults, SAGA_STAT_COUNT, "faults injected by the fault plan")                               \
    XX(too_big, SAGA_STAT_COUNT, "emits refused: over the broker's max payload")                   \
    XX(unpublishable, SAGA_STAT_COUNT, "outgoing messages the broker refused for good")            \
    XX(publish_retries, SAGA_STAT_COUNT, "publish attempts that failed and were retried")          \
    XX(consumers_recreated, SAGA_STAT_COUNT, "durable consumers found missing and recreated")      \
    XX(streams_recreated, SAGA_STAT_COUNT, "streams found missing and recreated")                  \
    XX(publish_stalled_ms, SAGA_STAT_GAUGE, "how long the current publish has failed, 0 if not")   \
    XX(pending, SAGA_STAT_GAUGE, "messages received but not yet acknowledged")

typedef struct saga_stats {
#define SAGA__STATS_FIELD(name, kind, meaning) uint64_t name;
    SAGA_STATS_MAP(SAGA__STATS_FIELD)
#undef SAGA__STATS_FIELD
} saga_stats;

/* Copies the counters. Thread-safe. */
void saga_service_stats(const saga_service *svc, saga_stats *out);

#ifdef __cplusplus
}
#endif
#endif
