/* stream.c - Reads a stream (SAGA_EVENTS, SAGA_DLQ) from its first message with
 * an ordered push consumer (ephemeral, flow-controlled, gap-free: cnats
 * recreates it on a gap) and hands each message, or each decoded event, to a
 * callback. Used by trace, stats, audit and dlq. Ordered consumers are
 * push-only in cnats 3.4.1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#define PROGRESS_EVERY 10000
/* With messages known to match, the first one comes as soon as the server
 * has created the consumer; later ones follow flow control. A stall this long
 * means the server or the connection is in trouble. */
#define FIRST_MSG_WAIT_MS 5000
#define NEXT_MSG_WAIT_MS 5000
/* When we cannot know in advance whether anything matches the filter, a
 * short wait tells "nothing" from "not yet". */
#define MAYBE_EMPTY_WAIT_MS 1500
#define PENDING_BYTES_MAX (256 * 1024 * 1024)

/* Asks the stream how many messages it holds; for a filter naming one order
 * it also counts the matching ones, which is cheap because the server only
 * lists the few subjects of that order. *matching is UINT64_MAX when unknown. */
static int stream_counts(ctl_conn *c, const char *cmd, const char *stream, const char *filter,
                         int exact, uint64_t *total, uint64_t *matching, int *missing)
{
    jsStreamInfo *si = NULL;
    jsOptions o;
    jsErrCode jerr = 0;
    int rc = CTL_EXIT_OK;

    jsOptions_Init(&o);
    if (exact)
        o.Stream.Info.SubjectsFilter = filter;
    natsStatus s = js_GetStreamInfo(&si, c->js, stream, &o, &jerr);
    *missing = 0;
    *total = 0;
    *matching = UINT64_MAX;
    if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
        *missing = 1;
        *matching = 0;
        goto out;
    }
    if (s != NATS_OK) {
        ctl_err(cmd, "cannot read stream %s at %s: %s%s%s", stream, c->url, natsStatus_GetText(s),
                nats_GetLastError(NULL) ? ": " : "",
                nats_GetLastError(NULL) ? nats_GetLastError(NULL) : "");
        rc = s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS ? CTL_EXIT_UNREACHABLE : CTL_EXIT_FAIL;
        goto out;
    }
    *total = si->State.Msgs;
    if (exact) {
        uint64_t n = 0;
        for (int i = 0; si->State.Subjects != NULL && i < si->State.Subjects->Count; i++)
            n += si->State.Subjects->List[i].Msgs;
        *matching = n;
    } else if (*total == 0) {
        *matching = 0;
    }
out:
    jsStreamInfo_Destroy(si);
    return rc;
}

int ctl_stream_count(ctl_conn *c, const char *cmd, const char *stream, const char *filter,
                     uint64_t *n, int *missing)
{
    uint64_t total = 0, matching = 0;
    int rc = stream_counts(c, cmd, stream, filter, filter != NULL, &total, &matching, missing);
    *n = filter != NULL ? matching : total;
    if (*n == UINT64_MAX)
        *n = 0;
    return rc;
}

/* A filter that names a single order ends in a literal token; those are the
 * reads where the per-subject count is small enough to ask for. */
static int names_one_order(const char *filter)
{
    const char *last = strrchr(filter, '.');
    last = last != NULL ? last + 1 : filter;
    return strcmp(last, ">") != 0 && strcmp(last, "*") != 0;
}

