//! Evaluation results: precision curves, AP R11/R40, the devkit-like table and the JSON summary.

use super::{Class, Metric, N_SAMPLE_PTS, OverlapSet};
use geom::Real;
use serde_json::{Map, Value, json};
use std::fmt::Write as _;

/// A precision (or AOS) curve at the 41 recall positions 0, 1/40, …, 1, after the devkit's
/// max-filtering.
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    /// Precision at recall `i / 40`.
    pub precision: [Real; N_SAMPLE_PTS],
}

impl Default for Curve {
    fn default() -> Self {
        Self {
            precision: [0.0; N_SAMPLE_PTS],
        }
    }
}

impl Curve {
    /// 11-point AP in percent: mean precision at recall 0, 0.1, …, 1.
    pub fn ap_r11(&self) -> Real {
        self.precision.iter().step_by(4).sum::<Real>() / 11.0 * 100.0
    }

    /// 40-point AP in percent: mean precision at recall 1/40, …, 1 (official since 2019).
    pub fn ap_r40(&self) -> Real {
        self.precision[1..].iter().sum::<Real>() / 40.0 * 100.0
    }
}

/// One metric's curves for easy, moderate and hard.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricEval {
    /// Curves by difficulty.
    pub curves: [Curve; 3],
}

impl MetricEval {
    /// AP R11 for easy, moderate, hard (percent).
    pub fn r11(&self) -> [Real; 3] {
        self.curves.each_ref().map(Curve::ap_r11)
    }

    /// AP R40 for easy, moderate, hard (percent).
    pub fn r40(&self) -> [Real; 3] {
        self.curves.each_ref().map(Curve::ap_r40)
    }
}

/// All metrics of one class under one set of overlap thresholds.
#[derive(Clone, Debug, PartialEq)]
pub struct SetEval {
    /// Which thresholds.
    pub set: OverlapSet,
    /// Minimum IoU for 2D, BEV, 3D.
    pub min_overlap: [Real; 3],
    /// 2D box AP.
    pub bbox: MetricEval,
    /// Average orientation similarity; `None` when some detection has no orientation (alpha = −10).
    pub aos: Option<MetricEval>,
    /// Bird's-eye-view AP.
    pub bev: MetricEval,
    /// 3D AP.
    pub three_d: MetricEval,
}

impl SetEval {
    /// The metric's results.
    pub fn metric(&self, metric: Metric) -> &MetricEval {
        match metric {
            Metric::Bbox => &self.bbox,
            Metric::Bev => &self.bev,
            Metric::ThreeD => &self.three_d,
        }
    }

    /// `(key, results)` of every reported metric, in table order.
    pub fn rows(&self) -> Vec<(&'static str, &MetricEval)> {
        let mut rows = vec![("bbox", &self.bbox), ("bev", &self.bev), ("3d", &self.three_d)];
        if let Some(aos) = &self.aos {
            rows.push(("aos", aos));
        }
        rows
    }
}

/// One class's results.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassEval {
    /// The class.
    pub class: Class,
    /// Valid ground truths (the recall denominator) for easy, moderate, hard.
    pub n_gt: [usize; 3],
    /// Official thresholds.
    pub strict: SetEval,
    /// Loose thresholds.
    pub loose: SetEval,
}

impl ClassEval {
    /// The results under one overlap set.
    pub fn set(&self, set: OverlapSet) -> &SetEval {
        match set {
            OverlapSet::Strict => &self.strict,
            OverlapSet::Loose => &self.loose,
        }
    }
}

/// The whole evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalReport {
    /// Frames evaluated.
    pub frames: usize,
    /// Classes present in the ground truth, in devkit order.
    pub classes: Vec<ClassEval>,
}

impl EvalReport {
    /// One class's results, if it was evaluated.
    pub fn class(&self, class: Class) -> Option<&ClassEval> {
        self.classes.iter().find(|c| c.class == class)
    }

    /// The JSON summary, percent values:
    /// `{"Car": {"strict": {"bbox": {"R40": [e, m, h], "R11": [e, m, h]}, "bev": …, "3d": …, "aos": …},
    /// "loose": …}, …}`. NaN (possible only in degenerate inputs, as in the devkit) becomes `null`.
    pub fn to_json(&self) -> Value {
        let mut root = Map::new();
        for c in &self.classes {
            let mut sets = Map::new();
            for s in OverlapSet::ALL {
                let mut metrics = Map::new();
                for (key, m) in c.set(s).rows() {
                    metrics.insert(key.into(), json!({"R40": m.r40(), "R11": m.r11()}));
                }
                sets.insert(s.key().into(), Value::Object(metrics));
            }
            root.insert(c.class.name().into(), Value::Object(sets));
        }
        Value::Object(root)
    }

    /// A devkit-like table: per class and overlap set, AP R11 and R40 for easy, moderate, hard.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "KITTI evaluation over {} frames (official devkit protocol)",
            self.frames
        );
        for c in &self.classes {
            let _ = writeln!(
                s,
                "\n{} — valid ground truths: easy {}, moderate {}, hard {}",
                c.class.name(),
                c.n_gt[0],
                c.n_gt[1],
                c.n_gt[2]
            );
            for set in OverlapSet::ALL {
                let e = c.set(set);
                let [o2d, obev, o3d] = e.min_overlap;
                let _ = writeln!(
                    s,
                    "  {} AP@{o2d:.2}, {obev:.2}, {o3d:.2} (2D, BEV, 3D)",
                    set.key()
                );
                let _ = writeln!(
                    s,
                    "    {:<5} {:>26}   {:>26}",
                    "", "R11: easy   mod.   hard", "R40: easy   mod.   hard"
                );
                for (key, m) in e.rows() {
                    let f = |v: [Real; 3]| format!("{:>8.2} {:>6.2} {:>6.2}", v[0], v[1], v[2]);
                    let _ = writeln!(s, "    {:<5} {:>26}   {:>26}", key, f(m.r11()), f(m.r40()));
                }
            }
        }
        s
    }
}
