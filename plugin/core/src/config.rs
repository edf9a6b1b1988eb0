//! Plugin arguments (docs/contracts.md "Plugin arguments"), parsed without QEMU.
//!
//! QEMU hands the plugin `key=value` strings split on commas, so lists use `:`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::Serialize;

/// What happens at a gated access.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AbortPolicy {
    /// Gated reads see the bus-error value, gated writes are dropped.
    #[default]
    Continue,
    /// Flush events, then stop QEMU at the first abort (exit status 3).
    Halt,
    /// Divert the vCPU into the guest kernel's SError path (needs `symbols`).
    Serror,
}

impl AbortPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            AbortPolicy::Continue => "continue",
            AbortPolicy::Halt => "halt",
            AbortPolicy::Serror => "serror",
        }
    }
}

impl fmt::Display for AbortPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AbortPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "continue" => Ok(AbortPolicy::Continue),
            "halt" => Ok(AbortPolicy::Halt),
            "serror" => Ok(AbortPolicy::Serror),
            _ => Err("expected continue, halt or serror".into()),
        }
    }
}

/// When the plugin starts instrumenting user space (docs/contracts.md "Plugin arguments").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UserSpace {
    /// From the first page-table entry that gives EL0 access to the window (user space
    /// cannot reach it before).
    #[default]
    Watch,
    /// From the start.
    Always,
}

impl UserSpace {
    pub fn as_str(self) -> &'static str {
        match self {
            UserSpace::Watch => "watch",
            UserSpace::Always => "always",
        }
    }
}

impl FromStr for UserSpace {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "watch" => Ok(UserSpace::Watch),
            "always" => Ok(UserSpace::Always),
            _ => Err("expected watch or always".into()),
        }
    }
}

/// Injectable faults (docs/contracts.md "Faults").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// ADM0.SRESB never reads 1 after the driver sets it.
    AdcSresbStuck,
    /// A started conversion never completes (no data, no interrupt).
    AdcConversionStuck,
    /// The CLK_MON bits of the ADC clocks never set.
    CpgClkmonStuckAdc,
    /// RIIC0's ICCR2.BBSY always reads 1: something else holds the I2C bus.
    RiicBusBusy,
    /// SCIF3's receiver reports one overrun (SCLSR.ORER) and drops that byte.
    ScifRxOverrun,
    /// The RTC's 32.768 kHz oscillator never runs: RCR2.START never reads 1.
    RtcOscStuck,
    /// A DMAC channel starts but its transfer never ends (no copy, no end, no interrupt).
    DmacTransferStuck,
    /// Whenever the DMAC's register clock comes on, channel 0 has a transfer end left over
    /// from before (CHSTAT.END) and its interrupt pending at the GIC.
    DmacIrqPendingAtProbe,
}

impl Fault {
    pub const ALL: [Fault; 8] = [
        Fault::AdcSresbStuck,
        Fault::AdcConversionStuck,
        Fault::CpgClkmonStuckAdc,
        Fault::RiicBusBusy,
        Fault::ScifRxOverrun,
        Fault::RtcOscStuck,
        Fault::DmacTransferStuck,
        Fault::DmacIrqPendingAtProbe,
    ];

    /// Position in [`Fault::ALL`].
    pub fn index(self) -> usize {
        match self {
            Fault::AdcSresbStuck => 0,
            Fault::AdcConversionStuck => 1,
            Fault::CpgClkmonStuckAdc => 2,
            Fault::RiicBusBusy => 3,
            Fault::ScifRxOverrun => 4,
            Fault::RtcOscStuck => 5,
            Fault::DmacTransferStuck => 6,
            Fault::DmacIrqPendingAtProbe => 7,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Fault::AdcSresbStuck => "adc-sresb-stuck",
            Fault::AdcConversionStuck => "adc-conversion-stuck",
            Fault::CpgClkmonStuckAdc => "cpg-clkmon-stuck-adc",
            Fault::RiicBusBusy => "riic-bus-busy",
            Fault::ScifRxOverrun => "scif-rx-overrun",
            Fault::RtcOscStuck => "rtc-osc-stuck",
            Fault::DmacTransferStuck => "dmac-transfer-stuck",
            Fault::DmacIrqPendingAtProbe => "dmac-irq-pending-at-probe",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Fault::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Fault::ALL.iter().map(|f| f.as_str()).collect();
                format!("unknown fault `{s}`, expected one of {}", names.join(", "))
            })
    }
}

