/* loop.c - The consumer loop: batch, handle, group commit, publish, acknowledge.
 *
 * One iteration takes up to batch_max messages and, in ONE LMDB write
 * transaction: checks each event against the inbox, runs its handler in a
 * nested transaction, records parked events, fires due timers and prunes.
 * Once the commit is durable it releases the batch: publishes its outbox,
 * waits for the publish acks, and only then acknowledges the incoming
 * messages and answers its commands. With SAGA_SHARED_FLUSH a commit
 * flushes the disk once and its meta page reaches the disk with the next
 * flush: the batch waits for the next batch's commit (or, when no message
 * is at hand, one explicit flush), so that nothing is published or
 * acknowledged that a machine crash could still undo. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "park.h"
#include "service_internal.h"
#include "timers.h"

#define TIMERS_PER_BATCH 256
#define TIMER_COALESCE_MS 100 /* timers due within this span fire in one batch */
#define PRUNE_INTERVAL_MS 1000
#define PRUNE_INBOX_MAX 2000
#define PRUNE_SAGAS_MAX 200
#define UNPARK_PASSES 8
#define MAPFULL_RETRIES 16
#define IDLE_WAIT_MS 200
#define SENT_LINGER_MS 20
#define PARK_TIMER_PREFIX "~park:"
#define CHECK_INTERVAL_MS 3000 /* between looks for deleted streams and consumers */

enum { ACT_NONE, ACT_ACK, ACT_NAK };

typedef struct result {
    int act;
    int64_t delay_ms;
    uint8_t *reply;
    size_t reply_len;
    int has_reply;
} result;

typedef struct batch {
    saga__inmsg *in;
    result *res;
    size_t n;
    saga_stats d;    /* counters, applied only once the batch commits */
    saga__metrics m; /* figures for /metrics, likewise */
    natsMsg *cur;    /* the message being handled, when a message is */
    int64_t now;
    /* Once committed: its outbox entries, kept until it is released, and
     * the number of its commit (saga__store.committed), durable when
     * saga__store.durable reaches it. */
    saga__outlist out;
    uint64_t commit_no;
    int eventful; /* it handled events: a crash point */
} batch;

/* Seconds on a clock that no time adjustment moves, for durations. */
static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- matching and dead letters ---------------------------------------- */

/* "a.b" matches "a.b"; "*" in either position matches any token. */
static int type_matches(const char *pattern, const char *type)
{
    const char *pd = strchr(pattern, '.'), *td = strchr(type, '.');
    if (pd == NULL || td == NULL)
        return 0;
    size_t pl = (size_t)(pd - pattern), tl = (size_t)(td - type);
    int first = (pl == 1 && pattern[0] == '*') || (pl == tl && memcmp(pattern, type, pl) == 0);
    int second = strcmp(pd + 1, "*") == 0 || strcmp(pd + 1, td + 1) == 0;
    return first && second;
}

static saga__sub *sub_for_type(saga_service *svc, const char *type)
{
    for (int i = 0; i < svc->nsubs; i++)
        if (type_matches(svc->subs[i].pattern, type))
            return &svc->subs[i];
    return NULL;
}

/* Writes a dead letter into the outbox and appends it to out, to be
 * published with it. cur is the incoming message, if there is one (its
 * replay count is kept, so replays cannot loop forever). The body is cut so
 * that the whole message fits the broker's max payload: a dead letter that
 * could not be published would stop the service. */
static saga_status dead_letter_to(saga_service *svc, MDB_txn *txn, saga__outlist *out, natsMsg *cur,
                                  saga_stats *d, saga_dlq_cause cause, const char *subject,
                                  const void *data, size_t len, const char *reason, int delivery,
                                  const char *id)
{
    saga__outmsg *m = saga__outlist_push(out);
    char num[32];
    if (m == NULL)
        return SAGA_ENOMEM;
    snprintf(m->subject, sizeof(m->subject), SAGA_SUBJ_DLQ_FMT, svc->name);
    snprintf(m->msg_id, sizeof(m->msg_id), SAGA_DLQ_MSG_ID_FMT, svc->name, id);
    saga__outmsg_header(m, SAGA_HDR_CAUSE, saga_dlq_cause_name(cause));
    saga__outmsg_header(m, SAGA_HDR_REASON, reason);
    saga__outmsg_header(m, SAGA_HDR_SERVICE, svc->name);
    snprintf(num, sizeof(num), "%d", delivery);
    saga__outmsg_header(m, SAGA_HDR_DELIVERIES, num);
    saga__outmsg_header(m, SAGA_HDR_SUBJECT, subject ? subject : "");
    const char *replays = NULL;
    if (cur != NULL && natsMsgHeader_Get(cur, SAGA_HDR_REPLAYS, &replays) == NATS_OK &&
        replays != NULL)
        saga__outmsg_header(m, SAGA_HDR_REPLAYS, replays);
    size_t limit = saga__transport_max_message(svc), keep = len;
    if (saga__outmsg_wire_size(m) + len > limit) {
        snprintf(num, sizeof(num), "%zu", len);
        saga__outmsg_header(m, SAGA_HDR_TRUNCATED, num);
        size_t fixed = saga__outmsg_wire_size(m);
        keep = fixed < limit ? limit - fixed : 0;
    }
    if (keep > 0) {
        m->data = malloc(keep);
        if (m->data == NULL) {
            saga__outlist_truncate(out, out->n - 1);
            return SAGA_ENOMEM;
        }
        memcpy(m->data, data, keep);
        m->len = keep;
    }
    saga_status rv = saga__outbox_put(&svc->store, txn, m);
    if (rv != SAGA_OK) {
        saga__outlist_truncate(out, out->n - 1);
        return rv;
    }
    d->dead_lettered++;
    SAGA__LOG(&svc->log, SAGA_LOG_WARN,
              "event=dead_letter cause=%s subject=%s id=%s deliveries=%d bytes=%zu kept=%zu "
              "reason=\"%s\"",
              saga_dlq_cause_name(cause), subject ? subject : "", id, delivery, len, keep, reason);
    return SAGA_OK;
}

