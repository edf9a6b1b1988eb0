# rzgate guest test library (busybox sh). A test script calls `plan N`, then `check`
# N times; `step` marks what it is about to do, on the console and in the plugin's
# mailbox, so that every abort is attributed to the step that caused it.

# docs/contracts.md "Mailbox": STEP is the first word of the mailbox page at this guest
# address, exported by the kernel's mmio-sram driver; Linux names both the platform device
# and its export file "<address>.sram".
RZGATE_MAILBOX=7ffff000
RZGATE_MAILBOX_DEV=/sys/bus/platform/devices/$RZGATE_MAILBOX.sram
RZGATE_MAILBOX_STEP=$RZGATE_MAILBOX_DEV/$RZGATE_MAILBOX.sram
# socs/r9a08g045.yaml bus_error: what a read of a gated module returns.
RZGATE_BUS_ERROR=0xffffffff
RZGATE_TEST=""
RZGATE_LOOPS=20
RZGATE_TEMP_MC=25000
RZGATE_ADC="1024:1024:1024:1024:1024:1024:1024:1024"
RZGATE_STEP=0
RZGATE_CHECK=0

CPG_COMPAT=renesas,r9a08g045-cpg
ADC_COMPAT=renesas,r9a08g045-adc
TSU_COMPAT=renesas,r9a08g045-tsu
ADC_DRIVER=/sys/bus/platform/drivers/rzg2l-adc
TSU_DRIVER=/sys/bus/platform/drivers/rzg3s-thermal
RIIC_COMPAT=renesas,riic-r9a08g045
# socs/r9a08g045.yaml i2c_targets: the AT24 EEPROM behind RIIC0 (an i2c client is named
# <bus>-<4-digit address>).
EEPROM_ADDR=0050
WDT_COMPAT=renesas,r9a08g045-wdt
WDT_DRIVER=/sys/bus/platform/drivers/rzg2l_wdt
WDT_CLASS=/sys/class/watchdog/watchdog0
SCIF_COMPAT=renesas,scif-r9a08g045
SCIF_DRIVER=/sys/bus/platform/drivers/sh-sci
# The RTC (rtc-renesas-rtca3) and the VBATTB clock controller that feeds its counter.
RTC_COMPAT=renesas,r9a08g045-rtca3
RTC_DRIVER=/sys/bus/platform/drivers/rtc-rtca3
VBATTB_COMPAT=renesas,r9a08g045-vbattb
VBATTB_DRIVER=/sys/bus/platform/drivers/renesas-vbattb-clk
# USB as on the SMARC board (socs/r9a08g045.yaml phyrst, usb2_phy0, hsusb): the USB PHY
# control and its VBUS regulator, the USB2 PHY, the high-speed function controller.
USBPHYCTRL_COMPAT=renesas,r9a08g045-usbphy-ctrl
USBPHYCTRL_DRIVER=/sys/bus/platform/drivers/rzg2l_usbphy_ctrl
USB2PHY_COMPAT=renesas,usb2-phy-r9a08g045
USB2PHY_DRIVER=/sys/bus/platform/drivers/phy_rcar_gen3_usb2
USBHS_COMPAT=renesas,usbhs-r9a08g045
USBHS_DRIVER=/sys/bus/platform/drivers/renesas_usbhs
# The system controller (rz-sysc) and what its soc_device shows (socs/r9a08g045.yaml sysc:
# the family and soc_id the driver derives, the revision in the model's SYS_LSI_DEVID).
SYSC_COMPAT=renesas,r9a08g045-sysc
SYSC_DRIVER=/sys/bus/platform/drivers/renesas-rz-sysc
SYSC_FAMILY=RZ/G3S
SYSC_SOC_ID=r9a08g045
SYSC_REVISION=0

rzgate_parse_cmdline() {
    rzgate_parse_words $(cat /proc/cmdline)
}

