/*
 * The C client of the client benchmark (bench/client_bench.py): the machine's ceiling, what a small client
 * in C gets from the same server in the same rows. One connection at a time, blocking sockets, TCP_NODELAY;
 * every frame it sends masked with a fresh key (xorshift), every message it receives checked (opcode,
 * length, every byte of the pattern 'a' + i % 26). No UTF-8 validation, no extensions.
 *
 * Usage: client PORT MODE KIND SIZE WARMUP DURATION       client --version
 *   MODE lockstep (server /echo: send one, wait for its echo), receive (/stream: send "go", then read what
 *   the server streams), send (/count: write as fast as the socket takes, then "end" and wait for "count N"),
 *   connect (/echo: connect, handshake, close frame, the server's close frame, its TCP close, again);
 *   KIND text or binary; WARMUP and DURATION in seconds.
 * Like every runner of the benchmark it prints "start" when the measured interval begins, then one JSON
 * line: {"ok": true, "count": N, "wall_s": ..., "cpu_s": ...} (count: round trips, messages or
 * connections in the interval; cpu_s: its own CPU time over it), or {"ok": false, "error": ...}.
 *
 * Build: gcc -O2 -Wall -Wextra -Werror -o client client.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH (64 * 1024) /* send mode: frames are written this many bytes at a time (or one frame) */

static int port;
static size_t size;
static int text;
static uint8_t *pattern; /* the expected message: 'a' + i % 26 */
static uint8_t *rbuf;    /* received bytes not yet used: rbuf[rpos..rlen) */
static size_t rcap, rpos, rlen;
static uint8_t *wbuf;
static size_t wcap;
static uint64_t rng = 0x9E3779B97F4A7C15ull;

static void fail(const char *what) {
    printf("{\"ok\": false, \"error\": \"%s%s%s\"}\n", what, errno ? ": " : "", errno ? strerror(errno) : "");
    exit(1);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_now(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static uint32_t next_key(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)rng;
}

static void write_all(int fd, const uint8_t *p, size_t n) {
    while (n) {
        ssize_t r = send(fd, p, n, MSG_NOSIGNAL);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            fail("send");
        }
        p += r, n -= (size_t)r;
    }
}

/* Appends a masked frame to wbuf at *len. */
static void put_frame(size_t *len, uint8_t b0, const uint8_t *payload, size_t n) {
    if (*len + n + 14 > wcap) {
        wcap = (*len + n + 14) * 2;
        wbuf = realloc(wbuf, wcap);
        if (!wbuf)
            fail("out of memory");
    }
    uint8_t *h = wbuf + *len;
    size_t hl = 2;
    h[0] = b0;
    if (n < 126) {
        h[1] = (uint8_t)(0x80 | n);
    } else if (n < 65536) {
        h[1] = 0x80 | 126, h[2] = (uint8_t)(n >> 8), h[3] = (uint8_t)n, hl = 4;
    } else {
        h[1] = 0x80 | 127, hl = 10;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
    }
    uint32_t k32 = next_key();
    memcpy(h + hl, &k32, 4);
    uint8_t *key = h + hl, *dst = h + hl + 4;
    uint64_t k64 = (uint64_t)k32 << 32 | k32;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, payload + i, 8);
        v ^= k64;
        memcpy(dst + i, &v, 8);
    }
    for (; i < n; i++)
        dst[i] = payload[i] ^ key[i & 3];
    *len += hl + 4 + n;
}

/* Makes sure rbuf holds n unused bytes (reading as needed). */
static void fill(int fd, size_t n) {
    if (rlen - rpos >= n)
        return;
    if (rpos) {
        memmove(rbuf, rbuf + rpos, rlen - rpos);
        rlen -= rpos, rpos = 0;
    }
    if (n > rcap) {
        rcap = n + 256 * 1024;
        rbuf = realloc(rbuf, rcap);
        if (!rbuf)
            fail("out of memory");
    }
    while (rlen < n) {
        ssize_t r = recv(fd, rbuf + rlen, rcap - rlen, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = 0;
            fail(r == 0 ? "the server closed the connection" : "recv");
        }
        rlen += (size_t)r;
    }
}

/* The next frame: its first byte, payload and length (the payload stays valid until the next call). */
static uint8_t read_frame(int fd, const uint8_t **payload, size_t *n) {
    fill(fd, 2);
    uint8_t b0 = rbuf[rpos], b1 = rbuf[rpos + 1];
    errno = 0;
    if (b1 & 0x80)
        fail("a masked frame from the server");
    size_t hl = (b1 & 0x7f) == 126 ? 4 : (b1 & 0x7f) == 127 ? 10 : 2;
    fill(fd, hl);
    uint64_t len = b1 & 0x7f;
    if (len == 126)
        len = (uint64_t)rbuf[rpos + 2] << 8 | rbuf[rpos + 3];
    else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | rbuf[rpos + 2 + i];
    }
    fill(fd, hl + len);
    *payload = rbuf + rpos + hl;
    *n = (size_t)len;
    rpos += hl + len;
    return b0;
}

