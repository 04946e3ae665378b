/* commands.c - The commands sagactl sends to services (protobuf request/reply
 * over core NATS, schemas/commands.proto): place and cancel an order, set and
 * read stock. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.pb-c.h"
#include "ctl.h"
#include "saga/wire.h"

#define MAX_ITEMS 1000 /* the order service allows 100; this only bounds our memory */

/* One request, with the header traceparent when it is not NULL. */
static natsStatus request_traced(ctl_conn *c, const char *subject, const void *req, size_t len,
                                 const char *traceparent, natsMsg **reply)
{
    natsMsg *m = NULL;
    if (traceparent == NULL)
        return ctl_request(c, subject, req, len, CTL_COMMAND_TIMEOUT_MS, reply);
    natsStatus s = natsMsg_Create(&m, subject, NULL, req, (int)len);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, SAGA_HDR_TRACEPARENT, traceparent);
    if (s == NATS_OK)
        s = natsConnection_RequestMsg(reply, c->nc, m, CTL_COMMAND_TIMEOUT_MS);
    natsMsg_Destroy(m);
    return s;
}

/* Sends a command, retrying on timeout: the request carries everything that
 * makes a retry safe (place: the idempotency key; cancel and stock set are
 * idempotent). *reply is set on CTL_EXIT_OK; the caller destroys it. */
static int send_command(ctl_conn *c, const char *cmd, const char *subject, const void *req,
                        size_t len, const char *traceparent, natsMsg **reply)
{
    natsStatus s = NATS_TIMEOUT;
    for (int attempt = 1; attempt <= CTL_COMMAND_ATTEMPTS; attempt++) {
        s = request_traced(c, subject, req, len, traceparent, reply);
        if (s != NATS_TIMEOUT)
            break;
        if (attempt < CTL_COMMAND_ATTEMPTS)
            ctl_err(cmd, "no answer on %s within %d ms, retrying (%d of %d)", subject,
                    CTL_COMMAND_TIMEOUT_MS, attempt + 1, CTL_COMMAND_ATTEMPTS);
    }
    if (s == NATS_OK)
        return CTL_EXIT_OK;
    if (s == NATS_NO_RESPONDERS)
        ctl_err(cmd, "nobody serves %s: is the service running? (sagactl ready SERVICE)", subject);
    else if (s == NATS_TIMEOUT)
        ctl_err(cmd, "no answer on %s after %d attempts", subject, CTL_COMMAND_ATTEMPTS);
    else
        ctl_err(cmd, "request on %s failed: %s", subject, natsStatus_GetText(s));
    return CTL_EXIT_UNREACHABLE;
}

/* ctl_command, with the header traceparent when it is not NULL. */
static int command_traced(ctl_conn *c, const char *cmd, const char *subject,
                          const ProtobufCMessage *req, const char *traceparent,
                          const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **reply)
{
    size_t len = protobuf_c_message_get_packed_size(req);
    uint8_t *buf = malloc(len ? len : 1);
    natsMsg *m = NULL;
    int rc = CTL_EXIT_FAIL;

    *reply = NULL;
    if (buf == NULL) {
        ctl_err(cmd, "out of memory");
        return CTL_EXIT_FAIL;
    }
    protobuf_c_message_pack(req, buf);
    rc = send_command(c, cmd, subject, buf, len, traceparent, &m);
    if (rc != CTL_EXIT_OK)
        goto out;
    *reply = protobuf_c_message_unpack(reply_desc, NULL, (size_t)natsMsg_GetDataLength(m),
                                       (const uint8_t *)natsMsg_GetData(m));
    if (*reply == NULL) {
        ctl_err(cmd, "the answer on %s does not decode", subject);
        rc = CTL_EXIT_FAIL;
    }
out:
    natsMsg_Destroy(m);
    free(buf);
    return rc;
}

int ctl_command(ctl_conn *c, const char *cmd, const char *subject, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **reply)
{
    return command_traced(c, cmd, subject, req, NULL, reply_desc, reply);
}

