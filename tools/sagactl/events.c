/* events.c - What an event of the order saga means to a person: its mark
 * (compensation, failure), a one-line summary of its payload, and the whole
 * envelope plus decoded payload as JSON for scripts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "events.pb-c.h"

/* The payload message of each event type (schemas/events.proto). Extension
 * participants' "<name>.vetoed" and "<name>.cleared" match by suffix. */
static const struct {
    const char *type;
    const ProtobufCMessageDescriptor *desc;
} payloads[] = {
    {"order.placed", &saga__v1__order_placed__descriptor},
    {"order.confirmed", &saga__v1__order_confirmed__descriptor},
    {"order.cancelled", &saga__v1__order_cancelled__descriptor},
    {"payment.charged", &saga__v1__payment_charged__descriptor},
    {"payment.declined", &saga__v1__payment_declined__descriptor},
    {"payment.refunded", &saga__v1__payment_refunded__descriptor},
    {"inventory.reserved", &saga__v1__inventory_reserved__descriptor},
    {"inventory.rejected", &saga__v1__inventory_rejected__descriptor},
    {"inventory.committed", &saga__v1__inventory_committed__descriptor},
    {"inventory.released", &saga__v1__inventory_released__descriptor},
    {"shipping.scheduled", &saga__v1__shipment_scheduled__descriptor},
    {"shipping.failed", &saga__v1__shipment_failed__descriptor},
    {"shipping.cancelled", &saga__v1__shipment_cancelled__descriptor},
    {"notification.sent", &saga__v1__notification_sent__descriptor},
    {"order.veto_ignored", &saga__v1__veto_ignored__descriptor},
};

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static const ProtobufCMessageDescriptor *payload_desc(const char *type)
{
    for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++)
        if (strcmp(payloads[i].type, type) == 0)
            return payloads[i].desc;
    if (ends_with(type, ".vetoed"))
        return &saga__v1__participant_vetoed__descriptor;
    if (ends_with(type, ".cleared"))
        return &saga__v1__participant_cleared__descriptor;
    return NULL;
}

/* Decodes the payload of ev, or returns NULL (unknown type or bad bytes).
 * Free the result with protobuf_c_message_free_unpacked(m, NULL). */
static ProtobufCMessage *decode_payload(const saga_event *ev)
{
    const ProtobufCMessageDescriptor *d = payload_desc(ev->type);
    if (d == NULL)
        return NULL;
    return protobuf_c_message_unpack(d, NULL, ev->payload_len, ev->payload);
}

int ctl_event_well_formed(const saga_event *ev)
{
    ProtobufCMessage *m = decode_payload(ev);
    int ok = m != NULL;
    if (ok && strcmp(ev->type, "order.placed") == 0)
        ok = ((const Saga__V1__OrderPlaced *)m)->n_items > 0;
    if (m != NULL)
        protobuf_c_message_free_unpacked(m, NULL);
    return ok;
}

ctl_mark ctl_event_mark(const char *type)
{
    static const char *const compensations[] = {"payment.refunded", "inventory.released",
                                                "shipping.cancelled"};
    static const char *const failures[] = {"payment.declined", "inventory.rejected",
                                           "shipping.failed", "order.cancelled"};
    for (size_t i = 0; i < sizeof(compensations) / sizeof(compensations[0]); i++)
        if (strcmp(type, compensations[i]) == 0)
            return CTL_MARK_COMPENSATION;
    for (size_t i = 0; i < sizeof(failures) / sizeof(failures[0]); i++)
        if (strcmp(type, failures[i]) == 0)
            return CTL_MARK_FAILURE;
    if (ends_with(type, ".vetoed"))
        return CTL_MARK_FAILURE;
    if (strcmp(type, "order.veto_ignored") == 0)
        return CTL_MARK_LATE_VETO;
    return CTL_MARK_NONE;
}

const char *ctl_mark_label(ctl_mark m)
{
    switch (m) {
    case CTL_MARK_COMPENSATION:
        return "COMPENSATION";
    case CTL_MARK_FAILURE:
        return "FAILURE";
    case CTL_MARK_LATE_VETO:
        return "LATE VETO";
    default:
        return "";
    }
}

static void add_money(ctl_buf *b, int64_t cents, const char *currency)
{
    char m[32];
    ctl_money(cents, m, sizeof(m));
    ctl_buf_printf(b, "%s %s", m, currency != NULL && *currency ? currency : "?");
}

