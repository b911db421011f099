//! The KITTI 3D object evaluation, reproducing the official devkit (`devkit_object/cpp/evaluate_object.cpp`,
//! 2019 version with 41 recall positions) to floating-point rounding.
//!
//! Protocol (METHODS.md §4): classes Car, Pedestrian, Cyclist; metrics 2D box, AOS (orientation
//! similarity over 2D matches), BEV and 3D; easy/moderate/hard by minimum 2D height (40/25/25 px),
//! maximum occlusion (0/1/2) and truncation (0.15/0.30/0.50); Van and Person_sitting ground truth are
//! neighbour classes (ignored, neither TP nor FN); DontCare regions swallow unmatched detections; AP over
//! 41 recall positions, R11 averaging positions 0, 4, …, 40 and R40 positions 1…40.
//!
//! The devkit's quirks are kept on purpose, because every number we publish must be comparable with it:
//! - a detection's height is truncated to an integer before the `< min height` test, and that test runs
//!   before the class test, so a small detection of *any* class is "ignored" and may still absorb a
//!   ground truth (no TP, no FN);
//! - the recall-threshold pass matches by highest score, the precision pass by highest overlap;
//! - with fewer than 40 valid ground truths every true positive becomes a recall threshold;
//! - DontCare overlap is intersection over the detection's own area (BEV: area, 3D: volume).
//!
//! Deliberate differences, all at the edges: a class is reported when the ground truth contains it
//! (the devkit reports a class only when it was detected at least once; with no detection our AP is 0
//! there); a detection without a score is an error (the devkit silently drops such lines).

mod matching;
mod report;

pub use report::{ClassEval, Curve, EvalReport, MetricEval, SetEval};

use crate::label::{Object, ObjectType};
use geom::Real;
use rayon::prelude::*;

/// Number of recall positions of the precision curve (0, 1/40, …, 1).
pub const N_SAMPLE_PTS: usize = 41;

/// The evaluated classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// Car (neighbour: Van).
    Car,
    /// Pedestrian (neighbour: Person_sitting).
    Pedestrian,
    /// Cyclist.
    Cyclist,
}

impl Class {
    /// All evaluated classes in devkit order.
    pub const ALL: [Class; 3] = [Class::Car, Class::Pedestrian, Class::Cyclist];

    /// The KITTI name.
    pub fn name(self) -> &'static str {
        match self {
            Class::Car => "Car",
            Class::Pedestrian => "Pedestrian",
            Class::Cyclist => "Cyclist",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn is(self, kind: &ObjectType) -> bool {
        matches!(
            (self, kind),
            (Class::Car, ObjectType::Car)
                | (Class::Pedestrian, ObjectType::Pedestrian)
                | (Class::Cyclist, ObjectType::Cyclist)
        )
    }

    fn is_neighbour(self, kind: &ObjectType) -> bool {
        matches!(
            (self, kind),
            (Class::Car, ObjectType::Van) | (Class::Pedestrian, ObjectType::PersonSitting)
        )
    }
}

/// Difficulty levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Difficulty {
    /// Height ≥ 40 px, fully visible, truncation ≤ 15 %.
    Easy,
    /// Height ≥ 25 px, partly occluded, truncation ≤ 30 %.
    Moderate,
    /// Height ≥ 25 px, largely occluded, truncation ≤ 50 %.
    Hard,
}

impl Difficulty {
    /// Easy, moderate, hard.
    pub const ALL: [Difficulty; 3] = [Difficulty::Easy, Difficulty::Moderate, Difficulty::Hard];

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        ["easy", "moderate", "hard"][self as usize]
    }

    fn min_height_px(self) -> Real {
        [40.0, 25.0, 25.0][self as usize]
    }

    fn max_occlusion(self) -> i32 {
        [0, 1, 2][self as usize]
    }

    fn max_truncation(self) -> Real {
        [0.15, 0.3, 0.5][self as usize]
    }
}

/// What a match is measured with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    /// 2D box IoU in the image (AOS rides on these matches).
    Bbox,
    /// Rotated-rectangle IoU in the x–z plane.
    Bev,
    /// 3D box IoU.
    ThreeD,
}

impl Metric {
    /// The three matching metrics.
    pub const ALL: [Metric; 3] = [Metric::Bbox, Metric::Bev, Metric::ThreeD];

    /// Key used in JSON and tables.
    pub fn key(self) -> &'static str {
        match self {
            Metric::Bbox => "bbox",
            Metric::Bev => "bev",
            Metric::ThreeD => "3d",
        }
    }
}

/// The overlap thresholds in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OverlapSet {
    /// The official thresholds: Car 0.7, Pedestrian 0.5, Cyclist 0.5 for every metric.
    Strict,
    /// The common loose variant: 2D as strict; BEV and 3D Car 0.5, others 0.25.
    Loose,
}

impl OverlapSet {
    /// Strict then loose.
    pub const ALL: [OverlapSet; 2] = [OverlapSet::Strict, OverlapSet::Loose];

