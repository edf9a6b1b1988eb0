#!/usr/bin/env bash
# make bench: what the plugin costs, side by side in one run. Writes out/bench/bench.json.
# Not a test: nothing here asserts a time. docs/performance.md explains every figure.
#
# Every QEMU run is timed by GNU time: wall time (%e), peak RSS (%M) and the CPU time of
# the QEMU process, user + sys (%U + %S). CPU time is the primary figure: on a shared
# machine a run waiting for a core gains wall time but no CPU time. Runs with and without
# the plugin are paired and alternate (BENCH_RUNS pairs, default 15; the order inside a
# pair flips every pair) so that what noise remains hits both alike. Each ratio figure
# is computed per pair and reported as {time, median, min, max, q1, q3, iqr, pairs}:
# `time` says which time it is a ratio of ("cpu" for the key itself, "wall" for its
# *_wall twin); q1/q3 are the quartiles of the pairs' ratios, iqr = q3 - q1.
#
#   overhead_ratio             boot + busy user-space workload (test bench-busy), the same
#                              guest work in both runs: the DT has the modelled devices
#                              (the nodes whose registers are in the window) disabled, so
#                              no driver touches the peripherals. QEMU with the plugin, all
#                              models and its full instrumentation / QEMU without the plugin
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
#   (each of the five also as <key>_wall: the same pairs' wall-time ratios)
#   qemu_peak_rss_ratio        QEMU's peak RSS with / without the plugin (bench-busy), per pair
#   boot_cell_ratio            the boot cell (test boot, with the plugin) on the matrix's DT /
#                              on the same DT with only the first slice's devices enabled
#                              (CPG, ADC, TSU and the mailbox SRAM: the platform's later
#                              peripherals disabled, so their drivers do not probe). What
#                              the platform adds to every boot, like for like in one run
#   boot_kernel_ratio, boot_user_ratio
#                              boot_cell_ratio's pairs split at the guest's "Run /init" by
#                              its printk stamps (guest seconds, which follow host time):
#                              kernel start to /init (every built-in driver probes there)
#                              and /init to the power-off (the boot test, most of it the
#                              DT selftest, whose loops grow with the enabled nodes)
#   boot_cpu_s, boot_wall_s    the boot cell (test boot, on_abort=continue) with the plugin:
#                              QEMU's CPU and wall seconds, over the BENCH_RUNS runs. To
#                              compare two commits, run `make bench` in each tree on the same
#                              machine and compare boot_cpu_s (docs/performance.md)
#   matrix_warm_s              wall time of the full default matrix, warm, its cells restored
#                              from the run's snapshots as `make run` does (BENCH_MATRIX_RUNS
#                              runs, default 1: it takes minutes; 0 skips it and reports
#                              null); matrix_warm_cpu_s: the CPU time of the runner and its
#                              QEMUs; matrix_cold_s, matrix_cold_cpu_s: the same with --cold,
#                              alternating with the restored runs
#   cells                      from those runs' reports: median cell and sum of cell times,
#                              restored and cold, and their ratios; cell_restore_ratio per
#                              restored cell (restored / cold duration, over the runs);
#                              where a cell's time goes (phases: QEMU start to the test's
#                              KTAP line, the test, its done line to QEMU's exit) as medians
#                              over the cells, restored and cold; retranslation_s, per restored
#                              cell its test phase minus the same cell's cold one (the empty
#                              translation cache); snapshot_s, the seconds the runner took to
#                              make each kernel's snapshot
#
# BENCH_PLUGIN=FILE benchmarks that librzgate.so instead of target/release's (e.g. a copy, so
# that a rebuild during the run does not change what is measured). There is no baseline
# plugin option: on the same command line a librzgate.so from another commit gets this
# tree's SoC description, which it rejects once the schema has changed (unknown keys), and
# it would not measure the commit's change to the guest DT.
#
# BENCH_BASELINE=DIR compares with another commit side by side, in this run: DIR is the
# out/bench of a `make bench` in a checkout of that commit (its prepared command lines:
# prepare/cells/<kernel>/{boot,bench-busy}/qemu.cmd and models-disabled.dtb, each with its
# own plugin, SoC file, DTB and initramfs). Its boot cell and its bench-busy run with the
# plugin alternate with this tree's, pair by pair:
#   baseline_boot_ratio        the boot cell, this commit / the baseline's
#   baseline_overhead_ratio    bench-busy with the plugin and the modelled devices disabled,
#                              this commit / the baseline's (the same guest work)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[ -f "$RZGATE_CACHE/toolchain.env" ] || die "toolchain not provisioned: run 'make toolchain'"
source "$RZGATE_CACHE/toolchain.env"
cd "$RZGATE_TOP"
RUNS=${BENCH_RUNS:-15}
MATRIX_RUNS=${BENCH_MATRIX_RUNS:-1}
KERNEL=${BENCH_KERNEL:-upstream}
RUNNER=target/release/rzgate-runner
PLUGIN=${BENCH_PLUGIN:-target/release/librzgate.so}
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "bench: BENCH_RUNS must be a positive number of pairs, not '$RUNS'"
[[ "$MATRIX_RUNS" =~ ^[0-9]+$ ]] || die "bench: BENCH_MATRIX_RUNS must be 0 or more, not '$MATRIX_RUNS'"
[ -z "${BENCH_BASELINE_PLUGIN:-}" ] ||
    die "bench: BENCH_BASELINE_PLUGIN is not supported (a plugin from another commit may not load this tree's SoC description); run 'make bench' in the other checkout and pass its out/bench as BENCH_BASELINE=DIR, see docs/performance.md"