/* A dead letter of the message being handled, published with the batch. */
static saga_status dead_letter(saga_service *svc, MDB_txn *txn, batch *b, saga_dlq_cause cause,
                               const char *subject, const void *data, size_t len,
                               const char *reason, int delivery, const char *id)
{
    return dead_letter_to(svc, txn, &svc->out, b->cur, &b->d, cause, subject, data, len, reason,
                          delivery, id);
}

/* ---- running one handler ---------------------------------------------- */

typedef struct call {
    saga_event_fn efn;   /* an event handler, or */
    saga_timer_fn tfn;   /* a timer handler, or */
    saga_command_fn cfn; /* a command handler */
    void *udata;
    const saga_event *ev;
    const char *order_id; /* timers */
    const char *name;
    const char *subject;     /* commands */
    const char *traceparent; /* commands: the request's header, or NULL */
    const uint8_t *data;
    size_t len;
    int delivery;
    uint64_t stream_seq;
} call;

/* Runs the handler in a nested transaction. Returns the batch-level status
 * (SAGA_OK, or a store failure that aborts the batch); *hst is the handler's
 * verdict. Writes and emits are kept only when *hst is SAGA_OK. */
static saga_status run_handler(saga_service *svc, MDB_txn *txn, batch *b, const call *c,
                               saga_status *hst, int64_t *park_ms, result *res)
{
    MDB_txn *nested;
    saga_ctx ctx;
    size_t mark = svc->out.n;
    saga_status rv = saga__store_begin(&svc->store, txn, &nested);
    if (rv != SAGA_OK)
        return rv;
    saga__ctx_init(&ctx, svc, nested, c->ev, c->traceparent, c->delivery, b->now);
    ctx.stream_seq = c->stream_seq;
    /* Only event handlers are crash points: a command (the fault plan's own,
     * a query) must answer, and a crash counted on it would come early. */
    if (c->efn != NULL)
        saga__crash_point(&svc->faults.crash, SAGA_CRASH_IN_HANDLER, &svc->store);
    if (svc->faults.delay_ms > 0) {
        struct timespec ts = {svc->faults.delay_ms / 1000,
                              (svc->faults.delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        b->d.faults++;
    }
    saga_status st;
    double t0 = mono_s();
    if (c->efn != NULL)
        st = c->efn(&ctx, c->ev, c->udata);
    else if (c->tfn != NULL)
        st = c->tfn(&ctx, c->order_id, c->name, c->data, c->len, c->udata);
    else
        st = c->cfn(&ctx, c->subject, c->data, c->len, c->udata);
    saga__hist_observe(&b->m.handler_s, mono_s() - t0);
    if (ctx.store_failed) {
        if (ctx.store_st == SAGA_EMAPFULL) {
            rv = SAGA_EMAPFULL;
            st = SAGA_EMAPFULL;
        } else if (st == SAGA_OK) {
            st = SAGA_ERETRY; /* a handler that ignored a store failure is not done */
        }
    }
    b->d.faults += (uint64_t)ctx.faults_hit;
    if (st == SAGA_OK) {
        rv = saga__store_commit(&svc->store, nested);
    } else {
        mdb_txn_abort(nested);
        saga__outlist_truncate(&svc->out, mark);
    }
    if (park_ms != NULL)
        *park_ms = ctx.park_timeout_ms;
    if (res != NULL && ctx.has_reply) {
        res->reply = ctx.reply;
        res->reply_len = ctx.reply_len;
        res->has_reply = 1;
        ctx.reply = NULL;
    }
    saga__ctx_cleanup(&ctx);
    *hst = st;
    return rv;
}

/* ---- parked events ---------------------------------------------------- */

static saga_status park_timer_name(char *buf, size_t cap, const char *event_id)
{
    int n = snprintf(buf, cap, PARK_TIMER_PREFIX "%s", event_id);
    return n > 0 && (size_t)n < cap ? SAGA_OK : SAGA_ETOOBIG;
}

static saga_status unpark_remove(saga_service *svc, MDB_txn *txn, const char *order,
                                 const char *event_id)
{
    char tname[SAGA__TIMER_NAME_MAX + 1];
    saga_status rv = saga__park_del(&svc->store, txn, order, event_id);
    if (rv == SAGA_OK)
        rv = park_timer_name(tname, sizeof(tname), event_id);
    if (rv == SAGA_OK)
        rv = saga__timer_cancel(&svc->store, txn, order, tname);
    return rv;
}

/* Retries the events parked for order after one of its events was handled. */
static saga_status unpark(saga_service *svc, MDB_txn *txn, batch *b, const char *order)
{
    saga_status rv = SAGA_OK;
    for (int pass = 0; pass < UNPARK_PASSES && rv == SAGA_OK; pass++) {
        saga__parked *list = NULL;
        size_t n = 0;
        int progress = 0;
        if (!saga__park_any(&svc->store, txn, order))
            break;
        rv = saga__park_list(&svc->store, txn, order, &list, &n);
        for (size_t i = 0; i < n && rv == SAGA_OK; i++) {
            saga_event ev;
            void *owner = NULL;
            char err[128];
            saga_status hst;
            if (saga_event_decode(list[i].raw, list[i].len, &ev, &owner, err, sizeof(err)) !=
                SAGA_OK) {
                rv = unpark_remove(svc, txn, order, list[i].event_id);
                continue;
            }
            saga__sub *sub = sub_for_type(svc, ev.type);
            if (sub == NULL) {
                hst = SAGA_EUNKNOWN;
            } else {
                call c = {
                    .efn = sub->fn, .udata = sub->udata, .ev = &ev, .delivery = list[i].delivery};
                rv = run_handler(svc, txn, b, &c, &hst, NULL, NULL);
            }
            if (rv == SAGA_OK && hst != SAGA_PARKED && hst != SAGA_ERETRY) {
                rv = unpark_remove(svc, txn, order, ev.event_id);
                if (hst == SAGA_OK) {
                    b->d.unparked++;
                    b->d.processed++;
                    saga__metrics_count_type(&b->m, ev.type, 1);
                    progress = 1;
                    SAGA__LOG(&svc->log, SAGA_LOG_DEBUG,
                              "event=unparked type=%s order=%s event_id=%s", ev.type, order,
                              ev.event_id);
                } else if (hst == SAGA_EUNKNOWN) {
                    b->d.unknown++;
                } else if (rv == SAGA_OK) {
                    char subj[SAGA__SUBJECT_MAX];
                    saga_event_subject(ev.type, order, subj, sizeof(subj));
                    saga_dlq_cause cause =
                        hst == SAGA_EREJECT ? SAGA_DLQ_REJECTED : SAGA_DLQ_EXHAUSTED;
                    rv = dead_letter(svc, txn, b, cause, subj, list[i].raw, list[i].len,
                                     saga_strerror(hst), list[i].delivery, ev.event_id);
                }
            }
            free(owner);
        }
        saga__park_free(list, n);
        if (!progress)
            break;
    }
    return rv;
}

/* A parked event waited too long: hand it to the expiry handler or dead-letter it. */
static saga_status park_expired(saga_service *svc, MDB_txn *txn, batch *b, const char *order,
                                const char *event_id)
{
    saga__parked p;
    saga_event ev;
    void *owner = NULL;
    char err[128], subj[SAGA__SUBJECT_MAX] = "";
    saga_status hst = SAGA_EREJECT;
    saga_status rv = saga__park_get(&svc->store, txn, order, event_id, &p);
    if (rv == SAGA_ENOTFOUND)
        return SAGA_OK;
    if (rv != SAGA_OK)
        return rv;
    rv = saga__park_del(&svc->store, txn, order, event_id);
    if (rv != SAGA_OK)
        goto out;
    b->d.park_expired++;
    if (saga_event_decode(p.raw, p.len, &ev, &owner, err, sizeof(err)) == SAGA_OK) {
        saga_event_subject(ev.type, order, subj, sizeof(subj));
        if (svc->expired_fn != NULL) {
            call c = {.efn = svc->expired_fn,
                      .udata = svc->expired_udata,
                      .ev = &ev,
                      .delivery = p.delivery};
            rv = run_handler(svc, txn, b, &c, &hst, NULL, NULL);
        }
    }
    if (rv == SAGA_OK && hst == SAGA_OK) {
        b->d.processed++;
        saga__metrics_count_type(&b->m, ev.type, 1);
    } else if (rv == SAGA_OK)
        rv = dead_letter(svc, txn, b, SAGA_DLQ_PARK_EXPIRED, subj, p.raw, p.len,
                         "parked event expired: its predecessor never arrived", p.delivery,
                         event_id);
out:
    free(owner);
    free(p.raw);
    return rv;
}

/* ---- one message ------------------------------------------------------ */

static int64_t retry_delay(const saga_service *svc, int delivery)
{
    int64_t d = svc->cfg.retry_base_ms;
    for (int i = 1; i < delivery && d < svc->cfg.retry_max_ms; i++)
        d *= 2;
    return d < svc->cfg.retry_max_ms ? d : svc->cfg.retry_max_ms;
}

/* An event may only be emitted by the producer its type names ("<producer>.
 * <event>": vetoes "<p>.vetoed" and clearances "<p>.cleared" included), and
 * only on the subject its envelope gives (evt.<partition>.<type>): a
 * consumer that trusted a forged producer or a mislabelled subject would act
 * on an event its author never emitted. Vetoes come only from the
 * participants configured to veto. The Saga-Order-Id header is not
 * read here: consumers act on the envelope, and parsing every message's
 * headers costs the hot path more than all the rest of this check; readers
 * that pick an order's events by the header check the envelope after
 * decoding. Returns 1 and says why when it is forged. */
static int forged(const saga_service *svc, const saga_event *ev, const char *subject, char *why,
                  size_t cap)
{
    char want[SAGA__SUBJECT_MAX];
    size_t pl = strcspn(ev->type, ".");
    if (strlen(ev->producer) != pl || memcmp(ev->producer, ev->type, pl) != 0) {
        snprintf(why, cap, "forbidden: producer %s may not emit %s", ev->producer, ev->type);
        return 1;
    }
    /* A veto cancels an order: only participants configured to veto may. */
    if (strcmp(ev->type + pl, ".vetoed") == 0 && !saga__service_accepts_veto(svc, ev->producer)) {
        snprintf(why, cap, "forbidden: %s is not configured to veto (SAGA_VETOERS, SAGA_GATES)",
                 ev->producer);
        return 1;
    }
    if (saga_event_subject(ev->type, ev->order_id, want, sizeof(want)) != SAGA_OK ||
        subject == NULL || strcmp(want, subject) != 0) {
        snprintf(why, cap, "forbidden: subject %.100s disagrees with the envelope's %.100s",
                 subject, want);
        return 1;
    }
    return 0;
}

static saga_status handle_event(saga_service *svc, MDB_txn *txn, batch *b, saga__inmsg *in,
                                result *res)
{
    natsMsg *msg = in->msg;
    jsMsgMetaData *meta = NULL;
    int delivery = 1;
    char seq[32] = "0", err[160], reason[256];
    uint64_t stream_seq = 0;
    saga_event ev;
    void *owner = NULL;
    saga_status rv, hst;
    int seen;
    int64_t park_ms = 0;
    const uint8_t *data = (const uint8_t *)natsMsg_GetData(msg);
    size_t len = (size_t)natsMsg_GetDataLength(msg);
    const char *subject = natsMsg_GetSubject(msg);

    if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
        delivery = (int)meta->NumDelivered;
        stream_seq = meta->Sequence.Stream;
        snprintf(seq, sizeof(seq), "%llu", (unsigned long long)stream_seq);
        jsMsgMetaData_Destroy(meta);
    }
    b->d.received++;
    res->act = ACT_ACK;
    b->cur = msg;

    rv = saga_event_decode(data, len, &ev, &owner, err, sizeof(err));
    if (rv != SAGA_OK) {
        /* Poison: no retry can fix it. */
        snprintf(reason, sizeof(reason), "undecodable: %s: %s", saga_strerror(rv), err);
        rv = dead_letter(svc, txn, b, SAGA_DLQ_UNDECODABLE, subject, data, len, reason, delivery,
                         seq);
        goto out;
    }
    if (forged(svc, &ev, subject, reason, sizeof(reason))) {
        rv =
            dead_letter(svc, txn, b, SAGA_DLQ_FORBIDDEN, subject, data, len, reason, delivery, seq);
        goto out;
    }
    rv = saga__inbox_seen(&svc->store, txn, ev.event_id, &seen);
    if (rv != SAGA_OK || seen) {
        if (seen)
            b->d.duplicates++;
        goto out;
    }
    /* Hop latency: from the producer's clock to ours, first deliveries only
     * (a redelivery's wait is the retry delay, not the hop). */
    if (delivery == 1)
        saga__hist_observe(&b->m.hop_s, (double)(saga__now_ms() - ev.time_ms) / 1000.0);
    if (delivery == 1 &&
        saga__faults_roll(&svc->faults, "reorder", ev.event_id, 0, svc->faults.reorder_rate)) {
        /* Held back: redelivered after later messages, so out of order. */
        res->act = ACT_NAK;
        res->delay_ms = svc->faults.reorder_delay_ms;
        b->d.faults++;
        goto out;
    }
    if (delivery + 1 < svc->cfg.max_deliver &&
        saga__faults_roll(&svc->faults, "error", ev.event_id, (uint64_t)delivery,
                          svc->faults.error_rate)) {
        /* Never on the last deliveries: an injected error must not dead-letter. */
        hst = SAGA_ERETRY;
        b->d.faults++;
    } else {
        call c = {.efn = in->sub->fn,
                  .udata = in->sub->udata,
                  .ev = &ev,
                  .delivery = delivery,
                  .stream_seq = stream_seq};
        rv = run_handler(svc, txn, b, &c, &hst, &park_ms, NULL);
        if (rv != SAGA_OK)
            goto out;
    }

    switch (hst) {
    case SAGA_OK:
        b->d.processed++;
        saga__metrics_count_type(&b->m, ev.type, 1);
        rv = saga__inbox_put(&svc->store, txn, ev.event_id, b->now);
        if (rv == SAGA_OK)
            rv = unpark(svc, txn, b, ev.order_id);
        break;
    case SAGA_PARKED: {
        char tname[SAGA__TIMER_NAME_MAX + 1];
        rv = saga__park_put(&svc->store, txn, ev.order_id, ev.event_id, delivery, data, len);
        if (rv == SAGA_OK)
            rv = park_timer_name(tname, sizeof(tname), ev.event_id);
        if (rv == SAGA_OK)
            rv = saga__timer_set(&svc->store, txn, ev.order_id, tname, b->now + park_ms, NULL, 0);
        if (rv == SAGA_OK)
            rv = saga__inbox_put(&svc->store, txn, ev.event_id, b->now);
        if (b->now + park_ms < svc->next_timer_ms)
            svc->next_timer_ms = b->now + park_ms;
        b->d.parked++;
        SAGA__LOG(&svc->log, SAGA_LOG_DEBUG,
                  "event=parked type=%s order=%s event_id=%s wait_ms=%lld", ev.type, ev.order_id,
                  ev.event_id, (long long)park_ms);
        break;
    }
    case SAGA_EUNKNOWN:
        b->d.unknown++;
        rv = saga__inbox_put(&svc->store, txn, ev.event_id, b->now);
        break;
    case SAGA_EREJECT:
        snprintf(reason, sizeof(reason), "rejected by the %s handler", ev.type);
        rv = dead_letter(svc, txn, b, SAGA_DLQ_REJECTED, subject, data, len, reason, delivery, seq);
        break;
    default:
        if (delivery >= svc->cfg.max_deliver) {
            snprintf(reason, sizeof(reason), "failed %d deliveries, last: %s", delivery,
                     saga_strerror(hst));
            rv = dead_letter(svc, txn, b, SAGA_DLQ_EXHAUSTED, subject, data, len, reason, delivery,
                             seq);
        } else {
            res->act = ACT_NAK;
            res->delay_ms = retry_delay(svc, delivery);
            b->d.retried++;
            SAGA__LOG(
                &svc->log, SAGA_LOG_INFO,
                "event=retry type=%s order=%s event_id=%s delivery=%d delay_ms=%lld error=\"%s\"",
                ev.type, ev.order_id, ev.event_id, delivery, (long long)res->delay_ms,
                saga_strerror(hst));
        }
        break;
    }
out:
    b->cur = NULL;
    free(owner);
    return rv;
}

static saga_status handle_command(saga_service *svc, MDB_txn *txn, batch *b, saga__inmsg *in,
                                  result *res)
{
    saga_status hst;
    const char *tp = NULL;
    /* Commands are few (one place per order), so reading their headers is
     * cheap, unlike events': the caller's trace context, if it sent one. */
    if (natsMsgHeader_Get(in->msg, SAGA_HDR_TRACEPARENT, &tp) != NATS_OK)
        tp = NULL;
    call c = {.cfn = in->cmd->fn,
              .udata = in->cmd->udata,
              .subject = natsMsg_GetSubject(in->msg),
              .traceparent = tp,
              .data = (const uint8_t *)natsMsg_GetData(in->msg),
              .len = (size_t)natsMsg_GetDataLength(in->msg),
              .delivery = 1};
    res->act = ACT_NONE;
    b->d.commands++;
    return run_handler(svc, txn, b, &c, &hst, NULL, res);
}

/* ---- timers and pruning ----------------------------------------------- */

static saga_status fire_timers(saga_service *svc, MDB_txn *txn, batch *b)
{
    saga_status rv = SAGA_OK;
    if (b->now < svc->next_timer_ms)
        return SAGA_OK;
    for (int i = 0; i < TIMERS_PER_BATCH && rv == SAGA_OK; i++) {
        saga__timer t;
        rv = saga__timer_take_due(&svc->store, txn, b->now, &t);
        if (rv == SAGA_ENOTFOUND)
            return SAGA_OK;
        if (rv != SAGA_OK)
            return rv;
        if (strncmp(t.name, PARK_TIMER_PREFIX, strlen(PARK_TIMER_PREFIX)) == 0) {
            rv = park_expired(svc, txn, b, t.order_id, t.name + strlen(PARK_TIMER_PREFIX));
        } else if (svc->timer_fn != NULL) {
            saga_status hst;
            call c = {.tfn = svc->timer_fn,
                      .udata = svc->timer_udata,
                      .order_id = t.order_id,
                      .name = t.name,
                      .data = t.data,
                      .len = t.len,
                      .delivery = 1};
            rv = run_handler(svc, txn, b, &c, &hst, NULL, NULL);
            if (rv == SAGA_OK && hst == SAGA_OK) {
                b->d.timers_fired++;
                rv = unpark(svc, txn, b, t.order_id);
            } else if (rv == SAGA_OK && hst != SAGA_EREJECT) {
                /* Transient failure: try again later, durably. */
                int64_t due = b->now + svc->cfg.retry_base_ms;
                rv = saga__timer_set(&svc->store, txn, t.order_id, t.name, due, t.data, t.len);
                SAGA__LOG(&svc->log, SAGA_LOG_WARN,
                          "event=timer_retry order=%s timer=%s error=\"%s\"", t.order_id, t.name,
                          saga_strerror(hst));
            } else if (rv == SAGA_OK) {
                SAGA__LOG(&svc->log, SAGA_LOG_ERROR, "event=timer_rejected order=%s timer=%s",
                          t.order_id, t.name);
            }
        }
        saga__timer_cleanup(&t);
    }
    return rv;
}

static saga_status prune(saga_service *svc, MDB_txn *txn, batch *b)
{
    size_t a = 0, s = 0;
    if (b->now < svc->next_prune_ms)
        return SAGA_OK;
    /* A pass may take more than the batch brought in (a message adds at most
     * one inbox id and finishes at most a couple of scopes), so pruning keeps
     * up however large and rare the batches are. */
    size_t inbox_max = PRUNE_INBOX_MAX + 2 * b->n, sagas_max = PRUNE_SAGAS_MAX + 2 * b->n;
    int64_t cutoff = b->now - svc->cfg.retention_ms;
    saga_status rv = saga__inbox_prune(&svc->store, txn, cutoff, inbox_max, &a);
    if (rv == SAGA_OK)
        rv = saga__state_prune(&svc->store, txn, cutoff, sagas_max, &s);
    b->d.pruned += a + s;
    /* More to prune: come back soon rather than in a full interval. */
    svc->next_prune_ms = b->now + (a == inbox_max || s == sagas_max ? 10 : PRUNE_INTERVAL_MS);
    return rv;
}

/* ---- the batch -------------------------------------------------------- */

/* Adds a batch's counters; gauges are not the batch's to set. */
static void add_stats(saga_stats *to, const saga_stats *d)
{
#define XX(name, kind, meaning)                                                                    \
    if ((kind) == SAGA_STAT_COUNT)                                                                 \
        to->name += d->name;
    SAGA_STATS_MAP(XX)
#undef XX
}

static void reset_results(batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->res[i].reply);
        memset(&b->res[i], 0, sizeof(b->res[i]));
    }
}

