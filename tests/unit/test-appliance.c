/* SPDX-License-Identifier: MIT */
/*
 * The appliance's settings parser (kernel command line, config file,
 * dracut's ip=, connection URLs) and its disk discovery and selection,
 * over a sysfs tree made here.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../appliance/config.h"
#include "../../appliance/disks.h"
#include "../../appliance/facts.h"
#include "../../network/proto.h"
#include "test.h"

#define FP "sha256:0123456789abcdef0123456789abcdef" \
           "0123456789abcdef0123456789abcdef"

static void
parse (struct config *c, const char *s)
{
    config_init (c);
    config_parse_cmdline (c, s, strlen (s));
}

static void
test_cmdline (void)
{
    struct config c;

    parse (&c, "BOOT_IMAGE=/vmlinuz root=/dev/ram0 vmconvert.server=10.0.2.100:7010 "
           "vmconvert.fingerprint=" FP " vmconvert.token=s3cret "
           "vmconvert.job=web01 vmconvert.disks=\"serial:A*, !path:pci-*\" "
           "vmconvert.format=vmdk vmconvert.compress=zstd:5 "
           "vmconvert.post=reboot vmconvert.maxrate=10M quiet");
    CHECK (strcmp (c.server, "10.0.2.100:7010") == 0);
    CHECK (strcmp (c.fingerprint, FP) == 0);
    CHECK (strcmp (c.token, "s3cret") == 0);
    CHECK (strcmp (c.job, "web01") == 0);
    CHECK (strcmp (c.disks, "serial:A*, !path:pci-*") == 0);
    CHECK (strcmp (c.format, "vmdk") == 0);
    CHECK (c.compress == COMP_ZSTD && c.level == 5);
    CHECK (c.post == POST_REBOOT);
    CHECK (c.max_rate == 10u << 20);
    CHECK (c.nmsgs == 0 && c.nerrors == 0);

    /* Bad values are reported and ignored; unknown names are warnings;
     * other people's options are not ours to judge. */
    parse (&c, "vmconvert.fingerprint=sha256:12 vmconvert.job=../x "
           "vmconvert.post=halt vmconvert.compress=lz4 vmconvert.format=qed "
           "vmconvert.maxrate=1 vmconvert.retry=5 vmconvert.wat=1 "
           "vmconvert.server=a;b console=ttyS0 ip=");
    CHECK (c.fingerprint[0] == '\0' && c.job[0] == '\0');
    CHECK (c.post == POST_POWEROFF && c.compress == COMP_NONE);
    CHECK (c.format[0] == '\0' && c.max_rate == 0 && c.retry_seconds == 86400);
    CHECK (c.server[0] == '\0');
    CHECK (c.nerrors == 9);
    CHECK (c.nmsgs == 10);
    CHECK (strstr (c.msgs[7], "unknown option vmconvert.wat") != NULL);

    /* Quotes keep blanks; an unterminated quote runs to the end. */
    parse (&c, "vmconvert.token=\"a b\" vmconvert.job=\"x");
    CHECK (strcmp (c.token, "a b") == 0);
    CHECK (strcmp (c.job, "x") == 0);

    /* A token longer than the field is refused, not cut. */
    {
        char big[600];

        memset (big, 'k', sizeof big);
        memcpy (big, "vmconvert.token=", 16);
        big[sizeof big - 1] = '\0';
        parse (&c, big);
        CHECK (c.token[0] == '\0' && c.nerrors == 1);
    }
}

static void
test_file (void)
{
    struct config c;
    const char text[] =
        "# vmconvert.cfg\n"
        "server=192.0.2.10\n"
        "  vmconvert.fingerprint=" FP "   # trailing comment\n"
        "token=\"with blank\"\n"
        "ip=eth0:dhcp\n"
        "\n"
        "bogus=1\n";

    config_init (&c);
    config_parse_file (&c, text, strlen (text), "vmconvert.cfg");
    CHECK (strcmp (c.server, "192.0.2.10") == 0);
    CHECK (strcmp (c.fingerprint, FP) == 0);
    CHECK (strcmp (c.token, "with blank") == 0);
    CHECK (c.nip == 1 && strcmp (c.ip[0].dev, "eth0") == 0 &&
           c.ip[0].method == IP_DHCP);
    CHECK (c.nmsgs == 1 && strstr (c.msgs[0], "vmconvert.cfg line 7") != NULL);
    /* The command line comes after the file and wins. */
    config_parse_cmdline (&c, "vmconvert.server=198.51.100.1",
                          strlen ("vmconvert.server=198.51.100.1"));
    CHECK (strcmp (c.server, "198.51.100.1") == 0);
}

