# adc-probe-failure: the plugin arms adc-sresb-stuck (ADM0.SRESB never latches), so
# rzg2l_adc_hw_init's poll of SRESB times out after devm_pm_runtime_enable: the probe
# fails with -ETIMEDOUT at boot and again on a bind through sysfs. The devres of the
# failed probe is released by the driver core; where that happens after the PM domain
# detach, it touches a gated ADC. Checked: the device state and the errno, not the
# driver's message (a patch that rewords it observes the same).
# Restored from the run's snapshot: unbind the ADC and probe it again, now with the
# fault armed (lib.sh).
reprobe_adc_after_restore
plan 5
ADC=$(dev_by_compat $ADC_COMPAT)
# The TSU defers forever without its ADC channel: both stay unbound on purpose.
DT_EXPECT_UNBOUND="$(dt_node_of "$ADC") $(dt_node_of "$(dev_by_compat $TSU_COMPAT)")"
check "adc not bound" unbound "$ADC"
# A failed probe, not a deferred one: the driver core lists deferred devices here.
not_deferred() {
    ! grep -q "^$ADC" /sys/kernel/debug/devices_deferred 2>/dev/null || { echo "$ADC is waiting for a deferred probe"; return 1; }
}
check "adc probe failed (not deferred)" not_deferred
step "bind adc again (probe fails again)"
# ETIMEDOUT: the C library's text for it.
check "bind adc fails with ETIMEDOUT" write_fails_with "Connection timed out" "$ADC_DRIVER/bind" "$ADC"
check "adc still not bound" unbound "$ADC"
dt_selftest