impl Serialize for Fault {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Default ADC result of channels 0..7.
pub const DEFAULT_ADC: u16 = 0x400;
/// Default TSU temperature.
pub const DEFAULT_TEMP_C: f64 = 25.0;
/// The TSU's calibrated range (OTPTSUTRIM1 is -40 degC, OTPTSUTRIM0 +125 degC).
pub const TEMP_RANGE_C: (f64, f64) = (-40.0, 125.0);
/// ADC results are 12-bit.
pub const ADC_MAX: u16 = 4095;

/// Everything the plugin was started with.
#[derive(Clone, Debug, PartialEq)]
pub struct PluginConfig {
    pub soc: PathBuf,
    pub events: PathBuf,
    pub on_abort: AbortPolicy,
    pub temp_c: f64,
    pub adc: [u16; 8],
    pub faults: Vec<Fault>,
    pub symbols: Option<PathBuf>,
    pub user_space: UserSpace,
    /// Load the model and bus state from this file at install (a restored snapshot).
    pub state_in: Option<PathBuf>,
    /// Write the model and bus state to this file at exit (the run a snapshot is made in).
    pub state_out: Option<PathBuf>,
}

/// What the device models need from the configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    pub temp_c: f64,
    pub adc: [u16; 8],
    pub faults: Vec<Fault>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            temp_c: DEFAULT_TEMP_C,
            adc: [DEFAULT_ADC; 8],
            faults: Vec::new(),
        }
    }
}

impl ModelConfig {
    pub fn armed(&self, fault: Fault) -> bool {
        self.faults.contains(&fault)
    }
}

/// A rejected plugin argument; the message names the key and what was expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("rzgate: argument `{arg}` is not key=value (expected e.g. soc=socs/r9a08g045.yaml)")]
    NotKeyValue { arg: String },
    #[error("rzgate: unknown argument `{key}` (expected one of soc, events, on_abort, temp, adc, faults, symbols, user_space, state_in, state_out, verdict)")]
    UnknownKey { key: String },
    #[error("rzgate: argument `{key}` given twice (expected once)")]
    Duplicate { key: String },
    #[error("rzgate: bad value `{value}` for `{key}`: {expected}")]
    BadValue {
        key: String,
        value: String,
        expected: String,
    },
    #[error("rzgate: missing required argument `{key}` ({expected})")]
    Missing { key: String, expected: String },
    #[error("rzgate: on_abort=serror needs `symbols=<System.map of the booted kernel>` to find the kernel's SError handler")]
    SerrorNeedsSymbols,
}

fn bad(key: &str, value: &str, expected: impl Into<String>) -> ConfigError {
    ConfigError::BadValue {
        key: key.to_string(),
        value: value.to_string(),
        expected: expected.into(),
    }
}

fn parse_u16(text: &str) -> Option<u32> {
    let t = text.trim();
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16).ok()
    } else {
        t.parse::<u32>().ok()
    }
}

fn path_value(key: &str, value: &str, what: &str) -> Result<PathBuf, ConfigError> {
    if value.is_empty() {
        return Err(bad(key, value, format!("expected {what}")));
    }
    Ok(PathBuf::from(value))
}

