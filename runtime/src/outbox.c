/* outbox.c - The transactional outbox: outgoing messages stored with the state change.
 *
 * A record is: u16 subject length, subject, u16 id length, id, u8 header
 * count, per header (u8 name length, name, u16 value length, value), u32
 * data length, data. Lengths are little-endian. */
#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "saga/wire.h"

void saga__outlist_init(saga__outlist *l)
{
    memset(l, 0, sizeof(*l));
}

void saga__outlist_truncate(saga__outlist *l, size_t keep)
{
    for (size_t i = keep; i < l->n; i++) {
        free(l->v[i].data);
        l->v[i].data = NULL;
    }
    if (keep < l->n)
        l->n = keep;
}

void saga__outlist_cleanup(saga__outlist *l)
{
    saga__outlist_truncate(l, 0);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

saga__outmsg *saga__outlist_push(saga__outlist *l)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        saga__outmsg *v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL)
            return NULL;
        l->v = v;
        l->cap = cap;
    }
    saga__outmsg *m = &l->v[l->n++];
    memset(m, 0, sizeof(*m));
    return m;
}

void saga__outmsg_header(saga__outmsg *m, const char *name, const char *value)
{
    if (m->nhdr >= SAGA__OUT_HDR_MAX)
        return;
    snprintf(m->hdr[m->nhdr].name, sizeof(m->hdr[0].name), "%s", name);
    snprintf(m->hdr[m->nhdr].value, sizeof(m->hdr[0].value), "%s", value);
    m->nhdr++;
}

size_t saga__outmsg_wire_size(const saga__outmsg *m)
{
    /* "NATS/1.0\r\n", "Name: value\r\n" per header, "\r\n"; the publish adds
     * Nats-Msg-Id with the id (and ".dup" for an injected duplicate). */
    size_t n = strlen(m->subject) + 10 + 2;
    for (int i = 0; i < m->nhdr; i++)
        n += strlen(m->hdr[i].name) + 2 + strlen(m->hdr[i].value) + 2;
    n += sizeof(SAGA_HDR_MSG_ID) - 1 + 2 + strlen(m->msg_id) + 4 + 2;
    return n + m->len;
}

static uint8_t *put_bytes(uint8_t *p, const void *src, size_t n)
{
    memcpy(p, src, n);
    return p + n;
}

static uint8_t *put_len(uint8_t *p, uint32_t v, int width)
{
    for (int i = 0; i < width; i++)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

saga_status saga__outbox_put(saga__store *st, MDB_txn *txn, saga__outmsg *m)
{
    size_t sl = strlen(m->subject), il = strlen(m->msg_id);
    size_t total = 2 + sl + 2 + il + 1 + 4 + m->len;
    uint8_t kb[8];
    saga_status rv;

    for (int i = 0; i < m->nhdr; i++)
        total += 1 + strlen(m->hdr[i].name) + 2 + strlen(m->hdr[i].value);
    rv = saga__meta_next(st, txn, "outbox", &m->key);
    if (rv != SAGA_OK)
        return rv;
    saga__be64_put(kb, m->key);
    MDB_val k = {sizeof(kb), kb}, v = {total, NULL};
    /* MDB_RESERVE: serialise straight into the page, no intermediate buffer. */
    int rc = mdb_put(txn, st->outbox, &k, &v, MDB_RESERVE);
    if (rc != MDB_SUCCESS)
        return saga__store_rc(st, rc, "outbox put");
    uint8_t *p = v.mv_data;
    p = put_len(p, (uint32_t)sl, 2);
    p = put_bytes(p, m->subject, sl);
    p = put_len(p, (uint32_t)il, 2);
    p = put_bytes(p, m->msg_id, il);
    *p++ = (uint8_t)m->nhdr;
    for (int i = 0; i < m->nhdr; i++) {
        size_t nl = strlen(m->hdr[i].name), vl = strlen(m->hdr[i].value);
        p = put_len(p, (uint32_t)nl, 1);
        p = put_bytes(p, m->hdr[i].name, nl);
        p = put_len(p, (uint32_t)vl, 2);
        p = put_bytes(p, m->hdr[i].value, vl);
    }
    p = put_len(p, (uint32_t)m->len, 4);
    if (m->len > 0)
        put_bytes(p, m->data, m->len);
    return SAGA_OK;
}

/* A bounds-checked reader over one record. */
typedef struct reader {
    const uint8_t *p, *end;
    int bad;
} reader;

static uint32_t get_len(reader *r, int width)
{
    uint32_t v = 0;
    if (r->end - r->p < width) {
        r->bad = 1;
        return 0;
    }
    for (int i = 0; i < width; i++)
        v |= (uint32_t)r->p[i] << (8 * i);
    r->p += width;
    return v;
}

static void get_str(reader *r, char *dst, size_t cap, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n || n >= cap) {
        r->bad = 1;
        return;
    }
    memcpy(dst, r->p, n);
    dst[n] = '\0';
    r->p += n;
}

static int decode_record(const MDB_val *k, const MDB_val *v, saga__outmsg *m)
{
    reader r = {v->mv_data, (const uint8_t *)v->mv_data + v->mv_size, 0};
    m->key = saga__be64_get(k->mv_data);
    get_str(&r, m->subject, sizeof(m->subject), get_len(&r, 2));
    get_str(&r, m->msg_id, sizeof(m->msg_id), get_len(&r, 2));
    m->nhdr = (int)get_len(&r, 1);
    if (m->nhdr > SAGA__OUT_HDR_MAX)
        return -1;
    for (int i = 0; i < m->nhdr && !r.bad; i++) {
        get_str(&r, m->hdr[i].name, sizeof(m->hdr[i].name), get_len(&r, 1));
        get_str(&r, m->hdr[i].value, sizeof(m->hdr[i].value), get_len(&r, 2));
    }
    m->len = get_len(&r, 4);
    if (r.bad || (size_t)(r.end - r.p) != m->len)
        return -1;
    if (m->len > 0) {
        m->data = malloc(m->len);
        if (m->data == NULL)
            return -1;
        memcpy(m->data, r.p, m->len);
    }
    return 0;
}

saga_status saga__outbox_load(saga__store *st, MDB_txn *txn, saga__outlist *out)
{
    MDB_cursor *cur;
    MDB_val k, v;
    saga_status rv = SAGA_OK;
    int rc = mdb_cursor_open(txn, st->outbox, &cur);
    if (rc != MDB_SUCCESS)
        return saga__store_rc(st, rc, "outbox cursor");
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8)
            continue;
        saga__outmsg *m = saga__outlist_push(out);
        if (m == NULL) {
            rv = SAGA_ENOMEM;
            break;
        }
        if (decode_record(&k, &v, m) != 0) {
            out->n--;
            snprintf(st->err, sizeof(st->err), "outbox record %llu is corrupt",
                     (unsigned long long)saga__be64_get(k.mv_data));
            rv = SAGA_ESTORE;
            break;
        }
    }
    if (rv == SAGA_OK && rc != MDB_NOTFOUND)
        rv = saga__store_rc(st, rc, "outbox load");
    mdb_cursor_close(cur);
    return rv;
}

saga_status saga__outbox_del(saga__store *st, MDB_txn *txn, uint64_t key)
{
    uint8_t kb[8];
    saga__be64_put(kb, key);
    MDB_val k = {sizeof(kb), kb};
    int rc = mdb_del(txn, st->outbox, &k, NULL);
    if (rc == MDB_NOTFOUND)
        return SAGA_OK;
    return saga__store_rc(st, rc, "outbox del");
}
