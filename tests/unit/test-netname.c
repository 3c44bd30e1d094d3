/* SPDX-License-Identifier: MIT */
/*
 * Predictable interface names (appliance/netname.c) over a sysfs tree
 * made here.  The expected names are those of systemd.net-naming-scheme(7)
 * and its examples, and what `udevadm test-builtin net_id` (systemd 252)
 * prints over this same tree mounted on /sys: with NETNAME_KEEP=1 in the
 * environment the tree is kept and its path printed, to check it so.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../appliance/netname.h"
#include "../../converter/lib/error.h"
#include "test.h"

static char root[256];
static char sys[300];
static unsigned next_ifindex = 2;

static void
put (const char *rel, const void *data, size_t len)
{
    char path[768], *slash;
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

/* DIR/NAME (under sys/devices) with the text S. */
static void
attr (const char *dir, const char *name, const char *s)
{
    char rel[600];

    snprintf (rel, sizeof rel, "sys/devices/%s/%s", dir, name);
    puts_ (rel, s);
}

/* A relative link sys/devices/DIR/NAME -> sys/TARGET, as sysfs has. */
static void
link_up (const char *dir, const char *name, const char *target)
{
    char rel[600], path[900], t[900];
    size_t n = 0;

    /* One ".." for "devices" and one per component of DIR. */
    n += (size_t) snprintf (t + n, sizeof t - n, "../");
    for (const char *p = dir; *p != '\0'; p++) {
        if (*p == '/' || p == dir) {
            n += (size_t) snprintf (t + n, sizeof t - n, "../");
        }
    }
    snprintf (t + n, sizeof t - n, "%s", target);
    snprintf (rel, sizeof rel, "sys/devices/%s/%s", dir, name);
    snprintf (path, sizeof path, "%s/%s", root, rel);
    unlink (path);
    CHECK (symlink (t, path) == 0);
}

/* A PCI device at sys/devices/DIR (its last component is its address):
 * header type with bit 7 for a multi-function device, class 0x0604 for
 * a bridge. */
static void
pci (const char *dir, int multi, int bridge)
{
    unsigned char config[256] = { 0 };
    const char *addr = strrchr (dir, '/') + 1;
    char rel[600], ue[200];

    config[0x0e] = multi ? 0x80 : 0x00;
    snprintf (rel, sizeof rel, "sys/devices/%s/config", dir);
    put (rel, config, sizeof config);
    snprintf (ue, sizeof ue, "PCI_CLASS=%s\nPCI_SLOT_NAME=%s\n",
              bridge ? "60400" : "20000", addr);
    attr (dir, "uevent", ue);
    attr (dir, "modalias", bridge
          ? "pci:v00008086d00007000sv00000000sd00000000bc06sc04i00\n"
          : "pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00\n");
    attr (dir, "class", bridge ? "0x060400\n" : "0x020000\n");
    link_up (dir, "subsystem", "bus/pci");
}

/* A plain device directory in SUBSYSTEM (virtio, usb, xen). */
static void
plain (const char *dir, const char *subsystem)
{
    char t[64];

    attr (dir, "uevent", "");
    snprintf (t, sizeof t, "bus/%s", subsystem);
    link_up (dir, "subsystem", t);
}

/* The interface NAME under the device DIR ("virtual" for none). */
static void
net (const char *dir, const char *name, const char *mac)
{
    char nd[500], v[200], rel[600], t[700];
    unsigned idx = next_ifindex++;

    snprintf (nd, sizeof nd, "%s/net/%s", dir, name);
    snprintf (v, sizeof v, "INTERFACE=%s\nIFINDEX=%u\n", name, idx);
    attr (nd, "uevent", v);
    snprintf (v, sizeof v, "%u\n", idx);
    attr (nd, "ifindex", v);
    attr (nd, "iflink", v);
    attr (nd, "type", "1\n");
    attr (nd, "addr_assign_type", "0\n");
    attr (nd, "dev_port", "0\n");
    snprintf (v, sizeof v, "%s\n", mac);
    attr (nd, "address", v);
    link_up (nd, "subsystem", "class/net");
    snprintf (rel, sizeof rel, "sys/class/net/%s", name);
    snprintf (t, sizeof t, "../../devices/%s", nd);
    puts_ ("sys/class/net/.keep", "");
    {
        char path[900];

        snprintf (path, sizeof path, "%s/%s", root, rel);
        CHECK (symlink (t, path) == 0);
    }
}

