/* inv_handover.c - Inventory's stock re-split in a hand-over; see inv_handover.h
 * and docs/scaling.md. The plan is a JSON file:
 *
 *   {"service": "inventory", "id": ULID, "from": n, "to": m,
 *    "skus": ["A1", ...],
 *    "stores": [{"dir": ..., "partitions": "0,3,6", "stock": [[available, held,
 *                committed], ...one per SKU]}, ...]}
 *
 * the m new instances' stores first, then the old ones that leave (no stock:
 * their global state is emptied, so a store reused later holds no stale units). */
#include "inv_handover.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <uthash.h>

#include "inv_state.h"
#include "saga/config.h"
#include "saga/event.h"
#include "saga/handover.h"

enum { AVAILABLE, HELD, COMMITTED, FIGS };

/* One SKU over the old stores. */
typedef struct sku_row {
    char sku[INV_SKU_MAX + 1];
    long long recorded[FIGS];           /* summed over the old stores */
    long long held_by[SAGA_PARTITIONS]; /* reserved units of each new instance's orders */
    UT_hash_handle hh;
} sku_row;

typedef struct planner {
    sku_row *rows; /* in the order first seen (the stores' "skus" lists) */
    const uint32_t *sets;
    int m;
    char why[256];
} planner;

static sku_row *row_of(planner *p, const char *sku)
{
    sku_row *r = NULL;
    HASH_FIND_STR(p->rows, sku, r);
    if (r != NULL || !inv_valid_sku(sku))
        return r;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    snprintf(r->sku, sizeof(r->sku), "%s", sku);
    HASH_ADD_STR(p->rows, sku, r);
    return r;
}

/* The "skus" list of one store: each SKU gets its row, in the list's order. */
static int add_sku_list(planner *p, const char *v, size_t len)
{
    char sku[INV_SKU_MAX + 1];
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] != '\n')
            continue;
        snprintf(sku, sizeof(sku), "%.*s", (int)(i - start), v + start);
        start = i + 1;
        if (row_of(p, sku) == NULL && inv_valid_sku(sku)) {
            snprintf(p->why, sizeof(p->why), "out of memory");
            return -1;
        }
    }
    return 0;
}

static int global_record(planner *p, const char *key, const void *val, size_t len)
{
    inv_stock s;
    if (strcmp(key, INV_SKUS_KEY) == 0)
        return add_sku_list(p, val, len);
    const char *sku = strncmp(key, INV_STOCK_PREFIX, strlen(INV_STOCK_PREFIX)) == 0
                          ? key + strlen(INV_STOCK_PREFIX)
                          : NULL;
    sku_row *r = sku != NULL ? row_of(p, sku) : NULL;
    if (r == NULL || len != sizeof(s)) {
        snprintf(p->why, sizeof(p->why), "a global record the hand-over does not know: %.64s", key);
        return -1;
    }
    memcpy(&s, val, sizeof(s));
    if (s.version != INV_STOCK_VERSION) {
        snprintf(p->why, sizeof(p->why), "stock of %s: version %lld, not %d", sku,
                 (long long)s.version, INV_STOCK_VERSION);
        return -1;
    }
    r->recorded[AVAILABLE] += s.available;
    r->recorded[HELD] += s.held;
    r->recorded[COMMITTED] += s.committed;
    return 0;
}

/* A reserved order's lines count as held by the new instance that owns it. */
static int order_record(planner *p, const char *order_id, const void *val, size_t len)
{
    inv_res res;
    int owner = 0;
    uint32_t bit = 1u << saga_partition_of(order_id);
    if (inv_res_decode(val, len, &res) != SAGA_OK) {
        snprintf(p->why, sizeof(p->why), "the reservation of %s does not decode", order_id);
        return -1;
    }
    if (res.state != INV_RES_RESERVED)
        return 0;
    while (owner < p->m && !(p->sets[owner] & bit))
        owner++;
    for (uint32_t i = 0; i < res.nlines; i++) {
        sku_row *r = row_of(p, res.lines[i].sku);
        if (r == NULL || owner == p->m) {
            snprintf(p->why, sizeof(p->why), "order %s: no row for %s or no owner", order_id,
                     res.lines[i].sku);
            return -1;
        }
        r->held_by[owner] += res.lines[i].quantity;
    }
    return 0;
}

