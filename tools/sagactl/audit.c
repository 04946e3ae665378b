/* audit.c - Checks the saga's invariants (SPEC.md, "Invariants") over the whole
 * event stream, the inventory's stock, the mail spool and the dead-letter
 * stream: every order final in time, money and stock conserved, one live
 * shipment per confirmed order, exactly the right messages, no effect done
 * twice, no event id naming two different events, no dead letter but
 * deliberately poisoned ones. Also gathers the run's figures from the
 * services' counters. The command and its report are in audit_cmd.c. */
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "commands.pb-c.h"
#include "events.pb-c.h"
#include "saga/hash.h"
#include "saga/wire.h"

#define HASH_NONFATAL_OOM 1
#define uthash_nonfatal_oom(e) (ctl_hash_oom_ = 1)
#include <uthash.h>

enum { ST_NONE, ST_PENDING, ST_CONFIRMED, ST_CANCELLED };

/* Everything the stream says about one order. Counts are of distinct events
 * (a stored duplicate of an event id is reported once, and not counted). */
typedef struct order_facts {
    UT_hash_handle hh;
    uint32_t events;
    int state;
    char reason[32];
    int64_t total, deadline_ms;
    int64_t charged, refunded;
    uint32_t n_placed, n_confirmed, n_cancelled;
    uint32_t n_charged, n_refunded;
    uint32_t n_reserved, n_committed, n_released;
    uint32_t n_scheduled, n_ship_cancelled;
    uint32_t msg_confirmed, msg_cancelled, msg_refund;       /* notification.sent events */
    uint32_t spool_confirmed, spool_cancelled, spool_refund; /* files in the mail spool */
    int overflow;    /* a sum of its amounts does not fit in 64 bits */
    int64_t last_ms; /* when the broker stored its latest event */
    /* The first event of each kind the participants' records must vouch for. */
    char placed_id[SAGA_ID_LEN + 1], confirmed_id[SAGA_ID_LEN + 1];
    char cancelled_id[SAGA_ID_LEN + 1], charged_id[SAGA_ID_LEN + 1];
    char refunded_id[SAGA_ID_LEN + 1], cleared_id[SAGA_ID_LEN + 1];
    char gate[SAGA_PRODUCER_MAX + 1]; /* who sent cleared_id ("fraud") */
    /* What the participants' own records say (verify_orders): found is -1
     * when the service did not answer, 0 when it has no record. */
    int8_t ord_found, pay_found, gate_found;
    char ord_state[12], pay_state[12], gate_decision[12];
    int64_t ord_total, pay_charged, pay_refunded;
    char key[]; /* the order id */
} order_facts;

/* Units per SKU moved by inventory events. */
typedef struct sku_facts {
    UT_hash_handle hh;
    int64_t reserved, committed, released;
    int overflow; /* a sum does not fit in 64 bits */
    char key[];   /* the SKU */
} sku_facts;

/* What the stream holds under one event id: a second copy with the same
 * fingerprint is a duplicate publish (an injected fault, or an outbox
 * republished after the broker's duplicate window): consumers drop it by
 * their inbox. A different event under the same id is a real defect. */
typedef struct id_facts {
    UT_hash_handle hh;
    uint32_t copies;
    uint64_t fingerprint;
    char type[SAGA_TYPE_MAX + 1];
    char key[]; /* the event id */
} id_facts;

/* The facts of one order, added when new; NULL when out of memory. */
static order_facts *order_of(ctl_audit *a, const char *order_id)
{
    order_facts *o = NULL;
    int created;
    CTL_HASH_UPSERT(a->orders, order_id, o, created);
    (void)created;
    return o;
}

static sku_facts *sku_of(ctl_audit *a, const char *sku)
{
    sku_facts *s = NULL;
    int created;
    CTL_HASH_UPSERT(a->skus, sku, s, created);
    (void)created;
    if (s == NULL)
        a->oom = 1;
    return s;
}

/* Makes room for one more element of size bytes in the array *v (n used,
 * *cap allocated) and returns it, or NULL (a->oom set) when out of memory. */
static void *append(ctl_audit *a, void **v, size_t *n, size_t *cap, size_t size)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 64;
        void *nv = realloc(*v, c * size);
        if (nv == NULL) {
            a->oom = 1;
            return NULL;
        }
        *v = nv;
        *cap = c;
    }
    return (char *)*v + (*n)++ * size;
}

