/* SPDX-License-Identifier: MIT */
/*
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of
 * VHDX headers, region tables and log entries (and of iSCSI, ext4, btrfs).
 *
 * crc32c (0, buf, len) is the standard CRC-32C of the buffer ("123456789"
 * gives 0xE3069283).  The pre- and post-inversion are done inside, so a
 * checksum over pieces chains: crc32c (crc32c (0, a, na), b, nb) equals the
 * checksum of a followed by b.  On x86-64 CPUs with SSE 4.2 the crc32
 * instruction is used (chosen once at run time); elsewhere a slicing-by-8
 * table (8 KiB, built on first use) runs at a few bytes per cycle.
 */
#ifndef VMC_CRC32C_H
#define VMC_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t crc32c (uint32_t crc, const void *buf, size_t len);

/* The portable table-driven implementation, always available; the unit
 * test checks that it agrees with the accelerated one. */
uint32_t crc32c_sw (uint32_t crc, const void *buf, size_t len);

#endif
