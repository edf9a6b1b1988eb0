#!/usr/bin/env bash
# LAVA's dispatcher in rzgate's Debian 13 root, and running rzgate's LAVA jobs with it.
#   ci/lava.sh install             install lava-dispatcher (trixie-backports) into the root, once
#   ci/lava.sh prove               `make lava`: export LAVA_CELLS, run them with lava-run, import
#                                  the logs, and compare each cell with the runner's own run
#                                  of it (non-zero, naming the cell, when they differ)
#   ci/lava.sh compare REPORT DIR  the comparison alone: REPORT (import-lava's report.json)
#                                  against DIR/cells/<kernel>/<test>/cell.json (`boot`'s)
#   ci/lava.sh run DIR JOB...      run each job (DIR/jobs/JOB.yaml) with `lava-run` in the
#                                  root; DIR is the export directory (artifacts/, device.yaml);
#                                  the job's log goes to DIR/logs/JOB.yaml
# The packages come from the mirror the root's apt already uses (ci/toolchain.sh wrote it
# from the host's apt configuration); no registry host is named here.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# lava-run reads the artefacts through file:// URLs under this path inside the root; the
# export directory is bind-mounted there for the run only (`export-lava --artifact-url
# file://$ROOT_ARTIFACTS`).
ROOT_EXPORT=/work/lava
STAMP=$ROOT/.rzgate-stage-lava

[ "$(id -u)" = 0 ] || die "lava-dispatcher is installed and run inside the Debian 13 root with chroot: run as root"
[ -f "$ROOT/.rzgate-stage-packages" ] || die "the Debian 13 root at $ROOT is not provisioned: make toolchain first"

install_lava() {
    if [ -f "$STAMP" ] && [ -x "$ROOT/usr/bin/lava-run" ]; then
        return 0
    fi
    # Work trees share the root: one installs, another waits and then finds the stamp.
    exec 9>"$RZGATE_CACHE/.lock-lava-install"
    flock 9
    if [ -f "$STAMP" ] && [ -x "$ROOT/usr/bin/lava-run" ]; then
        exec 9>&-
        return 0
    fi
    say "installing lava-dispatcher from trixie-backports into $ROOT"
    # Package scripts must not start the dispatcher's services inside the root; the policy
    # file is ours only while we install (an admin's own one is left alone).
    local policy="$ROOT/usr/sbin/policy-rc.d" own_policy=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy"
        own_policy=1
    fi
    local status=0
    {
        in_root dpkg --configure -a &&
            in_root apt-get update -qq &&
            in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                -o DPkg::Lock::Timeout=300 -t trixie-backports lava-dispatcher
    } >"$RZGATE_CACHE/lava-apt.log" 2>&1 || status=$?
    [ -z "$own_policy" ] || rm -f "$policy"
    if [ "$status" -ne 0 ]; then
        tail -n 20 "$RZGATE_CACHE/lava-apt.log" >&2
        die "installing lava-dispatcher inside $ROOT failed (log: $RZGATE_CACHE/lava-apt.log)"
    fi
    [ -x "$ROOT/usr/bin/lava-run" ] || die "lava-dispatcher is installed but $ROOT/usr/bin/lava-run is missing"
    in_root dpkg-query -W -f='${Version}\n' lava-dispatcher >"$STAMP"
    exec 9>&-
    say "lava-dispatcher $(cat "$STAMP") ready in $ROOT"
}

# lava-run needs /proc, /dev and a devpts for its pexpect pty, and the export directory at
# ROOT_EXPORT; all of it in a private mount namespace that vanishes with the command.
in_lava_ns() { # export-dir command...
    local dir=$1
    shift
    mkdir -p "$ROOT$ROOT_EXPORT"
    unshare --mount --propagation private sh -c '
        root=$1 dir=$2 at=$3
        shift 3
        mount -t proc proc "$root/proc" && mount --rbind /dev "$root/dev" &&
            mount --bind "$dir" "$root$at" || exit 97
        exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"
    ' sh "$ROOT" "$dir" "$ROOT_EXPORT" "$@"
}

run_jobs() { # export-dir job...
    local dir job name status failed=0
    dir=$(cd "$1" && pwd)
    shift
    [ -f "$dir/device.yaml" ] || die "$dir/device.yaml is missing: run rzgate-runner export-lava first"
    mkdir -p "$dir/logs" "$dir/lava-out"
    for job in "$@"; do
        name=$(basename "$job" .yaml)
        [ -f "$dir/jobs/$name.yaml" ] || die "no job $dir/jobs/$name.yaml"
        rm -rf "$dir/lava-out/$name" "$dir/logs/$name.yaml"
        status=0
        # lava-run exits 0 when the job completed (whatever its test results) and 1 when it
        # ended in an error; the importer reads the log either way. Its output directory's
        # logs.yaml is the job log (the same entries a server keeps); what lava-run prints
        # (the log again, and Python's own complaints) goes beside it.
        # The job id names the dispatcher's scratch directory in the shared root: unique
        # per process, so that two work trees can run the same cell at once.
        in_lava_ns "$dir" lava-run --job-id "$name-$$" --output-dir "$ROOT_EXPORT/lava-out/$name" \
            --device "$ROOT_EXPORT/device.yaml" "$ROOT_EXPORT/jobs/$name.yaml" \
            >"$dir/logs/$name.out" 2>&1 || status=$?
        if [ "$status" -eq 97 ]; then
            die "cannot set up the mounts for lava-run in $ROOT"
        fi
        if [ ! -f "$dir/lava-out/$name/logs.yaml" ]; then
            tail -n 20 "$dir/logs/$name.out" >&2
            die "lava-run $name (exit status $status) wrote no log (its output: $dir/logs/$name.out)"
        fi
        cp "$dir/lava-out/$name/logs.yaml" "$dir/logs/$name.yaml"
        say "lava-run $name: exit status $status (log: $dir/logs/$name.yaml)"
        [ "$status" -le 1 ] || failed=1
    done
    return "$failed"
}

