#!/usr/bin/env bash
# Build the guest kernel variants (guest-tests/variants) from Debian's linux-source
# (or KERNEL_SRC=/path/to/linux) inside the Debian 13 root.
#   usage: ci/kernels.sh [VARIANT...]            default: every variant
#          EXTRA_PATCHES="a.patch b.patch" NAME=x [TREE=t] ci/kernels.sh --base VARIANT
#             builds variant NAME = VARIANT's patches + EXTRA_PATCHES (validate), in the
#             source and build trees src-TREE / build-TREE (default: NAME), so that the
#             states of a series share one incremental build directory
# Patches apply with `git apply` (git am's semantics: renames, new and deleted files,
# mode changes), in order; KERNEL_SRC_REV=<commit> takes KERNEL_SRC's tree at that commit
# (git archive) instead of its working tree.
# Layout (cache, outside the work tree):
#   $ROOT/work/pristine-<version>   the unpacked source, never modified
#   $ROOT/work/src-<variant>        hard-link copy + the variant's patches
#   $ROOT/work/build-<variant>      O= build directory (incremental)
# Products: $OUT/kernels/<variant>/{Image,System.map,config,kernel.json}
set -euo pipefail
source "$(dirname "$0")/lib.sh"

[ -f "$RZGATE_CACHE/toolchain.env" ] || die "toolchain not provisioned: run 'make toolchain'"
source "$RZGATE_CACHE/toolchain.env"

VARIANTS_FILE=$RZGATE_TOP/guest-tests/variants
PATCH_DIR=$RZGATE_TOP/guest-tests/patches
FRAGMENT=$RZGATE_TOP/guest-tests/kernel.config
JOBS=${JOBS:-$(nproc)}
# The user of sandboxed builds (SANDBOX=1: strangers' patches; ci/sandbox.sh).
export SANDBOX_USER=${SANDBOX_USER:-rzgate-build}
WORK=$ROOT/work
mkdir -p "$WORK" "$OUT/kernels"

variant_patches() { # name -> patch file names
    awk -v v="$1" '$1 == v { for (i = 2; i <= NF; i++) print $i; found = 1 } END { exit !found }' \
        <(grep -v '^[[:space:]]*#' "$VARIANTS_FILE")
}
all_variants() { grep -v '^[[:space:]]*#' "$VARIANTS_FILE" | awk 'NF { print $1 }'; }

# The pristine tree: Debian's tarball unpacked once, or the user's tree copied in (the
# build runs in the root, which cannot see the host's paths). tar keeps mtimes, so make
# stays incremental across re-syncs.
if [ -n "${KERNEL_SRC:-}" ]; then
    [ -f "$KERNEL_SRC/Makefile" ] && [ -d "$KERNEL_SRC/drivers/base" ] ||
        die "KERNEL_SRC=$KERNEL_SRC is not a Linux source tree (no Makefile / drivers/base)"
    src_id=user-$(printf '%s' "$(realpath "$KERNEL_SRC")" | sha256sum | cut -c1-12)
    # A user tree gets its own variant trees and build directories: its files' mtimes say
    # nothing about objects built from another source.
    dir_tag=$src_id-
    pristine=$WORK/pristine-$src_id
    mkdir -p "$pristine"
    if [ -n "${KERNEL_SRC_REV:-}" ]; then
        rev=$(git -C "$KERNEL_SRC" rev-parse --verify -q "$KERNEL_SRC_REV^{commit}") ||
            die "KERNEL_SRC=$KERNEL_SRC: $KERNEL_SRC_REV is not a commit"
        # A commit's tree never changes: synced once, it is not copied again (a series
        # builds BASE and each state with one kernels.sh run apiece).
        if [ "$(cat "$pristine/.rzgate-rev" 2>/dev/null)" != "$rev" ]; then
            say "syncing $KERNEL_SRC at $rev into the build root"
            rm -f "$pristine/.rzgate-rev"
            git -C "$KERNEL_SRC" archive --format=tar "$rev" | tar -C "$pristine" -xf - ||
                die "KERNEL_SRC=$KERNEL_SRC: cannot export $rev (git archive failed)"
            echo "$rev" >"$pristine/.rzgate-rev"
        fi
    else
        rm -f "$pristine/.rzgate-rev"
        say "syncing $KERNEL_SRC into the build root"
        tar -C "$KERNEL_SRC" --exclude=.git -cf - . | tar -C "$pristine" -xf -
    fi
    # Read, not `make kernelversion`: the tree's Makefile may be a stranger's (GIT_RANGE),
    # and would run as root on the host.
    kernel_version="user tree $KERNEL_SRC ($(awk -F' *= *' '$1 == "VERSION" { v = $2 } $1 == "PATCHLEVEL" { p = $2 }
        $1 == "SUBLEVEL" { s = $2 } $1 == "EXTRAVERSION" { e = $2 } END { print (v == "" ? "unknown" : v "." p "." s e) }' "$KERNEL_SRC/Makefile"))"
