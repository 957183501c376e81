/*
 * udpload: paced UDP load generator, counting sink, echo and ping-pong for the rsock benchmark.
 *
 *   udpload send  --dst IP:PORT --rate R --duration S [--size 1200, at most 8192] [--flows N] [--sport-base P]
 *                 [--run ID]
 *       Sends DATA datagrams at R per second (0 = as fast as possible) for S seconds, spread
 *       round-robin over N sockets (one app flow each, bound to consecutive source ports from P,
 *       or ephemeral ports when P is 0). Uses sendmmsg; paced with absolute-time sleeps so it
 *       does not spin (the machine has 2 cores shared with what is measured).
 *       Prints: "sent=N target=T elapsed=S errors=E flows=F"
 *
 *   udpload serve --bind IP:PORT [--max-seconds S]
 *       Long-running target. Counts DATA datagrams per run id (unique sequence numbers, distinct
 *       app flows, distinct source ports), echoes PING datagrams unchanged, answers QUERY.
 *       Prints "ready" once bound. Stops on SIGTERM/SIGINT or after --max-seconds.
 *
 *   udpload query --dst IP:PORT --run ID
 *       Asks a serve process for the counts of one run. Prints its answer:
 *       "run=ID recv=N uniq=U bytes=B flows=F sports=P"
 *
 *   udpload ping  --dst IP:PORT --count N [--size 64] [--warmup W] [--timeout-ms T]
 *                 [--max-seconds S] [--rate R]
 *       UDP ping-pong against a serve process: one datagram in flight at a time; with --rate, one
 *       PING every 1/R s whatever the replies (a steady stream, several in flight), each echo timed
 *       from the send time it carries, and T is how long to wait for the last echoes.
 *       Prints: "samples=N lost=L min_us= avg_us= p50_us= p90_us= p99_us= p999_us= max_us="
 *
 *   udpload hold  --dst IP:PORT --flows N --sport-base P --seconds S [--interval-ms I]
 *       Keeps N app flows alive: one small datagram per flow every I ms (default 1000).
 *       Prints "holding=N" once all sockets are open, "done" at the end.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAGIC 0x72736b62u /* "rskb" */
enum { T_DATA = 1, T_PING = 2, T_QUERY = 3, T_ANSWER = 4 };

struct hdr {
  uint32_t magic;
  uint32_t type;
  uint32_t run;
  uint32_t flow;
  uint64_t seq;
  uint64_t ts_ns;
};

#define BATCH 64
/* Large enough for the fragmented 4,000-byte probe (one datagram per buffer). */
#define MAX_SIZE 8192

static volatile sig_atomic_t stop_flag = 0;
static void on_stop(int sig) { (void)sig; stop_flag = 1; }

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t t_ns) {
  struct timespec ts = {.tv_sec = (time_t)(t_ns / 1000000000ull), .tv_nsec = (long)(t_ns % 1000000000ull)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR && !stop_flag) {
  }
}

static void die(const char *what) {
  fprintf(stderr, "udpload: %s: %s\n", what, strerror(errno));
  exit(2);
}

