/* service_harness.h - Drives one service's real handlers with fuzzed events and commands.
 *
 * A fuzz target includes the service's .c file (its handlers and setup() are
 * static, so the target becomes part of the same translation unit) and then
 * this file:
 *
 *     #define main payment_main
 *     #include "payment/payment.c"
 *     #undef main
 *     #define FUZZ_SERVICE "payment"
 *     #define FUZZ_SETTINGS settings
 *     #include "service_harness.h"
 *
 * At start the service is created (it opens its LMDB store in a temporary
 * directory; it never connects) and setup() registers its subscriptions and
 * commands, exactly as saga_app_main() does. Each input is a sequence of
 * records (see FUZZ_SEP); each record's first byte picks a subscription or a
 * command and one of a few order ids, the rest is the payload or the command
 * request. All records run in one write transaction, each handler in its own
 * nested transaction as loop.c's run_handler() does, so a record sees what
 * the records before it wrote (an order placed, then paid for); the
 * transaction is aborted at the end, so inputs do not depend on each other. */
#ifndef FUZZ_SERVICE_HARNESS_H
#define FUZZ_SERVICE_HARNESS_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "saga/app.h"
#include "service_internal.h"

/* Records of one input are separated by these bytes (payloads are protobuf,
 * so a separator in a payload only splits it, which is a valid input too). */
#define FUZZ_SEP "\n--\n"
#define FUZZ_SEP_LEN 4
#define FUZZ_MAX_RECORDS 16
/* A fixed clock, so that a reproducer behaves the same on every run. */
#define FUZZ_NOW_MS 1700000000000LL

static saga_service *fuzz_svc;
static char fuzz_dir[] = "/tmp/saga-fuzz-XXXXXX";

/* Order ids the records use: a few, so that events of one order meet; the
 * fourth is the order a command of this input created, when the target
 * defines FUZZ_REPLY(data, len, out) to read it from the reply (the order
 * service makes up a new ULID per order). In a record, FUZZ_PLACEHOLDER
 * stands for that id too, so a command can name it. */
static char fuzz_last[SAGA_ORDER_ID_MAX + 1];
static const char *const fuzz_orders[] = {"o-1", "o-2", "ORDER_3", fuzz_last};
#define FUZZ_PLACEHOLDER "ZZZZZZZZZZZZZZZZZZZZZZZZZZ"
#define FUZZ_PLACEHOLDER_LEN SAGA_ID_LEN

/* Removes the temporary directory: files and directories, two levels deep
 * at most (the store, the spool and its .tmp). */
static void fuzz_rm(const char *path, int depth)
{
    DIR *d = depth < 3 ? opendir(path) : NULL;
    if (d != NULL) {
        char sub[1024];
        for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            int n = snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
            if (n > 0 && (size_t)n < sizeof(sub))
                fuzz_rm(sub, depth + 1);
        }
        closedir(d);
    }
    remove(path);
}

static void fuzz_cleanup(void)
{
    saga_service_destroy(fuzz_svc);
    fuzz_svc = NULL;
    fuzz_rm(fuzz_dir, 0);
}

/* What saga_app_main() does before setup(): every setting takes its default
 * (the fuzzer's environment must not change what a reproducer does). */
