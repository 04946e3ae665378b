/* order.c - The order service: accepts orders, starts their saga and decides its
 * outcome (CONFIRMED or CANCELLED) from the participants' events.
 *
 * Rules (docs/saga.md): saga.cmd.order.place validates an order, stores it
 * PENDING, emits order.placed and sets the timer "deadline"; it is idempotent
 * on the client's key (see idem_scope()).
 * shipping.scheduled confirms a PENDING order; payment.declined,
 * inventory.rejected, shipping.failed, any "<participant>.vetoed", the cancel
 * command and the deadline cancel it. Events for a final order are ignored:
 * the participants compensate on order.cancelled by themselves.
 *
 * State: one record per order, key "order" in the order's scope: a short
 * header (rec_head: state, times, lengths), the outcome's strings, then the
 * packed OrderPlaced of the order (customer, items, total, currency,
 * ship-to, deadline), so the record and the event that started the saga
 * cannot disagree. A final order is finished (saga_ctx_finish): its record stays
 * queryable for the retention period (SAGA_RETENTION_MS), then is pruned.
 * So is every idempotency key: a retry within the retention period gets the
 * first order back, a key reused later places a new order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "saga/saga.h"
#include "commands.pb-c.h"
#include "events.pb-c.h"
#include "svc.h"

#define REQUEST_MAX (64 * 1024) /* any command larger than this is refused unread */
#define ITEMS_MAX 100
#define QUANTITY_MAX 10000
#define UNIT_CENTS_MAX 10000000LL
#define IDENT_MAX 64 /* customer ids and SKUs */
#define IDEM_KEY_MAX 128
#define IDEM_HASH_BASIS2 0x84222325cbf29ce4ULL /* the second hash of a long key */
#define DETAIL_MAX 200
#define DEADLINE_DEFAULT_MS 30000
#define DEADLINE_MIN_MS 100
#define DEADLINE_MAX_MS 86400000LL
#define DEFAULT_CURRENCY "EUR"
#define DEFAULT_SHIP_TO "DE"
#define DEADLINE_TIMER "deadline"
#define RECORD_KEY "order"
#define RECORD_VERSION 2u    /* rec_head + strings + OrderPlaced */
#define RECORD_VERSION_V1 1u /* order_rec in full + OrderPlaced: still read */
#define IDEM_KEY "idem"      /* in the key's own scope: order id, NUL, the key */

/* Impossible states (a transition the state machine forbids) abort with the
 * place they were caught; NDEBUG must not turn them off. */
#define ORDER_ASSERT(cond)                                                                         \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "saga-order: %s:%d: assertion failed: %s\n", __FILE__, __LINE__,       \
                    #cond);                                                                        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static long long deadline_default_ms;

static const saga_app_setting settings[] = {
    {"ORDER_DEADLINE_MS", "time an order's saga may take before it is cancelled (timeout)",
     DEADLINE_DEFAULT_MS, DEADLINE_MIN_MS, DEADLINE_MAX_MS, &deadline_default_ms, NULL, NULL},
    {0}};

typedef enum order_state { ST_PENDING = 1, ST_CONFIRMED = 2, ST_CANCELLED = 3 } order_state;

/* An order's record in memory. Version 1 stored it as it is, padding and
 * all (~350 bytes before the order); version 2 stores rec_head instead. */
typedef struct order_rec {
    uint32_t version;    /* the layout it was read from */
    uint32_t state;      /* order_state */
    int64_t placed_ms;   /* when the place command was accepted */
    int64_t final_ms;    /* when it became CONFIRMED or CANCELLED; 0 while PENDING */
    uint32_t placed_len; /* bytes of packed OrderPlaced after the header */
    char reason[24];     /* payment_declined, out_of_stock, ... ; "" unless CANCELLED */
    char failed_step[SAGA_TYPE_MAX + 1];     /* event type or vetoing participant */
    char shipment_id[SAGA_ORDER_ID_MAX + 1]; /* set when CONFIRMED */
    char detail[DETAIL_MAX + 1];             /* human-readable, valid UTF-8 */
} order_rec;

/* The head of a version 2 record, written raw (the LMDB file never leaves
 * this service, and the version lets a later layout tell this one apart):
 * after it len[0..3] bytes of reason, failed_step, shipment_id and detail
 * (no NULs), then placed_len bytes of packed OrderPlaced. A pending order's
 * record is ~130 bytes, a third of version 1's: a batch's updates, spread
 * over the orders in flight, touch a third of the pages. */
typedef struct rec_head {
    uint32_t version; /* RECORD_VERSION */
    uint32_t state;
    int64_t placed_ms;
    int64_t final_ms;
    uint32_t placed_len;
    uint8_t len[4];
} rec_head;
_Static_assert(sizeof(rec_head) == 32, "rec_head is written raw: no padding");

/* ---- logging ---------------------------------------------------------- */

/* saga_ctx_log() names the order of an event handler's line itself; settle()
 * and finalize() also run in the deadline timer and the cancel command,
 * which have no event, so there they name it here. */
#define ORDER_LOG(ctx, lvl, order_id, fmt, ...)                                                    \
    do {                                                                                           \
        if (saga_ctx_event(ctx) != NULL)                                                           \
            saga_ctx_log((ctx), (lvl), fmt, __VA_ARGS__);                                          \
        else                                                                                       \
            saga_ctx_log((ctx), (lvl), "order=%s " fmt, (order_id), __VA_ARGS__);                  \
    } while (0)

