# usb-gadget: USB as on the RZ/G3S SMARC board. The USB PHY control (rzg2l_usbphy_ctrl)
# with the VBUS regulator it registers, the USB2 PHY (phy_rcar_gen3_usb2) and the
# high-speed function controller (renesas_usbhs) bound, the controller's UDC registered
# (mod_gadget.c:1162, named after the controller's device). A configfs gadget with the
# SourceSink function (f_sourcesink.c; no networking) binds to that UDC and unbinds
# (configfs.c gadget_dev_desc_UDC_store). Then renesas_usbhs is unbound with the gadget
# bound: the UDC goes away (usb_del_gadget_udc, mod_gadget.c:1181) and the gadget with it;
# bound again, the gadget bus binds the still-registered gadget to the UDC of its name
# again. Then the USB2 PHY is unbound (its consumer usbhs goes with it, device link) and
# bound, usbhs comes back and the gadget binds again. No cable is attached (no VBUS), so
# the UDC reports "not attached" throughout, and the VBUS regulator follows the PHY's
# power: phy_power_on enables vbus-supply, phy_power_off disables it
# (phy-rcar-gen3-usb2.c:769-773, 862-863).
plan 25
PHYRST=$(dev_by_compat $USBPHYCTRL_COMPAT)
USBHS=$(dev_by_compat $USBHS_COMPAT)
# usbhs's PHY (usb2_phy0; usb2_phy1, the other PHY with the same compatible, has no user
# here): the usb-phy device among usbhs's device-link suppliers (hsusb's `phys`).
PHY=$(for l in /sys/bus/platform/devices/$USBHS/supplier:platform:*.usb-phy; do
    [ -e "$l" ] && echo "${l##*/supplier:platform:}" && break
done)
[ -n "$PHY" ] || PHY="no usb-phy supplier of $USBHS"
UDC=/sys/class/udc/$USBHS
G=/sys/kernel/config/usb_gadget/g1

# The regulator device of the usbphy-ctrl's `regulator-vbus` (regulator-name "vbus").
vbus_state_is() { # enabled|disabled
    for r in /sys/class/regulator/regulator.*; do
        [ "$(cat "$r/name" 2>/dev/null)" = vbus ] || continue
        st=$(cat "$r/state" 2>&1)
        [ "$st" = "$1" ] || { echo "vbus regulator is $st, expected $1"; return 1; }
        return 0
    done
    echo "no regulator named vbus"
    return 1
}
udc_present() { [ -d "$UDC" ] || { echo "no UDC $UDC: $(ls /sys/class/udc 2>&1)"; return 1; }; }
udc_absent() { [ ! -e "$UDC" ] || { echo "UDC $UDC still registered"; return 1; }; }
# gadget_bound: the UDC's function is the gadget's (configfs names it after the gadget
# directory, configfs.c:2043), the gadget's UDC attribute names the UDC, no cable.
gadget_bound() {
    udc_present || return 1
    f=$(cat "$UDC/function" 2>&1)
    [ "$f" = g1 ] || { echo "UDC function is '$f', expected g1"; return 1; }
    u=$(cat "$G/UDC" 2>&1)
    [ "$u" = "$USBHS" ] || { echo "gadget UDC is '$u', expected $USBHS"; return 1; }
    st=$(cat "$UDC/state" 2>&1)
    [ "$st" = "not attached" ] || { echo "UDC state is '$st', expected not attached (no VBUS)"; return 1; }
}
gadget_unbound() {
    u=$(cat "$G/UDC" 2>&1)
    [ -z "$u" ] || { echo "gadget UDC is '$u', expected none"; return 1; }
    if [ -d "$UDC" ]; then
        f=$(cat "$UDC/function" 2>&1)
        [ -z "$f" ] || { echo "UDC function is '$f', expected none"; return 1; }
    fi
}
gadget_make() {
    grep -q " /sys/kernel/config " /proc/mounts || mount -t configfs configfs /sys/kernel/config || return 1
    mkdir -p "$G/strings/0x409" "$G/configs/c.1/strings/0x409" "$G/functions/SourceSink.0" || return 1
    echo 0x1d6b >"$G/idVendor" && echo 0x0104 >"$G/idProduct" &&
        echo rzgate >"$G/strings/0x409/manufacturer" && echo usb-gadget >"$G/strings/0x409/product" &&
        echo sourcesink >"$G/configs/c.1/strings/0x409/configuration" || return 1
    [ -e "$G/configs/c.1/SourceSink.0" ] || ln -s "$G/functions/SourceSink.0" "$G/configs/c.1/" || return 1
}
gadget_bind() { echo "$USBHS" >"$G/UDC" 2>&1 || { echo "writing $USBHS to $G/UDC failed"; return 1; }; }
gadget_unbind() { echo "" >"$G/UDC" 2>&1 || { echo "clearing $G/UDC failed"; return 1; }; }
usb_errors() {
    errs=$(dmesg -r | grep -E '^<[0-4]>' | grep -F -e "$PHYRST" -e "$PHY" -e "$USBHS" -e rzg2l-usb-vbus-regulator -e renesas_usbhs -e phy_rcar_gen3_usb2 || true)
    [ -z "$errs" ] || { echo "$errs"; return 1; }
}

