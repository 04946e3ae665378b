/* faults.c - Fault plans at run time: inject changes or clears one service's
 * plan (saga.ctl.<svc>.faults, "k=v k=v" or "clear"), faults shows the plans
 * of all five services (or one). The services validate the settings; sagactl
 * only passes them on and shows what the service answered. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "saga/wire.h"

#define PLAN_MAX 1000 /* the runtime refuses longer plans; fail before sending */

/* What an empty plan holds (runtime/src/faults.c, saga__faults_init): the
 * text view leaves these out, so a line shows only what was injected.
 * Business rates not listed here are absent, or 0, when not injected. */
static const struct {
    const char *key;
    const char *value;
} plan_defaults[] = {
    {"seed", "1"},         {"error_rate", "0"},         {"delay_ms", "0"}, {"dup_rate", "0"},
    {"reorder_rate", "0"}, {"reorder_delay_ms", "500"}, {"crash", "\"\""},
};

/* The business rates the services' rules consult (saga_ctx_chance); the
 * runtime refuses any other key, with its reason. */
static const struct {
    const char *key;
    const char *service;
} business_faults[] = {
#define CTL_BUSINESS_FAULT(key, service) {key, service},
    SAGA_BUSINESS_FAULTS(CTL_BUSINESS_FAULT)
#undef CTL_BUSINESS_FAULT
};

static void note_business_key(const char *svc, const char *setting)
{
    size_t klen = strcspn(setting, "=");
    for (size_t i = 0; i < sizeof(business_faults) / sizeof(business_faults[0]); i++) {
        if (strlen(business_faults[i].key) != klen ||
            strncmp(business_faults[i].key, setting, klen) != 0)
            continue;
        if (strcmp(business_faults[i].service, svc) != 0)
            ctl_err("inject", "note: %.*s has no effect on %s; %s's rules consult it", (int)klen,
                    setting, svc, business_faults[i].service);
        return;
    }
}

/* Numbers are compared by value: the service writes a rate of 0 as 0.0. */
static int same_value(const ctl_json_member *m, const char *want)
{
    char text[64], *end = NULL;
    if (ctl_json_value_is(m, want))
        return 1;
    if (m->value_len == 0 || m->value_len >= sizeof(text))
        return 0;
    memcpy(text, m->value, m->value_len);
    text[m->value_len] = '\0';
    double v = strtod(text, &end);
    if (end == text || *end != '\0')
        return 0;
    double w = strtod(want, &end);
    return *end == '\0' && v == w;
}

static int is_default(const ctl_json_member *m)
{
    for (size_t i = 0; i < sizeof(plan_defaults) / sizeof(plan_defaults[0]); i++)
        if (ctl_json_key_is(m, plan_defaults[i].key))
            return same_value(m, plan_defaults[i].value);
    return same_value(m, "0");
}

/* Appends the injected settings of a service's reply ("none" for an empty
 * plan), or the reply itself when it holds no plan. */
static void add_plan_text(ctl_buf *b, const char *reply)
{
    const char *plan = NULL, *cursor = NULL;
    size_t len = 0;
    ctl_json_member m;
    int shown = 0;
    if (ctl_json_get_raw(reply, "faults", &plan, &len) != 0 || *plan != '{') {
        ctl_buf_puts(b, reply);
        return;
    }
    while (ctl_json_next(plan, &cursor, &m) == 1) {
        if (is_default(&m))
            continue;
        if (shown++)
            ctl_buf_puts(b, " ");
        ctl_json_add_pair(b, &m);
    }
    if (!shown)
        ctl_buf_puts(b, "none");
}

/* Checks a service name. One of the five is fine; any other name is only an
 * extension participant (e.g. fraud) if it answers, which the caller finds
 * out: *probe is set then, and a missing answer means an unknown name. */
static int check_service(const char *cmd, const char *name, int *probe)
{
    *probe = 0;
    if (ctl_service_index(name) >= 0)
        return CTL_EXIT_OK;
    if (!saga_valid_producer(name))
        return ctl_unknown_service(cmd, name);
    *probe = 1;
    return CTL_EXIT_OK;
}

