/*
 * The server of the client benchmark (bench/client_bench.py): one thread, epoll, never the bottleneck.
 *
 * The request path picks what a connection does, e.g. "GET /stream/text/1024":
 *   /echo/KIND/SIZE     every data frame is checked and echoed (unmasked, same opcode and FIN): lockstep rows,
 *                       and connect + close;
 *   /stream/KIND/SIZE   on the client's text message "go" (a subscription; streaming right after the 101
 *                       would race ws4py 0.6.0's client, which hands the bytes that came with the 101 to its
 *                       parser while its reading thread starts), the server sends messages of SIZE bytes (one
 *                       frame each) as fast as the client reads them (from a block of ready frames: no copy, no
 *                       per-message work), until the client's close frame (it finishes the frame it is in, then
 *                       answers the close) or the client goes away: receive rows;
 *   /count/KIND/SIZE    every message is checked and counted; the text message "end" is answered with the text
 *                       message "count N" (N: the messages before it): send rows.
 * KIND is "text" or "binary"; every message of a connection is SIZE bytes of the same ASCII pattern (byte i is
 * 'a' + i % 26; valid UTF-8), in both directions.
 *
 * What a client sends is verified: every frame masked, no RSV bit, known opcodes, control frames short and
 * final, fragments in order; every data message of the connection's KIND and exactly SIZE bytes, each of
 * its bytes (unmasked) equal to the pattern. A violation is answered with a close frame, 1002 (framing) or
 * 1007 (content), and reported. Pings get pongs; a close frame is echoed, then the server closes the TCP
 * connection first.
 *
 * Reports: one JSON line on stdout per connection that carried a data message or failed (mode, kind, size,
 * messages in and out, the server's CPU seconds over the connection's life from getrusage, its wall time,
 * how it ended, and "error": null or what was wrong). Connections that only opened and closed are not
 * reported (the connect row makes thousands).
 *
 * Usage: server PORT      server --version
 * Build: gcc -O2 -Wall -Wextra -Werror -o server server.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../servers/ws_accept.h"  /* SHA-1 and base64 for Sec-WebSocket-Accept */

#define SCRATCH_SIZE (256 * 1024) /* the shared read buffer */
#define HEAD_MAX 8192             /* an upgrade request longer than this is refused */
#define MAX_SIZE (64u << 20)      /* the largest message size a path may ask for */
#define OUT_HIGH (4u << 20)       /* stop reading while this much waits to be sent */
#define OUT_MAX (128u << 20)      /* drop a connection that lets more than this pile up */
#define STREAM_BLOCK (256 * 1024) /* the ready frames of a stream: at least this many bytes */
#define READS_PER_EVENT 8
#define MAX_EVENTS 256

enum state { ST_HANDSHAKE, ST_OPEN, ST_CLOSING };
enum mode { M_ECHO, M_STREAM, M_COUNT };
static const char *mode_names[] = {"echo", "stream", "count"};

typedef struct conn {
    int fd;
    enum state state;
    int dead;
    uint32_t events;       /* registered with epoll */
    uint8_t *in;           /* a partial frame (or request head) carried over between reads */
    size_t in_len, in_cap;
    size_t need;           /* bytes the pending frame needs in total, when known */
    uint8_t *out;          /* bytes not yet sent */
    size_t out_off, out_len, out_cap;
    enum mode mode;
    int text;              /* the connection's messages are text (else binary) */
    size_t size;           /* ... of this many bytes */
    int in_msg;            /* a fragmented message is under way */
    unsigned msg_op;       /* its opcode */
    size_t msg_off;        /* its bytes so far */
    uint64_t messages_in, messages_out;
    uint8_t *block;        /* stream: whole frames, sent round and round */
    size_t block_len, block_off, frame_len;
    int close_received;
    int streaming;         /* stream: "go" came */
    double cpu0, wall0;
    char error[160];
    struct conn *next_dead;
} conn_t;

static int epfd, listen_fd;
static uint8_t scratch[SCRATCH_SIZE];
static conn_t **by_fd;
static size_t by_fd_len;
static conn_t *dead_list;
static uint8_t *pattern; /* 'a' + i % 26, as long as the longest SIZE asked for, + 8 */
static size_t pattern_len;

static void die(const char *what) {
    fprintf(stderr, "server: %s: %s\n", what, strerror(errno));
    exit(1);
}

