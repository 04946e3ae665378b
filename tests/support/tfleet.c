/* tfleet.c - The whole fleet for tests: server, five services, commands, queries. */
#include "tfleet.h"

#include <dirent.h>
#include <regex.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <uthash.h>

#include <cmocka.h>

#include "ctl.h"
#include "instances.h"
#include "proc.h"
#include "rescale.h"
#include "saga/config.h"
#include "saga/event.h"
#include "saga/wire.h"

#define READY_MS 60000
#define ENV_MAX 24

const char *const tfleet_names[TFLEET_NSVC] = {"order", "payment", "inventory", "shipping",
                                               "notification"};

int tfleet_index(const char *name)
{
    for (int i = 0; i < TFLEET_NSVC; i++)
        if (strcmp(tfleet_names[i], name) == 0)
            return i;
    return -1;
}

/* Adds the executable bin to the server's fleet as participant name with the
 * fleet's settings, then extra, starts it and waits until it has logged
 * event=ready. Returns its pid or -1. */
static pid_t spawn_bin(tfleet *f, const char *name, const char *bin, const char *const *extra)
{
    char url[128], dir[600], spool[600], err[4400], tail[2048];
    const char *env[ENV_MAX];
    fleet *fl = tsrv_fleet(f->srv);
    fleet_status st;
    int n = 0;
    snprintf(url, sizeof(url), "SAGA_NATS_URL=%s", tsrv_url(f->srv));
    snprintf(dir, sizeof(dir), "SAGA_DATA_DIR=%s/data/%s", tsrv_dir(f->srv), name);
    snprintf(spool, sizeof(spool), "NOTIF_SPOOL_DIR=%s", f->mail);
    env[n++] = url;
    env[n++] = dir;
    env[n++] = spool;
    env[n++] = "SAGA_ACK_WAIT_MS=2000";
    env[n++] = "SAGA_RETRY_BASE_MS=50";
    for (int k = 0; f->env != NULL && f->env[k] != NULL && n < ENV_MAX - 1; k++)
        env[n++] = f->env[k];
    for (int k = 0; extra != NULL && extra[k] != NULL && n < ENV_MAX - 1; k++)
        env[n++] = extra[k];
    env[n] = NULL;
    if (fleet_add_proc(fl, name, bin, NULL, env, err, sizeof(err)) != 0 ||
        fleet_start_ready(fl, name, READY_MS, err, sizeof(err)) != 0) {
        fprintf(stderr, "tfleet: %s; end of its log:\n%s\n", err,
                fleet_log_tail(fl, name, tail, sizeof(tail)));
        fleet_kill(fl, name);
        return -1;
    }
    return fleet_get_status(fl, name, &st) == 0 ? st.pid : -1;
}

/* Spawns services/saga-NAME of the build directory. */
static pid_t spawn_service(tfleet *f, const char *name, const char *const *extra)
{
    char bin[600];
    snprintf(bin, sizeof(bin), "%s/services/saga-%s", f->build_dir, name);
    return spawn_bin(f, name, bin, extra);
}

const char *tfleet_instance_name(const tfleet *f, int i, int k, char *name, size_t cap)
{
    fleet_instance_name(name, cap, tfleet_names[i], k, f->instances[i]);
    return name;
}

int tfleet_start_instance(tfleet *f, int i, int k)
{
    char name[64], bin[600], inst[32];
    const char *env[ENV_MAX];
    int n = 0;
    for (int j = 0; f->svc_env[i] != NULL && f->svc_env[i][j] != NULL && n < ENV_MAX - 2; j++)
        env[n++] = f->svc_env[i][j];
    snprintf(inst, sizeof(inst), "SAGA_INSTANCE=%d/%d", k, f->instances[i]);
    if (f->instances[i] > 1)
        env[n++] = inst;
    env[n] = NULL;
    snprintf(bin, sizeof(bin), "%s/services/saga-%s", f->build_dir, tfleet_names[i]);
    pid_t pid = spawn_bin(f, tfleet_instance_name(f, i, k, name, sizeof(name)), bin, env);
    if (k == 1)
        f->pid[i] = pid;
    return pid > 0 ? 0 : -1;
}

int tfleet_rescale(tfleet *f, int i, int m, int64_t *pause_ms)
{
    fleet *fl = tsrv_fleet(f->srv);
    fleet_rescale_report rep;
    char err[1024];
    if (fleet_rescale(fl, tfleet_names[i], m, 30000, READY_MS, &rep, err, sizeof(err)) != 0) {
        fprintf(stderr, "tfleet: rescaling %s to %d: %s\n", tfleet_names[i], m, err);
        return -1;
    }
    *pause_ms = rep.pause_ms;
    return tfleet_reload(f);
}

