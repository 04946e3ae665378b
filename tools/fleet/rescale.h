/* rescale.h - the hand-over of a running fleet: a service goes from n instances to m
 * while orders flow (docs/scaling.md, "Hand-over"). The one implementation, for
 * saga-fleet scale and the tests' fleet. */
#ifndef SAGA_FLEET_RESCALE_H
#define SAGA_FLEET_RESCALE_H

#include <stddef.h>
#include <stdint.h>

#include "fleet.h"
#include "saga/config.h"
#include "saga/handover.h"

/* One partition set moved from one instance's store to another's. */
typedef struct fleet_move {
    char from[64], to[64]; /* process names */
    uint32_t partitions;
    saga_move_report rep;
} fleet_move;

typedef struct fleet_rescale_report {
    int from, to; /* instances before and after */
    int nmoves;   /* each partition moves at most once */
    fleet_move moves[SAGA_PARTITIONS];
    int consumers;    /* durable consumers created at another's acknowledgement floor
                         (from or to the only instance), and deleted */
    int unclean;      /* instances that had to be SIGKILLed after stop_ms */
    int64_t pause_ms; /* from the first SIGTERM until the last new instance was ready:
                         the service had no running instance */
} fleet_rescale_report;

/* Moves service svc of fleet f from the instances it runs (svc alone, or svc-1..svc-n)
 * to m (1 to SAGA_PARTITIONS): stops them all with SIGTERM (each finishes its batch and
 * publishes its outbox; SIGKILL after stop_ms), moves each partition whose owner
 * changes to its new owner's data directory (saga_store_move_partitions), and starts
 * svc-1..svc-m with SAGA_INSTANCE=j/m (svc alone for 1), each defined like the first
 * instance with its own data directory beside the first's, waiting up to ready_ms for
 * each. Between one and several instances, the durable consumers change from one per
 * event type to one per type and partition (or back), each new one starting after
 * the acknowledgement floor of the one(s) it replaces. Fills *rep and returns 0, or
 * -1 with err set. A failed rescale can be run again with the same m. */
int fleet_rescale(fleet *f, const char *svc, int m, int stop_ms, int ready_ms,
                  fleet_rescale_report *rep, char *err, size_t errlen);

/* How many instances svc runs in f: n for svc-1..svc-n, 1 for svc alone, 0 if none. */
int fleet_instances_running(fleet *f, const char *svc);

#endif
