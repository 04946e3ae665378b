/* dlq.c - The dead-letter stream SAGA_DLQ: list what the services set aside
 * (with the reason the runtime gave), show one dead letter in full, replay
 * dead letters onto their original subject once the cause is fixed, and purge
 * them. Replaying is safe by design: a service that already handled the event
 * drops it by its inbox; and bounded: each replay counts itself in the header
 * Saga-Replays, which the runtime keeps when the message dies again. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "saga/wire.h"

#define MAX_REPLAY 100000 /* bounds --all */
#define HDR_REPLAYS "Saga-Replays"
#define HEX_BYTES 64 /* shown of a message that is not an event */

static const char *header(natsMsg *m, const char *key)
{
    const char *v = NULL;
    if (natsMsgHeader_Get(m, key, &v) != NATS_OK || v == NULL)
        return "";
    return v;
}

ctl_dlq_cause ctl_dlq_classify(const char *cause, const char *reason)
{
    saga_dlq_cause c = saga_dlq_cause_parse(cause);
    if (c != SAGA_DLQ_CAUSE_COUNT)
        return saga_dlq_cause_deliberate(c) ? CTL_DLQ_POISONED : CTL_DLQ_FAILED;
    if (reason == NULL)
        return CTL_DLQ_OTHER;
    /* Dead letters written before Saga-Cause existed: the reasons loop.c
     * wrote, "undecodable: ...", "rejected by the T handler", "failed N
     * deliveries, last: ...", "parked event expired: ..."; a parked event a
     * handler refused later carries the status text. */
    if (strncmp(reason, "undecodable", 11) == 0 || strncmp(reason, "rejected", 8) == 0 ||
        strcmp(reason, saga_strerror(SAGA_EREJECT)) == 0 ||
        strcmp(reason, saga_strerror(SAGA_EDECODE)) == 0 ||
        strcmp(reason, saga_strerror(SAGA_EVALIDATE)) == 0)
        return CTL_DLQ_POISONED;
    if (strncmp(reason, "failed ", 7) == 0 || strncmp(reason, "parked event expired", 20) == 0)
        return CTL_DLQ_FAILED;
    return CTL_DLQ_OTHER;
}

/* The replay count of a dead letter: 0 without the header, -1 if it is not
 * a number (then nobody can tell how often it went round). */
static long long replays_of(natsMsg *m)
{
    const char *v = header(m, HDR_REPLAYS);
    long long n = 0;
    if (*v == '\0')
        return 0;
    return ctl_parse_ll(v, 0, 1000000, &n) == 0 ? n : -1;
}

static void local_time(int64_t ms, char *out, size_t len)
{
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    snprintf(out, len, "?");
    if (localtime_r(&sec, &tm) != NULL)
        strftime(out, len, "%Y-%m-%d %H:%M:%S", &tm);
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

json_t *ctl_dlq_entry_json(natsMsg *m, uint64_t seq, int64_t time_ns)
{
    saga_event ev;
    void *owner = NULL;
    int decoded =
        saga_event_decode((const uint8_t *)natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m),
                          &ev, &owner, NULL, 0) == SAGA_OK;
    long long deliveries = 0;
    ctl_parse_ll(header(m, "Saga-Deliveries"), 0, 1000000, &deliveries);
    json_t *j = json_pack(
        "{s:I, s:I, s:o, s:I, s:I, s:o, s:o, s:o}", "seq", (json_int_t)seq, "time_unix_ms",
        (json_int_t)(time_ns / 1000000), "service", ctl_json_text(header(m, "Saga-Service")),
        "deliveries", (json_int_t)deliveries, "replays", (json_int_t)replays_of(m), "subject",
        ctl_json_text(header(m, "Saga-Subject")), "reason", ctl_json_text(header(m, "Saga-Reason")),
        "event", decoded ? ctl_event_json(&ev, 0, NULL) : json_null());
    free(owner);
    return j;
}

