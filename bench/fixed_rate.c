/* The fixed-rate (open model) load generator of bench/run.py, in C.
 *
 * bench/run.py's Python generator spends ~150-300 µs of CPU per request on this machine,
 * on the same two cores as the service: at ~1,200 requests per second that is a quarter
 * of a core taken from the service while its 99th percentile is measured. This one does
 * the same thing for a few microseconds per request:
 *
 * - request i is due at start + i / rate, whatever happened before (open model): when no
 *   connection is idle it waits for one, and its latency still counts from the moment it
 *   was due, so a slow answer cannot hide the requests queued behind it (no coordinated
 *   omission);
 * - keep-alive connections, TCP_NODELAY, taken from a first-in first-out pool, each
 *   with one request in flight; requests cycle through the precomputed ones;
 * - one thread, epoll, a timerfd for the schedule (nanosecond deadlines);
 * - prints one line of JSON with the same fields as run.py's Python generator.
 *
 *   fixed_rate PORT RATE SECONDS CONNECTIONS REQUESTS_FILE
 *
 * REQUESTS_FILE: each request as its length in decimal, a newline, then its bytes.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define BUFFER 65536
#define MAX_STATUS 600

typedef struct {
    char *data;
    size_t len;
} request_t;

typedef struct {
    int fd;
    long current; /* index of the request in flight, or -1 */
    size_t have;
    char buf[BUFFER];
} conn_t;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-th percentile of `n` sorted values, as run.py's `_percentile` takes it. */
static double percentile(const double *sorted, long n, double q) {
    long i = (long)(q / 100.0 * (double)n);
    return sorted[i < n - 1 ? i : n - 1];
}

static request_t *load(const char *path, long *count) {
    FILE *f = fopen(path, "rb");
    if (!f) die("requests file");
    long cap = 1024, n = 0;
    request_t *out = malloc(sizeof(request_t) * (size_t)cap);
    size_t len;
    while (fscanf(f, "%zu", &len) == 1) {
        if (fgetc(f) != '\n') die("requests file format");
        if (n == cap) out = realloc(out, sizeof(request_t) * (size_t)(cap *= 2));
        out[n].data = malloc(len);
        out[n].len = len;
        if (fread(out[n].data, 1, len, f) != len) die("requests file truncated");
        n++;
    }
    fclose(f);
    if (n == 0) die("no requests");
    *count = n;
    return out;
}

static void send_all(int fd, const char *data, size_t len) {
    while (len > 0) {
        ssize_t w = write(fd, data, len);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR) continue;
            die("write");
        }
        data += w;
        len -= (size_t)w;
    }
}