else
    deb_version=$(in_root dpkg-query -W -f='${Version}' "linux-source-${KERNEL_SERIES:-7.2}")
    src_id=$deb_version
    dir_tag=""
    pristine=$WORK/pristine-$deb_version
    if [ ! -f "$pristine/.rzgate-unpacked" ]; then
        say "unpacking $(basename "$KERNEL_TARBALL") ($deb_version)"
        rm -rf "$pristine" "$WORK/unpack.partial"
        mkdir -p "$WORK/unpack.partial"
        tar -C "$WORK/unpack.partial" -xf "$KERNEL_TARBALL"
        mv "$WORK/unpack.partial"/linux-source-* "$pristine"
        rm -rf "$WORK/unpack.partial"
        touch "$pristine/.rzgate-unpacked"
    fi
    kernel_version="linux-source-${KERNEL_SERIES:-7.2} $deb_version"
fi

# An absolute path or one with a .. component is never a file of the tree (git apply
# refuses such patches); root must not touch what it names.
touched_files() { # patch files -> the paths they modify, create, delete or rename (both names)
    for p in "$@"; do
        sed -n -e 's#^+++ b/\([^[:space:]]*\).*#\1#p' -e 's#^--- a/\([^[:space:]]*\).*#\1#p' \
            -e 's#^diff --git a/\([^[:space:]]*\) b/\([^[:space:]]*\).*#\1\n\2#p' \
            -e 's#^rename \(from\|to\) \(.*\)#\2#p' "$p"
    done | grep -v -e '^/' -e '\(^\|/\)\.\.\(/\|$\)' | sort -u || true
}

# git apply, never inside a repository the cache may sit in (it would apply relative to
# that repository's root): the ceiling stops git's search at the tree's parent. A
# stranger's patch (SANDBOX=1) is applied by the sandbox user with only the tree and the
# patch in sight: git's own refusals (absolute paths, .., writing beyond a symlink) are
# then not the only wall.
git_apply_in() { # dir patch
    if [ "${SANDBOX:-0}" = 1 ]; then
        bash "$RZGATE_TOP/ci/sandbox.sh" --root / --rw "$1:/work/linux" --ro "$2:/work/patch" --chdir /work/linux \
            --setenv GIT_CEILING_DIRECTORIES=/work --setenv GIT_CONFIG_NOSYSTEM=1 -- git apply --whitespace=nowarn /work/patch
    else
        (cd "$1" && GIT_CEILING_DIRECTORIES=$(dirname "$1") git apply --whitespace=nowarn "$2")
    fi
}

sandbox_setup_failed() { # output of git_apply_in
    local err
    err=$(sed -n 's/^rzgate: sandbox: error: //p' <<<"$1" | head -n1)
    [ -z "$err" ] || die "the sandbox that applies strangers' patches could not be set up: $err"
}

# Give the listed paths (one per line on stdin, relative to dir) a fresh mtime, so that
# make recompiles what depends on them. -h: a symlink a patch made is not followed.
refresh_mtimes() { # dir
    (cd "$1" && sort -u | while read -r f; do [ -n "$f" ] && [ -e "$f" ] && touch -h "$f"; done) || true
}

