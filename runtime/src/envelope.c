/* envelope.c - Encoding, decoding and validation of the event envelope (saga.v1.Envelope).
 *
 * Everything decoded here came from the network, so every field is checked
 * against its cap and its alphabet before anything else in the runtime sees
 * it; a message that fails is reported, never trusted and never a crash. */
#include "saga/event.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.pb-c.h"
#include "saga/wire.h"

static int is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* The validators stop at the first byte that cannot belong to a valid value,
 * so they never read more than the cap plus one byte: safe on the fixed-size
 * arrays of a saga_event even if one was not NUL-terminated. */

int saga_valid_order_id(const char *s)
{
    size_t n;
    if (s == NULL)
        return 0;
    for (n = 0; s[n] != '\0'; n++) {
        char c = s[n];
        if (n >= SAGA_ORDER_ID_MAX)
            return 0;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return n >= 1;
}

int saga_valid_type(const char *s)
{
    size_t n, dot = 0;
    int dots = 0;
    if (s == NULL)
        return 0;
    for (n = 0; s[n] != '\0'; n++) {
        if (n >= SAGA_TYPE_MAX)
            return 0;
        if (s[n] == '.') {
            if (++dots > 1)
                return 0;
            dot = n;
        } else if (!is_lower_alnum(s[n])) {
            return 0;
        }
    }
    /* Exactly one dot with at least one character on each side. */
    return dots == 1 && dot > 0 && dot + 1 < n;
}

int saga_valid_producer(const char *s)
{
    size_t n;
    if (s == NULL)
        return 0;
    for (n = 0; s[n] != '\0'; n++) {
        if (n >= SAGA_PRODUCER_MAX)
            return 0;
        if (!is_lower_alnum(s[n]))
            return 0;
    }
    return n >= 1;
}

/* The trace travels in a message header and in log lines, so it is held to
 * visible ASCII; an empty trace is allowed. Returns SAGA_OK, SAGA_ETOOBIG or
 * SAGA_EVALIDATE. */
static saga_status check_trace(const char *s)
{
    size_t n;
    for (n = 0; s[n] != '\0'; n++) {
        if (n >= SAGA_TRACE_MAX)
            return SAGA_ETOOBIG;
        if (s[n] < 0x21 || s[n] > 0x7e)
            return SAGA_EVALIDATE;
    }
    return SAGA_OK;
}

static void set_err(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *errbuf, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (errbuf == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

/* Checks every envelope field the same way for encode and decode, so that
 * whatever we send, we also accept. Returns SAGA_OK or the status to report,
 * naming the field in errbuf. */
static saga_status check_fields(const char *event_id, const char *type, uint32_t schema_version,
                                const char *order_id, const char *causation_id,
                                const char *producer, uint64_t sequence, int64_t time_ms,
                                const char *trace, size_t payload_len, char *errbuf, size_t errlen)
{
    saga_status st;
    /* protobuf-c gives absent strings as "", never NULL; be safe anyway. */
    if (causation_id == NULL)
        causation_id = "";
    if (trace == NULL)
        trace = "";
    if (!saga_valid_ulid(event_id)) {
        set_err(errbuf, errlen, "bad event_id");
        return SAGA_EVALIDATE;
    }
    if (!saga_valid_type(type)) {
        set_err(errbuf, errlen, "bad type");
        return SAGA_EVALIDATE;
    }
    if (schema_version < 1) {
        set_err(errbuf, errlen, "bad schema_version: 0");
        return SAGA_EVALIDATE;
    }
    if (!saga_valid_order_id(order_id)) {
        set_err(errbuf, errlen, "bad order_id");
        return SAGA_EVALIDATE;
    }
    if (causation_id[0] != '\0' && !saga_valid_ulid(causation_id)) {
        set_err(errbuf, errlen, "bad causation_id");
        return SAGA_EVALIDATE;
    }
    if (!saga_valid_producer(producer)) {
        set_err(errbuf, errlen, "bad producer");
        return SAGA_EVALIDATE;
    }
    if (sequence < 1) {
        set_err(errbuf, errlen, "bad sequence: 0");
        return SAGA_EVALIDATE;
    }
    if (time_ms <= 0) {
        set_err(errbuf, errlen, "bad time_unix_ms: %lld", (long long)time_ms);
        return SAGA_EVALIDATE;
    }
    st = check_trace(trace);
    if (st != SAGA_OK) {
        set_err(errbuf, errlen,
                st == SAGA_ETOOBIG ? "bad trace: longer than %d bytes"
                                   : "bad trace: not visible ASCII",
                SAGA_TRACE_MAX);
        return st;
    }
    if (payload_len > SAGA_PAYLOAD_MAX) {
        set_err(errbuf, errlen, "bad payload: %zu bytes, cap %d", payload_len, SAGA_PAYLOAD_MAX);
        return SAGA_ETOOBIG;
    }
    return SAGA_OK;
}

saga_status saga_event_encode(const saga_event *ev, uint8_t **out, size_t *out_len)
{
    Saga__V1__Envelope msg = SAGA__V1__ENVELOPE__INIT;
    uint8_t *buf = NULL;
    size_t size;
    saga_status rv;

    if (ev == NULL || out == NULL || out_len == NULL) {
        rv = SAGA_EINVAL;
        goto out;
    }
    if (ev->payload == NULL && ev->payload_len > 0) {
        rv = SAGA_EVALIDATE;
        goto out;
    }
    rv = check_fields(ev->event_id, ev->type, ev->schema_version, ev->order_id, ev->causation_id,
                      ev->producer, ev->sequence, ev->time_ms, ev->trace, ev->payload_len, NULL, 0);
    if (rv != SAGA_OK)
        goto out;

    /* protobuf-c's message struct is not const-correct; pack only reads. */
    msg.event_id = (char *)ev->event_id;
    msg.type = (char *)ev->type;
    msg.schema_version = ev->schema_version;
    msg.order_id = (char *)ev->order_id;
    msg.causation_id = (char *)ev->causation_id;
    msg.producer = (char *)ev->producer;
    msg.sequence = ev->sequence;
    msg.time_unix_ms = ev->time_ms;
    msg.trace = (char *)ev->trace;
    msg.payload.len = ev->payload_len;
    msg.payload.data = (uint8_t *)ev->payload;

    size = saga__v1__envelope__get_packed_size(&msg);
    if (size > SAGA_ENVELOPE_MAX) {
        rv = SAGA_ETOOBIG; /* the field caps keep us far below; a decoder would refuse it */
        goto out;
    }
    buf = malloc(size);
    if (buf == NULL) {
        rv = SAGA_ENOMEM;
        goto out;
    }
    if (saga__v1__envelope__pack(&msg, buf) != size) {
        rv = SAGA_EIO; /* protobuf-c disagreeing with itself: not a caller error */
        goto out;
    }
    *out = buf;
    *out_len = size;
    buf = NULL;
out:
    free(buf);
    return rv;
}

/* Copies a string that check_fields has already bounded. */
static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = src != NULL ? strlen(src) : 0;
    if (n >= cap)
        n = cap - 1;
    if (n > 0)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

saga_status saga_event_decode(const uint8_t *data, size_t len, saga_event *ev, void **payload_owner,
                              char *errbuf, size_t errlen)
{
    Saga__V1__Envelope *msg = NULL;
    saga_event tmp;
    uint8_t *payload = NULL;
    saga_status rv;

    if (errbuf != NULL && errlen > 0)
        errbuf[0] = '\0';
    if (payload_owner != NULL)
        *payload_owner = NULL;
    if (ev == NULL || payload_owner == NULL || (data == NULL && len > 0)) {
        set_err(errbuf, errlen, "invalid argument");
        rv = SAGA_EINVAL;
        goto out;
    }
    /* An empty buffer is a valid protobuf (all defaults), but never a valid
     * event: say so plainly instead of "bad event_id". */
    if (len == 0) {
        set_err(errbuf, errlen, "empty message");
        rv = SAGA_EDECODE;
        goto out;
    }
    /* Checked before unpacking so a huge message costs no allocation. */
    if (len > SAGA_ENVELOPE_MAX) {
        set_err(errbuf, errlen, "envelope of %zu bytes exceeds cap %d", len, SAGA_ENVELOPE_MAX);
        rv = SAGA_ETOOBIG;
        goto out;
    }
    msg = saga__v1__envelope__unpack(NULL, len, data);
    if (msg == NULL) {
        set_err(errbuf, errlen, "not a saga.v1.Envelope");
        rv = SAGA_EDECODE;
        goto out;
    }
    if (msg->payload.len > 0 && msg->payload.data == NULL) {
        set_err(errbuf, errlen, "bad payload");
        rv = SAGA_EDECODE;
        goto out;
    }
    rv = check_fields(msg->event_id, msg->type, msg->schema_version, msg->order_id,
                      msg->causation_id, msg->producer, msg->sequence, msg->time_unix_ms,
                      msg->trace, msg->payload.len, errbuf, errlen);
    if (rv != SAGA_OK)
        goto out;

    memset(&tmp, 0, sizeof(tmp));
    copy_str(tmp.event_id, sizeof(tmp.event_id), msg->event_id);
    copy_str(tmp.type, sizeof(tmp.type), msg->type);
    tmp.schema_version = msg->schema_version;
    copy_str(tmp.order_id, sizeof(tmp.order_id), msg->order_id);
    copy_str(tmp.causation_id, sizeof(tmp.causation_id), msg->causation_id);
    copy_str(tmp.producer, sizeof(tmp.producer), msg->producer);
    tmp.sequence = msg->sequence;
    tmp.time_ms = msg->time_unix_ms;
    copy_str(tmp.trace, sizeof(tmp.trace), msg->trace);
    /* The payload is copied out so the unpacked message can be freed now
     * and the caller holds a single buffer. */
    if (msg->payload.len > 0) {
        payload = malloc(msg->payload.len);
        if (payload == NULL) {
            set_err(errbuf, errlen, "out of memory for a %zu-byte payload", msg->payload.len);
            rv = SAGA_ENOMEM;
            goto out;
        }
        memcpy(payload, msg->payload.data, msg->payload.len);
    }
    tmp.payload = payload;
    tmp.payload_len = msg->payload.len;

    *ev = tmp;
    *payload_owner = payload;
    payload = NULL;
out:
    free(payload);
    if (msg != NULL)
        saga__v1__envelope__free_unpacked(msg, NULL);
    return rv;
}

unsigned saga_partition_of(const char *order_id)
{
    uint32_t h = 2166136261u; /* FNV-1a 32-bit, as nats-server's partition() mapping */
    for (const unsigned char *p = (const unsigned char *)order_id; *p != '\0'; p++) {
        h ^= *p;
        h *= 16777619u;
    }
    return h % SAGA_PARTITIONS;
}

saga_status saga_event_subject(const char *type, const char *order_id, char *out, size_t outlen)
{
    int n;
    if (out == NULL || outlen == 0)
        return out == NULL ? SAGA_EINVAL : SAGA_ETOOBIG;
    out[0] = '\0';
    /* Validated because the tokens go into a subject: a '*', '>' or space
     * there would publish to the wrong place. */
    if (!saga_valid_type(type) || !saga_valid_order_id(order_id))
        return SAGA_EINVAL;
    n = snprintf(out, outlen, SAGA_SUBJ_EVENT_FMT, saga_partition_of(order_id), type);
    if (n < 0 || (size_t)n >= outlen) {
        out[0] = '\0';
        return SAGA_ETOOBIG;
    }
    return SAGA_OK;
}
