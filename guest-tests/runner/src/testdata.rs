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

/// `on_abort=serror`: the kernel panics through its SError path.
pub const SERROR_CONSOLE: &str = "\
KTAP version 1\r
1..2\r
# rzgate-step 1 adc-unbind: unbind 10058000.adc from rzg2l-adc\r
[    0.500000] SError Interrupt on CPU0, code 0x00000000be000011 -- SError\r
[    0.500010] Call trace:\r
[    0.500020]  arm64_serror_panic+0x5c/0x80\r
[    0.500030]  rzg2l_adc_pm_runtime_suspend+0x14/0x40\r
[    0.500100] Kernel panic - not syncing: Asynchronous SError Interrupt\r
";

pub const SERROR_EVENTS: &str = r#"{"type":"start","seq":0,"soc":"r9a08g045","on_abort":"serror","faults":[]}
{"type":"marker","seq":1,"step":1,"vcpu":0}
{"type":"abort","seq":2,"device":"adc","register":"ADM0","offset":0,"soc_addr":268795904,"access":"read","size":4,"value":4294967295,"vcpu":0,"pc":18446603338374971412,"step":1,"gated_by":["ADC pclk off"],"frames":[18446603338374971692],"unwind":"end"}
{"type":"summary","seq":3,"accesses":{"cpg":1,"adc":1,"tsu":0,"mailbox":1},"aborts":1,"faults_armed":[],"faults_fired":[],"channel_full":0}
"#;
