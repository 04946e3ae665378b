/* ctl.h - Shared declarations of sagactl, the operator's command-line client of a fleet:
 * exit codes, the NATS connection, growable text buffers, JSON helpers, the
 * stream reader, event summaries and the entry point of every subcommand. */
#ifndef SAGACTL_CTL_H
#define SAGACTL_CTL_H

#include <nats/nats.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "saga/event.h"

#define CTL_VERSION "0.1.0"

/* Exit codes, the same for every subcommand (documented in --help). */
enum {
    CTL_EXIT_OK = 0,
    CTL_EXIT_FAIL = 1,        /* refused, not found, violation, timeout */
    CTL_EXIT_USAGE = 2,       /* bad arguments */
    CTL_EXIT_UNREACHABLE = 3, /* NATS or a needed service does not answer */
};

#define CTL_DEFAULT_URL "nats://127.0.0.1:4222"
#define CTL_CONNECT_TIMEOUT_MS 2000 /* a missing server must fail fast */
#define CTL_COMMAND_TIMEOUT_MS 3000 /* per attempt of a command request */
#define CTL_COMMAND_ATTEMPTS 3
#define CTL_QUERY_TIMEOUT_MS 1000 /* a service slower than this shows as unavailable */
#define CTL_POLL_MS 200           /* polling period of --wait loops */
#define CTL_STREAM "SAGA_EVENTS"
#define CTL_DLQ_STREAM "SAGA_DLQ"
#define CTL_NSERVICES 5

/* The five services of the order saga, in the order of the saga. */
extern const char *const ctl_services[CTL_NSERVICES];

/* The index of name in ctl_services, or -1. */
int ctl_service_index(const char *name);
/* Prints "sagactl CMD: unknown service 'NAME': want one of order, payment, ..."
 * and returns CTL_EXIT_USAGE. */
int ctl_unknown_service(const char *cmd, const char *name);

/* ---- util.c: time, numbers, messages, buffers ---------------------------------- */

int64_t ctl_now_ms(void);
void ctl_sleep_ms(int64_t ms);

/* Parses a whole decimal integer in [min, max]. 0 on success, -1 otherwise. */
int ctl_parse_ll(const char *s, long long min, long long max, long long *out);

/* Prints "sagactl CMD: message" on stderr. */
void ctl_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A growable NUL-terminated text buffer. Appends never fail visibly: on
 * out-of-memory the buffer sets oom and ignores further appends, so callers
 * check once at the end (ctl_buf_ok) instead of after every append. */
typedef struct ctl_buf {
    char *data; /* always NUL-terminated when not NULL */
    size_t len, cap;
    int oom;
} ctl_buf;