static void fuzz_settings(const saga_app_setting *s)
{
    for (; s != NULL && s->env != NULL; s++) {
        if (s->sval != NULL)
            *s->sval = s->sdef;
        else
            *s->ival = s->def;
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    saga_config cfg;
    char err[512], data[sizeof(fuzz_dir) + 16];
    if (mkdtemp(fuzz_dir) == NULL) {
        perror("mkdtemp");
        abort();
    }
    memset(&cfg, 0, sizeof(cfg));
    if (saga_config_init(&cfg, FUZZ_SERVICE, err, sizeof(err)) != SAGA_OK) {
        fprintf(stderr, "fuzz: config: %s\n", err);
        abort();
    }
    snprintf(data, sizeof(data), "%s/data", fuzz_dir);
    cfg.data_dir = data;
    cfg.sync = 0;
    cfg.faults = NULL;
    cfg.crash_at = NULL;
    cfg.gates = NULL;
    cfg.log = NULL;
    if (saga_service_create(&fuzz_svc, &cfg, err, sizeof(err)) != SAGA_OK) {
        fprintf(stderr, "fuzz: create: %s\n", err);
        abort();
    }
    fuzz_settings(FUZZ_SETTINGS);
#ifdef FUZZ_PREPARE
    FUZZ_PREPARE(fuzz_dir);
#endif
    saga_status st = setup(fuzz_svc, &cfg, NULL);
    if (st != SAGA_OK) {
        fprintf(stderr, "fuzz: setup: %s: %s\n", saga_strerror(st),
                saga_service_last_error(fuzz_svc));
        abort();
    }
    atexit(fuzz_cleanup);
    return 0;
}

/* The producer of a subscribed pattern: its first token, or a participant
 * for a wildcard ("*.vetoed" becomes "fraud.vetoed"). */
static void fuzz_type(const char *pattern, char type[SAGA_TYPE_MAX + 1])
{
    if (pattern[0] == '*')
        snprintf(type, SAGA_TYPE_MAX + 1, "fraud%s", pattern + 1);
    else
        snprintf(type, SAGA_TYPE_MAX + 1, "%s", pattern);
}

/* Runs one handler in a nested transaction of txn, as loop.c's run_handler()
 * does: its writes and emits are kept only when it returns SAGA_OK. */
static void fuzz_run(MDB_txn *txn, const saga__sub *sub, const saga__cmd *cmd, const saga_event *ev,
                     const uint8_t *data, size_t len)
{
    MDB_txn *nested;
    saga_ctx ctx;
    size_t mark = fuzz_svc->out.n;
    if (saga__store_begin(&fuzz_svc->store, txn, &nested) != SAGA_OK)
        abort();
    saga__ctx_init(&ctx, fuzz_svc, nested, ev, NULL, 1, FUZZ_NOW_MS);
    saga_status st = sub != NULL ? sub->fn(&ctx, ev, sub->udata)
                                 : cmd->fn(&ctx, cmd->subject, data, len, cmd->udata);
    if (ctx.store_failed && st == SAGA_OK)
        st = SAGA_ERETRY;
    if (st == SAGA_OK) {
        if (saga__store_commit(&fuzz_svc->store, nested) != SAGA_OK)
            abort();
    } else {
        mdb_txn_abort(nested);
        saga__outlist_truncate(&fuzz_svc->out, mark);
    }
#ifdef FUZZ_REPLY
    if (ctx.has_reply)
        FUZZ_REPLY(ctx.reply, ctx.reply_len, fuzz_last);
#endif
    saga__ctx_cleanup(&ctx);
}

static void fuzz_record(MDB_txn *txn, const uint8_t *rec, size_t len, unsigned index)
{
    int nhandlers = fuzz_svc->nsubs + fuzz_svc->ncmds;
    if (len == 0 || nhandlers == 0)
        return;
    unsigned pick = (rec[0] & 0x3f) % (unsigned)nhandlers;
    const char *order = fuzz_orders[(rec[0] >> 6) & 3];
    size_t blen = len - 1;
    /* Every buffer in one of its own size, so ASan sees any over-read. */
    uint8_t *copy = blen > 0 ? malloc(blen) : NULL;
    if (blen > 0 && copy == NULL)
        return;
    if (blen > 0)
        memcpy(copy, rec + 1, blen);
    if (strlen(fuzz_last) == FUZZ_PLACEHOLDER_LEN) {
        for (size_t i = 0; i + FUZZ_PLACEHOLDER_LEN <= blen; i++)
            if (memcmp(copy + i, FUZZ_PLACEHOLDER, FUZZ_PLACEHOLDER_LEN) == 0)
                memcpy(copy + i, fuzz_last, FUZZ_PLACEHOLDER_LEN);
    }
    if (pick >= (unsigned)fuzz_svc->nsubs) {
        /* cnats hands an empty request as a valid pointer and length 0. */
        static const uint8_t empty[1];
        fuzz_run(txn, NULL, &fuzz_svc->cmds[pick - (unsigned)fuzz_svc->nsubs], NULL,
                 copy != NULL ? copy : empty, blen);
        free(copy);
        return;
    }
    const saga__sub *sub = &fuzz_svc->subs[pick];
    saga_event ev;
    memset(&ev, 0, sizeof(ev));
    /* Fixed, valid identifiers: the envelope has its own target; here only
     * the payload and the order of events vary. */
    snprintf(ev.event_id, sizeof(ev.event_id), "01HF0000000000000000000%03u", index % 1000);
    fuzz_type(sub->pattern, ev.type);
    ev.schema_version = 1;
    snprintf(ev.order_id, sizeof(ev.order_id), "%s", order[0] != '\0' ? order : "o-1");
    snprintf(ev.causation_id, sizeof(ev.causation_id), "01HE0000000000000000000000");
    snprintf(ev.producer, sizeof(ev.producer), "%.*s", (int)strcspn(ev.type, "."), ev.type);
    ev.sequence = index + 1;
    ev.time_ms = FUZZ_NOW_MS + index;
    ev.payload = copy;
    ev.payload_len = blen;
    fuzz_run(txn, sub, NULL, &ev, NULL, 0);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    MDB_txn *txn;
    fuzz_last[0] = '\0';
    if (saga__store_begin(&fuzz_svc->store, NULL, &txn) != SAGA_OK)
        abort();
    const uint8_t *p = data, *end = data + size;
    for (unsigned i = 0; i < FUZZ_MAX_RECORDS && p <= end; i++) {
        const uint8_t *next = end;
        for (const uint8_t *q = p; q + FUZZ_SEP_LEN <= end; q++) {
            if (memcmp(q, FUZZ_SEP, FUZZ_SEP_LEN) == 0) {
                next = q;
                break;
            }
        }
        fuzz_record(txn, p, (size_t)(next - p), i);
        if (next == end)
            break;
        p = next + FUZZ_SEP_LEN;
    }
    mdb_txn_abort(txn);
    saga__outlist_truncate(&fuzz_svc->out, 0);
    return 0;
}

#endif
