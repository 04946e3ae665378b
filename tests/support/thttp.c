/* thttp.c - the tests' HTTP client (thttp.h): plain sockets, because what it
 * checks is the gateway's answer, not an HTTP library. */
#include "thttp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

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

int thttp_request(int port, const char *method, const char *path, const char *headers,
                  const char *body, int timeout_ms, thttp_resp *r)
{
    char raw[sizeof(r->head) + sizeof(r->body) + 1];
    char req[8192];
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    size_t got = 0, blen = body != NULL ? strlen(body) : 0;
    long long deadline = now_ms() + timeout_ms;
    int fd = socket(AF_INET, SOCK_STREAM, 0), rc = -1;

    memset(r, 0, sizeof(*r));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        goto out;
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n"
                     "Content-Length: %zu\r\n%s\r\n",
                     method, path, port, blen, headers != NULL ? headers : "");
    if (n < 0 || (size_t)n >= sizeof(req) || send_all(fd, req, (size_t)n) != 0 ||
        send_all(fd, body != NULL ? body : "", blen) != 0)
        goto out;
    /* Connection: close: the answer ends where the stream does. */
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        long long left = deadline - now_ms();
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            goto out;
        ssize_t k = recv(fd, raw + got, sizeof(raw) - 1 - got, 0);
        if (k < 0)
            goto out;
        if (k == 0 || got + (size_t)k == sizeof(raw) - 1) {
            got += (size_t)k;
            break;
        }
        got += (size_t)k;
    }
    raw[got] = '\0';
    char *split = strstr(raw, "\r\n\r\n");
    if (split == NULL || sscanf(raw, "HTTP/1.%*d %d", &r->status) != 1)
        goto out;
    snprintf(r->head, sizeof(r->head), "%.*s", (int)(split - raw), raw);
    snprintf(r->body, sizeof(r->body), "%s", split + 4);
    rc = r->status;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

const char *thttp_header(const thttp_resp *r, const char *name, char *buf, size_t cap)
{
    size_t len = strlen(name);
    buf[0] = '\0';
    for (const char *line = strstr(r->head, "\r\n"); line != NULL; line = strstr(line + 2, "\r\n")) {
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
