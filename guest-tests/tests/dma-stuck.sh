# dma-stuck: the plugin arms dmac-transfer-stuck (a started DMAC transfer never runs nor
# ends: no copy, no END, no interrupt). dmatest's thread waits its timeout for the
# completion callback, counts the copy as failed (dmatest.c:846-857) and terminates the
# channel (dmaengine_terminate_sync: rz_dmac_terminate_all's CHCTRL_DEFAULT clears EN, so
# rz_dmac_device_synchronize's EN poll ends, rz-dmac.c:912). Checked: the client's result
# (one thread, every test failed), no channel interrupt, the driver still bound, and a
# second run fails the same way (the channel is usable again after the terminate).
plan 6
DMAC=$(dev_by_compat $DMAC_COMPAT)
ITER=2

all_failed() {
    set -- $(dmatest_summary)
    [ "$1" = 1 ] && [ "$2" = $ITER ] && [ "$3" = $ITER ] ||
        { echo "summaries: $1 threads, $2 tests, $3 failures (expected 1 thread, $ITER tests, $ITER failures): $(grep -e summary -e result /tmp/dmatest.log | head -5)"; return 1; }
}
stuck_run() { dmatest_run "$DMAC" 1 $ITER 4096 500 && all_failed; }
no_irqs() {
    now=$(dmac_irqs "$DMAC" 1)
    [ "$now" = "$1" ] || { echo "channel 0 interrupts $1 -> $now, expected none"; return 1; }
}

check "dmac bound to rz-dmac" bound "$DMAC" rz-dmac
I0=$(dmac_irqs "$DMAC" 1)
step "dmatest: 1 channel x $ITER copies that never complete (timeout 500 ms)"
check "dmatest reports every copy failed" stuck_run
check "no channel interrupt" no_irqs "$I0"
step "dmatest again after the terminate"
check "dmatest reports every copy failed again" stuck_run
check "rz-dmac still bound" bound "$DMAC" rz-dmac
dt_selftest
