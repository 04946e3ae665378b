/* ceiling.c - saga-ceiling: one participant of the order saga run with the
 * runtime's transport mechanics and nothing else, to measure what the broker
 * and the message pattern allow on this machine.
 *
 * Same as the runtime (runtime/src/transport.c, loop.c): the same streams
 * and durable push consumers (names, filters, explicit ack, MaxAckPending),
 * bound by name; cnats callbacks only queue; one thread takes up to --batch-max
 * queued messages, decodes each envelope, runs the handler, publishes what
 * the batch emitted asynchronously with Nats-Msg-Id, pushes the writes out,
 * waits for every publish ack, then acknowledges the batch and sends command
 * replies (written by cnats's flusher within 1 ms, as the runtime's).
 * Different: handlers do no business work and there is no LMDB (no inbox,
 * no outbox, no commit, no fsync). */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "ceiling.h"
#include "fleet.h"
#include "opts.h"
#include "saga/service.h"

#define NS_PER_MS 1000000LL
#define EVENTS_MAX_AGE_NS (SAGA_DEFAULT_EVENTS_MAX_AGE_MS * NS_PER_MS) /* as transport.c */
#define DLQ_MAX_AGE_NS (30LL * 24 * 3600 * 1000 * NS_PER_MS)
#define JS_ERR_STREAM_NAME_IN_USE 10058
#define IDLE_WAIT_MS 200
#define DEADLINE_DEFAULT_MS 30000 /* the order service's default */
#define SETUP_RETRY_MS 30000
#define SETUP_RETRY_SLEEP_MS 250
#define NAME_MAX_LEN 96
#define CLOSE_WAIT_MS 5000 /* at exit, for cnats' threads to end */

typedef struct route {
    struct part *p;
    int sub; /* index into role->subs, or -1 */
    int cmd; /* index into role->cmds, or -1 */
} route;

typedef struct inmsg {
    natsMsg *msg;
    const route *r;
} inmsg;

/* Hand-off from cnats threads to the participant's thread, as runtime/src/queue.c. */
typedef struct queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    inmsg *v;
    size_t n, cap;
} queue;

typedef struct part {
    bench_ceil c;
    long long batch_max, max_ack_pending, replicas;
    const char *url;
    natsConnection *nc;
    jsCtx *js;
    natsSubscription *subs[BENCH_CEIL_SUBS_MAX], *cmds[BENCH_CEIL_CMDS_MAX], *ctl;
    route sroutes[BENCH_CEIL_SUBS_MAX], croutes[BENCH_CEIL_CMDS_MAX];
    queue q;
    atomic_long pub_ok, pub_err;
    atomic_ullong received, published, batches;
} part;

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* ---- the queue --------------------------------------------------------- */

static int queue_init(queue *q)
{
    pthread_condattr_t ca;
    memset(q, 0, sizeof(*q));
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_mutex_init(&q->mu, NULL) || pthread_cond_init(&q->cv, &ca) ? -1 : 0;
    pthread_condattr_destroy(&ca);
    return rc;
}

static int queue_push(queue *q, inmsg m)
{
    int rv = 0;
    pthread_mutex_lock(&q->mu);
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 1024;
        inmsg *v = realloc(q->v, cap * sizeof(*v));
        if (v == NULL) {
            rv = -1;
            goto out;
        }
        q->v = v;
        q->cap = cap;
    }
    q->v[q->n++] = m;
    pthread_cond_signal(&q->cv);
out:
    pthread_mutex_unlock(&q->mu);
    return rv;
}

static size_t queue_take(queue *q, inmsg *out, size_t max, int64_t wait_ms)
{
    pthread_mutex_lock(&q->mu);
    if (q->n == 0 && wait_ms > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += (wait_ms % 1000) * NS_PER_MS;
        ts.tv_sec += wait_ms / 1000 + ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        while (q->n == 0 && pthread_cond_timedwait(&q->cv, &q->mu, &ts) != ETIMEDOUT) {
        }
    }
    size_t k = q->n < max ? q->n : max;
    if (k > 0) {
        memcpy(out, q->v, k * sizeof(*out));
        memmove(q->v, q->v + k, (q->n - k) * sizeof(*out));
        q->n -= k;
    }
    pthread_mutex_unlock(&q->mu);
    return k;
}

