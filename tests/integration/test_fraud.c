/* test_fraud.c - The extension contract: a fraud-screening participant joins
 * the fleet with no change to the five services. It vetoes (the order is
 * cancelled with its reason and fully compensated), clears, and gates
 * shipping when shipping is configured with SAGA_GATES=fraud. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "events.pb-c.h"
#include "proc.h"
#include "tfleet.h"

#define DEADLINE_MS 60000

static tfleet F;
static pid_t fraud_pid = -1;

static const char *const fraud_env[] = {"FRAUD_BLOCKED=mallory,trudy", "FRAUD_MAX_CENTS=50000",
                                        "FRAUD_VELOCITY_MAX=3", "FRAUD_VELOCITY_WINDOW_MS=600000",
                                        NULL};

static int group_setup(void **state)
{
    static const char *const env[] = {"ORDER_DEADLINE_MS=30000", NULL};
    static const char *const gate[] = {"SAGA_GATES=fraud", NULL};
    /* The participants whose vetoes the order service accepts (saga-fleet gives it
     * every --with participant); "rogue" is not one of them. */
    static const char *const vetoers[] = {"SAGA_VETOERS=fraud,lateparty", NULL};
    *state = &F;
    tfleet_init(&F, SAGA_BUILD_DIR, env);
    F.svc_env[tfleet_index("shipping")] = gate; /* the one line of configuration */
    F.svc_env[tfleet_index("order")] = vetoers;
    if (tfleet_launch(&F) != 0)
        return -1;
    fraud_pid = tfleet_start_extra(&F, "fraud", fraud_env);
    return fraud_pid > 0 ? 0 : -1;
}

static void place(char out[64], const char *customer, const char *sku, int qty, long long cents)
{
    char key[SAGA_ID_LEN + 1];
    tfleet_item it[] = {{sku, qty, cents}};
    saga_ulid_new(key);
    Saga__V1__PlaceOrderReply *r = tfleet_place(&F, key, customer, it, 1, "DE", "EUR", 0);
    assert_non_null(r);
    if (!r->ok)
        fail_msg("place refused: %s", r->error);
    snprintf(out, 64, "%s", r->order_id);
    saga__v1__place_order_reply__free_unpacked(r, NULL);
}

static void wait_view_any(const char *svc, const char *id, const char *needle, const char *alt)
{
    assert_true(tfleet_wait_view(&F, svc, id, needle, alt, DEADLINE_MS));
}

static void expect_view(const char *svc, const char *id, const char *needle)
{
    assert_true(tfleet_view_shows(&F, svc, id, needle));
}

static int fleet_idle(void *arg)
{
    (void)arg;
    return tjs_consumers_idle(&F.t, "SAGA_EVENTS");
}

static void audit(void)
{
    assert_int_equal(tproc_wait_until(fleet_idle, NULL, DEADLINE_MS), 0);
    assert_int_equal(tfleet_audit(&F), 0);
}

/* Stream position of an order's first event of a type; 0 when absent. */
static size_t position_of(const char *order_id, const char *type)
{
    tjs_msg *v = NULL;
    size_t n = 0, pos = 0;
    if (tjs_collect_events(&F.t, NULL, order_id, &v, &n) != 0)
        return 0;
    for (size_t i = 0; i < n && pos == 0; i++)
        if (strcmp(v[i].ev.type, type) == 0)
            pos = i + 1;
    free(v);
    return pos;
}

static void test_blocked_customer_is_vetoed_and_compensated(void **state)
{
    char id[64];
    long long a, h, c;
    (void)state;
    assert_int_equal(tfleet_set_stock(&F, "FR1", 5), 0);
    place(id, "mallory", "FR1", 1, 800);
    wait_view_any("order", id, "\"reason\":\"vetoed\"", NULL);
    expect_view("order", id, "\"failed_step\":\"fraud\"");
    expect_view("order", id, "blocked");
    expect_view("fraud", id, "\"decision\":\"vetoed\"");
    wait_view_any("payment", id, "\"state\":\"refunded\"", "\"tombstone\":true");
    wait_view_any("inventory", id, "\"state\":\"released\"", "\"tombstone\":true");
    audit();
    assert_true(tfleet_spool_has(&F, id, "cancelled"));
    assert_int_equal(position_of(id, "shipping.scheduled"), 0); /* the gate never opened */
    assert_int_equal(tfleet_get_stock(&F, "FR1", &a, &h, &c), 0);
    assert_int_equal(a, 5);
    assert_int_equal(h, 0);
}

