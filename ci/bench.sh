#!/usr/bin/env bash
# make bench: what the plugin costs, side by side in one run. Writes out/bench/bench.json.
# Every figure is {"min", "median", "max"} over BENCH_RUNS runs (default 9); runs with and
# without the plugin alternate so that machine noise hits both alike. Not a test: nothing
# here asserts a time.
#
#   overhead_ratio             boot + busy user-space workload (test bench-busy), the same
#                              guest work in both runs: the DT has the modelled devices
#                              (the nodes whose registers are in the window) disabled, so
#                              no driver touches the peripherals. QEMU with the plugin, all
#                              models and its full instrumentation / QEMU without the plugin,
#                              per alternating pair
#   overhead_with_drivers_ratio
#                              the same workload on the matrix's DT: with the plugin the
#                              CPG, ADC and TSU drivers probe and the thermal zone polls;
#                              without it the CPG probe fails after its CLK_MON timeouts
#                              and nothing else binds. Not like with like: reported
#   peripheral_overhead_ratio  the adc unbind/bind x 20 cell (adc-unbind-loop) with the
#                              plugin / the same command line without it. An upper bound:
#                              without the models the drivers do not probe, so the guest
#                              does less work
#   serror_registration_ratio  boot (test boot) with on_abort=serror, whose memory callbacks
#                              are registered with RW_REGS_PC / with on_abort=continue
#   qemu_peak_rss_ratio        QEMU's peak RSS with / without the plugin (bench-busy)
#   matrix_warm_s              wall time of the full default matrix, warm (BENCH_MATRIX_RUNS,
#                              default 1: it takes minutes; 0 skips it and reports null)
#
# BENCH_PLUGIN=FILE benchmarks that librzgate.so instead of target/release's (e.g. a copy, so
# that a rebuild during the run does not change what is measured).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[ -f "$RZGATE_CACHE/toolchain.env" ] || die "toolchain not provisioned: run 'make toolchain'"
source "$RZGATE_CACHE/toolchain.env"
cd "$RZGATE_TOP"
RUNS=${BENCH_RUNS:-9}
MATRIX_RUNS=${BENCH_MATRIX_RUNS:-1}
KERNEL=${BENCH_KERNEL:-upstream}
RUNNER=target/release/rzgate-runner
PLUGIN_ARGS=()
[ -n "${BENCH_PLUGIN:-}" ] && PLUGIN_ARGS=(--plugin "$BENCH_PLUGIN")
BENCH=$OUT/bench
mkdir -p "$BENCH"
rm -f "$BENCH"/*.times

# One runner boot per workload leaves the exact QEMU command line (qemu.cmd) behind;
# the benchmark replays it with and without the plugin.
command_for() { # test [runner args...] -> qemu command line with the plugin
    local test=$1
    shift
    "$RUNNER" boot --initramfs "$OUT/initramfs.cpio" --kernels-dir "$OUT/kernels" --kernel "$KERNEL" --test "$test" --out "$BENCH/prepare" "${PLUGIN_ARGS[@]}" "$@" >"$BENCH/prepare-$test.log" 2>&1 ||
        { tail -n 20 "$BENCH/prepare-$test.log" >&2; die "bench: the $test cell did not run cleanly"; }
    cat "$BENCH/prepare/cells/$KERNEL/$test/qemu.cmd"
}

timed() { # name command -> appends "seconds peak-rss-kb" to $BENCH/name.times
    local name=$1 cmd=$2
    /usr/bin/time -f "%e %M" -o "$BENCH/$name.one" bash -c "$cmd" >"$BENCH/$name.console" 2>&1 ||
        { tail -n 20 "$BENCH/$name.console" >&2; die "bench: $name failed"; }
    cat "$BENCH/$name.one" >>"$BENCH/$name.times"
}

busy_drivers=$(command_for bench-busy)

# The matrix's DTB with every node whose registers lie in the window disabled.
models_disabled_dtb() { # dtb-in dtb-out
    python3 - "${1%.dtb}.dts" "${2%.dtb}.dts" <<'PY'
import re, sys
src, dst = sys.argv[1], sys.argv[2]
dts = open(src).read()
window = re.search(r"rzgate-window@[0-9a-f]+ \{[^}]*?reg = <0x([0-9a-f]+) 0x([0-9a-f]+) 0x([0-9a-f]+) 0x([0-9a-f]+)>", dts, re.S)
if not window:
    sys.exit(f"{src}: no rzgate-window node under reserved-memory")
base = int(window[1], 16) << 32 | int(window[2], 16)
size = int(window[3], 16) << 32 | int(window[4], 16)
disabled = []
for m in re.finditer(r"^\t(?:\w+: )?([\w,.+-]+@[0-9a-f]+) \{\n((?:(?:\t\t.*)?\n)*?)\t\};", dts, re.M):
    reg = re.search(r"^\t\treg = <0x([0-9a-f]+) 0x([0-9a-f]+)", m[2], re.M)
    if reg and "compatible" in m[2] and base <= (int(reg[1], 16) << 32 | int(reg[2], 16)) < base + size:
        disabled.append(m[1])
if not disabled:
    sys.exit(f"{src}: no device node with registers in the window")
with open(dst, "w") as f:
    f.write(dts + "\n/* make bench: the modelled devices disabled */\n")
    f.write("".join(f'&{{/{node}}} {{ status = "disabled"; }};\n' for node in disabled))
