#!/usr/bin/env python3
"""qemu-boot.py: boot a machine under QEMU and judge its serial console.

The harness of every appliance and guest boot test.  It starts one
qemu-system-x86_64 (KVM when /dev/kvm is usable, else TCG), -nographic,
-no-reboot, the serial port on its stdin/stdout; echoes the console on
stdout; waits for regular expressions in order, recording the seconds since
QEMU started when each first matched; can type into the console; and kills
its own QEMU (by PID) on timeout, on a --fail match, on SIGINT/SIGTERM.

Exit status: 0 when every --expect matched in order (QEMU is then given
--linger seconds to exit by itself, then killed) or, with no --expect, when
QEMU exited 0 before the timeout; 1 when an expectation was not met (timeout,
--fail matched, QEMU exited first); 2 on a usage error.

Boot media (one of):
  --kernel F --initrd F [--append ARGS]   direct kernel boot
  --iso F                                  the ISO as a CD-ROM
  --usb F                                  the ISO (isohybrid) as a USB stick
  --pxe TFTPDIR --bootfile NAME            PXE through QEMU's TFTP (slirp)
Firmware: SeaBIOS, or --uefi (OVMF; a private copy of the variable store).
Disks: --disk PATH[,if=virtio|ahci|ide|pvscsi|lsi|megasas|scsi-virtio|nvme]
       [,format=raw|qcow2|vmdk|...][,serial=S][,readonly][,snapshot]
       (repeatable).  readonly: the guest sees a read-only disk; snapshot:
       the guest may write, its writes go to a temporary overlay and the
       file is never written (for booting a source image as it is).
Network: --nic MODEL[,addr=SLOT][,mac=MAC], MODEL virtio|e1000|e1000e|
vmxnet3; addr puts the NIC in PCI slot SLOT (hex or decimal, as QEMU reads
it: a guest's predictable name follows it, e.g. ens3), mac sets its MAC.
--user-net OPTS (slirp options, e.g. restrict=on,guestfwd=10.0.2.100:7010=CMD,
where CMD is run for each guest connection with the connection on its
stdin/stdout; a CMD that is only a port number means the fwd-relay tool to
127.0.0.1:PORT).
"""

import argparse
import json
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"

NIC_MODELS = {
    "virtio": "virtio-net-pci",
    "e1000": "e1000",
    "e1000e": "e1000e",
    "vmxnet3": "vmxnet3",
}
SCSI_HBAS = {
    "pvscsi": "pvscsi",
    "lsi": "lsi53c895a",
    "megasas": "megasas-gen2",
    "scsi-virtio": "virtio-scsi-pci",
}


class Interrupted(Exception):
    pass


def die(msg):
    print("qemu-boot: " + msg, file=sys.stderr)
    sys.exit(2)


def kvm_usable():
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError:
        return False
    os.close(fd)
    return True


def relay_path():
    path = os.environ.get("FWD_RELAY")
    if path:
        return path
    tools = os.environ.get("TOOLS", os.path.join(TOP, "build", "tests", "tools"))
    return os.path.join(tools, "fwd-relay")


def user_net_options(specs):
    """Translate --user-net OPTS into QEMU's -netdev user syntax."""
    out = []
    for spec in specs:
        for opt in spec.split(","):
            if not opt:
                continue
            if opt.startswith("guestfwd=") and not opt.startswith("guestfwd=tcp:"):
                # guestfwd=IP:PORT=CMD
                m = re.fullmatch(r"guestfwd=([0-9.]+):([0-9]+)=(.+)", opt)
                if not m:
                    die("--user-net: expected guestfwd=IP:PORT=CMD: " + opt)
                ip, port, cmd = m.groups()
                if cmd.isdigit():
                    cmd = "%s %s" % (relay_path(), cmd)
                opt = "guestfwd=tcp:%s:%s-cmd:%s" % (ip, port, cmd)
            out.append(opt)
    return out