impl PluginConfig {
    /// Parses QEMU's `key=value` argument strings.
    pub fn parse<I: IntoIterator<Item = S>, S: AsRef<str>>(
        args: I,
    ) -> Result<PluginConfig, ConfigError> {
        let mut seen: Vec<String> = Vec::new();
        let mut soc = None;
        let mut events = None;
        let mut on_abort = AbortPolicy::default();
        let mut temp_c = DEFAULT_TEMP_C;
        let mut adc = [DEFAULT_ADC; 8];
        let mut faults = Vec::new();
        let mut symbols = None;
        let mut user_space = UserSpace::default();
        let mut state_in = None;
        let mut state_out = None;

        for arg in args {
            let arg = arg.as_ref();
            let Some((key, value)) = arg.split_once('=') else {
                return Err(ConfigError::NotKeyValue {
                    arg: arg.to_string(),
                });
            };
            let key = key.trim();
            const KEYS: [&str; 10] = [
                "soc",
                "events",
                "on_abort",
                "temp",
                "adc",
                "faults",
                "symbols",
                "user_space",
                "state_in",
                "state_out",
            ];
            if !KEYS.contains(&key) {
                return Err(ConfigError::UnknownKey {
                    key: key.to_string(),
                });
            }
            if seen.iter().any(|k| k == key) {
                return Err(ConfigError::Duplicate {
                    key: key.to_string(),
                });
            }
            seen.push(key.to_string());
            match key {
                "soc" => {
                    soc = Some(path_value(
                        key,
                        value,
                        "the path of a SoC description, e.g. socs/r9a08g045.yaml",
                    )?)
                }
                "events" => {
                    events = Some(path_value(
                        key,
                        value,
                        "the path of the JSON Lines event file",
                    )?)
                }
                "symbols" => {
                    symbols = Some(path_value(
                        key,
                        value,
                        "the path of the booted kernel's System.map",
                    )?)
                }
                "state_in" => {
                    state_in = Some(path_value(
                        key,
                        value,
                        "the path of a state file written by state_out= (a snapshot's)",
                    )?)
                }
                "state_out" => {
                    state_out = Some(path_value(
                        key,
                        value,
                        "the path to write the model and bus state to at exit",
                    )?)
                }
                "on_abort" => {
                    on_abort = value.parse().map_err(|e: String| bad(key, value, e))?;
                }
                "user_space" => {
                    user_space = value.parse().map_err(|e: String| bad(key, value, e))?;
                }
                "temp" => {
                    let (lo, hi) = TEMP_RANGE_C;
                    let expected =
                        format!("expected degrees Celsius from {lo} to {hi}, e.g. 25 or -12.5");
                    let t: f64 = value
                        .trim()
                        .parse()
                        .map_err(|_| bad(key, value, expected.clone()))?;
                    if !t.is_finite() || !(lo..=hi).contains(&t) {
                        return Err(bad(key, value, expected));
                    }
                    temp_c = t;
                }
                "adc" => {
                    let expected = "expected 1 to 8 `:`-separated 12-bit values (0..4095, decimal or 0x-hex), e.g. 0x400:1234";
                    let parts: Vec<&str> = value.split(':').collect();
                    if value.is_empty() || parts.len() > adc.len() {
                        return Err(bad(key, value, expected));
                    }
                    for (slot, part) in adc.iter_mut().zip(&parts) {
                        match parse_u16(part) {
                            Some(v) if v <= u32::from(ADC_MAX) => *slot = v as u16,
                            _ => return Err(bad(key, value, format!("`{part}`: {expected}"))),
                        }
                    }
                }
                "faults" => {
                    if value.is_empty() {
                        return Err(bad(key, value, "expected `:`-separated fault names"));
                    }
                    for name in value.split(':') {
                        let fault: Fault = name.parse().map_err(|e: String| bad(key, value, e))?;
                        if faults.contains(&fault) {
                            return Err(bad(
                                key,
                                value,
                                format!("fault `{name}` listed twice (expected each once)"),
                            ));
                        }
                        faults.push(fault);
                    }
                }
                _ => {
                    return Err(ConfigError::UnknownKey {
                        key: key.to_string(),
                    })
                }
            }
        }

        let soc = soc.ok_or_else(|| ConfigError::Missing {
            key: "soc".into(),
            expected: "the SoC description, e.g. soc=socs/r9a08g045.yaml".into(),
        })?;
        let events = events.ok_or_else(|| ConfigError::Missing {
            key: "events".into(),
            expected: "the JSON Lines event file, e.g. events=out/events.jsonl".into(),
        })?;
        if on_abort == AbortPolicy::Serror && symbols.is_none() {
            return Err(ConfigError::SerrorNeedsSymbols);
        }
        Ok(PluginConfig {
            soc,
            events,
            on_abort,
            temp_c,
            adc,
            faults,
            symbols,
            user_space,
            state_in,
            state_out,
        })
    }

