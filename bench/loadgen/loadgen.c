/*
 * WebSocket load generator for bench/threaded_bench.py.
 *
 * Single-threaded, epoll, non-blocking sockets; RFC 6455 client frames, each
 * masked with a fresh pseudo-random key.  It never offers an extension, so
 * every server runs uncompressed.  One JSON line of results goes to stdout
 * (idle mode prints a "ready" line first); on failure the line has
 * "ok": false and an "error", and the exit status is 1.
 *
 * Modes:
 *   echo       --conns N --inflight K --size S [--binary] --warmup W --duration D
 *              every connection keeps K messages in flight; messages/s of
 *              echoes received during D, and for K = 1 the round trip p50/p99.
 *              Every echo is checked: opcode, length and content.
 *   idle       --conns C: open C connections, print a ready line, hold them
 *              until stdin closes (or --hold seconds), then exit.
 *   connect    --conns C --concurrency M: time until C handshakes complete,
 *              at most M in flight.
 *   churn      --concurrency M --duration D: connect, handshake, close
 *              (close frame, wait for the server's, then the TCP close),
 *              repeatedly; completed cycles/s.
 *   broadcast  --conns C --messages n --size S: open C connections, wait
 *              --settle seconds, send the text "go" on the first one, time
 *              until every connection received n text messages of S bytes
 *              (a failure if nothing arrives for --stall seconds).
 *   pubsub     --conns C --messages n --size S --interval I: publish/subscribe
 *              fan-out through a server that publishes every text message it
 *              receives to one channel all its connections are subscribed to
 *              (bench/pubsub_bench.py).  Connection 0 is the publisher (and a
 *              subscriber too).  After --settle seconds, a sync round: the
 *              publisher sends a sync message every 100 ms until every
 *              connection received one (so every subscription is in place,
 *              on every server process).  Then a burst: the n messages
 *              written at once; the time until every connection has all n.
 *              Then paced: one message every I seconds.  Every message
 *              carries its sequence number and the publisher's
 *              CLOCK_MONOTONIC send time; each delivery's latency is the
 *              receive time minus that stamp (p50/p99/max per phase), and
 *              each connection must receive each phase's messages exactly
 *              once and in order (a gap or a reorder fails the run).
 *
 * With --pid P, the CPU time the server process P used during the measured
 * interval is read from /proc/P/stat and reported beside the loadgen's own
 * (getrusage).  With --pgid G (up to 4 times) instead, the CPU time of every
 * process in those process groups (a server with worker processes, and Redis).
 *
 * Build: gcc -O2 -Wall -Wextra -o loadgen loadgen.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define RBUF_SIZE (256 * 1024)
#define HS_MAX 4096
#define MAX_EVENTS 1024
#define PATTERN_SLACK 256
#define PUBSUB_HEAD 32 /* "B000042 000000012345678901234567": tag, sequence, stamp (ns) */

enum mode { M_ECHO, M_IDLE, M_CONNECT, M_CHURN, M_BROADCAST, M_PUBSUB };
static const char *mode_names[] = {"echo", "idle", "connect", "churn", "broadcast", "pubsub"};
#define N_MODES 6

enum state { ST_FREE, ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_CLOSING };

typedef struct {
    int fd;
    int state;
    uint32_t events; /* epoll events currently registered */
    double t_connect;
    double deadline; /* closing: give up waiting for the server after this */
    /* output buffer */
    uint8_t *out;
    size_t out_off, out_len, out_cap;
    /* handshake response */
    char *hs;
    size_t hs_len;
    /* frame parser */
    uint8_t hdr[14];
    unsigned hdr_len, hdr_need;
    int in_payload;
    int f_opcode, f_fin;
    uint64_t f_left;
    uint8_t ctrl[125];
    unsigned ctrl_len;
    int in_msg, m_opcode;
    uint64_t m_len;
    const uint8_t *expect; /* what the current data message must contain */
    uint64_t expect_len;
    /* echo */
    uint64_t sent, received;
    double *stamps; /* send times of the messages in flight (ring of K) */
    /* broadcast; pubsub: messages of the current phase received */
    uint64_t got;
    /* pubsub: the first bytes of the message being received (tag, sequence, stamp) */
    uint8_t head[PUBSUB_HEAD];
    unsigned head_len;
    int synced; /* pubsub: a sync message arrived */
    int close_sent, close_got;
} conn_t;

static struct {
    int mode;
    const char *host;
    int port;
    const char *path;
    long conns;
    long inflight;
    long size;
    int binary;
    double warmup, duration, drain, settle, hold, timeout, stall, interval;
    long concurrency;
    long messages;
    int pid;
    int pgids[4];
    int npgids;
} cfg = {
    .mode = M_ECHO,
    .host = "127.0.0.1",
    .port = 0,
    .path = "/",
    .conns = 1,
    .inflight = 1,
    .size = 16,
    .binary = 0,
    .warmup = 0.3,
    .duration = 1.0,
    .drain = 5.0,
    .settle = 1.0,
    .hold = 60.0,
    .timeout = 120.0,
    .stall = 10.0,
    .interval = 0.02,
    .concurrency = 200,
    .messages = 100,
    .pid = 0,
};

static int epfd;
static conn_t *conns;
static long nslots;
static uint8_t *rbuf;
static uint8_t *pattern; /* cfg.size + PATTERN_SLACK bytes: message n is pattern + offset(n) */
static char request[1024];
static size_t request_len;
static struct sockaddr_in server_addr;
static double t_begin;

/* connection bookkeeping */
static long started;      /* connect() calls made */
static long handshaking;  /* connections between connect() and 101 */
static long opened;       /* handshakes completed (ever) */
static long open_now;     /* connections currently open */
static long closed_clean; /* closes completed: our close frame, the server's, then EOF */
static long close_timeouts;
static int accepting = 1; /* whether new connections may be started */
static int stdin_closed;  /* idle mode: the harness is done measuring */

