/* ctl.h - Shared declarations of sagactl, the operator's command-line client of a fleet:
 * exit codes, the NATS connection, growable text buffers, JSON helpers, the
 * stream reader, event summaries and the entry point of every subcommand. */
#ifndef SAGACTL_CTL_H
#define SAGACTL_CTL_H

#include <jansson.h>
#include <nats/nats.h>
#include <protobuf-c/protobuf-c.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "saga/event.h"

/* Where sagactl and the gateway look for the fleet's files when SAGA_HOME is not
 * set: deploy/fleet's default home (CMake passes it). */
#ifndef SAGACTL_FLEET_HOME
#define SAGACTL_FLEET_HOME "var"
#endif

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
/* At exit, cnats' threads end within this: nats_Close alone returns at once and lets
 * them free their memory while the process exits, half-freed objects a leak checker
 * reports. */
#define CTL_CLOSE_WAIT_MS 5000
#define CTL_STREAM "SAGA_EVENTS"
#define CTL_DLQ_STREAM "SAGA_DLQ"

/* ---- util.c: time, numbers, messages, buffers ---------------------------------- */

int64_t ctl_now_ms(void);
void ctl_sleep_ms(int64_t ms);

/* Parses a whole decimal integer in [min, max]. 0 on success, -1 otherwise. */
int ctl_parse_ll(const char *s, long long min, long long max, long long *out);

/* Prints "PROGRAM CMD: message" on stderr (PROGRAM: sagactl unless set), or,
 * while the calling thread captures messages, keeps it in the capture buffer
 * instead (replacing what it held). */
void ctl_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Names the executable in messages and in its NATS connection's name. Call
 * once, before any thread starts; name must outlive the process. */
void ctl_set_program(const char *name);
const char *ctl_program(void);
struct ctl_buf;
/* From now on the calling thread's ctl_err messages go into b (NULL: to
 * stderr again). saga-gateway answers a request with them. */
void ctl_err_capture(struct ctl_buf *b);

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

/* Prints b on stdout for cmd: CTL_EXIT_OK, or CTL_EXIT_FAIL after saying
 * "out of memory" when an append failed. */
int ctl_print(const char *cmd, const ctl_buf *b);

/* An option a command takes besides --help: --name with a value, stored in *text,
 * or, when text is NULL, a flag: *flag = 1 when given. */
typedef struct ctl_option {
    const char *name;
    const char **text;
    int *flag;
} ctl_option;
#define CTL_OPTIONS_MAX 16

/* Parses argv's options: the n (at most CTL_OPTIONS_MAX) of opts and --help, which
 * prints help. CTL_EXIT_OK with the operands at argv[optind..argc), -1 when --help
 * was printed (exit 0), or CTL_EXIT_USAGE after saying which option was wrong. */
int ctl_parse_options(const char *cmd, const char *help, int argc, char **argv,
                      const ctl_option *opts, size_t n);

/* Parses the options most commands share: --json (when json is not NULL),
 * --wait SECONDS (when wait_s is not NULL), --url, --help. On CTL_EXIT_OK
 * the operands are argv[optind..argc). Returns -1 when --help was printed
 * (exit 0), or an exit code for bad options. */
int ctl_parse_opts(const char *cmd, const char *help, int argc, char **argv, const char **url,
                   int *json, long long *wait_s);

/* ---- json.c: the helpers kept over jansson ------------------------------------- */

/* A new JSON string of s (null when s is NULL); bytes that are not UTF-8
 * become '?'. NULL only when out of memory. The caller owns it. */
json_t *ctl_json_text(const char *s);
/* A participant's reply: the object it holds, or the text as a JSON string
 * when it is not one object. The caller owns it; NULL when out of memory. */
json_t *ctl_json_reply(const char *data, size_t len);
/* Appends j in the format of every --json output (compact). Sets b->oom
 * when j is NULL or cannot be written. */
