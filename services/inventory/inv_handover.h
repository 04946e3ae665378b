/* inv_handover.h - Inventory's stock in a hand-over between instances
 * (docs/scaling.md, "Inventory's hand-over").
 *
 * Each inventory instance holds a share of every SKU's stock. When the
 * instances change (saga-fleet scale inventory N), every instance is
 * stopped; the reservations move with their partitions, and the stock
 * records, which belong to no partition, are set again on every store from
 * a plan computed once, before any store changes, and kept in a file until
 * every store has it: per SKU the free and committed units of all the old
 * instances re-split by the new partition sets (saga_partition_share, the
 * rule of sagactl stock set), and each new instance's held units the sum of
 * the reserved orders it owns. The values are absolute, so the plan applied
 * again after a failure half way gives what applying it once does. */
#ifndef INV_HANDOVER_H
#define INV_HANDOVER_H

#include <stddef.h>
#include <stdint.h>

/* What a plan holds, or what applying it did. */
typedef struct inv_handover_report {
    char id[32];   /* the hand-over's id, recorded in every store it is applied to */
    int from, to;  /* instances before and after */
    int resumed;   /* the plan was found, not computed: an unfinished hand-over */
    size_t stores; /* stores set (the new instances' and the ones that leave) */
    size_t skus;   /* SKUs */
    long long available, held, committed; /* summed over the instances: the same before
                                             and after */
} inv_handover_report;

/* The plan of a hand-over from the stores in from[0..n) to the m stores in
 * to[0..m) with partition sets sets[0..m), in the file path: computed from the
 * stores and written (to a temporary file, then renamed) when path does not
 * exist; read back when it does (*rep->resumed set), which must then be a plan
 * to the same stores. Nothing but path is written. Refused, -1 with the reason
 * in err: a plan in path to other stores, a store that cannot be read, a global
 * record the hand-over does not know, held units that do not match the reserved
 * orders. Returns 0 and fills *rep. */
int inv_handover_plan(const char *path, const char *const *from, int n, const char *const *to,
                      const uint32_t *sets, int m, inv_handover_report *rep, char *err,
                      size_t errlen);

/* Sets the stock of the first limit stores of the plan in path (all of them
 * with limit < 0), each in one transaction, and removes path once every store
 * has it. Returns 0 and fills *rep, or -1 with the reason in err. */
int inv_handover_apply(const char *path, int limit, inv_handover_report *rep, char *err,
                       size_t errlen);

/* Whether path holds the plan of an unfinished hand-over: 1 with the count of
 * instances it goes to in *to, 0 when there is none, -1 when it cannot be read. */
int inv_handover_pending(const char *path, int *to);

#endif
