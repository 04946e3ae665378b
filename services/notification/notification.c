/* notification.c - saga-notification: tells the customer how the order ended, once per message.
 *
 * order.confirmed, order.cancelled and payment.refunded each become one file
 * <order_id>.<kind>.txt (kind confirmed, cancelled or refund) in the mail
 * spool NOTIF_SPOOL_DIR, then one notification.sent event.
 *
 * Exactly once, across crashes: the file is written under a temporary name
 * in the spool and renamed to its final name without replacing (EEXIST if
 * it is there already), so no redelivery ever makes a second file or
 * changes a complete one (a file cut short by a machine crash is replaced).
 * The files of a batch are made durable by one syncfs(2) in the runtime's
 * pre-commit hook, before the commit that records them as sent (two fsyncs
 * per file cost more CPU than the rest of the fleet's services together).
 * The handler runs inside the runtime's transaction, which may be lost
 * after the rename (a crash before the commit): the redelivery then finds
 * the file. Whether notification.sent was emitted is therefore decided by
 * the order-scoped key "sent:<kind>", written in the same transaction as
 * the event, not by the rename's result. */
#define _GNU_SOURCE /* syncfs, renameat2 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "events.pb-c.h"
#include "saga/saga.h"
#include "svc.h"

#define DEFAULT_SPOOL_DIR "./var/mail"
#define TMP_DIR ".tmp" /* in the spool: files being written, renamed out when complete */
#define SENT_PREFIX "sent:"
#define TEXT_MAX 1024 /* reasons and details shown to the customer are cut here */

/* NOTIF_SPOOL_DIR: read once by saga_app_main before any handler runs. */
static const char *spool_dir;

static const saga_app_setting settings[] = {
    {"NOTIF_SPOOL_DIR", "mail spool directory, one file per message (created if missing)", 0, 0, 0,
     NULL, &spool_dir, DEFAULT_SPOOL_DIR},
    {NULL, NULL, 0, 0, 0, NULL, NULL, NULL}};

#define KIND_CONFIRMED "confirmed"
#define KIND_CANCELLED "cancelled"
#define KIND_REFUND "refund"
static const char *const kinds[] = {KIND_CONFIRMED, KIND_CANCELLED, KIND_REFUND};

/* ---- the spool -------------------------------------------------------- */

/* Removes the temporary files a crash left behind in dir; they never got
 * a final name. */
static void remove_stale_tmp(const char *dir)
{
    char path[PATH_MAX];
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        int n = snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (n > 0 && (size_t)n < sizeof(path))
            unlink(path);
    }
    closedir(d);
}

/* The spool directory, open for syncfs(2); set by setup(). */
static int spool_fd = -1;
/* A handler of the current batch wrote to the spool since the last sync. */
static int spool_dirty;

/* Gives the temporary file tmp its final name, failing with EEXIST if the
 * name is taken: renameat2(RENAME_NOREPLACE), or on a file system without
 * it link(2) and unlink(2). On success tmp is gone. */
static int spool_publish(const char *tmp, const char *final)
{
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    if (link(tmp, final) != 0)
        return -1;
    unlink(tmp);
    return 0;
}

/* Writes text to <spool>/<name> unless that file exists, so that a reader
 * never sees it half written: a temporary file in <spool>/.tmp (emptied at
 * start: what a crash left there never got a name) renamed to its final
 * name. The temporary directory stays small, so only the rename looks
 * names up in the spool, which may hold many files. (An unnamed O_TMPFILE
 * linked through /proc costs four times the CPU here.)
 * Nothing is synced here: the pre-commit hook makes every file of the
 * batch durable at once, before the batch's commit says they were sent. A
 * file that exists with another size was cut short by a machine crash
 * before its sync (its transaction was lost with it) and is replaced.
 * *created says whether this call made the file. Returns SAGA_OK, or
 * SAGA_EIO (retry later). */
