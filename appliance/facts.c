/* SPDX-License-Identifier: MIT */
/*
 * The source machine's summary (facts.h).  From sysfs and procfs only:
 *
 *   firmware/efi                  exists under UEFI
 *   class/dmi/id/{sys_vendor,product_name,product_serial,product_uuid,
 *                 bios_vendor,bios_version,chassis_vendor}
 *   class/net/X/{address,mtu,carrier,speed,type}, X/device (PCI), X/
 *                 device/driver (the driver's name is the link's name)
 *   cpuinfo (processors, model name, flags), meminfo (MemTotal)
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "../converter/lib/json.h"
#include "facts.h"
#include "util.h"

static void
link_base (const char *path, char *out, size_t cap)
{
    char target[PATH_MAX];
    ssize_t n = readlink (path, target, sizeof target - 1);
    const char *b;

    out[0] = '\0';
    if (n <= 0) {
        return;
    }
    target[n] = '\0';
    b = strrchr (target, '/');
    b = b != NULL ? b + 1 : target;
    if (strlen (b) < cap) {
        memcpy (out, b, strlen (b) + 1);
    }
}

/* The last PCI address (dddd:bb:dd.f) in the real path of PATH. */
static void
pci_of (const char *path, char *out, size_t cap)
{
    char real[PATH_MAX], *save = NULL, *tok;

    out[0] = '\0';
    if (realpath (path, real) == NULL) {
        return;
    }
    for (tok = strtok_r (real, "/", &save); tok != NULL;
         tok = strtok_r (NULL, "/", &save)) {
        unsigned a, b, c, d;
        char tail;

        if (strlen (tok) == 12 && strlen (tok) < cap &&
            sscanf (tok, "%4x:%2x:%2x.%1x%c", &a, &b, &c, &d, &tail) == 4) {
            memcpy (out, tok, 13);
        }
    }
}

static int
cmp_nics (const void *a, const void *b)
{
    return strcmp (((const struct nic_info *) a)->name,
                   ((const struct nic_info *) b)->name);
}

void
nics_scan (const char *sysroot, struct nic_list *l, int addrs)
{
    char dir[PATH_MAX], ndir[PATH_MAX], buf[64];
    struct dirent *e;
    DIR *dp;

    memset (l, 0, sizeof *l);
    snprintf (dir, sizeof dir, "%s/class/net", sysroot);
    dp = opendir (dir);
    if (dp == NULL) {
        return;
    }
    while ((e = readdir (dp)) != NULL && l->count < NICS_MAX) {
        struct nic_info *n = &l->n[l->count];
        char path[PATH_MAX + 32];

        if (e->d_name[0] == '.' || strcmp (e->d_name, "lo") == 0 ||
            strlen (e->d_name) >= sizeof n->name) {
            continue;
        }
        if ((size_t) snprintf (ndir, sizeof ndir, "%s/%s", dir, e->d_name) >=
            sizeof ndir) {
            continue;
        }
        /* ARPHRD_ETHER only. */
        if (sysfs_attr (ndir, "type", buf, sizeof buf) == -1 ||
            strcmp (buf, "1") != 0) {
            continue;
        }
        memset (n, 0, sizeof *n);
        memcpy (n->name, e->d_name, strlen (e->d_name) + 1);
        sysfs_attr (ndir, "address", buf, sizeof buf);
        snprintf (n->mac, sizeof n->mac, "%.17s", buf);
        sysfs_attr (ndir, "mtu", buf, sizeof buf);
        n->mtu = (unsigned) strtoul (buf, NULL, 10);
        n->carrier = sysfs_attr (ndir, "carrier", buf, sizeof buf) > 0
                     ? atoi (buf) : -1;
        n->speed_mbps = sysfs_attr (ndir, "speed", buf, sizeof buf) > 0
                        ? atoi (buf) : -1;
        /* Interfaces without a device (bridges, bonds, VLANs, ifb) are
         * not the machine's NICs. */
        snprintf (path, sizeof path, "%s/device", ndir);
        if (access (path, F_OK) != 0) {
            continue;
        }
        pci_of (path, n->path, sizeof n->path);
        snprintf (path, sizeof path, "%s/device/driver", ndir);
        link_base (path, n->driver, sizeof n->driver);
        l->count++;
    }
    closedir (dp);
    qsort (l->n, l->count, sizeof l->n[0], cmp_nics);
    if (addrs) {
        struct ifaddrs *ifa, *i;

        if (getifaddrs (&ifa) == -1) {
            return;
        }
        for (i = ifa; i != NULL; i = i->ifa_next) {
            char a[INET6_ADDRSTRLEN];
            unsigned prefix = 0;
            const unsigned char *m;
            size_t mlen;

            if (i->ifa_addr == NULL || i->ifa_netmask == NULL) {
                continue;
            }
            if (i->ifa_addr->sa_family == AF_INET) {
                inet_ntop (AF_INET, &((struct sockaddr_in *) i->ifa_addr)
                           ->sin_addr, a, sizeof a);
                m = (const unsigned char *) &((struct sockaddr_in *)
                                              i->ifa_netmask)->sin_addr;
                mlen = 4;
            }
            else if (i->ifa_addr->sa_family == AF_INET6) {
                inet_ntop (AF_INET6, &((struct sockaddr_in6 *) i->ifa_addr)
                           ->sin6_addr, a, sizeof a);
                m = (const unsigned char *) &((struct sockaddr_in6 *)
                                              i->ifa_netmask)->sin6_addr;
                mlen = 16;
            }
            else {
                continue;
            }
            for (size_t k = 0; k < mlen; k++) {
                prefix += (unsigned) __builtin_popcount (m[k]);
            }
            for (unsigned k = 0; k < l->count; k++) {
                struct nic_info *n = &l->n[k];

                if (strcmp (n->name, i->ifa_name) == 0 && n->naddrs < 4) {
                    snprintf (n->addrs[n->naddrs++], sizeof n->addrs[0],
                              "%s/%u", a, prefix);
                }
            }
        }
        freeifaddrs (ifa);
    }
}

