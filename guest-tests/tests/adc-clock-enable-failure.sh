# adc-clock-enable-failure: the plugin arms cpg-clkmon-stuck-adc, so CLK_MON 0x728 never
# confirms the ADC clocks: the CPG driver reports "Failed to enable CLK_ON" and pm_clk
# reports the failed enable. pm_clk_resume() does not propagate the error, so genpd goes
# on to the ADC's runtime_resume, which touches ADM0 with pclk stopped
# (docs/findings.md): what the driver does after that depends on the bus-error value it
# reads, so only the reports are checked here; the aborts are the plugin's to show. The
# test ends once the ADC has runtime-suspended: its suspend callback touches ADM0 too, and
# a test that powered off before the autosuspend timer would leave that abort to chance
# (and `validate` would see it come and go between two runs of the same kernel).
plan 3
clk_failure_reported() { dmesg | grep -q "Failed to enable CLK_ON 0x5a8" || { echo "no 'Failed to enable CLK_ON 0x5a8' in dmesg"; return 1; }; }
pm_clk_failure_reported() { dmesg | grep -q "__pm_clk_enable: failed to enable clk" || { echo "no '__pm_clk_enable: failed to enable clk' in dmesg"; return 1; }; }
check "the CPG reports the ADC clock that did not start" clk_failure_reported
check "pm_clk reports the failed enable" pm_clk_failure_reported
ADC=$(dev_by_compat $ADC_COMPAT)
check "the adc runtime-suspends" wait_runtime_status "$ADC" suspended