static void
hotplug (const char *slot, const char *address)
{
    char rel[200], v[64];

    snprintf (rel, sizeof rel, "sys/bus/pci/slots/%s/address", slot);
    snprintf (v, sizeof v, "%s\n", address);
    puts_ (rel, v);
}

static struct netname nn;

static int
names (const char *ifname, unsigned scheme)
{
    int r = netname_compute (sys, ifname, scheme, &nn);

    if (getenv ("NETNAME_VERBOSE") != NULL) {
        fprintf (stderr, "%s v%u: onboard=%s slot=%s path=%s mac=%s -> %s\n",
                 ifname, scheme, nn.onboard, nn.slot, nn.path, nn.mac,
                 nn.chosen);
    }
    return r;
}

#define IS(field, want) (strcmp (nn.field, want) == 0)

static void
build (void)
{
    snprintf (root, sizeof root, "%s/vmc-netname-XXXXXX",
              getenv ("TMPDIR") != NULL ? getenv ("TMPDIR") : "/tmp");
    CHECK (mkdtemp (root) != NULL);
    snprintf (sys, sizeof sys, "%s/sys", root);
    puts_ ("sys/bus/pci/slots/.keep", "");

    /* QEMU i440fx: ACPI hotplug slots named after the device number. */
    pci ("pci0000:00/0000:00:03.0", 0, 0);
    net ("pci0000:00/0000:00:03.0", "eth0", "52:54:00:12:34:56");
    hotplug ("3", "0000:00:03");
    /* virtio-net in slot 5: the virtio device between is skipped. */
    pci ("pci0000:00/0000:00:05.0", 0, 0);
    plain ("pci0000:00/0000:00:05.0/virtio1", "virtio");
    net ("pci0000:00/0000:00:05.0/virtio1", "eth1", "52:54:00:AB:CD:EF");
    hotplug ("5", "0000:00:05");
    /* No slot: the path name. */
    pci ("pci0000:00/0000:00:04.0", 0, 0);
    net ("pci0000:00/0000:00:04.0", "eth2", "52:54:00:00:00:04");
    /* Onboard, ACPI index 1, at 00:19.0 (25). */
    pci ("pci0000:00/0000:00:19.0", 0, 0);
    attr ("pci0000:00/0000:00:19.0", "acpi_index", "1\n");
    attr ("pci0000:00/0000:00:19.0", "label", "Onboard LAN\n");
    net ("pci0000:00/0000:00:19.0", "eth3", "00:1b:21:00:00:01");
    /* A two-port multi-function card in slot 6. */
    pci ("pci0000:00/0000:00:06.0", 1, 0);
    pci ("pci0000:00/0000:00:06.1", 1, 0);
    net ("pci0000:00/0000:00:06.0", "eth4", "00:1b:21:00:06:00");
    net ("pci0000:00/0000:00:06.1", "eth5", "00:1b:21:00:06:01");
    hotplug ("6", "0000:00:06");
    /* The same without a slot, at 00:07. */
    pci ("pci0000:00/0000:00:07.0", 1, 0);
    pci ("pci0000:00/0000:00:07.1", 1, 0);
    net ("pci0000:00/0000:00:07.1", "eth6", "00:1b:21:00:07:01");
    /* q35: a PCIe root port whose slot has the physical number 0, which
     * is not a slot name (the kernel names it "0"). */
    pci ("pci0000:00/0000:00:1c.0", 1, 1);
    pci ("pci0000:00/0000:00:1c.0/0000:01:00.0", 0, 0);
    net ("pci0000:00/0000:00:1c.0/0000:01:00.0", "eth7", "52:54:00:01:00:00");
    hotplug ("0", "0000:01:00");
    /* The man page's example: a card in a PCIe hotplug slot 1. */
    pci ("pci0000:00/0000:00:1c.3", 1, 1);
    pci ("pci0000:00/0000:00:1c.3/0000:05:00.0", 0, 0);
    net ("pci0000:00/0000:00:1c.3/0000:05:00.0", "eth8", "00:00:00:00:04:66");
    hotplug ("1", "0000:05:00");
    /* A PCI bridge in slot 30 (0x1e) with a single-function NIC and a
     * multi-function one behind it. */
    pci ("pci0000:00/0000:00:1e.0", 0, 1);
    hotplug ("30", "0000:00:1e");
    pci ("pci0000:00/0000:00:1e.0/0000:02:01.0", 0, 0);
    net ("pci0000:00/0000:00:1e.0/0000:02:01.0", "eth9", "52:54:00:02:01:00");
    pci ("pci0000:00/0000:00:1e.0/0000:02:02.0", 1, 0);
    net ("pci0000:00/0000:00:1e.0/0000:02:02.0", "eth10", "52:54:00:02:02:00");
    /* PCI domain 1. */
    pci ("pci0001:00/0001:00:02.0", 0, 0);
    net ("pci0001:00/0001:00:02.0", "eth11", "52:54:00:10:02:00");
    /* Two ports on one function: dev_port. */
    pci ("pci0000:00/0000:00:08.0", 0, 0);
    net ("pci0000:00/0000:00:08.0", "eth12", "00:1b:21:00:08:00");
    net ("pci0000:00/0000:00:08.0", "eth13", "00:1b:21:00:08:01");
    attr ("pci0000:00/0000:00:08.0/net/eth13", "dev_port", "1\n");
    /* SR-IOV: physical function in slot 9, its virtual function 3. */
    pci ("pci0000:00/0000:00:09.0", 0, 0);
    hotplug ("9", "0000:00:09");
    net ("pci0000:00/0000:00:09.0", "eth14", "00:1b:21:00:09:00");
    pci ("pci0000:00/0000:00:0a.0", 0, 0);
    link_up ("pci0000:00/0000:00:0a.0", "physfn",
             "devices/pci0000:00/0000:00:09.0");
    link_up ("pci0000:00/0000:00:09.0", "virtfn3",
             "devices/pci0000:00/0000:00:0a.0");
    net ("pci0000:00/0000:00:0a.0", "eth15", "02:00:00:00:0a:00");
    attr ("pci0000:00/0000:00:0a.0/net/eth15", "addr_assign_type", "3\n");
    /* VMware's bogus onboard index 2^24-1, in slot 11 (0x0b). */
    pci ("pci0000:00/0000:00:0b.0", 0, 0);
    attr ("pci0000:00/0000:00:0b.0", "acpi_index", "16777215\n");
    hotplug ("11", "0000:00:0b");
    net ("pci0000:00/0000:00:0b.0", "eth16", "00:50:56:00:0b:00");
    /* An index of 20000: past v247's limit, within v249's. */
    pci ("pci0000:00/0000:00:0c.0", 0, 0);
    attr ("pci0000:00/0000:00:0c.0", "acpi_index", "20000\n");
    net ("pci0000:00/0000:00:0c.0", "eth17", "00:50:56:00:0c:00");
    /* Virtual: a bridge, and a VLAN on eth2 (iflink is not ifindex). */
    net ("virtual", "br0", "02:11:22:33:44:55");
    attr ("virtual/net/br0", "addr_assign_type", "1\n");
    net ("virtual", "eth2.10", "52:54:00:00:00:04");
    attr ("virtual/net/eth2.10", "iflink", "4\n");
    /* Xen netfront vif-0. */
    plain ("vif-0", "xen");
    net ("vif-0", "eth18", "00:16:3e:00:00:01");
    /* A USB NIC: no PCI device as its parent. */
    pci ("pci0000:00/0000:00:14.0", 0, 0);
    plain ("pci0000:00/0000:00:14.0/usb1", "usb");
    plain ("pci0000:00/0000:00:14.0/usb1/1-2", "usb");
    plain ("pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0", "usb");
    net ("pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0", "eth19",
         "00:e0:4c:68:00:01");
    /* A name too long for an interface: domain 0x1234, function 3 and
     * dev_port 12; the slot name still fits. */
    pci ("pci1234:00/1234:1f:1f.3", 1, 0);
    hotplug ("7", "1234:1f:1f");
    net ("pci1234:00/1234:1f:1f.3", "eth20", "52:54:00:12:34:01");
    attr ("pci1234:00/1234:1f:1f.3/net/eth20", "dev_port", "12\n");
    /* A device that is not Ethernet (type 772, loopback). */
    net ("virtual", "lo", "00:00:00:00:00:00");
    attr ("virtual/net/lo", "type", "772\n");
}