static double cpu_now(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void report(conn_t *c) {
    if (c->state == ST_HANDSHAKE || (!c->messages_in && !c->messages_out && !c->error[0]))
        return;
    printf("{\"mode\": \"%s\", \"kind\": \"%s\", \"size\": %zu, \"messages_in\": %llu, \"messages_out\": %llu, "
           "\"cpu_s\": %.6f, \"wall_s\": %.6f, \"close_received\": %s, \"error\": ",
           mode_names[c->mode], c->text ? "text" : "binary", c->size, (unsigned long long)c->messages_in,
           (unsigned long long)c->messages_out, cpu_now() - c->cpu0, wall_now() - c->wall0,
           c->close_received ? "true" : "false");
    if (c->error[0])
        printf("\"%s\"}\n", c->error); /* the messages below hold no quote or backslash */
    else
        printf("null}\n");
    fflush(stdout);
}

static void kill_conn(conn_t *c) { /* freed after the current batch of events */
    if (!c->dead) {
        c->dead = 1;
        c->next_dead = dead_list;
        dead_list = c;
    }
}

static void free_dead(void) {
    while (dead_list) {
        conn_t *c = dead_list;
        dead_list = c->next_dead;
        report(c);
        by_fd[c->fd] = NULL;
        close(c->fd);
        free(c->in);
        free(c->out);
        free(c->block);
        free(c);
    }
}

static void set_events(conn_t *c, uint32_t events) {
    if (c->dead || events == c->events)
        return;
    struct epoll_event e = {.events = events, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e) < 0) {
        kill_conn(c);
        return;
    }
    c->events = events;
}

/* Room for n more bytes at the end of the output buffer, or NULL (the connection is dropped). */
static uint8_t *out_room(conn_t *c, size_t n) {
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (c->out_len + n > c->out_cap) {
        if (c->out_off) {
            memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
            c->out_len -= c->out_off;
            c->out_off = 0;
        }
        if (c->out_len + n > OUT_MAX) {
            snprintf(c->error, sizeof c->error, "the client let more than %u bytes pile up", OUT_MAX);
            kill_conn(c);
            return NULL;
        }
        if (c->out_len + n > c->out_cap) {
            size_t cap = c->out_cap ? c->out_cap : 256;
            while (cap < c->out_len + n)
                cap *= 2;
            uint8_t *p = realloc(c->out, cap);
            if (!p) {
                kill_conn(c);
                return NULL;
            }
            c->out = p;
            c->out_cap = cap;
        }
    }
    return c->out + c->out_len;
}

static void out_append(conn_t *c, const void *data, size_t n) {
    uint8_t *p = out_room(c, n);
    if (p) {
        memcpy(p, data, n);
        c->out_len += n;
    }
}

/* Streams ready frames until the socket is full; 0 if it is (or the connection failed). */
static int stream_more(conn_t *c) {
    for (;;) {
        ssize_t r = send(c->fd, c->block + c->block_off, c->block_len - c->block_off, MSG_NOSIGNAL);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                kill_conn(c);
            return 0;
        }
        size_t before = c->block_off / c->frame_len;
        c->block_off += (size_t)r;
        c->messages_out += c->block_off / c->frame_len - before;
        if (c->block_off == c->block_len)
            c->block_off = 0;
    }
}

/* Sends what it can; then sets the epoll interest, or finishes a close. */
static void flush(conn_t *c) {
    if (c->dead)
        return;
    while (c->out_off < c->out_len) {
        ssize_t r = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            kill_conn(c);
            return;
        }
        c->out_off += (size_t)r;
    }
    size_t pending = c->out_len - c->out_off;
    int streaming = c->streaming && c->state == ST_OPEN && pending == 0;
    if (streaming)
        stream_more(c);
    if (c->dead)
        return;
    if (pending == 0) {
        c->out_off = c->out_len = 0;
        free(c->out); /* an idle connection holds no buffer */
        c->out = NULL;
        c->out_cap = 0;
        if (c->state == ST_CLOSING) { /* the close frame is out: the server closes first */
            while (recv(c->fd, scratch, sizeof scratch, 0) > 0) /* unread bytes would turn the FIN into a RST */
                ;
            kill_conn(c);
            return;
        }
    }
    uint32_t ev = (pending || streaming ? EPOLLOUT : 0) | (c->state != ST_CLOSING && pending < OUT_HIGH ? EPOLLIN : 0);
    set_events(c, ev);
}