static void test_cleared_order_is_confirmed_after_clearance(void **state)
{
    char id[64];
    (void)state;
    assert_int_equal(tfleet_set_stock(&F, "FR2", 5), 0);
    place(id, "walter", "FR2", 1, 1200);
    wait_view_any("order", id, "\"state\":\"CONFIRMED\"", NULL);
    expect_view("fraud", id, "\"decision\":\"cleared\"");
    size_t cleared = position_of(id, "fraud.cleared"),
           scheduled = position_of(id, "shipping.scheduled");
    assert_true(cleared > 0 && scheduled > cleared);
    audit();
}

static void test_amount_and_velocity_rules(void **state)
{
    char big[64], ids[4][64];
    (void)state;
    assert_int_equal(tfleet_set_stock(&F, "FR3", 50), 0);
    place(big, "oscar", "FR3", 1, 60000); /* over FRAUD_MAX_CENTS, under the payment limit */
    wait_view_any("order", big, "\"reason\":\"vetoed\"", NULL);
    expect_view("fraud", big, "threshold");
    for (int i = 0; i < 4; i++)
        place(ids[i], "speedy", "FR3", 1, 100);
    for (int i = 0; i < 3; i++)
        wait_view_any("order", ids[i], "\"state\":\"CONFIRMED\"", NULL);
    wait_view_any("order", ids[3], "\"reason\":\"vetoed\"", NULL);
    expect_view("fraud", ids[3], "within");
    audit();
}

typedef struct stat_cond {
    const char *svc, *field;
    long long want;
} stat_cond;

static int stat_reached(void *arg)
{
    stat_cond *c = arg;
    return tjs_stat(&F.t, c->svc, c->field) >= c->want;
}

static void publish_veto(const char *who, const char *order_id, const char *reason);

/* With fraud down, shipping holds the step: nothing is scheduled until the
 * clearance comes. A veto meanwhile from a participant the order service is not
 * configured to hear (SAGA_VETOERS) is dead-lettered as forbidden, and the order
 * goes on. */
static void test_gate_holds_shipping_until_clearance(void **state)
{
    char id[64];
    (void)state;
    assert_int_equal(tfleet_set_stock(&F, "FR4", 5), 0);
    assert_int_equal(tproc_kill(fraud_pid), 0);
    long long parked = tjs_stat(&F.t, "shipping", "parked");
    place(id, "wendy", "FR4", 1, 500);
    wait_view_any("payment", id, "\"state\":\"charged\"", NULL);
    wait_view_any("inventory", id, "\"state\":\"reserved\"", NULL);
    stat_cond c = {"shipping", "parked", parked + 1};
    assert_int_equal(tproc_wait_until(stat_reached, &c, DEADLINE_MS), 0);
    assert_int_equal(position_of(id, "shipping.scheduled"), 0);
    expect_view("order", id, "\"state\":\"PENDING\"");
    stat_cond dead = {"order", "dead_lettered", tjs_stat(&F.t, "order", "dead_lettered") + 1};
    publish_veto("rogue", id, "not mine to veto");
    assert_int_equal(tproc_wait_until(stat_reached, &dead, DEADLINE_MS), 0);
    expect_view("order", id, "\"state\":\"PENDING\"");
    fraud_pid = tfleet_start_extra(&F, "fraud", fraud_env);
    assert_true(fraud_pid > 0);
    wait_view_any("order", id, "\"state\":\"CONFIRMED\"", NULL);
    assert_true(position_of(id, "shipping.scheduled") > position_of(id, "fraud.cleared"));
    audit();
}

/* A participant's veto, enveloped as its own event (producer = its name). */
static void publish_veto(const char *who, const char *order_id, const char *reason)
{
    Saga__V1__ParticipantVetoed m = SAGA__V1__PARTICIPANT_VETOED__INIT;
    uint8_t payload[256], *buf = NULL;
    size_t len = 0;
    char subject[256];
    saga_event ev;
    m.participant = (char *)who;
    m.reason = (char *)reason;
    memset(&ev, 0, sizeof(ev));
    saga_ulid_new(ev.event_id);
    snprintf(ev.type, sizeof(ev.type), "%s.vetoed", who);
    ev.schema_version = 1;
    snprintf(ev.order_id, sizeof(ev.order_id), "%s", order_id);
    snprintf(ev.producer, sizeof(ev.producer), "%s", who);
    ev.sequence = 1;
    ev.time_ms = saga_ulid_time_ms(ev.event_id);
    ev.payload = payload;
    ev.payload_len = saga__v1__participant_vetoed__pack(&m, payload);
    assert_int_equal(saga_event_encode(&ev, &buf, &len), SAGA_OK);
    assert_int_equal(saga_event_subject(ev.type, order_id, subject, sizeof(subject)), SAGA_OK);
    assert_int_equal(tjs_publish_raw(&F.t, subject, buf, len, ev.event_id), 0);
    free(buf);
}

