/* park.h - Events put aside until a predecessor of the same order arrives. */
#ifndef SAGA_PARK_H
#define SAGA_PARK_H

#include "saga/event.h"
#include "store.h"

typedef struct saga__parked {
    char event_id[SAGA_ID_LEN + 1];
    int delivery;
    uint8_t *raw; /* the encoded envelope, malloc'd */
    size_t len;
} saga__parked;

/* Stores the encoded event under (order_id, event_id). */
saga_status saga__park_put(saga__store *st, MDB_txn *txn, const char *order_id,
                           const char *event_id, int delivery, const uint8_t *raw, size_t len);
/* Loads every event parked for order_id into a malloc'd array *out of *n
 * entries (NULL, 0 when none). Free with saga__park_free. */
saga_status saga__park_list(saga__store *st, MDB_txn *txn, const char *order_id, saga__parked **out,
                            size_t *n);
/* Loads one parked event; SAGA_ENOTFOUND if it is not (or no longer) parked. */
saga_status saga__park_get(saga__store *st, MDB_txn *txn, const char *order_id,
                           const char *event_id, saga__parked *out);
saga_status saga__park_del(saga__store *st, MDB_txn *txn, const char *order_id,
                           const char *event_id);
void saga__park_free(saga__parked *v, size_t n);
/* Whether any event is parked for order_id (a cheap cursor seek). */
int saga__park_any(saga__store *st, MDB_txn *txn, const char *order_id);

#endif
