# i2c-bus-busy: the plugin arms riic-bus-busy, so RIIC0's ICCR2.BBSY never clears, from
# power-on, as when another master or a stuck target holds the bus. riic_bus_barrier
# (i2c-riic.c:147-166) polls BBSY, then tries bus recovery, which finds SDA high and reports
# success; riic_xfer then asks for a START the RIIC never issues (the bus is busy), and the
# message times out after the adapter's timeout (i2c-riic.c:198-200). So at boot at24's
# one-byte test read fails and its probe returns -ENODEV (at24.c:770-775): the EEPROM's
# client is there without a driver; a read through i2c-dev fails with ETIMEDOUT; the RIIC
# stays bound. That the fault fired is the runner's check. A restored cell re-probes at24
# with the fault armed first (below).
plan 4
RIIC=$(dev_by_compat $RIIC_COMPAT)

# The EEPROM's client exists, unbound: at24's probe failed.
at24_probe_failed() {
    n=$(riic_bus) || { echo "$n"; return 1; }
    c=/sys/bus/i2c/devices/$n-$EEPROM_ADDR
    [ -d "$c" ] || { echo "no i2c client $n-$EEPROM_ADDR"; return 1; }
    if drv=$(readlink "$c/driver" 2>/dev/null); then
        echo "$n-$EEPROM_ADDR is bound to ${drv##*/}"
        return 1
    fi
}

transfer_times_out() { i2c_read_fails_with "$1" "Connection timed out"; }

# Restored from the run's snapshot (booted without the fault), at24 probed fine there: unbind
# it (at24's remove makes no transfer) and bind it again, so its probe read meets the busy
# bus through the same i2c_device_probe path as at boot. Silent: the KTAP lines are a cold
# boot's.
if [ "$RZGATE_SNAPSHOT" = 1 ] && n=$(riic_bus); then
    echo "$n-$EEPROM_ADDR" >/sys/bus/i2c/drivers/at24/unbind 2>/dev/null
    echo "$n-$EEPROM_ADDR" >/sys/bus/i2c/drivers/at24/bind 2>/dev/null
fi

step "reads on a busy bus"
check "riic bound to i2c-riic" bound "$RIIC" i2c-riic
check "the EEPROM's client is unbound (at24's probe read failed)" at24_probe_failed
check "a read from the EEPROM's 0x50 through i2c-dev fails with ETIMEDOUT" transfer_times_out 0x50
check "riic still bound" bound "$RIIC" i2c-riic