/* measurement */
static double *samples; /* round trips (echo, µs) or handshake times (connect, µs) */
static size_t nsamples, samples_cap;
static int recording; /* samples and counts are taken only while set */
static uint64_t counted; /* echoes (echo), cycles (churn) while recording */
static uint64_t bcast_done_conns;
static double last_progress; /* broadcast: when the last message arrived */
static double bcast_first_done;
/* pubsub */
static char pubsub_tag;       /* the phase whose messages count: 'B' burst, 'P' paced (0: none yet) */
static uint64_t synced_conns; /* connections that received a sync message */

/* -- utilities ------------------------------------------------------------ */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double cpu_self(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec * 1e-6;
}

/* utime + stime of process pid (all its threads), seconds; -1 if unknown.  With pgrp: only if the process is
 * in one of the process groups of --pgid (else 0). */
static double cpu_of(int pid, int pgrp) {
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1.0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1.0;
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return -1.0;
    /* after ") ": field 3 (state) is token 0; utime (14) token 11, stime (15) token 12 */
    unsigned long long utime = 0, stime = 0;
    int tok = 0;
    char *save = NULL;
    for (char *t = strtok_r(p + 1, " ", &save); t; t = strtok_r(NULL, " ", &save), tok++) {
        if (tok == 2 && pgrp) { /* field 5: the process group */
            int g = atoi(t), found = 0;
            for (int i = 0; i < cfg.npgids; i++)
                found |= cfg.pgids[i] == g;
            if (!found)
                return 0.0;
        }
        if (tok == 11)
            utime = strtoull(t, NULL, 10);
        else if (tok == 12) {
            stime = strtoull(t, NULL, 10);
            break;
        }
    }
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* The server's CPU time, seconds: process --pid, or every process of the --pgid groups; -1 if unknown. */
static double cpu_server(void) {
    if (cfg.npgids == 0)
        return cfg.pid > 0 ? cpu_of(cfg.pid, 0) : -1.0;
    DIR *proc = opendir("/proc");
    if (!proc)
        return -1.0;
    double total = 0.0;
    struct dirent *e;
    while ((e = readdir(proc)) != NULL) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        double t = cpu_of(atoi(e->d_name), 1);
        if (t > 0)
            total += t;
    }
    closedir(proc);
    return total;
}

static uint64_t rng_state;

static uint64_t rng(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

static void print_progress(void) {
    printf("\"started\": %ld, \"opened\": %ld, \"open\": %ld, \"handshaking\": %ld", started, opened, open_now,
           handshaking);
}

static void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void fail(const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
            *p = '\'';
    printf("{\"ok\": false, \"mode\": \"%s\", \"error\": \"%s\", \"elapsed_s\": %.3f, ", mode_names[cfg.mode], msg,
           now() - t_begin);
    print_progress();
    if (cfg.mode == M_BROADCAST || cfg.mode == M_PUBSUB)
        printf(", \"conns_done\": %llu", (unsigned long long)bcast_done_conns);
    if (cfg.mode == M_PUBSUB)
        printf(", \"synced\": %llu, \"phase\": \"%c\"", (unsigned long long)synced_conns, pubsub_tag ? pubsub_tag : 'S');
    printf("}\n");
    fflush(stdout);
    exit(1);
}

static void add_sample(double v) {
    if (nsamples == samples_cap) {
        samples_cap = samples_cap ? samples_cap * 2 : 65536;
        samples = realloc(samples, samples_cap * sizeof *samples);
        if (!samples)
            fail("out of memory (samples)");
    }
    samples[nsamples++] = v;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void sort_samples(void) {
    if (nsamples) /* samples is NULL while empty */
        qsort(samples, nsamples, sizeof *samples, cmp_double);
}

static double percentile(double q) { /* samples must be sorted */
    if (!nsamples)
        return -1.0;
    size_t i = (size_t)(q * (double)(nsamples - 1) + 0.5);
    return samples[i];
}

/* -- sockets ----------------------------------------------------------------- */

static void set_events(conn_t *c, uint32_t ev) {
    if (c->events == ev)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e) < 0)
        fail("epoll_ctl: %s", strerror(errno));
    c->events = ev;
}

static void out_reserve(conn_t *c, size_t extra) {
    if (c->out_len + extra <= c->out_cap)
        return;
    if (c->out_off) { /* compact first */
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
        if (c->out_len + extra <= c->out_cap)
            return;
    }
    size_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap < c->out_len + extra)
        cap *= 2;
    c->out = realloc(c->out, cap);
    if (!c->out)
        fail("out of memory (output buffer)");
    c->out_cap = cap;
}

/* Writes what the socket takes; EPOLLOUT is wanted while something is left. */
static void flush_out(conn_t *c) {
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            fail("send: %s", n < 0 ? strerror(errno) : "wrote nothing");
        }
    }
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
        if (c->out_cap > (1u << 22)) { /* do not keep a huge buffer per connection */
            free(c->out);
            c->out = NULL;
            c->out_cap = 0;
        }
        set_events(c, EPOLLIN);
    } else {
        set_events(c, EPOLLIN | EPOLLOUT);
    }
}

/* Appends one masked client frame (FIN set) to the output buffer. */
static void queue_frame(conn_t *c, int opcode, const uint8_t *payload, size_t len) {
    out_reserve(c, len + 14);
    uint8_t *p = c->out + c->out_len;
    size_t h;
    p[0] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        p[1] = (uint8_t)(0x80 | len);
        h = 2;
    } else if (len < 65536) {
        p[1] = 0x80 | 126;
        p[2] = (uint8_t)(len >> 8);
        p[3] = (uint8_t)len;
        h = 4;
    } else {
        p[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            p[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
        h = 10;
    }
    uint8_t *key = p + h;
    uint32_t k32 = (uint32_t)rng();
    memcpy(key, &k32, 4);
    uint8_t *dst = key + 4;
    uint64_t k64;
    memcpy(&k64, key, 4);
    memcpy((uint8_t *)&k64 + 4, key, 4);
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, payload + i, 8);
        w ^= k64;
        memcpy(dst + i, &w, 8);
    }
    for (; i < len; i++)
        dst[i] = payload[i] ^ key[i & 3];
    c->out_len += h + 4 + len;
}

