/* SPDX-License-Identifier: MIT */
/*
 * convert --fixup: the appliance in QEMU over a qcow2 overlay of the
 * source (fixup-vm.c).
 */
#ifndef VMC_CLI_FIXUP_VM_H
#define VMC_CLI_FIXUP_VM_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

struct fixup_vm {
    /* In. */
    const char *src;            /* the source image */
    const char *src_format;     /* its format, as vmconvert names it */
    const char *target;         /* kvm, hyperv, vmware */
    const char *root;           /* NULL: the only one */
    const char *macs[32];       /* NAME=MAC */
    size_t nmacs;
    const char *appliance;      /* NULL: look for it */
    int memory_mb;              /* 0: 2048 */
    int timeout;                /* seconds, 0: none */
    /* Out. */
    char tmpdir[PATH_MAX];
    char overlay[PATH_MAX + 32]; /* the fixed-up overlay, to copy from */
    char *report;               /* the fixup report (JSON) */
    size_t report_len;
    double seconds;
};

/* 0 when the guest was fixed up (f->overlay holds the result), 1 when
 * the fixups failed (f->report says why), -1 on an error (message set). */
int fixup_vm_run (struct fixup_vm *f);
/* Remove the overlay and the VM's files. */
void fixup_vm_cleanup (struct fixup_vm *f);

#endif
