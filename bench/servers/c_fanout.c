/*
 * Reference fan-out server for bench/pubsub_bench.py: the "floor" of the pub/sub benchmark.
 *
 * What a small C server achieves on the same machine in the same run, so that
 * the paced latency of ws4py's brokers can be read against what this machine
 * allows at all (the load generator must receive every delivery on the other
 * core too).  It is a benchmark peer, not a WebSocket implementation to reuse:
 * no UTF-8 validation, no close-code checks, no extensions, no subprotocols;
 * only the Sec-WebSocket-Key header of the upgrade request is looked at (the
 * handshake is c_echo.c's, with the SHA-1 and base64 of ws_accept.h).
 *
 * Every text message a client sends (one unfragmented frame) is sent as one
 * unmasked text frame to every open connection, the sender included: the
 * frames of the messages read in one recv() from one client are joined and go
 * out with one send() per connection (a paced message is one send() per
 * connection; a burst read at once is one send() per connection too, as a
 * server that writes what it has at once would).  A connection whose earlier
 * bytes are still queued gets the new ones appended to its queue, which is
 * flushed on EPOLLOUT, in order; past OUT_MAX queued bytes it is dropped (a
 * peer that does not read holds bounded memory).  The text "pid?" is answered
 * with the server's process id, to the sender alone (the benchmark asks it
 * until the server answers, as it does of ws4py's workers).  A ping gets a
 * pong; a close frame is echoed, then the server closes the connection.
 *
 * One thread, epoll (level-triggered), non-blocking sockets, TCP_NODELAY,
 * listen backlog 1024, on 127.0.0.1:PORT.
 *
 * With --redis redis://HOST:PORT (the floor of the Redis rows): --workers N
 * processes (forked at the start, each with its own SO_REUSEPORT listening
 * socket on PORT, as ws4py's serve --workers has it), each with two
 * connections to Redis. A client's text message is not fanned out at once but
 * published (PUBLISH bench <payload>, the replies read and dropped); each
 * worker is subscribed to "bench" and fans out what Redis sends it, the
 * messages of one read from Redis joined, one send() per connection.
 *
 * Usage: c_fanout PORT [--workers N] [--redis redis://HOST:PORT]     c_fanout --version
 * Build: gcc -O2 -Wall -Wextra -Werror -o c_fanout c_fanout.c
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
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ws_accept.h" /* SHA-1 and base64 for Sec-WebSocket-Accept */

#define SCRATCH_SIZE (256 * 1024) /* the shared read buffer */
#define HEAD_MAX 8192             /* an upgrade request longer than this is refused */
#define MAX_FRAME (1u << 20)      /* a longer client frame drops the connection */
#define OUT_MAX (16u << 20)       /* drop a connection that lets more than this pile up */
#define MAX_EVENTS 256

enum state { ST_HANDSHAKE, ST_OPEN, ST_CLOSING };

typedef struct conn {
    int fd;
    enum state state;
    int dead;
    uint32_t events;  /* registered with epoll */
    uint8_t *in;      /* a partial frame (or request head) carried over between reads */
    size_t in_len;
    uint8_t *out;     /* bytes not yet sent, in order */
    size_t out_off, out_len, out_cap;
    struct conn *next_dead;
} conn_t;

static int epfd, listen_fd;
static uint8_t scratch[SCRATCH_SIZE];
static conn_t **by_fd;
static size_t by_fd_len;
static conn_t *dead_list;
static uint8_t *fan;  /* the frames to send to every connection, gathered from one read */
static size_t fan_len, fan_cap;
static int redis_pub = -1, redis_sub = -1; /* --redis: publish on one connection, subscribed on the other */
static int redis_pub_mark, redis_sub_mark; /* their epoll data.ptr (not connections) */
static uint8_t *pubq;                     /* PUBLISH commands gathered from one read */
static size_t pubq_len, pubq_cap;
static uint8_t *subin;                    /* what Redis sent the subscriber, not parsed yet */
static size_t subin_len, subin_cap;

static void die(const char *what) {
    fprintf(stderr, "c_fanout: %s: %s\n", what, strerror(errno));
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

/* Appends n bytes to the connection's queue (dropping it past OUT_MAX). */
static void out_append(conn_t *c, const void *data, size_t n) {
    if (c->dead)
        return;
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (c->out_off && c->out_len + n > c->out_cap) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (c->out_len + n > OUT_MAX) {
        kill_conn(c);
        return;
    }
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 256;
        while (cap < c->out_len + n)
            cap *= 2;
        uint8_t *p = realloc(c->out, cap);
        if (!p) {
            kill_conn(c);
            return;
        }
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, n);
    c->out_len += n;
}

