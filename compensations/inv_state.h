/* inv_state.h - The inventory's LMDB layout: stock per SKU and one reservation per order.
 *
 * Shared by services/inventory/inventory.c and compensations/release.c, the
 * only two places that change stock, so both read and write it the same way.
 * It lives here because compensations depend on the runtime only.
 *
 * Global scope (saga_ctx_get(ctx, NULL, ...)):
 *   "stock:<sku>"  inv_stock: available, held, committed. Created by the
 *                  stock.set command only; an absent key reads as zeros.
 *   "skus"         every SKU ever set, newline-separated, in the order first
 *                  set (the runtime has no scan, the stock query needs a list).
 * Order scope (saga_ctx_get(ctx, order_id, ...)):
 *   "inv:res"      inv_res: what this order asked for, summed per SKU, and
 *                  what became of it (reserved, rejected, committed, released).
 *   tombstone INV_TOMBSTONE: the order was cancelled before it was reserved,
 *                  so a late order.placed never reserves.
 *
 * Values are host-order binary records: a service's LMDB lives and dies on
 * one machine. Each starts with a version so a layout change is caught as a
 * store error instead of being misread; a reservation of the older layout
 * (version 1) is still read, and rewritten in the new one when it changes. */
#ifndef INV_STATE_H
#define INV_STATE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.pb-c.h"
#include "saga/saga.h"

#define INV_SKU_MAX 64    /* SKUs are [A-Za-z0-9_-]{1,64}, as order ids */
#define INV_LINES_MAX 100 /* the order service accepts at most 100 lines */
#define INV_STOCK_VERSION 1
#define INV_RES_VERSION 2    /* head, then per line: quantity, SKU length, SKU */
#define INV_RES_VERSION_V1 1 /* head, then inv_line in full per line: still read */
#define INV_RES_KEY "inv:res"
#define INV_TOMBSTONE "cancelled"
#define INV_STOCK_PREFIX "stock:"
#define INV_SKUS_KEY "skus"
/* Bounds the "skus" list and the stock query's reply: 5000 entries of at
 * most ~140 bytes of JSON stay under NATS's default 1 MB payload limit. */
#define INV_SKUS_MAX 5000

/* An impossible state (held stock going negative can only mean a corrupt
 * store): stop with file and line rather than break conservation quietly.
 * Not assert(): release builds define NDEBUG. */
#define INV_ASSERT(cond) ((cond) ? (void)0 : inv_assert_fail(#cond, __FILE__, __LINE__))

static inline _Noreturn void inv_assert_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "level=error svc=inventory event=assertion_failed what=\"%s\" at=%s:%d\n", what,
            file, line);
    abort();
}

typedef struct inv_stock {
    int64_t version;
    int64_t available; /* free for new reservations */
    int64_t held;      /* reserved by orders not yet confirmed or cancelled */
    int64_t committed; /* taken by confirmed orders */
} inv_stock;

typedef enum inv_res_state {
    INV_RES_RESERVED = 1,
    INV_RES_REJECTED = 2,
    INV_RES_COMMITTED = 3,
    INV_RES_RELEASED = 4
} inv_res_state;

typedef struct inv_line {
    int64_t quantity;
    char sku[INV_SKU_MAX + 1];
} inv_line;

/* In memory. Stored (version 2) as the head (up to lines) and per line the
 * quantity (int64), the SKU's length (one byte) and its bytes: 44 bytes for
 * two lines, where version 1 stored the lines whole (80 bytes each, 176 for
 * two). Reservations are updated at random places among the orders in
 * flight, so the smaller they are the fewer pages a batch writes. */
typedef struct inv_res {
    uint32_t version;
    uint32_t state; /* inv_res_state */
    uint32_t nlines;
    uint32_t unused;
    inv_line lines[INV_LINES_MAX];
} inv_res;

static inline int inv_valid_sku(const char *s)
{
    /* The same alphabet and length as order ids, so the same check. */
    return saga_valid_order_id(s);
}

static inline const char *inv_res_state_name(uint32_t state)
{
    switch (state) {
    case INV_RES_RESERVED:
        return "reserved";
    case INV_RES_REJECTED:
        return "rejected";
    case INV_RES_COMMITTED:
        return "committed";
    case INV_RES_RELEASED:
        return "released";
    default:
        return "none";
    }
}

/* Reads the stock of sku into *out. An unknown SKU gives zeros and
 * SAGA_ENOTFOUND; a record of the wrong size or version SAGA_ESTORE. */
static inline saga_status inv_stock_load(saga_ctx *ctx, const char *sku, inv_stock *out)
{
    char key[sizeof(INV_STOCK_PREFIX) + INV_SKU_MAX];
    memset(out, 0, sizeof(*out));
    if (!inv_valid_sku(sku))
        return SAGA_EINVAL;
    snprintf(key, sizeof(key), INV_STOCK_PREFIX "%s", sku);
    saga_status st = saga_ctx_get_record(ctx, NULL, key, out, sizeof(*out));
    if (st == SAGA_EVALIDATE || (st == SAGA_OK && out->version != INV_STOCK_VERSION))
        return SAGA_ESTORE;
    return st;
}

static inline saga_status inv_stock_store(saga_ctx *ctx, const char *sku, const inv_stock *s)
{
    char key[sizeof(INV_STOCK_PREFIX) + INV_SKU_MAX];
    inv_stock copy = *s;
    if (!inv_valid_sku(sku))
        return SAGA_EINVAL;
    INV_ASSERT(s->available >= 0 && s->held >= 0 && s->committed >= 0);
    copy.version = INV_STOCK_VERSION;
    snprintf(key, sizeof(key), INV_STOCK_PREFIX "%s", sku);
    return saga_ctx_put(ctx, NULL, key, &copy, sizeof(copy));
}

