/* Load generator for the echo and HTTP benchmarks: N connections over epoll,
 * one message in flight per connection (pipelining 1), every byte of every
 * reply verified.
 *
 *   loadgen [--http] [--tls] HOST PORT CONNECTIONS SIZE DURATION WARMUP [MESSAGES]
 *
 * Runs WARMUP seconds unmeasured, then DURATION seconds measured, and prints
 * one JSON object on stdout:
 *
 *   {"messages": ..., "messages_total": ..., "seconds": ..., "msgs_per_s": ...,
 *    "p50_us": ..., "p99_us": ..., "errors": ..., ...}
 *
 * messages counts the round trips completed inside the measured window,
 * messages_total every one since the first connect (warmup included), which
 * is what a server's CPU time over the whole run is divided by.
 *
 * With MESSAGES > 0 the run stops as soon as that many measured round trips
 * are done, and DURATION becomes the time limit (exit 3 if it is reached
 * first). Message m of connection c is the slice at offset (m * 97) % 251 of
 * a pseudo-random pattern seeded by c, so a byte echoed to the wrong
 * connection, twice, late or out of order does not match.
 *
 * With --http each message is a fixed HTTP/1.1 keep-alive GET and its reply
 * must be exactly HTTP_RESPONSE below (the response of bench/servers.py
 * --mode http and echo_server --http); SIZE is ignored (pass 0) and the
 * figures count requests. In both modes a reply that brings bytes beyond the
 * message in flight is a mismatch too: with one message in flight a correct
 * server has nothing more to send.
 *
 * With --tls every connection is a TLS client session (OpenSSL, handshake
 * before the clock starts, no certificate verification: the servers use the
 * test certificate), and the same messages travel inside it.
 *
 * Exit status: 0 ok, 1 connection errors (reset, early EOF), 2 an echoed byte
 * differs from what was sent, 3 MESSAGES not reached in time, 64 bad usage.
 * Build: gcc -O2 -o loadgen loadgen.c -lssl -lcrypto (or -DNO_TLS without OpenSSL)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#ifndef NO_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>
#endif

#include "loadgen_common.h"

#define PAT_SPAN 251          /* prime: message offsets cycle through all of it */
#define PAT_STRIDE 97
#define RBUF_SIZE (256 * 1024)
#define MAX_EVENTS 64

/* No Date header: the reply must be the same bytes every time to be verified. */
#define HTTP_RESPONSE                                                       \
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n" \
    "\r\nHello, World!"

struct conn {
    int fd;
#ifndef NO_TLS
    SSL *ssl;                 /* --tls: the TLS session over fd */
#endif
    int id;
    int dead;
    int want_out;             /* EPOLLOUT armed: the message is not all sent */
    unsigned char *pattern;   /* echo: size + PAT_SPAN pseudo-random bytes */
    const unsigned char *cur; /* the message in flight (echo: pattern + offset) */
    const unsigned char *expect; /* the reply it must get back */
    size_t sent, recvd;
    uint64_t msg;             /* index of the message in flight */
    uint64_t t_start;         /* when its first byte was sent, ns */
};

static size_t send_len, recv_len; /* message and reply lengths */
static int http;
static int tls;               /* --tls: every connection speaks TLS (no verification) */
#ifndef NO_TLS
static SSL_CTX *tls_ctx;
#endif
static unsigned char *http_request;
static int epfd;
static uint64_t errors;
static int alive;

/* send()/recv() on the connection, through its TLS session with --tls: the
 * same return convention (-1 with errno EAGAIN when the session waits for the
 * socket, 0 for the peer's close). */
static ssize_t conn_send(struct conn *c, const void *buf, size_t n)
{
#ifndef NO_TLS
    if (c->ssl) {
        int r = SSL_write(c->ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n);
        if (r > 0)
            return r;
        int e = SSL_get_error(c->ssl, r);
        errno = (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) ? EAGAIN : EPROTO;
        return -1;
    }
#endif
    return send(c->fd, buf, n, MSG_NOSIGNAL);
}

static ssize_t conn_recv(struct conn *c, void *buf, size_t n)
{
#ifndef NO_TLS
    if (c->ssl) {
        int r = SSL_read(c->ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n);
        if (r > 0)
            return r;
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_ZERO_RETURN)
            return 0;
        errno = (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) ? EAGAIN : EPROTO;
        return -1;
    }
#endif
    return recv(c->fd, buf, n, 0);
}

/* Plaintext the TLS session already holds: epoll will not report it. */
static int conn_pending(struct conn *c)
{
#ifndef NO_TLS
    return c->ssl && SSL_pending(c->ssl) > 0;
#else
    (void)c;
    return 0;
#endif
}

static void fill_pattern(unsigned char *p, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (unsigned char)(x >> 24);
    }
}

