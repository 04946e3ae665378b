/* stats.c - Fleet-wide figures: orders by state, derived from the order
 * service's own events in the stream (the last of placed, confirmed and
 * cancelled per order), and each service's runtime counters. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "events.pb-c.h"
#include "saga/wire.h"

#define HASH_NONFATAL_OOM 1
#define uthash_nonfatal_oom(e) (ctl_hash_oom_ = 1)
#include <uthash.h>

#define MAX_REASONS 16

enum { ST_PENDING = 1, ST_CONFIRMED, ST_CANCELLED };

typedef struct order_state {
    UT_hash_handle hh;
    int state;
    char reason[32];
    char key[]; /* the order id */
} order_state;

typedef struct stats_state {
    order_state *orders; /* uthash, in the order the stream first names them */
    uint64_t events;
} stats_state;

static int on_order_event(const saga_event *ev, uint64_t seq, int64_t stored_ms, void *udata)
{
    stats_state *s = udata;
    (void)stored_ms;
    (void)seq;
    order_state *o = NULL;
    int created;
    s->events++;
    CTL_HASH_UPSERT(s->orders, ev->order_id, o, created);
    (void)created;
    if (o == NULL) {
        ctl_err("stats", "out of memory after %llu events", (unsigned long long)s->events);
        return -1;
    }
    if (strcmp(ev->type, "order.placed") == 0) {
        /* A redelivered placed event after the outcome must not undo it. */
        if (o->state == 0)
            o->state = ST_PENDING;
    } else if (strcmp(ev->type, "order.confirmed") == 0) {
        o->state = ST_CONFIRMED;
    } else if (strcmp(ev->type, "order.cancelled") == 0) {
        o->state = ST_CANCELLED;
        Saga__V1__OrderCancelled *p =
            saga__v1__order_cancelled__unpack(NULL, ev->payload_len, ev->payload);
        snprintf(o->reason, sizeof(o->reason), "%s",
                 p != NULL && *p->reason ? p->reason : "unknown");
        saga__v1__order_cancelled__free_unpacked(p, NULL);
    }
    return 0;
}

static const char stats_help[] =
    "usage: sagactl stats [--json] [--url URL]\n\n"
    "Counts orders by state, reading the order service's events (evt.order.>)\n"
    "from the stream (progress on stderr every 10,000 events), and prints each\n"
    "participant's runtime counters (saga.ctl.<name>.stats; the saga's five, then\n"
    "every other participant found on saga.discover); one that does not answer\n"
    "within 1 s shows as unavailable. Stream entries that are no event of\n"
    "the saga (undecodable, on the wrong subject, a malformed payload) are counted\n"
    "apart as undecodable, not as orders. --json prints\n"
    "{\"orders\":{\"total\":..,\"pending\":..,\"confirmed\":..,\"cancelled\":..,\n"
    "\"cancelled_by_reason\":{..}},\"order_events\":N,\"undecodable\":N,\n"
    "\"services\":{\"order\":{..}|null,..}}. Exit 3 when no participant answers\n"
    "on saga.discover.\n";

/* The counters of every row, as a table for people. */
static void add_counters(ctl_buf *b, const ctl_fleet *f)
{
    static const char *const cols[] = {"pid",     "received",      "processed", "duplicates",
                                       "retried", "dead_lettered", "parked",    "pending"};
    ctl_buf_printf(b, "\n%-13s %8s", "service", "pid");
    for (size_t k = 1; k < sizeof(cols) / sizeof(cols[0]); k++)
        ctl_buf_printf(b, " %13s", cols[k]);
    ctl_buf_puts(b, "\n");
    for (size_t i = 0; i < f->n; i++) {
        ctl_buf_printf(b, "%-13s ", f->names[i]);
        if (f->replies[i] == NULL) {
            ctl_buf_puts(b, "unavailable\n");
            continue;
        }
        for (size_t k = 0; k < sizeof(cols) / sizeof(cols[0]); k++) {
            json_t *v = json_object_get(f->replies[i], cols[k]);
            int width = k == 0 ? 8 : 13;
            if (json_is_integer(v))
                ctl_buf_printf(b, "%s%*lld", k ? " " : "", width, (long long)json_integer_value(v));
            else
                ctl_buf_printf(b, "%s%*s", k ? " " : "", width, "?");
        }
        ctl_buf_puts(b, "\n");
    }
}

