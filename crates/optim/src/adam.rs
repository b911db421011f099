//! Adam on plain `f64` vectors (the optimisers' parameters are a handful of numbers, not tensors).

pub(crate) struct Adam {
    m: Vec<f64>,
    v: Vec<f64>,
    t: i32,
}

impl Adam {
    pub(crate) fn new(n: usize) -> Self {
        Adam {
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
        }
    }

    /// The step for gradient `g` (per-parameter learning rates `lr`).
    pub(crate) fn step(&mut self, g: &[f64], lr: &[f64], b1: f64, b2: f64) -> Vec<f64> {
        self.t += 1;
        let c1 = 1.0 - b1.powi(self.t);
        let c2 = 1.0 - b2.powi(self.t);
        g.iter()
            .zip(lr)
            .enumerate()
            .map(|(i, (&gi, &li))| {
                self.m[i] = b1 * self.m[i] + (1.0 - b1) * gi;
                self.v[i] = b2 * self.v[i] + (1.0 - b2) * gi * gi;
                -li * (self.m[i] / c1) / ((self.v[i] / c2).sqrt() + 1e-12)
            })
            .collect()
    }

    /// Forgets parameter `i`'s moments (after it jumped).
    pub(crate) fn reset(&mut self, i: usize) {
        self.m[i] = 0.0;
        self.v[i] = 0.0;
    }

    /// [`Adam::step`] with one learning rate for every parameter.
    pub(crate) fn step_uniform(&mut self, g: &[f64], lr: f64, b1: f64, b2: f64) -> Vec<f64> {
        self.step(g, &vec![lr; g.len()], b1, b2)
    }
}