def nic_spec(spec):
    """--nic MODEL[,addr=SLOT][,mac=MAC]: QEMU's device and its options."""
    parts = spec.split(",")
    if parts[0] not in NIC_MODELS:
        die("--nic %s: unknown model %s (%s)" % (
            spec, parts[0], ", ".join(sorted(NIC_MODELS))))
    opts = ""
    for p in parts[1:]:
        k, _, v = p.partition("=")
        if k == "addr" and re.fullmatch(r"(0x)?[0-9a-fA-F]{1,2}", v):
            opts += ",addr=" + v
        elif k == "mac" and re.fullmatch(r"([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}", v):
            opts += ",mac=" + v
        else:
            die("--nic %s: expected addr=SLOT or mac=XX:XX:XX:XX:XX:XX, not %s"
                % (spec, p))
    return NIC_MODELS[parts[0]], opts


def disk_args(specs, tmp):
    """-drive/-device arguments for each --disk, one controller per kind."""
    args = []
    hbas = {}
    ahci_port = 0
    ide_slots = [("ide.0", 0), ("ide.0", 1), ("ide.1", 1)]
    for n, spec in enumerate(specs):
        parts = spec.split(",")
        path, opts = parts[0], {}
        for p in parts[1:]:
            k, _, v = p.partition("=")
            opts[k] = v if v else "on"
        kind = opts.pop("if", "virtio")
        fmt = opts.pop("format", "raw")
        serial = opts.pop("serial", None)
        readonly = opts.pop("readonly", None) == "on"
        snapshot = opts.pop("snapshot", None) == "on"
        if opts:
            die("--disk %s: unknown option(s) %s" % (spec, ", ".join(opts)))
        if not os.path.exists(path):
            die("--disk %s: no such file" % path)
        drive = "file=%s,format=%s,if=none,id=disk%d" % (path, fmt, n)
        if snapshot or (readonly and kind in ("ahci", "ide")):
            # IDE and AHCI disks refuse read-only drives: their writes go
            # to a temporary overlay instead, the file stays untouched.
            drive += ",snapshot=on"
        elif readonly:
            drive += ",readonly=on"
        ser = ",serial=" + serial if serial else ""
        args += ["-drive", drive]
        if kind == "virtio":
            args += ["-device", "virtio-blk-pci,drive=disk%d%s" % (n, ser)]
        elif kind == "ahci":
            if "ahci" not in hbas:
                hbas["ahci"] = "ahci0"
                args += ["-device", "ahci,id=ahci0"]
            if ahci_port >= 6:
                die("--disk: at most 6 AHCI disks")
            args += ["-device", "ide-hd,drive=disk%d,bus=ahci0.%d%s" % (n, ahci_port, ser)]
            ahci_port += 1
        elif kind == "ide":
            if not ide_slots:
                die("--disk: at most 3 IDE disks (the 4th slot is the CD-ROM's)")
            bus, unit = ide_slots.pop(0)
            args += ["-device", "ide-hd,drive=disk%d,bus=%s,unit=%d%s" % (n, bus, unit, ser)]
        elif kind == "nvme":
            args += ["-device", "nvme,drive=disk%d,serial=%s" % (n, serial or "nvme%d" % n)]
        elif kind in SCSI_HBAS:
            if kind not in hbas:
                hbas[kind] = "%s0" % kind.replace("-", "")
                args += ["-device", "%s,id=%s" % (SCSI_HBAS[kind], hbas[kind])]
            args += ["-device", "scsi-hd,drive=disk%d,bus=%s.0%s" % (n, hbas[kind], ser)]
        else:
            die("--disk %s: unknown if=%s" % (spec, kind))
    return args


