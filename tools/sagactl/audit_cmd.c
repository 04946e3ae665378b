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

/* The lines of a text as a JSON array of strings. */
static json_t *lines_json(const char *w)
{
    json_t *arr = json_array();
    while (*w != '\0') {
        const char *nl = strchr(w, '\n');
        size_t n = nl != NULL ? (size_t)(nl - w) : strlen(w);
        char *line = strndup(w, n);
        json_array_append_new(arr, ctl_json_text(line));
        free(line);
        w += n + (nl != NULL);
    }
    return arr;
}

static json_t *report_json(const ctl_audit *a)
{
    json_t *reasons = json_object(), *violations = json_array(), *late = json_array();
    for (int i = 0; i < a->nreasons; i++)
        json_object_set_new(reasons, a->reasons[i].name, json_integer((json_int_t)a->reasons[i].n));
    for (size_t i = 0; i < a->nv; i++) {
        const ctl_violation *x = &a->v[i];
        json_t *v =
            json_pack("{s:o}", "order_id", ctl_json_text(x->order_id[0] ? x->order_id : NULL));
        if (x->sku[0])
            json_object_set_new(v, "sku", ctl_json_text(x->sku));
        json_object_set_new(v, "rule", ctl_json_text(x->rule));
        json_object_set_new(v, "detail", ctl_json_text(x->detail));
        json_array_append_new(violations, v);
    }
    for (size_t i = 0; i < a->nlate; i++)
        json_array_append_new(late, json_pack("{s:o, s:o, s:o}", "order_id",
                                              ctl_json_text(a->late[i].order_id), "participant",
                                              ctl_json_text(a->late[i].participant), "reason",
                                              ctl_json_text(a->late[i].reason)));
    json_t *figures =
        json_pack("{s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "services_answered",
                  a->services_answered, "participants", a->participants, "faults_injected",
                  (json_int_t)a->faults_injected, "redeliveries", (json_int_t)a->redeliveries,
                  "duplicates_suppressed", (json_int_t)a->duplicates_suppressed, "dead_lettered",
                  (json_int_t)a->dead_lettered, "dlq_messages", (json_int_t)a->dlq_messages,
                  "dlq_poisoned", (json_int_t)a->dlq_poisoned, "dlq_failed",
                  (json_int_t)a->dlq_failed, "dlq_other", (json_int_t)a->dlq_other);
    return json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:I, s:o, s:I, s:o, s:o, s:o, "
        "s:o}",
        "orders", (json_int_t)(a->confirmed + a->cancelled + a->pending), "confirmed",
        (json_int_t)a->confirmed, "cancelled", (json_int_t)a->cancelled, "pending",
        (json_int_t)a->pending, "events", (json_int_t)a->events, "undecodable",
        (json_int_t)a->undecodable, "unverified_old", (json_int_t)a->unverified_old,
        "duplicate_copies", (json_int_t)a->dup_copies, "compensations",
        (json_int_t)(a->refunds + a->releases + a->ship_cancels), "failures",
        (json_int_t)a->failures, "cancelled_by_reason", reasons, "skus_checked",
        (json_int_t)a->skus_checked, "spool", ctl_json_text(a->spool), "spool_messages",
        (json_int_t)a->spool_files, "figures", figures, "late_vetoes", late, "violations",
        violations, "warnings", lines_json(ctl_buf_str(&a->warnings)));
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
                   "                (the participants' counters since each started; %d of %d "
                   "answered)\n",
                   (unsigned long long)a->faults_injected, (unsigned long long)a->redeliveries,
                   (unsigned long long)a->duplicates_suppressed,
                   (unsigned long long)a->dead_lettered, a->services_answered, a->participants);
    ctl_buf_printf(b,
                   "  late vetoes: %zu (vetoes that came after the order was confirmed: "
                   "not applied)\n",
                   a->nlate);
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
    for (size_t i = 0; i < a->nlate; i++)
        ctl_buf_printf(b,
                       "WARNING order %s late veto: %s vetoed after the order was confirmed "
                       "(%s); not applied\n",
                       a->late[i].order_id, a->late[i].participant,
                       a->late[i].reason[0] ? a->late[i].reason : "no reason given");
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
    "evt.<partition>.<type> of their envelope, a malformed payload) are counted as\n"
    "undecodable, never as orders.\n"
    "A veto that came after its order was confirmed (order.veto_ignored) is\n"
    "reported as a WARNING naming the order and the participant, not a violation.\n"
    "It also reports the run's figures from the counters of every participant\n"
    "(saga.ctl.<name>.stats: the saga's five and every other that answers on\n"
    "saga.discover; since each process started): faults injected, redeliveries,\n"
    "duplicates suppressed, dead letters, how many answered; and SAGA_DLQ's\n"
    "messages. Exit 3 when no participant answers on saga.discover.\n"
    "The spool defaults to $SAGA_HOME/mail (SAGA_HOME defaults to ./var) when it\n"
    "exists. --settle repeats the audit for up to SECONDS until it passes, for use\n"
    "right after a run while compensations are still in flight. Exit 1 on any\n"
    "violation. --json prints {\"orders\":N,\"confirmed\":..,\"cancelled\":..,\"pending\":..,\n"
    "\"undecodable\":N,\"unverified_old\":N,\n"
    "\"figures\":{\"faults_injected\":..,\"redeliveries\":..,\"duplicates_suppressed\":..,\n"
    "\"dead_lettered\":..,\"dlq_messages\":..,\"dlq_poisoned\":..,\"dlq_failed\":..,..},\n"
    "\"late_vetoes\":[{\"order_id\":..,\"participant\":..,\"reason\":..}],\n"
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
    ctl_fleet f = {0};
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
    rc = ctl_fleet_discover(&f, &c, "audit");
    if (rc != CTL_EXIT_OK)
        goto out;
    int64_t deadline = ctl_now_ms() + settle * 1000;
    for (int round = 0;; round++) {
        ctl_audit_cleanup(&a);
        rc = ctl_audit_run(&a, &c, &f, round == 0, spool, grace, strict_ids, allow_dead_letters,
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
    if (json) {
        rc = ctl_print_json("audit", report_json(&a));
    } else {
        ctl_buf_init(&b);
        print_text(&a, &b, url);
        rc = ctl_print("audit", &b);
        ctl_buf_cleanup(&b);
    }
    if (rc == CTL_EXIT_OK && a.nv > 0)
        rc = CTL_EXIT_FAIL;
out:
    ctl_fleet_cleanup(&f);
    ctl_audit_cleanup(&a);
    ctl_disconnect(&c);
    return rc;
}