# Make src-<name> = pristine + patches. Rebuilt only when the patch stack changes; every
# file the old or the new stack touched gets a fresh mtime so make recompiles it.
prepare_tree() { # name patch-paths...
    local name=$1; shift
    local src=$WORK/src-$name stamp stack
    stack=$( { echo "$src_id"; for p in "$@"; do sha256sum <"$p"; done; })
    stamp=$(sha256sum <<<"$stack" | cut -c1-16)
    # root writes and reads these state files in the tree: a patch that made one (a
    # symlink to a host file, say) would have root write through it.
    local own
    own=$(touched_files "$@" | grep '^\.rzgate-' || true)
    [ -z "$own" ] || die "a patch of variant '$name' creates or changes $(echo $own): names rzgate keeps for its own state in the tree; refused"
    if [ -f "$src/.rzgate-stamp" ] && [ "$(cat "$src/.rzgate-stamp")" = "$stamp" ]; then
        return 0
    fi
    # The next state of a series: the tree holds a prefix of this stack, so only the
    # patches beyond it are applied, in place (seconds instead of a fresh copy of the
    # source). The stamp goes first: an interrupted or failed apply leaves a tree that the
    # next run rebuilds from the pristine source.
    local applied=0
    if [ -f "$src/.rzgate-stack" ] && [ -f "$src/.rzgate-stamp" ]; then
        applied=$(wc -l <"$src/.rzgate-stack")
        if [ "$applied" -ge "$(wc -l <<<"$stack")" ] || [ "$(head -n "$applied" <<<"$stack")" != "$(cat "$src/.rzgate-stack")" ]; then
            applied=0
        fi
    fi
    if [ "$applied" -gt 0 ]; then
        rm -f "$src/.rzgate-stamp"
        local p
        for p in "${@:$applied}"; do
            if ! out=$(git_apply_in "$src" "$p" 2>&1); then
                rm -rf "$src"
                sandbox_setup_failed "$out"
                echo "$out" | sed 's/^error: patch failed: \(.*\)/error: the hunk at \1 does not apply/' >&2
                die "patch $p does not apply for variant '$name' ($kernel_version + the patches before it): see the hunks named above"
            fi
        done
        touched_files "$@" >"$src/.rzgate-files"
        echo "$stack" >"$src/.rzgate-stack"
        echo "$stamp" >"$src/.rzgate-stamp"
        return 0
    fi
    local old_files=""
    [ -f "$src/.rzgate-files" ] && old_files=$(cat "$src/.rzgate-files")
    rm -rf "$src" "$src.partial"
    cp -al "$pristine" "$src.partial"
    if [ "${SANDBOX:-0}" = 1 ]; then
        # The sandbox user applies the patches: it may replace files (git apply unlinks
        # and writes anew) in directories of its own, never write the pristine files, which
        # stay root's and are shared through the hard links.
        find "$src.partial" -type d -exec chown "$SANDBOX_USER:" {} +
    fi
    local p
    for p in "$@"; do
        # git apply unlinks a file before it writes the new one, so the hard links to
        # the pristine tree are broken, never written through.
        if ! out=$(git_apply_in "$src.partial" "$p" 2>&1); then
            rm -rf "$src.partial"
            sandbox_setup_failed "$out"
            echo "$out" | sed 's/^error: patch failed: \(.*\)/error: the hunk at \1 does not apply/' >&2
            die "patch $p does not apply for variant '$name' ($kernel_version + the patches before it): see the hunks named above"
        fi
    done
    touched_files "$@" >"$src.partial/.rzgate-files"
    { echo "$old_files"; cat "$src.partial/.rzgate-files"; } | refresh_mtimes "$src.partial"
    echo "$stack" >"$src.partial/.rzgate-stack"
    echo "$stamp" >"$src.partial/.rzgate-stamp"
    mv "$src.partial" "$src"
}