def build_command(a, tmp):
    # -nodefaults: no empty CD-ROM drive or NIC the test did not ask for;
    # a VGA card stays, as on a real machine (console=tty0).
    qemu = [a.qemu, "-nographic", "-nodefaults", "-vga", "std",
            "-serial", "stdio", "-monitor", "none",
            "-no-reboot", "-m", str(a.mem)]
    if a.accel == "auto":
        a.accel = "kvm" if kvm_usable() else "tcg"
    qemu += ["-accel", a.accel]
    if a.accel == "kvm":
        qemu += ["-cpu", "host"]
    if a.uefi:
        vars_copy = os.path.join(tmp, "OVMF_VARS.fd")
        shutil.copyfile(OVMF_VARS, vars_copy)
        qemu += ["-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + OVMF_CODE,
                 "-drive", "if=pflash,format=raw,unit=1,file=" + vars_copy]
    media = [x for x in ("kernel", "iso", "usb", "pxe") if getattr(a, x)]
    if len(media) > 1:
        die("choose one of --kernel, --iso, --usb, --pxe")
    if a.kernel:
        if not a.initrd:
            die("--kernel needs --initrd")
        qemu += ["-kernel", a.kernel, "-initrd", a.initrd]
        if a.append:
            qemu += ["-append", a.append]
    elif a.initrd or a.append:
        die("--initrd and --append go with --kernel")
    if a.iso:
        qemu += ["-drive", "file=%s,format=raw,if=none,id=cd0,media=cdrom,readonly=on" % a.iso,
                 "-device", "ide-cd,drive=cd0,bus=ide.1,unit=0,bootindex=0"]
    if a.usb:
        qemu += ["-device", "qemu-xhci,id=xhci",
                 "-drive", "file=%s,format=raw,if=none,id=usb0,snapshot=on" % a.usb,
                 "-device", "usb-storage,bus=xhci.0,drive=usb0,bootindex=0"]
    netdev = None
    if a.pxe:
        if not a.bootfile:
            die("--pxe needs --bootfile")
        netdev = ["user", "id=n0", "tftp=" + a.pxe, "bootfile=" + a.bootfile]
    elif a.bootfile:
        die("--bootfile goes with --pxe")
    if a.user_net or a.nic:
        netdev = netdev or ["user", "id=n0"]
        netdev += user_net_options(a.user_net)
    if netdev:
        model, nic_opts = nic_spec(a.nic or "virtio")
        dev = "%s,netdev=n0%s" % (model, nic_opts)
        # Only a PXE boot needs the NIC's iPXE option ROM; without it the
        # firmware gets to the boot medium sooner.
        dev += ",bootindex=0" if a.pxe else ",romfile="
        qemu += ["-netdev", ",".join(netdev), "-device", dev]
    qemu += disk_args(a.disk, tmp)
    qemu += a.qemu_arg
    return qemu


class Matcher:
    """Ordered --expect, --fail and ordered --send-after over the console."""

    def __init__(self, a):
        self.expect = [(rx, re.compile(rx)) for rx in a.expect]
        self.fail = [re.compile(rx) for rx in a.fail]
        self.send = [(re.compile(rx), text) for rx, text in a.send_after]
        self.times = []
        self.failed = None

    def done(self):
        return len(self.times) == len(self.expect)

    def feed(self, text, now, write):
        """Judge TEXT: a whole line, or the part of a line seen so far."""
        for rx in self.fail:
            if rx.search(text):
                self.failed = "--fail %r matched: %s" % (rx.pattern, text.strip())
                return
        while not self.done():
            pattern, rx = self.expect[len(self.times)]
            if not rx.search(text):
                break
            self.times.append((pattern, now))
        while self.send and self.send[0][0].search(text):
            _, t = self.send.pop(0)
            write(t)


