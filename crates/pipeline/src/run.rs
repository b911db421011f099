//! The run over frames: in parallel, resumable (a frame whose label file exists is skipped),
//! sharded (`i/N`), every output written atomically, a failing frame reported while the others go
//! on.

use crate::config::AutolabelConfig;
use crate::error::{PipelineError, Result};
use crate::frame::{FrameInput, StageTimer};
use crate::labeler::{FrameLabels, Labeler};
use deepsdf::Decoder;
use detection::{Detection, Detector};
use kitti::{KittiDataset, Split};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// Which frames a process takes: those whose index in the frame list is `index` modulo `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, 0-based.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// Parses `i/N` (0 ≤ i < N).
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("shard {s:?} is not i/N"))?;
        let index: usize = i.trim().parse().map_err(|_| format!("shard index {i:?}"))?;
        let count: usize = n.trim().parse().map_err(|_| format!("shard count {n:?}"))?;
        if count == 0 || index >= count {
            return Err(format!("shard {index}/{count}: need 0 ≤ i < N"));
        }
        Ok(Shard { index, count })
    }
}

/// Where and how a run writes.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Output folder (`label_2/`, `meshes/`).
    pub out: PathBuf,
    /// Label frames again even when their label file exists.
    pub overwrite: bool,
    /// This process's shard of the frames.
    pub shard: Option<Shard>,
}

/// One frame's outcome, handed to the caller's sink (pictures, logs).
pub struct FrameOutcome<'a> {
    /// The inputs.
    pub frame: &'a FrameInput,
    /// The (filtered) detections.
    pub detections: &'a [Detection],
    /// The labels.
    pub labels: &'a FrameLabels,
}

/// A frame or object that failed.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// The frame.
    pub frame: String,
    /// The detection, for object failures.
    pub detection: Option<usize>,
    /// What went wrong (names the file where there is one).
    pub message: String,
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct RunSummary {
    /// Frames labelled in this run.
    pub frames_labelled: usize,
    /// Frames skipped because their labels existed.
    pub frames_skipped: usize,
    /// Frames of other shards.
    pub frames_other_shards: usize,
    /// Labels written.
    pub objects: usize,
    /// Labels per method (`sdf`, `sdf-box-init`, `box-fallback`, `geometry`).
    pub methods: BTreeMap<String, usize>,
    /// Failed frames and objects.
    pub failures: Vec<Failure>,
    /// Seconds per stage, summed over frames (CPU time of the workers, not wall clock).
    pub stage_seconds: BTreeMap<String, f64>,
    /// Seconds per label: the object's own stages plus its share of its frame's.
    pub object_seconds: Vec<f64>,
    /// Seconds per labelled frame (every stage but the pictures; one worker's time).
    pub frame_seconds: Vec<f64>,
    /// Wall-clock seconds of the run.
    pub total_seconds: f64,
}

impl RunSummary {
    /// The median of [`RunSummary::object_seconds`] (0 without labels).
    pub fn median_seconds_per_object(&self) -> f64 {
        median(&self.object_seconds)
    }

    /// The median of [`RunSummary::frame_seconds`] (0 without frames).
    pub fn median_seconds_per_frame(&self) -> f64 {
        median(&self.frame_seconds)
    }
}

