/* stats.c - Fleet-wide figures: orders by state, derived from the order
 * service's own events in the stream (the last of placed, confirmed and
 * cancelled per order), and each service's runtime counters. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "events.pb-c.h"

#define MAX_REASONS 16

enum { ST_PENDING = 1, ST_CONFIRMED, ST_CANCELLED };

typedef struct order_state {
    int state;
    char reason[32];
} order_state;

typedef struct stats_state {
    ctl_map *orders;
    uint64_t events;
} stats_state;

static int on_order_event(const saga_event *ev, uint64_t seq, int64_t stored_ms, void *udata)
{
    stats_state *s = udata;
    (void)stored_ms;
    (void)seq;
    s->events++;
    order_state *o = ctl_map_upsert(s->orders, ev->order_id, NULL);
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
    "service's runtime counters (saga.ctl.<svc>.stats); a service that does not\n"
    "answer within 1 s shows as unavailable. Stream entries that are no event of\n"
    "the saga (undecodable, on the wrong subject, a malformed payload) are counted\n"
    "apart as undecodable, not as orders. --json prints\n"
    "{\"orders\":{\"total\":..,\"pending\":..,\"confirmed\":..,\"cancelled\":..,\n"
    "\"cancelled_by_reason\":{..}},\"order_events\":N,\"undecodable\":N,\n"
    "\"services\":{\"order\":{..}|null,..}}.\n";

int ctl_cmd_stats(const char *url, int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"url", required_argument, NULL, 'U'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct {
        char name[32];
        uint64_t n;
    } reasons[MAX_REASONS];
    int nreasons = 0, json = 0, opt, rc;
    uint64_t by_state[4] = {0};
    char *svc[CTL_NSERVICES] = {NULL};
    stats_state s = {0};
    ctl_stream_result res;
    ctl_conn c = {0};
    ctl_buf b;

    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (opt) {
        case 'j':
            json = 1;
            break;
        case 'U':
            url = optarg;
            break;
        case 'h':
            fputs(stats_help, stdout);
            return CTL_EXIT_OK;
        default:
            return ctl_bad_option("stats", argv, optind, optopt, opt);
        }
    }
    if (optind < argc) {
        ctl_err("stats", "unexpected argument '%s' (see sagactl stats --help)", argv[optind]);
        return CTL_EXIT_USAGE;
    }
    ctl_buf_init(&b);
    rc = ctl_connect(&c, "stats", url, 0, 0);
    if (rc != CTL_EXIT_OK)
        goto out;
    if (ctl_map_create(&s.orders, sizeof(order_state)) != 0) {
        ctl_err("stats", "out of memory");
        rc = CTL_EXIT_FAIL;
        goto out;
    }
    rc = ctl_stream_read(&c, "stats", "evt.order.>", 1, on_order_event, &s, &res);
    if (rc != CTL_EXIT_OK)
        goto out;
    for (size_t i = 0; i < ctl_map_count(s.orders); i++) {
        const order_state *o = ctl_map_at(s.orders, i, NULL);
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
    for (int i = 0; i < CTL_NSERVICES; i++)
        if (ctl_service_stats(&c, ctl_services[i], CTL_QUERY_TIMEOUT_MS, &svc[i]) != 0)
            svc[i] = NULL;

    uint64_t total = by_state[ST_PENDING] + by_state[ST_CONFIRMED] + by_state[ST_CANCELLED];
    if (json) {
        ctl_buf_printf(&b,
                       "{\"orders\":{\"total\":%llu,\"pending\":%llu,\"confirmed\":%llu,"
                       "\"cancelled\":%llu,\"cancelled_by_reason\":{",
                       (unsigned long long)total, (unsigned long long)by_state[ST_PENDING],
                       (unsigned long long)by_state[ST_CONFIRMED],
                       (unsigned long long)by_state[ST_CANCELLED]);
        for (int k = 0; k < nreasons; k++) {
            ctl_json_key(&b, k == 0, reasons[k].name);
            ctl_buf_printf(&b, "%llu", (unsigned long long)reasons[k].n);
        }
        ctl_buf_printf(&b, "}},\"order_events\":%llu,\"undecodable\":%llu,\"services\":{",
                       (unsigned long long)s.events, (unsigned long long)res.undecodable);
        for (int i = 0; i < CTL_NSERVICES; i++) {
            ctl_json_key(&b, i == 0, ctl_services[i]);
            if (svc[i] != NULL)
                ctl_json_raw_object(&b, svc[i]);
            else
                ctl_buf_puts(&b, "null");
        }
        ctl_buf_puts(&b, "}}\n");
    } else {
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
        static const char *const cols[] = {"received",      "processed", "duplicates", "retried",
                                           "dead_lettered", "parked",    "pending"};
        ctl_buf_printf(&b, "\n%-13s %8s", "service", "pid");
        for (size_t k = 0; k < sizeof(cols) / sizeof(cols[0]); k++)
            ctl_buf_printf(&b, " %13s", cols[k]);
        ctl_buf_puts(&b, "\n");
        for (int i = 0; i < CTL_NSERVICES; i++) {
            long long v;
            ctl_buf_printf(&b, "%-13s ", ctl_services[i]);
            if (svc[i] == NULL) {
                ctl_buf_puts(&b, "unavailable\n");
                continue;
            }
            if (ctl_json_get_ll(svc[i], "pid", &v) == 0)
                ctl_buf_printf(&b, "%8lld", v);
            else
                ctl_buf_printf(&b, "%8s", "?");
            for (size_t k = 0; k < sizeof(cols) / sizeof(cols[0]); k++) {
                if (ctl_json_get_ll(svc[i], cols[k], &v) == 0)
                    ctl_buf_printf(&b, " %13lld", v);
                else
                    ctl_buf_printf(&b, " %13s", "?");
            }
            ctl_buf_puts(&b, "\n");
        }
    }
    if (!ctl_buf_ok(&b)) {
        ctl_err("stats", "out of memory");
        rc = CTL_EXIT_FAIL;
        goto out;
    }
    fputs(ctl_buf_str(&b), stdout);
    rc = CTL_EXIT_OK;
out:
    for (int i = 0; i < CTL_NSERVICES; i++)
        free(svc[i]);
    ctl_map_destroy(s.orders);
    ctl_buf_cleanup(&b);
    ctl_disconnect(&c);
    return rc;
}
