/* audit_cmd.c - The audit command: options, repeated runs while the fleet
 * settles, and the report (figures, then every violation) as text or JSON. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "audit.h"
#include "saga/service.h"

#define DEFAULT_GRACE_MS 10000

static void print_json(const ctl_audit *a, ctl_buf *b)
{
    uint64_t orders = a->confirmed + a->cancelled + a->pending;
    ctl_buf_printf(b, "{\"orders\":%llu,\"confirmed\":%llu,\"cancelled\":%llu,\"pending\":%llu,",
                   (unsigned long long)orders, (unsigned long long)a->confirmed,
                   (unsigned long long)a->cancelled, (unsigned long long)a->pending);
    ctl_buf_printf(b,
                   "\"events\":%llu,\"undecodable\":%llu,\"unverified_old\":%llu,"
                   "\"duplicate_copies\":%llu,\"compensations\":%llu,\"failures\":%llu,",
                   (unsigned long long)a->events, (unsigned long long)a->undecodable,
                   (unsigned long long)a->unverified_old, (unsigned long long)a->dup_copies,
                   (unsigned long long)(a->refunds + a->releases + a->ship_cancels),
                   (unsigned long long)a->failures);
    ctl_buf_puts(b, "\"cancelled_by_reason\":{");
    for (int i = 0; i < a->nreasons; i++) {
        ctl_json_key(b, i == 0, a->reasons[i].name);
        ctl_buf_printf(b, "%llu", (unsigned long long)a->reasons[i].n);
    }
    ctl_buf_printf(b, "},\"skus_checked\":%llu,\"spool\":", (unsigned long long)a->skus_checked);
    ctl_json_str(b, a->spool);
    ctl_buf_printf(b, ",\"spool_messages\":%llu,", (unsigned long long)a->spool_files);
    ctl_buf_printf(b,
                   "\"figures\":{\"services_answered\":%d,\"faults_injected\":%llu,"
                   "\"redeliveries\":%llu,\"duplicates_suppressed\":%llu,\"dead_lettered\":%llu,"
                   "\"dlq_messages\":%llu,\"dlq_poisoned\":%llu,\"dlq_failed\":%llu,"
                   "\"dlq_other\":%llu},",
                   a->services_answered, (unsigned long long)a->faults_injected,
                   (unsigned long long)a->redeliveries,
                   (unsigned long long)a->duplicates_suppressed,
                   (unsigned long long)a->dead_lettered, (unsigned long long)a->dlq_messages,
                   (unsigned long long)a->dlq_poisoned, (unsigned long long)a->dlq_failed,
                   (unsigned long long)a->dlq_other);
    ctl_buf_puts(b, "\"violations\":[");
    for (size_t i = 0; i < a->nv; i++) {
        const ctl_violation *x = &a->v[i];
        ctl_buf_puts(b, i ? ",{" : "{");
        ctl_json_key(b, 1, "order_id");
        ctl_json_str(b, x->order_id[0] ? x->order_id : NULL);
        if (x->sku[0]) {
            ctl_json_key(b, 0, "sku");
            ctl_json_str(b, x->sku);
        }
        ctl_json_key(b, 0, "rule");
        ctl_json_str(b, x->rule);
        ctl_json_key(b, 0, "detail");
        ctl_json_str(b, x->detail);
        ctl_buf_puts(b, "}");
    }
    ctl_buf_puts(b, "],\"warnings\":[");
    const char *w = ctl_buf_str(&a->warnings);
    for (int first = 1; *w != '\0'; first = 0) {
        const char *nl = strchr(w, '\n');
        size_t n = nl != NULL ? (size_t)(nl - w) : strlen(w);
        char line[512];
        snprintf(line, sizeof(line), "%.*s", (int)n, w);
        if (!first)
            ctl_buf_puts(b, ",");
        ctl_json_str(b, line);
        w += n + (nl != NULL);
    }
    ctl_buf_puts(b, "]}\n");
}

static void print_text(const ctl_audit *a, ctl_buf *b, const char *url)
{
    uint64_t orders = a->confirmed + a->cancelled + a->pending;
    ctl_buf_printf(b, "audit of %s at %s\n", CTL_STREAM, url);
    ctl_buf_printf(b, "  orders        %llu: %llu confirmed, %llu cancelled, %llu pending\n",
                   (unsigned long long)orders, (unsigned long long)a->confirmed,
                   (unsigned long long)a->cancelled, (unsigned long long)a->pending);
    if (a->nreasons > 0) {
        ctl_buf_puts(b, "  cancelled     ");
        for (int i = 0; i < a->nreasons; i++)
            ctl_buf_printf(b, "%s%s %llu", i ? ", " : "", a->reasons[i].name,
                           (unsigned long long)a->reasons[i].n);
        ctl_buf_puts(b, "\n");
    }
    ctl_buf_printf(b, "  events        %llu (%llu failures)\n", (unsigned long long)a->events,
                   (unsigned long long)a->failures);
    ctl_buf_printf(b, "  undecodable: %llu (stream entries that are no event of the saga)\n",
                   (unsigned long long)a->undecodable);
    if (a->verify)
        ctl_buf_printf(b,
                       "  records       events cross-checked with the order service's and "
                       "payment's records%s\n",
                       a->unverified_old > 0 ? " (orders older than the retention period not)"
                                             : "");
    else
        ctl_buf_puts(b, "  records       not cross-checked (see the warning)\n");
    ctl_buf_printf(b,
                   "  compensations %llu: %llu refunds, %llu stock releases, %llu shipment "
                   "cancellations\n",
                   (unsigned long long)(a->refunds + a->releases + a->ship_cancels),
                   (unsigned long long)a->refunds, (unsigned long long)a->releases,
                   (unsigned long long)a->ship_cancels);
    ctl_buf_printf(b, "  stock         %llu SKUs checked against the inventory\n",
                   (unsigned long long)a->skus_checked);
    if (a->spool != NULL)
        ctl_buf_printf(b, "  mail spool    %s: %llu messages\n", a->spool,
                       (unsigned long long)a->spool_files);
    else
        ctl_buf_puts(b, "  mail spool    not checked (messages checked from events only)\n");
    ctl_buf_printf(b,
                   "  run figures   %llu faults injected, %llu redeliveries, %llu duplicates "
                   "suppressed, %llu dead-lettered\n"
                   "                (the services' counters since each started; %d of %d "
                   "answered)\n",
                   (unsigned long long)a->faults_injected, (unsigned long long)a->redeliveries,
                   (unsigned long long)a->duplicates_suppressed,
                   (unsigned long long)a->dead_lettered, a->services_answered, CTL_NSERVICES);
    ctl_buf_printf(b, "  dead letters  %llu in %s", (unsigned long long)a->dlq_messages,
                   CTL_DLQ_STREAM);
    if (a->dlq_messages > 0)
        ctl_buf_printf(b,
                       ": %llu poisoned (undecodable or rejected), %llu failed (retries "
                       "exhausted or parked too long), %llu other",
                       (unsigned long long)a->dlq_poisoned, (unsigned long long)a->dlq_failed,
                       (unsigned long long)a->dlq_other);
    ctl_buf_puts(b, "\n");
    const char *w = ctl_buf_str(&a->warnings);
    while (*w != '\0') {
        const char *nl = strchr(w, '\n');
        size_t n = nl != NULL ? (size_t)(nl - w) : strlen(w);
        ctl_buf_printf(b, "  warning: %.*s\n", (int)n, w);
        w += n + (nl != NULL);
    }
    for (size_t i = 0; i < a->nv; i++) {
        const ctl_violation *x = &a->v[i];
        if (x->order_id[0])
            ctl_buf_printf(b, "VIOLATION order %s %s: %s\n", x->order_id, x->rule, x->detail);
        else if (x->sku[0])
            ctl_buf_printf(b, "VIOLATION sku %s %s: %s\n", x->sku, x->rule, x->detail);
        else
            ctl_buf_printf(b, "VIOLATION %s: %s\n", x->rule, x->detail);
    }
    if (a->nv == 0)
        ctl_buf_puts(b, "audit: OK, no violations\n");
    else
        ctl_buf_printf(b, "audit: %zu violation%s\n", a->nv, a->nv == 1 ? "" : "s");
}

/* Whether waiting can mend the findings: an order's compensations or a
 * SKU's counters may still be in flight, but a dead letter stays. */