/// The median of `values` (0 when empty).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The label file of frame `id` under `out`.
pub fn label_path(out: &Path, id: &str) -> PathBuf {
    out.join("label_2").join(format!("{id}.txt"))
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Output {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Writes an OBJ mesh per labelled object with a shape (`meshes/<id>_<k>.obj`, rect frame, m).
fn write_meshes(
    out: &Path,
    id: &str,
    labels: &FrameLabels,
    decoder: &Decoder,
    config: &AutolabelConfig,
) -> Result<()> {
    let dir = out.join("meshes");
    let ground = labels.ground;
    for (k, obj) in labels.objects.iter().enumerate() {
        let Some(state) = &obj.state else { continue };
        let mut mesh = deepsdf::surface::decode_mesh(decoder, &state.latent, config.output.mesh_resolution)?;
        for v in &mut mesh.vertices {
            let p = state.to_rect(&ground, &[v.x, v.y, v.z]);
            *v = nalgebra::Point3::new(p.x as f32, p.y as f32, p.z as f32);
        }
        let text = sim::obj::to_obj_string_with(
            &mesh,
            &format!("autolabel: frame {id}, object {k}, rect frame, m"),
        );
        let path = dir.join(format!("{id}_{k:02}.obj"));
        kitti::io::write_atomic(&path, text.as_bytes())?;
    }
    Ok(())
}

/// Labels `ids` of `split` in `dataset`: detections from `detector` filtered by the config,
/// labels from `labeler`, label files (and meshes) under `options.out`; `sink` gets every labelled
/// frame (for pictures), `progress` a tick per frame. The run never stops on a frame's failure:
/// failures are collected in the summary.
#[allow(
    clippy::too_many_arguments,
    reason = "the run's inputs, each a different stage"
)]
pub fn run(
    dataset: &KittiDataset,
    split: Split,
    ids: &[String],
    detector: &dyn Detector,
    labeler: &dyn Labeler,
    config: &AutolabelConfig,
    options: &RunOptions,
    progress: &(dyn Fn() + Sync),
    sink: &(dyn Fn(&FrameOutcome<'_>) -> std::result::Result<(), String> + Sync),
) -> Result<RunSummary> {
    let start = Instant::now();
    let summary = Mutex::new(RunSummary::default());
    let lock = || summary.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mine: Vec<&String> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| options.shard.is_none_or(|s| i % s.count == s.index))
        .map(|(_, id)| id)
        .collect();
    lock().frames_other_shards = ids.len() - mine.len();
    mine.par_iter().for_each(|id| {
        let span = tracing::info_span!("frame", id = %id);
        let _enter = span.enter();
        let path = label_path(&options.out, id);
        if !options.overwrite && path.is_file() {
            lock().frames_skipped += 1;
            progress();
            return;
        }
        let mut timer = StageTimer::default();
        let result = label_one(
            dataset, split, id, detector, labeler, config, options, &mut timer, sink,
        );
        let mut s = lock();
        match result {
            Ok((labels, shared_seconds)) => {
                s.frames_labelled += 1;
                s.frame_seconds
                    .push(timer.total() - timer.seconds.get("viz").copied().unwrap_or(0.0));
                s.objects += labels.objects.len();
                let share = shared_seconds / labels.objects.len().max(1) as f64;
                for obj in &labels.objects {
                    *s.methods.entry(obj.method.to_owned()).or_insert(0) += 1;
                    s.object_seconds.push(obj.seconds + share);
                }
                for f in &labels.failures {
                    s.failures.push(Failure {
                        frame: id.to_string(),
                        detection: Some(f.detection_index),
                        message: f.message.clone(),
                    });
                }
            }
            Err(e) => {
                tracing::warn!("frame {id} failed: {e}");
                s.failures.push(Failure {
                    frame: id.to_string(),
                    detection: None,
                    message: e.to_string(),
                });
            }
        }
        for (k, v) in &timer.seconds {
            *s.stage_seconds.entry((*k).to_owned()).or_insert(0.0) += v;
        }
        drop(s);
        progress();
    });
    let mut summary = summary
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    summary
        .failures
        .sort_by(|a, b| (&a.frame, a.detection).cmp(&(&b.frame, b.detection)));
    summary.total_seconds = start.elapsed().as_secs_f64();
    Ok(summary)
}

/// Labels one frame and writes its outputs; returns its labels and the seconds of its shared
/// stages (everything but the objects' own).
#[allow(clippy::too_many_arguments, reason = "see run")]
fn label_one(
    dataset: &KittiDataset,
    split: Split,
    id: &str,
    detector: &dyn Detector,
    labeler: &dyn Labeler,
    config: &AutolabelConfig,
    options: &RunOptions,
    timer: &mut StageTimer,
    sink: &(dyn Fn(&FrameOutcome<'_>) -> std::result::Result<(), String> + Sync),
) -> Result<(FrameLabels, f64)> {
    let frame = timer.time("load", || {
        if labeler.needs_lidar() {
            FrameInput::load(dataset, split, id)
        } else {
            FrameInput::load_camera(dataset, split, id)
        }
    })?;
    let detections = timer.time("detect", || -> Result<Vec<Detection>> {
        let dets = detector.detect(id, frame.image_size())?;
        Ok(config.detections.apply(dets))
    })?;
    let labels = labeler.label_frame(&frame, &detections, timer)?;
    let objects: Vec<kitti::Object> = labels
        .objects
        .iter()
        .filter(|o| o.label.score.unwrap_or(0.0) >= config.output.min_score)
        .map(|o| o.label.clone())
        .collect();
    timer.time("output", || -> Result<()> {
        if config.output.meshes
            && let Some(decoder) = labeler.decoder()
        {
            write_meshes(&options.out, id, &labels, decoder, config)?;
        }
        // The label file last: its presence marks the frame done.
        kitti::label::write_labels(&label_path(&options.out, id), &objects)?;
        Ok(())
    })?;
    timer
        .time("viz", || {
            sink(&FrameOutcome {
                frame: &frame,
                detections: &detections,
                labels: &labels,
            })
        })
        .map_err(|e| io_error(&options.out.join("viz"), e))?;
    let own: f64 = labels.objects.iter().map(|o| o.seconds).sum();
    let shared = (timer.total() - timer.seconds.get("viz").copied().unwrap_or(0.0) - own).max(0.0);
    Ok((labels, shared))
}
