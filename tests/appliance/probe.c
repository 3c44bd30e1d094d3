/*
 * probe: a stand-in for the appliance program in the boot tests.
 *
 * Installed as /sbin/vmconvert-appliance in a test initramfs, it runs as
 * PID 1 after /init and prints what a test judges on the serial console:
 *
 *   PROBE-START uptime=S
 *   PROBE-CMDLINE <the kernel command line>
 *   PROBE-DISK name=N size=BYTES driver=D hba=H serial=S md5=HEX
 *                      (one per disk; md5 of the first MiB)
 *   PROBE-CFG dev=N fs=F <first line of vmconvert.cfg>
 *                      (with probe.cfg=1: every ISO 9660 or FAT volume
 *                      holding /vmconvert.cfg)
 *   PROBE-NET-REPLY <line>
 *                      (with probe.net=IP:PORT: DHCP with busybox udhcpc,
 *                      then send a hello and print the reply)
 *   PROBE-ASK> ... PROBE-GOT <line>
 *                      (with probe.ask=1: read one line from the console)
 *   PROBE-DONE uptime=S
 *
 * then powers the machine off with reboot(RB_POWER_OFF): PID 1 must never
 * exit.  Other options: probe.disks=N waits up to 30 s for N disks.
 * Statically linked; uses busybox (md5sum, udhcpc) through /bin/sh.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char cmdline[4096];

static void
read_line_file(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");

    buf[0] = '\0';
    if (f == NULL) {
        return;
    }
    if (fgets(buf, (int)len, f) == NULL) {
        buf[0] = '\0';
    }
    fclose(f);
    buf[strcspn(buf, "\r\n")] = '\0';
}

static void
uptime(char *buf, size_t len)
{
    read_line_file("/proc/uptime", buf, len);
    buf[strcspn(buf, " ")] = '\0';
}

/* The value of kernel parameter NAME (e.g. "probe.net"), or NULL. */
static const char *
param(const char *name, char *buf, size_t len)
{
    size_t n = strlen(name);
    const char *p = cmdline;

    while (*p != '\0') {
        size_t w;

        p += strspn(p, " ");
        w = strcspn(p, " ");
        if (w > n && strncmp(p, name, n) == 0 && p[n] == '=') {
            size_t v = w - n - 1;

            if (v >= len) {
                v = len - 1;
            }
            memcpy(buf, p + n + 1, v);
            buf[v] = '\0';
            return buf;
        }
        p += w;
    }
    return NULL;
}

static int
skip_block(const char *name)
{
    return name[0] == '.' || strncmp(name, "loop", 4) == 0 ||
           strncmp(name, "ram", 3) == 0 || strncmp(name, "zram", 4) == 0;
}

static int
count_disks(void)
{
    DIR *d = opendir("/sys/block");
    struct dirent *e;
    int n = 0;

    if (d == NULL) {
        return 0;
    }
    while ((e = readdir(d)) != NULL) {
        if (!skip_block(e->d_name) && strncmp(e->d_name, "sr", 2) != 0) {
            n++;
        }
    }
    closedir(d);
    return n;
}

/* The name of the driver bound to the PCI device above sysfs dir DEV. */
static void
pci_driver(const char *dev, char *out, size_t len)
{
    char path[PATH_MAX], link[PATH_MAX];

    snprintf(out, len, "-");
    if (realpath(dev, path) == NULL) {
        return;
    }
    while (strlen(path) > strlen("/sys/devices")) {
        char drv[PATH_MAX + 16], subsys[PATH_MAX + 16];
        ssize_t n;
        char *slash;

        snprintf(subsys, sizeof subsys, "%s/subsystem", path);
        n = readlink(subsys, link, sizeof link - 1);
        if (n > 0) {
            link[n] = '\0';
            if (strcmp(strrchr(link, '/') + 1, "pci") == 0) {
                snprintf(drv, sizeof drv, "%s/driver", path);
                n = readlink(drv, link, sizeof link - 1);
                if (n > 0) {
                    link[n] = '\0';
                    snprintf(out, len, "%s", strrchr(link, '/') + 1);
                }
                return;
            }
        }
        slash = strrchr(path, '/');
        if (slash == NULL) {
            return;
        }
        *slash = '\0';
    }
}

