/* test_cli.c - sagactl as an operator uses it, against a real fleet (a
 * nats-server and the five services): its exit codes, its --json output, fault
 * plans injected and cleared at run time, and the dead-letter queue from a
 * poisoned message through show, bounded replays and purge to the audit. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "proc.h"
#include "saga/wire.h"
#include "tfleet.h"

#define SAGACTL SAGA_BUILD_DIR "/tools/sagactl"
#define RUN_MS 120000  /* a command that takes longer has hung */
#define WAIT_MS 60000  /* for the fleet to act on something */
#define QUICK_MS 20000 /* "fails fast": well above the 2 s connect timeout */
#define MAX_ARGS 24

static tfleet F;
static char OUT[1 << 18], ERR[1 << 14]; /* the last command's stdout and stderr */
static char confirmed_id[64];

static int group_setup(void **state)
{
    *state = &F;
    return tfleet_start(&F, SAGA_BUILD_DIR, NULL);
}

static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *fp = fopen(path, "r");
    size_t n = fp != NULL ? fread(buf, 1, cap - 1, fp) : 0;
    buf[n] = '\0';
    if (fp != NULL)
        fclose(fp);
}

/* Runs sagactl --url=URL ARGS (NULL-terminated) with stdin from /dev/null,
 * its stdout and stderr into OUT and ERR. Returns its exit status, or -1
 * when it did not run or did not exit within timeout_ms. */
