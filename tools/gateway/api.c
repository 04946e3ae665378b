/* api.c - saga-gateway's routes: the order API (place, read, cancel), what the
 * console asks (fleet health, timelines, fault plans, dead letters, stock) and
 * its files. Every answer is JSON made with jansson; every failure is a status
 * code and {"error": sentence}. The work is sagactl's (ctl.h): this file only
 * maps HTTP onto it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.pb-c.h"
#include "gateway.h"
#include "saga/wire.h"

#define IDEM_KEY_MAX 128 /* the order service's limit on idempotency keys */
#define DLQ_SHOWN 500    /* the console lists at most the newest so many dead letters */

/* ---- answers ---------------------------------------------------------------------- */

/* Sends j (released here; NULL: out of memory, a 500) with code. */
static enum MHD_Result send_json(struct MHD_Connection *conn, unsigned code, json_t *j)
{
    char *text = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (text == NULL) {
        code = MHD_HTTP_INTERNAL_SERVER_ERROR;
        text = strdup("{\"error\":\"out of memory\"}");
        if (text == NULL)
            return MHD_NO;
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result rc = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result send_error(struct MHD_Connection *conn, unsigned code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum MHD_Result send_error(struct MHD_Connection *conn, unsigned code, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    return send_json(conn, code, json_pack("{s:o}", "error", ctl_json_text(text)));
}

/* The status of a sagactl exit code: nobody answers is 503, the rest 502 (a
 * participant answered something unusable). */
static unsigned exit_status(int rc)
{
    return rc == CTL_EXIT_UNREACHABLE ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_BAD_GATEWAY;
}

/* What a request is handled with: the server, its connection, the body, and
 * the last message sagactl's functions gave (ctl_err_capture). */
typedef struct req {
    gw_server *s;
    struct MHD_Connection *conn;
    const char *body;
    size_t len;
    ctl_buf err;
} req;

static enum MHD_Result send_failure(req *r, int rc, const char *what)
{
    const char *why = ctl_buf_str(&r->err);
    return send_error(r->conn, exit_status(rc), "%s%s%s", what, *why ? ": " : "", why);
}

/* The body as a JSON object. NULL after answering 400 (not JSON, or not an
 * object). An empty body is {} when empty_ok. */
static json_t *body_object(req *r, int empty_ok, enum MHD_Result *sent)
{
    json_error_t e;
    json_t *j;
    if (r->len == 0 && empty_ok)
        return json_object();
    j = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, &e);
    if (j == NULL) {
        *sent =
            send_error(r->conn, MHD_HTTP_BAD_REQUEST,
                       "the body is not JSON: %s (line %d, column %d)", e.text, e.line, e.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        *sent = send_error(r->conn, MHD_HTTP_BAD_REQUEST, "the body must be a JSON object");
        return NULL;
    }
    return j;
}

/* ---- orders ----------------------------------------------------------------------- */

/* The order service's record of id (saga.q.order.order.<partition>). Returns 200 with *rec
 * set (the caller releases it), 404, or 503 when the order service does not
 * answer. */
static unsigned order_record(req *r, const char *id, json_t **rec)
{
    char plain[128], subject[160];
    natsMsg *m = NULL;
    *rec = NULL;
    /* To the order instance that owns the order's partition (docs/scaling.md). */
    snprintf(plain, sizeof(plain), SAGA_SUBJ_QUERY_FMT, "order", "order");
    if (saga_routed_subject(plain, id, subject, sizeof(subject)) != SAGA_OK ||
        ctl_request(&r->s->conn, subject, id, strlen(id), CTL_QUERY_TIMEOUT_MS, &m) != NATS_OK)
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    *rec = ctl_reply_json(m);
    natsMsg_Destroy(m);
    if (json_is_false(json_object_get(*rec, "found"))) {
        json_decref(*rec);
        *rec = NULL;
        return MHD_HTTP_NOT_FOUND;
    }
    return *rec != NULL ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
}

/* The Idempotency-Key header (a structured-field string, so maybe quoted):
 * its value into key, "" when absent. -1 when it is not 1 to 128 printable
 * ASCII characters without spaces. */
static int idempotency_key(struct MHD_Connection *conn, char *key, size_t cap)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Idempotency-Key");
    size_t n;
    key[0] = '\0';
    if (v == NULL)
        return 0;
    n = strlen(v);
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
        v++;
        n -= 2;
    }
    if (n == 0 || n > IDEM_KEY_MAX || n >= cap)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (v[i] <= ' ' || v[i] > '~' || v[i] == '"')
            return -1;
    snprintf(key, cap, "%.*s", (int)n, v);
    return 0;
}

/* The request's lines as PlaceOrder items. NULL after answering 400. */
static Saga__V1__LineItem **parse_lines(req *r, json_t *lines, size_t *n, enum MHD_Result *sent)
{
    size_t i;
    json_t *l;
    if (!json_is_array(lines) || json_array_size(lines) == 0) {
        *sent = send_error(r->conn, MHD_HTTP_BAD_REQUEST,
                           "\"lines\" must be a non-empty array of {sku, qty, price_cents}");
        return NULL;
    }
    *n = json_array_size(lines);
    Saga__V1__LineItem **v = calloc(*n, sizeof(*v) + sizeof(**v));
    if (v == NULL) {
        *sent = send_error(r->conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        return NULL;
    }
    Saga__V1__LineItem *items = (Saga__V1__LineItem *)(v + *n);
    json_array_foreach(lines, i, l)
    {
        json_t *qty = json_object_get(l, "qty"), *price = json_object_get(l, "price_cents");
        const char *sku = json_string_value(json_object_get(l, "sku"));
        if (sku == NULL || !json_is_integer(qty) || !json_is_integer(price) ||
            json_integer_value(qty) < 1 || json_integer_value(qty) > INT32_MAX ||
            json_integer_value(price) < 0) {
            free(v);
            *sent = send_error(r->conn, MHD_HTTP_BAD_REQUEST,
                               "line %zu: want {\"sku\": string, \"qty\": integer >= 1, "
                               "\"price_cents\": integer >= 0}",
                               i + 1);
            return NULL;
        }
        saga__v1__line_item__init(&items[i]);
        items[i].sku = (char *)sku;
        items[i].quantity = (int32_t)json_integer_value(qty);
        items[i].unit_cents = json_integer_value(price);
        v[i] = &items[i];
    }
    return v;
}

/* Whether the order a key placed earlier is the one this request asks for:
 * the same customer and lines, and the same currency and destination when
 * the request names them (the order service fills in its defaults). */
static int same_order(const json_t *rec, const Saga__V1__PlaceOrder *p)
{
    json_t *items = json_object_get(rec, "items");
    const char *cur = json_string_value(json_object_get(rec, "currency"));
    const char *to = json_string_value(json_object_get(rec, "ship_to"));
    if (json_array_size(items) != p->n_items ||
        strcmp(json_string_value(json_object_get(rec, "customer_id")) ?: "", p->customer_id) != 0 ||
        (*p->currency && strcmp(cur ?: "", p->currency) != 0) ||
        (*p->ship_to && strcmp(to ?: "", p->ship_to) != 0))
        return 0;
    for (size_t i = 0; i < p->n_items; i++) {
        json_t *it = json_array_get(items, i);
        if (strcmp(json_string_value(json_object_get(it, "sku")) ?: "", p->items[i]->sku) != 0 ||
            json_integer_value(json_object_get(it, "quantity")) != p->items[i]->quantity ||
            json_integer_value(json_object_get(it, "unit_cents")) != p->items[i]->unit_cents)
            return 0;
    }
    return 1;
}

/* POST /orders: 201 {order_id, idempotency_key} and Location; a key used
 * before for the same request answers the same (Idempotent-Replayed: true),
 * for another request 422. */
static enum MHD_Result place(req *r)
{
    Saga__V1__PlaceOrder p = SAGA__V1__PLACE_ORDER__INIT;
    Saga__V1__PlaceOrderReply *rep = NULL;
    Saga__V1__LineItem **items = NULL;
    enum MHD_Result sent = MHD_NO;
    char key[IDEM_KEY_MAX + 1], location[128];
    json_t *body, *rec = NULL;

    if (idempotency_key(r->conn, key, sizeof(key)) != 0)
        return send_error(r->conn, MHD_HTTP_BAD_REQUEST,
                          "Idempotency-Key must be 1 to %d printable ASCII characters without "
                          "spaces",
                          IDEM_KEY_MAX);
    body = body_object(r, 0, &sent);
    if (body == NULL)
        return sent;
    const char *customer = json_string_value(json_object_get(body, "customer"));
    json_t *deadline = json_object_get(body, "deadline_ms");
    const char *ship_to = json_string_value(json_object_get(body, "ship_to"));
    const char *currency = json_string_value(json_object_get(body, "currency"));
    if (customer == NULL) {
        sent = send_error(r->conn, MHD_HTTP_BAD_REQUEST, "\"customer\" (a string) is required");
        goto out;
    }
    if ((deadline != NULL && (!json_is_integer(deadline) || json_integer_value(deadline) < 1)) ||
        (json_object_get(body, "ship_to") != NULL && ship_to == NULL) ||
        (json_object_get(body, "currency") != NULL && currency == NULL)) {
        sent = send_error(r->conn, MHD_HTTP_BAD_REQUEST,
                          "\"ship_to\" and \"currency\" are strings, \"deadline_ms\" a positive "
                          "integer");
        goto out;
    }
    items = parse_lines(r, json_object_get(body, "lines"), &p.n_items, &sent);
    if (items == NULL)
        goto out;
    /* Without a key the gateway makes one, so that its own retries of the
     * command (ctl_command) cannot place the order twice. */
    if (key[0] == '\0') {
        char id[SAGA_ID_LEN + 1];
        saga_ulid_new(id);
        snprintf(key, sizeof(key), "http-%s", id);
    }
    p.customer_id = (char *)customer;
    p.items = items;
    p.idempotency_key = key;
    p.deadline_ms = deadline != NULL ? json_integer_value(deadline) : 0;
    if (ship_to != NULL)
        p.ship_to = (char *)ship_to;
    if (currency != NULL)
        p.currency = (char *)currency;
    /* W3C trace context: the caller's trace goes on through the saga; a malformed
     * header is ignored, as the recommendation asks (the order starts a trace). */
    saga_traceparent tp;
    const char *traceparent =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, SAGA_HDR_TRACEPARENT);
    if (traceparent != NULL && !saga_traceparent_parse(traceparent, &tp))
        traceparent = NULL;
    int rc = ctl_place(&r->s->conn, "place", &p, traceparent, &rep);
    if (rc != CTL_EXIT_OK) {
        sent = send_failure(r, rc, "the order service did not take the order");
        goto out;
    }
    if (!rep->ok) {
        sent = send_error(r->conn, MHD_HTTP_UNPROCESSABLE_CONTENT, "%s",
                          *rep->error ? rep->error : "the order service refused the order");
        goto out;
    }
    if (rep->duplicate) {
        unsigned code = order_record(r, rep->order_id, &rec);
        if (code != MHD_HTTP_OK) {
            sent = send_error(r->conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                              "Idempotency-Key %s was used before (order %s), and the order "
                              "service cannot say for which request",
                              key, rep->order_id);
            goto out;
        }
        if (!same_order(rec, &p)) {
            sent = send_error(r->conn, MHD_HTTP_UNPROCESSABLE_CONTENT,
                              "Idempotency-Key %s was used for a different request (order %s)", key,
                              rep->order_id);
            goto out;
        }
    }
    snprintf(location, sizeof(location), "/orders/%s", rep->order_id);
    json_t *j = json_pack("{s:o, s:o}", "order_id", ctl_json_text(rep->order_id), "idempotency_key",
                          ctl_json_text(key));
    char *text = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    struct MHD_Response *resp =
        text != NULL ? MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE)
                     : NULL;
    if (resp == NULL) {
        free(text);
        sent = send_error(r->conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        goto out;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
    if (rep->duplicate)
        MHD_add_response_header(resp, "Idempotent-Replayed", "true");
    sent = MHD_queue_response(r->conn, MHD_HTTP_CREATED, resp);
    MHD_destroy_response(resp);
out:
    saga__v1__place_order_reply__free_unpacked(rep, NULL);
    json_decref(rec);
    json_decref(body);
    free(items);
    return sent;
}

/* GET /orders/ID: the order's state and every participant's view of it. */
static enum MHD_Result get_order(req *r, const char *id)
{
    ctl_order_view v;
    enum MHD_Result sent;
    memset(&v, 0, sizeof(v));
    int rc = ctl_fleet_discover(&v.fleet, &r->s->conn, "get");
    if (rc != CTL_EXIT_OK)
        sent = send_failure(r, rc, "the fleet does not answer");
    else if (ctl_order_view_load(&r->s->conn, id, &v) != 0)
        sent = send_error(r->conn, MHD_HTTP_SERVICE_UNAVAILABLE, "NATS connection lost");
    else if (v.found < 0)
        sent = send_error(r->conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                          "the order service does not answer (saga.q.order.order)");
    else if (v.found == 0)
        sent = send_error(r->conn, MHD_HTTP_NOT_FOUND, "no such order: %s", id);
    else
        sent = send_json(r->conn, MHD_HTTP_OK, ctl_order_view_json(&v, id));
    ctl_fleet_cleanup(&v.fleet);
    return sent;
}

/* POST /orders/ID/cancel, body {} or {"reason": text}: 200 {order_id, state};
 * 409 when the order is confirmed already. */
static enum MHD_Result cancel(req *r, const char *id)
{
    Saga__V1__CancelOrder c = SAGA__V1__CANCEL_ORDER__INIT;
    Saga__V1__CommandReply *rep = NULL;
    enum MHD_Result sent = MHD_NO;
    json_t *rec = NULL, *body = body_object(r, 1, &sent);
    if (body == NULL)
        return sent;
    const char *reason = json_string_value(json_object_get(body, "reason"));
    unsigned code = order_record(r, id, &rec);
    if (code == MHD_HTTP_NOT_FOUND) {
        sent = send_error(r->conn, code, "no such order: %s", id);
        goto out;
    }
    if (code != MHD_HTTP_OK) {
        sent = send_error(r->conn, code, "the order service does not answer (saga.q.order.order)");
        goto out;
    }
    c.order_id = (char *)id;
    if (reason != NULL)
        c.reason = (char *)reason;
    int rc = ctl_cancel(&r->s->conn, "cancel", &c, &rep);
    if (rc != CTL_EXIT_OK)
        sent = send_failure(r, rc, "the order service did not take the cancellation");
    else if (rep->ok)
        sent = send_json(r->conn, MHD_HTTP_OK,
                         json_pack("{s:o, s:o}", "order_id", ctl_json_text(id), "state",
                                   ctl_json_text(rep->state)));
    else
        sent =
            send_json(r->conn, *rep->state ? MHD_HTTP_CONFLICT : MHD_HTTP_SERVICE_UNAVAILABLE,
                      json_pack("{s:o, s:o, s:o}", "error", ctl_json_text(rep->error), "order_id",
                                ctl_json_text(id), "state", ctl_json_text(rep->state)));
out:
    saga__v1__command_reply__free_unpacked(rep, NULL);
    json_decref(rec);
    json_decref(body);
    return sent;
}

/* The events of one order, for its timeline. */
typedef struct timeline {
    int64_t first_ms;
    json_t *events;
} timeline;

static int on_timeline_event(const saga_event *ev, uint64_t seq, int64_t stored_ms, void *udata)
{
    timeline *t = udata;
    (void)stored_ms;
    if (json_array_size(t->events) == 0)
        t->first_ms = ev->time_ms;
    int64_t offset = ev->time_ms - t->first_ms;
    return json_array_append_new(t->events, ctl_event_json(ev, seq, &offset)) == 0 ? 0 : -1;
}

/* GET /orders/ID/timeline: {order_id, events: [...]}, as sagactl trace --json
 * reads them (from the history, or the stream when no history runs). */
static enum MHD_Result get_timeline(req *r, const char *id)
{
    timeline t = {.events = json_array()};
    ctl_stream_result res;
    int hist;
    int rc = ctl_order_events(&r->s->conn, "timeline", id, 0, on_timeline_event, &t, &res, &hist);
    if (rc != CTL_EXIT_OK) {
        json_decref(t.events);
        return send_failure(r, rc, "cannot read the order's events");
    }
    if (json_array_size(t.events) == 0) {
        json_decref(t.events);
        return send_error(r->conn, MHD_HTTP_NOT_FOUND, "no events of order %s", id);
    }
    return send_json(r->conn, MHD_HTTP_OK,
                     json_pack("{s:o, s:o}", "order_id", ctl_json_text(id), "events", t.events));
}

/* ---- the fleet -------------------------------------------------------------------- */

/* Keeps each row's reply of the last ctl_fleet_ask under key in that row's
 * object of rows (null when it did not answer). */
static void keep_replies(json_t *rows, const ctl_fleet *f, const char *key)
{
    for (size_t i = 0; i < f->n; i++) {
        json_t *row = json_object_get(rows, f->names[i]);
        if (row == NULL) {
            row = json_pack("{s:s, s:i}", "name", f->names[i], "instances", 0);
            json_object_set_new(rows, f->names[i], row);
        }
        json_object_set(row, key, f->replies[i] != NULL ? f->replies[i] : json_null());
    }
}

/* GET /api/fleet: every participant that answered discovery (and the saga's
 * five, also when down): instances, counters, fault plan. */
static enum MHD_Result get_fleet(req *r)
{
    ctl_fleet f = {0};
    enum MHD_Result sent;
    json_t *rows = json_object(), *list = json_array(), *row;
    const char *name;
    int rc = ctl_fleet_discover(&f, &r->s->conn, "fleet");
    if (rc == CTL_EXIT_OK && ctl_fleet_ask(&f, &r->s->conn, SAGA_SUBJ_CTL_FMT, "stats", "") == 0) {
        keep_replies(rows, &f, "stats");
        if (ctl_fleet_ask(&f, &r->s->conn, SAGA_SUBJ_CTL_FMT, "faults", "") == 0)
            keep_replies(rows, &f, "faults");
    }
    for (size_t i = 0; i < f.np; i++) {
        row = json_object_get(rows, f.p[i].name);
        if (row != NULL)
            json_object_set_new(
                row, "instances",
                json_integer(json_integer_value(json_object_get(row, "instances")) + 1));
    }
    json_object_foreach(rows, name, row)
    {
        ctl_buf plan;
        ctl_buf_init(&plan);
        json_t *faults = json_object_get(row, "faults");
        if (json_is_object(faults))
            ctl_faults_text(&plan, faults);
        json_object_set_new(row, "faults_text", ctl_json_text(ctl_buf_str(&plan)));
        json_object_set_new(row, "up", json_boolean(json_is_object(json_object_get(row, "stats"))));
        json_array_append(list, row);
        ctl_buf_cleanup(&plan);
    }
    if (rc != CTL_EXIT_OK && f.np == 0)
        sent = send_failure(r, rc, "the fleet does not answer");
    else
        sent = send_json(
            r->conn, MHD_HTTP_OK,
            json_pack("{s:O, s:I}", "participants", list, "time_ms", (json_int_t)ctl_now_ms()));
    json_decref(list);
    json_decref(rows);
    ctl_fleet_cleanup(&f);
    return sent;
}

/* POST /api/faults/NAME, body {"spec": "decline_rate=1"} ("clear" first
 * empties the plan): the participant's answer, 422 when it refuses. */
static enum MHD_Result set_faults(req *r, const char *svc)
{
    enum MHD_Result sent = MHD_NO;
    json_t *reply = NULL, *body = body_object(r, 0, &sent);
    if (body == NULL)
        return sent;
    const char *spec = json_string_value(json_object_get(body, "spec"));
    if (spec == NULL || strlen(spec) > CTL_PLAN_MAX || strpbrk(spec, "\n\r") != NULL) {
        sent = send_error(r->conn, MHD_HTTP_BAD_REQUEST,
                          "want {\"spec\": \"KEY=VALUE ...\"} (one line, at most %d bytes; "
                          "\"clear\" first empties the plan)",
                          CTL_PLAN_MAX);
        goto out;
    }
    int rc = ctl_faults_ask(&r->s->conn, "faults", svc, spec, &reply);
    if (rc != CTL_EXIT_OK)
        sent = send_failure(r, rc, "the participant does not answer");
    else if (ctl_faults_ok("faults", svc, reply) != 0)
        sent = send_error(r->conn, MHD_HTTP_UNPROCESSABLE_CONTENT, "%s", ctl_buf_str(&r->err));
    else
        sent = send_json(r->conn, MHD_HTTP_OK, json_incref(reply));
out:
    json_decref(reply);
    json_decref(body);
    return sent;
}

/* ---- dead letters and stock ----------------------------------------------------------- */

static int on_dead_letter(natsMsg *m, uint64_t seq, int64_t time_ns, void *udata)
{
    json_t *list = udata;
    if (json_array_size(list) == DLQ_SHOWN)
        json_array_remove(list, 0);
    return json_array_append_new(list, ctl_dlq_entry_json(m, seq, time_ns)) == 0 ? 0 : -1;
}

static enum MHD_Result get_dlq(req *r)
{
    ctl_stream_result res;
    json_t *list = json_array();
    int rc = ctl_stream_read_msgs(&r->s->conn, "dlq", CTL_DLQ_STREAM, SAGA_SUBJ_DLQ_ALL, 0,
                                  on_dead_letter, list, &res);
    if (rc != CTL_EXIT_OK) {
        json_decref(list);
        return send_failure(r, rc, "cannot read " CTL_DLQ_STREAM);
    }
    return send_json(
        r->conn, MHD_HTTP_OK,
        json_pack("{s:o, s:I}", "dead_letters", list, "total", (json_int_t)res.messages));
}

/* GET /api/dlq/SEQ, or POST /api/dlq/SEQ/replay when replay. */
static enum MHD_Result dead_letter(req *r, const char *seq_text, int replay)
{
    long long seq;
    natsMsg *m = NULL;
    enum MHD_Result sent;
    if (ctl_parse_ll(seq_text, 1, INT64_MAX, &seq) != 0)
        return send_error(r->conn, MHD_HTTP_NOT_FOUND, "'%s' is not a sequence number", seq_text);
    int rc = ctl_dlq_get(&r->s->conn, (uint64_t)seq, &m);
    if (rc == CTL_EXIT_FAIL)
        return send_error(r->conn, MHD_HTTP_NOT_FOUND, "%s", ctl_buf_str(&r->err));
    if (rc != CTL_EXIT_OK)
        return send_failure(r, rc, "cannot read the dead letter");
    if (!replay) {
        saga_event ev;
        void *owner = NULL;
        int decoded =
            saga_event_decode((const uint8_t *)natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m),
                              &ev, &owner, NULL, 0) == SAGA_OK;
        sent = send_json(r->conn, MHD_HTTP_OK,
                         ctl_dlq_show_json(m, (uint64_t)seq, decoded ? &ev : NULL));
        free(owner);
    } else {
        ctl_buf said;
        ctl_buf_init(&said);
        rc = ctl_dlq_replay(&r->s->conn, (uint64_t)seq, CTL_DLQ_MAX_REPLAYS, 0, &said);
        if (rc == CTL_EXIT_OK)
            sent = send_json(r->conn, MHD_HTTP_OK,
                             json_pack("{s:o}", "message", ctl_json_text(ctl_buf_str(&said))));
        else if (rc == CTL_EXIT_FAIL)
            sent = send_error(r->conn, MHD_HTTP_CONFLICT, "%s", ctl_buf_str(&r->err));
        else
            sent = send_failure(r, rc, "replay failed");
        ctl_buf_cleanup(&said);
    }
    natsMsg_Destroy(m);
    return sent;
}

static enum MHD_Result purge_dlq(req *r)
{
    uint64_t before = 0, purged = 0;
    int missing = 0;
    int rc = ctl_stream_count(&r->s->conn, "dlq", CTL_DLQ_STREAM, NULL, &before, &missing);
    if (rc != CTL_EXIT_OK)
        return send_failure(r, rc, "cannot count the dead letters");
    if (!missing && before > 0) {
        natsStatus s = ctl_dlq_purge(&r->s->conn, NULL, before, &purged);
        if (s != NATS_OK)
            return send_error(r->conn, MHD_HTTP_SERVICE_UNAVAILABLE, "purge failed: %s",
                              natsStatus_GetText(s));
    }
    return send_json(r->conn, MHD_HTTP_OK, json_pack("{s:I}", "purged", (json_int_t)purged));
}

/* GET /api/stock: every SKU, summed over the inventory instances. */
static enum MHD_Result get_stock(req *r)
{
    json_t *j = NULL;
    int rc = ctl_stock_all(&r->s->conn, "stock", &j);
    if (rc != CTL_EXIT_OK)
        return send_failure(r, rc, "the inventory service does not answer");
    return send_json(r->conn, MHD_HTTP_OK, j);
}

/* POST /api/stock, body {"sku": S, "quantity": N}: the SKU's stock after, over every
 * inventory instance. */
static enum MHD_Result set_stock(req *r)
{
    ctl_stock st;
    size_t instances = 0;
    enum MHD_Result sent = MHD_NO;
    json_t *body = body_object(r, 0, &sent);
    if (body == NULL)
        return sent;
    const char *sku = json_string_value(json_object_get(body, "sku"));
    json_t *qty = json_object_get(body, "quantity");
    if (sku == NULL || !json_is_integer(qty) || json_integer_value(qty) < 0 ||
        json_integer_value(qty) > CTL_STOCK_MAX) {
        sent = send_error(r->conn, MHD_HTTP_BAD_REQUEST,
                          "want {\"sku\": string, \"quantity\": integer 0..10^12}");
        goto out;
    }
    int rc = ctl_stock_run(&r->s->conn, "stock", sku, json_integer_value(qty), &st, &instances);
    if (rc != CTL_EXIT_OK)
        sent = send_failure(r, rc, "the inventory service did not take the stock");
    else
        sent = send_json(r->conn, MHD_HTTP_OK, ctl_stock_json(sku, &st, instances));
out:
    json_decref(body);
    return sent;
}

/* ---- routing ---------------------------------------------------------------------- */

static enum MHD_Result send_file(struct MHD_Connection *conn, const gw_file *f)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(f->len, (void *)f->data, MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, f->type);
    enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rc;
}

