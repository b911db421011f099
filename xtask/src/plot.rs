//! PNG plots drawn with plotters and the embedded DejaVu Sans font (`data/fonts`), so that no system
//! font library is needed to build or to run.

use anyhow::{Context, anyhow};
use kitti::eval::{Difficulty, EvalReport, Metric, OverlapSet};
use plotters::prelude::*;
use std::path::Path;
use std::sync::OnceLock;

static FONT: &[u8] = include_bytes!("../../data/fonts/DejaVuSans.ttf");

/// Registers the embedded font once; every call reports the outcome of that one registration.
pub fn register_font() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(anyhow!("the embedded font data/fonts/DejaVuSans.ttf is invalid"))
    }
}

/// One named curve of a line chart.
pub struct Series<'a> {
    pub label: String,
    pub points: &'a [(f64, f64)],
    pub color: RGBColor,
}

/// A line chart with a legend, written as PNG.
pub fn line_chart(
    path: &Path,
    title: &str,
    (x_label, y_label): (&str, &str),
    (x_range, y_range): (std::ops::Range<f64>, std::ops::Range<f64>),
    series: &[Series<'_>],
) -> anyhow::Result<()> {
    register_font()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // Draw into a temporary file, then rename: no half-written PNG after an interruption.
    let tmp = path.with_extension("partial.png");
    {
        let root = BitMapBackend::new(&tmp, (640, 480)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(x_range, y_range)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .label_style(("sans-serif", 14))
            .draw()?;
        for s in series {
            let color = s.color;
            chart
                .draw_series(LineSeries::new(s.points.iter().copied(), color.stroke_width(2)))?
                .label(&s.label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()?;
        root.present()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// One loss curve of [`training_curves`]: its label, colour and value per history entry.
pub type Curve<'a, T> = (&'a str, RGBColor, &'a dyn Fn(&T) -> f64);

/// The loss curves of a training `history` (one entry per step, `steps` planned), each a moving
/// average over `window` steps, as PNG; the y axis leaves out each curve's first `window` steps,
/// where the losses start high.
pub fn training_curves<T>(
    path: &Path,
    title: &str,
    history: &[T],
    steps: usize,
    window: usize,
    curves: &[Curve<'_, T>],
) -> anyhow::Result<()> {
    let smoothed: Vec<Vec<(f64, f64)>> = curves
        .iter()
        .map(|(_, _, f)| moving_average(&history.iter().map(f).collect::<Vec<_>>(), window))
        .collect();
    let y_max = smoothed
        .iter()
        .flat_map(|c| c.iter().skip(window))
        .map(|p| p.1)
        .fold(1e-3, f64::max);
    let series: Vec<Series<'_>> = curves
        .iter()
        .zip(&smoothed)
        .map(|((label, color, _), points)| Series {
            label: (*label).to_owned(),
            points,
            color: *color,
        })
        .collect();
    line_chart(
        path,
        &format!("{title} (moving average over {window} steps)"),
        ("step", "loss"),
        (0.0..steps.max(1) as f64, 0.0..y_max * 1.05),
        &series,
    )
}

/// Moving average over `window` values: `(i + 1, mean of the last ≤ window values up to i)`.
pub fn moving_average(values: &[f64], window: usize) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(values.len());
    let mut sum = 0.0;
    for (i, v) in values.iter().enumerate() {
        sum += v;
        if i >= window {
            sum -= values[i - window];
        }
        out.push(((i + 1) as f64, sum / (i + 1).min(window) as f64));
    }
    out
}

/// Precision–recall curves like the devkit's plots: one PNG per class, metric and overlap set, with
/// easy, moderate and hard. Returns the number of files written.
pub fn precision_recall_curves(report: &EvalReport, dir: &Path) -> anyhow::Result<usize> {
    let colors = [RGBColor(0, 160, 0), RGBColor(0, 0, 220), RGBColor(220, 0, 0)];
    let mut n = 0;
    for c in &report.classes {
        for set in OverlapSet::ALL {
            let e = c.set(set);
            let mut metrics: Vec<(&str, &kitti::eval::MetricEval)> =
                Metric::ALL.iter().map(|&m| (m.key(), e.metric(m))).collect();
            if let Some(aos) = &e.aos {
                metrics.push(("aos", aos));
            }
            for (key, m) in metrics {
                let curves: Vec<Vec<(f64, f64)>> = m
                    .curves
                    .iter()
                    .map(|curve| {
                        curve
                            .precision
                            .iter()
                            .enumerate()
                            .map(|(i, p)| (i as f64 / 40.0, *p))
                            .collect()
                    })
                    .collect();
                let series: Vec<Series<'_>> = Difficulty::ALL
                    .iter()
                    .zip(&curves)
                    .zip(colors)
                    .zip(m.r40())
                    .map(|(((d, pts), color), ap)| Series {
                        label: format!("{} (AP R40 {ap:.2})", d.name()),
                        points: pts,
                        color,
                    })
                    .collect();
                let name = format!("{}_{}_{}.png", c.class.name().to_lowercase(), key, set.key());
                let title = format!(
                    "{} {} ({})",
                    c.class.name(),
                    if key == "aos" { "orientation" } else { key },
                    set.key()
                );
                let y = if key == "aos" {
                    "orientation similarity"
                } else {
                    "precision"
                };
                line_chart(
                    &dir.join(name),
                    &title,
                    ("recall", y),
                    (0.0..1.0, 0.0..1.05),
                    &series,
                )?;
                n += 1;
            }
        }
    }
    Ok(n)
}
