/* queue.c - Hand-off of received messages from cnats threads to the service thread. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "service_internal.h"

int saga__queue_init(saga__queue *q)
{
    pthread_condattr_t ca;
    memset(q, 0, sizeof(*q));
    if (pthread_mutex_init(&q->mu, NULL) != 0)
        return -1;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&q->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0) {
        pthread_mutex_destroy(&q->mu);
        return -1;
    }
    return 0;
}

void saga__queue_cleanup(saga__queue *q)
{
    for (size_t i = 0; i < q->n; i++)
        natsMsg_Destroy(q->v[i].msg);
    free(q->v);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
}

int saga__queue_push(saga__queue *q, saga__inmsg m)
{
    int rv = 0;
    pthread_mutex_lock(&q->mu);
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 1024;
        saga__inmsg *v = realloc(q->v, cap * sizeof(*v));
        if (v == NULL) {
            rv = -1;
            goto out;
        }
        q->v = v;
        q->cap = cap;
    }
    q->v[q->n++] = m;
    pthread_cond_signal(&q->cv);
out:
    pthread_mutex_unlock(&q->mu);
    return rv;
}

size_t saga__queue_take(saga__queue *q, saga__inmsg *out, size_t max, int64_t wait_ms)
{
    size_t k;
    pthread_mutex_lock(&q->mu);
    if (q->n == 0 && wait_ms > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += wait_ms / 1000;
        ts.tv_nsec += (wait_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (q->n == 0) {
            if (pthread_cond_timedwait(&q->cv, &q->mu, &ts) == ETIMEDOUT)
                break;
        }
    }
    k = q->n < max ? q->n : max;
    if (k > 0) {
        memcpy(out, q->v, k * sizeof(*out));
        memmove(q->v, q->v + k, (q->n - k) * sizeof(*out));
        q->n -= k;
    }
    pthread_mutex_unlock(&q->mu);
    return k;
}

size_t saga__queue_len(saga__queue *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = q->n;
    pthread_mutex_unlock(&q->mu);
    return n;
}