int ctl_place(ctl_conn *c, const char *cmd, const Saga__V1__PlaceOrder *req,
              const char *traceparent, Saga__V1__PlaceOrderReply **rep)
{
    /* To the order instance that owns the key's partition, so that a retry finds
     * the first order (docs/scaling.md); the only instance answers all. */
    char subject[160], any[24];
    const char *key = req->idempotency_key;
    if (key == NULL || key[0] == '\0') {
        snprintf(any, sizeof(any), "%lld", (long long)ctl_now_ms());
        key = any;
    }
    saga_routed_subject(SAGA_SUBJ_ORDER_PLACE, key, subject, sizeof(subject));
    return command_traced(c, cmd, subject, &req->base, traceparent,
                          &saga__v1__place_order_reply__descriptor, (ProtobufCMessage **)rep);
}

int ctl_cancel(ctl_conn *c, const char *cmd, const Saga__V1__CancelOrder *req,
               Saga__V1__CommandReply **rep)
{
    char subject[160];
    saga_routed_subject(SAGA_SUBJ_ORDER_CANCEL, req->order_id, subject, sizeof(subject));
    return ctl_command(c, cmd, subject, &req->base, &saga__v1__command_reply__descriptor,
                       (ProtobufCMessage **)rep);
}

/* Splits "SKU:QTY:UNIT_CENTS" (SKUs never contain ':'). text is modified:
 * item->sku points into it. */
static int parse_item(char *text, Saga__V1__LineItem *item)
{
    long long qty, cents;
    char *c2 = strrchr(text, ':');
    if (c2 == NULL)
        return -1;
    *c2 = '\0';
    char *c1 = strrchr(text, ':');
    if (c1 == NULL || c1 == text)
        return -1;
    *c1 = '\0';
    if (ctl_parse_ll(c1 + 1, 1, INT32_MAX, &qty) != 0 ||
        ctl_parse_ll(c2 + 1, 0, INT64_MAX / 100000, &cents) != 0)
        return -1;
    item->sku = text;
    item->quantity = (int32_t)qty;
    item->unit_cents = cents;
    return 0;
}

static const char place_help[] =
    "usage: sagactl place --customer ID --item SKU:QTY:UNIT_CENTS [--item ...]\n"
    "                     [--ship-to CC] [--currency EUR|USD|GBP] [--deadline-ms MS]\n"
    "                     [--idempotency-key K] [--traceparent TP] [--json] [--url URL]\n\n"
    "Places an order (request saga.cmd.order.place) and prints its id. Without\n"
    "--idempotency-key a fresh key is made, so the CLI's own retries (up to 3 on\n"
    "timeout) can never place the order twice; pass your own key to make retries\n"
    "of the whole command safe too. --traceparent sends a W3C trace context\n"
    "(00-<32 hex>-<16 hex>-<2 hex>): the order's events continue that trace\n"
    "instead of starting one. --json prints {\"order_id\":..,\"duplicate\":bool}.\n"
    "Example: sagactl place --customer c1 --item A1:2:1250 --item B7:1:999 --ship-to DE\n";

