/* dlq.c - The dead-letter stream SAGA_DLQ: list what the services set aside
 * (with the reason the runtime gave), and replay dead letters onto their
 * original subject once the cause is fixed. Replaying is safe by design: a
 * service that already handled the event drops it by its inbox. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"

#define DLQ_STREAM "SAGA_DLQ"
#define MAX_REPLAY 100000 /* bounds --all */

static const char *header(natsMsg *m, const char *key)
{
    const char *v = NULL;
    if (natsMsgHeader_Get(m, key, &v) != NATS_OK || v == NULL)
        return "";
    return v;
}

typedef struct dlq_list {
    int json;
    int print;   /* list: print each dead letter */
    int collect; /* replay --all: gather sequence numbers */
    uint64_t n;
    ctl_buf out;
    uint64_t *seqs;
    size_t nseqs, cap;
} dlq_list;

static void add_line(dlq_list *l, natsMsg *m, uint64_t seq, int64_t time_ns)
{
    saga_event ev;
    void *owner = NULL;
    int decoded =
        saga_event_decode((const uint8_t *)natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m),
                          &ev, &owner, NULL, 0) == SAGA_OK;
    long long deliveries = 0;
    ctl_parse_ll(header(m, "Saga-Deliveries"), 0, 1000000, &deliveries);
    int64_t ms = time_ns / 1000000;
    ctl_buf *b = &l->out;
    if (l->json) {
        ctl_buf_puts(b, l->n == 0 ? "[\n  {" : ",\n  {");
        ctl_json_key(b, 1, "seq");
        ctl_buf_printf(b, "%llu", (unsigned long long)seq);
        ctl_json_key(b, 0, "time_unix_ms");
        ctl_buf_printf(b, "%lld", (long long)ms);
        ctl_json_key(b, 0, "service");
        ctl_json_str(b, header(m, "Saga-Service"));
        ctl_json_key(b, 0, "deliveries");
        ctl_buf_printf(b, "%lld", deliveries);
        ctl_json_key(b, 0, "subject");
        ctl_json_str(b, header(m, "Saga-Subject"));
        ctl_json_key(b, 0, "reason");
        ctl_json_str(b, header(m, "Saga-Reason"));
        ctl_json_key(b, 0, "event");
        if (decoded)
            ctl_event_json(b, &ev, 0, NULL);
        else
            ctl_buf_puts(b, "null");
        ctl_buf_puts(b, "}");
    } else {
        time_t sec = (time_t)(ms / 1000);
        struct tm tm;
        char when[32] = "?";
        if (localtime_r(&sec, &tm) != NULL)
            strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
        ctl_buf_printf(b, "#%llu  %s  %s  deliveries=%lld  %s\n", (unsigned long long)seq, when,
                       header(m, "Saga-Service"), deliveries, header(m, "Saga-Subject"));
        if (decoded)
            ctl_buf_printf(b, "    event %s %s of order %s\n", ev.event_id, ev.type, ev.order_id);
        else
            ctl_buf_printf(b, "    not a valid event (%d bytes)\n", natsMsg_GetDataLength(m));
        ctl_buf_printf(b, "    reason: %s\n", header(m, "Saga-Reason"));
    }
    free(owner);
}

static int on_dead_letter(natsMsg *m, uint64_t seq, int64_t time_ns, void *udata)
{
    dlq_list *l = udata;
    if (l->collect) {
        if (l->nseqs == l->cap) {
            size_t cap = l->cap ? l->cap * 2 : 64;
            uint64_t *v = cap <= MAX_REPLAY ? realloc(l->seqs, cap * sizeof(*v)) : NULL;
            if (v == NULL) {
                ctl_err("dlq", "too many dead letters to replay at once (%zu)", l->nseqs);
                return -1;
            }
            l->seqs = v;
            l->cap = cap;
        }
        l->seqs[l->nseqs++] = seq;
    }
    if (l->print) {
        ctl_buf_reset(&l->out);
        add_line(l, m, seq, time_ns);
        if (!ctl_buf_ok(&l->out)) {
            ctl_err("dlq", "out of memory");
            return -1;
        }
        fputs(ctl_buf_str(&l->out), stdout);
    }
    l->n++;
    return 0;
}

/* Replays one dead letter: the original bytes onto the original subject,
 * under a message id of its own so that replaying twice within the broker's
 * duplicate window publishes once. Then deletes it unless keep. */
static int replay_one(ctl_conn *c, uint64_t seq, int keep)
{
    natsMsg *m = NULL;
    jsPubAck *pa = NULL;
    jsPubOptions po;
    jsErrCode jerr = 0;
    char msg_id[64];
    int rc = CTL_EXIT_FAIL;

    natsStatus s = js_GetMsg(&m, c->js, DLQ_STREAM, seq, NULL, &jerr);
    if (s != NATS_OK) {
        ctl_err("dlq", "#%llu: cannot read it: %s", (unsigned long long)seq,
                s == NATS_NOT_FOUND ? "no such dead letter" : natsStatus_GetText(s));
        goto out;
    }
    const char *subject = header(m, "Saga-Subject");
    /* Only events go back; anything else was never on the event stream. */
    if (strncmp(subject, "evt.", 4) != 0 || strchr(subject, '*') != NULL ||
        strchr(subject, '>') != NULL) {
        ctl_err("dlq", "#%llu: original subject '%s' is not an event subject; not replayed",
                (unsigned long long)seq, subject);
        goto out;
    }
    snprintf(msg_id, sizeof(msg_id), "replay.%llu", (unsigned long long)seq);
    jsPubOptions_Init(&po);
    po.MsgId = msg_id;
    po.MaxWait = CTL_COMMAND_TIMEOUT_MS;
    s = js_Publish(&pa, c->js, subject, natsMsg_GetData(m), natsMsg_GetDataLength(m), &po, &jerr);
    if (s != NATS_OK) {
        ctl_err("dlq", "#%llu: publish to %s failed: %s", (unsigned long long)seq, subject,
                natsStatus_GetText(s));
        rc = CTL_EXIT_UNREACHABLE;
        goto out;
    }
    printf("#%llu replayed to %s%s\n", (unsigned long long)seq, subject,
           pa->Duplicate ? " (already replayed recently: not published again)" : "");
    if (!keep) {
        s = js_DeleteMsg(c->js, DLQ_STREAM, seq, NULL, &jerr);
        if (s != NATS_OK) {
            ctl_err("dlq", "#%llu: replayed but not deleted: %s", (unsigned long long)seq,
                    natsStatus_GetText(s));
            goto out;
        }
    }
    rc = CTL_EXIT_OK;
out:
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(m);
    return rc;
}

