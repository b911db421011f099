//! Curriculum tests: verification, acceptance order and budget, the target crops rendered from a
//! label, and the settings file.
#![allow(clippy::unwrap_used, reason = "tests")]

use curriculum::CurriculumConfig;
use curriculum::verify::accept;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_settings_file_equals_the_defaults() {
    let text = std::fs::read_to_string(root().join("configs/curriculum.toml")).unwrap();
    let from_file: CurriculumConfig = toml::from_str(&text).unwrap();
    assert_eq!(from_file, CurriculumConfig::default());
}

#[test]
fn acceptance_takes_the_easiest_verified_within_the_budget() {
    let d = [Some(0.9), None, Some(0.1), Some(0.5), None, Some(0.3)];
    assert_eq!(accept(&d, 0.5), vec![2, 5]);
    assert_eq!(accept(&d, 1.0), vec![2, 5, 3, 0]);
    assert_eq!(accept(&d, 0.0), Vec::<usize>::new());
    // Rounded up: a quarter of four is one.
    assert_eq!(accept(&d, 0.25), vec![2]);
    let config = CurriculumConfig::default();
    assert_eq!(config.budget_of(1), 0.5);
    assert_eq!(config.budget_of(3), 1.0);
    assert_eq!(config.budget_of(7), 1.0);
}

#[test]
fn a_budget_outside_the_unit_interval_is_refused() {
    let config = CurriculumConfig {
        budget: vec![0.5, 1.5],
        ..CurriculumConfig::default()
    };
    assert!(config.validate().is_err());
}