static int run_at(const char *url, int timeout_ms, const char *const *args)
{
    char out_env[600], err_env[600], url_arg[200];
    const char *argv[MAX_ARGS + 8];
    int n = 0, status = 0;
    snprintf(out_env, sizeof(out_env), "CTL_OUT=%s/ctl.out", tsrv_dir(F.srv));
    snprintf(err_env, sizeof(err_env), "CTL_ERR=%s/ctl.err", tsrv_dir(F.srv));
    snprintf(url_arg, sizeof(url_arg), "--url=%s", url);
    /* A shell only to split the two streams and to take the terminal away:
     * tproc_spawn gives a child one log for both. */
    argv[n++] = "/bin/sh";
    argv[n++] = "-c";
    argv[n++] = "exec \"$@\" >\"$CTL_OUT\" 2>\"$CTL_ERR\" </dev/null";
    argv[n++] = "sh";
    argv[n++] = SAGACTL;
    argv[n++] = url_arg;
    for (int i = 0; args[i] != NULL && i < MAX_ARGS; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    const char *env[] = {out_env, err_env, NULL};
    OUT[0] = ERR[0] = '\0';
    pid_t pid = tproc_spawn(argv, env, NULL);
    if (pid <= 0)
        return -1;
    if (tproc_wait(pid, timeout_ms, &status) != 0) {
        tproc_kill(pid);
        return -1;
    }
    slurp(out_env + strlen("CTL_OUT="), OUT, sizeof(OUT));
    slurp(err_env + strlen("CTL_ERR="), ERR, sizeof(ERR));
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int runv(const char *const *args)
{
    return run_at(tsrv_url(F.srv), RUN_MS, args);
}

/* Runs sagactl with the given arguments and fails the test, showing what it
 * printed, unless it exits with want. */
#define EXPECT(want, ...)                                                                          \
    do {                                                                                           \
        const char *const args_[] = {__VA_ARGS__, NULL};                                           \
        expect_(want, args_, __LINE__);                                                            \
    } while (0)

static void expect_(int want, const char *const *args, int line)
{
    int rc = runv(args);
    if (rc == want)
        return;
    fprintf(stderr, "line %d: sagactl", line);
    for (int i = 0; args[i] != NULL; i++)
        fprintf(stderr, " %s", args[i]);
    fprintf(stderr, "\nexit %d, want %d\n--- stdout\n%s--- stderr\n%s---\n", rc, want, OUT, ERR);
    fail_msg("sagactl exited %d, want %d (line %d)", rc, want, line);
}

static void assert_out_has(const char *text)
{
    if (strstr(OUT, text) == NULL)
        fail_msg("stdout lacks '%s':\n%s", text, OUT);
}

static void assert_err_has(const char *text)
{
    if (strstr(ERR, text) == NULL)
        fail_msg("stderr lacks '%s':\n%s", text, ERR);
}

/* The value of "key":"..." in OUT, copied into buf. */
static void out_string(const char *key, char *buf, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":\"", key);
    const char *p = strstr(OUT, pat);
    if (p == NULL)
        fail_msg("stdout lacks %s:\n%s", pat, OUT);
    p += strlen(pat);
    size_t n = strcspn(p, "\"");
    assert_true(n < cap);
    memcpy(buf, p, n);
    buf[n] = '\0';
}

/* The number after "key": in OUT; fails when absent. */
static long long out_number(const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = strstr(OUT, pat);
    if (p == NULL)
        fail_msg("stdout lacks %s:\n%s", pat, OUT);
    return strtoll(p + strlen(pat), NULL, 10);
}

/* The sequence of the first entry of a `dlq list --json` array in OUT whose
 * text holds needle; 0 when none does. */
static unsigned long long find_seq(const char *needle)
{
    const char *p = strstr(OUT, "{\"seq\":");
    while (p != NULL) {
        const char *next = strstr(p + 1, "{\"seq\":");
        const char *hit = strstr(p, needle);
        if (hit != NULL && (next == NULL || hit < next))
            return strtoull(p + strlen("{\"seq\":"), NULL, 10);
        p = next;
    }
    return 0;
}

typedef struct dlq_wait {
    const char *service;
    const char *needle;
} dlq_wait;

/* Condition: `dlq list --service SVC --json` shows an entry holding needle. */
static int dlq_has(void *arg)
{
    const dlq_wait *w = arg;
    const char *const args[] = {"dlq", "list", "--service", w->service, "--json", NULL};
    return runv(args) == 0 && find_seq(w->needle) != 0;
}

/* Waits until payment's dead letters hold needle; returns that one's seq. */
static unsigned long long wait_dead_letter(const char *needle, char seq[32])
{
    dlq_wait w = {"payment", needle};
    if (tproc_wait_until(dlq_has, &w, WAIT_MS) != 0)
        fail_msg("no dead letter of payment with %s in time; last list:\n%s%s", needle, OUT, ERR);
    unsigned long long n = find_seq(needle);
    snprintf(seq, 32, "%llu", n);
    return n;
}

static void test_place_json_then_get_json_shows_confirmed(void **state)
{
    (void)state;
    EXPECT(0, "stock", "set", "CLI1", "10");
    EXPECT(0, "place", "--customer", "cli", "--item", "CLI1:2:1250", "--json");
    out_string("order_id", confirmed_id, sizeof(confirmed_id));
    assert_out_has("\"duplicate\":false");
    EXPECT(0, "get", confirmed_id, "--wait", "60", "--json");
    assert_out_has("\"state\":\"CONFIRMED\"");
    assert_out_has("\"payment\":{");
}

static void test_cancel_of_a_confirmed_order_is_refused(void **state)
{
    (void)state;
    assert_true(confirmed_id[0] != '\0');
    EXPECT(1, "cancel", confirmed_id);
    assert_err_has("confirmed");
    EXPECT(0, "get", confirmed_id, "--json");
    assert_out_has("\"state\":\"CONFIRMED\"");
}

static void test_bad_arguments_exit_2(void **state)
{
    static const char *const bad[][8] = {
        {"frobnicate"},
        {"place"},
        {"place", "--customer", "c", "--item", "NOQTY"},
        {"place", "--customer", "c", "--item", "A:1:1", "--traceparent", "00-abc-def-01"},
        {"get", "not an id!"},
        {"get"},
        {"cancel"},
        {"stock", "set", "W"},
        {"audit", "--settle", "soon"},
        {"inject", "payment"},
        {"inject", "payment", "clear"},
        {"inject", "payment", "--bogus"},
        {"faults", "payment", "error_rate=0.1"},
        {"dlq"},
        {"dlq", "replay"},
        {"dlq", "replay", "abc"},
        {"dlq", "replay", "1", "--max-replays", "0"},
        {"dlq", "show"},
        {"dlq", "purge", "--all"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_(2, bad[i], __LINE__);
        if (ERR[0] == '\0')
            fail_msg("'%s %s' exited 2 without saying why", bad[i][0],
                     bad[i][1] != NULL ? bad[i][1] : "");
    }
    /* An unknown service is named, with the ones there are. */
    EXPECT(2, "inject", "nosuch", "error_rate=0.1");
    assert_err_has("nosuch");
    assert_err_has("order, payment, inventory, shipping, notification");
    EXPECT(2, "faults", "nosuch");
    assert_err_has("order, payment, inventory, shipping, notification");
    /* Nobody at the terminal to ask: a purge needs --yes. */
    EXPECT(2, "dlq", "purge");
    assert_err_has("--yes");
}

static void test_unreachable_url_exits_3_quickly(void **state)
{
    /* Port 1 on the loopback: nothing listens, the connection is refused. */
    static const char *const cmds[][4] = {{"stats"}, {"faults"}, {"dlq", "list"}, {"audit"}};
    (void)state;
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        int rc = run_at("nats://127.0.0.1:1", QUICK_MS, cmds[i]);
        if (rc != 3)
            fail_msg("%s against a dead URL exited %d (want 3 within %d ms)\n%s", cmds[i][0], rc,
                     QUICK_MS, ERR);
        assert_err_has("cannot reach NATS");
    }
}

/* A broker that answers but where no participant runs (an old fleet, or one
 * not started yet): the commands that ask the participants say so. */
static void test_no_participant_is_said_and_exits_3(void **state)
{
    static const char *const cmds[][4] = {{"stats"},
                                          {"faults"},
                                          {"faults", "payment"},
                                          {"inject", "payment", "seed=2"},
                                          {"get", "some-order"},
                                          {"audit", "--no-spool"}};
    tsrv *empty = NULL;
    (void)state;
    assert_int_equal(tsrv_start(&empty), 0);
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        int rc = run_at(tsrv_url(empty), QUICK_MS, cmds[i]);
        if (rc != 3 || strstr(ERR, "no participant answered on saga.discover") == NULL) {
            tsrv_destroy(empty);
            fail_msg("%s with no participant exited %d (want 3, said why)\n%s", cmds[i][0], rc,
                     ERR);
        }
    }
    tsrv_destroy(empty);
}

