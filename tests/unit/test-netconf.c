/* SPDX-License-Identifier: MIT */
/*
 * The network configuration parsers (converter/fixup/netconf*.c): files as
 * the distributions' installers and tools write them, and hostile ones.
 * Expected values follow the formats' documentation (interfaces(5),
 * nm-settings-keyfile(5), netplan's reference, systemd.network(5)).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../converter/fixup/netconf.h"
#include "test.h"

typedef int (*parser) (struct net_config *, const char *, const char *,
                       size_t);

static int
parse (struct net_config *c, parser p, const char *path, const char *text)
{
    return p (c, path, text, strlen (text));
}

static const struct net_iface *
find (const struct net_config *c, const char *name)
{
    for (size_t k = 0; k < c->n; k++) {
        if (strcmp (c->v[k].name, name) == 0) {
            return &c->v[k];
        }
    }
    return NULL;
}

static int
has_addr (const struct net_iface *i, const char *a, unsigned prefix)
{
    for (unsigned k = 0; k < i->naddr; k++) {
        if (strcmp (i->addr[k].addr, a) == 0 && i->addr[k].prefix == prefix) {
            return 1;
        }
    }
    return 0;
}

#define STR(a, b) (strcmp ((a), (b)) == 0)

/* Debian 12's installer with a static address, plus what people add. */
static void
test_ifupdown (void)
{
    static const char eni[] =
        "# This file describes the network interfaces available on your "
        "system\n"
        "# and how to activate them. For more information, see "
        "interfaces(5).\n"
        "\n"
        "source /etc/network/interfaces.d/*\n"
        "\n"
        "# The loopback network interface\n"
        "auto lo\n"
        "iface lo inet loopback\n"
        "\n"
        "# The primary network interface\n"
        "allow-hotplug ens192\n"
        "iface ens192 inet static\n"
        "\taddress 192.168.10.20/24\n"
        "\tgateway 192.168.10.1\n"
        "\t# dns-* options are implemented by the resolvconf package, if "
        "installed\n"
        "\tdns-nameservers 192.168.10.2 192.168.10.3\n"
        "\tdns-search example.com\n"
        "\n"
        "# This is an autoconfigured IPv6 interface\n"
        "iface ens192 inet6 auto\n"
        "\n"
        "auto ens224\n"
        "iface ens224 inet static\n"
        "    netmask 255.255.0.0\n"
        "    address 10.1.2.3\n"
        "    hwaddress ether 00:50:56:AA:BB:CC\n"
        "    up ip route add 10.9.0.0/16 \\\n"
        "       via 10.1.0.1\n"
        "iface ens224 inet6 static\n"
        "    address 2001:db8::5\n"
        "    netmask 64\n"
        "    gateway 2001:db8::1\n"
        "iface ens224:1 inet static\n"
        "    address 10.1.2.4/16\n"
        "auto eth2\n"
        "iface eth2 inet dhcp\n"
        "iface eth3 inet manual\n"
        "source-directory interfaces.d\n"
        "source extra/*.cfg\n"
        "iface bogus\n";
    struct net_config c = { 0 };
    const struct net_iface *i;

    CHECK (parse (&c, netconf_parse_ifupdown, "/etc/network/interfaces",
                  eni) == 0);
    CHECK (c.n == 4);
    CHECK (find (&c, "lo") == NULL);
    i = find (&c, "ens192");
    CHECK (i != NULL && STR (i->tool, "ifupdown") &&
           STR (i->source, "/etc/network/interfaces"));
    if (i != NULL) {
        CHECK (i->naddr == 1 && has_addr (i, "192.168.10.20", 24));
        CHECK (STR (i->gateway4, "192.168.10.1") && i->gateway6[0] == '\0');
        CHECK (i->ndns == 2 && STR (i->dns[0], "192.168.10.2") &&
               STR (i->dns[1], "192.168.10.3"));
        CHECK (i->auto6 && !i->dhcp4 && !i->dhcp6 && !i->manual);
        CHECK (i->mac[0] == '\0');
    }
    i = find (&c, "ens224");
    CHECK (i != NULL);
    if (i != NULL) {
        /* The netmask after the address still applies to it. */
        CHECK (i->naddr == 3 && has_addr (i, "10.1.2.3", 16) &&
               has_addr (i, "2001:db8::5", 64) &&
               has_addr (i, "10.1.2.4", 16));
        CHECK (STR (i->gateway6, "2001:db8::1"));
        CHECK (STR (i->mac, "00:50:56:aa:bb:cc"));
    }
    i = find (&c, "eth2");
    CHECK (i != NULL && i->dhcp4 && i->naddr == 0);
    i = find (&c, "eth3");
    CHECK (i != NULL && i->manual);
    CHECK (c.ninc == 3);
    CHECK (STR (c.inc[0].pattern, "/etc/network/interfaces.d/*") &&
           !c.inc[0].directory);
    CHECK (STR (c.inc[1].pattern, "/etc/network/interfaces.d") &&
           c.inc[1].directory);
    CHECK (STR (c.inc[2].pattern, "/etc/network/extra/*.cfg"));
    CHECK (c.skipped == 1);

    /* A sourced file adds to the same interface. */
    CHECK (parse (&c, netconf_parse_ifupdown,
                  "/etc/network/interfaces.d/ens192",
                  "iface ens192 inet static\n address 192.168.10.21\n") == 0);
    i = find (&c, "ens192");
    CHECK (c.n == 4 && i != NULL && has_addr (i, "192.168.10.21", 24));
    netconf_free (&c);

    /* What ifup -n (ifupdown 0.8.41) does with bare addresses: IPv4 gets
     * its class, IPv6 goes to ip(8) without one (128). */
    CHECK (parse (&c, netconf_parse_ifupdown, "/etc/network/interfaces",
                  "iface ens225 inet static\n    address 10.1.2.5\n"
                  "iface ens225 inet6 static\n    address 2001:db8::6\n"
                  "iface ens226 inet static\n    address 172.16.1.1\n")
           == 0);
    CHECK (c.n == 2 && has_addr (&c.v[0], "10.1.2.5", 8) &&
           has_addr (&c.v[0], "2001:db8::6", 128) &&
           has_addr (&c.v[1], "172.16.1.1", 16));
    netconf_free (&c);
    CHECK (c.n == 0 && c.v == NULL);
    netconf_free (NULL);
}