static int parse_addr(const char *s, struct sockaddr_in *sa) {
  char host[64];
  const char *colon = strrchr(s, ':');
  if (!colon || (size_t)(colon - s) >= sizeof host) return -1;
  memcpy(host, s, (size_t)(colon - s));
  host[colon - s] = 0;
  memset(sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  sa->sin_port = htons((uint16_t)atoi(colon + 1));
  if (host[0] == 0) {
    sa->sin_addr.s_addr = htonl(INADDR_ANY);
    return 0;
  }
  return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

/* ---------- options ---------- */
struct opts {
  const char *dst, *bind;
  double rate, duration, seconds, max_seconds;
  int size, flows, sport_base, count, warmup, timeout_ms, interval_ms;
  uint32_t run;
};

static void parse_opts(int argc, char **argv, struct opts *o) {
  memset(o, 0, sizeof *o);
  o->size = 0; /* 0: the mode's default (1200 for send, 64 for ping) */
  o->flows = 1;
  o->duration = 2;
  o->count = 1000;
  o->warmup = 100;
  o->timeout_ms = 100;
  o->interval_ms = 1000;
  o->max_seconds = 600;
  o->seconds = 10;
  for (int i = 2; i < argc; i++) {
    char *a = argv[i], *v = strchr(a, '=');
    if (strncmp(a, "--", 2) != 0) { fprintf(stderr, "udpload: bad argument %s\n", a); exit(2); }
    if (v) *v++ = 0;
    else if (i + 1 < argc) v = argv[++i];
    else { fprintf(stderr, "udpload: %s needs a value\n", a); exit(2); }
    a += 2;
    if (!strcmp(a, "dst")) o->dst = v;
    else if (!strcmp(a, "bind")) o->bind = v;
    else if (!strcmp(a, "rate")) o->rate = atof(v);
    else if (!strcmp(a, "duration")) o->duration = atof(v);
    else if (!strcmp(a, "seconds")) o->seconds = atof(v);
    else if (!strcmp(a, "max-seconds")) o->max_seconds = atof(v);
    else if (!strcmp(a, "size")) o->size = atoi(v);
    else if (!strcmp(a, "flows")) o->flows = atoi(v);
    else if (!strcmp(a, "sport-base")) o->sport_base = atoi(v);
    else if (!strcmp(a, "count")) o->count = atoi(v);
    else if (!strcmp(a, "warmup")) o->warmup = atoi(v);
    else if (!strcmp(a, "timeout-ms")) o->timeout_ms = atoi(v);
    else if (!strcmp(a, "interval-ms")) o->interval_ms = atoi(v);
    else if (!strcmp(a, "run")) o->run = (uint32_t)strtoul(v, NULL, 0);
    else { fprintf(stderr, "udpload: unknown option --%s\n", a); exit(2); }
  }
  if (o->size == 0) o->size = !strcmp(argv[1], "ping") ? 64 : 1200;
  if (o->size < (int)sizeof(struct hdr)) o->size = (int)sizeof(struct hdr);
  if (o->size > MAX_SIZE) o->size = MAX_SIZE;
  if (o->flows < 1) o->flows = 1;
}

static void raise_nofile(int need) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)need) {
    rl.rlim_cur = (rlim_t)need;
    if (rl.rlim_max < rl.rlim_cur) rl.rlim_max = rl.rlim_cur;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

/* Opens n UDP sockets connected to dst, bound to consecutive ports from base (skipping ports that
 * are taken), or ephemeral ports when base is 0. Returns how many were opened. */
static int open_flows(const struct sockaddr_in *dst, int n, int base, int *fds) {
  raise_nofile(n + 64);
  int opened = 0, port = base;
  while (opened < n) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (base > 0) {
      int bound = 0;
      while (port < 65536) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port++)};
        sa.sin_addr.s_addr = htonl(INADDR_ANY);
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0) { bound = 1; break; }
      }
      if (!bound) { close(fd); break; }
    }
    if (connect(fd, (const struct sockaddr *)dst, sizeof *dst) < 0) die("connect");
    fds[opened++] = fd;
  }
  return opened;
}

