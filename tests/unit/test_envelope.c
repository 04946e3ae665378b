/* test_envelope.c - Event envelope encode/decode, validation, ULIDs and subjects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <time.h>

#include <cmocka.h>

#include "saga/event.h"
#include "envelope.pb-c.h"

#define ID_A "01ARYZ6S41TSV4RRFFQ69G5FAV"
#define ID_B "01ARZ3NDEKTSV4RRFFQ69G5FAV"

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Deterministic PRNG so a failing fuzz case can be reproduced. */
static uint64_t rng_state = UINT64_C(0x243F6A8885A308D3);

static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}

static void fill_event(saga_event *ev, const uint8_t *payload, size_t len)
{
    memset(ev, 0, sizeof(*ev));
    memcpy(ev->event_id, ID_B, sizeof(ID_B));
    memcpy(ev->type, "payment.charged", sizeof("payment.charged"));
    ev->schema_version = 3;
    memcpy(ev->order_id, "ord-42_X", sizeof("ord-42_X"));
    memcpy(ev->causation_id, ID_A, sizeof(ID_A));
    memcpy(ev->producer, "payment", sizeof("payment"));
    ev->sequence = UINT64_C(1) << 40;
    ev->time_ms = INT64_C(1469922850259);
    memcpy(ev->trace, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
           sizeof("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
    ev->payload = payload;
    ev->payload_len = len;
}

static void assert_same_event(const saga_event *a, const saga_event *b)
{
    assert_string_equal(a->event_id, b->event_id);
    assert_string_equal(a->type, b->type);
    assert_int_equal(a->schema_version, b->schema_version);
    assert_string_equal(a->order_id, b->order_id);
    assert_string_equal(a->causation_id, b->causation_id);
    assert_string_equal(a->producer, b->producer);
    assert_int_equal(a->sequence, b->sequence);
    assert_int_equal(a->time_ms, b->time_ms);
    assert_string_equal(a->trace, b->trace);
    assert_int_equal(a->payload_len, b->payload_len);
    if (a->payload_len > 0)
        assert_memory_equal(a->payload, b->payload, a->payload_len);
}

/* ---- round trip ---------------------------------------------------------- */

static void round_trip_keeps_every_field(void **state)
{
    const uint8_t payload[] = {0x00, 0x01, 0xff, 0x7f, 0x80, 'x', 0x00};
    saga_event in, out;
    uint8_t *buf = NULL;
    size_t len = 0;
    void *owner = NULL;
    char err[128] = "stale";
    (void)state;

    fill_event(&in, payload, sizeof(payload));
    assert_int_equal(saga_event_encode(&in, &buf, &len), SAGA_OK);
    assert_non_null(buf);
    assert_true(len > sizeof(payload));
    assert_int_equal(saga_event_decode(buf, len, &out, &owner, err, sizeof(err)), SAGA_OK);
    assert_string_equal(err, "");
    assert_same_event(&in, &out);
    /* The payload lives in the owner buffer, not in the encoding. */
    assert_ptr_equal(out.payload, owner);
    free(buf);
    free(owner);
}

static void round_trip_empty_optionals(void **state)
{
    saga_event in, out;
    uint8_t *buf = NULL;
    size_t len = 0;
    void *owner = (void *)&len;
    (void)state;

    fill_event(&in, NULL, 0);
    in.causation_id[0] = '\0'; /* the first event of a saga */
    in.trace[0] = '\0';
    in.sequence = 1;
    in.schema_version = 1;
    in.time_ms = 1;
    assert_int_equal(saga_event_encode(&in, &buf, &len), SAGA_OK);
    assert_int_equal(saga_event_decode(buf, len, &out, &owner, NULL, 0), SAGA_OK);
    assert_same_event(&in, &out);
    assert_null(owner);
    assert_null(out.payload);
    free(buf);
}

static void round_trip_largest_payload(void **state)
{
    uint8_t *payload = malloc(SAGA_PAYLOAD_MAX);
    saga_event in, out;
    uint8_t *buf = NULL;
    size_t len = 0, i;
    void *owner = NULL;
    (void)state;

    assert_non_null(payload);
    for (i = 0; i < SAGA_PAYLOAD_MAX; i++)
        payload[i] = (uint8_t)rng();
    fill_event(&in, payload, SAGA_PAYLOAD_MAX);
    assert_int_equal(saga_event_encode(&in, &buf, &len), SAGA_OK);
    assert_true(len <= SAGA_ENVELOPE_MAX);
    assert_int_equal(saga_event_decode(buf, len, &out, &owner, NULL, 0), SAGA_OK);
    assert_same_event(&in, &out);
    free(buf);
    free(owner);
    free(payload);
}

/* ---- encode validation --------------------------------------------------- */

static void encode_rejects_invalid_fields(void **state)
{
    uint8_t *sentinel = (uint8_t *)&state, *buf;
    size_t len;
    saga_event ev;
    int i;
    (void)state;

    for (i = 0; i < 12; i++) {
        fill_event(&ev, (const uint8_t *)"p", 1);
        switch (i) {
        case 0:
            memcpy(ev.event_id, "01arz3ndektsv4rrffq69g5fav", SAGA_ID_LEN + 1);
            break;
        case 1:
            memcpy(ev.type, "charged", sizeof("charged"));
            break;
        case 2:
            ev.schema_version = 0;
            break;
        case 3:
            ev.order_id[0] = '\0';
            break;
        case 4:
            memcpy(ev.causation_id, "not-an-id", sizeof("not-an-id"));
            break;
        case 5:
            memcpy(ev.producer, "Payment", sizeof("Payment"));
            break;
        case 6:
            ev.sequence = 0;
            break;
        case 7:
            ev.time_ms = 0;
            break;
        case 8:
            ev.time_ms = -1;
            break;
        case 9:
            memcpy(ev.trace, "has space", sizeof("has space"));
            break;
        case 10:
            ev.payload = NULL; /* a length without bytes */
            break;
        case 11:
            /* Not NUL-terminated within its array: must be refused, not overread. */
            memset(ev.order_id, 'a', sizeof(ev.order_id));
            break;
        }
        buf = sentinel;
        len = 777;
        assert_int_equal(saga_event_encode(&ev, &buf, &len), SAGA_EVALIDATE);
        /* *out is set only on success. */
        assert_ptr_equal(buf, sentinel);
        assert_int_equal(len, 777);
    }
}

static void encode_rejects_oversized(void **state)
{
    uint8_t *payload = calloc(1, SAGA_PAYLOAD_MAX + 1);
    uint8_t *buf = NULL;
    size_t len = 0;
    saga_event ev;
    (void)state;

    assert_non_null(payload);
    fill_event(&ev, payload, SAGA_PAYLOAD_MAX + 1);
    assert_int_equal(saga_event_encode(&ev, &buf, &len), SAGA_ETOOBIG);
    assert_null(buf);

    fill_event(&ev, payload, 1);
    memset(ev.trace, 'x', sizeof(ev.trace)); /* 129 bytes, no NUL */
    assert_int_equal(saga_event_encode(&ev, &buf, &len), SAGA_ETOOBIG);
    assert_null(buf);

    assert_int_equal(saga_event_encode(NULL, &buf, &len), SAGA_EINVAL);
    assert_int_equal(saga_event_encode(&ev, NULL, &len), SAGA_EINVAL);
    free(payload);
}

/* ---- decode validation --------------------------------------------------- */

/* Packs a hand-made envelope, bypassing saga_event_encode's checks, as a
 * buggy or hostile producer would. */
static uint8_t *pack(const Saga__V1__Envelope *msg, size_t *len)
{
    uint8_t *buf;
    *len = saga__v1__envelope__get_packed_size(msg);
    buf = malloc(*len > 0 ? *len : 1);
    assert_non_null(buf);
    assert_int_equal(saga__v1__envelope__pack(msg, buf), *len);
    return buf;
}

static void valid_msg(Saga__V1__Envelope *msg)
{
    static char event_id[] = ID_B, type[] = "inventory.reserved", order_id[] = "o-1",
                causation_id[] = ID_A, producer[] = "inventory", trace[] = "00-ab-cd-01";
    Saga__V1__Envelope init = SAGA__V1__ENVELOPE__INIT;
    *msg = init;
    msg->event_id = event_id;
    msg->type = type;
    msg->schema_version = 1;
    msg->order_id = order_id;
    msg->causation_id = causation_id;
    msg->producer = producer;
    msg->sequence = 7;
    msg->time_unix_ms = 1700000000000;
    msg->trace = trace;
    msg->payload.data = (uint8_t *)"{}";
    msg->payload.len = 2;
}

static void decode_accepts_hand_made_valid(void **state)
{
    Saga__V1__Envelope msg;
    saga_event ev;
    void *owner = NULL;
    size_t len;
    uint8_t *buf;
    (void)state;

    valid_msg(&msg);
    buf = pack(&msg, &len);
    assert_int_equal(saga_event_decode(buf, len, &ev, &owner, NULL, 0), SAGA_OK);
    assert_string_equal(ev.type, "inventory.reserved");
    assert_int_equal(ev.sequence, 7);
    assert_int_equal(ev.payload_len, 2);
    assert_memory_equal(ev.payload, "{}", 2);
    free(owner);
    free(buf);
}

static char long_string[SAGA_PAYLOAD_MAX + 2];

static const char *repeat(char c, size_t n)
{
    memset(long_string, c, n);
    long_string[n] = '\0';
    return long_string;
}

static void decode_rejects_each_invalid_field(void **state)
{
    static const struct {
        const char *field; /* which field to break */
        const char *value; /* string value, or NULL for the numeric cases */
        long long num;
        saga_status want;
        const char *err; /* expected start of errbuf */
    } cases[] = {
        {"event_id", "", 0, SAGA_EVALIDATE, "bad event_id"},
        {"event_id", "01ARYZ6S41TSV4RRFFQ69G5FA", 0, SAGA_EVALIDATE, "bad event_id"},
        {"event_id", "01ARYZ6S41TSV4RRFFQ69G5FAVV", 0, SAGA_EVALIDATE, "bad event_id"},
        {"event_id", "01ARYZ6S41TSV4RRFFQ69G5FAU", 0, SAGA_EVALIDATE, "bad event_id"},
        {"event_id", "81ARYZ6S41TSV4RRFFQ69G5FAV", 0, SAGA_EVALIDATE, "bad event_id"},
        {"type", "", 0, SAGA_EVALIDATE, "bad type"},
        {"type", "payment", 0, SAGA_EVALIDATE, "bad type"},
        {"type", "payment.", 0, SAGA_EVALIDATE, "bad type"},
        {"type", ".charged", 0, SAGA_EVALIDATE, "bad type"},
        {"type", "a.b.c", 0, SAGA_EVALIDATE, "bad type"},
        {"type", "Payment.charged", 0, SAGA_EVALIDATE, "bad type"},
        {"type", "payment.*", 0, SAGA_EVALIDATE, "bad type"},
        {"order_id", "", 0, SAGA_EVALIDATE, "bad order_id"},
        {"order_id", "a b", 0, SAGA_EVALIDATE, "bad order_id"},
        {"order_id", "a.b", 0, SAGA_EVALIDATE, "bad order_id"},
        {"order_id", ">", 0, SAGA_EVALIDATE, "bad order_id"},
        {"causation_id", "nope", 0, SAGA_EVALIDATE, "bad causation_id"},
        {"producer", "", 0, SAGA_EVALIDATE, "bad producer"},
        {"producer", "Payment", 0, SAGA_EVALIDATE, "bad producer"},
        {"producer", "pay.ment", 0, SAGA_EVALIDATE, "bad producer"},
        {"trace", "a b", 0, SAGA_EVALIDATE, "bad trace"},
        {"trace", "tab\there", 0, SAGA_EVALIDATE, "bad trace"},
        {"schema_version", NULL, 0, SAGA_EVALIDATE, "bad schema_version"},
        {"sequence", NULL, 0, SAGA_EVALIDATE, "bad sequence"},
        {"time_unix_ms", NULL, 0, SAGA_EVALIDATE, "bad time_unix_ms"},
        {"time_unix_ms", NULL, -1700000000000LL, SAGA_EVALIDATE, "bad time_unix_ms"},
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        Saga__V1__Envelope msg;
        saga_event ev;
        void *owner = (void *)&msg;
        char err[128] = "";
        char *value = (char *)cases[i].value;
        saga_status st;
        size_t len;
        uint8_t *buf;

        valid_msg(&msg);
        if (strcmp(cases[i].field, "event_id") == 0)
            msg.event_id = value;
        else if (strcmp(cases[i].field, "type") == 0)
            msg.type = value;
        else if (strcmp(cases[i].field, "order_id") == 0)
            msg.order_id = value;
        else if (strcmp(cases[i].field, "causation_id") == 0)
            msg.causation_id = value;
        else if (strcmp(cases[i].field, "producer") == 0)
            msg.producer = value;
        else if (strcmp(cases[i].field, "trace") == 0)
            msg.trace = value;
        else if (strcmp(cases[i].field, "schema_version") == 0)
            msg.schema_version = (uint32_t)cases[i].num;
        else if (strcmp(cases[i].field, "sequence") == 0)
            msg.sequence = (uint64_t)cases[i].num;
        else if (strcmp(cases[i].field, "time_unix_ms") == 0)
            msg.time_unix_ms = cases[i].num;
        else
            fail_msg("unknown field %s", cases[i].field);
        buf = pack(&msg, &len);
        st = saga_event_decode(buf, len, &ev, &owner, err, sizeof(err));
        if (st != cases[i].want || strncmp(err, cases[i].err, strlen(cases[i].err)) != 0)
            fail_msg("case %zu (%s): got %s \"%s\", want %s \"%s\"", i, cases[i].field,
                     saga_status_name(st), err, saga_status_name(cases[i].want), cases[i].err);
        assert_null(owner);
        free(buf);
    }
}

/* Values longer than their caps: each must be refused by its own check. */
static void decode_rejects_overlong_fields(void **state)
{
    static const struct {
        const char *field;
        size_t len;
        saga_status want;
        const char *err;
    } cases[] = {
        {"order_id", SAGA_ORDER_ID_MAX + 1, SAGA_EVALIDATE, "bad order_id"},
        {"type", SAGA_TYPE_MAX + 1, SAGA_EVALIDATE, "bad type"},
        {"producer", SAGA_PRODUCER_MAX + 1, SAGA_EVALIDATE, "bad producer"},
        {"trace", SAGA_TRACE_MAX + 1, SAGA_ETOOBIG, "bad trace"},
        {"payload", SAGA_PAYLOAD_MAX + 1, SAGA_ETOOBIG, "bad payload"},
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        Saga__V1__Envelope msg;
        saga_event ev;
        void *owner = NULL;
        char err[128] = "";
        char *s = (char *)repeat('a', cases[i].len);
        size_t len;
        uint8_t *buf;

        valid_msg(&msg);
        if (strcmp(cases[i].field, "order_id") == 0) {
            msg.order_id = s;
        } else if (strcmp(cases[i].field, "type") == 0) {
            s[3] = '.';
            msg.type = s;
        } else if (strcmp(cases[i].field, "producer") == 0) {
            msg.producer = s;
        } else if (strcmp(cases[i].field, "trace") == 0) {
            msg.trace = s;
        } else {
            msg.payload.data = (uint8_t *)s;
            msg.payload.len = cases[i].len;
        }
        buf = pack(&msg, &len);
        assert_int_equal(saga_event_decode(buf, len, &ev, &owner, err, sizeof(err)), cases[i].want);
        assert_int_equal(strncmp(err, cases[i].err, strlen(cases[i].err)), 0);
        assert_null(owner);
        free(buf);

        /* One byte shorter is within the cap. */
        if (strcmp(cases[i].field, "payload") == 0)
            msg.payload.len--;
        else
            s[cases[i].len - 1] = '\0';
        buf = pack(&msg, &len);
        assert_int_equal(saga_event_decode(buf, len, &ev, &owner, err, sizeof(err)), SAGA_OK);
        free(owner);
        owner = NULL;
        free(buf);
    }
}

static void decode_rejects_envelope_over_cap(void **state)
{
    size_t len = SAGA_ENVELOPE_MAX + 1;
    uint8_t *buf = calloc(1, len);
    saga_event ev;
    void *owner = NULL;
    char err[128] = "";
    (void)state;

    assert_non_null(buf);
    /* Checked by size before any parsing: the content does not matter. */
    assert_int_equal(saga_event_decode(buf, len, &ev, &owner, err, sizeof(err)), SAGA_ETOOBIG);
    assert_non_null(strstr(err, "exceeds cap"));
    assert_null(owner);
    free(buf);
}

static void decode_rejects_empty(void **state)
{
    const uint8_t one = 0;
    saga_event ev;
    void *owner = (void *)&ev;
    char err[64] = "";
    (void)state;

    assert_int_equal(saga_event_decode(&one, 0, &ev, &owner, err, sizeof(err)), SAGA_EDECODE);
    assert_string_equal(err, "empty message");
    assert_null(owner);
    assert_int_equal(saga_event_decode(NULL, 0, &ev, &owner, err, sizeof(err)), SAGA_EDECODE);
    assert_int_equal(saga_event_decode(NULL, 5, &ev, &owner, err, sizeof(err)), SAGA_EINVAL);
    assert_int_equal(saga_event_decode(&one, 1, NULL, &owner, err, sizeof(err)), SAGA_EINVAL);
    assert_int_equal(saga_event_decode(&one, 1, &ev, NULL, err, sizeof(err)), SAGA_EINVAL);
    /* A lone zero byte is not protobuf (field number 0). */
    assert_int_equal(saga_event_decode(&one, 1, &ev, &owner, err, sizeof(err)), SAGA_EDECODE);
    assert_string_equal(err, "not a saga.v1.Envelope");
}

/* Whatever decode accepts must be an event every validator agrees with. */
static void check_decoded(saga_status st, const saga_event *ev, void *owner)
{
    if (st != SAGA_OK) {
        assert_null(owner);
        return;
    }
    assert_true(saga_valid_ulid(ev->event_id));
    assert_true(saga_valid_type(ev->type));
    assert_true(saga_valid_order_id(ev->order_id));
    assert_true(saga_valid_producer(ev->producer));
    assert_true(ev->causation_id[0] == '\0' || saga_valid_ulid(ev->causation_id));
    assert_true(ev->sequence >= 1);
    assert_true(ev->schema_version >= 1);
    assert_true(ev->time_ms > 0);
    assert_true(ev->payload_len <= SAGA_PAYLOAD_MAX);
    assert_true(ev->payload_len == 0 ? owner == NULL : owner == ev->payload);
    free(owner);
}

static void decode_survives_garbage(void **state)
{
    uint8_t payload[300], *enc = NULL, *buf;
    saga_event in, ev;
    size_t enc_len = 0, i, cut, bit;
    char err[128];
    void *owner;
    saga_status st;
    (void)state;

    for (i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)rng();
    fill_event(&in, payload, sizeof(payload));
    assert_int_equal(saga_event_encode(&in, &enc, &enc_len), SAGA_OK);
    buf = malloc(enc_len + 600);
    assert_non_null(buf);

    /* Random buffers, some starting like a real envelope. */
    for (i = 0; i < 5000; i++) {
        size_t n = (size_t)(rng() % 600), j;
        for (j = 0; j < n; j++)
            buf[j] = (uint8_t)rng();
        if (i % 2 == 0 && n > 40)
            memcpy(buf, enc, 40);
        owner = NULL;
        st = saga_event_decode(buf, n, &ev, &owner, err, sizeof(err));
        assert_int_not_equal(st, SAGA_OK);
        check_decoded(st, &ev, owner);
    }

    /* Every truncation. The payload is the last field on the wire (a 1-byte
     * tag and a 2-byte length before its 300 bytes), so a cut after its tag
     * leaves a length that runs past the end and must fail; a cut at a field
     * boundary may decode, but only to a valid event. */
    for (cut = 0; cut < enc_len; cut++) {
        memcpy(buf, enc, cut);
        owner = NULL;
        st = saga_event_decode(buf, cut, &ev, &owner, err, sizeof(err));
        if (cut > enc_len - sizeof(payload) - 3)
            assert_int_equal(st, SAGA_EDECODE);
        check_decoded(st, &ev, owner);
    }

    /* Every single-bit flip, then random multi-byte corruption. */
    for (bit = 0; bit < enc_len * 8; bit++) {
        memcpy(buf, enc, enc_len);
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        owner = NULL;
        st = saga_event_decode(buf, enc_len, &ev, &owner, err, sizeof(err));
        check_decoded(st, &ev, owner);
    }
    for (i = 0; i < 3000; i++) {
        size_t k;
        memcpy(buf, enc, enc_len);
        for (k = 0; k < 1 + rng() % 8; k++)
            buf[rng() % enc_len] = (uint8_t)rng();
        owner = NULL;
        st = saga_event_decode(buf, enc_len, &ev, &owner, err, sizeof(err));
        check_decoded(st, &ev, owner);
    }
    free(buf);
    free(enc);
}

/* Schema evolution: a newer producer adds fields an older reader skips. */
static void decode_ignores_unknown_fields(void **state)
{
    const uint8_t extra[] = {
        0x98, 0x06, 0x2a,                  /* field 99, varint: 42 */
        0xa2, 0x06, 0x03, 'n',  'e',  'w', /* field 100, bytes: "new" */
        0xad, 0x06, 0x01, 0x02, 0x03, 0x04 /* field 101, fixed32 */
    };
    const uint8_t payload[] = "payload";
    uint8_t *enc = NULL, *buf;
    size_t enc_len = 0;
    saga_event in, out;
    void *owner = NULL;
    char err[128] = "";
    (void)state;

    fill_event(&in, payload, sizeof(payload));
    assert_int_equal(saga_event_encode(&in, &enc, &enc_len), SAGA_OK);
    buf = malloc(enc_len + sizeof(extra));
    assert_non_null(buf);
    memcpy(buf, enc, enc_len);
    memcpy(buf + enc_len, extra, sizeof(extra));
    assert_int_equal(
        saga_event_decode(buf, enc_len + sizeof(extra), &out, &owner, err, sizeof(err)), SAGA_OK);
    assert_same_event(&in, &out);
    free(owner);

    /* Unknown fields before the known ones are skipped just the same. */
    memcpy(buf, extra, sizeof(extra));
    memcpy(buf + sizeof(extra), enc, enc_len);
    owner = NULL;
    assert_int_equal(
        saga_event_decode(buf, enc_len + sizeof(extra), &out, &owner, err, sizeof(err)), SAGA_OK);
    assert_same_event(&in, &out);
    free(owner);
    free(buf);
    free(enc);
}

/* ---- ULIDs --------------------------------------------------------------- */

#define NIDS 100000

static void ulid_monotonic_and_unique(void **state)
{
    char(*ids)[SAGA_ID_LEN + 1] = malloc(NIDS * sizeof(*ids));
    int64_t before, after;
    size_t i, same_ms = 0;
    (void)state;

    assert_non_null(ids);
    before = wall_ms();
    for (i = 0; i < NIDS; i++)
        saga_ulid_new(ids[i]);
    after = wall_ms();
    for (i = 0; i < NIDS; i++) {
        int64_t t = saga_ulid_time_ms(ids[i]);
        assert_true(saga_valid_ulid(ids[i]));
        assert_in_range(t, before, after);
        if (i > 0) {
            /* Strictly increasing implies unique. */
            assert_true(strcmp(ids[i - 1], ids[i]) < 0);
            if (memcmp(ids[i - 1], ids[i], 10) == 0)
                same_ms++;
        }
    }
    /* 100k ids take far less than 100k ms, so many shared a millisecond and
     * the ordering above covered the increment path. */
    assert_true(same_ms > 0);
    free(ids);
}

#define NTHREADS 4
#define PER_THREAD 20000

static char thread_ids[NTHREADS * PER_THREAD][SAGA_ID_LEN + 1];

static void *make_ids(void *arg)
{
    size_t base = (size_t)(uintptr_t)arg * PER_THREAD, i;
    for (i = 0; i < PER_THREAD; i++)
        saga_ulid_new(thread_ids[base + i]);
    return NULL;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void ulid_unique_across_threads(void **state)
{
    pthread_t th[NTHREADS];
    size_t t, i;
    (void)state;

    for (t = 0; t < NTHREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, make_ids, (void *)(uintptr_t)t), 0);
    for (t = 0; t < NTHREADS; t++)
        assert_int_equal(pthread_join(th[t], NULL), 0);
    /* Each thread sees its own ids in order... */
    for (t = 0; t < NTHREADS; t++) {
        for (i = 1; i < PER_THREAD; i++)
            assert_true(strcmp(thread_ids[t * PER_THREAD + i - 1], thread_ids[t * PER_THREAD + i]) <
                        0);
    }
    /* ...and no id was handed to two threads. */
    qsort(thread_ids, NTHREADS * PER_THREAD, sizeof(thread_ids[0]), cmp_id);
    for (i = 1; i < NTHREADS * PER_THREAD; i++)
        assert_true(strcmp(thread_ids[i - 1], thread_ids[i]) < 0);
}

static void ulid_time_ms_decodes(void **state)
{
    (void)state;
    /* The reference vector of the ULID specification's implementations. */
    assert_int_equal(saga_ulid_time_ms(ID_A), INT64_C(1469918176385));
    assert_int_equal(saga_ulid_time_ms(ID_B), INT64_C(1469922850259));
    assert_int_equal(saga_ulid_time_ms("00000000000000000000000000"), 0);
    assert_int_equal(saga_ulid_time_ms("7ZZZZZZZZZZZZZZZZZZZZZZZZZ"), (INT64_C(1) << 48) - 1);
    assert_int_equal(saga_ulid_time_ms("8ZZZZZZZZZZZZZZZZZZZZZZZZZ"), -1);
    assert_int_equal(saga_ulid_time_ms(""), -1);
    assert_int_equal(saga_ulid_time_ms(NULL), -1);
}

static void ulid_validation(void **state)
{
    (void)state;
    assert_true(saga_valid_ulid(ID_A));
    assert_true(saga_valid_ulid("7ZZZZZZZZZZZZZZZZZZZZZZZZZ"));
    assert_false(saga_valid_ulid("8ZZZZZZZZZZZZZZZZZZZZZZZZZ"));
    assert_false(saga_valid_ulid("01arz3ndektsv4rrffq69g5fav"));  /* lower case */
    assert_false(saga_valid_ulid("01ARZ3NDEKTSV4RRFFQ69G5FA"));   /* 25 */
    assert_false(saga_valid_ulid("01ARZ3NDEKTSV4RRFFQ69G5FAVX")); /* 27 */
    assert_false(saga_valid_ulid("01ARZ3NDEKTSV4RRFFQ69G5FAI"));  /* I is not Crockford */
    assert_false(saga_valid_ulid("01ARZ3NDEKTSV4RRFFQ69G5FAL"));
    assert_false(saga_valid_ulid("01ARZ3NDEKTSV4RRFFQ69G5FAO"));
    assert_false(saga_valid_ulid("01ARZ3NDEKTSV4RRFFQ69G5FAU"));
    assert_false(saga_valid_ulid("01ARZ3NDEKTSV4RRFF 69G5FAV"));
    assert_false(saga_valid_ulid(""));
    assert_false(saga_valid_ulid(NULL));
}

static void identifier_validation(void **state)
{
    char s[SAGA_TYPE_MAX + 2];
    (void)state;

    assert_true(saga_valid_order_id("A-z_09"));
    assert_true(saga_valid_order_id(repeat('x', SAGA_ORDER_ID_MAX)));
    assert_false(saga_valid_order_id(repeat('x', SAGA_ORDER_ID_MAX + 1)));
    assert_false(saga_valid_order_id(""));
    assert_false(saga_valid_order_id("a*b"));
    assert_false(saga_valid_order_id(NULL));

    assert_true(saga_valid_type("order.placed"));
    assert_true(saga_valid_type("a_1.b_2"));
    memcpy(s, repeat('a', SAGA_TYPE_MAX), SAGA_TYPE_MAX + 1);
    s[10] = '.';
    assert_true(saga_valid_type(s));
    memcpy(s, repeat('a', SAGA_TYPE_MAX + 1), SAGA_TYPE_MAX + 2);
    s[10] = '.';
    assert_false(saga_valid_type(s));
    assert_false(saga_valid_type("order-x.placed"));
    assert_false(saga_valid_type("order..placed"));
    assert_false(saga_valid_type("."));
    assert_false(saga_valid_type(NULL));

    assert_true(saga_valid_producer("fraud_screen_2"));
    /* The part of a type before its dot: no '-', no '.'. */
    assert_false(saga_valid_producer("fraud-screen"));
    assert_false(saga_valid_producer("kyc.check"));
    assert_true(saga_valid_producer(repeat('p', SAGA_PRODUCER_MAX)));
    assert_false(saga_valid_producer(repeat('p', SAGA_PRODUCER_MAX + 1)));
    assert_false(saga_valid_producer(""));
    assert_false(saga_valid_producer("Pay"));
    assert_false(saga_valid_producer("pay ment"));
    assert_false(saga_valid_producer(NULL));
}

/* ---- subjects ------------------------------------------------------------ */

/* Partitions: FNV-1a 32 modulo SAGA_PARTITIONS, the same in any language;
 * every partition is used; the order id is not in the subject. */
static void partitions(void **state)
{
    int seen[SAGA_PARTITIONS] = {0};
    char id[32];
    (void)state;
    assert_int_equal(saga_partition_of("ord-1"), 2);
    assert_int_equal(saga_partition_of("fp2"), 11);
    assert_int_equal(saga_partition_of(""), 2166136261u % SAGA_PARTITIONS);
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof(id), "order-%d", i);
        unsigned p = saga_partition_of(id);
        assert_true(p < SAGA_PARTITIONS);
        seen[p]++;
    }
    for (int i = 0; i < SAGA_PARTITIONS; i++)
        assert_true(seen[i] > 1000 / SAGA_PARTITIONS / 3);
}

