/* transport.c - NATS connection, JetStream streams and consumers, outbox publishing.
 *
 * Consumers are durable push consumers with explicit acks, bound by name:
 * the packaged cnats 3.4.1 has fetch bugs (see docs/ARCHITECTURE.md), and a
 * push consumer lets one thread gather batches from several consumers. The
 * server's MaxAckPending is the flow control.
 *
 * Writes are coalesced: without SendAsap, cnats buffers what the service
 * thread sends (acks, replies, publishes) and its flusher thread writes it
 * within 1 ms, one send(2) for a whole batch instead of one per message
 * (per-message sends cost the services and the broker ~10 % of the
 * throughput). A batch's events are the saga's critical path, so they are
 * pushed out at once (saga__transport_send_now) before waiting for their
 * publish acks; acks and replies wait for the flusher. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "saga/client.h"
#include "service_internal.h"

#define NS_PER_MS 1000000LL
#define DLQ_MAX_AGE_NS (30LL * 24 * 3600 * 1000 * NS_PER_MS)
#define JS_ERR_STREAM_NAME_IN_USE 10058
#define JS_ERR_NOT_ENABLED 10076           /* cnats: "no responders" to a JetStream request */
#define CHECK_WAIT_MS 2000                 /* bound on one health-check request */
#define SEND_NOW_WAIT_MS 2000              /* bound on saga__transport_send_now's round trip */
#define BOUND_RETRY_MS 30000               /* a consumer reported bound after a cluster election */
#define JS_ERR_CLUSTER_NOT_AVAILABLE 10008 /* JetStream cluster not available (no leader) */
#define JS_ERR_NO_PEERS 10005              /* no suitable peers for placement (yet) */
#define NO_PEERS_WAIT_MS 30000             /* how long a cluster may take to place copies */
/* Kept free below the broker's max payload: what a client library or a
 * later header may add to a message beyond what saga__outmsg_wire_size counts. */
#define PAYLOAD_MARGIN 512
#define DEFAULT_MAX_PAYLOAD (1024 * 1024) /* nats-server's default, before connecting */

static saga_status nats_fail(saga_service *svc, natsStatus s, const char *what)
{
    return saga__fail(svc, SAGA_ENATS, "%s: nats %d: %s (%s)", what, (int)s, natsStatus_GetText(s),
                      nats_GetLastError(NULL) ? nats_GetLastError(NULL) : "");
}

/* A broker that restarts, or has no JetStream yet, while a service sets up
 * its streams and consumers answers with a timeout or "no responders"
 * (jerr: the JetStream error, 0 if none): such steps are retried until they
 * succeed or the service is stopped (the connection itself reconnects
 * forever). A cluster that cannot place the copies asked for is waited for
 * NO_PEERS_WAIT_MS: it may be a node not yet reported in, or more copies
 * than nodes. Any other JetStream error is final. Returns 1 to retry. */
typedef struct setup_wait {
    int64_t next_log;       /* when to say again that the step waits */
    int64_t no_peers_since; /* when "no suitable peers" was first answered, 0 if not */
} setup_wait;

static int setup_retry(saga_service *svc, natsStatus s, jsErrCode jerr, const char *what,
                       setup_wait *w)
{
    /* A cluster electing its leaders answers "not available" for a few seconds; one
     * whose leader is elected before every node has reported in refuses to place
     * replicas ("no suitable peers"); a broker reloading its configuration (a new
     * identity, SIGHUP) answers "JetStream not enabled for account" for a moment. */
    int waiting = jerr == JS_ERR_CLUSTER_NOT_AVAILABLE || jerr == JSNotEnabledForAccountErr;
    if (jerr == JS_ERR_NO_PEERS) {
        int64_t now = saga__now_ms();
        if (w->no_peers_since == 0)
            w->no_peers_since = now;
        waiting = now - w->no_peers_since < NO_PEERS_WAIT_MS;
    } else {
        w->no_peers_since = 0; /* 30 s of it in a row, not in all */
    }
    if (waiting)
        s = NATS_TIMEOUT;
    if (jerr != 0 && jerr != JS_ERR_NOT_ENABLED && !waiting)
        return 0;
    if (s != NATS_TIMEOUT && s != NATS_NO_RESPONDERS && s != NATS_CONNECTION_DISCONNECTED &&
        s != NATS_NOT_YET_CONNECTED && s != NATS_IO_ERROR)
        return 0;
    if (atomic_load(&svc->stop))
        return 0;
    if (saga__now_ms() >= w->next_log) {
        SAGA__LOG(&svc->log, SAGA_LOG_WARN,
                  "event=nats_setup_retry step=\"%s\" error=\"%s\" jetstream_error=%d", what,
                  natsStatus_GetText(s), (int)jerr);
        w->next_log = saga__now_ms() + 5000;
    }
    struct timespec ts = {0, 250 * 1000000L};
    nanosleep(&ts, NULL);
    return 1;
}