static void queue_close(conn_t *c) {
    static const uint8_t normal[2] = {0x03, 0xe8}; /* 1000 */
    queue_frame(c, 0x8, normal, 2);
    c->close_sent = 1;
    c->state = ST_CLOSING;
    c->deadline = now() + 2.0;
}

static void conn_release(conn_t *c) {
    if (c->fd >= 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    if (c->state == ST_CONNECTING || c->state == ST_HANDSHAKE)
        handshaking--;
    else if (c->state == ST_OPEN || c->state == ST_CLOSING)
        open_now--;
    free(c->out);
    free(c->hs);
    free(c->stamps);
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->state = ST_FREE;
}

static void conn_start(conn_t *c) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        fail("socket: %s (after %ld connections)", strerror(errno), started);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->state = ST_CONNECTING;
    c->t_connect = now();
    c->events = EPOLLOUT;
    started++;
    handshaking++;
    if (connect(fd, (struct sockaddr *)&server_addr, sizeof server_addr) < 0 && errno != EINPROGRESS)
        fail("connect: %s", strerror(errno));
    struct epoll_event e = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) < 0)
        fail("epoll_ctl add: %s", strerror(errno));
}

/* Starts connections while fewer than --concurrency handshakes are in flight. */
static void start_connects(void) {
    if (!accepting)
        return;
    for (long i = 0; i < nslots && handshaking < cfg.concurrency; i++) {
        if (conns[i].state != ST_FREE)
            continue;
        if (cfg.mode != M_CHURN && started >= cfg.conns)
            return;
        conn_start(&conns[i]);
    }
}

/* -- protocol ---------------------------------------------------------------- */

static const uint8_t *echo_expect(uint64_t seq) { return pattern + (seq * 97) % PATTERN_SLACK; }

static void echo_send(conn_t *c) {
    c->stamps[c->sent % (uint64_t)cfg.inflight] = now();
    queue_frame(c, cfg.binary ? 0x2 : 0x1, echo_expect(c->sent), (size_t)cfg.size);
    c->sent++;
}

static int phase; /* echo: 0 connecting, 1 warm-up, 2 measuring, 3 draining, 4 closing */

static void on_open(conn_t *c) {
    c->state = ST_OPEN;
    handshaking--;
    opened++;
    open_now++;
    if (cfg.mode == M_CONNECT)
        add_sample((now() - c->t_connect) * 1e6);
    if (cfg.mode == M_CHURN)
        queue_close(c);
    if (cfg.mode == M_ECHO) {
        c->stamps = calloc((size_t)cfg.inflight, sizeof *c->stamps);
        if (!c->stamps)
            fail("out of memory (stamps)");
    }
}

/* A pubsub message: "S..." (sync), or "B"/"P" + 6-digit sequence + " " + 19-digit stamp (ns), padded. */
static void on_pubsub_message(conn_t *c) {
    if (c->m_opcode != 0x1 || c->m_len != (uint64_t)cfg.size)
        fail("pubsub message: opcode %d, %llu bytes (want text, %ld)", c->m_opcode, (unsigned long long)c->m_len,
             cfg.size);
    int64_t t = now_ns();
    last_progress = (double)t * 1e-9;
    char tag = (char)c->head[0];
    if (tag == 'S') {
        if (!c->synced) {
            c->synced = 1;
            synced_conns++;
        }
        return;
    }
    if (tag != 'B' && tag != 'P')
        fail("pubsub message with an unknown tag 0x%02x", (unsigned)c->head[0]);
    if (tag != pubsub_tag) /* a message of the burst after the paced phase began: cannot be */
        fail("pubsub message of phase %c during phase %c", tag, pubsub_tag ? pubsub_tag : 'S');
    uint64_t seq = 0;
    int64_t stamp = 0;
    for (int i = 1; i <= 6; i++)
        seq = seq * 10 + (uint64_t)(c->head[i] - '0');
    for (int i = 8; i < 8 + 19; i++)
        stamp = stamp * 10 + (int64_t)(c->head[i] - '0');
    if (seq != c->got)
        fail("connection %ld: message %llu of phase %c arrived when %llu was due (a gap or a reorder)",
             (long)(c - conns), (unsigned long long)seq, tag, (unsigned long long)c->got);
    c->got++;
    add_sample((double)(t - stamp) * 1e-3); /* µs */
    if (c->got == (uint64_t)cfg.messages) {
        bcast_done_conns++;
        if (bcast_done_conns == 1)
            bcast_first_done = (double)t * 1e-9;
    }
}

static void on_message(conn_t *c) {
    if (cfg.mode == M_ECHO) {
        int want = cfg.binary ? 0x2 : 0x1;
        if (c->m_opcode != want)
            fail("echo has opcode %d, sent %d", c->m_opcode, want);
        if (c->m_len != (uint64_t)cfg.size)
            fail("echo of %llu bytes, sent %ld", (unsigned long long)c->m_len, cfg.size);
        if (c->received >= c->sent)
            fail("unsolicited message of %llu bytes", (unsigned long long)c->m_len);
        double rtt = now() - c->stamps[c->received % (uint64_t)cfg.inflight];
        c->received++;
        if (recording) {
            counted++;
            if (cfg.inflight == 1)
                add_sample(rtt * 1e6);
        }
        if (phase == 1 || phase == 2)
            echo_send(c);
    } else if (cfg.mode == M_BROADCAST) {
        if (c->m_opcode != 0x1 || c->m_len != (uint64_t)cfg.size)
            fail("broadcast message: opcode %d, %llu bytes (want text, %ld)", c->m_opcode,
                 (unsigned long long)c->m_len, cfg.size);
        c->got++;
        last_progress = now();
        if (c->got == (uint64_t)cfg.messages) {
            bcast_done_conns++;
            if (bcast_done_conns == 1)
                bcast_first_done = now();
            add_sample(now());
        } else if (c->got > (uint64_t)cfg.messages) {
            fail("connection received more than %ld messages", cfg.messages);
        }
    } else if (cfg.mode == M_PUBSUB) {
        on_pubsub_message(c);
    } else {
        fail("unexpected %llu-byte message (opcode %d) in %s mode", (unsigned long long)c->m_len, c->m_opcode,
             mode_names[cfg.mode]);
    }
}