static void queue_cleanup(queue *q)
{
    for (size_t i = 0; i < q->n; i++)
        natsMsg_Destroy(q->v[i].msg);
    free(q->v);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
}

/* ---- emitting ---------------------------------------------------------- */

/* A new W3C traceparent, as runtime/src/ctx.c starts one for a new saga. */
int bench_ceil_emit(bench_ceil *c, const char *type, const char *order_id,
                    const ProtobufCMessage *msg)
{
    saga_event ev;
    saga_traceparent tc;
    struct timespec ts;
    uint8_t *payload;
    int rc = -1;
    size_t plen = protobuf_c_message_get_packed_size(msg);

    if (c->nout == c->capout) {
        size_t cap = c->capout ? c->capout * 2 : 256;
        bench_ceil_out *v = realloc(c->out, cap * sizeof(*v));
        if (v == NULL)
            return -1;
        c->out = v;
        c->capout = cap;
    }
    payload = malloc(plen ? plen : 1);
    if (payload == NULL)
        return -1;
    protobuf_c_message_pack(msg, payload);
    memset(&ev, 0, sizeof(ev));
    saga_ulid_new(ev.event_id);
    snprintf(ev.type, sizeof(ev.type), "%s", type);
    ev.schema_version = 1;
    snprintf(ev.order_id, sizeof(ev.order_id), "%s", order_id);
    snprintf(ev.producer, sizeof(ev.producer), "%s", c->role->name);
    ev.sequence = ++c->sequence;
    clock_gettime(CLOCK_REALTIME, &ts);
    ev.time_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / NS_PER_MS;
    if (c->cause != NULL)
        memcpy(ev.causation_id, c->cause->event_id, sizeof(ev.causation_id));
    saga_traceparent_continue(&tc, c->cause != NULL ? c->cause->trace : NULL, &c->span_rng);
    saga_traceparent_child(&tc, &c->span_rng, ev.trace, sizeof(ev.trace));
    ev.payload = payload;
    ev.payload_len = plen;
    bench_ceil_out *o = &c->out[c->nout];
    if (saga_event_encode(&ev, &o->data, &o->len) != SAGA_OK)
        goto out;
    if (saga_event_subject(type, order_id, o->subject, sizeof(o->subject)) != SAGA_OK) {
        free(o->data);
        goto out;
    }
    memcpy(o->msg_id, ev.event_id, sizeof(o->msg_id));
    memcpy(o->order_id, ev.order_id, sizeof(o->order_id));
    memcpy(o->trace, ev.trace, sizeof(o->trace));
    c->nout++;
    rc = 0;
out:
    free(payload);
    return rc;
}

static void clear_out(bench_ceil *c)
{
    for (size_t i = 0; i < c->nout; i++)
        free(c->out[i].data);
    c->nout = 0;
}

/* ---- NATS -------------------------------------------------------------- */

static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    part *p = closure;
    (void)nc;
    (void)sub;
    fprintf(stderr, "saga-ceiling: role=%s nats_async_error=\"%s\"\n", p->c.role->name,
            natsStatus_GetText(err));
}

static void on_pub_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    part *p = closure;
    (void)js;
    (void)pae;
    atomic_fetch_add(pa != NULL ? &p->pub_ok : &p->pub_err, 1);
    natsMsg_Destroy(msg);
}

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    const route *r = closure;
    (void)nc;
    (void)sub;
    if (queue_push(&r->p->q, (inmsg){msg, r}) != 0)
        natsMsg_Destroy(msg);
}

/* Answers saga.ctl.<role>.stats like a service, so saga-bench waits for both alike. */
static void on_ctl(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    part *p = closure;
    (void)sub;
    /* received doubles as processed: a no-op participant processes all it takes. */
    json_t *o =
        natsMsg_GetReply(msg) == NULL
            ? NULL
            : json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "service", p->c.role->name, "pid",
                        (json_int_t)getpid(), "received", (json_int_t)atomic_load(&p->received),
                        "processed", (json_int_t)atomic_load(&p->received), "published",
                        (json_int_t)atomic_load(&p->published), "commits", (json_int_t)0, "batches",
                        (json_int_t)atomic_load(&p->batches));
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (text != NULL)
        natsConnection_PublishString(nc, natsMsg_GetReply(msg), text);
    free(text);
    json_decref(o);
    natsMsg_Destroy(msg);
}