static saga_status spool_write(const char *name, const char *text, size_t len, int *created)
{
    char tmp[PATH_MAX], final[PATH_MAX], id[SAGA_ID_LEN + 1];
    saga_status st = SAGA_EIO;
    struct stat sb;

    *created = 0;
    int n = snprintf(final, sizeof(final), "%s/%s", spool_dir, name);
    if (n < 0 || (size_t)n >= sizeof(final))
        return SAGA_ETOOBIG;
    saga_ulid_new(id);
    n = snprintf(tmp, sizeof(tmp), "%s/" TMP_DIR "/%s.%s", spool_dir, name, id);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return SAGA_ETOOBIG;

    spool_dirty = 1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return SAGA_EIO;
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            goto out;
        }
        off += (size_t)w;
    }
    if (close(fd) != 0)
        goto out;
    if (spool_publish(tmp, final) == 0) {
        *created = 1;
        return SAGA_OK;
    }
    if (errno != EEXIST)
        goto out;
    if (stat(final, &sb) != 0 || (size_t)sb.st_size != len) {
        if (rename(tmp, final) != 0) /* atomic: a reader sees the old or the new file */
            goto out;
        *created = 1;
        return SAGA_OK;
    }
    st = SAGA_OK;
out:
    unlink(tmp);
    return st;
}

/* Pre-commit hook: one syncfs for every spool file the batch wrote. */
static saga_status spool_sync(saga_service *svc, void *udata)
{
    (void)svc;
    (void)udata;
    if (!spool_dirty)
        return SAGA_OK;
    if (syncfs(spool_fd) != 0)
        return SAGA_EIO;
    spool_dirty = 0;
    return SAGA_OK;
}

/* ---- sending ---------------------------------------------------------- */

static int already_sent(saga_ctx *ctx, const char *order_id, const char *kind)
{
    char key[32];
    const void *v;
    size_t len;
    snprintf(key, sizeof(key), SENT_PREFIX "%s", kind);
    return saga_ctx_get(ctx, order_id, key, &v, &len) == SAGA_OK;
}

/* Puts the message in the spool and announces it, once per order and kind. */
static saga_status deliver(saga_ctx *ctx, const char *order_id, const char *kind,
                           const char *customer_id, const char *text, size_t len)
{
    Saga__V1__NotificationSent msg = SAGA__V1__NOTIFICATION_SENT__INIT;
    char name[SAGA_ORDER_ID_MAX + 32], key[32];
    int created;
    int64_t now = saga_ctx_now_ms(ctx);

    snprintf(name, sizeof(name), "%s.%s.txt", order_id, kind);
    snprintf(key, sizeof(key), SENT_PREFIX "%s", kind);
    saga_status st = spool_write(name, text, len, &created);
    if (st != SAGA_OK)
        return st;
    /* created == 0: the file is from a run whose transaction was lost, and
     * "sent:<kind>" (checked by the caller) says nobody announced it yet. */
    st = saga_ctx_put(ctx, order_id, key, &now, sizeof(now));
    if (st != SAGA_OK)
        return st;
    msg.kind = (char *)kind; /* the packer only reads these */
    msg.customer_id = (char *)customer_id;
    msg.spool_file = name;
    st = svc_emit(ctx, "notification.sent", order_id, &msg.base);
    /* Nothing waits for more here; a later refund notice still works, as
     * the state is only pruned after the retention period. */
    if (st == SAGA_OK)
        st = saga_ctx_finish(ctx, order_id);
    return st;
}

/* ---- messages --------------------------------------------------------- */

static int valid_currency(const char *c)
{
    return strlen(c) == 3 && c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z' &&
           c[2] >= 'A' && c[2] <= 'Z';
}

/* Writes s to f with control characters as spaces, at most TEXT_MAX bytes,
 * so event text can neither break the mail's layout nor grow it unbounded. */
static void put_text(FILE *f, const char *s)
{
    for (size_t i = 0; s[i] != '\0' && i < TEXT_MAX; i++)
        fputc((unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i], f);
}

static void put_money(FILE *f, int64_t cents, const char *currency)
{
    fprintf(f, "%lld.%02lld %s", (long long)(cents / 100), (long long)(cents % 100), currency);
}

static void put_head(FILE *f, const char *customer_id, const char *order_id, const char *subject)
{
    fprintf(f, "To: %s\nSubject: %s %s\nX-Order-Id: %s\n\nHello %s,\n\n", customer_id, subject,
            order_id, order_id, customer_id);
}

static void put_items(FILE *f, Saga__V1__LineItem **items, size_t n, const char *currency)
{
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "  %d x ", items[i]->quantity);
        put_text(f, items[i]->sku);
        fputs(" at ", f);
        put_money(f, items[i]->unit_cents, currency);
        fputc('\n', f);
    }
}

static const char *reason_text(const char *reason)
{
    static const struct {
        const char *code, *text;
    } map[] = {
        {"payment_declined", "your payment was declined"},
        {"out_of_stock", "an item is out of stock"},
        {"shipping_failed", "we cannot ship to your address"},
        {"customer", "you asked us to cancel it"},
        {"timeout", "it could not be completed in time"},
        {"vetoed", "it did not pass our checks"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i].code, reason) == 0)
            return map[i].text;
    return "of a problem on our side";
}