static size_t header(uint8_t *h, uint8_t b0, uint64_t len) {
    h[0] = b0;
    if (len < 126) {
        h[1] = (uint8_t)len;
        return 2;
    }
    if (len < 65536) {
        h[1] = 126, h[2] = (uint8_t)(len >> 8), h[3] = (uint8_t)len;
        return 4;
    }
    h[1] = 127;
    for (int i = 0; i < 8; i++)
        h[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

static void unmask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4]) {
    uint32_t k32;
    memcpy(&k32, key, 4);
    uint64_t k64 = (uint64_t)k32 << 32 | k32;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, src + i, 8);
        v ^= k64;
        memcpy(dst + i, &v, 8);
    }
    for (; i < n; i++)
        dst[i] = src[i] ^ key[i & 3];
}

/* Whether the masked payload, unmasked, equals the pattern from byte `at` of a message on. The differences are
 * or-ed together without an early exit, a loop the compiler vectorizes: checking 1 MiB takes well under the
 * time a Python client takes to send it. */
static int matches(const uint8_t *src, size_t n, const uint8_t key[4], size_t at) {
    uint32_t k32;
    memcpy(&k32, key, 4);
    uint64_t k64 = (uint64_t)k32 << 32 | k32, diff = 0;
    const uint8_t *want = pattern + at % 26; /* the pattern repeats every 26 bytes; pattern_len > at + n + 33 */
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v, w;
        memcpy(&v, src + i, 8);
        memcpy(&w, want + i, 8);
        diff |= v ^ k64 ^ w;
    }
    for (; i < n; i++)
        diff |= (uint64_t)(src[i] ^ key[i & 3] ^ want[i]);
    return diff == 0;
}

/* Appends one frame to the output, its payload unmasked. */
static void echo_frame(conn_t *c, uint8_t b0, const uint8_t *payload, size_t len, const uint8_t key[4]) {
    uint8_t h[10];
    out_append(c, h, header(h, b0, len));
    uint8_t *p = out_room(c, len);
    if (p) {
        unmask(p, payload, len, key);
        c->out_len += len;
    }
}

/* A close frame with this code and reason, the error reported, reading stops. */
static void fail(conn_t *c, unsigned code, const char *error) {
    if (!c->error[0])
        snprintf(c->error, sizeof c->error, "%s", error);
    uint8_t frame[2 + 2 + 123];
    size_t n = strlen(error) > 120 ? 120 : strlen(error);
    frame[0] = 0x88, frame[1] = (uint8_t)(2 + n), frame[2] = (uint8_t)(code >> 8), frame[3] = (uint8_t)code;
    memcpy(frame + 4, error, n);
    out_append(c, frame, 4 + n);
    c->state = ST_CLOSING;
}

/* One data frame (op 0, 1 or 2), its payload still masked; 0 if the connection failed. */
static int on_data(conn_t *c, uint8_t b0, const uint8_t *payload, size_t len, const uint8_t key[4]) {
    unsigned op = b0 & 0x0f;
    int fin = b0 & 0x80;
    char why[160];
    if (op == 0 && !c->in_msg) {
        fail(c, 1002, "continuation frame without a message");
        return 0;
    }
    if (op != 0 && c->in_msg) {
        fail(c, 1002, "new message before the last one ended");
        return 0;
    }
    if (op != 0) {
        c->in_msg = 1, c->msg_op = op, c->msg_off = 0;
        /* count mode's end mark: the text message "end" */
        if (c->mode == M_COUNT && op == 1 && fin && len == 3) {
            uint8_t text[3];
            unmask(text, payload, 3, key);
            if (memcmp(text, "end", 3) == 0) {
                char reply[40];
                int n = snprintf(reply, sizeof reply, "count %llu", (unsigned long long)c->messages_in);
                uint8_t h[2] = {0x81, (uint8_t)n};
                out_append(c, h, 2);
                out_append(c, reply, (size_t)n);
                c->messages_out++;
                c->in_msg = 0;
                return 1;
            }
        }
    }
    if (c->mode == M_STREAM) {
        uint8_t text[2];
        if (op == 1 && fin && len == 2 && !c->streaming && (unmask(text, payload, 2, key), memcmp(text, "go", 2) == 0)) {
            c->streaming = 1;
            c->in_msg = 0;
            return 1;
        }
        fail(c, 1002, "a data message on a stream connection, other than one 'go' first");
        return 0;
    }
    if (c->msg_op != (c->text ? 1u : 2u)) {
        snprintf(why, sizeof why, "a %s message on a %s connection", c->msg_op == 1 ? "text" : "binary",
                 c->text ? "text" : "binary");
        fail(c, 1007, why);
        return 0;
    }
    if (c->msg_off + len > c->size || (fin && c->msg_off + len != c->size)) {
        snprintf(why, sizeof why, "a message of %s%zu bytes, not %zu", fin ? "" : "over ", c->msg_off + len,
                 c->size);
        fail(c, 1007, why);
        return 0;
    }
    if (!matches(payload, len, key, c->msg_off)) {
        snprintf(why, sizeof why, "wrong bytes in message %llu (at byte %zu or after)",
                 (unsigned long long)c->messages_in + 1, c->msg_off);
        fail(c, 1007, why);
        return 0;
    }
    if (c->mode == M_ECHO) {
        echo_frame(c, b0, payload, len, key);
        if (fin)
            c->messages_out++;
    }
    c->msg_off += len;
    if (fin) {
        c->in_msg = 0;
        c->messages_in++;
    }
    return 1;
}

