//! The refinement loop driven by the *true* correspondence field lands on the true pose: a check
//! of the whole analytic chain (cell points, projection Jacobian, Gauss–Newton, re-rendering).

use nalgebra::{Matrix3, Vector3};
use refine::field::{cell_points, true_field};
use refine::geometry::{angle_between, apply_update, rot_y, yaw_of};
use refine::solve::SolveConfig;
use refine::{CropInput, FieldSource, RefineConfig, refine_with};
use render::{CropCamera, Pose, RenderConfig, Surfels, render};

/// The exact field of the current rendering against `truth`, every rendered cell weighted 1.
struct Oracle {
    truth: Pose,
    surfels: Surfels,
}

impl FieldSource for Oracle {
    fn field(
        &self,
        crop: &CropInput,
        image: &render::Image,
        pose: &Pose,
    ) -> refine::Result<Vec<([f32; 2], f64)>> {
        let truth_image = render(&crop.camera, &self.truth, &self.surfels, &RenderConfig::default())?;
        let points = cell_points(image);
        let f = true_field(&crop.camera, &points, pose, &self.truth, &truth_image, None);
        Ok(f.offset_px
            .iter()
            .zip(&f.rendered)
            .map(|(o, r)| (*o, if *r { 1.0 } else { 0.0 }))
            .collect())
    }
}

fn setup() -> (CropCamera, Surfels, Pose) {
    let camera = CropCamera {
        fx: 150.0,
        fy: 150.0,
        cx: 23.5,
        cy: 23.5,
        width: 48,
        height: 48,
    };
    let surfels = Surfels::ellipsoid(2500, [0.3, 0.25, 0.75]);
    let truth = Pose {
        rotation: (rot_y(0.9) * Matrix3::new(1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, -1.0)).cast(),
        translation_m: Vector3::new(0.3, 0.2, 12.0),
        scale: 2.75,
    };
    (camera, surfels, truth)
}

#[test]
fn true_field_drives_the_pose_to_the_truth() {
    let (camera, surfels, truth) = setup();
    let crop = CropInput {
        camera,
        rgb: vec![0.0; 3 * 48 * 48],
    };
    let oracle = Oracle {
        truth,
        surfels: surfels.clone(),
    };
    // The third case pools the pairs of four extra renderings at jittered poses per round: each
    // rendering's pairs must be formed at its own pose for the pooled solve to land on the truth.
    for (delta, optimise_scale, jitter_renders) in [
        ([0.35, 0.25, -0.2, 0.5, 0.0], false, 0),
        ([-0.4, -0.3, 0.15, -0.6, 0.05], true, 0),
        ([0.35, -0.25, 0.2, 0.4, 0.0], false, 4),
    ] {
        let start = apply_update(&truth, &delta);
        let config = RefineConfig {
            iterations: 3,
            min_visibility: 0.5,
            jitter_renders,
            jitter_yaw_deg: 6.0,
            jitter_shift_fraction: 0.02,
            solve: SolveConfig {
                optimise_scale,
                ..SolveConfig::default()
            },
            ..RefineConfig::default()
        };
        let out = refine_with(&oracle, &config, &crop, &surfels, &start).expect("refine");
        let rot_err = angle_between(yaw_of(&out.pose), yaw_of(&truth)).to_degrees();
        // Size and distance are exactly interchangeable in one view (scaling both about the
        // camera centre moves no pixel): compare the translation at the true scale.
        let t_err = (out.pose.translation_m * (truth.scale / out.pose.scale) - truth.translation_m).norm();
        let start_rot = angle_between(yaw_of(&start), yaw_of(&truth)).to_degrees();
        assert!(start_rot > 19.0, "{start_rot}");
        assert!(
            rot_err < 0.5 && t_err < 0.05,
            "scale {optimise_scale}, jitter {jitter_renders}: rotation error {rot_err}°, translation {t_err} m, rounds {:?}",
            out.rounds
        );
        if !optimise_scale {
            assert_eq!(out.pose.scale, start.scale);
        }
    }
}
