/* trace.c - One order's history (trace: asked of the history read model, or
 * read back from the stream when no history participant runs) and every
 * order's events as they happen (watch: a plain core NATS subscription), with
 * compensations and failures marked. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.pb-c.h"
#include "ctl.h"
#include "events.pb-c.h"

/* Appends the human line of one event: when, what, who, its span (when
 * trace_id is not NULL: "-" without a trace context, and the trace id too
 * when it is not trace_id), mark, summary. */
static void event_line(ctl_buf *b, const char *when, const saga_event *ev, int with_order,
                       const char *trace_id)
{
    const char *mark = ctl_mark_label(ctl_event_mark(ev->type));
    saga_traceparent tp;
    ctl_buf_printf(b, "%s  ", when);
    if (with_order)
        ctl_buf_printf(b, "%-26s  ", ev->order_id);
    ctl_buf_printf(b, "%-20s %-13s ", ev->type, ev->producer);
    if (trace_id != NULL) {
        int ok = saga_traceparent_parse(ev->trace, &tp);
        ctl_buf_printf(b, "%-16s ", ok ? tp.span_id : "-");
        if (ok && strcmp(tp.trace_id, trace_id) != 0)
            ctl_buf_printf(b, "(trace %s) ", tp.trace_id);
    }
    ctl_buf_printf(b, "%-12s ", mark);
    ctl_event_summary(b, ev);
    ctl_buf_puts(b, "\n");
}

typedef struct trace_state {
    int json;
    uint64_t n, compensations, failures;
    int64_t first_ms;
    char final_state[16];
    char trace_id[33]; /* the first event's, "" without one */
    char reason[64];
    ctl_buf out;
} trace_state;

static int on_trace_event(const saga_event *ev, uint64_t seq, int64_t stored_ms, void *udata)
{
    trace_state *t = udata;
    (void)stored_ms;
    if (t->n == 0)
        t->first_ms = ev->time_ms;
    int64_t offset = ev->time_ms - t->first_ms;
    ctl_mark mk = ctl_event_mark(ev->type);
    t->compensations += mk == CTL_MARK_COMPENSATION;
    t->failures += mk == CTL_MARK_FAILURE;

    /* The last of placed/confirmed/cancelled is the order's state, as the
     * order service itself decided it. */
    if (strcmp(ev->type, "order.placed") == 0) {
        snprintf(t->final_state, sizeof(t->final_state), "PENDING");
    } else if (strcmp(ev->type, "order.confirmed") == 0) {
        snprintf(t->final_state, sizeof(t->final_state), "CONFIRMED");
        t->reason[0] = '\0';
    } else if (strcmp(ev->type, "order.cancelled") == 0) {
        snprintf(t->final_state, sizeof(t->final_state), "CANCELLED");
        Saga__V1__OrderCancelled *p =
            saga__v1__order_cancelled__unpack(NULL, ev->payload_len, ev->payload);
        snprintf(t->reason, sizeof(t->reason), "%s", p != NULL ? p->reason : "");
        saga__v1__order_cancelled__free_unpacked(p, NULL);
    }

    ctl_buf_reset(&t->out);
    if (t->json) {
        json_t *j = ctl_event_json(ev, seq, &offset);
        ctl_buf_puts(&t->out, t->n == 0 ? "[\n  " : ",\n  ");
        ctl_buf_json(&t->out, j);
        json_decref(j);
    } else {
        char when[32];
        if (t->n == 0) {
            saga_traceparent tp;
            snprintf(t->trace_id, sizeof(t->trace_id), "%s",
                     saga_traceparent_parse(ev->trace, &tp) ? tp.trace_id : "");
            time_t sec = (time_t)(ev->time_ms / 1000);
            struct tm tm;
            char stamp[32] = "?";
            if (localtime_r(&sec, &tm) != NULL)
                strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
            ctl_buf_printf(&t->out, "order %s, trace %s, first event at %s.%03d\n", ev->order_id,
                           t->trace_id[0] != '\0' ? t->trace_id : "-", stamp,
                           (int)(ev->time_ms % 1000));
            ctl_buf_printf(&t->out, "%11s  %-20s %-13s %s\n", "", "event", "producer", "span");
        }
        snprintf(when, sizeof(when), "%+9lldms", (long long)offset);
        event_line(&t->out, when, ev, 0, t->trace_id);
    }
    if (!ctl_buf_ok(&t->out)) {
        ctl_err("trace", "out of memory");
        return -1;
    }
    /* Printed as it comes, so a long history shows progress by itself. */
    fputs(ctl_buf_str(&t->out), stdout);
    t->n++;
    return 0;
}