static void on_control(conn_t *c) {
    switch (c->f_opcode) {
    case 0x9: /* ping */
        queue_frame(c, 0xA, c->ctrl, c->ctrl_len);
        break;
    case 0xA: /* pong */
        break;
    case 0x8: /* close */
        if (!c->close_sent) {
            unsigned code = c->ctrl_len >= 2 ? (unsigned)(c->ctrl[0] << 8 | c->ctrl[1]) : 1005;
            fail("server closed the connection (close code %u, %u bytes)", code, c->ctrl_len);
        }
        c->close_got = 1;
        break;
    default:
        fail("unknown control opcode %d", c->f_opcode);
    }
}

/* Compares [at, at + n) of the echo with what was sent; true if equal. */
static int same(const conn_t *c, const uint8_t *data, uint64_t at, uint64_t n) {
    return memcmp(data + (at - c->m_len), c->expect + at, (size_t)n) == 0;
}

/* Checks a chunk of an echo.  Messages up to FULL_CHECK bytes are compared
 * whole; of larger ones, one in CHECK_EVERY is compared whole and the others
 * on their first and last CHECK_EDGE bytes, so that the loadgen stays cheap.
 * (The length of every echo is checked in on_message.) */
#define FULL_CHECK 4096
#define CHECK_EVERY 8
#define CHECK_EDGE 64

static void check_echo(const conn_t *c, const uint8_t *data, size_t n) {
    uint64_t lo = c->m_len, hi = c->m_len + n, size = (uint64_t)cfg.size;
    int ok;
    if (size <= FULL_CHECK || c->received % CHECK_EVERY == 0) {
        ok = same(c, data, lo, n);
    } else {
        ok = 1;
        if (lo < CHECK_EDGE)
            ok = same(c, data, lo, (hi < CHECK_EDGE ? hi : CHECK_EDGE) - lo);
        uint64_t tail = size - CHECK_EDGE;
        if (ok && hi > tail) {
            uint64_t from = lo > tail ? lo : tail;
            ok = same(c, data, from, hi - from);
        }
    }
    if (!ok)
        fail("echo content differs from what was sent (message %llu, bytes %llu to %llu)",
             (unsigned long long)c->received, (unsigned long long)lo, (unsigned long long)hi);
}

/* Frame parser: server frames must not be masked. */
static void feed(conn_t *c, const uint8_t *data, size_t len) {
    while (len) {
        if (!c->in_payload) {
            if (c->hdr_need == 0)
                c->hdr_need = 2;
            while (len && c->hdr_len < c->hdr_need) {
                c->hdr[c->hdr_len++] = *data++;
                len--;
                if (c->hdr_len == 2) {
                    unsigned l7 = c->hdr[1] & 0x7f;
                    if (c->hdr[1] & 0x80)
                        fail("server frame is masked");
                    c->hdr_need = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0);
                }
            }
            if (c->hdr_len < c->hdr_need)
                return;
            uint8_t b0 = c->hdr[0];
            uint64_t plen = c->hdr[1] & 0x7f;
            if (plen == 126)
                plen = (uint64_t)c->hdr[2] << 8 | c->hdr[3];
            else if (plen == 127) {
                plen = 0;
                for (int i = 0; i < 8; i++)
                    plen = plen << 8 | c->hdr[2 + i];
            }
            if (b0 & 0x70)
                fail("server frame has RSV bits set (0x%02x): compression was not offered", b0);
            c->f_opcode = b0 & 0x0f;
            c->f_fin = (b0 & 0x80) != 0;
            c->f_left = plen;
            c->hdr_len = 0;
            c->hdr_need = 2;
            c->in_payload = 1;
            if (c->f_opcode & 0x8) {
                if (plen > 125 || !c->f_fin)
                    fail("invalid control frame");
                c->ctrl_len = 0;
            } else if (c->f_opcode == 0) {
                if (!c->in_msg)
                    fail("continuation frame outside a message");
            } else if (c->f_opcode == 1 || c->f_opcode == 2) {
                if (c->in_msg)
                    fail("new data frame inside a fragmented message");
                c->in_msg = 1;
                c->m_opcode = c->f_opcode;
                c->m_len = 0;
                if (cfg.mode == M_ECHO && c->received < c->sent) {
                    c->expect = echo_expect(c->received);
                    c->expect_len = (uint64_t)cfg.size;
                } else if (cfg.mode == M_BROADCAST || cfg.mode == M_PUBSUB) {
                    c->expect = NULL;
                    c->expect_len = (uint64_t)cfg.size;
                    c->head_len = 0;
                } else {
                    c->expect = NULL;
                    c->expect_len = UINT64_MAX;
                }
            } else {
                fail("reserved opcode %d", c->f_opcode);
            }
        }
        size_t n = len < c->f_left ? len : (size_t)c->f_left;
        if (c->f_opcode & 0x8) {
            memcpy(c->ctrl + c->ctrl_len, data, n);
            c->ctrl_len += (unsigned)n;
        } else {
            if (c->m_len + n > c->expect_len)
                fail("message longer than %llu bytes", (unsigned long long)c->expect_len);
            if (c->expect) {
                check_echo(c, data, n);
            } else if (cfg.mode == M_BROADCAST || cfg.mode == M_PUBSUB) {
                for (size_t i = 0; i < n; i++)
                    if (data[i] < 0x20 || data[i] > 0x7e)
                        fail("broadcast payload is not the ASCII sent by the server");
                if (cfg.mode == M_PUBSUB)
                    for (size_t i = 0; i < n && c->head_len < PUBSUB_HEAD; i++)
                        c->head[c->head_len++] = data[i];
            }
            c->m_len += n;
        }
        data += n;
        len -= n;
        c->f_left -= n;
        if (c->f_left == 0) {
            c->in_payload = 0;
            if (c->f_opcode & 0x8) {
                on_control(c);
            } else if (c->f_fin) {
                c->in_msg = 0;
                on_message(c);
            }
        }
    }
}

