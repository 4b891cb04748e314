/*
 * bench/loadgen.c: load generator and webhook receiver for bench/serve (not part of trailwatch).
 *
 * One process, two threads, both plain epoll over non-blocking sockets with HTTP/1.1 keep-alive:
 *   - the receiver: a minimal HTTP server on 127.0.0.1 that answers every request 200 at once and
 *     records what it got (distinct alerts by Idempotency-Key, the event "id" of each body, and when
 *     it arrived), so it is never the bottleneck and shares the clock with the client;
 *   - the client (mode "put"): N keep-alive connections sending PutEvents requests built in advance
 *     from an entries file, closed loop (as fast as answers come) or paced (--rate).
 *
 * Protocol with the driver (bench/serve), one line each way:
 *   loadgen prints   "RECV <port>"                     once the receiver listens
 *   driver writes    "GO <server port> <server pid>"    (mode put) to start the load
 *   loadgen prints   {"phase":"load",...}               when the load ends (driver then reads /metrics)
 *   loadgen prints   {"phase":"drain",...}              when every expected alert arrived, or timeout
 * Mode "recv": the driver writes "WAIT <n> <timeout s>" and gets {"phase":"recv",...} when n distinct
 * alerts arrived (or the timeout passed).
 *
 * Entries file: one PutEvents entry per line, "<alerts expected>\t<entry JSON>", where the entry's
 * Detail holds the 36-character marker below in place of the record's eventID: each send stamps a
 * fresh id there, so no event is dropped as a CloudTrail duplicate however often a body is reused.
 *
 * Build: cc -O2 -o loadgen loadgen.c -lpthread  (bench/serve does this into build/bench/).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MARKER "TWBENCHEVENTIDXXXXXXXXXXXXXXXXXXXXXX"
#define MARKER_LEN 36
#define MAX_BATCH 10
#define ENTRY_TOTAL_MAX (256 * 1024 - 1024) /* PutEvents' limit on a request's entries, with margin */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die("out of memory (%zu bytes)", n);
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        die("out of memory (%zu bytes)", n);
    return p;
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h < 2 ? h + 2 : h; /* 0 = empty slot */
}

/* ---- u64 -> i64 map (open addressing, first value kept) ---- */

typedef struct map {
    uint64_t *k;
    int64_t *v;
    size_t cap, n;
} map;

static int64_t *map_find(const map *m, uint64_t key)
{
    if (!m->cap)
        return NULL;
    for (size_t i = key & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (m->k[i] == 0)
            return NULL;
        if (m->k[i] == key)
            return &m->v[i];
    }
}

/* Returns 1 when the key is new. */
static int map_add(map *m, uint64_t key, int64_t val)
{
    if ((m->n + 1) * 2 > m->cap) {
        map o = *m;
        m->cap = o.cap ? o.cap * 2 : 4096;
        m->k = calloc(m->cap, sizeof *m->k);
        m->v = xmalloc(m->cap * sizeof *m->v);
        if (!m->k)
            die("out of memory");
        m->n = 0;
        for (size_t i = 0; i < o.cap; i++)
            if (o.k[i])
                map_add(m, o.k[i], o.v[i]);
        free(o.k);
        free(o.v);
    }
    size_t i = key & (m->cap - 1);
    for (; m->k[i]; i = (i + 1) & (m->cap - 1))
        if (m->k[i] == key)
            return 0;
    m->k[i] = key;
    m->v[i] = val;
    m->n++;
    return 1;
}

/* ---- small HTTP helpers ---- */

static const char *find_crlf2(const char *p, size_t n)
{
    return memmem(p, n, "\r\n\r\n", 4);
}

/* Value of header `name` in the header block [p, end), or NULL. */
static const char *header(const char *p, const char *end, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    const char *line = memchr(p, '\n', (size_t)(end - p));
    while (line && line + 1 < end) {
        line++;
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            eol = end;
        if ((size_t)(eol - line) > nl + 1 && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
                ve--;
            *vlen = (size_t)(ve - v);
            return v;
        }
        line = eol < end ? eol : NULL;
    }
    return NULL;
}