/* Sends what the queue holds; then sets the epoll interest, or finishes a close. */
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
    int pending = c->out_off < c->out_len;
    if (!pending) {
        c->out_off = c->out_len = 0;
        free(c->out); /* an idle connection holds no buffer */
        c->out = NULL;
        c->out_cap = 0;
        if (c->state == ST_CLOSING) {
            kill_conn(c);
            return;
        }
    }
    set_events(c, (pending ? EPOLLOUT : 0) | (c->state != ST_CLOSING ? EPOLLIN : 0));
}

/* Sends `data` to an open connection: straight to the socket when nothing is queued, else queued after the rest. */
static void send_or_queue(conn_t *c, const uint8_t *data, size_t n) {
    if (c->out_off < c->out_len) { /* earlier bytes wait for EPOLLOUT: keep the order */
        out_append(c, data, n);
        return;
    }
    ssize_t r;
    do
        r = send(c->fd, data, n, MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            kill_conn(c);
            return;
        }
        r = 0;
    }
    if ((size_t)r < n) {
        out_append(c, data + r, n - (size_t)r);
        set_events(c, EPOLLIN | EPOLLOUT);
    }
}

static void fanout(void) {
    for (size_t fd = 0; fd < by_fd_len; fd++) {
        conn_t *c = by_fd[fd];
        if (c && !c->dead && c->state == ST_OPEN)
            send_or_queue(c, fan, fan_len);
    }
    fan_len = 0;
}

/* Room for `need` bytes in *buf (of *cap), doubling. */
static void grow(uint8_t **buf, size_t *cap, size_t need) {
    if (need <= *cap)
        return;
    size_t c = *cap ? *cap : 4096;
    while (c < need)
        c *= 2;
    uint8_t *p = realloc(*buf, c);
    if (!p)
        die("realloc");
    *buf = p;
    *cap = c;
}

static void frame_into(uint8_t **buf, size_t *len, size_t *cap, uint8_t b0, const uint8_t *payload, size_t n,
                       const uint8_t *key) {
    grow(buf, cap, *len + 10 + n);
    uint8_t *h = *buf + *len;
    size_t hl = 2;
    h[0] = b0;
    if (n < 126) {
        h[1] = (uint8_t)n;
    } else if (n < 65536) {
        h[1] = 126, h[2] = (uint8_t)(n >> 8), h[3] = (uint8_t)n, hl = 4;
    } else {
        h[1] = 127, hl = 10;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
    }
    for (size_t i = 0; i < n; i++)
        h[hl + i] = key ? payload[i] ^ key[i & 3] : payload[i];
    *len += hl + n;
}

/* A frame to this connection alone (pong, close, the pid answer). */
static void reply(conn_t *c, uint8_t b0, const uint8_t *payload, size_t n, const uint8_t *key) {
    static uint8_t *buf;
    static size_t cap;
    size_t len = 0;
    frame_into(&buf, &len, &cap, b0, payload, n, key);
    out_append(c, buf, len);
}

/* PUBLISH bench <the unmasked payload>, gathered in pubq (sent when the read is handled). */
static void publish(const uint8_t *payload, size_t n, const uint8_t *key) {
    char head[64];
    int k = snprintf(head, sizeof head, "*3\r\n$7\r\nPUBLISH\r\n$5\r\nbench\r\n$%zu\r\n", n);
    grow(&pubq, &pubq_cap, pubq_len + (size_t)k + n + 2);
    memcpy(pubq + pubq_len, head, (size_t)k);
    pubq_len += (size_t)k;
    for (size_t i = 0; i < n; i++)
        pubq[pubq_len + i] = payload[i] ^ key[i & 3];
    pubq_len += n;
    memcpy(pubq + pubq_len, "\r\n", 2);
    pubq_len += 2;
}