bind_g1() { gadget_bind && gadget_bound; }
unbind_g1() { gadget_unbind && gadget_unbound; }
usbhs_unbind() { unbind $USBHS_DRIVER "$USBHS" && unbound "$USBHS" && udc_absent; }
usbhs_bind() { bind $USBHS_DRIVER "$USBHS" && bound "$USBHS" renesas_usbhs && udc_present; }
phy_unbind() { unbind $USB2PHY_DRIVER "$PHY" && unbound "$PHY"; }
# g1's driver stays registered with its UDC name (configfs keeps udc_name until it is
# cleared) and the gadget bus binds it when a UDC of that name appears (udc/core.c).
g1_waits() {
    udc_absent || return 1
    u=$(cat "$G/UDC" 2>&1)
    [ "$u" = "$USBHS" ] || { echo "gadget UDC is '$u', expected $USBHS"; return 1; }
}
# Unbinding the PHY unbinds its consumers first (device links from hsusb's `phys`).
phy_unbind_with_usbhs() { phy_unbind && unbound "$USBHS" && udc_absent; }
usbhs_rebind() { bind_if_unbound $USBHS_DRIVER "$USBHS" && bound "$USBHS" renesas_usbhs && udc_present; }
phy_bind() { bind $USB2PHY_DRIVER "$PHY" && bound "$PHY" phy_rcar_gen3_usb2; }

check "usbphy-ctrl bound to rzg2l_usbphy_ctrl" bound "$PHYRST" rzg2l_usbphy_ctrl
check "its VBUS regulator bound" bound rzg2l-usb-vbus-regulator rzg2l-usb-vbus-regulator
check "usb2 phy bound to phy_rcar_gen3_usb2" bound "$PHY" phy_rcar_gen3_usb2
check "usbhs bound to renesas_usbhs" bound "$USBHS" renesas_usbhs
check "UDC $USBHS registered" udc_present
check "VBUS on: usbhs powered the PHY on" vbus_state_is enabled
step "configfs gadget g1 with SourceSink"
check "gadget g1 made" gadget_make
step "bind g1 to UDC $USBHS"
check "g1 bound to the UDC, not attached" bind_g1
check "binding it again is EBUSY" write_fails_with "Device or resource busy" "$G/UDC" "$USBHS"
step "unbind g1"
check "g1 unbound" unbind_g1
step "bind g1 again, then unbind renesas_usbhs with g1 bound"
check "g1 bound again" bind_g1
check "usbhs unbound: the UDC is gone" usbhs_unbind
check "VBUS off: the PHY powered off" vbus_state_is disabled
check "g1 waits for its UDC: the function is unbound, g1 still names $USBHS" g1_waits
step "bind renesas_usbhs"
check "usbhs bound again: the UDC is back" usbhs_bind
check "g1 bound to it again" gadget_bound
step "unbind g1, then unbind the USB2 PHY (usbhs goes with it)"
check "g1 unbound" unbind_g1
check "phy unbound, usbhs with it" phy_unbind_with_usbhs
check "VBUS off" vbus_state_is disabled
step "bind the USB2 PHY, then renesas_usbhs if the driver core has not yet"
check "phy bound again" phy_bind
check "usbhs bound again" usbhs_rebind
check "VBUS on again" vbus_state_is enabled
step "bind g1 to the UDC"
check "g1 bound after the PHY's rebind" bind_g1
check "no warnings from the USB drivers" usb_errors
dt_selftest