static const char dlq_help[] =
    "usage: sagactl dlq list [--service SVC] [--json] [--url URL]\n"
    "       sagactl dlq replay SEQ... [--keep] [--url URL]\n"
    "       sagactl dlq replay --all [--service SVC] [--keep] [--url URL]\n\n"
    "list: the dead letters in the stream SAGA_DLQ (all, or one service's):\n"
    "sequence, time, service, deliveries, original subject, the event, and the\n"
    "reason the runtime gave. --json prints an array.\n"
    "replay: publishes each dead letter again on its original subject (message id\n"
    "replay.SEQ), then deletes it from SAGA_DLQ unless --keep. Services that\n"
    "already handled the event drop it by their inbox; if it fails again it comes\n"
    "back to the dead-letter stream with a new sequence.\n";

int ctl_cmd_dlq(const char *url, int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"service", required_argument, NULL, 's'},
                                         {"all", no_argument, NULL, 'a'},
                                         {"keep", no_argument, NULL, 'k'},
                                         {"url", required_argument, NULL, 'U'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int all = 0, keep = 0, opt, rc;
    const char *service = NULL;
    char filter[64];
    dlq_list l;
    ctl_stream_result res;
    ctl_conn c = {0};

    memset(&l, 0, sizeof(l));
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (opt) {
        case 'j':
            l.json = 1;
            break;
        case 's':
            service = optarg;
            break;
        case 'a':
            all = 1;
            break;
        case 'k':
            keep = 1;
            break;
        case 'U':
            url = optarg;
            break;
        case 'h':
            fputs(dlq_help, stdout);
            return CTL_EXIT_OK;
        default:
            return ctl_bad_option("dlq", argv, optind, optopt, opt);
        }
    }
    if (optind >= argc) {
        ctl_err("dlq", "want 'list' or 'replay' (see sagactl dlq --help)");
        return CTL_EXIT_USAGE;
    }
    const char *verb = argv[optind++];
    int is_list = strcmp(verb, "list") == 0;
    if (!is_list && strcmp(verb, "replay") != 0) {
        ctl_err("dlq", "unknown action '%s': want 'list' or 'replay'", verb);
        return CTL_EXIT_USAGE;
    }
    if (service != NULL && !saga_valid_producer(service)) {
        ctl_err("dlq", "bad --service '%s'", service);
        return CTL_EXIT_USAGE;
    }
    if (is_list && optind < argc) {
        ctl_err("dlq", "list takes no arguments (see sagactl dlq --help)");
        return CTL_EXIT_USAGE;
    }
    if (!is_list && (all == (optind < argc))) {
        ctl_err("dlq", "replay wants either sequence numbers or --all");
        return CTL_EXIT_USAGE;
    }
    for (int i = optind; i < argc; i++) {
        long long seq;
        if (ctl_parse_ll(argv[i], 1, INT64_MAX, &seq) != 0) {
            ctl_err("dlq", "bad sequence number '%s'", argv[i]);
            return CTL_EXIT_USAGE;
        }
    }
    snprintf(filter, sizeof(filter), "dlq.%s", service != NULL ? service : ">");
    rc = ctl_connect(&c, "dlq", url, 0, 0);
    if (rc != CTL_EXIT_OK)
        return rc;
    ctl_buf_init(&l.out);

    if (is_list || all) {
        l.print = is_list;
        l.collect = all;
        rc = ctl_stream_read_msgs(&c, "dlq", DLQ_STREAM, filter, 1, on_dead_letter, &l, &res);
        if (rc != CTL_EXIT_OK)
            goto out;
    }
    if (is_list) {
        if (l.json)
            fputs(l.n == 0 ? "[]\n" : "\n]\n", stdout);
        else
            printf("%llu dead letter%s in %s%s\n", (unsigned long long)l.n, l.n == 1 ? "" : "s",
                   DLQ_STREAM, res.stream_missing ? " (the stream does not exist yet)" : "");
        rc = CTL_EXIT_OK;
        goto out;
    }
    int failed = 0;
    if (all) {
        for (size_t i = 0; i < l.nseqs; i++)
            failed |= replay_one(&c, l.seqs[i], keep) != CTL_EXIT_OK;
        if (l.nseqs == 0)
            printf("no dead letters to replay\n");
    } else {
        for (int i = optind; i < argc; i++) {
            long long seq = 0;
            if (ctl_parse_ll(argv[i], 1, INT64_MAX, &seq) == 0)
                failed |= replay_one(&c, (uint64_t)seq, keep) != CTL_EXIT_OK;
        }
    }
    rc = failed ? CTL_EXIT_FAIL : CTL_EXIT_OK;
out:
    free(l.seqs);
    ctl_buf_cleanup(&l.out);
    ctl_disconnect(&c);
    return rc;
}
