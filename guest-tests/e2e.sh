#!/usr/bin/env bash
# End-to-end checks of the product with the real QEMU 11 and the real kernels, run by
# `make test` after the matrix (whose report some checks read). Each check asserts
# behaviour and can fail; the last line is "N passed, N failed".
#   usage: guest-tests/e2e.sh [CHECK...]     default: every check
set -uo pipefail
cd "$(dirname "$0")/.."
source ci/lib.sh
source "$RZGATE_CACHE/toolchain.env"

RUNNER=target/release/rzgate-runner
PLUGIN=target/release/librzgate.so
SOC=socs/r9a08g045.yaml
E2E=$OUT/e2e
MATRIX_REPORT=$OUT/matrix/report.json
mkdir -p "$E2E"

passed=0
failed=0
failures=()

# grep over the whole of its input: `producer | grep -q` stops reading at the first match,
# the producer then dies of a broken pipe, and pipefail turns the match into a failure.
# `producer | grep_all -q ...` reads everything first.
grep_all() {
    local input
    input=$(cat)
    grep "$@" <<<"$input"
}

# jq-free JSON queries: python3 is on every machine this runs on.
json() { # file python-expression-over-`r`
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}
cell() { # report kernel test -> python expr selecting that cell
    echo "[c for c in r['cells'] if c['kernel']=='$1' and c['test']=='$2'][0]"
}

check_plugin_rejects() { # args expected-word
    local out status
    out=$(timeout 20 "$QEMU" ${QEMU_DATADIR:+-L "$QEMU_DATADIR"} -M virt -cpu cortex-a55 -m 1G \
        -display none -monitor none -serial none -no-reboot \
        -plugin "$PLUGIN,$1" -kernel /dev/null 2>&1)
    status=$?
    [ "$status" -ne 0 ] && [ "$status" -ne 124 ] || { echo "QEMU exited $status with plugin args '$1'"; return 1; }
    echo "$out" | grep_all -q -- "$2" || { echo "the error does not name '$2': $out"; return 1; }
}

t_plugin_rejects_unknown_argument() { check_plugin_rejects "soc=$SOC,events=$E2E/ev.jsonl,bogus=1" bogus; }
t_plugin_rejects_bad_temperature() { check_plugin_rejects "soc=$SOC,events=$E2E/ev.jsonl,temp=hot" temp; }
t_plugin_rejects_out_of_range_adc() { check_plugin_rejects "soc=$SOC,events=$E2E/ev.jsonl,adc=5000" adc; }
t_plugin_rejects_missing_soc_file() { check_plugin_rejects "soc=/nonexistent.yaml,events=$E2E/ev.jsonl" /nonexistent.yaml; }
t_plugin_rejects_unknown_fault() { check_plugin_rejects "soc=$SOC,events=$E2E/ev.jsonl,faults=melt" melt; }
t_plugin_rejects_bad_verdict_stream() { check_plugin_rejects "soc=$SOC,events=$E2E/ev.jsonl,verdict=serial" verdict; }

t_plugin_rejects_malformed_soc() {
    sed 's/^\(\s*\)offset:/\1offest:/' "$SOC" >"$E2E/malformed.yaml"
    check_plugin_rejects "soc=$E2E/malformed.yaml,events=$E2E/ev.jsonl" offest
}

run_cells() { # out-dir runner-args...
    local dir=$1
    shift
    $RUNNER run --initramfs "$OUT/initramfs.cpio" --kernels-dir "$OUT/kernels" --out "$dir" "$@" >"$dir.log" 2>&1
}

thermal_at() { # °C
    run_cells "$E2E/thermal$1" --kernels upstream --tests thermal --temp="$1" ||
        { tail -n 30 "$E2E/thermal$1.log"; return 1; }
}
t_thermal_minus_40() { thermal_at -40; }
t_thermal_25() { thermal_at 25; }
t_thermal_125() { thermal_at 125; }
t_thermal_minus_12_3() { thermal_at -12.3; }

t_adc_reads_host_values() {
    run_cells "$E2E/adc-values" --kernels upstream --tests adc-read --adc 0:1:4095:2048:17:3000:1234:999 ||
        { tail -n 30 "$E2E/adc-values.log"; return 1; }
}

# Forensics on the matrix's own prefix cells: the root abort names the driver function,
# the register, the gating cause and a call chain through runtime PM and devres.
t_prefix_adc_unbind_root_abort() {
    [ -f "$MATRIX_REPORT" ] || { echo "no matrix report at $MATRIX_REPORT"; return 1; }
    local c
    c=$(cell prefix adc-unbind)
    json "$MATRIX_REPORT" "$c['outcome']" | grep_all -qx abort || { echo "prefix/adc-unbind is not abort"; return 1; }
    # The TSU is unbound first (device link), so the ADC's abort is not necessarily the
    # root: look for the ADC abort among all.
    local adc
    adc=$(json "$MATRIX_REPORT" "[a for a in $c['aborts'] if a['device']=='adc'][0]") ||
        { echo "no ADC abort in prefix/adc-unbind"; return 1; }
    echo "$adc" | grep_all -q "'register': 'ADM0'" || { echo "ADC abort not on ADM0: $adc"; return 1; }
    echo "$adc" | grep_all -q "rzg2l_adc_pm_runtime_suspend" || { echo "no rzg2l_adc_pm_runtime_suspend: $adc"; return 1; }
    echo "$adc" | grep_all -q "pm_runtime_disable_action" || { echo "call chain lacks pm_runtime_disable_action: $adc"; return 1; }
    echo "$adc" | grep_all -q "devres_release_all" || { echo "call chain lacks devres_release_all: $adc"; return 1; }
    echo "$adc" | grep_all -qE "MSTOP 0xB68 bit 14|CLK_MON 0x728 bit 1" || { echo "gating cause not named: $adc"; return 1; }
    echo "$adc" | grep_all -qE "pm_clk|genpd|dev_pm_domain_detach|platform_remove" || { echo "the detach that gated it is not named: $adc"; return 1; }
}

t_prefix_tsu_unbind_root_abort() {
    [ -f "$MATRIX_REPORT" ] || { echo "no matrix report at $MATRIX_REPORT"; return 1; }
    local root
    root=$(json "$MATRIX_REPORT" "[a for a in $(cell prefix tsu-unbind)['aborts']][0]") ||
        { echo "no abort in prefix/tsu-unbind"; return 1; }
    echo "$root" | grep_all -q "'register': 'TSU_SM'" || { echo "root abort not on TSU_SM: $root"; return 1; }
    echo "$root" | grep_all -q "rzg3s_thermal_change_mode" || { echo "no rzg3s_thermal_change_mode: $root"; return 1; }
    echo "$root" | grep_all -q "devm_thermal_of_zone_release" || { echo "call chain lacks devm_thermal_of_zone_release: $root"; return 1; }
}