/* RHEL 7 initscripts, RHEL 8 written by NetworkManager, SUSE. */
static void
test_ifcfg (void)
{
    static const char rhel7[] =
        "TYPE=Ethernet\n"
        "PROXY_METHOD=none\n"
        "BROWSER_ONLY=no\n"
        "BOOTPROTO=none\n"
        "DEFROUTE=yes\n"
        "IPV4_FAILURE_FATAL=no\n"
        "IPV6INIT=yes\n"
        "IPV6_AUTOCONF=yes\n"
        "IPV6_DEFROUTE=yes\n"
        "IPV6_FAILURE_FATAL=no\n"
        "IPV6_ADDR_GEN_MODE=stable-privacy\n"
        "NAME=ens192\n"
        "UUID=4b6e0b5d-6c1a-4f10-9d3c-2d3c3b1a2f11\n"
        "DEVICE=ens192\n"
        "ONBOOT=yes\n"
        "IPADDR=172.16.5.10\n"
        "PREFIX=24\n"
        "GATEWAY=172.16.5.1\n"
        "DNS1=172.16.5.2\n"
        "DNS2=8.8.8.8\n"
        "HWADDR=00:50:56:9A:01:02\n";
    static const char rhel8[] =
        "# Generated by NetworkManager\n"
        "TYPE=\"Ethernet\"\n"
        "BOOTPROTO=\"dhcp\"\n"
        "NAME=\"System eth0\"\n"
        "DEVICE=\"eth0\"\n"
        "ONBOOT=\"yes\"\n"
        "IPADDR1=10.0.0.7\n"
        "NETMASK1=255.255.255.128\n"
        "IPADDR0=192.168.1.9\n"
        "IPV6INIT=yes\n"
        "DHCPV6C=yes\n"
        "IPV6ADDR=2001:db8:1::7/64\n"
        "IPV6ADDR_SECONDARIES=\"2001:db8:1::8/64 2001:db8:1::9\"\n"
        "IPV6_DEFAULTGW=fe80::1%eth0\n"
        "MACADDR='52:54:00:0a:0b:0c'   # set, not matched\n";
    static const char suse[] =
        "BOOTPROTO='static'\n"
        "STARTMODE='auto'\n"
        "IPADDR='192.168.122.50/24'\n"
        "IPADDR_2='fd00::50/64'\n"
        "LABEL_2=''\n"
        "NAME='Virtio network device'\n";
    struct net_config c = { 0 };
    const struct net_iface *i;

    CHECK (parse (&c, netconf_parse_ifcfg,
                  "/etc/sysconfig/network-scripts/ifcfg-ens192", rhel7) == 0);
    CHECK (parse (&c, netconf_parse_ifcfg,
                  "/etc/sysconfig/network-scripts/ifcfg-eth0", rhel8) == 0);
    CHECK (parse (&c, netconf_parse_ifcfg,
                  "/etc/sysconfig/network/ifcfg-eth1", suse) == 0);
    CHECK (parse (&c, netconf_parse_ifcfg,
                  "/etc/sysconfig/network-scripts/ifcfg-lo",
                  "DEVICE=lo\nIPADDR=127.0.0.1\n") == 0);
    CHECK (parse (&c, netconf_parse_ifcfg, "/etc/sysconfig/network/ifcfg-x",
                  "DEVICE=ens3\nBOOTPROTO=dhcp\n") == 0);
    CHECK (c.n == 4);
    i = find (&c, "ens192");
    CHECK (i != NULL && STR (i->tool, "ifcfg"));
    if (i != NULL) {
        CHECK (i->naddr == 1 && has_addr (i, "172.16.5.10", 24));
        CHECK (STR (i->gateway4, "172.16.5.1"));
        CHECK (i->ndns == 2 && STR (i->dns[1], "8.8.8.8"));
        CHECK (STR (i->mac, "00:50:56:9a:01:02"));
        CHECK (!i->dhcp4 && i->auto6 && !i->manual);
    }
    i = find (&c, "eth0");
    CHECK (i != NULL);
    if (i != NULL) {
        CHECK (i->dhcp4 && i->dhcp6 && !i->auto6);
        /* IPADDR0 without a prefix: its class (C). */
        CHECK (i->naddr == 5 && has_addr (i, "192.168.1.9", 24) &&
               has_addr (i, "10.0.0.7", 25) &&
               has_addr (i, "2001:db8:1::7", 64) &&
               has_addr (i, "2001:db8:1::8", 64) &&
               has_addr (i, "2001:db8:1::9", 64));
        CHECK (STR (i->gateway6, "fe80::1"));
        CHECK (STR (i->mac, "52:54:00:0a:0b:0c"));
    }
    i = find (&c, "eth1");
    CHECK (i != NULL);
    if (i != NULL) {
        CHECK (i->naddr == 2 && has_addr (i, "192.168.122.50", 24) &&
               has_addr (i, "fd00::50", 64));
        CHECK (!i->dhcp4 && !i->manual);
    }
    /* SUSE's dhcp is both families. */
    i = find (&c, "ens3");
    CHECK (i != NULL && i->dhcp4 && i->dhcp6);
    netconf_free (&c);

    /* Manual; an unterminated quote skips its line; classful A. */
    CHECK (parse (&c, netconf_parse_ifcfg,
                  "/etc/sysconfig/network-scripts/ifcfg-em1",
                  "BOOTPROTO=none\nHWADDR=\"00:11:22:33:44:55\nIPADDR=10.2.3.4"
                  "\nGATEWAY=bogus\n") == 0);
    CHECK (c.n == 1 && STR (c.v[0].name, "em1") && c.v[0].mac[0] == '\0' &&
           has_addr (&c.v[0], "10.2.3.4", 8) && c.skipped == 2);
    netconf_free (&c);
    CHECK (parse (&c, netconf_parse_ifcfg,
                  "/etc/sysconfig/network-scripts/ifcfg-em2",
                  "BOOTPROTO=none\n") == 0);
    CHECK (c.n == 1 && c.v[0].manual);
    netconf_free (&c);
}