static void add_violation(ctl_audit *a, const char *order_id, const char *sku, const char *rule,
                          const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void add_violation(ctl_audit *a, const char *order_id, const char *sku, const char *rule,
                          const char *fmt, ...)
{
    ctl_violation *x = append(a, (void **)&a->v, &a->nv, &a->capv, sizeof(*x));
    va_list ap;
    if (x == NULL)
        return;
    snprintf(x->order_id, sizeof(x->order_id), "%s", order_id != NULL ? order_id : "");
    snprintf(x->sku, sizeof(x->sku), "%s", sku != NULL ? sku : "");
    x->rule = rule;
    va_start(ap, fmt);
    vsnprintf(x->detail, sizeof(x->detail), fmt, ap);
    va_end(ap);
}

static void add_units(ctl_audit *a, Saga__V1__LineItem **items, size_t n, int which)
{
    for (size_t i = 0; i < n; i++) {
        sku_facts *s = sku_of(a, items[i]->sku);
        if (s == NULL)
            return;
        int64_t *sum = which == 0 ? &s->reserved : which == 1 ? &s->committed : &s->released;
        /* Forged events can carry any quantity: a sum that does not fit is
         * a finding (check_stock), never undefined behaviour. */
        if (__builtin_add_overflow(*sum, (int64_t)items[i]->quantity, sum))
            s->overflow = 1;
    }
}

/* Unpacks the payload as type T, or counts a bad payload and returns. */
#define UNPACK(T, fn, var)                                                                         \
    T *var = fn##__unpack(NULL, ev->payload_len, ev->payload);                                     \
    if (var == NULL) {                                                                             \
        a->bad_payloads++;                                                                         \
        return 0;                                                                                  \
    }

/* Everything but the id itself: two copies of one publish are equal here. */
static uint64_t fingerprint(const saga_event *ev)
{
    uint64_t h = saga_fnv1a(SAGA_FNV1A_INIT, ev->type, strlen(ev->type) + 1);
    h = saga_fnv1a(h, ev->order_id, strlen(ev->order_id) + 1);
    h = saga_fnv1a(h, ev->producer, strlen(ev->producer) + 1);
    h = saga_fnv1a(h, &ev->sequence, sizeof(ev->sequence));
    h = saga_fnv1a(h, &ev->time_ms, sizeof(ev->time_ms));
    return saga_fnv1a(h, ev->payload, ev->payload_len);
}

/* Records a veto the order service received after it confirmed the order. */
static void add_late_veto(ctl_audit *a, const char *order_id, const Saga__V1__VetoIgnored *p)
{
    ctl_late_veto *x = append(a, (void **)&a->late, &a->nlate, &a->caplate, sizeof(*x));
    if (x == NULL)
        return;
    snprintf(x->order_id, sizeof(x->order_id), "%s", order_id);
    snprintf(x->participant, sizeof(x->participant), "%s", p->participant);
    snprintf(x->reason, sizeof(x->reason), "%s", p->reason);
}

static int on_event(const saga_event *ev, uint64_t seq, int64_t stored_ms, void *udata)
{
    ctl_audit *a = udata;
    int created = 0;
    id_facts *id = NULL;
    CTL_HASH_UPSERT(a->ids, ev->event_id, id, created);
    order_facts *o = order_of(a, ev->order_id);
    (void)seq;
    if (id == NULL || o == NULL) {
        ctl_err("audit", "out of memory after %llu events", (unsigned long long)a->events);
        return -1;
    }
    a->events++;
    uint64_t fp = fingerprint(ev);
    if (created) {
        id->fingerprint = fp;
        snprintf(id->type, sizeof(id->type), "%s", ev->type);
    }
    id->copies++;
    if (!created) {
        /* Only the first copy counts: a duplicate must not look like a
         * second effect in the checks below. */
        if (id->fingerprint != fp)
            add_violation(a, ev->order_id, NULL, "unique_event_id",
                          "event id %s names two different events (%s, and %s of order %s)",
                          ev->event_id, id->type, ev->type, ev->order_id);
        else if (a->strict_ids && id->copies == 2)
            add_violation(a, ev->order_id, NULL, "unique_event_id",
                          "event %s (%s) is stored more than once in the stream", ev->event_id,
                          ev->type);
        a->dup_copies++;
        return 0;
    }
    o->events++;
    if (stored_ms > o->last_ms)
        o->last_ms = stored_ms;
    ctl_mark mk = ctl_event_mark(ev->type);
    a->failures += mk == CTL_MARK_FAILURE;
    const char *t = ev->type;
    if (strcmp(t, "order.placed") == 0) {
        UNPACK(Saga__V1__OrderPlaced, saga__v1__order_placed, p);
        if (o->n_placed++ == 0)
            snprintf(o->placed_id, sizeof(o->placed_id), "%s", ev->event_id);
        o->state = ST_PENDING;
        o->total = p->total_cents;
        o->deadline_ms = p->deadline_unix_ms;
        /* SKUs of rejected orders are checked too: nothing may be held. */
        for (size_t i = 0; i < p->n_items; i++)
            sku_of(a, p->items[i]->sku);
        saga__v1__order_placed__free_unpacked(p, NULL);
    } else if (strcmp(t, "order.confirmed") == 0) {
        if (o->n_confirmed++ == 0)
            snprintf(o->confirmed_id, sizeof(o->confirmed_id), "%s", ev->event_id);
        o->state = ST_CONFIRMED;
    } else if (strcmp(t, "order.cancelled") == 0) {
        UNPACK(Saga__V1__OrderCancelled, saga__v1__order_cancelled, p);
        if (o->n_cancelled++ == 0)
            snprintf(o->cancelled_id, sizeof(o->cancelled_id), "%s", ev->event_id);
        o->state = ST_CANCELLED;
        snprintf(o->reason, sizeof(o->reason), "%s", p->reason);
        saga__v1__order_cancelled__free_unpacked(p, NULL);
    } else if (strcmp(t, "payment.charged") == 0) {
        UNPACK(Saga__V1__PaymentCharged, saga__v1__payment_charged, p);
        if (o->n_charged++ == 0)
            snprintf(o->charged_id, sizeof(o->charged_id), "%s", ev->event_id);
        if (__builtin_add_overflow(o->charged, p->amount_cents, &o->charged))
            o->overflow = 1;
        saga__v1__payment_charged__free_unpacked(p, NULL);
    } else if (strcmp(t, "payment.refunded") == 0) {
        UNPACK(Saga__V1__PaymentRefunded, saga__v1__payment_refunded, p);
        if (o->n_refunded++ == 0)
            snprintf(o->refunded_id, sizeof(o->refunded_id), "%s", ev->event_id);
        if (__builtin_add_overflow(o->refunded, p->amount_cents, &o->refunded))
            o->overflow = 1;
        a->refunds++;
        saga__v1__payment_refunded__free_unpacked(p, NULL);
    } else if (strcmp(t, "inventory.reserved") == 0) {
        UNPACK(Saga__V1__InventoryReserved, saga__v1__inventory_reserved, p);
        o->n_reserved++;
        add_units(a, p->items, p->n_items, 0);
        saga__v1__inventory_reserved__free_unpacked(p, NULL);
    } else if (strcmp(t, "inventory.committed") == 0) {
        UNPACK(Saga__V1__InventoryCommitted, saga__v1__inventory_committed, p);
        o->n_committed++;
        add_units(a, p->items, p->n_items, 1);
        saga__v1__inventory_committed__free_unpacked(p, NULL);
    } else if (strcmp(t, "inventory.released") == 0) {
        UNPACK(Saga__V1__InventoryReleased, saga__v1__inventory_released, p);
        o->n_released++;
        a->releases++;
        add_units(a, p->items, p->n_items, 2);
        saga__v1__inventory_released__free_unpacked(p, NULL);
    } else if (strcmp(t, "order.veto_ignored") == 0) {
        UNPACK(Saga__V1__VetoIgnored, saga__v1__veto_ignored, p);
        add_late_veto(a, ev->order_id, p);
        saga__v1__veto_ignored__free_unpacked(p, NULL);
    } else if (strcmp(t, "shipping.scheduled") == 0) {
        o->n_scheduled++;
    } else if (strcmp(t, "shipping.cancelled") == 0) {
        o->n_ship_cancelled++;
        a->ship_cancels++;
    } else if (o->cleared_id[0] == '\0' && strlen(t) > 8 &&
               strcmp(t + strlen(t) - 8, ".cleared") == 0) {
        /* A gate's clearance ("fraud.cleared"): its participant is asked
         * whether it cleared the order (verify_orders). */
        snprintf(o->cleared_id, sizeof(o->cleared_id), "%s", ev->event_id);
        snprintf(o->gate, sizeof(o->gate), "%.*s", (int)(strlen(t) - 8), t);
    } else if (strcmp(t, "notification.sent") == 0) {
        UNPACK(Saga__V1__NotificationSent, saga__v1__notification_sent, p);
        if (strcmp(p->kind, "confirmed") == 0)
            o->msg_confirmed++;
        else if (strcmp(p->kind, "cancelled") == 0)
            o->msg_cancelled++;
        else if (strcmp(p->kind, "refund") == 0)
            o->msg_refund++;
        saga__v1__notification_sent__free_unpacked(p, NULL);
    }
    if (a->oom) {
        ctl_err("audit", "out of memory after %llu events", (unsigned long long)a->events);
        return -1;
    }
    return 0;
}

/* Counts the mail spool's files, named <order_id>.<kind>.txt by the
 * notification service; anything else (its temporary files) is ignored. */
static int read_spool(ctl_audit *a)
{
    DIR *d = opendir(a->spool);
    struct dirent *de;
    if (d == NULL) {
        ctl_buf_printf(&a->warnings,
                       "mail spool %s cannot be read: messages checked from events only\n",
                       a->spool);
        a->spool = NULL;
        return 0;
    }
    while ((de = readdir(d)) != NULL) {
        char name[256], *kind;
        size_t n = strlen(de->d_name);
        if (n < 5 || n >= sizeof(name) || strcmp(de->d_name + n - 4, ".txt") != 0)
            continue;
        memcpy(name, de->d_name, n - 4);
        name[n - 4] = '\0';
        kind = strrchr(name, '.');
        if (kind == NULL)
            continue;
        *kind++ = '\0';
        if (!saga_valid_order_id(name))
            continue;
        order_facts *o = order_of(a, name);
        if (o == NULL) {
            closedir(d);
            ctl_err("audit", "out of memory reading the mail spool");
            return -1;
        }
        a->spool_files++;
        if (strcmp(kind, "confirmed") == 0)
            o->spool_confirmed++;
        else if (strcmp(kind, "cancelled") == 0)
            o->spool_cancelled++;
        else if (strcmp(kind, "refund") == 0)
            o->spool_refund++;
    }
    closedir(d);
    return 0;
}

static void count_reason(ctl_audit *a, const char *reason)
{
    const char *r = *reason ? reason : "unknown";
    for (int i = 0; i < a->nreasons; i++) {
        if (strcmp(a->reasons[i].name, r) == 0) {
            a->reasons[i].n++;
            return;
        }
    }
    if (a->nreasons < CTL_AUDIT_REASONS_MAX) {
        snprintf(a->reasons[a->nreasons].name, sizeof(a->reasons[0].name), "%s", r);
        a->reasons[a->nreasons++].n = 1;
    }
}

/* Checks the messages of a final order, from one source (events or spool). */
static void check_messages(ctl_audit *a, const char *id, const order_facts *o, const char *source,
                           uint32_t confirmed, uint32_t cancelled, uint32_t refund)
{
    int want_confirmed = o->state == ST_CONFIRMED;
    if (confirmed != (uint32_t)want_confirmed || cancelled != (uint32_t)!want_confirmed)
        add_violation(a, id, NULL, "messages",
                      "%s: %u confirmed and %u cancelled messages for a %s order (want exactly "
                      "one %s)",
                      source, confirmed, cancelled, want_confirmed ? "CONFIRMED" : "CANCELLED",
                      want_confirmed ? "confirmed" : "cancelled");
    if (refund != o->n_refunded)
        add_violation(a, id, NULL, "messages", "%s: %u refund notices for %u refunds", source,
                      refund, o->n_refunded);
}

/* Compares the stream with the participants' own records (verify_orders):
 * an event that the service which should have emitted it does not vouch
 * for was published by someone else. Records are pruned SAGA_RETENTION_MS
 * after an order ends, so an order whose last event is older than that is
 * counted as unverifiable, not blamed. */
static void check_records(ctl_audit *a, const char *id, const order_facts *o)
{
    if (!a->verify)
        return;
    if (o->last_ms > 0 && a->now_ms - o->last_ms > a->retention_ms) {
        a->unverified_old++;
        return;
    }
    if (o->ord_found < 0 || (o->n_charged + o->n_refunded > 0 && o->pay_found < 0))
        a->unverified_down++;
    if (o->ord_found == 0) {
        add_violation(a, id, NULL, "forged",
                      "order.placed %s: the order service never placed this order", o->placed_id);
    } else if (o->ord_found > 0) {
        if (o->ord_total != o->total) {
            char m1[32], m2[32];
            ctl_money(o->total, m1, sizeof(m1));
            ctl_money(o->ord_total, m2, sizeof(m2));
            add_violation(a, id, NULL, "forged",
                          "order.placed %s says total %s, the order service placed %s",
                          o->placed_id, m1, m2);
        }
        if (o->n_confirmed > 0 && strcmp(o->ord_state, "CONFIRMED") != 0)
            add_violation(a, id, NULL, "forged",
                          "order.confirmed %s: the order service did not confirm it (it says %s)",
                          o->confirmed_id, o->ord_state);
        if (o->n_cancelled > 0 && strcmp(o->ord_state, "CANCELLED") != 0)
            add_violation(a, id, NULL, "forged",
                          "order.cancelled %s: the order service did not cancel it (it says %s)",
                          o->cancelled_id, o->ord_state);
    }
    if (o->n_charged > 0 && o->pay_found >= 0) {
        int took = o->pay_found > 0 &&
                   (strcmp(o->pay_state, "charged") == 0 || strcmp(o->pay_state, "refunded") == 0);
        if (!took)
            add_violation(a, id, NULL, "forged",
                          "payment.charged %s: payment did not charge this order (its record "
                          "says %s)",
                          o->charged_id, o->pay_found > 0 ? o->pay_state : "nothing");
        else if (o->pay_charged != o->charged)
            add_violation(a, id, NULL, "forged",
                          "payment.charged %s: the events charge %lld cents, payment charged "
                          "%lld",
                          o->charged_id, (long long)o->charged, (long long)o->pay_charged);
    }
    if (o->n_refunded > 0 && o->pay_found >= 0 &&
        (o->pay_found == 0 || o->pay_refunded != o->refunded))
        add_violation(a, id, NULL, "forged",
                      "payment.refunded %s: the events refund %lld cents, payment's record %lld",
                      o->refunded_id, (long long)o->refunded,
                      o->pay_found > 0 ? (long long)o->pay_refunded : 0LL);
    if (o->cleared_id[0] && o->gate_found >= 0 &&
        (o->gate_found == 0 || strcmp(o->gate_decision, "cleared") != 0))
        add_violation(a, id, NULL, "forged",
                      "%s.cleared %s: %s did not clear this order (its record says %s)", o->gate,
                      o->cleared_id, o->gate, o->gate_found > 0 ? o->gate_decision : "nothing");
}

static void check_order(ctl_audit *a, const char *id, order_facts *o)
{
    char m1[32], m2[32];
    if (o->events == 0) {
        add_violation(a, id, NULL, "messages",
                      "the mail spool holds messages for an order with no events");
        return;
    }
    if (o->n_placed == 0) {
        add_violation(a, id, NULL, "never_placed", "%u events but no order.placed", o->events);
        return;
    }
    if (o->overflow)
        add_violation(a, id, NULL, "overflow",
                      "its charged or refunded amounts add up beyond 64 bits (%u charges, %u "
                      "refunds): forged amounts",
                      o->n_charged, o->n_refunded);
    check_records(a, id, o);
    /* Effects that must happen at most once, whatever the outcome. */
    struct {
        const char *what;
        uint32_t n;
    } once[] = {
        {"order.placed", o->n_placed},           {"payment.charged", o->n_charged},
        {"payment.refunded", o->n_refunded},     {"inventory.reserved", o->n_reserved},
        {"inventory.committed", o->n_committed}, {"inventory.released", o->n_released},
        {"shipping.scheduled", o->n_scheduled},  {"shipping.cancelled", o->n_ship_cancelled}};
    for (size_t i = 0; i < sizeof(once) / sizeof(once[0]); i++)
        if (once[i].n > 1)
            add_violation(a, id, NULL, "double_effect", "%u distinct %s events", once[i].n,
                          once[i].what);
    if (o->n_confirmed > 0 && o->n_cancelled > 0)
        add_violation(a, id, NULL, "one_outcome", "both order.confirmed and order.cancelled");

    if (o->state == ST_PENDING) {
        if (o->deadline_ms > 0 && a->now_ms > o->deadline_ms + a->grace_ms) {
            add_violation(a, id, NULL, "final_state",
                          "still PENDING %lld s after its deadline (grace %lld ms)",
                          (long long)((a->now_ms - o->deadline_ms) / 1000), (long long)a->grace_ms);
        } else {
            a->pending++;
        }
        return; /* a saga in flight: its compensations may not have run yet */
    }
    if (o->state == ST_CONFIRMED) {
        a->confirmed++;
        ctl_money(o->charged, m1, sizeof(m1));
        ctl_money(o->total, m2, sizeof(m2));
        if (o->charged != o->total || o->refunded != 0) {
            char m3[32];
            ctl_money(o->refunded, m3, sizeof(m3));
            add_violation(a, id, NULL, "money",
                          "CONFIRMED with total %s but charged %s and refunded %s", m2, m1, m3);
        }
        if ((int64_t)o->n_scheduled - o->n_ship_cancelled != 1)
            add_violation(a, id, NULL, "shipment",
                          "CONFIRMED with %u scheduled and %u cancelled shipments (want one live)",
                          o->n_scheduled, o->n_ship_cancelled);
        if (o->n_committed != 1 || o->n_released != 0)
            add_violation(a, id, NULL, "stock",
                          "CONFIRMED but stock committed %u times, released %u times",
                          o->n_committed, o->n_released);
    } else {
        a->cancelled++;
        count_reason(a, o->reason);
        if (o->charged != o->refunded) {
            ctl_money(o->charged, m1, sizeof(m1));
            ctl_money(o->refunded, m2, sizeof(m2));
            add_violation(a, id, NULL, "money", "CANCELLED (%s) but charged %s and refunded %s",
                          o->reason, m1, m2);
        }
        if ((int64_t)o->n_scheduled - o->n_ship_cancelled != 0)
            add_violation(a, id, NULL, "shipment",
                          "CANCELLED with %u scheduled and %u cancelled shipments (want none live)",
                          o->n_scheduled, o->n_ship_cancelled);
        if (o->n_committed != 0 || o->n_reserved > o->n_released)
            add_violation(a, id, NULL, "stock",
                          "CANCELLED but stock still held or taken (reserved %u, released %u, "
                          "committed %u)",
                          o->n_reserved, o->n_released, o->n_committed);
    }
    check_messages(a, id, o, "events", o->msg_confirmed, o->msg_cancelled, o->msg_refund);
    if (a->spool != NULL)
        check_messages(a, id, o, "mail spool", o->spool_confirmed, o->spool_cancelled,
                       o->spool_refund);
}

/* Compares each SKU's stock in the inventory service with what the events
 * moved: held = reserved - committed - released; committed = committed.
 * With several inventory instances each holds a share: their sums are
 * compared, so stock is conserved across the instances. */
static void check_stock(ctl_audit *a, ctl_conn *c, const ctl_fleet *f)
{
    uint32_t sets[SAGA_PARTITIONS];
    size_t nsets = 0;
    char err[256];
    if (ctl_fleet_instances(f, "inventory", sets, SAGA_PARTITIONS, &nsets, err, sizeof(err)) != 0) {
        ctl_buf_printf(&a->warnings, "%s: stock not checked\n", err);
        return;
    }
    for (const sku_facts *s = a->skus; s != NULL; s = s->hh.next) {
        const char *sku = s->key;
        ctl_stock r;
        int rc = ctl_stock_request(c->nc, sets, nsets, sku, -1, CTL_QUERY_TIMEOUT_MS, &r, err,
                                   sizeof(err));
        if (rc == CTL_EXIT_UNREACHABLE) {
            ctl_buf_printf(&a->warnings, "inventory: %s: stock not checked\n", err);
            return;
        }
        if (rc == CTL_EXIT_USAGE)
            continue; /* not a valid SKU; the order service never accepts it */
        if (rc != CTL_EXIT_OK) {
            ctl_buf_printf(&a->warnings, "inventory cannot report stock of %s: %s\n", sku, err);
            continue;
        }
        a->skus_checked++;
        int64_t want_held = 0;
        if (s->overflow || __builtin_sub_overflow(s->reserved, s->committed, &want_held) ||
            __builtin_sub_overflow(want_held, s->released, &want_held)) {
            add_violation(a, NULL, sku, "overflow",
                          "the units the events move do not fit in 64 bits (forged quantities?)");
            continue;
        }
        if (r.available < 0 || r.held < 0 || r.committed < 0)
            add_violation(a, NULL, sku, "stock",
                          "negative stock: available %lld, held %lld, committed %lld", r.available,
                          r.held, r.committed);
        if (r.held != want_held)
            add_violation(a, NULL, sku, "stock",
                          "held %lld but the events leave %lld held (reserved %lld, committed "
                          "%lld, released %lld)",
                          r.held, (long long)want_held, (long long)s->reserved,
                          (long long)s->committed, (long long)s->released);
        if (r.committed != s->committed)
            add_violation(a, NULL, sku, "stock", "committed %lld but the events commit %lld",
                          r.committed, (long long)s->committed);
    }
}

/* One dead letter: poisoned ones (bad bytes, a handler's refusal) are what the
 * queue is for; one whose deliveries failed or whose predecessor never came
 * means a step of some order was never done. */
static int on_dead_letter(natsMsg *m, uint64_t seq, int64_t time_ns, void *udata)
{
    ctl_audit *a = udata;
    const char *reason = NULL, *svc = NULL, *subject = NULL;
    saga_event ev;
    void *owner = NULL;
    (void)time_ns;
    if (natsMsgHeader_Get(m, "Saga-Reason", &reason) != NATS_OK || reason == NULL)
        reason = "";
    if (natsMsgHeader_Get(m, "Saga-Service", &svc) != NATS_OK || svc == NULL)
        svc = "?";
    if (natsMsgHeader_Get(m, "Saga-Subject", &subject) != NATS_OK || subject == NULL)
        subject = "?";
    a->dlq_messages++;
    const char *why = NULL;
    if (natsMsgHeader_Get(m, SAGA_HDR_CAUSE, &why) != NATS_OK)
        why = NULL;
    ctl_dlq_cause cause = ctl_dlq_classify(why, reason);
    if (cause == CTL_DLQ_POISONED) {
        a->dlq_poisoned++;
        return 0;
    }
    if (cause == CTL_DLQ_FAILED)
        a->dlq_failed++;
    else
        a->dlq_other++;
    if (a->allow_dead_letters)
        return 0;
    int decoded =
        saga_event_decode((const uint8_t *)natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m),
                          &ev, &owner, NULL, 0) == SAGA_OK;
    add_violation(a, decoded ? ev.order_id : NULL, NULL, "dead_letter",
                  "dead letter #%llu from %s (%s%s%s): %s", (unsigned long long)seq, svc,
                  decoded ? ev.type : subject, decoded ? " on " : "", decoded ? subject : "",
                  reason);
    free(owner);
    if (a->oom) {
        ctl_err("audit", "out of memory reading %s", CTL_DLQ_STREAM);
        return -1;
    }
    return 0;
}