/* The upgrade response: "HTTP/1.1 101" and the end of the head; the rest is frames. */
static void feed_handshake(conn_t *c, const uint8_t *data, size_t len) {
    if (!c->hs) {
        c->hs = malloc(HS_MAX + 1);
        if (!c->hs)
            fail("out of memory (handshake)");
    }
    size_t room = HS_MAX - c->hs_len;
    size_t take = len < room ? len : room;
    memcpy(c->hs + c->hs_len, data, take);
    c->hs_len += take;
    c->hs[c->hs_len] = 0;
    char *end = strstr(c->hs, "\r\n\r\n");
    if (!end) {
        if (c->hs_len == HS_MAX)
            fail("handshake response longer than %d bytes", HS_MAX);
        return;
    }
    if (strncmp(c->hs, "HTTP/1.1 101", 12) != 0) {
        char *eol = strstr(c->hs, "\r\n");
        if (eol)
            *eol = 0;
        fail("handshake refused: %.200s", c->hs);
    }
    size_t head = (size_t)(end + 4 - c->hs);
    size_t rest = c->hs_len - head; /* leftover from this read, already copied */
    uint8_t leftover[HS_MAX];
    memcpy(leftover, c->hs + head, rest);
    free(c->hs);
    c->hs = NULL;
    c->hs_len = 0;
    on_open(c);
    if (rest)
        feed(c, leftover, rest);
    if (take < len)
        feed(c, data + take, len - take);
}

static void on_eof(conn_t *c) {
    if (c->state == ST_CLOSING && c->close_got) {
        closed_clean++;
        if (cfg.mode == M_CHURN && recording)
            counted++;
        conn_release(c);
        return;
    }
    fail("server closed the TCP connection (state %d, %llu echoes received, close frame %s)", c->state,
         (unsigned long long)c->received, c->close_got ? "received" : "not received");
}

static void on_event(conn_t *c, uint32_t ev) {
    if (c->state == ST_CONNECTING) {
        int err = 0;
        socklen_t elen = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen);
        if (err)
            fail("connect: %s (after %ld connections)", strerror(err), opened);
        if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        c->state = ST_HANDSHAKE;
        out_reserve(c, request_len);
        memcpy(c->out + c->out_len, request, request_len);
        c->out_len += request_len;
        flush_out(c);
        return;
    }
    if (ev & EPOLLOUT)
        flush_out(c);
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        for (;;) {
            ssize_t n = recv(c->fd, rbuf, RBUF_SIZE, 0);
            if (n > 0) {
                if (c->state == ST_HANDSHAKE)
                    feed_handshake(c, rbuf, (size_t)n);
                else
                    feed(c, rbuf, (size_t)n);
                if (n < RBUF_SIZE)
                    break;
            } else if (n == 0) {
                on_eof(c);
                return;
            } else if (errno == EINTR) {
                continue;
            } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;
            } else if (c->state == ST_CLOSING && c->close_got) {
                on_eof(c); /* a reset after the closing handshake */
                return;
            } else {
                fail("recv: %s (state %d)", strerror(errno), c->state);
            }
        }
    }
    if (c->state != ST_FREE && c->out_len > c->out_off)
        flush_out(c);
}

/* One pass of the event loop; returns after at most timeout_ms. */
static int poll_once(int timeout_ms) {
    static struct epoll_event evs[MAX_EVENTS];
    int n = epoll_wait(epfd, evs, MAX_EVENTS, timeout_ms);
    if (n < 0) {
        if (errno == EINTR)
            return 0;
        fail("epoll_wait: %s", strerror(errno));
    }
    for (int i = 0; i < n; i++) {
        conn_t *c = evs[i].data.ptr;
        if (c == NULL) { /* stdin (idle mode): closed or readable means stop */
            char buf[256];
            ssize_t r = read(0, buf, sizeof buf);
            if (r <= 0) {
                epoll_ctl(epfd, EPOLL_CTL_DEL, 0, NULL);
                stdin_closed = 1;
            }
            continue;
        }
        if (c->state == ST_FREE) /* released earlier in this batch */
            continue;
        on_event(c, evs[i].events);
    }
    return n;
}

static void check_deadline(void) {
    if (now() - t_begin > cfg.timeout)
        fail("timed out after %.0f s", cfg.timeout);
}

/* Closing connections whose server never finished the closing handshake. */
static void expire_closing(void) {
    double t = now();
    for (long i = 0; i < nslots; i++) {
        conn_t *c = &conns[i];
        if (c->state == ST_CLOSING && t > c->deadline) {
            close_timeouts++;
            conn_release(c);
        }
    }
}

/* Waits until every slot has been opened (handshake complete). */
static double connect_all(void) {
    double t0 = now();
    start_connects();
    while (opened < cfg.conns) {
        poll_once(10);
        start_connects();
        check_deadline();
    }
    return now() - t0;
}

/* -- modes ------------------------------------------------------------------- */

static void print_cpu(double cpu0, double cpu1, double srv0, double srv1, double wall) {
    printf("\"wall_s\": %.6f, \"cpu_s\": %.6f", wall, cpu1 - cpu0);
    if (srv0 >= 0 && srv1 >= 0)
        printf(", \"server_cpu_s\": %.4f", srv1 - srv0);
}

