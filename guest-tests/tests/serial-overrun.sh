# serial-overrun: fault scif-rx-overrun makes SCIF3's receiver lose the 20th byte that
# reaches it and report an overrun (SCLSR.ORER). sh-sci takes it on the bri line
# (sci_br_interrupt -> sci_handle_fifo_overrun: ORER cleared, icount.overrun++, a
# TTY_OVERRUN mark, a NUL flagged as overrun; the handler then reads SCFRDR once, "drop
# invalid character", which takes a byte if one is waiting). In raw mode n_tty is "real raw"
# (n_tty.c:1836-1839: IGNBRK or !BRKINT, !INPCK, and the serial core's TTY_DRIVER_REAL_RAW)
# and passes the mark on as the NUL it is, without a warning. Checked: the first 19 bytes
# intact, byte 20 (0x13) missing, the mark as a second NUL (the pattern's own is
# byte 0), at most one more byte lost; the port's overrun count is 1 (`oe:1` in
# /proc/tty/driver/sci).
plan 3

SCIF=$(dev_by_compat $SCIF_COMPAT)
N=64

scif_pattern $N >/tmp/scif-tx

hex_lines() { hexdump -v -e '/1 "%02x\n"' "$1"; }

lost_to_overrun() {
    n=$(wc -c </tmp/scif-rx)
    [ "$n" -ge $((N - 1)) ] && [ "$n" -le $N ] || { echo "read $n of $N bytes back (expected $N: 63 and the mark, or $((N - 1)) when the handler's SCFRDR read took one)"; return 1; }
    head -c 19 /tmp/scif-tx >/tmp/scif-tx19
    head -c 19 /tmp/scif-rx >/tmp/scif-rx19
    cmp /tmp/scif-tx19 /tmp/scif-rx19 >/tmp/scif-cmp 2>&1 || { echo "the first 19 bytes differ: $(cat /tmp/scif-cmp)"; return 1; }
    [ "$(hex_lines /tmp/scif-rx | grep -cx 13)" = 0 ] || { echo "byte 20 (0x13) came back"; return 1; }
    nul=$(hex_lines /tmp/scif-rx | grep -cx 00)
    [ "$nul" = 2 ] || { echo "$nul NUL bytes back, expected 2 (byte 0 and the overrun mark)"; return 1; }
}

overruns_are() {
    oe=$(scif_port_field oe) || { echo "$oe"; return 1; }
    [ "$oe" = "$1" ] || { echo "oe:$oe in /proc/tty/driver/sci, expected $1"; return 1; }
}

check "scif3 bound to sh-sci" bound "$SCIF" sh-sci
step "raw mode at 115200, $N bytes out, the 20th lost to an overrun"
exchange_lossy() { scif_exchange 115200 /tmp/scif-tx /tmp/scif-rx && lost_to_overrun; }
check "byte 20 lost, an overrun mark (NUL) in the stream, the first 19 intact" exchange_lossy
check "the port counted one overrun" overruns_are 1