static long content_length(const char *p, const char *end)
{
    size_t vl;
    const char *v = header(p, end, "Content-Length", &vl);
    return v ? strtol(v, NULL, 10) : 0;
}

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void buf_reserve(buf *b, size_t more)
{
    if (b->len + more <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 16384;
    while (cap < b->len + more)
        cap *= 2;
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
}

static void buf_consume(buf *b, size_t n)
{
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

/* ---- the receiver ---- */

typedef struct rconn {
    int fd;
    buf in;
} rconn;

static struct {
    int lfd, ep, port;
    atomic_int stop;
    pthread_t thread;
    /* written by the receiver thread; the counters are read by the main thread while it runs, the
     * maps only after it has been joined */
    atomic_llong requests, distinct, duplicates, bad;
    atomic_llong last_new_ns;
    map alerts;                    /* Idempotency-Key hash -> first arrival */
    map ids;                       /* body "id" hash -> first arrival */
    buf keys;                      /* every distinct Idempotency-Key, one per line (--dump-keys) */
    int keep_keys;
} R;

static void recv_handle(rconn *c, const char *req, size_t hlen, size_t total)
{
    int64_t t = now_ns();
    const char *hend = req + hlen;
    size_t kl = 0, il = 0;
    const char *key = header(req, hend, "Idempotency-Key", &kl);
    const char *body = req + hlen, *id = NULL;
    size_t blen = total - hlen;
    /* The webhook body is the event: {"version":"0","id":"...",...}. */
    const char *p = memmem(body, blen < 256 ? blen : 256, "\"id\":\"", 6);
    if (p) {
        id = p + 6;
        const char *q = memchr(id, '"', (size_t)(body + blen - id));
        il = q ? (size_t)(q - id) : 0;
    }
    R.requests++;
    if (!key && !il) {
        R.bad++;
    } else {
        uint64_t h = key ? hash_bytes(key, kl) : hash_bytes(id, il);
        if (map_add(&R.alerts, h, t)) {
            if (R.keep_keys && key) {
                buf_reserve(&R.keys, kl + 1);
                memcpy(R.keys.p + R.keys.len, key, kl);
                R.keys.len += kl;
                R.keys.p[R.keys.len++] = '\n';
            }
            R.distinct++;
            R.last_new_ns = t;
        } else {
            R.duplicates++;
        }
        if (il)
            map_add(&R.ids, hash_bytes(id, il), t);
    }
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    size_t off = 0;
    while (off < sizeof ok - 1) {
        ssize_t w = write(c->fd, ok + off, sizeof ok - 1 - off);
        if (w > 0)
            off += (size_t)w;
        else if (w < 0 && errno != EAGAIN && errno != EINTR)
            break;
    }
}

static void recv_close(rconn *c)
{
    epoll_ctl(R.ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->in.p);
    free(c);
}

static void recv_readable(rconn *c)
{
    for (;;) {
        buf_reserve(&c->in, 65536);
        ssize_t n = read(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            recv_close(c);
            return;
        }
        if (n < 0)
            break;
        c->in.len += (size_t)n;
        for (;;) {
            const char *e = find_crlf2(c->in.p, c->in.len);
            if (!e)
                break;
            size_t hlen = (size_t)(e - c->in.p) + 4;
            long cl = content_length(c->in.p, e + 2);
            if (cl < 0 || cl > 64 * 1024 * 1024) {
                recv_close(c);
                return;
            }
            size_t total = hlen + (size_t)cl;
            if (c->in.len < total) {
                buf_reserve(&c->in, total - c->in.len);
                break;
            }
            recv_handle(c, c->in.p, hlen, total);
            buf_consume(&c->in, total);
        }
    }
}

static void *recv_main(void *arg)
{
    (void)arg;
    struct epoll_event evs[64];
    while (!R.stop) {
        int n = epoll_wait(R.ep, evs, 64, 100);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                for (;;) {
                    int fd = accept4(R.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0)
                        break;
                    set_nonblock(fd);
                    rconn *c = calloc(1, sizeof *c);
                    if (!c)
                        die("out of memory");
                    c->fd = fd;
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(R.ep, EPOLL_CTL_ADD, fd, &ev);
                }
            } else {
                recv_readable(evs[i].data.ptr);
            }
        }
    }
    return NULL;
}