static void send_all(int fd, const uint8_t *data, size_t n) { /* to Redis: a blocking socket */
    while (n) {
        ssize_t r = send(fd, data, n, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            die("send to redis");
        data += r, n -= (size_t)r;
    }
}

/* One RESP line ("<type><text>\r\n") at buf[*pos]; its text as a number, or -2 if incomplete. */
static long long resp_number(const uint8_t *buf, size_t len, size_t *pos) {
    const uint8_t *end = memchr(buf + *pos, '\r', len - *pos);
    if (!end || (size_t)(end - buf) + 1 >= len)
        return -2;
    long long v = strtoll((const char *)buf + *pos + 1, NULL, 10);
    *pos = (size_t)(end - buf) + 2;
    return v;
}

/* The subscriber connection is readable: every complete "message" Redis sent, framed into fan. */
static void on_redis_sub(void) {
    grow(&subin, &subin_cap, subin_len + SCRATCH_SIZE);
    ssize_t r;
    do
        r = recv(redis_sub, subin + subin_len, SCRATCH_SIZE, 0);
    while (r < 0 && errno == EINTR);
    if (r <= 0)
        die("redis subscriber connection");
    subin_len += (size_t)r;
    size_t pos = 0;
    for (;;) { /* an array of bulk strings and integers: [kind, channel, data or count] */
        size_t at = pos;
        if (at >= subin_len || subin[at] != '*')
            break;
        long long count = resp_number(subin, subin_len, &at);
        const uint8_t *kind = NULL, *data = NULL;
        size_t kind_len = 0, data_len = 0;
        long long i;
        for (i = 0; i < count; i++) {
            if (at >= subin_len)
                break;
            uint8_t type = subin[at];
            long long v = resp_number(subin, subin_len, &at);
            if (v == -2)
                break;
            if (type != '$')
                continue;
            if (at + (size_t)v + 2 > subin_len)
                break;
            if (i == 0)
                kind = subin + at, kind_len = (size_t)v;
            else if (i == 2)
                data = subin + at, data_len = (size_t)v;
            at += (size_t)v + 2;
        }
        if (count < 0 || i < count)
            break; /* incomplete: wait for more */
        if (data && kind_len == 7 && memcmp(kind, "message", 7) == 0)
            frame_into(&fan, &fan_len, &fan_cap, 0x81, data, data_len, NULL);
        pos = at;
    }
    memmove(subin, subin + pos, subin_len - pos);
    subin_len -= pos;
    if (fan_len)
        fanout();
}

static int redis_connect(const char *url) {
    char host[64];
    int port;
    if (sscanf(url, "redis://%63[^:]:%d", host, &port) != 2)
        die("--redis wants redis://HOST:PORT");
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
        die("--redis host: an IPv4 address");
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0)
        die("connect to redis");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Handles the complete frames at the start of buf; returns the bytes used. */
static size_t on_frames(conn_t *c, const uint8_t *buf, size_t len) {
    size_t pos = 0;
    while (c->state == ST_OPEN && !c->dead) {
        size_t avail = len - pos;
        const uint8_t *f = buf + pos;
        if (avail < 2)
            return pos;
        uint8_t b0 = f[0], b1 = f[1];
        unsigned op = b0 & 0x0f;
        if (!(b1 & 0x80) || (b0 & 0x70) || (op > 2 && op != 8 && op != 9 && op != 10) ||
            (op >= 8 && ((b1 & 0x7f) > 125 || !(b0 & 0x80)))) {
            kill_conn(c); /* unmasked, RSV bits, unknown opcode, bad control frame */
            return pos;
        }
        size_t hl = 2 + ((b1 & 0x7f) == 126 ? 2 : (b1 & 0x7f) == 127 ? 8 : 0) + 4;
        if (avail < hl)
            return pos;
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
        if (avail - hl < plen)
            return pos;
        const uint8_t *key = f + hl - 4, *payload = f + hl;
        size_t n = (size_t)plen;
        if (op == 9) {
            reply(c, 0x8A, payload, n, key);
        } else if (op == 8) {
            reply(c, 0x88, payload, n, key);
            c->state = ST_CLOSING;
        } else if (op == 1 && (b0 & 0x80)) {
            static const char ask_pid[] = "pid?";
            uint8_t text[sizeof ask_pid - 1];
            if (n == sizeof text) {
                for (size_t i = 0; i < n; i++)
                    text[i] = payload[i] ^ key[i & 3];
            }
            if (n == sizeof text && memcmp(text, ask_pid, sizeof text) == 0) {
                char pid[24];
                int k = snprintf(pid, sizeof pid, "%ld", (long)getpid());
                reply(c, 0x81, (const uint8_t *)pid, (size_t)k, NULL);
            } else if (redis_pub >= 0) {
                publish(payload, n, key);
            } else {
                frame_into(&fan, &fan_len, &fan_cap, 0x81, payload, n, key);
            }
        } /* binary, fragments, pong: ignored */
        pos += hl + n;
    }
    return pos; /* closing or dead: the rest is ignored */
}

/* The upgrade request; returns the bytes used (0: incomplete). */
static size_t on_head(conn_t *c, const uint8_t *buf, size_t len) {
    const uint8_t *end = memmem(buf, len < HEAD_MAX ? len : HEAD_MAX, "\r\n\r\n", 4);
    if (!end) {
        if (len >= HEAD_MAX)
            kill_conn(c);
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
        return len;
    }
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    uint8_t cat[64 + sizeof guid], digest[20];
    memcpy(cat, key, key_len);
    memcpy(cat + key_len, guid, sizeof guid - 1);
    sha1(cat, key_len + sizeof guid - 1, digest);
    char accept[32], answer[256];
    base64(digest, sizeof digest, accept);
    int n = snprintf(answer, sizeof answer,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n\r\n",
                     accept);
    out_append(c, answer, (size_t)n);
    c->state = ST_OPEN;
    return head + on_frames(c, buf + head, len - head);
}

static void on_readable(conn_t *c) {
    if (c->dead || c->state == ST_CLOSING)
        return;
    ssize_t r;
    do
        r = recv(c->fd, scratch, sizeof scratch, 0);
    while (r < 0 && errno == EINTR);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        kill_conn(c);
        return;
    }
    if (r < 0)
        return;
    const uint8_t *data = scratch;
    size_t len = (size_t)r;
    if (c->in_len) { /* a partial frame carried over: join (rare; small frames) */
        if (c->in_len + len > MAX_FRAME + HEAD_MAX) {
            kill_conn(c);
            return;
        }
        uint8_t *p = realloc(c->in, c->in_len + len);
        if (!p) {
            kill_conn(c);
            return;
        }
        memcpy(p + c->in_len, scratch, len);
        c->in = p;
        len += c->in_len;
        data = p;
    }
    size_t used = c->state == ST_HANDSHAKE ? on_head(c, data, len) : on_frames(c, data, len);
    if (c->state == ST_CLOSING || c->dead)
        used = len;
    size_t rest = len - used;
    if (rest == 0) {
        free(c->in);
        c->in = NULL;
    } else if (data == scratch) {
        c->in = malloc(rest);
        if (!c->in) {
            kill_conn(c);
            return;
        }
        memcpy(c->in, scratch + used, rest);
    } else {
        memmove(c->in, c->in + used, rest);
    }
    c->in_len = rest;
    flush(c); /* a reply to this connection (handshake, pong, pid) goes before the fan-out */
    if (pubq_len) {
        send_all(redis_pub, pubq, pubq_len);
        pubq_len = 0;
    }
    if (fan_len)
        fanout();
}