/* Durable names as docs/protocol.md spells them, and never cut short. */
static void durable_names(void **state)
{
    char out[32];
    (void)state;
    assert_int_equal(saga_durable_name(out, sizeof(out), "order", "*.vetoed"), SAGA_OK);
    assert_string_equal(out, "order_any_vetoed");
    assert_int_equal(saga_durable_name(out, sizeof(out), "shipping", "payment.charged"), SAGA_OK);
    assert_string_equal(out, "shipping_payment_charged");
    assert_int_equal(saga_durable_name(out, strlen("order_any_vetoed") + 1, "order", "*.vetoed"),
                     SAGA_OK);
    assert_int_equal(saga_durable_name(out, strlen("order_any_vetoed"), "order", "*.vetoed"),
                     SAGA_ETOOBIG);
    assert_string_equal(out, "");
    assert_int_equal(saga_durable_name(out, 4, "order", "*.vetoed"), SAGA_ETOOBIG);
    assert_string_equal(out, "");
}

static void subject_building(void **state)
{
    /* "ord-1" is in partition 2: FNV-1a 32 of its bytes is 0xa3a081b2, mod 16
     * (computed independently, as a participant in another language would). */
    const char *want = "evt.2.payment.charged";
    char out[64], big[4 + 2 + 1 + SAGA_TYPE_MAX + 1];
    char type[SAGA_TYPE_MAX + 1], order[SAGA_ORDER_ID_MAX + 1];
    (void)state;

    assert_int_equal(saga_event_subject("payment.charged", "ord-1", out, sizeof(out)), SAGA_OK);
    assert_string_equal(out, want);
    /* Exactly enough room for the NUL. */
    assert_int_equal(saga_event_subject("payment.charged", "ord-1", out, strlen(want) + 1),
                     SAGA_OK);
    assert_string_equal(out, want);
    /* One byte short: refused, and no truncated subject left behind. */
    assert_int_equal(saga_event_subject("payment.charged", "ord-1", out, strlen(want)),
                     SAGA_ETOOBIG);
    assert_string_equal(out, "");
    assert_int_equal(saga_event_subject("payment.charged", "ord-1", out, 0), SAGA_ETOOBIG);

    /* The longest type and order id still fit a buffer sized from the caps. */
    memcpy(type, repeat('t', SAGA_TYPE_MAX), sizeof(type));
    type[1] = '.';
    memcpy(order, repeat('o', SAGA_ORDER_ID_MAX), sizeof(order));
    assert_int_equal(saga_event_subject(type, order, big, sizeof(big)), SAGA_OK);
    assert_true(strlen(big) < sizeof(big));

    /* Wildcards or separators would publish somewhere else. */
    assert_int_equal(saga_event_subject("payment.*", "ord-1", out, sizeof(out)), SAGA_EINVAL);
    assert_int_equal(saga_event_subject("payment.charged", ">", out, sizeof(out)), SAGA_EINVAL);
    assert_int_equal(saga_event_subject("payment.charged", "a.b", out, sizeof(out)), SAGA_EINVAL);
    assert_int_equal(saga_event_subject(NULL, "ord-1", out, sizeof(out)), SAGA_EINVAL);
    assert_int_equal(saga_event_subject("payment.charged", "ord-1", NULL, 10), SAGA_EINVAL);
}