static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    saga_service *svc = closure;
    (void)nc;
    (void)sub;
    /* Slow consumers and missed heartbeats are retryable: JetStream redelivers. */
    SAGA__LOG(&svc->log, SAGA_LOG_WARN, "event=nats_async_error code=%d text=\"%s\"", (int)err,
              natsStatus_GetText(err));
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    saga_service *svc = closure;
    (void)nc;
    SAGA__LOG(&svc->log, SAGA_LOG_WARN, "event=nats_disconnected");
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    saga_service *svc = closure;
    (void)nc;
    SAGA__LOG(&svc->log, SAGA_LOG_INFO, "event=nats_reconnected");
}

/* The last callback cnats makes for a connection: after it, none of ours
 * runs again, so the service may be freed. */
static void on_closed(natsConnection *nc, void *closure)
{
    saga_service *svc = closure;
    (void)nc;
    pthread_mutex_lock(&svc->tp.err_mu);
    svc->tp.closed = 1;
    pthread_cond_signal(&svc->tp.closed_cv);
    pthread_mutex_unlock(&svc->tp.err_mu);
}

/* Remembers that msg was acknowledged, so that a retry of its batch leaves it out. */
static void note_acked(saga_service *svc, natsMsg *msg)
{
    const char *id = NULL;
    if (natsMsgHeader_Get(msg, SAGA_HDR_MSG_ID, &id) != NATS_OK || id == NULL)
        return;
    size_t n = strlen(id) + 1;
    pthread_mutex_lock(&svc->tp.err_mu);
    if (svc->tp.acked_len + n > svc->tp.acked_cap) {
        size_t cap = svc->tp.acked_cap > 0 ? svc->tp.acked_cap * 2 : 8192;
        char *p = cap >= svc->tp.acked_len + n ? realloc(svc->tp.acked, cap) : NULL;
        if (p == NULL) {
            svc->tp.acked_lost = 1; /* the retry then sends everything again */
            goto out;
        }
        svc->tp.acked = p;
        svc->tp.acked_cap = cap;
    }
    memcpy(svc->tp.acked + svc->tp.acked_len, id, n);
    svc->tp.acked_len += n;
out:
    pthread_mutex_unlock(&svc->tp.err_mu);
}

/* Runs on a cnats thread for every publish ack: counts, and remembers which
 * messages the broker refuses for good and whether a stream was missing. */
static void on_pub_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    saga_service *svc = closure;
    (void)js;
    if (pa != NULL) {
        atomic_fetch_add(&svc->tp.pub_ok, 1);
        note_acked(svc, msg);
    } else {
        atomic_fetch_add(&svc->tp.pub_err, 1);
        pthread_mutex_lock(&svc->tp.err_mu);
        snprintf(svc->tp.pub_errtext, sizeof(svc->tp.pub_errtext), "%s",
                 pae && pae->ErrText ? pae->ErrText : "publish failed");
        const char *id = NULL;
        /* Only the size limit is final: no retry makes a message smaller. */
        if (pae != NULL && pae->ErrCode == JSStreamMessageExceedsMaximumErr &&
            natsMsgHeader_Get(msg, SAGA_HDR_MSG_ID, &id) == NATS_OK && id != NULL &&
            svc->tp.npub_refused < SAGA__PUB_FAILS_MAX) {
            snprintf(svc->tp.pub_refused[svc->tp.npub_refused], sizeof(svc->tp.pub_refused[0]),
                     "%s", id);
            svc->tp.npub_refused++;
        }
        if (pae != NULL && (pae->Err == NATS_NO_RESPONDERS || pae->ErrCode == JSStreamNotFoundErr))
            svc->tp.pub_no_stream = 1;
        pthread_mutex_unlock(&svc->tp.err_mu);
    }
    natsMsg_Destroy(msg);
}

/* The counters as one JSON object, members in SAGA_STATS_MAP's order; NULL
 * if it could not be built. The caller releases it. */