static void add_line(dlq_list *l, natsMsg *m, uint64_t seq, int64_t time_ns)
{
    saga_event ev;
    void *owner = NULL;
    ctl_buf *b = &l->out;
    if (l->json) {
        json_t *j = ctl_dlq_entry_json(m, seq, time_ns);
        ctl_buf_puts(b, l->n == 0 ? "[\n  " : ",\n  ");
        ctl_buf_json(b, j);
        json_decref(j);
        return;
    }
    int decoded =
        saga_event_decode((const uint8_t *)natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m),
                          &ev, &owner, NULL, 0) == SAGA_OK;
    long long deliveries = 0, replays = replays_of(m);
    ctl_parse_ll(header(m, "Saga-Deliveries"), 0, 1000000, &deliveries);
    char when[32];
    local_time(time_ns / 1000000, when, sizeof(when));
    ctl_buf_printf(b, "#%llu  %s  %s  deliveries=%lld", (unsigned long long)seq, when,
                   header(m, "Saga-Service"), deliveries);
    if (replays != 0)
        ctl_buf_printf(b, "  replays=%lld", replays);
    ctl_buf_printf(b, "  %s\n", header(m, "Saga-Subject"));
    if (decoded)
        ctl_buf_printf(b, "    event %s %s of order %s\n", ev.event_id, ev.type, ev.order_id);
    else
        ctl_buf_printf(b, "    not a valid event (%d bytes)\n", natsMsg_GetDataLength(m));
    ctl_buf_printf(b, "    reason: %s\n", header(m, "Saga-Reason"));
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

int ctl_dlq_get(ctl_conn *c, uint64_t seq, natsMsg **m)
{
    jsErrCode jerr = 0;
    natsStatus s = js_GetMsg(m, c->js, CTL_DLQ_STREAM, seq, NULL, &jerr);
    if (s == NATS_OK)
        return CTL_EXIT_OK;
    if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr || jerr == JSStreamNotFoundErr) {
        ctl_err("dlq", "#%llu: no such dead letter in %s", (unsigned long long)seq, CTL_DLQ_STREAM);
        return CTL_EXIT_FAIL;
    }
    ctl_err("dlq", "#%llu: cannot read it: %s", (unsigned long long)seq, natsStatus_GetText(s));
    return s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS ? CTL_EXIT_UNREACHABLE : CTL_EXIT_FAIL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The header names of m, sorted (cnats gives them in hash order) so that
 * show prints them the same way every time. Free *keys with free(). */
static int sorted_keys(natsMsg *m, const char ***keys, int *n)
{
    *keys = NULL;
    *n = 0;
    if (natsMsgHeader_Keys(m, keys, n) != NATS_OK)
        return -1;
    qsort((void *)*keys, (size_t)*n, sizeof(**keys), cmp_str);
    return 0;
}

static void add_hex(ctl_buf *b, const unsigned char *p, size_t n, const char *sep)
{
    for (size_t i = 0; i < n && i < HEX_BYTES; i++)
        ctl_buf_printf(b, "%s%02x", i > 0 ? sep : "", p[i]);
}

/* The message's headers, names sorted; a header given more than once keeps
 * every value (an array). */
static json_t *headers_json(natsMsg *m)
{
    const char **keys = NULL;
    int nkeys = 0;
    json_t *o = json_object();
    if (sorted_keys(m, &keys, &nkeys) != 0)
        return o;
    for (int i = 0; i < nkeys; i++) {
        const char **values = NULL;
        int nvalues = 0;
        json_t *v;
        if (natsMsgHeader_Values(m, keys[i], &values, &nvalues) != NATS_OK || nvalues == 0) {
            v = json_null();
        } else if (nvalues == 1) {
            v = ctl_json_text(values[0]);
        } else {
            v = json_array();
            for (int k = 0; k < nvalues; k++)
                json_array_append_new(v, ctl_json_text(values[k]));
        }
        json_object_set_new(o, keys[i], v);
        free((void *)values);
    }
    free((void *)keys);
    return o;
}

