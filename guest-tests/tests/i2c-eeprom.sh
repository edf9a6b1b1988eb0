# i2c-eeprom: RIIC0 bound to i2c-riic and the AT24 EEPROM behind it to at24; the EEPROM's
# nvmem file reads what the host put in it (socs/r9a08g045.yaml, i2c0 i2c_targets: the
# text below, then 0xff); bytes written through nvmem read back, across a page boundary;
# an absent address NACKs (ENXIO from the adapter); i2cdetect finds the EEPROM (UU: in use
# by at24) and nothing else; the RIIC unbound and bound again still reads the EEPROM.
# Everything goes through the real drivers: at24's regmap-i2c transfers, i2c-dev.
plan 10

# socs/r9a08g045.yaml devices.i2c0.i2c_targets[0]: contents (printf format), size, fill.
EEPROM_TEXT='rzgate RZ/G3S RIIC0 AT24 EEPROM @0x50\n'
EEPROM_SIZE=256
RIIC_DRIVER=/sys/bus/platform/drivers/i2c-riic

RIIC=$(dev_by_compat $RIIC_COMPAT)

at24_bound() {
    n=$(riic_bus) || { echo "$n"; return 1; }
    c=/sys/bus/i2c/devices/$n-$EEPROM_ADDR
    [ -d "$c" ] || { echo "no i2c client $n-$EEPROM_ADDR"; return 1; }
    drv=$(readlink "$c/driver" 2>/dev/null) || { echo "$n-$EEPROM_ADDR is not bound"; return 1; }
    [ "${drv##*/}" = at24 ] || { echo "$n-$EEPROM_ADDR is bound to ${drv##*/}, not at24"; return 1; }
}

# The EEPROM's nvmem file (at24 registers one nvmem device under its client).
nvmem_file() {
    n=$(riic_bus) || { echo "$n"; return 1; }
    for f in /sys/bus/i2c/devices/$n-$EEPROM_ADDR/*/nvmem; do
        [ -f "$f" ] && { echo "$f"; return 0; }
    done
    echo "no nvmem file under i2c client $n-$EEPROM_ADDR"
    return 1
}

hex_of() { hexdump -v -e '/1 "%02x"'; }

# The host-set contents as hex: the text, then 0xff up to the size.
expected_hex() {
    text=$(printf "$EEPROM_TEXT" | hex_of)
    n=$((${#text} / 2))
    while [ $n -lt $EEPROM_SIZE ]; do
        text="${text}ff"
        n=$((n + 1))
    done
    echo "$text"
}

# nvmem_is HEX: the whole EEPROM reads HEX.
nvmem_is() {
    f=$(nvmem_file) || { echo "$f"; return 1; }
    got=$(hex_of <"$f" 2>/tmp/rzgate-nvmem.err) || { echo "reading $f failed: $(cat /tmp/rzgate-nvmem.err)"; return 1; }
    [ -s /tmp/rzgate-nvmem.err ] && { echo "reading $f: $(cat /tmp/rzgate-nvmem.err)"; return 1; }
    [ "$got" = "$1" ] || { echo "$f reads $got, expected $1"; return 1; }
}

# The expected hex after writing TEXT at OFFSET into HEX.
patched_hex() { # hex offset text
    new=$(printf '%s' "$3" | hex_of)
    head=$(echo "$1" | cut -c1-$(($2 * 2)))
    tail=$(echo "$1" | cut -c$(($2 * 2 + ${#new} + 1))-)
    echo "$head$new$tail"
}

write_reads_back() { # offset text
    f=$(nvmem_file) || { echo "$f"; return 1; }
    before=$(hex_of <"$f") || { echo "reading $f failed"; return 1; }
    # One write(2) of the whole text at the byte offset, so at24 splits it at its pages.
    printf '%s' "$2" >/tmp/rzgate-eeprom-data
    dd if=/tmp/rzgate-eeprom-data of="$f" bs=${#2} seek="$1" oflag=seek_bytes count=1 conv=notrunc 2>/tmp/rzgate-dd.err >/dev/null ||
        { echo "writing ${#2} bytes at $1 of $f failed: $(cat /tmp/rzgate-dd.err)"; return 1; }
    nvmem_is "$(patched_hex "$before" "$1" "$2")"
}

# An absent address: a one-byte read through i2c-dev fails with ENXIO (the RIIC saw the
# NACK: riic_tend_isr sets -ENXIO).
absent_nacks() { i2c_read_fails_with "$1" "No such device or address"; }

# i2cdetect: the EEPROM's address is UU (at24 holds it), every other one answers nothing.
only_eeprom_detected() {
    n=$(riic_bus) || { echo "$n"; return 1; }
    out=$(i2cdetect -y "$n" 2>&1) || { echo "i2cdetect failed: $out"; return 1; }
    found=$(echo "$out" | grep -E '^[0-7]0:' | while read -r row cells; do
        # Row 00 starts at 0x03 (0x00-0x02 are reserved and printed blank).
        col=0
        [ "$row" = "00:" ] && col=3
        for c in $cells; do
            [ "$c" = "--" ] || echo "${row%0:}$(printf %x $col)=$c"
            col=$((col + 1))
        done
    done | tr '\n' ' ')
    [ "$found" = "50=UU " ] || { echo "i2cdetect found: ${found:-nothing} (expected 50=UU only): $out"; return 1; }
}

# Warnings or worse (printk levels 0-4) from the RIIC, its adapter, the EEPROM client or
# their drivers: who logged and at what level, not the words. One is the regulator core's,
# not theirs: the EEPROM node (rzgate's own, the board has none) names no vcc-supply, so
# regulator_get() on it warns that it uses the dummy regulator, as on any board whose
# at24 node has no supply (drivers/regulator/core.c:2458, _regulator_get_common).
no_i2c_errors() {
    errs=$(dmesg -r | grep -E '^<[0-4]>' | grep -F -e "$RIIC" -e i2c-riic -e at24 -e 'i2c i2c-' -e i2c_dev |
        grep -v -F 'using dummy regulator')
    [ -z "$errs" ] || { echo "$errs"; return 1; }
}

step "riic and at24 bound"
check "riic bound to i2c-riic" bound "$RIIC" i2c-riic
check "eeprom bound to at24" at24_bound
step "nvmem read of the whole EEPROM"
EXPECTED=$(expected_hex)
check "nvmem reads the host-set contents" nvmem_is "$EXPECTED"
step "nvmem write and read back"
check "4 bytes written at 0x40 read back" write_reads_back 64 RIIC
check "12 bytes across the 0x80 page boundary read back" write_reads_back 124 "hello, riic!"
step "absent addresses"
check "a read from absent 0x51 is NACKed (ENXIO)" absent_nacks 0x51
check "i2cdetect finds only the EEPROM (UU at 0x50)" only_eeprom_detected
step "unbind $RIIC"
UNBIND=$(unbind $RIIC_DRIVER "$RIIC" && unbound "$RIIC")
step "bind $RIIC"
rebound() {
    [ -z "$UNBIND" ] || { echo "$UNBIND"; return 1; }
    bind $RIIC_DRIVER "$RIIC" && bound "$RIIC" i2c-riic && at24_bound
}
check "riic unbound and bound again, the eeprom with it" rebound
step "nvmem read after the rebind"
check "the EEPROM kept the written bytes across the rebind" nvmem_is "$(patched_hex "$(patched_hex "$EXPECTED" 64 RIIC)" 124 "hello, riic!")"
check "no warnings or errors from i2c-riic, at24 or the i2c core" no_i2c_errors
