/* gateway.h - saga-gateway: the fleet's HTTP front door (the order API) and its
 * web console, one process on libmicrohttpd that talks to the fleet over NATS
 * as sagactl does (its functions, ctl.h). */
#ifndef SAGA_GATEWAY_H
#define SAGA_GATEWAY_H

#include <jansson.h>
#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

#include "ctl.h"

#define GW_BODY_MAX (64 * 1024) /* a request body beyond this is refused (413) */

/* ---- feed.c: the fleet's events as they happen, for /events ------------------ */

typedef struct gw_feed gw_feed;

/* Subscribes to every event (evt.>) on c's connection and keeps the last ones
 * in memory, so that a console that opens late still sees recent orders.
 * Returns 0 with *out set (free with gw_feed_destroy), or -1 after ctl_err. */
int gw_feed_create(gw_feed **out, ctl_conn *c);
/* Wakes every stream waiting for events and makes them end. */
void gw_feed_close(gw_feed *f);
/* Unsubscribes and frees; after gw_feed_close and once no stream runs. Accepts NULL. */
void gw_feed_destroy(gw_feed *f);
/* A server-sent events response that starts with the events kept and goes
 * on with each new one, until the client leaves or gw_feed_close. NULL when
 * out of memory. */
struct MHD_Response *gw_feed_response(gw_feed *f);

/* ---- api.c: the routes ----------------------------------------------------------- */

typedef struct gw_server {
    ctl_conn conn;
    gw_feed *feed;
} gw_server;

/* Answers one complete request (body: its bytes, NUL-terminated, len of
 * them). Runs on the connection's own thread. */
enum MHD_Result gw_route(gw_server *s, struct MHD_Connection *conn, const char *method,
                         const char *url, const char *body, size_t len);

/* ---- www.c (generated from www/): the console's files ----------------------------- */

typedef struct gw_file {
    const char *path; /* "/index.html" */
    const char *type; /* its Content-Type */
    const unsigned char *data;
    size_t len;
} gw_file;

/* The file served at path ("/" is /index.html), or NULL. */
const gw_file *gw_www_find(const char *path);

#endif
