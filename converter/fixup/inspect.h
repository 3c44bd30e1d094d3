/* SPDX-License-Identifier: MIT */
/*
 * Inspection of a Linux guest from its disks, without mounting anything
 * and without running any of its code: the disk map (partitions, LVM,
 * filesystems) finds the filesystems, files.h reads them, and the guest's
 * own files say what it is -- the root filesystem, the distribution,
 * architecture, kernels and their drivers, boot loader and firmware,
 * initramfs tool, fstab and crypttab, network configuration, other
 * hypervisors' tools.  The same code runs on a host over image files and
 * in the appliance over the source machine's read-only disks.
 *
 * Pre-flight (preflight.c) then judges whether the guest can be converted,
 * before any data is copied: each problem is an error (the conversion is
 * refused) or a warning, with what to do about it.
 */
#ifndef VMC_FIXUP_INSPECT_H
#define VMC_FIXUP_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../fs/files.h"
#include "../part/map.h"
#include "netconf.h"

#define INSP_MAX_KERNELS 32
#define INSP_MAX_FSTAB 64
#define INSP_MAX_CRYPT 16
#define INSP_MAX_TOOLS 16
#define INSP_MAX_PROBLEMS 32
#define INSP_MAX_ROOTS 8

/* The drivers a conversion may need, by target. */
enum insp_driver {
    DRV_VIRTIO_BLK, DRV_VIRTIO_SCSI, DRV_VIRTIO_PCI, DRV_VIRTIO_NET,
    DRV_HV_VMBUS, DRV_HV_STORVSC, DRV_HV_NETVSC,
    DRV_VMW_PVSCSI, DRV_VMXNET3,
    DRV_COUNT
};
extern const char *const insp_driver_names[DRV_COUNT];

enum insp_target { TARGET_KVM, TARGET_HYPERV, TARGET_VMWARE };

/* The drivers the initramfs must hold for TARGET (ends with DRV_COUNT). */
const enum insp_driver *insp_target_drivers (enum insp_target target);
const char *insp_target_name (enum insp_target target);
int insp_target_parse (const char *s, enum insp_target *target);

struct insp_kernel {
    char version[128];          /* "6.1.0-28-amd64" */
    char vmlinuz[256];          /* "/boot/vmlinuz-6.1.0-28-amd64" */
    char initrd[256];           /* its initramfs, "" when none found */
    uint64_t initrd_size;
    bool modules;               /* /lib/modules/VERSION exists */
    /* Per driver: 'm' a module file, 'y' built in, 0 not there. */
    char drv[DRV_COUNT];
    /* Per driver, in the initramfs: 1 there (or built in), 0 not there,
     * -1 unknown (no initramfs, or it could not be read). */
    signed char in_initrd[DRV_COUNT];
    char initrd_why[160];       /* why in_initrd is unknown */
};

struct insp_fstab {
    char spec[256], file[256], type[32], opts[256];
    int vol;                    /* the map volume SPEC names, -1 */
    bool by_device;             /* SPEC is a device name that may change
                                 * on another machine (/dev/sda1,
                                 * /dev/disk/by-id/..., by-path) */
};

struct insp_crypt {
    char name[128], device[256], key[256], opts[256];
    int vol;
    bool by_device;
};

struct insp_tool {
    char what[24];              /* "vmware", "virtualbox", "hyperv",
                                 * "xen" */
    char package[64];           /* its package, "" when not packaged */
    char evidence[256];         /* the file that shows it */
};

enum insp_severity { SEV_ERROR, SEV_WARNING };
struct insp_problem {
    enum insp_severity sev;
    char code[32];              /* "unclean-fs", "no-virtio-kernel", ... */
    char msg[512];              /* what is wrong, naming the thing */
    char advice[512];           /* what to do */
};

struct inspect_opts {
    const char *root;           /* the root volume: NULL or "" to choose
                                 * when there is only one, "first", or a
                                 * volume name/device as map prints it */
    enum insp_target target;
};

