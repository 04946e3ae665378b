/* fuzz_order.c - The order service's event and command handlers on fuzzed input
 * (see service_harness.h). */
#define main order_main
#include "order/order.c"
#undef main

/* The id of the order a place command created, for the records after it. */
static void fuzz_order_reply(const uint8_t *data, size_t len, char out[SAGA_ORDER_ID_MAX + 1])
{
    Saga__V1__PlaceOrderReply *rep = saga__v1__place_order_reply__unpack(NULL, len, data);
    if (rep == NULL)
        return;
    if (rep->order_id != NULL && rep->order_id[0] != '\0')
        snprintf(out, SAGA_ORDER_ID_MAX + 1, "%s", rep->order_id);
    saga__v1__place_order_reply__free_unpacked(rep, NULL);
}
#define FUZZ_REPLY fuzz_order_reply
#define FUZZ_SERVICE "order"
#define FUZZ_SETTINGS settings
#include "service_harness.h"