int ctl_cmd_place(const char *url, int argc, char **argv)
{
    static const struct option opts[] = {{"customer", required_argument, NULL, 'c'},
                                         {"item", required_argument, NULL, 'i'},
                                         {"ship-to", required_argument, NULL, 's'},
                                         {"currency", required_argument, NULL, 'C'},
                                         {"deadline-ms", required_argument, NULL, 'd'},
                                         {"idempotency-key", required_argument, NULL, 'k'},
                                         {"traceparent", required_argument, NULL, 't'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"url", required_argument, NULL, 'U'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    Saga__V1__PlaceOrder req = SAGA__V1__PLACE_ORDER__INIT;
    Saga__V1__LineItem items[MAX_ITEMS];
    Saga__V1__LineItem *item_ptrs[MAX_ITEMS];
    char *texts[MAX_ITEMS];
    char key[64];
    const char *customer = NULL, *idem = NULL, *traceparent = NULL;
    size_t nitems = 0;
    int json = 0, rc = CTL_EXIT_USAGE, opt;
    long long deadline = 0;
    Saga__V1__PlaceOrderReply *rep = NULL;
    ctl_conn c = {0};

    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            customer = optarg;
            break;
        case 'i':
            if (nitems == MAX_ITEMS) {
                ctl_err("place", "too many --item (at most %d)", MAX_ITEMS);
                goto out;
            }
            texts[nitems] = strdup(optarg);
            if (texts[nitems] == NULL) {
                ctl_err("place", "out of memory");
                rc = CTL_EXIT_FAIL;
                goto out;
            }
            saga__v1__line_item__init(&items[nitems]);
            item_ptrs[nitems] = &items[nitems];
            nitems++;
            if (parse_item(texts[nitems - 1], &items[nitems - 1]) != 0) {
                ctl_err("place", "bad --item '%s': want SKU:QTY:UNIT_CENTS, e.g. A1:2:1250",
                        optarg);
                goto out;
            }
            break;
        case 's':
            req.ship_to = optarg;
            break;
        case 'C':
            req.currency = optarg;
            break;
        case 'd':
            if (ctl_parse_ll(optarg, 1, INT64_MAX / 2, &deadline) != 0) {
                ctl_err("place", "bad --deadline-ms '%s': want a positive number", optarg);
                goto out;
            }
            break;
        case 'k':
            idem = optarg;
            break;
        case 't': {
            saga_traceparent tp;
            if (!saga_traceparent_parse(optarg, &tp)) {
                ctl_err("place", "bad --traceparent '%s': want 00-<32 hex>-<16 hex>-<2 hex>",
                        optarg);
                goto out;
            }
            traceparent = optarg;
            break;
        }
        case 'j':
            json = 1;
            break;
        case 'U':
            url = optarg;
            break;
        case 'h':
            fputs(place_help, stdout);
            rc = CTL_EXIT_OK;
            goto out;
        default:
            rc = ctl_bad_option("place", argv, optind, optopt, opt);
            goto out;
        }
    }
    if (optind < argc) {
        ctl_err("place", "unexpected argument '%s' (see sagactl place --help)", argv[optind]);
        goto out;
    }
    if (customer == NULL || nitems == 0) {
        ctl_err("place", "--customer and at least one --item are required (see --help)");
        goto out;
    }
    /* protobuf-c's INIT points strings at a shared empty string, never
     * NULL: presence is tracked here, and the fields set once parsed. */
    if (idem == NULL) {
        char id[SAGA_ID_LEN + 1];
        saga_ulid_new(id);
        snprintf(key, sizeof(key), "ctl-%s", id);
        idem = key;
    }
    req.customer_id = (char *)customer;
    req.idempotency_key = (char *)idem;
    req.items = item_ptrs;
    req.n_items = nitems;
    req.deadline_ms = deadline;

    rc = ctl_connect(&c, "place", url, 0, 0);
    if (rc != CTL_EXIT_OK)
        goto out;
    rc = ctl_place(&c, "place", &req, traceparent, &rep);
    if (rc != CTL_EXIT_OK)
        goto out;
    if (!rep->ok) {
        ctl_err("place", "refused: %s", *rep->error ? rep->error : "(no reason given)");
        rc = CTL_EXIT_FAIL;
        goto out;
    }
    if (json) {
        rc = ctl_print_json("place",
                            json_pack("{s:o, s:b, s:o}", "order_id", ctl_json_text(rep->order_id),
                                      "duplicate", (int)rep->duplicate, "idempotency_key",
                                      ctl_json_text(req.idempotency_key)));
    } else {
        /* The id alone on stdout, so that id=$(sagactl place ...) works. */
        printf("%s\n", rep->order_id);
        if (rep->duplicate)
            ctl_err("place", "note: key '%s' was used before; this is the earlier order",
                    req.idempotency_key);
        rc = CTL_EXIT_OK;
    }
out:
    saga__v1__place_order_reply__free_unpacked(rep, NULL);
    ctl_disconnect(&c);
    for (size_t i = 0; i < nitems; i++)
        free(texts[i]);
    return rc;
}