/* ---------- send ---------- */
static int cmd_send(struct opts *o) {
  struct sockaddr_in dst;
  if (!o->dst || parse_addr(o->dst, &dst) < 0) { fprintf(stderr, "udpload send: --dst IP:PORT\n"); return 2; }
  int *fds = calloc((size_t)o->flows, sizeof(int));
  int nflows = open_flows(&dst, o->flows, o->sport_base, fds);
  if (nflows < 1) { fprintf(stderr, "udpload send: no socket\n"); return 2; }

  static char bufs[BATCH][MAX_SIZE];
  int size = o->size;
  struct iovec iov[BATCH];
  struct mmsghdr msgs[BATCH];
  memset(msgs, 0, sizeof msgs);
  for (int i = 0; i < BATCH; i++) {
    memset(bufs[i], 0xa5, sizeof bufs[i]);
    iov[i].iov_base = bufs[i];
    iov[i].iov_len = (size_t)size;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  /* per-flow burst: 1 flow gets full batches, many flows get one datagram each per turn */
  int perflow = BATCH / nflows;
  if (perflow < 1) perflow = 1;
  uint64_t dur_ns = (uint64_t)(o->duration * 1e9);
  uint64_t target = o->rate > 0 ? (uint64_t)(o->rate * o->duration) : 0;
  /* wake at most ~20k times a second */
  uint64_t min_due = o->rate > 20000 ? (uint64_t)(o->rate / 20000) : 1;
  uint64_t sent = 0, errors = 0;
  int flow = 0;
  uint64_t start = now_ns();
  for (;;) {
    uint64_t t = now_ns() - start;
    if (stop_flag) break;
    /* paced: send the whole target, allowing 5 % of lateness; flood: stop at the duration */
    if (o->rate > 0 ? (sent >= target || t >= dur_ns + dur_ns / 20) : t >= dur_ns) break;
    uint64_t due;
    if (o->rate > 0) {
      due = (uint64_t)(o->rate * (double)t / 1e9) + 1;
      if (due > target) due = target;
      if (due < sent + min_due && due < target) {
        uint64_t next = start + (uint64_t)((double)(sent + min_due) * 1e9 / o->rate);
        sleep_until(next);
        continue;
      }
    } else {
      due = sent + BATCH;
    }
    uint64_t want = due - sent;
    int n = want > (uint64_t)perflow ? perflow : (int)want;
    uint64_t ts = now_ns();
    for (int i = 0; i < n; i++) {
      struct hdr *h = (struct hdr *)bufs[i];
      h->magic = MAGIC;
      h->type = T_DATA;
      h->run = o->run;
      h->flow = (uint32_t)flow;
      h->seq = sent + (uint64_t)i;
      h->ts_ns = ts;
    }
    int r = sendmmsg(fds[flow], msgs, (unsigned)n, MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EAGAIN || errno == ENOBUFS) {
        struct pollfd p = {.fd = fds[flow], .events = POLLOUT};
        poll(&p, 1, 1);
      } else {
        /* ECONNREFUSED etc: nothing listens yet; the datagrams are lost, count them as sent */
        errors += (uint64_t)n;
        sent += (uint64_t)n;
        flow = (flow + 1) % nflows;
      }
      continue;
    }
    sent += (uint64_t)r;
    if (r == n) flow = (flow + 1) % nflows;
  }
  double el = (double)(now_ns() - start) / 1e9;
  printf("sent=%llu target=%llu elapsed=%.3f errors=%llu flows=%d\n", (unsigned long long)sent,
         (unsigned long long)(target ? target : sent), el, (unsigned long long)errors, nflows);
  fflush(stdout);
  return 0;
}

/* ---------- hold: keep many flows alive at a low rate ---------- */
static int cmd_hold(struct opts *o) {
  struct sockaddr_in dst;
  if (!o->dst || parse_addr(o->dst, &dst) < 0) { fprintf(stderr, "udpload hold: --dst IP:PORT\n"); return 2; }
  int *fds = calloc((size_t)o->flows, sizeof(int));
  int nflows = open_flows(&dst, o->flows, o->sport_base, fds);
  printf("holding=%d\n", nflows);
  fflush(stdout);
  char buf[64];
  memset(buf, 0, sizeof buf);
  struct hdr *h = (struct hdr *)buf;
  h->magic = MAGIC;
  h->type = T_DATA;
  h->run = o->run;
  uint64_t start = now_ns(), end = start + (uint64_t)(o->seconds * 1e9);
  uint64_t interval = (uint64_t)o->interval_ms * 1000000ull, seq = 0, errors = 0;
  for (uint64_t round = 0; !stop_flag; round++) {
    uint64_t rs = start + round * interval;
    if (rs >= end) break;
    /* spread the round's datagrams over the interval in 100 slices */
    for (int slice = 0; slice < 100 && !stop_flag; slice++) {
      sleep_until(rs + interval * (uint64_t)slice / 100);
      if (now_ns() >= end) break;
      for (int f = slice; f < nflows; f += 100) {
        h->flow = (uint32_t)f;
        h->seq = seq++;
        h->ts_ns = now_ns();
        if (send(fds[f], buf, sizeof buf, MSG_DONTWAIT) < 0) errors++;
      }
    }
  }
  printf("done sent=%llu errors=%llu\n", (unsigned long long)seq, (unsigned long long)errors);
  fflush(stdout);
  return 0;
}

