/* thttp.h - A plain HTTP/1.0 GET for the tests (metrics endpoints, Prometheus's API). */
#ifndef SAGA_TEST_THTTP_H
#define SAGA_TEST_THTTP_H

/* GET path from 127.0.0.1:port; the malloc'd response (status line,
 * headers and body, at most 1 MiB), NULL when the connection fails. */
char *thttp_get(int port, const char *path);

/* The body of a response thttp_get returned (after the blank line), or NULL. */
const char *thttp_body(const char *response);

#endif