# Run a command in the root with src-<name> and build-<name> bind-mounted at the fixed
# paths /work/linux and /work/build, in a private mount namespace that vanishes with the
# command. Every variant is thus compiled from the same paths: Kbuild's recorded command
# lines and dependencies match across variants, so a new variant's build directory can be
# seeded from another's and only what its patches change is recompiled.
in_build_ns() { # name command
    mkdir -p "$WORK/linux" "$WORK/build"
    unshare --mount --propagation private sh -c '
        mount --bind "$1/src-$2" "$1/linux" && mount --bind "$1/build-$2" "$1/build" || exit 97
        shift 2
        exec chroot "$0" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 sh -c "$1"
    ' "$ROOT" "$WORK" "$1" "$2"
}

# Why a sandboxed build failed, in words, from its log: the denials the sandbox causes
# (see ci/sandbox.sh) have their own errno messages.
sandbox_denials() { # log
    local log=$1 line
    line=$(grep -m1 -E 'Network is unreachable|Connection refused|Temporary failure in name resolution|Name or service not known|Could not resolve host' "$log" || true)
    [ -z "$line" ] || echo "it tried to reach the network, which the sandbox does not have ($line)"
    line=$(grep -m1 -E 'Read-only file system' "$log" || true)
    [ -z "$line" ] || echo "it tried to write outside its build tree, which is read-only in the sandbox ($line)"
    line=$(grep -m1 -E 'Permission denied|Operation not permitted' "$log" || true)
    [ -z "$line" ] || echo "it was refused an access as the unprivileged build user ($line)"
    # A host path is simply not there: an absolute path outside what the sandbox shows.
    line=$(grep -E 'No such file or directory|Directory nonexistent' "$log" | grep -E "(^|[ '\"(])/" |
        grep -vE "(^|[ '\"(])/(work/linux|work/build|usr|tmp|proc|dev|etc)(/|[ :'\"])" | head -n1 || true)
    [ -z "$line" ] || echo "it tried to reach a host path, which the sandbox does not show ($line)"
}

