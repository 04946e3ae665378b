/* thttp.h - A minimal HTTP client for tests: one request per connection
 * (Connection: close), the whole answer read into memory. For saga-gateway's
 * API (thttp_request) and for metrics endpoints and Prometheus's API (thttp_get). */
#ifndef SAGA_TEST_THTTP_H
#define SAGA_TEST_THTTP_H

#include <stddef.h>

typedef struct thttp_resp {
    int status;           /* 0 when no answer came */
    char head[4096];      /* the status line and the headers */
    char body[64 * 1024]; /* NUL-terminated; cut at the buffer's size */
} thttp_resp;

/* Sends METHOD path to 127.0.0.1:port with the extra header lines headers
 * ("Name: value\r\n"..., may be NULL) and body (may be NULL), waits up to
 * timeout_ms for the whole answer. Returns its status code (also in r), or
 * -1 when the connection failed or no complete answer came. */
int thttp_request(int port, const char *method, const char *path, const char *headers,
                  const char *body, int timeout_ms, thttp_resp *r);

/* The value of header name in r (case-insensitive) into buf, "" when absent. */
const char *thttp_header(const thttp_resp *r, const char *name, char *buf, size_t cap);

/* GET path from 127.0.0.1:port, waiting up to 10 s; the malloc'd response (status
 * line, headers and body, at most 1 MiB), NULL when the connection fails. */
char *thttp_get(int port, const char *path);

/* The body of a response thttp_get returned (after the blank line), or NULL. */
const char *thttp_body(const char *response);

#endif
