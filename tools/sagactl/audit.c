/* audit.c - Checks the saga's invariants (SPEC.md, "Invariants") over the whole
 * event stream, the inventory's stock and the mail spool: every order final in
 * time, money and stock conserved, one live shipment per confirmed order,
 * exactly the right messages, no effect done twice, no event id stored twice. */
#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.pb-c.h"
#include "ctl.h"
#include "events.pb-c.h"

#define DEFAULT_GRACE_MS 10000
#define MAX_REASONS 16

enum { ST_NONE, ST_PENDING, ST_CONFIRMED, ST_CANCELLED };

/* Everything the stream says about one order. Counts are of distinct events
 * (a stored duplicate of an event id is reported once, and not counted). */
typedef struct order_facts {
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
} order_facts;

/* Units per SKU moved by inventory events. */
typedef struct sku_facts {
    int64_t reserved, committed, released;
} sku_facts;

typedef struct violation {
    char order_id[SAGA_ORDER_ID_MAX + 1]; /* empty for a SKU-wide finding */
    char sku[72];
    const char *rule;
    char detail[240];
} violation;

/* What the stream holds under one event id: a second copy with the same
 * fingerprint is a duplicate publish (an injected fault, or an outbox
 * republished after the broker's duplicate window): consumers drop it by
 * their inbox. A different event under the same id is a real defect. */
typedef struct id_facts {
    uint32_t copies;
    uint64_t fingerprint;
    char type[SAGA_TYPE_MAX + 1];
} id_facts;

typedef struct audit {
    int64_t now_ms, grace_ms;
    int strict_ids;
    uint64_t dup_copies;
    const char *spool;
    ctl_map *orders, *skus, *ids;
    uint64_t events, undecodable, bad_payloads;
    uint64_t refunds, releases, ship_cancels, failures, spool_files;
    uint64_t confirmed, cancelled, pending, skus_checked;
    struct {
        char name[32];
        uint64_t n;
    } reasons[MAX_REASONS];
    int nreasons;
    violation *v;
    size_t nv, capv;
    ctl_buf warnings; /* one per line */
    int oom;
} audit;