static int on_record(const char *order_id, const char *key, const void *val, size_t len,
                     void *udata)
{
    planner *p = udata;
    if (order_id == NULL)
        return global_record(p, key, val, len);
    return strcmp(key, INV_RES_KEY) == 0 ? order_record(p, order_id, val, len) : 0;
}

/* Each SKU's held units must be those of its reserved orders: else a unit would be
 * made or lost by the re-split. */
static int check_held(const planner *p, char *err, size_t errlen)
{
    for (const sku_row *r = p->rows; r != NULL; r = r->hh.next) {
        long long derived = 0;
        for (int j = 0; j < p->m; j++)
            derived += r->held_by[j];
        if (derived != r->recorded[HELD]) {
            snprintf(err, errlen,
                     "stock of %s: %lld units held, but the reserved orders hold %lld: "
                     "not re-split",
                     r->sku, r->recorded[HELD], derived);
            return -1;
        }
    }
    return 0;
}

/* One store of the plan: a new instance's (j < m) with its shares, or one that leaves. */
static json_t *store_json(const planner *p, const char *dir, int j)
{
    char parts[64];
    json_t *stock = json_array();
    saga_partition_set_format(j < p->m ? p->sets[j] : 0, parts, sizeof(parts));
    for (const sku_row *r = p->rows; j < p->m && r != NULL; r = r->hh.next)
        json_array_append_new(
            stock, json_pack("[I, I, I]",
                             (json_int_t)saga_partition_share(r->recorded[AVAILABLE], p->sets,
                                                              (size_t)p->m, (size_t)j),
                             (json_int_t)r->held_by[j],
                             (json_int_t)saga_partition_share(r->recorded[COMMITTED], p->sets,
                                                              (size_t)p->m, (size_t)j)));
    return json_pack("{s:s, s:s, s:o}", "dir", dir, "partitions", parts, "stock", stock);
}

static int in_list(const char *dir, const char *const *dirs, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(dirs[i], dir) == 0)
            return 1;
    return 0;
}

static json_t *plan_json(const planner *p, const char *const *from, int n, const char *const *to)
{
    char id[SAGA_ID_LEN + 1];
    json_t *skus = json_array(), *stores = json_array();
    saga_ulid_new(id);
    for (const sku_row *r = p->rows; r != NULL; r = r->hh.next)
        json_array_append_new(skus, json_string(r->sku));
    for (int j = 0; j < p->m; j++)
        json_array_append_new(stores, store_json(p, to[j], j));
    for (int k = 0; k < n; k++)
        if (!in_list(from[k], to, p->m))
            json_array_append_new(stores, store_json(p, from[k], p->m));
    return json_pack("{s:s, s:s, s:i, s:i, s:o, s:o}", "service", "inventory", "id", id, "from", n,
                     "to", p->m, "skus", skus, "stores", stores);
}

/* Writes plan to path through a temporary file: the plan is there whole or not at all. */
static int save(json_t *plan, const char *path, char *err, size_t errlen)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.new", path);
    FILE *fp = fopen(tmp, "w");
    int ok = fp != NULL && json_dumpf(plan, fp, JSON_INDENT(1)) == 0 && fflush(fp) == 0 &&
             fsync(fileno(fp)) == 0;
    if (fp != NULL && fclose(fp) != 0)
        ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot write the hand-over plan %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* The totals of plan into *rep. */