rzgate_parse_words() {
    for arg in "$@"; do
        case "$arg" in
        rzgate.test=*) RZGATE_TEST=${arg#*=} ;;
        rzgate.loops=*) RZGATE_LOOPS=${arg#*=} ;;
        rzgate.temp_mc=*) RZGATE_TEMP_MC=${arg#*=} ;;
        rzgate.adc=*) RZGATE_ADC=${arg#*=} ;;
        rzgate.snapshot=*) RZGATE_SNAPSHOT=${arg#*=} ;;
        esac
    done
}

# Snapshot mode (rzgate.snapshot=1 on the command line, docs/contracts.md "Snapshots"): the
# runner migrates the guest to a file while it waits here, and each restored copy is told
# its test on the console, in one line of the same rzgate.* words the command line carries.
# Bytes that arrive before QEMU has finished loading the snapshot can be lost, so the
# runner sends a newline first, and lines without rzgate.test= are skipped.
rzgate_wait_for_params() {
    stty -echo 2>/dev/null
    echo "# rzgate-snapshot-ready"
    while read -r line; do
        case "$line" in *rzgate.test=*) break ;; esac
    done
    rzgate_parse_words $line
    echo "# rzgate-params: $line"
}

plan() { echo "1..$1"; }

# The kernel's own tools/testing/selftests/dt/test_unprobed_devices.sh as one check with
# the selftest's KTAP nested under it. boot runs it after boot, the loop tests after their
# unbind/bind loops (it forks a few hundred processes: too slow to run in every test).
# A test that leaves a device unbound on purpose (a failed probe) lists its DT node in
# DT_EXPECT_UNBOUND (see dt_node_of); the selftest's failure for exactly those nodes is
# then the expected result, and any other unbound node still fails the check.
DT_EXPECT_UNBOUND=""
#
# The script greps its 15k-line compatible_list (every compatible in the kernel tree) once
# per word of every compatible of every unbound node, about 0.15 s a grep under the
# plugin. It runs here from a copy whose list keeps only the lines the script can match:
# for each compatible C of this DT, the lines that `grep -x "C"` (the script's own match, a
# regex) selects. Any line the script would match against C is in the copy, and the copy
# has no other lines, so every result is the one the full list gives. The runner works the
# copy out on the host when it writes the DTB and puts it into /chosen (runner
# src/selftest.rs says what it models); without that property the guest works it out
# itself, with grep (0.8 s). Compatibles without regex metacharacters match only
# themselves: one `grep -x -F -f` pass takes those.
RZGATE_DT_SELFTEST_LINES=/proc/device-tree/chosen/rzgate,dt-selftest-compatibles
dt_selftest_copy() {
    rm -rf /tmp/selftests && cp -r /selftests /tmp/selftests || return 1
    if [ -f "$RZGATE_DT_SELFTEST_LINES" ]; then
        tr '\000' '\n' <"$RZGATE_DT_SELFTEST_LINES" >/tmp/selftests/dt/compatible_list
        return
    fi
    dt_selftest_lines_in_guest >/tmp/selftests/dt/compatible_list
}
dt_selftest_lines_in_guest() {
    full=/selftests/dt/compatible_list
    # One word a line: the script splits each compatible as the shell does.
    find /proc/device-tree/ -name compatible -exec cat {} + | tr '\000 \t' '\n\n\n' | sort -u >/tmp/dt-compatibles
    grep -v '[].[*^$\\+?(){}|]' /tmp/dt-compatibles >/tmp/dt-compatibles-plain
    grep -x -F -f /tmp/dt-compatibles-plain "$full"
    grep '[].[*^$\\+?(){}|]' /tmp/dt-compatibles | while IFS= read -r c; do
        grep -x -e "$c" "$full"
    done
}
dt_selftest() {
    RZGATE_CHECK=$((RZGATE_CHECK + 1))
    dt_selftest_copy || { echo "not ok $RZGATE_CHECK dt-unprobed-devices # could not prepare /tmp/selftests"; return; }
    out=$(cd /tmp/selftests/dt && sh ./test_unprobed_devices.sh 2>&1)
    status=$?
    echo "$out" | sed 's/^/    /'
    unexpected=""
    for node in $(echo "$out" | sed -n 's/^not ok [0-9]* \(\/[^ ]*\).*/\1/p'); do
        case " $DT_EXPECT_UNBOUND " in
        *" $node "*) ;;
        *) unexpected="$unexpected $node" ;;
        esac
    done
    if [ $status -eq 0 ]; then
        echo "ok $RZGATE_CHECK dt-unprobed-devices"
    elif [ -z "$unexpected" ] && [ -n "$DT_EXPECT_UNBOUND" ]; then
        echo "ok $RZGATE_CHECK dt-unprobed-devices # unbound as the test intends:$DT_EXPECT_UNBOUND"
    else
        echo "not ok $RZGATE_CHECK dt-unprobed-devices # unbound:${unexpected:- (selftest failed: exit $status)}"
    fi
}

