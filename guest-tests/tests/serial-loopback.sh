# serial-loopback: SCIF3 under its real driver (sh-sci, RZ/G2L register layout) with a
# loopback plug on the host side (the `scif` model wires TX to RX): bound, its tty exists
# and is not a console; in raw mode 260 bytes written to the tty read back identical at
# 115200 and at 9600 baud, then the driver unbound and bound again, and the same once more.
# 260 bytes: every byte value, then 4 more. sci_transmit_chars fills the 16-byte transmit
# FIFO from the tx-empty interrupt (TDFE) 17 times; each burst of 16 reaches the receive
# FIFO's trigger (8, RDF: the rx-full interrupt), the last 4 stay below it and come in
# through the rx-ready interrupt (DR, the receive timeout). /proc/interrupts must count
# all three, and /proc/tty/driver/sci the port's bytes each way.
plan 11

SCIF=$(dev_by_compat $SCIF_COMPAT)
N=260

tty_exists() {
    t=$(scif_tty) || { echo "$t"; return 1; }
    [ -c "/dev/$t" ] || { echo "/dev/$t is not a character device"; return 1; }
}

tty_gone() {
    t=$(scif_tty 2>/dev/null) && { echo "$t still registered"; return 1; }
    return 0
}

not_a_console() {
    if grep -q '^ttySC' /proc/consoles; then
        echo "a ttySC port is a console: $(tr '\n' ' ' </proc/consoles)"
        return 1
    fi
}

scif_pattern $N >/tmp/scif-tx

# loopback BAUD: the pattern written to the tty in raw mode at BAUD reads back byte for
# byte within 5 s.
loopback() {
    scif_exchange "$1" /tmp/scif-tx /tmp/scif-rx || return 1
    n=$(wc -c </tmp/scif-rx)
    [ "$n" -eq $N ] || { echo "read $n of $N bytes back within 5 s: $(hexdump -v -e '/1 "%02x"' /tmp/scif-rx | cut -c1-80)"; return 1; }
    cmp /tmp/scif-tx /tmp/scif-rx >/tmp/scif-cmp 2>&1 || { echo "bytes differ: $(cat /tmp/scif-cmp)"; return 1; }
}

# The rx/tx/rx-ready interrupts each fired since the counts C_RX C_TX C_DR.
irqs_fired() {
    rx=$(irq_count "$SCIF:rx full")
    tx=$(irq_count "$SCIF:tx empty")
    dr=$(irq_count "$SCIF:rx ready")
    [ "$rx" -gt "$1" ] && [ "$tx" -gt "$2" ] && [ "$dr" -gt "$3" ] ||
        { echo "interrupts rx full $1 -> $rx, tx empty $2 -> $tx, rx ready $3 -> $dr"; return 1; }
}

# The serial core's counters for the port: at least $1 bytes each way.
port_counts_at_least() {
    tx=$(scif_port_field tx) || { echo "$tx"; return 1; }
    rx=$(scif_port_field rx) || { echo "$rx"; return 1; }
    [ "$tx" -ge "$1" ] && [ "$rx" -ge "$1" ] || { echo "port counts tx $tx rx $rx, expected at least $1"; return 1; }
}

scif_errors() {
    errs=$(dmesg -r | grep -E '^<[0-4]>' | grep -F -e "$SCIF" -e sh-sci -e ttySC || true)
    [ -z "$errs" ] || { echo "$errs"; return 1; }
}

check "scif3 bound to sh-sci" bound "$SCIF" sh-sci
check "its tty exists" tty_exists
check "the SCIF is not a console (console=ttyAMA0)" not_a_console
C_RX=$(irq_count "$SCIF:rx full")
C_TX=$(irq_count "$SCIF:tx empty")
C_DR=$(irq_count "$SCIF:rx ready")
step "raw mode at 115200, $N bytes out and back"
check "$N bytes loop back at 115200" loopback 115200
step "raw mode at 9600, $N bytes out and back"
check "$N bytes loop back at 9600" loopback 9600
check "rx full, tx empty and rx ready interrupts fired" irqs_fired "$C_RX" "$C_TX" "$C_DR"
check "the port counted $((2 * N)) bytes each way" port_counts_at_least $((2 * N))
# The SCIF's runtime PM is forbidden (power/control = on) across the unbind: on the
# pre-6.17 bus the PM-domain detach frees the device's genpd data while an idle request
# that uart_remove_one_port() queued for it may still be pending, and genpd_runtime_suspend
# then oopses on it (docs/findings.md, "An intermittent oops on prefix"): a race, in 2
# runs of about 21. The usage count held makes that rpm_idle() fail, so this test stays
# about the loopback across a rebind; the race is the findings' open item.
SCIF_PM=/sys/bus/platform/devices/$SCIF/power/control
scif_unbind() { echo on >"$SCIF_PM" && unbind $SCIF_DRIVER "$SCIF" && unbound "$SCIF" && tty_gone; }
scif_bind() { echo auto >"$SCIF_PM" && bind $SCIF_DRIVER "$SCIF" && bound "$SCIF" sh-sci && tty_exists; }
step "unbind sh-sci from $SCIF"
check "unbound, its tty gone" scif_unbind
step "bind sh-sci to $SCIF"
check "bound again, its tty back" scif_bind
step "raw mode at 115200 after the rebind, $N bytes out and back"
check "$N bytes loop back at 115200 after the rebind" loopback 115200
check "no warnings from sh-sci or the port" scif_errors
