//! One annotation round's labelling: the autolabeler over the unlabelled frames, every label
//! verified and rendered into a crop as it comes (the run's sink), then the acceptance; and the
//! precision of the accepted labels against ground truth, for the report only.

use crate::config::CurriculumConfig;
use crate::error::{CurriculumError, Result};
use crate::targets::target_crop;
use crate::verify::{Rejection, accept, difficulty, verify};
use detection::Detector;
use kitti::{KittiDataset, Object, ObjectType, Split};
use pipeline::run::FrameOutcome;
use pipeline::{AutolabelConfig, Labeler, RunOptions, RunSummary};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

/// One label of the round and what the checks said.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// Its frame.
    pub frame: String,
    /// Its detection's index in the frame's filtered detections.
    pub detection_index: usize,
    /// The label.
    pub label: Object,
    /// Verified (with its difficulty and training crop), or why not.
    pub verdict: std::result::Result<(f64, css::data::Crop), Rejection>,
}

impl Candidate {
    /// Its difficulty, when verified.
    pub fn difficulty(&self) -> Option<f64> {
        self.verdict.as_ref().ok().map(|(d, _)| *d)
    }
}

/// What a round's labelling produced.
#[derive(Debug)]
pub struct Labelled {
    /// The autolabeler's summary.
    pub summary: RunSummary,
    /// Every label, frames in `ids` order, labels in detection order.
    pub candidates: Vec<Candidate>,
    /// Rejections by reason.
    pub rejections: BTreeMap<Rejection, usize>,
}

impl Labelled {
    /// The candidates the round accepts with its budget, easiest first.
    pub fn accepted(&self, budget: f64) -> Vec<&Candidate> {
        let difficulties: Vec<Option<f64>> = self.candidates.iter().map(Candidate::difficulty).collect();
        accept(&difficulties, budget)
            .into_iter()
            .map(|i| &self.candidates[i])
            .collect()
    }
}

/// Labels `ids` of `dataset` with `labeler` into `out` (every frame labelled again), and verifies
/// every label, rendering the training crop of those that pass.
#[allow(
    clippy::too_many_arguments,
    reason = "the round's inputs, each from another stage"
)]
pub fn label_frames(
    dataset: &KittiDataset,
    ids: &[String],
    detector: &dyn Detector,
    labeler: &dyn Labeler,
    autolabel: &AutolabelConfig,
    config: &CurriculumConfig,
    out: &Path,
    progress: &(dyn Fn() + Sync),
) -> Result<Labelled> {
    let decoder = labeler.decoder().ok_or_else(|| {
        CurriculumError::InvalidInput(format!(
            "the {} labeler fits no shapes: the curriculum needs the SDF labeler",
            labeler.name()
        ))
    })?;
    let index: BTreeMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    let collected: Mutex<Vec<(usize, Vec<Candidate>)>> = Mutex::new(Vec::new());
    let sink = |outcome: &FrameOutcome<'_>| -> std::result::Result<(), String> {
        let frame = outcome.frame;
        let frame_index = index.get(frame.id.as_str()).copied().unwrap_or(usize::MAX);
        let mut found = Vec::new();
        for object in &outcome.labels.objects {
            let Some(detection) = outcome.detections.get(object.detection_index) else {
                continue;
            };
            let verdict = match (verify(object, &config.verify), &object.state) {
                (Ok(()), Some(state)) => {
                    let crop = target_crop(
                        frame,
                        detection,
                        state,
                        &outcome.labels.ground,
                        decoder,
                        &config.targets,
                        (frame_index, object.detection_index),
                    )
                    .map_err(|e| format!("frame {}: target crop: {e}", frame.id))?;
                    match crop {
                        Some(t) => Ok((
                            difficulty(
                                object,
                                detection,
                                frame.image_size(),
                                t.visible_fraction,
                                &config.difficulty,
                            ),
                            t.crop,
                        )),
                        None => Err(Rejection::PoorSilhouette),
                    }
                }
                (Ok(()), None) => Err(Rejection::NoShape),
                (Err(r), _) => Err(r),
            };
            found.push(Candidate {
                frame: frame.id.clone(),
                detection_index: object.detection_index,
                label: object.label.clone(),
                verdict,
            });
        }
        collected
            .lock()
            .map_err(|_| "candidate list poisoned".to_owned())?
            .push((frame_index, found));
        Ok(())
    };
    let summary = pipeline::run(
        dataset,
        Split::Training,
        ids,
        detector,
        labeler,
        autolabel,
        &RunOptions {
            out: out.to_path_buf(),
            overwrite: true,
            shard: None,
        },
        progress,
        &sink,
    )?;
    let mut per_frame = collected
        .into_inner()
        .map_err(|_| CurriculumError::InvalidInput("candidate list poisoned".into()))?;
    per_frame.sort_by_key(|(i, _)| *i);
    let candidates: Vec<Candidate> = per_frame.into_iter().flat_map(|(_, c)| c).collect();
    let mut rejections = BTreeMap::new();
    for c in &candidates {
        if let Err(r) = &c.verdict {
            *rejections.entry(*r).or_insert(0) += 1;
        }
    }
    Ok(Labelled {
        summary,
        candidates,
        rejections,
    })
}

/// The fraction of `accepted` labels that match a ground-truth car of their frame with a BEV IoU of
/// at least `min_iou` (None without labels). Reads `label_2`: for reports only, never for
/// acceptance.
pub fn precision(dataset: &KittiDataset, accepted: &[&Candidate], min_iou: f64) -> Result<Option<f64>> {
    if accepted.is_empty() {
        return Ok(None);
    }
    let mut truth: BTreeMap<&str, Vec<Object>> = BTreeMap::new();
    let mut correct = 0usize;
    for c in accepted {
        if !truth.contains_key(c.frame.as_str()) {
            let cars: Vec<Object> = dataset
                .labels(Split::Training, &c.frame)?
                .into_iter()
                .filter(|o| o.kind == ObjectType::Car)
                .collect();
            truth.insert(c.frame.as_str(), cars);
        }
        let best = truth[c.frame.as_str()]
            .iter()
            .map(|g| g.box3d.bev_iou(&c.label.box3d))
            .fold(0.0, f64::max);
        correct += usize::from(best >= min_iou);
    }
    Ok(Some(correct as f64 / accepted.len() as f64))
}