static void
test_pci (void)
{
    CHECK (names ("eth0", 0) == 0);
    CHECK (IS (slot, "ens3") && IS (path, "enp0s3") && IS (onboard, ""));
    CHECK (IS (mac, "enx525400123456") && IS (chosen, "ens3"));

    CHECK (names ("eth1", 252) == 0);
    CHECK (IS (slot, "ens5") && IS (path, "enp0s5") && IS (chosen, "ens5"));
    CHECK (IS (mac, "enx525400abcdef"));

    CHECK (names ("eth2", 0) == 0);
    CHECK (IS (slot, "") && IS (path, "enp0s4") && IS (chosen, "enp0s4"));

    CHECK (names ("eth3", 0) == 0);
    CHECK (IS (onboard, "eno1") && IS (path, "enp0s25") && IS (slot, ""));
    CHECK (IS (chosen, "eno1"));

    CHECK (names ("eth4", 0) == 0);
    CHECK (IS (slot, "ens6f0") && IS (path, "enp0s6f0") &&
           IS (chosen, "ens6f0"));
    CHECK (names ("eth5", 0) == 0);
    CHECK (IS (slot, "ens6f1") && IS (path, "enp0s6f1"));
    CHECK (names ("eth6", 0) == 0);
    CHECK (IS (slot, "") && IS (path, "enp0s7f1") && IS (chosen, "enp0s7f1"));

    CHECK (names ("eth7", 0) == 0);
    CHECK (IS (slot, "") && IS (path, "enp1s0") && IS (chosen, "enp1s0"));
    CHECK (names ("eth8", 0) == 0);
    CHECK (IS (slot, "ens1") && IS (path, "enp5s0") && IS (chosen, "ens1"));
    CHECK (IS (mac, "enx000000000466"));

    CHECK (names ("eth11", 0) == 0);
    CHECK (IS (path, "enP1p0s2") && IS (chosen, "enP1p0s2"));

    CHECK (names ("eth12", 0) == 0);
    CHECK (IS (path, "enp0s8"));
    CHECK (names ("eth13", 0) == 0);
    CHECK (IS (path, "enp0s8d1"));

    CHECK (names ("eth20", 0) == 0);
    CHECK (IS (path, "enP4660p31s31f3d12") && IS (slot, "enP4660s7f3d12"));
    CHECK (IS (chosen, "enP4660s7f3d12"));
}

