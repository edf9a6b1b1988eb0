//! The RZ/G3S thermal sensor unit (`rzg3s_thermal`).
//!
//! The G3S TSU has no data register: with TSU_SM = EN|OE its analog output feeds ADC
//! channel 8, and the driver converts the averaged code with the two trim words
//! (OTPTSUTRIM0 = +125 degC, OTPTSUTRIM1 = -40 degC). The model therefore picks, for the
//! host-set temperature, the ADC code whose value after the driver's exact integer
//! arithmetic (and its round-up to 0.5 degC) is closest to that temperature.
//!
//! While TSU_SM lacks EN or OE the sensor drives nothing and channel 8 converts to 0
//! ([`OUTPUT_OFF_CODE`]); the driver only reads the channel with the zone enabled.

use crate::config::ModelConfig;
use serde_json::Value;

use crate::device::{BuildError, Effects, Env, Peripheral};
use crate::regs::{find, find_field, Missing, RegFile, Register};
use crate::soc::Device;

/// The registry name of this model.
pub const MODEL: &str = "tsu";

/// Sensor mode: EN powers the sensor, OE routes its output to the ADC.
pub const TSU_SM: &str = "TSU_SM";
/// Trim word for +125 degC: VALID (bit 31) and TRIM (bits 11:0).
pub const OTPTSUTRIM0: &str = "OTPTSUTRIM0";
/// Trim word for -40 degC.
pub const OTPTSUTRIM1: &str = "OTPTSUTRIM1";

/// rzg3s_thermal.c SW_CALIB0_VAL / SW_CALIB1_VAL: what the driver uses when a trim
/// word's VALID bit is 0.
pub const DRIVER_DEFAULT_CALIB: (u16, u16) = (1297, 751);

/// What ADC channel 8 converts to while the sensor output is off.
pub const OUTPUT_OFF_CODE: u16 = 0;

/// rzg3s_thermal.c TSU_READ_STEPS: get_temp averages this many conversions.
const READ_STEPS: i64 = 8;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsuLayout {
    tsu_sm: usize,
    en: u32,
    oe: u32,
    trim: [usize; 2],
    trim_value: [u32; 2],
    trim_valid: [u32; 2],
}

impl TsuLayout {
    pub fn resolve(registers: &[Register]) -> Result<TsuLayout, Missing> {
        let tsu_sm = find(registers, TSU_SM)?;
        let t0 = find(registers, OTPTSUTRIM0)?;
        let t1 = find(registers, OTPTSUTRIM1)?;
        Ok(TsuLayout {
            tsu_sm,
            en: find_field(registers, tsu_sm, "EN")?,
            oe: find_field(registers, tsu_sm, "OE")?,
            trim: [t0, t1],
            trim_value: [
                find_field(registers, t0, "TRIM")?,
                find_field(registers, t1, "TRIM")?,
            ],
            trim_valid: [
                find_field(registers, t0, "VALID")?,
                find_field(registers, t1, "VALID")?,
            ],
        })
    }
}

/// The temperature rzg3s_thermal_get_temp reports (milli-degC) when all
/// [`READ_STEPS`] conversions return `code`, re-done in the driver's integer arithmetic:
/// DIV_ROUND_CLOSEST average in milli-codes, div_s64 truncation, then roundup(t, 500)
/// with C's truncating division. None where the driver would divide by zero.
pub fn driver_temp_mc(code: u16, calib0: u16, calib1: u16) -> Option<i64> {
    let sum = READ_STEPS * i64::from(code);
    // DIV_ROUND_CLOSEST of a non-negative value.
    let ave = (sum * 1000 + READ_STEPS / 2) / READ_STEPS;
    let span = (i64::from(calib0) - i64::from(calib1)) * 1000;
    if span == 0 {
        return None;
    }
    // div_s64 truncates toward zero, like Rust's `/` on i64.
    let t = (ave - i64::from(calib1) * 1000) * 165_000 / span - 40_000;
    // roundup(x, 500) = ((x + 499) / 500) * 500, C division.
    Some((t + 499) / 500 * 500)
}

/// The ADC code for `temp_c` with the given calibration: among all 12-bit codes, the one
/// whose reported temperature is nearest to `temp_c` (ties: the smaller error before the
/// round-up, then the smaller code).
pub fn code_for(temp_c: f64, calib0: u16, calib1: u16) -> u16 {
    let target = if temp_c.is_finite() {
        (temp_c * 1000.0).round() as i64
    } else {
        0
    };
    let mut best: Option<((i64, i64), u16)> = None;
    for code in 0..=4095u16 {
        let Some(reported) = driver_temp_mc(code, calib0, calib1) else {
            return OUTPUT_OFF_CODE;
        };
        let raw = raw_temp_mc(code, calib0, calib1);
        let key = ((reported - target).abs(), (raw - target).abs());
        if best.is_none_or(|(k, _)| key < k) {
            best = Some((key, code));
        }
    }
    best.map(|(_, c)| c).unwrap_or(OUTPUT_OFF_CODE)
}

