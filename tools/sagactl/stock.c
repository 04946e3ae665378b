/* stock.c - A SKU's stock when inventory runs as several instances: each
 * holds a share of every SKU's units and sells only from it
 * (docs/scaling.md), so setting stock splits the quantity between them and
 * reading it sums their figures. sagactl and the tests' fleet both use it. */
#include <stdio.h>
#include <string.h>

#include "commands.pb-c.h"
#include "ctl.h"
#include "saga/config.h"
#include "saga/wire.h"

#define STOCK_REQUEST_MAX 256 /* a SetStock or GetStock of a valid SKU is far smaller */

/* An instance's partitions: 0 stands for the only instance (all of them). */
static int partitions_of(uint32_t set)
{
    return __builtin_popcount(set != 0 ? set : SAGA_PARTITION_SET_ALL);
}

long long ctl_stock_share(long long qty, const uint32_t *sets, size_t n, size_t k)
{
    long long owned = 0, given = 0;
    for (size_t i = 0; i < n; i++)
        owned += partitions_of(sets[i]);
    if (owned == 0 || k >= n)
        return 0;
    /* In proportion to the partitions, rounded down; the units left over
     * (fewer than n) go one each to the first instances. */
    for (size_t i = 0; i < n; i++)
        given += qty * partitions_of(sets[i]) / owned;
    return qty * partitions_of(sets[k]) / owned + ((long long)k < qty - given);
}

size_t ctl_stock_sets(int n, uint32_t sets[SAGA_PARTITIONS])
{
    char spec[32];
    sets[0] = 0; /* the only instance */
    for (int k = 1; n > 1 && k <= n && k <= SAGA_PARTITIONS; k++) {
        snprintf(spec, sizeof(spec), "%d/%d", k, n);
        saga_partition_set(spec, NULL, &sets[k - 1], NULL, 0);
    }
    return n > 1 ? (size_t)n : 1;
}

const char *ctl_stock_subject(const char *subject, uint32_t set, char *buf, size_t cap)
{
    if (set == 0 || set == SAGA_PARTITION_SET_ALL)
        snprintf(buf, cap, "%s", subject);
    else
        snprintf(buf, cap, SAGA_SUBJ_ROUTED_FMT, subject, (unsigned)__builtin_ctz(set));
    return buf;
}

/* One instance's answer to a set or get, added into *out. */
static int stock_ask(natsConnection *nc, const char *subject, const uint8_t *req, size_t len,
                     int64_t timeout_ms, ctl_stock *out, char *err, size_t errlen)
{
    natsMsg *m = NULL;
    natsStatus s = NATS_TIMEOUT;
    /* Setting is idempotent (it sets the free units), reading harmless: a
     * request that timed out is sent again. */
    for (int attempt = 0; attempt < CTL_COMMAND_ATTEMPTS && s == NATS_TIMEOUT; attempt++)
        s = natsConnection_Request(&m, nc, subject, req, (int)len, timeout_ms);
    if (s != NATS_OK) {
        snprintf(err, errlen, "no answer on %s: %s", subject, natsStatus_GetText(s));
        return CTL_EXIT_UNREACHABLE;
    }
    Saga__V1__StockReply *r = saga__v1__stock_reply__unpack(NULL, (size_t)natsMsg_GetDataLength(m),
                                                            (const uint8_t *)natsMsg_GetData(m));
    natsMsg_Destroy(m);
    if (r == NULL || !r->ok) {
        snprintf(err, errlen, "%s: %s", subject,
                 r == NULL   ? "the reply does not decode"
                 : *r->error ? r->error
                             : "refused");
        saga__v1__stock_reply__free_unpacked(r, NULL);
        return CTL_EXIT_FAIL;
    }
    out->available += r->available;
    out->held += r->held;
    out->committed += r->committed;
    saga__v1__stock_reply__free_unpacked(r, NULL);
    return CTL_EXIT_OK;
}