static natsStatus connect(part *p)
{
    natsOptions *o = NULL;
    jsOptions jo;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = fleet_set_servers(o, p->url);
    if (s == NATS_OK) /* its identity, when the fleet that started it authenticates */
        s = fleet_client_env(o, NULL, NULL, NULL, 0);
    if (s == NATS_OK)
        s = natsOptions_SetName(o, p->c.role->name);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(o, 100);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(o, on_error, p);
    if (s == NATS_OK)
        s = natsConnection_Connect(&p->nc, o);
    natsOptions_Destroy(o);
    if (s != NATS_OK)
        return s;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = 65536;
    jo.PublishAsync.AckHandler = on_pub_ack;
    jo.PublishAsync.AckHandlerClosure = p;
    return natsConnection_JetStream(&p->js, p->nc, &jo);
}

static natsStatus ensure_stream(part *p, const char *name, const char *subject, int64_t max_age)
{
    jsStreamConfig sc;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    const char *subjects[] = {subject};
    jsStreamConfig_Init(&sc);
    sc.Name = name;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.MaxAge = max_age;
    sc.Duplicates = SAGA_DEFAULT_DUP_WINDOW_MS * NS_PER_MS;
    sc.Replicas = (int)p->replicas; /* as transport.c: a cluster's copies */
    natsStatus s = js_AddStream(&si, p->js, &sc, NULL, &jerr);
    jsStreamInfo_Destroy(si);
    si = NULL;
    if (s == NATS_OK || jerr == JS_ERR_STREAM_NAME_IN_USE)
        return NATS_OK;
    /* Racing roles may get "subjects overlap" instead, as in transport.c. */
    if (js_GetStreamInfo(&si, p->js, name, NULL, NULL) == NATS_OK) {
        jsStreamInfo_Destroy(si);
        return NATS_OK;
    }
    return s;
}

/* The role's durable consumers: one per subscription. */
static int nsubs(const part *p)
{
    int n = 0;
    while (n < BENCH_CEIL_SUBS_MAX && p->c.role->subs[n].pattern)
        n++;
    return n;
}

/* The consumer of pattern exactly as the runtime names it for the only
 * instance (saga_consumer_name) and transport.c configures it. */
static natsStatus subscribe_event(part *p, int i)
{
    const char *pattern = p->c.role->subs[i].pattern;
    char consumer[NAME_MAX_LEN], deliver[NAME_MAX_LEN + 16], subject[NAME_MAX_LEN];
    jsConsumerConfig cc;
    jsConsumerInfo *ci = NULL;
    jsSubOptions so;
    jsErrCode jerr = 0;

    if (saga_durable_name(consumer, sizeof(consumer), p->c.role->name, pattern) != SAGA_OK)
        return NATS_INVALID_ARG;
    snprintf(deliver, sizeof(deliver), SAGA_SUBJ_DELIVER_FMT, consumer);
    snprintf(subject, sizeof(subject), SAGA_SUBJ_EVENTS_OF_FMT, pattern);
    jsConsumerConfig_Init(&cc);
    cc.Durable = consumer;
    cc.DeliverSubject = deliver;
    cc.DeliverPolicy = js_DeliverAll;
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = SAGA_DEFAULT_ACK_WAIT_MS * NS_PER_MS;
    cc.MaxDeliver = -1;
    cc.MaxAckPending = saga_ack_pending_share((int)p->max_ack_pending, nsubs(p));
    cc.FilterSubject = subject;
    natsStatus s = js_AddConsumer(&ci, p->js, SAGA_DEFAULT_STREAM, &cc, NULL, &jerr);
    if (s != NATS_OK)
        s = js_UpdateConsumer(&ci, p->js, SAGA_DEFAULT_STREAM, &cc, NULL, &jerr);
    jsConsumerInfo_Destroy(ci);
    if (s != NATS_OK)
        return s;
    jsSubOptions_Init(&so);
    so.Stream = SAGA_DEFAULT_STREAM;
    so.Consumer = consumer;
    so.ManualAck = true;
    p->sroutes[i] = (route){p, i, -1};
    return js_Subscribe(&p->subs[i], p->js, subject, on_msg, &p->sroutes[i], NULL, &so, &jerr);
}

