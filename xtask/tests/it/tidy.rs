//! Repository rules, checked by plain `cargo test`: module docs, no stubs, and the crate layering of
//! ARCHITECTURE.md.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target" && n != "data") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn workspace_sources() -> Vec<PathBuf> {
    let mut files = Vec::new();
    rust_files(&root().join("crates"), &mut files);
    rust_files(&root().join("xtask"), &mut files);
    files
}

#[test]
fn every_source_file_starts_with_a_doc_comment() {
    let missing: Vec<_> = workspace_sources()
        .into_iter()
        .filter(|p| {
            !std::fs::read_to_string(p)
                .unwrap()
                .trim_start()
                .starts_with("//!")
        })
        .collect();
    assert!(missing.is_empty(), "files without a `//!` header: {missing:#?}");
}

#[test]
fn no_stubs_in_the_code() {
    let needles = [
        concat!("todo", "!("),
        concat!("unimplemented", "!("),
        concat!("T", "ODO"),
        concat!("FIX", "ME"),
    ];
    let mut hits = Vec::new();
    for p in workspace_sources() {
        for (i, line) in std::fs::read_to_string(&p).unwrap().lines().enumerate() {
            if needles.iter().any(|n| line.contains(n)) {
                hits.push(format!("{}:{}", p.display(), i + 1));
            }
        }
    }
    assert!(hits.is_empty(), "stubs or open markers: {hits:#?}");
}

/// Our crates each may depend on (ARCHITECTURE.md, "Layering"). A crate missing here fails the test:
/// adding a crate means deciding where it sits.
fn allowed_dependencies() -> BTreeMap<&'static str, &'static [&'static str]> {
    BTreeMap::from([
        ("geom", &[][..]),
        ("kitti", &["geom"][..]),
        ("detection", &["geom", "kitti"][..]),
        ("sim", &["geom", "kitti", "detection"][..]),
        ("deepsdf", &["geom", "kitti", "sim"][..]),
        ("render", &["geom"][..]),
        ("css", &["geom", "kitti", "sim", "deepsdf"][..]),
        ("pose", &["geom"][..]),
        // Depth maps for the monocular mode (PNG files, projected LIDAR).
        ("depth", &["geom", "kitti"][..]),
        ("optim", &["geom", "deepsdf", "render"][..]),
        // Learned refinement: crops from `sim` frames, conv blocks and crop helpers of `css`.
        (
            "refine",
            &["geom", "kitti", "sim", "deepsdf", "render", "css"][..],
        ),
        (
            "pipeline",
            // `sim`: OBJ writing and the end-to-end tests' frames (never its ground truth).
            &[
                "geom",
                "kitti",
                "detection",
                "sim",
                "deepsdf",
                "css",
                "render",
                "pose",
                "optim",
                "depth",
                "refine",
            ][..],
        ),
        (
            "curriculum",
            // `sim`: the tests' frames only (a dev-dependency).
            &[
                "geom",
                "kitti",
                "detection",
                "sim",
                "deepsdf",
                "css",
                "render",
                "optim",
                "pipeline",
            ][..],
        ),
        // On top of everything: may use any crate (its list is not checked).
        ("xtask", &[][..]),
    ])
}

#[test]
fn crate_layering_is_respected() {
    let allowed = allowed_dependencies();
    let mut manifests = vec![root().join("xtask/Cargo.toml")];
    for entry in std::fs::read_dir(root().join("crates")).unwrap() {
        manifests.push(entry.unwrap().path().join("Cargo.toml"));
    }
    for manifest in manifests {
        let text = std::fs::read_to_string(&manifest).unwrap();
        let doc: toml::Table = text.parse().unwrap();
        let name = doc["package"]["name"].as_str().unwrap();
        let Some(ok) = allowed.get(name) else {
            panic!("crate `{name}` is not in the layering table of tidy.rs")
        };
        for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
            let Some(deps) = doc.get(section).and_then(|d| d.as_table()) else {
                continue;
            };
            for dep in deps.keys() {
                if name != "xtask" && allowed.contains_key(dep.as_str()) {
                    assert!(
                        ok.contains(&dep.as_str()),
                        "`{name}` must not depend on `{dep}` ({section})"
                    );
                }
            }
        }
    }
}