struct inspection {
    struct disk_map map;
    bool have_map;
    /* Root candidates (map volume indexes) and the chosen one (-1). */
    int roots[INSP_MAX_ROOTS];
    size_t nroots;
    int root;
    struct tree tree;           /* root and its fstab mounts we can read */
    int tree_vols[TREE_MAX_MOUNTS]; /* the map volume of each tree mount */
    /* The operating system. */
    char os[16];                /* "linux", or "" when no root */
    char distro[64];            /* os-release ID: "debian", "rhel" */
    char id_like[64];
    char version[64];           /* VERSION_ID: "12" */
    char pretty[160];
    char arch[16];              /* "x86_64", "i386", "aarch64" */
    char pkg[8];                /* "dpkg", "rpm", "" */
    char hostname[128];
    /* Boot. */
    char firmware[8];           /* "bios", "uefi" */
    char bootloader[24];        /* "grub2", "grub-legacy", "systemd-boot",
                                 * "" */
    char grub_cfg[256];         /* the GRUB configuration file */
    char efi_loader[256];       /* the ESP's loader ("/boot/efi/EFI/...") */
    bool efi_fallback;          /* EFI/BOOT/BOOTX64.EFI exists */
    char esp_mount[64];         /* where the ESP is mounted, "" */
    char cmdline[1024];         /* the default kernel command line, as
                                 * the boot loader configuration says */
    char initramfs_tool[24];    /* "initramfs-tools", "dracut", "mkinitrd",
                                 * "" */
    struct insp_kernel kernels[INSP_MAX_KERNELS];
    size_t nkernels;
    struct insp_fstab fstab[INSP_MAX_FSTAB];
    size_t nfstab;
    struct insp_crypt crypt[INSP_MAX_CRYPT];
    size_t ncrypt;
    struct net_config net;
    bool udevd;                 /* systemd-udevd: .link files work */
    bool net_ifnames_off;       /* net.ifnames=0 on the command line */
    struct insp_tool tools[INSP_MAX_TOOLS];
    size_t ntools;
    /* Free space of the filesystems holding /boot and /, bytes (0 when
     * unknown). */
    uint64_t boot_free, root_free;
    int boot_vol;
    struct insp_problem problems[INSP_MAX_PROBLEMS];
    size_t nproblems;
    size_t nerrors;
};

/* Inspect the N disks IMGS (named NAMES, in the order the guest sees
 * them: the first is sda).  0 (IN filled; no root found is not an error
 * here, preflight says so), -1 on a read or memory error (message set).
 * IN must be freed with inspect_free either way. */
int inspect_disks (struct inspection *in, struct image *const *imgs,
                   const char *const *names, size_t n,
                   const struct inspect_opts *o);
void inspect_free (struct inspection *in);

/* Add a problem (preflight.c and inspect.c). */
void insp_problem (struct inspection *in, enum insp_severity sev,
                   const char *code, const char *advice, const char *fmt,
                   ...) __attribute__ ((format (printf, 5, 6)));

/* Pre-flight checks: fill in->problems.  Returns the number of errors. */
size_t preflight (struct inspection *in, const struct inspect_opts *o);

/* The inspection as text (for people) or one JSON object. */
void inspect_print_text (FILE *fp, const struct inspection *in);
void inspect_print_json (FILE *fp, const struct inspection *in);
/* The guest's network configuration, from every tool's files in T
 * (netconf-read.c).  0. */
int netconf_read (const struct tree *t, struct net_config *c);

/* The filesystem UUID of map volume VI ("" when it has none) and whether
 * a volume's fstab-style name of it is stable across machines. */
const char *insp_vol_uuid (const struct inspection *in, int vi);

/* Which map volume the fstab-style SPEC names (UUID=, LABEL=, PARTUUID=,
 * PARTLABEL=, /dev/disk/by-*, /dev/mapper/VG-LV, /dev/VG/LV, /dev/sdXN,
 * /dev/vdXN, /dev/hdXN, /dev/xvdXN, /dev/nvmeXnYpZ), -1 when none.
 * *BY_DEVICE is set when the name depends on the hardware. */
int insp_resolve_spec (const struct inspection *in, const char *spec,
                       bool *by_device);

#endif