/* Everything that happens inside the batch's one write transaction. */
static saga_status transact(saga_service *svc, batch *b)
{
    MDB_txn *txn;
    saga_status rv = saga__store_begin(&svc->store, NULL, &txn);
    if (rv != SAGA_OK)
        return rv;
    /* The previous batches' published outbox entries go with this commit. */
    for (size_t i = 0; i < svc->nsent && rv == SAGA_OK; i++)
        rv = saga__outbox_del(&svc->store, txn, svc->sent[i]);
    for (size_t i = 0; i < b->n && rv == SAGA_OK; i++) {
        if (b->in[i].sub != NULL)
            rv = handle_event(svc, txn, b, &b->in[i], &b->res[i]);
        else
            rv = handle_command(svc, txn, b, &b->in[i], &b->res[i]);
    }
    if (rv == SAGA_OK)
        rv = fire_timers(svc, txn, b);
    if (rv == SAGA_OK)
        rv = prune(svc, txn, b);
    if (rv == SAGA_OK) {
        /* The earliest may be a cancelled timer's index entry, dropped when
         * due (timers.c): after a busy spell they come due one after the
         * other, and a commit for each would keep an idle service busy. A
         * timer not yet due fires up to TIMER_COALESCE_MS late instead. */
        int64_t due;
        saga_status e = saga__timer_earliest(&svc->store, txn, &due);
        svc->next_timer_ms = e != SAGA_OK   ? INT64_MAX
                             : due > b->now ? due + TIMER_COALESCE_MS
                                            : due;
    }
    if (rv == SAGA_OK) {
        /* The counters as they stand once this batch commits, in its
         * transaction: one put, no commit of their own. What is counted
         * after the commit (publishing) goes with the next batch. */
        saga_stats s;
        pthread_mutex_lock(&svc->stats_mu);
        s = svc->stats;
        pthread_mutex_unlock(&svc->stats_mu);
        add_stats(&s, &b->d);
        s.commits++;
        s.flushes += (uint64_t)svc->store.commit_flushes;
        rv = saga__stats_save(&svc->store, txn, &s, svc->stats_since_ms);
    }
    if (rv == SAGA_OK && svc->precommit_fn != NULL) {
        rv = svc->precommit_fn(svc, svc->precommit_udata);
        if (rv != SAGA_OK)
            SAGA__LOG(&svc->log, SAGA_LOG_WARN, "event=precommit_failed error=\"%s\"",
                      saga_strerror(rv));
    }
    if (rv != SAGA_OK) {
        mdb_txn_abort(txn);
        return rv;
    }
    double t0 = mono_s();
    rv = saga__store_commit(&svc->store, txn);
    if (rv == SAGA_OK)
        saga__hist_observe(&b->m.commit_s, mono_s() - t0);
    return rv;
}

