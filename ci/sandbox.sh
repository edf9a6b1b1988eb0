#!/usr/bin/env bash
# Run one command on untrusted input (a patched kernel's make, git apply of a stranger's
# patch) as the unprivileged user rzgate-build, under bubblewrap, with nothing of the host
# visible but what the options name, no network, and limits on time, memory and disk.
#
#   ci/sandbox.sh [options] -- command [args...]        (as root)
#     --root DIR          the system the command runs on, read-only: DIR/usr (and DIR/etc
#                         unless DIR is /); default the Debian 13 root ($ROOT)
#     --ro SRC:DEST       bind SRC read-only at DEST
#     --rw SRC:DEST       bind SRC writable at DEST (SRC must belong to the sandbox user)
#     --disk IMG:DEST     an ext4 image of SANDBOX_DISK bytes, made on first use and owned by
#                         the sandbox user, mounted writable at DEST: what the command can
#                         write is bounded by the image's size
#     --seed DIR          copy DIR into a newly made --disk image first (root copies it)
#     --log FILE          the command's stdout and stderr (at most SANDBOX_LOG bytes)
#     --chdir DIR         working directory inside
#     --setenv NAME=VALUE
#   env: SANDBOX_TIME (wall seconds, default 1800), SANDBOX_MEM (bytes of memory for the
#        whole sandbox and of address space per process, default 4 GiB), SANDBOX_DISK
#        (default 4 GiB), SANDBOX_LOG (default 64 MiB), SANDBOX_USER (default rzgate-build)
#   exit: the command's status; 124 when the time limit killed it; 125 the sandbox could
#         not be set up (named on stderr)
#
# Why it is built this way:
# - bwrap runs as the unprivileged user itself and makes its user namespace from the
#   host's root directory (a chrooted process may not create one): the kernel's user
#   namespaces, not a chroot, are the boundary. The user maps to itself, never to root.
# - The paths bwrap binds live under root-only directories (/root/.cache...), which the
#   user cannot traverse: root binds them first onto a stage directory in a private mount
#   namespace of its own, which vanishes with this script, as does the --disk mount.
# - --unshare-all without --share-net: the only network is the sandbox's own loopback.
#   PID namespace: when the command ends, everything it started is killed before bwrap
#   returns, so root may read what it wrote without a race.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

fail() {
    echo "rzgate: sandbox: error: $*" >&2
    exit 125
}

