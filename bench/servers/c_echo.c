/*
 * Reference WebSocket echo server for bench/threaded_bench.py: the "floor".
 *
 * What a small, fast C server achieves on the same machine in the same run,
 * so that the Python servers' numbers can be read against it (in the
 * one-connection lockstep rows every server mostly waits for the loopback
 * round trip and the wake-ups).  It is a benchmark peer, not a WebSocket
 * implementation to reuse:
 *   - no UTF-8 validation of text frames or close reasons, no close-code
 *     checks, no extensions, no subprotocols, only the Sec-WebSocket-Key header
 *     of the upgrade request is looked at;
 *   - fragmented messages are echoed frame by frame (same opcode and FIN);
 *     each frame is buffered whole before it is echoed (no cut-through), as a
 *     message-based server would.
 *
 * One thread, epoll (level-triggered), non-blocking sockets, TCP_NODELAY,
 * listen backlog 1024, on 127.0.0.1:PORT.  A data frame is echoed unmasked
 * with the same opcode and FIN; a ping gets a pong; a close frame is echoed,
 * then the server closes the TCP connection.  An idle connection holds no
 * buffer: reads go to one shared buffer, and only a partial frame is kept per
 * connection (frames up to MAX_FRAME), and a buffer is freed once empty.
 * Reading pauses while more than OUT_HIGH bytes wait to be sent.
 *
 * With --broadcast, a text frame "go" (FIN, unfragmented) makes the server
 * send BROADCAST_COUNT text messages of BROADCAST_PAYLOAD to every open
 * connection, the sender included, instead of echoing (as the Python servers
 * of bench/servers/_common.py do); other data frames are ignored.
 *
 * Usage: c_echo PORT [--broadcast]     c_echo --version
 * Build: gcc -O2 -Wall -Wextra -Werror -o c_echo c_echo.c
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
#include <unistd.h>

#include "ws_accept.h"  /* SHA-1 and base64 for Sec-WebSocket-Accept */

#define SCRATCH_SIZE (256 * 1024) /* the shared read buffer */
#define HEAD_MAX 8192             /* an upgrade request longer than this is refused */
#define MAX_FRAME (64u << 20)     /* a longer frame drops the connection */
#define OUT_HIGH (4u << 20)       /* stop reading while this much waits to be sent */
#define OUT_MAX (128u << 20)      /* drop a connection that lets more than this pile up */
#define READS_PER_EVENT 8
#define MAX_EVENTS 256

#define BROADCAST_TRIGGER "go"
#define BROADCAST_COUNT 100
#define BROADCAST_PAYLOAD "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

enum state { ST_HANDSHAKE, ST_OPEN, ST_CLOSING };

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
    struct conn *next_dead;
} conn_t;

static int epfd, listen_fd, broadcast_mode;
static uint8_t scratch[SCRATCH_SIZE];
static conn_t **by_fd;
static size_t by_fd_len;
static conn_t *dead_list;
static uint8_t *bcast_block;
static size_t bcast_len;

/* -- connections ------------------------------------------------------------------ */

static void die(const char *what) {
    fprintf(stderr, "c_echo: %s: %s\n", what, strerror(errno));
    exit(1);
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
        by_fd[c->fd] = NULL;
        close(c->fd);
        free(c->in);
        free(c->out);
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
    uint32_t ev = (pending ? EPOLLOUT : 0) | (c->state != ST_CLOSING && pending < OUT_HIGH ? EPOLLIN : 0);
    set_events(c, ev);
}