/* RHEL 9 / Fedora keyfiles, and older ones. */
static void
test_nm (void)
{
    static const char rhel9[] =
        "[connection]\n"
        "id=ens192\n"
        "uuid=8a1b7d1e-2f3c-4d5e-8f90-1a2b3c4d5e6f\n"
        "type=ethernet\n"
        "autoconnect-priority=-999\n"
        "interface-name=ens192\n"
        "timestamp=1700000000\n"
        "\n"
        "[ethernet]\n"
        "mac-address=00:50:56:9A:AA:01\n"
        "\n"
        "[ipv4]\n"
        "address1=10.20.30.40/24,10.20.30.1\n"
        "address2=10.20.31.40/24\n"
        "dns=10.20.30.2;10.20.30.3;\n"
        "dns-search=corp.example;\n"
        "method=manual\n"
        "\n"
        "[ipv6]\n"
        "addr-gen-mode=eui64\n"
        "method=auto\n"
        "\n"
        "[proxy]\n";
    static const char old[] =
        "[connection]\n"
        "id=Wired connection 1\n"
        "type=802-3-ethernet\n"
        "\n"
        "[802-3-ethernet]\n"
        "mac-address=82;84;0;18;52;86;\n"
        "\n"
        "[ipv4]\n"
        "method=auto\n"
        "addresses1=192.168.0.5;24;192.168.0.1;\n"
        "\n"
        "[ipv6]\n"
        "method=ignore\n";
    struct net_config c = { 0 };
    const struct net_iface *i;

    CHECK (parse (&c, netconf_parse_nm_keyfile,
                  "/etc/NetworkManager/system-connections/ens192.nmconnection",
                  rhel9) == 0);
    CHECK (parse (&c, netconf_parse_nm_keyfile,
                  "/etc/NetworkManager/system-connections/Wired", old) == 0);
    CHECK (parse (&c, netconf_parse_nm_keyfile,
                  "/etc/NetworkManager/system-connections/d.nmconnection",
                  "[connection]\ntype=ethernet\ninterface-name=eth9\n"
                  "[ethernet]\nmac-address=52:54:00:01:02:03;\n"
                  "[ipv4]\nmethod=disabled\naddress1=1.2.3.4\n"
                  "[ipv6]\nmethod=dhcp\n") == 0);
    CHECK (c.n == 3);
    i = find (&c, "ens192");
    CHECK (i != NULL && STR (i->tool, "networkmanager"));
    if (i != NULL) {
        CHECK (STR (i->mac, "00:50:56:9a:aa:01"));
        CHECK (i->naddr == 2 && has_addr (i, "10.20.30.40", 24) &&
               has_addr (i, "10.20.31.40", 24));
        CHECK (STR (i->gateway4, "10.20.30.1"));
        CHECK (i->ndns == 2 && STR (i->dns[0], "10.20.30.2"));
        CHECK (!i->dhcp4 && i->auto6 && !i->manual);
    }
    /* No interface-name: matched by MAC only. */
    i = find (&c, "");
    CHECK (i != NULL);
    if (i != NULL) {
        CHECK (STR (i->mac, "52:54:00:12:34:56"));
        CHECK (i->dhcp4 && !i->auto6 && has_addr (i, "192.168.0.5", 24) &&
               STR (i->gateway4, "192.168.0.1"));
    }
    i = find (&c, "eth9");
    CHECK (i != NULL && STR (i->mac, "52:54:00:01:02:03") && i->dhcp6 &&
           has_addr (i, "1.2.3.4", 24));
    netconf_free (&c);
}