# The DT node path (as the selftest prints it) of a platform device.
dt_node_of() {
    n=$(readlink -f "/sys/bus/platform/devices/$1/of_node")
    echo "${n#/sys/firmware/devicetree/base}"
}

# check "description" command...: one KTAP result line from the command's exit status;
# the command's stdout becomes the reason on failure, without printk timestamps: the
# runner reads a timestamp inside a line as a kernel message that interrupted it.
check() {
    desc=$1
    shift
    RZGATE_CHECK=$((RZGATE_CHECK + 1))
    if out=$("$@" 2>&1); then
        echo "ok $RZGATE_CHECK $desc"
    else
        echo "not ok $RZGATE_CHECK $desc # $(echo "$out" | tr '\n' ' ' | sed 's/\[ *[0-9]*\.[0-9]*\] //g' | cut -c1-300)"
    fi
}

# Power off at once. poweroff -f does not wait for the UART: without a drain the last
# lines are lost. stty sets the (unchanged) attributes with TCSADRAIN, which returns once
# the tty is empty.
rzgate_poweroff() {
    stty -F /dev/console "$(stty -F /dev/console -g)"
    poweroff -f
}

# Why the mailbox export is missing, for the console.
mailbox_missing() {
    if [ ! -e "$RZGATE_MAILBOX_DEV" ]; then
        echo "no platform device $RZGATE_MAILBOX.sram (the DT has no mmio-sram node sram@$RZGATE_MAILBOX)"
    elif [ ! -e "$RZGATE_MAILBOX_DEV/driver" ]; then
        echo "$RZGATE_MAILBOX.sram is not bound to a driver (CONFIG_SRAM off?)"
    else
        echo "$RZGATE_MAILBOX.sram is bound but has no export $RZGATE_MAILBOX_STEP (no child partition with export;?)"
    fi
}

# The step number goes to the mailbox through the kernel: a write to the sram export is
# memcpy_toio into the window, so user space never maps the window for a step. Without
# the mailbox no abort could name its step: the cell stops here, without `# rzgate-done`,
# which makes it an error.
step() {
    RZGATE_STEP=$((RZGATE_STEP + 1))
    echo "# rzgate-step $RZGATE_STEP $RZGATE_TEST: $*"
    n=$RZGATE_STEP
    # STEP and STEP_PAD as 8 little-endian bytes, written with octal escapes (they may be
    # NUL): 8 bytes at offset 0 are one 64-bit store in the kernel's memcpy_toio, so the
    # plugin sees the whole step at once. The octal digits come from shell arithmetic: no
    # process.
    le=""
    for shift in 0 8 16 24; do
        b=$((n >> shift & 255))
        le="$le\\$((b >> 6))$((b >> 3 & 7))$((b & 7))"
    done
    le="$le\\000\\000\\000\\000"
    if [ ! -f "$RZGATE_MAILBOX_STEP" ]; then
        echo "# rzgate-fatal: step $n: cannot write the mailbox: $(mailbox_missing)"
        rzgate_poweroff
    fi
    if ! printf "$le" 2>/tmp/rzgate-step.err >"$RZGATE_MAILBOX_STEP"; then
        echo "# rzgate-fatal: step $n: writing $RZGATE_MAILBOX_STEP failed: $(cat /tmp/rzgate-step.err)"
        rzgate_poweroff
    fi
}