static void finish_messages(saga_service *svc, batch *b, int deliver_results)
{
    for (size_t i = 0; i < b->n; i++) {
        natsMsg *msg = b->in[i].msg;
        result *r = &b->res[i];
        if (deliver_results) {
            if (r->act == ACT_ACK)
                natsMsg_Ack(msg, NULL);
            else if (r->act == ACT_NAK)
                natsMsg_NakWithDelay(msg, r->delay_ms, NULL);
            const char *reply = natsMsg_GetReply(msg);
            if (b->in[i].cmd != NULL && reply != NULL && r->has_reply)
                natsConnection_Publish(svc->tp.nc, reply, r->reply, (int)r->reply_len);
        }
        natsMsg_Destroy(msg);
    }
    reset_results(b);
}

/* Remembers the keys of list's published entries (refused[i] == 0), which
 * the next transaction deletes from the outbox. */
static int remember_sent(saga_service *svc, const saga__outlist *list, const unsigned char *refused)
{
    if (svc->nsent + list->n > svc->capsent) {
        size_t cap = (svc->nsent + list->n) * 2;
        uint64_t *v = realloc(svc->sent, cap * sizeof(*v));
        if (v == NULL)
            return -1;
        svc->sent = v;
        svc->capsent = cap;
    }
    for (size_t i = 0; i < list->n; i++)
        if (!refused[i])
            svc->sent[svc->nsent++] = list->v[i].key;
    return 0;
}

