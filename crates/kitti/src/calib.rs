//! `calib/*.txt`: `KEY: v1 v2 …` lines into a [`geom::Calib`], and back.

use crate::{KittiError, Result, io};
use geom::{Calib, Real};
use nalgebra::{Matrix3, Matrix3x4};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

/// Keys of an object calibration file with their accepted aliases (the tracking and raw benchmarks
/// spell some of them differently).
const KEYS: [(&str, &[&str], usize); 7] = [
    ("P0", &[], 12),
    ("P1", &[], 12),
    ("P2", &[], 12),
    ("P3", &[], 12),
    ("R0_rect", &["R_rect"], 9),
    ("Tr_velo_to_cam", &["Tr_velo_cam"], 12),
    ("Tr_imu_to_velo", &["Tr_imu_velo"], 12),
];

/// Parses the text of a calibration file. `path` only names the file in errors.
pub fn parse_calib(text: &str, path: &Path) -> Result<Calib> {
    let mut values: HashMap<&str, (usize, Vec<Real>)> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let Some((key, rest)) = line.split_once(':') else {
            return Err(KittiError::Malformed {
                path: path.into(),
                line: line_no,
                message: "expected `KEY: values`".into(),
            });
        };
        let nums = rest
            .split_whitespace()
            .map(|t| {
                let v: Real = t.parse().map_err(|_| KittiError::ParseNumber {
                    path: path.into(),
                    line: line_no,
                    field: key.trim().into(),
                    text: t.into(),
                })?;
                if v.is_finite() {
                    Ok(v)
                } else {
                    Err(KittiError::NonFinite {
                        path: path.into(),
                        line: line_no,
                        field: key.trim().into(),
                        text: t.into(),
                    })
                }
            })
            .collect::<Result<Vec<_>>>()?;
        values.insert(key.trim(), (line_no, nums));
    }
    let mut get = |key: &'static str| -> Result<Vec<Real>> {
        let &(_, aliases, n) =
            KEYS.iter()
                .find(|(k, _, _)| *k == key)
                .ok_or(KittiError::MissingCalibKey {
                    path: path.into(),
                    key,
                })?;
        let (line, v) = std::iter::once(key)
            .chain(aliases.iter().copied())
            .find_map(|k| values.remove(k))
            .ok_or(KittiError::MissingCalibKey {
                path: path.into(),
                key,
            })?;
        if v.len() != n {
            return Err(KittiError::FieldCount {
                path: path.into(),
                line,
                expected: if n == 9 { "9 values" } else { "12 values" },
                found: v.len(),
            });
        }
        Ok(v)
    };
    let m34 = |v: Vec<Real>| Matrix3x4::from_row_slice(&v);
    Ok(Calib {
        p: [m34(get("P0")?), m34(get("P1")?), m34(get("P2")?), m34(get("P3")?)],
        r0_rect: Matrix3::from_row_slice(&get("R0_rect")?),
        tr_velo_to_cam: m34(get("Tr_velo_to_cam")?),
        tr_imu_to_velo: m34(get("Tr_imu_to_velo")?),
    })
}

/// Reads a calibration file.
pub fn read_calib(path: &Path) -> Result<Calib> {
    parse_calib(&io::read_text(path)?, path)
}

/// Formats a calibration like KITTI's files (`%.12e`, row-major).
pub fn format_calib(calib: &Calib) -> String {
    let mut s = String::new();
    let mut line = |key: &str, v: &[Real]| {
        let _ = write!(s, "{key}:");
        for x in v {
            // Rust's `{:e}` has no fixed mantissa width; reproduce C's `%.12e` (two-digit exponent).
            let _ = write!(s, " {}", c_exp(*x));
        }
        s.push('\n');
    };
    let rows34 = |m: &Matrix3x4<Real>| {
        (0..3)
            .flat_map(|r| (0..4).map(move |c| m[(r, c)]))
            .collect::<Vec<_>>()
    };
    for (i, p) in calib.p.iter().enumerate() {
        line(&format!("P{i}"), &rows34(p));
    }
    let r0: Vec<Real> = (0..3)
        .flat_map(|r| (0..3).map(move |c| calib.r0_rect[(r, c)]))
        .collect();
    line("R0_rect", &r0);
    line("Tr_velo_to_cam", &rows34(&calib.tr_velo_to_cam));
    line("Tr_imu_to_velo", &rows34(&calib.tr_imu_to_velo));
    s
}

