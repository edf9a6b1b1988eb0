# user-space-access: the plugin sees window accesses made from user space (EL0), not only
# the kernel's. With the ADC unbound (clocks gated, reset asserted), a devmem read of ADM0
# through /dev/mem is an abort with a user-space pc and reads the bus-error value.
plan 6
ADC=$(dev_by_compat $ADC_COMPAT)
TSU=$(dev_by_compat $TSU_COMPAT)
# ADC SoC 0x10058000 in the window (docs/contracts.md "Address map"); ADM0 is at offset 0.
ADC_ADM0=0x7d058000
step "unbind adc (the tsu follows through its device link)"
check "unbind adc" unbind $ADC_DRIVER "$ADC"
both_unbound() { unbound "$ADC" && unbound "$TSU"; }
check "adc and tsu unbound" both_unbound
adm0_reads_bus_error() {
    got=$(devmem $ADC_ADM0 32 2>&1) || { echo "devmem $ADC_ADM0 32 failed: $got"; return 1; }
    [ $((got)) -eq $((RZGATE_BUS_ERROR)) ] || { echo "ADM0 read $got from user space, expected the bus-error value $RZGATE_BUS_ERROR"; return 1; }
}
step "read ADM0 of the gated adc from user space (devmem)"
check "user-space ADM0 read returns the bus-error value" adm0_reads_bus_error
step "bind adc and tsu"
check "bind adc" bind $ADC_DRIVER "$ADC"
check "bind tsu" bind_if_unbound $TSU_DRIVER "$TSU"
check "adc reads again" adc_reads 0 "$(adc_expected 0)"
