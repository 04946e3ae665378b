/* outbox.h - Messages written in a batch's transaction, published after its commit. */
#ifndef SAGA_OUTBOX_H
#define SAGA_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define SAGA__OUT_HDR_MAX 8
#define SAGA__SUBJECT_MAX 256

typedef struct saga__outmsg {
    uint64_t key; /* outbox key, assigned by saga__outbox_put */
    char subject[SAGA__SUBJECT_MAX];
    char msg_id[128]; /* Nats-Msg-Id: the broker drops a second copy */
    int nhdr;
    struct {
        char name[32];
        char value[256];
    } hdr[SAGA__OUT_HDR_MAX];
    uint8_t *data; /* malloc'd, owned by the message */
    size_t len;
} saga__outmsg;

/* A growable array of outgoing messages. */
typedef struct saga__outlist {
    saga__outmsg *v;
    size_t n, cap;
} saga__outlist;

void saga__outlist_init(saga__outlist *l);
/* Frees every message's data and keeps the array for reuse (n = keep). */
void saga__outlist_truncate(saga__outlist *l, size_t keep);
void saga__outlist_cleanup(saga__outlist *l);
/* Appends a zeroed message; NULL on allocation failure. */
saga__outmsg *saga__outlist_push(saga__outlist *l);
/* Adds a header; silently truncates values over 255 bytes (they are diagnostics). */
void saga__outmsg_header(saga__outmsg *m, const char *name, const char *value);

/* The bytes m takes on the wire as the broker counts them against its max
 * payload (body and headers, Nats-Msg-Id included), plus its subject. */
size_t saga__outmsg_wire_size(const saga__outmsg *m);

/* Writes m to the outbox in txn and sets m->key. */
saga_status saga__outbox_put(saga__store *st, MDB_txn *txn, saga__outmsg *m);
/* Appends every outbox entry to out, in key order. */
saga_status saga__outbox_load(saga__store *st, MDB_txn *txn, saga__outlist *out);
/* Deletes one entry; a missing entry is not an error. */
saga_status saga__outbox_del(saga__store *st, MDB_txn *txn, uint64_t key);

#endif
