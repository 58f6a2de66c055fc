//! Dots and convolutions with an elementwise epilogue in one kernel (`kOutput` fusions,
//! `hlo_passes::fuse_epilogues`, `dot::store_product`) on lavapipe against the interpreter: a
//! bias and an activation, a comparison (a pred result from an f32 product), an SGD update of a
//! weight gradient (a transposed dot, and a convolution whose lanes split the contraction), a product that is subnormal before its epilogue scales it
//! (flushed first, as XLA:CPU stores it), and products the epilogue cannot take (two users).

mod common;
use common::*;
use hlo_spirv::{Compiled, KernelKind};

fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|k| (((k as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 2001) as f32 / 1000.0 - 1.0)
        .collect()
}

fn bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Compiles `hlo`, checks its kernels' kinds, runs it and compares every output with the
/// interpreter's.
fn check(hlo: &str, inputs: &[Vec<u8>], kinds: &[KernelKind]) {
    let c = compile_checked(&parse_and_fuse(hlo));
    let got_kinds: Vec<KernelKind> = c.kernels_info.iter().map(|k| k.kind).collect();
    assert_eq!(got_kinds, kinds, "{:?}\n{hlo}", c.kernels_info);
    matches_interp(hlo, &c, inputs);
}

/// Runs the compiled `hlo` and compares every output with the interpreter's.
fn matches_interp(hlo: &str, c: &Compiled, inputs: &[Vec<u8>]) {
    let got = run_vulkan(&vulkan(), c, inputs);
    let want = run_interp(&parse(hlo), inputs);
    for (k, io) in c.outputs.iter().enumerate() {
        compare(io.dtype, &got[k], &want[k], 1e-5).unwrap_or_else(|e| panic!("output {k}: {e}\n{hlo}"));
    }
}

/// A dot of `x: f32[64,32]` and `w: f32[32,48]` into `d`, also summed over its rows into
/// `total`, then `tail` (HLO lines that use `d` and `total`, the last one the root).
fn shared_product_module(tail: &str) -> String {
    format!(
        "HloModule m
add {{
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(a, b)
}}
ENTRY e {{
  x = f32[64,32] parameter(0)
  w = f32[32,48] parameter(1)
  d = f32[64,48] dot(x, w), lhs_contracting_dims={{1}}, rhs_contracting_dims={{0}}
  z = f32[] constant(0)
  total = f32[48] reduce(d, z), dimensions={{0}}, to_apply=add
{tail}
}}
"
    )
}

#[test]
fn dot_with_bias_and_relu() {
    // 2 x 3 x 8 is too small for blocks: one loop kernel computes the dot per element.
    for (m, k, n, kind) in
        [(100, 70, 130, KernelKind::Dot), (2, 3, 8, KernelKind::Loop), (17, 256, 65, KernelKind::Dot)]
    {
        let hlo = format!(
            "HloModule m
ENTRY e {{
  x = f32[{m},{k}] parameter(0)
  w = f32[{k},{n}] parameter(1)
  b = f32[{n}] parameter(2)
  d = f32[{m},{n}] dot(x, w), lhs_contracting_dims={{1}}, rhs_contracting_dims={{0}}
  bb = f32[{m},{n}] broadcast(b), dimensions={{1}}
  s = f32[{m},{n}] add(d, bb)
  z = f32[] constant(0)
  zz = f32[{m},{n}] broadcast(z), dimensions={{}}
  ROOT r = f32[{m},{n}] maximum(s, zz)
}}
"
        );
        let inputs = [bytes(&values(m * k, 1)), bytes(&values(k * n, 2)), bytes(&values(n, 3))];
        check(&hlo, &inputs, &[kind]);
    }
}

#[test]
fn dot_with_a_pred_epilogue() {
    let hlo = "HloModule m
ENTRY e {
  x = f32[40,33] parameter(0)
  w = f32[33,72] parameter(1)
  d = f32[40,72] dot(x, w), lhs_contracting_dims={1}, rhs_contracting_dims={0}
  z = f32[] constant(0)
  zz = f32[40,72] broadcast(z), dimensions={}
  ROOT r = pred[40,72] compare(d, zz), direction=GT
}
";
    check(hlo, &[bytes(&values(40 * 33, 4)), bytes(&values(33 * 72, 5))], &[KernelKind::Dot]);
}

/// `w - 0.05 * transpose(dot(g, x))` with both contracting dimensions first (a weight gradient):
/// the transpose is the dot of the swapped operands, which the update then takes as its hero.
#[test]
fn sgd_update_of_a_transposed_weight_gradient() {
    let hlo = "HloModule m
ENTRY e {
  g = f32[128,96] parameter(0)
  x = f32[128,40] parameter(1)
  w = f32[40,96] parameter(2)
  d = f32[96,40] dot(g, x), lhs_contracting_dims={0}, rhs_contracting_dims={0}
  t = f32[40,96] transpose(d), dimensions={1,0}
  lr = f32[] constant(0.05)
  lrb = f32[40,96] broadcast(lr), dimensions={}
  step = f32[40,96] multiply(t, lrb)
  ROOT r = f32[40,96] subtract(w, step)
}
";
    let inputs = [bytes(&values(128 * 96, 6)), bytes(&values(128 * 40, 7)), bytes(&values(40 * 96, 8))];
    check(hlo, &inputs, &[KernelKind::Dot]);
}