static json_t *stats_json(saga_service *svc)
{
    saga_stats s;
    saga_service_stats(svc, &s);
    json_t *o = json_pack("{s:s, s:I, s:s, s:o}", "service", svc->name, "pid", (json_int_t)getpid(),
                          "member", svc->partition_spec, "partitions", saga__partitions_json(svc));
    int bad = o == NULL;
#define XX(name, kind, meaning)                                                                    \
    bad = bad || json_object_set_new(o, #name, json_integer((json_int_t)s.name)) != 0;
    SAGA_STATS_MAP(XX)
#undef XX
    bad = bad || json_object_set_new(o, "since_ms", json_integer(svc->stats_since_ms)) != 0;
    bad = bad || json_object_set_new(o, "started_ms", json_integer(svc->started_ms)) != 0;
    if (bad) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

/* Answers saga.ctl.<name>.stats with the counters as JSON, on a cnats thread.
 * A reply that cannot be built is not sent: the client's request times out. */
static void on_ctl(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    saga_service *svc = closure;
    (void)sub;
    json_t *o = natsMsg_GetReply(msg) != NULL ? stats_json(svc) : NULL;
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (text != NULL)
        natsConnection_PublishString(nc, natsMsg_GetReply(msg), text);
    free(text);
    json_decref(o);
    natsMsg_Destroy(msg);
}

/* Gives opts every server of urls, a comma-separated list ("nats://a:4222,nats://b:4222",
 * the nodes of a cluster): cnats 3.4.1's natsOptions_SetURL takes one URL, and a list
 * given to it fails every connect; only natsOptions_SetServers tries each in turn. */
static natsStatus set_servers(natsOptions *opts, const char *urls)
{
    char buf[SAGA__NATS_URL_MAX + 1];
    const char *servers[SAGA__NATS_URL_MAX / 8];
    int n = saga_config_servers(urls, buf, sizeof(buf), servers,
                                (int)(sizeof(servers) / sizeof(servers[0])));
    return n > 0 ? natsOptions_SetServers(opts, servers, n) : NATS_INVALID_ARG;
}

saga_status saga__transport_connect(saga_service *svc)
{
    natsOptions *opts = NULL;
    natsStatus s;
    jsOptions jo;
    saga_status rv = SAGA_OK;
    int64_t next_log = 0;

    pthread_mutex_init(&svc->tp.err_mu, NULL);
    pthread_cond_init(&svc->tp.closed_cv, NULL);
    s = natsOptions_Create(&opts);
    if (s == NATS_OK)
        s = set_servers(opts, svc->cfg.nats_url);
    if (s == NATS_OK) {
        char why[512] = "";
        s = saga_client_secure(opts, svc->cfg.nats_creds, svc->cfg.nats_ca, svc->cfg.nats_cert,
                               svc->cfg.nats_key, why, sizeof(why));
        if (s != NATS_OK) {
            rv = saga__fail(svc, SAGA_EINVAL, "%s", why);
            goto out;
        }
    }
    if (s == NATS_OK)
        s = natsOptions_SetName(opts, svc->name);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(opts, -1); /* a service outlives broker restarts */
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(opts, 100);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(opts, on_error, svc);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(opts, on_disconnected, svc);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(opts, on_reconnected, svc);
    if (s == NATS_OK)
        s = natsOptions_SetClosedCB(opts, on_closed, svc);
    if (s != NATS_OK) {
        rv = nats_fail(svc, s, "nats options");
        goto out;
    }
    /* The broker may come up after the service: keep trying until stopped. */
    for (;;) {
        s = natsConnection_Connect(&svc->tp.nc, opts);
        if (s == NATS_OK)
            break;
        if (atomic_load(&svc->stop)) {
            rv = nats_fail(svc, s, "connect");
            goto out;
        }
        /* Refused credentials are retried too (the broker may be reloading its
         * users), but said plainly. */
        if (saga__now_ms() >= next_log) {
            char why[512];
            SAGA__LOG(&svc->log, SAGA_LOG_WARN, "event=nats_connect_retry url=%s error=\"%s\"",
                      svc->cfg.nats_url, saga_client_connect_error(s, why, sizeof(why)));
            next_log = saga__now_ms() + 5000;
        }
        struct timespec ts = {0, 250 * 1000000L};
        nanosleep(&ts, NULL);
    }
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = 65536;
    jo.PublishAsync.AckHandler = on_pub_ack;
    jo.PublishAsync.AckHandlerClosure = svc;
    s = natsConnection_JetStream(&svc->tp.js, svc->tp.nc, &jo);
    if (s != NATS_OK) {
        rv = nats_fail(svc, s, "jetstream context");
        goto out;
    }
out:
    natsOptions_Destroy(opts);
    return rv;
}

void saga__transport_close(saga_service *svc)
{
    if (svc->tp.nc != NULL) {
        natsConnection_FlushTimeout(svc->tp.nc, 2000);
        natsConnection_Close(svc->tp.nc);
        /* cnats runs connection callbacks on its own thread, after Close
         * returns; wait for the last one so none touches a freed service. */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 5;
        pthread_mutex_lock(&svc->tp.err_mu);
        while (!svc->tp.closed)
            if (pthread_cond_timedwait(&svc->tp.closed_cv, &svc->tp.err_mu, &until) != 0)
                break;
        pthread_mutex_unlock(&svc->tp.err_mu);
    }
    /* Subscriptions are destroyed only after the connection is closed, so no
     * message is being delivered to them (cnats #637). */
    saga__route_destroy(&svc->ctl_route);
    if (svc->disc_sub != NULL)
        natsSubscription_Destroy(svc->disc_sub);
    svc->disc_sub = NULL;
    for (int i = 0; i < svc->ncons; i++) {
        natsSubscription_Destroy(svc->cons[i].ns);
        svc->cons[i].ns = NULL;
    }
    for (int i = 0; i < svc->ncmds; i++)
        saga__route_destroy(&svc->cmds[i].route);
    jsCtx_Destroy(svc->tp.js);
    svc->tp.js = NULL;
    natsConnection_Destroy(svc->tp.nc);
    svc->tp.nc = NULL;
    free(svc->tp.acked);
    svc->tp.acked = NULL;
    pthread_cond_destroy(&svc->tp.closed_cv);
    pthread_mutex_destroy(&svc->tp.err_mu);
}

/* The streams a service creates when they are missing: the events and the
 * dead letters, with the subject scheme recorded on each. */
typedef struct stream_spec {
    const char *name, *subject, *description;
    int64_t max_age_ns;
} stream_spec;

enum { NSTREAMS = 2 };

static void stream_specs(const saga_service *svc, stream_spec out[NSTREAMS])
{
    out[0] = (stream_spec){svc->cfg.stream, SAGA_SUBJ_EVENTS_ALL, SAGA_STREAM_EVENTS_DESCRIPTION,
                           svc->cfg.events_max_age_ms * NS_PER_MS};
    out[1] = (stream_spec){svc->cfg.dlq_stream, SAGA_SUBJ_DLQ_ALL, SAGA_STREAM_DLQ_DESCRIPTION,
                           DLQ_MAX_AGE_NS};
}

static saga_status ensure_stream(saga_service *svc, const stream_spec *spec)
{
    jsStreamConfig sc;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    const char *name = spec->name;
    const char *subjects[] = {spec->subject};

    jsStreamConfig_Init(&sc);
    sc.Name = name;
    sc.Description = spec->description;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.MaxAge = spec->max_age_ns;
    sc.Duplicates = svc->cfg.dup_window_ms * NS_PER_MS;
    sc.Replicas = svc->cfg.replicas; /* a cluster's copies; more than its nodes is refused */
    natsStatus s;
    setup_wait w = {0, 0};
    do {
        jerr = 0;
        s = js_AddStream(&si, svc->tp.js, &sc, NULL, &jerr);
        jsStreamInfo_Destroy(si);
        si = NULL;
    } while (s != NATS_OK && setup_retry(svc, s, jerr, name, &w));
    /* Another service created it first, possibly with other limits: use it as is. */
    if (s == NATS_OK || jerr == JS_ERR_STREAM_NAME_IN_USE)
        return SAGA_OK;
    /* Services starting together race to create it, and the broker may then
     * answer "subjects overlap" (10065) rather than "name in use": what
     * counts is that the stream is there now. */
    if (js_GetStreamInfo(&si, svc->tp.js, name, NULL, NULL) == NATS_OK) {
        jsStreamInfo_Destroy(si);
        return SAGA_OK;
    }
    if (jerr == JS_ERR_NO_PEERS)
        return saga__fail(svc, SAGA_ENATS,
                          "create stream %s: the cluster cannot place %d copies (jetstream error "
                          "%d, no suitable peers): fewer nodes up than SAGA_REPLICAS?",
                          name, svc->cfg.replicas, (int)jerr);
    return saga__fail(svc, SAGA_ENATS, "create stream %s: %s (jetstream error %d)", name,
                      natsStatus_GetText(s), (int)jerr);
}

saga_status saga__transport_ensure_streams(saga_service *svc)
{
    stream_spec specs[NSTREAMS];
    saga_status rv = SAGA_OK;
    stream_specs(svc, specs);
    for (int i = 0; i < NSTREAMS && rv == SAGA_OK; i++)
        rv = ensure_stream(svc, &specs[i]);
    return rv;
}

/* cnats thread: hand the message to the service thread. */
static void on_event(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    saga__consumer *c = closure;
    (void)nc;
    (void)sub;
    if (saga__queue_push(&c->sub->svc->q, (saga__inmsg){msg, c->sub, NULL}) != 0)
        natsMsg_Destroy(msg);
}

static void on_command(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    saga__cmd *c = closure;
    (void)nc;
    (void)sub;
    if (saga__queue_push(&c->svc->q, (saga__inmsg){msg, NULL, c}) != 0)
        natsMsg_Destroy(msg);
}

/* Gives cc the start of the existing durable consumer cc->Durable: the broker
 * refuses to change where a consumer starts, and one created by a hand-over
 * (saga-fleet scale, at another's acknowledgement floor) starts at a sequence. */
static void keep_start(saga_service *svc, jsConsumerConfig *cc)
{
    jsConsumerInfo *ci = NULL;
    if (js_GetConsumerInfo(&ci, svc->tp.js, svc->cfg.stream, cc->Durable, NULL, NULL) != NATS_OK)
        return;
    cc->DeliverPolicy = ci->Config->DeliverPolicy;
    cc->OptStartSeq = ci->Config->OptStartSeq;
    cc->OptStartTime = ci->Config->OptStartTime;
    jsConsumerInfo_Destroy(ci);
}

/* Creates or updates durable consumer sub. start_ms 0 delivers the whole
 * stream (the first start); otherwise delivery starts at that time. */
static saga_status ensure_consumer(saga_service *svc, saga__consumer *sub, int64_t start_ms)
{
    jsConsumerConfig cc;
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;

    jsConsumerConfig_Init(&cc);
    cc.Durable = sub->name;
    cc.DeliverSubject = sub->deliver;
    cc.DeliverPolicy = js_DeliverAll; /* events published before the first start count */
    if (start_ms > 0) {
        cc.DeliverPolicy = js_DeliverByStartTime;
        cc.OptStartTime = start_ms * NS_PER_MS;
    }
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = svc->cfg.ack_wait_ms * NS_PER_MS;
    cc.MaxDeliver = -1; /* the runtime dead-letters itself, with a reason */
    cc.MaxAckPending = saga_ack_pending_share(svc->cfg.max_ack_pending, svc->ncons);
    cc.FilterSubject = sub->subject;
    natsStatus s;
    setup_wait w = {0, 0};
    do {
        jerr = 0;
        s = js_AddConsumer(&ci, svc->tp.js, svc->cfg.stream, &cc, NULL, &jerr);
        if (s != NATS_OK && jerr != 0 && jerr != JS_ERR_NOT_ENABLED) {
            /* It exists with other settings (a new ack wait, say): update it. */
            keep_start(svc, &cc);
            jerr = 0;
            s = js_UpdateConsumer(&ci, svc->tp.js, svc->cfg.stream, &cc, NULL, &jerr);
        }
        jsConsumerInfo_Destroy(ci);
        ci = NULL;
    } while (s != NATS_OK && setup_retry(svc, s, jerr, sub->name, &w));
    if (s != NATS_OK)
        return saga__fail(svc, SAGA_ENATS, "consumer %s: %s (jetstream error %d)", sub->name,
                          natsStatus_GetText(s), (int)jerr);
    return SAGA_OK;
}

saga_status saga__transport_subscribe(saga_service *svc)
{
    natsStatus s;
    saga_status rv = saga__consumers_plan(svc);
    if (rv != SAGA_OK)
        return rv;
    for (int i = 0; i < svc->ncons; i++) {
        saga__consumer *sub = &svc->cons[i];
        jsSubOptions so;
        jsErrCode jerr = 0;
        rv = ensure_consumer(svc, sub, 0);
        if (rv != SAGA_OK)
            return rv;
        jsSubOptions_Init(&so);
        so.Stream = svc->cfg.stream;
        so.Consumer = sub->name; /* bind: the library never deletes a bound consumer */
        so.ManualAck = true;
        setup_wait w = {0, 0};
        int64_t bound_until = saga__now_ms() + BOUND_RETRY_MS;
        do {
            jerr = 0;
            s = js_Subscribe(&sub->ns, svc->tp.js, sub->subject, on_event, sub, NULL, &so, &jerr);
            /* On a cluster, an attempt that timed out (a leader being elected) leaves the
             * consumer reported as bound for a few seconds: cnats then refuses with
             * NATS_ERR. Only this process binds it, so wait until the report clears. */
            const char *why = s == NATS_ERR ? nats_GetLastError(NULL) : NULL;
            if (why != NULL && strstr(why, "already bound") != NULL && saga__now_ms() < bound_until)
                s = NATS_TIMEOUT;
        } while (s != NATS_OK && setup_retry(svc, s, jerr, sub->name, &w));
        if (s != NATS_OK)
            return saga__fail(svc, SAGA_ENATS, "subscribe %s: %s (jetstream error %d)", sub->name,
                              natsStatus_GetText(s), (int)jerr);
    }
    /* A queue group: copies of one instance (a restart overlapping its
     * predecessor) run each command once. Routed to the owned partitions. */
    for (int i = 0; i < svc->ncmds && rv == SAGA_OK; i++)
        rv = saga__route_subscribe(svc, &svc->cmds[i].route, svc->cmds[i].subject, svc->name, 0,
                                   on_command, &svc->cmds[i]);
    if (rv == SAGA_OK)
        rv = saga__discovery_subscribe(svc);
    if (rv != SAGA_OK)
        return rv;
    /* Last: an answer on saga.ctl.<name>.stats means the service is ready. */
    char ctl[SAGA__SUBJECT_MAX];
    snprintf(ctl, sizeof(ctl), SAGA_SUBJ_CTL_FMT, svc->name, SAGA_CTL_STATS);
    /* Every instance answers the plain subject; ctl.<name>.stats.<p> reaches one. */
    rv = saga__route_subscribe(svc, &svc->ctl_route, ctl, NULL, 1, on_ctl, svc);
    if (rv != SAGA_OK)
        return rv;
    setup_wait w = {0, 0};
    do
        s = natsConnection_FlushTimeout(svc->tp.nc, 5000);
    while (s != NATS_OK && setup_retry(svc, s, 0, "flush subscriptions", &w));
    if (s != NATS_OK)
        return nats_fail(svc, s, "flush subscriptions");
    return SAGA_OK;
}

void saga__transport_unsubscribe(saga_service *svc)
{
    for (int i = 0; i < svc->ncons; i++)
        if (svc->cons[i].ns != NULL)
            natsSubscription_Unsubscribe(svc->cons[i].ns);
    for (int i = 0; i < svc->ncmds; i++)
        saga__route_unsubscribe(&svc->cmds[i].route);
}

/* 1 when the broker says for sure that stream (consumer: NULL for the
 * stream itself) does not exist; a timeout or a lost connection is not that. */
static int missing(saga_service *svc, const char *stream, const char *consumer)
{
    jsOptions jo;
    jsErrCode jerr = 0;
    natsStatus s;
    jsOptions_Init(&jo);
    jo.Wait = CHECK_WAIT_MS;
    if (consumer == NULL) {
        jsStreamInfo *si = NULL;
        s = js_GetStreamInfo(&si, svc->tp.js, stream, &jo, &jerr);
        jsStreamInfo_Destroy(si);
    } else {
        jsConsumerInfo *ci = NULL;
        s = js_GetConsumerInfo(&ci, svc->tp.js, stream, consumer, &jo, &jerr);
        jsConsumerInfo_Destroy(ci);
    }
    return s != NATS_OK && (jerr == JSStreamNotFoundErr || jerr == JSConsumerNotFoundErr ||
                            (consumer == NULL && s == NATS_NOT_FOUND));
}

void saga__transport_check(saga_service *svc)
{
    stream_spec streams[NSTREAMS];
    stream_specs(svc, streams);
    if (svc->tp.nc == NULL || natsConnection_Status(svc->tp.nc) != NATS_CONN_STATUS_CONNECTED)
        return;
    /* Someone deleted a stream (an operator, a test, a broker that lost its
     * store): without it every publish fails and no consumer delivers. */
    for (size_t i = 0; i < NSTREAMS; i++) {
        if (!missing(svc, streams[i].name, NULL))
            continue;
        saga_status rv = ensure_stream(svc, &streams[i]);
        SAGA__STAT_ADD(svc, streams_recreated, 1);
        SAGA__LOG(&svc->log, SAGA_LOG_WARN,
                  "event=stream_recreated stream=%s status=%s detail=\"%s\"", streams[i].name,
                  saga_status_name(rv), rv == SAGA_OK ? "it was missing" : svc->err);
    }
    /* A deleted durable consumer leaves the subscription silent. Recreated,
     * it starts at the retention horizon: what came since is either new or
     * still in the inbox (and so dropped as a duplicate); all of a long
     * stream would redo events the inbox has forgotten. */
    for (int i = 0; i < svc->ncons; i++) {
        saga__consumer *sub = &svc->cons[i];
        if (!missing(svc, svc->cfg.stream, sub->name))
            continue;
        saga_status rv = ensure_consumer(svc, sub, saga__now_ms() - svc->cfg.retention_ms);
        SAGA__STAT_ADD(svc, consumers_recreated, 1);
        SAGA__LOG(&svc->log, SAGA_LOG_WARN,
                  "event=consumer_recreated consumer=%s stream=%s status=%s detail=\"%s\"",
                  sub->name, svc->cfg.stream, saga_status_name(rv),
                  rv == SAGA_OK ? "it was missing" : svc->err);
    }
}

void saga__transport_send_now(saga_service *svc)
{
    /* A PING behind the buffered data: cnats writes it all at once. Its
     * PONG comes back before the publish acks that are waited for next. */
    (void)natsConnection_FlushTimeout(svc->tp.nc, SEND_NOW_WAIT_MS);
}

size_t saga__transport_max_message(saga_service *svc)
{
    int64_t mp = svc->tp.nc != NULL ? natsConnection_GetMaxPayload(svc->tp.nc) : 0;
    if (mp <= 0)
        mp = DEFAULT_MAX_PAYLOAD;
    return mp > 2 * PAYLOAD_MARGIN ? (size_t)(mp - PAYLOAD_MARGIN) : (size_t)mp / 2;
}

static natsStatus publish_one(saga_service *svc, const saga__outmsg *m, const char *id_suffix)
{
    natsMsg *msg = NULL;
    jsPubOptions po;
    char id[sizeof(m->msg_id) + 8];
    snprintf(id, sizeof(id), "%s%s", m->msg_id, id_suffix ? id_suffix : "");
    natsStatus s = natsMsg_Create(&msg, m->subject, NULL, (const char *)m->data, (int)m->len);
    for (int i = 0; s == NATS_OK && i < m->nhdr; i++)
        s = natsMsgHeader_Set(msg, m->hdr[i].name, m->hdr[i].value);
    if (s == NATS_OK) {
        jsPubOptions_Init(&po);
        po.MsgId = id;
        s = js_PublishMsgAsync(svc->tp.js, &msg, &po);
    }
    natsMsg_Destroy(msg); /* no-op when the library took it */
    return s;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* After a failed attempt: takes back what is still in flight, so that late acks
 * are not counted, and marks in done the messages of list the broker has
 * acknowledged, so that the next attempt sends only the others. Sending an
 * acknowledged message again costs the broker a duplicate check, and on a
 * cluster nats-server before 2.9.21 counts each duplicate in per-replica state
 * that can drift between the replicas (nats-server PR 4365), which can leave a
 * replica without a message. When it cannot tell (or done is NULL), nothing is
 * marked: everything is sent again. */
static void take_back(saga_service *svc, const saga__outlist *list, unsigned char *done)
{
    natsMsgList pending = {0};
    const char **ids = NULL;
    size_t n = 0;
    if (js_PublishAsyncGetPendingList(&pending, svc->tp.js) == NATS_OK)
        natsMsgList_Destroy(&pending);
    pthread_mutex_lock(&svc->tp.err_mu);
    for (size_t at = 0; at < svc->tp.acked_len; at += strlen(svc->tp.acked + at) + 1)
        n++;
    ids = done != NULL && !svc->tp.acked_lost ? malloc((n + 1) * sizeof(*ids)) : NULL;
    if (ids != NULL) {
        n = 0;
        for (size_t at = 0; at < svc->tp.acked_len; at += strlen(svc->tp.acked + at) + 1)
            ids[n++] = svc->tp.acked + at;
        qsort(ids, n, sizeof(*ids), cmp_str);
        for (size_t i = 0; i < list->n; i++) {
            const char *key = list->v[i].msg_id;
            done[i] = done[i] || bsearch(&key, ids, n, sizeof(*ids), cmp_str) != NULL;
        }
    }
    pthread_mutex_unlock(&svc->tp.err_mu);
    free(ids);
}

/* Marks the messages whose acks refused them for good; returns how many acks did. */
static long take_refused(saga_service *svc, const saga__outlist *list, unsigned char *refused)
{
    long n;
    pthread_mutex_lock(&svc->tp.err_mu);
    n = svc->tp.npub_refused;
    for (int r = 0; r < svc->tp.npub_refused; r++) {
        const char *id = svc->tp.pub_refused[r];
        for (size_t i = 0; i < list->n; i++) {
            size_t il = strlen(list->v[i].msg_id);
            /* The id, or the id of its injected duplicate ("<id>.dup"). */
            if (strncmp(id, list->v[i].msg_id, il) == 0 && (id[il] == '\0' || id[il] == '.'))
                refused[i] = 1;
        }
    }
    svc->tp.npub_refused = 0;
    pthread_mutex_unlock(&svc->tp.err_mu);
    return n;
}

saga_status saga__transport_publish(saga_service *svc, const saga__outlist *list,
                                    unsigned char *refused)
{
    int64_t backoff = 50;
    char why[300];
    saga_status rv = SAGA_OK;
    unsigned char *done = NULL; /* acknowledged in an earlier attempt */
    if (list->n == 0)
        return SAGA_OK;
    for (int attempt = 1;; attempt++) {
        natsStatus s = NATS_OK;
        size_t i, expect = 0, dups = 0;
        atomic_store(&svc->tp.pub_ok, 0);
        atomic_store(&svc->tp.pub_err, 0);
        pthread_mutex_lock(&svc->tp.err_mu);
        svc->tp.npub_refused = 0;
        svc->tp.acked_len = 0;
        svc->tp.acked_lost = 0;
        svc->tp.pub_no_stream = 0;
        pthread_mutex_unlock(&svc->tp.err_mu);
        for (i = 0; i < list->n && s == NATS_OK; i++) {
            const saga__outmsg *m = &list->v[i];
            if (refused[i] || (done != NULL && done[i]))
                continue;
            s = publish_one(svc, m, NULL);
            if (s == NATS_MAX_PAYLOAD) {
                /* The client library refuses it before it leaves: for good. */
                refused[i] = 1;
                s = NATS_OK;
                continue;
            }
            expect += s == NATS_OK;
            if (s == NATS_OK && strncmp(m->subject, SAGA_SUBJ_EVENTS_PREFIX, 4) == 0 &&
                saga__faults_roll(&svc->faults, "dup", m->msg_id, 0, svc->faults.dup_rate)) {
                /* Another message id: the broker keeps both, consumers must dedupe. */
                s = publish_one(svc, m, ".dup");
                expect += s == NATS_OK;
                dups++;
            }
        }
        if (s == NATS_OK) {
            jsPubOptions po;
            jsPubOptions_Init(&po);
            po.MaxWait = svc->cfg.publish_wait_ms;
            saga__transport_send_now(svc);
            s = js_PublishAsyncComplete(svc->tp.js, &po);
        }
        long ok = atomic_load(&svc->tp.pub_ok), err = atomic_load(&svc->tp.pub_err);
        long final = take_refused(svc, list, refused);
        if (s == NATS_OK && err == final && (size_t)(ok + err) == expect) {
            if (dups > 0)
                SAGA__STAT_ADD(svc, faults, dups);
            goto out;
        }
        if (done == NULL)
            done = calloc(list->n, 1);
        take_back(svc, list, done);
        pthread_mutex_lock(&svc->tp.err_mu);
        int no_stream = svc->tp.pub_no_stream || s == NATS_NO_RESPONDERS;
        if (s != NATS_OK)
            snprintf(why, sizeof(why), "%s", natsStatus_GetText(s));
        else
            snprintf(why, sizeof(why), "%ld of %zu failed: %s", err, expect, svc->tp.pub_errtext);
        pthread_mutex_unlock(&svc->tp.err_mu);
        int64_t now = saga__now_ms();
        int64_t since = atomic_load(&svc->tp.pub_failing_since);
        if (since == 0)
            atomic_store(&svc->tp.pub_failing_since, now);
        SAGA__STAT_ADD(svc, publish_retries, 1);
        SAGA__LOG(&svc->log, SAGA_LOG_WARN,
                  "event=publish_retry attempt=%d messages=%zu failing_ms=%lld error=\"%s\"",
                  attempt, list->n, (long long)(since == 0 ? 0 : now - since), why);
        /* Seen now, not after the batch: a stalled service must say so. */
        saga__log_flush();
        if (atomic_load(&svc->stop)) {
            rv = saga__fail(svc, SAGA_ESTOPPED, "publish abandoned on stop: %s", why);
            goto out;
        }
        if (no_stream)
            saga__transport_check(svc); /* "no responders": is the stream gone? */
        struct timespec ts = {backoff / 1000, (backoff % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        if (backoff < 2000)
            backoff *= 2;
    }
out:
    free(done);
    atomic_store(&svc->tp.pub_failing_since, 0);
    return rv;
}