json_t *ctl_dlq_show_json(natsMsg *m, uint64_t seq, const saga_event *ev)
{
    const unsigned char *data = (const unsigned char *)natsMsg_GetData(m);
    size_t len = (size_t)natsMsg_GetDataLength(m);
    long long deliveries = 0;
    ctl_parse_ll(header(m, "Saga-Deliveries"), 0, 1000000, &deliveries);

    json_t *j = json_pack(
        "{s:I, s:I, s:o, s:o, s:o, s:I, s:I, s:o, s:o, s:I, s:o}", "seq", (json_int_t)seq,
        "time_unix_ms", (json_int_t)(natsMsg_GetTime(m) / 1000000), "stream_subject",
        ctl_json_text(natsMsg_GetSubject(m)), "service", ctl_json_text(header(m, "Saga-Service")),
        "reason", ctl_json_text(header(m, "Saga-Reason")), "deliveries", (json_int_t)deliveries,
        "replays", (json_int_t)replays_of(m), "subject", ctl_json_text(header(m, "Saga-Subject")),
        "headers", headers_json(m), "size", (json_int_t)len, "event",
        ev != NULL ? ctl_event_json(ev, 0, NULL) : json_null());
    if (ev == NULL && j != NULL) {
        ctl_buf hex;
        ctl_buf_init(&hex);
        add_hex(&hex, data, len, "");
        json_object_set_new(j, "head_hex", ctl_json_text(ctl_buf_str(&hex)));
        ctl_buf_cleanup(&hex);
    }
    return j;
}

static void show_text(ctl_buf *b, natsMsg *m, uint64_t seq, const saga_event *ev)
{
    const char **keys = NULL;
    int nkeys = 0;
    char when[32];
    const unsigned char *data = (const unsigned char *)natsMsg_GetData(m);
    size_t len = (size_t)natsMsg_GetDataLength(m);
    long long replays = replays_of(m);

    local_time(natsMsg_GetTime(m) / 1000000, when, sizeof(when));
    ctl_buf_printf(b, "dead letter #%llu in %s (%s), stored %s\n", (unsigned long long)seq,
                   CTL_DLQ_STREAM, natsMsg_GetSubject(m), when);
    ctl_buf_printf(b, "  service     %s\n", header(m, "Saga-Service"));
    ctl_buf_printf(b, "  reason      %s\n", header(m, "Saga-Reason"));
    ctl_buf_printf(b, "  deliveries  %s\n", header(m, "Saga-Deliveries"));
    if (replays >= 0)
        ctl_buf_printf(b, "  replays     %lld\n", replays);
    else
        ctl_buf_printf(b, "  replays     '%s' (not a number)\n", header(m, HDR_REPLAYS));
    ctl_buf_printf(b, "  subject     %s (where replay publishes it)\n", header(m, "Saga-Subject"));
    if (sorted_keys(m, &keys, &nkeys) == 0) {
        for (int i = 0; i < nkeys; i++) {
            const char **values = NULL;
            int nvalues = 0;
            if (natsMsgHeader_Values(m, keys[i], &values, &nvalues) != NATS_OK)
                nvalues = 0;
            for (int k = 0; k < nvalues; k++)
                ctl_buf_printf(b, "  %-11s %s: %s\n", i == 0 && k == 0 ? "headers" : "", keys[i],
                               values[k]);
            free((void *)values);
        }
        free((void *)keys);
    }
    if (ev == NULL) {
        ctl_buf_printf(b, "  event       none: %zu bytes that are not a valid envelope\n", len);
        ctl_buf_printf(b, "  bytes       ");
        add_hex(b, data, len, " ");
        ctl_buf_printf(b, "%s\n", len > HEX_BYTES ? " ..." : "");
        return;
    }
    char at[32];
    local_time(ev->time_ms, at, sizeof(at));
    ctl_mark mk = ctl_event_mark(ev->type);
    ctl_buf_printf(b, "  event       %s %s of order %s%s%s\n", ev->event_id, ev->type, ev->order_id,
                   mk != CTL_MARK_NONE ? " " : "", mk != CTL_MARK_NONE ? ctl_mark_label(mk) : "");
    ctl_buf_printf(b, "  envelope    schema v%u, by %s #%llu at %s, caused by %s%s%s\n",
                   (unsigned)ev->schema_version, ev->producer, (unsigned long long)ev->sequence, at,
                   *ev->causation_id ? ev->causation_id : "(nothing: a command)",
                   *ev->trace ? ", trace " : "", ev->trace);
    ctl_buf_puts(b, "  payload     ");
    ctl_event_summary(b, ev);
    ctl_buf_puts(b, "\n");
}