/* Validates what every message shows; 0 if the payload breaks the contract. */
static int valid_common(const char *customer_id, int64_t cents, const char *currency)
{
    return saga_valid_order_id(customer_id) && cents >= 0 && valid_currency(currency);
}

static int valid_items(Saga__V1__LineItem **items, size_t n)
{
    if (n > 100)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (items[i] == NULL || items[i]->unit_cents < 0)
            return 0;
    return 1;
}

/* Runs build() into a memory stream and delivers the result. */
static saga_status compose_and_deliver(saga_ctx *ctx, const char *order_id, const char *kind,
                                       const char *customer_id,
                                       void (*build)(FILE *, const void *, const char *),
                                       const void *m)
{
    char *text = NULL;
    size_t len = 0;
    saga_status st = SAGA_ENOMEM;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL)
        goto out;
    build(f, m, order_id);
    if (ferror(f)) {
        fclose(f);
        goto out;
    }
    if (fclose(f) != 0)
        goto out;
    st = deliver(ctx, order_id, kind, customer_id, text, len);
out:
    free(text);
    return st;
}

static void build_confirmed(FILE *f, const void *m, const char *order_id)
{
    const Saga__V1__OrderConfirmed *oc = m;
    put_head(f, oc->customer_id, order_id, "Your order is confirmed:");
    fprintf(f, "your order %s is confirmed.\n\nTotal: ", order_id);
    put_money(f, oc->total_cents, oc->currency);
    fputs("\nShipment: ", f);
    put_text(f, oc->shipment_id);
    fputs("\nItems:\n", f);
    put_items(f, oc->items, oc->n_items, oc->currency);
    fputs("\nThank you for your order.\n", f);
}

static void build_cancelled(FILE *f, const void *m, const char *order_id)
{
    const Saga__V1__OrderCancelled *oc = m;
    put_head(f, oc->customer_id, order_id, "Your order is cancelled:");
    /* A fault plan's outcome says so in the detail (SAGA_FAULT_INJECTED):
     * the headline says it too, so no one takes a drill for a real failure. */
    int injected = strstr(oc->detail, SAGA_FAULT_INJECTED) != NULL;
    fprintf(f, "your order %s was cancelled because %s%s.\n\nReason: ", order_id,
            reason_text(oc->reason), injected ? " (" SAGA_FAULT_INJECTED ")" : "");
    put_text(f, oc->reason);
    if (oc->detail[0] != '\0') {
        fputs("\nDetail: ", f);
        put_text(f, oc->detail);
    }
    fputs("\nOrder total: ", f);
    put_money(f, oc->total_cents, oc->currency);
    fputs("\n\nIf you were charged, the amount is refunded; a separate notice confirms it.\n", f);
}

static void build_refund(FILE *f, const void *m, const char *order_id)
{
    const Saga__V1__PaymentRefunded *pr = m;
    put_head(f, pr->customer_id, order_id, "Your refund for order");
    fputs("we refunded ", f);
    put_money(f, pr->amount_cents, pr->currency);
    fprintf(f, " for your order %s.\n\nReason: ", order_id);
    put_text(f, pr->reason);
    fputs("\n", f);
}

/* ---- handlers --------------------------------------------------------- */

static saga_status on_confirmed(saga_ctx *ctx, const saga_event *ev, void *udata)
{
    Saga__V1__OrderConfirmed *oc;
    saga_status st = SAGA_OK;
    (void)udata;
    oc = saga__v1__order_confirmed__unpack(NULL, ev->payload_len, ev->payload);
    if (oc == NULL || !valid_common(oc->customer_id, oc->total_cents, oc->currency) ||
        !valid_items(oc->items, oc->n_items)) {
        st = SAGA_EREJECT;
        goto out;
    }
    if (!already_sent(ctx, ev->order_id, KIND_CONFIRMED))
        st = compose_and_deliver(ctx, ev->order_id, KIND_CONFIRMED, oc->customer_id,
                                 build_confirmed, oc);
out:
    if (oc != NULL)
        saga__v1__order_confirmed__free_unpacked(oc, NULL);
    return st;
}

