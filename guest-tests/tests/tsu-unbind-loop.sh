# tsu-unbind-loop: unbind/bind the TSU (zone enabled) rzgate.loops times.
plan 3
TSU=$(dev_by_compat $TSU_COMPAT)
loop() {
    i=1
    while [ $i -le "$RZGATE_LOOPS" ]; do
        step "unbind tsu ($i/$RZGATE_LOOPS)" >/dev/console
        unbind $TSU_DRIVER "$TSU" || return 1
        step "bind tsu ($i/$RZGATE_LOOPS)" >/dev/console
        bind $TSU_DRIVER "$TSU" || return 1
        i=$((i + 1))
    done
}
check "$RZGATE_LOOPS unbind/bind cycles" loop
check "zone temp reads ${RZGATE_TEMP_MC} m°C" zone_temp_is "$RZGATE_TEMP_MC" 500
dt_selftest