/* Shows one dead letter: every header, what the runtime said, and the
 * message decoded as an event (or its first bytes when it is not one). */
static int show_one(ctl_conn *c, uint64_t seq, int json)
{
    natsMsg *m = NULL;
    saga_event ev;
    void *owner = NULL;
    ctl_buf b;
    int rc = ctl_dlq_get(c, seq, &m);
    if (rc != CTL_EXIT_OK)
        return rc;
    int decoded =
        saga_event_decode((const uint8_t *)natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m),
                          &ev, &owner, NULL, 0) == SAGA_OK;
    ctl_buf_init(&b);
    if (json) {
        json_t *j = ctl_dlq_show_json(m, seq, decoded ? &ev : NULL);
        ctl_buf_json(&b, j);
        ctl_buf_puts(&b, "\n");
        json_decref(j);
    } else
        show_text(&b, m, seq, decoded ? &ev : NULL);
    if (ctl_buf_ok(&b)) {
        fputs(ctl_buf_str(&b), stdout);
    } else {
        ctl_err("dlq", "out of memory");
        rc = CTL_EXIT_FAIL;
    }
    ctl_buf_cleanup(&b);
    free(owner);
    natsMsg_Destroy(m);
    return rc;
}

int ctl_dlq_replay(ctl_conn *c, uint64_t seq, long long max_replays, int keep, ctl_buf *said)
{
    natsMsg *m = NULL, *out = NULL;
    jsPubAck *pa = NULL;
    jsPubOptions po;
    jsErrCode jerr = 0;
    char msg_id[64], count[32];

    int rc = ctl_dlq_get(c, seq, &m);
    if (rc != CTL_EXIT_OK)
        goto out;
    rc = CTL_EXIT_FAIL;
    const char *subject = header(m, "Saga-Subject");
    /* Only events go back; anything else was never on the event stream. */
    if (strncmp(subject, "evt.", 4) != 0 || strchr(subject, '*') != NULL ||
        strchr(subject, '>') != NULL) {
        ctl_err("dlq", "#%llu: original subject '%s' is not an event subject; not replayed",
                (unsigned long long)seq, subject);
        goto out;
    }
    long long n = replays_of(m);
    if (n < 0) {
        ctl_err("dlq", "dead letter #%llu has a bad %s header '%s': not replayed; purge it",
                (unsigned long long)seq, HDR_REPLAYS, header(m, HDR_REPLAYS));
        goto out;
    }
    if (n >= max_replays) {
        ctl_err("dlq",
                "dead letter #%llu was replayed %lld times already: fix its cause, or "
                "purge it",
                (unsigned long long)seq, n);
        goto out;
    }
    snprintf(count, sizeof(count), "%lld", n + 1);
    snprintf(msg_id, sizeof(msg_id), "replay.%llu.%lld", (unsigned long long)seq, n + 1);
    natsStatus s =
        natsMsg_Create(&out, subject, NULL, natsMsg_GetData(m), natsMsg_GetDataLength(m));
    if (s == NATS_OK)
        s = natsMsgHeader_Set(out, HDR_REPLAYS, count);
    if (s != NATS_OK) {
        ctl_err("dlq", "#%llu: cannot build the message: %s", (unsigned long long)seq,
                natsStatus_GetText(s));
        goto out;
    }
    jsPubOptions_Init(&po);
    po.MsgId = msg_id;
    po.MaxWait = CTL_COMMAND_TIMEOUT_MS;
    s = js_PublishMsg(&pa, c->js, out, &po, &jerr);
    if (s != NATS_OK) {
        ctl_err("dlq", "#%llu: publish to %s failed: %s", (unsigned long long)seq, subject,
                natsStatus_GetText(s));
        rc = CTL_EXIT_UNREACHABLE;
        goto out;
    }
    ctl_buf_printf(said, "#%llu replayed to %s (replay %lld of at most %lld)%s\n",
                   (unsigned long long)seq, subject, n + 1, max_replays,
                   pa->Duplicate ? " (already replayed recently: not published again)" : "");
    if (!keep) {
        s = js_DeleteMsg(c->js, CTL_DLQ_STREAM, seq, NULL, &jerr);
        if (s != NATS_OK) {
            ctl_err("dlq", "#%llu: replayed but not deleted: %s", (unsigned long long)seq,
                    natsStatus_GetText(s));
            goto out;
        }
    }
    rc = CTL_EXIT_OK;
out:
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(out);
    natsMsg_Destroy(m);
    return rc;
}