# Wall seconds, peak RSS in kB, user and sys CPU seconds of the child and what it waited for.
TIME_FORMAT="%e %M %U %S"
/usr/bin/time -f "$TIME_FORMAT" -o /dev/null true 2>/dev/null ||
    die "bench: GNU time is missing (/usr/bin/time with -f; Debian package 'time')"
[ -x "$RUNNER" ] || die "bench: $RUNNER is missing: run 'make plugin'"
[ -f "$PLUGIN" ] || die "bench: the plugin $PLUGIN is missing: run 'make plugin' or fix BENCH_PLUGIN"
[ -f "$OUT/initramfs.cpio" ] || die "bench: $OUT/initramfs.cpio is missing: run 'make initramfs'"
[ -d "$OUT/kernels/$KERNEL" ] || die "bench: kernel '$KERNEL' is missing ($OUT/kernels/$KERNEL): run 'make kernels' or set BENCH_KERNEL"
PLUGIN_ARGS=(--plugin "$PLUGIN")
BENCH=$OUT/bench
mkdir -p "$BENCH"
rm -f "$BENCH"/*.times "$BENCH"/*.stamps
LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)

# Every measured guest runs with `norandmaps`: with its user space at random addresses the
# same guest work cost QEMU 1.84-2.31 s of CPU across six runs without the plugin, and
# 1.78-1.90 s in five at fixed addresses (docs/performance.md "Fixed user-space
# addresses"). Both sides of every pair get it, so the ratios compare like with like; the
# matrix's cells keep the default.
steady() { # qemu command line -> the same with norandmaps on the kernel command line
    [[ "$1" == *" -append '"* ]] || die "bench: no -append '...' in the command line: $1"
    echo "${1/ -append \'/ -append \'norandmaps }"
}

# One runner boot per workload leaves the exact QEMU command line (qemu.cmd) behind;
# the benchmark replays it with and without the plugin.
command_for() { # test [runner args...] -> qemu command line with the plugin
    local test=$1
    shift
    "$RUNNER" boot --initramfs "$OUT/initramfs.cpio" --kernels-dir "$OUT/kernels" --kernel "$KERNEL" --test "$test" --out "$BENCH/prepare" "${PLUGIN_ARGS[@]}" "$@" >"$BENCH/prepare-$test.log" 2>&1 ||
        { tail -n 20 "$BENCH/prepare-$test.log" >&2; die "bench: the $test cell did not run cleanly"; }
    steady "$(cat "$BENCH/prepare/cells/$KERNEL/$test/qemu.cmd")"
}

# bash -c execs a single command, so the child GNU time measures is QEMU itself.
timed() { # name command -> appends "wall-s peak-rss-kb user-s sys-s" to $BENCH/name.times
    local name=$1 cmd=$2
    /usr/bin/time -f "$TIME_FORMAT" -o "$BENCH/$name.one" bash -c "$cmd" >"$BENCH/$name.console" 2>&1 ||
        { tail -n 20 "$BENCH/$name.console" >&2; die "bench: $name failed (console: $BENCH/$name.console)"; }
    cat "$BENCH/$name.one" >>"$BENCH/$name.times"
    # The guest's printk stamps of "Run /init" (every built-in driver has probed) and of its
    # last kernel line (the power-off): "init-s end-s", "- -" where the console has none.
    sed -n 's/^\[ *\([0-9.]*\)\] Run \/init.*/init \1/p; s/^\[ *\([0-9.]*\)\] reboot: .*/end \1/p' "$BENCH/$name.console" |
        awk '{ at[$1] = $2 } END { print (at["init"] == "" ? "-" : at["init"]), (at["end"] == "" ? "-" : at["end"]) }' >>"$BENCH/$name.stamps"
}

