# watchdog: the RZ/G3S WDT0 under its real driver (rzg2l_wdt) and a real client (busybox
# watchdog): bound, started through /dev/watchdog, pinged across more than twice the
# timeout without a reset, stopped by the magic close ('V'), and no reset afterwards.
# A reset the test does not expect makes the cell an error (the runner sees the plugin's
# watchdog_reset event), so "no bite" is checked by the runner as well as by getting here.
plan 8
WDT_TIMEOUT=2
WDT=$(dev_by_compat $WDT_COMPAT)
check "wdt0 bound to rzg2l_wdt" bound "$WDT" rzg2l_wdt
check "/dev/watchdog exists" test -c /dev/watchdog
check "watchdog inactive before open" wdt_state_is inactive
step "start the watchdog daemon: timeout ${WDT_TIMEOUT} s, ping every 1 s"
check "daemon started, timeout ${WDT_TIMEOUT} s" wdt_daemon_start $WDT_TIMEOUT 1
step "keep pinging for 2 timeouts"
sleep $((2 * WDT_TIMEOUT))
check "pinged past 2 timeouts: still running, still active" wdt_state_is active
step "magic close: SIGTERM makes the daemon write 'V' and close"
PID=$(wdt_daemon_pid)
kill -TERM $PID
# Exited: no process, or a zombie (the daemon detached itself, and its new parent, PID 1,
# is this script's shell, which reaps it only at its next wait).
gone() {
    i=0
    while [ $i -lt 100 ]; do
        read -r _ _ st _ <"/proc/$1/stat" 2>/dev/null || return 0
        [ "$st" = Z ] && return 0
        usleep 20000
        i=$((i + 1))
    done
    echo "daemon $1 still running (state $st)"
    return 1
}
check "daemon exited" gone "$PID"
check "magic close stopped the watchdog" wdt_state_is inactive
step "no reset after the magic close: wait 2 timeouts"
sleep $((2 * WDT_TIMEOUT))
check "still running 2 timeouts after the magic close" wdt_state_is inactive
