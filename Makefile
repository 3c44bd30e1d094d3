# vmconvert top-level Makefile.
#
#   make              build build/vmconvert
#   make check        install test dependencies, build, run every test
#   make demo         install dependencies, build, run a real conversion
#   make bench        vmconvert against qemu-img (and nbdkit + nbdcopy)
#   make fuzz         run each fuzz target for FUZZ_SECONDS (default 600)
#   make install      install to $(DESTDIR)$(PREFIX)/bin
#   make iso          the appliance's boot ISO, build/vmconvert.iso
#   make pxe          the appliance's network boot files, build/pxe/
#   make guest-images the Debian test guests of the fixup tests, build/guests/
#
# Objects go under $(BUILD) (build/ by default); the AddressSanitizer +
# UBSan build lives in build/asan and the libFuzzer build in build/fuzz, all
# from the same sources and this one file.

VERSION   = 0.1
PREFIX   ?= /usr/local
BINDIR   ?= $(PREFIX)/bin
DESTDIR  ?=
BUILD    ?= build
CFLAGS   ?= -O2 -g
SAN      ?=
FUZZ_SECONDS ?= 600

PKGS       = zlib libzstd liblzma libssl libcrypto libxxhash ext2fs com_err
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lz -lzstd -llzma -lssl -lcrypto -lxxhash -lext2fs -lcom_err)

ALL_CFLAGS = -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wvla \
             -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 \
             -DVMC_VERSION='"$(VERSION)"' \
             $(PKG_CFLAGS) $(CFLAGS) $(SAN)
LDLIBS     = $(PKG_LIBS) -lpthread

