/* audit.h - One audit run and its findings, shared by audit.c (which gathers
 * facts from the stream, the inventory and the mail spool and checks them) and
 * audit_cmd.c (the command and its report). Private to sagactl. */
#ifndef SAGACTL_AUDIT_H
#define SAGACTL_AUDIT_H

#include "ctl.h"

#define CTL_AUDIT_REASONS_MAX 16 /* distinct cancellation reasons counted */

/* One broken rule, for an order, for a SKU (order_id empty), or for the run
 * as a whole (both empty: a dead letter that names no order). */
typedef struct ctl_violation {
    char order_id[SAGA_ORDER_ID_MAX + 1]; /* empty for a SKU-wide finding */
    char sku[72];
    const char *rule;
    char detail[240];
} ctl_violation;

/* One audit run: its figures, findings and working maps. */
typedef struct ctl_audit {
    int64_t now_ms, grace_ms;
    int strict_ids;
    uint64_t dup_copies;
    /* Cross-checks with the participants' records: verify is 1 when they
     * were asked; orders older than retention_ms, or whose services did
     * not answer, are counted instead of checked. */
    int verify;
    int64_t retention_ms;
    uint64_t unverified_old, unverified_down;
    const char *spool;
    ctl_map *orders, *skus, *ids;
    uint64_t events, undecodable, bad_payloads;
    uint64_t refunds, releases, ship_cancels, failures, spool_files;
    uint64_t confirmed, cancelled, pending, skus_checked;
    struct {
        char name[32];
        uint64_t n;
    } reasons[CTL_AUDIT_REASONS_MAX];
    int nreasons;
    /* The run's figures from the services' own counters (saga.ctl.<svc>.stats),
     * summed over those that answered; each counts since its process started. */
    int services_answered;
    uint64_t faults_injected, redeliveries, duplicates_suppressed, dead_lettered;
    /* The dead-letter stream, by the cause each reason gives (ctl_dlq_classify). */
    int allow_dead_letters;
    uint64_t dlq_messages, dlq_poisoned, dlq_failed, dlq_other;
    ctl_violation *v;
    size_t nv, capv;
    ctl_buf warnings; /* one per line */
    int oom;
} ctl_audit;

/* Runs one complete audit into a (initialised here; release it with
 * ctl_audit_cleanup, also on failure). progress != 0 prints progress lines;
 * spool NULL skips the mail spool; allow_dead_letters != 0 reports dead
 * letters of failed deliveries as warnings instead of violations;
 * retention_ms is the services' SAGA_RETENTION_MS (older orders are not
 * cross-checked with their records). Returns
 * CTL_EXIT_OK or an exit code after printing why. */
int ctl_audit_run(ctl_audit *a, ctl_conn *c, int progress, const char *spool, int64_t grace_ms,
                  int strict_ids, int allow_dead_letters, int64_t retention_ms);
void ctl_audit_cleanup(ctl_audit *a);

#endif