/* Replays one dead letter and says so on stdout. */
static int replay_print(ctl_conn *c, uint64_t seq, long long max_replays, int keep)
{
    ctl_buf said;
    ctl_buf_init(&said);
    int rc = ctl_dlq_replay(c, seq, max_replays, keep, &said);
    fputs(ctl_buf_str(&said), stdout);
    ctl_buf_cleanup(&said);
    return rc;
}

/* Asks before a purge when a person is there to answer. Returns 1 for yes. */
static int confirm(const char *what, uint64_t n)
{
    char line[32];
    fprintf(stderr, "purge %llu dead letter%s (%s)? This cannot be undone. [y/N] ",
            (unsigned long long)n, n == 1 ? "" : "s", what);
    fflush(stderr);
    if (fgets(line, sizeof(line), stdin) == NULL)
        return 0;
    line[strcspn(line, "\r\n")] = '\0';
    return strcmp(line, "y") == 0 || strcmp(line, "Y") == 0 || strcmp(line, "yes") == 0;
}

natsStatus ctl_dlq_purge(ctl_conn *c, const char *filter, uint64_t before, uint64_t *purged)
{
    uint64_t after = 0;
    int missing = 0;
    jsOptions o;
    jsErrCode jerr = 0;

    jsOptions_Init(&o);
    o.Stream.Purge.Subject = filter;
    natsStatus s = js_PurgeStream(c->js, CTL_DLQ_STREAM, &o, &jerr);
    if (s != NATS_OK)
        return s;
    /* The purge reply does not say how many went; counting again does. */
    if (ctl_stream_count(c, "dlq", CTL_DLQ_STREAM, filter, &after, &missing) != CTL_EXIT_OK)
        after = 0;
    *purged = before > after ? before - after : 0;
    return NATS_OK;
}

static int purge(ctl_conn *c, const char *service, const char *filter, int yes)
{
    uint64_t before = 0, purged = 0;
    int missing = 0;
    char what[96];
    natsStatus s;

    if (service != NULL)
        snprintf(what, sizeof(what), "subject %s", filter);
    else
        snprintf(what, sizeof(what), "all of %s", CTL_DLQ_STREAM);
    int rc = ctl_stream_count(c, "dlq", CTL_DLQ_STREAM, service != NULL ? filter : NULL, &before,
                              &missing);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (missing || before == 0) {
        printf("no dead letters to purge (%s)\n", what);
        return CTL_EXIT_OK;
    }
    if (!yes && !confirm(what, before)) {
        ctl_err("dlq", "not purged");
        return CTL_EXIT_FAIL;
    }
    s = ctl_dlq_purge(c, service != NULL ? filter : NULL, before, &purged);
    if (s != NATS_OK) {
        ctl_err("dlq", "purge of %s failed: %s", what, natsStatus_GetText(s));
        return s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS ? CTL_EXIT_UNREACHABLE : CTL_EXIT_FAIL;
    }
    printf("purged %llu dead letter%s (%s)\n", (unsigned long long)purged, purged == 1 ? "" : "s",
           what);
    return CTL_EXIT_OK;
}