/// The driver's temperature before the round-up (tie-breaker only).
fn raw_temp_mc(code: u16, calib0: u16, calib1: u16) -> i64 {
    let span = (i64::from(calib0) - i64::from(calib1)) * 1000;
    if span == 0 {
        return 0;
    }
    (i64::from(code) * 1000 - i64::from(calib1) * 1000) * 165_000 / span - 40_000
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tsu {
    registers: Vec<Register>,
    regs: RegFile,
    layout: TsuLayout,
    /// The code for the host temperature with this TSU's calibration.
    code: u16,
}

impl Tsu {
    /// The TSU of device `dev`, sensing the host-set temperature.
    pub fn new(dev: &Device, cfg: &ModelConfig) -> Result<Tsu, BuildError> {
        let layout = TsuLayout::resolve(&dev.registers)
            .map_err(|e| BuildError::new("registers", format!("the {MODEL} model needs {e}")))?;
        let registers = dev.registers.clone();
        let regs = RegFile::new(&registers);
        let mut tsu = Tsu {
            registers,
            regs,
            layout,
            code: OUTPUT_OFF_CODE,
        };
        let (c0, c1) = tsu.calibration();
        tsu.code = code_for(cfg.temp_c, c0, c1);
        Ok(tsu)
    }

    /// (calib0, calib1) as rzg3s_thermal_read_calib derives them from the trim words.
    pub fn calibration(&self) -> (u16, u16) {
        let l = &self.layout;
        let pick = |i: usize, default: u16| {
            let v = self.regs.get(l.trim[i]);
            if v & l.trim_valid[i] != 0 {
                let m = l.trim_value[i];
                ((v & m) >> m.trailing_zeros().min(31)) as u16
            } else {
                default
            }
        };
        (
            pick(0, DRIVER_DEFAULT_CALIB.0),
            pick(1, DRIVER_DEFAULT_CALIB.1),
        )
    }

    /// What ADC channel 8 converts to right now.
    pub fn channel_code(&self) -> u16 {
        let sm = self.regs.get(self.layout.tsu_sm);
        let on = self.layout.en | self.layout.oe;
        if sm & on == on {
            self.code
        } else {
            OUTPUT_OFF_CODE
        }
    }

    /// The code the sensor drives while enabled.
    pub fn enabled_code(&self) -> u16 {
        self.code
    }

    pub fn registers(&self) -> &[Register] {
        &self.registers
    }
}

impl Peripheral for Tsu {
    fn values(&self) -> &[u32] {
        self.regs.values()
    }

    fn reset(&mut self) {
        // The code depends only on the trim words and the host temperature: both unchanged.
        self.regs = RegFile::new(&self.registers);
    }

    fn write(&mut self, reg: usize, value: u32, _env: &Env, _fx: &mut Effects) {
        self.regs.write(&self.registers, reg, value);
    }

    /// The analog output towards the ADC: the code for the host temperature while EN and OE
    /// are set, [`OUTPUT_OFF_CODE`] otherwise.
    fn output(&self) -> Option<u32> {
        Some(u32::from(self.channel_code()))
    }

    fn save(&self) -> Value {
        self.regs.save()
    }

    fn load(&mut self, state: &Value) -> Result<(), String> {
        self.regs.load(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_soc;

    fn tsu(temp_c: f64) -> Tsu {
        let soc = test_soc();
        let dev = soc.device("tsu").expect("tsu");
        let cfg = ModelConfig {
            temp_c,
            ..ModelConfig::default()
        };
        Tsu::new(dev, &cfg).expect("tsu builds")
    }

    impl Tsu {
        fn w(&mut self, reg: usize, value: u32) {
            self.write(reg, value, &Env::EMPTY, &mut Effects::default());
        }
    }

    #[test]
    fn trim_words_are_valid_and_give_the_driver_defaults() {
        let t = tsu(25.0);
        assert_eq!(t.calibration(), (1297, 751));
        assert_eq!(t.value(1) >> 31, 1);
    }

    #[test]
    fn channel_code_needs_en_and_oe() {
        let mut t = tsu(25.0);
        assert_eq!(t.channel_code(), OUTPUT_OFF_CODE);
        t.w(0, 1);
        assert_eq!(
            t.channel_code(),
            OUTPUT_OFF_CODE,
            "EN alone does not drive the ADC"
        );
        t.w(0, 3);
        assert_eq!(t.channel_code(), t.enabled_code());
        t.w(0, 0);
        assert_eq!(t.channel_code(), OUTPUT_OFF_CODE);
    }

    #[test]
    fn tsu_sm_keeps_en_and_oe_only() {
        let mut t = tsu(25.0);
        t.w(0, 0xffff_ffff);
        assert_eq!(t.value(0), 3);
    }

    #[test]
    fn output_follows_en_oe_and_reset_turns_it_off() {
        let mut t = tsu(25.0);
        t.w(0, 3);
        assert_eq!(t.output(), Some(966));
        t.reset();
        assert_eq!(t.output(), Some(u32::from(OUTPUT_OFF_CODE)));
        assert_eq!(t.calibration(), (1297, 751));
    }

    #[test]
    fn worked_example_25_degrees_is_code_966() {
        assert_eq!(code_for(25.0, 1297, 751), 966);
        assert_eq!(driver_temp_mc(966, 1297, 751), Some(25_000));
    }

    #[test]
    fn equal_calibration_does_not_divide_by_zero() {
        assert_eq!(driver_temp_mc(900, 800, 800), None);
        assert_eq!(code_for(25.0, 800, 800), OUTPUT_OFF_CODE);
    }
}
