/* timers.h - Durable per-order timers (saga deadlines, park expiries). */
#ifndef SAGA_TIMERS_H
#define SAGA_TIMERS_H

#include "saga/event.h"
#include "store.h"

#define SAGA__TIMER_NAME_MAX 96
/* Stale index entries (cancelled or replaced timers) one take_due drops at most. */
#define SAGA__TIMER_STALE_MAX 1024
/* Timer names starting with this character belong to the runtime. */
#define SAGA__TIMER_INTERNAL '~'

typedef struct saga__timer {
    char order_id[SAGA_ORDER_ID_MAX + 1];
    char name[SAGA__TIMER_NAME_MAX + 1];
    int64_t due_ms;
    uint8_t *data; /* malloc'd copy or NULL; freed by saga__timer_cleanup */
    size_t len;
} saga__timer;

void saga__timer_cleanup(saga__timer *t);

/* Sets (or replaces) the timer (order_id, name). */
saga_status saga__timer_set(saga__store *st, MDB_txn *txn, const char *order_id, const char *name,
                            int64_t due_ms, const void *data, size_t len);
/* Cancels it; a missing timer is not an error. */
saga_status saga__timer_cancel(saga__store *st, MDB_txn *txn, const char *order_id,
                               const char *name);
/* Cancels every timer of an order. */
saga_status saga__timer_cancel_order(saga__store *st, MDB_txn *txn, const char *order_id);
/* Removes the earliest timer due at or before now_ms and returns it in *t
 * (the caller cleans it up); SAGA_ENOTFOUND when none is due. */
saga_status saga__timer_take_due(saga__store *st, MDB_txn *txn, int64_t now_ms, saga__timer *t);
/* Moves the timers of an older runtime's store (the database "timers") into
 * their orders' scopes; the database is left empty. */
saga_status saga__timers_migrate(saga__store *st, MDB_txn *txn);
/* Due time of the earliest timer, or of a stale index entry before it (a
 * cancelled timer's, dropped when take_due reaches it); SAGA_ENOTFOUND
 * when there is none. */
saga_status saga__timer_earliest(saga__store *st, MDB_txn *txn, int64_t *due_ms);

#endif