if [ "${1:-}" != --inner ]; then
    [ "$(id -u)" = 0 ] || fail "ci/sandbox.sh needs root (it mounts the build disk and drops to ${SANDBOX_USER:-rzgate-build}); run it as root"
    user=${SANDBOX_USER:-rzgate-build}
    id -u "$user" >/dev/null 2>&1 || fail "no user '$user' on this machine: run 'make toolchain' (ci/toolchain.sh makes it)"
    command -v bwrap >/dev/null 2>&1 || fail "bwrap (Debian's bubblewrap) is not installed: run 'make toolchain'"
    stage=$(mktemp -d /run/rzgate-sandbox.XXXXXX)
    # Memory and processes of the whole sandbox (RLIMIT_AS alone is per process): a cgroup
    # when this machine lets root make one, v2 or v1.
    # The last task of a sandbox can still be leaving its cgroup when this script would
    # remove it: a cgroup that stays is removed by a later run, once its owner is gone.
    for cg in /sys/fs/cgroup/rzgate-sandbox-* /sys/fs/cgroup/memory/rzgate-sandbox-* /sys/fs/cgroup/pids/rzgate-sandbox-*; do
        [ -d "$cg" ] && [ ! -d "/proc/${cg##*-}" ] && rmdir "$cg" 2>/dev/null || true
    done
    cgroups=()
    mem=${SANDBOX_MEM:-$((4 << 30))}
    name=rzgate-sandbox-$$
    if grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null && mkdir "/sys/fs/cgroup/$name" 2>/dev/null; then
        cgroups+=("/sys/fs/cgroup/$name")
        echo "$mem" >"/sys/fs/cgroup/$name/memory.max"
        echo 0 >"/sys/fs/cgroup/$name/memory.swap.max" 2>/dev/null || true
        echo 4096 >"/sys/fs/cgroup/$name/pids.max" 2>/dev/null || true
    else
        if [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ] && mkdir "/sys/fs/cgroup/memory/$name" 2>/dev/null; then
            cgroups+=("/sys/fs/cgroup/memory/$name")
            echo "$mem" >"/sys/fs/cgroup/memory/$name/memory.limit_in_bytes"
            echo "$mem" >"/sys/fs/cgroup/memory/$name/memory.memsw.limit_in_bytes" 2>/dev/null || true
        fi
        if [ -d /sys/fs/cgroup/pids ] && mkdir "/sys/fs/cgroup/pids/$name" 2>/dev/null; then
            cgroups+=("/sys/fs/cgroup/pids/$name")
            echo 4096 >"/sys/fs/cgroup/pids/$name/pids.max"
        fi
    fi
    [ ${#cgroups[@]} -gt 0 ] || say "sandbox: no cgroup could be made here: memory is limited per process only (RLIMIT_AS $((mem >> 20)) MiB)"
    status=0
    SANDBOX_CGROUPS="${cgroups[*]}" unshare --mount --propagation private -- bash "$0" --inner "$stage" "$@" || status=$?
    for cg in "${cgroups[@]}"; do
        if [ -f "$cg/memory.oom_control" ] && grep -q '^oom_kill [1-9]' "$cg/memory.oom_control"; then
            echo "rzgate: sandbox: the memory limit ($((mem >> 20)) MiB) killed a process of the command" >&2
        elif [ -f "$cg/memory.events" ] && grep -q '^oom_kill [1-9]' "$cg/memory.events"; then
            echo "rzgate: sandbox: the memory limit ($((mem >> 20)) MiB) killed a process of the command" >&2
        fi
        rmdir "$cg" 2>/dev/null || true
    done
    rmdir "$stage"
    [ "$status" -ne 124 ] || echo "rzgate: sandbox: the time limit (${SANDBOX_TIME:-1800} s) killed the command" >&2
    exit "$status"
fi

# --- inside the private mount namespace, still root -------------------------------------
stage=$2
shift 2
user=${SANDBOX_USER:-rzgate-build}
uid=$(id -u "$user")
gid=$(id -g "$user")
sysroot=$ROOT
log=""
chdir=/
seed=""
disk=""
binds=()
envs=(--setenv PATH /usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --setenv HOME /tmp --setenv LANG C.UTF-8)
while [ $# -gt 0 ]; do
    case "$1" in
    --root) sysroot=${2:?--root needs a directory}; shift 2 ;;
    --ro | --rw) binds+=("$1" "${2:?$1 needs SRC:DEST}"); shift 2 ;;
    --disk) disk=${2:?--disk needs IMG:DEST}; shift 2 ;;
    --seed) seed=${2:?--seed needs a directory}; shift 2 ;;
    --log) log=${2:?--log needs a file}; shift 2 ;;
    --chdir) chdir=${2:?--chdir needs a directory}; shift 2 ;;
    --setenv) envs+=(--setenv "${2%%=*}" "${2#*=}"); shift 2 ;;
    --) shift; break ;;
    *) fail "unknown option '$1' (see the head of ci/sandbox.sh)" ;;
    esac