# The platform sweep's per-driver table (report.json `sweep`, report.md "Platform sweep:
# per driver"; docs/contracts.md "Runner reports") in the matrix `make test` ran: on
# prefix each swept driver's own unbind aborts where the driver's cleanup meets the early
# detach (the ADC in its runtime-suspend callback on ADM0, the TSU in its zone disable on
# TSU_SM), on upstream every swept driver is clean, the RIIC and the watchdog on every kernel, and the
# CPG and the SYSC (no unbind file) are not swept.
t_sweep_table_names_each_drivers_abort() {
    [ -f "$MATRIX_REPORT" ] || { echo "no matrix report at $MATRIX_REPORT"; return 1; }
    python3 - "$MATRIX_REPORT" <<'EOF' || return 1
import json, sys
r = json.load(open(sys.argv[1]))
sweep = r.get("sweep")
if not sweep:
    sys.exit("report.json has no sweep: did the matrix run platform-sweep on upstream and prefix?")
drivers = sweep["drivers"]
bad = []
expected_prefix = {
    "rzg2l-adc": ("rzg2l_adc_pm_runtime_suspend", "ADM0"),
    "rzg3s-thermal": ("rzg3s_thermal_change_mode", "TSU_SM"),
}
for driver, (function, register) in expected_prefix.items():
    row = drivers.get(driver)
    if row is None:
        bad.append(f"{driver} is not in the sweep (drivers: {sorted(drivers)})")
        continue
    p = row["kernels"].get("prefix")
    if p is None:
        bad.append(f"{driver}: no prefix column")
    elif (p["outcome"], p.get("function"), p.get("register")) != ("abort", function, register):
        bad.append(f"{driver} on prefix: {p['outcome']} {p.get('function')} {p.get('register')}, expected abort {function} {register}")
    elif not (p.get("step") or {}).get("text", "").startswith(f"unbind {driver} "):
        bad.append(f"{driver} on prefix: the root abort is not in its unbind step: {p.get('step')}")
# Clean on every kernel, prefix included (docs/findings.md): the watchdog's unbind touches
# no register; RIIC0's remove writes ICIER runtime-resumed and its devres touches no
# register (matrix.yaml i2c-eeprom); sh-sci's remove, with the port closed, touches none
# (matrix.yaml serial-loopback); the RTC and the VBATTB run on vbat_bclk, a critical clock
# no detach stops (matrix.yaml rtc); rz-dmac's remove and devres touch no register and it has
# no runtime-PM callbacks (matrix.yaml dma-memcpy); usbhs's runtime PM is not devres, and
# the USB2 PHY's and the usbphy-ctrl's devres touch no gated register (matrix.yaml
# usb-gadget, platform-sweep).
for driver in ["rzg2l_wdt", "i2c-riic", "sh-sci", "rtc-rtca3", "renesas-vbattb-clk", "rz-dmac",
               "renesas_usbhs", "phy_rcar_gen3_usb2", "rzg2l_usbphy_ctrl"]:
    row = drivers.get(driver)
    if row is None:
        bad.append(f"{driver} is not in the sweep (drivers: {sorted(drivers)})")
        continue
    for kernel, cell in row["kernels"].items():
        if cell["outcome"] != "clean":
            bad.append(f"{driver} on {kernel}: {cell['outcome']} ({cell.get('function')}), expected clean")
for driver, row in drivers.items():
    u = row["kernels"].get("upstream")
    if u is None:
        bad.append(f"{driver}: no upstream column")
    elif u["outcome"] != "clean":
        bad.append(f"{driver} on upstream: {u['outcome']} ({u.get('function')}), expected clean")
if "rzg2l-cpg" in drivers:
    bad.append("rzg2l-cpg was swept, but it has no unbind file")
if "renesas-rz-sysc" in drivers:
    bad.append("renesas-rz-sysc was swept, but it has no unbind file (suppress_bind_attrs, rz-sysc.c:158)")
if bad:
    sys.exit("\n".join(bad))
EOF
    local md=${MATRIX_REPORT%.json}.md
    grep -q '^## Platform sweep: per driver' "$md" || { echo "$md has no per-driver section"; return 1; }
    grep -q '^| `rzg2l-adc` (.*| \*\*abort (rzg2l_adc_pm_runtime_suspend)\*\* |' "$md" ||
        { grep -A8 '^## Platform sweep' "$md"; echo "$md: the rzg2l-adc row does not show its prefix abort"; return 1; }
}

# The plugin sees window accesses made from user space: in each kernel's
# user-space-access cell of the matrix, devmem's EL0 read of the gated ADM0 is an abort
# whose pc is a user-space address (below the kernel's 0xffff... half).
t_user_space_access_aborts_at_el0() {
    local k ev found
    [ -f "$MATRIX_REPORT" ] || { echo "no matrix report at $MATRIX_REPORT"; return 1; }
    for k in $(json "$MATRIX_REPORT" "' '.join(sorted({c['kernel'] for c in r['cells'] if c['test']=='user-space-access'}))"); do
        ev=$OUT/matrix/cells/$k/user-space-access/events.jsonl
        [ -f "$ev" ] || { echo "no events file $ev"; return 1; }
        found=$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["type"] == "abort" and e["pc"] < 0x0001000000000000:
        print("%s %s pc=%#x step=%d" % (e["register"], e["access"], e["pc"], e["step"]))
        break
' "$ev") || { echo "$ev: unreadable"; return 1; }
        [ -n "$found" ] || { echo "$k/user-space-access: no abort with a user-space pc in $ev"; return 1; }
        echo "$found" | grep_all -q "^ADM0 read " || { echo "$k/user-space-access: the user-space abort is not the ADM0 read: $found"; return 1; }
        echo "$found" | grep_all -q " step=0$" && { echo "$k/user-space-access: the user-space abort names no step: $found"; return 1; }
    done
    [ -n "${k:-}" ] || { echo "no user-space-access cell in $MATRIX_REPORT"; return 1; }
}

# user_space=watch: only the cell that maps the window from user space (devmem) has user
# space instrumented, from a user_space_mapped event that names the kernel's mmap path and
# comes before its EL0 abort; every other cell (steps go through the kernel) never does.
t_user_space_is_instrumented_only_where_the_window_is_mapped() {
    [ -f "$MATRIX_REPORT" ] || { echo "no matrix report at $MATRIX_REPORT"; return 1; }
    python3 - "$MATRIX_REPORT" <<'PY'
import json, sys
bad = []
for cell in json.load(open(sys.argv[1]))["cells"]:
    name = "%s/%s" % (cell["kernel"], cell["test"])
    events = [json.loads(line) for line in open(cell["events_file"])]
    summary = [e for e in events if e["type"] == "summary"]
    if not summary:
        bad.append(name + ": no summary")
        continue
    instrumented = summary[0].get("user_space", {}).get("instrumented")
    mapped = cell.get("user_space_mapped")
    if cell["test"] != "user-space-access":
        if instrumented or mapped:
            bad.append(name + ": user space instrumented without a user mapping of the window")
        continue
    if not (instrumented and mapped):
        bad.append(name + ": expected user_space_mapped in the report and user space instrumented")
        continue
    el0 = [e for e in events if e["type"] == "abort" and e["pc"] < 1 << 48]
    if not el0 or el0[0]["seq"] < mapped["seq"]:
        bad.append(name + ": the EL0 abort does not follow user_space_mapped")
    chain = [mapped["symbol"]] + mapped["call_chain"]
    functions = [frame.split("+")[0] for frame in chain]
    if not any(f.startswith("remap_pfn_range") for f in functions) or "__arm64_sys_mmap" not in functions:
        bad.append(name + ": user_space_mapped does not name the mmap path: " + " <- ".join(chain))
print("\n".join(bad))
sys.exit(1 if bad else 0)
PY
}

