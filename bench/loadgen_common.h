/* What the benchmark load generators (loadgen.c, udpgen.c) share: the clock,
 * fatal errors, and latency percentiles. Included, not linked: each program
 * is one `gcc -O2` of its .c file (bench/cbuild.py). */
#ifndef BENCH_LOADGEN_COMMON_H
#define BENCH_LOADGEN_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static double percentile_us(uint64_t *v, uint64_t n, double q)
{
    if (n == 0)
        return 0.0;
    uint64_t rank = (uint64_t)(q * (double)n + 0.999999); /* nearest rank */
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return (double)v[rank - 1] / 1000.0;
}

/* Exit status 3 and why, for a run that stopped at its time limit short of
 * the message count it was asked for (bench/callgrind_echo.py's runs). */
static int short_of_count(const char *prog, uint64_t done, uint64_t want, const char *what,
                          double seconds)
{
    fprintf(stderr, "%s: only %llu of %llu %s in %.1f s\n", prog, (unsigned long long)done,
            (unsigned long long)want, what, seconds);
    return 3;
}

#endif