/* The rest of the frame the stream is in, then the answer to the client's close frame. */
static void end_stream(conn_t *c) {
    size_t into = c->block_off % c->frame_len;
    if (into) {
        out_append(c, c->block + c->block_off, c->frame_len - into);
        c->messages_out++;
    }
}

/* Handles the complete frames at the start of buf; returns the bytes used, and sets c->need. */
static size_t on_frames(conn_t *c, const uint8_t *buf, size_t len) {
    size_t pos = 0;
    while (c->state == ST_OPEN && !c->dead) {
        size_t avail = len - pos;
        const uint8_t *f = buf + pos;
        if (avail < 2) {
            c->need = 14;
            return pos;
        }
        uint8_t b0 = f[0], b1 = f[1];
        unsigned op = b0 & 0x0f;
        const char *bad = !(b1 & 0x80)                                        ? "an unmasked frame"
                          : (b0 & 0x70)                                       ? "an RSV bit set"
                          : (op > 2 && op != 8 && op != 9 && op != 10)        ? "an unknown opcode"
                          : (op >= 8 && ((b1 & 0x7f) > 125 || !(b0 & 0x80))) ? "a long or fragmented control frame"
                                                                              : NULL;
        if (bad) {
            fail(c, 1002, bad);
            return len;
        }
        size_t hl = 2 + ((b1 & 0x7f) == 126 ? 2 : (b1 & 0x7f) == 127 ? 8 : 0) + 4;
        if (avail < hl) {
            c->need = hl;
            return pos;
        }
        uint64_t plen = b1 & 0x7f;
        if (plen == 126)
            plen = (uint64_t)f[2] << 8 | f[3];
        else if (plen == 127) {
            plen = 0;
            for (int i = 0; i < 8; i++)
                plen = plen << 8 | f[2 + i];
        }
        if (plen > MAX_SIZE) {
            fail(c, 1009, "a frame over the largest size");
            return len;
        }
        if (avail - hl < plen) {
            c->need = hl + (size_t)plen;
            return pos;
        }
        const uint8_t *key = f + hl - 4, *payload = f + hl;
        if (op == 9) {
            echo_frame(c, 0x8A, payload, (size_t)plen, key);
        } else if (op == 8) {
            c->close_received = 1;
            if (c->mode == M_STREAM)
                end_stream(c);
            echo_frame(c, 0x88, payload, (size_t)plen, key);
            c->state = ST_CLOSING;
        } else if (op <= 2) {
            if (!on_data(c, b0, payload, (size_t)plen, key))
                return len;
        } /* pong: ignored */
        pos += hl + (size_t)plen;
    }
    c->need = 0;
    return pos; /* closing or dead: the rest is ignored */
}