t_halt_policy_stops_at_first_abort() {
    run_cells "$E2E/halt" --kernels prefix --tests adc-unbind --on-abort halt
    local r=$E2E/halt/report.json
    [ -f "$r" ] || { tail -n 30 "$E2E/halt.log"; return 1; }
    json "$r" "$(cell prefix adc-unbind)['outcome']" | grep_all -qx abort || { echo "outcome is not abort"; return 1; }
    local n
    n=$(json "$r" "sum(a.get('count', 1) for a in $(cell prefix adc-unbind)['aborts'])")
    [ "$n" = 1 ] || { echo "halt recorded $n aborts, expected exactly 1"; return 1; }
}

# The ground truth holds under every abort policy (with serror and halt the first abort
# decides the cell); under serror the guest prints what the board prints: a gated read is a
# synchronous external abort (ESR 0x96000010, the ADC's suspend callback reading ADM0), a
# gated write an SError (the TSU's change_mode writing TSU_SM), and the runner checks the
# guest's trace agrees with our abort record, exception class included.
matrix_under() { # policy
    run_cells "$E2E/matrix-$1" --on-abort "$1" || { grep -E "MISMATCH|error" "$E2E/matrix-$1.log" | head -n 20; return 1; }
}
t_matrix_holds_under_halt() { matrix_under halt; }
t_matrix_holds_under_serror() {
    matrix_under serror || return 1
    local r=$E2E/matrix-serror/report.json c
    for k in prefix devres-group; do
        c=$(cell $k adc-probe-failure)
        json "$r" "$c.get('guest_trace')" | grep_all -q "rzg2l_adc_pm_runtime_suspend" ||
            { echo "$k/adc-probe-failure: the guest trace does not show rzg2l_adc_pm_runtime_suspend"; return 1; }
    done
    c=$(cell prefix adc-probe-failure)
    [ "$(json "$r" "($c['guest_trace']['exception'], $c['guest_trace_agrees'], $c['aborts'][0]['serror']['exception'])")" = "('synchronous-external-abort', True, 'synchronous-external-abort')" ] ||
        { echo "prefix/adc-probe-failure: the guest did not report the synchronous external abort the plugin recorded"; return 1; }
    grep -q "Internal error: synchronous external abort: 0000000096000010" "$E2E/matrix-serror/cells/prefix/adc-probe-failure/console.log" ||
        { echo "prefix/adc-probe-failure: no synchronous external abort (ESR 0x96000010) on the console"; return 1; }
    c=$(cell prefix tsu-unbind)
    [ "$(json "$r" "($c['guest_trace']['exception'], $c['guest_trace_agrees'], $c['guest_trace']['pc'].split('+')[0])")" = "('serror', True, 'rzg3s_thermal_change_mode')" ] ||
        { echo "prefix/tsu-unbind: the guest did not report an SError at rzg3s_thermal_change_mode (the TSU_SM write)"; return 1; }
    c=$(cell prefix adc-unbind)
    json "$r" "$c.get('guest_trace')" | grep_all -qE "rzg2l_adc_pm_runtime_suspend|rzg3s_thermal_change_mode" ||
        { echo "prefix/adc-unbind: the guest trace shows neither driver function"; return 1; }
    grep -q "SError Interrupt on CPU0" "$E2E/matrix-serror/cells/prefix/adc-unbind/console.log" ||
        { echo "prefix/adc-unbind: no SError line on the console"; return 1; }
    # Without a gated access nothing is diverted: the test runs to its end (the runner
    # stops QEMU at its done line) and the guest never reports an SError.
    c=$(cell upstream adc-unbind)
    [ "$(json "$r" "($c['outcome'], $c['ktap']['done'])")" = "('clean', True)" ] ||
        { echo "upstream/adc-unbind under serror did not run to its end clean"; return 1; }
    ! grep -q "SError" "$E2E/matrix-serror/cells/upstream/adc-unbind/console.log" ||
        { echo "upstream/adc-unbind under serror printed an SError"; return 1; }
}

# make replay through the README's command: a replay whose board site is not where the
# emulation aborts is "not reproduced" and fails the target (the real list passes in make
# test itself).
t_make_replay_fails_a_replay_that_does_not_reproduce() {
    local file=$E2E/replays-wrong.yaml
    sed 's/function: rzg3s_thermal_change_mode/function: thermal_zone_device_set_mode/' guest-tests/replays.yaml >"$file"
    if make -s replay REPLAYS="$file" OUT="$OUT" >"$E2E/replay-wrong.log" 2>&1; then
        echo "make replay passed with a replay at the wrong function"; return 1
    fi
    grep -q "tsu-zone-release-after-detach.*not reproduced.*the board's was thermal_zone_device_set_mode" "$E2E/replay-wrong.log" ||
        { tail -n 8 "$E2E/replay-wrong.log"; echo "the failing replay was not named with its reason"; return 1; }
    grep -q "| adc-unbind-after-detach |.*| reproduced |" "$OUT/replay/replay.md" ||
        { echo "replay.md does not show the other replay reproduced"; return 1; }
}

# Validation through the README's front door, ./validate, whose exit status is the
# contract (0 adds no abort, 1 adds one, 2 could not judge, 3 changes what a test observes).
validate() { # name NAME=value...
    local name=$1
    shift
    ./validate "$@" >"$E2E/validate-$name.log" 2>&1
}
expect_status() { # name got expected
    [ "$2" -eq "$3" ] || { echo "exit $2, expected $3"; tail -n 30 "$E2E/validate-$1.log"; return 1; }
}
in_log() { # name fixed-string...
    local name=$1 want
    shift
    for want in "$@"; do
        grep -qF -- "$want" "$E2E/validate-$name.log" || { echo "the output lacks '$want'"; tail -n 30 "$E2E/validate-$name.log"; return 1; }
    done
}
in_summary() { # fixed-string...
    local want
    for want in "$@"; do
        grep -qF -- "$want" "$OUT/validate/summary.txt" || { echo "summary.txt lacks '$want':"; cat "$OUT/validate/summary.txt"; return 1; }
    done
}

t_validate_flags_added_abort() {
    validate bad PATCH=guest-tests/validate/adds-gated-access.patch BASE=upstream
    expect_status bad $? 1 || return 1
    in_log bad "rzg2l_adc_log_adm0" || return 1
    head -n1 "$OUT/validate/summary.txt" | grep -q "^rzgate validate: FAIL: the patch ADDS" ||
        { echo "summary.txt does not start with the verdict:"; cat "$OUT/validate/summary.txt"; return 1; }
    in_summary "rzg2l_adc_log_adm0" "call chain:" "Reproduce locally:" "./validate PATCH="
}