# The platform device whose DT node carries compatible $1 (the name sysfs gives it). The
# uevent file lists the node's compatibles as OF_COMPATIBLE_<n>=...; reading it with the
# shell's own `read` costs no process (forks are the guest's slowest operation).
dev_by_compat() {
    for d in /sys/bus/platform/devices/*; do
        [ -f "$d/uevent" ] || continue
        while IFS= read -r line; do
            case "$line" in
            OF_COMPATIBLE_[0-9]*=*)
                if [ "${line#*=}" = "$1" ]; then
                    echo "${d##*/}"
                    return 0
                fi
                ;;
            esac
        done <"$d/uevent"
    done
    echo "no platform device with compatible $1"
    return 1
}

# bound DEVICE DRIVER-NAME: the device is bound to that driver.
bound() {
    drv=$(readlink "/sys/bus/platform/devices/$1/driver" 2>/dev/null) || { echo "$1 is not bound to any driver"; return 1; }
    [ "${drv##*/}" = "$2" ] || { echo "$1 is bound to ${drv##*/}, not $2"; return 1; }
}
unbound() {
    if readlink "/sys/bus/platform/devices/$1/driver" >/dev/null 2>&1; then
        echo "$1 is still bound to $(basename "$(readlink "/sys/bus/platform/devices/$1/driver")")"
        return 1
    fi
}

# sysfs bind/unbind: a failing write is reported, not hidden.
unbind() { echo "$2" >"$1/unbind" 2>&1 || { echo "unbind of $2 failed"; return 1; }; }
bind() { echo "$2" >"$1/bind" 2>&1 || { echo "bind of $2 failed"; return 1; }; }

# Bind unless the driver core already did: when a supplier binds again, its device-link
# consumers are re-probed from the deferred-probe work, so the TSU may be bound by the
# time the test asks. The bind write waits for an ongoing probe (device lock), so
# "already bound" after a failed write is a settled state, not a race.
bind_if_unbound() {
    echo "$2" >"$1/bind" 2>/dev/null && return 0
    bound "$2" "$(basename "$1")" >/dev/null && return 0
    echo "bind of $2 failed and it is not bound"
    return 1
}

# A restored cell starts from a snapshot booted without the cell's faults, so the ADC
# probed fine there. A test about a probe that fails at boot calls this first when
# restored: it brings the ADC to where a boot with the fault armed leaves it, through the
# same really_probe() path (sysfs bind). On the way out no driver callback may touch a
# register, or the pre-6.17 kernels would abort on the unbind itself (adc-unbind):
# - the thermal zone is disabled first, so the TSU's zone release finds it disabled and
#   never calls change_mode (thermal_core.c thermal_zone_device_set_mode);
# - the ADC's runtime PM is forbidden (power/control = on) across its unbind: the
#   usage count it holds makes the rpm_idle() of pm_runtime_disable_action fail, so
#   rzg2l_adc_pm_runtime_suspend is not called after the PM-domain detach. The driver
#   core's pm_runtime_reinit() leaves the unbound ADC runtime-suspended, and `auto` gives
#   the count back, so the bind starts from the runtime-PM state of a boot.
# The bind's own result is the test's to check. Prints nothing: the cell's KTAP lines are
# those of a cold boot.
reprobe_adc_after_restore() {
    [ "$RZGATE_SNAPSHOT" = 1 ] || return 0
    adc=$(dev_by_compat $ADC_COMPAT) || return 1
    if z=$(tsu_zone); then echo disabled >"$z/mode"; fi
    echo on >"/sys/bus/platform/devices/$adc/power/control"
    echo "$adc" >$ADC_DRIVER/unbind
    echo auto >"/sys/bus/platform/devices/$adc/power/control"
    echo "$adc" >$ADC_DRIVER/bind 2>/dev/null
    return 0
}