int tfleet_reload(tfleet *f)
{
    fleet *fl = tsrv_fleet(f->srv);
    char name[64];
    fleet_status st;
    if (fleet_reload(fl) != 0)
        return -1;
    for (int i = 0; i < TFLEET_NSVC; i++) {
        f->instances[i] = fleet_instances_running(fl, tfleet_names[i]);
        f->pid[i] =
            fleet_get_status(fl, tfleet_instance_name(f, i, 1, name, sizeof(name)), &st) == 0
                ? st.pid
                : -1;
    }
    return 0;
}

int tfleet_start_service(tfleet *f, int i)
{
    for (int k = 1; k <= f->instances[i]; k++)
        if (tfleet_start_instance(f, i, k) != 0)
            return -1;
    return 0;
}

pid_t tfleet_start_extra(tfleet *f, const char *name, const char *const *env)
{
    return spawn_service(f, name, env);
}

pid_t tfleet_start_bin(tfleet *f, const char *name, const char *bin, const char *const *env)
{
    return spawn_bin(f, name, bin, env);
}

int tfleet_kill_instance(tfleet *f, int i, int k)
{
    char name[64];
    if (k == 1)
        f->pid[i] = -1;
    return fleet_kill(tsrv_fleet(f->srv), tfleet_instance_name(f, i, k, name, sizeof(name)));
}

int tfleet_kill_service(tfleet *f, int i)
{
    int rc = 0;
    for (int k = 1; k <= f->instances[i]; k++)
        rc |= tfleet_kill_instance(f, i, k);
    return rc;
}

void tfleet_init(tfleet *f, const char *build_dir, const char *const *env)
{
    memset(f, 0, sizeof(*f));
    f->build_dir = build_dir;
    f->env = env;
}

int tfleet_start(tfleet *f, const char *build_dir, const char *const *env)
{
    tfleet_init(f, build_dir, env);
    return tfleet_launch(f);
}

int tfleet_start_secure(tfleet *f, const char *build_dir, int security)
{
    tfleet_init(f, build_dir, NULL);
    f->security = security;
    return tfleet_launch(f);
}

int tfleet_start_cluster(tfleet *f, const char *build_dir, const char *const *env, int nodes)
{
    tfleet_init(f, build_dir, env);
    f->nodes = nodes;
    return tfleet_launch(f);
}

int tfleet_launch(tfleet *f)
{
    long v = tproc_env_long("SAGA_TEST_INSTANCES", 1);
    int every = v > 0 && v <= SAGA_PARTITIONS ? (int)v : 1;
    for (int i = 0; i < TFLEET_NSVC; i++)
        if (f->instances[i] <= 0)
            f->instances[i] = every;
    int rc = f->security != 0 ? tsrv_start_secure(&f->srv, f->security)
             : f->nodes > 0   ? tsrv_start_cluster(&f->srv, f->nodes)
                              : tsrv_start(&f->srv);
    if (rc != 0)
        return -1;
    snprintf(f->mail, sizeof(f->mail), "%s/mail", tsrv_dir(f->srv));
    if (tjs_connect_as(&f->t, tsrv_url(f->srv), tsrv_fleet(f->srv), "operator") != 0)
        return -1;
    for (int i = 0; i < TFLEET_NSVC; i++)
        if (tfleet_start_service(f, i) != 0)
            return -1;
    return 0;
}

int tfleet_stop(tfleet *f)
{
    int clean = 0;
    tjs_close(&f->t);
    /* Every service at once, then the server: 0 only when all exit cleanly. */
    if (f->srv != NULL && fleet_stop_all(tsrv_fleet(f->srv), 30000, 10000) != 0)
        clean = -1;
    for (int i = 0; i < TFLEET_NSVC; i++)
        f->pid[i] = -1;
    tsrv_destroy(f->srv);
    f->srv = NULL;
    return clean;
}

int tfleet_teardown(void **state)
{
    return tfleet_stop(*state);
}

int tfleet_run_group(const char *name, const struct CMUnitTest *tests, size_t n,
                     int (*setup)(void **state), int (*teardown)(void **state))
{
    /* A write to a peer a test has killed must fail that test, not end the run. */
    signal(SIGPIPE, SIG_IGN);
    int rc = _cmocka_run_group_tests(name, tests, n, setup, teardown);
    nats_CloseAndWait(TSRV_CLOSE_WAIT_MS);
    return rc;
}