static const char cancel_help[] =
    "usage: sagactl cancel ORDER_ID [--reason R] [--json] [--url URL]\n\n"
    "Cancels an order (request saga.cmd.order.cancel). A pending order becomes\n"
    "CANCELLED and the participants compensate; cancelling a cancelled order is\n"
    "fine; a confirmed order cannot be cancelled: the command fails (exit 1) with\n"
    "the service's reason. --json prints {\"order_id\":..,\"ok\":..,\"state\":..,\"error\":..}.\n";

int ctl_cmd_cancel(const char *url, int argc, char **argv)
{
    Saga__V1__CancelOrder req = SAGA__V1__CANCEL_ORDER__INIT;
    Saga__V1__CommandReply *rep = NULL;
    const char *reason = req.reason;
    int json = 0, rc;
    const ctl_option opts[] = {
        {"reason", &reason, NULL}, {"json", NULL, &json}, {"url", &url, NULL}};
    ctl_conn c = {0};

    rc = ctl_parse_options("cancel", cancel_help, argc, argv, opts, sizeof(opts) / sizeof(opts[0]));
    if (rc != CTL_EXIT_OK)
        return rc < 0 ? CTL_EXIT_OK : rc;
    req.reason = (char *)reason; /* protobuf-c's fields are not const; it only reads */
    rc = CTL_EXIT_USAGE;
    if (argc - optind != 1) {
        ctl_err("cancel", "want exactly one ORDER_ID (see sagactl cancel --help)");
        goto out;
    }
    req.order_id = argv[optind];
    if (!saga_valid_order_id(req.order_id)) {
        ctl_err("cancel", "'%s' is not an order id ([A-Za-z0-9_-]{1,64})", req.order_id);
        goto out;
    }
    rc = ctl_connect(&c, "cancel", url, 0, 0);
    if (rc != CTL_EXIT_OK)
        goto out;
    rc = ctl_cancel(&c, "cancel", &req, &rep);
    if (rc != CTL_EXIT_OK)
        goto out;
    rc = rep->ok ? CTL_EXIT_OK : CTL_EXIT_FAIL;
    if (!rep->ok)
        ctl_err("cancel", "order %s: %s%s%s%s", req.order_id, *rep->error ? rep->error : "refused",
                *rep->state ? " (state " : "", rep->state, *rep->state ? ")" : "");
    if (json) {
        int printed = ctl_print_json(
            "cancel", json_pack("{s:o, s:b, s:o, s:o}", "order_id", ctl_json_text(req.order_id),
                                "ok", (int)rep->ok, "state", ctl_json_text(rep->state), "error",
                                ctl_json_text(*rep->error ? rep->error : NULL)));
        if (printed != CTL_EXIT_OK)
            rc = printed;
    } else if (rep->ok) {
        printf("order %s: %s\n", req.order_id, *rep->state ? rep->state : "cancel accepted");
    }
out:
    saga__v1__command_reply__free_unpacked(rep, NULL);
    ctl_disconnect(&c);
    return rc;
}

static const char stock_help[] =
    "usage: sagactl stock set SKU QUANTITY [--json] [--url URL]\n"
    "       sagactl stock get SKU [--json] [--url URL]\n\n"
    "Sets the units of SKU available for new reservations, or reads its stock\n"
    "(saga.cmd.inventory.stock.set|get). Prints available, held (reserved by\n"
    "orders not yet final) and committed (taken by confirmed orders).\n"
    "With several inventory instances (found on " SAGA_SUBJ_DISCOVER "), each holds a\n"
    "share of QUANTITY in proportion to its partitions, and get sums the shares;\n"
    "both need every instance up (exit 3 otherwise).\n";

/* The partition sets of the inventory instances that answer discovery into sets
 * (*n of them); CTL_EXIT_UNREACHABLE, said to ctl_err for cmd, when they do not
 * cover every partition. */
static int inventory_sets(ctl_conn *c, const char *cmd, uint32_t *sets, size_t *n)
{
    ctl_fleet f = {0};
    char err[256];
    int rc = ctl_fleet_discover(&f, c, cmd);
    if (rc == CTL_EXIT_OK &&
        ctl_fleet_instances(&f, "inventory", sets, SAGA_PARTITIONS, n, err, sizeof(err)) != 0) {
        ctl_err(cmd, "%s", err);
        rc = CTL_EXIT_UNREACHABLE;
    }
    ctl_fleet_cleanup(&f);
    return rc;
}

