//! Recorded-style console logs, event files and a System.map for the unit tests, shaped
//! like what the guest and the plugin produce (docs/contracts.md; the prefix kernel's
//! adc-unbind aborts as PLATFORM_FACTS.md describes them).

/// Text symbols the fixtures' addresses fall into.
pub const SYSTEM_MAP: &str = "\
ffff800080000000 T _text
ffff800080010000 T _stext
ffff800080510000 T devres_release_all
ffff800080520000 T pm_runtime_disable_action
ffff800080530000 T rpm_suspend
ffff800080600000 T rzg2l_adc_pm_runtime_suspend
ffff800080600100 T pm_generic_runtime_suspend
ffff800080610000 T rzg3s_thermal_change_mode
ffff800080620000 T devm_thermal_of_zone_release
ffff800080700000 t rzg2l_mod_clock_endisable
ffff800080f00000 T _etext
ffff800081100000 D jiffies
";

pub const UPSTREAM_ADC_UNBIND_CONSOLE: &str = "\
Booting Linux on physical CPU 0x0000000000 [0x412fd050]\r
Linux version 7.2.13 (rzgate) #1 SMP\r
Run /init as init process\r
KTAP version 1\r
1..3\r
# rzgate-step 1 adc-unbind: unbind 10058000.adc from rzg2l-adc\r
ok 1 adc unbound\r
# rzgate-step 2 adc-unbind: bind 10058000.adc to rzg2l-adc\r
ok 2 adc bound again\r
ok 3 adc bound again\r
# rzgate-done\r
reboot: Power down\r
";

/// The upstream console with the same step texts; the guest cannot tell the difference
/// under `continue` (reads see the bus-error value, the unbind still succeeds).
pub const PREFIX_ADC_UNBIND_CONSOLE: &str = "\
Booting Linux on physical CPU 0x0000000000 [0x412fd050]\r
Run /init as init process\r
KTAP version 1\r
1..2\r
# rzgate-step 1 adc-unbind: unbind 10058000.adc from rzg2l-adc\r
ok 1 adc unbound\r
# rzgate-step 2 adc-unbind: bind 10058000.adc to rzg2l-adc\r
ok 2 adc bound again\r
# rzgate-done\r
reboot: Power down\r
";

pub const CLEAN_EVENTS: &str = r#"{"type":"start","seq":0,"soc":"r9a08g045","window":{"guest_base":2113929216,"soc_base":268435456,"size":33554432},"on_abort":"continue","temp_c":42.0,"adc":[100,500,1000,1500,2000,2500,3000,4000],"faults":[]}
{"type":"marker","seq":1,"step":1,"vcpu":0}
{"type":"marker","seq":2,"step":2,"vcpu":0}
{"type":"summary","seq":3,"accesses":{"cpg":51234,"adc":310,"tsu":12,"mailbox":2},"aborts":0,"faults_armed":[],"faults_fired":[],"channel_full":0}
"#;

/// Step 1: the TSU write under devm_thermal_of_zone_release, the ADM0 read + write under
/// pm_runtime_disable_action; step 2 repeats the ADM0 read (grouped with the first).
pub const PREFIX_ADC_UNBIND_EVENTS: &str = r#"{"type":"start","seq":0,"soc":"r9a08g045","window":{"guest_base":2113929216,"soc_base":268435456,"size":33554432},"on_abort":"continue","temp_c":42.0,"adc":[100,500,1000,1500,2000,2500,3000,4000],"faults":[]}
{"type":"marker","seq":1,"step":1,"vcpu":0}
{"type":"gate","seq":2,"device":"tsu","gated":true,"reasons":["TSU pclk off: CLK_MON 0x728 bit 1 = 0"],"pc":18446603338376020068,"vcpu":0,"step":1,"register":"CLK_ON_ADC","soc_addr":285280552}
{"type":"abort","seq":3,"device":"tsu","register":"TSU_SM","offset":0,"soc_addr":268800000,"guest_addr":2114293760,"access":"write","size":4,"value":0,"vcpu":0,"pc":18446603338375036972,"step":1,"gated_by":["TSU pclk off: CLK_MON 0x728 bit 1 = 0","ADC bus in module stop: MSTOP 0xB68 bit 14 = 1"],"gated_since":{"seq":2,"pc":18446603338376020068,"step":1,"register":"CLK_ON_ADC"},"frames":[18446603338375102488,18446603338373988496],"unwind":"end"}
{"type":"abort","seq":4,"device":"adc","register":"ADM0","offset":0,"soc_addr":268795904,"guest_addr":2114289664,"access":"read","size":4,"value":4294967295,"vcpu":0,"pc":18446603338374971412,"step":1,"gated_by":["ADC pclk off: CLK_MON 0x728 bit 1 = 0","ADC bus in module stop: MSTOP 0xB68 bit 14 = 1"],"gated_since":{"seq":2,"pc":18446603338376020068,"step":1,"register":"CLK_ON_ADC"},"frames":[18446603338374971692,18446603338374119840,18446603338374053936,18446603338373988496,18446603338385457152],"unwind":"end"}
{"type":"abort","seq":5,"device":"adc","register":"ADM0","offset":0,"soc_addr":268795904,"guest_addr":2114289664,"access":"write","size":4,"value":0,"vcpu":0,"pc":18446603338374971420,"step":1,"gated_by":["ADC pclk off: CLK_MON 0x728 bit 1 = 0"],"gated_since":{"seq":2,"pc":18446603338376020068,"step":1,"register":"CLK_ON_ADC"},"frames":[18446603338374971692],"unwind":"depth-limit"}
{"type":"marker","seq":6,"step":2,"vcpu":0}
{"type":"abort","seq":7,"device":"adc","register":"ADM0","offset":0,"soc_addr":268795904,"guest_addr":2114289664,"access":"read","size":4,"value":4294967295,"vcpu":0,"pc":18446603338374971412,"step":2,"gated_by":["ADC pclk off: CLK_MON 0x728 bit 1 = 0"],"gated_since":{"seq":2,"pc":18446603338376020068,"step":1,"register":"CLK_ON_ADC"},"frames":[],"unwind":"not-captured"}
{"type":"summary","seq":8,"accesses":{"cpg":51234,"adc":310,"tsu":12,"mailbox":2},"aborts":4,"faults_armed":[],"faults_fired":[],"channel_full":0}
"#;