/* ---------- serve ---------- */
#define SLOTS 8
#define SEQ_BITS (1u << 24)
struct slot {
  uint32_t run;
  int used;
  uint64_t recv, uniq, bytes, flows, sports, last_use;
  uint8_t *seqmap;          /* SEQ_BITS bits */
  uint8_t flowmap[65536 / 8];
  uint8_t portmap[65536 / 8];
};
static struct slot slots[SLOTS];
static uint64_t use_clock = 0;

static struct slot *slot_for(uint32_t run, int create) {
  struct slot *lru = &slots[0];
  for (int i = 0; i < SLOTS; i++) {
    if (slots[i].used && slots[i].run == run) { slots[i].last_use = ++use_clock; return &slots[i]; }
    if (!slots[i].used || slots[i].last_use < lru->last_use) lru = &slots[i];
    if (!slots[i].used) break;
  }
  if (!create) return NULL;
  uint8_t *map = lru->seqmap;
  if (!map) map = malloc(SEQ_BITS / 8);
  memset(lru, 0, sizeof *lru);
  memset(map, 0, SEQ_BITS / 8);
  lru->seqmap = map;
  lru->run = run;
  lru->used = 1;
  lru->last_use = ++use_clock;
  return lru;
}

static int testset(uint8_t *map, uint64_t bit) {
  uint8_t m = (uint8_t)(1u << (bit & 7));
  int was = (map[bit >> 3] & m) != 0;
  map[bit >> 3] |= m;
  return was;
}

static int cmd_serve(struct opts *o) {
  struct sockaddr_in sa;
  if (!o->bind || parse_addr(o->bind, &sa) < 0) { fprintf(stderr, "udpload serve: --bind IP:PORT\n"); return 2; }
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  int big = 16 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big);
  struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind");
  printf("ready\n");
  fflush(stdout);

  static char bufs[BATCH][MAX_SIZE];
  struct iovec iov[BATCH];
  struct sockaddr_in from[BATCH];
  struct mmsghdr msgs[BATCH];
  uint64_t end = now_ns() + (uint64_t)(o->max_seconds * 1e9);
  while (!stop_flag && now_ns() < end) {
    for (int i = 0; i < BATCH; i++) {
      iov[i].iov_base = bufs[i];
      iov[i].iov_len = sizeof bufs[i];
      memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof from[i];
    }
    int r = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
    if (r <= 0) continue;
    for (int i = 0; i < r; i++) {
      unsigned len = msgs[i].msg_len;
      struct hdr *h = (struct hdr *)bufs[i];
      if (len < sizeof *h || h->magic != MAGIC) continue;
      if (h->type == T_DATA) {
        struct slot *s = slot_for(h->run, 1);
        s->recv++;
        s->bytes += len;
        if (h->seq < SEQ_BITS) { if (!testset(s->seqmap, h->seq)) s->uniq++; }
        if (!testset(s->flowmap, h->flow & 0xffff)) s->flows++;
        if (!testset(s->portmap, ntohs(from[i].sin_port))) s->sports++;
      } else if (h->type == T_PING) {
        sendto(fd, bufs[i], len, MSG_DONTWAIT, (struct sockaddr *)&from[i], msgs[i].msg_hdr.msg_namelen);
      } else if (h->type == T_QUERY) {
        struct slot *s = slot_for(h->run, 0);
        char ans[512];
        struct hdr *a = (struct hdr *)ans;
        *a = *h;
        a->type = T_ANSWER;
        int n = snprintf(ans + sizeof *a, sizeof ans - sizeof *a,
                         "run=%u recv=%llu uniq=%llu bytes=%llu flows=%llu sports=%llu", h->run,
                         (unsigned long long)(s ? s->recv : 0), (unsigned long long)(s ? s->uniq : 0),
                         (unsigned long long)(s ? s->bytes : 0), (unsigned long long)(s ? s->flows : 0),
                         (unsigned long long)(s ? s->sports : 0));
        sendto(fd, ans, sizeof *a + (size_t)n, MSG_DONTWAIT, (struct sockaddr *)&from[i], msgs[i].msg_hdr.msg_namelen);
      }
    }
  }
  return 0;
}

