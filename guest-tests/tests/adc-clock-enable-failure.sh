# adc-clock-enable-failure: the plugin arms cpg-clkmon-stuck-adc, so CLK_MON 0x728 never
# confirms the ADC clocks: the CPG driver's enable of the ADC's module clock fails (an
# error logged for the CPG device) and pm_clk logs the failed enable for the ADC device.
# pm_clk_resume() does not propagate the error, so genpd goes on to the ADC's
# runtime_resume, which touches ADM0 with pclk stopped (docs/findings.md): what the driver
# does after that depends on the bus-error value it reads, so only who reported an error
# is checked here (not the wording: a patch that rewords a message observes the same);
# that the fault fired is the runner's check, the aborts are the plugin's to show. The
# test ends once the ADC has runtime-suspended: its suspend callback touches ADM0 too, and
# a test that powered off before the autosuspend timer would leave that abort to chance
# (and `validate` would see it come and go between two runs of the same kernel).
# Restored from the run's snapshot: unbind the ADC and probe it again, now with the
# fault armed (lib.sh).
reprobe_adc_after_restore
plan 3
CPG=$(dev_by_compat $CPG_COMPAT)
ADC=$(dev_by_compat $ADC_COMPAT)
check "the CPG logs an error (the ADC clock did not start)" logged_error "$CPG"
check "an error is logged for the adc (pm_clk's failed enable)" logged_error "$ADC"
check "the adc runtime-suspends" wait_runtime_status "$ADC" suspended
