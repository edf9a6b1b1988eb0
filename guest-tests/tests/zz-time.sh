t() { read up _ </proc/uptime; echo "# T $up $*"; }
plan 1
dt_selftest_copy
t start
i=0; while [ $i -lt 100 ]; do x=$(echo a); i=$((i+1)); done; t "100 subshells"
i=0; while [ $i -lt 100 ]; do /bin/busybox true; i=$((i+1)); done; t "100 exec true"
(cd /tmp/selftests/dt && sh ./test_unprobed_devices.sh >/dev/null 2>&1); t selftest
(cd /tmp/selftests/dt && sh ./test_unprobed_devices.sh >/dev/null 2>&1); t selftest
check x true