# The adapter number RIIC0 registered (i2c-N under its platform device $RIIC).
riic_bus() {
    for a in /sys/bus/platform/devices/$RIIC/i2c-*; do
        [ -d "$a" ] && { echo "${a##*/i2c-}"; return 0; }
    done
    echo "$RIIC has no i2c adapter"
    return 1
}

# i2c_read_fails_with ADDRESS ERRNO-TEXT: a one-byte read of ADDRESS on RIIC0's adapter
# through i2c-dev fails with that errno (the C library's text for it).
i2c_read_fails_with() {
    n=$(riic_bus) || { echo "$n"; return 1; }
    if out=$(i2ctransfer -y "$n" "r1@$1" 2>&1); then
        echo "a read from $1 on i2c-$n succeeded: $out"
        return 1
    fi
    case "$out" in
    *"$2"*) ;;
    *) echo "the read from $1 failed otherwise: $out"; return 1 ;;
    esac
}

# The IIO device directory of the ADC (its name changes across rebinds).
adc_iio_dir() {
    for d in /sys/bus/platform/devices/$(dev_by_compat $ADC_COMPAT)/iio:device*; do
        [ -d "$d" ] && { echo "$d"; return 0; }
    done
    echo "the ADC has no IIO device"
    return 1
}

# Both run in every cycle of adc-unbind-loop: no process beyond the $(...) subshells.
adc_expected() { # channel -> its host-set value, from rzgate.adc
    rest=$RZGATE_ADC:
    i=0
    while [ $i -lt "$1" ]; do
        rest=${rest#*:}
        i=$((i + 1))
    done
    echo "${rest%%:*}"
}

adc_reads() { # channel expected
    dir=$(adc_iio_dir) || { echo "$dir"; return 1; }
    read -r got 2>/tmp/rzgate-adc.err <"$dir/in_voltage$1_raw" ||
        { echo "reading in_voltage$1_raw failed: $(cat /tmp/rzgate-adc.err)"; return 1; }
    [ "$got" = "$2" ] || { echo "in_voltage$1_raw = $got, expected $2"; return 1; }
}

# The thermal zone fed by the TSU.
tsu_zone() {
    for z in /sys/class/thermal/thermal_zone*; do
        [ "$(cat "$z/type" 2>/dev/null)" = "cpu-thermal" ] && { echo "$z"; return 0; }
    done
    echo "no cpu-thermal zone"
    return 1
}

zone_temp_is() { # expected milli-°C, tolerance milli-°C
    z=$(tsu_zone) || { echo "$z"; return 1; }
    t=$(cat "$z/temp" 2>&1) || { echo "reading $z/temp failed: $t"; return 1; }
    d=$((t - $1))
    [ "$d" -lt 0 ] && d=$((-d))
    [ "$d" -le "$2" ] || { echo "$z/temp = $t, expected $1 +- $2"; return 1; }
}

# Wait (bounded) until a device's runtime PM status is $2: autosuspend is 300 ms.
wait_runtime_status() {
    i=0
    while [ "$(cat "/sys/bus/platform/devices/$1/power/runtime_status" 2>/dev/null)" != "$2" ]; do
        i=$((i + 1))
        [ $i -gt 100 ] && { echo "$1 runtime_status stays $(cat "/sys/bus/platform/devices/$1/power/runtime_status" 2>/dev/null), expected $2"; return 1; }
        usleep 20000
    done
}

# Kernel log lines at warning level or worse (printk levels 0..4, `dmesg -r` prints the
# level as <N>) logged by the devices under test or their subsystems. Who logged it and at
# what level is the behaviour; the wording is the driver's to change (a patch that only
# rewords a message must not fail a test).
driver_errors() {
    cpg=$(dev_by_compat $CPG_COMPAT) || cpg=clock-controller
    adc=$(dev_by_compat $ADC_COMPAT) || adc=.adc
    tsu=$(dev_by_compat $TSU_COMPAT) || tsu=.thermal
    dmesg -r | grep -E '^<[0-4]>' |
        grep -F -e "$cpg" -e "$adc" -e "$tsu" -e rzg2l-cpg -e rzg2l-adc -e rzg3s-thermal -e thermal_zone -e clk || true
}
no_driver_errors() {
    errs=$(driver_errors)
    [ -z "$errs" ] || { echo "$errs"; return 1; }
}

# logged_error DEVICE: the kernel logged an error (printk level 3 or worse) for this device
# (dev_err and friends prefix "<driver> <device>: "), whatever the words.
logged_error() {
    dmesg -r | grep -E '^<[0-3]>' | grep -qF " $1: " || { echo "no error logged for $1"; return 1; }
}

# write_fails_with ERRNO-TEXT FILE VALUE: writing VALUE to FILE fails with that errno (the
# C library's text for it, as the shell reports a failed write: "write error: <text>").
write_fails_with() {
    if out=$( (echo "$3" >"$2") 2>&1); then
        echo "writing $3 to $2 succeeded"
        return 1
    fi
    case "$out" in
    *"$1"*) ;;
    *) echo "writing $3 to $2 failed otherwise: $out"; return 1 ;;
    esac
}