void ctl_buf_json(ctl_buf *b, const json_t *j);
/* Appends "key=value", the value unquoted when it is a string that needs
 * no quotes (the form ctl_json_flatten prints). */
void ctl_json_add_pair(ctl_buf *b, const char *key, const json_t *v);
/* Appends the members of object j as "key=value" pairs separated by spaces,
 * skipping the keys in skip (NULL-terminated, may be NULL) and empty
 * strings. A string is appended as its text, anything else as JSON. */
void ctl_json_flatten(ctl_buf *b, json_t *j, const char *const *skip);
/* Prints j and a newline for cmd, and releases j (NULL: out of memory).
 * Returns ctl_print's code. */
int ctl_print_json(const char *cmd, json_t *j);

/* ---- stock.c: a SKU's stock split between inventory instances (docs/scaling.md) ---- */

typedef struct ctl_stock {
    long long available, held, committed;
} ctl_stock;

/* The partition sets of n instances started with SAGA_INSTANCE=k/n into
 * sets[0..n), or one set 0 for the only instance (n <= 1). Returns how many. */
size_t ctl_stock_sets(int n, uint32_t sets[SAGA_PARTITIONS]);
/* The subject that reaches the instance owning set: subject itself for the
 * only instance (set 0 or every partition), else routed to its first
 * partition. */
const char *ctl_stock_subject(const char *subject, uint32_t set, char *buf, size_t cap);
/* Sets sku's stock to qty split into shares (qty >= 0), or reads it (qty <
 * 0), on every instance of sets[0..n), and sums the replies into *out.
 * Returns CTL_EXIT_OK, or with err saying which instance failed and why
 * CTL_EXIT_FAIL (it refused), CTL_EXIT_UNREACHABLE (it did not answer) or
 * CTL_EXIT_USAGE (a SKU over 64 characters). */
int ctl_stock_request(natsConnection *nc, const uint32_t *sets, size_t n, const char *sku,
                      long long qty, int64_t timeout_ms, ctl_stock *out, char *err, size_t errlen);
/* Every SKU of every inventory instance of sets[0..n) (saga.q.inventory.stock),
 * figures summed per SKU: {"service", "skus": [{"sku", "available", "held",
 * "committed"}...], "instances"}. NULL, with err saying why, when an instance
 * does not answer with a list. */
json_t *ctl_stock_list(natsConnection *nc, const uint32_t *sets, size_t n, int64_t timeout_ms,
                       char *err, size_t errlen);

/* ---- conn.c: the connection ---------------------------------------------------- */

typedef struct ctl_conn {
    const char *url;
    natsConnection *nc;
    jsCtx *js;
} ctl_conn;

/* Where the fleet's files are: SAGA_HOME, else the repository's var/ as deploy/fleet
 * has it. */
const char *ctl_home(void);

/* Where to connect when no --url says: SAGA_NATS_URL, else the brokers of the fleet
 * in ctl_home() (deploy/fleet up, a cluster's ports included), else
 * CTL_DEFAULT_URL. */
const char *ctl_default_url(void);

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

/* Unsubscribes and frees sub and inbox, the reply subscription of a command
 * that asks several participants at once. Either may be NULL. */
void ctl_inbox_close(natsSubscription *sub, natsInbox *inbox);
/* The next message of sub until deadline (ctl_now_ms time): NATS_TIMEOUT
 * once it has passed, else what natsSubscription_NextMsg says. */
natsStatus ctl_next_msg(natsSubscription *sub, int64_t deadline, natsMsg **m);

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

/* The fleet as a command that asks every participant sees it: who answered
 * discovery, and per name one row. The rows are the saga's five (always, so
 * that a stopped one shows as unavailable) and every other name that serves
 * the subject asked, in ctl_discover's order. */
