//! `batch-norm-training`, `-inference` and `-grad`, expanded as XLA expands them
//! (`batch-norm-expander`), on lavapipe and in the interpreter, against the formulas of XLA's
//! operation semantics computed here in f64: the feature dimension first, in the middle and
//! last, f32 and bf16.

mod common;
use common::*;

fn values(n: usize, seed: u32) -> Vec<f32> {
    let mix = seed.wrapping_mul(0x9E37_79B9);
    (0..n).map(|k| ((((k as u32) ^ mix).wrapping_mul(2654435761) >> 9) % 1999) as f32 / 500.0 - 2.0).collect()
}

fn bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn floats(b: &[u8]) -> Vec<f64> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64).collect()
}

/// The feature of each element of an array of `dims` whose feature dimension is `feature`.
fn feature_of(dims: &[usize], feature: usize) -> Vec<usize> {
    let n: usize = dims.iter().product();
    let inner: usize = dims[feature + 1..].iter().product();
    (0..n).map(|i| (i / inner) % dims[feature]).collect()
}

/// Runs `hlo` on lavapipe (through the pipeline) and in the interpreter (after the expander)
/// and checks every output against `want` within a relative L2 error of `tol`.
fn check(hlo: &str, inputs: Vec<Vec<u8>>, want: &[Vec<f64>], tol: f64) {
    let c = compile_checked(&parse_and_fuse(hlo));
    let vulkan_out = run_vulkan(&vulkan(), &c, &inputs);
    let mut expanded = parse(hlo);
    hlo_passes::run_passes(&mut expanded, &["batch-norm-expander"], &mut hlo_passes::PipelineOptions::default())
        .expect("expands");
    let interp_out = run_interp(&expanded, &inputs);
    for (backend, outs) in [("vulkan", &vulkan_out), ("interp", &interp_out)] {
        assert_eq!(outs.len(), want.len(), "{backend}");
        for (k, (got, want)) in outs.iter().zip(want).enumerate() {
            let got = floats(got);
            let err: f64 = got.iter().zip(want).map(|(g, w)| (g - w) * (g - w)).sum::<f64>().sqrt();
            let norm: f64 = want.iter().map(|w| w * w).sum::<f64>().sqrt().max(1e-30);
            assert!(err / norm <= tol, "{backend} output {k}: relative error {}\n{hlo}", err / norm);
        }
    }
}

#[test]
fn training_inference_and_grad_match_their_formulas() {
    let eps = 0.001f64;
    for (dims, feature) in [(vec![4usize, 5, 3], 2usize), (vec![3, 6, 4], 1), (vec![5, 2, 7], 0), (vec![64, 8], 1)] {
        let n: usize = dims.iter().product();
        let features = dims[feature];
        let per = (n / features) as f64;
        let shape = format!("f32[{}]", dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(","));
        let fshape = format!("f32[{features}]");
        let x = values(n, 1);
        let scale = values(features, 2);
        let offset = values(features, 3);
        let dy = values(n, 4);
        let of = feature_of(&dims, feature);
        let (mut mean, mut sq) = (vec![0f64; features], vec![0f64; features]);
        for i in 0..n {
            mean[of[i]] += x[i] as f64 / per;
            sq[of[i]] += (x[i] as f64).powi(2) / per;
        }
        let var: Vec<f64> = (0..features).map(|f| sq[f] - mean[f] * mean[f]).collect();
        let rs: Vec<f64> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
        let y: Vec<f64> = (0..n)
            .map(|i| (x[i] as f64 - mean[of[i]]) * rs[of[i]] * scale[of[i]] as f64 + offset[of[i]] as f64)
            .collect();

        let training = format!(
            "HloModule t\nENTRY e {{\n  x = {shape} parameter(0)\n  s = {fshape} parameter(1)\n  o = {fshape} parameter(2)\n  \
             ROOT b = ({shape}, {fshape}, {fshape}) batch-norm-training(x, s, o), epsilon=0.001, feature_index={feature}\n}}\n"
        );
        check(&training, vec![bytes(&x), bytes(&scale), bytes(&offset)], &[y.clone(), mean.clone(), var.clone()], 1e-5);

        // Inference with the batch statistics as the running ones gives the training output.
        let mean32: Vec<f32> = mean.iter().map(|&v| v as f32).collect();
        let var32: Vec<f32> = var.iter().map(|&v| v as f32).collect();
        let inference = format!(
            "HloModule i\nENTRY e {{\n  x = {shape} parameter(0)\n  s = {fshape} parameter(1)\n  o = {fshape} parameter(2)\n  \
             m = {fshape} parameter(3)\n  v = {fshape} parameter(4)\n  \
             ROOT b = {shape} batch-norm-inference(x, s, o, m, v), epsilon=0.001, feature_index={feature}\n}}\n"
        );
        let inputs = vec![bytes(&x), bytes(&scale), bytes(&offset), bytes(&mean32), bytes(&var32)];
        check(&inference, inputs, &[y], 1e-5);

        // The gradient of the statistics as the module receives them (rounded to f32).
        let mean: Vec<f64> = mean32.iter().map(|&v| v as f64).collect();
        let var: Vec<f64> = var32.iter().map(|&v| v as f64).collect();
        let rs: Vec<f64> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
        let (mut d_offset, mut sum_dyc) = (vec![0f64; features], vec![0f64; features]);
        for i in 0..n {
            d_offset[of[i]] += dy[i] as f64;
            sum_dyc[of[i]] += dy[i] as f64 * (x[i] as f64 - mean[of[i]]);
        }
        let d_scale: Vec<f64> = (0..features).map(|f| sum_dyc[f] * rs[f]).collect();
        let dx: Vec<f64> = (0..n)
            .map(|i| {
                let f = of[i];
                let centered = x[i] as f64 - mean[f];
                scale[f] as f64 * rs[f] / per
                    * (dy[i] as f64 * per - d_offset[f] - centered * sum_dyc[f] / (var[f] + eps))
            })
            .collect();
        let grad = format!(
            "HloModule g\nENTRY e {{\n  x = {shape} parameter(0)\n  s = {fshape} parameter(1)\n  m = {fshape} parameter(2)\n  \
             v = {fshape} parameter(3)\n  dy = {shape} parameter(4)\n  \
             ROOT b = ({shape}, {fshape}, {fshape}) batch-norm-grad(x, s, m, v, dy), epsilon=0.001, feature_index={feature}\n}}\n"
        );
        let inputs = vec![bytes(&x), bytes(&scale), bytes(&mean32), bytes(&var32), bytes(&dy)];
        check(&grad, inputs, &[dx, d_scale, d_offset], 1e-4);
    }
}