# The watchdog core's view (CONFIG_WATCHDOG_SYSFS): wdt_state_is active|inactive.
wdt_state_is() {
    st=$(cat "$WDT_CLASS/state" 2>&1) || { echo "no $WDT_CLASS/state: $st"; return 1; }
    [ "$st" = "$1" ] || { echo "watchdog state is $st, expected $1"; return 1; }
}
wdt_timeout_is() {
    t=$(cat "$WDT_CLASS/timeout" 2>&1) || { echo "no $WDT_CLASS/timeout: $t"; return 1; }
    [ "$t" = "$1" ] || { echo "watchdog timeout is $t s, expected $1"; return 1; }
}
# wdt_active_with TIMEOUT: the watchdog core reports it running with that timeout (a client
# that just opened it), within 1 s.
wdt_active_with() {
    i=0
    while [ $i -lt 50 ]; do
        [ "$(cat "$WDT_CLASS/state" 2>/dev/null)" = active ] &&
            [ "$(cat "$WDT_CLASS/timeout" 2>/dev/null)" = "$1" ] && return 0
        usleep 20000
        i=$((i + 1))
    done
    echo "the watchdog did not become active with timeout $1 s"
    return 1
}
# The busybox watchdog daemon: opens /dev/watchdog, sets the timeout (WDIOC_SETTIMEOUT),
# writes a byte every ping interval; on SIGTERM it writes the magic 'V' and closes.
wdt_daemon_start() { # timeout_s ping_s
    watchdog -T "$1" -t "$2" /dev/watchdog || { echo "watchdog -T $1 -t $2 failed"; return 1; }
    wdt_active_with "$1"
}
# The kernel's own client (tools/testing/selftests/watchdog/watchdog-test, built into the
# initramfs from the kernel source). It reports a failed ioctl on stdout and exits 0
# anyway, so a run passes when it exits 0 and names no error.
WDT_SELFTEST=/selftests/watchdog/watchdog-test
# The kernel's RTC client (tools/testing/selftests/rtc/rtctest).
RTC_SELFTEST=/selftests/rtc/rtctest
wdt_selftest() { # args...
    out=$("$WDT_SELFTEST" "$@" 2>&1) || { echo "watchdog-test $* exited $?: $out"; return 1; }
    case "$out" in
    *rror*) echo "watchdog-test $*: $out"; return 1 ;;
    esac
}
wdt_daemon_pid() { pidof watchdog; }