static natsStatus ensure_streams(part *p, int unused)
{
    (void)unused;
    natsStatus s = ensure_stream(p, SAGA_DEFAULT_STREAM, SAGA_SUBJ_EVENTS_ALL, EVENTS_MAX_AGE_NS);
    return s == NATS_OK ? ensure_stream(p, SAGA_DEFAULT_DLQ_STREAM, "dlq.>", DLQ_MAX_AGE_NS) : s;
}

/* step(p, arg), again until it succeeds or SETUP_RETRY_MS have passed: on a fresh
 * cluster a request times out or is refused while a stream's or consumer's leader is
 * elected, and a consumer whose creation timed out is reported bound for a few
 * seconds; the runtime waits these out too (transport.c). */
static natsStatus retried(part *p, natsStatus (*step)(part *, int), int arg)
{
    int64_t deadline = fleet_now_ms() + SETUP_RETRY_MS;
    natsStatus s;
    while ((s = step(p, arg)) != NATS_OK && fleet_now_ms() < deadline && !stop_flag)
        nats_Sleep(SETUP_RETRY_SLEEP_MS);
    return s;
}

static natsStatus start(part *p)
{
    natsStatus s = connect(p);
    char ctl[NAME_MAX_LEN];
    if (s == NATS_OK)
        s = retried(p, ensure_streams, 0);
    for (int i = 0; s == NATS_OK && i < BENCH_CEIL_SUBS_MAX && p->c.role->subs[i].pattern; i++)
        s = retried(p, subscribe_event, i);
    for (int i = 0; s == NATS_OK && i < BENCH_CEIL_CMDS_MAX && p->c.role->cmds[i].subject; i++) {
        p->croutes[i] = (route){p, -1, i};
        s = natsConnection_QueueSubscribe(&p->cmds[i], p->nc, p->c.role->cmds[i].subject,
                                          p->c.role->name, on_msg, &p->croutes[i]);
    }
    snprintf(ctl, sizeof(ctl), "saga.ctl.%s.stats", p->c.role->name);
    if (s == NATS_OK)
        s = natsConnection_Subscribe(&p->ctl, p->nc, ctl, on_ctl, p);
    if (s == NATS_OK)
        s = natsConnection_FlushTimeout(p->nc, 5000);
    return s;
}

/* ---- the loop ---------------------------------------------------------- */

/* Publishes the batch's events and waits for every ack; retries the lot on
 * failure, as runtime/src/transport.c does. Returns 0, or -1 when stopping. */
static int publish_all(part *p)
{
    int64_t backoff = 50;
    for (;;) {
        natsStatus s = NATS_OK;
        atomic_store(&p->pub_ok, 0);
        atomic_store(&p->pub_err, 0);
        for (size_t i = 0; i < p->c.nout && s == NATS_OK; i++) {
            bench_ceil_out *o = &p->c.out[i];
            natsMsg *m = NULL;
            jsPubOptions po;
            s = natsMsg_Create(&m, o->subject, NULL, (const char *)o->data, (int)o->len);
            if (s == NATS_OK)
                s = natsMsgHeader_Set(m, SAGA_HDR_ORDER_ID, o->order_id);
            if (s == NATS_OK)
                s = natsMsgHeader_Set(m, SAGA_HDR_TRACEPARENT, o->trace);
            if (s == NATS_OK) {
                jsPubOptions_Init(&po);
                po.MsgId = o->msg_id;
                s = js_PublishMsgAsync(p->js, &m, &po);
            }
            natsMsg_Destroy(m);
        }
        if (s == NATS_OK) {
            jsPubOptions po;
            jsPubOptions_Init(&po);
            po.MaxWait = SAGA_DEFAULT_PUBLISH_WAIT_MS;
            /* As the runtime: writes coalesced, the events pushed out at once. */
            (void)natsConnection_FlushTimeout(p->nc, 2000);
            s = js_PublishAsyncComplete(p->js, &po);
        }
        if (s == NATS_OK && atomic_load(&p->pub_err) == 0 &&
            (size_t)atomic_load(&p->pub_ok) == p->c.nout) {
            atomic_fetch_add(&p->published, p->c.nout);
            return 0;
        }
        natsMsgList pending = {0};
        if (js_PublishAsyncGetPendingList(&pending, p->js) == NATS_OK)
            natsMsgList_Destroy(&pending);
        fprintf(stderr, "saga-ceiling: role=%s event=publish_retry error=\"%s\"\n", p->c.role->name,
                natsStatus_GetText(s));
        if (stop_flag)
            return -1;
        struct timespec ts = {backoff / 1000, (backoff % 1000) * NS_PER_MS};
        nanosleep(&ts, NULL);
        if (backoff < 2000)
            backoff *= 2;
    }
}