pair() { # index name-a command-a name-b command-b: one pair, the order flipping with index
    if (($1 % 2)); then
        timed "$2" "$3"
        timed "$4" "$5"
    else
        timed "$4" "$5"
        timed "$2" "$3"
    fi
}

busy_drivers=$(command_for bench-busy)

# The matrix's DTB with every node whose registers lie in the window disabled.
# With a regex, the nodes whose compatible matches it stay enabled.
models_disabled_dtb() { # dtb-in dtb-out [keep-compatible-regex]
    python3 - "${1%.dtb}.dts" "${2%.dtb}.dts" "${3:-}" <<'PY'
import re, sys
src, dst, keep = sys.argv[1], sys.argv[2], sys.argv[3]
dts = open(src).read()
window = re.search(r"rzgate-window@[0-9a-f]+ \{[^}]*?reg = <0x([0-9a-f]+) 0x([0-9a-f]+) 0x([0-9a-f]+) 0x([0-9a-f]+)>", dts, re.S)
if not window:
    sys.exit(f"{src}: no rzgate-window node under reserved-memory")
base = int(window[1], 16) << 32 | int(window[2], 16)
size = int(window[3], 16) << 32 | int(window[4], 16)
disabled = []
for m in re.finditer(r"^\t(?:\w+: )?([\w,.+-]+@[0-9a-f]+) \{\n((?:(?:\t\t.*)?\n)*?)\t\};", dts, re.M):
    reg = re.search(r"^\t\treg = <0x([0-9a-f]+) 0x([0-9a-f]+)", m[2], re.M)
    compatible = re.search(r'^\t\tcompatible = (.*);$', m[2], re.M)
    if keep and compatible and re.search(keep, compatible[1]):
        continue
    if reg and compatible and base <= (int(reg[1], 16) << 32 | int(reg[2], 16)) < base + size:
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
# The first slice's devices: the CPG, the ADC, the TSU and the mailbox SRAM.
FIRST_SLICE='"renesas,r9a08g045-(cpg|adc|tsu)"|"mmio-sram"'
boot_dtb=$(echo "$boot_continue" | sed -n 's/.* -dtb \([^ ]*\) .*/\1/p')
platform_disabled=$(models_disabled_dtb "$boot_dtb" "$BENCH/first-slice.dtb" "$FIRST_SLICE") ||
    die "bench: cannot disable the platform's later devices in $boot_dtb"
say "bench: disabled for boot_cell_ratio: $platform_disabled"
boot_first_slice=$(echo "$boot_continue" | sed "s# -dtb [^ ]* # -dtb $BENCH/first-slice.dtb #")
boot_serror=$(command_for boot --on-abort serror)
without_plugin() { echo "${1%% -plugin *}"; }

BASELINE=${BENCH_BASELINE:-}
if [ -n "$BASELINE" ]; then
    for f in "prepare/cells/$KERNEL/boot/qemu.cmd" "prepare/cells/$KERNEL/bench-busy/qemu.cmd" models-disabled.dtb; do
        [ -f "$BASELINE/$f" ] || die "bench: BENCH_BASELINE=$BASELINE has no $f (expected the out/bench of a 'make bench' run in the other checkout)"
    done
    baseline_boot=$(steady "$(cat "$BASELINE/prepare/cells/$KERNEL/boot/qemu.cmd")")
    baseline_busy=$(steady "$(sed "s# -dtb [^ ]* # -dtb $BASELINE/models-disabled.dtb #" "$BASELINE/prepare/cells/$KERNEL/bench-busy/qemu.cmd")")
fi

say "bench: $RUNS alternating pairs of each kind on kernel $KERNEL (plugin $PLUGIN)"
for i in $(seq 1 "$RUNS"); do
    pair "$i" busy-plugin "$busy" busy-bare "$(without_plugin "$busy")"
    pair "$i" busy-drivers-plugin "$busy_drivers" busy-drivers-bare "$(without_plugin "$busy_drivers")"
    pair "$i" periph-plugin "$periph" periph-bare "$(without_plugin "$periph")"
    pair "$i" boot-serror "$boot_serror" boot-continue "$boot_continue"
    pair "$i" boot-platform "$boot_continue" boot-first-slice "$boot_first_slice"
    if [ -n "$BASELINE" ]; then
        pair "$i" boot-this "$boot_continue" boot-baseline "$baseline_boot"
        pair "$i" busy-this "$busy" busy-baseline "$baseline_busy"
    fi
done

# The default matrix restored from snapshots (as `make run`) and booted cold (--cold),
# alternating; each run's report is kept for the per-cell figures.
matrix_run() { # name i runner-args...
    local name=$1 i=$2
    shift 2
    /usr/bin/time -f "$TIME_FORMAT" -o "$BENCH/$name.one" \
        "$RUNNER" run --initramfs "$OUT/initramfs.cpio" --kernels-dir "$OUT/kernels" --out "$BENCH/$name-$i" "${PLUGIN_ARGS[@]}" "$@" >"$BENCH/$name-$i.log" 2>&1 ||
        say "bench: $name run $i did not match its expectations (timed all the same; see $BENCH/$name-$i.log)"
    # After a non-zero exit GNU time writes a "Command exited with..." line first.
    tail -n 1 "$BENCH/$name.one" >>"$BENCH/$name.times"
}
rm -rf "$BENCH"/matrix-[0-9]* "$BENCH"/matrix-cold-[0-9]*
for i in $(seq 1 "$MATRIX_RUNS"); do
    say "bench: matrix run $i of $MATRIX_RUNS (restored, then cold)"
    if [ $((i % 2)) -eq 1 ]; then
        matrix_run matrix "$i"
        matrix_run matrix-cold "$i" --cold
    else
        matrix_run matrix-cold "$i" --cold
        matrix_run matrix "$i"
    fi
done

COMMIT=$(git describe --always --dirty 2>/dev/null || echo unknown)
python3 - "$BENCH" "$RUNS" "$KERNEL" "$PLUGIN" "$COMMIT" "$LOADAVG_START" <<'PY'
import hashlib, json, os, platform, re, statistics, sys
bench, runs, kernel, plugin, commit, loadavg_start = sys.argv[1:]
runs = int(runs)
WALL, RSS, USER, SYS = range(4)

def column(name, basis):
    """One figure per run of `name`, in run order: wall or cpu (user + sys) seconds, rss kB, or
    the guest's seconds to "Run /init" (kernel) and from there to its power-off (user); None
    where the console had no such line."""
    if basis in ("kernel", "user"):
        path = os.path.join(bench, name + ".stamps")
        rows = [line.split() for line in open(path) if line.strip()] if os.path.exists(path) else []
        at = lambda init, end: None if "-" in (init, end) else float(init) if basis == "kernel" else float(end) - float(init)
        return [at(*r) for r in rows]
    path = os.path.join(bench, name + ".times")
    if not os.path.exists(path):  # BENCH_MATRIX_RUNS=0
        return []
    rows = [[float(x) for x in line.split()] for line in open(path) if line.strip()]
    if basis == "cpu":
        return [r[USER] + r[SYS] for r in rows]
    return [r[{"wall": WALL, "rss": RSS}[basis]] for r in rows]

def spread(values, digits):
    """median, min, max and the quartiles (linear interpolation between the sorted values)."""
    if not values:
        return None
    q1, q3 = statistics.quantiles(values, n=4, method="inclusive")[0::2] if len(values) > 1 else (values[0],) * 2
    r = lambda x: round(x, digits)
    return {"median": r(statistics.median(values)), "min": r(min(values)), "max": r(max(values)),
            "q1": r(q1), "q3": r(q3), "iqr": r(q3 - q1)}

def ratio(a, b, basis):
    """a / b for every pair (the i-th run of a with the i-th run of b)."""
    pairs = [x / y for x, y in zip(column(a, basis), column(b, basis)) if x is not None and y]
    s = spread(pairs, 4)
    return s and {"time": basis, **s, "pairs": [round(p, 4) for p in pairs]}

def seconds(name, basis):
    values = column(name, basis)
    s = spread(values, 3)
    return s and {"time": basis, **s, "values": [round(v, 3) for v in values]}

RATIOS = {
    "overhead_ratio": ("busy-plugin", "busy-bare"),
    "overhead_with_drivers_ratio": ("busy-drivers-plugin", "busy-drivers-bare"),
    "peripheral_overhead_ratio": ("periph-plugin", "periph-bare"),
    "serror_registration_ratio": ("boot-serror", "boot-continue"),
    "boot_cell_ratio": ("boot-platform", "boot-first-slice"),
    "baseline_boot_ratio": ("boot-this", "boot-baseline"),
    "baseline_overhead_ratio": ("busy-this", "busy-baseline"),
}
RUN_NAMES = ["busy-plugin", "busy-bare", "busy-drivers-plugin", "busy-drivers-bare",
             "periph-plugin", "periph-bare", "boot-continue", "boot-serror",
             "boot-platform", "boot-first-slice",
             "boot-this", "boot-baseline", "busy-this", "busy-baseline", "matrix", "matrix-cold"]

result = {
    "time_basis": {
        "cpu": "CPU time of the QEMU process, user + sys (GNU time %U + %S): the primary figure",
        "wall": "wall time of the QEMU process (GNU time %e)",
        "ratios": "computed per alternating pair with / without; pairs lists them in run order, "
                  "q1 and q3 are their quartiles, iqr = q3 - q1",
    },
}
for key, (a, b) in RATIOS.items():
    result[key] = ratio(a, b, "cpu")
    result[key + "_wall"] = ratio(a, b, "wall")
# boot_cell_ratio split at "Run /init": the kernel's part (every driver's probe) and user
# space's (the boot test: most of it the DT selftest, whose loops grow with the nodes).
result["boot_kernel_ratio"] = ratio("boot-platform", "boot-first-slice", "kernel")
result["boot_user_ratio"] = ratio("boot-platform", "boot-first-slice", "user")
peak = ratio("busy-plugin", "busy-bare", "rss")
result["qemu_peak_rss_ratio"] = peak and {k: v for k, v in peak.items() if k != "time"}
result["boot_cpu_s"] = seconds("boot-continue", "cpu")
result["boot_wall_s"] = seconds("boot-continue", "wall")
result["matrix_warm_s"] = seconds("matrix", "wall")
result["matrix_warm_cpu_s"] = seconds("matrix", "cpu")
result["matrix_cold_s"] = seconds("matrix-cold", "wall")
result["matrix_cold_cpu_s"] = seconds("matrix-cold", "cpu")

def matrix_reports(name):
    out = []
    for entry in sorted(os.listdir(bench)):
        path = os.path.join(bench, entry, "report.json")
        if re.fullmatch(re.escape(name) + r"-\d+", entry) and os.path.exists(path):
            out.append(json.load(open(path))["cells"])
    return out

def cell_figures():
    restored_runs, cold_runs = matrix_reports("matrix"), matrix_reports("matrix-cold")
    if not restored_runs or not cold_runs:
        return None
    def times(runs, keep=lambda c: True):
        return [c["duration_s"] for cells in runs for c in cells if keep(c)]
    per_cell = {}
    for r_cells, c_cells in zip(restored_runs, cold_runs):
        cold = {(c["kernel"], c["test"]): c["duration_s"] for c in c_cells}
        for c in r_cells:
            key = (c["kernel"], c["test"])
            if c.get("boot") == "restored" and cold.get(key):
                per_cell.setdefault("/".join(key), []).append(c["duration_s"] / cold[key])
    ratios = {k: round(statistics.median(v), 3) for k, v in sorted(per_cell.items())}
    # A restored test body runs with an empty translation cache: what it takes longer than
    # the same cell's body after a cold boot is the retranslation (and the plugin's empty
    # page cache).
    extra = []
    for r_cells, c_cells in zip(restored_runs, cold_runs):
        cold = {(c["kernel"], c["test"]): c.get("phases") for c in c_cells}
        for c in r_cells:
            other = cold.get((c["kernel"], c["test"]))
            if c.get("boot") == "restored" and c.get("phases") and other:
                extra.append(c["phases"]["test_s"] - other["test_s"])
    def sums(runs):
        return [round(sum(c["duration_s"] for c in cells), 2) for cells in runs]
    def phases(runs, keep):
        got = [c["phases"] for cells in runs for c in cells if c.get("phases") and keep(c)]
        return {p: spread([g[p] for g in got], 3) for p in ["start_s", "test_s", "end_s"]} if got else None
    restored = lambda c: c.get("boot") == "restored"
    snapshot_s = []
    for entry in sorted(os.listdir(bench)):
        if re.fullmatch(r"matrix-\d+\.log", entry):
            snapshot_s += [float(m) for m in re.findall(r"snapshot of \S+ made in ([0-9.]+) s", open(os.path.join(bench, entry)).read())]
    median_r, median_c = statistics.median(times(restored_runs)), statistics.median(times(cold_runs))
    sum_r, sum_c = statistics.median(sums(restored_runs)), statistics.median(sums(cold_runs))
    return {
        "median_cell_restored_s": round(median_r, 3), "median_cell_cold_s": round(median_c, 3),
        "median_cell_ratio": round(median_r / median_c, 3),
        "sum_cells_restored_s": sum_r, "sum_cells_cold_s": sum_c,
        "sum_cells_ratio": round(sum_r / sum_c, 3),
        "cell_restore_ratio": spread([r for v in per_cell.values() for r in v], 3),
        "cell_restore_ratio_by_cell": ratios,
        "phases_restored": phases(restored_runs, restored),
        "phases_cold": phases(cold_runs, lambda c: True),
        "snapshot_s": spread(snapshot_s, 2),
        "retranslation_s": spread(extra, 3),
    }
result["cells"] = cell_figures()
result["seconds"] = {n: spread(column(n, "wall"), 3) for n in RUN_NAMES}
result["cpu_seconds"] = {n: spread(column(n, "cpu"), 3) for n in RUN_NAMES}
result["peak_rss_kb"] = {n: spread(column(n, "rss"), 0) for n in ["busy-plugin", "busy-bare"]}
result["baseline"] = os.environ.get("BENCH_BASELINE") or None
result["runs"] = runs
result["kernel"] = kernel
result["commit"] = commit
result["plugin"] = {"path": plugin, "sha256": hashlib.sha256(open(plugin, "rb").read()).hexdigest()}
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
result["machine"] = {
    "cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
    "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    "loadavg_start": loadavg_start, "loadavg_end": " ".join(open("/proc/loadavg").read().split()[:3]),
}
tmp = os.path.join(bench, "bench.json.tmp")
with open(tmp, "w") as f:  # indented, with each list of numbers on one line
    f.write(re.sub(r"\[\s+([^][{}]*?)\s+\]", lambda m: "[" + ", ".join(m[1].split(",\n")).replace("  ", "") + "]",
                   json.dumps(result, indent=2)) + "\n")
os.rename(tmp, os.path.join(bench, "bench.json"))

def line(key, s):
    if s is None:
        return f"{key:32} (not measured)"
    return (f"{key:32} {s.get('time', ''):4} median {s['median']:8.3f}  "
            f"q1..q3 {s['q1']:7.3f}..{s['q3']:<7.3f}  min..max {s['min']:7.3f}..{s['max']:.3f}")
for key in RATIOS:
    print(line(key, result[key]))
    print(line(key + "_wall", result[key + "_wall"]))
for key in ["boot_kernel_ratio", "boot_user_ratio", "qemu_peak_rss_ratio", "boot_cpu_s", "boot_wall_s", "matrix_warm_s", "matrix_warm_cpu_s",
            "matrix_cold_s", "matrix_cold_cpu_s"]:
    print(line(key, result[key]))
cells = result["cells"]
if cells:
    print(f"{'cells':32} median {cells['median_cell_restored_s']:.2f} s restored / {cells['median_cell_cold_s']:.2f} s cold "
          f"(x{cells['median_cell_ratio']:.2f}); sum {cells['sum_cells_restored_s']:.1f} / {cells['sum_cells_cold_s']:.1f} s "
          f"(x{cells['sum_cells_ratio']:.2f})")
    print(line("cell_restore_ratio", cells["cell_restore_ratio"]))
    for kind in ["restored", "cold"]:
        ph = cells["phases_" + kind]
        if ph:
            print(f"{'phases ' + kind:32} start {ph['start_s']['median']:.2f}  test {ph['test_s']['median']:.2f}  end {ph['end_s']['median']:.2f} s (medians)")
    if cells["retranslation_s"]:
        print(line("retranslation_s", cells["retranslation_s"]))
    if cells["snapshot_s"]:
        print(line("snapshot_s", cells["snapshot_s"]))
print(f"written: {os.path.join(bench, 'bench.json')} ({runs} pairs, commit {commit})")
PY
