//! The two visual domains of generated images.

use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// A visual domain: how images look. The geometry of a frame (scene, LIDAR, labels) does not depend
/// on it; only the camera image (and what is derived from it) does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Domain {
    /// Flat paint, fixed light, no texture or noise: like the CAD renders a CSS net is trained on.
    Clean,
    /// Varied light, weather tint, textures, sensor noise and colour casts: the data to be labelled.
    #[default]
    Target,
}

impl Domain {
    /// `"clean"` or `"target"`.
    pub fn name(self) -> &'static str {
        match self {
            Domain::Clean => "clean",
            Domain::Target => "target",
        }
    }
}

impl FromStr for Domain {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "clean" => Ok(Domain::Clean),
            "target" => Ok(Domain::Target),
            other => Err(format!(
                "unknown domain {other:?} (expected \"clean\" or \"target\")"
            )),
        }
    }
}