/// Output (0, 0) sums 1.4e-19^2 - 1.4e-19 * 1.5e-19, about -1.4e-39: subnormal, so XLA:CPU
/// stores the product as 0, and the epilogue's scaling by 1e30 must see that 0 (jax 0.8.3 on CPU
/// gives 0.0; the plain interpreter these tests compare with does not flush, so only the kernel
/// kinds and that element are checked here).
#[test]
fn subnormal_products_are_flushed_before_the_epilogue() {
    let hlo = "HloModule m
ENTRY e {
  x = f32[4,16] parameter(0)
  w = f32[16,64] parameter(1)
  d = f32[4,64] dot(x, w), lhs_contracting_dims={1}, rhs_contracting_dims={0}
  c = f32[] constant(1e30)
  cc = f32[4,64] broadcast(c), dimensions={}
  ROOT r = f32[4,64] multiply(d, cc)
}
";
    let mut x = vec![0.0f32; 4 * 16];
    let mut w = vec![0.0f32; 16 * 64];
    x[0] = 1.4e-19;
    x[1] = 1.4e-19;
    w[0] = 1.4e-19;
    w[64] = -1.5e-19;
    let inputs = [bytes(&x), bytes(&w)];
    let c = compile_checked(&parse_and_fuse(hlo));
    let kinds: Vec<KernelKind> = c.kernels_info.iter().map(|k| k.kind).collect();
    assert_eq!(kinds, [KernelKind::Dot]);
    let got = run_vulkan(&vulkan(), &c, &inputs);
    let first = f32::from_le_bytes(got[0][..4].try_into().unwrap());
    assert_eq!(first, 0.0, "the product was not flushed before the epilogue: {first:e}");
}

/// A 3x3 convolution (NHWC, kernel `01io`) with a bias and a relu.
#[test]
fn convolution_with_bias_and_relu() {
    let hlo = "HloModule m
ENTRY e {
  x = f32[2,10,9,3] parameter(0)
  k = f32[3,3,3,16] parameter(1)
  b = f32[16] parameter(2)
  c = f32[2,10,9,16] convolution(x, k), window={size=3x3 pad=1_1x1_1}, dim_labels=b01f_01io->b01f
  bb = f32[2,10,9,16] broadcast(b), dimensions={3}
  s = f32[2,10,9,16] add(c, bb)
  z = f32[] constant(0)
  zz = f32[2,10,9,16] broadcast(z), dimensions={}
  ROOT r = f32[2,10,9,16] maximum(s, zz)
}
";
    let inputs = [bytes(&values(2 * 10 * 9 * 3, 9)), bytes(&values(3 * 3 * 3 * 16, 10)), bytes(&values(16, 11))];
    check(hlo, &inputs, &[KernelKind::Convolution]);
}

/// An SGD update of a convolution's weight gradient, whose lanes split the contraction
/// (`conv::split_fold`): only lane 0 of each workgroup stores, the update included.
#[test]
fn sgd_update_of_a_split_weight_gradient() {
    let hlo = "HloModule m
ENTRY e {
  x = f32[8,16,16,3] parameter(0)
  g = f32[8,16,16,8] parameter(1)
  w = f32[3,3,3,8] parameter(2)
  d = f32[3,3,3,8] convolution(x, g), window={size=16x16 pad=1_1x1_1}, dim_labels=f01b_i01o->01bf
  lr = f32[] constant(0.01)
  lrs = f32[3,3,3,8] broadcast(lr), dimensions={}
  step = f32[3,3,3,8] multiply(d, lrs)
  ROOT r = f32[3,3,3,8] subtract(w, step)
}
";
    let inputs = [bytes(&values(8 * 16 * 16 * 3, 12)), bytes(&values(8 * 16 * 16 * 8, 13)), bytes(&values(216, 14))];
    let c = compile_checked(&parse_and_fuse(hlo));
    assert!(c.kernels_info[0].why.contains("splitting the contraction"), "{:?}", c.kernels_info);
    check(hlo, &inputs, &[KernelKind::Convolution]);
}

/// The product is also summed by another kernel: the dot's kernel stores both its relu and the
/// product itself (a second output), which the sum then reads.
#[test]
fn products_with_other_users_are_also_stored() {
    let hlo = shared_product_module(
        "  zz = f32[64,48] broadcast(z), dimensions={}
  relu = f32[64,48] maximum(d, zz)
  ROOT t = (f32[64,48], f32[48]) tuple(relu, total)",
    );
    let c = compile_checked(&parse_and_fuse(&hlo));
    let dots: Vec<_> = c.kernels_info.iter().filter(|k| k.kind == KernelKind::Dot).collect();
    assert_eq!(dots.len(), 1, "{:?}", c.kernels_info);
    assert!(!c.kernels_info.iter().any(|k| k.kind == KernelKind::Loop), "{:?}", c.kernels_info);
    matches_interp(&hlo, &c, &[bytes(&values(64 * 32, 12)), bytes(&values(32 * 48, 13))]);
}

/// A product that another reader needs before the epilogue can run (the epilogue reads the
/// reader's result) keeps its own kernel: moving it would make the fusion feed itself.
#[test]
fn products_whose_readers_feed_the_epilogue_keep_their_own_kernel() {
    let hlo = shared_product_module(
        "  tb = f32[64,48] broadcast(total), dimensions={1}
  ROOT r = f32[64,48] subtract(d, tb)",
    );
    let c = compile_checked(&parse_and_fuse(&hlo));
    matches_interp(&hlo, &c, &[bytes(&values(64 * 32, 14)), bytes(&values(32 * 48, 15))]);
}