static void
test_ip (void)
{
    struct ip_conf ip;
    char why[200];

    CHECK (config_parse_ip ("dhcp", &ip, why, sizeof why) == 0 &&
           ip.method == IP_DHCP && ip.dev[0] == '\0');
    CHECK (config_parse_ip ("auto6", &ip, why, sizeof why) == 0 &&
           ip.method == IP_AUTO6);
    CHECK (config_parse_ip ("ens192:dhcp:9000:52:54:00:12:34:56", &ip, why,
                            sizeof why) == -1);  /* MAC needs brackets */
    CHECK (config_parse_ip ("ens192:dhcp:9000", &ip, why, sizeof why) == 0 &&
           strcmp (ip.dev, "ens192") == 0 && ip.mtu == 9000);
    CHECK (config_parse_ip ("ens192:dhcp::[52:54:00:12:34:56]", &ip, why,
                            sizeof why) == 0 &&
           strcmp (ip.mac, "52:54:00:12:34:56") == 0);
    CHECK (config_parse_ip ("10.0.0.5::10.0.0.1:255.255.255.0:h:eth0:none",
                            &ip, why, sizeof why) == 0);
    CHECK (ip.method == IP_STATIC && strcmp (ip.addr, "10.0.0.5") == 0 &&
           ip.prefix == 24 && strcmp (ip.gateway, "10.0.0.1") == 0 &&
           strcmp (ip.hostname, "h") == 0 && strcmp (ip.dev, "eth0") == 0);
    CHECK (config_parse_ip ("10.0.0.5:::20::eth0:off:1.1.1.1:8.8.8.8", &ip,
                            why, sizeof why) == 0 && ip.prefix == 20 &&
           strcmp (ip.dns[0], "1.1.1.1") == 0 &&
           strcmp (ip.dns[1], "8.8.8.8") == 0);
    CHECK (config_parse_ip ("10.0.0.5:::24::eth0:none:1400:[02:00:00:00:00:01]",
                            &ip, why, sizeof why) == 0 && ip.mtu == 1400 &&
           strcmp (ip.mac, "02:00:00:00:00:01") == 0);
    CHECK (config_parse_ip ("[2001:db8::5]::[2001:db8::1]:64::eth0:none", &ip,
                            why, sizeof why) == 0 &&
           strcmp (ip.addr, "2001:db8::5") == 0 && ip.prefix == 64 &&
           strcmp (ip.gateway, "2001:db8::1") == 0);
    /* Errors: a mask with a hole, a mixed-family gateway, a bad method,
     * a bad address, unbalanced brackets, too many fields, a long name. */
    CHECK (config_parse_ip ("10.0.0.5::10.0.0.1:255.0.255.0::eth0:none", &ip,
                            why, sizeof why) == -1);
    CHECK (config_parse_ip ("10.0.0.5::[2001:db8::1]:24::eth0:none", &ip, why,
                            sizeof why) == -1);
    CHECK (config_parse_ip ("10.0.0.5::10.0.0.1:24::eth0:static", &ip, why,
                            sizeof why) == -1);
    CHECK (config_parse_ip ("10.0.0.300::10.0.0.1:24::eth0:none", &ip, why,
                            sizeof why) == -1);
    CHECK (config_parse_ip ("[2001:db8::5::1:2:3:4:5", &ip, why, sizeof why)
           == -1);
    CHECK (config_parse_ip ("a:b:c:d:e:f:none:1:2:3", &ip, why, sizeof why)
           == -1);
    CHECK (config_parse_ip ("aaaaaaaaaaaaaaaaaaaa:dhcp", &ip, why, sizeof why)
           == -1);
    CHECK (config_parse_ip ("off", &ip, why, sizeof why) == -1);
    CHECK (config_parse_ip ("", &ip, why, sizeof why) == -1);

    {
        struct config c;

        parse (&c, "vlan=eth0.100:eth0 vlan=vlan0042:eno1 vlan=foo:eth0 "
               "vlan=eth0.5000:eth0 ifname=lan:52-54-00-AB-cd-EF "
               "ifname=lan:zz nameserver=192.0.2.53 nameserver=nope");
        CHECK (c.nvlan == 2 && c.vlan[0].id == 100 && c.vlan[1].id == 42 &&
               strcmp (c.vlan[1].phys, "eno1") == 0);
        CHECK (c.nifname == 1 && strcmp (c.ifname[0].mac,
                                         "52:54:00:ab:cd:ef") == 0);
        CHECK (c.ndns == 1 && c.nerrors == 4);
    }
}

