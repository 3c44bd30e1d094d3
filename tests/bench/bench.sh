#!/bin/bash
# tests/bench/bench.sh [SECTION...]   (what `make bench` runs)
#
# vmconvert against its peers on this machine.  Sections (all by default):
#
#   convert   vmconvert convert -O qcow2 vs qemu-img convert -O qcow2 (its
#             defaults, and -W -m 16), from raw, VMDK and VHDX versions of a
#             realistic 4 GiB guest disk and of a fully random 4 GiB disk
#   send      vmconvert send -> vmconvert receive --format qcow2 over
#             loopback TLS (plain and --compress zstd) vs nbdkit
#             --tls=require (PSK, AES-GCM) -> nbdcopy -> qemu-nbd qcow2, and
#             two more peers for reference (nbdcopy -> raw file, qemu-img
#             convert from nbds://), from the raw disks; each pipeline runs
#             in a private network namespace (tests/bench/pair.sh) so that
#             the loopback counters give its bytes on the wire
#   appliance the appliance ISO booted under QEMU: image sizes, seconds to
#             the first byte received, throughput inside the appliance
#   fixup     convert --fixup on the test guests (the appliance in QEMU),
#             beside qemu-img convert of the same image (no fixups)
#
# A section is a function section_NAME that builds its inputs (cached in
# build/bench/, rebuilt only when missing), then calls run_group once per
# group of commands to compare.  run_group runs the commands side by side
# in interleaved rounds (A B C A B C ...): one untimed warm-up round (it
# also loads the source into the page cache and checks the output), then
# BENCH_ROUNDS timed rounds.  Every run is one line of build/bench/runs.tsv;
# the tables are made from those lines, printed at the end and written to
# build/bench/results.md.  BENCHMARKS.md explains the method.
#
# Environment (defaults in brackets):
#   BENCH_ROUNDS        timed rounds per group [3]
#   BENCH_SIZE          virtual size of the test disks [4G]
#   BENCH_SEED          seed of the generated disks [vmconvert-bench-1]
#   BENCH_DISKS         disks to use [guest random]
#   BENCH_SOURCES       source formats [raw vmdk vhdx]
#   BENCH_OUT_FORMAT    output format [qcow2] (raw: test the harness while
#                       the qcow2 writer does not exist)
#   BENCH_OUT_DIR       where outputs go [/dev/shm/vmconvert-bench.PID when
#                       tmpfs has room, else build/bench/out]
#   BENCH_PRETOUCH_MIB  memory touched and freed before every run [virtual
#                       size + 256 MiB, capped by free memory; 0 disables]
#   BENCH_VERIFY        1: after the warm-up, check vmconvert's output with
#                       qemu-img compare [1]
#   BENCH_TIMEOUT       seconds before a run is killed [600]
#   BENCH_SEND_PEERS    send section: peer pipelines [nbdcopy-qemu-nbd
#                       nbdcopy-raw qemu-img] (the first is the one of the
#                       goal)
#   VMCONVERT           the binary [build/vmconvert]
#
# Exit status: 0 when the bench ran, even if goals are missed (they are
# listed at the end); 1 when it could not run (missing tool, no inputs).
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
B=$top/build/bench
VMCONVERT=${VMCONVERT:-$top/build/vmconvert}
ROUNDS=${BENCH_ROUNDS:-3}
SIZE=${BENCH_SIZE:-4G}
SEED=${BENCH_SEED:-vmconvert-bench-1}
DISKS=${BENCH_DISKS:-guest random}
SOURCES=${BENCH_SOURCES:-raw vmdk vhdx}
OUT_FORMAT=${BENCH_OUT_FORMAT:-qcow2}
VERIFY=${BENCH_VERIFY:-1}
TIMEOUT=${BENCH_TIMEOUT:-600}
ALL_SECTIONS="convert send appliance fixup"
SEND_PEERS=${BENCH_SEND_PEERS:-nbdcopy-qemu-nbd nbdcopy-raw qemu-img}

# Goals (see BENCHMARKS.md).
GOAL_RATIO=1.0          # convert: qemu-img time / vmconvert time, every group
GOAL_MAP_RATIO=2.5      # convert: qemu-img time / vmconvert (used blocks)
GOAL_SEND_RATIO=3.0     # send: nbdkit + nbdcopy time / vmconvert time (used
                        # blocks; 1.5 was the goal before the maps)
GOAL_RSS_MIB=64         # vmconvert peak RSS (send: each side)

die () { echo "bench: $*" >&2; exit 1; }
say () { printf 'bench: %s %s\n' "$(date +%T)" "$*" >&2; }

# ---------------------------------------------------------------- setup