/* Ubuntu's installer (subiquity), cloud-init, and a hand-written one. */
static void
test_netplan (void)
{
    static const char subiquity[] =
        "# This is the network config written by 'subiquity'\n"
        "network:\n"
        "  ethernets:\n"
        "    ens160:\n"
        "      addresses:\n"
        "      - 192.168.1.50/24\n"
        "      nameservers:\n"
        "        addresses:\n"
        "        - 192.168.1.1\n"
        "        - 1.1.1.1\n"
        "        search: []\n"
        "      routes:\n"
        "      - to: default\n"
        "        via: 192.168.1.1\n"
        "    ens192:\n"
        "      dhcp4: true\n"
        "  version: 2\n";
    static const char cloudinit[] =
        "# This file is generated from information provided by the "
        "datasource.\n"
        "network:\n"
        "    ethernets:\n"
        "        eth0:\n"
        "            dhcp4: true\n"
        "            dhcp6: yes\n"
        "            match:\n"
        "                macaddress: 06:AB:cd:00:11:22\n"
        "            set-name: eth0\n"
        "        nic1:\n"
        "            match: {macaddress: \"52:54:00:aa:bb:cc\"}\n"
        "            addresses: [10.0.0.5/8, \"2001:db8::5/64\"]\n"
        "            gateway4: 10.0.0.1   # deprecated\n"
        "            gateway6: 2001:db8::1\n"
        "            routes: [{to: 0.0.0.0/0, via: 10.0.0.254}]\n"
        "            nameservers: {addresses: [10.0.0.2, '10.0.0.3']}\n"
        "        'ens5':\n"
        "          addresses:\n"
        "            - 172.16.0.9/16:\n"
        "                lifetime: 0\n"
        "            - 172.16.0.10\n"
        "          description: |\n"
        "            eth: not: a key\n"
        "              - nor an item\n"
        "          accept-ra: on\n"
        "    version: 2\n";
    struct net_config c = { 0 };
    const struct net_iface *i;

    CHECK (parse (&c, netconf_parse_netplan,
                  "/etc/netplan/00-installer-config.yaml", subiquity) == 0);
    CHECK (c.n == 2);
    i = find (&c, "ens160");
    CHECK (i != NULL && STR (i->tool, "netplan"));
    if (i != NULL) {
        CHECK (i->naddr == 1 && has_addr (i, "192.168.1.50", 24));
        CHECK (STR (i->gateway4, "192.168.1.1"));
        CHECK (i->ndns == 2 && STR (i->dns[1], "1.1.1.1"));
        CHECK (!i->dhcp4 && i->mac[0] == '\0');
    }
    i = find (&c, "ens192");
    CHECK (i != NULL && i->dhcp4 && !i->dhcp6);
    CHECK (c.skipped == 0);
    netconf_free (&c);

    CHECK (parse (&c, netconf_parse_netplan,
                  "/etc/netplan/50-cloud-init.yaml", cloudinit) == 0);
    CHECK (c.n == 3);
    i = find (&c, "eth0");
    CHECK (i != NULL && i->dhcp4 && i->dhcp6 &&
           STR (i->mac, "06:ab:cd:00:11:22"));
    /* Matched by MAC, no set-name: no name. */
    i = find (&c, "");
    CHECK (i != NULL);
    if (i != NULL) {
        CHECK (STR (i->mac, "52:54:00:aa:bb:cc"));
        CHECK (i->naddr == 2 && has_addr (i, "10.0.0.5", 8) &&
               has_addr (i, "2001:db8::5", 64));
        /* The route comes after gateway4 and wins. */
        CHECK (STR (i->gateway4, "10.0.0.254") &&
               STR (i->gateway6, "2001:db8::1"));
        CHECK (i->ndns == 2 && STR (i->dns[1], "10.0.0.3"));
    }
    i = find (&c, "ens5");
    CHECK (i != NULL);
    if (i != NULL) {
        /* An address without a prefix is refused by netplan. */
        CHECK (i->naddr == 1 && has_addr (i, "172.16.0.9", 16));
        CHECK (i->auto6);
    }
    netconf_free (&c);
}

