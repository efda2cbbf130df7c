/* The test app behind nginx in the zero-downtime tests: a static HTTP and WebSocket server
 * that behaves like a well-made app server, so a test can tell a switch that drops requests
 * from one that does not.
 *
 *   GET  /health        200 "ok"
 *   GET  /slow?s=N      answers after N seconds (a long request in flight during a switch)
 *   POST any path       200 "VERSION got N bytes" (the body read whole)
 *   GET  /ws + Upgrade  WebSocket: a text frame "VERSION" at once and every second
 *   GET  anything else  200 "VERSION"
 *
 * Every answer carries X-App-Version. FAIL_PCT=N answers N% of the non-health requests with
 * 500 (the canary's injected failures). On SIGTERM it stops accepting, lets every request in
 * flight finish, closes each WebSocket with 1001 (going away) and exits: what a real app
 * server does when `docker stop` asks it to.
 *
 * One process per connection (fork): no shared state, nothing to lock.
 * Environment: VERSION (default v1), PORT (default 8080), FAIL_PCT (default 0), SICK_AFTER
 * (seconds after start from which /health answers 500: a build that turns bad in the watch).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *version = "v1";
static int fail_pct = 0;
static long sick_after = -1; /* /health answers 500 from this many seconds after start */
static time_t started;
static volatile sig_atomic_t stopping = 0;

static void on_term(int sig) { (void)sig; stopping = 1; }

/* --- SHA-1 and base64, for the WebSocket handshake (RFC 6455 section 4.2.2) --- */
typedef struct { uint32_t h[5]; uint64_t len; uint8_t buf[64]; size_t n; } sha1_ctx;

static uint32_t rol(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

static void sha1_block(sha1_ctx *c, const uint8_t *p) {
    uint32_t w[80], a = c->h[0], b = c->h[1], d = c->h[3], e = c->h[4], cc = c->h[2];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) { f = (b & cc) | (~b & d); k = 0x5A827999; }
        else if (i < 40) { f = b ^ cc ^ d; k = 0x6ED9EBA1; }
        else if (i < 60) { f = (b & cc) | (b & d) | (cc & d); k = 0x8F1BBCDC; }
        else { f = b ^ cc ^ d; k = 0xCA62C1D6; }
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d; d = cc; cc = rol(b, 30); b = a; a = t;
    }
    c->h[0] += a; c->h[1] += b; c->h[2] += cc; c->h[3] += d; c->h[4] += e;
}

static void sha1(const uint8_t *data, size_t len, uint8_t out[20]) {
    sha1_ctx c = {{0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0}, 0, {0}, 0};
    c.len = (uint64_t)len * 8;
    for (size_t i = 0; i < len; i++) {
        c.buf[c.n++] = data[i];
        if (c.n == 64) { sha1_block(&c, c.buf); c.n = 0; }
    }
    c.buf[c.n++] = 0x80;
    if (c.n > 56) { while (c.n < 64) c.buf[c.n++] = 0; sha1_block(&c, c.buf); c.n = 0; }
    while (c.n < 56) c.buf[c.n++] = 0;
    for (int i = 7; i >= 0; i--) c.buf[c.n++] = (uint8_t)(c.len >> (8 * i));
    sha1_block(&c, c.buf);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 4; j++) out[4 * i + j] = (uint8_t)(c.h[i] >> (24 - 8 * j));
}

static void base64(const uint8_t *in, size_t len, char *out) {
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < len ? in[i + 2] : 0);
        out[o++] = t[v >> 18 & 63];
        out[o++] = t[v >> 12 & 63];
        out[o++] = i + 1 < len ? t[v >> 6 & 63] : '=';
        out[o++] = i + 2 < len ? t[v & 63] : '=';
    }
    out[o] = 0;
}

/* --- I/O --- */
static int write_all(int fd, const void *p, size_t n) {
    const char *s = p;
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        s += w; n -= (size_t)w;
    }
    return 0;
}

static void respond(int fd, int status, const char *body) {
    char head[512];
    const char *reason = status == 200 ? "OK" : status == 500 ? "Internal Server Error"
                                              : "Bad Request";
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "X-App-Version: %s\r\nConnection: close\r\n\r\n",
                     status, reason, strlen(body), version);
    write_all(fd, head, (size_t)n);
    write_all(fd, body, strlen(body));
}

/* The value of header `name` in the request head, copied into out; 0 when absent. */
static int header(const char *req, const char *name, char *out, size_t cap) {
    size_t nl = strlen(name);
    for (const char *p = strstr(req, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ') v++;
            size_t k = strcspn(v, "\r\n");
            if (k >= cap) k = cap - 1;
            memcpy(out, v, k);
            out[k] = 0;
            return 1;
        }
    }
    return 0;
}

static void ws_frame(int fd, uint8_t opcode, const char *payload, size_t len) {
    uint8_t f[2 + 125];
    f[0] = 0x80 | opcode;
    f[1] = (uint8_t)len;
    memcpy(f + 2, payload, len);
    write_all(fd, f, 2 + len);
}

