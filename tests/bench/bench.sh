#!/bin/bash
# tests/bench/bench.sh [SECTION...]   (what `make bench` runs)
#
# vmconvert against its peers on this machine.  Sections (all by default):
#
#   convert   vmconvert convert -O qcow2 vs qemu-img convert -O qcow2 (its
#             defaults, and -W -m 16), from raw, VMDK and VHDX versions of a
#             realistic 4 GiB guest disk and of a fully random 4 GiB disk
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
ALL_SECTIONS="convert"

# Goals (see BENCHMARKS.md).
GOAL_RATIO=1.0          # qemu-img time / vmconvert time, every group
GOAL_RSS_MIB=64         # vmconvert peak RSS

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

build_inputs () {
    local d f raw missing=0 avail
    # Room for the missing inputs (each about the virtual size) + 1 GiB.
    for d in $DISKS; do
        # shellcheck disable=SC2086 # one word per format
        for f in $(printf '%s\n' raw $SOURCES | sort -u); do
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
        for f in $SOURCES; do
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

# one_run ROUND INDEX: run command INDEX of the current group once, append
# its line to runs.tsv; return its exit status.  The warm-up round (0) is
# not timed and needs no pretouch.
one_run () {
    local round=$1 i=$2 tf=$OUT_DIR/.time el=$OUT_DIR/.stderr
    local rc line wall user sys rss app alloc msg status argv load
    local out=$G_OUT src=$G_SRC fmt=$G_SRC_FMT
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
        msg=${msg//|/\/}
        msg=${msg//$'\t'/ }
        wall=- user=- sys=- rss=- app=- alloc=-
    fi
    # section group id round status wall user sys rss_kb apparent
    # allocated load-average-at-start message
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$G_SECTION" "$G_NAME" "${G_IDS[$i]}" "$round" "$status" "$wall" \
        "$user" "$sys" "$rss" "$app" "$alloc" "$load" "$msg" \
        >>"$RUNS"
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
#                      compare with the source)
#   G_REF              index of the reference command (vmconvert); ratios
#                      are other commands' times over its time
# Commands that fail in the warm-up round are not run again; their rows say
# FAILED.
run_group () {
    local n=${#G_IDS[@]} r i
    local -a skip=()
    G_VERIFIED=()
    G_SRC_MIB=$(( $(stat -c %s "$G_SRC") / 1048576 ))
    say "$G_NAME: warm-up"
    for (( i = 0; i < n; i++ )); do
        skip[i]=0
        G_VERIFIED[i]=
        if [ "${G_CHECK[$i]:-0}" = 1 ] && [ "$VERIFY" = 1 ]; then
            G_VERIFIED[i]=pending
        fi
        if ! one_run 0 "$i"; then
            skip[i]=1
            say "  ${G_LABELS[$i]}: FAILED ($(tail -n 1 "$RUNS" | cut -f13))"
            continue
        fi
        if [ "${G_VERIFIED[$i]}" = pending ]; then
            if qemu-img compare -q -f "$G_SRC_FMT" -F "$G_OUT_FMT" \
                   "$G_SRC" "$G_OUT" >/dev/null 2>&1; then
                G_VERIFIED[i]=identical
            else
                G_VERIFIED[i]=DIFFERS
                say "  ${G_LABELS[$i]}: output DIFFERS from the source"
            fi
        fi
    done
    rm -f "$G_OUT"
    for (( r = 1; r <= ROUNDS; r++ )); do
        say "$G_NAME: round $r/$ROUNDS"
        for (( i = 0; i < n; i++ )); do
            [ "${skip[$i]}" = 1 ] && continue
            one_run "$r" "$i" >/dev/null || say "  ${G_LABELS[$i]}: FAILED in round $r"
        done
    done
    rm -f "$G_OUT"
    report_group
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
    local ratio mbs status ver label load rows=""
    for (( i = 0; i < n; i++ )); do
        id=${G_IDS[$i]}
        label=${G_LABELS[$i]}
        status=$(awk -F'\t' -v s="$G_SECTION" -v g="$G_NAME" -v id="$id" \
            '$1 == s && $2 == g && $3 == id && $5 == "FAILED" { print $13; exit }' "$RUNS")
        wall=$(runs_field "$id" 6 | median)
        if [ -n "$status" ] || [ "$wall" = - ]; then
            rows+="| $G_NAME | $label | **FAILED** ${status:-no timed run} | - | - | - | - | - | - | - |"$'\n'
            if [ "$i" = "$G_REF" ]; then
                echo "MISSED $G_NAME: ${label} FAILED (${status:-no timed run})" >>"$GOALS"
            fi
            continue
        fi
        mn=$(runs_field "$id" 6 | sort -g | head -n 1)
        mx=$(runs_field "$id" 6 | sort -g | tail -n 1)
        cpu=$(awk -F'\t' -v s="$G_SECTION" -v g="$G_NAME" -v id="$id" \
            '$1 == s && $2 == g && $3 == id && $4 > 0 && $5 == "ok" { print $7 + $8 }' "$RUNS" | median)
        rss=$(runs_field "$id" 9 | sort -g | tail -n 1)
        app=$(runs_field "$id" 10 | tail -n 1)
        alloc=$(runs_field "$id" 11 | tail -n 1)
        load=$(runs_field "$id" 12 | median | awk '{ printf "%.1f", $1 }')
        if awk -v l="$load" -v n="$(nproc)" 'BEGIN { exit !(l > n) }'; then
            BUSY=1
        fi
        mbs=$(awk -v v="$VSIZE" -v w="$wall" 'BEGIN { printf "%.0f", (w > 0 ? v / w / 1e6 : 0) }')
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
            else
                ratio=$(printf '%.2f' "$ratio")
                if awk -v x="$ratio" -v g="$GOAL_RATIO" 'BEGIN { exit !(x < g) }'; then
                    echo "MISSED $G_NAME: $label time / ${G_LABELS[$G_REF]} time = $ratio (goal >= $GOAL_RATIO)" >>"$GOALS"
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
        if [ "$i" = "$G_REF" ] && [ "$rss" -gt $(( GOAL_RSS_MIB * 1024 )) ]; then
            echo "MISSED $G_NAME: $label peak RSS $(( rss / 1024 )) MiB (goal <= $GOAL_RSS_MIB MiB)" >>"$GOALS"
        fi
        rows+=$(printf '| %s | %s | %.2f | %.2f-%.2f | %.2f | %s | %.1f | %.0f / %.0f | %s | %s |' \
            "$G_NAME" "$label" "$wall" "$mn" "$mx" "$cpu" "$mbs" \
            "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" \
            "$(awk -v b="$app" 'BEGIN { print b / 1e6 }')" \
            "$(awk -v b="$alloc" 'BEGIN { print b / 1e6 }')" "$ratio" "$load")$'\n'
    done
    printf '%s' "$rows" >>"$SECTION_ROWS"
    printf '%s' "$rows" >&2
}

table_header () {
    echo "| group | command | wall median (s) | min-max (s) | CPU user+sys (s) | MB/s | peak RSS (MiB) | output MB (apparent / allocated) | time / vmconvert time | load |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
}

# ---------------------------------------------------------------- sections

section_convert () {
    local d f src
    SECTION_ROWS=$B/section-convert.md
    : >"$SECTION_ROWS"
    build_inputs || die "could not build the inputs"
    G_SECTION=convert
    G_OUT=$OUT_DIR/out.$OUT_FORMAT
    G_IDS=(vmconvert qemu-img qemu-img-W)
    G_LABELS=("vmconvert" "qemu-img" "qemu-img -W -m 16")
    # shellcheck disable=SC2016 # expanded by one_run's eval
    G_CMDS=('"$VMCONVERT" convert -f "$fmt" -O "$OUT_FORMAT" "$src" "$out"'
            'qemu-img convert -f "$fmt" -O "$OUT_FORMAT" "$src" "$out"'
            'qemu-img convert -W -m 16 -f "$fmt" -O "$OUT_FORMAT" "$src" "$out"')
    G_CHECK=(1 0 0)
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
        echo "✓: vmconvert's output checked identical to the source with qemu-img compare."
        echo "load: median 1-minute load average when the runs started (other users of the machine)."
        echo
        table_header
        cat "$SECTION_ROWS"
        echo
        for d in $DISKS; do
            src=$(disk_file "$d" raw)
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

# ---------------------------------------------------------------- main

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
            echo "- All goals met (every ratio >= $GOAL_RATIO, vmconvert peak RSS <= $GOAL_RSS_MIB MiB)."
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
