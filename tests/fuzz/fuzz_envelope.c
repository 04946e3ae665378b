/* fuzz_envelope.c - saga_event_decode on any bytes: it must never crash, and
 * whatever it accepts must encode again and decode to the same fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "saga/event.h"
#include "saga/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_event(const saga_event *a, const saga_event *b)
{
    if (strcmp(a->event_id, b->event_id) != 0 || strcmp(a->type, b->type) != 0 ||
        a->schema_version != b->schema_version || strcmp(a->order_id, b->order_id) != 0 ||
        strcmp(a->causation_id, b->causation_id) != 0 || strcmp(a->producer, b->producer) != 0 ||
        a->sequence != b->sequence || a->time_ms != b->time_ms || strcmp(a->trace, b->trace) != 0 ||
        a->payload_len != b->payload_len ||
        (a->payload_len > 0 && memcmp(a->payload, b->payload, a->payload_len) != 0))
        abort(); /* the round trip changed a field */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    saga_event ev, again;
    void *owner = NULL, *owner2 = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    char err[160], subject[256];

    if (saga_event_decode(data, size, &ev, &owner, err, sizeof(err)) != SAGA_OK)
        return 0;
    /* What the runtime does next with a decoded event. */
    if (saga_ulid_time_ms(ev.event_id) < 0)
        abort(); /* decode accepted an event id that is not a ULID */
    saga_event_subject(ev.type, ev.order_id, subject, sizeof(subject));
    if (saga_event_encode(&ev, &buf, &len) != SAGA_OK)
        abort(); /* a decoded event must be encodable */
    if (saga_event_decode(buf, len, &again, &owner2, err, sizeof(err)) != SAGA_OK)
        abort(); /* and its encoding decodable */
    same_event(&ev, &again);
    free(buf);
    free(owner2);
    free(owner);
    return 0;
}
