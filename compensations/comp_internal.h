/* comp_internal.h - What the compensations share among themselves and nobody else. */
#ifndef SAGA_COMP_INTERNAL_H
#define SAGA_COMP_INTERNAL_H

#include <protobuf-c/protobuf-c.h>

#include "saga/saga.h"

/* Packs msg and emits it as type for order_id, schema version 1, through
 * saga_ctx_emit() (which copies it to the outbox). Borrows every argument;
 * the packed bytes are freed before it returns. SAGA_ENOMEM if they cannot
 * be allocated, else what saga_ctx_emit() returns. The services have the
 * same in svc_emit(); compensations keep their own so they depend on the
 * runtime alone, never on services/. */
saga_status comp_emit(saga_ctx *ctx, const char *type, const char *order_id,
                      const ProtobufCMessage *msg);

#endif