setup () {
    local t need

    for t in qemu-img /usr/bin/time timeout numfmt awk cc; do
        command -v "$t" >/dev/null 2>&1 || die "missing tool: $t"
    done
    [ -x "$VMCONVERT" ] || die "no $VMCONVERT: run make all first"
    [[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be >= 1"
    VSIZE=$(numfmt --from=iec "$SIZE") || die "bad BENCH_SIZE: $SIZE"
    mkdir -p "$B" || die "cannot create $B"

    # The helper (random data, pretouch, ...), rebuilt when its source
    # changes.
    BT=$B/benchtool
    if [ ! -x "$BT" ] || [ "$top/tests/bench/benchtool.c" -nt "$BT" ]; then
        ${CC:-cc} -std=gnu11 -O2 -Wall -Wextra -D_GNU_SOURCE \
            -D_FILE_OFFSET_BITS=64 -o "$BT" "$top/tests/bench/benchtool.c" \
            -lm || die "cannot build benchtool"
    fi

    # Outputs: tmpfs when it has room for the largest output (see
    # BENCHMARKS.md, "first-touch effect" and "outputs in tmpfs").
    need=$(( VSIZE + VSIZE / 8 + (256 << 20) ))
    if [ -n "${BENCH_OUT_DIR:-}" ]; then
        OUT_DIR=$BENCH_OUT_DIR
        OWN_OUT_DIR=0
        mkdir -p "$OUT_DIR" || die "cannot create $OUT_DIR"
    elif [ -d /dev/shm ] &&
         [ "$(df -B1 --output=avail /dev/shm 2>/dev/null | tail -1)" -gt "$need" ] 2>/dev/null; then
        OUT_DIR=$(mktemp -d /dev/shm/vmconvert-bench.XXXXXX) || die "mktemp"
        OWN_OUT_DIR=1
    else
        OUT_DIR=$B/out
        OWN_OUT_DIR=0
        mkdir -p "$OUT_DIR" || die "cannot create $OUT_DIR"
    fi
    OUT_FS=$(stat -f -c %T "$OUT_DIR")
    trap cleanup EXIT
    trap 'exit 130' INT TERM

    # Pretouch: enough for the largest output plus slack, but never so much
    # that the kernel must drop the cached source to make room.
    if [ -n "${BENCH_PRETOUCH_MIB:-}" ]; then
        PRETOUCH_MIB=$BENCH_PRETOUCH_MIB
    else
        PRETOUCH_MIB=$(( VSIZE / 1048576 + 256 ))
    fi

    : >"$B/pretouch.log"
    RUNS=$B/runs.tsv
    : >"$RUNS"
    RESULTS=$B/results.md
    GOALS=$B/goals.txt
    : >"$GOALS"
    TABLES=$B/tables.md
    : >"$TABLES"
    START=$(date +%s)
    BUSY=0
    LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
}

cleanup () {
    if [ "${OWN_OUT_DIR:-0}" = 1 ] && [ -n "${OUT_DIR:-}" ]; then
        rm -rf "$OUT_DIR"
    fi
}

machine_info () {
    local cpu mem
    cpu=$(LC_ALL=C lscpu 2>/dev/null | awk -F: '/^Model name/ { sub(/^ +/, "", $2); print $2; exit }')
    mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- CPU: ${cpu:-unknown}, $(nproc) cores online ($(grep -c '^processor' /proc/cpuinfo) in /proc/cpuinfo)"
    echo "- RAM: $mem; kernel $(uname -r); $(sed -n 's/^PRETTY_NAME=//p' /etc/os-release 2>/dev/null | tr -d '"')"
    echo "- qemu-img: $(qemu-img --version | head -1)"
    [ -n "${SEND_NBD_VERSIONS:-}" ] && echo "- NBD peers: $SEND_NBD_VERSIONS"
    echo "- vmconvert: $("$VMCONVERT" --version 2>/dev/null | head -1), git $(git -C "$top" describe --always --dirty 2>/dev/null || echo '?')"
    echo "- Outputs in: $OUT_DIR ($OUT_FS); memory pretouched before each run: $PRETOUCH_MIB MiB (capped by free memory); rounds: 1 warm-up + $ROUNDS"
    echo "- Load average at start: $LOAD_START; at end: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# ---------------------------------------------------------------- inputs

# make_input FILE CMD...: run CMD (which writes FILE.part) unless FILE
# exists, then rename FILE.part to FILE, so that an interrupted build is
# never mistaken for a good input.
make_input () {
    local file=$1
    shift
    [ -s "$file" ] && return 0
    say "building $(basename "$file") (cached in $B)"
    rm -f "$file.part"
    if ! "$@"; then
        rm -f "$file.part"
        return 1
    fi
    mv "$file.part" "$file"
}

# The same file name (which VMDK's embedded descriptor records) for the
# temporary and the final file: build in a directory of its own.
qemu_img_make () {
    local fmt=$1 src=$2 dst=$3 tmpd rc
    tmpd=$(mktemp -d "$B/.make.XXXXXX") || return 1
    qemu-img convert -f raw -O "$fmt" "$src" "$tmpd/$(basename "$dst")"
    rc=$?
    [ $rc = 0 ] && mv "$tmpd/$(basename "$dst")" "$dst.part"
    rm -rf "$tmpd"
    return $rc
}

# disk_file DISK FMT: path of a cached input.
disk_file () {
    local tag=$SIZE
    [ "$SEED" = vmconvert-bench-1 ] || tag=$SIZE-$SEED
    echo "$B/$1-$tag.$2"
}

# build_inputs [FORMATS]: the raw disks of BENCH_DISKS and their versions
# in FORMATS (default BENCH_SOURCES).
build_inputs () {
    local d f raw missing=0 avail formats=${1:-$SOURCES}
    # Room for the missing inputs (each about the virtual size) + 1 GiB.
    for d in $DISKS; do
        # shellcheck disable=SC2086 # one word per format
        for f in $(printf '%s\n' raw $formats | sort -u); do
            [ -s "$(disk_file "$d" "$f")" ] || missing=$(( missing + 1 ))
        done
    done
    avail=$(df -B1 --output=avail "$B" | tail -n 1)
    if [ "$missing" -gt 0 ] &&
       [ "$avail" -lt $(( missing * (VSIZE + VSIZE / 16) + (1 << 30) )) ]; then
        die "$missing inputs to build need ~$(( missing * (VSIZE + VSIZE / 16) / 1000000000 + 1 )) GB in $B; $(( avail / 1000000000 )) GB free"
    fi
    for d in $DISKS; do
        raw=$(disk_file "$d" raw)
        case $d in
        guest)
            # make-guest-disk.sh itself writes RAW.part and renames it.
            if [ ! -s "$raw" ]; then
                say "building $(basename "$raw") (cached in $B)"
                BENCHTOOL=$BT "$top/tests/bench/make-guest-disk.sh" \
                    "$SIZE" "$raw" "$SEED" >/dev/null || return 1
            fi
            ;;
        random)
            make_input "$raw" "$BT" fill "$raw.part" 0 "$VSIZE" "$SEED" \
                random-disk || return 1
            ;;
        *) die "unknown disk '$d' in BENCH_DISKS (guest, random)" ;;
        esac
        for f in $formats; do
            [ "$f" = raw ] && continue
            make_input "$(disk_file "$d" "$f")" qemu_img_make "$f" "$raw" \
                "$(disk_file "$d" "$f")" || return 1
        done
    done
}

