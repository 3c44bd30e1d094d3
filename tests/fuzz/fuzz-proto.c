/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the transfer protocol's message decoders and the JSON
 * validator.  The first byte picks the message type, the rest is the
 * payload, exactly as the receiver and sender hand payloads to the
 * decoders after reading a frame.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../network/proto.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    static struct msg_job job;
    static struct msg_state state;
    unsigned char digest[DIGEST_LEN];
    struct msg_hello hello;
    struct msg_extent ext;
    struct msg_error err;
    char msg[512];
    uint32_t disk, status;
    uint64_t durable;
    const uint8_t *p = data + 1;
    size_t len = size - 1;

    if (size == 0) {
        return 0;
    }
    switch (data[0] % 13) {
    case MSG_HELLO: (void) dec_hello (p, len, &hello); break;
    case MSG_ERROR: (void) dec_error (p, len, &err); break;
    case MSG_JOB: (void) dec_job (p, len, &job); break;
    case MSG_STATE: (void) dec_state (p, len, &state); break;
    case MSG_EXTENT: (void) dec_extent (p, len, &ext); break;
    case MSG_ACK: (void) dec_ack (p, len, &disk, &durable); break;
    case MSG_DISK_END: (void) dec_disk_end (p, len, &disk, digest); break;
    case MSG_ABORT: (void) dec_abort (p, len, msg, sizeof msg); break;
    case MSG_DISK_DONE:
        (void) dec_disk_done (p, len, &disk, &status, digest);
        break;
    default:
        (void) json_valid (p, len);
        break;
    }
    return 0;
}