/* A request with the header traceparent when not NULL, as a traced caller sends it. */
static natsMsg *request_traced(tfleet *f, const char *subject, const void *data, size_t len,
                               const char *traceparent)
{
    natsMsg *req = NULL, *reply = NULL;
    natsStatus s = natsMsg_Create(&req, subject, NULL, data, (int)len);
    if (s == NATS_OK && traceparent != NULL)
        s = natsMsgHeader_Set(req, SAGA_HDR_TRACEPARENT, traceparent);
    if (s == NATS_OK)
        s = natsConnection_RequestMsg(&reply, f->t.nc, req, 10000);
    natsMsg_Destroy(req);
    return s == NATS_OK ? reply : NULL;
}

static natsMsg *request(tfleet *f, const char *subject, const void *data, size_t len)
{
    return request_traced(f, subject, data, len, NULL);
}

Saga__V1__PlaceOrderReply *tfleet_place(tfleet *f, const char *key, const char *customer,
                                        const tfleet_item *items, int nitems, const char *ship_to,
                                        const char *currency, long long deadline_ms)
{
    return tfleet_place_traced(f, NULL, key, customer, items, nitems, ship_to, currency,
                               deadline_ms);
}

Saga__V1__PlaceOrderReply *tfleet_place_traced(tfleet *f, const char *traceparent, const char *key,
                                               const char *customer, const tfleet_item *items,
                                               int nitems, const char *ship_to,
                                               const char *currency, long long deadline_ms)
{
    Saga__V1__PlaceOrder req = SAGA__V1__PLACE_ORDER__INIT;
    Saga__V1__LineItem li[8], *lp[8];
    uint8_t buf[4096];
    if (nitems > 8)
        return NULL;
    for (int i = 0; i < nitems; i++) {
        saga__v1__line_item__init(&li[i]);
        li[i].sku = (char *)items[i].sku;
        li[i].quantity = items[i].qty;
        li[i].unit_cents = items[i].unit_cents;
        lp[i] = &li[i];
    }
    req.idempotency_key = (char *)key;
    req.customer_id = (char *)customer;
    req.items = lp;
    req.n_items = (size_t)nitems;
    req.ship_to = (char *)ship_to;
    req.currency = (char *)currency;
    req.deadline_ms = deadline_ms;
    size_t len = saga__v1__place_order__pack(&req, buf);
    /* A retry of a key reaches the same instance; without one, any partition will do. */
    char subject[128], any[16];
    snprintf(any, sizeof(any), "%d", rand());
    saga_routed_subject(SAGA_SUBJ_ORDER_PLACE, key != NULL && key[0] != '\0' ? key : any, subject,
                        sizeof(subject));
    natsMsg *m = request_traced(f, subject, buf, len, traceparent);
    if (m == NULL)
        return NULL;
    Saga__V1__PlaceOrderReply *r = saga__v1__place_order_reply__unpack(
        NULL, (size_t)natsMsg_GetDataLength(m), (const uint8_t *)natsMsg_GetData(m));
    natsMsg_Destroy(m);
    return r;
}

Saga__V1__CommandReply *tfleet_cancel(tfleet *f, const char *order_id)
{
    Saga__V1__CancelOrder req = SAGA__V1__CANCEL_ORDER__INIT;
    uint8_t buf[512];
    req.order_id = (char *)order_id;
    size_t len = saga__v1__cancel_order__pack(&req, buf);
    char subject[128];
    saga_routed_subject(SAGA_SUBJ_ORDER_CANCEL, order_id, subject, sizeof(subject));
    natsMsg *m = request(f, subject, buf, len);
    if (m == NULL)
        return NULL;
    Saga__V1__CommandReply *r = saga__v1__command_reply__unpack(
        NULL, (size_t)natsMsg_GetDataLength(m), (const uint8_t *)natsMsg_GetData(m));
    natsMsg_Destroy(m);
    return r;
}

int tfleet_place_retrying(tfleet *f, const char *key, const char *customer,
                          const tfleet_item *items, int nitems, int64_t timeout_ms, char *id,
                          size_t cap, int64_t *took_ms)
{
    int64_t t0 = tproc_now_ms();
    while (tproc_now_ms() - t0 < timeout_ms) {
        Saga__V1__PlaceOrderReply *r =
            tfleet_place(f, key, customer, items, nitems, "DE", "EUR", 0);
        if (r == NULL)
            continue; /* no answer within the request's timeout: the same key again */
        int ok = r->ok;
        if (ok)
            snprintf(id, cap, "%s", r->order_id);
        else
            fprintf(stderr, "tfleet: order %s refused: %s\n", key, r->error);
        saga__v1__place_order_reply__free_unpacked(r, NULL);
        *took_ms = tproc_now_ms() - t0;
        return ok ? 0 : -1;
    }
    return -1;
}