typedef struct ctl_fleet {
    ctl_participant *p; /* the discovery answers, np of them */
    size_t np;
    size_t n;           /* rows after ctl_fleet_ask */
    const char **names; /* rows' names (pointing into p or at literals) */
    json_t **replies;   /* rows' replies (ctl_json_reply); NULL: no answer */
} ctl_fleet;

/* Discovers the fleet for cmd. Returns CTL_EXIT_OK, or CTL_EXIT_UNREACHABLE
 * after printing why: the request failed, or "no participant answered on
 * saga.discover". Release f with ctl_fleet_cleanup, also on failure. */
int ctl_fleet_discover(ctl_fleet *f, ctl_conn *c, const char *cmd);
/* The partition sets of the instances of svc that answered discovery, in
 * sets[0..*n) (at most cap): {0} for the only instance. -1 with err set when
 * none answered, or when their sets overlap or leave partitions without an
 * owner (an instance is down or a hand-over is under way). */
int ctl_fleet_instances(const ctl_fleet *f, const char *svc, uint32_t *sets, size_t cap, size_t *n,
                        char *err, size_t errlen);
/* Asks the subject fmt(name, what) (SAGA_SUBJ_CTL_FMT or SAGA_SUBJ_QUERY_FMT)
 * of every name that serves it, once per name (a queue group answers once),
 * all at once, waiting up to CTL_QUERY_TIMEOUT_MS, and sets the rows. Earlier
 * rows are released first. 0, or -1 when the requests could not be sent. */
int ctl_fleet_ask(ctl_fleet *f, ctl_conn *c, const char *fmt, const char *what,
                  const char *payload);
/* The row of name, or -1. */
int ctl_fleet_row(const ctl_fleet *f, const char *name);
/* 1 when name answered discovery or is one of the saga's five. */
int ctl_fleet_knows(const ctl_fleet *f, const char *name);
/* Prints "sagactl CMD: unknown participant 'NAME': ..." listing the names
 * that answered discovery, and returns CTL_EXIT_USAGE. */
int ctl_fleet_unknown(const ctl_fleet *f, const char *cmd, const char *name);
void ctl_fleet_cleanup(ctl_fleet *f);

/* Adds an entry for key to the uthash table head (entries of type *out with
 * a UT_hash_handle hh and a trailing char key[]), or finds it: out is the
 * entry, zeroed when new (created then set to 1), NULL when out of memory.
 * The includer defines HASH_NONFATAL_OOM and uthash_nonfatal_oom(e) as
 * (ctl_hash_oom_ = 1) before including uthash.h. */
#define CTL_HASH_UPSERT(head, k, out, created)                                                     \
    do {                                                                                           \
        int ctl_hash_oom_ = 0;                                                                     \
        size_t ctl_klen_ = strlen(k);                                                              \
        (created) = 0;                                                                             \
        HASH_FIND(hh, head, k, ctl_klen_, out);                                                    \
        if ((out) != NULL)                                                                         \
            break;                                                                                 \
        (out) = calloc(1, sizeof(*(out)) + ctl_klen_ + 1);                                         \
        if ((out) == NULL)                                                                         \
            break;                                                                                 \
        memcpy((out)->key, k, ctl_klen_ + 1);                                                      \
        HASH_ADD_KEYPTR(hh, head, (out)->key, ctl_klen_, out);                                     \
        if (ctl_hash_oom_) {                                                                       \
            free(out);                                                                             \
            (out) = NULL;                                                                          \
            break;                                                                                 \
        }                                                                                          \
        (created) = 1;                                                                             \
    } while (0)

/* Frees every entry of the uthash table head (tmp: a spare entry pointer). */
#define CTL_HASH_FREE(head, e, tmp)                                                                \
    do {                                                                                           \
        HASH_ITER(hh, head, e, tmp)                                                                \
        {                                                                                          \
            HASH_DEL(head, e);                                                                     \
            free(e);                                                                               \
        }                                                                                          \
    } while (0)

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
/* The whole envelope and the decoded payload as one JSON object (the caller
 * owns it; NULL when out of memory). stream_seq 0 (not read from the stream)
 * and offset_ms NULL are null. */