# A stranger's patch (SANDBOX=1, validate): configure and build as the sandbox user in
# ci/sandbox.sh. The tree is sbx-<tree>, never a tree root builds in: a hostile build may
# leave anything in its build directory (a host program of scripts/ replaced, say), which
# only ever runs again in the sandbox. The build directory is an ext4 image (the disk
# limit), the source read-only, and the products come out through a directory of their
# own that root checks (regular files only) before it takes them.
build_variant_sandboxed() { # name patch-paths...
    local name=$1; shift
    local dir=${dir_tag}sbx-${TREE:-$name}
    exec 8>"$WORK/.lock-$dir"
    flock 8
    prepare_tree "$dir" "$@"
    local img=$WORK/build-$dir.img seed=$dir_tag${SEED_VARIANT:-upstream} seed_args=()
    if [ ! -f "$img" ] && [ -f "$WORK/build-$seed/.rzgate-fragment" ]; then
        seed_args=(--seed "$WORK/build-$seed")
        # The seed's objects may be newer than this tree's patched files (see build_variant).
        cat "$WORK/src-$dir/.rzgate-files" "$WORK/src-$seed/.rzgate-files" 2>/dev/null |
            refresh_mtimes "$WORK/src-$dir"
    fi
    local frag_hash kmake dest=$OUT/kernels/$name log=$WORK/build-$dir.log
    frag_hash=$(sha256sum <"$FRAGMENT" | cut -c1-16)
    kmake="make -s -C /work/linux O=/work/build ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- -j$JOBS"
    rm -rf "$dest.partial"
    mkdir -p "$dest.partial"
    chown "$SANDBOX_USER:" "$dest.partial"
    say "building kernel '$name' in the sandbox (user $SANDBOX_USER, no network, tree $dir)"
    local start=$SECONDS status=0
    bash "$RZGATE_TOP/ci/sandbox.sh" --disk "$img:/work/build" "${seed_args[@]}" \
        --ro "$WORK/src-$dir:/work/linux" --ro "$FRAGMENT:/work/rzgate.fragment" --rw "$dest.partial:/work/out" \
        --log "$log" --setenv KBUILD_BUILD_USER=rzgate --setenv KBUILD_BUILD_HOST=sandbox -- sh -c '
        set -e
        if [ ! -f /work/build/.config ] || [ "$(cat /work/build/.rzgate-fragment 2>/dev/null)" != "$1" ]; then
            echo "rzgate: configuring"
            $2 KCONFIG_ALLCONFIG=/work/rzgate.fragment allnoconfig >/dev/null
            echo "$1" >/work/build/.rzgate-fragment
        fi
        $2 Image
        cp /work/build/arch/arm64/boot/Image /work/build/System.map /work/build/vmlinux /work/out/
        cp /work/build/.config /work/out/config' sandboxed-build "$frag_hash" "$kmake" || status=$?
    if [ "$status" -ne 0 ]; then
        rm -rf "$dest.partial"
        [ "$status" -ne 125 ] || die "the sandbox for variant '$name' could not be set up (see above): untrusted patches are built only in it"
        echo "rzgate: the last lines of the build log ($log):" >&2
        tail -n 25 "$log" | sed 's/^/    /' >&2
        local why
        why=$(sandbox_denials "$log")
        if [ -n "$why" ]; then
            echo "$why" | sed 's/^/rzgate: sandbox denial: /' >&2
            die "kernel build failed for variant '$name' in the sandbox, which denied it: $(echo "$why" | sed 's/ (.*//' | paste -sd ';' | sed 's/;/; /g') (log: $log)"
        fi
        [ "$status" -ne 124 ] || die "kernel build of variant '$name' exceeded the sandbox's time limit (${SANDBOX_TIME:-1800} s) (log: $log)"
        die "kernel build failed for variant '$name' in the sandbox, exit status $status (log: $log)"
    fi
    # Nothing of the sandbox runs any more (PID namespace): what is in the directory now
    # stays as it is checked.
    local f odd
    odd=$(find "$dest.partial" -mindepth 1 \( ! -type f -o -links +1 \) -printf '%P\n' | head -n 5)
    for f in Image System.map vmlinux config; do [ -f "$dest.partial/$f" ] || odd="$odd $f(missing)"; done
    [ -z "$odd" ] || { rm -rf "$dest.partial"; die "the sandboxed build of '$name' left unexpected outputs: $odd"; }
    chown -R root:root "$dest.partial"
    chmod 0755 "$dest.partial"
    local sym missing=""
    for sym in $(sed -n 's/^\(CONFIG_[A-Z0-9_]*\)=y$/\1/p' "$FRAGMENT"); do
        grep -q "^$sym=y$" "$dest.partial/config" || missing="$missing $sym"
    done
    [ -z "$missing" ] || { rm -rf "$dest.partial"; die "guest-tests/kernel.config: these symbols did not stick in the $name kernel's .config (missing dependency or renamed, or the patch's Kconfig):$missing"; }
    cat >"$dest.partial/kernel.json" <<JSON
{"variant": "$name", "source": "$kernel_version", "patches": [$(for p in "$@"; do printf '"%s",' "$(basename "$p")"; done | sed 's/,$//')], "vmlinux": "$dest/vmlinux", "build_dir": "$img", "source_dir": "$WORK/src-$dir", "sandboxed": true}
JSON
    rm -rf "$dest" && mv "$dest.partial" "$dest"
    exec 8>&-
    say "kernel '$name' ready in $((SECONDS - start)) s (sandboxed): $dest/Image"
}