done
[ $# -gt 0 ] || fail "no command given after --"

mount -t tmpfs -o mode=755,size=64k rzgate-stage "$stage" || fail "cannot mount the stage tmpfs on $stage"
bw=(--unshare-all --unshare-user --die-with-parent --new-session --disable-userns --clearenv)
mkdir "$stage/usr"
mount --bind "$sysroot/usr" "$stage/usr" || fail "cannot bind $sysroot/usr (--root $sysroot)"
bw+=(--ro-bind "$stage/usr" /usr --symlink usr/bin /bin --symlink usr/sbin /sbin
    --symlink usr/lib /lib --symlink usr/lib64 /lib64)
if [ "$sysroot" != / ]; then
    # The toolchain root's own /etc (alternatives, ld.so.cache), never the host's.
    mkdir "$stage/etc"
    mount --bind "$sysroot/etc" "$stage/etc" || fail "cannot bind $sysroot/etc (--root $sysroot)"
    bw+=(--ro-bind "$stage/etc" /etc)
fi
bw+=(--proc /proc --dev /dev --size $((256 << 20)) --tmpfs /tmp)
i=0
while [ $i -lt ${#binds[@]} ]; do
    kind=${binds[$i]} spec=${binds[$((i + 1))]}
    src=${spec%%:*} dest=${spec#*:}
    [ -e "$src" ] || fail "$kind $spec: $src does not exist"
    if [ -d "$src" ]; then mkdir "$stage/b$i"; else touch "$stage/b$i"; fi
    mount --bind "$src" "$stage/b$i" || fail "cannot bind $src"
    if [ "$kind" = --ro ]; then bw+=(--ro-bind "$stage/b$i" "$dest"); else bw+=(--bind "$stage/b$i" "$dest"); fi
    i=$((i + 2))
done
if [ -n "$disk" ]; then
    img=${disk%%:*} dest=${disk#*:}
    mkdir "$stage/disk"
    if [ ! -f "$img" ]; then
        # A fresh image is made and seeded aside and renamed when whole: an interrupted
        # seeding leaves no half-made image behind.
        rm -f "$img.partial"
        truncate -s "${SANDBOX_DISK:-$((4 << 30))}" "$img.partial"
        mkfs.ext4 -q -F -m 0 -E root_owner="$uid:$gid" "$img.partial" >/dev/null 2>&1 ||
            fail "mkfs.ext4 failed on $img.partial (is e2fsprogs installed?)"
        mount -o loop,nosuid,nodev "$img.partial" "$stage/disk" || fail "cannot loop-mount $img.partial (no loop devices?)"
        if [ -n "$seed" ]; then
            cp -a "$seed/." "$stage/disk/" || fail "cannot seed $img from $seed"
            chown -R "$uid:$gid" "$stage/disk"
        fi
        umount "$stage/disk"
        mv "$img.partial" "$img"
    fi
    mount -o loop,nosuid,nodev "$img" "$stage/disk" || fail "cannot loop-mount $img (no loop devices?)"
    bw+=(--bind "$stage/disk" "$dest")
fi
bw+=("${envs[@]}" --chdir "$chdir" --remount-ro /)

mem=${SANDBOX_MEM:-$((4 << 30))}
run() {
    # Joins the cgroups before it becomes the command, so that all it starts is counted.
    local cg fd
    for cg in ${SANDBOX_CGROUPS:-}; do echo "$BASHPID" >"$cg/cgroup.procs"; done
    # bwrap passes on every open descriptor: one to a host file (a lock, a caller's pipe)
    # would be a way out. Only stdout and stderr go in; stdin is empty.
    for fd in $(ls /proc/$BASHPID/fd); do
        [ "$fd" -le 2 ] || eval "exec $fd>&-" 2>/dev/null || true
    done
    exec </dev/null
    exec timeout --kill-after=10 "${SANDBOX_TIME:-1800}" \
        prlimit --as="$mem" --fsize=$((2 << 30)) --core=0 -- \
        setpriv --reuid="$uid" --regid="$gid" --clear-groups --inh-caps=-all --no-new-privs -- \
        bwrap "${bw[@]}" -- "$@"
}
status=0
if [ -n "$log" ]; then
    # root writes the log outside the sandbox: its size is bounded here, not by the disk.
    (run "$@") 2>&1 | head -c "${SANDBOX_LOG:-$((64 << 20))}" >"$log" || status=${PIPESTATUS[0]}
    [ "$(stat -c %s "$log")" -lt "${SANDBOX_LOG:-$((64 << 20))}" ] ||
        echo "rzgate: sandbox: the command's output reached the log's limit (${SANDBOX_LOG:-$((64 << 20))} bytes): cut there" >&2
else
    (run "$@") || status=$?
fi
exit "$status"
