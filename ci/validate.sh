#!/usr/bin/env bash
# make validate PATCH=FILE [BASE=upstream|prefix]: build BASE and BASE+FILE, run every
# test on both, say which aborts the patch adds or removes.
# Exit: 0 the patch adds no abort, 1 it adds one, 2 error (patch does not apply, build
# fails, a guest hangs or a cell errors).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
patch_file=${1:-}
base=${2:-upstream}
[ -n "$patch_file" ] || { echo "rzgate: error: PATCH= is required: make validate PATCH=path/to/fix.patch [BASE=upstream|prefix]" >&2; exit 2; }
[ -f "$patch_file" ] || { echo "rzgate: error: PATCH=$patch_file: no such file" >&2; exit 2; }
patch_file=$(realpath "$patch_file")
name=validate-$base

bash "$RZGATE_TOP/ci/kernels.sh" "$base" || exit 2
NAME=$name EXTRA_PATCHES="$patch_file" bash "$RZGATE_TOP/ci/kernels.sh" --base "$base" || exit 2

"$RZGATE_TOP/target/release/rzgate-runner" validate --initramfs "$OUT/initramfs.cpio" \
    --base-kernel "$OUT/kernels/$base" --base-name "$base" \
    --patched-kernel "$OUT/kernels/$name" --patch-name "$(basename "$patch_file")" \
    --out "$OUT/validate" ${TESTS:+--tests "$TESTS"} ${ON_ABORT:+--on-abort "$ON_ABORT"}
