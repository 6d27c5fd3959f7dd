/* Thin portability layer under the Cython core.
 *
 * Everything platform-specific the core needs sits here so the .pyx files stay
 * free of #ifdefs: the monotonic clock, epoll (Linux only; elsewhere the
 * poller falls back to Python's selectors), and the wake-up fd that
 * call_soon_threadsafe() writes to.
 */
#ifndef FASTLOOP_SYS_H
#define FASTLOOP_SYS_H

#include <errno.h>
#include <stdlib.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stddef.h>

/* Python ignores SIGPIPE, so this only matters when embedded; macOS lacks the
 * flag (it uses SO_NOSIGPIPE) and Python's own send() passes no flag either. */
#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

#ifdef __linux__
#include <sys/epoll.h>
#include <sys/eventfd.h>
#define FL_HAVE_EPOLL 1
#else
#define FL_HAVE_EPOLL 0
/* Stand-ins so the Cython module compiles; never called when FL_HAVE_EPOLL=0. */
struct epoll_event { uint32_t events; union { int fd; uint64_t u64; } data; };
#define EPOLLIN 0x001
#define EPOLLOUT 0x004
#define EPOLLERR 0x008
#define EPOLLHUP 0x010
#define EPOLLONESHOT (1u << 30)
#define EPOLL_CTL_ADD 1
#define EPOLL_CTL_DEL 2
#define EPOLL_CTL_MOD 3
#define EPOLL_CLOEXEC 0
static inline int epoll_create1(int f) { (void)f; errno = ENOSYS; return -1; }
static inline int epoll_ctl(int e, int o, int fd, struct epoll_event *ev)
{ (void)e; (void)o; (void)fd; (void)ev; errno = ENOSYS; return -1; }
static inline int epoll_wait(int e, struct epoll_event *ev, int n, int t)
{ (void)e; (void)ev; (void)n; (void)t; errno = ENOSYS; return -1; }
#endif

/* Set by setup.py for FASTLOOP_DEBUG=1 builds; reported by `python -m fastloop info`. */
#ifdef FASTLOOP_DEBUG
#define FL_DEBUG_BUILD 1
#else
#define FL_DEBUG_BUILD 0
#endif

/* time.monotonic() on Linux is CLOCK_MONOTONIC; using the same clock keeps
 * loop.time() comparable with it. Elsewhere the loop calls time.monotonic(). */
#if defined(__linux__) || defined(__FreeBSD__)
#define FL_HAVE_MONOTONIC 1
static inline double fl_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
#else
#define FL_HAVE_MONOTONIC 0
static inline double fl_monotonic(void) { return 0.0; }
#endif

/* FL_METRICS=0 (setup.py: FASTLOOP_NO_METRICS=1) compiles the always-on loop
 * metrics out; only bench/metrics_overhead.py builds that, to measure them. */
#ifndef FL_METRICS
#define FL_METRICS 1
#endif

/* A clock that costs a few ns to read (no syscall, no TSC scaling): what the
 * always-on loop metrics time with. Linux: CLOCK_MONOTONIC_COARSE (one tick,
 * typically 1-4 ms). Elsewhere: the ordinary monotonic clock. */
#ifdef CLOCK_MONOTONIC_COARSE
static inline double fl_coarse_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
static inline double fl_coarse_resolution(void)
{
    struct timespec ts;
    if (clock_getres(CLOCK_MONOTONIC_COARSE, &ts) < 0)
        return 0.004;
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
#else
static inline double fl_coarse_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
static inline double fl_coarse_resolution(void) { return 1e-6; }
#endif

/* Wake-up channel: an eventfd on Linux (one fd, 8-byte counter), a pipe elsewhere. */
static inline int fl_wakeup_open(int *rfd, int *wfd)
{
#ifdef __linux__
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0)
        return -1;
    *rfd = *wfd = fd;
    return 0;
#else
    int p[2];
    if (pipe(p) < 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        fcntl(p[i], F_SETFL, fcntl(p[i], F_GETFL) | O_NONBLOCK);
        fcntl(p[i], F_SETFD, FD_CLOEXEC);
    }
    *rfd = p[0];
    *wfd = p[1];
    return 0;
#endif
}

/* A full pipe or an eventfd at its maximum already means "wake up": EAGAIN is success. */
static inline int fl_wakeup_write(int wfd)
{
    uint64_t one = 1;
    ssize_t n;
    do {
#ifdef __linux__
        n = write(wfd, &one, sizeof(one));
#else
        n = write(wfd, &one, 1);
#endif
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN)
        return -1;
    return 0;
}

static inline void fl_wakeup_drain(int rfd)
{
    char buf[64];
    ssize_t n;
    do {
        n = read(rfd, buf, sizeof(buf));
    } while (n > 0 || (n < 0 && errno == EINTR));
}

/* The server accept loop (_accept.pyx): accept4(2) hands back the connection
 * already non-blocking and close-on-exec, so the socket object built around it
 * needs no fcntl/ioctl. Returns the new fd, or -errno (read before anything
 * else can touch errno). Linux only; elsewhere the Python accept loop runs. */
#ifdef __linux__
#define FL_HAVE_ACCEPT4 1
#define FL_SOCK_NONBLOCK SOCK_NONBLOCK
static inline int fl_accept4(int fd, struct sockaddr *addr, socklen_t *len)
{
    int conn = accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    return conn < 0 ? -errno : conn;
}
#else
#define FL_HAVE_ACCEPT4 0
#define FL_SOCK_NONBLOCK 0
static inline int fl_accept4(int fd, struct sockaddr *addr, socklen_t *len)
{ (void)fd; (void)addr; (void)len; return -ENOSYS; }
#endif

/* A hint to start loading the next object to run while this one runs:
 * queued handles (timers above all, popped in deadline order, not in the
 * order they were allocated) are often no longer in cache. */
#if defined(__GNUC__) || defined(__clang__)
#define fl_prefetch(p) __builtin_prefetch(p)
#else
#define fl_prefetch(p) ((void)(p))
#endif

/* What the cyclic GC's visitors read and write first: the GC header in
 * front of the object (PyGC_Head, two words on every supported CPython; its
 * definition is internal) and the object's type. */
#define fl_prefetch_gc(p) \
    (fl_prefetch((const char *)(p) - 16), fl_prefetch((const char *)(p) + 15))

/* glibc serves a block at or above its mmap threshold (128 KiB at start) by
 * mmap, and when such a block is freed whole it raises that threshold to the
 * block's size and its heap-trim threshold to twice that: the state a program
 * reaches after its first large free. The transports' reads never free a
 * large block whole (each bytes object is sized to the data), so a server
 * whose only large objects are its 64-128 KiB reads would never reach it, and
 * glibc would trim the top of the heap after each freed read and fault the
 * pages back in on the next (22 faults per 100 KiB echo message). Freeing one
 * large block, once, when reads first get large, lets glibc adjust as it
 * would for any program. Called with the GIL held. */
static inline void fl_settle_heap(void)
{
#ifdef __GLIBC__
    static int settled;
    if (!settled) {
        void *volatile block;   /* volatile: the pair must not be optimised away */
        settled = 1;
        block = malloc(1 << 20);
        free(block);
    }
#endif
}

/* Where a sockaddr_un's path starts (the rest of the address length). */
#define FL_SUN_PATH_OFFSET offsetof(struct sockaddr_un, sun_path)

#endif