/// `on_abort=halt`: QEMU stops at the first abort, no done marker, no summary.
pub const HALTED_CONSOLE: &str = "\
KTAP version 1\r
1..2\r
# rzgate-step 1 tsu-unbind: unbind 10059000.tsu from rzg3s-thermal\r
";

pub const HALTED_EVENTS: &str = r#"{"type":"start","seq":0,"soc":"r9a08g045","on_abort":"halt","faults":[]}
{"type":"marker","seq":1,"step":1,"vcpu":0}
{"type":"abort","seq":2,"device":"tsu","register":"TSU_SM","offset":0,"soc_addr":268800000,"access":"write","size":4,"value":0,"vcpu":0,"pc":18446603338375036972,"step":1,"gated_by":["TSU pclk off"],"frames":[18446603338375102488],"unwind":"end"}
{"type":"halt","seq":3,"abort_seq":2}
"#;

/// `on_abort=serror`: the prefix kernel's console from `rzgate-runner boot --kernel prefix
/// --test adc-unbind --on-abort serror` (recorded; the boot log before KTAP left out): the
/// TSU write under devm_thermal_of_zone_release diverted into do_serror.
pub const SERROR_CONSOLE: &str = r#"KTAP version 1
1..10
# rzgate-step 1 adc-unbind: read channel 0 (ADC runtime-active)
ok 1 in_voltage0_raw reads 100
# rzgate-step 2 adc-unbind: unbind adc while runtime-active
SError Interrupt on CPU0, code 0x00000000be000011 -- SError
CPU: 0 UID: 0 PID: 71 Comm: init Tainted: G   M                7.2.13 #2 PREEMPTLAZY  
Tainted: [M]=MACHINE_CHECK
Hardware name: linux,dummy-virt (DT)
pstate: 40400005 (nZcv daif +PAN -UAO -TCO -DIT -SSBS BTYPE=--)
pc : rzg3s_thermal_change_mode+0x48/0x114
lr : rzg3s_thermal_change_mode+0x38/0x114
sp : ffff80008072baa0
x29: ffff80008072baa0 x28: ffff0000008e5c00 x27: 0000000000000000
x26: 0000000000000000 x25: 0000000000000000 x24: ffff000000911810
x23: 0000000000000008 x22: ffff00000088bc48 x21: ffff000000911810
x20: 0000000000000000 x19: ffff000000a12e00 x18: 0000000000000000
x17: 0000000000000000 x16: 0000000000000000 x15: 000000e9e8a055d0
x14: ffff0000008e0080 x13: 000000000000033f x12: 0000000000000000
x11: 0000000000000000 x10: ffff800080290740 x9 : ffff800080290000
x8 : ffff000000911a90 x7 : ffff000000911a90 x6 : ffff000000911a90
x5 : ffff000000911a90 x4 : ffff000000911a90 x3 : ffff000000911a90
x2 : 0000000000000000 x1 : ffff0000008e5c00 x0 : ffff8000805f5000
Kernel panic - not syncing: Asynchronous SError Interrupt
CPU: 0 UID: 0 PID: 71 Comm: init Tainted: G   M                7.2.13 #2 PREEMPTLAZY  
Tainted: [M]=MACHINE_CHECK
Hardware name: linux,dummy-virt (DT)
Call trace:
 show_stack+0x14/0x1c (C)
 dump_stack_lvl+0x5c/0x78
 dump_stack+0x14/0x1c
 vpanic+0x12c/0x2f8
 __preempt_count_dec_and_test+0x0/0x2c
 nmi_panic+0x5c/0x60
 arm64_serror_panic+0x6c/0x80
 do_serror+0x38/0x68
 el1h_64_error_handler+0x30/0x48
 el1h_64_error+0x6c/0x70
 rzg3s_thermal_change_mode+0x48/0x114 (P)
 thermal_zone_device_set_mode+0x44/0x7c
 thermal_zone_device_disable+0x10/0x20
 devm_thermal_of_zone_release+0x18/0x2c
 dr_node_release+0x18/0x20
 devres_release_all+0x8c/0xf4
 device_unbind_cleanup+0x28/0x80
 device_release_driver_internal+0x1e0/0x214
 device_links_unbind_consumers+0xcc/0xfc
 device_release_driver_internal+0xdc/0x214
 device_driver_detach+0x14/0x20
 unbind_store+0xac/0xb0
 drv_attr_store+0x20/0x34
 sysfs_kf_write+0x58/0x7c
 kernfs_fop_write_iter+0x128/0x1ec
 vfs_write+0x1f0/0x2a0
 ksys_write+0x58/0xe0
 __arm64_sys_write+0x18/0x20
 invoke_syscall.constprop.0+0x54/0xec
 do_el0_svc+0x3c/0xb4
 el0_svc+0x18/0x5c
 el0t_64_sync_handler+0x98/0xdc
 el0t_64_sync+0x154/0x158