/* ---- small helpers ---------------------------------------------------- */

static const char *state_name(uint32_t st)
{
    return st == ST_CONFIRMED ? "CONFIRMED" : st == ST_CANCELLED ? "CANCELLED" : "PENDING";
}

static const char *str_or(const char *s, const char *def)
{
    return s != NULL && s[0] != '\0' ? s : def;
}

/* Printable ASCII without spaces, 1..max: idempotency keys, shipment ids. */
static int valid_token(const char *s, size_t max)
{
    size_t n = 0;
    if (s == NULL)
        return 0;
    for (; s[n] != '\0'; n++)
        if (n >= max || (unsigned char)s[n] <= 0x20 || (unsigned char)s[n] >= 0x7f)
            return 0;
    return n > 0;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        len = 3;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4;
    else
        return 0;
    /* Overlong forms, UTF-16 surrogates and code points past U+10FFFF. */
    if (s[0] == 0xe0)
        lo = 0xa0;
    else if (s[0] == 0xed)
        hi = 0x9f;
    else if (s[0] == 0xf0)
        lo = 0x90;
    else if (s[0] == 0xf4)
        hi = 0x8f;
    if (len > n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

/* Copies free text from the network into dst (cap bytes): control characters
 * become spaces, invalid UTF-8 becomes '?', and a cut never splits a
 * character, so what is stored is always safe to show and to put in JSON. */
static void copy_text(char *dst, size_t cap, const char *src)
{
    size_t n = 0, slen = src != NULL ? strlen(src) : 0;
    const unsigned char *s = (const unsigned char *)src;
    for (size_t i = 0; i < slen;) {
        size_t len = utf8_seq(s + i, slen - i);
        if (len == 0) {
            if (n + 1 >= cap)
                break;
            dst[n++] = '?';
            i++;
            continue;
        }
        if (n + len >= cap)
            break;
        if (len == 1 && (s[i] < 0x20 || s[i] == 0x7f))
            dst[n] = ' ';
        else
            memcpy(dst + n, s + i, len);
        n += len;
        i += len;
    }
    dst[n] = '\0';
}

/* ---- the order record ------------------------------------------------- */

/* The outcome's strings of h, in the order version 2 stores them. */
static char *rec_field(order_rec *h, int i, size_t *cap)
{
    char *f[] = {h->reason, h->failed_step, h->shipment_id, h->detail};
    size_t c[] = {sizeof(h->reason), sizeof(h->failed_step), sizeof(h->shipment_id),
                  sizeof(h->detail)};
    *cap = c[i];
    return f[i];
}

/* Reads a version 1 record (v: len bytes) into *h; returns the offset of its
 * OrderPlaced, or 0 if the bytes are not one. */
static size_t rec_parse_v1(const uint8_t *v, size_t len, order_rec *h)
{
    if (len < sizeof(*h))
        return 0;
    memcpy(h, v, sizeof(*h)); /* LMDB values carry no alignment guarantee */
    if (h->placed_len != len - sizeof(*h))
        return 0;
    h->reason[sizeof(h->reason) - 1] = '\0';
    h->failed_step[sizeof(h->failed_step) - 1] = '\0';
    h->shipment_id[sizeof(h->shipment_id) - 1] = '\0';
    h->detail[sizeof(h->detail) - 1] = '\0';
    return sizeof(*h);
}

/* Reads a version 2 record into *h; returns the offset of its OrderPlaced,
 * or 0 if the bytes are not one. */
static size_t rec_parse_v2(const uint8_t *v, size_t len, order_rec *h)
{
    rec_head rh;
    size_t off = sizeof(rh);
    if (len < sizeof(rh))
        return 0;
    memcpy(&rh, v, sizeof(rh));
    memset(h, 0, sizeof(*h));
    h->version = rh.version;
    h->state = rh.state;
    h->placed_ms = rh.placed_ms;
    h->final_ms = rh.final_ms;
    h->placed_len = rh.placed_len;
    for (int i = 0; i < 4; i++) {
        size_t cap;
        char *dst = rec_field(h, i, &cap);
        if (rh.len[i] >= cap || rh.len[i] > len - off)
            return 0;
        memcpy(dst, v + off, rh.len[i]);
        dst[rh.len[i]] = '\0';
        off += rh.len[i];
    }
    return rh.placed_len == len - off ? off : 0;
}

/* Reads order_id's record: the header into *h and the order into *placed,
 * which the caller frees with saga__v1__order_placed__free_unpacked(). Both
 * are set only on SAGA_OK; SAGA_ENOTFOUND if there is no such order,
 * SAGA_EVALIDATE if the stored bytes are not a record of a known layout. */
static saga_status rec_load(saga_ctx *ctx, const char *order_id, order_rec *h,
                            Saga__V1__OrderPlaced **placed)
{
    const void *v;
    size_t len, off = 0;
    uint32_t version;
    order_rec r;
    saga_status st = saga_ctx_get(ctx, order_id, RECORD_KEY, &v, &len);
    if (st != SAGA_OK)
        return st;
    if (len < sizeof(version))
        return SAGA_EVALIDATE;
    memcpy(&version, v, sizeof(version));
    if (version == RECORD_VERSION)
        off = rec_parse_v2(v, len, &r);
    else if (version == RECORD_VERSION_V1)
        off = rec_parse_v1(v, len, &r);
    if (off == 0 || r.state < ST_PENDING || r.state > ST_CANCELLED)
        return SAGA_EVALIDATE;
    *placed = saga__v1__order_placed__unpack(NULL, r.placed_len, (const uint8_t *)v + off);
    if (*placed == NULL)
        return SAGA_EVALIDATE;
    *h = r;
    return SAGA_OK;
}

/* Stores h and placed as a version 2 record, whatever layout h was read from. */
static saga_status rec_store(saga_ctx *ctx, const char *order_id, const order_rec *h,
                             const Saga__V1__OrderPlaced *placed)
{
    rec_head rh = {RECORD_VERSION, h->state, h->placed_ms, h->final_ms, 0, {0}};
    order_rec r = *h;
    size_t plen = saga__v1__order_placed__get_packed_size(placed), off = sizeof(rh), slen = 0;
    uint8_t *buf;
    saga_status st;

    for (int i = 0; i < 4; i++) {
        size_t cap;
        const char *f = rec_field(&r, i, &cap);
        rh.len[i] = (uint8_t)strnlen(f, cap - 1); /* every cap is at most 256 */
        slen += rh.len[i];
    }
    rh.placed_len = (uint32_t)plen;
    buf = malloc(sizeof(rh) + slen + plen);
    if (buf == NULL)
        return SAGA_ENOMEM;
    memcpy(buf, &rh, sizeof(rh));
    for (int i = 0; i < 4; i++) {
        size_t cap;
        memcpy(buf + off, rec_field(&r, i, &cap), rh.len[i]);
        off += rh.len[i];
    }
    saga__v1__order_placed__pack(placed, buf + off);
    st = saga_ctx_put(ctx, order_id, RECORD_KEY, buf, off + plen);
    free(buf);
    return st;
}

/* Moves a PENDING order to its final state, stores it, drops its deadline
 * and emits order.confirmed or order.cancelled. */
static saga_status finalize(saga_ctx *ctx, const char *order_id, order_rec *h,
                            const Saga__V1__OrderPlaced *placed, order_state to, const char *reason,
                            const char *failed_step, const char *detail, const char *shipment_id)
{
    saga_status st;
    ORDER_ASSERT(h->state == ST_PENDING);
    ORDER_ASSERT(to == ST_CONFIRMED || to == ST_CANCELLED);
    h->state = to;
    h->final_ms = saga_ctx_now_ms(ctx);
    snprintf(h->reason, sizeof(h->reason), "%s", reason);
    snprintf(h->failed_step, sizeof(h->failed_step), "%s", failed_step);
    snprintf(h->shipment_id, sizeof(h->shipment_id), "%s", shipment_id);
    copy_text(h->detail, sizeof(h->detail), detail);

    st = rec_store(ctx, order_id, h, placed);
    if (st == SAGA_OK)
        st = saga_ctx_timer_cancel(ctx, order_id, DEADLINE_TIMER);
    if (st == SAGA_OK)
        st = saga_ctx_finish(ctx, order_id);
    if (st != SAGA_OK)
        return st;
    if (to == ST_CONFIRMED) {
        Saga__V1__OrderConfirmed m = SAGA__V1__ORDER_CONFIRMED__INIT;
        m.customer_id = placed->customer_id;
        m.n_items = placed->n_items;
        m.items = placed->items;
        m.total_cents = placed->total_cents;
        m.currency = placed->currency;
        m.shipment_id = h->shipment_id;
        st = svc_emit(ctx, "order.confirmed", order_id, &m.base);
    } else {
        Saga__V1__OrderCancelled m = SAGA__V1__ORDER_CANCELLED__INIT;
        m.customer_id = placed->customer_id;
        m.n_items = placed->n_items;
        m.items = placed->items;
        m.total_cents = placed->total_cents;
        m.currency = placed->currency;
        m.reason = h->reason;
        m.failed_step = h->failed_step;
        m.detail = h->detail;
        st = svc_emit(ctx, "order.cancelled", order_id, &m.base);
    }
    if (st == SAGA_OK)
        ORDER_LOG(ctx, SAGA_LOG_INFO, order_id, "event=%s reason=%s failed_step=%s",
                  to == ST_CONFIRMED ? "confirmed" : "cancelled", h->reason, h->failed_step);
    return st;
}

/* Applies an outcome to order_id if it is still PENDING. Returns a handler
 * status: SAGA_OK (done, or nothing to do) or SAGA_ERETRY. */
static saga_status settle(saga_ctx *ctx, const char *order_id, order_state to, const char *reason,
                          const char *failed_step, const char *detail, const char *shipment_id)
{
    order_rec h;
    Saga__V1__OrderPlaced *placed = NULL;
    saga_status st = rec_load(ctx, order_id, &h, &placed);
    if (st == SAGA_ENOTFOUND) {
        /* Every participant event follows an order.placed this service
         * committed, so this one belongs to no order of ours. */
        ORDER_LOG(ctx, SAGA_LOG_WARN, order_id, "event=ignored reason=unknown_order step=%s",
                  failed_step);
        return SAGA_OK;
    }
    if (st != SAGA_OK)
        goto out;
    if (h.state != ST_PENDING)
        ORDER_LOG(ctx, SAGA_LOG_DEBUG, order_id, "event=ignored state=%s step=%s",
                  state_name(h.state), failed_step);
    else
        st = finalize(ctx, order_id, &h, placed, to, reason, failed_step, detail, shipment_id);
out:
    if (st != SAGA_OK)
        ORDER_LOG(ctx, SAGA_LOG_WARN, order_id, "event=retry error=\"%s\"", saga_strerror(st));
    saga__v1__order_placed__free_unpacked(placed, NULL);
    return st == SAGA_OK ? SAGA_OK : SAGA_ERETRY;
}

/* ---- events and the deadline ------------------------------------------ */

static saga_status reject(saga_ctx *ctx, const saga_event *ev, const char *why)
{
    saga_ctx_log(ctx, SAGA_LOG_WARN, "event=reject type=%s error=\"%s\"", ev->type, why);
    return SAGA_EREJECT;
}

static saga_status on_scheduled(saga_ctx *ctx, const saga_event *ev, void *udata)
{
    saga_status rv;
    (void)udata;
    Saga__V1__ShipmentScheduled *m =
        saga__v1__shipment_scheduled__unpack(NULL, ev->payload_len, ev->payload);
    if (m == NULL)
        return reject(ctx, ev, "ShipmentScheduled does not unpack");
    if (!valid_token(m->shipment_id, SAGA_ORDER_ID_MAX))
        rv = reject(ctx, ev, "shipment_id is not 1 to 64 printable characters");
    else
        rv = settle(ctx, ev->order_id, ST_CONFIRMED, "", "", "", m->shipment_id);
    saga__v1__shipment_scheduled__free_unpacked(m, NULL);
    return rv;
}

static saga_status on_declined(saga_ctx *ctx, const saga_event *ev, void *udata)
{
    (void)udata;
    Saga__V1__PaymentDeclined *m =
        saga__v1__payment_declined__unpack(NULL, ev->payload_len, ev->payload);
    if (m == NULL)
        return reject(ctx, ev, "PaymentDeclined does not unpack");
    saga_status rv = settle(ctx, ev->order_id, ST_CANCELLED, "payment_declined", ev->type,
                            str_or(m->reason, "the payment was declined"), "");
    saga__v1__payment_declined__free_unpacked(m, NULL);
    return rv;
}

static saga_status on_rejected(saga_ctx *ctx, const saga_event *ev, void *udata)
{
    char detail[DETAIL_MAX + 1];
    (void)udata;
    Saga__V1__InventoryRejected *m =
        saga__v1__inventory_rejected__unpack(NULL, ev->payload_len, ev->payload);
    if (m == NULL)
        return reject(ctx, ev, "InventoryRejected does not unpack");
    /* The reason says whether a fault plan made the stock-out (an older
     * inventory sends none). */
    snprintf(detail, sizeof(detail), "%.72s: sku %.64s, asked %ld, available %lld",
             str_or(m->reason, "out of stock"), str_or(m->sku, "?"), (long)m->asked,
             (long long)m->available);
    saga_status rv = settle(ctx, ev->order_id, ST_CANCELLED, "out_of_stock", ev->type, detail, "");
    saga__v1__inventory_rejected__free_unpacked(m, NULL);
    return rv;
}

static saga_status on_ship_failed(saga_ctx *ctx, const saga_event *ev, void *udata)
{
    char detail[DETAIL_MAX + 1];
    (void)udata;
    Saga__V1__ShipmentFailed *m =
        saga__v1__shipment_failed__unpack(NULL, ev->payload_len, ev->payload);
    if (m == NULL)
        return reject(ctx, ev, "ShipmentFailed does not unpack");
    if (m->reason != NULL && m->reason[0] != '\0')
        snprintf(detail, sizeof(detail), "%s", m->reason);
    else
        snprintf(detail, sizeof(detail), "cannot ship to %.8s", str_or(m->ship_to, "?"));
    saga_status rv =
        settle(ctx, ev->order_id, ST_CANCELLED, "shipping_failed", ev->type, detail, "");
    saga__v1__shipment_failed__free_unpacked(m, NULL);
    return rv;
}

/* A veto for an order already confirmed cannot cancel it: the goods are on
 * their way and every step committed. It is not dropped silently either:
 * order.veto_ignored records it for trace and audit. */
static saga_status late_veto(saga_ctx *ctx, const saga_event *ev, const char *who,
                             const char *reason)
{
    Saga__V1__VetoIgnored m = SAGA__V1__VETO_IGNORED__INIT;
    m.participant = (char *)who;
    m.reason = (char *)reason;
    m.state = (char *)state_name(ST_CONFIRMED);
    ORDER_LOG(ctx, SAGA_LOG_WARN, ev->order_id,
              "event=late_veto participant=%s state=CONFIRMED veto_event=%s", who, ev->event_id);
    return svc_emit(ctx, "order.veto_ignored", ev->order_id, &m.base);
}

static saga_status on_vetoed(saga_ctx *ctx, const saga_event *ev, void *udata)
{
    saga_status rv;
    order_rec h;
    Saga__V1__OrderPlaced *placed = NULL;
    (void)udata;
    Saga__V1__ParticipantVetoed *m =
        saga__v1__participant_vetoed__unpack(NULL, ev->payload_len, ev->payload);
    if (m == NULL)
        return reject(ctx, ev, "ParticipantVetoed does not unpack");
    /* A participant vetoes in its own name only: the producer (which the
     * runtime has checked against the type) is who vetoed; a payload naming
     * someone else is refused. */
    const char *who = ev->producer;
    const char *reason = str_or(m->reason, "vetoed without a reason");
    if (m->participant != NULL && m->participant[0] != '\0' && strcmp(m->participant, who) != 0)
        rv = reject(ctx, ev, "a veto names another participant than its producer");
    else if (rec_load(ctx, ev->order_id, &h, &placed) == SAGA_OK && h.state == ST_CONFIRMED)
        rv = late_veto(ctx, ev, who, reason);
    else
        rv = settle(ctx, ev->order_id, ST_CANCELLED, "vetoed", who, reason, "");
    saga__v1__order_placed__free_unpacked(placed, NULL);
    saga__v1__participant_vetoed__free_unpacked(m, NULL);
    return rv;
}

static saga_status on_timer(saga_ctx *ctx, const char *order_id, const char *name,
                            const uint8_t *data, size_t len, void *udata)
{
    (void)data;
    (void)len;
    (void)udata;
    if (strcmp(name, DEADLINE_TIMER) != 0) {
        saga_ctx_log(ctx, SAGA_LOG_WARN, "event=ignored order=%s timer=%s reason=unknown_timer",
                     order_id, name);
        return SAGA_OK;
    }
    return settle(ctx, order_id, ST_CANCELLED, "timeout", "",
                  "the order did not complete before its deadline", "");
}

/* ---- commands --------------------------------------------------------- */

/* Checks a PlaceOrder against docs/saga.md; fills err with a sentence for
 * the user and returns 0 if it fails, else sets *total and returns 1. */
static int validate_place(const Saga__V1__PlaceOrder *req, int64_t *total, char *err, size_t cap)
{
    const char *cur = str_or(req->currency, DEFAULT_CURRENCY);
    const char *to = str_or(req->ship_to, DEFAULT_SHIP_TO);
    int64_t sum = 0;

    if (req->idempotency_key != NULL && req->idempotency_key[0] != '\0' &&
        !valid_token(req->idempotency_key, IDEM_KEY_MAX)) {
        snprintf(err, cap,
                 "The idempotency key must be 1 to %d printable ASCII characters without spaces.",
                 IDEM_KEY_MAX);
        return 0;
    }
    if (!svc_valid_ident(req->customer_id, IDENT_MAX)) {
        snprintf(err, cap,
                 "The customer id must be 1 to %d characters from A-Z, a-z, 0-9, _ and -.",
                 IDENT_MAX);
        return 0;
    }
    if (req->n_items < 1 || req->n_items > ITEMS_MAX) {
        snprintf(err, cap, "An order needs 1 to %d items; this one has %zu.", ITEMS_MAX,
                 req->n_items);
        return 0;
    }
    for (size_t i = 0; i < req->n_items; i++) {
        const Saga__V1__LineItem *it = req->items[i];
        if (it == NULL || !svc_valid_ident(it->sku, IDENT_MAX)) {
            snprintf(err, cap,
                     "Item %zu: the SKU must be 1 to %d characters from A-Z, a-z, 0-9, _ and -.",
                     i + 1, IDENT_MAX);
            return 0;
        }
        if (it->quantity < 1 || it->quantity > QUANTITY_MAX) {
            snprintf(err, cap, "Item %zu (%s): the quantity must be between 1 and %d.", i + 1,
                     it->sku, QUANTITY_MAX);
            return 0;
        }
        if (it->unit_cents < 1 || it->unit_cents > UNIT_CENTS_MAX) {
            snprintf(err, cap, "Item %zu (%s): the unit price must be between 1 and %lld cents.",
                     i + 1, it->sku, UNIT_CENTS_MAX);
            return 0;
        }
        /* One line per SKU, so a participant that checks stock line by line
         * cannot promise the same units twice. */
        for (size_t j = 0; j < i; j++) {
            if (strcmp(req->items[j]->sku, it->sku) == 0) {
                snprintf(err, cap,
                         "Item %zu: SKU %s is already on item %zu; put its whole "
                         "quantity on one line.",
                         i + 1, it->sku, j + 1);
                return 0;
            }
        }
        sum += (int64_t)it->quantity * it->unit_cents; /* at most 1e13: no overflow */
    }
    if (strcmp(cur, "EUR") != 0 && strcmp(cur, "USD") != 0 && strcmp(cur, "GBP") != 0) {
        snprintf(err, cap, "The currency must be EUR, USD or GBP.");
        return 0;
    }
    if (strlen(to) != 2 || to[0] < 'A' || to[0] > 'Z' || to[1] < 'A' || to[1] > 'Z') {
        snprintf(err, cap, "The ship-to country must be two upper-case letters, such as DE.");
        return 0;
    }
    if (req->deadline_ms != 0 &&
        (req->deadline_ms < DEADLINE_MIN_MS || req->deadline_ms > DEADLINE_MAX_MS)) {
        snprintf(err, cap, "The deadline must be between %d and %lld ms, or 0 for the default.",
                 DEADLINE_MIN_MS, DEADLINE_MAX_MS);
        return 0;
    }
    *total = sum;
    return 1;
}

/* An idempotency key gets a scope of its own in the order-scoped state, so
 * that it is finished and pruned like a saga: "k<s>-<key>" when the key is
 * usable as a scope name, else "h<s>-" and 128 bits of hash of it (the
 * record keeps the key itself, so that a collision is caught, never served).
 * Order ids are ULIDs and never contain '-'. <s> is the first pair of
 * characters that puts the scope in the key's own partition, the one a place
 * is routed to (docs/scaling.md): the record then lives with that
 * partition's orders and moves with it in a hand-over. */
static void idem_scope(const char *key, char out[SAGA_ORDER_ID_MAX + 1])
{
    static const char salt[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    char name[SAGA_ORDER_ID_MAX + 1];
    size_t len = strlen(key);
    unsigned want = saga_partition_of(key);
    snprintf(name, sizeof(name), "kss-%s", key);
    if (len + 4 > SAGA_ORDER_ID_MAX || !saga_valid_order_id(name)) {
        /* Two FNV-1a hashes from two offset bases: a key that collides under
         * one does not under the other, except by chance. */
        uint64_t h1 = saga_fnv1a(SAGA_FNV1A_INIT, key, len);
        uint64_t h2 = saga_fnv1a(IDEM_HASH_BASIS2, key, len);
        snprintf(name, sizeof(name), "hss-%016llx%016llx", (unsigned long long)h1,
                 (unsigned long long)h2);
    }
    /* 62 * 62 pairs: the chance that none lands in one of 16 partitions is nil. */
    for (size_t i = 0; i < sizeof(salt) - 1; i++) {
        for (size_t j = 0; j < sizeof(salt) - 1; j++) {
            name[1] = salt[i];
            name[2] = salt[j];
            if (saga_partition_of(name) == want) {
                memcpy(out, name, strlen(name) + 1);
                return;
            }
        }
    }
    memcpy(out, name, strlen(name) + 1);
}

/* Looks the idempotency key up; copies the earlier order's id into out. */
static saga_status idem_get(saga_ctx *ctx, const char *key, char *out, size_t cap)
{
    char scope[SAGA_ORDER_ID_MAX + 1];
    const void *v;
    size_t len;
    idem_scope(key, scope);
    saga_status st = saga_ctx_get(ctx, scope, IDEM_KEY, &v, &len);
    if (st != SAGA_OK)
        return st;
    const char *rec = v, *nul = memchr(rec, '\0', len);
    if (nul == NULL || nul == rec || (size_t)(nul - rec) >= cap)
        return SAGA_EVALIDATE;
    size_t olen = (size_t)(nul - rec);
    if (len - olen - 1 != strlen(key) || memcmp(nul + 1, key, len - olen - 1) != 0)
        return SAGA_EVALIDATE; /* another key with the same hash */
    memcpy(out, rec, olen);
    out[olen] = '\0';
    return SAGA_OK;
}

/* Records key -> order_id until the retention period is over. */
static saga_status idem_put(saga_ctx *ctx, const char *key, const char *order_id)
{
    char scope[SAGA_ORDER_ID_MAX + 1], rec[SAGA_ORDER_ID_MAX + 1 + IDEM_KEY_MAX + 1];
    size_t olen = strlen(order_id), klen = strlen(key);
    idem_scope(key, scope);
    memcpy(rec, order_id, olen + 1);
    memcpy(rec + olen + 1, key, klen);
    saga_status st = saga_ctx_put(ctx, scope, IDEM_KEY, rec, olen + 1 + klen);
    return st == SAGA_OK ? saga_ctx_finish(ctx, scope) : st;
}

/* A new order id. A place routed to partition p (saga.cmd.order.place.<p>,
 * the partition of its idempotency key, docs/scaling.md) reached the
 * instance that owns p, and so must the order's events: ULIDs are drawn
 * until one falls in p (16 draws on average). Unrouted, only the instance
 * that owns every partition answers, and any id will do. */
static void mint_order_id(const char *subject, char order_id[SAGA_ORDER_ID_MAX + 1])
{
    int p = saga_subject_partition(subject);
    do
        saga_ulid_new(order_id);
    while (p >= 0 && saga_partition_of(order_id) != (unsigned)p);
}

/* saga.cmd.order.place: PlaceOrder -> PlaceOrderReply. */
static saga_status on_place(saga_ctx *ctx, const char *subject, const uint8_t *data, size_t len,
                            void *udata)
{
    Saga__V1__PlaceOrder *req = NULL;
    Saga__V1__PlaceOrderReply rep = SAGA__V1__PLACE_ORDER_REPLY__INIT;
    Saga__V1__OrderPlaced placed = SAGA__V1__ORDER_PLACED__INIT;
    Saga__V1__LineItem lines[ITEMS_MAX], *linep[ITEMS_MAX];
    char err[256] = "";
    const char *key = NULL;
    char order_id[SAGA_ORDER_ID_MAX + 1];
    int64_t total = 0, now = saga_ctx_now_ms(ctx);
    order_rec h;
    saga_status st = SAGA_OK, rs;
    (void)udata;

    if (len > REQUEST_MAX) {
        snprintf(err, sizeof(err), "The request is %zu bytes; the limit is %d.", len, REQUEST_MAX);
        goto reply;
    }
    req = saga__v1__place_order__unpack(NULL, len, data);
    if (req == NULL) {
        snprintf(err, sizeof(err), "The request is not a PlaceOrder message.");
        goto reply;
    }
    if (!validate_place(req, &total, err, sizeof(err)))
        goto reply;
    if (req->idempotency_key != NULL && req->idempotency_key[0] != '\0') {
        key = req->idempotency_key;
        st = idem_get(ctx, key, order_id, sizeof(order_id));
        if (st == SAGA_OK) {
            rep.ok = 1;
            rep.duplicate = 1;
            rep.order_id = order_id;
            saga_ctx_log(ctx, SAGA_LOG_INFO, "event=duplicate order=%s", order_id);
            goto reply;
        }
        if (st != SAGA_ENOTFOUND)
            goto fail;
        st = SAGA_OK;
    }

    mint_order_id(subject, order_id);
    /* Fresh line items: protobuf-c packs the unknown fields of a message
     * again, and only what was validated may reach the event. */
    for (size_t i = 0; i < req->n_items; i++) {
        saga__v1__line_item__init(&lines[i]);
        lines[i].sku = req->items[i]->sku;
        lines[i].quantity = req->items[i]->quantity;
        lines[i].unit_cents = req->items[i]->unit_cents;
        linep[i] = &lines[i];
    }
    placed.customer_id = req->customer_id;
    placed.n_items = req->n_items;
    placed.items = linep;
    placed.total_cents = total;
    placed.currency = (char *)str_or(req->currency, DEFAULT_CURRENCY);
    placed.ship_to = (char *)str_or(req->ship_to, DEFAULT_SHIP_TO);
    placed.deadline_unix_ms =
        now + (req->deadline_ms != 0 ? req->deadline_ms : deadline_default_ms);
    memset(&h, 0, sizeof(h));
    h.version = RECORD_VERSION;
    h.state = ST_PENDING;
    h.placed_ms = now;

    st = rec_store(ctx, order_id, &h, &placed);
    if (st == SAGA_OK && key != NULL)
        st = idem_put(ctx, key, order_id);
    if (st == SAGA_OK)
        st = svc_emit(ctx, "order.placed", order_id, &placed.base);
    if (st == SAGA_OK)
        st = saga_ctx_timer_set(ctx, order_id, DEADLINE_TIMER, placed.deadline_unix_ms, NULL, 0);
    if (st != SAGA_OK)
        goto fail;
    rep.ok = 1;
    rep.order_id = order_id;
    saga_ctx_log(ctx, SAGA_LOG_INFO, "event=placed order=%s customer=%s items=%zu total_cents=%lld",
                 order_id, placed.customer_id, placed.n_items, (long long)total);
    goto reply;
fail:
    /* The runtime undoes this handler's writes: nothing was placed. */
    saga_ctx_log(ctx, SAGA_LOG_WARN, "event=place_failed error=\"%s\"", saga_strerror(st));
    snprintf(err, sizeof(err),
             "The order could not be stored (%s); retry with the same idempotency key.",
             saga_strerror(st));
reply:
    if (!rep.ok)
        rep.error = err;
    rs = svc_reply(ctx, &rep.base);
    saga__v1__place_order__free_unpacked(req, NULL);
    return st != SAGA_OK ? st : rs;
}

/* saga.cmd.order.cancel: CancelOrder -> CommandReply. The reason of a
 * cancellation by command is always "customer"; the client's text goes to
 * the detail, so the reasons stay one closed set for participants. */
static saga_status on_cancel(saga_ctx *ctx, const char *subject, const uint8_t *data, size_t len,
                             void *udata)
{
    Saga__V1__CancelOrder *req = NULL;
    Saga__V1__CommandReply rep = SAGA__V1__COMMAND_REPLY__INIT;
    Saga__V1__OrderPlaced *placed = NULL;
    order_rec h;
    char err[256] = "";
    saga_status st = SAGA_OK, rs;
    (void)subject;
    (void)udata;

    if (len > REQUEST_MAX) {
        snprintf(err, sizeof(err), "The request is %zu bytes; the limit is %d.", len, REQUEST_MAX);
        goto reply;
    }
    req = saga__v1__cancel_order__unpack(NULL, len, data);
    if (req == NULL) {
        snprintf(err, sizeof(err), "The request is not a CancelOrder message.");
        goto reply;
    }
    if (!saga_valid_order_id(req->order_id)) {
        snprintf(err, sizeof(err),
                 "The order id must be 1 to %d characters from A-Z, a-z, 0-9, _ and -.",
                 SAGA_ORDER_ID_MAX);
        goto reply;
    }
    st = rec_load(ctx, req->order_id, &h, &placed);
    if (st == SAGA_ENOTFOUND) {
        st = SAGA_OK;
        snprintf(err, sizeof(err), "There is no order %s.", req->order_id);
        goto reply;
    }
    if (st != SAGA_OK)
        goto fail;
    switch (h.state) {
    case ST_CONFIRMED:
        snprintf(err, sizeof(err), "order is already confirmed");
        break;
    case ST_CANCELLED:
        rep.ok = 1; /* cancelling twice is not an error: the outcome is the one asked for */
        break;
    default:
        st = finalize(ctx, req->order_id, &h, placed, ST_CANCELLED, "customer", "",
                      str_or(req->reason, "cancelled by the customer"), "");
        if (st != SAGA_OK)
            goto fail;
        rep.ok = 1;
        break;
    }
    rep.state = (char *)state_name(h.state);
    goto reply;
fail:
    saga_ctx_log(ctx, SAGA_LOG_WARN, "event=cancel_failed order=%s error=\"%s\"", req->order_id,
                 saga_strerror(st));
    snprintf(err, sizeof(err), "The cancellation could not be stored (%s); retry.",
             saga_strerror(st));
reply:
    if (!rep.ok)
        rep.error = err;
    rs = svc_reply(ctx, &rep.base);
    saga__v1__order_placed__free_unpacked(placed, NULL);
    saga__v1__cancel_order__free_unpacked(req, NULL);
    return st != SAGA_OK ? st : rs;
}

/* ---- the query -------------------------------------------------------- */

/* The reply for an order that was placed: its record and the placed event.
 * NULL if it cannot be built (svc_json_send says so to the client). */
static json_t *order_json(const char *order_id, const order_rec *h, const Saga__V1__OrderPlaced *p)
{
    json_t *items = json_array();
    for (size_t i = 0; items != NULL && i < p->n_items; i++) {
        const Saga__V1__LineItem *it = p->items[i];
        if (json_array_append_new(items, json_pack("{s:s, s:I, s:I}", "sku", it->sku, "quantity",
                                                   (json_int_t)it->quantity, "unit_cents",
                                                   (json_int_t)it->unit_cents)) != 0) {
            json_decref(items);
            items = NULL;
        }
    }
    /* "o" steals items, also when json_pack fails; a NULL items fails it. */
    return json_pack("{s:s, s:s, s:b, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:I, s:I, "
                     "s:I, s:o}",
                     "service", "order", "order_id", order_id, "found", 1, "state",
                     state_name(h->state), "reason", h->reason, "failed_step", h->failed_step,
                     "detail", h->detail, "customer_id", p->customer_id, "total_cents",
                     (json_int_t)p->total_cents, "currency", p->currency, "ship_to", p->ship_to,
                     "shipment_id", h->shipment_id, "placed_ms", (json_int_t)h->placed_ms,
                     "deadline_ms", (json_int_t)p->deadline_unix_ms, "final_ms",
                     (json_int_t)h->final_ms, "items", items);
}

/* saga.q.order.order: payload is the order id; replies one JSON object. */
static saga_status on_query(saga_ctx *ctx, const char *subject, const uint8_t *data, size_t len,
                            void *udata)
{
    char order_id[SAGA_ORDER_ID_MAX + 1];
    order_rec h;
    Saga__V1__OrderPlaced *placed = NULL;
    json_t *reply;
    saga_status st;
    (void)subject;
    (void)udata;

    if (!svc_query_order_id(data, len, order_id))
        return svc_reply_not_order_id(ctx, "order");
    st = rec_load(ctx, order_id, &h, &placed);
    if (st == SAGA_OK)
        reply = order_json(order_id, &h, placed);
    else if (st == SAGA_ENOTFOUND)
        reply = json_pack("{s:s, s:s, s:b}", "service", "order", "order_id", order_id, "found", 0);
    else
        reply = json_pack("{s:s, s:s, s:s}", "service", "order", "order_id", order_id, "error",
                          saga_strerror(st));
    st = svc_json_send(ctx, reply);
    saga__v1__order_placed__free_unpacked(placed, NULL);
    return st;
}

/* ---- main ------------------------------------------------------------- */

static saga_status setup(saga_service *svc, const saga_config *cfg, void *udata)
{
    static const char *const emits[] = {"order.placed", "order.confirmed", "order.cancelled",
                                        "order.veto_ignored", NULL};
    static const svc_sub subs[] = {{"shipping.scheduled", on_scheduled},
                                   {"payment.declined", on_declined},
                                   {"inventory.rejected", on_rejected},
                                   {"shipping.failed", on_ship_failed},
                                   {"*.vetoed", on_vetoed},
                                   {NULL, NULL}};
    static const svc_cmd cmds[] = {{SAGA_SUBJ_ORDER_PLACE, on_place},
                                   {SAGA_SUBJ_ORDER_CANCEL, on_cancel},
                                   {"saga.q.order.order", on_query},
                                   {NULL, NULL}};
    (void)udata;
    saga_status st = svc_wire(
        svc, &(svc_wiring){.emits = emits, .subs = subs, .cmds = cmds, .on_timer = on_timer});
    if (st == SAGA_OK)
        svc_log(cfg, SAGA_LOG_INFO, "event=configured deadline_ms=%lld", deadline_default_ms);
    return st;
}

int main(int argc, char **argv)
{
    return saga_app_main("order",
                         "Accepts orders, starts their saga and decides the outcome: "
                         "CONFIRMED or CANCELLED.",
                         settings, argc, argv, setup, NULL);
}
