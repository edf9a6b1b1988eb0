#!/usr/bin/env bash
# Pack the guest initramfs: static arm64 busybox, /init, the test library and every
# test script of guest-tests/tests/. The test to run is chosen on the kernel command line.
#   output: $OUT/initramfs.cpio (written atomically)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[ -f "$RZGATE_CACHE/toolchain.env" ] || die "toolchain not provisioned: run 'make toolchain'"
source "$RZGATE_CACHE/toolchain.env"
[ -x "$BUSYBOX" ] || die "static arm64 busybox missing at $BUSYBOX: run 'make toolchain'"

# A staging directory of this run's own: worktrees and validations may pack side by side.
mkdir -p "$ROOT/tmp"
staging=$(mktemp -d "$ROOT/tmp/rzgate-initramfs.XXXXXX")
chmod 0755 "$staging"
in_root_staging=/tmp/$(basename "$staging")
trap 'rm -rf "$staging"' EXIT
mkdir -p "$staging"/{bin,sbin,proc,sys,dev,tmp,etc,lib/rzgate,tests,root}
cp "$BUSYBOX" "$staging/bin/busybox"
ln -s busybox "$staging/bin/sh"
install -m 0755 "$RZGATE_TOP/guest-tests/initramfs/init" "$staging/init"
install -m 0644 "$RZGATE_TOP/guest-tests/initramfs/lib.sh" "$staging/lib/rzgate/lib.sh"
for t in "$RZGATE_TOP"/guest-tests/tests/*.sh; do
    sh -n "$t" || die "$t: shell syntax error"
    install -m 0644 "$t" "$staging/tests/"
done

# The kernel's own DT selftest (tools/testing/selftests/dt), taken from the same source
# the kernels are built from, with the compatible list its Makefile would generate, and
# our ignore list for the virt nodes rzgate does not drive.
# Debian's source (ci/kernels.sh unpacks it as pristine-<package version>), never a user
# tree that validate unpacked beside it (pristine-user-*).
deb_version=$(in_root dpkg-query -W -f='${Version}' "linux-source-${KERNEL_SERIES:-7.2}") ||
    die "linux-source-${KERNEL_SERIES:-7.2} is not installed in $ROOT: run 'make toolchain'"
ksrc=$ROOT/work/pristine-$deb_version
[ -f "$ksrc/.rzgate-unpacked" ] || die "no unpacked kernel source at $ksrc: run 'make kernels' first"
compat_cache=$ksrc/.rzgate-compatible_list
if [ ! -s "$compat_cache" ]; then
    in_root sh -c "cd /work/$(basename "$ksrc") && python3 scripts/dtc/dt-extract-compatibles -d . > .rzgate-compatible_list.tmp" ||
        die "scripts/dtc/dt-extract-compatibles failed in $ksrc"
    mv "$compat_cache.tmp" "$compat_cache"
fi
mkdir -p "$staging/selftests/dt" "$staging/selftests/kselftest"
cp "$ksrc/tools/testing/selftests/dt/test_unprobed_devices.sh" "$staging/selftests/dt/"
cp "$ksrc/tools/testing/selftests/kselftest/ktap_helpers.sh" "$staging/selftests/kselftest/"
cp "$compat_cache" "$staging/selftests/dt/compatible_list"
cat "$ksrc/tools/testing/selftests/dt/compatible_ignore_list" \
    "$RZGATE_TOP/guest-tests/dt-ignore-virt" | grep -v '^#' >"$staging/selftests/dt/compatible_ignore_list"

# The kernel's own watchdog client (tools/testing/selftests/watchdog/watchdog-test.c), built
# static from the same source (the C library and UAPI headers are the root's arm64 cross
# packages, ci/toolchain.sh stage selftest-libc).
[ -f "$ROOT/usr/aarch64-linux-gnu/lib/libc.a" ] ||
    die "the static arm64 C library is missing in $ROOT (libc6-dev-arm64-cross): run 'make toolchain'"
mkdir -p "$staging/selftests/watchdog"
in_root aarch64-linux-gnu-gcc -static -s -O2 -Wall -o "$in_root_staging/selftests/watchdog/watchdog-test" \
    "/work/$(basename "$ksrc")/tools/testing/selftests/watchdog/watchdog-test.c" ||
    die "building the kernel's watchdog-test (tools/testing/selftests/watchdog) failed"
# And its RTC client (tools/testing/selftests/rtc/rtctest.c, the kselftest harness beside it;
# the libraries its Makefile links).
mkdir -p "$staging/selftests/rtc"
in_root aarch64-linux-gnu-gcc -static -s -O2 -Wall -I"/work/$(basename "$ksrc")/tools/testing/selftests" \
    -o "$in_root_staging/selftests/rtc/rtctest" \
    "/work/$(basename "$ksrc")/tools/testing/selftests/rtc/rtctest.c" -lrt -lpthread -lm ||
    die "building the kernel's rtctest (tools/testing/selftests/rtc) failed"

mkdir -p "$OUT"
# Uncompressed: the kernel unpacks a gzip'd archive at about 10 MB/s under TCG, 0.2 s of
# every boot; QEMU loads the plain one into guest RAM for free.
in_root sh -c "cd $in_root_staging && find . | LC_ALL=C sort | cpio --quiet -o -H newc --owner=0:0 --reproducible" \
    >"$OUT/initramfs.cpio.tmp"
mv "$OUT/initramfs.cpio.tmp" "$OUT/initramfs.cpio"
say "initramfs: $OUT/initramfs.cpio ($(stat -c %s "$OUT/initramfs.cpio") bytes)"