t_validate_accepts_comment_only_patch() {
    validate comment PATCH=guest-tests/validate/comment-only.patch BASE=upstream
    expect_status comment $? 0
}

# Every driver message a guest test provokes, reworded: the tests observe behaviour, so
# the patch is clean on every test (the message text was never the point).
t_validate_accepts_reworded_driver_messages() {
    validate reword PATCH=guest-tests/validate/rewords-driver-messages.patch BASE=upstream
    expect_status reword $? 0 || return 1
    json "$OUT/validate/report.json" "[c['test'] for c in r['cells'] if c['outcome']=='error']" | grep -qx '\[\]' ||
        { echo "cells errored: $(json "$OUT/validate/report.json" "[c['kernel']+'/'+c['test'] for c in r['cells'] if c['outcome']=='error']")"; return 1; }
    grep -aq "ADC hardware did not come out of reset" "$OUT/validate/cells/upstream+patch/adc-probe-failure/console.log" ||
        { echo "the patched kernel does not print the reworded message: the test proves nothing"; return 1; }
}

# A patch that changes what a test observes (the probe's errno) without a gated access:
# its own verdict, exit 3, with the failing check named; not "could not judge".
t_validate_changed_observation_is_exit_3() {
    validate errno PATCH=guest-tests/validate/changes-probe-errno.patch BASE=upstream TESTS=adc-probe-failure
    expect_status errno $? 3 || return 1
    in_log errno "changes what the tests observe" "fails only with the patch: not ok 3 bind adc fails with ETIMEDOUT" || return 1
    in_summary "rzgate validate: CHANGED" "upstream+patch/adc-probe-failure: not ok 3 bind adc fails with ETIMEDOUT"
}

t_validate_driver_workaround_removes_adc_abort() {
    validate workaround PATCH=guest-tests/validate/rzg2l-adc-drop-devm-pm-runtime-enable.patch BASE=prefix
    expect_status workaround $? 0 || return 1
    json "$OUT/validate/report.json" "r" | grep_all -q "rzg2l_adc_pm_runtime_suspend" ||
        { echo "the removed rzg2l_adc_pm_runtime_suspend abort is not reported"; return 1; }
}

t_validate_rejects_patch_that_does_not_apply() {
    validate broken PATCH=guest-tests/validate/broken.patch BASE=upstream
    expect_status broken $? 2 || return 1
    in_log broken "broken.patch" "the hunk at drivers/base/platform.c:1413 (@@ -1413,3 +1413,4 @@) does not apply"
}

t_validate_rejects_bad_input() {
    validate missing PATCH=guest-tests/validate/no-such.patch
    expect_status missing $? 2 || return 1
    in_log missing "PATCH=guest-tests/validate/no-such.patch: no such file" || return 1
    validate unknown PATCH=guest-tests/validate/comment-only.patch COLOUR=blue
    expect_status unknown $? 2 || return 1
    in_log unknown "unknown argument 'COLOUR=blue'" || return 1
    validate emptydir PATCH=guest-tests/tests
    expect_status emptydir $? 2 || return 1
    in_log emptydir "a directory without NNNN-*.patch files"
}

# A three-patch series where only patch 2 adds a gated access, as an mbox (with a cover
# letter) and as a directory of git format-patch files: "patch 2/3 adds ...", exit 1.
series_patch2() { # name input
    validate "$1" PATCH="$2" BASE=upstream TESTS=adc-unbind,boot
    expect_status "$1" $? 1 || return 1
    in_log "$1" "patch 2/3 adds adc ADM0 read in rzg2l_adc_log_adm0 (adc-unbind)" \
        "[1/3] iio: adc: rzg2l_adc: document the hardware parameters (series fixture 1/3): no change" \
        "[3/3] clk, PM, iio: reword messages; rename the fixture note (series fixture 3/3): no change" || return 1
    head -n1 "$OUT/validate/summary.txt" | grep -q "^rzgate validate: FAIL: the series ADDS .*patch 2/3 adds adc ADM0 read in rzg2l_adc_log_adm0" ||
        { echo "summary.txt does not start with the verdict naming patch 2/3:"; cat "$OUT/validate/summary.txt"; return 1; }
    in_summary "first added by patch 2/3" "rzg2l_adc_log_adm0+0x" "Cost: kernel builds" || return 1
    # git am semantics: patch 3's rename with a mode change happened in the last state.
    local src
    src=$(json "$OUT/kernels/validate-upstream-3/kernel.json" "r['source_dir']")
    [ -x "$src/Documentation/rzgate/series-fixture.rst" ] && [ ! -e "$src/Documentation/rzgate/series-fixture.txt" ] ||
        { echo "the rename with a mode change of patch 3 is not in $src"; return 1; }
}
t_validate_series_mbox_names_patch_2() { series_patch2 series-mbox guest-tests/validate/series-patch2-adds.mbox; }
t_validate_series_directory_names_patch_2() { series_patch2 series-dir guest-tests/validate/series-patch2-adds; }

# Patch 1 adds the abort, patch 3 removes it: the series adds none (exit 0) and says so.
t_validate_series_fixed_by_patch_3_passes_and_says_so() {
    validate series-fix PATCH=guest-tests/validate/series-patch3-fixes.mbox BASE=upstream TESTS=adc-unbind
    expect_status series-fix $? 0 || return 1
    in_log series-fix "patch 1/3 adds adc ADM0 read in rzg2l_adc_log_adm0 and patch 3/3 removes it again" \
        "patch 3/3 removes adc ADM0 read in rzg2l_adc_log_adm0 (adc-unbind): the abort patch 1/3 adds"
}

# A series whose patch 2 does not apply: exit 2 before any build, naming patch, subject,
# file and hunk.
t_validate_series_patch_that_does_not_apply_is_named() {
    validate series-broken PATCH=guest-tests/validate/series-patch2-broken BASE=upstream
    expect_status series-broken $? 2 || return 1
    in_log series-broken "patch 2/3 \"a patch that does not apply (test fixture)\"" \
        "0002-a-patch-that-does-not-apply.patch" "the hunk at drivers/base/platform.c:1413 (@@ -1413,3 +1413,4 @@) does not apply" || return 1
    ! grep -q "building kernel 'validate-upstream" "$E2E/validate-series-broken.log" ||
        { echo "a kernel was built for a series that does not apply"; return 1; }
    in_summary "rzgate validate: UNKNOWN: could not judge: patch 2/3"
}