Kernel Offset: disabled
CPU features: 0x00000000,00100002,00020500,0400500b
Memory Limit: none
"#;

/// The events of that run, with its pc and frames moved into [`SYSTEM_MAP`]'s functions at
/// the same offsets (rzg3s_thermal_change_mode+0x48, called from
/// devm_thermal_of_zone_release+0x18).
pub const SERROR_EVENTS: &str = r#"{"type":"start","seq":0,"soc":"r9a08g045","on_abort":"serror","faults":[]}
{"type":"serror_ready","seq":1,"mode":"faithful","target":18446603338368823204,"handler_return":18446603338371794800,"entry_return":18446603338368750592,"handler_frame":32}
{"type":"marker","seq":2,"step":1,"vcpu":0}
{"type":"marker","seq":3,"step":2,"vcpu":0}
{"type":"gate","seq":4,"device":"tsu","gated":true,"reasons":["TSU bus in module stop: MSTOP 0xB68 bit 15 = 1"],"pc":18446603338376020068,"vcpu":0,"step":2,"register":"BUS_MCPU2_MSTOP","soc_addr":285281128,"frames":[18446603338373988496],"unwind":"end"}
{"type":"abort","seq":5,"device":"tsu","register":"TSU_SM","offset":0,"soc_addr":268800000,"guest_addr":2114293760,"access":"write","size":4,"value":0,"vcpu":0,"pc":18446603338375037000,"step":2,"gated_by":["TSU pclk off: CLK_MON 0x72C bit 0 = 0","TSU bus in module stop: MSTOP 0xB68 bit 15 = 1"],"gated_since":{"seq":4,"pc":18446603338376020068,"step":2,"register":"BUS_MCPU2_MSTOP"},"frames":[18446603338375036984,18446603338375102488,18446603338373988496],"unwind":"end","diverted":true,"serror":{"mode":"faithful","target":"do_serror","target_addr":18446603338368823204,"esr":3187671057,"regs":18446603338376198496}}
{"type":"summary","seq":6,"accesses":{"adc":300,"cpg":207,"mailbox":2,"tsu":5},"aborts":1,"faults_armed":[],"faults_fired":[],"channel_full":0}
"#;