static void check_message(uint8_t b0, const uint8_t *payload, size_t n) {
    errno = 0;
    if (b0 != (text ? 0x81 : 0x82) || n != size || memcmp(payload, pattern, n) != 0)
        fail("a wrong message");
}

static int open_ws(const char *mode) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        fail("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0)
        fail("connect");
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET /%s/%s/%zu HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     mode, text ? "text" : "binary", size, port);
    write_all(fd, (const uint8_t *)req, (size_t)n);
    rpos = rlen = 0;
    for (;;) { /* the response head; what follows it stays in rbuf */
        fill(fd, rlen + 1);
        uint8_t *end = memmem(rbuf, rlen, "\r\n\r\n", 4);
        if (end) {
            errno = 0;
            if (memcmp(rbuf, "HTTP/1.1 101", 12) != 0)
                fail("no 101 from the server");
            rpos = (size_t)(end - rbuf) + 4;
            return fd;
        }
    }
}

static void close_ws(int fd) {
    static const uint8_t code[2] = {0x03, 0xe8};
    size_t len = 0;
    put_frame(&len, 0x88, code, 2);
    write_all(fd, wbuf, len);
    for (;;) { /* data still in flight, then the server's close frame */
        const uint8_t *payload;
        size_t n;
        if ((read_frame(fd, &payload, &n) & 0x0f) == 8)
            break;
    }
    char byte;
    while (recv(fd, &byte, 1, 0) > 0) /* the server closes the TCP connection first */
        ;
    close(fd);
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("gcc %s\n", __VERSION__);
        return 0;
    }
    if (argc != 7) {
        fprintf(stderr, "usage: %s PORT MODE KIND SIZE WARMUP DURATION\n", argv[0]);
        return 2;
    }
    port = atoi(argv[1]);
    const char *mode = argv[2];
    text = strcmp(argv[3], "text") == 0;
    size = (size_t)strtoul(argv[4], NULL, 10);
    double warmup = atof(argv[5]), duration = atof(argv[6]);
    pattern = malloc(size + 1);
    if (!pattern)
        fail("out of memory");
    for (size_t i = 0; i < size; i++)
        pattern[i] = (uint8_t)('a' + i % 26);
    uint8_t op = text ? 0x81 : 0x82;
    const uint8_t *payload;
    size_t n;
    uint64_t count = 0, total = 0;
    double t0 = 0, c0 = 0, t1, end = now() + warmup;
    int measuring = 0, fd = -1;

#define PHASE_CHECK()                                                                                           \
    if (now() >= end) {                                                                                         \
        if (measuring)                                                                                          \
            break;                                                                                              \
        measuring = 1, count = 0;                                                                               \
        printf("start\n");                                                                                      \
        fflush(stdout);                                                                                         \
        t0 = now(), c0 = cpu_now(), end = t0 + duration;                                                        \
    }

    if (strcmp(mode, "lockstep") == 0) {
        fd = open_ws("echo");
        size_t len = 0;
        for (;;) {
            len = 0;
            put_frame(&len, op, pattern, size);
            write_all(fd, wbuf, len);
            uint8_t b0 = read_frame(fd, &payload, &n);
            check_message(b0, payload, n);
            count++;
            PHASE_CHECK()
        }
    } else if (strcmp(mode, "receive") == 0) {
        fd = open_ws("stream");
        size_t len = 0;
        put_frame(&len, 0x81, (const uint8_t *)"go", 2);
        write_all(fd, wbuf, len);
        for (;;) {
            uint8_t b0 = read_frame(fd, &payload, &n);
            check_message(b0, payload, n);
            count++;
            if ((count & 63) == 0 || size >= 65536) {
                PHASE_CHECK()
            }
        }
    } else if (strcmp(mode, "send") == 0) {
        fd = open_ws("count");
        for (;;) {
            size_t len = 0, k = 0;
            do {
                put_frame(&len, op, pattern, size);
                k++;
            } while (len + size + 14 <= BATCH);
            write_all(fd, wbuf, len);
            total += k;
            count += k;
            PHASE_CHECK()
        }
        size_t len = 0;
        put_frame(&len, 0x81, (const uint8_t *)"end", 3);
        write_all(fd, wbuf, len);
        uint8_t b0 = read_frame(fd, &payload, &n);
        char want[40];
        int wn = snprintf(want, sizeof want, "count %llu", (unsigned long long)total);
        errno = 0;
        if (b0 != 0x81 || n != (size_t)wn || memcmp(payload, want, n) != 0)
            fail("the server did not count every message");
    } else if (strcmp(mode, "connect") == 0) {
        for (;;) {
            close_ws(open_ws("echo"));
            count++;
            PHASE_CHECK()
        }
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    t1 = now();
    double cpu = cpu_now() - c0;
    printf("{\"ok\": true, \"count\": %llu, \"wall_s\": %.6f, \"cpu_s\": %.6f}\n", (unsigned long long)count, t1 - t0,
           cpu);
    fflush(stdout);
    (void)fd;
    return 0;
}
