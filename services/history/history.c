/* history.c - The order history read model: every event, indexed by order id.
 *
 * Stored subjects do not name orders (the broker keeps state per distinct
 * subject), so "every event of order X" is not a subject filter but a
 * query. This participant consumes every event type (one durable consumer,
 * "*.*", so it sees them in stream order) and appends each one's envelope
 * to its order's record in LMDB, with the same effectively-once guarantees
 * as any service: a redelivered event is found in the inbox and not
 * appended twice. `sagactl trace` asks it (saga.q.history.events).
 *
 * An order's record is pruned SAGA_RETENTION_MS after its final event
 * (order.confirmed or order.cancelled); events that follow the final one
 * (a late commit, a notification) join it until then. */
#include <stdlib.h>
#include <string.h>

#include "commands.pb-c.h"
#include "saga/saga.h"
#include "svc.h"

#define NAME "history"
#define KEY "events"
#define RECORD_VERSION 1
#define EVENTS_SUBJECT "saga.q.history.events"
#define SUMMARY_SUBJECT "saga.q.history.order"

static long long max_bytes; /* per order: the events query must fit one NATS message */

static const saga_app_setting settings[] = {
    {"HISTORY_MAX_BYTES_PER_ORDER",
     "envelope bytes kept per order; later events are counted "
     "and the history marked truncated",
     256 * 1024, 4096, 768 * 1024, &max_bytes, NULL, NULL},
    {0}};

/* The record: this header, then per event a 4-byte length, its 8-byte
 * stream sequence (both little-endian) and its envelope, in the order they
 * were handled. */
typedef struct rec_head {
    uint32_t version;
    uint32_t count;   /* envelopes stored */
    uint32_t dropped; /* envelopes that did not fit */
    uint8_t final;    /* order.confirmed or order.cancelled seen */
    uint8_t pad[3];
} rec_head;

#define ENTRY_HEAD 12

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int is_final(const char *type)
{
    return strcmp(type, "order.confirmed") == 0 || strcmp(type, "order.cancelled") == 0;
}

/* Reads order_id's record; *head zeroed and *body NULL when there is none. */
static saga_status load(saga_ctx *ctx, const char *order_id, rec_head *head, const uint8_t **body,
                        size_t *body_len)
{
    const void *v;
    size_t len;
    memset(head, 0, sizeof(*head));
    *body = NULL;
    *body_len = 0;
    saga_status st = saga_ctx_get(ctx, order_id, KEY, &v, &len);
    if (st == SAGA_ENOTFOUND)
        return SAGA_OK;
    if (st != SAGA_OK)
        return st;
    if (len < sizeof(*head))
        return SAGA_EVALIDATE;
    memcpy(head, v, sizeof(*head));
    if (head->version != RECORD_VERSION)
        return SAGA_EVALIDATE;
    *body = (const uint8_t *)v + sizeof(*head);
    *body_len = len - sizeof(*head);
    return SAGA_OK;
}

static saga_status on_event(saga_ctx *ctx, const saga_event *ev, void *udata)
{
    rec_head head;
    const uint8_t *body;
    size_t body_len, env_len = 0;
    uint8_t *env = NULL, *rec = NULL;
    (void)udata;
    saga_status st = load(ctx, ev->order_id, &head, &body, &body_len);
    if (st != SAGA_OK)
        return st;
    st = saga_event_encode(ev, &env, &env_len);
    if (st != SAGA_OK) /* it decoded and validated, so it encodes: a bug if not */
        return SAGA_EREJECT;
    head.version = RECORD_VERSION;
    head.final |= (uint8_t)is_final(ev->type);
    size_t add = ENTRY_HEAD + env_len;
    if (body_len + add > (size_t)max_bytes) {
        head.dropped++;
        add = 0;
    } else {
        head.count++;
    }
    rec = malloc(sizeof(head) + body_len + add);
    if (rec == NULL) {
        st = SAGA_ENOMEM;
        goto out;
    }
    memcpy(rec, &head, sizeof(head));
    if (body_len > 0)
        memcpy(rec + sizeof(head), body, body_len);
    if (add > 0) {
        uint8_t *p = rec + sizeof(head) + body_len;
        put_le(p, env_len, 4);
        put_le(p + 4, saga_ctx_stream_seq(ctx), 8);
        memcpy(p + ENTRY_HEAD, env, env_len);
    }
    st = saga_ctx_put(ctx, ev->order_id, KEY, rec, sizeof(head) + body_len + add);
    /* Finishing again after the final event keeps a late event's record
     * from outliving the rest: each finish prunes what is there then. */
    if (st == SAGA_OK && head.final)
        st = saga_ctx_finish(ctx, ev->order_id);
out:
    free(rec);
    free(env);
    return st;
}