static const char dlq_help[] =
    "usage: sagactl dlq list [--service SVC] [--json] [--url URL]\n"
    "       sagactl dlq show SEQ [--json] [--url URL]\n"
    "       sagactl dlq replay SEQ... [--max-replays N] [--keep] [--url URL]\n"
    "       sagactl dlq replay --all [--service SVC] [--max-replays N] [--keep] [--url URL]\n"
    "       sagactl dlq purge [--service SVC] [--yes] [--url URL]\n\n"
    "list: the dead letters in the stream SAGA_DLQ (all, or one service's):\n"
    "sequence, time, service, deliveries, replays, original subject, the event,\n"
    "and the reason the runtime gave. --json prints an array.\n"
    "show: one dead letter in full: every header, reason, deliveries, replays,\n"
    "original subject, the decoded envelope and a summary of its payload (or the\n"
    "first 64 bytes in hex when it is not an event). --json prints one object.\n"
    "replay: publishes each dead letter again on its original subject, with the\n"
    "header Saga-Replays counting the replays (message id replay.SEQ.COUNT), then\n"
    "deletes it from SAGA_DLQ unless --keep. Every service subscribed to that\n"
    "subject gets it; those that handled the event already drop it by their inbox.\n"
    "If it fails again it comes back with a new sequence and its count; a dead\n"
    "letter replayed N times already (--max-replays, default 3) is refused\n"
    "(exit 1): fix its cause, or purge it.\n"
    "purge: deletes every dead letter (or one service's, subject dlq.SVC). Asks\n"
    "first when stdin is a terminal; otherwise it needs --yes (exit 2 without).\n";