static void process(part *p, inmsg *in, size_t n, uint8_t **replies, size_t *rlens)
{
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++) {
        natsMsg *m = in[i].msg;
        const uint8_t *data = (const uint8_t *)natsMsg_GetData(m);
        size_t len = (size_t)natsMsg_GetDataLength(m);
        if (in[i].r->cmd >= 0) {
            ok = p->c.role->cmds[in[i].r->cmd].fn(&p->c, data, len, &replies[i], &rlens[i]) == 0;
            continue;
        }
        saga_event ev;
        void *owner = NULL;
        char err[128];
        atomic_fetch_add(&p->received, 1);
        if (saga_event_decode(data, len, &ev, &owner, err, sizeof(err)) != SAGA_OK)
            continue; /* the runtime dead-letters it; nothing of the saga follows */
        p->c.cause = &ev;
        ok = p->c.role->subs[in[i].r->sub].fn(&p->c, &ev) == 0;
        p->c.cause = NULL;
        free(owner);
    }
    if (ok)
        ok = publish_all(p) == 0;
    for (size_t i = 0; i < n; i++) {
        natsMsg *m = in[i].msg;
        if (ok && in[i].r->cmd < 0)
            natsMsg_Ack(m, NULL);
        else if (ok && replies[i] != NULL && natsMsg_GetReply(m) != NULL)
            natsConnection_Publish(p->nc, natsMsg_GetReply(m), replies[i], (int)rlens[i]);
        free(replies[i]);
        replies[i] = NULL;
        natsMsg_Destroy(m);
    }
    clear_out(&p->c);
    atomic_fetch_add(&p->batches, 1);
}

static void run(part *p)
{
    size_t cap = (size_t)p->batch_max;
    inmsg *in = calloc(cap, sizeof(*in));
    uint8_t **replies = calloc(cap, sizeof(*replies));
    size_t *rlens = calloc(cap, sizeof(*rlens));
    if (in == NULL || replies == NULL || rlens == NULL) {
        fprintf(stderr, "saga-ceiling: out of memory\n");
        stop_flag = 1;
    }
    while (!stop_flag) {
        size_t n = queue_take(&p->q, in, cap, IDLE_WAIT_MS);
        if (n > 0)
            process(p, in, n, replies, rlens);
    }
    /* Stop taking messages; what is still queued goes back to the broker. */
    for (int i = 0; i < BENCH_CEIL_SUBS_MAX; i++)
        if (p->subs[i] != NULL)
            natsSubscription_Unsubscribe(p->subs[i]);
    for (int i = 0; i < BENCH_CEIL_CMDS_MAX; i++)
        if (p->cmds[i] != NULL)
            natsSubscription_Unsubscribe(p->cmds[i]);
    natsConnection_FlushTimeout(p->nc, 2000);
    for (size_t n; in != NULL && (n = queue_take(&p->q, in, cap, 0)) > 0;) {
        for (size_t i = 0; i < n; i++) {
            if (in[i].r->cmd < 0)
                natsMsg_Nak(in[i].msg, NULL);
            natsMsg_Destroy(in[i].msg);
        }
    }
    free(in);
    free(replies);
    free(rlens);
}

static void shutdown_part(part *p)
{
    if (p->nc != NULL) {
        natsConnection_FlushTimeout(p->nc, 2000);
        natsConnection_Close(p->nc);
    }
    /* Subscriptions go only after the connection is closed (cnats #637). */
    for (int i = 0; i < BENCH_CEIL_SUBS_MAX; i++)
        natsSubscription_Destroy(p->subs[i]);
    for (int i = 0; i < BENCH_CEIL_CMDS_MAX; i++)
        natsSubscription_Destroy(p->cmds[i]);
    natsSubscription_Destroy(p->ctl);
    jsCtx_Destroy(p->js);
    natsConnection_Destroy(p->nc);
}