/* The mode, kind and size of a request target "/MODE/KIND/SIZE"; 0 if it is not one. */
static int parse_target(conn_t *c, const char *target, size_t n) {
    char buf[128], mode[16], kind[16];
    unsigned long size;
    if (n >= sizeof buf)
        return 0;
    memcpy(buf, target, n);
    buf[n] = 0;
    if (sscanf(buf, "/%15[a-z]/%15[a-z]/%lu", mode, kind, &size) != 3 || size == 0 || size > MAX_SIZE)
        return 0;
    if (strcmp(mode, "echo") == 0)
        c->mode = M_ECHO;
    else if (strcmp(mode, "stream") == 0)
        c->mode = M_STREAM;
    else if (strcmp(mode, "count") == 0)
        c->mode = M_COUNT;
    else
        return 0;
    if (strcmp(kind, "text") == 0)
        c->text = 1;
    else if (strcmp(kind, "binary") == 0)
        c->text = 0;
    else
        return 0;
    c->size = size;
    if (size + 64 > pattern_len) { /* + 64: matches() reads 8 bytes from up to 25 bytes past an offset */
        size_t len = size + 64;
        uint8_t *p = realloc(pattern, len);
        if (!p)
            return 0;
        for (size_t i = 0; i < len; i++)
            p[i] = (uint8_t)('a' + i % 26);
        pattern = p, pattern_len = len;
    }
    return 1;
}

/* The stream's block: whole frames of SIZE bytes, at least STREAM_BLOCK bytes; 0 if out of memory. */
static int make_block(conn_t *c) {
    uint8_t h[10];
    size_t hl = header(h, c->text ? 0x81 : 0x82, c->size);
    c->frame_len = hl + c->size;
    size_t frames = (STREAM_BLOCK + c->frame_len - 1) / c->frame_len;
    c->block_len = frames * c->frame_len;
    c->block = malloc(c->block_len);
    if (!c->block)
        return 0;
    for (size_t i = 0; i < frames; i++) {
        memcpy(c->block + i * c->frame_len, h, hl);
        memcpy(c->block + i * c->frame_len + hl, pattern, c->size);
    }
    return 1;
}

/* The upgrade request; returns the bytes used (0: incomplete). */
static size_t on_head(conn_t *c, const uint8_t *buf, size_t len) {
    const uint8_t *end = memmem(buf, len < HEAD_MAX ? len : HEAD_MAX, "\r\n\r\n", 4);
    if (!end) {
        if (len >= HEAD_MAX)
            kill_conn(c);
        c->need = len + 1;
        return 0;
    }
    size_t head = (size_t)(end - buf) + 4;
    const char *key = NULL;
    size_t key_len = 0;
    const char *p = (const char *)buf, *stop = (const char *)end;
    static const char name[] = "sec-websocket-key:";
    while (p < stop) {
        const char *eol = memmem(p, (size_t)(stop - p), "\r\n", 2);
        if (!eol)
            eol = stop;
        if ((size_t)(eol - p) > sizeof name - 1 && strncasecmp(p, name, sizeof name - 1) == 0) {
            key = p + sizeof name - 1;
            while (key < eol && (*key == ' ' || *key == '\t'))
                key++;
            key_len = (size_t)(eol - key);
            while (key_len && (key[key_len - 1] == ' ' || key[key_len - 1] == '\t'))
                key_len--;
        }
        p = eol + 2;
    }
    const char *target = (const char *)buf + 4, *target_end = memchr(target, ' ', (size_t)(stop - target));
    if (memcmp(buf, "GET ", 4) != 0 || !key || key_len == 0 || key_len > 64 || !target_end ||
        !parse_target(c, target, (size_t)(target_end - target)) || (c->mode == M_STREAM && !make_block(c))) {
        static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        out_append(c, bad, sizeof bad - 1);
        snprintf(c->error, sizeof c->error, "a request that is not a websocket upgrade to /MODE/KIND/SIZE");
        c->state = ST_CLOSING;
        c->need = 0;
        return len;
    }
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    uint8_t cat[64 + sizeof guid], digest[20];
    memcpy(cat, key, key_len);
    memcpy(cat + key_len, guid, sizeof guid - 1);
    sha1(cat, key_len + sizeof guid - 1, digest);
    char accept[32], reply[256];
    base64(digest, sizeof digest, accept);
    int n = snprintf(reply, sizeof reply,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n\r\n",
                     accept);
    out_append(c, reply, (size_t)n);
    c->state = ST_OPEN;
    c->cpu0 = cpu_now();
    c->wall0 = wall_now();
    return head + on_frames(c, buf + head, len - head);
}

