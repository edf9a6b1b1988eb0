# boot: the CPG, ADC and TSU drivers bound with no error, the clock tree has the
# rates RZ/G3S gives them (PLL1 1.1 GHz, TSU/ADC clock 100 MHz).
plan 7
CPG=$(dev_by_compat $CPG_COMPAT)
ADC=$(dev_by_compat $ADC_COMPAT)
TSU=$(dev_by_compat $TSU_COMPAT)
check "cpg bound to rzg2l-cpg" bound "$CPG" rzg2l-cpg
check "adc bound to rzg2l-adc" bound "$ADC" rzg2l-adc
check "tsu bound to rzg3s-thermal" bound "$TSU" rzg3s-thermal
check "no errors from the drivers in dmesg" no_driver_errors
clk_rate_is() { # clock expected-Hz
    r=$(cat "/sys/kernel/debug/clk/$1/clk_rate" 2>&1) || { echo "no clock $1: $r"; return 1; }
    [ "$r" = "$2" ] || { echo "$1 runs at $r Hz, expected $2"; return 1; }
}
check "pll1 at 1.1 GHz" clk_rate_is .pll1 1100000000
check "adc pclk at 100 MHz" clk_rate_is adc_pclk 100000000
dt_selftest
