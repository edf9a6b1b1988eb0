# adc-unbind-loop: unbind/bind the ADC (and its TSU consumer) rzgate.loops times.
plan 4
ADC=$(dev_by_compat $ADC_COMPAT)
TSU=$(dev_by_compat $TSU_COMPAT)
loop() {
    i=1
    while [ $i -le "$RZGATE_LOOPS" ]; do
        step "unbind adc ($i/$RZGATE_LOOPS)" >/dev/console
        unbind $ADC_DRIVER "$ADC" || return 1
        step "bind adc and tsu ($i/$RZGATE_LOOPS)" >/dev/console
        bind $ADC_DRIVER "$ADC" || return 1
        bind_if_unbound $TSU_DRIVER "$TSU" || return 1
        adc_reads 0 "$(adc_expected 0)" || return 1
        i=$((i + 1))
    done
}
check "$RZGATE_LOOPS unbind/bind cycles" loop
check "adc bound" bound "$ADC" rzg2l-adc
check "tsu bound" bound "$TSU" rzg3s-thermal
dt_selftest