static void
test_url (void)
{
    struct config c;
    char why[200];

    config_init (&c);
    CHECK (config_parse_url (&c, "vmconvert://tok%20en@recv.example:7010/"
                             "web01?fingerprint=" FP "&format=qcow2", why,
                             sizeof why) == 0);
    CHECK (strcmp (c.server, "recv.example:7010") == 0);
    CHECK (strcmp (c.token, "tok en") == 0);
    CHECK (strcmp (c.job, "web01") == 0);
    CHECK (strcmp (c.fingerprint, FP) == 0);
    CHECK (strcmp (c.format, "qcow2") == 0);
    CHECK (config_parse_url (&c, "VMCONVERT://[2001:db8::1]:7010", why,
                             sizeof why) == 0 &&
           strcmp (c.server, "[2001:db8::1]:7010") == 0);
    /* A bad URL changes nothing. */
    CHECK (config_parse_url (&c, "vmconvert://h/j?fingerprint=sha256:00", why,
                             sizeof why) == -1);
    CHECK (strcmp (c.server, "[2001:db8::1]:7010") == 0);
    CHECK (config_parse_url (&c, "http://h", why, sizeof why) == -1);
    CHECK (config_parse_url (&c, "vmconvert://h?post=shell", why,
                             sizeof why) == -1);
    CHECK (config_parse_url (&c, "vmconvert://h/../x", why, sizeof why) == -1);
    CHECK (config_parse_url (&c, "vmconvert://h%", why, sizeof why) == -1);
    CHECK (config_parse_url (&c, "vmconvert://h%0a", why, sizeof why) == -1);
    CHECK (c.nerrors == 0);
}

/* ---- a sysfs tree ------------------------------------------------------ */

static char root[256];

static void
put (const char *rel, const void *data, size_t len)
{
    char path[512], *slash;
    int fd;

    snprintf (path, sizeof path, "%s/%s", root, rel);
    for (slash = strchr (path + strlen (root) + 1, '/'); slash != NULL;
         slash = strchr (slash + 1, '/')) {
        *slash = '\0';
        mkdir (path, 0755);
        *slash = '/';
    }
    fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK (fd != -1);
    if (fd != -1) {
        CHECK (write (fd, data, len) == (ssize_t) len);
        close (fd);
    }
}

static void
puts_ (const char *rel, const char *s)
{
    put (rel, s, strlen (s));
}

static void
link_ (const char *target, const char *rel)
{
    char path[512];

    snprintf (path, sizeof path, "%s/%s", root, rel);
    CHECK (symlink (target, path) == 0);
}

/* A block device: its directory under devices/, linked from block/. */
static void
block (const char *devpath, const char *kname, const char *size)
{
    char rel[400], target[400];

    snprintf (rel, sizeof rel, "sys/devices/%s/block/%s/size", devpath, kname);
    puts_ (rel, size);
    snprintf (rel, sizeof rel, "sys/devices/%s/block/%s/removable", devpath,
              kname);
    puts_ (rel, "0\n");
    snprintf (rel, sizeof rel, "sys/block/%s", kname);
    snprintf (target, sizeof target, "../devices/%s/block/%s", devpath,
              kname);
    put ("sys/block/.keep", "", 0);
    link_ (target, rel);
    snprintf (rel, sizeof rel, "dev/%s", kname);
    puts_ (rel, "");
}

static const struct disk_info *
find (const struct disk_list *l, const char *kname)
{
    for (unsigned i = 0; i < l->n; i++) {
        if (strcmp (l->d[i].kname, kname) == 0) {
            return &l->d[i];
        }
    }
    return NULL;
}