static void websocket(int fd, const char *key) {
    char joined[320], accept[64], head[256];
    uint8_t digest[20];
    snprintf(joined, sizeof joined, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
    sha1((const uint8_t *)joined, strlen(joined), digest);
    base64(digest, 20, accept);
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\nX-App-Version: %s\r\n\r\n",
                     accept, version);
    if (write_all(fd, head, (size_t)n) < 0) return;
    time_t last = 0;
    for (;;) {
        if (stopping) {
            ws_frame(fd, 0x8, "\x03\xe9" "going away", 12); /* 1001 */
            break;
        }
        time_t now = time(NULL);
        if (now != last) {
            last = now;
            ws_frame(fd, 0x1, version, strlen(version));
        }
        fd_set r;
        FD_ZERO(&r);
        FD_SET(fd, &r);
        struct timeval tv = {0, 200000};
        int s = select(fd + 1, &r, NULL, NULL, &tv);
        if (s > 0) {
            uint8_t buf[4096];
            ssize_t got = read(fd, buf, sizeof buf);
            if (got <= 0) break;
            if ((buf[0] & 0x0f) == 0x8) { /* the client closes: answer, then leave */
                ws_frame(fd, 0x8, "\x03\xe8", 2);
                break;
            }
        }
    }
    shutdown(fd, SHUT_WR);
    char sink[256];
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    while (read(fd, sink, sizeof sink) > 0) {}
}

static void serve(int fd) {
    char req[16384];
    size_t got = 0;
    char *end = NULL;
    while (!end && got < sizeof req - 1) {
        ssize_t r = read(fd, req + got, sizeof req - 1 - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return;
        got += (size_t)r;
        req[got] = 0;
        end = strstr(req, "\r\n\r\n");
    }
    if (!end) { respond(fd, 400, "request head too long\n"); return; }
    char method[16] = "", path[1024] = "", value[256];
    sscanf(req, "%15s %1023s", method, path);
    size_t body = header(req, "Content-Length", value, sizeof value) ? strtoul(value, 0, 10) : 0;
    size_t have = got - (size_t)(end + 4 - req);
    char sink[65536];
    while (have < body) {
        ssize_t r = read(fd, sink, sizeof sink);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return;
        have += (size_t)r;
    }
    char text[256];
    if (strcmp(path, "/health") == 0) {
        if (sick_after >= 0 && time(NULL) - started >= sick_after) respond(fd, 500, "sick\n");
        else respond(fd, 200, "ok\n");
        return;
    }
    if (header(req, "Upgrade", value, sizeof value) && strcasecmp(value, "websocket") == 0 &&
        header(req, "Sec-WebSocket-Key", value, sizeof value)) {
        websocket(fd, value);
        return;
    }
    if (fail_pct > 0 && rand() % 100 < fail_pct) {
        snprintf(text, sizeof text, "%s failed on purpose\n", version);
        respond(fd, 500, text);
        return;
    }
    if (strcmp(method, "POST") == 0) {
        snprintf(text, sizeof text, "%s got %zu bytes\n", version, body);
    } else if (strncmp(path, "/slow", 5) == 0) {
        const char *s = strstr(path, "s=");
        unsigned secs = s ? (unsigned)atoi(s + 2) : 5;
        struct timespec left = {secs, 0};
        while (nanosleep(&left, &left) < 0 && errno == EINTR) {}
        snprintf(text, sizeof text, "%s slow %u\n", version, secs);
    } else {
        snprintf(text, sizeof text, "%s\n", version);
    }
    respond(fd, 200, text);
}

int main(void) {
    if (getenv("VERSION")) version = getenv("VERSION");
    if (getenv("FAIL_PCT")) fail_pct = atoi(getenv("FAIL_PCT"));
    if (getenv("SICK_AFTER")) sick_after = atol(getenv("SICK_AFTER"));
    started = time(NULL);
    int port = getenv("PORT") ? atoi(getenv("PORT")) : 8080;
    struct sigaction sa = {0};
    sa.sa_handler = on_term; /* no SA_RESTART: accept() returns on SIGTERM */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGCHLD, SIG_DFL);
    setpgid(0, 0); /* its own group: the goodbye below reaches its children only */
    int ls = socket(AF_INET6, SOCK_STREAM, 0);
    int one = 1, zero = 0;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(ls, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    struct sockaddr_in6 addr = {0};
    addr.sin6_family = AF_INET6;
    addr.sin6_port = htons((uint16_t)port);
    addr.sin6_addr = in6addr_any;
    if (bind(ls, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(ls, 512) < 0) {
        perror("listen");
        return 1;
    }
    printf("appserver %s listening on %d\n", version, port);
    fflush(stdout);
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    while (!stopping) {
        int fd = accept(ls, NULL, NULL);
        while (waitpid(-1, NULL, WNOHANG) > 0) {}
        if (fd < 0) continue;
        pid_t pid = fork();
        if (pid == 0) {
            close(ls);
            srand((unsigned)time(NULL) ^ (unsigned)getpid());
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            serve(fd);
            close(fd);
            _exit(0);
        }
        close(fd);
    }
    close(ls);
    printf("appserver %s stopping: finishing requests in flight\n", version);
    fflush(stdout);
    /* The children got no signal of their own from docker stop: pass it on, so that each
     * WebSocket says goodbye; a plain request ignores it and finishes. */
    signal(SIGTERM, SIG_IGN);
    kill(0, SIGTERM);
    while (wait(NULL) > 0 || errno == EINTR) {}
    printf("appserver %s stopped\n", version);
    return 0;
}