const char *
facts_hypervisor (const char *sysroot, const char *procroot)
{
    char dmi[PATH_MAX], vendor[128] = "", product[128] = "", path[PATH_MAX];
    char line[1024];
    FILE *fp;
    bool flag = false;

    snprintf (dmi, sizeof dmi, "%s/class/dmi/id", sysroot);
    sysfs_attr (dmi, "sys_vendor", vendor, sizeof vendor);
    sysfs_attr (dmi, "product_name", product, sizeof product);
    if (strstr (vendor, "VMware") != NULL || strstr (product, "VMware") != NULL) {
        return "vmware";
    }
    if (strstr (vendor, "Microsoft") != NULL &&
        strstr (product, "Virtual Machine") != NULL) {
        return "hyperv";
    }
    if (strstr (product, "VirtualBox") != NULL ||
        strstr (vendor, "innotek") != NULL) {
        return "virtualbox";
    }
    if (strstr (vendor, "Xen") != NULL || strstr (product, "HVM domU") != NULL) {
        return "xen";
    }
    snprintf (path, sizeof path, "%s/hypervisor/type", sysroot);
    if (sysfs_attr (path, NULL, line, sizeof line) >= 0 &&
        strcmp (line, "xen") == 0) {
        return "xen";
    }
    if (strstr (vendor, "QEMU") != NULL || strstr (product, "KVM") != NULL ||
        strstr (product, "Standard PC") != NULL ||
        strstr (vendor, "Red Hat") != NULL) {
        return "kvm";
    }
    snprintf (path, sizeof path, "%s/cpuinfo", procroot);
    fp = fopen (path, "re");
    while (fp != NULL && fgets (line, sizeof line, fp) != NULL) {
        if (strncmp (line, "flags", 5) == 0 &&
            strstr (line, " hypervisor") != NULL) {
            flag = true;
            break;
        }
    }
    if (fp != NULL) {
        fclose (fp);
    }
    return flag ? "unknown" : "";
}

static void
field (FILE *fp, const char *key, const char *val, bool *first)
{
    fprintf (fp, "%s\"%s\": ", *first ? "" : ", ", key);
    json_string (fp, val);
    *first = false;
}