static void test_inject_and_faults_round_trip(void **state)
{
    (void)state;
    EXPECT(0, "inject", "payment", "decline_rate=0.25", "--json");
    assert_out_has("\"ok\":true");
    assert_out_has("\"decline_rate\":0.25");
    EXPECT(0, "faults", "payment");
    assert_out_has("decline_rate=0.25");
    EXPECT(0, "inject", "inventory", "error_rate=0.5", "reorder_delay_ms=50");
    assert_out_has("inventory: error_rate=0.5 reorder_delay_ms=50");

    /* All five: the plans as set, "none" for an empty one. */
    EXPECT(0, "faults");
    for (int i = 0; i < TFLEET_NSVC; i++)
        assert_out_has(tfleet_names[i]);
    assert_out_has("payment       decline_rate=0.25");
    assert_out_has("shipping      none");
    EXPECT(0, "faults", "--json");
    assert_out_has("\"payment\":{\"seed\":1,");
    assert_out_has("\"decline_rate\":0.25");
    assert_out_has("\"error_rate\":0.5");

    /* A bad value: the service's own reason, exit 1, and the plan unchanged. */
    EXPECT(1, "inject", "payment", "error_rate=7");
    assert_err_has("bad fault error_rate=7");
    EXPECT(0, "faults", "payment");
    assert_out_has("decline_rate=0.25");
    if (strstr(OUT, "error_rate") != NULL)
        fail_msg("a refused setting changed the plan: %s", OUT);

    /* A key no rule knows is refused by name: a crafted one once went into
     * the reply unescaped, and `faults` then showed "none" for a plan that
     * declined every order. */
    EXPECT(1, "inject", "payment", "a\"}{\"x=0", "decline_rate=1");
    assert_err_has("unknown fault");
    EXPECT(0, "faults", "payment");
    assert_out_has("decline_rate=0.25");
    EXPECT(1, "inject", "payment", "declin_rate=1");
    assert_err_has("unknown fault \"declin_rate\"");

    /* --clear empties the plan; with settings it replaces it. */
    EXPECT(0, "inject", "payment", "--clear");
    assert_out_has("payment: none");
    EXPECT(0, "faults", "payment", "--json");
    if (strstr(OUT, "decline_rate") != NULL)
        fail_msg("--clear left a fault: %s", OUT);
    EXPECT(0, "inject", "inventory", "--clear", "seed=9");
    assert_out_has("inventory: seed=9");
    EXPECT(0, "inject", "inventory", "--clear");

    /* A service that does not answer shows as unavailable. */
    int k = tfleet_index("notification");
    assert_int_equal(tfleet_kill_service(&F, k), 0);
    EXPECT(0, "faults");
    assert_out_has("notification  unavailable");
    assert_out_has("order         none");
    EXPECT(0, "faults", "--json");
    assert_out_has("\"notification\":\"unavailable\"");
    EXPECT(3, "faults", "notification");
    EXPECT(3, "inject", "notification", "delay_ms=1");
    assert_int_equal(tfleet_start_service(&F, k), 0);
    EXPECT(0, "faults", "notification");
}

