/* faults.c - Fault plans at run time: inject changes or clears one participant's
 * plan (saga.ctl.<name>.faults, "k=v k=v" or "clear"), faults shows the plans
 * of every participant that serves it (or of one). The services validate the settings; sagactl
 * only passes them on and shows what the service answered. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "saga/wire.h"

/* What an empty plan holds (runtime/src/faults.c, saga__faults_init): the
 * text view leaves these out, so a line shows only what was injected.
 * Business rates not listed here are absent, or 0, when not injected. */
static const struct {
    const char *key;
    const char *value;
} plan_defaults[] = {
    {"seed", "1"},         {"error_rate", "0"},         {"delay_ms", "0"}, {"dup_rate", "0"},
    {"reorder_rate", "0"}, {"reorder_delay_ms", "500"}, {"crash", ""},
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

/* Strings are compared as text, numbers by value: the service writes a
 * rate of 0 as 0.0. */
static int is_default(const char *key, const json_t *v)
{
    const char *want = "0";
    char *end = NULL;
    for (size_t i = 0; i < sizeof(plan_defaults) / sizeof(plan_defaults[0]); i++)
        if (strcmp(key, plan_defaults[i].key) == 0)
            want = plan_defaults[i].value;
    if (json_is_string(v))
        return strcmp(json_string_value(v), want) == 0;
    double w = strtod(want, &end);
    return json_is_number(v) && end != want && *end == '\0' && json_number_value(v) == w;
}

void ctl_faults_text(ctl_buf *b, json_t *reply)
{
    json_t *plan = json_object_get(reply, "faults"), *v;
    const char *key;
    int shown = 0;
    if (!json_is_object(plan)) {
        ctl_json_flatten(b, reply, NULL);
        return;
    }
    json_object_foreach(plan, key, v)
    {
        if (is_default(key, v))
            continue;
        if (shown++)
            ctl_buf_puts(b, " ");
        ctl_json_add_pair(b, key, v);
    }
    if (!shown)
        ctl_buf_puts(b, "none");
}

/* Connects and finds out who is in the fleet for cmd; a NAME (svc, may be
 * NULL) must be one of the saga's five or have answered discovery. Returns
 * CTL_EXIT_OK or an exit code after saying why. */
static int open_fleet(ctl_conn *c, ctl_fleet *f, const char *cmd, const char *url, const char *svc)
{
    int rc = ctl_connect(c, cmd, url, 0, 0);
    if (rc == CTL_EXIT_OK)
        rc = ctl_fleet_discover(f, c, cmd);
    if (rc == CTL_EXIT_OK && svc != NULL && !ctl_fleet_knows(f, svc))
        rc = ctl_fleet_unknown(f, cmd, svc);
    return rc;
}

int ctl_faults_ask(ctl_conn *c, const char *cmd, const char *svc, const char *spec, json_t **reply)
{
    char subject[128];
    natsMsg *m = NULL;
    snprintf(subject, sizeof(subject), SAGA_SUBJ_CTL_FMT, svc, "faults");
    natsStatus s = ctl_request(c, subject, spec, strlen(spec), CTL_COMMAND_TIMEOUT_MS, &m);
    if (s != NATS_OK) {
        if (s == NATS_NO_RESPONDERS)
            ctl_err(cmd, "%s is not running: nobody serves %s (deploy/fleet status)", svc, subject);
        else
            ctl_err(cmd, "%s does not answer on %s: %s", svc, subject, natsStatus_GetText(s));
        return CTL_EXIT_UNREACHABLE;
    }
    *reply = ctl_reply_json(m);
    natsMsg_Destroy(m);
    if (*reply == NULL) {
        ctl_err(cmd, "out of memory");
        return CTL_EXIT_FAIL;
    }
    return CTL_EXIT_OK;
}

int ctl_faults_ok(const char *cmd, const char *svc, json_t *reply)
{
    const char *err = json_string_value(json_object_get(reply, "error"));
    if (json_is_true(json_object_get(reply, "ok")))
        return 0;
    ctl_err(cmd, "%s: %s", svc,
            err != NULL ? err : "the service refused the plan (no reason given)");
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
    "                        in_handler, after_commit, after_publish, after_ack\n"
    "  seed=N                picks which events the faults hit (repeatable runs)\n"
    "Business faults (the service's rules): decline_rate=R (payment),\n"
    "stockout_rate=R (inventory), ship_fail_rate=R (shipping). Any other key is\n"
    "refused by the service (exit 1, naming the key).\n"
    "A plan set here lives in the process: a restart goes back to SAGA_FAULTS.\n"
    "SERVICE is order, payment, inventory, shipping, notification or any other\n"
    "participant that answers on saga.discover (e.g. fraud). Prints the settings now injected; "
    "--json prints the\n"
    "service's answer {\"ok\":true,\"service\":..,\"faults\":{..}}.\n"
    "Example: sagactl inject inventory error_rate=0.3 dup_rate=0.3 reorder_rate=0.3\n";

int ctl_cmd_inject(const char *url, int argc, char **argv)
{
    int json = 0, clear = 0, rc;
    const ctl_option opts[] = {{"clear", NULL, &clear}, {"json", NULL, &json}, {"url", &url, NULL}};
    json_t *reply = NULL;
    ctl_conn c = {0};
    ctl_fleet f = {0};
    ctl_buf spec, out;

    rc = ctl_parse_options("inject", inject_help, argc, argv, opts, sizeof(opts) / sizeof(opts[0]));
    if (rc != CTL_EXIT_OK)
        return rc < 0 ? CTL_EXIT_OK : rc;
    if (optind >= argc) {
        ctl_err("inject", "want a SERVICE and KEY=VALUE settings or --clear (see sagactl "
                          "inject --help)");
        return CTL_EXIT_USAGE;
    }
    const char *svc = argv[optind++];
    if (!saga_valid_producer(svc)) {
        ctl_err("inject", "'%s' is no participant's name (see sagactl participants)", svc);
        return CTL_EXIT_USAGE;
    }
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

    if (spec.len > CTL_PLAN_MAX) {
        ctl_err("inject", "the plan is too long (%zu bytes, at most %d)", spec.len, CTL_PLAN_MAX);
        rc = CTL_EXIT_USAGE;
        goto out;
    }
    rc = open_fleet(&c, &f, "inject", url, svc);
    if (rc != CTL_EXIT_OK)
        goto out;
    rc = ctl_faults_ask(&c, "inject", svc, ctl_buf_str(&spec), &reply);
    if (rc != CTL_EXIT_OK)
        goto out;
    rc = ctl_faults_ok("inject", svc, reply) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
    for (int i = optind; rc == CTL_EXIT_OK && i < argc; i++)
        note_business_key(svc, argv[i]);
    if (json) {
        ctl_buf_json(&out, reply);
        ctl_buf_puts(&out, "\n");
    } else if (rc == CTL_EXIT_OK) {
        ctl_buf_printf(&out, "%s: ", svc);
        ctl_faults_text(&out, reply);
        ctl_buf_puts(&out, "\n");
    }
    if (ctl_print("inject", &out) != CTL_EXIT_OK)
        rc = CTL_EXIT_FAIL;
out:
    json_decref(reply);
    ctl_buf_cleanup(&spec);
    ctl_buf_cleanup(&out);
    ctl_fleet_cleanup(&f);
    ctl_disconnect(&c);
    return rc;
}

static const char faults_help[] =
    "usage: sagactl faults [NAME] [--json] [--url URL]\n\n"
    "Shows the fault plans of every participant that serves saga.ctl.<name>.faults\n"
    "(found on saga.discover: the saga's five, then any other), or of NAME: one line\n"
    "per participant with the settings injected (\"none\" for an empty plan,\n"
    "\"unavailable\" when it does not answer in 1 s). --json prints\n"
    "{\"order\":{..the whole plan..},..,\"notification\":\"unavailable\"}\n"
    "(with NAME: its answer). Change plans with sagactl inject. Exit 3 when NAME,\n"
    "or every participant, does not answer.\n";

/* Appends one line (or member) per row; a row without a reply is unavailable. */
static void add_plans(ctl_buf *b, const ctl_fleet *f, int json)
{
    if (json) {
        json_t *all = json_object();
        for (size_t i = 0; i < f->n; i++) {
            json_t *plan = json_object_get(f->replies[i], "faults");
            json_object_set_new(all, f->names[i],
                                json_is_object(plan) ? json_incref(plan)
                                                     : json_string("unavailable"));
        }
        ctl_buf_json(b, all);
        ctl_buf_puts(b, "\n");
        json_decref(all);
        return;
    }
    for (size_t i = 0; i < f->n; i++) {
        ctl_buf_printf(b, "%-13s ", f->names[i]);
        if (f->replies[i] != NULL)
            ctl_faults_text(b, f->replies[i]);
        else
            ctl_buf_puts(b, "unavailable");
        ctl_buf_puts(b, "\n");
    }
}

int ctl_cmd_faults(const char *url, int argc, char **argv)
{
    int json = 0, rc;
    json_t *reply = NULL;
    const char *svc = NULL;
    ctl_conn c = {0};
    ctl_fleet f = {0};
    ctl_buf out;

    rc = ctl_parse_opts("faults", faults_help, argc, argv, &url, &json, NULL);
    if (rc != CTL_EXIT_OK)
        return rc < 0 ? CTL_EXIT_OK : rc;
    if (argc - optind > 1) {
        ctl_err("faults",
                "unexpected argument '%s': faults only shows plans; change one with "
                "sagactl inject NAME KEY=VALUE... (see sagactl inject --help)",
                argv[optind + 1]);
        return CTL_EXIT_USAGE;
    }
    if (optind < argc) {
        svc = argv[optind];
        if (!saga_valid_producer(svc)) {
            ctl_err("faults", "'%s' is no participant's name (see sagactl participants)", svc);
            return CTL_EXIT_USAGE;
        }
    }
    ctl_buf_init(&out);
    rc = open_fleet(&c, &f, "faults", url, svc);
    if (rc != CTL_EXIT_OK)
        goto out;
    if (svc != NULL) {
        rc = ctl_faults_ask(&c, "faults", svc, "", &reply);
        if (rc != CTL_EXIT_OK)
            goto out;
        if (ctl_faults_ok("faults", svc, reply) != 0) {
            rc = CTL_EXIT_FAIL;
            goto out;
        }
        if (json) {
            ctl_buf_json(&out, reply);
        } else {
            ctl_buf_printf(&out, "%-13s ", svc);
            ctl_faults_text(&out, reply);
        }
        ctl_buf_puts(&out, "\n");
    } else {
        if (ctl_fleet_ask(&f, &c, SAGA_SUBJ_CTL_FMT, "faults", "") != 0) {
            ctl_err("faults", "cannot send the requests: connection to %s lost", url);
            rc = CTL_EXIT_UNREACHABLE;
            goto out;
        }
        add_plans(&out, &f, json);
        rc = CTL_EXIT_UNREACHABLE;
        for (size_t i = 0; i < f.n; i++)
            if (f.replies[i] != NULL)
                rc = CTL_EXIT_OK;
        if (rc != CTL_EXIT_OK)
            ctl_err("faults", "no participant answers on saga.ctl.<name>.faults");
    }
    if (ctl_print("faults", &out) != CTL_EXIT_OK)
        rc = CTL_EXIT_FAIL;
out:
    json_decref(reply);
    ctl_buf_cleanup(&out);
    ctl_fleet_cleanup(&f);
    ctl_disconnect(&c);
    return rc;
}
