/* Load generator for the UDP echo benchmark: N connected UDP sockets over
 * epoll, one datagram in flight per socket, every reply verified.
 *
 *   udpgen HOST PORT SOCKETS SIZE DURATION WARMUP [MESSAGES]
 *
 * Runs WARMUP seconds unmeasured, then DURATION seconds measured, and prints
 * one JSON object on stdout. With MESSAGES it stops as soon as that many round
 * trips are done (warmup included; exit 3 if the time runs out first) and
 * waits RESEND_SLOW_MS before sending a datagram again: the mode of
 * bench/callgrind_echo.py, whose server runs ~50x slower under valgrind and
 * must see a known number of datagrams.
 *
 *   {"messages": ..., "messages_total": ..., "seconds": ..., "msgs_per_s": ...,
 *    "p50_us": ..., "p99_us": ..., "errors": ..., "resent": ...}
 *
 * Datagram m of socket s carries s and m in its first 16 bytes and a pattern
 * seeded by both after them; a reply must be exactly the datagram in flight
 * (a stale, duplicated or corrupted one counts as an error). UDP may drop a
 * datagram: one that got no reply within RESEND_MS is sent again (counted in
 * "resent"; its round trip is not counted, a late reply to it is "stale").
 *
 * Exit status: 0 ok, 1 errors (unexpected replies, socket errors), 64 usage.
 * Build: gcc -O2 -o udpgen udpgen.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loadgen_common.h"

#define MAX_SIZE 65507
#define MAX_EVENTS 64
#define RESEND_MS 200
#define RESEND_SLOW_MS 5000

struct sock {
    int fd;
    uint64_t id, seq, sent_ns;
};

static unsigned char *out_buf, *in_buf;
static size_t size;

/* The datagram (id, seq) into out_buf. */
static void fill(uint64_t id, uint64_t seq)
{
    uint64_t x = id * 0x9E3779B97F4A7C15ull ^ (seq + 1) * 0xBF58476D1CE4E5B9ull;
    size_t i;
    for (i = 0; i < size; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        out_buf[i] = (unsigned char)x;
    }
    if (size >= 16) {
        memcpy(out_buf, &id, 8);
        memcpy(out_buf + 8, &seq, 8);
    }
}

static int send_current(struct sock *s)
{
    fill(s->id, s->seq);
    s->sent_ns = now_ns();
    if (send(s->fd, out_buf, size, 0) != (ssize_t)size)
        return errno == EAGAIN ? 0 : -1;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 7 && argc != 8) {
        fprintf(stderr, "usage: udpgen HOST PORT SOCKETS SIZE DURATION WARMUP [MESSAGES]\n");
        return 64;
    }
    const char *host = argv[1], *port = argv[2];
    int n = atoi(argv[3]);
    size = (size_t)strtoull(argv[4], NULL, 10);
    double duration = atof(argv[5]), warmup = atof(argv[6]);
    uint64_t want = argc == 8 ? strtoull(argv[7], NULL, 10) : 0;
    uint64_t resend_ns = (uint64_t)(want ? RESEND_SLOW_MS : RESEND_MS) * 1000000u;
    if (n < 1 || size < 1 || size > MAX_SIZE || duration <= 0 || warmup < 0) {
        fprintf(stderr, "udpgen: bad arguments\n");
        return 64;
    }
    struct addrinfo hints = {0}, *ai;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    if (getaddrinfo(host, port, &hints, &ai) != 0) {
        fprintf(stderr, "udpgen: cannot resolve %s:%s\n", host, port);
        return 64;
    }
    out_buf = malloc(size);
    in_buf = malloc(MAX_SIZE + 1);
    struct sock *socks = calloc((size_t)n, sizeof(*socks));
    int epfd = epoll_create1(0);
    if (!out_buf || !in_buf || !socks || epfd < 0)
        die("setup");
    for (int i = 0; i < n; i++) {
        int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
            die("socket/connect");
        socks[i].fd = fd;
        socks[i].id = (uint64_t)i;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &socks[i]};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
            die("epoll_ctl");
    }
    freeaddrinfo(ai);

    size_t cap = 1 << 20;
    uint64_t *lat = malloc(cap * sizeof(uint64_t)), nlat = 0;
    uint64_t messages = 0, total = 0, errors = 0, resent = 0, stale = 0;
    uint64_t start = now_ns();
    uint64_t measure_from = start + (uint64_t)(warmup * 1e9);
    uint64_t end = measure_from + (uint64_t)(duration * 1e9);
    for (int i = 0; i < n; i++)
        if (send_current(&socks[i]) < 0)
            errors++;
    struct epoll_event events[MAX_EVENTS];
    uint64_t t = start;
    while (t < end && !(want && total >= want)) {
        int k = epoll_wait(epfd, events, MAX_EVENTS, 10);
        if (k < 0 && errno != EINTR)
            die("epoll_wait");
        t = now_ns();
        for (int e = 0; e < k && !(want && total >= want); e++) {
            struct sock *s = events[e].data.ptr;
            for (;;) {
                ssize_t got = recv(s->fd, in_buf, MAX_SIZE + 1, 0);
                if (got < 0) {
                    if (errno != EAGAIN)
                        errors++;
                    break;
                }
                /* The reply's own time: one sent after the batch's epoll_wait
                 * (answered within this loop) is later than that wait's t. */
                t = now_ns();
                fill(s->id, s->seq);
                if ((size_t)got != size || memcmp(in_buf, out_buf, size) != 0) {
                    uint64_t id, seq;
                    if (size >= 16 && (size_t)got == size) {
                        memcpy(&id, in_buf, 8);
                        memcpy(&seq, in_buf + 8, 8);
                        if (id == s->id && seq < s->seq) {
                            stale++;    /* the late reply to a datagram sent again */
                            continue;
                        }
                    }
                    errors++;           /* duplicated, misdirected or corrupted */
                    continue;
                }
                total++;
                if (want && total >= want)
                    break;      /* done: no more datagrams */
                if (s->sent_ns >= measure_from && t < end) {
                    messages++;
                    if (nlat == cap) {
                        cap *= 2;
                        lat = realloc(lat, cap * sizeof(uint64_t));
                        if (!lat)
                            die("realloc");
                    }
                    lat[nlat++] = t - s->sent_ns;
                }
                s->seq++;
                if (send_current(s) < 0)
                    errors++;
            }
        }
        for (int i = 0; i < n; i++) {
            /* sent_ns may be later than t (sent while reading this batch):
             * compare, never subtract into a wrapped unsigned. */
            if (t > socks[i].sent_ns && t - socks[i].sent_ns > resend_ns) {
                resent++;
                socks[i].seq++;
                if (send_current(&socks[i]) < 0)
                    errors++;
            }
        }
    }
    double seconds = duration;
    qsort(lat, nlat, sizeof(uint64_t), cmp_u64);
    printf("{\"messages\": %llu, \"messages_total\": %llu, \"seconds\": %.3f, "
           "\"msgs_per_s\": %.1f, \"p50_us\": %.1f, \"p99_us\": %.1f, \"errors\": %llu, "
           "\"resent\": %llu, \"stale\": %llu, \"sockets\": %d, \"size\": %zu}\n",
           (unsigned long long)messages, (unsigned long long)total, seconds,
           (double)messages / seconds, percentile_us(lat, nlat, 0.5),
           percentile_us(lat, nlat, 0.99), (unsigned long long)errors,
           (unsigned long long)resent, (unsigned long long)stale, n, size);
    if (errors)
        return 1;
    if (want && total < want)
        return short_of_count("udpgen", total, want, "round trips", duration + warmup);
    return 0;
}
