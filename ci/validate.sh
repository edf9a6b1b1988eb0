#!/usr/bin/env bash
# The body of ./validate (the front door; `make validate` calls it too): read the input
# into a series, check that every patch applies on BASE, build BASE and one kernel per
# patch (state k = BASE + patches 1..k, one incremental build tree), run the tests on
# each distinct kernel, report per patch and for the series.
#   env: PATCH (file | directory of NNNN-*.patch | mbox) or KERNEL_SRC + GIT_RANGE=a..b;
#        BASE (default upstream), TESTS, ON_ABORT, OUT
# Exit: 0 adds no abort, 1 adds one, 2 could not judge, 3 changes what a test observes.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
# The runner finds the plugin, the SoC and the matrix relative to the repository.
cd "$RZGATE_TOP"

base=${BASE:-upstream}
patch_in=${PATCH:-}
range=${GIT_RANGE:-}
dest=$OUT/validate
work=$OUT/validate-work
rm -rf "$work"
mkdir -p "$work/mails" "$work/patches" "$dest"
# A report of an earlier run must not pass for this run's: the reports are removed now
# and written whole (atomically) once there is a verdict.
rm -f "$dest/report.json" "$dest/report.md" "$dest/summary.txt"

if [ -n "$range" ]; then
    input="KERNEL_SRC=${KERNEL_SRC:-} GIT_RANGE=$range"
    reproduce="./validate KERNEL_SRC=${KERNEL_SRC:-} GIT_RANGE=$range BASE=$base${TESTS:+ TESTS=$TESTS}"
else
    input="PATCH=$patch_in"
    reproduce="./validate PATCH=$( [ -e "$patch_in" ] && realpath "$patch_in" || echo "$patch_in") BASE=$base${TESTS:+ TESTS=$TESTS}"
fi

# Could not judge: say why on stderr and in summary.txt (a bot replies with it), exit 2.
cannot_judge() {
    echo "rzgate: error: validate: $*" >&2
    printf 'rzgate validate: UNKNOWN: could not judge: %s\nexit status 2\n\nbase:    %s\ninput:   %s\n\nReproduce locally:\n  %s\n' \
        "$*" "$base" "$input" "$reproduce" >"$dest/summary.txt.partial"
    mv "$dest/summary.txt.partial" "$dest/summary.txt"
    exit 2
}

# --- the input, as one mail per file in $work/mails ---------------------------------
if [ -n "$range" ]; then
    [ -z "$patch_in" ] || cannot_judge "give PATCH= or GIT_RANGE=, not both"
    [ -n "${KERNEL_SRC:-}" ] || cannot_judge "GIT_RANGE=$range needs KERNEL_SRC=/path/to/linux (a git tree)"
    [[ "$range" == *..* ]] || cannot_judge "GIT_RANGE=$range: expected base..head"
    range_base=${range%%..*}
    git -C "$KERNEL_SRC" rev-parse --verify -q "$range_base^{commit}" >/dev/null ||
        cannot_judge "GIT_RANGE=$range: $range_base is not a commit of KERNEL_SRC=$KERNEL_SRC"
    git -C "$KERNEL_SRC" rev-parse --verify -q "${range#*..}^{commit}" >/dev/null ||
        cannot_judge "GIT_RANGE=$range: ${range#*..} is not a commit of KERNEL_SRC=$KERNEL_SRC"
    git -C "$KERNEL_SRC" format-patch -q --zero-commit --no-signature --stdout "$range" >"$work/range.mbox" ||
        cannot_judge "GIT_RANGE=$range: git format-patch failed in $KERNEL_SRC"
    [ -s "$work/range.mbox" ] || cannot_judge "GIT_RANGE=$range has no commits"
    # The base of the range is the tree the BASE variant is built from.
    export KERNEL_SRC_REV=$(git -C "$KERNEL_SRC" rev-parse "$range_base^{commit}")
    git mailsplit -o"$work/mails" "$work/range.mbox" >/dev/null || cannot_judge "GIT_RANGE=$range: cannot split its patches"
    sources=()
    while read -r c; do sources+=("commit $c"); done < <(git -C "$KERNEL_SRC" rev-list --reverse --no-merges "$range")
elif [ -z "$patch_in" ]; then
    cannot_judge "PATCH= is required: ./validate PATCH=fix.patch|dir/|series.mbox [BASE=upstream|prefix] (or KERNEL_SRC=... GIT_RANGE=a..b)"