/* ---------- query ---------- */
static int cmd_query(struct opts *o) {
  struct sockaddr_in dst;
  if (!o->dst || parse_addr(o->dst, &dst) < 0) { fprintf(stderr, "udpload query: --dst IP:PORT\n"); return 2; }
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0) die("connect");
  struct hdr q = {.magic = MAGIC, .type = T_QUERY, .run = o->run, .seq = now_ns()};
  for (int attempt = 0; attempt < 5; attempt++) {
    if (send(fd, &q, sizeof q, 0) < 0) { usleep(100000); continue; }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    uint64_t until = now_ns() + 300000000ull;
    while (now_ns() < until) {
      if (poll(&p, 1, 50) <= 0) continue;
      char buf[1024];
      ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
      if (n < (ssize_t)sizeof q) continue;
      struct hdr *a = (struct hdr *)buf;
      if (a->magic != MAGIC || a->type != T_ANSWER || a->seq != q.seq) continue;
      buf[n] = 0;
      printf("%s\n", buf + sizeof q);
      return 0;
    }
  }
  fprintf(stderr, "udpload query: no answer from %s\n", o->dst);
  return 1;
}

/* ---------- ping ---------- */
static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}
static double pct(const uint64_t *v, int n, double p) {
  if (n == 0) return 0;
  int idx = (int)((double)n * p + 0.999999) - 1; /* nearest rank */
  if (idx < 0) idx = 0;
  if (idx >= n) idx = n - 1;
  return (double)v[idx] / 1000.0;
}

/* Paced ping: sends on schedule, reads every echo that has come in between two sends. */
static int ping_paced(struct opts *o, int fd, uint32_t run, uint64_t *rtt) {
  int total = o->count + o->warmup, sent = 0, samples = 0;
  char buf[2048], rbuf[2048];
  memset(buf, 0x5a, sizeof buf);
  uint8_t *seen = calloc((size_t)total + 1, 1);
  uint64_t start = now_ns(), period = (uint64_t)(1e9 / o->rate), grace_end = 0;
  uint64_t deadline = start + (uint64_t)(o->max_seconds * 1e9);
  while (!stop_flag) {
    uint64_t t = now_ns();
    if (t >= deadline) break;
    if (sent < total && t >= start + (uint64_t)sent * period) {
      struct hdr *h = (struct hdr *)buf;
      h->magic = MAGIC;
      h->type = T_PING;
      h->run = run;
      h->seq = (uint64_t)sent;
      h->ts_ns = now_ns();
      send(fd, buf, (size_t)o->size, 0); /* a failed send is a lost sample */
      sent++;
      continue;
    }
    if (sent == total && grace_end == 0) grace_end = t + (uint64_t)o->timeout_ms * 1000000ull;
    if (grace_end && (t >= grace_end || samples == o->count)) break;
    uint64_t next = sent < total ? start + (uint64_t)sent * period : grace_end;
    uint64_t wait = next > t ? next - t : 0;
    struct timespec ts = {.tv_sec = (time_t)(wait / 1000000000ull), .tv_nsec = (long)(wait % 1000000000ull)};
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (ppoll(&p, 1, &ts, NULL) <= 0) continue;
    ssize_t n;
    while ((n = recv(fd, rbuf, sizeof rbuf, MSG_DONTWAIT)) >= (ssize_t)sizeof(struct hdr)) {
      struct hdr *r = (struct hdr *)rbuf;
      if (r->magic != MAGIC || r->type != T_PING || r->run != run || r->seq >= (uint64_t)sent || seen[r->seq]) continue;
      seen[r->seq] = 1;
      if (r->seq >= (uint64_t)o->warmup) rtt[samples++] = now_ns() - r->ts_ns;
    }
  }
  free(seen);
  return samples;
}