    pub fn model_config(&self) -> ModelConfig {
        ModelConfig {
            temp_c: self.temp_c,
            adc: self.adc,
            faults: self.faults.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<PluginConfig, ConfigError> {
        PluginConfig::parse(args.iter().copied())
    }

    #[test]
    fn minimal_arguments_take_the_documented_defaults() {
        let c = parse(&["soc=socs/r9a08g045.yaml", "events=out/e.jsonl"]).expect("valid");
        assert_eq!(c.on_abort, AbortPolicy::Continue);
        assert_eq!(c.temp_c, 25.0);
        assert_eq!(c.adc, [0x400; 8]);
        assert!(c.faults.is_empty());
        assert_eq!(c.symbols, None);
        assert_eq!(c.user_space, UserSpace::Watch);
    }

    #[test]
    fn bad_user_space_is_rejected_by_name() {
        let m = message(&["soc=s", "events=e", "user_space=never"]);
        assert!(
            m.contains("`user_space`") && m.contains("watch or always"),
            "{m}"
        );
    }

    #[test]
    fn every_key_parses() {
        let c = parse(&[
            "soc=s.yaml",
            "events=e.jsonl",
            "on_abort=serror",
            "temp=-12.3",
            "adc=1:0x2:4095",
            "faults=adc-sresb-stuck:cpg-clkmon-stuck-adc",
            "symbols=System.map",
            "user_space=always",
        ])
        .expect("valid");
        assert_eq!(c.user_space, UserSpace::Always);
        assert_eq!(c.on_abort, AbortPolicy::Serror);
        assert_eq!(c.temp_c, -12.3);
        assert_eq!(c.adc, [1, 2, 4095, 0x400, 0x400, 0x400, 0x400, 0x400]);
        assert_eq!(
            c.faults,
            vec![Fault::AdcSresbStuck, Fault::CpgClkmonStuckAdc]
        );
        assert_eq!(c.symbols, Some(PathBuf::from("System.map")));
        let m = c.model_config();
        assert_eq!(m.adc, c.adc);
        assert!(m.armed(Fault::AdcSresbStuck));
    }

    #[test]
    fn fault_names_round_trip() {
        for f in Fault::ALL {
            assert_eq!(f.to_string().parse::<Fault>(), Ok(f));
        }
        assert!("nope".parse::<Fault>().is_err());
    }

    fn message(args: &[&str]) -> String {
        match parse(args) {
            Ok(c) => panic!("accepted {args:?}: {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn unknown_key_is_rejected_by_name() {
        let m = message(&["soc=a", "events=b", "tmep=3"]);
        assert!(m.contains("`tmep`") && m.contains("expected one of"), "{m}");
    }

    #[test]
    fn duplicate_key_is_rejected() {
        let m = message(&["soc=a", "events=b", "soc=c"]);
        assert!(m.contains("`soc` given twice"), "{m}");
    }

    #[test]
    fn argument_without_equals_is_rejected() {
        let m = message(&["soc=a", "events=b", "halt"]);
        assert!(m.contains("`halt` is not key=value"), "{m}");
    }

    #[test]
    fn missing_soc_or_events_is_rejected() {
        assert!(message(&["events=b"]).contains("missing required argument `soc`"));
        assert!(message(&["soc=a"]).contains("missing required argument `events`"));
        assert!(message(&["soc=", "events=b"]).contains("for `soc`"));
    }

    #[test]
    fn bad_policy_is_rejected() {
        let m = message(&["soc=a", "events=b", "on_abort=stop"]);
        assert!(
            m.contains("`on_abort`") && m.contains("continue, halt or serror"),
            "{m}"
        );
    }

    #[test]
    fn serror_without_symbols_is_rejected() {
        let e = parse(&["soc=a", "events=b", "on_abort=serror"]);
        assert_eq!(e, Err(ConfigError::SerrorNeedsSymbols));
    }

    #[test]
    fn temperature_outside_the_calibrated_range_is_rejected() {
        for t in ["-40.1", "125.5", "200", "nan", "inf", "warm", ""] {
            let m = message(&["soc=a", "events=b", &format!("temp={t}")]);
            assert!(m.contains("`temp`") && m.contains("-40 to 125"), "{t}: {m}");
        }
        assert_eq!(
            parse(&["soc=a", "events=b", "temp=-40"]).map(|c| c.temp_c),
            Ok(-40.0)
        );
        assert_eq!(
            parse(&["soc=a", "events=b", "temp=125"]).map(|c| c.temp_c),
            Ok(125.0)
        );
    }

    #[test]
    fn adc_values_must_be_12_bit_and_at_most_eight() {
        let m = message(&["soc=a", "events=b", "adc=4096"]);
        assert!(m.contains("`adc`") && m.contains("0..4095"), "{m}");
        let m = message(&["soc=a", "events=b", "adc=1:2:3:4:5:6:7:8:9"]);
        assert!(m.contains("1 to 8"), "{m}");
        assert!(message(&["soc=a", "events=b", "adc=0xzz"]).contains("`adc`"));
        assert!(message(&["soc=a", "events=b", "adc="]).contains("`adc`"));
        assert!(message(&["soc=a", "events=b", "adc=1::2"]).contains("`adc`"));
    }

    #[test]
    fn unknown_or_repeated_fault_is_rejected() {
        let m = message(&["soc=a", "events=b", "faults=adc-sresb-stuck:melt"]);
        assert!(
            m.contains("`faults`") && m.contains("unknown fault `melt`"),
            "{m}"
        );
        let m = message(&[
            "soc=a",
            "events=b",
            "faults=adc-sresb-stuck:adc-sresb-stuck",
        ]);
        assert!(m.contains("twice"), "{m}");
    }
}