# A branch of the user's own tree: KERNEL_SRC (a git repository of the same source) and
# GIT_RANGE give the verdict the mbox gives. The repository is made once (hard links to
# the unpacked source, committed with a 2020 date, then git am of the series). A user
# tree gets build directories of its own, so its first BASE build would be a full one
# (6 min and more): since this tree is the unpacked source byte for byte, and git archive
# gives its files the old commit date, the check seeds that directory with the upstream
# variant's objects (what a user would get from a first `make kernels KERNEL_SRC=...`).
t_validate_git_range_gives_the_mbox_verdict() {
    local repo=$E2E/linux-git pristine tag
    pristine=$(ls -d "$ROOT"/work/pristine-[0-9]* | head -n1)
    if [ ! -f "$E2E/linux-git.ready" ]; then
        rm -rf "$repo"
        cp -al "$pristine" "$repo" || return 1
        (cd "$repo" && git init -q && git add -A -f &&
            GIT_AUTHOR_DATE=2020-01-01T00:00:00Z GIT_COMMITTER_DATE=2020-01-01T00:00:00Z \
                git -c user.name=rzgate -c user.email=dev@rzgate.invalid commit -q -m "linux-source as unpacked" &&
            git tag rzgate-base &&
            git -c user.name=rzgate -c user.email=dev@rzgate.invalid am -q "$OLDPWD"/guest-tests/validate/series-patch2-adds/*.patch) ||
            { echo "could not make the git tree $repo"; return 1; }
        touch "$E2E/linux-git.ready"
    fi
    tag=user-$(printf '%s' "$(realpath "$repo")" | sha256sum | cut -c1-12)
    if [ ! -d "$ROOT/work/build-$tag-upstream" ]; then
        cp -a "$ROOT/work/build-upstream" "$ROOT/work/build-$tag-upstream.partial" &&
            mv "$ROOT/work/build-$tag-upstream.partial" "$ROOT/work/build-$tag-upstream" || return 1
    fi
    validate range KERNEL_SRC="$repo" GIT_RANGE=rzgate-base..HEAD BASE=upstream TESTS=adc-unbind,boot
    expect_status range $? 1 || return 1
    in_log range "patch 2/3 adds adc ADM0 read in rzg2l_adc_log_adm0 (adc-unbind)" \
        "[1/3] iio: adc: rzg2l_adc: document the hardware parameters (series fixture 1/3): no change" || return 1
    in_summary "input:   KERNEL_SRC=$repo GIT_RANGE=rzgate-base..HEAD (3 patches)"
}

# `make validate` runs the same front door; make can only exit 0 or 2, so it says the
# front door's status in words.
t_make_validate_says_the_front_doors_status() {
    make -s validate PATCH=guest-tests/validate/adds-gated-access.patch BASE=upstream TESTS=adc-unbind >"$E2E/validate-make.log" 2>&1
    expect_status make $? 2 || return 1
    in_log make "rzgate: validate exit status 1 (make reports any failure as 2: call ./validate for the status)" || return 1
    make -s validate PATCH=guest-tests/validate/comment-only.patch BASE=upstream TESTS=boot >"$E2E/validate-make-clean.log" 2>&1
    expect_status make-clean $? 0
}

# A stranger's patch whose Makefile reaches out of its tree (guest-tests/validate/
# hostile-build.patch.in): a connection to a listener on the host's 127.0.0.1, host files
# read (one the check makes here, one in the cache where the old chroot build saw it),
# writes into the source tree, the cache, /root and a fresh path under $OUT. Through
# make, as the README says: the build fails in the sandbox (could not judge, 2), the
# output names the patch and the denials, nothing it aimed at changed, and the listener
# saw only the check's own control connection.
t_validate_hostile_patch_is_contained_by_the_sandbox() {
    local dir=$E2E/hostile secret work_secret=$ROOT/work/rzgate-e2e-hostile-secret
    local marker=$E2E/hostile/marker work_marker=$ROOT/work/rzgate-e2e-hostile-marker
    local src=$ROOT/work/src-sbx-series-upstream port seen status=0
    rm -rf "$dir" "$work_marker" /root/rzgate-e2e-hostile "$ROOT/root/rzgate-e2e-hostile"
    mkdir -p "$dir"
    # The listener prints its port, waits for a line on stdin, then counts the connections
    # that reached its queue (a completed connect is queued by the kernel when it returns).
    coproc LISTENER {
        python3 -c '
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
print(s.getsockname()[1], flush=True)
sys.stdin.readline()
s.setblocking(False)
n = 0
while True:
    try:
        s.accept()[0].close()
    except BlockingIOError:
        break
    n += 1
print(n, flush=True)'
    }
    read -r port <&"${LISTENER[0]}" || { echo "the listener did not start"; return 1; }
    # The control: a connection from the host is counted, so a count of 1 means the
    # build's own attempt never arrived.
    echo control >"/dev/tcp/127.0.0.1/$port" || { echo "cannot connect to the listener from the host"; return 1; }
    secret=rzgate-secret-$RANDOM$RANDOM$RANDOM
    echo "$secret" >"$dir/secret"
    echo "$secret" >"$work_secret"
    sed -e "s#@PORT@#$port#g" -e "s#@SECRET@#$dir/secret#g" -e "s#@MARKER@#$marker#g" \
        guest-tests/validate/hostile-build.patch.in >"$dir/hostile.patch"
    make -s validate PATCH="$dir/hostile.patch" BASE=upstream TESTS=boot >"$E2E/validate-hostile.log" 2>&1 || status=$?
    echo stop >&"${LISTENER[1]}"
    read -r seen <&"${LISTENER[0]}" || seen="no answer"
    rm -f "$work_secret"
    expect_status hostile "$status" 2 || return 1
    in_log hostile "rzgate: validate exit status 2" "did not build (patch 1/1" "hostile build step (sandbox test fixture)" \
        "in the sandbox, which denied it" "it tried to reach the network" "it tried to write outside its build tree" \
        "it tried to reach a host path" "hostile-step" || return 1
    in_summary "rzgate validate: UNKNOWN: could not judge: the kernel with patches 1..1 of 1 did not build" "sandbox" || return 1
    [ "$seen" = 1 ] || { echo "the listener on 127.0.0.1:$port counted '$seen' connections, expected only the control's"; return 1; }
    local p
    for p in "$marker" "$work_marker" /root/rzgate-e2e-hostile "$ROOT/root/rzgate-e2e-hostile"; do
        [ ! -e "$p" ] || { echo "the hostile build wrote $p"; return 1; }
    done
    # The build ran the hostile step (its attempts are in the log) and read no secret.
    grep -q "$dir/secret" "$E2E/validate-hostile.log" || { echo "the log does not show the attempt to read $dir/secret: the step did not run?"; return 1; }
    ! grep -rqs "$secret" "$E2E/validate-hostile.log" "$ROOT/work/build-sbx-series-upstream.log" "$OUT/validate" ||
        { echo "the secret reached the build's output"; return 1; }
    [ -f "$src/Makefile" ] && ! grep -qx hostile "$src/Makefile" || { echo "the source tree's Makefile was written (or is missing)"; return 1; }
    [ ! -e "$OUT/validate/report.json" ] && [ ! -e "$OUT/kernels/validate-upstream.partial" ] ||
        { echo "a half-written report or kernel was left"; return 1; }
}

boot_cell() { # name test runner-args... -> exit status of `rzgate-runner boot`
    local name=$1 test=$2
    shift 2
    $RUNNER boot --initramfs "$OUT/initramfs.cpio" --kernels-dir "$OUT/kernels" --kernel upstream --test "$test" \
        --out "$E2E/$name" "$@" >"$E2E/$name.log" 2>&1
}

guest_failure_is_an_error() { # test timeout-s word-in-error text-in-console-tail
    boot_cell "$1" "$1" --timeout "$2" && { echo "$1 passed"; return 1; }
    local c=$E2E/$1/cells/upstream/$1/cell.json
    json "$c" "r['outcome']" | grep_all -qx error || { echo "outcome is not error"; return 1; }
    json "$c" "r['error']" | grep_all -qi "$3" || { echo "the error does not say $3: $(json "$c" "r['error']")"; return 1; }
    json "$c" "r['console_tail']" | grep_all -q "$4" || { echo "the console tail lacks '$4'"; return 1; }
}
t_hung_guest_is_an_error_with_console_tail() { guest_failure_is_an_error selftest-hang 20 timeout "hanging on purpose"; }
t_panicking_guest_is_an_error_with_console_tail() { guest_failure_is_an_error selftest-panic 60 panic "Attempted to kill init"; }

# The DT selftest gives the same results whether the runner worked out the lines of its
# compatible_list this DT can match (the matrix's DTB, /chosen) or the guest did (a DTB from
# `rzgate-runner dtb`, which has no such property). adc-probe-failure, because there the
# answers depend on the list: the unbound ADC and TSU fail the selftest only if their
# compatibles are in it.
t_dt_selftest_same_with_host_or_guest_reduction() {
    local matrix_console=$OUT/matrix/cells/upstream/adc-probe-failure/console.log
    [ -f "$matrix_console" ] || { echo "no matrix console at $matrix_console"; return 1; }
    grep -q "rzgate,dt-selftest-compatibles" "$OUT/matrix/virt-rzg3s.dts" ||
        { echo "the matrix's DTB has no /chosen/rzgate,dt-selftest-compatibles"; return 1; }
    $RUNNER dtb --soc "$SOC" --out "$E2E/guest-reduction/virt.dtb" >"$E2E/guest-reduction.dtb.log" 2>&1 ||
        { tail -n 20 "$E2E/guest-reduction.dtb.log"; return 1; }
    ! grep -q "rzgate,dt-selftest-compatibles" "$E2E/guest-reduction/virt.dts" ||
        { echo "rzgate-runner dtb wrote the property"; return 1; }
    boot_cell guest-reduction adc-probe-failure --dtb "$E2E/guest-reduction/virt.dtb" ||
        { tail -n 30 "$E2E/guest-reduction.log"; return 1; }
    # The selftest's results are the nested KTAP lines of the cells, as the runner parsed
    # them (a kernel message that landed inside a line is taken out of it).
    local nested='"\n".join(" ".join(map(str, (k["ok"], k["description"], k.get("directive")))) for c in r.get("cells", [r]) if c["kernel"] == "upstream" and c["test"] == "adc-probe-failure" for k in c["ktap"]["results"] if k.get("depth"))'
    json "$MATRIX_REPORT" "$nested" | grep_all -q "^False /adc@" || { echo "the matrix's selftest does not fail the unbound ADC"; return 1; }
    diff <(json "$MATRIX_REPORT" "$nested") \
        <(json "$E2E/guest-reduction/cells/upstream/adc-probe-failure/cell.json" "$nested") ||
        { echo "the selftest results differ (matrix < > guest reduction)"; return 1; }
}

t_missing_toolchain_is_named() {
    local out
    out=$(RZGATE_CACHE=$E2E/no-cache bash ci/kernels.sh upstream 2>&1) && { echo "kernels.sh succeeded without a toolchain"; return 1; }
    echo "$out" | grep_all -q "make toolchain" || { echo "no hint to run make toolchain: $out"; return 1; }
}

# --- Interrupted runs, shards, KCIDB ---

# Waits until a log file has a line matching the regex (the runner prints one line per
# finished cell on stderr), or until `pid` has ended; false in the second case.
wait_for_line() { # log regex pid
    # tail --pid ends with the process; grep -m1 ends at the first match. A process
    # substitution, so that the caller does not wait for tail once grep has matched.
    # -F (follow the name, retry): the background job that writes the log may not have
    # opened it yet, and tail -f gives up at once on a file that is not there (stop 22's
    # red CI: the Ctrl-C test ended in 0 s with no log).
    grep -m1 -qE "$2" < <(tail -n +1 --pid="$3" -F "$1" 2>/dev/null)
}

# The cells of a report as "kernel/test outcome ok" lines, in report order.
verdicts() { # report.json
    json "$1" "'\n'.join(c['kernel']+'/'+c['test']+' '+c['outcome']+' '+str(c['ok']) for c in r['cells'])"
}

# Snapshots change nothing (docs/contracts.md "Snapshots"): the matrix `make test` ran
# restored its cells from one snapshot per kernel; the same cells booted cold (--cold) give
# the same verdicts, abort sites (device, register, access, function, step, count), abort
# counts and KTAP results, cell for cell.
t_restored_cells_equal_cold_cells() {
    [ -f "$MATRIX_REPORT" ] || { echo "no matrix report at $MATRIX_REPORT"; return 1; }
    run_cells "$E2E/cold" --cold || { tail -n 30 "$E2E/cold.log"; echo "the cold matrix did not match its expectations"; return 1; }
    python3 - "$MATRIX_REPORT" "$E2E/cold/report.json" guest-tests/matrix.yaml <<'PY'
import json, re, sys
def cells(path):
    return {(c["kernel"], c["test"]): c for c in json.load(open(path))["cells"]}
def sites(c):
    return [(a["device"], a["register"], a["access"], a.get("function") or a["symbol"],
             (a.get("step") or {}).get("n"), a["count"]) for a in c["aborts"]]
restored, cold = cells(sys.argv[1]), cells(sys.argv[2])
# The tests whose matrix.yaml entry has `cold_boot:` (no YAML module on a bare machine:
# the entries are `  <id>:` lines with their keys indented below).
cold_tests, test = set(), None
for line in open(sys.argv[3]):
    if m := re.match(r"^  ([a-z0-9-]+):\s*$", line):
        test = m[1]
    elif re.match(r"^\S", line):
        test = None
    elif test and re.match(r"^    cold_boot:", line):
        cold_tests.add(test)
bad = []
if set(restored) != set(cold):
    bad.append(f"different cells: {sorted(set(restored) ^ set(cold))}")
for key in sorted(set(restored) & set(cold)):
    r, c, name = restored[key], cold[key], "/".join(key)
    want = "cold: " if key[1] in cold_tests else "restored"
    if not r["boot"].startswith(want):
        bad.append(f"{name}: boot is {r['boot']!r} in make test's matrix, expected {want!r}")
    if c["boot"] != "cold":
        bad.append(f"{name}: boot is {c['boot']!r} under --cold")
    for what, f in [("outcome", lambda x: x["outcome"]), ("abort sites", sites),
                    ("abort events", lambda x: x["abort_events"]),
                    ("KTAP results", lambda x: x["ktap"]["results"])]:
        if f(r) != f(c):
            bad.append(f"{name}: {what} differ\n  restored: {f(r)}\n  cold:     {f(c)}")
print("\n".join(bad))
sys.exit(1 if bad else 0)
PY
}

# Restored cells start from the same state every time: three repetitions of the cells that
# unbind, abort, read and re-probe with a fault armed after the restore, none flaky.
t_restored_cells_are_not_flaky() {
    run_cells "$E2E/repeat" --kernels upstream,prefix --tests adc-unbind,tsu-unbind,user-space-access,thermal,adc-probe-failure --repeat 3 ||
        { tail -n 30 "$E2E/repeat.log"; echo "a repeated cell did not match its expectation"; return 1; }
    [ "$(json "$E2E/repeat/report.json" "r['summary']['flaky']")" = "[]" ] ||
        { echo "flaky: $(json "$E2E/repeat/report.json" "r['summary']['flaky']")"; return 1; }
    [ "$(json "$E2E/repeat/report.json" "sorted({c['boot'] for c in r['cells']})")" = "['restored']" ] ||
        { echo "not every repeated cell was restored"; return 1; }
}

# A snapshot cannot be restored by another kernel's plugin: the state names the System.map
# it was made with, and the plugin refuses another one by name.
t_snapshot_state_of_another_kernel_is_refused() {
    [ -f "$OUT/matrix/snapshots/upstream/plugin.state" ] || { echo "no snapshot state of upstream in $OUT/matrix/snapshots"; return 1; }
    check_plugin_rejects "soc=$SOC,events=$E2E/ev.jsonl,symbols=$OUT/kernels/prefix/System.map,state_in=$OUT/matrix/snapshots/upstream/plugin.state" "another kernel"
}

# Ctrl-C during `make run`, as a terminal sends it: SIGINT to the whole foreground process
# group (make and the runner; the QEMUs have their own group). The run is interrupted
# once the first cell has finished (its progress line). Two jobs, and the loop test (which
# starts first and takes about twice as long as the others) is still running then: its
# QEMU must be stopped and its cell not run, like the cells that never started.
t_ctrl_c_during_make_run_keeps_the_finished_cells() {
    local dir=$E2E/interrupt
    rm -rf "$dir" "$dir.log"
    mkdir -p "$dir"
    local tests=adc-unbind-loop,boot,adc-read,thermal,tsu-unbind
    # setsid: make leads its own process group, like a foreground job of a shell.
    setsid make --no-print-directory run OUT="$dir" KERNELS=upstream TESTS=$tests JOBS=2 >"$dir.log" 2>&1 &
    local pid=$!
    if ! wait_for_line "$dir.log" '^\[ *1/5\] upstream/' "$pid"; then
        tail -n 30 "$dir.log"
        echo "make run ended before a cell finished"
        return 1
    fi
    kill -INT -- "-$pid"
    local status=0
    wait "$pid" || status=$?
    [ "$status" -ne 0 ] || { echo "make run exited 0 after Ctrl-C"; return 1; }
    local report=$dir/matrix/report.json
    [ -f "$report" ] || { tail -n 30 "$dir.log"; echo "no report.json after Ctrl-C"; return 1; }
    [ "$(json "$report" "r['summary']['interrupted']")" = True ] || { echo "summary.interrupted is not true"; return 1; }
    [ "$(json "$report" "r['summary']['interrupted_by']")" = SIGINT ] || { echo "summary.interrupted_by is not SIGINT"; return 1; }
    # The cell whose line we saw is in the report, with its verdict.
    local first
    first=$(grep -m1 -oE '^\[ *1/5\] upstream/[a-z-]+' "$dir.log" | sed 's/.*] //')
    verdicts "$report" | grep_all -q "^$first clean True$" || { echo "the finished cell $first is not in report.json as clean"; verdicts "$report"; return 1; }
    local finished not_run
    finished=$(json "$report" "len(r['cells'])")
    not_run=$(json "$report" "len(r['not_run'])")
    [ "$not_run" -ge 1 ] || { echo "no cell is marked not run"; return 1; }
    [ $((finished + not_run)) -eq 5 ] || { echo "$finished finished + $not_run not run != 5 cells"; return 1; }
    # Every cell of the selection is in exactly one of the two lists.
    [ "$(json "$report" "sorted(c['test'] for c in r['cells']+r['not_run'])==sorted('$tests'.split(','))")" = True ] ||
        { echo "cells and not_run do not cover the selection once each"; return 1; }
    grep -q "INTERRUPTED by SIGINT" "$dir/matrix/report.md" || { echo "report.md does not say the run was interrupted"; return 1; }
    [ "$(grep -c '<skipped message="not run' "$dir/matrix/junit.xml")" -eq "$not_run" ] ||
        { echo "junit.xml does not skip the $not_run cells that did not run"; return 1; }
    # The runner stopped its QEMUs (their command lines name the cell directories; /proc
    # rather than pgrep, which a minimal Debian lacks).
    if grep -qlaF -- "$dir/matrix/cells" /proc/[0-9]*/cmdline 2>/dev/null; then
        echo "a QEMU of the interrupted run is still running"
        return 1
    fi
}

# Shards 1/3, 2/3, 3/3 of a small selection, merged, give the matrix's own verdicts cell
# for cell; a shard killed by SIGTERM (a CI timeout) still merges, its unfinished cell
# not run.
t_shards_merge_to_the_matrix_verdicts() {
    [ -f "$MATRIX_REPORT" ] || { echo "no matrix report at $MATRIX_REPORT"; return 1; }
    local dir=$E2E/shards i
    rm -rf "$dir"
    mkdir -p "$dir"
    local select=(--kernels upstream,prefix --tests boot,adc-unbind,adc-probe-failure)
    for i in 1 2 3; do
        run_cells "$dir/$i" "${select[@]}" --shard "$i/3" --jobs 2 ||
            { tail -n 20 "$dir/$i.log"; echo "shard $i/3 failed"; return 1; }
        [ "$(json "$dir/$i/report.json" "len(r['cells'])")" = 2 ] || { echo "shard $i/3 does not have 2 of the 6 cells"; return 1; }
    done
    $RUNNER merge "$dir"/{3,1,2}/report.json --out "$dir/merged" >"$dir/merge.log" 2>&1 ||
        { cat "$dir/merge.log"; echo "merge failed"; return 1; }
    # The plain run's cells for the same selection, in its order.
    local plain
    plain=$(json "$MATRIX_REPORT" "'\n'.join(c['kernel']+'/'+c['test']+' '+c['outcome']+' '+str(c['ok']) for k in ['upstream','prefix'] for t in ['boot','adc-unbind','adc-probe-failure'] for c in r['cells'] if c['kernel']==k and c['test']==t)")
    diff <(echo "$plain") <(verdicts "$dir/merged/report.json") || { echo "merged verdicts differ from the matrix's (< matrix, > merged)"; return 1; }
    verdicts "$dir/merged/report.json" | grep_all -q "^prefix/adc-unbind abort True$" || { echo "the merge lacks the prefix/adc-unbind abort"; return 1; }
    [ -f "$dir/merged/junit.xml" ] && [ -f "$dir/merged/report.md" ] || { echo "merge wrote no junit.xml or report.md"; return 1; }

    # Shard 3/3 again, one job, killed with SIGTERM once its first cell has finished.
    $RUNNER run --initramfs "$OUT/initramfs.cpio" --kernels-dir "$OUT/kernels" --out "$dir/3k" \
        "${select[@]}" --shard 3/3 --jobs 1 >"$dir/3k.log" 2>&1 &
    local pid=$!
    wait_for_line "$dir/3k.log" '^\[1/2\] ' "$pid" || { tail -n 20 "$dir/3k.log"; echo "shard 3/3 ended before a cell finished"; return 1; }
    kill -TERM "$pid"
    local status=0
    wait "$pid" || status=$?
    [ "$status" -eq 143 ] || { tail -n 20 "$dir/3k.log"; echo "the SIGTERM'd runner exited $status, not 143"; return 1; }
    [ "$(json "$dir/3k/report.json" "(len(r['cells']), len(r['not_run']), r['summary']['interrupted_by'])")" = "(1, 1, 'SIGTERM')" ] ||
        { echo "the killed shard's report does not have 1 cell finished and 1 not run"; return 1; }
    status=0
    $RUNNER merge "$dir"/{1,2,3k}/report.json --out "$dir/merged-killed" >"$dir/merge-killed.log" 2>&1 || status=$?
    [ "$status" -eq 1 ] || { cat "$dir/merge-killed.log"; echo "merging an interrupted shard exited $status, not 1"; return 1; }
    [ "$(json "$dir/merged-killed/report.json" "(len(r['cells']), len(r['not_run']), r['summary']['interrupted'])")" = "(5, 1, True)" ] ||
        { echo "the merge with the killed shard does not have 5 cells and 1 not run"; return 1; }
    # A missing shard is named.
    $RUNNER merge "$dir"/{1,2}/report.json --out "$dir/merged-missing" >"$dir/merge-missing.log" 2>&1 &&
        { echo "merge accepted two of three shards"; return 1; }
    grep -q "shard 3/3 missing" "$dir/merge-missing.log" || { cat "$dir/merge-missing.log"; echo "the missing shard is not named"; return 1; }
    [ ! -e "$dir/merged-missing/report.json" ] || { echo "a refused merge wrote a report"; return 1; }
}

# The matrix's report as KCIDB v5 JSON, validated by kcidb-io (ci/kcidb.sh's venv); a
# malformed report is refused naming the field, and the validator does reject bad data.
t_kcidb_export_of_the_matrix_validates() {
    [ -f "$MATRIX_REPORT" ] || { echo "no matrix report at $MATRIX_REPORT"; return 1; }
    local dir=$E2E/kcidb
    rm -rf "$dir"
    mkdir -p "$dir"
    $RUNNER export-kcidb "$MATRIX_REPORT" --out "$dir/kcidb.json" >"$dir/export.log" 2>&1 ||
        { cat "$dir/export.log"; echo "export-kcidb failed"; return 1; }
    bash ci/kcidb.sh validate "$dir/kcidb.json" >"$dir/validate.log" 2>&1 ||
        { cat "$dir/validate.log"; echo "kcidb-io rejected the export"; return 1; }
    local cells
    cells=$(json "$MATRIX_REPORT" "len(r['cells'])")
    [ "$(json "$dir/kcidb.json" "len([t for t in r['tests'] if t['path'].count('.')==1])")" = "$cells" ] ||
        { echo "not one KCIDB test per cell ($cells)"; return 1; }
    [ "$(json "$dir/kcidb.json" "[t['status'] for t in r['tests'] if t['id'].endswith(':prefix:adc-unbind')]")" = "['FAIL']" ] ||
        { echo "prefix/adc-unbind (abort) is not FAIL"; return 1; }
    # The validator can fail: a lower-case status is refused.
    sed 's/"status": "FAIL"/"status": "fail"/' "$dir/kcidb.json" >"$dir/bad-kcidb.json"
    bash ci/kcidb.sh validate "$dir/bad-kcidb.json" >"$dir/bad-validate.log" 2>&1 &&
        { echo "kcidb-io accepted a lower-case status"; return 1; }
    grep -q "status" "$dir/bad-validate.log" || { cat "$dir/bad-validate.log"; echo "the rejection does not name the status"; return 1; }
    # A malformed report: the export names the field and writes nothing.
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); r["cells"][0]["outcome"]="pass"; json.dump(r,open(sys.argv[2],"w"))' \
        "$MATRIX_REPORT" "$dir/malformed.json"
    $RUNNER export-kcidb "$dir/malformed.json" --out "$dir/malformed-kcidb.json" >"$dir/malformed.log" 2>&1 &&
        { echo "export-kcidb accepted outcome 'pass'"; return 1; }
    grep -q "cells\[0\].outcome" "$dir/malformed.log" || { cat "$dir/malformed.log"; echo "the error does not name cells[0].outcome"; return 1; }
    [ ! -e "$dir/malformed-kcidb.json" ] || { echo "a refused export wrote a file"; return 1; }
}