json_t *ctl_event_json(const saga_event *ev, uint64_t stream_seq, const int64_t *offset_ms);

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

/* ---- trace.c: one order's history ------------------------------------------------ */

#define CTL_HISTORY_SUBJECT "saga.q.history.events"

/* Asks the history read model for order id's events and calls fn for each
 * (stored_ms 0); an event that does not decode counts in *bad. Returns 1 if
 * the history answered (found or not), 0 if no history participant runs,
 * -1 on a bad answer or when fn failed (the reason went to ctl_err for cmd). */
int ctl_history_read(ctl_conn *c, const char *cmd, const char *id, ctl_stream_fn fn, void *udata,
                     uint64_t *bad);

/* Reads the events of order id (a valid order id): from the history read
 * model, else, when no history participant runs, from its partition of
 * SAGA_EVENTS (progress as ctl_stream_read), calling fn for each of the
 * order's. *from_history says which answered. Returns CTL_EXIT_OK or an exit
 * code after ctl_err for cmd. */
int ctl_order_events(ctl_conn *c, const char *cmd, const char *id, int progress, ctl_stream_fn fn,
                     void *udata, ctl_stream_result *res, int *from_history);

/* ---- query.c: asking the participants ------------------------------------------- */

/* Asks saga.ctl.<svc>.stats. On success *json is the reply (ctl_json_reply;
 * the caller releases it) and 0 is returned; -1 when the participant does
 * not answer within timeout_ms. */
int ctl_service_stats(ctl_conn *c, const char *svc, int64_t timeout_ms, json_t **json);

/* One order as every participant sees it (saga.q.<name>.order). */
typedef struct ctl_order_view {
    ctl_fleet fleet; /* rows: each participant's view of the order */
    char state[32];  /* PENDING, CONFIRMED, CANCELLED; UNKNOWN without the order service */
    char reason[64]; /* why it was cancelled */
    int found;       /* -1: the order service did not answer */
} ctl_order_view;

/* Asks every participant of v->fleet (discovered already, ctl_fleet_discover)
 * for order_id at once and fills v. 0, or -1 when the requests could not be
 * sent. Release v->fleet with ctl_fleet_cleanup. */
int ctl_order_view_load(ctl_conn *c, const char *order_id, ctl_order_view *v);
/* {"order_id","state","reason","services":{NAME: its answer or "unavailable"}};
 * the caller owns it. */
json_t *ctl_order_view_json(const ctl_order_view *v, const char *order_id);

/* A reply's payload (at most 64 KiB of it) as ctl_json_reply reads it. */
json_t *ctl_reply_json(natsMsg *m);

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

/* ---- commands.c: the commands of schemas/commands.proto ----------------------- */

#define CTL_STOCK_MAX 1000000000000LL /* units of one SKU */

/* Packs req, sends it on subject (retrying on timeout, CTL_COMMAND_ATTEMPTS
 * times) and decodes the answer as reply_desc's message into *reply (the
 * caller frees it with protobuf_c_message_free_unpacked; NULL unless
 * CTL_EXIT_OK). CTL_EXIT_UNREACHABLE when nobody answers, CTL_EXIT_FAIL when
 * the answer does not decode; the reason goes to ctl_err for cmd. */
int ctl_command(ctl_conn *c, const char *cmd, const char *subject, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **reply);
struct Saga__V1__PlaceOrder;
struct Saga__V1__PlaceOrderReply;
struct Saga__V1__CancelOrder;
struct Saga__V1__CommandReply;
/* Places an order, or cancels one, with the order instance that owns it: a place
 * goes to the partition of its idempotency key (any partition without one), a
 * cancel to the order id's (ctl_command's returns). A place request carries the
 * W3C traceparent (NULL: none), so that the order's events continue that trace. */