int
facts_write (FILE *fp, const char *sysroot, const char *procroot,
             const struct disk_list *disks, const struct nic_list *nics)
{
    static const char *const dmi_keys[] = {
        "sys_vendor", "product_name", "product_version", "product_serial",
        "product_uuid", "board_vendor", "board_name", "bios_vendor",
        "bios_version", "chassis_vendor",
    };
    char path[PATH_MAX], line[512], model[256] = "";
    unsigned long long mem_kib = 0;
    unsigned cpus = 0;
    struct utsname u;
    bool first;
    FILE *in;

    snprintf (path, sizeof path, "%s/cpuinfo", procroot);
    in = fopen (path, "re");
    while (in != NULL && fgets (line, sizeof line, in) != NULL) {
        if (strncmp (line, "processor", 9) == 0) {
            cpus++;
        }
        else if (model[0] == '\0' && strncmp (line, "model name", 10) == 0) {
            const char *c = strchr (line, ':');

            if (c != NULL) {
                snprintf (model, sizeof model, "%s", c + 1 + (c[1] == ' '));
                model[strcspn (model, "\n")] = '\0';
            }
        }
    }
    if (in != NULL) {
        fclose (in);
    }
    snprintf (path, sizeof path, "%s/meminfo", procroot);
    in = fopen (path, "re");
    while (in != NULL && fgets (line, sizeof line, in) != NULL) {
        if (sscanf (line, "MemTotal: %llu kB", &mem_kib) == 1) {
            break;
        }
    }
    if (in != NULL) {
        fclose (in);
    }
    snprintf (path, sizeof path, "%s/firmware/efi", sysroot);

    fprintf (fp, "{\"sender\": {\"program\": \"vmconvert appliance\", "
             "\"version\": ");
    json_string (fp, VMC_VERSION);
    if (uname (&u) == 0) {
        fprintf (fp, ", \"kernel\": ");
        json_string (fp, u.release);
    }
    fprintf (fp, "},\n \"machine\": {\"firmware\": \"%s\", \"cpus\": %u, "
             "\"cpu_model\": ", access (path, F_OK) == 0 ? "uefi" : "bios",
             cpus);
    json_string (fp, model);
    fprintf (fp, ", \"memory_bytes\": %llu, \"hypervisor\": ",
             mem_kib * 1024);
    json_string (fp, facts_hypervisor (sysroot, procroot));
    fprintf (fp, ", \"dmi\": {");
    first = true;
    for (size_t i = 0; i < sizeof dmi_keys / sizeof dmi_keys[0]; i++) {
        snprintf (path, sizeof path, "%s/class/dmi/id/%s", sysroot,
                  dmi_keys[i]);
        if (sysfs_attr (path, NULL, line, sizeof line) > 0) {
            field (fp, dmi_keys[i], line, &first);
        }
    }
    fprintf (fp, "}},\n \"disks\": [");
    for (unsigned i = 0; i < disks->n; i++) {
        const struct disk_info *d = &disks->d[i];

        fprintf (fp, "%s\n  {", i > 0 ? "," : "");
        first = true;
        field (fp, "name", d->name, &first);
        field (fp, "kernel_name", d->kname, &first);
        field (fp, "path", d->path, &first);
        field (fp, "transport", d->transport, &first);
        field (fp, "vendor", d->vendor, &first);
        field (fp, "model", d->model, &first);
        field (fp, "serial", d->serial, &first);
        field (fp, "wwn", d->wwn, &first);
        fprintf (fp, ", \"size\": %" PRIu64 ", \"logical_block_size\": %u, "
                 "\"removable\": %s, \"read_only\": %s, \"sent\": %s",
                 d->size, d->logical_block_size,
                 d->removable ? "true" : "false",
                 d->read_only ? "true" : "false",
                 d->selected ? "true" : "false");
        if (!d->selected) {
            fprintf (fp, ", \"not_sent_because\": ");
            json_string (fp, d->why);
        }
        fprintf (fp, "}");
    }
    fprintf (fp, "],\n \"nics\": [");
    for (unsigned i = 0; i < nics->count; i++) {
        const struct nic_info *n = &nics->n[i];

        fprintf (fp, "%s\n  {", i > 0 ? "," : "");
        first = true;
        field (fp, "name", n->name, &first);
        field (fp, "mac", n->mac, &first);
        field (fp, "driver", n->driver, &first);
        field (fp, "pci", n->path, &first);
        fprintf (fp, ", \"mtu\": %u", n->mtu);
        if (n->speed_mbps > 0) {
            fprintf (fp, ", \"speed_mbps\": %d", n->speed_mbps);
        }
        if (n->carrier >= 0) {
            fprintf (fp, ", \"link\": %s", n->carrier ? "true" : "false");
        }
        fprintf (fp, ", \"addresses\": [");
        for (unsigned k = 0; k < n->naddrs; k++) {
            fprintf (fp, "%s", k > 0 ? ", " : "");
            json_string (fp, n->addrs[k]);
        }
        fprintf (fp, "]}");
    }
    fprintf (fp, "]}\n");
    return ferror (fp) ? -1 : 0;
}