    /// Key used in JSON.
    pub fn key(self) -> &'static str {
        match self {
            OverlapSet::Strict => "strict",
            OverlapSet::Loose => "loose",
        }
    }

    /// Minimum IoU for a true positive.
    pub fn min_overlap(self, metric: Metric, class: Class) -> Real {
        const STRICT: [Real; 3] = [0.7, 0.5, 0.5];
        const LOOSE_3D: [Real; 3] = [0.5, 0.25, 0.25];
        match (self, metric) {
            (OverlapSet::Strict, _) | (OverlapSet::Loose, Metric::Bbox) => STRICT[class.index()],
            (OverlapSet::Loose, _) => LOOSE_3D[class.index()],
        }
    }
}

/// Ground truth and detections of one frame.
#[derive(Clone, Debug, Default)]
pub struct FrameLabels {
    /// Frame id, for error messages.
    pub id: String,
    /// Ground-truth objects (all types, DontCare included).
    pub gt: Vec<Object>,
    /// Detections; each must have a score.
    pub det: Vec<Object>,
}

/// Errors of the evaluation.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A detection has no score, so it cannot be ranked.
    #[error(
        "frame {frame}: detection {index} ({kind}) has no score (16th field); the devkit would silently drop it"
    )]
    MissingScore {
        /// Frame id.
        frame: String,
        /// 0-based index of the detection in its file.
        index: usize,
        /// Its class.
        kind: String,
    },
}

/// Evaluates all frames: every class present in the ground truth, both overlap sets, all metrics.
pub fn evaluate(frames: &[FrameLabels]) -> Result<EvalReport, EvalError> {
    for f in frames {
        if let Some((index, d)) = f.det.iter().enumerate().find(|(_, d)| d.score.is_none()) {
            return Err(EvalError::MissingScore {
                frame: f.id.clone(),
                index,
                kind: d.kind.to_string(),
            });
        }
    }
    let _span = tracing::info_span!("kitti_eval", frames = frames.len()).entered();
    let prepared: Vec<matching::PreparedFrame> =
        frames.par_iter().map(matching::PreparedFrame::new).collect();
    // AOS needs every detection's orientation; the devkit turns it off if any alpha is −10.
    let compute_aos = !frames.iter().flat_map(|f| &f.det).any(|d| d.alpha_rad == -10.0);

    let classes: Vec<Class> = Class::ALL
        .into_iter()
        .filter(|c| frames.iter().flat_map(|f| &f.gt).any(|o| c.is(&o.kind)))
        .collect();

    // One job per (class, difficulty, metric, threshold); strict and loose share the 2D threshold.
    let mut jobs: Vec<(Class, Difficulty, Metric, Real)> = Vec::new();
    for &c in &classes {
        for d in Difficulty::ALL {
            for m in Metric::ALL {
                for s in OverlapSet::ALL {
                    let t = s.min_overlap(m, c);
                    if !jobs.contains(&(c, d, m, t)) {
                        jobs.push((c, d, m, t));
                    }
                }
            }
        }
    }
    let results: Vec<matching::ClassCurves> = jobs
        .par_iter()
        .map(|&(c, d, m, t)| matching::eval_class(&prepared, c, d, m, t, compute_aos && m == Metric::Bbox))
        .collect();
    let lookup = |c: Class, d: Difficulty, m: Metric, t: Real| {
        let i = jobs
            .iter()
            .position(|j| *j == (c, d, m, t))
            .expect("every (class, difficulty, metric, threshold) has a job");
        &results[i]
    };

    let classes = classes
        .into_iter()
        .map(|class| {
            let n_gt = Difficulty::ALL.map(|d| {
                lookup(
                    class,
                    d,
                    Metric::Bbox,
                    OverlapSet::Strict.min_overlap(Metric::Bbox, class),
                )
                .n_gt
            });
            let set = |s: OverlapSet| {
                let metric = |m: Metric| MetricEval {
                    curves: Difficulty::ALL
                        .map(|d| lookup(class, d, m, s.min_overlap(m, class)).precision.clone()),
                };
                let aos = compute_aos.then(|| MetricEval {
                    curves: Difficulty::ALL.map(|d| {
                        let r = lookup(class, d, Metric::Bbox, s.min_overlap(Metric::Bbox, class));
                        r.aos.clone().unwrap_or_default()
                    }),
                });
                SetEval {
                    set: s,
                    min_overlap: Metric::ALL.map(|m| s.min_overlap(m, class)),
                    bbox: metric(Metric::Bbox),
                    aos,
                    bev: metric(Metric::Bev),
                    three_d: metric(Metric::ThreeD),
                }
            };
            ClassEval {
                class,
                n_gt,
                strict: set(OverlapSet::Strict),
                loose: set(OverlapSet::Loose),
            }
        })
        .collect();
    Ok(EvalReport {
        frames: frames.len(),
        classes,
    })
}

#[cfg(test)]
mod tests;