int ctl_place(ctl_conn *c, const char *cmd, const struct Saga__V1__PlaceOrder *req,
              const char *traceparent, struct Saga__V1__PlaceOrderReply **rep);
int ctl_cancel(ctl_conn *c, const char *cmd, const struct Saga__V1__CancelOrder *req,
               struct Saga__V1__CommandReply **rep);
/* Sets SKU's stock to qty (split into the inventory instances' shares), or reads it
 * when qty < 0 (summed over them), into *out; *instances (may be NULL) says over how
 * many. Returns ctl_stock_request's codes, the reason given to ctl_err for cmd. */
int ctl_stock_run(ctl_conn *c, const char *cmd, const char *sku, long long qty, ctl_stock *out,
                  size_t *instances);
/* Every SKU's stock summed over the inventory instances (ctl_stock_list) into *out
 * (the caller owns it), CTL_EXIT_OK, or the reason given to ctl_err for cmd. */
int ctl_stock_all(ctl_conn *c, const char *cmd, json_t **out);
/* {"sku","available","held","committed","instances"}; the caller owns it. */
json_t *ctl_stock_json(const char *sku, const ctl_stock *st, size_t instances);

/* ---- faults.c: fault plans (saga.ctl.<name>.faults) ------------------------------ */

#define CTL_PLAN_MAX 1000 /* the runtime refuses longer plans; fail before sending */

/* Sends spec ("" reads the plan; "k=v k=v", "clear k=v" changes it) to the
 * participant svc. On CTL_EXIT_OK *reply is its answer (the caller releases
 * it), which may still say ok:false; else an exit code after ctl_err. */
int ctl_faults_ask(ctl_conn *c, const char *cmd, const char *svc, const char *spec, json_t **reply);
/* 0 when the reply says ok:true; else -1 after ctl_err of the participant's error. */
int ctl_faults_ok(const char *cmd, const char *svc, json_t *reply);
/* Appends the injected settings of a participant's reply ("none" for an
 * empty plan), or the reply itself when it holds no plan. */
void ctl_faults_text(ctl_buf *b, json_t *reply);

/* ---- dlq.c: reading, replaying and purging dead letters -------------------------- */

#define CTL_DLQ_MAX_REPLAYS 3 /* replays of one message before replay refuses it */

/* One dead letter as dlq list --json shows it; the caller owns it. */
json_t *ctl_dlq_entry_json(natsMsg *m, uint64_t seq, int64_t time_ns);
/* One dead letter in full, as dlq show --json shows it (ev: the message
 * decoded as an event, or NULL); the caller owns it. */
json_t *ctl_dlq_show_json(natsMsg *m, uint64_t seq, const saga_event *ev);
/* Reads dead letter seq. Returns CTL_EXIT_OK with *m set (the caller
 * destroys it), or an exit code after ctl_err. */
int ctl_dlq_get(ctl_conn *c, uint64_t seq, natsMsg **m);
/* Replays dead letter seq onto its original subject, with Saga-Replays
 * counting this replay and a message id of its own (replaying twice within
 * the broker's duplicate window publishes once), then deletes it unless
 * keep. One that came back max_replays times already is refused: replaying
 * it again would only loop. On success a sentence goes into said. Returns an
 * exit code; the reason of a failure goes to ctl_err. */
int ctl_dlq_replay(ctl_conn *c, uint64_t seq, long long max_replays, int keep, ctl_buf *said);
/* Purges SAGA_DLQ (subjects matching filter; NULL: all), which held before
 * messages there, and sets *purged to how many went. Returns js_PurgeStream's status. */
natsStatus ctl_dlq_purge(ctl_conn *c, const char *filter, uint64_t before, uint64_t *purged);

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
 * missing value, '?' for an unknown option); the message points to the --help of
 * cmd (NULL: of the program). Returns CTL_EXIT_USAGE. */
int ctl_bad_option(const char *cmd, char **argv, int optind_now, int optopt_now, int ret);

#endif