/* What a query asks about: the order and its record. */
typedef struct query {
    char order[SAGA_ORDER_ID_MAX + 1];
    rec_head head;
    const uint8_t *body;
    size_t body_len;
} query;

/* A query's order id and its record: SAGA_EINVAL (nothing loaded) when the
 * payload is not an order id, else as load(). */
static saga_status load_query(saga_ctx *ctx, const uint8_t *data, size_t len, query *q)
{
    if (!svc_query_order_id(data, len, q->order))
        return SAGA_EINVAL;
    return load(ctx, q->order, &q->head, &q->body, &q->body_len);
}

/* saga.q.history.events: the order's envelopes (OrderHistory, protobuf). */
static saga_status q_events(saga_ctx *ctx, const char *subject, const uint8_t *data, size_t len,
                            void *udata)
{
    Saga__V1__OrderHistory reply = SAGA__V1__ORDER_HISTORY__INIT;
    ProtobufCBinaryData *items = NULL;
    uint64_t *seqs = NULL;
    query q;
    (void)subject;
    (void)udata;
    saga_status st = load_query(ctx, data, len, &q);
    if (st == SAGA_EINVAL)
        return svc_reply(ctx, &reply.base); /* found = false */
    if (st != SAGA_OK)
        return st;
    if (q.head.count > 0) {
        items = calloc(q.head.count, sizeof(*items));
        seqs = calloc(q.head.count, sizeof(*seqs));
        if (items == NULL || seqs == NULL) {
            free(items);
            free(seqs);
            return SAGA_ENOMEM;
        }
    }
    size_t off = 0, n = 0;
    while (n < q.head.count && off + ENTRY_HEAD <= q.body_len) {
        const uint8_t *p = q.body + off;
        size_t l = (size_t)get_le(p, 4);
        if (l > q.body_len - off - ENTRY_HEAD)
            break; /* a damaged record ends here */
        seqs[n] = get_le(p + 4, 8);
        items[n].data = (uint8_t *)p + ENTRY_HEAD;
        items[n].len = l;
        n++;
        off += ENTRY_HEAD + l;
    }
    /* Stored in the order handled, which is stream order except around a
     * redelivery after a crash: answer in stream order. Few events per
     * order, so an insertion sort. */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && seqs[j - 1] > seqs[j]; j--) {
            uint64_t ts = seqs[j];
            ProtobufCBinaryData ti = items[j];
            seqs[j] = seqs[j - 1];
            items[j] = items[j - 1];
            seqs[j - 1] = ts;
            items[j - 1] = ti;
        }
    reply.found = q.head.version == RECORD_VERSION;
    reply.n_events = n;
    reply.events = items;
    reply.n_stream_seqs = n;
    reply.stream_seqs = seqs;
    reply.truncated = q.head.dropped > 0 || n < q.head.count;
    st = svc_reply(ctx, &reply.base);
    free(items);
    free(seqs);
    return st;
}

/* saga.q.history.order: the summary every participant gives `sagactl get`. */
static saga_status q_order(saga_ctx *ctx, const char *subject, const uint8_t *data, size_t len,
                           void *udata)
{
    query q;
    (void)subject;
    (void)udata;
    saga_status st = load_query(ctx, data, len, &q);
    if (st == SAGA_EINVAL)
        return svc_reply_not_order_id(ctx, "history");
    if (st != SAGA_OK)
        return st;
    return svc_json_send(ctx,
                         json_pack("{s:s, s:s, s:b, s:I, s:b, s:b}", "service", "history",
                                   "order_id", q.order, "found", q.head.version == RECORD_VERSION,
                                   "events", (json_int_t)q.head.count, "truncated",
                                   q.head.dropped > 0, "final", q.head.final != 0));
}

static saga_status setup(saga_service *svc, const saga_config *cfg, void *udata)
{
    static const svc_sub subs[] = {{"*.*", on_event}, {NULL, NULL}};
    static const svc_cmd cmds[] = {
        {EVENTS_SUBJECT, q_events}, {SUMMARY_SUBJECT, q_order}, {NULL, NULL}};
    (void)cfg;
    (void)udata;
    return svc_wire(svc, &(svc_wiring){.subs = subs, .cmds = cmds});
}

int main(int argc, char **argv)
{
    return saga_app_main(NAME,
                         "Indexes every event by order id: the order history read model that "
                         "sagactl trace asks.",
                         settings, argc, argv, setup, NULL);
}