static void set_events(struct conn *c, int want_out)
{
    if (c->want_out == want_out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        die("epoll_ctl");
    c->want_out = want_out;
}

static void kill_conn(struct conn *c, const char *why, int err)
{
    if (c->dead)
        return;
    fprintf(stderr, "loadgen: connection %d, message %llu (%zu/%zu bytes back): %s%s%s\n",
            c->id, (unsigned long long)c->msg, c->recvd, recv_len, why,
            err ? ": " : "", err ? strerror(err) : "");
    errors++;
    alive--;
    c->dead = 1;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
}

/* Send what the socket takes of the message in flight. */
static void pump_send(struct conn *c)
{
    while (c->sent < send_len) {
        ssize_t n = conn_send(c, c->cur + c->sent, send_len - c->sent);
        if (n > 0) {
            c->sent += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_events(c, 1);
            return;
        } else {
            kill_conn(c, "send failed", n < 0 ? errno : 0);
            return;
        }
    }
    set_events(c, 0);
}

static void start_message(struct conn *c)
{
    if (http) {
        c->cur = http_request;
        c->expect = (const unsigned char *)HTTP_RESPONSE;
    } else {
        c->cur = c->expect = c->pattern + (c->msg * PAT_STRIDE) % PAT_SPAN;
    }
    c->sent = c->recvd = 0;
    c->t_start = now_ns();
    pump_send(c);
}

static int connect_to(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "loadgen: %s:%s: %s\n", host, port, gai_strerror(rc));
        exit(1);
    }
    int fd = -1;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* --tls: a blocking handshake on the fresh socket (before the clock starts). */
static void start_tls(struct conn *c, const char *host)
{
#ifndef NO_TLS
    c->ssl = SSL_new(tls_ctx);
    if (!c->ssl || !SSL_set_fd(c->ssl, c->fd))
        die("SSL_new");
    SSL_set_tlsext_host_name(c->ssl, host);
    if (SSL_connect(c->ssl) != 1) {
        ERR_print_errors_fp(stderr);
        fprintf(stderr, "loadgen: TLS handshake failed on connection %d\n", c->id);
        exit(1);
    }
#else
    (void)c;
    (void)host;
    fprintf(stderr, "loadgen: built without OpenSSL, no --tls\n");
    exit(64);
#endif
}

static unsigned char *make_request(const char *host, const char *port, size_t *len)
{
    const char *fmt = "GET /plaintext HTTP/1.1\r\nHost: %s:%s\r\n"
                      "Connection: keep-alive\r\n\r\n";
    int n = snprintf(NULL, 0, fmt, host, port);
    unsigned char *req = malloc((size_t)n + 1);
    if (!req)
        die("malloc");
    snprintf((char *)req, (size_t)n + 1, fmt, host, port);
    *len = (size_t)n;
    return req;
}