static void
test_bridge_slot (void)
{
    /* v252 (and v251): the bridge's slot only for multi-function NICs. */
    CHECK (names ("eth9", 252) == 0);
    CHECK (IS (slot, "") && IS (path, "enp2s1") && IS (chosen, "enp2s1"));
    CHECK (names ("eth10", 252) == 0);
    CHECK (IS (slot, "ens30f0") && IS (path, "enp2s2f0") &&
           IS (chosen, "ens30f0"));
    CHECK (names ("eth10", 251) == 0 && IS (slot, "ens30f0"));
    /* v247 to v250: never. */
    CHECK (names ("eth10", 250) == 0);
    CHECK (IS (slot, "") && IS (chosen, "enp2s2f0"));
    CHECK (names ("eth10", 247) == 0 && IS (slot, ""));
}

static void
test_sriov_onboard (void)
{
    CHECK (names ("eth14", 0) == 0 && IS (slot, "ens9"));
    CHECK (names ("eth15", 0) == 0);
    CHECK (IS (slot, "ens9v3") && IS (path, "enp0s9v3") && IS (mac, ""));
    CHECK (IS (chosen, "ens9v3"));

    CHECK (names ("eth16", 0) == 0);
    CHECK (IS (onboard, "") && IS (slot, "ens11") && IS (chosen, "ens11"));
    CHECK (names ("eth17", 252) == 0);
    CHECK (IS (onboard, "eno20000") && IS (chosen, "eno20000"));
    CHECK (names ("eth17", 249) == 0 && IS (onboard, "eno20000"));
    CHECK (names ("eth17", 247) == 0);
    CHECK (IS (onboard, "") && IS (chosen, "enp0s12"));
}

