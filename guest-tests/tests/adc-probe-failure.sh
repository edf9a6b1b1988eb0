# adc-probe-failure: the plugin arms adc-sresb-stuck (ADM0.SRESB never latches), so
# rzg2l_adc_hw_init fails after devm_pm_runtime_enable: probe fails at boot with
# "failed to initialize ADC HW". The devres of the failed probe is released by the
# driver core; where that happens after the PM domain detach, it touches a gated ADC.
plan 5
ADC=$(dev_by_compat $ADC_COMPAT)
# The TSU defers forever without its ADC channel: both stay unbound on purpose.
DT_EXPECT_UNBOUND="$(dt_node_of "$ADC") $(dt_node_of "$(dev_by_compat $TSU_COMPAT)")"
check "adc not bound" unbound "$ADC"
check "probe failed as the driver reports it" sh -c "dmesg | grep -q 'failed to initialize ADC HW'"
step "bind adc again (probe fails again)"
bind_fails() { if echo "$ADC" >"$ADC_DRIVER/bind" 2>/dev/null; then echo "bind succeeded"; return 1; fi; }
check "bind adc fails" bind_fails
check "adc still not bound" unbound "$ADC"
dt_selftest