/* "A1 x2 @ 10.00, B7 x1 @ 3.50"; at most a few lines, then "+N more". */
static void add_items(ctl_buf *b, Saga__V1__LineItem **items, size_t n, int prices)
{
    enum { SHOWN = 4 };
    for (size_t i = 0; i < n && i < SHOWN; i++) {
        ctl_buf_printf(b, "%s%s x%d", i ? ", " : "", items[i]->sku, (int)items[i]->quantity);
        if (prices) {
            char m[32];
            ctl_money(items[i]->unit_cents, m, sizeof(m));
            ctl_buf_printf(b, " @ %s", m);
        }
    }
    if (n > SHOWN)
        ctl_buf_printf(b, ", +%zu more", n - SHOWN);
    if (n == 0)
        ctl_buf_puts(b, "no items");
}

static void summarize(ctl_buf *b, const saga_event *ev, const ProtobufCMessage *msg)
{
    const char *t = ev->type;
    if (strcmp(t, "order.placed") == 0) {
        const Saga__V1__OrderPlaced *p = (const void *)msg;
        ctl_buf_printf(b, "customer %s: ", p->customer_id);
        add_items(b, p->items, p->n_items, 1);
        ctl_buf_puts(b, "; total ");
        add_money(b, p->total_cents, p->currency);
        ctl_buf_printf(b, "; ship to %s", p->ship_to);
        if (p->deadline_unix_ms > 0)
            ctl_buf_printf(b, "; deadline +%llds",
                           (long long)((p->deadline_unix_ms - ev->time_ms) / 1000));
    } else if (strcmp(t, "order.confirmed") == 0) {
        const Saga__V1__OrderConfirmed *p = (const void *)msg;
        ctl_buf_puts(b, "total ");
        add_money(b, p->total_cents, p->currency);
        ctl_buf_printf(b, "; shipment %s", p->shipment_id);
    } else if (strcmp(t, "order.cancelled") == 0) {
        const Saga__V1__OrderCancelled *p = (const void *)msg;
        ctl_buf_printf(b, "reason %s", p->reason);
        if (*p->failed_step)
            ctl_buf_printf(b, " (failed step %s)", p->failed_step);
        if (*p->detail)
            ctl_buf_printf(b, ": %s", p->detail);
    } else if (strcmp(t, "payment.charged") == 0) {
        const Saga__V1__PaymentCharged *p = (const void *)msg;
        add_money(b, p->amount_cents, p->currency);
        ctl_buf_printf(b, " charged to %s", p->customer_id);
    } else if (strcmp(t, "payment.declined") == 0) {
        const Saga__V1__PaymentDeclined *p = (const void *)msg;
        add_money(b, p->amount_cents, p->currency);
        ctl_buf_printf(b, " declined: %s", p->reason);
    } else if (strcmp(t, "payment.refunded") == 0) {
        const Saga__V1__PaymentRefunded *p = (const void *)msg;
        add_money(b, p->amount_cents, p->currency);
        ctl_buf_printf(b, " refunded: %s", p->reason);
    } else if (strcmp(t, "inventory.reserved") == 0) {
        const Saga__V1__InventoryReserved *p = (const void *)msg;
        ctl_buf_puts(b, "held ");
        add_items(b, p->items, p->n_items, 0);
    } else if (strcmp(t, "inventory.rejected") == 0) {
        const Saga__V1__InventoryRejected *p = (const void *)msg;
        ctl_buf_printf(b, "%s: asked %d, available %lld", p->sku, (int)p->asked,
                       (long long)p->available);
    } else if (strcmp(t, "inventory.committed") == 0) {
        const Saga__V1__InventoryCommitted *p = (const void *)msg;
        ctl_buf_puts(b, "taken ");
        add_items(b, p->items, p->n_items, 0);
    } else if (strcmp(t, "inventory.released") == 0) {
        const Saga__V1__InventoryReleased *p = (const void *)msg;
        ctl_buf_puts(b, "released ");
        add_items(b, p->items, p->n_items, 0);
        if (*p->reason)
            ctl_buf_printf(b, ": %s", p->reason);
    } else if (strcmp(t, "shipping.scheduled") == 0) {
        const Saga__V1__ShipmentScheduled *p = (const void *)msg;
        ctl_buf_printf(b, "shipment %s to %s by %s", p->shipment_id, p->ship_to,
                       *p->carrier ? p->carrier : "?");
    } else if (strcmp(t, "shipping.failed") == 0) {
        const Saga__V1__ShipmentFailed *p = (const void *)msg;
        ctl_buf_printf(b, "to %s: %s", p->ship_to, p->reason);
    } else if (strcmp(t, "shipping.cancelled") == 0) {
        const Saga__V1__ShipmentCancelled *p = (const void *)msg;
        ctl_buf_printf(b, "shipment %s: %s", p->shipment_id, p->reason);
    } else if (strcmp(t, "notification.sent") == 0) {
        const Saga__V1__NotificationSent *p = (const void *)msg;
        ctl_buf_printf(b, "%s message to %s (%s)", p->kind, p->customer_id, p->spool_file);
    } else if (strcmp(t, "order.veto_ignored") == 0) {
        const Saga__V1__VetoIgnored *p = (const void *)msg;
        ctl_buf_printf(b, "veto by %s came after the order was %s; nothing undone: %s",
                       p->participant, p->state, p->reason);
    } else if (ends_with(t, ".vetoed")) {
        const Saga__V1__ParticipantVetoed *p = (const void *)msg;
        ctl_buf_printf(b, "vetoed by %s: %s", *p->participant ? p->participant : ev->producer,
                       p->reason);
    } else if (ends_with(t, ".cleared")) {
        const Saga__V1__ParticipantCleared *p = (const void *)msg;
        ctl_buf_printf(b, "cleared by %s", *p->participant ? p->participant : ev->producer);
    }
}