static void run_echo(void) {
    double connect_s = connect_all();
    phase = 1;
    for (long i = 0; i < nslots; i++) {
        for (long k = 0; k < cfg.inflight; k++)
            echo_send(&conns[i]);
        flush_out(&conns[i]);
    }
    double t = now(), t_warm_end = t + cfg.warmup;
    while (now() < t_warm_end) {
        poll_once(10);
        check_deadline();
    }
    double cpu0 = cpu_self(), srv0 = cpu_server(), t0 = now();
    phase = 2;
    recording = 1;
    while (now() < t0 + cfg.duration) {
        poll_once(10);
        check_deadline();
    }
    recording = 0;
    double t1 = now(), cpu1 = cpu_self(), srv1 = cpu_server();
    phase = 3;
    double drain_end = now() + cfg.drain;
    uint64_t outstanding = 1;
    while (now() < drain_end) {
        outstanding = 0;
        for (long i = 0; i < nslots; i++)
            outstanding += conns[i].sent - conns[i].received;
        if (!outstanding)
            break;
        poll_once(10);
        check_deadline();
    }
    int drained = outstanding == 0;
    if (drained) { /* the closing handshake, briefly */
        phase = 4;
        for (long i = 0; i < nslots; i++) {
            queue_close(&conns[i]);
            flush_out(&conns[i]);
        }
        while (open_now > 0) {
            poll_once(10);
            expire_closing();
            check_deadline();
        }
    }
    sort_samples();
    double wall = t1 - t0;
    printf("{\"ok\": true, \"mode\": \"echo\", \"conns\": %ld, \"inflight\": %ld, \"size\": %ld, \"type\": \"%s\", "
           "\"connect_s\": %.4f, \"messages\": %llu, \"msgs_per_s\": %.2f, \"bytes_per_s\": %.0f, ",
           cfg.conns, cfg.inflight, cfg.size, cfg.binary ? "binary" : "text", connect_s, (unsigned long long)counted,
           (double)counted / wall, (double)counted * (double)cfg.size / wall);
    if (cfg.inflight == 1 && nsamples)
        printf("\"p50_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f, ", percentile(0.5), percentile(0.99),
               samples[nsamples - 1]);
    printf("\"drained\": %s, \"clean_closes\": %ld, \"close_timeouts\": %ld, ", drained ? "true" : "false",
           closed_clean, close_timeouts);
    print_cpu(cpu0, cpu1, srv0, srv1, wall);
    printf("}\n");
}

static void run_idle(void) {
    double cpu0 = cpu_self(), srv0 = cpu_server();
    double connect_s = connect_all();
    double cpu1 = cpu_self(), srv1 = cpu_server();
    printf("{\"event\": \"ready\", \"conns\": %ld, \"connect_s\": %.4f}\n", cfg.conns, connect_s);
    fflush(stdout);
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = NULL};
    int watch_stdin = epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &e) == 0;
    double hold_end = now() + cfg.hold;
    while (now() < hold_end && !stdin_closed) {
        poll_once(watch_stdin ? 100 : 10);
        if (open_now < cfg.conns)
            fail("lost connections while idle: %ld of %ld open", open_now, cfg.conns);
    }
    printf("{\"ok\": true, \"mode\": \"idle\", \"conns\": %ld, \"connect_s\": %.4f, ", cfg.conns, connect_s);
    print_cpu(cpu0, cpu1, srv0, srv1, connect_s);
    printf("}\n");
}

static void run_connect(void) {
    double cpu0 = cpu_self(), srv0 = cpu_server();
    double connect_s = connect_all();
    double cpu1 = cpu_self(), srv1 = cpu_server();
    sort_samples();
    printf("{\"ok\": true, \"mode\": \"connect\", \"conns\": %ld, \"concurrency\": %ld, \"connect_s\": %.4f, "
           "\"handshakes_per_s\": %.1f, \"p50_us\": %.0f, \"p99_us\": %.0f, \"max_us\": %.0f, ",
           cfg.conns, cfg.concurrency, connect_s, (double)cfg.conns / connect_s, percentile(0.5), percentile(0.99),
           samples[nsamples - 1]);
    print_cpu(cpu0, cpu1, srv0, srv1, connect_s);
    printf("}\n");
}

static void run_churn(void) {
    double warm_end = now() + cfg.warmup;
    start_connects();
    while (now() < warm_end) {
        poll_once(10);
        expire_closing();
        start_connects();
        check_deadline();
    }
    double cpu0 = cpu_self(), srv0 = cpu_server(), t0 = now();
    long timeouts0 = close_timeouts;
    recording = 1;
    while (now() < t0 + cfg.duration) {
        poll_once(10);
        expire_closing();
        start_connects();
        check_deadline();
    }
    recording = 0;
    double t1 = now(), cpu1 = cpu_self(), srv1 = cpu_server();
    long timeouts = close_timeouts - timeouts0;
    accepting = 0;
    double end = now() + 3.0;
    while (now() < end && (open_now > 0 || handshaking > 0)) {
        poll_once(10);
        expire_closing();
    }
    double wall = t1 - t0;
    printf("{\"ok\": true, \"mode\": \"churn\", \"concurrency\": %ld, \"cycles\": %llu, \"cycles_per_s\": %.1f, "
           "\"close_timeouts\": %ld, ",
           cfg.concurrency, (unsigned long long)counted, (double)counted / wall, timeouts);
    print_cpu(cpu0, cpu1, srv0, srv1, wall);
    printf("}\n");
}

static void run_broadcast(void) {
    double connect_s = connect_all();
    double settle_end = now() + cfg.settle;
    while (now() < settle_end) {
        poll_once(10);
        check_deadline();
    }
    static const uint8_t go[2] = {'g', 'o'};
    double cpu0 = cpu_self(), srv0 = cpu_server(), t0 = now();
    queue_frame(&conns[0], 0x1, go, 2);
    flush_out(&conns[0]);
    last_progress = t0;
    while (bcast_done_conns < (uint64_t)cfg.conns) {
        if (now() - last_progress > cfg.stall)
            fail("stalled: no message for %.0f s after %.3f s", cfg.stall, last_progress - t0);
        /* Few connections ready: let more data arrive before the next pass, so
         * that the loadgen does not spend a wakeup and a recv per message. */
        if (poll_once(10) < 32) {
            struct timespec nap = {0, 200 * 1000};
            nanosleep(&nap, NULL);
        }
        check_deadline();
    }
    double t1 = now(), cpu1 = cpu_self(), srv1 = cpu_server();
    /* samples hold each connection's completion time */
    sort_samples();
    double wall = t1 - t0;
    printf("{\"ok\": true, \"mode\": \"broadcast\", \"conns\": %ld, \"messages\": %ld, \"size\": %ld, "
           "\"connect_s\": %.4f, \"all_s\": %.6f, \"first_conn_s\": %.6f, \"median_conn_s\": %.6f, "
           "\"deliveries_per_s\": %.0f, ",
           cfg.conns, cfg.messages, cfg.size, connect_s, wall, bcast_first_done - t0, percentile(0.5) - t0,
           (double)cfg.conns * (double)cfg.messages / wall);
    print_cpu(cpu0, cpu1, srv0, srv1, wall);
    printf("}\n");
}

