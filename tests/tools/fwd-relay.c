/*
 * fwd-relay PORT: relay stdin/stdout to a TCP connection to 127.0.0.1:PORT.
 *
 * QEMU's slirp runs it once per guest connection in the form
 *   -netdev user,...,guestfwd=tcp:10.0.2.100:7010-cmd:fwd-relay 7010
 * with the guest's connection on its stdin and stdout.  The host has no
 * nc; busybox nc would do, but this one propagates EOF both ways (the
 * guest's FIN becomes shutdown(SHUT_WR) towards the host, and the other
 * way round), which a protocol that half-closes needs, and it exits when
 * both directions are done, when either side errors, or when the guest
 * side is gone altogether (QEMU killed), so no relay outlives its QEMU.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Under slirp, stderr is the guest's connection too: error text would go
 * into the guest's stream, so it is printed only when stderr is not stdin. */
static int quiet;

#define complain(...)                                                        \
    do {                                                                     \
        if (!quiet) {                                                        \
            fprintf(stderr, __VA_ARGS__);                                    \
        }                                                                    \
    } while (0)

/* Copy what is readable on IN to OUT; 1 on EOF, -1 on error, 0 else. */
static int
pump(int in, int out, const char *what)
{
    static char buf[256 * 1024];
    ssize_t n = read(in, buf, sizeof buf);

    if (n == 0) {
        return 1;
    }
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) {
            return 0;
        }
        complain("fwd-relay: read %s: %s\n", what, strerror(errno));
        return -1;
    }
    for (ssize_t off = 0; off < n;) {
        ssize_t w = write(out, buf + off, (size_t)(n - off));

        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            complain("fwd-relay: write %s: %s\n", what, strerror(errno));
            return -1;
        }
        off += w;
    }
    return 0;
}

/* Tell the reader of FD that no more data comes. */
static void
end_of_data(int fd)
{
    struct stat st;

    if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode)) {
        shutdown(fd, SHUT_WR);
    } else {
        close(fd);
    }
}

int
main(int argc, char **argv)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    struct stat in_st, err_st;
    char *end;
    long port;
    int s, one = 1;
    int up_done = 0, down_done = 0;

    quiet = fstat(0, &in_st) == 0 && fstat(2, &err_st) == 0 &&
            in_st.st_dev == err_st.st_dev && in_st.st_ino == err_st.st_ino;
    if (argc != 2) {
        fprintf(stderr, "usage: fwd-relay PORT\n");
        return 2;
    }
    errno = 0;
    port = strtol(argv[1], &end, 10);
    if (errno != 0 || *end != '\0' || port < 1 || port > 65535) {
        fprintf(stderr, "fwd-relay: bad port: %s\n", argv[1]);
        return 2;
    }
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof sa) != 0) {
        complain("fwd-relay: connect 127.0.0.1:%ld: %s\n", port,
                 strerror(errno));
        return 1;
    }
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    /* up: guest (stdin) to host (s); down: host (s) to guest (stdout). */
    while (!up_done || !down_done) {
        struct pollfd p[3] = {
            { .fd = up_done ? -1 : 0, .events = POLLIN },
            { .fd = down_done ? -1 : s, .events = POLLIN },
            /* No events asked: POLLHUP/POLLERR say the guest is gone. */
            { .fd = down_done ? -1 : 1, .events = 0 },
        };
        int r;

        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            complain("fwd-relay: poll: %s\n", strerror(errno));
            return 1;
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            r = pump(0, s, "guest");
            if (r < 0) {
                return 1;
            }
            if (r > 0) {
                up_done = 1;
                shutdown(s, SHUT_WR);
            }
        }
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            r = pump(s, 1, "host");
            if (r < 0) {
                return 1;
            }
            if (r > 0) {
                down_done = 1;
                end_of_data(1);
            }
        }
        if (!down_done && (p[2].revents & (POLLHUP | POLLERR)) &&
            !(p[0].revents & POLLIN)) {
            /* The guest side closed completely: nobody reads any more. */
            return up_done ? 0 : 1;
        }
    }
    close(s);
    return 0;
}