# The tty of the SCIF (ttySC<line>): the class device whose sysfs path runs through it.
scif_tty() { # uses $SCIF, the SCIF's platform device
    for t in /sys/class/tty/ttySC*; do
        [ -e "$t" ] || continue
        case "$(readlink -f "$t")" in
        */"$SCIF"/*) echo "${t##*/}"; return 0 ;;
        esac
    done
    echo "no ttySC* under $SCIF"
    return 1
}

# scif_pattern N: N bytes, byte i is i mod 256 (printf octal escapes; printf is a shell
# builtin).
scif_pattern() { # N
    i=0
    fmt=""
    while [ $i -lt $1 ]; do
        fmt="$fmt\\$((i >> 6 & 3))$((i >> 3 & 7))$((i & 7))"
        i=$((i + 1))
    done
    printf "$fmt"
}
# scif_port_field FIELD: the serial core's count FIELD (tx, rx, oe, ...) for the SCIF's port
# in /proc/tty/driver/sci (0 when the line does not print it: counts are printed when set).
scif_port_field() {
    t=$(scif_tty) || { echo "$t"; return 1; }
    l=$(grep "^${t#ttySC}: " /proc/tty/driver/sci) || { echo "no line ${t#ttySC} in /proc/tty/driver/sci"; return 1; }
    v=$(echo "$l" | sed -n "s/.* $1:\([0-9]*\).*/\1/p")
    echo "${v:-0}"
}

# scif_exchange BAUD TX RX: with the SCIF's tty held open (fd 3: the port starts once and
# keeps what it receives in the tty buffer), raw mode without echo or flow control at
# BAUD, file TX written to it, and as many bytes as TX has read back into RX, waiting at
# most 5 s (RX may come out shorter). Fails only when the tty cannot be set up.
scif_exchange() {
    t=$(scif_tty) || { echo "$t"; return 1; }
    dev=/dev/$t
    exec 3<>"$dev" || { echo "cannot open $dev"; return 1; }
    if ! err=$(stty -F "$dev" raw -echo -echoe -echok -echoctl -echoke -ixon -ixoff -crtscts clocal cread "$1" 2>&1); then
        exec 3>&-
        echo "stty $1 on $dev failed: $err"
        return 1
    fi
    got=$(stty -F "$dev" speed 2>&1)
    rm -f "$3"
    cat "$2" >"$dev"
    timeout 5 head -c "$(wc -c <"$2")" <"$dev" >"$3"
    exec 3>&-
    [ "$got" = "$1" ] || { echo "speed is $got after stty $1"; return 1; }
}
# The RTC class device of the RZ/G3S RTC (rtcN: a rebind may get a new N, the alarm timer
# keeps a reference to the old one, kernel/time/alarmtimer.c alarmtimer_rtc_add_device).
rtc_class() {
    for c in /sys/bus/platform/devices/$(dev_by_compat $RTC_COMPAT)/rtc/rtc*; do
        [ -e "$c/since_epoch" ] && { echo "$c"; return 0; }
    done
    echo "the RTC has no RTC class device"
    return 1
}
# The RTC's seconds since the epoch as the RTC class reads it (rtca3_read_time).
rtc_secs() { c=$(rtc_class) || { echo "$c"; return 1; }; cat "$c/since_epoch"; }
# The count of interrupt $1 (its action name in /proc/interrupts: rtca3-alarm,
# <device>:rx full), summed over the CPUs; 0 when the line is not requested.
irq_count() {
    while read -r first rest; do
        case " $rest " in
        *" $1 "*)
            n=0
            for w in $rest; do
                case "$w" in *[!0-9]*) break ;; esac
                n=$((n + w))
            done
            echo $n
            return 0
            ;;
        esac
    done </proc/interrupts
    echo 0
}
# rtc_secs_near EXPECTED SLACK: the RTC reads EXPECTED .. EXPECTED + SLACK seconds.
rtc_secs_near() {
    got=$(rtc_secs) || { echo "since_epoch unreadable"; return 1; }
    [ "$got" -ge "$1" ] && [ "$got" -le $(($1 + $2)) ] ||
        { echo "RTC reads $got s, expected $1 .. $(($1 + $2))"; return 1; }
}
# rtc_advances CAP_DS: since_epoch changes within CAP_DS tenths of a second.
rtc_advances() {
    a=$(rtc_secs) || return 1
    i=0
    while [ $i -lt "$1" ]; do
        usleep 100000
        [ "$(rtc_secs)" != "$a" ] && return 0
        i=$((i + 1))
    done
    echo "since_epoch stayed at $a for $1 tenths of a second"
    return 1
}

