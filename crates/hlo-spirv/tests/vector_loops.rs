//! Loop kernels that compute four elements per invocation through vec4 loads and stores
//! (`loop_fusion::emit_quads`), on lavapipe against the interpreter: element counts around the
//! 1024 threshold, multiples of 4 that do and do not fill the last workgroup, two outputs,
//! operands read at their own index (vec4) next to broadcasts, reversals and slices (scalar),
//! and results that must be flushed (subnormal products) or stay NaN and infinite.

mod common;
use common::*;

fn values(n: usize, seed: u32) -> Vec<f32> {
    let mix = seed.wrapping_mul(0x9E37_79B9);
    (0..n).map(|k| ((((k as u32) ^ mix).wrapping_mul(2654435761) >> 9) % 4001) as f32 / 1000.0 - 2.0).collect()
}

fn bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The interpreter with XLA:CPU's arithmetic (contracted multiply-adds, flushed subnormals),
/// which the device reproduces bit for bit.
fn run_interp_xla_cpu(m: &hlo_ir::Module, inputs: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let args: Vec<_> = m
        .entry_comp()
        .param_shapes()
        .into_iter()
        .zip(inputs)
        .map(|(sh, bytes)| hlo_interp::literal_from_bytes(sh.leaves()[0], bytes).expect("input bytes"))
        .collect();
    let res = hlo_interp::evaluate_with(m, &args, &hlo_interp::Options::xla_cpu()).expect("interp");
    match res.tuple_elements() {
        Some(t) => t.iter().map(|e| hlo_interp::literal_to_bytes(e).expect("bytes")).collect(),
        None => vec![hlo_interp::literal_to_bytes(&res).expect("bytes")],
    }
}

/// Runs `hlo` on lavapipe and in the interpreter (bit for bit); `vec4` says whether the kernel must use
/// vec4 bindings (its WGSL declares `array<vec4<f32>>`).
fn check(hlo: &str, inputs: Vec<Vec<u8>>, vec4: bool) {
    let c = compile_checked(&parse_and_fuse(hlo));
    assert_eq!(c.wgsl().contains("array<vec4<f32>>"), vec4, "vec4 expected: {vec4}\n{}", c.wgsl());
    let got = run_vulkan(&vulkan(), &c, &inputs);
    let want = run_interp_xla_cpu(&parse(hlo), &inputs);
    for (k, io) in c.outputs.iter().enumerate() {
        compare(io.dtype, &got[k], &want[k], 0.0).unwrap_or_else(|e| panic!("output {k}: {e}\n{hlo}"));
    }
}

#[test]
fn element_counts_around_the_threshold_and_the_workgroup() {
    for n in [1020usize, 1024, 1028, 4096, 4100, 3 * 1024 + 12, 65536] {
        let hlo = format!(
            "HloModule m\nENTRY e {{\n  x = f32[{n}] parameter(0)\n  y = f32[{n}] parameter(1)\n  \
             m = f32[{n}] multiply(x, y)\n  ROOT r = f32[{n}] add(m, x)\n}}\n"
        );
        check(&hlo, vec![bytes(&values(n, 1)), bytes(&values(n, 2))], n >= 1024 && n % 4 == 0);
    }
}

#[test]
fn own_index_reads_beside_broadcasts_reversals_and_slices() {
    // Two outputs; `b` is broadcast along rows, `x` also read reversed and `w` sliced.
    let hlo = "HloModule m\nENTRY e {\n  x = f32[64,32] parameter(0)\n  b = f32[32] parameter(1)\n  w = f32[64,40] parameter(2)\n  \
               bb = f32[64,32] broadcast(b), dimensions={1}\n  xr = f32[64,32] reverse(x), dimensions={1}\n  \
               ws = f32[64,32] slice(w), slice={[0:64], [3:35]}\n  s = f32[64,32] add(x, bb)\n  \
               p = f32[64,32] multiply(xr, ws)\n  ROOT t = (f32[64,32], f32[64,32]) tuple(s, p)\n}\n";
    check(hlo, vec![bytes(&values(2048, 3)), bytes(&values(32, 4)), bytes(&values(2560, 5))], true);
}

#[test]
fn special_values_and_flushed_results() {
    let n = 2048;
    let mut x = values(n, 6);
    let mut y = values(n, 7);
    x[0] = f32::NAN;
    x[5] = f32::INFINITY;
    y[6] = f32::NEG_INFINITY;
    x[9] = 1e-20; // times 1e-20: a subnormal product, flushed to zero as XLA:CPU does
    y[9] = 1e-20;
    x[10] = 1e-40; // a subnormal input, read as zero
    let hlo = format!(
        "HloModule m\nENTRY e {{\n  x = f32[{n}] parameter(0)\n  y = f32[{n}] parameter(1)\n  ROOT m = f32[{n}] multiply(x, y)\n}}\n"
    );
    check(&hlo, vec![bytes(&x), bytes(&y)], true);
}

#[test]
fn moved_values_keep_their_subnormals() {
    // A select and a negate move data: a subnormal operand is stored as it is (XLA:CPU's FTZ
    // only touches arithmetic results), through the vec4 read as through a scalar one.
    let n = 1024;
    let mut x = values(n, 8);
    let y = values(n, 9);
    x[3] = -1e-40;
    x[4] = 1e-41;
    let p: Vec<u8> = (0..n).map(|k| (k % 3 != 0) as u8).collect();
    let hlo = format!(
        "HloModule m\nENTRY e {{\n  p = pred[{n}] parameter(0)\n  x = f32[{n}] parameter(1)\n  y = f32[{n}] parameter(2)\n  \
         s = f32[{n}] select(p, x, y)\n  ROOT t = (f32[{n}], f32[{n}]) tuple(s, f32[{n}] negate(x))\n}}\n"
    );
    check(&hlo, vec![p, bytes(&x), bytes(&y)], true);
}