static size_t consume(conn_t *c, const uint8_t *buf, size_t len) {
    return c->state == ST_HANDSHAKE ? on_head(c, buf, len) : on_frames(c, buf, len);
}

static int in_reserve(conn_t *c, size_t cap) {
    if (cap <= c->in_cap)
        return 1;
    uint8_t *p = realloc(c->in, cap);
    if (!p) {
        kill_conn(c);
        return 0;
    }
    c->in = p;
    c->in_cap = cap;
    return 1;
}

static void on_readable(conn_t *c) {
    for (int round = 0; round < READS_PER_EVENT; round++) {
        if (c->dead || c->state == ST_CLOSING || c->out_len - c->out_off >= OUT_HIGH)
            break;
        uint8_t *dst;
        size_t room;
        if (c->in_len == 0) { /* nothing carried over: read into the shared buffer */
            dst = scratch;
            room = sizeof scratch;
        } else {
            size_t want = c->need > c->in_len ? c->need : c->in_len + 1;
            if (want - c->in_len < 16384)
                want = c->in_len + 16384;
            if (!in_reserve(c, want))
                return;
            dst = c->in + c->in_len;
            room = c->in_cap - c->in_len;
        }
        ssize_t r = recv(c->fd, dst, room, 0);
        if (r == 0) {
            kill_conn(c);
            return;
        }
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                kill_conn(c);
            break;
        }
        if (dst == scratch) {
            size_t used = consume(c, scratch, (size_t)r);
            if (used < (size_t)r && !c->dead && c->state != ST_CLOSING) { /* keep the partial frame */
                size_t rest = (size_t)r - used;
                if (!in_reserve(c, c->need > rest ? c->need : rest))
                    return;
                memcpy(c->in, scratch + used, rest);
                c->in_len = rest;
            }
        } else {
            c->in_len += (size_t)r;
            size_t used = consume(c, c->in, c->in_len);
            c->in_len -= used;
            if (c->in_len && used)
                memmove(c->in, c->in + used, c->in_len);
            if (c->state == ST_CLOSING)
                c->in_len = 0;
            if (c->in_len == 0) {
                free(c->in);
                c->in = NULL;
                c->in_cap = 0;
            }
        }
        if ((size_t)r < room)
            break; /* the socket is (most likely) empty: level-triggered epoll says if not */
    }
    flush(c);
}

static void on_accept(void) {
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                fprintf(stderr, "server: accept: %s\n", strerror(errno));
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if ((size_t)fd >= by_fd_len) {
            size_t n = by_fd_len ? by_fd_len : 1024;
            while (n <= (size_t)fd)
                n *= 2;
            conn_t **p = realloc(by_fd, n * sizeof *p);
            if (!p) {
                close(fd);
                continue;
            }
            memset(p + by_fd_len, 0, (n - by_fd_len) * sizeof *p);
            by_fd = p;
            by_fd_len = n;
        }
        conn_t *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->state = ST_HANDSHAKE;
        c->events = EPOLLIN;
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
            close(fd);
            free(c);
            continue;
        }
        by_fd[fd] = c;
    }
}

int main(int argc, char **argv) {
    int port = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            printf("gcc %s\n", __VERSION__);
            return 0;
        } else if (port < 0 && argv[i][0] >= '0' && argv[i][0] <= '9') {
            port = atoi(argv[i]);
        } else {
            fprintf(stderr, "usage: %s PORT\n", argv[0]);
            return 2;
        }
    }
    if (port < 0 || port > 65535) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }

    struct rlimit rl; /* one descriptor per connection: lift the soft limit to the hard one */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);

    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd < 0)
        die("socket");
    int one = 1;
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(listen_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listen_fd, (struct sockaddr *)&addr, sizeof addr) < 0)
        die("bind");
    if (listen(listen_fd, 1024) < 0)
        die("listen");
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die("epoll_create1");
    struct epoll_event le = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, listen_fd, &le) < 0)
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
            conn_t *c = events[i].data.ptr;
            if (c == NULL) {
                on_accept();
                continue;
            }
            if (c->dead)
                continue;
            uint32_t ev = events[i].events;
            if (ev & EPOLLOUT)
                flush(c);
            if (!c->dead && (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                on_readable(c);
        }
        free_dead();
    }
}
