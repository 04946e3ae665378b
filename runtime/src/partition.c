/* partition.c - The partitions an instance owns: its durable consumers, its
 * routed request subjects and the guard on its data directory.
 *
 * A service runs as one instance (no SAGA_INSTANCE, no SAGA_PARTITIONS: it
 * owns every partition, one consumer per event pattern, as before instances
 * existed) or as one of several, each owning a disjoint set of the
 * SAGA_PARTITIONS partitions of the event stream and keeping only their
 * state (docs/scaling.md). Requests about one order reach the owner on
 * "<subject>.<partition>". */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "saga/event.h"
#include "service_internal.h"

int saga_subject_partition(const char *subject)
{
    const char *dot = subject != NULL ? strrchr(subject, '.') : NULL;
    char *end;
    if (dot == NULL || dot[1] < '0' || dot[1] > '9' || (dot[1] == '0' && dot[2] != '\0'))
        return -1;
    long p = strtol(dot + 1, &end, 10);
    return *end == '\0' && p < SAGA_PARTITIONS ? (int)p : -1;
}

saga_status saga_routed_subject(const char *subject, const char *key, char *out, size_t cap)
{
    if (subject == NULL || key == NULL || out == NULL)
        return SAGA_EINVAL;
    int n = snprintf(out, cap, SAGA_SUBJ_ROUTED_FMT, subject, saga_partition_of(key));
    return n < 0 || (size_t)n >= cap ? SAGA_ETOOBIG : SAGA_OK;
}

saga_status saga_consumer_name(const char *service, const char *pattern, int partition, char *out,
                               size_t cap)
{
    if (service == NULL || pattern == NULL || out == NULL || partition >= SAGA_PARTITIONS)
        return SAGA_EINVAL;
    saga_status rv = saga_durable_name(out, cap, service, pattern);
    size_t n = strlen(out);
    if (rv == SAGA_OK && partition >= 0 &&
        (size_t)snprintf(out + n, cap - n, "_p%02d", partition) >= cap - n) {
        out[0] = '\0';
        rv = SAGA_ETOOBIG;
    }
    return rv;
}

static void consumer_init(saga_service *svc, saga__consumer *c, saga__sub *sub, int partition)
{
    memset(c, 0, sizeof(*c));
    c->sub = sub;
    c->partition = partition;
    if (partition < 0)
        snprintf(c->subject, sizeof(c->subject), SAGA_SUBJ_EVENTS_OF_FMT, sub->pattern);
    else
        snprintf(c->subject, sizeof(c->subject), SAGA_SUBJ_EVENT_FMT, (unsigned)partition,
                 sub->pattern);
    /* Patterns are checked and short (saga_service_subscribe): it fits. */
    saga_consumer_name(svc->name, sub->pattern, partition, c->name, sizeof(c->name));
    snprintf(c->deliver, sizeof(c->deliver), SAGA_SUBJ_DELIVER_FMT, c->name);
}

saga_status saga__consumers_plan(saga_service *svc)
{
    int per_sub = svc->instanced ? __builtin_popcount(svc->partitions) : 1;
    if (svc->cons != NULL)
        return SAGA_OK;
    svc->cons = calloc((size_t)(svc->nsubs * per_sub) + 1, sizeof(*svc->cons));
    if (svc->cons == NULL)
        return saga__fail(svc, SAGA_ENOMEM, "consumers: out of memory");
    svc->ncons = 0;
    for (int i = 0; i < svc->nsubs; i++) {
        if (!svc->instanced) {
            consumer_init(svc, &svc->cons[svc->ncons++], &svc->subs[i], -1);
            continue;
        }
        for (int p = 0; p < SAGA_PARTITIONS; p++)
            if (svc->partitions & (1u << p))
                consumer_init(svc, &svc->cons[svc->ncons++], &svc->subs[i], p);
    }
    return SAGA_OK;
}

