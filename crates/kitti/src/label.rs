//! `label_2` files: one object per line, 15 fields plus an optional detection score.
//!
//! `type truncated occluded alpha left top right bottom h w l x y z rotation_y [score]`
//!
//! Written like KITTI's own files: two decimals for every real field, the occlusion as an integer, and
//! the score (predictions only) with four decimals so that close scores keep their order.

use crate::{KittiError, Result, io};
use geom::{Box2d, Box3d, Real, Size3};
use nalgebra::Point3;
use std::fmt::Write as _;
use std::path::Path;

/// KITTI object classes. Parsing is case-insensitive, like the devkit's comparisons.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ObjectType {
    /// `Car`
    Car,
    /// `Van` (the devkit's neighbour class of Car)
    Van,
    /// `Truck`
    Truck,
    /// `Pedestrian`
    Pedestrian,
    /// `Person_sitting` (the devkit's neighbour class of Pedestrian)
    PersonSitting,
    /// `Cyclist`
    Cyclist,
    /// `Tram`
    Tram,
    /// `Misc`
    Misc,
    /// `DontCare`: a region with unlabelled objects; detections inside it are not counted.
    DontCare,
    /// Any other name, kept verbatim.
    Other(String),
}

impl ObjectType {
    /// Parses a type name, ignoring case.
    pub fn parse(name: &str) -> Self {
        const KNOWN: [(&str, ObjectType); 9] = [
            ("Car", ObjectType::Car),
            ("Van", ObjectType::Van),
            ("Truck", ObjectType::Truck),
            ("Pedestrian", ObjectType::Pedestrian),
            ("Person_sitting", ObjectType::PersonSitting),
            ("Cyclist", ObjectType::Cyclist),
            ("Tram", ObjectType::Tram),
            ("Misc", ObjectType::Misc),
            ("DontCare", ObjectType::DontCare),
        ];
        KNOWN
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, t)| t)
            .unwrap_or_else(|| ObjectType::Other(name.to_owned()))
    }

    /// The KITTI spelling.
    pub fn as_str(&self) -> &str {
        match self {
            ObjectType::Car => "Car",
            ObjectType::Van => "Van",
            ObjectType::Truck => "Truck",
            ObjectType::Pedestrian => "Pedestrian",
            ObjectType::PersonSitting => "Person_sitting",
            ObjectType::Cyclist => "Cyclist",
            ObjectType::Tram => "Tram",
            ObjectType::Misc => "Misc",
            ObjectType::DontCare => "DontCare",
            ObjectType::Other(s) => s,
        }
    }
}

impl std::fmt::Display for ObjectType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of a KITTI label or result file.
#[derive(Clone, Debug, PartialEq)]
pub struct Object {
    /// Class.
    pub kind: ObjectType,
    /// Fraction of the object outside the image, 0–1 (−1 for DontCare).
    pub truncated: Real,
    /// 0 fully visible, 1 partly occluded, 2 largely occluded, 3 unknown (−1 for DontCare).
    pub occluded: i32,
    /// Observation angle, rad, `[-π, π]`.
    pub alpha_rad: Real,
    /// 2D box in the left colour image, px.
    pub bbox: Box2d,
    /// 3D box in the rect frame.
    pub box3d: Box3d,
    /// Detection confidence (result files only); higher is more confident.
    pub score: Option<Real>,
}

const FIELD_NAMES: [&str; 16] = [
    "type",
    "truncated",
    "occluded",
    "alpha",
    "bbox_left",
    "bbox_top",
    "bbox_right",
    "bbox_bottom",
    "height",
    "width",
    "length",
    "x",
    "y",
    "z",
    "rotation_y",
    "score",
];

impl Object {
    /// Parses one label line. `path` and `line` (1-based) only name the place in errors.
    pub fn parse(text: &str, path: &Path, line: usize) -> Result<Self> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() != 15 && fields.len() != 16 {
            return Err(KittiError::FieldCount {
                path: path.into(),
                line,
                expected: "15 or 16",
                found: fields.len(),
            });
        }
        let num = |i: usize| -> Result<Real> {
            let t = fields[i];
            let v: Real = t.parse().map_err(|_| KittiError::ParseNumber {
                path: path.into(),
                line,
                field: FIELD_NAMES[i].into(),
                text: t.into(),
            })?;
            if !v.is_finite() {
                return Err(KittiError::NonFinite {
                    path: path.into(),
                    line,
                    field: FIELD_NAMES[i].into(),
                    text: t.into(),
                });
            }
            Ok(v)
        };
        // KITTI writes the occlusion state as an integer; accept an integral real too ("1.00").
        let occluded = match fields[2].parse::<i32>() {
            Ok(o) => o,
            Err(_) => {
                let v = num(2)?;
                if v.fract() != 0.0 {
                    return Err(KittiError::ParseNumber {
                        path: path.into(),
                        line,
                        field: "occluded".into(),
                        text: fields[2].into(),
                    });
                }
                v as i32
            }
        };
        Ok(Object {
            kind: ObjectType::parse(fields[0]),
            truncated: num(1)?,
            occluded,
            alpha_rad: num(3)?,
            bbox: Box2d::new(num(4)?, num(5)?, num(6)?, num(7)?),
            box3d: Box3d::new(
                Point3::new(num(11)?, num(12)?, num(13)?),
                Size3::new(num(8)?, num(9)?, num(10)?),
                num(14)?,
            ),
            score: if fields.len() == 16 { Some(num(15)?) } else { None },
        })
    }

    /// Formats the object as a KITTI line (no newline). DontCare lines keep KITTI's integer sentinels
    /// (`DontCare -1 -1 -10 … -1 -1 -1 -1000 -1000 -1000 -10`).
    pub fn to_line(&self) -> String {
        let b = &self.bbox;
        let d = &self.box3d;
        let c = d.bottom_center_rect;
        let dont_care = self.kind == ObjectType::DontCare;
        let real = |v: Real| {
            if dont_care && v.fract() == 0.0 && v < 0.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        };
        let mut s = format!(
            "{} {} {} {} {:.2} {:.2} {:.2} {:.2} {} {} {} {} {} {} {}",
            self.kind,
            real(self.truncated),
            self.occluded,
            real(self.alpha_rad),
            b.left,
            b.top,
            b.right,
            b.bottom,
            real(d.size.height_m),
            real(d.size.width_m),
            real(d.size.length_m),
            real(c.x),
            real(c.y),
            real(c.z),
            real(d.rotation_y_rad)
        );
        if let Some(score) = self.score {
            // Infallible: writing to a String.
            let _ = write!(s, " {score:.4}");
        }
        s
    }
}

