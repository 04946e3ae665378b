/* feed.c - The fleet's events as they happen, for the console: a core NATS
 * subscription on every event subject (evt.>), each event kept as one
 * server-sent event in a ring, and a response per console that sends the ring
 * and then every new event. A core subscription loses nothing a console needs:
 * what it misses while the gateway is away, a timeline reads from the history. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway.h"
#include "saga/wire.h"

#define RING 4096      /* events kept for consoles that open later */
#define KEEPALIVE_S 15 /* a comment line this often, so proxies keep the stream */
#define SSE_BLOCK 4096 /* libmicrohttpd's buffer for one stream */

struct gw_feed {
    natsSubscription *sub;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *ring[RING]; /* "id: N\ndata: {...}\n\n", event N at N % RING */
    uint64_t next;    /* the number the next event gets; the first is 1 */
    int closing;
};

/* One console's stream: the next event it wants and the text not yet sent. */
typedef struct stream {
    gw_feed *f;
    uint64_t want;
    ctl_buf out;
    size_t sent;
} stream;

/* The event as the console reads it: ctl_event_json (envelope, mark,
 * summary, decoded payload) with the feed's number as "id". */
static char *sse_text(const saga_event *ev, uint64_t id)
{
    ctl_buf out;
    char *text = NULL;
    json_t *j = ctl_event_json(ev, 0, NULL);
    ctl_buf_init(&out);
    if (j != NULL && json_object_set_new(j, "id", json_integer((json_int_t)id)) == 0) {
        ctl_buf_printf(&out, "id: %llu\ndata: ", (unsigned long long)id);
        ctl_buf_json(&out, j);
        ctl_buf_puts(&out, "\n\n");
        if (ctl_buf_ok(&out))
            text = strdup(ctl_buf_str(&out));
    }
    json_decref(j);
    ctl_buf_cleanup(&out);
    return text;
}

/* Runs on a cnats thread for every event. */
static void on_event(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
    gw_feed *f = closure;
    saga_event ev;
    void *owner = NULL;
    (void)nc;
    (void)sub;
    if (saga_event_decode((const uint8_t *)natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m),
                          &ev, &owner, NULL, 0) == SAGA_OK) {
        pthread_mutex_lock(&f->mu);
        char *text = sse_text(&ev, f->next);
        if (text != NULL) {
            free(f->ring[f->next % RING]);
            f->ring[f->next % RING] = text;
            f->next++;
            pthread_cond_broadcast(&f->cv);
        }
        pthread_mutex_unlock(&f->mu);
    }
    free(owner);
    natsMsg_Destroy(m);
}

int gw_feed_create(gw_feed **out, ctl_conn *c)
{
    gw_feed *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        ctl_err(NULL, "out of memory");
        return -1;
    }
    f->next = 1;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    natsStatus s = natsConnection_Subscribe(&f->sub, c->nc, SAGA_SUBJ_EVENTS_ALL, on_event, f);
    /* A burst of orders must not cut the console off: no limit on pending. */
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(f->sub, -1, -1);
    if (s != NATS_OK) {
        ctl_err(NULL, "cannot subscribe to %s: %s", SAGA_SUBJ_EVENTS_ALL, natsStatus_GetText(s));
        gw_feed_destroy(f);
        return -1;
    }
    *out = f;
    return 0;
}

void gw_feed_close(gw_feed *f)
{
    pthread_mutex_lock(&f->mu);
    f->closing = 1;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

void gw_feed_destroy(gw_feed *f)
{
    if (f == NULL)
        return;
    if (f->sub != NULL) {
        natsSubscription_Unsubscribe(f->sub);
        natsSubscription_Destroy(f->sub);
    }
    for (size_t i = 0; i < RING; i++)
        free(f->ring[i]);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

/* Fills st->out with the events st wants, or a keep-alive comment after
 * KEEPALIVE_S without any. -1 once the feed closes. Holds the feed's lock. */
static int next_text(stream *st)
{
    gw_feed *f = st->f;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += KEEPALIVE_S;
    ctl_buf_reset(&st->out);
    st->sent = 0;
    pthread_mutex_lock(&f->mu);
    while (!f->closing && st->want >= f->next)
        if (pthread_cond_timedwait(&f->cv, &f->mu, &until) == ETIMEDOUT)
            break;
    /* A console that fell behind by more than the ring skips what it lost. */
    if (f->next > RING && st->want < f->next - RING)
        st->want = f->next - RING;
    for (; !f->closing && st->want < f->next && st->out.len < SSE_BLOCK; st->want++)
        ctl_buf_puts(&st->out, f->ring[st->want % RING]);
    if (!f->closing && st->out.len == 0)
        ctl_buf_puts(&st->out, ": keep-alive\n\n");
    int closing = f->closing;
    pthread_mutex_unlock(&f->mu);
    return closing || !ctl_buf_ok(&st->out) ? -1 : 0;
}

/* libmicrohttpd asks for the next bytes on the connection's thread. */
static ssize_t read_stream(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream *st = cls;
    (void)pos;
    if (st->sent == st->out.len && next_text(st) != 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = st->out.len - st->sent;
    if (n > max)
        n = max;
    memcpy(buf, st->out.data + st->sent, n);
    st->sent += n;
    return (ssize_t)n;
}

static void free_stream(void *cls)
{
    stream *st = cls;
    ctl_buf_cleanup(&st->out);
    free(st);
}

struct MHD_Response *gw_feed_response(gw_feed *f)
{
    stream *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return NULL;
    st->f = f;
    st->want = 1;
    ctl_buf_init(&st->out);
    /* The first bytes go out at once: browsers report the stream open then. */
    ctl_buf_puts(&st->out, ": saga-gateway events\n\n");
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, SSE_BLOCK,
                                                               read_stream, st, free_stream);
    if (r == NULL) {
        free_stream(st);
        return NULL;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    return r;
}