static void on_accept(void) {
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                fprintf(stderr, "c_fanout: accept: %s\n", strerror(errno));
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

static void usage(const char *argv0) {
    fprintf(stderr, "usage: %s PORT [--workers N] [--redis redis://HOST:PORT]\n", argv0);
    exit(2);
}

int main(int argc, char **argv) {
    int port = -1, workers = 1;
    const char *redis_url = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            printf("gcc %s\n", __VERSION__);
            return 0;
        } else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc) {
            workers = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--redis") == 0 && i + 1 < argc) {
            redis_url = argv[++i];
        } else if (port < 0 && argv[i][0] >= '0' && argv[i][0] <= '9') {
            port = atoi(argv[i]);
        } else {
            usage(argv[0]);
        }
    }
    if (port < 0 || port > 65535 || workers < 1 || (workers > 1 && !redis_url))
        usage(argv[0]); /* several workers only with Redis between them */

    struct rlimit rl; /* one descriptor per connection: lift the soft limit to the hard one */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    pid_t parent = getpid();
    for (int w = 1; w < workers; w++) {
        pid_t child = fork();
        if (child < 0)
            die("fork");
        if (child == 0) { /* a worker: it ends with the first process */
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (getppid() != parent)
                return 0;
            break;
        }
    }

    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd < 0)
        die("socket");
    int one = 1;
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (workers > 1)
        setsockopt(listen_fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
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
    if (redis_url) {
        redis_pub = redis_connect(redis_url);
        redis_sub = redis_connect(redis_url);
        static const char subscribe[] = "*2\r\n$9\r\nSUBSCRIBE\r\n$5\r\nbench\r\n";
        send_all(redis_sub, (const uint8_t *)subscribe, sizeof subscribe - 1);
        struct epoll_event pe = {.events = EPOLLIN, .data.ptr = &redis_pub_mark};
        struct epoll_event se = {.events = EPOLLIN, .data.ptr = &redis_sub_mark};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, redis_pub, &pe) < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, redis_sub, &se) < 0)
            die("epoll_ctl");
    }

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
            if ((void *)c == &redis_sub_mark) {
                on_redis_sub();
                continue;
            }
            if ((void *)c == &redis_pub_mark) { /* PUBLISH replies (the receiver counts): dropped */
                if (recv(redis_pub, scratch, sizeof scratch, 0) <= 0)
                    die("redis publisher connection");
                continue;
            }
            if (c->dead)
                continue;
            uint32_t ev = events[i].events;
            if ((ev & (EPOLLERR | EPOLLHUP)) && c->state == ST_CLOSING) {
                kill_conn(c); /* gone while its close frame waited: nothing more to read or send */
                continue;
            }
            if (ev & EPOLLOUT)
                flush(c);
            if (!c->dead && (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                on_readable(c);
        }
        free_dead();
    }
}
