# watchdog-bite: start the watchdog (timeout 2 s, busybox watchdog pinging every 1 s),
# then SIGKILL the daemon: the file is released without the magic 'V', the kernel keeps
# the watchdog running ("watchdog did not stop!") and nobody pings it. The machine must
# reset within 10% of the timeout after the last ping: the guest announces it with
# `# rzgate-expect-reset <ms>` and the runner checks the plugin's watchdog_reset event
# (armed at the last ping, seen at the reset). Reaching the end of this script is an error.
plan 3
WDT_TIMEOUT=2
WDT=$(dev_by_compat $WDT_COMPAT)
check "wdt0 bound to rzg2l_wdt" bound "$WDT" rzg2l_wdt
step "start the watchdog daemon: timeout ${WDT_TIMEOUT} s, ping every 1 s"
check "daemon started, timeout ${WDT_TIMEOUT} s" wdt_daemon_start $WDT_TIMEOUT 1
sleep 3
check "pinged past its timeout: still active" wdt_state_is active
step "stop pinging: SIGKILL the daemon (no magic close)"
echo "# rzgate-expect-reset $((WDT_TIMEOUT * 1000))"
kill -KILL "$(wdt_daemon_pid)"
# Idle until the reset; every tick of the idle vCPU lets the plugin see the deadline.
sleep $((4 * WDT_TIMEOUT))
echo "# the machine was not reset $((4 * WDT_TIMEOUT)) s after the last ping"