/* Sends spec ("" reads the plan) to one service. On CTL_EXIT_OK *reply is the
 * malloc'd answer, which may still say ok:false. */
static int ask_one(ctl_conn *c, const char *cmd, const char *svc, int probe, const char *spec,
                   char **reply)
{
    char subject[128];
    natsMsg *m = NULL;
    snprintf(subject, sizeof(subject), "saga.ctl.%s.faults", svc);
    natsStatus s = ctl_request(c, subject, spec, strlen(spec), CTL_COMMAND_TIMEOUT_MS, &m);
    if (s != NATS_OK) {
        if (probe)
            return ctl_unknown_service(cmd, svc);
        if (s == NATS_NO_RESPONDERS)
            ctl_err(cmd, "%s is not running: nobody serves %s (deploy/fleet status)", svc, subject);
        else
            ctl_err(cmd, "%s does not answer on %s: %s", svc, subject, natsStatus_GetText(s));
        return CTL_EXIT_UNREACHABLE;
    }
    *reply = ctl_reply_copy(m);
    natsMsg_Destroy(m);
    if (*reply == NULL) {
        ctl_err(cmd, "out of memory");
        return CTL_EXIT_FAIL;
    }
    return CTL_EXIT_OK;
}

/* 0 when the reply says ok:true; else prints the service's error for cmd. */
static int reply_ok(const char *cmd, const char *svc, const char *reply)
{
    int ok = 0;
    if (ctl_json_get_bool(reply, "ok", &ok) == 0 && ok)
        return 0;
    char err[256] = "the service refused the plan (no reason given)";
    ctl_json_get_str(reply, "error", err, sizeof(err));
    ctl_err(cmd, "%s: %s", svc, err);
    return -1;
}

static const char inject_help[] =
    "usage: sagactl inject SERVICE KEY=VALUE... [--json] [--url URL]\n"
    "       sagactl inject SERVICE --clear [KEY=VALUE...] [--json] [--url URL]\n\n"
    "Changes SERVICE's fault plan at run time (saga.ctl.SERVICE.faults): each\n"
    "KEY=VALUE is added to the plan, or replaces the key's value; --clear empties\n"
    "the plan first (alone: no faults any more). The service checks the settings\n"
    "and refuses the whole change if one is bad (exit 1, with its reason).\n"
    "Technical faults (the runtime's):\n"
    "  error_rate=R          a handler fails transiently with chance R (0..1), then retries\n"
    "  delay_ms=N            every handler takes N ms longer (0..60000)\n"
    "  dup_rate=R            an emitted event is published twice\n"
    "  reorder_rate=R        a first delivery is held back, so events arrive out of order\n"
    "  reorder_delay_ms=N    how long it is held back (default 500)\n"
    "  crash=POINT[:N]|none  the process kills itself the Nth time it reaches POINT:\n"
    "                        in_handler, after_commit, after_publish\n"
    "  seed=N                picks which events the faults hit (repeatable runs)\n"
    "Business faults (the service's rules): decline_rate=R (payment),\n"
    "stockout_rate=R (inventory), ship_fail_rate=R (shipping). Any other key is\n"
    "refused by the service (exit 1, naming the key).\n"
    "A plan set here lives in the process: a restart goes back to SAGA_FAULTS.\n"
    "SERVICE is order, payment, inventory, shipping or notification (or a running\n"
    "extension such as fraud). Prints the settings now injected; --json prints the\n"
    "service's answer {\"ok\":true,\"service\":..,\"faults\":{..}}.\n"
    "Example: sagactl inject inventory error_rate=0.3 dup_rate=0.3 reorder_rate=0.3\n";

