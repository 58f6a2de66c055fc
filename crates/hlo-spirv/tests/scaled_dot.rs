//! `scaled-dot` (block-scaled products, XLA's MX and NVFP4 matmuls) on both backends. The
//! interpreter is checked against products worked out here from the definition (operands times
//! their scales repeated over blocks, then summed), on values that every type involved holds
//! exactly; Vulkan (through `scaled-dot-expander`, validation on) against the interpreter, at
//! contracting sizes that straddle the dot emitter's thresholds.

mod common;
use common::*;

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Small integers and halves: exact in f8e4m3fn, bf16 and f32.
fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n).map(|i| (((i * 7 + seed * 13) % 11) as f32 - 5.0) * if i % 3 == 0 { 0.5 } else { 1.0 }).collect()
}

/// Powers of two: exact in f8e8m0fnu.
fn scales(n: usize, seed: usize) -> Vec<f32> {
    (0..n).map(|i| 2f32.powi(((i * 5 + seed) % 5) as i32 - 2)).collect()
}

/// `lhs [m, k] x rhs [n, k]` (contracting the last dimension of both), with scales
/// `[m, k / block]` and `[n, k / block]`, in f64.
fn reference([lhs, rhs, ls, rs]: [&[f32]; 4], (m, n, k, block): (usize, usize, usize, usize)) -> Vec<f32> {
    let kb = k / block;
    let mut out = Vec::new();
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0f64;
            for p in 0..k {
                let a = f64::from(lhs[i * k + p]) * f64::from(ls[i * kb + p / block]);
                let b = f64::from(rhs[j * k + p]) * f64::from(rs[j * kb + p / block]);
                acc += a * b;
            }
            out.push(acc as f32);
        }
    }
    out
}

/// MX-style: f8e4m3fn operands and f8e8m0fnu scales (converted in the module from f32
/// parameters), an f32 result.
fn mx_module(m: usize, n: usize, k: usize, block: usize) -> String {
    let kb = k / block;
    format!(
        "HloModule m\nENTRY e {{\n  a = f32[{m},{k}] parameter(0)\n  b = f32[{n},{k}] parameter(1)\n  \
         sa = f32[{m},{kb}] parameter(2)\n  sb = f32[{n},{kb}] parameter(3)\n  \
         a8 = f8e4m3fn[{m},{k}] convert(a)\n  b8 = f8e4m3fn[{n},{k}] convert(b)\n  \
         sa8 = f8e8m0fnu[{m},{kb}] convert(sa)\n  sb8 = f8e8m0fnu[{n},{kb}] convert(sb)\n  \
         ROOT d = f32[{m},{n}] scaled-dot(a8, b8, sa8, sb8), lhs_contracting_dims={{1}}, rhs_contracting_dims={{1}}\n}}\n"
    )
}

#[test]
fn mx_scaled_dot_in_the_interpreter_is_the_definition() {
    for (m, n, k, block) in [(1, 1, 32, 32), (4, 3, 64, 32), (5, 7, 48, 16), (2, 2, 4, 1)] {
        let (a, b) = (values(m * k, 1), values(n * k, 2));
        let (sa, sb) = (scales(m * k / block, 3), scales(n * k / block, 4));
        let inputs = [f32_bytes(&a), f32_bytes(&b), f32_bytes(&sa), f32_bytes(&sb)];
        let got = run_interp(&parse(&mx_module(m, n, k, block)), &inputs);
        let want = reference([&a, &b, &sa, &sb], (m, n, k, block));
        assert_eq!(got[0], f32_bytes(&want), "m={m} n={n} k={k} block={block}");
    }
}

#[test]
fn mx_scaled_dot_on_vulkan_matches_the_interpreter() {
    let ctx = vulkan();
    for (m, n, k, block) in [(1, 1, 32, 32), (16, 17, 64, 32), (64, 8, 256, 32), (3, 5, 1024, 32), (17, 16, 16, 16)] {
        let text = mx_module(m, n, k, block);
        let (a, b) = (values(m * k, 1), values(n * k, 2));
        let (sa, sb) = (scales(m * k / block, 3), scales(n * k / block, 4));
        let inputs = [f32_bytes(&a), f32_bytes(&b), f32_bytes(&sa), f32_bytes(&sb)];
        let want = run_interp(&parse(&text), &inputs);
        let compiled = compile_checked(&parse_and_fuse(&text));
        let got = run_vulkan(&ctx, &compiled, &inputs);
        if let Err(e) = compare(hlo_ir::DType::F32, &got[0], &want[0], 1e-6) {
            panic!("m={m} n={n} k={k} block={block}: {e}");
        }
    }
}

