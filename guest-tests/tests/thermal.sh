# thermal: the zone reads the host-set temperature (within 0.5 °C); disabling and
# re-enabling the zone (TSU change_mode) works.
plan 4
Z=$(tsu_zone)
check "zone temp reads ${RZGATE_TEMP_MC} m°C" zone_temp_is "$RZGATE_TEMP_MC" 500
step "disable the thermal zone"
set_mode() { echo "$1" >"$Z/mode" && [ "$(cat "$Z/mode")" = "$1" ]; }
check "zone mode disabled" set_mode disabled
step "enable the thermal zone"
check "zone mode enabled" set_mode enabled
check "zone temp still reads ${RZGATE_TEMP_MC} m°C" zone_temp_is "$RZGATE_TEMP_MC" 500