static void
test_disks (void)
{
    char sys[300], dev[300], why[200];
    struct disk_list l;
    const struct disk_info *d;
    static const unsigned char vpd[] = { 0, 0x80, 0, 8, 'S', 'N', '-', 'S',
                                         'C', 'S', 'I', ' ' };
    static unsigned char iso[17 * 2048];

    snprintf (root, sizeof root, "%s/vmc-appliance-XXXXXX",
              getenv ("TMPDIR") != NULL ? getenv ("TMPDIR") : "/tmp");
    CHECK (mkdtemp (root) != NULL);
    snprintf (sys, sizeof sys, "%s/sys", root);
    snprintf (dev, sizeof dev, "%s/dev", root);

    /* SCSI behind a PCI HBA, with a VPD serial and a WWN. */
    block ("pci0000:00/0000:00:10.0/host2/target2:0:1/2:0:1:0", "sdb",
           "2097152\n");
    put ("sys/devices/pci0000:00/0000:00:10.0/host2/target2:0:1/2:0:1:0/"
         "vpd_pg80", vpd, sizeof vpd);
    puts_ ("sys/devices/pci0000:00/0000:00:10.0/host2/target2:0:1/2:0:1:0/"
           "wwid", "naa.6000c29a\n");
    puts_ ("sys/devices/pci0000:00/0000:00:10.0/host2/target2:0:1/2:0:1:0/"
           "model", "Virtual disk    \n");
    link_ ("../..", "sys/devices/pci0000:00/0000:00:10.0/host2/target2:0:1/"
           "2:0:1:0/block/sdb/device");
    /* SATA through libata, no serial. */
    block ("pci0000:00/0000:00:1f.2/ata3/host4/target4:0:0/4:0:0:0", "sda",
           "4194304\n");
    /* virtio-blk with a serial. */
    block ("pci0000:00/0000:00:05.0/virtio2", "vda", "1024\n");
    puts_ ("sys/devices/pci0000:00/0000:00:05.0/virtio2/block/vda/serial",
           "VIRT-1\n");
    /* NVMe namespace 1. */
    block ("pci0000:00/0000:00:06.0/nvme/nvme0", "nvme0n1", "8192\n");
    puts_ ("sys/devices/pci0000:00/0000:00:06.0/nvme/nvme0/block/nvme0n1/"
           "wwid", "eui.0011\n");
    /* A USB stick (removable) and a USB disk. */
    block ("pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/host6/target6:0:0/"
           "6:0:0:0", "sdc", "65536\n");
    puts_ ("sys/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/host6/"
           "target6:0:0/6:0:0:0/block/sdc/removable", "1\n");
    block ("pci0000:00/0000:00:14.0/usb1/1-3/1-3:1.0/host7/target7:0:0/"
           "7:0:0:0", "sdd", "65536\n");
    /* The boot medium: an ISO 9660 volume VMCONVERT. */
    block ("pci0000:00/0000:00:1f.2/ata4/host5/target5:0:0/5:0:0:0", "sde",
           "40960\n");
    iso[16 * 2048] = 1;
    memcpy (iso + 16 * 2048 + 1, "CD001", 5);
    memset (iso + 16 * 2048 + 40, ' ', 32);
    memcpy (iso + 16 * 2048 + 40, "VMCONVERT", 9);
    put ("dev/sde", iso, sizeof iso);
    /* Not disks: loop, an empty one. */
    block ("virtual/block/loop0", "loop0", "2048\n");
    block ("pci0000:00/0000:00:1f.2/ata5/host8/target8:0:0/8:0:0:0", "sdf",
           "0\n");

    CHECK (disks_scan (sys, dev, &l) == 0);
    CHECK (l.n == 7);
    CHECK (find (&l, "loop0") == NULL && find (&l, "sdf") == NULL);
    d = find (&l, "sdb");
    CHECK (d != NULL && strcmp (d->serial, "SN-SCSI") == 0 &&
           strcmp (d->wwn, "naa.6000c29a") == 0 &&
           strcmp (d->model, "Virtual disk") == 0 &&
           strcmp (d->path, "pci-0000:00:10.0-scsi-0:1:0") == 0 &&
           strcmp (d->name, "serial-SN-SCSI") == 0 &&
           strcmp (d->transport, "scsi") == 0 && d->size == 1073741824);
    d = find (&l, "sda");
    CHECK (d != NULL && strcmp (d->path, "pci-0000:00:1f.2-ata-3.0:0:0") == 0
           && strcmp (d->name, "pci-0000_00_1f.2-ata-3.0_0_0") == 0 &&
           strcmp (d->transport, "ata") == 0);
    d = find (&l, "vda");
    CHECK (d != NULL && strcmp (d->serial, "VIRT-1") == 0 &&
           strcmp (d->path, "pci-0000:00:05.0") == 0 &&
           strcmp (d->transport, "virtio") == 0);
    d = find (&l, "nvme0n1");
    CHECK (d != NULL && strcmp (d->path, "pci-0000:00:06.0-nvme-1") == 0 &&
           strcmp (d->wwn, "eui.0011") == 0);
    d = find (&l, "sdc");
    CHECK (d != NULL && d->removable && d->usb &&
           strcmp (d->path, "pci-0000:00:14.0-usb-1-2-scsi-0:0:0") == 0);
    d = find (&l, "sde");
    CHECK (d != NULL && d->boot_medium);
    /* Sorted by path. */
    for (unsigned i = 1; i < l.n; i++) {
        CHECK (strcmp (l.d[i - 1].path, l.d[i].path) <= 0);
    }

    /* Default: fixed disks, not USB, not the boot medium. */
    CHECK (disks_select (&l, "", why, sizeof why) == 0);
    CHECK (find (&l, "sda")->selected && find (&l, "sdb")->selected &&
           find (&l, "vda")->selected && find (&l, "nvme0n1")->selected);
    CHECK (!find (&l, "sdc")->selected && !find (&l, "sdd")->selected &&
           !find (&l, "sde")->selected);
    CHECK (strstr (find (&l, "sde")->why, "boot medium") != NULL);
    /* Selectors. */
    CHECK (disks_select (&l, "serial:sn-*,wwn:eui.*", why, sizeof why) == 0);
    CHECK (find (&l, "sdb")->selected && find (&l, "nvme0n1")->selected &&
           !find (&l, "sda")->selected && !find (&l, "vda")->selected);
    CHECK (disks_select (&l, "!/dev/vda", why, sizeof why) == 0);
    CHECK (!find (&l, "vda")->selected && find (&l, "sda")->selected &&
           strstr (find (&l, "vda")->why, "left out") != NULL);
    CHECK (disks_select (&l, "all,!path:*ata*", why, sizeof why) == 0);
    CHECK (!find (&l, "sda")->selected && find (&l, "sdb")->selected);
    CHECK (disks_select (&l, "path:*usb-1-3*", why, sizeof why) == 0);
    CHECK (find (&l, "sdd")->selected && !find (&l, "sdb")->selected);
    /* Never the boot medium; a selector without a match is an error. */
    CHECK (disks_select (&l, "sde", why, sizeof why) == -1);
    CHECK (!find (&l, "sde")->selected);
    CHECK (disks_select (&l, "serial:nope", why, sizeof why) == -1 &&
           strstr (why, "matches no disk") != NULL);
    CHECK (disks_select (&l, ",", why, sizeof why) == 0 &&
           find (&l, "sda")->selected);

    /* The facts are JSON and name the disks. */
    {
        char *buf = NULL;
        size_t len = 0;
        FILE *fp = open_memstream (&buf, &len);
        struct nic_list nics;

        CHECK (disks_select (&l, "", why, sizeof why) == 0);
        puts_ ("sys/class/net/.keep", "");
        nics_scan (sys, &nics, 0);
        CHECK (fp != NULL && facts_write (fp, sys, sys, &l, &nics) == 0);
        fclose (fp);
        CHECK (json_valid ((unsigned char *) buf, len));
        CHECK (strstr (buf, "\"serial\": \"SN-SCSI\"") != NULL);
        CHECK (strstr (buf, "\"not_sent_because\": \"the appliance's boot "
                       "medium\"") != NULL);
        free (buf);
    }
    {
        char cmd[400];

        snprintf (cmd, sizeof cmd, "rm -rf '%s'", root);
        CHECK (system (cmd) == 0);
    }
}

int
main (void)
{
    test_cmdline ();
    test_file ();
    test_ip ();
    test_url ();
    test_disks ();
    return test_status ();
}