static void
test_networkd_link_udev (void)
{
    static const char network[] =
        "# /etc/systemd/network/10-wired.network\n"
        "[Match]\n"
        "MACAddress=52:54:00:11:22:33 52-54-00-11-22-44\n"
        "\n"
        "[Network]\n"
        "DHCP=ipv6\n"
        "Address=192.168.7.7/24\n"
        "Address=fd00::7/64\n"
        "Gateway=192.168.7.1\n"
        "DNS=192.168.7.1 fd00::1\n"
        "\n"
        "[Address]\n"
        "Address=192.168.8.7/24\n"
        "\n"
        "[Route]\n"
        "Gateway=fd00::1\n";
    static const char glob[] =
        "[Match]\n"
        "Name=en*\n"
        "[Network]\n"
        "DHCP=yes\n"
        "[Route]\n"
        "Destination=10.0.0.0/8\n"
        "Gateway=192.168.7.99\n";
    static const char rules[] =
        "# This file was automatically generated by the "
        "/lib/udev/write_net_rules\n"
        "# program, run by the persistent-net-generator.rules rules file.\n"
        "\n"
        "# PCI device 0x8086:0x100e (e1000)\n"
        "SUBSYSTEM==\"net\", ACTION==\"add\", DRIVERS==\"?*\", "
        "ATTR{address}==\"00:0c:29:4f:8e:35\", ATTR{dev_id}==\"0x0\", "
        "ATTR{type}==\"1\", KERNEL==\"eth*\", NAME=\"eth0\"\n"
        "\n"
        "# PCI device 0x15ad:0x07b0 (vmxnet3)\n"
        "SUBSYSTEM==\"net\", ACTION==\"add\", DRIVERS==\"?*\", "
        "ATTR{address}==\"00:0C:29:4F:8E:3F\", ATTR{dev_id}==\"0x0\", "
        "ATTR{type}==\"1\", KERNEL==\"eth*\", \\\n NAME=\"eth1\"\n"
        "SUBSYSTEM==\"block\", ATTR{address}==\"00:0c:29:00:00:01\", "
        "NAME=\"nope\"\n"
        "SUBSYSTEM==\"net\", KERNELS==\"0000:00:03.0\", NAME=\"bypath\"\n"
        "SUBSYSTEM==\"net\", ATTR{address}==\"00:0c:29:*\", NAME=\"glob\"\n"
        "SUBSYSTEM==\"net\", ATTR{address}==\"00:0c:29:00:00:09\", NAME=\"x\n";
    static const char link[] =
        "[Match]\n"
        "MACAddress=00:0c:29:aa:bb:cc\n"
        "\n"
        "[Link]\n"
        "Name=lan0\n";
    struct net_config c = { 0 };
    const struct net_iface *i;

    CHECK (parse (&c, netconf_parse_networkd,
                  "/etc/systemd/network/10-wired.network", network) == 0);
    CHECK (c.n == 2);
    CHECK (c.n == 2 && STR (c.v[0].mac, "52:54:00:11:22:33") &&
           STR (c.v[1].mac, "52:54:00:11:22:44") && c.v[0].name[0] == '\0');
    if (c.n == 2) {
        i = &c.v[1];
        CHECK (STR (i->tool, "networkd") && !i->dhcp4 && i->dhcp6);
        CHECK (i->naddr == 3 && has_addr (i, "192.168.7.7", 24) &&
               has_addr (i, "fd00::7", 64) && has_addr (i, "192.168.8.7", 24));
        CHECK (STR (i->gateway4, "192.168.7.1") &&
               STR (i->gateway6, "fd00::1"));
        CHECK (i->ndns == 2 && STR (i->dns[1], "fd00::1"));
    }
    CHECK (parse (&c, netconf_parse_networkd,
                  "/etc/systemd/network/20-glob.network", glob) == 0);
    i = find (&c, "en*");
    CHECK (c.n == 3 && i != NULL && i->dhcp4 && i->dhcp6 &&
           i->gateway4[0] == '\0');
    netconf_free (&c);

    CHECK (parse (&c, netconf_parse_udev_rules,
                  "/etc/udev/rules.d/70-persistent-net.rules", rules) == 0);
    CHECK (c.n == 2);
    i = find (&c, "eth0");
    CHECK (i != NULL && STR (i->mac, "00:0c:29:4f:8e:35") &&
           STR (i->tool, "udev-rule") && i->naddr == 0);
    i = find (&c, "eth1");
    CHECK (i != NULL && STR (i->mac, "00:0c:29:4f:8e:3f"));
    CHECK (find (&c, "nope") == NULL && find (&c, "bypath") == NULL &&
           find (&c, "glob") == NULL && find (&c, "x") == NULL);

    CHECK (parse (&c, netconf_parse_link,
                  "/etc/systemd/network/10-lan0.link", link) == 0);
    CHECK (parse (&c, netconf_parse_link,
                  "/usr/lib/systemd/network/99-default.link",
                  "[Match]\nOriginalName=*\n\n[Link]\n"
                  "NamePolicy=keep kernel database onboard slot path\n"
                  "MACAddressPolicy=persistent\n") == 0);
    CHECK (parse (&c, netconf_parse_link,
                  "/etc/systemd/network/20-bypath.link",
                  "[Match]\nPath=pci-0000:00:03.0\n[Link]\nName=wan0\n") == 0);
    CHECK (c.n == 4);
    i = find (&c, "lan0");
    CHECK (i != NULL && STR (i->mac, "00:0c:29:aa:bb:cc") &&
           STR (i->tool, "link"));
    i = find (&c, "wan0");
    CHECK (i != NULL && i->mac[0] == '\0');

    /* Lookups and merging: a netplan entry by name gets the udev MAC. */
    CHECK (parse (&c, netconf_parse_netplan, "/etc/netplan/1.yaml",
                  "network:\n  ethernets:\n    eth1: {dhcp4: true}\n"
                  "    m:\n      match:\n"
                  "        macaddress: 00:0c:29:aa:bb:cc\n") == 0);
    CHECK (c.n == 6);
    CHECK (STR (netconf_mac_of (&c, "eth0"), "00:0c:29:4f:8e:35"));
    CHECK (netconf_mac_of (&c, "wan0") == NULL);
    CHECK (STR (netconf_name_of (&c, "00:0C:29:AA:BB:CC"), "lan0"));
    CHECK (netconf_name_of (&c, "00:0c:29:00:00:00") == NULL);
    netconf_merge (&c);
    CHECK (c.n == 6 && STR (c.v[4].name, "eth1") && c.v[4].dhcp4 &&
           STR (c.v[4].mac, "00:0c:29:4f:8e:3f"));
    CHECK (STR (c.v[5].name, "lan0"));

    {
        char *buf = NULL;
        size_t len = 0;
        FILE *fp = open_memstream (&buf, &len);

        CHECK (fp != NULL);
        if (fp != NULL) {
            netconf_iface_json (fp, &c.v[4]);
            fclose (fp);
            CHECK (strstr (buf, "\"name\": \"eth1\"") != NULL);
            CHECK (strstr (buf, "\"dhcp4\": true") != NULL);
            CHECK (strstr (buf, "\"addresses\": []") != NULL);
            free (buf);
        }
    }
    netconf_free (&c);
}

