/* park.c - Out-of-order events wait here, keyed by order, until they can be handled. */
#include "park.h"

#include <stdlib.h>
#include <string.h>

saga_status saga__park_put(saga__store *st, MDB_txn *txn, const char *order_id,
                           const char *event_id, int delivery, const uint8_t *raw, size_t len)
{
    char key[SAGA__KEY_MAX];
    size_t klen = saga__key2(key, sizeof(key), order_id, event_id);
    int32_t d = delivery;
    if (klen == 0)
        return SAGA_ETOOBIG;
    MDB_val k = {klen, key}, v = {sizeof(d) + len, NULL};
    int rc = mdb_put(txn, st->parked, &k, &v, MDB_RESERVE);
    if (rc != MDB_SUCCESS)
        return saga__store_rc(st, rc, "park put");
    memcpy(v.mv_data, &d, sizeof(d));
    memcpy((uint8_t *)v.mv_data + sizeof(d), raw, len);
    return SAGA_OK;
}

static int fill(saga__parked *p, const MDB_val *k, size_t olen, const MDB_val *v)
{
    size_t idlen = k->mv_size - olen - 1;
    memset(p, 0, sizeof(*p));
    if (idlen > SAGA_ID_LEN || v->mv_size < sizeof(int32_t))
        return -1;
    memcpy(p->event_id, (const char *)k->mv_data + olen + 1, idlen);
    int32_t d;
    memcpy(&d, v->mv_data, sizeof(d));
    p->delivery = d;
    p->len = v->mv_size - sizeof(d);
    p->raw = malloc(p->len ? p->len : 1);
    if (p->raw == NULL)
        return -1;
    memcpy(p->raw, (const uint8_t *)v->mv_data + sizeof(d), p->len);
    return 0;
}

saga_status saga__park_list(saga__store *st, MDB_txn *txn, const char *order_id, saga__parked **out,
                            size_t *n)
{
    size_t olen = strlen(order_id), cap = 0, cnt = 0;
    saga__parked *v = NULL;
    MDB_cursor *cur;
    MDB_val k = {olen + 1, (void *)order_id}, val; /* order_id's \0 is the separator */
    saga_status rv = SAGA_OK;
    int rc = mdb_cursor_open(txn, st->parked, &cur);
    if (rc != MDB_SUCCESS)
        return saga__store_rc(st, rc, "park cursor");
    for (rc = mdb_cursor_get(cur, &k, &val, MDB_SET_RANGE); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
        if (k.mv_size <= olen + 1 || memcmp(k.mv_data, order_id, olen + 1) != 0)
            break;
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 4;
            saga__parked *nv = realloc(v, nc * sizeof(*nv));
            if (nv == NULL) {
                rv = SAGA_ENOMEM;
                goto out;
            }
            v = nv;
            cap = nc;
        }
        if (fill(&v[cnt], &k, olen, &val) != 0) {
            rv = SAGA_ENOMEM;
            goto out;
        }
        cnt++;
    }
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
        rv = saga__store_rc(st, rc, "park list");
out:
    mdb_cursor_close(cur);
    if (rv != SAGA_OK) {
        saga__park_free(v, cnt);
        return rv;
    }
    *out = v;
    *n = cnt;
    return SAGA_OK;
}

saga_status saga__park_get(saga__store *st, MDB_txn *txn, const char *order_id,
                           const char *event_id, saga__parked *out)
{
    char key[SAGA__KEY_MAX];
    size_t klen = saga__key2(key, sizeof(key), order_id, event_id);
    if (klen == 0)
        return SAGA_ETOOBIG;
    MDB_val k = {klen, key}, v;
    int rc = mdb_get(txn, st->parked, &k, &v);
    if (rc != MDB_SUCCESS)
        return saga__store_rc(st, rc, "park get");
    return fill(out, &k, strlen(order_id), &v) == 0 ? SAGA_OK : SAGA_ENOMEM;
}

saga_status saga__park_del(saga__store *st, MDB_txn *txn, const char *order_id,
                           const char *event_id)
{
    char key[SAGA__KEY_MAX];
    size_t klen = saga__key2(key, sizeof(key), order_id, event_id);
    if (klen == 0)
        return SAGA_ETOOBIG;
    MDB_val k = {klen, key};
    int rc = mdb_del(txn, st->parked, &k, NULL);
    if (rc == MDB_NOTFOUND)
        return SAGA_OK;
    return saga__store_rc(st, rc, "park del");
}

void saga__park_free(saga__parked *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].raw);
    free(v);
}

int saga__park_any(saga__store *st, MDB_txn *txn, const char *order_id)
{
    size_t olen = strlen(order_id);
    MDB_cursor *cur;
    MDB_val k = {olen + 1, (void *)order_id}, v;
    int found = 0;
    if (mdb_cursor_open(txn, st->parked, &cur) != MDB_SUCCESS)
        return 0;
    if (mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE) == MDB_SUCCESS)
        found = k.mv_size > olen + 1 && memcmp(k.mv_data, order_id, olen + 1) == 0;
    mdb_cursor_close(cur);
    return found;
}
