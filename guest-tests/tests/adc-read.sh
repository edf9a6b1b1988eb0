# adc-read: every voltage channel returns the value the host set (plugin adc=).
plan 8
for ch in 0 1 2 3 4 5 6 7; do
    check "in_voltage${ch}_raw reads $(adc_expected $ch)" adc_reads $ch "$(adc_expected $ch)"
done