/* Length of a whole answer at the start of buf (head and Content-Length body), or 0. */
static size_t answer_length(const char *buf, size_t have, int *status) {
    const char *end = memmem(buf, have, "\r\n\r\n", 4);
    if (!end) return 0;
    size_t head = (size_t)(end - buf) + 4;
    *status = atoi(buf + 9); /* "HTTP/1.1 201 ..." */
    size_t body = 0;
    for (const char *line = buf; line < end;) {
        const char *next = memmem(line, (size_t)(end - line), "\r\n", 2);
        if (!next) next = end;
        if ((size_t)(next - line) > 15 && strncasecmp(line, "content-length:", 15) == 0)
            body = strtoul(line + 15, NULL, 10);
        line = next + 2;
    }
    return have >= head + body ? head + body : 0;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s PORT RATE SECONDS CONNECTIONS REQUESTS_FILE\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    double rate = atof(argv[2]), seconds = atof(argv[3]);
    int nconn = atoi(argv[4]);
    long nreq;
    request_t *requests = load(argv[5], &nreq);
    long total = (long)(rate * seconds);
    if (total < 1 || nconn < 1) die("nothing to send");

    double *latency = calloc((size_t)total, sizeof(double));
    int *status = calloc((size_t)total, sizeof(int));
    conn_t *conns = calloc((size_t)nconn, sizeof(conn_t));
    int *idle = malloc(sizeof(int) * (size_t)nconn); /* a ring of idle connections */
    long idle_head = 0, idle_count = 0;

    int ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int c = 0; c < nconn; c++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect");
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conns[c].fd = fd;
        conns[c].current = -1;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
        idle[(idle_head + idle_count++) % nconn] = c;
    }
    int timer = timerfd_create(CLOCK_MONOTONIC, 0);
    if (timer < 0) die("timerfd_create");
    struct epoll_event tev = {.events = EPOLLIN, .data.u32 = (uint32_t)nconn};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, timer, &tev) < 0) die("epoll_ctl timer");

    double start = now() + 0.05;
    long next = 0, done = 0;
    double deadline = start + seconds + 60;
    struct epoll_event events[256];
    while (done < total) {
        double t = now();
        if (t > deadline) {
            fprintf(stderr, "gave up: %ld of %ld answered\n", done, total);
            return 1;
        }
        /* Send every request that is due while a connection is idle. */
        while (next < total && idle_count > 0 && start + (double)next / rate <= t) {
            int c = idle[idle_head];
            idle_head = (idle_head + 1) % nconn;
            idle_count--;
            conns[c].current = next;
            request_t *r = &requests[next % nreq];
            send_all(conns[c].fd, r->data, r->len);
            next++;
        }
        /* Wake up for the next due request (when a connection could take it). */
        if (next < total && idle_count > 0) {
            double due = start + (double)next / rate;
            struct itimerspec when = {0};
            when.it_value.tv_sec = (time_t)due;
            when.it_value.tv_nsec = (long)((due - (double)(time_t)due) * 1e9);
            if (timerfd_settime(timer, TFD_TIMER_ABSTIME, &when, NULL) < 0) die("timerfd");
        }
        int n = epoll_wait(ep, events, 256, 1000);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int e = 0; e < n; e++) {
            int c = (int)events[e].data.u32;
            if (c == nconn) {
                uint64_t expirations;
                if (read(timer, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
                    die("read timer");
                continue;
            }
            conn_t *k = &conns[c];
            ssize_t got = read(k->fd, k->buf + k->have, BUFFER - k->have);
            if (got <= 0) {
                fprintf(stderr, "connection closed by the server\n");
                return 1;
            }
            k->have += (size_t)got;
            int code = 0;
            size_t whole = answer_length(k->buf, k->have, &code);
            if (whole == 0) {
                if (k->have == BUFFER) die("answer larger than the buffer");
                continue;
            }
            if (k->current < 0) die("an answer nobody asked for");
            latency[k->current] = now() - (start + (double)k->current / rate);
            status[k->current] = code;
            memmove(k->buf, k->buf + whole, k->have - whole);
            k->have -= whole;
            k->current = -1;
            idle[(idle_head + idle_count++) % nconn] = c;
            done++;
        }
    }
    double elapsed = now() - start;

    /* Each second's p99 (by the second the request was due), then the whole run's. */
    long nsec = (long)seconds + 1;
    double *second_p99 = calloc((size_t)nsec, sizeof(double));
    double *scratch = malloc(sizeof(double) * (size_t)total);
    long seconds_used = 0, over = 0;
    for (long s = 0; s < nsec; s++) {
        long m = 0;
        for (long i = 0; i < total; i++)
            if ((long)((double)i / rate) == s) scratch[m++] = latency[i];
        if (m == 0) continue;
        qsort(scratch, (size_t)m, sizeof(double), compare);
        second_p99[seconds_used] = percentile(scratch, m, 99) * 1000;
        over += second_p99[seconds_used] > 10;
        seconds_used++;
    }
    qsort(second_p99, (size_t)seconds_used, sizeof(double), compare);
    long errors[MAX_STATUS] = {0};
    for (long i = 0; i < total; i++)
        if (status[i] != 201) errors[status[i] >= 0 && status[i] < MAX_STATUS ? status[i] : 0]++;
    qsort(latency, (size_t)total, sizeof(double), compare);

    printf("{\"sent\": %ld, \"errors\": {", total);
    int first = 1;
    for (int s = 0; s < MAX_STATUS; s++)
        if (errors[s]) {
            printf("%s\"%d\": %ld", first ? "" : ", ", s, errors[s]);
            first = 0;
        }
    printf("}, \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f, \"achieved_rate\": %.1f, "
           "\"second_p99_median_ms\": %.3f, \"seconds_over_10ms\": %ld, \"seconds\": %ld, "
           "\"generator\": \"c\"}\n",
           percentile(latency, total, 50) * 1000, percentile(latency, total, 99) * 1000,
           latency[total - 1] * 1000, (double)total / elapsed,
           second_p99[seconds_used / 2], over, seconds_used);
    return 0;
}
