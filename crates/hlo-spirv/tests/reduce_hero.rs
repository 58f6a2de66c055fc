//! Fusion by hero for reductions: a fusion whose root is an elementwise epilogue of one reduce (a
//! mean, a loss, a norm) runs as a tree reduction of that reduce, the epilogue applied to its
//! result, instead of one invocation folding every element of each output. Compared with the
//! interpreter on lavapipe; an epilogue that reads the reduction elsewhere (a reverse) falls back.

mod common;
use common::*;
use hlo_spirv::KernelKind;

const ADD: &str = "add {\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  ROOT s = f32[] add(a, b)\n}\n";

fn bytes(n: usize) -> Vec<u8> {
    (0..n).flat_map(|k| (((k * 7919) % 1000) as f32 / 500.0 - 1.0).to_le_bytes()).collect()
}

fn kinds_and_check(hlo: &str, inputs: Vec<Vec<u8>>) -> Vec<KernelKind> {
    let c = compile_checked(&parse_and_fuse(hlo));
    let got = run_vulkan(&vulkan(), &c, &inputs);
    let want = run_interp(&parse(hlo), &inputs);
    for (k, io) in c.outputs.iter().enumerate() {
        compare(io.dtype, &got[k], &want[k], 1e-5).unwrap_or_else(|e| panic!("output {k}: {e}\n{hlo}"));
    }
    c.kernels_info.iter().map(|k| k.kind).collect()
}

#[test]
fn a_scalar_loss_is_a_tree_with_its_epilogue() {
    for n in [64, 1000, 4096] {
        let hlo = format!(
            "HloModule m\n{ADD}ENTRY e {{\n  x = f32[{n}] parameter(0)\n  ex = f32[{n}] exponential(x)\n  \
             z = f32[] constant(0)\n  s = f32[] reduce(ex, z), dimensions={{0}}, to_apply=add\n  \
             l = f32[] log(s)\n  c = f32[] constant(-0.5)\n  ROOT r = f32[] multiply(l, c)\n}}\n"
        );
        let kinds = kinds_and_check(&hlo, vec![bytes(n)]);
        assert_eq!(kinds, [KernelKind::ReduceTree], "n={n}");
    }
}

#[test]
fn row_norms_with_an_epilogue_reading_another_array() {
    let hlo = format!(
        "HloModule m\n{ADD}ENTRY e {{\n  x = f32[16,1000] parameter(0)\n  w = f32[16] parameter(1)\n  \
         sq = f32[16,1000] multiply(x, x)\n  z = f32[] constant(0)\n  \
         s = f32[16] reduce(sq, z), dimensions={{1}}, to_apply=add\n  n = f32[16] sqrt(s)\n  \
         ROOT r = f32[16] multiply(n, w)\n}}\n"
    );
    let kinds = kinds_and_check(&hlo, vec![bytes(16_000), bytes(16)]);
    assert_eq!(kinds, [KernelKind::ReduceTree]);
}

#[test]
fn an_epilogue_reading_other_indices_falls_back() {
    let hlo = format!(
        "HloModule m\n{ADD}ENTRY e {{\n  x = f32[16,1000] parameter(0)\n  z = f32[] constant(0)\n  \
         s = f32[16] reduce(x, z), dimensions={{1}}, to_apply=add\n  ROOT r = f32[16] reverse(s), dimensions={{0}}\n}}\n"
    );
    kinds_and_check(&hlo, vec![bytes(16_000)]);
}

/// Force sums `sum_i (p_j - p_i) / |p_j - p_i|^3` over particles, with a short coordinate
/// dimension: one invocation computes a row's coordinates in one fold, sharing the distance.
/// Rows straddle the threshold (64) and the workgroup; the argmax-style variadic reduce keeps
/// its first-NaN order.
#[test]
fn row_reductions_share_their_short_minor_dimension() {
    for (n, k) in [(63, 2), (64, 2), (65, 3), (200, 4), (257, 3), (1000, 2), (100, 5)] {
        let hlo = format!(
            "HloModule m\n{ADD}ENTRY e {{\n  p = f32[{n},{k}] parameter(0)\n  \
             a = f32[{n},{n},{k}] broadcast(p), dimensions={{0,2}}\n  b = f32[{n},{n},{k}] broadcast(p), dimensions={{1,2}}\n  \
             d = f32[{n},{n},{k}] subtract(b, a)\n  d2 = f32[{n},{n},{k}] multiply(d, d)\n  z = f32[] constant(0)\n  \
             r2 = f32[{n},{n}] reduce(d2, z), dimensions={{2}}, to_apply=add\n  c = f32[] constant(0.01)
  eps = f32[{n},{n}] broadcast(c), dimensions={{}}\n  \
             r2e = f32[{n},{n}] add(r2, eps)\n  r = f32[{n},{n}] sqrt(r2e)\n  r3 = f32[{n},{n}] multiply(r2e, r)\n  \
             r3b = f32[{n},{n},{k}] broadcast(r3), dimensions={{0,1}}\n  fq = f32[{n},{n},{k}] divide(d, r3b)\n  \
             ROOT s = f32[{n},{k}] reduce(fq, z), dimensions={{0}}, to_apply=add\n}}\n"
        );
        let kinds = kinds_and_check(&hlo, vec![bytes(n * k)]);
        assert!(kinds.contains(&KernelKind::ReduceRow), "n={n} k={k}: {kinds:?}");
    }
    let argmax = "argmax {\n  av = f32[] parameter(0)\n  ai = s32[] parameter(1)\n  bv = f32[] parameter(2)\n  bi = s32[] parameter(3)\n  \
                  gt = pred[] compare(av, bv), direction=GT\n  nan = pred[] compare(av, av), direction=NE\n  \
                  keep = pred[] or(gt, nan)\n  v = f32[] select(keep, av, bv)\n  i = s32[] select(keep, ai, bi)\n  \
                  ROOT t = (f32[], s32[]) tuple(v, i)\n}\n";
    let hlo = format!(
        "HloModule m\n{argmax}ENTRY e {{\n  x = f32[100,300,3] parameter(0)\n  io = s32[100,300,3] iota(), iota_dimension=1\n  \
         ninf = f32[] constant(-inf)\n  zi = s32[] constant(0)\n  \
         ROOT r = (f32[100,3], s32[100,3]) reduce(x, io, ninf, zi), dimensions={{1}}, to_apply=argmax\n}}\n"
    );
    let mut x: Vec<f32> = (0..90_000).map(|k| ((k * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
    x[3 * 300 * 3 + 7 * 3 + 1] = f32::NAN;
    kinds_and_check(&hlo, vec![x.iter().flat_map(|v| v.to_le_bytes()).collect()]);
}
