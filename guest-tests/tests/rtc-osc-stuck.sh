# rtc-osc-stuck: the plugin arms rtc-osc-stuck (the RTC's oscillator never runs, RCR2.START
# never reads 1), so rtca3_initial_setup's start poll times out (rtc-renesas-rtca3.c:646-649)
# and the probe fails with -ETIMEDOUT at boot and again on a bind through sysfs. A cold boot
# (the snapshot's RTC was started at boot, and a probe that finds it started leaves it
# alone). The VBATTB is unaffected. Checked: device state and errno, not the wording.
plan 6
RTC=$(dev_by_compat $RTC_COMPAT)
VBATTB=$(dev_by_compat $VBATTB_COMPAT)
DT_EXPECT_UNBOUND="$(dt_node_of "$RTC")"
check "vbattb bound to renesas-vbattb-clk" bound "$VBATTB" renesas-vbattb-clk
check "rtc not bound" unbound "$RTC"
check "no /dev/rtc0" sh -c '! test -e /dev/rtc0 || { echo "/dev/rtc0 exists"; exit 1; }'
step "bind rtc again (the start poll times out again)"
check "bind rtc fails with ETIMEDOUT" write_fails_with "Connection timed out" "$RTC_DRIVER/bind" "$RTC"
check "rtc still not bound" unbound "$RTC"
dt_selftest