int ctl_history_read(ctl_conn *c, const char *cmd, const char *id, ctl_stream_fn fn, void *udata,
                     uint64_t *bad)
{
    natsMsg *reply = NULL;
    natsStatus s =
        ctl_request(c, CTL_HISTORY_SUBJECT, id, strlen(id), CTL_QUERY_TIMEOUT_MS, &reply);
    if (s != NATS_OK) {
        natsMsg_Destroy(reply);
        return 0;
    }
    Saga__V1__OrderHistory *h = saga__v1__order_history__unpack(
        NULL, (size_t)natsMsg_GetDataLength(reply), (const uint8_t *)natsMsg_GetData(reply));
    natsMsg_Destroy(reply);
    if (h == NULL) {
        ctl_err(cmd, "the history participant's answer does not decode");
        return -1;
    }
    int rc = 1;
    for (size_t i = 0; i < h->n_events && rc == 1; i++) {
        saga_event ev;
        void *owner = NULL;
        if (saga_event_decode(h->events[i].data, h->events[i].len, &ev, &owner, NULL, 0) !=
            SAGA_OK) {
            (*bad)++;
            continue;
        }
        uint64_t seq = i < h->n_stream_seqs ? h->stream_seqs[i] : 0;
        if (fn(&ev, seq, 0, udata) != 0)
            rc = -1;
        free(owner);
    }
    if (h->truncated)
        ctl_err(cmd, "the history keeps part of this order's events only (truncated)");
    saga__v1__order_history__free_unpacked(h, NULL);
    return rc;
}

/* Passes on the events of one order only: a partition holds other orders too. */
typedef struct order_filter {
    const char *id;
    ctl_stream_fn fn;
    void *udata;
} order_filter;

static int only_order(const saga_event *ev, uint64_t seq, int64_t stored_ms, void *udata)
{
    const order_filter *f = udata;
    return strcmp(ev->order_id, f->id) == 0 ? f->fn(ev, seq, stored_ms, f->udata) : 0;
}

int ctl_order_events(ctl_conn *c, const char *cmd, const char *id, int progress, ctl_stream_fn fn,
                     void *udata, ctl_stream_result *res, int *from_history)
{
    char filter[64];
    order_filter f = {id, fn, udata};
    memset(res, 0, sizeof(*res));
    int hist = ctl_history_read(c, cmd, id, fn, udata, &res->undecodable);
    *from_history = hist > 0;
    if (hist != 0)
        return hist > 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
    snprintf(filter, sizeof(filter), SAGA_SUBJ_PARTITION_FMT, saga_partition_of(id));
    return ctl_stream_read(c, cmd, filter, progress, only_order, &f, res);
}

static const char trace_help[] =
    "usage: sagactl trace ORDER_ID [--json] [--url URL]\n\n"
    "Prints the order's event timeline, as the history read model (participant\n"
    "history, query " CTL_HISTORY_SUBJECT ") indexed it, or read back from the stream\n"
    "SAGA_EVENTS when no history participant runs: time since the first event, type,\n"
    "producer, span id (W3C trace context: each event is a span of the order's trace,\n"
    "whose id heads the list; its parent is the span of the event it reacts to) and a\n"
    "summary of the payload. Compensations (payment.refunded, inventory.released,\n"
    "shipping.cancelled) are marked COMPENSATION; failures (declined, rejected,\n"
    "failed, vetoed, order.cancelled) FAILURE. --json prints an array of events\n"
    "with every envelope field and the decoded payload. Exit 1 if the order has\n"
    "no events.\n";

