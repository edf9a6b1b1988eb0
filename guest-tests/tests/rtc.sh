# rtc: the RZ/G3S RTC under its real driver (rtc-renesas-rtca3) with its counter clock from
# the VBATTB clock controller (clk-vbattb): both bound, /dev/rtc0; a time set through the
# RTC class (busybox hwclock, RTC_SET_TIME) reads back; the counter runs; an alarm set
# through wakealarm 2 s ahead fires (the alarm interrupt's count rises and the RTC class
# clears the alarm); unbind/bind of the RTC keeps the time running (the probe finds the
# counter started in 24-hour mode and leaves it alone, rtca3_initial_setup).
plan 15
RTC=$(dev_by_compat $RTC_COMPAT)
VBATTB=$(dev_by_compat $VBATTB_COMPAT)
check "vbattb bound to renesas-vbattb-clk" bound "$VBATTB" renesas-vbattb-clk
check "rtc bound to rtc-rtca3" bound "$RTC" rtc-rtca3
RTC_CLASS=$(rtc_class)
check "/dev/rtc0 exists and is the RZ/G3S RTC" sh -c "test -c /dev/rtc0 && [ \"\${0##*/}\" = rtc0 ]" "$RTC_CLASS"

step "set the RTC to 2026-12-02 06:42:00 UTC (date, then hwclock -w)"
T0=$(date -u -d "2026-12-02 06:42:00" +%s)
date -u -s "2026-12-02 06:42:00" >/dev/null
check "hwclock -w sets the RTC" hwclock -u -w -f /dev/rtc0
check "the RTC reads the time back (within 1 s)" rtc_secs_near "$T0" 1
check "the RTC date is 2026-12-02" sh -c "[ \"\$(cat $RTC_CLASS/date)\" = 2026-12-02 ]"

step "the counter runs: since_epoch changes within 2 s"
check "since_epoch advances" rtc_advances 20

step "alarm 2 s ahead through wakealarm"
A0=$(irq_count rtca3-alarm)
P0=$(irq_count rtca3-period)
check "wakealarm set to +2" sh -c "echo +2 >$RTC_CLASS/wakealarm && [ -n \"\$(cat $RTC_CLASS/wakealarm)\" ]"
alarm_fired() {
    i=0
    while [ $i -lt 50 ]; do
        [ "$(irq_count rtca3-alarm)" -gt "$A0" ] && [ -z "$(cat $RTC_CLASS/wakealarm)" ] && return 0
        usleep 100000
        i=$((i + 1))
    done
    echo "after 5 s: rtca3-alarm count $(irq_count rtca3-alarm) (was $A0), wakealarm '$(cat $RTC_CLASS/wakealarm)'"
    return 1
}
check "the alarm interrupt fired within 5 s and the alarm cleared" alarm_fired
periodic_rose() {
    [ "$(irq_count rtca3-period)" -gt "$P0" ] || { echo "rtca3-period count stayed at $P0"; return 1; }
}
check "the alarm setup took periodic interrupts" periodic_rose

step "unbind the RTC, 2 s, bind it again"
S1=$(rtc_secs)
read -r U1 _ </proc/uptime
check "unbind rtc" unbind $RTC_DRIVER "$RTC"
sleep 2
check "bind rtc" bind $RTC_DRIVER "$RTC"
read -r U2 _ </proc/uptime
# Whole seconds elapsed in uptime (rounded down), the RTC may be one ahead of that.
EL=$(( ${U2%.*} - ${U1%.*} ))
check "the RTC is back under the RTC class" rtc_class
check "the time kept running across unbind/bind" rtc_secs_near $((S1 + EL - 1)) 2
check "no errors logged by the RTC or VBATTB" sh -c "! dmesg -r | grep -E '^<[0-3]>' | grep -F -e '$RTC' -e '$VBATTB' -e rtca3 -e vbattb"