int ctl_cmd_stats(const char *url, int argc, char **argv)
{
    struct {
        char name[32];
        uint64_t n;
    } reasons[MAX_REASONS];
    int nreasons = 0, json = 0, rc;
    uint64_t by_state[4] = {0};
    stats_state s = {0};
    order_state *o, *tmp;
    ctl_stream_result res;
    ctl_conn c = {0};
    ctl_fleet f = {0};
    ctl_buf b;

    rc = ctl_parse_opts("stats", stats_help, argc, argv, &url, &json, NULL);
    if (rc != CTL_EXIT_OK)
        return rc < 0 ? CTL_EXIT_OK : rc;
    if (optind < argc) {
        ctl_err("stats", "unexpected argument '%s' (see sagactl stats --help)", argv[optind]);
        return CTL_EXIT_USAGE;
    }
    ctl_buf_init(&b);
    rc = ctl_connect(&c, "stats", url, 0, 0);
    if (rc == CTL_EXIT_OK)
        rc = ctl_fleet_discover(&f, &c, "stats");
    if (rc != CTL_EXIT_OK)
        goto out;
    rc = ctl_stream_read(&c, "stats", "evt.*.order.*", 1, on_order_event, &s, &res);
    if (rc != CTL_EXIT_OK)
        goto out;
    for (o = s.orders; o != NULL; o = o->hh.next) {
        by_state[o->state]++;
        if (o->state != ST_CANCELLED)
            continue;
        int k = 0;
        while (k < nreasons && strcmp(reasons[k].name, o->reason) != 0)
            k++;
        if (k == nreasons && nreasons < MAX_REASONS) {
            snprintf(reasons[k].name, sizeof(reasons[k].name), "%s", o->reason);
            reasons[k].n = 0;
            nreasons++;
        }
        if (k < nreasons)
            reasons[k].n++;
    }
    if (ctl_fleet_ask(&f, &c, SAGA_SUBJ_CTL_FMT, "stats", "") != 0) {
        ctl_err("stats", "cannot send the requests: connection to %s lost", url);
        rc = CTL_EXIT_UNREACHABLE;
        goto out;
    }

    uint64_t total = by_state[ST_PENDING] + by_state[ST_CONFIRMED] + by_state[ST_CANCELLED];
    if (json) {
        json_t *by_reason = json_object(), *services = json_object();
        for (int k = 0; k < nreasons; k++)
            json_object_set_new(by_reason, reasons[k].name, json_integer((json_int_t)reasons[k].n));
        for (size_t i = 0; i < f.n; i++)
            json_object_set_new(services, f.names[i],
                                f.replies[i] != NULL ? json_incref(f.replies[i]) : json_null());
        rc = ctl_print_json(
            "stats", json_pack("{s:{s:I, s:I, s:I, s:I, s:o}, s:I, s:I, s:o}", "orders", "total",
                               (json_int_t)total, "pending", (json_int_t)by_state[ST_PENDING],
                               "confirmed", (json_int_t)by_state[ST_CONFIRMED], "cancelled",
                               (json_int_t)by_state[ST_CANCELLED], "cancelled_by_reason", by_reason,
                               "order_events", (json_int_t)s.events, "undecodable",
                               (json_int_t)res.undecodable, "services", services));
        goto out;
    }
    ctl_buf_printf(&b, "orders: %llu total, %llu pending, %llu confirmed, %llu cancelled\n",
                   (unsigned long long)total, (unsigned long long)by_state[ST_PENDING],
                   (unsigned long long)by_state[ST_CONFIRMED],
                   (unsigned long long)by_state[ST_CANCELLED]);
    if (res.undecodable > 0)
        ctl_buf_printf(&b,
                       "undecodable: %llu (stream entries that are no event of the saga; "
                       "not counted)\n",
                       (unsigned long long)res.undecodable);
    if (nreasons > 0) {
        ctl_buf_puts(&b, "cancelled by reason:");
        for (int k = 0; k < nreasons; k++)
            ctl_buf_printf(&b, "%s %s %llu", k ? "," : "", reasons[k].name,
                           (unsigned long long)reasons[k].n);
        ctl_buf_puts(&b, "\n");
    }
    add_counters(&b, &f);
    rc = ctl_print("stats", &b);
out:
    CTL_HASH_FREE(s.orders, o, tmp);
    ctl_fleet_cleanup(&f);
    ctl_buf_cleanup(&b);
    ctl_disconnect(&c);
    return rc;
}