static int may_settle(const ctl_audit *a)
{
    for (size_t i = 0; i < a->nv; i++)
        if (strcmp(a->v[i].rule, "dead_letter") != 0 && strcmp(a->v[i].rule, "forged") != 0 &&
            strcmp(a->v[i].rule, "overflow") != 0)
            return 1;
    return 0;
}

static const char audit_help[] =
    "usage: sagactl audit [--json] [--grace-ms MS] [--spool DIR | --no-spool]\n"
    "                     [--settle SECONDS] [--strict-ids] [--allow-dead-letters]\n"
    "                     [--url URL]\n\n"
    "Reads the whole stream SAGA_EVENTS (progress on stderr) and checks, per order:\n"
    "  final_state      final (CONFIRMED or CANCELLED) by its deadline + grace\n"
    "                   (default 10000 ms); a pending order within that is counted\n"
    "                   as pending, not a violation\n"
    "  money            CONFIRMED: charged = total, nothing refunded;\n"
    "                   CANCELLED: charged - refunded = 0\n"
    "  shipment         CONFIRMED: exactly one live shipment; CANCELLED: none\n"
    "  stock            per order: committed once if CONFIRMED, nothing held if\n"
    "                   CANCELLED; per SKU (asks the inventory): held and committed\n"
    "                   equal what the events moved, nothing negative\n"
    "  messages         one confirmed-or-cancelled message per final order and one\n"
    "                   refund notice per refund, from notification.sent events and\n"
    "                   from the files of the mail spool\n"
    "  double_effect    no step done twice; one_outcome: never both confirmed and\n"
    "                   cancelled; never_placed: no events without order.placed\n"
    "  forged           every event is vouched for by the records of the service\n"
    "                   that emits it: the order service placed the order with that\n"
    "                   total (saga.q.order.order) and confirmed or cancelled it as\n"
    "                   the stream says; payment charged and refunded what the\n"
    "                   stream says (saga.q.payment.order); a gate (e.g. fraud)\n"
    "                   cleared what it is said to have cleared. Records are pruned\n"
    "                   SAGA_RETENTION_MS after an order ends: older orders are\n"
    "                   counted as not cross-checked, not blamed\n"
    "  overflow         no sum of amounts or units exceeds 64 bits\n"
    "  unique_event_id  no event id names two different events; with --strict-ids\n"
    "                   also no event stored twice (duplicate publishes, e.g. from\n"
    "                   the dup_rate fault, are otherwise counted once and reported)\n"
    "and over the dead-letter stream SAGA_DLQ:\n"
    "  dead_letter      it holds only deliberately poisoned messages (undecodable,\n"
    "                   or rejected by a handler); one whose deliveries failed or\n"
    "                   whose parked predecessor never came (or with any other\n"
    "                   reason) is a violation, unless --allow-dead-letters\n"
    "Stream entries that are no event of the saga (undecodable, not on\n"
    "evt.<type>.<order_id> of their envelope, a malformed payload) are counted as\n"
    "undecodable, never as orders.\n"
    "It also reports the run's figures from the five services' counters\n"
    "(saga.ctl.<svc>.stats, since each process started): faults injected,\n"
    "redeliveries, duplicates suppressed, dead letters; and SAGA_DLQ's messages.\n"
    "The spool defaults to $SAGA_HOME/mail (SAGA_HOME defaults to ./var) when it\n"
    "exists. --settle repeats the audit for up to SECONDS until it passes, for use\n"
    "right after a run while compensations are still in flight. Exit 1 on any\n"
    "violation. --json prints {\"orders\":N,\"confirmed\":..,\"cancelled\":..,\"pending\":..,\n"
    "\"undecodable\":N,\"unverified_old\":N,\n"
    "\"figures\":{\"faults_injected\":..,\"redeliveries\":..,\"duplicates_suppressed\":..,\n"
    "\"dead_lettered\":..,\"dlq_messages\":..,\"dlq_poisoned\":..,\"dlq_failed\":..,..},\n"
    "\"violations\":[{\"order_id\":..,\"rule\":..,\"detail\":..}],...}.\n";