static int read_dead_letters(ctl_audit *a, ctl_conn *c)
{
    ctl_stream_result res;
    int rc = ctl_stream_read_msgs(c, "audit", CTL_DLQ_STREAM, "dlq.>", 0, on_dead_letter, a, &res);
    if (rc != CTL_EXIT_OK)
        return rc;
    uint64_t unexpected = a->dlq_failed + a->dlq_other;
    if (a->allow_dead_letters && unexpected > 0)
        ctl_buf_printf(&a->warnings,
                       "%llu dead letters of failed deliveries or expired parking (allowed by "
                       "--allow-dead-letters; see sagactl dlq list)\n",
                       (unsigned long long)unexpected);
    return CTL_EXIT_OK;
}

/* ---- verify_orders: the participants' own records ---------------------- */

#define VERIFY_WINDOW 512 /* requests in flight at once: the services answer in turn */
#define VERIFY_KINDS 3    /* per order: the order service, payment, a gate */

/* Copies the reply of request (order i, kind k) into the order's facts. A
 * reply that says "error" (a store error) counts as no answer. */
static void take_reply(order_facts *o, int kind, const char *text, size_t len)
{
    json_error_t jerr;
    json_t *r = json_loadb(text, len, 0, &jerr);
    json_t *found = r != NULL ? json_object_get(r, "found") : NULL;
    if (r == NULL || !json_is_boolean(found) || json_object_get(r, "error") != NULL) {
        json_decref(r);
        return;
    }
    int8_t f = json_is_true(found) ? 1 : 0;
    const char *str;
    if (kind == 0) {
        o->ord_found = f;
        str = json_string_value(json_object_get(r, "state"));
        snprintf(o->ord_state, sizeof(o->ord_state), "%s", str != NULL ? str : "?");
        o->ord_total = (int64_t)json_integer_value(json_object_get(r, "total_cents"));
    } else if (kind == 1) {
        o->pay_found = f;
        str = json_string_value(json_object_get(r, "state"));
        snprintf(o->pay_state, sizeof(o->pay_state), "%s", str != NULL ? str : "?");
        o->pay_charged = (int64_t)json_integer_value(json_object_get(r, "charged_cents"));
        o->pay_refunded = (int64_t)json_integer_value(json_object_get(r, "refunded_cents"));
    } else {
        o->gate_found = f;
        str = json_string_value(json_object_get(r, "decision"));
        snprintf(o->gate_decision, sizeof(o->gate_decision), "%s", str != NULL ? str : "?");
    }
    json_decref(r);
}

