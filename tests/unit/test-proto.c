/* SPDX-License-Identifier: MIT */
/*
 * Protocol messages: every message survives an encode/decode round trip;
 * truncated, padded and out-of-range payloads are refused with a message
 * naming the message; job names and JSON are validated as PROTOCOL.md says.
 */
#include <stdlib.h>
#include <string.h>

#include "../../converter/lib/error.h"
#include "../../network/proto.h"
#include "test.h"

static unsigned char space[1 << 16];

static struct wbuf
wb (void)
{
    struct wbuf w = { space, 0, sizeof space, false };

    return w;
}

/* Every strict prefix of a valid payload must be refused, and so must the
 * payload with one extra byte. */
#define CHECK_TRUNCATIONS(dec, w, ...)                                      \
    do {                                                                    \
        size_t n_;                                                          \
        for (n_ = 0; n_ < (w).len; n_++) {                                  \
            CHECK (dec ((w).p, n_, __VA_ARGS__) == -1);                     \
        }                                                                   \
        (w).p[(w).len] = 0;                                                 \
        CHECK (dec ((w).p, (w).len + 1, __VA_ARGS__) == -1);                \
    } while (0)

static void
test_hello (void)
{
    struct msg_hello h = { PROTO_VERSION, "tok-123", "job.1", 1 }, d;
    struct wbuf w = wb ();

    enc_hello (&w, &h);
    CHECK (!w.overflow);
    memset (&d, 0, sizeof d);
    CHECK (dec_hello (w.p, w.len, &d) == 0);
    CHECK (d.version == 1 && strcmp (d.token, "tok-123") == 0 &&
           strcmp (d.job, "job.1") == 0 && d.flags == 1);
    CHECK_TRUNCATIONS (dec_hello, w, &d);
    /* Wrong magic: a plaintext client or another protocol. */
    w.p[0] = 'X';
    CHECK (dec_hello (w.p, w.len, &d) == -1);
    CHECK (strstr (vmc_get_error (), "magic") != NULL);
    /* A control character in the token. */
    w = wb ();
    strcpy (h.token, "a\nb");
    enc_hello (&w, &h);
    CHECK (dec_hello (w.p, w.len, &d) == -1);
    CHECK (strstr (vmc_get_error (), "token") != NULL);
    /* Another version: decoded no further than the version. */
    w = wb ();
    h.version = 7;
    enc_hello (&w, &h);
    CHECK (dec_hello (w.p, w.len, &d) == 0 && d.version == 7);
}

static void
test_job (void)
{
    static struct msg_job j, d;
    const char facts[] = "{\"cpus\": 4, \"nics\": [{\"mac\": \"52:54:00:12:34:56\"}]}";
    struct wbuf w = wb ();

    j.ndisks = 2;
    j.facts = (const unsigned char *) facts;
    j.facts_len = (uint32_t) strlen (facts);
    strcpy (j.disks[0].name, "sda");
    j.disks[0].size = 4ull << 30;
    strcpy (j.disks[1].name, "nvme0n1");
    j.disks[1].size = 512;
    strcpy (j.format, "vmdk");
    enc_job (&w, &j);
    CHECK (dec_job (w.p, w.len, &d) == 0);
    CHECK (d.ndisks == 2 && d.disks[0].size == 4ull << 30 &&
           strcmp (d.disks[1].name, "nvme0n1") == 0 &&
           d.facts_len == j.facts_len &&
           memcmp (d.facts, facts, d.facts_len) == 0 &&
           strcmp (d.format, "vmdk") == 0);
    CHECK_TRUNCATIONS (dec_job, w, &d);
    /* A format name longer than the field is refused. */
    w.len -= 2 + 4;
    put_u16 (&w, 16);
    put_bytes (&w, (const unsigned char *) "0123456789abcdef", 16);
    CHECK (dec_job (w.p, w.len, &d) == -1);
    j.format[0] = '\0';
    w = wb ();

    j.disks[1].size = 0;
    w = wb ();
    enc_job (&w, &j);
    CHECK (dec_job (w.p, w.len, &d) == -1);
    j.disks[1].size = 512;
    j.ndisks = PROTO_MAX_DISKS + 1;
    w = wb ();
    put_u32 (&w, j.ndisks);
    CHECK (dec_job (w.p, w.len, &d) == -1);
    CHECK (strstr (vmc_get_error (), "disk count") != NULL);
    /* Facts that are not JSON. */
    j.ndisks = 1;
    j.facts = (const unsigned char *) "{nope}";
    j.facts_len = 6;
    w = wb ();
    enc_job (&w, &j);
    CHECK (dec_job (w.p, w.len, &d) == -1);
    CHECK (strstr (vmc_get_error (), "JSON") != NULL);
}

