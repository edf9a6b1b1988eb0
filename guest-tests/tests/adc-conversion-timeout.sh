# adc-conversion-timeout: the plugin arms adc-conversion-stuck, so a started conversion
# never completes (no data, no interrupt): rzg2l_adc_conversion waits its one jiffy and
# read_raw fails with -ETIMEDOUT (checked by its errno: the C library's text for
# ETIMEDOUT, as busybox cat reports it). The ADC stays bound and usable by its driver.
plan 2
ADC=$(dev_by_compat $ADC_COMPAT)
read_times_out() {
    dir=$(adc_iio_dir) || { echo "$dir"; return 1; }
    if out=$(cat "$dir/in_voltage0_raw" 2>&1); then
        echo "in_voltage0_raw returned $out"
        return 1
    fi
    case "$out" in
    *"Connection timed out"*) ;;
    *) echo "the read failed otherwise: $out"; return 1 ;;
    esac
}
step "read channel 0 (the conversion never completes)"
check "in_voltage0_raw fails with a timeout" read_times_out
check "adc still bound" bound "$ADC" rzg2l-adc