/* Whether request (order i, kind k) is to be sent at all. */
static int wants(const order_facts *o, int kind)
{
    if (o->n_placed == 0)
        return 0; /* never_placed already */
    if (kind == 1)
        return o->n_charged + o->n_refunded > 0;
    if (kind == 2)
        return o->cleared_id[0] != '\0';
    return 1;
}

/* Asks the order service (saga.q.order.order), payment (saga.q.payment.order)
 * and any gate that cleared an order (saga.q.<gate>.order) what their records
 * say of each order in the stream. The requests share one reply subscription
 * and VERIFY_WINDOW of them are in flight at once, so thousands of orders
 * cost a few round trips, not one each. A service that does not answer
 * leaves its part unverified (a warning), not a violation. */
static void verify_orders(ctl_audit *a, ctl_conn *c)
{
    natsInbox *inbox = NULL;
    natsSubscription *sub = NULL;
    char wildcard[128], reply_to[160], plain[128], subject[144];
    size_t norders = HASH_COUNT(a->orders), total = norders * VERIFY_KINDS;
    size_t next = 0, in_flight = 0;
    uint64_t unanswered = 0;
    /* Requests name their order by its place in the table. */
    order_facts **by_index = calloc(norders ? norders : 1, sizeof(*by_index));
    size_t n = 0;

    for (order_facts *o = a->orders; o != NULL; o = o->hh.next) {
        o->ord_found = o->pay_found = o->gate_found = -1;
        if (by_index != NULL)
            by_index[n++] = o;
    }
    if (by_index == NULL || natsInbox_Create(&inbox) != NATS_OK)
        goto fail;
    snprintf(wildcard, sizeof(wildcard), "%s.*", (const char *)inbox);
    if (natsConnection_SubscribeSync(&sub, c->nc, wildcard) != NATS_OK)
        goto fail;
    natsSubscription_SetPendingLimits(sub, -1, -1);
    for (;;) {
        while (next < total && in_flight < VERIFY_WINDOW) {
            size_t i = next / VERIFY_KINDS;
            int kind = (int)(next % VERIFY_KINDS);
            order_facts *o = by_index[i];
            const char *id = o->key;
            next++;
            if (!wants(o, kind))
                continue;
            snprintf(plain, sizeof(plain), SAGA_SUBJ_QUERY_FMT,
                     kind == 0   ? "order"
                     : kind == 1 ? "payment"
                                 : o->gate,
                     "order");
            /* To the instance that owns the order (the only one answers every partition). */
            saga_routed_subject(plain, id, subject, sizeof(subject));
            snprintf(reply_to, sizeof(reply_to), "%s.%zu", (const char *)inbox, next - 1);
            if (natsConnection_PublishRequestString(c->nc, subject, reply_to, id) != NATS_OK)
                goto fail;
            in_flight++;
        }
        if (in_flight == 0)
            break;
        natsConnection_Flush(c->nc);
        natsMsg *m = NULL;
        if (natsSubscription_NextMsg(&m, sub, CTL_QUERY_TIMEOUT_MS) != NATS_OK) {
            /* Nothing for a whole query timeout: what is still out is
             * unanswered, and so is everything not sent yet. */
            unanswered += in_flight;
            in_flight = 0;
            while (next < total) {
                order_facts *o = by_index[next / VERIFY_KINDS];
                unanswered += wants(o, (int)(next % VERIFY_KINDS));
                next++;
            }
            break;
        }
        const char *dot = strrchr(natsMsg_GetSubject(m), '.');
        long long r = -1;
        if (dot != NULL && ctl_parse_ll(dot + 1, 0, (long long)total - 1, &r) == 0) {
            in_flight--;
            order_facts *o = by_index[(size_t)r / VERIFY_KINDS];
            if (!natsMsg_IsNoResponders(m))
                take_reply(o, (int)(r % VERIFY_KINDS), natsMsg_GetData(m),
                           (size_t)natsMsg_GetDataLength(m));
        }
        natsMsg_Destroy(m);
    }
    a->verify = 1;
    goto out;
fail:
    ctl_buf_puts(&a->warnings, "cannot ask the services for their records: events not "
                               "cross-checked (forged events would go unseen)\n");
out:
    if (unanswered > 0)
        ctl_buf_printf(&a->warnings,
                       "%llu record queries went unanswered: those parts not cross-checked\n",
                       (unsigned long long)unanswered);
    ctl_inbox_close(sub, inbox);
    free(by_index);
}