# ---------------------------------------------------------------- runs

# pretouch: touch and free memory right before a timed run, so that the
# run's page-cache or tmpfs pages come from memory the guest holds (see
# BENCHMARKS.md).  Capped so that the cached source stays cached.
pretouch () {
    local avail src_mib=$1 mib=$PRETOUCH_MIB t0
    [ "$mib" -gt 0 ] || return 0
    avail=$(awk '/^MemAvailable/ { print int($2 / 1024) }' /proc/meminfo)
    if [ $(( avail - src_mib - 1024 )) -lt "$mib" ]; then
        mib=$(( avail - src_mib - 1024 ))
    fi
    if [ "$mib" -gt 0 ]; then
        t0=$(date +%s%N)
        "$BT" pretouch "$mib"
        echo "$mib MiB $(( ($(date +%s%N) - t0) / 1000000 )) ms" >>"$B/pretouch.log"
    fi
    return 0
}

# record_run ROUND INDEX STATUS WALL USER SYS RSS APPARENT ALLOCATED LOAD
#   MESSAGE [RSS_RX WIRE NOTE]: append a line to runs.tsv.
record_run () {
    local msg=${11}
    msg=${msg//|/\/}
    msg=${msg//$'\t'/ }
    # section group id round status wall user sys rss_kb apparent
    # allocated load-average-at-start message rss_rx_kb wire_bytes note
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$G_SECTION" "$G_NAME" "${G_IDS[$2]}" "$1" "$3" "$4" "$5" "$6" "$7" \
        "$8" "$9" "${10}" "$msg" "${12:--}" "${13:--}" "${14:-}" >>"$RUNS"
}

# one_run ROUND INDEX: run command INDEX of the current group once, append
# its line to runs.tsv, set LAST_OUT to its output; return its exit
# status.  The warm-up round (0) is not timed and needs no pretouch.
one_run () {
    local round=$1 i=$2 tf=$OUT_DIR/.time el=$OUT_DIR/.stderr
    local rc line wall user sys rss app alloc msg status argv load
    local out=$G_OUT src=$G_SRC fmt=$G_SRC_FMT
    LAST_OUT=$out
    rm -f "$out" "$tf" "$el"
    [ "$round" = 0 ] || pretouch "$G_SRC_MIB"
    load=$(cut -d' ' -f1 /proc/loadavg)
    eval "argv=(${G_CMDS[$i]})"
    timeout -k 10 "$TIMEOUT" /usr/bin/time -f '%e %U %S %M' -o "$tf" -- \
        "${argv[@]}" >/dev/null 2>"$el"
    rc=$?
    line=$(tail -n 1 "$tf" 2>/dev/null)
    read -r wall user sys rss <<<"$line"
    if [ $rc = 0 ] && [[ ${wall:-} =~ ^[0-9.]+$ ]]; then
        status=ok
        msg=
        app=$(stat -c %s "$out" 2>/dev/null || echo 0)
        alloc=$(stat -c '%b %B' "$out" 2>/dev/null | awk '{ print $1 * $2 }')
    else
        status=FAILED
        [ $rc = 124 ] && msg="timed out after $TIMEOUT s" ||
            msg="exit $rc: $(grep -v '^Command exited' "$el" | head -n 1 | cut -c1-120)"
        wall=- user=- sys=- rss=- app=- alloc=-
    fi
    record_run "$round" "$i" "$status" "$wall" "$user" "$sys" "$rss" "$app" \
        "$alloc" "$load" "$msg"
    return $rc
}

# pair_run ROUND INDEX: the same for a network pipeline (send section):
# G_CMDS[INDEX] holds tests/bench/pair.sh's arguments; the pipeline runs in
# a fresh directory ($OUT_DIR/pair, removed before the next run) and, when
# possible, in a network namespace of its own.  Also records the peak RSS
# of the receiving side and the bytes on the wire.
pair_run () {
    local round=$1 i=$2 pd=$OUT_DIR/pair res=$OUT_DIR/.pair el=$OUT_DIR/.stderr
    local rc wall user sys rss rss_rx wire out note app alloc msg status argv load
    local src=$G_SRC fmt=$G_SRC_FMT verbose=0
    rm -rf "$pd" "$res" "$el"
    mkdir -p "$pd" || return 1
    LAST_OUT=
    [ "$round" = 0 ] && verbose=1
    [ "$round" = 0 ] || pretouch "$G_SRC_MIB"
    load=$(cut -d' ' -f1 /proc/loadavg)
    eval "argv=(${G_CMDS[$i]})"
    PAIR_SRC=$src PAIR_FMT=$fmt PAIR_SIZE=$VSIZE PAIR_DIR=$pd \
    PAIR_KEYS=$SEND_KEYS PAIR_NETNS=$SEND_NETNS PAIR_VERBOSE=$verbose \
    VMCONVERT=$VMCONVERT \
        timeout -k 10 "$TIMEOUT" "${SEND_UNSHARE[@]}" "$top/tests/bench/pair.sh" \
        "${argv[@]}" >"$res" 2>"$el"
    rc=$?
    IFS=$'\t' read -r wall user sys rss rss_rx wire out note <"$res"
    if [ $rc = 0 ] && [[ ${wall:-} =~ ^[0-9.]+$ ]] && [ -f "${out:-}" ]; then
        status=ok
        msg=
        LAST_OUT=$out
        app=$(stat -c %s "$out" 2>/dev/null || echo 0)
        alloc=$(stat -c '%b %B' "$out" 2>/dev/null | awk '{ print $1 * $2 }')
    else
        status=FAILED
        [ $rc = 124 ] && msg="timed out after $TIMEOUT s" ||
            msg="exit $rc: $(grep -v '^Command exited' "$el" | tail -n 1 | cut -c1-120)"
        wall=- user=- sys=- rss=- rss_rx=- wire=- app=- alloc=- note=
    fi
    record_run "$round" "$i" "$status" "$wall" "$user" "$sys" "$rss" "$app" \
        "$alloc" "$load" "$msg" "$rss_rx" "$wire" "$note"
    return $rc
}

# run_group: the caller sets
#   G_SECTION G_NAME   section and group name ("guest raw->qcow2")
#   G_SRC G_OUT        source file and output path (commands use "$src",
#                      "$out")
#   G_SRC_FMT G_OUT_FMT  their formats (commands use "$fmt"; the check
#                      passes both to qemu-img compare, never probes)
#   G_IDS G_LABELS G_CMDS   arrays: id, table label, shell words (eval'd
#                      with $src and $out; no pipelines: the command is
#                      run by /usr/bin/time directly)
#   G_CHECK            array: 1 = verify the warm-up output (qemu-img
#                      compare with the source); 2 = the same against the
#                      source with its unused ranges zeroed (a mapped copy;
#                      see mapped_ref)
#   G_REF              index of the reference command (vmconvert); ratios
#                      are other commands' times over its time
#   G_GOALS            optional array: the ratio each command must reach
#                      ("" = none; default: GOAL_RATIO for every command
#                      but the reference)
#   G_RSS_GOAL         optional array: 1 = the command's peak RSS (each
#                      side for a pipeline) must stay within GOAL_RSS_MIB
#                      (default: the reference only)
#   G_RUNNER           one_run (default) or pair_run (network pipelines:
#                      G_CMDS are tests/bench/pair.sh arguments, G_OUT is
#                      unused, G_OUT_FMT is the output format of every
#                      command, or G_OUT_FMTS an array of them)
# Commands that fail in the warm-up round are not run again; their rows say
# FAILED.
# mapped_ref: print the path of $G_SRC's mapped reference (raw), made once
# per source from `vmconvert map --json` by mapped-ref.py.
mapped_ref () {
    local ref=$B/$(basename "$G_SRC").mapped.raw
    if [ ! -f "$ref" ]; then
        "$VMCONVERT" map --json -f "$G_SRC_FMT" "$G_SRC" >"$ref.json" 2>/dev/null &&
            qemu-img convert -f "$G_SRC_FMT" -O raw "$G_SRC" "$ref.src" &&
            "$top/tests/bench/mapped-ref.py" "$ref.src" "$ref.json" "$ref" ||
            { rm -f "$ref" "$ref.src"; return 1; }
        rm -f "$ref.src"
    fi
    echo "$ref"
}

run_group () {
    local n=${#G_IDS[@]} r i runner=${G_RUNNER:-one_run} ofmt
    local -a skip=()
    G_VERIFIED=()
    G_SRC_MIB=$(( $(stat -c %s "$G_SRC") / 1048576 ))
    say "$G_NAME: warm-up"
    for (( i = 0; i < n; i++ )); do
        skip[i]=0
        G_VERIFIED[i]=
        if [ "${G_CHECK[$i]:-0}" != 0 ] && [ "$VERIFY" = 1 ]; then
            G_VERIFIED[i]=pending
        fi
        if ! "$runner" 0 "$i"; then
            skip[i]=1
            say "  ${G_LABELS[$i]}: FAILED ($(tail -n 1 "$RUNS" | cut -f13))"
            continue
        fi
        if [ "${G_VERIFIED[$i]}" = pending ]; then
            ofmt=${G_OUT_FMTS[$i]:-$G_OUT_FMT}
            local ref=$G_SRC reffmt=$G_SRC_FMT
            # A mapped copy (G_CHECK 2) equals the source on the used
            # ranges and is zero elsewhere.
            if [ "${G_CHECK[$i]}" = 2 ]; then
                ref=$(mapped_ref) || ref=
                reffmt=raw
            fi
            if [ -n "$ref" ] && qemu-img compare -q -f "$reffmt" -F "$ofmt" \
                   "$ref" "$LAST_OUT" >/dev/null 2>&1; then
                G_VERIFIED[i]=identical
            else
                G_VERIFIED[i]=DIFFERS
                say "  ${G_LABELS[$i]}: output DIFFERS from the source"
            fi
        fi
    done
    clean_outputs
    for (( r = 1; r <= ROUNDS; r++ )); do
        say "$G_NAME: round $r/$ROUNDS"
        for (( i = 0; i < n; i++ )); do
            [ "${skip[$i]}" = 1 ] && continue
            "$runner" "$r" "$i" >/dev/null || say "  ${G_LABELS[$i]}: FAILED in round $r"
        done
    done
    clean_outputs
    report_group
}

clean_outputs () {
    rm -f "${G_OUT:-}" "${LAST_OUT:-}"
    rm -rf "$OUT_DIR/pair"
}

# ---------------------------------------------------------------- report

# median < numbers: the median, "-" when there are none.
median () {
    sort -g | awk '{ a[NR] = $1 }
        END { if (NR == 0) { print "-"; exit }
              if (NR % 2) print a[(NR + 1) / 2]
              else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# Field of the timed, successful runs of command ID in the current group.
runs_field () {
    awk -F'\t' -v s="$G_SECTION" -v g="$G_NAME" -v id="$1" -v f="$2" \
        '$1 == s && $2 == g && $3 == id && $4 > 0 && $5 == "ok" { print $f }' "$RUNS"
}

report_group () {
    local n=${#G_IDS[@]} i id ref=${G_IDS[$G_REF]} wall mn mx cpu rss app alloc
    local ratio mbs status ver label load goal rss_rx wire rsscheck cols rows=""
    local pair=0
    [ "${G_RUNNER:-one_run}" = pair_run ] && pair=1
    for (( i = 0; i < n; i++ )); do
        id=${G_IDS[$i]}
        label=${G_LABELS[$i]}
        status=$(awk -F'\t' -v s="$G_SECTION" -v g="$G_NAME" -v id="$id" \
            '$1 == s && $2 == g && $3 == id && $5 == "FAILED" { print $13; exit }' "$RUNS")
        wall=$(runs_field "$id" 6 | median)
        if [ -n "$status" ] || [ "$wall" = - ]; then
            cols="- | - | - | - | - | - | - |"
            [ $pair = 1 ] && cols="- | - | - | - | - | - | - | - | - |"
            rows+="| $G_NAME | $label | **FAILED** ${status:-no timed run} | $cols"$'\n'
            if [ "$i" = "$G_REF" ] || [ -n "${G_GOALS[$i]:-}" ]; then
                echo "MISSED $G_NAME: ${label} FAILED (${status:-no timed run})" >>"$GOALS"
            fi
            continue
        fi
        mn=$(runs_field "$id" 6 | sort -g | head -n 1)
        mx=$(runs_field "$id" 6 | sort -g | tail -n 1)
        cpu=$(awk -F'\t' -v s="$G_SECTION" -v g="$G_NAME" -v id="$id" \
            '$1 == s && $2 == g && $3 == id && $4 > 0 && $5 == "ok" { print $7 + $8 }' "$RUNS" | median)
        rss=$(runs_field "$id" 9 | sort -g | tail -n 1)
        rss_rx=$(runs_field "$id" 14 | sort -g | tail -n 1)
        wire=$(runs_field "$id" 15 | median)
        app=$(runs_field "$id" 10 | tail -n 1)
        alloc=$(runs_field "$id" 11 | tail -n 1)
        load=$(runs_field "$id" 12 | median | awk '{ printf "%.1f", $1 }')
        if awk -v l="$load" -v n="$(nproc)" 'BEGIN { exit !(l > n) }'; then
            BUSY=1
        fi
        mbs=$(awk -v v="$VSIZE" -v w="$wall" 'BEGIN { printf "%.0f", (w > 0 ? v / w / 1e6 : 0) }')
        if [ "${G_GOALS+set}" = set ]; then
            goal=${G_GOALS[$i]:-}
        elif [ "$i" != "$G_REF" ]; then
            goal=$GOAL_RATIO
        else
            goal=
        fi
        if [ "$i" = "$G_REF" ]; then
            ratio="1.00 (ref.)"
        else
            # Per round: this command's time over the reference's.
            ratio=$(awk -F'\t' -v s="$G_SECTION" -v g="$G_NAME" -v id="$id" -v ref="$ref" '
                $1 == s && $2 == g && $4 > 0 && $5 == "ok" {
                    if ($3 == id) t[$4] = $6; if ($3 == ref) v[$4] = $6 }
                END { for (r in t) if ((r in v) && v[r] > 0) print t[r] / v[r] }' "$RUNS" | median)
            if [ "$ratio" = - ]; then
                ratio="-"
                [ -n "$goal" ] &&
                    echo "MISSED $G_NAME: no round with both $label and ${G_LABELS[$G_REF]}" >>"$GOALS"
            else
                ratio=$(printf '%.2f' "$ratio")
                if [ -n "$goal" ] &&
                   awk -v x="$ratio" -v g="$goal" 'BEGIN { exit !(x < g) }'; then
                    echo "MISSED $G_NAME: $label time / ${G_LABELS[$G_REF]} time = $ratio (goal >= $goal)" >>"$GOALS"
                    ratio="**$ratio**"
                fi
            fi
        fi
        ver=${G_VERIFIED[$i]:-}
        if [ "$ver" = DIFFERS ]; then
            echo "MISSED $G_NAME: $label output DIFFERS from the source (qemu-img compare)" >>"$GOALS"
            label="$label (output DIFFERS)"
        elif [ "$ver" = identical ]; then
            label="$label ✓"
        fi
        if [ "${G_RSS_GOAL+set}" = set ]; then
            rsscheck=${G_RSS_GOAL[$i]:-0}
        else
            rsscheck=0
            [ "$i" = "$G_REF" ] && rsscheck=1
        fi
        if [ "$rsscheck" = 1 ] && [ "$rss" -gt $(( GOAL_RSS_MIB * 1024 )) ]; then
            if [ $pair = 1 ]; then
                echo "MISSED $G_NAME: $label sending side peak RSS $(( rss / 1024 )) MiB (goal <= $GOAL_RSS_MIB MiB)" >>"$GOALS"
            else
                echo "MISSED $G_NAME: $label peak RSS $(( rss / 1024 )) MiB (goal <= $GOAL_RSS_MIB MiB)" >>"$GOALS"
            fi
        fi
        if [ $pair = 1 ] && [ "$rsscheck" = 1 ] && [[ $rss_rx =~ ^[0-9]+$ ]] &&
           [ "$rss_rx" -gt $(( GOAL_RSS_MIB * 1024 )) ]; then
            echo "MISSED $G_NAME: $label receiving side peak RSS $(( rss_rx / 1024 )) MiB (goal <= $GOAL_RSS_MIB MiB)" >>"$GOALS"
        fi
        if [ $pair = 1 ]; then
            rows+=$(printf '| %s | %s | %.2f | %.2f-%.2f | %.2f | %.0f | %.1f | %.1f | %.0f | %.0f / %.0f | %s | %s |' \
                "$G_NAME" "$label" "$wall" "$mn" "$mx" "$cpu" "$mbs" \
                "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" \
                "$(awk -v k="$rss_rx" 'BEGIN { print k / 1024 }')" \
                "$(awk -v b="$wire" 'BEGIN { print b / 1e6 }')" \
                "$(awk -v b="$app" 'BEGIN { print b / 1e6 }')" \
                "$(awk -v b="$alloc" 'BEGIN { print b / 1e6 }')" "$ratio" "$load")$'\n'
        else
            rows+=$(printf '| %s | %s | %.2f | %.2f-%.2f | %.2f | %s | %.1f | %.0f / %.0f | %s | %s |' \
                "$G_NAME" "$label" "$wall" "$mn" "$mx" "$cpu" "$mbs" \
                "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" \
                "$(awk -v b="$app" 'BEGIN { print b / 1e6 }')" \
                "$(awk -v b="$alloc" 'BEGIN { print b / 1e6 }')" "$ratio" "$load")$'\n'
        fi
    done
    printf '%s' "$rows" >>"$SECTION_ROWS"
    printf '%s' "$rows" >&2
}

table_header () {
    echo "| group | command | wall median (s) | min-max (s) | CPU user+sys (s) | MB/s | peak RSS (MiB) | output MB (apparent / allocated) | time / vmconvert time | load |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
}

pair_table_header () {
    echo "| group | pipeline | wall median (s) | min-max (s) | CPU user+sys, all processes (s) | MB/s | peak RSS sending side (MiB) | peak RSS receiving side (MiB) | on the wire (MB) | output MB (apparent / allocated) | time / vmconvert time | load |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
}

# ---------------------------------------------------------------- sections

section_convert () {
    local d f src
    SECTION_ROWS=$B/section-convert.md
    : >"$SECTION_ROWS"
    build_inputs || die "could not build the inputs"
    unset G_GOALS G_RSS_GOAL G_RUNNER G_OUT_FMTS
    G_SECTION=convert
    G_OUT=$OUT_DIR/out.$OUT_FORMAT
    G_IDS=(vmconvert vmconvert-all qemu-img qemu-img-W)
    G_LABELS=("vmconvert (used blocks)" "vmconvert --all-blocks" "qemu-img" "qemu-img -W -m 16")
    # shellcheck disable=SC2016 # expanded by one_run's eval
    G_CMDS=('"$VMCONVERT" convert -f "$fmt" -O "$OUT_FORMAT" "$src" "$out"'
            '"$VMCONVERT" convert --all-blocks -f "$fmt" -O "$OUT_FORMAT" "$src" "$out"'
            'qemu-img convert -f "$fmt" -O "$OUT_FORMAT" "$src" "$out"'
            'qemu-img convert -W -m 16 -f "$fmt" -O "$OUT_FORMAT" "$src" "$out"')
    G_CHECK=(2 1 0 0)
    G_GOALS=("" "" "$GOAL_MAP_RATIO" "")
    G_RSS_GOAL=(1 1 0 0)
    G_REF=0
    for d in $DISKS; do
        for f in $SOURCES; do
            src=$(disk_file "$d" "$f")
            G_SRC=$src
            G_SRC_FMT=$f
            G_OUT_FMT=$OUT_FORMAT
            G_NAME="$d $f->$OUT_FORMAT"
            run_group
        done
    done
    {
        echo "### convert: to $OUT_FORMAT"
        echo
        echo "Virtual size $(numfmt --to=iec "$VSIZE") ($VSIZE bytes); MB/s = virtual size / median wall time (MB = 10^6 bytes)."
        echo "Last column: the command's time over vmconvert's, taken round by round, median (>= 1.00: vmconvert is faster)."
        echo "✓: vmconvert's output checked with qemu-img compare: identical to the source (--all-blocks), or to the source with the ranges vmconvert map calls unused zeroed (used blocks; the map itself is judged against each filesystem's own tools by tests/part/test-map-guests.sh)."
        echo "load: median 1-minute load average when the runs started (other users of the machine)."
        echo
        table_header
        cat "$SECTION_ROWS"
        echo
        for d in $DISKS; do
            src=$(disk_file "$d" raw)
            if [ -f "$B/$(basename "$src").mapped.raw.json" ]; then
                echo "The $d disk: $(jq .disks[0].used_bytes "$B/$(basename "$src").mapped.raw.json") bytes in use (vmconvert map; goal: a used-blocks output at most 1.15 times that)."
                echo
            fi
            [ -f "$src.stats" ] || continue
            echo "The $d disk ($(basename "$src").stats):"
            echo
            echo '```'
            grep -v '^#' "$src.stats"
            echo '```'
            echo
        done
    } >>"$TABLES"
}

# send_setup: tools, keys (made once in build/bench/keys), the network
# namespace.
send_setup () {
    local t k=$B/keys
    for t in nbdkit nbdcopy qemu-nbd openssl unshare; do
        command -v "$t" >/dev/null 2>&1 || die "missing tool for the send section: $t"
    done
    if [ ! -s "$k/keys.psk" ]; then
        rm -rf "$k" "$k.part"
        if ! mkdir -p "$k.part" || ! chmod 700 "$k.part"; then
            die "cannot create $k"
        fi
        # The receiver's certificate (a sender trusts it by fingerprint).
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
            -nodes -keyout "$k.part/key.pem" -out "$k.part/cert.pem" \
            -days 36500 -subj /CN=vmconvert-bench >/dev/null 2>&1 ||
            die "openssl: cannot make the bench certificate"
        echo "bench reusable" >"$k.part/tokens"
        # nbdkit --tls-psk, libnbd tls-psk-file and qemu's tls-creds-psk
        # (dir/keys.psk) all read USER:HEXKEY.
        printf 'bench:%s\n' "$(openssl rand -hex 32)" >"$k.part/keys.psk"
        mv "$k.part" "$k" || die "cannot create $k"
    fi
    # GnuTLS (nbdkit, libnbd, qemu) negotiates ChaCha20-Poly1305 for a
    # TLS 1.3 PSK by default, 15x slower than AES-GCM in this nettle (see
    # BENCHMARKS.md): disable it, as the peers baseline did.
    printf '[overrides]\ntls-disabled-cipher = CHACHA20-POLY1305\n' >"$k/gnutls.cfg"
    SEND_KEYS=$k
    SEND_NBD_VERSIONS="$(nbdkit --version 2>/dev/null | head -n 1), $(nbdcopy --version 2>/dev/null | head -n 1), $(qemu-nbd --version 2>/dev/null | head -n 1)"
    # A network namespace per run: lo's byte counters then count the
    # pipeline's traffic and nothing else (other users of the machine run
    # their own tests on 127.0.0.1).
    if command -v ip >/dev/null 2>&1 &&
       unshare -n sh -c 'ip link set lo up' >/dev/null 2>&1; then
        SEND_UNSHARE=(unshare -n --)
        SEND_NETNS=1
        SEND_WIRE_HOW="a private network namespace per run (unshare -n): lo's byte counters (/proc/net/dev) count this pipeline's packets only"
    elif command -v ip >/dev/null 2>&1 &&
         unshare -r -n sh -c 'ip link set lo up' >/dev/null 2>&1; then
        SEND_UNSHARE=(unshare -r -n --)
        SEND_NETNS=1
        SEND_WIRE_HOW="a private network namespace per run (unshare -r -n): lo's byte counters (/proc/net/dev) count this pipeline's packets only"
    else
        SEND_UNSHARE=()
        SEND_NETNS=0
        SEND_WIRE_HOW="**no network namespace available: lo's byte counters of the whole machine, which include any other loopback traffic during the run**"
    fi
}

section_send () {
    local d src p i
    SECTION_ROWS=$B/section-send.md
    : >"$SECTION_ROWS"
    send_setup
    build_inputs raw || die "could not build the inputs"
    unset G_GOALS G_RSS_GOAL G_OUT_FMTS
    G_SECTION=send
    G_RUNNER=pair_run
    G_OUT=
    G_IDS=(vmconvert vmconvert-all vmconvert-zstd)
    G_LABELS=("vmconvert send -> receive (used blocks)" "vmconvert send --all-blocks -> receive" "vmconvert send --compress zstd -> receive")
    G_CMDS=(vmconvert 'vmconvert --all-blocks' 'vmconvert --compress zstd')
    G_CHECK=(2 1 2)
    G_GOALS=("" "" "")
    G_RSS_GOAL=(1 1 1)
    G_OUT_FMTS=(qcow2 qcow2 qcow2)
    for p in $SEND_PEERS; do
        G_IDS+=("$p")
        G_CMDS+=("$p")
        G_CHECK+=(1)
        G_RSS_GOAL+=(0)
        case $p in
        nbdcopy-qemu-nbd)
            G_LABELS+=("nbdkit -> nbdcopy -> qemu-nbd qcow2")
            G_OUT_FMTS+=(qcow2)
            # The goal: the state-of-the-art pipeline, and only the first
            # peer listed.
            if [ "${#G_IDS[@]}" = 4 ]; then
                G_GOALS+=("$GOAL_SEND_RATIO")
            else
                G_GOALS+=("")
            fi
            ;;
        nbdcopy-raw)
            G_LABELS+=("nbdkit -> nbdcopy -> raw file (not qcow2)")
            G_OUT_FMTS+=(raw)
            G_GOALS+=("")
            ;;
        qemu-img)
            G_LABELS+=("nbdkit -> qemu-img convert -> qcow2")
            G_OUT_FMTS+=(qcow2)
            G_GOALS+=("")
            ;;
        *) die "unknown peer '$p' in BENCH_SEND_PEERS (nbdcopy-qemu-nbd, nbdcopy-raw, qemu-img)" ;;
        esac
    done
    G_REF=0
    G_OUT_FMT=qcow2
    # nbdkit's file plugin serves raw bytes: the raw disks only (the other
    # formats would need a different server on the peers' side).
    for d in $DISKS; do
        src=$(disk_file "$d" raw)
        G_SRC=$src
        G_SRC_FMT=raw
        G_NAME="$d raw->qcow2 (TLS)"
        run_group
    done
    {
        echo "### send: over loopback TLS, to qcow2"
        echo
        echo "Virtual size $(numfmt --to=iec "$VSIZE") ($VSIZE bytes); MB/s = virtual size / median wall time (MB = 10^6 bytes)."
        echo "Wall time: from the client's start until the output is complete (vmconvert: the sender exits after the receiver verified the disk; nbdcopy -> qemu-nbd: until qemu-nbd has closed the image); the servers start before and are not timed."
        echo "CPU: every process of the pipeline, both sides.  Peak RSS sending side: vmconvert send, nbdkit; receiving side: vmconvert receive, nbdcopy + qemu-nbd (sum of their peaks), qemu-img."
        echo "On the wire: bytes through the loopback interface during the timed part, both directions, TCP/IP and TLS overhead included; measured with $SEND_WIRE_HOW."
        echo "Peers: $SEND_NBD_VERSIONS; TLS 1.3 PSK, GnuTLS with ChaCha20 disabled (the cipher the warm-up negotiated is in build/bench/runs.tsv, last column).  vmconvert: OpenSSL, TLS 1.3 AES-128-GCM, certificate trusted by fingerprint, token."
        echo "Last column: the pipeline's time over vmconvert send's (plain), taken round by round, median (>= 1.00: vmconvert is faster; goal >= $GOAL_SEND_RATIO against nbdkit -> nbdcopy -> qemu-nbd)."
        echo "✓: the output checked with qemu-img compare after the warm-up: identical to the source, or for vmconvert's used-blocks runs to the source with its unused ranges zeroed."
        echo
        pair_table_header
        cat "$SECTION_ROWS"
        echo
        echo "Per process (the last timed round; the TLS session of the warm-up, from nbdkit's debug output):"
        echo
        for d in $DISKS; do
            for (( i = 0; i < ${#G_IDS[@]}; i++ )); do
                awk -F'\t' -v g="$d raw->qcow2 (TLS)" -v id="${G_IDS[$i]}" -v l="${G_LABELS[$i]}" '
                    $1 == "send" && $2 == g && $3 == id && $5 == "ok" {
                        if ($4 == 0) { w = $16; sub(/^.*; TLS /, "", w); if (w == $16) w = "" }
                        else last = $16 }
                    END { if (last != "" || w != "")
                              printf "- %s, %s: %s%s\n", g, l, last, (w != "" ? "; TLS " w : "") }' "$RUNS"
            done
        done
        echo
    } >>"$TABLES"
}

# ---------------------------------------------------------------- main

# The appliance under QEMU: image sizes, boot to first byte, throughput
# (tests/bench/bench-appliance.sh).
section_appliance () {
    say "appliance: booting the ISO under QEMU"
    {
        echo "### The appliance under QEMU"
        echo
        "$top/tests/bench/bench-appliance.sh" || echo "(failed: see above)"
        echo
    } >>"$TABLES"
}

section_fixup () {
    say "fixup: convert --fixup on the test guests under QEMU"
    {
        echo "### convert --fixup on the test guests"
        echo
        "$top/tests/bench/bench-fixup.sh" || echo "(failed: see above)"
        echo
    } >>"$TABLES"
}

main () {
    local s sections=${*:-$ALL_SECTIONS}
    for s in $sections; do
        declare -F "section_$s" >/dev/null ||
            die "unknown section '$s' (sections: $ALL_SECTIONS)"
    done
    setup
    say "outputs in $OUT_DIR ($OUT_FS), $ROUNDS rounds, sections: $sections"
    for s in $sections; do
        "section_$s"
    done
    {
        echo "## Results"
        echo
        machine_info
        echo
        cat "$TABLES"
        echo "### Goals"
        echo
        if [ -s "$GOALS" ]; then
            sed 's/^/- /' "$GOALS"
        else
            echo "- All goals met (convert: every ratio >= $GOAL_RATIO, qemu-img / vmconvert (used blocks) >= $GOAL_MAP_RATIO; send: nbdkit + nbdcopy time / vmconvert time >= $GOAL_SEND_RATIO; vmconvert peak RSS <= $GOAL_RSS_MIB MiB, each side for send; outputs identical to the source)."
        fi
        echo
        if [ "$BUSY" = 1 ]; then
            echo "**Warning: the machine was busy (load average above $(nproc), the number of cores) during some groups: their times are inflated and noisy; rerun when it is quiet.**"
            echo
        fi
        echo "Bench time: $(( $(date +%s) - START )) s."
    } >"$RESULTS"
    echo
    cat "$RESULTS"
    if [ -s "$GOALS" ]; then
        echo
        echo "bench: $(wc -l <"$GOALS") GOAL(S) MISSED (see above); results in $RESULTS"
    else
        echo
        echo "bench: all goals met; results in $RESULTS"
    fi
    return 0
}

main "$@"