/// The upstream adc-unbind cell with suspects only: the ADC's clock is stopped while its bus
/// MSTOP is clear (the silicon tolerates it), and the runtime-suspend read of ADM0 happens
/// in both steps (one group, x2); then a write of ADM0 while its reset is held. The summary
/// counts them.
pub const SUSPECT_ONLY_EVENTS: &str = r#"{"type":"start","seq":0,"soc":"r9a08g045","on_abort":"continue","faults":[]}
{"type":"marker","seq":1,"step":1,"vcpu":0}
{"type":"gate","seq":2,"device":"adc","gated":true,"reasons":["ADC pclk off: CLK_MON 0x728 bit 1 = 0"],"pc":18446603338376020068,"vcpu":0,"step":1,"register":"CLK_ON_ADC","soc_addr":285280552,"frames":[18446603338374053904],"unwind":"end"}
{"type":"suspect","seq":3,"device":"adc","register":"ADM0","offset":0,"soc_addr":268795904,"guest_addr":2114289664,"access":"read","size":4,"value":0,"vcpu":0,"pc":18446603338374971400,"step":1,"gated_by":["ADC pclk off: CLK_MON 0x728 bit 1 = 0"],"gated_since":{"seq":2,"pc":18446603338376020068,"step":1,"register":"CLK_ON_ADC"},"frames":[18446603338374971692,18446603338374119488],"unwind":"end"}
{"type":"marker","seq":4,"step":2,"vcpu":0}
{"type":"suspect","seq":5,"device":"adc","register":"ADM0","offset":0,"soc_addr":268795904,"guest_addr":2114289664,"access":"read","size":4,"value":0,"vcpu":0,"pc":18446603338374971400,"step":2,"gated_by":["ADC pclk off: CLK_MON 0x728 bit 1 = 0"],"gated_since":{"seq":2,"pc":18446603338376020068,"step":1,"register":"CLK_ON_ADC"},"frames":[18446603338374971692,18446603338374119488],"unwind":"end"}
{"type":"suspect","seq":6,"device":"adc","register":"ADM0","offset":0,"soc_addr":268795904,"guest_addr":2114289664,"access":"write","size":4,"value":1,"vcpu":0,"pc":18446603338374971420,"step":2,"gated_by":["ADC reset held: RST_MON 0xA28 bit 1 = 1"],"frames":[18446603338374971692],"unwind":"end"}
{"type":"summary","seq":7,"accesses":{"cpg":51234,"adc":310,"tsu":12,"mailbox":2},"aborts":0,"suspects":3,"faults_armed":[],"faults_fired":[],"channel_full":0}
"#;

/// The prefix adc-unbind cell with both classes: a suspect read while only the ADC's clock
/// is stopped, then, once its bus is in module stop too, an abort; the same suspect read
/// again in step 2.
pub const ABORT_AND_SUSPECT_EVENTS: &str = r#"{"type":"start","seq":0,"soc":"r9a08g045","on_abort":"continue","faults":[]}
{"type":"marker","seq":1,"step":1,"vcpu":0}
{"type":"gate","seq":2,"device":"adc","gated":true,"reasons":["ADC pclk off: CLK_MON 0x728 bit 1 = 0"],"pc":18446603338376020068,"vcpu":0,"step":1,"register":"CLK_ON_ADC","soc_addr":285280552}
{"type":"suspect","seq":3,"device":"adc","register":"ADM0","offset":0,"soc_addr":268795904,"guest_addr":2114289664,"access":"read","size":4,"value":0,"vcpu":0,"pc":18446603338374971400,"step":1,"gated_by":["ADC pclk off: CLK_MON 0x728 bit 1 = 0"],"gated_since":{"seq":2,"pc":18446603338376020068,"step":1,"register":"CLK_ON_ADC"},"frames":[18446603338374971692],"unwind":"end"}
{"type":"abort","seq":4,"device":"adc","register":"ADM0","offset":0,"soc_addr":268795904,"guest_addr":2114289664,"access":"write","size":4,"value":0,"vcpu":0,"pc":18446603338374971420,"step":1,"gated_by":["ADC pclk off: CLK_MON 0x728 bit 1 = 0","ADC bus in module stop: MSTOP 0xB68 bit 14 = 1"],"gated_since":{"seq":2,"pc":18446603338376020068,"step":1,"register":"CLK_ON_ADC"},"frames":[18446603338374971692,18446603338374119488],"unwind":"end"}
{"type":"marker","seq":5,"step":2,"vcpu":0}
{"type":"suspect","seq":6,"device":"adc","register":"ADM0","offset":0,"soc_addr":268795904,"guest_addr":2114289664,"access":"read","size":4,"value":0,"vcpu":0,"pc":18446603338374971400,"step":2,"gated_by":["ADC pclk off: CLK_MON 0x728 bit 1 = 0"],"gated_since":{"seq":2,"pc":18446603338376020068,"step":1,"register":"CLK_ON_ADC"},"frames":[18446603338374971692],"unwind":"end"}
{"type":"summary","seq":7,"accesses":{"cpg":51234,"adc":310,"tsu":12,"mailbox":2},"aborts":1,"suspects":2,"faults_armed":[],"faults_fired":[],"channel_full":0}
"#;