/* Sums the participants' runtime counters. One that does not answer is
 * left out and named in a warning: the figures are then a lower bound. */
static void read_counters(ctl_audit *a, ctl_conn *c, ctl_fleet *f)
{
    static const char *const keys[] = {"faults", "retried", "duplicates", "dead_lettered"};
    uint64_t *sums[] = {&a->faults_injected, &a->redeliveries, &a->duplicates_suppressed,
                        &a->dead_lettered};
    if (ctl_fleet_ask(f, c, SAGA_SUBJ_CTL_FMT, "stats", "") != 0) {
        ctl_buf_puts(&a->warnings, "cannot ask the services for their counters: no figures\n");
        return;
    }
    a->participants = (int)f->n;
    for (size_t i = 0; i < f->n; i++) {
        if (f->replies[i] == NULL) {
            ctl_buf_printf(&a->warnings,
                           "%s does not answer saga.ctl.%s.stats: its counters are missing from "
                           "the figures\n",
                           f->names[i], f->names[i]);
            continue;
        }
        a->services_answered++;
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
            json_int_t v = json_integer_value(json_object_get(f->replies[i], keys[k]));
            if (v > 0)
                *sums[k] += (uint64_t)v;
        }
    }
}

void ctl_audit_cleanup(ctl_audit *a)
{
    order_facts *o, *otmp;
    sku_facts *s, *stmp;
    id_facts *id, *itmp;
    CTL_HASH_FREE(a->orders, o, otmp);
    CTL_HASH_FREE(a->skus, s, stmp);
    CTL_HASH_FREE(a->ids, id, itmp);
    free(a->v);
    free(a->late);
    ctl_buf_cleanup(&a->warnings);
    memset(a, 0, sizeof(*a));
}

