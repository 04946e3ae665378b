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

/* A veto that reached the order service after the order was CONFIRMED
 * (order.veto_ignored): not applied, reported as a warning. */
typedef struct ctl_late_veto {
    char order_id[SAGA_ORDER_ID_MAX + 1];
    char participant[SAGA_PRODUCER_MAX + 1];
    char reason[160];
} ctl_late_veto;

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
    /* uthash tables, iterated in the order the stream first names a key. */
    struct order_facts *orders;
    struct sku_facts *skus;
    struct id_facts *ids;
    uint64_t events, undecodable, bad_payloads;
    uint64_t refunds, releases, ship_cancels, failures, spool_files;
    uint64_t confirmed, cancelled, pending, skus_checked;
    struct {
        char name[32];
        uint64_t n;
    } reasons[CTL_AUDIT_REASONS_MAX];
    int nreasons;
    /* The run's figures from the participants' own counters
     * (saga.ctl.<name>.stats), summed over those that answered out of the
     * participants asked (the saga's five and every other that answered
     * discovery); each counts since its process started. */
    int services_answered, participants;
    uint64_t faults_injected, redeliveries, duplicates_suppressed, dead_lettered;
    /* The dead-letter stream, by the cause each reason gives (ctl_dlq_classify). */
    int allow_dead_letters;
    uint64_t dlq_messages, dlq_poisoned, dlq_failed, dlq_other;
    ctl_violation *v;
    size_t nv, capv;
    ctl_late_veto *late; /* warnings, not violations */
    size_t nlate, caplate;
    ctl_buf warnings; /* one per line */
    int oom;
} ctl_audit;

/* Runs one complete audit into a (initialised here; release it with
 * ctl_audit_cleanup, also on failure); f is the fleet as discovered, whose
 * counters are asked. progress != 0 prints progress lines;
 * spool NULL skips the mail spool; allow_dead_letters != 0 reports dead
 * letters of failed deliveries as warnings instead of violations;
 * retention_ms is the services' SAGA_RETENTION_MS (older orders are not
 * cross-checked with their records). Returns
 * CTL_EXIT_OK or an exit code after printing why. */
int ctl_audit_run(ctl_audit *a, ctl_conn *c, ctl_fleet *f, int progress, const char *spool,
                  int64_t grace_ms, int strict_ids, int allow_dead_letters, int64_t retention_ms);
void ctl_audit_cleanup(ctl_audit *a);

#endif