/* In one transaction, deletes from the outbox the entries of list the broker
 * refused for good and writes a dead letter (cause unpublishable, cut to fit)
 * for each into the outbox and into dl. A refused dead letter is dropped
 * instead: it was cut to fit, so only a dead-letter stream with a smaller
 * size limit refuses it, and dead-lettering it again would refuse again. */
static saga_status replace_refused(saga_service *svc, const saga__outlist *list,
                                   const unsigned char *refused, saga__outlist *dl, saga_stats *d)
{
    MDB_txn *txn;
    char reason[400];
    saga_status rv = saga__store_begin(&svc->store, NULL, &txn);
    if (rv != SAGA_OK)
        return rv;
    pthread_mutex_lock(&svc->tp.err_mu);
    snprintf(reason, sizeof(reason), "the broker refuses it for good (max payload %zu): %s",
             saga__transport_max_message(svc), svc->tp.pub_errtext);
    pthread_mutex_unlock(&svc->tp.err_mu);
    for (size_t i = 0; i < list->n && rv == SAGA_OK; i++) {
        const saga__outmsg *m = &list->v[i];
        if (!refused[i])
            continue;
        rv = saga__outbox_del(&svc->store, txn, m->key);
        d->unpublishable++;
        if (rv != SAGA_OK)
            break;
        if (strncmp(m->subject, SAGA_SUBJ_DLQ_ALL, 4) == 0) {
            SAGA__LOG(&svc->log, SAGA_LOG_ERROR,
                      "event=dead_letter_dropped subject=%s id=%s bytes=%zu reason=\"%s\"",
                      m->subject, m->msg_id, m->len, reason);
            continue;
        }
        rv = dead_letter_to(svc, txn, dl, NULL, d, SAGA_DLQ_UNPUBLISHABLE, m->subject, m->data,
                            m->len, reason, 0, m->msg_id);
    }
    if (rv != SAGA_OK) {
        mdb_txn_abort(txn);
        saga__outlist_truncate(dl, 0);
        return rv;
    }
    return saga__store_commit(&svc->store, txn);
}

