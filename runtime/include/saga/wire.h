/* wire.h - The wire contract's names: subjects, headers, streams, dead-letter causes.
 *
 * Everything a participant in any language must agree on is named here once
 * and written down in docs/protocol.md; the runtime, the services and the
 * tools use these names instead of spelling the strings themselves. */
#ifndef SAGA_WIRE_H
#define SAGA_WIRE_H

#include <stddef.h>

#include "saga/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- streams -------------------------------------------------------- */

#define SAGA_STREAM_EVENTS "SAGA_EVENTS" /* every event, subjects SAGA_SUBJ_EVENTS_ALL */
#define SAGA_STREAM_DLQ "SAGA_DLQ"       /* dead letters, subjects SAGA_SUBJ_DLQ_ALL */
/* Recorded on the streams a service creates, so that a reader of the broker
 * alone learns the subject scheme and the partitioning. */
#define SAGA_STREAM_EVENTS_DESCRIPTION                                                             \
    "saga events on evt.<partition>.<type>; partitions=16; "                                       \
    "partition=fnv1a32(order_id) mod 16; order id in header Saga-Order-Id"
#define SAGA_STREAM_DLQ_DESCRIPTION "saga dead letters on dlq.<service>"

/* ---- subjects ------------------------------------------------------- */

/* Events are stored on evt.<partition>.<type>: the order id is not in the
 * subject (the broker keeps state per distinct subject, so a subject per
 * order would grow its memory with every order retained), but its
 * partition is, so that an instance can own partitions and a reader of one
 * order reads one partition. The order id travels in the envelope and in
 * the header SAGA_HDR_ORDER_ID. The partition is saga_partition_of(). */
#define SAGA_PARTITIONS 16                 /* fixed when the stream is created */
#define SAGA_SUBJ_EVENTS_ALL "evt.>"       /* every event */
#define SAGA_SUBJ_EVENTS_PREFIX "evt."     /* every event subject starts so */
#define SAGA_SUBJ_EVENT_FMT "evt.%u.%s"    /* partition, type */
#define SAGA_SUBJ_EVENTS_OF_FMT "evt.*.%s" /* type pattern, every partition: a filter */
#define SAGA_SUBJ_PARTITION_FMT "evt.%u.>" /* partition: every event of its orders */
#define SAGA_SUBJ_DLQ_ALL "dlq.>"          /* dlq.<service>: its dead letters */
#define SAGA_SUBJ_DLQ_FMT "dlq.%s"         /* service */
#define SAGA_DLQ_MSG_ID_FMT "dlq.%s.%s"    /* service, id: a dead letter's Nats-Msg-Id */
#define SAGA_SUBJ_CTL_FMT "saga.ctl.%s.%s" /* service, verb: stats, faults */
#define SAGA_CTL_STATS "stats"             /* verb: the counters as JSON */
#define SAGA_CTL_FAULTS "faults"           /* verb: read or change the fault plan */
#define SAGA_SUBJ_QUERY_FMT "saga.q.%s.%s" /* service, query: order, stock */
#define SAGA_SUBJ_CMD_FMT "saga.cmd.%s.%s" /* service, command: place, cancel, stock.set */
/* A request routed to the instance that owns a partition: a command, query
 * or control subject with the partition appended, "saga.q.payment.order.7"
 * (docs/scaling.md). The only instance answers every partition and the
 * subject without one. */
#define SAGA_SUBJ_ROUTED_FMT "%s.%u" /* subject, partition */

#define SAGA_SUBJ_DELIVER_FMT "_saga.dlv.%s" /* durable name: its push delivery subject */

#define SAGA_SUBJ_DISCOVER "saga.discover" /* every participant answers, see discovery.h */

#define SAGA_SUBJ_ORDER_PLACE "saga.cmd.order.place"
#define SAGA_SUBJ_ORDER_CANCEL "saga.cmd.order.cancel"
#define SAGA_SUBJ_STOCK_SET "saga.cmd.inventory.stock.set"
#define SAGA_SUBJ_STOCK_GET "saga.cmd.inventory.stock.get"
#define SAGA_SUBJ_STOCK_QUERY "saga.q.inventory.stock" /* every SKU (JSON) */