# make lava's judge: an imported LAVA cell that differs from the runner's own run of it is a
# non-zero exit naming the cell (the agreeing one is said too).
t_lava_compare_names_a_mismatch() {
    local dir=$E2E/lava-compare
    rm -rf "$dir" && mkdir -p "$dir/local/cells/prefix/adc-unbind" "$dir/local/cells/upstream/boot"
    echo '{"outcome": "abort", "aborts": [{"device": "tsu", "register": "TSU_SM", "access": "write", "symbol": "f+0x4"}]}' \
        >"$dir/local/cells/prefix/adc-unbind/cell.json"
    echo '{"outcome": "clean", "aborts": []}' >"$dir/local/cells/upstream/boot/cell.json"
    echo '{"not_run": [], "cells": [
        {"kernel": "prefix", "test": "adc-unbind", "outcome": "clean", "aborts": []},
        {"kernel": "upstream", "test": "boot", "outcome": "clean", "aborts": []}]}' >"$dir/report.json"
    bash ci/lava.sh compare "$dir/report.json" "$dir/local" >"$dir.log" 2>&1 && { cat "$dir.log"; echo "a mismatch passed"; return 1; }
    grep -q "MISMATCH prefix:adc-unbind: LAVA clean" "$dir.log" || { cat "$dir.log"; echo "the mismatch is not named"; return 1; }
    grep -q "upstream:boot: agree" "$dir.log" || { cat "$dir.log"; echo "the agreeing cell is not said"; return 1; }
}

all_checks=$(declare -F | awk '$3 ~ /^t_/ { print $3 }')
selected=("$@")
[ ${#selected[@]} -gt 0 ] || read -r -d '' -a selected <<<"$all_checks"
for t in "${selected[@]}"; do
    t=t_${t#t_}
    declare -F "$t" >/dev/null || { echo "e2e: no check named ${t#t_}" >&2; exit 2; }
    start=$SECONDS
    if out=$("$t" 2>&1); then
        passed=$((passed + 1))
        echo "ok ${t#t_} ($((SECONDS - start)) s)"
    else
        failed=$((failed + 1))
        failures+=("${t#t_}")
        echo "not ok ${t#t_} ($((SECONDS - start)) s)"
        echo "$out" | sed 's/^/    /' | tail -n 40
    fi
done
echo
echo "e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