def main():
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--qemu", default="qemu-system-x86_64")
    p.add_argument("--accel", default="auto", choices=("auto", "kvm", "tcg"))
    p.add_argument("--mem", type=int, default=1024, help="MiB (1024)")
    p.add_argument("--kernel")
    p.add_argument("--initrd")
    p.add_argument("--append")
    p.add_argument("--iso")
    p.add_argument("--usb")
    p.add_argument("--pxe", metavar="TFTPDIR")
    p.add_argument("--bootfile")
    p.add_argument("--uefi", action="store_true")
    p.add_argument("--disk", action="append", default=[])
    p.add_argument("--nic", metavar="MODEL[,addr=SLOT][,mac=MAC]",
                   help="MODEL: " + ", ".join(sorted(NIC_MODELS)))
    p.add_argument("--user-net", action="append", default=[], metavar="OPTS")
    p.add_argument("--expect", action="append", default=[], metavar="REGEX")
    p.add_argument("--fail", action="append", default=[], metavar="REGEX")
    p.add_argument("--send-after", nargs=2, action="append", default=[],
                   metavar=("REGEX", "TEXT"),
                   help="type TEXT (\\n, \\r, \\t, \\xHH escapes) when REGEX appears")
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--linger", type=float, default=10,
                   help="seconds QEMU may take to exit after the last --expect (10)")
    p.add_argument("--log", help="the whole console, each line with its time")
    p.add_argument("--json", action="store_true",
                   help="print the times of the --expect matches as JSON at the end")
    p.add_argument("--quiet", action="store_true", help="do not echo the console")
    p.add_argument("--qemu-arg", action="append", default=[], metavar="ARG",
                   help="one more QEMU argument, as is")
    a = p.parse_args()
    for i, (rx, text) in enumerate(a.send_after):
        a.send_after[i] = (rx, text.encode("latin-1").decode("unicode_escape"))
    for rx in a.expect + a.fail + [rx for rx, _ in a.send_after]:
        try:
            re.compile(rx)
        except re.error as e:
            die("bad regular expression %r: %s" % (rx, e))

    tmp = tempfile.mkdtemp(prefix="qemu-boot.")
    proc = None
    log = None

    def on_signal(signum, frame):
        raise Interrupted(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    m = Matcher(a)
    result = {"ok": False, "accel": None, "markers": [], "qemu_exit": None,
              "qemu_status": None, "error": None}
    start = time.monotonic()
    try:
        cmd = build_command(a, tmp)
        result["accel"] = a.accel
        print("qemu-boot: " + " ".join(shlex.quote(c) for c in cmd), file=sys.stderr)
        log = open(a.log, "w", encoding="utf-8") if a.log else None
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        out = proc.stdout.fileno()

        def write(text):
            if log:
                log.write("[%8.3f] <<< typed %r\n" % (time.monotonic() - start, text))
            proc.stdin.write(text.encode("utf-8", "surrogateescape"))
            proc.stdin.flush()

        partial = b""
        deadline = start + a.timeout
        linger_until = None
        eof = False
        while True:
            now = time.monotonic()
            if m.failed:
                result["error"] = m.failed
                break
            if m.done() and linger_until is None:
                linger_until = now + a.linger
            if eof:
                break
            limit = min(deadline, linger_until or deadline)
            if now >= limit:
                if not m.done():
                    result["error"] = "timeout after %g s" % a.timeout
                break
            ready, _, _ = select.select([out], [], [], min(0.5, limit - now))
            if not ready:
                continue
            chunk = os.read(out, 65536)
            now = time.monotonic() - start
            if not chunk:
                eof = True
                continue
            if not a.quiet:
                sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()
            partial += chunk
            lines = partial.split(b"\n")
            partial = lines.pop()
            for line in lines:
                text = line.decode("utf-8", "replace").replace("\r", "")
                if log:
                    log.write("[%8.3f] %s\n" % (now, text))
                m.feed(text, now, write)
            if partial:
                m.feed(partial.decode("utf-8", "replace").replace("\r", ""), now, write)
        if eof:
            if partial and log:
                log.write("[%8.3f] %s\n" % (time.monotonic() - start,
                                            partial.decode("utf-8", "replace")))
            result["qemu_status"] = proc.wait()
            result["qemu_exit"] = round(time.monotonic() - start, 3)
            if not m.done() and not m.failed:
                result["error"] = "QEMU exited (status %d) before %r matched" % (
                    result["qemu_status"], a.expect[len(m.times)])
            elif not a.expect and result["qemu_status"] != 0:
                result["error"] = "QEMU exited with status %d" % result["qemu_status"]
        elif not result["error"] and not a.expect:
            result["error"] = "timeout after %g s" % a.timeout
    except Interrupted as e:
        result["error"] = "interrupted by " + str(e)
    except OSError as e:
        result["error"] = str(e)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()
            if log:
                log.write("[%8.3f] qemu-boot: killed QEMU (pid %d)\n"
                          % (time.monotonic() - start, proc.pid))
        if proc and proc.stdin:
            try:
                proc.stdin.close()
            except OSError:
                pass
        if log:
            log.close()
        shutil.rmtree(tmp, ignore_errors=True)

    result["markers"] = [{"regex": rx, "seconds": round(t, 3)} for rx, t in m.times]
    result["ok"] = result["error"] is None
    sys.stdout.flush()
    for rx, t in m.times:
        print("qemu-boot: %7.2f s  %s" % (t, rx), file=sys.stderr)
    if result["error"]:
        print("qemu-boot: FAILED: " + result["error"], file=sys.stderr)
    if a.json:
        print(json.dumps(result))
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