static void summarize(const json_t *plan, inv_handover_report *rep)
{
    size_t j, i;
    json_t *store, *fig;
    snprintf(rep->id, sizeof(rep->id), "%s", json_string_value(json_object_get(plan, "id")));
    rep->from = (int)json_integer_value(json_object_get(plan, "from"));
    rep->to = (int)json_integer_value(json_object_get(plan, "to"));
    rep->skus = json_array_size(json_object_get(plan, "skus"));
    json_array_foreach(json_object_get(plan, "stores"), j, store)
    {
        json_array_foreach(json_object_get(store, "stock"), i, fig)
        {
            rep->available += json_integer_value(json_array_get(fig, AVAILABLE));
            rep->held += json_integer_value(json_array_get(fig, HELD));
            rep->committed += json_integer_value(json_array_get(fig, COMMITTED));
        }
    }
}

/* The plan in path, checked for the fields apply reads; NULL with err set. */
static json_t *load(const char *path, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *plan = json_load_file(path, 0, &jerr);
    if (plan == NULL) {
        snprintf(err, errlen, "hand-over plan %s: %s", path, jerr.text);
        return NULL;
    }
    if (!json_is_string(json_object_get(plan, "id")) ||
        !json_is_array(json_object_get(plan, "skus")) ||
        !json_is_array(json_object_get(plan, "stores"))) {
        snprintf(err, errlen, "hand-over plan %s: not a plan (id, skus, stores)", path);
        json_decref(plan);
        return NULL;
    }
    return plan;
}

/* Whether plan goes to the stores to[0..m), as this hand-over does. */
static int same_stores(const json_t *plan, const char *const *to, int m)
{
    const json_t *stores = json_object_get(plan, "stores");
    if (json_integer_value(json_object_get(plan, "to")) != m || (int)json_array_size(stores) < m)
        return 0;
    for (int j = 0; j < m; j++) {
        const char *dir = json_string_value(json_object_get(json_array_get(stores, j), "dir"));
        if (dir == NULL || strcmp(dir, to[j]) != 0)
            return 0;
    }
    return 1;
}

static void planner_free(planner *p)
{
    sku_row *r, *tmp;
    HASH_ITER(hh, p->rows, r, tmp)
    {
        HASH_DEL(p->rows, r);
        free(r);
    }
}

int inv_handover_plan(const char *path, const char *const *from, int n, const char *const *to,
                      const uint32_t *sets, int m, inv_handover_report *rep, char *err,
                      size_t errlen)
{
    planner p = {.sets = sets, .m = m};
    json_t *plan = NULL;
    int rc = 0;
    memset(rep, 0, sizeof(*rep));
    if (access(path, F_OK) == 0) {
        plan = load(path, err, errlen);
        if (plan != NULL && !same_stores(plan, to, m)) {
            snprintf(err, errlen,
                     "an unfinished hand-over of inventory to %lld instances (plan %s): "
                     "scale inventory %lld finishes it",
                     (long long)json_integer_value(json_object_get(plan, "to")), path,
                     (long long)json_integer_value(json_object_get(plan, "to")));
            rc = -1;
        }
        rep->resumed = 1;
    } else {
        for (int k = 0; k < n && rc == 0; k++) {
            rc = saga_store_each_record(from[k], on_record, &p, err, errlen);
            if (rc != 0 && p.why[0] != '\0')
                snprintf(err, errlen, "%s: %s", from[k], p.why);
        }
        if (rc == 0 && HASH_COUNT(p.rows) > INV_SKUS_MAX) {
            snprintf(err, errlen, "%u SKUs over the instances, more than the %d one keeps",
                     HASH_COUNT(p.rows), INV_SKUS_MAX);
            rc = -1;
        }
        if (rc == 0)
            rc = check_held(&p, err, errlen);
        if (rc == 0) {
            plan = plan_json(&p, from, n, to);
            rc = plan != NULL ? save(plan, path, err, errlen) : -1;
        }
    }
    rc = rc == 0 && plan != NULL ? 0 : -1;
    if (rc == 0) {
        summarize(plan, rep);
        rep->stores = json_array_size(json_object_get(plan, "stores"));
    }
    json_decref(plan);
    planner_free(&p);
    return rc;
}

/* The global records of one store of the plan into recs (with their values in
 * stock[] and list): "skus" and one "stock:<sku>" per SKU; none for a store
 * that leaves. Returns how many, or -1. */