/* Publishes list (entries of the outbox). What the broker refuses for good
 * must not block the outbox: it is replaced by a dead letter, published in
 * turn, and the rest goes out as usual. Counts into d. */
static saga_status publish_outbox(saga_service *svc, const saga__outlist *list, saga_stats *d)
{
    saga__outlist dl[2];
    const saga__outlist *cur = list;
    unsigned char *refused = NULL;
    saga_status rv = SAGA_OK;
    saga__outlist_init(&dl[0]);
    saga__outlist_init(&dl[1]);
    /* Round 0 publishes list, round 1 its dead letters, round 2 finds
     * nothing left: replace_refused drops refused dead letters. */
    for (int round = 0; cur->n > 0; round++) {
        saga__outlist *next = &dl[round % 2];
        size_t nrefused = 0;
        free(refused);
        refused = calloc(cur->n, 1);
        if (refused == NULL) {
            rv = SAGA_ENOMEM;
            goto out;
        }
        rv = saga__transport_publish(svc, cur, refused);
        if (rv != SAGA_OK)
            goto out;
        for (size_t i = 0; i < cur->n; i++)
            nrefused += refused[i];
        d->published += cur->n - nrefused;
        if (remember_sent(svc, cur, refused) != 0)
            SAGA__LOG(&svc->log, SAGA_LOG_WARN, "event=outbox_cleanup_deferred reason=no_memory");
        if (nrefused == 0)
            break;
        SAGA__LOG(&svc->log, SAGA_LOG_ERROR, "event=unpublishable messages=%zu", nrefused);
        saga__outlist_truncate(next, 0);
        rv = replace_refused(svc, cur, refused, next, d);
        saga__log_flush();
        if (rv == SAGA_OK) {
            int flushes; /* the dead letters go out once their commit is durable */
            rv = saga__store_sync(&svc->store, &flushes);
            d->flushes += (uint64_t)(svc->store.commit_flushes + flushes);
        }
        if (rv != SAGA_OK)
            goto out;
        cur = next;
    }
out:
    free(refused);
    saga__outlist_cleanup(&dl[0]);
    saga__outlist_cleanup(&dl[1]);
    return rv;
}