/// C's `%.12e`: `7.070493000000e+02`.
fn c_exp(x: Real) -> String {
    let s = format!("{x:.12e}");
    match s.split_once('e') {
        Some((mantissa, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

/// Writes a calibration file atomically.
pub fn write_calib(path: &Path, calib: &Calib) -> Result<()> {
    io::write_atomic(path, format_calib(calib).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "P0: 7.070493000000e+02 0.000000000000e+00 6.040814000000e+02 0.000000000000e+00 0.000000000000e+00 7.070493000000e+02 1.805066000000e+02 0.000000000000e+00 0.000000000000e+00 0.000000000000e+00 1.000000000000e+00 0.000000000000e+00
P1: 7.070493000000e+02 0.000000000000e+00 6.040814000000e+02 -3.797842000000e+02 0.000000000000e+00 7.070493000000e+02 1.805066000000e+02 0.000000000000e+00 0.000000000000e+00 0.000000000000e+00 1.000000000000e+00 0.000000000000e+00
P2: 7.070493000000e+02 0.000000000000e+00 6.040814000000e+02 4.575831000000e+01 0.000000000000e+00 7.070493000000e+02 1.805066000000e+02 -3.454157000000e-01 0.000000000000e+00 0.000000000000e+00 1.000000000000e+00 4.981016000000e-03
P3: 7.070493000000e+02 0.000000000000e+00 6.040814000000e+02 -3.341081000000e+02 0.000000000000e+00 7.070493000000e+02 1.805066000000e+02 2.330660000000e+00 0.000000000000e+00 0.000000000000e+00 1.000000000000e+00 3.201153000000e-03
R0_rect: 9.999128000000e-01 1.009263000000e-02 -8.511932000000e-03 -1.012729000000e-02 9.999406000000e-01 -4.037671000000e-03 8.470675000000e-03 4.123522000000e-03 9.999556000000e-01
Tr_velo_to_cam: 6.927964000000e-03 -9.999722000000e-01 -2.757829000000e-03 -2.457729000000e-02 -1.162982000000e-03 2.749836000000e-03 -9.999955000000e-01 -6.127237000000e-02 9.999753000000e-01 6.931141000000e-03 -1.143899000000e-03 -3.321029000000e-01
Tr_imu_to_velo: 9.999976000000e-01 7.553071000000e-04 -2.035826000000e-03 -8.086759000000e-01 -7.854027000000e-04 9.998898000000e-01 -1.482298000000e-02 3.195559000000e-01 2.024406000000e-03 1.482454000000e-02 9.998881000000e-01 -7.997231000000e-01
";

    #[test]
    fn parses_and_writes_byte_identical_text() {
        let calib = parse_calib(TEXT, Path::new("calib/000000.txt")).unwrap();
        assert_eq!(calib.p[2][(0, 3)], 45.75831);
        assert_eq!(calib.r0_rect[(2, 2)], 0.9999556);
        assert_eq!(format_calib(&calib), TEXT);
    }

    #[test]
    fn missing_and_short_keys_are_typed_errors() {
        let without_p2: String = TEXT
            .lines()
            .filter(|l| !l.starts_with("P2"))
            .map(|l| format!("{l}\n"))
            .collect();
        let err = parse_calib(&without_p2, Path::new("calib/000003.txt")).unwrap_err();
        assert!(
            matches!(err, KittiError::MissingCalibKey { key: "P2", .. }),
            "{err}"
        );
        assert!(err.to_string().contains("calib/000003.txt"));

        let short = TEXT.replace(" 3.201153000000e-03\n", "\n");
        let err = parse_calib(&short, Path::new("c.txt")).unwrap_err();
        assert!(
            matches!(
                err,
                KittiError::FieldCount {
                    line: 4,
                    found: 11,
                    ..
                }
            ),
            "{err}"
        );

        let err = parse_calib(&TEXT.replace("P1:", "P1"), Path::new("c.txt")).unwrap_err();
        assert!(matches!(err, KittiError::Malformed { line: 2, .. }), "{err}");
        let err = parse_calib(&TEXT.replace("4.575831000000e+01", "4.57x"), Path::new("c.txt")).unwrap_err();
        assert!(matches!(err, KittiError::ParseNumber { line: 3, .. }), "{err}");
    }

    #[test]
    fn accepts_tracking_key_aliases() {
        let aliased = TEXT
            .replace("R0_rect:", "R_rect:")
            .replace("Tr_velo_to_cam:", "Tr_velo_cam:");
        let a = parse_calib(&aliased, Path::new("c.txt")).unwrap();
        assert_eq!(a, parse_calib(TEXT, Path::new("c.txt")).unwrap());
    }
}