static int cmd_ping(struct opts *o) {
  struct sockaddr_in dst;
  if (!o->dst || parse_addr(o->dst, &dst) < 0) { fprintf(stderr, "udpload ping: --dst IP:PORT\n"); return 2; }
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0) die("connect");
  int size = o->size;
  char buf[2048], rbuf[2048];
  memset(buf, 0x5a, sizeof buf);
  uint64_t *rtt = calloc((size_t)o->count + 1, sizeof(uint64_t));
  int samples = 0, lost = 0, replies = 0, total = o->count + o->warmup;
  uint64_t deadline = now_ns() + (uint64_t)(o->max_seconds * 1e9);
  uint32_t run = o->run ? o->run : (uint32_t)getpid();
  if (o->rate > 0) {
    samples = ping_paced(o, fd, run, rtt);
    lost = o->count - samples;
    total = 0;
  }
  for (int i = 0; i < total && !stop_flag && now_ns() < deadline; i++) {
    struct hdr *h = (struct hdr *)buf;
    h->magic = MAGIC;
    h->type = T_PING;
    h->run = run;
    h->seq = (uint64_t)i;
    uint64_t t0 = now_ns();
    h->ts_ns = t0;
    if (send(fd, buf, (size_t)size, 0) < 0) {
      if (i >= o->warmup) lost++;
      usleep(1000);
      continue;
    }
    uint64_t until = t0 + (uint64_t)o->timeout_ms * 1000000ull;
    int got = 0;
    while (!got) {
      uint64_t t = now_ns();
      if (t >= until) break;
      struct pollfd p = {.fd = fd, .events = POLLIN};
      int to = (int)((until - t) / 1000000ull) + 1;
      if (poll(&p, 1, to) <= 0) continue;
      ssize_t n = recv(fd, rbuf, sizeof rbuf, MSG_DONTWAIT);
      if (n < (ssize_t)sizeof(struct hdr)) continue;
      struct hdr *r = (struct hdr *)rbuf;
      if (r->magic == MAGIC && r->type == T_PING && r->run == run && r->seq == (uint64_t)i) {
        uint64_t d = now_ns() - t0;
        if (i >= o->warmup) rtt[samples++] = d;
        got = 1;
      }
    }
    if (got) replies++;
    if (!got && i >= o->warmup) lost++;
    if (i >= 9 && replies == 0) break; /* nothing answers: do not wait out every timeout */
  }
  qsort(rtt, (size_t)samples, sizeof rtt[0], cmp_u64);
  double sum = 0;
  for (int i = 0; i < samples; i++) sum += (double)rtt[i];
  printf("samples=%d lost=%d min_us=%.1f avg_us=%.1f p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f\n", samples, lost,
         samples ? (double)rtt[0] / 1000.0 : 0, samples ? sum / samples / 1000.0 : 0, pct(rtt, samples, 0.50),
         pct(rtt, samples, 0.90), pct(rtt, samples, 0.99), pct(rtt, samples, 0.999), samples ? (double)rtt[samples - 1] / 1000.0 : 0);
  fflush(stdout);
  return samples > 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: udpload send|serve|query|ping|hold [--options]\n");
    return 2;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  prctl(PR_SET_TIMERSLACK, 1000UL); /* 1 us: precise pacing without spinning */
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  struct opts o;
  parse_opts(argc, argv, &o);
  const char *cmd = argv[1];
  if (!strcmp(cmd, "send")) return cmd_send(&o);
  if (!strcmp(cmd, "serve")) return cmd_serve(&o);
  if (!strcmp(cmd, "query")) return cmd_query(&o);
  if (!strcmp(cmd, "ping")) return cmd_ping(&o);
  if (!strcmp(cmd, "hold")) return cmd_hold(&o);
  fprintf(stderr, "udpload: unknown command %s\n", cmd);
  return 2;
}