elif [ -d "$patch_in" ]; then
    mapfile -t files < <(find "$patch_in" -maxdepth 1 -type f -name '[0-9][0-9][0-9][0-9]-*.patch' | sort)
    [ ${#files[@]} -gt 0 ] || cannot_judge "PATCH=$patch_in: a directory without NNNN-*.patch files"
    sources=()
    for f in "${files[@]}"; do
        # -b: a file that is a bare diff or one mail without an mbox "From " line.
        mkdir -p "$work/mails.one"
        git mailsplit -b -o"$work/mails.one" "$f" >/dev/null || cannot_judge "PATCH=$f: not a patch or mail"
        n=$(ls "$work/mails.one" | wc -l)
        [ "$n" -eq 1 ] || cannot_judge "PATCH=$f: holds $n messages (one patch a file in a directory)"
        mv "$work/mails.one"/* "$work/mails/$(printf '%04d' $((${#sources[@]} + 1)))"
        rmdir "$work/mails.one"
        sources+=("$f")
    done
elif [ -f "$patch_in" ]; then
    git mailsplit -b -o"$work/mails" "$patch_in" >/dev/null || cannot_judge "PATCH=$patch_in: not a patch, mail or mbox"
    sources=()
    for m in "$work/mails"/*; do sources+=("$patch_in, message $((10#$(basename "$m")))"); done
else
    cannot_judge "PATCH=$patch_in: no such file or directory"
fi

# --- one patch per mail: subject and diff (git am's mailinfo); cover letters skipped --
subjects=()
patches=()
labels=()
i=0
for m in "$work/mails"/*; do
    src=${sources[$i]:-$m}
    i=$((i + 1))
    k=$((${#patches[@]} + 1))
    info=$(git mailinfo "$work/msg" "$work/patches/$(printf '%04d' "$k").patch" <"$m") ||
        cannot_judge "$src: git mailinfo cannot read it"
    p=$work/patches/$(printf '%04d' "$k").patch
    if ! grep -q '^diff \|^--- ' "$p"; then
        # No diff: a cover letter (or a mail without a patch), not part of the series.
        rm -f "$p"
        continue
    fi
    subject=$(sed -n 's/^Subject: //p' <<<"$info")
    [ -n "$subject" ] || subject=$(basename "${src%%,*}")
    subjects+=("$subject")
    patches+=("$p")
    labels+=("$src")
done
count=${#patches[@]}
[ "$count" -gt 0 ] || cannot_judge "$input: no patch in it (only messages without a diff)"
say "validate: $count patch(es) on '$base': $input"

# --- the base variant, then every patch applied in order (on a scratch copy of only the
# files the series names: seconds, and git apply names the file and line of the hunk) --
bash "$RZGATE_TOP/ci/kernels.sh" "$base" || cannot_judge "the base variant '$base' did not build"
bash "$RZGATE_TOP/ci/initramfs.sh" || cannot_judge "the initramfs could not be packed"
tree_tag=""
if [ -n "${KERNEL_SRC:-}" ]; then
    tree_tag=user-$(printf '%s' "$(realpath "$KERNEL_SRC")" | sha256sum | cut -c1-12)-
fi
base_src=$ROOT/work/src-$tree_tag$base
[ -d "$base_src" ] || cannot_judge "no source tree of '$base' at $base_src"
scratch=$work/apply-check
mkdir -p "$scratch"
# A name with .. or a leading / is no file of the tree (git apply refuses the patch
# below): it must not lead this copy, which runs as root, out of the two trees.
for p in "${patches[@]}"; do
    sed -n -e 's#^diff --git a/\([^[:space:]]*\) b/\([^[:space:]]*\).*#\1\n\2#p' -e 's#^--- a/\([^[:space:]]*\).*#\1#p' "$p"
done | { grep -v -e '^/' -e '\(^\|/\)\.\.\(/\|$\)' || true; } | sort -u | while read -r f; do
    if [ -e "$base_src/$f" ] && [ ! -e "$scratch/$f" ]; then
        mkdir -p "$scratch/$(dirname "$f")"
        cp -p "$base_src/$f" "$scratch/$f"
    fi
done
# The stranger's patches are applied by the sandbox user, with only the scratch copy and
# the patch in sight (ci/sandbox.sh).
chown -R "${SANDBOX_USER:-rzgate-build}:" "$scratch" ||
    cannot_judge "cannot hand the scratch tree to the sandbox user ${SANDBOX_USER:-rzgate-build} (run 'make toolchain')"
for k in $(seq 1 "$count"); do
    p=${patches[$((k - 1))]}
    if ! out=$(bash "$RZGATE_TOP/ci/sandbox.sh" --root / --rw "$scratch:/work/linux" --ro "$p:/work/patch" --chdir /work/linux \
        --setenv GIT_CEILING_DIRECTORIES=/work --setenv GIT_CONFIG_NOSYSTEM=1 -- git apply --whitespace=nowarn /work/patch 2>&1); then
        grep -q '^rzgate: sandbox: error:' <<<"$out" &&
            cannot_judge "patches are applied in the sandbox, which could not be set up: $(sed -n 's/^rzgate: sandbox: error: //p' <<<"$out" | head -n1)"
        echo "$out" >&2
        hunk=$(sed -n 's/^error: patch failed: \(.*\)/\1/p' <<<"$out" | head -n1)
        what=$(grep -m1 '^error: ' <<<"$out" | sed 's/^error: //')
        on="'$base'"
        [ "$k" -eq 1 ] || on="$on + patches 1..$((k - 1))"
        if [ -n "$hunk" ]; then
            # The hunk's own header, as the author sees it in the patch.
            header=$(awk -v f="${hunk%:*}" -v l="${hunk##*:}" '/^diff --git /{ cur = ($3 == "a/" f) }
                cur && (index($0, "@@ -" l ",") == 1 || index($0, "@@ -" l " ") == 1) { print; exit }' "$p")
            what="the hunk at $hunk${header:+ ($header)} does not apply"
        fi
        subject=${subjects[$((k - 1))]}
        label=${labels[$((k - 1))]}
        cannot_judge "patch $k/$count \"$subject\" ($label) does not apply on $on: $what"
    fi
done

# --- build: state 1, 2, .., N in order in one tree, so that each build recompiles only
# what its patch touches (and the tree ends as the whole series) -----------------------
# Every state holds a stranger's patches: it is built in the sandbox (SANDBOX=1,
# ci/sandbox.sh), in a tree of its own, sbx-series-BASE. BASE is one of the project's
# own variants and builds as the matrix's kernels do.
tree=series-$base
build_state() { # k
    local k=$1 name start status=0 why
    name=validate-$base-$k
    [ "$count" -eq 1 ] && name=validate-$base
    start=$SECONDS
    # kernels.sh's messages go on to stderr as they come and into a file, for the reason.
    { SANDBOX=1 NAME=$name TREE=$tree EXTRA_PATCHES="${patches[*]:0:$k}" bash "$RZGATE_TOP/ci/kernels.sh" --base "$base" 2>&1 >&3 3>&- |
        tee "$work/build-$k.err" >&2; } 3>&1 || status=$?
    if [ "$status" -ne 0 ]; then
        why=$(sed -n 's/^rzgate: error: //p' "$work/build-$k.err" | tail -n1)
        cannot_judge "the kernel with patches 1..$k of $count did not build (patch $k/$count: \"${subjects[$((k - 1))]}\", ${labels[$((k - 1))]}): ${why:-see the output above}"
    fi
    echo "$name $((SECONDS - start))" >>"$work/builds"
}
build_start=$SECONDS
for k in $(seq 1 "$count"); do build_state "$k"; done
say "validate: $count kernel(s) built in $((SECONDS - build_start)) s"

# --- the manifest the runner reads ---------------------------------------------------
python3 - "$work/series.json" "$OUT/kernels" "$input" "$reproduce" "$count" "$base" "$work/builds" \
    "${subjects[@]}" -- "${labels[@]}" <<'PY'
import json, sys
out, kernels, source, reproduce, count, base, builds = sys.argv[1:8]
rest = sys.argv[8:]
count = int(count)
subjects, labels = rest[:count], rest[count + 1:]
cost = dict(line.split() for line in open(builds))
patches = []
for k in range(1, count + 1):
    name = "validate-%s" % base if count == 1 else "validate-%s-%d" % (base, k)
    patches.append({"subject": subjects[k - 1], "file": labels[k - 1],
                    "kernel_dir": "%s/%s" % (kernels, name), "build_s": float(cost[name])})
json.dump({"source": source, "reproduce": reproduce, "patches": patches}, open(out, "w"), indent=1)
PY

status=0
"$RZGATE_TOP/target/release/rzgate-runner" validate --initramfs "$OUT/initramfs.cpio" \
    --base-kernel "$OUT/kernels/$base" --base-name "$base" --series "$work/series.json" \
    --patch-name "$input" --out "$dest" ${TESTS:+--tests "$TESTS"} ${ON_ABORT:+--on-abort "$ON_ABORT"} ||
    status=$?
# The runner's 0, 1, 2, 3 are the contract; anything else (a crash) could not judge.
case $status in
0 | 1 | 2 | 3) exit "$status" ;;
*) cannot_judge "rzgate-runner validate ended with status $status" ;;
esac
