/* thttp.c - the tests' HTTP client (thttp.h): plain sockets, because what it
 * checks is the server's answer, not an HTTP library. */
#include "thttp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RESPONSE_MAX (1 << 20)
#define GET_TIMEOUT_MS 10000

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Writes all of data; 0 or -1. */
static int send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Sends the request head and body to 127.0.0.1:port and reads the answer until the
 * server closes the connection (or cap bytes came): the malloc'd, NUL-terminated
 * answer, NULL when the connection failed or the deadline passed first. */
static char *exchange(int port, const char *head, const char *body, size_t cap, int timeout_ms)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    long long deadline = now_ms() + timeout_ms;
    size_t got = 0;
    char *raw = malloc(cap + 1);
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok = 0;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (raw == NULL || fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        send_all(fd, head, strlen(head)) != 0 ||
        send_all(fd, body != NULL ? body : "", body != NULL ? strlen(body) : 0) != 0)
        goto out;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        long long left = deadline - now_ms();
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            goto out;
        ssize_t k = recv(fd, raw + got, cap - got, 0);
        if (k < 0)
            goto out;
        got += (size_t)k;
        if (k == 0 || got == cap)
            break;
    }
    raw[got] = '\0';
    ok = 1;
out:
    if (fd >= 0)
        close(fd);
    if (!ok) {
        free(raw);
        raw = NULL;
    }
    return raw;
}

int thttp_request(int port, const char *method, const char *path, const char *headers,
                  const char *body, int timeout_ms, thttp_resp *r)
{
    char req[8192];
    size_t blen = body != NULL ? strlen(body) : 0;
    char *raw = NULL;
    int rc = -1;

    memset(r, 0, sizeof(*r));
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n"
                     "Content-Length: %zu\r\n%s\r\n",
                     method, path, port, blen, headers != NULL ? headers : "");
    if (n < 0 || (size_t)n >= sizeof(req))
        return -1;
    raw = exchange(port, req, body, sizeof(r->head) + sizeof(r->body), timeout_ms);
    char *split = raw != NULL ? strstr(raw, "\r\n\r\n") : NULL;
    if (split == NULL || sscanf(raw, "HTTP/1.%*d %d", &r->status) != 1)
        goto out;
    snprintf(r->head, sizeof(r->head), "%.*s", (int)(split - raw), raw);
    snprintf(r->body, sizeof(r->body), "%s", split + 4);
    rc = r->status;
out:
    free(raw);
    return rc;
}

const char *thttp_header(const thttp_resp *r, const char *name, char *buf, size_t cap)
{
    size_t len = strlen(name);
    buf[0] = '\0';
    for (const char *line = strstr(r->head, "\r\n"); line != NULL;
         line = strstr(line + 2, "\r\n")) {
        const char *h = line + 2;
        if (strncasecmp(h, name, len) == 0 && h[len] == ':') {
            h += len + 1;
            h += strspn(h, " ");
            snprintf(buf, cap, "%.*s", (int)strcspn(h, "\r\n"), h);
            break;
        }
    }
    return buf;
}

char *thttp_get(int port, const char *path)
{
    char req[512];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (n < 0 || (size_t)n >= sizeof(req))
        return NULL;
    return exchange(port, req, NULL, RESPONSE_MAX, GET_TIMEOUT_MS);
}

const char *thttp_body(const char *response)
{
    const char *p = response != NULL ? strstr(response, "\r\n\r\n") : NULL;
    return p != NULL ? p + 4 : NULL;
}