/* The durable name of a participant's consumer of a type pattern, as
 * docs/protocol.md gives it: "<participant>_<pattern>" with '.' spelled '_'
 * and '*' spelled "any" (durable names may hold neither). SAGA_ETOOBIG if
 * it does not fit in cap bytes, and out then holds "". */
saga_status saga_durable_name(char *out, size_t cap, const char *participant, const char *pattern);

/* ---- headers -------------------------------------------------------- */

#define SAGA_HDR_MSG_ID "Nats-Msg-Id"         /* the event id: the broker's dedupe key */
#define SAGA_HDR_ORDER_ID "Saga-Order-Id"     /* events: the envelope's order id, undecoded */
#define SAGA_HDR_TRACEPARENT "traceparent"    /* W3C: events (= envelope trace), commands */
#define SAGA_HDR_CAUSE "Saga-Cause"           /* dead letters: one of SAGA_DLQ_CAUSES */
#define SAGA_HDR_REASON "Saga-Reason"         /* dead letters: the cause in prose */
#define SAGA_HDR_SERVICE "Saga-Service"       /* dead letters: who dead-lettered it */
#define SAGA_HDR_DELIVERIES "Saga-Deliveries" /* dead letters: deliveries so far */
#define SAGA_HDR_SUBJECT "Saga-Subject"       /* dead letters: where it was (replay target) */
#define SAGA_HDR_REPLAYS "Saga-Replays"       /* dead letters: times replayed so far */
#define SAGA_HDR_TRUNCATED "Saga-Truncated"   /* dead letters: the original body's size, when cut */

/* ---- dead-letter causes ------------------------------------------- */

/* XX(enum suffix, wire name, deliberate): "deliberate" causes are the ones
 * a message earns by what it is (a poison message, a handler's refusal);
 * the others say something went wrong that an operator should look at. */
#define SAGA_DLQ_CAUSES(XX)                                                                        \
    XX(UNDECODABLE, "undecodable", 1)     /* the envelope does not decode or validate */           \
    XX(REJECTED, "rejected", 1)           /* the handler refused it for good (SAGA_EREJECT) */     \
    XX(FORBIDDEN, "forbidden", 1)         /* its producer may not emit it, or subject and envelope \
                                             disagree */                                           \
    XX(EXHAUSTED, "exhausted", 0)         /* failed SAGA_MAX_DELIVER deliveries */                 \
    XX(PARK_EXPIRED, "park_expired", 0)   /* parked, and its predecessor never arrived */          \
    XX(UNPUBLISHABLE, "unpublishable", 0) /* an outgoing message the broker refuses for good */

typedef enum saga_dlq_cause {
#define SAGA__DLQ_ENUM(e, name, deliberate) SAGA_DLQ_##e,
    SAGA_DLQ_CAUSES(SAGA__DLQ_ENUM)
#undef SAGA__DLQ_ENUM
        SAGA_DLQ_CAUSE_COUNT
} saga_dlq_cause;

/* The wire name of a cause ("undecodable"), or "unknown" out of range. */
const char *saga_dlq_cause_name(saga_dlq_cause c);

/* The cause named name, or SAGA_DLQ_CAUSE_COUNT if none is. */
saga_dlq_cause saga_dlq_cause_parse(const char *name);

/* 1 if a message with this cause was dead-lettered by what it is. */
int saga_dlq_cause_deliberate(saga_dlq_cause c);

/* ---- business faults ---------------------------------------------- */

/* XX(key, service): the business rates of a fault plan (docs/failures.md)
 * that a service's rules consult with saga_ctx_chance(). A plan naming any
 * other key that is not one of the runtime's own is refused, so a typo or a
 * crafted key can never sit in a plan unseen. */
#define SAGA_BUSINESS_FAULTS(XX)                                                                   \
    XX("decline_rate", "payment")                                                                  \
    XX("stockout_rate", "inventory")                                                               \
    XX("ship_fail_rate", "shipping")

/* Every business outcome a fault plan causes says so in its reason, in
 * the same words for each service: "<outcome> (injected by the fault plan:
 * <key>)". The order's cancel detail carries the reason on, so `sagactl
 * get`, `trace` and the customer's mail tell a drill from a real failure. */
#define SAGA_FAULT_INJECTED "injected by the fault plan"

#ifdef __cplusplus
}
#endif
#endif
