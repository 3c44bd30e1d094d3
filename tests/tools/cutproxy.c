/* SPDX-License-Identifier: MIT */
/*
 * cutproxy: a TCP proxy that cuts its connections, for the resume tests.
 *
 *   cutproxy -p PORT -n CUTS [-s SEED] [-b MIN:MAX] [-l LOGFILE]
 *
 * Listens on 127.0.0.1 (a free port), prints "listening PORT" on stdout,
 * and forwards every connection it accepts to 127.0.0.1:PORT, both ways.
 * Each connection, while fewer than CUTS cuts happened, is cut after a
 * pseudo-random number of bytes (MIN to MAX, default 256K:4M) was
 * forwarded from the client to the target: either both sides are reset
 * (SO_LINGER 0, an RST) or both are shut down for writing (a FIN) and
 * closed once the peers closed too; the kind is drawn at random as well.
 * After the last cut connections are forwarded faithfully.  Connections
 * are served one after the other or at once (up to MAXPAIRS).
 *
 * The log (stderr, or LOGFILE) has one line per event, flushed at once,
 * each ending with the seconds since the start (" t=1.234"):
 *
 *   accept CONN
 *   cut N conn CONN after BYTES bytes (rst|fin)
 *   close CONN after BYTES bytes [(why)]    (an uncut connection ended)
 *   refused CONN: MESSAGE                   (the target did not answer)
 *
 * BYTES counts what was forwarded from the client to the target.  The
 * same seed gives the same cut points and kinds.  Stop it with SIGTERM.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXPAIRS 16
#define BUFSZ (64u << 10)
#define DRAIN_SECONDS 5         /* a FIN-cut pair waits this long for EOFs */

enum { CLIENT, TARGET };

/* One direction of a pair: read from fd[from], written to fd[1 - from]. */
struct dir {
    unsigned char buf[BUFSZ];
    size_t off, len;            /* pending bytes: buf[off .. off + len) */
    bool eof;                   /* the reading side said EOF */
    bool shut;                  /* the EOF was passed on (SHUT_WR) */
    uint64_t bytes;             /* forwarded */
};

struct pair {
    bool used;
    unsigned id;
    int fd[2];
    struct dir d[2];            /* d[CLIENT]: client to target */
    uint64_t budget;            /* cut at this many client bytes */
    bool draining;              /* FIN-cut: discard until both EOF */
    time_t drain_until;
};

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static FILE *logfp;
static struct pair pairs[MAXPAIRS];
static unsigned cuts_wanted, cuts_done, conns;
static struct timespec start;
static uint64_t min_bytes = 256u << 10, max_bytes = 4u << 20;

static uint64_t
rnd (void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

static void
logline (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

static void
logline (const char *fmt, ...)
{
    struct timespec ts;
    va_list ap;

    clock_gettime (CLOCK_MONOTONIC, &ts);
    va_start (ap, fmt);
    vfprintf (logfp, fmt, ap);
    va_end (ap);
    fprintf (logfp, " t=%.3f\n", (double) (ts.tv_sec - start.tv_sec) +
             (double) (ts.tv_nsec - start.tv_nsec) / 1e9);
    fflush (logfp);
}

static int
parse_u64 (const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull (s, &end, 10);
    if (errno != 0 || end == s || s[0] == '-') {
        return -1;
    }
    switch (*end) {
    case 'K': v = v > UINT64_MAX >> 10 ? 0 : v << 10; end++; break;
    case 'M': v = v > UINT64_MAX >> 20 ? 0 : v << 20; end++; break;
    default: break;
    }
    if (*end != '\0' || v == 0) {
        return -1;
    }
    *out = v;
    return 0;
}

/* Non-blocking, and without Nagle's delay: small frames (a handshake,
 * an ACK) go on at once, as they would without the proxy. */
static int
set_nonblock (int fd)
{
    int fl = fcntl (fd, F_GETFL), one = 1;

    if (fl == -1 || fcntl (fd, F_SETFL, fl | O_NONBLOCK) == -1) {
        return -1;
    }
    return setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int
listen_any (uint16_t *port)
{
    struct sockaddr_in a = { 0 };
    socklen_t al = sizeof a;
    int fd, one = 1;

    fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        perror ("cutproxy: socket");
        return -1;
    }
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind (fd, (struct sockaddr *) &a, sizeof a) == -1 ||
        listen (fd, 16) == -1 ||
        getsockname (fd, (struct sockaddr *) &a, &al) == -1 ||
        set_nonblock (fd) == -1) {
        perror ("cutproxy: listen");
        close (fd);
        return -1;
    }
    *port = ntohs (a.sin_port);
    return fd;
}

/* A blocking connect to the target (on loopback it answers at once),
 * then non-blocking like every other socket here. */
static int
connect_target (uint16_t port)
{
    struct sockaddr_in a = { 0 };
    int fd;

    fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        return -1;
    }
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    a.sin_port = htons (port);
    while (connect (fd, (struct sockaddr *) &a, sizeof a) == -1) {
        if (errno != EINTR) {
            close (fd);
            return -1;
        }
    }
    if (set_nonblock (fd) == -1) {
        close (fd);
        return -1;
    }
    return fd;
}

