/* SPDX-License-Identifier: MIT */
/*
 * mk-vhdx-pack: pack a mostly-empty image file into a small "packed"
 * input for a sparse-file fuzz harness, or unpack one.
 *
 *   mk-vhdx-pack pack FILE OUT      (FILE up to 64 MiB)
 *   mk-vhdx-pack unpack PACKED OUT
 *
 * A valid VHDX is more than 4 MiB (its regions start at 1 MiB or above),
 * far above the fuzzers' 256 KiB -max_len, yet almost all of it is zeros.
 * Packed form:
 *
 *   0  file size     4  little-endian, at most 64 MiB
 *   4  records, to the end of the input:
 *        offset      4  little-endian
 *        length      2  little-endian
 *        data        length bytes (cut at the end of the input)
 *
 * A harness expands it into a zeroed buffer of the file size (records
 * past it are cut) and opens that.  Packing keeps the non-zero 512-byte
 * sectors, joined into records of up to 32 KiB, so a qemu-img VHDX of a
 * few MiB with little data packs into a few KiB.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../converter/lib/byteorder.h"

#define MAX_FILE (64u << 20)
#define SECT 512u
#define MAX_REC 32768u

static unsigned char *
slurp (const char *path, size_t *len)
{
    FILE *f = fopen (path, "rb");
    unsigned char *buf;
    long n;

    if (f == NULL || fseek (f, 0, SEEK_END) != 0 || (n = ftell (f)) < 0 ||
        fseek (f, 0, SEEK_SET) != 0) {
        perror (path);
        exit (1);
    }
    buf = malloc ((size_t) n + 1);
    if (buf == NULL || fread (buf, 1, (size_t) n, f) != (size_t) n) {
        perror (path);
        exit (1);
    }
    fclose (f);
    *len = (size_t) n;
    return buf;
}

static int
is_zero_sector (const unsigned char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (p[i] != 0) {
            return 0;
        }
    }
    return 1;
}

static int
pack (const char *in, const char *out)
{
    size_t len, off, start, n;
    unsigned char *buf = slurp (in, &len), hdr[6];
    FILE *f;

    if (len > MAX_FILE) {
        fprintf (stderr, "mk-vhdx-pack: %s is larger than 64 MiB\n", in);
        return 1;
    }
    f = fopen (out, "wb");
    if (f == NULL) {
        perror (out);
        return 1;
    }
    put_le32 (hdr, (uint32_t) len);
    fwrite (hdr, 1, 4, f);
    for (off = 0; off < len;) {
        n = len - off < SECT ? len - off : SECT;
        if (is_zero_sector (buf + off, n)) {
            off += n;
            continue;
        }
        start = off;
        while (off < len && off - start < MAX_REC) {
            n = len - off < SECT ? len - off : SECT;
            if (is_zero_sector (buf + off, n)) {
                break;
            }
            off += n;
        }
        /* Trailing zeros of the last sector need not be stored. */
        n = off - start;
        while (n > 0 && buf[start + n - 1] == 0) {
            n--;
        }
        put_le32 (hdr, (uint32_t) start);
        put_le16 (hdr + 4, (uint16_t) n);
        fwrite (hdr, 1, 6, f);
        fwrite (buf + start, 1, n, f);
    }
    free (buf);
    return fclose (f) == 0 ? 0 : 1;
}

static int
unpack (const char *in, const char *out)
{
    size_t len, pos = 4, n;
    unsigned char *p = slurp (in, &len), *file;
    uint32_t size, off;
    FILE *f;

    if (len < 4) {
        fprintf (stderr, "mk-vhdx-pack: %s is too short\n", in);
        return 1;
    }
    size = get_le32 (p);
    if (size > MAX_FILE) {
        size = MAX_FILE;
    }
    file = calloc (1, size + 1);
    if (file == NULL) {
        perror ("calloc");
        return 1;
    }
    while (pos + 6 <= len) {
        off = get_le32 (p + pos);
        n = get_le16 (p + pos + 4);
        pos += 6;
        if (n > len - pos) {
            n = len - pos;
        }
        if (off < size) {
            memcpy (file + off, p + pos, n < size - off ? n : size - off);
        }
        pos += n;
    }
    f = fopen (out, "wb");
    if (f == NULL || fwrite (file, 1, size, f) != size || fclose (f) != 0) {
        perror (out);
        return 1;
    }
    free (file);
    free (p);
    return 0;
}

int
main (int argc, char **argv)
{
    if (argc == 4 && strcmp (argv[1], "pack") == 0) {
        return pack (argv[2], argv[3]);
    }
    if (argc == 4 && strcmp (argv[1], "unpack") == 0) {
        return unpack (argv[2], argv[3]);
    }
    fprintf (stderr, "usage: mk-vhdx-pack pack FILE OUT\n"
             "       mk-vhdx-pack unpack PACKED OUT\n");
    return 2;
}
