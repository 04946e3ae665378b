/* fuzz_sagactl_dlq.c - How sagactl shows a dead letter (tools/sagactl/dlq.c):
 * its headers, its reason, its replay count and the event it carries, in
 * text and JSON, and the payload summaries of events.c. The input is header
 * lines "Name: value", an empty line, then the message body. */
#include "dlq.c"

#define INPUT_MAX 8192
#define HEADERS_MAX 32

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* cnats' messages need the library opened (natsMsg_Destroy uses its
 * collector), as sagactl's connect does. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (nats_Open(-1) != NATS_OK)
        abort();
    return 0;
}

/* Event types whose payloads sagactl knows how to summarise, and others. */
static const char *const types[] = {
    "order.placed",       "order.confirmed",     "order.cancelled",    "payment.charged",
    "payment.declined",   "payment.refunded",    "inventory.reserved", "inventory.rejected",
    "inventory.released", "inventory.committed", "shipping.scheduled", "shipping.failed",
    "shipping.cancelled", "fraud.cleared",       "fraud.vetoed",       "notification.sent",
    "other.thing"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char head[INPUT_MAX + 1];
    natsMsg *m = NULL;
    const uint8_t *body = data;
    size_t blen = size;
    saga_event ev;
    void *owner = NULL;
    ctl_buf b;

    if (size > INPUT_MAX)
        return 0;
    /* The header block ends at the first empty line; without one, no headers. */
    const uint8_t *end = NULL;
    for (size_t i = 0; i + 1 < size; i++) {
        if (data[i] == '\n' && data[i + 1] == '\n') {
            end = data + i;
            break;
        }
    }
    if (end != NULL) {
        body = end + 2;
        blen = size - (size_t)(body - data);
    }
    if (natsMsg_Create(&m, "dlq.payment", NULL, (const char *)body, (int)blen) != NATS_OK)
        return 0;
    if (end != NULL) {
        size_t hl = (size_t)(end - data);
        memcpy(head, data, hl);
        head[hl] = '\0';
        char *save = NULL;
        int n = 0;
        for (char *line = strtok_r(head, "\n", &save); line != NULL && n < HEADERS_MAX;
             line = strtok_r(NULL, "\n", &save), n++) {
            char *colon = strchr(line, ':');
            if (colon == NULL || colon == line)
                continue;
            *colon = '\0';
            const char *value = colon + 1;
            while (*value == ' ')
                value++;
            natsMsgHeader_Add(m, line, value);
        }
    }

    ctl_buf_init(&b);
    ctl_dlq_classify(header(m, SAGA_HDR_CAUSE), header(m, "Saga-Reason"));
    replays_of(m);
    const saga_event *pev = NULL;
    if (saga_event_decode(body, blen, &ev, &owner, NULL, 0) == SAGA_OK)
        pev = &ev;
    show_text(&b, m, 7, pev);
    json_decref(ctl_dlq_show_json(m, 7, pev));
    json_decref(ctl_dlq_entry_json(m, 7, 0));
    if (pev == NULL && blen > 0) {
        /* The payload readers also on bodies that are not envelopes: a
         * valid envelope around any payload is as easy to send. */
        memset(&ev, 0, sizeof(ev));
        snprintf(ev.event_id, sizeof(ev.event_id), "01HF0000000000000000000000");
        snprintf(ev.type, sizeof(ev.type), "%s",
                 types[body[0] % (sizeof(types) / sizeof(types[0]))]);
        snprintf(ev.order_id, sizeof(ev.order_id), "o-1");
        snprintf(ev.producer, sizeof(ev.producer), "%.*s", (int)strcspn(ev.type, "."), ev.type);
        ev.schema_version = 1;
        ev.payload = body + 1;
        ev.payload_len = blen - 1;
        show_text(&b, m, 7, &ev);
        json_decref(ctl_dlq_show_json(m, 7, &ev));
    }
    ctl_buf_cleanup(&b);
    free(owner);
    natsMsg_Destroy(m);
    return 0;
}