int main(int argc, char **argv)
{
    for (;;) {
        if (argc > 1 && strcmp(argv[1], "--http") == 0)
            http = 1;
        else if (argc > 1 && strcmp(argv[1], "--tls") == 0)
            tls = 1;
        else
            break;
        argv++;
        argc--;
    }
    if (argc < 7 || argc > 8) {
        fprintf(stderr,
                "usage: loadgen [--http] [--tls] HOST PORT CONNECTIONS SIZE DURATION WARMUP [MESSAGES]\n");
        return 64;
    }
    const char *host = argv[1], *port = argv[2];
    int nconn = atoi(argv[3]);
    size_t size = (size_t)strtoull(argv[4], NULL, 10);
    double duration = atof(argv[5]), warmup = atof(argv[6]);
    uint64_t want = argc == 8 ? strtoull(argv[7], NULL, 10) : 0;
    if (nconn < 1 || (!http && size < 1) || duration <= 0 || warmup < 0) {
        fprintf(stderr, "loadgen: need CONNECTIONS >= 1, SIZE >= 1 (unless --http), "
                        "DURATION > 0, WARMUP >= 0\n");
        return 64;
    }
    if (http) {
        http_request = make_request(host, port, &send_len);
        recv_len = sizeof HTTP_RESPONSE - 1;
    } else {
        send_len = recv_len = size;
    }
    signal(SIGPIPE, SIG_IGN);
#ifndef NO_TLS
    if (tls) {
        /* A load generator, not a client to trust: no certificate checks. */
        tls_ctx = SSL_CTX_new(TLS_client_method());
        if (!tls_ctx)
            die("SSL_CTX_new");
        SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    }
#endif

    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die("epoll_create1");
    struct conn *conns = calloc((size_t)nconn, sizeof *conns);
    unsigned char *rbuf = malloc(RBUF_SIZE);
    uint64_t lat_cap = 1 << 16, lat_n = 0;
    uint64_t *lat = malloc(lat_cap * sizeof *lat);
    if (!conns || !rbuf || !lat)
        die("malloc");

    for (int i = 0; i < nconn; i++) {
        struct conn *c = &conns[i];
        c->id = i;
        if (!http) {
            c->pattern = malloc(size + PAT_SPAN);
            if (!c->pattern)
                die("malloc");
            fill_pattern(c->pattern, size + PAT_SPAN, (uint64_t)i + 1);
        }
        c->fd = connect_to(host, port);
        if (tls)
            start_tls(c, host);
        fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
            die("epoll_ctl");
    }

    uint64_t t0 = now_ns();
    uint64_t measure_start = t0 + (uint64_t)(warmup * 1e9);
    uint64_t deadline = measure_start + (uint64_t)(duration * 1e9);
    uint64_t total = 0, measured = 0, t_stop = 0;
    int mismatch = 0, stopping = 0;
    alive = nconn;

    for (int i = 0; i < nconn; i++)
        start_message(&conns[i]);

    struct epoll_event events[MAX_EVENTS];
    while (!stopping && alive > 0) {
        uint64_t now = now_ns();
        if (now >= deadline)
            break;
        int timeout_ms = (int)((deadline - now) / 1000000u) + 1;
        int nev = epoll_wait(epfd, events, MAX_EVENTS, timeout_ms);
        if (nev < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int e = 0; e < nev && !stopping; e++) {
            struct conn *c = events[e].data.ptr;
            if (c->dead)
                continue;
            if (events[e].events & EPOLLOUT)
                pump_send(c);
            if (c->dead || !(events[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                continue;
        read_more:;
            /* Read more than the reply's rest on purpose: surplus bytes are an error. */
            size_t left = recv_len - c->recvd;
            ssize_t n = conn_recv(c, rbuf, RBUF_SIZE);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                continue;
            if (n <= 0) {
                kill_conn(c, n == 0 ? "server closed the connection" : "recv failed",
                          n < 0 ? errno : 0);
                continue;
            }
            size_t take = (size_t)n < left ? (size_t)n : left;
            if (memcmp(rbuf, c->expect + c->recvd, take) != 0) {
                size_t i = 0;
                while (rbuf[i] == c->expect[c->recvd + i])
                    i++;
                fprintf(stderr,
                        "loadgen: MISMATCH on connection %d, message %llu, byte %zu of %zu: "
                        "got 0x%02x, expected 0x%02x\n",
                        c->id, (unsigned long long)c->msg, c->recvd + i, recv_len, rbuf[i],
                        c->expect[c->recvd + i]);
                mismatch = 1;
                stopping = 1;
                break;
            }
            if ((size_t)n > left) {
                fprintf(stderr,
                        "loadgen: MISMATCH on connection %d, message %llu: %zu bytes more than "
                        "the %zu-byte reply\n",
                        c->id, (unsigned long long)c->msg, (size_t)n - left, recv_len);
                mismatch = 1;
                stopping = 1;
                break;
            }
            c->recvd += (size_t)n;
            if (c->recvd < recv_len) {
                if (conn_pending(c))
                    goto read_more;
                continue;
            }
            /* A whole message is back. */
            uint64_t t = now_ns();
            total++;
            if (c->t_start >= measure_start) {
                if (lat_n == lat_cap) {
                    lat_cap *= 2;
                    lat = realloc(lat, lat_cap * sizeof *lat);
                    if (!lat)
                        die("realloc");
                }
                lat[lat_n++] = t - c->t_start;
                measured++;
                if (want && measured >= want) {
                    stopping = 1;
                    break;
                }
            }
            c->msg++;
            start_message(c);
        }
    }
    t_stop = now_ns();

    uint64_t window_start = measure_start < t_stop ? measure_start : t_stop;
    double seconds = (double)(t_stop - window_start) / 1e9;
    qsort(lat, lat_n, sizeof *lat, cmp_u64);
    printf("{\"mode\": \"%s\", \"connections\": %d, \"size\": %zu, \"request_bytes\": %zu, "
           "\"messages\": %llu, \"messages_total\": %llu, "
           "\"seconds\": %.6f, \"msgs_per_s\": %.1f, \"p50_us\": %.1f, \"p99_us\": %.1f, "
           "\"max_us\": %.1f, \"errors\": %llu, \"mismatch\": %s}\n",
           http ? "http" : "echo", nconn, recv_len, send_len, (unsigned long long)measured, (unsigned long long)total, seconds,
           seconds > 0 ? (double)measured / seconds : 0.0, percentile_us(lat, lat_n, 0.50),
           percentile_us(lat, lat_n, 0.99), lat_n ? (double)lat[lat_n - 1] / 1000.0 : 0.0,
           (unsigned long long)errors, mismatch ? "true" : "false");
    fflush(stdout);

    if (mismatch)
        return 2;
    if (errors)
        return 1;
    if (want && measured < want)
        return short_of_count("loadgen", measured, want, "messages", duration + warmup);
    if (measured == 0) {
        fprintf(stderr, "loadgen: no message completed in the measured window\n");
        return 1;
    }
    return 0;
}
