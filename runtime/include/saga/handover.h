/* handover.h - Moving partitions between the data directories of two stopped
 * instances of one service (docs/scaling.md, "Hand-over").
 *
 * An instance keeps only the records of the partitions it owns: every
 * order-scoped record (state, tombstones, finished marks, parked events,
 * timers) is keyed by its order id, whose partition decides where it lives.
 * A hand-over moves those records of some partitions from one instance's
 * store to another's while both are stopped, and rewrites the partition set
 * each store records, so that each starts again with its new SAGA_INSTANCE
 * or SAGA_PARTITIONS and binds the moved partitions' durable consumers where
 * the giver left them. */
#ifndef SAGA_HANDOVER_H
#define SAGA_HANDOVER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What a move did. */
typedef struct saga_move_report {
    size_t records;   /* order-scoped records moved (state, finished, parked, timers) */
    size_t inbox_ids; /* processed event ids copied (all of the giver's: they do not
                         name their order, and an extra id only costs space) */
    size_t outbox;    /* messages the giver had not published, now the receiver's */
} saga_move_report;

/* Moves the records of the partitions in moved (bit p: partition p) from the
 * store in from_dir to the one in to_dir (created when absent), copies the
 * giver's processed event ids, hands its unpublished outbox to the receiver
 * (published again under the same Nats-Msg-Id: the broker or the consumers'
 * inboxes drop what already went out), and records the giver's set without
 * moved and the receiver's with it. Neither instance may run meanwhile.
 *
 * The only instance's store (it records "all") may give: it then records
 * the partitions it keeps and belongs to an instance of several, whose
 * durable consumers are per partition, so the caller must replace the only
 * instance's consumers before it starts again (saga-fleet scale does).
 *
 * Refused, with the reason in err and nothing changed: a receiver that is
 * the only instance's store, a giver that does not own every partition of
 * moved, a receiver that owns one of them (unless it is a repeat of a move
 * whose giver did not commit), and, without SAGA_MOVE_KEEP_GLOBAL in flags,
 * a giver with global state (saga_ctx_put with no order: inventory's stock,
 * a customer's history), which belongs to no partition. The receiver commits
 * first: a failure after it leaves the records in both stores, and running
 * the same move again completes it; a repeat of a move that completed (the
 * receiver owns the partitions, the giver none) does nothing and succeeds.
 * Returns 0, or -1. */
int saga_store_move_partitions(const char *from_dir, const char *to_dir, uint32_t moved,
                               unsigned flags, saga_move_report *report, char *err, size_t errlen);

/* flags of saga_store_move_partitions: the giver's global state stays where it
 * is, and the caller, who knows what it means, sets every store's afterwards
 * (saga_store_set_global; inventory's stock re-split by the new partition
 * sets). */
#define SAGA_MOVE_KEEP_GLOBAL 1u

/* One record of a store: order_id NULL for global state. Returns 0 to go on,
 * anything else to stop (saga_store_each_record then returns it). */
typedef int (*saga_store_record_fn)(const char *order_id, const char *key, const void *val,
                                    size_t len, void *udata);

/* Calls fn on every state record of the stopped store in dir, the global ones
 * first, in one read transaction. Returns 0, fn's stop value, or -1 with the
 * reason in err. */
int saga_store_each_record(const char *dir, saga_store_record_fn fn, void *udata, char *err,
                           size_t errlen);

/* A global record to write: key (a C string) and value. */
typedef struct saga_global_record {
    const char *key;
    const void *val;
    size_t len;
} saga_global_record;

/* Replaces the whole global state of the stopped store in dir by recs[0..n)
 * and records id as its last hand-over, in one transaction: absolute values,
 * so that applying it twice leaves what applying it once does. Returns 0, or
 * -1 with the reason in err. */
int saga_store_set_global(const char *dir, const char *id, const saga_global_record *recs, size_t n,
                          char *err, size_t errlen);

/* The id the last saga_store_set_global recorded in the store in dir ("" when
 * none). Returns 0, or -1 with the reason in err. */
int saga_store_handover_id(const char *dir, char *id, size_t cap, char *err, size_t errlen);

/* Makes the store in dir, which holds every partition (an instance that
 * received all the others' in a hand-over to one instance), the only
 * instance's: it records "all", as the only instance (no SAGA_INSTANCE, no
 * SAGA_PARTITIONS) checks at start. Its consumers must become one per event
 * type before it starts. A store that already is the only instance's is left
 * as it is. Returns 0, or -1 with the reason in err (it lacks a partition, or
 * cannot be opened). */
int saga_store_make_only(const char *dir, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