int main(int argc, char **argv)
{
    static part p;
    const char *role_name = NULL, *env_url = getenv("SAGA_NATS_URL"),
               *dl = getenv("ORDER_DEADLINE_MS"), *env_replicas = getenv("SAGA_REPLICAS");
    char err[256];
    long long replicas = env_replicas != NULL ? strtoll(env_replicas, NULL, 10) : 1;
    const bench_opt opts[] = {
        {"role", BENCH_OPT_STR, 0, 0, 0, NULL, &role_name, "NAME",
         "participant to play: order, payment, inventory, shipping or notification"},
        {"url", BENCH_OPT_STR, 0, 0, 0, env_url ? env_url : SAGA_DEFAULT_NATS_URL, &p.url, "URL",
         "NATS server (also SAGA_NATS_URL)"},
        {"batch-max", BENCH_OPT_INT, SAGA_DEFAULT_BATCH_MAX, 1, 65536, NULL, &p.batch_max, "N",
         "messages gathered per batch, as the runtime's SAGA_BATCH_MAX"},
        {"max-ack-pending", BENCH_OPT_INT, SAGA_DEFAULT_MAX_ACK_PENDING, 1, 1 << 20, NULL,
         &p.max_ack_pending, "N",
         "unacknowledged deliveries over all its durable consumers, each an equal share, as the "
         "runtime's SAGA_MAX_ACK_PENDING"},
        {"replicas", BENCH_OPT_INT, replicas, 1, 5, NULL, &p.replicas, "N",
         "copies of the streams it creates, as the runtime's (also SAGA_REPLICAS)"},
        {0}};
    int rc = bench_opts_parse(opts, argc, argv, err, sizeof(err));
    if (rc == BENCH_OPTS_OK && (p.replicas < 1 || p.replicas > 5)) {
        snprintf(err, sizeof(err), "SAGA_REPLICAS must be 1 to 5");
        rc = BENCH_OPTS_ERROR;
    }
    if (rc == BENCH_OPTS_HELP) {
        bench_opts_help(stdout, opts, "saga-ceiling --role NAME [OPTIONS]",
                        "Plays one participant of the order saga's happy path with no-op handlers\n"
                        "and no LMDB, through the runtime's streams, consumers, batching and\n"
                        "publish-ack discipline: the ceiling saga-bench compares the runtime to.\n"
                        "Runs until SIGTERM or SIGINT. Environment: SAGA_NATS_URL,\n"
                        "SAGA_REPLICAS, ORDER_DEADLINE_MS (order role).");
        return 0;
    }
    for (size_t i = 0; rc == BENCH_OPTS_OK && role_name != NULL && i < bench_ceil_nroles; i++)
        if (strcmp(bench_ceil_roles[i].name, role_name) == 0)
            p.c.role = &bench_ceil_roles[i];
    if (rc == BENCH_OPTS_OK && p.c.role == NULL)
        snprintf(err, sizeof(err), "--role must name one of the five participants");
    if (rc != BENCH_OPTS_OK || p.c.role == NULL) {
        fprintf(stderr, "saga-ceiling: %s (see --help)\n", err);
        return 2;
    }
    p.c.deadline_ms = DEADLINE_DEFAULT_MS;
    if (getrandom(&p.c.span_rng, sizeof(p.c.span_rng), 0) != (ssize_t)sizeof(p.c.span_rng))
        p.c.span_rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    if (dl != NULL) {
        char *end = NULL;
        long long v = strtoll(dl, &end, 10);
        if (end != dl && *end == '\0' && v > 0)
            p.c.deadline_ms = v;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    if (queue_init(&p.q) != 0 || bench_map_init(&p.c.orders) != 0) {
        fprintf(stderr, "saga-ceiling: out of memory\n");
        return 1;
    }
    natsStatus s = start(&p);
    if (s != NATS_OK) {
        fprintf(stderr, "saga-ceiling: role=%s start failed: %s (%s)\n", p.c.role->name,
                natsStatus_GetText(s), nats_GetLastError(NULL) ? nats_GetLastError(NULL) : "");
        rc = 1;
    } else {
        /* As a service's consumer loop logs it: the launcher waits for this line. */
        fprintf(stderr, "saga-ceiling: role=%s event=ready\n", p.c.role->name);
        run(&p);
        rc = 0;
    }
    shutdown_part(&p);
    queue_cleanup(&p.q);
    clear_out(&p.c);
    free(p.c.out);
    bench_map_cleanup(&p.c.orders, bench_ceil_free_state);
    nats_CloseAndWait(CLOSE_WAIT_MS);
    return rc;
}