/* Queues one pubsub message on the publisher (connection 0): tag, sequence, send time; '.' up to --size. */
static void pubsub_send(char tag, uint64_t seq) {
    char msg[PUBSUB_HEAD + 126];
    int n = snprintf(msg, sizeof msg, "%c%06llu %019lld", tag, (unsigned long long)(seq % 1000000),
                     (long long)now_ns());
    for (int i = n; i < cfg.size; i++)
        msg[i] = '.';
    queue_frame(&conns[0], 0x1, (const uint8_t *)msg, (size_t)cfg.size);
}

/* Waits until every connection has the phase's n messages; a failure after --stall seconds without one. */
static void pubsub_wait_all(double t0, double next_send, uint64_t *sent, char tag) {
    last_progress = now();
    while (bcast_done_conns < (uint64_t)cfg.conns) {
        double t = now();
        if (*sent < (uint64_t)cfg.messages && t >= next_send + (double)*sent * cfg.interval) {
            pubsub_send(tag, (*sent)++);
            flush_out(&conns[0]);
            last_progress = now();
            continue;
        }
        if (t - last_progress > cfg.stall)
            fail("stalled: no message for %.0f s after %.3f s (phase %c, %llu sent)", cfg.stall, last_progress - t0,
                 tag, (unsigned long long)*sent);
        int timeout_ms = 10;
        if (*sent < (uint64_t)cfg.messages) {
            double wait = next_send + (double)*sent * cfg.interval - t;
            timeout_ms = wait <= 0 ? 0 : wait < 0.010 ? (int)(wait * 1000) : 10;
        }
        /* Few connections ready: let more data arrive before the next pass (as in broadcast), at most 0.2 ms. */
        if (poll_once(timeout_ms) < 32 && timeout_ms > 0) {
            struct timespec nap = {0, 200 * 1000};
            nanosleep(&nap, NULL);
        }
        check_deadline();
    }
}

static void print_latency(const char *name) {
    sort_samples();
    printf("\"%s_p50_us\": %.1f, \"%s_p99_us\": %.1f, \"%s_max_us\": %.1f, \"%s_samples\": %zu, ", name,
           percentile(0.5), name, percentile(0.99), name, nsamples ? samples[nsamples - 1] : -1.0, name, nsamples);
    nsamples = 0;
}

static void pubsub_reset(char tag) {
    for (long i = 0; i < nslots; i++)
        conns[i].got = 0;
    bcast_done_conns = 0;
    nsamples = 0;
    pubsub_tag = tag;
}

static void run_pubsub(void) {
    double connect_s = connect_all();
    double settle_end = now() + cfg.settle;
    while (now() < settle_end) {
        poll_once(10);
        check_deadline();
    }
    /* sync: until every connection got a sync message, one every 100 ms */
    double ts = now(), next_sync = ts;
    uint64_t syncs = 0;
    while (synced_conns < (uint64_t)cfg.conns) {
        if (now() >= next_sync) {
            pubsub_send('S', syncs++);
            flush_out(&conns[0]);
            next_sync += 0.1;
        }
        if (now() - ts > cfg.stall)
            fail("sync: %llu of %ld connections received a sync message in %.0f s", (unsigned long long)synced_conns,
                 cfg.conns, cfg.stall);
        poll_once(10);
        check_deadline();
    }
    double sync_s = now() - ts;
    /* burst: every message written at once */
    pubsub_reset('B');
    double cpu0 = cpu_self(), srv0 = cpu_server(), t0 = now();
    for (uint64_t i = 0; i < (uint64_t)cfg.messages; i++)
        pubsub_send('B', i);
    flush_out(&conns[0]);
    uint64_t sent = (uint64_t)cfg.messages;
    pubsub_wait_all(t0, t0, &sent, 'B');
    double t1 = now(), cpu1 = cpu_self(), srv1 = cpu_server();
    double wall = t1 - t0, first = bcast_first_done - t0;
    printf("{\"ok\": true, \"mode\": \"pubsub\", \"conns\": %ld, \"messages\": %ld, \"size\": %ld, "
           "\"interval_s\": %.6f, \"connect_s\": %.4f, \"sync_s\": %.4f, \"syncs\": %llu, \"all_s\": %.6f, "
           "\"first_conn_s\": %.6f, \"deliveries_per_s\": %.0f, ",
           cfg.conns, cfg.messages, cfg.size, cfg.interval, connect_s, sync_s, (unsigned long long)syncs, wall, first,
           (double)cfg.conns * (double)cfg.messages / wall);
    print_latency("burst");
    /* paced: one message every --interval seconds */
    pubsub_reset('P');
    double tp = now(), cpu2 = cpu_self(), srv2 = cpu_server();
    sent = 0;
    pubsub_wait_all(tp, tp, &sent, 'P');
    double tp1 = now(), cpu3 = cpu_self(), srv3 = cpu_server();
    printf("\"paced_s\": %.6f, \"paced_cpu_s\": %.6f, ", tp1 - tp, cpu3 - cpu2);
    if (srv2 >= 0 && srv3 >= 0)
        printf("\"paced_server_cpu_s\": %.4f, ", srv3 - srv2);
    print_latency("paced");
    print_cpu(cpu0, cpu1, srv0, srv1, wall);
    printf("}\n");
}

/* -- main -------------------------------------------------------------------- */

static void usage(void) {
    fprintf(stderr,
            "usage: loadgen --mode echo|idle|connect|churn|broadcast|pubsub --port P [--host H] [--path /]\n"
            "  [--conns N] [--inflight K] [--size S] [--binary] [--warmup S] [--duration S] [--drain S]\n"
            "  [--concurrency M] [--messages N] [--settle S] [--stall S] [--hold S] [--interval S] [--pid P] [--pgid G] [--timeout S]\n");
    exit(2);
}