int ctl_cmd_audit(const char *url, int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"grace-ms", required_argument, NULL, 'g'},
                                         {"spool", required_argument, NULL, 's'},
                                         {"no-spool", no_argument, NULL, 'n'},
                                         {"settle", required_argument, NULL, 'S'},
                                         {"strict-ids", no_argument, NULL, 'I'},
                                         {"allow-dead-letters", no_argument, NULL, 'D'},
                                         {"url", required_argument, NULL, 'U'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int json = 0, no_spool = 0, strict_ids = 0, allow_dead_letters = 0, opt, rc;
    long long grace = DEFAULT_GRACE_MS, settle = 0;
    const char *spool = NULL;
    char default_spool[4096];
    ctl_conn c = {0};
    ctl_audit a;
    ctl_buf b;

    memset(&a, 0, sizeof(a));
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (opt) {
        case 'j':
            json = 1;
            break;
        case 'g':
            if (ctl_parse_ll(optarg, 0, 86400000LL, &grace) != 0) {
                ctl_err("audit", "bad --grace-ms '%s': want 0..86400000", optarg);
                return CTL_EXIT_USAGE;
            }
            break;
        case 's':
            spool = optarg;
            break;
        case 'n':
            no_spool = 1;
            break;
        case 'I':
            strict_ids = 1;
            break;
        case 'D':
            allow_dead_letters = 1;
            break;
        case 'S':
            if (ctl_parse_ll(optarg, 0, 3600, &settle) != 0) {
                ctl_err("audit", "bad --settle '%s': want seconds, 0..3600", optarg);
                return CTL_EXIT_USAGE;
            }
            break;
        case 'U':
            url = optarg;
            break;
        case 'h':
            fputs(audit_help, stdout);
            return CTL_EXIT_OK;
        default:
            return ctl_bad_option("audit", argv, optind, optopt, opt);
        }
    }
    if (optind < argc) {
        ctl_err("audit", "unexpected argument '%s' (see sagactl audit --help)", argv[optind]);
        return CTL_EXIT_USAGE;
    }
    if (no_spool) {
        spool = NULL;
    } else if (spool != NULL) {
        struct stat st;
        if (stat(spool, &st) != 0 || !S_ISDIR(st.st_mode)) {
            ctl_err("audit", "--spool %s is not a directory", spool);
            return CTL_EXIT_USAGE;
        }
    } else {
        const char *home = getenv("SAGA_HOME");
        struct stat st;
        snprintf(default_spool, sizeof(default_spool), "%s/mail",
                 home != NULL && *home ? home : "./var");
        if (stat(default_spool, &st) == 0 && S_ISDIR(st.st_mode))
            spool = default_spool;
    }
    /* The services' retention period, from the same SAGA_RETENTION_MS they
     * read (a malformed environment leaves the default). */
    saga_config cfg;
    char cfg_err[256];
    saga_config_init(&cfg, "sagactl", cfg_err, sizeof(cfg_err));
    rc = ctl_connect(&c, "audit", url, 0, 0);
    if (rc != CTL_EXIT_OK)
        return rc;
    int64_t deadline = ctl_now_ms() + settle * 1000;
    for (int round = 0;; round++) {
        ctl_audit_cleanup(&a);
        rc = ctl_audit_run(&a, &c, round == 0, spool, grace, strict_ids, allow_dead_letters,
                           cfg.retention_ms);
        if (rc != CTL_EXIT_OK)
            goto out;
        if (a.nv == 0 || !may_settle(&a) || ctl_now_ms() + 1000 > deadline)
            break;
        if (round == 0)
            ctl_err("audit",
                    "%zu violations; re-checking for up to %lld s while the fleet "
                    "settles",
                    a.nv, settle);
        ctl_sleep_ms(1000);
    }
    ctl_buf_init(&b);
    if (json)
        print_json(&a, &b);
    else
        print_text(&a, &b, url);
    fputs(ctl_buf_str(&b), stdout);
    rc = !ctl_buf_ok(&b) ? CTL_EXIT_FAIL : a.nv > 0 ? CTL_EXIT_FAIL : CTL_EXIT_OK;
    ctl_buf_cleanup(&b);
out:
    ctl_audit_cleanup(&a);
    ctl_disconnect(&c);
    return rc;
}