int ctl_stream_read_msgs(ctl_conn *c, const char *cmd, const char *stream, const char *filter,
                         int progress, ctl_msg_fn fn, void *udata, ctl_stream_result *res)
{
    natsSubscription *sub = NULL;
    jsSubOptions so;
    uint64_t total = 0, matching = 0;
    int rc;

    memset(res, 0, sizeof(*res));
    rc = stream_counts(c, cmd, stream, filter, names_one_order(filter), &total, &matching,
                       &res->stream_missing);
    if (rc != CTL_EXIT_OK || matching == 0)
        return rc;

    jsSubOptions_Init(&so);
    so.Stream = stream;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverAll;
    natsStatus s = js_SubscribeSync(&sub, c->js, filter, NULL, &so, NULL);
    if (s != NATS_OK) {
        ctl_err(cmd, "cannot read stream %s: %s%s%s", stream, natsStatus_GetText(s),
                nats_GetLastError(NULL) ? ": " : "",
                nats_GetLastError(NULL) ? nats_GetLastError(NULL) : "");
        return CTL_EXIT_FAIL;
    }
    /* The server's flow control bounds what is in flight; the client's own
     * default cap (65,536 messages) is below that window for small events,
     * and a message dropped there would stall the read. */
    natsSubscription_SetPendingLimits(sub, -1, PENDING_BYTES_MAX);
    for (;;) {
        natsMsg *m = NULL;
        int64_t wait = NEXT_MSG_WAIT_MS;
        if (res->messages == 0)
            wait = matching == UINT64_MAX ? MAYBE_EMPTY_WAIT_MS : FIRST_MSG_WAIT_MS;
        s = natsSubscription_NextMsg(&m, sub, wait);
        if (s == NATS_TIMEOUT && res->messages == 0 && matching == UINT64_MAX)
            break; /* nothing matches the filter */
        if (s != NATS_OK) {
            ctl_err(cmd, "reading stream %s stalled after %llu messages: %s", stream,
                    (unsigned long long)res->messages, natsStatus_GetText(s));
            rc = CTL_EXIT_FAIL;
            goto out;
        }
        jsMsgMetaData *meta = NULL;
        uint64_t pending = 0, seq = 0;
        int64_t time_ns = 0;
        if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
            pending = meta->NumPending;
            seq = meta->Sequence.Stream;
            time_ns = meta->Timestamp;
            jsMsgMetaData_Destroy(meta);
        }
        res->messages++;
        int stop = fn(m, seq, time_ns, udata);
        natsMsg_Destroy(m);
        /* Whether a read is long enough for progress lines is only known
         * once messages flow: every 10,000 says how far it has come. */
        if (progress && res->messages % PROGRESS_EVERY == 0)
            fprintf(stderr, "sagactl %s: read %llu of %llu messages\n", cmd,
                    (unsigned long long)res->messages,
                    (unsigned long long)(res->messages + pending));
        if (stop < 0) {
            rc = CTL_EXIT_FAIL; /* the callback has said why */
            goto out;
        }
        if (stop > 0 || pending == 0)
            break;
    }
    if (progress && res->messages >= PROGRESS_EVERY)
        fprintf(stderr, "sagactl %s: read %llu messages, done\n", cmd,
                (unsigned long long)res->messages);
out:
    /* Unsubscribe before destroy so no message is being delivered to a
     * subscription being freed (cnats #637). */
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    return rc;
}

typedef struct decoding {
    ctl_stream_fn fn;
    void *udata;
    ctl_stream_result *res;
} decoding;

/* 1 when the envelope's producer is the one its type names ("payment" for
 * payment.charged), as consumers demand before they act on it. */
static int own_type(const saga_event *ev)
{
    size_t n = strcspn(ev->type, ".");
    return strlen(ev->producer) == n && strncmp(ev->producer, ev->type, n) == 0;
}

/* A stream entry is one of the saga's events only when its envelope decodes,
 * it sits on the subject its envelope names (evt.<partition>.<type>), its
 * producer may emit its type and its payload is well formed for its type:
 * anything else (garbage published on evt.>, another participant's type) is
 * counted apart, never as an order, as the consumers dead-letter it. */
static int decode_one(natsMsg *m, uint64_t seq, int64_t time_ns, void *udata)
{
    decoding *d = udata;
    saga_event ev;
    void *owner = NULL;
    char subject[SAGA_TYPE_MAX + SAGA_ORDER_ID_MAX + 8];
    int rc = 0;
    if (saga_event_decode((const uint8_t *)natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m),
                          &ev, &owner, NULL, 0) != SAGA_OK ||
        saga_event_subject(ev.type, ev.order_id, subject, sizeof(subject)) != SAGA_OK ||
        strcmp(subject, natsMsg_GetSubject(m)) != 0 || !own_type(&ev) ||
        !ctl_event_well_formed(&ev)) {
        d->res->undecodable++;
        goto out;
    }
    rc = d->fn(&ev, seq, time_ns / 1000000, d->udata);
out:
    free(owner);
    return rc;
}

int ctl_stream_read(ctl_conn *c, const char *cmd, const char *filter, int progress,
                    ctl_stream_fn fn, void *udata, ctl_stream_result *res)
{
    ctl_stream_result inner;
    decoding d = {fn, udata, res};
    /* The adapter counts undecodable messages into res; the reader fills
     * its own copy, merged afterwards so neither overwrites the other. */
    memset(res, 0, sizeof(*res));
    int rc = ctl_stream_read_msgs(c, cmd, CTL_STREAM, filter, progress, decode_one, &d, &inner);
    res->messages = inner.messages;
    res->stream_missing = inner.stream_missing;
    return rc;
}
