/* tjs.c - JetStream helpers for the integration tests. */
#include "tjs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proc.h"
#include "saga/wire.h"

static void nap(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int tjs_connect(tjs *t, const char *url)
{
    return tjs_connect_as(t, url, NULL, NULL);
}

/* Connects with o (destroyed here), retrying for up to 20 s. */
static int connect_with(tjs *t, natsOptions *o)
{
    int64_t deadline = tproc_now_ms() + 20000;
    natsOptions_SetMaxReconnect(o, -1);
    natsOptions_SetReconnectWait(o, 100);
    while (natsConnection_Connect(&t->nc, o) != NATS_OK) {
        if (tproc_now_ms() > deadline) {
            natsOptions_Destroy(o);
            return -1;
        }
        nap(50);
    }
    natsOptions_Destroy(o);
    return natsConnection_JetStream(&t->js, t->nc, NULL) == NATS_OK ? 0 : -1;
}

int tjs_connect_as(tjs *t, const char *url, const fleet *f, const char *identity)
{
    natsOptions *o = NULL;
    memset(t, 0, sizeof(*t));
    if (natsOptions_Create(&o) != NATS_OK)
        return -1;
    fleet_set_servers(o, url); /* a cluster's nodes, or one server */
    if (f != NULL)
        fleet_client_options(f, identity, o);
    return connect_with(t, o);
}

int tjs_connect_home(tjs *t, const char *url, const char *home)
{
    natsOptions *o = NULL;
    char err[512];
    memset(t, 0, sizeof(*t));
    if (natsOptions_Create(&o) != NATS_OK)
        return -1;
    fleet_set_servers(o, url);
    if (fleet_client_env(o, home, "operator", err, sizeof(err)) != NATS_OK) {
        fprintf(stderr, "tjs: %s\n", err);
        natsOptions_Destroy(o);
        return -1;
    }
    return connect_with(t, o);
}

void tjs_close(tjs *t)
{
    jsCtx_Destroy(t->js);
    natsConnection_Destroy(t->nc);
    memset(t, 0, sizeof(*t));
}

void tjs_count_violations(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    (void)nc;
    (void)sub;
    if (err == NATS_NOT_PERMITTED)
        __atomic_add_fetch((int *)closure, 1, __ATOMIC_SEQ_CST);
}

/* The replicas the runtime gives the streams it creates: SAGA_REPLICAS, which a test
 * cluster (tsrv_start_cluster) sets for the test and everything it starts. */
static int replicas(void)
{
    const char *v = getenv("SAGA_REPLICAS");
    long n = v != NULL ? strtol(v, NULL, 10) : 1;
    return n >= 1 && n <= 5 ? (int)n : 1;
}

/* Creates a stream as the runtime does (file storage, the runtime's
 * duplicate window, SAGA_REPLICAS); one that exists already is fine. */
static int add_stream(tjs *t, const char *name, const char *subject, long long max_age_days)
{
    jsStreamConfig sc;
    jsErrCode jerr = 0;
    const char *subjects[] = {subject};
    jsStreamConfig_Init(&sc);
    sc.Name = name;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.MaxAge = max_age_days * 24 * 3600 * 1000000000LL;
    sc.Duplicates = 120LL * 1000000000LL;
    sc.Replicas = replicas();
    natsStatus s = js_AddStream(NULL, t->js, &sc, NULL, &jerr);
    return s == NATS_OK || jerr == 10058 ? 0 : -1;
}

int tjs_ensure_streams(tjs *t)
{
    /* Dead letters are kept longer than events, as the runtime keeps them. */
    if (add_stream(t, SAGA_STREAM_EVENTS, SAGA_SUBJ_EVENTS_ALL, 7) != 0)
        return -1;
    return add_stream(t, SAGA_STREAM_DLQ, SAGA_SUBJ_DLQ_ALL, 30);
}

int tjs_publish_raw(tjs *t, const char *subject, const void *data, size_t len, const char *msg_id)
{
    jsPubOptions po;
    int64_t deadline = tproc_now_ms() + 30000;
    jsPubOptions_Init(&po);
    po.MsgId = msg_id;
    po.MaxWait = 2000;
    for (;;) {
        jsPubAck *pa = NULL;
        natsStatus s = js_Publish(&pa, t->js, subject, data, (int)len, &po, NULL);
        jsPubAck_Destroy(pa);
        if (s == NATS_OK)
            return 0;
        if (tproc_now_ms() > deadline)
            return -1;
        nap(50);
    }
}

int tjs_publish_event(tjs *t, const char *type, const char *order, const char *payload,
                      char id_out[SAGA_ID_LEN + 1])
{
    return tjs_publish_payload(t, type, order, NULL, payload, payload ? strlen(payload) : 0,
                               id_out);
}

int tjs_encode_event(const char *type, const char *order, const char *producer, const void *payload,
                     size_t len, uint64_t seq, uint8_t **out, size_t *out_len, char *subject,
                     size_t scap, char id_out[SAGA_ID_LEN + 1])
{
    saga_event ev;
    memset(&ev, 0, sizeof(ev));
    saga_ulid_new(ev.event_id);
    snprintf(ev.type, sizeof(ev.type), "%s", type);
    ev.schema_version = 1;
    snprintf(ev.order_id, sizeof(ev.order_id), "%s", order);
    /* As its producer would, unless told otherwise: consumers refuse an
     * event whose producer is not the first token of its type. */
    if (producer != NULL)
        snprintf(ev.producer, sizeof(ev.producer), "%s", producer);
    else
        snprintf(ev.producer, sizeof(ev.producer), "%.*s", (int)strcspn(type, "."), type);
    ev.sequence = seq;
    ev.time_ms = (int64_t)time(NULL) * 1000;
    ev.payload = payload;
    ev.payload_len = len;
    if (saga_event_encode(&ev, out, out_len) != SAGA_OK)
        return -1;
    saga_event_subject(type, order, subject, scap);
    if (id_out != NULL)
        memcpy(id_out, ev.event_id, SAGA_ID_LEN + 1);
    return 0;
}

int tjs_publish_payload(tjs *t, const char *type, const char *order, const char *producer,
                        const void *payload, size_t len, char id_out[SAGA_ID_LEN + 1])
{
    static uint64_t seq; /* tests publish from one thread */
    uint8_t *buf = NULL;
    size_t blen = 0;
    char subject[256], id[SAGA_ID_LEN + 1];
    if (tjs_encode_event(type, order, producer, payload, len, ++seq, &buf, &blen, subject,
                         sizeof(subject), id) != 0)
        return -1;
    int rc = tjs_publish_raw(t, subject, buf, blen, id);
    free(buf);
    if (rc == 0 && id_out != NULL)
        memcpy(id_out, id, SAGA_ID_LEN + 1);
    return rc;
}

/* Copies header name of m into dst ("" when absent). */
static void header(natsMsg *m, const char *name, char *dst, size_t cap)
{
    const char *h = NULL;
    if (natsMsgHeader_Get(m, name, &h) != NATS_OK || h == NULL)
        h = "";
    snprintf(dst, cap, "%s", h);
}

int tjs_collect(tjs *t, const char *stream, const char *filter, tjs_msg **out, size_t *n)
{
    natsSubscription *sub = NULL;
    jsSubOptions so;
    tjs_msg *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc = -1;

    jsSubOptions_Init(&so);
    so.Stream = stream;
    so.Ordered = true; /* an ephemeral, flow-controlled reader of the whole history */
    so.Config.DeliverPolicy = js_DeliverAll;
    if (js_SubscribeSync(&sub, t->js, filter, NULL, &so, NULL) != NATS_OK)
        goto out;
    for (;;) {
        natsMsg *m = NULL;
        natsStatus s = natsSubscription_NextMsg(&m, sub, 2000);
        if (s == NATS_TIMEOUT)
            break; /* nothing matched at all, or the last one was missed */
        if (s != NATS_OK)
            goto out;
        if (cnt == cap) {
            cap = cap ? cap * 2 : 64;
            tjs_msg *nv = realloc(v, cap * sizeof(*nv));
            if (nv == NULL) {
                natsMsg_Destroy(m);
                goto out;
            }
            v = nv;
        }
        tjs_msg *x = &v[cnt++];
        memset(x, 0, sizeof(*x));
        snprintf(x->subject, sizeof(x->subject), "%s", natsMsg_GetSubject(m));
        header(m, SAGA_HDR_REASON, x->reason, sizeof(x->reason));
        header(m, SAGA_HDR_CAUSE, x->cause, sizeof(x->cause));
        header(m, SAGA_HDR_TRUNCATED, x->truncated, sizeof(x->truncated));
        header(m, SAGA_HDR_TRACEPARENT, x->traceparent, sizeof(x->traceparent));
        x->len = (size_t)natsMsg_GetDataLength(m);
        void *owner = NULL;
        if (saga_event_decode((const uint8_t *)natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m),
                              &x->ev, &owner, NULL, 0) == SAGA_OK) {
            x->decoded = 1;
            size_t pl = x->ev.payload_len < sizeof(x->payload) - 1 ? x->ev.payload_len
                                                                   : sizeof(x->payload) - 1;
            if (pl > 0)
                memcpy(x->payload, x->ev.payload, pl);
            x->ev.payload = NULL;
            free(owner);
        }
        jsMsgMetaData *meta = NULL;
        uint64_t pending = 1;
        if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
            pending = meta->NumPending;
            x->seq = meta->Sequence.Stream;
            jsMsgMetaData_Destroy(meta);
        }
        natsMsg_Destroy(m);
        if (pending == 0)
            break;
    }
    rc = 0;