static void
test_extent (void)
{
    struct msg_extent e = { 3, 1 << 20, 4096, EXT_KIND_DATA, COMP_NONE,
                            { 1, 2, 3 }, NULL, 0 }, d;
    unsigned char data[4096];
    struct wbuf w = wb ();

    memset (data, 0x5a, sizeof data);
    enc_extent_header (&w, &e);
    put_bytes (&w, data, sizeof data);
    CHECK (dec_extent (w.p, w.len, &d) == 0);
    CHECK (d.disk == 3 && d.offset == 1 << 20 && d.length == 4096 &&
           d.data_len == 4096 && d.hash[2] == 3 &&
           memcmp (d.data, data, 4096) == 0);
    /* Uncompressed data must match the length exactly. */
    CHECK (dec_extent (w.p, w.len - 1, &d) == -1);
    CHECK (dec_extent (w.p, 20, &d) == -1);
    /* A zero extent has no payload. */
    w = wb ();
    e.kind = EXT_KIND_ZERO;
    enc_extent_header (&w, &e);
    CHECK (dec_extent (w.p, w.len, &d) == 0 && d.data_len == 0);
    put_u8 (&w, 0);
    CHECK (dec_extent (w.p, w.len, &d) == -1);
    /* Length limits, kinds, compression methods. */
    w = wb ();
    e.length = PROTO_MAX_EXTENT + 1;
    enc_extent_header (&w, &e);
    CHECK (dec_extent (w.p, w.len, &d) == -1);
    w = wb ();
    e.length = 0;
    enc_extent_header (&w, &e);
    CHECK (dec_extent (w.p, w.len, &d) == -1);
    w = wb ();
    e.length = 10;
    e.kind = 2;
    enc_extent_header (&w, &e);
    CHECK (dec_extent (w.p, w.len, &d) == -1);
    w = wb ();
    e.kind = EXT_KIND_DATA;
    e.compression = 3;
    enc_extent_header (&w, &e);
    put_u8 (&w, 1);
    CHECK (dec_extent (w.p, w.len, &d) == -1);
}

