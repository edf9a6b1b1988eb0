#!/usr/bin/env bash
# Provision what rzgate needs and record what it provided in $OUT/toolchain.json:
#   QEMU 11.x (plugin API v7), the aarch64 cross compiler and kernel build tools, dtc,
#   cpio, a static arm64 busybox, the static arm64 C library (kernel selftests) and
#   Debian's linux-source-7.2.
# Debian 12 has none of QEMU 11 or linux-source-7.2, so they come from a Debian 13 root
# (trixie + trixie-backports, linux-source from unstable), made with debootstrap from the
# mirror the host's apt already uses. Every stage leaves a marker; an interrupted run
# resumes at the stage it did not finish. A host qemu-system-aarch64 >= 11 is used instead
# of the root's when present (or QEMU=/path/to/qemu-system-aarch64).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

KERNEL_SERIES=${KERNEL_SERIES:-7.2}
ROOT_PACKAGES_BACKPORTS="qemu-system-arm"
ROOT_PACKAGES="gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu make bc flex bison
  device-tree-compiler cpio libc6-dev gcc xz-utils patch kmod python3 libelf-dev"

stage_done() { [ -f "$ROOT/.rzgate-stage-$1" ]; }
mark_done() { touch "$ROOT/.rzgate-stage-$1"; }

[ "$(id -u)" = 0 ] || die "provisioning the Debian 13 root needs root (debootstrap and chroot); run as root or put a prepared root at RZGATE_ROOT"