# The DMA controller (rz-dmac) and the kernel's dmatest client (CONFIG_DMATEST=y: built in,
# idle until /sys/module/dmatest/parameters/run is written).
DMAC_COMPAT=renesas,r9a08g045-dmac
DMAC_DRIVER=/sys/bus/platform/drivers/rz-dmac
DMATEST=/sys/module/dmatest/parameters
# dmatest_run DEVICE CHANNELS ITERATIONS BUF_SIZE TIMEOUT_MS: one verified memcpy run
# (dmatest.c add_threaded_test: one thread per channel, CHANNELS channels of DEVICE),
# waiting for its end (below; reading `run` afterwards releases the channels); the kernel log lines it wrote go to /tmp/dmatest.log.
dmatest_run() {
    before=$(dmesg | wc -l)
    echo "$1" >$DMATEST/device && echo 1 >$DMATEST/threads_per_chan &&
        echo "$2" >$DMATEST/max_channels && echo "$3" >$DMATEST/iterations &&
        echo "$4" >$DMATEST/test_buf_size && echo "$5" >$DMATEST/timeout &&
        echo 0 >$DMATEST/noverify || { echo "cannot set the dmatest parameters"; return 1; }
    echo 1 >$DMATEST/run || { echo "writing 1 to $DMATEST/run failed"; return 1; }
    # Reading `wait` blocks only while a thread runs, and a thread `run` woke that has not
    # been scheduled yet is still pending, which does not count (dmatest.c:254-268; the
    # thread clears `pending` when it starts, :613): a read that early returns at once.
    # So: until each of the CHANNELS threads has logged its summary (:935), then once
    # more for the last one to be done (:944).
    i=0
    until [ "$(dmesg | tail -n +$((before + 1)) | grep -c ': summary ')" -ge "$2" ]; do
        cat $DMATEST/wait >/dev/null
        i=$((i + 1))
        [ $i -le 10000 ] || { echo "no summary from the $2 dmatest threads"; return 1; }
    done
    cat $DMATEST/wait >/dev/null
    [ "$(cat $DMATEST/run)" = N ] || { echo "dmatest still runs after wait"; return 1; }
    dmesg | tail -n +$((before + 1)) >/tmp/dmatest.log
}
# dmatest_summary: "THREADS TESTS FAILURES" summed over the summary lines of the last run
# (dmatest.c:935, one per thread: "<thread>: summary N tests, F failures ...").
dmatest_summary() {
    sed -n 's/.*: summary \([0-9]*\) tests, \([0-9]*\) failures.*/\1 \2/p' /tmp/dmatest.log |
        { t=0; n=0; f=0; while read -r a b; do t=$((t + 1)); n=$((n + a)); f=$((f + b)); done; echo "$t $n $f"; }
}
# dmac_irqs DEVICE CHANNELS: the interrupts of its channels 0..CHANNELS-1, summed (rz-dmac
# names each channel's handler "<device>:<n>", rz_dmac_chan_probe).
dmac_irqs() {
    s=0
    i=0
    while [ $i -lt "$2" ]; do
        s=$((s + $(irq_count "$1:$i")))
        i=$((i + 1))
    done
    echo $s
}