/* Splits "/a/b/c" into at most n segments (pointing into buf). Returns how
 * many, or -1 for more than n. */
static int split_path(const char *url, char *buf, size_t cap, char **seg, int n)
{
    int k = 0;
    snprintf(buf, cap, "%s", url);
    for (char *save = NULL, *p = strtok_r(buf, "/", &save); p != NULL;
         p = strtok_r(NULL, "/", &save)) {
        if (k == n)
            return -1;
        seg[k++] = p;
    }
    return k;
}

static int is(const char *a, const char *b)
{
    return a != NULL && strcmp(a, b) == 0;
}

/* The route of method and path; NULL segments are absent. */
static enum MHD_Result dispatch(req *r, const char *method, const char *url)
{
    char buf[512];
    char *seg[4] = {NULL, NULL, NULL, NULL};
    int get = is(method, "GET") || is(method, "HEAD"), post = is(method, "POST");
    int n = strlen(url) < sizeof(buf) ? split_path(url, buf, sizeof(buf), seg, 4) : -1;

    if (is(method, "TOO_BIG"))
        return send_error(r->conn, MHD_HTTP_CONTENT_TOO_LARGE, "the body is larger than %d bytes",
                          GW_BODY_MAX);
    if (n >= 1 && is(seg[0], "orders")) {
        if (n >= 2 && !saga_valid_order_id(seg[1]))
            return send_error(r->conn, MHD_HTTP_NOT_FOUND,
                              "'%s' is not an order id ([A-Za-z0-9_-]{1,64})", seg[1]);
        if (n == 1 && post)
            return place(r);
        if (n == 2 && get)
            return get_order(r, seg[1]);
        if (n == 3 && post && is(seg[2], "cancel"))
            return cancel(r, seg[1]);
        if (n == 3 && get && is(seg[2], "timeline"))
            return get_timeline(r, seg[1]);
    } else if (n == 1 && get && is(seg[0], "events")) {
        struct MHD_Response *resp = gw_feed_response(r->s->feed);
        if (resp == NULL)
            return MHD_NO;
        enum MHD_Result rc = MHD_queue_response(r->conn, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp);
        return rc;
    } else if (n >= 2 && is(seg[0], "api")) {
        if (n == 2 && get && is(seg[1], "fleet"))
            return get_fleet(r);
        if (n == 3 && post && is(seg[1], "faults")) {
            if (!saga_valid_producer(seg[2]))
                return send_error(r->conn, MHD_HTTP_NOT_FOUND, "'%s' is no participant's name",
                                  seg[2]);
            return set_faults(r, seg[2]);
        }
        if (n == 2 && get && is(seg[1], "dlq"))
            return get_dlq(r);
        if (n == 3 && post && is(seg[1], "dlq") && is(seg[2], "purge"))
            return purge_dlq(r);
        if (n == 3 && get && is(seg[1], "dlq"))
            return dead_letter(r, seg[2], 0);
        if (n == 4 && post && is(seg[1], "dlq") && is(seg[3], "replay"))
            return dead_letter(r, seg[2], 1);
        if (n == 2 && is(seg[1], "stock") && (get || post))
            return get ? get_stock(r) : set_stock(r);
    } else if (get) {
        const gw_file *f = gw_www_find(url);
        if (f != NULL)
            return send_file(r->conn, f);
    }
    return send_error(r->conn, MHD_HTTP_NOT_FOUND, "no route %s %s (see saga-gateway --help)",
                      method, url);
}

enum MHD_Result gw_route(gw_server *s, struct MHD_Connection *conn, const char *method,
                         const char *url, const char *body, size_t len)
{
    req r = {.s = s, .conn = conn, .body = body, .len = len};
    int64_t t0 = ctl_now_ms();
    ctl_buf_init(&r.err);
    /* What sagactl's functions would print goes into the answer instead. */
    ctl_err_capture(&r.err);
    enum MHD_Result rc = dispatch(&r, method, url);
    ctl_err_capture(NULL);
    /* Changes are logged; the console's polling is not. */
    if (!is(method, "GET") && !is(method, "HEAD"))
        fprintf(stderr, "event=request method=%s path=%s ms=%lld\n", method, url,
                (long long)(ctl_now_ms() - t0));
    ctl_buf_cleanup(&r.err);
    return rc;
}
