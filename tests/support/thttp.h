/* thttp.h - A minimal HTTP/1.1 client for tests of saga-gateway: one request per
 * connection (Connection: close), the whole answer read into memory. */
#ifndef SAGA_TEST_THTTP_H
#define SAGA_TEST_THTTP_H

#include <stddef.h>

typedef struct thttp_resp {
    int status;          /* 0 when no answer came */
    char head[4096];     /* the status line and the headers */
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

#endif
