# tsu-unbind: unbind the TSU with its thermal zone enabled (devres then disables the
# zone: change_mode touches TSU_SM), bind it back, check the zone reads again.
plan 5
TSU=$(dev_by_compat $TSU_COMPAT)
zone_enabled() { [ "$(cat "$(tsu_zone)/mode")" = enabled ] || { echo "zone mode is $(cat "$(tsu_zone)/mode")"; return 1; }; }
check "zone enabled" zone_enabled
step "unbind tsu with the zone enabled"
check "unbind tsu" unbind $TSU_DRIVER "$TSU"
check "tsu unbound" unbound "$TSU"
step "bind tsu"
check "bind tsu" bind $TSU_DRIVER "$TSU"
check "zone temp reads ${RZGATE_TEMP_MC} m°C" zone_temp_is "$RZGATE_TEMP_MC" 500