/* Condition: the order's cancellation mail is in the spool. */
static int mail_cancelled(void *arg)
{
    return tfleet_spool_has(&F, arg, "cancelled");
}

#define CLIENT_TRACE "4bf92f3577b34da6a3ce929d0e0e4736"

/* Places one order of sku with the fault set on svc, and checks that the
 * order, its trace and the customer's mail say the outcome was injected. */
static void check_injected_outcome(const char *svc, const char *fault, const char *sku,
                                   const char *reason)
{
    char id[64], path[1024], mail[8192];
    EXPECT(0, "inject", svc, fault);
    EXPECT(0, "stock", "set", sku, "10");
    char item[64];
    snprintf(item, sizeof(item), "%s:1:500", sku);
    /* Placed by a caller that traces: the order's events continue its trace. */
    EXPECT(0, "place", "--customer", "drill", "--item", item, "--json", "--traceparent",
           "00-" CLIENT_TRACE "-00f067aa0ba902b7-01");
    out_string("order_id", id, sizeof(id));
    EXPECT(0, "get", id, "--wait", "60", "--json");
    assert_out_has("\"state\":\"CANCELLED\"");
    assert_out_has(reason);
    assert_out_has(SAGA_FAULT_INJECTED);
    EXPECT(0, "get", id);
    assert_out_has(SAGA_FAULT_INJECTED);
    /* --json names each event's trace and span id; the timeline is headed
     * by the order's trace id. */
    char trace_id[64], head[128];
    EXPECT(0, "trace", id, "--json");
    out_string("trace_id", trace_id, sizeof(trace_id));
    assert_string_equal(trace_id, CLIENT_TRACE);
    assert_out_has("\"span_id\":\"");
    EXPECT(0, "trace", id);
    assert_out_has(SAGA_FAULT_INJECTED);
    snprintf(head, sizeof(head), "order %s, trace %s,", id, CLIENT_TRACE);
    assert_out_has(head);
    if (tproc_wait_until(mail_cancelled, id, WAIT_MS) != 0)
        fail_msg("no cancellation mail for %s", id);
    snprintf(path, sizeof(path), "%s/%s.cancelled.txt", F.mail, id);
    slurp(path, mail, sizeof(mail));
    /* The headline too, not only the detail further down. */
    char headline[200];
    snprintf(headline, sizeof(headline), "was cancelled because");
    const char *h = strstr(mail, headline);
    if (h == NULL || strstr(h, "(" SAGA_FAULT_INJECTED ").") == NULL ||
        strstr(h, "(" SAGA_FAULT_INJECTED ").") > strchr(h, '\n'))
        fail_msg("the mail's headline does not say the outcome was injected:\n%s", mail);
    if (strstr(mail, "Detail: ") == NULL ||
        strstr(strstr(mail, "Detail: "), SAGA_FAULT_INJECTED) == NULL)
        fail_msg("the mail's detail does not say the outcome was injected:\n%s", mail);
    EXPECT(0, "inject", svc, "--clear");
}