/* The W3C recommendation's own example parses; every rule it states refuses
 * what breaks it (the runtime then starts a new trace instead). */
static void traceparent_parsing(void **state)
{
    static const char *const accepted[] = {
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        /* A later version may append fields; version 00 may not. */
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
    };
    static const char *const refused[] = {
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        /* Upper case, zero ids, wrong separators, short, empty. */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        "",
    };
    saga_traceparent tp;
    (void)state;
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        if (saga_traceparent_parse(refused[i], &tp))
            fail_msg("accepted %s", refused[i]);
    assert_false(saga_traceparent_parse(NULL, &tp));
    for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++)
        if (!saga_traceparent_parse(accepted[i], &tp))
            fail_msg("refused %s", accepted[i]);
    assert_true(saga_traceparent_parse(accepted[0], &tp));
    assert_string_equal(tp.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(tp.span_id, "00f067aa0ba902b7");
    assert_string_equal(tp.flags, "01");
    assert_true(saga_traceparent_parse(accepted[1], &tp));
    assert_string_equal(tp.flags, "00");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_keeps_every_field),
        cmocka_unit_test(round_trip_empty_optionals),
        cmocka_unit_test(round_trip_largest_payload),
        cmocka_unit_test(encode_rejects_invalid_fields),
        cmocka_unit_test(encode_rejects_oversized),
        cmocka_unit_test(decode_accepts_hand_made_valid),
        cmocka_unit_test(decode_rejects_each_invalid_field),
        cmocka_unit_test(decode_rejects_overlong_fields),
        cmocka_unit_test(decode_rejects_envelope_over_cap),
        cmocka_unit_test(decode_rejects_empty),
        cmocka_unit_test(decode_survives_garbage),
        cmocka_unit_test(decode_ignores_unknown_fields),
        cmocka_unit_test(ulid_monotonic_and_unique),
        cmocka_unit_test(ulid_unique_across_threads),
        cmocka_unit_test(ulid_time_ms_decodes),
        cmocka_unit_test(ulid_validation),
        cmocka_unit_test(identifier_validation),
        cmocka_unit_test(partitions),
        cmocka_unit_test(subject_building),
        cmocka_unit_test(durable_names),
        cmocka_unit_test(traceparent_parsing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