int ctl_cmd_trace(const char *url, int argc, char **argv)
{
    trace_state t;
    ctl_stream_result res;
    ctl_conn c = {0};
    int rc, hist = 0;

    memset(&t, 0, sizeof(t));
    rc = ctl_parse_opts("trace", trace_help, argc, argv, &url, &t.json, NULL);
    if (rc != CTL_EXIT_OK)
        return rc < 0 ? CTL_EXIT_OK : rc;
    if (argc - optind != 1) {
        ctl_err("trace", "want exactly one ORDER_ID (see sagactl trace --help)");
        return CTL_EXIT_USAGE;
    }
    const char *id = argv[optind];
    /* The id goes into a subject filter: a wildcard or dot in it would read
     * other orders' events. */
    if (!saga_valid_order_id(id)) {
        ctl_err("trace", "'%s' is not an order id ([A-Za-z0-9_-]{1,64})", id);
        return CTL_EXIT_USAGE;
    }
    rc = ctl_connect(&c, "trace", url, 0, 0);
    if (rc != CTL_EXIT_OK)
        return rc;
    ctl_buf_init(&t.out);
    rc = ctl_order_events(&c, "trace", id, 1, on_trace_event, &t, &res, &hist);
    if (rc != CTL_EXIT_OK)
        goto out;
    if (t.n == 0) {
        ctl_err("trace", "no such order: no events for %s in %s%s", id,
                hist ? "the history" : CTL_STREAM,
                res.stream_missing ? " (the stream does not exist yet)" : "");
        rc = CTL_EXIT_FAIL;
        goto out;
    }
    if (t.json) {
        fputs("\n]\n", stdout);
    } else {
        printf("%llu events, %llu compensations, %llu failures; state %s%s%s%s\n",
               (unsigned long long)t.n, (unsigned long long)t.compensations,
               (unsigned long long)t.failures, t.final_state[0] ? t.final_state : "unknown",
               t.reason[0] ? " (" : "", t.reason, t.reason[0] ? ")" : "");
    }
    if (res.undecodable > 0)
        ctl_err("trace", "%llu messages on the order's subjects are not valid events (skipped)",
                (unsigned long long)res.undecodable);
out:
    ctl_buf_cleanup(&t.out);
    ctl_disconnect(&c);
    return rc;
}

static volatile sig_atomic_t watch_stop;

static void on_watch_signal(int sig)
{
    (void)sig;
    watch_stop = 1;
}

static const char watch_help[] =
    "usage: sagactl watch [--order ORDER_ID] [--json] [--url URL]\n\n"
    "Prints one line per event as it is published (core NATS subscription on\n"
    "evt.>, or on one order's partition with --order, keeping that order's events),\n"
    "until Ctrl-C: event time,\n"
    "order id, type, producer, COMPENSATION/FAILURE mark and a summary. --json\n"
    "prints one JSON object per line. Events published while watch is not\n"
    "running are not shown: use trace for history.\n";