static void
pair_close (struct pair *p, bool reset)
{
    struct linger lg = { 1, 0 };
    int i;

    for (i = 0; i < 2; i++) {
        if (reset) {
            setsockopt (p->fd[i], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        close (p->fd[i]);
    }
    p->used = false;
}

static void
pair_end (struct pair *p)
{
    if (!p->draining) {
        logline ("close %u after %" PRIu64 " bytes", p->id,
                 p->d[CLIENT].bytes);
    }
    pair_close (p, false);
}

static void
cut (struct pair *p)
{
    bool reset = (rnd () & 1) != 0;

    cuts_done++;
    logline ("cut %u conn %u after %" PRIu64 " bytes (%s)", cuts_done, p->id,
             p->d[CLIENT].bytes, reset ? "rst" : "fin");
    if (reset) {
        pair_close (p, true);
        return;
    }
    /* A FIN both ways; what either peer still sends is thrown away, and
     * the sockets are closed when both have closed (or after a while). */
    shutdown (p->fd[CLIENT], SHUT_WR);
    shutdown (p->fd[TARGET], SHUT_WR);
    p->draining = true;
    p->drain_until = time (NULL) + DRAIN_SECONDS;
    p->d[CLIENT].len = p->d[TARGET].len = 0;
    p->d[CLIENT].shut = p->d[TARGET].shut = true;
}

static void
accept_one (int lfd, uint16_t port)
{
    struct pair *p = NULL;
    unsigned i;
    int cfd, tfd;

    cfd = accept4 (lfd, NULL, NULL, SOCK_CLOEXEC);
    if (cfd == -1) {
        return;
    }
    for (i = 0; i < MAXPAIRS && p == NULL; i++) {
        if (!pairs[i].used) {
            p = &pairs[i];
        }
    }
    conns++;
    if (p == NULL) {
        logline ("refused %u: too many connections", conns);
        close (cfd);
        return;
    }
    tfd = connect_target (port);
    if (tfd == -1 || set_nonblock (cfd) == -1) {
        logline ("refused %u: %s", conns, strerror (errno));
        if (tfd != -1) {
            close (tfd);
        }
        close (cfd);
        return;
    }
    memset (p, 0, sizeof *p);
    p->used = true;
    p->id = conns;
    p->fd[CLIENT] = cfd;
    p->fd[TARGET] = tfd;
    p->budget = UINT64_MAX;
    if (cuts_done < cuts_wanted) {
        p->budget = min_bytes + rnd () % (max_bytes - min_bytes + 1);
    }
    logline ("accept %u", p->id);
}

/* Read into direction FROM's buffer; -1 when the pair is to be dropped. */
static int
pump_in (struct pair *p, int from)
{
    struct dir *d = &p->d[from];
    unsigned char sink[BUFSZ];
    ssize_t n;

    for (;;) {
        if (p->draining) {
            n = recv (p->fd[from], sink, sizeof sink, 0);
        }
        else {
            if (d->len > 0 || d->eof) {
                return 0;
            }
            n = recv (p->fd[from], d->buf, sizeof d->buf, 0);
        }
        if (n > 0) {
            if (!p->draining) {
                d->off = 0;
                d->len = (size_t) n;
            }
            return 0;
        }
        if (n == 0) {
            d->eof = true;
            return 0;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return 0;
        }
        return -1;              /* reset by the peer: drop the pair */
    }
}

/* Write what direction FROM holds; cut when the client's budget is
 * reached.  -1 when the pair is gone or to be dropped. */
static int
pump_out (struct pair *p, int from)
{
    struct dir *d = &p->d[from];
    size_t want;
    ssize_t n;

    while (d->len > 0) {
        want = d->len;
        if (from == CLIENT && p->budget != UINT64_MAX) {
            uint64_t room = p->budget - d->bytes;

            want = room < want ? (size_t) room : want;
        }
        n = send (p->fd[1 - from], d->buf + d->off, want, MSG_NOSIGNAL);
        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        }
        d->off += (size_t) n;
        d->len -= (size_t) n;
        d->bytes += (uint64_t) n;
        if (from == CLIENT && d->bytes >= p->budget) {
            if (cuts_done < cuts_wanted) {
                cut (p);
                return -2;
            }
            p->budget = UINT64_MAX;     /* enough cuts: forward the rest */
        }
    }
    if (d->eof && !d->shut) {
        shutdown (p->fd[1 - from], SHUT_WR);
        d->shut = true;
    }
    return 0;
}

static short
events_for (const struct pair *p, int fd_index)
{
    const struct dir *in = &p->d[fd_index], *out = &p->d[1 - fd_index];
    short ev = 0;

    if (p->draining) {
        return in->eof ? 0 : POLLIN;
    }
    if (in->len == 0 && !in->eof) {
        ev |= POLLIN;
    }
    if (out->len > 0) {
        ev |= POLLOUT;
    }
    return ev;
}

/* A socket with nothing to wait for is left out of poll (a negative fd),
 * else a hung-up peer would wake poll at once, again and again. */
static void
watch (struct pollfd *pf, const struct pair *p, int fd_index)
{
    pf->events = events_for (p, fd_index);
    pf->fd = pf->events != 0 ? p->fd[fd_index] : -1;
    pf->revents = 0;
}

/* Serve one pair after poll; the pair may be closed on return. */
static void
serve_pair (struct pair *p, const struct pollfd *pf)
{
    int i, r;

    for (i = 0; i < 2; i++) {
        if (pf[i].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (pump_in (p, i) == -1) {
                if (p->draining) {
                    p->d[i].eof = true;
                    continue;
                }
                logline ("close %u after %" PRIu64 " bytes (reset by %s)",
                         p->id, p->d[CLIENT].bytes,
                         i == CLIENT ? "the client" : "the target");
                pair_close (p, true);
                return;
            }
        }
    }
    if (p->draining) {
        if ((p->d[CLIENT].eof && p->d[TARGET].eof) ||
            time (NULL) >= p->drain_until) {
            pair_end (p);
        }
        return;
    }
    for (i = 0; i < 2; i++) {
        r = pump_out (p, i);
        if (r == -2) {
            return;             /* cut */
        }
        if (r == -1) {
            logline ("close %u after %" PRIu64 " bytes (write failed)",
                     p->id, p->d[CLIENT].bytes);
            pair_close (p, true);
            return;
        }
    }
    if (p->d[CLIENT].shut && p->d[TARGET].shut) {
        pair_end (p);
    }
}

static void
usage (void)
{
    fprintf (stderr, "usage: cutproxy -p PORT -n CUTS [-s SEED] "
             "[-b MIN:MAX] [-l LOGFILE]\n");
    exit (2);
}

static void
parse_args (int argc, char **argv, uint16_t *port)
{
    uint64_t v;
    char *colon;
    int c;

    logfp = stderr;
    while ((c = getopt (argc, argv, "p:n:s:b:l:")) != -1) {
        switch (c) {
        case 'p':
            if (parse_u64 (optarg, &v) == -1 || v > 65535) {
                usage ();
            }
            *port = (uint16_t) v;
            break;
        case 'n':
            cuts_wanted = 0;
            if (strcmp (optarg, "0") != 0) {
                if (parse_u64 (optarg, &v) == -1 || v > 100000) {
                    usage ();
                }
                cuts_wanted = (unsigned) v;
            }
            break;
        case 's':
            if (parse_u64 (optarg, &v) == -1) {
                usage ();
            }
            rng_state ^= v * 0x9E3779B97F4A7C15ULL;
            if (rng_state == 0) {
                rng_state = 1;
            }
            break;
        case 'b':
            colon = strchr (optarg, ':');
            if (colon == NULL) {
                usage ();
            }
            *colon = '\0';
            if (parse_u64 (optarg, &min_bytes) == -1 ||
                parse_u64 (colon + 1, &max_bytes) == -1 ||
                min_bytes > max_bytes) {
                usage ();
            }
            break;
        case 'l':
            logfp = fopen (optarg, "a");
            if (logfp == NULL) {
                perror (optarg);
                exit (1);
            }
            break;
        default:
            usage ();
        }
    }
    if (*port == 0 || optind != argc) {
        usage ();
    }
}

int
main (int argc, char **argv)
{
    struct pollfd pf[1 + 2 * MAXPAIRS];
    struct pair *of[1 + 2 * MAXPAIRS];
    uint16_t port = 0, lport;
    unsigned i, n;
    int lfd;

    parse_args (argc, argv, &port);
    clock_gettime (CLOCK_MONOTONIC, &start);
    signal (SIGPIPE, SIG_IGN);
    lfd = listen_any (&lport);
    if (lfd == -1) {
        return 1;
    }
    printf ("listening %u\n", (unsigned) lport);
    fflush (stdout);
    for (;;) {
        n = 0;
        pf[n].fd = lfd;
        pf[n].events = POLLIN;
        of[n++] = NULL;
        for (i = 0; i < MAXPAIRS; i++) {
            if (pairs[i].used) {
                watch (&pf[n], &pairs[i], CLIENT);
                of[n++] = &pairs[i];
                watch (&pf[n], &pairs[i], TARGET);
                of[n++] = &pairs[i];
            }
        }
        if (poll (pf, n, 1000) == -1) {
            if (errno == EINTR) {
                continue;
            }
            perror ("cutproxy: poll");
            return 1;
        }
        for (i = 1; i < n; i += 2) {
            /* Timed-out drains are ended here too (revents may be 0). */
            if (of[i]->used) {
                serve_pair (of[i], &pf[i]);
            }
        }
        if (pf[0].revents & POLLIN) {
            accept_one (lfd, port);
        }
    }
}