void ctl_buf_init(ctl_buf *b);
void ctl_buf_cleanup(ctl_buf *b);
void ctl_buf_reset(ctl_buf *b);
void ctl_buf_add(ctl_buf *b, const char *data, size_t len);
void ctl_buf_puts(ctl_buf *b, const char *s);
void ctl_buf_printf(ctl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The text, never NULL (an empty string when nothing was added). */
const char *ctl_buf_str(const ctl_buf *b);
int ctl_buf_ok(const ctl_buf *b);

/* Formats cents as "1234.56" (with a sign when negative) into out. */
void ctl_money(int64_t cents, char *out, size_t outlen);

/* ---- json.c: output helpers and a tiny extractor for service replies ---------- */

/* Appends s as a quoted, escaped JSON string ("null" when s is NULL). */
void ctl_json_str(ctl_buf *b, const char *s);
/* Appends "key": (with a leading comma unless first). */
void ctl_json_key(ctl_buf *b, int first, const char *key);
/* Appends text if it looks like one JSON object, else the text as a JSON string. */
void ctl_json_raw_object(ctl_buf *b, const char *text);

/* Extractors: find the first "key": in json and read its value. They return 0
 * when found with the right type, -1 otherwise. Good enough for the flat
 * objects the services answer with; not a general parser. */
int ctl_json_get_str(const char *json, const char *key, char *out, size_t outlen);
int ctl_json_get_ll(const char *json, const char *key, long long *out);
int ctl_json_get_bool(const char *json, const char *key, int *out);

/* Appends the top-level members of a JSON object as "key=value" pairs separated
 * by spaces, skipping the keys in skip (NULL-terminated, may be NULL) and
 * empty strings. Nested values are copied as they are. */
void ctl_json_flatten(ctl_buf *b, const char *json, const char *const *skip);

/* Finds the first "key": in json (as ctl_json_get_str) and points *value at
 * its raw JSON text, *len bytes long (an object stays an object). 0 or -1. */
int ctl_json_get_raw(const char *json, const char *key, const char **value, size_t *len);

/* One top-level member of a JSON object, pointing into the object's text:
 * the key without its quotes (escapes left as they are), the value raw. */
typedef struct ctl_json_member {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
} ctl_json_member;

/* Walks the members of the object json in order: set *cursor to NULL before
 * the first call. Returns 1 with *m filled, 0 after the last member, -1 when
 * the text is not a well-formed object (members before the fault were given). */
int ctl_json_next(const char *json, const char **cursor, ctl_json_member *m);
/* 1 when the member's key, or its raw value text, is exactly the given text. */
int ctl_json_key_is(const ctl_json_member *m, const char *key);
int ctl_json_value_is(const ctl_json_member *m, const char *text);
/* Appends "key=value", the value unquoted when it is a string without
 * spaces or escapes (the form ctl_json_flatten prints). */
void ctl_json_add_pair(ctl_buf *b, const ctl_json_member *m);

/* ---- main.c: the connection ---------------------------------------------------- */

typedef struct ctl_conn {
    const char *url;
    natsConnection *nc;
    jsCtx *js;
} ctl_conn;

/* Connects to url, retrying until wait_ms have passed (0: one attempt).
 * reconnect != 0 keeps the connection across server restarts (watch). On
 * failure prints "cannot reach NATS at URL: ..." for cmd and returns
 * CTL_EXIT_UNREACHABLE; the connection needs no cleanup then. */
int ctl_connect(ctl_conn *c, const char *cmd, const char *url, int64_t wait_ms, int reconnect);
/* Closes and frees the connection. Accepts one that never connected. */
void ctl_disconnect(ctl_conn *c);

/* Request/reply with a timeout. *reply is set on NATS_OK; the caller
 * destroys it. Returns the cnats status (NATS_TIMEOUT, NATS_NO_RESPONDERS...). */
natsStatus ctl_request(ctl_conn *c, const char *subject, const void *data, size_t len,
                       int64_t timeout_ms, natsMsg **reply);

/* ---- discover.c: who is in the fleet (saga.discover) -------------------------- */

/* One participant instance's answer. json is its whole answer (jansson),
 * owned by the list. */
typedef struct ctl_participant {
    char name[SAGA_PRODUCER_MAX + 1];
    char instance[300];
    struct json_t *json;
} ctl_participant;

/* Asks every participant at once and gathers the answers (sorted: the saga's
 * five first, then the rest by name) into *out, freed with
 * ctl_participants_free. Waits up to timeout_ms for the first answer, then
 * a short quiet period for the rest. 0 on success (also with no answer),
 * -1 if the request could not be sent. */
int ctl_discover(ctl_conn *c, int64_t timeout_ms, ctl_participant **out, size_t *n);
void ctl_participants_free(ctl_participant *v, size_t n);
/* 1 if the participant serves subject (a command, query or control subject). */
int ctl_participant_serves(const ctl_participant *p, const char *subject);

/* ---- map.c: string-keyed hash map, iterated in insertion order ------------------ */

typedef struct ctl_map ctl_map;

/* Creates a map whose values are zero-initialised blocks of value_size bytes.
 * *out is set only on success; free with ctl_map_destroy (accepts NULL). */
int ctl_map_create(ctl_map **out, size_t value_size);
void ctl_map_destroy(ctl_map *m);
/* Returns the value for key, adding a zeroed one if absent (*created says
 * which; may be NULL). NULL only when out of memory. Valid until destroy. */
void *ctl_map_upsert(ctl_map *m, const char *key, int *created);
/* Returns the value for key or NULL. */
void *ctl_map_get(const ctl_map *m, const char *key);
size_t ctl_map_count(const ctl_map *m);
/* The i-th entry in insertion order, i < count; *key is set when not NULL. */
void *ctl_map_at(const ctl_map *m, size_t i, const char **key);

/* ---- events.c: what an event means to a person ------------------------------------ */

typedef enum ctl_mark {
    CTL_MARK_NONE,
    CTL_MARK_COMPENSATION, /* payment.refunded, inventory.released, shipping.cancelled */
    CTL_MARK_FAILURE,      /* declined, rejected, failed, vetoed, order.cancelled */
    CTL_MARK_LATE_VETO,    /* order.veto_ignored: a veto after the order was confirmed */
} ctl_mark;

ctl_mark ctl_event_mark(const char *type);
/* "COMPENSATION", "FAILURE" or "" */
const char *ctl_mark_label(ctl_mark m);
/* 1 when ev's type is one of the saga's (schemas/events.proto, or an
 * extension's "<name>.vetoed"/"<name>.cleared") and its payload decodes as
 * that type's message; an order.placed must also list at least one line. */
int ctl_event_well_formed(const saga_event *ev);
/* Appends a one-line summary of the event's payload (amounts, skus, reasons). */
void ctl_event_summary(ctl_buf *b, const saga_event *ev);
/* Appends the whole envelope and the decoded payload as one JSON object.
 * stream_seq 0 (not read from the stream) and offset_ms NULL print as null. */
void ctl_event_json(ctl_buf *b, const saga_event *ev, uint64_t stream_seq,
                    const int64_t *offset_ms);

/* ---- stream.c: reading SAGA_EVENTS from the start ------------------------------- */

/* Counts the messages of stream on subjects matching filter (NULL: all).
 * *missing says the stream does not exist yet (*n is 0 then). Returns
 * CTL_EXIT_OK or an exit code after printing the reason for cmd. */
int ctl_stream_count(ctl_conn *c, const char *cmd, const char *stream, const char *filter,
                     uint64_t *n, int *missing);

/* Called for every event of the saga; stream_seq is its sequence in the
 * stream, stored_ms when the broker stored it (not the time the envelope
 * claims). Return 0 to go on, 1 to stop the read early, -1 to fail it
 * (after printing why, e.g. out of memory). */
typedef int (*ctl_stream_fn)(const saga_event *ev, uint64_t stream_seq, int64_t stored_ms,
                             void *udata);

typedef struct ctl_stream_result {
    uint64_t messages; /* messages read */
    /* Messages that are not events of the saga (skipped): the envelope does
     * not decode, the subject is not evt.<its type>.<its order id>, or the
     * payload is not well formed for its type (ctl_event_well_formed). */
    uint64_t undecodable;
    int stream_missing; /* the stream does not exist yet */
} ctl_stream_result;

/* Called for every message read; time_ns is when the stream stored it.
 * Same returns as ctl_stream_fn. The message is destroyed after the call. */
typedef int (*ctl_msg_fn)(natsMsg *m, uint64_t stream_seq, int64_t time_ns, void *udata);

/* Reads every message of stream on subjects matching filter, oldest first,
 * until none is pending; see ctl_stream_read. */
int ctl_stream_read_msgs(ctl_conn *c, const char *cmd, const char *stream, const char *filter,
                         int progress, ctl_msg_fn fn, void *udata, ctl_stream_result *res);

/* Reads every message of SAGA_EVENTS on subjects matching filter, oldest
 * first, with an ordered consumer, until none is pending. progress != 0
 * prints a line on stderr every 10,000 messages. Returns CTL_EXIT_OK or an
 * exit code after printing the reason for cmd. */
int ctl_stream_read(ctl_conn *c, const char *cmd, const char *filter, int progress,
                    ctl_stream_fn fn, void *udata, ctl_stream_result *res);

/* ---- query.c: asking the services ----------------------------------------------- */

/* Asks saga.ctl.<svc>.stats. On success *json is a malloc'd copy of the reply
 * (the caller frees it) and 0 is returned; -1 when the service does not answer
 * within timeout_ms. */
int ctl_service_stats(ctl_conn *c, const char *svc, int64_t timeout_ms, char **json);

/* Copies a reply's payload as a NUL-terminated string (capped at 64 KiB).
 * The caller frees it; NULL when out of memory. */
char *ctl_reply_copy(natsMsg *m);

/* Asks saga.<ns>.<svc>.<what> (e.g. "q", "order" or "ctl", "stats") of all
 * five services at once with payload, and waits up to CTL_QUERY_TIMEOUT_MS.
 * replies[i] is a malloc'd reply of ctl_services[i], or NULL for a service
 * that did not answer. The caller frees each. Returns 0, or -1 when the
 * requests could not be sent (every replies[i] is NULL then). */
int ctl_ask_all(ctl_conn *c, const char *ns, const char *what, const char *payload,
                char *replies[CTL_NSERVICES]);

/* ctl_ask_all for saga.q.<svc>.order: one order's view in every service. */
int ctl_query_order(ctl_conn *c, const char *order_id, char *replies[CTL_NSERVICES]);

/* ---- dlq.c: what a dead letter's reason says --------------------------------------- */

typedef enum ctl_dlq_cause {
    CTL_DLQ_POISONED, /* undecodable, or rejected by a handler: set aside on purpose */
    CTL_DLQ_FAILED,   /* retries exhausted, a parked event expired, or unpublishable */
    CTL_DLQ_OTHER,    /* any other reason the runtime gave */
} ctl_dlq_cause;

/* Classifies a dead letter by its Saga-Cause header (cause, may be NULL):
 * deliberate causes (saga_dlq_cause_deliberate) are POISONED, the others
 * FAILED. Without a known cause (dead letters older than the header), by
 * its Saga-Reason as the runtime wrote it (loop.c). */
ctl_dlq_cause ctl_dlq_classify(const char *cause, const char *reason);

/* ---- subcommands: argv[0] is the subcommand's name; url the global --url --------- */

int ctl_cmd_place(const char *url, int argc, char **argv);
int ctl_cmd_cancel(const char *url, int argc, char **argv);
int ctl_cmd_stock(const char *url, int argc, char **argv);
int ctl_cmd_get(const char *url, int argc, char **argv);
int ctl_cmd_svcstats(const char *url, int argc, char **argv);
int ctl_cmd_participants(const char *url, int argc, char **argv);
int ctl_cmd_ready(const char *url, int argc, char **argv);
int ctl_cmd_ping(const char *url, int argc, char **argv);
int ctl_cmd_trace(const char *url, int argc, char **argv);
int ctl_cmd_watch(const char *url, int argc, char **argv);
int ctl_cmd_stats(const char *url, int argc, char **argv);
int ctl_cmd_audit(const char *url, int argc, char **argv);
int ctl_cmd_faults(const char *url, int argc, char **argv);
int ctl_cmd_inject(const char *url, int argc, char **argv);
int ctl_cmd_dlq(const char *url, int argc, char **argv);

/* Reports an option getopt_long refused: ret is what it returned (':' for a
 * missing value, '?' for an unknown option). Returns CTL_EXIT_USAGE. */
int ctl_bad_option(const char *cmd, char **argv, int optind_now, int optopt_now, int ret);

#endif
