/* comp_emit.c - Emitting a protobuf-c message from a compensation. */
#include "comp_internal.h"

#include <stdint.h>
#include <stdlib.h>

saga_status comp_emit(saga_ctx *ctx, const char *type, const char *order_id,
                      const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    /* One byte more so an empty message still gets a buffer of its own. */
    uint8_t *buf = malloc(len + 1);
    saga_status st;
    if (buf == NULL)
        return SAGA_ENOMEM;
    protobuf_c_message_pack(msg, buf);
    st = saga_ctx_emit(ctx, type, order_id, 1, buf, len);
    free(buf);
    return st;
}