LIB_SRCS   := $(sort $(wildcard converter/lib/*.c converter/formats/*.c \
                                 converter/fs/*.c converter/part/*.c \
                                 converter/fixup/*.c network/*.c) \
                $(filter-out appliance/main.c,$(wildcard appliance/*.c)))
CLI_SRCS   := $(sort $(wildcard converter/cli/*.c))
UNIT_SRCS  := $(sort $(wildcard tests/unit/test-*.c))
TOOL_SRCS  := $(sort $(wildcard tests/tools/*.c))
FUZZ_SRCS  := $(sort $(wildcard tests/fuzz/fuzz-*.c))

# Quiet by default; make V=1 shows the commands.
ifeq ($(V),1)
Q =
else
Q = @
endif

obj = $(patsubst %.c,$(BUILD)/%.o,$(1))

LIB        = $(BUILD)/libvmconvert.a
PROG       = $(BUILD)/vmconvert
# The appliance's boot program: static, so the initramfs needs no shared
# libraries (dynamic in sanitizer builds, which cannot link statically).
APPLIANCE  = $(BUILD)/vmconvert-appliance
STATIC_LIBS := $(shell pkg-config --static --libs $(PKGS) 2>/dev/null || echo $(PKG_LIBS))
UNIT_BINS  = $(patsubst %.c,$(BUILD)/%,$(UNIT_SRCS))
TOOL_BINS  = $(patsubst %.c,$(BUILD)/%,$(TOOL_SRCS))

.PHONY: all check check-unit check-asan build-tests fuzz fuzz-build \
        demo bench install clean deps

all: $(PROG) $(APPLIANCE)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(LIB): $(call obj,$(LIB_SRCS))
	@rm -f $@
	$(Q)$(AR) rcs $@ $^

$(PROG): $(call obj,$(CLI_SRCS)) $(LIB)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(APPLIANCE): $(BUILD)/appliance/main.o $(LIB)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) $(if $(SAN),,-static) -o $@ $^ \
	    $(if $(SAN),$(LDLIBS),$(STATIC_LIBS) -lpthread)

$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(LIB)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/tools/%: $(BUILD)/tests/tools/%.o $(LIB)
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Keep objects that are only inputs of pattern rules.
.SECONDARY:

# Everything the tests run, in this build variant.
build-tests: $(PROG) $(APPLIANCE) $(UNIT_BINS) $(TOOL_BINS)

-include $(patsubst %.o,%.d,$(call obj,$(LIB_SRCS) $(CLI_SRCS) $(UNIT_SRCS) $(TOOL_SRCS) appliance/main.c))

deps:
	./install-deps

# The sanitizer build: same sources, ASan + UBSan, any finding is fatal.
ASAN_FLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all \
             -fno-omit-frame-pointer

check-asan:
	$(MAKE) BUILD=build/asan CFLAGS="-O1 -g" SAN="$(ASAN_FLAGS)" build-tests

# libFuzzer targets, built with clang into build/fuzz.
FUZZ_CC    = clang
# FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION (the OSS-Fuzz convention) lets
# formats accept any checksum in fuzz builds only, so the fuzzer gets past
# CRCs into the structures they protect.
FUZZ_FLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all \
             -fno-omit-frame-pointer -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
FUZZ_BINS  = $(patsubst %.c,build/fuzz/%,$(FUZZ_SRCS))

fuzz-build:
	$(MAKE) BUILD=build/fuzz CC=$(FUZZ_CC) CFLAGS="-O1 -g" \
	    SAN="$(FUZZ_FLAGS) -fsanitize=fuzzer-no-link" build/fuzz/libvmconvert.a
	$(MAKE) BUILD=build/fuzz CC=$(FUZZ_CC) CFLAGS="-O1 -g" \
	    SAN="$(FUZZ_FLAGS) -fsanitize=fuzzer-no-link" $(FUZZ_BINS)

build/fuzz/tests/fuzz/%: tests/fuzz/%.c tests/fuzz/harness.h tests/fuzz/fs-harness.h tests/fuzz/files-harness.h tests/fuzz/sparse-volume.h build/fuzz/libvmconvert.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer -o $@ $< build/fuzz/libvmconvert.a $(LDLIBS)

fuzz: deps fuzz-build
	tests/fuzz/run-fuzz $(FUZZ_SECONDS) $(FUZZ_BINS)

check: deps
	$(MAKE) build-tests
	$(MAKE) check-asan
	$(MAKE) fuzz-build
	$(MAKE) appliance-test-images
	$(MAKE) guest-images
	tests/run

demo: deps all
	tests/demo.sh

bench: deps all build-tests iso guest-images
	tests/bench/bench.sh

# The appliance's kernel and initrd go too when they were built (make
# initramfs): convert --fixup boots them from PREFIX/share/vmconvert.
install: $(PROG) $(APPLIANCE)
	install -D -m 0755 $(PROG) $(DESTDIR)$(BINDIR)/vmconvert
	@if [ -f $(VMLINUZ) ] && [ -f $(INITRD) ]; then \
	    install -D -m 0644 $(VMLINUZ) $(DESTDIR)$(PREFIX)/share/vmconvert/vmlinuz; \
	    install -D -m 0644 $(INITRD) $(DESTDIR)$(PREFIX)/share/vmconvert/initrd.img; \
	fi

clean:
	rm -rf build

# ---- The appliance's boot images: initramfs/, iso/ ----------------------
#
#   make iso    build/vmconvert.iso: hybrid ISO, BIOS + UEFI, CD or USB stick
#   make pxe    build/pxe/: kernel, initrd, iPXE/pxelinux/GRUB configs,
#               dnsmasq.conf.example
#
# The kernel is Debian's, downloaded and unpacked (never installed) into
# build/appliance/kernel by initramfs/fetch-kernel.sh, which asks apt each
# time and downloads only when apt names another package or version.  The
# initramfs holds the static APPLIANCE_PROG as /sbin/vmconvert-appliance.
# Variables: INITRD_LEVEL (zstd level, 19; 3 builds in a second),
# IMAGE_APPEND (more kernel parameters for every boot entry), INITRD_ADD
# (more files, "SRC:DEST ...").
APPLIANCE_DIR   = $(BUILD)/appliance
KERNEL_DIR      = $(APPLIANCE_DIR)/kernel
KERNEL_STAMP    = $(KERNEL_DIR)/.package
VMLINUZ         = $(APPLIANCE_DIR)/vmlinuz
INITRD          = $(APPLIANCE_DIR)/initrd.img
ISO             = $(BUILD)/vmconvert.iso
PXE_DIR         = $(BUILD)/pxe
APPLIANCE_PROG ?= $(BUILD)/vmconvert-appliance
INITRD_LEVEL   ?= 19
IMAGE_APPEND   ?=
INITRD_ADD     ?=
INITRD_INPUTS   = initramfs/build.sh initramfs/init initramfs/udhcpc.script \
                  initramfs/modules.list
IMAGE_INPUTS    = iso/params.sh iso/vmconvert.cfg

.PHONY: iso pxe initramfs appliance-test-images FORCE

iso: $(ISO)
pxe: $(PXE_DIR)/boot.ipxe
initramfs: $(VMLINUZ) $(INITRD)

# Run every time; the file changes only when another kernel was fetched.
$(KERNEL_STAMP): FORCE
	@mkdir -p $(APPLIANCE_DIR)
	$(Q)initramfs/fetch-kernel.sh $(KERNEL_DIR) >/dev/null

$(VMLINUZ): $(KERNEL_STAMP)
	$(Q)cp $(KERNEL_DIR)/boot/vmlinuz-* $@

$(INITRD): $(KERNEL_STAMP) $(APPLIANCE_PROG) $(INITRD_INPUTS)
	$(Q)initramfs/build.sh --kernel $(KERNEL_DIR) --level $(INITRD_LEVEL) \
	    --appliance $(APPLIANCE_PROG) \
	    $(foreach a,$(INITRD_ADD),--add $(a)) --out $@

$(ISO): $(VMLINUZ) $(INITRD) iso/build-iso.sh $(IMAGE_INPUTS)
	$(Q)iso/build-iso.sh --kernel $(VMLINUZ) --initrd $(INITRD) \
	    --append "$(IMAGE_APPEND)" --out $@

$(PXE_DIR)/boot.ipxe: $(VMLINUZ) $(INITRD) iso/build-pxe.sh $(IMAGE_INPUTS)
	$(Q)iso/build-pxe.sh --kernel $(VMLINUZ) --initrd $(INITRD) \
	    --append "$(IMAGE_APPEND)" --out $(PXE_DIR)

# Until the appliance program exists (appliance/main.c and its rule for
# $(BUILD)/vmconvert-appliance), a placeholder that starts a shell stands in.
ifeq ($(wildcard appliance/main.c),)
$(BUILD)/vmconvert-appliance: tests/appliance/placeholder.c
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -static -s -o $@ $<
endif

# The boot tests (tests/appliance/): the probe stands in for the appliance
# in an initramfs of its own; zstd -9 builds it in seconds.
PROBE        = $(BUILD)/tests/appliance/probe
PROBE_INITRD = $(APPLIANCE_DIR)/initrd-probe.img

$(PROBE): tests/appliance/probe.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(ALL_CFLAGS) -static -s -o $@ $<

$(PROBE_INITRD): $(KERNEL_STAMP) $(PROBE) $(INITRD_INPUTS)
	$(Q)initramfs/build.sh --kernel $(KERNEL_DIR) --level 9 \
	    --appliance $(PROBE) --out $@

# dmtest (appliance/dm.c in the appliance's kernel) links the library,
# statically, as the appliance does.
DMTEST        = $(BUILD)/tests/appliance/dmtest
DMTEST_INITRD = $(APPLIANCE_DIR)/initrd-dmtest.img

$(DMTEST): $(BUILD)/tests/appliance/dmtest.o $(LIB)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) $(if $(SAN),,-static) -s -o $@ $^ \
	    $(if $(SAN),$(LDLIBS),$(STATIC_LIBS) -lpthread)

$(DMTEST_INITRD): $(KERNEL_STAMP) $(DMTEST) $(INITRD_INPUTS)
	$(Q)initramfs/build.sh --kernel $(KERNEL_DIR) --level 9 \
	    --appliance $(DMTEST) --out $@

-include $(BUILD)/tests/appliance/dmtest.d

appliance-test-images: $(VMLINUZ) $(INITRD) $(PROBE_INITRD) $(DMTEST_INITRD) \
                       $(BUILD)/tests/tools/fwd-relay

# ---- Test guests for the guest fixups: tests/guests/ ---------------------
#
# build/guests/VARIANT.vmdk: a Debian 12 machine as installed on VMware,
# built from Debian's packages by tests/guests/make-debian-guest.sh (as
# root: loop devices and chroots).  Each is rebuilt only when the script or
# the probe it installs changed (VARIANT.vmdk.stamp holds their sha256);
# the three build alongside each other, sharing one bootstrap and the
# package cache in build/guests/cache.
GUEST_DIR      = $(BUILD)/guests
GUEST_VARIANTS = itools dracut lvm
GUEST_IMAGES   = $(foreach v,$(GUEST_VARIANTS),$(GUEST_DIR)/$(v).vmdk)

.PHONY: guest-images

guest-images:
	+$(Q)$(MAKE) --no-print-directory -j3 $(GUEST_IMAGES)

$(GUEST_DIR)/%.vmdk: FORCE
	$(Q)GUEST_CACHE=$(GUEST_DIR)/cache tests/guests/make-debian-guest.sh \
	    --if-changed $* $@