build_variant() { # name patch-paths...
    if [ "${SANDBOX:-0}" = 1 ]; then
        build_variant_sandboxed "$@"
        return
    fi
    local name=$1; shift
    local dir=$dir_tag${TREE:-$name}
    # Two builds of one tree at once would corrupt it (a series switches its tree between
    # states; two validations may run side by side): one at a time, the other waits.
    exec 8>"$WORK/.lock-$dir"
    flock 8
    prepare_tree "$dir" "$@"
    local build=/work/build-$dir seed=$dir_tag${SEED_VARIANT:-upstream}
    if [ ! -d "$ROOT$build" ] && [ -f "$WORK/build-$seed/.rzgate-fragment" ]; then
        cp -a "$WORK/build-$seed" "$ROOT$build"
        # The seed's objects may be newer than this tree's patched files: every file
        # either patch stack touches must look changed, or make would keep the seed's
        # objects for them.
        cat "$WORK/src-$dir/.rzgate-files" "$WORK/src-$seed/.rzgate-files" 2>/dev/null |
            refresh_mtimes "$WORK/src-$dir"
    fi
    mkdir -p "$ROOT$build"
    local kmake="make -s -C /work/linux O=/work/build ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- -j$JOBS"
    local frag_hash
    frag_hash=$(sha256sum <"$FRAGMENT" | cut -c1-16)
    if [ ! -f "$ROOT$build/.config" ] || [ "$(cat "$ROOT$build/.rzgate-fragment" 2>/dev/null)" != "$frag_hash" ]; then
        cp "$FRAGMENT" "$ROOT$build/rzgate.fragment"
        in_build_ns "$dir" "$kmake KCONFIG_ALLCONFIG=/work/build/rzgate.fragment allnoconfig >/dev/null" ||
            die "kernel configuration failed for variant '$name'"
        local sym missing=""
        for sym in $(sed -n 's/^\(CONFIG_[A-Z0-9_]*\)=y$/\1/p' "$FRAGMENT"); do
            grep -q "^$sym=y$" "$ROOT$build/.config" || missing="$missing $sym"
        done
        [ -z "$missing" ] || die "guest-tests/kernel.config: these symbols did not stick in the $name kernel's .config (missing dependency or renamed):$missing"
        echo "$frag_hash" >"$ROOT$build/.rzgate-fragment"
    fi
    say "building kernel '$name'"
    local start=$SECONDS
    if ! in_build_ns "$dir" "$kmake Image >/work/build/build.log 2>&1"; then
        grep -E 'error|Error' "$ROOT$build/build.log" | head -n 20 >&2
        die "kernel build failed for variant '$name' (log: $ROOT$build/build.log)"
    fi
    local dest=$OUT/kernels/$name
    mkdir -p "$dest.partial"
    cp "$ROOT$build/arch/arm64/boot/Image" "$ROOT$build/System.map" "$dest.partial/"
    cp "$ROOT$build/.config" "$dest.partial/config"
    cat >"$dest.partial/kernel.json" <<JSON
{"variant": "$name", "source": "$kernel_version", "patches": [$(for p in "$@"; do printf '"%s",' "$(basename "$p")"; done | sed 's/,$//')], "vmlinux": "$ROOT$build/vmlinux", "build_dir": "$ROOT$build", "source_dir": "$WORK/src-$dir", "sandboxed": false}
JSON
    rm -rf "$dest" && mv "$dest.partial" "$dest"
    exec 8>&-
    say "kernel '$name' ready in $((SECONDS - start)) s: $dest/Image"
}

if [ "${1:-}" = "--base" ]; then
    base=${2:?--base needs a variant}
    name=${NAME:?NAME= is required with --base}
    mapfile -t base_patches < <(variant_patches "$base") || die "unknown base variant '$base' (guest-tests/variants lists: $(all_variants | tr '\n' ' '))"
    paths=()
    for p in "${base_patches[@]}"; do paths+=("$PATCH_DIR/$p"); done
    for p in ${EXTRA_PATCHES:-}; do
        [ -f "$p" ] || die "patch file '$p' does not exist"
        paths+=("$(realpath "$p")")
    done
    # Start from the base's objects: only what the extra patches touch recompiles.
    SEED_VARIANT=$base build_variant "$name" "${paths[@]}"
    exit 0
fi

variants=("$@")
[ ${#variants[@]} -gt 0 ] || mapfile -t variants < <(all_variants)
for v in "${variants[@]}"; do
    mapfile -t patches < <(variant_patches "$v") || die "unknown kernel variant '$v' (guest-tests/variants lists: $(all_variants | tr '\n' ' '))"
    paths=()
    for p in "${patches[@]}"; do
        [ -f "$PATCH_DIR/$p" ] || die "guest-tests/variants: variant '$v' names $p, which is not in guest-tests/patches/"
        paths+=("$PATCH_DIR/$p")
    done
    build_variant "$v" "${paths[@]}"
done