/// Other forms: f32 and bf16 operands with scales along two dimensions, batch dimensions,
/// a contracting dimension that is not the last, and scalar scales (which XLA ignores).
#[test]
fn other_scaled_dot_forms_on_vulkan_match_the_interpreter() {
    let ctx = vulkan();
    let cases = [
        // Blocks of 2x4 on lhs [8, 16] and of 4x1 on rhs [16, 6].
        "a = f32[8,16] parameter(0)\n  b = f32[16,6] parameter(1)\n  sa = f32[4,4] parameter(2)\n  \
         sb = f32[4,6] parameter(3)\n  ROOT d = f32[8,6] scaled-dot(a, b, sa, sb), lhs_contracting_dims={1}, \
         rhs_contracting_dims={0}",
        // Batched bf16 with an f32 result: lhs [2, 17, 32] blocks of 8, rhs [2, 32, 5] blocks of 8.
        "a = bf16[2,17,32] parameter(0)\n  b = bf16[2,32,5] parameter(1)\n  sa = bf16[2,17,4] parameter(2)\n  \
         sb = bf16[2,4,5] parameter(3)\n  ROOT d = f32[2,17,5] scaled-dot(a, b, sa, sb), lhs_batch_dims={0}, \
         lhs_contracting_dims={2}, rhs_batch_dims={0}, rhs_contracting_dims={1}",
        // Scalar scales leave their operands as they are.
        "a = f32[16,64] parameter(0)\n  b = f32[64,16] parameter(1)\n  sa = f32[] parameter(2)\n  \
         sb = f32[] parameter(3)\n  ROOT d = f32[16,16] scaled-dot(a, b, sa, sb), lhs_contracting_dims={1}, \
         rhs_contracting_dims={0}",
    ];
    for body in cases {
        let text = format!("HloModule m\nENTRY e {{\n  {body}\n}}\n");
        let m = parse(&text);
        let inputs: Vec<Vec<u8>> = m
            .entry_comp()
            .param_shapes()
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let s = s.as_array().unwrap();
                let v = if i < 2 { values(s.num_elements() as usize, i) } else { scales(s.num_elements() as usize, i) };
                let lit = hlo_ir::Literal::array(
                    hlo_ir::ArrayShape::new(hlo_ir::DType::F32, s.dims.clone()),
                    hlo_ir::ArrayData::F32(v),
                );
                let lit = hlo_interp::evaluate(
                    &parse(&format!(
                        "HloModule c\nENTRY e {{\n  p = f32{:?} parameter(0)\n  ROOT c = {} convert(p)\n}}\n",
                        s.dims, s
                    )),
                    &[lit],
                )
                .unwrap();
                hlo_interp::literal_to_bytes(&lit).unwrap()
            })
            .collect();
        let want = run_interp(&m, &inputs);
        let compiled = compile_checked(&parse_and_fuse(&text));
        let got = run_vulkan(&ctx, &compiled, &inputs);
        if let Err(e) = compare(compiled.outputs[0].dtype, &got[0], &want[0], 1e-6) {
            panic!("{e}\n{text}");
        }
    }
}

/// The six-operand form (NVFP4 global scales) is refused by name, not computed without them.
#[test]
fn six_operand_scaled_dot_is_refused_by_name() {
    let text = "HloModule m\nENTRY e {\n  one = f32[] constant(1)\n  a = f32[4,8] broadcast(one), dimensions={}\n  \
                b = f32[8,4] broadcast(one), dimensions={}\n  s = f32[4,1] broadcast(one), dimensions={}\n  \
                t = f32[1,4] broadcast(one), dimensions={}\n  \
                ROOT d = f32[4,4] scaled-dot(a, b, s, t, one, one), lhs_contracting_dims={1}, rhs_contracting_dims={0}\n}\n";
    let mut m = parse(text);
    let err = hlo_passes::run_pipeline(&mut m, &mut hlo_passes::PipelineOptions::default()).unwrap_err().to_string();
    assert!(err.contains("scaled-dot") && err.contains("6 operands"), "{err}");
    let err = hlo_interp::evaluate(&parse(text), &[]).unwrap_err().to_string();
    assert!(err.contains("scaled-dot"), "{err}");
}
