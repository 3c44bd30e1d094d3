/* SPDX-License-Identifier: MIT */
/*
 * The UEFI fallback boot path.  A converted VM starts with empty NVRAM,
 * so the firmware finds no boot entry and looks for the removable-media
 * path \EFI\BOOT\BOOTX64.EFI on the ESP.  When that is missing, the
 * guest's own loader is copied there: shim (shimx64.efi, with
 * grubx64.efi and mmx64.efi beside it, which shim loads from its own
 * directory), or GRUB alone, or systemd-boot; and GRUB's configuration
 * stub beside it, since a GRUB image built for \EFI\<distro> reads
 * grub.cfg from the directory it was started from.
 */
#include <stdio.h>
#include <string.h>

#include "../lib/error.h"
#include "fixup.h"

#define STEP "uefi"

int
fixup_uefi (const struct inspection *in, const struct guest *g,
            const struct fixup_opts *o, struct fixup_report *rep)
{
    static const char *const extras[] = {
        "grubx64.efi", "mmx64.efi", "grub.cfg", NULL,
    };
    char dir[256], boot[160], dst[300], src[600];
    const char *slash, *loader;

    if (strcmp (in->firmware, "uefi") != 0 || in->esp_mount[0] == '\0' ||
        in->efi_fallback) {
        return 0;
    }
    if (in->efi_loader[0] == '\0') {
        report_warning (rep, STEP, "the ESP has no loader vmconvert knows: "
                        "no fallback boot path was made");
        return 0;
    }
    fixup_say (o, "UEFI: making the fallback boot path");
    slash = strrchr (in->efi_loader, '/');
    snprintf (dir, sizeof dir, "%.*s", (int) (slash - in->efi_loader),
              in->efi_loader);
    loader = slash + 1;
    snprintf (boot, sizeof boot, "%s/EFI/BOOT", in->esp_mount);
    if (guest_mkdirs (g, boot) < 0) {
        report_error (rep, STEP, "%s: %s", boot, vmc_get_error ());
        return -1;
    }
    snprintf (dst, sizeof dst, "%s/BOOTX64.EFI", boot);
    if (guest_copy (g, in->efi_loader, dst) < 0) {
        report_error (rep, STEP, "%s: %s", dst, vmc_get_error ());
        return -1;
    }
    report_change (rep, STEP, dst, "copied from %s", in->efi_loader);
    for (size_t i = 0; extras[i] != NULL; i++) {
        if (strcmp (extras[i], loader) == 0) {
            continue;
        }
        snprintf (src, sizeof src, "%s/%s", dir, extras[i]);
        if (!guest_exists (g, src)) {
            continue;
        }
        snprintf (dst, sizeof dst, "%s/%s", boot, extras[i]);
        if (guest_exists (g, dst)) {
            continue;
        }
        if (guest_copy (g, src, dst) < 0) {
            report_error (rep, STEP, "%s: %s", dst, vmc_get_error ());
            return -1;
        }
        report_change (rep, STEP, dst, "copied from %s", src);
    }
    return 0;
}
