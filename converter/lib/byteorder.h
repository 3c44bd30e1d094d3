/* SPDX-License-Identifier: MIT */
/*
 * Loads and stores of little- and big-endian integers at any alignment.
 *
 * On-disk structures are never accessed in place through packed structs:
 * they are decoded field by field with these helpers into host-order
 * structs and validated there.  memcpy keeps unaligned access defined
 * behaviour; compilers turn it into single loads.
 */
#ifndef VMC_BYTEORDER_H
#define VMC_BYTEORDER_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

static inline uint16_t
get_le16 (const void *p)
{
    uint16_t v;

    memcpy (&v, p, sizeof v);
    return le16toh (v);
}

static inline uint32_t
get_le32 (const void *p)
{
    uint32_t v;

    memcpy (&v, p, sizeof v);
    return le32toh (v);
}

static inline uint64_t
get_le64 (const void *p)
{
    uint64_t v;

    memcpy (&v, p, sizeof v);
    return le64toh (v);
}

static inline uint16_t
get_be16 (const void *p)
{
    uint16_t v;

    memcpy (&v, p, sizeof v);
    return be16toh (v);
}

static inline uint32_t
get_be32 (const void *p)
{
    uint32_t v;

    memcpy (&v, p, sizeof v);
    return be32toh (v);
}

static inline uint64_t
get_be64 (const void *p)
{
    uint64_t v;

    memcpy (&v, p, sizeof v);
    return be64toh (v);
}

static inline void
put_le16 (void *p, uint16_t v)
{
    v = htole16 (v);
    memcpy (p, &v, sizeof v);
}

static inline void
put_le32 (void *p, uint32_t v)
{
    v = htole32 (v);
    memcpy (p, &v, sizeof v);
}

static inline void
put_le64 (void *p, uint64_t v)
{
    v = htole64 (v);
    memcpy (p, &v, sizeof v);
}

static inline void
put_be16 (void *p, uint16_t v)
{
    v = htobe16 (v);
    memcpy (p, &v, sizeof v);
}

static inline void
put_be32 (void *p, uint32_t v)
{
    v = htobe32 (v);
    memcpy (p, &v, sizeof v);
}

static inline void
put_be64 (void *p, uint64_t v)
{
    v = htobe64 (v);
    memcpy (p, &v, sizeof v);
}

#endif