/* Commits one batch: its handlers' effects, its outbox entries and the
 * deletion of the published ones, in one transaction. On failure its
 * messages are not acknowledged: JetStream redelivers them and the inbox
 * keeps that safe. Its counters count from here; what it publishes is
 * counted when it is released. */
static saga_status commit_batch(saga_service *svc, batch *b)
{
    saga_status rv;
    int tries = 0;
    for (;;) {
        memset(&b->d, 0, sizeof(b->d));
        saga__metrics_init(&b->m);
        b->now = saga__now_ms();
        reset_results(b);
        saga__outlist_truncate(&svc->out, 0);
        rv = transact(svc, b);
        if (rv != SAGA_EMAPFULL || ++tries > MAPFULL_RETRIES)
            break;
        rv = saga__store_grow(&svc->store);
        SAGA__LOG(&svc->log, SAGA_LOG_INFO, "event=map_grow size=%zu", svc->store.map_size);
        if (rv != SAGA_OK)
            break;
    }
    if (rv != SAGA_OK) {
        saga__log_flush();
        SAGA__LOG(&svc->log, SAGA_LOG_ERROR,
                  "event=batch_failed messages=%zu error=\"%s\" detail=\"%s\"", b->n,
                  saga_strerror(rv), svc->store.err);
        saga__outlist_truncate(&svc->out, 0);
        finish_messages(svc, b, 0);
        return rv;
    }
    saga__log_flush();
    svc->nsent = 0;
    b->commit_no = svc->store.committed;
    /* The batch keeps its outbox list until it is released; the next
     * batch's handlers emit into the other one. */
    saga__outlist t = b->out;
    b->out = svc->out;
    svc->out = t;
    b->d.commits = 1;
    b->d.flushes = (uint64_t)svc->store.commit_flushes;
    /* The counters as the commit wrote them; the figures for /metrics, read
     * from the copy made under the lock the counters take anyway. */
    if (b->n > 0)
        saga__hist_observe(&b->m.batch_size, (double)b->n);
    saga__metrics_merge(&svc->mx, &b->m);
    pthread_mutex_lock(&svc->stats_mu);
    add_stats(&svc->stats, &b->d);
    saga__metrics_copy(&svc->mx_pub, &svc->mx);
    pthread_mutex_unlock(&svc->stats_mu);
    memset(&b->d, 0, sizeof(b->d));
    /* Only batches that handled events are crash points. Idle housekeeping
     * commits are not, and neither are command-only batches: the command
     * that sets crash=after_commit:1 must be answered, and the crash come
     * with the next batch of events. */
    b->eventful = 0;
    for (size_t i = 0; i < b->n; i++)
        b->eventful |= b->in[i].sub != NULL;
    if (b->eventful)
        saga__crash_point(&svc->faults.crash, SAGA_CRASH_AFTER_COMMIT, &svc->store);
    return SAGA_OK;
}

/* Whether a committed batch has anything to publish or acknowledge. */
static int has_effects(const batch *b)
{
    return b->n > 0 || b->out.n > 0;
}

/* Releases a committed batch: publishes its outbox entries, then
 * acknowledges its messages and answers its commands, never before its
 * commit is on the disk (SAGA__SYNC_SHARED: the next commit's flush made
 * it so, or one here). On failure nothing is acknowledged; the outbox
 * keeps what was not published for the next start. */
static saga_status release_batch(saga_service *svc, batch *b)
{
    saga_status rv = SAGA_OK;
    int flushes = 0;
    if (has_effects(b) && svc->store.durable < b->commit_no)
        rv = saga__store_sync(&svc->store, &flushes);
    b->d.flushes += (uint64_t)flushes;
    int timed = rv == SAGA_OK && b->out.n > 0;
    double t0 = mono_s();
    if (rv == SAGA_OK)
        rv = publish_outbox(svc, &b->out, &b->d);
    saga__outlist_truncate(&b->out, 0);
    /* The figures for /metrics are the service thread's; the copy a scrape
     * reads is made under the lock the counters take anyway. */
    if (timed && rv == SAGA_OK)
        saga__hist_observe(&svc->mx.publish_s, mono_s() - t0);
    pthread_mutex_lock(&svc->stats_mu);
    add_stats(&svc->stats, &b->d);
    if (timed && rv == SAGA_OK)
        saga__metrics_copy(&svc->mx_pub, &svc->mx);
    pthread_mutex_unlock(&svc->stats_mu);
    memset(&b->d, 0, sizeof(b->d));
    if (rv != SAGA_OK) {
        /* Stopping while the broker is away: the outbox keeps it for the next start. */
        SAGA__LOG(&svc->log, SAGA_LOG_WARN, "event=release_failed messages=%zu error=\"%s\"", b->n,
                  saga_strerror(rv));
        finish_messages(svc, b, 0);
    } else {
        if (b->eventful)
            saga__crash_point(&svc->faults.crash, SAGA_CRASH_AFTER_PUBLISH, &svc->store);
        finish_messages(svc, b, 1);
        if (b->eventful && strcmp(svc->faults.crash.point, SAGA_CRASH_AFTER_ACK) == 0) {
            saga__transport_send_now(svc); /* the acks reach the broker before the crash */
            saga__crash_point(&svc->faults.crash, SAGA_CRASH_AFTER_ACK, &svc->store);
        }
    }
    b->n = 0;
    b->eventful = 0;
    return rv;
}

/* Commits b and releases it at once, making it durable first if it is not
 * (SAGA__SYNC_SHARED: one flush); pend, committed before b and not yet
 * released, goes first. */
static void process_now(saga_service *svc, batch *b, batch **pend)
{
    saga_status rv = commit_batch(svc, b);
    if (*pend != NULL) {
        release_batch(svc, *pend);
        *pend = NULL;
    }
    if (rv == SAGA_OK)
        release_batch(svc, b);
}