static void
test_hostile (void)
{
    struct net_config c = { 0 };
    size_t big = 1 << 20, n = 0;
    char *t = malloc (big + 64);
    static const char nul[] = "iface eth0 inet dhcp\n\0iface eth1 inet dhcp\n"
                              "iface e\0th2 inet dhcp\niface eth3 inet dhcp";
    parser all[] = { netconf_parse_ifupdown, netconf_parse_ifcfg,
                     netconf_parse_nm_keyfile, netconf_parse_netplan,
                     netconf_parse_networkd, netconf_parse_udev_rules,
                     netconf_parse_link };

    CHECK (t != NULL);
    if (t == NULL) {
        return;
    }
    /* NULs: the lines that hold them are skipped; no newline at the
     * end. */
    CHECK (netconf_parse_ifupdown (&c, "i", nul, sizeof nul - 1) == 0);
    CHECK (c.n == 2 && find (&c, "eth0") != NULL &&
           find (&c, "eth3") != NULL && c.skipped == 2);
    netconf_free (&c);

    /* A very long line, then a good one. */
    memset (t, 'a', big);
    memcpy (t, "iface ", 6);
    n = big;
    n += (size_t) snprintf (t + n, 64, "\niface ok inet dhcp\n");
    CHECK (netconf_parse_ifupdown (&c, "i", t, n) == 0);
    CHECK (c.n == 1 && find (&c, "ok") != NULL && c.skipped == 1);
    netconf_free (&c);

    /* Names and values too long for their fields. */
    CHECK (parse (&c, netconf_parse_ifupdown, "i",
                  "iface abcdefghijabcdefghijabcdefghijab inet dhcp\n"
                  "iface e inet static\n address 1111:2222:3333:4444:5555:"
                  "6666:7777:8888:9999:aaaa:bbbb:cccc:dddd:eeee:ffff/64\n")
           == 0);
    CHECK (c.n == 1 && c.v[0].naddr == 0 && c.skipped == 2);
    netconf_free (&c);

    /* 10000 interfaces: the first NETCONF_MAX_IFACES are kept. */
    {
        size_t cap = 10000 * 40, o = 0;
        char *m = malloc (cap);

        CHECK (m != NULL);
        for (unsigned k = 0; m != NULL && k < 10000; k++) {
            o += (size_t) snprintf (m + o, cap - o,
                                    "iface eth%u inet dhcp\n", k);
        }
        CHECK (m != NULL && netconf_parse_ifupdown (&c, "i", m, o) == 0);
        CHECK (c.n == NETCONF_MAX_IFACES && c.skipped == 10000 - 256);
        netconf_free (&c);
        o = 0;
        for (unsigned k = 0; m != NULL && k < 10000; k++) {
            o += (size_t) snprintf (m + o, cap - o,
                                    "%s  e%u: {dhcp4: yes}\n",
                                    k == 0 ? "network:\n ethernets:\n" : "",
                                    k);
        }
        CHECK (m != NULL && netconf_parse_netplan (&c, "n", m, o) == 0);
        CHECK (c.n > 0 && c.n <= NETCONF_MAX_IFACES);
        netconf_free (&c);
        free (m);
    }

    /* Deep YAML nesting, by indentation and by flow collections. */
    {
        size_t o = 0;

        o += (size_t) snprintf (t + o, big - o, "network:\n");
        for (unsigned k = 1; k < 5000 && o + 6000 < big; k++) {
            o += (size_t) snprintf (t + o, big - o, "%*sk%u:\n", (int) k, "",
                                    k);
        }
        CHECK (netconf_parse_netplan (&c, "n", t, o) == 0 && c.n == 0);
        netconf_free (&c);
        o = (size_t) snprintf (t, big, "network:\n  ethernets: ");
        for (unsigned k = 0; k < 100000; k++) {
            t[o++] = k % 2 ? '{' : '[';
        }
        CHECK (netconf_parse_netplan (&c, "n", t, o) == 0 && c.n == 0);
        netconf_free (&c);
    }

    /* Unterminated quotes everywhere. */
    CHECK (parse (&c, netconf_parse_netplan, "n",
                  "network:\n  ethernets:\n    \"eth0:\n      dhcp4: true\n"
                  "    eth1:\n      addresses: ['10.0.0.1/8\n"
                  "      dhcp4: 'yes\n") == 0);
    CHECK (c.n == 1 && STR (c.v[0].name, "eth1") && c.v[0].naddr == 0 &&
           !c.v[0].dhcp4);
    netconf_free (&c);
    CHECK (parse (&c, netconf_parse_udev_rules, "r",
                  "SUBSYSTEM==\"net\", ATTR{address}==\"00:11:22:33:44:55, "
                  "NAME=\"eth0\"\nATTR{address\n") == 0 && c.n == 0);
    netconf_free (&c);

    /* Every parser over every byte value and over garbage. */
    for (size_t k = 0; k < 4096; k++) {
        t[k] = (char) (k * 7 + (k >> 3));
    }
    for (unsigned p = 0; p < sizeof all / sizeof all[0]; p++) {
        CHECK (all[p] (&c, "/x/ifcfg-y", t, 4096) == 0);
        CHECK (all[p] (&c, "", t, 0) == 0);
    }
    CHECK (c.n <= NETCONF_MAX_IFACES);
    netconf_free (&c);
    free (t);
}

int
main (void)
{
    test_ifupdown ();
    test_ifcfg ();
    test_nm ();
    test_netplan ();
    test_networkd_link_udev ();
    test_hostile ();
    return test_status ();
}
