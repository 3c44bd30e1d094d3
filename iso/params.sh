# Sourced by iso/build-iso.sh and iso/build-pxe.sh: what every boot entry
# passes to the kernel.
#
# console=: the kernel writes to both the screen and the first serial
# port; the last one named (ttyS0) becomes /dev/console when the machine
# has that port, else the screen does.  Nothing depends on which one: /init
# and the appliance write to every console in
# /sys/class/tty/console/active, and read from all of them.
# panic=-1: reboot at once after a panic instead of hanging.
# loglevel=4: only warnings and worse from the kernel on the consoles.
# shellcheck shell=sh
# shellcheck disable=SC2034 # used by the scripts that source this file
KERNEL_PARAMS="console=tty0 console=ttyS0,115200 panic=-1 loglevel=4"
SHELL_PARAM="vmconvert.initshell=1"