static void
test_small_messages (void)
{
    unsigned char dg[DIGEST_LEN], dg2[DIGEST_LEN];
    struct msg_state s = { 2, { { 100, 0 }, { 7, 1 } } }, sd;
    struct msg_error er;
    uint32_t disk, status;
    uint64_t durable;
    struct wbuf w = wb ();

    enc_ack (&w, 5, 123456789);
    CHECK (dec_ack (w.p, w.len, &disk, &durable) == 0 && disk == 5 &&
           durable == 123456789);
    CHECK_TRUNCATIONS (dec_ack, w, &disk, &durable);

    memset (dg, 0xcd, sizeof dg);
    w = wb ();
    enc_disk_end (&w, 1, dg);
    CHECK (dec_disk_end (w.p, w.len, &disk, dg2) == 0 && disk == 1 &&
           memcmp (dg, dg2, DIGEST_LEN) == 0);
    CHECK_TRUNCATIONS (dec_disk_end, w, &disk, dg2);

    w = wb ();
    enc_disk_done (&w, 1, 1, dg);
    CHECK (dec_disk_done (w.p, w.len, &disk, &status, dg2) == 0 &&
           status == 1);
    CHECK_TRUNCATIONS (dec_disk_done, w, &disk, &status, dg2);
    w = wb ();
    enc_disk_done (&w, 1, 9, dg);
    CHECK (dec_disk_done (w.p, w.len, &disk, &status, dg2) == -1);

    w = wb ();
    enc_state (&w, &s);
    CHECK (dec_state (w.p, w.len, &sd) == 0 && sd.ndisks == 2 &&
           sd.disks[0].durable == 100 && sd.disks[1].state == 1);
    CHECK_TRUNCATIONS (dec_state, w, &sd);

    w = wb ();
    enc_error (&w, PERR_NO_SPACE, "the receiver's disk is full");
    CHECK (dec_error (w.p, w.len, &er) == 0 && er.code == PERR_NO_SPACE &&
           strcmp (er.message, "the receiver's disk is full") == 0);
    CHECK_TRUNCATIONS (dec_error, w, &er);
    CHECK (proto_error_retryable (PERR_NO_SPACE));
    CHECK (!proto_error_retryable (PERR_AUTH));
    CHECK (!proto_error_retryable (PERR_VERIFY));

    /* The builder refuses to overflow rather than write past its end. */
    {
        unsigned char small[4];
        struct wbuf o = { small, 0, sizeof small, false };

        put_u64 (&o, 1);
        CHECK (o.overflow && o.len == 0);
    }
}

static void
test_names_and_json (void)
{
    static const char *const good_names[] = { "a", "job-1", "web01.example",
        "A_b-c.d", "0123456789012345678901234567890123456789012345678901234567890123" };
    static const char *const bad_names[] = { "", ".", "..", ".hidden",
        "-x", "a/b", "../x", "a b", "a\\b", "é",
        "01234567890123456789012345678901234567890123456789012345678901234" };
    static const char *const good_json[] = { "{}", "[]", "0", "-1.5e3",
        "\"x\"", "true", " null ", "{\"a\":[1,2,{\"b\":null}],\"c\":\"\\u00e9\\n\"}",
        "[[[[]]]]", "{\"a\" : 1 , \"b\":2}" };
    static const char *const bad_json[] = { "", "{", "}", "[1,]", "{\"a\":}",
        "{\"a\" 1}", "{1:2}", "01", "-", "1.", "1e", "tru", "\"abc",
        "\"a\\x\"", "[1] [2]", "{\"a\":1,}", "\"\\u12\"", "[\"\x01\"]", "nul" };
    char deep[200];
    size_t i;

    for (i = 0; i < sizeof good_names / sizeof *good_names; i++) {
        CHECK (proto_job_name_valid (good_names[i]));
    }
    for (i = 0; i < sizeof bad_names / sizeof *bad_names; i++) {
        CHECK (!proto_job_name_valid (bad_names[i]));
    }
    for (i = 0; i < sizeof good_json / sizeof *good_json; i++) {
        CHECK (json_valid ((const unsigned char *) good_json[i],
                           strlen (good_json[i])));
    }
    for (i = 0; i < sizeof bad_json / sizeof *bad_json; i++) {
        if (json_valid ((const unsigned char *) bad_json[i],
                        strlen (bad_json[i]))) {
            fprintf (stderr, "accepted bad JSON: %s\n", bad_json[i]);
            CHECK (0);
        }
    }
    /* Nesting is bounded: 64 deep is fine, 100 is refused. */
    memset (deep, '[', 64);
    memset (deep + 64, ']', 64);
    CHECK (json_valid ((unsigned char *) deep, 128));
    memset (deep, '[', 100);
    memset (deep + 100, ']', 100);
    CHECK (!json_valid ((unsigned char *) deep, 200));
}

int
main (void)
{
    test_hello ();
    test_job ();
    test_extent ();
    test_small_messages ();
    test_names_and_json ();
    return test_status ();
}