static saga_status route_one(saga_service *svc, saga__route *route, const char *subject,
                             const char *queue, natsMsgHandler cb, void *closure)
{
    natsStatus s;
    natsSubscription **ns = &route->ns[route->n];
    if (route->n == (int)(sizeof(route->ns) / sizeof(route->ns[0])))
        return saga__fail(svc, SAGA_EINVAL, "%s: too many subscriptions", subject);
    if (queue != NULL)
        s = natsConnection_QueueSubscribe(ns, svc->tp.nc, subject, queue, cb, closure);
    else
        s = natsConnection_Subscribe(ns, svc->tp.nc, subject, cb, closure);
    if (s != NATS_OK)
        return saga__fail(svc, SAGA_ENATS, "subscribe %s: %s", subject, natsStatus_GetText(s));
    route->n++;
    return SAGA_OK;
}

saga_status saga__route_subscribe(saga_service *svc, saga__route *route, const char *subject,
                                  const char *queue, int plain, natsMsgHandler cb, void *closure)
{
    char routed[SAGA__SUBJECT_MAX + 8];
    saga_status rv = SAGA_OK;
    int all = svc->partitions == SAGA_PARTITION_SET_ALL;
    if (plain || all)
        rv = route_one(svc, route, subject, queue, cb, closure);
    if (rv == SAGA_OK && all) {
        snprintf(routed, sizeof(routed), "%s.*", subject);
        return route_one(svc, route, routed, queue, cb, closure);
    }
    for (int p = 0; p < SAGA_PARTITIONS && rv == SAGA_OK; p++) {
        if (!(svc->partitions & (1u << p)))
            continue;
        snprintf(routed, sizeof(routed), SAGA_SUBJ_ROUTED_FMT, subject, (unsigned)p);
        rv = route_one(svc, route, routed, queue, cb, closure);
    }
    return rv;
}

void saga__route_unsubscribe(saga__route *route)
{
    for (int i = 0; i < route->n; i++)
        natsSubscription_Unsubscribe(route->ns[i]);
}

void saga__route_destroy(saga__route *route)
{
    for (int i = 0; i < route->n; i++)
        natsSubscription_Destroy(route->ns[i]);
    route->n = 0;
}

saga_status saga__partitions_check_store(saga_service *svc)
{
    char want[64], had[64];
    MDB_txn *txn;
    MDB_val k = {strlen(SAGA__META_PARTITIONS), SAGA__META_PARTITIONS}, v;
    saga__store *st = &svc->store;
    /* The only instance says "all": its consumers are not per partition, so
     * becoming an instance of several is a hand-over too. */
    if (svc->instanced)
        saga_partition_set_format(svc->partitions, want, sizeof(want));
    else
        snprintf(want, sizeof(want), "%s", SAGA__META_ONLY);
    saga_status rv = saga__store_begin(st, NULL, &txn);
    if (rv != SAGA_OK)
        return saga__fail(svc, rv, "%s", st->err);
    int rc = mdb_get(txn, st->meta, &k, &v);
    if (rc == MDB_SUCCESS) {
        snprintf(had, sizeof(had), "%.*s", (int)v.mv_size, (const char *)v.mv_data);
        mdb_txn_abort(txn);
        if (strcmp(had, want) == 0)
            return SAGA_OK;
        return saga__fail(svc, SAGA_EINVAL,
                          "data directory %s holds the records of partitions %s, not %s: moving "
                          "partitions between instances is a hand-over (docs/scaling.md)",
                          svc->data_dir, had, want);
    }
    if (rc != MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return saga__fail(svc, saga__store_rc(st, rc, "meta get partitions"), "%s", st->err);
    }
    MDB_val nv = {strlen(want), want};
    rc = mdb_put(txn, st->meta, &k, &nv, 0);
    if (rc != MDB_SUCCESS) {
        mdb_txn_abort(txn);
        return saga__fail(svc, saga__store_rc(st, rc, "meta put partitions"), "%s", st->err);
    }
    rv = saga__store_commit(st, txn);
    return rv == SAGA_OK ? SAGA_OK : saga__fail(svc, rv, "%s", st->err);
}

json_t *saga__partitions_json(const saga_service *svc)
{
    json_t *a = json_array();
    for (int p = 0; a != NULL && p < SAGA_PARTITIONS; p++)
        if (svc->partitions & (1u << p))
            json_array_append_new(a, json_integer(p));
    return a;
}
