# watchdog: the RZ/G3S WDT0 under its real driver (rzg2l_wdt) and the kernel's own client,
# tools/testing/selftests/watchdog/watchdog-test: bound; its info and timeout queries;
# started through /dev/watchdog and pinged (WDIOC_KEEPALIVE) across more than twice the
# timeout without a reset; stopped by the magic close ('V', written by its SIGTERM
# handler), and no reset afterwards. A reset the test does not expect makes the cell an
# error (the runner sees the plugin's watchdog_reset event), so "no bite" is checked by
# the runner as well as by getting here.
plan 10
WDT_TIMEOUT=2
WDT=$(dev_by_compat $WDT_COMPAT)
check "wdt0 bound to rzg2l_wdt" bound "$WDT" rzg2l_wdt
check "/dev/watchdog exists" test -c /dev/watchdog
check "watchdog inactive before open" wdt_state_is inactive
step "watchdog-test --info (open, WDIOC_GETSUPPORT, magic close)"
check "watchdog-test --info" wdt_selftest --info
# WDIOC_SETTIMEOUT then WDIOC_GETTIMEOUT; the core's sysfs keeps the value after the close.
timeout_reads_back() { wdt_selftest -t "$1" -T && wdt_timeout_is "$1"; }
check "timeout ${WDT_TIMEOUT} s set and read back (watchdog-test -t ${WDT_TIMEOUT} -T)" timeout_reads_back $WDT_TIMEOUT
step "watchdog-test: timeout ${WDT_TIMEOUT} s, ping every 1 s"
"$WDT_SELFTEST" -t $WDT_TIMEOUT -p 1 >/tmp/watchdog-test.out 2>&1 &
PID=$!
check "watchdog-test started, timeout ${WDT_TIMEOUT} s" wdt_active_with $WDT_TIMEOUT
step "keep pinging for 2 timeouts"
sleep $((2 * WDT_TIMEOUT))
pinged() { # watchdog-test prints a '.' per WDIOC_KEEPALIVE that succeeded, after its banner
    n=$(sed '1,/Ticking Away/d' /tmp/watchdog-test.out | tr -cd . | wc -c)
    [ "$n" -ge $((2 * WDT_TIMEOUT)) ] || { echo "$n keepalives in $((2 * WDT_TIMEOUT)) s"; cat /tmp/watchdog-test.out; return 1; }
    wdt_state_is active
}
check "pinged past 2 timeouts: keepalives succeeded, still active" pinged
step "magic close: SIGTERM makes watchdog-test write 'V' and close"
kill -TERM $PID
# wait in this shell: check runs its command in a subshell, which has no children.
wait $PID
RC=$?
check "watchdog-test exited 0 (status $RC)" test $RC -eq 0
check "magic close stopped the watchdog" wdt_state_is inactive
step "no reset after the magic close: wait 2 timeouts"
sleep $((2 * WDT_TIMEOUT))
check "still running 2 timeouts after the magic close" wdt_state_is inactive