int ctl_audit_run(ctl_audit *a, ctl_conn *c, ctl_fleet *f, int progress, const char *spool,
                  int64_t grace_ms, int strict_ids, int allow_dead_letters, int64_t retention_ms)
{
    ctl_stream_result res;
    memset(a, 0, sizeof(*a));
    ctl_buf_init(&a->warnings);
    a->retention_ms = retention_ms;
    a->grace_ms = grace_ms;
    a->strict_ids = strict_ids;
    a->allow_dead_letters = allow_dead_letters;
    a->spool = spool;
    /* "Now" is taken before reading: an order that reaches its deadline
     * during a long read is not blamed for it. */
    a->now_ms = ctl_now_ms();
    int rc = ctl_stream_read(c, "audit", "evt.>", progress, on_event, a, &res);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (res.stream_missing)
        ctl_buf_printf(&a->warnings, "stream %s does not exist yet: no events\n", CTL_STREAM);
    a->undecodable = res.undecodable;
    if (a->undecodable > 0)
        ctl_buf_printf(&a->warnings,
                       "%llu stream entries are no event of the saga (undecodable, on the wrong "
                       "subject, or a malformed payload): skipped, not counted as orders\n",
                       (unsigned long long)a->undecodable);
    if (a->spool != NULL && read_spool(a) != 0)
        return CTL_EXIT_FAIL;
    verify_orders(a, c);
    for (order_facts *o = a->orders; o != NULL; o = o->hh.next)
        check_order(a, o->key, o);
    if (a->skus != NULL)
        check_stock(a, c, f);
    rc = read_dead_letters(a, c);
    if (rc != CTL_EXIT_OK)
        return rc;
    read_counters(a, c, f);
    if (a->unverified_old > 0)
        ctl_buf_printf(&a->warnings,
                       "%llu orders ended longer ago than the retention period (%lld ms): the "
                       "services' records of them may be pruned, so they were not "
                       "cross-checked\n",
                       (unsigned long long)a->unverified_old, (long long)a->retention_ms);
    if (a->unverified_down > 0)
        ctl_buf_printf(&a->warnings,
                       "%llu orders not fully cross-checked: order or payment did not answer\n",
                       (unsigned long long)a->unverified_down);
    if (a->bad_payloads > 0)
        ctl_buf_printf(&a->warnings, "%llu event payloads do not decode (not counted)\n",
                       (unsigned long long)a->bad_payloads);
    if (a->dup_copies > 0 && !a->strict_ids)
        ctl_buf_printf(&a->warnings,
                       "%llu extra copies of events in the stream (duplicate publishes; each "
                       "event counted once; --strict-ids makes them violations)\n",
                       (unsigned long long)a->dup_copies);
    if (a->oom || !ctl_buf_ok(&a->warnings)) {
        ctl_err("audit", "out of memory");
        return CTL_EXIT_FAIL;
    }
    return CTL_EXIT_OK;
}