/* An injected stock-out or shipping failure read like a real one in `get`,
 * `trace` and the mail; a declined payment already said "fault plan". All
 * three now say it in the same words. */
static void test_injected_outcomes_say_so(void **state)
{
    (void)state;
    check_injected_outcome("inventory", "stockout_rate=1", "CLIDRILL1", "out_of_stock");
    check_injected_outcome("shipping", "ship_fail_rate=1", "CLIDRILL2", "shipping_failed");
    check_injected_outcome("payment", "decline_rate=1", "CLIDRILL3", "payment_declined");

    /* A real stock-out says nothing of the kind. */
    char id[64];
    EXPECT(0, "stock", "set", "CLIDRILL4", "0");
    EXPECT(0, "place", "--customer", "drill", "--item", "CLIDRILL4:1:500", "--json");
    out_string("order_id", id, sizeof(id));
    EXPECT(0, "get", id, "--wait", "60", "--json");
    assert_out_has("out of stock: sku CLIDRILL4");
    if (strstr(OUT, SAGA_FAULT_INJECTED) != NULL)
        fail_msg("a real stock-out reads as injected: %s", OUT);
}

/* crash=after_commit:1 counted the batch of the inject command itself: the
 * service died before answering and inject reported a timeout (exit 3)
 * although the plan was applied. Only batches of events count. */
static void test_crash_point_waits_for_the_next_event_batch(void **state)
{
    char id[64];
    int status = 0;
    (void)state;
    int k = tfleet_index("payment");
    pid_t pid = F.pid[k];
    EXPECT(0, "inject", "payment", "crash=after_commit:1");
    assert_out_has("crash=after_commit:1");
    EXPECT(0, "faults", "payment");
    assert_out_has("crash=after_commit:1");
    EXPECT(0, "faults", "payment", "--json");
    assert_out_has("\"crash\":\"after_commit:1\"");
    EXPECT(0, "stats", "--json");
    assert_int_equal(waitpid(pid, &status, WNOHANG), 0); /* still running */

    EXPECT(0, "stock", "set", "CLICRASH", "10");
    EXPECT(0, "place", "--customer", "crash", "--item", "CLICRASH:1:500", "--json");
    out_string("order_id", id, sizeof(id));
    /* The order's event batch brings the crash. */
    assert_int_equal(tproc_wait(pid, WAIT_MS, &status), 0);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    F.pid[k] = -1;
    assert_int_equal(tfleet_start_service(&F, k), 0);
    /* Committed before the crash: nothing lost, and the plan is gone. */
    EXPECT(0, "get", id, "--wait", "60", "--json");
    assert_out_has("\"state\":\"CONFIRMED\"");
    EXPECT(0, "faults", "payment");
    assert_out_has("none");
}

