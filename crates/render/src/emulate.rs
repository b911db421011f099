//! Checks the CUDA kernels' logic without a GPU: `kernels/emulate.cpp` compiles `kernels/render.cu`
//! as C++ (g++, C++20) with threads standing in for a block's threads, runs a batch laid out exactly
//! as [`crate::cuda`] lays it out, and the results must match the Rust renderer within 1e-4
//! relative. Skipped, with a message, where no g++ is installed.

use crate::backend::Job;
use crate::batch::{backward_inputs, grads_of, images_of, layout};
use crate::{CropCamera, ImageGrad, Pose, RenderConfig, Surfels, backward, render};
use std::path::{Path, PathBuf};
use std::process::Command;

fn write<T: Copy>(dir: &Path, name: &str, v: &[T]) {
    // SAFETY: plain f32/i32/f64 data, viewed as bytes for a raw dump.
    let bytes = unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), size_of_val(v)) };
    std::fs::write(dir.join(name), bytes).expect("write test array");
}

fn read_f32(dir: &Path, name: &str) -> Vec<f32> {
    let b = std::fs::read(dir.join(name)).expect("read emulator output");
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn read_f64(dir: &Path, name: &str) -> Vec<f64> {
    let b = std::fs::read(dir.join(name)).expect("read emulator output");
    b.chunks_exact(8)
        .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect()
}

#[test]
fn cuda_kernels_emulated_on_the_cpu_match_the_rust_renderer() {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("render-emulate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let exe = dir.join("emulate");
    let built = Command::new("g++")
        .args(["-std=c++20", "-O2", "-pthread", "-o"])
        .arg(&exe)
        .arg(manifest.join("kernels/emulate.cpp"))
        .output();
    let built = match built {
        Ok(b) => b,
        Err(e) => {
            eprintln!("skipped: no g++ ({e})");
            return;
        }
    };
    assert!(
        built.status.success(),
        "emulator build failed:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );

    let shapes = [Surfels::sphere(700, 1.0), Surfels::sphere(1200, 0.8)];
    let config = RenderConfig::default();
    let cams = [
        CropCamera {
            fx: 90.0,
            fy: 90.0,
            cx: 23.5,
            cy: 20.0,
            width: 48,
            height: 40,
        },
        CropCamera {
            fx: 60.0,
            fy: 64.0,
            cx: 16.0,
            cy: 15.5,
            width: 33,
            height: 30,
        },
    ];
    let jobs: Vec<Job<'_>> = (0..4)
        .map(|k| {
            let yaw = 0.5 * k as f32;
            let (s, c) = yaw.sin_cos();
            Job {
                camera: cams[k % 2],
                pose: Pose {
                    rotation: nalgebra::Matrix3::new(c, 0.0, s, 0.0, 1.0, 0.0, -s, 0.0, c),
                    translation_m: nalgebra::Vector3::new(0.1 * k as f32 - 0.1, 0.05, 5.0 + 0.3 * k as f32),
                    scale: 1.0 + 0.1 * k as f32,
                },
                surfels: &shapes[k % 2],
            }
        })
        .collect();
    let reference: Vec<_> = jobs
        .iter()
        .map(|j| render(&j.camera, &j.pose, j.surfels, &config).expect("render"))
        .collect();
    let grads: Vec<ImageGrad> = jobs
        .iter()
        .enumerate()
        .map(|(k, j)| {
            let mut g = ImageGrad::zeros(j.camera.width, j.camera.height);
            for i in 0..g.mask.len() {
                let f = ((i * 37 + k * 11) % 17) as f32 / 17.0 - 0.5;
                g.mask[i] = f;
                g.depth_m[i] = -0.4 * f;
                g.colour[i] = [f, 0.3, -f];
                g.normal[i] = [0.1 * f, -f, 0.2];
            }
            g
        })
        .collect();

    let b = layout(&jobs, &config).expect("layout");
    let meta = [
        b.surfels as f32,
        b.objects as f32,
        b.pixels as f32,
        b.tile_obj.len() as f32,
        config.sharpness,
        config.depth_sharpness_per_m,
        config.radius_units,
    ];
    write(&dir, "meta.bin", &meta);
    for (name, v) in [
        ("pos.bin", &b.pos),
        ("nrm.bin", &b.nrm),
        ("col.bin", &b.col),
        ("cam.bin", &b.cam),
        ("pose.bin", &b.pose),
    ] {
        write(&dir, name, v);
    }
    for (name, v) in [
        ("obj.bin", &b.obj),
        ("dims.bin", &b.dims),
        ("n_discs.bin", &b.n_discs),
        ("tile_obj.bin", &b.tile_obj),
        ("tile_xy.bin", &b.tile_xy),
    ] {
        write(&dir, name, v);
    }
    let (out_in, state_in, grad) = backward_inputs(&jobs, &reference, &grads).expect("pack");
    write(&dir, "out_in.bin", &out_in);
    write(&dir, "state_in.bin", &state_in);
    write(&dir, "grad.bin", &grad);
    let run = Command::new(&exe).arg(&dir).output().expect("run emulator");
    assert!(
        run.status.success(),
        "emulator failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );

    let images = images_of(
        &jobs,
        &b,
        &read_f32(&dir, "out.bin"),
        &read_f32(&dir, "state.bin"),
    );
    let emulated = grads_of(
        &jobs,
        &b,
        &read_f32(&dir, "g_out.bin"),
        &read_f64(&dir, "pose_out.bin"),
    );
    let _ = std::fs::remove_dir_all(&dir);
    for (k, ((im, want), (g, j))) in images
        .iter()
        .zip(&reference)
        .zip(emulated.iter().zip(&jobs))
        .enumerate()
    {
        let covered = want.mask.iter().filter(|m| **m > 0.5).count();
        assert!(covered > 100, "job {k}: only {covered} pixels covered");
        let pairs = im
            .colour
            .iter()
            .flatten()
            .zip(want.colour.iter().flatten())
            .chain(im.normal.iter().flatten().zip(want.normal.iter().flatten()))
            .chain(im.depth_m.iter().zip(&want.depth_m))
            .chain(im.mask.iter().zip(&want.mask))
            .chain(im.weight_sum.iter().zip(&want.weight_sum));
        for (a, b) in pairs {
            assert!(
                (a - b).abs() <= 1e-4 * (1e-2 + b.abs()),
                "job {k}: image {a} vs {b}"
            );
        }
        let want_g = backward(&j.camera, &j.pose, j.surfels, &config, want, &grads[k]).expect("backward");
        let scale = want_g
            .positions
            .iter()
            .flatten()
            .fold(0f32, |m, v| m.max(v.abs()));
        let worst = g
            .positions
            .iter()
            .flatten()
            .zip(want_g.positions.iter().flatten())
            .chain(g.normals.iter().flatten().zip(want_g.normals.iter().flatten()))
            .chain(g.colours.iter().flatten().zip(want_g.colours.iter().flatten()))
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            worst <= 1e-4 * scale,
            "job {k}: surfel gradients differ by {worst} (largest {scale})"
        );
        let pose_diff = (g.pose.rotation - want_g.pose.rotation).norm()
            + (g.pose.translation_m - want_g.pose.translation_m).norm()
            + (g.pose.scale - want_g.pose.scale).abs();
        let pose_norm =
            want_g.pose.rotation.norm() + want_g.pose.translation_m.norm() + want_g.pose.scale.abs();
        assert!(
            pose_diff <= 1e-4 * pose_norm,
            "job {k}: pose gradients differ by {pose_diff} (norm {pose_norm})"
        );
    }
}
