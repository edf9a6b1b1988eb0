# rtctest: the kernel's own RTC client (tools/testing/selftests/rtc/rtctest, built static
# from the kernels' source) against the RZ/G3S RTC under rtc-renesas-rtca3: reads
# (date_read, a 30 s read loop that the seconds never go backwards in), update interrupts
# (uie_read, uie_select: the RTC core's emulation on the alarm), alarms 3 s ahead
# (alarm_alm_set, alarm_wkalm_set) and at the next minute boundary (alarm_alm_set_minute,
# alarm_wkalm_set_minute). Its KTAP output is nested under this test's; every one of its
# tests must pass (a skip counts against it: a "not supported" path would hide a model that
# lost its alarm), and the alarm interrupt must have fired for the alarms it waited on.
#
# The two minute-boundary tests wait for the RTC's next minute: the clock is set to
# hh:mm:10 first, so that the first of them starts near the boundary (after about 42 s of
# the tests before it) instead of waiting up to a minute; the second waits a full minute
# whatever the start. The cell takes about 110 s.
plan 5
RTC=$(dev_by_compat $RTC_COMPAT)
check "rtc bound to rtc-rtca3" bound "$RTC" rtc-rtca3
RTC_CLASS=$(rtc_class)
check "/dev/rtc0 is the RZ/G3S RTC" sh -c "test -c /dev/rtc0 && [ \"\${0##*/}\" = rtc0 ]" "$RTC_CLASS"

step "set the RTC to 2026-12-02 06:41:10 UTC (date, then hwclock -w)"
date -u -s "2026-12-02 06:41:10" >/dev/null
check "hwclock -w sets the RTC" hwclock -u -w -f /dev/rtc0

step "rtctest /dev/rtc0"
A0=$(irq_count rtca3-alarm)
RTCTEST_OUT=/tmp/rtctest.out
"$RTC_SELFTEST" /dev/rtc0 >"$RTCTEST_OUT" 2>&1
RTCTEST_STATUS=$?
sed 's/^/    /' "$RTCTEST_OUT"
# Its KTAP results: every planned test "ok" and none skipped.
rtctest_all_passed() {
    planned=$(sed -n 's/^1\.\.\([0-9]*\)$/\1/p' "$RTCTEST_OUT" | head -n 1)
    passed=$(grep -c '^ok [0-9]' "$RTCTEST_OUT")
    skipped=$(grep -c '^ok [0-9].*# SKIP' "$RTCTEST_OUT")
    [ "$RTCTEST_STATUS" -eq 0 ] && [ -n "$planned" ] && [ "$planned" -gt 0 ] &&
        [ "$passed" -eq "$planned" ] && [ "$skipped" -eq 0 ] ||
        { echo "rtctest exited $RTCTEST_STATUS: ${planned:-no} planned, $passed ok, $skipped of them skipped"; return 1; }
}
check "rtctest: every test passed, none skipped" rtctest_all_passed
# alarm_alm_set, alarm_wkalm_set and the two minute alarms each wait for one.
alarms_fired() {
    n=$(( $(irq_count rtca3-alarm) - A0 ))
    [ "$n" -ge 4 ] || { echo "the RTC's alarm interrupt fired $n times during rtctest, expected 4 or more"; return 1; }
}
check "the RTC's alarm interrupt fired for rtctest's alarms" alarms_fired