static int store_records(const json_t *skus, const json_t *store, saga_global_record *recs,
                         inv_stock *stock, char (*keys)[sizeof(INV_STOCK_PREFIX) + INV_SKU_MAX],
                         char *list, size_t cap)
{
    const json_t *figs = json_object_get(store, "stock");
    size_t n = json_array_size(figs), used = 0, i;
    json_t *fig;
    if (n == 0)
        return 0;
    if (n != json_array_size(skus))
        return -1;
    json_array_foreach(figs, i, fig)
    {
        const char *sku = json_string_value(json_array_get(skus, i));
        if (sku == NULL || !inv_valid_sku(sku) || used + strlen(sku) + 1 > cap)
            return -1;
        used += (size_t)snprintf(list + used, cap - used, "%s\n", sku);
        snprintf(keys[i], sizeof(keys[i]), INV_STOCK_PREFIX "%s", sku);
        stock[i] = (inv_stock){INV_STOCK_VERSION, json_integer_value(json_array_get(fig, 0)),
                               json_integer_value(json_array_get(fig, 1)),
                               json_integer_value(json_array_get(fig, 2))};
        if (stock[i].available < 0 || stock[i].held < 0 || stock[i].committed < 0)
            return -1;
        recs[i + 1] = (saga_global_record){keys[i], &stock[i], sizeof(stock[i])};
    }
    recs[0] = (saga_global_record){INV_SKUS_KEY, list, used};
    return (int)n + 1;
}

int inv_handover_apply(const char *path, int limit, inv_handover_report *rep, char *err,
                       size_t errlen)
{
    const size_t max = INV_SKUS_MAX;
    saga_global_record *recs = calloc(max + 1, sizeof(*recs));
    inv_stock *stock = calloc(max, sizeof(*stock));
    char(*keys)[sizeof(INV_STOCK_PREFIX) + INV_SKU_MAX] = calloc(max, sizeof(*keys));
    char *list = malloc(max * (INV_SKU_MAX + 1));
    json_t *plan = load(path, err, errlen), *store;
    size_t j;
    int rc = recs != NULL && stock != NULL && keys != NULL && list != NULL && plan != NULL ? 0 : -1;
    memset(rep, 0, sizeof(*rep));
    if (rc == 0 && json_array_size(json_object_get(plan, "skus")) > max) {
        snprintf(err, errlen, "hand-over plan %s: more SKUs than the inventory keeps", path);
        rc = -1;
    }
    json_array_foreach(json_object_get(plan, "stores"), j, store)
    {
        const char *dir = json_string_value(json_object_get(store, "dir"));
        if (rc != 0 || (limit >= 0 && (int)j >= limit))
            break;
        int n = store_records(json_object_get(plan, "skus"), store, recs, stock, keys, list,
                              max * (INV_SKU_MAX + 1));
        if (n < 0 || dir == NULL) {
            snprintf(err, errlen, "hand-over plan %s: store %zu is malformed", path, j);
            rc = -1;
        } else {
            rc = saga_store_set_global(dir, json_string_value(json_object_get(plan, "id")), recs,
                                       (size_t)n, err, errlen);
            rep->stores += rc == 0;
        }
    }
    if (rc == 0) {
        summarize(plan, rep);
        if (rep->stores == json_array_size(json_object_get(plan, "stores")) && unlink(path) != 0) {
            snprintf(err, errlen, "cannot remove the hand-over plan %s: %s", path, strerror(errno));
            rc = -1;
        }
    }
    json_decref(plan);
    free(list);
    free(keys);
    free(stock);
    free(recs);
    return rc;
}

int inv_handover_pending(const char *path, int *to)
{
    char err[256];
    if (access(path, F_OK) != 0)
        return 0;
    json_t *plan = load(path, err, sizeof(err));
    if (plan == NULL)
        return -1;
    *to = (int)json_integer_value(json_object_get(plan, "to"));
    json_decref(plan);
    return 1;
}
