/*
 * bench/sink.c: a minimal HTTP/1.1 receiver for bench/outbox: answers every request 200 "ok" with
 * keep-alive, and appends to a file, one line per request, the digits that follow MARKER in its body
 * (the event's number), so that the benchmark can count deliveries, repeats and order of 1,000,000
 * alerts faster than a Python server could.
 *
 *     sink PORT OUT_FILE MARKER      (PORT 0: any; prints the port on stdout, then serves until killed)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_CAP (1 << 20)          /* one request's headers and body at most */

typedef struct conn {
    int fd;
    size_t len;
    char buf[BUF_CAP];
} conn;

static FILE *keys;
static const char *marker;

/* Handles every complete request in c->buf; returns -1 to close the connection. */
static int serve(conn *c)
{
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";
    for (;;) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!end)
            return c->len >= BUF_CAP ? -1 : 0;
        size_t head = (size_t)(end - c->buf) + 4, body = 0;
        for (char *p = c->buf; p < end;) {
            char *nl = memmem(p, (size_t)(end - p) + 2, "\r\n", 2);
            if (!nl)
                break;
            if (strncasecmp(p, "content-length:", 15) == 0)
                body = strtoul(p + 15, NULL, 10);
            p = nl + 2;
        }
        if (head + body > BUF_CAP)
            return -1;
        if (c->len < head + body)
            return 0;
        char *m = memmem(c->buf + head, body, marker, strlen(marker));
        if (m) {
            char *d = m + strlen(marker), *stop = c->buf + head + body;
            int n = 0;
            while (d + n < stop && d[n] >= '0' && d[n] <= '9')
                n++;
            fprintf(keys, "%.*s\n", n, d);
        } else {
            fprintf(keys, "?\n");
        }
        if (write(c->fd, ok, sizeof ok - 1) != (ssize_t)(sizeof ok - 1))
            return -1;
        memmove(c->buf, c->buf + head + body, c->len - head - body);
        c->len -= head + body;
    }
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: sink PORT OUT_FILE MARKER\n");
        return 2;
    }
    marker = argv[3];
    keys = fopen(argv[2], "a");
    if (!keys) {
        perror(argv[2]);
        return 1;
    }
    setvbuf(keys, NULL, _IOLBF, 0);
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 512) || getsockname(ls, (struct sockaddr *)&a, &al)) {
        perror("listen");
        return 1;
    }
    printf("%d\n", ntohs(a.sin_port));
    fflush(stdout);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    for (;;) {
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, -1);
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (!c) {
                int fd = accept(ls, NULL, NULL);
                if (fd < 0)
                    continue;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                c = malloc(sizeof *c);
                if (!c) {
                    close(fd);
                    continue;
                }
                c->fd = fd;
                c->len = 0;
                struct epoll_event ce = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce);
                continue;
            }
            ssize_t got = read(c->fd, c->buf + c->len, BUF_CAP - c->len);
            if (got <= 0 || (c->len += (size_t)got, serve(c) < 0)) {
                close(c->fd);
                free(c);
            }
        }
    }
}