typedef struct pos_cond {
    const char *order_id, *type;
} pos_cond;

static int event_present(void *arg)
{
    pos_cond *c = arg;
    return position_of(c->order_id, c->type) > 0;
}

/* Output of `sagactl ARGS...` into buf; returns its exit status. */
/* Runs sagactl A1 [A2] once; its exit status, its output in buf. */
static int sagactl_once(char *buf, size_t cap, const char *a1, const char *a2)
{
    char bin[600], url[160], log[600];
    int status = 0;
    snprintf(bin, sizeof(bin), "%s/tools/sagactl", SAGA_BUILD_DIR);
    snprintf(url, sizeof(url), "--url=%s", tsrv_url(F.srv));
    snprintf(log, sizeof(log), "%s/sagactl.out", tsrv_dir(F.srv));
    remove(log);
    const char *argv[] = {bin, url, a1, a2, NULL};
    pid_t p = tproc_spawn(argv, NULL, log);
    assert_true(p > 0);
    assert_int_equal(tproc_wait(p, 60000, &status), 0);
    FILE *fp = fopen(log, "r");
    size_t n = fp != NULL ? fread(buf, 1, cap - 1, fp) : 0;
    buf[n] = '\0';
    if (fp != NULL)
        fclose(fp);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* sagactl A1 [A2], again while it says a participant did not answer in time (exit 3: a
 * loaded machine or a sanitizer build), up to a generous deadline. */
static int sagactl(char *buf, size_t cap, const char *a1, const char *a2)
{
    int64_t deadline = tproc_now_ms() + 60000;
    int rc;
    while ((rc = sagactl_once(buf, cap, a1, a2)) == 3 && tproc_now_ms() < deadline) {
    }
    return rc;
}

/* A veto that comes after the order was confirmed (no gate waits for this
 * participant) cannot undo it: the order stays CONFIRMED, and the order
 * service records order.veto_ignored, which trace marks and audit reports. */
static void test_late_veto_is_recorded_not_applied(void **state)
{
    char id[64], out[16384];
    (void)state;
    assert_int_equal(tfleet_set_stock(&F, "FR5", 5), 0);
    place(id, "victor", "FR5", 1, 700);
    wait_view_any("order", id, "\"state\":\"CONFIRMED\"", NULL);
    publish_veto("lateparty", id, "changed its mind");
    pos_cond c = {id, "order.veto_ignored"};
    assert_int_equal(tproc_wait_until(event_present, &c, DEADLINE_MS), 0);
    expect_view("order", id, "\"state\":\"CONFIRMED\"");
    assert_int_equal(sagactl(out, sizeof(out), "trace", id), 0);
    if (strstr(out, "LATE VETO") == NULL || strstr(out, "lateparty") == NULL)
        fail_msg("trace does not mark the late veto:\n%s", out);
    audit();
    /* The audit passes (a late veto is no violation) but names it: a line
     * with the order, the participant and "late veto", and in --json. */
    assert_int_equal(sagactl(out, sizeof(out), "audit", "--no-spool"), 0);
    char want[160];
    snprintf(want, sizeof(want), "WARNING order %s late veto: lateparty", id);
    if (strstr(out, want) == NULL || strstr(out, "late vetoes: ") == NULL)
        fail_msg("audit does not report the late veto of %s:\n%s", id, out);
    assert_int_equal(sagactl(out, sizeof(out), "audit", "--json"), 0);
    snprintf(want, sizeof(want), "{\"order_id\":\"%s\",\"participant\":\"lateparty\",", id);
    if (strstr(out, "\"late_vetoes\":[") == NULL || strstr(out, want) == NULL)
        fail_msg("audit --json does not list the late veto of %s:\n%s", id, out);
}

/* Every participant answers discovery: the five, and fraud with its veto
 * and shipping's gate, with no list of names in sagactl. */
static void test_participants_are_discovered(void **state)
{
    char out[16384];
    (void)state;
    assert_int_equal(sagactl(out, sizeof(out), "participants", "--json"), 0);
    static const char *const want[] = {"\"name\":\"order\"",        "\"name\":\"payment\"",
                                       "\"name\":\"inventory\"",    "\"name\":\"shipping\"",
                                       "\"name\":\"notification\"", "\"name\":\"fraud\"",
                                       "\"gates\":[\"fraud\"]",     "\"vetoes\":true"};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (strstr(out, want[i]) == NULL)
            fail_msg("participants lacks %s:\n%s", want[i], out);
}

/* The fleet-wide commands ask whoever answers discovery: fraud shows up in
 * get, faults, stats and the audit's figures after the saga's five, with no
 * name of it in sagactl. */
static void test_fleet_commands_list_the_extension(void **state)
{
    char id[64], out[16384], want[128];
    (void)state;
    assert_int_equal(tfleet_set_stock(&F, "FR6", 5), 0);
    place(id, "fiona", "FR6", 1, 800);
    wait_view_any("order", id, "\"state\":\"CONFIRMED\"", NULL);
    assert_int_equal(sagactl(out, sizeof(out), "get", id), 0);
    const char *notif = strstr(out, "  notification  "), *fraud = strstr(out, "  fraud         ");
    if (notif == NULL || fraud == NULL || fraud < notif)
        fail_msg("get does not show fraud's view after the five:\n%s", out);
    assert_int_equal(sagactl(out, sizeof(out), "faults", NULL), 0);
    if (strstr(out, "\nfraud         none") == NULL)
        fail_msg("faults does not show fraud's plan:\n%s", out);
    assert_int_equal(sagactl(out, sizeof(out), "stats", NULL), 0);
    if (strstr(out, "\nfraud         ") == NULL)
        fail_msg("stats does not show fraud's counters:\n%s", out);
    /* Any name that answered is asked; an unknown one lists who did. */
    assert_int_equal(sagactl(out, sizeof(out), "faults", "fraud"), 0);
    if (strstr(out, "fraud         none") == NULL)
        fail_msg("faults fraud does not show its plan:\n%s", out);
    assert_int_equal(sagactl(out, sizeof(out), "faults", "fraudster"), 2);
    if (strstr(out, "fraudster") == NULL || strstr(out, "notification, fraud") == NULL)
        fail_msg("an unknown name does not list who answered:\n%s", out);
    assert_int_equal(sagactl(out, sizeof(out), "audit", "--json"), 0);
    snprintf(want, sizeof(want), "\"services_answered\":6,\"participants\":6");
    if (strstr(out, want) == NULL)
        fail_msg("audit does not count fraud's counters (want %s):\n%s", want, out);
}

/* The extension added no code to the five services: their sources never
 * mention it. */
static void test_five_services_do_not_know_fraud(void **state)
{
    static const char *const files[] = {
        "services/order/order.c",          "services/payment/payment.c",
        "compensations/pay_state.h",       "services/inventory/inventory.c",
        "compensations/inv_state.h",       "services/shipping/shipping.c",
        "compensations/ship_state.h",      "services/notification/notification.c",
        "compensations/refund.c",          "compensations/release.c",
        "compensations/cancel_shipment.c", "compensations/comp_emit.c"};
    (void)state;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char path[1024], line[4096];
        snprintf(path, sizeof(path), "%s/%s", SAGA_SOURCE_DIR, files[i]);
        FILE *fp = fopen(path, "r");
        assert_non_null(fp);
        while (fgets(line, sizeof(line), fp) != NULL) {
            for (char *p = line; *p != '\0'; p++)
                *p = (char)tolower((unsigned char)*p);
            if (strstr(line, "fraud") != NULL)
                fail_msg("%s mentions fraud: %s", files[i], line);
        }
        fclose(fp);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_five_services_do_not_know_fraud),
        cmocka_unit_test(test_blocked_customer_is_vetoed_and_compensated),
        cmocka_unit_test(test_cleared_order_is_confirmed_after_clearance),
        cmocka_unit_test(test_amount_and_velocity_rules),
        cmocka_unit_test(test_gate_holds_shipping_until_clearance),
        cmocka_unit_test(test_late_veto_is_recorded_not_applied),
        cmocka_unit_test(test_fleet_commands_list_the_extension),
        cmocka_unit_test(test_participants_are_discovered),
    };
    return tfleet_run(tests, group_setup, tfleet_teardown);
}