/* Publishes what a previous run committed but did not get to publish. */
static saga_status flush_leftover_outbox(saga_service *svc)
{
    MDB_txn *txn;
    saga_status rv = saga__store_begin_read(&svc->store, &txn);
    if (rv != SAGA_OK)
        return rv;
    saga__outlist_truncate(&svc->out, 0);
    rv = saga__outbox_load(&svc->store, txn, &svc->out);
    mdb_txn_abort(txn);
    if (rv == SAGA_OK && svc->out.n > 0) {
        SAGA__LOG(&svc->log, SAGA_LOG_INFO, "event=outbox_recovered messages=%zu", svc->out.n);
        saga_stats d;
        memset(&d, 0, sizeof(d));
        rv = publish_outbox(svc, &svc->out, &d);
        pthread_mutex_lock(&svc->stats_mu);
        add_stats(&svc->stats, &d);
        pthread_mutex_unlock(&svc->stats_mu);
    }
    saga__outlist_truncate(&svc->out, 0);
    return rv;
}

/* A batch's buffers for up to cap messages. Returns 0 or -1. */
static int batch_init(batch *b, size_t cap)
{
    memset(b, 0, sizeof(*b));
    b->in = calloc(cap, sizeof(*b->in));
    b->res = calloc(cap, sizeof(*b->res));
    saga__outlist_init(&b->out);
    return b->in != NULL && b->res != NULL ? 0 : -1;
}

static void batch_cleanup(batch *b)
{
    free(b->in);
    free(b->res);
    saga__outlist_cleanup(&b->out);
}

/* Benchmark mode: the same work as one batch, one commit and release per message. */
static void process_each(saga_service *svc, batch *b, batch **pend)
{
    batch one = {0};
    saga__outlist_init(&one.out);
    for (size_t i = 0; i < b->n; i++) {
        one.in = &b->in[i];
        one.res = &b->res[i];
        one.n = 1;
        process_now(svc, &one, pend);
    }
    saga__outlist_cleanup(&one.out);
    b->n = 0;
}

saga_status saga__loop_run(saga_service *svc)
{
    size_t cap = (size_t)svc->cfg.batch_max;
    /* Two batches: while one waits for the flush that makes its commit
     * durable (pend), the next is handled and committed in the other. */
    batch bufs[2], *b = &bufs[0], *pend = NULL;
    saga_status rv;

    int nomem = batch_init(&bufs[0], cap) != 0;
    nomem |= batch_init(&bufs[1], cap) != 0;
    if (nomem) {
        rv = saga__fail(svc, SAGA_ENOMEM, "batch buffers");
        goto out;
    }
    rv = flush_leftover_outbox(svc);
    if (rv != SAGA_OK)
        goto out;
    svc->next_timer_ms = 0; /* look at the timers once at start: some may be overdue */
    rv = saga__transport_subscribe(svc);
    if (rv != SAGA_OK)
        goto out;
    SAGA__LOG(&svc->log, SAGA_LOG_INFO, "event=ready subscriptions=%d commands=%d", svc->nsubs,
              svc->ncmds);
    saga__log_hold(1); /* the batch's lines go out in one write after its commit */
    svc->next_check_ms = saga__now_ms() + CHECK_INTERVAL_MS;

    while (!atomic_load(&svc->stop)) {
        int64_t now = saga__now_ms();
        int64_t wait = IDLE_WAIT_MS;
        if (svc->next_timer_ms - now < wait)
            wait = svc->next_timer_ms > now ? svc->next_timer_ms - now : 0;
        if (svc->nsent > 0 && wait > SENT_LINGER_MS)
            wait = SENT_LINGER_MS;
        if (pend != NULL)
            wait = 0; /* nothing more at hand: make pend durable now, not later */
        b->n = saga__queue_take(&svc->q, b->in, cap, wait);
        now = saga__now_ms();
        if (now >= svc->next_check_ms) {
            /* A deleted consumer or stream fails silently: look for it. */
            saga__transport_check(svc);
            saga__log_flush();
            svc->next_check_ms = saga__now_ms() + CHECK_INTERVAL_MS;
            now = saga__now_ms();
        }
        int work =
            b->n > 0 || svc->nsent > 0 || now >= svc->next_timer_ms || now >= svc->next_prune_ms;
        if (!work && pend == NULL)
            continue;
        atomic_store(&svc->inflight, (int)(b->n + (pend != NULL ? pend->n : 0)));
        if (svc->cfg.commit_per_message && b->n > 1) {
            process_each(svc, b, &pend);
        } else if (!work) {
            release_batch(svc, pend); /* an explicit flush: idle, no commit to carry it */
            pend = NULL;
        } else {
            /* This commit's flush makes pend's commit durable: release it
             * after, and keep this batch for the next flush. */
            saga_status crv = commit_batch(svc, b);
            if (pend != NULL)
                release_batch(svc, pend);
            pend = NULL;
            if (crv == SAGA_OK && (!has_effects(b) || svc->store.durable >= b->commit_no)) {
                release_batch(svc, b);
            } else if (crv == SAGA_OK) {
                pend = b;
                b = b == &bufs[0] ? &bufs[1] : &bufs[0];
            }
        }
        atomic_store(&svc->inflight, pend != NULL ? (int)pend->n : 0);
        saga__log_flush();
    }
    rv = SAGA_OK;

out:
    if (pend != NULL)
        release_batch(svc, pend);
    saga__log_hold(0);
    /* Stop taking messages; what is still queued goes back to the broker. */
    saga__transport_unsubscribe(svc);
    if (svc->tp.nc != NULL)
        natsConnection_FlushTimeout(svc->tp.nc, 2000);
    for (;;) {
        size_t n = b->in ? saga__queue_take(&svc->q, b->in, cap, 0) : 0;
        if (n == 0)
            break;
        for (size_t i = 0; i < n; i++) {
            if (b->in[i].sub != NULL)
                natsMsg_Nak(b->in[i].msg, NULL);
            natsMsg_Destroy(b->in[i].msg);
        }
    }
    if (rv == SAGA_OK && svc->nsent > 0) {
        b->n = 0;
        process_now(svc, b, &pend); /* deletes the published outbox entries */
    }
    batch_cleanup(&bufs[0]);
    batch_cleanup(&bufs[1]);
    return rv;
}