out:
    if (sub != NULL) {
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
    }
    if (rc != 0) {
        free(v);
        return -1;
    }
    *out = v;
    *n = cnt;
    return 0;
}

long long tjs_stat(tjs *t, const char *service, const char *field)
{
    natsMsg *reply = NULL;
    char subject[128], key[64];
    long long v = -1;
    snprintf(subject, sizeof(subject), "saga.ctl.%s.stats", service);
    if (natsConnection_RequestString(&reply, t->nc, subject, "", 1000) != NATS_OK)
        return -1;
    snprintf(key, sizeof(key), "\"%s\":", field);
    const char *p = strstr(natsMsg_GetData(reply), key);
    if (p != NULL)
        v = strtoll(p + strlen(key), NULL, 10);
    natsMsg_Destroy(reply);
    return v;
}

int tjs_consumers_idle(tjs *t, const char *stream)
{
    jsConsumerInfoList *list = NULL;
    jsConsumerNamesList *names = NULL;
    int idle = 1;
    if (js_Consumers(&list, t->js, stream, NULL, NULL) != NATS_OK)
        return 0;
    /* On a cluster the list leaves out a consumer whose leader did not answer in time
     * (one being elected): it may be far from idle, so a short list is not idle. */
    if (js_ConsumerNames(&names, t->js, stream, NULL, NULL) != NATS_OK ||
        names->Count != list->Count)
        idle = 0;
    for (int i = 0; i < list->Count && idle; i++)
        idle = list->List[i]->NumPending == 0 && list->List[i]->NumAckPending == 0;
    jsConsumerNamesList_Destroy(names);
    jsConsumerInfoList_Destroy(list);
    return idle;
}