static void add_violation(audit *a, const char *order_id, const char *sku, const char *rule,
                          const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void add_violation(audit *a, const char *order_id, const char *sku, const char *rule,
                          const char *fmt, ...)
{
    if (a->nv == a->capv) {
        size_t cap = a->capv ? a->capv * 2 : 64;
        violation *nv = realloc(a->v, cap * sizeof(*nv));
        if (nv == NULL) {
            a->oom = 1;
            return;
        }
        a->v = nv;
        a->capv = cap;
    }
    violation *x = &a->v[a->nv++];
    va_list ap;
    snprintf(x->order_id, sizeof(x->order_id), "%s", order_id != NULL ? order_id : "");
    snprintf(x->sku, sizeof(x->sku), "%s", sku != NULL ? sku : "");
    x->rule = rule;
    va_start(ap, fmt);
    vsnprintf(x->detail, sizeof(x->detail), fmt, ap);
    va_end(ap);
}

static void add_units(audit *a, Saga__V1__LineItem **items, size_t n, int which)
{
    for (size_t i = 0; i < n; i++) {
        sku_facts *s = ctl_map_upsert(a->skus, items[i]->sku, NULL);
        if (s == NULL) {
            a->oom = 1;
            return;
        }
        if (which == 0)
            s->reserved += items[i]->quantity;
        else if (which == 1)
            s->committed += items[i]->quantity;
        else
            s->released += items[i]->quantity;
    }
}

/* Unpacks the payload as type T, or counts a bad payload and returns. */
#define UNPACK(T, fn, var)                                                                         \
    T *var = fn##__unpack(NULL, ev->payload_len, ev->payload);                                     \
    if (var == NULL) {                                                                             \
        a->bad_payloads++;                                                                         \
        return 0;                                                                                  \
    }

static uint64_t fnv_add(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* Everything but the id itself: two copies of one publish are equal here. */
static uint64_t fingerprint(const saga_event *ev)
{
    uint64_t h = 1469598103934665603ULL;
    h = fnv_add(h, ev->type, strlen(ev->type) + 1);
    h = fnv_add(h, ev->order_id, strlen(ev->order_id) + 1);
    h = fnv_add(h, ev->producer, strlen(ev->producer) + 1);
    h = fnv_add(h, &ev->sequence, sizeof(ev->sequence));
    h = fnv_add(h, &ev->time_ms, sizeof(ev->time_ms));
    if (ev->payload_len > 0)
        h = fnv_add(h, ev->payload, ev->payload_len);
    return h;
}

static int on_event(const saga_event *ev, uint64_t seq, void *udata)
{
    audit *a = udata;
    int created = 0;
    id_facts *id = ctl_map_upsert(a->ids, ev->event_id, &created);
    order_facts *o = ctl_map_upsert(a->orders, ev->order_id, NULL);
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
    ctl_mark mk = ctl_event_mark(ev->type);
    a->failures += mk == CTL_MARK_FAILURE;
    const char *t = ev->type;
    if (strcmp(t, "order.placed") == 0) {
        UNPACK(Saga__V1__OrderPlaced, saga__v1__order_placed, p);
        o->n_placed++;
        o->state = ST_PENDING;
        o->total = p->total_cents;
        o->deadline_ms = p->deadline_unix_ms;
        /* SKUs of rejected orders are checked too: nothing may be held. */
        for (size_t i = 0; i < p->n_items; i++)
            if (ctl_map_upsert(a->skus, p->items[i]->sku, NULL) == NULL)
                a->oom = 1;
        saga__v1__order_placed__free_unpacked(p, NULL);
    } else if (strcmp(t, "order.confirmed") == 0) {
        o->n_confirmed++;
        o->state = ST_CONFIRMED;
    } else if (strcmp(t, "order.cancelled") == 0) {
        UNPACK(Saga__V1__OrderCancelled, saga__v1__order_cancelled, p);
        o->n_cancelled++;
        o->state = ST_CANCELLED;
        snprintf(o->reason, sizeof(o->reason), "%s", p->reason);
        saga__v1__order_cancelled__free_unpacked(p, NULL);
    } else if (strcmp(t, "payment.charged") == 0) {
        UNPACK(Saga__V1__PaymentCharged, saga__v1__payment_charged, p);
        o->n_charged++;
        o->charged += p->amount_cents;
        saga__v1__payment_charged__free_unpacked(p, NULL);
    } else if (strcmp(t, "payment.refunded") == 0) {
        UNPACK(Saga__V1__PaymentRefunded, saga__v1__payment_refunded, p);
        o->n_refunded++;
        o->refunded += p->amount_cents;
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
    } else if (strcmp(t, "shipment.scheduled") == 0) {
        o->n_scheduled++;
    } else if (strcmp(t, "shipment.cancelled") == 0) {
        o->n_ship_cancelled++;
        a->ship_cancels++;
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
static int read_spool(audit *a)
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
        order_facts *o = ctl_map_upsert(a->orders, name, NULL);
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

static void count_reason(audit *a, const char *reason)
{
    const char *r = *reason ? reason : "unknown";
    for (int i = 0; i < a->nreasons; i++) {
        if (strcmp(a->reasons[i].name, r) == 0) {
            a->reasons[i].n++;
            return;
        }
    }
    if (a->nreasons < MAX_REASONS) {
        snprintf(a->reasons[a->nreasons].name, sizeof(a->reasons[0].name), "%s", r);
        a->reasons[a->nreasons++].n = 1;
    }
}

/* Checks the messages of a final order, from one source (events or spool). */
static void check_messages(audit *a, const char *id, const order_facts *o, const char *source,
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

static void check_order(audit *a, const char *id, order_facts *o)
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
    /* Effects that must happen at most once, whatever the outcome. */
    struct {
        const char *what;
        uint32_t n;
    } once[] = {
        {"order.placed", o->n_placed},           {"payment.charged", o->n_charged},
        {"payment.refunded", o->n_refunded},     {"inventory.reserved", o->n_reserved},
        {"inventory.committed", o->n_committed}, {"inventory.released", o->n_released},
        {"shipment.scheduled", o->n_scheduled},  {"shipment.cancelled", o->n_ship_cancelled}};
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
        if (o->charged - o->refunded != 0) {
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
 * moved: held = reserved - committed - released; committed = committed. */
static void check_stock(audit *a, ctl_conn *c)
{
    for (size_t i = 0; i < ctl_map_count(a->skus); i++) {
        const char *sku = NULL;
        const sku_facts *s = ctl_map_at(a->skus, i, &sku);
        Saga__V1__GetStock req = SAGA__V1__GET_STOCK__INIT;
        uint8_t buf[128];
        natsMsg *reply = NULL;
        req.sku = (char *)sku;
        size_t len = saga__v1__get_stock__get_packed_size(&req);
        if (len > sizeof(buf))
            continue; /* not a valid SKU; the order service never accepts it */
        saga__v1__get_stock__pack(&req, buf);
        natsStatus st =
            ctl_request(c, "saga.cmd.inventory.stock.get", buf, len, CTL_QUERY_TIMEOUT_MS, &reply);
        if (st != NATS_OK) {
            ctl_buf_printf(&a->warnings,
                           "inventory does not answer saga.cmd.inventory.stock.get (%s): stock "
                           "not checked\n",
                           natsStatus_GetText(st));
            return;
        }
        Saga__V1__StockReply *r = saga__v1__stock_reply__unpack(
            NULL, (size_t)natsMsg_GetDataLength(reply), (const uint8_t *)natsMsg_GetData(reply));
        natsMsg_Destroy(reply);
        if (r == NULL || !r->ok) {
            ctl_buf_printf(&a->warnings, "inventory cannot report stock of %s: %s\n", sku,
                           r != NULL ? r->error : "reply does not decode");
            saga__v1__stock_reply__free_unpacked(r, NULL);
            continue;
        }
        a->skus_checked++;
        int64_t want_held = s->reserved - s->committed - s->released;
        if (r->available < 0 || r->held < 0 || r->committed < 0)
            add_violation(a, NULL, sku, "stock",
                          "negative stock: available %lld, held %lld, committed %lld",
                          (long long)r->available, (long long)r->held, (long long)r->committed);
        if (r->held != want_held)
            add_violation(a, NULL, sku, "stock",
                          "held %lld but the events leave %lld held (reserved %lld, committed "
                          "%lld, released %lld)",
                          (long long)r->held, (long long)want_held, (long long)s->reserved,
                          (long long)s->committed, (long long)s->released);
        if (r->committed != s->committed)
            add_violation(a, NULL, sku, "stock", "committed %lld but the events commit %lld",
                          (long long)r->committed, (long long)s->committed);
        saga__v1__stock_reply__free_unpacked(r, NULL);
    }
}

static void audit_cleanup(audit *a)
{
    ctl_map_destroy(a->orders);
    ctl_map_destroy(a->skus);
    ctl_map_destroy(a->ids);
    free(a->v);
    ctl_buf_cleanup(&a->warnings);
}

/* One complete audit into a (initialised here, cleaned by the caller). */
static int audit_once(audit *a, ctl_conn *c, int progress, const char *spool, int64_t grace_ms,
                      int strict_ids)
{
    ctl_stream_result res;
    memset(a, 0, sizeof(*a));
    ctl_buf_init(&a->warnings);
    a->grace_ms = grace_ms;
    a->strict_ids = strict_ids;
    a->spool = spool;
    if (ctl_map_create(&a->orders, sizeof(order_facts)) != 0 ||
        ctl_map_create(&a->skus, sizeof(sku_facts)) != 0 ||
        ctl_map_create(&a->ids, sizeof(id_facts)) != 0) {
        ctl_err("audit", "out of memory");
        return CTL_EXIT_FAIL;
    }
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
        ctl_buf_printf(&a->warnings, "%llu messages are not valid envelopes (skipped)\n",
                       (unsigned long long)a->undecodable);
    if (a->spool != NULL && read_spool(a) != 0)
        return CTL_EXIT_FAIL;
    for (size_t i = 0; i < ctl_map_count(a->orders); i++) {
        const char *id = NULL;
        order_facts *o = ctl_map_at(a->orders, i, &id);
        check_order(a, id, o);
    }
    if (ctl_map_count(a->skus) > 0)
        check_stock(a, c);
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

static void print_json(const audit *a, ctl_buf *b)
{
    uint64_t orders = a->confirmed + a->cancelled + a->pending;
    ctl_buf_printf(b, "{\"orders\":%llu,\"confirmed\":%llu,\"cancelled\":%llu,\"pending\":%llu,",
                   (unsigned long long)orders, (unsigned long long)a->confirmed,
                   (unsigned long long)a->cancelled, (unsigned long long)a->pending);
    ctl_buf_printf(b,
                   "\"events\":%llu,\"duplicate_copies\":%llu,\"compensations\":%llu,"
                   "\"failures\":%llu,",
                   (unsigned long long)a->events, (unsigned long long)a->dup_copies,
                   (unsigned long long)(a->refunds + a->releases + a->ship_cancels),
                   (unsigned long long)a->failures);
    ctl_buf_puts(b, "\"cancelled_by_reason\":{");
    for (int i = 0; i < a->nreasons; i++) {
        ctl_json_key(b, i == 0, a->reasons[i].name);
        ctl_buf_printf(b, "%llu", (unsigned long long)a->reasons[i].n);
    }
    ctl_buf_printf(b, "},\"skus_checked\":%llu,\"spool\":", (unsigned long long)a->skus_checked);
    ctl_json_str(b, a->spool);
    ctl_buf_printf(b, ",\"spool_messages\":%llu,\"violations\":[",
                   (unsigned long long)a->spool_files);
    for (size_t i = 0; i < a->nv; i++) {
        const violation *x = &a->v[i];
        ctl_buf_puts(b, i ? ",{" : "{");
        ctl_json_key(b, 1, "order_id");
        ctl_json_str(b, x->order_id[0] ? x->order_id : NULL);
        if (x->sku[0]) {
            ctl_json_key(b, 0, "sku");
            ctl_json_str(b, x->sku);
        }
        ctl_json_key(b, 0, "rule");
        ctl_json_str(b, x->rule);
        ctl_json_key(b, 0, "detail");
        ctl_json_str(b, x->detail);
        ctl_buf_puts(b, "}");
    }
    ctl_buf_puts(b, "],\"warnings\":[");
    const char *w = ctl_buf_str(&a->warnings);
    for (int first = 1; *w != '\0'; first = 0) {
        const char *nl = strchr(w, '\n');
        size_t n = nl != NULL ? (size_t)(nl - w) : strlen(w);
        char line[512];
        snprintf(line, sizeof(line), "%.*s", (int)n, w);
        if (!first)
            ctl_buf_puts(b, ",");
        ctl_json_str(b, line);
        w += n + (nl != NULL);
    }
    ctl_buf_puts(b, "]}\n");
}

static void print_text(const audit *a, ctl_buf *b, const char *url)
{
    uint64_t orders = a->confirmed + a->cancelled + a->pending;
    ctl_buf_printf(b, "audit of %s at %s\n", CTL_STREAM, url);
    ctl_buf_printf(b, "  orders        %llu: %llu confirmed, %llu cancelled, %llu pending\n",
                   (unsigned long long)orders, (unsigned long long)a->confirmed,
                   (unsigned long long)a->cancelled, (unsigned long long)a->pending);
    if (a->nreasons > 0) {
        ctl_buf_puts(b, "  cancelled     ");
        for (int i = 0; i < a->nreasons; i++)
            ctl_buf_printf(b, "%s%s %llu", i ? ", " : "", a->reasons[i].name,
                           (unsigned long long)a->reasons[i].n);
        ctl_buf_puts(b, "\n");
    }
    ctl_buf_printf(b, "  events        %llu (%llu failures)\n", (unsigned long long)a->events,
                   (unsigned long long)a->failures);
    ctl_buf_printf(b,
                   "  compensations %llu: %llu refunds, %llu stock releases, %llu shipment "
                   "cancellations\n",
                   (unsigned long long)(a->refunds + a->releases + a->ship_cancels),
                   (unsigned long long)a->refunds, (unsigned long long)a->releases,
                   (unsigned long long)a->ship_cancels);
    ctl_buf_printf(b, "  stock         %llu SKUs checked against the inventory\n",
                   (unsigned long long)a->skus_checked);
    if (a->spool != NULL)
        ctl_buf_printf(b, "  mail spool    %s: %llu messages\n", a->spool,
                       (unsigned long long)a->spool_files);
    else
        ctl_buf_puts(b, "  mail spool    not checked (messages checked from events only)\n");
    const char *w = ctl_buf_str(&a->warnings);
    while (*w != '\0') {
        const char *nl = strchr(w, '\n');
        size_t n = nl != NULL ? (size_t)(nl - w) : strlen(w);
        ctl_buf_printf(b, "  warning: %.*s\n", (int)n, w);
        w += n + (nl != NULL);
    }
    for (size_t i = 0; i < a->nv; i++) {
        const violation *x = &a->v[i];
        if (x->order_id[0])
            ctl_buf_printf(b, "VIOLATION order %s %s: %s\n", x->order_id, x->rule, x->detail);
        else
            ctl_buf_printf(b, "VIOLATION sku %s %s: %s\n", x->sku, x->rule, x->detail);
    }
    if (a->nv == 0)
        ctl_buf_puts(b, "audit: OK, no violations\n");
    else
        ctl_buf_printf(b, "audit: %zu violation%s\n", a->nv, a->nv == 1 ? "" : "s");
}

static const char audit_help[] =
    "usage: sagactl audit [--json] [--grace-ms MS] [--spool DIR | --no-spool]\n"
    "                     [--settle SECONDS] [--strict-ids] [--url URL]\n\n"
    "Reads the whole stream SAGA_EVENTS (progress on stderr) and checks, per order:\n"
    "  final_state      final (CONFIRMED or CANCELLED) by its deadline + grace\n"
    "                   (default 10000 ms); a pending order within that is counted\n"
    "                   as pending, not a violation\n"
    "  money            CONFIRMED: charged = total, nothing refunded;\n"
    "                   CANCELLED: charged - refunded = 0\n"
    "  shipment         CONFIRMED: exactly one live shipment; CANCELLED: none\n"
    "  stock            per order: committed once if CONFIRMED, nothing held if\n"
    "                   CANCELLED; per SKU (asks the inventory): held and committed\n"
    "                   equal what the events moved, nothing negative\n"
    "  messages         one confirmed-or-cancelled message per final order and one\n"
    "                   refund notice per refund, from notification.sent events and\n"
    "                   from the files of the mail spool\n"
    "  double_effect    no step done twice; one_outcome: never both confirmed and\n"
    "                   cancelled; never_placed: no events without order.placed\n"
    "  unique_event_id  no event id names two different events; with --strict-ids\n"
    "                   also no event stored twice (duplicate publishes, e.g. from\n"
    "                   the dup_rate fault, are otherwise counted once and reported)\n"
    "The spool defaults to $SAGA_HOME/mail (SAGA_HOME defaults to ./var) when it\n"
    "exists. --settle repeats the audit for up to SECONDS until it passes, for use\n"
    "right after a run while compensations are still in flight. Exit 1 on any\n"
    "violation. --json prints {\"orders\":N,\"confirmed\":..,\"cancelled\":..,\"pending\":..,\n"
    "\"violations\":[{\"order_id\":..,\"rule\":..,\"detail\":..}],...}.\n";

int ctl_cmd_audit(const char *url, int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"grace-ms", required_argument, NULL, 'g'},
                                         {"spool", required_argument, NULL, 's'},
                                         {"no-spool", no_argument, NULL, 'n'},
                                         {"settle", required_argument, NULL, 'S'},
                                         {"strict-ids", no_argument, NULL, 'I'},
                                         {"url", required_argument, NULL, 'U'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int json = 0, no_spool = 0, strict_ids = 0, opt, rc;
    long long grace = DEFAULT_GRACE_MS, settle = 0;
    const char *spool = NULL;
    char default_spool[4096];
    ctl_conn c = {0};
    audit a;
    ctl_buf b;

    memset(&a, 0, sizeof(a));
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (opt) {
        case 'j':
            json = 1;
            break;
        case 'g':
            if (ctl_parse_ll(optarg, 0, 86400000LL, &grace) != 0) {
                ctl_err("audit", "bad --grace-ms '%s': want 0..86400000", optarg);
                return CTL_EXIT_USAGE;
            }
            break;
        case 's':
            spool = optarg;
            break;
        case 'n':
            no_spool = 1;
            break;
        case 'I':
            strict_ids = 1;
            break;
        case 'S':
            if (ctl_parse_ll(optarg, 0, 3600, &settle) != 0) {
                ctl_err("audit", "bad --settle '%s': want seconds, 0..3600", optarg);
                return CTL_EXIT_USAGE;
            }
            break;
        case 'U':
            url = optarg;
            break;
        case 'h':
            fputs(audit_help, stdout);
            return CTL_EXIT_OK;
        default:
            return ctl_bad_option("audit", argv, optind, optopt, opt);
        }
    }
    if (optind < argc) {
        ctl_err("audit", "unexpected argument '%s' (see sagactl audit --help)", argv[optind]);
        return CTL_EXIT_USAGE;
    }
    if (no_spool) {
        spool = NULL;
    } else if (spool != NULL) {
        struct stat st;
        if (stat(spool, &st) != 0 || !S_ISDIR(st.st_mode)) {
            ctl_err("audit", "--spool %s is not a directory", spool);
            return CTL_EXIT_USAGE;
        }
    } else {
        const char *home = getenv("SAGA_HOME");
        struct stat st;
        snprintf(default_spool, sizeof(default_spool), "%s/mail",
                 home != NULL && *home ? home : "./var");
        if (stat(default_spool, &st) == 0 && S_ISDIR(st.st_mode))
            spool = default_spool;
    }
    rc = ctl_connect(&c, "audit", url, 0, 0);
    if (rc != CTL_EXIT_OK)
        return rc;
    int64_t deadline = ctl_now_ms() + settle * 1000;
    for (int round = 0;; round++) {
        audit_cleanup(&a);
        rc = audit_once(&a, &c, round == 0, spool, grace, strict_ids);
        if (rc != CTL_EXIT_OK)
            goto out;
        if (a.nv == 0 || ctl_now_ms() + 1000 > deadline)
            break;
        if (round == 0)
            ctl_err("audit",
                    "%zu violations; re-checking for up to %lld s while the fleet "
                    "settles",
                    a.nv, settle);
        ctl_sleep_ms(1000);
    }
    ctl_buf_init(&b);
    if (json)
        print_json(&a, &b);
    else
        print_text(&a, &b, url);
    fputs(ctl_buf_str(&b), stdout);
    rc = !ctl_buf_ok(&b) ? CTL_EXIT_FAIL : a.nv > 0 ? CTL_EXIT_FAIL : CTL_EXIT_OK;
    ctl_buf_cleanup(&b);
out:
    audit_cleanup(&a);
    ctl_disconnect(&c);
    return rc;
}