void ctl_event_summary(ctl_buf *b, const saga_event *ev)
{
    ProtobufCMessage *msg = decode_payload(ev);
    if (msg == NULL) {
        ctl_buf_printf(b, "(%zu-byte payload%s)", ev->payload_len,
                       payload_desc(ev->type) != NULL ? " that does not decode" : "");
        return;
    }
    summarize(b, ev, msg);
    protobuf_c_message_free_unpacked(msg, NULL);
}

static json_t *message_json(const ProtobufCMessage *msg);

/* The element at p of field f's type. */
static json_t *value_json(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return json_integer(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_integer(*(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return json_integer(*(const int64_t *)p);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        /* json_int_t is signed: larger values wrap, as no event carries them. */
        return json_integer((json_int_t) * (const uint64_t *)p);
    case PROTOBUF_C_TYPE_FLOAT:
        return json_real(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE:
        return json_real(*(const double *)p);
    case PROTOBUF_C_TYPE_BOOL:
        return json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_STRING:
        return ctl_json_text(*(char *const *)p);
    case PROTOBUF_C_TYPE_BYTES:
        /* No event payload carries bytes today; show their size only. */
        return json_pack("{s:I}", "bytes", (json_int_t)((const ProtobufCBinaryData *)p)->len);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *m = *(ProtobufCMessage *const *)p;
        return m != NULL ? message_json(m) : json_null();
    }
    }
    return json_null();
}

static size_t element_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    default:
        return 4;
    }
}

/* Walks the message through its descriptor, so every payload type, present
 * and future, prints with all of its fields and no per-type code. */
static json_t *message_json(const ProtobufCMessage *msg)
{
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    json_t *o = json_object();
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *member = (const char *)msg + f->offset;
        json_t *v;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)((const char *)msg + f->quantifier_offset);
            const char *arr = *(char *const *)member;
            v = json_array();
            for (size_t j = 0; j < n; j++)
                json_array_append_new(v, value_json(f, arr + j * element_size(f->type)));
        } else {
            v = value_json(f, member);
        }
        json_object_set_new(o, f->name, v);
    }
    return o;
}

/* n as a JSON integer, or null when absent. */
static json_t *int_or_null(int present, json_int_t n)
{
    return present ? json_integer(n) : json_null();
}

json_t *ctl_event_json(const saga_event *ev, uint64_t stream_seq, const int64_t *offset_ms)
{
    ctl_buf summary;
    ctl_buf_init(&summary);
    ctl_event_summary(&summary, ev);
    ctl_mark mk = ctl_event_mark(ev->type);
    ProtobufCMessage *msg = decode_payload(ev);
    saga_traceparent tp;
    int traced = saga_traceparent_parse(ev->trace, &tp);
    json_t *j = json_pack(
        "{s:o, s:o, s:o, s:I, s:o, s:o, s:o, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:o}",
        "stream_seq", int_or_null(stream_seq > 0, (json_int_t)stream_seq), "event_id",
        ctl_json_text(ev->event_id), "type", ctl_json_text(ev->type), "schema_version",
        (json_int_t)ev->schema_version, "order_id", ctl_json_text(ev->order_id), "causation_id",
        ctl_json_text(ev->causation_id), "producer", ctl_json_text(ev->producer), "sequence",
        (json_int_t)ev->sequence, "time_unix_ms", (json_int_t)ev->time_ms, "offset_ms",
        int_or_null(offset_ms != NULL, offset_ms != NULL ? *offset_ms : 0), "trace",
        ctl_json_text(ev->trace), "trace_id", traced ? json_string(tp.trace_id) : json_null(),
        "span_id", traced ? json_string(tp.span_id) : json_null(), "mark",
        ctl_json_text(mk == CTL_MARK_NONE ? NULL : ctl_mark_label(mk)), "summary",
        ctl_json_text(ctl_buf_str(&summary)), "payload_size", (json_int_t)ev->payload_len,
        "payload", msg != NULL ? message_json(msg) : json_null());
    if (msg != NULL)
        protobuf_c_message_free_unpacked(msg, NULL);
    ctl_buf_cleanup(&summary);
    return j;
}