static saga_status on_cancelled(saga_ctx *ctx, const saga_event *ev, void *udata)
{
    Saga__V1__OrderCancelled *oc;
    saga_status st = SAGA_OK;
    (void)udata;
    oc = saga__v1__order_cancelled__unpack(NULL, ev->payload_len, ev->payload);
    if (oc == NULL || !valid_common(oc->customer_id, oc->total_cents, oc->currency)) {
        st = SAGA_EREJECT;
        goto out;
    }
    if (!already_sent(ctx, ev->order_id, KIND_CANCELLED))
        st = compose_and_deliver(ctx, ev->order_id, KIND_CANCELLED, oc->customer_id,
                                 build_cancelled, oc);
out:
    if (oc != NULL)
        saga__v1__order_cancelled__free_unpacked(oc, NULL);
    return st;
}

static saga_status on_refunded(saga_ctx *ctx, const saga_event *ev, void *udata)
{
    Saga__V1__PaymentRefunded *pr;
    saga_status st = SAGA_OK;
    (void)udata;
    pr = saga__v1__payment_refunded__unpack(NULL, ev->payload_len, ev->payload);
    if (pr == NULL || !valid_common(pr->customer_id, pr->amount_cents, pr->currency)) {
        st = SAGA_EREJECT;
        goto out;
    }
    if (!already_sent(ctx, ev->order_id, KIND_REFUND))
        st = compose_and_deliver(ctx, ev->order_id, KIND_REFUND, pr->customer_id, build_refund, pr);
out:
    if (pr != NULL)
        saga__v1__payment_refunded__free_unpacked(pr, NULL);
    return st;
}

/* ---- query ------------------------------------------------------------ */

static saga_status q_order(saga_ctx *ctx, const char *subject, const uint8_t *data, size_t len,
                           void *udata)
{
    char order[SAGA_ORDER_ID_MAX + 1];
    json_t *sent = json_array();
    (void)subject;
    (void)udata;

    if (!svc_query_order_id(data, len, order)) {
        json_decref(sent);
        return svc_reply_not_order_id(ctx, "notification");
    }
    for (size_t i = 0; sent != NULL && i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (already_sent(ctx, order, kinds[i]) &&
            json_array_append_new(sent, json_string(kinds[i])) != 0) {
            json_decref(sent);
            sent = NULL;
        }
    }
    /* "o" steals sent, also when json_pack fails; a NULL sent fails it. */
    return svc_json_send(ctx,
                         json_pack("{s:s, s:s, s:b, s:o}", "service", "notification", "order_id",
                                   order, "found", json_array_size(sent) > 0, "messages", sent));
}

/* ---- main ------------------------------------------------------------- */

static saga_status setup(saga_service *svc, const saga_config *cfg, void *udata)
{
    (void)cfg;
    (void)udata;
    int err = saga_mkdir_p(spool_dir);
    if (err != 0) {
        fprintf(stderr, "saga-notification: cannot create NOTIF_SPOOL_DIR \"%s\": %s\n", spool_dir,
                strerror(err));
        return SAGA_EIO;
    }
    char tmp_dir[PATH_MAX];
    int n = snprintf(tmp_dir, sizeof(tmp_dir), "%s/" TMP_DIR, spool_dir);
    err = n > 0 && (size_t)n < sizeof(tmp_dir) ? saga_mkdir_p(tmp_dir) : ENAMETOOLONG;
    if (err != 0) {
        fprintf(stderr, "saga-notification: cannot create \"%s\": %s\n", tmp_dir, strerror(err));
        return SAGA_EIO;
    }
    remove_stale_tmp(tmp_dir);
    spool_fd = open(spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (spool_fd < 0) {
        fprintf(stderr, "saga-notification: cannot open NOTIF_SPOOL_DIR \"%s\": %s\n", spool_dir,
                strerror(errno));
        return SAGA_EIO;
    }
    static const char *const emits[] = {"notification.sent", NULL};
    static const svc_sub subs[] = {{"order.confirmed", on_confirmed},
                                   {"order.cancelled", on_cancelled},
                                   {"payment.refunded", on_refunded},
                                   {NULL, NULL}};
    static const svc_cmd cmds[] = {{"saga.q.notification.order", q_order}, {NULL, NULL}};
    return svc_wire(
        svc, &(svc_wiring){.emits = emits, .subs = subs, .cmds = cmds, .precommit = spool_sync});
}

int main(int argc, char **argv)
{
    return saga_app_main("notification",
                         "Writes one message per confirmed or cancelled order and per refund to "
                         "the mail spool, exactly once, and announces it.",
                         settings, argc, argv, setup, NULL);
}