#define INV_RES_LINE_V2 (sizeof(int64_t) + 1) /* a line stored: quantity, SKU length */

/* Decodes a stored reservation of len bytes at v into *out (zeroed first):
 * SAGA_OK, or SAGA_ESTORE for a bad record. Reads both layouts. The
 * hand-over reads stores with it too (services/inventory/inv_handover.c). */
static inline saga_status inv_res_decode(const void *v, size_t len, inv_res *out)
{
    const size_t head = offsetof(inv_res, lines);
    const uint8_t *p, *end = (const uint8_t *)v + len;
    memset(out, 0, sizeof(*out));
    if (len < head)
        return SAGA_ESTORE;
    p = (const uint8_t *)v + head;
    memcpy(out, v, head);
    if (out->nlines > INV_LINES_MAX)
        goto bad;
    if (out->version == INV_RES_VERSION_V1) {
        if (len != head + out->nlines * sizeof(inv_line))
            goto bad;
        memcpy(out->lines, p, out->nlines * sizeof(inv_line));
        for (uint32_t i = 0; i < out->nlines; i++)
            out->lines[i].sku[INV_SKU_MAX] = '\0';
        return SAGA_OK;
    }
    if (out->version != INV_RES_VERSION)
        goto bad;
    for (uint32_t i = 0; i < out->nlines; i++) {
        inv_line *l = &out->lines[i];
        if ((size_t)(end - p) < INV_RES_LINE_V2 || p[sizeof(int64_t)] == 0 ||
            p[sizeof(int64_t)] > INV_SKU_MAX ||
            (size_t)(end - p) < INV_RES_LINE_V2 + p[sizeof(int64_t)])
            goto bad;
        memcpy(&l->quantity, p, sizeof(int64_t));
        memcpy(l->sku, p + INV_RES_LINE_V2, p[sizeof(int64_t)]);
        l->sku[p[sizeof(int64_t)]] = '\0';
        p += INV_RES_LINE_V2 + p[sizeof(int64_t)];
    }
    if (p == end)
        return SAGA_OK;
bad:
    memset(out, 0, sizeof(*out));
    return SAGA_ESTORE;
}

/* Reads the order's reservation into *out (zeroed first). SAGA_ENOTFOUND
 * if the order never reached the inventory; SAGA_ESTORE for a bad record. */
static inline saga_status inv_res_load(saga_ctx *ctx, const char *order_id, inv_res *out)
{
    const void *v;
    size_t len;
    memset(out, 0, sizeof(*out));
    saga_status st = saga_ctx_get(ctx, order_id, INV_RES_KEY, &v, &len);
    return st == SAGA_OK ? inv_res_decode(v, len, out) : st;
}

/* Stores res in the current layout, whichever it was read from. */
static inline saga_status inv_res_store(saga_ctx *ctx, const char *order_id, inv_res *res)
{
    uint8_t buf[offsetof(inv_res, lines) + INV_LINES_MAX * (INV_RES_LINE_V2 + INV_SKU_MAX)];
    size_t n = offsetof(inv_res, lines);
    INV_ASSERT(res->nlines <= INV_LINES_MAX);
    res->version = INV_RES_VERSION;
    memcpy(buf, res, n);
    for (uint32_t i = 0; i < res->nlines; i++) {
        const inv_line *l = &res->lines[i];
        size_t slen = strnlen(l->sku, INV_SKU_MAX);
        memcpy(buf + n, &l->quantity, sizeof(int64_t));
        buf[n + sizeof(int64_t)] = (uint8_t)slen;
        memcpy(buf + n + INV_RES_LINE_V2, l->sku, slen);
        n += INV_RES_LINE_V2 + slen;
    }
    return saga_ctx_put(ctx, order_id, INV_RES_KEY, buf, n);
}

/* Takes every line of res out of held stock: into committed when the order
 * is confirmed (commit != 0), back to available when it is cancelled. A
 * failure half way is undone with the caller's handler as a whole. */
static inline saga_status inv_stock_unhold(saga_ctx *ctx, const inv_res *res, int commit)
{
    saga_status st = SAGA_OK;
    for (uint32_t i = 0; i < res->nlines && st == SAGA_OK; i++) {
        const inv_line *l = &res->lines[i];
        inv_stock s;
        st = inv_stock_load(ctx, l->sku, &s);
        if (st == SAGA_ENOTFOUND)
            st = SAGA_OK; /* cannot be for held stock: the zeros trip the assertion below */
        if (st != SAGA_OK)
            break;
        INV_ASSERT(s.held >= l->quantity);
        s.held -= l->quantity;
        if (commit)
            s.committed += l->quantity;
        else
            s.available += l->quantity;
        st = inv_stock_store(ctx, l->sku, &s);
    }
    return st;
}

/* Fills items (and the LineItem structs behind them, cap INV_LINES_MAX) with
 * res's lines, for the committed and released events. The strings point into
 * res: keep it alive while the message is used. */
static inline void inv_res_items(const inv_res *res, Saga__V1__LineItem *store,
                                 Saga__V1__LineItem **items)
{
    for (uint32_t i = 0; i < res->nlines; i++) {
        saga__v1__line_item__init(&store[i]);
        store[i].sku = (char *)res->lines[i].sku;
        store[i].quantity = (int32_t)res->lines[i].quantity;
        items[i] = &store[i];
    }
}

#endif