# The runner's own verdicts of the same cells (`rzgate-runner boot`, which also takes
# tests outside the matrix) and the comparison with the imported ones.
LAVA_CELLS=${LAVA_CELLS:-upstream:boot,prefix:adc-unbind,upstream:selftest-panic}
RUNNER=$RZGATE_TOP/target/release/rzgate-runner

prove() {
    local dir=$OUT/lava cell kernel test jobs=() status=0
    [ -x "$RUNNER" ] || die "$RUNNER is missing: make plugin"
    install_lava
    rm -rf "$dir/logs" "$dir/report" "$dir/local"
    "$RUNNER" export-lava --cells "$LAVA_CELLS" --out "$dir" --kernels-dir "$OUT/kernels" \
        --initramfs "$OUT/initramfs.cpio" --artifact-url "file://$ROOT_EXPORT/artifacts" >"$dir.export.log" 2>&1 ||
        { cat "$dir.export.log" >&2; die "rzgate-runner export-lava failed"; }
    for cell in ${LAVA_CELLS//,/ }; do
        jobs+=("${cell%%:*}--${cell#*:}")
    done
    run_jobs "$dir" "${jobs[@]}"
    # Exit status 1 only says a cell differs from the matrix (a cell outside it has no
    # expectation): the comparison below is the judge. 2 is a setup error.
    "$RUNNER" import-lava --index "$dir/index.json" --out "$dir/report" "$dir"/logs/*.yaml >"$dir/import.log" 2>&1 || status=$?
    [ "$status" -le 1 ] || { cat "$dir/import.log" >&2; die "rzgate-runner import-lava failed (exit status $status)"; }
    for cell in ${LAVA_CELLS//,/ }; do
        kernel=${cell%%:*} test=${cell#*:}
        "$RUNNER" boot --kernel "$kernel" --test "$test" --kernels-dir "$OUT/kernels" \
            --initramfs "$OUT/initramfs.cpio" --out "$dir/local" >"$dir/local-$kernel--$test.log" 2>&1 || true
        [ -f "$dir/local/cells/$kernel/$test/cell.json" ] ||
            { tail -n 20 "$dir/local-$kernel--$test.log" >&2; die "the runner's own run of $kernel:$test wrote no cell.json"; }
    done
    compare "$dir/report/report.json" "$dir/local"
}

# Each imported cell against the runner's own cell.json of it (LOCAL/cells/<k>/<t>/):
# outcome and root abort must agree; every difference is named, and the status is 1.
compare() { # report.json local-dir
    python3 - "$1" "$2" <<'PY'
import json, sys
report, local_dir = json.load(open(sys.argv[1])), sys.argv[2]

def root(cell):
    # The root abort's identity: what was accessed, how, and in which function.
    if not cell.get("aborts"):
        return None
    a = cell["aborts"][0]
    return (a["device"], a["register"], a["access"], a["symbol"].split("+")[0])

differ = []
for name in report["not_run"]:
    differ.append(f"{name['kernel']}:{name['test']}: no LAVA log")
for lab in report["cells"]:
    cell = f"{lab['kernel']}:{lab['test']}"
    try:
        own = json.load(open(f"{local_dir}/cells/{lab['kernel']}/{lab['test']}/cell.json"))
    except OSError as e:
        differ.append(f"{cell}: no cell.json of the runner's own run ({e})")
        continue
    said = f"LAVA {lab['outcome']} ({lab.get('error') or lab.get('root_abort') or 'no gated access'}), " \
           f"runner {own['outcome']} ({own.get('error') or own.get('root_abort') or 'no gated access'})"
    if lab["outcome"] != own["outcome"] or root(lab) != root(own):
        differ.append(f"{cell}: {said}")
    else:
        print(f"rzgate: lava: {cell}: agree: {said}")
for line in differ:
    print(f"rzgate: lava: MISMATCH {line}", file=sys.stderr)
sys.exit(1 if differ else 0)
PY
}

case "${1:-}" in
prove)
    prove
    ;;
compare)
    [ $# -eq 3 ] || die "usage: ci/lava.sh compare REPORT.json LOCAL-DIR"
    compare "$2" "$3"
    ;;
install)
    install_lava
    ;;
run)
    shift
    [ $# -ge 2 ] || die "usage: ci/lava.sh run EXPORT-DIR JOB..."
    install_lava
    run_jobs "$@"
    ;;
*)
    die "usage: ci/lava.sh prove | install | compare REPORT LOCAL-DIR | run EXPORT-DIR JOB..."
    ;;
esac