static void
link_base(const char *path, char *out, size_t len)
{
    char link[PATH_MAX];
    ssize_t n = readlink(path, link, sizeof link - 1);
    const char *base;

    if (n <= 0) {
        snprintf(out, len, "-");
        return;
    }
    link[n] = '\0';
    base = strrchr(link, '/') ? strrchr(link, '/') + 1 : link;
    if (strlen(base) >= len) {
        snprintf(out, len, "?");
        return;
    }
    memcpy(out, base, strlen(base) + 1);
}

static void
run_capture(const char *cmd, char *out, size_t len)
{
    FILE *p = popen(cmd, "r");

    out[0] = '\0';
    if (p == NULL) {
        return;
    }
    if (fgets(out, (int)len, p) == NULL) {
        out[0] = '\0';
    }
    while (fgetc(p) != EOF) {
    }
    pclose(p);
    out[strcspn(out, " \r\n")] = '\0';
}

static void
list_disks(void)
{
    DIR *d = opendir("/sys/block");
    struct dirent *e;
    char *names[64];
    int n = 0;

    if (d == NULL) {
        printf("PROBE-ERROR no /sys/block: %s\n", strerror(errno));
        return;
    }
    while ((e = readdir(d)) != NULL && n < 64) {
        if (!skip_block(e->d_name)) {
            names[n++] = strdup(e->d_name);
        }
    }
    closedir(d);
    for (int i = 0; i < n; i++) {
        for (int j = i + 1; j < n; j++) {
            if (strcmp(names[j], names[i]) < 0) {
                char *t = names[i];

                names[i] = names[j];
                names[j] = t;
            }
        }
    }
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX], size[64], drv[128], hba[128], serial[128];
        char cmd[PATH_MAX + 64], md5[128];

        snprintf(path, sizeof path, "/sys/block/%s/size", names[i]);
        read_line_file(path, size, sizeof size);
        snprintf(path, sizeof path, "/sys/block/%s/device/driver", names[i]);
        link_base(path, drv, sizeof drv);
        snprintf(path, sizeof path, "/sys/block/%s/device", names[i]);
        pci_driver(path, hba, sizeof hba);
        snprintf(path, sizeof path, "/sys/block/%s/serial", names[i]);
        read_line_file(path, serial, sizeof serial);
        if (serial[0] == '\0') {
            snprintf(path, sizeof path, "/sys/block/%s/device/serial",
                     names[i]);
            read_line_file(path, serial, sizeof serial);
        }
        for (char *s = serial; *s != '\0'; s++) {
            if (*s == ' ') {
                *s = '_';
            }
        }
        snprintf(cmd, sizeof cmd,
                 "head -c 1048576 /dev/%s 2>/dev/null | md5sum", names[i]);
        run_capture(cmd, md5, sizeof md5);
        printf("PROBE-DISK name=%s size=%lld driver=%s hba=%s serial=%s "
               "md5=%s\n", names[i], strtoll(size, NULL, 10) * 512, drv,
               hba, serial[0] ? serial : "-", md5);
        free(names[i]);
    }
}

/* Print the first line of /vmconvert.cfg on every volume that has one. */
static void
find_cfg(void)
{
    static const char *const fstypes[] = { "iso9660", "vfat" };
    DIR *d = opendir("/sys/class/block");
    struct dirent *e;

    mkdir("/mnt", 0755);
    if (d == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        char dev[PATH_MAX];
        int is_part;

        if (skip_block(e->d_name)) {
            continue;
        }
        snprintf(dev, sizeof dev, "/sys/class/block/%s/partition", e->d_name);
        is_part = access(dev, F_OK) == 0;
        snprintf(dev, sizeof dev, "/dev/%s", e->d_name);
        for (size_t i = 0; i < sizeof fstypes / sizeof fstypes[0]; i++) {
            char line[512];

            /* FAT only on partitions (the ESP): tried on a whole disk of
             * random test data, the kernel complains on the console. */
            if ((strcmp(fstypes[i], "vfat") == 0 && !is_part) ||
                mount(dev, "/mnt", fstypes[i], MS_RDONLY, NULL) != 0) {
                continue;
            }
            read_line_file("/mnt/vmconvert.cfg", line, sizeof line);
            if (line[0] != '\0') {
                printf("PROBE-CFG dev=%s fs=%s %s\n", e->d_name, fstypes[i],
                       line);
            }
            umount("/mnt");
            break;
        }
    }
    closedir(d);
}