int ctl_cmd_inject(const char *url, int argc, char **argv)
{
    static const struct option opts[] = {{"clear", no_argument, NULL, 'c'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"url", required_argument, NULL, 'U'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int json = 0, clear = 0, probe = 0, opt, rc;
    char *reply = NULL;
    ctl_conn c = {0};
    ctl_buf spec, out;

    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            clear = 1;
            break;
        case 'j':
            json = 1;
            break;
        case 'U':
            url = optarg;
            break;
        case 'h':
            fputs(inject_help, stdout);
            return CTL_EXIT_OK;
        default:
            return ctl_bad_option("inject", argv, optind, optopt, opt);
        }
    }
    if (optind >= argc) {
        ctl_err("inject", "want a SERVICE and KEY=VALUE settings or --clear (see sagactl "
                          "inject --help)");
        return CTL_EXIT_USAGE;
    }
    const char *svc = argv[optind++];
    rc = check_service("inject", svc, &probe);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (optind >= argc && !clear) {
        ctl_err("inject",
                "want KEY=VALUE settings or --clear after %s (see sagactl inject "
                "--help)",
                svc);
        return CTL_EXIT_USAGE;
    }
    ctl_buf_init(&spec);
    ctl_buf_init(&out);
    /* The runtime applies "clear" first when it leads the line, then the
     * settings: one request, so the plan never passes through a half state. */
    if (clear)
        ctl_buf_puts(&spec, "clear");
    for (int i = optind; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        if (eq == NULL || eq == argv[i] || strpbrk(argv[i], " ,\t\n") != NULL) {
            ctl_err("inject", "bad setting '%s': want KEY=VALUE, e.g. error_rate=0.2%s", argv[i],
                    strcmp(argv[i], "clear") == 0 ? " (to empty the plan: --clear)" : "");
            rc = CTL_EXIT_USAGE;
            goto out;
        }
        if (spec.len > 0)
            ctl_buf_puts(&spec, " ");
        ctl_buf_puts(&spec, argv[i]);
    }

    if (spec.len > PLAN_MAX) {
        ctl_err("inject", "the plan is too long (%zu bytes, at most %d)", spec.len, PLAN_MAX);
        rc = CTL_EXIT_USAGE;
        goto out;
    }
    rc = ctl_connect(&c, "inject", url, 0, 0);
    if (rc != CTL_EXIT_OK) {
        /* An unknown name stays a usage error even without a server. */
        if (probe)
            rc = ctl_unknown_service("inject", svc);
        goto out;
    }
    rc = ask_one(&c, "inject", svc, probe, ctl_buf_str(&spec), &reply);
    if (rc != CTL_EXIT_OK)
        goto out;
    rc = reply_ok("inject", svc, reply) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
    for (int i = optind; rc == CTL_EXIT_OK && i < argc; i++)
        note_business_key(svc, argv[i]);
    if (json) {
        ctl_json_raw_object(&out, reply);
        ctl_buf_puts(&out, "\n");
    } else if (rc == CTL_EXIT_OK) {
        ctl_buf_printf(&out, "%s: ", svc);
        add_plan_text(&out, reply);
        ctl_buf_puts(&out, "\n");
    }
    if (!ctl_buf_ok(&out)) {
        ctl_err("inject", "out of memory");
        rc = CTL_EXIT_FAIL;
        goto out;
    }
    fputs(ctl_buf_str(&out), stdout);
out:
    free(reply);
    ctl_buf_cleanup(&spec);
    ctl_buf_cleanup(&out);
    ctl_disconnect(&c);
    return rc;
}

static const char faults_help[] =
    "usage: sagactl faults [SERVICE] [--json] [--url URL]\n\n"
    "Shows the fault plans of the five services (or of SERVICE), asked on\n"
    "saga.ctl.<svc>.faults: one line per service with the settings injected\n"
    "(\"none\" for an empty plan, \"unavailable\" when it does not answer in 1 s).\n"
    "--json prints {\"order\":{..the whole plan..},..,\"notification\":\"unavailable\"}\n"
    "(with SERVICE: that service's answer). Change plans with sagactl inject.\n"
    "Exit 3 when SERVICE, or every service, does not answer.\n";