static void test_poisoned_message_show_and_bounded_replay(void **state)
{
    static const unsigned char garbage[] = {0xff, 0xfe, 0x00, 'n', 'o', 't', ' ',  'a', 'n',
                                            ' ',  'e',  'v',  'e', 'n', 't', 0x01, 0x02};
    char seq[32], older[32];
    (void)state;
    char subject[128], want[160];
    snprintf(subject, sizeof(subject), "%s", tjs_subject("order.placed", "CLIPOISON"));
    assert_int_equal(tjs_publish_raw(&F.t, subject, garbage, sizeof(garbage), "cli-poison-1"), 0);
    /* Payment and inventory both consume order.placed: each sets it aside. */
    wait_dead_letter("\"replays\":0", seq);
    snprintf(want, sizeof(want), "\"subject\":\"%s\"", subject);
    assert_out_has(want);
    assert_out_has("\"event\":null");
    assert_out_has("undecodable");

    EXPECT(0, "dlq", "show", seq);
    assert_out_has("reason      undecodable");
    assert_out_has("deliveries  1");
    assert_out_has("replays     0");
    snprintf(want, sizeof(want), "subject     %s", subject);
    assert_out_has(want);
    assert_out_has("Saga-Service: payment");
    assert_out_has("not a valid envelope");
    assert_out_has("ff fe 00 6e 6f 74");
    EXPECT(0, "dlq", "show", seq, "--json");
    assert_out_has("\"event\":null");
    assert_out_has("\"head_hex\":\"fffe006e6f74");
    assert_out_has("\"headers\":{");
    assert_int_equal(out_number("replays"), 0);
    EXPECT(0, "dlq", "list");
    assert_out_has("not a valid event");
    EXPECT(1, "dlq", "show", "999999");

    /* Poisoned messages are what the queue is for: not a violation. */
    EXPECT(0, "audit", "--json", "--no-spool", "--settle", "60");
    assert_true(out_number("dlq_poisoned") >= 2);
    assert_int_equal(out_number("dlq_failed"), 0);
    assert_true(out_number("dead_lettered") >= 2);

    /* Replays up to the limit, each counted in Saga-Replays by the message
     * that comes back; the replayed dead letter itself is deleted. */
    EXPECT(0, "dlq", "replay", seq, "--max-replays", "2");
    EXPECT(1, "dlq", "show", seq);
    snprintf(older, sizeof(older), "%s", seq);
    wait_dead_letter("\"replays\":1", seq);
    assert_string_not_equal(seq, older);
    EXPECT(0, "dlq", "replay", seq, "--max-replays", "2");
    wait_dead_letter("\"replays\":2", seq);
    EXPECT(0, "dlq", "show", seq);
    assert_out_has("replays     2");
    assert_out_has("Saga-Replays: 2");

    /* At the limit: refused, exit 1, and the dead letter stays. */
    EXPECT(1, "dlq", "replay", seq, "--max-replays", "2");
    assert_err_has("was replayed 2 times already: fix its cause, or purge it");
    EXPECT(0, "dlq", "show", seq);

    /* The default limit is 3; --keep leaves the dead letter in place. */
    EXPECT(0, "dlq", "replay", seq, "--keep");
    EXPECT(0, "dlq", "show", seq);
    wait_dead_letter("\"replays\":3", seq);
    EXPECT(1, "dlq", "replay", seq);
    assert_err_has("was replayed 3 times already");
}

static void test_rejected_event_is_shown_decoded(void **state)
{
    char id[SAGA_ID_LEN + 1], seq[32], line[200];
    (void)state;
    /* A valid envelope whose OrderPlaced payload does not unpack: payment's
     * handler refuses it for good. It names the confirmed order, which it
     * cannot change: the audit only warns about a payload it cannot read. */
    assert_true(confirmed_id[0] != '\0');
    assert_int_equal(tjs_publish_event(&F.t, "order.placed", confirmed_id, "x", id), 0);
    snprintf(line, sizeof(line), "\"event_id\":\"%s\"", id);
    wait_dead_letter(line, seq);

    EXPECT(0, "dlq", "show", seq);
    assert_out_has("reason      rejected by the order.placed handler");
    snprintf(line, sizeof(line), "event       %s order.placed of order %s", id, confirmed_id);
    assert_out_has(line);
    assert_out_has("envelope    schema v1, by order #");
    assert_out_has("payload     (1-byte payload that does not decode)");
    EXPECT(0, "dlq", "show", seq, "--json");
    snprintf(line, sizeof(line), "\"event\":{\"stream_seq\":null,\"event_id\":\"%s\"", id);
    assert_out_has(line);
    if (strstr(OUT, "head_hex") != NULL)
        fail_msg("an event is shown decoded, not in hex: %s", OUT);
    EXPECT(0, "dlq", "list", "--service", "payment");
    snprintf(line, sizeof(line), "event %s order.placed of order %s", id, confirmed_id);
    assert_out_has(line);
    EXPECT(0, "audit", "--json", "--no-spool");
    assert_true(out_number("dlq_poisoned") >= 3);
}

