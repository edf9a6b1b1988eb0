# soc-id: the RZ/G3S system controller under its real driver (drivers/soc/renesas/rz-sysc.c
# with r9a08g045-sysc.c): bound; the soc_device its probe registers shows the family the
# driver sets ("RZ/G3S", r9a08g045-sysc.c:33), the soc_id it derives from its compatible
# ("r9a08g045", rz-sysc.c:41-46) and the revision it reads from the device ID register
# (DEVID[31:28], rz-sysc.c:60-63; the model's SYS_LSI_DEVID has revision 0); the syscon
# regmap it registers for other drivers (rz-sysc.c:139-152) reads the model's registers
# (regmap debugfs: SYS_USB_PWRRDY 0, power ready: the USB PHY control, bound at boot, wrote
# it through this regmap, reset-rzg2l-usbphy-ctrl.c:134-143, :182). The driver cannot be unbound:
# suppress_bind_attrs (rz-sysc.c:158) removes the bind/unbind files, so nothing here
# unbinds it and platform-sweep skips it with a KTAP SKIP.
plan 8
SYSC=$(dev_by_compat $SYSC_COMPAT)
check "sysc bound to renesas-rz-sysc" bound "$SYSC" renesas-rz-sysc
no_unbind_file() {
    [ -d "$SYSC_DRIVER" ] || { echo "no driver directory $SYSC_DRIVER"; return 1; }
    [ ! -e "$SYSC_DRIVER/unbind" ] && [ ! -e "$SYSC_DRIVER/bind" ] || { echo "$SYSC_DRIVER has bind/unbind files"; return 1; }
}
check "renesas-rz-sysc cannot be unbound from sysfs (suppress_bind_attrs: no bind/unbind files)" no_unbind_file
# renesas-soc.c's early soc_device needs a Renesas root compatible (of_machine_get_match),
# which virt's tree does not have: the SYSC's is the only one, soc0.
one_soc_device() {
    n=0
    for s in /sys/bus/soc/devices/*; do [ -e "$s" ] && n=$((n + 1)); done
    [ $n = 1 ] && [ -e /sys/bus/soc/devices/soc0 ] || { echo "soc devices: $(ls /sys/bus/soc/devices 2>&1 | tr '\n' ' ')"; return 1; }
}
check "one soc device, soc0" one_soc_device
attr_is() { # attribute expected
    v=$(cat "/sys/devices/soc0/$1" 2>&1) || { echo "no /sys/devices/soc0/$1: $v"; return 1; }
    [ "$v" = "$2" ] || { echo "soc0 $1 is '$v', expected '$2'"; return 1; }
}
check "soc0 family is $SYSC_FAMILY" attr_is family "$SYSC_FAMILY"
check "soc0 soc_id is $SYSC_SOC_ID" attr_is soc_id "$SYSC_SOC_ID"
check "soc0 revision is $SYSC_REVISION" attr_is revision "$SYSC_REVISION"
# regmap debugfs names the map "<device>-<config name>" (rz_sysc_regs, rz-sysc.c:139) and
# prints each readable register as "<offset>: <value>" (offset width from max_register 0xe20).
SYSC_REGMAP=/sys/kernel/debug/regmap/$SYSC-rz_sysc_regs
regmap_reads() { # offset expected-value
    [ -d "$SYSC_REGMAP" ] || { echo "no $SYSC_REGMAP: $(ls /sys/kernel/debug/regmap 2>&1 | tr '\n' ' ')"; return 1; }
    line=$(grep "^$1:" "$SYSC_REGMAP/registers") || { echo "no register $1 in the regmap"; return 1; }
    [ "${line#*: }" = "$2" ] || { echo "regmap $line, expected $2"; return 1; }
}
step "read the SYSC regmap through debugfs"
check "the syscon regmap reads SYS_USB_PWRRDY (0xd70) = 0, as usbphy-ctrl set it" regmap_reads d70 00000000
# The device ID register is outside the regmap's readable table (r9a08g045-sysc.c:40-76):
# only the probe's readl sees it.
not_in_regmap() { ! grep -q "^$1:" "$SYSC_REGMAP/registers" || { echo "regmap lists $1"; return 1; }; }
check "the regmap does not expose the device ID (0xa04)" not_in_regmap a04