/* Prints one line (or member) per service; replies[i] NULL is unavailable. */
static void print_plans(ctl_buf *b, char *const replies[CTL_NSERVICES], int json)
{
    if (json)
        ctl_buf_puts(b, "{");
    for (int i = 0; i < CTL_NSERVICES; i++) {
        const char *plan = NULL;
        size_t len = 0;
        if (json) {
            ctl_json_key(b, i == 0, ctl_services[i]);
            if (replies[i] != NULL && ctl_json_get_raw(replies[i], "faults", &plan, &len) == 0 &&
                *plan == '{')
                ctl_buf_add(b, plan, len);
            else
                ctl_json_str(b, "unavailable");
            continue;
        }
        ctl_buf_printf(b, "%-13s ", ctl_services[i]);
        if (replies[i] != NULL)
            add_plan_text(b, replies[i]);
        else
            ctl_buf_puts(b, "unavailable");
        ctl_buf_puts(b, "\n");
    }
    if (json)
        ctl_buf_puts(b, "}\n");
}

int ctl_cmd_faults(const char *url, int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"url", required_argument, NULL, 'U'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int json = 0, probe = 0, opt, rc;
    char *replies[CTL_NSERVICES] = {NULL};
    char *reply = NULL;
    const char *svc = NULL;
    ctl_conn c = {0};
    ctl_buf out;

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
            fputs(faults_help, stdout);
            return CTL_EXIT_OK;
        default:
            return ctl_bad_option("faults", argv, optind, optopt, opt);
        }
    }
    if (argc - optind > 1) {
        ctl_err("faults",
                "unexpected argument '%s': faults only shows plans; change one with "
                "sagactl inject SERVICE KEY=VALUE... (see sagactl inject --help)",
                argv[optind + 1]);
        return CTL_EXIT_USAGE;
    }
    if (optind < argc) {
        svc = argv[optind];
        rc = check_service("faults", svc, &probe);
        if (rc != CTL_EXIT_OK)
            return rc;
    }
    ctl_buf_init(&out);
    rc = ctl_connect(&c, "faults", url, 0, 0);
    if (rc != CTL_EXIT_OK) {
        if (probe)
            rc = ctl_unknown_service("faults", svc);
        goto out;
    }
    if (svc != NULL) {
        rc = ask_one(&c, "faults", svc, probe, "", &reply);
        if (rc != CTL_EXIT_OK)
            goto out;
        if (reply_ok("faults", svc, reply) != 0) {
            rc = CTL_EXIT_FAIL;
            goto out;
        }
        if (json) {
            ctl_json_raw_object(&out, reply);
            ctl_buf_puts(&out, "\n");
        } else {
            ctl_buf_printf(&out, "%-13s ", svc);
            add_plan_text(&out, reply);
            ctl_buf_puts(&out, "\n");
        }
    } else {
        if (ctl_ask_all(&c, "ctl", "faults", "", replies) != 0) {
            ctl_err("faults", "cannot send the requests: connection to %s lost", url);
            rc = CTL_EXIT_UNREACHABLE;
            goto out;
        }
        print_plans(&out, replies, json);
        rc = CTL_EXIT_UNREACHABLE;
        for (int i = 0; i < CTL_NSERVICES; i++)
            if (replies[i] != NULL)
                rc = CTL_EXIT_OK;
        if (rc != CTL_EXIT_OK)
            ctl_err("faults", "no service answers: is the fleet up? (deploy/fleet status)");
    }
    if (!ctl_buf_ok(&out)) {
        ctl_err("faults", "out of memory");
        rc = CTL_EXIT_FAIL;
        goto out;
    }
    fputs(ctl_buf_str(&out), stdout);
out:
    for (int i = 0; i < CTL_NSERVICES; i++)
        free(replies[i]);
    free(reply);
    ctl_buf_cleanup(&out);
    ctl_disconnect(&c);
    return rc;
}
