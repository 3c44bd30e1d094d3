/* SPDX-License-Identifier: MIT */
/*
 * The image format registry: one line per format, nothing else.
 *
 * lib/image.c includes this list twice, once to declare each
 * `format_<name>` and once to build the registry array.  When two formats'
 * probes give the same score, the one listed first wins.
 */
FORMAT (qcow2)
FORMAT (vmdk)
FORMAT (vhdx)
FORMAT (vhd)
FORMAT (vdi)
FORMAT (raw)