static void frame_header(conn_t *c, uint8_t b0, uint64_t len) {
    uint8_t h[10];
    size_t n = 2;
    h[0] = b0;
    if (len < 126) {
        h[1] = (uint8_t)len;
    } else if (len < 65536) {
        h[1] = 126, h[2] = (uint8_t)(len >> 8), h[3] = (uint8_t)len, n = 4;
    } else {
        h[1] = 127, n = 10;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    }
    out_append(c, h, n);
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

/* Appends one frame to the output, its payload unmasked. */
static void echo_frame(conn_t *c, uint8_t b0, const uint8_t *payload, size_t len, const uint8_t key[4]) {
    frame_header(c, b0, len);
    uint8_t *p = out_room(c, len);
    if (p) {
        unmask(p, payload, len, key);
        c->out_len += len;
    }
}

static void broadcast(void) {
    for (size_t fd = 0; fd < by_fd_len; fd++) {
        conn_t *c = by_fd[fd];
        if (c && !c->dead && c->state == ST_OPEN)
            out_append(c, bcast_block, bcast_len);
    }
    for (size_t fd = 0; fd < by_fd_len; fd++) {
        conn_t *c = by_fd[fd];
        if (c && !c->dead && c->state == ST_OPEN)
            flush(c);
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
        if (!(b1 & 0x80) || (b0 & 0x70) || (op > 2 && op != 8 && op != 9 && op != 10) ||
            (op >= 8 && ((b1 & 0x7f) > 125 || !(b0 & 0x80)))) {
            kill_conn(c); /* unmasked, RSV bits, unknown opcode, bad control frame */
            return pos;
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
        if (plen > MAX_FRAME) {
            kill_conn(c);
            return pos;
        }
        if (avail - hl < plen) {
            c->need = hl + (size_t)plen;
            return pos;
        }
        const uint8_t *key = f + hl - 4, *payload = f + hl;
        if (op == 9) {
            echo_frame(c, 0x8A, payload, (size_t)plen, key);
        } else if (op == 8) {
            echo_frame(c, 0x88, payload, (size_t)plen, key);
            c->state = ST_CLOSING;
        } else if (op <= 2) {
            if (!broadcast_mode) {
                echo_frame(c, b0, payload, (size_t)plen, key);
            } else if (op == 1 && (b0 & 0x80) && plen == sizeof BROADCAST_TRIGGER - 1) {
                uint8_t text[sizeof BROADCAST_TRIGGER - 1];
                unmask(text, payload, sizeof text, key);
                if (memcmp(text, BROADCAST_TRIGGER, sizeof text) == 0)
                    broadcast();
            }
        } /* pong: ignored */
        pos += hl + (size_t)plen;
    }
    c->need = 0;
    return pos; /* closing or dead: the rest is ignored */
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
    if (memcmp(buf, "GET ", 4) != 0 || !key || key_len == 0 || key_len > 64) {
        static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        out_append(c, bad, sizeof bad - 1);
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
                fprintf(stderr, "c_echo: accept: %s\n", strerror(errno));
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
        if (strcmp(argv[i], "--broadcast") == 0) {
            broadcast_mode = 1;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("gcc %s\n", __VERSION__);
            return 0;
        } else if (port < 0 && argv[i][0] >= '0' && argv[i][0] <= '9') {
            port = atoi(argv[i]);
        } else {
            fprintf(stderr, "usage: %s PORT [--broadcast]\n", argv[0]);
            return 2;
        }
    }
    if (port < 0 || port > 65535) {
        fprintf(stderr, "usage: %s PORT [--broadcast]\n", argv[0]);
        return 2;
    }

    struct rlimit rl; /* one descriptor per connection: lift the soft limit to the hard one */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);

    static const char payload[] = BROADCAST_PAYLOAD;
    size_t one_len = 2 + sizeof payload - 1;
    bcast_len = one_len * BROADCAST_COUNT;
    bcast_block = malloc(bcast_len);
    if (!bcast_block)
        die("malloc");
    for (int i = 0; i < BROADCAST_COUNT; i++) {
        uint8_t *p = bcast_block + (size_t)i * one_len;
        p[0] = 0x81;
        p[1] = (uint8_t)(sizeof payload - 1);
        memcpy(p + 2, payload, sizeof payload - 1);
    }

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