int ctl_stock_request(natsConnection *nc, const uint32_t *sets, size_t n, const char *sku,
                      long long qty, int64_t timeout_ms, ctl_stock *out, char *err, size_t errlen)
{
    Saga__V1__SetStock set = SAGA__V1__SET_STOCK__INIT;
    Saga__V1__GetStock get = SAGA__V1__GET_STOCK__INIT;
    uint8_t req[STOCK_REQUEST_MAX];
    char subject[160];
    size_t len;

    memset(out, 0, sizeof(*out));
    set.sku = get.sku = (char *)sku;
    if (strlen(sku) > 64) {
        snprintf(err, errlen, "a SKU has at most 64 characters");
        return CTL_EXIT_USAGE;
    }
    for (size_t k = 0; k < n; k++) {
        if (qty >= 0) {
            set.quantity = ctl_stock_share(qty, sets, n, k);
            len = saga__v1__set_stock__pack(&set, req);
        } else {
            len = saga__v1__get_stock__pack(&get, req);
        }
        ctl_stock_subject(qty >= 0 ? SAGA_SUBJ_STOCK_SET : SAGA_SUBJ_STOCK_GET, sets[k], subject,
                          sizeof(subject));
        int rc = stock_ask(nc, subject, req, len, timeout_ms, out, err, errlen);
        if (rc != CTL_EXIT_OK)
            return rc;
    }
    return CTL_EXIT_OK;
}

/* Adds one instance's "skus" list into sum, an object of SKU to {available, held,
 * committed}. */
static void add_skus(json_t *sum, const json_t *skus)
{
    static const char *const FIGS[] = {"available", "held", "committed"};
    size_t i;
    json_t *e;

    json_array_foreach(skus, i, e)
    {
        const char *sku = json_string_value(json_object_get(e, "sku"));
        if (sku == NULL)
            continue;
        json_t *have = json_object_get(sum, sku);
        if (have == NULL) {
            have = json_object();
            json_object_set_new(sum, sku, have);
        }
        for (size_t k = 0; k < sizeof(FIGS) / sizeof(FIGS[0]); k++)
            json_object_set_new(have, FIGS[k],
                                json_integer(json_integer_value(json_object_get(have, FIGS[k])) +
                                             json_integer_value(json_object_get(e, FIGS[k]))));
    }
}

json_t *ctl_stock_list(natsConnection *nc, const uint32_t *sets, size_t n, int64_t timeout_ms,
                       char *err, size_t errlen)
{
    json_t *sum = json_object(), *out = NULL;
    const char *key;
    json_t *v;

    for (size_t k = 0; k < n && sum != NULL; k++) {
        char subject[160];
        natsMsg *m = NULL;
        ctl_stock_subject(SAGA_SUBJ_STOCK_QUERY, sets[k], subject, sizeof(subject));
        natsStatus s = natsConnection_Request(&m, nc, subject, "", 0, timeout_ms);
        json_t *reply = s == NATS_OK ? ctl_reply_json(m) : NULL;
        natsMsg_Destroy(m);
        if (!json_is_array(json_object_get(reply, "skus"))) {
            snprintf(err, errlen, "no stock list on %s: %s", subject,
                     s == NATS_OK ? "the answer is not one" : natsStatus_GetText(s));
            json_decref(reply);
            json_decref(sum);
            return NULL;
        }
        add_skus(sum, json_object_get(reply, "skus"));
        json_decref(reply);
    }
    out = sum != NULL ? json_pack("{s:s, s:[], s:I}", "service", "inventory", "skus", "instances",
                                  (json_int_t)n)
                      : NULL;
    json_object_foreach(sum, key, v)
    {
        json_t *e = json_deep_copy(v);
        json_object_set_new(e, "sku", json_string(key));
        json_array_append_new(json_object_get(out, "skus"), e);
    }
    json_decref(sum);
    return out;
}