/// Parses the text of a label file; blank lines are skipped.
pub fn parse_labels(text: &str, path: &Path) -> Result<Vec<Object>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| Object::parse(l, path, i + 1))
        .collect()
}

/// Reads a label (or result) file.
pub fn read_labels(path: &Path) -> Result<Vec<Object>> {
    parse_labels(&io::read_text(path)?, path)
}

/// Formats objects as the text of a label file (one line each, newline-terminated).
pub fn format_labels(objects: &[Object]) -> String {
    let mut s = String::with_capacity(objects.len() * 100);
    for o in objects {
        s.push_str(&o.to_line());
        s.push('\n');
    }
    s
}

/// Writes a label (or result) file atomically.
pub fn write_labels(path: &Path, objects: &[Object]) -> Result<()> {
    io::write_atomic(path, format_labels(objects).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &str = "Car 0.00 0 -1.58 587.01 173.33 614.12 200.12 1.65 1.67 3.64 -0.65 1.71 46.70 -1.59";
    const DONTCARE: &str = "DontCare -1 -1 -10 503.89 169.71 590.61 190.13 -1 -1 -1 -1000 -1000 -1000 -10";

    fn parse(text: &str) -> Result<Object> {
        Object::parse(text, Path::new("label_2/000007.txt"), 3)
    }

    #[test]
    fn parses_every_field() {
        let o = parse(REAL).unwrap();
        assert_eq!(o.kind, ObjectType::Car);
        assert_eq!(o.occluded, 0);
        assert_eq!(o.bbox, Box2d::new(587.01, 173.33, 614.12, 200.12));
        assert_eq!(o.box3d.size, Size3::new(1.65, 1.67, 3.64));
        assert_eq!(o.box3d.bottom_center_rect, Point3::new(-0.65, 1.71, 46.70));
        assert_eq!(o.box3d.rotation_y_rad, -1.59);
        assert_eq!(o.score, None);
        assert_eq!(parse(&format!("{REAL} 0.8731")).unwrap().score, Some(0.8731));
        assert_eq!(
            parse("car 0 1 0 0 0 1 1 1 1 1 0 0 5 0").unwrap().kind,
            ObjectType::Car
        );
        assert_eq!(
            parse("Bus 0 1 0 0 0 1 1 1 1 1 0 0 5 0").unwrap().kind,
            ObjectType::Other("Bus".into())
        );
    }

    #[test]
    fn writes_like_kitti() {
        assert_eq!(parse(REAL).unwrap().to_line(), REAL);
        let dc = parse(DONTCARE).unwrap();
        assert_eq!(dc.to_line(), DONTCARE);
        let scored = parse(&format!("{REAL} 0.87314")).unwrap();
        assert_eq!(scored.to_line(), format!("{REAL} 0.8731"));
    }

    #[test]
    fn write_read_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("000001.txt");
        let objects = parse_labels(&format!("{REAL}\n\n{DONTCARE}\n{REAL} 0.5000\n"), &path).unwrap();
        assert_eq!(objects.len(), 3);
        write_labels(&path, &objects).unwrap();
        assert_eq!(read_labels(&path).unwrap(), objects);
    }

    #[test]
    fn bad_lines_name_file_line_and_field() {
        let err = parse("Car 0.00 0 -1.58 587.01").unwrap_err();
        assert!(
            matches!(
                err,
                KittiError::FieldCount {
                    found: 5,
                    line: 3,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().starts_with("label_2/000007.txt:3:"), "{err}");

        let err = parse(&REAL.replace("46.70", "4x.70")).unwrap_err();
        assert!(
            matches!(&err, KittiError::ParseNumber { field, text, .. } if field == "z" && text == "4x.70"),
            "{err}"
        );

        let err = parse(&REAL.replace("3.64", "nan")).unwrap_err();
        assert!(
            matches!(&err, KittiError::NonFinite { field, .. } if field == "length"),
            "{err}"
        );
        let err = parse(&format!("{REAL} inf")).unwrap_err();
        assert!(
            matches!(&err, KittiError::NonFinite { field, .. } if field == "score"),
            "{err}"
        );

        let err = parse(&REAL.replacen(" 0 ", " 0.5 ", 1)).unwrap_err();
        assert!(
            matches!(&err, KittiError::ParseNumber { field, .. } if field == "occluded"),
            "{err}"
        );
        assert_eq!(parse(&REAL.replacen(" 0 ", " 2.00 ", 1)).unwrap().occluded, 2);
    }

    #[test]
    fn errors_report_the_right_line_number() {
        let text = format!("{REAL}\n\n{REAL}\nCar 1 2\n");
        let err = parse_labels(&text, Path::new("x.txt")).unwrap_err();
        assert!(matches!(err, KittiError::FieldCount { line: 4, .. }), "{err}");
    }
}