static void
net_hello(const char *target)
{
    char host[64], nic[256] = "", cmd[320], path[PATH_MAX], drv[128];
    char buf[512];
    const char *colon = strrchr(target, ':');
    struct sockaddr_in sa = { .sin_family = AF_INET };
    DIR *d;
    struct dirent *e;
    int fd, status;
    size_t got = 0;
    ssize_t r;

    if (colon == NULL || (size_t)(colon - target) >= sizeof host) {
        printf("PROBE-ERROR probe.net=%s: expected IP:PORT\n", target);
        return;
    }
    memcpy(host, target, (size_t)(colon - target));
    host[colon - target] = '\0';
    sa.sin_port = htons((unsigned short)strtoul(colon + 1, NULL, 10));
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        printf("PROBE-ERROR probe.net=%s: bad address\n", target);
        return;
    }
    d = opendir("/sys/class/net");
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.' && strcmp(e->d_name, "lo") != 0) {
            snprintf(nic, sizeof nic, "%s", e->d_name);
            break;
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    if (nic[0] == '\0') {
        printf("PROBE-ERROR no network interface\n");
        return;
    }
    snprintf(path, sizeof path, "/sys/class/net/%s/device", nic);
    pci_driver(path, drv, sizeof drv);
    printf("PROBE-NIC name=%s driver=%s\n", nic, drv);
    fflush(stdout);
    snprintf(cmd, sizeof cmd, "udhcpc -i %s -n -q -t 5 -T 1 -f", nic);
    status = system(cmd);
    if (status != 0) {
        printf("PROBE-ERROR udhcpc failed (status %d)\n", status);
        return;
    }
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        printf("PROBE-ERROR connect %s: %s\n", target, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return;
    }
    snprintf(buf, sizeof buf, "PROBE-HELLO from %s\n", nic);
    if (write(fd, buf, strlen(buf)) != (ssize_t)strlen(buf)) {
        printf("PROBE-ERROR write: %s\n", strerror(errno));
    }
    shutdown(fd, SHUT_WR);
    while (got < sizeof buf - 1 &&
           (r = read(fd, buf + got, sizeof buf - 1 - got)) > 0) {
        got += (size_t)r;
    }
    buf[got] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    close(fd);
    printf("PROBE-NET-REPLY %s\n", buf);
}

int
main(void)
{
    char up[64], val[128];
    int want;

    setvbuf(stdout, NULL, _IOLBF, 0);
    uptime(up, sizeof up);
    printf("PROBE-START uptime=%s pid=%d\n", up, (int)getpid());
    read_line_file("/proc/cmdline", cmdline, sizeof cmdline);
    printf("PROBE-CMDLINE %s\n", cmdline);

    want = param("probe.disks", val, sizeof val) ?
           (int)strtol(val, NULL, 10) : 0;
    for (int i = 0; i < 60 && count_disks() < want; i++) {
        struct timespec ts = { 0, 500 * 1000 * 1000 };

        nanosleep(&ts, NULL);
    }
    list_disks();
    if (param("probe.cfg", val, sizeof val) && strcmp(val, "1") == 0) {
        find_cfg();
    }
    if (param("probe.net", val, sizeof val)) {
        net_hello(val);
    }
    if (param("probe.ask", val, sizeof val) && strcmp(val, "1") == 0) {
        char line[256];

        printf("PROBE-ASK> ");
        fflush(stdout);
        if (fgets(line, sizeof line, stdin) != NULL) {
            line[strcspn(line, "\r\n")] = '\0';
            printf("PROBE-GOT %s\n", line);
        } else {
            printf("PROBE-GOT EOF\n");
        }
    }
    uptime(up, sizeof up);
    printf("PROBE-DONE uptime=%s\n", up);
    fflush(stdout);
    sync();
    reboot(RB_POWER_OFF);
    for (;;) {
        pause();
    }
}
