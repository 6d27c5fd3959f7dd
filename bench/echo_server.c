/* The physical limit for the echo and HTTP benchmarks: a single-threaded
 * epoll server in plain C, one read buffer per connection, no allocation per
 * message. Every row of the benchmark tables is also shown as a percentage
 * of it.
 *
 *   echo_server [--http] [HOST [PORT]]     (default 127.0.0.1 0)
 *
 * Prints the port it listens on (one line), then serves until killed. With
 * --http it is an HTTP/1.1 keep-alive server instead of an echo server: every
 * request head (up to its blank line; GET only, no body) gets the same fixed
 * response as bench/servers.py --mode http, pipelined requests in order.
 * Build: gcc -O2 -o echo_server echo_server.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE (256 * 1024)
#define MAX_EVENTS 64
#define IN_SIZE (8 * 1024)    /* --http: the longest request head accepted */

#define HTTP_RESPONSE                                                       \
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n" \
    "\r\nHello, World!"
#define RESPONSE_LEN (sizeof HTTP_RESPONSE - 1)
#define BAD_REQUEST "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

/* The answers to every request a full input buffer can hold (each head is at
 * least its 4-byte blank line) fit in the output buffer, so one read is
 * always answered in full and nothing is left to parse later. */
_Static_assert(IN_SIZE / 4 * RESPONSE_LEN + sizeof BAD_REQUEST <= BUF_SIZE,
               "output buffer too small");

struct conn {
    int fd;
    size_t len, off;          /* bytes not yet sent: buf[off:len] */
    unsigned char buf[BUF_SIZE];
    size_t in_len;            /* --http: a partial request head, in[0:in_len] */
    unsigned char in[IN_SIZE];
};

static int epfd;
static int http;

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void drop(struct conn *c)
{
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
}

static void watch(struct conn *c, int op, unsigned events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(epfd, op, c->fd, &ev) < 0)
        die("epoll_ctl");
}

/* Echo what is pending; returns 0 when all is sent, 1 when the socket is
 * full (caller waits for EPOLLOUT), -1 when the connection is gone. */
static int flush(struct conn *c)
{
    while (c->off < c->len) {
        ssize_t n = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
        if (n > 0)
            c->off += (size_t)n;
        else if (n < 0 && errno == EINTR)
            continue;
        else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 1;
        else
            return -1;
    }
    c->off = c->len = 0;
    return 0;
}

static int bad_request(struct conn *c)
{
    memcpy(c->buf + c->len, BAD_REQUEST, sizeof BAD_REQUEST - 1);
    c->len += sizeof BAD_REQUEST - 1;
    return -1;
}

/* Queue the response to every complete request head in c->in and keep a
 * partial one for the next read; a request this server does not take (not a
 * GET, or a head longer than IN_SIZE) queues a 400 and returns -1. */
static int answer_http(struct conn *c)
{
    size_t start = 0;
    unsigned char *end;
    c->len = c->off = 0;
    while ((end = memmem(c->in + start, c->in_len - start, "\r\n\r\n", 4)) != NULL) {
        if (memcmp(c->in + start, "GET ", 4) != 0)
            return bad_request(c);
        memcpy(c->buf + c->len, HTTP_RESPONSE, RESPONSE_LEN);
        c->len += RESPONSE_LEN;
        start = (size_t)(end - c->in) + 4;
    }
    memmove(c->in, c->in + start, c->in_len - start);
    c->in_len -= start;
    return c->in_len == IN_SIZE ? bad_request(c) : 0;
}

static void on_readable(struct conn *c)
{
    for (;;) {
        unsigned char *into = http ? c->in + c->in_len : c->buf;
        size_t room = http ? IN_SIZE - c->in_len : BUF_SIZE;
        ssize_t n = recv(c->fd, into, room, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            drop(c);
            return;
        }
        if (!http) {
            c->len = (size_t)n;
            c->off = 0;
        } else {
            c->in_len += (size_t)n;
            if (answer_http(c) < 0) {
                flush(c); /* best effort: the connection goes whatever it sends */
                drop(c);
                return;
            }
        }
        int rc = flush(c);
        if (rc < 0) {
            drop(c);
            return;
        }
        if (rc > 0) {             /* stop reading until the peer catches up */
            watch(c, EPOLL_CTL_MOD, EPOLLOUT);
            return;
        }
        if ((size_t)n < room)     /* drained the socket: back to epoll */
            return;
    }
}

static void on_writable(struct conn *c)
{
    int rc = flush(c);
    if (rc < 0)
        drop(c);
    else if (rc == 0)
        watch(c, EPOLL_CTL_MOD, EPOLLIN);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--http") == 0) {
        http = 1;
        argv++;
        argc--;
    }
    const char *host = argc > 1 ? argv[1] : "127.0.0.1";
    const char *port = argc > 2 ? argv[2] : "0";
    signal(SIGPIPE, SIG_IGN);

    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "echo_server: %s:%s: %s\n", host, port, gai_strerror(rc));
        return 1;
    }
    int lfd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        die("socket");
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, ai->ai_addr, ai->ai_addrlen) < 0)
        die("bind");
    freeaddrinfo(ai);
    if (listen(lfd, 128) < 0)
        die("listen");

    struct sockaddr_storage sa;
    socklen_t salen = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &salen);
    int bound = sa.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&sa)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&sa)->sin_port);
    printf("%d\n", bound);
    fflush(stdout);

    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die("epoll_create1");
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev) < 0)
        die("epoll_ctl");

    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(epfd, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (c == NULL) {
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct conn *nc = malloc(sizeof *nc);
                    if (!nc)
                        die("malloc");
                    nc->fd = fd;
                    nc->len = nc->off = nc->in_len = 0;
                    watch(nc, EPOLL_CTL_ADD, EPOLLIN);
                }
                continue;
            }
            if (c->len > c->off)
                on_writable(c);
            else
                on_readable(c);
        }
    }
}
