# dma-memcpy: the DMA controller under its real driver (rz-dmac) and the kernel's own
# memcpy client, dmatest: on 2 channels, one thread each, verified copies (noverify 0:
# dmatest checks every source and destination byte) at 4 KiB and 64 KiB buffers with
# dmatest's random offsets and lengths. The client's result is its summary line per thread
# ("N tests, F failures", dmatest.c:935): every thread ran its iterations, none failed. The
# channels' interrupts (rz_dmac_irq_handler: the end of each transfer) were counted. Then
# rz-dmac unbound and bound again (its remove unregisters the engine, rz-dmac.c:1533-1542)
# and the same once more: the channels come back and copy.
plan 10
DMAC=$(dev_by_compat $DMAC_COMPAT)
CH=2
ITER=30

# runs_clean ITERATIONS: the last run's summaries: CH threads, CH * ITERATIONS tests, 0 failures.
runs_clean() {
    set -- "$1" $(dmatest_summary)
    [ "$2" = $CH ] && [ "$3" = $((CH * $1)) ] && [ "$4" = 0 ] ||
        { echo "summaries: $2 threads, $3 tests, $4 failures (expected $CH threads, $((CH * $1)) tests, 0 failures): $(grep -e summary -e result /tmp/dmatest.log | head -5)"; return 1; }
}
memcpy_run() { # iterations buf_size
    dmatest_run "$DMAC" $CH "$1" "$2" 3000 && runs_clean "$1"
}
irqs_rose() {
    now=$(dmac_irqs "$DMAC" $CH)
    [ "$now" -ge $(($1 + $2)) ] || { echo "channel interrupts $1 -> $now, expected at least $2 more"; return 1; }
}
dmac_errors() {
    errs=$(dmesg -r | grep -E '^<[0-4]>' | grep -F -e "$DMAC" -e rz-dmac -e dmatest || true)
    [ -z "$errs" ] || { echo "$errs"; return 1; }
}
dma_unbind() { unbind $DMAC_DRIVER "$DMAC" && unbound "$DMAC"; }
dma_bind() { bind $DMAC_DRIVER "$DMAC" && bound "$DMAC" rz-dmac; }

check "dmac bound to rz-dmac" bound "$DMAC" rz-dmac
I0=$(dmac_irqs "$DMAC" $CH)
step "dmatest: $CH channels x $ITER verified copies, 4 KiB buffer"
check "dmatest 4 KiB: every copy verified" memcpy_run $ITER 4096
step "dmatest: $CH channels x $ITER verified copies, 64 KiB buffer"
check "dmatest 64 KiB: every copy verified" memcpy_run $ITER 65536
check "the channel interrupts counted every copy" irqs_rose "$I0" $((2 * CH * ITER))
step "unbind rz-dmac from $DMAC"
check "unbound" dma_unbind
step "bind rz-dmac to $DMAC"
check "bound again" dma_bind
I1=$(dmac_irqs "$DMAC" $CH)
step "dmatest after the rebind: $CH channels x $ITER verified copies, 16 KiB buffer"
check "dmatest after the rebind: every copy verified" memcpy_run $ITER 16384
check "the channel interrupts counted every copy after the rebind" irqs_rose "$I1" $((CH * ITER))
check "no warnings from rz-dmac or dmatest" dmac_errors
dt_selftest