int ctl_cmd_watch(const char *url, int argc, char **argv)
{
    natsSubscription *sub = NULL;
    const char *order = NULL;
    char subject[128];
    int json = 0, rc;
    const ctl_option opts[] = {{"json", NULL, &json}, {"order", &order, NULL}, {"url", &url, NULL}};
    ctl_conn c = {0};
    ctl_buf b;

    rc = ctl_parse_options("watch", watch_help, argc, argv, opts, sizeof(opts) / sizeof(opts[0]));
    if (rc != CTL_EXIT_OK)
        return rc < 0 ? CTL_EXIT_OK : rc;
    if (optind < argc) {
        ctl_err("watch", "unexpected argument '%s' (see sagactl watch --help)", argv[optind]);
        return CTL_EXIT_USAGE;
    }
    if (order != NULL && !saga_valid_order_id(order)) {
        ctl_err("watch", "'%s' is not an order id ([A-Za-z0-9_-]{1,64})", order);
        return CTL_EXIT_USAGE;
    }
    /* One order: its partition, and of that only the messages whose
     * Saga-Order-Id header names it. */
    if (order != NULL)
        snprintf(subject, sizeof(subject), SAGA_SUBJ_PARTITION_FMT, saga_partition_of(order));
    else
        snprintf(subject, sizeof(subject), "%s", SAGA_SUBJ_EVENTS_ALL);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_watch_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    /* watch is meant to outlive a broker restart, so it reconnects. */
    rc = ctl_connect(&c, "watch", url, 0, 1);
    if (rc != CTL_EXIT_OK)
        return rc;
    ctl_buf_init(&b);
    natsStatus s = natsConnection_SubscribeSync(&sub, c.nc, subject);
    if (s == NATS_OK)
        s = natsConnection_Flush(c.nc);
    if (s != NATS_OK) {
        ctl_err("watch", "cannot subscribe to %s: %s", subject, natsStatus_GetText(s));
        rc = CTL_EXIT_UNREACHABLE;
        goto out;
    }
    /* Subscriptions buffer in cnats; a slow terminal shows up as an async
     * "slow consumer" error, not as a stall of the publishers. */
    if (!json)
        fprintf(stderr, "sagactl watch: watching %s on %s (Ctrl-C to stop)\n", subject, url);
    fflush(stderr);
    while (!watch_stop) {
        natsMsg *m = NULL;
        s = natsSubscription_NextMsg(&m, sub, 250);
        if (s == NATS_TIMEOUT)
            continue;
        if (s != NATS_OK) {
            if (watch_stop)
                break;
            ctl_err("watch", "subscription ended: %s", natsStatus_GetText(s));
            rc = CTL_EXIT_UNREACHABLE;
            goto out;
        }
        saga_event ev;
        void *owner = NULL;
        const char *of = NULL;
        if (order != NULL && (natsMsgHeader_Get(m, SAGA_HDR_ORDER_ID, &of) != NATS_OK ||
                              of == NULL || strcmp(of, order) != 0)) {
            natsMsg_Destroy(m);
            continue;
        }
        ctl_buf_reset(&b);
        if (saga_event_decode((const uint8_t *)natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m),
                              &ev, &owner, NULL, 0) == SAGA_OK &&
            (order == NULL || strcmp(ev.order_id, order) == 0)) {
            if (json) {
                json_t *j = ctl_event_json(&ev, 0, NULL);
                ctl_buf_json(&b, j);
                ctl_buf_puts(&b, "\n");
                json_decref(j);
            } else {
                time_t sec = (time_t)(ev.time_ms / 1000);
                struct tm tm;
                char when[32] = "?";
                if (localtime_r(&sec, &tm) != NULL) {
                    char hms[16];
                    strftime(hms, sizeof(hms), "%H:%M:%S", &tm);
                    snprintf(when, sizeof(when), "%s.%03d", hms, (int)(ev.time_ms % 1000));
                }
                event_line(&b, when, &ev, 1, NULL);
            }
            free(owner);
        } else if (!json) {
            ctl_buf_printf(&b, "(not an event on %s, %d bytes)\n", natsMsg_GetSubject(m),
                           natsMsg_GetDataLength(m));
        }
        natsMsg_Destroy(m);
        fputs(ctl_buf_str(&b), stdout);
        fflush(stdout);
    }
    rc = CTL_EXIT_OK;
out:
    if (sub != NULL) {
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
    }
    ctl_buf_cleanup(&b);
    ctl_disconnect(&c);
    return rc;
}