/* One (order, type) seen in the stream. */
typedef struct seen_event {
    UT_hash_handle hh;
    char key[SAGA_ORDER_ID_MAX + 1 + SAGA_TYPE_MAX + 1];
} seen_event;

int tfleet_count_orders(tfleet *f, size_t *placed, size_t *final)
{
    tjs_msg *v = NULL;
    seen_event *seen = NULL, *e, *tmp;
    size_t n = 0;
    int rc = 0;
    *placed = *final = 0;
    if (tjs_collect(&f->t, SAGA_STREAM_EVENTS, SAGA_SUBJ_EVENTS_ALL, &v, &n) != 0)
        return -1;
    for (size_t i = 0; i < n && rc == 0; i++) {
        int is_final = v[i].decoded && (strcmp(v[i].ev.type, "order.confirmed") == 0 ||
                                        strcmp(v[i].ev.type, "order.cancelled") == 0);
        int is_placed = v[i].decoded && strcmp(v[i].ev.type, "order.placed") == 0;
        if (!is_final && !is_placed)
            continue;
        char key[sizeof(e->key)];
        snprintf(key, sizeof(key), "%s/%s", v[i].ev.order_id, v[i].ev.type);
        HASH_FIND_STR(seen, key, e);
        if (e != NULL)
            continue;
        e = calloc(1, sizeof(*e));
        if (e == NULL) {
            rc = -1;
            break;
        }
        memcpy(e->key, key, sizeof(key));
        HASH_ADD_STR(seen, key, e);
        *final += (size_t)is_final;
        *placed += (size_t)is_placed;
    }
    HASH_ITER(hh, seen, e, tmp)
    {
        HASH_DEL(seen, e);
        free(e);
    }
    free(v);
    return rc;
}

static int fleet_idle(void *arg)
{
    tfleet *f = arg;
    return tjs_consumers_idle(&f->t, SAGA_STREAM_EVENTS);
}

int tfleet_wait_final(tfleet *f, size_t want, int timeout_ms, size_t *placed, size_t *final)
{
    int64_t deadline = tproc_now_ms() + timeout_ms;
    /* Idle again after counting: the last final events may still have been on their
     * way to the participants (commit, notify) when the first look said idle. */
    for (;;) {
        int64_t left = deadline - tproc_now_ms();
        if (left <= 0 || tproc_wait_until(fleet_idle, f, (int)left) != 0)
            return -1;
        if (tfleet_count_orders(f, placed, final) == 0 && *final >= want && fleet_idle(f))
            return 0;
    }
}

/* Sets (qty >= 0) or reads sku's stock on every inventory instance, as sagactl does. */
static int stock_request(tfleet *f, const char *sku, long long qty, ctl_stock *out)
{
    uint32_t sets[SAGA_PARTITIONS];
    char err[256];
    size_t n = ctl_stock_sets(f->instances[tfleet_index("inventory")], sets);
    if (ctl_stock_request(f->t.nc, sets, n, sku, qty, 10000, out, err, sizeof(err)) == 0)
        return 0;
    fprintf(stderr, "tfleet: stock of %s: %s\n", sku, err);
    return -1;
}

int tfleet_set_stock(tfleet *f, const char *sku, long long qty)
{
    ctl_stock st;
    return stock_request(f, sku, qty, &st);
}

int tfleet_get_stock(tfleet *f, const char *sku, long long *avail, long long *held,
                     long long *committed)
{
    ctl_stock st;
    if (stock_request(f, sku, -1, &st) != 0)
        return -1;
    *avail = st.available;
    *held = st.held;
    *committed = st.committed;
    return 0;
}

const char *tfleet_view(tfleet *f, const char *svc, const char *order_id, char *buf, size_t cap)
{
    char plain[128], subject[160];
    natsMsg *m = NULL;
    snprintf(plain, sizeof(plain), "saga.q.%s.order", svc);
    saga_routed_subject(plain, order_id, subject, sizeof(subject));
    buf[0] = '\0';
    if (natsConnection_Request(&m, f->t.nc, subject, order_id, (int)strlen(order_id), 5000) ==
        NATS_OK) {
        snprintf(buf, cap, "%.*s", natsMsg_GetDataLength(m), natsMsg_GetData(m));
        natsMsg_Destroy(m);
    }
    return buf;
}

typedef struct view_cond {
    tfleet *f;
    const char *svc, *order_id, *needle, *alt;
    char buf[8192];
} view_cond;

