/* rescale.h - the hand-over of a running fleet: a service goes from n instances to m
 * while orders flow (docs/scaling.md, "Hand-over"). The one implementation, for
 * saga-fleet scale and the tests' fleet. */
#ifndef SAGA_FLEET_RESCALE_H
#define SAGA_FLEET_RESCALE_H

#include <stddef.h>
#include <stdint.h>

#include "fleet.h"
#include "inv_handover.h"
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
    int has_stock;    /* inventory: its stock was re-split (stock below) */
    inv_handover_report stock;
} fleet_rescale_report;

/* Moves service svc of fleet f from the instances it runs (svc alone, or svc-1..svc-n)
 * to m (1 to SAGA_PARTITIONS): stops them all with SIGTERM (each finishes its batch and
 * publishes its outbox; SIGKILL after stop_ms), moves each partition whose owner
 * changes to its new owner's data directory (saga_store_move_partitions), and starts
 * svc-1..svc-m with SAGA_INSTANCE=j/m (svc alone for 1), each defined like the first
 * instance with its own data directory beside the first's, waiting up to ready_ms for
 * each. Between one and several instances, the durable consumers change from one per
 * event type to one per type and partition (or back), each new one starting after
 * the acknowledgement floor of the one(s) it replaces. Inventory's stock, which belongs
 * to no partition, is re-split over the new instances from a plan written first to
 * SAGA_HOME/handover-inventory.json and removed when every store has it
 * (inv_handover.h); a plan found there is an unfinished hand-over, finished first.
 * Fills *rep and returns 0, or -1 with err set. A failed rescale can be run again with
 * the same m. */
int fleet_rescale(fleet *f, const char *svc, int m, int stop_ms, int ready_ms,
                  fleet_rescale_report *rep, char *err, size_t errlen);

/* Whether svc has an unfinished hand-over (its plan in the fleet's home): 1 with the
 * count of instances it goes to in *to, 0 when none, -1 when the plan is unreadable. */
int fleet_rescale_pending(fleet *f, const char *svc, int *to);

/* Finishes the unfinished hand-over of svc (stopped) from its plan, without the
 * broker: the moves and the stock as planned, and the processes defined as the
 * plan's count of instances, not started (deploy/fleet up starts them). Refused
 * between one instance and several (the consumers change too: scale finishes that).
 * Fills *rep and returns 0, or -1 with err set. */
int fleet_rescale_finish(fleet *f, const char *svc, fleet_rescale_report *rep, char *err,
                         size_t errlen);

/* How many instances svc runs in f: n for svc-1..svc-n, 1 for svc alone, 0 if none. */
int fleet_instances_running(fleet *f, const char *svc);

#endif
