/* The physical limit for the echo benchmark: a single-threaded epoll echo
 * server in plain C, one read buffer per connection, no allocation per
 * message. Every row of the echo table is also shown as a percentage of it.
 *
 *   echo_server [HOST [PORT]]     (default 127.0.0.1 0)
 *
 * Prints the port it listens on (one line), then serves until killed.
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

struct conn {
    int fd;
    size_t len, off;          /* bytes read but not yet echoed: buf[off:len] */
    unsigned char buf[BUF_SIZE];
};

static int epfd;

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

static void on_readable(struct conn *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->buf, BUF_SIZE, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            drop(c);
            return;
        }
        c->len = (size_t)n;
        c->off = 0;
        int rc = flush(c);
        if (rc < 0) {
            drop(c);
            return;
        }
        if (rc > 0) {             /* stop reading until the peer catches up */
            watch(c, EPOLL_CTL_MOD, EPOLLOUT);
            return;
        }
        if ((size_t)n < BUF_SIZE) /* drained the socket: back to epoll */
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
                    nc->len = nc->off = 0;
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