/* Publishes what the runtime writes when a message's deliveries ran out. */
static void publish_failed_dead_letter(void)
{
    natsMsg *m = NULL;
    jsPubAck *pa = NULL;
    assert_int_equal(natsMsg_Create(&m, "dlq.shipping", NULL, "x", 1), NATS_OK);
    natsMsgHeader_Set(m, "Saga-Reason",
                      "failed 5 deliveries, last: transient failure, retry later");
    natsMsgHeader_Set(m, "Saga-Service", "shipping");
    natsMsgHeader_Set(m, "Saga-Deliveries", "5");
    natsMsgHeader_Set(m, "Saga-Subject", tjs_subject("payment.charged", "CLIFAILED"));
    assert_int_equal(js_PublishMsg(&pa, F.t.js, m, NULL, NULL), NATS_OK);
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(m);
}

static void test_audit_flags_dead_letters_of_failed_deliveries(void **state)
{
    (void)state;
    publish_failed_dead_letter();
    EXPECT(1, "audit", "--json", "--no-spool");
    assert_out_has("\"rule\":\"dead_letter\"");
    assert_out_has("failed 5 deliveries");
    assert_int_equal(out_number("dlq_failed"), 1);
    EXPECT(1, "audit", "--no-spool");
    assert_out_has("VIOLATION dead_letter: dead letter #");
    assert_out_has("run figures");
    EXPECT(0, "audit", "--json", "--no-spool", "--allow-dead-letters");
    assert_int_equal(out_number("dlq_failed"), 1);
}

static void test_purge_empties_the_queue(void **state)
{
    (void)state;
    EXPECT(0, "dlq", "purge", "--service", "payment", "--yes");
    assert_out_has("purged ");
    EXPECT(0, "dlq", "list", "--service", "payment", "--json");
    assert_string_equal(OUT, "[]\n");
    /* Only payment's went. */
    EXPECT(0, "dlq", "list", "--service", "inventory", "--json");
    assert_out_has(tjs_subject("order.placed", "CLIPOISON"));
    EXPECT(0, "dlq", "purge", "--yes");
    EXPECT(0, "dlq", "list", "--json");
    assert_string_equal(OUT, "[]\n");
    EXPECT(0, "dlq", "purge", "--yes");
    assert_out_has("no dead letters to purge");
    EXPECT(0, "audit", "--json", "--no-spool");
    assert_int_equal(out_number("dlq_messages"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_place_json_then_get_json_shows_confirmed),
        cmocka_unit_test(test_cancel_of_a_confirmed_order_is_refused),
        cmocka_unit_test(test_bad_arguments_exit_2),
        cmocka_unit_test(test_unreachable_url_exits_3_quickly),
        cmocka_unit_test(test_no_participant_is_said_and_exits_3),
        cmocka_unit_test(test_inject_and_faults_round_trip),
        cmocka_unit_test(test_injected_outcomes_say_so),
        cmocka_unit_test(test_crash_point_waits_for_the_next_event_batch),
        cmocka_unit_test(test_poisoned_message_show_and_bounded_replay),
        cmocka_unit_test(test_rejected_event_is_shown_decoded),
        cmocka_unit_test(test_audit_flags_dead_letters_of_failed_deliveries),
        cmocka_unit_test(test_purge_empties_the_queue),
    };
    return tfleet_run(tests, group_setup, tfleet_teardown);
}