int tjs_collect_events(tjs *t, const char *type, const char *order, tjs_msg **out, size_t *n)
{
    char filter[256];
    size_t kept = 0;
    if (order != NULL && type != NULL)
        snprintf(filter, sizeof(filter), "%s", tjs_subject(type, order));
    else if (order != NULL)
        snprintf(filter, sizeof(filter), SAGA_SUBJ_PARTITION_FMT, saga_partition_of(order));
    else if (type != NULL)
        snprintf(filter, sizeof(filter), SAGA_SUBJ_EVENTS_OF_FMT, type);
    else
        snprintf(filter, sizeof(filter), "%s", SAGA_SUBJ_EVENTS_ALL);
    if (tjs_collect(t, SAGA_STREAM_EVENTS, filter, out, n) != 0)
        return -1;
    for (size_t i = 0; i < *n; i++)
        if (order == NULL || ((*out)[i].decoded && strcmp((*out)[i].ev.order_id, order) == 0))
            (*out)[kept++] = (*out)[i];
    *n = kept;
    return 0;
}

const char *tjs_subject(const char *type, const char *order)
{
    static char subject[256];
    if (saga_event_subject(type, order, subject, sizeof(subject)) != SAGA_OK)
        snprintf(subject, sizeof(subject), "evt.invalid");
    return subject;
}