int ctl_cmd_dlq(const char *url, int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"service", required_argument, NULL, 's'},
                                         {"all", no_argument, NULL, 'a'},
                                         {"keep", no_argument, NULL, 'k'},
                                         {"max-replays", required_argument, NULL, 'm'},
                                         {"yes", no_argument, NULL, 'y'},
                                         {"url", required_argument, NULL, 'U'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int all = 0, keep = 0, yes = 0, opt, rc;
    long long max_replays = CTL_DLQ_MAX_REPLAYS;
    const char *service = NULL, *only = NULL;
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
            only = "--all";
            break;
        case 'k':
            keep = 1;
            only = "--keep";
            break;
        case 'm':
            if (ctl_parse_ll(optarg, 1, 1000, &max_replays) != 0) {
                ctl_err("dlq", "bad --max-replays '%s': want 1..1000", optarg);
                return CTL_EXIT_USAGE;
            }
            only = "--max-replays";
            break;
        case 'y':
            yes = 1;
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
        ctl_err("dlq", "want list, show, replay or purge (see sagactl dlq --help)");
        return CTL_EXIT_USAGE;
    }
    const char *verb = argv[optind++];
    int is_list = strcmp(verb, "list") == 0, is_show = strcmp(verb, "show") == 0;
    int is_replay = strcmp(verb, "replay") == 0, is_purge = strcmp(verb, "purge") == 0;
    int nargs = argc - optind;
    if (!is_list && !is_show && !is_replay && !is_purge) {
        ctl_err("dlq", "unknown action '%s': want list, show, replay or purge", verb);
        return CTL_EXIT_USAGE;
    }
    /* Options that mean nothing to an action are refused rather than
     * ignored: "dlq purge --all" must not read as a narrower purge. */
    if ((only != NULL && !is_replay) || (yes && !is_purge) || (l.json && !is_list && !is_show) ||
        (service != NULL && is_show)) {
        ctl_err("dlq", "option %s does not apply to dlq %s (see sagactl dlq --help)",
                only != NULL && !is_replay ? only
                : yes && !is_purge         ? "--yes"
                : l.json                   ? "--json"
                                           : "--service",
                verb);
        return CTL_EXIT_USAGE;
    }
    if (service != NULL && !saga_valid_producer(service)) {
        ctl_err("dlq", "bad --service '%s'", service);
        return CTL_EXIT_USAGE;
    }
    if ((is_list || is_purge) && nargs > 0) {
        ctl_err("dlq", "%s takes no arguments (see sagactl dlq --help)", verb);
        return CTL_EXIT_USAGE;
    }
    if (is_show && nargs != 1) {
        ctl_err("dlq", "show wants one sequence number, e.g. sagactl dlq show 12");
        return CTL_EXIT_USAGE;
    }
    if (is_replay && (all == (nargs > 0))) {
        ctl_err("dlq", "replay wants either sequence numbers or --all");
        return CTL_EXIT_USAGE;
    }
    if (is_replay && service != NULL && !all) {
        ctl_err("dlq", "--service goes with replay --all, not with sequence numbers");
        return CTL_EXIT_USAGE;
    }
    for (int i = optind; i < argc; i++) {
        long long seq;
        if (ctl_parse_ll(argv[i], 1, INT64_MAX, &seq) != 0) {
            ctl_err("dlq", "bad sequence number '%s'", argv[i]);
            return CTL_EXIT_USAGE;
        }
    }
    if (is_purge && !yes && !isatty(STDIN_FILENO)) {
        ctl_err("dlq", "purge deletes dead letters for good: add --yes to confirm (stdin is not "
                       "a terminal, so there is nobody to ask)");
        return CTL_EXIT_USAGE;
    }
    snprintf(filter, sizeof(filter), "dlq.%s", service != NULL ? service : ">");
    rc = ctl_connect(&c, "dlq", url, 0, 0);
    if (rc != CTL_EXIT_OK)
        return rc;
    ctl_buf_init(&l.out);

    if (is_show) {
        long long seq = 0;
        ctl_parse_ll(argv[optind], 1, INT64_MAX, &seq);
        rc = show_one(&c, (uint64_t)seq, l.json);
        goto out;
    }
    if (is_purge) {
        rc = purge(&c, service, filter, yes);
        goto out;
    }
    if (is_list || all) {
        l.print = is_list;
        l.collect = all;
        rc = ctl_stream_read_msgs(&c, "dlq", CTL_DLQ_STREAM, filter, 1, on_dead_letter, &l, &res);
        if (rc != CTL_EXIT_OK)
            goto out;
    }
    if (is_list) {
        if (l.json)
            fputs(l.n == 0 ? "[]\n" : "\n]\n", stdout);
        else
            printf("%llu dead letter%s in %s%s\n", (unsigned long long)l.n, l.n == 1 ? "" : "s",
                   CTL_DLQ_STREAM, res.stream_missing ? " (the stream does not exist yet)" : "");
        rc = CTL_EXIT_OK;
        goto out;
    }
    /* Replay: every dead letter is tried, refusals reported one by one; the
     * exit status says whether any of them was not replayed. */
    int failed = 0;
    if (all) {
        for (size_t i = 0; i < l.nseqs; i++)
            failed |= replay_print(&c, l.seqs[i], max_replays, keep) != CTL_EXIT_OK;
        if (l.nseqs == 0)
            printf("no dead letters to replay\n");
    } else {
        for (int i = optind; i < argc; i++) {
            long long seq = 0;
            if (ctl_parse_ll(argv[i], 1, INT64_MAX, &seq) == 0)
                failed |= replay_print(&c, (uint64_t)seq, max_replays, keep) != CTL_EXIT_OK;
        }
    }
    rc = failed ? CTL_EXIT_FAIL : CTL_EXIT_OK;
out:
    free(l.seqs);
    ctl_buf_cleanup(&l.out);
    ctl_disconnect(&c);
    return rc;
}