mirror=${DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
    mirror=$(host_debian_mirror) || die "no Debian mirror found in /etc/apt/sources.list or /etc/apt/sources.list.d/*.sources; set DEBIAN_MIRROR=<url>"
fi

mkdir -p "$RZGATE_CACHE" "$TOOLBIN" "$OUT"

# Stage 1: the minbase root. debootstrap cannot resume, so it works in a scratch
# directory that is renamed only when it succeeded; an interrupted one is started over.
if [ ! -f "$ROOT/.rzgate-stage-debootstrap" ]; then
    if ! command -v debootstrap >/dev/null 2>&1; then
        say "installing debootstrap on the host"
        apt-get update -qq >/dev/null || die "apt-get update failed on the host (is the mirror $mirror reachable?)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null ||
            die "cannot install debootstrap on the host (apt-get install debootstrap failed)"
    fi
    partial="$ROOT.partial"
    rm -rf "$partial"
    say "debootstrap trixie (minbase) into $ROOT from $mirror"
    if ! debootstrap --variant=minbase trixie "$partial" "$mirror" >"$RZGATE_CACHE/debootstrap.log" 2>&1; then
        tail -n 20 "$RZGATE_CACHE/debootstrap.log" >&2
        die "debootstrap failed (log: $RZGATE_CACHE/debootstrap.log); is $mirror reachable and does it carry trixie?"
    fi
    rm -rf "$ROOT"
    mv "$partial" "$ROOT"
    mark_done debootstrap
fi

# Stage 2: apt sources inside the root. unstable is pinned low so that only what we ask
# for by name (linux-source-7.2) comes from it. A mirror may be a frozen snapshot whose
# Release files have expired: check-valid-until=no (signatures are still checked).
if ! stage_done sources; then
    cat >"$ROOT/etc/apt/sources.list" <<EOF
deb [check-valid-until=no] $mirror trixie main
deb [check-valid-until=no] $mirror trixie-backports main
deb [check-valid-until=no] $mirror unstable main
EOF
    cat >"$ROOT/etc/apt/preferences.d/rzgate" <<'EOF'
Package: *
Pin: release a=unstable
Pin-Priority: 100
EOF
    echo 'APT::Install-Recommends "false";' >"$ROOT/etc/apt/apt.conf.d/99rzgate"
    in_root dpkg --add-architecture arm64
    mark_done sources
fi

if ! stage_done packages; then
    say "installing QEMU 11 (trixie-backports), the cross toolchain and linux-source-$KERNEL_SERIES into the root"
    in_root dpkg --configure -a >/dev/null 2>&1 || true
    in_root apt-get update -qq >"$RZGATE_CACHE/apt.log" 2>&1 ||
        { tail -n 20 "$RZGATE_CACHE/apt.log" >&2; die "apt-get update inside $ROOT failed (mirror $mirror)"; }
    # shellcheck disable=SC2086
    in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t trixie-backports \
        $ROOT_PACKAGES_BACKPORTS $ROOT_PACKAGES >>"$RZGATE_CACHE/apt.log" 2>&1 ||
        { tail -n 20 "$RZGATE_CACHE/apt.log" >&2; die "installing the toolchain packages inside $ROOT failed (log: $RZGATE_CACHE/apt.log)"; }
    in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t unstable \
        "linux-source-$KERNEL_SERIES" >>"$RZGATE_CACHE/apt.log" 2>&1 ||
        { tail -n 20 "$RZGATE_CACHE/apt.log" >&2; die "installing linux-source-$KERNEL_SERIES from unstable inside $ROOT failed (log: $RZGATE_CACHE/apt.log)"; }
    mark_done packages
fi

# Stage 3: a static arm64 busybox, unpacked from its package (no arm64 userland needed).
if ! stage_done busybox; then
    rm -rf "$ROOT/tmp/busybox" && mkdir -p "$ROOT/tmp/busybox"
    (in_root sh -c 'cd /tmp/busybox && apt-get -o APT::Sandbox::User=root download -qq busybox-static:arm64') >>"$RZGATE_CACHE/apt.log" 2>&1 ||
        die "downloading busybox-static:arm64 failed (log: $RZGATE_CACHE/apt.log)"
    in_root sh -c 'dpkg-deb -x /tmp/busybox/busybox-static_*_arm64.deb /opt/busybox-arm64'
    [ -x "$ROOT/opt/busybox-arm64/usr/bin/busybox" ] || die "busybox-static:arm64 did not contain usr/bin/busybox"
    mark_done busybox
fi

# Stage 4: the static arm64 C library, for the kernel's own selftests that ci/initramfs.sh
# builds from the kernel source (watchdog-test). Its own stage, so that a root provisioned
# before it gains it.
if ! stage_done selftest-libc; then
    say "installing the arm64 C library (static) into the root, for the kernel's selftests"
    { in_root apt-get update -qq && in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        libc6-dev-arm64-cross; } >>"$RZGATE_CACHE/apt.log" 2>&1 ||
        { tail -n 20 "$RZGATE_CACHE/apt.log" >&2; die "installing libc6-dev-arm64-cross inside $ROOT failed (log: $RZGATE_CACHE/apt.log)"; }
    mark_done selftest-libc
fi

# The sandbox of strangers' patches (ci/sandbox.sh, used by validate): bubblewrap and a
# user of its own. bwrap is the host's (Debian 12's 0.8 has all ci/sandbox.sh uses),
# not the Debian 13 root's: it must create its user namespace from the host's root
# directory (a chrooted process may not), and the host's apt is configured already.
host_tools=""
command -v bwrap >/dev/null 2>&1 || host_tools="$host_tools bubblewrap"
command -v mkfs.ext4 >/dev/null 2>&1 || host_tools="$host_tools e2fsprogs"
command -v setpriv >/dev/null 2>&1 && command -v prlimit >/dev/null 2>&1 || host_tools="$host_tools util-linux"
if [ -n "$host_tools" ]; then
    say "installing$host_tools on the host (the sandbox of validate's builds)"
    apt-get update -qq >/dev/null || die "apt-get update failed on the host (is the mirror $mirror reachable?)"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $host_tools >/dev/null ||
        die "cannot install$host_tools on the host (apt-get install failed)"
fi
sandbox_user=${SANDBOX_USER:-rzgate-build}
if ! id -u "$sandbox_user" >/dev/null 2>&1; then
    say "adding the system user $sandbox_user (it builds strangers' patches, in ci/sandbox.sh)"
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$sandbox_user" ||
        die "cannot add the user $sandbox_user (useradd failed)"
fi
# The matrix does not need the sandbox; validate does, and says so when it fails.
if ! probe=$(bash "$RZGATE_TOP/ci/sandbox.sh" -- true 2>&1); then
    say "warning: the build sandbox does not work on this machine, so 'validate' cannot build patches: $probe (it needs unprivileged user namespaces: sysctl user.max_user_namespaces > 0, and kernel.unprivileged_userns_clone=1 where that exists)"
fi

# Wrappers so that the host runs the root's binaries through the root's own loader
# (no chroot, no mounts); QEMU_MODULE_DIR keeps QEMU 11 off the host's older modules.
libpath="$ROOT/lib/x86_64-linux-gnu:$ROOT/usr/lib/x86_64-linux-gnu"
write_wrapper() { # name binary [extra env]
    cat >"$TOOLBIN/$1.tmp" <<EOF
#!/bin/sh
${3:-}exec "$ROOT/lib64/ld-linux-x86-64.so.2" --library-path "$libpath" "$ROOT$2" "\$@"
EOF
    chmod +x "$TOOLBIN/$1.tmp" && mv "$TOOLBIN/$1.tmp" "$TOOLBIN/$1"
}

qemu_bin=${QEMU:-}
if [ -z "$qemu_bin" ] && command -v qemu-system-aarch64 >/dev/null 2>&1; then
    host_major=$(qemu-system-aarch64 --version | sed -n 's/^QEMU emulator version \([0-9]*\).*/\1/p')
    if [ "${host_major:-0}" -ge 11 ]; then qemu_bin=$(command -v qemu-system-aarch64); fi
fi
if [ -n "$qemu_bin" ]; then
    ln -sf "$qemu_bin" "$TOOLBIN/qemu-system-aarch64"
    qemu_datadir=""
else
    write_wrapper qemu-system-aarch64 /usr/bin/qemu-system-aarch64 \
        "QEMU_MODULE_DIR=\"$ROOT/usr/lib/x86_64-linux-gnu/qemu\" export QEMU_MODULE_DIR; "
    qemu_datadir="$ROOT/usr/share/qemu"
fi
write_wrapper dtc /usr/bin/dtc

qemu_version=$("$TOOLBIN/qemu-system-aarch64" --version | head -n1 | sed 's/^QEMU emulator version //')
qemu_major=${qemu_version%%.*}
[ "$qemu_major" -ge 11 ] || die "QEMU $qemu_version is too old: rzgate needs QEMU 11.x (plugin API v7)"

pkgver() { in_root dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo unknown; }
ksrc_tar=$(ls "$ROOT"/usr/src/linux-source-"$KERNEL_SERIES".tar.* 2>/dev/null | head -n1)
[ -n "$ksrc_tar" ] || die "linux-source-$KERNEL_SERIES is installed but its tarball is missing under $ROOT/usr/src"

tmp="$OUT/toolchain.json.tmp"
cat >"$tmp" <<EOF
{
  "root": "$ROOT",
  "mirror_from": "host apt configuration",
  "qemu": {"binary": "$TOOLBIN/qemu-system-aarch64", "version": "$qemu_version", "datadir": "$qemu_datadir", "package": "$(pkgver qemu-system-arm)"},
  "cross_gcc": "$(in_root aarch64-linux-gnu-gcc -dumpfullversion)",
  "cross_gcc_package": "$(pkgver gcc-aarch64-linux-gnu)",
  "dtc": "$("$TOOLBIN/dtc" --version | sed 's/^Version: //')",
  "busybox_static_arm64": "$(ls "$ROOT"/tmp/busybox/ | sed -n 's/busybox-static_\(.*\)_arm64.deb/\1/p' | sed 's/%3a/:/')",
  "linux_source": {"package": "linux-source-$KERNEL_SERIES", "version": "$(pkgver "linux-source-$KERNEL_SERIES")", "tarball": "$ksrc_tar"},
  "host": "$(. /etc/os-release && echo "$PRETTY_NAME")"
}
EOF
mv "$tmp" "$OUT/toolchain.json"
echo "QEMU=$TOOLBIN/qemu-system-aarch64" >"$RZGATE_CACHE/toolchain.env.tmp"
echo "QEMU_DATADIR=$qemu_datadir" >>"$RZGATE_CACHE/toolchain.env.tmp"
echo "DTC=$TOOLBIN/dtc" >>"$RZGATE_CACHE/toolchain.env.tmp"
echo "BUSYBOX=$ROOT/opt/busybox-arm64/usr/bin/busybox" >>"$RZGATE_CACHE/toolchain.env.tmp"
echo "KERNEL_TARBALL=$ksrc_tar" >>"$RZGATE_CACHE/toolchain.env.tmp"
mv "$RZGATE_CACHE/toolchain.env.tmp" "$RZGATE_CACHE/toolchain.env"
say "toolchain ready: QEMU $qemu_version, $(in_root aarch64-linux-gnu-gcc --version | head -n1)"
