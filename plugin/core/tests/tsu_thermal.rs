//! The TSU temperature round trip: the host sets a temperature, the driver's get_temp
//! (re-implemented here independently, integer for integer) reads ADC channel 8 eight
//! times and must report the host value within 0.5 degC.

mod common;

use rzgate_core::config::ModelConfig;
use rzgate_core::sim::Sim;
use rzgate_core::soc::Soc;

/// include/linux/math.h __KERNEL_DIV_ROUND_CLOSEST for signed values.
fn div_round_closest(x: i64, d: i64) -> i64 {
    if (x > 0) == (d > 0) {
        (x + d / 2) / d
    } else {
        (x - d / 2) / d
    }
}

/// rzg3s_thermal_get_temp: `*temp` is an int; div_s64 and C's `/` truncate toward zero.
fn get_temp(reads: &[u32; 8], calib0: i64, calib1: i64) -> i32 {
    let mut ts_code_ave: i32 = reads.iter().map(|&r| r as i32).sum();
    ts_code_ave = div_round_closest(i64::from(ts_code_ave) * 1000, 8) as i32;
    let num = (i64::from(ts_code_ave) - calib1 * 1000) * 165 * 1000;
    let temp = (num / ((calib0 - calib1) * 1000)) as i32 - 40 * 1000;
    // roundup(temp, 500)
    ((temp + (500 - 1)) / 500) * 500
}

fn thermal_zone_temp(soc: &Soc, temp_c: f64) -> i32 {
    let mut sim = Sim::new(
        soc.clone(),
        &ModelConfig {
            temp_c,
            ..ModelConfig::default()
        },
    );
    assert!(common::adc_probe(&mut sim));
    let (c0, c1) = common::tsu_probe(&mut sim);
    let mut reads = [0u32; 8];
    for r in reads.iter_mut() {
        *r = common::adc_convert(&mut sim, 8).expect("conversion of channel 8");
    }
    assert!(sim.aborts().is_empty());
    get_temp(&reads, c0, c1)
}

#[test]
fn zone_temperature_matches_the_host_setting() {
    let soc = common::soc();
    for t in [-40.0, -12.3, 0.0, 25.0, 42.0, 85.5, 110.0, 125.0] {
        let reported = thermal_zone_temp(&soc, t);
        let want = (t * 1000.0_f64).round() as i32;
        assert!((reported - want).abs() <= 500, "{t} degC reads {reported}");
    }
    assert_eq!(thermal_zone_temp(&soc, 25.0), 25_000);
    assert_eq!(thermal_zone_temp(&soc, -40.0), -40_000);
    assert_eq!(thermal_zone_temp(&soc, 125.0), 125_000);
    assert_eq!(thermal_zone_temp(&soc, 42.0), 42_000);
    assert_eq!(thermal_zone_temp(&soc, -12.3), -12_500);
}

#[test]
fn every_tenth_of_a_degree_reads_back_to_the_nearest_half_degree() {
    let soc = common::soc();
    for tenth in (-400..=1250).step_by(7) {
        let t = f64::from(tenth) / 10.0;
        let reported = thermal_zone_temp(&soc, t);
        let want = tenth * 100;
        assert!((reported - want).abs() <= 250, "{t} degC reads {reported}");
    }
}

#[test]
fn a_trim_word_without_valid_bit_falls_back_to_the_driver_defaults() {
    let text = common::soc_text().replacen("reset: 0x80000511", "reset: 0x00000400", 1);
    let soc = Soc::parse(&text, "t.yaml").expect("valid");
    let t = 60.0;
    assert_eq!(thermal_zone_temp(&soc, t), 60_000);
}

#[test]
fn other_calibration_words_are_honoured() {
    let text = common::soc_text()
        .replacen("reset: 0x80000511", "reset: 0x80000c00", 1)
        .replacen("reset: 0x800002ef", "reset: 0x80000100", 1);
    let soc = Soc::parse(&text, "t.yaml").expect("valid");
    for t in [-40.0, -0.7, 33.3, 125.0] {
        let reported = thermal_zone_temp(&soc, t);
        let want = (t * 1000.0_f64).round() as i32;
        assert!((reported - want).abs() <= 250, "{t} degC reads {reported}");
    }
}