static long parse_long(const char *s, long min) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < min)
        usage();
    return v;
}

static double parse_seconds(const char *s) {
    char *end;
    double v = strtod(s, &end);
    if (*end || v < 0)
        usage();
    return v;
}

int main(int argc, char **argv) {
    static const struct option opts[] = {
        {"mode", required_argument, NULL, 'm'},     {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},     {"path", required_argument, NULL, 'P'},
        {"conns", required_argument, NULL, 'c'},    {"inflight", required_argument, NULL, 'k'},
        {"size", required_argument, NULL, 's'},     {"binary", no_argument, NULL, 'b'},
        {"text", no_argument, NULL, 't'},           {"warmup", required_argument, NULL, 'w'},
        {"duration", required_argument, NULL, 'd'}, {"drain", required_argument, NULL, 'D'},
        {"settle", required_argument, NULL, 'S'},   {"hold", required_argument, NULL, 'h'},
        {"timeout", required_argument, NULL, 'T'},  {"concurrency", required_argument, NULL, 'C'},
        {"messages", required_argument, NULL, 'n'}, {"pid", required_argument, NULL, 'i'},
        {"stall", required_argument, NULL, 'x'},    {"interval", required_argument, NULL, 'I'},
        {"pgid", required_argument, NULL, 'g'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'm': {
            int found = 0;
            for (int i = 0; i < N_MODES; i++)
                if (strcmp(optarg, mode_names[i]) == 0) {
                    cfg.mode = i;
                    found = 1;
                }
            if (!found)
                usage();
            break;
        }
        case 'H': cfg.host = optarg; break;
        case 'p': cfg.port = (int)parse_long(optarg, 1); break;
        case 'P': cfg.path = optarg; break;
        case 'c': cfg.conns = parse_long(optarg, 1); break;
        case 'k': cfg.inflight = parse_long(optarg, 1); break;
        case 's': cfg.size = parse_long(optarg, 0); break;
        case 'b': cfg.binary = 1; break;
        case 't': cfg.binary = 0; break;
        case 'w': cfg.warmup = parse_seconds(optarg); break;
        case 'd': cfg.duration = parse_seconds(optarg); break;
        case 'D': cfg.drain = parse_seconds(optarg); break;
        case 'S': cfg.settle = parse_seconds(optarg); break;
        case 'h': cfg.hold = parse_seconds(optarg); break;
        case 'T': cfg.timeout = parse_seconds(optarg); break;
        case 'C': cfg.concurrency = parse_long(optarg, 1); break;
        case 'n': cfg.messages = parse_long(optarg, 1); break;
        case 'i': cfg.pid = (int)parse_long(optarg, 1); break;
        case 'g':
            if (cfg.npgids == 4)
                usage();
            cfg.pgids[cfg.npgids++] = (int)parse_long(optarg, 1);
            break;
        case 'x': cfg.stall = parse_seconds(optarg); break;
        case 'I': cfg.interval = parse_seconds(optarg); break;
        default: usage();
        }
    }
    if (optind != argc || cfg.port == 0 || cfg.duration <= 0)
        usage();
    t_begin = now();
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);

    if (cfg.mode == M_CHURN) {
        nslots = cfg.concurrency;
    } else {
        nslots = cfg.conns;
        if (cfg.mode == M_ECHO || cfg.mode == M_BROADCAST) {
            if (cfg.mode == M_BROADCAST && (cfg.size < 1 || cfg.size > 125))
                fail("broadcast messages must be 1 to 125 bytes");
        }
        if (cfg.mode == M_PUBSUB) {
            if (cfg.size < PUBSUB_HEAD || cfg.size > 125)
                fail("pubsub messages must be %d to 125 bytes", PUBSUB_HEAD);
            if (cfg.messages > 999999)
                fail("pubsub: at most 999999 messages");
        }
    }

    /* file descriptors: one per connection, plus a few */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    if ((rlim_t)nslots + 16 > rl.rlim_cur)
        fail("RLIMIT_NOFILE is %llu: too low for %ld connections", (unsigned long long)rl.rlim_cur, nslots);

    memset(&server_addr, 0, sizeof server_addr);
    server_addr.sin_family = AF_INET;
    server_addr.sin_port = htons((uint16_t)cfg.port);
    if (inet_pton(AF_INET, cfg.host, &server_addr.sin_addr) != 1)
        fail("bad IPv4 address %s", cfg.host);
    int rl_len = snprintf(request, sizeof request,
                          "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                          cfg.path, cfg.host, cfg.port);
    if (rl_len < 0 || (size_t)rl_len >= sizeof request)
        fail("path too long");
    request_len = (size_t)rl_len;

    rng_state = ((uint64_t)getpid() << 32) ^ (uint64_t)(now() * 1e9) ^ 0x9E3779B97F4A7C15ULL;
    if (!rng_state)
        rng_state = 1;
    size_t plen = (size_t)cfg.size + PATTERN_SLACK;
    pattern = malloc(plen);
    rbuf = malloc(RBUF_SIZE);
    conns = calloc((size_t)nslots, sizeof *conns);
    if (!pattern || !rbuf || !conns)
        fail("out of memory");
    for (size_t i = 0; i < plen; i++) {
        uint8_t r = (uint8_t)(rng() >> 56);
        pattern[i] = cfg.binary ? r : (uint8_t)(0x20 + r % 95); /* text: printable ASCII, valid UTF-8 */
    }
    for (long i = 0; i < nslots; i++) {
        conns[i].fd = -1;
        conns[i].state = ST_FREE;
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        fail("epoll_create1: %s", strerror(errno));

    switch (cfg.mode) {
    case M_ECHO: run_echo(); break;
    case M_IDLE: run_idle(); break;
    case M_CONNECT: run_connect(); break;
    case M_CHURN: run_churn(); break;
    case M_BROADCAST: run_broadcast(); break;
    case M_PUBSUB: run_pubsub(); break;
    }
    fflush(stdout);
    return 0;
}