static void recv_start(void)
{
    R.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(R.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = 0};
    if (bind(R.lfd, (struct sockaddr *)&a, sizeof a) || listen(R.lfd, 512))
        die("receiver: cannot listen: %s", strerror(errno));
    socklen_t al = sizeof a;
    getsockname(R.lfd, (struct sockaddr *)&a, &al);
    R.port = ntohs(a.sin_port);
    R.ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(R.ep, EPOLL_CTL_ADD, R.lfd, &ev);
    if (pthread_create(&R.thread, NULL, recv_main, NULL))
        die("cannot start the receiver thread");
}

static void recv_stop(void)
{
    R.stop = 1;
    pthread_join(R.thread, NULL);
}

/* Waits until `n` distinct alerts arrived or the deadline passed; then `settle_ms` more, to see
 * duplicates and extras. Returns 1 when all arrived. */
static int recv_wait(long long n, int64_t deadline_ns, int settle_ms)
{
    while (R.distinct < n && now_ns() < deadline_ns) {
        struct timespec ts = {0, 2 * 1000000L};
        nanosleep(&ts, NULL);
    }
    int all = R.distinct >= n;
    struct timespec ts = {settle_ms / 1000, (settle_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    return all;
}

/* ---- CPU accounting ---- */

typedef struct cpu_sample {
    double proc, self, machine; /* CPU seconds: the server, this process, every CPU of the machine */
    int64_t t;
} cpu_sample;

static double proc_cpu(int pid)
{
    char path[64], line[4096];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = '\0';
    const char *p = strrchr(line, ')');
    if (!p)
        return 0;
    unsigned long long ut = 0, st = 0;
    /* fields after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double machine_cpu(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    unsigned long long v[10] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
                   &v[5], &v[6], &v[7], &v[8], &v[9]);
    fclose(f);
    if (n < 4)
        return 0;
    unsigned long long busy = 0;
    for (int i = 0; i < n && i < 8; i++) /* guest time is already in user */
        if (i != 3 && i != 4)
            busy += v[i];
    return (double)busy / (double)sysconf(_SC_CLK_TCK);
}

static cpu_sample cpu_now(int pid)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    cpu_sample s = {proc_cpu(pid),
                    (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                        ru.ru_stime.tv_usec / 1e6,
                    machine_cpu(), now_ns()};
    return s;
}

static long vm_hwm_kb(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

/* ---- request templates ---- */

typedef struct tmpl {
    char *req;                     /* the whole HTTP request */
    size_t len;
    size_t nentries;
    size_t marks[MAX_BATCH];       /* offsets of the eventID markers, one per entry (or (size_t)-1) */
    int alerts[MAX_BATCH];         /* alerts each entry is expected to cause */
} tmpl;

static tmpl *templates;
static size_t ntemplates;

static void load_templates(const char *path, int batch)
{
    FILE *f = fopen(path, "r");
    if (!f)
        die("%s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    buf body = {0};
    int alerts[MAX_BATCH];
    size_t starts[MAX_BATCH], k = 0, total = 0, capt = 0;
    char hdr[512];
    for (int eof = 0; !eof;) {
        n = getline(&line, &cap, f);
        eof = n < 0;
        char *tab = NULL;
        size_t elen = 0;
        if (!eof) {
            while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                line[--n] = '\0';
            if (!n)
                continue;
            tab = strchr(line, '\t');
            if (!tab)
                die("%s: a line without a tab", path);
            elen = (size_t)(line + n - tab - 1);
        }
        /* Flush the batch when full, at the end, or when this entry would pass the size limit. */
        if (k && (eof || k == (size_t)batch || total + elen > ENTRY_TOTAL_MAX)) {
            buf_reserve(&body, 3);
            memcpy(body.p + body.len, "]}", 2);
            body.len += 2;
            int hl = snprintf(hdr, sizeof hdr,
                              "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-amz-json-1.1\r\n"
                              "X-Amz-Target: AWSEvents.PutEvents\r\nContent-Length: %zu\r\n\r\n",
                              body.len);
            if (ntemplates == capt) {
                capt = capt ? capt * 2 : 1024;
                templates = xrealloc(templates, capt * sizeof *templates);
            }
            tmpl *t = &templates[ntemplates++];
            memset(t, 0, sizeof *t);
            t->len = (size_t)hl + body.len;
            t->req = xmalloc(t->len);
            memcpy(t->req, hdr, (size_t)hl);
            memcpy(t->req + hl, body.p, body.len);
            t->nentries = k;
            for (size_t i = 0; i < k; i++) {
                size_t end = i + 1 < k ? starts[i + 1] : body.len;
                const char *m = memmem(body.p + starts[i], end - starts[i], MARKER, MARKER_LEN);
                t->marks[i] = m ? (size_t)hl + (size_t)(m - body.p) : (size_t)-1;
                t->alerts[i] = alerts[i];
            }
            k = 0;
            total = 0;
            body.len = 0;
        }
        if (eof)
            break;
        if (k == 0) {
            buf_reserve(&body, 16);
            memcpy(body.p, "{\"Entries\":[", 12);
            body.len = 12;
        } else {
            buf_reserve(&body, 1);
            body.p[body.len++] = ',';
        }
        buf_reserve(&body, elen + 4);
        starts[k] = body.len;
        memcpy(body.p + body.len, tab + 1, elen);
        body.len += elen;
        alerts[k] = atoi(line);
        total += elen;
        k++;
    }
    free(line);
    free(body.p);
    fclose(f);
    if (!ntemplates)
        die("%s: no entries", path);
}

/* ---- the client ---- */

typedef struct cconn {
    int fd;
    size_t id;
    buf out, in;
    size_t sent;
    tmpl *t;                       /* the request in flight, NULL when idle */
    int64_t started;
    int busy;
} cconn;

typedef struct opts {
    const char *entries;
    int conns, batch;
    double duration, warmup, rate, drain_timeout;
    int latency;                   /* record EventIds for the delivery-latency join */
} opts;

static struct {
    cconn *c;
    int n, ep, port;
    struct sockaddr_in addr;
    uint32_t nonce;
    uint64_t seq;
    size_t next_tmpl;
    /* results */
    int64_t *lat;                  /* ns, requests started inside the window */
    size_t nlat, caplat;
    long long requests, req_window, entries_ok, entries_window, entries_failed, http_errors, reconnects;
    long long expected_alerts;
    int64_t t_warm, t_end;
    /* delivery latency: (EventId hash, response time) per accepted entry */
    uint64_t *ev_id;
    int64_t *ev_t, *ev_sent;
    size_t nev, capev;
    int64_t max_lag_ns;            /* paced: how late a send was against its schedule */
    long long late_sends;
} C;

static void c_connect(cconn *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&C.addr, sizeof C.addr))
        die("cannot connect to the server: %s", strerror(errno));
    set_nonblock(c->fd);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(C.ep, EPOLL_CTL_ADD, c->fd, &ev);
    c->in.len = 0;
}

static void stamp(char *p)
{
    char id[MARKER_LEN + 1];
    uint64_t s = C.seq++;
    snprintf(id, sizeof id, "%08x-%04x-4000-8000-%012llx", C.nonce, (unsigned)((s >> 48) & 0xffff),
             (unsigned long long)(s & 0xffffffffffffULL));
    memcpy(p, id, MARKER_LEN);
}

static void c_flush(cconn *c)
{
    while (c->sent < c->out.len) {
        ssize_t w = write(c->fd, c->out.p + c->sent, c->out.len - c->sent);
        if (w > 0) {
            c->sent += (size_t)w;
        } else if (w < 0 && errno == EAGAIN) {
            struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
            epoll_ctl(C.ep, EPOLL_CTL_MOD, c->fd, &ev);
            return;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else {
            return; /* the read side sees the close */
        }
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(C.ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void c_send(cconn *c)
{
    tmpl *t = &templates[C.next_tmpl];
    C.next_tmpl = (C.next_tmpl + 1) % ntemplates;
    c->out.len = 0;
    buf_reserve(&c->out, t->len);
    memcpy(c->out.p, t->req, t->len);
    c->out.len = t->len;
    for (size_t i = 0; i < t->nentries; i++)
        if (t->marks[i] != (size_t)-1)
            stamp(c->out.p + t->marks[i]);
    c->sent = 0;
    c->t = t;
    c->busy = 1;
    c->started = now_ns();
    c_flush(c);
}

/* A complete response to c's request. */
static void c_done(cconn *c, int status, const char *body, size_t blen)
{
    int64_t t = now_ns();
    tmpl *tp = c->t;
    c->busy = 0;
    c->t = NULL;
    C.requests++;
    int in_window = t >= C.t_warm && t <= C.t_end; /* throughput: responses completed in the window */
    if (c->started >= C.t_warm && c->started < C.t_end) {
        if (C.nlat == C.caplat) {
            C.caplat = C.caplat ? C.caplat * 2 : 65536;
            C.lat = xrealloc(C.lat, C.caplat * sizeof *C.lat);
        }
        C.lat[C.nlat++] = t - c->started;
    }
    if (in_window)
        C.req_window++;
    if (status != 200) {
        C.http_errors++;
        if (C.http_errors <= 3)
            fprintf(stderr, "loadgen: HTTP %d: %.*s\n", status, (int)(blen > 300 ? 300 : blen), body);
        return;
    }
    /* {"Entries":[{"EventId":"..."},{"ErrorCode":"...","ErrorMessage":"..."},...],"FailedEntryCount":N} */
    const char *p = body, *end = body + blen;
    for (size_t i = 0; i < tp->nentries; i++) {
        const char *ok = memmem(p, (size_t)(end - p), "{\"EventId\":\"", 12);
        const char *bad = memmem(p, (size_t)(end - p), "{\"ErrorCode\":\"", 14);
        if (ok && (!bad || ok < bad)) {
            const char *id = ok + 12, *q = memchr(id, '"', (size_t)(end - id));
            if (!q)
                break;
            C.entries_ok++;
            C.entries_window += in_window;
            C.expected_alerts += tp->alerts[i];
            if (C.ev_id && tp->alerts[i] > 0 && c->started >= C.t_warm) {
                if (C.nev == C.capev) {
                    C.capev = C.capev ? C.capev * 2 : 65536;
                    C.ev_id = xrealloc(C.ev_id, C.capev * sizeof *C.ev_id);
                    C.ev_t = xrealloc(C.ev_t, C.capev * sizeof *C.ev_t);
                    C.ev_sent = xrealloc(C.ev_sent, C.capev * sizeof *C.ev_sent);
                }
                C.ev_sent[C.nev] = c->started;
                C.ev_id[C.nev] = hash_bytes(id, (size_t)(q - id));
                C.ev_t[C.nev++] = t;
            }
            p = q;
        } else if (bad) {
            C.entries_failed++;
            if (C.entries_failed <= 3)
                fprintf(stderr, "loadgen: failed entry: %.200s\n", bad);
            p = bad + 14;
        } else {
            break;
        }
    }
}

/* Reads what arrived; returns 1 when the connection had to be reopened. */
static void c_readable(cconn *c)
{
    for (;;) {
        buf_reserve(&c->in, 65536);
        ssize_t n = read(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            /* Closed by the server: the request in flight (if any) counts as an error. */
            epoll_ctl(C.ep, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            C.reconnects++;
            if (c->busy) {
                c->busy = 0;
                c->t = NULL;
                C.http_errors++;
            }
            c_connect(c);
            return;
        }
        if (n < 0)
            break;
        c->in.len += (size_t)n;
        const char *e = find_crlf2(c->in.p, c->in.len);
        if (!e)
            continue;
        size_t hlen = (size_t)(e - c->in.p) + 4;
        long cl = content_length(c->in.p, e + 2);
        if (c->in.len < hlen + (size_t)cl)
            continue;
        int status = c->in.len > 12 ? atoi(c->in.p + 9) : 0;
        c_done(c, status, c->in.p + hlen, (size_t)cl);
        buf_consume(&c->in, hlen + (size_t)cl);
        return;
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const int64_t *v, size_t n, double q)
{
    if (!n)
        return -1;
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return (double)v[i < n ? i : n - 1] / 1e6;
}

static void run_load(const opts *o, int server_pid)
{
    C.n = o->conns;
    C.c = calloc((size_t)C.n, sizeof *C.c);
    C.ep = epoll_create1(EPOLL_CLOEXEC);
    C.addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                                  .sin_port = htons((uint16_t)C.port)};
    if (getrandom(&C.nonce, sizeof C.nonce, 0) != sizeof C.nonce)
        C.nonce = (uint32_t)now_ns();
    for (int i = 0; i < C.n; i++) {
        C.c[i].id = (size_t)i;
        c_connect(&C.c[i]);
    }
    int64_t t0 = now_ns();
    C.t_warm = t0 + (int64_t)(o->warmup * 1e9);
    C.t_end = C.t_warm + (int64_t)(o->duration * 1e9);
    cpu_sample a = {0}, b = {0};
    int sampled_a = 0;
    int paced = o->rate > 0;
    double interval_ns = paced ? 1e9 / o->rate : 0;
    uint64_t k = 0;                /* paced: sends scheduled so far */
    if (!paced)
        for (int i = 0; i < C.n; i++)
            c_send(&C.c[i]);
    struct epoll_event evs[64];
    for (;;) {
        int64_t now = now_ns();
        if (!sampled_a && now >= C.t_warm) {
            a = cpu_now(server_pid);
            sampled_a = 1;
        }
        int busy = 0;
        for (int i = 0; i < C.n; i++)
            busy += C.c[i].busy;
        if (now >= C.t_end && !busy)
            break;
        if (now >= C.t_end + (int64_t)30e9)
            die("requests still unanswered 30 s after the end of the load");
        int timeout = 50;
        if (paced && now < C.t_end) {
            /* Every send that is due goes out on an idle connection; late ones are counted. */
            for (;;) {
                int64_t due = t0 + (int64_t)((double)k * interval_ns);
                if (due > now || due >= C.t_end)
                    break;
                cconn *idle = NULL;
                for (int i = 0; i < C.n && !idle; i++)
                    if (!C.c[i].busy)
                        idle = &C.c[i];
                if (!idle)
                    break;
                if (now - due > C.max_lag_ns)
                    C.max_lag_ns = now - due;
                if (now - due > 1000000)
                    C.late_sends++;
                c_send(idle);
                k++;
            }
            int64_t due = t0 + (int64_t)((double)k * interval_ns);
            int64_t wait = (due - now_ns()) / 1000000;
            timeout = wait < 0 ? 0 : wait > 50 ? 50 : (int)wait;
        }
        int n = epoll_wait(C.ep, evs, 64, timeout);
        if (paced && timeout > 0 && n == 0) {
            /* epoll's timeout is in ms: spin the last bit so sends go out on time */
            int64_t due = t0 + (int64_t)((double)k * interval_ns);
            while (now_ns() < due && now_ns() < C.t_end)
                ;
        }
        for (int i = 0; i < n; i++) {
            cconn *c = evs[i].data.ptr;
            if (evs[i].events & EPOLLOUT)
                c_flush(c);
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                int was_busy = c->busy;
                c_readable(c);
                if (!paced && was_busy && !c->busy && now_ns() < C.t_end)
                    c_send(c);
            }
        }
    }
    b = cpu_now(server_pid);
    double window = (double)(C.t_end - C.t_warm) / 1e9;
    qsort(C.lat, C.nlat, sizeof *C.lat, cmp_i64);
    double wall = (double)(b.t - a.t) / 1e9;
    double srv = (b.proc - a.proc) / wall, self = (b.self - a.self) / wall;
    double other = (b.machine - a.machine) / wall - srv - self;
    printf("{\"phase\":\"load\",\"conns\":%d,\"paced_rate\":%g,\"templates\":%zu,\"window_s\":%.3f,"
           "\"requests\":%lld,\"requests_window\":%lld,\"entries_accepted\":%lld,\"entries_window\":%lld,"
           "\"entries_failed\":%lld,\"http_errors\":%lld,\"reconnects\":%lld,"
           "\"events_per_s\":%.1f,\"requests_per_s\":%.1f,"
           "\"lat_ms\":{\"n\":%zu,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f},"
           "\"server_cpu\":%.3f,\"loadgen_cpu\":%.3f,\"other_cpu\":%.3f,\"server_hwm_kb\":%ld,"
           "\"expected_alerts\":%lld,\"late_sends\":%lld,\"max_lag_ms\":%.3f}\n",
           C.n, o->rate, ntemplates, window, C.requests, C.req_window, C.entries_ok, C.entries_window,
           C.entries_failed, C.http_errors, C.reconnects, (double)C.entries_window / window,
           (double)C.req_window / window, C.nlat, pct(C.lat, C.nlat, 0.5), pct(C.lat, C.nlat, 0.9),
           pct(C.lat, C.nlat, 0.99), pct(C.lat, C.nlat, 0.999), pct(C.lat, C.nlat, 1.0), srv, self,
           other < 0 ? 0 : other, vm_hwm_kb(server_pid), C.expected_alerts, C.late_sends,
           (double)C.max_lag_ns / 1e6);
    fflush(stdout);
    for (int i = 0; i < C.n; i++)
        close(C.c[i].fd);
}

static void report_drain(const opts *o, int server_pid)
{
    int64_t end_load = now_ns();
    cpu_sample a = cpu_now(server_pid);
    int all = recv_wait(C.expected_alerts, end_load + (int64_t)(o->drain_timeout * 1e9), 300);
    cpu_sample b = cpu_now(server_pid);
    long long distinct = R.distinct;
    int64_t last = R.last_new_ns;
    recv_stop();
    double drain_s = last > end_load ? (double)(last - end_load) / 1e9 : 0;
    printf("{\"phase\":\"drain\",\"expected_alerts\":%lld,\"received_requests\":%lld,\"received_distinct\":%lld,"
           "\"duplicates\":%lld,\"bad\":%lld,\"all_arrived\":%s,\"drain_s\":%.3f,\"drain_server_cpu_s\":%.3f,"
           "\"server_hwm_kb\":%ld",
           C.expected_alerts, (long long)R.requests, distinct, (long long)R.duplicates, (long long)R.bad,
           all ? "true" : "false", drain_s, b.proc - a.proc, vm_hwm_kb(server_pid));
    if (o->latency) {
        /* PutEvents answered (client) -> webhook received (receiver), per event, same clock; and the
         * same from the moment the request was sent. */
        int64_t *d = xmalloc((C.nev ? C.nev : 1) * sizeof *d), *e = xmalloc((C.nev ? C.nev : 1) * sizeof *e);
        size_t nd = 0, missing = 0, negative = 0;
        for (size_t i = 0; i < C.nev; i++) {
            int64_t *t = map_find(&R.ids, C.ev_id[i]);
            if (!t) {
                missing++;
                continue;
            }
            d[nd] = *t - C.ev_t[i];
            e[nd] = *t - C.ev_sent[i];
            negative += d[nd] < 0;
            nd++;
        }
        qsort(d, nd, sizeof *d, cmp_i64);
        qsort(e, nd, sizeof *e, cmp_i64);
        printf(",\"delivery_ms\":{\"events\":%zu,\"joined\":%zu,\"missing\":%zu,\"before_ack\":%zu,\"p50\":%.3f,"
               "\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f,\"min\":%.3f}",
               C.nev, nd, missing, negative, pct(d, nd, 0.5), pct(d, nd, 0.9), pct(d, nd, 0.99), pct(d, nd, 0.999),
               pct(d, nd, 1.0), pct(d, nd, 0.0));
        printf(",\"from_send_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f}",
               pct(e, nd, 0.5), pct(e, nd, 0.9), pct(e, nd, 0.99), pct(e, nd, 0.999), pct(e, nd, 1.0));
        free(e);
        free(d);
    }
    printf("}\n");
    fflush(stdout);
}

static void dump_keys(const char *path)
{
    if (!path)
        return;
    FILE *f = fopen(path, "w");
    if (!f || fwrite(R.keys.p ? R.keys.p : "", 1, R.keys.len, f) != R.keys.len || fclose(f))
        die("%s: cannot write the received keys", path);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen put --entries FILE [--conns N] [--batch E] [--duration S] [--warmup S]\n"
            "                   [--rate REQ_PER_S] [--latency] [--drain-timeout S] [--dump-keys FILE]\n"
            "       loadgen recv [--dump-keys FILE]\n"
            "See the comment at the top of bench/loadgen.c for the protocol on stdin/stdout.\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    opts o = {NULL, 16, 10, 10, 2, 0, 60, 0};
    const char *keys_path = NULL;
    int put = strcmp(argv[1], "put") == 0;
    if (!put && strcmp(argv[1], "recv") != 0)
        usage();
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--latency")) {
            o.latency = 1;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (!strcmp(a, "--entries")) o.entries = v;
        else if (!strcmp(a, "--conns")) o.conns = atoi(v);
        else if (!strcmp(a, "--batch")) o.batch = atoi(v);
        else if (!strcmp(a, "--duration")) o.duration = atof(v);
        else if (!strcmp(a, "--warmup")) o.warmup = atof(v);
        else if (!strcmp(a, "--rate")) o.rate = atof(v);
        else if (!strcmp(a, "--drain-timeout")) o.drain_timeout = atof(v);
        else if (!strcmp(a, "--dump-keys")) keys_path = v;
        else usage();
    }
    if (put && (!o.entries || o.conns < 1 || o.batch < 1 || o.batch > MAX_BATCH || o.duration <= 0))
        usage();
    R.keep_keys = keys_path != NULL;
    recv_start();
    if (put)
        load_templates(o.entries, o.batch);
    printf("RECV %d\n", R.port);
    fflush(stdout);
    char line[256];
    if (!put) {
        long long n = 0;
        double timeout = 60;
        if (!fgets(line, sizeof line, stdin) || sscanf(line, "WAIT %lld %lf", &n, &timeout) != 2)
            die("expected WAIT <n> <timeout> on stdin");
        int64_t t = now_ns();
        int all = recv_wait(n, t + (int64_t)(timeout * 1e9), 300);
        long long distinct = R.distinct;
        int64_t last = R.last_new_ns;
        recv_stop();
        printf("{\"phase\":\"recv\",\"expected_alerts\":%lld,\"received_requests\":%lld,\"received_distinct\":%lld,"
               "\"duplicates\":%lld,\"bad\":%lld,\"all_arrived\":%s,\"waited_s\":%.3f,\"last_new_after_s\":%.3f}\n",
               n, (long long)R.requests, distinct, (long long)R.duplicates, (long long)R.bad, all ? "true" : "false",
               (double)(now_ns() - t) / 1e9, last > t ? (double)(last - t) / 1e9 : 0.0);
        fflush(stdout);
        dump_keys(keys_path);
        return 0;
    }
    int server_pid = 0;
    if (!fgets(line, sizeof line, stdin) || sscanf(line, "GO %d %d", &C.port, &server_pid) != 2)
        die("expected GO <port> <pid> on stdin");
    if (o.latency) {
        C.capev = 1;
        C.ev_id = xmalloc(sizeof *C.ev_id);
        C.ev_t = xmalloc(sizeof *C.ev_t);
        C.ev_sent = xmalloc(sizeof *C.ev_sent);
    }
    run_load(&o, server_pid);
    report_drain(&o, server_pid);
    dump_keys(keys_path);
    return 0;
}
