# adc-unbind-alone: the ADC unbound on its own, right after a conversion (runtime-active,
# autosuspend pending), as on the board before the TSU driver existed (the trace Renesas
# posted on 15 Jan 2025). The TSU, the ADC's only consumer, is unbound first with its
# thermal zone disabled, so its own unbind touches no register (change_mode returns when
# the zone is already disabled) and the ADC's is the one the cell is about. Then both are
# bound back and read.
plan 7
ADC=$(dev_by_compat $ADC_COMPAT)
TSU=$(dev_by_compat $TSU_COMPAT)
zone_disabled() { z=$(tsu_zone) || { echo "$z"; return 1; }; echo disabled >"$z/mode"; }
step "disable the thermal zone, unbind the tsu"
check "thermal zone disabled" zone_disabled
check "unbind tsu" unbind $TSU_DRIVER "$TSU"
step "read channel 0 (ADC runtime-active)"
check "in_voltage0_raw reads $(adc_expected 0)" adc_reads 0 "$(adc_expected 0)"
step "unbind adc while runtime-active"
check "unbind adc" unbind $ADC_DRIVER "$ADC"
step "bind adc and tsu"
check "bind adc" bind $ADC_DRIVER "$ADC"
check "bind tsu" bind_if_unbound $TSU_DRIVER "$TSU"
check "adc reads again" adc_reads 0 "$(adc_expected 0)"