static void
test_not_pci (void)
{
    CHECK (names ("br0", 0) == 0);
    CHECK (IS (onboard, "") && IS (slot, "") && IS (path, "") &&
           IS (mac, "") && IS (chosen, ""));
    CHECK (names ("eth2.10", 0) == 0);
    CHECK (IS (path, "") && IS (mac, "") && IS (chosen, ""));
    CHECK (names ("lo", 0) == 0 && IS (mac, "") && IS (chosen, ""));

    CHECK (names ("eth18", 252) == 0);
    CHECK (IS (slot, "enX0") && IS (chosen, "enX0"));
    CHECK (IS (mac, "enx00163e000001"));
    CHECK (names ("eth18", 250) == 0 && IS (slot, "enX0"));
    CHECK (names ("eth18", 249) == 0);
    CHECK (IS (slot, "") && IS (chosen, "") && IS (mac, "enx00163e000001"));

    /* USB is not covered: only the MAC name. */
    CHECK (names ("eth19", 0) == 0);
    CHECK (IS (path, "") && IS (chosen, "") && IS (mac, "enx00e04c680001"));

    CHECK (names ("nosuch", 0) == -1);
    CHECK (strstr (vmc_get_error (), "nosuch") != NULL);
    CHECK (names ("../../devices", 0) == -1);
    CHECK (names ("eth0", 239) == -1);
    CHECK (names ("eth0", 253) == -1);
}

static void
test_cmdline (void)
{
    CHECK (!netname_kernel_is_predictable_disabled (""));
    CHECK (!netname_kernel_is_predictable_disabled (
               "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet"));
    CHECK (netname_kernel_is_predictable_disabled (
               "BOOT_IMAGE=/vmlinuz root=/dev/sda1 net.ifnames=0 quiet"));
    CHECK (netname_kernel_is_predictable_disabled ("net.ifnames=off"));
    CHECK (netname_kernel_is_predictable_disabled ("net.ifnames=\"no\""));
    CHECK (!netname_kernel_is_predictable_disabled ("net.ifnames=1"));
    /* The last one wins. */
    CHECK (!netname_kernel_is_predictable_disabled (
               "net.ifnames=0 net.ifnames=1"));
    CHECK (netname_kernel_is_predictable_disabled (
               "net.ifnames=1 net.ifnames=0"));
    /* Not this key, or inside another word's quotes. */
    CHECK (!netname_kernel_is_predictable_disabled ("xnet.ifnames=0"));
    CHECK (!netname_kernel_is_predictable_disabled ("net.ifnames_x=0"));
    CHECK (!netname_kernel_is_predictable_disabled (
               "foo=\"a net.ifnames=0\""));
    CHECK (!netname_kernel_is_predictable_disabled ("net.ifnames=bogus"));
    CHECK (netname_kernel_is_predictable_disabled ("\tnet.ifnames=0\n"));
}

int
main (void)
{
    build ();
    test_pci ();
    test_bridge_slot ();
    test_sriov_onboard ();
    test_not_pci ();
    test_cmdline ();
    if (getenv ("NETNAME_KEEP") != NULL) {
        printf ("tree kept: %s\n", sys);
    }
    else {
        char cmd[400];

        snprintf (cmd, sizeof cmd, "rm -rf '%s'", root);
        CHECK (system (cmd) == 0);
    }
    return test_status ();
}