print(" ".join(disabled))
PY
    "$DTC" -q -I dts -O dtb -o "$2" "${2%.dtb}.dts"
}
prepared_dtb=$(echo "$busy_drivers" | sed -n 's/.* -dtb \([^ ]*\) .*/\1/p')
disabled=$(models_disabled_dtb "$prepared_dtb" "$BENCH/models-disabled.dtb") ||
    die "bench: cannot disable the modelled devices in $prepared_dtb"
say "bench: disabled for overhead_ratio: $disabled"
busy=$(echo "$busy_drivers" | sed "s# -dtb [^ ]* # -dtb $BENCH/models-disabled.dtb #")
periph=$(command_for adc-unbind-loop)
boot_continue=$(command_for boot)
boot_serror=$(command_for boot --on-abort serror)
without_plugin() { echo "${1%% -plugin *}"; }

say "bench: $RUNS alternating runs of each pair on kernel $KERNEL"
for i in $(seq 1 "$RUNS"); do
    timed busy-plugin "$busy"
    timed busy-bare "$(without_plugin "$busy")"
    timed busy-drivers-plugin "$busy_drivers"
    timed busy-drivers-bare "$(without_plugin "$busy_drivers")"
    timed periph-plugin "$periph"
    timed periph-bare "$(without_plugin "$periph")"
    timed boot-continue "$boot_continue"
    timed boot-serror "$boot_serror"
done

for i in $(seq 1 "$MATRIX_RUNS"); do
    start=$(date +%s.%N)
    "$RUNNER" run --initramfs "$OUT/initramfs.cpio" --kernels-dir "$OUT/kernels" --out "$BENCH/matrix" >"$BENCH/matrix.log" 2>&1 || true
    python3 -c "import sys; print(float(sys.argv[1]) - float(sys.argv[2]), 0)" "$(date +%s.%N)" "$start" >>"$BENCH/matrix.times"
done

python3 - "$BENCH" "$RUNS" <<'PY'
import json, os, platform, statistics, subprocess, sys
bench, runs = sys.argv[1], int(sys.argv[2])

def column(name, idx):
    path = os.path.join(bench, name + ".times")
    if not os.path.exists(path):  # BENCH_MATRIX_RUNS=0
        return []
    with open(path) as f:
        return [float(line.split()[idx]) for line in f if line.strip()]

def stats(values):
    if not values:
        return None
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}

def ratios(a, b, idx=0):
    return [x / y for x, y in zip(column(a, idx), column(b, idx))]

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
result = {
    "overhead_ratio": stats(ratios("busy-plugin", "busy-bare")),
    "overhead_with_drivers_ratio": stats(ratios("busy-drivers-plugin", "busy-drivers-bare")),
    "peripheral_overhead_ratio": stats(ratios("periph-plugin", "periph-bare")),
    "serror_registration_ratio": stats(ratios("boot-serror", "boot-continue")),
    "qemu_peak_rss_ratio": stats(ratios("busy-plugin", "busy-bare", 1)),
    "matrix_warm_s": stats(column("matrix", 0)),
    "seconds": {n: stats(column(n, 0)) for n in
                ["busy-plugin", "busy-bare", "busy-drivers-plugin", "busy-drivers-bare", "periph-plugin", "periph-bare", "boot-continue", "boot-serror"]},
    "peak_rss_kb": {n: stats(column(n, 1)) for n in ["busy-plugin", "busy-bare"]},
    "runs": runs,
    "machine": {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
                "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)},
}
tmp = os.path.join(bench, "bench.json.tmp")
with open(tmp, "w") as f:
    json.dump(result, f, indent=2)
os.rename(tmp, os.path.join(bench, "bench.json"))
for key in ["overhead_ratio", "overhead_with_drivers_ratio", "peripheral_overhead_ratio", "serror_registration_ratio", "qemu_peak_rss_ratio", "matrix_warm_s"]:
    s = result[key]
    if s is None:
        print(f"{key:28} (not measured)")
        continue
    print(f"{key:28} min {s['min']:8.3f}  median {s['median']:8.3f}  max {s['max']:8.3f}")
print(f"written: {os.path.join(bench, 'bench.json')}")
PY