int ctl_stock_run(ctl_conn *c, const char *cmd, const char *sku, long long qty, ctl_stock *out,
                  size_t *instances)
{
    uint32_t sets[SAGA_PARTITIONS];
    size_t nsets = 0;
    char err[256];
    /* Inventory instances split the stock (docs/scaling.md): all of them answer. */
    int rc = inventory_sets(c, cmd, sets, &nsets);
    if (rc == CTL_EXIT_OK)
        rc = ctl_stock_request(c->nc, sets, nsets, sku, qty, CTL_COMMAND_TIMEOUT_MS, out, err,
                               sizeof(err));
    if (rc != CTL_EXIT_OK && nsets > 0)
        ctl_err(cmd, "%s: %s", sku, err);
    if (instances != NULL)
        *instances = nsets;
    return rc;
}

int ctl_stock_all(ctl_conn *c, const char *cmd, json_t **out)
{
    uint32_t sets[SAGA_PARTITIONS];
    size_t nsets = 0;
    char err[256];
    int rc = inventory_sets(c, cmd, sets, &nsets);
    *out = NULL;
    if (rc != CTL_EXIT_OK)
        return rc;
    *out = ctl_stock_list(c->nc, sets, nsets, CTL_QUERY_TIMEOUT_MS, err, sizeof(err));
    if (*out != NULL)
        return CTL_EXIT_OK;
    ctl_err(cmd, "%s", err);
    return CTL_EXIT_UNREACHABLE;
}

json_t *ctl_stock_json(const char *sku, const ctl_stock *st, size_t instances)
{
    return json_pack("{s:o, s:I, s:I, s:I, s:I}", "sku", ctl_json_text(sku), "available",
                     (json_int_t)st->available, "held", (json_int_t)st->held, "committed",
                     (json_int_t)st->committed, "instances", (json_int_t)instances);
}

int ctl_cmd_stock(const char *url, int argc, char **argv)
{
    ctl_stock st;
    size_t instances = 0;
    int json = 0, rc;
    long long qty = -1;
    ctl_conn c = {0};

    rc = ctl_parse_opts("stock", stock_help, argc, argv, &url, &json, NULL);
    if (rc != CTL_EXIT_OK)
        return rc < 0 ? CTL_EXIT_OK : rc;
    int nargs = argc - optind;
    if (nargs == 3 && strcmp(argv[optind], "set") == 0) {
        if (ctl_parse_ll(argv[optind + 2], 0, CTL_STOCK_MAX, &qty) != 0) {
            ctl_err("stock", "bad QUANTITY '%s': want 0..10^12", argv[optind + 2]);
            return CTL_EXIT_USAGE;
        }
    } else if (nargs != 2 || strcmp(argv[optind], "get") != 0) {
        ctl_err("stock", "want 'set SKU QUANTITY' or 'get SKU' (see sagactl stock --help)");
        return CTL_EXIT_USAGE;
    }
    const char *sku = argv[optind + 1];
    if (*sku == '\0' || strlen(sku) > 64) {
        ctl_err("stock", "bad SKU '%s'", sku);
        return CTL_EXIT_USAGE;
    }
    rc = ctl_connect(&c, "stock", url, 0, 0);
    if (rc != CTL_EXIT_OK)
        return rc;
    rc = ctl_stock_run(&c, "stock", sku, qty, &st, &instances);
    if (rc != CTL_EXIT_OK)
        goto out;
    if (json)
        rc = ctl_print_json("stock", ctl_stock_json(sku, &st, instances));
    else
        rc = printf("%s: available=%lld held=%lld committed=%lld\n", sku, st.available, st.held,
                    st.committed) < 0
                 ? CTL_EXIT_FAIL
                 : CTL_EXIT_OK;
out:
    ctl_disconnect(&c);
    return rc;
}
