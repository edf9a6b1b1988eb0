# adc-unbind: unbind the ADC right after a conversion (runtime-active, autosuspend
# pending), bind it back, then once more from runtime-suspended. Unbinding the ADC
# unbinds the TSU first (device link: the TSU consumes ADC channel 8).
plan 9
ADC=$(dev_by_compat $ADC_COMPAT)
TSU=$(dev_by_compat $TSU_COMPAT)
step "read channel 0 (ADC runtime-active)"
check "in_voltage0_raw reads $(adc_expected 0)" adc_reads 0 "$(adc_expected 0)"
step "unbind adc while runtime-active"
check "unbind adc" unbind $ADC_DRIVER "$ADC"
both_unbound() { unbound "$ADC" && unbound "$TSU"; }
check "adc and tsu unbound" both_unbound
step "bind adc and tsu"
check "bind adc" bind $ADC_DRIVER "$ADC"
check "bind tsu" bind_if_unbound $TSU_DRIVER "$TSU"
check "adc reads again" adc_reads 0 "$(adc_expected 0)"
step "wait for adc autosuspend"
check "adc runtime-suspended" wait_runtime_status "$ADC" suspended
step "unbind adc while runtime-suspended"
check "unbind adc (suspended)" unbind $ADC_DRIVER "$ADC"
step "bind adc and tsu"
bind_both() { bind $ADC_DRIVER "$ADC" && bind_if_unbound $TSU_DRIVER "$TSU"; }
check "bind adc and tsu again" bind_both
