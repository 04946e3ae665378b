/* thttp.c - A plain HTTP/1.0 GET for the tests (metrics endpoints, Prometheus's API). */
#include "thttp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define BODY_MAX (1 << 20)

char *thttp_get(int port, const char *path)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {.tv_sec = 10};
    char req[256], *buf = NULL;
    size_t n = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return NULL;
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        goto out;
    int len = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (write(fd, req, (size_t)len) != len)
        goto out;
    buf = malloc(BODY_MAX + 1);
    if (buf == NULL)
        goto out;
    for (;;) {
        ssize_t r = read(fd, buf + n, BODY_MAX - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
out:
    close(fd);
    return buf;
}

const char *thttp_body(const char *response)
{
    const char *p = response != NULL ? strstr(response, "\r\n\r\n") : NULL;
    return p != NULL ? p + 4 : NULL;
}