static int view_has(void *arg)
{
    view_cond *c = arg;
    tfleet_view(c->f, c->svc, c->order_id, c->buf, sizeof(c->buf));
    return strstr(c->buf, c->needle) != NULL || (c->alt != NULL && strstr(c->buf, c->alt) != NULL);
}

static int view_verdict(view_cond *c)
{
    if (view_has(c))
        return 1;
    fprintf(stderr, "%s view of %s lacks %s%s%s: %s\n", c->svc, c->order_id, c->needle,
            c->alt != NULL ? " and " : "", c->alt != NULL ? c->alt : "", c->buf);
    return 0;
}

int tfleet_view_shows(tfleet *f, const char *svc, const char *order_id, const char *needle)
{
    view_cond c = {f, svc, order_id, needle, NULL, ""};
    return view_verdict(&c);
}

int tfleet_wait_view(tfleet *f, const char *svc, const char *order_id, const char *needle,
                     const char *alt, int deadline_ms)
{
    view_cond c = {f, svc, order_id, needle, alt, ""};
    tproc_wait_until(view_has, &c, deadline_ms);
    return view_verdict(&c);
}

int tfleet_spool_has(tfleet *f, const char *order_id, const char *kind)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s.%s.txt", f->mail, order_id, kind);
    FILE *fp = fopen(path, "r");
    if (fp != NULL)
        fclose(fp);
    return fp != NULL;
}

int tfleet_spool_count(tfleet *f, const char *order_id)
{
    DIR *d = opendir(f->mail);
    int n = 0;
    size_t len = strlen(order_id);
    if (d == NULL)
        return 0;
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d))
        if (strncmp(e->d_name, order_id, len) == 0 && e->d_name[len] == '.')
            n++;
    closedir(d);
    return n;
}

const char *const *tfleet_ctl_env(tfleet *f)
{
    snprintf(f->home_env, sizeof(f->home_env), "SAGA_HOME=%s", tsrv_dir(f->srv));
    f->ctl_env[0] = f->home_env;
    f->ctl_env[1] = NULL;
    return f->ctl_env;
}

/* Writes the lines of the file at path that match the extended regex re to stderr. */
static void print_matching(const char *path, const char *re)
{
    char line[1024];
    regex_t rx;
    FILE *fp = fopen(path, "r");
    if (fp == NULL || regcomp(&rx, re, REG_EXTENDED | REG_NOSUB) != 0) {
        if (fp != NULL)
            fclose(fp);
        return;
    }
    while (fgets(line, sizeof(line), fp) != NULL)
        if (regexec(&rx, line, 0, NULL, 0) == 0)
            fputs(line, stderr);
    regfree(&rx);
    fclose(fp);
}

/* Writes the first head and the last tail lines of the file at path to stderr. */
static void print_ends(const char *path, int head, int tail)
{
    char line[1024];
    long total = 0, n = 0;
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        fprintf(stderr, "(no %s)\n", path);
        return;
    }
    while (fgets(line, sizeof(line), fp) != NULL)
        total++;
    rewind(fp);
    while (fgets(line, sizeof(line), fp) != NULL) {
        n++;
        if (n <= head || n > total - tail)
            fputs(line, stderr);
        else if (n == head + 1)
            fputs("...\n", stderr);
    }
    fclose(fp);
}

int tfleet_audit(tfleet *f)
{
    char bin[600], url[160], spool[600], log_path[600];
    int status = 0;
    snprintf(log_path, sizeof(log_path), "%s/audit.log", tsrv_dir(f->srv));
    snprintf(bin, sizeof(bin), "%s/tools/sagactl", f->build_dir);
    snprintf(url, sizeof(url), "--url=%s", tsrv_url(f->srv));
    for (int i = 0; i < tsrv_nodes(f->srv); i++) {
        char one[128];
        if (tsrv_node_pid(f->srv, i) > 0 && tsrv_node_url(f->srv, i, one, sizeof(one)) != NULL) {
            snprintf(url, sizeof(url), "--url=%s", one);
            break;
        }
    }
    snprintf(spool, sizeof(spool), "--spool=%s", f->mail);
    const char *argv[] = {bin, url, "audit", spool, NULL};
    pid_t p = tproc_spawn(argv, tfleet_ctl_env(f), log_path);
    if (p <= 0 || tproc_wait(p, 300000, &status) != 0)
        return -1;
    int rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (rc != 0)
        print_ends(log_path, 30, 10);
    else
        print_matching(log_path, "stock|warn"); /* what was checked, and any warning */
    return rc;
}
